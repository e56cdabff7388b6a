/*
 * gemm.c - the CPU device's GEMM extras (floe/cpu.h: floe_cpu_sgemm, floe_cpu_dgemm).
 *
 * SGEMM runs on oneDNN: cached matmul primitives for small and medium products, and
 * dnnl_sgemm for big ones, for strided operands and wherever a primitive cannot be had.
 * DGEMM is OpenBLAS's cblas_dgemm (oneDNN has none).  oneDNN was chosen over OpenBLAS
 * for SGEMM by measuring (benchmarks/gemm_split.c): the machine-wide
 * OPENBLAS_CORETYPE=Haswell pins OpenBLAS to its AVX2 kernel.
 *
 * Why primitives: the first dnnl_sgemm call of a process generates all of oneDNN's
 * SGEMM kernels, 30-90 ms whatever the size, so the first MatMul of a process was the
 * bulk of the time to a first result.  A matmul primitive generates only its own
 * kernels: 0.3-1 ms to create, 0.05-0.4 ms more on its first run.  Process start to the
 * first MLP result (benchmarks/bench_startup, 2-core machine, idle) went from 37.5 ms to
 * 8.9 ms, peak RSS from 16.2 to 11.3 MB.  The primitive (brgemm on AVX-512) matches
 * dnnl_sgemm on one thread for small products and beats it on some (32x10x128: 1.2x,
 * 1024x10x32 TN: 1.4x), but loses where prim_suits() says: big products (512^3: 0.95,
 * 1024x2048x2048: 0.90), B past the L2 cache with few rows (32x512x784: 0.82,
 * 32x1024x3136: 0.72) and narrow C with a long K (32x10x1024: 0.6).  Those run
 * dnnl_sgemm and pay its kernel generation once, on their first call; so do operands
 * that are not dense (row strides wider than the rows), which the primitive does not
 * take as fast.  Tiny-K products with a transposed operand lose 0.2-0.3 us per call
 * (32x128x10 NT: 0.85) and were left on primitives.
 *
 * The cache: one per process, since floe_cpu_sgemm_fn has no device argument; it lives
 * while a CPU device does (dev_cpu__gemm_device_up/down) and is emptied with the last.
 * Keyed by the problem (transposes, M, N, K, alpha, beta: alpha is an output scale,
 * beta a sum post-op), at most PRIM_CACHE_CAPACITY primitives, least recently used out
 * first; an entry is freed when neither the cache nor a running call holds it.  Runs
 * use a user-mode scratchpad: the library's own is not safe for one primitive run from
 * several threads.  Each entry keeps PRIM_SLOTS sets of what one run needs (stream,
 * memory objects, scratchpad), claimed without a lock; a lookup takes a mutex.
 *
 * Threads: the libraries' own threads are never used.  A GEMM big enough to share
 * (M*N*K >= 64^3) is cut into as many row panels of C as Floe's pool has threads (or
 * column panels when C is wider than tall, unless row panels can run primitives: dense,
 * B not transposed, 8 rows or more each; column panels are strided), and each
 * panel is one library call on a pool thread with OpenMP (oneDNN's runtime) limited to
 * that thread, so Floe's pool is the only team on the cores: no OpenMP team spinning
 * against it, no oversubscription when kernels run in parallel.  Primitives are made
 * on those threads too, so they are built for one thread.  Against dnnl_sgemm with its
 * own OpenMP team: 0.97-1.04 on 1024^3 and 2048^3 (benchmarks/bench_matmul, dnnl_sgemm
 * panels; primitive panels reached 0.94-0.96 there); 32x128x784 (primitive row panels)
 * 1.14x, 32x784x128 NT (dnnl_sgemm column panels) 1.65x, 784x128x32 TN 1.0x.
 *
 * Sections: argument checks and the trivial cases; the panel split; the libraries.
 */
#include "dev_cpu-impl.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef FLOE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef FLOE_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* Below this many multiply-adds a GEMM runs as one call on the calling thread: the
 * hand-off to the pool would cost more than the second core gains. */
#define GEMM_SPLIT_MIN_WORK ((int64_t)64 * 64 * 64)

/* ---- Arguments ----------------------------------------------------------------------- */

