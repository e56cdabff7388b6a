/*
 * batchnorm.c - FusedBatchNormV3 (training and inference) and FusedBatchNormGradV3 with
 * TensorFlow's inputs, outputs, attrs and CPU semantics, in portable C, f32.
 *
 * Why not oneDNN: the work is per-channel sums over the other dimensions, two or three
 * passes over memory-bound data that C vectorises well in both layouts (the channel
 * loop is innermost and contiguous for NHWC, the spatial loop for NCHW); oneDNN's
 * primitive would add a stats layout of its own, a variance convention to convert
 * (TensorFlow reports the unbiased batch variance and blends the running averages) and
 * per-shape primitive creation, for no saving in passes.  Channel blocks are spread over
 * Floe's pool; sums are accumulated in double so long reductions (N*H*W in the
 * hundreds of thousands) keep float accuracy.
 *
 * Outputs of FusedBatchNormV3 as TensorFlow's CPU kernel: y; batch_mean and
 * batch_variance (training: the batch mean and the unbiased batch variance, blended
 * with the mean and variance inputs when exponential_avg_factor != 1; inference: the
 * inputs); reserve_space_1/2 = the mean and biased variance used to normalise (read by
 * the gradient); reserve_space_3 empty.  FusedBatchNormGradV3 returns x_backprop,
 * scale_backprop, offset_backprop and two empty reserve spaces.
 *
 * Sections: geometry and validation; the channel loops; kernels; shape functions;
 * gradient; registration.
 */
#include "ops_nn-impl.h"
#include "dnnl_util.h"

#include <math.h>
#include <stdio.h>

/* Channels per task of the channel-parallel loops. */
#define BN_CHANNEL_BLOCK 16

/* ---- Geometry and validation --------------------------------------------------------- */

/* x viewed as [outer, C, inner]: NHWC is [N*H*W, C, 1], NCHW is [N, C, H*W]. */
typedef struct bn_geom {
    int64_t outer, c, inner;
} bn_geom;

static floe_status bn_geometry(const char *op, const floe_tensor *x, int nchw, bn_geom *g) {
    memset(g, 0, sizeof(*g));
    if (floe_tensor_ndim(x) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x must be 4-dimensional, got rank %d", op,
                         floe_tensor_ndim(x));
    if (floe_tensor_dtype(x) != FLOE_DTYPE_F32)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: x is %s; only f32 is supported", op,
                         floe_dtype_name(floe_tensor_dtype(x)));
    for (int i = 0; i < 4; i++)
        if (floe_tensor_dim(x, i) == 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x [%lld,%lld,%lld,%lld] is empty", op,
                             (long long)floe_tensor_dim(x, 0), (long long)floe_tensor_dim(x, 1),
                             (long long)floe_tensor_dim(x, 2), (long long)floe_tensor_dim(x, 3));
    if (nchw) {
        g->outer = floe_tensor_dim(x, 0);
        g->c = floe_tensor_dim(x, 1);
        g->inner = floe_tensor_dim(x, 2) * floe_tensor_dim(x, 3);
    } else {
        g->outer = floe_tensor_dim(x, 0) * floe_tensor_dim(x, 1) * floe_tensor_dim(x, 2);
        g->c = floe_tensor_dim(x, 3);
        g->inner = 1;
    }
    return FLOE_OK;
}

/* A per-channel vector input of @c f32 values. */
static floe_status bn_vector(const char *op, const floe_tensor *t, const char *what, int64_t c) {
    if (floe_tensor_dtype(t) != FLOE_DTYPE_F32 || floe_tensor_ndim(t) != 1 ||
        floe_tensor_dim(t, 0) != c)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: %s must be an f32 vector of %lld values (the depth of x), got rank "
                         "%d with %lld elements", op, what, (long long)c, floe_tensor_ndim(t),
                         (long long)floe_tensor_num_elements(t));
    return FLOE_OK;
}

typedef struct bn_attrs {
    float epsilon, factor;
    int nchw, training;
} bn_attrs;

