/*
 * test_ops_nn_batchnorm.c - FusedBatchNormV3 and FusedBatchNormGradV3 against a reference
 * in double: training (batch statistics, unbiased batch variance, exponential averaging)
 * and inference, NHWC and NCHW, odd sizes; the training gradient also against central
 * finite differences of the forward kernel; shapes of the empty reserve spaces; errors.
 */
#include "test_common.h"

#include <floe/gradients.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bcase {
    int nchw, training;
    int64_t n, h, w, c;
    float eps, factor;
} bcase;

static floe_attrs *bn_attrs(const bcase *b, int grad) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_float(a, "epsilon", b->eps), FLOE_OK);
    if (!grad)
        assert_int_equal(floe_attrs_set_float(a, "exponential_avg_factor", b->factor), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, "is_training", b->training), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "data_format", b->nchw ? "NCHW" : "NHWC", 4),
                     FLOE_OK);
    return a;
}

static void xshape(const bcase *b, int64_t s[4]) {
    s[0] = b->n;
    s[b->nchw ? 1 : 3] = b->c;
    s[b->nchw ? 2 : 1] = b->h;
    s[b->nchw ? 3 : 2] = b->w;
}

/* Channel of flat element @i. */
static int64_t chan(const bcase *b, int64_t i) {
    return b->nchw ? (i / (b->h * b->w)) % b->c : i % b->c;
}

static floe_tensor *vec(int64_t c, uint64_t seed, float lo, float hi) {
    floe_tensor *t = tc_tensor(FLOE_DTYPE_F32, &c, 1, NULL);
    tc_fill_uniform(floe_tensor_data(t), c, lo, hi, seed);
    return t;
}

/* Runs FusedBatchNormV3; @out gets the 6 outputs. */
static void run_bn(floe_context *ctx, const bcase *b, floe_tensor *const *in, floe_tensor **out) {
    floe_attrs *a = bn_attrs(b, 0);
    floe_status st = floe_eager_run(ctx, "FusedBatchNormV3", NULL, in, 5, a, out, 6);
    if (st != FLOE_OK)
        fail_msg("FusedBatchNormV3: %s", floe_last_error());
    floe_attrs_free(a);
}

static void run_forward_case(floe_context *ctx, const bcase *b) {
    int64_t xs[4], nx = b->n * b->h * b->w * b->c, m = nx / b->c;
    xshape(b, xs);
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
    tc_fill_uniform(floe_tensor_data(x), nx, -3.0f, 5.0f, 3 + (uint64_t)b->c);
    floe_tensor *in[5] = {x, vec(b->c, 1, 0.5f, 2.0f), vec(b->c, 2, -1.0f, 1.0f),
                          vec(b->c, 3, -0.5f, 0.5f), vec(b->c, 4, 0.5f, 1.5f)};
    floe_tensor *out[6] = {NULL};
    const float *xd = floe_tensor_data(x), *sc = floe_tensor_data(in[1]);
    const float *of = floe_tensor_data(in[2]), *rm = floe_tensor_data(in[3]);
    const float *rv = floe_tensor_data(in[4]);
    double *mean = calloc((size_t)b->c, sizeof(double)), *var = calloc((size_t)b->c, sizeof(double));
    float *e = malloc((size_t)nx * sizeof(float)), *ev = malloc((size_t)b->c * sizeof(float));

    run_bn(ctx, b, in, out);
    if (b->training) {
        for (int64_t i = 0; i < nx; i++)
            mean[chan(b, i)] += xd[i] / (double)m;
        for (int64_t i = 0; i < nx; i++)
            var[chan(b, i)] += (xd[i] - mean[chan(b, i)]) * (xd[i] - mean[chan(b, i)]) / (double)m;
    } else {
        for (int64_t c = 0; c < b->c; c++)
            mean[c] = rm[c], var[c] = rv[c];
    }
    for (int64_t i = 0; i < nx; i++) {
        int64_t c = chan(b, i);
        e[i] = (float)((xd[i] - mean[c]) / sqrt(var[c] + b->eps) * sc[c] + of[c]);
    }
    tc_assert_shape(out[0], FLOE_DTYPE_F32, xs, 4);
    tc_assert_close_f32(out[0], e, nx, 1e-4f, 1e-4f);
    for (int64_t c = 0; c < b->c; c++) {
        double f = b->factor;
        ev[c] = (float)(!b->training ? mean[c] : f == 1 ? mean[c] : (1 - f) * rm[c] + f * mean[c]);
    }
    tc_assert_close_f32(out[1], ev, b->c, 1e-4f, 1e-5f);
    for (int64_t c = 0; c < b->c; c++) {
        double f = b->factor, ub = var[c] * (double)m / (double)(m - 1);
        ev[c] = (float)(!b->training ? var[c] : f == 1 ? ub : (1 - f) * rv[c] + f * ub);
    }
    tc_assert_close_f32(out[2], ev, b->c, 1e-4f, 1e-5f);
    for (int64_t c = 0; c < b->c; c++)
        ev[c] = (float)mean[c];
    tc_assert_close_f32(out[3], ev, b->c, 1e-4f, 1e-5f);
    for (int64_t c = 0; c < b->c; c++)
        ev[c] = (float)var[c];
    tc_assert_close_f32(out[4], ev, b->c, 1e-4f, 1e-5f);
    assert_int_equal(floe_tensor_ndim(out[5]), 1);
    assert_int_equal(floe_tensor_num_elements(out[5]), 0);
    for (int i = 0; i < 6; i++)
        floe_tensor_unref(out[i]);
    for (int i = 0; i < 5; i++)
        floe_tensor_unref(in[i]);
    free(mean), free(var), free(e), free(ev);
}

