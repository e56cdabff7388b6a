/*
 * test_variables.c - resource handles and variables: values persisting across runs,
 * per-session resource managers, copy on write for readers, handles from another
 * session, conflicting declarations, colocation of a variable's users, concurrent
 * updates; first with floe_exectest's variable ops, then with ops_math's
 * VarHandleOp / AssignVariableOp / ReadVariableOp / AssignAddVariableOp.
 */
#include "test_common.h"
#include "exec_test_util.h"

#include <pthread.h>

typedef struct fixture {
    floe_context *ctx;
    floe_graph *g;
    floe_session *s;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    f->ctx = et_context(2);
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

static floe_node *handle(floe_graph *g, const char *name, const char *shared, floe_dtype dt,
                         const char *device) {
    floe_node_builder *b = et_builder(g, "ExVarHandle", name);
    int64_t dims[1] = {3};
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, 1);
    floe_attrs_set_string(floe_node_builder_attrs(b), "shared_name", shared, strlen(shared));
    if (device != NULL)
        floe_node_builder_set_device(b, device);
    return et_finish(b);
}

static floe_node *assign(floe_graph *g, const char *name, floe_node *h, floe_output value) {
    floe_node_builder *b = et_builder(g, "ExVarAssign", name);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node_builder_add_input(b, value);
    return et_finish(b);
}

static floe_node *read_var(floe_graph *g, const char *name, floe_node *h, floe_dtype dt) {
    floe_node_builder *b = et_builder(g, "ExVarRead", name);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    return et_finish(b);
}

static void run_target(floe_session *s, floe_node *t) {
    floe_status st = floe_session_run(s, NULL, NULL, 0, NULL, 0, &t, 1, NULL);
    if (st != FLOE_OK)
        fail_msg("run %s: %s", floe_node_name(t), floe_last_error());
}

static void expect_all(const floe_tensor *t, float v) {
    float e[3] = {v, v, v};
    tc_assert_close_f32(t, e, 3, 0, 0);
}

static void variables_persist_across_runs(void **state) {
    fixture *f = *state;
    floe_node *h = handle(f->g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *two = et_const(f->g, "two", 2, 3, 0);
    floe_node *init = assign(f->g, "init", h, floe_out(two, 0));
    floe_node *rd = read_var(f->g, "rd", h, FLOE_DTYPE_F32);
    floe_node_builder *b = et_builder(f->g, "ExVarAddOne", "inc");
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node *inc = et_finish(b);
    floe_output o = floe_out(rd, 0);
    floe_tensor *t = NULL;

    /* Never created: the read names the variable. */
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, &o, 1, NULL, 0, &t), FLOE_NOT_FOUND);
    tc_assert_error_contains("node 'rd' (ExVarRead): variable 'w' (container '') does not exist");
    run_target(f->s, init);
    t = et_run1(f->s, o);
    expect_all(t, 2);
    /* The reader's tensor keeps its values through later in-place updates. */
    run_target(f->s, inc);
    run_target(f->s, inc);
    expect_all(t, 2);
    floe_tensor_unref(t);
    t = et_run1(f->s, o);
    expect_all(t, 4);
    floe_tensor_unref(t);
    /* Unshared, the update happens in place (no copy): the value stays correct too. */
    run_target(f->s, inc);
    t = et_run1(f->s, o);
    expect_all(t, 5);
    floe_tensor_unref(t);

    /* Another session has its own variables. */
    floe_session *s2 = NULL;
    assert_int_equal(floe_session_new(f->g, NULL, &s2), FLOE_OK);
    assert_int_equal(floe_session_run(s2, NULL, NULL, 0, &o, 1, NULL, 0, &t), FLOE_NOT_FOUND);
    floe_session_free(s2);
}

