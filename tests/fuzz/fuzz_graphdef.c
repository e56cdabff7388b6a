/*
 * fuzz_graphdef.c - libFuzzer target for GraphDef import (io/src/graphdef.c: the wire
 * scan, protobuf-c decoding, tensor and attribute decoding, name resolution, the
 * topological order, node building against the ops of the loaded plugins).
 *
 * Input: the bytes of a GraphDef.  The context loads the plugins of FLOE_PLUGIN_PATH
 * (meson sets it for the replay test; scripts/fuzz.sh for libFuzzer runs), so real op
 * definitions check the nodes; without plugins every op is unknown and only the
 * decoding layers are reached.  Limits are lowered (10,000 nodes, 1 MiB per tensor,
 * 16 MiB in all) so that no input can make the target allocate gigabytes.
 *
 * Oracle: import returns OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS or
 * UNIMPLEMENTED (an op's shape function refusing a configuration Floe lacks, e.g.
 * depthwise strides in the batch dimension; corpus file depthwise_batch_stride.pb) with
 * a message, and a failed import leaves the graph empty.  After a success, the export
 * either works or refuses a value with UNIMPLEMENTED; a working export re-imports into a
 * fresh graph, and that graph exports to the same bytes (the round trip is lossless
 * for whatever import accepted).
 */
#include "fuzz_util.h"

#include <floe/floe.h>
#include <floe/graphdef.h>

static floe_context *ctx;

static void cleanup(void) {
    floe_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe_graphdef_options opts;
    floe_graph *g = NULL, *h = NULL;
    void *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0;

    if (ctx == NULL) {
        floe_context_options co;
        floe_context_options_init(&co);
        co.num_threads = 1;
        co.log_level = FLOE_LOG_NONE;
        if (floe_context_new(&co, &ctx) != FLOE_OK)
            return 0;
        atexit(cleanup);
    }
    floe_graphdef_options_init(&opts);
    opts.max_nodes = 10000;
    opts.max_tensor_bytes = 1 << 20;
    opts.max_total_bytes = 16 << 20;
    if (floe_graph_new(ctx, &g) != FLOE_OK)
        return 0;
    floe_status st = floe_graphdef_import_v2(g, data, size, &opts);
    if (fuzz_verbose())
        fprintf(stderr, "import: %d %s\n", st, st == FLOE_OK ? "" : floe_last_error());
    if (st != FLOE_OK) {
        FUZZ_CHECK(st == FLOE_INVALID_ARGUMENT || st == FLOE_NOT_FOUND ||
                   st == FLOE_ALREADY_EXISTS || st == FLOE_UNIMPLEMENTED ||
                   st == FLOE_RESOURCE_EXHAUSTED);
        FUZZ_CHECK(floe_last_error()[0] != '\0');
        FUZZ_CHECK(floe_graph_num_nodes(g) == 0);
        floe_graph_free(g);
        return 0;
    }
    st = floe_graphdef_export(g, &d1, &n1);
    if (st == FLOE_OK) {
        FUZZ_CHECK(floe_graph_new(ctx, &h) == FLOE_OK);
        st = floe_graphdef_import_v2(h, d1, n1, &opts);
        if (st != FLOE_OK)
            fprintf(stderr, "re-import failed: %s\n", floe_last_error());
        FUZZ_CHECK(st == FLOE_OK);
        FUZZ_CHECK(floe_graph_num_nodes(h) == floe_graph_num_nodes(g));
        FUZZ_CHECK(floe_graphdef_export(h, &d2, &n2) == FLOE_OK);
        FUZZ_CHECK(n1 == n2 && memcmp(d1, d2, n1) == 0);
    } else {
        FUZZ_CHECK(st == FLOE_UNIMPLEMENTED || st == FLOE_RESOURCE_EXHAUSTED);
    }
    free(d1);
    free(d2);
    floe_graph_free(h);
    floe_graph_free(g);
    return 0;
}
