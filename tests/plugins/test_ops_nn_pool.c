/*
 * test_ops_nn_pool.c - MaxPool, AvgPool, MaxPoolGrad and AvgPoolGrad against a naive
 * reference: SAME and VALID, strides 1 and 2, windows wider than the stride and narrower,
 * odd sizes, NHWC and NCHW, the seed CNN's pooling; shape inference; argument errors.
 */
#include "test_common.h"

#include <floe/gradients.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pcase {
    int nchw;
    int64_t n, h, w, c, kh, kw, sh, sw;
    const char *pad;
} pcase;

typedef struct pgeo {
    int64_t oh, ow, pt, pl;
} pgeo;

static void window(const char *pad, int64_t in, int64_t k, int64_t s, int64_t *out, int64_t *pb) {
    if (strcmp(pad, "SAME") == 0) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + k - in;
        *pb = total > 0 ? total / 2 : 0;
    } else {
        *out = (in - k) / s + 1;
        *pb = 0;
    }
}

static pgeo case_geo(const pcase *p) {
    pgeo g;
    window(p->pad, p->h, p->kh, p->sh, &g.oh, &g.pt);
    window(p->pad, p->w, p->kw, p->sw, &g.ow, &g.pl);
    return g;
}

static int64_t at(const pcase *p, int64_t h, int64_t w, int64_t n, int64_t c, int64_t y,
                  int64_t x) {
    return p->nchw ? ((n * p->c + c) * h + y) * w + x : ((n * h + y) * w + x) * p->c + c;
}

static void shape4(const pcase *p, int64_t h, int64_t w, int64_t s[4]) {
    s[0] = p->n;
    s[p->nchw ? 1 : 3] = p->c;
    s[p->nchw ? 2 : 1] = h;
    s[p->nchw ? 3 : 2] = w;
}

/* y (max or average) and the gradients of the sum of dy * y, into @y and @dx. */
static void ref_pool(const pcase *p, const pgeo *g, int max, const float *x, const float *dy,
                     float *y, float *dx) {
    memset(dx, 0, (size_t)(p->n * p->h * p->w * p->c) * sizeof(float));
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t c = 0; c < p->c; c++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    double acc = max ? -INFINITY : 0;
                    int64_t cnt = 0, best = -1;
                    for (int64_t ky = 0; ky < p->kh; ky++)
                        for (int64_t kx = 0; kx < p->kw; kx++) {
                            int64_t iy = oy * p->sh + ky - g->pt, ix = ox * p->sw + kx - g->pl;
                            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w)
                                continue;
                            int64_t i = at(p, p->h, p->w, n, c, iy, ix);
                            cnt++;
                            if (max && x[i] > acc)
                                acc = x[i], best = i;
                            else if (!max)
                                acc += x[i];
                        }
                    int64_t o = at(p, g->oh, g->ow, n, c, oy, ox);
                    y[o] = (float)(max ? acc : acc / (double)cnt);
                    if (max)
                        dx[best] += dy[o];
                    else
                        for (int64_t ky = 0; ky < p->kh; ky++)
                            for (int64_t kx = 0; kx < p->kw; kx++) {
                                int64_t iy = oy * p->sh + ky - g->pt, ix = ox * p->sw + kx - g->pl;
                                if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
                                    dx[at(p, p->h, p->w, n, c, iy, ix)] += dy[o] / (float)cnt;
                            }
                }
}

static floe_attrs *pool_attrs(const pcase *p) {
    floe_attrs *a = NULL;
    int64_t k[4] = {1, p->kh, p->kw, 1}, s[4] = {1, p->sh, p->sw, 1};
    if (p->nchw) {
        k[1] = 1, k[2] = p->kh, k[3] = p->kw;
        s[1] = 1, s[2] = p->sh, s[3] = p->sw;
    }
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_int_list(a, "ksize", k, 4), FLOE_OK);
    assert_int_equal(floe_attrs_set_int_list(a, "strides", s, 4), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "padding", p->pad, strlen(p->pad)), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "data_format", p->nchw ? "NCHW" : "NHWC", 4),
                     FLOE_OK);
    return a;
}

