/*
 * dev_cuda-impl.h - shared declarations of the dev_cuda plugin (not installed).
 *
 * The plugin is split so that everything that can be checked without a GPU is plain
 * C with no CUDA call in it, and unit-tested by tests/plugins/test_dev_cuda_host.c:
 *
 *   options.c    FLOE_CUDA_* environment variables -> dev_cuda__options
 *   allocator.c  the caching allocator's bookkeeping (regions, chunks, best fit,
 *                coalescing, statistics), over a backend that supplies raw memory
 *   status.c     CUDA, cuBLAS and cuDNN error codes -> floe_status with the message
 *   bcast.c      broadcasting, reduction and transpose index plans for the kernels
 *
 * and the parts that talk to CUDA:
 *
 *   libs.c       cuBLAS and cuDNN opened lazily with dlopen (only once a GPU is found)
 *   dev_cuda.c   enumeration, registration, the floe_device_ops (stream, staging)
 *   blas.c       MatMul, BatchMatMulV2 through cuBLAS
 *   dnn.c        Conv2D and backprops, pooling and gradients, softmax through cuDNN
 *   ops.c        registration and host side of Floe's own kernels
 *   kernels.cu   Floe's own CUDA kernels (elementwise, reductions, training ops, ...)
 */
#ifndef FLOE_DEV_CUDA_IMPL_H
#define FLOE_DEV_CUDA_IMPL_H

#include <floe/plugin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- options.c ------------------------------------------------------------------- */

/*
 * The options of TensorFlow's GPUOptions, read from the environment when a context
 * loads the plugin (each context reads them again):
 *
 *   FLOE_CUDA_ALLOW_GROWTH=0|1         1: reserve device memory as it is needed;
 *                                      0 (default, as TensorFlow): reserve the whole
 *                                      limit at the first allocation
 *   FLOE_CUDA_MEMORY_FRACTION=F        per_process_gpu_memory_fraction, 0 < F <= 1
 *                                      (default 0.9 of the memory free at start-up)
 *   FLOE_CUDA_ALLOW_TF32=0|1           TF32 tensor cores in cuBLAS/cuDNN (default 0)
 *   FLOE_CUDA_VISIBLE_DEVICES=0,2      the GPUs to use (default all; empty: none)
 *   FLOE_CUDA_STAGING_MB=N             pinned staging buffer per device (default 8)
 *   FLOE_CUDA_CHECK_REGISTRATION=1     tests only: with no GPU, still register the
 *                                      kernels (no device), so the tables are checked
 */
typedef struct dev_cuda__options {
    bool allow_growth;
    double memory_fraction;
    bool allow_tf32;
    bool visible_all;            /* FLOE_CUDA_VISIBLE_DEVICES unset */
    int nvisible;
    int visible[64];
    size_t staging_bytes;
    bool check_registration;
} dev_cuda__options;

/* Reads the options through @getenv_fn (getenv in the plugin, a table in tests).
 * Returns FLOE_INVALID_ARGUMENT with a message in @err naming the variable and its
 * value when one is malformed; @out then holds the defaults. */
floe_status dev_cuda__options_parse(const char *(*getenv_fn)(const char *name),
                                    dev_cuda__options *out, char *err, size_t errlen);
/* True when CUDA ordinal @ordinal is visible under @o. */
bool dev_cuda__options_visible(const dev_cuda__options *o, int ordinal);

/* ---- allocator.c ------------------------------------------------------------------- */

/*
 * The device memory allocator: a best-fit allocator with coalescing in the style of
 * TensorFlow's BFC allocator.  Device memory is reserved in regions from the backend
 * (cudaMalloc in the plugin) and handed out in chunks of multiples of 256 bytes;
 * freed chunks merge with free neighbours and stay cached for the next request.
 *
 *   allow_growth = false: the first allocation reserves the whole @limit as one region.
 *   allow_growth = true:  regions grow on demand (2 MiB, then doubling), up to @limit.
 *
 * When a request does not fit, regions with nothing in use go back to the backend and
 * the request is tried once more.  All calls are thread-safe.
 */
typedef struct dev_cuda__alloc_backend {
    void *ctx;
    /* Reserves @nbytes; FLOE_OK with *@out set, or an error (message set). */
    floe_status (*reserve)(void *ctx, size_t nbytes, void **out);
    void (*release)(void *ctx, void *ptr, size_t nbytes);
} dev_cuda__alloc_backend;

typedef struct dev_cuda__allocator dev_cuda__allocator;

#define DEV_CUDA__ALIGN ((size_t)256)
#define DEV_CUDA__MIN_REGION ((size_t)2 << 20)

/* A new allocator of at most @limit bytes (> 0); NULL when out of host memory. */
dev_cuda__allocator *dev_cuda__allocator_new(const dev_cuda__alloc_backend *backend,
                                             uint64_t limit, bool allow_growth);
/* Releases every region (chunks still in use are reported by the return value: the
 * number of chunks that were still allocated, 0 when clean) and frees @a. */
int dev_cuda__allocator_free_all(dev_cuda__allocator *a);
/* *@out: @nbytes (> 0) of device memory aligned to 256.  FLOE_RESOURCE_EXHAUSTED with
 * a message giving the request, the limit and the statistics when it cannot be had. */
