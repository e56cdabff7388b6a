/*
 * bench_logdir.c - the cost of fit's TensorBoard log (floe_fit_options.logdir) on the
 * training of `floe train`: the seed MLP (or CNN) on Fashion-MNIST with the test set as
 * validation data, as `floe train --logdir` runs it, with and without a log directory.
 *
 *   bench_logdir [mlp|cnn] [EPOCHS] [ROUNDS]      (defaults: mlp 3 2)
 *
 * Each round trains a fresh model (same seed) once without and once with a logdir (in a
 * temporary directory).  An epoch's wall time is taken between the end of the previous
 * epoch (or fit's start) and the epoch's on_epoch_end callback, so it holds the
 * training steps, the validation pass and, with a logdir, the logging (scalars, weight
 * histograms, flush); the first epoch also holds the graph.  Prints the median epoch
 * wall time and CPU time (all threads; steadier on a shared machine) of each
 * configuration over the epochs after the first, their ratio and the difference per
 * epoch, and the first epochs apart; then the writer's own costs: a histogram as large as
 * the model's weights, and a scalar plus flush.
 */
#include "bench_common.h"

#include <floe/data.h>
#include <floe/keras.h>
#include <floe/summary.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EPOCHS 64
#define MAX_ROUNDS 16

typedef struct timing {
    double last, last_cpu, epoch[MAX_EPOCHS], cpu[MAX_EPOCHS];
} timing;

/* CPU seconds of the process (all threads): steadier than wall time on a busy machine. */
static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static floe_status on_epoch(void *arg, floe_model *m, const floe_epoch_logs *logs) {
    timing *t = arg;
    double now = bench_now_s(), cpu = cpu_now_s();
    (void)m;
    if (logs->epoch <= MAX_EPOCHS) {
        t->epoch[logs->epoch - 1] = now - t->last;
        t->cpu[logs->epoch - 1] = cpu - t->last_cpu;
    }
    t->last = now;
    t->last_cpu = cpu;
    return FLOE_OK;
}

static floe_model *build(floe_context *ctx, const char *kind) {
    floe_model *m = NULL;
    int cnn = strcmp(kind, "cnn") == 0;
    int64_t in[3] = {28, 28, 1};
    if (floe_model_new(ctx, in, cnn ? 3 : 2, &m) != FLOE_OK) {
        fprintf(stderr, "bench_logdir: model: %s\n", floe_keras_last_error());
        exit(1);
    }
    if (cnn) {
        floe_model_add(m, floe_layer_conv2d(32, 5, 1, "same", "relu"));
        floe_model_add(m, floe_layer_max_pool2d(2, 2, "same"));
        floe_model_add(m, floe_layer_conv2d(64, 5, 1, "same", "relu"));
        floe_model_add(m, floe_layer_max_pool2d(2, 2, "same"));
    }
    floe_model_add(m, floe_layer_flatten());
    floe_model_add(m, floe_layer_dense(cnn ? 1024 : 128, "relu"));
    floe_model_add(m, floe_layer_dense(10, "softmax"));
    if (floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy") !=
        FLOE_OK) {
        fprintf(stderr, "bench_logdir: compile: %s\n", floe_keras_last_error());
        exit(1);
    }
    return m;
}

/* One fit; the epoch times into @t. */
static void run(floe_context *ctx, const char *kind, int epochs, const floe_dataset *train,
                const floe_dataset *test, const char *logdir, timing *t) {
    floe_model *m = build(ctx, kind);
    floe_fit_options o;

    floe_fit_options_init(&o);
    o.epochs = epochs;
    o.verbose = 0;
    o.logdir = logdir;
    o.on_epoch_end = on_epoch;
    o.arg = t;
    t->last = bench_now_s();
    t->last_cpu = cpu_now_s();
    if (floe_model_fit(m, train, test, &o, NULL) != FLOE_OK) {
        fprintf(stderr, "bench_logdir: fit: %s\n", floe_keras_last_error());
        exit(1);
    }
    floe_model_free(m);
}

/* The writer's own costs, in CPU time: a histogram of @n values, a scalar plus flush
 * (the flush's fsync wait is wall time, printed apart). */
