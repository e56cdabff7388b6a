/*
 * test_tfrecord.c - TFRecord framing (io/src/tfrecord.c).
 *
 * Round trips in the three compressions with records of every size class (empty, small,
 * longer than the reader's window, longer than its first buffer), the corruption sweep
 * (every byte of a small file flipped, the file cut at every offset: each read gives the
 * exact record or FLOE_DATA_LOSS naming the file and offset, never a partial record),
 * TensorFlow-written fixtures (tests/fixtures/tfrecord/), argument errors, and a check
 * that TensorFlow reads what Floe writes (skipped without the tensorflow package).
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
#include <floe/tfrecord.h>

#include "test_common.h"

static char g_dir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/floe-tfrec-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_dir, name);
}

/* Record @i of a test file: @len bytes of a pattern depending on @i. */
static void fill_record(uint8_t *p, size_t len, int i) {
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    for (size_t k = 0; k < len; k++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[k] = (uint8_t)s;
    }
}

static void write_file(const char *path, floe_compression c, const size_t *lens, int n) {
    floe_tfrecord_writer *w = NULL;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, c, 0, &w), FLOE_OK);
    for (int i = 0; i < n; i++) {
        uint8_t *buf = malloc(lens[i] + 1);
        fill_record(buf, lens[i], i);
        assert_int_equal(floe_tfrecord_write(w, buf, lens[i]), FLOE_OK);
        free(buf);
    }
    assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
}

static void check_reads(floe_tfrecord_reader *r, const size_t *lens, int n) {
    for (int i = 0; i < n; i++) {
        const void *data;
        size_t len;
        assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_OK);
        assert_int_equal(len, lens[i]);
        uint8_t *want = malloc(lens[i] + 1);
        fill_record(want, lens[i], i);
        assert_memory_equal(data, want, lens[i]);
        free(want);
    }
    const void *data;
    size_t len;
    assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_OUT_OF_RANGE);
    assert_null(data);
    assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_OUT_OF_RANGE);
}

static void tfrecord_roundtrip_all_compressions(void **state) {
    (void)state;
    const size_t lens[] = {0, 1, 100, 300000, 2500000, 17, 0};
    const int n = (int)(sizeof lens / sizeof lens[0]);
    const floe_compression comps[] = {FLOE_COMPRESSION_NONE, FLOE_COMPRESSION_ZLIB,
                                      FLOE_COMPRESSION_GZIP};
    for (int c = 0; c < 3; c++) {
        char path[128];
        path_in_dir(path, sizeof path, "rt.tfrecord");
        write_file(path, comps[c], lens, n);
        floe_tfrecord_reader *r = NULL;
        assert_int_equal(floe_tfrecord_reader_open(NULL, path, comps[c], &r), FLOE_OK);
        check_reads(r, lens, n);
        floe_tfrecord_reader_close(r);
        /* The same bytes through a memory reader. */
        void *bytes;
        size_t size;
        assert_int_equal(floe_fs_read_all(NULL, path, 0, &bytes, &size), FLOE_OK);
        assert_int_equal(floe_tfrecord_reader_open_memory(bytes, size, comps[c], "mem", &r),
                         FLOE_OK);
        check_reads(r, lens, n);
        floe_tfrecord_reader_close(r);
        free(bytes);
    }
}

/* The exact framing: a known record's bytes as TensorFlow writes them. */
static void tfrecord_framing_is_tensorflows(void **state) {
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "frame.tfrecord");
    floe_tfrecord_writer *w;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_NONE, 0, &w),
                     FLOE_OK);
    assert_int_equal(floe_tfrecord_write(w, "abc", 3), FLOE_OK);
    assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
    void *bytes;
    size_t size;
    assert_int_equal(floe_fs_read_all(NULL, path, 0, &bytes, &size), FLOE_OK);
    assert_int_equal(size, 8 + 4 + 3 + 4);
    const uint8_t *b = bytes;
    assert_int_equal(b[0], 3);
    for (int i = 1; i < 8; i++)
        assert_int_equal(b[i], 0);
    /* crc32c("abc") = 0x364b3fb7 (RFC 3720 test vectors style), masked. */
    assert_int_equal(floe_crc32c(0, "abc", 3), 0x364b3fb7u);
    uint32_t m = floe_crc32c_mask(0x364b3fb7u);
    assert_int_equal(b[15] | b[16] << 8 | b[17] << 16 | (uint32_t)b[18] << 24, m);
    assert_memory_equal(b + 12, "abc", 3);
    free(bytes);
}

