/*
 * test_gradients.c - floe_gradients and floe_gradient_check: unreachable xs, ops with
 * no gradient (an error naming the op, or blocking when flagged FLOE_OP_NO_GRADIENT),
 * fan-out summing, stopping at xs, given grad_ys, several ys, variables, argument
 * checks, node names, unknown extents, allocation failures, and the checker's own
 * argument checks.  Uses ops_math (and its gradients) and the floe_exectest plugin for
 * an op without a gradient.
 */
#include "exec_test_util.h"

#include <floe/experimental/testing.h>

#include <math.h>
#include <stdbool.h>

static floe_context *grad_context(void) {
    const char *dirs = getenv("FLOE_PLUGIN_PATH");
    const char *plugin = getenv("FLOE_EXECTEST_PLUGIN");
    char path[8192];
    floe_context_options o;
    floe_context *ctx = NULL;

    if (plugin == NULL)
        fail_msg("FLOE_EXECTEST_PLUGIN is not set (run through meson test)");
    snprintf(path, sizeof(path), "%s:%s", dirs != NULL ? dirs : "", plugin);
    floe_context_options_init(&o);
    o.plugin_path = path;
    o.system_plugins = 0;
    o.allow = "dev_cpu,exectest,ops_math";
    if (floe_context_new(&o, &ctx) != FLOE_OK)
        fail_msg("floe_context_new: %s", floe_last_error());
    return ctx;
}

static int setup(void **state) {
    *state = grad_context();
    return 0;
}

static int teardown(void **state) {
    floe_context_free(*state);
    return 0;
}

/* A node of @op with @n inputs (a list op takes them all as its list). */
static floe_node *node(floe_graph *g, const char *op, const char *name, const floe_output *in,
                       int n, bool list) {
    floe_node_builder *b;
    floe_node *out = NULL;
    assert_int_equal(floe_node_builder_new(g, op, name, &b), FLOE_OK);
    if (list)
        floe_node_builder_add_input_list(b, in, n);
    else
        for (int i = 0; i < n; i++)
            floe_node_builder_add_input(b, in[i]);
    if (floe_node_builder_finish(b, &out) != FLOE_OK)
        fail_msg("%s: %s", name, floe_last_error());
    return out;
}

static floe_node *placeholder(floe_graph *g, const char *name, floe_dtype dt, const int64_t *dims,
                              int ndim) {
    floe_node_builder *b;
    floe_node *out = NULL;
    assert_int_equal(floe_node_builder_new(g, "Placeholder", name, &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, ndim);
    assert_int_equal(floe_node_builder_finish(b, &out), FLOE_OK);
    return out;
}

static floe_output o0(floe_node *n) {
    return floe_out(n, 0);
}

static floe_node *constant_i32(floe_graph *g, const char *name, int32_t v) {
    floe_node_builder *b;
    floe_node *out = NULL;
    floe_tensor *t = tc_scalar_i32(v);
    assert_int_equal(floe_node_builder_new(g, "Const", name, &b), FLOE_OK);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", t);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_I32);
    assert_int_equal(floe_node_builder_finish(b, &out), FLOE_OK);
    floe_tensor_unref(t);
    return out;
}

/* x does not reach y: NULL gradient, no error, and no node added for it. */
static void test_unreachable_x(void **state) {
    floe_graph *g;
    floe_output dx[2];
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, NULL, 0);
    floe_node *b = placeholder(g, "b", FLOE_DTYPE_F32, NULL, 0);
    floe_node *y = node(g, "Neg", "y", (floe_output[]){o0(a)}, 1, false);
    int before = floe_graph_num_nodes(g);
    floe_output xs[2] = {o0(b), o0(b)};
    dx[0] = o0(a);
    dx[1] = o0(a);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, xs, 2, NULL, dx), FLOE_OK);
    assert_null(dx[0].node);
    assert_null(dx[1].node);
    assert_int_equal(floe_graph_num_nodes(g), before);
    floe_graph_free(g);
}

/* An op on the path without a gradient function: UNIMPLEMENTED naming op and node; the
 * graph stays usable. */
