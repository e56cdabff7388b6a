/*
 * layers.c - the Keras-style layers of floe/keras.h: their constructors and the graph
 * each one adds for a forward pass.
 *
 * A layer is configured by its constructor (a bad argument is recorded in ->error and
 * reported by compile with the layer's name), then built by compile once for training
 * and once for inference: the first build creates the variables (train.h's
 * floe_train_var_new, initial values drawn on the host from the model's seeded
 * generator: glorot uniform kernels, zero biases, as Keras), the second reuses them.
 * Shapes are tracked per example (no batch axis) so every layer checks its input.
 *
 * Ops: MatMul, Reshape, Mul, AddV2, GatherV2, Sigmoid, Tanh (ops_math); BiasAdd, Conv2D,
 * MaxPool, AvgPool, FusedBatchNormV3, Dropout, Relu, Softmax (ops_nn).
 *
 * Sections: node helpers; constructors; building.
 */
#include "keras-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Node helpers -------------------------------------------------------------------- */

floe_status floe__node(floe_graph *g, const char *op, const floe_output *in, int nin,
                       floe_status (*set)(void *arg, floe_attrs *a), void *arg,
                       floe_node **out) {
    floe_node_builder *nb;
    floe_status st;

    *out = NULL;
    st = floe_node_builder_new(g, op, NULL, &nb);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "%s: %s", op, floe_last_error());
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(nb, in[i]);
    if (set != NULL) {
        st = set(arg, floe_node_builder_attrs(nb));
        if (st != FLOE_OK) {
            floe_node_builder_free(nb);
            return floe__keras_fail(st, "%s: setting attributes: %s", op, floe_last_error());
        }
    }
    st = floe_node_builder_finish(nb, out);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "%s", floe_last_error());
    return FLOE_OK;
}

static floe_status const_node(floe_graph *g, floe_tensor *t, floe_output *out) {
    floe_node_builder *nb;
    floe_node *n;
    floe_status st;

    st = floe_node_builder_new(g, "Const", NULL, &nb);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "Const: %s", floe_last_error());
    floe_attrs_set_tensor(floe_node_builder_attrs(nb), "value", t);
    floe_attrs_set_type(floe_node_builder_attrs(nb), "dtype", floe_tensor_dtype(t));
    st = floe_node_builder_finish(nb, &n);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "%s", floe_last_error());
    *out = floe_out(n, 0);
    return FLOE_OK;
}

/* A Const node of @t, made by a call that returned @st; drops the caller's reference. */
static floe_status const_adopt(floe_graph *g, floe_status st, floe_tensor *t, floe_output *out) {
    if (st != FLOE_OK)
        return floe__keras_fail(st, "constant: %s", floe_last_error());
    st = const_node(g, t, out);
    floe_tensor_unref(t);
    return st;
}

floe_status floe__const_i32(floe_graph *g, const int32_t *v, int n, floe_output *out) {
    int64_t shape[1] = {n};
    floe_tensor *t;
    floe_status st = floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 1, v, (size_t)n * 4, &t);

    return const_adopt(g, st, t, out);
}

floe_status floe__const_scalar_i32(floe_graph *g, int32_t v, floe_output *out) {
    floe_tensor *t;
    floe_status st = floe_tensor_new_scalar_i32(v, &t);

    return const_adopt(g, st, t, out);
}

floe_status floe__const_f32(floe_graph *g, float v, floe_output *out) {
    floe_tensor *t;
    floe_status st = floe_tensor_new_scalar_f32(v, &t);

    return const_adopt(g, st, t, out);
}

static floe_status node1(floe_graph *g, const char *op, floe_output a, floe_output *out) {
    floe_node *n;
    floe_status st = floe__node(g, op, &a, 1, NULL, NULL, &n);
    *out = floe_out(n, 0);
    return st;
}

static floe_status node2(floe_graph *g, const char *op, floe_output a, floe_output b,
                         floe_output *out) {
    floe_output in[2] = {a, b};
    floe_node *n;
    floe_status st = floe__node(g, op, in, 2, NULL, NULL, &n);
    *out = floe_out(n, 0);
    return st;
}

/* ---- Constructors -------------------------------------------------------------------- */

