/*
 * test_fit_logdir.c - fit's TensorBoard log directory (floe_fit_options.logdir), read
 * back with Floe's event reader: the Keras layout (train/, validation/), per-epoch
 * scalars equal to fit's logs and the learning rate, one histogram per layer variable per epoch matching the
 * variables' values, the graph, events readable while fit still runs, per-step scalars
 * (log_every_steps), bad log directories refused, and `floe train --logdir` (when Fashion-MNIST is installed).
 */
#include "test_common.h"

#include <floe/graphdef.h>
#include <floe/keras.h>
#include <floe/summary.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFEAT 12
#define NCLASS 3
#define EPOCHS 3

static void check_ok(floe_status st) {
    if (st != FLOE_OK)
        fail_msg("%s: %s / %s", floe_status_str(st), floe_keras_last_error(), floe_last_error());
}

static floe_dataset *blobs(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * NFEAT * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    int64_t shape[1] = {NFEAT};
    floe_dataset *ds;

    assert_non_null(x);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(floe_rng_next(&seed) % NCLASS);
        for (int k = 0; k < NFEAT; k++)
            x[i * NFEAT + k] = (k % NCLASS == y[i] ? 1.0f : 0.0f) + floe_rng_uniform(&seed) - 0.5f;
    }
    check_ok(floe_dataset_from_arrays(n, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_I32, y, NULL,
                                      0, 1.0f, &ds));
    free(x);
    free(y);
    return ds;
}

static floe_model *model(floe_context *ctx) {
    floe_model *m;
    check_ok(floe_model_new(ctx, (int64_t[]){NFEAT}, 1, &m));
    check_ok(floe_model_set_seed(m, 5));
    check_ok(floe_model_add(m, floe_layer_dense(16, "relu")));
    check_ok(floe_model_add(m, floe_layer_batch_normalization(0.9f, 1e-3f)));
    check_ok(floe_model_add(m, floe_layer_dense(NCLASS, "softmax")));
    check_ok(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"));
    return m;
}

/* The one event file in @dir, into @out; 0 if none (fails on two). */
static int event_file(const char *dir, char *out, size_t len) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0) {
            snprintf(out, len, "%s/%s", dir, e->d_name);
            n++;
        }
    closedir(d);
    assert_true(n <= 1);
    return n;
}

static void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* What one event file holds, by tag. */
typedef struct file_summary {
    int version, graphs;
    double loss[EPOCHS], acc[EPOCHS], lr[EPOCHS];
    int nloss, nacc, nlr;
    int histos;          /* histogram values */
    char last_tags[16][64]; /* histogram tags of the last epoch */
    double last_sum[16], last_num[16];
    int nlast;
} file_summary;

static void summarize(floe_context *ctx, const char *path, file_summary *s) {
    floe_event_reader *r = NULL;
    const floe_event *ev;
    floe_status st;

    memset(s, 0, sizeof(*s));
    check_ok(floe_event_reader_open(ctx, path, &r));
    while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK) {
        if (ev->kind == FLOE_EVENT_FILE_VERSION) {
            assert_string_equal(ev->file_version, "brain.Event:2");
            s->version++;
        } else if (ev->kind == FLOE_EVENT_GRAPH) {
            s->graphs++;
        }
        for (size_t i = 0; i < ev->nvalues; i++) {
            const floe_summary_value *v = &ev->values[i];
            assert_true(ev->step >= 0 && ev->step < EPOCHS);
            if (strcmp(v->tag, "epoch_loss") == 0) {
                assert_int_equal(ev->step, s->nloss);
                s->loss[s->nloss++] = v->scalar;
            } else if (strcmp(v->tag, "epoch_accuracy") == 0) {
                assert_int_equal(ev->step, s->nacc);
                s->acc[s->nacc++] = v->scalar;
            } else if (strcmp(v->tag, "epoch_learning_rate") == 0) {
                assert_int_equal(v->kind, FLOE_SUMMARY_SCALAR);
                assert_int_equal(ev->step, s->nlr);
                s->lr[s->nlr++] = v->scalar;
            } else {
                assert_int_equal(v->kind, FLOE_SUMMARY_HISTOGRAM);
                s->histos++;
                if (ev->step == EPOCHS - 1 && s->nlast < 16) {
                    snprintf(s->last_tags[s->nlast], 64, "%s", v->tag);
                    s->last_sum[s->nlast] = v->sum;
                    s->last_num[s->nlast++] = v->num;
                }
            }
        }
    }
    assert_int_equal(st, FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);
}

typedef struct run_log {
    floe_epoch_logs logs[EPOCHS];
    floe_context *ctx;
    const char *train_dir;
    int seen_during_fit[EPOCHS];
} run_log;

/* After each epoch: the epoch's events are already readable. */
static floe_status on_epoch(void *arg, floe_model *m, const floe_epoch_logs *logs) {
    run_log *r = arg;
    char path[1024];
    file_summary s;
    (void)m;
    r->logs[logs->epoch - 1] = *logs;
    if (event_file(r->train_dir, path, sizeof(path))) {
        summarize(r->ctx, path, &s);
        r->seen_during_fit[logs->epoch - 1] = s.nloss;
    }
    return FLOE_OK;
}

