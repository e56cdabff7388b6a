/*
 * floe/session.h - sessions, prepared plans and eager calls.
 *
 * A session runs the part of a graph that the requested fetches and targets need
 * (TensorFlow's Session.run).  The first run with a given (feeds, fetches, targets)
 * signature prepares a plan: pruning, placement on devices, cross-device copies,
 * kernel instantiation, a static schedule.  Later runs with the same signature reuse
 * it.  floe_session_prepare() hands the plan out for the lowest per-run cost.
 * Variables and other resources live in the session across runs.
 *
 * Thread safety: floe_session_run() and floe_plan_run() may be called from several
 * threads at once on the same session; the graph must not be changed meanwhile.
 */
#ifndef FLOE_SESSION_H
#define FLOE_SESSION_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct floe_session floe_session;
typedef struct floe_plan floe_plan;

/* Session options: initialise with floe_session_options_init() then set fields.
 * Fields are only ever appended; struct_size tells the library which are present. */
typedef struct floe_session_options {
    size_t struct_size;
    /* Log each node's device at prepare time (TensorFlow's log_device_placement). */
    int log_device_placement;
    /* Independent nodes on the context's thread pool: 0 never; 1 (default) when it
     * measures faster (the first runs of a plan time both schedules, then keep the
     * faster; results are the same either way); 2 always. */
    int inter_op_parallelism;
} floe_session_options;

FLOE_API void floe_session_options_init(floe_session_options *opts);

/* A session over @g, which must outlive it.  @opts may be NULL for defaults.
 * (transfer full) */
FLOE_API floe_status floe_session_new(floe_graph *g, const floe_session_options *opts,
                                      floe_session **out);
/* Frees the session, its plans and its resources (variables).  NULL-safe. */
FLOE_API void floe_session_free(floe_session *s);

/*
 * floe_session_run:
 * @feeds, @feed_values: @nfeeds outputs to replace and the tensors to use (transfer none).
 * @fetches:  @nfetches outputs to compute.
 * @targets:  @ntargets nodes to run for their side effects.
 * @fetch_values: (out) (array length=nfetches) (transfer full): host or device tensors
 *               (floe_tensor_to_host() makes a host copy); all NULL on failure.
 * Returns the first failing node's status; the message names the node.
 */
FLOE_API floe_status floe_session_run(floe_session *s,
                                      const floe_output *feeds, floe_tensor *const *feed_values,
                                      int nfeeds, const floe_output *fetches, int nfetches,
                                      floe_node *const *targets, int ntargets,
                                      floe_tensor **fetch_values);

/* Prepares (or finds) the plan for a signature.  (transfer none): the plan belongs to
 * the session and lives as long as it. */
FLOE_API floe_status floe_session_prepare(floe_session *s, const floe_output *feeds, int nfeeds,
                                          const floe_output *fetches, int nfetches,
                                          floe_node *const *targets, int ntargets,
                                          floe_plan **out);

/* Runs a prepared plan: @feed_values and @fetch_values in the order given to prepare. */
FLOE_API floe_status floe_plan_run(floe_plan *p, floe_tensor *const *feed_values,
                                   floe_tensor **fetch_values);

/* Number of nodes a plan executes, and the device chosen for each (for tests and
 * `floe` diagnostics).  (transfer none) */
FLOE_API int floe_plan_num_nodes(const floe_plan *p);
FLOE_API const char *floe_plan_node_name(const floe_plan *p, int i);
FLOE_API const char *floe_plan_node_device(const floe_plan *p, int i);

/* ---- Eager calls ----------------------------------------------------------------- */

/*
 * floe_eager_run: runs one op immediately on host tensors.
 * @device: (nullable) "CPU:0", "/device:GPU:0", ...; NULL picks as placement would.
 * @inputs: (transfer none) flattened inputs, lists expanded in place.
 * @attrs:  (nullable) attributes; type attrs the inputs determine may be omitted.
 * @outputs: (out) (array length=noutputs) (transfer full); @noutputs must equal the
 *           op's output count.
 * Each call builds, places and runs a one-node graph; use a session in loops.
 */
FLOE_API floe_status floe_eager_run(floe_context *ctx, const char *op_type, const char *device,
                                    floe_tensor *const *inputs, int ninputs,
                                    const floe_attrs *attrs, floe_tensor **outputs,
                                    int noutputs);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_SESSION_H */
