/*
 * pipeline.c - tf.data-style input pipelines (floe/pipeline.h).
 *
 * Layout: the node structure every pipeline shares (an ops table, the input, a sticky
 * error) and the element helpers; then one section per kind: the sources (tensors,
 * TFRecord files with interleave, generator callbacks), map (sequential, or worker
 * threads of its own handing results out in input order), parse_example (a map),
 * shuffle, batch, repeat, take, skip, prefetch (a producer thread and a bounded queue),
 * cache in memory and cache in a file.
 *
 * A pull model: floe_pipeline_next asks the last node, which asks its input, and so on.
 * Errors raised on another thread (a map worker, the prefetch thread) travel with the
 * element as a status and a copy of the message, and are set again on the consumer's
 * thread, since floe_last_error() is per thread.
 */
#include <floe/floe.h>
#include <floe/pipeline.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Nodes and elements --------------------------------------------------------------- */

typedef struct elem {
    int n;
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
} elem;

typedef struct node_ops {
    const char *name;
    floe_status (*next)(floe_pipeline *p, elem *e);
    floe_status (*reset)(floe_pipeline *p);
    void (*destroy)(floe_pipeline *p); /* frees p->state (the input is freed after) */
} node_ops;

struct floe_pipeline {
    const node_ops *ops;
    floe_pipeline *input;
    void *state;
    floe_status failed;
    char *failed_msg;
};

static void elem_clear(elem *e) {
    for (int i = 0; i < e->n; i++)
        floe_tensor_unref(e->t[i]);
    e->n = 0;
}

static void elem_ref_copy(elem *dst, const elem *src) {
    dst->n = src->n;
    for (int i = 0; i < src->n; i++)
        dst->t[i] = floe_tensor_ref(src->t[i]);
}

static char *dup_last_error(void) {
    return strdup(floe_last_error());
}

static floe_status oom(const char *what) {
    return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "pipeline %s: out of memory", what);
}

/* The node's own next, without the public checks. */
static floe_status pull(floe_pipeline *p, elem *e) {
    e->n = 0;
    if (p->failed != FLOE_OK)
        return floe_set_error(p->failed, "%s", p->failed_msg ? p->failed_msg : "pipeline failed");
    floe_status st = p->ops->next(p, e);
    if (st != FLOE_OK) {
        elem_clear(e);
        if (st != FLOE_OUT_OF_RANGE) {
            p->failed = st;
            free(p->failed_msg);
            p->failed_msg = dup_last_error();
        }
    }
    return st;
}

floe_status floe_pipeline_next(floe_pipeline *p, floe_tensor **out, int *n) {
    if (n != NULL)
        *n = 0;
    if (p == NULL || out == NULL || n == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_next: NULL argument");
    elem e;
    floe_status st = pull(p, &e);
    if (st != FLOE_OK)
        return st;
    memcpy(out, e.t, (size_t)e.n * sizeof *out);
    *n = e.n;
    return FLOE_OK;
}

floe_status floe_pipeline_reset(floe_pipeline *p) {
    if (p == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_reset: NULL pipeline");
    if (p->failed != FLOE_OK)
        return floe_set_error(p->failed, "%s", p->failed_msg ? p->failed_msg : "pipeline failed");
    floe_status st = p->ops->reset(p);
    if (st != FLOE_OK && st != FLOE_UNIMPLEMENTED) {
        p->failed = st;
        free(p->failed_msg);
        p->failed_msg = dup_last_error();
    }
    return st;
}

void floe_pipeline_free(floe_pipeline *p) {
    if (p == NULL)
        return;
    if (p->ops->destroy != NULL)
        p->ops->destroy(p);
    floe_pipeline_free(p->input);
    free(p->failed_msg);
    free(p);
}

/* A new node over @input with @state (both freed here on failure, @state by @free_state). */
static floe_status node_new(const node_ops *ops, floe_pipeline *input, void *state,
                            void (*free_state)(void *), floe_pipeline **out) {
    floe_pipeline *p = state ? calloc(1, sizeof *p) : NULL;
    if (p == NULL) {
        if (state && free_state)
            free_state(state);
        floe_pipeline_free(input);
        *out = NULL;
        return oom(ops->name);
    }
    p->ops = ops;
    p->input = input;
    p->state = state;
    *out = p;
    return FLOE_OK;
}

/* Checks a transform's arguments; frees @input when they are bad. */
static floe_status check_input(floe_pipeline *input, floe_pipeline **out, bool ok,
                               const char *fn) {
    if (out == NULL || input == NULL || !ok) {
        floe_pipeline_free(input);
        if (out != NULL)
            *out = NULL;
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%s: bad argument", fn);
    }
    return FLOE_OK;
}

static floe_status reset_input(floe_pipeline *p) {
    return floe_pipeline_reset(p->input);
}

/* ---- Source: tensor slices --------------------------------------------------------- */

typedef struct slices {
    int n;
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int64_t count, pos;
} slices;

/* Row @i of @t as a new tensor of rank ndim-1. */
static floe_status tensor_row(floe_tensor *t, int64_t i, floe_tensor **out) {
    const int64_t *shape = floe_tensor_shape(t);
    int nd = floe_tensor_ndim(t);
    floe_dtype dt = floe_tensor_dtype(t);
    int64_t per = 1;
    for (int d = 1; d < nd; d++)
        per *= shape[d];
    if (dt == FLOE_DTYPE_STRING) {
        floe_status st = floe_tensor_new(dt, shape + 1, nd - 1, out);
        for (int64_t k = 0; st == FLOE_OK && k < per; k++) {
            const char *b;
            size_t len;
            st = floe_tensor_get_string(t, i * per + k, &b, &len);
            if (st == FLOE_OK)
                st = floe_tensor_set_string(*out, k, b, len);
        }
        if (st != FLOE_OK) {
            floe_tensor_unref(*out);
            *out = NULL;
        }
        return st;
    }
    size_t rb = (size_t)per * floe_dtype_size(dt);
    return floe_tensor_new_copy(dt, shape + 1, nd - 1,
                                rb ? (const char *)floe_tensor_data(t) + (size_t)i * rb : NULL,
                                rb, out);
}

static floe_status slices_next(floe_pipeline *p, elem *e) {
    slices *s = p->state;
    if (s->pos >= s->count)
        return floe_set_error(FLOE_OUT_OF_RANGE, "end of tensor slices");
    for (int i = 0; i < s->n; i++) {
        floe_status st = tensor_row(s->t[i], s->pos, &e->t[i]);
        if (st != FLOE_OK)
            return st;
        e->n = i + 1;
    }
    s->pos++;
    return FLOE_OK;
}

static floe_status slices_reset(floe_pipeline *p) {
    ((slices *)p->state)->pos = 0;
    return FLOE_OK;
}

static void slices_free(void *state) {
    slices *s = state;
    for (int i = 0; i < s->n; i++)
        floe_tensor_unref(s->t[i]);
    free(s);
}

static void slices_destroy(floe_pipeline *p) {
    slices_free(p->state);
}

static const node_ops slices_ops = {"from_tensors", slices_next, slices_reset, slices_destroy};

floe_status floe_pipeline_from_tensors(floe_tensor *const *t, int n, floe_pipeline **out) {
    if (out != NULL)
        *out = NULL;
    if (t == NULL || out == NULL || n < 1 || n > FLOE_PIPELINE_MAX_TUPLE)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tensors: need 1..%d "
                              "tensors", FLOE_PIPELINE_MAX_TUPLE);
    for (int i = 0; i < n; i++) {
        if (t[i] == NULL || floe_tensor_ndim(t[i]) < 1)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tensors: tensor %d "
                                  "is NULL or a scalar (slices need rank >= 1)", i);
        if (floe_tensor_dim(t[i], 0) != floe_tensor_dim(t[0], 0))
            return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tensors: tensor %d "
                                  "has %" PRId64 " rows, tensor 0 has %" PRId64, i,
                                  floe_tensor_dim(t[i], 0), floe_tensor_dim(t[0], 0));
        if (floe_tensor_num_elements(t[i]) > 0 && floe_tensor_data(t[i]) == NULL &&
            floe_tensor_dtype(t[i]) != FLOE_DTYPE_STRING)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tensors: tensor %d "
                                  "is not in host memory", i);
    }
    slices *s = calloc(1, sizeof *s);
    if (s == NULL)
        return oom("from_tensors");
    s->n = n;
    for (int i = 0; i < n; i++)
        s->t[i] = floe_tensor_ref(t[i]);
    s->count = floe_tensor_dim(t[0], 0);
    return node_new(&slices_ops, NULL, s, slices_free, out);
}

