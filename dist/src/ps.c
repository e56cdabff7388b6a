/*
 * ps.c - the parameter server: holds variables (f32 tensors the chief sends with Init),
 * answers Pull with their values, and applies pushed gradients with its optimizer
 * (Adam or SGD): at once in asynchronous mode, or, in synchronous mode, once every
 * worker has pushed its gradient for the current step (their mean), waking the waiting
 * pushes.  A push that waits longer than the RPC deadline allows fails with
 * FLOE_DEADLINE_EXCEEDED, so a lost worker never hangs the others; its partial sum stays
 * and completes when the worker (or its restart) pushes.
 *
 * The Adam slots (m, v) of variable "<var>" are named as in TensorFlow, "<var>/Adam" and
 * "<var>/Adam_1": Pull returns them and Init restores them (a resumed job's optimizer
 * state); the Adam step is the global step.
 *
 * Sections: variables and the optimizer; the RPC handlers; start and stop.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist-impl.h"

typedef struct ps_var {
    char *name;
    int ndim;
    int64_t dims[FLOE_MAX_DIMS];
    int64_t count;
    float *value, *m, *v, *acc;
} ps_var;

struct floe_ps {
    floe_transport_server *server;
    floe_ps_options opt;
    int64_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t stepped;
    ps_var *vars;
    int nvars;
    bool initialized;
    int64_t step;
    uint64_t pushed;       /* sync: bit w set when worker w pushed for this step */
    int npushed;
    bool stopping;         /* floe_ps_stop: waiting pushes give up at once */
};

void floe_ps_options_init(floe_ps_options *o) {
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->num_workers = 1;
    o->sync = 1;
    o->optimizer = "adam";
    o->learning_rate = 1e-3;
}

/* ---- Variables and the optimizer ------------------------------------------------------- */

static void vars_free(ps_var *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
        free(v[i].m);
        free(v[i].v);
        free(v[i].acc);
    }
    free(v);
}

static ps_var *find_var(floe_ps *ps, const char *name) {
    for (int i = 0; i < ps->nvars; i++)
        if (strcmp(ps->vars[i].name, name) == 0)
            return &ps->vars[i];
    return NULL;
}

/* Applies @g (already averaged) to @v at update number @t (1-based). */
static void apply(const floe_ps *ps, ps_var *v, const float *g, int64_t t) {
    float lr = (float)ps->opt.learning_rate;
    if (strcmp(ps->opt.optimizer, "sgd") == 0) {
        for (int64_t i = 0; i < v->count; i++)
            v->value[i] -= lr * g[i];
        return;
    }
    const double b1 = 0.9, b2 = 0.999;
    float lr_t = (float)(lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t)));
    for (int64_t i = 0; i < v->count; i++) {
        v->m[i] = (float)b1 * v->m[i] + (float)(1 - b1) * g[i];
        v->v[i] = (float)b2 * v->v[i] + (float)(1 - b2) * g[i] * g[i];
        v->value[i] -= lr_t * v->m[i] / (sqrtf(v->v[i]) + 1e-7f);
    }
}

/* ---- The RPC handlers ------------------------------------------------------------------ */

static floe_status reply(floe_ps *ps, Floe__Dist__Tensor **ts, size_t n, void **resp,
                         size_t *resp_len) {
    Floe__Dist__Reply r = FLOE__DIST__REPLY__INIT;
    r.step = ps->step;
    r.initialized = ps->initialized;
    r.tensors = ts;
    r.n_tensors = n;
    return floe__dist_pack(&r.base, resp, resp_len);
}

/* The slot a name denotes: "<var>/Adam" (1, m) or "<var>/Adam_1" (2, v), else 0;
 * *@base_len: the length of "<var>". */
static int slot_kind(const char *name, size_t *base_len) {
    size_t n = strlen(name);
    if (n > 7 && strcmp(name + n - 7, "/Adam_1") == 0) {
        *base_len = n - 7;
        return 2;
    }
    if (n > 5 && strcmp(name + n - 5, "/Adam") == 0) {
        *base_len = n - 5;
        return 1;
    }
    return 0;
}

static ps_var *find_in(ps_var *vars, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
            return &vars[i];
    return NULL;
}

/* Init: the variables, then (adam only) the slots "<var>/Adam" and "<var>/Adam_1" of
 * variables of the same Init, each at most once, f32 and shaped exactly like its variable.
 * Names ending in "/Adam" or "/Adam_1" are reserved for slots. */
