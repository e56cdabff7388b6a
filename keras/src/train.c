/*
 * train.c - variables, optimizers and learning-rate schedules on graphs (floe/train.h),
 * built only with libfloe's public API: node builders, floe_gradients, tensors.
 *
 * Variables are three nodes: VarHandleOp NAME (shared_name NAME), AssignVariableOp
 * "NAME/Assign" fed by the initial value, ReadVariableOp "NAME/Read".  The library
 * keeps no per-graph state: floe_train_init_op() and the slot and global-step lookups
 * find variables by these names, so they also see variables made by another
 * floe_optimizer or by a layer that follows the same convention.
 *
 * An optimizer (struct floe_optimizer) is bound to the first graph it builds in and
 * gets a unique name prefix there ("Adam", "Adam_1", ...).  On that first use it builds
 * its shared nodes: the learning rate "<prefix>/lr" (a Const, or the schedule's nodes
 * reading the global step), and for Adam the beta-power variables.  Each call to
 * apply_gradients then adds per variable the slots (on first use), one ResourceApply*
 * node reading the cached scalar Consts of the variable's dtype, and finally a NoOp
 * "<prefix>/update" with every apply node, the global step's increment and the beta
 * powers' updates as control inputs; those updates themselves have every apply node
 * as control inputs, so they run after the applies have read the old values.  Each apply
 * node also has as control inputs the readers of its variable's "NAME/Read" output that
 * the gradients depend on (found by a walk back from the gradients): the update then
 * runs after the backward pass's last use of the old value, which the executor has
 * released, so value_for_update works in place instead of copying a value still held
 * (a 12.8 MB copy per step for a 3.2M-parameter layer).  Readers outside the gradients'
 * ancestry (an inference path) are left alone, so the training node never pulls them in.
 *
 * Sections: errors and node helpers; variables; schedules; optimizer objects; building
 * the updates; minimize.
 */
#include "keras-impl.h"

#include <floe/gradients.h>
#include <floe/train.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 512
#define MAX_SLOTS 3
#define MAX_CONSTS 8

/* ---- Errors and node helpers ---------------------------------------------------------- */

/* Passes a libfloe failure on with its message. */
static floe_status lib_fail(floe_status st, const char *what) {
    return floe__keras_fail(st, "%s: %s", what, floe_last_error());
}

/* @base, or "@base_N" for the smallest N >= 1 naming no node of @g, into @buf. */
static floe_status unique_name(floe_graph *g, const char *base, char *buf, size_t len) {
    if ((size_t)snprintf(buf, len, "%s", base) >= len)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "name '%.64s...' is too long", base);
    for (int i = 1; floe_graph_find(g, buf) != NULL; i++)
        if ((size_t)snprintf(buf, len, "%s_%d", base, i) >= len)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT, "name '%.64s...' is too long", base);
    return FLOE_OK;
}

static floe_status finish(floe_node_builder *b, floe_node **out, const char *what) {
    floe_status st = floe_node_builder_finish(b, out);
    if (st != FLOE_OK) {
        *out = NULL;
        return lib_fail(st, what);
    }
    return FLOE_OK;
}

/* A Const node holding @t (referenced by the node). */
static floe_status const_node(floe_graph *g, const char *name, floe_tensor *t, floe_node **out) {
    floe_node_builder *b = NULL;
    floe_status st;

    *out = NULL;
    if ((st = floe_node_builder_new(g, "Const", name, &b)) != FLOE_OK)
        return lib_fail(st, "Const");
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", t);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(t));
    return finish(b, out, "Const");
}

/* A tensor of @dtype (f32, f64, i32 or i64) and @shape filled with @v. */
static floe_status filled_tensor(floe_dtype dtype, const int64_t *shape, int ndim, double v,
                                 floe_tensor **out) {
    floe_status st = floe_tensor_new(dtype, shape, ndim, out);
    int64_t n;

    if (st != FLOE_OK) {
        *out = NULL;
        return lib_fail(st, "tensor");
    }
    n = floe_tensor_num_elements(*out);
    void *d = floe_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) {
        switch (dtype) {
        case FLOE_DTYPE_F32: ((float *)d)[i] = (float)v; break;
        case FLOE_DTYPE_F64: ((double *)d)[i] = v; break;
        case FLOE_DTYPE_I32: ((int32_t *)d)[i] = (int32_t)v; break;
        case FLOE_DTYPE_I64: ((int64_t *)d)[i] = (int64_t)v; break;
        default: break;
        }
    }
    return FLOE_OK;
}

static floe_status scalar_const(floe_graph *g, const char *name, floe_dtype dtype, double v,
                                floe_node **out) {
    floe_tensor *t = NULL;
    floe_status st = filled_tensor(dtype, NULL, 0, v, &t);
    if (st != FLOE_OK) {
        *out = NULL;
        return st;
    }
    st = const_node(g, name, t, out);
    floe_tensor_unref(t);
    return st;
}

/* A node running @op on @n inputs with no attrs but DstT (when @dst is valid). */
static floe_status op_node(floe_graph *g, const char *op, const char *name,
                           const floe_output *in, int n, floe_dtype dst, floe_node **out) {
    floe_node_builder *b = NULL;
    floe_status st;

    *out = NULL;
    if ((st = floe_node_builder_new(g, op, name, &b)) != FLOE_OK)
        return lib_fail(st, op);
    for (int i = 0; i < n; i++)
        floe_node_builder_add_input(b, in[i]);
    if (dst != FLOE_DTYPE_INVALID)
        floe_attrs_set_type(floe_node_builder_attrs(b), "DstT", dst);
    return finish(b, out, op);
}