floe_status dev_cuda__allocator_alloc(dev_cuda__allocator *a, size_t nbytes, void **out);
/* Returns a chunk.  FLOE_INVALID_ARGUMENT for a pointer the allocator did not hand out
 * (or already took back); NULL is a no-op. */
floe_status dev_cuda__allocator_dealloc(dev_cuda__allocator *a, void *ptr);
/* Releases the regions with nothing in use; returns the bytes released. */
uint64_t dev_cuda__allocator_trim(dev_cuda__allocator *a);
void dev_cuda__allocator_stats(dev_cuda__allocator *a, floe_device_memory_stats *out);
/* The size a request of @nbytes occupies (a multiple of DEV_CUDA__ALIGN; 0 on overflow). */
size_t dev_cuda__allocator_round(size_t nbytes);

/* ---- status.c ---------------------------------------------------------------------- */

/* The floe_status for a CUDA runtime error (cudaError_t as int), cuBLAS status and
 * cuDNN status: out of memory -> RESOURCE_EXHAUSTED, bad values -> INVALID_ARGUMENT,
 * no device/driver -> UNAVAILABLE, unsupported -> UNIMPLEMENTED, the rest INTERNAL. */
floe_status dev_cuda__status_cuda(int err);
floe_status dev_cuda__status_cublas(int st);
floe_status dev_cuda__status_cudnn(int st);
/* Fails (host->fail) with "WHAT: NAME: MESSAGE (CUDA error N)" for a CUDA runtime error;
 * FLOE_OK for 0 (cudaSuccess) without touching the message. */
floe_status dev_cuda__fail_cuda(int err, const char *what);
floe_status dev_cuda__fail_cublas(int st, const char *what);
floe_status dev_cuda__fail_cudnn(int st, const char *what);
/* The name of a cuBLAS status ("CUBLAS_STATUS_ALLOC_FAILED"), never NULL. */
const char *dev_cuda__cublas_name(int st);
/* "[2,3]": a shape for error messages, written as the CPU kernels write it, so that an
 * op fails with the same message on either device. */
void dev_cuda__format_dims(const int64_t *dims, int ndim, char *buf, size_t len);

/* ---- bcast.c ------------------------------------------------------------------------ */

#define DEV_CUDA__MAX_DIMS 8

/* Broadcasting plan of z = f(x, y): dims of the output with strides of x and y
 * (0 where broadcast), collapsed to the fewest dimensions. */
typedef struct dev_cuda__bcast {
    int ndim;                          /* 0: scalar output */
    int64_t dims[DEV_CUDA__MAX_DIMS];
    int64_t xstride[DEV_CUDA__MAX_DIMS];
    int64_t ystride[DEV_CUDA__MAX_DIMS];
    int64_t n;                         /* output elements */
    int out_ndim;                      /* the output shape, uncollapsed */
    int64_t out_dims[DEV_CUDA__MAX_DIMS];
    bool same;                         /* x, y and z have one shape */
    bool y_scalar, x_scalar;
} dev_cuda__bcast;

/* Numpy broadcasting of shapes @xd[@xn] and @yd[@yn].  FLOE_INVALID_ARGUMENT (message
 * set through @fail, which may be NULL) when they are incompatible. */
floe_status dev_cuda__bcast_plan(const int64_t *xd, int xn, const int64_t *yd, int yn,
                                 dev_cuda__bcast *out, char *err, size_t errlen);

/* A reduction of @dims[@ndim] over a set of axes, collapsed to alternating kept and
 * reduced runs: the kernels index input element (o, r) of output o and reduction
 * index r through dims/strides. */
typedef struct dev_cuda__reduce {
    int64_t nout;                      /* output elements */
    int64_t nred;                      /* elements reduced into each */
    int nkeep;                         /* kept dims (outer to inner) */
    int64_t keep_dims[DEV_CUDA__MAX_DIMS];
    int64_t keep_stride[DEV_CUDA__MAX_DIMS];
    int nred_dims;
    int64_t red_dims[DEV_CUDA__MAX_DIMS];
    int64_t red_stride[DEV_CUDA__MAX_DIMS];
    int out_ndim;                      /* output shape honouring keep_dims */
    int64_t out_dims[DEV_CUDA__MAX_DIMS];
} dev_cuda__reduce;

/* Plans the reduction of @dims[@ndim] over @axes[@naxes] (negative axes count from the
 * end; repeats allowed).  FLOE_INVALID_ARGUMENT in @err for an axis out of range. */
floe_status dev_cuda__reduce_plan(const int64_t *dims, int ndim, const int64_t *axes,
                                  int naxes, bool keep_dims, dev_cuda__reduce *out, char *err,
                                  size_t errlen);

/* Transpose plan: output dims and the input stride of each output dim. */
typedef struct dev_cuda__transpose {
    int ndim;
    int64_t out_dims[DEV_CUDA__MAX_DIMS];
    int64_t in_stride[DEV_CUDA__MAX_DIMS];
    int64_t n;
} dev_cuda__transpose;

floe_status dev_cuda__transpose_plan(const int64_t *dims, int ndim, const int64_t *perm,
                                     int nperm, dev_cuda__transpose *out, char *err,
                                     size_t errlen);

#endif /* FLOE_DEV_CUDA_IMPL_H */
