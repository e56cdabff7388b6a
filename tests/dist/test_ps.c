/*
 * test_ps.c - a parameter server (libfloe_dist) against hostile and broken clients, in
 * one process over the grpc transport (plaintext on loopback with a token): malformed
 * bytes, lying tensor sizes, unknown dtypes, variables and methods are rejected with
 * INVALID_ARGUMENT / NOT_FOUND / UNIMPLEMENTED and the server keeps serving; a
 * synchronous step missing a worker fails by the deadline instead of hanging; Adam slots
 * restored by Init are used and returned by Pull, bad ones refused by name; and the
 * cluster spec parser's errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist-impl.h"

typedef struct fx {
    floe_context *sctx, *cctx;
    floe_ps *ps;
    floe_transport_conn *c;
} fx;

static void start_opt(fx *f, int num_workers, int64_t timeout_ms, const char *optimizer,
                      double lr) {
    floe_dist_options d;
    floe_ps_options p;
    floe_transport *t;
    char target[64];

    memset(f, 0, sizeof(*f));
    assert_int_equal(floe_context_new(NULL, &f->sctx), FLOE_OK);
    assert_int_equal(floe_context_new(NULL, &f->cctx), FLOE_OK);
    floe_dist_options_init(&d);
    d.insecure = 1;
    d.token = "tok";
    d.rpc_timeout_ms = timeout_ms;
    floe_ps_options_init(&p);
    p.num_workers = num_workers;
    p.optimizer = optimizer;
    p.learning_rate = lr;
    if (floe_ps_start(f->sctx, "127.0.0.1:0", &d, &p, &f->ps) != FLOE_OK)
        fail_msg("ps: %s", floe_last_error());
    assert_int_equal(floe_transport_find(f->cctx, "grpc", &t), FLOE_OK);
    assert_int_equal(floe_transport_set_option(t, "insecure", "1"), FLOE_OK);
    assert_int_equal(floe_transport_set_option(t, "token", "tok"), FLOE_OK);
    snprintf(target, sizeof(target), "127.0.0.1:%d", floe_ps_port(f->ps));
    assert_int_equal(floe_transport_connect(t, target, 5000, &f->c), FLOE_OK);
}

static void start(fx *f, int num_workers, int64_t timeout_ms) {
    start_opt(f, num_workers, timeout_ms, "sgd", 0.5);
}

static void stop(fx *f) {
    floe_transport_disconnect(f->c);
    floe_ps_stop(f->ps);
    floe_context_free(f->cctx);
    floe_context_free(f->sctx);
}

static floe_status call_raw(fx *f, const char *method, const void *buf, size_t len,
                            Floe__Dist__Reply **reply) {
    void *resp;
    size_t resp_len;
    floe_status st = floe_transport_call(f->c, method, buf, len, &resp, &resp_len, 5000);
    if (reply)
        *reply = NULL;
    if (st != FLOE_OK)
        return st;
    if (reply)
        st = floe__dist_decode_reply(resp, resp_len, reply, NULL);
    floe_transport_free(resp);
    return st;
}

/* One f32 tensor @name of @n elements (@dim0 as its only extent), data @nbytes bytes. */
static floe_status call_one(fx *f, const char *method, int worker, int64_t step,
                            const char *name, const char *dtype, int64_t dim0,
                            const float *data, size_t nbytes, Floe__Dist__Reply **reply) {
    Floe__Dist__Request rq = FLOE__DIST__REQUEST__INIT;
    Floe__Dist__Tensor t = FLOE__DIST__TENSOR__INIT, *tp = &t;
    void *buf;
    size_t len;
    floe_status st;

    t.name = (char *)name;
    t.dtype = (char *)dtype;
    t.dims = &dim0;
    t.n_dims = 1;
    t.data.data = (uint8_t *)data;
    t.data.len = nbytes;
    rq.step = step;
    rq.worker = worker;
    rq.tensors = &tp;
    rq.n_tensors = 1;
    assert_int_equal(floe__dist_pack(&rq.base, &buf, &len), FLOE_OK);
    st = call_raw(f, method, buf, len, reply);
    floe_transport_free(buf);
    return st;
}

