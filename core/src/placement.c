/*
 * placement.c - choosing a device and a kernel for each node, once per session.
 *
 * A node goes to the highest-priority registered device (ties: registration order)
 * that matches its device constraint and has a kernel for it (the registry picks the
 * kernel from the node's type attrs).  Nodes joined by RESOURCE edges (a VarHandleOp
 * and the nodes reading or updating its variable, across the whole graph) form a
 * colocation group and go to one device that suits every member, so a variable is
 * never split across devices.  A constraint that names no existing device, or devices
 * without a kernel for the node, is an error naming the node.
 *
 * The choice is recorded in the session's kernel instances (floe__kinst), where the
 * kernel's create() also runs, once per node; every plan of the session reuses them.
 */
#include "exec-impl.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Devices by preference: priority descending, registration order among equals. */
static floe_device **sorted_devices(const floe_context *ctx, int *count) {
    int n = ctx->reg.ndevices;
    floe_device **d = floe__calloc((size_t)n + 1, sizeof(*d));

    *count = 0;
    if (d == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        int j = i;
        floe_device *dev = ctx->reg.devices[i];
        while (j > 0 && d[j - 1]->priority < dev->priority) {
            d[j] = d[j - 1];
            j--;
        }
        d[j] = dev;
    }
    *count = n;
    return d;
}

static bool spec_given(const floe__device_spec *sp) {
    return sp->job[0] != '\0' || sp->replica >= 0 || sp->task >= 0 || sp->type[0] != '\0' ||
           sp->index >= 0;
}

/* A local session owns /job:localhost/replica:0/task:0. */
static bool spec_matches(const floe__device_spec *sp, const floe_device *d) {
    if (sp->job[0] != '\0' && strcasecmp(sp->job, "localhost") != 0)
        return false;
    if (sp->replica > 0 || sp->task > 0)
        return false;
    if (sp->type[0] != '\0' && strcasecmp(sp->type, d->type) != 0)
        return false;
    if (sp->index >= 0 && sp->index != d->index)
        return false;
    return true;
}

static const floe__kernel *kernel_on(const floe_context *ctx, const floe_node *n,
                                     const floe_device *d) {
    return floe__registry_find_kernel(ctx, n->op, d->type, &n->attrs);
}

/* "CPU, GPU" of the op's kernels, then the node's type attrs ("; node has T=f32"). */
static void describe_kernels(const floe_node *n, char *buf, size_t len) {
    size_t off = 0;
    bool first = true;

    buf[0] = '\0';
    for (int k = 0; k < n->op->nkernels && off < len; k++) {
        const char *t = n->op->kernels[k]->device_type;
        bool seen = false;
        for (int j = 0; j < k; j++)
            seen = seen || strcmp(n->op->kernels[j]->device_type, t) == 0;
        if (!seen)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off > 0 ? ", " : "", t);
    }
    if (off == 0)
        off += (size_t)snprintf(buf, len, "none");
    for (int i = 0; i < n->attrs.n && off < len; i++) {
        const floe__attr_entry *e = &n->attrs.entries[i];
        if (e->value.type != FLOE_ATTR_TYPE)
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", first ? "; node has " : ", ",
                                e->name, floe_dtype_name(e->value.u.type));
        first = false;
    }
}

/* ---- Colocation groups (union-find over RESOURCE edges) ----------------------------- */

typedef struct groups {
    int *parent;                 /* NULL: no RESOURCE edge in the graph */
    int *size;                   /* members, by root */
    int n;
} groups;

