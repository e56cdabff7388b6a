/*
 * test_dev_cuda_host.c - the parts of dev_cuda that need no GPU, run everywhere:
 *
 *   options     FLOE_CUDA_* parsing: defaults, every variable, malformed values named
 *   allocator   the caching allocator's bookkeeping over a host-memory backend:
 *               rounding, best fit, splitting and coalescing, allow_growth and the
 *               reserve-everything mode, the limit, trim-and-retry when the backend
 *               refuses, statistics, double frees, leaks at teardown, a randomized
 *               model check and concurrent use
 *   status      CUDA runtime, cuBLAS and cuDNN codes -> floe_status with the message
 *   libs        cuBLAS and cuDNN found and opened with dlopen (no GPU needed)
 *   plans       broadcasting, reduction and transpose index plans
 *   plugin      floe_dev_cuda.so loads on this machine without a GPU, is skipped with
 *               the reason, registers nothing schedulable; with the registration check
 *               every GPU kernel definition is accepted by the core, and graphs still
 *               run on the CPU
 *
 * Links the core archive (the real host table stands behind floe_fail) and dev_cuda's
 * host-only sources.
 */
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include "../../plugins/dev_cuda/dev_cuda-impl.h"
#include "../../plugins/dev_cuda/libs-impl.h"

#include "test_common.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const floe_host floe__host_table;
const floe_host *floe__host = &floe__host_table;

/* ---- Options --------------------------------------------------------------------------- */

static const char *env_table[16][2];

static const char *table_getenv(const char *name) {
    for (int i = 0; i < 16 && env_table[i][0] != NULL; i++)
        if (strcmp(env_table[i][0], name) == 0)
            return env_table[i][1];
    return NULL;
}

static void env_set(int i, const char *name, const char *value) {
    env_table[i][0] = name;
    env_table[i][1] = value;
    env_table[i + 1][0] = NULL;
}

static void options_defaults_match_tensorflow(void **state) {
    dev_cuda__options o;
    char err[128];
    env_table[0][0] = NULL;
    assert_int_equal(dev_cuda__options_parse(table_getenv, &o, err, sizeof(err)), FLOE_OK);
    assert_false(o.allow_growth);
    assert_true(o.memory_fraction > 0.89 && o.memory_fraction < 0.91);
    assert_false(o.allow_tf32);
    assert_true(o.visible_all);
    assert_true(dev_cuda__options_visible(&o, 7));
    assert_int_equal(o.staging_bytes, 8u << 20);
    assert_false(o.check_registration);
}

static void options_parse_every_variable(void **state) {
    dev_cuda__options o;
    char err[128];
    env_set(0, "FLOE_CUDA_ALLOW_GROWTH", "1");
    env_set(1, "FLOE_CUDA_MEMORY_FRACTION", "0.25");
    env_set(2, "FLOE_CUDA_ALLOW_TF32", "true");
    env_set(3, "FLOE_CUDA_VISIBLE_DEVICES", "2,0");
    env_set(4, "FLOE_CUDA_STAGING_MB", "16");
    env_set(5, "FLOE_CUDA_CHECK_REGISTRATION", "yes");
    assert_int_equal(dev_cuda__options_parse(table_getenv, &o, err, sizeof(err)), FLOE_OK);
    assert_true(o.allow_growth);
    assert_true(o.memory_fraction == 0.25);
    assert_true(o.allow_tf32);
    assert_false(o.visible_all);
    assert_int_equal(o.nvisible, 2);
    assert_true(dev_cuda__options_visible(&o, 0));
    assert_true(dev_cuda__options_visible(&o, 2));
    assert_false(dev_cuda__options_visible(&o, 1));
    assert_int_equal(o.staging_bytes, 16u << 20);
    assert_true(o.check_registration);
}

static void options_empty_visible_list_hides_every_gpu(void **state) {
    dev_cuda__options o;
    char err[128];
    env_set(0, "FLOE_CUDA_VISIBLE_DEVICES", "");
    assert_int_equal(dev_cuda__options_parse(table_getenv, &o, err, sizeof(err)), FLOE_OK);
    assert_false(o.visible_all);
    assert_false(dev_cuda__options_visible(&o, 0));
}