static floe_status binary(floe_graph *g, const char *op, floe_node *a, floe_node *c,
                          floe_node **out) {
    floe_output in[2] = {floe_out(a, 0), floe_out(c, 0)};
    return op_node(g, op, NULL, in, 2, FLOE_DTYPE_INVALID, out);
}

/* ---- Variables ------------------------------------------------------------------------ */

static floe_status var_build(floe_graph *g, const char *name, floe_dtype dtype,
                             const int64_t *shape, int ndim, floe_output value,
                             floe_train_var *out) {
    char buf[NAME_MAX_LEN];
    floe_node_builder *b = NULL;
    floe_status st;

    if ((st = floe_node_builder_new(g, "VarHandleOp", name, &b)) != FLOE_OK)
        return lib_fail(st, "VarHandleOp");
    floe_attrs_set_string(floe_node_builder_attrs(b), "shared_name", name, strlen(name));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dtype);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, ndim);
    if ((st = finish(b, &out->handle, "VarHandleOp")) != FLOE_OK)
        return st;

    snprintf(buf, sizeof(buf), "%s/Assign", name);
    if ((st = floe_node_builder_new(g, "AssignVariableOp", buf, &b)) != FLOE_OK)
        return lib_fail(st, "AssignVariableOp");
    floe_node_builder_add_input(b, floe_out(out->handle, 0));
    floe_node_builder_add_input(b, value);
    if ((st = finish(b, &out->init, "AssignVariableOp")) != FLOE_OK)
        return st;

    snprintf(buf, sizeof(buf), "%s/Read", name);
    if ((st = floe_node_builder_new(g, "ReadVariableOp", buf, &b)) != FLOE_OK)
        return lib_fail(st, "ReadVariableOp");
    floe_node_builder_add_input(b, floe_out(out->handle, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dtype);
    return finish(b, &out->read, "ReadVariableOp");
}

/* Checks the common arguments; the name must be free and leave room for suffixes. */
static floe_status var_check(floe_graph *g, const char *name, floe_train_var *out) {
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (g == NULL || name == NULL || out == NULL || name[0] == '\0')
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable: NULL graph, name or output");
    if (strlen(name) > NAME_MAX_LEN - 64)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable: name '%.64s...' is too long",
                                name);
    if (floe_graph_find(g, name) != NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable: the graph has a node '%s'",
                                name);
    return FLOE_OK;
}

FLOE_KERAS_API floe_status floe_train_var_new(floe_graph *g, const char *name,
                                              floe_tensor *initial, floe_train_var *out) {
    char buf[NAME_MAX_LEN];
    floe_node *c = NULL;
    floe_status st = var_check(g, name, out);

    if (st != FLOE_OK)
        return st;
    if (initial == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s': NULL initial value", name);
    snprintf(buf, sizeof(buf), "%s/Initial", name);
    if ((st = const_node(g, buf, initial, &c)) != FLOE_OK ||
        (st = var_build(g, name, floe_tensor_dtype(initial), floe_tensor_shape(initial),
                        floe_tensor_ndim(initial), floe_out(c, 0), out)) != FLOE_OK)
        memset(out, 0, sizeof(*out));
    return st;
}

FLOE_KERAS_API floe_status floe_train_var_new_from(floe_graph *g, const char *name,
                                                   floe_dtype dtype, const int64_t *shape,
                                                   int ndim, floe_output value,
                                                   floe_train_var *out) {
    floe_status st = var_check(g, name, out);

    if (st != FLOE_OK)
        return st;
    if (value.node == NULL || ndim < 0 || ndim > FLOE_MAX_DIMS || (ndim > 0 && shape == NULL))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s': bad value or shape", name);
    if ((st = var_build(g, name, dtype, shape, ndim, value, out)) != FLOE_OK)
        memset(out, 0, sizeof(*out));
    return st;
}

FLOE_KERAS_API floe_status floe_train_var_new_filled(floe_graph *g, const char *name,
                                                     floe_dtype dtype, const int64_t *shape,
                                                     int ndim, double value,
                                                     floe_train_var *out) {
    floe_tensor *t = NULL;
    floe_status st = var_check(g, name, out);

    if (st != FLOE_OK)
        return st;
    if (dtype != FLOE_DTYPE_F32 && dtype != FLOE_DTYPE_F64 && dtype != FLOE_DTYPE_I32 &&
        dtype != FLOE_DTYPE_I64)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s': dtype %s cannot be filled",
                                name, floe_dtype_name(dtype));
    if (ndim < 0 || ndim > FLOE_MAX_DIMS || (ndim > 0 && shape == NULL))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s': bad shape", name);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                    "variable '%s': dimension %d is %lld", name, i,
                                    (long long)shape[i]);
    if ((st = filled_tensor(dtype, shape, ndim, value, &t)) != FLOE_OK)
        return st;
    st = floe_train_var_new(g, name, t, out);
    floe_tensor_unref(t);
    return st;
}

/* The variable called @name if the graph has its three nodes. */
static bool var_find(floe_graph *g, const char *name, floe_train_var *out) {
    char buf[NAME_MAX_LEN];

    memset(out, 0, sizeof(*out));
    out->handle = floe_graph_find(g, name);
    if (out->handle == NULL || strcmp(floe_node_op(out->handle), "VarHandleOp") != 0)
        return false;
    snprintf(buf, sizeof(buf), "%s/Assign", name);
    out->init = floe_graph_find(g, buf);
    snprintf(buf, sizeof(buf), "%s/Read", name);
    out->read = floe_graph_find(g, buf);
    if (out->init == NULL || out->read == NULL) {
        memset(out, 0, sizeof(*out));
        return false;
    }
    return true;
}

