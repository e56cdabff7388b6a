/*
 * keras.c - the Sequential model (floe/keras.h): compile builds the graph and session,
 * fit, evaluate and predict run prepared plans; and libfloe_keras's error messages.
 *
 * compile builds one graph holding two forward passes over the same variables: the
 * training pass (dropout on, batch statistics) with the loss, the metrics and the
 * optimizer's update, and the inference pass with its own loss and metrics.  Three
 * plans are prepared once (train, evaluate, predict) and run per batch: the batch
 * tensors are reused from step to step and filled from the data set (u8 images
 * converted per batch).  The fetches of a step are two scalars (mean loss, number of
 * correct predictions).
 *
 * Sections: errors; the model object; compile: loss and metrics; compile: graph,
 * optimizer, session; fit, evaluate, predict.
 */
#include "keras-impl.h"
#include "tensorboard-impl.h"

#include <floe/checkpoint.h>
#include <floe/keras.h>
#include <floe/pipeline.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Errors ------------------------------------------------------------------------ */

static _Thread_local char keras_error[1024];

floe_status floe__keras_fail(floe_status st, const char *fmt, ...) {
    char buf[sizeof(keras_error)];
    va_list ap;

    /* Formatted aside first: a message may quote the previous one. */
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memcpy(keras_error, buf, sizeof(buf));
    return st;
}

const char *floe_keras_last_error(void) {
    return keras_error;
}

/* ---- The model object ------------------------------------------------------------------ */

enum { LOSS_SPARSE_CE, LOSS_CATEGORICAL_CE, LOSS_MSE };

struct floe_model {
    floe_context *ctx;
    int64_t input_shape[FLOE_MAX_DIMS];
    int input_ndim;
    floe_layer **layers;
    int nlayers, cap_layers;
    char error[256]; /* from floe_model_add, reported by compile */
    uint64_t seed, rng;
    int compiled;
    /* Built by compile. */
    floe_graph *g;
    floe_session *s;
    floe_optimizer *opt;
    int loss_kind, has_accuracy;
    floe_dtype x_dtype, y_dtype;
    floe_shape out_shape; /* one example's output */
    int64_t out_elems;
    floe_node *x_ph, *y_ph, *train_op;
    floe_output train_loss, train_correct, eval_loss, eval_correct, infer_out;
    floe_node **targets;
    int ntargets;
    floe_plan *train_plan, *eval_plan, *predict_plan;
    int64_t num_params;
    int64_t steps_done;   /* training steps run by fit, for checkpoint names */
    char checkpoint[1024]; /* the last checkpoint fit saved */
};

static const char *const kind_names[] = {"dense", "conv2d", "max_pooling2d",
                                         "average_pooling2d", "flatten", "dropout",
                                         "batch_normalization", "embedding", "activation"};

floe_status floe_model_new(floe_context *ctx, const int64_t *input_shape, int ndim,
                           floe_model **out) {
    floe_model *m;

    if (out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_model_new: out is NULL");
    *out = NULL;
    if (ctx == NULL || input_shape == NULL || ndim < 1 || ndim >= FLOE_MAX_DIMS)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_model_new: need a context and an "
                                "input shape of 1..%d extents", FLOE_MAX_DIMS - 1);
    for (int i = 0; i < ndim; i++)
        if (input_shape[i] <= 0)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_model_new: input extent %d "
                                    "is %lld; must be > 0", i, (long long)input_shape[i]);
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "floe_model_new: out of memory");
    m->ctx = ctx;
    memcpy(m->input_shape, input_shape, (size_t)ndim * sizeof(int64_t));
    m->input_ndim = ndim;
    m->seed = 42;
    *out = m;
    return FLOE_OK;
}

void floe_model_free(floe_model *m) {
    if (m == NULL)
        return;
    floe_session_free(m->s);
    floe_graph_free(m->g);
    floe_optimizer_free(m->opt);
    for (int i = 0; i < m->nlayers; i++)
        floe_layer_free(m->layers[i]);
    free(m->layers);
    free(m->targets);
    free(m);
}

floe_status floe_model_add(floe_model *m, floe_layer *layer) {
    int same = 0;

    if (m == NULL) {
        floe_layer_free(layer);
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "floe_model_add: model is NULL");
    }
    if (m->compiled) {
        floe_layer_free(layer);
        return floe__keras_fail(FLOE_FAILED_PRECONDITION, "floe_model_add: the model is "
                                "compiled already");
    }
    if (layer == NULL) {
        if (m->error[0] == '\0')
            snprintf(m->error, sizeof(m->error), "layer %d could not be made (out of memory)",
                     m->nlayers + 1);
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "%s", m->error);
    }
    if (m->nlayers == m->cap_layers) {
        int cap = m->cap_layers > 0 ? 2 * m->cap_layers : 8;
        floe_layer **nl = realloc(m->layers, (size_t)cap * sizeof(*nl));
        if (nl == NULL) {
            floe_layer_free(layer);
            snprintf(m->error, sizeof(m->error), "out of memory adding layer %d",
                     m->nlayers + 1);
            return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "%s", m->error);
        }
        m->layers = nl;
        m->cap_layers = cap;
    }
    for (int i = 0; i < m->nlayers; i++)
        same += m->layers[i]->kind == layer->kind;
    if (same == 0)
        snprintf(layer->name, sizeof(layer->name), "%s", kind_names[layer->kind]);
    else
        snprintf(layer->name, sizeof(layer->name), "%s_%d", kind_names[layer->kind], same);
    m->layers[m->nlayers++] = layer;
    return FLOE_OK;
}

floe_status floe_model_set_seed(floe_model *m, uint64_t seed) {
    if (m == NULL || m->compiled)
        return floe__keras_fail(m == NULL ? FLOE_INVALID_ARGUMENT : FLOE_FAILED_PRECONDITION,
                                "floe_model_set_seed: %s",
                                m == NULL ? "model is NULL" : "the model is compiled already");
    m->seed = seed;
    return FLOE_OK;
}

int64_t floe_model_output_size(const floe_model *m) {
    return m != NULL && m->compiled ? m->out_elems : 0;
}

int64_t floe_model_num_params(const floe_model *m) {
    return m != NULL && m->compiled ? m->num_params : 0;
}

floe_graph *floe_model_graph(const floe_model *m) {
    return m != NULL ? m->g : NULL;
}

floe_session *floe_model_session(const floe_model *m) {
    return m != NULL ? m->s : NULL;
}

void floe_model_summary(const floe_model *m, FILE *f) {
    if (m == NULL || f == NULL)
        return;
    fprintf(f, "%-24s %-24s %12s\n", "Layer", "Output shape", "Params");
    for (int i = 0; i < m->nlayers; i++) {
        const floe_layer *l = m->layers[i];
        char shape[96];
        int k = snprintf(shape, sizeof(shape), "(None");
        for (int d = 0; m->compiled && d < l->out_shape.ndim && k < 80; d++)
            k += snprintf(shape + k, sizeof(shape) - (size_t)k, ", %lld",
                          (long long)l->out_shape.dims[d]);
        snprintf(shape + k, sizeof(shape) - (size_t)k, ")");
        fprintf(f, "%-24s %-24s %12lld\n", l->name, m->compiled ? shape : "?",
                (long long)l->num_params);
    }
    fprintf(f, "Trainable parameters: %lld\n", (long long)floe_model_num_params(m));
}

