/*
 * test_dev_cpu.c - the CPU device plugin.
 *
 * Two ways in: through a real context (the device is registered, described and runs
 * kernels), and directly, by loading floe_dev_cpu.so and calling its init() with a
 * stand-in host table, to reach what the public API does not show: the ops table
 * (allocator alignment, reuse, statistics, failures) and the proc_address extras
 * (sgemm and dgemm against a naive reference on odd shapes and strides, on a stand-in
 * thread pool of several threads; sgemm's cache of oneDNN primitives: reuse, eviction,
 * concurrent callers, devices coming and going, host allocation failures).
 *
 * Sections: the stand-in host; the device in a context; the allocator; GEMM.
 */
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include "test_common.h"

#include <floe/cpu.h>
#include <floe/plugin.h>

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The stand-in host ---------------------------------------------------------------- */

static char fake_error[1024];
static int fake_log_errors;
static int64_t fake_fail_countdown;   /* > 0: fail the Nth host alloc from now */
static int fake_fail_persistent;
static floe_device_desc fake_device;  /* the last registered device */
static int fake_num_devices;

static void *fake_alloc(size_t nbytes, size_t align) {
    if (fake_fail_countdown > 0 && (--fake_fail_countdown == 0 || fake_fail_persistent)) {
        if (fake_fail_persistent)
            fake_fail_countdown = 1;
        return NULL;
    }
    if (align == 0)
        align = 64;
    return aligned_alloc(align, (nbytes + align - 1) / align * align);
}

static void fake_free(void *p) {
    free(p);
}

static floe_status fake_vfail(floe_status code, const char *fmt, va_list ap) {
    vsnprintf(fake_error, sizeof(fake_error), fmt, ap);
    return code;
}

static floe_status fake_fail(floe_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fake_vfail(code, fmt, ap);
    va_end(ap);
    return code;
}

static void fake_log(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...) {
    if (level >= FLOE_PLUGIN_LOG_ERROR)
        fake_log_errors++;
}

static void fake_set_note(floe_plugin *self, const char *fmt, ...) {
}

static floe_status fake_register_device(floe_plugin *self, const floe_device_desc *desc) {
    fake_device = *desc;
    fake_num_devices++;
    return FLOE_OK;
}

/* A "pool" of N threads: each parallel_for starts N - 1 threads and helps. */
typedef struct fake_pool {
    int nthreads;
    atomic_int max_concurrent, running, calls;
    atomic_int_fast64_t max_n;      /* the most chunks one parallel_for was asked for */
} fake_pool;

typedef struct fake_pf {
    fake_pool *pool;
    int64_t n, grain;
    atomic_int_fast64_t next;
    void (*fn)(void *arg, int64_t begin, int64_t end);
    void *arg;
} fake_pf;

static void *fake_pf_main(void *arg) {
    fake_pf *pf = arg;
    int now = atomic_fetch_add(&pf->pool->running, 1) + 1;
    int max = atomic_load(&pf->pool->max_concurrent);
    while (now > max && !atomic_compare_exchange_weak(&pf->pool->max_concurrent, &max, now))
        ;
    for (;;) {
        int64_t b = atomic_fetch_add(&pf->next, pf->grain);
        if (b >= pf->n)
            break;
        pf->fn(pf->arg, b, b + pf->grain < pf->n ? b + pf->grain : pf->n);
    }
    atomic_fetch_sub(&pf->pool->running, 1);
    return NULL;
}

static void fake_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                              void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
    fake_pool *p = (fake_pool *)pool;
    fake_pf pf = {p, n, grain < 1 ? 1 : grain, 0, fn, arg};
    pthread_t tids[16];
    int nt = p->nthreads < 16 ? p->nthreads : 16;

    atomic_fetch_add(&p->calls, 1);
    int_fast64_t prev = atomic_load(&p->max_n);
    while (n > prev && !atomic_compare_exchange_weak(&p->max_n, &prev, n))
        ;
    for (int i = 1; i < nt; i++)
        assert_int_equal(pthread_create(&tids[i], NULL, fake_pf_main, &pf), 0);
    fake_pf_main(&pf);
    for (int i = 1; i < nt; i++)
        pthread_join(tids[i], NULL);
}

static int fake_threadpool_size(const floe_threadpool *pool) {
    return ((const fake_pool *)pool)->nthreads;
}

static const floe_host fake_host = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_host),
    .alloc = fake_alloc,
    .free = fake_free,
    .fail = fake_fail,
    .vfail = fake_vfail,
    .log = fake_log,
    .set_note = fake_set_note,
    .register_device = fake_register_device,
    .parallel_for = fake_parallel_for,
    .threadpool_size = fake_threadpool_size,
};

