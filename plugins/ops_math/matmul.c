/*
 * matmul.c - MatMul and BatchMatMulV2 on CPU, for f32, f64, i32 and i64.
 *
 * f32 and f64 go to the device's GEMM extras (floe_cpu_sgemm / floe_cpu_dgemm of
 * floe/cpu.h, fetched once in create()), which split the work over Floe's pool
 * themselves.  Integers, and floats on a device without the extras, use the portable
 * loops below: rows of C spread over the pool, K blocked so a panel of B stays in
 * cache, the inner loop over contiguous columns for the compiler to vectorise.
 * Integer products wrap around (computed in unsigned types).
 *
 * BatchMatMulV2 broadcasts the batch dimensions (all but the last two) like numpy.
 * Many small matrices run one per task across the pool, each GEMM inline; large ones
 * run one after the other, each split across the pool.
 *
 * Shapes: errors name both operands ("Matrix size-incompatible: In[0]: [2,3],
 * In[1]: [4,5]"); empty batches, rows or columns give empty outputs and K == 0 gives
 * zeros.
 *
 * Sections: portable loops; one GEMM; MatMul; BatchMatMulV2; shape functions;
 * definitions and registration.
 */
#include "ops_math-impl.h"

#include <floe/cpu.h>
#include <stdatomic.h>
#include <stdio.h>

/* Multiply-adds per task below which splitting does not pay. */
#define MATMUL_TASK_WORK ((int64_t)1 << 18)
/* Rows of B (K extent) per cache block of the portable loops. */
#define MATMUL_KBLOCK 128

/* ---- Portable loops ----------------------------------------------------------------- */

typedef struct loop_args {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    const void *a, *b;
    void *c;
} loop_args;

