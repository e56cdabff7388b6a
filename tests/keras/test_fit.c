/*
 * test_fit.c - floe/keras.h end to end: small models trained in a few seconds must
 * learn (loss falls, accuracy far above chance) on a synthetic separable data set and,
 * when installed, on 2000 Fashion-MNIST images; seeded runs are reproducible; bad
 * models and data are rejected with the reason.
 */
#include "test_common.h"

#include <floe/checkpoint.h>
#include <floe/data.h>
#include <floe/keras.h>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFEAT 20
#define NCLASS 4

/* @n points around NCLASS random centres (noise 0.5, centres in [-1, 1]^NFEAT). */
static floe_dataset *blobs(int64_t n, uint64_t seed) {
    float centres[NCLASS][NFEAT], *x = malloc((size_t)n * NFEAT * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    int64_t shape[1] = {NFEAT};
    uint64_t rng = 1234; /* the same centres for every split */
    floe_dataset *ds;

    assert_non_null(x);
    assert_non_null(y);
    for (int c = 0; c < NCLASS; c++)
        for (int k = 0; k < NFEAT; k++)
            centres[c][k] = 2.0f * floe_rng_uniform(&rng) - 1.0f;
    rng = seed;
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(floe_rng_next(&rng) % NCLASS);
        for (int k = 0; k < NFEAT; k++)
            x[i * NFEAT + k] = centres[y[i]][k] + (floe_rng_uniform(&rng) - 0.5f);
    }
    assert_int_equal(floe_dataset_from_arrays(n, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_I32, y,
                                              NULL, 0, 1.0f, &ds),
                     FLOE_OK);
    free(x);
    free(y);
    return ds;
}

static void check_ok(floe_status st) {
    if (st != FLOE_OK)
        fail_msg("%s: %s", floe_status_str(st), floe_keras_last_error());
}

static floe_model *mlp(floe_context *ctx, uint64_t seed) {
    floe_model *m;
    check_ok(floe_model_new(ctx, (int64_t[]){NFEAT}, 1, &m));
    check_ok(floe_model_set_seed(m, seed));
    check_ok(floe_model_add(m, floe_layer_dense(32, "relu")));
    check_ok(floe_model_add(m, floe_layer_dropout(0.1f)));
    check_ok(floe_model_add(m, floe_layer_dense(NCLASS, "softmax")));
    check_ok(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"));
    return m;
}

typedef struct loss_log {
    double first, last;
} loss_log;

static floe_status record(void *arg, floe_model *m, const floe_epoch_logs *logs) {
    loss_log *l = arg;
    if (logs->epoch == 1)
        l->first = logs->loss;
    l->last = logs->loss;
    return FLOE_OK;
}

static void fit_learns_separable_blobs(void **state) {
    floe_dataset *train = blobs(2000, 1), *test = blobs(500, 2);
    floe_model *m = mlp(*state, 7);
    floe_fit_options o;
    floe_epoch_logs last;
    loss_log ll = {0, 0};
    double loss0, acc0, loss, acc;

    check_ok(floe_model_evaluate(m, test, 0, &loss0, &acc0));
    floe_fit_options_init(&o);
    o.epochs = 3;
    o.verbose = 0;
    o.on_epoch_end = record;
    o.arg = &ll;
    check_ok(floe_model_fit(m, train, test, &o, &last));
    check_ok(floe_model_evaluate(m, test, 0, &loss, &acc));
    print_message("blobs: loss %.4f -> %.4f (epochs %.4f -> %.4f), accuracy %.3f -> %.3f\n",
                  loss0, loss, ll.first, ll.last, acc0, acc);
    assert_int_equal(last.epoch, 3);
    assert_int_equal(last.examples, 2000);
    assert_true(ll.last < ll.first);
    assert_true(loss < 0.5 * loss0);
    assert_true(acc > 0.9);
    assert_true(fabs(last.val_accuracy - acc) < 1e-9);

    /* predict gives probabilities whose arg-max agrees with evaluate's accuracy. */
    float *p = malloc(500 * NCLASS * sizeof(float));
    int correct = 0;
    assert_int_equal(floe_model_output_size(m), NCLASS);
    check_ok(floe_model_predict(m, test, 0, 500, p));
    for (int i = 0; i < 500; i++) {
        int best = 0;
        float sum = 0;
        for (int c = 0; c < NCLASS; c++) {
            sum += p[i * NCLASS + c];
            if (p[i * NCLASS + c] > p[i * NCLASS + best])
                best = c;
        }
        assert_float_equal(sum, 1.0f, 1e-4);
        correct += best == floe_dataset_label(test, i);
    }
    assert_true(fabs(correct / 500.0 - acc) < 1e-9);
    free(p);
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(test);
}

static void fit_is_reproducible_with_a_seed(void **state) {
    floe_dataset *train = blobs(300, 3);
    floe_model *a = mlp(*state, 11), *b = mlp(*state, 11), *c = mlp(*state, 12);
    floe_fit_options o;
    float pa[8], pb[8], pc[8];

    floe_fit_options_init(&o);
    o.epochs = 2;
    o.verbose = 0;
    check_ok(floe_model_fit(a, train, NULL, &o, NULL));
    check_ok(floe_model_fit(b, train, NULL, &o, NULL));
    check_ok(floe_model_fit(c, train, NULL, &o, NULL));
    check_ok(floe_model_predict(a, train, 0, 2, pa));
    check_ok(floe_model_predict(b, train, 0, 2, pb));
    check_ok(floe_model_predict(c, train, 0, 2, pc));
    assert_memory_equal(pa, pb, sizeof(pa));
    assert_memory_not_equal(pa, pc, sizeof(pa));
    floe_model_free(a);
    floe_model_free(b);
    floe_model_free(c);
    floe_dataset_free(train);
}

/* 8x8 single-channel images: class 0 bright on the left half, class 1 on the right. */
static floe_dataset *halves(int64_t n, uint64_t seed) {
    uint8_t *x = malloc((size_t)n * 64);
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    int64_t shape[3] = {8, 8, 1};
    floe_dataset *ds;

    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(floe_rng_next(&seed) & 1);
        for (int k = 0; k < 64; k++) {
            int left = (k % 8) < 4;
            int bright = left == (y[i] == 0);
            x[i * 64 + k] = (uint8_t)(bright ? 128 + floe_rng_next(&seed) % 128
                                             : floe_rng_next(&seed) % 128);
        }
    }
    assert_int_equal(floe_dataset_from_arrays(n, FLOE_DTYPE_U8, x, shape, 3, FLOE_DTYPE_I32, y,
                                              NULL, 0, 1.0f / 255.0f, &ds),
                     FLOE_OK);
    free(x);
    free(y);
    return ds;
}

