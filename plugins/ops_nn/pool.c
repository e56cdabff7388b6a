/*
 * pool.c - MaxPool, AvgPool, MaxPoolGrad and AvgPoolGrad: TensorFlow's ops, attrs and
 * shapes (ksize, strides, SAME / VALID padding, NHWC or NCHW) on oneDNN pooling
 * primitives, f32, cached per shape in the kernel state (dnnl_util.c).
 *
 * Semantics as TensorFlow's CPU kernels: SAME max pooling ignores the padded positions,
 * SAME average pooling divides by the number of real inputs in each window
 * (dnnl_pooling_avg_exclude_padding).  ksize and strides must be 1 in the batch and depth
 * dimensions (TensorFlow's depthwise max pooling is not offered).
 *
 * MaxPoolGrad recomputes the forward pass as TensorFlow does: a training-mode forward
 * primitive writes the argmax workspace (and a throwaway output) into the call's scratch
 * buffer, then the backward primitive scatters the gradient through it.  orig_output is
 * checked for shape only.  AvgPoolGrad spreads each gradient over its window.
 *
 * Gradients: MaxPool -> MaxPoolGrad(x, y, dy); AvgPool -> AvgPoolGrad(Shape(x), dy).
 *
 * Sections: parameters; primitives; kernels; shape functions; gradients; registration.
 */
#include "dnnl_util.h"

#include <stdio.h>

enum { POOL_FWD = 0, POOL_BWD = 1, POOL_MAX_GRAD = 2 };

/* ---- Parameters ------------------------------------------------------------------------ */

typedef struct pool_params {
    const char *op;
    int kind;             /* POOL_* */
    int max;              /* max pooling (else average) */
    int nchw;
    nn_padding pad;
    int64_t k[2], s[2];
} pool_params;

typedef struct pool_geom {
    int64_t n, c, h, w, oh, ow, pt, pb, pl, pr;
} pool_geom;

static floe_status pool_params_read(const floe_attrs *a, const char *op, int kind, int max,
                                    pool_params *p) {
    floe_status st;

    memset(p, 0, sizeof(*p));
    p->op = op;
    p->kind = kind;
    p->max = max;
    if ((st = ops_nn__get_format(a, op, &p->nchw)) != FLOE_OK ||
        (st = ops_nn__get_padding(a, op, 0, &p->pad)) != FLOE_OK ||
        (st = ops_nn__get_hw4(a, "ksize", op, p->nchw, 0, p->k)) != FLOE_OK ||
        (st = ops_nn__get_hw4(a, "strides", op, p->nchw, 0, p->s)) != FLOE_OK)
        return st;
    return FLOE_OK;
}

static floe_status pool_geometry(const pool_params *p, const int64_t *in, pool_geom *g) {
    floe_status st;

    memset(g, 0, sizeof(*g));
    g->n = in[0];
    g->c = in[p->nchw ? 1 : 3];
    g->h = in[p->nchw ? 2 : 1];
    g->w = in[p->nchw ? 3 : 2];
    if (g->n < 0 || g->c <= 0 || g->h <= 0 || g->w <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: input [%lld,%lld,%lld,%lld] must have non-empty spatial and "
                         "channel dimensions", p->op, (long long)in[0], (long long)in[1],
                         (long long)in[2], (long long)in[3]);
    if ((st = ops_nn__window(p->op, p->pad, g->h, p->k[0], p->s[0], 1, &g->pt, &g->pb,
                             &g->oh)) != FLOE_OK ||
        (st = ops_nn__window(p->op, p->pad, g->w, p->k[1], p->s[1], 1, &g->pl, &g->pr,
                             &g->ow)) != FLOE_OK)
        return st;
    return FLOE_OK;
}

static void pool_out_shape(const pool_params *p, const pool_geom *g, int64_t out[4]) {
    out[0] = g->n;
    out[p->nchw ? 1 : 3] = g->c;
    out[p->nchw ? 2 : 1] = g->oh;
    out[p->nchw ? 3 : 2] = g->ow;
}

/* ---- Primitives ------------------------------------------------------------------------ */

#ifdef FLOE_HAVE_DNNL

typedef struct pool_build_arg {
    const pool_params *p;
    const pool_geom *g;
} pool_build_arg;

