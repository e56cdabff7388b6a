/*
 * test_checkpoint.c - floe/checkpoint.h: round trips of every variable (optimizer slots
 * included), resuming training on the same curve, restore mismatch messages, files
 * truncated at every byte and with every bit flipped, crash consistency (a save failing
 * mid-file under RLIMIT_FSIZE leaves the previous checkpoint and pointer intact, and no
 * temporary behind), keep-last-N and the pointer file.
 */
#include "test_common.h"

#include <floe/checkpoint.h>
#include <floe/keras.h>
#include <floe/train.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------------------ */

static void ok(floe_status st, const char *what) {
    if (st != FLOE_OK)
        fail_msg("%s: %s (%s)", what, floe_status_str(st), floe_keras_last_error());
}

static void run(floe_session *s, floe_node *target) {
    ok(floe_session_run(s, NULL, NULL, 0, NULL, 0, &target, 1, NULL), "run");
}

static floe_tensor *fetch(floe_session *s, floe_node *n) {
    floe_output f = floe_out(n, 0);
    floe_tensor *t = NULL;
    ok(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t), "fetch");
    return t;
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int exists(const char *dir, const char *name) {
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

/* A model-like graph: a [2, 3] f32, b [4] f64, n i64 scalar; plus "bump" adding 1 to
 * a's elements and 10 to n (to change values between saves). */
typedef struct model {
    floe_graph *g;
    floe_session *s;
    floe_train_var a, b, n;
    floe_node *init, *bump;
} model;

static floe_node *const_t(floe_graph *g, floe_tensor *t) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    ok(floe_node_builder_new(g, "Const", NULL, &b), "Const");
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", t);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(t));
    floe_tensor_unref(t);
    ok(floe_node_builder_finish(b, &n), "Const");
    return n;
}

static floe_node *add_to(floe_graph *g, floe_node *handle, floe_node *v, floe_node *dep) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    ok(floe_node_builder_new(g, "AssignAddVariableOp", NULL, &b), "AssignAdd");
    floe_node_builder_add_input(b, floe_out(handle, 0));
    floe_node_builder_add_input(b, floe_out(v, 0));
    if (dep != NULL)
        floe_node_builder_add_control_input(b, dep);
    ok(floe_node_builder_finish(b, &n), "AssignAdd");
    return n;
}

static void model_new(floe_context *ctx, model *m, const int64_t *ashape, floe_dtype bdt) {
    int64_t bs[1] = {4};
    float av[6] = {1, 2, 3, 4, 5, 6};
    memset(m, 0, sizeof(*m));
    ok(floe_graph_new(ctx, &m->g), "graph");
    floe_tensor *t = tc_f32(ashape, 2, av);
    ok(floe_train_var_new(m->g, "dense/kernel", t, &m->a), "a");
    floe_tensor_unref(t);
    ok(floe_train_var_new_filled(m->g, "dense/bias", bdt, bs, 1, 0.25, &m->b), "b");
    ok(floe_train_var_new_filled(m->g, "step", FLOE_DTYPE_I64, NULL, 0, 7, &m->n), "n");
    ok(floe_train_init_op(m->g, &m->init), "init");
    floe_tensor *ones = NULL;
    ok(floe_tensor_new(FLOE_DTYPE_F32, ashape, 2, &ones), "ones");
    for (int i = 0; i < 6; i++)
        ((float *)floe_tensor_data(ones))[i] = 1.0f;
    floe_tensor *ten = NULL;
    ok(floe_tensor_new_scalar_i64(10, &ten), "ten");
    floe_node *x = add_to(m->g, m->a.handle, const_t(m->g, ones), NULL);
    m->bump = add_to(m->g, m->n.handle, const_t(m->g, ten), x);
    ok(floe_session_new(m->g, NULL, &m->s), "session");
    run(m->s, m->init);
}

static void model_free(model *m) {
    floe_session_free(m->s);
    floe_graph_free(m->g);
}