static void server_alive(fx *f) {
    Floe__Dist__Reply *r;
    assert_int_equal(call_raw(f, "Status", "", 0, &r), FLOE_OK);
    floe__dist_reply_free(r);
}

static void ps_rejects_malformed_messages_and_keeps_serving(void **state) {
    fx f;
    float v[4] = {1, 2, 3, 4};
    unsigned char junk[300];
    uint64_t s = 7;
    (void)state;
    start(&f, 1, 5000);
    /* Bytes that are not a Request. */
    assert_int_equal(call_raw(&f, "Push", "\x0a\xff\xff\xff\xff\x0f", 6, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "malformed request"));
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (unsigned char)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 56);
        floe_status st = call_raw(&f, round % 2 ? "Init" : "Push", junk, sizeof(junk), NULL);
        assert_true(st == FLOE_INVALID_ARGUMENT || st == FLOE_UNAVAILABLE);
    }
    /* A tensor whose data is shorter than its shape says. */
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f32", 4, v, 8, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "8 data bytes"));
    /* Negative extent, strings, unknown dtype, an unprintable name. */
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f32", -4, v, 16, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "string", 1, v, 4, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "complex512", 1, v, 4, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(call_one(&f, "Init", 0, 0, "w\n", "f32", 4, v, 16, NULL),
                     FLOE_INVALID_ARGUMENT);
    /* f64 variables: the server holds f32 only. */
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f64", 2, v, 16, NULL),
                     FLOE_INVALID_ARGUMENT);
    /* Nothing initialised yet. */
    assert_int_equal(call_raw(&f, "Pull", "", 0, NULL), FLOE_UNAVAILABLE);
    assert_int_equal(call_raw(&f, "Launch", "", 0, NULL), FLOE_UNIMPLEMENTED);
    server_alive(&f);
    stop(&f);
}