/* The plugin, loaded once; each fixture runs init() for a fresh device. */
static const floe_plugin_desc *plugin_desc(void) {
    static const floe_plugin_desc *desc;
    if (desc == NULL) {
        const char *root = getenv("FLOE_BUILD_ROOT");
        char path[4096];
        void *h;
        const floe_plugin_desc *(*get)(void);

        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/plugins/dev_cpu/floe_dev_cpu.so", root);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL)
            fail_msg("dlopen %s: %s", path, dlerror());
        *(void **)&get = dlsym(h, "floe_plugin_dev_cpu_get_desc");
        assert_non_null(get);
        desc = get();
    }
    return desc;
}

static int fake_plugin_token; /* stands for the core's floe_plugin record */

typedef struct fixture {
    const floe_device_ops *ops;
    void *dev;
    fake_pool pool;
} fixture;

static int fixture_setup(void **state) {
    const floe_plugin_desc *desc = plugin_desc();
    fixture *f = calloc(1, sizeof(*f));
    void *user = NULL;

    fake_num_devices = 0;
    fake_fail_countdown = 0;
    fake_fail_persistent = 0;
    fake_log_errors = 0;
    if (f == NULL || desc->init((floe_plugin *)&fake_plugin_token, &fake_host, &user) != FLOE_OK ||
        fake_num_devices != 1)
        return -1;
    f->ops = fake_device.ops;
    f->dev = fake_device.state;
    f->pool.nthreads = 3;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state) {
    fixture *f = *state;
    f->ops->destroy(f->dev);
    free(f);
    return 0;
}

static floe_device_memory_stats stats_of(fixture *f) {
    floe_device_memory_stats s;
    memset(&s, 0, sizeof(s));
    s.struct_size = sizeof(s);
    assert_int_equal(f->ops->memory_stats(f->dev, &s), FLOE_OK);
    return s;
}

/* ---- The device in a context ------------------------------------------------------------ */

static void dev_cpu_registers_described_device(void **state) {
    floe_context *ctx = tc_context();
    floe_device_info info;
    floe_device *dev = NULL;
    int found = 0;

    for (int i = 0; i < floe_context_num_devices(ctx); i++) {
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        assert_int_equal(floe_context_device(ctx, i, &info), FLOE_OK);
        if (strcmp(info.type, "CPU") == 0 && info.index == 0) {
            found = 1;
            break;
        }
    }
    assert_true(found);
    assert_string_equal(info.plugin, "dev_cpu");
    assert_non_null(strstr(info.description, "core"));
    assert_non_null(strstr(info.description, "GEMM"));
    assert_true(info.memory_bytes > 0);
    assert_int_equal(floe_context_find_device(ctx, "/device:CPU:0", &dev), FLOE_OK);
    assert_non_null(dev);
    floe_context_free(ctx);
}

static void dev_cpu_describes_itself_in_init(void **state) {
    /* The fixture's init registered one device of the documented kind. */
    assert_string_equal(fake_device.type, "CPU");
    assert_int_equal(fake_device.index, 0);
    assert_int_equal(fake_device.priority, 0);
    assert_true(fake_device.flags & FLOE_DEVICE_HOST_MEMORY);
    assert_non_null(strstr(fake_device.description, "core"));
    assert_true(fake_device.ops->struct_size >= sizeof(floe_device_ops));
    assert_int_equal(fake_device.ops->synchronize(fake_device.state), FLOE_OK);
}

/* ---- The allocator ------------------------------------------------------------------- */

static void allocator_alloc_is_aligned_and_writable(void **state) {
    fixture *f = *state;
    static const size_t sizes[] = {1, 3, 63, 64, 65, 96, 97, 1000, 4097, 100000,
                                   (size_t)3 << 20, ((size_t)64 << 20) + 1};
    void *p[sizeof(sizes) / sizeof(sizes[0])];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p[i] = NULL;
        assert_int_equal(f->ops->alloc(f->dev, sizes[i], &p[i]), FLOE_OK);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 64, 0);
        memset(p[i], 0xab, sizes[i]);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        f->ops->free(f->dev, p[i], sizes[i]);
    f->ops->free(f->dev, NULL, 0);
    assert_int_equal(stats_of(f).bytes_in_use, 0);
}

