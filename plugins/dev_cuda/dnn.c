/*
 * dnn.c - Conv2D and its two backprops, Softmax and LogSoftmax, FusedBatchNormV3 and
 * FusedBatchNormGradV3 through cuDNN 9 (f32; data_format NHWC or NCHW).
 *
 * TensorFlow's filters are [height, width, in, out] whatever the data format; cuDNN
 * wants [out, height, width, in] (KRSC) beside NHWC tensors and [out, in, height,
 * width] (KCRS) beside NCHW ones, so the filter is transposed into a scratch buffer
 * (and the filter gradient back) by Floe's transpose kernel.  cuDNN pads symmetrically: SAME
 * and EXPLICIT paddings that are not are handled by padding the input (forward, filter
 * gradient) or cropping the input gradient, with Floe's pad and crop kernels.  The
 * algorithm is cuDNN's first heuristic choice whose workspace the allocator can give.
 * TF32 math is allowed only with FLOE_CUDA_ALLOW_TF32=1 (CUDNN_FMA_MATH otherwise).
 *
 * Sections: geometry; descriptors; Conv2D and backprops; softmax; batch normalisation;
 * registration.
 */
#include "gpu-impl.h"
#include "kernels-impl.h"

#include <stdio.h>
#include <string.h>

/* ---- Geometry --------------------------------------------------------------------------- */

typedef struct conv_geom {
    bool nchw;                       /* data_format NCHW (else NHWC) */
    int64_t n, h, w, c;              /* input */
    int64_t kh, kw, k;               /* filter extents and output channels */
    int64_t oh, ow;
    int64_t sh, sw, dh, dw;
    int64_t pt, pb, pl, pr;          /* padding */
} conv_geom;

static floe_status pad_dim(int64_t in, int64_t k, int64_t s, int64_t dil, const char *pad,
                           size_t plen, const int64_t *explicit_pad, int64_t *out, int64_t *lo,
                           int64_t *hi) {
    int64_t eff = (k - 1) * dil + 1;
    if (plen == 4 && memcmp(pad, "SAME", 4) == 0) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + eff - in;
        total = total > 0 ? total : 0;
        *lo = total / 2;
        *hi = total - *lo;
        return FLOE_OK;
    }
    if (plen == 5 && memcmp(pad, "VALID", 5) == 0) {
        *lo = *hi = 0;
    } else if (plen == 8 && memcmp(pad, "EXPLICIT", 8) == 0 && explicit_pad != NULL) {
        *lo = explicit_pad[0];
        *hi = explicit_pad[1];
        if (*lo < 0 || *hi < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "explicit paddings must be >= 0");
    } else {
        return floe_fail(FLOE_INVALID_ARGUMENT, "padding must be SAME, VALID or EXPLICIT");
    }
    int64_t span = in + *lo + *hi;
    *out = span >= eff ? (span - eff) / s + 1 : 0;
    return FLOE_OK;
}

/* Reads strides, dilations and padding for input dims @in and filter dims @f (HWIO). */
static floe_status conv_geometry(floe_kernel_ctx *kc, const int64_t *in, const int64_t *f,
                                 conv_geom *g) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    const int64_t *s = NULL, *dl = NULL, *ep = NULL;
    int ns = 0, nd = 0, nep = 0;
    const char *pad = "", *fmt = "NHWC";
    size_t plen = 0, flen = 4;
    floe_status st;

    floe_attrs_get_int_list(a, "strides", &s, &ns);
    floe_attrs_get_string(a, "padding", &pad, &plen);
    floe_attrs_get_string(a, "data_format", &fmt, &flen);
    if (floe_attrs_get_int_list(a, "dilations", &dl, &nd) != FLOE_OK)
        nd = 0;
    if (floe_attrs_get_int_list(a, "explicit_paddings", &ep, &nep) != FLOE_OK)
        nep = 0;
    bool nchw = flen == 4 && memcmp(fmt, "NCHW", 4) == 0;
    if (!nchw && (flen != 4 || memcmp(fmt, "NHWC", 4) != 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "data_format must be NHWC or NCHW, got %.*s",
                         (int)flen, fmt);
    /* where H, W and C sit in the input, strides, dilations and explicit_paddings */
    int hi = nchw ? 2 : 1, wi = nchw ? 3 : 2, ci = nchw ? 1 : 3;
    if (ns != 4 || s[0] != 1 || s[ci] != 1 || s[hi] <= 0 || s[wi] <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "strides must be 1 in the batch and channel "
                         "dimensions and positive in the others");
    if (nd != 0 && (nd != 4 || dl[0] != 1 || dl[ci] != 1 || dl[hi] <= 0 || dl[wi] <= 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "dilations must be 1 in the batch and channel "
                         "dimensions and positive in the others");
    if (plen == 8 && nep != 8)
        return floe_fail(FLOE_INVALID_ARGUMENT, "EXPLICIT padding needs 8 explicit_paddings");
    if (f[2] != in[ci])
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "filter has %lld input channels, the input %lld", (long long)f[2],
                         (long long)in[ci]);
    if (f[0] <= 0 || f[1] <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "filter extents must be positive");
    memset(g, 0, sizeof(*g));
    g->nchw = nchw;
    g->n = in[0], g->h = in[hi], g->w = in[wi], g->c = in[ci];
    g->kh = f[0], g->kw = f[1], g->k = f[3];
    g->sh = s[hi], g->sw = s[wi];
    g->dh = nd ? dl[hi] : 1, g->dw = nd ? dl[wi] : 1;
    if ((st = pad_dim(g->h, g->kh, g->sh, g->dh, pad, plen, nep ? ep + 2 * hi : NULL, &g->oh,
                      &g->pt, &g->pb)) != FLOE_OK ||
        (st = pad_dim(g->w, g->kw, g->sw, g->dw, pad, plen, nep ? ep + 2 * wi : NULL, &g->ow,
                      &g->pl, &g->pr)) != FLOE_OK)
        return st;
    if (g->n > INT32_MAX || g->h > INT32_MAX || g->w > INT32_MAX || g->c > INT32_MAX ||
        g->k > INT32_MAX)
        return floe_fail(FLOE_INVALID_ARGUMENT, "tensor extents exceed cuDNN's int range");
    return FLOE_OK;
}

