/*
 * floe/keras.h - a Keras-style model API in C: layers, a Sequential model, compile,
 * fit, evaluate and predict.
 *
 *     floe_model *m;
 *     floe_model_new(ctx, (int64_t[]){28, 28}, 2, &m);    // input: one 28x28 image
 *     floe_model_add(m, floe_layer_flatten());
 *     floe_model_add(m, floe_layer_dense(128, "relu"));
 *     floe_model_add(m, floe_layer_dense(10, "softmax"));
 *     floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy");
 *     floe_model_fit(m, train, NULL, NULL, NULL);           // 5 epochs, batch 32
 *     floe_model_evaluate(m, test, 0, &loss, &acc);
 *
 * Layer constructors return a layer (or NULL when out of memory) that floe_model_add()
 * takes over; a NULL or misconfigured layer makes the model fail at compile with the
 * reason, so a model can be written without checking every line (like a node builder).
 *
 * compile() builds one graph: variables initialised from a seeded generator (glorot
 * uniform kernels, zero biases: Keras' defaults), the training forward pass (dropout
 * on, batch statistics), the loss, the metrics and the optimizer's update (train.h's
 * minimize), plus an inference forward pass sharing the variables.  fit() then runs a
 * prepared plan per step, feeding batches converted from the data set (floe/data.h).
 * Two models compiled with the same seed and fitted on the same data with the same
 * options give the same weights.
 *
 * Errors: calls return a floe_status; the message is floe_keras_last_error().
 * Thread safety: a model must not be used by two threads at once.
 */
#ifndef FLOE_KERAS_H
#define FLOE_KERAS_H

#include <floe/floe.h>
#include <floe/data.h>
#include <stdio.h>

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

/* Message of the last failed libfloe_keras call on this thread; "" if none.
 * (transfer none) valid until the next failing call on the thread. */
FLOE_KERAS_API const char *floe_keras_last_error(void);

typedef struct floe_layer floe_layer;
typedef struct floe_model floe_model;

/* ---- Layers (transfer full; NULL when out of memory) ------------------------------
 * @activation: NULL or "linear" (none), "relu", "softmax", "sigmoid", "tanh".
 * @padding: "valid" or "same" (NULL: "valid").  Strides and pool sizes are square. */

/* y = activation(x W + b); x of rank 2 [batch, features]; W glorot uniform, b zeros. */
FLOE_KERAS_API floe_layer *floe_layer_dense(int64_t units, const char *activation);
/* NHWC convolution with a kernel_size x kernel_size x in x filters kernel and a bias. */
FLOE_KERAS_API floe_layer *floe_layer_conv2d(int64_t filters, int kernel_size, int stride,
                                             const char *padding, const char *activation);
/* Max / average pooling over pool_size x pool_size windows (@stride 0: pool_size). */
FLOE_KERAS_API floe_layer *floe_layer_max_pool2d(int pool_size, int stride, const char *padding);
FLOE_KERAS_API floe_layer *floe_layer_avg_pool2d(int pool_size, int stride, const char *padding);
/* [batch, d1, d2, ...] -> [batch, d1 * d2 * ...]. */
FLOE_KERAS_API floe_layer *floe_layer_flatten(void);
/* Training only: zeroes each element with probability @rate in [0, 1), scales the rest
 * by 1 / (1 - rate).  Identity in evaluate and predict. */
FLOE_KERAS_API floe_layer *floe_layer_dropout(float rate);
/* Normalises the last axis (channels) with batch statistics in training and moving
 * averages (@momentum, e.g. 0.99) otherwise; learns gamma (ones) and beta (zeros). */
FLOE_KERAS_API floe_layer *floe_layer_batch_normalization(float momentum, float epsilon);
/* i32 indices in [0, input_dim) -> vectors of @output_dim (uniform in [-0.05, 0.05]). */
FLOE_KERAS_API floe_layer *floe_layer_embedding(int64_t input_dim, int64_t output_dim);
/* An activation on its own. */
FLOE_KERAS_API floe_layer *floe_layer_activation(const char *activation);
/* Frees a layer that was never added to a model.  NULL-safe. */
FLOE_KERAS_API void floe_layer_free(floe_layer *layer);

/* ---- Model ------------------------------------------------------------------------ */

