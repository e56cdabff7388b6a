/*
 * test_tf_fixtures.c - TensorFlow's frozen graphs run in Floe and give TensorFlow's
 * numbers.
 *
 * The fixtures (tests/fixtures/tf, made by make_fixtures.py with TensorFlow 2.21 and
 * committed) are a frozen MLP, a small CNN and a ResNet-style block (depthwise conv,
 * FusedBatchNormV3, Relu6, ConcatV2, Pad, Mean, Squeeze, ...) and a Keras 3 Sequential
 * CNN with a dynamic batch (Shape, StridedSlice, Pack, Rsqrt, ...), each with an input
 * and TensorFlow's output as .npy.  Each is loaded with floe_graphdef_load, run on its
 * input and compared element-wise within 1e-5 relative (absolute floor 1e-7 for values
 * near zero); then exported and re-imported (same outputs again: the export of an
 * imported TensorFlow graph is itself importable and complete).  Edited copies check the
 * errors a user meets: an op Floe lacks (op and node named), an attribute that does not
 * fit the data (data_format NCHW on NHWC tensors: the node, op and layout named).
 */
#include "test_common.h"

#include <floe/graphdef.h>
#include <floe/npy.h>
#include <floe/session.h>
#include <floe/tensor.h>

#include "graph.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define ATOL 1e-7

static char fixture_dir[4000];

static const char *fx(const char *file) {
    static char path[4096 + 512];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, file);
    return path;
}

/* Runs @g's output @out_name feeding @x to @in_name; returns the host output. */
static floe_tensor *run_graph(floe_graph *g, const char *in_name, floe_tensor *x,
                              const char *out_name) {
    floe_session *s;
    floe_node *in = floe_graph_find(g, in_name), *out = floe_graph_find(g, out_name);
    assert_non_null(in);
    assert_non_null(out);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_output feed = floe_out(in, 0), fetch = floe_out(out, 0);
    floe_tensor *y = NULL, *host = NULL;
    floe_status st = floe_session_run(s, &feed, &x, 1, &fetch, 1, NULL, 0, &y);
    if (st != FLOE_OK)
        fail_msg("run: %s", floe_last_error());
    assert_int_equal(floe_tensor_to_host(y, &host), FLOE_OK);
    floe_tensor_unref(y);
    floe_session_free(s);
    return host;
}

static void compare(const char *model, const floe_tensor *got, const floe_tensor *want) {
    assert_int_equal(floe_tensor_dtype(got), FLOE_DTYPE_F32);
    assert_int_equal(floe_tensor_ndim(got), floe_tensor_ndim(want));
    for (int d = 0; d < floe_tensor_ndim(got); d++)
        assert_int_equal(floe_tensor_dim(got, d), floe_tensor_dim(want, d));
    const float *a = floe_tensor_data(got), *b = floe_tensor_data(want);
    double worst = 0;
    for (int64_t i = 0; i < floe_tensor_num_elements(got); i++) {
        double err = fabs((double)a[i] - (double)b[i]);
        double tol = ATOL + RTOL * fabs((double)b[i]);
        if (!(err <= tol))
            fail_msg("%s: element %lld: Floe %.9g, TensorFlow %.9g", model, (long long)i,
                     (double)a[i], (double)b[i]);
        if (fabs((double)b[i]) > 0 && err / fabs((double)b[i]) > worst)
            worst = err / fabs((double)b[i]);
    }
    printf("%s: %lld values within tolerance, worst relative error %.3g\n", model,
           (long long)floe_tensor_num_elements(got), worst);
}

static void check_model(floe_context *ctx, const char *name, const char *in_name,
                        const char *out_name) {
    char file[256];
    floe_graph *g, *h;
    floe_tensor *x, *want;

    snprintf(file, sizeof(file), "%s.pb", name);
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    if (floe_graphdef_load(g, fx(file), NULL) != FLOE_OK)
        fail_msg("%s: %s", file, floe_last_error());
    snprintf(file, sizeof(file), "%s_x.npy", name);
    assert_int_equal(floe_npy_load(ctx, fx(file), 0, &x), FLOE_OK);
    snprintf(file, sizeof(file), "%s_y.npy", name);
    assert_int_equal(floe_npy_load(ctx, fx(file), 0, &want), FLOE_OK);
    floe_tensor *got = run_graph(g, in_name, x, out_name);
    compare(name, got, want);
    floe_tensor_unref(got);

    /* Export, re-import, run again: the same numbers. */
    void *d;
    size_t n;
    if (floe_graphdef_export(g, &d, &n) != FLOE_OK)
        fail_msg("export %s: %s", name, floe_last_error());
    assert_int_equal(floe_graph_new(ctx, &h), FLOE_OK);
    if (floe_graphdef_import(h, d, n) != FLOE_OK)
        fail_msg("re-import %s: %s", name, floe_last_error());
    got = run_graph(h, in_name, x, out_name);
    compare(name, got, want);
    floe_tensor_unref(got);
    free(d);
    floe_graph_free(h);
    floe_graph_free(g);
    floe_tensor_unref(x);
    floe_tensor_unref(want);
}