static int uf_find(int *parent, int x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static floe_status groups_build(const floe_graph *g, groups *gr) {
    bool any = false;

    gr->parent = NULL;
    gr->n = g->nnodes;
    for (int i = 0; i < g->nnodes && !any; i++)
        for (int j = 0; j < g->nodes[i]->ninputs && !any; j++)
            any = g->nodes[i]->in_dtypes[j] == FLOE_DTYPE_RESOURCE;
    if (!any)
        return FLOE_OK;
    gr->parent = floe__calloc((size_t)g->nnodes, sizeof(int));
    gr->size = floe__calloc((size_t)g->nnodes, sizeof(int));
    if (gr->parent == NULL || gr->size == NULL) {
        floe__free(gr->parent);
        floe__free(gr->size);
        gr->parent = gr->size = NULL;
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (int i = 0; i < g->nnodes; i++)
        gr->parent[i] = i;
    for (int i = 0; i < g->nnodes; i++) {
        const floe_node *n = g->nodes[i];
        for (int j = 0; j < n->ninputs; j++) {
            if (n->in_dtypes[j] != FLOE_DTYPE_RESOURCE)
                continue;
            int a = uf_find(gr->parent, i), b = uf_find(gr->parent, n->inputs[j].node->id);
            if (a != b)
                gr->parent[a < b ? b : a] = a < b ? a : b;
        }
    }
    for (int i = 0; i < g->nnodes; i++)
        gr->size[uf_find(gr->parent, i)]++;
    return FLOE_OK;
}

static bool in_group(groups *gr, int root, int x) {
    return gr->parent != NULL && uf_find(gr->parent, x) == root;
}

static bool group_alone(groups *gr, int x) {
    return gr->parent == NULL || gr->size[uf_find(gr->parent, x)] == 1;
}

/* ---- Placing nodes ------------------------------------------------------------------ */

typedef struct placer {
    struct floe_session *s;
    const floe_graph *g;
    floe_device **devs;
    int ndevs;
    groups gr;
} placer;

static floe_status place_alone(placer *pl, const floe_node *n) {
    const floe_context *ctx = pl->s->ctx;
    floe__kinst *ki = &pl->s->kinst[n->id];
    bool matched = false;
    char desc[256];

    for (int i = 0; i < pl->ndevs; i++) {
        floe_device *d = pl->devs[i];
        if (!spec_matches(&n->devspec, d))
            continue;
        matched = true;
        const floe__kernel *k = kernel_on(ctx, n, d);
        if (k != NULL) {
            ki->device = d;
            ki->kernel = k;
            return FLOE_OK;
        }
    }
    describe_kernels(n, desc, sizeof(desc));
    if (pl->ndevs == 0)
        return floe__fail(FLOE_FAILED_PRECONDITION,
                          "no devices are registered (is the dev_cpu plugin loaded?)");
    if (spec_given(&n->devspec) && !matched)
        return floe__fail(FLOE_INVALID_ARGUMENT, "no device matches '%s'", n->device);
    if (spec_given(&n->devspec))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "no kernel for a device matching '%s' (kernels for: %s)", n->device,
                          desc);
    return floe__fail(FLOE_NOT_FOUND, "no kernel for any registered device (kernels for: %s)",
                      desc);
}

/* Places every member of @n's colocation group on one device. */
static floe_status place_group(placer *pl, const floe_node *n) {
    const floe_context *ctx = pl->s->ctx;
    int root = uf_find(pl->gr.parent, n->id);
    floe_device *chosen = NULL;
    const floe_node *placed = NULL;

    for (int i = 0; i < pl->g->nnodes && placed == NULL; i++)
        if (in_group(&pl->gr, root, i) && pl->s->kinst[i].device != NULL)
            placed = pl->g->nodes[i];
    if (placed != NULL) {
        floe_device *d = pl->s->kinst[placed->id].device;
        const floe__kernel *k = kernel_on(ctx, n, d);
        if (!spec_matches(&n->devspec, d) || k == NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "must run on %s with '%s', which shares its resource, but %s", d->name,
                              placed->name,
                              k == NULL ? "has no kernel there" : "asks for another device");
        pl->s->kinst[n->id].device = d;
        pl->s->kinst[n->id].kernel = k;
        return FLOE_OK;
    }
    for (int i = 0; i < pl->ndevs && chosen == NULL; i++) {
        floe_device *d = pl->devs[i];
        bool ok = true;
        for (int j = 0; j < pl->g->nnodes && ok; j++) {
            if (!in_group(&pl->gr, root, j))
                continue;
            const floe_node *m = pl->g->nodes[j];
            ok = spec_matches(&m->devspec, d) && kernel_on(ctx, m, d) != NULL;
        }
        if (ok)
            chosen = d;
    }
    if (chosen == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "no device suits every node sharing its resource (device constraints "
                          "or kernels differ)");
    for (int j = 0; j < pl->g->nnodes; j++) {
        if (!in_group(&pl->gr, root, j))
            continue;
        pl->s->kinst[j].device = chosen;
        pl->s->kinst[j].kernel = kernel_on(ctx, pl->g->nodes[j], chosen);
    }
    return FLOE_OK;
}

static floe_status place_one(placer *pl, const floe_node *n) {
    if (pl->gr.parent != NULL && !group_alone(&pl->gr, n->id))
        return place_group(pl, n);
    return place_alone(pl, n);
}

floe_status floe__place_nodes(struct floe_session *s, const int *nodes, int n) {
    placer pl;
    floe_status st = FLOE_OK;
    bool need = false;

    for (int i = 0; i < n && !need; i++)
        need = !s->kinst[nodes[i]].created;
    if (!need)
        return FLOE_OK;
    memset(&pl, 0, sizeof(pl));
    pl.s = s;
    pl.g = s->graph;
    pl.devs = sorted_devices(s->ctx, &pl.ndevs);
    if (pl.devs == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    st = groups_build(pl.g, &pl.gr);
    for (int i = 0; i < n && st == FLOE_OK; i++) {
        const floe_node *node = pl.g->nodes[nodes[i]];
        floe__kinst *ki = &s->kinst[node->id];
        if (ki->created)
            continue;
        if (ki->device == NULL)
            st = place_one(&pl, node);
        if (st == FLOE_OK)
            st = floe__kernel_create(s, node, ki->device, ki->kernel, &ki->state);
        if (st != FLOE_OK)
            floe__error_prefix("node '%s' (%s): ", node->name, node->op->name);
        else
            ki->created = true;
    }
    floe__free(pl.gr.parent);
    floe__free(pl.gr.size);
    floe__free(pl.devs);
    return st;
}

void floe__kinst_destroy_all(struct floe_session *s) {
    for (int i = 0; i < s->nkinst; i++) {
        floe__kinst *ki = &s->kinst[i];
        if (ki->created && ki->kernel != NULL && ki->kernel->destroy != NULL)
            ki->kernel->destroy(ki->state);
        ki->created = false;
        ki->state = NULL;
    }
}
