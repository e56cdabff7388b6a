/*
 * emu.h - the host emulation of the CUDA runtime, cuBLAS and cuDNN that lets the whole
 * dev_cuda plugin run, and be tested, on a machine without a GPU (test-only: it builds
 * floe_dev_cuda_emu.so in the build tree, never installed; see README.md, "Emulation").
 *
 * The plugin's own sources compile unchanged against the real CUDA headers; only the
 * implementations differ:
 *
 *   runtime.cc   the subset of the CUDA runtime API dev_cuda calls (cudaMalloc, streams,
 *                events, async copies...).  Every stream is a worker thread running its
 *                queue in order, so work really is asynchronous: a host read that forgets
 *                to wait for the stream sees stale bytes, as on a GPU.  Fresh device memory
 *                is filled with 0xff bytes (NaN as floats), so reading memory nobody wrote
 *                shows up in the results.
 *   device.h     what kernels.cu needs to compile as C++: threadIdx/blockIdx, __shared__,
 *                __syncthreads (each thread of a FLOE_LAUNCH_SYNC block is a fiber),
 *                atomicAdd, and the FLOE_LAUNCH macros' emulated form.
 *   cublas.c     the cuBLAS entry points of libs-impl.h, column-major, on OpenBLAS.
 *   cudnn.c      the cuDNN entry points of libs-impl.h: reference convolutions, softmax
 *                and batch normalisation that honour every descriptor field dev_cuda sets.
 *
 * The emulated libraries check what they are given as the real ones would (and, where
 * the real ones would read or write out of bounds, more strictly): a range outside every
 * live cudaMalloc block, a leading dimension too small, an unsupported descriptor.
 * Checks at call time return the library's error status; failures found while the work
 * runs make the stream's sticky error (cudaErrorIllegalAddress), returned by the next
 * synchronisation.  Both print the reason to stderr, prefixed "cuda-emu: ".
 */
#ifndef FLOE_DEV_CUDA_EMU_H
#define FLOE_DEV_CUDA_EMU_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Queues @fn(@arg copy) on @s, after everything queued on it before (NULL: the legacy
 * default stream, which first waits for every other stream).  @size bytes of @arg are
 * copied at the call and freed once @fn has run, so the caller may pass a stack struct. */
cudaError_t floe_cuda_emu_enqueue(cudaStream_t s, void (*fn)(void *arg), const void *arg,
                                  size_t size);

/* Whether [@p, @p + @n) lies inside one live cudaMalloc block (n == 0: any p, even NULL). */
bool floe_cuda_emu_is_device(const void *p, size_t n);

/* Prints "cuda-emu: <message>" to stderr.  Called from work running on a stream, also
 * makes that stream's sticky error cudaErrorIllegalAddress. */
void floe_cuda_emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The emulated libraries' entry points (cublas.c, cudnn.c) have the real names and
 * signatures; libs.c, built with FLOE_CUDA_EMU, takes their addresses instead of
 * dlopen'ing libcublas and libcudnn. */

#ifdef __cplusplus
}
#endif
#endif /* FLOE_DEV_CUDA_EMU_H */
