/*
 * bench_common.h - helpers shared by Floe's benchmark programs (header only).
 *
 * A monotonic clock, medians, a context that loads the build tree's plugins, and graph
 * building shorthands that exit with floe_last_error() on failure: benchmarks stop at the
 * first error instead of timing a broken run.
 *
 * Plugins: FLOE_PLUGIN_PATH when set (and the system directory as usual); otherwise the
 * build tree's plugin directories (FLOE_BENCH_PLUGIN_PATH, compiled in by meson) with the
 * system directory off, so a benchmark run from the build tree measures the build tree.
 */
#ifndef FLOE_BENCH_COMMON_H
#define FLOE_BENCH_COMMON_H

#include <floe/floe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FLOE_BENCH_PLUGIN_PATH
#define FLOE_BENCH_PLUGIN_PATH ""
#endif

static inline double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of @n values (sorts @v in place). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static inline void bench_check(floe_status st, const char *what) {
    if (st != FLOE_OK) {
        fprintf(stderr, "benchmark: %s: %s: %s\n", what, floe_status_str(st), floe_last_error());
        exit(1);
    }
}

/* A context with the plugins described above; exits on failure. */
static inline floe_context *bench_context(void) {
    floe_context_options opts;
    floe_context *ctx = NULL;
    const char *env = getenv("FLOE_PLUGIN_PATH");

    floe_context_options_init(&opts);
    if (env == NULL || env[0] == '\0') {
        opts.plugin_path = FLOE_BENCH_PLUGIN_PATH;
        opts.system_plugins = 0;
    }
    bench_check(floe_context_new(&opts, &ctx), "floe_context_new");
    return ctx;
}

/* Number of plugins loaded (not rejected or skipped). */
static inline int bench_plugins_loaded(const floe_context *ctx) {
    int n = 0;
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info info;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        if (floe_context_plugin(ctx, i, &info) == FLOE_OK && info.loaded)
            n++;
    }
    return n;
}

static inline floe_node *bench_placeholder(floe_graph *g, const char *name, floe_dtype dt,
                                           const int64_t *shape, int ndim) {
    floe_node_builder *b;
    floe_node *n = NULL;
    bench_check(floe_node_builder_new(g, "Placeholder", name, &b), "Placeholder");
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, ndim);
    bench_check(floe_node_builder_finish(b, &n), "Placeholder");
    return n;
}

/* A Const node holding @value (the graph takes its own reference). */
static inline floe_node *bench_const(floe_graph *g, const char *name, floe_tensor *value) {
    floe_node_builder *b;
    floe_node *n = NULL;
    bench_check(floe_node_builder_new(g, "Const", name, &b), "Const");
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(value));
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", value);
    bench_check(floe_node_builder_finish(b, &n), "Const");
    return n;
}

/* A node of op @op over @nin inputs (output 0 of each), default attrs. */
static inline floe_node *bench_op(floe_graph *g, const char *op, floe_node *const *in, int nin) {
    floe_node_builder *b;
    floe_node *n = NULL;
    bench_check(floe_node_builder_new(g, op, NULL, &b), op);
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(b, floe_out(in[i], 0));
    bench_check(floe_node_builder_finish(b, &n), op);
    return n;
}

/* Fills @x with deterministic values in [-1, 1). */
static inline void bench_fill(float *x, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
    }
}

/* Peak and current resident set size of this process in kB, from /proc/self/status. */
static inline void bench_rss_kb(long *hwm, long *rss) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *hwm = *rss = -1;
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

#endif /* FLOE_BENCH_COMMON_H */
