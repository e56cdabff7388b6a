/*
 * floe/graph.h - attribute sets, dataflow graphs and node construction.
 *
 * A graph is built node by node through a floe_node_builder (TensorFlow's
 * TF_OperationDescription).  floe_node_builder_finish() checks the node against its
 * op definition (input count and dtypes, attrs, defaults) and runs the op's shape
 * function, so a wrong graph fails when it is built, with a message naming the node.
 * Nodes belong to their graph and die with it.
 *
 * Thread safety: a graph may be read (sessions, getters) from many threads at once,
 * but adding nodes must not race with any other use of the same graph.
 */
#ifndef FLOE_GRAPH_H
#define FLOE_GRAPH_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Attribute sets ------------------------------------------------------------- */


/* A standalone attribute set, used for eager calls.  (transfer full) */
FLOE_API floe_status floe_attrs_new(floe_attrs **out);
FLOE_API void floe_attrs_free(floe_attrs *a);                 /* NULL-safe */

/*
 * Setters: each replaces any earlier value of @name.  Strings, lists and shapes are
 * copied; tensors are referenced.  Return FLOE_INVALID_ARGUMENT for a NULL or empty
 * name, a bad shape, or a list length < 0; FLOE_RESOURCE_EXHAUSTED when out of memory.
 * A shape with ndim -1 is "unknown rank"; extents of -1 are unknown.
 */
FLOE_API floe_status floe_attrs_set_int(floe_attrs *a, const char *name, int64_t v);
FLOE_API floe_status floe_attrs_set_float(floe_attrs *a, const char *name, float v);
FLOE_API floe_status floe_attrs_set_bool(floe_attrs *a, const char *name, int v);
FLOE_API floe_status floe_attrs_set_string(floe_attrs *a, const char *name, const void *s,
                                           size_t len);
FLOE_API floe_status floe_attrs_set_type(floe_attrs *a, const char *name, floe_dtype v);
FLOE_API floe_status floe_attrs_set_shape(floe_attrs *a, const char *name, const int64_t *dims,
                                          int ndim);
FLOE_API floe_status floe_attrs_set_tensor(floe_attrs *a, const char *name, floe_tensor *t);
FLOE_API floe_status floe_attrs_set_int_list(floe_attrs *a, const char *name, const int64_t *v,
                                             int n);
FLOE_API floe_status floe_attrs_set_float_list(floe_attrs *a, const char *name, const float *v,
                                               int n);
FLOE_API floe_status floe_attrs_set_bool_list(floe_attrs *a, const char *name, const int *v,
                                              int n);
FLOE_API floe_status floe_attrs_set_type_list(floe_attrs *a, const char *name,
                                              const floe_dtype *v, int n);
FLOE_API floe_status floe_attrs_set_string_list(floe_attrs *a, const char *name,
                                                const char *const *v, const size_t *lens, int n);
FLOE_API floe_status floe_attrs_set_shape_list(floe_attrs *a, const char *name,
                                               const floe_shape *v, int n);
FLOE_API floe_status floe_attrs_set_tensor_list(floe_attrs *a, const char *name,
                                                floe_tensor *const *v, int n);

/*
 * Getters: FLOE_NOT_FOUND if @name is absent, FLOE_INVALID_ARGUMENT if it holds
 * another type (the message names both).  Pointers returned are lent (transfer none)
 * and valid until the attribute is set again or the set is freed.
 */
FLOE_API floe_attr_type floe_attrs_type(const floe_attrs *a, const char *name);
FLOE_API floe_status floe_attrs_get_int(const floe_attrs *a, const char *name, int64_t *v);
FLOE_API floe_status floe_attrs_get_float(const floe_attrs *a, const char *name, float *v);
FLOE_API floe_status floe_attrs_get_bool(const floe_attrs *a, const char *name, int *v);
FLOE_API floe_status floe_attrs_get_string(const floe_attrs *a, const char *name,
                                           const char **s, size_t *len);
FLOE_API floe_status floe_attrs_get_type(const floe_attrs *a, const char *name, floe_dtype *v);
FLOE_API floe_status floe_attrs_get_shape(const floe_attrs *a, const char *name, floe_shape *v);
FLOE_API floe_status floe_attrs_get_tensor(const floe_attrs *a, const char *name,
                                           floe_tensor **v);
FLOE_API floe_status floe_attrs_get_int_list(const floe_attrs *a, const char *name,
                                             const int64_t **v, int *n);
FLOE_API floe_status floe_attrs_get_float_list(const floe_attrs *a, const char *name,
                                               const float **v, int *n);
FLOE_API floe_status floe_attrs_get_type_list(const floe_attrs *a, const char *name,
                                              const floe_dtype **v, int *n);
FLOE_API floe_status floe_attrs_get_bool_list(const floe_attrs *a, const char *name,
                                              const int **v, int *n);
