/*
 * eager.c - floe_eager_run: one op, now, on given tensors.
 *
 * Each call builds a graph of one Placeholder per input (dtype and shape taken from
 * the tensor; the Placeholder op comes from the ops_math plugin) and the op's node,
 * then runs it once in a throwaway session with the placeholders fed, so an eager call
 * checks and places exactly as a graph would.  Inputs arrive flattened: list
 * arguments are regrouped by their length attr when given, or take whatever the
 * other arguments leave when only one list length is unknown.
 */
#include "exec-impl.h"

#include <stdio.h>
#include <string.h>

static floe_status add_placeholder(floe_graph *g, int i, const floe_tensor *t, floe_node **out) {
    floe_node_builder *b;
    char name[32];
    floe_status st;

    snprintf(name, sizeof(name), "input_%d", i);
    st = floe_node_builder_new(g, "Placeholder", name, &b);
    if (st != FLOE_OK)
        return st;
    st = floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", t->dtype);
    if (st == FLOE_OK)
        st = floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", t->dims, t->ndim);
    if (st != FLOE_OK) {
        floe_node_builder_free(b);
        return st;
    }
    return floe_node_builder_finish(b, out);
}

static floe_status build_eager_node(floe_graph *g, const floe__op_def *op, const char *device,
                                    floe_node **ph, const int *len, const floe_attrs *attrs,
                                    floe_node **out) {
    floe_node_builder *b;
    floe_status st;
    int pos = 0;

    st = floe_node_builder_new(g, op->name, op->name, &b);
    if (st != FLOE_OK)
        return st;
    if (attrs != NULL) {
        st = floe__attrs_copy(floe_node_builder_attrs(b), attrs);
        if (st != FLOE_OK) {
            floe_node_builder_free(b);
            return st;
        }
    }
    for (int a = 0; a < op->ninputs; a++) {
        const floe__arg_def *def = &op->inputs[a];
        floe_output list[64];
        floe_output *items = list;

        if (def->number_attr == NULL && def->type_list_attr == NULL) {
            floe_node_builder_add_input(b, floe_out(ph[pos++], 0));
            continue;
        }
        if (len[a] > (int)(sizeof(list) / sizeof(list[0]))) {
            items = floe__calloc((size_t)len[a], sizeof(*items));
            if (items == NULL) {
                floe_node_builder_free(b);
                return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
            }
        }
        for (int j = 0; j < len[a]; j++)
            items[j] = floe_out(ph[pos++], 0);
        floe_node_builder_add_input_list(b, items, len[a]);
        if (items != list)
            floe__free(items);
    }
    if (device != NULL)
        floe_node_builder_set_device(b, device);
    return floe_node_builder_finish(b, out);
}

/* Builds the graph and runs it; @outputs already NULL. */
static floe_status eager_in_graph(floe_graph *g, const floe__op_def *op, const char *device,
                                  floe_tensor *const *inputs, int ninputs, const int *len,
                                  const floe_attrs *attrs, floe_tensor **outputs, int noutputs,
                                  floe_node **ph, floe_output *feeds, floe_output *fetches) {
    floe_node *node;
    floe_session *s;
    floe_status st = FLOE_OK;

    for (int i = 0; i < ninputs && st == FLOE_OK; i++)
        st = add_placeholder(g, i, inputs[i], &ph[i]);
    if (st == FLOE_OK)
        st = build_eager_node(g, op, device, ph, len, attrs, &node);
    if (st != FLOE_OK)
        return st;
    if (node->noutputs != noutputs)
        return floe__fail(FLOE_INVALID_ARGUMENT, "node '%s' (%s): the op has %d outputs, %d asked",
                          node->name, op->name, node->noutputs, noutputs);
    for (int i = 0; i < ninputs; i++)
        feeds[i] = floe_out(ph[i], 0);
    for (int i = 0; i < noutputs; i++)
        fetches[i] = floe_out(node, i);
    st = floe_session_new(g, NULL, &s);
    if (st != FLOE_OK)
        return st;
    st = floe_session_run(s, feeds, inputs, ninputs, fetches, noutputs, &node,
                          noutputs == 0 ? 1 : 0, outputs);
    floe_session_free(s);
    return st;
}

floe_status floe_eager_run(floe_context *ctx, const char *op_type, const char *device,
                           floe_tensor *const *inputs, int ninputs, const floe_attrs *attrs,
                           floe_tensor **outputs, int noutputs) {
    const floe__op_def *op;
    floe_graph *g = NULL;
    floe_node **ph = NULL;
    floe_output *feeds = NULL, *fetches = NULL;
    int *len = NULL;
    floe_status st;

    if (outputs != NULL)
        for (int i = 0; i < noutputs; i++)
            outputs[i] = NULL;
    if (ctx == NULL || op_type == NULL || ninputs < 0 || noutputs < 0 ||
        (ninputs > 0 && inputs == NULL) || (noutputs > 0 && outputs == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_eager_run: bad arguments");
    for (int i = 0; i < ninputs; i++)
        if (inputs[i] == NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT, "floe_eager_run(%s): input %d is NULL",
                              op_type, i);
    op = floe__registry_find_op(ctx, op_type);
    if (op == NULL)
        return floe__fail(FLOE_NOT_FOUND, "floe_eager_run: unknown op '%s'", op_type);
    if (ninputs > 0 && floe__registry_find_op(ctx, "Placeholder") == NULL)
        return floe__fail(FLOE_FAILED_PRECONDITION,
                          "floe_eager_run(%s): needs the Placeholder op (ops_math plugin)", op_type);
    len = floe__calloc((size_t)op->ninputs + 1, sizeof(int));
    ph = floe__calloc((size_t)ninputs + 1, sizeof(*ph));
    feeds = floe__calloc((size_t)ninputs + 1, sizeof(*feeds));
    fetches = floe__calloc((size_t)noutputs + 1, sizeof(*fetches));
    if (len == NULL || ph == NULL || feeds == NULL || fetches == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    st = floe__op_group_inputs(op, attrs, ninputs, len);
    if (st == FLOE_OK)
        st = floe_graph_new(ctx, &g);
    if (st == FLOE_OK)
        st = eager_in_graph(g, op, device, inputs, ninputs, len, attrs, outputs, noutputs, ph,
                            feeds, fetches);
done:
    floe_graph_free(g);
    floe__free(len);
    floe__free(ph);
    floe__free(feeds);
    floe__free(fetches);
    return st;
}
