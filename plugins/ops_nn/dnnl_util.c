/*
 * dnnl_util.c - what the oneDNN kernels of ops_nn share: the engine, primitive caches,
 * execution, OpenMP threads, error mapping; and TensorFlow's attr parsing and window
 * arithmetic for convolution and pooling (SAME / VALID / EXPLICIT padding).
 *
 * Engine: one CPU engine for the process, made on first use and kept (reachable) until
 * exit.  oneDNN's CPU engine holds no device resources, and a kernel state may outlive
 * the context whose plugin init() made it no longer than the process, so tying it to a
 * context would only add a lifetime to get wrong.
 *
 * Caches: one per kernel state (so per node), keyed by the problem's shapes and
 * parameters, at most NN_CACHE_CAPACITY entries, least recently used out first.  An
 * entry is built under the cache's mutex on the first call that sees its shape, and is
 * refcounted so eviction never frees one that a concurrent call is running.  Primitives
 * use a user-mode scratchpad (the library's own is not safe when one primitive runs on
 * several threads at once); each entry keeps NN_SLOTS scratch buffers claimed without a
 * lock, so steady-state calls allocate nothing but a stream and the memory objects
 * (about 1 us, against milliseconds of convolution).
 *
 * Threads: one thread pool, Floe's.  oneDNN here runs on OpenMP, and an OpenMP team next
 * to Floe's pool would spin against it on the same cores (and, on this project's CI
 * machines, LeakSanitizer cannot stop libgomp's worker threads at exit: every test using
 * a team fails under ASan).  So OpenMP is limited to one thread around every oneDNN call
 * (ops_nn__omp_begin), as dev_cpu's GEMM does, and the kernels split the batch over Floe's
 * pool instead: part p of P runs the primitive for its images on one pool thread
 * (ops_nn__run_parts; primitives are made on the calling thread, once per part size, so
 * they are built for one thread and creation errors keep their message).  Backward
 * filter passes sum the parts' filter gradients afterwards (images are independent in
 * the other passes).  Measured on the 2-core machine while others loaded it (load 3):
 * one thread each, Floe's kernels run at 0.93-1.1x the raw primitive; on two threads the
 * split reaches 0.80-0.94x of oneDNN's own OpenMP team on the seed's second convolution
 * (2.7-2.8 ms raw; OpenMP's spinning workers start sooner than a sleeping pool worker on
 * a busy machine), while the kernels with an OpenMP team of the pool's size reached
 * 0.96-1.0x; a whole seed-CNN epoch (floe train --model cnn) took 52.4 s split and
 * 51.7 s with the team, the same within noise.  The split was kept for the single pool
 * and for LeakSanitizer.
 *
 * Sections: engine and errors; caches; execution; OpenMP and the batch split; kernel
 * states; attrs and windows.
 */
#include "dnnl_util.h"

#include <stdio.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef FLOE_HAVE_DNNL

/* ---- Engine and errors -------------------------------------------------------------- */

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine_cpu;
static dnnl_status_t engine_status;

static void engine_make(void) {
    engine_status = dnnl_engine_create(&engine_cpu, dnnl_cpu, 0);
    if (engine_status != dnnl_success)
        engine_cpu = NULL;
}

floe_status ops_nn__dnnl_engine(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_make);
    *out = engine_cpu;
    if (engine_cpu == NULL)
        return ops_nn__dnnl_fail(engine_status, "ops_nn", "creating the oneDNN CPU engine");
    return FLOE_OK;
}

floe_status ops_nn__dnnl_fail(dnnl_status_t st, const char *op, const char *what) {
    switch (st) {
    case dnnl_success:
        return FLOE_OK;
    case dnnl_out_of_memory:
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: %s failed: oneDNN is out of memory", op,
                         what);
    case dnnl_invalid_arguments:
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s failed: oneDNN rejected the arguments",
                         op, what);
    case dnnl_unimplemented:
        return floe_fail(FLOE_UNIMPLEMENTED,
                         "%s: %s failed: oneDNN has no implementation for this problem", op,
                         what);
    default:
        return floe_fail(FLOE_INTERNAL, "%s: %s failed: oneDNN status %d", op, what, (int)st);
    }
}

