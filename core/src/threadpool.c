/*
 * threadpool.c - the one shared pool: queued tasks and parallel_for.
 *
 * A pool of N threads starts N - 1 workers; the caller of parallel_for is the Nth.
 * Two kinds of work share the workers:
 *
 *   - tasks (floe__threadpool_submit): a FIFO ring of fn(arg), used by the executor
 *     to run independent nodes at once;
 *   - parallel_for jobs: a job lives on its caller's stack, is split into chunks of at
 *     least `grain` items, and sits on the pool's list of active jobs while its
 *     chunks are handed out.  Chunks are claimed with an atomic counter; the caller
 *     claims chunks too, then unlinks the job and waits until every worker that joined
 *     it has left.  Workers prefer the newest job (nested loops finish first) over
 *     queued tasks.
 *
 * Nesting never deadlocks: a thread only waits for chunks that other threads have
 * claimed and are running to completion, and it claims no chunk it will not run.
 * Small loops (n <= grain) and pools of one thread run inline without touching a lock.
 * Idle workers spin briefly on an epoch counter, then sleep on a condition variable.
 *
 * Sections: pool state, workers, submit, parallel_for, lifetime.
 */
#include "core-impl.h"

#include <stdio.h>
#include <string.h>

#define FLOE__MAX_THREADS 1024
#define FLOE__SPIN_ITERS 4000
/* Chunks per participating thread, for load balance with uneven chunk costs. */
#define FLOE__CHUNKS_PER_THREAD 4

/* ---- Pool state ------------------------------------------------------------------- */

typedef struct pf_job {
    void (*fn)(void *arg, int64_t begin, int64_t end);
    void *arg;
    int64_t n;
    int64_t chunk;                 /* items per chunk */
    int64_t nchunks;
    atomic_llong next;             /* next chunk to claim */
    atomic_int helpers;            /* workers running chunks of this job: joined under the
                                      lock, left without it (the caller spins on it) */
    bool linked;                   /* on the active list (under lock) */
    struct pf_job *prev, *next_job;
} pf_job;

typedef struct pool_task {
    void (*fn)(void *arg);
    void *arg;
} pool_task;

struct floe_threadpool {
    int nthreads;                  /* caller included */
    int nworkers;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t work_cv;        /* workers sleep here */
    pthread_cond_t done_cv;        /* parallel_for callers wait for helpers here */
    int nsleeping;
    bool shutdown;
    atomic_uint epoch;             /* bumped whenever work is added */
    pf_job *jobs;                  /* active parallel_for jobs, newest first */
    pool_task *queue;              /* ring buffer of submitted tasks */
    size_t qcap, qhead, qlen;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Runs chunks of @job until none are left to claim. */
static void job_run_chunks(pf_job *job) {
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (c >= job->nchunks)
            return;
        int64_t begin = c * job->chunk;
        int64_t end = begin + job->chunk < job->n ? begin + job->chunk : job->n;
        job->fn(job->arg, begin, end);
    }
}

/* Under the lock: the newest job with chunks left, or NULL. */
static pf_job *find_job(floe_threadpool *pool) {
    for (pf_job *j = pool->jobs; j != NULL; j = j->next_job)
        if (atomic_load_explicit(&j->next, memory_order_relaxed) < j->nchunks)
            return j;
    return NULL;
}

static bool has_work(floe_threadpool *pool) {
    return pool->qlen > 0 || find_job(pool) != NULL;
}

/* ---- Workers ------------------------------------------------------------------------ */

/* Under the lock: sleeps until work may be there, spinning briefly first.  The lock is
 * held again on return. */
static void worker_idle(floe_threadpool *pool) {
    unsigned seen = atomic_load_explicit(&pool->epoch, memory_order_acquire);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < FLOE__SPIN_ITERS; i++) {
        if (atomic_load_explicit(&pool->epoch, memory_order_acquire) != seen)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown || has_work(pool))
        return;
    pool->nsleeping++;
    pthread_cond_wait(&pool->work_cv, &pool->lock);
    pool->nsleeping--;
}