static void tf_fixtures_match_tensorflow(void **state) {
    floe_context *ctx = *state;
    FILE *f = fopen(fx("manifest.txt"), "r");
    char line[512];
    int models = 0;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char name[128], in[128], out[128];
        if (line[0] == '#' || sscanf(line, "%127s %127s %127s", name, in, out) != 3)
            continue;
        check_model(ctx, name, in, out);
        models++;
    }
    fclose(f);
    assert_int_equal(models, 4);
}

/* The ops the fixtures must cover, so a regenerated fixture cannot silently lose one. */
static void tf_fixtures_cover_the_ops(void **state) {
    (void)state;
    static const char *const need[] = {
        "Const", "Placeholder", "Identity", "MatMul", "BiasAdd", "Relu", "Relu6", "Conv2D",
        "DepthwiseConv2dNative", "MaxPool", "AvgPool", "FusedBatchNormV3", "Add", "AddV2",
        "Mul", "Mean", "Reshape", "Squeeze", "Softmax", "ConcatV2", "Pad"};
    bool seen[sizeof(need) / sizeof(need[0])] = {false};
    const char *models[] = {"mlp.pb", "cnn.pb", "resnet.pb"};
    for (int m = 0; m < 3; m++) {
        void *d;
        size_t n;
        FILE *f = fopen(fx(models[m]), "rb");
        assert_non_null(f);
        d = malloc(1 << 20);
        n = fread(d, 1, 1 << 20, f);
        fclose(f);
        Floe__Tf__GraphDef *gd = floe__tf__graph_def__unpack(NULL, n, d);
        assert_non_null(gd);
        for (size_t i = 0; i < gd->n_node; i++)
            for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++)
                seen[k] |= strcmp(gd->node[i]->op, need[k]) == 0;
        floe__tf__graph_def__free_unpacked(gd, NULL);
        free(d);
    }
    for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++)
        if (!seen[k])
            fail_msg("no fixture uses %s", need[k]);
}

/* Loads cnn.pb, lets @edit change it, and imports the result into a fresh graph. */
static floe_status import_edited(floe_context *ctx, void (*edit)(Floe__Tf__GraphDef *)) {
    FILE *f = fopen(fx("cnn.pb"), "rb");
    assert_non_null(f);
    uint8_t *d = malloc(1 << 20);
    size_t n = fread(d, 1, 1 << 20, f);
    fclose(f);
    Floe__Tf__GraphDef *gd = floe__tf__graph_def__unpack(NULL, n, d);
    assert_non_null(gd);
    edit(gd);
    size_t m = floe__tf__graph_def__get_packed_size(gd);
    uint8_t *e = malloc(m);
    floe__tf__graph_def__pack(gd, e);
    floe_graph *g;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_status st = floe_graphdef_import(g, e, m);
    if (st != FLOE_OK)
        assert_int_equal(floe_graph_num_nodes(g), 0);
    floe_graph_free(g);
    floe__tf__graph_def__free_unpacked(gd, NULL);
    free(d);
    free(e);
    return st;
}

static Floe__Tf__NodeDef *find_op(Floe__Tf__GraphDef *gd, const char *op) {
    for (size_t i = 0; i < gd->n_node; i++)
        if (strcmp(gd->node[i]->op, op) == 0)
            return gd->node[i];
    fail_msg("no %s node", op);
    return NULL;
}

/* The edits replace heap fields of the unpacked message with heap copies, which
 * floe__tf__graph_def__free_unpacked frees. */
static void edit_unknown_op(Floe__Tf__GraphDef *gd) {
    Floe__Tf__NodeDef *nd = find_op(gd, "MaxPool");
    free(nd->op);
    nd->op = strdup("FancyPool3000");
}

static void edit_nchw(Floe__Tf__GraphDef *gd) {
    Floe__Tf__NodeDef *nd = find_op(gd, "Conv2D");
    for (size_t i = 0; i < nd->n_attr; i++)
        if (strcmp(nd->attr[i]->key, "data_format") == 0) {
            free(nd->attr[i]->value->s.data);
            nd->attr[i]->value->s.data = (uint8_t *)strdup("NCHW");
            nd->attr[i]->value->s.len = 4;
            return;
        }
    fail_msg("Conv2D has no data_format");
}

static void tf_fixtures_errors_name_op_node_attr(void **state) {
    floe_context *ctx = *state;
    assert_int_equal(import_edited(ctx, edit_unknown_op), FLOE_NOT_FOUND);
    tc_assert_error_contains("op 'FancyPool3000' is not registered");
    tc_assert_error_contains("node 'MaxPool2d'");
    floe_status st = import_edited(ctx, edit_nchw);
    assert_int_not_equal(st, FLOE_OK);
    tc_assert_error_contains("NCHW");
    tc_assert_error_contains("Conv2D");
}

int main(void) {
    const char *root = getenv("FLOE_SOURCE_ROOT");
    if (root == NULL) {
        fprintf(stderr, "FLOE_SOURCE_ROOT is not set (run through meson test)\n");
        return 1;
    }
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/fixtures/tf", root);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tf_fixtures_match_tensorflow),
        cmocka_unit_test(tf_fixtures_cover_the_ops),
        cmocka_unit_test(tf_fixtures_errors_name_op_node_attr),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
