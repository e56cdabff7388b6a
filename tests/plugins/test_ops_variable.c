/*
 * test_ops_variable.c - resource variables through sessions: VarHandleOp,
 * AssignVariableOp, ReadVariableOp, AssignAddVariableOp, AssignSubVariableOp.
 *
 * Values persist across runs of one session and start uninitialised in a fresh one;
 * reads keep the value they read while later updates change the variable; shared
 * names share a variable; dtype and shape mismatches and uninitialised reads fail with
 * messages naming what went wrong.
 */
#include "test_common.h"

#include <stdlib.h>
#include <string.h>

/* ---- Graph helpers ------------------------------------------------------------------------ */

static floe_node *var_handle(floe_graph *g, const char *name, const char *shared,
                             floe_dtype dt, const int64_t *shape, int ndim) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "VarHandleOp", name, &b), FLOE_OK);
    floe_attrs *a = floe_node_builder_attrs(b);
    if (shared != NULL)
        floe_attrs_set_string(a, "shared_name", shared, strlen(shared));
    floe_attrs_set_type(a, "dtype", dt);
    floe_attrs_set_shape(a, "shape", shape, ndim);
    return tc_finish(b);
}

static floe_node *constant(floe_graph *g, floe_dtype dt, const int64_t *shape, int ndim,
                           const void *data) {
    return tc_g_const(g, tc_tensor(dt, shape, ndim, data));
}

/* An op taking (handle, value): AssignVariableOp, AssignAdd..., AssignSub... */
static floe_node *update(floe_graph *g, const char *op, floe_node *h, floe_node *v) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node_builder_add_input(b, floe_out(v, 0));
    return tc_finish(b);
}

static floe_node *read_var(floe_graph *g, floe_node *h, floe_dtype dt) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "ReadVariableOp", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    return tc_finish(b);
}

static void run_target(floe_session *s, floe_node *n) {
    if (floe_session_run(s, NULL, NULL, 0, NULL, 0, &n, 1, NULL) != FLOE_OK)
        fail_msg("run %s: %s", floe_node_name(n), floe_last_error());
}

static floe_tensor *fetch(floe_session *s, floe_node *n) {
    floe_output f = floe_out(n, 0);
    floe_tensor *t = NULL;
    if (floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t) != FLOE_OK)
        fail_msg("fetch %s: %s", floe_node_name(n), floe_last_error());
    /* the cases read the value's bytes: a host copy of a GPU's */
    floe_tensor *h = tc_host(t);
    floe_tensor_unref(t);
    return h;
}

static void expect_f32(floe_session *s, floe_node *read, const float *want, int64_t n) {
    floe_tensor *t = fetch(s, read);
    tc_assert_close_f32(t, want, n, 0, 0);
    floe_tensor_unref(t);
}

/* The usual graph: v (f32 [2]) with assign, read, add and sub of constants. */
typedef struct var_graph {
    floe_graph *g;
    floe_node *h, *assign, *read, *add, *sub;
} var_graph;

static var_graph make_var_graph(floe_context *ctx) {
    var_graph vg;
    int64_t shape[1] = {2};
    float init[2] = {1, 2}, delta[2] = {10, 20}, small[2] = {0.5f, 0.25f};

    assert_int_equal(floe_graph_new(ctx, &vg.g), FLOE_OK);
    vg.h = var_handle(vg.g, "v", NULL, FLOE_DTYPE_F32, shape, 1);
    vg.assign = update(vg.g, "AssignVariableOp", vg.h,
                       constant(vg.g, FLOE_DTYPE_F32, shape, 1, init));
    vg.read = read_var(vg.g, vg.h, FLOE_DTYPE_F32);
    vg.add = update(vg.g, "AssignAddVariableOp", vg.h,
                    constant(vg.g, FLOE_DTYPE_F32, shape, 1, delta));
    vg.sub = update(vg.g, "AssignSubVariableOp", vg.h,
                    constant(vg.g, FLOE_DTYPE_F32, shape, 1, small));
    return vg;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static void variable_values_persist_across_runs(void **state) {
    var_graph vg = make_var_graph(*state);
    floe_session *s = NULL;

    assert_int_equal(floe_node_output_dtype(vg.h, 0), FLOE_DTYPE_RESOURCE);
    assert_int_equal(floe_node_output_shape(vg.h, 0).ndim, 0);
    assert_int_equal(floe_session_new(vg.g, NULL, &s), FLOE_OK);
    run_target(s, vg.assign);
    expect_f32(s, vg.read, (float[]){1, 2}, 2);
    run_target(s, vg.add);
    expect_f32(s, vg.read, (float[]){11, 22}, 2);
    run_target(s, vg.add);
    expect_f32(s, vg.read, (float[]){21, 42}, 2);
    run_target(s, vg.sub);
    expect_f32(s, vg.read, (float[]){20.5f, 41.75f}, 2);
    run_target(s, vg.assign);
    expect_f32(s, vg.read, (float[]){1, 2}, 2);
    floe_session_free(s);
    floe_graph_free(vg.g);
}

static void variable_uninitialised_read_fails_naming_it(void **state) {
    var_graph vg = make_var_graph(*state);
    floe_session *s = NULL;
    floe_output f = floe_out(vg.read, 0);
    floe_tensor *t = NULL;
    floe_node *add = vg.add;

    assert_int_equal(floe_session_new(vg.g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t),
                     FLOE_FAILED_PRECONDITION);
    assert_null(t);
    tc_assert_error_contains("'v'");
    tc_assert_error_contains("uninitialised");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &add, 1, NULL),
                     FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("'v'");
    /* A second session over the same graph has its own, uninitialised, variable. */
    run_target(s, vg.assign);
    floe_session *s2 = NULL;
    assert_int_equal(floe_session_new(vg.g, NULL, &s2), FLOE_OK);
    assert_int_equal(floe_session_run(s2, NULL, NULL, 0, &f, 1, NULL, 0, &t),
                     FLOE_FAILED_PRECONDITION);
    expect_f32(s, vg.read, (float[]){1, 2}, 2);
    floe_session_free(s2);
    floe_session_free(s);
    floe_graph_free(vg.g);
}