/* ---- Caches --------------------------------------------------------------------------- */

void ops_nn__cache_init(nn_cache *c) {
    pthread_mutex_init(&c->lock, NULL);
    c->head = NULL;
    c->count = 0;
}

static void entry_free(nn_entry *e) {
    for (int i = 0; i < e->nprims; i++)
        if (e->prims[i].prim != NULL)
            dnnl_primitive_destroy(e->prims[i].prim);
    for (int i = 0; i < NN_SLOTS; i++)
        floe_free(e->slots[i].buf);
    floe_free(e);
}

void ops_nn__entry_put(nn_entry *e) {
    if (e != NULL && atomic_fetch_sub(&e->refs, 1) == 1)
        entry_free(e);
}

void ops_nn__cache_clear(nn_cache *c) {
    nn_entry *e, *next;

    pthread_mutex_lock(&c->lock);
    for (e = c->head; e != NULL; e = next) {
        next = e->next;
        ops_nn__entry_put(e);
    }
    c->head = NULL;
    c->count = 0;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_destroy(&c->lock);
}

static int key_equal(const nn_entry *e, const int64_t *key, int nkey) {
    return e->nkey == nkey && memcmp(e->key, key, (size_t)nkey * sizeof(int64_t)) == 0;
}

/* Drops the least recently used entry beyond the capacity (lock held). */
static void cache_trim_locked(nn_cache *c) {
    nn_entry **pp = &c->head;
    int n = 0;

    while (*pp != NULL && ++n < NN_CACHE_CAPACITY)
        pp = &(*pp)->next;
    if (*pp != NULL && (*pp)->next != NULL) {
        nn_entry *old = (*pp)->next;
        (*pp)->next = NULL;
        while (old != NULL) {
            nn_entry *next = old->next;
            ops_nn__entry_put(old);
            c->count--;
            old = next;
        }
    }
}

floe_status ops_nn__cache_get(nn_cache *c, const int64_t *key, int nkey, nn_build_fn build,
                              void *arg, const char *op, nn_entry **out) {
    nn_entry **pp, *e;
    dnnl_engine_t engine;
    floe_status st;

    *out = NULL;
    if (nkey > NN_KEY_MAX)
        return floe_fail(FLOE_INTERNAL, "%s: primitive key too long (%d)", op, nkey);
    pthread_mutex_lock(&c->lock);
    for (pp = &c->head; *pp != NULL; pp = &(*pp)->next)
        if (key_equal(*pp, key, nkey)) {
            e = *pp;
            *pp = e->next;             /* move to the front */
            e->next = c->head;
            c->head = e;
            atomic_fetch_add(&e->refs, 1);
            pthread_mutex_unlock(&c->lock);
            *out = e;
            return FLOE_OK;
        }
    if ((st = ops_nn__dnnl_engine(&engine)) != FLOE_OK)
        goto fail_unlock;
    e = floe_alloc(sizeof(*e), 64);
    if (e == NULL) {
        st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory for a primitive", op);
        goto fail_unlock;
    }
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, (size_t)nkey * sizeof(int64_t));
    e->nkey = nkey;
    atomic_init(&e->refs, 2);
    for (int i = 0; i < NN_SLOTS; i++)
        atomic_init(&e->slots[i].busy, 0);
    if ((st = build(arg, engine, e)) != FLOE_OK)
        goto fail_free_entry;
    e->next = c->head;
    c->head = e;
    c->count++;
    cache_trim_locked(c);
    pthread_mutex_unlock(&c->lock);
    *out = e;
    return FLOE_OK;

fail_free_entry:
    entry_free(e);
fail_unlock:
    pthread_mutex_unlock(&c->lock);
    return st;
}

