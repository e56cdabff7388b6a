/*
 * test_ops_nn_conv.c - Conv2D, its two backprops and DepthwiseConv2dNative (with its
 * backprops) against a naive direct convolution in double: NHWC and NCHW, SAME, VALID and
 * EXPLICIT padding, strides 1 and 2, dilation 2, odd sizes, the seed CNN's first layer;
 * shape inference through a graph; the argument errors (strides, dilations, depths,
 * padding and format strings, ranks, negative output sizes).
 */
#include "test_common.h"

#include <floe/gradients.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The reference ---------------------------------------------------------------------- */

typedef struct geo {
    int nchw, dw;
    int64_t n, c, h, w, kh, kw, m, o, oh, ow, sh, sw, dh, dwl, pt, pl;
} geo;

/* TensorFlow's windowed output size; @pad "SAME" or "VALID" (or EXPLICIT with @eb/@ea). */
static void window(const char *pad, int64_t in, int64_t k, int64_t s, int64_t d, int64_t eb,
                   int64_t ea, int64_t *out, int64_t *before) {
    int64_t ek = (k - 1) * d + 1;
    if (strcmp(pad, "SAME") == 0) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + ek - in;
        *before = total > 0 ? total / 2 : 0;
    } else if (strcmp(pad, "VALID") == 0) {
        *out = (in - ek) / s + 1;
        *before = 0;
    } else {
        *out = (in + eb + ea - ek) / s + 1;
        *before = eb;
    }
}

static int64_t x_at(const geo *g, int64_t n, int64_t c, int64_t y, int64_t x) {
    return g->nchw ? ((n * g->c + c) * g->h + y) * g->w + x : ((n * g->h + y) * g->w + x) * g->c + c;
}
static int64_t y_at(const geo *g, int64_t n, int64_t o, int64_t y, int64_t x) {
    return g->nchw ? ((n * g->o + o) * g->oh + y) * g->ow + x
                   : ((n * g->oh + y) * g->ow + x) * g->o + o;
}

/* mode 0: y += x * w; 1: dx += dy * w; 2: dw += dy * x.  Buffers in double. */
static void ref_conv(const geo *g, int mode, double *x, double *w, double *y) {
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++)
                for (int64_t o = 0; o < g->o; o++) {
                    int64_t c0 = g->dw ? o / g->m : 0, c1 = g->dw ? c0 + 1 : g->c;
                    int64_t yi = y_at(g, n, o, oy, ox);
                    for (int64_t ky = 0; ky < g->kh; ky++)
                        for (int64_t kx = 0; kx < g->kw; kx++) {
                            int64_t iy = oy * g->sh + ky * g->dh - g->pt;
                            int64_t ix = ox * g->sw + kx * g->dwl - g->pl;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            for (int64_t c = c0; c < c1; c++) {
                                int64_t xi = x_at(g, n, c, iy, ix);
                                int64_t wi = g->dw ? ((ky * g->kw + kx) * g->c + c) * g->m + o % g->m
                                                   : ((ky * g->kw + kx) * g->c + c) * g->o + o;
                                if (mode == 0)
                                    y[yi] += x[xi] * w[wi];
                                else if (mode == 1)
                                    x[xi] += y[yi] * w[wi];
                                else
                                    w[wi] += y[yi] * x[xi];
                            }
                        }
                }
}

/* ---- Helpers -------------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *op;       /* Conv2D or DepthwiseConv2dNative */
    int nchw;
    int64_t n, h, w, c, kh, kw, m;
    int64_t s, d;
    const char *pad;
    int64_t ep[4];        /* EXPLICIT: top, bottom, left, right */
} conv_case;