static floe__activation parse_activation(const char *name) {
    static const struct {
        const char *name;
        floe__activation act;
    } table[] = {{"linear", FLOE__ACT_LINEAR}, {"relu", FLOE__ACT_RELU},
                 {"softmax", FLOE__ACT_SOFTMAX}, {"sigmoid", FLOE__ACT_SIGMOID},
                 {"tanh", FLOE__ACT_TANH}};

    if (name == NULL || name[0] == '\0')
        return FLOE__ACT_LINEAR;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(name, table[i].name) == 0)
            return table[i].act;
    return FLOE__ACT_INVALID;
}

static floe_layer *layer_new(floe__layer_kind kind, const char *activation) {
    floe_layer *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->kind = kind;
    l->activation = parse_activation(activation);
    if (l->activation == FLOE__ACT_INVALID)
        snprintf(l->error, sizeof(l->error), "unknown activation '%.40s' (linear, relu, "
                 "softmax, sigmoid, tanh)", activation);
    return l;
}

static int parse_padding(floe_layer *l, const char *padding) {
    if (padding == NULL || strcmp(padding, "valid") == 0)
        return 0;
    if (strcmp(padding, "same") == 0)
        return 1;
    snprintf(l->error, sizeof(l->error), "padding must be \"valid\" or \"same\", not '%.40s'",
             padding);
    return 0;
}

floe_layer *floe_layer_dense(int64_t units, const char *activation) {
    floe_layer *l = layer_new(FLOE__LAYER_DENSE, activation);

    if (l != NULL && (l->units = units) <= 0 && l->error[0] == '\0')
        snprintf(l->error, sizeof(l->error), "units must be > 0, not %lld", (long long)units);
    return l;
}

floe_layer *floe_layer_conv2d(int64_t filters, int kernel_size, int stride,
                              const char *padding, const char *activation) {
    floe_layer *l = layer_new(FLOE__LAYER_CONV2D, activation);

    if (l == NULL)
        return NULL;
    l->units = filters;
    l->kernel = kernel_size;
    l->stride = stride;
    l->same = parse_padding(l, padding);
    if ((filters <= 0 || kernel_size <= 0 || stride <= 0) && l->error[0] == '\0')
        snprintf(l->error, sizeof(l->error), "filters, kernel_size and stride must be > 0 "
                 "(got %lld, %d, %d)", (long long)filters, kernel_size, stride);
    return l;
}

static floe_layer *pool_new(floe__layer_kind kind, int pool_size, int stride,
                            const char *padding) {
    floe_layer *l = layer_new(kind, NULL);

    if (l == NULL)
        return NULL;
    l->kernel = pool_size;
    l->stride = stride == 0 ? pool_size : stride;
    l->same = parse_padding(l, padding);
    if ((pool_size <= 0 || l->stride <= 0) && l->error[0] == '\0')
        snprintf(l->error, sizeof(l->error), "pool_size and stride must be > 0 (got %d, %d)",
                 pool_size, stride);
    return l;
}

floe_layer *floe_layer_max_pool2d(int pool_size, int stride, const char *padding) {
    return pool_new(FLOE__LAYER_MAX_POOL2D, pool_size, stride, padding);
}

floe_layer *floe_layer_avg_pool2d(int pool_size, int stride, const char *padding) {
    return pool_new(FLOE__LAYER_AVG_POOL2D, pool_size, stride, padding);
}

floe_layer *floe_layer_flatten(void) {
    return layer_new(FLOE__LAYER_FLATTEN, NULL);
}

floe_layer *floe_layer_dropout(float rate) {
    floe_layer *l = layer_new(FLOE__LAYER_DROPOUT, NULL);

    if (l != NULL && !((l->rate = rate) >= 0.0f && rate < 1.0f))
        snprintf(l->error, sizeof(l->error), "rate must be in [0, 1), not %g", (double)rate);
    return l;
}

floe_layer *floe_layer_batch_normalization(float momentum, float epsilon) {
    floe_layer *l = layer_new(FLOE__LAYER_BATCH_NORM, NULL);

    if (l == NULL)
        return NULL;
    l->momentum = momentum;
    l->epsilon = epsilon;
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(epsilon > 0.0f))
        snprintf(l->error, sizeof(l->error), "momentum must be in [0, 1] and epsilon > 0 "
                 "(got %g, %g)", (double)momentum, (double)epsilon);
    return l;
}

floe_layer *floe_layer_embedding(int64_t input_dim, int64_t output_dim) {
    floe_layer *l = layer_new(FLOE__LAYER_EMBEDDING, NULL);

    if (l == NULL)
        return NULL;
    l->input_dim = input_dim;
    l->units = output_dim;
    if (input_dim <= 0 || output_dim <= 0)
        snprintf(l->error, sizeof(l->error), "input_dim and output_dim must be > 0 (got "
                 "%lld, %lld)", (long long)input_dim, (long long)output_dim);
    return l;
}