static void allocator_free_then_alloc_reuses_block(void **state) {
    fixture *f = *state;
    void *a = NULL, *b = NULL, *c = NULL, *d = NULL;

    assert_int_equal(f->ops->alloc(f->dev, 1000, &a), FLOE_OK);
    f->ops->free(f->dev, a, 1000);
    /* 1000 and 900 share the 1024-byte class; 1100 is the next class (1536). */
    assert_int_equal(f->ops->alloc(f->dev, 900, &b), FLOE_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(f->ops->alloc(f->dev, 1000, &c), FLOE_OK);
    assert_ptr_not_equal(b, c);
    f->ops->free(f->dev, c, 1000);
    assert_int_equal(f->ops->alloc(f->dev, 1100, &d), FLOE_OK);
    assert_ptr_not_equal(d, c);
    f->ops->free(f->dev, b, 900);
    f->ops->free(f->dev, d, 1100);
}

static void allocator_stats_track_use_peak_and_cache(void **state) {
    fixture *f = *state;
    floe_device_memory_stats s0 = stats_of(f), s;
    void *a = NULL, *b = NULL, *big = NULL;
    size_t big_n = ((size_t)64 << 20) + 4096;

    assert_int_equal(f->ops->alloc(f->dev, 100, &a), FLOE_OK);   /* class 128 */
    assert_int_equal(f->ops->alloc(f->dev, 5000, &b), FLOE_OK);  /* class 6144 */
    s = stats_of(f);
    assert_int_equal(s.bytes_in_use, s0.bytes_in_use + 128 + 6144);
    assert_true(s.peak_bytes_in_use >= s.bytes_in_use);
    assert_int_equal(s.num_allocs, s0.num_allocs + 2);
    f->ops->free(f->dev, b, 5000);
    s = stats_of(f);
    assert_int_equal(s.bytes_in_use, s0.bytes_in_use + 128);
    assert_int_equal(s.bytes_cached, s0.bytes_cached + 6144);
    assert_int_equal(s.peak_bytes_in_use, s0.bytes_in_use + 128 + 6144);
    /* Big blocks go back to the host at once, never into the cache. */
    assert_int_equal(f->ops->alloc(f->dev, big_n, &big), FLOE_OK);
    assert_int_equal(stats_of(f).bytes_in_use, s0.bytes_in_use + 128 + big_n);
    f->ops->free(f->dev, big, big_n);
    s = stats_of(f);
    assert_int_equal(s.bytes_cached, s0.bytes_cached + 6144);
    assert_int_equal(s.peak_bytes_in_use, s0.bytes_in_use + 128 + big_n);
    f->ops->free(f->dev, a, 100);
    assert_int_equal(stats_of(f).bytes_in_use, s0.bytes_in_use);
}

static void allocator_cache_limit_zero_caches_nothing(void **state) {
    fixture *f;
    void *a = NULL;

    setenv("FLOE_CPU_CACHE_MB", "0", 1);
    assert_int_equal(fixture_setup((void **)&f), 0);
    unsetenv("FLOE_CPU_CACHE_MB");
    assert_int_equal(f->ops->alloc(f->dev, 1000, &a), FLOE_OK);
    f->ops->free(f->dev, a, 1000);
    assert_int_equal(stats_of(f).bytes_cached, 0);
    fixture_teardown((void **)&f);
}

static void allocator_host_failure_empties_cache_then_fails(void **state) {
    fixture *f = *state;
    void *a = NULL, *b = NULL, *c = (void *)&a;

    assert_int_equal(f->ops->alloc(f->dev, 1000, &a), FLOE_OK);
    f->ops->free(f->dev, a, 1000);
    assert_int_equal(stats_of(f).bytes_cached, 1024);
    /* The first host allocation fails: the cache is emptied and the retry succeeds. */
    fake_fail_countdown = 1;
    assert_int_equal(f->ops->alloc(f->dev, 5000, &b), FLOE_OK);
    assert_non_null(b);
    assert_int_equal(stats_of(f).bytes_cached, 0);
    /* Every host allocation fails: an error with a message, *out NULL. */
    fake_fail_countdown = 1;
    fake_fail_persistent = 1;
    assert_int_equal(f->ops->alloc(f->dev, 70000, &c), FLOE_RESOURCE_EXHAUSTED);
    assert_null(c);
    assert_non_null(strstr(fake_error, "out of memory"));
    fake_fail_countdown = 0;
    fake_fail_persistent = 0;
    f->ops->free(f->dev, b, 5000);
    assert_int_equal(stats_of(f).bytes_in_use, 0);
}

static void allocator_double_free_is_reported_and_ignored(void **state) {
    fixture *f = *state;
    void *a = NULL, *b = NULL, *c = NULL;

    assert_int_equal(f->ops->alloc(f->dev, 200, &a), FLOE_OK);
    f->ops->free(f->dev, a, 200);
    f->ops->free(f->dev, a, 200);
    assert_int_equal(fake_log_errors, 1);
    /* The class list holds the block once: two allocations get two blocks. */
    assert_int_equal(f->ops->alloc(f->dev, 200, &b), FLOE_OK);
    assert_int_equal(f->ops->alloc(f->dev, 200, &c), FLOE_OK);
    assert_ptr_not_equal(b, c);
    f->ops->free(f->dev, b, 200);
    f->ops->free(f->dev, c, 200);
}

static void allocator_block_outlives_device(void **state) {
    fixture *f;
    void *a = NULL;

    assert_int_equal(fixture_setup((void **)&f), 0);
    assert_int_equal(f->ops->alloc(f->dev, 3000, &a), FLOE_OK);
    f->ops->destroy(f->dev);
    memset(a, 1, 3000);
    f->ops->free(f->dev, a, 3000);  /* the state lives until here (ASan checks) */
    free(f);
}

typedef struct churn_arg {
    fixture *f;
    unsigned seed;
    atomic_int *failures;
} churn_arg;

static void *allocator_churn(void *arg) {
    churn_arg *c = arg;
    void *held[32] = {0};
    size_t sizes[32] = {0};

    for (int i = 0; i < 20000; i++) {
        int slot = (int)(rand_r(&c->seed) % 32);
        if (held[slot] != NULL) {
            if (((unsigned char *)held[slot])[sizes[slot] - 1] != (unsigned char)slot)
                atomic_fetch_add(c->failures, 1);
            c->f->ops->free(c->f->dev, held[slot], sizes[slot]);
            held[slot] = NULL;
        } else {
            sizes[slot] = 1 + rand_r(&c->seed) % 20000;
            if (c->f->ops->alloc(c->f->dev, sizes[slot], &held[slot]) != FLOE_OK)
                atomic_fetch_add(c->failures, 1);
            else
                memset(held[slot], slot, sizes[slot]);
        }
    }
    for (int s = 0; s < 32; s++)
        c->f->ops->free(c->f->dev, held[s], sizes[s]);
    return NULL;
}

static void allocator_concurrent_churn_is_consistent(void **state) {
    fixture *f = *state;
    pthread_t t[4];
    churn_arg args[4];
    atomic_int failures = 0;
    floe_device_memory_stats s;

    for (int i = 0; i < 4; i++) {
        args[i] = (churn_arg){f, 17u + (unsigned)i, &failures};
        assert_int_equal(pthread_create(&t[i], NULL, allocator_churn, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    s = stats_of(f);
    assert_int_equal(s.bytes_in_use, 0);
    assert_true(s.bytes_cached > 0);
    assert_true(s.num_allocs >= 4 * 1000);
}

/* ---- GEMM --------------------------------------------------------------------------- */

/* Element (i, j) of op(X) for a row-major X with row stride ld. */
#define OPX(x, trans, i, j, ld) ((trans) ? (x)[(j) * (ld) + (i)] : (x)[(i) * (ld) + (j)])

static void naive_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                       const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                       double *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += OPX(a, ta, i, p, lda) * OPX(b, tb, p, j, ldb);
            c[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * c[i * ldc + j]);
        }
}

typedef struct gemm_case {
    int ta, tb;
    int64_t m, n, k, pad;     /* pad: extra elements per row of A, B and C */
    double alpha, beta;
} gemm_case;

static const gemm_case gemm_cases[] = {
    {0, 0, 1, 1, 1, 0, 1, 0},       {0, 0, 17, 33, 65, 0, 1, 0},
    {1, 0, 17, 33, 65, 0, 1, 0},    {0, 1, 17, 33, 65, 0, 1, 0},
    {1, 1, 17, 33, 65, 0, 1, 0},    {0, 0, 17, 33, 65, 7, 1, 0},
    {1, 1, 33, 17, 65, 5, 0.5, 2},  {0, 0, 200, 130, 90, 3, 1, 0},  /* split M */
    {1, 0, 20, 300, 70, 0, 1, 1},   /* split N */
    {0, 1, 129, 257, 31, 1, -1.5, 0.25},
    {0, 0, 64, 64, 64, 0, 1, 0},    {0, 0, 5, 7, 0, 2, 1, 3},        /* K = 0 */
    {0, 0, 0, 7, 9, 0, 1, 0},       {0, 0, 7, 0, 9, 1, 1, 0},
};

/* Runs every case through the device's sgemm (@dbl 0) or dgemm (@dbl 1). */
static void check_gemm_cases(fixture *f, int dbl) {
    void *fn = f->ops->proc_address(f->dev, dbl ? FLOE_CPU_DGEMM : FLOE_CPU_SGEMM);
    assert_non_null(fn);
    for (size_t ci = 0; ci < sizeof(gemm_cases) / sizeof(gemm_cases[0]); ci++) {
        const gemm_case *g = &gemm_cases[ci];
        int64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
        int64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
        int64_t lda = ac + g->pad, ldb = bc + g->pad, ldc = g->n + g->pad;
        size_t na = (size_t)(ar * lda + 1), nb = (size_t)(br * ldb + 1);
        size_t nc = (size_t)(g->m * ldc + 1);
        double *a = malloc(na * sizeof(double)), *b = malloc(nb * sizeof(double));
        double *c = malloc(nc * sizeof(double)), *ref = malloc(nc * sizeof(double));
        double *orig = malloc(nc * sizeof(double));
        float *af = malloc(na * sizeof(float)), *bf = malloc(nb * sizeof(float));
        float *cf = malloc(nc * sizeof(float));
        floe_status st;

        for (size_t i = 0; i < na; i++)
            a[i] = af[i] = (float)((int)(i * 7919 % 23) - 11) / 8.0f;
        for (size_t i = 0; i < nb; i++)
            b[i] = bf[i] = (float)((int)(i * 104729 % 19) - 9) / 4.0f;
        for (size_t i = 0; i < nc; i++)
            c[i] = ref[i] = cf[i] = (float)((int)(i % 5) - 2);
        if (g->beta == 0)  /* beta 0 overwrites, NaNs included */
            for (size_t i = 0; i < nc; i += 3)
                c[i] = cf[i] = NAN;
        memcpy(orig, c, nc * sizeof(double));
        naive_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, lda, b, ldb, g->beta, ref,
                   ldc);
        if (dbl)
            st = ((floe_cpu_dgemm_fn)fn)((floe_threadpool *)&f->pool, g->ta, g->tb, g->m, g->n,
                                         g->k, g->alpha, a, lda, b, ldb, g->beta, c, ldc);
        else
            st = ((floe_cpu_sgemm_fn)fn)((floe_threadpool *)&f->pool, g->ta, g->tb, g->m, g->n,
                                         g->k, (float)g->alpha, af, lda, bf, ldb,
                                         (float)g->beta, cf, ldc);
        if (st != FLOE_OK)
            fail_msg("case %zu: %s", ci, fake_error);
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < ldc; j++) {
                double want = ref[i * ldc + j];
                double got = dbl ? c[i * ldc + j] : cf[i * ldc + j];
                double tol = (dbl ? 1e-12 : 1e-4) * (1 + fabs(want));
                if (j >= g->n)  /* padding untouched (NaN stays NaN) */
                    want = orig[i * ldc + j];
                if (!(fabs(got - want) <= tol) && !(isnan(got) && isnan(want)))
                    fail_msg("%s case %zu (ta %d tb %d %lldx%lldx%lld): C[%lld,%lld] = %g, "
                             "expected %g", dbl ? "dgemm" : "sgemm", ci, g->ta, g->tb,
                             (long long)g->m, (long long)g->n, (long long)g->k, (long long)i,
                             (long long)j, got, want);
            }
        free(a);
        free(b);
        free(c);
        free(ref);
        free(orig);
        free(af);
        free(bf);
        free(cf);
    }
}

