/*
 * test_ops_nn_loss.c - the losses of ops_nn (loss.c): SoftmaxCrossEntropyWithLogits,
 * SparseSoftmaxCrossEntropyWithLogits, SigmoidCrossEntropyWithLogits (and its Grad op)
 * and L2Loss.
 *
 * Each kernel runs eagerly in f32 and f64 on random inputs (empty batches, one class,
 * small batches and batches large enough to be split across the thread pool) and is
 * compared with a naive reference in double.  Then stability for large logits, the
 * errors (labels out of range named with their position, wrong ranks and shapes, no
 * classes) and every registered gradient against float64 central differences.
 *
 * Sections: helpers; softmax cross-entropies; sigmoid cross-entropy; L2Loss; errors;
 * gradient checks.
 */
#include "test_common.h"

#include <floe/gradients.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

/* Rows of random probabilities (each row sums to 1). */
static floe_tensor *rand_distribution(floe_dtype dt, int64_t rows, int64_t cols, uint64_t seed) {
    int64_t shape[2] = {rows, cols};
    floe_tensor *t = tc_rand_tensor(dt, shape, 2, 0, 1, seed);
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t j = 0; j < cols; j++)
            s += dt == FLOE_DTYPE_F32 ? ((float *)floe_tensor_data(t))[r * cols + j]
                                      : ((double *)floe_tensor_data(t))[r * cols + j];
        for (int64_t j = 0; j < cols; j++) {
            if (dt == FLOE_DTYPE_F32)
                ((float *)floe_tensor_data(t))[r * cols + j] /= (float)s;
            else
                ((double *)floe_tensor_data(t))[r * cols + j] /= s;
        }
    }
    return t;
}

static void assert_close(const floe_tensor *t, const double *want, int64_t n, double rtol,
                         double atol, const char *what) {
    tc_assert_near(t, want, n, rtol, atol, false, what);
}

/* Runs @op with two outputs. */
static void run2(floe_context *ctx, const char *op, floe_tensor **in, int nin,
                 floe_tensor **out) {
    floe_status st = floe_eager_run(ctx, op, NULL, in, nin, NULL, out, 2);
    if (st != FLOE_OK)
        fail_msg("%s: %s: %s", op, floe_status_str(st), floe_last_error());
}

/* Reference softmax cross-entropy of row @r: loss, and backprop into @bp. */
static double ref_xent_row(const floe_tensor *x, const floe_tensor *z, int64_t label, int64_t r,
                           int64_t c, double *bp) {
    double m = -INFINITY, s = 0, loss = 0;
    for (int64_t j = 0; j < c; j++)
        m = fmax(m, tc_get_f(x, r * c + j));
    for (int64_t j = 0; j < c; j++)
        s += exp(tc_get_f(x, r * c + j) - m);
    double lse = log(s) + m;
    for (int64_t j = 0; j < c; j++) {
        double zj = z != NULL ? tc_get_f(z, r * c + j) : (double)(j == label);
        loss += zj * (lse - tc_get_f(x, r * c + j));
        bp[r * c + j] = exp(tc_get_f(x, r * c + j) - lse) - zj;
    }
    return loss;
}

/* ---- Softmax cross-entropies ---------------------------------------------------------- */

static const int64_t xent_shapes[][2] = {{0, 5}, {1, 1}, {4, 10}, {32, 10}, {600, 37}};
#define NXENT 5

static void check_xent(floe_context *ctx, floe_dtype dt, bool sparse, floe_dtype lt) {
    const char *op = sparse ? "SparseSoftmaxCrossEntropyWithLogits"
                            : "SoftmaxCrossEntropyWithLogits";
    for (int s = 0; s < NXENT; s++) {
        int64_t rows = xent_shapes[s][0], cols = xent_shapes[s][1];
        floe_tensor *x = tc_rand_tensor(dt, xent_shapes[s], 2, -6, 6, 81 + s), *z;
        if (sparse) {
            z = tc_tensor(lt, &rows, 1, NULL);
            uint64_t st = 91 + s;
            for (int64_t r = 0; r < rows; r++) {
                int64_t v = (int64_t)(tc_rng_next(&st) % (uint64_t)cols);
                if (lt == FLOE_DTYPE_I32)
                    ((int32_t *)floe_tensor_data(z))[r] = (int32_t)v;
                else
                    ((int64_t *)floe_tensor_data(z))[r] = v;
            }
        } else {
            z = rand_distribution(dt, rows, cols, 91 + s);
        }
        double *loss = malloc(sizeof(double) * (size_t)(rows + 1));
        double *bp = malloc(sizeof(double) * (size_t)(rows * cols + 1));
        for (int64_t r = 0; r < rows; r++)
            loss[r] = ref_xent_row(x, sparse ? NULL : z, sparse ? (int64_t)tc_get_f(z, r) : -1, r,
                                   cols, bp);
        floe_tensor *in[2] = {x, z}, *out[2] = {NULL, NULL};
        run2(ctx, op, in, 2, out);
        tc_assert_shape(out[0], dt, &rows, 1);
        tc_assert_shape(out[1], dt, xent_shapes[s], 2);
        double tol = dt == FLOE_DTYPE_F32 ? 2e-5 : 1e-12;
        assert_close(out[0], loss, rows, tol, tol, op);
        assert_close(out[1], bp, rows * cols, tol, tol, op);
        free(loss);
        free(bp);
        floe_tensor_unref(out[0]);
        floe_tensor_unref(out[1]);
        floe_tensor_unref(z);
        floe_tensor_unref(x);
    }
}