/*
 * floe_model_new: an empty Sequential model.
 * @ctx: (transfer none) must outlive the model; its plugins must include ops_math and
 *       ops_nn.
 * @input_shape: (array length=ndim) the shape of ONE example (no batch axis), 1..7 dims;
 *       the model's input is [batch, input_shape...], f32 (i32 when the first layer is
 *       an Embedding).
 * (transfer full)
 */
FLOE_KERAS_API floe_status floe_model_new(floe_context *ctx, const int64_t *input_shape,
                                          int ndim, floe_model **out);
FLOE_KERAS_API void floe_model_free(floe_model *m); /* NULL-safe */

/* Appends @layer (transfer full, NULL allowed: recorded as an error for compile).
 * Returns FLOE_FAILED_PRECONDITION after compile, FLOE_INVALID_ARGUMENT for a NULL model
 * (the layer is freed in every case). */
FLOE_KERAS_API floe_status floe_model_add(floe_model *m, floe_layer *layer);

/* Seed of the weight initialisers, dropout and shuffling (default 42); before compile. */
FLOE_KERAS_API floe_status floe_model_set_seed(floe_model *m, uint64_t seed);

/*
 * floe_model_compile: builds the model's graph and session and initialises its weights.
 * @optimizer: "adam", "sgd", "momentum" (0.9), "rmsprop", "adagrad" (train.h's).
 * @learning_rate: > 0.
 * @loss: "sparse_categorical_crossentropy" (i32 class ids; on a softmax output it is
 *        computed from the logits before the softmax, as Keras does in effect),
 *        "sparse_categorical_crossentropy_from_logits" (the output is logits),
 *        "categorical_crossentropy" (f32 one-hot targets; same rule for softmax),
 *        "categorical_crossentropy_from_logits", "mse".
 * @metrics: NULL, "", "accuracy" or "sparse_categorical_accuracy" (comma-separated;
 *        "loss" is always reported).
 * Returns FLOE_INVALID_ARGUMENT with the layer at fault for a bad model, or the error of
 * building the graph.
 */
FLOE_KERAS_API floe_status floe_model_compile(floe_model *m, const char *optimizer,
                                              double learning_rate, const char *loss,
                                              const char *metrics);

/* Per-epoch results passed to a fit callback and kept for the last epoch. */
typedef struct floe_epoch_logs {
    int epoch;           /* 1-based */
    int epochs;
    double loss;         /* mean training loss over the epoch */
    double accuracy;     /* training accuracy, -1 without an accuracy metric */
    double val_loss;     /* on the validation data; -1 without */
    double val_accuracy;
    double seconds;      /* wall time of the epoch's training steps */
    int64_t examples;
    /* The checkpoint file saved after this epoch (fit's checkpoint_dir), or NULL.
     * (transfer none) valid until the next epoch. */
    const char *checkpoint;
} floe_epoch_logs;

typedef struct floe_fit_options {
    size_t struct_size;
    int epochs;          /* default 5 */
    int64_t batch_size;  /* default 32 */
    int shuffle;         /* default 1: a new permutation each epoch */
    /* 1: progress bar when stdout is a terminal, per-epoch lines otherwise (default);
     * 0: silent; 2: per-epoch lines always. */
    int verbose;
    FILE *out;           /* where progress goes; NULL: stdout */
    /* (nullable) called after each epoch; a non-OK return stops fit with that status. */
    floe_status (*on_epoch_end)(void *arg, floe_model *m, const floe_epoch_logs *logs);
    void *arg;
    /* (nullable) directory of periodic checkpoints (floe/checkpoint.h: every variable and
     * optimizer slot, step = training steps so far): after every @checkpoint_every epochs
     * (0: each) and after the last, keeping the newest @keep_last (0: all). */
    const char *checkpoint_dir;
    int checkpoint_every;
    int keep_last;
    /* (nullable) TensorBoard log directory (a URI, floe/fs.h), laid out as Keras'
     * TensorBoard callback: LOGDIR/train/ gets the graph once and per epoch epoch_loss,
     * epoch_accuracy, epoch_learning_rate and a histogram of every layer variable;
     * LOGDIR/validation/ gets epoch_loss and epoch_accuracy of @validation.  Step =
     * 0-based epoch; flushed after each epoch (floe/summary.h). */
    const char *logdir;
    /* With @logdir: also batch_loss and batch_accuracy (that batch's values) in train/
     * every @log_every_steps training steps, step = training steps so far (Keras'
     * update_freq); 0: per epoch only (default); < 0: FLOE_INVALID_ARGUMENT. */
    int log_every_steps;
} floe_fit_options;

