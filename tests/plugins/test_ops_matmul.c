/*
 * test_ops_matmul.c - MatMul and BatchMatMulV2 against a naive reference: every
 * transpose combination, odd and large shapes (split across the pool), each dtype,
 * broadcast batch dimensions, empty dimensions, K = 0, and the shape errors at run
 * time and at graph-build time.
 */
#include "test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers --------------------------------------------------------------------------- */

static floe_attrs *mm_attrs(const char *ta_name, int ta, const char *tb_name, int tb) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, ta_name, ta), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, tb_name, tb), FLOE_OK);
    return a;
}

/* Small integers as doubles: every dtype holds them and every product is exact. */
static double val_a(int64_t i) {
    return (double)((int)(i * 7 % 11) - 5);
}
static double val_b(int64_t i) {
    return (double)((int)(i * 5 % 13) - 6);
}

static floe_tensor *make(floe_dtype dt, const int64_t *shape, int ndim, double (*val)(int64_t)) {
    floe_tensor *t = tc_tensor(dt, shape, ndim, NULL);
    int64_t n = floe_tensor_num_elements(t);
    void *d = floe_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case FLOE_DTYPE_F32: ((float *)d)[i] = (float)val(i); break;
        case FLOE_DTYPE_F64: ((double *)d)[i] = val(i); break;
        case FLOE_DTYPE_I32: ((int32_t *)d)[i] = (int32_t)val(i); break;
        case FLOE_DTYPE_I64: ((int64_t *)d)[i] = (int64_t)val(i); break;
        default: fail_msg("unexpected dtype");
        }
    }
    return t;
}

/* Checks z = op(x) op(y) over broadcast batches, element by element. */
static void check_product(const floe_tensor *x, const floe_tensor *y, const floe_tensor *z,
                          int ta, int tb) {
    int rx = floe_tensor_ndim(x), ry = floe_tensor_ndim(y), rz = floe_tensor_ndim(z);
    int64_t m = floe_tensor_dim(x, ta ? rx - 1 : rx - 2), k = floe_tensor_dim(x, ta ? rx - 2 : rx - 1);
    int64_t n = floe_tensor_dim(y, tb ? ry - 2 : ry - 1);
    int64_t batch = 1;

    assert_int_equal(floe_tensor_dim(z, rz - 2), m);
    assert_int_equal(floe_tensor_dim(z, rz - 1), n);
    for (int d = 0; d < rz - 2; d++)
        batch *= floe_tensor_dim(z, d);
    assert_int_equal(floe_tensor_num_elements(z), batch * m * n);
    for (int64_t b = 0; b < batch; b++) {
        /* Batch coordinates of z, then the matching (broadcast) matrix of x and y. */
        int64_t rest = b, xb = 0, yb = 0, xs = 1, ys = 1;
        for (int d = rz - 3; d >= 0; d--) {
            int64_t c = rest % floe_tensor_dim(z, d);
            int dx = d - (rz - rx), dy = d - (rz - ry);
            rest /= floe_tensor_dim(z, d);
            if (dx >= 0) {
                xb += (floe_tensor_dim(x, dx) == 1 ? 0 : c) * xs;
                xs *= floe_tensor_dim(x, dx);
            }
            if (dy >= 0) {
                yb += (floe_tensor_dim(y, dy) == 1 ? 0 : c) * ys;
                ys *= floe_tensor_dim(y, dy);
            }
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t p = 0; p < k; p++) {
                    int64_t ai = ta ? p * m + i : i * k + p, bi = tb ? j * k + p : p * n + j;
                    acc += tc_get_f(x, xb * m * k + ai) * tc_get_f(y, yb * k * n + bi);
                }
                double got = tc_get_f(z, (b * m + i) * n + j);
                if (fabs(got - acc) > 1e-3 * (1 + fabs(acc)))
                    fail_msg("batch %lld C[%lld,%lld] = %g, expected %g", (long long)b,
                             (long long)i, (long long)j, got, acc);
            }
    }
}