static void xent_matches_reference(void **state) {
    check_xent(*state, FLOE_DTYPE_F32, false, FLOE_DTYPE_INVALID);
    check_xent(*state, FLOE_DTYPE_F64, false, FLOE_DTYPE_INVALID);
}

static void sparse_xent_matches_reference(void **state) {
    check_xent(*state, FLOE_DTYPE_F32, true, FLOE_DTYPE_I32);
    check_xent(*state, FLOE_DTYPE_F32, true, FLOE_DTYPE_I64);
    check_xent(*state, FLOE_DTYPE_F64, true, FLOE_DTYPE_I32);
    check_xent(*state, FLOE_DTYPE_F64, true, FLOE_DTYPE_I64);
}

static void xent_is_stable_for_large_logits(void **state) {
    float xs[3] = {1000.0f, -1000.0f, 999.0f};
    int32_t label = 2;
    int64_t shape[2] = {1, 3}, one = 1;
    floe_tensor *in[2] = {tc_f32(shape, 2, xs), tc_i32(&one, 1, &label)}, *out[2];
    run2(*state, "SparseSoftmaxCrossEntropyWithLogits", in, 2, out);
    double e = exp(-1.0);
    const float loss = (float)(1 + log1p(e));
    tc_assert_close_f32(out[0], &loss, 1, 1e-5f, 0);
    const float bp[3] = {(float)(1 / (1 + e)), 0.0f, (float)(e / (1 + e) - 1)};
    tc_assert_close_f32(out[1], bp, 3, 1e-5f, 1e-7f);
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(out[i]);
        floe_tensor_unref(in[i]);
    }
}

/* ---- Sigmoid cross-entropy ---------------------------------------------------------- */

static void check_sigmoid_xent(floe_context *ctx, floe_dtype dt) {
    const int64_t shapes[][2] = {{0, 0}, {0, 0}, {3, 4}, {50000, 1}};
    const int ranks[] = {0, 1, 2, 2};
    for (int s = 0; s < 4; s++) {
        floe_tensor *z = tc_rand_tensor(dt, shapes[s], ranks[s], 0, 1, 101 + s);
        floe_tensor *x = tc_rand_tensor(dt, shapes[s], ranks[s], -20, 20, 111 + s);
        floe_tensor *g = tc_rand_tensor(dt, shapes[s], ranks[s], -1, 1, 121 + s);
        int64_t n = floe_tensor_num_elements(x);
        double *want = malloc(sizeof(double) * (size_t)(n + 1));
        double *want_dz = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            double xi = tc_get_f(x, i), zi = tc_get_f(z, i);
            want[i] = xi > 0 ? xi - xi * zi + log1p(exp(-xi)) : -xi * zi + log1p(exp(xi));
        }
        floe_tensor *in[3] = {z, x, NULL};
        floe_tensor *loss = tc_run1(ctx, "SigmoidCrossEntropyWithLogits", in, 2, NULL);
        tc_assert_shape(loss, dt, shapes[s], ranks[s]);
        double tol = dt == FLOE_DTYPE_F32 ? 1e-5 : 1e-12;
        assert_close(loss, want, n, tol, tol, "SigmoidCrossEntropyWithLogits");
        for (int64_t i = 0; i < n; i++) {
            double xi = tc_get_f(x, i), gi = tc_get_f(g, i);
            want[i] = gi * (1 / (1 + exp(-xi)) - tc_get_f(z, i));
            want_dz[i] = -gi * xi;
        }
        floe_tensor *gin[3] = {g, z, x}, *out[2];
        run2(ctx, "SigmoidCrossEntropyWithLogitsGrad", gin, 3, out);
        assert_close(out[0], want, n, tol, tol, "SigmoidCrossEntropyWithLogitsGrad");
        assert_close(out[1], want_dz, n, tol, tol, "SigmoidCrossEntropyWithLogitsGrad");
        free(want);
        free(want_dz);
        floe_tensor_unref(out[0]);
        floe_tensor_unref(out[1]);
        floe_tensor_unref(loss);
        floe_tensor_unref(g);
        floe_tensor_unref(x);
        floe_tensor_unref(z);
    }
}