floe_status ops_nn__prim_from_pd(dnnl_primitive_desc_t pd, int nargs, const int *kinds,
                                 const char *op, nn_prim *p) {
    const dnnl_memory_desc_t *md;
    dnnl_status_t s;

    memset(p, 0, sizeof(*p));
    p->nargs = nargs;
    for (int i = 0; i < nargs; i++) {
        p->kinds[i] = kinds[i];
        md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kinds[i]);
        if (md == NULL) {
            dnnl_primitive_desc_destroy(pd);
            return floe_fail(FLOE_INTERNAL, "%s: oneDNN primitive has no argument %d", op,
                             kinds[i]);
        }
        p->md[i] = *md;
    }
    md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (md != NULL) {
        p->scratch_md = *md;
        p->scratch_size = dnnl_memory_desc_get_size(md);
    }
    s = dnnl_primitive_create(&p->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        p->prim = NULL;
        return ops_nn__dnnl_fail(s, op, "creating the primitive");
    }
    return FLOE_OK;
}

/* ---- Execution ------------------------------------------------------------------------ */

void *ops_nn__scratch_claim(nn_entry *e, int *slot) {
    size_t n = e->slot_bytes > 0 ? e->slot_bytes : 64;

    for (int i = 0; i < NN_SLOTS; i++) {
        int idle = 0;
        if (atomic_load_explicit(&e->slots[i].busy, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&e->slots[i].busy, &idle, 1)) {
            if (e->slots[i].buf == NULL)
                e->slots[i].buf = floe_alloc(n, 64);
            if (e->slots[i].buf == NULL) {
                atomic_store(&e->slots[i].busy, 0);
                break;
            }
            *slot = i;
            return e->slots[i].buf;
        }
    }
    *slot = -1;
    void *buf = floe_alloc(n, 64);
    if (buf == NULL)
        floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %zu bytes of scratch", n);
    return buf;
}

void ops_nn__scratch_release(nn_entry *e, int slot, void *buf) {
    if (slot >= 0)
        atomic_store_explicit(&e->slots[slot].busy, 0, memory_order_release);
    else
        floe_free(buf);
}

floe_status ops_nn__prim_run(const nn_prim *p, void *const *ptrs, void *scratch, const char *op) {
    dnnl_memory_t mem[NN_MAX_ARGS + 1] = {NULL};
    dnnl_exec_arg_t args[NN_MAX_ARGS + 1];
    dnnl_stream_t stream = NULL;
    dnnl_engine_t engine;
    dnnl_status_t s;
    floe_status st;
    int n = 0;

    if ((st = ops_nn__dnnl_engine(&engine)) != FLOE_OK)
        return st;
    s = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        stream = NULL;
        goto fail;
    }
    for (; n < p->nargs; n++) {
        s = dnnl_memory_create(&mem[n], &p->md[n], engine, ptrs[n]);
        if (s != dnnl_success) {
            mem[n] = NULL;
            goto fail;
        }
        args[n] = (dnnl_exec_arg_t){p->kinds[n], mem[n]};
    }
    if (p->scratch_size > 0) {
        s = dnnl_memory_create(&mem[n], &p->scratch_md, engine, scratch);
        if (s != dnnl_success) {
            mem[n] = NULL;
            goto fail;
        }
        args[n] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem[n]};
        n++;
    }
    s = dnnl_primitive_execute(p->prim, stream, n, args);
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
fail:
    for (int i = 0; i < NN_MAX_ARGS + 1; i++)
        if (mem[i] != NULL)
            dnnl_memory_destroy(mem[i]);
    if (stream != NULL)
        dnnl_stream_destroy(stream);
    return s == dnnl_success ? FLOE_OK : ops_nn__dnnl_fail(s, op, "running the primitive");
}

/* ---- OpenMP --------------------------------------------------------------------------- */

int ops_nn__omp_begin(void) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    if (saved != 1)
        omp_set_num_threads(1);
    return saved;
#else
    return 0;
#endif
}

void ops_nn__omp_end(int saved) {
#ifdef _OPENMP
    if (saved > 0 && saved != omp_get_max_threads())
        omp_set_num_threads(saved);
#else
    (void)saved;
#endif
}

/* Work (multiply-adds or elements) below which a second thread does not pay. */
#define NN_PART_MIN_WORK ((int64_t)1 << 18)

int ops_nn__batch_parts(floe_threadpool *pool, int64_t n, int64_t work) {
    int64_t parts = pool != NULL ? floe_threadpool_size(pool) : 1;
    if (parts > n)
        parts = n;
    if (parts > work / NN_PART_MIN_WORK)
        parts = work / NN_PART_MIN_WORK;
    return parts < 1 ? 1 : (int)parts;
}

