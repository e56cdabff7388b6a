/*
 * test_executor.c - the dataflow executor: errors naming the failing node (sequential
 * and parallel), kernels that forget an output or return nonsense, independent
 * branches really running at once (a rendezvous only concurrent nodes can meet),
 * sequential runs when parallelism is off, in-place forwarding and when it must not
 * happen, long chains, and one plan run from four threads at once.
 */
#include "test_common.h"
#include "exec_test_util.h"

#include <pthread.h>

typedef struct fixture {
    floe_context *ctx;
    floe_graph *g;
    floe_session *s;
} fixture;

static fixture *fixture_new(int nthreads, int inter_op) {
    fixture *f = calloc(1, sizeof(*f));
    floe_session_options o;
    f->ctx = et_context(nthreads);
    assert_int_equal(floe_graph_new(f->ctx, &f->g), FLOE_OK);
    floe_session_options_init(&o);
    o.inter_op_parallelism = inter_op;
    assert_int_equal(floe_session_new(f->g, &o, &f->s), FLOE_OK);
    return f;
}

static void fixture_free(fixture *f) {
    floe_session_free(f->s);
    floe_graph_free(f->g);
    floe_context_free(f->ctx);
    free(f);
}

static floe_node *fail_node(floe_graph *g, const char *name, floe_output in, int code,
                            const char *msg) {
    floe_node_builder *b = et_builder(g, "ExFail", name);
    floe_node_builder_add_input(b, in);
    floe_attrs_set_int(floe_node_builder_attrs(b), "code", code);
    floe_attrs_set_string(floe_node_builder_attrs(b), "message", msg, strlen(msg));
    return et_finish(b);
}

static floe_node *rendezvous(floe_graph *g, const char *name, floe_output in, int key,
                             int timeout_ms) {
    floe_node_builder *b = et_builder(g, "ExRendezvous", name);
    floe_node_builder_add_input(b, in);
    floe_attrs_set_int(floe_node_builder_attrs(b), "key", key);
    floe_attrs_set_int(floe_node_builder_attrs(b), "timeout_ms", timeout_ms);
    return et_finish(b);
}

static void expect_run_error(floe_session *s, floe_output *fetches, int n, floe_status code,
                             const char *needle) {
    floe_tensor *outs[4] = {(floe_tensor *)1, (floe_tensor *)1, (floe_tensor *)1, (floe_tensor *)1};
    floe_status st = floe_session_run(s, NULL, NULL, 0, fetches, n, NULL, 0, outs);
    if (st != code)
        fail_msg("run gave %s (%s), expected %s", floe_status_str(st), floe_last_error(),
                 floe_status_str(code));
    for (int i = 0; i < n; i++)
        assert_null(outs[i]);
    tc_assert_error_contains(needle);
}

static void run_error_names_the_failing_node(void **state) {
    fixture *f = fixture_new(0, 1);
    floe_node *a = et_const(f->g, "a", 1, 3, 0);
    floe_node *bad = fail_node(f->g, "bad", floe_out(a, 0), FLOE_NOT_FOUND, "kaput");
    floe_node *after = et_op1(f->g, "ExIncr", "after", floe_out(bad, 0));
    floe_output fetches[2] = {floe_out(a, 0), floe_out(after, 0)};

    expect_run_error(f->s, fetches, 2, FLOE_NOT_FOUND, "node 'bad' (ExFail): kaput");
    /* The session stays usable after a failure. */
    floe_tensor_unref(et_run1(f->s, floe_out(a, 0)));
    fixture_free(f);
}

static void run_reports_kernels_that_misbehave(void **state) {
    fixture *f = fixture_new(0, 1);
    floe_node *a = et_const(f->g, "a", 1, -1, 0);
    floe_node *none = et_op1(f->g, "ExNoOutput", "none", floe_out(a, 0));
    floe_node *odd = fail_node(f->g, "odd", floe_out(a, 0), 99, "odd status");
    floe_node *ok0 = fail_node(f->g, "ok0", floe_out(a, 0), 0, "claims success");
    floe_output o;

    o = floe_out(none, 0);
    expect_run_error(f->s, &o, 1, FLOE_INTERNAL,
                     "node 'none' (ExNoOutput): kernel ExNoOutput/CPU did not set output 0");
    o = floe_out(odd, 0);
    expect_run_error(f->s, &o, 1, FLOE_INTERNAL, "node 'odd' (ExFail): kernel ExFail/CPU returned an invalid status 99");
    o = floe_out(ok0, 0);
    expect_run_error(f->s, &o, 1, FLOE_INTERNAL, "did not set output 0");
    fixture_free(f);
}

