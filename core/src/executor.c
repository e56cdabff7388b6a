/*
 * executor.c - running a prepared plan, and the kernel context members of the host
 * table (inputs, outputs, attrs, device, thread pool).
 *
 * A run keeps its tensors in slots (one per feed and per node output, laid out by
 * session.c) inside a run state taken from the plan's one-element cache, so a run
 * allocates nothing but the tensors its kernels make, and several threads may run one
 * plan at once, each with its own state.
 *
 * Two schedules share the node step:
 *  - sequential, when the pool has one thread, inter-op parallelism is off or no node
 *    can make two others ready: nodes run in the plan's topological order on the
 *    calling thread, with no atomics but the tensors' refcounts and no locks; each
 *    slot is dropped right after its last consumer, as precomputed.
 *  - parallel: per-node pending counters and per-slot consumer counts, both atomic.
 *    The thread finishing a node keeps the first successor it made ready and submits
 *    the others to the context's pool; the caller runs too, then waits for the rest.
 * Forwarding (floe_kernel_forward_or_alloc) needs the executor to hold no reference
 * the kernel does not: sequentially the slot is the only reference and the node is
 * its last consumer; in parallel the kernel context holds a reference to each input
 * and drops the slot's when it is the last consumer, before compute.
 *
 * On failure the first failing node's status and message win ("node 'x' (Op): ..."),
 * nodes not yet started are skipped, the run waits for the ones in flight, and every
 * tensor is released; fetches stay NULL.
 *
 * Sections: run states; the node step; schedules; plan execution; kernel context.
 */
#include "exec-impl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- Run states ------------------------------------------------------------------ */

typedef struct exec_task {
    struct floe__exec_run *run;
    int node;
} exec_task;

typedef struct floe__exec_run {
    floe_plan *plan;
    floe_tensor **slots;         /* [nslots] */
    floe_tensor **inbuf;         /* [total_inputs] */
    atomic_int *pending;         /* [nnodes], parallel only */
    atomic_int *uses;            /* [nslots], parallel only */
    exec_task *tasks;            /* [nnodes] */
    atomic_int remaining;
    atomic_int failed;
    floe_status status;          /* under mu */
    char msg[1024];              /* the first failure's message, under mu */
    atomic_bool done;            /* set under mu by the thread finishing the last node */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} floe__exec_run;

static size_t align16(size_t n) {
    return (n + 15) & ~(size_t)15;
}

static void run_free(floe__exec_run *r) {
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    floe__free(r);
}

static floe__exec_run *run_new(floe_plan *p) {
    size_t off = align16(sizeof(floe__exec_run));
    size_t o_slots = off;
    size_t o_in = o_slots + align16(((size_t)p->nslots + 1) * sizeof(floe_tensor *));
    size_t o_pend = o_in + align16(((size_t)p->total_inputs + 1) * sizeof(floe_tensor *));
    size_t o_uses = o_pend + align16(((size_t)p->nnodes + 1) * sizeof(atomic_int));
    size_t o_tasks = o_uses + align16(((size_t)p->nslots + 1) * sizeof(atomic_int));
    size_t total = o_tasks + ((size_t)p->nnodes + 1) * sizeof(exec_task);
    unsigned char *mem = floe__calloc(1, total);
    floe__exec_run *r = (floe__exec_run *)mem;

    if (r == NULL)
        return NULL;
    r->plan = p;
    r->slots = (floe_tensor **)(mem + o_slots);
    r->inbuf = (floe_tensor **)(mem + o_in);
    r->pending = (atomic_int *)(mem + o_pend);
    r->uses = (atomic_int *)(mem + o_uses);
    r->tasks = (exec_task *)(mem + o_tasks);
    for (int k = 0; k < p->nnodes; k++) {
        r->tasks[k].run = r;
        r->tasks[k].node = k;
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        floe__free(r);
        return NULL;
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        floe__free(r);
        return NULL;
    }
    return r;
}