static void writer_costs(floe_context *ctx, const char *dir, size_t n) {
    floe_summary_writer *w = NULL;
    double *x = malloc(n * sizeof(double));
    const int reps = 20;

    if (x == NULL || floe_summary_writer_new(ctx, dir, -1, &w) != FLOE_OK) {
        fprintf(stderr, "bench_logdir: writer: %s\n", floe_last_error());
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        x[i] = sin((double)i) * 0.05;
    double c0 = cpu_now_s();
    for (int r = 0; r < reps; r++)
        bench_check(floe_summary_histogram_f64(w, "w", x, n, r), "histogram");
    double c1 = cpu_now_s(), t1 = bench_now_s();
    for (int r = 0; r < reps; r++) {
        bench_check(floe_summary_scalar(w, "s", r, r), "scalar");
        bench_check(floe_summary_flush(w), "flush");
    }
    double c2 = cpu_now_s(), t2 = bench_now_s();
    printf("  writer: histogram of %zu values %.2f ms CPU; scalar + flush %.3f ms CPU, "
           "%.2f ms wall (fsync)\n", n, (c1 - c0) / reps * 1e3, (c2 - c1) / reps * 1e3,
           (t2 - t1) / reps * 1e3);
    floe_summary_writer_close(w);
    free(x);
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "mlp";
    int epochs = argc > 2 ? atoi(argv[2]) : 3, rounds = argc > 3 ? atoi(argv[3]) : 2;
    double off[MAX_EPOCHS * MAX_ROUNDS], on[MAX_EPOCHS * MAX_ROUNDS], first[2] = {0, 0};
    double coff[MAX_EPOCHS * MAX_ROUNDS], con[MAX_EPOCHS * MAX_ROUNDS];
    int n = 0;
    floe_dataset *train = NULL, *test = NULL;
    char dir[64] = "/tmp/floe-bench-logdir-XXXXXX", cmd[128];

    if (epochs < 2 || epochs > MAX_EPOCHS || rounds < 1 || rounds > MAX_ROUNDS ||
        (strcmp(kind, "mlp") != 0 && strcmp(kind, "cnn") != 0)) {
        fprintf(stderr, "usage: bench_logdir [mlp|cnn] [EPOCHS 2..64] [ROUNDS 1..16]\n");
        return 2;
    }
    floe_context *ctx = bench_context();
    if (floe_dataset_load_fashion_mnist(NULL, 1, &train) != FLOE_OK ||
        floe_dataset_load_fashion_mnist(NULL, 0, &test) != FLOE_OK) {
        fprintf(stderr, "bench_logdir: %s\n", floe_keras_last_error());
        return 1;
    }
    if (mkdtemp(dir) == NULL)
        return 1;
    for (int r = 0; r < rounds; r++) {
        timing a, b;
        run(ctx, kind, epochs, train, test, NULL, &a);
        run(ctx, kind, epochs, train, test, dir, &b);
        first[0] += a.epoch[0] / rounds;
        first[1] += b.epoch[0] / rounds;
        for (int e = 1; e < epochs; e++, n++) {
            off[n] = a.epoch[e];
            on[n] = b.epoch[e];
            coff[n] = a.cpu[e];
            con[n] = b.cpu[e];
        }
    }
    double moff = bench_median(off, n), mon = bench_median(on, n);
    double mcoff = bench_median(coff, n), mcon = bench_median(con, n);
    printf("bench_logdir %s: %d rounds x %d epochs, validation on the test set\n", kind, rounds,
           epochs);
    printf("  epoch (median, epochs 2..%d): without logdir %.3f s, with %.3f s: ratio %.4f, "
           "+%.1f ms per epoch\n", epochs, moff, mon, mon / moff, (mon - moff) * 1e3);
    printf("  epoch CPU time (median, all threads): without %.3f s, with %.3f s: ratio %.4f, "
           "+%.1f ms per epoch\n", mcoff, mcon, mcon / mcoff, (mcon - mcoff) * 1e3);
    printf("  first epoch (mean; with the graph): without %.3f s, with %.3f s\n", first[0],
           first[1]);
    writer_costs(ctx, dir, strcmp(kind, "cnn") == 0 ? 3274634 : 101770);
    snprintf(cmd, sizeof(cmd), "du -sh '%s'; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;
    floe_dataset_free(train);
    floe_dataset_free(test);
    floe_context_free(ctx);
    return 0;
}
