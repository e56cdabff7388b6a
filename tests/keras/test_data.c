/*
 * test_data.c - floe/data.h: the IDX reader on small generated files (gzip and plain,
 * corrupt, truncated, padded, mismatched), data sets from arrays, batches converted
 * to f32, and seeded shuffling.  Fashion-MNIST itself is read when installed.
 */
#include "test_common.h"

#include <floe/data.h>
#include <floe/keras.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static int setup_dir(void **state) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe_test_data_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name) {
    static char buf[2][400];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof(buf[which]), "%s/%s", tmpdir, name);
    return buf[which];
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void put_le32(FILE *f, uint32_t v) {
    for (int i = 0; i < 4; i++)
        fputc((int)(v >> (8 * i)) & 255, f);
}

/* Writes @n bytes, as a gzip member of stored deflate blocks when @gz (the test makes
 * its own gzip files, so it needs no zlib of its own). */
static void write_file(const char *name, const unsigned char *bytes, size_t n, int gz) {
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    FILE *f = fopen(path_of(name), "wb");
    size_t off = 0;

    assert_non_null(f);
    if (!gz) {
        assert_int_equal(fwrite(bytes, 1, n, f), n);
        fclose(f);
        return;
    }
    fwrite(header, 1, sizeof(header), f);
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        fputc(off + len == n ? 1 : 0, f);
        fputc((int)(len & 255), f);
        fputc((int)(len >> 8), f);
        fputc((int)(~len & 255), f);
        fputc((int)((~len >> 8) & 255), f);
        if (len > 0)
            fwrite(bytes + off, 1, len, f);
        off += len;
    } while (off < n);
    put_le32(f, crc32_of(bytes, n));
    put_le32(f, (uint32_t)n);
    fclose(f);
}

/* An IDX header of u8 data with @ndim extents, then @payload bytes of pattern. */
static size_t make_idx(unsigned char *buf, int ndim, const uint32_t *dims, size_t payload) {
    size_t k = 0;
    buf[k++] = 0;
    buf[k++] = 0;
    buf[k++] = 0x08;
    buf[k++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[k++] = (unsigned char)(dims[i] >> 24);
        buf[k++] = (unsigned char)(dims[i] >> 16);
        buf[k++] = (unsigned char)(dims[i] >> 8);
        buf[k++] = (unsigned char)dims[i];
    }
    for (size_t i = 0; i < payload; i++)
        buf[k++] = (unsigned char)(i * 7 + 3);
    return k;
}

/* 5 images of 3x4 and 5 labels 0..4. */
static void write_good_pair(const char *images, const char *labels, int gz) {
    unsigned char buf[256];
    uint32_t idims[3] = {5, 3, 4}, ldims[1] = {5};
    size_t n = make_idx(buf, 3, idims, 60);
    write_file(images, buf, n, gz);
    n = make_idx(buf, 1, ldims, 0);
    for (int i = 0; i < 5; i++)
        buf[n++] = (unsigned char)i;
    write_file(labels, buf, n, gz);
}

static void idx_load_reads_gzip_and_plain(void **state) {
    for (int gz = 0; gz <= 1; gz++) {
        floe_dataset *ds = (floe_dataset *)state;
        int64_t dims[FLOE_MAX_DIMS];
        write_good_pair("im", "lb", gz);
        assert_int_equal(floe_dataset_load_idx(path_of("im"), path_of("lb"), 0.5f, &ds),
                         FLOE_OK);
        assert_int_equal(floe_dataset_size(ds), 5);
        assert_int_equal(floe_dataset_x_shape(ds, dims), 2);
        assert_int_equal(dims[0], 3);
        assert_int_equal(dims[1], 4);
        assert_int_equal(floe_dataset_x_dtype(ds), FLOE_DTYPE_U8);
        assert_int_equal(floe_dataset_y_dtype(ds), FLOE_DTYPE_I32);
        for (int i = 0; i < 5; i++)
            assert_int_equal(floe_dataset_label(ds, i), i);
        assert_int_equal(floe_dataset_label(ds, 5), -1);
        /* Example 2's first pixel is payload byte 24: (24 * 7 + 3) & 255. */
        assert_int_equal(((const unsigned char *)floe_dataset_example(ds, 2))[0],
                         (24 * 7 + 3) & 255);
        floe_dataset_free(ds);
    }
}

static void expect_load_error(floe_status want, const char *needle) {
    floe_dataset *ds = (floe_dataset *)&want;
    assert_int_equal(floe_dataset_load_idx(path_of("im"), path_of("lb"), 1.0f, &ds), want);
    assert_null(ds);
    if (strstr(floe_keras_last_error(), needle) == NULL)
        fail_msg("error '%s' lacks '%s'", floe_keras_last_error(), needle);
}

