/*
 * floe/cpu.h - vendor extras of the CPU device, looked up by name.
 *
 * dev_cpu offers these through floe_device_ops.proc_address; a kernel fetches them once
 * in its create() with floe_device_proc_address(floe_kernel_device(kc), FLOE_CPU_SGEMM)
 * and keeps the pointer.  A NULL result means the device has no such extra: the kernel
 * falls back to its own code.
 */
#ifndef FLOE_CPU_H
#define FLOE_CPU_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Row-major C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T, M x N result,
 * K the inner extent; lda/ldb/ldc are row strides in elements.  Runs on @pool's
 * threads (the caller's included); BLAS threads are not used.  Returns FLOE_OK or
 * FLOE_INTERNAL with the library's message.
 */
typedef floe_status (*floe_cpu_sgemm_fn)(floe_threadpool *pool, int trans_a, int trans_b,
                                         int64_t m, int64_t n, int64_t k, float alpha,
                                         const float *a, int64_t lda, const float *b,
                                         int64_t ldb, float beta, float *c, int64_t ldc);
typedef floe_status (*floe_cpu_dgemm_fn)(floe_threadpool *pool, int trans_a, int trans_b,
                                         int64_t m, int64_t n, int64_t k, double alpha,
                                         const double *a, int64_t lda, const double *b,
                                         int64_t ldb, double beta, double *c, int64_t ldc);

#define FLOE_CPU_SGEMM "floe_cpu_sgemm"
#define FLOE_CPU_DGEMM "floe_cpu_dgemm"

#ifdef __cplusplus
}
#endif
#endif /* FLOE_CPU_H */
