/*
 * gemm.c - the CPU device's GEMM extras (floe/cpu.h: floe_cpu_sgemm, floe_cpu_dgemm).
 *
 * SGEMM calls oneDNN's dnnl_sgemm, DGEMM OpenBLAS's cblas_dgemm (oneDNN has none).
 * oneDNN was chosen over OpenBLAS for SGEMM by measuring (benchmarks/gemm_split.c):
 * the machine-wide OPENBLAS_CORETYPE=Haswell pins OpenBLAS to its AVX2 kernel.
 *
 * Threads: the libraries' own threads are never used.  A GEMM big enough to share
 * (M*N*K >= 64^3) is cut into as many row panels of C as Floe's pool has threads (or
 * column panels when C is wider than tall), and each panel is one library call on a
 * pool thread with OpenMP (oneDNN's runtime) limited to that thread, so Floe's pool is
 * the only team on the cores: no OpenMP team spinning against it, no
 * oversubscription when kernels run in parallel.  Measured on the project's 2-core
 * machine against dnnl_sgemm with its own OpenMP team (benchmarks/bench_matmul: MatMul
 * through a session), the split reaches 0.96-0.99 of it on 1024^3 and 2048^3; on
 * MLP-sized products (32x128x784) about 0.85, where both threads pack the shared
 * operand, still 1.4x one thread.
 *
 * Known cost: oneDNN generates all its SGEMM kernels on the first dnnl_sgemm call of
 * the process (60-140 ms measured here), so the first MatMul of a process is slow.
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

/* Splits @j over @pool, or runs it inline when it is small or the pool has one thread.
 * Returns the first library error code, 0 on success. */
static int gemm_split_run(floe_threadpool *pool, gemm_job *j) {
    int64_t work, panels, extent, align;
    int threads = pool != NULL ? floe_threadpool_size(pool) : 1;

    /* Saturating product: the work only decides the split. */
    work = j->m;
    work = j->n > 0 && work > INT64_MAX / j->n ? INT64_MAX : work * j->n;
    work = j->k > 0 && work > INT64_MAX / j->k ? INT64_MAX : work * j->k;
    panels = work / GEMM_SPLIT_MIN_WORK;
    if (panels > threads)
        panels = threads;
    j->split_n = j->n > j->m;
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

/* ---- oneDNN SGEMM ---------------------------------------------------------------------- */

#ifdef FLOE_HAVE_DNNL
static int sgemm_panel_dnnl(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const float *a = (const float *)j->a + panel_a_offset(j, m0);
    const float *b = (const float *)j->b + panel_b_offset(j, n0);
    float *c = (float *)j->c + m0 * j->ldc + n0;
    dnnl_status_t st = dnnl_sgemm(j->trans_a ? 'T' : 'N', j->trans_b ? 'T' : 'N', m1 - m0,
                                  n1 - n0, j->k, j->alpha_f, a, j->lda, b, j->ldb, j->beta_f, c,
                                  j->ldc);
    return st == dnnl_success ? 0 : (int)st;
}
#define SGEMM_PANEL sgemm_panel_dnnl
#define SGEMM_LIBRARY "dnnl_sgemm"
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
