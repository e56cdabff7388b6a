/*
 * dev_cuda.c - the CUDA device plugin: finds the GPUs, registers one device "GPU"
 * per visible GPU (priority 100, so nodes with a GPU kernel go there), and
 * implements its floe_device_ops.
 *
 *   score()       no driver, no GPU, or all hidden: 0 with the reason as the note, so
 *                 `floe plugins` lists the plugin as skipped and why (not an error)
 *   memory        the caching allocator of allocator.c over cudaMalloc/cudaFree, limited
 *                 to FLOE_CUDA_MEMORY_FRACTION of the memory free at start-up
 *   copies        host->device through pinned staging buffers (returns once the bytes
 *                 are staged: the host buffer may be reused, the copy runs on),
 *                 device->host staged and waited for, device->device and peer copies
 *                 queued on the compute stream (peer copies wait on the source's
 *                 stream through an event)
 *   synchronize   waits for the compute stream; an asynchronous kernel failure
 *                 surfaces here or at the next copy to the host
 *   proc_address  DEV_CUDA__STATE_SYMBOL: the device state, for the kernels
 *
 * Sections: device memory and copies; the ops table; setting a device up and down;
 * score and init.
 */
#include "gpu-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static floe_plugin *plugin_self;

/* ---- Device memory ----------------------------------------------------------------- */

static floe_status backend_reserve(void *ctx, size_t n, void **out) {
    dev_cuda__device *d = ctx;
    cudaError_t e;

    cudaSetDevice(d->ordinal);
    e = cudaMalloc(out, n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error state of this thread */
        *out = NULL;
        return dev_cuda__fail_cuda(e, "cudaMalloc");
    }
    return FLOE_OK;
}

static void backend_release(void *ctx, void *ptr, size_t n) {
    dev_cuda__device *d = ctx;
    (void)n;
    cudaSetDevice(d->ordinal);
    cudaFree(ptr); /* synchronizes the device: only on trim and teardown */
}

static void device_teardown(dev_cuda__device *d);

static floe_status gpu_alloc(void *dev, size_t nbytes, void **out) {
    dev_cuda__device *d = dev;
    return dev_cuda__allocator_alloc(d->alloc, nbytes, out);
}

/* The free that empties a destroyed device tears it down; the lock makes sure exactly
 * one free sees that. */
static void gpu_free(void *dev, void *ptr, size_t nbytes) {
    dev_cuda__device *d = dev;
    floe_device_memory_stats s;
    bool last;
    floe_status st;

    (void)nbytes;
    if (ptr == NULL)
        return;
    pthread_mutex_lock(&d->life_lock);
    st = dev_cuda__allocator_dealloc(d->alloc, ptr);
    dev_cuda__allocator_stats(d->alloc, &s);
    last = d->destroyed && !d->torn_down && s.bytes_in_use == 0;
    d->torn_down = d->torn_down || last;
    pthread_mutex_unlock(&d->life_lock);
    if (st != FLOE_OK)
        floe_log(plugin_self, FLOE_PLUGIN_LOG_ERROR, "GPU:%d: free of %p, which it did not allocate",
                 d->index, ptr);
    if (last)
        device_teardown(d);
}

floe_status dev_cuda__scratch(dev_cuda__device *d, size_t n, void **out) {
    *out = NULL;
    if (n == 0)
        return FLOE_OK;
    return dev_cuda__allocator_alloc(d->alloc, n, out);
}

void dev_cuda__scratch_free(dev_cuda__device *d, void *p) {
    (void)dev_cuda__allocator_dealloc(d->alloc, p);
}

/* ---- Copies -------------------------------------------------------------------------- */

static floe_status copy_args(const char *what, void *dst, const void *src, size_t n) {
    if (n > 0 && (dst == NULL || src == NULL))
        return floe_fail(FLOE_INVALID_ARGUMENT, "GPU %s: NULL pointer for %zu bytes", what, n);
    return FLOE_OK;
}

