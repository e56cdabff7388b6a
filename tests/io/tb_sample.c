/*
 * tb_sample.c - writes the event files that tb_check.py loads with TensorBoard's own
 * reader: `tb_sample DIR` writes
 *   DIR/sample: scalars "loss" = 1/(s+1) and "accuracy" = s/10 for steps 0..9;
 *               histograms "weights" of x_i = i/100 - 2.5 (i < 500) at step 0 and of
 *               2 x_i at step 1; images "rgb" [4,5,3], "grey" [3,3,1] and "rgba" [2,2,4]
 *               with pixel i = (7 i + 3) mod 256 at step 0; the graph of
 *               y = MatMul(Placeholder x [?,3], Const w [3,2]) when it can be exported;
 *   DIR/fit:    floe_model_fit's log directory (2 epochs, validation data),
 * and prints one line per fit epoch: "epoch E loss L accuracy A val_loss VL
 * val_accuracy VA" (the values fit reported), then "graph 0|1".
 */
#include <floe/floe.h>
#include <floe/graphdef.h>
#include <floe/keras.h>
#include <floe/summary.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(floe_status st, const char *what) {
    if (st != FLOE_OK) {
        fprintf(stderr, "tb_sample: %s: %s: %s %s\n", what, floe_status_str(st),
                floe_last_error(), floe_keras_last_error());
        exit(1);
    }
    return 0;
}

static floe_node *node(floe_graph *g, const char *op, const char *name, floe_node **in, int nin,
                       floe_dtype dt, floe_tensor *value) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    check(floe_node_builder_new(g, op, name, &b), op);
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(b, floe_out(in[i], 0));
    if (value != NULL) {
        floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", value);
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    } else if (dt != FLOE_DTYPE_INVALID) {
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    }
    check(floe_node_builder_finish(b, &n), name);
    return n;
}

/* Returns 1 if the graph was written. */
static int write_sample(floe_context *ctx, const char *dir) {
    floe_summary_writer *w = NULL;
    double x[500];
    int graph = 0;

    check(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    for (int s = 0; s < 10; s++) {
        check(floe_summary_scalar(w, "loss", 1.0 / (s + 1), s), "loss");
        check(floe_summary_scalar(w, "accuracy", s / 10.0, s), "accuracy");
    }
    for (int i = 0; i < 500; i++)
        x[i] = i / 100.0 - 2.5;
    check(floe_summary_histogram_f64(w, "weights", x, 500, 0), "histogram 0");
    for (int i = 0; i < 500; i++)
        x[i] *= 2;
    check(floe_summary_histogram_f64(w, "weights", x, 500, 1), "histogram 1");
    const char *tags[3] = {"rgb", "grey", "rgba"};
    int64_t shapes[3][3] = {{4, 5, 3}, {3, 3, 1}, {2, 2, 4}};
    for (int k = 0; k < 3; k++) {
        floe_tensor *t = NULL;
        check(floe_tensor_new(FLOE_DTYPE_U8, shapes[k], 3, &t), "image");
        uint8_t *p = floe_tensor_data(t);
        for (int64_t i = 0; i < shapes[k][0] * shapes[k][1] * shapes[k][2]; i++)
            p[i] = (uint8_t)((7 * i + 3) % 256);
        check(floe_summary_image(w, tags[k], t, 0), "image");
        floe_tensor_unref(t);
    }
    floe_graph *g = NULL;
    check(floe_graph_new(ctx, &g), "graph");
    node(g, "Placeholder", "x", NULL, 0, FLOE_DTYPE_F32, NULL);
    float wv[6] = {1, 2, 3, 4, 5, 6};
    floe_tensor *wt = NULL;
    check(floe_tensor_new_copy(FLOE_DTYPE_F32, (int64_t[]){3, 2}, 2, wv, sizeof(wv), &wt), "w");
    floe_node *in[2] = {floe_graph_find(g, "x"), node(g, "Const", "w", NULL, 0, 0, wt)};
    node(g, "MatMul", "y", in, 2, FLOE_DTYPE_INVALID, NULL);
    floe_tensor_unref(wt);
    if (floe_summary_graph(w, g) == FLOE_OK)
        graph = 1;
    floe_graph_free(g);
    check(floe_summary_writer_close(w), "close");
    return graph;
}

static floe_dataset *data(int64_t n, uint64_t seed) {
    float *xs = malloc((size_t)n * 8 * sizeof(float));
    int32_t *ys = malloc((size_t)n * sizeof(int32_t));
    floe_dataset *ds = NULL;
    if (xs == NULL || ys == NULL)
        exit(1);
    for (int64_t i = 0; i < n; i++) {
        ys[i] = (int32_t)(floe_rng_next(&seed) % 2);
        for (int k = 0; k < 8; k++)
            xs[i * 8 + k] = (float)(ys[i] == k % 2) + floe_rng_uniform(&seed) - 0.5f;
    }
    check(floe_dataset_from_arrays(n, FLOE_DTYPE_F32, xs, (int64_t[]){8}, 1, FLOE_DTYPE_I32, ys,
                                   NULL, 0, 1.0f, &ds), "data");
    free(xs);
    free(ys);
    return ds;
}

static floe_status print_epoch(void *arg, floe_model *m, const floe_epoch_logs *l) {
    (void)arg;
    (void)m;
    printf("epoch %d loss %.9g accuracy %.9g val_loss %.9g val_accuracy %.9g\n", l->epoch,
           l->loss, l->accuracy, l->val_loss, l->val_accuracy);
    return FLOE_OK;
}

int main(int argc, char **argv) {
    floe_context *ctx = NULL;
    char path[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: tb_sample DIR\n");
        return 2;
    }
    check(floe_context_new(NULL, &ctx), "context");
    snprintf(path, sizeof(path), "%s/sample", argv[1]);
    int graph = write_sample(ctx, path);

    floe_model *m = NULL;
    floe_dataset *train = data(128, 1), *val = data(32, 2);
    check(floe_model_new(ctx, (int64_t[]){8}, 1, &m), "model");
    check(floe_model_add(m, floe_layer_dense(8, "relu")), "dense");
    check(floe_model_add(m, floe_layer_dense(2, "softmax")), "dense_1");
    check(floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy"),
          "compile");
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 2;
    o.verbose = 0;
    snprintf(path, sizeof(path), "%s/fit", argv[1]);
    o.logdir = path;
    o.on_epoch_end = print_epoch;
    check(floe_model_fit(m, train, val, &o, NULL), "fit");
    printf("graph %d\n", graph);
    floe_model_free(m);
    floe_dataset_free(train);
    floe_dataset_free(val);
    floe_context_free(ctx);
    return 0;
}
