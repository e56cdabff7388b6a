/*
 * conv.c - Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter, DepthwiseConv2dNative and
 * its two backprops: TensorFlow's ops, attrs and shapes, on oneDNN convolution primitives
 * (forward, backward data, backward weights), f32.
 *
 * Layout: activations stay in TensorFlow's layout and oneDNN reads and writes them in
 * place: NHWC or NCHW (dnnl_nhwc / dnnl_nchw tags).  The filter is given to the primitive
 * as 'any', so it picks its preferred (blocked) layout, and a cached reorder converts the
 * HWIO filter (depthwise: [H, W, C, M] as grouped dnnl_hwigo weights, one input channel
 * per group) into it on every call, or converts the filter gradient back.  Measured
 * (benchmarks/bench_conv, seed CNN shapes, one thread): with a plain HWIO filter oneDNN 2.6
 * falls back to its im2col GEMM convolution (x64:gemm:jit), 1.3-3x slower than the
 * brgconv / jit kernels it picks with its own filter layout (forward and backward weights
 * of both seed layers, backward data of the second), except backward data with a single
 * input channel (the seed's first layer: 5.6 ms plain against 13.9 ms), which keeps the
 * plain filter.  'any' activations gain nothing (it picks NHWC anyway) and would cost two
 * reorders of the activations.
 *
 * Primitives are made once per shape (per batch part size: the batch is split over
 * Floe's pool, see dnnl_util.c), on the first call that sees it, and cached in the
 * kernel state (dnnl_util.c: keyed by shapes, strides, dilations and paddings), with
 * the algorithm fixed to direct convolution (no Winograd: same results as TensorFlow's
 * CPU kernels to float rounding).  Validation follows TensorFlow: 4 strides and dilations,
 * N and C entries 1, all positive; filter input depth equal to the input's channels;
 * zero-size spatial or channel extents rejected with a message (an empty batch gives an
 * empty output); SAME / VALID / EXPLICIT output sizes per TensorFlow's
 * GetWindowedOutputSizeVerbose.
 *
 * Gradients: Conv2D -> Conv2DBackpropInput(Shape(x), w, dy) and
 * Conv2DBackpropFilter(x, Shape(w), dy); DepthwiseConv2dNative likewise.
 *
 * Sections: parameters and geometry; primitives; kernels; shape functions; gradients;
 * registration.
 */
#include "dnnl_util.h"

#include <stdio.h>

enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 };

/* ---- Parameters and geometry ----------------------------------------------------------- */

typedef struct conv_params {
    const char *op;
    int kind;                 /* CONV_* */
    int depthwise;
    int nchw;
    nn_padding pad;
    int64_t stride[2], dil[2];
    int64_t explicit_pads[4]; /* top, bottom, left, right */
} conv_params;

typedef struct conv_geom {
    int64_t n, c, h, w;       /* input */
    int64_t kh, kw, ic, m;    /* filter: [kh, kw, ic, m]; m = out channels (multiplier) */
    int64_t o, oh, ow;        /* output channels and extents */
    int64_t pt, pb, pl, pr;
} conv_geom;

static floe_status conv_params_read(const floe_attrs *a, const char *op, int kind, int depthwise,
                                    conv_params *p) {
    floe_status st;

    memset(p, 0, sizeof(*p));
    p->op = op;
    p->kind = kind;
    p->depthwise = depthwise;
    if ((st = ops_nn__get_format(a, op, &p->nchw)) != FLOE_OK ||
        (st = ops_nn__get_padding(a, op, 1, &p->pad)) != FLOE_OK ||
        (st = ops_nn__get_hw4(a, "strides", op, p->nchw, 0, p->stride)) != FLOE_OK ||
        (st = ops_nn__get_hw4(a, "dilations", op, p->nchw, 0, p->dil)) != FLOE_OK)
        return st;
    if (p->pad == NN_PAD_EXPLICIT) {
        const int64_t *v = NULL;
        int n = 0, hi = p->nchw ? 2 : 1, ci = p->nchw ? 1 : 3;
        if ((st = floe_attrs_get_int_list(a, "explicit_paddings", &v, &n)) != FLOE_OK)
            return st;
        if (n != 8)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: explicit_paddings must have 8 values with EXPLICIT padding, "
                             "not %d", op, n);
        for (int i = 0; i < 8; i++)
            if (v[i] < 0)
                return floe_fail(FLOE_INVALID_ARGUMENT, "%s: negative explicit padding %lld",
                                 op, (long long)v[i]);
        if (v[0] != 0 || v[1] != 0 || v[2 * ci] != 0 || v[2 * ci + 1] != 0)
            return floe_fail(FLOE_UNIMPLEMENTED,
                             "%s: explicit padding of the batch or depth dimension", op);
        p->explicit_pads[0] = v[2 * hi];
        p->explicit_pads[1] = v[2 * hi + 1];
        p->explicit_pads[2] = v[2 * hi + 2];
        p->explicit_pads[3] = v[2 * hi + 3];
    }
    return FLOE_OK;
}