static void test_missing_gradient(void **state) {
    floe_graph *g;
    floe_output dx;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, NULL, 0);
    floe_node *s = node(g, "ExAdd", "my_add", (floe_output[]){o0(a), o0(a)}, 2, false);
    floe_node *y = s;
    dx = o0(y);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_UNIMPLEMENTED);
    tc_assert_error_contains("no gradient registered for op 'ExAdd' (node 'my_add')");
    assert_null(dx.node);
    /* Still usable: a gradient that avoids the op works. */
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, (floe_output[]){o0(s)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    assert_non_null(dx.node);
    floe_graph_free(g);
}

static void test_bad_arguments(void **state) {
    floe_graph *g, *g2;
    floe_output dx = {0};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_graph_new(*state, &g2), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, NULL, 0);
    floe_node *other = placeholder(g2, "a", FLOE_DTYPE_F32, NULL, 0);
    floe_node *i = placeholder(g, "i", FLOE_DTYPE_F64, NULL, 0);
    floe_output y = o0(a);
    assert_int_equal(floe_gradients(NULL, &y, 1, &y, 1, NULL, &dx), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradients(g, &y, 0, &y, 1, NULL, &dx), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradients(g, &y, 1, &y, 1, NULL, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradients(g, &y, 1, (floe_output[]){o0(other)}, 1, NULL, &dx),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("xs[0]");
    assert_int_equal(floe_gradients(g, &y, 1, (floe_output[]){floe_out(a, 3)}, 1, NULL, &dx),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradients(g, &y, 1, &y, 1, (floe_output[]){o0(i)}, &dx),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("grad_ys[0] is f64");
    assert_null(dx.node);
    floe_graph_free(g2);
    floe_graph_free(g);
}

/* y == x: the gradient is the seed (ones, or grad_ys). */
static void test_y_is_x(void **state) {
    floe_graph *g;
    floe_session *s;
    floe_output dx;
    floe_tensor *v = NULL;
    int64_t dims[1] = {3};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, dims, 1);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(a)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    assert_non_null(dx.node);
    assert_string_equal(floe_node_name(dx.node), "gradients/OnesLike");
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_tensor *in = tc_f32(dims, 1, (float[]){1, 2, 3});
    assert_int_equal(floe_session_run(s, (floe_output[]){o0(a)}, &in, 1, &dx, 1, NULL, 0, &v),
                     FLOE_OK);
    tc_assert_close_f32(v, (float[]){1, 1, 1}, 3, 0, 0);
    floe_tensor_unref(v);
    floe_tensor_unref(in);
    floe_session_free(s);
    floe_graph_free(g);
}


/* Runs @fetch with @a fed by the f32 values @v of shape @dims and returns the values. */
static floe_tensor *eval(floe_graph *g, floe_node *a, const int64_t *dims, int ndim,
                         const float *v, floe_output fetch) {
    floe_session *s;
    floe_tensor *out = NULL;
    floe_tensor *in = tc_f32(dims, ndim, v);
    floe_output feed = o0(a);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, &feed, &in, 1, &fetch, 1, NULL, 0, &out) != FLOE_OK)
        fail_msg("run: %s", floe_last_error());
    floe_session_free(s);
    floe_tensor_unref(in);
    return out;
}

static floe_node *unary(floe_graph *g, const char *op, const char *name, floe_node *x) {
    return node(g, op, name, (floe_output[]){o0(x)}, 1, false);
}

static floe_node *binary(floe_graph *g, const char *op, const char *name, floe_node *x,
                         floe_node *y) {
    return node(g, op, name, (floe_output[]){o0(x), o0(y)}, 2, false);
}

/* A gradient used several times is summed with AddN, named after the node. */
static void test_fan_out_sums(void **state) {
    floe_graph *g;
    floe_output dx;
    int64_t d[1] = {3};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, d, 1);
    floe_node *m = binary(g, "Mul", "m", a, a);
    floe_node *y = binary(g, "AddV2", "y", m, a);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    assert_string_equal(floe_node_op(dx.node), "AddN");
    assert_string_equal(floe_node_name(dx.node), "gradients/a_grad/AddN");
    assert_int_equal(floe_node_num_inputs(dx.node), 3);
    assert_non_null(floe_graph_find(g, "gradients/m_grad/Mul"));
    floe_tensor *v = eval(g, a, d, 1, (float[]){1, -2, 0.5f}, dx);
    tc_assert_close_f32(v, (float[]){3, -3, 2}, 3, 1e-6f, 0);
    floe_tensor_unref(v);
    /* A second call uses a fresh scope. */
    floe_output dx2;
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(m)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx2),
                     FLOE_OK);
    assert_non_null(floe_graph_find(g, "gradients_1/OnesLike"));
    assert_true(strncmp(floe_node_name(dx2.node), "gradients_1/", 12) == 0);
    floe_graph_free(g);
}