static bool symmetric(const conv_geom *g) {
    return g->pt == g->pb && g->pl == g->pr;
}

/* The output's (out_backprop's) dims in the data format. */
static void out_dims(const conv_geom *g, int64_t *od) {
    int64_t nhwc[4] = {g->n, g->oh, g->ow, g->k}, nchw[4] = {g->n, g->k, g->oh, g->ow};
    memcpy(od, g->nchw ? nchw : nhwc, sizeof(nhwc));
}

/* Zero padding of an input (and the inverse crop of its gradient) for cuDNN, which pads
 * symmetrically only.  NCHW is padded as [n * c, h, w, 1], the same bytes. */
static int pad_input(cudaStream_t s, const conv_geom *g, const void *x, void *xp) {
    return g->nchw ? dev_cuda__k_pad_nhwc(s, g->n * g->c, g->h, g->w, 1, g->pt, g->pb, g->pl,
                                          g->pr, x, xp)
                   : dev_cuda__k_pad_nhwc(s, g->n, g->h, g->w, g->c, g->pt, g->pb, g->pl,
                                          g->pr, x, xp);
}

static int crop_input(cudaStream_t s, const conv_geom *g, const void *xp, void *x) {
    return g->nchw ? dev_cuda__k_crop_nhwc(s, g->n * g->c, g->h, g->w, 1, g->pt, g->pb, g->pl,
                                           g->pr, xp, x)
                   : dev_cuda__k_crop_nhwc(s, g->n, g->h, g->w, g->c, g->pt, g->pb, g->pl,
                                           g->pr, xp, x);
}

/* ---- Descriptors --------------------------------------------------------------------------- */

typedef struct conv_desc {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} conv_desc;

static void desc_free(conv_desc *cd) {
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    if (cd->x) L->cudnnDestroyTensorDescriptor(cd->x);
    if (cd->y) L->cudnnDestroyTensorDescriptor(cd->y);
    if (cd->w) L->cudnnDestroyFilterDescriptor(cd->w);
    if (cd->conv) L->cudnnDestroyConvolutionDescriptor(cd->conv);
}