static void expect_a(model *m, float first) {
    floe_tensor *t = fetch(m->s, m->a.read);
    float want[6];
    for (int i = 0; i < 6; i++)
        want[i] = first + (float)i;
    tc_assert_close_f32(t, want, 6, 0, 0);
    floe_tensor_unref(t);
}

static int64_t get_n(model *m) {
    floe_tensor *t = fetch(m->s, m->n.read);
    int64_t v = tc_get_i(t, 0);
    floe_tensor_unref(t);
    return v;
}

static const int64_t shape23[2] = {2, 3};

/* ---- Round trip ---------------------------------------------------------------------- */

static void test_round_trip(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[128];
    model m, m2;
    floe_checkpoint *c = NULL;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    snprintf(path, sizeof(path), "%s/one.floeckpt", dir);
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    run(m.s, m.bump);
    run(m.s, m.bump);
    ok(floe_checkpoint_write(m.g, m.s, path), "write");
    /* Saving twice reuses the read nodes. */
    int nodes = floe_graph_num_nodes(m.g);
    ok(floe_checkpoint_write(m.g, m.s, path), "write again");
    assert_int_equal(floe_graph_num_nodes(m.g), nodes);

    /* The reader: sorted names, dtypes, shapes, values. */
    ok(floe_checkpoint_open(ctx, path, &c), "open");
    assert_int_equal(floe_checkpoint_num_tensors(c), 3);
    const char *name;
    floe_dtype dt;
    floe_shape sh;
    ok(floe_checkpoint_tensor_info(c, 0, &name, &dt, &sh), "info");
    assert_string_equal(name, "dense/bias");
    assert_int_equal(dt, FLOE_DTYPE_F64);
    assert_int_equal(sh.ndim, 1);
    assert_int_equal(sh.dims[0], 4);
    assert_int_equal(floe_checkpoint_find(c, "step"), 2);
    assert_int_equal(floe_checkpoint_find(c, "nope"), -1);
    floe_tensor *t = NULL;
    ok(floe_checkpoint_read_tensor(c, 1, &t), "read");
    tc_assert_close_f32(t, (float[]){3, 4, 5, 6, 7, 8}, 6, 0, 0);
    floe_tensor_unref(t);
    assert_int_equal(floe_checkpoint_tensor_info(c, 3, &name, &dt, &sh), FLOE_INVALID_ARGUMENT);
    assert_null(name);
    floe_checkpoint_close(c);

    /* A fresh session of another graph of the same variables gets the saved values. */
    model_new(ctx, &m2, shape23, FLOE_DTYPE_F64);
    expect_a(&m2, 1);
    ok(floe_checkpoint_restore(m2.g, m2.s, path), "restore");
    expect_a(&m2, 3);
    assert_int_equal(get_n(&m2), 27);
    floe_tensor *b = fetch(m2.s, m2.b.read);
    tc_assert_close_f64(b, (double[]){0.25, 0.25, 0.25, 0.25}, 4, 0, 0);
    floe_tensor_unref(b);
    /* Restoring twice reuses the restore nodes. */
    nodes = floe_graph_num_nodes(m2.g);
    ok(floe_checkpoint_restore(m2.g, m2.s, path), "restore again");
    assert_int_equal(floe_graph_num_nodes(m2.g), nodes);
    model_free(&m2);
    model_free(&m);
    rm_rf(dir);
}

/* ---- Optimizer slots and resuming ---------------------------------------------------------- */

/* w [3] trained by Adam with a gradient depending on w (2w - 1 through AddV2/Mul is not
 * needed: a constant gradient still moves m, v, the beta powers and the step). */