static void gemm_sgemm_matches_naive(void **state) {
    fixture *f = *state;
    check_gemm_cases(f, 0);
    /* Big cases were split into panels over the pool. */
    assert_true(atomic_load(&f->pool.calls) > 0);
    assert_true(atomic_load(&f->pool.max_n) >= 2);
}

static void gemm_dgemm_matches_naive(void **state) {
    fixture *f = *state;
    check_gemm_cases(f, 1);
}

static void gemm_without_pool_runs_inline(void **state) {
    fixture *f = *state;
    floe_cpu_sgemm_fn sgemm = (floe_cpu_sgemm_fn)f->ops->proc_address(f->dev, FLOE_CPU_SGEMM);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];

    /* [[1,2,3],[4,5,6]] x [[1,0],[0,1],[1,1]] = [[4,5],[10,11]] */
    assert_int_equal(sgemm(NULL, 0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2), FLOE_OK);
    assert_true(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
}

static void gemm_rejects_bad_arguments(void **state) {
    fixture *f = *state;
    floe_cpu_sgemm_fn sgemm = (floe_cpu_sgemm_fn)f->ops->proc_address(f->dev, FLOE_CPU_SGEMM);
    floe_cpu_dgemm_fn dgemm = (floe_cpu_dgemm_fn)f->ops->proc_address(f->dev, FLOE_CPU_DGEMM);
    float x[16] = {0};
    double y[16] = {0};
    fake_pool *pool = &f->pool;

    assert_int_equal(sgemm((floe_threadpool *)pool, 0, 0, -1, 2, 2, 1, x, 2, x, 2, 0, x, 2),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(fake_error, "negative"));
    assert_int_equal(sgemm((floe_threadpool *)pool, 0, 0, 2, 2, 3, 1, x, 2, x, 2, 0, x, 2),
                     FLOE_INVALID_ARGUMENT);  /* lda 2 < K 3 */
    assert_non_null(strstr(fake_error, "stride"));
    assert_int_equal(sgemm((floe_threadpool *)pool, 1, 0, 3, 2, 2, 1, x, 2, x, 2, 0, x, 2),
                     FLOE_INVALID_ARGUMENT);  /* A^T is K x M: lda 2 < M 3 */
    assert_int_equal(sgemm((floe_threadpool *)pool, 0, 0, 2, 2, 2, 1, NULL, 2, x, 2, 0, x, 2),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(dgemm((floe_threadpool *)pool, 0, 1, 2, 3, 2, 1, y, 2, y, 1, 0, y, 3),
                     FLOE_INVALID_ARGUMENT);  /* B^T is N x K: ldb 1 < K 2 */
    assert_null(f->ops->proc_address(f->dev, "floe_cpu_no_such_thing"));
    assert_null(f->ops->proc_address(f->dev, NULL));
}

/* ---- GEMM: the cache of oneDNN primitives behind sgemm ------------------------------- */

/* A @g problem's operands, filled as check_gemm_cases fills them. */
typedef struct sgemm_data {
    int64_t lda, ldb, ldc;
    size_t na, nb, nc;
    float *a, *b, *c;
} sgemm_data;

static int sgemm_data_new(const gemm_case *g, sgemm_data *d) {
    int64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
    int64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;

    d->lda = ac + g->pad;
    d->ldb = bc + g->pad;
    d->ldc = g->n + g->pad;
    d->na = (size_t)(ar * d->lda + 1);
    d->nb = (size_t)(br * d->ldb + 1);
    d->nc = (size_t)(g->m * d->ldc + 1);
    d->a = malloc(d->na * sizeof(float));
    d->b = malloc(d->nb * sizeof(float));
    d->c = malloc(d->nc * sizeof(float));
    if (d->a == NULL || d->b == NULL || d->c == NULL)
        return -1;
    for (size_t i = 0; i < d->na; i++)
        d->a[i] = (float)((int)(i * 7919 % 23) - 11) / 8.0f;
    for (size_t i = 0; i < d->nb; i++)
        d->b[i] = (float)((int)(i * 104729 % 19) - 9) / 4.0f;
    for (size_t i = 0; i < d->nc; i++)
        d->c[i] = (float)((int)(i % 5) - 2);
    return 0;
}

static void sgemm_data_free(sgemm_data *d) {
    free(d->a);
    free(d->b);
    free(d->c);
}

/* Runs @g through @sgemm on @pool and checks C (padding included) against the naive
 * product in double; leaves the result in a copy at *@keep (nullable; free() it).
 * Returns 0, or -1 with the reason in @why.  Thread-safe: no cmocka calls. */
static int sgemm_run_checked(floe_cpu_sgemm_fn sgemm, floe_threadpool *pool, const gemm_case *g,
                             float **keep, char *why, size_t whylen) {
    sgemm_data d;
    double *a = NULL, *b = NULL, *ref = NULL;
    int rc = -1;

    if (keep != NULL)
        *keep = NULL;
    if (sgemm_data_new(g, &d) != 0)
        goto out;
    a = malloc(d.na * sizeof(double));
    b = malloc(d.nb * sizeof(double));
    ref = malloc(d.nc * sizeof(double));
    if (a == NULL || b == NULL || ref == NULL)
        goto out;
    for (size_t i = 0; i < d.na; i++)
        a[i] = d.a[i];
    for (size_t i = 0; i < d.nb; i++)
        b[i] = d.b[i];
    for (size_t i = 0; i < d.nc; i++)
        ref[i] = d.c[i];
    naive_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, d.lda, b, d.ldb, g->beta, ref,
               d.ldc);
    if (sgemm(pool, g->ta, g->tb, g->m, g->n, g->k, (float)g->alpha, d.a, d.lda, d.b, d.ldb,
              (float)g->beta, d.c, d.ldc) != FLOE_OK) {
        snprintf(why, whylen, "sgemm failed: %.400s", fake_error);
        goto out;
    }
    for (size_t i = 0; i < d.nc; i++) {
        if (!(fabs(d.c[i] - ref[i]) <= 1e-4 * (1 + fabs(ref[i])))) {
            snprintf(why, whylen, "%c%c %lldx%lldx%lld pad %lld alpha %g beta %g: C[%zu] = %g, "
                     "expected %g", g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', (long long)g->m,
                     (long long)g->n, (long long)g->k, (long long)g->pad, g->alpha, g->beta, i,
                     (double)d.c[i], ref[i]);
            goto out;
        }
    }
    if (keep != NULL) {
        *keep = d.c;
        d.c = NULL;
    }
    rc = 0;
out:
    if (rc != 0 && why[0] == '\0')
        snprintf(why, whylen, "out of memory in the test");
    sgemm_data_free(&d);
    free(a);
    free(b);
    free(ref);
    return rc;
}