/* Descriptors for input [n, xh, xw, c] (already padded when @pad is false). */
static floe_status desc_new(const dev_cuda__device *d, const conv_geom *g, int64_t xh,
                            int64_t xw, bool pad, conv_desc *cd) {
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    int st;

    memset(cd, 0, sizeof(*cd));
    st = L->cudnnCreateTensorDescriptor(&cd->x);
    if (!st) st = L->cudnnCreateTensorDescriptor(&cd->y);
    if (!st) st = L->cudnnCreateFilterDescriptor(&cd->w);
    if (!st) st = L->cudnnCreateConvolutionDescriptor(&cd->conv);
    /* NHWC tensors with KRSC (OHWI) filters, NCHW tensors with KCRS (OIHW) filters */
    cudnnTensorFormat_t fmt = g->nchw ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC;
    if (!st) st = L->cudnnSetTensor4dDescriptor(cd->x, fmt, CUDNN_DATA_FLOAT,
                                                (int)g->n, (int)g->c, (int)xh, (int)xw);
    if (!st) st = L->cudnnSetTensor4dDescriptor(cd->y, fmt, CUDNN_DATA_FLOAT,
                                                (int)g->n, (int)g->k, (int)g->oh, (int)g->ow);
    if (!st) st = L->cudnnSetFilter4dDescriptor(cd->w, CUDNN_DATA_FLOAT, fmt,
                                                (int)g->k, (int)g->c, (int)g->kh, (int)g->kw);
    if (!st) st = L->cudnnSetConvolution2dDescriptor(
                 cd->conv, pad ? (int)g->pt : 0, pad ? (int)g->pl : 0, (int)g->sh, (int)g->sw,
                 (int)g->dh, (int)g->dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    if (!st) st = L->cudnnSetConvolutionMathType(
                 cd->conv, d->opts.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
    if (st) {
        desc_free(cd);
        return dev_cuda__fail_cudnn(st, "cuDNN descriptors");
    }
    return FLOE_OK;
}

/* Filter HWIO -> cuDNN's layout (to: OHWI for NHWC, OIHW for NCHW) or back (from),
 * through Floe's transpose kernel. */
static floe_status filter_layout(dev_cuda__device *d, const conv_geom *g, bool to_ohwi,
                                 const void *src, void *dst) {
    int64_t hwio[4] = {g->kh, g->kw, g->c, g->k}, ohwi[4] = {g->k, g->kh, g->kw, g->c};
    int64_t oihw[4] = {g->k, g->c, g->kh, g->kw};
    static const int64_t p_to[4] = {3, 0, 1, 2}, p_from[4] = {1, 2, 3, 0};
    static const int64_t p_to_oihw[4] = {3, 2, 0, 1}, p_from_oihw[4] = {2, 3, 1, 0};
    dev_cuda__transpose p;
    char err[64];

    if (dev_cuda__transpose_plan(to_ohwi ? hwio : g->nchw ? oihw : ohwi, 4,
                                 to_ohwi ? (g->nchw ? p_to_oihw : p_to)
                                         : (g->nchw ? p_from_oihw : p_from),
                                 4, &p, err, sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INTERNAL, "filter transpose: %s", err);
    return dev_cuda__fail_cuda(dev_cuda__k_transpose(d->stream, sizeof(float), &p, src, dst),
                               "filter transpose");
}

/* ---- Conv2D and backprops ------------------------------------------------------------------ */

/* The first of cuDNN's heuristic results that it reports usable; -1 if none.  (The three
 * perf structs share the layout of these two members.) */
#define FIRST_USABLE(perf, n, out)                                                          \
    do {                                                                                    \
        (out) = -1;                                                                         \
        for (int i_ = 0; i_ < (n) && (out) < 0; i_++)                                       \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS)                                  \
                (out) = i_;                                                                 \
    } while (0)

/* Scratch buffers of one call, freed together (stream order makes that safe). */
typedef struct scratch {
    void *p[4];
    int n;
} scratch;

static floe_status scratch_get(dev_cuda__device *d, scratch *s, size_t n, void **out) {
    floe_status st = dev_cuda__scratch(d, n, out);
    if (st == FLOE_OK && *out != NULL)
        s->p[s->n++] = *out;
    return st;
}

static void scratch_release(dev_cuda__device *d, scratch *s) {
    for (int i = 0; i < s->n; i++)
        dev_cuda__scratch_free(d, s->p[i]);
}

static size_t nbytes4(int64_t a, int64_t b, int64_t c, int64_t e) {
    return (size_t)(a * b * c * e) * sizeof(float);
}

static floe_status conv2d_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *f = floe_kernel_input(kc, 1);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    scratch sc = {{NULL}, 0};
    const void *xin;
    void *w, *ws = NULL;
    conv_geom g;
    conv_desc cd;
    floe_tensor *y;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int nperf = 0;
    size_t wsz = 0;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if (floe_tensor_ndim(x) != 4 || floe_tensor_ndim(f) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Conv2D needs 4-D input and filter");
    if ((st = conv_geometry(kc, floe_tensor_shape(x), floe_tensor_shape(f), &g)) != FLOE_OK)
        return st;
    int64_t od[4];
    out_dims(&g, od);
    if ((st = floe_kernel_alloc_output(kc, 0, od, 4, &y)) != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(y) == 0)
        return FLOE_OK;
    if (g.c == 0 || floe_tensor_num_elements(x) == 0)
        return dev_cuda__fail_cuda(cudaMemsetAsync(floe_tensor_device_data(y), 0,
                                                   floe_tensor_nbytes(y), d->stream), "Conv2D");
    xin = floe_tensor_device_data(x);
    st = scratch_get(d, &sc, floe_tensor_nbytes(f), &w);
    if (st == FLOE_OK)
        st = filter_layout(d, &g, true, floe_tensor_device_data(f), w);
    if (st == FLOE_OK && !symmetric(&g)) {
        void *xp;
        st = scratch_get(d, &sc, nbytes4(g.n, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.c), &xp);
        if (st == FLOE_OK)
            st = dev_cuda__fail_cuda(pad_input(d->stream, &g, xin, xp), "Conv2D padding");
        xin = xp;
    }
    if (st != FLOE_OK) {
        scratch_release(d, &sc);
        return st;
    }
    bool sym = symmetric(&g);
    st = desc_new(d, &g, sym ? g.h : g.h + g.pt + g.pb, sym ? g.w : g.w + g.pl + g.pr, sym, &cd);
    if (st == FLOE_OK) {
        const float one = 1.0f, zero = 0.0f;
        pthread_mutex_lock(&d->lib_lock);
        int s = L->cudnnGetConvolutionForwardAlgorithm_v7(d->dnn, cd.x, cd.w, cd.conv, cd.y, 8,
                                                          &nperf, perf);
        int best;
        FIRST_USABLE(perf, nperf, best);
        if (!s && best < 0)
            s = CUDNN_STATUS_NOT_SUPPORTED;
        if (!s)
            s = L->cudnnGetConvolutionForwardWorkspaceSize(d->dnn, cd.x, cd.w, cd.conv, cd.y,
                                                           perf[best].algo, &wsz);
        if (!s && wsz > 0 && scratch_get(d, &sc, wsz, &ws) != FLOE_OK)
            s = CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
        if (!s)
            s = L->cudnnConvolutionForward(d->dnn, &one, cd.x, xin, cd.w, w, cd.conv, perf[best].algo,
                                           ws, wsz, &zero, cd.y, floe_tensor_device_data(y));
        pthread_mutex_unlock(&d->lib_lock);
        st = dev_cuda__fail_cudnn(s, "Conv2D (cudnnConvolutionForward)");
        desc_free(&cd);
    }
    scratch_release(d, &sc);
    return st;
}

static floe_status read_sizes(floe_kernel_ctx *kc, int i, const char *what, int64_t *dims) {
    const floe_tensor *t = floe_kernel_input(kc, i);
    const int32_t *p = floe_tensor_data(t);
    if (floe_tensor_ndim(t) != 1 || floe_tensor_dim(t, 0) != 4 || p == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be a 4-vector in host memory", what);
    for (int k = 0; k < 4; k++) {
        if (p[k] < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s[%d] = %d is negative", what, k, p[k]);
        dims[k] = p[k];
    }
    return FLOE_OK;
}

static floe_status check_dy(const conv_geom *g, const floe_tensor *dy) {
    int64_t od[4];
    out_dims(g, od);
    if (floe_tensor_ndim(dy) != 4 || floe_tensor_dim(dy, 0) != od[0] ||
        floe_tensor_dim(dy, 1) != od[1] || floe_tensor_dim(dy, 2) != od[2] ||
        floe_tensor_dim(dy, 3) != od[3])
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "out_backprop must be [%lld, %lld, %lld, %lld]", (long long)od[0],
                         (long long)od[1], (long long)od[2], (long long)od[3]);
    return FLOE_OK;
}

static floe_status conv_backprop_input_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *f = floe_kernel_input(kc, 1), *dy = floe_kernel_input(kc, 2);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    scratch sc = {{NULL}, 0};
    int64_t in[4];
    void *w = NULL, *ws = NULL, *dx_p;
    conv_geom g;
    conv_desc cd;
    floe_tensor *dx;
    cudnnConvolutionBwdDataAlgoPerf_t perf[8];
    int nperf = 0;
    size_t wsz = 0;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_sizes(kc, 0, "input_sizes", in)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(f) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "filter must be 4-D");
    if ((st = conv_geometry(kc, in, floe_tensor_shape(f), &g)) != FLOE_OK ||
        (st = check_dy(&g, dy)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, in, 4, &dx)) != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(dx) == 0)
        return FLOE_OK;
    if (floe_tensor_num_elements(dy) == 0 || g.k == 0)
        return dev_cuda__fail_cuda(cudaMemsetAsync(floe_tensor_device_data(dx), 0,
                                                   floe_tensor_nbytes(dx), d->stream),
                                   "Conv2DBackpropInput");
    bool sym = symmetric(&g);
    int64_t ph = sym ? g.h : g.h + g.pt + g.pb, pw = sym ? g.w : g.w + g.pl + g.pr;
    dx_p = floe_tensor_device_data(dx);
    st = scratch_get(d, &sc, floe_tensor_nbytes(f), &w);
    if (st == FLOE_OK)
        st = filter_layout(d, &g, true, floe_tensor_device_data(f), w);
    if (st == FLOE_OK && !sym)
        st = scratch_get(d, &sc, nbytes4(g.n, ph, pw, g.c), &dx_p);
    if (st == FLOE_OK)
        st = desc_new(d, &g, ph, pw, sym, &cd);
    if (st != FLOE_OK) {
        scratch_release(d, &sc);
        return st;
    }
    {
        const float one = 1.0f, zero = 0.0f;
        pthread_mutex_lock(&d->lib_lock);
        int s = L->cudnnGetConvolutionBackwardDataAlgorithm_v7(d->dnn, cd.w, cd.y, cd.conv, cd.x, 8,
                                                               &nperf, perf);
        int best;
        FIRST_USABLE(perf, nperf, best);
        if (!s && best < 0)
            s = CUDNN_STATUS_NOT_SUPPORTED;
        if (!s)
            s = L->cudnnGetConvolutionBackwardDataWorkspaceSize(d->dnn, cd.w, cd.y, cd.conv, cd.x,
                                                                perf[best].algo, &wsz);
        if (!s && wsz > 0 && scratch_get(d, &sc, wsz, &ws) != FLOE_OK)
            s = CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
        if (!s)
            s = L->cudnnConvolutionBackwardData(d->dnn, &one, cd.w, w, cd.y,
                                                floe_tensor_device_data(dy), cd.conv, perf[best].algo,
                                                ws, wsz, &zero, cd.x, dx_p);
        pthread_mutex_unlock(&d->lib_lock);
        st = dev_cuda__fail_cudnn(s, "Conv2DBackpropInput (cudnnConvolutionBackwardData)");
    }
    desc_free(&cd);
    if (st == FLOE_OK && !sym)
        st = dev_cuda__fail_cuda(crop_input(d->stream, &g, dx_p, floe_tensor_device_data(dx)),
                                 "Conv2DBackpropInput crop");
    scratch_release(d, &sc);
    return st;
}