static floe_attrs *conv_attrs(const conv_case *cc) {
    floe_attrs *a = NULL;
    int64_t st[4] = {1, cc->s, cc->s, 1}, dl[4] = {1, cc->d, cc->d, 1};
    if (cc->nchw) {
        st[1] = 1, st[2] = st[3] = cc->s;
        dl[1] = 1, dl[2] = dl[3] = cc->d;
    }
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_int_list(a, "strides", st, 4), FLOE_OK);
    assert_int_equal(floe_attrs_set_int_list(a, "dilations", dl, 4), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "padding", cc->pad, strlen(cc->pad)), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "data_format", cc->nchw ? "NCHW" : "NHWC", 4),
                     FLOE_OK);
    if (strcmp(cc->pad, "EXPLICIT") == 0) {
        int64_t ep[8] = {0};
        int hi = cc->nchw ? 2 : 1;
        ep[2 * hi] = cc->ep[0], ep[2 * hi + 1] = cc->ep[1];
        ep[2 * hi + 2] = cc->ep[2], ep[2 * hi + 3] = cc->ep[3];
        assert_int_equal(floe_attrs_set_int_list(a, "explicit_paddings", ep, 8), FLOE_OK);
    }
    return a;
}

static geo case_geo(const conv_case *cc) {
    geo g = {cc->nchw, strcmp(cc->op, "Conv2D") != 0, cc->n, cc->c, cc->h, cc->w, cc->kh, cc->kw,
             cc->m, 0, 0, 0, cc->s, cc->s, cc->d, cc->d, 0, 0};
    g.o = g.dw ? cc->c * cc->m : cc->m;
    window(cc->pad, cc->h, cc->kh, cc->s, cc->d, cc->ep[0], cc->ep[1], &g.oh, &g.pt);
    window(cc->pad, cc->w, cc->kw, cc->s, cc->d, cc->ep[2], cc->ep[3], &g.ow, &g.pl);
    return g;
}

static void act_shape(const geo *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t s[4]) {
    s[0] = n;
    s[g->nchw ? 1 : 3] = c;
    s[g->nchw ? 2 : 1] = h;
    s[g->nchw ? 3 : 2] = w;
}