/* Reads every record of a (damaged) memory file; asserts the records returned are the
 * first k exact records and returns k, with *@last the final status. */
static int read_prefix(const uint8_t *bytes, size_t size, floe_compression c,
                       const size_t *lens, int n, floe_status *last) {
    floe_tfrecord_reader *r;
    assert_int_equal(floe_tfrecord_reader_open_memory(bytes, size, c, "damaged.tfrecord", &r),
                     FLOE_OK);
    int k = 0;
    for (;;) {
        const void *data;
        size_t len;
        floe_status st = floe_tfrecord_read(r, &data, &len);
        if (st != FLOE_OK) {
            *last = st;
            assert_true(st == FLOE_OUT_OF_RANGE || st == FLOE_DATA_LOSS);
            if (st == FLOE_DATA_LOSS) {
                tc_assert_error_contains("damaged.tfrecord");
                tc_assert_error_contains("at offset");
                /* Sticky: the reader does not go on past damage. */
                assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_DATA_LOSS);
            }
            break;
        }
        assert_true(k < n);
        assert_int_equal(len, lens[k]);
        uint8_t want[64];
        fill_record(want, lens[k], k);
        assert_memory_equal(data, want, lens[k]);
        k++;
    }
    floe_tfrecord_reader_close(r);
    return k;
}

static void tfrecord_corrupt_and_truncate_sweep(void **state) {
    (void)state;
    const size_t lens[] = {5, 0, 23, 9};
    const int n = 4;
    const floe_compression comps[] = {FLOE_COMPRESSION_NONE, FLOE_COMPRESSION_ZLIB,
                                      FLOE_COMPRESSION_GZIP};
    for (int c = 0; c < 3; c++) {
        char path[128];
        path_in_dir(path, sizeof path, "sweep.tfrecord");
        write_file(path, comps[c], lens, n);
        uint8_t *bytes;
        size_t size;
        assert_int_equal(floe_fs_read_all(NULL, path, 0, (void **)&bytes, &size), FLOE_OK);
        /* Record boundaries (in the plain stream). */
        size_t ends[5] = {0};
        for (int i = 0; i < n; i++)
            ends[i + 1] = ends[i] + 16 + lens[i];
        floe_status last;
        int prev_k = 0;
        /* Truncate at every offset. */
        for (size_t cut = 0; cut <= size; cut++) {
            int k = read_prefix(bytes, cut, comps[c], lens, n, &last);
            /* a longer prefix of the file never yields fewer records */
            assert_true(k >= prev_k);
            prev_k = k;
            if (comps[c] == FLOE_COMPRESSION_NONE) {
                int whole = 0;
                while (whole < n && ends[whole + 1] <= cut)
                    whole++;
                assert_int_equal(k, whole);
                int boundary = ends[whole] == cut;
                assert_int_equal(last, boundary ? FLOE_OUT_OF_RANGE : FLOE_DATA_LOSS);
            } else if (cut == size) {
                assert_int_equal(k, n);
                assert_int_equal(last, FLOE_OUT_OF_RANGE);
            } else if (cut > 0) {
                /* a cut compressed stream is never a clean end */
                assert_int_equal(last, FLOE_DATA_LOSS);
            }
        }
        /* Corrupt every byte (two ways each). */
        uint8_t *copy = malloc(size);
        for (size_t at = 0; at < size; at++) {
            for (int how = 0; how < 2; how++) {
                memcpy(copy, bytes, size);
                copy[at] = how ? (uint8_t)(copy[at] + 1) : (uint8_t)~copy[at];
                int k = read_prefix(copy, size, comps[c], lens, n, &last);
                if (comps[c] == FLOE_COMPRESSION_NONE) {
                    int hit = 0;
                    while (ends[hit + 1] <= at)
                        hit++;
                    assert_int_equal(k, hit);
                    assert_int_equal(last, FLOE_DATA_LOSS);
                } else if (last == FLOE_OUT_OF_RANGE) {
                    /* only bytes zlib ignores (gzip header mtime, flags, OS) may pass */
                    assert_int_equal(comps[c], FLOE_COMPRESSION_GZIP);
                    assert_true(at < 10);
                    assert_int_equal(k, n);
                }
            }
        }
        free(copy);
        free(bytes);
    }
}