static floe_status conv_backprop_filter_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *dy = floe_kernel_input(kc, 2);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    scratch sc = {{NULL}, 0};
    int64_t fs[4];
    const void *xin;
    void *dw_ohwi = NULL, *ws = NULL;
    conv_geom g;
    conv_desc cd;
    floe_tensor *dw;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
    int nperf = 0;
    size_t wsz = 0;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_sizes(kc, 1, "filter_sizes", fs)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(x) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input must be 4-D");
    if ((st = conv_geometry(kc, floe_tensor_shape(x), fs, &g)) != FLOE_OK ||
        (st = check_dy(&g, dy)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, fs, 4, &dw)) != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(dw) == 0)
        return FLOE_OK;
    if (floe_tensor_num_elements(dy) == 0 || floe_tensor_num_elements(x) == 0)
        return dev_cuda__fail_cuda(cudaMemsetAsync(floe_tensor_device_data(dw), 0,
                                                   floe_tensor_nbytes(dw), d->stream),
                                   "Conv2DBackpropFilter");
    bool sym = symmetric(&g);
    int64_t ph = sym ? g.h : g.h + g.pt + g.pb, pw = sym ? g.w : g.w + g.pl + g.pr;
    xin = floe_tensor_device_data(x);
    st = scratch_get(d, &sc, floe_tensor_nbytes(dw), &dw_ohwi);
    if (st == FLOE_OK && !sym) {
        void *xp;
        st = scratch_get(d, &sc, nbytes4(g.n, ph, pw, g.c), &xp);
        if (st == FLOE_OK)
            st = dev_cuda__fail_cuda(pad_input(d->stream, &g, xin, xp),
                                     "Conv2DBackpropFilter padding");
        xin = xp;
    }
    if (st == FLOE_OK)
        st = desc_new(d, &g, ph, pw, sym, &cd);
    if (st != FLOE_OK) {
        scratch_release(d, &sc);
        return st;
    }
    {
        const float one = 1.0f, zero = 0.0f;
        pthread_mutex_lock(&d->lib_lock);
        int s = L->cudnnGetConvolutionBackwardFilterAlgorithm_v7(d->dnn, cd.x, cd.y, cd.conv, cd.w,
                                                                 8, &nperf, perf);
        int best;
        FIRST_USABLE(perf, nperf, best);
        if (!s && best < 0)
            s = CUDNN_STATUS_NOT_SUPPORTED;
        if (!s)
            s = L->cudnnGetConvolutionBackwardFilterWorkspaceSize(d->dnn, cd.x, cd.y, cd.conv, cd.w,
                                                                  perf[best].algo, &wsz);
        if (!s && wsz > 0 && scratch_get(d, &sc, wsz, &ws) != FLOE_OK)
            s = CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
        if (!s)
            s = L->cudnnConvolutionBackwardFilter(d->dnn, &one, cd.x, xin, cd.y,
                                                  floe_tensor_device_data(dy), cd.conv,
                                                  perf[best].algo, ws, wsz, &zero, cd.w, dw_ohwi);
        pthread_mutex_unlock(&d->lib_lock);
        st = dev_cuda__fail_cudnn(s, "Conv2DBackpropFilter (cudnnConvolutionBackwardFilter)");
    }
    desc_free(&cd);
    if (st == FLOE_OK)
        st = filter_layout(d, &g, false, dw_ohwi, floe_tensor_device_data(dw));
    scratch_release(d, &sc);
    return st;
}

