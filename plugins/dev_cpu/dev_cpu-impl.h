/*
 * dev_cpu-impl.h - shared declarations of the dev_cpu plugin (not installed).
 *
 * dev_cpu.c registers the device and dispatches its ops table to the three parts
 * declared here: the caching allocator (allocator.c), the GEMM extras handed out
 * through proc_address (gemm.c) and the CPU description (cpuinfo.c).
 */
#ifndef FLOE_DEV_CPU_IMPL_H
#define FLOE_DEV_CPU_IMPL_H

#include <floe/cpu.h>
#include <floe/plugin.h>
#include <stddef.h>
#include <stdint.h>

/* ---- allocator.c ------------------------------------------------------------------- */

/*
 * A caching allocator of 64-byte-aligned host memory.  Requests up to
 * DEV_CPU__BIG_BLOCK bytes are rounded up to a size class (powers of two and the
 * halves between them: 64, 96, 128, 192, ...) and freed blocks wait on their class's
 * free list for the next request of that class, up to @cache_limit cached bytes in
 * all.  Larger requests go straight to the host allocator and back.  The underlying
 * memory comes from host->alloc, so the tests' allocation-failure injection reaches it.
 * All calls are thread-safe.
 */
typedef struct dev_cpu__allocator dev_cpu__allocator;

#define DEV_CPU__BIG_BLOCK ((size_t)64 << 20)

/* A new allocator (host memory), or NULL when out of memory.  @self (nullable) is the
 * plugin, for log messages on misuse (a pointer freed twice or never allocated). */
dev_cpu__allocator *dev_cpu__allocator_new(floe_plugin *self, uint64_t cache_limit);
/* Hands @payload (host->alloc memory, the device state) to the allocator: it is freed
 * with host->free together with the allocator, so a block freed after the device was
 * destroyed still finds the state it is passed with. */
void dev_cpu__allocator_set_payload(dev_cpu__allocator *a, void *payload);
/* Drops the owner's reference: frees the cached blocks now, and the allocator itself
 * (and its payload) once the last block still in use comes back. */
void dev_cpu__allocator_release(dev_cpu__allocator *a);
/* *@out: @nbytes (0 is treated as 1) aligned to 64 bytes.  FLOE_RESOURCE_EXHAUSTED,
 * with a message, when the host has none left even after emptying the cache. */
floe_status dev_cpu__allocator_alloc(dev_cpu__allocator *a, size_t nbytes, void **out);
/* Returns a block from dev_cpu__allocator_alloc (NULL: no-op). */
void dev_cpu__allocator_free(dev_cpu__allocator *a, void *ptr);
/* Gives every cached block back to the host. */
void dev_cpu__allocator_trim(dev_cpu__allocator *a);
/* Bytes in use and cached count whole size classes (what is reserved). */
void dev_cpu__allocator_stats(dev_cpu__allocator *a, floe_device_memory_stats *out);
/* The size class a request of @nbytes is served from; @nbytes itself for big blocks. */
size_t dev_cpu__allocator_class_size(size_t nbytes);

/* ---- gemm.c -------------------------------------------------------------------------- */

/* Prepares the BLAS libraries (OpenBLAS limited to one thread); call in init(). */
void dev_cpu__gemm_init(void);
/* A CPU device came or went: the process-wide cache of oneDNN primitives behind sgemm
 * lives while at least one device does (the sgemm call has no device argument).  Every
 * device_up() is matched by one device_down(). */
void dev_cpu__gemm_device_up(void);
void dev_cpu__gemm_device_down(void);
/* The floe_cpu_sgemm_fn / floe_cpu_dgemm_fn implementations, or NULL when the plugin
 * was built without a library providing them (kernels then use their own loops). */
floe_cpu_sgemm_fn dev_cpu__sgemm(void);
floe_cpu_dgemm_fn dev_cpu__dgemm(void);
/* "oneDNN 2.6.3", "OpenBLAS 0.3.21", ... for the device description. */
const char *dev_cpu__gemm_library(void);

/* ---- cpuinfo.c ------------------------------------------------------------------------ */

typedef struct dev_cpu__info {
    char model[128];         /* "AMD EPYC 9R45", from /proc/cpuinfo; "unknown CPU" */
    int cores;               /* online logical processors */
    int has_avx2, has_fma, has_avx512f;
    uint64_t memory_bytes;   /* physical memory; 0 if unknown */
} dev_cpu__info;

/* Fills @info; never fails (unknown fields get neutral values). */
void dev_cpu__cpuinfo_read(dev_cpu__info *info);
/* "AMD EPYC 9R45 (2 cores, AVX-512)" into @buf of @len bytes. */
void dev_cpu__cpuinfo_describe(const dev_cpu__info *info, char *buf, size_t len);

#endif /* FLOE_DEV_CPU_IMPL_H */