/* The walk stops at the xs: an intermediate x gets its own gradient, and an earlier x
 * gets the total derivative through it. */
static void test_stop_at_xs(void **state) {
    floe_graph *g;
    floe_output dx[2];
    int64_t d[1] = {2};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, d, 1);
    floe_node *b = unary(g, "Exp", "b", a);
    floe_node *y = unary(g, "Square", "y", b);
    int before = floe_graph_num_nodes(g);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, (floe_output[]){o0(b)}, 1, NULL,
                                    dx),
                     FLOE_OK);
    /* Exp's gradient was not built. */
    assert_null(floe_graph_find(g, "gradients/b_grad/Mul"));
    for (int i = before; i < floe_graph_num_nodes(g); i++)
        assert_null(strstr(floe_node_name(floe_graph_node(g, i)), "b_grad"));
    floe_tensor *v = eval(g, a, d, 1, (float[]){0, 1}, dx[0]);
    tc_assert_close_f32(v, (float[]){2, 2 * expf(1)}, 2, 1e-6f, 0);
    floe_tensor_unref(v);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                    (floe_output[]){o0(a), o0(b)}, 2, NULL, dx),
                     FLOE_OK);
    v = eval(g, a, d, 1, (float[]){0, 1}, dx[0]);
    tc_assert_close_f32(v, (float[]){2, 2 * expf(2)}, 2, 1e-6f, 0);
    floe_tensor_unref(v);
    v = eval(g, a, d, 1, (float[]){0, 1}, dx[1]);
    tc_assert_close_f32(v, (float[]){2, 2 * expf(1)}, 2, 1e-6f, 0);
    floe_tensor_unref(v);
    floe_graph_free(g);
}

/* grad_ys scale the seeds; several ys add up. */
static void test_grad_ys_and_several_ys(void **state) {
    floe_graph *g;
    floe_output dx;
    int64_t d[1] = {2};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, d, 1);
    floe_node *y1 = unary(g, "Square", "y1", a);
    floe_node *y2 = unary(g, "Neg", "y2", a);
    floe_node *w = unary(g, "Exp", "w", a);
    floe_output ys[2] = {o0(y1), o0(y2)};
    floe_output gys[2] = {o0(w), {0}};
    assert_int_equal(floe_gradients(g, ys, 2, (floe_output[]){o0(a)}, 1, gys, &dx), FLOE_OK);
    floe_tensor *v = eval(g, a, d, 1, (float[]){1, 2}, dx);
    tc_assert_close_f32(v, (float[]){2 * expf(1) - 1, 4 * expf(2) - 1}, 2, 1e-6f, 0);
    floe_tensor_unref(v);
    floe_graph_free(g);
}

/* Ops flagged FLOE_OP_NO_GRADIENT and non-float edges block the gradient. */
static void test_blocking(void **state) {
    floe_graph *g;
    floe_output dx;
    floe_attrs *at;
    int64_t d[1] = {2};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, d, 1);
    floe_node *sg = unary(g, "StopGradient", "sg", a);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(sg)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    assert_null(dx.node);
    floe_node *sq = unary(g, "Square", "sq", a);
    floe_node *y = binary(g, "Mul", "y", sg, sq);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    floe_tensor *v = eval(g, a, d, 1, (float[]){1, 2}, dx);
    tc_assert_close_f32(v, (float[]){2, 8}, 2, 1e-6f, 0);   /* sg * 2a */
    floe_tensor_unref(v);
    /* Through an integer: no gradient. */
    floe_node_builder *b;
    floe_node *ci, *cf;
    assert_int_equal(floe_node_builder_new(g, "Cast", "to_int", &b), FLOE_OK);
    floe_node_builder_add_input(b, o0(a));
    floe_attrs_set_type(floe_node_builder_attrs(b), "DstT", FLOE_DTYPE_I32);
    assert_int_equal(floe_node_builder_finish(b, &ci), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Cast", "to_float", &b), FLOE_OK);
    floe_node_builder_add_input(b, o0(ci));
    at = floe_node_builder_attrs(b);
    floe_attrs_set_type(at, "DstT", FLOE_DTYPE_F32);
    assert_int_equal(floe_node_builder_finish(b, &cf), FLOE_OK);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(cf)}, 1, (floe_output[]){o0(a)}, 1, NULL,
                                    &dx),
                     FLOE_OK);
    assert_null(dx.node);
    floe_graph_free(g);
}