/* ---- Softmax ------------------------------------------------------------------------------- */

static floe_status softmax_run(floe_kernel_ctx *kc, cudnnSoftmaxAlgorithm_t algo) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    floe_dtype dt = floe_tensor_dtype(x);
    cudnnDataType_t ct = dt == FLOE_DTYPE_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    cudnnTensorDescriptor_t desc = NULL;
    int nd = floe_tensor_ndim(x);
    int64_t rows = 1, classes;
    floe_tensor *y;
    floe_status st;
    int s;

    if (d == NULL)
        return FLOE_INTERNAL;
    if (nd < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "logits must have rank >= 1");
    classes = floe_tensor_dim(x, nd - 1);
    for (int i = 0; i < nd - 1; i++)
        rows *= floe_tensor_dim(x, i);
    if (rows > INT32_MAX || classes > INT32_MAX)
        return floe_fail(FLOE_INVALID_ARGUMENT, "logits exceed cuDNN's int range");
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), nd, &y)) != FLOE_OK)
        return st;
    if (rows == 0 || classes == 0)
        return FLOE_OK;
    pthread_mutex_lock(&d->lib_lock);
    s = L->cudnnCreateTensorDescriptor(&desc);
    if (!s)
        s = L->cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, ct, (int)rows, (int)classes, 1, 1);
    if (!s) {
        const double one_d = 1.0, zero_d = 0.0;
        const float one_f = 1.0f, zero_f = 0.0f;
        const void *one = dt == FLOE_DTYPE_F32 ? (const void *)&one_f : (const void *)&one_d;
        const void *zero = dt == FLOE_DTYPE_F32 ? (const void *)&zero_f : (const void *)&zero_d;
        s = L->cudnnSoftmaxForward(d->dnn, algo, CUDNN_SOFTMAX_MODE_CHANNEL, one, desc,
                                   floe_tensor_device_data(x), zero, desc,
                                   floe_tensor_device_data(y));
    }
    if (desc != NULL)
        L->cudnnDestroyTensorDescriptor(desc);
    pthread_mutex_unlock(&d->lib_lock);
    return dev_cuda__fail_cudnn(s, "cudnnSoftmaxForward");
}

static floe_status softmax_compute(floe_kernel_ctx *kc, void *state) {
    return softmax_run(kc, CUDNN_SOFTMAX_ACCURATE);
}