/* ---- Source: TFRecord files, interleaved -------------------------------------------- */

typedef struct records {
    floe_context *ctx;
    char **files;
    int nfiles, next_file;
    floe_compression comp;
    int cycle, cur;
    floe_tfrecord_reader **readers;
} records;

static void records_close_all(records *r) {
    for (int i = 0; i < r->cycle; i++) {
        floe_tfrecord_reader_close(r->readers[i]);
        r->readers[i] = NULL;
    }
}

/* Opens the next file into slot @i (left NULL when none is left). */
static floe_status records_open(records *r, int i) {
    if (r->next_file >= r->nfiles)
        return FLOE_OK;
    return floe_tfrecord_reader_open(r->ctx, r->files[r->next_file++], r->comp, &r->readers[i]);
}

static floe_status records_next(floe_pipeline *p, elem *e) {
    records *r = p->state;
    for (;;) {
        bool any = false;
        for (int k = 0; k < r->cycle; k++) {
            int i = (r->cur + k) % r->cycle;
            floe_status st;
            if (r->readers[i] == NULL && (st = records_open(r, i)) != FLOE_OK)
                return st;
            while (r->readers[i] != NULL) {
                const void *data;
                size_t n;
                st = floe_tfrecord_read(r->readers[i], &data, &n);
                if (st == FLOE_OK) {
                    if ((st = floe_tensor_new(FLOE_DTYPE_STRING, NULL, 0, &e->t[0])) != FLOE_OK)
                        return st;
                    e->n = 1;
                    if ((st = floe_tensor_set_string(e->t[0], 0, data, n)) != FLOE_OK)
                        return st;
                    r->cur = (i + 1) % r->cycle;
                    return FLOE_OK;
                }
                if (st != FLOE_OUT_OF_RANGE)
                    return st;
                /* this file is done: the next file takes its place in the cycle */
                floe_tfrecord_reader_close(r->readers[i]);
                r->readers[i] = NULL;
                if ((st = records_open(r, i)) != FLOE_OK)
                    return st;
            }
            any = any || r->readers[i] != NULL;
        }
        if (!any && r->next_file >= r->nfiles)
            return floe_set_error(FLOE_OUT_OF_RANGE, "end of the TFRecord files");
    }
}

static floe_status records_reset(floe_pipeline *p) {
    records *r = p->state;
    records_close_all(r);
    r->next_file = 0;
    r->cur = 0;
    return FLOE_OK;
}

static void records_free(void *state) {
    records *r = state;
    if (r->readers != NULL)
        records_close_all(r);
    for (int i = 0; r->files != NULL && i < r->nfiles; i++)
        free(r->files[i]);
    free(r->files);
    free(r->readers);
    free(r);
}

static void records_destroy(floe_pipeline *p) {
    records_free(p->state);
}

static const node_ops records_ops = {"from_tfrecord", records_next, records_reset,
                                     records_destroy};

floe_status floe_pipeline_from_tfrecord(floe_context *ctx, const char *const *files, int nfiles,
                                        floe_compression compression, int cycle_length,
                                        floe_pipeline **out) {
    if (out != NULL)
        *out = NULL;
    if (files == NULL || nfiles < 1 || out == NULL || cycle_length < 1 ||
        (unsigned)compression > FLOE_COMPRESSION_GZIP)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tfrecord: need files, "
                              "cycle_length >= 1 and a known compression");
    for (int i = 0; i < nfiles; i++)
        if (files[i] == NULL)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_tfrecord: file %d "
                                  "is NULL", i);
    records *r = calloc(1, sizeof *r);
    if (r == NULL)
        return oom("from_tfrecord");
    r->ctx = ctx;
    r->comp = compression;
    r->cycle = cycle_length < nfiles ? cycle_length : nfiles;
    r->files = calloc((size_t)nfiles, sizeof *r->files);
    r->readers = calloc((size_t)r->cycle, sizeof *r->readers);
    bool ok = r->files != NULL && r->readers != NULL;
    r->nfiles = ok ? nfiles : 0;
    for (int i = 0; ok && i < nfiles; i++)
        ok = (r->files[i] = strdup(files[i])) != NULL;
    if (!ok) {
        records_free(r);
        return oom("from_tfrecord");
    }
    return node_new(&records_ops, NULL, r, records_free, out);
}

/* ---- Source: generator callbacks ---------------------------------------------------- */