static floe_cpu_sgemm_fn fixture_sgemm(fixture *f) {
    floe_cpu_sgemm_fn fn = (floe_cpu_sgemm_fn)f->ops->proc_address(f->dev, FLOE_CPU_SGEMM);
    assert_non_null(fn);
    return fn;
}

static size_t case_c_size(const gemm_case *g) {
    return (size_t)(g->m * (g->n + g->pad) + 1);
}

/* The MLP's products and their backward shapes, alpha and beta variants, one that the
 * pool splits, and keys that differ in one field only: each twice, the second run (a
 * cached primitive) bit for bit the first, both right. */
static void gemm_sgemm_cache_reuse_is_identical(void **state) {
    fixture *f = *state;
    floe_cpu_sgemm_fn sgemm = fixture_sgemm(f);
    static const gemm_case cases[] = {
        {0, 0, 32, 128, 784, 0, 1, 0},  {0, 0, 32, 10, 128, 0, 1, 0},
        {1, 0, 784, 128, 32, 0, 1, 0},  {0, 1, 32, 784, 128, 0, 1, 0},
        {1, 0, 128, 10, 32, 0, 1, 1},   {0, 1, 32, 128, 10, 0, 1, 0},
        {0, 0, 48, 40, 30, 0, 0.5, 1},  {1, 1, 33, 17, 65, 0, -2, 0.25},
        {0, 0, 200, 96, 64, 0, 1, 0},
        /* one extent, every key: transposes, alpha, beta */
        {0, 0, 24, 24, 24, 0, 1, 0},    {1, 0, 24, 24, 24, 0, 1, 0},
        {0, 1, 24, 24, 24, 0, 1, 0},    {1, 1, 24, 24, 24, 0, 1, 0},
        {0, 0, 24, 24, 24, 0, 1, 1},    {0, 0, 24, 24, 24, 0, 1, 0.5},
        {0, 0, 24, 24, 24, 0, 3, 0},    {0, 0, 24, 24, 24, 0, 3, 1},
    };
    char why[512] = "";

    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            float *first = NULL, *again = NULL;
            if (sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &cases[i], &first, why,
                                  sizeof(why)) != 0 ||
                sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &cases[i], &again, why,
                                  sizeof(why)) != 0)
                fail_msg("case %zu, round %d: %s", i, round, why);
            if (memcmp(first, again, case_c_size(&cases[i]) * sizeof(float)) != 0)
                fail_msg("case %zu, round %d: the second run differs from the first", i, round);
            free(first);
            free(again);
        }
}