static floe_status pool_build(void *arg, dnnl_engine_t engine, nn_entry *e) {
    const pool_params *p = ((pool_build_arg *)arg)->p;
    const pool_geom *g = ((pool_build_arg *)arg)->g;
    dnnl_memory_desc_t src, dst;
    dnnl_pooling_v2_desc_t fwd_d, bwd_d;
    dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t sd = {g->n, g->c, g->h, g->w}, dd = {g->n, g->c, g->oh, g->ow};
    dnnl_dims_t strides = {p->s[0], p->s[1]}, kernel = {p->k[0], p->k[1]}, dil = {0, 0};
    dnnl_dims_t pl = {g->pt, g->pl}, pr = {g->pb, g->pr};
    dnnl_format_tag_t act = p->nchw ? dnnl_nchw : dnnl_nhwc;
    dnnl_alg_kind_t alg = p->max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_status_t s;
    floe_status st = FLOE_OK;

    s = dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, act);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, act);
    if (s == dnnl_success)
        s = dnnl_pooling_v2_forward_desc_init(
            &fwd_d, p->kind == POOL_FWD ? dnnl_forward_inference : dnnl_forward_training, alg,
            &src, &dst, strides, kernel, dil, pl, pr);
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
    if (p->kind != POOL_FWD) {
        s = dnnl_pooling_v2_backward_desc_init(&bwd_d, alg, &src, &dst, strides, kernel, dil, pl,
                                               pr);
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&bwd_pd, &bwd_d, attr, engine, fwd_pd);
        if (s != dnnl_success) {
            bwd_pd = NULL;
            goto fail;
        }
    }
    dnnl_primitive_attr_destroy(attr);
    attr = NULL;
    if (p->kind == POOL_FWD) {
        static const int kinds[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        st = ops_nn__prim_from_pd(fwd_pd, 2, kinds, p->op, &e->prims[0]);
        e->nprims = 1;
        e->slot_bytes = ops_nn__align64(e->prims[0].scratch_size);
    } else if (p->kind == POOL_BWD) {
        static const int kinds[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        dnnl_primitive_desc_destroy(fwd_pd);
        st = ops_nn__prim_from_pd(bwd_pd, 2, kinds, p->op, &e->prims[0]);
        e->nprims = 1;
        e->slot_bytes = ops_nn__align64(e->prims[0].scratch_size);
    } else {
        static const int fk[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
        static const int bk[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC};
        size_t scratch, dst_bytes, ws_bytes;
        e->nprims = 2;
        st = ops_nn__prim_from_pd(fwd_pd, 3, fk, p->op, &e->prims[0]);
        if (st != FLOE_OK) {
            dnnl_primitive_desc_destroy(bwd_pd);
            return st;
        }
        st = ops_nn__prim_from_pd(bwd_pd, 3, bk, p->op, &e->prims[1]);
        /* slot: [scratchpad (the larger of the two) | forward output | workspace] */
        scratch = e->prims[0].scratch_size > e->prims[1].scratch_size ? e->prims[0].scratch_size
                                                                       : e->prims[1].scratch_size;
        dst_bytes = dnnl_memory_desc_get_size(&e->prims[0].md[1]);
        ws_bytes = dnnl_memory_desc_get_size(&e->prims[0].md[2]);
        e->info[0] = (int64_t)ops_nn__align64(scratch);
        e->info[1] = e->info[0] + (int64_t)ops_nn__align64(dst_bytes);
        e->slot_bytes = (size_t)e->info[1] + ops_nn__align64(ws_bytes);
    }
    return st;

fail:
    if (fwd_pd != NULL)
        dnnl_primitive_desc_destroy(fwd_pd);
    if (attr != NULL)
        dnnl_primitive_attr_destroy(attr);
    return ops_nn__dnnl_fail(s, p->op, "creating the pooling primitive");
}

/* One entry's primitives on images of one part: @a input or gradient, @b output
 * (MaxPoolGrad: @a orig_input, @b grad, @c output). */
static floe_status pool_entry_run(nn_entry *e, const pool_params *p, void *a, void *b, void *c,
                                  char *scratch) {
    floe_status st;
    if (p->kind != POOL_MAX_GRAD) {
        void *ptrs[2] = {a, b};
        return ops_nn__prim_run(&e->prims[0], ptrs, scratch, p->op);
    }
    void *fwd[3] = {a, scratch + e->info[0], scratch + e->info[1]};
    void *bwd[3] = {b, scratch + e->info[1], c};
    if ((st = ops_nn__prim_run(&e->prims[0], fwd, scratch, p->op)) != FLOE_OK)
        return st;
    return ops_nn__prim_run(&e->prims[1], bwd, scratch, p->op);
}

/* One call split over the batch (nn_split). */
typedef struct pool_job {
    nn_split sp;
    nn_cache *cache;
    const pool_params *p;
    const pool_geom *g;
    float *a, *b, *c;
} pool_job;

static floe_status pool_part(void *arg, int part) {
    const pool_job *j = arg;
    const pool_geom *g = j->g;
    int64_t n0, n1, in_img = g->c * g->h * g->w, out_img = g->c * g->oh * g->ow;

    ops_nn__batch_part(g->n, j->sp.parts, part, &n0, &n1);
    nn_entry *e = ops_nn__split_entry(&j->sp, part);
    if (j->p->kind == POOL_FWD)
        return pool_entry_run(e, j->p, j->a + n0 * in_img, j->b + n0 * out_img, NULL,
                              j->sp.scratch[part]);
    if (j->p->kind == POOL_BWD)
        return pool_entry_run(e, j->p, j->a + n0 * out_img, j->b + n0 * in_img, NULL,
                              j->sp.scratch[part]);
    return pool_entry_run(e, j->p, j->a + n0 * in_img, j->b + n0 * out_img, j->c + n0 * in_img,
                          j->sp.scratch[part]);
}

/* The entry for @n images of the job @arg's problem (an nn_entry_get_fn). */
static floe_status pool_entry_get(void *arg, int64_t n, nn_entry **out) {
    const pool_job *j = arg;
    const pool_params *p = j->p;
    const pool_geom *g = j->g;
    pool_geom sub = *g;
    sub.n = n;
    int64_t key[17] = {p->kind, p->max, p->nchw, n, g->c, g->h, g->w, p->k[0], p->k[1],
                       p->s[0], p->s[1], g->pt, g->pb, g->pl, g->pr, g->oh, g->ow};
    pool_build_arg build_arg = {p, &sub};
    return ops_nn__cache_get(j->cache, key, 17, pool_build, &build_arg, p->op, out);
}

/* Runs the kernel's primitives (see pool_entry_run for @a, @b, @c), the batch split over
 * @pool (see dnnl_util.c). */
static floe_status pool_run(nn_cache *cache, const pool_params *p, const pool_geom *g,
                            floe_threadpool *pool, void *a, void *b, void *c) {
    int64_t work = g->n * g->c * (g->h * g->w + g->oh * g->ow * p->k[0] * p->k[1]);
    pool_job j;
    int saved = ops_nn__omp_begin();
    floe_status st;

    j.cache = cache;
    j.p = p;
    j.g = g;
    j.a = a, j.b = b, j.c = c;
    if ((st = ops_nn__split_begin(&j.sp, pool, g->n, work, pool_entry_get, &j)) != FLOE_OK ||
        (st = ops_nn__split_claim(&j.sp)) != FLOE_OK)
        goto done;
    st = ops_nn__run_parts(pool, j.sp.parts, pool_part, &j);
    if (st != FLOE_OK)
        st = floe_fail(st, "%s: running the pooling primitive failed", p->op);
done:
    ops_nn__split_end(&j.sp);
    ops_nn__omp_end(saved);
    return st;
}

#endif /* FLOE_HAVE_DNNL */

/* ---- Kernels ------------------------------------------------------------------------------ */

typedef struct pool_state {
#ifdef FLOE_HAVE_DNNL
    nn_cache cache; /* first: ops_nn__state_new / ops_nn__state_free */
#endif
    pool_params p;
} pool_state;

static floe_status pool_create_common(floe_kernel_ctx *kc, const char *op, int kind, int max,
                                      void **state) {
    pool_state *s;
    floe_status st;

    *state = NULL;
    if ((s = ops_nn__state_new(sizeof(*s), op)) == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    if ((st = pool_params_read(floe_kernel_attrs(kc), op, kind, max, &s->p)) != FLOE_OK) {
        ops_nn__state_free(s);
        return st;
    }
    *state = s;
    return FLOE_OK;
}

#define POOL_CREATE(fn, name, kind, max)                                                  \
    static floe_status fn(floe_kernel_ctx *kc, void **state) {                            \
        return pool_create_common(kc, name, kind, max, state);                            \
    }
POOL_CREATE(max_pool_create, "MaxPool", POOL_FWD, 1)
POOL_CREATE(avg_pool_create, "AvgPool", POOL_FWD, 0)
POOL_CREATE(max_pool_grad_create, "MaxPoolGrad", POOL_MAX_GRAD, 1)
POOL_CREATE(avg_pool_grad_create, "AvgPoolGrad", POOL_BWD, 0)

static floe_status pool_rank4(const pool_params *p, const floe_tensor *t, const char *what) {
    return ops_nn__rank4_f32(p->op, t, what);
}

/* Checks that @t has the pooled shape of @g. */
static floe_status pool_check_out(const pool_params *p, const pool_geom *g, const floe_tensor *t,
                                  const char *what) {
    int64_t want[4];
    pool_out_shape(p, g, want);
    for (int i = 0; i < 4; i++)
        if (floe_tensor_dim(t, i) != want[i])
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: %s has shape [%lld,%lld,%lld,%lld], the pooling gives "
                             "[%lld,%lld,%lld,%lld]", p->op, what,
                             (long long)floe_tensor_dim(t, 0), (long long)floe_tensor_dim(t, 1),
                             (long long)floe_tensor_dim(t, 2), (long long)floe_tensor_dim(t, 3),
                             (long long)want[0], (long long)want[1], (long long)want[2],
                             (long long)want[3]);
    return FLOE_OK;
}

static floe_status pool_execute(floe_kernel_ctx *kc, pool_state *s, const pool_geom *g, void *a,
                                void *b, void *c) {
    if (g->n == 0)
        return FLOE_OK;
#ifdef FLOE_HAVE_DNNL
    return pool_run(&s->cache, &s->p, g, floe_kernel_threadpool(kc), a, b, c);
#else
    (void)kc, (void)a, (void)b, (void)c;
    return floe_fail(FLOE_UNIMPLEMENTED, "%s: this build has no oneDNN", s->p.op);
#endif
}

static floe_status pool_fwd_compute(floe_kernel_ctx *kc, void *state) {
    pool_state *s = state;
    floe_tensor *x = floe_kernel_input(kc, 0), *y = NULL;
    int64_t shape[4];
    pool_geom g;
    floe_status st;

    if ((st = pool_rank4(&s->p, x, "input")) != FLOE_OK ||
        (st = pool_geometry(&s->p, floe_tensor_shape(x), &g)) != FLOE_OK)
        return st;
    pool_out_shape(&s->p, &g, shape);
    if ((st = floe_kernel_alloc_output(kc, 0, shape, 4, &y)) != FLOE_OK)
        return st;
    return pool_execute(kc, s, &g, floe_tensor_data(x), floe_tensor_data(y), NULL);
}

static floe_status max_pool_grad_compute(floe_kernel_ctx *kc, void *state) {
    pool_state *s = state;
    floe_tensor *x = floe_kernel_input(kc, 0), *y = floe_kernel_input(kc, 1);
    floe_tensor *dy = floe_kernel_input(kc, 2), *dx = NULL;
    pool_geom g;
    floe_status st;

    if ((st = pool_rank4(&s->p, x, "orig_input")) != FLOE_OK ||
        (st = pool_rank4(&s->p, y, "orig_output")) != FLOE_OK ||
        (st = pool_rank4(&s->p, dy, "grad")) != FLOE_OK ||
        (st = pool_geometry(&s->p, floe_tensor_shape(x), &g)) != FLOE_OK ||
        (st = pool_check_out(&s->p, &g, y, "orig_output")) != FLOE_OK ||
        (st = pool_check_out(&s->p, &g, dy, "grad")) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &dx)) != FLOE_OK)
        return st;
    return pool_execute(kc, s, &g, floe_tensor_data(x), floe_tensor_data(dy),
                        floe_tensor_data(dx));
}

