/*
 * exec-impl.h - private structures of sessions, plans, the executor and resource
 * variables (session.c, placement.c, executor.c, variable.c, eager.c).
 *
 * A session owns, per graph node it ever ran, one kernel instance (placement decided
 * once, create() called once), a list of prepared plans and a resource manager.  A
 * plan is the static part of running one (feeds, fetches, targets) signature: the
 * pruned nodes in topological order and flat int arrays the executor walks without
 * string lookups or per-node allocation.  Everything a run writes lives in a separate
 * run state, so one plan can run on several threads at once.
 */
#ifndef FLOE_EXEC_IMPL_H
#define FLOE_EXEC_IMPL_H

#include "core-impl.h"

/* ---- variable.c ----------------------------------------------------------------- */

/* A resource variable: also the record a RESOURCE handle tensor points at.  Records
 * are created by the handle (resource_handle), made a live variable by
 * kernel_variable(create = 1), and freed with the session. */
struct floe_variable {
    pthread_rwlock_t lock;
    char *container;
    char *name;
    floe_dtype dtype;
    floe_shape shape;
    floe_tensor *value;             /* NULL: uninitialised */
    bool created;
    struct floe_session *session;
};

typedef struct floe__resource_mgr {
    pthread_mutex_t lock;
    floe_variable **by_name;        /* open addressing on container + name */
    floe_variable **by_ptr;         /* open addressing on the record pointer */
    int count, cap;                 /* cap: power of two, both tables */
} floe__resource_mgr;

floe_status floe__resource_mgr_init(floe__resource_mgr *rm);
void floe__resource_mgr_deinit(floe__resource_mgr *rm);

/* ---- session.c, placement.c ------------------------------------------------------- */

/* One kernel instance per (session, node): where the node runs and its state. */
typedef struct floe__kinst {
    floe_device *device;            /* NULL: not placed yet */
    const floe__kernel *kernel;
    void *state;
    bool created;                   /* create() ran (or there is none) */
} floe__kinst;

/* A small bump allocator: everything of a plan is freed at once. */
typedef struct floe__arena_chunk floe__arena_chunk;
typedef struct floe__arena {
    floe__arena_chunk *head;
} floe__arena;

void *floe__arena_alloc(floe__arena *a, size_t n);  /* zeroed, 16-byte aligned */
void floe__arena_free(floe__arena *a);

/* How one input of an exec node is read. */
typedef struct floe__exec_input {
    int slot;                       /* run slot holding the tensor */
    bool forward;                   /* sequential runs: last use, once, not fetched/fed */
    bool need_host;                 /* required memory is host memory (copy unless host) */
    floe_device *need;              /* required memory: node's device, NULL for host args */
} floe__exec_input;

typedef struct floe__exec_node {
    const floe_node *node;
    const floe__kernel *kernel;
    void *state;
    floe_device *device;
    int ninputs, noutputs;
    int in_base;                    /* first entry in the run's input array */
    int out_base;                   /* first slot of the outputs */
    floe__exec_input *in;           /* [ninputs] */
    floe_device **out_dev;          /* [noutputs]: NULL for host memory outputs */
    /* Sequential runs: slots dropped after this node (last uses of inputs, then
     * unused own outputs); the last ndead entries are the unused outputs. */
    int *release;
    int nrelease, ndead;
    int *succ;                      /* exec nodes waiting on this one, distinct */
    int nsucc;
} floe__exec_node;

struct floe__exec_run;

struct floe_plan {
    struct floe_session *session;
    struct floe_plan *next;         /* the session's list, newest first */
    /* Signature. */
    floe_output *feeds;
    int nfeeds;
    floe_output *fetches;
    int nfetches;
    floe_node **targets;
    int ntargets;
    uint64_t hash;
    /* Static schedule. */
    floe__exec_node *nodes;         /* topological order */
    int nnodes;
    int nslots;                     /* feeds first (slot i = feed i), then outputs */
    int total_inputs;
    int *fetch_slot;                /* [nfetches] */
    int *pending_init;              /* [nnodes] predecessors */
    int *uses_init;                 /* [nslots] consumers + fetches */
    int *roots;
    int nroots;
    bool branching;                 /* some node can make two ready, or two roots */
    /* Adaptive schedule of a branching plan: the first runs alternate the sequential and
     * the parallel schedule and time them; the faster one is kept (executor.c). */
    atomic_int sched_runs;          /* runs started while choosing */
    atomic_llong sched_ns[2];       /* summed wall time of timed runs: [0] seq, [1] par */
    atomic_int sched_choice;        /* 0: undecided, 1: sequential, 2: parallel */
    _Atomic(struct floe__exec_run *) cached;   /* a spare run state */
    floe__arena arena;
};

struct floe_session {
    floe_graph *graph;
    floe_context *ctx;
    floe_session_options opts;
    pthread_mutex_t lock;           /* preparing plans, kernel instances */
    /* Prepared plans, newest first: pushed under the lock, read without it (plans are
     * only freed with the session). */
    _Atomic(floe_plan *) plans;
    floe__kinst *kinst;             /* by node id */
    int nkinst;
    floe__resource_mgr resources;
};

/* Places every node of @nodes (ids, n) not yet placed, and creates their kernels.
 * The message names the node on failure. */
floe_status floe__place_nodes(struct floe_session *s, const int *nodes, int n);
/* Destroys every created kernel instance of @s. */
void floe__kinst_destroy_all(struct floe_session *s);

/* ---- executor.c ----------------------------------------------------------------- */

/* What a kernel sees of its node, in create() (en, in, out NULL) and in compute(). */
struct floe_kernel_ctx {
    struct floe_session *session;
    const floe_node *node;
    const floe__kernel *kernel;
    floe_device *device;
    floe_threadpool *pool;
    const floe__exec_node *en;      /* compute only */
    floe_tensor **in;               /* compute only: [ninputs], lent or owned (copies) */
    floe_tensor **out;              /* compute only: the node's output slots */
    floe_tensor **slots;            /* compute only: the run's slots */
    bool parallel;                  /* inputs are references the context owns */
};

floe_status floe__plan_execute(floe_plan *p, floe_tensor *const *feed_values,
                               floe_tensor **fetch_values);
void floe__plan_free_runs(floe_plan *p);
/* Calls a kernel's create() for node @n on @dev. */
floe_status floe__kernel_create(struct floe_session *s, const floe_node *n, floe_device *dev,
                                const floe__kernel *k, void **state);

#endif /* FLOE_EXEC_IMPL_H */
