/*
 * floe/dist.h - distributed training (libfloe_dist): cluster specs, parameter servers
 * and workers, over a transport plugin (floe/experimental/transport.h; "grpc" from
 * plugins/dist_grpc).  Experimental: may change in any release.
 *
 * A cluster has two jobs, "ps" (parameter servers) and "worker", each a list of task
 * addresses.  Parameter servers hold the model's variables and apply the optimizer;
 * workers pull the variables, compute gradients on their shard of the data, and push
 * them (between-graph replication).  Variables are placed on the servers round-robin,
 * or partitioned by size: a variable bigger than its share is split by rows across
 * every server, so no server carries the biggest layer alone.
 *
 * Synchronous mode: each server waits for the gradients of every worker for a step,
 * applies their mean once, then answers all of them; a worker that does not arrive
 * within the RPC deadline makes the step fail with FLOE_DEADLINE_EXCEEDED for the
 * others (they retry: nothing hangs).  Asynchronous mode: each push is applied at once.
 *
 *     floe_cluster *c;
 *     floe_cluster_parse("ps=127.0.0.1:2222,127.0.0.1:2223;"
 *                        "worker=127.0.0.1:2224,127.0.0.1:2225", &c);
 *     // on each ps task:      floe_ps_start(ctx, address, &dopts, &popts, &ps) ...
 *     // on each worker task:  floe_dist_train(ctx, c, &dopts, &topts, train, test, &res)
 *
 * Errors: calls return a floe_status; the message is floe_last_error().
 * Thread safety: one object must not be used by two threads at once, except
 * floe_ps_step() and floe_ps_stop(), which any thread may call.
 */
#ifndef FLOE_DIST_H
#define FLOE_DIST_H

#include <stdio.h>
#include <floe/floe.h>
#include <floe/data.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FLOE_DIST_API
#  ifdef FLOE_BUILDING_DIST
#    define FLOE_DIST_API FLOE_EXPORT_
#  else
#    define FLOE_DIST_API
#  endif
#endif

/* ---- Cluster specs ---------------------------------------------------------------- */

typedef struct floe_cluster floe_cluster;

/*
 * floe_cluster_parse: "ps=HOST:PORT,HOST:PORT;worker=HOST:PORT,..." (jobs separated by
 * ';' or newlines, so a file of "ps=..." and "worker=..." lines is the same), or
 * "@PATH" to read that from a file.  Both jobs need at least one task (64 at most);
 * lines starting with '#' are comments.  FLOE_INVALID_ARGUMENT names the bad part.
 * (transfer full)
 */
FLOE_DIST_API floe_status floe_cluster_parse(const char *spec, floe_cluster **out);
FLOE_DIST_API void floe_cluster_free(floe_cluster *c);   /* NULL-safe */
/* Number of tasks of @job ("ps" or "worker"); 0 for an unknown job. */
FLOE_DIST_API int floe_cluster_num_tasks(const floe_cluster *c, const char *job);
/* Address of task @task of @job (transfer none); NULL when out of range. */
FLOE_DIST_API const char *floe_cluster_task(const floe_cluster *c, const char *job, int task);

/* ---- Transport and security options ------------------------------------------------- */

typedef struct floe_dist_options {
    size_t struct_size;
    const char *transport;    /* default "grpc" */
    const char *tls_ca;       /* PEM files (plugins/dist_grpc/README.md) */
    const char *tls_cert;
    const char *tls_key;
    const char *token;        /* shared token, or: */
    const char *token_file;
    int mtls;                 /* 1: mutual TLS */
    int insecure;             /* 1: plaintext, loopback addresses only */
    int64_t rpc_timeout_ms;   /* deadline of every RPC; default 10000 */
} floe_dist_options;

FLOE_DIST_API void floe_dist_options_init(floe_dist_options *o);

/* ---- Parameter servers ---------------------------------------------------------------- */

typedef struct floe_ps floe_ps;

typedef struct floe_ps_options {
    size_t struct_size;
    int num_workers;          /* workers per synchronous step; default 1 */
    int sync;                 /* 1 (default): synchronous; 0: asynchronous */
    const char *optimizer;    /* "adam" (default, Keras defaults) or "sgd" */
    double learning_rate;     /* default 1e-3 */
} floe_ps_options;

