/*
 * test_pipeline.c - tf.data-style pipelines (io/src/pipeline.c).
 *
 * Every transform's output checked element by element: slices, batch (with and without
 * drop_remainder, mismatched elements), shuffle (a seeded permutation, a new one each
 * pass, buffer 1 = no shuffle), map (sequential and on worker threads, in order, a
 * failing callback's message reaching next()), interleaved TFRecord files parsed as
 * Examples, repeat/take/skip, prefetch (the same stream, errors through the thread,
 * freeing mid-stream), cache in memory and in a file (the source runs once; a file is
 * reused by a later pipeline, a partial pass leaves none, damage is DATA_LOSS), and
 * argument errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <floe/floe.h>
#include <floe/pipeline.h>

#include "test_common.h"

static char g_dir[64];
static floe_context *g_ctx;

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/floe-pipe-XXXXXX");
    g_ctx = tc_context();
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    floe_context_free(g_ctx);
    return system(cmd) == 0 ? 0 : -1;
}

/* A pipeline of (x = [i, i+0.5] f32, y = i i32) for i in 0..n. */
static floe_pipeline *range_pipeline(int n) {
    float *x = malloc(sizeof(float) * 2 * (size_t)(n ? n : 1));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        x[2 * i] = (float)i;
        x[2 * i + 1] = (float)i + 0.5f;
        y[i] = i;
    }
    int64_t xs[2] = {n, 2}, ys[1] = {n};
    floe_tensor *t[2] = {tc_f32(xs, 2, x), tc_i32(ys, 1, y)};
    floe_pipeline *p;
    assert_int_equal(floe_pipeline_from_tensors(t, 2, &p), FLOE_OK);
    tc_unref_all(t, 2);
    free(x);
    free(y);
    return p;
}

/* Drains @p, storing the y (i32, scalar or first of a batch row) values; returns the count. */
static int drain_y(floe_pipeline *p, int32_t *ys, int max) {
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n, k = 0;
    floe_status st;
    while ((st = floe_pipeline_next(p, t, &n)) == FLOE_OK) {
        floe_tensor *y = t[n - 1];
        assert_int_equal(floe_tensor_dtype(y), FLOE_DTYPE_I32);
        for (int64_t i = 0; i < floe_tensor_num_elements(y); i++) {
            assert_true(k < max);
            ys[k++] = ((int32_t *)floe_tensor_data(y))[i];
        }
        tc_unref_all(t, n);
    }
    assert_int_equal(st, FLOE_OUT_OF_RANGE);
    return k;
}