static void variable_read_value_survives_updates(void **state) {
    var_graph vg = make_var_graph(*state);
    floe_session *s = NULL;
    floe_tensor *before;
    float want[2] = {1, 2};

    assert_int_equal(floe_session_new(vg.g, NULL, &s), FLOE_OK);
    run_target(s, vg.assign);
    before = fetch(s, vg.read);
    run_target(s, vg.add);
    tc_assert_close_f32(before, want, 2, 0, 0);
    expect_f32(s, vg.read, (float[]){11, 22}, 2);
    floe_tensor_unref(before);
    /* The constant that initialised v was not changed by the in-place add either. */
    run_target(s, vg.assign);
    expect_f32(s, vg.read, want, 2);
    floe_session_free(s);
    floe_graph_free(vg.g);
}

static void variable_shared_name_shares_value(void **state) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t shape[1] = {3};
    int32_t init[3] = {1, 2, 3}, delta[3] = {5, 5, 5};
    floe_node *h1, *h2, *h3, *assign, *add, *read2, *read3;
    floe_tensor *t;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    h1 = var_handle(g, "a", "counter", FLOE_DTYPE_I32, shape, 1);
    h2 = var_handle(g, "b", "counter", FLOE_DTYPE_I32, shape, 1);
    h3 = var_handle(g, "counter", NULL, FLOE_DTYPE_I32, shape, 1);  /* node name */
    assign = update(g, "AssignVariableOp", h1, constant(g, FLOE_DTYPE_I32, shape, 1, init));
    add = update(g, "AssignAddVariableOp", h2, constant(g, FLOE_DTYPE_I32, shape, 1, delta));
    read2 = read_var(g, h2, FLOE_DTYPE_I32);
    read3 = read_var(g, h3, FLOE_DTYPE_I32);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    run_target(s, assign);
    run_target(s, add);
    t = fetch(s, read2);
    assert_memory_equal(floe_tensor_data(t), ((int32_t[]){6, 7, 8}), 12);
    floe_tensor_unref(t);
    t = fetch(s, read3);
    assert_memory_equal(floe_tensor_data(t), ((int32_t[]){6, 7, 8}), 12);
    floe_tensor_unref(t);
    floe_session_free(s);
    floe_graph_free(g);
}

static void variable_dtype_mismatches_fail(void **state) {
    var_graph vg = make_var_graph(*state);
    floe_session *s = NULL;
    int64_t shape[1] = {2};
    double d[2] = {1, 2};
    floe_node *read64 = read_var(vg.g, vg.h, FLOE_DTYPE_F64);
    floe_node *assign64 = update(vg.g, "AssignVariableOp", vg.h,
                                 constant(vg.g, FLOE_DTYPE_F64, shape, 1, d));
    floe_node *add64 = update(vg.g, "AssignAddVariableOp", vg.h,
                              constant(vg.g, FLOE_DTYPE_F64, shape, 1, d));
    floe_output f = floe_out(read64, 0);
    floe_tensor *t = NULL;

    assert_int_equal(floe_session_new(vg.g, NULL, &s), FLOE_OK);
    run_target(s, vg.assign);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("f64");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &assign64, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dtype");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &add64, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    expect_f32(s, vg.read, (float[]){1, 2}, 2);
    floe_session_free(s);
    floe_graph_free(vg.g);
}