static void sigmoid_xent_matches_reference(void **state) {
    check_sigmoid_xent(*state, FLOE_DTYPE_F32);
    check_sigmoid_xent(*state, FLOE_DTYPE_F64);
}

/* ---- L2Loss ------------------------------------------------------------------------- */

static void l2_loss_matches_reference(void **state) {
    const int64_t shapes[][3] = {{0, 0, 0}, {0, 0, 0}, {5, 0, 0}, {3, 4, 5}, {300001, 0, 0}};
    const int ranks[] = {0, 1, 1, 3, 1};
    for (int d = 0; d < 2; d++) {
        floe_dtype dt = d == 0 ? FLOE_DTYPE_F32 : FLOE_DTYPE_F64;
        for (int s = 0; s < 5; s++) {
            floe_tensor *t = tc_rand_tensor(dt, shapes[s], ranks[s], -3, 3, 131 + s);
            double want = 0;
            for (int64_t i = 0; i < floe_tensor_num_elements(t); i++)
                want += tc_get_f(t, i) * tc_get_f(t, i);
            want /= 2;
            floe_tensor *y = tc_run1(*state, "L2Loss", &t, 1, NULL);
            tc_assert_shape(y, dt, NULL, 0);
            assert_close(y, &want, 1, dt == FLOE_DTYPE_F32 ? 1e-6 : 1e-13, 0, "L2Loss");
            floe_tensor_unref(y);
            floe_tensor_unref(t);
        }
    }
}

/* ---- Errors -------------------------------------------------------------------------- */

/* Runs SparseSoftmaxCrossEntropyWithLogits on labels with row @bad out of range: true
 * when it failed (the CPU kernel's INVALID_ARGUMENT, whose message the caller checks).
 * A GPU kernel, like TensorFlow's, cannot stop on a label it meets on the device: it
 * gives that row a NaN loss instead, and the other rows their losses, as checked here. */
static bool sparse_xent_fails(floe_context *ctx, floe_tensor **in, int64_t bad) {
    floe_tensor *out[2] = {NULL, NULL};
    floe_status st = floe_eager_run(ctx, "SparseSoftmaxCrossEntropyWithLogits", NULL, in, 2,
                                    NULL, out, 2);
    if (st == FLOE_OK && tc_on_device(out[0])) {
        for (int64_t r = 0; r < floe_tensor_num_elements(out[0]); r++)
            if (isnan(tc_get_f(out[0], r)) != (r == bad))
                fail_msg("row %lld: loss %g on the GPU (label row %lld out of range)",
                         (long long)r, tc_get_f(out[0], r), (long long)bad);
        tc_unref_all(out, 2);
        return false;
    }
    assert_int_equal(st, FLOE_INVALID_ARGUMENT);
    assert_null(out[0]);
    assert_null(out[1]);
    return true;
}

static void sparse_xent_names_bad_labels(void **state) {
    int64_t shape[2] = {3, 4}, rows = 3;
    floe_tensor *x = tc_rand_tensor(FLOE_DTYPE_F32, shape, 2, -1, 1, 141);
    int32_t bad[3] = {0, 7, 2};
    int64_t neg[3] = {1, 2, -1};
    floe_tensor *in[2] = {x, tc_i32(&rows, 1, bad)};
    if (sparse_xent_fails(*state, in, 1)) {
        tc_assert_error_contains("label value of 7 (labels[1])");
        tc_assert_error_contains("[0, 4)");
    }
    floe_tensor_unref(in[1]);
    in[1] = tc_i64(&rows, 1, neg);
    if (sparse_xent_fails(*state, in, 2))
        tc_assert_error_contains("label value of -1 (labels[2])");
    floe_tensor_unref(in[1]);
    floe_tensor_unref(x);
}

