/*
 * dist_harness.h - multi-process jobs on loopback for the distributed tests: parameter
 * servers and workers are forked children (the parent never starts gRPC, so forking is
 * safe), servers pick their ports (127.0.0.1:0) and report them through a pipe, every
 * wait is bounded, and every child is killed and reaped at the end, pass or fail.
 * TLS with a shared token, from a CA made by scripts/make-test-ca.sh.
 */
#ifndef DIST_HARNESS_H
#define DIST_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <floe/dist.h>
#include <floe/keras.h>

#define H_MAX 8

typedef struct harness {
    char ca[256];
    int nps, nworkers, sync;
    pid_t ps[H_MAX], worker[H_MAX];
    int ps_port[H_MAX];
    int result_fd[H_MAX];     /* read end of each worker's result pipe */
    int64_t steps;
    char cluster[1024];
    volatile int64_t *progress;   /* shared with the children: the highest global step */
    char ckpt[300];               /* the chief's checkpoint directory; "" for none */
} harness;

typedef struct worker_report {
    int status;               /* floe_status */
    floe_dist_result res;
    char error[200];
} worker_report;

static double h_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int h_make_ca(harness *h) {
    char cmd[700];
    const char *src = getenv("FLOE_SOURCE_ROOT");
    if (src == NULL || system("command -v openssl >/dev/null 2>&1") != 0)
        return -1;
    snprintf(h->ca, sizeof(h->ca), "/tmp/floe-dist-ca-XXXXXX");
    if (mkdtemp(h->ca) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "sh '%s/scripts/make-test-ca.sh' '%s'", src, h->ca);
    return system(cmd) == 0 ? 0 : -1;
}

static void h_options(const harness *h, floe_dist_options *d, char paths[3][300]) {
    floe_dist_options_init(d);
    snprintf(paths[0], 300, "%s/ca.pem", h->ca);
    snprintf(paths[1], 300, "%s/server.pem", h->ca);
    snprintf(paths[2], 300, "%s/server.key", h->ca);
    d->tls_ca = paths[0];
    d->tls_cert = paths[1];
    d->tls_key = paths[2];
    d->token = "dist-test-token";
    d->rpc_timeout_ms = 3000;
}

/* Child: a parameter server on @port (0: any); reports its port on @fd; lives <= 90 s. */
static void h_ps_main(const harness *h, int port, int fd) {
    floe_context *ctx;
    floe_dist_options d;
    floe_ps_options p;
    floe_ps *ps;
    char paths[3][300], addr[64];
    int got;

    h_options(h, &d, paths);
    floe_ps_options_init(&p);
    p.num_workers = h->nworkers;
    p.sync = h->sync;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    if (floe_context_new(NULL, &ctx) != FLOE_OK || floe_ps_start(ctx, addr, &d, &p, &ps) != FLOE_OK) {
        fprintf(stderr, "ps: %s\n", floe_last_error());
        _exit(3);
    }
    got = floe_ps_port(ps);
    if (write(fd, &got, sizeof(got)) != sizeof(got))
        _exit(4);
    close(fd);
    sleep(90);   /* killed by the parent long before */
    _exit(0);
}

static int h_start_ps(harness *h, int i, int port) {
    int fds[2], got = -1;
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    h->ps[i] = fork();
    if (h->ps[i] == 0) {
        close(fds[0]);
        h_ps_main(h, port, fds[1]);
    }
    close(fds[1]);
    if (read(fds[0], &got, sizeof(got)) != sizeof(got))
        got = -1;
    close(fds[0]);
    h->ps_port[i] = got;
    return got > 0 ? 0 : -1;
}

static floe_status h_on_step(void *arg, int64_t global_step, double loss) {
    volatile int64_t *p = arg;
    (void)loss;
    if (global_step > *p)
        *p = global_step;
    return FLOE_OK;
}

