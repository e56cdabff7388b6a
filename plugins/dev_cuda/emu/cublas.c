/*
 * cublas.c - the cuBLAS entry points dev_cuda uses (libs-impl.h, DEV_CUDA__BLAS_FNS),
 * emulated on the host with OpenBLAS (see emu.h).
 *
 * Emulated: handles with a stream and a math mode; Sgemm/Dgemm and their strided-batched
 * forms with cuBLAS's column-major semantics (CUBLAS_OP_N/T/C; C is T for real types),
 * the argument checks cuBLAS makes (m, n, k, batchCount >= 0, lda/ldb/ldc large enough:
 * CUBLAS_STATUS_INVALID_VALUE), and stricter ones it does not: every operand's span,
 * from its leading dimension, extents and batch stride, must lie in one live cudaMalloc
 * block, else the call fails naming the operand instead of faulting on the GPU.  The
 * product runs in stream order (floe_cuda_emu_enqueue on the handle's stream); alpha and
 * beta are read at the call (the default host pointer mode).  beta == 0 never reads C
 * (it may hold NaN garbage), as in cuBLAS.
 *
 * Not emulated: device pointer mode, TF32 or other reduced-precision math modes (the
 * mode is stored; products are always full precision), negative batch strides, the
 * _64 entry points and every other routine.
 */
#include "emu.h"

#include <cblas.h>
#include <cublas_v2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cublasContext {
    cudaStream_t stream;
    int math_mode;
};