static void fit_trains_a_small_cnn(void **state) {
    floe_dataset *train = halves(512, 5), *test = halves(200, 6);
    floe_model *m;
    floe_fit_options o;
    floe_epoch_logs last;
    double acc;

    check_ok(floe_model_new(*state, (int64_t[]){8, 8, 1}, 3, &m));
    floe_model_add(m, floe_layer_conv2d(4, 3, 1, "same", "relu"));
    floe_model_add(m, floe_layer_batch_normalization(0.9f, 1e-3f));
    floe_model_add(m, floe_layer_max_pool2d(2, 0, "valid"));
    floe_model_add(m, floe_layer_avg_pool2d(2, 2, "same"));
    floe_model_add(m, floe_layer_flatten());
    floe_model_add(m, floe_layer_dense(2, NULL));
    floe_model_add(m, floe_layer_activation("softmax"));
    check_ok(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"));
    floe_fit_options_init(&o);
    o.epochs = 3;
    o.verbose = 0;
    o.batch_size = 50; /* 512 = 10 * 50 + 12: a partial last batch */
    check_ok(floe_model_fit(m, train, NULL, &o, &last));
    check_ok(floe_model_evaluate(m, test, 64, NULL, &acc));
    print_message("cnn: last epoch loss %.4f accuracy %.3f, test accuracy %.3f\n", last.loss,
                  last.accuracy, acc);
    assert_true(acc > 0.9);
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(test);
}

static void fit_learns_fashion_mnist_subset(void **state) {
    floe_dataset *all, *train, *test_all, *test;
    floe_model *m;
    floe_fit_options o;
    loss_log ll = {0, 0};
    double acc;

    if (floe_dataset_load_fashion_mnist(NULL, 1, &all) != FLOE_OK)
        skip();
    check_ok(floe_dataset_load_fashion_mnist(NULL, 0, &test_all));
    check_ok(floe_dataset_slice(all, 0, 2000, &train));
    check_ok(floe_dataset_slice(test_all, 0, 1000, &test));
    floe_dataset_free(all);
    floe_dataset_free(test_all);
    check_ok(floe_model_new(*state, (int64_t[]){28, 28}, 2, &m));
    floe_model_add(m, floe_layer_flatten());
    floe_model_add(m, floe_layer_dense(64, "relu"));
    floe_model_add(m, floe_layer_dense(10, "softmax"));
    check_ok(floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy"));
    floe_fit_options_init(&o);
    o.epochs = 3;
    o.verbose = 0;
    o.on_epoch_end = record;
    o.arg = &ll;
    check_ok(floe_model_fit(m, train, NULL, &o, NULL));
    check_ok(floe_model_evaluate(m, test, 0, NULL, &acc));
    print_message("fashion-mnist 2000: loss %.4f -> %.4f, test accuracy %.3f\n", ll.first,
                  ll.last, acc);
    assert_true(ll.last < 0.8 * ll.first);
    assert_true(acc > 0.65);
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(test);
}

static void compile_reports_the_bad_layer(void **state) {
    floe_model *m;
    floe_dataset *ds = blobs(10, 1);

    check_ok(floe_model_new(*state, (int64_t[]){NFEAT}, 1, &m));
    floe_model_add(m, floe_layer_dense(8, "relu"));
    floe_model_add(m, floe_layer_dense(4, "swish"));
    assert_int_equal(floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy",
                                        NULL),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_keras_last_error(), "dense_1"));
    assert_non_null(strstr(floe_keras_last_error(), "swish"));
    assert_int_equal(floe_model_fit(m, ds, NULL, NULL, NULL), FLOE_FAILED_PRECONDITION);
    floe_model_free(m);

    /* A Dense layer on images needs a Flatten first. */
    check_ok(floe_model_new(*state, (int64_t[]){4, 5}, 2, &m));
    floe_model_add(m, floe_layer_dense(4, NULL));
    assert_int_equal(floe_model_compile(m, "adam", 1e-3, "mse", NULL), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_keras_last_error(), "Flatten"));
    floe_model_free(m);

    /* Unknown loss, optimizer, metric; data of the wrong size. */
    check_ok(floe_model_new(*state, (int64_t[]){NFEAT}, 1, &m));
    floe_model_add(m, floe_layer_dense(4, "softmax"));
    assert_int_equal(floe_model_compile(m, "adam", 1e-3, "hinge", NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_model_compile(m, "adamw", 1e-3, "mse", NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy",
                                        "auc"),
                     FLOE_INVALID_ARGUMENT);
    check_ok(floe_model_compile(m, "sgd", 1e-1, "sparse_categorical_crossentropy", "accuracy"));
    floe_dataset *wrong;
    int64_t shape[1] = {3};
    float x[6] = {0};
    int32_t y[2] = {0, 1};
    check_ok(floe_dataset_from_arrays(2, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_I32, y, NULL, 0,
                                      1.0f, &wrong));
    assert_int_equal(floe_model_fit(m, wrong, NULL, NULL, NULL), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_keras_last_error(), "features"));
    assert_int_equal(floe_model_add(m, floe_layer_flatten()), FLOE_FAILED_PRECONDITION);
    floe_dataset_free(wrong);
    floe_model_free(m);
    floe_dataset_free(ds);
}