floe_layer *floe_layer_activation(const char *activation) {
    floe_layer *l = layer_new(FLOE__LAYER_ACTIVATION, activation);

    if (l != NULL && activation == NULL)
        snprintf(l->error, sizeof(l->error), "an Activation layer needs an activation");
    return l;
}

void floe_layer_free(floe_layer *layer) {
    free(layer);
}

/* ---- Building ------------------------------------------------------------------------ */

static floe_status shape_error(const floe_layer *l, const char *want, const floe_shape *in) {
    char dims[128];
    int k = 0;

    k += snprintf(dims + k, sizeof(dims) - (size_t)k, "(batch");
    for (int i = 0; i < in->ndim && k < (int)sizeof(dims) - 24; i++)
        k += snprintf(dims + k, sizeof(dims) - (size_t)k, ", %lld", (long long)in->dims[i]);
    snprintf(dims + k, sizeof(dims) - (size_t)k, ")");
    return floe__keras_fail(FLOE_INVALID_ARGUMENT, "layer '%s' needs %s input, got %s",
                            l->name, want, dims);
}

/* A variable "<layer>/<what>" of @shape: glorot uniform over (@fan_in, @fan_out) when
 * @limit is 0 and fans are given, uniform in [-@limit, @limit] for @limit > 0, else
 * filled with @fill. */
static floe_status make_var(floe_layer *l, floe__build *b, const char *what,
                            const int64_t *shape, int ndim, double fan_in, double fan_out,
                            double limit, float fill, floe_train_var *out) {
    char name[96];
    floe_tensor *t;
    floe_status st;
    int64_t n;
    float *v;

    snprintf(name, sizeof(name), "%s/%s", l->name, what);
    st = floe_tensor_new(FLOE_DTYPE_F32, shape, ndim, &t);
    if (st != FLOE_OK)
        return floe__keras_fail(st, "layer '%s': %s", l->name, floe_last_error());
    n = floe_tensor_num_elements(t);
    v = floe_tensor_data(t);
    if (limit == 0.0 && fan_in > 0)
        limit = sqrt(6.0 / (fan_in + fan_out));
    for (int64_t i = 0; i < n; i++)
        v[i] = limit > 0 ? (float)((2.0 * floe_rng_uniform(b->rng) - 1.0) * limit) : fill;
    st = floe_train_var_new(b->g, name, t, out);
    floe_tensor_unref(t);
    return st;
}

static floe_status apply_activation(floe__build *b, floe__activation act, floe_output x,
                                    floe_output *out) {
    static const char *const ops[] = {NULL, "Relu", "Softmax", "Sigmoid", "Tanh"};

    if (act == FLOE__ACT_LINEAR) {
        *out = x;
        return FLOE_OK;
    }
    floe_status st = node1(b->g, ops[act], x, out);

    if (st == FLOE_OK && act == FLOE__ACT_SOFTMAX) {
        b->logits = x;
        b->softmax_out = *out;
    }
    return st;
}

static floe_status bias_attrs(void *arg, floe_attrs *a) {
    return floe_attrs_set_string(a, "data_format", "NHWC", 4);
}

static floe_status build_dense(floe_layer *l, floe__build *b, floe_output in,
                               const floe_shape *s, floe_output *out) {
    floe_output y;
    floe_node *n;
    floe_status st;

    if (s->ndim != 1)
        return shape_error(l, "(batch, features) (add a Flatten layer first)", s);
    if (l->nvars == 0) {
        int64_t ks[2] = {s->dims[0], l->units}, bs[1] = {l->units};
        st = make_var(l, b, "kernel", ks, 2, (double)ks[0], (double)ks[1], 0, 0, &l->vars[0]);
        if (st == FLOE_OK)
            st = make_var(l, b, "bias", bs, 1, 0, 0, 0, 0.0f, &l->vars[1]);
        if (st != FLOE_OK)
            return st;
        l->nvars = 2;
        l->num_params = ks[0] * ks[1] + bs[0];
    }
    st = node2(b->g, "MatMul", in, floe_out(l->vars[0].read, 0), &y);
    if (st == FLOE_OK) {
        floe_output bin[2] = {y, floe_out(l->vars[1].read, 0)};
        st = floe__node(b->g, "BiasAdd", bin, 2, bias_attrs, NULL, &n);
        y = floe_out(n, 0);
    }
    if (st == FLOE_OK)
        st = apply_activation(b, l->activation, y, out);
    l->out_shape.ndim = 1;
    l->out_shape.dims[0] = l->units;
    return st;
}

