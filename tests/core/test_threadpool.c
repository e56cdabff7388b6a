/*
 * test_threadpool.c - the shared pool: parallel_for correctness over many grains,
 * nesting (inside loops and inside submitted tasks), many concurrent callers, queued
 * tasks, and the small-work inline path.
 *
 * A white-box test (internal archive): it makes pools of 1 and 4 threads directly
 * (4 is more than this machine's cores, so threads really interleave).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core-impl.h"

static int setup_pool(void **state) {
    floe_threadpool *pool = NULL;
    if (floe__threadpool_new(4, &pool) != FLOE_OK)
        return -1;
    *state = pool;
    return 0;
}

static int teardown_pool(void **state) {
    floe__threadpool_free(*state);
    return 0;
}

/* ---- Sums -------------------------------------------------------------------------- */

typedef struct sum_job {
    const int32_t *x;
    atomic_llong total;
    atomic_llong calls;
    atomic_llong items;
    int64_t min_chunk;             /* smallest chunk seen, but for the last */
    int64_t n;
    atomic_int bad_range;
    pthread_mutex_t lock;
} sum_job;

static void sum_fn(void *arg, int64_t begin, int64_t end) {
    sum_job *j = arg;
    long long s = 0;
    /* No cmocka assertion here: this runs on worker threads. */
    if (!(begin >= 0 && begin < end && end <= j->n))
        atomic_store(&j->bad_range, 1);
    for (int64_t i = begin; i < end; i++)
        s += j->x[i];
    atomic_fetch_add(&j->total, s);
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_add(&j->items, end - begin);
    if (end != j->n) {
        pthread_mutex_lock(&j->lock);
        if (end - begin < j->min_chunk)
            j->min_chunk = end - begin;
        pthread_mutex_unlock(&j->lock);
    }
}

static void parallel_for_sums_every_item_once(void **state) {
    floe_threadpool *pool = *state;
    const int64_t n = 10 * 1000 * 1000;
    int32_t *x = malloc((size_t)n * sizeof(*x));
    long long expect = 0;
    const int64_t grains[] = {1, 7, 1000, 65536, 3333333, n - 1, n, n + 5};

    assert_non_null(pool);
    assert_int_equal(floe__threadpool_size(pool), 4);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (int32_t)((i * 2654435761u) % 1000) - 500;
        expect += x[i];
    }
    for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
        sum_job j = {.x = x, .n = n, .min_chunk = INT64_MAX};
        pthread_mutex_init(&j.lock, NULL);
        floe_threadpool_parallel_for(pool, n, grains[g], sum_fn, &j);
        assert_int_equal(atomic_load(&j.total), expect);
        assert_int_equal(atomic_load(&j.items), n);
        assert_int_equal(atomic_load(&j.bad_range), 0);
        if (grains[g] >= n)
            assert_int_equal(atomic_load(&j.calls), 1);
        else if (j.min_chunk != INT64_MAX)
            assert_true(j.min_chunk >= grains[g]);
        pthread_mutex_destroy(&j.lock);
    }
    free(x);
}

static void parallel_for_small_sizes(void **state) {
    floe_threadpool *pool = *state;
    int32_t x[100];
    for (int i = 0; i < 100; i++)
        x[i] = i + 1;
    for (int64_t n = 0; n <= 100; n++) {
        for (int64_t grain = 0; grain <= 4; grain++) {
            sum_job j = {.x = x, .n = n, .min_chunk = INT64_MAX};
            pthread_mutex_init(&j.lock, NULL);
            floe_threadpool_parallel_for(pool, n, grain, sum_fn, &j);
            assert_int_equal(atomic_load(&j.total), n * (n + 1) / 2);
            assert_int_equal(atomic_load(&j.items), n);
            pthread_mutex_destroy(&j.lock);
        }
    }
}

/* ---- Inline path ------------------------------------------------------------------- */

typedef struct thread_job {
    pthread_t caller;
    int other_thread;
    int calls;
} thread_job;

static void note_thread(void *arg, int64_t begin, int64_t end) {
    thread_job *j = arg;
    j->calls++;
    if (!pthread_equal(pthread_self(), j->caller))
        j->other_thread = 1;
}