/* C rows [i0, i1) = op(A) op(B); T is stored, U computes (unsigned for integers). */
#define MATMUL_LOOP(SFX, T, U)                                                          \
    static void loop_rows_##SFX(void *arg, int64_t i0, int64_t i1) {                    \
        const loop_args *g = arg;                                                       \
        const T *a = g->a, *b = g->b;                                                   \
        T *c = g->c;                                                                    \
        if (g->tb) {                                                                    \
            for (int64_t i = i0; i < i1; i++)                                           \
                for (int64_t j = 0; j < g->n; j++) {                                    \
                    const T *brow = b + j * g->ldb;                                     \
                    U acc = 0;                                                          \
                    for (int64_t p = 0; p < g->k; p++)                                  \
                        acc += (U)(g->ta ? a[p * g->lda + i] : a[i * g->lda + p]) *     \
                               (U)brow[p];                                              \
                    c[i * g->ldc + j] = (T)acc;                                         \
                }                                                                       \
            return;                                                                     \
        }                                                                               \
        for (int64_t i = i0; i < i1; i++)                                               \
            memset(c + i * g->ldc, 0, (size_t)g->n * sizeof(T));                        \
        for (int64_t p0 = 0; p0 < g->k; p0 += MATMUL_KBLOCK) {                          \
            int64_t p1 = p0 + MATMUL_KBLOCK < g->k ? p0 + MATMUL_KBLOCK : g->k;         \
            for (int64_t i = i0; i < i1; i++) {                                         \
                T *restrict crow = c + i * g->ldc;                                      \
                for (int64_t p = p0; p < p1; p++) {                                     \
                    const T *restrict brow = b + p * g->ldb;                            \
                    const U av = (U)(g->ta ? a[p * g->lda + i] : a[i * g->lda + p]);    \
                    for (int64_t j = 0; j < g->n; j++)                                  \
                        crow[j] = (T)((U)crow[j] + av * (U)brow[j]);                    \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }

MATMUL_LOOP(f32, float, float)
MATMUL_LOOP(f64, double, double)
MATMUL_LOOP(i32, int32_t, uint32_t)
MATMUL_LOOP(i64, int64_t, uint64_t)

/* ---- One GEMM -------------------------------------------------------------------------- */

typedef struct matmul_state {
    floe_dtype dtype;
    int ta, tb;                        /* transpose_a/b, or adj_x/adj_y */
    floe_cpu_sgemm_fn sgemm;           /* NULL: portable loops */
    floe_cpu_dgemm_fn dgemm;
} matmul_state;

/* Saturating m * n * k, for scheduling decisions only. */
static int64_t matmul_work(int64_t m, int64_t n, int64_t k) {
    int64_t w = m;
    w = n > 0 && w > INT64_MAX / n ? INT64_MAX : w * n;
    w = k > 0 && w > INT64_MAX / k ? INT64_MAX : w * k;
    return w;
}

/* C (m x n, row stride n) = op(A) op(B) with row strides @lda, @ldb; @pool may be NULL
 * (inline).  K == 0 gives zeros. */
static floe_status gemm_one(const matmul_state *s, floe_threadpool *pool, int64_t m, int64_t n,
                            int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                            void *c) {
    loop_args g = {s->ta, s->tb, m, n, k, lda, ldb, n, a, b, c};
    void (*rows)(void *, int64_t, int64_t) = NULL;
    int64_t grain;

    if (m == 0 || n == 0)
        return FLOE_OK;
    if (k == 0) {
        memset(c, 0, (size_t)(m * n) * floe_dtype_size(s->dtype));
        return FLOE_OK;
    }
    switch (s->dtype) {
    case FLOE_DTYPE_F32:
        if (s->sgemm != NULL)
            return s->sgemm(pool, s->ta, s->tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        rows = loop_rows_f32;
        break;
    case FLOE_DTYPE_F64:
        if (s->dgemm != NULL)
            return s->dgemm(pool, s->ta, s->tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, n);
        rows = loop_rows_f64;
        break;
    case FLOE_DTYPE_I32:
        rows = loop_rows_i32;
        break;
    case FLOE_DTYPE_I64:
        rows = loop_rows_i64;
        break;
    default:
        return floe_fail(FLOE_UNIMPLEMENTED, "MatMul: no CPU kernel for %s",
                         floe_dtype_name(s->dtype));
    }
    grain = MATMUL_TASK_WORK / (matmul_work(1, n, k) + 1) + 1;
    ops_math__parallel(pool, m, grain, rows, &g);
    return FLOE_OK;
}

static floe_status matmul_create_common(floe_kernel_ctx *kc, const char *ta_name,
                                        const char *tb_name, void **state) {
    const floe_attrs *attrs = floe_kernel_attrs(kc);
    floe_device *dev = floe_kernel_device(kc);
    matmul_state *s;
    int ta = 0, tb = 0;
    floe_status st;

    *state = NULL;
    if ((st = floe_attrs_get_bool(attrs, ta_name, &ta)) != FLOE_OK ||
        (st = floe_attrs_get_bool(attrs, tb_name, &tb)) != FLOE_OK)
        return st;
    s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "MatMul: out of memory");
    s->dtype = floe_kernel_input_dtype(kc, 0);
    s->ta = ta != 0;
    s->tb = tb != 0;
    s->sgemm = NULL;
    s->dgemm = NULL;
    if (dev != NULL) {
        s->sgemm = (floe_cpu_sgemm_fn)floe_device_proc_address(dev, FLOE_CPU_SGEMM);
        s->dgemm = (floe_cpu_dgemm_fn)floe_device_proc_address(dev, FLOE_CPU_DGEMM);
    }
    *state = s;
    return FLOE_OK;
}

static void matmul_destroy(void *state) {
    floe_free(state);
}

/* "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]" and the transposes. */
static floe_status size_mismatch(const char *what, const matmul_state *s, const floe_tensor *x,
                                 const floe_tensor *y) {
    char xs[160], ys[160];

    ops_math__format_dims(floe_tensor_shape(x), floe_tensor_ndim(x), xs, sizeof(xs));
    ops_math__format_dims(floe_tensor_shape(y), floe_tensor_ndim(y), ys, sizeof(ys));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: In[0]: %s, In[1]: %s%s%s", what, xs, ys,
                     s->ta ? " (In[0] transposed)" : "", s->tb ? " (In[1] transposed)" : "");
}

/* ---- MatMul ----------------------------------------------------------------------------- */

static floe_status matmul_create(floe_kernel_ctx *kc, void **state) {
    return matmul_create_common(kc, "transpose_a", "transpose_b", state);
}

static floe_status matmul_compute(floe_kernel_ctx *kc, void *state) {
    const matmul_state *s = state;
    floe_tensor *x, *y, *z = NULL;
    int64_t m, n, k, shape[2];
    floe_status st;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "MatMul: kernel was not created");
    if ((st = ops_math__kernel_input(kc, 0, s->dtype, &x)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, s->dtype, &y)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(x) != 2 || floe_tensor_ndim(y) != 2)
        return size_mismatch("MatMul needs matrices (rank 2)", s, x, y);
    m = floe_tensor_dim(x, s->ta ? 1 : 0);
    k = floe_tensor_dim(x, s->ta ? 0 : 1);
    n = floe_tensor_dim(y, s->tb ? 0 : 1);
    if (floe_tensor_dim(y, s->tb ? 1 : 0) != k)
        return size_mismatch("Matrix size-incompatible", s, x, y);
    shape[0] = m;
    shape[1] = n;
    if ((st = floe_kernel_alloc_output(kc, 0, shape, 2, &z)) != FLOE_OK)
        return st;
    if (m * n > 0 && floe_tensor_data(z) == NULL)
        return floe_fail(FLOE_INTERNAL, "MatMul: output is not in host memory");
    return gemm_one(s, floe_kernel_threadpool(kc), m, n, k, floe_tensor_data(x),
                    floe_tensor_dim(x, 1), floe_tensor_data(y), floe_tensor_dim(y, 1),
                    floe_tensor_data(z));
}

