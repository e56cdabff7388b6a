/*
 * graph.c - dataflow graphs, node builders and node accessors.
 *
 * Sections: device specs (TensorFlow's "/job:J/replica:R/task:T/device:TYPE:N" and
 * its short forms); graphs (nodes in insertion order, which is topological because a
 * node's inputs must exist before it, plus an open-addressing name table); node
 * builders, which collect inputs, attrs and a device and, at finish, check them
 * against the op definition: input counts and dtypes, list lengths, type attrs
 * inferred from input dtypes, defaults, required attrs, allowed types and minimums,
 * then compute output dtypes and run the shape function (shape.c); node accessors.
 *
 * Every error of floe_node_builder_finish() starts with "node 'NAME' (OP): ".
 */
#include "core-impl.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Largest flattened input or output count of one node. */
#define MAX_NODE_ARGS (1 << 20)

/* ---- Device specs ----------------------------------------------------------------- */

static floe_status devspec_fail(const char *s, const char *why) {
    return floe__fail(FLOE_INVALID_ARGUMENT, "invalid device spec '%s': %s", s, why);
}

static bool prefix_ci(const char *p, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)p[i]) != prefix[i])
            return false;
    return true;
}

static bool parse_uint(const char *p, size_t n, int *out) {
    int v = 0;

    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* "TYPE", "TYPE:N" or "TYPE:*", the type case-insensitive. */
static floe_status parse_type_index(const char *s, const char *p, size_t n,
                                    floe__device_spec *out) {
    const char *colon = memchr(p, ':', n);
    size_t tn = colon != NULL ? (size_t)(colon - p) : n;

    if (out->type[0] != '\0')
        return devspec_fail(s, "device type given twice");
    if (tn == 0 || tn >= sizeof(out->type) || !isalpha((unsigned char)p[0]))
        return devspec_fail(s, "bad device type");
    for (size_t i = 0; i < tn; i++) {
        if (!isalnum((unsigned char)p[i]) && p[i] != '_')
            return devspec_fail(s, "bad device type");
        out->type[i] = (char)toupper((unsigned char)p[i]);
    }
    out->type[tn] = '\0';
    if (colon != NULL) {
        const char *q = colon + 1;
        size_t qn = n - tn - 1;
        if (qn == 1 && q[0] == '*')
            out->index = -1;
        else if (!parse_uint(q, qn, &out->index))
            return devspec_fail(s, "bad device index");
    }
    return FLOE_OK;
}

static floe_status parse_component(const char *s, const char *p, size_t n,
                                   floe__device_spec *out) {
    if (prefix_ci(p, n, "job:")) {
        if (out->job[0] != '\0')
            return devspec_fail(s, "job given twice");
        if (n - 4 == 0 || n - 4 >= sizeof(out->job))
            return devspec_fail(s, "bad job name");
        for (size_t i = 4; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-' && p[i] != '.')
                return devspec_fail(s, "bad job name");
        memcpy(out->job, p + 4, n - 4);
        out->job[n - 4] = '\0';
        return FLOE_OK;
    }
    if (prefix_ci(p, n, "replica:")) {
        if (out->replica >= 0 || !parse_uint(p + 8, n - 8, &out->replica))
            return devspec_fail(s, "bad replica");
        return FLOE_OK;
    }
    if (prefix_ci(p, n, "task:")) {
        if (out->task >= 0 || !parse_uint(p + 5, n - 5, &out->task))
            return devspec_fail(s, "bad task");
        return FLOE_OK;
    }
    if (prefix_ci(p, n, "device:"))
        return parse_type_index(s, p + 7, n - 7, out);
    return parse_type_index(s, p, n, out);
}

floe_status floe__device_spec_parse(const char *s, floe__device_spec *out) {
    floe__device_spec sp;
    const char *p;

    memset(&sp, 0, sizeof(sp));
    sp.replica = -1;
    sp.task = -1;
    sp.index = -1;
    *out = sp;
    if (s == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "device spec is NULL");
    if (s[0] == '\0')
        return FLOE_OK;
    p = s[0] == '/' ? s + 1 : s;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        floe_status st;

        if (n == 0)
            return devspec_fail(s, "empty component");
        st = parse_component(s, p, n, &sp);
        if (st != FLOE_OK)
            return st;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *out = sp;
    return FLOE_OK;
}

/* ---- Graphs ----------------------------------------------------------------------- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

floe_status floe_graph_new(floe_context *ctx, floe_graph **out) {
    floe_graph *g;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_graph_new: out is NULL");
    *out = NULL;
    if (ctx == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_graph_new: context is NULL");
    g = floe__calloc(1, sizeof(*g));
    if (g == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_graph_new: out of memory");
    g->ctx = ctx;
    *out = g;
    return FLOE_OK;
}

static void node_free(floe_node *n) {
    if (n == NULL)
        return;
    floe__free(n->name);
    floe__free(n->device);
    floe__attrs_deinit(&n->attrs);
    floe__free(n->inputs);
    floe__free(n->controls);
    floe__free(n->out_dtypes);
    floe__free(n->out_shapes);
    floe__free(n->in_dtypes);
    floe__free(n->in_arg_start);
    floe__free(n->out_arg_start);
    floe__free(n);
}

void floe_graph_free(floe_graph *g) {
    if (g == NULL)
        return;
    for (int i = 0; i < g->nnodes; i++)
        node_free(g->nodes[i]);
    floe__free(g->nodes);
    floe__free(g->table);
    floe__free(g);
}

floe_context *floe_graph_context(const floe_graph *g) {
    return g != NULL ? g->ctx : NULL;
}

int floe_graph_num_nodes(const floe_graph *g) {
    return g != NULL ? g->nnodes : 0;
}

floe_node *floe_graph_node(const floe_graph *g, int i) {
    if (g == NULL || i < 0 || i >= g->nnodes)
        return NULL;
    return g->nodes[i];
}

floe_node *floe_graph_find(const floe_graph *g, const char *name) {
    if (g == NULL || name == NULL || g->table_cap == 0)
        return NULL;
    unsigned mask = (unsigned)g->table_cap - 1;
    for (unsigned i = (unsigned)hash_name(name) & mask;; i = (i + 1) & mask) {
        floe_node *n = g->table[i];
        if (n == NULL)
            return NULL;
        if (strcmp(n->name, name) == 0)
            return n;
    }
}

static void table_put(floe_node **table, int cap, floe_node *n) {
    unsigned mask = (unsigned)cap - 1;
    unsigned i = (unsigned)hash_name(n->name) & mask;
    while (table[i] != NULL)
        i = (i + 1) & mask;
    table[i] = n;
}

/* Makes room for one more node in the array and the name table. */
static floe_status graph_reserve(floe_graph *g) {
    if (g->nnodes == g->cap) {
        int cap = g->cap != 0 ? g->cap * 2 : 16;
        floe_node **nodes = floe__realloc(g->nodes, (size_t)cap * sizeof(*nodes));
        if (nodes == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        g->nodes = nodes;
        g->cap = cap;
    }
    if ((g->nnodes + 1) * 2 > g->table_cap) {
        int cap = g->table_cap != 0 ? g->table_cap * 2 : 32;
        floe_node **table = floe__calloc((size_t)cap, sizeof(*table));
        if (table == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        for (int i = 0; i < g->nnodes; i++)
            table_put(table, cap, g->nodes[i]);
        floe__free(g->table);
        g->table = table;
        g->table_cap = cap;
    }
    return FLOE_OK;
}

/* ---- Node builders ---------------------------------------------------------------- */

typedef struct builder_group {
    int start, n;
    bool list;
} builder_group;

struct floe_node_builder {
    floe_graph *g;
    char *op_type;
    char *name;                  /* NULL: automatic */
    char *device;                /* NULL: no constraint */
    floe_attrs attrs;
    floe_output *inputs;
    int ninputs, cap_inputs;
    builder_group *groups;
    int ngroups, cap_groups;
    floe_node **controls;
    int ncontrols, cap_controls;
    floe_status err;             /* first error met by a setter */
    char *errmsg;                /* NULL with err set: out of memory */
};

static void builder_error(floe_node_builder *b, floe_status code, const char *fmt, ...)
    FLOE_PRINTF(3, 4);

static void builder_error(floe_node_builder *b, floe_status code, const char *fmt, ...) {
    char buf[512];
    va_list ap;

    if (b->err != FLOE_OK)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    b->errmsg = floe__strdup(buf);
    b->err = b->errmsg != NULL ? code : FLOE_RESOURCE_EXHAUSTED;
}

floe_status floe_node_builder_new(floe_graph *g, const char *op_type, const char *name,
                                  floe_node_builder **out) {
    floe_node_builder *b;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_node_builder_new: out is NULL");
    *out = NULL;
    if (g == NULL || op_type == NULL || op_type[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_node_builder_new: graph and op type are required");
    b = floe__calloc(1, sizeof(*b));
    if (b == NULL)
        goto fail_oom;
    b->g = g;
    floe__attrs_init(&b->attrs);
    b->op_type = floe__strdup(op_type);
    if (b->op_type == NULL)
        goto fail_free_builder;
    if (name != NULL) {
        b->name = floe__strdup(name);
        if (b->name == NULL)
            goto fail_free_builder;
    }
    *out = b;
    return FLOE_OK;

fail_free_builder:
    floe_node_builder_free(b);
fail_oom:
    return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_node_builder_new: out of memory");
}

void floe_node_builder_free(floe_node_builder *b) {
    if (b == NULL)
        return;
    floe__free(b->op_type);
    floe__free(b->name);
    floe__free(b->device);
    floe__attrs_deinit(&b->attrs);
    floe__free(b->inputs);
    floe__free(b->groups);
    floe__free(b->controls);
    floe__free(b->errmsg);
    floe__free(b);
}

/* Checks one input edge; records the error in @b. */
static bool builder_check_input(floe_node_builder *b, floe_output in, int pos) {
    if (in.node == NULL) {
        builder_error(b, FLOE_INVALID_ARGUMENT, "input %d is NULL", pos);
        return false;
    }
    if (in.node->graph != b->g) {
        builder_error(b, FLOE_INVALID_ARGUMENT, "input %d comes from node '%s' of another graph",
                      pos, in.node->name);
        return false;
    }
    if (in.index < 0 || in.index >= in.node->noutputs) {
        builder_error(b, FLOE_INVALID_ARGUMENT,
                      "input %d: node '%s' (%s) has no output %d (it has %d)", pos,
                      in.node->name, in.node->op->name, in.index, in.node->noutputs);
        return false;
    }
    return true;
}

static void builder_add_group(floe_node_builder *b, const floe_output *in, int n, bool list) {
    if (b->err != FLOE_OK)
        return;
    for (int i = 0; i < n; i++)
        if (!builder_check_input(b, in[i], b->ninputs + i))
            return;
    if (b->ninputs > MAX_NODE_ARGS - n) {
        builder_error(b, FLOE_INVALID_ARGUMENT, "too many inputs");
        return;
    }
    if (b->ngroups == b->cap_groups) {
        int cap = b->cap_groups != 0 ? b->cap_groups * 2 : 4;
        builder_group *gr = floe__realloc(b->groups, (size_t)cap * sizeof(*gr));
        if (gr == NULL)
            goto fail_oom;
        b->groups = gr;
        b->cap_groups = cap;
    }
    if (b->ninputs + n > b->cap_inputs) {
        int cap = b->cap_inputs != 0 ? b->cap_inputs : 4;
        while (cap < b->ninputs + n)
            cap *= 2;
        floe_output *ins = floe__realloc(b->inputs, (size_t)cap * sizeof(*ins));
        if (ins == NULL)
            goto fail_oom;
        b->inputs = ins;
        b->cap_inputs = cap;
    }
    b->groups[b->ngroups].start = b->ninputs;
    b->groups[b->ngroups].n = n;
    b->groups[b->ngroups].list = list;
    b->ngroups++;
    for (int i = 0; i < n; i++) {
        b->inputs[b->ninputs] = in[i];
        b->inputs[b->ninputs].reserved_ = 0;
        b->ninputs++;
    }
    return;

fail_oom:
    builder_error(b, FLOE_RESOURCE_EXHAUSTED, "out of memory");
}

void floe_node_builder_add_input(floe_node_builder *b, floe_output in) {
    if (b == NULL)
        return;
    builder_add_group(b, &in, 1, false);
}

void floe_node_builder_add_input_list(floe_node_builder *b, const floe_output *in, int n) {
    if (b == NULL)
        return;
    if (n < 0 || (n > 0 && in == NULL)) {
        builder_error(b, FLOE_INVALID_ARGUMENT, "input list %d: bad list (n = %d)", b->ngroups,
                      n);
        return;
    }
    builder_add_group(b, in, n, true);
}

void floe_node_builder_add_control_input(floe_node_builder *b, floe_node *dep) {
    if (b == NULL || b->err != FLOE_OK)
        return;
    if (dep == NULL) {
        builder_error(b, FLOE_INVALID_ARGUMENT, "control input %d is NULL", b->ncontrols);
        return;
    }
    if (dep->graph != b->g) {
        builder_error(b, FLOE_INVALID_ARGUMENT,
                      "control input '%s' comes from another graph", dep->name);
        return;
    }
    for (int i = 0; i < b->ncontrols; i++)
        if (b->controls[i] == dep)
            return;
    if (b->ncontrols == b->cap_controls) {
        int cap = b->cap_controls != 0 ? b->cap_controls * 2 : 4;
        floe_node **c = floe__realloc(b->controls, (size_t)cap * sizeof(*c));
        if (c == NULL) {
            builder_error(b, FLOE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        b->controls = c;
        b->cap_controls = cap;
    }
    b->controls[b->ncontrols++] = dep;
}

void floe_node_builder_set_device(floe_node_builder *b, const char *spec) {
    char *copy = NULL;

    if (b == NULL || b->err != FLOE_OK)
        return;
    if (spec != NULL) {
        copy = floe__strdup(spec);
        if (copy == NULL) {
            builder_error(b, FLOE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    floe__free(b->device);
    b->device = copy;
}

floe_attrs *floe_node_builder_attrs(floe_node_builder *b) {
    return b != NULL ? &b->attrs : NULL;
}

/* ---- Checking a node against its op definition ------------------------------------ */

static const char *attr_kind_name(floe_attr_type t) {
    static const char *const names[] = {
        "none",        "int",         "float",        "bool",       "string",
        "type",        "shape",       "tensor",       "list(int)",  "list(float)",
        "list(bool)",  "list(string)", "list(type)",  "list(shape)", "list(tensor)",
    };
    if ((unsigned)t < sizeof(names) / sizeof(names[0]))
        return names[t];
    return "unknown";
}

static bool attr_kind_is_list(floe_attr_type t) {
    return t >= FLOE_ATTR_LIST_INT && t <= FLOE_ATTR_LIST_TENSOR;
}

static void format_dtype_list(const floe_dtype *dts, int n, char *buf, size_t len) {
    size_t off = 0;

    buf[0] = '\0';
    off += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "",
                                floe_dtype_name(dts[i]));
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

static void format_type_mask(uint64_t mask, char *buf, size_t len) {
    size_t off = 0;
    bool first = true;

    buf[0] = '\0';
    for (int dt = 1; dt < 64 && off < len; dt++) {
        if (!(mask & FLOE__DTYPE_MASK(dt)) || !floe__dtype_valid((floe_dtype)dt))
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", first ? "" : ", ",
                                floe_dtype_name((floe_dtype)dt));
        first = false;
    }
}

/* Rejects attrs the op does not define or of the wrong kind; an empty list of any
 * kind is accepted for a list attr (its kind is ambiguous at the call site). */
static floe_status check_attr_names(floe_node *n) {
    const floe__op_def *op = n->op;

    for (int i = 0; i < n->attrs.n; i++) {
        floe__attr_entry *e = &n->attrs.entries[i];
        const floe__attr_def *d = floe__op_def_find_attr(op, e->name);
        if (d == NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT, "unknown attr '%s' for op %s", e->name,
                              op->name);
        if (d->type == e->value.type)
            continue;
        if (attr_kind_is_list(d->type) && attr_kind_is_list(e->value.type) &&
            e->value.u.list.n == 0) {
            floe__attr_value empty;
            memset(&empty, 0, sizeof(empty));
            empty.type = d->type;
            floe_status st = floe__attrs_set_value(&n->attrs, e->name, &empty);
            if (st != FLOE_OK)
                return st;
            continue;
        }
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' is %s, expected %s", e->name,
                          attr_kind_name(e->value.type), attr_kind_name(d->type));
    }
    return FLOE_OK;
}

static floe_status set_type_attr(floe_node *n, const char *name, floe_dtype dt) {
    floe__attr_value v;
    memset(&v, 0, sizeof(v));
    v.type = FLOE_ATTR_TYPE;
    v.u.type = dt;
    return floe__attrs_set_value(&n->attrs, name, &v);
}

static floe_status set_int_attr(floe_node *n, const char *name, int64_t i) {
    floe__attr_value v;
    memset(&v, 0, sizeof(v));
    v.type = FLOE_ATTR_INT;
    v.u.i = i;
    return floe__attrs_set_value(&n->attrs, name, &v);
}

/* Input matching state: which input inferred each attr (-1: the caller set it). */
typedef struct match_state {
    floe_node *n;
    const floe_node_builder *b;
    int *inferred_from;          /* by attr def index */
} match_state;

static floe_dtype input_dtype(const floe_output *o) {
    return o->node->out_dtypes[o->index];
}

/* Infers or checks type attr @attr against the dtype of flattened input @pos of arg @a. */
static floe_status match_type_attr(match_state *m, int a, const char *attr, int pos) {
    floe_node *n = m->n;
    const floe__arg_def *def = &n->op->inputs[a];
    floe_dtype dt = input_dtype(&n->inputs[pos]);
    const floe__attr_def *ad = floe__op_def_find_attr(n->op, attr);
    const floe__attr_value *v = floe__attrs_find(&n->attrs, attr);
    int ai = ad != NULL ? (int)(ad - n->op->attrs) : -1;

    if (v == NULL) {
        floe_status st = set_type_attr(n, attr, dt);
        if (st == FLOE_OK && ai >= 0)
            m->inferred_from[ai] = a;
        return st;
    }
    if (v->u.type == dt)
        return FLOE_OK;
    if (ai >= 0 && m->inferred_from[ai] >= 0)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "conflicting dtypes for attr '%s': input '%s' is %s, input '%s' is %s",
                          attr, n->op->inputs[m->inferred_from[ai]].name,
                          floe_dtype_name(v->u.type), def->name, floe_dtype_name(dt));
    return floe__fail(FLOE_INVALID_ARGUMENT, "input '%s' has dtype %s but attr '%s' is %s",
                      def->name, floe_dtype_name(dt), attr, floe_dtype_name(v->u.type));
}

static floe_status match_type_list(match_state *m, int a, const builder_group *grp) {
    floe_node *n = m->n;
    const floe__arg_def *def = &n->op->inputs[a];
    const floe__attr_value *v = floe__attrs_find(&n->attrs, def->type_list_attr);
    floe__attr_value nv;
    floe_dtype *dts;
    floe_status st = FLOE_OK;

    dts = floe__calloc((size_t)grp->n + 1, sizeof(*dts));
    if (dts == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int j = 0; j < grp->n; j++)
        dts[j] = input_dtype(&n->inputs[grp->start + j]);
    if (v != NULL) {
        const floe_dtype *have = v->u.list.items;
        bool same = v->u.list.n == grp->n;
        for (int j = 0; same && j < grp->n; j++)
            same = have[j] == dts[j];
        if (!same) {
            char got[256], want[256];
            format_dtype_list(dts, grp->n, got, sizeof(got));
            format_dtype_list(have, v->u.list.n, want, sizeof(want));
            st = floe__fail(FLOE_INVALID_ARGUMENT, "input '%s' has dtypes %s but attr '%s' is %s",
                            def->name, got, def->type_list_attr, want);
        }
    } else {
        memset(&nv, 0, sizeof(nv));
        nv.type = FLOE_ATTR_LIST_TYPE;
        nv.u.list.items = dts;
        nv.u.list.n = grp->n;
        st = floe__attrs_set_value(&n->attrs, def->type_list_attr, &nv);
    }
    floe__free(dts);
    return st;
}

static floe_status match_arg(match_state *m, int a) {
    floe_node *n = m->n;
    const floe__arg_def *def = &n->op->inputs[a];
    const builder_group *grp = &m->b->groups[a];
    bool is_list = def->number_attr != NULL || def->type_list_attr != NULL;
    floe_status st;

    n->in_arg_start[a] = grp->start;
    if (is_list && !grp->list)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "input '%s' is a list: add it with floe_node_builder_add_input_list",
                          def->name);
    if (!is_list && grp->list)
        return floe__fail(FLOE_INVALID_ARGUMENT, "input '%s' is one tensor, not a list",
                          def->name);
    if (def->type_list_attr != NULL)
        return match_type_list(m, a, grp);
    if (def->number_attr != NULL) {
        const floe__attr_value *v = floe__attrs_find(&n->attrs, def->number_attr);
        if (v == NULL) {
            st = set_int_attr(n, def->number_attr, grp->n);
            if (st != FLOE_OK)
                return st;
        } else if (v->u.i != grp->n) {
            return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' is %lld but input '%s' has %d tensors",
                              def->number_attr, (long long)v->u.i, def->name, grp->n);
        }
    }
    for (int j = 0; j < grp->n; j++) {
        int pos = grp->start + j;
        if (def->fixed_type != FLOE_DTYPE_INVALID) {
            floe_dtype dt = input_dtype(&n->inputs[pos]);
            if (dt != def->fixed_type)
                return floe__fail(FLOE_INVALID_ARGUMENT, "input '%s' has dtype %s, expected %s",
                                  def->name, floe_dtype_name(dt),
                                  floe_dtype_name(def->fixed_type));
        } else if (def->type_attr != NULL) {
            st = match_type_attr(m, a, def->type_attr, pos);
            if (st != FLOE_OK)
                return st;
        }
    }
    return FLOE_OK;
}

static void format_arg_names(const floe__arg_def *args, int n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "", args[i].name);
}

static floe_status match_inputs(floe_node *n, const floe_node_builder *b) {
    const floe__op_def *op = n->op;
    match_state m;
    floe_status st = FLOE_OK;

    if (b->ngroups != op->ninputs) {
        char names[256];
        format_arg_names(op->inputs, op->ninputs, names, sizeof(names));
        return floe__fail(FLOE_INVALID_ARGUMENT, "expects %d input%s (%s), got %d", op->ninputs,
                          op->ninputs == 1 ? "" : "s", names, b->ngroups);
    }
    n->ninputs = b->ninputs;
    n->inputs = floe__calloc((size_t)b->ninputs + 1, sizeof(*n->inputs));
    n->in_dtypes = floe__calloc((size_t)b->ninputs + 1, sizeof(*n->in_dtypes));
    n->in_arg_start = floe__calloc((size_t)op->ninputs + 1, sizeof(*n->in_arg_start));
    m.inferred_from = floe__calloc((size_t)op->nattrs + 1, sizeof(int));
    if (n->inputs == NULL || n->in_dtypes == NULL || n->in_arg_start == NULL ||
        m.inferred_from == NULL) {
        floe__free(m.inferred_from);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (b->ninputs > 0)
        memcpy(n->inputs, b->inputs, (size_t)b->ninputs * sizeof(*n->inputs));
    for (int i = 0; i < op->nattrs; i++)
        m.inferred_from[i] = -1;
    m.n = n;
    m.b = b;
    for (int a = 0; a < op->ninputs && st == FLOE_OK; a++)
        st = match_arg(&m, a);
    n->in_arg_start[op->ninputs] = b->ninputs;
    for (int i = 0; i < b->ninputs; i++)
        n->in_dtypes[i] = input_dtype(&n->inputs[i]);
    floe__free(m.inferred_from);
    return st;
}

static floe_status check_type_value(const floe__attr_def *d, floe_dtype dt) {
    if (!floe__dtype_valid(dt) || dt == FLOE_DTYPE_INVALID)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' holds an invalid dtype (%d)",
                          d->name, (int)dt);
    if (d->allowed_types != 0 && !(d->allowed_types & FLOE__DTYPE_MASK(dt))) {
        char allowed[512];
        format_type_mask(d->allowed_types, allowed, sizeof(allowed));
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' = %s is not allowed (allowed: %s)",
                          d->name, floe_dtype_name(dt), allowed);
    }
    return FLOE_OK;
}

/* Fills defaults, then checks presence, allowed types and minimums of every attr. */
static floe_status complete_attrs(floe_node *n) {
    const floe__op_def *op = n->op;

    for (int i = 0; i < op->nattrs; i++) {
        const floe__attr_def *d = &op->attrs[i];
        const floe__attr_value *v = floe__attrs_find(&n->attrs, d->name);
        floe_status st;

        if (v == NULL) {
            if (!d->has_default)
                return floe__fail(FLOE_INVALID_ARGUMENT, "missing required attr '%s' (%s)",
                                  d->name, attr_kind_name(d->type));
            st = floe__attrs_set_value(&n->attrs, d->name, &d->default_value);
            if (st != FLOE_OK)
                return st;
            v = floe__attrs_find(&n->attrs, d->name);
            if (v == NULL)
                return floe__fail(FLOE_INTERNAL, "attr '%s' vanished", d->name);
        }
        if (d->type == FLOE_ATTR_TYPE) {
            st = check_type_value(d, v->u.type);
            if (st != FLOE_OK)
                return st;
        } else if (d->type == FLOE_ATTR_LIST_TYPE) {
            const floe_dtype *dts = v->u.list.items;
            for (int j = 0; j < v->u.list.n; j++) {
                st = check_type_value(d, dts[j]);
                if (st != FLOE_OK)
                    return st;
            }
        }
        if (d->has_min && d->type == FLOE_ATTR_INT && v->u.i < d->min)
            return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' = %lld is below its minimum %lld",
                              d->name, (long long)v->u.i, (long long)d->min);
        if (d->has_min && attr_kind_is_list(d->type) && v->u.list.n < d->min)
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "attr '%s' has %d elements, fewer than its minimum %lld", d->name,
                              v->u.list.n, (long long)d->min);
    }
    return FLOE_OK;
}

/* Number of flattened outputs of output arg @def given complete attrs; -1 on error. */
static int output_arg_count(const floe_node *n, const floe__arg_def *def) {
    if (def->type_list_attr != NULL) {
        const floe__attr_value *v = floe__attrs_find(&n->attrs, def->type_list_attr);
        return v != NULL ? v->u.list.n : -1;
    }
    if (def->number_attr != NULL) {
        const floe__attr_value *v = floe__attrs_find(&n->attrs, def->number_attr);
        if (v == NULL || v->u.i < 0 || v->u.i > MAX_NODE_ARGS)
            return -1;
        return (int)v->u.i;
    }
    return 1;
}

static floe_dtype output_arg_dtype(const floe_node *n, const floe__arg_def *def, int j) {
    const floe__attr_value *v;

    if (def->fixed_type != FLOE_DTYPE_INVALID)
        return def->fixed_type;
    if (def->type_list_attr != NULL) {
        v = floe__attrs_find(&n->attrs, def->type_list_attr);
        return ((const floe_dtype *)v->u.list.items)[j];
    }
    v = def->type_attr != NULL ? floe__attrs_find(&n->attrs, def->type_attr) : NULL;
    return v != NULL ? v->u.type : FLOE_DTYPE_INVALID;
}

static floe_status set_outputs(floe_node *n) {
    const floe__op_def *op = n->op;
    int total = 0;

    n->out_arg_start = floe__calloc((size_t)op->noutputs + 1, sizeof(int));
    if (n->out_arg_start == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int a = 0; a < op->noutputs; a++) {
        int c = output_arg_count(n, &op->outputs[a]);
        if (c < 0 || total > MAX_NODE_ARGS - c)
            return floe__fail(FLOE_INVALID_ARGUMENT, "output '%s' has a bad length",
                              op->outputs[a].name);
        n->out_arg_start[a] = total;
        total += c;
    }
    n->out_arg_start[op->noutputs] = total;
    n->noutputs = total;
    n->out_dtypes = floe__calloc((size_t)total + 1, sizeof(*n->out_dtypes));
    n->out_shapes = floe__calloc((size_t)total + 1, sizeof(*n->out_shapes));
    if (n->out_dtypes == NULL || n->out_shapes == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    for (int a = 0; a < op->noutputs; a++) {
        const floe__arg_def *def = &op->outputs[a];
        for (int j = 0; j < n->out_arg_start[a + 1] - n->out_arg_start[a]; j++) {
            floe_dtype dt = output_arg_dtype(n, def, j);
            if (!floe__dtype_valid(dt) || dt == FLOE_DTYPE_INVALID)
                return floe__fail(FLOE_INVALID_ARGUMENT, "output '%s' has no valid dtype",
                                  def->name);
            n->out_dtypes[n->out_arg_start[a] + j] = dt;
        }
    }
    for (int i = 0; i < total; i++)
        n->out_shapes[i].ndim = -1;
    return FLOE_OK;
}

/* TensorFlow's node names, also allowing a leading '_'. */
static bool valid_node_name(const char *s) {
    if (s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '_' || c == '.')
            continue;
        if (p != s && (c == '-' || c == '/'))
            continue;
        return false;
    }
    return true;
}

/* "<Op>_<n>" not yet taken, n from the node's id. */
static char *auto_name(const floe_graph *g, const char *op) {
    char buf[256];
    for (long k = g->nnodes;; k++) {
        snprintf(buf, sizeof(buf), "%.200s_%ld", op, k);
        if (floe_graph_find(g, buf) == NULL)
            return floe__strdup(buf);
    }
}

static floe_status build_node(floe_node_builder *b, floe_node *n) {
    floe_status st;

    st = floe__device_spec_parse(n->device, &n->devspec);
    if (st != FLOE_OK)
        return st;
    n->attrs = b->attrs;                 /* moved */
    floe__attrs_init(&b->attrs);
    st = check_attr_names(n);
    if (st == FLOE_OK)
        st = match_inputs(n, b);
    if (st == FLOE_OK)
        st = complete_attrs(n);
    if (st == FLOE_OK)
        st = set_outputs(n);
    if (st != FLOE_OK)
        return st;
    if (b->ncontrols > 0) {
        n->controls = floe__calloc((size_t)b->ncontrols, sizeof(*n->controls));
        if (n->controls == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        memcpy(n->controls, b->controls, (size_t)b->ncontrols * sizeof(*n->controls));
        n->ncontrols = b->ncontrols;
    }
    return floe__node_run_shape_fn(n);
}

/* The op of @b, checking the builder's recorded error and the name; the message
 * starts with the node's name. */
static floe_status resolve_node(const floe_node_builder *b, const char *name,
                                const floe__op_def **op) {
    *op = NULL;
    if (b->err != FLOE_OK)
        return floe__fail(b->err, "node '%s' (%s): %s", name, b->op_type,
                          b->errmsg != NULL ? b->errmsg : "out of memory");
    *op = floe__registry_find_op(b->g->ctx, b->op_type);
    if (*op == NULL)
        return floe__fail(FLOE_NOT_FOUND, "node '%s' (%s): unknown op '%s'", name, b->op_type,
                          b->op_type);
    if (!valid_node_name(name))
        return floe__fail(FLOE_INVALID_ARGUMENT, "node '%s' (%s): invalid node name", name,
                          b->op_type);
    if (floe_graph_find(b->g, name) != NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "node '%s' (%s): a node of that name already exists", name, b->op_type);
    return FLOE_OK;
}

floe_status floe_node_builder_finish(floe_node_builder *b, floe_node **out) {
    floe_graph *g;
    const floe__op_def *op;
    floe_node *n = NULL;
    char *name;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    if (b == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_node_builder_finish: builder is NULL");
    g = b->g;
    name = b->name != NULL ? floe__strdup(b->name) : auto_name(g, b->op_type);
    if (name == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "node (%s): out of memory", b->op_type);
        goto done;
    }
    st = resolve_node(b, name, &op);
    if (st != FLOE_OK)
        goto done;
    n = floe__calloc(1, sizeof(*n));
    if (n == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "node '%s' (%s): out of memory", name,
                        b->op_type);
        goto done;
    }
    floe__attrs_init(&n->attrs);
    n->graph = g;
    n->id = g->nnodes;
    n->op = op;
    n->name = name;
    name = NULL;
    n->device = floe__strdup(b->device != NULL ? b->device : "");
    st = n->device != NULL ? build_node(b, n)
                           : floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    if (st == FLOE_OK)
        st = graph_reserve(g);
    if (st != FLOE_OK) {
        floe__error_prefix("node '%s' (%s): ", n->name, op->name);
        goto done;
    }
    g->nodes[g->nnodes++] = n;
    table_put(g->table, g->table_cap, n);
    if (out != NULL)
        *out = n;
    n = NULL;

done:
    floe__free(name);
    node_free(n);
    floe_node_builder_free(b);
    return st;
}

/* ---- Node accessors ---------------------------------------------------------------- */

const char *floe_node_name(const floe_node *n) {
    return n != NULL ? n->name : NULL;
}

const char *floe_node_op(const floe_node *n) {
    return n != NULL ? n->op->name : NULL;
}

const char *floe_node_device(const floe_node *n) {
    return n != NULL ? n->device : NULL;
}

const floe_attrs *floe_node_attrs(const floe_node *n) {
    return n != NULL ? &n->attrs : NULL;
}

int floe_node_num_inputs(const floe_node *n) {
    return n != NULL ? n->ninputs : 0;
}

floe_output floe_node_input(const floe_node *n, int i) {
    floe_output o;
    memset(&o, 0, sizeof(o));
    if (n != NULL && i >= 0 && i < n->ninputs)
        o = n->inputs[i];
    return o;
}

int floe_node_num_control_inputs(const floe_node *n) {
    return n != NULL ? n->ncontrols : 0;
}

floe_node *floe_node_control_input(const floe_node *n, int i) {
    if (n == NULL || i < 0 || i >= n->ncontrols)
        return NULL;
    return n->controls[i];
}

int floe_node_num_outputs(const floe_node *n) {
    return n != NULL ? n->noutputs : 0;
}

floe_dtype floe_node_output_dtype(const floe_node *n, int i) {
    if (n == NULL || i < 0 || i >= n->noutputs)
        return FLOE_DTYPE_INVALID;
    return n->out_dtypes[i];
}

floe_shape floe_node_output_shape(const floe_node *n, int i) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = -1;
    if (n != NULL && i >= 0 && i < n->noutputs)
        s = n->out_shapes[i];
    return s;
}
