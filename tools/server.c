/*
 * server.c - `floe server` (a task of a distributed job: a parameter server, or a worker)
 * and `floe train --cluster` (a worker), through libfloe_dist (floe/dist.h).
 *
 *   floe server --cluster SPEC --job ps --task N [--async] [--optimizer adam|sgd]
 *               [--lr X] [--bind HOST:PORT] SECURITY
 *       serves the variables of the job until SIGINT or SIGTERM.
 *   floe server --cluster SPEC --job worker --task N [--async] [--steps N]
 *               [--batch-size N] [--placement partition|round_robin] [--data DIR]
 *               [--checkpoint DIR [--checkpoint-every N]] SECURITY
 *   floe train --cluster SPEC --task N ...   the same as --job worker
 *       trains the Fashion-MNIST MLP (Dense 128 relu, Dense 10) with the servers; the
 *       chief (task 0) prints the test accuracy.
 *   SECURITY: --tls-ca FILE --tls-cert FILE --tls-key FILE (TLS, the default),
 *       --token-file FILE or --mtls (authentication), or --insecure (loopback only);
 *       --timeout-ms N, the deadline of every RPC (default 10000).
 *   SPEC: "ps=HOST:PORT,...;worker=HOST:PORT,..." or @FILE.
 *
 * Exit status as the other commands: 0 success, 1 runtime error, 2 usage error.
 */
#include "server-cmd.h"

#include <floe/dist.h>
#include <floe/keras.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage[] =
    "usage: floe server --cluster SPEC --job ps|worker --task N [options]\n"
    "       floe train --cluster SPEC --task N [options]      (a worker)\n"
    "\n"
    "Runs one task of a distributed job (docs/distributed.md).  SPEC is\n"
    "\"ps=HOST:PORT,...;worker=HOST:PORT,...\" or @FILE with such lines.\n"
    "  --async                 asynchronous updates (default: synchronous)\n"
    "  ps:     --optimizer adam|sgd (adam)  --lr X (0.001)  --bind HOST:PORT (the task's)\n"
    "  worker: --steps N (1000)  --batch-size N (64)  --placement partition|round_robin\n"
    "          --data DIR (Fashion-MNIST)  --seed N\n"
    "          --checkpoint DIR --checkpoint-every N (100): the chief's checkpoints; a job\n"
    "          started again with the same DIR resumes from the newest\n"
    "Security (TLS and authentication are required unless --insecure):\n"
    "  --tls-ca FILE  --tls-cert FILE  --tls-key FILE  --token-file FILE  --mtls\n"
    "  --insecure (plaintext, loopback addresses only)  --timeout-ms N (10000)\n"
    "scripts/make-test-ca.sh DIR makes a test CA and certificates.\n";

typedef struct server_args {
    const char *cluster, *job, *optimizer, *bind, *placement, *data, *checkpoint;
    int64_t checkpoint_every;
    int task, async;
    double lr;
    int64_t steps, batch_size;
    uint64_t seed;
    floe_dist_options d;
} server_args;

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "floe: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

static int parse_ll(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || x < lo || x > hi)
        return 0;
    *v = x;
    return 1;
}

/* Options with a value; returns 1 when @opt was one of them and parsed. */
static int parse_valued(server_args *a, const char *opt, const char *val) {
    long long v;
    char *end;
    if (!strcmp(opt, "--cluster"))
        a->cluster = val;
    else if (!strcmp(opt, "--job"))
        a->job = val;
    else if (!strcmp(opt, "--task") && parse_ll(val, 0, 63, &v))
        a->task = (int)v;
    else if (!strcmp(opt, "--optimizer"))
        a->optimizer = val;
    else if (!strcmp(opt, "--lr") && (a->lr = strtod(val, &end)) > 0 && *end == '\0')
        ;
    else if (!strcmp(opt, "--bind"))
        a->bind = val;
    else if (!strcmp(opt, "--steps") && parse_ll(val, 0, INT64_MAX, &v))
        a->steps = v;
    else if (!strcmp(opt, "--batch-size") && parse_ll(val, 1, 4096, &v))
        a->batch_size = v;
    else if (!strcmp(opt, "--placement"))
        a->placement = val;
    else if (!strcmp(opt, "--data"))
        a->data = val;
    else if (!strcmp(opt, "--checkpoint"))
        a->checkpoint = val;
    else if (!strcmp(opt, "--checkpoint-every") && parse_ll(val, 1, INT64_MAX, &v))
        a->checkpoint_every = v;
    else if (!strcmp(opt, "--seed") && parse_ll(val, 0, INT64_MAX, &v))
        a->seed = (uint64_t)v;
    else if (!strcmp(opt, "--tls-ca"))
        a->d.tls_ca = val;
    else if (!strcmp(opt, "--tls-cert"))
        a->d.tls_cert = val;
    else if (!strcmp(opt, "--tls-key"))
        a->d.tls_key = val;
    else if (!strcmp(opt, "--token-file"))
        a->d.token_file = val;
    else if (!strcmp(opt, "--timeout-ms") && parse_ll(val, 100, 3600000, &v))
        a->d.rpc_timeout_ms = v;
    else
        return 0;
    return 1;
}