FLOE_KERAS_API floe_status floe_train_init_op(floe_graph *g, floe_node **out) {
    char name[64];
    floe_node_builder *b = NULL;
    floe_status st;
    int n;

    if (out != NULL)
        *out = NULL;
    if (g == NULL || out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "init_op: NULL graph or output");
    if ((st = unique_name(g, "init", name, sizeof(name))) != FLOE_OK)
        return st;
    if ((st = floe_node_builder_new(g, "NoOp", name, &b)) != FLOE_OK)
        return lib_fail(st, "NoOp");
    n = floe_graph_num_nodes(g);
    for (int i = 0; i < n; i++) {
        floe_node *node = floe_graph_node(g, i);
        floe_node *h;
        size_t len;
        const char *nm = floe_node_name(node);

        if (strcmp(floe_node_op(node), "AssignVariableOp") != 0 || floe_node_num_inputs(node) < 1)
            continue;
        h = floe_node_input(node, 0).node;
        len = strlen(floe_node_name(h));
        if (strcmp(floe_node_op(h), "VarHandleOp") == 0 && strncmp(nm, floe_node_name(h), len) == 0 &&
            strcmp(nm + len, "/Assign") == 0)
            floe_node_builder_add_control_input(b, node);
    }
    return finish(b, out, "init");
}

FLOE_KERAS_API floe_status floe_train_global_step(floe_graph *g, floe_train_var *out) {
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (g == NULL || out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "global_step: NULL graph or output");
    if (!var_find(g, "global_step", out))
        return floe__keras_fail(FLOE_NOT_FOUND, "the graph has no global_step variable");
    return FLOE_OK;
}

/* The global step, created (i64 scalar, 0) when missing. */
static floe_status global_step(floe_graph *g, floe_train_var *out) {
    if (var_find(g, "global_step", out))
        return FLOE_OK;
    return floe_train_var_new_filled(g, "global_step", FLOE_DTYPE_I64, NULL, 0, 0.0, out);
}

/* ---- Schedules ------------------------------------------------------------------------ */

static floe_status schedule_check(const floe_lr_schedule *s) {
    if (s == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "schedule: NULL");
    switch (s->kind) {
    case FLOE_LR_CONSTANT:
        return FLOE_OK;
    case FLOE_LR_EXPONENTIAL_DECAY:
        if (!(s->decay_steps > 0) || !(s->decay_rate > 0) || !isfinite(s->decay_rate))
            return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                    "exponential decay needs decay_steps > 0 and decay_rate > 0 "
                                    "(got %g, %g)", s->decay_steps, s->decay_rate);
        return FLOE_OK;
    case FLOE_LR_COSINE_DECAY:
        if (!(s->decay_steps > 0) || !(s->alpha >= 0 && s->alpha <= 1))
            return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                    "cosine decay needs decay_steps > 0 and alpha in [0, 1] "
                                    "(got %g, %g)", s->decay_steps, s->alpha);
        return FLOE_OK;
    }
    return floe__keras_fail(FLOE_INVALID_ARGUMENT, "schedule: unknown kind %d", (int)s->kind);
}

FLOE_KERAS_API double floe_lr_schedule_value(const floe_lr_schedule *s, double lr,
                                             int64_t step) {
    double p;

    if (s == NULL || step < 0)
        return lr;
    switch (s->kind) {
    case FLOE_LR_EXPONENTIAL_DECAY:
        if (!(s->decay_steps > 0))
            return lr;
        p = (double)step / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return lr * pow(s->decay_rate, p);
    case FLOE_LR_COSINE_DECAY:
        if (!(s->decay_steps > 0))
            return lr;
        p = fmin((double)step, s->decay_steps) / s->decay_steps;
        return lr * ((1 - s->alpha) * 0.5 * (1 + cos(M_PI * p)) + s->alpha);
    default:
        return lr;
    }
}

/* ---- Optimizer objects ---------------------------------------------------------------- */

typedef enum opt_kind { K_SGD, K_MOMENTUM, K_ADAM, K_ADAGRAD, K_RMSPROP, K_FTRL } opt_kind;

struct floe_optimizer {
    opt_kind kind;
    double lr;
    double h[4];            /* kind-specific hyperparameters, see the constructors */
    int nesterov, centered;
    floe_lr_schedule sched;
    floe_graph *graph;      /* bound at first use */
    char prefix[64];
    floe_node *lr_node;     /* f32 */
    floe_train_var beta_power[2];
    /* Scalar Consts / casts per dtype (0: f32, 1: f64), in the apply op's order. */
    floe_node *scalars[2][MAX_CONSTS];
    bool have_scalars[2];
};

static const char *const kind_names[] = {"SGD", "Momentum", "Adam", "Adagrad", "RMSProp",
                                         "Ftrl"};

static floe_status opt_new(opt_kind kind, double lr, floe_optimizer **out) {
    floe_optimizer *o;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "optimizer: NULL output");
    *out = NULL;
    if (!(lr > 0) || !isfinite(lr))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: learning rate must be > 0, got %g",
                                kind_names[kind], lr);
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "optimizer: out of memory");
    o->kind = kind;
    o->lr = lr;
    o->sched.kind = FLOE_LR_CONSTANT;
    *out = o;
    return FLOE_OK;
}

