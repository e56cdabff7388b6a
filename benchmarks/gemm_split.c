/*
 * gemm_split.c - chooses dev_cpu's GEMM design by measuring it.
 *
 * Compares, side by side in one process, square row-major SGEMMs of 256^3 .. 2048^3:
 *   dnnl1    oneDNN dnnl_sgemm with 1 OpenMP thread
 *   dnnl     oneDNN dnnl_sgemm with its own OpenMP team (all cores)
 *   split    dnnl_sgemm per M panel (N panel for skinny M) from a pthread pool of
 *            all cores, OpenMP limited to 1 thread in each caller; this is the design
 *            of plugins/dev_cpu/gemm.c, run on a stand-in for Floe's pool
 *   oblas1   OpenBLAS cblas_sgemm with 1 thread
 *   oblas    OpenBLAS cblas_sgemm with its own threads (all cores)
 * and prints GFLOP/s (median of the repetitions, min..max) and split/dnnl.  Run it with
 * the machine's environment untouched (OPENBLAS_CORETYPE stays as the machine sets it).
 *
 * Built by hand (not part of the test suite):
 *   cc -O2 -fopenmp benchmarks/gemm_split.c -o gemm_split \
 *      $(pkg-config --cflags --libs openblas) -ldnnl -lpthread -lm
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- A minimal persistent pool: nthreads - 1 workers plus the caller ---------------- */

typedef struct pool {
    int nthreads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    uint64_t generation;
    int pending;
    int stop;
    void (*fn)(void *arg, int64_t begin, int64_t end);
    void *arg;
    int64_t n;
    atomic_int_fast64_t next;
} pool;

static void pool_work(pool *p) {
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            break;
        p->fn(p->arg, i, i + 1);
    }
}

static void *pool_main(void *arg) {
    pool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        pool_work(p);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Runs fn over [0, n) one index per task. */
static void pool_run(pool *p, int64_t n, void (*fn)(void *, int64_t, int64_t), void *arg) {
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next, 0);
    p->pending = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pool_work(p);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pool_init(pool *p, int nthreads) {
    memset(p, 0, sizeof(*p));
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->tids = calloc((size_t)nthreads, sizeof(pthread_t));
    for (int i = 1; i < nthreads; i++)
        pthread_create(&p->tids[i], NULL, pool_main, p);
}

static void pool_deinit(pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
    free(p->tids);
}

/* ---- The split SGEMM (square, no transposes: what matters is the split) ------------- */

typedef struct split_args {
    int64_t m, n, k, panels, step;
    const float *a, *b;
    float *c;
} split_args;

static void split_panel(void *arg, int64_t begin, int64_t end) {
    split_args *s = arg;
    omp_set_num_threads(1);
    for (int64_t p = begin; p < end; p++) {
        int64_t m0 = p * s->step, m1 = m0 + s->step < s->m ? m0 + s->step : s->m;
        if (m0 >= m1)
            continue;
        dnnl_sgemm('N', 'N', m1 - m0, s->n, s->k, 1.0f, s->a + m0 * s->k, s->k, s->b, s->n,
                   0.0f, s->c + m0 * s->n, s->n);
    }
}

static void split_sgemm(pool *p, int64_t n, const float *a, const float *b, float *c) {
    split_args s = {n, n, n, p->nthreads, 0, a, b, c};
    s.step = ((n + s.panels - 1) / s.panels + 15) / 16 * 16;
    pool_run(p, s.panels, split_panel, &s);
}

/* ---- Timing ------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

enum { REPS = 15 };

typedef struct result {
    double median, min, max;  /* GFLOP/s */
} result;

static result time_one(int which, pool *p, int64_t n, const float *a, const float *b,
                       float *c) {
    double t[REPS], flops = 2.0 * (double)n * (double)n * (double)n;
    int ncores = p->nthreads;
    for (int r = -3; r < REPS; r++) {  /* three warm-up runs (JIT, page faults) */
        double t0 = now_s();
        switch (which) {
        case 0:
            omp_set_num_threads(1);
            dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            break;
        case 1:
            omp_set_num_threads(ncores);
            dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            break;
        case 2:
            split_sgemm(p, n, a, b, c);
            break;
        case 3:
            openblas_set_num_threads(1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n,
                        1.0f, a, (int)n, b, (int)n, 0.0f, c, (int)n);
            break;
        default:
            openblas_set_num_threads(ncores);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n,
                        1.0f, a, (int)n, b, (int)n, 0.0f, c, (int)n);
            break;
        }
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    qsort(t, REPS, sizeof(double), cmp_double);
    result res = {flops / t[REPS / 2] * 1e-9, flops / t[REPS - 1] * 1e-9, flops / t[0] * 1e-9};
    return res;
}

int main(int argc, char **argv) {
    static const char *names[] = {"dnnl1", "dnnl", "split", "oblas1", "oblas"};
    int ncores = omp_get_num_procs();
    int64_t sizes[] = {256, 512, 1024, 2048};
    int nsizes = argc > 1 ? 1 : 4;
    pool p;

    if (argc > 1)
        sizes[0] = atoll(argv[1]);
    pool_init(&p, ncores);
    printf("cores %d, OPENBLAS_CORETYPE=%s\n", ncores,
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    for (int s = 0; s < nsizes; s++) {
        int64_t n = sizes[s];
        float *a = aligned_alloc(64, (size_t)(n * n) * sizeof(float));
        float *b = aligned_alloc(64, (size_t)(n * n) * sizeof(float));
        float *c = aligned_alloc(64, (size_t)(n * n) * sizeof(float));
        result r[5];
        for (int64_t i = 0; i < n * n; i++) {
            a[i] = (float)((i * 7) % 13) * 0.1f;
            b[i] = (float)((i * 5) % 11) * 0.1f;
        }
        /* Interleave the variants so drifting machine load hits them alike. */
        for (int w = 0; w < 5; w++)
            r[w] = time_one(w, &p, n, a, b, c);
        printf("%5lld^3:", (long long)n);
        for (int w = 0; w < 5; w++)
            printf("  %s %6.1f (%5.1f..%5.1f)", names[w], r[w].median, r[w].min, r[w].max);
        printf("  split/dnnl %.3f\n", r[2].median / r[1].median);
        free(a);
        free(b);
        free(c);
    }
    pool_deinit(&p);
    return 0;
}