static void options_reject_malformed_values_naming_them(void **state) {
    static const char *const bad[][2] = {
        {"FLOE_CUDA_ALLOW_GROWTH", "maybe"},  {"FLOE_CUDA_MEMORY_FRACTION", "0"},
        {"FLOE_CUDA_MEMORY_FRACTION", "1.5"}, {"FLOE_CUDA_MEMORY_FRACTION", "nan"},
        {"FLOE_CUDA_MEMORY_FRACTION", "0.5x"}, {"FLOE_CUDA_ALLOW_TF32", ""},
        {"FLOE_CUDA_VISIBLE_DEVICES", "0,0"}, {"FLOE_CUDA_VISIBLE_DEVICES", "-1"},
        {"FLOE_CUDA_VISIBLE_DEVICES", "1,"},  {"FLOE_CUDA_VISIBLE_DEVICES", "64"},
        {"FLOE_CUDA_STAGING_MB", "0"},        {"FLOE_CUDA_STAGING_MB", "-3"},
        {"FLOE_CUDA_STAGING_MB", "99999"},    {"FLOE_CUDA_CHECK_REGISTRATION", "2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dev_cuda__options o;
        char err[160];
        env_set(0, bad[i][0], bad[i][1]);
        assert_int_equal(dev_cuda__options_parse(table_getenv, &o, err, sizeof(err)),
                         FLOE_INVALID_ARGUMENT);
        assert_non_null(strstr(err, bad[i][0]));
        /* the defaults, never a half-parsed mix */
        assert_false(o.allow_growth);
        assert_true(o.visible_all);
    }
}

/* ---- The allocator over host memory --------------------------------------------------------- */

typedef struct host_backend {
    int reserves, releases;
    int fail_after;              /* reserves allowed before failing (-1: never) */
    uint64_t live;
} host_backend;

static floe_status hb_reserve(void *ctx, size_t n, void **out) {
    host_backend *b = ctx;
    if (b->fail_after == 0) {
        *out = NULL;
        return (floe__host_table.fail)(FLOE_RESOURCE_EXHAUSTED, "backend refuses %zu", n);
    }
    if (b->fail_after > 0)
        b->fail_after--;
    /* Reserve address space only: the allocator never touches the memory. */
    *out = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);
    if (*out == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    b->reserves++;
    b->live += n;
    return FLOE_OK;
}

static void hb_release(void *ctx, void *p, size_t n) {
    host_backend *b = ctx;
    b->releases++;
    b->live -= n;
    free(p);
}

static dev_cuda__allocator *new_alloc(host_backend *b, uint64_t limit, bool growth) {
    dev_cuda__alloc_backend be = {b, hb_reserve, hb_release};
    memset(b, 0, sizeof(*b));
    b->fail_after = -1;
    dev_cuda__allocator *a = dev_cuda__allocator_new(&be, limit, growth);
    assert_non_null(a);
    return a;
}

static void allocator_rounds_to_256_and_aligns(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 64 << 20, true);
    void *p, *q;
    floe_device_memory_stats s;

    assert_int_equal(dev_cuda__allocator_round(1), 256);
    assert_int_equal(dev_cuda__allocator_round(256), 256);
    assert_int_equal(dev_cuda__allocator_round(257), 512);
    assert_int_equal(dev_cuda__allocator_round(SIZE_MAX), 0);
    assert_int_equal(dev_cuda__allocator_alloc(a, 1, &p), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_alloc(a, 300, &q), FLOE_OK);
    assert_int_equal((uintptr_t)p % 256, 0);
    assert_int_equal((uintptr_t)q % 256, 0);
    assert_int_equal((char *)q - (char *)p, 256);
    dev_cuda__allocator_stats(a, &s);
    assert_int_equal(s.bytes_in_use, 256 + 512);
    assert_int_equal(s.num_allocs, 2);
    assert_int_equal(s.bytes_limit, 64 << 20);
    assert_int_equal(s.bytes_cached, (2 << 20) - 768);
    assert_int_equal(dev_cuda__allocator_free_all(a), 2); /* two chunks never freed */
    assert_int_equal(b.live, 0);
}

static void allocator_growth_doubles_regions_up_to_the_limit(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 7 << 20, true);
    void *p1, *p2, *p3;
    floe_device_memory_stats s;

    assert_int_equal(dev_cuda__allocator_alloc(a, 2 << 20, &p1), FLOE_OK);   /* region 2 MiB */
    assert_int_equal(dev_cuda__allocator_alloc(a, 1 << 20, &p2), FLOE_OK);   /* region 4 MiB */
    assert_int_equal(b.reserves, 2);
    dev_cuda__allocator_stats(a, &s);
    assert_int_equal(s.bytes_in_use + s.bytes_cached, 6 << 20);
    /* 3 MiB left in the second region; 1 MiB of room under the limit. */
    assert_int_equal(dev_cuda__allocator_alloc(a, 3 << 20, &p3), FLOE_OK);
    assert_int_equal(b.reserves, 2);
    assert_int_equal(dev_cuda__allocator_alloc(a, 2 << 20, &p3), FLOE_RESOURCE_EXHAUSTED);
    assert_null(p3);
    assert_non_null(strstr(floe_last_error(), "out of memory"));
    assert_int_equal(dev_cuda__allocator_alloc(a, 8 << 20, &p3), FLOE_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(floe_last_error(), "exceeds the memory limit"));
    assert_int_equal(dev_cuda__allocator_free_all(a), 3);
}