static floe__exec_run *run_get(floe_plan *p) {
    floe__exec_run *r = atomic_exchange_explicit(&p->cached, NULL, memory_order_acquire);
    return r != NULL ? r : run_new(p);
}

static void run_put(floe_plan *p, floe__exec_run *r) {
    floe__exec_run *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&p->cached, &expected, r, memory_order_release,
                                                 memory_order_relaxed))
        run_free(r);
}

void floe__plan_free_runs(floe_plan *p) {
    run_free(atomic_exchange(&p->cached, NULL));
}

/* ---- The node step ---------------------------------------------------------------- */

static inline floe_device *tensor_device(const floe_tensor *t) {
    return t->buf != NULL ? t->buf->device : NULL;
}

/* True when @t is not in the memory input @ei needs. */
static inline bool needs_copy(const floe_tensor *t, const floe__exec_input *ei) {
    floe_device *d = tensor_device(t);
    if (d == ei->need)
        return false;
    if (ei->need_host && (d == NULL || (d->flags & FLOE_DEVICE_HOST_MEMORY)))
        return false;
    return true;
}

static floe_status node_fail(const floe__exec_node *en, floe_status st) {
    if ((int)st <= 0 || (int)st > FLOE_UNAUTHENTICATED)
        st = floe__fail(FLOE_INTERNAL, "kernel %s/%s returned an invalid status %d",
                        en->node->op->name, en->kernel->device_type, (int)st);
    floe__error_prefix("node '%s' (%s): ", en->node->name, en->node->op->name);
    return st;
}

static floe_status check_outputs(const floe__exec_node *en, floe_tensor **out) {
    const floe_node *n = en->node;

    for (int i = 0; i < en->noutputs; i++) {
        const floe_tensor *t = out[i];
        if (t == NULL)
            return floe__fail(FLOE_INTERNAL, "kernel %s/%s did not set output %d", n->op->name,
                              en->kernel->device_type, i);
        if (t->dtype != n->out_dtypes[i])
            return floe__fail(FLOE_INTERNAL, "kernel %s/%s made output %d %s, expected %s",
                              n->op->name, en->kernel->device_type, i, floe_dtype_name(t->dtype),
                              floe_dtype_name(n->out_dtypes[i]));
    }
    return FLOE_OK;
}

/* Runs the kernel of @en on inputs already gathered in kc->in. */
static floe_status node_compute(floe_kernel_ctx *kc, const floe__exec_node *en,
                                floe_tensor **out) {
    floe_status st;

    kc->node = en->node;
    kc->kernel = en->kernel;
    kc->device = en->device;
    kc->en = en;
    kc->out = out;
    st = en->kernel->compute(kc, en->state);
    if (st == FLOE_OK)
        st = check_outputs(en, out);
    if (st != FLOE_OK)
        return node_fail(en, st);
    return FLOE_OK;
}

static floe_status copy_input(const floe__exec_node *en, int i, const floe_tensor *t,
                              floe_tensor **out) {
    floe_status st = floe__tensor_copy_to(t, en->in[i].need, out);
    if (st != FLOE_OK) {
        floe__error_prefix("copying input %d to %s: ", i,
                           en->in[i].need != NULL ? en->in[i].need->name : "host memory");
        return node_fail(en, st);
    }
    return FLOE_OK;
}