static void handles_from_another_session_are_rejected(void **state) {
    fixture *f = *state;
    floe_node *h = handle(f->g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *two = et_const(f->g, "two", 2, 3, 0);
    floe_node *init = assign(f->g, "init", h, floe_out(two, 0));
    floe_node *rd = read_var(f->g, "rd", h, FLOE_DTYPE_F32);
    floe_output ho = floe_out(h, 0), ro = floe_out(rd, 0);
    floe_session *s2 = NULL;
    floe_tensor *handle_t = NULL, *t = NULL;

    run_target(f->s, init);
    handle_t = et_run1(f->s, ho);
    assert_int_equal(floe_tensor_dtype(handle_t), FLOE_DTYPE_RESOURCE);
    assert_int_equal(floe_tensor_ndim(handle_t), 0);
    /* Fed back into its own session, it names the variable. */
    assert_int_equal(floe_session_run(f->s, &ho, &handle_t, 1, &ro, 1, NULL, 0, &t), FLOE_OK);
    expect_all(t, 2);
    floe_tensor_unref(t);
    assert_int_equal(floe_session_new(f->g, NULL, &s2), FLOE_OK);
    assert_int_equal(floe_session_run(s2, &ho, &handle_t, 1, &ro, 1, NULL, 0, &t),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("node 'rd' (ExVarRead): resource handle does not belong to this session");
    /* Even once its session is gone. */
    floe_session_free(f->s);
    f->s = NULL;
    assert_int_equal(floe_session_run(s2, &ho, &handle_t, 1, &ro, 1, NULL, 0, &t),
                     FLOE_INVALID_ARGUMENT);
    floe_session_free(s2);
    floe_tensor_unref(handle_t);
}

static void conflicting_declarations_are_errors(void **state) {
    fixture *f = *state;
    floe_node *h = handle(f->g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *h64 = handle(f->g, "h64", "w", FLOE_DTYPE_F64, NULL);
    floe_node *two = et_const(f->g, "two", 2, 3, 0);
    floe_node *init = assign(f->g, "init", h, floe_out(two, 0));
    floe_output o = floe_out(h64, 0);
    floe_tensor *t = NULL;

    run_target(f->s, init);
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, &o, 1, NULL, 0, &t),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("node 'h64' (ExVarHandle): resource 'w' in container '' was declared with dtype f32");

    /* Assigning a value of another dtype. */
    floe_node *h2 = handle(f->g, "h2", "v2", FLOE_DTYPE_F64, NULL);
    floe_node *bad = assign(f->g, "bad", h2, floe_out(two, 0));
    floe_node *targets[1] = {bad};
    assert_int_equal(floe_session_run(f->s, NULL, NULL, 0, NULL, 0, targets, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("node 'bad' (ExVarAssign): variable 'v2' has dtype f64; cannot assign f32");
}

static const char *device_in_plan(floe_plan *p, const char *name) {
    for (int i = 0; i < floe_plan_num_nodes(p); i++)
        if (strcmp(floe_plan_node_name(p, i), name) == 0)
            return floe_plan_node_device(p, i);
    fail_msg("%s not in plan", name);
    return NULL;
}

static void users_of_a_variable_share_its_device(void **state) {
    fixture *f = *state;
    floe_plan *p = NULL;

    /* Handle and reader both have TESTDEV kernels: the group goes there. */
    floe_node *h = handle(f->g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *rd = read_var(f->g, "rd", h, FLOE_DTYPE_F32);
    floe_output o = floe_out(rd, 0);
    assert_int_equal(floe_session_prepare(f->s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_OK);
    assert_string_equal(device_in_plan(p, "h"), "/device:TESTDEV:0");
    assert_string_equal(device_in_plan(p, "rd"), "/device:TESTDEV:0");

    /* Another variable with a CPU-only updater anywhere in the graph: all on CPU, even
     * in a plan that does not run the updater. */
    floe_graph *g = NULL;
    floe_session *s = NULL;
    assert_int_equal(floe_graph_new(f->ctx, &g), FLOE_OK);
    floe_node *h2 = handle(g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *rd2 = read_var(g, "rd", h2, FLOE_DTYPE_F32);
    floe_node *two = et_const(g, "two", 2, 3, 0);
    assign(g, "init", h2, floe_out(two, 0));
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    o = floe_out(rd2, 0);
    assert_int_equal(floe_session_prepare(s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_OK);
    assert_string_equal(device_in_plan(p, "h"), "/device:CPU:0");
    assert_string_equal(device_in_plan(p, "rd"), "/device:CPU:0");
    floe_session_free(s);

    /* A constraint no member can meet with the others fails, naming the node. */
    floe_node *h3 = handle(g, "h3", "w3", FLOE_DTYPE_F32, "/device:TESTDEV:1");
    assign(g, "init3", h3, floe_out(two, 0));
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    o = floe_out(h3, 0);
    assert_int_equal(floe_session_prepare(s, NULL, 0, &o, 1, NULL, 0, &p), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("node 'h3' (ExVarHandle): no device suits every node sharing its resource");
    floe_session_free(s);
    floe_graph_free(g);
}

typedef struct inc_arg {
    floe_session *s;
    floe_node *inc;
    int n, failures;
} inc_arg;

static void *inc_worker(void *p) {
    inc_arg *a = p;
    for (int i = 0; i < a->n; i++)
        if (floe_session_run(a->s, NULL, NULL, 0, NULL, 0, &a->inc, 1, NULL) != FLOE_OK)
            a->failures++;
    return NULL;
}

static void concurrent_updates_are_not_lost(void **state) {
    fixture *f = *state;
    floe_node *h = handle(f->g, "h", "w", FLOE_DTYPE_F32, NULL);
    floe_node *zero = et_const(f->g, "zero", 0, 3, 0);
    floe_node *init = assign(f->g, "init", h, floe_out(zero, 0));
    floe_node *rd = read_var(f->g, "rd", h, FLOE_DTYPE_F32);
    floe_node_builder *b = et_builder(f->g, "ExVarAddOne", "inc");
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node *inc = et_finish(b);
    pthread_t th[4];
    inc_arg args[4];

    run_target(f->s, init);
    for (int i = 0; i < 4; i++) {
        args[i] = (inc_arg){f->s, inc, 250, 0};
        assert_int_equal(pthread_create(&th[i], NULL, inc_worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    floe_tensor *t = et_run1(f->s, floe_out(rd, 0));
    expect_all(t, 1000);
    floe_tensor_unref(t);
}

/* ---- With ops_math --------------------------------------------------------------------- */

static floe_node *math_const(floe_graph *g, const char *name, floe_tensor *value) {
    floe_node_builder *b = et_builder(g, "Const", name);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", value);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(value));
    return et_finish(b);
}

static void ops_math_variables_train_in_place(void **state) {
    floe_context *ctx = tc_context();
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t dims[1] = {3};
    const float init_v[3] = {1, 2, 3}, step_v[3] = {0.5f, 0.5f, 0.5f};
    floe_tensor *init_t = tc_f32(dims, 1, init_v), *step_t = tc_f32(dims, 1, step_v);

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node_builder *b = et_builder(g, "VarHandleOp", "w");
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, 1);
    floe_node *w = et_finish(b);
    floe_node *c_init = math_const(g, "init_value", init_t);
    floe_node *c_step = math_const(g, "step", step_t);
    b = et_builder(g, "AssignVariableOp", "init");
    floe_node_builder_add_input(b, floe_out(w, 0));
    floe_node_builder_add_input(b, floe_out(c_init, 0));
    floe_node *init = et_finish(b);
    b = et_builder(g, "AssignAddVariableOp", "update");
    floe_node_builder_add_input(b, floe_out(w, 0));
    floe_node_builder_add_input(b, floe_out(c_step, 0));
    floe_node *update = et_finish(b);
    b = et_builder(g, "ReadVariableOp", "read");
    floe_node_builder_add_input(b, floe_out(w, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_node *rd = et_finish(b);

    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_output o = floe_out(rd, 0);
    floe_tensor *t = NULL;
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &o, 1, NULL, 0, &t),
                     FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("node 'read' (ReadVariableOp): ");
    tc_assert_error_contains("uninitialised");
    run_target(s, init);
    floe_tensor *before = et_run1(s, o);
    for (int i = 0; i < 4; i++)
        run_target(s, update);
    floe_tensor *after = et_run1(s, o);
    tc_assert_close_f32(before, init_v, 3, 0, 0);
    const float expect[3] = {3, 4, 5};
    tc_assert_close_f32(after, expect, 3, 0, 0);
    /* The Const's value was never written through the variable. */
    tc_assert_close_f32(init_t, init_v, 3, 0, 0);
    floe_tensor_unref(before);
    floe_tensor_unref(after);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(init_t);
    floe_tensor_unref(step_t);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(variables_persist_across_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(handles_from_another_session_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(conflicting_declarations_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(users_of_a_variable_share_its_device, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_updates_are_not_lost, setup, teardown),
        cmocka_unit_test(ops_math_variables_train_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