static void parallel_branches_run_at_the_same_time(void **state) {
    /* 2: always parallel (1, the default, may settle on the sequential schedule). */
    fixture *f = fixture_new(2, 2);
    floe_node *a = et_const(f->g, "a", 1.5f, 2, 0);
    floe_node *r1 = rendezvous(f->g, "r1", floe_out(a, 0), 1, 10000);
    floe_node *r2 = rendezvous(f->g, "r2", floe_out(a, 0), 1, 10000);
    floe_node *sum = et_add(f->g, "sum", floe_out(r1, 0), floe_out(r2, 0), 0);
    const float three[2] = {3, 3};

    for (int i = 0; i < 20; i++) {
        floe_tensor *t = et_run1(f->s, floe_out(sum, 0));
        tc_assert_close_f32(t, three, 2, 0, 0);
        floe_tensor_unref(t);
    }
    fixture_free(f);
}

static void sequential_runs_do_not_overlap_nodes(void **state) {
    /* With inter-op parallelism off, or a pool of one thread, the two halves of the
     * rendezvous never meet. */
    for (int variant = 0; variant < 2; variant++) {
        fixture *f = variant == 0 ? fixture_new(2, 0) : fixture_new(1, 1);
        floe_node *a = et_const(f->g, "a", 1, -1, 0);
        floe_node *r1 = rendezvous(f->g, "r1", floe_out(a, 0), 2, 100);
        floe_node *r2 = rendezvous(f->g, "r2", floe_out(a, 0), 2, 100);
        floe_node *sum = et_add(f->g, "sum", floe_out(r1, 0), floe_out(r2, 0), 0);
        floe_output o = floe_out(sum, 0);
        expect_run_error(f->s, &o, 1, FLOE_DEADLINE_EXCEEDED, "(ExRendezvous): rendezvous 2");
        fixture_free(f);
    }
}

static void parallel_error_wins_and_releases_everything(void **state) {
    fixture *f = fixture_new(2, 1);
    floe_node *a = et_const(f->g, "a", 1, 64, 0);
    floe_node *left = et_op1(f->g, "ExIncr", "left", floe_out(a, 0));
    floe_node *bad = fail_node(f->g, "bad", floe_out(a, 0), FLOE_OUT_OF_RANGE, "too far");
    floe_node *l2 = et_op1(f->g, "ExIncr", "l2", floe_out(left, 0));
    floe_node *sum = et_add(f->g, "sum", floe_out(l2, 0), floe_out(bad, 0), 0);
    floe_output fetches[2] = {floe_out(l2, 0), floe_out(sum, 0)};

    for (int i = 0; i < 20; i++)
        expect_run_error(f->s, fetches, 2, FLOE_OUT_OF_RANGE, "node 'bad' (ExFail): too far");
    /* Two failing branches: one of them wins, whole. */
    floe_node *bad2 = fail_node(f->g, "bad2", floe_out(a, 0), FLOE_OUT_OF_RANGE, "also");
    floe_node *both = et_add(f->g, "both", floe_out(bad2, 0), floe_out(bad, 0), 0);
    floe_output o = floe_out(both, 0);
    expect_run_error(f->s, &o, 1, FLOE_OUT_OF_RANGE, "(ExFail): ");
    assert_true(strstr(floe_last_error(), "node 'bad' (ExFail): too far") != NULL ||
                strstr(floe_last_error(), "node 'bad2' (ExFail): also") != NULL);
    fixture_free(f);
}