/* ---- Compile: loss and metrics ---------------------------------------------------------- */

typedef struct type_args {
    const char *name;
    floe_dtype dtype;
    const char *name2;
    floe_dtype dtype2;
} type_args;

static floe_status set_types(void *arg, floe_attrs *a) {
    const type_args *t = arg;
    floe_status st = floe_attrs_set_type(a, t->name, t->dtype);

    if (st == FLOE_OK && t->name2 != NULL)
        st = floe_attrs_set_type(a, t->name2, t->dtype2);
    return st;
}

static floe_status op1(floe_graph *g, const char *op, floe_output a, floe_output *out) {
    floe_node *n;
    floe_status st = floe__node(g, op, &a, 1, NULL, NULL, &n);
    *out = floe_out(n, 0);
    return st;
}

static floe_status op2(floe_graph *g, const char *op, floe_output a, floe_output b,
                       floe_output *out) {
    floe_output in[2] = {a, b};
    floe_node *n;
    floe_status st = floe__node(g, op, in, 2, NULL, NULL, &n);
    *out = floe_out(n, 0);
    return st;
}

/* Reduces @x of rank @rank over every axis with @op ("Mean", "Sum"). */
static floe_status reduce_all(floe_graph *g, const char *op, floe_output x, int rank,
                              floe_output *out) {
    int32_t axes[FLOE_MAX_DIMS];
    floe_output ax;
    floe_status st;

    for (int i = 0; i < rank; i++)
        axes[i] = i;
    st = floe__const_i32(g, axes, rank, &ax);
    if (st == FLOE_OK)
        st = op2(g, op, x, ax, out);
    return st;
}

static floe_status argmax1(floe_graph *g, floe_output x, floe_output *out) {
    type_args t = {"output_type", FLOE_DTYPE_I32, NULL, FLOE_DTYPE_INVALID};
    floe_output axis, in[2];
    floe_node *n;
    floe_status st;

    /* ArgMax takes a scalar axis. */
    floe_tensor *one;
    floe_node_builder *nb;
    st = floe_tensor_new_scalar_i32(1, &one);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "%s", floe_last_error());
    st = floe_node_builder_new(g, "Const", NULL, &nb);
    if (st == FLOE_OK) {
        floe_attrs_set_tensor(floe_node_builder_attrs(nb), "value", one);
        floe_attrs_set_type(floe_node_builder_attrs(nb), "dtype", FLOE_DTYPE_I32);
        st = floe_node_builder_finish(nb, &n);
    }
    floe_tensor_unref(one);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "%s", floe_last_error());
    axis = floe_out(n, 0);
    in[0] = x;
    in[1] = axis;
    st = floe__node(g, "ArgMax", in, 2, set_types, &t, &n);
    *out = floe_out(n, 0);
    return st;
}

/* Number of examples of the batch whose arg-max output matches the target. */
static floe_status build_correct(floe_model *m, floe_output out, floe_output *correct) {
    type_args cast = {"SrcT", FLOE_DTYPE_BOOL, "DstT", FLOE_DTYPE_F32};
    floe_output pred, target, eq, f;
    floe_node *n;
    floe_status st = argmax1(m->g, out, &pred);

    if (st == FLOE_OK && m->y_dtype == FLOE_DTYPE_I32)
        target = floe_out(m->y_ph, 0);
    else if (st == FLOE_OK)
        st = argmax1(m->g, floe_out(m->y_ph, 0), &target);
    if (st == FLOE_OK)
        st = op2(m->g, "Equal", pred, target, &eq);
    if (st == FLOE_OK) {
        st = floe__node(m->g, "Cast", &eq, 1, set_types, &cast, &n);
        f = floe_out(n, 0);
    }
    if (st == FLOE_OK)
        st = reduce_all(m->g, "Sum", f, 1, correct);
    return st;
}

/* The batch's mean loss of @out (@logits: the input of a final softmax, or NULL). */
static floe_status build_loss(floe_model *m, floe_output out, floe_output logits,
                              int from_logits, floe_output *loss) {
    floe_output y = floe_out(m->y_ph, 0), per, t1, t2, t3;
    type_args sparse = {"Tlabels", FLOE_DTYPE_I32, NULL, FLOE_DTYPE_INVALID};
    floe_node *n;
    floe_status st;

    if (m->loss_kind == LOSS_MSE) {
        st = op2(m->g, "Sub", out, y, &t1);
        if (st == FLOE_OK)
            st = op1(m->g, "Square", t1, &t2);
        if (st == FLOE_OK)
            st = reduce_all(m->g, "Mean", t2, m->out_shape.ndim + 1, loss);
        return st;
    }
    if (logits.node == NULL && from_logits)
        logits = out;
    if (logits.node != NULL) {
        floe_output in[2] = {logits, y};
        if (m->loss_kind == LOSS_SPARSE_CE)
            st = floe__node(m->g, "SparseSoftmaxCrossEntropyWithLogits", in, 2, set_types,
                            &sparse, &n);
        else
            st = floe__node(m->g, "SoftmaxCrossEntropyWithLogits", in, 2, NULL, NULL, &n);
        per = floe_out(n, 0);
        if (st == FLOE_OK)
            st = reduce_all(m->g, "Mean", per, 1, loss);
        return st;
    }
    if (m->loss_kind == LOSS_SPARSE_CE)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: sparse_categorical_"
                                "crossentropy needs a softmax output layer, or the _from_logits "
                                "variant for logits");
    /* -mean(sum(y * log(max(p, 1e-7)), axis 1)): Keras' crossentropy on probabilities. */
    st = floe__const_f32(m->g, 1e-7f, &t1);
    if (st == FLOE_OK)
        st = op2(m->g, "Maximum", out, t1, &t2);
    if (st == FLOE_OK)
        st = op1(m->g, "Log", t2, &t3);
    if (st == FLOE_OK)
        st = op2(m->g, "Mul", y, t3, &t1);
    if (st == FLOE_OK)
        st = reduce_all(m->g, "Mean", t1, 2, &t2);
    if (st == FLOE_OK)
        st = floe__const_f32(m->g, -(float)m->out_elems, &t3);
    if (st == FLOE_OK)
        st = op2(m->g, "Mul", t2, t3, loss);
    return st;
}

/* ---- Compile: graph, optimizer, session ------------------------------------------------ */

static floe_status placeholder_attrs(void *arg, floe_attrs *a) {
    const floe_shape *s = arg;
    floe_status st = floe_attrs_set_type(a, "dtype", (floe_dtype)s->reserved_);
    if (st == FLOE_OK)
        st = floe_attrs_set_shape(a, "shape", s->dims, s->ndim);
    return st;
}