/* ---- BatchMatMulV2 ------------------------------------------------------------------------ */

typedef struct batch_plan {
    const matmul_state *s;
    int nb;                              /* batch rank of the output */
    int64_t bdims[FLOE_MAX_DIMS];        /* output batch extents */
    int64_t xstride[FLOE_MAX_DIMS];      /* matrix strides per batch dim; 0: broadcast */
    int64_t ystride[FLOE_MAX_DIMS];
    int64_t m, n, k, lda, ldb;
    const char *x, *y;
    char *z;
    size_t esize;
    atomic_int status;                   /* first failure of a task */
} batch_plan;

/* Broadcasts the batch dims of @x and @y into @p; false when they do not broadcast. */
static bool batch_broadcast(batch_plan *p, const floe_tensor *x, const floe_tensor *y) {
    int rx = floe_tensor_ndim(x) - 2, ry = floe_tensor_ndim(y) - 2;
    int64_t sx = 1, sy = 1;

    p->nb = rx > ry ? rx : ry;
    for (int d = p->nb - 1; d >= 0; d--) {
        int ix = d - (p->nb - rx), iy = d - (p->nb - ry);
        int64_t ex = ix >= 0 ? floe_tensor_dim(x, ix) : 1;
        int64_t ey = iy >= 0 ? floe_tensor_dim(y, iy) : 1;
        if (ex != ey && ex != 1 && ey != 1)
            return false;
        p->bdims[d] = ex == 1 ? ey : ex;
        p->xstride[d] = ex == 1 ? 0 : sx;
        p->ystride[d] = ey == 1 ? 0 : sy;
        sx *= ex;
        sy *= ey;
    }
    return true;
}

/* Matrices [b0, b1) of the batch; each GEMM inline unless @pool is given. */
static void batch_run(batch_plan *p, floe_threadpool *pool, int64_t b0, int64_t b1) {
    int64_t xmat = p->m * p->k, ymat = p->k * p->n, zmat = p->m * p->n;

    for (int64_t b = b0; b < b1; b++) {
        int64_t rest = b, xi = 0, yi = 0;
        floe_status st;
        for (int d = p->nb - 1; d >= 0; d--) {
            int64_t c = rest % p->bdims[d];
            rest /= p->bdims[d];
            xi += c * p->xstride[d];
            yi += c * p->ystride[d];
        }
        st = gemm_one(p->s, pool, p->m, p->n, p->k, p->x + (size_t)(xi * xmat) * p->esize,
                      p->lda, p->y + (size_t)(yi * ymat) * p->esize, p->ldb,
                      p->z + (size_t)(b * zmat) * p->esize);
        if (st != FLOE_OK) {
            int ok = FLOE_OK;
            atomic_compare_exchange_strong(&p->status, &ok, (int)st);
        }
    }
}

static void batch_task(void *arg, int64_t b0, int64_t b1) {
    batch_run(arg, NULL, b0, b1);
}

static floe_status batch_matmul_create(floe_kernel_ctx *kc, void **state) {
    return matmul_create_common(kc, "adj_x", "adj_y", state);
}

