/*
 * bench_startup.c - time from process start to the first graph result, and memory.
 *
 * The parent notes the monotonic clock, then forks and execs this program with --child;
 * the child loads every plugin (floe_context_new), builds a small MLP forward pass
 *     y = Tanh(x W1 + b1) W2 + b2        x [32, 784], W1 [784, 128], W2 [128, 10]
 * runs it once through a session and reports, on a pipe, the clock at the result, its
 * peak and current resident set size (VmHWM, VmRSS from /proc/self/status), the time spent
 * in floe_context_new and the number of plugins loaded.  Start to result is measured from
 * the parent's clock before fork(), so it includes exec, the dynamic loader, libfloe and the
 * plugins.  Prints the median over the runs.
 *
 * Targets (../shared/PERFORMANCE.md): <= 20 ms to the first forward, <= 20 MB resident.
 * Usage: bench_startup [--quick]
 */
#include "bench_common.h"

#include <errno.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child_report {
    double t_result;     /* monotonic clock at the first result */
    double t_main;       /* seconds from main() to the result */
    double t_context;    /* seconds in floe_context_new */
    double t_build;      /* seconds building the graph and the session */
    double t_run;        /* seconds in the first floe_session_run */
    long hwm_kb, rss_kb;
    int plugins;
} child_report;

static floe_tensor *random_tensor(const int64_t *shape, int ndim, uint64_t seed, float scale) {
    floe_tensor *t = NULL;
    bench_check(floe_tensor_new(FLOE_DTYPE_F32, shape, ndim, &t), "tensor");
    float *d = floe_tensor_data(t);
    int64_t n = floe_tensor_num_elements(t);
    bench_fill(d, n, seed);
    for (int64_t i = 0; i < n; i++)
        d[i] *= scale;
    return t;
}

static int child_main(int fd) {
    double t_main = bench_now_s(), t_ctx, t_build, t_run;
    const int64_t xs[2] = {32, 784}, w1s[2] = {784, 128}, b1s[1] = {128}, w2s[2] = {128, 10},
                  b2s[1] = {10};
    floe_context *ctx = bench_context();
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_tensor *x, *w1, *b1, *w2, *b2, *y = NULL;
    child_report rep;

    t_ctx = bench_now_s() - t_main;
    x = random_tensor(xs, 2, 1, 1.0f);
    w1 = random_tensor(w1s, 2, 2, 0.05f);
    b1 = random_tensor(b1s, 1, 3, 0.1f);
    w2 = random_tensor(w2s, 2, 4, 0.1f);
    b2 = random_tensor(b2s, 1, 5, 0.1f);
    bench_check(floe_graph_new(ctx, &g), "floe_graph_new");
    floe_node *nx = bench_placeholder(g, "x", FLOE_DTYPE_F32, xs, 2);
    floe_node *in1[2] = {nx, bench_const(g, "w1", w1)};
    floe_node *in2[2] = {bench_op(g, "MatMul", in1, 2), bench_const(g, "b1", b1)};
    floe_node *h = bench_op(g, "AddV2", in2, 2);
    floe_node *in3[2] = {bench_op(g, "Tanh", &h, 1), bench_const(g, "w2", w2)};
    floe_node *in4[2] = {bench_op(g, "MatMul", in3, 2), bench_const(g, "b2", b2)};
    floe_node *ny = bench_op(g, "AddV2", in4, 2);
    bench_check(floe_session_new(g, NULL, &s), "floe_session_new");
    floe_output feed = floe_out(nx, 0), fetch = floe_out(ny, 0);
    t_build = bench_now_s();
    bench_check(floe_session_run(s, &feed, &x, 1, &fetch, 1, NULL, 0, &y), "floe_session_run");

    memset(&rep, 0, sizeof(rep));
    rep.t_result = bench_now_s();
    rep.t_main = rep.t_result - t_main;
    rep.t_context = t_ctx;
    t_run = rep.t_result - t_build;
    rep.t_build = t_build - t_main - t_ctx;
    rep.t_run = t_run;
    bench_rss_kb(&rep.hwm_kb, &rep.rss_kb);
    rep.plugins = bench_plugins_loaded(ctx);
    if (floe_tensor_num_elements(y) != 320 || !isfinite(((const float *)floe_tensor_data(y))[0])) {
        fprintf(stderr, "bench_startup: unexpected result\n");
        return 1;
    }
    if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        return 1;

    floe_tensor_unref(y);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(x);
    floe_tensor_unref(w1);
    floe_tensor_unref(b1);
    floe_tensor_unref(w2);
    floe_tensor_unref(b2);
    floe_context_free(ctx);
    return 0;
}

/* Runs one child; returns 0 and fills @rep and @t_start on success. */
static int run_child(child_report *rep, double *t_start) {
    int fds[2], status;
    char fdarg[16];
    pid_t pid;
    ssize_t got;

    if (pipe(fds) != 0)
        return -1;
    snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
    *t_start = bench_now_s();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        execl("/proc/self/exe", "bench_startup", "--child", fdarg, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    do
        got = read(fds[0], rep, sizeof(*rep));
    while (got < 0 && errno == EINTR);
    close(fds[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return got == (ssize_t)sizeof(*rep) ? 0 : -1;
}

int main(int argc, char **argv) {
    int quick, runs;
    double t_first[32], t_main[32], t_ctx[32], t_build[32], t_run[32];
    double hwm[32];
    long rss = 0, hwm_max = 0;
    int plugins = 0;

    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(atoi(argv[2]));
    quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    runs = quick ? 5 : 15;
    for (int i = 0; i < runs; i++) {
        child_report rep;
        double t0;
        if (run_child(&rep, &t0) != 0) {
            fprintf(stderr, "bench_startup: the child run failed\n");
            return 1;
        }
        t_first[i] = (rep.t_result - t0) * 1e3;
        t_main[i] = rep.t_main * 1e3;
        t_ctx[i] = rep.t_context * 1e3;
        t_build[i] = rep.t_build * 1e3;
        t_run[i] = rep.t_run * 1e3;
        hwm[i] = (double)rep.hwm_kb;
        hwm_max = rep.hwm_kb > hwm_max ? rep.hwm_kb : hwm_max;
        rss = rep.rss_kb;
        plugins = rep.plugins;
    }
    double med_first = bench_median(t_first, runs);
    double lo = t_first[0], hi = t_first[runs - 1];
    printf("startup: %d plugins loaded, median of %d runs\n", plugins, runs);
    printf("  process start to first MLP result: %.2f ms (%.2f..%.2f)\n", med_first, lo, hi);
    printf("  of which main() to result:         %.2f ms = floe_context_new %.2f + graph and "
           "session %.2f + first run %.2f\n",
           bench_median(t_main, runs), bench_median(t_ctx, runs), bench_median(t_build, runs),
           bench_median(t_run, runs));
    printf("  peak RSS (VmHWM) %.1f MB median (max %.1f), RSS at result %.1f MB\n",
           bench_median(hwm, runs) / 1024.0, hwm_max / 1024.0, rss / 1024.0);
    printf("startup: first result %.2f ms (target <= 20) %s, peak RSS %.1f MB (target <= 20) %s\n",
           med_first, med_first <= 20 ? "MET" : "MISSED", hwm_max / 1024.0,
           hwm_max <= 20 * 1024 ? "MET" : "MISSED");
    return 0;
}