static floe_status bn_attrs_read(const floe_attrs *a, const char *op, int has_factor,
                                 bn_attrs *b) {
    floe_status st;

    memset(b, 0, sizeof(*b));
    b->factor = 1.0f;
    if ((st = floe_attrs_get_float(a, "epsilon", &b->epsilon)) != FLOE_OK ||
        (has_factor && (st = floe_attrs_get_float(a, "exponential_avg_factor", &b->factor)) !=
                           FLOE_OK) ||
        (st = floe_attrs_get_bool(a, "is_training", &b->training)) != FLOE_OK ||
        (st = ops_nn__get_format(a, op, &b->nchw)) != FLOE_OK)
        return st;
    if (!(b->epsilon >= 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: epsilon must be >= 0, got %g", op,
                         (double)b->epsilon);
    return FLOE_OK;
}

/* ---- The channel loops ---------------------------------------------------------------- */

typedef struct bn_job {
    bn_geom g;
    const float *x, *dy;
    float *y, *dx;
    /* per channel */
    double *sum, *sum2;          /* statistics pass: sums of x (or dy) and of squares */
    const float *mean, *scale;   /* normalisation: mean and the factor a = scale / std */
    const float *a, *b;          /* y = x * a + b */
    const float *inv;            /* 1 / std */
    const float *k1, *k2;        /* dx = a * (dy - k1 - (x - mean) * k2) */
    int mode;
} bn_job;

enum { BN_SUM, BN_VAR, BN_APPLY, BN_GRAD_SUMS, BN_GRAD_DX, BN_GRAD_DX_INFER };

/* Channels [c0, c1) of one pass. */
static void bn_pass(bn_job *j, int64_t c0, int64_t c1) {
    const int64_t C = j->g.c, inner = j->g.inner;
    for (int64_t c = c0; c < c1; c++) {
        if (j->mode == BN_SUM || j->mode == BN_VAR || j->mode == BN_GRAD_SUMS) {
            j->sum[c] = 0;
            j->sum2[c] = 0;
        }
    }
    for (int64_t o = 0; o < j->g.outer; o++) {
        if (inner == 1) {
            const float *restrict x = j->x + o * C;
            const float *restrict dy = j->dy != NULL ? j->dy + o * C : NULL;
            switch (j->mode) {
            case BN_SUM:
                for (int64_t c = c0; c < c1; c++)
                    j->sum[c] += x[c];
                break;
            case BN_VAR:
                for (int64_t c = c0; c < c1; c++) {
                    double d = (double)x[c] - j->mean[c];
                    j->sum2[c] += d * d;
                }
                break;
            case BN_APPLY: {
                float *restrict y = j->y + o * C;
                for (int64_t c = c0; c < c1; c++)
                    y[c] = x[c] * j->a[c] + j->b[c];
                break;
            }
            case BN_GRAD_SUMS:
                for (int64_t c = c0; c < c1; c++) {
                    j->sum[c] += dy[c];
                    j->sum2[c] += (double)dy[c] * ((x[c] - j->mean[c]) * j->inv[c]);
                }
                break;
            case BN_GRAD_DX: {
                float *restrict dx = j->dx + o * C;
                for (int64_t c = c0; c < c1; c++)
                    dx[c] = j->a[c] * (dy[c] - j->k1[c] - (x[c] - j->mean[c]) * j->k2[c]);
                break;
            }
            default: { /* BN_GRAD_DX_INFER */
                float *restrict dx = j->dx + o * C;
                for (int64_t c = c0; c < c1; c++)
                    dx[c] = j->a[c] * dy[c];
                break;
            }
            }
            continue;
        }
        for (int64_t c = c0; c < c1; c++) {
            const float *restrict x = j->x + (o * C + c) * inner;
            const float *restrict dy = j->dy != NULL ? j->dy + (o * C + c) * inner : NULL;
            float *restrict out = j->mode == BN_APPLY ? j->y + (o * C + c) * inner
                                  : j->dx != NULL     ? j->dx + (o * C + c) * inner
                                                      : NULL;
            double s = 0, s2 = 0;
            const float m = j->mean != NULL ? j->mean[c] : 0;
            switch (j->mode) {
            case BN_SUM:
                for (int64_t i = 0; i < inner; i++)
                    s += x[i];
                break;
            case BN_VAR:
                for (int64_t i = 0; i < inner; i++) {
                    double d = (double)x[i] - m;
                    s2 += d * d;
                }
                break;
            case BN_APPLY:
                for (int64_t i = 0; i < inner; i++)
                    out[i] = x[i] * j->a[c] + j->b[c];
                break;
            case BN_GRAD_SUMS:
                for (int64_t i = 0; i < inner; i++) {
                    s += dy[i];
                    s2 += (double)dy[i] * ((x[i] - m) * j->inv[c]);
                }
                break;
            case BN_GRAD_DX:
                for (int64_t i = 0; i < inner; i++)
                    out[i] = j->a[c] * (dy[i] - j->k1[c] - (x[i] - m) * j->k2[c]);
                break;
            default:
                for (int64_t i = 0; i < inner; i++)
                    out[i] = j->a[c] * dy[i];
                break;
            }
            j->sum[c] += s;
            j->sum2[c] += s2;
        }
    }
}

static void bn_task(void *arg, int64_t b0, int64_t b1) {
    bn_job *j = arg;
    int64_t c0 = b0 * BN_CHANNEL_BLOCK, c1 = b1 * BN_CHANNEL_BLOCK;
    bn_pass(j, c0, c1 < j->g.c ? c1 : j->g.c);
}

static void bn_run(floe_threadpool *pool, bn_job *j, int mode) {
    int64_t blocks = (j->g.c + BN_CHANNEL_BLOCK - 1) / BN_CHANNEL_BLOCK;
    j->mode = mode;
    if (pool != NULL && blocks > 1 && j->g.outer * j->g.c * j->g.inner >= 32768)
        floe_parallel_for(pool, blocks, 1, bn_task, j);
    else
        bn_task(j, 0, blocks);
}

/* ---- Kernels ------------------------------------------------------------------------------ */

static floe_status bn_create(floe_kernel_ctx *kc, void **state) {
    bn_attrs *b = floe_alloc(sizeof(*b), 0);
    floe_status st;

    *state = NULL;
    if (b == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "FusedBatchNormV3: out of memory");
    if ((st = bn_attrs_read(floe_kernel_attrs(kc), "FusedBatchNormV3", 1, b)) != FLOE_OK) {
        floe_free(b);
        return st;
    }
    *state = b;
    return FLOE_OK;
}

static floe_status bn_grad_create(floe_kernel_ctx *kc, void **state) {
    bn_attrs *b = floe_alloc(sizeof(*b), 0);
    floe_status st;

    *state = NULL;
    if (b == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "FusedBatchNormGradV3: out of memory");
    if ((st = bn_attrs_read(floe_kernel_attrs(kc), "FusedBatchNormGradV3", 0, b)) != FLOE_OK) {
        floe_free(b);
        return st;
    }
    *state = b;
    return FLOE_OK;
}

static void bn_destroy(void *state) {
    floe_free(state);
}

/* Allocates the per-channel outputs @first..@last of @kc as [c] and an empty one. */
static floe_status bn_alloc_vectors(floe_kernel_ctx *kc, int first, int last, int64_t c,
                                    float **out) {
    floe_tensor *t = NULL;
    floe_status st;
    for (int i = first; i <= last; i++) {
        if ((st = floe_kernel_alloc_output(kc, i, &c, 1, &t)) != FLOE_OK)
            return st;
        out[i - first] = floe_tensor_data(t);
    }
    return FLOE_OK;
}

static floe_status bn_alloc_empty(floe_kernel_ctx *kc, int i) {
    int64_t zero = 0;
    floe_tensor *t = NULL;
    return floe_kernel_alloc_output(kc, i, &zero, 1, &t);
}

/* Scratch of @n floats and 2 * @c doubles; NULL with a message when out of memory. */
static double *bn_scratch(const char *op, int64_t c, float **f, int nf) {
    size_t bytes = (size_t)c * (2 * sizeof(double) + (size_t)nf * sizeof(float));
    double *d = floe_alloc(bytes, 64);
    if (d == NULL) {
        floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory for %zu bytes", op, bytes);
        return NULL;
    }
    *f = (float *)(d + 2 * c);
    return d;
}

static floe_status bn_compute(floe_kernel_ctx *kc, void *state) {
    const bn_attrs *b = state;
    const char *op = "FusedBatchNormV3";
    floe_tensor *x = floe_kernel_input(kc, 0), *scale = floe_kernel_input(kc, 1);
    floe_tensor *offset = floe_kernel_input(kc, 2), *mean_in = floe_kernel_input(kc, 3);
    floe_tensor *var_in = floe_kernel_input(kc, 4), *y = NULL;
    int use_running = !b->training || b->factor != 1.0f;
    float *vec[4], *fs;
    double *ds;
    bn_job j;
    bn_geom g;
    floe_status st;

    if ((st = bn_geometry(op, x, b->nchw, &g)) != FLOE_OK ||
        (st = bn_vector(op, scale, "scale", g.c)) != FLOE_OK ||
        (st = bn_vector(op, offset, "offset", g.c)) != FLOE_OK)
        return st;
    if (use_running && ((st = bn_vector(op, mean_in, "mean", g.c)) != FLOE_OK ||
                        (st = bn_vector(op, var_in, "variance", g.c)) != FLOE_OK))
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &y)) != FLOE_OK ||
        (st = bn_alloc_vectors(kc, 1, 4, g.c, vec)) != FLOE_OK || (st = bn_alloc_empty(kc, 5)) != FLOE_OK)
        return st;
    /* fs: mean, var (biased), a, b as floats */
    if ((ds = bn_scratch(op, g.c, &fs, 4)) == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    float *mean = fs, *var = fs + g.c, *a = fs + 2 * g.c, *sh = fs + 3 * g.c;
    const float *sc = floe_tensor_data(scale), *of = floe_tensor_data(offset);
    const float *rm = use_running ? floe_tensor_data(mean_in) : NULL;
    const float *rv = use_running ? floe_tensor_data(var_in) : NULL;
    floe_threadpool *pool = floe_kernel_threadpool(kc);
    double count = (double)(g.outer * g.inner);

    memset(&j, 0, sizeof(j));
    j.g = g;
    j.x = floe_tensor_data(x);
    j.y = floe_tensor_data(y);
    j.sum = ds;
    j.sum2 = ds + g.c;
    if (b->training) {
        bn_run(pool, &j, BN_SUM);
        for (int64_t c = 0; c < g.c; c++)
            mean[c] = (float)(j.sum[c] / count);
        j.mean = mean;
        bn_run(pool, &j, BN_VAR);
        for (int64_t c = 0; c < g.c; c++)
            var[c] = (float)(j.sum2[c] / count);
    } else {
        memcpy(mean, rm, (size_t)g.c * sizeof(float));
        memcpy(var, rv, (size_t)g.c * sizeof(float));
    }
    for (int64_t c = 0; c < g.c; c++) {
        a[c] = sc[c] / sqrtf(var[c] + b->epsilon);
        sh[c] = of[c] - mean[c] * a[c];
    }
    j.a = a;
    j.b = sh;
    bn_run(pool, &j, BN_APPLY);
    for (int64_t c = 0; c < g.c; c++) {
        if (b->training) {
            float unbiased = count > 1 ? (float)(var[c] * (count / (count - 1))) : var[c];
            float f = b->factor;
            vec[0][c] = f == 1.0f ? mean[c] : (1 - f) * rm[c] + f * mean[c];
            vec[1][c] = f == 1.0f ? unbiased : (1 - f) * rv[c] + f * unbiased;
        } else {
            vec[0][c] = mean[c];
            vec[1][c] = var[c];
        }
        vec[2][c] = mean[c];
        vec[3][c] = var[c];
    }
    floe_free(ds);
    return FLOE_OK;
}

