/*
 * test_fit_pipeline.c - floe_model_fit_pipeline: training from a floe_pipeline.
 *
 * 6000 Fashion-MNIST training images are written as tf.train.Examples (image: 784 raw
 * bytes, label: int64) into two TFRecord files; the MLP trained from them through
 * interleave, shuffle, batch, parse_example, a parallel decoding map and prefetch must
 * learn (test accuracy), and, with the same batches in the same order, must end exactly
 * where fit on the same data in memory ends.  Also: a pipeline over an in-memory data
 * set, steps_per_epoch over an endless pipeline, and errors (a damaged file, elements of
 * the wrong shape) stopping fit with their message.  The Fashion-MNIST cases skip when
 * the dataset-fashion-mnist package is missing.
 */
#include "test_common.h"

#include <floe/data.h>
#include <floe/example.h>
#include <floe/keras.h>
#include <floe/pipeline.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTRAIN 6000
#define BATCH 32

static char g_dir[64], g_files[2][128];
static floe_dataset *g_train, *g_test;
static floe_context *g_ctx;

static void check_ok(floe_status st) {
    if (st != FLOE_OK)
        fail_msg("%s: %s | %s", floe_status_str(st), floe_keras_last_error(), floe_last_error());
}

/* Examples i = f, f+2, f+4, ... of @ds into file @f (so the two files interleave back
 * into the original order with cycle_length 2). */
static void write_split(const floe_dataset *ds, int f) {
    floe_tfrecord_writer *w;
    check_ok(floe_tfrecord_writer_open(NULL, g_files[f], FLOE_COMPRESSION_NONE, 0, &w));
    floe_example_builder *b = floe_example_builder_new();
    for (int64_t i = f; i < floe_dataset_size(ds); i += 2) {
        const void *img = floe_dataset_example(ds, i);
        size_t len = 784;
        int64_t label = floe_dataset_label(ds, i);
        floe_example_builder_clear(b);
        check_ok(floe_example_builder_add_bytes(b, "image", &img, &len, 1));
        check_ok(floe_example_builder_add_int64s(b, "label", &label, 1));
        const void *d;
        size_t n;
        check_ok(floe_example_builder_serialize(b, &d, &n));
        check_ok(floe_tfrecord_write(w, d, n));
    }
    floe_example_builder_free(b);
    check_ok(floe_tfrecord_writer_close(w));
}

