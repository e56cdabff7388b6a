/*
 * worker.c - a worker of the distributed job: builds the MLP's gradient graph (the
 * parameters are Placeholders fed with the values pulled from the parameter servers),
 * places the variables on the servers (round-robin, or partitioned by size: a variable
 * bigger than its share is split by rows across every server), and runs the loop
 * pull -> gradients on a batch of its shard -> push, retrying failed steps within a
 * bounded time.  The chief (task 0) initialises the servers and evaluates at the end.
 *
 * Sections: graph; placement; RPC helpers; the training loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <floe/checkpoint.h>
#include <floe/keras.h>
#include <floe/train.h>

#include "dist-impl.h"

#define MAX_LAYERS 8

/* One variable and where its parts live. */
typedef struct part {
    int ps;
    char name[80];
    int64_t row0, rows;
} part;

typedef struct wvar {
    char name[64];
    int ndim;
    int64_t dims[2];
    int64_t count, row_size;   /* elements; elements per row */
    float *value;              /* the full value, fed to the graph */
    float *slot[2];            /* chief, adam: the full "/Adam" (m), "/Adam_1" (v) slots */
    floe_node *ph;
    floe_output grad;
    part parts[64];
    int nparts;
} wvar;

typedef struct worker {
    floe_context *ctx;
    const floe_cluster *c;
    floe_dist_train_options o;
    int64_t timeout_ms;
    int nps, nworkers;
    int64_t last_step;         /* the highest server step seen: a restarted server's */
    floe_transport_conn *conn[64];
    wvar vars[2 * MAX_LAYERS];
    int nvars;
    int64_t n_in, classes;
    floe_graph *g;
    floe_session *s;
    floe_node *x, *y;
    floe_output logits, loss;
    floe_plan *train_plan, *eval_plan;
    /* Chief with a checkpoint directory: a graph of one resource variable per model
     * variable, assigned from Placeholders, for floe/checkpoint.h. */
    floe_graph *cg;
    floe_session *cs;
    floe_train_var cvars[3 * 2 * MAX_LAYERS];   /* the values, then (adam) the slots */
    floe_node *cph[3 * 2 * MAX_LAYERS];
    int ncvars;
    int64_t last_ckpt;
    int slots;                 /* the servers keep Adam slots: -1 not known yet, 0, 1 */
    bool send_slots;           /* Init carries the slots (restored or pulled) */
} worker;

/* ---- Graph ------------------------------------------------------------------------------ */

static floe_status node(floe_graph *g, const char *op, const floe_output *in, int nin,
                        const char *tattr, floe_dtype t, floe_output *out) {
    floe_node_builder *nb;
    floe_node *n;
    floe_status st = floe_node_builder_new(g, op, NULL, &nb);
    if (st != FLOE_OK)
        return st;
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(nb, in[i]);
    if (tattr)
        floe_attrs_set_type(floe_node_builder_attrs(nb), tattr, t);
    st = floe_node_builder_finish(nb, &n);
    *out = floe_out(n, 0);
    return st;
}

/* A node whose value every run feeds. */
static floe_status feed_node(floe_graph *g, const char *name, floe_dtype dt,
                               const int64_t *dims, int ndim, floe_node **out) {
    floe_node_builder *nb;
    floe_status st = floe_node_builder_new(g, "Placeholder", name, &nb);
    if (st != FLOE_OK)
        return st;
    floe_attrs_set_type(floe_node_builder_attrs(nb), "dtype", dt);
    floe_attrs_set_shape(floe_node_builder_attrs(nb), "shape", dims, ndim);
    return floe_node_builder_finish(nb, out);
}

