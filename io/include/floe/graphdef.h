/*
 * floe/graphdef.h - TensorFlow GraphDef import and export.
 *
 * Floe reads and writes TensorFlow's GraphDef wire format (proto/graph.proto), so a
 * frozen graph exported by TensorFlow runs in Floe and a Floe graph loads in
 * tf.compat.v1.import_graph_def.  Import treats its bytes as untrusted: limits on node
 * count, attribute nesting and tensor bytes, cycle detection, and an error naming the
 * node for anything Floe cannot represent (an op no plugin registers, an unknown dtype).
 *
 * What maps: node names, ops, data inputs ("node", "node:N"), control inputs
 * ("^node"), device strings and every attribute kind Floe has (int, float, bool,
 * string, type, shape, tensor and their lists).  What does not: function libraries,
 * "func" and "placeholder" attributes, and attributes the op definition lacks (an
 * error naming node and attribute), except TensorFlow's internal "_"-prefixed ones
 * ("_output_shapes", "_class"), the gradient hints "grad_a"/"grad_b" of MatMul and an
 * empty "explicit_paddings" (MaxPool's), which import drops when the op definition
 * lacks them because they do not change what a node computes.
 *
 * Errors: calls return a floe_status and leave the message in floe_last_error().
 * Thread safety: as for the graph (floe/graph.h): export reads, import writes.
 */
#ifndef FLOE_GRAPHDEF_H
#define FLOE_GRAPHDEF_H

#include <floe/io-api.h>
#include <floe/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Limits for untrusted GraphDefs.  Initialise with floe_graphdef_options_init(), then
 * set fields; fields are only appended and struct_size says which the caller knows.
 */
typedef struct floe_graphdef_options {
    size_t struct_size;
    /* Most nodes accepted (default 1,000,000). */
    int64_t max_nodes;
    /* Deepest nesting of messages below a NodeDef's attribute map (AttrValue ->
     * ListValue -> TensorProto -> TensorShapeProto -> Dim is 5; a "func" attribute
     * nests further).  Checked on the raw bytes before any decoding (default 16). */
    int max_attr_depth;
    /* Largest decoded constant tensor, in bytes (default 1 GiB).  A TensorProto may
     * describe a large tensor with one repeated value, so this bounds memory, not the
     * file size. */
    uint64_t max_tensor_bytes;
    /* Cap on the GraphDef's size in bytes and, separately, on the sum of all decoded
     * constant tensors (default 2 GiB, protobuf's own limit). */
    uint64_t max_total_bytes;
} floe_graphdef_options;

/* Fills @opts with the defaults above. */
FLOE_IO_API void floe_graphdef_options_init(floe_graphdef_options *opts);

/*
 * floe_graphdef_export: serializes @g as a GraphDef (versions.producer 2474, the
 * GraphDef version of TensorFlow 2.21).
 * @data: (out) (transfer full): freed with free(); NULL on failure.   @size: (out).
 * Returns FLOE_INVALID_ARGUMENT (NULL argument), FLOE_UNIMPLEMENTED for a value the
 * wire format cannot hold (a RESOURCE tensor in an attribute), the message naming node
 * and attribute, or FLOE_RESOURCE_EXHAUSTED.
 */
FLOE_IO_API floe_status floe_graphdef_export(const floe_graph *g, void **data, size_t *size);

/*
 * floe_graphdef_import: adds the nodes of the GraphDef in @data to @g, with the default
 * options.  See floe_graphdef_import_v2().
 */
FLOE_IO_API floe_status floe_graphdef_import(floe_graph *g, const void *data, size_t size);

/*
 * floe_graphdef_import_v2: adds the nodes of the GraphDef in @data (@size bytes,
 * untrusted) to @g.  Nodes may come in any order (they are added in a topological
 * order); inputs name nodes of the same GraphDef.  @opts may be NULL for the defaults.
 *
 * Returns FLOE_OK; FLOE_INVALID_ARGUMENT for malformed or truncated bytes, a limit
 * exceeded, a cycle, a name defined twice, an input naming no node or a
 * missing output, a tensor whose values do not fit its shape, an attribute Floe
 * cannot represent or that the op does not define; FLOE_NOT_FOUND for an op no plugin
 * registers ("node 'NAME': op 'OP' is not registered"); FLOE_ALREADY_EXISTS when @g
 * already has a node of one of the names; FLOE_UNIMPLEMENTED when an op
 * refuses a configuration Floe does not implement (strides in the batch dimension);
 * FLOE_RESOURCE_EXHAUSTED.
 * Messages name the node (and attribute) at fault.  On failure @g is unchanged (the
 * nodes are first built in a scratch graph; only running out of memory while adding
 * the checked nodes to @g can leave some of them behind).
 */
FLOE_IO_API floe_status floe_graphdef_import_v2(floe_graph *g, const void *data, size_t size,
                                                const floe_graphdef_options *opts);

/*
 * floe_graphdef_load: reads the GraphDef at @uri through the filesystem ABI
 * (floe/fs.h; any registered scheme) and imports it as floe_graphdef_import_v2()
 * does.  A file larger than opts->max_total_bytes is refused before it is read
 * (FLOE_OUT_OF_RANGE); a file that cannot be read gives the filesystem's status.
 */
FLOE_IO_API floe_status floe_graphdef_load(floe_graph *g, const char *uri,
                                           const floe_graphdef_options *opts);

/*
 * floe_graphdef_save: exports @g (floe_graphdef_export()) and writes it to @uri through
 * the filesystem ABI, atomically where the filesystem can.
 */
FLOE_IO_API floe_status floe_graphdef_save(const floe_graph *g, const char *uri);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_GRAPHDEF_H */
