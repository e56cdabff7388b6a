/*
 * bench_matmul.c - MatMul through a session against oneDNN's dnnl_sgemm called directly.
 *
 * For n = 1024 and 2048: C = A * B with A, B f32 [n, n].  Floe runs a prepared plan
 * (Placeholder a, Placeholder b, MatMul) with floe_plan_run, result dropped each time as an
 * application would; the baseline is dnnl_sgemm on the same data in the same process, with
 * oneDNN's own threads (all cores), into a buffer allocated once.  Runs alternate in blocks
 * (Floe block, oneDNN block, three rounds) so drift hits both; each block starts with one
 * untimed run.  Prints GFLOP/s (median, min..max) of each and the ratio Floe / oneDNN, and
 * checks that both computed the same C.
 *
 * Target (../shared/PERFORMANCE.md): Floe >= 95% of dnnl_sgemm.
 * Usage: bench_matmul [--quick]
 */
#include "bench_common.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>

#define ROUNDS 3

typedef struct mm_case {
    int64_t n;
    floe_graph *g;
    floe_session *s;
    floe_plan *plan;
    floe_tensor *a, *b;
    float *c_ref;
} mm_case;

static void mm_setup(floe_context *ctx, mm_case *mc) {
    const int64_t shape[2] = {mc->n, mc->n};
    floe_node *na, *nb, *nm;

    bench_check(floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &mc->a), "a");
    bench_check(floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &mc->b), "b");
    bench_fill(floe_tensor_data(mc->a), mc->n * mc->n, 1);
    bench_fill(floe_tensor_data(mc->b), mc->n * mc->n, 2);
    mc->c_ref = aligned_alloc(64, (size_t)(mc->n * mc->n) * sizeof(float));
    if (mc->c_ref == NULL) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(1);
    }
    bench_check(floe_graph_new(ctx, &mc->g), "floe_graph_new");
    na = bench_placeholder(mc->g, "a", FLOE_DTYPE_F32, shape, 2);
    nb = bench_placeholder(mc->g, "b", FLOE_DTYPE_F32, shape, 2);
    floe_node *in[2] = {na, nb};
    nm = bench_op(mc->g, "MatMul", in, 2);
    bench_check(floe_session_new(mc->g, NULL, &mc->s), "floe_session_new");
    floe_output feeds[2] = {floe_out(na, 0), floe_out(nb, 0)}, fetch = floe_out(nm, 0);
    bench_check(floe_session_prepare(mc->s, feeds, 2, &fetch, 1, NULL, 0, &mc->plan), "prepare");
}

static void mm_teardown(mm_case *mc) {
    floe_session_free(mc->s);
    floe_graph_free(mc->g);
    floe_tensor_unref(mc->a);
    floe_tensor_unref(mc->b);
    free(mc->c_ref);
}

/* One Floe run; returns seconds.  With @keep, the result is returned in *@keep. */
static double run_floe(mm_case *mc, floe_tensor **keep) {
    floe_tensor *feeds[2] = {mc->a, mc->b}, *c = NULL;
    double t0 = bench_now_s();
    bench_check(floe_plan_run(mc->plan, feeds, &c), "floe_plan_run");
    if (keep != NULL)
        *keep = c;
    else
        floe_tensor_unref(c);
    return bench_now_s() - t0;
}

static double run_dnnl(mm_case *mc) {
    int64_t n = mc->n;
    double t0 = bench_now_s();
    dnnl_status_t st = dnnl_sgemm('N', 'N', n, n, n, 1.0f, floe_tensor_data(mc->a), n,
                                  floe_tensor_data(mc->b), n, 0.0f, mc->c_ref, n);
    if (st != dnnl_success) {
        fprintf(stderr, "bench_matmul: dnnl_sgemm failed (%d)\n", (int)st);
        exit(1);
    }
    return bench_now_s() - t0;
}

/* Largest |floe - dnnl| relative to the largest |dnnl|. */
static double mm_max_rel_diff(mm_case *mc) {
    floe_tensor *c = NULL;
    const float *x;
    double maxdiff = 0, maxref = 0;

    run_dnnl(mc);
    run_floe(mc, &c);
    x = floe_tensor_data(c);
    for (int64_t i = 0; i < mc->n * mc->n; i++) {
        double d = fabs((double)x[i] - (double)mc->c_ref[i]);
        maxdiff = d > maxdiff ? d : maxdiff;
        maxref = fabs((double)mc->c_ref[i]) > maxref ? fabs((double)mc->c_ref[i]) : maxref;
    }
    floe_tensor_unref(c);
    return maxref > 0 ? maxdiff / maxref : maxdiff;
}

static void summarise(const char *name, double flops, double *t, int n, double *median) {
    double lo, hi;
    *median = bench_median(t, n);
    lo = t[0];
    hi = t[n - 1];
    printf("    %-22s %7.1f GFLOP/s  (%.1f..%.1f, %.2f ms median)\n", name,
           flops / *median * 1e-9, flops / hi * 1e-9, flops / lo * 1e-9, *median * 1e3);
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    static const int64_t sizes[] = {1024, 2048};
    floe_context *ctx = bench_context();
    double worst = 1e9;

    printf("matmul: f32 [n,n] x [n,n], %d threads in Floe's pool; dnnl_sgemm with its own "
           "threads\n",
           floe_context_num_threads(ctx));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        mm_case mc;
        int reps = (sizes[i] <= 1024 ? 10 : 4) / (quick ? 2 : 1);
        double tf[ROUNDS * 10], td[ROUNDS * 10], mf, md, flops, diff;
        int nf = 0, nd = 0;

        memset(&mc, 0, sizeof(mc));
        mc.n = sizes[i];
        flops = 2.0 * (double)mc.n * (double)mc.n * (double)mc.n;
        mm_setup(ctx, &mc);
        diff = mm_max_rel_diff(&mc);
        for (int r = 0; r < ROUNDS; r++) {
            run_floe(&mc, NULL);
            for (int k = 0; k < reps; k++)
                tf[nf++] = run_floe(&mc, NULL);
            run_dnnl(&mc);
            for (int k = 0; k < reps; k++)
                td[nd++] = run_dnnl(&mc);
        }
        printf("  n = %lld (max relative difference %.1e)\n", (long long)mc.n, diff);
        summarise("Floe MatMul (plan)", flops, tf, nf, &mf);
        summarise("dnnl_sgemm direct", flops, td, nd, &md);
        printf("    ratio Floe / dnnl_sgemm: %.3f (target >= 0.95)\n", md / mf);
        if (md / mf < worst)
            worst = md / mf;
        if (diff > 1e-4) {
            fprintf(stderr, "bench_matmul: results differ (%.2e)\n", diff);
            return 1;
        }
        mm_teardown(&mc);
    }
    printf("matmul: worst ratio %.3f (target >= 0.95) %s\n", worst,
           worst >= 0.95 ? "MET" : "MISSED");
    floe_context_free(ctx);
    return 0;
}