FLOE_KERAS_API floe_status floe_optimizer_sgd_new(float lr, float momentum, int nesterov,
                                                  floe_optimizer **out) {
    floe_status st;

    if (!(momentum >= 0 && momentum < 1)) {
        if (out != NULL)
            *out = NULL;
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "SGD: momentum must be in [0, 1), got %g",
                                (double)momentum);
    }
    st = opt_new(momentum > 0 ? K_MOMENTUM : K_SGD, lr, out);
    if (st == FLOE_OK) {
        (*out)->h[0] = momentum;
        (*out)->nesterov = nesterov != 0;
    }
    return st;
}

FLOE_KERAS_API floe_status floe_optimizer_adam_new(float lr, float beta1, float beta2,
                                                   float epsilon, floe_optimizer **out) {
    floe_status st;

    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(epsilon >= 0)) {
        if (out != NULL)
            *out = NULL;
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "Adam: beta1 and beta2 must be in [0, 1) and epsilon >= 0 "
                                "(got %g, %g, %g)", (double)beta1, (double)beta2,
                                (double)epsilon);
    }
    st = opt_new(K_ADAM, lr, out);
    if (st == FLOE_OK) {
        (*out)->h[0] = beta1;
        (*out)->h[1] = beta2;
        (*out)->h[2] = epsilon;
    }
    return st;
}

FLOE_KERAS_API floe_status floe_optimizer_adagrad_new(float lr, float initial_accumulator,
                                                      floe_optimizer **out) {
    floe_status st;

    if (!(initial_accumulator > 0)) {
        if (out != NULL)
            *out = NULL;
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "Adagrad: initial accumulator must be > 0, got %g",
                                (double)initial_accumulator);
    }
    st = opt_new(K_ADAGRAD, lr, out);
    if (st == FLOE_OK)
        (*out)->h[0] = initial_accumulator;
    return st;
}

FLOE_KERAS_API floe_status floe_optimizer_rmsprop_new(float lr, float rho, float momentum,
                                                      float epsilon, int centered,
                                                      floe_optimizer **out) {
    floe_status st;

    if (!(rho >= 0 && rho < 1) || !(momentum >= 0 && momentum < 1) || !(epsilon >= 0)) {
        if (out != NULL)
            *out = NULL;
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "RMSProp: rho and momentum must be in [0, 1) and epsilon >= 0 "
                                "(got %g, %g, %g)", (double)rho, (double)momentum,
                                (double)epsilon);
    }
    st = opt_new(K_RMSPROP, lr, out);
    if (st == FLOE_OK) {
        (*out)->h[0] = rho;
        (*out)->h[1] = momentum;
        (*out)->h[2] = epsilon;
        (*out)->centered = centered != 0;
    }
    return st;
}

FLOE_KERAS_API floe_status floe_optimizer_ftrl_new(float lr, float lr_power,
                                                   float initial_accumulator, float l1,
                                                   float l2, floe_optimizer **out) {
    floe_status st;

    if (!(lr_power <= 0) || !(initial_accumulator > 0) || !(l1 >= 0) || !(l2 >= 0)) {
        if (out != NULL)
            *out = NULL;
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "Ftrl: needs lr_power <= 0, initial accumulator > 0, l1 >= 0, "
                                "l2 >= 0 (got %g, %g, %g, %g)", (double)lr_power,
                                (double)initial_accumulator, (double)l1, (double)l2);
    }
    st = opt_new(K_FTRL, lr, out);
    if (st == FLOE_OK) {
        (*out)->h[0] = lr_power;
        (*out)->h[1] = initial_accumulator;
        (*out)->h[2] = l1;
        (*out)->h[3] = l2;
    }
    return st;
}

FLOE_KERAS_API void floe_optimizer_free(floe_optimizer *opt) {
    free(opt);
}

FLOE_KERAS_API const char *floe_optimizer_name(const floe_optimizer *opt) {
    return opt == NULL ? "" : kind_names[opt->kind];
}

FLOE_KERAS_API floe_status floe_optimizer_set_schedule(floe_optimizer *opt,
                                                       const floe_lr_schedule *s) {
    floe_status st;

    if (opt == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "set_schedule: NULL optimizer");
    if ((st = schedule_check(s)) != FLOE_OK)
        return st;
    if (opt->graph != NULL)
        return floe__keras_fail(FLOE_FAILED_PRECONDITION,
                                "set_schedule: the optimizer has already built its updates");
    opt->sched = *s;
    return FLOE_OK;
}

FLOE_KERAS_API floe_node *floe_optimizer_lr_node(const floe_optimizer *opt) {
    return opt == NULL ? NULL : opt->lr_node;
}

/* ---- Building the updates ------------------------------------------------------------- */

/* "<prefix>/<what>" into @buf. */
static const char *pname(const floe_optimizer *o, const char *what, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", o->prefix, what);
    return buf;
}