static void bn_training_nhwc_matches_reference(void **state) {
    bcase b = {0, 1, 2, 5, 3, 7, 1e-3f, 1.0f};
    run_forward_case(*state, &b);
    bcase b2 = {0, 1, 8, 16, 16, 40, 1e-5f, 1.0f}; /* parallel over channel blocks */
    run_forward_case(*state, &b2);
}

static void bn_training_nchw_exponential_average_matches_reference(void **state) {
    bcase b = {1, 1, 3, 4, 5, 6, 1e-3f, 0.3f};
    run_forward_case(*state, &b);
    bcase b2 = {1, 1, 4, 12, 12, 33, 1e-3f, 0.01f};
    run_forward_case(*state, &b2);
}

static void bn_inference_matches_reference(void **state) {
    bcase b = {0, 0, 2, 3, 3, 5, 1e-3f, 1.0f};
    run_forward_case(*state, &b);
    bcase b2 = {1, 0, 2, 3, 4, 5, 1e-3f, 1.0f};
    run_forward_case(*state, &b2);
}

/* loss = sum(w * y) of FusedBatchNormV3 in double. */
static double bn_loss(floe_context *ctx, const bcase *b, floe_tensor *const *in, const float *w) {
    floe_tensor *out[6] = {NULL};
    double l = 0;
    run_bn(ctx, b, in, out);
    floe_tensor *yh = tc_host(out[0]);          /* a host copy of a GPU's result */
    const float *y = floe_tensor_data(yh);
    for (int64_t i = 0; i < floe_tensor_num_elements(yh); i++)
        l += (double)w[i] * y[i];
    floe_tensor_unref(yh);
    for (int i = 0; i < 6; i++)
        floe_tensor_unref(out[i]);
    return l;
}

/* The gradient kernel against central differences of the forward kernel. */
static void run_grad_case(floe_context *ctx, const bcase *b) {
    int64_t xs[4], nx = b->n * b->h * b->w * b->c;
    xshape(b, xs);
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL), *dy = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
    tc_fill_uniform(floe_tensor_data(x), nx, -2.0f, 2.0f, 17);
    tc_fill_uniform(floe_tensor_data(dy), nx, 0.5f, 1.5f, 19);
    floe_tensor *in[5] = {x, vec(b->c, 5, 0.5f, 2.0f), vec(b->c, 6, -1.0f, 1.0f),
                          vec(b->c, 7, -0.5f, 0.5f), vec(b->c, 8, 0.5f, 1.5f)};
    floe_tensor *out[6] = {NULL}, *g[5] = {NULL};
    floe_attrs *ga = bn_attrs(b, 1);
    const float *w = floe_tensor_data(dy);

    run_bn(ctx, b, in, out);
    floe_tensor *gin[6] = {dy, x, in[1], out[3], out[4], out[5]};
    assert_int_equal(floe_eager_run(ctx, "FusedBatchNormGradV3", NULL, gin, 6, ga, g, 5), FLOE_OK);
    tc_assert_shape(g[0], FLOE_DTYPE_F32, xs, 4);
    assert_int_equal(floe_tensor_num_elements(g[3]), 0);
    assert_int_equal(floe_tensor_num_elements(g[4]), 0);
    /* d/dx, d/dscale, d/doffset by central differences */
    const float delta = 1e-2f;
    for (int which = 0; which < 3; which++) {
        floe_tensor *t = in[which];
        float *p = floe_tensor_data(t);
        floe_tensor *gh = tc_host(g[which]);
        const float *sym = floe_tensor_data(gh);
        int64_t n = floe_tensor_num_elements(t);
        for (int64_t i = 0; i < n; i += (n > 40 ? 7 : 1)) {
            float keep = p[i];
            p[i] = keep + delta;
            double lp = bn_loss(ctx, b, in, w);
            p[i] = keep - delta;
            double lm = bn_loss(ctx, b, in, w);
            p[i] = keep;
            double num = (lp - lm) / (2.0 * delta);
            if (fabs(num - sym[i]) > 2e-2 * (1 + fabs(num)))
                fail_msg("input %d element %lld: gradient %g, finite difference %g", which,
                         (long long)i, sym[i], num);
        }
        floe_tensor_unref(gh);
    }
    for (int i = 0; i < 6; i++)
        floe_tensor_unref(out[i]);
    for (int i = 0; i < 5; i++)
        floe_tensor_unref(g[i]), floe_tensor_unref(in[i]);
    floe_tensor_unref(dy);
    floe_attrs_free(ga);
}