static void fit_mse_regression(void **state) {
    enum { N = 512 };
    float x[N * 2], y[N];
    int64_t shape[1] = {2}, yshape[1] = {1};
    uint64_t rng = 9;
    floe_dataset *ds;
    floe_model *m;
    floe_fit_options o;
    double loss0, loss;

    for (int i = 0; i < N; i++) {
        x[2 * i] = floe_rng_uniform(&rng);
        x[2 * i + 1] = floe_rng_uniform(&rng);
        y[i] = 3.0f * x[2 * i] - 2.0f * x[2 * i + 1] + 0.5f;
    }
    check_ok(floe_dataset_from_arrays(N, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_F32, y, yshape,
                                      1, 1.0f, &ds));
    check_ok(floe_model_new(*state, shape, 1, &m));
    floe_model_add(m, floe_layer_dense(1, NULL));
    check_ok(floe_model_compile(m, "sgd", 0.1, "mse", NULL));
    check_ok(floe_model_evaluate(m, ds, 0, &loss0, NULL));
    floe_fit_options_init(&o);
    o.epochs = 20;
    o.verbose = 0;
    check_ok(floe_model_fit(m, ds, NULL, &o, NULL));
    check_ok(floe_model_evaluate(m, ds, 0, &loss, NULL));
    print_message("mse: %.5f -> %.5f\n", loss0, loss);
    assert_true(loss < 0.01);
    floe_model_free(m);
    floe_dataset_free(ds);
}