static void tfrecord_errors_name_the_problem(void **state) {
    (void)state;
    floe_tfrecord_reader *r = (void *)1;
    char path[128];
    path_in_dir(path, sizeof path, "missing.tfrecord");
    assert_int_equal(floe_tfrecord_reader_open(NULL, path, FLOE_COMPRESSION_NONE, &r),
                     FLOE_NOT_FOUND);
    assert_null(r);
    assert_int_equal(floe_tfrecord_reader_open(NULL, path, (floe_compression)7, &r),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("compression");
    assert_int_equal(floe_tfrecord_reader_open(NULL, NULL, FLOE_COMPRESSION_NONE, &r),
                     FLOE_INVALID_ARGUMENT);
    floe_tfrecord_writer *w = (void *)1;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_ZLIB, 1, &w),
                     FLOE_INVALID_ARGUMENT);
    assert_null(w);
    assert_int_equal(floe_tfrecord_write(NULL, "x", 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_tfrecord_read(NULL, NULL, NULL), FLOE_INVALID_ARGUMENT);
    floe_tfrecord_reader_close(NULL);
    floe_tfrecord_writer_abort(NULL);
    assert_int_equal(floe_tfrecord_writer_close(NULL), FLOE_OK);
    /* Opening a plain file as GZIP: a corrupt stream, named. */
    const size_t lens[] = {10};
    path_in_dir(path, sizeof path, "plain.tfrecord");
    write_file(path, FLOE_COMPRESSION_NONE, lens, 1);
    assert_int_equal(floe_tfrecord_reader_open(NULL, path, FLOE_COMPRESSION_GZIP, &r), FLOE_OK);
    const void *data;
    size_t len;
    assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_DATA_LOSS);
    tc_assert_error_contains("plain.tfrecord");
    tc_assert_error_contains("GZIP");
    floe_tfrecord_reader_close(r);
    /* An empty file holds no records, in every compression. */
    assert_int_equal(floe_fs_write_all(NULL, path, "", 0), FLOE_OK);
    for (int c = 0; c < 3; c++) {
        assert_int_equal(floe_tfrecord_reader_open(NULL, path, (floe_compression)c, &r), FLOE_OK);
        assert_int_equal(floe_tfrecord_read(r, &data, &len), FLOE_OUT_OF_RANGE);
        floe_tfrecord_reader_close(r);
    }
}

static void tfrecord_writer_abort_and_append(void **state) {
    (void)state;
    char path[128];
    path_in_dir(path, sizeof path, "append.tfrecord");
    const size_t lens[] = {4, 8};
    write_file(path, FLOE_COMPRESSION_NONE, lens, 2);
    /* An aborted writer leaves the old file as it was. */
    floe_tfrecord_writer *w;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_NONE, 0, &w), FLOE_OK);
    assert_int_equal(floe_tfrecord_write(w, "zzzz", 4), FLOE_OK);
    assert_int_equal(floe_tfrecord_writer_flush(w), FLOE_OK);
    floe_tfrecord_writer_abort(w);
    floe_tfrecord_reader *r;
    assert_int_equal(floe_tfrecord_reader_open(NULL, path, FLOE_COMPRESSION_NONE, &r), FLOE_OK);
    check_reads(r, lens, 2);
    floe_tfrecord_reader_close(r);
    /* Appending adds records after the old ones. */
    uint32_t caps = 0;
    assert_int_equal(floe_fs_caps(NULL, path, &caps), FLOE_OK);
    if (caps & FLOE_FS_CAP_APPEND) {
        assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_NONE, 1, &w),
                         FLOE_OK);
        uint8_t rec[3];
        fill_record(rec, 3, 2);
        assert_int_equal(floe_tfrecord_write(w, rec, 3), FLOE_OK);
        assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
        const size_t lens3[] = {4, 8, 3};
        assert_int_equal(floe_tfrecord_reader_open(NULL, path, FLOE_COMPRESSION_NONE, &r),
                         FLOE_OK);
        check_reads(r, lens3, 3);
        floe_tfrecord_reader_close(r);
    }
}