static void build_adam(floe_context *ctx, floe_graph **g, floe_session **s, floe_train_var *w,
                       floe_node **train, floe_optimizer **opt) {
    int64_t shape[1] = {3};
    const float gv[3] = {0.5f, -1.0f, 2.0f};
    floe_node *init = NULL;
    ok(floe_graph_new(ctx, g), "graph");
    ok(floe_train_var_new_filled(*g, "w", FLOE_DTYPE_F32, shape, 1, 1.0, w), "w");
    floe_output grad = floe_out(const_t(*g, tc_f32(shape, 1, gv)), 0);
    ok(floe_optimizer_adam_new(0.1f, 0.9f, 0.999f, 1e-7f, opt), "adam");
    ok(floe_optimizer_apply_gradients(*opt, *g, &grad, w, 1, train), "apply");
    ok(floe_train_init_op(*g, &init), "init");
    ok(floe_session_new(*g, NULL, s), "session");
    run(*s, init);
}

static void test_resume_same_curve(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[256];
    floe_graph *g = NULL, *g2 = NULL;
    floe_session *s = NULL, *s2 = NULL;
    floe_train_var w, w2;
    floe_node *train = NULL, *train2 = NULL;
    floe_optimizer *o1 = NULL, *o2 = NULL;
    floe_checkpoint *c = NULL;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    build_adam(ctx, &g, &s, &w, &train, &o1);
    for (int i = 0; i < 3; i++)
        run(s, train);
    ok(floe_checkpoint_save(g, s, dir, 3, 0, path, sizeof(path)), "save");
    assert_non_null(strstr(path, "ckpt-3.floeckpt"));
    for (int i = 0; i < 4; i++)
        run(s, train);
    floe_tensor *straight = fetch(s, w.read);

    /* Slots, beta powers and the global step are in the file. */
    ok(floe_checkpoint_open(ctx, path, &c), "open");
    assert_true(floe_checkpoint_find(c, "w/Adam/m") >= 0);
    assert_true(floe_checkpoint_find(c, "w/Adam/v") >= 0);
    assert_true(floe_checkpoint_find(c, "Adam/beta1_power") >= 0);
    assert_true(floe_checkpoint_find(c, "global_step") >= 0);
    floe_checkpoint_close(c);

    build_adam(ctx, &g2, &s2, &w2, &train2, &o2);
    ok(floe_checkpoint_restore_latest(g2, s2, dir, path, sizeof(path)), "restore latest");
    for (int i = 0; i < 4; i++)
        run(s2, train2);
    floe_tensor *resumed = fetch(s2, w2.read);
    float want[3];
    for (int i = 0; i < 3; i++)
        want[i] = (float)tc_get_f(straight, i);
    tc_assert_close_f32(resumed, want, 3, 0, 0);
    floe_tensor_unref(resumed);
    floe_tensor_unref(straight);
    floe_session_free(s2);
    floe_graph_free(g2);
    floe_session_free(s);
    floe_graph_free(g);
    floe_optimizer_free(o1);
    floe_optimizer_free(o2);
    rm_rf(dir);
}

/* ---- Mismatches ---------------------------------------------------------------------- */