FLOE_DIST_API void floe_ps_options_init(floe_ps_options *o);

/* Starts a parameter server listening on @address ("127.0.0.1:0" picks a port).
 * Variables arrive from the chief worker (Init); until then Pull answers
 * FLOE_UNAVAILABLE.  (transfer full) */
FLOE_DIST_API floe_status floe_ps_start(floe_context *ctx, const char *address,
                                        const floe_dist_options *dopts,
                                        const floe_ps_options *popts, floe_ps **out);
FLOE_DIST_API int floe_ps_port(const floe_ps *ps);
/* The server's global step (updates applied so far).  Thread-safe. */
FLOE_DIST_API int64_t floe_ps_step(floe_ps *ps);
/* Stops serving and frees @ps.  NULL-safe. */
FLOE_DIST_API void floe_ps_stop(floe_ps *ps);

/* ---- Workers ---------------------------------------------------------------------------- */

typedef struct floe_dist_train_options {
    size_t struct_size;
    int task;                 /* this worker's index in the "worker" job; 0 is the chief */
    const int64_t *hidden;    /* hidden layer widths of the MLP (ReLU); NULL: {128} */
    int num_hidden;
    int64_t batch_size;       /* default 64 */
    int64_t steps;            /* global steps to train; default 1000 */
    const char *placement;    /* "partition" (default) or "round_robin" */
    uint64_t seed;            /* initial weights and shuffling; default 42 */
    int verbose;              /* 1: a line every 100 steps to @out */
    FILE *out;                /* NULL: stderr */
    /* (nullable) called after each of this worker's steps with the servers' global step
     * and the batch loss; a non-OK return stops training with that status. */
    floe_status (*on_step)(void *arg, int64_t global_step, double loss);
    void *on_step_arg;
    /* (nullable) chief only: a checkpoint of every variable (floe/checkpoint.h, "ckpt-
     * <global step>.floeckpt", the newest 3 kept) every @checkpoint_every global steps
     * (default 100) and at the end, with the servers' Adam slots as "<var>/Adam" (m) and
     * "<var>/Adam_1" (v) when their optimizer is adam.  When the chief starts and the
     * directory holds one, the job starts from it: servers that hold no variables yet (a
     * new or restarted job) get the checkpoint's values, slots and step (a checkpoint
     * without slots: they start at zero).  A server restarted alone gets the chief's
     * newest values instead, losing at most one step, and the slots of its last
     * checkpoint. */
    const char *checkpoint_dir;
    int64_t checkpoint_every;
} floe_dist_train_options;

FLOE_DIST_API void floe_dist_train_options_init(floe_dist_train_options *o);

typedef struct floe_dist_result {
    int64_t steps;            /* this worker's steps */
    int64_t global_step;      /* the servers' step at the end */
    double loss;              /* mean training loss of this worker's last 100 steps */
    double accuracy;          /* on @test (chief only; -1 otherwise or without @test) */
    double seconds;
    int64_t retries;          /* steps retried after an RPC failed */
} floe_dist_result;

/*
 * floe_dist_train: trains a softmax classifier MLP (inputs flattened; the sparse
 * cross-entropy loss) on @train as worker @o->task of @c.  The chief (task 0) sends the
 * initial weights to the servers, unless they already hold some (a restarted worker
 * joins where the job is); the other workers wait for them.  Each worker reads the
 * examples i with i % num_workers == task.  Returns when the servers' global step
 * reaches @o->steps.  @test (nullable): the chief evaluates the final weights on it.
 * A failed RPC is retried (with the deadline as bound) until the job's progress stops
 * for 6 deadlines, then FLOE_UNAVAILABLE or FLOE_DEADLINE_EXCEEDED.
 */
FLOE_DIST_API floe_status floe_dist_train(floe_context *ctx, const floe_cluster *c,
                                          const floe_dist_options *dopts,
                                          const floe_dist_train_options *o,
                                          const floe_dataset *train, const floe_dataset *test,
                                          floe_dist_result *res);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_DIST_H */