/* Items are lent (data, size) pairs; each data is NUL-terminated as well. */
FLOE_API floe_status floe_attrs_get_string_list(const floe_attrs *a, const char *name,
                                                const floe_tstring **v, int *n);
FLOE_API floe_status floe_attrs_get_shape_list(const floe_attrs *a, const char *name,
                                               const floe_shape **v, int *n);
/* The tensors are lent: floe_tensor_ref() one to keep it. */
FLOE_API floe_status floe_attrs_get_tensor_list(const floe_attrs *a, const char *name,
                                                floe_tensor *const **v, int *n);
/* Number of attributes and the name of the @i-th (insertion order), for iteration. */
FLOE_API int floe_attrs_count(const floe_attrs *a);
FLOE_API const char *floe_attrs_name(const floe_attrs *a, int i);

/* ---- Graphs ---------------------------------------------------------------------- */

/* A new empty graph whose ops resolve against @ctx's registry.  @ctx must outlive it.
 * (transfer full) */
FLOE_API floe_status floe_graph_new(floe_context *ctx, floe_graph **out);
FLOE_API void floe_graph_free(floe_graph *g);                  /* NULL-safe */
FLOE_API floe_context *floe_graph_context(const floe_graph *g);
FLOE_API int floe_graph_num_nodes(const floe_graph *g);
/* The @i-th node in insertion (hence topological) order; NULL when out of range. */
FLOE_API floe_node *floe_graph_node(const floe_graph *g, int i);
/* The node called @name, or NULL. (transfer none) */
FLOE_API floe_node *floe_graph_find(const floe_graph *g, const char *name);

/* ---- Building a node ------------------------------------------------------------- */

typedef struct floe_node_builder floe_node_builder;

/*
 * floe_node_builder_new: starts a node running op @op_type.
 * @name: unique in the graph; NULL picks "<op>_<n>".
 * Errors are kept in the builder and reported by floe_node_builder_finish(), so
 * setters can be chained without checking each one.
 */
FLOE_API floe_status floe_node_builder_new(floe_graph *g, const char *op_type, const char *name,
                                           floe_node_builder **out);
/* Inputs in op-definition order.  A list argument ("N * T") takes one call to
 * add_input_list with all its members. */
FLOE_API void floe_node_builder_add_input(floe_node_builder *b, floe_output in);
FLOE_API void floe_node_builder_add_input_list(floe_node_builder *b, const floe_output *in, int n);
FLOE_API void floe_node_builder_add_control_input(floe_node_builder *b, floe_node *dep);
/* Device constraint in TensorFlow's form: "/job:J/replica:R/task:T/device:TYPE:N",
 * any part may be omitted ("/device:CPU:0", "/cpu:0", "GPU:1").  Checked at finish. */
FLOE_API void floe_node_builder_set_device(floe_node_builder *b, const char *spec);
/* The builder's attribute set, to fill with floe_attrs_set_*(). (transfer none) */
FLOE_API floe_attrs *floe_node_builder_attrs(floe_node_builder *b);

/*
 * floe_node_builder_finish: validates and adds the node; frees @b in every case.
 * @out: (out) (transfer none) (nullable): the node, owned by the graph.
 * Returns the first error met while building, FLOE_NOT_FOUND for an unknown op,
 * FLOE_INVALID_ARGUMENT for inputs or attrs that do not fit the op definition or a
 * failing shape function; the message starts with "node 'NAME' (OP): ".
 */
FLOE_API floe_status floe_node_builder_finish(floe_node_builder *b, floe_node **out);
/* Abandons a builder.  NULL-safe. */
FLOE_API void floe_node_builder_free(floe_node_builder *b);

/* ---- Reading a node (all transfer none, valid while the graph lives) ----------------- */

FLOE_API const char *floe_node_name(const floe_node *n);
FLOE_API const char *floe_node_op(const floe_node *n);
FLOE_API const char *floe_node_device(const floe_node *n);     /* requested; "" if none */
FLOE_API const floe_attrs *floe_node_attrs(const floe_node *n);
FLOE_API int floe_node_num_inputs(const floe_node *n);
FLOE_API floe_output floe_node_input(const floe_node *n, int i);
FLOE_API int floe_node_num_control_inputs(const floe_node *n);
FLOE_API floe_node *floe_node_control_input(const floe_node *n, int i);
FLOE_API int floe_node_num_outputs(const floe_node *n);
FLOE_API floe_dtype floe_node_output_dtype(const floe_node *n, int i);
/* Inferred static shape of output @i (ndim -1 when unknown). */
FLOE_API floe_shape floe_node_output_shape(const floe_node *n, int i);

/* Shorthand for (floe_output){node, index}. */
static inline floe_output floe_out(floe_node *node, int index) {
    floe_output o;
    o.node = node;
    o.index = index;
    o.reserved_ = 0;
    return o;
}

#ifdef __cplusplus
}
#endif
#endif /* FLOE_GRAPH_H */