static floe_status source_next(floe_pipeline *p, elem *e) {
    floe_pipeline_source *s = p->state;
    int n = 0;
    floe_status st = s->next(s->arg, e->t, &n);
    if (st == FLOE_OK && (n < 1 || n > FLOE_PIPELINE_MAX_TUPLE)) {
        for (int i = 0; i < n && i < FLOE_PIPELINE_MAX_TUPLE; i++)
            floe_tensor_unref(e->t[i]);
        return floe_set_error(FLOE_INVALID_ARGUMENT, "pipeline source: next gave %d tensors "
                              "(need 1..%d)", n, FLOE_PIPELINE_MAX_TUPLE);
    }
    e->n = st == FLOE_OK ? n : 0;
    return st;
}

static floe_status source_reset(floe_pipeline *p) {
    floe_pipeline_source *s = p->state;
    if (s->reset == NULL)
        return floe_set_error(FLOE_UNIMPLEMENTED, "pipeline source: cannot restart (no reset)");
    return s->reset(s->arg);
}

static void source_free(void *state) {
    floe_pipeline_source *s = state;
    if (s->free_arg != NULL)
        s->free_arg(s->arg);
    free(s);
}

static void source_destroy(floe_pipeline *p) {
    source_free(p->state);
}

static const node_ops source_ops = {"from_source", source_next, source_reset, source_destroy};

floe_status floe_pipeline_from_source(const floe_pipeline_source *src, floe_pipeline **out) {
    if (out != NULL)
        *out = NULL;
    if (src == NULL || out == NULL || src->next == NULL) {
        if (src != NULL && src->free_arg != NULL)
            src->free_arg(src->arg);
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_source: need a next "
                              "callback");
    }
    floe_pipeline_source *s = malloc(sizeof *s);
    if (s == NULL) {
        if (src->free_arg != NULL)
            src->free_arg(src->arg);
        return oom("from_source");
    }
    *s = *src;
    return node_new(&source_ops, NULL, s, source_free, out);
}

/* ---- Map ---------------------------------------------------------------------------------
 *
 * Sequential: the callback runs in next().  Parallel: num_parallel worker threads of the
 * map's own, as tf.data's parallel map: each worker takes the next input element (under
 * in_mu, which numbers elements in input order), runs the callback without any lock and
 * stores the result in slot seq % window; next() hands out slot out_seq when it is done.
 * No barrier: a slow element holds up only the elements after it, never the workers,
 * which run on while fewer than `window` elements are in flight. */

enum { SLOT_EMPTY = 0, SLOT_DONE = 1, SLOT_END = 2 };

typedef struct map_slot {
    int state;
    elem out;
    floe_status st;         /* SLOT_END: how the stream ends here */
    char *msg;
} map_slot;

typedef struct mapper {
    floe_map_fn fn;
    void *arg;
    void (*free_arg)(void *);
    floe_pipeline *input;
    int nworkers;           /* 0: sequential */
    int window;
    map_slot *slots;
    pthread_t *threads;
    int running;            /* threads started */
    pthread_mutex_t mu;     /* slots, counters, stop */
    pthread_cond_t done_cv, space_cv;
    pthread_mutex_t in_mu;  /* the input and in_seq */
    int64_t in_seq, out_seq, inflight;
    bool stop;
    bool input_ended;       /* written under in_mu and mu both */
} mapper;

static floe_status map_one(mapper *m, elem *in, elem *out) {
    int nout = 0;
    floe_status st = m->fn(m->arg, in->t, in->n, out->t, &nout);
    if (st == FLOE_OK && (nout < 1 || nout > FLOE_PIPELINE_MAX_TUPLE)) {
        for (int i = 0; i < nout && i < FLOE_PIPELINE_MAX_TUPLE; i++)
            floe_tensor_unref(out->t[i]);
        st = floe_set_error(FLOE_INVALID_ARGUMENT, "pipeline map: the callback gave %d tensors "
                            "(need 1..%d)", nout, FLOE_PIPELINE_MAX_TUPLE);
    }
    out->n = st == FLOE_OK ? nout : 0;
    elem_clear(in);
    return st;
}

static void *map_worker(void *arg) {
    mapper *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        while (!m->stop && !m->input_ended && m->inflight >= m->window)
            pthread_cond_wait(&m->space_cv, &m->mu);
        bool quit = m->stop || m->input_ended;
        if (!quit)
            m->inflight++;
        pthread_mutex_unlock(&m->mu);
        if (quit)
            break;
        /* Take the next element in input order. */
        elem in = {0}, out = {0};
        pthread_mutex_lock(&m->in_mu);
        if (m->input_ended) {
            pthread_mutex_unlock(&m->in_mu);
            pthread_mutex_lock(&m->mu);
            m->inflight--;
            pthread_mutex_unlock(&m->mu);
            break;
        }
        int64_t seq = m->in_seq++;
        floe_status st = pull(m->input, &in);
        char *msg = st != FLOE_OK ? dup_last_error() : NULL;
        if (st != FLOE_OK) {
            pthread_mutex_lock(&m->mu); /* lock order: in_mu, then mu */
            m->input_ended = true;
            pthread_mutex_unlock(&m->mu);
        }
        pthread_mutex_unlock(&m->in_mu);
        if (st == FLOE_OK) {
            st = map_one(m, &in, &out);
            if (st != FLOE_OK)
                msg = dup_last_error();
        }
        pthread_mutex_lock(&m->mu);
        map_slot *s = &m->slots[seq % m->window];
        s->out = out;
        s->st = st;
        s->msg = msg;
        s->state = st == FLOE_OK ? SLOT_DONE : SLOT_END;
        pthread_cond_broadcast(&m->done_cv);
        pthread_cond_broadcast(&m->space_cv);
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

static void map_stop(mapper *m) {
    if (m->running > 0) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_broadcast(&m->space_cv);
        pthread_mutex_unlock(&m->mu);
        for (int i = 0; i < m->running; i++)
            pthread_join(m->threads[i], NULL);
        m->running = 0;
    }
    for (int i = 0; m->slots != NULL && i < m->window; i++) {
        elem_clear(&m->slots[i].out);
        free(m->slots[i].msg);
        memset(&m->slots[i], 0, sizeof m->slots[i]);
    }
    m->in_seq = m->out_seq = m->inflight = 0;
    m->stop = m->input_ended = false;
}