static floe_status gemm_check(const char *name, int64_t m, int64_t n, int64_t k, const void *a,
                              int64_t lda, int trans_a, const void *b, int64_t ldb,
                              int trans_b, const void *c, int64_t ldc) {
    int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;

    if (m < 0 || n < 0 || k < 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: negative extent (m %lld, n %lld, k %lld)",
                         name, (long long)m, (long long)n, (long long)k);
    if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) ||
        ldc < (n > 1 ? n : 1))
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: row stride too small (lda %lld for %lld columns, ldb %lld for "
                         "%lld, ldc %lld for %lld)",
                         name, (long long)lda, (long long)a_cols, (long long)ldb,
                         (long long)b_cols, (long long)ldc, (long long)n);
    if (m > 0 && n > 0 && (c == NULL || (k > 0 && (a == NULL || b == NULL))))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: NULL matrix", name);
    return FLOE_OK;
}

/* C = beta * C, for K == 0 or alpha == 0 (BLAS: beta == 0 overwrites NaNs too). */
#define GEMM_SCALE_C(T, m, n, beta, c, ldc)                                                \
    do {                                                                                   \
        for (int64_t i_ = 0; i_ < (m); i_++) {                                             \
            T *row_ = (c) + i_ * (ldc);                                                    \
            if ((beta) == 0)                                                               \
                memset(row_, 0, (size_t)(n) * sizeof(T));                                  \
            else if ((beta) != 1)                                                          \
                for (int64_t j_ = 0; j_ < (n); j_++)                                       \
                    row_[j_] *= (beta);                                                    \
        }                                                                                  \
    } while (0)

/* ---- The panel split ------------------------------------------------------------------ */

typedef struct gemm_job gemm_job;

/* One library call on C[m0:m1, n0:n1]; returns 0 or the library's error code. */
typedef int (*gemm_panel_fn)(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0,
                             int64_t n1);

struct gemm_job {
    int trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha_f, beta_f;
    double alpha_d, beta_d;
    const void *a, *b;
    void *c;
    gemm_panel_fn panel;
    int use_prim;                 /* dense panels run cached oneDNN matmul primitives */
    int rows_dense;               /* row panels keep every operand dense */
    int split_n;                  /* panels are column ranges of C */
    int64_t step;                 /* rows or columns per panel */
    atomic_int error;             /* the first library error code, 0 if none */
};

static void gemm_run_panels(void *arg, int64_t begin, int64_t end) {
    gemm_job *j = arg;
    int64_t extent = j->split_n ? j->n : j->m;
#ifdef _OPENMP
    /* ICVs are per thread: limit only this call, restore for whoever else uses OpenMP. */
    int saved = omp_get_max_threads();
    if (saved != 1)
        omp_set_num_threads(1);
#endif
    for (int64_t p = begin; p < end; p++) {
        int64_t lo = p * j->step, hi = lo + j->step < extent ? lo + j->step : extent;
        int err;
        if (lo >= hi)
            continue;
        err = j->split_n ? j->panel(j, 0, j->m, lo, hi) : j->panel(j, lo, hi, 0, j->n);
        if (err != 0) {
            int none = 0;
            atomic_compare_exchange_strong(&j->error, &none, err);
        }
    }
#ifdef _OPENMP
    if (saved != 1)
        omp_set_num_threads(saved);
#endif
}

/* Saturating M * N * K: the work only decides how to run a product. */
static int64_t gemm_work(const gemm_job *j) {
    int64_t work = j->m;
    work = j->n > 0 && work > INT64_MAX / j->n ? INT64_MAX : work * j->n;
    work = j->k > 0 && work > INT64_MAX / j->k ? INT64_MAX : work * j->k;
    return work;
}

/* Splits @j over @pool, or runs it inline when it is small or the pool has one thread.
 * Returns the first library error code, 0 on success. */