static floe_status bn_grad_compute(floe_kernel_ctx *kc, void *state) {
    const bn_attrs *b = state;
    const char *op = "FusedBatchNormGradV3";
    floe_tensor *dy = floe_kernel_input(kc, 0), *x = floe_kernel_input(kc, 1);
    floe_tensor *scale = floe_kernel_input(kc, 2), *rs1 = floe_kernel_input(kc, 3);
    floe_tensor *rs2 = floe_kernel_input(kc, 4), *dx = NULL;
    float *vec[2], *fs;
    double *ds;
    bn_job j;
    bn_geom g;
    floe_status st;

    if ((st = bn_geometry(op, x, b->nchw, &g)) != FLOE_OK ||
        (st = bn_vector(op, scale, "scale", g.c)) != FLOE_OK ||
        (st = bn_vector(op, rs1, "reserve_space_1 (mean)", g.c)) != FLOE_OK ||
        (st = bn_vector(op, rs2, "reserve_space_2 (variance)", g.c)) != FLOE_OK)
        return st;
    if (floe_tensor_dtype(dy) != FLOE_DTYPE_F32 || floe_tensor_ndim(dy) != 4 ||
        memcmp(floe_tensor_shape(dy), floe_tensor_shape(x), 4 * sizeof(int64_t)) != 0)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: y_backprop must have x's shape [%lld,%lld,%lld,%lld]", op,
                         (long long)floe_tensor_dim(x, 0), (long long)floe_tensor_dim(x, 1),
                         (long long)floe_tensor_dim(x, 2), (long long)floe_tensor_dim(x, 3));
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &dx)) != FLOE_OK ||
        (st = bn_alloc_vectors(kc, 1, 2, g.c, vec)) != FLOE_OK ||
        (st = bn_alloc_empty(kc, 3)) != FLOE_OK || (st = bn_alloc_empty(kc, 4)) != FLOE_OK)
        return st;
    if ((ds = bn_scratch(op, g.c, &fs, 4)) == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    float *inv = fs, *a = fs + g.c, *k1 = fs + 2 * g.c, *k2 = fs + 3 * g.c;
    const float *sc = floe_tensor_data(scale), *var = floe_tensor_data(rs2);
    floe_threadpool *pool = floe_kernel_threadpool(kc);
    double count = (double)(g.outer * g.inner);

    for (int64_t c = 0; c < g.c; c++) {
        inv[c] = 1.0f / sqrtf(var[c] + b->epsilon);
        a[c] = sc[c] * inv[c];
    }
    memset(&j, 0, sizeof(j));
    j.g = g;
    j.x = floe_tensor_data(x);
    j.dy = floe_tensor_data(dy);
    j.dx = floe_tensor_data(dx);
    j.sum = ds;
    j.sum2 = ds + g.c;
    j.mean = floe_tensor_data(rs1);
    j.inv = inv;
    j.a = a;
    bn_run(pool, &j, BN_GRAD_SUMS);
    for (int64_t c = 0; c < g.c; c++) {
        vec[0][c] = (float)j.sum2[c];   /* scale_backprop: sum(dy * x_hat) */
        vec[1][c] = (float)j.sum[c];    /* offset_backprop: sum(dy) */
        k1[c] = (float)(j.sum[c] / count);
        k2[c] = (float)(j.sum2[c] / count) * inv[c];
    }
    j.k1 = k1;
    j.k2 = k2;
    bn_run(pool, &j, b->training ? BN_GRAD_DX : BN_GRAD_DX_INFER);
    floe_free(ds);
    return FLOE_OK;
}