static floe_status batch_matmul_compute(floe_kernel_ctx *kc, void *state) {
    const matmul_state *s = state;
    floe_threadpool *pool = floe_kernel_threadpool(kc);
    floe_tensor *x, *y, *z = NULL;
    int64_t shape[FLOE_MAX_DIMS], batch = 1, work;
    batch_plan p;
    floe_status st;
    int rx, ry;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "BatchMatMulV2: kernel was not created");
    if ((st = ops_math__kernel_input(kc, 0, s->dtype, &x)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, s->dtype, &y)) != FLOE_OK)
        return st;
    rx = floe_tensor_ndim(x);
    ry = floe_tensor_ndim(y);
    if (rx < 2 || ry < 2)
        return size_mismatch("BatchMatMulV2 needs inputs of rank >= 2", s, x, y);
    memset(&p, 0, sizeof(p));
    p.s = s;
    p.m = floe_tensor_dim(x, s->ta ? rx - 1 : rx - 2);
    p.k = floe_tensor_dim(x, s->ta ? rx - 2 : rx - 1);
    p.n = floe_tensor_dim(y, s->tb ? ry - 2 : ry - 1);
    if (floe_tensor_dim(y, s->tb ? ry - 1 : ry - 2) != p.k)
        return size_mismatch("Matrix size-incompatible", s, x, y);
    if (!batch_broadcast(&p, x, y))
        return size_mismatch("Incompatible batch dimensions", s, x, y);
    memcpy(shape, p.bdims, (size_t)p.nb * sizeof(int64_t));
    shape[p.nb] = p.m;
    shape[p.nb + 1] = p.n;
    if ((st = floe_kernel_alloc_output(kc, 0, shape, p.nb + 2, &z)) != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(z) == 0)
        return FLOE_OK;
    for (int d = 0; d < p.nb; d++)
        batch *= p.bdims[d];   /* no overflow: the output's element count is valid */
    p.lda = floe_tensor_dim(x, rx - 1);
    p.ldb = floe_tensor_dim(y, ry - 1);
    p.x = floe_tensor_data(x);
    p.y = floe_tensor_data(y);
    p.z = floe_tensor_data(z);
    p.esize = floe_dtype_size(s->dtype);
    if (p.z == NULL)
        return floe_fail(FLOE_INTERNAL, "BatchMatMulV2: output is not in host memory");
    atomic_init(&p.status, FLOE_OK);
    work = matmul_work(p.m, p.n, p.k);
    if (batch > 1 && work < 8 * MATMUL_TASK_WORK)
        ops_math__parallel(pool, batch, MATMUL_TASK_WORK / (work + 1) + 1, batch_task, &p);
    else
        batch_run(&p, pool, 0, batch);
    st = (floe_status)atomic_load(&p.status);
    if (st != FLOE_OK)
        return floe_fail(st, "BatchMatMulV2: a batch's GEMM failed (%s)", floe_dtype_name(s->dtype));
    return FLOE_OK;
}

/* ---- Shape functions ------------------------------------------------------------------------ */

static floe_status shape_mismatch(const char *what, const floe_shape *a, int ta,
                                  const floe_shape *b, int tb) {
    char as[160], bs[160];

    ops_math__format_dims(a->dims, a->ndim, as, sizeof(as));
    ops_math__format_dims(b->dims, b->ndim, bs, sizeof(bs));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: In[0]: %s, In[1]: %s%s%s", what, as, bs,
                     ta ? " (In[0] transposed)" : "", tb ? " (In[1] transposed)" : "");
}

/* Inner extents: both known and different is an error. */
static bool inner_conflict(int64_t ka, int64_t kb) {
    return ka >= 0 && kb >= 0 && ka != kb;
}