static void fmt_dims(const int64_t *d, int n, char *buf, size_t size) {
    size_t at = 0;
    at += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "", (long long)d[i]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

/* Geometry from the input shape @in and the filter shape @f (both rank 4). */
static floe_status conv_geometry(const conv_params *p, const int64_t *in, const int64_t *f,
                                 conv_geom *g) {
    char is[96], fs[96];
    floe_status st;

    memset(g, 0, sizeof(*g));
    g->n = in[0];
    g->c = in[p->nchw ? 1 : 3];
    g->h = in[p->nchw ? 2 : 1];
    g->w = in[p->nchw ? 3 : 2];
    g->kh = f[0];
    g->kw = f[1];
    g->ic = f[2];
    g->m = f[3];
    fmt_dims(in, 4, is, sizeof(is));
    fmt_dims(f, 4, fs, sizeof(fs));
    if (g->n < 0 || g->c <= 0 || g->h <= 0 || g->w <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input %s must have non-empty spatial and "
                         "channel dimensions", p->op, is);
    if (g->kh <= 0 || g->kw <= 0 || g->ic <= 0 || g->m <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: filter %s must not be empty", p->op, fs);
    if (g->ic != g->c)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: input depth must equal filter in_depth: input %s (%s), filter %s",
                         p->op, is, p->nchw ? "NCHW" : "NHWC", fs);
    g->o = p->depthwise ? g->c * g->m : g->m;
    g->pt = p->explicit_pads[0];
    g->pb = p->explicit_pads[1];
    g->pl = p->explicit_pads[2];
    g->pr = p->explicit_pads[3];
    if ((st = ops_nn__window(p->op, p->pad, g->h, g->kh, p->stride[0], p->dil[0], &g->pt, &g->pb,
                             &g->oh)) != FLOE_OK ||
        (st = ops_nn__window(p->op, p->pad, g->w, g->kw, p->stride[1], p->dil[1], &g->pl, &g->pr,
                             &g->ow)) != FLOE_OK)
        return st;
    return FLOE_OK;
}

static void conv_out_shape(const conv_params *p, const conv_geom *g, int64_t out[4]) {
    out[0] = g->n;
    out[p->nchw ? 1 : 3] = g->o;
    out[p->nchw ? 2 : 1] = g->oh;
    out[p->nchw ? 3 : 2] = g->ow;
}

/* ---- Primitives ----------------------------------------------------------------------- */

#ifdef FLOE_HAVE_DNNL

typedef struct conv_build_arg {
    const conv_params *p;
    const conv_geom *g;
} conv_build_arg;

/* The reorder between TensorFlow's filter layout @user and the primitive's @prim one,
 * as prims[1] of @e: @to_prim for a filter read by the convolution, else for a filter
 * gradient it writes. */
static floe_status conv_build_reorder(const conv_params *p, dnnl_engine_t engine,
                                      dnnl_primitive_attr_t attr, const dnnl_memory_desc_t *user,
                                      const dnnl_memory_desc_t *prim, int to_prim, nn_entry *e) {
    static const int kinds[] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_status_t s;

    s = dnnl_reorder_primitive_desc_create(&rpd, to_prim ? user : prim, engine,
                                           to_prim ? prim : user, engine, attr);
    if (s != dnnl_success)
        return ops_nn__dnnl_fail(s, p->op, "creating the filter reorder");
    e->nprims = 2;
    return ops_nn__prim_from_pd(rpd, 2, kinds, p->op, &e->prims[1]);
}

/* Memory descriptors of one problem: activations in TensorFlow's layout, the filter in
 * HWIO (@wei) and as 'any' (@wei_any) for the primitive to choose. */
static dnnl_status_t conv_mds(const conv_params *p, const conv_geom *g, dnnl_memory_desc_t *src,
                              dnnl_memory_desc_t *wei, dnnl_memory_desc_t *wei_any,
                              dnnl_memory_desc_t *dst) {
    dnnl_dims_t sd = {g->n, g->c, g->h, g->w}, dd = {g->n, g->o, g->oh, g->ow};
    dnnl_format_tag_t act = p->nchw ? dnnl_nchw : dnnl_nhwc;
    dnnl_status_t s;

    s = dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, act);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, act);
    if (s != dnnl_success)
        return s;
    if (p->depthwise) {
        dnnl_dims_t wd = {g->c, g->m, 1, g->kh, g->kw};
        s = dnnl_memory_desc_init_by_tag(wei, 5, wd, dnnl_f32, dnnl_hwigo);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(wei_any, 5, wd, dnnl_f32, dnnl_format_tag_any);
    } else {
        dnnl_dims_t wd = {g->m, g->c, g->kh, g->kw};
        s = dnnl_memory_desc_init_by_tag(wei, 4, wd, dnnl_f32, dnnl_hwio);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(wei_any, 4, wd, dnnl_f32, dnnl_format_tag_any);
    }
    return s;
}

