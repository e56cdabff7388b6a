/*
 * blas.c - MatMul and BatchMatMulV2 on the GPU through cuBLAS (f32, f64).
 *
 * Floe's tensors are row-major and cuBLAS is column-major: a row-major [m, n] matrix
 * is the column-major [n, m] matrix of its transpose, so C = op(A) op(B) is computed as
 * C^T = op(B)^T op(A)^T, i.e. gemm with the operands swapped and no copy.  TF32 tensor
 * cores are used for f32 only when FLOE_CUDA_ALLOW_TF32=1 (the handle's math mode, set
 * in dev_cuda.c); the default keeps full f32 precision, as the CPU does.
 *
 * BatchMatMulV2 broadcasts its batch dimensions: when each operand's batch is either
 * all there or all broadcast, one strided-batched call does it; other patterns call
 * gemm once per output matrix.
 */
#include "gpu-impl.h"

#include <stdio.h>
#include <string.h>

typedef struct gemm_args {
    bool ta, tb;
    int64_t m, n, k;
    const void *a, *b;
    void *c;
    int64_t stride_a, stride_b, stride_c, batch;   /* in elements */
} gemm_args;

static floe_status check_int(int64_t v, const char *what) {
    if (v > INT32_MAX)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s = %lld exceeds cuBLAS's int range", what,
                         (long long)v);
    return FLOE_OK;
}

/* The CPU kernel's message (ops_math/matmul.c): "Matrix size-incompatible: In[0]: [2,3],
 * In[1]: [4,5] (In[0] transposed)". */
static floe_status size_mismatch(const char *what, const floe_tensor *x, const floe_tensor *y,
                                 bool tx, bool ty) {
    char xs[160], ys[160];
    dev_cuda__format_dims(floe_tensor_shape(x), floe_tensor_ndim(x), xs, sizeof(xs));
    dev_cuda__format_dims(floe_tensor_shape(y), floe_tensor_ndim(y), ys, sizeof(ys));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: In[0]: %s, In[1]: %s%s%s", what, xs, ys,
                     tx ? " (In[0] transposed)" : "", ty ? " (In[1] transposed)" : "");
}

/* Queues one (strided-batched when batch > 1) row-major gemm on @d's stream. */
static floe_status gemm(dev_cuda__device *d, floe_dtype dt, const gemm_args *g) {
    int m = (int)g->m, n = (int)g->n, k = (int)g->k;
    int lda = g->ta ? m : k, ldb = g->tb ? k : n;
    cublasOperation_t opa = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opb = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const dev_cuda__blas_lib *L = &dev_cuda__blas;
    cublasStatus_t s;

    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return FLOE_OK;
    if (g->k == 0) /* an empty sum: zeros */
        return dev_cuda__fail_cuda(cudaMemsetAsync(g->c, 0,
                                                   (size_t)(g->m * g->n * g->batch) *
                                                       (dt == FLOE_DTYPE_F32 ? 4 : 8),
                                                   d->stream),
                                   "MatMul");
    pthread_mutex_lock(&d->lib_lock);
    if (dt == FLOE_DTYPE_F32) {
        const float one = 1.0f, zero = 0.0f;
        s = g->batch == 1
                ? L->cublasSgemm_v2(d->blas, opb, opa, n, m, k, &one, g->b, ldb, g->a, lda, &zero,
                                    g->c, n)
                : L->cublasSgemmStridedBatched(d->blas, opb, opa, n, m, k, &one, g->b, ldb,
                                               g->stride_b, g->a, lda, g->stride_a, &zero, g->c,
                                               n, g->stride_c, (int)g->batch);
    } else {
        const double one = 1.0, zero = 0.0;
        s = g->batch == 1
                ? L->cublasDgemm_v2(d->blas, opb, opa, n, m, k, &one, g->b, ldb, g->a, lda, &zero,
                                    g->c, n)
                : L->cublasDgemmStridedBatched(d->blas, opb, opa, n, m, k, &one, g->b, ldb,
                                               g->stride_b, g->a, lda, g->stride_a, &zero, g->c,
                                               n, g->stride_c, (int)g->batch);
    }
    pthread_mutex_unlock(&d->lib_lock);
    return dev_cuda__fail_cublas((int)s, "cuBLAS gemm");
}

static floe_status matmul_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *a = floe_kernel_input(kc, 0), *b = floe_kernel_input(kc, 1);
    int ta = 0, tb = 0;
    gemm_args g;
    floe_tensor *c;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    floe_attrs_get_bool(floe_kernel_attrs(kc), "transpose_a", &ta);
    floe_attrs_get_bool(floe_kernel_attrs(kc), "transpose_b", &tb);
    if (floe_tensor_ndim(a) != 2 || floe_tensor_ndim(b) != 2)
        return size_mismatch("MatMul needs matrices (rank 2)", a, b, ta, tb);
    memset(&g, 0, sizeof(g));
    g.ta = ta != 0;
    g.tb = tb != 0;
    g.m = floe_tensor_dim(a, ta ? 1 : 0);
    g.k = floe_tensor_dim(a, ta ? 0 : 1);
    g.n = floe_tensor_dim(b, tb ? 0 : 1);
    if (floe_tensor_dim(b, tb ? 1 : 0) != g.k)
        return size_mismatch("Matrix size-incompatible", a, b, ta, tb);
    if ((st = check_int(g.m, "m")) != FLOE_OK || (st = check_int(g.n, "n")) != FLOE_OK ||
        (st = check_int(g.k, "k")) != FLOE_OK)
        return st;
    int64_t dims[2] = {g.m, g.n};
    if ((st = floe_kernel_alloc_output(kc, 0, dims, 2, &c)) != FLOE_OK)
        return st;
    g.a = floe_tensor_device_data(a);
    g.b = floe_tensor_device_data(b);
    g.c = floe_tensor_device_data(c);
    g.batch = 1;
    return gemm(d, floe_tensor_dtype(a), &g);
}