static floe_status matmul_shape_fn(floe_shape_ctx *sc) {
    const floe_attrs *attrs = floe_shape_attrs(sc);
    floe_shape a = floe_shape_input(sc, 0), b = floe_shape_input(sc, 1), out;
    int ta = 0, tb = 0;
    floe_status st;

    if ((st = floe_attrs_get_bool(attrs, "transpose_a", &ta)) != FLOE_OK ||
        (st = floe_attrs_get_bool(attrs, "transpose_b", &tb)) != FLOE_OK)
        return st;
    if ((a.ndim >= 0 && a.ndim != 2) || (b.ndim >= 0 && b.ndim != 2))
        return shape_mismatch("MatMul needs matrices (rank 2)", &a, ta, &b, tb);
    memset(&out, 0, sizeof(out));
    out.ndim = 2;
    out.dims[0] = a.ndim == 2 ? a.dims[ta ? 1 : 0] : -1;
    out.dims[1] = b.ndim == 2 ? b.dims[tb ? 0 : 1] : -1;
    if (a.ndim == 2 && b.ndim == 2 && inner_conflict(a.dims[ta ? 0 : 1], b.dims[tb ? 1 : 0]))
        return shape_mismatch("Matrix size-incompatible", &a, ta, &b, tb);
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status batch_matmul_shape_fn(floe_shape_ctx *sc) {
    const floe_attrs *attrs = floe_shape_attrs(sc);
    floe_shape a = floe_shape_input(sc, 0), b = floe_shape_input(sc, 1), out;
    int ta = 0, tb = 0, nb;
    floe_status st;

    if ((st = floe_attrs_get_bool(attrs, "adj_x", &ta)) != FLOE_OK ||
        (st = floe_attrs_get_bool(attrs, "adj_y", &tb)) != FLOE_OK)
        return st;
    if ((a.ndim >= 0 && a.ndim < 2) || (b.ndim >= 0 && b.ndim < 2))
        return shape_mismatch("BatchMatMulV2 needs inputs of rank >= 2", &a, ta, &b, tb);
    memset(&out, 0, sizeof(out));
    if (a.ndim < 0 || b.ndim < 0) {
        out.ndim = -1;
        return floe_shape_set_output(sc, 0, &out);
    }
    if (inner_conflict(a.dims[a.ndim - (ta ? 2 : 1)], b.dims[b.ndim - (tb ? 1 : 2)]))
        return shape_mismatch("Matrix size-incompatible", &a, ta, &b, tb);
    nb = (a.ndim > b.ndim ? a.ndim : b.ndim) - 2;
    for (int d = 0; d < nb; d++) {
        int ia = d - (nb - (a.ndim - 2)), ib = d - (nb - (b.ndim - 2));
        int64_t x = ia >= 0 ? a.dims[ia] : 1, y = ib >= 0 ? b.dims[ib] : 1;
        if (x >= 0 && y >= 0 && x != y && x != 1 && y != 1)
            return shape_mismatch("Incompatible batch dimensions", &a, ta, &b, tb);
        if (x < 0 && y < 0)
            out.dims[d] = -1;
        else if (x < 0)
            out.dims[d] = y == 1 ? -1 : y;
        else if (y < 0)
            out.dims[d] = x == 1 ? -1 : x;
        else
            out.dims[d] = x == 1 ? y : x;
    }
    out.ndim = nb + 2;
    out.dims[nb] = a.dims[a.ndim - (ta ? 1 : 2)];
    out.dims[nb + 1] = b.dims[b.ndim - (tb ? 2 : 1)];
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- Definitions and registration ------------------------------------------------------------ */

#define MATMUL_TYPES "{f32, f64, i32, i64}"

static const char *const matmul_inputs[] = {"a: T", "b: T", NULL};
static const char *const matmul_outputs[] = {"product: T", NULL};
static const char *const matmul_attrs[] = {"transpose_a: bool = false",
                                           "transpose_b: bool = false", "T: " MATMUL_TYPES,
                                           NULL};
static const char *const bmm_inputs[] = {"x: T", "y: T", NULL};
static const char *const bmm_outputs[] = {"output: T", NULL};
static const char *const bmm_attrs[] = {"adj_x: bool = false", "adj_y: bool = false",
                                        "T: " MATMUL_TYPES, NULL};

static const floe_op_def matmul_ops[] = {
    {sizeof(floe_op_def), "MatMul", matmul_inputs, matmul_outputs, matmul_attrs,
     matmul_shape_fn, 0,
     "Matrix product op(a) x op(b) of two rank-2 tensors; op transposes when asked."},
    {sizeof(floe_op_def), "BatchMatMulV2", bmm_inputs, bmm_outputs, bmm_attrs,
     batch_matmul_shape_fn, 0,
     "Matrix products over the last two dimensions; the batch dimensions before them "
     "broadcast like numpy."},
};

static const floe_kernel_def matmul_kernels[] = {
    {sizeof(floe_kernel_def), "MatMul", "CPU", NULL, 0, matmul_create, matmul_compute,
     matmul_destroy, NULL},
    {sizeof(floe_kernel_def), "BatchMatMulV2", "CPU", NULL, 0, batch_matmul_create,
     batch_matmul_compute, matmul_destroy, NULL},
};

floe_status ops_math__register_matmul(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(matmul_ops) / sizeof(matmul_ops[0]); i++) {
        floe_status st = floe_register_op(self, &matmul_ops[i]);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &matmul_kernels[i]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