FLOE_KERAS_API void floe_fit_options_init(floe_fit_options *opts);

/*
 * floe_model_fit: trains on @train (features matching the input shape; targets as the
 * loss wants) for opts->epochs epochs.  @validation (nullable) is evaluated after each
 * epoch.  @opts NULL: defaults.  @last (out, nullable): the last epoch's logs.
 */
FLOE_KERAS_API floe_status floe_model_fit(floe_model *m, const floe_dataset *train,
                                          const floe_dataset *validation,
                                          const floe_fit_options *opts, floe_epoch_logs *last);

/* Mean loss and accuracy (-1 without an accuracy metric) over @data, in batches of
 * @batch_size (0: 256), with the inference forward pass.  Both outputs nullable. */
FLOE_KERAS_API floe_status floe_model_evaluate(floe_model *m, const floe_dataset *data,
                                               int64_t batch_size, double *loss,
                                               double *accuracy);

/* Model outputs for examples [@first, @first + @count) of @data: @out receives
 * @count * floe_model_output_size() floats (probabilities for a softmax output). */
FLOE_KERAS_API floe_status floe_model_predict(floe_model *m, const floe_dataset *data,
                                              int64_t first, int64_t count, float *out);

/* Elements of one example's output (10 for a 10-class classifier); 0 before compile. */
FLOE_KERAS_API int64_t floe_model_output_size(const floe_model *m);
/* Writes a one-line-per-layer summary (name, output shape, parameters) to @f. */
FLOE_KERAS_API void floe_model_summary(const floe_model *m, FILE *f);
/* Number of trainable parameters (after compile). */
FLOE_KERAS_API int64_t floe_model_num_params(const floe_model *m);

/* The compiled model's graph and session (transfer none), for checkpoints (the
 * variables are VarHandleOp nodes named "<layer>/kernel", "<layer>/bias", ...). */
FLOE_KERAS_API floe_graph *floe_model_graph(const floe_model *m);
FLOE_KERAS_API floe_session *floe_model_session(const floe_model *m);

/* ---- Training on an input pipeline (floe/pipeline.h) ------------------------------------ */

typedef struct floe_pipeline floe_pipeline;

/*
 * floe_model_fit_pipeline: fit on batches from @train, a floe_pipeline whose elements
 * are (x, y, ...): x of the model's input dtype with [rows, input shape...] (any shape
 * of rows * input elements), y as the loss wants (i32 or i64 class ids, [rows]; or f32
 * targets, rows * output elements); further tensors are ignored.  The pipeline decides
 * batching and shuffling (opts->batch_size and opts->shuffle are not used); the rest of
 * @opts (epochs, verbose, callback, checkpoints, logdir) as for floe_model_fit.
 * @steps_per_epoch: 0: an epoch is one pass, to the pipeline's end, and @train is reset
 * between epochs (floe_pipeline_reset); > 0: that many batches per epoch, the pipeline
 * running on (use floe_pipeline_repeat(-1) for an endless one).  @validation
 * (nullable): evaluated to its end after each epoch, reset before the next.  The
 * pipelines stay the caller's (transfer none); fit uses them from the calling thread.
 * Errors: the input pipeline's own error (its message quoted), or fit's.
 */
FLOE_KERAS_API floe_status floe_model_fit_pipeline(floe_model *m, floe_pipeline *train,
                                                   int64_t steps_per_epoch,
                                                   floe_pipeline *validation,
                                                   const floe_fit_options *opts,
                                                   floe_epoch_logs *last);

/* Mean loss and accuracy (-1 without an accuracy metric) over the batches of @data, to
 * its end (reset it first to evaluate again).  Outputs nullable. */
FLOE_KERAS_API floe_status floe_model_evaluate_pipeline(floe_model *m, floe_pipeline *data,
                                                        double *loss, double *accuracy);

/*
 * floe_pipeline_from_dataset: a pipeline over the examples of an in-memory data set
 * (floe/data.h): elements (x, y) with x f32 (features times the data set's scale; i32
 * features stay i32) of one example's shape and y an i32 scalar class id or f32 targets
 * (x alone when the data set has no targets).  @ds is borrowed: it must outlive the
 * pipeline.  Reset rewinds it.  (transfer full)
 */
FLOE_KERAS_API floe_status floe_pipeline_from_dataset(const floe_dataset *ds,
                                                      floe_pipeline **out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_KERAS_H */