static floe_status handle_init(floe_ps *ps, const Floe__Dist__Request *rq,
                               const floe__dist_tensor *t, void **resp, size_t *resp_len) {
    ps_var *vars;
    unsigned char *seen;
    size_t base;
    int nv = 0;
    floe_status st = FLOE_OK;

    if (ps->initialized)   /* a restarted chief joins the running job */
        return reply(ps, NULL, 0, resp, resp_len);
    if (rq->n_tensors == 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "Init: no variables");
    vars = calloc(rq->n_tensors, sizeof(*vars));
    seen = calloc(rq->n_tensors, 1);
    if (vars == NULL || seen == NULL) {
        free(vars);
        free(seen);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Init: out of memory");
    }
    for (size_t i = 0; i < rq->n_tensors && st == FLOE_OK; i++) {
        ps_var *v = &vars[nv];
        if (slot_kind(t[i].name, &base))
            continue;
        if (t[i].dtype != FLOE_DTYPE_F32) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: variable '%s' is %s, the "
                                "parameter server holds f32", t[i].name,
                                floe_dtype_name(t[i].dtype));
            break;
        }
        if (find_in(vars, nv, t[i].name, strlen(t[i].name)) != NULL) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: variable '%s' twice", t[i].name);
            break;
        }
        v->name = strdup(t[i].name);
        v->ndim = t[i].ndim;
        memcpy(v->dims, t[i].dims, sizeof(v->dims));
        v->count = t[i].count;
        v->value = malloc(t[i].nbytes ? t[i].nbytes : 1);
        v->m = calloc((size_t)v->count + 1, sizeof(float));
        v->v = calloc((size_t)v->count + 1, sizeof(float));
        v->acc = calloc((size_t)v->count + 1, sizeof(float));
        nv++;
        if (!v->name || !v->value || !v->m || !v->v || !v->acc)
            st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Init: out of memory");
        else
            memcpy(v->value, t[i].data, t[i].nbytes);
    }
    if (st == FLOE_OK && nv == 0)
        st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: no variables, only slots");
    for (size_t i = 0; i < rq->n_tensors && st == FLOE_OK; i++) {
        int kind = slot_kind(t[i].name, &base);
        ps_var *v;
        if (kind == 0)
            continue;
        if (strcmp(ps->opt.optimizer, "adam") != 0) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: slot '%s': optimizer %s keeps no "
                                "slots", t[i].name, ps->opt.optimizer);
            break;
        }
        if ((v = find_in(vars, nv, t[i].name, base)) == NULL) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: slot '%s' of no variable of this "
                                "Init", t[i].name);
            break;
        }
        if (t[i].dtype != FLOE_DTYPE_F32 || t[i].ndim != v->ndim ||
            memcmp(t[i].dims, v->dims, sizeof(int64_t) * (size_t)v->ndim) != 0) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: slot '%s' has dtype %s or shape "
                                "unlike variable '%s' (f32)", t[i].name,
                                floe_dtype_name(t[i].dtype), v->name);
            break;
        }
        if (seen[v - vars] & kind) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "Init: slot '%s' twice", t[i].name);
            break;
        }
        seen[v - vars] |= (unsigned char)kind;
        memcpy(kind == 1 ? v->m : v->v, t[i].data, t[i].nbytes);
    }
    free(seen);
    if (st != FLOE_OK) {
        vars_free(vars, (int)rq->n_tensors);
        return st;
    }
    ps->vars = vars;
    ps->nvars = nv;
    ps->step = rq->step;
    ps->initialized = true;
    return reply(ps, NULL, 0, resp, resp_len);
}