static void parallel_for_small_work_runs_inline(void **state) {
    floe_threadpool *pool = *state;
    for (int rep = 0; rep < 1000; rep++) {
        thread_job j = {.caller = pthread_self()};
        floe_threadpool_parallel_for(pool, 64, 64, note_thread, &j);
        assert_int_equal(j.calls, 1);
        assert_int_equal(j.other_thread, 0);
    }
}

static void parallel_for_null_pool_runs_inline(void **state) {
    thread_job j = {.caller = pthread_self()};
    floe_threadpool_parallel_for(NULL, 1000, 1, note_thread, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.other_thread, 0);
}

typedef struct slow_arg {
    pthread_t caller;
    atomic_int other;
} slow_arg;

static void slow_fn(void *arg, int64_t begin, int64_t end) {
    slow_arg *a = arg;
    struct timespec ts = {0, 2 * 1000 * 1000};
    if (!pthread_equal(pthread_self(), a->caller))
        atomic_store(&a->other, 1);
    nanosleep(&ts, NULL);
}

static void parallel_for_uses_other_threads(void **state) {
    slow_arg a = {.caller = pthread_self()};
    /* Chunks that take a while give the workers time to join. */
    for (int rep = 0; rep < 50 && !atomic_load(&a.other); rep++)
        floe_threadpool_parallel_for(*state, 16, 1, slow_fn, &a);
    assert_true(atomic_load(&a.other));
}

/* ---- Nesting ------------------------------------------------------------------------- */

typedef struct nest_job {
    floe_threadpool *pool;
    atomic_llong count;
    int depth;
} nest_job;

static void count_fn(void *arg, int64_t begin, int64_t end) {
    nest_job *j = arg;
    atomic_fetch_add(&j->count, end - begin);
}

static void outer_fn(void *arg, int64_t begin, int64_t end) {
    nest_job *j = arg;
    for (int64_t i = begin; i < end; i++)
        floe_threadpool_parallel_for(j->pool, 1000, 10, count_fn, j);
}

static void parallel_for_nested_completes(void **state) {
    nest_job j = {.pool = *state};
    floe_threadpool_parallel_for(j.pool, 64, 1, outer_fn, &j);
    assert_int_equal(atomic_load(&j.count), 64 * 1000);
}

static void deep_fn(void *arg, int64_t begin, int64_t end);
typedef struct deep_job {
    floe_threadpool *pool;
    int depth;
    atomic_llong *leaves;
} deep_job;

static void deep_fn(void *arg, int64_t begin, int64_t end) {
    deep_job *j = arg;
    for (int64_t i = begin; i < end; i++) {
        if (j->depth == 0) {
            atomic_fetch_add(j->leaves, 1);
        } else {
            deep_job child = {j->pool, j->depth - 1, j->leaves};
            floe_threadpool_parallel_for(j->pool, 4, 1, deep_fn, &child);
        }
    }
}

static void parallel_for_deeply_nested_completes(void **state) {
    atomic_llong leaves = 0;
    deep_job j = {*state, 5, &leaves};
    floe_threadpool_parallel_for(j.pool, 4, 1, deep_fn, &j);
    assert_int_equal(atomic_load(&leaves), 4 * 4 * 4 * 4 * 4 * 4);
}

/* ---- Concurrent callers ---------------------------------------------------------------- */

typedef struct caller_arg {
    floe_threadpool *pool;
    int32_t *x;
    int64_t n;
    long long expect;
    int ok;
} caller_arg;

static void *caller_main(void *p) {
    caller_arg *c = p;
    c->ok = 1;
    for (int rep = 0; rep < 200; rep++) {
        sum_job j = {.x = c->x, .n = c->n, .min_chunk = INT64_MAX};
        pthread_mutex_init(&j.lock, NULL);
        floe_threadpool_parallel_for(c->pool, c->n, 100, sum_fn, &j);
        if (atomic_load(&j.total) != c->expect)
            c->ok = 0;
        pthread_mutex_destroy(&j.lock);
    }
    return NULL;
}