static void run_case(floe_context *ctx, const pcase *p) {
    pgeo g = case_geo(p);
    int64_t xs[4], ys[4], nx = p->n * p->h * p->w * p->c, ny = p->n * g.oh * g.ow * p->c;
    float *yref = malloc((size_t)ny * sizeof(float)), *dxref = malloc((size_t)nx * sizeof(float));
    floe_attrs *a = pool_attrs(p);

    shape4(p, p->h, p->w, xs);
    shape4(p, g.oh, g.ow, ys);
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
    floe_tensor *dy = tc_tensor(FLOE_DTYPE_F32, ys, 4, NULL);
    tc_fill_uniform(floe_tensor_data(x), nx, -2.0f, 2.0f, 5 + (uint64_t)p->h);
    tc_fill_uniform(floe_tensor_data(dy), ny, -1.0f, 1.0f, 9);
    for (int max = 0; max <= 1; max++) {
        ref_pool(p, &g, max, floe_tensor_data(x), floe_tensor_data(dy), yref, dxref);
        floe_tensor *in[3] = {x, NULL, NULL};
        floe_tensor *y = tc_run1(ctx, max ? "MaxPool" : "AvgPool", in, 1, a);
        tc_assert_shape(y, FLOE_DTYPE_F32, ys, 4);
        tc_assert_close_f32(y, yref, ny, 1e-5f, 1e-5f);
        floe_tensor *dx, *sz = NULL;
        if (max) {
            in[1] = y, in[2] = dy;
            dx = tc_run1(ctx, "MaxPoolGrad", in, 3, a);
        } else {
            int32_t v[4] = {(int32_t)xs[0], (int32_t)xs[1], (int32_t)xs[2], (int32_t)xs[3]};
            int64_t four = 4;
            sz = tc_i32(&four, 1, v);
            in[0] = sz, in[1] = dy;
            dx = tc_run1(ctx, "AvgPoolGrad", in, 2, a);
        }
        tc_assert_shape(dx, FLOE_DTYPE_F32, xs, 4);
        tc_assert_close_f32(dx, dxref, nx, 1e-5f, 1e-5f);
        floe_tensor_unref(dx);
        floe_tensor_unref(sz);
        floe_tensor_unref(y);
    }
    floe_tensor_unref(x);
    floe_tensor_unref(dy);
    floe_attrs_free(a);
    free(yref);
    free(dxref);
}

static void pool_valid_2x2_stride2_matches_reference(void **state) {
    pcase p = {0, 2, 8, 6, 3, 2, 2, 2, 2, "VALID"};
    run_case(*state, &p);
}

static void pool_same_odd_sizes_match_reference(void **state) {
    pcase p = {0, 2, 7, 9, 5, 3, 3, 2, 2, "SAME"};
    run_case(*state, &p);
    pcase p2 = {0, 1, 5, 5, 2, 3, 2, 1, 1, "SAME"};
    run_case(*state, &p2);
    pcase p3 = {0, 3, 9, 7, 4, 2, 3, 3, 2, "VALID"};
    run_case(*state, &p3);
}

static void pool_nchw_matches_reference(void **state) {
    pcase p = {1, 2, 7, 6, 3, 3, 3, 2, 2, "SAME"};
    run_case(*state, &p);
    pcase p2 = {1, 1, 6, 8, 2, 2, 2, 2, 2, "VALID"};
    run_case(*state, &p2);
}

static void pool_seed_cnn_matches_reference(void **state) {
    pcase p = {0, 4, 28, 28, 32, 2, 2, 2, 2, "VALID"};
    run_case(*state, &p);
    pcase p2 = {0, 4, 14, 14, 64, 2, 2, 2, 2, "SAME"};
    run_case(*state, &p2);
    /* an odd batch big enough to be split unevenly over the pool (4 + 3 images) */
    pcase p3 = {0, 7, 28, 28, 32, 2, 2, 2, 2, "VALID"};
    run_case(*state, &p3);
    pcase p4 = {1, 7, 28, 28, 32, 3, 3, 2, 2, "SAME"};
    run_case(*state, &p4);
}

static floe_status pool_status(floe_context *ctx, const char *op, const int64_t *xs, int rank,
                               const int64_t *k, int nk, const char *pad, const char *fmt) {
    floe_attrs *a = NULL;
    int64_t s[4] = {1, 1, 1, 1};
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, rank, NULL), *in[1] = {x};
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_int_list(a, "ksize", k, nk);
    floe_attrs_set_int_list(a, "strides", s, 4);
    floe_attrs_set_string(a, "padding", pad, strlen(pad));
    floe_attrs_set_string(a, "data_format", fmt, strlen(fmt));
    floe_status st = tc_run_status(ctx, op, in, 1, a, 1);
    floe_tensor_unref(x);
    floe_attrs_free(a);
    return st;
}