static void *worker_main(void *p) {
    floe_threadpool *pool = p;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        pf_job *job = find_job(pool);
        if (job != NULL) {
            atomic_fetch_add_explicit(&job->helpers, 1, memory_order_relaxed);
            pthread_mutex_unlock(&pool->lock);
            job_run_chunks(job);
            /* After this decrement the job (on its caller's stack) may be gone. */
            bool last = atomic_fetch_sub_explicit(&job->helpers, 1, memory_order_acq_rel) == 1;
            pthread_mutex_lock(&pool->lock);
            if (last)
                pthread_cond_broadcast(&pool->done_cv);
            continue;
        }
        if (pool->qlen > 0) {
            pool_task t = pool->queue[pool->qhead];
            pool->qhead = (pool->qhead + 1) % pool->qcap;
            pool->qlen--;
            pthread_mutex_unlock(&pool->lock);
            t.fn(t.arg);
            pthread_mutex_lock(&pool->lock);
            continue;
        }
        /* Queued tasks are drained before a shutdown takes effect. */
        if (pool->shutdown)
            break;
        worker_idle(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Under the lock: announces new work. */
static void wake_workers(floe_threadpool *pool, int count) {
    atomic_fetch_add_explicit(&pool->epoch, 1, memory_order_release);
    if (pool->nsleeping == 0)
        return;
    if (count >= pool->nsleeping)
        pthread_cond_broadcast(&pool->work_cv);
    else
        for (int i = 0; i < count; i++)
            pthread_cond_signal(&pool->work_cv);
}

/* ---- Submit ------------------------------------------------------------------------- */

/* Under the lock: room for one more task; false when out of memory. */
static bool queue_reserve(floe_threadpool *pool) {
    if (pool->qlen < pool->qcap)
        return true;
    size_t cap = pool->qcap > 0 ? pool->qcap * 2 : 64;
    pool_task *q = floe__malloc(cap * sizeof(*q));
    if (q == NULL)
        return false;
    for (size_t i = 0; i < pool->qlen; i++)
        q[i] = pool->queue[(pool->qhead + i) % pool->qcap];
    floe__free(pool->queue);
    pool->queue = q;
    pool->qcap = cap;
    pool->qhead = 0;
    return true;
}

void floe__threadpool_submit(floe_threadpool *pool, void (*fn)(void *arg), void *arg) {
    if (fn == NULL)
        return;
    if (pool == NULL || pool->nworkers == 0) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->shutdown || !queue_reserve(pool)) {
        /* Out of memory for the queue (or shutting down): run it here rather than lose
         * it; the caller only sees less parallelism. */
        pthread_mutex_unlock(&pool->lock);
        fn(arg);
        return;
    }
    pool->queue[(pool->qhead + pool->qlen) % pool->qcap] = (pool_task){fn, arg};
    pool->qlen++;
    wake_workers(pool, 1);
    pthread_mutex_unlock(&pool->lock);
}

/* ---- parallel_for -------------------------------------------------------------------- */

void floe__threadpool_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                                   void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
    if (fn == NULL || n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    /* The hot path for small tensors (less than two chunks of work): no job, no lock,
     * no atomics. */
    if (n < 2 * grain || pool == NULL || pool->nworkers == 0) {
        fn(arg, 0, n);
        return;
    }

    int64_t max_chunks = (int64_t)pool->nthreads * FLOE__CHUNKS_PER_THREAD;
    int64_t nchunks = n / grain;           /* floor, so every full chunk is >= grain */
    if (nchunks > max_chunks)
        nchunks = max_chunks;
    int64_t chunk = (n + nchunks - 1) / nchunks;
    nchunks = (n + chunk - 1) / chunk;

    pf_job job;
    job.fn = fn;
    job.arg = arg;
    job.n = n;
    job.chunk = chunk;
    job.nchunks = nchunks;
    atomic_init(&job.next, 0);
    atomic_init(&job.helpers, 0);
    job.prev = NULL;

    pthread_mutex_lock(&pool->lock);
    job.linked = true;
    job.next_job = pool->jobs;
    if (pool->jobs != NULL)
        pool->jobs->prev = &job;
    pool->jobs = &job;
    wake_workers(pool, (int)(nchunks - 1 < pool->nworkers ? nchunks - 1 : pool->nworkers));
    pthread_mutex_unlock(&pool->lock);

    job_run_chunks(&job);

    pthread_mutex_lock(&pool->lock);
    if (job.prev != NULL)
        job.prev->next_job = job.next_job;
    else
        pool->jobs = job.next_job;
    if (job.next_job != NULL)
        job.next_job->prev = job.prev;
    job.linked = false;
    pthread_mutex_unlock(&pool->lock);
    /* The helpers' last chunks usually end within microseconds: spin before sleeping
     * (a condition-variable wake-up costs tens of microseconds, as much as the work). */
    for (int i = 0; i < FLOE__SPIN_ITERS &&
                    atomic_load_explicit(&job.helpers, memory_order_acquire) > 0; i++)
        cpu_relax();
    if (atomic_load_explicit(&job.helpers, memory_order_acquire) > 0) {
        pthread_mutex_lock(&pool->lock);
        while (atomic_load_explicit(&job.helpers, memory_order_acquire) > 0)
            pthread_cond_wait(&pool->done_cv, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}

void floe_threadpool_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                                  void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
    floe__threadpool_parallel_for(pool, n, grain, fn, arg);
}

/* ---- Lifetime ----------------------------------------------------------------------- */

int floe__threadpool_size(const floe_threadpool *pool) {
    return pool != NULL ? pool->nthreads : 1;
}

static void pool_stop_workers(floe_threadpool *pool, int started) {
    pthread_mutex_lock(&pool->lock);
    pool->shutdown = true;
    atomic_fetch_add(&pool->epoch, 1);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < started; i++)
        pthread_join(pool->workers[i], NULL);
}

static void pool_destroy(floe_threadpool *pool) {
    pthread_cond_destroy(&pool->done_cv);
    pthread_cond_destroy(&pool->work_cv);
    pthread_mutex_destroy(&pool->lock);
    floe__free(pool->queue);
    floe__free(pool->workers);
    floe__free(pool);
}

floe_status floe__threadpool_new(int nthreads, floe_threadpool **out) {
    floe_threadpool *pool;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "threadpool: out is NULL");
    *out = NULL;
    if (nthreads < 1 || nthreads > FLOE__MAX_THREADS)
        return floe__fail(FLOE_INVALID_ARGUMENT, "threadpool: %d threads, want 1..%d", nthreads,
                          FLOE__MAX_THREADS);
    pool = floe__calloc(1, sizeof(*pool));
    if (pool == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "threadpool: out of memory");
    pool->nthreads = nthreads;
    atomic_init(&pool->epoch, 0);
    if (nthreads > 1) {
        pool->workers = floe__calloc((size_t)nthreads - 1, sizeof(pthread_t));
        if (pool->workers == NULL) {
            floe__free(pool);
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "threadpool: out of memory");
        }
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    for (int i = 0; i < nthreads - 1; i++) {
        int err = pthread_create(&pool->workers[i], NULL, worker_main, pool);
        if (err != 0) {
            pool_stop_workers(pool, i);
            pool_destroy(pool);
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "threadpool: cannot start thread %d: %s",
                              i + 1, strerror(err));
        }
        pool->nworkers++;
#ifdef __linux__
        char name[16];   /* the kernel limit, NUL included */
        snprintf(name, sizeof(name), "floe-worker%d", (i + 1) % 1000);
        pthread_setname_np(pool->workers[i], name);
#endif
    }
    *out = pool;
    return FLOE_OK;
}

void floe__threadpool_free(floe_threadpool *pool) {
    if (pool == NULL)
        return;
    pool_stop_workers(pool, pool->nworkers);
    pool_destroy(pool);
}