static floe_status conv_build(void *arg, dnnl_engine_t engine, nn_entry *e) {
    const conv_params *p = ((conv_build_arg *)arg)->p;
    const conv_geom *g = ((conv_build_arg *)arg)->g;
    dnnl_memory_desc_t src, wei, wei_any, dst;
    dnnl_convolution_desc_t fwd_d, bwd_d;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t strides = {p->stride[0], p->stride[1]};
    dnnl_dims_t dil = {p->dil[0] - 1, p->dil[1] - 1};
    dnnl_dims_t pl = {g->pt, g->pl}, pr = {g->pb, g->pr};
    int kinds[3], widx;
    dnnl_status_t s;
    floe_status st;

    s = conv_mds(p, g, &src, &wei, &wei_any, &dst);
    if (s == dnnl_success && p->kind == CONV_BWD_DATA && g->c == 1)
        wei_any = wei; /* measured: the plain filter is faster there (see the top) */
    if (s == dnnl_success)
        s = dnnl_dilated_convolution_forward_desc_init(
            &fwd_d, p->kind == CONV_FWD ? dnnl_forward_inference : dnnl_forward_training,
            dnnl_convolution_direct, &src, &wei_any, NULL, &dst, strides, dil, pl, pr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&fwd_pd, &fwd_d, attr, engine, NULL);
    if (s != dnnl_success) {
        fwd_pd = NULL;
        goto fail;
    }
    if (p->kind == CONV_FWD) {
        kinds[0] = DNNL_ARG_SRC, kinds[1] = DNNL_ARG_WEIGHTS, kinds[2] = DNNL_ARG_DST;
        widx = 1;
        pd = fwd_pd;
        fwd_pd = NULL;
    } else {
        if (p->kind == CONV_BWD_DATA) {
            kinds[0] = DNNL_ARG_DIFF_DST, kinds[1] = DNNL_ARG_WEIGHTS, kinds[2] = DNNL_ARG_DIFF_SRC;
            widx = 1;
            s = dnnl_dilated_convolution_backward_data_desc_init(
                &bwd_d, dnnl_convolution_direct, &src, &wei_any, &dst, strides, dil, pl, pr);
        } else {
            kinds[0] = DNNL_ARG_SRC, kinds[1] = DNNL_ARG_DIFF_DST, kinds[2] = DNNL_ARG_DIFF_WEIGHTS;
            widx = 2;
            s = dnnl_dilated_convolution_backward_weights_desc_init(
                &bwd_d, dnnl_convolution_direct, &src, &wei_any, NULL, &dst, strides, dil, pl, pr);
        }
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&pd, &bwd_d, attr, engine, fwd_pd);
        dnnl_primitive_desc_destroy(fwd_pd);
        fwd_pd = NULL;
        if (s != dnnl_success)
            goto fail;
    }
    e->nprims = 1;
    st = ops_nn__prim_from_pd(pd, 3, kinds, p->op, &e->prims[0]);
    /* The primitive's filter layout: TensorFlow's, or a blocked one reached by a reorder
     * each call (the filter changes every training step; reordering it is a small pass). */
    if (st == FLOE_OK && !dnnl_memory_desc_equal(&e->prims[0].md[widx], &wei))
        st = conv_build_reorder(p, engine, attr, &wei, &e->prims[0].md[widx],
                                p->kind != CONV_BWD_FILTER, e);
    dnnl_primitive_attr_destroy(attr);
    if (st != FLOE_OK)
        return st;
    /* slot: [scratchpad (the larger of the two) | the filter in the primitive's layout] */
    size_t scratch = e->prims[0].scratch_size;
    if (e->nprims == 2 && e->prims[1].scratch_size > scratch)
        scratch = e->prims[1].scratch_size;
    e->info[0] = (int64_t)ops_nn__align64(scratch);
    e->info[1] = widx;
    e->slot_bytes = ops_nn__align64(scratch);
    if (e->nprims == 2)
        e->slot_bytes += ops_nn__align64(dnnl_memory_desc_get_size(&e->prims[0].md[widx]));
    return FLOE_OK;

