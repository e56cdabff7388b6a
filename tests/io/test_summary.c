/*
 * test_summary.c - floe/summary.h: event files written by the summary writer and read
 * back with Floe's reader: the file name and first record, scalars, histograms against
 * TensorFlow's bucket rule, PNG images (encode, decode, bad shapes), the graph, events
 * visible before close (flush by call and by time), a flush that fails (file size limit)
 * leaving whole records only, every byte corrupted and every truncation of a small
 * file (each read returns the exact event or DATA_LOSS), and bad arguments.
 */
#include "test_common.h"

#include <floe/fs.h>
#include <floe/graphdef.h>
#include <floe/summary.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------------------ */

static void ok(floe_status st, const char *what) {
    if (st != FLOE_OK)
        fail_msg("%s: %s (%s)", what, floe_status_str(st), floe_last_error());
}

static void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Reads every event of @path into @kinds/@steps (up to @max); the status that ended it. */
static floe_status read_all(floe_context *ctx, const char *path, int *count) {
    floe_event_reader *r = NULL;
    const floe_event *ev;
    floe_status st;

    *count = 0;
    ok(floe_event_reader_open(ctx, path, &r), "open reader");
    while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK)
        (*count)++;
    floe_event_reader_close(r);
    return st;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "events.out.tfevents.", 20) == 0)
            n++;
    closedir(d);
    return n;
}

/* ---- The file ---------------------------------------------------------------------------- */

static void writer_names_file_and_writes_version_first(void **state) {
    floe_context *ctx = *state;
    char dir[64], sub[128], host[256];
    floe_summary_writer *w = NULL;
    floe_event_reader *r = NULL;
    const floe_event *ev;

    tc_tmpdir(dir, sizeof(dir), "summary");
    snprintf(sub, sizeof(sub), "%s/a/b/train", dir); /* parents are created */
    ok(floe_summary_writer_new(ctx, sub, -1, &w), "writer");
    const char *path = floe_summary_writer_path(w);
    assert_non_null(path);
    assert_int_equal(strncmp(path, sub, strlen(sub)), 0);
    const char *base = strrchr(path, '/') + 1;
    /* events.out.tfevents.<10-digit secs>.<host>.<pid>.<n> */
    assert_int_equal(strncmp(base, "events.out.tfevents.", 20), 0);
    long long secs = atoll(base + 20);
    assert_true(llabs(secs - (long long)time(NULL)) < 60);
    assert_int_equal(base[30], '.');
    gethostname(host, sizeof(host));
    assert_int_equal(strncmp(base + 31, host, strlen(host)), 0);
    char pid[32];
    snprintf(pid, sizeof(pid), ".%ld.", (long)getpid());
    assert_non_null(strstr(base + 31 + strlen(host), pid));
    /* The version record is on disk before any close. */
    ok(floe_event_reader_open(ctx, path, &r), "reader");
    ok(floe_event_reader_next(r, &ev), "first event");
    assert_int_equal(ev->kind, FLOE_EVENT_FILE_VERSION);
    assert_string_equal(ev->file_version, "brain.Event:2");
    assert_true(fabs(ev->wall_time - (double)time(NULL)) < 60);
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);
    /* A second writer in the same directory gets another file. */
    floe_summary_writer *w2 = NULL;
    ok(floe_summary_writer_new(ctx, sub, -1, &w2), "second writer");
    assert_string_not_equal(floe_summary_writer_path(w), floe_summary_writer_path(w2));
    ok(floe_summary_writer_close(w2), "close 2");
    ok(floe_summary_writer_close(w), "close");
    assert_int_equal(count_files(sub), 2);
    rm_rf(dir);
}

