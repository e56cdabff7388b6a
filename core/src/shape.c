/*
 * shape.c - static shape inference: runs an op's shape function on a node being built
 * and implements the host's shape_* members it calls.
 *
 * A node's output shapes start unknown (rank -1); the shape function sees the node's
 * complete attrs, its input dtypes and shapes, and the value of inputs produced by a
 * Const node, and may refine the outputs or reject the node (graph.c adds the
 * node's name to the message).
 */
#include "core-impl.h"

#include <string.h>

static floe_shape unknown_shape(void) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = -1;
    return s;
}

floe_status floe__node_run_shape_fn(floe_node *n) {
    floe_shape_ctx sc;
    floe_status st;

    for (int i = 0; i < n->noutputs; i++)
        n->out_shapes[i] = unknown_shape();
    if (n->op->shape_fn == NULL)
        return FLOE_OK;
    sc.node = n;
    sc.out_shapes = n->out_shapes;
    st = n->op->shape_fn(&sc);
    if (st == FLOE_OK)
        return FLOE_OK;
    if ((int)st < 0 || (int)st > FLOE_UNAUTHENTICATED)
        return floe__fail(FLOE_INTERNAL, "shape function returned an invalid status %d", (int)st);
    return st;
}

const floe_attrs *floe__shape_attrs(const floe_shape_ctx *sc) {
    return sc != NULL ? &sc->node->attrs : NULL;
}

const char *floe__shape_node_name(const floe_shape_ctx *sc) {
    return sc != NULL ? sc->node->name : NULL;
}

int floe__shape_num_inputs(const floe_shape_ctx *sc) {
    return sc != NULL ? sc->node->ninputs : 0;
}

int floe__shape_num_outputs(const floe_shape_ctx *sc) {
    return sc != NULL ? sc->node->noutputs : 0;
}

floe_dtype floe__shape_input_dtype(const floe_shape_ctx *sc, int i) {
    if (sc == NULL || i < 0 || i >= sc->node->ninputs)
        return FLOE_DTYPE_INVALID;
    return sc->node->in_dtypes[i];
}

floe_shape floe__shape_input(const floe_shape_ctx *sc, int i) {
    const floe_output *in;

    if (sc == NULL || i < 0 || i >= sc->node->ninputs)
        return unknown_shape();
    in = &sc->node->inputs[i];
    return in->node->out_shapes[in->index];
}

floe_tensor *floe__shape_input_value(const floe_shape_ctx *sc, int i) {
    const floe_output *in;
    const floe__attr_value *v;

    if (sc == NULL || i < 0 || i >= sc->node->ninputs)
        return NULL;
    in = &sc->node->inputs[i];
    if (strcmp(in->node->op->name, "Const") != 0)
        return NULL;
    v = floe__attrs_find(&in->node->attrs, "value");
    if (v == NULL || v->type != FLOE_ATTR_TENSOR || v->u.tensor == NULL)
        return NULL;
    if (v->u.tensor->dtype != sc->node->in_dtypes[i])
        return NULL;
    return v->u.tensor;
}

floe_status floe__shape_set_output(floe_shape_ctx *sc, int i, const floe_shape *s) {
    floe_shape c;

    if (sc == NULL || s == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "shape_set_output: NULL argument");
    if (i < 0 || i >= sc->node->noutputs)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "shape function set output %d but the node has %d", i,
                          sc->node->noutputs);
    if (s->ndim < -1 || s->ndim > FLOE_MAX_DIMS)
        return floe__fail(FLOE_INVALID_ARGUMENT, "shape function set output %d to rank %d", i,
                          (int)s->ndim);
    memset(&c, 0, sizeof(c));
    c.ndim = s->ndim;
    for (int d = 0; d < s->ndim; d++) {
        if (s->dims[d] < -1)
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "shape function set output %d dimension %d to %lld", i, d,
                              (long long)s->dims[d]);
        c.dims[d] = s->dims[d];
    }
    sc->out_shapes[i] = c;
    return FLOE_OK;
}