/* Training's case: xs are ReadVariableOp outputs, or the variable handles. */
static void test_variables(void **state) {
    floe_graph *g;
    floe_session *s;
    floe_node_builder *b;
    floe_node *h, *r, *init;
    floe_output dx[2];
    int64_t d[1] = {3};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "VarHandleOp", "v", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", d, 1);
    assert_int_equal(floe_node_builder_finish(b, &h), FLOE_OK);
    floe_tensor *iv = tc_f32(d, 1, (float[]){1, 2, 3});
    floe_node *c;
    assert_int_equal(floe_node_builder_new(g, "Const", "init_value", &b), FLOE_OK);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", iv);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    assert_int_equal(floe_node_builder_finish(b, &c), FLOE_OK);
    floe_tensor_unref(iv);
    assert_int_equal(floe_node_builder_new(g, "AssignVariableOp", "init", &b), FLOE_OK);
    floe_node_builder_add_input(b, o0(h));
    floe_node_builder_add_input(b, o0(c));
    assert_int_equal(floe_node_builder_finish(b, &init), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "ReadVariableOp", "read", &b), FLOE_OK);
    floe_node_builder_add_input(b, o0(h));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    assert_int_equal(floe_node_builder_finish(b, &r), FLOE_OK);
    floe_node *sq = unary(g, "Square", "sq", r);
    floe_node *y = binary(g, "Mul", "y", sq, r);   /* r^3: the read is used twice */
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                    (floe_output[]){o0(r), o0(h)}, 2, NULL, dx),
                     FLOE_OK);
    assert_non_null(dx[0].node);
    assert_non_null(dx[1].node);
    assert_int_equal(floe_node_output_dtype(dx[1].node, dx[1].index), FLOE_DTYPE_F32);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &init, 1, NULL), FLOE_OK);
    floe_tensor *v[2] = {NULL, NULL};
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, dx, 2, NULL, 0, v), FLOE_OK);
    tc_assert_close_f32(v[0], (float[]){3, 12, 27}, 3, 1e-6f, 0);
    tc_assert_close_f32(v[1], (float[]){3, 12, 27}, 3, 1e-6f, 0);
    floe_tensor_unref(v[0]);
    floe_tensor_unref(v[1]);
    floe_session_free(s);
    floe_graph_free(g);
}

/* An unknown batch extent: the bias gradient is reduced at run time. */
static void test_unknown_extent(void **state) {
    floe_graph *g;
    floe_session *s;
    floe_output dx[2];
    int64_t dx_dims[2] = {-1, 2}, bd[1] = {2}, xd[2] = {3, 2};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *x = placeholder(g, "x", FLOE_DTYPE_F32, dx_dims, 2);
    floe_node *bias = placeholder(g, "bias", FLOE_DTYPE_F32, bd, 1);
    floe_node *z = binary(g, "AddV2", "z", x, bias);
    floe_node *y = binary(g, "Mul", "y", z, z);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                    (floe_output[]){o0(x), o0(bias)}, 2, NULL, dx),
                     FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_tensor *in[2] = {tc_f32(xd, 2, (float[]){1, 2, 3, 4, 5, 6}), tc_f32(bd, 1, (float[]){1, -1})};
    floe_tensor *v[2] = {NULL, NULL};
    assert_int_equal(floe_session_run(s, (floe_output[]){o0(x), o0(bias)}, in, 2, dx, 2, NULL, 0, v),
                     FLOE_OK);
    tc_assert_shape(v[0], FLOE_DTYPE_F32, xd, 2);
    tc_assert_close_f32(v[0], (float[]){4, 2, 8, 6, 12, 10}, 6, 1e-6f, 0);
    tc_assert_shape(v[1], FLOE_DTYPE_F32, bd, 1);
    tc_assert_close_f32(v[1], (float[]){24, 18}, 2, 1e-6f, 0);
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(v[i]);
        floe_tensor_unref(in[i]);
    }
    floe_session_free(s);
    floe_graph_free(g);
}