static void allocator_without_growth_reserves_the_limit_at_once(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 16 << 20, false);
    void *p, *q;

    assert_int_equal(dev_cuda__allocator_alloc(a, 1000, &p), FLOE_OK);
    assert_int_equal(b.reserves, 1);
    assert_int_equal(b.live, 16 << 20);
    assert_int_equal(dev_cuda__allocator_alloc(a, 15 << 20, &q), FLOE_OK);
    assert_int_equal(b.reserves, 1);
    assert_int_equal(dev_cuda__allocator_alloc(a, 1 << 20, &q), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(dev_cuda__allocator_free_all(a), 2);
}

static void allocator_best_fit_reuses_split_and_coalesces(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 16 << 20, false);
    void *p[5], *r;
    floe_device_memory_stats s;

    for (int i = 0; i < 5; i++)
        assert_int_equal(dev_cuda__allocator_alloc(a, (size_t)(i + 1) * 1024, &p[i]), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_dealloc(a, p[1]), FLOE_OK);   /* 2 KiB hole */
    assert_int_equal(dev_cuda__allocator_dealloc(a, p[3]), FLOE_OK);   /* 4 KiB hole */
    /* 1.5 KiB fits both holes and the tail: the smallest, p[1]'s, wins. */
    assert_int_equal(dev_cuda__allocator_alloc(a, 1536, &r), FLOE_OK);
    assert_ptr_equal(r, p[1]);
    /* 4 KiB: exactly p[3]'s hole. */
    assert_int_equal(dev_cuda__allocator_alloc(a, 4096, &r), FLOE_OK);
    assert_ptr_equal(r, p[3]);
    assert_int_equal(dev_cuda__allocator_dealloc(a, p[3]), FLOE_OK);
    /* Free everything: the region is one free chunk again and can be trimmed. */
    assert_int_equal(dev_cuda__allocator_dealloc(a, p[1]), FLOE_OK);
    for (int i = 0; i < 5; i++)
        if (i != 1 && i != 3)
            assert_int_equal(dev_cuda__allocator_dealloc(a, p[i]), FLOE_OK);
    dev_cuda__allocator_stats(a, &s);
    assert_int_equal(s.bytes_in_use, 0);
    assert_int_equal(s.peak_bytes_in_use, (1 + 2 + 3 + 4 + 5) * 1024);
    assert_int_equal(s.bytes_cached, 16 << 20);
    /* One coalesced chunk: the whole limit can be had in one piece. */
    assert_int_equal(dev_cuda__allocator_alloc(a, 16 << 20, &r), FLOE_OK);
    assert_ptr_equal(r, p[0]);
    assert_int_equal(dev_cuda__allocator_dealloc(a, r), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_trim(a), 16 << 20);
    dev_cuda__allocator_stats(a, &s);
    assert_int_equal(s.bytes_cached, 0);
    assert_int_equal(b.live, 0);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
}

static void allocator_rejects_double_and_foreign_frees(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 4 << 20, true);
    void *p;
    int x;

    assert_int_equal(dev_cuda__allocator_alloc(a, 100, &p), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_dealloc(a, p), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_dealloc(a, p), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "freed twice"));
    assert_int_equal(dev_cuda__allocator_dealloc(a, &x), FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__allocator_dealloc(a, NULL), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
}

/* The backend refuses a new region: cached regions are released and it is tried again. */
static void allocator_trims_cache_and_retries_when_backend_refuses(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 64 << 20, true);
    void *p, *q;

    assert_int_equal(dev_cuda__allocator_alloc(a, 1 << 20, &p), FLOE_OK);  /* 2 MiB region */
    assert_int_equal(dev_cuda__allocator_dealloc(a, p), FLOE_OK);          /* cached */
    b.fail_after = 0;
    assert_int_equal(dev_cuda__allocator_alloc(a, 3 << 20, &q), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(b.releases, 1);      /* the cached region went back */
    assert_non_null(strstr(floe_last_error(), "GPU out of memory allocating"));
    b.fail_after = -1;
    assert_int_equal(dev_cuda__allocator_alloc(a, 3 << 20, &q), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_dealloc(a, q), FLOE_OK);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
    assert_int_equal(b.live, 0);
}