/* Pairs of tokens in 0..9; the class is whether their sum is below 9 (the model must
 * learn each token's value from the shared embedding). */
static void fit_trains_an_embedding(void **state) {
    enum { N = 600 };
    int32_t x[N * 2], y[N];
    int64_t shape[1] = {2};
    uint64_t rng = 21;
    floe_dataset *ds;
    floe_model *m;
    floe_fit_options o;
    double acc;

    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 2; k++)
            x[i * 2 + k] = (int32_t)(floe_rng_next(&rng) % 10);
        y[i] = x[i * 2] + x[i * 2 + 1] < 9;
    }
    check_ok(floe_dataset_from_arrays(N, FLOE_DTYPE_I32, x, shape, 1, FLOE_DTYPE_I32, y, NULL, 0,
                                      1.0f, &ds));
    check_ok(floe_model_new(*state, shape, 1, &m));
    floe_model_add(m, floe_layer_embedding(10, 4));
    floe_model_add(m, floe_layer_flatten());
    floe_model_add(m, floe_layer_dense(2, "softmax"));
    check_ok(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"));
    floe_fit_options_init(&o);
    o.epochs = 20;
    o.verbose = 0;
    check_ok(floe_model_fit(m, ds, NULL, &o, NULL));
    check_ok(floe_model_evaluate(m, ds, 0, NULL, &acc));
    print_message("embedding: accuracy %.3f\n", acc);
    assert_true(acc > 0.95);
    floe_model_free(m);
    floe_dataset_free(ds);
}

/* fit saves periodic checkpoints, keeps the newest two, and a new model restored from
 * the latest predicts exactly as the trained one. */