/* Child: worker @task trains and writes a worker_report on @fd. */
static void h_worker_main(const harness *h, int task, int fd) {
    floe_context *ctx;
    floe_dist_options d;
    floe_dist_train_options o;
    floe_cluster *c = NULL;
    floe_dataset *train = NULL, *test = NULL;
    worker_report r;
    char paths[3][300];

    memset(&r, 0, sizeof(r));
    h_options(h, &d, paths);
    floe_dist_train_options_init(&o);
    o.task = task;
    o.steps = h->steps;
    o.batch_size = 64;
    o.on_step = h_on_step;
    o.checkpoint_dir = h->ckpt[0] ? h->ckpt : NULL;
    o.checkpoint_every = 50;
    o.on_step_arg = (void *)h->progress;
    r.status = floe_context_new(NULL, &ctx);
    if (r.status == FLOE_OK)
        r.status = floe_cluster_parse(h->cluster, &c);
    if (r.status == FLOE_OK)
        r.status = floe_dataset_load_fashion_mnist(NULL, 1, &train);
    if (r.status == FLOE_OK && task == 0)
        r.status = floe_dataset_load_fashion_mnist(NULL, 0, &test);
    if (r.status == FLOE_OK)
        r.status = floe_dist_train(ctx, c, &d, &o, train, test, &r.res);
    if (r.status != FLOE_OK)
        snprintf(r.error, sizeof(r.error), "%s%s", floe_last_error(), floe_keras_last_error());
    if (write(fd, &r, sizeof(r)) != sizeof(r))
        _exit(4);
    _exit(r.status == FLOE_OK ? 0 : 1);
}

static int h_start_worker(harness *h, int task) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    h->worker[task] = fork();
    if (h->worker[task] == 0) {
        close(fds[0]);
        h_worker_main(h, task, fds[1]);
    }
    close(fds[1]);
    h->result_fd[task] = fds[0];
    return h->worker[task] > 0 ? 0 : -1;
}

/* Waits (<= @timeout_s) until the job's global step reaches @step. */
static int h_wait_progress(const harness *h, int64_t step, double timeout_s) {
    double t0 = h_now();
    while (*h->progress < step && h_now() - t0 < timeout_s)
        usleep(5000);
    return *h->progress >= step ? 0 : -1;
}

static int h_start(harness *h) {
    int n;
    if (h->progress == NULL) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        h->progress = m;
    }
    *h->progress = 0;
    for (int i = 0; i < h->nps; i++)
        if (h_start_ps(h, i, 0) != 0)
            return -1;
    n = snprintf(h->cluster, sizeof(h->cluster), "ps=");
    for (int i = 0; i < h->nps; i++)
        n += snprintf(h->cluster + n, sizeof(h->cluster) - (size_t)n, "%s127.0.0.1:%d",
                      i ? "," : "", h->ps_port[i]);
    n += snprintf(h->cluster + n, sizeof(h->cluster) - (size_t)n, ";worker=");
    for (int i = 0; i < h->nworkers; i++)
        n += snprintf(h->cluster + n, sizeof(h->cluster) - (size_t)n, "%s127.0.0.1:%d",
                      i ? "," : "", 1 + i);   /* workers serve nothing: ports unused */
    for (int i = 0; i < h->nworkers; i++)
        if (h_start_worker(h, i) != 0)
            return -1;
    return 0;
}

static void h_kill(pid_t *pid) {
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* Waits (<= @timeout_s) for worker @task; reads its report.  0 when it reported. */
static int h_wait_worker(harness *h, int task, double timeout_s, worker_report *r) {
    double t0 = h_now();
    int status;
    memset(r, 0, sizeof(*r));
    r->status = -1;
    while (h_now() - t0 < timeout_s) {
        pid_t p = waitpid(h->worker[task], &status, WNOHANG);
        if (p == h->worker[task]) {
            h->worker[task] = 0;
            if (read(h->result_fd[task], r, sizeof(*r)) != sizeof(*r))
                r->status = -1;
            close(h->result_fd[task]);
            return r->status == -1 ? -1 : 0;
        }
        usleep(20000);
    }
    return -1;
}

static void h_cleanup(harness *h) {
    char cmd[300];
    for (int i = 0; i < h->nworkers; i++)
        h_kill(&h->worker[i]);
    for (int i = 0; i < h->nps; i++)
        h_kill(&h->ps[i]);
    if (h->ca[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->ca);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->ca);
    }
}

#endif