static int gemm_split_run(floe_threadpool *pool, gemm_job *j) {
    int64_t panels, extent, align;
    int threads = pool != NULL ? floe_threadpool_size(pool) : 1;

    panels = gemm_work(j) / GEMM_SPLIT_MIN_WORK;
    if (panels > threads)
        panels = threads;
    /* Column panels of C are strided, which oneDNN's matmul primitive does not take:
     * row panels when they are dense and there are rows enough for every thread, unless
     * B is transposed (each row panel's primitive would repack all of it). */
    j->split_n = j->n > j->m && !(j->rows_dense && !j->trans_b && (j->m + 7) / 8 >= panels);
    extent = j->split_n ? j->n : j->m;
    align = j->split_n ? 16 : 8;          /* a cache line of floats; a register block */
    if (panels > (extent + align - 1) / align)
        panels = (extent + align - 1) / align;
    if (panels <= 1) {
        j->step = extent;
        gemm_run_panels(j, 0, 1);
        return atomic_load(&j->error);
    }
    j->step = ((extent + panels - 1) / panels + align - 1) / align * align;
    panels = (extent + j->step - 1) / j->step;
    floe_parallel_for(pool, panels, 1, gemm_run_panels, j);
    return atomic_load(&j->error);
}

static void gemm_job_init(gemm_job *j, int trans_a, int trans_b, int64_t m, int64_t n,
                          int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                          void *c, int64_t ldc, gemm_panel_fn panel) {
    memset(j, 0, sizeof(*j));
    j->trans_a = trans_a != 0;
    j->trans_b = trans_b != 0;
    j->m = m;
    j->n = n;
    j->k = k;
    j->a = a;
    j->lda = lda;
    j->b = b;
    j->ldb = ldb;
    j->c = c;
    j->ldc = ldc;
    j->panel = panel;
    atomic_init(&j->error, 0);
}

/* Element offsets of the panel's first element of A (rows m0..) and B (columns n0..). */
static int64_t panel_a_offset(const gemm_job *j, int64_t m0) {
    return j->trans_a ? m0 : m0 * j->lda;
}
static int64_t panel_b_offset(const gemm_job *j, int64_t n0) {
    return j->trans_b ? n0 * j->ldb : n0;
}

/* ---- oneDNN SGEMM: cached matmul primitives -------------------------------------------- */

#ifdef FLOE_HAVE_DNNL

/* Primitives kept at most (least recently used goes first), hash buckets (a power of 2),
 * and execution slots per primitive (concurrent calls beyond that make temporary ones). */
#define PRIM_CACHE_CAPACITY 128
#define PRIM_BUCKETS 256
#define PRIM_SLOTS 4

/* Where primitives lose to dnnl_sgemm (prim_suits): multiply-adds, elements of B, and
 * narrow C (columns) with a long K. */
#define PRIM_MAX_WORK ((int64_t)1 << 24)
#define PRIM_MAX_B_ELEMS ((int64_t)1 << 18)
#define PRIM_NARROW_N 64
#define PRIM_LONG_K 1024

/* A dense panel problem: the strides follow from the extents and the transposes. */
typedef struct prim_key {
    int64_t m, n, k;
    uint32_t alpha_bits, beta_bits;
    int trans_a, trans_b;
} prim_key;

/* What one execution needs for itself: oneDNN streams and memory objects are not for
 * concurrent use, and a user-mode scratchpad is private to one execution. */
typedef struct prim_slot {
    atomic_int busy;
    int ready;                        /* the objects below exist */
    dnnl_stream_t stream;
    dnnl_memory_t mem[4];             /* src, weights, dst, scratchpad (NULL if none) */
    void *scratch;
} prim_slot;

typedef struct prim_entry prim_entry;
struct prim_entry {
    prim_key key;
    uint32_t hash;
    atomic_int refs;                  /* the cache's reference and each caller's */
    dnnl_engine_t engine;             /* the cache's: it outlives every entry */
    dnnl_primitive_t prim;            /* NULL: no fast primitive, the caller uses dnnl_sgemm */
    dnnl_memory_desc_t md[4];         /* src, weights, dst, scratchpad */
    size_t scratch_size;
    prim_entry *chain;                /* next in the hash bucket */
    prim_entry *newer, *older;        /* the LRU list */
    prim_slot slots[PRIM_SLOTS];
};

/* One cache for the process: floe_cpu_sgemm_fn has no device argument.  It lives while a
 * CPU device does (dev_cpu__gemm_device_up/down); the engine is made on first use and
 * goes when the last device and the last entry are gone. */
static struct {
    pthread_mutex_t lock;
    int devices;                      /* live CPU devices */
    int entries;                      /* entries not yet freed (cached or held by a call) */
    int cached;                       /* entries in the table */
    int engine_failed;
    dnnl_engine_t engine;
    prim_entry *buckets[PRIM_BUCKETS];
    prim_entry *newest, *oldest;
} prim_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int prim_fallback_logged;