static floe_status placeholder(floe_graph *g, floe_dtype dtype, const int64_t *dims, int ndim,
                               floe_node **out) {
    floe_shape s;

    memset(&s, 0, sizeof(s));
    s.ndim = ndim + 1;
    s.dims[0] = -1;
    for (int i = 0; i < ndim; i++)
        s.dims[i + 1] = dims[i];
    s.reserved_ = (int32_t)dtype; /* carries the dtype to placeholder_attrs */
    return floe__node(g, "Placeholder", NULL, 0, placeholder_attrs, &s, out);
}

static floe_status parse_loss(floe_model *m, const char *loss, int *from_logits) {
    static const struct {
        const char *name;
        int kind, from_logits;
    } table[] = {{"sparse_categorical_crossentropy", LOSS_SPARSE_CE, 0},
                 {"sparse_categorical_crossentropy_from_logits", LOSS_SPARSE_CE, 1},
                 {"categorical_crossentropy", LOSS_CATEGORICAL_CE, 0},
                 {"categorical_crossentropy_from_logits", LOSS_CATEGORICAL_CE, 1},
                 {"mse", LOSS_MSE, 0},
                 {"mean_squared_error", LOSS_MSE, 0}};

    for (size_t i = 0; loss != NULL && i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(loss, table[i].name) == 0) {
            m->loss_kind = table[i].kind;
            *from_logits = table[i].from_logits;
            return FLOE_OK;
        }
    }
    return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: unknown loss '%s' (sparse_"
                            "categorical_crossentropy[_from_logits], categorical_crossentropy"
                            "[_from_logits], mse)", loss != NULL ? loss : "(null)");
}

static floe_status parse_metrics(floe_model *m, const char *metrics) {
    const char *p = metrics != NULL ? metrics : "";

    m->has_accuracy = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if ((len == 8 && strncmp(p, "accuracy", 8) == 0) ||
            (len == 27 && strncmp(p, "sparse_categorical_accuracy", 27) == 0) ||
            (len == 20 && strncmp(p, "categorical_accuracy", 20) == 0) ||
            (len == 3 && strncmp(p, "acc", 3) == 0))
            m->has_accuracy = 1;
        else if (!(len == 4 && strncmp(p, "loss", 4) == 0) && len > 0)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: unknown metric '%.*s' "
                                    "(accuracy, sparse_categorical_accuracy, loss)", (int)len,
                                    p);
        p += len;
        if (*p == ',')
            p++;
    }
    if (m->has_accuracy && (m->loss_kind == LOSS_MSE || m->out_shape.ndim != 1))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: accuracy needs a classifier "
                                "(a cross-entropy loss on (batch, classes) outputs)");
    return FLOE_OK;
}

static floe_status make_optimizer(floe_model *m, const char *name, double lr) {
    float f = (float)lr;

    if (!(lr > 0))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: learning rate must be > 0");
    if (name == NULL || strcmp(name, "adam") == 0)
        return floe_optimizer_adam_new(f, 0.9f, 0.999f, 1e-7f, &m->opt);
    if (strcmp(name, "sgd") == 0)
        return floe_optimizer_sgd_new(f, 0.0f, 0, &m->opt);
    if (strcmp(name, "momentum") == 0)
        return floe_optimizer_sgd_new(f, 0.9f, 0, &m->opt);
    if (strcmp(name, "rmsprop") == 0)
        return floe_optimizer_rmsprop_new(f, 0.9f, 0.0f, 1e-7f, 0, &m->opt);
    if (strcmp(name, "adagrad") == 0)
        return floe_optimizer_adagrad_new(f, 0.1f, &m->opt);
    if (strcmp(name, "ftrl") == 0)
        return floe_optimizer_ftrl_new(f, -0.5f, 0.1f, 0.0f, 0.0f, &m->opt);
    return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: unknown optimizer '%s' (adam, sgd, "
                            "momentum, rmsprop, adagrad, ftrl)", name);
}

/* One forward pass over every layer; *@shape receives the output's per-example shape. */
static floe_status build_forward(floe_model *m, floe__build *b, floe_output *out) {
    floe_shape s;
    floe_output x = floe_out(m->x_ph, 0);

    memset(&s, 0, sizeof(s));
    s.ndim = m->input_ndim;
    memcpy(s.dims, m->input_shape, (size_t)m->input_ndim * sizeof(int64_t));
    for (int i = 0; i < m->nlayers; i++) {
        floe_layer *l = m->layers[i];
        floe_status st;
        b->logits.node = NULL;
        b->softmax_out.node = NULL;
        st = floe__layer_build(l, b, x, &s, &x);
        if (st != FLOE_OK) {
            char msg[900];
            snprintf(msg, sizeof(msg), "%s", floe_keras_last_error());
            if (strstr(msg, l->name) != NULL)
                return floe__keras_fail(st, "compile: %s", msg);
            return floe__keras_fail(st, "compile: layer '%s': %s", l->name, msg);
        }
        s = l->out_shape;
    }
    m->out_shape = s;
    *out = x;
    return FLOE_OK;
}

static floe_status collect_vars(floe_model *m, floe_train_var **vars, int *n) {
    int count = 0;

    for (int i = 0; i < m->nlayers; i++)
        count += m->layers[i]->nvars;
    *n = count;
    *vars = calloc(count > 0 ? (size_t)count : 1, sizeof(**vars));
    if (*vars == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "compile: out of memory");
    count = 0;
    m->num_params = 0;
    for (int i = 0; i < m->nlayers; i++) {
        for (int k = 0; k < m->layers[i]->nvars; k++)
            (*vars)[count++] = m->layers[i]->vars[k];
        m->num_params += m->layers[i]->num_params;
    }
    return FLOE_OK;
}

static floe_status check_layers(floe_model *m) {
    if (m->error[0] != '\0')
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: %s", m->error);
    if (m->nlayers == 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: the model has no layers");
    for (int i = 0; i < m->nlayers; i++) {
        if (m->layers[i]->error[0] != '\0')
            return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: layer '%s': %s",
                                    m->layers[i]->name, m->layers[i]->error);
        if (i > 0 && m->layers[i]->kind == FLOE__LAYER_EMBEDDING)
            return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: layer '%s': an Embedding "
                                    "must be the first layer", m->layers[i]->name);
    }
    return FLOE_OK;
}