fail:
    if (fwd_pd != NULL)
        dnnl_primitive_desc_destroy(fwd_pd);
    if (attr != NULL)
        dnnl_primitive_attr_destroy(attr);
    return ops_nn__dnnl_fail(s, p->op, "creating the convolution primitive");
}

/* Runs the entry: the filter reorder before (filters read) or after (filter gradients)
 * the convolution when the primitive wants its own filter layout. */
static floe_status conv_entry_run(nn_entry *e, const conv_params *p, void *const *user,
                                  char *scratch) {
    void *ptrs[3] = {user[0], user[1], user[2]};
    int widx = (int)e->info[1];
    floe_status st;

    if (e->nprims == 1)
        return ops_nn__prim_run(&e->prims[0], ptrs, scratch, p->op);
    void *blocked = scratch + e->info[0];
    void *r[2] = {user[widx], blocked};
    ptrs[widx] = blocked;
    if (p->kind != CONV_BWD_FILTER &&
        (st = ops_nn__prim_run(&e->prims[1], r, scratch, p->op)) != FLOE_OK)
        return st;
    if ((st = ops_nn__prim_run(&e->prims[0], ptrs, scratch, p->op)) != FLOE_OK)
        return st;
    if (p->kind == CONV_BWD_FILTER) {
        r[0] = blocked;
        r[1] = user[widx];
        st = ops_nn__prim_run(&e->prims[1], r, scratch, p->op);
    }
    return st;
}

/* One call split over the batch (nn_split); filter-gradient parts after the first write
 * partial sums into @partial. */
typedef struct conv_job {
    nn_split sp;
    nn_cache *cache;
    const conv_params *p;
    const conv_geom *g;
    void *const *ptrs;
    float *partial;                 /* (parts - 1) filter gradients */
} conv_job;

static floe_status conv_part(void *arg, int part) {
    const conv_job *j = arg;
    const conv_geom *g = j->g;
    int64_t n0, n1, in_img = g->c * g->h * g->w, out_img = g->o * g->oh * g->ow;
    float *const *u = (float *const *)j->ptrs;
    void *ptrs[3];

    ops_nn__batch_part(g->n, j->sp.parts, part, &n0, &n1);
    switch (j->p->kind) {
    case CONV_FWD:
        ptrs[0] = u[0] + n0 * in_img, ptrs[1] = u[1], ptrs[2] = u[2] + n0 * out_img;
        break;
    case CONV_BWD_DATA:
        ptrs[0] = u[0] + n0 * out_img, ptrs[1] = u[1], ptrs[2] = u[2] + n0 * in_img;
        break;
    default:
        ptrs[0] = u[0] + n0 * in_img, ptrs[1] = u[1] + n0 * out_img;
        ptrs[2] = part == 0 ? u[2] : j->partial + (part - 1) * g->kh * g->kw * g->c * g->m;
        break;
    }
    return conv_entry_run(ops_nn__split_entry(&j->sp, part), j->p, ptrs, j->sp.scratch[part]);
}

/* The entry for @n images of the job @arg's problem (an nn_entry_get_fn), for one OpenMP
 * thread. */
static floe_status conv_entry_get(void *arg, int64_t n, nn_entry **out) {
    const conv_job *j = arg;
    const conv_params *p = j->p;
    const conv_geom *g = j->g;
    conv_geom sub = *g;
    sub.n = n;
    int64_t key[20] = {p->kind, p->depthwise, p->nchw, n, g->c, g->h, g->w, g->kh, g->kw,
                       g->m, p->stride[0], p->stride[1], p->dil[0], p->dil[1], g->pt, g->pb,
                       g->pl, g->pr, g->oh, g->ow};
    conv_build_arg build_arg = {p, &sub};
    return ops_nn__cache_get(j->cache, key, 20, conv_build, &build_arg, p->op, out);
}

/* Runs the kernel's primitives for @g with data pointers in argument order, the batch
 * split over @pool. */