/* The learning rate as graph nodes from the global step (see train.h). */
static floe_status build_lr(floe_optimizer *o, floe_graph *g, const floe_train_var *gs) {
    char buf[NAME_MAX_LEN];
    floe_node *step, *ds, *p, *t, *u, *lr0;
    const floe_lr_schedule *s = &o->sched;
    floe_status st;

    if (s->kind == FLOE_LR_CONSTANT)
        return scalar_const(g, pname(o, "lr", buf, sizeof(buf)), FLOE_DTYPE_F32, o->lr,
                            &o->lr_node);
    {
        floe_output in = floe_out(gs->read, 0);
        if ((st = op_node(g, "Cast", pname(o, "lr/step", buf, sizeof(buf)), &in, 1,
                          FLOE_DTYPE_F32, &step)) != FLOE_OK)
            return st;
    }
    if ((st = scalar_const(g, NULL, FLOE_DTYPE_F32, s->decay_steps, &ds)) != FLOE_OK ||
        (st = scalar_const(g, pname(o, "lr/initial", buf, sizeof(buf)), FLOE_DTYPE_F32, o->lr,
                           &lr0)) != FLOE_OK)
        return st;
    if (s->kind == FLOE_LR_EXPONENTIAL_DECAY) {
        floe_node *rate;
        if ((st = binary(g, "RealDiv", step, ds, &p)) != FLOE_OK)
            return st;
        if (s->staircase) {
            /* floor() of a non-negative value: truncate through i64. */
            floe_output in = floe_out(p, 0);
            if ((st = op_node(g, "Cast", NULL, &in, 1, FLOE_DTYPE_I64, &t)) != FLOE_OK)
                return st;
            in = floe_out(t, 0);
            if ((st = op_node(g, "Cast", NULL, &in, 1, FLOE_DTYPE_F32, &p)) != FLOE_OK)
                return st;
        }
        if ((st = scalar_const(g, NULL, FLOE_DTYPE_F32, s->decay_rate, &rate)) != FLOE_OK ||
            (st = binary(g, "Pow", rate, p, &t)) != FLOE_OK)
            return st;
    } else {
        floe_node *pi, *half, *one, *alpha;
        if ((st = binary(g, "Minimum", step, ds, &p)) != FLOE_OK ||
            (st = binary(g, "RealDiv", p, ds, &p)) != FLOE_OK ||
            (st = scalar_const(g, NULL, FLOE_DTYPE_F32, M_PI, &pi)) != FLOE_OK ||
            (st = binary(g, "Mul", p, pi, &p)) != FLOE_OK)
            return st;
        {
            floe_output in = floe_out(p, 0);
            if ((st = op_node(g, "Cos", NULL, &in, 1, FLOE_DTYPE_INVALID, &u)) != FLOE_OK)
                return st;
        }
        if ((st = scalar_const(g, NULL, FLOE_DTYPE_F32, 1.0, &one)) != FLOE_OK ||
            (st = scalar_const(g, NULL, FLOE_DTYPE_F32, (1 - s->alpha) * 0.5, &half)) != FLOE_OK ||
            (st = scalar_const(g, NULL, FLOE_DTYPE_F32, s->alpha, &alpha)) != FLOE_OK ||
            (st = binary(g, "AddV2", u, one, &u)) != FLOE_OK ||
            (st = binary(g, "Mul", u, half, &u)) != FLOE_OK ||
            (st = binary(g, "AddV2", u, alpha, &t)) != FLOE_OK)
            return st;
    }
    {
        floe_output in[2] = {floe_out(lr0, 0), floe_out(t, 0)};
        return op_node(g, "Mul", pname(o, "lr", buf, sizeof(buf)), in, 2, FLOE_DTYPE_INVALID,
                       &o->lr_node);
    }
}

/* Binds @o to @g on first use: prefix, learning rate, Adam's beta powers. */
static floe_status bind_graph(floe_optimizer *o, floe_graph *g, floe_train_var *gs) {
    char buf[NAME_MAX_LEN], probe[NAME_MAX_LEN];
    floe_status st;

    if (o->graph != NULL && o->graph != g)
        return floe__keras_fail(FLOE_FAILED_PRECONDITION,
                                "%s: this optimizer already serves another graph",
                                kind_names[o->kind]);
    if ((st = global_step(g, gs)) != FLOE_OK)
        return st;
    if (o->graph == g)
        return FLOE_OK;
    /* A prefix whose "<prefix>/lr" is free. */
    snprintf(o->prefix, sizeof(o->prefix), "%s", kind_names[o->kind]);
    for (int i = 1;; i++) {
        snprintf(probe, sizeof(probe), "%s/lr", o->prefix);
        if (floe_graph_find(g, probe) == NULL)
            break;
        snprintf(o->prefix, sizeof(o->prefix), "%s_%d", kind_names[o->kind], i);
    }
    if ((st = build_lr(o, g, gs)) != FLOE_OK)
        return st;
    if (o->kind == K_ADAM) {
        if ((st = floe_train_var_new_filled(g, pname(o, "beta1_power", buf, sizeof(buf)),
                                            FLOE_DTYPE_F32, NULL, 0, o->h[0],
                                            &o->beta_power[0])) != FLOE_OK ||
            (st = floe_train_var_new_filled(g, pname(o, "beta2_power", buf, sizeof(buf)),
                                            FLOE_DTYPE_F32, NULL, 0, o->h[1],
                                            &o->beta_power[1])) != FLOE_OK)
            return st;
    }
    o->graph = g;
    return FLOE_OK;
}

/* In @out, @v cast to dtype index @di (1: f64) unless it is f32 already. */
static floe_status as_dtype(floe_graph *g, floe_node *v, int di, floe_node **out) {
    floe_output in = floe_out(v, 0);
    if (di == 0) {
        *out = v;
        return FLOE_OK;
    }
    return op_node(g, "Cast", NULL, &in, 1, FLOE_DTYPE_F64, out);
}