static void fit_writes_keras_layout_with_epoch_values(void **state) {
    floe_context *ctx = *state;
    char dir[64], sub[128], path[1024];
    floe_dataset *train = blobs(256, 1), *val = blobs(64, 2);
    floe_model *m = model(ctx);
    floe_fit_options o;
    run_log rl;
    file_summary s;

    tc_tmpdir(dir, sizeof(dir), "fitlog");
    memset(&rl, 0, sizeof(rl));
    snprintf(sub, sizeof(sub), "%s/train", dir);
    rl.ctx = ctx;
    rl.train_dir = sub;
    floe_fit_options_init(&o);
    o.epochs = EPOCHS;
    o.verbose = 0;
    o.logdir = dir;
    o.on_epoch_end = on_epoch;
    o.arg = &rl;
    check_ok(floe_model_fit(m, train, val, &o, NULL));
    for (int e = 0; e < EPOCHS; e++)
        assert_int_equal(rl.seen_during_fit[e], e + 1);

    /* train/: version, the graph (once), loss and accuracy per epoch
     * equal to fit's, and every layer variable's histogram per epoch. */
    assert_true(event_file(sub, path, sizeof(path)));
    summarize(ctx, path, &s);
    assert_int_equal(s.version, 1);
    void *gd = NULL;
    size_t gd_size = 0;
    /* The model's graph exports (every attr kind, VarHandleOp's allowed_devices too). */
    assert_int_equal(floe_graphdef_export(floe_model_graph(m), &gd, &gd_size), FLOE_OK);
    free(gd);
    assert_int_equal(s.graphs, 1);
    assert_int_equal(s.nloss, EPOCHS);
    assert_int_equal(s.nacc, EPOCHS);
    assert_int_equal(s.nlr, EPOCHS);
    for (int e = 0; e < EPOCHS; e++) {
        assert_true(s.loss[e] == (double)(float)rl.logs[e].loss);
        assert_true(s.acc[e] == (double)(float)rl.logs[e].accuracy);
        assert_true(s.lr[e] == (double)1e-2f); /* compile's Adam rate, constant */
    }
    /* dense kernel+bias, batch_normalization gamma, beta, moving mean and variance,
     * dense_1 kernel+bias. */
    assert_int_equal(s.histos, 8 * EPOCHS);
    assert_int_equal(s.nlast, 8);
    const char *want[8] = {"dense/kernel", "dense/bias", "batch_normalization/gamma",
                           "batch_normalization/beta", "batch_normalization/moving_mean",
                           "batch_normalization/moving_variance", "dense_1/kernel",
                           "dense_1/bias"};
    for (int k = 0; k < 8; k++) {
        int found = -1;
        for (int i = 0; i < s.nlast; i++)
            if (strcmp(s.last_tags[i], want[k]) == 0)
                found = i;
        if (found < 0)
            fail_msg("no histogram '%s' in the last epoch", want[k]);
        /* The histogram is of the variable's values after the last epoch. */
        char rd[128];
        snprintf(rd, sizeof(rd), "%s/Read", want[k]);
        floe_node *n = floe_graph_find(floe_model_graph(m), rd);
        assert_non_null(n);
        floe_output f = floe_out(n, 0);
        floe_tensor *t = NULL, *h = NULL;
        check_ok(floe_session_run(floe_model_session(m), NULL, NULL, 0, &f, 1, NULL, 0, &t));
        check_ok(floe_tensor_to_host(t, &h));
        double sum = 0;
        const float *p = floe_tensor_data(h);
        for (int64_t i = 0; i < floe_tensor_num_elements(h); i++)
            sum += p[i];
        assert_true(s.last_num[found] == (double)floe_tensor_num_elements(h));
        assert_true(fabs(s.last_sum[found] - sum) <= 1e-9 * (1 + fabs(sum)));
        floe_tensor_unref(h);
        floe_tensor_unref(t);
    }

    /* validation/: the validation loss and accuracy per epoch. */
    snprintf(sub, sizeof(sub), "%s/validation", dir);
    assert_true(event_file(sub, path, sizeof(path)));
    summarize(ctx, path, &s);
    assert_int_equal(s.graphs, 0);
    assert_int_equal(s.histos, 0);
    assert_int_equal(s.nlr, 0);
    assert_int_equal(s.nloss, EPOCHS);
    for (int e = 0; e < EPOCHS; e++) {
        assert_true(s.loss[e] == (double)(float)rl.logs[e].val_loss);
        assert_true(s.acc[e] == (double)(float)rl.logs[e].val_accuracy);
    }
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(val);
    rm_rf(dir);
}