/* Graph: placeholders, training pass with loss, metrics and updates, inference pass. */
static floe_status build_graph(floe_model *m, const char *optimizer, double lr,
                               const char *loss, const char *metrics) {
    floe__build b;
    floe_output out, logits, infer_logits;
    floe_train_var *vars = NULL;
    int nvars = 0, from_logits = 0;
    floe_status st;

    memset(&b, 0, sizeof(b));
    st = parse_loss(m, loss, &from_logits);
    if (st != FLOE_OK)
        return st;
    st = floe_graph_new(m->ctx, &m->g);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "compile: %s", floe_last_error());
    m->x_dtype = m->layers[0]->kind == FLOE__LAYER_EMBEDDING ? FLOE_DTYPE_I32 : FLOE_DTYPE_F32;
    st = placeholder(m->g, m->x_dtype, m->input_shape, m->input_ndim, &m->x_ph);
    b.g = m->g;
    b.rng = &m->rng;
    b.training = 1;
    if (st == FLOE_OK)
        st = build_forward(m, &b, &out);
    if (st != FLOE_OK)
        goto done;
    m->out_elems = 1;
    for (int i = 0; i < m->out_shape.ndim; i++)
        m->out_elems *= m->out_shape.dims[i];
    m->y_dtype = m->loss_kind == LOSS_SPARSE_CE ? FLOE_DTYPE_I32 : FLOE_DTYPE_F32;
    if (m->loss_kind == LOSS_SPARSE_CE && m->out_shape.ndim != 1) {
        st = floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: a cross-entropy needs "
                              "(batch, classes) outputs; add Flatten and Dense layers");
        goto done;
    }
    st = placeholder(m->g, m->y_dtype, m->out_shape.dims,
                     m->loss_kind == LOSS_SPARSE_CE ? 0 : m->out_shape.ndim, &m->y_ph);
    if (st == FLOE_OK)
        st = parse_metrics(m, metrics);
    logits = b.softmax_out.node == out.node ? b.logits : (floe_output){0};
    if (st == FLOE_OK)
        st = build_loss(m, out, logits, from_logits, &m->train_loss);
    /* The arg-max of a softmax is that of its logits: the training step skips the
     * softmax altogether. */
    if (st == FLOE_OK && m->has_accuracy)
        st = build_correct(m, logits.node != NULL ? logits : out, &m->train_correct);
    if (st == FLOE_OK)
        st = collect_vars(m, &vars, &nvars);
    if (st == FLOE_OK)
        st = make_optimizer(m, optimizer, lr);
    if (st == FLOE_OK)
        st = floe_optimizer_minimize(m->opt, m->g, m->train_loss, vars, nvars, &m->train_op);
    if (st != FLOE_OK)
        goto done;
    /* The inference pass shares the variables. */
    b.training = 0;
    st = build_forward(m, &b, &m->infer_out);
    infer_logits = b.softmax_out.node == m->infer_out.node ? b.logits : (floe_output){0};
    if (st == FLOE_OK)
        st = build_loss(m, m->infer_out, infer_logits, from_logits, &m->eval_loss);
    if (st == FLOE_OK && m->has_accuracy)
        st = build_correct(m, infer_logits.node != NULL ? infer_logits : m->infer_out,
                           &m->eval_correct);
    if (st != FLOE_OK)
        goto done;
    m->ntargets = 1 + b.nupdates;
    m->targets = malloc((size_t)m->ntargets * sizeof(*m->targets));
    if (m->targets == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "compile: out of memory");
        goto done;
    }
    m->targets[0] = m->train_op;
    for (int i = 0; i < b.nupdates; i++)
        m->targets[1 + i] = b.updates[i];
done:
    free(b.updates);
    free(vars);
    return st;
}

static floe_status start_session(floe_model *m) {
    floe_output feeds[2] = {floe_out(m->x_ph, 0), floe_out(m->y_ph, 0)};
    floe_output train_f[2] = {m->train_loss, m->train_correct};
    floe_output eval_f[2] = {m->eval_loss, m->eval_correct};
    floe_node *init;
    floe_status st;
    int nf = m->has_accuracy ? 2 : 1;

    st = floe_train_init_op(m->g, &init);
    if (st != FLOE_OK)
        return st;
    st = floe_session_new(m->g, NULL, &m->s);
    if (st == FLOE_OK)
        st = floe_session_run(m->s, NULL, NULL, 0, NULL, 0, &init, 1, NULL);
    if (st == FLOE_OK)
        st = floe_session_prepare(m->s, feeds, 2, train_f, nf, m->targets, m->ntargets,
                                  &m->train_plan);
    if (st == FLOE_OK)
        st = floe_session_prepare(m->s, feeds, 2, eval_f, nf, NULL, 0, &m->eval_plan);
    if (st == FLOE_OK)
        st = floe_session_prepare(m->s, feeds, 1, &m->infer_out, 1, NULL, 0, &m->predict_plan);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "compile: %s", floe_last_error());
    return FLOE_OK;
}

static void uncompile(floe_model *m) {
    floe_session_free(m->s);
    floe_graph_free(m->g);
    floe_optimizer_free(m->opt);
    free(m->targets);
    m->s = NULL;
    m->g = NULL;
    m->opt = NULL;
    m->targets = NULL;
    m->ntargets = 0;
    for (int i = 0; i < m->nlayers; i++)
        m->layers[i]->nvars = 0;
}

floe_status floe_model_compile(floe_model *m, const char *optimizer, double learning_rate,
                               const char *loss, const char *metrics) {
    floe_status st;

    if (m == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "compile: model is NULL");
    if (m->compiled)
        return floe__keras_fail(FLOE_FAILED_PRECONDITION, "compile: compiled already");
    st = check_layers(m);
    if (st != FLOE_OK)
        return st;
    m->rng = m->seed;
    st = build_graph(m, optimizer, learning_rate, loss, metrics);
    if (st == FLOE_OK)
        st = start_session(m);
    if (st != FLOE_OK) {
        uncompile(m);
        return st;
    }
    m->rng = m->seed ^ 0x5deece66dull; /* shuffling continues from here */
    m->compiled = 1;
    return FLOE_OK;
}

/* ---- Fit, evaluate, predict ------------------------------------------------------------ */

void floe_fit_options_init(floe_fit_options *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->struct_size = sizeof(*opts);
    opts->epochs = 5;
    opts->batch_size = 32;
    opts->shuffle = 1;
    opts->verbose = 1;
}

/* Checks that @ds fits the compiled model (@need_y: targets required). */
static floe_status check_data(const floe_model *m, const floe_dataset *ds, int need_y,
                              const char *what) {
    int64_t dims[FLOE_MAX_DIMS], xe = 1, ie = 1, ye = 1;
    int nd;

    if (m == NULL || !m->compiled)
        return floe__keras_fail(m == NULL ? FLOE_INVALID_ARGUMENT : FLOE_FAILED_PRECONDITION,
                                "%s: %s", what, m == NULL ? "model is NULL" : "compile first");
    if (ds == NULL || floe_dataset_size(ds) <= 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: no data", what);
    nd = floe_dataset_x_shape(ds, dims);
    for (int i = 0; i < nd; i++)
        xe *= dims[i];
    for (int i = 0; i < m->input_ndim; i++)
        ie *= m->input_shape[i];
    if (xe != ie)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: examples have %lld features but the "
                                "model's input has %lld", what, (long long)xe, (long long)ie);
    if (!need_y)
        return FLOE_OK;
    if (floe_dataset_y_dtype(ds) != m->y_dtype)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: the loss wants %s targets, the data "
                                "has %s", what, m->y_dtype == FLOE_DTYPE_I32 ? "i32 class id"
                                                                             : "f32",
                                floe_dtype_name(floe_dataset_y_dtype(ds)));
    nd = floe_dataset_y_shape(ds, dims);
    for (int i = 0; i < nd; i++)
        ye *= dims[i];
    if (m->y_dtype == FLOE_DTYPE_F32 && ye != m->out_elems)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: targets have %lld elements, the "
                                "model's output %lld", what, (long long)ye,
                                (long long)m->out_elems);
    return FLOE_OK;
}