/* The scalar inputs of the apply op for dtype index @di, in op order, built once. */
static floe_status scalars_for(floe_optimizer *o, floe_graph *g, int di, floe_node ***out) {
    floe_dtype dt = di ? FLOE_DTYPE_F64 : FLOE_DTYPE_F32;
    floe_node **s = o->scalars[di];
    floe_node *lr = NULL;
    floe_status st;

    *out = s;
    if (o->have_scalars[di])
        return FLOE_OK;
    if ((st = as_dtype(g, o->lr_node, di, &lr)) != FLOE_OK)
        return st;
    switch (o->kind) {
    case K_SGD:                                  /* alpha */
    case K_ADAGRAD:                              /* lr */
        s[0] = lr;
        break;
    case K_MOMENTUM:                             /* lr, momentum */
        s[0] = lr;
        st = scalar_const(g, NULL, dt, o->h[0], &s[1]);
        break;
    case K_ADAM:                                 /* b1p, b2p, lr, b1, b2, eps */
        if ((st = as_dtype(g, o->beta_power[0].read, di, &s[0])) != FLOE_OK ||
            (st = as_dtype(g, o->beta_power[1].read, di, &s[1])) != FLOE_OK)
            return st;
        s[2] = lr;
        if ((st = scalar_const(g, NULL, dt, o->h[0], &s[3])) != FLOE_OK ||
            (st = scalar_const(g, NULL, dt, o->h[1], &s[4])) != FLOE_OK)
            return st;
        st = scalar_const(g, NULL, dt, o->h[2], &s[5]);
        break;
    case K_RMSPROP:                              /* lr, rho, momentum, eps */
        s[0] = lr;
        if ((st = scalar_const(g, NULL, dt, o->h[0], &s[1])) != FLOE_OK ||
            (st = scalar_const(g, NULL, dt, o->h[1], &s[2])) != FLOE_OK)
            return st;
        st = scalar_const(g, NULL, dt, o->h[2], &s[3]);
        break;
    case K_FTRL:                                 /* lr, l1, l2, lr_power */
        s[0] = lr;
        if ((st = scalar_const(g, NULL, dt, o->h[2], &s[1])) != FLOE_OK ||
            (st = scalar_const(g, NULL, dt, o->h[3], &s[2])) != FLOE_OK)
            return st;
        st = scalar_const(g, NULL, dt, o->h[0], &s[3]);
        break;
    }
    if (st == FLOE_OK)
        o->have_scalars[di] = true;
    return st;
}

/* The slot @slot of variable @var (shape from its VarHandleOp), created when missing. */
static floe_status slot_for(floe_optimizer *o, floe_graph *g, const floe_node *var,
                            floe_dtype dt, const floe_shape *shape, const char *slot, double init,
                            floe_node **handle) {
    char name[NAME_MAX_LEN];
    floe_train_var sv;
    floe_status st;

    if ((size_t)snprintf(name, sizeof(name), "%s/%s/%s", floe_node_name(var), o->prefix, slot)
        >= sizeof(name) - 16)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable name '%.64s...' is too long",
                                floe_node_name(var));
    if (!var_find(g, name, &sv) &&
        (st = floe_train_var_new_filled(g, name, dt, shape->dims, shape->ndim, init, &sv)) != FLOE_OK)
        return st;
    *handle = sv.handle;
    return FLOE_OK;
}

/* A set of nodes (open addressing on the pointer), for the ancestors of the gradients. */
typedef struct node_set {
    const floe_node **slots;
    size_t cap, count;
} node_set;

static size_t node_hash(const floe_node *n, size_t cap) {
    uintptr_t x = (uintptr_t)n;
    x ^= x >> 17;
    x *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) & (cap - 1);
}

static bool set_has(const node_set *s, const floe_node *n) {
    for (size_t i = node_hash(n, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == n)
            return true;
        if (s->slots[i] == NULL)
            return false;
    }
}

/* Adds @n; false if it was there.  The capacity (a power of two above twice the graph's
 * node count) never fills. */
static bool set_add(node_set *s, const floe_node *n) {
    for (size_t i = node_hash(n, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == n)
            return false;
        if (s->slots[i] == NULL) {
            s->slots[i] = n;
            s->count++;
            return true;
        }
    }
}

/* Every node the @n gradients depend on (data and control edges), into @set. */
static floe_status grad_ancestors(floe_graph *g, const floe_output *grads, int n, node_set *set) {
    size_t total = (size_t)floe_graph_num_nodes(g), top = 0;
    floe_node **stack;

    set->cap = 16;
    while (set->cap < 2 * total + 2)
        set->cap *= 2;
    set->count = 0;
    set->slots = calloc(set->cap, sizeof(*set->slots));
    stack = malloc((total + 1) * sizeof(*stack));
    if (set->slots == NULL || stack == NULL) {
        free(stack);
        free(set->slots);
        set->slots = NULL;
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "apply_gradients: out of memory");
    }
    for (int i = 0; i < n; i++)
        if (grads[i].node != NULL && set_add(set, grads[i].node))
            stack[top++] = grads[i].node;
    while (top > 0) {
        floe_node *x = stack[--top];
        for (int k = 0; k < floe_node_num_inputs(x); k++) {
            floe_node *in = floe_node_input(x, k).node;
            if (in != NULL && set_add(set, in))
                stack[top++] = in;
        }
        for (int k = 0; k < floe_node_num_control_inputs(x); k++) {
            floe_node *in = floe_node_control_input(x, k);
            if (in != NULL && set_add(set, in))
                stack[top++] = in;
        }
    }
    free(stack);
    return FLOE_OK;
}