static void fit_logdir_without_validation_and_bad_dirs(void **state) {
    floe_context *ctx = *state;
    char dir[64], sub[160], path[1024];
    floe_dataset *train = blobs(64, 3);
    floe_model *m = model(ctx);
    floe_fit_options o;

    tc_tmpdir(dir, sizeof(dir), "fitlog");
    floe_fit_options_init(&o);
    o.epochs = 1;
    o.verbose = 0;
    o.logdir = dir;
    check_ok(floe_model_fit(m, train, NULL, &o, NULL));
    snprintf(sub, sizeof(sub), "%s/train", dir);
    assert_true(event_file(sub, path, sizeof(path)));
    snprintf(sub, sizeof(sub), "%s/validation", dir);
    struct stat sb;
    assert_int_not_equal(stat(sub, &sb), 0);
    /* Bad log directories fail fit before any training, naming what is wrong. */
    o.logdir = "";
    assert_int_equal(floe_model_fit(m, train, NULL, &o, NULL), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_keras_last_error(), "logdir"));
    o.logdir = "nosuchscheme://bucket/logs";
    assert_int_not_equal(floe_model_fit(m, train, NULL, &o, NULL), FLOE_OK);
    assert_non_null(strstr(floe_keras_last_error(), "TensorBoard"));
    snprintf(sub, sizeof(sub), "%s/file", dir);
    FILE *f = fopen(sub, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(sub, sizeof(sub), "%s/file/logs", dir);
    o.logdir = sub;
    assert_int_not_equal(floe_model_fit(m, train, NULL, &o, NULL), FLOE_OK);
    assert_non_null(strstr(floe_keras_last_error(), "file/logs"));
    floe_model_free(m);
    floe_dataset_free(train);
    rm_rf(dir);
}

/* log_every_steps: batch_loss and batch_accuracy at every Nth training step, counted
 * across epochs. */
static void fit_logs_every_n_steps(void **state) {
    floe_context *ctx = *state;
    char dir[64], sub[128], path[1024];
    floe_dataset *train = blobs(256, 4);
    floe_model *m = model(ctx);
    floe_fit_options o;
    floe_event_reader *r = NULL;
    const floe_event *ev;
    floe_status st;
    int64_t loss_steps[16], acc_steps[16];
    int nl = 0, na = 0;

    tc_tmpdir(dir, sizeof(dir), "fitlog");
    floe_fit_options_init(&o);
    o.epochs = 2;
    o.verbose = 0;
    o.logdir = dir;
    o.log_every_steps = -1;
    assert_int_equal(floe_model_fit(m, train, NULL, &o, NULL), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_keras_last_error(), "log_every_steps"));
    o.log_every_steps = 3; /* 8 steps an epoch: steps 3, 6, 9, 12, 15 */
    check_ok(floe_model_fit(m, train, NULL, &o, NULL));
    snprintf(sub, sizeof(sub), "%s/train", dir);
    /* The rejected call made no file (it failed before opening any). */
    assert_true(event_file(sub, path, sizeof(path)));
    check_ok(floe_event_reader_open(ctx, path, &r));
    while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK) {
        for (size_t i = 0; i < ev->nvalues; i++) {
            const floe_summary_value *v = &ev->values[i];
            if (strcmp(v->tag, "batch_loss") == 0) {
                assert_true(nl < 16 && v->scalar > 0 && isfinite(v->scalar));
                loss_steps[nl++] = ev->step;
            } else if (strcmp(v->tag, "batch_accuracy") == 0) {
                assert_true(na < 16 && v->scalar >= 0 && v->scalar <= 1);
                acc_steps[na++] = ev->step;
            }
        }
    }
    assert_int_equal(st, FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);
    assert_int_equal(nl, 5);
    assert_int_equal(na, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(loss_steps[i], 3 * (i + 1));
        assert_int_equal(acc_steps[i], 3 * (i + 1));
    }
    floe_model_free(m);
    floe_dataset_free(train);
    rm_rf(dir);
}

static void floe_train_tool_writes_a_logdir(void **state) {
    const char *root = getenv("FLOE_BUILD_ROOT");
    char dir[64], cmd[1024], path[1024], sub[160];
    file_summary s;

    if (root == NULL || access(FLOE_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: no build tree or no Fashion-MNIST in %s\n",
                      FLOE_FASHION_MNIST_DIR);
        skip();
    }
    tc_tmpdir(dir, sizeof(dir), "fitlog");
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' train --epochs 1 --no-checkpoint --logdir "
             "'%s/run' > '%s/out.txt' 2>&1", root, dir, dir);
    int status = system(cmd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(sub, sizeof(sub), "%s/run/train", dir);
    assert_true(event_file(sub, path, sizeof(path)));
    summarize(*state, path, &s);
    assert_int_equal(s.nloss, 1);
    assert_int_equal(s.nacc, 1);
    assert_true(s.loss[0] > 0 && s.loss[0] < 2.3);
    assert_int_equal(s.histos, 4); /* dense and dense_1, kernel and bias */
    snprintf(sub, sizeof(sub), "%s/run/validation", dir);
    assert_true(event_file(sub, path, sizeof(path)));
    summarize(*state, path, &s);
    assert_int_equal(s.nloss, 1);
    assert_true(s.acc[0] > 0.5);
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' train --logdir", root);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fit_writes_keras_layout_with_epoch_values),
        cmocka_unit_test(fit_logdir_without_validation_and_bad_dirs),
        cmocka_unit_test(fit_logs_every_n_steps),
        cmocka_unit_test(floe_train_tool_writes_a_logdir),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