static void scalars_round_trip(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[1024];
    floe_summary_writer *w = NULL;
    floe_event_reader *r = NULL;
    const floe_event *ev;

    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    for (int s = 0; s < 50; s++) {
        ok(floe_summary_scalar(w, "epoch_loss", 2.0 / (s + 1), s), "loss");
        ok(floe_summary_scalar(w, "epoch_accuracy", 0.01 * s, s), "accuracy");
    }
    ok(floe_summary_scalar(w, "big", -1e30, -7), "negative step");
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    ok(floe_summary_writer_close(w), "close");

    ok(floe_event_reader_open(ctx, path, &r), "reader");
    ok(floe_event_reader_next(r, &ev), "version");
    for (int s = 0; s < 50; s++) {
        for (int k = 0; k < 2; k++) {
            ok(floe_event_reader_next(r, &ev), "scalar");
            assert_int_equal(ev->kind, FLOE_EVENT_SUMMARY);
            assert_int_equal(ev->step, s);
            assert_int_equal(ev->nvalues, 1);
            assert_int_equal(ev->values[0].kind, FLOE_SUMMARY_SCALAR);
            assert_string_equal(ev->values[0].tag, k == 0 ? "epoch_loss" : "epoch_accuracy");
            double want = k == 0 ? 2.0 / (s + 1) : 0.01 * s;
            assert_true(ev->values[0].scalar == (double)(float)want);
        }
    }
    ok(floe_event_reader_next(r, &ev), "big");
    assert_int_equal(ev->step, -7);
    assert_true(ev->values[0].scalar == (double)(float)-1e30);
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_OUT_OF_RANGE);
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);
    rm_rf(dir);
}

/* ---- Histograms -------------------------------------------------------------------------- */

/* TensorFlow's limits, recomputed here independently: 0, +-1e-12*1.1^k < 1e20, +-DBL_MAX. */
static int is_tf_limit(double x) {
    if (x == 0 || fabs(x) == DBL_MAX)
        return 1;
    double v = 1e-12;
    for (int k = 0; v < 1e20; k++, v *= 1.1)
        if (fabs(x) == v)
            return 1;
    return 0;
}

/* Checks the histogram @v against the @n values @x: statistics, TF limits, and every
 * value in [previous limit, limit) of its bucket. */
static void check_histogram(const floe_summary_value *v, const double *x, int n) {
    double mn = DBL_MAX, mx = -DBL_MAX, sum = 0, sq = 0, total = 0;
    for (int i = 0; i < n; i++) {
        mn = fmin(mn, x[i]);
        mx = fmax(mx, x[i]);
        sum += x[i];
        sq += x[i] * x[i];
    }
    assert_int_equal(v->kind, FLOE_SUMMARY_HISTOGRAM);
    assert_true(v->num == n);
    assert_true(fabs(v->sum - sum) <= 1e-9 * (1 + fabs(sum)));
    assert_true(fabs(v->sum_squares - sq) <= 1e-9 * (1 + sq));
    if (n > 0) {
        assert_true(v->min == mn);
        assert_true(v->max == mx);
    }
    assert_true(v->nbuckets >= 1);
    for (size_t b = 0; b < v->nbuckets; b++) {
        assert_true(is_tf_limit(v->bucket_limit[b]));
        if (b > 0)
            assert_true(v->bucket_limit[b] > v->bucket_limit[b - 1]);
        double lo = b > 0 ? v->bucket_limit[b - 1] : -INFINITY, hi = v->bucket_limit[b];
        int in = 0;
        for (int i = 0; i < n; i++)
            in += x[i] >= lo && x[i] < hi;
        assert_true(v->bucket[b] == in);
        total += v->bucket[b];
        /* Runs of empty buckets are merged: no two empty entries in a row. */
        if (b > 0)
            assert_false(v->bucket[b] == 0 && v->bucket[b - 1] == 0);
    }
    assert_true(total == n);
}

