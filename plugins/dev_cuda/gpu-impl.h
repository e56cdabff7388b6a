/*
 * gpu-impl.h - the GPU device state shared by dev_cuda.c and the kernels (not
 * installed).  Includes the CUDA runtime headers, so the host-only parts of the
 * plugin (dev_cuda-impl.h) do not include it.
 */
#ifndef FLOE_DEV_CUDA_GPU_IMPL_H
#define FLOE_DEV_CUDA_GPU_IMPL_H

#include "dev_cuda-impl.h"
#include "libs-impl.h"

#include <cuda_runtime_api.h>

/* The symbol of floe_device_ops.proc_address that returns a dev_cuda__device *: how a
 * kernel, given only its floe_device, finds its stream and library handles. */
#define DEV_CUDA__STATE_SYMBOL "dev_cuda_device_state"

/* One GPU.  Everything queued for it goes to one compute stream, in the order the
 * executor issues it, so a kernel's inputs are ready when it runs and a freed block
 * may be reused by the next kernel without waiting.  The host waits only where it
 * must: copies to host memory and synchronize(). */
typedef struct dev_cuda__device {
    int ordinal;                    /* CUDA device ordinal */
    int index;                      /* Floe's "/device:GPU:<index>" */
    struct cudaDeviceProp prop;
    dev_cuda__options opts;
    cudaStream_t stream;
    cudaEvent_t peer_event;         /* cross-stream waits of copy_peer */
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    pthread_mutex_t lib_lock;       /* blas/dnn handles: one user at a time */
    dev_cuda__allocator *alloc;
    /* Pinned staging buffers for host<->device copies, used alternately so that the
     * host fills one while the GPU drains the other. */
    pthread_mutex_t staging_lock;
    void *staging[2];
    cudaEvent_t staging_done[2];
    size_t staging_bytes;
    pthread_mutex_t life_lock;      /* destroyed / last free */
    bool destroyed, torn_down;
    char description[256];
} dev_cuda__device;

/* The device of a kernel's node, made current on the calling thread; NULL (message
 * set) when the node is not on a dev_cuda device. */
dev_cuda__device *dev_cuda__kernel_gpu(floe_kernel_ctx *kc);
/* The error of the last launch on this thread (cudaGetLastError) as a status. */
floe_status dev_cuda__check_launch(const char *what);
/* Scratch device memory of @n bytes for the duration of one kernel (workspace). */
floe_status dev_cuda__scratch(dev_cuda__device *d, size_t n, void **out);
void dev_cuda__scratch_free(dev_cuda__device *d, void *p);

/* Kernel tables (blas.c, dnn.c, ops.c). */
floe_status dev_cuda__register_blas(floe_plugin *self);
floe_status dev_cuda__register_dnn(floe_plugin *self);
floe_status dev_cuda__register_ops(floe_plugin *self);

#endif /* FLOE_DEV_CUDA_GPU_IMPL_H */
