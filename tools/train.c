/*
 * train.c - `floe train` and `floe predict`: the seed documents' Keras examples on
 * Fashion-MNIST through floe/keras.h.
 *
 *   floe train [--model mlp|cnn] [--epochs N] [--batch-size N] [--data DIR]
 *              [--checkpoint DIR] [--no-checkpoint] [--seed N] [--logdir DIR]
 *       trains (mlp: Flatten, Dense 128 relu, Dense 10 softmax; cnn: the seed's
 *       conv 5x5x32, max-pool, conv 5x5x64, max-pool, dense 1024, dense 10), Adam 1e-3,
 *       batch 32; prints per-epoch loss, accuracy and time, then the test accuracy,
 *       and saves a checkpoint after each epoch (keeping the last 3).  --logdir writes
 *       TensorBoard event files (DIR/train, DIR/validation with the test set as
 *       validation data).
 *   floe predict [--model mlp|cnn] --checkpoint DIR [--index I] [--count N] [--data DIR]
 *       restores the latest checkpoint (of the model it holds, unless --model says) and
 *       prints the predicted class of test images.
 *
 * Exit status as the other commands: 0 success, 1 runtime error, 2 usage error.
 */
#include "train-cmd.h"
#include "server-cmd.h"

#include <floe/checkpoint.h>
#include <floe/data.h>
#include <floe/keras.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage_train[] =
    "usage: floe train [--model mlp|cnn] [--epochs N] [--batch-size N] [--data DIR]\n"
    "                  [--checkpoint DIR] [--no-checkpoint] [--seed N] [--logdir DIR]\n"
    "\n"
    "Trains a model of the seed documents on Fashion-MNIST (Debian's dataset-fashion-mnist,\n"
    "in " FLOE_FASHION_MNIST_DIR " unless --data says otherwise) with Adam 1e-3:\n"
    "  mlp (default)  Flatten, Dense 128 relu, Dense 10 softmax; 5 epochs\n"
    "  cnn            Conv 5x5x32 relu, MaxPool 2, Conv 5x5x64 relu, MaxPool 2,\n"
    "                 Dense 1024 relu, Dense 10 softmax; 2 epochs\n"
    "Prints each epoch's loss, accuracy and time, then the test loss and accuracy, and\n"
    "saves a checkpoint after each epoch in DIR (default floe-<model>-ckpt; the last 3\n"
    "are kept).  --logdir DIR writes TensorBoard event files, as Keras' TensorBoard\n"
    "callback does: DIR/train (graph, loss, accuracy, weight histograms per epoch) and\n"
    "DIR/validation (the test set's loss and accuracy after each epoch); watch them with\n"
    "`tensorboard --logdir DIR`.\n";

static const char usage_predict[] =
    "usage: floe predict [--model mlp|cnn] --checkpoint DIR [--index I] [--count N]\n"
    "                    [--data DIR]\n"
    "\n"
    "Restores the latest checkpoint of DIR (written by `floe train`; the model, mlp or cnn,\n"
    "is the one the checkpoint holds unless --model says otherwise) and prints the\n"
    "predicted class, its probability and the true label of test images I .. I+N-1\n"
    "(default 0, 10).\n";

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                            "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

typedef struct train_args {
    const char *model, *data, *checkpoint, *logdir;
    int epochs, no_checkpoint, index, count;
    int64_t batch_size;
    uint64_t seed;
} train_args;

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "floe: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

static int parse_int(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || x < lo || x > hi)
        return 0;
    *v = x;
    return 1;
}

/* Parses the options of both commands; returns -1 to go on or an exit status. */
static int parse_args(int argc, char **argv, int predict, train_args *a) {
    const char *usage = predict ? usage_predict : usage_train;

    memset(a, 0, sizeof(*a));
    a->model = NULL; /* train: mlp; predict: what the checkpoint holds */
    a->epochs = -1;
    a->batch_size = 32;
    a->seed = 42;
    a->count = 10;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!predict && strcmp(opt, "--no-checkpoint") == 0) {
            a->no_checkpoint = 1;
            continue;
        }
        if (val == NULL)
            return usage_error(usage, "unknown option or missing value: '%s'", opt);
        i++;
        if (strcmp(opt, "--model") == 0) {
            if (strcmp(val, "mlp") != 0 && strcmp(val, "cnn") != 0)
                return usage_error(usage, "--model must be mlp or cnn, not '%s'", val);
            a->model = val;
        } else if (strcmp(opt, "--data") == 0) {
            a->data = val;
        } else if (strcmp(opt, "--checkpoint") == 0) {
            a->checkpoint = val;
        } else if (!predict && strcmp(opt, "--logdir") == 0 && val[0] != '\0') {
            a->logdir = val;
        } else if (!predict && strcmp(opt, "--epochs") == 0 && parse_int(val, 0, 100000, &v)) {
            a->epochs = (int)v;
        } else if (!predict && strcmp(opt, "--batch-size") == 0 &&
                   parse_int(val, 1, 1 << 20, &v)) {
            a->batch_size = v;
        } else if (!predict && strcmp(opt, "--seed") == 0 && parse_int(val, 0, INT64_MAX, &v)) {
            a->seed = (uint64_t)v;
        } else if (predict && strcmp(opt, "--index") == 0 && parse_int(val, 0, 1 << 30, &v)) {
            a->index = (int)v;
        } else if (predict && strcmp(opt, "--count") == 0 && parse_int(val, 1, 1 << 30, &v)) {
            a->count = (int)v;
        } else {
            return usage_error(usage, "bad option or value near '%s'", opt);
        }
    }
    if (predict && a->checkpoint == NULL)
        return usage_error(usage, "%s", "--checkpoint DIR is required");
    if (!predict && a->model == NULL)
        a->model = "mlp";
    return -1;
}