static int parse_args(int argc, char **argv, const char *job, server_args *a) {
    memset(a, 0, sizeof(*a));
    floe_dist_options_init(&a->d);
    a->job = job;
    a->task = -1;
    a->lr = 1e-3;
    a->steps = 1000;
    a->batch_size = 64;
    a->seed = 42;
    a->checkpoint_every = 100;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(opt, "--async"))
            a->async = 1;
        else if (!strcmp(opt, "--mtls"))
            a->d.mtls = 1;
        else if (!strcmp(opt, "--insecure"))
            a->d.insecure = 1;
        else if (i + 1 >= argc || !parse_valued(a, opt, argv[i + 1]))
            return usage_error("unknown option, missing or bad value: '%s'", opt);
        else
            i++;
    }
    if (a->cluster == NULL || a->job == NULL || a->task < 0)
        return usage_error("%s", "--cluster, --job and --task are required");
    if (strcmp(a->job, "ps") != 0 && strcmp(a->job, "worker") != 0)
        return usage_error("--job must be ps or worker, not '%s'", a->job);
    return -1;
}

static int fail(const char *what, floe_status st) {
    const char *msg = floe_last_error();
    if (msg[0] == '\0')
        msg = floe_keras_last_error();
    fprintf(stderr, "floe: %s: %s: %s\n", what, floe_status_str(st), msg);
    return EXIT_RUNTIME;
}

static int run_ps(floe_context *ctx, const server_args *a, const floe_cluster *c) {
    floe_ps_options p;
    floe_ps *ps;
    floe_status st;
    const char *addr = a->bind ? a->bind : floe_cluster_task(c, "ps", a->task);
    sigset_t set;
    int sig;

    if (addr == NULL)
        return usage_error("%s", "--task is not a ps task of the cluster");
    floe_ps_options_init(&p);
    p.num_workers = floe_cluster_num_tasks(c, "worker");
    p.sync = !a->async;
    p.optimizer = a->optimizer ? a->optimizer : "adam";
    p.learning_rate = a->lr;
    /* Signals go to sigwait below, not to gRPC's threads. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if ((st = floe_ps_start(ctx, addr, &a->d, &p, &ps)) != FLOE_OK)
        return fail("starting the parameter server", st);
    printf("ps %d serving on port %d (%s, %s, %d workers)\n", a->task, floe_ps_port(ps),
           p.sync ? "sync" : "async", p.optimizer, p.num_workers);
    fflush(stdout);
    sigwait(&set, &sig);
    printf("ps %d: stopping at step %lld\n", a->task, (long long)floe_ps_step(ps));
    floe_ps_stop(ps);
    return EXIT_OK;
}

static int run_worker(floe_context *ctx, const server_args *a, const floe_cluster *c) {
    floe_dist_train_options o;
    floe_dist_result r;
    floe_dataset *train = NULL, *test = NULL;
    floe_status st;
    int rc = EXIT_OK;

    floe_dist_train_options_init(&o);
    o.task = a->task;
    o.steps = a->steps;
    o.batch_size = a->batch_size;
    o.placement = a->placement;
    o.seed = a->seed;
    o.verbose = 1;
    o.out = stdout;
    o.checkpoint_dir = a->checkpoint;
    o.checkpoint_every = a->checkpoint_every;
    if ((st = floe_dataset_load_fashion_mnist_ctx(ctx, a->data, 1, &train)) != FLOE_OK ||
        (a->task == 0 && (st = floe_dataset_load_fashion_mnist_ctx(ctx, a->data, 0, &test)) != FLOE_OK)) {
        rc = fail("loading Fashion-MNIST", st);
        goto done;
    }
    if ((st = floe_dist_train(ctx, c, &a->d, &o, train, test, &r)) != FLOE_OK) {
        rc = fail("training", st);
        goto done;
    }
    printf("worker %d: %lld steps (global %lld) in %.1f s, %.1f steps/s, loss %.4f, "
           "%lld retried\n", a->task, (long long)r.steps, (long long)r.global_step,
           r.seconds, r.steps / (r.seconds > 0 ? r.seconds : 1), r.loss, (long long)r.retries);
    if (r.accuracy >= 0)
        printf("Test accuracy: %.4f\n", r.accuracy);
done:
    floe_dataset_free(train);
    floe_dataset_free(test);
    return rc;
}

static int run(const char *plugin_path, int no_system, int argc, char **argv, const char *job) {
    server_args a;
    floe_context_options opts;
    floe_context *ctx = NULL;
    floe_cluster *c = NULL;
    floe_status st;
    int rc = parse_args(argc, argv, job, &a);

    if (rc >= 0)
        return rc;
    if ((st = floe_cluster_parse(a.cluster, &c)) != FLOE_OK)
        return fail("--cluster", st);
    floe_context_options_init(&opts);
    opts.plugin_path = plugin_path;
    opts.system_plugins = !no_system;
    if ((st = floe_context_new(&opts, &ctx)) != FLOE_OK) {
        floe_cluster_free(c);
        return fail("creating a context", st);
    }
    rc = strcmp(a.job, "ps") == 0 ? run_ps(ctx, &a, c) : run_worker(ctx, &a, c);
    floe_context_free(ctx);
    floe_cluster_free(c);
    return rc;
}

int floe_tool_server(const char *plugin_path, int no_system, int argc, char **argv) {
    return run(plugin_path, no_system, argc, argv, NULL);
}

int floe_tool_dist_train(const char *plugin_path, int no_system, int argc, char **argv) {
    return run(plugin_path, no_system, argc, argv, "worker");
}
