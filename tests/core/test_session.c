/*
 * test_session.c - sessions and plans: pruning, feeds cutting the graph, plan reuse
 * and kernel lifetimes, targets, feed and signature validation, placement (priority,
 * constraints, errors, logging), cross-device copies and host-memory arguments, and
 * eager calls.  Most ops come from floe_exectest; eager calls use ops_math.
 */
#include "test_common.h"
#include "exec_test_util.h"

#include <floe/experimental/testing.h>

typedef struct fixture {
    floe_context *ctx;
    floe_graph *g;
    floe_session *s;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    f->ctx = et_context(0);
    assert_int_equal(floe_graph_new(f->ctx, &f->g), FLOE_OK);
    assert_int_equal(floe_session_new(f->g, NULL, &f->s), FLOE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    floe_session_free(f->s);
    floe_graph_free(f->g);
    floe_context_free(f->ctx);
    free(f);
    return 0;
}

static void session_new_validates_arguments(void **state) {
    fixture *f = *state;
    floe_session *s = (floe_session *)&s;
    floe_session_options o;

    assert_int_equal(floe_session_new(NULL, NULL, &s), FLOE_INVALID_ARGUMENT);
    assert_null(s);
    assert_int_equal(floe_session_new(f->g, NULL, NULL), FLOE_INVALID_ARGUMENT);
    memset(&o, 0, sizeof(o));
    assert_int_equal(floe_session_new(f->g, &o, &s), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("struct_size");
    floe_session_options_init(&o);
    assert_int_equal(o.inter_op_parallelism, 1);
    assert_int_equal(o.log_device_placement, 0);
    assert_int_equal(floe_session_new(f->g, &o, &s), FLOE_OK);
    floe_session_free(s);
    floe_session_free(NULL);
    floe_session_options_init(NULL);
}

static void run_prunes_what_fetches_do_not_need(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 2, -1, 1);
    floe_node *unused = et_const(f->g, "unused", 5, -1, 2);
    floe_node *b = et_op1(f->g, "ExIncr", "b", floe_out(a, 0));
    floe_plan *p = NULL;
    long a0 = et_ticks(f->ctx, 1), u0 = et_ticks(f->ctx, 2);
    (void)unused;

    floe_tensor *t = et_run1(f->s, floe_out(b, 0));
    assert_true(et_scalar(t) == 3.0f);
    floe_tensor_unref(t);
    assert_int_equal(et_ticks(f->ctx, 1), a0 + 1);
    assert_int_equal(et_ticks(f->ctx, 2), u0);
    floe_output fetch = floe_out(b, 0);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &fetch, 1, NULL, 0, &p), FLOE_OK);
    assert_int_equal(floe_plan_num_nodes(p), 2);
    assert_string_equal(floe_plan_node_name(p, 0), "a");
    assert_string_equal(floe_plan_node_name(p, 1), "b");
    assert_null(floe_plan_node_name(p, 2));
    assert_null(floe_plan_node_device(p, -1));
}

static void run_feed_replaces_an_output_and_cuts_the_graph(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 2, -1, 3);
    floe_node *sum = et_add(f->g, "sum", floe_out(a, 0), floe_out(a, 0), 0);
    floe_tensor *ten = tc_scalar_f32(10), *out = NULL;
    floe_output feed = floe_out(a, 0), fetches[2] = {floe_out(sum, 0), floe_out(a, 0)};
    floe_tensor *outs[2] = {NULL, NULL};
    long a0 = et_ticks(f->ctx, 3);

    assert_int_equal(floe_session_run(f->s, &feed, &ten, 1, fetches, 2, NULL, 0, outs), FLOE_OK);
    assert_true(et_scalar(outs[0]) == 20.0f);
    assert_ptr_equal(outs[1], ten);  /* a fed output fetched is the fed tensor */
    assert_int_equal(et_ticks(f->ctx, 3), a0);
    floe_tensor_unref(outs[0]);
    floe_tensor_unref(outs[1]);
    /* Without the feed, a runs. */
    out = et_run1(f->s, floe_out(sum, 0));
    assert_true(et_scalar(out) == 4.0f);
    assert_int_equal(et_ticks(f->ctx, 3), a0 + 1);
    floe_tensor_unref(out);
    /* The caller's tensor was never written (forwarding must not touch feeds). */
    assert_true(et_scalar(ten) == 10.0f);
    floe_tensor_unref(ten);
}