static void pool_bad_arguments_fail(void **state) {
    floe_context *ctx = *state;
    int64_t xs[4] = {1, 4, 4, 2}, k[4] = {1, 2, 2, 1};
    int64_t k0[4] = {1, 0, 2, 1}, kc[4] = {1, 2, 2, 2}, kbig[4] = {1, 5, 2, 1}, x3[3] = {4, 4, 2};
    int64_t xz[4] = {1, 4, 4, 0};

    assert_int_equal(pool_status(ctx, "MaxPool", xs, 4, k, 4, "VALID", "NHWC"), FLOE_OK);
    assert_int_equal(pool_status(ctx, "MaxPool", xs, 4, k0, 4, "VALID", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("ksize must be positive");
    assert_int_equal(pool_status(ctx, "AvgPool", xs, 4, k, 3, "VALID", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("ksize must have 4 values");
    assert_int_not_equal(pool_status(ctx, "MaxPool", xs, 4, kc, 4, "VALID", "NHWC"), FLOE_OK);
    tc_assert_error_contains("batch and depth");
    assert_int_equal(pool_status(ctx, "AvgPool", xs, 4, kbig, 4, "VALID", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("negative");
    assert_int_equal(pool_status(ctx, "MaxPool", xs, 4, k, 4, "EXPLICIT", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("padding must be SAME or VALID");
    assert_int_equal(pool_status(ctx, "MaxPool", xs, 4, k, 4, "SAME", "HWNC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("data_format");
    assert_int_equal(pool_status(ctx, "MaxPool", x3, 3, k, 4, "SAME", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("4-dimensional");
    assert_int_equal(pool_status(ctx, "AvgPool", xz, 4, k, 4, "SAME", "NHWC"),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("non-empty");
}

static void max_pool_grad_wrong_grad_shape_fails(void **state) {
    pcase p = {0, 1, 4, 4, 2, 2, 2, 2, 2, "VALID"};
    floe_attrs *a = pool_attrs(&p);
    int64_t xs[4] = {1, 4, 4, 2}, ys[4] = {1, 2, 2, 2}, bad[4] = {1, 3, 2, 2};
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL), *y = tc_tensor(FLOE_DTYPE_F32, ys, 4, NULL);
    floe_tensor *dy = tc_tensor(FLOE_DTYPE_F32, bad, 4, NULL), *in[3] = {x, y, dy};
    assert_int_equal(tc_run_status(*state, "MaxPoolGrad", in, 3, a, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("grad has shape");
    floe_tensor_unref(x);
    floe_tensor_unref(y);
    floe_tensor_unref(dy);
    floe_attrs_free(a);
}

static void max_pool_shape_inferred_in_graph(void **state) {
    floe_graph *g = NULL;
    floe_node_builder *b = NULL;
    floe_node *xn = NULL, *pn = NULL;
    int64_t xs[4] = {32, 28, 28, 32}, k[4] = {1, 2, 2, 1};

    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "x", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", xs, 4);
    assert_int_equal(floe_node_builder_finish(b, &xn), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "MaxPool", "pool", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){xn, 0, 0});
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "ksize", k, 4);
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "strides", k, 4);
    floe_attrs_set_string(floe_node_builder_attrs(b), "padding", "VALID", 5);
    assert_int_equal(floe_node_builder_finish(b, &pn), FLOE_OK);
    floe_shape s = floe_node_output_shape(pn, 0);
    assert_int_equal(s.ndim, 4);
    assert_int_equal(s.dims[0], 32);
    assert_int_equal(s.dims[1], 14);
    assert_int_equal(s.dims[2], 14);
    assert_int_equal(s.dims[3], 32);
    floe_graph_free(g);
}

/* MaxPool's and AvgPool's registered gradients against central differences; the inputs
 * are distinct values 0.1 apart, so no step of the differences changes a window's maximum. */
static void pool_gradients_match_finite_differences(void **state) {
    const pcase cases[] = {{0, 2, 5, 4, 2, 2, 2, 2, 2, "SAME"}, {1, 1, 6, 5, 2, 3, 3, 2, 1, "VALID"}};
    for (int k = 0; k < 2; k++) {
        const pcase *p = &cases[k];
        int64_t xs[4], n = p->n * p->h * p->w * p->c;
        shape4(p, p->h, p->w, xs);
        floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL);
        float *d = floe_tensor_data(x);
        for (int64_t i = 0; i < n; i++)
            d[i] = 0.1f * (float)((i * 37) % n) - 1.0f;
        floe_attrs *a = pool_attrs(p);
        for (int max = 0; max <= 1; max++) {
            double err = -1;
            const char *op = max ? "MaxPool" : "AvgPool";
            if (floe_gradient_check(*state, op, &x, 1, a, 0, 1e-2, &err) != FLOE_OK)
                fail_msg("gradient check of %s: %s", op, floe_last_error());
            if (!(err <= 1e-2))
                fail_msg("gradient of %s: max error %g", op, err);
        }
        floe_attrs_free(a);
        floe_tensor_unref(x);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_valid_2x2_stride2_matches_reference),
        cmocka_unit_test(pool_same_odd_sizes_match_reference),
        cmocka_unit_test(pool_nchw_matches_reference),
        cmocka_unit_test(pool_seed_cnn_matches_reference),
        cmocka_unit_test(pool_bad_arguments_fail),
        cmocka_unit_test(max_pool_grad_wrong_grad_shape_fails),
        cmocka_unit_test(max_pool_shape_inferred_in_graph),
        cmocka_unit_test(pool_gradients_match_finite_differences),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
