/*
 * session.c - sessions and the preparation of plans.
 *
 * floe_session_prepare() turns a (feeds, fetches, targets) signature into a plan, once
 * per signature: it prunes the graph to what the fetches and targets need (a fed output
 * cuts the walk, so a node whose needed outputs are all fed does not run), orders the
 * rest topologically (Kahn's algorithm, which also rejects cycles), places the nodes
 * and creates their kernels (placement.c), then lays out the flat arrays the executor
 * walks (executor.c): one run slot per feed and per node output, each input's slot
 * and memory, consumer counts, last uses, successor lists.
 *
 * Sections: arenas; options and lifetime; plan lookup; pruning and ordering; laying
 * out a plan; public entry points.
 */
#include "exec-impl.h"

#include <stdio.h>
#include <string.h>

/* ---- Arenas -------------------------------------------------------------------------- */

struct floe__arena_chunk {
    floe__arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *floe__arena_alloc(floe__arena *a, size_t n) {
    floe__arena_chunk *c = a->head;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = floe__malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void floe__arena_free(floe__arena *a) {
    while (a->head != NULL) {
        floe__arena_chunk *next = a->head->next;
        floe__free(a->head);
        a->head = next;
    }
}

/* ---- Options and lifetime ------------------------------------------------------------ */

void floe_session_options_init(floe_session_options *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->struct_size = sizeof(*opts);
    opts->inter_op_parallelism = 1;
}

floe_status floe_session_new(floe_graph *g, const floe_session_options *opts,
                             floe_session **out) {
    floe_session *s;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_session_new: out is NULL");
    *out = NULL;
    if (g == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_session_new: graph is NULL");
    if (opts != NULL && opts->struct_size < sizeof(size_t))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_session_new: options not initialised (struct_size %zu)",
                          opts->struct_size);
    s = floe__calloc(1, sizeof(*s));
    if (s == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_session_new: out of memory");
    s->graph = g;
    s->ctx = g->ctx;
    atomic_init(&s->plans, NULL);
    floe_session_options_init(&s->opts);
    if (opts != NULL) {
        size_t n = opts->struct_size < sizeof(s->opts) ? opts->struct_size : sizeof(s->opts);
        memcpy(&s->opts, opts, n);
        s->opts.struct_size = sizeof(s->opts);
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        floe__free(s);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_session_new: cannot create a mutex");
    }
    st = floe__resource_mgr_init(&s->resources);
    if (st != FLOE_OK) {
        pthread_mutex_destroy(&s->lock);
        floe__free(s);
        return st;
    }
    *out = s;
    return FLOE_OK;
}

static void plan_free(floe_plan *p) {
    if (p == NULL)
        return;
    floe__plan_free_runs(p);
    floe__arena_free(&p->arena);
    floe__free(p);
}

void floe_session_free(floe_session *s) {
    if (s == NULL)
        return;
    for (floe_plan *p = atomic_load(&s->plans), *next; p != NULL; p = next) {
        next = p->next;
        plan_free(p);
    }
    floe__kinst_destroy_all(s);
    floe__free(s->kinst);
    floe__resource_mgr_deinit(&s->resources);
    pthread_mutex_destroy(&s->lock);
    floe__free(s);
}

/* ---- Plan lookup -------------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t signature_hash(const floe_output *feeds, int nfeeds, const floe_output *fetches,
                               int nfetches, floe_node *const *targets, int ntargets) {
    uint64_t h = mix(mix(mix(0, (uint64_t)nfeeds), (uint64_t)nfetches), (uint64_t)ntargets);
    for (int i = 0; i < nfeeds; i++)
        h = mix(mix(h, (uint64_t)feeds[i].node->id), (uint64_t)feeds[i].index);
    for (int i = 0; i < nfetches; i++)
        h = mix(mix(h, (uint64_t)fetches[i].node->id), (uint64_t)fetches[i].index);
    for (int i = 0; i < ntargets; i++)
        h = mix(h, (uint64_t)targets[i]->id);
    return h;
}

static bool outputs_equal(const floe_output *a, const floe_output *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i].node != b[i].node || a[i].index != b[i].index)
            return false;
    return true;
}

/* Lock-free: plans are pushed whole and never unlinked while the session lives. */
static floe_plan *find_plan(floe_session *s, uint64_t h, const floe_output *feeds, int nfeeds,
                            const floe_output *fetches, int nfetches, floe_node *const *targets,
                            int ntargets) {
    for (floe_plan *p = atomic_load_explicit(&s->plans, memory_order_acquire); p != NULL;
         p = p->next) {
        if (p->hash != h || p->nfeeds != nfeeds || p->nfetches != nfetches ||
            p->ntargets != ntargets)
            continue;
        if (!outputs_equal(p->feeds, feeds, nfeeds) || !outputs_equal(p->fetches, fetches, nfetches))
            continue;
        if (ntargets > 0 && memcmp(p->targets, targets, (size_t)ntargets * sizeof(*targets)) != 0)
            continue;
        return p;
    }
    return NULL;
}

/* ---- Pruning and ordering ------------------------------------------------------------ */

/* Scratch state of one prepare, indexed by graph node id or global output index. */
typedef struct prep {
    floe_session *s;
    const floe_graph *g;
    int *gout_base;              /* [nnodes + 1]: first global output index of each node */
    int *feed_of;                /* [global outputs]: feed index or -1 */
    bool *runs;                  /* [nnodes] */
    int *order;                  /* plan nodes, topological */
    int norder;
    int *ex_of;                  /* [nnodes]: exec index or -1 */
} prep;

static void prep_free(prep *pp) {
    floe__free(pp->gout_base);
    floe__free(pp->feed_of);
    floe__free(pp->runs);
    floe__free(pp->order);
    floe__free(pp->ex_of);
}

static floe_status prep_init(prep *pp, floe_session *s) {
    const floe_graph *g = s->graph;
    int total = 0;

    memset(pp, 0, sizeof(*pp));
    pp->s = s;
    pp->g = g;
    pp->gout_base = floe__calloc((size_t)g->nnodes + 1, sizeof(int));
    pp->runs = floe__calloc((size_t)g->nnodes + 1, sizeof(bool));
    pp->order = floe__calloc((size_t)g->nnodes + 1, sizeof(int));
    pp->ex_of = floe__calloc((size_t)g->nnodes + 1, sizeof(int));
    if (pp->gout_base == NULL || pp->runs == NULL || pp->order == NULL || pp->ex_of == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        pp->gout_base[i] = total;
        total += g->nodes[i]->noutputs;
        pp->ex_of[i] = -1;
    }
    pp->gout_base[g->nnodes] = total;
    pp->feed_of = floe__calloc((size_t)total + 1, sizeof(int));
    if (pp->feed_of == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int i = 0; i < total; i++)
        pp->feed_of[i] = -1;
    return FLOE_OK;
}

static int fed(const prep *pp, const floe_output *o) {
    return pp->feed_of[pp->gout_base[o->node->id] + o->index];
}

/* Marks what the fetches and targets need; @stack has room for every node. */
static void prune(prep *pp, const floe_output *fetches, int nfetches, floe_node *const *targets,
                  int ntargets, int *stack) {
    int top = 0;

#define MARK(id)                                                                           \
    do {                                                                                   \
        int id_ = (id);                                                                    \
        if (!pp->runs[id_]) {                                                              \
            pp->runs[id_] = true;                                                          \
            stack[top++] = id_;                                                            \
        }                                                                                  \
    } while (0)

    for (int i = 0; i < nfetches; i++)
        if (fed(pp, &fetches[i]) < 0)
            MARK(fetches[i].node->id);
    for (int i = 0; i < ntargets; i++)
        MARK(targets[i]->id);
    while (top > 0) {
        const floe_node *n = pp->g->nodes[stack[--top]];
        for (int j = 0; j < n->ninputs; j++)
            if (fed(pp, &n->inputs[j]) < 0)
                MARK(n->inputs[j].node->id);
        for (int j = 0; j < n->ncontrols; j++)
            MARK(n->controls[j]->id);
    }
#undef MARK
}

/* Consumers of every node that runs, as CSR (@edge_start[id] .. [id + 1] index
 * @edges), and the number of producers of each in @indeg. */
static floe_status consumers(prep *pp, int *indeg, int *edge_start, int **edges_out) {
    const floe_graph *g = pp->g;
    int *fill = pp->ex_of;               /* borrowed as a cursor; reset below */
    int *edges;

    *edges_out = NULL;
    for (int i = 0; i < g->nnodes; i++) {
        const floe_node *n = g->nodes[i];
        if (!pp->runs[i])
            continue;
        for (int j = 0; j < n->ninputs; j++)
            if (fed(pp, &n->inputs[j]) < 0) {
                edge_start[n->inputs[j].node->id + 1]++;
                indeg[i]++;
            }
        for (int j = 0; j < n->ncontrols; j++) {
            edge_start[n->controls[j]->id + 1]++;
            indeg[i]++;
        }
    }
    for (int i = 0; i < g->nnodes; i++)
        edge_start[i + 1] += edge_start[i];
    edges = floe__calloc((size_t)edge_start[g->nnodes] + 1, sizeof(int));
    if (edges == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int i = 0; i < g->nnodes; i++)
        fill[i] = edge_start[i];
    for (int i = 0; i < g->nnodes; i++) {
        const floe_node *n = g->nodes[i];
        if (!pp->runs[i])
            continue;
        for (int j = 0; j < n->ninputs; j++)
            if (fed(pp, &n->inputs[j]) < 0)
                edges[fill[n->inputs[j].node->id]++] = i;
        for (int j = 0; j < n->ncontrols; j++)
            edges[fill[n->controls[j]->id]++] = i;
    }
    for (int i = 0; i < g->nnodes; i++)
        fill[i] = -1;
    *edges_out = edges;
    return FLOE_OK;
}

/* Kahn's algorithm over the nodes that run, in id order among the ready ones. */
static floe_status order_nodes(prep *pp) {
    const floe_graph *g = pp->g;
    int *indeg = floe__calloc((size_t)g->nnodes + 1, sizeof(int));
    int *edge_start = floe__calloc((size_t)g->nnodes + 2, sizeof(int));
    int *edges = NULL;
    int head = 0;
    floe_status st;

    if (indeg == NULL || edge_start == NULL)
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    else
        st = consumers(pp, indeg, edge_start, &edges);
    if (st != FLOE_OK)
        goto done;
    pp->norder = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (pp->runs[i] && indeg[i] == 0)
            pp->order[pp->norder++] = i;
    while (head < pp->norder) {
        int x = pp->order[head++];
        for (int e = edge_start[x]; e < edge_start[x + 1]; e++)
            if (--indeg[edges[e]] == 0)
                pp->order[pp->norder++] = edges[e];
    }
    for (int i = 0; i < g->nnodes && st == FLOE_OK; i++)
        if (pp->runs[i] && indeg[i] > 0)
            st = floe__fail(FLOE_INVALID_ARGUMENT, "the graph has a cycle through node '%s' (%s)",
                            g->nodes[i]->name, g->nodes[i]->op->name);
done:
    floe__free(indeg);
    floe__free(edge_start);
    floe__free(edges);
    return st;
}

/* ---- Laying out a plan -------------------------------------------------------------- */

#define ARENA_ARRAY(p, type, n) ((type *)floe__arena_alloc(&(p)->arena, ((size_t)(n) + 1) * sizeof(type)))

/* Marks flattened args named by a kernel's host_memory list in @host (by index). */
static void mark_host_args(const floe__kernel *k, const floe__arg_def *args, int nargs,
                           const int *arg_start, bool *host) {
    for (int h = 0; h < k->nhost_memory; h++)
        for (int a = 0; a < nargs; a++)
            if (strcmp(k->host_memory[h], args[a].name) == 0)
                for (int i = arg_start[a]; i < arg_start[a + 1]; i++)
                    host[i] = true;
}

static floe_status layout_node(floe_plan *p, prep *pp, int k, int *uses, int *last_use) {
    floe__exec_node *en = &p->nodes[k];
    const floe_node *n = pp->g->nodes[pp->order[k]];
    const floe__kinst *ki = &pp->s->kinst[n->id];
    bool *host_in = floe__calloc((size_t)n->ninputs + 1, sizeof(bool));
    bool *host_out = floe__calloc((size_t)n->noutputs + 1, sizeof(bool));

    if (host_in == NULL || host_out == NULL) {
        floe__free(host_in);
        floe__free(host_out);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    en->node = n;
    en->kernel = ki->kernel;
    en->state = ki->state;
    en->device = ki->device;
    en->ninputs = n->ninputs;
    en->noutputs = n->noutputs;
    en->in = ARENA_ARRAY(p, floe__exec_input, n->ninputs);
    en->out_dev = ARENA_ARRAY(p, floe_device *, n->noutputs);
    if (en->in == NULL || en->out_dev == NULL) {
        floe__free(host_in);
        floe__free(host_out);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    mark_host_args(ki->kernel, n->op->inputs, n->op->ninputs, n->in_arg_start, host_in);
    mark_host_args(ki->kernel, n->op->outputs, n->op->noutputs, n->out_arg_start, host_out);
    for (int i = 0; i < n->ninputs; i++) {
        const floe_output *o = &n->inputs[i];
        int f = fed(pp, o);
        int slot = f >= 0 ? f : p->nodes[pp->ex_of[o->node->id]].out_base + o->index;
        bool host = host_in[i] || n->in_dtypes[i] == FLOE_DTYPE_RESOURCE;
        en->in[i].slot = slot;
        en->in[i].need = host ? NULL : ki->device;
        en->in[i].need_host = floe__device_is_host(en->in[i].need);
        uses[slot]++;
        last_use[slot] = k;
    }
    for (int i = 0; i < n->noutputs; i++) {
        bool host = host_out[i] || n->out_dtypes[i] == FLOE_DTYPE_RESOURCE;
        en->out_dev[i] = host ? NULL : ki->device;
    }
    floe__free(host_in);
    floe__free(host_out);
    return FLOE_OK;
}

/* Release lists and forwarding flags, once every use is known. */
static floe_status layout_releases(floe_plan *p, const int *uses, const int *last_use,
                                   const bool *fetched) {
    for (int k = 0; k < p->nnodes; k++) {
        floe__exec_node *en = &p->nodes[k];
        int cap = en->ninputs + en->noutputs, n = 0;

        en->release = ARENA_ARRAY(p, int, cap);
        if (en->release == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        for (int i = 0; i < en->ninputs; i++) {
            int s = en->in[i].slot;
            bool once = true, dup = false;
            for (int j = 0; j < en->ninputs; j++) {
                if (j != i && en->in[j].slot == s)
                    once = false;
                if (j < i && en->in[j].slot == s)
                    dup = true;
            }
            bool last = last_use[s] == k && !fetched[s];
            en->in[i].forward = last && once && s >= p->nfeeds;
            if (last && !dup)
                en->release[n++] = s;
        }
        for (int i = 0; i < en->noutputs; i++)
            if (uses[en->out_base + i] == 0)
                en->release[n++] = en->out_base + i, en->ndead++;
        en->nrelease = n;
    }
    return FLOE_OK;
}

/* Successor lists (distinct), predecessor counts and roots. */
static floe_status layout_edges(floe_plan *p, const prep *pp) {
    int *mark = floe__calloc((size_t)p->nnodes + 1, sizeof(int));
    int *count = floe__calloc((size_t)p->nnodes + 1, sizeof(int));
    floe_status st = FLOE_OK;

    if (mark == NULL || count == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    /* Pass 0 counts the distinct successors of each node, pass 1 fills them. */
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < p->nnodes; k++)
            mark[k] = -1;
        for (int k = 0; k < p->nnodes; k++) {
            const floe_node *n = p->nodes[k].node;
            for (int j = 0; j < n->ninputs + n->ncontrols; j++) {
                const floe_node *pred;
                if (j < n->ninputs) {
                    if (fed(pp, &n->inputs[j]) >= 0)
                        continue;
                    pred = n->inputs[j].node;
                } else {
                    pred = n->controls[j - n->ninputs];
                }
                int pk = pp->ex_of[pred->id];
                if (mark[pk] == k)
                    continue;
                mark[pk] = k;
                if (pass == 0) {
                    count[pk]++;
                    p->pending_init[k]++;
                } else {
                    p->nodes[pk].succ[p->nodes[pk].nsucc++] = k;
                }
            }
        }
        if (pass == 0) {
            for (int k = 0; k < p->nnodes; k++) {
                p->nodes[k].succ = ARENA_ARRAY(p, int, count[k]);
                if (p->nodes[k].succ == NULL) {
                    st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
                    goto done;
                }
            }
        }
    }
    p->roots = ARENA_ARRAY(p, int, p->nnodes);
    if (p->roots == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int k = 0; k < p->nnodes; k++) {
        if (p->pending_init[k] == 0)
            p->roots[p->nroots++] = k;
        if (p->nodes[k].nsucc > 1)
            p->branching = true;
    }
    if (p->nroots > 1)
        p->branching = true;
done:
    floe__free(mark);
    floe__free(count);
    return st;
}

static floe_status copy_signature(floe_plan *p, const floe_output *feeds, int nfeeds,
                                  const floe_output *fetches, int nfetches,
                                  floe_node *const *targets, int ntargets) {
    p->feeds = ARENA_ARRAY(p, floe_output, nfeeds);
    p->fetches = ARENA_ARRAY(p, floe_output, nfetches);
    p->targets = ARENA_ARRAY(p, floe_node *, ntargets);
    p->fetch_slot = ARENA_ARRAY(p, int, nfetches);
    if (p->feeds == NULL || p->fetches == NULL || p->targets == NULL || p->fetch_slot == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    if (nfeeds > 0)
        memcpy(p->feeds, feeds, (size_t)nfeeds * sizeof(*feeds));
    if (nfetches > 0)
        memcpy(p->fetches, fetches, (size_t)nfetches * sizeof(*fetches));
    if (ntargets > 0)
        memcpy(p->targets, targets, (size_t)ntargets * sizeof(*targets));
    p->nfeeds = nfeeds;
    p->nfetches = nfetches;
    p->ntargets = ntargets;
    return FLOE_OK;
}

static floe_status layout_plan(floe_plan *p, prep *pp) {
    int *uses = NULL, *last_use = NULL;
    bool *fetched = NULL;
    floe_status st = FLOE_OK;
    int slot, in_base = 0;

    p->nnodes = pp->norder;
    p->nodes = ARENA_ARRAY(p, floe__exec_node, p->nnodes);
    p->pending_init = ARENA_ARRAY(p, int, p->nnodes);
    if (p->nodes == NULL || p->pending_init == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    slot = p->nfeeds;
    for (int k = 0; k < p->nnodes; k++) {
        const floe_node *n = pp->g->nodes[pp->order[k]];
        pp->ex_of[n->id] = k;
        p->nodes[k].out_base = slot;
        p->nodes[k].in_base = in_base;
        slot += n->noutputs;
        in_base += n->ninputs;
    }
    p->nslots = slot;
    p->total_inputs = in_base;
    p->uses_init = ARENA_ARRAY(p, int, p->nslots);
    uses = p->uses_init;
    last_use = floe__calloc((size_t)p->nslots + 1, sizeof(int));
    fetched = floe__calloc((size_t)p->nslots + 1, sizeof(bool));
    if (uses == NULL || last_use == NULL || fetched == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int s = 0; s < p->nslots; s++)
        last_use[s] = -1;
    for (int k = 0; k < p->nnodes && st == FLOE_OK; k++)
        st = layout_node(p, pp, k, uses, last_use);
    if (st != FLOE_OK)
        goto done;
    for (int i = 0; i < p->nfetches; i++) {
        int f = fed(pp, &p->fetches[i]);
        int s = f >= 0 ? f : p->nodes[pp->ex_of[p->fetches[i].node->id]].out_base +
                                 p->fetches[i].index;
        p->fetch_slot[i] = s;
        fetched[s] = true;
        uses[s]++;
    }
    st = layout_releases(p, uses, last_use, fetched);
    if (st == FLOE_OK)
        st = layout_edges(p, pp);
done:
    floe__free(last_use);
    floe__free(fetched);
    return st;
}

/* Grows the session's kernel instances to the graph's size. */
static floe_status kinst_reserve(floe_session *s) {
    int n = s->graph->nnodes;
    floe__kinst *k;

    if (n <= s->nkinst)
        return FLOE_OK;
    k = floe__realloc(s->kinst, (size_t)n * sizeof(*k));
    if (k == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    memset(k + s->nkinst, 0, (size_t)(n - s->nkinst) * sizeof(*k));
    s->kinst = k;
    s->nkinst = n;
    return FLOE_OK;
}

static void log_placement(const floe_plan *p) {
    const floe_context *ctx = p->session->ctx;
    char line[512];

    for (int k = 0; k < p->nnodes; k++) {
        const floe__exec_node *en = &p->nodes[k];
        snprintf(line, sizeof(line), "node '%s' (%s) -> %s", en->node->name, en->node->op->name,
                 en->device->name);
        /* Asked for explicitly, so emitted whatever the context's log level. */
        if (ctx->opts.log_fn != NULL)
            ctx->opts.log_fn(ctx->opts.log_arg, FLOE_LOG_INFO, line);
        else
            fprintf(stderr, "floe info: %s\n", line);
    }
}

/* Builds the plan of a signature (under s->lock). */
static floe_status plan_build(floe_session *s, uint64_t h, const floe_output *feeds, int nfeeds,
                              const floe_output *fetches, int nfetches, floe_node *const *targets,
                              int ntargets, floe_plan **out) {
    floe_plan *p = NULL;
    prep pp;
    floe_status st;

    *out = NULL;
    st = prep_init(&pp, s);
    if (st == FLOE_OK)
        st = kinst_reserve(s);
    if (st != FLOE_OK)
        goto done;
    for (int i = 0; i < nfeeds; i++) {
        int *f = &pp.feed_of[pp.gout_base[feeds[i].node->id] + feeds[i].index];
        if (*f >= 0) {
            st = floe__fail(FLOE_INVALID_ARGUMENT, "output '%s:%d' is fed twice",
                            feeds[i].node->name, feeds[i].index);
            goto done;
        }
        *f = i;
    }
    prune(&pp, fetches, nfetches, targets, ntargets, pp.order);
    st = order_nodes(&pp);
    if (st == FLOE_OK)
        st = floe__place_nodes(s, pp.order, pp.norder);
    if (st != FLOE_OK)
        goto done;
    p = floe__calloc(1, sizeof(*p));
    if (p == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    p->session = s;
    p->hash = h;
    atomic_init(&p->cached, NULL);
    st = copy_signature(p, feeds, nfeeds, fetches, nfetches, targets, ntargets);
    if (st == FLOE_OK)
        st = layout_plan(p, &pp);
    if (st != FLOE_OK)
        goto done;
    if (s->opts.log_device_placement)
        log_placement(p);
    *out = p;
    p = NULL;
done:
    plan_free(p);
    prep_free(&pp);
    return st;
}

/* ---- Public entry points -------------------------------------------------------------- */

static floe_status check_output(const floe_session *s, const floe_output *o, const char *what,
                                int i) {
    if (o->node == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s %d: node is NULL", what, i);
    if (o->node->graph != s->graph)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s %d: node '%s' belongs to another graph", what,
                          i, o->node->name);
    if (o->index < 0 || o->index >= o->node->noutputs)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s %d: node '%s' (%s) has no output %d", what, i,
                          o->node->name, o->node->op->name, o->index);
    return FLOE_OK;
}

static floe_status check_signature(const floe_session *s, const floe_output *feeds, int nfeeds,
                                   const floe_output *fetches, int nfetches,
                                   floe_node *const *targets, int ntargets) {
    floe_status st = FLOE_OK;

    if (nfeeds < 0 || nfetches < 0 || ntargets < 0 || (nfeeds > 0 && feeds == NULL) ||
        (nfetches > 0 && fetches == NULL) || (ntargets > 0 && targets == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT, "bad feed, fetch or target array");
    for (int i = 0; i < nfeeds && st == FLOE_OK; i++)
        st = check_output(s, &feeds[i], "feed", i);
    for (int i = 0; i < nfetches && st == FLOE_OK; i++)
        st = check_output(s, &fetches[i], "fetch", i);
    for (int i = 0; i < ntargets && st == FLOE_OK; i++) {
        if (targets[i] == NULL)
            st = floe__fail(FLOE_INVALID_ARGUMENT, "target %d is NULL", i);
        else if (targets[i]->graph != s->graph)
            st = floe__fail(FLOE_INVALID_ARGUMENT, "target %d: node '%s' belongs to another graph",
                            i, targets[i]->name);
    }
    return st;
}

floe_status floe_session_prepare(floe_session *s, const floe_output *feeds, int nfeeds,
                                 const floe_output *fetches, int nfetches,
                                 floe_node *const *targets, int ntargets, floe_plan **out) {
    floe_plan *p;
    uint64_t h;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_session_prepare: out is NULL");
    *out = NULL;
    if (s == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_session_prepare: session is NULL");
    st = check_signature(s, feeds, nfeeds, fetches, nfetches, targets, ntargets);
    if (st != FLOE_OK)
        return st;
    h = signature_hash(feeds, nfeeds, fetches, nfetches, targets, ntargets);
    p = find_plan(s, h, feeds, nfeeds, fetches, nfetches, targets, ntargets);
    if (p != NULL) {
        *out = p;
        return FLOE_OK;
    }
    pthread_mutex_lock(&s->lock);
    p = find_plan(s, h, feeds, nfeeds, fetches, nfetches, targets, ntargets);
    if (p == NULL) {
        st = plan_build(s, h, feeds, nfeeds, fetches, nfetches, targets, ntargets, &p);
        if (st == FLOE_OK) {
            p->next = atomic_load_explicit(&s->plans, memory_order_relaxed);
            atomic_store_explicit(&s->plans, p, memory_order_release);
        }
    }
    pthread_mutex_unlock(&s->lock);
    *out = p;
    return st;
}

floe_status floe_session_run(floe_session *s, const floe_output *feeds,
                             floe_tensor *const *feed_values, int nfeeds,
                             const floe_output *fetches, int nfetches, floe_node *const *targets,
                             int ntargets, floe_tensor **fetch_values) {
    floe_plan *p;
    floe_status st;

    if (fetch_values != NULL)
        for (int i = 0; i < nfetches; i++)
            fetch_values[i] = NULL;
    if (s == NULL || (nfetches > 0 && fetch_values == NULL) || (nfeeds > 0 && feed_values == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_session_run: NULL argument");
    st = floe_session_prepare(s, feeds, nfeeds, fetches, nfetches, targets, ntargets, &p);
    if (st != FLOE_OK)
        return st;
    return floe__plan_execute(p, feed_values, fetch_values);
}

floe_status floe_plan_run(floe_plan *p, floe_tensor *const *feed_values,
                          floe_tensor **fetch_values) {
    if (p == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_plan_run: plan is NULL");
    if (fetch_values != NULL)
        for (int i = 0; i < p->nfetches; i++)
            fetch_values[i] = NULL;
    if ((p->nfetches > 0 && fetch_values == NULL) || (p->nfeeds > 0 && feed_values == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_plan_run: NULL feed or fetch array");
    return floe__plan_execute(p, feed_values, fetch_values);
}

int floe_plan_num_nodes(const floe_plan *p) {
    return p != NULL ? p->nnodes : 0;
}

const char *floe_plan_node_name(const floe_plan *p, int i) {
    if (p == NULL || i < 0 || i >= p->nnodes)
        return NULL;
    return p->nodes[i].node->name;
}

const char *floe_plan_node_device(const floe_plan *p, int i) {
    if (p == NULL || i < 0 || i >= p->nnodes)
        return NULL;
    return p->nodes[i].device->name;
}