/* a -> i1 -> i2: each ExIncr reports whether it wrote its input's buffer. */
static void forwarding_reuses_buffers_nobody_else_sees(void **state) {
    for (int threads = 1; threads <= 2; threads++) {
        fixture *f = fixture_new(threads, 1);
        floe_node *a = et_const(f->g, "a", 1, 4, 0);
        floe_node *i1 = et_op1(f->g, "ExIncr", "i1", floe_out(a, 0));
        floe_node *i2 = et_op1(f->g, "ExIncr", "i2", floe_out(i1, 0));
        floe_node *b = et_const(f->g, "b", 10, 4, 0);
        floe_node *j1 = et_op1(f->g, "ExIncr", "j1", floe_out(b, 0));
        floe_output chain[4] = {floe_out(i2, 0), floe_out(i2, 1), floe_out(i1, 1),
                                floe_out(j1, 1)};
        floe_tensor *outs[4] = {NULL};
        const float three[4] = {3, 3, 3, 3}, two[4] = {2, 2, 2, 2};

        assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, chain, 4, NULL, 0, outs), FLOE_OK);
        tc_assert_close_f32(outs[0], three, 4, 0, 0);
        assert_int_equal(*(int32_t *)floe_tensor_data(outs[1]), 1);
        assert_int_equal(*(int32_t *)floe_tensor_data(outs[2]), 1);
        assert_int_equal(*(int32_t *)floe_tensor_data(outs[3]), 1);
        for (int i = 0; i < 4; i++)
            floe_tensor_unref(outs[i]);

        /* Fetching i1's value forbids i2 from overwriting it. */
        floe_output seen[3] = {floe_out(i2, 0), floe_out(i2, 1), floe_out(i1, 0)};
        assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, seen, 3, NULL, 0, outs), FLOE_OK);
        tc_assert_close_f32(outs[0], three, 4, 0, 0);
        assert_int_equal(*(int32_t *)floe_tensor_data(outs[1]), 0);
        tc_assert_close_f32(outs[2], two, 4, 0, 0);
        for (int i = 0; i < 3; i++)
            floe_tensor_unref(outs[i]);

        /* Two consumers of one value: the first may not overwrite it. */
        floe_node *k1 = et_op1(f->g, "ExIncr", "k1", floe_out(i1, 0));
        floe_node *k2 = et_op1(f->g, "ExIncr", "k2", floe_out(i1, 0));
        floe_node *ks = et_add(f->g, "ks", floe_out(k1, 0), floe_out(k2, 0), 0);
        floe_output pair[3] = {floe_out(ks, 0), floe_out(k1, 1), floe_out(k2, 1)};
        const float six[4] = {6, 6, 6, 6};
        assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, pair, 3, NULL, 0, outs), FLOE_OK);
        tc_assert_close_f32(outs[0], six, 4, 0, 0);
        assert_true(*(int32_t *)floe_tensor_data(outs[1]) + *(int32_t *)floe_tensor_data(outs[2]) <= 1);
        for (int i = 0; i < 3; i++)
            floe_tensor_unref(outs[i]);
        fixture_free(f);
    }
}

static void long_chains_run(void **state) {
    fixture *f = fixture_new(0, 1);
    floe_node *n = et_const(f->g, "a", 0, 8, 0);
    float expect[8];

    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "inc%d", i);
        n = et_op1(f->g, "ExIncr", name, floe_out(n, 0));
    }
    for (int i = 0; i < 8; i++)
        expect[i] = 2000;
    floe_tensor *t = et_run1(f->s, floe_out(n, 0));
    tc_assert_close_f32(t, expect, 8, 0, 0);
    floe_tensor_unref(t);
    fixture_free(f);
}

typedef struct worker_arg {
    floe_plan *plan;
    floe_session *s;
    floe_output fetch;
    float expect;
    int iterations;
    int failures;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    for (int i = 0; i < w->iterations; i++) {
        floe_tensor *out = NULL;
        floe_status st = w->plan != NULL ? floe_plan_run(w->plan, NULL, &out)
                                         : floe_session_run(w->s, NULL, NULL, 0, &w->fetch, 1,
                                                            NULL, 0, &out);
        const float *v = st == FLOE_OK ? floe_tensor_data(out) : NULL;
        for (int j = 0; v != NULL && j < floe_tensor_num_elements(out); j++)
            if (v[j] != w->expect)
                v = NULL;
        if (v == NULL)
            w->failures++;
        floe_tensor_unref(out);
    }
    return NULL;
}

static void plans_run_from_four_threads_at_once(void **state) {
    fixture *f = fixture_new(2, 1);
    floe_node *a = et_const(f->g, "a", 1, 16, 0);
    floe_node *l = et_op1(f->g, "ExIncr", "l", floe_out(a, 0));
    floe_node *r = et_op1(f->g, "ExIncr", "r", floe_out(a, 0));
    floe_node *l2 = et_op1(f->g, "ExIncr", "l2", floe_out(l, 0));
    floe_node *sum = et_add(f->g, "sum", floe_out(l2, 0), floe_out(r, 0), 0);
    floe_node *chain = et_op1(f->g, "ExIncr", "chain", floe_out(l2, 0));
    floe_plan *p_branchy = NULL;
    floe_output o = floe_out(sum, 0);
    pthread_t th[4];
    worker_arg args[4];

    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &o, 1, NULL, 0, &p_branchy), FLOE_OK);
    for (int i = 0; i < 4; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].iterations = 300;
        if (i < 2) {
            args[i].plan = p_branchy;
            args[i].expect = 5;
        } else {
            /* Through floe_session_run, so plan lookup races with the others. */
            args[i].s = f->s;
            args[i].fetch = floe_out(i == 2 ? chain : l2, 0);
            args[i].expect = i == 2 ? 4 : 3;
        }
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    fixture_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_error_names_the_failing_node),
        cmocka_unit_test(run_reports_kernels_that_misbehave),
        cmocka_unit_test(parallel_branches_run_at_the_same_time),
        cmocka_unit_test(sequential_runs_do_not_overlap_nodes),
        cmocka_unit_test(parallel_error_wins_and_releases_everything),
        cmocka_unit_test(forwarding_reuses_buffers_nobody_else_sees),
        cmocka_unit_test(long_chains_run),
        cmocka_unit_test(plans_run_from_four_threads_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