static floe_status avg_pool_grad_compute(floe_kernel_ctx *kc, void *state) {
    pool_state *s = state;
    floe_tensor *sz = floe_kernel_input(kc, 0), *dy = floe_kernel_input(kc, 1), *dx = NULL;
    const int32_t *v = floe_tensor_data(sz);
    int64_t in[4];
    pool_geom g;
    floe_status st;

    if (floe_tensor_dtype(sz) != FLOE_DTYPE_I32 || floe_tensor_ndim(sz) != 1 ||
        floe_tensor_dim(sz, 0) != 4 || v == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "AvgPoolGrad: orig_input_shape must be an i32 vector of 4 values");
    for (int i = 0; i < 4; i++)
        in[i] = v[i];
    if ((st = pool_rank4(&s->p, dy, "grad")) != FLOE_OK ||
        (st = pool_geometry(&s->p, in, &g)) != FLOE_OK ||
        (st = pool_check_out(&s->p, &g, dy, "grad")) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, in, 4, &dx)) != FLOE_OK)
        return st;
    return pool_execute(kc, s, &g, floe_tensor_data(dy), floe_tensor_data(dx), NULL);
}

/* ---- Shape functions -------------------------------------------------------------------- */

static floe_status set_unknown4(floe_shape_ctx *sc) {
    floe_shape out;
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    for (int i = 0; i < 4; i++)
        out.dims[i] = -1;
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status pool_shape_common(floe_shape_ctx *sc, const char *op, int max) {
    floe_shape x = floe_shape_input(sc, 0), out;
    pool_params p;
    pool_geom g;
    floe_status st;

    if ((st = pool_params_read(floe_shape_attrs(sc), op, POOL_FWD, max, &p)) != FLOE_OK)
        return st;
    if (x.ndim >= 0 && x.ndim != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input must be 4-dimensional, got rank %d",
                         op, x.ndim);
    if (x.ndim < 0)
        return set_unknown4(sc);
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    for (int i = 0; i < 4; i++)
        if (x.dims[i] < 0) {
            for (int k = 0; k < 4; k++)
                out.dims[k] = -1;
            out.dims[0] = x.dims[0];
            out.dims[p.nchw ? 1 : 3] = x.dims[p.nchw ? 1 : 3];
            return floe_shape_set_output(sc, 0, &out);
        }
    if ((st = pool_geometry(&p, x.dims, &g)) != FLOE_OK)
        return st;
    pool_out_shape(&p, &g, out.dims);
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status max_pool_shape_fn(floe_shape_ctx *sc) {
    return pool_shape_common(sc, "MaxPool", 1);
}

static floe_status avg_pool_shape_fn(floe_shape_ctx *sc) {
    return pool_shape_common(sc, "AvgPool", 0);
}

static floe_status max_pool_grad_shape_fn(floe_shape_ctx *sc) {
    floe_shape x = floe_shape_input(sc, 0);
    if (x.ndim < 0)
        return set_unknown4(sc);
    return floe_shape_set_output(sc, 0, &x);
}

static floe_status avg_pool_grad_shape_fn(floe_shape_ctx *sc) {
    floe_tensor *v = floe_shape_input_value(sc, 0);
    floe_shape out;

    if (v == NULL || floe_tensor_dtype(v) != FLOE_DTYPE_I32 || floe_tensor_num_elements(v) != 4)
        return set_unknown4(sc);
    memset(&out, 0, sizeof(out));
    out.ndim = 4;
    for (int i = 0; i < 4; i++)
        out.dims[i] = ((const int32_t *)floe_tensor_data(v))[i];
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- Gradients --------------------------------------------------------------------------- */

static floe_status pool_grad_attrs(const floe_attrs *fwd, floe_attrs **out) {
    static const char *const lists[] = {"ksize", "strides"};
    static const char *const strings[] = {"padding", "data_format"};
    floe_attrs *a = NULL;
    floe_status st;

    *out = NULL;
    if ((st = floe_attrs_new(&a)) != FLOE_OK)
        return st;
    for (int i = 0; i < 2; i++) {
        const int64_t *v = NULL;
        const char *s = NULL;
        size_t len = 0;
        int n = 0;
        if ((st = floe_attrs_get_int_list(fwd, lists[i], &v, &n)) != FLOE_OK ||
            (st = floe_attrs_set_int_list(a, lists[i], v, n)) != FLOE_OK ||
            (st = floe_attrs_get_string(fwd, strings[i], &s, &len)) != FLOE_OK ||
            (st = floe_attrs_set_string(a, strings[i], s, len)) != FLOE_OK) {
            floe_attrs_free(a);
            return st;
        }
    }
    *out = a;
    return FLOE_OK;
}

static floe_status pool_grad_common(floe_grad_ctx *gc, int max) {
    floe_output x = floe_grad_input(gc, 0), dy = floe_grad_upstream(gc, 0), in[3], dx;
    floe_node *n = NULL, *shape = NULL;
    floe_attrs *a = NULL;
    floe_status st;

    if (dy.node == NULL)
        return FLOE_OK;
    if ((st = pool_grad_attrs(floe_grad_attrs(gc), &a)) != FLOE_OK)
        return st;
    if (max) {
        in[0] = x;
        in[1] = floe_grad_output(gc, 0);
        in[2] = dy;
        st = floe_grad_add_node(gc, "MaxPoolGrad", in, 3, a, &n);
    } else if ((st = floe_grad_add_node(gc, "Shape", &x, 1, NULL, &shape)) == FLOE_OK) {
        in[0] = (floe_output){shape, 0, 0};
        in[1] = dy;
        st = floe_grad_add_node(gc, "AvgPoolGrad", in, 2, a, &n);
    }
    floe_attrs_free(a);
    if (st != FLOE_OK)
        return st;
    dx = (floe_output){n, 0, 0};
    return floe_grad_set_input_grad(gc, 0, dx);
}

static floe_status max_pool_grad(floe_grad_ctx *gc) {
    return pool_grad_common(gc, 1);
}

static floe_status avg_pool_grad(floe_grad_ctx *gc) {
    return pool_grad_common(gc, 0);
}

/* ---- Registration ------------------------------------------------------------------------ */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define POOL_ATTRS                                                                         \
    "T: {f32}", "ksize: list(int)", "strides: list(int)", "padding: string",               \
        "data_format: string = \"NHWC\""

static const floe_op_def pool_ops[] = {
    {sizeof(floe_op_def), "MaxPool", S("input: T"), S("output: T"), S(POOL_ATTRS),
     max_pool_shape_fn, 0, "Max pooling over ksize windows moved by strides."},
    {sizeof(floe_op_def), "AvgPool", S("value: T"), S("output: T"), S(POOL_ATTRS),
     avg_pool_shape_fn, 0,
     "Average pooling; SAME windows average only the input positions they cover."},
    {sizeof(floe_op_def), "MaxPoolGrad", S("orig_input: T", "orig_output: T", "grad: T"),
     S("output: T"), S(POOL_ATTRS), max_pool_grad_shape_fn, 0,
     "The gradient of MaxPool: grad routed to each window's maximum."},
    {sizeof(floe_op_def), "AvgPoolGrad", S("orig_input_shape: i32", "grad: T"), S("output: T"),
     S(POOL_ATTRS), avg_pool_grad_shape_fn, 0,
     "The gradient of AvgPool: grad spread evenly over each window."},
};

#define KERNEL(op, create, compute, hm)                                                      \
    { sizeof(floe_kernel_def), op, "CPU", NULL, 0, create, compute, ops_nn__state_free, hm }

static const floe_kernel_def pool_kernels[] = {
    KERNEL("MaxPool", max_pool_create, pool_fwd_compute, NULL),
    KERNEL("AvgPool", avg_pool_create, pool_fwd_compute, NULL),
    KERNEL("MaxPoolGrad", max_pool_grad_create, max_pool_grad_compute, NULL),
    KERNEL("AvgPoolGrad", avg_pool_grad_create, avg_pool_grad_compute, S("orig_input_shape")),
};

floe_status ops_nn__register_pool(floe_plugin *self) {
    floe_status st;
    for (size_t i = 0; i < sizeof(pool_ops) / sizeof(pool_ops[0]); i++)
        if ((st = floe_register_op(self, &pool_ops[i])) != FLOE_OK)
            return st;
    for (size_t i = 0; i < sizeof(pool_kernels) / sizeof(pool_kernels[0]); i++)
        if ((st = floe_register_kernel(self, &pool_kernels[i])) != FLOE_OK)
            return st;
    if ((st = floe_register_gradient(self, "MaxPool", max_pool_grad)) != FLOE_OK)
        return st;
    return floe_register_gradient(self, "AvgPool", avg_pool_grad);
}