static void prim_log_fallback(const prim_key *key, const char *why) {
    if (atomic_exchange(&prim_fallback_logged, 1) == 0)
        floe_log(NULL, FLOE_PLUGIN_LOG_INFO,
                 "dev_cpu: no oneDNN matmul primitive for %c%c %lldx%lldx%lld (%s); using "
                 "dnnl_sgemm there (logged once)",
                 key->trans_a ? 'T' : 'N', key->trans_b ? 'T' : 'N', (long long)key->m,
                 (long long)key->n, (long long)key->k, why);
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static uint32_t prim_key_hash(const prim_key *k) {
    uint64_t h = 0x9e3779b97f4a7c15u;
    const uint64_t v[5] = {(uint64_t)k->m, (uint64_t)k->n, (uint64_t)k->k,
                           (uint64_t)k->alpha_bits << 32 | k->beta_bits,
                           (uint64_t)(k->trans_a * 2 + k->trans_b)};
    for (int i = 0; i < 5; i++) {
        h ^= v[i];
        h *= 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

static int prim_key_equal(const prim_key *x, const prim_key *y) {
    return x->m == y->m && x->n == y->n && x->k == y->k && x->alpha_bits == y->alpha_bits &&
           x->beta_bits == y->beta_bits && x->trans_a == y->trans_a && x->trans_b == y->trans_b;
}

/* The engine goes with the last device once no entry can still use it (lock held). */
static void prim_engine_release_locked(void) {
    if (prim_cache.devices == 0 && prim_cache.entries == 0 && prim_cache.engine != NULL) {
        dnnl_engine_destroy(prim_cache.engine);
        prim_cache.engine = NULL;
    }
    if (prim_cache.devices == 0)
        prim_cache.engine_failed = 0;
}

static void prim_slot_clear(prim_slot *s) {
    for (int i = 0; i < 4; i++)
        if (s->mem[i] != NULL)
            dnnl_memory_destroy(s->mem[i]);
    if (s->stream != NULL)
        dnnl_stream_destroy(s->stream);
    floe_free(s->scratch);
    memset(s->mem, 0, sizeof(s->mem));
    s->stream = NULL;
    s->scratch = NULL;
    s->ready = 0;
}

/* Frees @e, whose last reference is gone (lock held). */
static void prim_entry_free_locked(prim_entry *e) {
    for (int i = 0; i < PRIM_SLOTS; i++)
        prim_slot_clear(&e->slots[i]);
    if (e->prim != NULL)
        dnnl_primitive_destroy(e->prim);
    floe_free(e);
    prim_cache.entries--;
    prim_engine_release_locked();
}

static void prim_entry_release(prim_entry *e) {
    if (atomic_fetch_sub(&e->refs, 1) == 1) {
        pthread_mutex_lock(&prim_cache.lock);
        prim_entry_free_locked(e);
        pthread_mutex_unlock(&prim_cache.lock);
    }
}

static void prim_lru_unlink(prim_entry *e) {
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        prim_cache.newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        prim_cache.oldest = e->newer;
    e->newer = e->older = NULL;
}

static void prim_lru_push(prim_entry *e) {
    e->older = prim_cache.newest;
    e->newer = NULL;
    if (prim_cache.newest != NULL)
        prim_cache.newest->newer = e;
    else
        prim_cache.oldest = e;
    prim_cache.newest = e;
}

/* Takes @e out of the table and drops the table's reference (lock held). */
static void prim_entry_evict_locked(prim_entry *e) {
    prim_entry **pp = &prim_cache.buckets[e->hash & (PRIM_BUCKETS - 1)];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    prim_lru_unlink(e);
    prim_cache.cached--;
    if (atomic_fetch_sub(&e->refs, 1) == 1)
        prim_entry_free_locked(e);
}

/* oneDNN's matmul primitive for @key in @e; leaves e->prim NULL when oneDNN has nothing
 * better than its reference code, or fails (lock held: creation is once per shape). */
static void prim_entry_build(prim_entry *e) {
    const prim_key *k = &e->key;
    dnnl_dims_t da = {k->m, k->k}, db = {k->k, k->n}, dc = {k->m, k->n};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_matmul_desc_t desc;
    const dnnl_memory_desc_t *scratch;
    const char *impl = NULL;
    dnnl_status_t st;

    st = dnnl_memory_desc_init_by_tag(&e->md[0], 2, da, dnnl_f32, k->trans_a ? dnnl_ba : dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->md[1], 2, db, dnnl_f32,
                                          k->trans_b ? dnnl_ba : dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->md[2], 2, dc, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&desc, &e->md[0], &e->md[1], NULL, &e->md[2]);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_create(&attr);
    /* User scratchpad: the library's own is not safe for a primitive run from several
     * threads, and ours does not come and go with each execution. */
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && k->alpha_bits != float_bits(1.0f)) {
        float alpha;
        memcpy(&alpha, &k->alpha_bits, sizeof(alpha));
        st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha);
    }
    if (st == dnnl_success && k->beta_bits != float_bits(0.0f)) {
        float beta;
        memcpy(&beta, &k->beta_bits, sizeof(beta));
        st = dnnl_post_ops_create(&post);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_sum(post, beta);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, post);
    }
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, &desc, attr, e->engine, NULL);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (st == dnnl_success && impl != NULL && strncmp(impl, "ref", 3) == 0) {
        prim_log_fallback(k, impl);
    } else if (st == dnnl_success) {
        scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->scratch_size = scratch != NULL ? dnnl_memory_desc_get_size(scratch) : 0;
        if (e->scratch_size > 0)
            e->md[3] = *scratch;
        st = dnnl_primitive_create(&e->prim, pd);
        if (st != dnnl_success)
            e->prim = NULL;
    }
    if (st != dnnl_success)
        prim_log_fallback(k, "primitive creation failed");
    if (pd != NULL)
        dnnl_primitive_desc_destroy(pd);
    if (post != NULL)
        dnnl_post_ops_destroy(post);
    if (attr != NULL)
        dnnl_primitive_attr_destroy(attr);
}