/* One apply node for @var and gradient @grad; *@out the node. */
static floe_status apply_one(floe_optimizer *o, floe_graph *g, const floe_train_var *var,
                             floe_output grad, const node_set *anc, floe_node **out) {
    static const char *const ops[] = {"ResourceApplyGradientDescent", "ResourceApplyMomentum",
                                      "ResourceApplyAdam", "ResourceApplyAdagrad",
                                      "ResourceApplyRMSProp", "ResourceApplyFtrl"};
    const floe_attrs *va = floe_node_attrs(var->handle);
    floe_node *slots[MAX_SLOTS + 1] = {NULL}, **sc = NULL;
    const char *vname = floe_node_name(var->handle), *op = ops[o->kind];
    char buf[NAME_MAX_LEN];
    floe_node_builder *b = NULL;
    floe_shape shape;
    floe_dtype dt;
    int nslots = 0, nsc = 0, di;
    floe_status st = FLOE_OK;

    *out = NULL;
    if (floe_attrs_get_type(va, "dtype", &dt) != FLOE_OK ||
        floe_attrs_get_shape(va, "shape", &shape) != FLOE_OK)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s' has no dtype or shape",
                                vname);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "%s: variable '%s' has dtype %s; optimizers train f32 and f64",
                                o->prefix, vname, floe_dtype_name(dt));
    if (shape.ndim < 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "variable '%s' has an unknown shape", vname);
    for (int i = 0; i < shape.ndim; i++)
        if (shape.dims[i] < 0)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                    "variable '%s' has an unknown dimension %d", vname, i);
    di = dt == FLOE_DTYPE_F64;

    switch (o->kind) {
    case K_SGD:
        break;
    case K_MOMENTUM:
        st = slot_for(o, g, var->handle, dt, &shape, "momentum", 0, &slots[nslots++]);
        break;
    case K_ADAM:
        if ((st = slot_for(o, g, var->handle, dt, &shape, "m", 0, &slots[nslots++])) == FLOE_OK)
            st = slot_for(o, g, var->handle, dt, &shape, "v", 0, &slots[nslots++]);
        break;
    case K_ADAGRAD:
        st = slot_for(o, g, var->handle, dt, &shape, "accumulator", o->h[0], &slots[nslots++]);
        break;
    case K_RMSPROP:
        if (o->centered)
            op = "ResourceApplyCenteredRMSProp";
        st = FLOE_OK;
        if (o->centered)
            st = slot_for(o, g, var->handle, dt, &shape, "mg", 0, &slots[nslots++]);
        if (st == FLOE_OK)
            st = slot_for(o, g, var->handle, dt, &shape, "rms", 0, &slots[nslots++]);
        if (st == FLOE_OK)
            st = slot_for(o, g, var->handle, dt, &shape, "momentum", 0, &slots[nslots++]);
        break;
    case K_FTRL:
        if ((st = slot_for(o, g, var->handle, dt, &shape, "accumulator", o->h[1],
                           &slots[nslots++])) == FLOE_OK)
            st = slot_for(o, g, var->handle, dt, &shape, "linear", 0, &slots[nslots++]);
        break;
    }
    if (o->kind != K_SGD && st != FLOE_OK)
        return st;
    if ((st = scalars_for(o, g, di, &sc)) != FLOE_OK)
        return st;
    nsc = o->kind == K_SGD || o->kind == K_ADAGRAD ? 1 : o->kind == K_MOMENTUM ? 2
          : o->kind == K_ADAM ? 6 : 4;

    snprintf(buf, sizeof(buf), "%s/%s/apply", vname, o->prefix);
    if ((st = floe_node_builder_new(g, op, floe_graph_find(g, buf) == NULL ? buf : NULL, &b))
        != FLOE_OK)
        return lib_fail(st, op);
    /* Run after every backward-pass reader of the variable's value: the update is then
     * the value's last user and works in place instead of copying a value still held. */
    if (var->read != NULL) {
        int nn = floe_graph_num_nodes(g);
        for (int i = 0; i < nn; i++) {
            floe_node *x = floe_graph_node(g, i);
            if (!set_has(anc, x))
                continue;
            for (int k = 0; k < floe_node_num_inputs(x); k++)
                if (floe_node_input(x, k).node == var->read) {
                    floe_node_builder_add_control_input(b, x);
                    break;
                }
        }
    }
    floe_node_builder_add_input(b, floe_out(var->handle, 0));
    for (int i = 0; i < nslots; i++)
        floe_node_builder_add_input(b, floe_out(slots[i], 0));
    switch (o->kind) {
    case K_SGD:                                   /* alpha, delta */
        floe_node_builder_add_input(b, floe_out(sc[0], 0));
        floe_node_builder_add_input(b, grad);
        break;
    case K_MOMENTUM:                              /* lr, grad, momentum */
        floe_node_builder_add_input(b, floe_out(sc[0], 0));
        floe_node_builder_add_input(b, grad);
        floe_node_builder_add_input(b, floe_out(sc[1], 0));
        floe_attrs_set_bool(floe_node_builder_attrs(b), "use_nesterov", o->nesterov);
        break;
    case K_FTRL:                                  /* grad, lr, l1, l2, lr_power */
        floe_node_builder_add_input(b, grad);
        for (int i = 0; i < nsc; i++)
            floe_node_builder_add_input(b, floe_out(sc[i], 0));
        break;
    default:                                      /* scalars..., grad */
        for (int i = 0; i < nsc; i++)
            floe_node_builder_add_input(b, floe_out(sc[i], 0));
        floe_node_builder_add_input(b, grad);
        break;
    }
    return finish(b, out, op);
}