void ops_nn__batch_part(int64_t n, int parts, int p, int64_t *n0, int64_t *n1) {
    int64_t base = n / parts, rem = n % parts;
    *n0 = p * base + (p < rem ? p : rem);
    *n1 = *n0 + base + (p < rem ? 1 : 0);
}

typedef struct parts_job {
    floe_status (*fn)(void *arg, int p);
    void *arg;
    atomic_int status;
} parts_job;

static void parts_task(void *arg, int64_t begin, int64_t end) {
    parts_job *j = arg;
    int saved = ops_nn__omp_begin();
    for (int64_t p = begin; p < end; p++) {
        floe_status st = j->fn(j->arg, (int)p);
        if (st != FLOE_OK) {
            int ok = FLOE_OK;
            atomic_compare_exchange_strong(&j->status, &ok, (int)st);
        }
    }
    ops_nn__omp_end(saved);
}

floe_status ops_nn__run_parts(floe_threadpool *pool, int parts,
                              floe_status (*fn)(void *arg, int p), void *arg) {
    parts_job j = {fn, arg, FLOE_OK};
    atomic_init(&j.status, FLOE_OK);
    if (parts <= 1 || pool == NULL)
        parts_task(&j, 0, parts);
    else
        floe_parallel_for(pool, parts, 1, parts_task, &j);
    return (floe_status)atomic_load(&j.status);
}

floe_status ops_nn__split_begin(nn_split *sp, floe_threadpool *pool, int64_t n, int64_t work,
                                nn_entry_get_fn get, void *arg) {
    floe_status st = FLOE_OK;

    memset(sp, 0, sizeof(*sp));
    sp->n = n;
    sp->parts = ops_nn__batch_parts(pool, n, work);
    if (sp->parts > NN_MAX_PARTS)
        sp->parts = NN_MAX_PARTS;
    if (n % sp->parts != 0)
        st = get(arg, n / sp->parts + 1, &sp->entry[0]);
    if (st == FLOE_OK && n / sp->parts > 0)
        st = get(arg, n / sp->parts, &sp->entry[1]);
    return st;
}

nn_entry *ops_nn__split_entry(const nn_split *sp, int part) {
    int64_t n0, n1;
    ops_nn__batch_part(sp->n, sp->parts, part, &n0, &n1);
    return n1 - n0 > sp->n / sp->parts ? sp->entry[0] : sp->entry[1];
}

floe_status ops_nn__split_claim(nn_split *sp) {
    for (; sp->claimed < sp->parts; sp->claimed++) {
        int q = sp->claimed;
        sp->scratch[q] = ops_nn__scratch_claim(ops_nn__split_entry(sp, q), &sp->slot[q]);
        if (sp->scratch[q] == NULL)
            return FLOE_RESOURCE_EXHAUSTED;
    }
    return FLOE_OK;
}

void ops_nn__split_end(nn_split *sp) {
    for (int q = 0; q < sp->claimed; q++)
        ops_nn__scratch_release(ops_nn__split_entry(sp, q), sp->slot[q], sp->scratch[q]);
    sp->claimed = 0;
    ops_nn__entry_put(sp->entry[0]);
    ops_nn__entry_put(sp->entry[1]);
    sp->entry[0] = sp->entry[1] = NULL;
}

#endif /* FLOE_HAVE_DNNL */

/* ---- Kernel states ---------------------------------------------------------------------- */

void *ops_nn__state_new(size_t size, const char *op) {
    void *s = floe_alloc(size, 0);
    if (s == NULL) {
        floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", op);
        return NULL;
    }
#ifdef FLOE_HAVE_DNNL
    ops_nn__cache_init(s);
#endif
    return s;
}

void ops_nn__state_free(void *state) {
    if (state == NULL)
        return;
#ifdef FLOE_HAVE_DNNL
    ops_nn__cache_clear(state);
#endif
    floe_free(state);
}

/* ---- Attrs and windows ---------------------------------------------------------------- */