/* Sequential step: the slots keep their references; copies are owned here. */
static floe_status step_sequential(floe_kernel_ctx *kc, floe__exec_run *r,
                                   const floe__exec_node *en) {
    floe_tensor **in = r->inbuf + en->in_base;
    floe_tensor **slots = r->slots;
    int ncopies = 0, got = 0;
    floe_status st = FLOE_OK;

    for (; got < en->ninputs; got++) {
        floe_tensor *t = slots[en->in[got].slot];
        if (t == NULL) {
            st = node_fail(en, floe__fail(FLOE_INTERNAL, "input %d is missing", got));
            break;
        }
        if (needs_copy(t, &en->in[got])) {
            st = copy_input(en, got, t, &t);
            if (st != FLOE_OK)
                break;
            ncopies++;
        }
        in[got] = t;
    }
    if (st == FLOE_OK) {
        kc->in = in;
        st = node_compute(kc, en, slots + en->out_base);
    }
    if (ncopies > 0)
        for (int i = 0; i < got; i++)
            if (in[i] != slots[en->in[i].slot])
                floe_tensor_unref(in[i]);
    if (st != FLOE_OK)
        return st;
    for (int j = 0; j < en->nrelease; j++) {
        int s = en->release[j];
        floe_tensor_unref(slots[s]);
        slots[s] = NULL;
    }
    return FLOE_OK;
}

/* Parallel step: kc->in holds a reference per input; the last consumer of a slot
 * drops the slot's reference before compute. */
static floe_status step_parallel(floe_kernel_ctx *kc, floe__exec_run *r,
                                 const floe__exec_node *en) {
    floe_tensor **in = r->inbuf + en->in_base;
    floe_tensor **slots = r->slots;
    floe_status st = FLOE_OK;
    int got = 0;

    for (int i = 0; i < en->ninputs; i++) {
        int s = en->in[i].slot;
        floe_tensor *t = slots[s];
        if (t == NULL) {
            st = node_fail(en, floe__fail(FLOE_INTERNAL, "input %d is missing", i));
            break;
        }
        floe_tensor_ref(t);
        if (atomic_fetch_sub_explicit(&r->uses[s], 1, memory_order_acq_rel) == 1) {
            slots[s] = NULL;
            floe_tensor_unref(t);
        }
        if (needs_copy(t, &en->in[i])) {
            floe_tensor *c;
            st = copy_input(en, i, t, &c);
            floe_tensor_unref(t);
            if (st != FLOE_OK)
                break;
            t = c;
        }
        in[got++] = t;
    }
    if (st == FLOE_OK) {
        kc->in = in;
        st = node_compute(kc, en, slots + en->out_base);
    }
    for (int i = 0; i < got; i++)
        floe_tensor_unref(in[i]);
    for (int j = en->nrelease - en->ndead; j < en->nrelease; j++) {
        int s = en->release[j];
        floe_tensor_unref(slots[s]);
        slots[s] = NULL;
    }
    return st;
}

/* ---- Schedules -------------------------------------------------------------------- */

static void kc_init(floe_kernel_ctx *kc, floe__exec_run *r, bool parallel) {
    memset(kc, 0, sizeof(*kc));
    kc->session = r->plan->session;
    kc->pool = r->plan->session->ctx->pool;
    kc->slots = r->slots;
    kc->parallel = parallel;
}