/* The cached entry for @key with a reference for the caller (prim_entry_release), made
 * if new; NULL when there is no cache (no device, no engine, no memory). */
static prim_entry *prim_get(const prim_key *key) {
    uint32_t h = prim_key_hash(key);
    prim_entry *e;

    pthread_mutex_lock(&prim_cache.lock);
    if (prim_cache.devices == 0)
        goto fail_unlock;
    for (e = prim_cache.buckets[h & (PRIM_BUCKETS - 1)]; e != NULL; e = e->chain)
        if (e->hash == h && prim_key_equal(&e->key, key)) {
            if (prim_cache.newest != e) {
                prim_lru_unlink(e);
                prim_lru_push(e);
            }
            atomic_fetch_add(&e->refs, 1);
            pthread_mutex_unlock(&prim_cache.lock);
            return e;
        }
    if (prim_cache.engine == NULL && !prim_cache.engine_failed &&
        dnnl_engine_create(&prim_cache.engine, dnnl_cpu, 0) != dnnl_success) {
        prim_cache.engine = NULL;
        prim_cache.engine_failed = 1;
        prim_log_fallback(key, "no CPU engine");
    }
    if (prim_cache.engine == NULL)
        goto fail_unlock;
    e = floe_alloc(sizeof(*e), 64);
    if (e == NULL)
        goto fail_unlock;
    memset(e, 0, sizeof(*e));
    e->key = *key;
    e->hash = h;
    e->engine = prim_cache.engine;
    atomic_init(&e->refs, 2);
    for (int i = 0; i < PRIM_SLOTS; i++)
        atomic_init(&e->slots[i].busy, 0);
    prim_entry_build(e);
    e->chain = prim_cache.buckets[h & (PRIM_BUCKETS - 1)];
    prim_cache.buckets[h & (PRIM_BUCKETS - 1)] = e;
    prim_lru_push(e);
    prim_cache.cached++;
    prim_cache.entries++;
    while (prim_cache.cached > PRIM_CACHE_CAPACITY)
        prim_entry_evict_locked(prim_cache.oldest);
    pthread_mutex_unlock(&prim_cache.lock);
    return e;

fail_unlock:
    pthread_mutex_unlock(&prim_cache.lock);
    return NULL;
}