static void bn_grad_training_matches_finite_differences(void **state) {
    bcase b = {0, 1, 2, 3, 3, 4, 1e-3f, 1.0f};
    run_grad_case(*state, &b);
    bcase b2 = {1, 1, 2, 3, 2, 3, 1e-3f, 1.0f};
    run_grad_case(*state, &b2);
}

static void bn_grad_inference_matches_finite_differences(void **state) {
    bcase b = {0, 0, 2, 3, 3, 4, 1e-3f, 1.0f};
    run_grad_case(*state, &b);
}

static void bn_bad_arguments_fail(void **state) {
    floe_context *ctx = *state;
    bcase b = {0, 1, 1, 2, 2, 3, 1e-3f, 1.0f};
    floe_attrs *a = bn_attrs(&b, 0);
    int64_t xs[4] = {1, 2, 2, 3}, x3[3] = {2, 2, 3}, xz[4] = {1, 0, 2, 3};
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
    floe_tensor *v3 = vec(3, 1, 0, 1), *v2 = vec(2, 1, 0, 1);
    floe_tensor *in[5] = {x, v3, v3, v3, v3};

    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_OK);
    in[1] = v2;
    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("scale must be");
    in[1] = v3;
    floe_tensor *bad = tc_tensor(FLOE_DTYPE_F32, x3, 3, NULL);
    in[0] = bad;
    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("4-dimensional");
    floe_tensor *empty = tc_tensor(FLOE_DTYPE_F32, xz, 4, NULL);
    in[0] = empty;
    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("empty");
    /* inference needs the mean and variance */
    floe_attrs_set_bool(a, "is_training", 0);
    in[0] = x;
    in[3] = v2;
    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("mean must be");
    floe_attrs_set_string(a, "data_format", "NCWH", 4);
    assert_int_equal(tc_run_status(ctx, "FusedBatchNormV3", in, 5, a, 6), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("data_format");
    floe_tensor_unref(x), floe_tensor_unref(v3), floe_tensor_unref(v2);
    floe_tensor_unref(bad), floe_tensor_unref(empty);
    floe_attrs_free(a);
}

/* FusedBatchNormV3's registered gradient (through floe_gradients) against central
 * differences, in training (NHWC and NCHW).  In inference TensorFlow's gradient gives the
 * mean and variance inputs none, so the checker (which differentiates every float input)
 * does not apply there; bn_grad_inference_matches_finite_differences covers that kernel. */
static void bn_registered_gradient_matches_finite_differences(void **state) {
    const bcase cases[] = {{0, 1, 2, 3, 2, 3, 1e-3f, 1.0f}, {1, 1, 2, 2, 3, 2, 1e-3f, 1.0f}};
    for (int k = 0; k < 2; k++) {
        const bcase *b = &cases[k];
        int64_t xs[4], nx = b->n * b->h * b->w * b->c;
        double err = -1;
        xshape(b, xs);
        floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
        tc_fill_uniform(floe_tensor_data(x), nx, -2.0f, 2.0f, 23);
        floe_tensor *in[5] = {x, vec(b->c, 1, 0.5f, 2.0f), vec(b->c, 2, -1.0f, 1.0f),
                              vec(b->c, 3, -0.5f, 0.5f), vec(b->c, 4, 0.5f, 1.5f)};
        floe_attrs *a = bn_attrs(b, 0);
        if (floe_gradient_check(*state, "FusedBatchNormV3", in, 5, a, 0, 1e-2, &err) != FLOE_OK)
            fail_msg("gradient check: %s", floe_last_error());
        if (!(err <= 2e-2))
            fail_msg("gradient of FusedBatchNormV3 (%s): max error %g",
                     b->training ? "training" : "inference", err);
        for (int i = 0; i < 5; i++)
            floe_tensor_unref(in[i]);
        floe_attrs_free(a);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bn_training_nhwc_matches_reference),
        cmocka_unit_test(bn_training_nchw_exponential_average_matches_reference),
        cmocka_unit_test(bn_inference_matches_reference),
        cmocka_unit_test(bn_grad_training_matches_finite_differences),
        cmocka_unit_test(bn_grad_inference_matches_finite_differences),
        cmocka_unit_test(bn_bad_arguments_fail),
        cmocka_unit_test(bn_registered_gradient_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