/* Output extent of a window op, TensorFlow's rule. */
static int64_t window_out(int64_t in, int k, int stride, int same) {
    return same ? (in + stride - 1) / stride : (in - k + stride) / stride;
}

static floe_status window_attrs(void *arg, floe_attrs *a) {
    const floe_layer *l = arg;
    int64_t strides[4] = {1, l->stride, l->stride, 1}, ksize[4] = {1, l->kernel, l->kernel, 1};
    const char *pad = l->same ? "SAME" : "VALID";
    floe_status st = floe_attrs_set_int_list(a, "strides", strides, 4);

    if (st == FLOE_OK)
        st = floe_attrs_set_string(a, "padding", pad, strlen(pad));
    if (st == FLOE_OK)
        st = floe_attrs_set_string(a, "data_format", "NHWC", 4);
    if (st == FLOE_OK && l->kind != FLOE__LAYER_CONV2D)
        st = floe_attrs_set_int_list(a, "ksize", ksize, 4);
    return st;
}

static floe_status build_conv(floe_layer *l, floe__build *b, floe_output in,
                              const floe_shape *s, floe_output *out) {
    floe_output y;
    floe_node *n;
    floe_status st;
    int64_t oh, ow;

    if (s->ndim != 3)
        return shape_error(l, "(batch, height, width, channels)", s);
    oh = window_out(s->dims[0], l->kernel, l->stride, l->same);
    ow = window_out(s->dims[1], l->kernel, l->stride, l->same);
    if (oh <= 0 || ow <= 0)
        return shape_error(l, "an image at least as large as the kernel", s);
    if (l->nvars == 0) {
        int64_t ks[4] = {l->kernel, l->kernel, s->dims[2], l->units}, bs[1] = {l->units};
        double rf = (double)l->kernel * l->kernel;
        st = make_var(l, b, "kernel", ks, 4, rf * (double)s->dims[2], rf * (double)l->units, 0,
                      0, &l->vars[0]);
        if (st == FLOE_OK)
            st = make_var(l, b, "bias", bs, 1, 0, 0, 0, 0.0f, &l->vars[1]);
        if (st != FLOE_OK)
            return st;
        l->nvars = 2;
        l->num_params = ks[0] * ks[1] * ks[2] * ks[3] + bs[0];
    }
    {
        floe_output cin[2] = {in, floe_out(l->vars[0].read, 0)};
        st = floe__node(b->g, "Conv2D", cin, 2, window_attrs, l, &n);
        y = floe_out(n, 0);
    }
    if (st == FLOE_OK) {
        floe_output bin[2] = {y, floe_out(l->vars[1].read, 0)};
        st = floe__node(b->g, "BiasAdd", bin, 2, bias_attrs, NULL, &n);
        y = floe_out(n, 0);
    }
    if (st == FLOE_OK)
        st = apply_activation(b, l->activation, y, out);
    l->out_shape.ndim = 3;
    l->out_shape.dims[0] = oh;
    l->out_shape.dims[1] = ow;
    l->out_shape.dims[2] = l->units;
    return st;
}

static floe_status build_pool(floe_layer *l, floe__build *b, floe_output in,
                              const floe_shape *s, floe_output *out) {
    floe_node *n;
    floe_status st;

    if (s->ndim != 3)
        return shape_error(l, "(batch, height, width, channels)", s);
    l->out_shape = *s;
    l->out_shape.dims[0] = window_out(s->dims[0], l->kernel, l->stride, l->same);
    l->out_shape.dims[1] = window_out(s->dims[1], l->kernel, l->stride, l->same);
    if (l->out_shape.dims[0] <= 0 || l->out_shape.dims[1] <= 0)
        return shape_error(l, "an image at least as large as the pool", s);
    st = floe__node(b->g, l->kind == FLOE__LAYER_MAX_POOL2D ? "MaxPool" : "AvgPool", &in, 1,
                    window_attrs, l, &n);
    *out = floe_out(n, 0);
    return st;
}