/* Every allocation failure gives RESOURCE_EXHAUSTED, NULL dxs and a usable graph. */
static void test_allocation_failures(void **state) {
    int64_t nth;
    for (nth = 1; nth < 5000; nth++) {
        floe_graph *g;
        floe_output dx[2];
        int64_t d[1] = {2};
        assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
        floe_node *a = placeholder(g, "a", FLOE_DTYPE_F32, d, 1);
        floe_node *b = placeholder(g, "b", FLOE_DTYPE_F32, NULL, 0);
        floe_node *m = binary(g, "Mul", "m", a, b);
        floe_node *y = binary(g, "AddV2", "y", m, a);
        floe_testing_fail_alloc(nth, 0);
        floe_status st = floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                        (floe_output[]){o0(a), o0(b)}, 2, NULL, dx);
        int64_t failures = floe_testing_alloc_failures();
        floe_testing_fail_alloc(0, 0);
        if (st != FLOE_OK) {
            assert_int_equal(st, FLOE_RESOURCE_EXHAUSTED);
            assert_null(dx[0].node);
            assert_null(dx[1].node);
            /* Still usable. */
            assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                            (floe_output[]){o0(a), o0(b)}, 2, NULL, dx),
                             FLOE_OK);
        }
        assert_non_null(dx[0].node);
        assert_non_null(dx[1].node);
        floe_graph_free(g);
        if (st == FLOE_OK && failures == 0)
            break;
    }
    assert_true(nth < 5000);
}