static floe_status map_next(floe_pipeline *p, elem *e) {
    mapper *m = p->state;
    if (m->nworkers == 0) {
        elem in;
        floe_status st = pull(p->input, &in);
        return st != FLOE_OK ? st : map_one(m, &in, e);
    }
    while (m->running < m->nworkers) {
        if (pthread_create(&m->threads[m->running], NULL, map_worker, m) != 0) {
            if (m->running > 0)
                break; /* fewer workers than asked: still correct */
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "map: cannot start a thread");
        }
        m->running++;
    }
    pthread_mutex_lock(&m->mu);
    map_slot *s = &m->slots[m->out_seq % m->window];
    while (s->state == SLOT_EMPTY)
        pthread_cond_wait(&m->done_cv, &m->mu);
    if (s->state == SLOT_END) {
        /* stays there: every later call ends the same way */
        floe_status st = s->st;
        char *msg = s->msg ? strdup(s->msg) : NULL;
        pthread_mutex_unlock(&m->mu);
        st = floe_set_error(st, "%s", msg ? msg : "end of input");
        free(msg);
        return st;
    }
    *e = s->out;
    s->out.n = 0;
    s->state = SLOT_EMPTY;
    m->out_seq++;
    m->inflight--;
    pthread_cond_signal(&m->space_cv);
    pthread_mutex_unlock(&m->mu);
    return FLOE_OK;
}

static floe_status map_reset(floe_pipeline *p) {
    map_stop(p->state);
    return reset_input(p);
}

static void mapper_free(void *state) {
    mapper *m = state;
    map_stop(m);
    if (m->nworkers > 0) {
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->in_mu);
        pthread_cond_destroy(&m->done_cv);
        pthread_cond_destroy(&m->space_cv);
    }
    if (m->free_arg != NULL)
        m->free_arg(m->arg);
    free(m->slots);
    free(m->threads);
    free(m);
}

static void map_destroy(floe_pipeline *p) {
    mapper_free(p->state);
}

static const node_ops map_ops = {"map", map_next, map_reset, map_destroy};

static floe_status map_new(floe_pipeline *input, floe_map_fn fn, void *arg,
                           void (*free_arg)(void *), floe_context *ctx, int num_parallel,
                           floe_pipeline **out) {
    (void)ctx;
    mapper *m = calloc(1, sizeof *m);
    if (m == NULL) {
        if (free_arg)
            free_arg(arg);
        floe_pipeline_free(input);
        *out = NULL;
        return oom("map");
    }
    m->fn = fn;
    m->arg = arg;
    m->free_arg = free_arg;
    m->input = input;
    if (num_parallel > 1) {
        m->nworkers = num_parallel > 64 ? 64 : num_parallel;
        m->window = 2 * m->nworkers;
        m->slots = calloc((size_t)m->window, sizeof *m->slots);
        m->threads = calloc((size_t)m->nworkers, sizeof *m->threads);
        if (m->slots == NULL || m->threads == NULL) {
            m->nworkers = 0;
            mapper_free(m);
            floe_pipeline_free(input);
            *out = NULL;
            return oom("map");
        }
        pthread_mutex_init(&m->mu, NULL);
        pthread_mutex_init(&m->in_mu, NULL);
        pthread_cond_init(&m->done_cv, NULL);
        pthread_cond_init(&m->space_cv, NULL);
    }
    return node_new(&map_ops, input, m, mapper_free, out);
}

floe_status floe_pipeline_map(floe_pipeline *input, floe_map_fn fn, void *arg,
                              floe_context *ctx, int num_parallel, floe_pipeline **out) {
    floe_status st = check_input(input, out, fn != NULL, "floe_pipeline_map (a callback)");
    if (st != FLOE_OK)
        return st;
    return map_new(input, fn, arg, NULL, ctx, num_parallel, out);
}

/* ---- parse_example: a map with its own copy of the specs -------------------------------- */

typedef struct parse_arg {
    int nspecs;
    floe_feature_spec *specs;
} parse_arg;

static void parse_arg_free(void *arg) {
    parse_arg *a = arg;
    for (int j = 0; a->specs != NULL && j < a->nspecs; j++) {
        floe_feature_spec *s = &a->specs[j];
        free((void *)s->key);
        if (s->dtype == FLOE_DTYPE_STRING && s->default_value != NULL) {
            floe_tstring *ts = (floe_tstring *)s->default_value;
            for (int64_t k = 0; k < s->default_count; k++)
                free((void *)ts[k].data);
        }
        free((void *)s->default_value);
    }
    free(a->specs);
    free(a);
}

static bool spec_copy(floe_feature_spec *dst, const floe_feature_spec *src) {
    *dst = *src;
    dst->key = NULL;
    dst->default_value = NULL;
    if (src->key == NULL || (dst->key = strdup(src->key)) == NULL)
        return false;
    if (src->default_value == NULL || src->default_count < 1 || src->default_count > (1 << 24))
        return true;
    size_t es = src->dtype == FLOE_DTYPE_STRING ? sizeof(floe_tstring)
                                                : floe_dtype_size(src->dtype);
    void *d = calloc((size_t)src->default_count, es ? es : 1);
    if (d == NULL)
        return false;
    dst->default_value = d;
    if (src->dtype != FLOE_DTYPE_STRING) {
        memcpy(d, src->default_value, (size_t)src->default_count * es);
        return true;
    }
    const floe_tstring *in = src->default_value;
    floe_tstring *o = d;
    for (int64_t k = 0; k < src->default_count; k++) {
        char *b = malloc(in[k].size + 1);
        if (b == NULL)
            return false;
        if (in[k].size)
            memcpy(b, in[k].data, in[k].size);
        o[k].data = b;
        o[k].size = in[k].size;
    }
    return true;
}

static floe_status parse_fn(void *arg, floe_tensor *const *in, int nin, floe_tensor **out,
                            int *nout) {
    parse_arg *a = arg;
    floe_tensor *t = in[0];
    int nd = floe_tensor_ndim(t);
    if (floe_tensor_dtype(t) != FLOE_DTYPE_STRING || nd > 1)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "parse_example: the element's first tensor "
                              "is %s of rank %d, not serialized Examples (a string scalar or "
                              "vector)", floe_dtype_name(floe_tensor_dtype(t)), nd);
    if (a->nspecs + nin - 1 > FLOE_PIPELINE_MAX_TUPLE)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "parse_example: %d specs and %d more "
                              "tensors exceed %d", a->nspecs, nin - 1, FLOE_PIPELINE_MAX_TUPLE);
    int64_t n = floe_tensor_num_elements(t);
    const void **data = malloc((size_t)(n ? n : 1) * sizeof *data);
    size_t *sizes = malloc((size_t)(n ? n : 1) * sizeof *sizes);
    floe_status st = data && sizes ? FLOE_OK : oom("parse_example");
    for (int64_t i = 0; st == FLOE_OK && i < n; i++)
        st = floe_tensor_get_string(t, i, (const char **)&data[i], &sizes[i]);
    if (st == FLOE_OK)
        st = nd == 0 ? floe_example_parse(data[0], sizes[0], a->specs, a->nspecs, out)
                     : floe_example_parse_batch(data, sizes, n, a->specs, a->nspecs, out);
    free(data);
    free(sizes);
    if (st != FLOE_OK)
        return st;
    for (int i = 1; i < nin; i++)
        out[a->nspecs + i - 1] = floe_tensor_ref(in[i]);
    *nout = a->nspecs + nin - 1;
    return FLOE_OK;
}