/* Makes @s's stream and memory objects for @e; 0 or a oneDNN status. */
static int prim_slot_prepare(const prim_entry *e, prim_slot *s) {
    dnnl_status_t st = dnnl_stream_create(&s->stream, e->engine, dnnl_stream_default_flags);
    int nmem = e->scratch_size > 0 ? 4 : 3;

    if (st != dnnl_success) {
        s->stream = NULL;
        return (int)st;
    }
    if (e->scratch_size > 0) {
        s->scratch = floe_alloc(e->scratch_size, 64);
        if (s->scratch == NULL) {
            prim_slot_clear(s);
            return (int)dnnl_out_of_memory;
        }
    }
    for (int i = 0; i < nmem && st == dnnl_success; i++) {
        st = dnnl_memory_create(&s->mem[i], &e->md[i], e->engine,
                                i == 3 ? s->scratch : DNNL_MEMORY_NONE);
        if (st != dnnl_success)
            s->mem[i] = NULL;
    }
    if (st != dnnl_success) {
        prim_slot_clear(s);
        return (int)st;
    }
    s->ready = 1;
    return 0;
}

/* C = op(A) op(B) (with the key's alpha and beta) through @e; 0, a oneDNN status, or
 * PRIM_NOT_RUN when the objects for the run could not be made (nothing was written). */
#define PRIM_NOT_RUN (-1)
static int prim_execute(prim_entry *e, const float *a, const float *b, float *c) {
    prim_slot tmp, *s = NULL;
    dnnl_exec_arg_t args[4];
    int err = 0, nargs;

    for (int i = 0; i < PRIM_SLOTS && s == NULL; i++) {
        int idle = 0;
        if (atomic_load_explicit(&e->slots[i].busy, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&e->slots[i].busy, &idle, 1))
            s = &e->slots[i];
    }
    if (s == NULL) { /* more concurrent calls than slots: objects for this call only */
        memset(&tmp, 0, sizeof(tmp));
        s = &tmp;
    }
    if (!s->ready && prim_slot_prepare(e, s) != 0)
        err = PRIM_NOT_RUN;
    if (err == 0) {
        dnnl_status_t st = dnnl_memory_set_data_handle(s->mem[0], (void *)a);
        if (st == dnnl_success)
            st = dnnl_memory_set_data_handle(s->mem[1], (void *)b);
        if (st == dnnl_success)
            st = dnnl_memory_set_data_handle(s->mem[2], c);
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, s->mem[0]};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, s->mem[1]};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, s->mem[2]};
        args[3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->mem[3]};
        nargs = s->mem[3] != NULL ? 4 : 3;
        if (st == dnnl_success)
            st = dnnl_primitive_execute(e->prim, s->stream, nargs, args);
        if (st == dnnl_success)
            st = dnnl_stream_wait(s->stream);
        err = st == dnnl_success ? 0 : (int)st;
    }
    if (s == &tmp)
        prim_slot_clear(&tmp);
    else
        atomic_store_explicit(&s->busy, 0, memory_order_release);
    return err;
}

/* Row stride that a stored @rows x @cols matrix needs to be dense, when it is: one row
 * is dense whatever its stride. */
static int stored_dense(int64_t rows, int64_t cols, int64_t ld) {
    return rows <= 1 || ld == cols;
}

/* Whether the panel C[m0:m1, n0:n1] has all three operands dense (a primitive's case). */
static int panel_dense(const gemm_job *j, int64_t pm, int64_t pn) {
    return (j->trans_a ? stored_dense(j->k, pm, j->lda) : stored_dense(pm, j->k, j->lda)) &&
           (j->trans_b ? stored_dense(pn, j->k, j->ldb) : stored_dense(j->k, pn, j->ldb)) &&
           stored_dense(pm, pn, j->ldc);
}

/* Whether a primitive beats dnnl_sgemm on @j, by shape (measured one thread per shape,
 * see the opening comment): not on big products, where dnnl_sgemm's kernels are faster
 * and their one-time generation is paid back; not when B is past the L2 cache (the
 * primitive packs B on every call); not for narrow C with a long K. */
static int prim_suits(const gemm_job *j) {
    int64_t work = gemm_work(j), b_elems = j->k;

    b_elems = j->n > 0 && b_elems > INT64_MAX / j->n ? INT64_MAX : b_elems * j->n;
    return work < PRIM_MAX_WORK && b_elems <= PRIM_MAX_B_ELEMS &&
           !(j->n < PRIM_NARROW_N && j->k >= PRIM_LONG_K);
}