/* Batch tensors of @rows rows: features as the input placeholder, targets as y. */
static floe_status batch_tensors(const floe_model *m, int64_t rows, int with_y, floe_tensor **x,
                                 floe_tensor **y) {
    int64_t shape[FLOE_MAX_DIMS];
    floe_status st;

    *x = NULL;
    *y = NULL;
    shape[0] = rows;
    memcpy(shape + 1, m->input_shape, (size_t)m->input_ndim * sizeof(int64_t));
    st = floe_tensor_new(m->x_dtype, shape, m->input_ndim + 1, x);
    if (st == FLOE_OK && with_y) {
        int nd = m->y_dtype == FLOE_DTYPE_I32 ? 0 : m->out_shape.ndim;
        memcpy(shape + 1, m->out_shape.dims, (size_t)nd * sizeof(int64_t));
        st = floe_tensor_new(m->y_dtype, shape, nd + 1, y);
    }
    if (st != FLOE_OK) {
        floe_tensor_unref(*x);
        *x = NULL;
        return floe__keras_fail(st, "batch of %lld: %s", (long long)rows, floe_last_error());
    }
    return FLOE_OK;
}

/* A pass over @ds in batches of @bs: training (@plan the training plan, @index the
 * order) or evaluation; sums of the per-batch loss times the batch size and of the
 * correct predictions.  @prog (nullable) is updated per step. */
typedef struct pass_result {
    double loss_sum, correct;
    int64_t examples;
} pass_result;

/* fit's per-step TensorBoard scalars (floe_fit_options.log_every_steps); @base: training
 * steps before this pass. */
typedef struct step_log {
    floe__tensorboard *tb;
    int every;
    int64_t base;
} step_log;

/* Accounts training step @step (0-based in this pass) over @rows examples: adds the
 * fetched mean loss (@fetch[0]) and correct count (@fetch[1], nullable) to @r, writes the
 * per-step TensorBoard scalars when due, updates the progress bar.  Releases @fetch. */
/* The f32 scalar @t, fetched from wherever the plan left it (a GPU's memory included). */
static floe_status fetched_scalar(const floe_tensor *t, double *out) {
    floe_tensor *h = NULL;
    floe_status st;
    if (floe_tensor_data(t) != NULL) { /* host memory: no copy, every step */
        *out = (double)*(const float *)floe_tensor_data(t);
        return FLOE_OK;
    }
    if ((st = floe_tensor_to_host(t, &h)) != FLOE_OK)
        return floe__keras_fail(st, "reading a fetched value: %s", floe_last_error());
    *out = (double)*(const float *)floe_tensor_data(h);
    floe_tensor_unref(h);
    return FLOE_OK;
}

static floe_status step_done(const floe_model *m, int64_t step, int64_t rows,
                             floe_tensor *fetch[2], floe__progress *prog, const step_log *sl,
                             pass_result *r) {
    double bl = 0, bc = -1;
    floe_status st = fetched_scalar(fetch[0], &bl);

    if (st == FLOE_OK && fetch[1] != NULL)
        st = fetched_scalar(fetch[1], &bc);
    floe_tensor_unref(fetch[0]);
    floe_tensor_unref(fetch[1]);
    if (st != FLOE_OK)
        return st;
    r->loss_sum += bl * (double)rows;
    if (bc >= 0)
        r->correct += bc;
    r->examples += rows;
    if (sl != NULL && (sl->base + step + 1) % sl->every == 0)
        st = floe__tensorboard_batch(sl->tb, sl->base + step + 1, bl,
                                     m->has_accuracy ? bc / (double)rows : -1);
    if (st == FLOE_OK && prog != NULL)
        floe__progress_update(prog, step + 1, r->loss_sum / (double)r->examples,
                              m->has_accuracy ? r->correct / (double)r->examples : -1,
                              r->examples);
    return st;
}

static floe_status run_pass(floe_model *m, floe_plan *plan, const floe_dataset *ds, int64_t bs,
                            const int64_t *index, floe__progress *prog, const step_log *sl,
                            pass_result *r) {
    int64_t n = floe_dataset_size(ds), steps = (n + bs - 1) / bs;
    floe_tensor *xb[2] = {NULL, NULL}, *yb[2] = {NULL, NULL};
    floe_status st;

    memset(r, 0, sizeof(*r));
    st = batch_tensors(m, n < bs ? n : bs, 1, &xb[0], &yb[0]);
    if (st == FLOE_OK && n % bs != 0 && n > bs)
        st = batch_tensors(m, n % bs, 1, &xb[1], &yb[1]);
    for (int64_t step = 0; st == FLOE_OK && step < steps; step++) {
        int64_t first = step * bs, cnt = n - first < bs ? n - first : bs;
        int k = cnt == bs || n < bs ? 0 : 1;
        floe_tensor *feeds[2] = {xb[k], yb[k]}, *fetch[2] = {NULL, NULL};
        st = floe_dataset_batch(ds, index != NULL ? index + first : NULL, first, cnt, xb[k],
                                yb[k]);
        if (st != FLOE_OK)
            break;
        st = floe_plan_run(plan, feeds, fetch);
        if (st != FLOE_OK) {
            st = floe__keras_fail(st, "step %lld: %s", (long long)step + 1, floe_last_error());
            break;
        }
        st = step_done(m, step, cnt, fetch, prog, sl, r);
    }
    for (int k = 0; k < 2; k++) {
        floe_tensor_unref(xb[k]);
        floe_tensor_unref(yb[k]);
    }
    return st;
}

floe_status floe_model_evaluate(floe_model *m, const floe_dataset *data, int64_t batch_size,
                                double *loss, double *accuracy) {
    pass_result r;
    floe_status st;

    if (loss != NULL)
        *loss = -1;
    if (accuracy != NULL)
        *accuracy = -1;
    st = check_data(m, data, 1, "evaluate");
    if (st != FLOE_OK)
        return st;
    if (batch_size < 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "evaluate: batch_size < 0");
    st = run_pass(m, m->eval_plan, data, batch_size == 0 ? 256 : batch_size, NULL, NULL, NULL,
                  &r);
    if (st != FLOE_OK)
        return st;
    if (loss != NULL)
        *loss = r.loss_sum / (double)r.examples;
    if (accuracy != NULL && m->has_accuracy)
        *accuracy = r.correct / (double)r.examples;
    return FLOE_OK;
}