floe_status floe_pipeline_parse_example(floe_pipeline *input, const floe_feature_spec *specs,
                                        int nspecs, floe_context *ctx, int num_parallel,
                                        floe_pipeline **out) {
    floe_status st = check_input(input, out, specs != NULL && nspecs >= 1 &&
                                 nspecs <= FLOE_PIPELINE_MAX_TUPLE,
                                 "floe_pipeline_parse_example (1..16 specs)");
    if (st != FLOE_OK)
        return st;
    parse_arg *a = calloc(1, sizeof *a);
    bool ok = a != NULL && (a->specs = calloc((size_t)nspecs, sizeof *a->specs)) != NULL;
    for (int j = 0; ok && j < nspecs; j++) {
        a->nspecs = j + 1;
        ok = spec_copy(&a->specs[j], &specs[j]);
    }
    if (!ok) {
        if (a != NULL)
            parse_arg_free(a);
        floe_pipeline_free(input);
        *out = NULL;
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_parse_example: a spec has "
                              "no key, or out of memory");
    }
    return map_new(input, parse_fn, a, parse_arg_free, ctx, num_parallel, out);
}

/* ---- Shuffle --------------------------------------------------------------------------- */

typedef struct shuffler {
    elem *buf;
    int64_t cap, count, alloc;
    bool input_done;
    uint64_t rng;
} shuffler;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias. */
static int64_t rng_below(uint64_t *s, int64_t n) {
    uint64_t un = (uint64_t)n, limit = UINT64_MAX - UINT64_MAX % un, v;
    do
        v = splitmix64(s);
    while (v >= limit);
    return (int64_t)(v % un);
}

static floe_status shuffle_next(floe_pipeline *p, elem *e) {
    shuffler *s = p->state;
    while (!s->input_done && s->count < s->cap) {
        if (s->count == s->alloc) {
            int64_t na = s->alloc ? s->alloc * 2 : 64;
            na = na < s->cap ? na : s->cap;
            elem *nb = realloc(s->buf, (size_t)na * sizeof *nb);
            if (nb == NULL)
                return oom("shuffle");
            s->buf = nb;
            s->alloc = na;
        }
        floe_status st = pull(p->input, &s->buf[s->count]);
        if (st == FLOE_OUT_OF_RANGE)
            s->input_done = true;
        else if (st != FLOE_OK)
            return st;
        else
            s->count++;
    }
    if (s->count == 0)
        return floe_set_error(FLOE_OUT_OF_RANGE, "end of input");
    int64_t j = rng_below(&s->rng, s->count);
    *e = s->buf[j];
    s->buf[j] = s->buf[--s->count];
    return FLOE_OK;
}

static void shuffle_drop(shuffler *s) {
    for (int64_t i = 0; i < s->count; i++)
        elem_clear(&s->buf[i]);
    s->count = 0;
    s->input_done = false;
}

static floe_status shuffle_reset(floe_pipeline *p) {
    shuffle_drop(p->state);
    return reset_input(p);
}

static void shuffler_free(void *state) {
    shuffler *s = state;
    shuffle_drop(s);
    free(s->buf);
    free(s);
}

static void shuffle_destroy(floe_pipeline *p) {
    shuffler_free(p->state);
}

static const node_ops shuffle_ops = {"shuffle", shuffle_next, shuffle_reset, shuffle_destroy};

floe_status floe_pipeline_shuffle(floe_pipeline *input, int64_t buffer_size, uint64_t seed,
                                  floe_pipeline **out) {
    floe_status st = check_input(input, out, buffer_size >= 1,
                                 "floe_pipeline_shuffle (buffer_size >= 1)");
    if (st != FLOE_OK)
        return st;
    shuffler *s = calloc(1, sizeof *s);
    if (s != NULL) {
        s->cap = buffer_size;
        s->rng = seed;
    }
    return node_new(&shuffle_ops, input, s, shuffler_free, out);
}

/* ---- Batch ----------------------------------------------------------------------------- */

typedef struct batcher {
    int64_t size;
    bool drop;
    elem *rows;
} batcher;

static floe_status batch_check(const elem *a, const elem *b, int64_t row) {
    if (a->n != b->n)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "batch: element %" PRId64 " has %d "
                              "tensors, the first %d", row, b->n, a->n);
    for (int c = 0; c < a->n; c++) {
        floe_tensor *x = a->t[c], *y = b->t[c];
        bool same = floe_tensor_dtype(x) == floe_tensor_dtype(y) &&
                    floe_tensor_ndim(x) == floe_tensor_ndim(y);
        for (int d = 0; same && d < floe_tensor_ndim(x); d++)
            same = floe_tensor_dim(x, d) == floe_tensor_dim(y, d);
        if (!same)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "batch: component %d of element %"
                                  PRId64 " (%s, rank %d, %" PRId64 " elements) differs from the "
                                  "first element's (%s, rank %d, %" PRId64 " elements)", c, row,
                                  floe_dtype_name(floe_tensor_dtype(y)), floe_tensor_ndim(y),
                                  floe_tensor_num_elements(y),
                                  floe_dtype_name(floe_tensor_dtype(x)), floe_tensor_ndim(x),
                                  floe_tensor_num_elements(x));
    }
    return FLOE_OK;
}