static int sgemm_panel_dnnl(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const float *a = (const float *)j->a + panel_a_offset(j, m0);
    const float *b = (const float *)j->b + panel_b_offset(j, n0);
    float *c = (float *)j->c + m0 * j->ldc + n0;
    dnnl_status_t st;

    if (j->use_prim && panel_dense(j, m1 - m0, n1 - n0)) {
        prim_key key = {m1 - m0, n1 - n0, j->k, float_bits(j->alpha_f), float_bits(j->beta_f),
                        j->trans_a, j->trans_b};
        prim_entry *e;
        if (key.beta_bits == float_bits(-0.0f))
            key.beta_bits = float_bits(0.0f);
        e = prim_get(&key);
        if (e != NULL) {
            int err = e->prim != NULL ? prim_execute(e, a, b, c) : PRIM_NOT_RUN;
            prim_entry_release(e);
            if (err != PRIM_NOT_RUN)
                return err;
        }
    }
    st = dnnl_sgemm(j->trans_a ? 'T' : 'N', j->trans_b ? 'T' : 'N', m1 - m0, n1 - n0, j->k,
                    j->alpha_f, a, j->lda, b, j->ldb, j->beta_f, c, j->ldc);
    return st == dnnl_success ? 0 : (int)st;
}

static void prim_cache_device_up(void) {
    pthread_mutex_lock(&prim_cache.lock);
    prim_cache.devices++;
    pthread_mutex_unlock(&prim_cache.lock);
}

/* With the last device goes every cached primitive; calls still running keep theirs. */
static void prim_cache_device_down(void) {
    pthread_mutex_lock(&prim_cache.lock);
    if (prim_cache.devices > 0 && --prim_cache.devices == 0) {
        while (prim_cache.oldest != NULL)
            prim_entry_evict_locked(prim_cache.oldest);
        prim_engine_release_locked();
    }
    pthread_mutex_unlock(&prim_cache.lock);
}

#define SGEMM_PANEL sgemm_panel_dnnl
#define SGEMM_LIBRARY "oneDNN"
#elif defined(FLOE_HAVE_OPENBLAS)
static int sgemm_panel_openblas(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0,
                                int64_t n1) {
    cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                j->trans_b ? CblasTrans : CblasNoTrans, (blasint)(m1 - m0), (blasint)(n1 - n0),
                (blasint)j->k, j->alpha_f, (const float *)j->a + panel_a_offset(j, m0),
                (blasint)j->lda, (const float *)j->b + panel_b_offset(j, n0), (blasint)j->ldb,
                j->beta_f, (float *)j->c + m0 * j->ldc + n0, (blasint)j->ldc);
    return 0;
}
#define SGEMM_PANEL sgemm_panel_openblas
#define SGEMM_LIBRARY "cblas_sgemm"
#endif

#ifdef FLOE_HAVE_OPENBLAS
/* cblas takes int extents: refuse what does not fit rather than truncate. */
static floe_status blas_int_check(const char *name, int64_t m, int64_t n, int64_t k,
                                  int64_t lda, int64_t ldb, int64_t ldc) {
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
        ldc > INT_MAX)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: extents over 2^31-1 are not supported",
                         name);
    return FLOE_OK;
}
#endif

#ifdef SGEMM_PANEL
static floe_status cpu_sgemm(floe_threadpool *pool, int trans_a, int trans_b, int64_t m,
                             int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    gemm_job j;
    floe_status st;
    int err;

    st = gemm_check(FLOE_CPU_SGEMM, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc);
    if (st != FLOE_OK)
        return st;
#ifndef FLOE_HAVE_DNNL
    st = blas_int_check(FLOE_CPU_SGEMM, m, n, k, lda, ldb, ldc);
    if (st != FLOE_OK)
        return st;
#endif
    if (m == 0 || n == 0)
        return FLOE_OK;
    if (k == 0 || alpha == 0.0f) {
        GEMM_SCALE_C(float, m, n, beta, c, ldc);
        return FLOE_OK;
    }
    gemm_job_init(&j, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, SGEMM_PANEL);
    j.alpha_f = alpha;
    j.beta_f = beta;
#ifdef FLOE_HAVE_DNNL
    j.use_prim = prim_suits(&j);
    j.rows_dense = j.use_prim && panel_dense(&j, m < 2 ? m : 2, n);
#endif
    err = gemm_split_run(pool, &j);
    if (err != 0)
        return floe_fail(FLOE_INTERNAL, "%s: %s failed with status %d (m %lld, n %lld, k %lld)",
                         FLOE_CPU_SGEMM, SGEMM_LIBRARY, err, (long long)m, (long long)n,
                         (long long)k);
    return FLOE_OK;
}
#endif