static floe_status fit_epoch(floe_model *m, const floe_dataset *train, const floe_dataset *val,
                             const floe_fit_options *o, int epoch, int64_t *index,
                             floe__tensorboard *tb, floe_epoch_logs *logs) {
    int64_t n = floe_dataset_size(train);
    step_log sl = {tb, o->log_every_steps, m->steps_done};
    floe__progress prog;
    pass_result r;
    floe_status st;
    double t0;

    if (o->shuffle)
        floe_data_shuffle(index, n, &m->rng);
    floe__progress_begin(&prog, o->out != NULL ? o->out : stdout, o->verbose, epoch, o->epochs,
                         (n + o->batch_size - 1) / o->batch_size);
    t0 = floe__now();
    st = run_pass(m, m->train_plan, train, o->batch_size, o->shuffle ? index : NULL, &prog,
                  tb != NULL && o->log_every_steps > 0 ? &sl : NULL, &r);
    if (st != FLOE_OK) {
        if (prog.tty)
            fputc('\n', prog.f);
        return st;
    }
    memset(logs, 0, sizeof(*logs));
    logs->seconds = floe__now() - t0;
    logs->epoch = epoch;
    logs->epochs = o->epochs;
    logs->examples = r.examples;
    logs->loss = r.loss_sum / (double)r.examples;
    logs->accuracy = m->has_accuracy ? r.correct / (double)r.examples : -1;
    logs->val_loss = logs->val_accuracy = -1;
    m->steps_done += (n + o->batch_size - 1) / o->batch_size;
    if (val != NULL)
        st = floe_model_evaluate(m, val, 256, &logs->val_loss, &logs->val_accuracy);
    if (st == FLOE_OK && o->checkpoint_dir != NULL &&
        (epoch % (o->checkpoint_every > 0 ? o->checkpoint_every : 1) == 0 ||
         epoch == o->epochs)) {
        st = floe_checkpoint_save(m->g, m->s, o->checkpoint_dir, m->steps_done, o->keep_last,
                                  m->checkpoint, sizeof(m->checkpoint));
        logs->checkpoint = m->checkpoint;
    }
    if (st == FLOE_OK)
        floe__progress_end(&prog, logs);
    return st;
}

/* fit's TensorBoard log (tensorboard.c): the files, and every layer variable's reader. */
static floe_status fit_logdir_open(floe_model *m, const char *logdir, int validation,
                                   int log_every_steps, floe__tensorboard **tb) {
    floe_status st;

    *tb = NULL;
    if (log_every_steps < 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: log_every_steps is %d; must be "
                                ">= 0", log_every_steps);
    st = floe__tensorboard_open(m->ctx, logdir, validation, m->g, tb);
    if (st == FLOE_OK && floe_optimizer_lr_node(m->opt) != NULL)
        floe__tensorboard_set_lr(*tb, floe_out(floe_optimizer_lr_node(m->opt), 0));
    for (int i = 0; i < m->nlayers && st == FLOE_OK; i++) {
        const floe_layer *l = m->layers[i];
        for (int k = 0; k < l->nvars + 2 && st == FLOE_OK; k++) {
            const floe_train_var *v = k < l->nvars ? &l->vars[k] : &l->moving[k - l->nvars];
            if (v->handle != NULL && v->read != NULL)
                st = floe__tensorboard_add_weight(*tb, floe_node_name(v->handle),
                                                  floe_out(v->read, 0));
        }
    }
    if (st != FLOE_OK) {
        floe__tensorboard_close(*tb);
        *tb = NULL;
    }
    return st;
}

floe_status floe_model_fit(floe_model *m, const floe_dataset *train,
                           const floe_dataset *validation, const floe_fit_options *opts,
                           floe_epoch_logs *last) {
    floe_fit_options o;
    floe_epoch_logs logs;
    floe__tensorboard *tb = NULL;
    int64_t *index;
    floe_status st;

    if (last != NULL)
        memset(last, 0, sizeof(*last));
    floe_fit_options_init(&o);
    if (opts != NULL)
        memcpy(&o, opts, opts->struct_size < sizeof(o) ? opts->struct_size : sizeof(o));
    st = check_data(m, train, 1, "fit");
    if (st == FLOE_OK && validation != NULL)
        st = check_data(m, validation, 1, "fit (validation data)");
    if (st != FLOE_OK)
        return st;
    if (o.epochs < 0 || o.batch_size <= 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: need epochs >= 0 and batch_size "
                                "> 0 (got %d, %lld)", o.epochs, (long long)o.batch_size);
    index = malloc((size_t)floe_dataset_size(train) * sizeof(*index));
    if (index == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "fit: out of memory");
    if (o.logdir != NULL)
        st = fit_logdir_open(m, o.logdir, validation != NULL, o.log_every_steps, &tb);
    for (int e = 1; e <= o.epochs && st == FLOE_OK; e++) {
        st = fit_epoch(m, train, validation, &o, e, index, tb, &logs);
        if (st == FLOE_OK && last != NULL)
            *last = logs;
        if (st == FLOE_OK && tb != NULL)
            st = floe__tensorboard_epoch(tb, m->s, &logs);
        if (st == FLOE_OK && o.on_epoch_end != NULL)
            st = o.on_epoch_end(o.arg, m, &logs);
    }
    floe_status cst = floe__tensorboard_close(tb);
    if (st == FLOE_OK)
        st = cst;
    free(index);
    return st;
}

floe_status floe_model_predict(floe_model *m, const floe_dataset *data, int64_t first,
                               int64_t count, float *out) {
    const int64_t bs = 256;
    floe_status st = check_data(m, data, 0, "predict");

    if (st != FLOE_OK)
        return st;
    if (out == NULL || first < 0 || count <= 0 || first > floe_dataset_size(data) ||
        count > floe_dataset_size(data) - first)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "predict: [%lld, +%lld) is not a range "
                                "of the %lld examples, or out is NULL", (long long)first,
                                (long long)count, (long long)floe_dataset_size(data));
    for (int64_t done = 0; done < count && st == FLOE_OK;) {
        int64_t cnt = count - done < bs ? count - done : bs;
        floe_tensor *x, *y, *res = NULL;
        st = batch_tensors(m, cnt, 0, &x, &y);
        if (st != FLOE_OK)
            break;
        st = floe_dataset_batch(data, NULL, first + done, cnt, x, NULL);
        if (st == FLOE_OK && (st = floe_plan_run(m->predict_plan, &x, &res)) != FLOE_OK)
            st = floe__keras_fail(st, "predict: %s", floe_last_error());
        if (st == FLOE_OK && floe_tensor_num_elements(res) != cnt * m->out_elems)
            st = floe__keras_fail(FLOE_INTERNAL, "predict: output has %lld elements, expected "
                                  "%lld", (long long)floe_tensor_num_elements(res),
                                  (long long)(cnt * m->out_elems));
        if (st == FLOE_OK) {
            floe_tensor *h = NULL; /* the output may sit in a GPU's memory */
            if ((st = floe_tensor_to_host(res, &h)) != FLOE_OK)
                st = floe__keras_fail(st, "predict: %s", floe_last_error());
            else
                memcpy(out + done * m->out_elems, floe_tensor_data(h),
                       (size_t)(cnt * m->out_elems) * sizeof(float));
            floe_tensor_unref(h);
        }
        floe_tensor_unref(res);
        floe_tensor_unref(x);
        done += cnt;
    }
    return st;
}