floe_status ops_nn__get_padding(const floe_attrs *a, const char *op, int explicit_ok,
                                nn_padding *out) {
    const char *s = NULL;
    size_t len = 0;
    floe_status st;

    *out = NN_PAD_VALID;
    if ((st = floe_attrs_get_string(a, "padding", &s, &len)) != FLOE_OK)
        return st;
    if (len == 4 && memcmp(s, "SAME", 4) == 0)
        *out = NN_PAD_SAME;
    else if (len == 5 && memcmp(s, "VALID", 5) == 0)
        *out = NN_PAD_VALID;
    else if (explicit_ok && len == 8 && memcmp(s, "EXPLICIT", 8) == 0)
        *out = NN_PAD_EXPLICIT;
    else
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: padding must be SAME or VALID%s, not '%.*s'",
                         op, explicit_ok ? " or EXPLICIT" : "", (int)len, s);
    return FLOE_OK;
}

floe_status ops_nn__get_format(const floe_attrs *a, const char *op, int *nchw) {
    const char *s = NULL;
    size_t len = 0;
    floe_status st;

    *nchw = 0;
    if ((st = floe_attrs_get_string(a, "data_format", &s, &len)) != FLOE_OK)
        return st;
    if (len == 4 && memcmp(s, "NHWC", 4) == 0)
        return FLOE_OK;
    if (len == 4 && memcmp(s, "NCHW", 4) == 0) {
        *nchw = 1;
        return FLOE_OK;
    }
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: data_format must be NHWC or NCHW, not '%.*s'",
                     op, (int)len, s);
}

floe_status ops_nn__get_hw4(const floe_attrs *a, const char *name, const char *op, int nchw,
                            int nc_free, int64_t hw[2]) {
    const int64_t *v = NULL;
    int n = 0, hi = nchw ? 2 : 1, ci = nchw ? 1 : 3;
    floe_status st;

    hw[0] = hw[1] = 1;
    if ((st = floe_attrs_get_int_list(a, name, &v, &n)) != FLOE_OK)
        return st;
    if (n != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s must have 4 values, not %d", op, name, n);
    for (int i = 0; i < 4; i++)
        if (v[i] <= 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s must be positive, got %lld at %d", op,
                             name, (long long)v[i], i);
    if (!nc_free && (v[0] != 1 || v[ci] != 1))
        return floe_fail(FLOE_UNIMPLEMENTED,
                         "%s: %s in the batch and depth dimensions must be 1 (got %lld, %lld)",
                         op, name, (long long)v[0], (long long)v[ci]);
    hw[0] = v[hi];
    hw[1] = v[hi + 1];
    return FLOE_OK;
}

floe_status ops_nn__window(const char *op, nn_padding pad, int64_t in, int64_t k, int64_t s,
                           int64_t d, int64_t *pb, int64_t *pa, int64_t *out) {
    int64_t ek = (k - 1) * d + 1, total;

    if (pad == NN_PAD_SAME) {
        *out = (in + s - 1) / s;
        total = (*out - 1) * s + ek - in;
        if (total < 0)
            total = 0;
        *pb = total / 2;
        *pa = total - *pb;
    } else {
        if (pad == NN_PAD_VALID)
            *pb = *pa = 0;
        if (*pb < 0 || *pa < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: negative explicit padding", op);
        if (in + *pb + *pa < ek) {
            *out = 0;
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: computed output size would be negative: input %lld (padded "
                             "%lld), effective window %lld",
                             op, (long long)in, (long long)(in + *pb + *pa), (long long)ek);
        }
        *out = (in + *pb + *pa - ek) / s + 1;
    }
    if (*out <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: empty output (input extent %lld)", op,
                         (long long)in);
    return FLOE_OK;
}

floe_status ops_nn__rank4_f32(const char *op, const floe_tensor *t, const char *what) {
    if (floe_tensor_ndim(t) != 4)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s must be 4-dimensional, got rank %d", op,
                         what, floe_tensor_ndim(t));
    if (floe_tensor_dtype(t) != FLOE_DTYPE_F32)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: %s is %s; only f32 is supported", op, what,
                         floe_dtype_name(floe_tensor_dtype(t)));
    return FLOE_OK;
}