static floe_status log_softmax_compute(floe_kernel_ctx *kc, void *state) {
    return softmax_run(kc, CUDNN_SOFTMAX_LOG);
}

/* ---- Batch normalisation ----------------------------------------------------------------- */

/*
 * The semantics are ops_nn/batchnorm.c's, so that the gradient consumes either device's
 * forward outputs: reserve_space_1/2 hold the mean and the *biased* variance used to
 * normalise (cuDNN's own saved inverse standard deviation is not exposed).  Training
 * runs cuDNN with exponentialAverageFactor 1 into zeroed scratch, which makes its
 * running variance the unbiased batch variance; a small kernel then derives the biased
 * variance and blends batch_mean/variance with the inputs when exponential_avg_factor
 * != 1 (the inputs are not read otherwise, as on the CPU).  The gradient gives cuDNN the
 * reserve spaces as saved mean and 1 / sqrt(variance + epsilon); inference's gradient
 * (dx = scale * inv * dy) overwrites cuDNN's training-mode dx.
 */

typedef struct bn_cfg {
    float epsilon, factor;
    int nchw, training;
    int64_t n, c, h, w;           /* x's extents, in the order of its layout */
    int64_t count, inner;         /* values per channel; 1 (NHWC) or h * w (NCHW) */
} bn_cfg;

static floe_status bn_config(floe_kernel_ctx *kc, const char *op, const floe_tensor *x,
                             int has_factor, bn_cfg *b) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    const char *fmt = "NHWC";
    size_t flen = 4;
    floe_status st;

    memset(b, 0, sizeof(*b));
    b->factor = 1.0f;
    if ((st = floe_attrs_get_float(a, "epsilon", &b->epsilon)) != FLOE_OK ||
        (has_factor &&
         (st = floe_attrs_get_float(a, "exponential_avg_factor", &b->factor)) != FLOE_OK) ||
        (st = floe_attrs_get_bool(a, "is_training", &b->training)) != FLOE_OK)
        return st;
    if (floe_attrs_get_string(a, "data_format", &fmt, &flen) != FLOE_OK)
        fmt = "NHWC", flen = 4;
    if (flen == 4 && memcmp(fmt, "NCHW", 4) == 0)
        b->nchw = 1;
    else if (!(flen == 4 && memcmp(fmt, "NHWC", 4) == 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: data_format must be NHWC or NCHW, got %.*s",
                         op, (int)flen, fmt);
    if (!(b->epsilon >= CUDNN_BN_MIN_EPSILON))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: epsilon must be >= %g, got %g", op,
                         (double)CUDNN_BN_MIN_EPSILON, (double)b->epsilon);
    if (floe_tensor_ndim(x) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x must be 4-dimensional, got rank %d", op,
                         floe_tensor_ndim(x));
    if (floe_tensor_dtype(x) != FLOE_DTYPE_F32)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: x is %s; only f32 is supported", op,
                         floe_dtype_name(floe_tensor_dtype(x)));
    for (int i = 0; i < 4; i++) {
        if (floe_tensor_dim(x, i) == 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x [%lld,%lld,%lld,%lld] is empty", op,
                             (long long)floe_tensor_dim(x, 0), (long long)floe_tensor_dim(x, 1),
                             (long long)floe_tensor_dim(x, 2), (long long)floe_tensor_dim(x, 3));
        if (floe_tensor_dim(x, i) > INT32_MAX)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x's extents exceed cuDNN's int range",
                             op);
    }
    b->n = floe_tensor_dim(x, 0);
    b->c = floe_tensor_dim(x, b->nchw ? 1 : 3);
    b->h = floe_tensor_dim(x, b->nchw ? 2 : 1);
    b->w = floe_tensor_dim(x, b->nchw ? 3 : 2);
    b->count = b->n * b->h * b->w;
    b->inner = b->nchw ? b->h * b->w : 1;
    return FLOE_OK;
}

/* A per-channel input: an f32 vector of @c values. */
static floe_status bn_vector(const char *op, const floe_tensor *t, const char *what, int64_t c) {
    if (floe_tensor_dtype(t) != FLOE_DTYPE_F32 || floe_tensor_ndim(t) != 1 ||
        floe_tensor_dim(t, 0) != c)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: %s must be an f32 vector of %lld values (the depth of x), got rank "
                         "%d with %lld elements", op, what, (long long)c, floe_tensor_ndim(t),
                         (long long)floe_tensor_num_elements(t));
    return FLOE_OK;
}

/* Outputs @first..@last as [c] vectors (device pointers in @out), then @nempty empty ones. */
static floe_status bn_outputs(floe_kernel_ctx *kc, int first, int last, int nempty, int64_t c,
                              float **out) {
    floe_tensor *t = NULL;
    int64_t zero = 0;
    floe_status st;
    for (int i = first; i <= last; i++) {
        if ((st = floe_kernel_alloc_output(kc, i, &c, 1, &t)) != FLOE_OK)
            return st;
        out[i - first] = floe_tensor_device_data(t);
    }
    for (int i = 0; i < nempty; i++)
        if ((st = floe_kernel_alloc_output(kc, last + 1 + i, &zero, 1, &t)) != FLOE_OK)
            return st;
    return FLOE_OK;
}

