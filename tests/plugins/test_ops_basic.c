/*
 * test_ops_basic.c - Const, Placeholder, Identity, StopGradient, PreventGradient and
 * NoOp: values, no-copy forwarding, shape inference, and the unfed-placeholder error.
 */
#include "test_common.h"

#include <string.h>

/* ---- Helpers --------------------------------------------------------------------------- */

static floe_node *const_node(floe_graph *g, const char *name, floe_tensor *value,
                             floe_dtype dtype, floe_status want) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;

    assert_int_equal(floe_node_builder_new(g, "Const", name, &b), FLOE_OK);
    if (value != NULL)
        floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", value);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dtype);
    assert_int_equal(floe_node_builder_finish(b, &n), want);
    return n;
}

static floe_node *placeholder(floe_graph *g, const char *name, floe_dtype dt,
                              const int64_t *shape, int ndim, int set_shape) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;

    assert_int_equal(floe_node_builder_new(g, "Placeholder", name, &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    if (set_shape)
        floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, ndim);
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_OK);
    return n;
}

static floe_node *unary(floe_graph *g, const char *op, floe_node *x) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;

    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_OK);
    return n;
}

/* ---- Const ----------------------------------------------------------------------------- */

static void const_outputs_its_value(void **state) {
    int64_t shape[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    floe_tensor *value = tc_f32(shape, 2, data), *out;
    floe_attrs *a = NULL;

    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_tensor(a, "value", value);
    floe_attrs_set_type(a, "dtype", FLOE_DTYPE_F32);
    out = tc_run1(*state, "Const", NULL, 0, a);
    tc_assert_shape(out, FLOE_DTYPE_F32, shape, 2);
    tc_assert_close_f32(out, data, 6, 0, 0);
    floe_tensor_unref(out);
    floe_attrs_free(a);
    floe_tensor_unref(value);
}

static void const_shares_value_without_copy(void **state) {
    int64_t shape[1] = {4};
    int32_t data[4] = {7, 8, 9, 10};
    floe_tensor *value = tc_i32(shape, 1, data), *out = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *c;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    c = const_node(g, "c", value, FLOE_DTYPE_I32, FLOE_OK);
    floe_output fetch = floe_out(c, 0);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &fetch, 1, NULL, 0, &out), FLOE_OK);
    tc_assert_shape(out, FLOE_DTYPE_I32, shape, 1);
    assert_memory_equal(floe_tensor_data(out), data, sizeof(data));
    /* The node's attr holds the data; the fetched tensor is that buffer. */
    const floe_attrs *attrs = floe_node_attrs(c);
    floe_tensor *held = NULL;
    assert_int_equal(floe_attrs_get_tensor(attrs, "value", &held), FLOE_OK);
    assert_ptr_equal(floe_tensor_data(out), floe_tensor_data(held));
    floe_tensor_unref(out);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(value);
}

static void const_infers_shape_and_checks_dtype(void **state) {
    int64_t shape[3] = {2, 1, 5};
    floe_tensor *value = tc_f32(shape, 3, NULL);
    floe_graph *g = NULL;
    floe_node *c;
    floe_shape s;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    c = const_node(g, "c", value, FLOE_DTYPE_F32, FLOE_OK);
    s = floe_node_output_shape(c, 0);
    assert_int_equal(s.ndim, 3);
    assert_int_equal(s.dims[0], 2);
    assert_int_equal(s.dims[1], 1);
    assert_int_equal(s.dims[2], 5);
    const_node(g, "bad", value, FLOE_DTYPE_I64, FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dtype");
    const_node(g, "none", NULL, FLOE_DTYPE_F32, FLOE_INVALID_ARGUMENT);
    floe_graph_free(g);
    floe_tensor_unref(value);
}

/* ---- Placeholder ------------------------------------------------------------------------ */

static void placeholder_unfed_fails_with_message(void **state) {
    int64_t shape[2] = {2, 3};
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_tensor *out = (floe_tensor *)&out;
    floe_node *x, *y;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", FLOE_DTYPE_F32, shape, 2, 1);
    y = unary(g, "Identity", x);
    floe_output fetch = floe_out(y, 0);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("You must feed a value for placeholder tensor 'x' with dtype f32");
    tc_assert_error_contains("[2,3]");
    floe_session_free(s);
    floe_graph_free(g);
}

static void placeholder_fed_gives_the_feed(void **state) {
    int64_t shape[1] = {3};
    float data[3] = {1.5f, -2, 4};
    floe_tensor *feed = tc_f32(shape, 1, data), *out = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *x, *y;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", FLOE_DTYPE_F32, NULL, 0, 0);
    y = unary(g, "Identity", x);
    floe_output in = floe_out(x, 0), fetch = floe_out(y, 0);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, &in, &feed, 1, &fetch, 1, NULL, 0, &out), FLOE_OK);
    tc_assert_close_f32(out, data, 3, 0, 0);
    floe_tensor_unref(out);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(feed);
}