static floe_status gpu_copy_to_device(void *dev, void *dst, const void *src, size_t n) {
    dev_cuda__device *d = dev;
    floe_status st = copy_args("copy_to_device", dst, src, n);
    int k = 0;

    cudaSetDevice(d->ordinal);
    pthread_mutex_lock(&d->staging_lock);
    for (size_t off = 0; st == FLOE_OK && off < n; off += d->staging_bytes, k ^= 1) {
        size_t len = n - off < d->staging_bytes ? n - off : d->staging_bytes;
        /* The buffer's previous copy must have left it before the host refills it. */
        st = dev_cuda__fail_cuda(cudaEventSynchronize(d->staging_done[k]), "copy to GPU");
        if (st != FLOE_OK)
            break;
        memcpy(d->staging[k], (const char *)src + off, len);
        st = dev_cuda__fail_cuda(cudaMemcpyAsync((char *)dst + off, d->staging[k], len,
                                                 cudaMemcpyHostToDevice, d->stream),
                                 "copy to GPU");
        if (st == FLOE_OK)
            st = dev_cuda__fail_cuda(cudaEventRecord(d->staging_done[k], d->stream),
                                     "copy to GPU");
    }
    pthread_mutex_unlock(&d->staging_lock);
    return st;
}

static floe_status stage_out(dev_cuda__device *d, int k, const char *src, size_t len) {
    floe_status st = dev_cuda__fail_cuda(
        cudaMemcpyAsync(d->staging[k], src, len, cudaMemcpyDeviceToHost, d->stream),
        "copy from GPU");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaEventRecord(d->staging_done[k], d->stream), "copy from GPU");
    return st;
}

/* Chunk i goes through buffer i % 2: the GPU fills one while the host empties the other. */
static floe_status gpu_copy_from_device(void *dev, void *dst, const void *src, size_t n) {
    dev_cuda__device *d = dev;
    floe_status st = copy_args("copy_from_device", dst, src, n);
    size_t chunk = d->staging_bytes, nchunks = (n + chunk - 1) / chunk;

    if (st != FLOE_OK || n == 0)
        return st;
    cudaSetDevice(d->ordinal);
    pthread_mutex_lock(&d->staging_lock);
    st = stage_out(d, 0, src, n < chunk ? n : chunk);
    for (size_t i = 0; st == FLOE_OK && i < nchunks; i++) {
        size_t off = i * chunk, len = n - off < chunk ? n - off : chunk;
        if (i + 1 < nchunks) {
            size_t noff = off + chunk, nlen = n - noff < chunk ? n - noff : chunk;
            st = stage_out(d, (int)((i + 1) & 1), (const char *)src + noff, nlen);
        }
        if (st == FLOE_OK)
            st = dev_cuda__fail_cuda(cudaEventSynchronize(d->staging_done[i & 1]),
                                     "copy from GPU (or an earlier kernel on the GPU)");
        if (st == FLOE_OK)
            memcpy((char *)dst + off, d->staging[i & 1], len);
    }
    pthread_mutex_unlock(&d->staging_lock);
    return st;
}

static floe_status gpu_copy_on_device(void *dev, void *dst, const void *src, size_t n) {
    dev_cuda__device *d = dev;
    floe_status st = copy_args("copy_on_device", dst, src, n);
    if (st != FLOE_OK || n == 0)
        return st;
    cudaSetDevice(d->ordinal);
    return dev_cuda__fail_cuda(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, d->stream),
                               "copy on GPU");
}

/* The copy runs on the destination's stream once the source's stream has produced
 * @src; the source's stream then waits for the copy before it may reuse @src. */
static floe_status gpu_copy_peer(void *dst_dev, void *dst, void *src_dev, const void *src,
                                 size_t n) {
    dev_cuda__device *dd = dst_dev, *sd = src_dev;
    floe_status st = copy_args("copy_peer", dst, src, n);

    if (st != FLOE_OK || n == 0)
        return st;
    cudaSetDevice(sd->ordinal);
    st = dev_cuda__fail_cuda(cudaEventRecord(sd->peer_event, sd->stream), "peer copy");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaStreamWaitEvent(dd->stream, sd->peer_event, 0), "peer copy");
    cudaSetDevice(dd->ordinal);
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(
            cudaMemcpyPeerAsync(dst, dd->ordinal, src, sd->ordinal, n, dd->stream), "peer copy");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaEventRecord(dd->peer_event, dd->stream), "peer copy");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaStreamWaitEvent(sd->stream, dd->peer_event, 0), "peer copy");
    return st;
}