/* x's descriptor (also y's, dy's, dx's) and the [1, c, 1, 1] one of the vectors. */
static int bn_desc(const bn_cfg *b, cudnnTensorDescriptor_t *xd, cudnnTensorDescriptor_t *vd) {
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    int s;
    *xd = *vd = NULL;
    s = L->cudnnCreateTensorDescriptor(xd);
    if (!s) s = L->cudnnCreateTensorDescriptor(vd);
    if (!s) s = L->cudnnSetTensor4dDescriptor(*xd, b->nchw ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC,
                                              CUDNN_DATA_FLOAT, (int)b->n, (int)b->c, (int)b->h,
                                              (int)b->w);
    if (!s) s = L->cudnnSetTensor4dDescriptor(*vd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                              (int)b->c, 1, 1);
    return s;
}

static void bn_desc_free(cudnnTensorDescriptor_t xd, cudnnTensorDescriptor_t vd) {
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    if (xd) L->cudnnDestroyTensorDescriptor(xd);
    if (vd) L->cudnnDestroyTensorDescriptor(vd);
}

static floe_status fused_batch_norm_compute(floe_kernel_ctx *kc, void *state) {
    const char *op = "FusedBatchNormV3";
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *scale = floe_kernel_input(kc, 1);
    const floe_tensor *offset = floe_kernel_input(kc, 2), *mean_in = floe_kernel_input(kc, 3);
    const floe_tensor *var_in = floe_kernel_input(kc, 4);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    cudnnTensorDescriptor_t xd = NULL, vd = NULL;
    scratch sc = {{NULL}, 0};
    float *vec[4], *tmp = NULL;
    floe_tensor *y;
    bn_cfg b;
    floe_status st;
    int s;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = bn_config(kc, op, x, 1, &b)) != FLOE_OK ||
        (st = bn_vector(op, scale, "scale", b.c)) != FLOE_OK ||
        (st = bn_vector(op, offset, "offset", b.c)) != FLOE_OK)
        return st;
    bool use_running = !b.training || b.factor != 1.0f;
    if (use_running && ((st = bn_vector(op, mean_in, "mean", b.c)) != FLOE_OK ||
                        (st = bn_vector(op, var_in, "variance", b.c)) != FLOE_OK))
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &y)) != FLOE_OK ||
        (st = bn_outputs(kc, 1, 4, 1, b.c, vec)) != FLOE_OK)
        return st;
    size_t vbytes = (size_t)b.c * sizeof(float);
    if (!b.training) {
        /* outputs: the inputs (batch_mean/variance and the reserve spaces) */
        const void *src[4] = {floe_tensor_device_data(mean_in), floe_tensor_device_data(var_in),
                              floe_tensor_device_data(mean_in), floe_tensor_device_data(var_in)};
        for (int i = 0; i < 4 && st == FLOE_OK; i++)
            st = dev_cuda__fail_cuda(cudaMemcpyAsync(vec[i], src[i], vbytes,
                                                     cudaMemcpyDeviceToDevice, d->stream), op);
        if (st != FLOE_OK)
            return st;
    } else {
        /* save mean, save inverse std, running mean, running variance */
        if ((st = scratch_get(d, &sc, 4 * vbytes, (void **)&tmp)) != FLOE_OK)
            return st;
        if ((st = dev_cuda__fail_cuda(cudaMemsetAsync(tmp, 0, 4 * vbytes, d->stream), op)) !=
            FLOE_OK) {
            scratch_release(d, &sc);
            return st;
        }
    }
    const float one = 1.0f, zero = 0.0f;
    pthread_mutex_lock(&d->lib_lock);
    s = bn_desc(&b, &xd, &vd);
    if (!s && b.training)
        s = L->cudnnBatchNormalizationForwardTraining(
            d->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, floe_tensor_device_data(x), xd,
            floe_tensor_device_data(y), vd, floe_tensor_device_data(scale),
            floe_tensor_device_data(offset), 1.0, tmp + 2 * b.c, tmp + 3 * b.c, b.epsilon, tmp,
            tmp + b.c);
    else if (!s)
        s = L->cudnnBatchNormalizationForwardInference(
            d->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, floe_tensor_device_data(x), xd,
            floe_tensor_device_data(y), vd, floe_tensor_device_data(scale),
            floe_tensor_device_data(offset), floe_tensor_device_data(mean_in),
            floe_tensor_device_data(var_in), b.epsilon);
    bn_desc_free(xd, vd);
    pthread_mutex_unlock(&d->lib_lock);
    st = dev_cuda__fail_cudnn(s, b.training ? "FusedBatchNormV3 "
                                              "(cudnnBatchNormalizationForwardTraining)"
                                            : "FusedBatchNormV3 "
                                              "(cudnnBatchNormalizationForwardInference)");
    if (st == FLOE_OK && b.training)
        st = dev_cuda__fail_cuda(
            dev_cuda__k_bn_train_stats(d->stream, b.c, b.count, b.factor, tmp, tmp + 3 * b.c,
                                       use_running ? floe_tensor_device_data(mean_in) : NULL,
                                       use_running ? floe_tensor_device_data(var_in) : NULL,
                                       vec[0], vec[1], vec[2], vec[3]),
            "FusedBatchNormV3 statistics");
    scratch_release(d, &sc);
    return st;
}