static floe_status build_flatten(floe_layer *l, floe__build *b, floe_output in,
                                 const floe_shape *s, floe_output *out) {
    int64_t p = 1;
    floe_output shape;
    floe_status st;

    for (int i = 0; i < s->ndim; i++)
        p *= s->dims[i];
    if (p > INT32_MAX)
        return shape_error(l, "fewer than 2^31 features", s);
    st = floe__const_i32(b->g, (const int32_t[]){-1, (int32_t)p}, 2, &shape);
    if (st == FLOE_OK)
        st = node2(b->g, "Reshape", in, shape, out);
    l->out_shape.ndim = 1;
    l->out_shape.dims[0] = p;
    return st;
}

typedef struct dropout_args {
    float rate;
    int64_t seed;
} dropout_args;

static floe_status dropout_attrs(void *arg, floe_attrs *a) {
    const dropout_args *d = arg;
    floe_status st = floe_attrs_set_float(a, "rate", d->rate);

    if (st == FLOE_OK)
        st = floe_attrs_set_int(a, "seed", d->seed);
    return st;
}

/* ops_nn's fused Dropout (x * mask, one pass); its seed comes from the model's
 * generator, so a seeded model repeats its masks. */
static floe_status build_dropout(floe_layer *l, floe__build *b, floe_output in,
                                 const floe_shape *s, floe_output *out) {
    dropout_args d = {l->rate, (int64_t)(floe_rng_next(b->rng) & 0x7fffffffffffll) + 1};
    floe_node *n;
    floe_status st;

    l->out_shape = *s;
    if (!b->training || l->rate == 0.0f) {
        *out = in;
        return FLOE_OK;
    }
    st = floe__node(b->g, "Dropout", &in, 1, dropout_attrs, &d, &n);
    *out = floe_out(n, 0);
    return st;
}

typedef struct bn_args {
    float epsilon;
    int training;
} bn_args;

static floe_status bn_attrs(void *arg, floe_attrs *a) {
    const bn_args *p = arg;
    floe_status st = floe_attrs_set_float(a, "epsilon", p->epsilon);

    if (st == FLOE_OK)
        st = floe_attrs_set_bool(a, "is_training", p->training);
    if (st == FLOE_OK)
        st = floe_attrs_set_string(a, "data_format", "NHWC", 4);
    return st;
}

static floe_status assign_node(floe__build *b, const floe_train_var *v, floe_output value) {
    floe_output in[2] = {floe_out(v->handle, 0), value};
    floe_node *n;
    floe_status st = floe__node(b->g, "AssignVariableOp", in, 2, NULL, NULL, &n);

    if (st != FLOE_OK)
        return st;
    if (b->nupdates == b->cap_updates) {
        int cap = b->cap_updates > 0 ? 2 * b->cap_updates : 8;
        floe_node **nu = realloc(b->updates, (size_t)cap * sizeof(*nu));
        if (nu == NULL)
            return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "compile: out of memory");
        b->updates = nu;
        b->cap_updates = cap;
    }
    b->updates[b->nupdates++] = n;
    return FLOE_OK;
}

/* moving = moving * momentum + batch * (1 - momentum). */
static floe_status moving_update(floe_layer *l, floe__build *b, const floe_train_var *v,
                                 floe_output batch) {
    floe_output m, k, a, c, sum;
    floe_status st = floe__const_f32(b->g, l->momentum, &m);

    if (st == FLOE_OK)
        st = floe__const_f32(b->g, 1.0f - l->momentum, &k);
    if (st == FLOE_OK)
        st = node2(b->g, "Mul", floe_out(v->read, 0), m, &a);
    if (st == FLOE_OK)
        st = node2(b->g, "Mul", batch, k, &c);
    if (st == FLOE_OK)
        st = node2(b->g, "AddV2", a, c, &sum);
    if (st == FLOE_OK)
        st = assign_node(b, v, sum);
    return st;
}