/* More distinct problems than the cache holds: every one right, and the first ones,
 * evicted since, still right and unchanged when they come back. */
static void gemm_sgemm_many_shapes_evict_and_stay_right(void **state) {
    fixture *f = *state;
    floe_cpu_sgemm_fn sgemm = fixture_sgemm(f);
    enum { SHAPES = 300, AGAIN = 40 };
    float *kept[AGAIN] = {0};
    gemm_case g[SHAPES];
    char why[512] = "";

    for (int i = 0; i < SHAPES; i++) {
        g[i] = (gemm_case){i % 2, (i / 2) % 2, 1 + i % 13, 1 + (i * 7) % 29, 1 + i, 0,
                           i % 5 == 0 ? 0.5 : 1, i % 3 == 0 ? 1 : 0};
        if (sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &g[i],
                              i < AGAIN ? &kept[i] : NULL, why, sizeof(why)) != 0)
            fail_msg("shape %d: %s", i, why);
    }
    for (int i = 0; i < AGAIN; i++) {
        float *again = NULL;
        if (sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &g[i], &again, why,
                              sizeof(why)) != 0)
            fail_msg("shape %d again: %s", i, why);
        if (memcmp(kept[i], again, case_c_size(&g[i]) * sizeof(float)) != 0)
            fail_msg("shape %d: the result changed after eviction", i);
        free(kept[i]);
        free(again);
    }
}