static void test_gradient_check_arguments(void **state) {
    double err = 0;
    int64_t d[1] = {2};
    floe_tensor *x = tc_f32(d, 1, (float[]){1, 2});
    assert_int_equal(floe_gradient_check(*state, NULL, &x, 1, NULL, 0, 1e-3, &err),
                     FLOE_INVALID_ARGUMENT);
    assert_true(isinf(err));
    assert_int_equal(floe_gradient_check(*state, "Neg", &x, 1, NULL, 0, 0.0, &err),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradient_check(*state, "Neg", &x, 1, NULL, 0, 1e-3, NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_gradient_check(*state, "Neg", &x, 1, NULL, 1, 1e-3, &err),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("no output 1");
    assert_int_equal(floe_gradient_check(*state, "NoSuchOp", &x, 1, NULL, 0, 1e-3, &err),
                     FLOE_NOT_FOUND);
    assert_int_equal(floe_gradient_check(*state, "ExAdd", (floe_tensor *[]){x, x}, 2, NULL, 0,
                                         1e-3, &err),
                     FLOE_UNIMPLEMENTED);
    /* f32 works, with an f32-sized tolerance. */
    assert_int_equal(floe_gradient_check(*state, "Square", &x, 1, NULL, 0, 1e-2, &err), FLOE_OK);
    assert_true(err < 1e-2);
    floe_tensor_unref(x);
}

static floe_node *with_const(floe_graph *g, const char *op, const char *name, floe_node *x,
                             const char *cname, floe_tensor *c) {
    floe_node_builder *b;
    floe_node *k, *out;
    assert_int_equal(floe_node_builder_new(g, "Const", cname, &b), FLOE_OK);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", c);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(c));
    assert_int_equal(floe_node_builder_finish(b, &k), FLOE_OK);
    floe_tensor_unref(c);
    out = binary(g, op, name, x, k);
    return out;
}

static floe_tensor *ivec(const int32_t *v, int64_t n) {
    return tc_i32(&n, 1, v);
}

/* A chain of ops built on x of static shape @xdims (batch known or -1); the gradients of
 * x, W and b, evaluated on fixed values. */
static void chain_gradients(floe_context *ctx, const int64_t *xdims, floe_tensor **out) {
    floe_graph *g;
    floe_session *s;
    floe_output dx[3];
    int64_t wd[2] = {3, 4}, bd[1] = {4}, xd[2] = {5, 3};
    int64_t pd[2] = {2, 2};
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *x = placeholder(g, "x", FLOE_DTYPE_F32, xdims, 2);
    floe_node *w = placeholder(g, "w", FLOE_DTYPE_F32, wd, 2);
    floe_node *bias = placeholder(g, "b", FLOE_DTYPE_F32, bd, 1);
    floe_node *mm = binary(g, "MatMul", "mm", x, w);
    floe_node *h = unary(g, "Tanh", "h", binary(g, "AddV2", "z", mm, bias));    /* [n,4] */
    floe_node *ax1 = constant_i32(g, "ax1", 1);
    floe_node_builder *cb;
    floe_node *c;
    assert_int_equal(floe_node_builder_new(g, "ConcatV2", "c", &cb), FLOE_OK);
    floe_node_builder_add_input_list(cb, (floe_output[]){o0(h), o0(x)}, 2);
    floe_node_builder_add_input(cb, o0(ax1));
    assert_int_equal(floe_node_builder_finish(cb, &c), FLOE_OK);
    floe_node *t = with_const(g, "Transpose", "t", c, "perm", ivec((int32_t[]){1, 0}, 2));
    floe_node *p = with_const(g, "Pad", "p", t, "pads",
                              tc_i32(pd, 2, (int32_t[]){1, 0, 0, 2}));          /* [8,n+2] */
    floe_node *m = with_const(g, "Max", "m", p, "max_axes", ivec((int32_t[]){0}, 1));
    floe_node *e = with_const(g, "ExpandDims", "e", m, "dim0", tc_scalar_i32(0));
    floe_node *ti = with_const(g, "Tile", "ti", e, "mult", ivec((int32_t[]){2, 1}, 2));
    floe_node *r = with_const(g, "Reshape", "r", ti, "flat", ivec((int32_t[]){-1}, 1));
    floe_node *sq = binary(g, "Mul", "sq", r, r);
    floe_node *l1 = with_const(g, "Mean", "l1", sq, "mean_axes", ivec((int32_t[]){0}, 1));
    floe_node *hs = with_const(g, "Sum", "hs", h, "sum_axes", ivec((int32_t[]){0}, 1));
    floe_node *l2 = with_const(g, "Prod", "l2", hs, "prod_axes", ivec((int32_t[]){0}, 1));
    floe_node *y = binary(g, "AddV2", "y", l1, l2);
    assert_int_equal(floe_gradients(g, (floe_output[]){o0(y)}, 1,
                                    (floe_output[]){o0(x), o0(w), o0(bias)}, 3, NULL, dx),
                     FLOE_OK);
    float xv[15], wv[12], bv[4];
    for (int i = 0; i < 15; i++)
        xv[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 12; i++)
        wv[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < 4; i++)
        bv[i] = 0.1f * (float)i;
    floe_tensor *in[3] = {tc_f32(xd, 2, xv), tc_f32(wd, 2, wv), tc_f32(bd, 1, bv)};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, (floe_output[]){o0(x), o0(w), o0(bias)}, in, 3, dx, 3, NULL, 0,
                         out) != FLOE_OK)
        fail_msg("run: %s", floe_last_error());
    for (int i = 0; i < 3; i++)
        floe_tensor_unref(in[i]);
    floe_session_free(s);
    floe_graph_free(g);
}

/* Gradient functions take their dynamic paths (Shape, BroadcastGradientArgs) when the
 * batch extent is unknown; the values match the static paths'. */
static void test_unknown_shapes_match_known(void **state) {
    floe_tensor *known[3], *unknown[3];
    chain_gradients(*state, (int64_t[]){5, 3}, known);
    chain_gradients(*state, (int64_t[]){-1, 3}, unknown);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(floe_tensor_num_elements(known[i]), floe_tensor_num_elements(unknown[i]));
        const float *k = floe_tensor_data(known[i]);
        double norm = 0;
        for (int64_t e = 0; e < floe_tensor_num_elements(known[i]); e++)
            norm += fabs(k[e]);
        assert_true(norm > 1e-3);    /* not trivially zero */
        tc_assert_close_f32(unknown[i], k, floe_tensor_num_elements(known[i]), 1e-5f, 1e-6f);
        floe_tensor_unref(known[i]);
        floe_tensor_unref(unknown[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_x),
        cmocka_unit_test(test_missing_gradient),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_y_is_x),
        cmocka_unit_test(test_fan_out_sums),
        cmocka_unit_test(test_stop_at_xs),
        cmocka_unit_test(test_grad_ys_and_several_ys),
        cmocka_unit_test(test_blocking),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_unknown_extent),
        cmocka_unit_test(test_unknown_shapes_match_known),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_gradient_check_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
