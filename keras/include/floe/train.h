/*
 * floe/train.h - training on graphs: resource-variable helpers, optimizers (SGD with
 * momentum, Adam, Adagrad, RMSProp, FTRL) and learning-rate schedules.
 *
 *     floe_train_var w;
 *     floe_train_var_new(g, "w", w_init, &w);             // VarHandleOp + Assign + Read
 *     ... loss built from floe_out(w.read, 0) ...
 *     floe_optimizer *opt;
 *     floe_optimizer_adam_new(1e-3f, 0.9f, 0.999f, 1e-7f, &opt);
 *     floe_node *train;
 *     floe_optimizer_minimize(opt, g, loss, &w, 1, &train);
 *     floe_node *init;
 *     floe_train_init_op(g, &init);                       // every variable's initialiser
 *     session: run init once, then run train every step.
 *
 * An optimizer builds, for each variable, one fused ResourceApply* node (ops_nn) that
 * updates the variable and its slots in place, reading the gradient that floe_gradients
 * (floe/gradients.h) adds to the graph.  Slots are ordinary resource variables named
 * "<var>/<Optimizer>/<slot>" ("w/Adam/m", "w/Adam/v"), created with their initialiser, so
 * checkpoints (floe/checkpoint.h) save and restore them like any variable.  The training
 * node returned is a NoOp whose control inputs are every apply node and the bookkeeping
 * updates that follow them: the global step's increment and, for Adam, beta1_power *=
 * beta1 and beta2_power *= beta2 (TensorFlow 1's AdamOptimizer, variables
 * "<Adam>/beta1_power", "<Adam>/beta2_power").
 *
 * Learning-rate schedules are computed in the graph from the global step variable
 * ("global_step", i64, created by the first minimize on a graph and incremented by one
 * by every training node), so a step costs no extra session run and a checkpoint that
 * restores the global step restores the schedule's position too:
 *   exponential decay  lr * decay_rate ^ (step / decay_steps)   (floor() when staircase)
 *   cosine decay       lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) /
 *                      decay_steps)) + alpha)
 * step is the global step's value BEFORE the update being computed (0 on the first).
 * floe_lr_schedule_value() computes the same numbers on the host.
 *
 * All nodes are built with libfloe's public API (node builders); the graph's context
 * must have ops_math and ops_nn loaded.  Errors: a failing call returns its status and
 * the message is floe_keras_last_error() (floe/keras.h).
 * Thread safety: building must not race with other uses of the graph; an optimizer
 * must not be used by two threads at once.
 */
#ifndef FLOE_TRAIN_H
#define FLOE_TRAIN_H

#include <floe/floe.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FLOE_KERAS_API
#  ifdef FLOE_BUILDING_KERAS
#    define FLOE_KERAS_API FLOE_EXPORT_
#  else
#    define FLOE_KERAS_API
#  endif
#endif

/* ---- Variables ---------------------------------------------------------------------- */

/* The three nodes of a resource variable (all transfer none, owned by the graph). */
typedef struct floe_train_var {
    floe_node *handle;   /* VarHandleOp named after the variable (shared_name = name) */
    floe_node *init;     /* AssignVariableOp "<name>/Assign" storing the initial value */
    floe_node *read;     /* ReadVariableOp "<name>/Read": use floe_out(read, 0) */
} floe_train_var;

/*
 * floe_train_var_new: a variable @name holding a copy of @initial (a host tensor of
 * any shape; dtype and shape become the variable's).  The initialiser is a Const.
 * Returns FLOE_INVALID_ARGUMENT for NULL arguments or a name taken in @g.  @out is
 * zeroed on failure.
 */
FLOE_KERAS_API floe_status floe_train_var_new(floe_graph *g, const char *name,
                                              floe_tensor *initial, floe_train_var *out);
/* Same, initialised from the graph output @value (for example a random op), of @dtype
 * and shape @shape (@ndim dims). */
FLOE_KERAS_API floe_status floe_train_var_new_from(floe_graph *g, const char *name,
                                                   floe_dtype dtype, const int64_t *shape,
                                                   int ndim, floe_output value,
                                                   floe_train_var *out);
/* Same, filled with @value (zeros, ones, ...) by a Fill-free Const. */
FLOE_KERAS_API floe_status floe_train_var_new_filled(floe_graph *g, const char *name,
                                                     floe_dtype dtype, const int64_t *shape,
                                                     int ndim, double value,
                                                     floe_train_var *out);

/*
 * floe_train_init_op: a NoOp "init" (or "init_1", ...) whose control inputs are the
 * initialisers of every variable built by floe_train_var_new* in @g so far (optimizer
 * slots included).  Run it once in a new session.  (transfer none)
 */
FLOE_KERAS_API floe_status floe_train_init_op(floe_graph *g, floe_node **out);

/* ---- Learning-rate schedules --------------------------------------------------------- */