typedef struct sgemm_worker {
    floe_cpu_sgemm_fn sgemm;
    fake_pool *pool;
    int id;
    atomic_int *failures;
    char why[512];
} sgemm_worker;

/* Shapes shared with the other workers (some split over the pool), and shapes of its
 * own: enough of those in all to make the cache evict while the others run. */
static void *sgemm_worker_main(void *arg) {
    sgemm_worker *w = arg;
    static const gemm_case shared[] = {
        {0, 0, 32, 128, 784, 0, 1, 0}, {1, 0, 784, 128, 32, 0, 1, 0},
        {0, 1, 32, 10, 128, 0, 1, 1},  {0, 0, 130, 70, 50, 0, 1, 0},
    };

    for (int it = 0; it < 40 && atomic_load(w->failures) == 0; it++) {
        gemm_case own = {it % 2, w->id % 2, 5 + w->id, 9 + it % 7, 100 + w->id * 50 + it, 0,
                         1, it % 2};
        const gemm_case *todo[2] = {&shared[(it + w->id) % 4], &own};
        for (int i = 0; i < 2; i++)
            if (sgemm_run_checked(w->sgemm, (floe_threadpool *)w->pool, todo[i], NULL, w->why,
                                  sizeof(w->why)) != 0) {
                atomic_fetch_add(w->failures, 1);
                break;
            }
    }
    return NULL;
}

