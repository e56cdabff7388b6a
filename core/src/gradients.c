/*
 * gradients.c - automatic differentiation: floe_gradients (TensorFlow's tf.gradients),
 * the grad_* services of the host table that gradient functions build with, and the
 * finite-difference checker floe_gradient_check.
 *
 * floe_gradients marks the nodes reachable forward from the xs, then, walking back
 * from the ys, those of them that reach a y ("between" nodes).  Node ids are insertion
 * order, hence topological, so one pass in decreasing id visits every consumer before
 * its producers: each between node's output gradients are summed (AddN, or a chain of
 * AddV2 without it), recorded when the node produces an x, and handed to the op's
 * gradient function through a floe_grad_ctx when an input of the node lies between
 * too.  The input gradients it declares are queued on the producing outputs.  Only
 * floating-point and resource edges carry gradients.  Nothing is freed from the graph
 * on failure: nodes added before an error stay (documented in floe/gradients.h).
 */
#include "core-impl.h"

#include <floe/gradients.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 512

/* A growing list of gradient contributions to one output. */
typedef struct grad_list {
    floe_output *v;
    int n, cap;
} grad_list;

struct floe_grad_ctx {
    floe_graph *g;
    floe_node *node;                /* the forward node */
    const char *scope;              /* "gradients", "gradients_1", ... */
    const floe_output *upstream;    /* [node->noutputs] */
    floe_output *in_grads;          /* [node->ninputs]; .node NULL: not set */
};

/* Node flags of one floe_gradients call. */
enum { REACHED = 1, BETWEEN = 2 };

/* ---- Small helpers -------------------------------------------------------------- */

/* Whether an edge of @dt carries a gradient. */
static bool carries_grad(floe_dtype dt) {
    switch (dt) {
    case FLOE_DTYPE_F16:
    case FLOE_DTYPE_BF16:
    case FLOE_DTYPE_F32:
    case FLOE_DTYPE_F64:
    case FLOE_DTYPE_COMPLEX64:
    case FLOE_DTYPE_RESOURCE:
        return true;
    default:
        return false;
    }
}

static bool valid_output(const floe_graph *g, floe_output o) {
    return o.node != NULL && o.node->graph == g && o.index >= 0 && o.index < o.node->noutputs;
}

static floe_output null_output(void) {
    floe_output o;
    memset(&o, 0, sizeof(o));
    return o;
}

/* @base, or "@base_<k>" for the first k that no node of @g is called. */
static char *unique_name(const floe_graph *g, const char *base) {
    char buf[NAME_MAX_LEN + 32];
    if (floe_graph_find(g, base) == NULL)
        return floe__strdup(base);
    for (long k = 1;; k++) {
        snprintf(buf, sizeof(buf), "%s_%ld", base, k);
        if (floe_graph_find(g, buf) == NULL)
            return floe__strdup(buf);
    }
}