static floe_status fused_batch_norm_grad_compute(floe_kernel_ctx *kc, void *state) {
    const char *op = "FusedBatchNormGradV3";
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *dy = floe_kernel_input(kc, 0), *x = floe_kernel_input(kc, 1);
    const floe_tensor *scale = floe_kernel_input(kc, 2), *rs1 = floe_kernel_input(kc, 3);
    const floe_tensor *rs2 = floe_kernel_input(kc, 4);
    const dev_cuda__dnn_lib *L = &dev_cuda__dnn;
    cudnnTensorDescriptor_t xd = NULL, vd = NULL;
    scratch sc = {{NULL}, 0};
    float *vec[2], *inv = NULL;
    floe_tensor *dx;
    bn_cfg b;
    floe_status st;
    int s;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = bn_config(kc, op, x, 0, &b)) != FLOE_OK ||
        (st = bn_vector(op, scale, "scale", b.c)) != FLOE_OK ||
        (st = bn_vector(op, rs1, "reserve_space_1 (mean)", b.c)) != FLOE_OK ||
        (st = bn_vector(op, rs2, "reserve_space_2 (variance)", b.c)) != FLOE_OK)
        return st;
    if (floe_tensor_dtype(dy) != FLOE_DTYPE_F32 || floe_tensor_ndim(dy) != 4 ||
        memcmp(floe_tensor_shape(dy), floe_tensor_shape(x), 4 * sizeof(int64_t)) != 0)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: y_backprop must have x's shape [%lld,%lld,%lld,%lld]", op,
                         (long long)floe_tensor_dim(x, 0), (long long)floe_tensor_dim(x, 1),
                         (long long)floe_tensor_dim(x, 2), (long long)floe_tensor_dim(x, 3));
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &dx)) != FLOE_OK ||
        (st = bn_outputs(kc, 1, 2, 2, b.c, vec)) != FLOE_OK)
        return st;
    if ((st = scratch_get(d, &sc, (size_t)b.c * sizeof(float), (void **)&inv)) != FLOE_OK)
        return st;
    st = dev_cuda__fail_cuda(dev_cuda__k_bn_inv_std(d->stream, b.c, b.epsilon,
                                                    floe_tensor_device_data(rs2), inv),
                             "FusedBatchNormGradV3 inverse std");
    if (st != FLOE_OK) {
        scratch_release(d, &sc);
        return st;
    }
    const float one = 1.0f, zero = 0.0f;
    pthread_mutex_lock(&d->lib_lock);
    s = bn_desc(&b, &xd, &vd);
    if (!s)
        s = L->cudnnBatchNormalizationBackward(
            d->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd,
            floe_tensor_device_data(x), xd, floe_tensor_device_data(dy), xd,
            floe_tensor_device_data(dx), vd, floe_tensor_device_data(scale), vec[0], vec[1],
            b.epsilon, floe_tensor_device_data(rs1), inv);
    bn_desc_free(xd, vd);
    pthread_mutex_unlock(&d->lib_lock);
    st = dev_cuda__fail_cudnn(s, "FusedBatchNormGradV3 (cudnnBatchNormalizationBackward)");
    if (st == FLOE_OK && !b.training)
        st = dev_cuda__fail_cuda(
            dev_cuda__k_bn_dx_infer(d->stream, floe_tensor_num_elements(x), b.c, b.inner,
                                    floe_tensor_device_data(dy), floe_tensor_device_data(scale),
                                    inv, floe_tensor_device_data(dx)),
            "FusedBatchNormGradV3 (inference)");
    scratch_release(d, &sc);
    return st;
}

/* ---- Registration ------------------------------------------------------------------------- */

floe_status dev_cuda__register_dnn(floe_plugin *self) {
    static const char *const T_F32[] = {"T: {f32}", NULL};
    static const char *const T_FLOAT[] = {"T: {f32, f64}", NULL};
    static const char *const TU_F32[] = {"T: {f32}", "U: {f32}", NULL};
    static const char *const IN_SIZES[] = {"input_sizes", NULL};
    static const char *const F_SIZES[] = {"filter_sizes", NULL};
    static const struct {
        const char *op;
        floe_status (*compute)(floe_kernel_ctx *, void *);
        const char *const *constraints, *const *host_memory;
    } k[] = {
        {"Conv2D", conv2d_compute, T_F32, NULL},
        {"Conv2DBackpropInput", conv_backprop_input_compute, T_F32, IN_SIZES},
        {"Conv2DBackpropFilter", conv_backprop_filter_compute, T_F32, F_SIZES},
        {"Softmax", softmax_compute, T_FLOAT, NULL},
        {"LogSoftmax", log_softmax_compute, T_FLOAT, NULL},
        {"FusedBatchNormV3", fused_batch_norm_compute, TU_F32, NULL},
        {"FusedBatchNormGradV3", fused_batch_norm_grad_compute, TU_F32, NULL},
    };

    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        floe_kernel_def def;
        floe_status st;
        memset(&def, 0, sizeof(def));
        def.struct_size = sizeof(def);
        def.op = k[i].op;
        def.device_type = "GPU";
        def.constraints = k[i].constraints;
        def.host_memory = k[i].host_memory;
        def.compute = k[i].compute;
        if ((st = floe_register_kernel(self, &def)) != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