static void pipeline_slices_and_batch(void **state) {
    (void)state;
    floe_pipeline *p = range_pipeline(10);
    assert_int_equal(floe_pipeline_batch(p, 4, 0, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    int64_t sizes[3] = {4, 4, 2};
    for (int b = 0; b < 3; b++) {
        assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
        assert_int_equal(n, 2);
        int64_t xs[2] = {sizes[b], 2};
        tc_assert_shape(t[0], FLOE_DTYPE_F32, xs, 2);
        tc_assert_shape(t[1], FLOE_DTYPE_I32, xs, 1);
        for (int i = 0; i < sizes[b]; i++) {
            assert_true(((float *)floe_tensor_data(t[0]))[2 * i + 1] == 4 * b + i + 0.5f);
            assert_int_equal(((int32_t *)floe_tensor_data(t[1]))[i], 4 * b + i);
        }
        tc_unref_all(t, n);
    }
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OUT_OF_RANGE);
    assert_int_equal(n, 0);
    /* reset starts over; drop_remainder drops the last 2 */
    assert_int_equal(floe_pipeline_reset(p), FLOE_OK);
    int32_t ys[16];
    assert_int_equal(drain_y(p, ys, 16), 10);
    floe_pipeline_free(p);
    p = range_pipeline(10);
    assert_int_equal(floe_pipeline_batch(p, 4, 1, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 16), 8);
    floe_pipeline_free(p);
}

static void pipeline_shuffle_is_seeded_permutation(void **state) {
    (void)state;
    int32_t a[200], b[200], c[200];
    floe_pipeline *p = range_pipeline(100);
    assert_int_equal(floe_pipeline_shuffle(p, 30, 7, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 2, &p), FLOE_OK);
    assert_int_equal(drain_y(p, a, 200), 200);
    floe_pipeline_free(p);
    p = range_pipeline(100);
    assert_int_equal(floe_pipeline_shuffle(p, 30, 7, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 2, &p), FLOE_OK);
    assert_int_equal(drain_y(p, b, 200), 200);
    floe_pipeline_free(p);
    assert_memory_equal(a, b, sizeof a); /* same seed, same order */
    for (int pass = 0; pass < 2; pass++) {
        int seen[100] = {0}, moved = 0;
        for (int i = 0; i < 100; i++) {
            seen[a[pass * 100 + i]]++;
            moved += a[pass * 100 + i] != i;
            /* a buffer of 30 moves no element earlier than 29 places before its slot */
            assert_true(a[pass * 100 + i] <= i + 29);
        }
        for (int i = 0; i < 100; i++)
            assert_int_equal(seen[i], 1);
        assert_true(moved > 50);
    }
    assert_true(memcmp(a, a + 100, 100 * sizeof *a) != 0); /* a new order each pass */
    p = range_pipeline(100);
    assert_int_equal(floe_pipeline_shuffle(p, 30, 8, &p), FLOE_OK);
    assert_int_equal(drain_y(p, c, 200), 100);
    floe_pipeline_free(p);
    assert_true(memcmp(a, c, 100 * sizeof *a) != 0);
    p = range_pipeline(50);
    assert_int_equal(floe_pipeline_shuffle(p, 1, 7, &p), FLOE_OK);
    assert_int_equal(drain_y(p, c, 200), 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(c[i], i);
    floe_pipeline_free(p);
}

/* y -> y * 3 + 1; fails on y == fail_at (if >= 0). */
static int g_fail_at = -1;
static floe_status triple(void *arg, floe_tensor *const *in, int nin, floe_tensor **out,
                          int *nout) {
    (void)arg;
    int32_t v = *(int32_t *)floe_tensor_data(in[nin - 1]);
    if (v == g_fail_at)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "triple: refusing element %d", v);
    out[0] = floe_tensor_ref(in[0]);
    floe_status st = floe_tensor_new_scalar_i32(v * 3 + 1, &out[1]);
    if (st != FLOE_OK) {
        floe_tensor_unref(out[0]);
        return st;
    }
    *nout = 2;
    return FLOE_OK;
}

static void pipeline_map_parallel_keeps_order(void **state) {
    (void)state;
    for (int par = 1; par <= 8; par *= 8) {
        floe_pipeline *p = range_pipeline(101);
        assert_int_equal(floe_pipeline_map(p, triple, NULL, g_ctx, par, &p), FLOE_OK);
        int32_t ys[128];
        assert_int_equal(drain_y(p, ys, 128), 101);
        for (int i = 0; i < 101; i++)
            assert_int_equal(ys[i], 3 * i + 1);
        floe_pipeline_free(p);
    }
}

static void pipeline_map_error_reaches_next(void **state) {
    (void)state;
    for (int par = 1; par <= 4; par *= 4) {
        g_fail_at = 37;
        floe_pipeline *p = range_pipeline(100);
        assert_int_equal(floe_pipeline_map(p, triple, NULL, g_ctx, par, &p), FLOE_OK);
        assert_int_equal(floe_pipeline_prefetch(p, 3, &p), FLOE_OK);
        floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
        int n;
        for (int i = 0; i < 37; i++) {
            assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
            assert_int_equal(*(int32_t *)floe_tensor_data(t[1]), 3 * i + 1);
            tc_unref_all(t, n);
        }
        assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("refusing element 37");
        floe_set_error(FLOE_OK, "%s", "");
        assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("refusing element 37");
        assert_int_equal(floe_pipeline_reset(p), FLOE_INVALID_ARGUMENT);
        floe_pipeline_free(p);
        g_fail_at = -1;
    }
}

static void write_examples(const char *path, int first, int count) {
    floe_tfrecord_writer *w;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_GZIP, 0, &w),
                     FLOE_OK);
    floe_example_builder *b = floe_example_builder_new();
    for (int i = first; i < first + count; i++) {
        floe_example_builder_clear(b);
        float x[3] = {(float)i, (float)-i, 0.25f};
        int64_t y = i;
        floe_example_builder_add_floats(b, "x", x, 3);
        floe_example_builder_add_int64s(b, "y", &y, 1);
        const void *d;
        size_t n;
        assert_int_equal(floe_example_builder_serialize(b, &d, &n), FLOE_OK);
        assert_int_equal(floe_tfrecord_write(w, d, n), FLOE_OK);
    }
    floe_example_builder_free(b);
    assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
}