static floe_status const_i32(floe_graph *g, int32_t v, floe_output *out) {
    floe_tensor *t;
    floe_node_builder *nb;
    floe_node *n;
    floe_status st = floe_tensor_new_copy(FLOE_DTYPE_I32, NULL, 0, &v, sizeof(v), &t);
    if (st != FLOE_OK)
        return st;
    if ((st = floe_node_builder_new(g, "Const", NULL, &nb)) == FLOE_OK) {
        floe_attrs_set_tensor(floe_node_builder_attrs(nb), "value", t);
        floe_attrs_set_type(floe_node_builder_attrs(nb), "dtype", FLOE_DTYPE_I32);
        st = floe_node_builder_finish(nb, &n);
        *out = floe_out(n, 0);
    }
    floe_tensor_unref(t);
    return st;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Adds variable @name of [@rows, @cols] (or [@cols] when @rows is 0), glorot-uniform
 * (kernels) or zero (biases), and its Placeholder. */
static floe_status add_var(worker *w, const char *name, int64_t rows, int64_t cols,
                           uint64_t *rng) {
    wvar *v = &w->vars[w->nvars];
    floe_status st;
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->ndim = rows ? 2 : 1;
    v->dims[0] = rows ? rows : cols;
    v->dims[1] = cols;
    v->count = rows ? rows * cols : cols;
    v->row_size = rows ? cols : 1;
    if ((v->value = calloc((size_t)v->count, sizeof(float))) == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    if (rows) {
        double limit = sqrt(6.0 / (double)(rows + cols));
        for (int64_t i = 0; i < v->count; i++)
            v->value[i] = (float)((double)(rng_next(rng) >> 11) / 9007199254740992.0 * 2 *
                                  limit - limit);
    }
    if ((st = feed_node(w->g, name, FLOE_DTYPE_F32, v->dims, v->ndim, &v->ph)) != FLOE_OK)
        return st;
    w->nvars++;
    return FLOE_OK;
}

static floe_status build_graph(worker *w) {
    int64_t xdims[2] = {-1, w->n_in}, ydims[1] = {-1};
    int64_t widths[MAX_LAYERS + 1];
    int nl = (w->o.hidden ? w->o.num_hidden : 1) + 1;
    uint64_t rng = w->o.seed;
    floe_output h, t, in[2], axis, gs[2 * MAX_LAYERS], xs[2 * MAX_LAYERS];
    floe_node *n;
    floe_status st;
    char name[64];

    widths[0] = w->n_in;
    for (int l = 1; l < nl; l++)
        widths[l] = w->o.hidden ? w->o.hidden[l - 1] : 128;
    widths[nl] = w->classes;
    if ((st = floe_graph_new(w->ctx, &w->g)) != FLOE_OK ||
        (st = feed_node(w->g, "x", FLOE_DTYPE_F32, xdims, 2, &w->x)) != FLOE_OK ||
        (st = feed_node(w->g, "y", FLOE_DTYPE_I32, ydims, 1, &w->y)) != FLOE_OK)
        return st;
    h = floe_out(w->x, 0);
    for (int l = 0; l < nl; l++) {
        snprintf(name, sizeof(name), "dense_%d/kernel", l);
        if ((st = add_var(w, name, widths[l], widths[l + 1], &rng)) != FLOE_OK)
            return st;
        snprintf(name, sizeof(name), "dense_%d/bias", l);
        if ((st = add_var(w, name, 0, widths[l + 1], &rng)) != FLOE_OK)
            return st;
        in[0] = h, in[1] = floe_out(w->vars[w->nvars - 2].ph, 0);
        if ((st = node(w->g, "MatMul", in, 2, NULL, 0, &t)) != FLOE_OK)
            return st;
        in[0] = t, in[1] = floe_out(w->vars[w->nvars - 1].ph, 0);
        if ((st = node(w->g, "BiasAdd", in, 2, NULL, 0, &h)) != FLOE_OK)
            return st;
        if (l + 1 < nl && (st = node(w->g, "Relu", &h, 1, NULL, 0, &h)) != FLOE_OK)
            return st;
    }
    w->logits = h;
    in[0] = h, in[1] = floe_out(w->y, 0);
    if ((st = node(w->g, "SparseSoftmaxCrossEntropyWithLogits", in, 2, "Tlabels",
                   FLOE_DTYPE_I32, &t)) != FLOE_OK ||
        (st = const_i32(w->g, 0, &axis)) != FLOE_OK)
        return st;
    in[0] = t, in[1] = axis;
    if ((st = node(w->g, "Mean", in, 2, NULL, 0, &w->loss)) != FLOE_OK)
        return st;
    for (int i = 0; i < w->nvars; i++)
        xs[i] = floe_out(w->vars[i].ph, 0);
    if ((st = floe_gradients(w->g, &w->loss, 1, xs, w->nvars, NULL, gs)) != FLOE_OK)
        return st;
    for (int i = 0; i < w->nvars; i++)
        w->vars[i].grad = gs[i];
    (void)n;
    return floe_session_new(w->g, NULL, &w->s);
}

/* ---- Placement ---------------------------------------------------------------------------- */

static void place(worker *w) {
    int64_t load[64] = {0}, total = 0;
    bool partition = w->o.placement == NULL || strcmp(w->o.placement, "round_robin") != 0;

    for (int i = 0; i < w->nvars; i++)
        total += w->vars[i].count;
    for (int i = 0; i < w->nvars; i++) {
        wvar *v = &w->vars[i];
        int64_t rows = v->ndim == 2 ? v->dims[0] : v->count;
        if (partition && w->nps > 1 && v->count > total / w->nps && rows >= w->nps) {
            for (int k = 0; k < w->nps; k++) {
                part *p = &v->parts[v->nparts++];
                p->ps = k;
                p->row0 = rows * k / w->nps;
                p->rows = rows * (k + 1) / w->nps - p->row0;
                snprintf(p->name, sizeof(p->name), "%s/part_%d", v->name, k);
                load[k] += p->rows * v->row_size;
            }
            continue;
        }
        part *p = &v->parts[v->nparts++];
        int best = i % w->nps;
        if (partition)   /* least-loaded server */
            for (int k = 0; k < w->nps; k++)
                if (load[k] < load[best])
                    best = k;
        p->ps = best;
        p->row0 = 0;
        p->rows = rows;
        snprintf(p->name, sizeof(p->name), "%s", v->name);
        load[best] += v->count;
    }
}

/* ---- RPC helpers ---------------------------------------------------------------------------- */

/* The parts on server @k as message tensors (values or @grads), pointing into @w. */
static int parts_on(worker *w, int k, const float *const *src, Floe__Dist__Tensor *ts,
                    Floe__Dist__Tensor **ptrs, int64_t (*dims)[2]) {
    int n = 0;
    for (int i = 0; i < w->nvars; i++) {
        wvar *v = &w->vars[i];
        for (int j = 0; j < v->nparts; j++) {
            part *p = &v->parts[j];
            if (p->ps != k)
                continue;
            floe__dist__tensor__init(&ts[n]);
            ts[n].name = p->name;
            ts[n].dtype = (char *)"f32";
            dims[n][0] = p->rows;
            dims[n][1] = v->dims[1];
            ts[n].dims = dims[n];
            ts[n].n_dims = (size_t)v->ndim;
            ts[n].data.data = (uint8_t *)(src[i] + p->row0 * v->row_size);
            ts[n].data.len = (size_t)(p->rows * v->row_size) * sizeof(float);
            ptrs[n] = &ts[n];
            n++;
        }
    }
    return n;
}

static floe_status rpc(worker *w, int k, const char *method, Floe__Dist__Request *rq,
                       Floe__Dist__Reply **out, floe__dist_tensor **tensors) {
    void *req, *resp;
    size_t req_len, resp_len;
    floe_status st = floe__dist_pack(&rq->base, &req, &req_len);
    if (st != FLOE_OK)
        return st;
    st = floe_transport_call(w->conn[k], method, req, req_len, &resp, &resp_len, w->timeout_ms);
    floe_transport_free(req);
    if (st != FLOE_OK)
        return st;
    st = floe__dist_decode_reply(resp, resp_len, out, tensors);
    floe_transport_free(resp);
    return st;
}

/* Sends (Init, values) or (Push, gradients) to server @k.  *@step (out): its step. */
static floe_status send_parts(worker *w, int k, const char *method, const float *const *src,
                              int64_t step, int64_t *server_step) {
    Floe__Dist__Tensor ts[256], *ptrs[256];
    int64_t dims[256][2];
    Floe__Dist__Request rq = FLOE__DIST__REQUEST__INIT;
    Floe__Dist__Reply *r;
    floe_status st;

    static const char *const suffix[2] = {"/Adam", "/Adam_1"};
    char names[2][128][96];
    int n;

    rq.step = step;
    rq.worker = w->o.task;
    n = parts_on(w, k, src, ts, ptrs, dims);
    rq.n_tensors = (size_t)n;
    if (strcmp(method, "Init") == 0 && w->send_slots) {
        /* The slots of each part, shaped like it: "<part>/Adam", "<part>/Adam_1". */
        for (int s = 0; s < 2; s++) {
            const float *slot_src[2 * MAX_LAYERS];
            for (int i = 0; i < w->nvars; i++)
                slot_src[i] = w->vars[i].slot[s];
            int m = parts_on(w, k, slot_src, ts + rq.n_tensors, ptrs + rq.n_tensors,
                             dims + rq.n_tensors);
            for (int i = 0; i < m; i++) {
                Floe__Dist__Tensor *t = &ts[rq.n_tensors + (size_t)i];
                snprintf(names[s][i], sizeof(names[s][i]), "%s%s", t->name, suffix[s]);
                t->name = names[s][i];
            }
            rq.n_tensors += (size_t)m;
        }
    }
    rq.tensors = ptrs;
    st = rpc(w, k, method, &rq, &r, NULL);
    if (st == FLOE_INVALID_ARGUMENT && rq.n_tensors > (size_t)n &&
        strstr(floe_last_error(), "keeps no slots") != NULL) {
        /* A server without slots (sgd): the values alone. */
        w->send_slots = false;
        rq.n_tensors = (size_t)n;
        st = rpc(w, k, method, &rq, &r, NULL);
    }
    if (st != FLOE_OK)
        return st;
    if (server_step)
        *server_step = r->step;
    floe__dist_reply_free(r);
    return FLOE_OK;
}

/* Pulls every part into the full values, and with @slots also their Adam slots into the
 * vars' slot[] (allocated here), all of a server in one Pull (one consistent state);
 * *@steps[k] (out): each server's step. */
static floe_status pull_parts(worker *w, int64_t *steps, bool slots) {
    static const char *const suffix[2] = {"/Adam", "/Adam_1"};
    for (int i = 0; i < w->nvars && slots; i++)
        for (int s = 0; s < 2; s++)
            if (w->vars[i].slot[s] == NULL &&
                (w->vars[i].slot[s] = calloc((size_t)w->vars[i].count, sizeof(float))) == NULL)
                return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory for slots");
    for (int k = 0; k < w->nps; k++) {
        Floe__Dist__Request rq = FLOE__DIST__REQUEST__INIT;
        Floe__Dist__Reply *r;
        floe__dist_tensor *t;
        const char *names[256];
        char snames[2][128][96];
        int n = 0, per = slots ? 3 : 1;
        floe_status st;

        for (int i = 0; i < w->nvars; i++)
            for (int j = 0; j < w->vars[i].nparts; j++)
                if (w->vars[i].parts[j].ps == k) {
                    names[per * n] = w->vars[i].parts[j].name;
                    for (int s = 0; s < per - 1; s++) {
                        snprintf(snames[s][n], sizeof(snames[s][n]), "%s%s",
                                 w->vars[i].parts[j].name, suffix[s]);
                        names[per * n + 1 + s] = snames[s][n];
                    }
                    n++;
                }
        rq.names = (char **)names;
        rq.n_names = (size_t)(per * n);
        if ((st = rpc(w, k, "Pull", &rq, &r, &t)) != FLOE_OK)
            return st;
        if (r->n_tensors != (size_t)(per * n))
            st = floe_set_error(FLOE_DATA_LOSS, "Pull: server %d sent %zu tensors for %d names",
                                k, r->n_tensors, per * n);
        for (int i = 0, m = 0; i < w->nvars && st == FLOE_OK; i++) {
            wvar *v = &w->vars[i];
            for (int j = 0; j < v->nparts && st == FLOE_OK; j++) {
                part *p = &v->parts[j];
                if (p->ps != k)
                    continue;
                size_t want = (size_t)(p->rows * v->row_size) * sizeof(float);
                for (int s = 0; s < per && st == FLOE_OK; s++, m++) {
                    float *dst = s == 0 ? v->value : v->slot[s - 1];
                    if (strcmp(t[m].name, names[m]) != 0 || t[m].dtype != FLOE_DTYPE_F32 ||
                        t[m].nbytes != want)
                        st = floe_set_error(FLOE_DATA_LOSS, "Pull: server %d sent '%s' unlike "
                                            "'%s'", k, t[m].name, names[m]);
                    else
                        memcpy(dst + p->row0 * v->row_size, t[m].data, want);
                }
            }
        }
        steps[k] = r->step;
        if (r->step > w->last_step)
            w->last_step = r->step;
        free(t);
        floe__dist_reply_free(r);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status pull_all(worker *w, int64_t *steps) {
    return pull_parts(w, steps, false);
}

/* ---- The training loop ------------------------------------------------------------------ */

static bool retryable_connect(floe_status st) {
    return st == FLOE_UNAVAILABLE || st == FLOE_DEADLINE_EXCEEDED;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Feeds the current values; runs @plan; @fetched come back in host memory. */
static floe_status run_plan(worker *w, floe_plan *plan, floe_tensor *x, floe_tensor *y,
                            int nfetch, floe_tensor **fetched) {
    floe_tensor *feeds[2 + 2 * MAX_LAYERS];
    floe_status st = FLOE_OK;
    int n = 0;

    feeds[n++] = x;
    if (y)
        feeds[n++] = y;
    for (int i = 0; i < w->nvars && st == FLOE_OK; i++) {
        wvar *v = &w->vars[i];
        st = floe_tensor_wrap(FLOE_DTYPE_F32, v->dims, v->ndim, v->value,
                              (size_t)v->count * sizeof(float), NULL, NULL, &feeds[n]);
        if (st == FLOE_OK)
            n++;
    }
    if (st == FLOE_OK)
        st = floe_plan_run(plan, feeds, fetched);
    for (int i = y ? 2 : 1; i < n; i++)
        floe_tensor_unref(feeds[i]);
    /* The worker reads what it fetched on the host; on a GPU the plan leaves it there
     * (floe_tensor_data() NULL), and only then is a copy made: gradients every step. */
    for (int i = 0; st == FLOE_OK && i < nfetch; i++) {
        floe_tensor *h = NULL;
        if (floe_tensor_data(fetched[i]) != NULL || floe_tensor_nbytes(fetched[i]) == 0)
            continue;
        if ((st = floe_tensor_to_host(fetched[i], &h)) == FLOE_OK) {
            floe_tensor_unref(fetched[i]);
            fetched[i] = h;
        }
    }
    if (st != FLOE_OK && fetched[0] != NULL)
        for (int i = 0; i < nfetch; i++) {
            floe_tensor_unref(fetched[i]);
            fetched[i] = NULL;
        }
    return st;
}

static floe_status prepare(worker *w) {
    floe_output feeds[2 + 2 * MAX_LAYERS], fetch[1 + 2 * MAX_LAYERS];
    int n = 0;
    floe_status st;

    feeds[n++] = floe_out(w->x, 0);
    feeds[n++] = floe_out(w->y, 0);
    for (int i = 0; i < w->nvars; i++)
        feeds[n++] = floe_out(w->vars[i].ph, 0);
    fetch[0] = w->loss;
    for (int i = 0; i < w->nvars; i++)
        fetch[1 + i] = w->vars[i].grad;
    st = floe_session_prepare(w->s, feeds, n, fetch, 1 + w->nvars, NULL, 0, &w->train_plan);
    if (st != FLOE_OK)
        return st;
    /* Evaluation: x and the parameters, no labels. */
    feeds[1] = feeds[0];
    return floe_session_prepare(w->s, feeds + 1, n - 1, &w->logits, 1, NULL, 0, &w->eval_plan);
}

static floe_status evaluate(worker *w, const floe_dataset *test, double *acc) {
    int64_t n = floe_dataset_size(test), correct = 0, bs = 500;
    floe_status st = FLOE_OK;

    for (int64_t first = 0; first < n && st == FLOE_OK; first += bs) {
        int64_t cnt = n - first < bs ? n - first : bs, xd[2] = {cnt, w->n_in};
        floe_tensor *x = NULL, *logits = NULL;
        if ((st = floe_tensor_new(FLOE_DTYPE_F32, xd, 2, &x)) == FLOE_OK &&
            (st = floe_dataset_batch(test, NULL, first, cnt, x, NULL)) == FLOE_OK &&
            (st = run_plan(w, w->eval_plan, x, NULL, 1, &logits)) == FLOE_OK) {
            const float *l = floe_tensor_data(logits);
            for (int64_t i = 0; i < cnt; i++) {
                int64_t best = 0;
                for (int64_t c = 1; c < w->classes; c++)
                    if (l[i * w->classes + c] > l[i * w->classes + best])
                        best = c;
                correct += best == floe_dataset_label(test, first + i);
            }
        }
        floe_tensor_unref(x);
        floe_tensor_unref(logits);
    }
    *acc = n > 0 ? (double)correct / (double)n : -1;
    return st;
}

/* Connects to every server, retrying while they come up (bounded by @give_up_s). */
static floe_status connect_all(worker *w, const floe_dist_options *dopts, double give_up_s) {
    floe_transport *t;
    floe_status st = floe__dist_transport(w->ctx, dopts, &t);
    double start = now_s();

    for (int k = 0; k < w->nps && st == FLOE_OK; k++) {
        const char *addr = floe_cluster_task(w->c, "ps", k);
        while ((st = floe_transport_connect(t, addr, w->timeout_ms / 4 + 1, &w->conn[k])) !=
                   FLOE_OK &&
               retryable_connect(st) && now_s() - start < give_up_s)
            sleep_ms(100);
    }
    return st;
}

/* One step: pull, gradients, push.  *@done when the job reached its steps. */
static floe_status step_once(worker *w, const floe_dataset *train, const int64_t *shard,
                             int64_t nshard, int64_t *cursor, floe_tensor *x, floe_tensor *y,
                             double *loss, bool *done, int64_t *gstep) {
    int64_t steps[64], bs = w->o.batch_size, idx[4096];
    floe_tensor *out[1 + 2 * MAX_LAYERS] = {0};
    const float *grads[2 * MAX_LAYERS];
    floe_status st;

    if ((st = pull_all(w, steps)) != FLOE_OK)
        return st;
    *gstep = steps[0];
    if (steps[0] >= w->o.steps) {
        *done = true;
        return FLOE_OK;
    }
    for (int64_t i = 0; i < bs; i++)
        idx[i] = shard[(*cursor + i) % nshard];
    if ((st = floe_dataset_batch(train, idx, 0, bs, x, y)) != FLOE_OK ||
        (st = run_plan(w, w->train_plan, x, y, 1 + w->nvars, out)) != FLOE_OK)
        return st;
    *loss = *(const float *)floe_tensor_data(out[0]);
    for (int i = 0; i < w->nvars; i++)
        grads[i] = floe_tensor_data(out[1 + i]);
    for (int k = 0; k < w->nps && st == FLOE_OK; k++)
        st = send_parts(w, k, "Push", grads, steps[k], NULL);
    for (int i = 0; i < 1 + w->nvars; i++)
        floe_tensor_unref(out[i]);
    if (st == FLOE_OK)
        *cursor += bs;
    return st;
}

static bool retryable(floe_status st) {
    return st == FLOE_UNAVAILABLE || st == FLOE_DEADLINE_EXCEEDED || st == FLOE_ABORTED ||
           st == FLOE_CANCELLED;
}

/* ---- Checkpoints (chief) ------------------------------------------------------------------ */

static floe_status ckpt_fail(floe_status st, const char *what) {
    const char *m = floe_keras_last_error();
    return floe_set_error(st, "checkpoint %s: %s", what, m[0] ? m : floe_last_error());
}

/* The checkpoint graph: a resource variable per model variable and, when the servers
 * keep Adam slots, per slot ("<var>/Adam", "<var>/Adam_1"), each assigned from a fed
 * value ("<var>/value").  Built at the first save, once w->slots is known. */
static floe_status ckpt_build(worker *w) {
    static const char *const suffix[3] = {"", "/Adam", "/Adam_1"};
    floe_status st;
    char vname[96], name[112];

    if ((st = floe_graph_new(w->ctx, &w->cg)) != FLOE_OK)
        return st;
    for (int s = 0; s < (w->slots == 1 ? 3 : 1); s++)
        for (int i = 0; i < w->nvars; i++) {
            wvar *v = &w->vars[i];
            int c = w->ncvars;
            snprintf(vname, sizeof(vname), "%s%s", v->name, suffix[s]);
            snprintf(name, sizeof(name), "%s/value", vname);
            if ((st = feed_node(w->cg, name, FLOE_DTYPE_F32, v->dims, v->ndim,
                                &w->cph[c])) != FLOE_OK ||
                (st = floe_train_var_new_from(w->cg, vname, FLOE_DTYPE_F32, v->dims, v->ndim,
                                              floe_out(w->cph[c], 0), &w->cvars[c])) != FLOE_OK)
                return ckpt_fail(st, "graph");
            w->ncvars++;
        }
    return floe_session_new(w->cg, NULL, &w->cs);
}

/* Assigns the current values (and slots) to the checkpoint graph's variables. */
static floe_status ckpt_assign(worker *w) {
    floe_output feeds[3 * 2 * MAX_LAYERS];
    floe_tensor *vals[3 * 2 * MAX_LAYERS];
    floe_node *targets[3 * 2 * MAX_LAYERS];
    floe_status st = FLOE_OK;
    int n = 0;

    for (int c = 0; c < w->ncvars && st == FLOE_OK; c++) {
        wvar *v = &w->vars[c % w->nvars];
        const float *src = c < w->nvars ? v->value : v->slot[c / w->nvars - 1];
        feeds[c] = floe_out(w->cph[c], 0);
        targets[c] = w->cvars[c].init;
        st = floe_tensor_wrap(FLOE_DTYPE_F32, v->dims, v->ndim, (void *)src,
                              (size_t)v->count * sizeof(float), NULL, NULL, &vals[c]);
        n += st == FLOE_OK;
    }
    if (st == FLOE_OK)
        st = floe_session_run(w->cs, feeds, vals, n, NULL, 0, targets, n, NULL);
    for (int i = 0; i < n; i++)
        floe_tensor_unref(vals[i]);
    return st;
}

/* Pulls the values (and Adam slots) afresh, one consistent state per server, and saves
 * them as the checkpoint of server 0's step. */
static floe_status ckpt_save(worker *w) {
    int64_t steps[64];
    floe_status st;

    if (w->slots != 0) {
        st = pull_parts(w, steps, true);
        if (st == FLOE_INVALID_ARGUMENT && w->slots == -1 &&
            strstr(floe_last_error(), "keeps no slots") != NULL)
            w->slots = 0;   /* the servers keep no slots (sgd) */
        else if (st != FLOE_OK)
            return st;
        else
            w->slots = 1;
    }
    if (w->slots == 0 && (st = pull_all(w, steps)) != FLOE_OK)
        return st;
    if (w->slots == 1)
        w->send_slots = true;   /* a server restarted alone gets these back */
    if (w->cs == NULL && (st = ckpt_build(w)) != FLOE_OK)
        return st;
    if ((st = ckpt_assign(w)) == FLOE_OK &&
        (st = floe_checkpoint_save(w->cg, w->cs, w->o.checkpoint_dir, steps[0], 3, NULL, 0)) !=
            FLOE_OK)
        return ckpt_fail(st, "save");
    if (st == FLOE_OK)
        w->last_ckpt = steps[0];
    return st;
}

/* Reads tensor @name of the checkpoint into @dst (@v's shape, f32).  FLOE_NOT_FOUND
 * when absent (left unchanged). */
static floe_status ckpt_read(worker *w, floe_checkpoint *c, const char *path, const char *name,
                             const wvar *v, float *dst) {
    int i = floe_checkpoint_find(c, name);
    const char *nm;
    floe_dtype dt;
    floe_shape shape;
    floe_tensor *t = NULL;
    floe_status st;

    (void)w;
    if (i < 0)
        return FLOE_NOT_FOUND;
    if ((st = floe_checkpoint_tensor_info(c, i, &nm, &dt, &shape)) != FLOE_OK)
        return ckpt_fail(st, "restore");
    if (dt != FLOE_DTYPE_F32 || shape.ndim != v->ndim ||
        memcmp(shape.dims, v->dims, sizeof(int64_t) * (size_t)v->ndim) != 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "checkpoint %s: tensor '%s' has dtype %s "
                              "or a shape unlike the model's f32 variable", path, name,
                              floe_dtype_name(dt));
    if ((st = floe_checkpoint_read_tensor(c, i, &t)) != FLOE_OK)
        return ckpt_fail(st, "restore");
    memcpy(dst, floe_tensor_data(t), (size_t)v->count * sizeof(float));
    floe_tensor_unref(t);
    return FLOE_OK;
}

/* Loads the newest checkpoint, if any, into the values, the slots (when it holds them:
 * a checkpoint without slots, as written before they were kept or under sgd, leaves them
 * to start from zero) and w->last_step. */
static floe_status ckpt_restore(worker *w) {
    static const char *const suffix[2] = {"/Adam", "/Adam_1"};
    floe_checkpoint *c = NULL;
    char path[1024], name[112];
    const char *base;
    floe_status st;
    bool any_slot = false;

    st = floe_checkpoint_latest(w->ctx, w->o.checkpoint_dir, path, sizeof(path));
    if (st == FLOE_NOT_FOUND)
        return FLOE_OK;
    if (st != FLOE_OK || (st = floe_checkpoint_open(w->ctx, path, &c)) != FLOE_OK)
        return ckpt_fail(st, "restore");
    for (int i = 0; i < w->nvars && st == FLOE_OK; i++) {
        wvar *v = &w->vars[i];
        if ((st = ckpt_read(w, c, path, v->name, v, v->value)) == FLOE_NOT_FOUND)
            st = floe_set_error(FLOE_NOT_FOUND, "checkpoint %s: no variable '%s' (a checkpoint "
                                "of another model?)", path, v->name);
        for (int s = 0; s < 2 && st == FLOE_OK; s++) {
            if (v->slot[s] == NULL &&
                (v->slot[s] = calloc((size_t)v->count, sizeof(float))) == NULL) {
                st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory for slots");
                break;
            }
            snprintf(name, sizeof(name), "%s%s", v->name, suffix[s]);
            if ((st = ckpt_read(w, c, path, name, v, v->slot[s])) == FLOE_OK)
                any_slot = true;
            else if (st == FLOE_NOT_FOUND)
                st = FLOE_OK;   /* starts from zero */
        }
    }
    floe_checkpoint_close(c);
    if (st != FLOE_OK)
        return st;
    w->send_slots = any_slot;
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (sscanf(base, "ckpt-%lld", (long long *)&w->last_step) != 1)
        w->last_step = 0;
    w->last_ckpt = w->last_step;
    return FLOE_OK;
}

/* Shuffled indices of this worker's examples (i % workers == task). */
static int64_t *make_shard(const worker *w, const floe_dataset *train, int64_t *n) {
    int64_t total = floe_dataset_size(train), m = 0;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(total / w->nworkers + 1));
    uint64_t rng = w->o.seed * 31 + (uint64_t)w->o.task + 1;
    if (idx == NULL)
        return NULL;
    for (int64_t i = w->o.task; i < total; i += w->nworkers)
        idx[m++] = i;
    for (int64_t i = m - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(&rng) % (uint64_t)(i + 1)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    *n = m;
    return idx;
}

/* Chief: sends the initial values to every server (kept when it has some already). */
static floe_status init_servers(worker *w) {
    const float *vals[2 * MAX_LAYERS];
    floe_status st = FLOE_OK;
    for (int i = 0; i < w->nvars; i++)
        vals[i] = w->vars[i].value;
    for (int k = 0; k < w->nps && st == FLOE_OK; k++)
        st = send_parts(w, k, "Init", vals, w->last_step, NULL);
    return st;
}

static floe_status train_loop(worker *w, const floe_dataset *train, floe_dist_result *res) {
    int64_t nshard = 0, cursor = 0, bs = w->o.batch_size, xd[2] = {bs, w->n_in}, yd[1] = {bs};
    int64_t *shard = make_shard(w, train, &nshard), gstep = 0, last_report = -1;
    floe_tensor *x = NULL, *y = NULL;
    double give_up = 6.0 * (double)w->timeout_ms / 1000.0, progress = now_s(), loss = 0;
    double loss_sum = 0;
    int loss_n = 0;
    bool done = false, need_init = w->o.task == 0;
    floe_status st;
    FILE *out = w->o.out ? w->o.out : stderr;

    if (shard == NULL || nshard == 0) {
        free(shard);
        return floe_set_error(nshard ? FLOE_RESOURCE_EXHAUSTED : FLOE_INVALID_ARGUMENT,
                              "worker %d: no training examples in its shard", w->o.task);
    }
    if ((st = floe_tensor_new(FLOE_DTYPE_F32, xd, 2, &x)) != FLOE_OK ||
        (st = floe_tensor_new(FLOE_DTYPE_I32, yd, 1, &y)) != FLOE_OK)
        goto out;
    while (!done) {
        if (need_init && (st = init_servers(w)) != FLOE_OK)
            goto check;
        need_init = false;
        st = step_once(w, train, shard, nshard, &cursor, x, y, &loss, &done, &gstep);
        if (st == FLOE_OK && !done) {
            res->steps++;
            progress = now_s();
            loss_sum += loss, loss_n++;
            if (loss_n == 100) {
                res->loss = loss_sum / loss_n;
                loss_sum = 0, loss_n = 0;
            }
            if (w->o.task == 0 && w->o.checkpoint_dir != NULL &&
                gstep + 1 - w->last_ckpt >= w->o.checkpoint_every &&
                (st = ckpt_save(w)) != FLOE_OK) {
                if (!retryable(st))
                    goto out;
                goto check;   /* a server went away: saved after the next step */
            }
            if (w->o.on_step != NULL &&
                (st = w->o.on_step(w->o.on_step_arg, gstep + 1, loss)) != FLOE_OK)
                goto out;
            if (w->o.verbose && gstep / 100 != last_report) {
                last_report = gstep / 100;
                fprintf(out, "worker %d: step %lld loss %.4f\n", w->o.task, (long long)gstep,
                        loss);
            }
        }
    check:
        if (st != FLOE_OK) {
            need_init = w->o.task == 0;   /* a restarted server comes back empty */
            if (!retryable(st) || now_s() - progress > give_up)
                goto out;
            res->retries++;
            sleep_ms(st == FLOE_UNAVAILABLE ? 200 : 20);
        }
    }
    if (loss_n > 0 && res->loss == 0)
        res->loss = loss_sum / loss_n;
    res->global_step = gstep;
    st = FLOE_OK;
out:
    floe_tensor_unref(x);
    floe_tensor_unref(y);
    free(shard);
    return st;
}

void floe_dist_train_options_init(floe_dist_train_options *o) {
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->batch_size = 64;
    o->steps = 1000;
    o->seed = 42;
    o->checkpoint_every = 100;
}

static floe_status check_args(worker *w, const floe_dataset *train) {
    int64_t dims[FLOE_MAX_DIMS];
    int nd = floe_dataset_x_shape(train, dims);
    w->n_in = 1;
    for (int i = 0; i < nd; i++)
        w->n_in *= dims[i];
    w->classes = 0;
    for (int64_t i = 0; i < floe_dataset_size(train); i++)
        if (floe_dataset_label(train, i) + 1 > w->classes)
            w->classes = floe_dataset_label(train, i) + 1;
    if (nd < 0 || w->classes < 2 || floe_dataset_y_dtype(train) != FLOE_DTYPE_I32)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: the training set needs "
                              "features and i32 class ids of at least 2 classes");
    if (w->nps < 1 || w->nps > 64 || w->nworkers < 1 || w->o.task < 0 ||
        w->o.task >= w->nworkers)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: task %d is not a "
                              "worker of the cluster (%d workers, %d ps)", w->o.task,
                              w->nworkers, w->nps);
    if (w->o.batch_size < 1 || w->o.batch_size > 4096 || w->o.steps < 0 ||
        w->o.checkpoint_every < 1 ||
        (w->o.hidden && (w->o.num_hidden < 0 || w->o.num_hidden > MAX_LAYERS - 1)))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: batch_size 1..4096, "
                              "steps >= 0, up to %d hidden layers", MAX_LAYERS - 1);
    for (int i = 0; w->o.hidden && i < w->o.num_hidden; i++)
        if (w->o.hidden[i] < 1 || w->o.hidden[i] > 65536)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: hidden width %lld",
                                  (long long)w->o.hidden[i]);
    return FLOE_OK;
}

floe_status floe_dist_train(floe_context *ctx, const floe_cluster *c,
                            const floe_dist_options *dopts, const floe_dist_train_options *o,
                            const floe_dataset *train, const floe_dataset *test,
                            floe_dist_result *res) {
    worker *w;
    floe_status st;
    double t0 = now_s();

    if (res == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: NULL result");
    memset(res, 0, sizeof(*res));
    res->accuracy = -1;
    if (ctx == NULL || c == NULL || o == NULL || train == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_dist_train: NULL argument");
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    w->ctx = ctx;
    w->c = c;
    floe_dist_train_options_init(&w->o);
    memcpy(&w->o, o, o->struct_size < sizeof(w->o) ? o->struct_size : sizeof(w->o));
    w->timeout_ms = dopts && dopts->rpc_timeout_ms > 0 ? dopts->rpc_timeout_ms : 10000;
    w->nps = floe_cluster_num_tasks(c, "ps");
    w->nworkers = floe_cluster_num_tasks(c, "worker");
    if ((st = check_args(w, train)) != FLOE_OK || (st = build_graph(w)) != FLOE_OK ||
        (st = prepare(w)) != FLOE_OK)
        goto out;
    place(w);
    w->slots = -1;
    if (w->o.task == 0 && w->o.checkpoint_dir != NULL && (st = ckpt_restore(w)) != FLOE_OK)
        goto out;
    if ((st = connect_all(w, dopts, 6.0 * (double)w->timeout_ms / 1000.0)) != FLOE_OK ||
        (st = train_loop(w, train, res)) != FLOE_OK)
        goto out;
    if (w->o.task == 0 && (test != NULL || w->o.checkpoint_dir != NULL)) {
        int64_t steps[64];
        if (w->o.checkpoint_dir != NULL)
            st = ckpt_save(w);
        else
            st = pull_all(w, steps);
        if (st == FLOE_OK && test != NULL)
            st = evaluate(w, test, &res->accuracy);
    }
out:
    res->seconds = now_s() - t0;
    for (int k = 0; k < w->nps && k < 64; k++)
        floe_transport_disconnect(w->conn[k]);
    for (int i = 0; i < w->nvars; i++) {
        free(w->vars[i].value);
        free(w->vars[i].slot[0]);
        free(w->vars[i].slot[1]);
    }
    floe_session_free(w->s);
    floe_graph_free(w->g);
    floe_session_free(w->cs);
    floe_graph_free(w->cg);
    free(w);
    return st;
}