/* Runs MatMul (@batch 0) or BatchMatMulV2 on fresh operands and checks the product. */
static void run_case(floe_context *ctx, int batch, floe_dtype dt, const int64_t *xs, int rx,
                     const int64_t *ys, int ry, int ta, int tb) {
    floe_tensor *x = make(dt, xs, rx, val_a), *y = make(dt, ys, ry, val_b);
    floe_tensor *in[2] = {x, y};
    floe_attrs *a = batch ? mm_attrs("adj_x", ta, "adj_y", tb)
                          : mm_attrs("transpose_a", ta, "transpose_b", tb);
    /* a host copy of a GPU's result, read element by element below */
    floe_tensor *z =
        tc_take_host(tc_run1(ctx, batch ? "BatchMatMulV2" : "MatMul", in, 2, a));

    assert_int_equal(floe_tensor_dtype(z), dt);
    check_product(x, y, z, ta, tb);
    floe_tensor_unref(z);
    floe_tensor_unref(x);
    floe_tensor_unref(y);
    floe_attrs_free(a);
}

/* Shapes of a 2-D case: x is [m,k] or [k,m], y is [k,n] or [n,k]. */
static void run_2d(floe_context *ctx, floe_dtype dt, int64_t m, int64_t n, int64_t k, int ta,
                   int tb) {
    int64_t xs[2] = {ta ? k : m, ta ? m : k}, ys[2] = {tb ? n : k, tb ? k : n};
    run_case(ctx, 0, dt, xs, 2, ys, 2, ta, tb);
}

/* ---- MatMul ----------------------------------------------------------------------------- */

static void matmul_f32_matches_naive_all_transposes(void **state) {
    for (int t = 0; t < 4; t++) {
        run_2d(*state, FLOE_DTYPE_F32, 1, 1, 1, t & 1, t >> 1);
        run_2d(*state, FLOE_DTYPE_F32, 17, 33, 65, t & 1, t >> 1);
        run_2d(*state, FLOE_DTYPE_F32, 130, 70, 90, t & 1, t >> 1);  /* split over rows */
        run_2d(*state, FLOE_DTYPE_F32, 3, 300, 100, t & 1, t >> 1);  /* split over columns */
    }
}

static void matmul_other_dtypes_match_naive(void **state) {
    static const floe_dtype dts[] = {FLOE_DTYPE_F64, FLOE_DTYPE_I32, FLOE_DTYPE_I64};
    for (size_t d = 0; d < 3; d++)
        for (int t = 0; t < 4; t++) {
            run_2d(*state, dts[d], 17, 33, 65, t & 1, t >> 1);
            run_2d(*state, dts[d], 70, 40, 150, t & 1, t >> 1);
        }
}