static floe_status conv_run(nn_cache *cache, const conv_params *p, const conv_geom *g,
                            floe_threadpool *pool, void *const *ptrs) {
    int64_t macs = g->n * g->oh * g->ow * g->o * g->kh * g->kw * (p->depthwise ? 1 : g->c);
    int64_t wsize = g->kh * g->kw * g->c * g->m;
    conv_job j;
    int saved = ops_nn__omp_begin();
    floe_status st;

    j.cache = cache;
    j.p = p;
    j.g = g;
    j.ptrs = ptrs;
    j.partial = NULL;
    if ((st = ops_nn__split_begin(&j.sp, pool, g->n, macs, conv_entry_get, &j)) != FLOE_OK)
        goto done;
    if (p->kind == CONV_BWD_FILTER && j.sp.parts > 1) {
        j.partial = floe_alloc((size_t)(j.sp.parts - 1) * (size_t)wsize * sizeof(float), 64);
        if (j.partial == NULL) {
            st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory for filter gradients",
                           p->op);
            goto done;
        }
    }
    if ((st = ops_nn__split_claim(&j.sp)) != FLOE_OK)
        goto done;
    st = ops_nn__run_parts(pool, j.sp.parts, conv_part, &j);
    if (st != FLOE_OK) {
        st = floe_fail(st, "%s: running the convolution primitive failed", p->op);
        goto done;
    }
    if (j.partial != NULL) {
        float *restrict dw = ptrs[2];
        for (int q = 1; q < j.sp.parts; q++) {
            const float *restrict part = j.partial + (q - 1) * wsize;
            for (int64_t i = 0; i < wsize; i++)
                dw[i] += part[i];
        }
    }
done:
    ops_nn__split_end(&j.sp);
    floe_free(j.partial);
    ops_nn__omp_end(saved);
    return st;
}

#endif /* FLOE_HAVE_DNNL */

/* ---- Kernels ---------------------------------------------------------------------------- */

typedef struct conv_state {
#ifdef FLOE_HAVE_DNNL
    nn_cache cache; /* first: ops_nn__state_new / ops_nn__state_free */
#endif
    conv_params p;
} conv_state;

static floe_status conv_create_common(floe_kernel_ctx *kc, const char *op, int kind,
                                      int depthwise, void **state) {
    conv_state *s;
    floe_status st;

    *state = NULL;
    if ((s = ops_nn__state_new(sizeof(*s), op)) == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    if ((st = conv_params_read(floe_kernel_attrs(kc), op, kind, depthwise, &s->p)) != FLOE_OK) {
        ops_nn__state_free(s);
        return st;
    }
    *state = s;
    return FLOE_OK;
}

#define CONV_CREATE(fn, name, kind, dw)                                                   \
    static floe_status fn(floe_kernel_ctx *kc, void **state) {                            \
        return conv_create_common(kc, name, kind, dw, state);                             \
    }
CONV_CREATE(conv2d_create, "Conv2D", CONV_FWD, 0)
CONV_CREATE(conv2d_bwd_input_create, "Conv2DBackpropInput", CONV_BWD_DATA, 0)
CONV_CREATE(conv2d_bwd_filter_create, "Conv2DBackpropFilter", CONV_BWD_FILTER, 0)
CONV_CREATE(dw_create, "DepthwiseConv2dNative", CONV_FWD, 1)
CONV_CREATE(dw_bwd_input_create, "DepthwiseConv2dNativeBackpropInput", CONV_BWD_DATA, 1)
CONV_CREATE(dw_bwd_filter_create, "DepthwiseConv2dNativeBackpropFilter", CONV_BWD_FILTER, 1)

static floe_status rank4(const conv_params *p, const floe_tensor *t, const char *what) {
    return ops_nn__rank4_f32(p->op, t, what);
}

/* The 4 values of a sizes input (input_sizes / filter_sizes, i32). */
static floe_status read_sizes(const conv_params *p, const floe_tensor *t, const char *what,
                              int64_t out[4]) {
    const int32_t *v = floe_tensor_data(t);
    if (floe_tensor_dtype(t) != FLOE_DTYPE_I32 || floe_tensor_ndim(t) != 1 ||
        floe_tensor_dim(t, 0) != 4 || v == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s must be an i32 vector of 4 values", p->op,
                         what);
    for (int i = 0; i < 4; i++)
        out[i] = v[i];
    return FLOE_OK;
}

/* Checks that the out_backprop @dy has the shape the forward op would produce. */
static floe_status check_dy(const conv_params *p, const conv_geom *g, const floe_tensor *dy) {
    int64_t want[4];
    char ws[96], gs[96];
    conv_out_shape(p, g, want);
    for (int i = 0; i < 4; i++)
        if (floe_tensor_dim(dy, i) != want[i]) {
            fmt_dims(want, 4, ws, sizeof(ws));
            fmt_dims(floe_tensor_shape(dy), 4, gs, sizeof(gs));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: out_backprop has shape %s, the convolution gives %s", p->op, gs,
                             ws);
        }
    return FLOE_OK;
}

static floe_status conv_execute(floe_kernel_ctx *kc, conv_state *s, const conv_geom *g,
                                void *const *ptrs, const floe_tensor *out) {
    if (floe_tensor_num_elements(out) == 0 || g->n == 0)
        return FLOE_OK;
#ifdef FLOE_HAVE_DNNL
    return conv_run(&s->cache, &s->p, g, floe_kernel_threadpool(kc), ptrs);
#else
    (void)kc;
    (void)ptrs;
    return floe_fail(FLOE_UNIMPLEMENTED, "%s: this build has no oneDNN", s->p.op);
#endif
}