static void allocator_rejects_bad_arguments(void **state) {
    host_backend b;
    dev_cuda__alloc_backend none = {NULL, NULL, NULL};
    dev_cuda__allocator *a = new_alloc(&b, 1 << 20, true);
    void *p = &b;

    assert_null(dev_cuda__allocator_new(&none, 1 << 20, true));
    assert_null(dev_cuda__allocator_new(NULL, 1 << 20, true));
    assert_int_equal(dev_cuda__allocator_alloc(a, 100, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__allocator_alloc(a, SIZE_MAX, &p), FLOE_RESOURCE_EXHAUSTED);
    assert_null(p);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
    assert_int_equal(dev_cuda__allocator_free_all(NULL), 0);
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random allocs and frees against a model: live chunks never overlap, statistics add up. */
static void allocator_random_sequence_matches_model(void **state) {
    enum { N = 64 };
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 32 << 20, true);
    uintptr_t live[N] = {0};
    size_t size[N] = {0};
    uint64_t seed = 0x9e3779b97f4a7c15ull, in_use = 0;

    for (int step = 0; step < 20000; step++) {
        int i = (int)(rng(&seed) % N);
        if (live[i] != 0) {
            assert_int_equal(dev_cuda__allocator_dealloc(a, (void *)live[i]), FLOE_OK);
            in_use -= dev_cuda__allocator_round(size[i]);
            live[i] = 0;
            continue;
        }
        size[i] = (size_t)(rng(&seed) % (256 << 10)) + 1;
        void *p;
        if (dev_cuda__allocator_alloc(a, size[i], &p) != FLOE_OK)
            continue; /* full: legitimate under the limit */
        uintptr_t lo = (uintptr_t)p, hi = lo + dev_cuda__allocator_round(size[i]);
        for (int j = 0; j < N; j++)
            if (live[j] != 0)
                assert_true(hi <= live[j] || live[j] + dev_cuda__allocator_round(size[j]) <= lo);
        live[i] = lo;
        in_use += hi - lo;
        floe_device_memory_stats s;
        dev_cuda__allocator_stats(a, &s);
        assert_int_equal(s.bytes_in_use, in_use);
        assert_true(s.bytes_in_use + s.bytes_cached <= (32u << 20));
    }
    for (int i = 0; i < N; i++)
        if (live[i] != 0)
            assert_int_equal(dev_cuda__allocator_dealloc(a, (void *)live[i]), FLOE_OK);
    dev_cuda__allocator_trim(a);
    assert_int_equal(b.live, 0);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
}

static void *hammer(void *arg) {
    dev_cuda__allocator *a = arg;
    uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
    void *held[16] = {NULL};
    for (int step = 0; step < 5000; step++) {
        int i = (int)(rng(&seed) % 16);
        if (held[i] != NULL) {
            if (dev_cuda__allocator_dealloc(a, held[i]) != FLOE_OK)
                return (void *)1;
            held[i] = NULL;
        } else if (dev_cuda__allocator_alloc(a, (size_t)(rng(&seed) % 65536) + 1, &held[i]) !=
                   FLOE_OK) {
            held[i] = NULL;
        }
    }
    for (int i = 0; i < 16; i++)
        if (held[i] != NULL && dev_cuda__allocator_dealloc(a, held[i]) != FLOE_OK)
            return (void *)1;
    return NULL;
}

static void allocator_concurrent_use_keeps_books(void **state) {
    host_backend b;
    dev_cuda__allocator *a = new_alloc(&b, 64 << 20, true);
    pthread_t t[4];
    floe_device_memory_stats s;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, a), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    dev_cuda__allocator_stats(a, &s);
    assert_int_equal(s.bytes_in_use, 0);
    assert_int_equal(s.num_allocs > 0, 1);
    assert_int_equal(dev_cuda__allocator_free_all(a), 0);
}

/* ---- Status mapping ------------------------------------------------------------------------ */