static void run_node_with_one_output_fed_still_runs_for_the_other(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 1, -1, 4);
    floe_node *inc = et_op1(f->g, "ExIncr", "inc", floe_out(a, 0));
    floe_node *sum = et_add(f->g, "sum", floe_out(inc, 0), floe_out(inc, 0), 0);
    floe_tensor *five = tc_scalar_f32(5);
    floe_output feed = floe_out(inc, 0), fetches[2] = {floe_out(sum, 0), floe_out(inc, 1)};
    floe_tensor *outs[2] = {NULL, NULL};
    long a0 = et_ticks(f->ctx, 4);

    assert_int_equal(floe_session_run(f->s, &feed, &five, 1, fetches, 2, NULL, 0, outs), FLOE_OK);
    assert_true(et_scalar(outs[0]) == 10.0f);
    assert_int_equal(floe_tensor_dtype(outs[1]), FLOE_DTYPE_I32);
    assert_int_equal(et_ticks(f->ctx, 4), a0 + 1);
    floe_tensor_unref(outs[0]);
    floe_tensor_unref(outs[1]);
    floe_tensor_unref(five);
}

static void prepare_reuses_plans_and_kernels(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 1, -1, 0);
    floe_node *b = et_op1(f->g, "ExIncr", "b", floe_out(a, 0));
    floe_output fb = floe_out(b, 0), fa = floe_out(a, 0), both[2] = {fa, fb};
    floe_plan *p1 = NULL, *p2 = NULL, *p3 = NULL;
    floe_session *s2 = NULL;
    long created = et_ticks(f->ctx, ET_CREATE);
    long destroyed = et_ticks(f->ctx, ET_DESTROY);

    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &fb, 1, NULL, 0, &p1), FLOE_OK);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &fb, 1, NULL, 0, &p2), FLOE_OK);
    assert_ptr_equal(p1, p2);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, both, 2, NULL, 0, &p3), FLOE_OK);
    assert_ptr_not_equal(p1, p3);
    /* One create() for node a across both plans. */
    assert_int_equal(et_ticks(f->ctx, ET_CREATE), created + 1);
    for (int i = 0; i < 3; i++) {
        floe_tensor *outs[2] = {NULL, NULL};
        assert_int_equal(floe_plan_run(p3, NULL, outs), FLOE_OK);
        assert_true(et_scalar(outs[0]) == 1.0f);
        assert_true(et_scalar(outs[1]) == 2.0f);
        floe_tensor_unref(outs[0]);
        floe_tensor_unref(outs[1]);
    }
    /* Another session makes its own kernel instance, destroyed with it. */
    assert_int_equal(floe_session_new(f->g, NULL, &s2), FLOE_OK);
    floe_tensor_unref(et_run1(s2, fa));
    assert_int_equal(et_ticks(f->ctx, ET_CREATE), created + 2);
    floe_session_free(s2);
    assert_int_equal(et_ticks(f->ctx, ET_DESTROY), destroyed + 1);
}

static void run_targets_run_for_side_effects(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 1, -1, 5);
    floe_node *b = et_const(f->g, "b", 1, -1, 6);
    floe_node_builder *bb = et_builder(f->g, "ExConst", "after");
    floe_node_builder_add_control_input(bb, b);
    floe_node *after = et_finish(bb);
    long a0 = et_ticks(f->ctx, 5), b0 = et_ticks(f->ctx, 6);

    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, NULL, 0, &a, 1, NULL), FLOE_OK);
    assert_int_equal(et_ticks(f->ctx, 5), a0 + 1);
    /* A control input runs before its dependent, without being fetched. */
    floe_tensor_unref(et_run1(f->s, floe_out(after, 0)));
    assert_int_equal(et_ticks(f->ctx, 6), b0 + 1);
    /* Nothing to do is fine. */
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, NULL, 0, NULL, 0, NULL), FLOE_OK);
}