static floe_status gpu_synchronize(void *dev) {
    dev_cuda__device *d = dev;
    cudaSetDevice(d->ordinal);
    return dev_cuda__fail_cuda(cudaStreamSynchronize(d->stream),
                               "GPU synchronize (a kernel queued earlier failed)");
}

/* ---- The ops table ------------------------------------------------------------------- */

static void *gpu_proc_address(void *dev, const char *symbol) {
    if (symbol != NULL && strcmp(symbol, DEV_CUDA__STATE_SYMBOL) == 0)
        return dev;
    return NULL;
}

static floe_status gpu_memory_stats(void *dev, floe_device_memory_stats *out) {
    dev_cuda__device *d = dev;
    if (out == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "GPU memory_stats: NULL out");
    dev_cuda__allocator_stats(d->alloc, out);
    return FLOE_OK;
}

/* The state lives until the last allocation comes back (the core may free tensors,
 * variables for instance, after destroying the device). */
static void gpu_destroy(void *dev) {
    dev_cuda__device *d = dev;
    floe_device_memory_stats s;
    bool now;

    if (d == NULL)
        return;
    cudaSetDevice(d->ordinal);
    cudaStreamSynchronize(d->stream);
    pthread_mutex_lock(&d->life_lock);
    d->destroyed = true;
    dev_cuda__allocator_stats(d->alloc, &s);
    now = s.bytes_in_use == 0 && !d->torn_down;
    d->torn_down = d->torn_down || now;
    pthread_mutex_unlock(&d->life_lock);
    if (now)
        device_teardown(d);
}

static const floe_device_ops gpu_ops = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_device_ops),
    .alloc = gpu_alloc,
    .free = gpu_free,
    .copy_to_device = gpu_copy_to_device,
    .copy_from_device = gpu_copy_from_device,
    .copy_on_device = gpu_copy_on_device,
    .synchronize = gpu_synchronize,
    .copy_peer = gpu_copy_peer,
    .proc_address = gpu_proc_address,
    .memory_stats = gpu_memory_stats,
    .destroy = gpu_destroy,
};

/* cudaSetDevice on every call: it only sets the runtime's thread-local current device,
 * and copies for another GPU may have changed it on this thread since. */
dev_cuda__device *dev_cuda__kernel_gpu(floe_kernel_ctx *kc) {
    floe_device *fd = floe_kernel_device(kc);
    dev_cuda__device *d = fd != NULL ? floe_device_proc_address(fd, DEV_CUDA__STATE_SYMBOL) : NULL;

    if (d == NULL) {
        floe_fail(FLOE_INTERNAL, "a dev_cuda kernel runs on a device that is not a dev_cuda GPU");
        return NULL;
    }
    if (dev_cuda__fail_cuda(cudaSetDevice(d->ordinal), "cudaSetDevice") != FLOE_OK)
        return NULL;
    return d;
}

floe_status dev_cuda__check_launch(const char *what) {
    return dev_cuda__fail_cuda(cudaGetLastError(), what);
}

/* ---- Setting a device up and down --------------------------------------------------- */

static void device_teardown(dev_cuda__device *d) {
    int leaked;

    cudaSetDevice(d->ordinal);
    cudaStreamSynchronize(d->stream);
    if (d->blas != NULL)
        dev_cuda__blas.cublasDestroy_v2(d->blas);
    if (d->dnn != NULL)
        dev_cuda__dnn.cudnnDestroy(d->dnn);
    for (int k = 0; k < 2; k++) {
        if (d->staging_done[k] != NULL)
            cudaEventDestroy(d->staging_done[k]);
        if (d->staging[k] != NULL)
            cudaFreeHost(d->staging[k]);
    }
    if (d->peer_event != NULL)
        cudaEventDestroy(d->peer_event);
    leaked = dev_cuda__allocator_free_all(d->alloc);
    if (leaked > 0)
        floe_log(plugin_self, FLOE_PLUGIN_LOG_WARNING, "GPU:%d: %d allocations never freed",
                 d->index, leaked);
    if (d->stream != NULL)
        cudaStreamDestroy(d->stream);
    pthread_mutex_destroy(&d->lib_lock);
    pthread_mutex_destroy(&d->staging_lock);
    pthread_mutex_destroy(&d->life_lock);
    floe_free(d);
}