/* ---- OpenBLAS DGEMM --------------------------------------------------------------------- */

#ifdef FLOE_HAVE_OPENBLAS
static int dgemm_panel_openblas(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0,
                                int64_t n1) {
    cblas_dgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                j->trans_b ? CblasTrans : CblasNoTrans, (blasint)(m1 - m0), (blasint)(n1 - n0),
                (blasint)j->k, j->alpha_d, (const double *)j->a + panel_a_offset(j, m0),
                (blasint)j->lda, (const double *)j->b + panel_b_offset(j, n0),
                (blasint)j->ldb, j->beta_d, (double *)j->c + m0 * j->ldc + n0,
                (blasint)j->ldc);
    return 0;
}

static floe_status cpu_dgemm(floe_threadpool *pool, int trans_a, int trans_b, int64_t m,
                             int64_t n, int64_t k, double alpha, const double *a, int64_t lda,
                             const double *b, int64_t ldb, double beta, double *c,
                             int64_t ldc) {
    gemm_job j;
    floe_status st;

    st = gemm_check(FLOE_CPU_DGEMM, m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc);
    if (st == FLOE_OK)
        st = blas_int_check(FLOE_CPU_DGEMM, m, n, k, lda, ldb, ldc);
    if (st != FLOE_OK)
        return st;
    if (m == 0 || n == 0)
        return FLOE_OK;
    if (k == 0 || alpha == 0.0) {
        GEMM_SCALE_C(double, m, n, beta, c, ldc);
        return FLOE_OK;
    }
    gemm_job_init(&j, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                  dgemm_panel_openblas);
    j.alpha_d = alpha;
    j.beta_d = beta;
    gemm_split_run(pool, &j);
    return FLOE_OK;
}
#endif

/* ---- Entry points --------------------------------------------------------------------- */

static char gemm_library_name[96];
static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;

static void gemm_init_once(void) {
#ifdef FLOE_HAVE_OPENBLAS
    /* Process-wide in OpenBLAS: every call then runs on its caller's thread. */
    openblas_set_num_threads(1);
#endif
#if defined(FLOE_HAVE_DNNL)
    const dnnl_version_t *v = dnnl_version();
    snprintf(gemm_library_name, sizeof(gemm_library_name), "oneDNN %d.%d.%d%s", v->major,
             v->minor, v->patch,
#ifdef FLOE_HAVE_OPENBLAS
             " + OpenBLAS"
#else
             ""
#endif
    );
#elif defined(FLOE_HAVE_OPENBLAS)
    snprintf(gemm_library_name, sizeof(gemm_library_name), "OpenBLAS");
#else
    snprintf(gemm_library_name, sizeof(gemm_library_name), "none (built-in loops)");
#endif
}

void dev_cpu__gemm_init(void) {
    pthread_once(&gemm_once, gemm_init_once);
}

void dev_cpu__gemm_device_up(void) {
#ifdef FLOE_HAVE_DNNL
    prim_cache_device_up();
#endif
}

void dev_cpu__gemm_device_down(void) {
#ifdef FLOE_HAVE_DNNL
    prim_cache_device_down();
#endif
}

floe_cpu_sgemm_fn dev_cpu__sgemm(void) {
#ifdef SGEMM_PANEL
    return cpu_sgemm;
#else
    return NULL;
#endif
}

floe_cpu_dgemm_fn dev_cpu__dgemm(void) {
#ifdef FLOE_HAVE_OPENBLAS
    return cpu_dgemm;
#else
    return NULL;
#endif
}

const char *dev_cpu__gemm_library(void) {
    pthread_once(&gemm_once, gemm_init_once);
    return gemm_library_name;
}