/* ---- Fit on a pipeline (floe/pipeline.h) ------------------------------------------------ */

/* One pipeline element (x, y, ...) as the plan's feeds: @x reshaped to [rows, input...],
 * @y to [rows] (i64 class ids narrowed to i32) or [rows, output...].  (transfer full) */
static floe_status pipeline_feeds(const floe_model *m, floe_tensor *const *t, int n,
                                  floe_tensor **x, floe_tensor **y, int64_t *rows,
                                  const char *what) {
    int64_t shape[FLOE_MAX_DIMS], ie = 1;
    floe_dtype ydt = n >= 2 ? floe_tensor_dtype(t[1]) : FLOE_DTYPE_INVALID;
    floe_status st;

    *x = *y = NULL;
    if (n < 2 || floe_tensor_ndim(t[0]) < 1)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: pipeline elements must be batches "
                                "(x, y), got %d tensors", what, n);
    *rows = floe_tensor_dim(t[0], 0);
    for (int i = 0; i < m->input_ndim; i++)
        ie *= m->input_shape[i];
    if (floe_tensor_dtype(t[0]) != m->x_dtype || floe_tensor_num_elements(t[0]) != *rows * ie)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: x is %s with %lld elements a row; "
                                "the model takes %s rows of %lld", what,
                                floe_dtype_name(floe_tensor_dtype(t[0])),
                                (long long)(*rows ? floe_tensor_num_elements(t[0]) / *rows : 0),
                                floe_dtype_name(m->x_dtype), (long long)ie);
    int64_t ye = m->y_dtype == FLOE_DTYPE_I32 ? 1 : m->out_elems;
    int ids = m->y_dtype == FLOE_DTYPE_I32 && (ydt == FLOE_DTYPE_I32 || ydt == FLOE_DTYPE_I64);
    if ((!ids && ydt != m->y_dtype) || floe_tensor_num_elements(t[1]) != *rows * ye)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "%s: y is %s with %lld elements for %lld "
                                "rows; the loss wants %s, %lld a row", what,
                                floe_dtype_name(ydt), (long long)floe_tensor_num_elements(t[1]),
                                (long long)*rows, floe_dtype_name(m->y_dtype), (long long)ye);
    shape[0] = *rows;
    memcpy(shape + 1, m->input_shape, (size_t)m->input_ndim * sizeof(int64_t));
    st = floe_tensor_reshape(t[0], shape, m->input_ndim + 1, x);
    int nd = m->y_dtype == FLOE_DTYPE_I32 ? 0 : m->out_shape.ndim;
    memcpy(shape + 1, m->out_shape.dims, (size_t)nd * sizeof(int64_t));
    if (st == FLOE_OK && ydt == FLOE_DTYPE_I64) {
        st = floe_tensor_new(FLOE_DTYPE_I32, shape, 1, y);
        const int64_t *src = floe_tensor_data(t[1]);
        for (int64_t i = 0; st == FLOE_OK && i < *rows; i++) {
            if (src[i] < INT32_MIN || src[i] > INT32_MAX)
                st = floe__keras_fail(FLOE_OUT_OF_RANGE, "%s: class id %lld does not fit int32",
                                      what, (long long)src[i]);
            else
                ((int32_t *)floe_tensor_data(*y))[i] = (int32_t)src[i];
        }
    } else if (st == FLOE_OK) {
        st = floe_tensor_reshape(t[1], shape, nd + 1, y);
    }
    if (st != FLOE_OK) {
        floe_tensor_unref(*x);
        floe_tensor_unref(*y);
        *x = *y = NULL;
        return floe__keras_fail(st, "%s: %s", what, floe_last_error());
    }
    return FLOE_OK;
}

/* A pass over @p (at most @steps batches, 0: to its end), like run_pass. */
static floe_status run_pipeline_pass(floe_model *m, floe_plan *plan, floe_pipeline *p,
                                     int64_t steps, floe__progress *prog, const step_log *sl,
                                     const char *what, pass_result *r, int64_t *steps_done) {
    floe_status st = FLOE_OK;
    int64_t step = 0;

    memset(r, 0, sizeof(*r));
    for (; steps == 0 || step < steps; step++) {
        floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE], *feeds[2], *fetch[2] = {NULL, NULL};
        int n;
        int64_t rows = 0;
        st = floe_pipeline_next(p, t, &n);
        if (st == FLOE_OUT_OF_RANGE) {
            st = FLOE_OK;
            break;
        }
        if (st != FLOE_OK) {
            st = floe__keras_fail(st, "%s: input pipeline: %s", what, floe_last_error());
            break;
        }
        st = pipeline_feeds(m, t, n, &feeds[0], &feeds[1], &rows, what);
        for (int i = 0; i < n; i++)
            floe_tensor_unref(t[i]);
        if (st != FLOE_OK)
            break;
        st = floe_plan_run(plan, feeds, fetch);
        floe_tensor_unref(feeds[0]);
        floe_tensor_unref(feeds[1]);
        if (st != FLOE_OK) {
            st = floe__keras_fail(st, "%s: step %lld: %s", what, (long long)step + 1,
                                  floe_last_error());
            break;
        }
        if ((st = step_done(m, step, rows, fetch, prog, sl, r)) != FLOE_OK)
            break;
    }
    *steps_done = step;
    if (st == FLOE_OK && r->examples == 0)
        st = floe__keras_fail(FLOE_OUT_OF_RANGE, "%s: the input pipeline gave no batch", what);
    return st;
}

floe_status floe_model_evaluate_pipeline(floe_model *m, floe_pipeline *data, double *loss,
                                         double *accuracy) {
    pass_result r;
    int64_t steps;
    floe_status st;

    if (loss != NULL)
        *loss = -1;
    if (accuracy != NULL)
        *accuracy = -1;
    if (m == NULL || !m->compiled || data == NULL)
        return floe__keras_fail(m && data ? FLOE_FAILED_PRECONDITION : FLOE_INVALID_ARGUMENT,
                                "evaluate: %s", m && data ? "compile first" : "NULL argument");
    st = run_pipeline_pass(m, m->eval_plan, data, 0, NULL, NULL, "evaluate", &r, &steps);
    if (st != FLOE_OK)
        return st;
    if (loss != NULL)
        *loss = r.loss_sum / (double)r.examples;
    if (accuracy != NULL && m->has_accuracy)
        *accuracy = r.correct / (double)r.examples;
    return FLOE_OK;
}