/* Adds node @name running @op_name on flattened @inputs; @attrs and @device nullable. */
static floe_status add_node_flat(floe_graph *g, const char *op_name, const char *name,
                                 const char *device, const floe_output *inputs, int ninputs,
                                 const floe_attrs *attrs, floe_node **out) {
    const floe__op_def *op;
    floe_node_builder *b;
    int *len;
    int pos = 0;
    floe_status st;

    *out = NULL;
    op = floe__registry_find_op(g->ctx, op_name);
    if (op == NULL)
        return floe__fail(FLOE_NOT_FOUND, "unknown op '%s' (is its plugin loaded?)", op_name);
    len = floe__calloc((size_t)op->ninputs + 1, sizeof(*len));
    if (len == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    st = floe__op_group_inputs(op, attrs, ninputs, len);
    if (st != FLOE_OK)
        goto done;
    st = floe_node_builder_new(g, op_name, name, &b);
    if (st != FLOE_OK)
        goto done;
    if (attrs != NULL) {
        st = floe__attrs_copy(floe_node_builder_attrs(b), attrs);
        if (st != FLOE_OK) {
            floe_node_builder_free(b);
            goto done;
        }
    }
    for (int a = 0; a < op->ninputs; a++) {
        const floe__arg_def *def = &op->inputs[a];
        if (def->number_attr == NULL && def->type_list_attr == NULL)
            floe_node_builder_add_input(b, inputs[pos]);
        else
            floe_node_builder_add_input_list(b, inputs + pos, len[a]);
        pos += len[a];
    }
    if (device != NULL && device[0] != '\0')
        floe_node_builder_set_device(b, device);
    st = floe_node_builder_finish(b, out);

done:
    floe__free(len);
    return st;
}

/* Adds a node named "<scope>/<fwd>_grad/<op>" (made unique). */
static floe_status add_grad_node(floe_graph *g, const char *scope, const floe_node *fwd,
                                 const char *op, const floe_output *inputs, int ninputs,
                                 const floe_attrs *attrs, floe_node **out) {
    char base[NAME_MAX_LEN];
    char *name;
    floe_status st;

    *out = NULL;
    if (fwd != NULL)
        snprintf(base, sizeof(base), "%s/%.300s_grad/%.100s", scope, fwd->name, op);
    else
        snprintf(base, sizeof(base), "%s/%.100s", scope, op);
    name = unique_name(g, base);
    if (name == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    st = add_node_flat(g, op, name, fwd != NULL ? fwd->device : NULL, inputs, ninputs, attrs, out);
    floe__free(name);
    return st;
}

/* IEEE half precision of @f, rounded to nearest even. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00u | (mant != 0 ? 0x200u : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)h;
}

/* Writes @v converted to @dt into @p (one element); false for dtypes with no scalar
 * conversion (STRING, RESOURCE). */
static bool write_scalar(floe_dtype dt, double v, void *p) {
    switch (dt) {
    case FLOE_DTYPE_F32: *(float *)p = (float)v; return true;
    case FLOE_DTYPE_F64: *(double *)p = v; return true;
    case FLOE_DTYPE_I8: *(int8_t *)p = (int8_t)v; return true;
    case FLOE_DTYPE_I16: *(int16_t *)p = (int16_t)v; return true;
    case FLOE_DTYPE_I32: *(int32_t *)p = (int32_t)v; return true;
    case FLOE_DTYPE_I64: *(int64_t *)p = (int64_t)v; return true;
    case FLOE_DTYPE_U8: *(uint8_t *)p = (uint8_t)v; return true;
    case FLOE_DTYPE_U16: *(uint16_t *)p = (uint16_t)v; return true;
    case FLOE_DTYPE_U32: *(uint32_t *)p = (uint32_t)v; return true;
    case FLOE_DTYPE_U64: *(uint64_t *)p = (uint64_t)v; return true;
    case FLOE_DTYPE_BOOL: *(uint8_t *)p = v != 0.0; return true;
    case FLOE_DTYPE_COMPLEX64: ((float *)p)[0] = (float)v; ((float *)p)[1] = 0.0f; return true;
    case FLOE_DTYPE_F16: *(uint16_t *)p = f32_to_f16((float)v); return true;
    case FLOE_DTYPE_BF16: {
        float f = (float)v;
        uint32_t x;
        memcpy(&x, &f, sizeof(x));
        if ((x & 0x7fffffffu) > 0x7f800000u)
            *(uint16_t *)p = (uint16_t)((x >> 16) | 0x40u);
        else
            *(uint16_t *)p = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
        return true;
    }
    default:
        return false;
    }
}

/* ---- The grad_* host services ----------------------------------------------------- */

const floe_attrs *floe__grad_attrs(const floe_grad_ctx *gc) {
    return gc != NULL ? &gc->node->attrs : NULL;
}

const char *floe__grad_node_name(const floe_grad_ctx *gc) {
    return gc != NULL ? gc->node->name : NULL;
}

const char *floe__grad_op(const floe_grad_ctx *gc) {
    return gc != NULL ? gc->node->op->name : NULL;
}

int floe__grad_num_inputs(const floe_grad_ctx *gc) {
    return gc != NULL ? gc->node->ninputs : 0;
}

int floe__grad_num_outputs(const floe_grad_ctx *gc) {
    return gc != NULL ? gc->node->noutputs : 0;
}

floe_output floe__grad_input(const floe_grad_ctx *gc, int i) {
    if (gc == NULL || i < 0 || i >= gc->node->ninputs)
        return null_output();
    return gc->node->inputs[i];
}

floe_output floe__grad_output(const floe_grad_ctx *gc, int i) {
    if (gc == NULL || i < 0 || i >= gc->node->noutputs)
        return null_output();
    return floe_out(gc->node, i);
}

floe_output floe__grad_upstream(const floe_grad_ctx *gc, int i) {
    if (gc == NULL || i < 0 || i >= gc->node->noutputs)
        return null_output();
    return gc->upstream[i];
}

floe_dtype floe__grad_edge_dtype(const floe_grad_ctx *gc, floe_output o) {
    if (gc == NULL || !valid_output(gc->g, o))
        return FLOE_DTYPE_INVALID;
    return o.node->out_dtypes[o.index];
}

floe_shape floe__grad_edge_shape(const floe_grad_ctx *gc, floe_output o) {
    floe_shape s;
    if (gc == NULL || !valid_output(gc->g, o)) {
        memset(&s, 0, sizeof(s));
        s.ndim = -1;
        return s;
    }
    return o.node->out_shapes[o.index];
}

floe_status floe__grad_set_input_grad(floe_grad_ctx *gc, int i, floe_output grad) {
    floe_dtype want, got;

    if (gc == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "grad_set_input_grad: context is NULL");
    if (i < 0 || i >= gc->node->ninputs)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "grad_set_input_grad: input %d out of range (the node has %d)", i,
                          gc->node->ninputs);
    if (gc->in_grads[i].node != NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "grad_set_input_grad: gradient of input %d set twice", i);
    if (!valid_output(gc->g, grad))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "grad_set_input_grad: gradient of input %d is not an output of the "
                          "graph",
                          i);
    want = gc->node->inputs[i].node->out_dtypes[gc->node->inputs[i].index];
    got = grad.node->out_dtypes[grad.index];
    if (want == FLOE_DTYPE_RESOURCE ? !carries_grad(got) || got == FLOE_DTYPE_RESOURCE
                                    : got != want)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "grad_set_input_grad: gradient of input %d is %s, the input is %s", i,
                          floe_dtype_name(got), floe_dtype_name(want));
    gc->in_grads[i] = grad;
    return FLOE_OK;
}