/* TensorFlow-written files: the three compressions hold the same eight records. */
static void tfrecord_reads_tensorflow_fixtures(void **state) {
    (void)state;
    const char *root = getenv("FLOE_SOURCE_ROOT");
    assert_non_null(root);
    const char *names[] = {"examples.tfrecord", "examples_zlib.tfrecord", "examples_gzip.tfrecord"};
    void *first[8] = {0};
    size_t first_len[8] = {0};
    for (int c = 0; c < 3; c++) {
        char path[512];
        snprintf(path, sizeof path, "%s/tests/fixtures/tfrecord/%s", root, names[c]);
        floe_tfrecord_reader *r;
        floe_compression comp = c == 0 ? FLOE_COMPRESSION_NONE
                                       : c == 1 ? FLOE_COMPRESSION_ZLIB : FLOE_COMPRESSION_GZIP;
        assert_int_equal(floe_tfrecord_reader_open(NULL, path, comp, &r), FLOE_OK);
        int k = 0;
        const void *data;
        size_t len;
        floe_status st;
        while ((st = floe_tfrecord_read(r, &data, &len)) == FLOE_OK) {
            assert_true(k < 8);
            assert_true(len > 20);
            if (c == 0) {
                first[k] = malloc(len);
                memcpy(first[k], data, len);
                first_len[k] = len;
            } else {
                assert_int_equal(len, first_len[k]);
                assert_memory_equal(data, first[k], len);
            }
            k++;
        }
        assert_int_equal(st, FLOE_OUT_OF_RANGE);
        assert_int_equal(k, 8);
        floe_tfrecord_reader_close(r);
    }
    for (int i = 0; i < 8; i++)
        free(first[i]);
}

/* TensorFlow reads what Floe writes (tests/io/check_tfrecord_tf.py); skipped without TF. */
static void tfrecord_tensorflow_reads_floe_files(void **state) {
    (void)state;
    if (system("python3 -c 'import tensorflow' >/dev/null 2>&1") != 0) {
        printf("SKIP: the tensorflow Python package is not installed\n");
        skip();
    }
    const char *root = getenv("FLOE_SOURCE_ROOT");
    const size_t lens[] = {0, 1, 100, 300000, 17};
    const char *names[] = {"tf_none.tfrecord", "tf_zlib.tfrecord", "tf_gzip.tfrecord"};
    for (int c = 0; c < 3; c++) {
        char path[128];
        path_in_dir(path, sizeof path, names[c]);
        write_file(path, (floe_compression)c, lens, 5);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "TF_CPP_MIN_LOG_LEVEL=3 python3 '%s/tests/io/check_tfrecord_tf.py' '%s' 0,1,100,300000,17",
             root, g_dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tfrecord_roundtrip_all_compressions),
        cmocka_unit_test(tfrecord_framing_is_tensorflows),
        cmocka_unit_test(tfrecord_corrupt_and_truncate_sweep),
        cmocka_unit_test(tfrecord_errors_name_the_problem),
        cmocka_unit_test(tfrecord_writer_abort_and_append),
        cmocka_unit_test(tfrecord_reads_tensorflow_fixtures),
        cmocka_unit_test(tfrecord_tensorflow_reads_floe_files),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