/* One epoch on a pipeline: fit_epoch's steps, logs, validation and checkpoint. */
static floe_status fit_pipeline_epoch(floe_model *m, floe_pipeline *train, int64_t steps,
                                      floe_pipeline *val, const floe_fit_options *o, int epoch,
                                      floe__tensorboard *tb, int64_t *last_steps,
                                      floe_epoch_logs *logs) {
    step_log sl = {tb, o->log_every_steps, m->steps_done};
    floe__progress prog;
    pass_result r;
    int64_t done;
    floe_status st = FLOE_OK;

    if (epoch > 1 && steps == 0)
        st = floe_pipeline_reset(train);
    if (st == FLOE_OK && val != NULL && epoch > 1)
        st = floe_pipeline_reset(val);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "fit: restarting the input pipeline: %s", floe_last_error());
    floe__progress_begin(&prog, o->out != NULL ? o->out : stdout, o->verbose, epoch, o->epochs,
                         steps > 0 ? steps : *last_steps);
    double t0 = floe__now();
    st = run_pipeline_pass(m, m->train_plan, train, steps, &prog,
                           tb != NULL && o->log_every_steps > 0 ? &sl : NULL, "fit", &r, &done);
    if (st != FLOE_OK) {
        if (prog.tty)
            fputc('\n', prog.f);
        return st;
    }
    *last_steps = prog.steps = done;
    memset(logs, 0, sizeof(*logs));
    logs->seconds = floe__now() - t0;
    logs->epoch = epoch;
    logs->epochs = o->epochs;
    logs->examples = r.examples;
    logs->loss = r.loss_sum / (double)r.examples;
    logs->accuracy = m->has_accuracy ? r.correct / (double)r.examples : -1;
    logs->val_loss = logs->val_accuracy = -1;
    m->steps_done += done;
    if (val != NULL)
        st = floe_model_evaluate_pipeline(m, val, &logs->val_loss, &logs->val_accuracy);
    if (st == FLOE_OK && o->checkpoint_dir != NULL &&
        (epoch % (o->checkpoint_every > 0 ? o->checkpoint_every : 1) == 0 ||
         epoch == o->epochs)) {
        st = floe_checkpoint_save(m->g, m->s, o->checkpoint_dir, m->steps_done, o->keep_last,
                                  m->checkpoint, sizeof(m->checkpoint));
        logs->checkpoint = m->checkpoint;
    }
    if (st == FLOE_OK)
        floe__progress_end(&prog, logs);
    return st;
}

floe_status floe_model_fit_pipeline(floe_model *m, floe_pipeline *train, int64_t steps_per_epoch,
                                    floe_pipeline *validation, const floe_fit_options *opts,
                                    floe_epoch_logs *last) {
    floe_fit_options o;
    floe_epoch_logs logs;
    floe__tensorboard *tb = NULL;
    int64_t last_steps = steps_per_epoch;
    floe_status st = FLOE_OK;

    if (last != NULL)
        memset(last, 0, sizeof(*last));
    floe_fit_options_init(&o);
    if (opts != NULL)
        memcpy(&o, opts, opts->struct_size < sizeof(o) ? opts->struct_size : sizeof(o));
    if (m == NULL || train == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: NULL model or pipeline");
    if (!m->compiled)
        return floe__keras_fail(FLOE_FAILED_PRECONDITION, "fit: compile first");
    if (o.epochs < 0 || steps_per_epoch < 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: need epochs >= 0 and "
                                "steps_per_epoch >= 0 (got %d, %lld)", o.epochs,
                                (long long)steps_per_epoch);
    if (o.logdir != NULL)
        st = fit_logdir_open(m, o.logdir, validation != NULL, o.log_every_steps, &tb);
    for (int e = 1; e <= o.epochs && st == FLOE_OK; e++) {
        st = fit_pipeline_epoch(m, train, steps_per_epoch, validation, &o, e, tb, &last_steps,
                                &logs);
        if (st == FLOE_OK && last != NULL)
            *last = logs;
        if (st == FLOE_OK && tb != NULL)
            st = floe__tensorboard_epoch(tb, m->s, &logs);
        if (st == FLOE_OK && o.on_epoch_end != NULL)
            st = o.on_epoch_end(o.arg, m, &logs);
    }
    floe_status cst = floe__tensorboard_close(tb);
    if (st == FLOE_OK)
        st = cst;
    return st;
}

/* from_dataset: a generator over a floe_dataset's examples. */
typedef struct dataset_source {
    const floe_dataset *ds;
    int64_t pos;
} dataset_source;

static floe_status dataset_source_next(void *arg, floe_tensor **out, int *n) {
    dataset_source *s = arg;
    int64_t xd[FLOE_MAX_DIMS + 1], yd[FLOE_MAX_DIMS + 1];
    if (s->pos >= floe_dataset_size(s->ds))
        return floe_set_error(FLOE_OUT_OF_RANGE, "end of the data set");
    int xn = floe_dataset_x_shape(s->ds, xd + 1), yn = floe_dataset_y_shape(s->ds, yd + 1);
    floe_dtype ydt = floe_dataset_y_dtype(s->ds);
    floe_tensor *x = NULL, *y = NULL;
    xd[0] = yd[0] = 1;
    floe_status st = floe_tensor_new(floe_dataset_x_dtype(s->ds) == FLOE_DTYPE_I32
                                         ? FLOE_DTYPE_I32 : FLOE_DTYPE_F32, xd, xn + 1, &x);
    if (st == FLOE_OK && ydt != FLOE_DTYPE_INVALID)
        st = floe_tensor_new(ydt, yd, yn + 1, &y);
    if (st == FLOE_OK)
        st = floe_dataset_batch(s->ds, NULL, s->pos, 1, x, y);
    if (st == FLOE_OK)
        st = floe_tensor_reshape(x, xd + 1, xn, &out[0]);
    if (st == FLOE_OK && y != NULL && (st = floe_tensor_reshape(y, yd + 1, yn, &out[1])) != FLOE_OK)
        floe_tensor_unref(out[0]);
    floe_tensor_unref(x);
    floe_tensor_unref(y);
    if (st != FLOE_OK)
        return floe_set_error(st, "from_dataset: example %lld: %s", (long long)s->pos,
                              floe_keras_last_error());
    *n = y != NULL ? 2 : 1;
    s->pos++;
    return FLOE_OK;
}

static floe_status dataset_source_reset(void *arg) {
    ((dataset_source *)arg)->pos = 0;
    return FLOE_OK;
}

floe_status floe_pipeline_from_dataset(const floe_dataset *ds, floe_pipeline **out) {
    if (out != NULL)
        *out = NULL;
    if (ds == NULL || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_pipeline_from_dataset: NULL argument");
    dataset_source *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "floe_pipeline_from_dataset: out of memory");
    s->ds = ds;
    floe_pipeline_source src = {dataset_source_next, dataset_source_reset, free, s};
    return floe_pipeline_from_source(&src, out);
}