static void run_validates_feeds(void **state) {
    fixture *f = *state;
    int64_t dims[2] = {-1, 3};
    floe_node *p = et_placeholder(f->g, "p", FLOE_DTYPE_F32, dims, 2);
    floe_node *q = et_op1(f->g, "ExDevPass", "q", floe_out(p, 0));
    floe_output feed = floe_out(p, 0), fetch = floe_out(q, 0);
    floe_tensor *out = (floe_tensor *)&out;
    int64_t good[2] = {5, 3}, bad[2] = {2, 4};
    floe_tensor *tgood = tc_f32(good, 2, NULL), *tbad = tc_f32(bad, 2, NULL);
    floe_tensor *ti = tc_scalar_i32(1), *tnull = NULL;

    assert_int_equal(floe_session_run(f->s, &feed, &ti, 1, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("feed 0 ('p:0') has dtype i32, expected f32");
    assert_int_equal(floe_session_run(f->s, &feed, &tbad, 1, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("feed 0 ('p:0') has shape [2, 4], expected [-1, 3]");
    assert_int_equal(floe_session_run(f->s, &feed, &ti, 1, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_session_run(f->s, &feed, &tnull, 1, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("is NULL");
    assert_int_equal(floe_session_run(f->s, &feed, &tgood, 1, &fetch, 1, NULL, 0, &out), FLOE_OK);
    floe_tensor *host = NULL;
    assert_int_equal(floe_tensor_to_host(out, &host), FLOE_OK);
    assert_int_equal(floe_tensor_dim(host, 0), 5);
    floe_tensor_unref(host);
    floe_tensor_unref(out);
    floe_tensor_unref(tgood);
    floe_tensor_unref(tbad);
    floe_tensor_unref(ti);
}

static void run_unfed_placeholder_names_the_node(void **state) {
    fixture *f = *state;
    floe_node *p = et_placeholder(f->g, "input", FLOE_DTYPE_F32, NULL, -1);
    floe_node *q = et_op1(f->g, "ExIncr", "q", floe_out(p, 0));
    floe_tensor *out = (floe_tensor *)&out;
    floe_output fetch = floe_out(q, 0);

    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("node 'input' (ExPlaceholder): placeholder 'input' must be fed");
}

static void prepare_validates_the_signature(void **state) {
    fixture *f = *state;
    floe_graph *g2 = NULL;
    floe_node *a = et_const(f->g, "a", 1, -1, 0);
    floe_plan *p = (floe_plan *)&p;

    assert_int_equal(floe_graph_new(f->ctx, &g2), FLOE_OK);
    floe_node *alien = et_const(g2, "alien", 1, -1, 0);
    floe_output bad_index = floe_out(a, 1), alien_out = floe_out(alien, 0), ok = floe_out(a, 0);
    floe_output twice[2] = {ok, ok};

    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &bad_index, 1, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    assert_null(p);
    tc_assert_error_contains("fetch 0: node 'a' (ExConst) has no output 1");
    assert_int_equal(floe_session_prepare(f->s, &alien_out, 1, &ok, 1, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("feed 0: node 'alien' belongs to another graph");
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, NULL, 0, &alien, 1, &p),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("target 0: node 'alien' belongs to another graph");
    assert_int_equal(floe_session_prepare(f->s, twice, 2, &ok, 1, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("output 'a:0' is fed twice");
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, NULL, 1, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_session_prepare(NULL, NULL, 0, NULL, 0, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, NULL, 0, NULL, 0, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_plan_run(NULL, NULL, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, &ok, 1, NULL, 0, NULL),
                     FLOE_INVALID_ARGUMENT);
    /* The same output fetched twice gives two references to one tensor. */
    floe_tensor *outs[2] = {NULL, NULL};
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, twice, 2, NULL, 0, outs), FLOE_OK);
    assert_ptr_equal(outs[0], outs[1]);
    floe_tensor_unref(outs[0]);
    floe_tensor_unref(outs[1]);
    assert_int_equal(floe_plan_num_nodes(NULL), 0);
    floe_graph_free(g2);
}

/* ---- Placement --------------------------------------------------------------------- */

static floe_node *devpass_on(floe_graph *g, const char *name, floe_output in, const char *dev) {
    floe_node_builder *b = et_builder(g, "ExDevPass", name);
    floe_node_builder_add_input(b, in);
    if (dev != NULL)
        floe_node_builder_set_device(b, dev);
    return et_finish(b);
}

static const char *device_of(floe_session *s, floe_node *n) {
    floe_plan *p = NULL;
    floe_output o = floe_out(n, 0);
    assert_int_equal(floe_session_prepare(s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_OK);
    for (int i = 0; i < floe_plan_num_nodes(p); i++)
        if (strcmp(floe_plan_node_name(p, i), floe_node_name(n)) == 0)
            return floe_plan_node_device(p, i);
    fail_msg("node %s not in its plan", floe_node_name(n));
    return NULL;
}

static void placement_prefers_priority_and_obeys_constraints(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 1, -1, 0);
    floe_node *any = devpass_on(f->g, "any", floe_out(a, 0), NULL);
    floe_node *cpu = devpass_on(f->g, "cpu", floe_out(a, 0), "/device:CPU:0");
    floe_node *td1 = devpass_on(f->g, "td1", floe_out(a, 0), "TESTDEV:1");
    floe_node *lh = devpass_on(f->g, "lh", floe_out(a, 0), "/job:localhost/replica:0/task:0/cpu:0");

    assert_string_equal(device_of(f->s, a), "/device:CPU:0");
    assert_string_equal(device_of(f->s, any), "/device:TESTDEV:0");
    assert_string_equal(device_of(f->s, cpu), "/device:CPU:0");
    assert_string_equal(device_of(f->s, td1), "/device:TESTDEV:1");
    assert_string_equal(device_of(f->s, lh), "/device:CPU:0");
}

static void placement_errors_name_the_node(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 1, -1, 0);
    floe_node *gpu = devpass_on(f->g, "gpu", floe_out(a, 0), "/device:GPU:0");
    floe_node *worker = devpass_on(f->g, "worker", floe_out(a, 0), "/job:worker/device:CPU:0");
    floe_node_builder *b = et_builder(f->g, "ExConst", "ctd");
    floe_node_builder_set_device(b, "/device:TESTDEV:0");
    floe_node *ctd = et_finish(b);
    floe_plan *p = (floe_plan *)&p;
    floe_output o;

    o = floe_out(gpu, 0);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_INVALID_ARGUMENT);
    assert_null(p);
    tc_assert_error_contains("node 'gpu' (ExDevPass): no device matches '/device:GPU:0'");
    o = floe_out(worker, 0);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("node 'worker' (ExDevPass): no device matches");
    o = floe_out(ctd, 0);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains(
        "node 'ctd' (ExConst): no kernel for a device matching '/device:TESTDEV:0' (kernels for: CPU)");
    /* A failed prepare leaves the session usable. */
    o = floe_out(a, 0);
    floe_tensor_unref(et_run1(f->s, o));
}

typedef struct log_capture {
    char text[4096];
    int lines;
} log_capture;

static void capture_log(void *arg, floe_log_level level, const char *msg) {
    log_capture *c = arg;
    size_t n = strlen(c->text);
    snprintf(c->text + n, sizeof(c->text) - n, "%d|%s\n", (int)level, msg);
    c->lines++;
}

static void placement_is_logged_when_asked(void **state) {
    log_capture cap;
    memset(&cap, 0, sizeof(cap));
    floe_context *ctx = et_context_full(0, capture_log, &cap);
    floe_graph *g = NULL;
    floe_session *s = NULL, *quiet = NULL;
    floe_session_options o;

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *a = et_const(g, "a", 1, -1, 0);
    floe_node *p = devpass_on(g, "p", floe_out(a, 0), NULL);
    floe_session_options_init(&o);
    o.log_device_placement = 1;
    assert_int_equal(floe_session_new(g, &o, &s), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &quiet), FLOE_OK);
    floe_tensor_unref(et_run1(quiet, floe_out(p, 0)));
    assert_int_equal(cap.lines, 0);
    floe_tensor_unref(et_run1(s, floe_out(p, 0)));
    assert_int_equal(cap.lines, 2);
    assert_non_null(strstr(cap.text, "1|node 'a' (ExConst) -> /device:CPU:0\n"));
    assert_non_null(strstr(cap.text, "1|node 'p' (ExDevPass) -> /device:TESTDEV:0\n"));
    /* Logged once per plan, not per run. */
    floe_tensor_unref(et_run1(s, floe_out(p, 0)));
    assert_int_equal(cap.lines, 2);
    floe_session_free(s);
    floe_session_free(quiet);
    floe_graph_free(g);
    floe_context_free(ctx);
}

static void executor_copies_across_devices(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 3, 4, 0);
    floe_node *td = devpass_on(f->g, "td", floe_out(a, 0), NULL);
    floe_node *sum = et_add(f->g, "sum", floe_out(td, 0), floe_out(a, 0), 0);
    long to0 = et_ticks(f->ctx, ET_COPY_TO), from0 = et_ticks(f->ctx, ET_COPY_FROM);
    const float six[4] = {6, 6, 6, 6}, three[4] = {3, 3, 3, 3};

    floe_tensor *t = et_run1(f->s, floe_out(sum, 0));
    tc_assert_close_f32(t, six, 4, 0, 0);
    floe_tensor_unref(t);
    assert_int_equal(et_ticks(f->ctx, ET_COPY_TO), to0 + 1);
    assert_int_equal(et_ticks(f->ctx, ET_COPY_FROM), from0 + 1);
    /* A fetched device tensor stays on its device. */
    t = et_run1(f->s, floe_out(td, 0));
    assert_non_null(floe_tensor_device(t));
    assert_null(floe_tensor_data(t));
    floe_tensor *host = NULL;
    assert_int_equal(floe_tensor_to_host(t, &host), FLOE_OK);
    tc_assert_close_f32(host, three, 4, 0, 0);
    floe_tensor_unref(host);
    floe_tensor_unref(t);
}

static void executor_keeps_host_memory_args_on_the_host(void **state) {
    fixture *f = *state;
    floe_node *a = et_const(f->g, "a", 3, 2, 0);
    floe_node *n = et_placeholder(f->g, "n", FLOE_DTYPE_I64, NULL, 0);
    floe_node_builder *b = et_builder(f->g, "ExHostArg", "h");
    floe_node_builder_add_input(b, floe_out(a, 0));
    floe_node_builder_add_input(b, floe_out(n, 0));
    floe_node *h = et_finish(b);
    floe_node *back = et_op1(f->g, "ExIncr", "back", floe_out(h, 0));
    floe_tensor *nv = tc_i64(NULL, 0, (int64_t[]){7}), *out = NULL;
    floe_output feed = floe_out(n, 0), fetch = floe_out(back, 0);
    const float four[2] = {4, 4};

    assert_string_equal(device_of(f->s, a), "/device:CPU:0");
    assert_int_equal(floe_session_run(f->s, &feed, &nv, 1, &fetch, 1, NULL, 0, &out), FLOE_OK);
    tc_assert_close_f32(out, four, 2, 0, 0);
    floe_tensor_unref(out);
    floe_tensor_unref(nv);
}

/* ---- Eager calls (ops_math) ---------------------------------------------------------- */

static void eager_runs_one_op(void **state) {
    floe_context *ctx = tc_context();
    const float x[3] = {1, 2, 3}, y[3] = {10, 20, 30}, z[3] = {11, 22, 33};
    int64_t dims[1] = {3};
    floe_tensor *a = tc_f32(dims, 1, x), *b = tc_f32(dims, 1, y);
    floe_tensor *in[2] = {a, b}, *out = (floe_tensor *)&out;

    assert_int_equal(floe_eager_run(ctx, "AddV2", NULL, in, 2, NULL, &out, 1), FLOE_OK);
    tc_assert_close_f32(out, z, 3, 0, 0);
    floe_tensor_unref(out);
    assert_int_equal(floe_eager_run(ctx, "AddV2", "CPU:0", in, 2, NULL, &out, 1), FLOE_OK);
    floe_tensor_unref(out);
    /* Wrong output count, unknown op, bad device, bad arity. */
    floe_tensor *two[2] = {NULL, NULL};
    assert_int_equal(floe_eager_run(ctx, "AddV2", NULL, in, 2, NULL, two, 2), FLOE_INVALID_ARGUMENT);
    assert_null(two[0]);
    tc_assert_error_contains("the op has 1 outputs, 2 asked");
    assert_int_equal(floe_eager_run(ctx, "NoSuchOp", NULL, in, 2, NULL, &out, 1), FLOE_NOT_FOUND);
    assert_null(out);
    assert_int_equal(floe_eager_run(ctx, "AddV2", "/device:GPU:7", in, 2, NULL, &out, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("no device matches '/device:GPU:7'");
    assert_int_equal(floe_eager_run(ctx, "AddV2", NULL, in, 1, NULL, &out, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_eager_run(NULL, "AddV2", NULL, in, 2, NULL, &out, 1), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_context_free(ctx);
}

static void eager_regroups_list_inputs(void **state) {
    floe_context *ctx = tc_context();
    floe_tensor *in[3] = {tc_scalar_f32(1), tc_scalar_f32(2), tc_scalar_f32(4)};
    floe_tensor *out = NULL;
    const float packed[3] = {1, 2, 4}, joined[6] = {1, 2, 4, 1, 2, 4};

    /* One list argument takes every input. */
    assert_int_equal(floe_eager_run(ctx, "Pack", NULL, in, 3, NULL, &out, 1), FLOE_OK);
    tc_assert_close_f32(out, packed, 3, 0, 0);
    /* A list followed by a plain argument: the list takes what the axis leaves. */
    floe_tensor *axis = tc_scalar_i32(0);
    floe_tensor *cat_in[3] = {out, out, axis}, *cat = NULL;
    assert_int_equal(floe_eager_run(ctx, "ConcatV2", NULL, cat_in, 3, NULL, &cat, 1), FLOE_OK);
    tc_assert_close_f32(cat, joined, 6, 0, 0);
    floe_tensor_unref(cat);
    /* A length attr that disagrees with the inputs is reported. */
    floe_attrs *attrs = NULL;
    assert_int_equal(floe_attrs_new(&attrs), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(attrs, "N", 3), FLOE_OK);
    assert_int_equal(floe_eager_run(ctx, "ConcatV2", NULL, cat_in, 3, attrs, &cat, 1),
                     FLOE_INVALID_ARGUMENT);
    assert_null(cat);
    tc_assert_error_contains("takes 4 inputs, got 3");
    floe_attrs_free(attrs);
    floe_tensor_unref(axis);
    floe_tensor_unref(out);
    for (int i = 0; i < 3; i++)
        floe_tensor_unref(in[i]);
    floe_context_free(ctx);
}

/* ---- Out of memory ------------------------------------------------------------------ */

#define TRY(x)                                                                             \
    do {                                                                                   \
        st = (x);                                                                          \
        if (st != FLOE_OK)                                                                 \
            goto done;                                                                     \
    } while (0)

/* Builds and runs a small graph touching builders, shape functions, placement, kernel
 * creation, cross-device copies and the run cache, checking every status. */
static floe_status build_and_run(floe_context *ctx, float *result) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node_builder *b = NULL;
    floe_node *c = NULL, *inc = NULL, *dev = NULL, *sum = NULL;
    floe_tensor *out = NULL;
    floe_status st;

    *result = 0;
    TRY(floe_graph_new(ctx, &g));
    TRY(floe_node_builder_new(g, "ExConst", "c", &b));
    TRY(floe_attrs_set_float(floe_node_builder_attrs(b), "value", 2));
    TRY(floe_attrs_set_int(floe_node_builder_attrs(b), "n", 3));
    st = floe_node_builder_finish(b, &c);
    b = NULL;
    TRY(st);
    TRY(floe_node_builder_new(g, "ExIncr", NULL, &b));
    floe_node_builder_add_input(b, floe_out(c, 0));
    st = floe_node_builder_finish(b, &inc);
    b = NULL;
    TRY(st);
    TRY(floe_node_builder_new(g, "ExDevPass", "dev", &b));
    floe_node_builder_add_input(b, floe_out(inc, 0));
    st = floe_node_builder_finish(b, &dev);
    b = NULL;
    TRY(st);
    TRY(floe_node_builder_new(g, "ExAdd", "sum", &b));
    floe_node_builder_add_input(b, floe_out(dev, 0));
    floe_node_builder_add_input(b, floe_out(c, 0));
    st = floe_node_builder_finish(b, &sum);
    b = NULL;
    TRY(st);
    TRY(floe_session_new(g, NULL, &s));
    floe_output fetch = floe_out(sum, 0);
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(out);
        out = NULL;
        TRY(floe_session_run(s, NULL, NULL, 0, &fetch, 1, NULL, 0, &out));
    }
    *result = ((const float *)floe_tensor_data(out))[2];
done:
    floe_tensor_unref(out);
    floe_node_builder_free(b);
    floe_session_free(s);
    floe_graph_free(g);
    return st;
}

static void oom_anywhere_is_reported_and_leaks_nothing(void **state) {
    floe_context *ctx = et_context(1);
    float v = 0;

    assert_int_equal(build_and_run(ctx, &v), FLOE_OK);
    assert_true(v == 5.0f);
    for (int persistent = 0; persistent <= 1; persistent++) {
        int64_t n;
        for (n = 1; n < 10000; n++) {
            floe_testing_fail_alloc(n, persistent);
            floe_status st = build_and_run(ctx, &v);
            int64_t failed = floe_testing_alloc_failures();
            floe_testing_fail_alloc(0, 0);
            if (st == FLOE_OK) {
                assert_true(v == 5.0f);
                if (failed == 0)
                    break;
            } else if (st != FLOE_RESOURCE_EXHAUSTED) {
                fail_msg("allocation %lld failing gave %s: %s", (long long)n, floe_status_str(st),
                         floe_last_error());
            }
        }
        assert_true(n > 20);
        assert_true(n < 10000);
    }
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(session_new_validates_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(run_prunes_what_fetches_do_not_need, setup, teardown),
        cmocka_unit_test_setup_teardown(run_feed_replaces_an_output_and_cuts_the_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(run_node_with_one_output_fed_still_runs_for_the_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(prepare_reuses_plans_and_kernels, setup, teardown),
        cmocka_unit_test_setup_teardown(run_targets_run_for_side_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(run_validates_feeds, setup, teardown),
        cmocka_unit_test_setup_teardown(run_unfed_placeholder_names_the_node, setup, teardown),
        cmocka_unit_test_setup_teardown(prepare_validates_the_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(placement_prefers_priority_and_obeys_constraints, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(placement_errors_name_the_node, setup, teardown),
        cmocka_unit_test(placement_is_logged_when_asked),
        cmocka_unit_test_setup_teardown(executor_copies_across_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(executor_keeps_host_memory_args_on_the_host, setup, teardown),
        cmocka_unit_test(eager_runs_one_op),
        cmocka_unit_test(eager_regroups_list_inputs),
        cmocka_unit_test(oom_anywhere_is_reported_and_leaks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