static void placeholder_shape_attr_sets_static_shape(void **state) {
    int64_t shape[2] = {-1, 4};
    floe_graph *g = NULL;
    floe_node *x, *u;
    floe_shape s;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", FLOE_DTYPE_I64, shape, 2, 1);
    u = placeholder(g, "u", FLOE_DTYPE_I64, NULL, 0, 0);
    s = floe_node_output_shape(x, 0);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[0], -1);
    assert_int_equal(s.dims[1], 4);
    assert_int_equal(floe_node_output_dtype(x, 0), FLOE_DTYPE_I64);
    assert_int_equal(floe_node_output_shape(u, 0).ndim, -1);   /* default: unknown rank */
    floe_graph_free(g);
}

/* ---- Identity and friends ----------------------------------------------------------------- */

static void identity_forwards_input_without_copy(void **state) {
    static const char *const ops[] = {"Identity", "StopGradient", "PreventGradient"};
    int64_t shape[2] = {2, 2};
    int32_t data[4] = {1, -2, 3, -4};
    floe_tensor *feed = tc_i32(shape, 2, data), *out = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *x, *y;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
        x = placeholder(g, "x", FLOE_DTYPE_I32, shape, 2, 1);
        y = unary(g, ops[i], x);
        floe_shape st = floe_node_output_shape(y, 0);
        assert_int_equal(st.ndim, 2);
        assert_int_equal(st.dims[1], 2);
        floe_output in = floe_out(x, 0), fetch = floe_out(y, 0);
        assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
        assert_int_equal(floe_session_run(s, &in, &feed, 1, &fetch, 1, NULL, 0, &out), FLOE_OK);
        tc_assert_shape(out, FLOE_DTYPE_I32, shape, 2);
        /* Forwarding the fed buffer is the CPU kernel's; on a GPU the feed is first
         * copied to device memory, so there only the values can be checked. */
        if (tc_on_device(out))
            for (int k = 0; k < 4; k++)
                assert_int_equal(tc_get_i(out, k), data[k]);
        else
            assert_ptr_equal(floe_tensor_data(out), floe_tensor_data(feed));
        floe_tensor_unref(out);
        floe_session_free(s);
        floe_graph_free(g);
    }
    floe_tensor_unref(feed);
}

static void identity_eager_on_strings(void **state) {
    int64_t shape[1] = {2};
    floe_tensor *t = tc_tensor(FLOE_DTYPE_STRING, shape, 1, NULL), *out;
    const char *bytes;
    size_t size;

    assert_int_equal(floe_tensor_set_string(t, 0, "floe", 4), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 1, "", 0), FLOE_OK);
    out = tc_run1(*state, "Identity", &t, 1, NULL);
    assert_int_equal(floe_tensor_get_string(out, 0, &bytes, &size), FLOE_OK);
    assert_int_equal(size, 4);
    assert_memory_equal(bytes, "floe", 4);
    floe_tensor_unref(out);
    floe_tensor_unref(t);
}

static void noop_runs_as_target(void **state) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node_builder *b = NULL;
    floe_node *n = NULL;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "NoOp", "group", &b), FLOE_OK);
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_OK);
    assert_int_equal(floe_node_num_outputs(n), 0);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &n, 1, NULL), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &n, 1, NULL), FLOE_OK);
    floe_session_free(s);
    floe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(const_outputs_its_value),
        cmocka_unit_test(const_shares_value_without_copy),
        cmocka_unit_test(const_infers_shape_and_checks_dtype),
        cmocka_unit_test(placeholder_unfed_fails_with_message),
        cmocka_unit_test(placeholder_fed_gives_the_feed),
        cmocka_unit_test(placeholder_shape_attr_sets_static_shape),
        cmocka_unit_test(identity_forwards_input_without_copy),
        cmocka_unit_test(identity_eager_on_strings),
        cmocka_unit_test(noop_runs_as_target),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
