/*
 * test_ops_select.c - SelectV2 of ops_math (select.c): condition ? t : e with numpy
 * broadcasting of all three inputs.
 *
 * Random conditions and values are compared with a naive reference over three-way
 * broadcasting cases (scalars, vectors, [3,1] against [1,4], rank 5, empty, sizes split
 * across threads) for element sizes 1, 2, 4 and 8 bytes; then the errors: shapes that
 * do not broadcast, a non-bool condition, t and e of different dtypes; and the shape
 * function.
 */
#include "test_common.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor of random bytes (conditions: random 0/1, or other non-zero bytes). */
static floe_tensor *rand_bytes(floe_dtype dt, const int64_t *shape, int nd, uint64_t seed) {
    floe_tensor *t = tc_tensor(dt, shape, nd, NULL);
    uint8_t *p = floe_tensor_data(t);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
    for (size_t i = 0; i < floe_tensor_nbytes(t); i++) {
        uint64_t r = tc_rng_next(&s);
        p[i] = dt == FLOE_DTYPE_BOOL ? (uint8_t)((r >> 20) % 3 == 0 ? 0 : (r >> 8) % 2 ? 1 : 5)
                                     : (uint8_t)(r >> 24);
    }
    return t;
}

typedef struct sel_case {
    int nd[3];
    int64_t s[3][5];
    int out_nd;
    int64_t out[5];
} sel_case;

static const sel_case cases[] = {
    {{0, 0, 0}, {{0}, {0}, {0}}, 0, {0}},
    {{0, 2, 2}, {{0}, {2, 3}, {2, 3}}, 2, {2, 3}},
    {{2, 2, 0}, {{3, 1}, {1, 4}, {0}}, 2, {3, 4}},
    {{1, 2, 1}, {{5}, {2, 5}, {1}}, 2, {2, 5}},
    {{2, 1, 2}, {{4, 1}, {3}, {1, 3}}, 2, {4, 3}},
    {{5, 4, 3}, {{2, 1, 3, 1, 5}, {4, 1, 1, 5}, {1, 4, 1}}, 5, {2, 4, 3, 4, 5}},
    {{2, 1, 2}, {{0, 1}, {4}, {1, 4}}, 2, {0, 4}},
    {{2, 2, 2}, {{400, 300}, {400, 300}, {400, 300}}, 2, {400, 300}},
    {{2, 1, 0}, {{400, 1}, {300}, {0}}, 2, {400, 300}},
    {{1, 2, 2}, {{300}, {400, 300}, {400, 1}}, 2, {400, 300}},
};

static void select_matches_reference(void **state) {
    const floe_dtype dts[5] = {FLOE_DTYPE_F32, FLOE_DTYPE_I64, FLOE_DTYPE_U8, FLOE_DTYPE_F16,
                               FLOE_DTYPE_BOOL};
    for (int t = 0; t < 5; t++)
        for (int k = 0; k < (int)(sizeof(cases) / sizeof(cases[0])); k++) {
            const sel_case *c = &cases[k];
            floe_tensor *in[3];
            in[0] = rand_bytes(FLOE_DTYPE_BOOL, c->s[0], c->nd[0], (uint64_t)(k * 3));
            in[1] = rand_bytes(dts[t], c->s[1], c->nd[1], (uint64_t)(k * 3 + 1));
            in[2] = rand_bytes(dts[t], c->s[2], c->nd[2], (uint64_t)(k * 3 + 2));
            floe_tensor *y = tc_run1(*state, "SelectV2", in, 3, NULL);
            tc_assert_shape(y, dts[t], c->out, c->out_nd);
            size_t es = floe_dtype_size(dts[t]);
            int64_t n = floe_tensor_num_elements(y);
            const uint8_t *cp = floe_tensor_data(in[0]);
            for (int64_t o = 0; o < n; o++) {
                int64_t ci = tc_bcast_index(o, c->out, c->out_nd, c->s[0], c->nd[0]);
                int which = cp[ci] ? 1 : 2;
                int64_t si = tc_bcast_index(o, c->out, c->out_nd, c->s[which], c->nd[which]);
                const uint8_t *src = (const uint8_t *)floe_tensor_data(in[which]) + si * es;
                const uint8_t *got = (const uint8_t *)floe_tensor_data(y) + o * es;
                if (memcmp(src, got, es) != 0)
                    fail_msg("%s case %d element %lld: took the wrong value",
                             floe_dtype_name(dts[t]), k, (long long)o);
            }
            floe_tensor_unref(y);
            for (int i = 0; i < 3; i++)
                floe_tensor_unref(in[i]);
        }
}

static void select_scalar_condition_picks_whole_tensor(void **state) {
    const int64_t s[2] = {2, 2};
    const float t[4] = {1, 2, 3, 4}, e[4] = {-1, -2, -3, -4};
    floe_tensor *tt = tc_f32(s, 2, t), *te = tc_f32(s, 2, e);
    for (int v = 0; v < 2; v++) {
        uint8_t cv = (uint8_t)v;
        floe_tensor *c = tc_tensor(FLOE_DTYPE_BOOL, NULL, 0, &cv);
        floe_tensor *in[3] = {c, tt, te};
        floe_tensor *y = tc_run1(*state, "SelectV2", in, 3, NULL);
        tc_assert_close_f32(y, v ? t : e, 4, 0, 0);
        floe_tensor_unref(y);
        floe_tensor_unref(c);
    }
    floe_tensor_unref(tt);
    floe_tensor_unref(te);
}