static floe_status batch_stack(const elem *rows, int64_t k, int c, floe_tensor **out) {
    floe_tensor *t0 = rows[0].t[c];
    int nd = floe_tensor_ndim(t0);
    if (nd + 1 > FLOE_MAX_DIMS)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "batch: component %d has rank %d already",
                              c, nd);
    int64_t shape[FLOE_MAX_DIMS];
    shape[0] = k;
    memcpy(shape + 1, floe_tensor_shape(t0), (size_t)nd * sizeof *shape);
    floe_dtype dt = floe_tensor_dtype(t0);
    floe_status st = floe_tensor_new(dt, shape, nd + 1, out);
    if (st != FLOE_OK)
        return st;
    int64_t per = floe_tensor_num_elements(t0);
    size_t rb = (size_t)per * floe_dtype_size(dt);
    char *dst = floe_tensor_data(*out);
    for (int64_t r = 0; r < k && st == FLOE_OK; r++) {
        floe_tensor *t = rows[r].t[c];
        if (dt != FLOE_DTYPE_STRING) {
            if (rb)
                memcpy(dst + (size_t)r * rb, floe_tensor_data(t), rb);
            continue;
        }
        for (int64_t i = 0; i < per && st == FLOE_OK; i++) {
            const char *b;
            size_t len;
            st = floe_tensor_get_string(t, i, &b, &len);
            if (st == FLOE_OK)
                st = floe_tensor_set_string(*out, r * per + i, b, len);
        }
    }
    if (st != FLOE_OK) {
        floe_tensor_unref(*out);
        *out = NULL;
    }
    return st;
}

static floe_status batch_next(floe_pipeline *p, elem *e) {
    batcher *b = p->state;
    int64_t k = 0;
    floe_status st = FLOE_OK;
    while (k < b->size) {
        st = pull(p->input, &b->rows[k]);
        if (st != FLOE_OK)
            break;
        if (k > 0 && (st = batch_check(&b->rows[0], &b->rows[k], k)) != FLOE_OK) {
            k++;
            break;
        }
        k++;
    }
    if (st == FLOE_OUT_OF_RANGE && k > 0 && !b->drop)
        st = FLOE_OK;
    else if (st == FLOE_OUT_OF_RANGE)
        st = floe_set_error(FLOE_OUT_OF_RANGE, "end of input");
    for (int c = 0; st == FLOE_OK && c < b->rows[0].n; c++) {
        st = batch_stack(b->rows, k, c, &e->t[c]);
        if (st == FLOE_OK)
            e->n = c + 1;
    }
    for (int64_t r = 0; r < k; r++)
        elem_clear(&b->rows[r]);
    return st;
}

static void batcher_free(void *state) {
    batcher *b = state;
    free(b->rows);
    free(b);
}

static void batch_destroy(floe_pipeline *p) {
    batcher_free(p->state);
}

static const node_ops batch_ops = {"batch", batch_next, reset_input, batch_destroy};

floe_status floe_pipeline_batch(floe_pipeline *input, int64_t batch_size, int drop_remainder,
                                floe_pipeline **out) {
    floe_status st = check_input(input, out, batch_size >= 1 && batch_size <= (1 << 24),
                                 "floe_pipeline_batch (batch_size 1..2^24)");
    if (st != FLOE_OK)
        return st;
    batcher *b = calloc(1, sizeof *b);
    if (b != NULL) {
        b->size = batch_size;
        b->drop = drop_remainder != 0;
        b->rows = calloc((size_t)batch_size, sizeof *b->rows);
        if (b->rows == NULL) {
            free(b);
            b = NULL;
        }
    }
    return node_new(&batch_ops, input, b, batcher_free, out);
}

/* ---- Repeat, take, skip ---------------------------------------------------------------- */

typedef struct counter {
    int64_t count;          /* repeat: passes (-1 forever); take/skip: elements */
    int64_t done;           /* passes done / elements taken or skipped */
    int64_t produced;       /* repeat: elements in this pass */
} counter;

static floe_status repeat_next(floe_pipeline *p, elem *e) {
    counter *c = p->state;
    for (;;) {
        if (c->count >= 0 && c->done >= c->count)
            return floe_set_error(FLOE_OUT_OF_RANGE, "end of the repeats");
        floe_status st = pull(p->input, e);
        if (st == FLOE_OK) {
            c->produced++;
            return FLOE_OK;
        }
        if (st != FLOE_OUT_OF_RANGE)
            return st;
        c->done++;
        if (c->produced == 0)
            return floe_set_error(FLOE_OUT_OF_RANGE, "repeat: the input is empty");
        c->produced = 0;
        if ((c->count < 0 || c->done < c->count) && (st = reset_input(p)) != FLOE_OK)
            return st;
    }
}

static floe_status counter_reset(floe_pipeline *p) {
    counter *c = p->state;
    c->done = c->produced = 0;
    return reset_input(p);
}

static floe_status take_next(floe_pipeline *p, elem *e) {
    counter *c = p->state;
    if (c->done >= c->count)
        return floe_set_error(FLOE_OUT_OF_RANGE, "end of take");
    floe_status st = pull(p->input, e);
    if (st == FLOE_OK)
        c->done++;
    return st;
}

static floe_status skip_next(floe_pipeline *p, elem *e) {
    counter *c = p->state;
    while (c->done < c->count) {
        floe_status st = pull(p->input, e);
        if (st != FLOE_OK)
            return st;
        elem_clear(e);
        c->done++;
    }
    return pull(p->input, e);
}

static void counter_destroy(floe_pipeline *p) {
    free(p->state);
}

static const node_ops repeat_ops = {"repeat", repeat_next, counter_reset, counter_destroy};
static const node_ops take_ops = {"take", take_next, counter_reset, counter_destroy};
static const node_ops skip_ops = {"skip", skip_next, counter_reset, counter_destroy};

static floe_status counter_new(const node_ops *ops, floe_pipeline *input, int64_t count,
                               floe_pipeline **out) {
    counter *c = calloc(1, sizeof *c);
    if (c != NULL)
        c->count = count;
    return node_new(ops, input, c, free, out);
}

floe_status floe_pipeline_repeat(floe_pipeline *input, int64_t count, floe_pipeline **out) {
    floe_status st = check_input(input, out, count >= -1, "floe_pipeline_repeat (count >= -1)");
    return st != FLOE_OK ? st : counter_new(&repeat_ops, input, count, out);
}

floe_status floe_pipeline_take(floe_pipeline *input, int64_t count, floe_pipeline **out) {
    floe_status st = check_input(input, out, count >= 0, "floe_pipeline_take (count >= 0)");
    return st != FLOE_OK ? st : counter_new(&take_ops, input, count, out);
}

floe_status floe_pipeline_skip(floe_pipeline *input, int64_t count, floe_pipeline **out) {
    floe_status st = check_input(input, out, count >= 0, "floe_pipeline_skip (count >= 0)");
    return st != FLOE_OK ? st : counter_new(&skip_ops, input, count, out);
}

/* ---- Prefetch -------------------------------------------------------------------------- */

typedef struct pf_item {
    elem e;
    floe_status st;
    char *msg;
} pf_item;