static void xent_rejects_bad_shapes(void **state) {
    int64_t s34[2] = {3, 4}, s43[2] = {4, 3}, s3[1] = {3}, s2[1] = {2}, s0[2] = {3, 0};
    floe_tensor *x = tc_f32(s34, 2, NULL), *x1 = tc_f32(s3, 1, NULL), *x0 = tc_f32(s0, 2, NULL);
    floe_tensor *z = tc_f32(s43, 2, NULL), *l2 = tc_i32(s2, 1, NULL), *l3 = tc_i32(s3, 1, NULL);
    floe_tensor *in[2] = {x, z};
    floe_context *ctx = *state;
    assert_int_equal(tc_run_status(ctx, "SoftmaxCrossEntropyWithLogits", in, 2, NULL, 2),
                     FLOE_INVALID_ARGUMENT);
    in[1] = l2;  /* batch 2 against 3 */
    assert_int_equal(tc_run_status(ctx, "SparseSoftmaxCrossEntropyWithLogits", in, 2, NULL, 2),
                     FLOE_INVALID_ARGUMENT);
    in[0] = x1;  /* rank-1 logits */
    in[1] = l3;
    assert_int_equal(tc_run_status(ctx, "SparseSoftmaxCrossEntropyWithLogits", in, 2, NULL, 2),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("2-dimensional");
    in[0] = x0;  /* no classes */
    assert_int_equal(tc_run_status(ctx, "SparseSoftmaxCrossEntropyWithLogits", in, 2, NULL, 2),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("at least one class");
    in[0] = x;   /* sigmoid: shapes must agree */
    in[1] = z;
    assert_int_equal(tc_run_status(ctx, "SigmoidCrossEntropyWithLogits", in, 2, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    floe_tensor *ts[6] = {x, x1, x0, z, l2, l3};
    for (int i = 0; i < 6; i++)
        floe_tensor_unref(ts[i]);
}

/* ---- Gradient checks ----------------------------------------------------------------- */

static void check_gradient(floe_context *ctx, const char *op, floe_tensor **in, int nin,
                           int output, double tol) {
    double err = -1;
    floe_status st = floe_gradient_check(ctx, op, in, nin, NULL, output, 1e-6, &err);
    if (st != FLOE_OK)
        fail_msg("gradient check of %s: %s: %s", op, floe_status_str(st), floe_last_error());
    if (!(err <= tol))
        fail_msg("gradient of %s: max error %g > %g", op, err, tol);
}

static void loss_gradients_match_finite_differences(void **state) {
    int64_t shape[2] = {4, 5}, rows = 4;
    floe_tensor *x = tc_rand_tensor(FLOE_DTYPE_F64, shape, 2, -3, 3, 151);
    floe_tensor *z = rand_distribution(FLOE_DTYPE_F64, 4, 5, 152);
    int64_t labels[4] = {0, 4, 2, 2};
    floe_tensor *l = tc_i64(&rows, 1, labels);
    floe_tensor *in[2] = {x, z};
    check_gradient(*state, "SoftmaxCrossEntropyWithLogits", in, 2, 0, 1e-6);
    in[1] = l;
    check_gradient(*state, "SparseSoftmaxCrossEntropyWithLogits", in, 2, 0, 1e-6);
    floe_tensor *zs = tc_rand_tensor(FLOE_DTYPE_F64, shape, 2, 0, 1, 153);
    in[0] = zs;
    in[1] = x;
    check_gradient(*state, "SigmoidCrossEntropyWithLogits", in, 2, 0, 1e-6);
    check_gradient(*state, "L2Loss", &x, 1, 0, 1e-6);
    floe_tensor_unref(zs);
    floe_tensor_unref(l);
    floe_tensor_unref(z);
    floe_tensor_unref(x);
}

/* Differentiating through the backprop output (second order) is refused, by name. */
static void xent_backprop_gradient_is_unimplemented(void **state) {
    int64_t shape[2] = {2, 3}, rows = 2;
    int32_t labels[2] = {1, 2};
    floe_tensor *in[2] = {tc_rand_tensor(FLOE_DTYPE_F64, shape, 2, -1, 1, 161),
                          tc_i32(&rows, 1, labels)};
    double err = 0;
    assert_int_equal(floe_gradient_check(*state, "SparseSoftmaxCrossEntropyWithLogits", in, 2,
                                         NULL, 1, 1e-6, &err),
                     FLOE_UNIMPLEMENTED);
    tc_assert_error_contains("second order");
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xent_matches_reference),
        cmocka_unit_test(sparse_xent_matches_reference),
        cmocka_unit_test(xent_is_stable_for_large_logits),
        cmocka_unit_test(sigmoid_xent_matches_reference),
        cmocka_unit_test(l2_loss_matches_reference),
        cmocka_unit_test(sparse_xent_names_bad_labels),
        cmocka_unit_test(xent_rejects_bad_shapes),
        cmocka_unit_test(loss_gradients_match_finite_differences),
        cmocka_unit_test(xent_backprop_gradient_is_unimplemented),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