/* One (batched) gemm as queued on the stream; everything copied at the call. */
typedef struct gemm_job {
    bool dbl;
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc, batch;
    long long sa, sb, sc;     /* batch strides, in elements */
    double alpha, beta;
    const void *a, *b;
    void *c;
} gemm_job;

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (handle == NULL)
        return CUBLAS_STATUS_INVALID_VALUE;
    *handle = calloc(1, sizeof(**handle));
    if (*handle == NULL)
        return CUBLAS_STATUS_ALLOC_FAILED;
    (*handle)->math_mode = CUBLAS_DEFAULT_MATH;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (handle == NULL)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    if (handle == NULL)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = streamId;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (handle == NULL)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math_mode = (int)mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version) {
    (void)handle; /* cuBLAS answers without a handle too */
    if (version == NULL)
        return CUBLAS_STATUS_INVALID_VALUE;
    *version = CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- gemm ------------------------------------------------------------------------------ */

static CBLAS_TRANSPOSE cblas_op(cublasOperation_t op) {
    return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}

/* Sets the m x n column-major matrix @c (leading dimension @ldc) to zero, so that a
 * beta == 0 product never depends on C's old bytes. */
static void zero_matrix(void *c, size_t es, int m, int n, int ldc) {
    for (int j = 0; j < n; j++)
        memset((char *)c + (size_t)j * (size_t)ldc * es, 0, (size_t)m * es);
}

static void gemm_run(void *arg) {
    const gemm_job *g = arg;
    size_t es = g->dbl ? sizeof(double) : sizeof(float);
    for (int i = 0; i < g->batch; i++) {
        const char *a = (const char *)g->a + (size_t)(i * g->sa) * es;
        const char *b = (const char *)g->b + (size_t)(i * g->sb) * es;
        char *c = (char *)g->c + (size_t)(i * g->sc) * es;
        if (g->beta == 0.0)
            zero_matrix(c, es, g->m, g->n, g->ldc);
        if (g->dbl)
            cblas_dgemm(CblasColMajor, cblas_op(g->ta), cblas_op(g->tb), g->m, g->n, g->k,
                        g->alpha, (const double *)a, g->lda, (const double *)b, g->ldb,
                        g->beta, (double *)c, g->ldc);
        else
            cblas_sgemm(CblasColMajor, cblas_op(g->ta), cblas_op(g->tb), g->m, g->n, g->k,
                        (float)g->alpha, (const float *)a, g->lda, (const float *)b, g->ldb,
                        (float)g->beta, (float *)c, g->ldc);
    }
}

static bool op_valid(cublasOperation_t op) {
    return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

static int max1(int v) {
    return v > 1 ? v : 1;
}

/* cuBLAS's own argument checks. */
static bool gemm_args_valid(const gemm_job *g) {
    int ra = g->ta == CUBLAS_OP_N ? g->m : g->k, rb = g->tb == CUBLAS_OP_N ? g->k : g->n;
    if (!op_valid(g->ta) || !op_valid(g->tb) || g->m < 0 || g->n < 0 || g->k < 0 ||
        g->batch < 0 || g->lda < max1(ra) || g->ldb < max1(rb) || g->ldc < max1(g->m)) {
        floe_cuda_emu_fail("cublas%cgemm: invalid value: transa %d, transb %d, m %d, n %d, k %d, "
                           "lda %d, ldb %d, ldc %d, batchCount %d",
                           g->dbl ? 'D' : 'S', (int)g->ta, (int)g->tb, g->m, g->n, g->k, g->lda,
                           g->ldb, g->ldc, g->batch);
        return false;
    }
    return true;
}

/* Whether the @rows x @cols matrix at @p (leading dimension @ld), repeated @batch times
 * every @stride elements, lies in device memory; says which operand does not. */
static bool span_ok(const gemm_job *g, const char *name, const void *p, int rows, int cols,
                    int ld, long long stride) {
    size_t es = g->dbl ? sizeof(double) : sizeof(float), n = 0;
    if (stride < 0) {
        floe_cuda_emu_fail("cublas%cgemm: %s's batch stride %lld is negative (not emulated)",
                           g->dbl ? 'D' : 'S', name, stride);
        return false;
    }
    if (rows > 0 && cols > 0)
        n = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows +
             (size_t)(g->batch - 1) * (size_t)stride) * es;
    if (floe_cuda_emu_is_device(p, n))
        return true;
    floe_cuda_emu_fail("cublas%cgemm: %s = %p: its %zu bytes (%d x %d, ld %d, %d matrices "
                       "%lld elements apart) are not inside one device allocation",
                       g->dbl ? 'D' : 'S', name, p, n, rows, cols, ld, g->batch, stride);
    return false;
}

static cublasStatus_t gemm_submit(cublasHandle_t h, const gemm_job *g) {
    bool na = g->ta == CUBLAS_OP_N, nb = g->tb == CUBLAS_OP_N;
    if (h == NULL) {
        floe_cuda_emu_fail("cublas%cgemm: the handle is NULL", g->dbl ? 'D' : 'S');
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (!gemm_args_valid(g))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return CUBLAS_STATUS_SUCCESS;
    if (!span_ok(g, "A", g->a, na ? g->m : g->k, na ? g->k : g->m, g->lda, g->sa) ||
        !span_ok(g, "B", g->b, nb ? g->k : g->n, nb ? g->n : g->k, g->ldb, g->sb) ||
        !span_ok(g, "C", g->c, g->m, g->n, g->ldc, g->sc))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (floe_cuda_emu_enqueue(h->stream, gemm_run, g, sizeof(*g)) != cudaSuccess)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

/* alpha and beta are read at the call (host pointer mode), so they must be there. */
static bool scalars_ok(const char *who, const void *alpha, const void *beta) {
    if (alpha != NULL && beta != NULL)
        return true;
    floe_cuda_emu_fail("%s: alpha (%p) or beta (%p) is NULL", who, alpha, beta);
    return false;
}

static gemm_job gemm_job_of(bool dbl, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, double alpha, const void *a, int lda, long long sa,
                            const void *b, int ldb, long long sb, double beta, void *c, int ldc,
                            long long sc, int batch) {
    gemm_job g = {dbl, ta, tb, m, n, k, lda, ldb, ldc, batch, sa, sb, sc, alpha, beta, a, b, c};
    return g;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int m, int n, int k, const float *alpha,
                              const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    if (!scalars_ok("cublasSgemm_v2", alpha, beta))
        return CUBLAS_STATUS_INVALID_VALUE;
    gemm_job g = gemm_job_of(false, transa, transb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta,
                             C, ldc, 0, 1);
    return gemm_submit(handle, &g);
}

cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int m, int n, int k, const double *alpha,
                              const double *A, int lda, const double *B, int ldb,
                              const double *beta, double *C, int ldc) {
    if (!scalars_ok("cublasDgemm_v2", alpha, beta))
        return CUBLAS_STATUS_INVALID_VALUE;
    gemm_job g = gemm_job_of(true, transa, transb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta,
                             C, ldc, 0, 1);
    return gemm_submit(handle, &g);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long int strideA, const float *B, int ldb,
                                         long long int strideB, const float *beta, float *C,
                                         int ldc, long long int strideC, int batchCount) {
    if (!scalars_ok("cublasSgemmStridedBatched", alpha, beta))
        return CUBLAS_STATUS_INVALID_VALUE;
    gemm_job g = gemm_job_of(false, transa, transb, m, n, k, *alpha, A, lda, strideA, B, ldb,
                             strideB, *beta, C, ldc, strideC, batchCount);
    return gemm_submit(handle, &g);
}

cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const double *alpha, const double *A, int lda,
                                         long long int strideA, const double *B, int ldb,
                                         long long int strideB, const double *beta, double *C,
                                         int ldc, long long int strideC, int batchCount) {
    if (!scalars_ok("cublasDgemmStridedBatched", alpha, beta))
        return CUBLAS_STATUS_INVALID_VALUE;
    gemm_job g = gemm_job_of(true, transa, transb, m, n, k, *alpha, A, lda, strideA, B, ldb,
                             strideB, *beta, C, ldc, strideC, batchCount);
    return gemm_submit(handle, &g);
}