/* ---- Shape functions -------------------------------------------------------------------- */

static floe_status bn_shape_common(floe_shape_ctx *sc, const char *op, int xi, int nvec,
                                   int first_vec, int nempty) {
    floe_shape x = floe_shape_input(sc, xi), v, e;
    bn_attrs b;
    floe_status st;

    if ((st = bn_attrs_read(floe_shape_attrs(sc), op, xi == 0, &b)) != FLOE_OK)
        return st;
    if (x.ndim >= 0 && x.ndim != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x must be 4-dimensional, got rank %d", op,
                         x.ndim);
    if (x.ndim < 0) {
        x.ndim = 4;
        for (int i = 0; i < 4; i++)
            x.dims[i] = -1;
    }
    if ((st = floe_shape_set_output(sc, 0, &x)) != FLOE_OK)
        return st;
    memset(&v, 0, sizeof(v));
    v.ndim = 1;
    v.dims[0] = x.dims[b.nchw ? 1 : 3];
    for (int i = 0; i < nvec; i++)
        if ((st = floe_shape_set_output(sc, first_vec + i, &v)) != FLOE_OK)
            return st;
    memset(&e, 0, sizeof(e));
    e.ndim = 1;
    for (int i = 0; i < nempty; i++)
        if ((st = floe_shape_set_output(sc, first_vec + nvec + i, &e)) != FLOE_OK)
            return st;
    return FLOE_OK;
}

