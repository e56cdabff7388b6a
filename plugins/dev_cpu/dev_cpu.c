/*
 * dev_cpu.c - the CPU device plugin: registers device "CPU" index 0 (priority 0,
 * host memory) and implements its floe_device_ops.
 *
 *   memory        the caching allocator of allocator.c (64-byte aligned); its cache
 *                 holds at most min(1 GiB, physical memory / 4), or
 *                 FLOE_CPU_CACHE_MB megabytes when that variable is set (0: no cache)
 *   copies        memcpy: device memory is host memory
 *   synchronize   nothing to wait for: CPU kernels finish before they return
 *   proc_address  FLOE_CPU_SGEMM and FLOE_CPU_DGEMM (floe/cpu.h), from gemm.c
 *   description   "MODEL (N cores, ISA, GEMM: LIBRARY)", from cpuinfo.c
 *
 * One device (and one allocator) per context: init() may run once per floe_context.
 */
#include "dev_cpu-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dev_cpu_state {
    dev_cpu__allocator *allocator;
    dev_cpu__info info;
    char description[320];
} dev_cpu_state;

/* ---- Memory and copies ------------------------------------------------------------- */

static floe_status cpu_alloc(void *dev, size_t nbytes, void **out) {
    dev_cpu_state *s = dev;
    return dev_cpu__allocator_alloc(s->allocator, nbytes, out);
}

static void cpu_free(void *dev, void *ptr, size_t nbytes) {
    dev_cpu_state *s = dev;
    (void)nbytes; /* the block's header knows its size */
    dev_cpu__allocator_free(s->allocator, ptr);
}

static floe_status copy_check(const char *what, void *dst, const void *src, size_t n) {
    if (n > 0 && (dst == NULL || src == NULL))
        return floe_fail(FLOE_INVALID_ARGUMENT, "CPU %s: NULL pointer for %zu bytes", what, n);
    return FLOE_OK;
}

static floe_status cpu_copy_to_device(void *dev, void *dst, const void *host_src, size_t n) {
    floe_status st = copy_check("copy_to_device", dst, host_src, n);
    if (st == FLOE_OK && n > 0)
        memcpy(dst, host_src, n);
    return st;
}

static floe_status cpu_copy_from_device(void *dev, void *host_dst, const void *src, size_t n) {
    floe_status st = copy_check("copy_from_device", host_dst, src, n);
    if (st == FLOE_OK && n > 0)
        memcpy(host_dst, src, n);
    return st;
}

static floe_status cpu_copy_on_device(void *dev, void *dst, const void *src, size_t n) {
    floe_status st = copy_check("copy_on_device", dst, src, n);
    if (st == FLOE_OK && n > 0)
        memmove(dst, src, n);
    return st;
}

static floe_status cpu_synchronize(void *dev) {
    return FLOE_OK;
}

/* ---- Extras, statistics, teardown ---------------------------------------------------- */

static void *cpu_proc_address(void *dev, const char *symbol) {
    if (symbol == NULL)
        return NULL;
    if (strcmp(symbol, FLOE_CPU_SGEMM) == 0)
        return (void *)dev_cpu__sgemm();
    if (strcmp(symbol, FLOE_CPU_DGEMM) == 0)
        return (void *)dev_cpu__dgemm();
    return NULL;
}

static floe_status cpu_memory_stats(void *dev, floe_device_memory_stats *out) {
    dev_cpu_state *s = dev;
    if (out == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "CPU memory_stats: NULL out");
    dev_cpu__allocator_stats(s->allocator, out);
    return FLOE_OK;
}

/* The state is the allocator's payload: it lives until the last block comes back. */
static void cpu_destroy(void *dev) {
    dev_cpu_state *s = dev;
    if (s == NULL)
        return;
    dev_cpu__gemm_device_down();
    dev_cpu__allocator_release(s->allocator);
}

static const floe_device_ops cpu_ops = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_device_ops),
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_to_device = cpu_copy_to_device,
    .copy_from_device = cpu_copy_from_device,
    .copy_on_device = cpu_copy_on_device,
    .synchronize = cpu_synchronize,
    .copy_peer = NULL,
    .proc_address = cpu_proc_address,
    .memory_stats = cpu_memory_stats,
    .destroy = cpu_destroy,
};

/* ---- Registration --------------------------------------------------------------------- */

static uint64_t cache_limit(const dev_cpu__info *info) {
    const char *env = getenv("FLOE_CPU_CACHE_MB");
    uint64_t limit = (uint64_t)1 << 30;

    if (env != NULL && *env != '\0') {
        char *end;
        unsigned long long mb = strtoull(env, &end, 10);
        if (*end == '\0' && mb < ((uint64_t)1 << 44))
            return (uint64_t)mb << 20;
    }
    if (info->memory_bytes > 0 && info->memory_bytes / 4 < limit)
        limit = info->memory_bytes / 4;
    return limit;
}

static floe_status dev_cpu_init(floe_plugin *self, void **user) {
    floe_device_desc desc;
    dev_cpu_state *s;
    floe_status st;

    *user = NULL;
    dev_cpu__gemm_init();
    s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "dev_cpu: out of memory");
    memset(s, 0, sizeof(*s));
    dev_cpu__cpuinfo_read(&s->info);
    dev_cpu__cpuinfo_describe(&s->info, s->description, sizeof(s->description));
    s->allocator = dev_cpu__allocator_new(self, cache_limit(&s->info));
    if (s->allocator == NULL) {
        st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "dev_cpu: out of memory");
        goto fail_free_state;
    }

    memset(&desc, 0, sizeof(desc));
    desc.struct_size = sizeof(desc);
    desc.type = "CPU";
    desc.index = 0;
    desc.priority = 0;
    desc.flags = FLOE_DEVICE_HOST_MEMORY;
    desc.description = s->description;
    desc.memory_bytes = s->info.memory_bytes;
    desc.ops = &cpu_ops;
    desc.state = s;
    dev_cpu__gemm_device_up();
    st = floe_register_device(self, &desc);
    if (st != FLOE_OK)
        goto fail_gemm_down;
    dev_cpu__allocator_set_payload(s->allocator, s);
    floe_set_note(self, "%s", s->description);
    return FLOE_OK;

fail_gemm_down:
    dev_cpu__gemm_device_down();
    dev_cpu__allocator_release(s->allocator);
fail_free_state:
    floe_free(s);
    return st;
}

FLOE_PLUGIN_DEFINE(dev_cpu, "0.1.0", "The Floe developers", "Apache-2.0",
                   "CPU device: caching 64-byte-aligned allocator, oneDNN/OpenBLAS GEMM on "
                   "Floe's thread pool",
                   dev_cpu_init, NULL)