static void histograms_use_tensorflow_buckets(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[1024];
    floe_summary_writer *w = NULL;
    floe_event_reader *r = NULL;
    const floe_event *ev;
    enum { N = 1000 };
    double x[N];
    float xf[N];
    uint64_t rng = 7;

    for (int i = 0; i < N; i++) {
        x[i] = (tc_uniform01(&rng) - 0.3) * 4.0;
        if (i % 100 == 0)
            x[i] = 0.0;
        xf[i] = (float)x[i];
    }
    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    ok(floe_summary_histogram_f64(w, "f64", x, N, 3), "f64");
    int64_t shape[2] = {25, 40};
    floe_tensor *t = tc_f32(shape, 2, xf);
    ok(floe_summary_histogram(w, "dense/kernel", t, 4), "tensor");
    floe_tensor_unref(t);
    int32_t iv[5] = {-3, 0, 0, 7, 1000000};
    int64_t five = 5;
    t = tc_i32(&five, 1, iv);
    ok(floe_summary_histogram(w, "ints", t, 5), "i32");
    floe_tensor_unref(t);
    ok(floe_summary_histogram_f64(w, "empty", NULL, 0, 6), "empty");
    /* Every limit, its neighbours and its negation: each lands in [previous, limit). */
    static double edges[8000];
    int ne = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) {
        double e[4] = {v, nextafter(v, 0), nextafter(v, INFINITY), v * 1.05};
        for (int k = 0; k < 4; k++) {
            edges[ne++] = e[k];
            edges[ne++] = -e[k];
        }
    }
    edges[ne++] = 1e25; /* beyond the last power: the DBL_MAX bucket */
    edges[ne++] = -1e25;
    edges[ne++] = -0.0;
    edges[ne++] = 5e-324;
    edges[ne++] = -5e-324;
    assert_true(ne <= 8000);
    ok(floe_summary_histogram_f64(w, "edges", edges, (size_t)ne, 8), "edges");
    /* Non-finite elements and non-real dtypes are refused, naming the tag. */
    xf[17] = NAN;
    t = tc_f32(shape, 2, xf);
    assert_int_equal(floe_summary_histogram(w, "nan", t, 7), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("element 17 is NaN");
    floe_tensor_unref(t);
    double inf = INFINITY;
    assert_int_equal(floe_summary_histogram_f64(w, "inf", &inf, 1, 7), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'inf'");
    floe_tensor *s = NULL;
    ok(floe_tensor_new(FLOE_DTYPE_STRING, &five, 1, &s), "string tensor");
    assert_int_equal(floe_summary_histogram(w, "str", s, 7), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("not real");
    floe_tensor_unref(s);
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    ok(floe_summary_writer_close(w), "close");

    ok(floe_event_reader_open(ctx, path, &r), "reader");
    ok(floe_event_reader_next(r, &ev), "version");
    ok(floe_event_reader_next(r, &ev), "f64");
    assert_int_equal(ev->step, 3);
    assert_string_equal(ev->values[0].tag, "f64");
    check_histogram(&ev->values[0], x, N);
    ok(floe_event_reader_next(r, &ev), "tensor");
    double xd[N];
    for (int i = 0; i < N; i++)
        xd[i] = (float)x[i]; /* as written, before element 17 became NaN */
    assert_string_equal(ev->values[0].tag, "dense/kernel");
    check_histogram(&ev->values[0], xd, N);
    ok(floe_event_reader_next(r, &ev), "ints");
    double ivd[5] = {-3, 0, 0, 7, 1000000};
    check_histogram(&ev->values[0], ivd, 5);
    /* 0 falls in the bucket whose limit is 1e-12. */
    int zero_seen = 0;
    for (size_t b = 0; b < ev->values[0].nbuckets; b++)
        if (ev->values[0].bucket_limit[b] == 1e-12) {
            assert_true(ev->values[0].bucket[b] == 2);
            zero_seen = 1;
        }
    assert_true(zero_seen);
    ok(floe_event_reader_next(r, &ev), "empty");
    assert_int_equal(ev->values[0].nbuckets, 1);
    assert_true(ev->values[0].bucket_limit[0] == DBL_MAX);
    assert_true(ev->values[0].bucket[0] == 0);
    assert_true(ev->values[0].num == 0);
    ok(floe_event_reader_next(r, &ev), "edges");
    assert_string_equal(ev->values[0].tag, "edges");
    check_histogram(&ev->values[0], edges, ne);
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);
    rm_rf(dir);
}

/* ---- Images --------------------------------------------------------------------------- */

static void images_are_png_of_1_3_4_channels(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[1024];
    floe_summary_writer *w = NULL;
    floe_event_reader *r = NULL;
    const floe_event *ev;
    floe_tensor *img[3];
    int64_t shapes[3][3] = {{5, 7, 1}, {6, 4, 3}, {3, 9, 4}};

    for (int k = 0; k < 3; k++) {
        ok(floe_tensor_new(FLOE_DTYPE_U8, shapes[k], 3, &img[k]), "image");
        uint8_t *p = floe_tensor_data(img[k]);
        for (int64_t i = 0; i < tc_count(shapes[k], 3); i++)
            p[i] = (uint8_t)(i * 37 + k * 11);
    }
    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    for (int k = 0; k < 3; k++)
        ok(floe_summary_image(w, "img", img[k], k), "write image");
    /* f32 [H, W] in [0, 1], clamped outside, NaN as 0. */
    float fv[6] = {0.0f, 0.5f, 1.0f, -3.0f, 7.0f, NAN};
    int64_t fshape[2] = {2, 3};
    floe_tensor *f = tc_f32(fshape, 2, fv);
    ok(floe_summary_image(w, "grey", f, 9), "f32 image");
    floe_tensor_unref(f);
    /* Bad images. */
    int64_t bad5[3] = {2, 2, 5}, bad0[3] = {0, 2, 3}, bad1[1] = {4};
    floe_tensor *b = NULL;
    ok(floe_tensor_new(FLOE_DTYPE_U8, bad5, 3, &b), "bad5");
    assert_int_equal(floe_summary_image(w, "bad", b, 0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("5 channels");
    floe_tensor_unref(b);
    ok(floe_tensor_new(FLOE_DTYPE_U8, bad0, 3, &b), "bad0");
    assert_int_equal(floe_summary_image(w, "bad", b, 0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("0 x 2");
    floe_tensor_unref(b);
    ok(floe_tensor_new(FLOE_DTYPE_U8, bad1, 1, &b), "bad1");
    assert_int_equal(floe_summary_image(w, "bad", b, 0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("rank 1");
    floe_tensor_unref(b);
    ok(floe_tensor_new(FLOE_DTYPE_I32, bad5, 3, &b), "i32");
    assert_int_equal(floe_summary_image(w, "bad", b, 0), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dtype");
    floe_tensor_unref(b);
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    ok(floe_summary_writer_close(w), "close");

    ok(floe_event_reader_open(ctx, path, &r), "reader");
    ok(floe_event_reader_next(r, &ev), "version");
    for (int k = 0; k < 3; k++) {
        floe_tensor *d = NULL;
        ok(floe_event_reader_next(r, &ev), "image event");
        const floe_summary_value *v = &ev->values[0];
        assert_int_equal(v->kind, FLOE_SUMMARY_IMAGE);
        assert_int_equal(v->height, shapes[k][0]);
        assert_int_equal(v->width, shapes[k][1]);
        assert_int_equal(v->colorspace, shapes[k][2]);
        assert_memory_equal(v->encoded, "\x89PNG", 4);
        ok(floe_png_decode(v->encoded, v->encoded_size, &d), "decode");
        tc_assert_shape(d, FLOE_DTYPE_U8, shapes[k], 3);
        assert_memory_equal(floe_tensor_data(d), floe_tensor_data(img[k]),
                            (size_t)tc_count(shapes[k], 3));
        floe_tensor_unref(d);
        floe_tensor_unref(img[k]);
    }
    ok(floe_event_reader_next(r, &ev), "grey");
    floe_tensor *d = NULL;
    ok(floe_png_decode(ev->values[0].encoded, ev->values[0].encoded_size, &d), "decode grey");
    const uint8_t want[6] = {0, 128, 255, 0, 255, 0};
    assert_memory_equal(floe_tensor_data(d), want, 6);
    floe_tensor_unref(d);
    floe_event_reader_close(r);
    /* Broken PNGs are DATA_LOSS. */
    assert_int_equal(floe_png_decode("\x89PNG\r\n\x1a\n", 8, &d), FLOE_DATA_LOSS);
    assert_null(d);
    assert_int_equal(floe_png_decode("hello", 5, &d), FLOE_DATA_LOSS);
    rm_rf(dir);
}

/* ---- The graph --------------------------------------------------------------------------- */

static void graph_event_holds_the_exported_graphdef(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[1024];
    floe_summary_writer *w = NULL;
    floe_event_reader *r = NULL;
    const floe_event *ev;
    floe_graph *g = NULL;
    void *gd = NULL;
    size_t gd_size = 0;

    ok(floe_graph_new(ctx, &g), "graph");
    int64_t dims[2] = {-1, 3};
    floe_node *x = tc_placeholder(g, "x", FLOE_DTYPE_F32, dims, 2);
    float wv[6] = {1, 2, 3, 4, 5, 6};
    int64_t ws[2] = {3, 2};
    floe_node *c = tc_g_const(g, tc_f32(ws, 2, wv));
    floe_node *in[2] = {x, c}, *mm = NULL;
    assert_non_null(x);
    ok(tc_g_node(g, "MatMul", in, 2, 0, NULL, &mm), "matmul");
    floe_status st = floe_graphdef_export(g, &gd, &gd_size);
    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    ok(st, "export");
    ok(floe_summary_graph(w, g), "graph event");
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    ok(floe_summary_writer_close(w), "close");
    ok(floe_event_reader_open(ctx, path, &r), "reader");
    ok(floe_event_reader_next(r, &ev), "version");
    ok(floe_event_reader_next(r, &ev), "graph");
    assert_int_equal(ev->kind, FLOE_EVENT_GRAPH);
    assert_int_equal(ev->graph_def_size, gd_size);
    assert_memory_equal(ev->graph_def, gd, gd_size);
    /* It imports into a fresh graph with the same nodes. */
    floe_graph *g2 = NULL;
    ok(floe_graph_new(ctx, &g2), "graph 2");
    ok(floe_graphdef_import(g2, ev->graph_def, ev->graph_def_size), "import");
    assert_int_equal(floe_graph_num_nodes(g2), floe_graph_num_nodes(g));
    assert_non_null(floe_graph_find(g2, "x"));
    floe_graph_free(g2);
    floe_event_reader_close(r);
    free(gd);
    floe_graph_free(g);
    rm_rf(dir);
}

/* ---- Visibility while writing ------------------------------------------------------------- */

static void events_are_visible_after_each_flush(void **state) {
    floe_context *ctx = *state;
    char dir[64];
    floe_summary_writer *w = NULL;
    int n;

    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    const char *path = floe_summary_writer_path(w);
    ok(floe_summary_scalar(w, "a", 1, 1), "a");
    assert_int_equal(read_all(ctx, path, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 1); /* buffered: only the version so far */
    ok(floe_summary_flush(w), "flush");
    assert_int_equal(read_all(ctx, path, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 2);
    ok(floe_summary_flush(w), "empty flush");
    for (int i = 0; i < 10; i++)
        ok(floe_summary_scalar(w, "b", i, i), "b");
    ok(floe_summary_flush(w), "flush 2");
    assert_int_equal(read_all(ctx, path, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 12);
    ok(floe_summary_writer_close(w), "close");
    /* flush_secs 1e-9: every event is flushed as it is written. */
    ok(floe_summary_writer_new(ctx, dir, 1e-9, &w), "timed writer");
    path = floe_summary_writer_path(w);
    ok(floe_summary_scalar(w, "c", 1, 1), "c");
    assert_int_equal(read_all(ctx, path, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 2);
    /* 1 MiB of pending events flushes without being asked. */
    floe_summary_writer *w2 = NULL;
    ok(floe_summary_writer_new(ctx, dir, -1, &w2), "big writer");
    int64_t shape[3] = {300, 300, 3};
    floe_tensor *noise = tc_rand_tensor(FLOE_DTYPE_U8, shape, 3, 0, 255, 5);
    for (int i = 0; i < 6; i++) /* ~270 kB each: the 4th passes 1 MiB */
        ok(floe_summary_image(w2, "noise", noise, i), "noise");
    floe_tensor_unref(noise);
    assert_int_equal(read_all(ctx, floe_summary_writer_path(w2), &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 5);
    ok(floe_summary_writer_close(w2), "close big");
    ok(floe_summary_writer_close(w), "close timed");
    rm_rf(dir);
}

/* A flush that fails (the file size limit) leaves whole records, and the writer
 * reports the failure from then on. */
static void failed_flush_is_sticky_and_leaves_whole_records(void **state) {
    floe_context *ctx = *state;
    char dir[64], path[1024];
    floe_summary_writer *w = NULL;
    struct rlimit old, lim;
    struct stat sb;
    int n;

    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    ok(floe_summary_scalar(w, "a", 1, 1), "a");
    ok(floe_summary_flush(w), "flush");
    assert_int_equal(stat(path, &sb), 0);
    for (int i = 0; i < 100; i++)
        ok(floe_summary_scalar(w, "b", i, i), "b");
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size + 100; /* a few records fit, not all */
    setrlimit(RLIMIT_FSIZE, &lim);
    floe_status st = floe_summary_flush(w);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_not_equal(st, FLOE_OK);
    tc_assert_error_contains(path);
    assert_int_not_equal(floe_summary_scalar(w, "c", 1, 1), FLOE_OK);
    tc_assert_error_contains("earlier flush failed");
    assert_int_not_equal(floe_summary_writer_close(w), FLOE_OK);
    /* The file ends after the last whole flush. */
    assert_int_equal(read_all(ctx, path, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 2);
    rm_rf(dir);
}

/* ---- Untrusted bytes -------------------------------------------------------------------- */

static void every_corruption_and_truncation_is_data_loss_or_exact(void **state) {
    floe_context *ctx = *state;
    char dir[64];
    floe_summary_writer *w = NULL;
    uint8_t *file = NULL, *copy;
    size_t size = 0;
    double hv[4] = {-1, 0.5, 2, 2};
    int64_t ishape[3] = {2, 2, 3};
    floe_tensor *img = tc_rand_tensor(FLOE_DTYPE_U8, ishape, 3, 0, 255, 3);

    tc_tmpdir(dir, sizeof(dir), "summary");
    ok(floe_summary_writer_new(ctx, dir, -1, &w), "writer");
    ok(floe_summary_scalar(w, "loss", 0.25, 1), "scalar");
    ok(floe_summary_histogram_f64(w, "h", hv, 4, 1), "histogram");
    ok(floe_summary_image(w, "i", img, 1), "image");
    floe_tensor_unref(img);
    ok(floe_fs_read_all(ctx, floe_summary_writer_path(w), 0, (void **)&file, &size), "read 0");
    ok(floe_summary_flush(w), "flush");
    free(file);
    ok(floe_fs_read_all(ctx, floe_summary_writer_path(w), 0, (void **)&file, &size), "read");
    ok(floe_summary_writer_close(w), "close");
    /* Offsets where records end. */
    size_t ends[8], nends = 0, off = 0;
    while (off + 12 <= size && nends < 8) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)file[off + i] << (8 * i);
        off += 16 + len;
        ends[nends++] = off;
    }
    assert_int_equal(nends, 4);
    assert_int_equal(ends[3], size);
    copy = malloc(size);
    assert_non_null(copy);
    for (size_t cut = 0; cut <= size; cut++) {
        floe_event_reader *r = NULL;
        const floe_event *ev;
        floe_status st;
        int n = 0;
        memcpy(copy, file, cut);
        ok(floe_event_reader_open_memory(copy, cut, "cut", &r), "open");
        while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK)
            n++;
        size_t whole = 0;
        while (whole < nends && ends[whole] <= cut)
            whole++;
        assert_int_equal(n, (int)whole);
        int clean = cut == 0 || (whole > 0 && ends[whole - 1] == cut);
        assert_int_equal(st, clean ? FLOE_OUT_OF_RANGE : FLOE_DATA_LOSS);
        floe_event_reader_close(r);
    }
    for (size_t i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            floe_event_reader *r = NULL;
            const floe_event *ev;
            floe_status st;
            memcpy(copy, file, size);
            copy[i] ^= (uint8_t)(1u << bit);
            ok(floe_event_reader_open_memory(copy, size, "flip", &r), "open");
            int n = 0;
            while ((st = floe_event_reader_next(r, &ev)) == FLOE_OK)
                n++;
            /* The record holding byte i is lost (its CRC no longer matches). */
            assert_int_equal(st, FLOE_DATA_LOSS);
            size_t rec = 0;
            while (ends[rec] <= i)
                rec++;
            assert_int_equal(n, (int)rec);
            floe_event_reader_close(r);
        }
    }
    free(copy);
    free(file);
    rm_rf(dir);
}

static void decode_refuses_garbage(void **state) {
    floe_event *ev = (floe_event *)state;
    uint64_t rng = 11;
    uint8_t buf[256];

    (void)state;
    assert_int_equal(floe_event_decode("\xff\xff\xff", 3, &ev), FLOE_DATA_LOSS);
    assert_null(ev);
    /* An empty message is a valid (empty) Event. */
    ok(floe_event_decode("", 0, &ev), "empty");
    assert_int_equal(ev->kind, FLOE_EVENT_EMPTY);
    floe_event_free(ev);
    /* A histogram whose limit and count lists differ: field 1 (value) of a Summary
     * (field 5) holding tag "h" and histo (field 5) with one bucket_limit only. */
    const uint8_t bad_histo[] = {0x2a, 0x10, 0x0a, 0x0e, 0x0a, 0x01, 'h', 0x2a, 0x09, 0x31,
                                 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    assert_int_equal(floe_event_decode(bad_histo, sizeof(bad_histo), &ev), FLOE_DATA_LOSS);
    tc_assert_error_contains("bucket");
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(tc_rng_next(&rng) % sizeof(buf));
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)tc_rng_next(&rng);
        floe_status st = floe_event_decode(buf, n, &ev);
        assert_true(st == FLOE_OK || st == FLOE_DATA_LOSS);
        floe_event_free(ev);
    }
    floe_event_free(NULL);
}

/* TensorFlow 2's forms (tensors with plugin metadata, written here with TensorBoard's
 * own protos by tests/fuzz/gen_event_corpus.py) and a session log. */
static void reader_decodes_tensorflow2_forms(void **state) {
    floe_context *ctx = *state;
    const char *root = getenv("FLOE_SOURCE_ROOT");
    char path[1024];
    floe_event_reader *r = NULL;
    const floe_event *ev;

    if (root == NULL)
        skip();
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_event/tf2_forms", root);
    ok(floe_event_reader_open(ctx, path, &r), "open");
    ok(floe_event_reader_next(r, &ev), "version");
    assert_int_equal(ev->kind, FLOE_EVENT_FILE_VERSION);
    ok(floe_event_reader_next(r, &ev), "float scalar tensor");
    assert_int_equal(ev->step, 1);
    assert_int_equal(ev->values[0].kind, FLOE_SUMMARY_SCALAR);
    assert_string_equal(ev->values[0].plugin_name, "scalars");
    assert_true(ev->values[0].scalar == 0.25);
    ok(floe_event_reader_next(r, &ev), "double scalar tensor");
    assert_int_equal(ev->values[0].kind, FLOE_SUMMARY_SCALAR);
    assert_true(ev->values[0].scalar == 0.5);
    ok(floe_event_reader_next(r, &ev), "histogram tensor");
    assert_int_equal(ev->values[0].kind, FLOE_SUMMARY_OTHER);
    assert_string_equal(ev->values[0].plugin_name, "histograms");
    ok(floe_event_reader_next(r, &ev), "image tensor");
    assert_int_equal(ev->values[0].kind, FLOE_SUMMARY_OTHER);
    assert_string_equal(ev->values[0].tag, "img");
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_OUT_OF_RANGE);
    floe_event_reader_close(r);

    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_event/session_log", root);
    ok(floe_event_reader_open(ctx, path, &r), "open");
    ok(floe_event_reader_next(r, &ev), "version");
    ok(floe_event_reader_next(r, &ev), "session log");
    assert_int_equal(ev->kind, FLOE_EVENT_SESSION_LOG);
    assert_int_equal(ev->session_status, 1);
    assert_int_equal(ev->step, 7);
    floe_event_reader_close(r);

    /* A record that is no Event ends the file with DATA_LOSS, and stays so. */
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_event/bad_histogram", root);
    ok(floe_event_reader_open(ctx, path, &r), "open");
    ok(floe_event_reader_next(r, &ev), "version");
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_DATA_LOSS);
    tc_assert_error_contains("record at offset 40");
    assert_int_equal(floe_event_reader_next(r, &ev), FLOE_DATA_LOSS);
    tc_assert_error_contains("2 bucket limits but 1 buckets");
    floe_event_reader_close(r);
}

static void bad_arguments_are_refused(void **state) {
    floe_context *ctx = *state;
    floe_summary_writer *w = (floe_summary_writer *)state;
    floe_event_reader *r = (floe_event_reader *)state;
    char dir[64];

    assert_int_equal(floe_summary_writer_new(ctx, NULL, 0, &w), FLOE_INVALID_ARGUMENT);
    assert_null(w);
    assert_int_equal(floe_summary_writer_new(ctx, "", 0, &w), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_writer_new(ctx, "nosuchscheme://x", 0, &w), FLOE_NOT_FOUND);
    assert_null(w);
    tc_tmpdir(dir, sizeof(dir), "summary");
    /* A log directory under a regular file cannot be made. */
    char file[128], sub[160];
    snprintf(file, sizeof(file), "%s/file", dir);
    ok(floe_fs_write_all(ctx, file, "x", 1), "file");
    snprintf(sub, sizeof(sub), "%s/logs", file);
    assert_int_not_equal(floe_summary_writer_new(ctx, sub, 0, &w), FLOE_OK);
    assert_null(w);
    tc_assert_error_contains("file/logs");
    ok(floe_summary_writer_new(ctx, dir, 0, &w), "writer");
    assert_int_equal(floe_summary_scalar(w, NULL, 1, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_scalar(w, "", 1, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("tag");
    assert_int_equal(floe_summary_scalar(NULL, "a", 1, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_histogram(w, "h", NULL, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_histogram_f64(w, "h", NULL, 3, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_image(w, "i", NULL, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_graph(w, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_summary_flush(NULL), FLOE_INVALID_ARGUMENT);
    assert_null(floe_summary_writer_path(NULL));
    ok(floe_summary_writer_close(w), "close");
    ok(floe_summary_writer_close(NULL), "close NULL");
    assert_int_not_equal(floe_event_reader_open(ctx, "/nonexistent/events", &r), FLOE_OK);
    assert_null(r);
    assert_int_equal(floe_event_reader_next(NULL, NULL), FLOE_INVALID_ARGUMENT);
    floe_event_reader_close(NULL);
    rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writer_names_file_and_writes_version_first),
        cmocka_unit_test(scalars_round_trip),
        cmocka_unit_test(histograms_use_tensorflow_buckets),
        cmocka_unit_test(images_are_png_of_1_3_4_channels),
        cmocka_unit_test(graph_event_holds_the_exported_graphdef),
        cmocka_unit_test(events_are_visible_after_each_flush),
        cmocka_unit_test(failed_flush_is_sticky_and_leaves_whole_records),
        cmocka_unit_test(every_corruption_and_truncation_is_data_loss_or_exact),
        cmocka_unit_test(decode_refuses_garbage),
        cmocka_unit_test(reader_decodes_tensorflow2_forms),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