floe_status floe__grad_add_node(floe_grad_ctx *gc, const char *op, const floe_output *inputs,
                                int ninputs, const floe_attrs *attrs, floe_node **out) {
    if (out != NULL)
        *out = NULL;
    if (gc == NULL || op == NULL || op[0] == '\0' || out == NULL || ninputs < 0 ||
        (ninputs > 0 && inputs == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "grad_add_node: context, op and out are required, inputs when "
                          "ninputs > 0");
    return add_grad_node(gc->g, gc->scope, gc->node, op, inputs, ninputs, attrs, out);
}

floe_status floe__grad_const_scalar(floe_grad_ctx *gc, floe_dtype dtype, double v,
                                    floe_output *out) {
    floe_tensor *t = NULL;
    floe_attrs *a = NULL;
    floe_node *n = NULL;
    floe_status st;

    if (out != NULL)
        *out = null_output();
    if (gc == NULL || out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "grad_const_scalar: context and out are required");
    st = floe_tensor_new(dtype, NULL, 0, &t);
    if (st != FLOE_OK)
        return st;
    if (!write_scalar(dtype, v, t->data)) {
        st = floe__fail(FLOE_INVALID_ARGUMENT, "grad_const_scalar: no scalar of dtype %s",
                        floe_dtype_name(dtype));
        goto done;
    }
    st = floe_attrs_new(&a);
    if (st == FLOE_OK)
        st = floe_attrs_set_tensor(a, "value", t);
    if (st == FLOE_OK)
        st = floe_attrs_set_type(a, "dtype", dtype);
    if (st == FLOE_OK)
        st = add_grad_node(gc->g, gc->scope, gc->node, "Const", NULL, 0, a, &n);
    if (st == FLOE_OK)
        *out = floe_out(n, 0);

done:
    floe_attrs_free(a);
    floe_tensor_unref(t);
    return st;
}

/* ---- floe_gradients --------------------------------------------------------------- */

typedef struct grad_state {
    floe_graph *g;
    int n0;                         /* nodes before the call */
    uint8_t *flags;                 /* [n0] */
    grad_list **lists;              /* [n0]: per node, [noutputs] lists, or NULL */
    char scope[32];
} grad_state;

static floe_status list_push(grad_list *l, floe_output o) {
    if (l->n == l->cap) {
        int cap = l->cap != 0 ? l->cap * 2 : 2;
        floe_output *v = floe__realloc(l->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradients: out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = o;
    return FLOE_OK;
}

/* The contribution list of output @o (a between node's). */
static floe_status contribute(grad_state *s, floe_output o, floe_output grad) {
    grad_list *per = s->lists[o.node->id];
    if (per == NULL) {
        per = floe__calloc((size_t)o.node->noutputs + 1, sizeof(*per));
        if (per == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradients: out of memory");
        s->lists[o.node->id] = per;
    }
    return list_push(&per[o.index], grad);
}

/* Sums the contributions to output @j of @n into *@out (.node NULL when none). */
static floe_status sum_contributions(grad_state *s, floe_node *n, int j, floe_output *out) {
    grad_list *l = s->lists[n->id] != NULL ? &s->lists[n->id][j] : NULL;
    floe_node *sum;
    floe_status st;

    *out = null_output();
    if (l == NULL || l->n == 0)
        return FLOE_OK;
    if (l->n == 1) {
        *out = l->v[0];
        return FLOE_OK;
    }
    if (floe__registry_find_op(s->g->ctx, "AddN") != NULL) {
        st = add_grad_node(s->g, s->scope, n, "AddN", l->v, l->n, NULL, &sum);
        if (st != FLOE_OK)
            return st;
        *out = floe_out(sum, 0);
        return FLOE_OK;
    }
    floe_output acc = l->v[0];
    for (int k = 1; k < l->n; k++) {
        floe_output pair[2] = {acc, l->v[k]};
        st = add_grad_node(s->g, s->scope, n, "AddV2", pair, 2, NULL, &sum);
        if (st != FLOE_OK)
            return st;
        acc = floe_out(sum, 0);
    }
    *out = acc;
    return FLOE_OK;
}

static void mark_between(grad_state *s, const floe_output *xs, int nx, const floe_output *ys,
                         int ny) {
    int first = s->n0;
    for (int k = 0; k < nx; k++) {
        s->flags[xs[k].node->id] |= REACHED;
        if (xs[k].node->id < first)
            first = xs[k].node->id;
    }
    for (int id = first; id < s->n0; id++) {
        floe_node *n = s->g->nodes[id];
        if (s->flags[id] & REACHED)
            continue;
        for (int i = 0; i < n->ninputs; i++)
            if (s->flags[n->inputs[i].node->id] & REACHED) {
                s->flags[id] |= REACHED;
                break;
            }
    }
    for (int k = 0; k < ny; k++)
        if (s->flags[ys[k].node->id] & REACHED)
            s->flags[ys[k].node->id] |= BETWEEN;
    for (int id = s->n0 - 1; id >= 0; id--) {
        floe_node *n = s->g->nodes[id];
        if (!(s->flags[id] & BETWEEN))
            continue;
        for (int i = 0; i < n->ninputs; i++) {
            int in = n->inputs[i].node->id;
            if (s->flags[in] & REACHED)
                s->flags[in] |= BETWEEN;
        }
    }
}

/* "gradients", or "gradients_<k>" when an earlier call took it. */
static void pick_scope(grad_state *s) {
    for (int k = 0;; k++) {
        bool taken = false;
        size_t len;
        if (k == 0)
            snprintf(s->scope, sizeof(s->scope), "gradients");
        else
            snprintf(s->scope, sizeof(s->scope), "gradients_%d", k);
        len = strlen(s->scope);
        for (int id = 0; id < s->g->nnodes && !taken; id++) {
            const char *nm = s->g->nodes[id]->name;
            taken = strncmp(nm, s->scope, len) == 0 && (nm[len] == '/' || nm[len] == '\0');
        }
        if (!taken)
            return;
    }
}

/* The seed gradient of y number @k. */
static floe_status seed(grad_state *s, floe_output y, const floe_output *grad_ys, int k) {
    floe_node *ones;
    floe_status st;

    if (grad_ys != NULL && grad_ys[k].node != NULL)
        return contribute(s, y, grad_ys[k]);
    st = add_grad_node(s->g, s->scope, NULL, "OnesLike", &y, 1, NULL, &ones);
    if (st != FLOE_OK)
        return st;
    return contribute(s, y, floe_out(ones, 0));
}

/* Calls @n's gradient function and queues the input gradients it declares. */
static floe_status backprop_node(grad_state *s, floe_node *n, const floe_output *upstream) {
    floe_grad_ctx gc;
    floe_status st;
    bool needed = false;

    for (int i = 0; i < n->ninputs && !needed; i++)
        needed = (s->flags[n->inputs[i].node->id] & BETWEEN) && carries_grad(n->in_dtypes[i]);
    if (!needed || (n->op->flags & FLOE_OP_NO_GRADIENT))
        return FLOE_OK;
    if (n->op->grad_fn == NULL)
        return floe__fail(FLOE_UNIMPLEMENTED, "no gradient registered for op '%s' (node '%s')",
                          n->op->name, n->name);
    gc.g = s->g;
    gc.node = n;
    gc.scope = s->scope;
    gc.upstream = upstream;
    gc.in_grads = floe__calloc((size_t)n->ninputs + 1, sizeof(*gc.in_grads));
    if (gc.in_grads == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradients: out of memory");
    floe__fail(FLOE_OK, "%s", "");
    st = n->op->grad_fn(&gc);
    if (st != FLOE_OK) {
        if (floe_last_error()[0] == '\0')
            floe__fail(st, "the gradient function failed without a message");
        floe__error_prefix("gradient of node '%s' (%s): ", n->name, n->op->name);
        goto done;
    }
    for (int i = 0; i < n->ninputs; i++) {
        floe_output in = n->inputs[i];
        if (gc.in_grads[i].node == NULL || !(s->flags[in.node->id] & BETWEEN) ||
            !carries_grad(n->in_dtypes[i]))
            continue;
        st = contribute(s, in, gc.in_grads[i]);
        if (st != FLOE_OK)
            goto done;
    }

done:
    floe__free(gc.in_grads);
    return st;
}

static floe_status check_outputs(const floe_graph *g, const floe_output *o, int n,
                                 const char *what, bool nullable) {
    for (int k = 0; k < n; k++) {
        if (nullable && o[k].node == NULL)
            continue;
        if (!valid_output(g, o[k]))
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "floe_gradients: %s[%d] is not an output of the graph", what, k);
    }
    return FLOE_OK;
}

static floe_status run_gradients(grad_state *s, const floe_output *ys, int ny,
                                 const floe_output *xs, int nx, const floe_output *grad_ys,
                                 floe_output *result) {
    floe_output *upstream = NULL;
    floe_status st = FLOE_OK;
    int maxout = 1;

    mark_between(s, xs, nx, ys, ny);
    pick_scope(s);
    for (int k = 0; k < ny; k++) {
        floe_dtype dt = ys[k].node->out_dtypes[ys[k].index];
        if (!(s->flags[ys[k].node->id] & BETWEEN) || !carries_grad(dt) ||
            dt == FLOE_DTYPE_RESOURCE)
            continue;
        st = seed(s, ys[k], grad_ys, k);
        if (st != FLOE_OK)
            return st;
    }
    for (int id = 0; id < s->n0; id++)
        if (s->g->nodes[id]->noutputs > maxout)
            maxout = s->g->nodes[id]->noutputs;
    upstream = floe__calloc((size_t)maxout, sizeof(*upstream));
    if (upstream == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradients: out of memory");
    for (int id = s->n0 - 1; id >= 0; id--) {
        floe_node *n = s->g->nodes[id];
        bool any = false;
        if (!(s->flags[id] & BETWEEN) || s->lists[id] == NULL)
            continue;
        for (int j = 0; j < n->noutputs; j++) {
            st = sum_contributions(s, n, j, &upstream[j]);
            if (st != FLOE_OK)
                goto done;
            any = any || upstream[j].node != NULL;
        }
        if (!any)
            continue;
        for (int k = 0; k < nx; k++)
            if (xs[k].node == n)
                result[k] = upstream[xs[k].index];
        st = backprop_node(s, n, upstream);
        if (st != FLOE_OK)
            goto done;
    }

done:
    floe__free(upstream);
    return st;
}

floe_status floe_gradients(floe_graph *g, const floe_output *ys, int ny, const floe_output *xs,
                           int nx, const floe_output *grad_ys, floe_output *dxs) {
    grad_state s;
    floe_output *result = NULL;
    floe_status st;

    if (dxs != NULL && nx > 0)
        for (int k = 0; k < nx; k++)
            dxs[k] = null_output();
    if (g == NULL || ys == NULL || xs == NULL || dxs == NULL || ny < 1 || nx < 1)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_gradients: graph, ys, xs and dxs are required, ny and nx >= 1");
    if ((st = check_outputs(g, ys, ny, "ys", false)) != FLOE_OK ||
        (st = check_outputs(g, xs, nx, "xs", false)) != FLOE_OK)
        return st;
    if (grad_ys != NULL) {
        if ((st = check_outputs(g, grad_ys, ny, "grad_ys", true)) != FLOE_OK)
            return st;
        for (int k = 0; k < ny; k++) {
            floe_dtype want = ys[k].node->out_dtypes[ys[k].index];
            if (grad_ys[k].node != NULL &&
                grad_ys[k].node->out_dtypes[grad_ys[k].index] != want)
                return floe__fail(FLOE_INVALID_ARGUMENT,
                                  "floe_gradients: grad_ys[%d] is %s, ys[%d] is %s", k,
                                  floe_dtype_name(grad_ys[k].node->out_dtypes[grad_ys[k].index]),
                                  k, floe_dtype_name(want));
        }
    }
    memset(&s, 0, sizeof(s));
    s.g = g;
    s.n0 = g->nnodes;
    s.flags = floe__calloc((size_t)s.n0, sizeof(*s.flags));
    s.lists = floe__calloc((size_t)s.n0, sizeof(*s.lists));
    result = floe__calloc((size_t)nx, sizeof(*result));
    if (s.flags == NULL || s.lists == NULL || result == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradients: out of memory");
        goto done;
    }
    st = run_gradients(&s, ys, ny, xs, nx, grad_ys, result);
    if (st == FLOE_OK)
        memcpy(dxs, result, (size_t)nx * sizeof(*dxs));

done:
    if (s.lists != NULL)
        for (int id = 0; id < s.n0; id++) {
            if (s.lists[id] == NULL)
                continue;
            for (int j = 0; j < g->nodes[id]->noutputs; j++)
                floe__free(s.lists[id][j].v);
            floe__free(s.lists[id]);
        }
    floe__free(s.lists);
    floe__free(s.flags);
    floe__free(result);
    return st;
}

/* ---- floe_gradient_check ------------------------------------------------------------ */

typedef struct check_state {
    floe_graph *g;
    floe_session *sess;
    floe_node **feeds;             /* [ninputs]: Placeholder, or NULL for a Const input */
    floe_output *feed_outs;        /* the Placeholders' outputs, packed */
    floe_tensor **feed_vals;       /* the fed tensors (our copies), packed */
    int *feed_input;               /* packed -> input index */
    int nfeeds;
    floe_node *op_node;
    floe_tensor *weights;          /* f64, the output's shape */
} check_state;

static double elem_get(const floe_tensor *t, int64_t i) {
    return t->dtype == FLOE_DTYPE_F64 ? ((const double *)t->data)[i]
                                      : (double)((const float *)t->data)[i];
}

static void elem_set(floe_tensor *t, int64_t i, double v) {
    if (t->dtype == FLOE_DTYPE_F64)
        ((double *)t->data)[i] = v;
    else
        ((float *)t->data)[i] = (float)v;
}

static floe_status check_build(check_state *cs, const char *op, floe_tensor *const *inputs,
                               int ninputs, const floe_attrs *attrs) {
    floe_output *ins;
    floe_status st = FLOE_OK;
    char name[32];

    ins = floe__calloc((size_t)ninputs + 1, sizeof(*ins));
    if (ins == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradient_check: out of memory");
    for (int i = 0; i < ninputs && st == FLOE_OK; i++) {
        const floe_tensor *t = inputs[i];
        floe_node_builder *b;
        floe_node *n;
        bool fed = t->dtype == FLOE_DTYPE_F32 || t->dtype == FLOE_DTYPE_F64;

        snprintf(name, sizeof(name), fed ? "x_%d" : "c_%d", i);
        st = floe_node_builder_new(cs->g, fed ? "Placeholder" : "Const", name, &b);
        if (st != FLOE_OK)
            break;
        st = floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", t->dtype);
        if (st == FLOE_OK)
            st = fed ? floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", t->dims, t->ndim)
                     : floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", inputs[i]);
        if (st != FLOE_OK) {
            floe_node_builder_free(b);
            break;
        }
        st = floe_node_builder_finish(b, &n);
        if (st != FLOE_OK)
            break;
        ins[i] = floe_out(n, 0);
        if (fed) {
            cs->feeds[i] = n;
            cs->feed_outs[cs->nfeeds] = floe_out(n, 0);
            cs->feed_input[cs->nfeeds] = i;
            st = floe_tensor_new_copy(t->dtype, t->dims, t->ndim, t->data, t->nbytes,
                                      &cs->feed_vals[cs->nfeeds]);
            if (st == FLOE_OK)
                cs->nfeeds++;
        }
    }
    if (st == FLOE_OK)
        st = add_node_flat(cs->g, op, "op", NULL, ins, ninputs, attrs, &cs->op_node);
    floe__free(ins);
    return st;
}

/* Replaces *@t, fetched from a device whose memory the host may not read (a GPU's), by
 * a host copy. */
static floe_status host_copy(floe_tensor **t) {
    floe_tensor *h = NULL;
    floe_status st = floe_tensor_to_host(*t, &h);
    floe_tensor_unref(*t);
    *t = h;
    return st;
}

/* Runs the plan and returns sum(weights * output) in *@loss. */
static floe_status check_loss(check_state *cs, floe_plan *plan, double *loss) {
    floe_tensor *out = NULL;
    floe_status st;
    double acc = 0.0;

    st = floe_plan_run(plan, cs->feed_vals, &out);
    if (st == FLOE_OK)
        st = host_copy(&out);
    if (st != FLOE_OK)
        return st;
    if (out->num_elements != cs->weights->num_elements) {
        floe_tensor_unref(out);
        return floe__fail(FLOE_INTERNAL, "floe_gradient_check: the output changed shape");
    }
    for (int64_t e = 0; e < out->num_elements; e++)
        acc += ((const double *)cs->weights->data)[e] * elem_get(out, e);
    floe_tensor_unref(out);
    *loss = acc;
    return FLOE_OK;
}

/* Forward run: the output's shape, then the weights. */
static floe_status check_weights(check_state *cs, floe_output y) {
    floe_tensor *out = NULL;
    floe_status st;
    uint64_t rng = 0x9E3779B97F4A7C15ull;

    st = floe_session_run(cs->sess, cs->feed_outs, cs->feed_vals, cs->nfeeds, &y, 1, NULL, 0,
                          &out);
    if (st != FLOE_OK)
        return st;
    st = floe_tensor_new(FLOE_DTYPE_F64, out->dims, out->ndim, &cs->weights);
    if (st == FLOE_OK)
        for (int64_t e = 0; e < out->num_elements; e++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((double *)cs->weights->data)[e] = 0.5 + (double)(rng >> 11) / 9007199254740992.0;
        }
    floe_tensor_unref(out);
    return st;
}

static floe_status check_compare(check_state *cs, floe_output y, double delta,
                                 double *max_error) {
    floe_output *dxs = NULL, *fetch = NULL;
    floe_tensor **sym = NULL;
    floe_tensor *w_cast = NULL;
    floe_node_builder *b;
    floe_node *w;
    floe_plan *plan;
    floe_status st;
    int nfetch = 0;
    double worst = 0.0;
    floe_dtype ydt = y.node->out_dtypes[y.index];

    /* Weights fed as a Placeholder of y's dtype. */
    st = floe_tensor_new(ydt, cs->weights->dims, cs->weights->ndim, &w_cast);
    if (st != FLOE_OK)
        return st;
    for (int64_t e = 0; e < cs->weights->num_elements; e++)
        elem_set(w_cast, e, ((const double *)cs->weights->data)[e]);
    st = floe_node_builder_new(cs->g, "Placeholder", "loss_weights", &b);
    if (st != FLOE_OK)
        goto done;
    st = floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", ydt);
    if (st != FLOE_OK) {
        floe_node_builder_free(b);
        goto done;
    }
    st = floe_node_builder_finish(b, &w);
    if (st != FLOE_OK)
        goto done;
    dxs = floe__calloc((size_t)cs->nfeeds + 1, sizeof(*dxs));
    fetch = floe__calloc((size_t)cs->nfeeds + 1, sizeof(*fetch));
    sym = floe__calloc((size_t)cs->nfeeds + 1, sizeof(*sym));
    if (dxs == NULL || fetch == NULL || sym == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradient_check: out of memory");
        goto done;
    }
    if (cs->nfeeds > 0) {
        floe_output wy = floe_out(w, 0);
        st = floe_gradients(cs->g, &y, 1, cs->feed_outs, cs->nfeeds, &wy, dxs);
        if (st != FLOE_OK)
            goto done;
    }
    for (int k = 0; k < cs->nfeeds; k++)
        if (dxs[k].node != NULL)
            fetch[nfetch++] = dxs[k];
    /* A new session: the graph grew since the forward run. */
    floe_session_free(cs->sess);
    cs->sess = NULL;
    st = floe_session_new(cs->g, NULL, &cs->sess);
    if (st != FLOE_OK)
        goto done;
    if (nfetch > 0) {
        floe_output *feeds = floe__calloc((size_t)cs->nfeeds + 1, sizeof(*feeds));
        floe_tensor **vals = floe__calloc((size_t)cs->nfeeds + 1, sizeof(*vals));
        if (feeds == NULL || vals == NULL) {
            floe__free(feeds);
            floe__free(vals);
            st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradient_check: out of memory");
            goto done;
        }
        memcpy(feeds, cs->feed_outs, (size_t)cs->nfeeds * sizeof(*feeds));
        memcpy(vals, cs->feed_vals, (size_t)cs->nfeeds * sizeof(*vals));
        feeds[cs->nfeeds] = floe_out(w, 0);
        vals[cs->nfeeds] = w_cast;
        st = floe_session_run(cs->sess, feeds, vals, cs->nfeeds + 1, fetch, nfetch, NULL, 0,
                              sym);
        for (int k = 0; st == FLOE_OK && k < nfetch; k++)
            st = host_copy(&sym[k]);
        floe__free(feeds);
        floe__free(vals);
        if (st != FLOE_OK)
            goto done;
    }
    st = floe_session_prepare(cs->sess, cs->feed_outs, cs->nfeeds, &y, 1, NULL, 0, &plan);
    if (st != FLOE_OK)
        goto done;
    for (int k = 0, f = 0; k < cs->nfeeds; k++) {
        floe_tensor *x = cs->feed_vals[k];
        const floe_tensor *g = NULL;
        if (dxs[k].node != NULL) {
            g = sym[f++];
            if (g->dtype != x->dtype || g->num_elements != x->num_elements) {
                st = floe__fail(FLOE_INTERNAL,
                                "floe_gradient_check: the gradient of input %d has %lld %s "
                                "elements, the input %lld %s",
                                cs->feed_input[k], (long long)g->num_elements,
                                floe_dtype_name(g->dtype), (long long)x->num_elements,
                                floe_dtype_name(x->dtype));
                goto done;
            }
        }
        for (int64_t e = 0; e < x->num_elements; e++) {
            double x0 = elem_get(x, e), lp, lm, num, an, err;
            elem_set(x, e, x0 + delta);
            st = check_loss(cs, plan, &lp);
            if (st == FLOE_OK) {
                elem_set(x, e, x0 - delta);
                st = check_loss(cs, plan, &lm);
            }
            elem_set(x, e, x0);
            if (st != FLOE_OK)
                goto done;
            num = (lp - lm) / (2.0 * delta);
            an = g != NULL ? elem_get(g, e) : 0.0;
            err = fabs(an - num) / fmax(1.0, fabs(num));
            if (!(err <= worst))      /* NaN counts as the worst */
                worst = isnan(err) ? HUGE_VAL : err;
        }
    }
    *max_error = worst;

done:
    if (sym != NULL)
        for (int k = 0; k < nfetch; k++)
            floe_tensor_unref(sym[k]);
    floe__free(sym);
    floe__free(fetch);
    floe__free(dxs);
    floe_tensor_unref(w_cast);
    return st;
}

floe_status floe_gradient_check(floe_context *ctx, const char *op, floe_tensor *const *inputs,
                                int ninputs, const floe_attrs *attrs, int output_index,
                                double delta, double *max_error) {
    check_state cs;
    floe_output y;
    floe_status st;

    if (max_error != NULL)
        *max_error = HUGE_VAL;
    if (ctx == NULL || op == NULL || max_error == NULL || ninputs < 0 ||
        (ninputs > 0 && inputs == NULL) || !(delta > 0.0))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_gradient_check: context, op, inputs and max_error are "
                          "required, delta > 0");
    for (int i = 0; i < ninputs; i++)
        if (inputs[i] == NULL || (inputs[i]->num_elements > 0 &&
                                  !floe__device_is_host(inputs[i]->buf->device)))
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "floe_gradient_check: input %d is NULL or not in host memory", i);
    memset(&cs, 0, sizeof(cs));
    st = floe_graph_new(ctx, &cs.g);
    if (st != FLOE_OK)
        return st;
    cs.feeds = floe__calloc((size_t)ninputs + 1, sizeof(*cs.feeds));
    cs.feed_outs = floe__calloc((size_t)ninputs + 1, sizeof(*cs.feed_outs));
    cs.feed_vals = floe__calloc((size_t)ninputs + 1, sizeof(*cs.feed_vals));
    cs.feed_input = floe__calloc((size_t)ninputs + 1, sizeof(*cs.feed_input));
    if (cs.feeds == NULL || cs.feed_outs == NULL || cs.feed_vals == NULL ||
        cs.feed_input == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_gradient_check: out of memory");
        goto done;
    }
    st = check_build(&cs, op, inputs, ninputs, attrs);
    if (st != FLOE_OK)
        goto done;
    if (output_index < 0 || output_index >= cs.op_node->noutputs) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "floe_gradient_check: op %s has no output %d (it has %d)", op,
                        output_index, cs.op_node->noutputs);
        goto done;
    }
    y = floe_out(cs.op_node, output_index);
    if (cs.op_node->out_dtypes[output_index] != FLOE_DTYPE_F32 &&
        cs.op_node->out_dtypes[output_index] != FLOE_DTYPE_F64) {
        st = floe__fail(FLOE_INVALID_ARGUMENT,
                        "floe_gradient_check: output %d of %s is %s, not f32 or f64",
                        output_index, op,
                        floe_dtype_name(cs.op_node->out_dtypes[output_index]));
        goto done;
    }
    st = floe_session_new(cs.g, NULL, &cs.sess);
    if (st == FLOE_OK)
        st = check_weights(&cs, y);
    if (st == FLOE_OK)
        st = check_compare(&cs, y, delta, max_error);

done:
    floe_session_free(cs.sess);
    if (cs.feed_vals != NULL)
        for (int k = 0; k < cs.nfeeds; k++)
            floe_tensor_unref(cs.feed_vals[k]);
    floe__free(cs.feed_vals);
    floe__free(cs.feed_outs);
    floe__free(cs.feeds);
    floe__free(cs.feed_input);
    floe_tensor_unref(cs.weights);
    floe_graph_free(cs.g);
    return st;
}
