/*
 * floe/graphdef.h - TensorFlow GraphDef import and export.
 *
 * Floe reads and writes TensorFlow's GraphDef wire format (proto/graph.proto), so a
 * frozen graph exported by TensorFlow runs in Floe and a Floe graph loads in
 * tf.compat.v1.import_graph_def.  Import treats its bytes as untrusted: limits on node
 * count, attribute nesting and tensor bytes, cycle detection, and an error naming the
 * node for anything Floe cannot represent (an op no plugin registers, an unknown dtype).
 */
#ifndef FLOE_GRAPHDEF_H
#define FLOE_GRAPHDEF_H

#include <floe/io-api.h>
#include <floe/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Serializes @g as a GraphDef.  *@data (transfer full) is freed with free().
 */
FLOE_IO_API floe_status floe_graphdef_export(const floe_graph *g, void **data, size_t *size);

/*
 * Adds the nodes of the GraphDef in @data to @g.  On failure @g is unchanged.
 */
FLOE_IO_API floe_status floe_graphdef_import(floe_graph *g, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_GRAPHDEF_H */