/* FusedBatchNormV3 over the last axis; a rank-1 example is viewed as [N, 1, 1, C]. */
static floe_status build_batch_norm(floe_layer *l, floe__build *b, floe_output in,
                                    const floe_shape *s, floe_output *out) {
    bn_args args = {l->epsilon, b->training};
    int64_t c;
    floe_output x = in, shape, inputs[5];
    floe_node *n;
    floe_status st = FLOE_OK;

    if (s->ndim != 1 && s->ndim != 3)
        return shape_error(l, "(batch, features) or (batch, height, width, channels)", s);
    c = s->dims[s->ndim - 1];
    l->out_shape = *s;
    if (l->nvars == 0) {
        int64_t cs[1] = {c};
        st = make_var(l, b, "gamma", cs, 1, 0, 0, 0, 1.0f, &l->vars[0]);
        if (st == FLOE_OK)
            st = make_var(l, b, "beta", cs, 1, 0, 0, 0, 0.0f, &l->vars[1]);
        if (st == FLOE_OK)
            st = make_var(l, b, "moving_mean", cs, 1, 0, 0, 0, 0.0f, &l->moving[0]);
        if (st == FLOE_OK)
            st = make_var(l, b, "moving_variance", cs, 1, 0, 0, 0, 1.0f, &l->moving[1]);
        if (st != FLOE_OK)
            return st;
        l->nvars = 2;
        l->num_params = 2 * c;
    }
    if (s->ndim == 1) {
        st = floe__const_i32(b->g, (const int32_t[]){-1, 1, 1, (int32_t)c}, 4, &shape);
        if (st == FLOE_OK)
            st = node2(b->g, "Reshape", in, shape, &x);
    }
    if (st != FLOE_OK)
        return st;
    inputs[0] = x;
    inputs[1] = floe_out(l->vars[0].read, 0);
    inputs[2] = floe_out(l->vars[1].read, 0);
    inputs[3] = floe_out(l->moving[0].read, 0);
    inputs[4] = floe_out(l->moving[1].read, 0);
    st = floe__node(b->g, "FusedBatchNormV3", inputs, 5, bn_attrs, &args, &n);
    if (st == FLOE_OK && b->training)
        st = moving_update(l, b, &l->moving[0], floe_out(n, 1));
    if (st == FLOE_OK && b->training)
        st = moving_update(l, b, &l->moving[1], floe_out(n, 2));
    if (st != FLOE_OK)
        return st;
    *out = floe_out(n, 0);
    if (s->ndim == 1) {
        st = floe__const_i32(b->g, (const int32_t[]){-1, (int32_t)c}, 2, &shape);
        if (st == FLOE_OK)
            st = node2(b->g, "Reshape", floe_out(n, 0), shape, out);
    }
    return st;
}

static floe_status build_embedding(floe_layer *l, floe__build *b, floe_output in,
                                   const floe_shape *s, floe_output *out) {
    floe_output axis;
    floe_node *n;
    floe_status st;

    if (s->ndim < 1 || s->ndim >= FLOE_MAX_DIMS - 1)
        return shape_error(l, "(batch, indices...)", s);
    if (l->nvars == 0) {
        int64_t ts[2] = {l->input_dim, l->units};
        st = make_var(l, b, "embeddings", ts, 2, 0, 0, 0.05, 0.0f, &l->vars[0]);
        if (st != FLOE_OK)
            return st;
        l->nvars = 1;
        l->num_params = ts[0] * ts[1];
    }
    /* GatherV2 on the variable's read, so minimize (which differentiates the reads)
     * trains the table; ResourceGather on the handle would get no gradient there. */
    st = floe__const_scalar_i32(b->g, 0, &axis);
    if (st == FLOE_OK) {
        floe_output gin[3] = {floe_out(l->vars[0].read, 0), in, axis};
        st = floe__node(b->g, "GatherV2", gin, 3, NULL, NULL, &n);
    }
    if (st != FLOE_OK)
        return st;
    *out = floe_out(n, 0);
    l->out_shape = *s;
    l->out_shape.dims[l->out_shape.ndim++] = l->units;
    return st;
}

floe_status floe__layer_build(floe_layer *l, floe__build *b, floe_output in,
                              const floe_shape *in_shape, floe_output *out) {
    *out = in;
    switch (l->kind) {
    case FLOE__LAYER_DENSE:
        return build_dense(l, b, in, in_shape, out);
    case FLOE__LAYER_CONV2D:
        return build_conv(l, b, in, in_shape, out);
    case FLOE__LAYER_MAX_POOL2D:
    case FLOE__LAYER_AVG_POOL2D:
        return build_pool(l, b, in, in_shape, out);
    case FLOE__LAYER_FLATTEN:
        return build_flatten(l, b, in, in_shape, out);
    case FLOE__LAYER_DROPOUT:
        return build_dropout(l, b, in, in_shape, out);
    case FLOE__LAYER_BATCH_NORM:
        return build_batch_norm(l, b, in, in_shape, out);
    case FLOE__LAYER_EMBEDDING:
        return build_embedding(l, b, in, in_shape, out);
    case FLOE__LAYER_ACTIVATION:
        l->out_shape = *in_shape;
        return apply_activation(b, l->activation, in, out);
    }
    return floe__keras_fail(FLOE_INTERNAL, "layer '%s': unknown kind", l->name);
}