static floe_status handle_pull(floe_ps *ps, const Floe__Dist__Request *rq, void **resp,
                               size_t *resp_len) {
    Floe__Dist__Tensor *ts, **ptrs;
    size_t n = rq->n_names ? rq->n_names : (size_t)ps->nvars;
    floe_status st;

    if (!ps->initialized)
        return floe_set_error(FLOE_UNAVAILABLE, "Pull: variables not initialised yet");
    ts = calloc(n ? n : 1, sizeof(*ts));
    ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (ts == NULL || ptrs == NULL) {
        free(ts);
        free(ptrs);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "Pull: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        ps_var *v = rq->n_names ? find_var(ps, rq->names[i]) : &ps->vars[i];
        const float *data = v ? v->value : NULL;
        size_t base;
        int kind = 0;
        if (v == NULL && (kind = slot_kind(rq->names[i], &base)) != 0 &&
            (v = find_in(ps->vars, ps->nvars, rq->names[i], base)) != NULL) {
            if (strcmp(ps->opt.optimizer, "adam") != 0) {
                st = floe_set_error(FLOE_INVALID_ARGUMENT, "Pull: slot '%s': optimizer %s "
                                    "keeps no slots", rq->names[i], ps->opt.optimizer);
                goto out;
            }
            data = kind == 1 ? v->m : v->v;
        }
        if (v == NULL) {
            st = floe_set_error(FLOE_NOT_FOUND, "Pull: no variable '%s' on this server",
                                rq->names[i]);
            goto out;
        }
        floe__dist__tensor__init(&ts[i]);
        ts[i].name = kind ? rq->names[i] : v->name;
        ts[i].dtype = (char *)"f32";
        ts[i].dims = v->dims;
        ts[i].n_dims = (size_t)v->ndim;
        ts[i].data.data = (uint8_t *)data;
        ts[i].data.len = (size_t)v->count * sizeof(float);
        ptrs[i] = &ts[i];
    }
    st = reply(ps, ptrs, n, resp, resp_len);
out:
    free(ts);
    free(ptrs);
    return st;
}

static void deadline_in(struct timespec *ts, int64_t ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Checks every gradient against its variable before anything is applied. */
static floe_status check_grads(floe_ps *ps, const Floe__Dist__Request *rq,
                               const floe__dist_tensor *t) {
    for (size_t i = 0; i < rq->n_tensors; i++) {
        ps_var *v = find_var(ps, t[i].name);
        if (v == NULL)
            return floe_set_error(FLOE_NOT_FOUND, "Push: no variable '%s' on this server",
                                  t[i].name);
        if (t[i].dtype != FLOE_DTYPE_F32 || t[i].ndim != v->ndim ||
            memcmp(t[i].dims, v->dims, sizeof(int64_t) * (size_t)v->ndim) != 0)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "Push: gradient of '%s' has dtype %s "
                                  "or shape unlike the variable's", t[i].name,
                                  floe_dtype_name(t[i].dtype));
    }
    return FLOE_OK;
}

static floe_status handle_push(floe_ps *ps, const Floe__Dist__Request *rq,
                               const floe__dist_tensor *t, void **resp, size_t *resp_len) {
    floe_status st;
    int64_t step = rq->step;
    struct timespec until;

    if (!ps->initialized)
        return floe_set_error(FLOE_UNAVAILABLE, "Push: variables not initialised yet");
    if ((st = check_grads(ps, rq, t)) != FLOE_OK)
        return st;
    if (!ps->opt.sync) {
        for (size_t i = 0; i < rq->n_tensors; i++)
            apply(ps, find_var(ps, t[i].name), t[i].data, ps->step + 1);
        ps->step++;
        return reply(ps, NULL, 0, resp, resp_len);
    }
    if (rq->worker >= ps->opt.num_workers || rq->worker >= 64)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "Push: worker %d, but the job has %d",
                              rq->worker, ps->opt.num_workers);
    if (step != ps->step)
        return floe_set_error(FLOE_ABORTED, "Push: gradients of step %lld, the server is at "
                              "step %lld: pull again", (long long)step, (long long)ps->step);
    if (!(ps->pushed & (UINT64_C(1) << rq->worker))) {
        for (size_t i = 0; i < rq->n_tensors; i++) {
            ps_var *v = find_var(ps, t[i].name);
            const float *g = t[i].data;
            for (int64_t k = 0; k < v->count; k++)
                v->acc[k] += g[k];
        }
        ps->pushed |= UINT64_C(1) << rq->worker;
        ps->npushed++;
    }
    if (ps->npushed == ps->opt.num_workers) {
        float inv = 1.0f / (float)ps->opt.num_workers;
        for (int i = 0; i < ps->nvars; i++) {
            ps_var *v = &ps->vars[i];
            for (int64_t k = 0; k < v->count; k++)
                v->acc[k] *= inv;
            apply(ps, v, v->acc, ps->step + 1);
            memset(v->acc, 0, (size_t)v->count * sizeof(float));
        }
        ps->step++;
        ps->pushed = 0;
        ps->npushed = 0;
        pthread_cond_broadcast(&ps->stepped);
        return reply(ps, NULL, 0, resp, resp_len);
    }
    /* Wait for the others, within the deadline the workers' RPCs have. */
    deadline_in(&until, ps->timeout_ms * 8 / 10);
    while (ps->step == step) {
        if (ps->stopping)
            return floe_set_error(FLOE_UNAVAILABLE, "Push: the parameter server is stopping");
        if (pthread_cond_timedwait(&ps->stepped, &ps->mu, &until) == ETIMEDOUT &&
            ps->step == step)
            return floe_set_error(FLOE_DEADLINE_EXCEEDED, "Push: step %lld: %d of %d workers "
                                  "pushed in time", (long long)step, ps->npushed,
                                  ps->opt.num_workers);
    }
    return reply(ps, NULL, 0, resp, resp_len);
}