static floe_status bn_shape_fn(floe_shape_ctx *sc) {
    return bn_shape_common(sc, "FusedBatchNormV3", 0, 4, 1, 1);
}

static floe_status bn_grad_shape_fn(floe_shape_ctx *sc) {
    return bn_shape_common(sc, "FusedBatchNormGradV3", 1, 2, 1, 2);
}

/* ---- Gradient --------------------------------------------------------------------------- */

static floe_status bn_grad(floe_grad_ctx *gc) {
    const floe_attrs *fwd = floe_grad_attrs(gc);
    floe_output dy = floe_grad_upstream(gc, 0), in[6], out;
    floe_attrs *a = NULL;
    floe_node *n = NULL;
    const char *fmt = NULL;
    size_t len = 0;
    float eps = 0;
    int training = 1;
    floe_status st;

    if (dy.node == NULL) /* only the statistics are used: no gradient flows (as TF) */
        return FLOE_OK;
    in[0] = dy;
    in[1] = floe_grad_input(gc, 0);
    in[2] = floe_grad_input(gc, 1);
    in[3] = floe_grad_output(gc, 3);
    in[4] = floe_grad_output(gc, 4);
    in[5] = floe_grad_output(gc, 5);
    if ((st = floe_attrs_get_float(fwd, "epsilon", &eps)) != FLOE_OK ||
        (st = floe_attrs_get_bool(fwd, "is_training", &training)) != FLOE_OK ||
        (st = floe_attrs_get_string(fwd, "data_format", &fmt, &len)) != FLOE_OK ||
        (st = floe_attrs_new(&a)) != FLOE_OK)
        return st;
    if ((st = floe_attrs_set_float(a, "epsilon", eps)) != FLOE_OK ||
        (st = floe_attrs_set_bool(a, "is_training", training)) != FLOE_OK ||
        (st = floe_attrs_set_string(a, "data_format", fmt, len)) != FLOE_OK ||
        (st = floe_grad_add_node(gc, "FusedBatchNormGradV3", in, 6, a, &n)) != FLOE_OK)
        goto done;
    for (int i = 0; i < 3 && st == FLOE_OK; i++) {
        out = (floe_output){n, i, 0};
        st = floe_grad_set_input_grad(gc, i, out);
    }
done:
    floe_attrs_free(a);
    return st;
}