static floe_status conv_fwd_compute(floe_kernel_ctx *kc, void *state) {
    conv_state *s = state;
    floe_tensor *x = floe_kernel_input(kc, 0), *f = floe_kernel_input(kc, 1), *y = NULL;
    int64_t shape[4];
    conv_geom g;
    floe_status st;

    if ((st = rank4(&s->p, x, "input")) != FLOE_OK || (st = rank4(&s->p, f, "filter")) != FLOE_OK ||
        (st = conv_geometry(&s->p, floe_tensor_shape(x), floe_tensor_shape(f), &g)) != FLOE_OK)
        return st;
    conv_out_shape(&s->p, &g, shape);
    if ((st = floe_kernel_alloc_output(kc, 0, shape, 4, &y)) != FLOE_OK)
        return st;
    void *ptrs[3] = {floe_tensor_data(x), floe_tensor_data(f), floe_tensor_data(y)};
    return conv_execute(kc, s, &g, ptrs, y);
}

static floe_status conv_bwd_input_compute(floe_kernel_ctx *kc, void *state) {
    conv_state *s = state;
    floe_tensor *sz = floe_kernel_input(kc, 0), *f = floe_kernel_input(kc, 1);
    floe_tensor *dy = floe_kernel_input(kc, 2), *dx = NULL;
    int64_t in[4];
    conv_geom g;
    floe_status st;

    if ((st = read_sizes(&s->p, sz, "input_sizes", in)) != FLOE_OK ||
        (st = rank4(&s->p, f, "filter")) != FLOE_OK ||
        (st = rank4(&s->p, dy, "out_backprop")) != FLOE_OK ||
        (st = conv_geometry(&s->p, in, floe_tensor_shape(f), &g)) != FLOE_OK ||
        (st = check_dy(&s->p, &g, dy)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, in, 4, &dx)) != FLOE_OK)
        return st;
    void *ptrs[3] = {floe_tensor_data(dy), floe_tensor_data(f), floe_tensor_data(dx)};
    return conv_execute(kc, s, &g, ptrs, dx);
}

static floe_status conv_bwd_filter_compute(floe_kernel_ctx *kc, void *state) {
    conv_state *s = state;
    floe_tensor *x = floe_kernel_input(kc, 0), *sz = floe_kernel_input(kc, 1);
    floe_tensor *dy = floe_kernel_input(kc, 2), *df = NULL;
    int64_t fs[4];
    conv_geom g;
    floe_status st;

    if ((st = rank4(&s->p, x, "input")) != FLOE_OK ||
        (st = read_sizes(&s->p, sz, "filter_sizes", fs)) != FLOE_OK ||
        (st = rank4(&s->p, dy, "out_backprop")) != FLOE_OK ||
        (st = conv_geometry(&s->p, floe_tensor_shape(x), fs, &g)) != FLOE_OK ||
        (st = check_dy(&s->p, &g, dy)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, fs, 4, &df)) != FLOE_OK)
        return st;
    if (g.n == 0) { /* no examples: the filter gradient is zero */
        memset(floe_tensor_data(df), 0, floe_tensor_nbytes(df));
        return FLOE_OK;
    }
    void *ptrs[3] = {floe_tensor_data(x), floe_tensor_data(dy), floe_tensor_data(df)};
    return conv_execute(kc, s, &g, ptrs, df);
}

/* ---- Shape functions ------------------------------------------------------------------ */