static floe_status run_sequential(floe__exec_run *r) {
    const floe_plan *p = r->plan;
    floe_kernel_ctx kc;

    kc_init(&kc, r, false);
    for (int k = 0; k < p->nnodes; k++) {
        floe_status st = step_sequential(&kc, r, &p->nodes[k]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static void record_failure(floe__exec_run *r, floe_status st) {
    pthread_mutex_lock(&r->mu);
    if (r->status == FLOE_OK) {
        r->status = st;
        snprintf(r->msg, sizeof(r->msg), "%s", floe_last_error());
    }
    pthread_mutex_unlock(&r->mu);
    atomic_store_explicit(&r->failed, 1, memory_order_release);
}

static void run_task(void *arg);

#define SPIN_ITERS 4000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Nonzero on a thread running nodes for the pool: a run started there (a kernel running
 * a session) stays sequential, so it never waits for pool threads that may all be
 * waiting themselves. */
static _Thread_local int tl_in_task;

/* Runs node @k, then every node it makes ready that this thread keeps. */
static void process(floe__exec_run *r, int k) {
    const floe_plan *p = r->plan;
    floe_threadpool *pool = p->session->ctx->pool;
    floe_kernel_ctx kc;

    kc_init(&kc, r, true);
    while (k >= 0) {
        const floe__exec_node *en = &p->nodes[k];
        int next = -1;

        if (!atomic_load_explicit(&r->failed, memory_order_acquire)) {
            floe_status st = step_parallel(&kc, r, en);
            if (st != FLOE_OK)
                record_failure(r, st);
        }
        for (int j = 0; j < en->nsucc; j++) {
            int s = en->succ[j];
            if (atomic_fetch_sub_explicit(&r->pending[s], 1, memory_order_acq_rel) != 1)
                continue;
            if (next < 0)
                next = s;
            else
                floe__threadpool_submit(pool, run_task, &r->tasks[s]);
        }
        if (atomic_fetch_sub_explicit(&r->remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&r->mu);
            atomic_store_explicit(&r->done, true, memory_order_release);
            pthread_cond_signal(&r->cv);
            pthread_mutex_unlock(&r->mu);
        }
        k = next;
    }
}

static void run_task(void *arg) {
    exec_task *t = arg;
    tl_in_task++;
    process(t->run, t->node);
    tl_in_task--;
}

static floe_status run_parallel(floe__exec_run *r) {
    const floe_plan *p = r->plan;
    floe_threadpool *pool = p->session->ctx->pool;
    floe_status st;

    for (int k = 0; k < p->nnodes; k++)
        atomic_store_explicit(&r->pending[k], p->pending_init[k], memory_order_relaxed);
    for (int s = 0; s < p->nslots; s++)
        atomic_store_explicit(&r->uses[s], p->uses_init[s], memory_order_relaxed);
    atomic_store_explicit(&r->failed, 0, memory_order_relaxed);
    r->status = FLOE_OK;
    r->msg[0] = '\0';
    atomic_store_explicit(&r->done, false, memory_order_relaxed);
    atomic_store_explicit(&r->remaining, p->nnodes, memory_order_release);
    if (p->nnodes == 0)
        return FLOE_OK;
    for (int i = 1; i < p->nroots; i++)
        floe__threadpool_submit(pool, run_task, &r->tasks[p->roots[i]]);
    process(r, p->roots[0]);
    /* The last nodes usually finish within microseconds: spin before sleeping.  The
     * lock below still waits for the finishing thread to leave the run state. */
    for (int i = 0; i < SPIN_ITERS && !atomic_load_explicit(&r->done, memory_order_acquire); i++)
        cpu_relax();
    pthread_mutex_lock(&r->mu);
    while (!atomic_load_explicit(&r->done, memory_order_acquire))
        pthread_cond_wait(&r->cv, &r->mu);
    st = r->status;
    pthread_mutex_unlock(&r->mu);
    if (st != FLOE_OK)
        floe__fail(st, "%s", r->msg);
    return st;
}

/* ---- Plan execution ------------------------------------------------------------------ */

static void format_dims(const int64_t *dims, int ndim, char *buf, size_t len) {
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i > 0 ? ", " : "",
                                (long long)dims[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

static floe_status check_feeds(const floe_plan *p, floe_tensor *const *fv) {
    for (int i = 0; i < p->nfeeds; i++) {
        const floe_output *o = &p->feeds[i];
        const floe_tensor *t = fv[i];
        floe_dtype want = o->node->out_dtypes[o->index];
        const floe_shape *sh = &o->node->out_shapes[o->index];
        bool ok = true;

        if (t == NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT, "feed %d ('%s:%d') is NULL", i, o->node->name,
                              o->index);
        if (t->dtype != want)
            return floe__fail(FLOE_INVALID_ARGUMENT, "feed %d ('%s:%d') has dtype %s, expected %s",
                              i, o->node->name, o->index, floe_dtype_name(t->dtype),
                              floe_dtype_name(want));
        if (sh->ndim < 0)
            continue;
        ok = t->ndim == sh->ndim;
        for (int d = 0; ok && d < sh->ndim; d++)
            ok = sh->dims[d] < 0 || sh->dims[d] == t->dims[d];
        if (!ok) {
            char got[160], exp[160];
            format_dims(t->dims, t->ndim, got, sizeof(got));
            format_dims(sh->dims, sh->ndim, exp, sizeof(exp));
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "feed %d ('%s:%d') has shape %s, expected %s (-1: any)", i,
                              o->node->name, o->index, got, exp);
        }
    }
    return FLOE_OK;
}

/* ---- Choosing the schedule ---------------------------------------------------------
 *
 * Running independent nodes on the pool pays a wake-up per hand-off (tens of
 * microseconds), which tiny nodes never earn back; big branches (two convolutions) do.
 * Which wins depends on the kernels and the machine, so a branching plan measures:
 * after SCHED_WARMUP untimed runs, SCHED_TRIALS runs alternate the two schedules, and
 * the parallel one is kept only if it was at least 10% faster.  Only the schedule
 * changes: kernels and their inputs are the same, so results do not. */
#define SCHED_WARMUP 2
#define SCHED_TRIALS 8

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Keeps the parallel schedule only if its timed runs took under 90% of the sequential
 * ones'.  The first decision sticks. */
static void sched_decide(floe_plan *p) {
    int64_t seq = atomic_load_explicit(&p->sched_ns[0], memory_order_relaxed);
    int64_t par = atomic_load_explicit(&p->sched_ns[1], memory_order_relaxed);
    int expected = 0;
    atomic_compare_exchange_strong(&p->sched_choice, &expected, par * 10 < seq * 9 ? 2 : 1);
}

/* Sets *@parallel for this run; returns the trial number when the run is to be timed,
 * else -1. */
static int sched_pick(floe_plan *p, bool *parallel) {
    int choice = atomic_load_explicit(&p->sched_choice, memory_order_relaxed);
    if (choice != 0) {
        *parallel = choice == 2;
        return -1;
    }
    int n = atomic_fetch_add_explicit(&p->sched_runs, 1, memory_order_relaxed);
    if (n >= SCHED_WARMUP + SCHED_TRIALS) {
        /* Trials still in flight (or failed): decide on what was recorded. */
        sched_decide(p);
        *parallel = atomic_load_explicit(&p->sched_choice, memory_order_relaxed) != 1;
        return -1;
    }
    if (n < SCHED_WARMUP) {
        *parallel = true;
        return -1;
    }
    *parallel = ((n - SCHED_WARMUP) & 1) != 0;
    return n - SCHED_WARMUP;
}

static void sched_record(floe_plan *p, bool parallel, int64_t ns) {
    atomic_fetch_add_explicit(&p->sched_ns[parallel ? 1 : 0], ns, memory_order_relaxed);
    if (atomic_load_explicit(&p->sched_runs, memory_order_relaxed) >= SCHED_WARMUP + SCHED_TRIALS)
        sched_decide(p);
}

floe_status floe__plan_execute(floe_plan *p, floe_tensor *const *feed_values,
                               floe_tensor **fetch_values) {
    const floe_session *s = p->session;
    floe__exec_run *r;
    floe_status st;
    bool parallel;

    st = check_feeds(p, feed_values);
    if (st != FLOE_OK)
        return st;
    r = run_get(p);
    if (r == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    memset(r->slots, 0, (size_t)p->nslots * sizeof(*r->slots));
    for (int i = 0; i < p->nfeeds; i++)
        r->slots[i] = floe_tensor_ref(feed_values[i]);
    parallel = p->branching && s->opts.inter_op_parallelism && tl_in_task == 0 &&
               floe__threadpool_size(s->ctx->pool) > 1;
    if (parallel && s->opts.inter_op_parallelism == 1) {
        int timed = sched_pick(p, &parallel);
        int64_t t0 = timed >= 0 ? now_ns() : 0;
        st = parallel ? run_parallel(r) : run_sequential(r);
        if (timed >= 0 && st == FLOE_OK)
            sched_record(p, parallel, now_ns() - t0);
    } else {
        st = parallel ? run_parallel(r) : run_sequential(r);
    }
    if (st == FLOE_OK)
        for (int i = 0; i < p->nfetches; i++)
            fetch_values[i] = floe_tensor_ref(r->slots[p->fetch_slot[i]]);
    for (int i = 0; i < p->nslots; i++)
        if (r->slots[i] != NULL) {
            floe_tensor_unref(r->slots[i]);
            r->slots[i] = NULL;
        }
    run_put(p, r);
    return st;
}

/* ---- Kernel context ---------------------------------------------------------------- */

floe_status floe__kernel_create(struct floe_session *s, const floe_node *n, floe_device *dev,
                                const floe__kernel *k, void **state) {
    floe_kernel_ctx kc;
    floe_status st;

    *state = NULL;
    if (k->create == NULL)
        return FLOE_OK;
    memset(&kc, 0, sizeof(kc));
    kc.session = s;
    kc.node = n;
    kc.kernel = k;
    kc.device = dev;
    kc.pool = s->ctx->pool;
    st = k->create(&kc, state);
    if (st == FLOE_OK)
        return FLOE_OK;
    *state = NULL;
    if ((int)st < 0 || (int)st > FLOE_UNAUTHENTICATED)
        st = floe__fail(FLOE_INTERNAL, "kernel %s/%s create() returned an invalid status %d",
                        n->op->name, k->device_type, (int)st);
    return st;
}

const floe_attrs *floe__kernel_attrs(const floe_kernel_ctx *kc) {
    return kc != NULL ? &kc->node->attrs : NULL;
}

const char *floe__kernel_node_name(const floe_kernel_ctx *kc) {
    return kc != NULL ? kc->node->name : NULL;
}

int floe__kernel_num_inputs(const floe_kernel_ctx *kc) {
    return kc != NULL ? kc->node->ninputs : 0;
}

int floe__kernel_num_outputs(const floe_kernel_ctx *kc) {
    return kc != NULL ? kc->node->noutputs : 0;
}

floe_dtype floe__kernel_input_dtype(const floe_kernel_ctx *kc, int i) {
    if (kc == NULL || i < 0 || i >= kc->node->ninputs)
        return FLOE_DTYPE_INVALID;
    return kc->node->in_dtypes[i];
}

floe_dtype floe__kernel_output_dtype(const floe_kernel_ctx *kc, int i) {
    if (kc == NULL || i < 0 || i >= kc->node->noutputs)
        return FLOE_DTYPE_INVALID;
    return kc->node->out_dtypes[i];
}

floe_shape floe__kernel_input_static_shape(const floe_kernel_ctx *kc, int i) {
    floe_shape s;

    if (kc == NULL || i < 0 || i >= kc->node->ninputs) {
        memset(&s, 0, sizeof(s));
        s.ndim = -1;
        return s;
    }
    return kc->node->inputs[i].node->out_shapes[kc->node->inputs[i].index];
}

floe_tensor *floe__kernel_input(const floe_kernel_ctx *kc, int i) {
    if (kc == NULL || kc->in == NULL || i < 0 || i >= kc->node->ninputs)
        return NULL;
    return kc->in[i];
}

static floe_status check_out_index(const floe_kernel_ctx *kc, int i, const char *what) {
    if (kc == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s: kernel context is NULL", what);
    if (kc->out == NULL)
        return floe__fail(FLOE_FAILED_PRECONDITION, "%s: only valid in compute()", what);
    if (i < 0 || i >= kc->node->noutputs)
        return floe__fail(FLOE_INVALID_ARGUMENT, "%s: output %d out of range (%d outputs)", what, i,
                          kc->node->noutputs);
    return FLOE_OK;
}

static void put_output(floe_kernel_ctx *kc, int i, floe_tensor *t) {
    floe_tensor *old = kc->out[i];
    kc->out[i] = t;
    floe_tensor_unref(old);
}

floe_status floe__kernel_alloc_output(floe_kernel_ctx *kc, int i, const int64_t *shape, int ndim,
                                      floe_tensor **out) {
    floe_tensor *t;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    st = check_out_index(kc, i, "alloc_output");
    if (st != FLOE_OK)
        return st;
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "alloc_output: out is NULL");
    st = floe__tensor_new_on(kc->en->out_dev[i], kc->node->out_dtypes[i], shape, ndim, &t);
    if (st != FLOE_OK)
        return st;
    put_output(kc, i, t);
    *out = t;
    return FLOE_OK;
}

/* True when kernel input @in may be overwritten: nothing but the kernel sees it. */
static bool forwardable(const floe_kernel_ctx *kc, int in, floe_device *out_dev) {
    const floe_tensor *t = kc->in[in];
    floe_device *d;

    if (t == NULL || t->buf == NULL || t->dtype == FLOE_DTYPE_STRING ||
        t->dtype == FLOE_DTYPE_RESOURCE)
        return false;
    if (!kc->parallel && !kc->en->in[in].forward && t == kc->slots[kc->en->in[in].slot])
        return false;
    d = tensor_device(t);
    if (d != out_dev && !(floe__device_is_host(d) && floe__device_is_host(out_dev)))
        return false;
    return floe__tensor_is_exclusive(t) != 0;
}

floe_status floe__kernel_forward_or_alloc(floe_kernel_ctx *kc, int in, int i,
                                          const int64_t *shape, int ndim, floe_tensor **out) {
    floe_tensor *t, *r;
    floe_dtype dt;
    int64_t ne;
    size_t nb;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    st = check_out_index(kc, i, "forward_or_alloc");
    if (st != FLOE_OK)
        return st;
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "forward_or_alloc: out is NULL");
    if (in < 0 || in >= kc->node->ninputs || !forwardable(kc, in, kc->en->out_dev[i]))
        return floe__kernel_alloc_output(kc, i, shape, ndim, out);
    t = kc->in[in];
    dt = kc->node->out_dtypes[i];
    st = floe__shape_check(dt, shape, ndim, &ne, &nb);
    if (st != FLOE_OK)
        return st;
    if (nb != t->nbytes || nb == 0)
        return floe__kernel_alloc_output(kc, i, shape, ndim, out);
    bool same = dt == t->dtype && ndim == t->ndim;
    for (int d = 0; same && d < ndim; d++)
        same = shape[d] == t->dims[d];
    if (same) {
        r = floe_tensor_ref(t);
    } else {
        st = floe__tensor_new_view(t->buf, dt, shape, ndim, &r);
        if (st != FLOE_OK)
            return st;
    }
    put_output(kc, i, r);
    *out = r;
    return FLOE_OK;
}

floe_status floe__kernel_set_output(floe_kernel_ctx *kc, int i, floe_tensor *t) {
    floe_status st = check_out_index(kc, i, "set_output");

    if (st != FLOE_OK)
        return st;
    if (t == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "set_output: tensor is NULL");
    if (t->dtype != kc->node->out_dtypes[i])
        return floe__fail(FLOE_INVALID_ARGUMENT, "set_output: output %d is %s, not %s", i,
                          floe_dtype_name(kc->node->out_dtypes[i]), floe_dtype_name(t->dtype));
    put_output(kc, i, floe_tensor_ref(t));
    return FLOE_OK;
}

floe_device *floe__kernel_device(const floe_kernel_ctx *kc) {
    return kc != NULL ? kc->device : NULL;
}

floe_threadpool *floe__kernel_threadpool(const floe_kernel_ctx *kc) {
    return kc != NULL ? kc->pool : NULL;
}