static void test_mismatch_messages(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[128];
    model m, m2;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    snprintf(path, sizeof(path), "%s/x.floeckpt", dir);
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    ok(floe_checkpoint_write(m.g, m.s, path), "write");

    /* Other shape for the kernel, other dtype for the bias, and an extra variable. */
    const int64_t shape32[2] = {3, 2};
    model_new(ctx, &m2, shape32, FLOE_DTYPE_F32);
    floe_train_var extra;
    ok(floe_train_var_new_filled(m2.g, "extra", FLOE_DTYPE_F32, NULL, 0, 1.0, &extra), "extra");
    run(m2.s, m2.bump);
    assert_int_equal(floe_checkpoint_restore(m2.g, m2.s, path), FLOE_INVALID_ARGUMENT);
    const char *msg = floe_keras_last_error();
    assert_non_null(strstr(msg, "variable 'dense/kernel': shape [3, 2] in the graph, [2, 3] in "
                                "the checkpoint"));
    assert_non_null(strstr(msg, "variable 'dense/bias': dtype f32 in the graph, f64 in the "
                                "checkpoint"));
    assert_non_null(strstr(msg, "variable 'extra': not in the checkpoint"));
    /* Nothing was assigned. */
    floe_tensor *t = fetch(m2.s, m2.a.read);
    tc_assert_close_f32(t, (float[]){2, 3, 4, 5, 6, 7}, 6, 0, 0);
    floe_tensor_unref(t);
    model_free(&m2);

    /* Only a missing variable: NOT_FOUND.  A checkpoint with more tensors than the graph
     * restores (an inference graph from a training checkpoint). */
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_train_var only, k;
    ok(floe_graph_new(ctx, &g), "graph");
    ok(floe_train_var_new_filled(g, "dense/kernel", FLOE_DTYPE_F32, shape23, 2, 0, &k), "k");
    ok(floe_session_new(g, NULL, &s), "session");
    ok(floe_checkpoint_restore(g, s, path), "partial restore");
    t = fetch(s, k.read);
    tc_assert_close_f32(t, (float[]){1, 2, 3, 4, 5, 6}, 6, 0, 0);
    floe_tensor_unref(t);
    floe_session_free(s);
    ok(floe_train_var_new_filled(g, "only", FLOE_DTYPE_F32, NULL, 0, 0, &only), "only");
    ok(floe_session_new(g, NULL, &s), "session");
    assert_int_equal(floe_checkpoint_restore(g, s, path), FLOE_NOT_FOUND);
    assert_non_null(strstr(floe_keras_last_error(), "variable 'only': not in the checkpoint"));
    floe_session_free(s);
    floe_graph_free(g);

    /* An uninitialised variable cannot be saved. */
    ok(floe_graph_new(ctx, &g), "graph");
    ok(floe_train_var_new_filled(g, "u", FLOE_DTYPE_F32, NULL, 0, 0, &only), "u");
    ok(floe_session_new(g, NULL, &s), "session");
    assert_int_not_equal(floe_checkpoint_write(g, s, path), FLOE_OK);
    assert_non_null(strstr(floe_keras_last_error(), "uninitialised"));
    floe_session_free(s);
    floe_graph_free(g);
    /* ... and the failed write left the old file whole. */
    floe_checkpoint *c = NULL;
    ok(floe_checkpoint_open(ctx, path, &c), "old file");
    floe_checkpoint_close(c);
    model_free(&m);
    rm_rf(dir);
}

/* ---- Corrupted and truncated files ------------------------------------------------------ */

/* Opens @path and reads every tensor: FLOE_OK only when all of it is sound. */
static floe_status load_all(floe_context *ctx, const char *path) {
    floe_checkpoint *c = NULL;
    floe_status st = floe_checkpoint_open(ctx, path, &c);
    if (st != FLOE_OK) {
        assert_null(c);
        return st;
    }
    for (int i = 0; i < floe_checkpoint_num_tensors(c) && st == FLOE_OK; i++) {
        floe_tensor *t = NULL;
        st = floe_checkpoint_read_tensor(c, i, &t);
        floe_tensor_unref(t);
    }
    floe_checkpoint_close(c);
    return st;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_corrupt_files(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[128], bad[128];
    unsigned char *orig;
    long size;
    model m;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    snprintf(path, sizeof(path), "%s/good.floeckpt", dir);
    snprintf(bad, sizeof(bad), "%s/bad.floeckpt", dir);
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    ok(floe_checkpoint_write(m.g, m.s, path), "write");
    model_free(&m);
    ok(load_all(ctx, path), "good file");

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc((size_t)size);
    assert_non_null(orig);
    assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    /* Every truncation. */
    for (long n = 0; n < size; n++) {
        write_bytes(bad, orig, (size_t)n);
        floe_status st = load_all(ctx, bad);
        if (st != FLOE_DATA_LOSS)
            fail_msg("truncated to %ld of %ld bytes: %s (%s)", n, size, floe_status_str(st),
                     floe_keras_last_error());
    }
    /* Trailing garbage after the data is not part of any tensor, but a flip anywhere in
     * the real bytes is caught: every bit of every byte. */
    unsigned char *mut = malloc((size_t)size);
    assert_non_null(mut);
    for (long i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(mut, orig, (size_t)size);
            mut[i] ^= (unsigned char)(1u << bit);
            write_bytes(bad, mut, (size_t)size);
            floe_status st = load_all(ctx, bad);
            if (st == FLOE_OK)
                fail_msg("bit %d of byte %ld flipped: accepted", bit, i);
            assert_true(st == FLOE_DATA_LOSS || st == FLOE_UNIMPLEMENTED);
        }
    }
    /* Random garbage of several sizes, and a huge claimed index. */
    for (int k = 0; k < 64; k++) {
        size_t n = (size_t)(k * 7 + 1);
        for (size_t i = 0; i < n; i++)
            mut[i % (size_t)size] = (unsigned char)(rand() & 0xff);
        if (n > 8)
            memcpy(mut, "FLOECKPT", 8);
        write_bytes(bad, mut, n < (size_t)size ? n : (size_t)size);
        assert_int_not_equal(load_all(ctx, bad), FLOE_OK);
    }
    assert_int_equal(load_all(ctx, "/nonexistent/x.floeckpt"), FLOE_NOT_FOUND);
    free(mut);
    free(orig);
    rm_rf(dir);
}