static floe_pipeline *example_files(int cycle, char paths[3][128]) {
    /* file 0: 0..4, file 1: 100..101, file 2: 200..206 */
    const int first[3] = {0, 100, 200}, count[3] = {5, 2, 7};
    const char *names[3];
    for (int f = 0; f < 3; f++) {
        snprintf(paths[f], 128, "%s/part-%d.tfrecord.gz", g_dir, f);
        write_examples(paths[f], first[f], count[f]);
        names[f] = paths[f];
    }
    floe_pipeline *p;
    assert_int_equal(floe_pipeline_from_tfrecord(NULL, names, 3, FLOE_COMPRESSION_GZIP, cycle,
                                                 &p), FLOE_OK);
    return p;
}

static floe_feature_spec g_specs[2];

static void make_specs(void) {
    memset(g_specs, 0, sizeof g_specs);
    g_specs[0].key = "x";
    g_specs[0].dtype = FLOE_DTYPE_F32;
    g_specs[0].ndim = 1;
    g_specs[0].shape[0] = 3;
    g_specs[1].key = "y";
    g_specs[1].dtype = FLOE_DTYPE_I32;
}

static void pipeline_tfrecord_interleave_and_parse(void **state) {
    (void)state;
    char paths[3][128];
    make_specs();
    /* cycle 2: files 0 and 1 in turn; file 1 ends after 2, file 2 takes its place */
    const int32_t want2[] = {0, 100, 1, 101, 2, 200, 3, 201, 4, 202, 203, 204, 205, 206};
    floe_pipeline *p = example_files(2, paths);
    assert_int_equal(floe_pipeline_parse_example(p, g_specs, 2, NULL, 1, &p), FLOE_OK);
    int32_t ys[32];
    assert_int_equal(drain_y(p, ys, 32), 14);
    assert_memory_equal(ys, want2, sizeof want2);
    floe_pipeline_free(p);
    /* cycle 1: the files in order; batch first, then parse the batch in one call */
    p = example_files(1, paths);
    assert_int_equal(floe_pipeline_batch(p, 4, 0, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_parse_example(p, g_specs, 2, g_ctx, 2, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
    assert_int_equal(n, 2);
    int64_t xs[2] = {4, 3};
    tc_assert_shape(t[0], FLOE_DTYPE_F32, xs, 2);
    assert_true(((float *)floe_tensor_data(t[0]))[3 * 3 + 1] == -3.0f);
    tc_unref_all(t, n);
    assert_int_equal(floe_pipeline_reset(p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 32), 14);
    const int32_t want1[] = {0, 1, 2, 3, 4, 100, 101, 200, 201, 202, 203, 204, 205, 206};
    assert_memory_equal(ys, want1, sizeof want1);
    floe_pipeline_free(p);
    /* cycle larger than the number of files */
    p = example_files(9, paths);
    assert_int_equal(floe_pipeline_parse_example(p, g_specs, 2, NULL, 1, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 32), 14);
    const int32_t want3[] = {0, 100, 200, 1, 101, 201, 2, 202, 3, 203, 4, 204, 205, 206};
    assert_memory_equal(ys, want3, sizeof want3);
    floe_pipeline_free(p);
}

static void pipeline_damaged_file_is_data_loss(void **state) {
    (void)state;
    char paths[3][128];
    make_specs();
    floe_pipeline *p = example_files(1, paths);
    floe_pipeline_free(p);
    /* cut file 1 in half: the pipeline gives file 0's records, then DATA_LOSS naming it */
    void *bytes;
    size_t size;
    assert_int_equal(floe_fs_read_all(NULL, paths[1], 0, &bytes, &size), FLOE_OK);
    assert_int_equal(floe_fs_write_all(NULL, paths[1], bytes, size / 2), FLOE_OK);
    free(bytes);
    const char *names[3] = {paths[0], paths[1], paths[2]};
    assert_int_equal(floe_pipeline_from_tfrecord(NULL, names, 3, FLOE_COMPRESSION_GZIP, 1, &p),
                     FLOE_OK);
    assert_int_equal(floe_pipeline_parse_example(p, g_specs, 2, NULL, 1, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_prefetch(p, 2, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    floe_status st;
    int k = 0;
    while ((st = floe_pipeline_next(p, t, &n)) == FLOE_OK) {
        tc_unref_all(t, n);
        k++;
    }
    assert_int_equal(st, FLOE_DATA_LOSS);
    assert_true(k >= 5 && k < 7);
    tc_assert_error_contains("part-1.tfrecord.gz");
    floe_pipeline_free(p);
    /* a missing file: NOT_FOUND */
    snprintf(paths[0], 128, "%s/none.tfrecord", g_dir);
    assert_int_equal(floe_pipeline_from_tfrecord(NULL, names, 1, FLOE_COMPRESSION_NONE, 1, &p),
                     FLOE_OK);
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_NOT_FOUND);
    floe_pipeline_free(p);
}

static void pipeline_repeat_take_skip(void **state) {
    (void)state;
    int32_t ys[64];
    floe_pipeline *p = range_pipeline(5);
    assert_int_equal(floe_pipeline_repeat(p, 3, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 64), 15);
    assert_int_equal(ys[14], 4);
    floe_pipeline_free(p);
    p = range_pipeline(5);
    assert_int_equal(floe_pipeline_repeat(p, -1, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_skip(p, 3, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_take(p, 12, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 64), 12);
    for (int i = 0; i < 12; i++)
        assert_int_equal(ys[i], (i + 3) % 5);
    assert_int_equal(floe_pipeline_reset(p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 64), 12);
    assert_int_equal(ys[0], 3);
    floe_pipeline_free(p);
    /* forever over nothing ends instead of spinning */
    p = range_pipeline(5);
    assert_int_equal(floe_pipeline_skip(p, 10, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, -1, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 64), 0);
    floe_pipeline_free(p);
}

static void pipeline_prefetch_same_stream_and_free_midway(void **state) {
    (void)state;
    int32_t a[300], b[300];
    floe_pipeline *p = range_pipeline(97);
    assert_int_equal(floe_pipeline_shuffle(p, 20, 3, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_map(p, triple, NULL, g_ctx, 4, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_batch(p, 8, 0, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 3, &p), FLOE_OK);
    assert_int_equal(drain_y(p, a, 300), 291);
    floe_pipeline_free(p);
    p = range_pipeline(97);
    assert_int_equal(floe_pipeline_shuffle(p, 20, 3, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_map(p, triple, NULL, g_ctx, 4, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_prefetch(p, 4, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_batch(p, 8, 0, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_prefetch(p, 2, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 3, &p), FLOE_OK);
    assert_int_equal(drain_y(p, b, 300), 291);
    assert_memory_equal(a, b, sizeof(int32_t) * 291);
    floe_pipeline_free(p);
    /* freed while the thread is working on an endless stream */
    for (int k = 0; k < 20; k++) {
        p = range_pipeline(50);
        assert_int_equal(floe_pipeline_repeat(p, -1, &p), FLOE_OK);
        assert_int_equal(floe_pipeline_map(p, triple, NULL, g_ctx, 2, &p), FLOE_OK);
        assert_int_equal(floe_pipeline_prefetch(p, 8, &p), FLOE_OK);
        floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
        int n;
        for (int i = 0; i < k; i++) {
            assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
            tc_unref_all(t, n);
        }
        floe_pipeline_free(p);
    }
}

typedef struct counting {
    int next_calls, pos, n;
} counting;

static floe_status count_next(void *arg, floe_tensor **out, int *n) {
    counting *c = arg;
    c->next_calls++;
    if (c->pos >= c->n)
        return floe_set_error(FLOE_OUT_OF_RANGE, "end");
    *n = 1;
    return floe_tensor_new_scalar_i32(c->pos++, &out[0]);
}

static floe_status count_reset(void *arg) {
    ((counting *)arg)->pos = 0;
    return FLOE_OK;
}

static void pipeline_cache_runs_source_once(void **state) {
    (void)state;
    counting c = {0, 0, 10};
    floe_pipeline_source src = {count_next, count_reset, NULL, &c};
    floe_pipeline *p;
    assert_int_equal(floe_pipeline_from_source(&src, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_cache(p, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 4, &p), FLOE_OK);
    int32_t ys[64];
    assert_int_equal(drain_y(p, ys, 64), 40);
    assert_int_equal(c.next_calls, 11);
    assert_int_equal(ys[39], 9);
    floe_pipeline_free(p);
    /* a source without reset cannot repeat: the error says so */
    counting d = {0, 0, 3};
    floe_pipeline_source once = {count_next, NULL, NULL, &d};
    assert_int_equal(floe_pipeline_from_source(&once, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 2, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    floe_status st;
    int k = 0;
    while ((st = floe_pipeline_next(p, t, &n)) == FLOE_OK) {
        tc_unref_all(t, n);
        k++;
    }
    assert_int_equal(k, 3);
    assert_int_equal(st, FLOE_UNIMPLEMENTED);
    tc_assert_error_contains("cannot restart");
    floe_pipeline_free(p);
}

static void pipeline_cache_file_is_reused(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/cache.bin", g_dir);
    counting c = {0, 0, 10};
    floe_pipeline_source src = {count_next, count_reset, NULL, &c};
    floe_pipeline *p;
    /* a pass stopped early leaves no file */
    assert_int_equal(floe_pipeline_from_source(&src, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_cache_file(p, NULL, path, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
    tc_unref_all(t, n);
    assert_int_equal(floe_pipeline_reset(p), FLOE_OK);
    floe_file_info info = {.struct_size = sizeof info};
    assert_int_not_equal(floe_fs_stat(NULL, path, &info), FLOE_OK);
    /* a complete pass writes it; the next passes read it without running the source */
    floe_pipeline_free(p);
    c.next_calls = 0;
    c.pos = 0;
    assert_int_equal(floe_pipeline_from_source(&src, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_cache_file(p, NULL, path, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_repeat(p, 3, &p), FLOE_OK);
    int32_t ys[64];
    assert_int_equal(drain_y(p, ys, 64), 30);
    assert_int_equal(c.next_calls, 11);
    for (int i = 0; i < 30; i++)
        assert_int_equal(ys[i], i % 10);
    floe_pipeline_free(p);
    assert_int_equal(floe_fs_stat(NULL, path, &info), FLOE_OK);
    /* another pipeline over the same file: the source never runs */
    c.next_calls = 0;
    assert_int_equal(floe_pipeline_from_source(&src, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_cache_file(p, NULL, path, &p), FLOE_OK);
    assert_int_equal(drain_y(p, ys, 64), 10);
    assert_int_equal(c.next_calls, 0);
    floe_pipeline_free(p);
    /* strings and shapes survive; a damaged file is DATA_LOSS */
    const char *files[1];
    char rec[128];
    snprintf(rec, sizeof rec, "%s/strings.tfrecord", g_dir);
    floe_tfrecord_writer *w;
    assert_int_equal(floe_tfrecord_writer_open(NULL, rec, FLOE_COMPRESSION_NONE, 0, &w), FLOE_OK);
    assert_int_equal(floe_tfrecord_write(w, "alpha", 5), FLOE_OK);
    assert_int_equal(floe_tfrecord_write(w, "", 0), FLOE_OK);
    assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
    files[0] = rec;
    snprintf(path, sizeof path, "%s/cache2.bin", g_dir);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(floe_pipeline_from_tfrecord(NULL, files, 1, FLOE_COMPRESSION_NONE, 1, &p),
                         FLOE_OK);
        assert_int_equal(floe_pipeline_batch(p, 2, 0, &p), FLOE_OK);
        assert_int_equal(floe_pipeline_cache_file(p, NULL, path, &p), FLOE_OK);
        assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OK);
        int64_t two = 2;
        tc_assert_shape(t[0], FLOE_DTYPE_STRING, &two, 1);
        const char *b;
        size_t len;
        assert_int_equal(floe_tensor_get_string(t[0], 0, &b, &len), FLOE_OK);
        assert_int_equal(len, 5);
        assert_memory_equal(b, "alpha", 5);
        assert_int_equal(floe_tensor_get_string(t[0], 1, &b, &len), FLOE_OK);
        assert_int_equal(len, 0);
        tc_unref_all(t, n);
        assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_OUT_OF_RANGE);
        floe_pipeline_free(p);
    }
    void *bytes;
    size_t size;
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &bytes, &size), FLOE_OK);
    ((uint8_t *)bytes)[size - 6] ^= 1;
    assert_int_equal(floe_fs_write_all(NULL, path, bytes, size), FLOE_OK);
    free(bytes);
    assert_int_equal(floe_pipeline_from_tfrecord(NULL, files, 1, FLOE_COMPRESSION_NONE, 1, &p),
                     FLOE_OK);
    assert_int_equal(floe_pipeline_cache_file(p, NULL, path, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_DATA_LOSS);
    tc_assert_error_contains("cache2.bin");
    floe_pipeline_free(p);
}

static floe_status ragged(void *arg, floe_tensor *const *in, int nin, floe_tensor **out,
                          int *nout) {
    (void)arg;
    (void)nin;
    int32_t v = *(int32_t *)floe_tensor_data(in[1]);
    int64_t len = v % 3;
    *nout = 1;
    return floe_tensor_new(FLOE_DTYPE_F32, &len, 1, &out[0]);
}

static void pipeline_bad_arguments(void **state) {
    (void)state;
    floe_pipeline *p = range_pipeline(6);
    assert_int_equal(floe_pipeline_map(p, ragged, NULL, NULL, 1, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_batch(p, 3, 0, &p), FLOE_OK);
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("component 0 of element 1");
    floe_pipeline_free(p);
    /* transforms free their input on bad arguments */
    p = range_pipeline(3);
    assert_int_equal(floe_pipeline_batch(p, 0, 0, &p), FLOE_INVALID_ARGUMENT);
    assert_null(p);
    p = range_pipeline(3);
    assert_int_equal(floe_pipeline_map(p, NULL, NULL, NULL, 4, &p), FLOE_INVALID_ARGUMENT);
    p = range_pipeline(3);
    assert_int_equal(floe_pipeline_shuffle(p, 0, 1, &p), FLOE_INVALID_ARGUMENT);
    p = range_pipeline(3);
    assert_int_equal(floe_pipeline_prefetch(p, 0, &p), FLOE_INVALID_ARGUMENT);
    p = range_pipeline(3);
    floe_feature_spec s;
    memset(&s, 0, sizeof s);
    assert_int_equal(floe_pipeline_parse_example(p, &s, 1, NULL, 1, &p), FLOE_INVALID_ARGUMENT);
    /* parse_example of a non-string element names the problem */
    make_specs();
    p = range_pipeline(3);
    assert_int_equal(floe_pipeline_parse_example(p, g_specs, 2, NULL, 1, &p), FLOE_OK);
    assert_int_equal(floe_pipeline_next(p, t, &n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("not serialized Examples");
    floe_pipeline_free(p);
    int64_t two = 2, three = 3;
    floe_tensor *a[2] = {tc_f32(&two, 1, NULL), tc_f32(&three, 1, NULL)};
    assert_int_equal(floe_pipeline_from_tensors(a, 2, &p), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("tensor 1 has 3 rows");
    tc_unref_all(a, 2);
    assert_int_equal(floe_pipeline_next(NULL, t, &n), FLOE_INVALID_ARGUMENT);
    floe_pipeline_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipeline_slices_and_batch),
        cmocka_unit_test(pipeline_shuffle_is_seeded_permutation),
        cmocka_unit_test(pipeline_map_parallel_keeps_order),
        cmocka_unit_test(pipeline_map_error_reaches_next),
        cmocka_unit_test(pipeline_tfrecord_interleave_and_parse),
        cmocka_unit_test(pipeline_damaged_file_is_data_loss),
        cmocka_unit_test(pipeline_repeat_take_skip),
        cmocka_unit_test(pipeline_prefetch_same_stream_and_free_midway),
        cmocka_unit_test(pipeline_cache_runs_source_once),
        cmocka_unit_test(pipeline_cache_file_is_reused),
        cmocka_unit_test(pipeline_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