static void status_maps_cuda_errors_with_their_message(void **state) {
    assert_int_equal(dev_cuda__status_cuda(cudaSuccess), FLOE_OK);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorMemoryAllocation), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorInvalidValue), FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorNoDevice), FLOE_UNAVAILABLE);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorInsufficientDriver), FLOE_UNAVAILABLE);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorNoKernelImageForDevice), FLOE_UNIMPLEMENTED);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorIllegalAddress), FLOE_INTERNAL);
    assert_int_equal(dev_cuda__status_cuda(cudaErrorLaunchFailure), FLOE_INTERNAL);

    assert_int_equal(dev_cuda__fail_cuda(cudaSuccess, "x"), FLOE_OK);
    assert_int_equal(dev_cuda__fail_cuda(cudaErrorMemoryAllocation, "cudaMalloc"),
                     FLOE_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(floe_last_error(), "cudaMalloc: cudaErrorMemoryAllocation"));
    assert_non_null(strstr(floe_last_error(), "out of memory"));   /* CUDA's own text */
    assert_non_null(strstr(floe_last_error(), "CUDA error 2"));
}

static void status_maps_cublas_and_cudnn(void **state) {
    assert_int_equal(dev_cuda__status_cublas(0), FLOE_OK);
    assert_int_equal(dev_cuda__status_cublas(3), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(dev_cuda__status_cublas(7), FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__status_cublas(15), FLOE_UNIMPLEMENTED);
    assert_int_equal(dev_cuda__status_cublas(13), FLOE_INTERNAL);
    assert_string_equal(dev_cuda__cublas_name(13), "CUBLAS_STATUS_EXECUTION_FAILED");
    assert_string_equal(dev_cuda__cublas_name(999), "CUBLAS_STATUS_UNKNOWN");
    assert_int_equal(dev_cuda__fail_cublas(3, "gemm"), FLOE_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(floe_last_error(), "gemm: CUBLAS_STATUS_ALLOC_FAILED"));

    assert_int_equal(dev_cuda__status_cudnn(0), FLOE_OK);
    assert_int_equal(dev_cuda__status_cudnn(2000), FLOE_INVALID_ARGUMENT);   /* BAD_PARAM */
    assert_int_equal(dev_cuda__status_cudnn(2008), FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__status_cudnn(3000), FLOE_UNIMPLEMENTED);     /* NOT_SUPPORTED */
    assert_int_equal(dev_cuda__status_cudnn(3005), FLOE_UNAVAILABLE);       /* driver */
    assert_int_equal(dev_cuda__status_cudnn(4004), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(dev_cuda__status_cudnn(4000), FLOE_INTERNAL);
    assert_int_equal(dev_cuda__status_cudnn(5000), FLOE_INTERNAL);
    assert_int_equal(dev_cuda__status_cudnn(1001), FLOE_FAILED_PRECONDITION);
    /* cuDNN is not opened here (no GPU): the message still names the status. */
    assert_int_equal(dev_cuda__fail_cudnn(2000, "conv"), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "conv: "));
    assert_non_null(strstr(floe_last_error(), "cuDNN status 2000"));
}

/* cuBLAS and cuDNN open lazily with dlopen; no GPU is needed for that. */
static void libs_open_lazily_and_name_cudnn_errors(void **state) {
    assert_int_equal(dev_cuda__libs_open(), FLOE_OK);
    assert_true(dev_cuda__blas.loaded);
    assert_true(dev_cuda__dnn.loaded);
    assert_non_null(dev_cuda__blas.cublasSgemm_v2);
    assert_true(dev_cuda__dnn.cudnnGetVersion() >= 90000);
    assert_int_equal(dev_cuda__libs_open(), FLOE_OK); /* once per process */
    assert_int_equal(dev_cuda__fail_cudnn(2000, "conv"), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "CUDNN_STATUS_BAD_PARAM"));
}

/* ---- Plans -------------------------------------------------------------------------------- */