static void fit_saves_checkpoints_that_restore(void **state) {
    char dir[64], path[1024], cmd[128];
    floe_dataset *train = blobs(200, 4);
    floe_model *a = mlp(*state, 5), *b = mlp(*state, 6);
    floe_fit_options o;
    floe_epoch_logs last;
    float pa[8], pb[8];
    int files = 0;

    tc_tmpdir(dir, sizeof(dir), "test-fit");
    floe_fit_options_init(&o);
    o.epochs = 3;
    o.verbose = 0;
    o.checkpoint_dir = dir;
    o.keep_last = 2;
    check_ok(floe_model_fit(a, train, NULL, &o, &last));
    assert_non_null(last.checkpoint);
    assert_non_null(strstr(last.checkpoint, "ckpt-21.floeckpt")); /* 3 epochs of 7 steps */
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        files += strstr(e->d_name, ".floeckpt") != NULL;
    closedir(d);
    assert_int_equal(files, 2);
    check_ok(floe_checkpoint_restore_latest(floe_model_graph(b), floe_model_session(b), dir, path,
                                            sizeof(path)));
    check_ok(floe_model_predict(a, train, 0, 2, pa));
    check_ok(floe_model_predict(b, train, 0, 2, pb));
    assert_memory_equal(pa, pb, sizeof(pa));
    floe_model_free(a);
    floe_model_free(b);
    floe_dataset_free(train);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* One-hot targets: categorical cross-entropy on a softmax (through its logits) and on
 * sigmoid outputs (Keras' formula on probabilities) both learn the blobs. */
static void fit_categorical_crossentropy(void **state) {
    enum { N = 800 };
    floe_dataset *ids = blobs(N, 8), *ds;
    float *x = malloc((size_t)N * NFEAT * sizeof(float)), y[N * NCLASS];
    int64_t shape[1] = {NFEAT}, yshape[1] = {NCLASS};
    const char *acts[2] = {"softmax", "sigmoid"};

    for (int i = 0; i < N; i++) {
        memcpy(x + i * NFEAT, floe_dataset_example(ids, i), NFEAT * sizeof(float));
        for (int c = 0; c < NCLASS; c++)
            y[i * NCLASS + c] = c == floe_dataset_label(ids, i) ? 1.0f : 0.0f;
    }
    check_ok(floe_dataset_from_arrays(N, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_F32, y, yshape,
                                      1, 1.0f, &ds));
    for (int k = 0; k < 2; k++) {
        floe_model *m;
        floe_fit_options o;
        double loss0, loss, acc;
        check_ok(floe_model_new(*state, shape, 1, &m));
        floe_model_add(m, floe_layer_dense(16, "tanh"));
        floe_model_add(m, floe_layer_dense(NCLASS, acts[k]));
        check_ok(floe_model_compile(m, "adam", 1e-2, "categorical_crossentropy", "accuracy"));
        check_ok(floe_model_evaluate(m, ds, 0, &loss0, NULL));
        floe_fit_options_init(&o);
        o.epochs = 5;
        o.verbose = 0;
        check_ok(floe_model_fit(m, ds, NULL, &o, NULL));
        check_ok(floe_model_evaluate(m, ds, 0, &loss, &acc));
        print_message("categorical (%s): loss %.4f -> %.4f, accuracy %.3f\n", acts[k], loss0,
                      loss, acc);
        assert_true(loss < 0.5 * loss0);
        assert_true(acc > 0.9);
        floe_model_free(m);
    }
    /* Class-id targets do not fit a categorical loss. */
    floe_model *m;
    check_ok(floe_model_new(*state, shape, 1, &m));
    floe_model_add(m, floe_layer_dense(NCLASS, "softmax"));
    check_ok(floe_model_compile(m, "sgd", 0.1, "categorical_crossentropy", "accuracy"));
    assert_int_equal(floe_model_fit(m, ids, NULL, NULL, NULL), FLOE_INVALID_ARGUMENT);
    floe_model_free(m);
    free(x);
    floe_dataset_free(ds);
    floe_dataset_free(ids);
}

/* Runs `floe ARGS` from the build tree; returns the exit status, output in @out. */
static int run_tool(const char *args, char *out, size_t len) {
    const char *root = getenv("FLOE_BUILD_ROOT");
    char cmd[1024];
    size_t n = 0;
    FILE *p;
    int status;

    if (root == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' %s 2>&1", root, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (n + 1 < len && (status = fgetc(p)) != EOF)
        out[n++] = (char)status;
    out[n] = '\0';
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void floe_train_tool_reports_usage_and_missing_data(void **state) {
    static char out[1 << 16];

    if (getenv("FLOE_BUILD_ROOT") == NULL)
        skip();
    assert_int_equal(run_tool("train --data /nonexistent-floe-data", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "apt-get install dataset-fashion-mnist"));
    assert_int_equal(run_tool("train --model resnet", out, sizeof(out)), 2);
    assert_int_equal(run_tool("train --epochs -1", out, sizeof(out)), 2);
    assert_int_equal(run_tool("predict", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--checkpoint"));
    assert_int_equal(run_tool("train --help", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "usage: floe train"));
    if (access(FLOE_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", R_OK) == 0) {
        /* No training: the untrained model's test accuracy is printed. */
        assert_int_equal(run_tool("train --epochs 0 --no-checkpoint", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "test accuracy"));
        assert_non_null(strstr(out, "Trainable parameters: 101770"));
        /* One epoch, a checkpoint, then predict from it. */
        char dir[64], args[256];
        tc_tmpdir(dir, sizeof(dir), "test-tool");
        snprintf(args, sizeof(args), "train --epochs 1 --checkpoint %s", dir);
        assert_int_equal(run_tool(args, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "Epoch 1/1"));
        assert_non_null(strstr(out, "ckpt-1875.floeckpt"));
        snprintf(args, sizeof(args), "predict --checkpoint %s --index 7 --count 2", dir);
        assert_int_equal(run_tool(args, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "image     7:"));
        assert_non_null(strstr(out, "image     8:"));
        snprintf(args, sizeof(args), "predict --checkpoint %s --model cnn", dir);
        assert_int_equal(run_tool(args, out, sizeof(out)), 1);
        assert_non_null(strstr(out, "conv2d/kernel"));
        snprintf(args, sizeof(args), "rm -rf '%s'", dir);
        assert_int_equal(system(args), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fit_learns_separable_blobs),
        cmocka_unit_test(fit_is_reproducible_with_a_seed),
        cmocka_unit_test(fit_trains_a_small_cnn),
        cmocka_unit_test(fit_learns_fashion_mnist_subset),
        cmocka_unit_test(compile_reports_the_bad_layer),
        cmocka_unit_test(fit_mse_regression),
        cmocka_unit_test(fit_trains_an_embedding),
        cmocka_unit_test(fit_saves_checkpoints_that_restore),
        cmocka_unit_test(fit_categorical_crossentropy),
        cmocka_unit_test(floe_train_tool_reports_usage_and_missing_data),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