/* ---- Registration ------------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})

static const floe_op_def bn_ops[] = {
    {sizeof(floe_op_def), "FusedBatchNormV3",
     S("x: T", "scale: U", "offset: U", "mean: U", "variance: U"),
     S("y: T", "batch_mean: U", "batch_variance: U", "reserve_space_1: U", "reserve_space_2: U",
       "reserve_space_3: U"),
     S("T: {f32}", "U: {f32}", "epsilon: float = 0.0001", "exponential_avg_factor: float = 1",
       "data_format: string = \"NHWC\"", "is_training: bool = true"),
     bn_shape_fn, 0,
     "Batch normalisation over all dimensions but the channels: y = scale * (x - mean) / "
     "sqrt(variance + epsilon) + offset, with the batch's statistics when is_training."},
    {sizeof(floe_op_def), "FusedBatchNormGradV3",
     S("y_backprop: T", "x: T", "scale: f32", "reserve_space_1: U", "reserve_space_2: U",
       "reserve_space_3: U"),
     S("x_backprop: T", "scale_backprop: U", "offset_backprop: U", "reserve_space_4: U",
       "reserve_space_5: U"),
     S("T: {f32}", "U: {f32}", "epsilon: float = 0.0001", "data_format: string = \"NHWC\"",
       "is_training: bool = true"),
     bn_grad_shape_fn, 0, "The gradient of FusedBatchNormV3."},
};

static const floe_kernel_def bn_kernels[] = {
    {sizeof(floe_kernel_def), "FusedBatchNormV3", "CPU", NULL, 0, bn_create, bn_compute,
     bn_destroy, NULL},
    {sizeof(floe_kernel_def), "FusedBatchNormGradV3", "CPU", NULL, 0, bn_grad_create,
     bn_grad_compute, bn_destroy, NULL},
};

floe_status ops_nn__register_batchnorm(floe_plugin *self) {
    floe_status st;
    for (size_t i = 0; i < sizeof(bn_ops) / sizeof(bn_ops[0]); i++)
        if ((st = floe_register_op(self, &bn_ops[i])) != FLOE_OK)
            return st;
    for (size_t i = 0; i < sizeof(bn_kernels) / sizeof(bn_kernels[0]); i++)
        if ((st = floe_register_kernel(self, &bn_kernels[i])) != FLOE_OK)
            return st;
    return floe_register_gradient(self, "FusedBatchNormV3", bn_grad);
}