static void bcast_plan_collapses_and_broadcasts(void **state) {
    dev_cuda__bcast p;
    char err[200];
    int64_t a[] = {4, 5, 6}, b[] = {6}, c[] = {4, 1, 6}, s[] = {1}, e[] = {3};

    assert_int_equal(dev_cuda__bcast_plan(a, 3, a, 3, &p, err, sizeof(err)), FLOE_OK);
    assert_true(p.same);
    assert_int_equal(p.ndim, 1);
    assert_int_equal(p.n, 120);

    assert_int_equal(dev_cuda__bcast_plan(a, 3, b, 1, &p, err, sizeof(err)), FLOE_OK);
    assert_false(p.same);
    assert_int_equal(p.out_ndim, 3);
    assert_int_equal(p.ndim, 2);                    /* [20, 6]: y repeats per row */
    assert_int_equal(p.dims[0], 20);
    assert_int_equal(p.dims[1], 6);
    assert_int_equal(p.xstride[0], 6);
    assert_int_equal(p.ystride[0], 0);
    assert_int_equal(p.ystride[1], 1);

    assert_int_equal(dev_cuda__bcast_plan(a, 3, c, 3, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.ndim, 3);                    /* [4, 5, 6] with y's middle stride 0 */
    assert_int_equal(p.ystride[0], 6);
    assert_int_equal(p.ystride[1], 0);

    assert_int_equal(dev_cuda__bcast_plan(a, 3, s, 0, &p, err, sizeof(err)), FLOE_OK);
    assert_true(p.y_scalar);
    assert_int_equal(dev_cuda__bcast_plan(s, 1, s, 1, &p, err, sizeof(err)), FLOE_OK);
    assert_true(p.x_scalar && p.y_scalar && p.same);

    assert_int_equal(dev_cuda__bcast_plan(a, 3, e, 1, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "Incompatible shapes: [4,5,6] vs. [3]")); /* the CPU's words */

    /* a zero extent beside huge ones: no elements, and no overflowing product (UBSan
     * caught the plan multiplying 2^40 by 2^40 on the emulated GPU) */
    int64_t huge0[] = {INT64_C(1) << 40, INT64_C(1) << 40, 0};
    assert_int_equal(dev_cuda__bcast_plan(huge0, 3, s, 1, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.out_ndim, 3);
    assert_int_equal(p.out_dims[0], INT64_C(1) << 40);
    assert_int_equal(p.out_dims[2], 0);
}

static void reduce_plan_merges_axes_and_checks_them(void **state) {
    dev_cuda__reduce p;
    char err[200];
    int64_t d[] = {2, 3, 4, 5};
    int64_t ax1[] = {1, 2}, ax2[] = {-1, 0}, bad[] = {4}, rep[] = {1, 1};

    assert_int_equal(dev_cuda__reduce_plan(d, 4, ax1, 2, false, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.nout, 10);
    assert_int_equal(p.nred, 12);
    assert_int_equal(p.nred_dims, 1);               /* axes 1 and 2 are contiguous */
    assert_int_equal(p.red_dims[0], 12);
    assert_int_equal(p.red_stride[0], 5);
    assert_int_equal(p.out_ndim, 2);

    assert_int_equal(dev_cuda__reduce_plan(d, 4, ax2, 2, true, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.nout, 12);
    assert_int_equal(p.nred_dims, 2);
    assert_int_equal(p.out_ndim, 4);
    assert_int_equal(p.out_dims[0], 1);
    assert_int_equal(p.out_dims[3], 1);
    assert_int_equal(p.nkeep, 1);                   /* dims 1, 2 merge: [12] stride 5 */
    assert_int_equal(p.keep_dims[0], 12);

    /* a repeated axis is an error, as on the CPU (the GPU once reduced it once, silently) */
    assert_int_equal(dev_cuda__reduce_plan(d, 4, rep, 2, false, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "Axes contains duplicate dimension: 1"));

    assert_int_equal(dev_cuda__reduce_plan(d, 4, NULL, 0, false, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.nred, 1);
    assert_int_equal(p.nout, 120);

    assert_int_equal(dev_cuda__reduce_plan(d, 4, bad, 1, false, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "Invalid reduction dimension 4 for input with 4 dimensions"));

    /* zero extents: counts only, no overflowing strides */
    int64_t z0[] = {0, INT64_C(1) << 20, INT64_C(1) << 40}, ax_1[] = {1}, ax_0[] = {0};
    assert_int_equal(dev_cuda__reduce_plan(z0, 3, ax_1, 1, true, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.nout, 0);
    assert_int_equal(p.out_ndim, 3);
    assert_int_equal(p.out_dims[1], 1);
    assert_int_equal(dev_cuda__reduce_plan(z0, 3, ax_0, 1, false, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.nout, INT64_C(1) << 60);   /* every output exists, reducing nothing */
    assert_int_equal(p.nred, 0);
    int64_t z1[] = {0, INT64_C(1) << 40, INT64_C(1) << 40};
    assert_int_equal(dev_cuda__reduce_plan(z1, 3, ax_0, 1, false, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "more than 2^63 elements"));
}

static void transpose_plan_checks_perm(void **state) {
    dev_cuda__transpose p;
    char err[200];
    int64_t d[] = {2, 3, 4}, perm[] = {2, 0, 1}, rep[] = {0, 0, 1}, neg[] = {-1, 0, 1};

    assert_int_equal(dev_cuda__transpose_plan(d, 3, perm, 3, &p, err, sizeof(err)), FLOE_OK);
    assert_int_equal(p.out_dims[0], 4);
    assert_int_equal(p.in_stride[0], 1);
    assert_int_equal(p.in_stride[1], 12);
    assert_int_equal(p.in_stride[2], 4);
    assert_int_equal(p.n, 24);
    assert_int_equal(dev_cuda__transpose_plan(d, 3, rep, 3, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__transpose_plan(d, 3, neg, 3, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(dev_cuda__transpose_plan(d, 3, perm, 2, &p, err, sizeof(err)),
                     FLOE_INVALID_ARGUMENT);
}

/* ---- The plugin on this machine -------------------------------------------------------------- */

static bool find_plugin(floe_context *ctx, const char *name, floe_plugin_info *pi) {
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        memset(pi, 0, sizeof(*pi));
        pi->struct_size = sizeof(*pi);
        if (floe_context_plugin(ctx, i, pi) == FLOE_OK && strcmp(pi->name, name) == 0)
            return true;
    }
    return false;
}

static int gpu_count(floe_context *ctx) {
    int n = 0;
    for (int i = 0; i < floe_context_num_devices(ctx); i++) {
        floe_device_info di;
        memset(&di, 0, sizeof(di));
        di.struct_size = sizeof(di);
        if (floe_context_device(ctx, i, &di) == FLOE_OK && strcmp(di.type, "GPU") == 0)
            n++;
    }
    return n;
}

static bool have_gpu(void) {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static void plugin_without_gpu_is_skipped_with_reason(void **state) {
    floe_context *ctx;
    floe_plugin_info pi;

    if (have_gpu())
        skip(); /* the GPU machine runs test_dev_cuda instead */
    unsetenv("FLOE_CUDA_CHECK_REGISTRATION");
    ctx = tc_context();
    assert_true(find_plugin(ctx, "dev_cuda", &pi));
    assert_int_equal(pi.loaded, 0);
    assert_int_equal(pi.skipped, 1);
    assert_non_null(strstr(pi.reason, "cannot run here"));
    assert_non_null(strstr(pi.note, "CUDA"));
    assert_int_equal(gpu_count(ctx), 0);
    floe_context_free(ctx);
}

static void plugin_bad_option_is_skipped_naming_it(void **state) {
    floe_context *ctx;
    floe_plugin_info pi;

    setenv("FLOE_CUDA_MEMORY_FRACTION", "2", 1);
    ctx = tc_context();
    unsetenv("FLOE_CUDA_MEMORY_FRACTION");
    assert_true(find_plugin(ctx, "dev_cuda", &pi));
    assert_int_equal(pi.loaded, 0);
    assert_non_null(strstr(pi.reason, "FLOE_CUDA_MEMORY_FRACTION"));
    floe_context_free(ctx);
}

/* Every GPU kernel definition is accepted by the core (op names, type constraints,
 * host_memory argument names), while no GPU device exists: nothing is scheduled there
 * and a MatMul still runs, on the CPU. */
static void plugin_registration_check_accepts_every_kernel(void **state) {
    static const char *const ops[] = {"MatMul", "BatchMatMulV2", "Conv2D",
                                      "Conv2DBackpropFilter", "Softmax", "AddV2", "Sum",
                                      "ResourceApplyAdam", "ReadVariableOp", "MaxPoolGrad",
                                      "SparseSoftmaxCrossEntropyWithLogits", "Reshape",
                                      "ConcatV2", "GatherV2", "Slice", "FusedBatchNormV3",
                                      "FusedBatchNormGradV3"};
    floe_context *ctx;
    floe_plugin_info pi;
    char buf[8192];

    if (have_gpu())
        skip();
    setenv("FLOE_CUDA_CHECK_REGISTRATION", "1", 1);
    ctx = tc_context();
    unsetenv("FLOE_CUDA_CHECK_REGISTRATION");
    assert_true(find_plugin(ctx, "dev_cuda", &pi));
    if (!pi.loaded)
        fail_msg("dev_cuda rejected: %s", pi.reason);
    assert_true(pi.num_kernels >= 60);
    assert_int_equal(pi.num_devices, 0);
    assert_int_equal(gpu_count(ctx), 0);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        assert_int_equal(floe_context_describe_op(ctx, ops[i], buf, sizeof(buf)), FLOE_OK);
        char *gpu = strstr(buf, "GPU:");
        assert_non_null(gpu);
        assert_non_null(strstr(gpu, "plugin dev_cuda"));
    }
    {
        int64_t s[2] = {2, 2};
        float av[4] = {1, 2, 3, 4}, bv[4] = {1, 0, 0, 1};
        floe_tensor *in[2] = {tc_f32(s, 2, av), tc_f32(s, 2, bv)};
        floe_tensor *c = tc_run1(ctx, "MatMul", in, 2, NULL);
        tc_assert_close_f32(c, av, 4, 0, 0);
        floe_tensor_unref(c);
        tc_unref_all(in, 2);
    }
    floe_context_free(ctx);
}

/* `floe devices` says why there is no GPU. */
static void floe_devices_explains_missing_gpu(void **state) {
    char cmd[1024], line[512];
    const char *root = getenv("FLOE_BUILD_ROOT");
    bool seen = false;
    FILE *p;

    if (have_gpu() || root == NULL)
        skip();
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' devices 2>&1", root);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        seen = seen || (strstr(line, "(skipped dev_cuda: ") != NULL && strstr(line, "CUDA") != NULL);
    assert_int_equal(pclose(p), 0);
    assert_true(seen);
}

/* The public statistics call, on the CPU device (dev_cpu keeps statistics too). */
static void device_memory_stats_through_the_api(void **state) {
    floe_context *ctx = tc_context();
    floe_device *cpu;
    floe_memory_stats ms, small;
    int64_t d[1] = {1 << 16};
    floe_tensor *t;

    assert_int_equal(floe_context_find_device(ctx, "CPU:0", &cpu), FLOE_OK);
    memset(&ms, 0xff, sizeof(ms));
    ms.struct_size = sizeof(ms);
    assert_int_equal(floe_device_get_memory_stats(cpu, &ms), FLOE_OK);
    assert_int_equal(ms.struct_size, sizeof(ms));
    assert_true(ms.peak_bytes_in_use >= ms.bytes_in_use);
    t = tc_tensor(FLOE_DTYPE_F32, d, 1, NULL); /* host memory of the core, not the device's */
    floe_tensor_unref(t);
    /* an older caller's smaller struct: nothing written past it */
    memset(&small, 0xab, sizeof(small));
    small.struct_size = offsetof(floe_memory_stats, peak_bytes_in_use);
    assert_int_equal(floe_device_get_memory_stats(cpu, &small), FLOE_OK);
    assert_int_equal(small.peak_bytes_in_use, 0xababababababababull);
    assert_int_equal(floe_device_get_memory_stats(NULL, &ms), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_device_get_memory_stats(cpu, NULL), FLOE_INVALID_ARGUMENT);
    ms.struct_size = 0;
    assert_int_equal(floe_device_get_memory_stats(cpu, &ms), FLOE_INVALID_ARGUMENT);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_defaults_match_tensorflow),
        cmocka_unit_test(options_parse_every_variable),
        cmocka_unit_test(options_empty_visible_list_hides_every_gpu),
        cmocka_unit_test(options_reject_malformed_values_naming_them),
        cmocka_unit_test(allocator_rounds_to_256_and_aligns),
        cmocka_unit_test(allocator_growth_doubles_regions_up_to_the_limit),
        cmocka_unit_test(allocator_without_growth_reserves_the_limit_at_once),
        cmocka_unit_test(allocator_best_fit_reuses_split_and_coalesces),
        cmocka_unit_test(allocator_rejects_double_and_foreign_frees),
        cmocka_unit_test(allocator_trims_cache_and_retries_when_backend_refuses),
        cmocka_unit_test(allocator_rejects_bad_arguments),
        cmocka_unit_test(allocator_random_sequence_matches_model),
        cmocka_unit_test(allocator_concurrent_use_keeps_books),
        cmocka_unit_test(status_maps_cuda_errors_with_their_message),
        cmocka_unit_test(status_maps_cublas_and_cudnn),
        cmocka_unit_test(libs_open_lazily_and_name_cudnn_errors),
        cmocka_unit_test(bcast_plan_collapses_and_broadcasts),
        cmocka_unit_test(reduce_plan_merges_axes_and_checks_them),
        cmocka_unit_test(transpose_plan_checks_perm),
        cmocka_unit_test(plugin_without_gpu_is_skipped_with_reason),
        cmocka_unit_test(plugin_bad_option_is_skipped_naming_it),
        cmocka_unit_test(plugin_registration_check_accepts_every_kernel),
        cmocka_unit_test(floe_devices_explains_missing_gpu),
        cmocka_unit_test(device_memory_stats_through_the_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