static void matmul_integer_overflow_wraps(void **state) {
    int32_t xa[2] = {INT32_MAX, 2}, ya[2] = {2, 1};
    int64_t xs[2] = {1, 2}, ys[2] = {2, 1};
    floe_tensor *in[2] = {tc_i32(xs, 2, xa), tc_i32(ys, 2, ya)};
    floe_tensor *z = tc_run1(*state, "MatMul", in, 2, NULL);

    /* INT32_MAX * 2 + 2 wraps to 0 (two's complement), as TensorFlow's kernel does. */
    assert_int_equal(floe_tensor_dtype(z), FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(z, 0), 0);
    floe_tensor_unref(z);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void matmul_k_zero_gives_zeros(void **state) {
    int64_t xs[2] = {3, 0}, ys[2] = {0, 4}, zs[2] = {3, 4};
    floe_tensor *in[2] = {tc_f32(xs, 2, NULL), tc_f32(ys, 2, NULL)};
    floe_tensor *z = tc_run1(*state, "MatMul", in, 2, NULL);
    float zeros[12] = {0};

    tc_assert_shape(z, FLOE_DTYPE_F32, zs, 2);
    tc_assert_close_f32(z, zeros, 12, 0, 0);
    floe_tensor_unref(z);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void matmul_empty_rows_give_empty_output(void **state) {
    int64_t xs[2] = {0, 5}, ys[2] = {5, 4}, zs[2] = {0, 4};
    floe_tensor *in[2] = {tc_f32(xs, 2, NULL), tc_f32(ys, 2, NULL)};
    floe_tensor *z = tc_run1(*state, "MatMul", in, 2, NULL);

    tc_assert_shape(z, FLOE_DTYPE_F32, zs, 2);
    floe_tensor_unref(z);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void matmul_inner_mismatch_names_both_shapes(void **state) {
    int64_t xs[2] = {2, 3}, ys[2] = {4, 5};
    floe_tensor *in[2] = {tc_f32(xs, 2, NULL), tc_f32(ys, 2, NULL)};

    assert_int_equal(tc_run_status(*state, "MatMul", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[2,3]");
    tc_assert_error_contains("[4,5]");
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void matmul_rejects_non_matrix(void **state) {
    int64_t xs[3] = {2, 3, 4}, ys[2] = {4, 5};
    floe_tensor *in[2] = {tc_f32(xs, 3, NULL), tc_f32(ys, 2, NULL)};

    assert_int_equal(tc_run_status(*state, "MatMul", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("rank 2");
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void matmul_rejects_mixed_dtypes(void **state) {
    int64_t s[2] = {2, 2};
    floe_tensor *in[2] = {tc_f32(s, 2, NULL), tc_tensor(FLOE_DTYPE_F64, s, 2, NULL)};

    assert_int_not_equal(tc_run_status(*state, "MatMul", in, 2, NULL, 1), FLOE_OK);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

/* A placeholder of @shape in @g. */
static floe_node *placeholder(floe_graph *g, const char *name, const int64_t *shape, int ndim) {
    return tc_placeholder(g, name, FLOE_DTYPE_F32, shape, ndim);
}

static floe_status add_mm(floe_graph *g, const char *op, floe_node *x, floe_node *y, int ta,
                          int tb, floe_node **out) {
    floe_node_builder *b = NULL;
    int batch = strcmp(op, "BatchMatMulV2") == 0;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(y, 0));
    floe_attrs_set_bool(floe_node_builder_attrs(b), batch ? "adj_x" : "transpose_a", ta);
    floe_attrs_set_bool(floe_node_builder_attrs(b), batch ? "adj_y" : "transpose_b", tb);
    return floe_node_builder_finish(b, out);
}

static void matmul_shape_inference(void **state) {
    floe_graph *g = NULL;
    int64_t xs[2] = {2, 3}, ys[2] = {5, 3}, us[2] = {-1, 3}, bad[2] = {4, 5};
    floe_node *x, *y, *u, *w, *z = NULL;
    floe_shape s;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", xs, 2);
    y = placeholder(g, "y", ys, 2);
    u = placeholder(g, "u", us, 2);
    w = placeholder(g, "w", bad, 2);
    assert_int_equal(add_mm(g, "MatMul", x, y, 0, 1, &z), FLOE_OK);
    s = floe_node_output_shape(z, 0);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[0], 2);
    assert_int_equal(s.dims[1], 5);
    assert_int_equal(add_mm(g, "MatMul", u, y, 0, 1, &z), FLOE_OK);
    s = floe_node_output_shape(z, 0);
    assert_int_equal(s.dims[0], -1);
    assert_int_equal(s.dims[1], 5);
    assert_int_equal(add_mm(g, "MatMul", x, w, 0, 0, &z), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[2,3]");
    tc_assert_error_contains("[4,5]");
    floe_graph_free(g);
}

/* Inputs of unknown shape pass graph building: the kernel itself must catch them. */
static void matmul_kernel_checks_fed_shapes(void **state) {
    floe_graph *g = NULL;
    floe_session *sess = NULL;
    floe_node *x, *y, *z = NULL, *bz = NULL;
    int64_t xs[2] = {2, 3}, ys[2] = {4, 5}, x3[3] = {2, 2, 3}, y3[3] = {3, 3, 5};
    floe_tensor *feeds[2] = {tc_f32(xs, 2, NULL), tc_f32(ys, 2, NULL)}, *out = NULL;
    floe_output fo[2];

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", NULL, -1);
    y = placeholder(g, "y", NULL, -1);
    assert_int_equal(add_mm(g, "MatMul", x, y, 1, 0, &z), FLOE_OK);
    assert_int_equal(add_mm(g, "BatchMatMulV2", x, y, 0, 0, &bz), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &sess), FLOE_OK);
    fo[0] = floe_out(x, 0);
    fo[1] = floe_out(y, 0);
    floe_output fetch = floe_out(z, 0);
    assert_int_equal(floe_session_run(sess, fo, feeds, 2, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("In[0]: [2,3], In[1]: [4,5] (In[0] transposed)");
    floe_tensor_unref(feeds[0]);
    floe_tensor_unref(feeds[1]);
    feeds[0] = tc_f32(x3, 3, NULL);
    feeds[1] = tc_f32(y3, 3, NULL);
    fetch = floe_out(bz, 0);
    assert_int_equal(floe_session_run(sess, fo, feeds, 2, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible batch dimensions: In[0]: [2,2,3], In[1]: [3,3,5]");
    floe_tensor_unref(feeds[0]);
    floe_tensor_unref(feeds[1]);
    floe_session_free(sess);
    floe_graph_free(g);
}

/* ---- BatchMatMulV2 ------------------------------------------------------------------------ */

static void batch_matmul_broadcasts_batch_dims(void **state) {
    int64_t xs[4] = {2, 1, 3, 4}, ys[3] = {3, 4, 5};
    int64_t xt[4] = {2, 1, 4, 3}, yt[3] = {3, 5, 4};
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        run_case(*state, 1, FLOE_DTYPE_F32, ta ? xt : xs, 4, tb ? yt : ys, 3, ta, tb);
        run_case(*state, 1, FLOE_DTYPE_F64, ta ? xt : xs, 4, tb ? yt : ys, 3, ta, tb);
        run_case(*state, 1, FLOE_DTYPE_I32, ta ? xt : xs, 4, tb ? yt : ys, 3, ta, tb);
    }
    /* y broadcast against x's batch, and a rank-2 operand. */
    int64_t x2[3] = {5, 6, 7}, y2[3] = {1, 7, 2}, y3[2] = {7, 3};
    run_case(*state, 1, FLOE_DTYPE_F32, x2, 3, y2, 3, 0, 0);
    run_case(*state, 1, FLOE_DTYPE_F32, x2, 3, y3, 2, 0, 0);
    run_case(*state, 1, FLOE_DTYPE_F32, y3, 2, y2, 3, 1, 0);
}

static void batch_matmul_many_small_and_few_large(void **state) {
    int64_t xs[3] = {200, 8, 9}, ys[3] = {200, 9, 10};   /* one task per matrix group */
    int64_t yt[3] = {200, 10, 9};
    int64_t xl[3] = {2, 120, 100}, yl[3] = {2, 120, 90}; /* each GEMM split */
    run_case(*state, 1, FLOE_DTYPE_F32, xs, 3, ys, 3, 0, 0);
    run_case(*state, 1, FLOE_DTYPE_I64, xs, 3, yt, 3, 0, 1);
    run_case(*state, 1, FLOE_DTYPE_F32, xl, 3, yl, 3, 1, 0);
}

static void batch_matmul_empty_and_k_zero(void **state) {
    int64_t xs[3] = {0, 3, 4}, ys[2] = {4, 5}, zs[3] = {0, 3, 5};
    int64_t xk[3] = {2, 3, 0}, yk[3] = {2, 0, 4}, zk[3] = {2, 3, 4};
    floe_tensor *in[2] = {tc_f32(xs, 3, NULL), tc_f32(ys, 2, NULL)};
    floe_tensor *z = tc_run1(*state, "BatchMatMulV2", in, 2, NULL);
    float zeros[24] = {0};

    tc_assert_shape(z, FLOE_DTYPE_F32, zs, 3);
    floe_tensor_unref(z);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
    in[0] = tc_f32(xk, 3, NULL);
    in[1] = tc_f32(yk, 3, NULL);
    z = tc_run1(*state, "BatchMatMulV2", in, 2, NULL);
    tc_assert_shape(z, FLOE_DTYPE_F32, zk, 3);
    tc_assert_close_f32(z, zeros, 24, 0, 0);
    floe_tensor_unref(z);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void batch_matmul_rejects_bad_shapes(void **state) {
    int64_t xs[3] = {2, 3, 4}, ys[3] = {3, 4, 5}, yk[3] = {2, 5, 5}, v[1] = {4};
    floe_tensor *x = tc_f32(xs, 3, NULL), *y = tc_f32(ys, 3, NULL);
    floe_tensor *in[2] = {x, y};

    assert_int_equal(tc_run_status(*state, "BatchMatMulV2", in, 2, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("batch");
    tc_assert_error_contains("[2,3,4]");
    floe_tensor_unref(y);
    in[1] = y = tc_f32(yk, 3, NULL);
    assert_int_equal(tc_run_status(*state, "BatchMatMulV2", in, 2, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[2,5,5]");
    floe_tensor_unref(y);
    in[1] = y = tc_f32(v, 1, NULL);
    assert_int_equal(tc_run_status(*state, "BatchMatMulV2", in, 2, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("rank >= 2");
    floe_tensor_unref(x);
    floe_tensor_unref(y);
}

static void batch_matmul_shape_inference(void **state) {
    floe_graph *g = NULL;
    int64_t xs[4] = {-1, 1, 3, 4}, ys[3] = {6, 4, 5}, bad[3] = {2, 4, 5}, xb[3] = {3, 3, 4};
    floe_node *x, *y, *w, *v, *z = NULL;
    floe_shape s;

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = placeholder(g, "x", xs, 4);
    y = placeholder(g, "y", ys, 3);
    w = placeholder(g, "w", bad, 3);
    v = placeholder(g, "v", xb, 3);
    assert_int_equal(add_mm(g, "BatchMatMulV2", x, y, 0, 0, &z), FLOE_OK);
    s = floe_node_output_shape(z, 0);
    assert_int_equal(s.ndim, 4);
    assert_int_equal(s.dims[0], -1);
    assert_int_equal(s.dims[1], 6);
    assert_int_equal(s.dims[2], 3);
    assert_int_equal(s.dims[3], 5);
    assert_int_equal(add_mm(g, "BatchMatMulV2", v, w, 0, 0, &z), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("[3,3,4]");
    floe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_f32_matches_naive_all_transposes),
        cmocka_unit_test(matmul_other_dtypes_match_naive),
        cmocka_unit_test(matmul_integer_overflow_wraps),
        cmocka_unit_test(matmul_k_zero_gives_zeros),
        cmocka_unit_test(matmul_empty_rows_give_empty_output),
        cmocka_unit_test(matmul_inner_mismatch_names_both_shapes),
        cmocka_unit_test(matmul_rejects_non_matrix),
        cmocka_unit_test(matmul_rejects_mixed_dtypes),
        cmocka_unit_test(matmul_shape_inference),
        cmocka_unit_test(matmul_kernel_checks_fed_shapes),
        cmocka_unit_test(batch_matmul_broadcasts_batch_dims),
        cmocka_unit_test(batch_matmul_many_small_and_few_large),
        cmocka_unit_test(batch_matmul_empty_and_k_zero),
        cmocka_unit_test(batch_matmul_rejects_bad_shapes),
        cmocka_unit_test(batch_matmul_shape_inference),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