typedef struct prefetcher {
    floe_pipeline *input;   /* the node's input, run on the thread */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    pthread_t thread;
    bool running, stop, ended;
    pf_item *q;
    int depth, head, len;
    floe_status end_st;     /* the status that ended the queue, given again after */
    char *end_msg;
} prefetcher;

static void *prefetch_main(void *arg) {
    prefetcher *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (f->len == f->depth && !f->stop)
            pthread_cond_wait(&f->not_full, &f->mu);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            break;
        pf_item it = {.st = FLOE_OK};
        it.st = pull(f->input, &it.e);
        if (it.st != FLOE_OK)
            it.msg = dup_last_error();
        pthread_mutex_lock(&f->mu);
        f->q[(f->head + f->len) % f->depth] = it;
        f->len++;
        pthread_cond_signal(&f->not_empty);
        pthread_mutex_unlock(&f->mu);
        if (it.st != FLOE_OK)
            break;
    }
    return NULL;
}

static void prefetch_stop(prefetcher *f) {
    if (f->running) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->not_full);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        f->running = false;
    }
    for (; f->len > 0; f->len--, f->head = (f->head + 1) % f->depth) {
        elem_clear(&f->q[f->head].e);
        free(f->q[f->head].msg);
    }
    f->head = 0;
    f->stop = false;
    f->ended = false;
    free(f->end_msg);
    f->end_msg = NULL;
}

static floe_status prefetch_next(floe_pipeline *p, elem *e) {
    prefetcher *f = p->state;
    if (f->ended)
        return floe_set_error(f->end_st, "%s", f->end_msg ? f->end_msg : "end of input");
    if (!f->running) {
        if (pthread_create(&f->thread, NULL, prefetch_main, f) != 0)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "prefetch: cannot start a thread");
        f->running = true;
    }
    pthread_mutex_lock(&f->mu);
    while (f->len == 0)
        pthread_cond_wait(&f->not_empty, &f->mu);
    pf_item it = f->q[f->head];
    f->head = (f->head + 1) % f->depth;
    f->len--;
    pthread_cond_signal(&f->not_full);
    pthread_mutex_unlock(&f->mu);
    if (it.st != FLOE_OK) {
        /* the thread has ended after this item */
        pthread_join(f->thread, NULL);
        f->running = false;
        f->ended = true;
        f->end_st = it.st;
        f->end_msg = it.msg;
        return floe_set_error(it.st, "%s", it.msg ? it.msg : "end of input");
    }
    *e = it.e;
    return FLOE_OK;
}

static floe_status prefetch_reset(floe_pipeline *p) {
    prefetcher *f = p->state;
    prefetch_stop(f);
    return floe_pipeline_reset(f->input);
}

static void prefetcher_free(void *state) {
    prefetcher *f = state;
    prefetch_stop(f);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->not_empty);
    pthread_cond_destroy(&f->not_full);
    free(f->q);
    free(f);
}

static void prefetch_destroy(floe_pipeline *p) {
    prefetcher_free(p->state);
}

static const node_ops prefetch_ops = {"prefetch", prefetch_next, prefetch_reset,
                                      prefetch_destroy};

floe_status floe_pipeline_prefetch(floe_pipeline *input, int depth, floe_pipeline **out) {
    floe_status st = check_input(input, out, depth >= 1 && depth <= 4096,
                                 "floe_pipeline_prefetch (depth 1..4096)");
    if (st != FLOE_OK)
        return st;
    prefetcher *f = calloc(1, sizeof *f);
    if (f != NULL && (f->q = calloc((size_t)depth, sizeof *f->q)) == NULL) {
        free(f);
        f = NULL;
    }
    if (f != NULL) {
        f->depth = depth;
        f->input = input;
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->not_empty, NULL);
        pthread_cond_init(&f->not_full, NULL);
    }
    return node_new(&prefetch_ops, input, f, prefetcher_free, out);
}

/* ---- Cache ----------------------------------------------------------------------------- */

typedef struct cacher {
    elem *items;
    int64_t count, alloc, pos;
    bool complete;
} cacher;

static floe_status cache_next(floe_pipeline *p, elem *e) {
    cacher *c = p->state;
    if (c->complete) {
        if (c->pos >= c->count)
            return floe_set_error(FLOE_OUT_OF_RANGE, "end of the cache");
        elem_ref_copy(e, &c->items[c->pos++]);
        return FLOE_OK;
    }
    if (c->count == c->alloc) {
        int64_t na = c->alloc ? c->alloc * 2 : 256;
        elem *ni = realloc(c->items, (size_t)na * sizeof *ni);
        if (ni == NULL)
            return oom("cache");
        c->items = ni;
        c->alloc = na;
    }
    floe_status st = pull(p->input, e);
    if (st == FLOE_OUT_OF_RANGE) {
        c->complete = true;
        c->pos = c->count;
    }
    if (st == FLOE_OK)
        elem_ref_copy(&c->items[c->count++], e);
    return st;
}

static void cache_drop(cacher *c) {
    for (int64_t i = 0; i < c->count; i++)
        elem_clear(&c->items[i]);
    c->count = c->pos = 0;
}

static floe_status cache_reset(floe_pipeline *p) {
    cacher *c = p->state;
    if (c->complete) {
        c->pos = 0;
        return FLOE_OK;
    }
    cache_drop(c); /* a partial pass is not kept */
    return reset_input(p);
}

static void cacher_free(void *state) {
    cacher *c = state;
    cache_drop(c);
    free(c->items);
    free(c);
}

static void cache_destroy(floe_pipeline *p) {
    cacher_free(p->state);
}

static const node_ops cache_ops = {"cache", cache_next, cache_reset, cache_destroy};

floe_status floe_pipeline_cache(floe_pipeline *input, floe_pipeline **out) {
    floe_status st = check_input(input, out, true, "floe_pipeline_cache");
    if (st != FLOE_OK)
        return st;
    return node_new(&cache_ops, input, calloc(1, sizeof(cacher)), cacher_free, out);
}

/* ---- Cache in a file ---------------------------------------------------------------------
 *
 * Each element is one TFRecord record (so the file has CRCs): "FLEC", u32 tensor count,
 * then per tensor u32 dtype, u32 rank, i64 extents, and the data (STRING: u64 length
 * and bytes per element).  The file is written during the first complete pass and
 * committed at its end (floe/fs.h: visible only then), so an existing file is always
 * complete and is read instead of running the input. */

typedef struct fcache {
    floe_context *ctx;
    char *uri;
    int mode;               /* 0: undecided, 1: writing, 2: reading, 3: written, at the end */
    floe_tfrecord_writer *w;
    floe_tfrecord_reader *r;
    uint8_t *buf;
    size_t len, cap;
} fcache;