static floe_status setup_streams(dev_cuda__device *d) {
    floe_status st = dev_cuda__fail_cuda(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking),
                                         "cudaStreamCreate");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaEventCreateWithFlags(&d->peer_event, cudaEventDisableTiming),
                                 "cudaEventCreate");
    for (int k = 0; k < 2 && st == FLOE_OK; k++) {
        st = dev_cuda__fail_cuda(cudaHostAlloc(&d->staging[k], d->staging_bytes, cudaHostAllocDefault),
                                 "cudaHostAlloc (pinned staging buffer)");
        if (st == FLOE_OK)
            st = dev_cuda__fail_cuda(
                cudaEventCreateWithFlags(&d->staging_done[k], cudaEventDisableTiming),
                "cudaEventCreate");
    }
    return st;
}

static floe_status setup_libs(dev_cuda__device *d) {
    int bs = dev_cuda__blas.cublasCreate_v2(&d->blas);
    floe_status st = dev_cuda__fail_cublas(bs, "cublasCreate");

    if (st == FLOE_OK)
        st = dev_cuda__fail_cublas(dev_cuda__blas.cublasSetStream_v2(d->blas, d->stream),
                                   "cublasSetStream");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cublas(
            dev_cuda__blas.cublasSetMathMode(d->blas, d->opts.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                         : CUBLAS_PEDANTIC_MATH),
            "cublasSetMathMode");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cudnn(dev_cuda__dnn.cudnnCreate(&d->dnn), "cudnnCreate");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cudnn(dev_cuda__dnn.cudnnSetStream(d->dnn, d->stream), "cudnnSetStream");
    return st;
}