static floe_status shape_unknown4(floe_shape_ctx *sc) {
    floe_shape out;
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    for (int i = 0; i < 4; i++)
        out.dims[i] = -1;
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status conv_shape_common(floe_shape_ctx *sc, const char *op, int depthwise) {
    floe_shape x = floe_shape_input(sc, 0), f = floe_shape_input(sc, 1), out;
    conv_params p;
    conv_geom g;
    floe_status st;

    if ((st = conv_params_read(floe_shape_attrs(sc), op, CONV_FWD, depthwise, &p)) != FLOE_OK)
        return st;
    if ((x.ndim >= 0 && x.ndim != 4) || (f.ndim >= 0 && f.ndim != 4))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input and filter must be 4-dimensional "
                         "(got ranks %d and %d)", op, x.ndim, f.ndim);
    if (x.ndim < 0 || f.ndim < 0)
        return shape_unknown4(sc);
    for (int i = 0; i < 4; i++)
        if (x.dims[i] < 0 || f.dims[i] < 0) {
            /* Partly known: the batch and channels can still be given. */
            memset(&out, 0, sizeof(out));
            out.ndim = 4;
            for (int k = 0; k < 4; k++)
                out.dims[k] = -1;
            out.dims[0] = x.dims[0];
            if (!depthwise)
                out.dims[p.nchw ? 1 : 3] = f.dims[3];
            return floe_shape_set_output(sc, 0, &out);
        }
    if ((st = conv_geometry(&p, x.dims, f.dims, &g)) != FLOE_OK)
        return st;
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    conv_out_shape(&p, &g, out.dims);
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status conv2d_shape_fn(floe_shape_ctx *sc) {
    return conv_shape_common(sc, "Conv2D", 0);
}

static floe_status dw_shape_fn(floe_shape_ctx *sc) {
    return conv_shape_common(sc, "DepthwiseConv2dNative", 1);
}

/* Backprops: the output's shape is the value of the sizes input (input 0 or 1). */
static floe_status sizes_shape(floe_shape_ctx *sc, int which) {
    floe_tensor *v = floe_shape_input_value(sc, which);
    floe_shape out;

    if (v == NULL || floe_tensor_dtype(v) != FLOE_DTYPE_I32 || floe_tensor_num_elements(v) != 4)
        return shape_unknown4(sc);
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    for (int i = 0; i < 4; i++)
        out.dims[i] = ((const int32_t *)floe_tensor_data(v))[i];
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status bwd_input_shape_fn(floe_shape_ctx *sc) {
    return sizes_shape(sc, 0);
}

static floe_status bwd_filter_shape_fn(floe_shape_ctx *sc) {
    return sizes_shape(sc, 1);
}

/* ---- Gradients ------------------------------------------------------------------------ */

/* Copies the convolution attrs of the forward node into a new set. */
static floe_status conv_grad_attrs(const floe_attrs *fwd, floe_attrs **out) {
    static const char *const lists[] = {"strides", "dilations", "explicit_paddings"};
    static const char *const strings[] = {"padding", "data_format"};
    floe_attrs *a = NULL;
    floe_status st;

    *out = NULL;
    if ((st = floe_attrs_new(&a)) != FLOE_OK)
        return st;
    for (int i = 0; i < 3; i++) {
        const int64_t *v = NULL;
        int n = 0;
        if ((st = floe_attrs_get_int_list(fwd, lists[i], &v, &n)) != FLOE_OK ||
            (st = floe_attrs_set_int_list(a, lists[i], v, n)) != FLOE_OK)
            goto fail;
    }
    for (int i = 0; i < 2; i++) {
        const char *s = NULL;
        size_t len = 0;
        if ((st = floe_attrs_get_string(fwd, strings[i], &s, &len)) != FLOE_OK ||
            (st = floe_attrs_set_string(a, strings[i], s, len)) != FLOE_OK)
            goto fail;
    }
    *out = a;
    return FLOE_OK;
fail:
    floe_attrs_free(a);
    return st;
}

static floe_status conv_grad_common(floe_grad_ctx *gc, const char *bwd_input,
                                    const char *bwd_filter) {
    floe_output x = floe_grad_input(gc, 0), f = floe_grad_input(gc, 1);
    floe_output dy = floe_grad_upstream(gc, 0), in[3];
    floe_node *sx = NULL, *sf = NULL, *dx = NULL, *df = NULL;
    floe_attrs *a = NULL;
    floe_status st;

    if (dy.node == NULL)
        return FLOE_OK;
    if ((st = conv_grad_attrs(floe_grad_attrs(gc), &a)) != FLOE_OK)
        return st;
    if ((st = floe_grad_add_node(gc, "Shape", &x, 1, NULL, &sx)) != FLOE_OK ||
        (st = floe_grad_add_node(gc, "Shape", &f, 1, NULL, &sf)) != FLOE_OK)
        goto done;
    in[0] = (floe_output){sx, 0, 0};
    in[1] = f;
    in[2] = dy;
    if ((st = floe_grad_add_node(gc, bwd_input, in, 3, a, &dx)) != FLOE_OK)
        goto done;
    in[0] = x;
    in[1] = (floe_output){sf, 0, 0};
    if ((st = floe_grad_add_node(gc, bwd_filter, in, 3, a, &df)) != FLOE_OK)
        goto done;
    in[0] = (floe_output){dx, 0, 0};
    in[1] = (floe_output){df, 0, 0};
    if ((st = floe_grad_set_input_grad(gc, 0, in[0])) != FLOE_OK)
        goto done;
    st = floe_grad_set_input_grad(gc, 1, in[1]);
done:
    floe_attrs_free(a);
    return st;
}

static floe_status conv2d_grad(floe_grad_ctx *gc) {
    return conv_grad_common(gc, "Conv2DBackpropInput", "Conv2DBackpropFilter");
}

static floe_status dw_grad(floe_grad_ctx *gc) {
    return conv_grad_common(gc, "DepthwiseConv2dNativeBackpropInput",
                            "DepthwiseConv2dNativeBackpropFilter");
}

/* ---- Registration ----------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CONV_ATTRS                                                                         \
    "T: {f32}", "strides: list(int)", "use_cudnn_on_gpu: bool = true", "padding: string",  \
        "explicit_paddings: list(int) = []", "data_format: string = \"NHWC\"",             \
        "dilations: list(int) = [1, 1, 1, 1]"
#define DW_ATTRS                                                                           \
    "T: {f32}", "strides: list(int)", "padding: string",                                   \
        "explicit_paddings: list(int) = []", "data_format: string = \"NHWC\"",             \
        "dilations: list(int) = [1, 1, 1, 1]"

static const floe_op_def conv_ops[] = {
    {sizeof(floe_op_def), "Conv2D", S("input: T", "filter: T"), S("output: T"), S(CONV_ATTRS),
     conv2d_shape_fn, 0,
     "2-D convolution of a 4-D input with a [filter_height, filter_width, in_channels, "
     "out_channels] filter (TensorFlow's tf.nn.conv2d)."},
    {sizeof(floe_op_def), "Conv2DBackpropInput",
     S("input_sizes: i32", "filter: T", "out_backprop: T"), S("output: T"), S(CONV_ATTRS),
     bwd_input_shape_fn, 0, "The gradient of Conv2D with respect to its input."},
    {sizeof(floe_op_def), "Conv2DBackpropFilter",
     S("input: T", "filter_sizes: i32", "out_backprop: T"), S("output: T"), S(CONV_ATTRS),
     bwd_filter_shape_fn, 0, "The gradient of Conv2D with respect to its filter."},
    {sizeof(floe_op_def), "DepthwiseConv2dNative", S("input: T", "filter: T"), S("output: T"),
     S(DW_ATTRS), dw_shape_fn, 0,
     "Depthwise 2-D convolution: a [filter_height, filter_width, in_channels, "
     "channel_multiplier] filter; in_channels * channel_multiplier output channels."},
    {sizeof(floe_op_def), "DepthwiseConv2dNativeBackpropInput",
     S("input_sizes: i32", "filter: T", "out_backprop: T"), S("output: T"), S(DW_ATTRS),
     bwd_input_shape_fn, 0, "The gradient of DepthwiseConv2dNative with respect to its input."},
    {sizeof(floe_op_def), "DepthwiseConv2dNativeBackpropFilter",
     S("input: T", "filter_sizes: i32", "out_backprop: T"), S("output: T"), S(DW_ATTRS),
     bwd_filter_shape_fn, 0,
     "The gradient of DepthwiseConv2dNative with respect to its filter."},
};

#define KERNEL(op, create, compute, hm)                                                      \
    { sizeof(floe_kernel_def), op, "CPU", NULL, 0, create, compute, ops_nn__state_free, hm }

static const floe_kernel_def conv_kernels[] = {
    KERNEL("Conv2D", conv2d_create, conv_fwd_compute, NULL),
    KERNEL("Conv2DBackpropInput", conv2d_bwd_input_create, conv_bwd_input_compute,
           S("input_sizes")),
    KERNEL("Conv2DBackpropFilter", conv2d_bwd_filter_create, conv_bwd_filter_compute,
           S("filter_sizes")),
    KERNEL("DepthwiseConv2dNative", dw_create, conv_fwd_compute, NULL),
    KERNEL("DepthwiseConv2dNativeBackpropInput", dw_bwd_input_create, conv_bwd_input_compute,
           S("input_sizes")),
    KERNEL("DepthwiseConv2dNativeBackpropFilter", dw_bwd_filter_create, conv_bwd_filter_compute,
           S("filter_sizes")),
};

floe_status ops_nn__register_conv(floe_plugin *self) {
    floe_status st;
    for (size_t i = 0; i < sizeof(conv_ops) / sizeof(conv_ops[0]); i++)
        if ((st = floe_register_op(self, &conv_ops[i])) != FLOE_OK)
            return st;
    for (size_t i = 0; i < sizeof(conv_kernels) / sizeof(conv_kernels[0]); i++)
        if ((st = floe_register_kernel(self, &conv_kernels[i])) != FLOE_OK)
            return st;
    if ((st = floe_register_gradient(self, "Conv2D", conv2d_grad)) != FLOE_OK)
        return st;
    return floe_register_gradient(self, "DepthwiseConv2dNative", dw_grad);
}
