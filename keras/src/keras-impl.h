/*
 * keras-impl.h - private declarations shared by libfloe_keras's sources (not installed).
 */
#ifndef FLOE_KERAS_IMPL_H
#define FLOE_KERAS_IMPL_H

#include <floe/floe.h>

/*
 * floe__keras_fail: records a failure message for floe_keras_last_error() (keras.h) on
 * the calling thread and returns @st.  Pass a libfloe failure on with its message:
 * floe__keras_fail(st, "fit: %s", floe_last_error()).  Defined in keras.c.
 */
floe_status floe__keras_fail(floe_status st, const char *fmt, ...) FLOE_PRINTF(2, 3);


/* ---- Layers and the model (keras.c, layers.c, progress.c) ------------------------------ */

#include <floe/data.h>
#include <floe/keras.h>
#include <floe/train.h>

typedef enum floe__layer_kind {
    FLOE__LAYER_DENSE,
    FLOE__LAYER_CONV2D,
    FLOE__LAYER_MAX_POOL2D,
    FLOE__LAYER_AVG_POOL2D,
    FLOE__LAYER_FLATTEN,
    FLOE__LAYER_DROPOUT,
    FLOE__LAYER_BATCH_NORM,
    FLOE__LAYER_EMBEDDING,
    FLOE__LAYER_ACTIVATION
} floe__layer_kind;

typedef enum floe__activation {
    FLOE__ACT_LINEAR,
    FLOE__ACT_RELU,
    FLOE__ACT_SOFTMAX,
    FLOE__ACT_SIGMOID,
    FLOE__ACT_TANH,
    FLOE__ACT_INVALID
} floe__activation;

#define FLOE__LAYER_MAX_VARS 4

struct floe_layer {
    floe__layer_kind kind;
    char name[48];               /* "dense", "dense_1", ... set by floe_model_add */
    int64_t units;               /* Dense units, Conv2D filters, Embedding output_dim */
    int64_t input_dim;           /* Embedding */
    int kernel, stride, same;    /* Conv2D and pooling */
    floe__activation activation;
    float rate, momentum, epsilon;
    char error[160];             /* misconfiguration, reported by compile; "" if none */
    /* Built by compile: trainable variables, then BatchNormalization's moving mean and
     * variance (not trainable). */
    floe_train_var vars[FLOE__LAYER_MAX_VARS];
    int nvars;
    floe_train_var moving[2];
    int64_t num_params;
    floe_shape out_shape;        /* one example's output shape */
};

/* What building one forward pass needs and produces. */
typedef struct floe__build {
    floe_graph *g;
    int training;                /* 1: dropout on, batch statistics */
    uint64_t *rng;               /* weight initialisation, dropout seeds */
    floe_output logits;          /* the last softmax's input (.node NULL: none) */
    floe_output softmax_out;     /* and its output */
    floe_node **updates;         /* extra training targets (moving averages) */
    int nupdates, cap_updates;
} floe__build;

/* Adds @l's nodes to b->g on @in (one example's shape @in_shape, batch axis excluded).
 * The first call (training) creates the variables; later calls reuse them. */
floe_status floe__layer_build(floe_layer *l, floe__build *b, floe_output in,
                              const floe_shape *in_shape, floe_output *out);

/* A node through a builder: @op on @in (@nin), attrs set by @set(arg, attrs); errors
 * carry libfloe's message.  *@out (transfer none). */
floe_status floe__node(floe_graph *g, const char *op, const floe_output *in, int nin,
                       floe_status (*set)(void *arg, floe_attrs *a), void *arg,
                       floe_node **out);
/* Consts: @n i32 values (rank 1), an f32 scalar, an i32 scalar. */
floe_status floe__const_i32(floe_graph *g, const int32_t *v, int n, floe_output *out);
floe_status floe__const_f32(floe_graph *g, float v, floe_output *out);
floe_status floe__const_scalar_i32(floe_graph *g, int32_t v, floe_output *out);

/* Progress display of fit (progress.c). */
typedef struct floe__progress {
    FILE *f;
    int tty, verbose;
    int epoch, epochs;
    int64_t steps;
    double start, last_draw;
} floe__progress;

double floe__now(void);
void floe__progress_begin(floe__progress *p, FILE *f, int verbose, int epoch, int epochs,
                          int64_t steps);
void floe__progress_update(floe__progress *p, int64_t step, double loss, double accuracy,
                           int64_t examples);
void floe__progress_end(floe__progress *p, const floe_epoch_logs *logs);

#endif /* FLOE_KERAS_IMPL_H */