static void parallel_for_from_many_threads(void **state) {
    enum { NT = 4, N = 10000 };
    static int32_t x[N];
    long long expect = 0;
    pthread_t th[NT];
    caller_arg args[NT];
    for (int i = 0; i < N; i++) {
        x[i] = i % 17;
        expect += x[i];
    }
    for (int t = 0; t < NT; t++) {
        args[t] = (caller_arg){*state, x, N, expect, 0};
        assert_int_equal(pthread_create(&th[t], NULL, caller_main, &args[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        assert_true(args[t].ok);
    }
}

/* ---- Submitted tasks ------------------------------------------------------------------ */

typedef struct task_state {
    floe_threadpool *pool;
    atomic_int done;
    atomic_llong sum;
    pthread_mutex_t lock;
    pthread_cond_t cv;
} task_state;

static void task_fn(void *arg) {
    task_state *ts = arg;
    /* A task may itself use parallel_for: it must not deadlock with queued work. */
    nest_job j = {.pool = ts->pool};
    floe_threadpool_parallel_for(ts->pool, 100, 10, count_fn, &j);
    atomic_fetch_add(&ts->sum, atomic_load(&j.count));
    pthread_mutex_lock(&ts->lock);
    atomic_fetch_add(&ts->done, 1);
    pthread_cond_signal(&ts->cv);
    pthread_mutex_unlock(&ts->lock);
}

static void submit_many_tasks_all_run(void **state) {
    enum { NTASKS = 5000 };
    task_state ts = {.pool = *state};
    pthread_mutex_init(&ts.lock, NULL);
    pthread_cond_init(&ts.cv, NULL);
    for (int i = 0; i < NTASKS; i++)
        floe__threadpool_submit(ts.pool, task_fn, &ts);
    pthread_mutex_lock(&ts.lock);
    while (atomic_load(&ts.done) < NTASKS)
        pthread_cond_wait(&ts.cv, &ts.lock);
    pthread_mutex_unlock(&ts.lock);
    assert_int_equal(atomic_load(&ts.sum), (long long)NTASKS * 100);
    pthread_cond_destroy(&ts.cv);
    pthread_mutex_destroy(&ts.lock);
}

static void simple_task(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void free_drains_queued_tasks(void **state) {
    static atomic_int count;
    floe_threadpool *pool = NULL;
    atomic_store(&count, 0);
    assert_int_equal(floe__threadpool_new(3, &pool), FLOE_OK);
    for (int i = 0; i < 1000; i++)
        floe__threadpool_submit(pool, simple_task, &count);
    floe__threadpool_free(pool);
    assert_int_equal(atomic_load(&count), 1000);
}

/* ---- One-thread pools and arguments ----------------------------------------------------- */

static void one_thread_pool_runs_everything_inline(void **state) {
    floe_threadpool *pool = NULL;
    atomic_int count = 0;
    thread_job j = {.caller = pthread_self()};

    assert_int_equal(floe__threadpool_new(1, &pool), FLOE_OK);
    assert_int_equal(floe__threadpool_size(pool), 1);
    floe_threadpool_parallel_for(pool, 1000000, 1, note_thread, &j);
    assert_int_equal(j.calls, 1);
    assert_int_equal(j.other_thread, 0);
    floe__threadpool_submit(pool, simple_task, &count);
    assert_int_equal(atomic_load(&count), 1);     /* ran before submit returned */
    floe__threadpool_free(pool);
}

static void new_rejects_bad_thread_counts(void **state) {
    floe_threadpool *pool = (floe_threadpool *)state;
    assert_int_equal(floe__threadpool_new(0, &pool), FLOE_INVALID_ARGUMENT);
    assert_null(pool);
    assert_non_null(strstr(floe_last_error(), "0 threads"));
    assert_int_equal(floe__threadpool_new(-3, &pool), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__threadpool_new(1 << 20, &pool), FLOE_INVALID_ARGUMENT);
    floe__threadpool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parallel_for_sums_every_item_once),
        cmocka_unit_test(parallel_for_small_sizes),
        cmocka_unit_test(parallel_for_small_work_runs_inline),
        cmocka_unit_test(parallel_for_null_pool_runs_inline),
        cmocka_unit_test(parallel_for_uses_other_threads),
        cmocka_unit_test(parallel_for_nested_completes),
        cmocka_unit_test(parallel_for_deeply_nested_completes),
        cmocka_unit_test(parallel_for_from_many_threads),
        cmocka_unit_test(submit_many_tasks_all_run),
        cmocka_unit_test(free_drains_queued_tasks),
        cmocka_unit_test(one_thread_pool_runs_everything_inline),
        cmocka_unit_test(new_rejects_bad_thread_counts),
    };
    return cmocka_run_group_tests(tests, setup_pool, teardown_pool);
}