static void idx_load_rejects_corrupt_files(void **state) {
    unsigned char buf[256];
    uint32_t idims[3] = {5, 3, 4}, ldims[1] = {5}, zero[3] = {5, 0, 4};
    size_t n;

    write_good_pair("im", "lb", 1);
    /* Truncated payload, then a padded one. */
    n = make_idx(buf, 3, idims, 59);
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "truncated");
    n = make_idx(buf, 3, idims, 61);
    write_file("im", buf, n, 0);
    expect_load_error(FLOE_DATA_LOSS, "too long");
    /* Header cut inside the extents. */
    n = make_idx(buf, 3, idims, 0);
    write_file("im", buf, 9, 1);
    expect_load_error(FLOE_DATA_LOSS, "truncated");
    /* Bad magic, element type, rank, a zero extent, an empty file. */
    n = make_idx(buf, 3, idims, 60);
    buf[0] = 1;
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "magic");
    buf[0] = 0;
    buf[2] = 0x0d;
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "element type");
    buf[2] = 0x08;
    buf[3] = 9;
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "rank");
    n = make_idx(buf, 3, zero, 0);
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "extent");
    write_file("im", buf, 0, 0);
    expect_load_error(FLOE_DATA_LOSS, "magic");
    /* A huge announced size must fail on the size check, not allocate it. */
    uint32_t huge[3] = {0xffffffffu, 0xffffffffu, 16};
    n = make_idx(buf, 3, huge, 8);
    write_file("im", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "extent");
    /* A corrupt gzip stream. */
    write_good_pair("im", "lb", 1);
    {
        FILE *f = fopen(path_of("im"), "r+b");
        assert_non_null(f);
        fseek(f, 12, SEEK_SET);
        fputs("garbage garbage garbage", f);
        fclose(f);
    }
    expect_load_error(FLOE_DATA_LOSS, "corrupt");
    /* Label count differs from the image count. */
    write_good_pair("im", "lb", 1);
    ldims[0] = 4;
    n = make_idx(buf, 1, ldims, 4);
    write_file("lb", buf, n, 1);
    expect_load_error(FLOE_DATA_LOSS, "4 labels");
    /* Missing file. */
    remove(path_of("lb"));
    expect_load_error(FLOE_NOT_FOUND, "cannot open");
}

static void fashion_mnist_missing_says_how_to_install(void **state) {
    floe_dataset *ds = (floe_dataset *)state;
    assert_int_equal(floe_dataset_load_fashion_mnist(tmpdir, 1, &ds), FLOE_NOT_FOUND);
    assert_null(ds);
    assert_non_null(strstr(floe_keras_last_error(), "apt-get install dataset-fashion-mnist"));
}

static void fashion_mnist_loads_when_installed(void **state) {
    floe_dataset *ds;
    floe_status st = floe_dataset_load_fashion_mnist(NULL, 0, &ds);
    int64_t dims[FLOE_MAX_DIMS];

    if (st == FLOE_NOT_FOUND)
        skip();
    assert_int_equal(st, FLOE_OK);
    assert_int_equal(floe_dataset_size(ds), 10000);
    assert_int_equal(floe_dataset_x_shape(ds, dims), 2);
    assert_int_equal(dims[0] * dims[1], 784);
    for (int64_t i = 0; i < 10000; i++)
        assert_in_range(floe_dataset_label(ds, i), 0, 9);
    floe_dataset_free(ds);
}

static void dataset_batch_converts_and_gathers(void **state) {
    uint8_t x[4 * 6];
    int32_t y[4] = {3, 1, 4, 1};
    int64_t shape[2] = {2, 3}, bshape[2] = {3, 6}, bshape_bad[2] = {3, 5}, yshape[1] = {3};
    int64_t index[3] = {2, 0, 3};
    floe_dataset *ds;
    floe_tensor *bx, *by, *bad;

    for (int i = 0; i < 24; i++)
        x[i] = (uint8_t)(i * 10);
    assert_int_equal(floe_dataset_from_arrays(4, FLOE_DTYPE_U8, x, shape, 2, FLOE_DTYPE_I32, y,
                                              NULL, 0, 1.0f / 255.0f, &ds),
                     FLOE_OK);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, bshape, 2, &bx), FLOE_OK);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_I32, yshape, 1, &by), FLOE_OK);
    assert_int_equal(floe_dataset_batch(ds, index, 0, 3, bx, by), FLOE_OK);
    const float *fx = floe_tensor_data(bx);
    const int32_t *iy = floe_tensor_data(by);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(iy[r], y[index[r]]);
        for (int k = 0; k < 6; k++)
            assert_float_equal(fx[r * 6 + k], (float)x[index[r] * 6 + k] / 255.0f, 1e-6);
    }
    /* Sequential rows, fewer than the tensor holds. */
    assert_int_equal(floe_dataset_batch(ds, NULL, 1, 2, bx, NULL), FLOE_OK);
    assert_float_equal(fx[0], (float)x[6] / 255.0f, 1e-6);
    /* Out of range, wrong tensors. */
    assert_int_equal(floe_dataset_batch(ds, NULL, 3, 2, bx, by), FLOE_OUT_OF_RANGE);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, bshape_bad, 2, &bad), FLOE_OK);
    assert_int_equal(floe_dataset_batch(ds, index, 0, 3, bad, by), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_dataset_batch(ds, index, 0, 4, bx, by), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_dataset_batch(ds, index, 0, 3, bx, bx), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(bad);

    floe_dataset *s;
    assert_int_equal(floe_dataset_slice(ds, 1, 2, &s), FLOE_OK);
    assert_int_equal(floe_dataset_size(s), 2);
    assert_int_equal(floe_dataset_label(s, 0), 1);
    assert_int_equal(floe_dataset_label(s, 1), 4);
    floe_dataset_free(s);
    assert_int_equal(floe_dataset_slice(ds, 3, 2, &s), FLOE_INVALID_ARGUMENT);
    assert_null(s);
    floe_tensor_unref(bx);
    floe_tensor_unref(by);
    floe_dataset_free(ds);
}

