/*
 * bench_executor.c - the executor's cost per node and per run, on tiny tensors.
 *
 * For a chain of N nodes (N = 1, 10, 100, 1000) over an f32 tensor of 4 elements,
 *     x -> AddV2(., c) -> AddV2(., c) -> ...      and      x -> Identity -> Identity -> ...
 * it prepares the plan once (floe_session_prepare) and times floe_plan_run (feed x, fetch
 * the last node, drop the result) many times after a warm-up.  The kernels do almost
 * nothing, so the time is the executor's: per node = (t(1000) - t(1)) / 999, and the fixed
 * cost of a run = t(1) - per node (what a run costs beyond its nodes).  It also
 * times floe_session_run (the plan looked up by signature) on the one-node chain.
 *
 * Targets (../shared/PERFORMANCE.md): <= 0.25 us per node, <= 5 us fixed per run.
 * Usage: bench_executor [--quick]
 */
#include "bench_common.h"

typedef struct chain {
    floe_graph *g;
    floe_session *s;
    floe_plan *plan;
    floe_node *x, *last;
} chain;

static void chain_build(floe_context *ctx, const char *op, int n, int inter_op, floe_tensor *c,
                        chain *ch) {
    const int64_t shape[1] = {4};
    floe_session_options so;
    floe_node *cn = NULL, *prev;

    bench_check(floe_graph_new(ctx, &ch->g), "floe_graph_new");
    ch->x = bench_placeholder(ch->g, "x", FLOE_DTYPE_F32, shape, 1);
    if (strcmp(op, "AddV2") == 0)
        cn = bench_const(ch->g, "c", c);
    prev = ch->x;
    for (int i = 0; i < n; i++) {
        floe_node *in[2] = {prev, cn};
        prev = bench_op(ch->g, op, in, cn != NULL ? 2 : 1);
    }
    ch->last = prev;
    floe_session_options_init(&so);
    so.inter_op_parallelism = inter_op;
    bench_check(floe_session_new(ch->g, &so, &ch->s), "floe_session_new");
    floe_output feed = floe_out(ch->x, 0), fetch = floe_out(ch->last, 0);
    bench_check(floe_session_prepare(ch->s, &feed, 1, &fetch, 1, NULL, 0, &ch->plan),
                "floe_session_prepare");
}

/* A fan: x feeds 8 independent AddV2 nodes whose results a chain of AddV2 sums, so the
 * plan branches (the executor may run the 8 on the pool). */
static void fan_build(floe_context *ctx, int inter_op, floe_tensor *c, chain *ch) {
    const int64_t shape[1] = {4};
    floe_session_options so;
    floe_node *cn, *branch[8], *acc;

    bench_check(floe_graph_new(ctx, &ch->g), "floe_graph_new");
    ch->x = bench_placeholder(ch->g, "x", FLOE_DTYPE_F32, shape, 1);
    cn = bench_const(ch->g, "c", c);
    for (int i = 0; i < 8; i++) {
        floe_node *in[2] = {ch->x, cn};
        branch[i] = bench_op(ch->g, "AddV2", in, 2);
    }
    acc = branch[0];
    for (int i = 1; i < 8; i++) {
        floe_node *in[2] = {acc, branch[i]};
        acc = bench_op(ch->g, "AddV2", in, 2);
    }
    ch->last = acc;
    floe_session_options_init(&so);
    so.inter_op_parallelism = inter_op;
    bench_check(floe_session_new(ch->g, &so, &ch->s), "floe_session_new");
    floe_output feed = floe_out(ch->x, 0), fetch = floe_out(ch->last, 0);
    bench_check(floe_session_prepare(ch->s, &feed, 1, &fetch, 1, NULL, 0, &ch->plan),
                "floe_session_prepare");
}

static void chain_free(chain *ch) {
    floe_session_free(ch->s);
    floe_graph_free(ch->g);
}

/* Median seconds per floe_plan_run over @samples samples of @iters runs each. */
static double time_plan(const chain *ch, floe_tensor *x, int iters, int samples) {
    double v[64];
    floe_tensor *y = NULL;

    for (int i = 0; i < iters / 4 + 10; i++) {
        bench_check(floe_plan_run(ch->plan, &x, &y), "floe_plan_run");
        floe_tensor_unref(y);
    }
    for (int s = 0; s < samples; s++) {
        double t0 = bench_now_s();
        for (int i = 0; i < iters; i++) {
            floe_status st = floe_plan_run(ch->plan, &x, &y);
            if (st != FLOE_OK)
                bench_check(st, "floe_plan_run (timed)");
            floe_tensor_unref(y);
        }
        v[s] = (bench_now_s() - t0) / iters;
    }
    return bench_median(v, samples);
}

