/*
 * hello_graph.c - the first Floe program: build a graph, run it in a session, print it.
 *
 *     y = MatMul(x, w) + b        x: Placeholder [2, 3], w: Const [3, 2], b: Const [2]
 *
 * The ops come from the ops_math plugin and run on dev_cpu's CPU device; plugins are found
 * through FLOE_PLUGIN_PATH and the installed plugin directory.  The program checks the
 * result against a loop written here and exits 1 if they differ (scripts/main.sh runs it).
 */
#include <floe/floe.h>

#include <math.h>
#include <stdio.h>

/* Adds a Const node holding @value (the node keeps its own reference). */
static floe_status add_const(floe_graph *g, const char *name, floe_tensor *value,
                             floe_node **out) {
    floe_node_builder *b;
    floe_status st = floe_node_builder_new(g, "Const", name, &b);
    if (st != FLOE_OK)
        return st;
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(value));
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", value);
    return floe_node_builder_finish(b, out);
}

/* Adds a node running the two-input op @op on @x and @y. */
static floe_status add_binary(floe_graph *g, const char *op, floe_node *x, floe_node *y,
                              floe_node **out) {
    floe_node_builder *b;
    floe_status st = floe_node_builder_new(g, op, NULL, &b);
    if (st != FLOE_OK)
        return st;
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(y, 0));
    return floe_node_builder_finish(b, out);
}

int main(void) {
    static const float xv[6] = {1, 2, 3, 4, 5, 6};
    static const float wv[6] = {0.5f, -1, 0.25f, 2, -0.75f, 1};
    static const float bv[2] = {10, 20};
    const int64_t xs[2] = {2, 3}, ws[2] = {3, 2}, bs[1] = {2};
    floe_context *ctx = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL;
    floe_node *nx, *nw, *nb, *nm, *ny;
    floe_node_builder *pb;
    floe_status st;
    int rc = 1;

    /* Everything that can fail returns a status; floe_last_error() says why. */
    if ((st = floe_context_new(NULL, &ctx)) != FLOE_OK ||
        (st = floe_tensor_new_copy(FLOE_DTYPE_F32, xs, 2, xv, sizeof(xv), &x)) != FLOE_OK ||
        (st = floe_tensor_new_copy(FLOE_DTYPE_F32, ws, 2, wv, sizeof(wv), &w)) != FLOE_OK ||
        (st = floe_tensor_new_copy(FLOE_DTYPE_F32, bs, 1, bv, sizeof(bv), &b)) != FLOE_OK ||
        (st = floe_graph_new(ctx, &g)) != FLOE_OK)
        goto fail;

    if ((st = floe_node_builder_new(g, "Placeholder", "x", &pb)) != FLOE_OK)
        goto fail;
    floe_attrs_set_type(floe_node_builder_attrs(pb), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(pb), "shape", xs, 2);
    if ((st = floe_node_builder_finish(pb, &nx)) != FLOE_OK ||
        (st = add_const(g, "w", w, &nw)) != FLOE_OK || (st = add_const(g, "b", b, &nb)) != FLOE_OK ||
        (st = add_binary(g, "MatMul", nx, nw, &nm)) != FLOE_OK ||
        (st = add_binary(g, "AddV2", nm, nb, &ny)) != FLOE_OK)
        goto fail;

    /* Run: feed x, fetch y.  The first run prepares a plan that later runs reuse. */
    floe_output feed = floe_out(nx, 0), fetch = floe_out(ny, 0);
    if ((st = floe_session_new(g, NULL, &s)) != FLOE_OK ||
        (st = floe_session_run(s, &feed, &x, 1, &fetch, 1, NULL, 0, &y)) != FLOE_OK)
        goto fail;

    const float *yv = floe_tensor_data(y);
    rc = 0;
    printf("y = MatMul(x, w) + b =\n");
    for (int i = 0; i < 2; i++) {
        printf("  [");
        for (int j = 0; j < 2; j++) {
            float want = bv[j];
            for (int k = 0; k < 3; k++)
                want += xv[i * 3 + k] * wv[k * 2 + j];
            printf(" %8.3f", (double)yv[i * 2 + j]);
            if (fabsf(yv[i * 2 + j] - want) > 1e-4f * (1 + fabsf(want)))
                rc = 1;
        }
        printf(" ]\n");
    }
    printf("%s\n", rc == 0 ? "correct" : "WRONG: differs from the reference loop");

    /* The plan the run prepared (same signature: found, not rebuilt) and its placement. */
    floe_plan *plan;
    if ((st = floe_session_prepare(s, &feed, 1, &fetch, 1, NULL, 0, &plan)) != FLOE_OK)
        goto fail;
    for (int i = 0; i < floe_plan_num_nodes(plan); i++)
        printf("  node %-12s on %s\n", floe_plan_node_name(plan, i), floe_plan_node_device(plan, i));
    goto done;

fail:
    rc = 1;
    fprintf(stderr, "hello_graph: %s: %s\n", floe_status_str(st), floe_last_error());
done:
    floe_tensor_unref(y);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(x);
    floe_tensor_unref(w);
    floe_tensor_unref(b);
    floe_context_free(ctx);
    return rc;
}