static int open_context(const char *plugin_path, int no_system, floe_context **ctx) {
    floe_context_options opts;
    floe_status st;

    floe_context_options_init(&opts);
    opts.plugin_path = plugin_path;
    opts.system_plugins = !no_system;
    st = floe_context_new(&opts, ctx);
    if (st != FLOE_OK) {
        fprintf(stderr, "floe: cannot create a context: %s: %s\n", floe_status_str(st),
                floe_last_error());
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int keras_error(const char *what, floe_status st) {
    fprintf(stderr, "floe: %s: %s: %s\n", what, floe_status_str(st), floe_keras_last_error());
    return EXIT_RUNTIME;
}

/* The seed documents' models, compiled with Adam 1e-3. */
static floe_status build_model(floe_context *ctx, const train_args *a, floe_model **out) {
    int cnn = strcmp(a->model, "cnn") == 0;
    floe_model *m;
    floe_status st;

    st = floe_model_new(ctx, cnn ? (int64_t[]){28, 28, 1} : (int64_t[]){28, 28}, cnn ? 3 : 2,
                        &m);
    if (st != FLOE_OK)
        return st;
    floe_model_set_seed(m, a->seed);
    if (cnn) {
        floe_model_add(m, floe_layer_conv2d(32, 5, 1, "same", "relu"));
        floe_model_add(m, floe_layer_max_pool2d(2, 2, "same"));
        floe_model_add(m, floe_layer_conv2d(64, 5, 1, "same", "relu"));
        floe_model_add(m, floe_layer_max_pool2d(2, 2, "same"));
        floe_model_add(m, floe_layer_flatten());
        floe_model_add(m, floe_layer_dense(1024, "relu"));
    } else {
        floe_model_add(m, floe_layer_flatten());
        floe_model_add(m, floe_layer_dense(128, "relu"));
    }
    floe_model_add(m, floe_layer_dense(10, "softmax"));
    st = floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy");
    if (st != FLOE_OK) {
        floe_model_free(m);
        return st;
    }
    *out = m;
    return FLOE_OK;
}

int floe_tool_train(const char *plugin_path, int no_system, int argc, char **argv) {
    train_args a;
    floe_context *ctx = NULL;
    floe_dataset *train = NULL, *test = NULL;
    floe_model *m = NULL;
    floe_fit_options o;
    floe_epoch_logs last;
    char dir[512];
    double loss, acc;
    floe_status st;
    int rc;

    for (int i = 1; i < argc; i++)   /* a worker of a distributed job: server.c */
        if (strcmp(argv[i], "--cluster") == 0)
            return floe_tool_dist_train(plugin_path, no_system, argc, argv);
    if ((rc = parse_args(argc, argv, 0, &a)) >= 0)
        return rc;
    if ((rc = open_context(plugin_path, no_system, &ctx)) != EXIT_OK)
        return rc;
    if ((st = floe_dataset_load_fashion_mnist_ctx(ctx, a.data, 1, &train)) != FLOE_OK ||
        (st = floe_dataset_load_fashion_mnist_ctx(ctx, a.data, 0, &test)) != FLOE_OK) {
        rc = keras_error("loading Fashion-MNIST", st);
        goto done;
    }
    if ((st = build_model(ctx, &a, &m)) != FLOE_OK) {
        rc = keras_error("building the model", st);
        goto done;
    }
    printf("Model %s; Fashion-MNIST: %lld training, %lld test images\n", a.model,
           (long long)floe_dataset_size(train), (long long)floe_dataset_size(test));
    floe_model_summary(m, stdout);
    floe_fit_options_init(&o);
    o.epochs = a.epochs >= 0 ? a.epochs : strcmp(a.model, "cnn") == 0 ? 2 : 5;
    o.batch_size = a.batch_size;
    snprintf(dir, sizeof(dir), "%s", a.checkpoint != NULL ? a.checkpoint : "");
    if (a.checkpoint == NULL)
        snprintf(dir, sizeof(dir), "floe-%s-ckpt", a.model);
    if (!a.no_checkpoint) {
        o.checkpoint_dir = dir;
        o.keep_last = 3;
    }
    o.logdir = a.logdir;
    fflush(stdout);
    /* With a log directory the test set is the validation data, for its curves. */
    if ((st = floe_model_fit(m, train, a.logdir != NULL ? test : NULL, &o, &last)) != FLOE_OK) {
        rc = keras_error("training", st);
        goto done;
    }
    if ((st = floe_model_evaluate(m, test, 0, &loss, &acc)) != FLOE_OK) {
        rc = keras_error("evaluating", st);
        goto done;
    }
    printf("Test loss: %.4f - test accuracy: %.4f\n", loss, acc);
    if (last.checkpoint != NULL)
        printf("Checkpoint: %s\n", last.checkpoint);
done:
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(test);
    floe_context_free(ctx);
    return rc;
}

/* "cnn" when the latest checkpoint of @dir holds the seed CNN's first convolution,
 * else "mlp" (a missing or bad checkpoint is reported by the restore that follows). */
static const char *checkpoint_model(floe_context *ctx, const char *dir) {
    char path[1024];
    floe_checkpoint *c;
    const char *model = "mlp";

    if (floe_checkpoint_latest(ctx, dir, path, sizeof(path)) != FLOE_OK ||
        floe_checkpoint_open(ctx, path, &c) != FLOE_OK)
        return model;
    if (floe_checkpoint_find(c, "conv2d/kernel") >= 0)
        model = "cnn";
    floe_checkpoint_close(c);
    return model;
}

int floe_tool_predict(const char *plugin_path, int no_system, int argc, char **argv) {
    train_args a;
    floe_context *ctx = NULL;
    floe_dataset *test = NULL;
    floe_model *m = NULL;
    float *p = NULL;
    char path[1024];
    floe_status st;
    int rc = parse_args(argc, argv, 1, &a);

    if (rc >= 0)
        return rc;
    if ((rc = open_context(plugin_path, no_system, &ctx)) != EXIT_OK)
        return rc;
    if ((st = floe_dataset_load_fashion_mnist_ctx(ctx, a.data, 0, &test)) != FLOE_OK) {
        rc = keras_error("loading Fashion-MNIST", st);
        goto done;
    }
    if (a.index >= floe_dataset_size(test)) {
        fprintf(stderr, "floe: --index %d: the test set has %lld images\n", a.index,
                (long long)floe_dataset_size(test));
        rc = EXIT_USAGE;
        goto done;
    }
    if (a.count > floe_dataset_size(test) - a.index)
        a.count = (int)(floe_dataset_size(test) - a.index);
    if (a.model == NULL)
        a.model = checkpoint_model(ctx, a.checkpoint);
    if ((st = build_model(ctx, &a, &m)) != FLOE_OK) {
        rc = keras_error("building the model", st);
        goto done;
    }
    st = floe_checkpoint_restore_latest(floe_model_graph(m), floe_model_session(m),
                                        a.checkpoint, path, sizeof(path));
    if (st != FLOE_OK) {
        rc = keras_error("restoring the checkpoint (one written by `floe train`; --model "
                         "mlp|cnn picks the model)", st);
        goto done;
    }
    p = malloc((size_t)a.count * 10 * sizeof(float));
    if (p == NULL || (st = floe_model_predict(m, test, a.index, a.count, p)) != FLOE_OK) {
        rc = p == NULL ? (fprintf(stderr, "floe: out of memory\n"), EXIT_RUNTIME)
                       : keras_error("predicting", st);
        goto done;
    }
    printf("Checkpoint: %s\n", path);
    for (int i = 0; i < a.count; i++) {
        int best = 0, label = floe_dataset_label(test, a.index + i);
        for (int c = 1; c < 10; c++)
            if (p[i * 10 + c] > p[i * 10 + best])
                best = c;
        printf("image %5d: %-11s (p=%.3f)  label: %-11s %s\n", a.index + i, class_names[best],
               (double)p[i * 10 + best], class_names[label], best == label ? "" : "  wrong");
    }
done:
    free(p);
    floe_model_free(m);
    floe_dataset_free(test);
    floe_context_free(ctx);
    return rc;
}