/* ---- Crash consistency, keep-last-N, pointer file ------------------------------------------ */

static void test_crash_consistency(void **state) {
    floe_context *ctx = *state;
    char dir[64], latest[256], blocker[128], under[160];
    struct rlimit old, small;
    model m;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    ok(floe_checkpoint_save(m.g, m.s, dir, 1, 5, NULL, 0), "save 1");
    run(m.s, m.bump);

    /* The next save fails in the middle of the file (the file-size limit stops the
     * writer after 100 bytes, as a full disk or a crash would). */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    floe_status st = floe_checkpoint_save(m.g, m.s, dir, 2, 5, NULL, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_not_equal(st, FLOE_OK);
    assert_non_null(strstr(floe_keras_last_error(), "ckpt-2.floeckpt"));

    /* The old checkpoint is what "latest" names, whole; nothing else is left behind. */
    ok(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), "latest");
    assert_non_null(strstr(latest, "ckpt-1.floeckpt"));
    assert_false(exists(dir, "ckpt-2.floeckpt"));
    assert_int_equal(count_entries(dir), 2);
    ok(floe_checkpoint_restore_latest(m.g, m.s, dir, NULL, 0), "restore latest");
    expect_a(&m, 1);
    assert_int_equal(get_n(&m), 7);

    /* A directory that cannot be created (a file is in the way) fails cleanly. */
    snprintf(blocker, sizeof(blocker), "%s/blocker", dir);
    write_bytes(blocker, (const unsigned char *)"x", 1);
    snprintf(under, sizeof(under), "%s/sub", blocker);
    assert_int_not_equal(floe_checkpoint_save(m.g, m.s, under, 3, 5, NULL, 0), FLOE_OK);
    ok(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), "latest");
    assert_non_null(strstr(latest, "ckpt-1.floeckpt"));
    model_free(&m);
    rm_rf(dir);
}