static bool fc_put(fcache *c, const void *p, size_t n) {
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        uint8_t *nb = realloc(c->buf, cap);
        if (nb == NULL)
            return false;
        c->buf = nb;
        c->cap = cap;
    }
    if (n)
        memcpy(c->buf + c->len, p, n);
    c->len += n;
    return true;
}

static floe_status fc_encode(fcache *c, const elem *e) {
    uint32_t head[2] = {0x43454c46u, (uint32_t)e->n};
    bool ok = true;
    c->len = 0;
    ok = fc_put(c, head, sizeof head);
    for (int i = 0; ok && i < e->n; i++) {
        floe_tensor *t = e->t[i];
        uint32_t h[2] = {(uint32_t)floe_tensor_dtype(t), (uint32_t)floe_tensor_ndim(t)};
        ok = fc_put(c, h, sizeof h) &&
             fc_put(c, floe_tensor_shape(t), (size_t)h[1] * sizeof(int64_t));
        if (h[0] != FLOE_DTYPE_STRING) {
            ok = ok && fc_put(c, floe_tensor_data(t), floe_tensor_nbytes(t));
            continue;
        }
        for (int64_t k = 0; ok && k < floe_tensor_num_elements(t); k++) {
            const char *b;
            size_t n;
            uint64_t n64;
            ok = floe_tensor_get_string(t, k, &b, &n) == FLOE_OK;
            n64 = n;
            ok = ok && fc_put(c, &n64, sizeof n64) && fc_put(c, b, n);
        }
    }
    return ok ? FLOE_OK : oom("cache");
}

static bool fc_take(const uint8_t **p, const uint8_t *end, void *dst, size_t n) {
    if ((size_t)(end - *p) < n)
        return false;
    memcpy(dst, *p, n);
    *p += n;
    return true;
}

static floe_status fc_decode(fcache *c, const uint8_t *p, size_t size, elem *e) {
    const uint8_t *end = p + size;
    uint32_t head[2];
    if (!fc_take(&p, end, head, sizeof head) || head[0] != 0x43454c46u || head[1] < 1 ||
        head[1] > FLOE_PIPELINE_MAX_TUPLE)
        goto bad;
    for (uint32_t i = 0; i < head[1]; i++) {
        uint32_t h[2];
        int64_t shape[FLOE_MAX_DIMS];
        if (!fc_take(&p, end, h, sizeof h) || h[1] > FLOE_MAX_DIMS ||
            !fc_take(&p, end, shape, (size_t)h[1] * sizeof(int64_t)))
            goto bad;
        floe_tensor *t;
        if (floe_tensor_new((floe_dtype)h[0], shape, (int)h[1], &t) != FLOE_OK)
            goto bad;
        e->t[e->n++] = t;
        if (h[0] != FLOE_DTYPE_STRING) {
            if (!fc_take(&p, end, floe_tensor_data(t), floe_tensor_nbytes(t)))
                goto bad;
            continue;
        }
        for (int64_t k = 0; k < floe_tensor_num_elements(t); k++) {
            uint64_t n;
            if (!fc_take(&p, end, &n, sizeof n) || n > (uint64_t)(end - p) ||
                floe_tensor_set_string(t, k, p, (size_t)n) != FLOE_OK)
                goto bad;
            p += n;
        }
    }
    if (p == end)
        return FLOE_OK;
bad:
    return floe_set_error(FLOE_DATA_LOSS, "cache file %s: a damaged element at offset %" PRIu64,
                          c->uri, floe_tfrecord_reader_offset(c->r));
}

static floe_status fcache_next(floe_pipeline *p, elem *e) {
    fcache *c = p->state;
    floe_status st;
    if (c->mode == 3)
        return floe_set_error(FLOE_OUT_OF_RANGE, "end of input");
    if (c->mode == 0) {
        floe_file_info info = {.struct_size = sizeof info};
        if (floe_fs_stat(c->ctx, c->uri, &info) == FLOE_OK) {
            st = floe_tfrecord_reader_open(c->ctx, c->uri, FLOE_COMPRESSION_NONE, &c->r);
            c->mode = 2;
        } else {
            st = floe_tfrecord_writer_open(c->ctx, c->uri, FLOE_COMPRESSION_NONE, 0, &c->w);
            c->mode = 1;
        }
        if (st != FLOE_OK) {
            c->mode = 0;
            return st;
        }
    }
    if (c->mode == 2) {
        const void *data;
        size_t n;
        if ((st = floe_tfrecord_read(c->r, &data, &n)) != FLOE_OK)
            return st;
        return fc_decode(c, data, n, e);
    }
    st = pull(p->input, e);
    if (st == FLOE_OUT_OF_RANGE) {
        floe_status cst = floe_tfrecord_writer_close(c->w);
        c->w = NULL;
        c->mode = 3;
        return cst != FLOE_OK ? cst : floe_set_error(FLOE_OUT_OF_RANGE, "end of input");
    }
    if (st == FLOE_OK && (st = fc_encode(c, e)) == FLOE_OK)
        st = floe_tfrecord_write(c->w, c->buf, c->len);
    return st;
}

static floe_status fcache_reset(floe_pipeline *p) {
    fcache *c = p->state;
    floe_tfrecord_writer_abort(c->w); /* a partial pass is not kept */
    floe_tfrecord_reader_close(c->r);
    c->w = NULL;
    c->r = NULL;
    bool was_writing = c->mode == 1;
    c->mode = 0;
    return was_writing ? reset_input(p) : FLOE_OK;
}

static void fcache_free(void *state) {
    fcache *c = state;
    floe_tfrecord_writer_abort(c->w);
    floe_tfrecord_reader_close(c->r);
    free(c->uri);
    free(c->buf);
    free(c);
}

static void fcache_destroy(floe_pipeline *p) {
    fcache_free(p->state);
}

static const node_ops fcache_ops = {"cache_file", fcache_next, fcache_reset, fcache_destroy};

floe_status floe_pipeline_cache_file(floe_pipeline *input, floe_context *ctx, const char *uri,
                                     floe_pipeline **out) {
    floe_status st = check_input(input, out, uri != NULL, "floe_pipeline_cache_file (a URI)");
    if (st != FLOE_OK)
        return st;
    fcache *c = calloc(1, sizeof *c);
    if (c != NULL && (c->uri = strdup(uri)) == NULL) {
        free(c);
        c = NULL;
    }
    if (c != NULL)
        c->ctx = ctx;
    return node_new(&fcache_ops, input, c, fcache_free, out);
}