typedef enum floe_lr_schedule_kind {
    FLOE_LR_CONSTANT = 0,
    FLOE_LR_EXPONENTIAL_DECAY = 1,
    FLOE_LR_COSINE_DECAY = 2
} floe_lr_schedule_kind;

typedef struct floe_lr_schedule {
    floe_lr_schedule_kind kind;
    double decay_steps;   /* > 0 for the decays */
    double decay_rate;    /* exponential: > 0 */
    int staircase;        /* exponential: floor(step / decay_steps) */
    double alpha;         /* cosine: the final fraction of the learning rate, in [0, 1] */
} floe_lr_schedule;

/* The learning rate at @step for base rate @lr (host computation, in double). */
FLOE_KERAS_API double floe_lr_schedule_value(const floe_lr_schedule *s, double lr,
                                             int64_t step);

/* ---- Optimizers --------------------------------------------------------------------- */

typedef struct floe_optimizer floe_optimizer;

/* SGD: momentum 0 uses ResourceApplyGradientDescent, otherwise ResourceApplyMomentum
 * (slot "momentum", with @nesterov).  lr > 0, momentum in [0, 1). (transfer full) */
FLOE_KERAS_API floe_status floe_optimizer_sgd_new(float lr, float momentum, int nesterov,
                                                  floe_optimizer **out);
/* Adam (slots "m", "v"; Keras defaults 1e-3, 0.9, 0.999, 1e-7). */
FLOE_KERAS_API floe_status floe_optimizer_adam_new(float lr, float beta1, float beta2,
                                                   float epsilon, floe_optimizer **out);
/* Adagrad (slot "accumulator" starting at @initial_accumulator, > 0; Keras: 0.1). */
FLOE_KERAS_API floe_status floe_optimizer_adagrad_new(float lr, float initial_accumulator,
                                                      floe_optimizer **out);
/* RMSProp (slots "rms", "momentum", and "mg" when @centered; Keras: 1e-3, 0.9, 0, 1e-7). */
FLOE_KERAS_API floe_status floe_optimizer_rmsprop_new(float lr, float rho, float momentum,
                                                      float epsilon, int centered,
                                                      floe_optimizer **out);
/* FTRL (slots "accumulator" at @initial_accumulator > 0, "linear"; lr_power <= 0,
 * l1, l2 >= 0; Keras: lr_power -0.5, initial 0.1, l1 0, l2 0). */
FLOE_KERAS_API floe_status floe_optimizer_ftrl_new(float lr, float lr_power,
                                                   float initial_accumulator, float l1,
                                                   float l2, floe_optimizer **out);
FLOE_KERAS_API void floe_optimizer_free(floe_optimizer *opt);   /* NULL-safe */

/* The optimizer's name: "SGD", "Momentum", "Adam", "Adagrad", "RMSProp", "Ftrl". */
FLOE_KERAS_API const char *floe_optimizer_name(const floe_optimizer *opt);

/* Sets the schedule of the learning rate (before minimize; a copy is kept).
 * FLOE_INVALID_ARGUMENT for bad parameters, FLOE_FAILED_PRECONDITION after minimize. */
FLOE_KERAS_API floe_status floe_optimizer_set_schedule(floe_optimizer *opt,
                                                       const floe_lr_schedule *s);

/*
 * floe_optimizer_apply_gradients: adds the updates of @vars (@n of them) by the
 * gradients @grads (same order; an entry with .node NULL leaves its variable alone)
 * to @g, creating slots on first use of each variable.  *@train_op (out, transfer
 * none): the NoOp running every update.  An optimizer serves one graph: another graph
 * gives FLOE_FAILED_PRECONDITION.
 */
FLOE_KERAS_API floe_status floe_optimizer_apply_gradients(floe_optimizer *opt, floe_graph *g,
                                                          const floe_output *grads,
                                                          const floe_train_var *vars, int n,
                                                          floe_node **train_op);

/*
 * floe_optimizer_minimize: floe_gradients(loss, reads of @vars) then apply_gradients.
 * @loss: a floating-point output (any shape: its sum is minimised).
 * FLOE_INVALID_ARGUMENT when no variable gets a gradient.
 */
FLOE_KERAS_API floe_status floe_optimizer_minimize(floe_optimizer *opt, floe_graph *g,
                                                   floe_output loss, const floe_train_var *vars,
                                                   int n, floe_node **train_op);

/* The learning-rate node the updates read (a Const, or the schedule's output); NULL
 * before minimize.  Fetch it to log the current rate.  (transfer none) */
FLOE_KERAS_API floe_node *floe_optimizer_lr_node(const floe_optimizer *opt);

/* The global step variable of @g ("global_step", i64 scalar), created on first use by
 * minimize; *@out zeroed and FLOE_NOT_FOUND when @g has none yet. */
FLOE_KERAS_API floe_status floe_train_global_step(floe_graph *g, floe_train_var *out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_TRAIN_H */