static floe_tensor *random_f32(const int64_t *shape, int ndim, uint64_t seed, double **dbl) {
    floe_tensor *t = tc_tensor(FLOE_DTYPE_F32, shape, ndim, NULL);
    int64_t n = floe_tensor_num_elements(t);
    float *p = floe_tensor_data(t);
    tc_fill_uniform(p, n, -1.0f, 1.0f, seed);
    *dbl = calloc((size_t)n + 1, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        (*dbl)[i] = p[i];
    return t;
}

static void assert_close_dbl(const floe_tensor *t, const double *want, int64_t n) {
    float *e = malloc((size_t)n * sizeof(float) + 1);
    for (int64_t i = 0; i < n; i++)
        e[i] = (float)want[i];
    tc_assert_close_f32(t, e, n, 1e-4f, 1e-4f);
    free(e);
}

static floe_tensor *sizes_tensor(const int64_t *s) {
    int32_t v[4] = {(int32_t)s[0], (int32_t)s[1], (int32_t)s[2], (int32_t)s[3]};
    int64_t four = 4;
    return tc_i32(&four, 1, v);
}

/* Forward, backprop input and backprop filter of one case against the reference. */
static void run_case(floe_context *ctx, const conv_case *cc) {
    geo g = case_geo(cc);
    int64_t xs[4], fs[4] = {cc->kh, cc->kw, cc->c, cc->m}, ys[4];
    double *xd, *fd, *dyd;
    floe_attrs *a = conv_attrs(cc);
    int dw = g.dw;
    char bi[64], bf[64];

    act_shape(&g, g.n, g.c, g.h, g.w, xs);
    act_shape(&g, g.n, g.o, g.oh, g.ow, ys);
    floe_tensor *x = random_f32(xs, 4, 11 + (uint64_t)g.h, &xd);
    floe_tensor *f = random_f32(fs, 4, 23 + (uint64_t)g.kw, &fd);
    floe_tensor *dy = random_f32(ys, 4, 37, &dyd);
    int64_t nx = g.n * g.c * g.h * g.w, nf = g.kh * g.kw * g.c * g.m, ny = g.n * g.o * g.oh * g.ow;

    /* forward */
    double *yd = calloc((size_t)ny + 1, sizeof(double));
    ref_conv(&g, 0, xd, fd, yd);
    floe_tensor *in[3] = {x, f, NULL};
    floe_tensor *y = tc_run1(ctx, cc->op, in, 2, a);
    tc_assert_shape(y, FLOE_DTYPE_F32, ys, 4);
    assert_close_dbl(y, yd, ny);

    /* backprop input */
    double *dxd = calloc((size_t)nx + 1, sizeof(double));
    ref_conv(&g, 1, dxd, fd, dyd);
    floe_tensor *xsz = sizes_tensor(xs);
    snprintf(bi, sizeof(bi), "%s%s", cc->op, dw ? "BackpropInput" : "BackpropInput");
    in[0] = xsz, in[1] = f, in[2] = dy;
    floe_tensor *dx = tc_run1(ctx, bi, in, 3, a);
    tc_assert_shape(dx, FLOE_DTYPE_F32, xs, 4);
    assert_close_dbl(dx, dxd, nx);

    /* backprop filter */
    double *dfd = calloc((size_t)nf + 1, sizeof(double));
    ref_conv(&g, 2, xd, dfd, dyd);
    floe_tensor *fsz = sizes_tensor(fs);
    snprintf(bf, sizeof(bf), "%sBackpropFilter", cc->op);
    in[0] = x, in[1] = fsz, in[2] = dy;
    floe_tensor *df = tc_run1(ctx, bf, in, 3, a);
    tc_assert_shape(df, FLOE_DTYPE_F32, fs, 4);
    assert_close_dbl(df, dfd, nf);

    floe_tensor_unref(y);
    floe_tensor_unref(dx);
    floe_tensor_unref(df);
    floe_tensor_unref(x);
    floe_tensor_unref(f);
    floe_tensor_unref(dy);
    floe_tensor_unref(xsz);
    floe_tensor_unref(fsz);
    floe_attrs_free(a);
    free(xd), free(fd), free(dyd), free(yd), free(dxd), free(dfd);
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void conv2d_valid_stride1_matches_reference(void **state) {
    conv_case cc = {"Conv2D", 0, 2, 7, 6, 3, 3, 2, 4, 1, 1, "VALID", {0}};
    run_case(*state, &cc);
}

static void conv2d_same_stride2_odd_matches_reference(void **state) {
    conv_case cc = {"Conv2D", 0, 1, 9, 8, 2, 5, 5, 3, 2, 1, "SAME", {0}};
    run_case(*state, &cc);
    conv_case cc2 = {"Conv2D", 0, 3, 7, 7, 5, 3, 3, 7, 2, 1, "VALID", {0}};
    run_case(*state, &cc2);
}

static void conv2d_dilation2_matches_reference(void **state) {
    conv_case cc = {"Conv2D", 0, 2, 8, 9, 3, 3, 3, 2, 1, 2, "SAME", {0}};
    run_case(*state, &cc);
    conv_case cc2 = {"Conv2D", 0, 1, 11, 10, 2, 3, 2, 3, 1, 2, "VALID", {0}};
    run_case(*state, &cc2);
}

static void conv2d_nchw_matches_reference(void **state) {
    conv_case cc = {"Conv2D", 1, 2, 7, 9, 3, 3, 3, 5, 2, 1, "SAME", {0}};
    run_case(*state, &cc);
    conv_case cc2 = {"Conv2D", 1, 1, 6, 5, 4, 2, 2, 3, 1, 1, "VALID", {0}};
    run_case(*state, &cc2);
}

static void conv2d_explicit_padding_matches_reference(void **state) {
    conv_case cc = {"Conv2D", 0, 2, 6, 7, 2, 3, 3, 3, 2, 1, "EXPLICIT", {1, 2, 0, 3}};
    run_case(*state, &cc);
}

static void conv2d_seed_cnn_layers_match_reference(void **state) {
    conv_case c1 = {"Conv2D", 0, 4, 28, 28, 1, 5, 5, 32, 1, 1, "SAME", {0}};
    run_case(*state, &c1);
    conv_case c2 = {"Conv2D", 0, 2, 14, 14, 32, 5, 5, 64, 1, 1, "SAME", {0}};
    run_case(*state, &c2);
    /* an odd batch big enough to be split unevenly over the pool (3 + 2 images) */
    conv_case c3 = {"Conv2D", 0, 5, 12, 11, 8, 3, 3, 16, 1, 1, "SAME", {0}};
    run_case(*state, &c3);
    conv_case c4 = {"Conv2D", 1, 5, 12, 11, 8, 3, 3, 16, 2, 1, "VALID", {0}};
    run_case(*state, &c4);
}

static void depthwise_matches_reference(void **state) {
    conv_case cc = {"DepthwiseConv2dNative", 0, 2, 6, 7, 3, 3, 3, 2, 1, 1, "SAME", {0}};
    run_case(*state, &cc);
    conv_case cc2 = {"DepthwiseConv2dNative", 0, 1, 9, 8, 4, 3, 2, 1, 2, 1, "VALID", {0}};
    run_case(*state, &cc2);
    conv_case cc3 = {"DepthwiseConv2dNative", 1, 2, 7, 7, 2, 3, 3, 3, 1, 2, "SAME", {0}};
    run_case(*state, &cc3);
}

/* Runs Conv2D on x [1,5,5,2] and f with @fshape under attrs edited by @edit. */
static floe_status conv_status(floe_context *ctx, const int64_t *xshape, int xrank,
                               const int64_t *fshape, void (*edit)(floe_attrs *)) {
    conv_case cc = {"Conv2D", 0, 1, 5, 5, 2, 3, 3, 4, 1, 1, "VALID", {0}};
    floe_attrs *a = conv_attrs(&cc);
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xshape, xrank, NULL);
    floe_tensor *f = tc_tensor(FLOE_DTYPE_F32, fshape, 4, NULL);
    floe_tensor *in[2] = {x, f};
    if (edit != NULL)
        edit(a);
    floe_status st = tc_run_status(ctx, "Conv2D", in, 2, a, 1);
    floe_tensor_unref(x);
    floe_tensor_unref(f);
    floe_attrs_free(a);
    return st;
}

static void edit_stride0(floe_attrs *a) {
    int64_t v[4] = {1, 0, 1, 1};
    floe_attrs_set_int_list(a, "strides", v, 4);
}
static void edit_stride3(floe_attrs *a) {
    int64_t v[3] = {1, 1, 1};
    floe_attrs_set_int_list(a, "strides", v, 3);
}
static void edit_stride_batch(floe_attrs *a) {
    int64_t v[4] = {2, 1, 1, 1};
    floe_attrs_set_int_list(a, "strides", v, 4);
}
static void edit_dilation0(floe_attrs *a) {
    int64_t v[4] = {1, 1, 0, 1};
    floe_attrs_set_int_list(a, "dilations", v, 4);
}
static void edit_padding(floe_attrs *a) {
    floe_attrs_set_string(a, "padding", "FULL", 4);
}
static void edit_format(floe_attrs *a) {
    floe_attrs_set_string(a, "data_format", "NWHC", 4);
}
static void edit_explicit_short(floe_attrs *a) {
    int64_t v[4] = {0, 0, 1, 1};
    floe_attrs_set_string(a, "padding", "EXPLICIT", 8);
    floe_attrs_set_int_list(a, "explicit_paddings", v, 4);
}

static void conv2d_bad_arguments_fail(void **state) {
    floe_context *ctx = *state;
    int64_t xs[4] = {1, 5, 5, 2}, fs[4] = {3, 3, 2, 4};

    assert_int_equal(conv_status(ctx, xs, 4, fs, NULL), FLOE_OK);
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_stride0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("strides must be positive");
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_stride3), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("strides must have 4 values");
    assert_int_not_equal(conv_status(ctx, xs, 4, fs, edit_stride_batch), FLOE_OK);
    tc_assert_error_contains("batch and depth");
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_dilation0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dilations must be positive");
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_padding), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("padding must be");
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_format), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("data_format");
    assert_int_equal(conv_status(ctx, xs, 4, fs, edit_explicit_short), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("explicit_paddings");

    int64_t fbad[4] = {3, 3, 3, 4};
    assert_int_equal(conv_status(ctx, xs, 4, fbad, NULL), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("in_depth");
    int64_t fbig[4] = {6, 3, 2, 4};
    assert_int_equal(conv_status(ctx, xs, 4, fbig, NULL), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("negative");
    int64_t x3[3] = {5, 5, 2};
    assert_int_equal(conv_status(ctx, x3, 3, fs, NULL), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("4-dimensional");
    int64_t xz[4] = {1, 0, 5, 2};
    assert_int_equal(conv_status(ctx, xz, 4, fs, NULL), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("non-empty");
    int64_t fz[4] = {3, 3, 2, 0};
    assert_int_equal(conv_status(ctx, xs, 4, fz, NULL), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("filter");
}

static void conv2d_empty_batch_gives_empty_output(void **state) {
    conv_case cc = {"Conv2D", 0, 0, 5, 5, 2, 3, 3, 4, 1, 1, "SAME", {0}};
    floe_attrs *a = conv_attrs(&cc);
    int64_t xs[4] = {0, 5, 5, 2}, fs[4] = {3, 3, 2, 4}, ys[4] = {0, 5, 5, 4};
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, xs, 4, NULL), *f = tc_tensor(FLOE_DTYPE_F32, fs, 4, NULL);
    floe_tensor *in[2] = {x, f};
    floe_tensor *y = tc_run1(*state, "Conv2D", in, 2, a);
    tc_assert_shape(y, FLOE_DTYPE_F32, ys, 4);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
    floe_tensor_unref(f);
    floe_attrs_free(a);
}

static void backprop_input_wrong_out_backprop_fails(void **state) {
    conv_case cc = {"Conv2D", 0, 1, 5, 5, 2, 3, 3, 4, 1, 1, "VALID", {0}};
    floe_attrs *a = conv_attrs(&cc);
    int64_t xs[4] = {1, 5, 5, 2}, fs[4] = {3, 3, 2, 4}, dys[4] = {1, 4, 3, 4};
    floe_tensor *sz = sizes_tensor(xs), *f = tc_tensor(FLOE_DTYPE_F32, fs, 4, NULL);
    floe_tensor *dy = tc_tensor(FLOE_DTYPE_F32, dys, 4, NULL);
    floe_tensor *in[3] = {sz, f, dy};
    assert_int_equal(tc_run_status(*state, "Conv2DBackpropInput", in, 3, a, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("out_backprop");
    floe_tensor_unref(sz);
    floe_tensor_unref(f);
    floe_tensor_unref(dy);
    floe_attrs_free(a);
}

/* Shape inference at graph-build time: the output shape of a Conv2D node. */
static void conv2d_shape_inferred_in_graph(void **state) {
    floe_context *ctx = *state;
    conv_case cc = {"Conv2D", 0, 8, 28, 28, 1, 5, 5, 32, 2, 1, "SAME", {0}};
    floe_graph *g = NULL;
    floe_node_builder *b = NULL;
    floe_node *xn = NULL, *fn = NULL, *cn = NULL;
    int64_t xs[4] = {8, 28, 28, 1}, fs[4] = {5, 5, 1, 32};

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "x", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", xs, 4);
    assert_int_equal(floe_node_builder_finish(b, &xn), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "f", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", fs, 4);
    assert_int_equal(floe_node_builder_finish(b, &fn), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Conv2D", "conv", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){xn, 0, 0});
    floe_node_builder_add_input(b, (floe_output){fn, 0, 0});
    floe_attrs *a = conv_attrs(&cc);
    const int64_t *v;
    int n;
    floe_attrs_get_int_list(a, "strides", &v, &n);
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "strides", v, n);
    floe_attrs_set_string(floe_node_builder_attrs(b), "padding", "SAME", 4);
    assert_int_equal(floe_node_builder_finish(b, &cn), FLOE_OK);
    floe_shape s = floe_node_output_shape(cn, 0);
    assert_int_equal(s.ndim, 4);
    assert_int_equal(s.dims[0], 8);
    assert_int_equal(s.dims[1], 14);
    assert_int_equal(s.dims[2], 14);
    assert_int_equal(s.dims[3], 32);

    /* A filter whose depth does not match is refused when the node is built. */
    int64_t fbad[4] = {5, 5, 3, 32};
    floe_node *fb = NULL;
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "fb", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", fbad, 4);
    assert_int_equal(floe_node_builder_finish(b, &fb), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Conv2D", "bad", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){xn, 0, 0});
    floe_node_builder_add_input(b, (floe_output){fb, 0, 0});
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "strides", v, n);
    floe_attrs_set_string(floe_node_builder_attrs(b), "padding", "SAME", 4);
    assert_int_equal(floe_node_builder_finish(b, &cn), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("in_depth");
    floe_attrs_free(a);
    floe_graph_free(g);
}

/* The same node run many times with two shapes reuses its cached primitives. */
static void conv2d_repeated_calls_and_shapes(void **state) {
    for (int i = 0; i < 3; i++) {
        conv_case cc = {"Conv2D", 0, 1 + i % 2, 6, 5, 2, 3, 3, 3, 1, 1, "SAME", {0}};
        run_case(*state, &cc);
    }
}

/* Conv2D's and DepthwiseConv2dNative's registered gradients (the backprop ops through
 * floe_gradients) against central differences; both are linear in each input, so f32
 * differences are exact up to rounding. */
static void check_gradient(floe_context *ctx, const conv_case *cc, double tol) {
    geo g = case_geo(cc);
    int64_t xs[4], fs[4] = {cc->kh, cc->kw, cc->c, cc->m};
    double *xd, *fd, err = -1;
    floe_attrs *a = conv_attrs(cc);
    act_shape(&g, g.n, g.c, g.h, g.w, xs);
    floe_tensor *in[2] = {random_f32(xs, 4, 3, &xd), random_f32(fs, 4, 4, &fd)};
    floe_status st = floe_gradient_check(ctx, cc->op, in, 2, a, 0, 1e-2, &err);
    if (st != FLOE_OK)
        fail_msg("gradient check of %s: %s", cc->op, floe_last_error());
    if (!(err <= tol))
        fail_msg("gradient of %s: max error %g > %g", cc->op, err, tol);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
    floe_attrs_free(a);
    free(xd);
    free(fd);
}

static void conv_gradients_match_finite_differences(void **state) {
    conv_case c1 = {"Conv2D", 0, 2, 5, 4, 2, 3, 2, 3, 2, 1, "SAME", {0}};
    check_gradient(*state, &c1, 1e-2);
    conv_case c2 = {"Conv2D", 1, 1, 6, 5, 2, 2, 2, 2, 1, 2, "VALID", {0}};
    check_gradient(*state, &c2, 1e-2);
    conv_case c3 = {"DepthwiseConv2dNative", 0, 2, 5, 5, 2, 3, 3, 2, 1, 1, "SAME", {0}};
    check_gradient(*state, &c3, 1e-2);
}

/* ---- Through a session: many shapes on one kernel, concurrent runs ------------------------ */

typedef struct plan_fixture {
    floe_graph *g;
    floe_session *s;
    floe_plan *plan;
    floe_tensor *f;
    double *fd;
    conv_case cc;
} plan_fixture;

/* Placeholder x [-1, 6, 5, 2] (any batch), filter [3, 3, 2, 3], Conv2D SAME. */
static void plan_fixture_make(floe_context *ctx, plan_fixture *pf) {
    int64_t xs[4] = {-1, 6, 5, 2}, fs[4] = {3, 3, 2, 3};
    floe_node_builder *b = NULL;
    floe_node *x = NULL, *f = NULL, *c = NULL;
    conv_case cc = {"Conv2D", 0, 1, 6, 5, 2, 3, 3, 3, 1, 1, "SAME", {0}};

    memset(pf, 0, sizeof(*pf));
    pf->cc = cc;
    assert_int_equal(floe_graph_new(ctx, &pf->g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(pf->g, "Placeholder", "x", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", xs, 4);
    assert_int_equal(floe_node_builder_finish(b, &x), FLOE_OK);
    assert_int_equal(floe_node_builder_new(pf->g, "Placeholder", "f", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", fs, 4);
    assert_int_equal(floe_node_builder_finish(b, &f), FLOE_OK);
    assert_int_equal(floe_node_builder_new(pf->g, "Conv2D", "conv", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){x, 0, 0});
    floe_node_builder_add_input(b, (floe_output){f, 0, 0});
    int64_t st[4] = {1, 1, 1, 1};
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "strides", st, 4);
    floe_attrs_set_string(floe_node_builder_attrs(b), "padding", "SAME", 4);
    assert_int_equal(floe_node_builder_finish(b, &c), FLOE_OK);
    floe_output feeds[2] = {{x, 0, 0}, {f, 0, 0}}, fetch = {c, 0, 0};
    assert_int_equal(floe_session_new(pf->g, NULL, &pf->s), FLOE_OK);
    assert_int_equal(floe_session_prepare(pf->s, feeds, 2, &fetch, 1, NULL, 0, &pf->plan), FLOE_OK);
    pf->f = random_f32(fs, 4, 77, &pf->fd);
}

static void plan_fixture_free(plan_fixture *pf) {
    floe_tensor_unref(pf->f);
    free(pf->fd);
    floe_session_free(pf->s);
    floe_graph_free(pf->g);
}

/* Runs the plan on a batch of @n; returns the number of wrong elements. */
static int64_t plan_run_check(plan_fixture *pf, int64_t n, uint64_t seed) {
    conv_case cc = pf->cc;
    cc.n = n;
    geo g = case_geo(&cc);
    int64_t xs[4] = {n, 6, 5, 2}, ny = n * g.o * g.oh * g.ow, bad = 0;
    double *xd, *yd = calloc((size_t)ny + 1, sizeof(double));
    floe_tensor *x = random_f32(xs, 4, seed, &xd), *in[2] = {x, pf->f}, *y = NULL;

    ref_conv(&g, 0, xd, pf->fd, yd);
    if (floe_plan_run(pf->plan, in, &y) != FLOE_OK || floe_tensor_num_elements(y) != ny) {
        bad = -1;
    } else {
        y = tc_take_host(y); /* the plan may leave it in a GPU's memory */
        const float *yv = floe_tensor_data(y);
        for (int64_t i = 0; i < ny; i++)
            if (fabs(yv[i] - yd[i]) > 1e-4 * (1 + fabs(yd[i])))
                bad++;
    }
    floe_tensor_unref(y);
    floe_tensor_unref(x);
    free(xd);
    free(yd);
    return bad;
}

/* Ten batch sizes through one kernel twice over: more shapes than its primitive cache
 * holds, so entries are evicted and rebuilt. */
static void conv2d_plan_many_shapes_evicts_and_rebuilds(void **state) {
    plan_fixture pf;
    plan_fixture_make(*state, &pf);
    for (int rep = 0; rep < 2; rep++)
        for (int64_t n = 1; n <= 10; n++)
            assert_int_equal(plan_run_check(&pf, n, (uint64_t)(n + 10 * rep)), 0);
    plan_fixture_free(&pf);
}

typedef struct conc_arg {
    plan_fixture *pf;
    int id;
    int64_t bad;
} conc_arg;

static void *conc_main(void *arg) {
    conc_arg *a = arg;
    for (int i = 0; i < 15 && a->bad == 0; i++)
        a->bad = plan_run_check(a->pf, 1 + (a->id + i) % 3, (uint64_t)(a->id * 100 + i));
    return NULL;
}

/* Four threads run one plan at once: one kernel state, its cache and scratch slots
 * shared by concurrent calls with three shapes. */
static void conv2d_concurrent_runs_agree(void **state) {
    plan_fixture pf;
    pthread_t t[4];
    conc_arg a[4];
    plan_fixture_make(*state, &pf);
    for (int i = 0; i < 4; i++) {
        a[i] = (conc_arg){&pf, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, conc_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    plan_fixture_free(&pf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv2d_valid_stride1_matches_reference),
        cmocka_unit_test(conv2d_same_stride2_odd_matches_reference),
        cmocka_unit_test(conv2d_dilation2_matches_reference),
        cmocka_unit_test(conv2d_nchw_matches_reference),
        cmocka_unit_test(conv2d_explicit_padding_matches_reference),
        cmocka_unit_test(conv2d_seed_cnn_layers_match_reference),
        cmocka_unit_test(depthwise_matches_reference),
        cmocka_unit_test(conv2d_bad_arguments_fail),
        cmocka_unit_test(conv2d_empty_batch_gives_empty_output),
        cmocka_unit_test(backprop_input_wrong_out_backprop_fails),
        cmocka_unit_test(conv2d_shape_inferred_in_graph),
        cmocka_unit_test(conv2d_repeated_calls_and_shapes),
        cmocka_unit_test(conv_gradients_match_finite_differences),
        cmocka_unit_test(conv2d_plan_many_shapes_evicts_and_rebuilds),
        cmocka_unit_test(conv2d_concurrent_runs_agree),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