/* The same through floe_session_run (signature lookup included). */
static double time_session(const chain *ch, floe_tensor *x, int iters, int samples) {
    double v[64];
    floe_tensor *y = NULL;
    floe_output feed = floe_out(ch->x, 0), fetch = floe_out(ch->last, 0);

    for (int s = 0; s < samples; s++) {
        double t0 = bench_now_s();
        for (int i = 0; i < iters; i++) {
            bench_check(floe_session_run(ch->s, &feed, &x, 1, &fetch, 1, NULL, 0, &y),
                        "floe_session_run");
            floe_tensor_unref(y);
        }
        v[s] = (bench_now_s() - t0) / iters;
    }
    return bench_median(v, samples);
}

int main(int argc, char **argv) {
    static const int sizes[] = {1, 10, 100, 1000};
    static const char *const ops[] = {"AddV2", "Identity"};
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int samples = quick ? 7 : 21;
    const int64_t shape[1] = {4};
    const float ones[4] = {1, 1, 1, 1};
    floe_context *ctx = bench_context();
    floe_tensor *x = NULL, *c = NULL;
    double worst_node = 0, worst_fixed = 0;

    bench_check(floe_tensor_new_copy(FLOE_DTYPE_F32, shape, 1, ones, sizeof(ones), &x), "x");
    bench_check(floe_tensor_new_copy(FLOE_DTYPE_F32, shape, 1, ones, sizeof(ones), &c), "c");
    printf("executor: chains of N nodes on f32[4], prepared plan, %d threads, median of %d\n",
           floe_context_num_threads(ctx), samples);

    for (int inter_op = 1; inter_op >= 0; inter_op--) {
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            double tt[4], fixed, per_node;
            printf("  %-8s inter_op=%d:", ops[o], inter_op);
            for (int k = 0; k < 4; k++) {
                chain ch;
                int iters = (quick ? 50000 : 200000) / sizes[k];
                memset(&ch, 0, sizeof(ch));
                chain_build(ctx, ops[o], sizes[k], inter_op, c, &ch);
                tt[k] = time_plan(&ch, x, iters < 20 ? 20 : iters, samples) * 1e6;
                printf("  N=%d %.2f us", sizes[k], tt[k]);
                if (k == 0 && inter_op == 1 && o == 0) {
                    double ts = time_session(&ch, x, quick ? 5000 : 20000, samples) * 1e6;
                    printf(" (session_run %.2f us)", ts);
                }
                chain_free(&ch);
            }
            per_node = (tt[3] - tt[0]) / (sizes[3] - sizes[0]);
            fixed = tt[0] - per_node;
            printf("\n  %-8s inter_op=%d: per node %.3f us, fixed %.2f us per run\n", ops[o],
                   inter_op, per_node, fixed);
            if (inter_op == 1) {
                worst_node = per_node > worst_node ? per_node : worst_node;
                worst_fixed = fixed > worst_fixed ? fixed : worst_fixed;
            }
        }
    }
    /* A branching plan of tiny nodes: the adaptive schedule (1) should settle on the
     * sequential one, which avoids a pool hand-off per branch. */
    printf("  fan of 8 tiny AddV2 + 7 to sum (15 nodes), per run:");
    for (int inter_op = 0; inter_op <= 2; inter_op++) {
        chain ch;
        memset(&ch, 0, sizeof(ch));
        fan_build(ctx, inter_op, c, &ch);
        double t = time_plan(&ch, x, quick ? 5000 : 20000, samples) * 1e6;
        printf("  inter_op=%d %.2f us", inter_op, t);
        chain_free(&ch);
    }
    printf("  (0 never, 1 adaptive default, 2 always)\n");
    printf("executor (default options): per node %.3f us (target <= 0.25) %s, fixed %.2f us "
           "(target <= 5) %s\n",
           worst_node, worst_node <= 0.25 ? "MET" : "MISSED", worst_fixed,
           worst_fixed <= 5 ? "MET" : "MISSED");

    floe_tensor_unref(x);
    floe_tensor_unref(c);
    floe_context_free(ctx);
    return 0;
}