/* Examples of 37 pixels: two 16-pixel vector blocks and a scalar tail. */
static void dataset_batch_converts_long_rows(void **state) {
    enum { N = 3, E = 37 };
    uint8_t x[N * E];
    int64_t shape[1] = {E}, bshape[2] = {N, E};
    floe_dataset *ds;
    floe_tensor *bx;

    for (int i = 0; i < N * E; i++)
        x[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(floe_dataset_from_arrays(N, FLOE_DTYPE_U8, x, shape, 1, FLOE_DTYPE_INVALID,
                                              NULL, NULL, 0, 0.5f, &ds),
                     FLOE_OK);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, bshape, 2, &bx), FLOE_OK);
    assert_int_equal(floe_dataset_batch(ds, (const int64_t[]){2, 0, 1}, 0, N, bx, NULL), FLOE_OK);
    const float *f = floe_tensor_data(bx);
    for (int r = 0; r < N; r++)
        for (int k = 0; k < E; k++)
            assert_float_equal(f[r * E + k], 0.5f * (float)x[((r + 2) % N) * E + k], 0);
    floe_tensor_unref(bx);
    floe_dataset_free(ds);
}

static void dataset_from_arrays_rejects_bad_arguments(void **state) {
    float x[4] = {0};
    int64_t shape[1] = {2}, bad[1] = {0};
    floe_dataset *ds = (floe_dataset *)state;

    assert_int_equal(floe_dataset_from_arrays(0, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_INVALID,
                                              NULL, NULL, 0, 1.0f, &ds),
                     FLOE_INVALID_ARGUMENT);
    assert_null(ds);
    assert_int_equal(floe_dataset_from_arrays(2, FLOE_DTYPE_F64, x, shape, 1, FLOE_DTYPE_INVALID,
                                              NULL, NULL, 0, 1.0f, &ds),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_dataset_from_arrays(2, FLOE_DTYPE_F32, x, bad, 1, FLOE_DTYPE_INVALID,
                                              NULL, NULL, 0, 1.0f, &ds),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_dataset_from_arrays(2, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_I32,
                                              NULL, NULL, 0, 1.0f, &ds),
                     FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_dataset_from_arrays(2, FLOE_DTYPE_F32, x, shape, 1, FLOE_DTYPE_INVALID,
                                              NULL, NULL, 0, 1.0f, NULL),
                     FLOE_INVALID_ARGUMENT);
}

static void shuffle_is_seeded_permutation(void **state) {
    enum { N = 1000 };
    int64_t a[N], b[N], c[N];
    int seen[N] = {0}, moved = 0;
    uint64_t r1 = 7, r2 = 7, r3 = 8;

    floe_data_shuffle(a, N, &r1);
    floe_data_shuffle(b, N, &r2);
    floe_data_shuffle(c, N, &r3);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
    for (int i = 0; i < N; i++) {
        assert_in_range(a[i], 0, N - 1);
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > N / 2);
    /* Uniform floats lie in [0, 1) with a plausible mean. */
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        float u = floe_rng_uniform(&r1);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    assert_true(fabs(sum / 10000 - 0.5) < 0.02);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idx_load_reads_gzip_and_plain),
        cmocka_unit_test(idx_load_rejects_corrupt_files),
        cmocka_unit_test(fashion_mnist_missing_says_how_to_install),
        cmocka_unit_test(fashion_mnist_loads_when_installed),
        cmocka_unit_test(dataset_batch_converts_and_gathers),
        cmocka_unit_test(dataset_batch_converts_long_rows),
        cmocka_unit_test(dataset_from_arrays_rejects_bad_arguments),
        cmocka_unit_test(shuffle_is_seeded_permutation),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