static void gemm_sgemm_concurrent_callers_get_right_results(void **state) {
    fixture *f = *state;
    sgemm_worker w[4];
    pthread_t t[4];
    atomic_int failures = 0;

    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].sgemm = fixture_sgemm(f);
        w[i].pool = &f->pool;
        w[i].id = i;
        w[i].failures = &failures;
        assert_int_equal(pthread_create(&t[i], NULL, sgemm_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        if (w[i].why[0] != '\0')
            fail_msg("worker %d: %s", i, w[i].why);
    assert_int_equal(atomic_load(&failures), 0);
}

/* The cache lives while any device does; sgemm stays right with none left. */
static void gemm_sgemm_cache_follows_devices(void **state) {
    static const gemm_case g = {0, 0, 24, 40, 56, 0, 1, 0};
    fixture *f1, *f2;
    floe_cpu_sgemm_fn sgemm;
    char why[512] = "";

    assert_int_equal(fixture_setup((void **)&f1), 0);
    assert_int_equal(fixture_setup((void **)&f2), 0);
    sgemm = fixture_sgemm(f1);
    assert_int_equal(sgemm_run_checked(sgemm, NULL, &g, NULL, why, sizeof(why)), 0);
    f1->ops->destroy(f1->dev);
    assert_int_equal(sgemm_run_checked(sgemm, NULL, &g, NULL, why, sizeof(why)), 0);
    f2->ops->destroy(f2->dev);
    /* No device: dnnl_sgemm (or the library in use) directly. */
    if (sgemm_run_checked(sgemm, NULL, &g, NULL, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    free(f1);
    free(f2);
}

/* Host memory refused: sgemm still computes (without a cached primitive). */
static void gemm_sgemm_survives_host_alloc_failure(void **state) {
    fixture *f = *state;
    floe_cpu_sgemm_fn sgemm = fixture_sgemm(f);
    static const gemm_case g = {0, 0, 20, 36, 44, 0, 1, 0}, h = {1, 0, 20, 36, 44, 0, 2, 0};
    char why[512] = "";
    int rc;

    fake_fail_countdown = 1;
    fake_fail_persistent = 1;
    rc = sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &g, NULL, why, sizeof(why));
    fake_fail_countdown = 0;
    fake_fail_persistent = 0;
    if (rc != 0)
        fail_msg("%s", why);
    /* The first allocation only (the cache entry, then a slot's scratchpad). */
    for (int n = 1; n <= 3; n++) {
        gemm_case k = h;
        k.k += n;
        fake_fail_countdown = n;
        rc = sgemm_run_checked(sgemm, (floe_threadpool *)&f->pool, &k, NULL, why, sizeof(why));
        fake_fail_countdown = 0;
        if (rc != 0)
            fail_msg("allocation %d refused: %s", n, why);
    }
}

static void copies_move_bytes(void **state) {
    fixture *f = *state;
    char src[100], dst[100];
    void *d = NULL;

    for (int i = 0; i < 100; i++)
        src[i] = (char)i;
    assert_int_equal(f->ops->alloc(f->dev, 100, &d), FLOE_OK);
    assert_int_equal(f->ops->copy_to_device(f->dev, d, src, 100), FLOE_OK);
    assert_int_equal(f->ops->copy_on_device(f->dev, (char *)d + 10, d, 50), FLOE_OK);
    assert_int_equal(f->ops->copy_from_device(f->dev, dst, d, 100), FLOE_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(dst[i], i >= 10 && i < 60 ? i - 10 : i);
    assert_int_equal(f->ops->copy_to_device(f->dev, NULL, src, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(f->ops->copy_to_device(f->dev, NULL, NULL, 0), FLOE_OK);
    f->ops->free(f->dev, d, 100);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dev_cpu_registers_described_device),
        T(dev_cpu_describes_itself_in_init),
        T(allocator_alloc_is_aligned_and_writable),
        T(allocator_free_then_alloc_reuses_block),
        T(allocator_stats_track_use_peak_and_cache),
        cmocka_unit_test(allocator_cache_limit_zero_caches_nothing),
        T(allocator_host_failure_empties_cache_then_fails),
        T(allocator_double_free_is_reported_and_ignored),
        cmocka_unit_test(allocator_block_outlives_device),
        T(allocator_concurrent_churn_is_consistent),
        T(gemm_sgemm_matches_naive),
        T(gemm_dgemm_matches_naive),
        T(gemm_without_pool_runs_inline),
        T(gemm_rejects_bad_arguments),
        T(gemm_sgemm_cache_reuse_is_identical),
        T(gemm_sgemm_many_shapes_evict_and_stay_right),
        T(gemm_sgemm_concurrent_callers_get_right_results),
        cmocka_unit_test(gemm_sgemm_cache_follows_devices),
        T(gemm_sgemm_survives_host_alloc_failure),
        T(copies_move_bytes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