static void ps_applies_pushed_gradients(void **state) {
    fx f;
    float v[4] = {1, 2, 3, 4}, g[4] = {2, 2, 2, 2};
    Floe__Dist__Reply *r;
    floe__dist_tensor *t;
    void *resp;
    size_t len;
    (void)state;
    start(&f, 1, 5000);
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f32", 4, v, 16, NULL), FLOE_OK);
    /* A second Init (a restarted chief) changes nothing. */
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f32", 4, g, 16, NULL), FLOE_OK);
    /* Gradients of an unknown variable, of the wrong shape, of a stale step. */
    assert_int_equal(call_one(&f, "Push", 0, 0, "v", "f32", 4, g, 16, NULL), FLOE_NOT_FOUND);
    assert_int_equal(call_one(&f, "Push", 0, 0, "w", "f32", 2, g, 8, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(call_one(&f, "Push", 0, 5, "w", "f32", 4, g, 16, NULL), FLOE_ABORTED);
    assert_int_equal(call_one(&f, "Push", 3, 0, "w", "f32", 4, g, 16, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(call_one(&f, "Push", 0, 0, "w", "f32", 4, g, 16, &r), FLOE_OK);
    assert_int_equal(r->step, 1);
    floe__dist_reply_free(r);
    assert_int_equal(floe_ps_step(f.ps), 1);
    /* SGD, lr 0.5: w - 0.5 * 2. */
    assert_int_equal(floe_transport_call(f.c, "Pull", "", 0, &resp, &len, 5000), FLOE_OK);
    assert_int_equal(floe__dist_decode_reply(resp, len, &r, &t), FLOE_OK);
    floe_transport_free(resp);
    assert_int_equal(r->n_tensors, 1);
    assert_string_equal(t[0].name, "w");
    assert_memory_equal(t[0].data, ((float[]){0, 1, 2, 3}), 16);
    free(t);
    floe__dist_reply_free(r);
    stop(&f);
}

/* A request of @n rank-1 tensors (or, for Pull, of @n names when @data is NULL). */
static floe_status call_many(fx *f, const char *method, int64_t step, int n,
                             const char *const *names, const char *const *dtypes,
                             const int64_t *dim0, const void *const *data, Floe__Dist__Reply **reply,
                             floe__dist_tensor **tensors) {
    Floe__Dist__Request rq = FLOE__DIST__REQUEST__INIT;
    Floe__Dist__Tensor t[8], *tp[8];
    void *buf, *resp;
    size_t len, resp_len;
    floe_status st;

    for (int i = 0; data && i < n; i++) {
        floe__dist__tensor__init(&t[i]);
        t[i].name = (char *)names[i];
        t[i].dtype = (char *)dtypes[i];
        t[i].dims = (int64_t *)&dim0[i];
        t[i].n_dims = 1;
        t[i].data.data = (uint8_t *)data[i];
        t[i].data.len = (size_t)dim0[i] * floe_dtype_size(floe_dtype_from_name(dtypes[i]));
        tp[i] = &t[i];
    }
    rq.step = step;
    if (data) {
        rq.tensors = tp;
        rq.n_tensors = (size_t)n;
    } else {
        rq.names = (char **)names;
        rq.n_names = (size_t)n;
    }
    assert_int_equal(floe__dist_pack(&rq.base, &buf, &len), FLOE_OK);
    st = floe_transport_call(f->c, method, buf, len, &resp, &resp_len, 5000);
    floe_transport_free(buf);
    if (st != FLOE_OK)
        return st;
    st = floe__dist_decode_reply(resp, resp_len, reply, tensors);
    floe_transport_free(resp);
    return st;
}

static void expect_error(floe_status got, floe_status want, const char *needle) {
    assert_int_equal(got, want);
    if (strstr(floe_last_error(), needle) == NULL)
        fail_msg("error '%s' does not name '%s'", floe_last_error(), needle);
}

/* Init restores the Adam slots "<var>/Adam" (m) and "<var>/Adam_1" (v): one step from
 * them gives the update computed here by hand, and Pull returns them; bad slots are
 * rejected by name and the server keeps serving; sgd keeps no slots. */
static void ps_adam_slots_init_pull_and_step(void **state) {
    fx f;
    const float w[3] = {1, 2, 3}, m0[3] = {0.5f, -0.2f, 0.1f}, v0[3] = {0.04f, 0.01f, 0.09f};
    const float g[3] = {0.1f, 0.3f, -0.2f};
    const double w64[3] = {0, 0, 0};
    const char *f32 = "f32", *names[3] = {"w", "w/Adam", "w/Adam_1"};
    const char *dt[3] = {f32, f32, f32}, *dt_bad[3] = {f32, f32, "f64"};
    const int64_t d3[3] = {3, 3, 3}, d_bad[3] = {3, 2, 3};
    const void *data[3] = {w, m0, v0}, *data_bad[3] = {w, m0, w64};
    Floe__Dist__Reply *r;
    floe__dist_tensor *t;
    (void)state;

    start_opt(&f, 1, 5000, "adam", 0.01);
    /* A slot of a variable not in the Init, of the wrong shape, of the wrong dtype. */
    expect_error(call_many(&f, "Init", 4, 2, (const char *[]){"w", "u/Adam"}, dt, d3, data,
                           NULL, NULL), FLOE_INVALID_ARGUMENT, "'u/Adam'");
    expect_error(call_many(&f, "Init", 4, 3, names, dt, d_bad, data, NULL, NULL),
                 FLOE_INVALID_ARGUMENT, "'w/Adam'");
    expect_error(call_many(&f, "Init", 4, 3, names, dt_bad, d3, data_bad, NULL, NULL),
                 FLOE_INVALID_ARGUMENT, "'w/Adam_1'");
    expect_error(call_many(&f, "Init", 4, 3, (const char *[]){"w", "w/Adam", "w/Adam"}, dt, d3,
                           data, NULL, NULL), FLOE_INVALID_ARGUMENT, "'w/Adam' twice");
    expect_error(call_many(&f, "Init", 4, 1, (const char *[]){"w/Adam"}, dt, d3, data, NULL,
                           NULL), FLOE_INVALID_ARGUMENT, "only slots");
    server_alive(&f);
    expect_error(call_many(&f, "Pull", 0, 1, names, NULL, NULL, NULL, NULL, NULL),
                 FLOE_UNAVAILABLE, "not initialised");
    /* At global step 4, so the next update is Adam's 5th. */
    assert_int_equal(call_many(&f, "Init", 4, 3, names, dt, d3, data, &r, NULL), FLOE_OK);
    floe__dist_reply_free(r);
    assert_int_equal(call_many(&f, "Pull", 0, 3, names, NULL, NULL, NULL, &r, &t), FLOE_OK);
    assert_int_equal(r->n_tensors, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(t[i].name, names[i]);
        assert_int_equal(t[i].dtype, FLOE_DTYPE_F32);
        assert_int_equal(t[i].ndim, 1);
        assert_int_equal(t[i].dims[0], 3);
        assert_memory_equal(t[i].data, data[i], sizeof(w));
    }
    free(t);
    floe__dist_reply_free(r);
    expect_error(call_many(&f, "Pull", 0, 1, (const char *[]){"u/Adam_1"}, NULL, NULL, NULL,
                           NULL, NULL), FLOE_NOT_FOUND, "'u/Adam_1'");

    assert_int_equal(call_one(&f, "Push", 0, 4, "w", "f32", 3, g, sizeof(g), &r), FLOE_OK);
    assert_int_equal(r->step, 5);
    floe__dist_reply_free(r);
    {
        const double b1 = 0.9, b2 = 0.999, lr = 0.01;
        double lr_t = lr * sqrt(1 - pow(b2, 5)) / (1 - pow(b1, 5));
        float m[3], v[3], x[3], x0[3];
        for (int i = 0; i < 3; i++) {
            m[i] = (float)(b1 * m0[i] + (1 - b1) * g[i]);
            v[i] = (float)(b2 * v0[i] + (1 - b2) * g[i] * g[i]);
            x[i] = (float)(w[i] - lr_t * m[i] / (sqrt(v[i]) + 1e-7));
            /* From zero slots the step would be lr_t * g/|g| * (1-b1)/sqrt(1-b2) apart. */
            double m_z = (1 - b1) * g[i], v_z = (1 - b2) * g[i] * g[i];
            x0[i] = (float)(w[i] - lr_t * m_z / (sqrt(v_z) + 1e-7));
        }
        assert_int_equal(call_many(&f, "Pull", 0, 3, names, NULL, NULL, NULL, &r, &t), FLOE_OK);
        for (int i = 0; i < 3; i++) {
            const float *got = t[0].data, *gm = t[1].data, *gv = t[2].data;
            assert_float_equal(gm[i], m[i], 1e-6 * fabs(m[i]) + 1e-9);
            assert_float_equal(gv[i], v[i], 1e-6 * fabs(v[i]) + 1e-9);
            assert_float_equal(got[i], x[i], 1e-6);
            assert_true(fabs(got[i] - x0[i]) > 1e-3);   /* the slots were used */
        }
        free(t);
        floe__dist_reply_free(r);
    }
    stop(&f);

    /* sgd keeps no slots: Init and Pull of them fail naming the slot and the optimizer. */
    start(&f, 1, 5000);
    expect_error(call_many(&f, "Init", 0, 3, names, dt, d3, data, NULL, NULL),
                 FLOE_INVALID_ARGUMENT, "'w/Adam': optimizer sgd");
    assert_int_equal(call_many(&f, "Init", 0, 1, names, dt, d3, data, &r, NULL), FLOE_OK);
    floe__dist_reply_free(r);
    expect_error(call_many(&f, "Pull", 0, 1, names + 2, NULL, NULL, NULL, NULL, NULL),
                 FLOE_INVALID_ARGUMENT, "'w/Adam_1': optimizer sgd");
    server_alive(&f);
    stop(&f);
}

static void ps_sync_step_missing_a_worker_fails_by_deadline(void **state) {
    fx f;
    float v[2] = {1, 2};
    struct timespec t0, t1;
    double secs;
    (void)state;
    start(&f, 2, 600);   /* waits up to 80% of 600 ms */
    assert_int_equal(call_one(&f, "Init", 0, 0, "w", "f32", 2, v, 8, NULL), FLOE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(call_one(&f, "Push", 0, 0, "w", "f32", 2, v, 8, NULL),
                     FLOE_DEADLINE_EXCEEDED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(secs < 4.8);   /* bounded, not hung (the client's own deadline is 5 s) */
    assert_non_null(strstr(floe_last_error(), "1 of 2 workers"));
    /* The late worker completes the step; worker 0's retry is not counted twice. */
    assert_int_equal(call_one(&f, "Push", 1, 0, "w", "f32", 2, v, 8, NULL), FLOE_OK);
    assert_int_equal(floe_ps_step(f.ps), 1);
    stop(&f);
}

static void cluster_parse_accepts_specs_and_names_errors(void **state) {
    floe_cluster *c = NULL;
    char path[] = "/tmp/floe-cluster-XXXXXX";
    FILE *fp;
    int fd;
    (void)state;
    assert_int_equal(floe_cluster_parse("ps=127.0.0.1:1,localhost:2;worker=[::1]:3", &c),
                     FLOE_OK);
    assert_int_equal(floe_cluster_num_tasks(c, "ps"), 2);
    assert_int_equal(floe_cluster_num_tasks(c, "worker"), 1);
    assert_string_equal(floe_cluster_task(c, "ps", 1), "localhost:2");
    assert_null(floe_cluster_task(c, "ps", 2));
    assert_int_equal(floe_cluster_num_tasks(c, "chief"), 0);
    floe_cluster_free(c);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    fputs("# two jobs\nps = 127.0.0.1:5000\nworker=127.0.0.1:5001, 127.0.0.1:5002\n", fp);
    fclose(fp);
    {
        char spec[64];
        snprintf(spec, sizeof(spec), "@%s", path);
        assert_int_equal(floe_cluster_parse(spec, &c), FLOE_INVALID_ARGUMENT);  /* "ps " */
    }
    fp = fopen(path, "w");
    fputs("# two jobs\nps=127.0.0.1:5000\nworker=127.0.0.1:5001, 127.0.0.1:5002\n", fp);
    fclose(fp);
    {
        char spec[64];
        snprintf(spec, sizeof(spec), "@%s", path);
        assert_int_equal(floe_cluster_parse(spec, &c), FLOE_OK);
        assert_int_equal(floe_cluster_num_tasks(c, "worker"), 2);
        floe_cluster_free(c);
    }
    unlink(path);
    assert_int_equal(floe_cluster_parse("@/nonexistent/spec", &c), FLOE_NOT_FOUND);
    assert_int_equal(floe_cluster_parse("ps=127.0.0.1:1", &c), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "both jobs"));
    assert_int_equal(floe_cluster_parse("ps=h:1;worker=h:99999", &c), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_cluster_parse("ps=h:1;worker=h", &c), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_cluster_parse("ps=h:1;boss=h:2", &c), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_cluster_parse("ps=h:1;ps=h:2;worker=h:3", &c), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_cluster_parse("ps=h;x:1;worker=h:3", &c), FLOE_INVALID_ARGUMENT);
    assert_null(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ps_rejects_malformed_messages_and_keeps_serving),
        cmocka_unit_test(ps_applies_pushed_gradients),
        cmocka_unit_test(ps_adam_slots_init_pull_and_step),
        cmocka_unit_test(ps_sync_step_missing_a_worker_fails_by_deadline),
        cmocka_unit_test(cluster_parse_accepts_specs_and_names_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