static void test_keep_last_n(void **state) {
    floe_context *ctx = *state;
    char dir[64], latest[256], ptr[128];
    model m;

    tc_tmpdir(dir, sizeof(dir), "ckpt");
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    assert_int_equal(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), FLOE_NOT_FOUND);
    for (int step = 1; step <= 5; step++) {
        run(m.s, m.bump);
        ok(floe_checkpoint_save(m.g, m.s, dir, step * 10, 2, NULL, 0), "save");
    }
    assert_false(exists(dir, "ckpt-10.floeckpt"));
    assert_false(exists(dir, "ckpt-30.floeckpt"));
    assert_true(exists(dir, "ckpt-40.floeckpt"));
    assert_true(exists(dir, "ckpt-50.floeckpt"));
    assert_int_equal(count_entries(dir), 3);
    snprintf(ptr, sizeof(ptr), "%s/checkpoint", dir);
    FILE *f = fopen(ptr, "r");
    char text[256] = {0};
    assert_non_null(f);
    assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    assert_string_equal(text, "latest: ckpt-50.floeckpt\nall: ckpt-40.floeckpt\n"
                              "all: ckpt-50.floeckpt\n");
    ok(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), "latest");
    assert_non_null(strstr(latest, "/ckpt-50.floeckpt"));
    /* A buffer too small. */
    assert_int_equal(floe_checkpoint_latest(ctx, dir, latest, 8), FLOE_OUT_OF_RANGE);

    /* Malformed pointer files are refused, names escaping the directory too. */
    write_bytes(ptr, (const unsigned char *)"garbage\n", 8);
    assert_int_equal(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), FLOE_DATA_LOSS);
    write_bytes(ptr, (const unsigned char *)"latest: ../etc/passwd\n", 22);
    assert_int_equal(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), FLOE_DATA_LOSS);
    write_bytes(ptr, (const unsigned char *)"all: ckpt-40.floeckpt\n", 22);
    assert_int_equal(floe_checkpoint_latest(ctx, dir, latest, sizeof(latest)), FLOE_DATA_LOSS);
    model_free(&m);
    rm_rf(dir);
}

/* `floe checkpoint ls FILE` lists names, dtypes and shapes, and rejects a corrupt file. */
static void test_tool_ls(void **state) {
    floe_context *ctx = *state;
    const char *root = getenv("FLOE_BUILD_ROOT");
    char dir[64], path[128], cmd[512], out[4096] = {0};
    model m;

    if (root == NULL)
        skip();
    tc_tmpdir(dir, sizeof(dir), "ckpt");
    snprintf(path, sizeof(path), "%s/ls.floeckpt", dir);
    model_new(ctx, &m, shape23, FLOE_DTYPE_F64);
    ok(floe_checkpoint_write(m.g, m.s, path), "write");
    model_free(&m);
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' checkpoint ls '%s' 2>&1", root, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, "dense/bias"));
    assert_non_null(strstr(out, "f64    [4]"));
    assert_non_null(strstr(out, "dense/kernel"));
    assert_non_null(strstr(out, "f32    [2, 3]"));
    assert_non_null(strstr(out, "i64    []"));
    assert_non_null(strstr(out, "3 tensors, 64 bytes"));

    /* Flip the last byte (tensor data): ls reports the checksum and exits 1. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -1, SEEK_END);
    int c = fgetc(f);
    fseek(f, -1, SEEK_END);
    fputc(c ^ 0x40, f);
    fclose(f);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    assert_non_null(strstr(out, "checksum mismatch"));
    rm_rf(dir);
}

static void test_bad_arguments(void **state) {
    floe_context *ctx = *state;
    floe_checkpoint *c = (floe_checkpoint *)&c;
    char buf[16];
    assert_int_equal(floe_checkpoint_open(ctx, NULL, &c), FLOE_INVALID_ARGUMENT);
    assert_null(c);
    assert_int_equal(floe_checkpoint_write(NULL, NULL, "x"), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_checkpoint_restore(NULL, NULL, "x"), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_checkpoint_save(NULL, NULL, "x", 1, 1, buf, sizeof(buf)),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_checkpoint_latest(ctx, NULL, buf, sizeof(buf)), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_checkpoint_num_tensors(NULL), 0);
    assert_int_equal(floe_checkpoint_find(NULL, "x"), -1);
    assert_int_equal(floe_checkpoint_read_tensor(NULL, 0, NULL), FLOE_INVALID_ARGUMENT);
    floe_checkpoint_close(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_resume_same_curve),
        cmocka_unit_test(test_mismatch_messages),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_crash_consistency),
        cmocka_unit_test(test_keep_last_n),
        cmocka_unit_test(test_tool_ls),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