/* AssignVariableOp(@v, read(@v) * @factor) after @deps. */
static floe_status scale_after(floe_graph *g, const floe_train_var *v, double factor,
                               floe_node *const *deps, int ndeps, floe_node **out) {
    floe_node *f, *prod;
    floe_node_builder *b = NULL;
    floe_status st;

    if ((st = scalar_const(g, NULL, FLOE_DTYPE_F32, factor, &f)) != FLOE_OK ||
        (st = binary(g, "Mul", v->read, f, &prod)) != FLOE_OK)
        return st;
    if ((st = floe_node_builder_new(g, "AssignVariableOp", NULL, &b)) != FLOE_OK)
        return lib_fail(st, "AssignVariableOp");
    floe_node_builder_add_input(b, floe_out(v->handle, 0));
    floe_node_builder_add_input(b, floe_out(prod, 0));
    for (int i = 0; i < ndeps; i++)
        floe_node_builder_add_control_input(b, deps[i]);
    return finish(b, out, "AssignVariableOp");
}

FLOE_KERAS_API floe_status floe_optimizer_apply_gradients(floe_optimizer *opt, floe_graph *g,
                                                          const floe_output *grads,
                                                          const floe_train_var *vars, int n,
                                                          floe_node **train_op) {
    char buf[NAME_MAX_LEN], name[NAME_MAX_LEN];
    floe_node **applies = NULL, *post[3] = {NULL, NULL, NULL}, *one = NULL;
    floe_node_builder *b = NULL;
    floe_train_var gs;
    node_set anc = {NULL, 0, 0};
    int napplies = 0, npost = 0;
    floe_status st;

    if (train_op != NULL)
        *train_op = NULL;
    if (opt == NULL || g == NULL || grads == NULL || vars == NULL || n < 1 || train_op == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                "apply_gradients: NULL argument or no variables");
    for (int i = 0; i < n; i++)
        if (vars[i].handle == NULL || strcmp(floe_node_op(vars[i].handle), "VarHandleOp") != 0)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                    "apply_gradients: variable %d is not a VarHandleOp", i);
    if ((st = bind_graph(opt, g, &gs)) != FLOE_OK)
        return st;
    if ((st = grad_ancestors(g, grads, n, &anc)) != FLOE_OK)
        return st;
    applies = malloc((size_t)n * sizeof(*applies));
    if (applies == NULL) {
        free(anc.slots);
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "apply_gradients: out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (grads[i].node == NULL)
            continue;
        if ((st = apply_one(opt, g, &vars[i], grads[i], &anc, &applies[napplies])) != FLOE_OK)
            goto done;
        napplies++;
    }
    if (napplies == 0) {
        st = floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: no variable has a gradient",
                              opt->prefix);
        goto done;
    }

    /* Bookkeeping after every apply: the global step, Adam's beta powers. */
    {
        floe_tensor *t = NULL;
        if ((st = floe_tensor_new_scalar_i64(1, &t)) != FLOE_OK) {
            st = lib_fail(st, "global_step");
            goto done;
        }
        st = const_node(g, NULL, t, &one);
        floe_tensor_unref(t);
        if (st != FLOE_OK)
            goto done;
    }
    if ((st = floe_node_builder_new(g, "AssignAddVariableOp", NULL, &b)) != FLOE_OK) {
        st = lib_fail(st, "AssignAddVariableOp");
        goto done;
    }
    floe_node_builder_add_input(b, floe_out(gs.handle, 0));
    floe_node_builder_add_input(b, floe_out(one, 0));
    for (int i = 0; i < napplies; i++)
        floe_node_builder_add_control_input(b, applies[i]);
    if ((st = finish(b, &post[npost++], "global_step")) != FLOE_OK)
        goto done;
    if (opt->kind == K_ADAM) {
        for (int k = 0; k < 2; k++)
            if ((st = scale_after(g, &opt->beta_power[k], opt->h[k], applies, napplies,
                                  &post[npost++])) != FLOE_OK)
                goto done;
    }

    if ((st = unique_name(g, pname(opt, "update", buf, sizeof(buf)), name, sizeof(name)))
        != FLOE_OK)
        goto done;
    if ((st = floe_node_builder_new(g, "NoOp", name, &b)) != FLOE_OK) {
        st = lib_fail(st, "NoOp");
        goto done;
    }
    for (int i = 0; i < napplies; i++)
        floe_node_builder_add_control_input(b, applies[i]);
    for (int i = 0; i < npost; i++)
        floe_node_builder_add_control_input(b, post[i]);
    st = finish(b, train_op, "NoOp");

done:
    free(applies);
    free(anc.slots);
    return st;
}

/* ---- Minimize --------------------------------------------------------------------------- */

FLOE_KERAS_API floe_status floe_optimizer_minimize(floe_optimizer *opt, floe_graph *g,
                                                   floe_output loss, const floe_train_var *vars,
                                                   int n, floe_node **train_op) {
    floe_output *xs = NULL, *dxs = NULL;
    floe_status st;

    if (train_op != NULL)
        *train_op = NULL;
    if (opt == NULL || g == NULL || loss.node == NULL || vars == NULL || n < 1 ||
        train_op == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "minimize: NULL argument or no variables");
    xs = malloc((size_t)n * sizeof(*xs));
    dxs = calloc((size_t)n, sizeof(*dxs));
    if (xs == NULL || dxs == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "minimize: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (vars[i].read == NULL) {
            st = floe__keras_fail(FLOE_INVALID_ARGUMENT, "minimize: variable %d has no read node",
                                  i);
            goto done;
        }
        xs[i] = floe_out(vars[i].read, 0);
    }
    if ((st = floe_gradients(g, &loss, 1, xs, n, NULL, dxs)) != FLOE_OK) {
        st = lib_fail(st, "minimize");
        goto done;
    }
    st = floe_optimizer_apply_gradients(opt, g, dxs, vars, n, train_op);

done:
    free(xs);
    free(dxs);
    return st;
}