static void select_errors(void **state) {
    const int64_t s2[1] = {2}, s3[1] = {3}, s4[1] = {4};
    floe_tensor *c = tc_tensor(FLOE_DTYPE_BOOL, s2, 1, NULL);
    floe_tensor *t3 = tc_f32(s3, 1, NULL), *e4 = tc_f32(s4, 1, NULL), *e3 = tc_f32(s3, 1, NULL);
    floe_tensor *in[3] = {c, t3, e3};
    /* condition [2] against [3] */
    assert_int_equal(tc_run_status(*state, "SelectV2", in, 3, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible shapes");
    tc_assert_error_contains("[2]");
    tc_assert_error_contains("[3]");
    /* t and e that do not broadcast together */
    floe_tensor *c1 = tc_tensor(FLOE_DTYPE_BOOL, NULL, 0, NULL);
    floe_tensor *in2[3] = {c1, t3, e4};
    assert_int_equal(tc_run_status(*state, "SelectV2", in2, 3, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[4]");
    /* a condition that is not bool */
    floe_tensor *cf = tc_f32(s3, 1, NULL);
    floe_tensor *in3[3] = {cf, t3, e3};
    assert_int_not_equal(tc_run_status(*state, "SelectV2", in3, 3, NULL, 1), FLOE_OK);
    tc_assert_error_contains("f32");
    /* t and e of different dtypes */
    floe_tensor *ei = tc_i32(s3, 1, NULL);
    floe_tensor *in4[3] = {c1, t3, ei};
    assert_int_not_equal(tc_run_status(*state, "SelectV2", in4, 3, NULL, 1), FLOE_OK);
    tc_assert_error_contains("i32");
    floe_tensor_unref(ei);
    floe_tensor_unref(cf);
    floe_tensor_unref(c1);
    floe_tensor_unref(c);
    floe_tensor_unref(t3);
    floe_tensor_unref(e4);
    floe_tensor_unref(e3);
}

static void select_shape_fn_broadcasts_three_ways(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    const int64_t cs[2] = {-1, 1}, ts[1] = {5}, es[3] = {2, 1, 1}, bad[1] = {4};
    floe_node *c = tc_placeholder(g, "c", FLOE_DTYPE_BOOL, cs, 2);
    floe_node *t = tc_placeholder(g, "t", FLOE_DTYPE_F32, ts, 1);
    floe_node *e = tc_placeholder(g, "e", FLOE_DTYPE_F32, es, 3);
    floe_node *eb = tc_placeholder(g, "eb", FLOE_DTYPE_F32, bad, 1);
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, "SelectV2", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(c, 0));
    floe_node_builder_add_input(b, floe_out(t, 0));
    floe_node_builder_add_input(b, floe_out(e, 0));
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_OK);
    floe_shape s = floe_node_output_shape(n, 0);
    assert_int_equal(s.ndim, 3);
    assert_true(s.dims[0] == 2 && s.dims[1] == -1 && s.dims[2] == 5);
    /* [5] against [4] is known to fail */
    assert_int_equal(floe_node_builder_new(g, "SelectV2", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(c, 0));
    floe_node_builder_add_input(b, floe_out(t, 0));
    floe_node_builder_add_input(b, floe_out(eb, 0));
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible shapes");
    floe_graph_free(g);
}

static void select_kernel_rejects_shapes_known_only_at_run(void **state) {
    floe_graph *g = NULL;
    floe_session *sess = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *c = tc_placeholder(g, "c", FLOE_DTYPE_BOOL, NULL, -1);
    floe_node *t = tc_placeholder(g, "t", FLOE_DTYPE_F32, NULL, -1);
    floe_node *e = tc_placeholder(g, "e", FLOE_DTYPE_F32, NULL, -1);
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, "SelectV2", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(c, 0));
    floe_node_builder_add_input(b, floe_out(t, 0));
    floe_node_builder_add_input(b, floe_out(e, 0));
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &sess), FLOE_OK);
    const int64_t s2[2] = {2, 1}, s3[1] = {3}, s4[2] = {1, 4};
    floe_tensor *ct = tc_tensor(FLOE_DTYPE_BOOL, s2, 2, NULL);
    floe_tensor *tt = tc_f32(s3, 1, NULL), *et = tc_f32(s4, 2, NULL);
    floe_output feeds[3] = {floe_out(c, 0), floe_out(t, 0), floe_out(e, 0)};
    floe_tensor *vals[3] = {ct, tt, et};
    floe_output fetch = floe_out(n, 0);
    floe_tensor *out = NULL;
    assert_int_equal(floe_session_run(sess, feeds, vals, 3, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("Incompatible shapes: [2,1] vs. [3] vs. [1,4]");
    floe_session_free(sess);
    floe_tensor_unref(ct);
    floe_tensor_unref(tt);
    floe_tensor_unref(et);
    floe_graph_free(g);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tc_setup_context, tc_teardown_context)
    const struct CMUnitTest tests[] = {
        T(select_matches_reference),
        T(select_scalar_condition_picks_whole_tensor),
        T(select_errors),
        T(select_shape_fn_broadcasts_three_ways),
        T(select_kernel_rejects_shapes_known_only_at_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