static floe_status handler(void *arg, const char *method, const void *req, size_t req_len,
                           void **resp, size_t *resp_len) {
    floe_ps *ps = arg;
    Floe__Dist__Request *rq;
    floe__dist_tensor *t;
    floe_status st;

    *resp = NULL;
    *resp_len = 0;
    if ((st = floe__dist_decode_request(req, req_len, &rq, &t)) != FLOE_OK)
        return st;
    pthread_mutex_lock(&ps->mu);
    if (strcmp(method, "Init") == 0)
        st = handle_init(ps, rq, t, resp, resp_len);
    else if (strcmp(method, "Pull") == 0)
        st = handle_pull(ps, rq, resp, resp_len);
    else if (strcmp(method, "Push") == 0)
        st = handle_push(ps, rq, t, resp, resp_len);
    else if (strcmp(method, "Status") == 0)
        st = reply(ps, NULL, 0, resp, resp_len);
    else
        st = floe_set_error(FLOE_UNIMPLEMENTED, "no method '%.64s' on a parameter server",
                            method);
    pthread_mutex_unlock(&ps->mu);
    free(t);
    floe__dist_request_free(rq);
    return st;
}

/* ---- Start and stop ------------------------------------------------------------------------ */

floe_status floe_ps_start(floe_context *ctx, const char *address, const floe_dist_options *dopts,
                          const floe_ps_options *popts, floe_ps **out) {
    floe_transport *t;
    floe_ps *ps;
    floe_status st;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_ps_start: NULL out");
    *out = NULL;
    if (ctx == NULL || address == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_ps_start: NULL context or address");
    if ((ps = calloc(1, sizeof(*ps))) == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    floe_ps_options_init(&ps->opt);
    if (popts != NULL)
        memcpy(&ps->opt, popts, popts->struct_size < sizeof(ps->opt) ? popts->struct_size
                                                                      : sizeof(ps->opt));
    if (ps->opt.optimizer == NULL)
        ps->opt.optimizer = "adam";
    if (ps->opt.num_workers < 1 || ps->opt.num_workers > 64 || !(ps->opt.learning_rate > 0) ||
        (strcmp(ps->opt.optimizer, "adam") != 0 && strcmp(ps->opt.optimizer, "sgd") != 0)) {
        free(ps);
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_ps_start: num_workers must be "
                              "1..64, learning_rate > 0, optimizer adam or sgd");
    }
    ps->opt.optimizer = strcmp(ps->opt.optimizer, "sgd") == 0 ? "sgd" : "adam";
    ps->timeout_ms = dopts && dopts->rpc_timeout_ms > 0 ? dopts->rpc_timeout_ms : 10000;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->stepped, NULL);
    if ((st = floe__dist_transport(ctx, dopts, &t)) != FLOE_OK ||
        (st = floe_transport_serve(t, address, handler, ps, &ps->server)) != FLOE_OK) {
        pthread_cond_destroy(&ps->stepped);
        pthread_mutex_destroy(&ps->mu);
        free(ps);
        return st;
    }
    *out = ps;
    return FLOE_OK;
}

int floe_ps_port(const floe_ps *ps) {
    return ps ? floe_transport_server_port(ps->server) : -1;
}

int64_t floe_ps_step(floe_ps *ps) {
    int64_t s;
    pthread_mutex_lock(&ps->mu);
    s = ps->step;
    pthread_mutex_unlock(&ps->mu);
    return s;
}

void floe_ps_stop(floe_ps *ps) {
    if (ps == NULL)
        return;
    pthread_mutex_lock(&ps->mu);
    ps->stopping = true;
    pthread_cond_broadcast(&ps->stepped);
    pthread_mutex_unlock(&ps->mu);
    floe_transport_shutdown(ps->server);
    vars_free(ps->vars, ps->nvars);
    pthread_cond_destroy(&ps->stepped);
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}