/* Batch extents and strides (in matrices) of the broadcast batch dims of @x and @y. */
/* The batch dimensions' broadcast; fails (no message) when they do not broadcast. */
static floe_status batch_plan(const floe_tensor *x, const floe_tensor *y, dev_cuda__bcast *p) {
    char err[256];
    return dev_cuda__bcast_plan(floe_tensor_shape(x), floe_tensor_ndim(x) - 2,
                                floe_tensor_shape(y), floe_tensor_ndim(y) - 2, p, err,
                                sizeof(err));
}

static floe_status batch_matmul_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *y = floe_kernel_input(kc, 1);
    int adj_x = 0, adj_y = 0, nx = floe_tensor_ndim(x), ny = floe_tensor_ndim(y);
    int64_t dims[FLOE_MAX_DIMS];
    size_t es = floe_dtype_size(floe_tensor_dtype(x));
    dev_cuda__bcast p;
    gemm_args g;
    floe_tensor *z;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if (nx < 2 || ny < 2)
        return size_mismatch("BatchMatMulV2 needs inputs of rank >= 2", x, y, false, false);
    floe_attrs_get_bool(floe_kernel_attrs(kc), "adj_x", &adj_x);
    floe_attrs_get_bool(floe_kernel_attrs(kc), "adj_y", &adj_y);
    memset(&g, 0, sizeof(g));
    g.ta = adj_x != 0;
    g.tb = adj_y != 0;
    g.m = floe_tensor_dim(x, adj_x ? nx - 1 : nx - 2);
    g.k = floe_tensor_dim(x, adj_x ? nx - 2 : nx - 1);
    g.n = floe_tensor_dim(y, adj_y ? ny - 2 : ny - 1);
    if (floe_tensor_dim(y, adj_y ? ny - 1 : ny - 2) != g.k)
        return size_mismatch("Matrix size-incompatible", x, y, adj_x, adj_y);
    if (batch_plan(x, y, &p) != FLOE_OK)
        return size_mismatch("Incompatible batch dimensions", x, y, adj_x, adj_y);
    if ((st = check_int(g.m, "m")) != FLOE_OK || (st = check_int(g.n, "n")) != FLOE_OK || (st = check_int(g.k, "k")) != FLOE_OK ||
        (st = check_int(p.n, "batch")) != FLOE_OK)
        return st;
    memcpy(dims, p.out_dims, sizeof(int64_t) * (size_t)p.out_ndim);
    dims[p.out_ndim] = g.m;
    dims[p.out_ndim + 1] = g.n;
    if ((st = floe_kernel_alloc_output(kc, 0, dims, p.out_ndim + 2, &z)) != FLOE_OK)
        return st;
    g.stride_a = g.m * g.k;
    g.stride_b = g.k * g.n;
    g.stride_c = g.m * g.n;
    if (p.ndim <= 1) {
        g.batch = p.n;
        g.stride_a *= p.ndim == 1 ? p.xstride[0] : 1;
        g.stride_b *= p.ndim == 1 ? p.ystride[0] : 1;
        g.a = floe_tensor_device_data(x);
        g.b = floe_tensor_device_data(y);
        g.c = floe_tensor_device_data(z);
        return gemm(d, floe_tensor_dtype(x), &g);
    }
    /* Mixed broadcasting: one gemm per output matrix. */
    for (int64_t i = 0; i < p.n && st == FLOE_OK; i++) {
        int64_t rem = i, xo = 0, yo = 0;
        gemm_args one = g;
        for (int k = p.ndim - 1; k >= 0; k--) {
            int64_t c = rem % p.dims[k];
            rem /= p.dims[k];
            xo += c * p.xstride[k];
            yo += c * p.ystride[k];
        }
        one.batch = 1;
        one.a = (const char *)floe_tensor_device_data(x) + (size_t)(xo * g.stride_a) * es;
        one.b = (const char *)floe_tensor_device_data(y) + (size_t)(yo * g.stride_b) * es;
        one.c = (char *)floe_tensor_device_data(z) + (size_t)(i * g.stride_c) * es;
        st = gemm(d, floe_tensor_dtype(x), &one);
    }
    return st;
}

static const char *const T_FLOAT[] = {"T: {f32, f64}", NULL};

floe_status dev_cuda__register_blas(floe_plugin *self) {
    static const struct {
        const char *op;
        floe_status (*compute)(floe_kernel_ctx *, void *);
    } k[] = {{"MatMul", matmul_compute}, {"BatchMatMulV2", batch_matmul_compute}};

    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        floe_kernel_def def;
        floe_status st;
        memset(&def, 0, sizeof(def));
        def.struct_size = sizeof(def);
        def.op = k[i].op;
        def.device_type = "GPU";
        def.constraints = T_FLOAT;
        def.compute = k[i].compute;
        if ((st = floe_register_kernel(self, &def)) != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