static floe_status setup_allocator(dev_cuda__device *d) {
    dev_cuda__alloc_backend be = {d, backend_reserve, backend_release};
    size_t free_b = 0, total_b = 0;
    floe_status st = dev_cuda__fail_cuda(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    uint64_t limit;

    if (st != FLOE_OK)
        return st;
    limit = (uint64_t)((double)free_b * d->opts.memory_fraction);
    d->alloc = dev_cuda__allocator_new(&be, limit, d->opts.allow_growth);
    if (d->alloc == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "dev_cuda: out of host memory");
    return FLOE_OK;
}

/* A device for CUDA ordinal @ordinal; its description names the GPU, its compute
 * capability, memory and multiprocessors. */
static floe_status device_new(int ordinal, int index, const dev_cuda__options *opts,
                              dev_cuda__device **out) {
    dev_cuda__device *d = floe_alloc(sizeof(*d), 0);
    floe_status st;

    *out = NULL;
    if (d == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "dev_cuda: out of memory");
    memset(d, 0, sizeof(*d));
    d->ordinal = ordinal;
    d->index = index;
    d->opts = *opts;
    d->staging_bytes = opts->staging_bytes;
    pthread_mutex_init(&d->lib_lock, NULL);
    pthread_mutex_init(&d->staging_lock, NULL);
    pthread_mutex_init(&d->life_lock, NULL);
    st = dev_cuda__fail_cuda(cudaSetDevice(ordinal), "cudaSetDevice");
    if (st == FLOE_OK)
        st = dev_cuda__fail_cuda(cudaGetDeviceProperties(&d->prop, ordinal),
                                 "cudaGetDeviceProperties");
    if (st == FLOE_OK)
        st = setup_allocator(d);
    if (st == FLOE_OK)
        st = setup_streams(d);
    if (st == FLOE_OK)
        st = setup_libs(d);
    if (st != FLOE_OK) {
        device_teardown(d);
        return st;
    }
    snprintf(d->description, sizeof(d->description),
             "%s (compute %d.%d, %d SMs, CUDA ordinal %d%s)", d->prop.name, d->prop.major,
             d->prop.minor, d->prop.multiProcessorCount, ordinal,
             opts->allow_tf32 ? ", TF32 on" : "");
    *out = d;
    return FLOE_OK;
}

/* ---- Score and init ------------------------------------------------------------------- */

static const char *plain_getenv(const char *name) {
    return getenv(name);
}

/* The CUDA ordinals this context may use, in order; their count, or -1 (note set). */
static int visible_gpus(floe_plugin *self, const dev_cuda__options *o, int *ordinals, int max) {
    int count = 0, n = 0;
    cudaError_t e = cudaGetDeviceCount(&count);

    if (e != cudaSuccess) {
        floe_set_note(self, "no usable CUDA driver or GPU: %s: %s", cudaGetErrorName(e),
                      cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    for (int i = 0; i < count && n < max; i++)
        if (dev_cuda__options_visible(o, i))
            ordinals[n++] = i;
    if (n == 0)
        floe_set_note(self, "%d CUDA GPUs, none visible (FLOE_CUDA_VISIBLE_DEVICES)", count);
    return n;
}

static int dev_cuda_score(floe_plugin *self) {
    dev_cuda__options o;
    char err[256];
    int ordinals[64], n;

    if (dev_cuda__options_parse(plain_getenv, &o, err, sizeof(err)) != FLOE_OK) {
        floe_set_note(self, "%s", err);
        return 0;
    }
    n = visible_gpus(self, &o, ordinals, 64);
    if (n <= 0 && o.check_registration)
        return 1; /* kernels only, no device: nothing can be scheduled on them */
    return n > 0 ? 100 : 0;
}

static floe_status register_kernels(floe_plugin *self) {
    floe_status st = dev_cuda__register_blas(self);
    if (st == FLOE_OK)
        st = dev_cuda__register_dnn(self);
    if (st == FLOE_OK)
        st = dev_cuda__register_ops(self);
    return st;
}

/* One device per visible ordinal.  On failure the devices already registered are torn
 * down here: the core drops a failed init()'s registrations without destroying them. */
static floe_status register_devices(floe_plugin *self, const dev_cuda__options *o,
                                    const int *ordinals, int n) {
    dev_cuda__device *made[64];
    floe_status st = FLOE_OK;
    int nmade = 0;

    for (int i = 0; i < n && st == FLOE_OK; i++) {
        dev_cuda__device *d;
        floe_device_desc desc;
        if ((st = device_new(ordinals[i], i, o, &d)) != FLOE_OK)
            break;
        made[nmade++] = d;
        memset(&desc, 0, sizeof(desc));
        desc.struct_size = sizeof(desc);
        desc.type = "GPU";
        desc.index = i;
        desc.priority = 100;
        desc.flags = 0;
        desc.description = d->description;
        desc.memory_bytes = d->prop.totalGlobalMem;
        desc.ops = &gpu_ops;
        desc.state = d;
        st = floe_register_device(self, &desc);
    }
    if (st != FLOE_OK)
        for (int i = 0; i < nmade; i++)
            device_teardown(made[i]);
    return st;
}

static floe_status dev_cuda_init(floe_plugin *self, void **user) {
    dev_cuda__options o;
    char err[256];
    int ordinals[64], n;
    floe_status st;
    int rt = 0;

    *user = NULL;
    plugin_self = self;
    if (dev_cuda__options_parse(plain_getenv, &o, err, sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s", err);
    n = visible_gpus(self, &o, ordinals, 64);
    if (n <= 0 && o.check_registration)
        return register_kernels(self);
    if (n <= 0)
        return floe_fail(FLOE_UNAVAILABLE, "dev_cuda: no GPU (score() said so)");
    st = dev_cuda__libs_open();
    if (st == FLOE_OK)
        st = register_kernels(self);
    if (st == FLOE_OK)
        st = register_devices(self, &o, ordinals, n);
    if (st != FLOE_OK)
        return st;
    cudaRuntimeGetVersion(&rt);
    floe_set_note(self, "%d GPU%s; CUDA runtime %d.%d, cuDNN %zu; %s, memory fraction %.2f", n,
                  n == 1 ? "" : "s", rt / 1000, (rt % 1000) / 10, dev_cuda__dnn.cudnnGetVersion(),
                  o.allow_growth ? "allow_growth" : "reserved at first use", o.memory_fraction);
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE_FULL(dev_cuda, "0.1.0", "The Floe developers", "Apache-2.0",
                        "CUDA GPUs: caching allocator, one stream per GPU, cuBLAS, cuDNN 9 "
                        "and Floe's own CUDA kernels",
                        NULL, dev_cuda_score, dev_cuda_init, NULL)