static void variable_shapes_checked_on_update(void **state) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t s2[1] = {2}, s3[1] = {3};
    float a2[2] = {1, 2}, a3[3] = {4, 5, 6};
    floe_node *h, *assign2, *assign3, *add3, *read, *h_strict, *strict2, *strict3;
    floe_node_builder *b = NULL;
    floe_tensor *t;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    h = var_handle(g, "v", NULL, FLOE_DTYPE_F32, NULL, -1);   /* any shape */
    assign2 = update(g, "AssignVariableOp", h, constant(g, FLOE_DTYPE_F32, s2, 1, a2));
    assign3 = update(g, "AssignVariableOp", h, constant(g, FLOE_DTYPE_F32, s3, 1, a3));
    add3 = update(g, "AssignAddVariableOp", h, constant(g, FLOE_DTYPE_F32, s3, 1, a3));
    read = read_var(g, h, FLOE_DTYPE_F32);
    h_strict = var_handle(g, "w", NULL, FLOE_DTYPE_F32, NULL, -1);
    strict2 = update(g, "AssignVariableOp", h_strict, constant(g, FLOE_DTYPE_F32, s2, 1, a2));
    assert_int_equal(floe_node_builder_new(g, "AssignVariableOp", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h_strict, 0));
    floe_node_builder_add_input(b, floe_out(constant(g, FLOE_DTYPE_F32, s3, 1, a3), 0));
    floe_attrs_set_bool(floe_node_builder_attrs(b), "validate_shape", 1);
    strict3 = tc_finish(b);

    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    run_target(s, assign2);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &add3, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[2]");
    tc_assert_error_contains("[3]");
    run_target(s, assign3);                      /* the handle allows a new shape */
    t = fetch(s, read);
    tc_assert_shape(t, FLOE_DTYPE_F32, s3, 1);
    floe_tensor_unref(t);
    run_target(s, add3);
    expect_f32(s, read, (float[]){8, 10, 12}, 3);
    run_target(s, strict2);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &strict3, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("validate_shape");
    floe_session_free(s);
    floe_graph_free(g);
}

/* A handle declared [2] refuses a [3] value; one declared [?] takes any length. */
static void variable_declared_shape_checked_on_assign(void **state) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t s2[1] = {2}, s3[1] = {3}, any[1] = {-1};
    float a3[3] = {4, 5, 6};
    floe_node *fixed, *open, *bad, *good;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    fixed = var_handle(g, "fixed", NULL, FLOE_DTYPE_F32, s2, 1);
    open = var_handle(g, "open", NULL, FLOE_DTYPE_F32, any, 1);
    bad = update(g, "AssignVariableOp", fixed, constant(g, FLOE_DTYPE_F32, s3, 1, a3));
    good = update(g, "AssignVariableOp", open, constant(g, FLOE_DTYPE_F32, s3, 1, a3));
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &bad, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("fixed");
    tc_assert_error_contains("declared with shape [2]");
    run_target(s, good);
    expect_f32(s, read_var(g, open, FLOE_DTYPE_F32), a3, 3);
    floe_session_free(s);
    floe_graph_free(g);
}

static void variable_large_update_in_place(void **state) {
    enum { n = 300000 };
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t shape[1] = {n};
    float *ones = malloc(n * sizeof(float));
    floe_node *h, *assign, *add, *read;
    floe_tensor *t;

    for (int i = 0; i < n; i++)
        ones[i] = (float)(i % 7);
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    h = var_handle(g, "big", NULL, FLOE_DTYPE_F32, shape, 1);
    assign = update(g, "AssignVariableOp", h, constant(g, FLOE_DTYPE_F32, shape, 1, ones));
    add = update(g, "AssignAddVariableOp", h, constant(g, FLOE_DTYPE_F32, shape, 1, ones));
    read = read_var(g, h, FLOE_DTYPE_F32);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    run_target(s, assign);
    for (int r = 0; r < 3; r++)
        run_target(s, add);
    t = fetch(s, read);
    for (int i = 0; i < n; i++)
        ones[i] *= 4;
    tc_assert_close_f32(t, ones, n, 0, 0);
    floe_tensor_unref(t);
    free(ones);
    floe_session_free(s);
    floe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(variable_values_persist_across_runs),
        cmocka_unit_test(variable_uninitialised_read_fails_naming_it),
        cmocka_unit_test(variable_read_value_survives_updates),
        cmocka_unit_test(variable_shared_name_shares_value),
        cmocka_unit_test(variable_dtype_mismatches_fail),
        cmocka_unit_test(variable_shapes_checked_on_update),
        cmocka_unit_test(variable_declared_shape_checked_on_assign),
        cmocka_unit_test(variable_large_update_in_place),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