static int setup(void **state) {
    (void)state;
    g_ctx = tc_context();
    snprintf(g_dir, sizeof g_dir, "/tmp/floe-fitpipe-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    floe_dataset *all, *test_all;
    if (floe_dataset_load_fashion_mnist(NULL, 1, &all) != FLOE_OK)
        return 0; /* the Fashion-MNIST cases skip */
    if (floe_dataset_load_fashion_mnist(NULL, 0, &test_all) != FLOE_OK ||
        floe_dataset_slice(all, 0, NTRAIN, &g_train) != FLOE_OK ||
        floe_dataset_slice(test_all, 0, 2000, &g_test) != FLOE_OK)
        return -1;
    floe_dataset_free(all);
    floe_dataset_free(test_all);
    for (int f = 0; f < 2; f++) {
        snprintf(g_files[f], sizeof g_files[f], "%s/fmnist-%d.tfrecord", g_dir, f);
        write_split(g_train, f);
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    floe_dataset_free(g_train);
    floe_dataset_free(g_test);
    floe_context_free(g_ctx);
    return system(cmd) == 0 ? 0 : -1;
}

static floe_model *mlp(void) {
    floe_model *m;
    check_ok(floe_model_new(g_ctx, (int64_t[]){28, 28}, 2, &m));
    check_ok(floe_model_set_seed(m, 5));
    floe_model_add(m, floe_layer_flatten());
    floe_model_add(m, floe_layer_dense(64, "relu"));
    floe_model_add(m, floe_layer_dense(10, "softmax"));
    check_ok(floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy"));
    return m;
}

/* The map: a [B] string tensor of 784-byte images -> [B, 784] f32 in [0, 1]. */
static floe_status decode_images(void *arg, floe_tensor *const *in, int nin, floe_tensor **out,
                                 int *nout) {
    (void)arg;
    int64_t rows = floe_tensor_num_elements(in[0]), shape[2] = {rows, 784};
    floe_status st = floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &out[0]);
    float *x = floe_tensor_data(out[0]);
    for (int64_t r = 0; st == FLOE_OK && r < rows; r++) {
        const char *b;
        size_t len;
        st = floe_tensor_get_string(in[0], r, &b, &len);
        if (st == FLOE_OK && len != 784)
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "image %lld has %zu bytes, not 784",
                                (long long)r, len);
        for (size_t k = 0; st == FLOE_OK && k < 784; k++)
            x[r * 784 + (int64_t)k] = (float)(uint8_t)b[k] / 255.0f;
    }
    if (st != FLOE_OK) {
        floe_tensor_unref(out[0]);
        return st;
    }
    for (int i = 1; i < nin; i++)
        out[i] = floe_tensor_ref(in[i]);
    *nout = nin;
    return FLOE_OK;
}

/* TFRecord files -> (interleave) -> [shuffle] -> batch -> parse -> decode -> prefetch. */
static floe_pipeline *fmnist_pipeline(int shuffle) {
    const char *files[2] = {g_files[0], g_files[1]};
    floe_feature_spec specs[2];
    memset(specs, 0, sizeof specs);
    specs[0].key = "image";
    specs[0].dtype = FLOE_DTYPE_STRING;
    specs[1].key = "label";
    specs[1].dtype = FLOE_DTYPE_I32;
    floe_pipeline *p;
    check_ok(floe_pipeline_from_tfrecord(NULL, files, 2, FLOE_COMPRESSION_NONE, 2, &p));
    if (shuffle)
        check_ok(floe_pipeline_shuffle(p, 2000, 17, &p));
    check_ok(floe_pipeline_batch(p, BATCH, 0, &p));
    check_ok(floe_pipeline_parse_example(p, specs, 2, g_ctx, 2, &p));
    check_ok(floe_pipeline_map(p, decode_images, NULL, g_ctx, 2, &p));
    check_ok(floe_pipeline_prefetch(p, 4, &p));
    return p;
}

typedef struct losses {
    double loss[8];
    int n;
} losses;

static floe_status record(void *arg, floe_model *m, const floe_epoch_logs *logs) {
    (void)m;
    losses *l = arg;
    if (l->n < 8)
        l->loss[l->n++] = logs->loss;
    return FLOE_OK;
}

static void fit_pipeline_learns_fashion_mnist_from_tfrecord(void **state) {
    (void)state;
    if (g_train == NULL)
        skip();
    floe_model *m = mlp();
    floe_pipeline *p = fmnist_pipeline(1);
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 3;
    o.verbose = 0;
    losses l = {{0}, 0};
    o.on_epoch_end = record;
    o.arg = &l;
    floe_epoch_logs last;
    check_ok(floe_model_fit_pipeline(m, p, 0, NULL, &o, &last));
    assert_int_equal(last.examples, NTRAIN);
    assert_int_equal(l.n, 3);
    double acc;
    check_ok(floe_model_evaluate(m, g_test, 0, NULL, &acc));
    print_message("fit_pipeline fashion-mnist %d: loss %.4f -> %.4f, train acc %.3f, test acc "
                  "%.3f, last epoch %.2fs\n", NTRAIN, l.loss[0], l.loss[2], last.accuracy, acc,
                  last.seconds);
    assert_true(l.loss[2] < 0.85 * l.loss[0]);
    assert_true(acc > 0.78);
    floe_pipeline_free(p);
    floe_model_free(m);
}

/* Same batches in the same order: the pipeline from TFRecord and fit in memory agree. */
static void fit_pipeline_matches_fit_in_memory(void **state) {
    (void)state;
    if (g_train == NULL)
        skip();
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 2;
    o.verbose = 0;
    o.shuffle = 0;
    o.batch_size = BATCH;
    losses la = {{0}, 0}, lb = {{0}, 0};
    o.on_epoch_end = record;
    o.arg = &la;
    floe_model *a = mlp();
    check_ok(floe_model_fit(a, g_train, NULL, &o, NULL));
    o.arg = &lb;
    floe_model *b = mlp();
    floe_pipeline *p = fmnist_pipeline(0);
    check_ok(floe_model_fit_pipeline(b, p, 0, NULL, &o, NULL));
    double acc_a, acc_b, loss_a, loss_b;
    check_ok(floe_model_evaluate(a, g_test, 0, &loss_a, &acc_a));
    check_ok(floe_model_evaluate(b, g_test, 0, &loss_b, &acc_b));
    print_message("in memory: losses %.6f %.6f test %.6f/%.4f; pipeline: %.6f %.6f test "
                  "%.6f/%.4f\n", la.loss[0], la.loss[1], loss_a, acc_a, lb.loss[0], lb.loss[1],
                  loss_b, acc_b);
    for (int e = 0; e < 2; e++)
        assert_true(fabs(la.loss[e] - lb.loss[e]) <= 1e-4 * la.loss[e]);
    assert_true(fabs(loss_a - loss_b) <= 1e-4 * loss_a);
    assert_true(fabs(acc_a - acc_b) <= 0.002);
    floe_pipeline_free(p);
    floe_model_free(a);
    floe_model_free(b);
}

/* A pipeline over an in-memory data set, endless, with steps_per_epoch; validation. */
static void fit_pipeline_from_dataset_steps_per_epoch(void **state) {
    (void)state;
    enum { N = 512 };
    float *x = malloc(sizeof(float) * N * 8);
    int32_t y[N];
    uint64_t rng = 99;
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        for (int k = 0; k < 8; k++)
            x[i * 8 + k] = (y[i] ? 0.6f : -0.6f) * (k % 2 ? 1.0f : -1.0f) +
                           (float)((rng = rng * 6364136223846793005ull + 1) >> 40) / 16777216.0f -
                           0.5f;
    }
    floe_dataset *ds;
    check_ok(floe_dataset_from_arrays(N, FLOE_DTYPE_F32, x, (int64_t[]){8}, 1, FLOE_DTYPE_I32, y,
                                      NULL, 0, 1.0f, &ds));
    free(x);
    floe_model *m;
    check_ok(floe_model_new(g_ctx, (int64_t[]){8}, 1, &m));
    floe_model_add(m, floe_layer_dense(16, "relu"));
    floe_model_add(m, floe_layer_dense(2, "softmax"));
    check_ok(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"));
    floe_pipeline *p, *v;
    check_ok(floe_pipeline_from_dataset(ds, &p));
    check_ok(floe_pipeline_shuffle(p, 256, 3, &p));
    check_ok(floe_pipeline_repeat(p, -1, &p));
    check_ok(floe_pipeline_batch(p, 16, 1, &p));
    check_ok(floe_pipeline_prefetch(p, 2, &p));
    check_ok(floe_pipeline_from_dataset(ds, &v));
    check_ok(floe_pipeline_batch(v, 100, 0, &v));
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 4;
    o.verbose = 0;
    floe_epoch_logs last;
    check_ok(floe_model_fit_pipeline(m, p, 20, v, &o, &last));
    assert_int_equal(last.examples, 20 * 16);
    print_message("from_dataset: loss %.4f acc %.3f val_acc %.3f\n", last.loss, last.accuracy,
                  last.val_accuracy);
    assert_true(last.val_accuracy > 0.9);
    double acc;
    check_ok(floe_model_evaluate(m, ds, 0, NULL, &acc));
    assert_true(fabs(acc - last.val_accuracy) < 1e-6);
    floe_pipeline_free(p);
    floe_pipeline_free(v);
    /* elements of the wrong shape: fit says what was wrong */
    check_ok(floe_pipeline_from_dataset(ds, &p));
    assert_int_equal(floe_model_fit_pipeline(m, p, 0, NULL, &o, NULL), FLOE_INVALID_ARGUMENT);
    print_message("wrong shape: %s\n", floe_keras_last_error());
    assert_non_null(strstr(floe_keras_last_error(), "elements a row"));
    floe_pipeline_free(p);
    floe_model_free(m);
    floe_dataset_free(ds);
}

static void fit_pipeline_stops_on_damaged_file(void **state) {
    (void)state;
    if (g_train == NULL)
        skip();
    char bad[100];
    snprintf(bad, sizeof bad, "%s/damaged.tfrecord", g_dir);
    void *bytes;
    size_t size;
    check_ok(floe_fs_read_all(NULL, g_files[0], 0, &bytes, &size));
    ((uint8_t *)bytes)[size / 2] ^= 0x40;
    check_ok(floe_fs_write_all(NULL, bad, bytes, size));
    free(bytes);
    snprintf(g_files[0], sizeof g_files[0], "%s", bad);
    floe_model *m = mlp();
    floe_pipeline *p = fmnist_pipeline(0);
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 1;
    o.verbose = 0;
    assert_int_equal(floe_model_fit_pipeline(m, p, 0, NULL, &o, NULL), FLOE_DATA_LOSS);
    print_message("damaged file: %s\n", floe_keras_last_error());
    assert_non_null(strstr(floe_keras_last_error(), "damaged.tfrecord"));
    assert_non_null(strstr(floe_keras_last_error(), "input pipeline"));
    floe_pipeline_free(p);
    floe_model_free(m);
    snprintf(g_files[0], sizeof g_files[0], "%s/fmnist-0.tfrecord", g_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fit_pipeline_learns_fashion_mnist_from_tfrecord),
        cmocka_unit_test(fit_pipeline_matches_fit_in_memory),
        cmocka_unit_test(fit_pipeline_from_dataset_steps_per_epoch),
        cmocka_unit_test(fit_pipeline_stops_on_damaged_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
