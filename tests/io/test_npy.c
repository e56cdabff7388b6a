/*
 * test_npy.c - .npy reading and writing (io/src/npy.c).
 *
 * Sections: round trips of every dtype and of ranks 0..8 through encode/decode and
 * through files; hand-written files in versions 1.0, 2.0 and 3.0, big-endian and "="
 * byte order, Python 2's "3L" extents; NumPy's own bytes (a committed fixture that
 * numpy.save wrote); errors, each naming what was wrong (magic, version, header, dtype,
 * fortran_order, rank, data size, unwritable dtypes); truncation at every offset and
 * every byte corrupted, never a crash.
 */
#include "test_common.h"

#include <floe/npy.h>
#include <floe/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A .npy image with header dict @dict (padded as numpy pads), version @major, then
 * @n data bytes. */
static uint8_t *make_npy(int major, const char *dict, const void *data, size_t n,
                         size_t *size) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    uint8_t *b = malloc(total + n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    if (major > 1) {
        b[10] = (uint8_t)(hlen >> 16);
        b[11] = (uint8_t)(hlen >> 24);
    }
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hlen - dl - 1);
    b[total - 1] = '\n';
    if (n > 0)
        memcpy(b + total, data, n);
    *size = total + n;
    return b;
}

static floe_tensor *decode_ok(const void *d, size_t n) {
    floe_tensor *t = NULL;
    floe_status st = floe_npy_decode(d, n, &t);
    if (st != FLOE_OK)
        fail_msg("decode: %s", floe_last_error());
    return t;
}

static void decode_fails(const void *d, size_t n, const char *needle) {
    floe_tensor *t = (floe_tensor *)1;
    assert_int_equal(floe_npy_decode(d, n, &t), FLOE_INVALID_ARGUMENT);
    assert_null(t);
    tc_assert_error_contains(needle);
}

static void npy_roundtrip_every_dtype(void **state) {
    (void)state;
    static const floe_dtype dts[] = {FLOE_DTYPE_F16, FLOE_DTYPE_F32, FLOE_DTYPE_F64,
                                     FLOE_DTYPE_I8,  FLOE_DTYPE_I16, FLOE_DTYPE_I32,
                                     FLOE_DTYPE_I64, FLOE_DTYPE_U8,  FLOE_DTYPE_U16,
                                     FLOE_DTYPE_U32, FLOE_DTYPE_U64, FLOE_DTYPE_BOOL,
                                     FLOE_DTYPE_COMPLEX64};
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof(dts) / sizeof(dts[0]); i++) {
        int64_t shape[3] = {2, 3, 5};
        floe_tensor *t = tc_rand_bytes(dts[i], shape, 3, &rng, "%lld", 1);
        void *d;
        size_t n;
        assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_OK);
        assert_int_equal((n - floe_tensor_nbytes(t)) % 64, 0);  /* data 64-byte aligned */
        floe_tensor *u = decode_ok(d, n);
        tc_assert_shape(u, dts[i], shape, 3);
        for (int64_t e = 0; e < floe_tensor_num_elements(t); e++)
            tc_assert_elem_eq(t, e, u, e, false);
        free(d);
        floe_tensor_unref(t);
        floe_tensor_unref(u);
    }
}

static void npy_roundtrip_every_rank(void **state) {
    (void)state;
    for (int nd = 0; nd <= FLOE_MAX_DIMS; nd++) {
        int64_t shape[FLOE_MAX_DIMS];
        for (int d = 0; d < nd; d++)
            shape[d] = d == 3 ? 0 : 2;  /* rank >= 4: an empty tensor */
        floe_tensor *t = tc_rand_tensor(FLOE_DTYPE_F32, shape, nd, -1, 1, (uint64_t)nd);
        void *d;
        size_t n;
        assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_OK);
        floe_tensor *u = decode_ok(d, n);
        tc_assert_shape(u, FLOE_DTYPE_F32, shape, nd);
        if (floe_tensor_nbytes(t) > 0)
            assert_memory_equal(floe_tensor_data(t), floe_tensor_data(u), floe_tensor_nbytes(t));
        free(d);
        floe_tensor_unref(t);
        floe_tensor_unref(u);
    }
}

static void npy_versions_and_byte_orders(void **state) {
    (void)state;
    size_t n;
    const uint8_t be[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x00, 0, 0};  /* 1.0f, -2.0f */
    float want[2] = {1.0f, -2.0f};
    for (int major = 1; major <= 3; major++) {
        uint8_t *b = make_npy(major, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                              be, 8, &n);
        floe_tensor *t = decode_ok(b, n);
        tc_assert_close_f32(t, want, 2, 0, 0);
        floe_tensor_unref(t);
        free(b);
    }
    const int16_t le[3] = {-1, 2, 300};
    uint8_t *b = make_npy(1, "{\"shape\": (3L,), \"fortran_order\": False, \"descr\": \"=i2\"}",
                          le, sizeof(le), &n);
    floe_tensor *t = decode_ok(b, n);
    int64_t three = 3;
    tc_assert_shape(t, FLOE_DTYPE_I16, &three, 1);
    assert_memory_equal(floe_tensor_data(t), le, sizeof(le));
    floe_tensor_unref(t);
    free(b);
    /* Big-endian complex64: each f32 swapped on its own. */
    const uint8_t bc[8] = {0x3f, 0x80, 0, 0, 0x40, 0x00, 0, 0};
    b = make_npy(1, "{'descr': '>c8', 'fortran_order': False, 'shape': (), }", bc, 8, &n);
    t = decode_ok(b, n);
    float c[2];
    memcpy(c, floe_tensor_data(t), 8);
    assert_true(c[0] == 1.0f && c[1] == 2.0f);
    assert_int_equal(floe_tensor_ndim(t), 0);
    floe_tensor_unref(t);
    free(b);
    /* Bools other than 0/1 read as true. */
    const uint8_t bb[2] = {0, 7};
    b = make_npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", bb, 2, &n);
    t = decode_ok(b, n);
    assert_int_equal(((uint8_t *)floe_tensor_data(t))[1], 1);
    floe_tensor_unref(t);
    free(b);
}

/* tests/fixtures/tf/mlp_x.npy was written by numpy.save: float32 (2, 8). */
static void npy_reads_numpy_output(void **state) {
    floe_context *ctx = *state;
    const char *root = getenv("FLOE_SOURCE_ROOT");
    if (root == NULL)
        fail_msg("FLOE_SOURCE_ROOT is not set (run through meson test)");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/tf/mlp_x.npy", root);
    floe_tensor *t = NULL;
    if (floe_npy_load(ctx, path, 0, &t) != FLOE_OK)
        fail_msg("%s", floe_last_error());
    int64_t shape[2] = {2, 8};
    tc_assert_shape(t, FLOE_DTYPE_F32, shape, 2);
    /* Re-encoding gives numpy's exact bytes (same header text and padding). */
    void *d, *orig;
    size_t n, on;
    assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    orig = malloc(4096);
    on = fread(orig, 1, 4096, f);
    fclose(f);
    assert_int_equal(n, on);
    assert_memory_equal(d, orig, n);
    free(d);
    free(orig);
    floe_tensor_unref(t);
    assert_int_equal(floe_npy_load(ctx, path, 100, &t), FLOE_OUT_OF_RANGE);
    assert_null(t);
}

static void npy_save_and_load_files(void **state) {
    floe_context *ctx = *state;
    char path[] = "/tmp/floe_npy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int64_t shape[2] = {3, 4};
    floe_tensor *t = tc_rand_tensor(FLOE_DTYPE_F64, shape, 2, -5, 5, 3), *u;
    assert_int_equal(floe_npy_save(ctx, path, t), FLOE_OK);
    assert_int_equal(floe_npy_load(ctx, path, 0, &u), FLOE_OK);
    assert_memory_equal(floe_tensor_data(t), floe_tensor_data(u), floe_tensor_nbytes(t));
    floe_tensor_unref(u);
    floe_tensor_unref(t);
    unlink(path);
    assert_int_not_equal(floe_npy_load(ctx, "/nonexistent/dir/a.npy", 0, &u), FLOE_OK);
    assert_null(u);
    assert_int_equal(floe_npy_load(NULL, path, 0, &u), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_npy_save(ctx, path, NULL), FLOE_INVALID_ARGUMENT);
}

static void npy_errors_name_the_problem(void **state) {
    (void)state;
    size_t n;
    float one = 1;
    decode_fails("\x93NUMPX\x01\x00\x00\x00", 10, "bad magic");
    decode_fails("\x93NUMPY", 6, "bad magic");
    decode_fails("\x93NUMPY\x04\x00\x00\x00", 10, "version 4.0");
    decode_fails("\x93NUMPY\x02\x00\x00\x00", 10, "truncated header length");
    decode_fails("\x93NUMPY\x01\x00\xff\x00{}", 12, "runs past the end");
    struct {
        const char *dict;
        const char *needle;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "fortran_order True"},
        {"{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", "dtype '<U4'"},
        {"{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", "dtype '<f16'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         "rank above"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "extents"},
        {"{'descr': '<f4', 'fortran_order': False}", "all required"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
         "repeated key"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", "after the dict"},
        {"['descr']", "no '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) 'a'}", "',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': 1}", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", "not closed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
         "extents"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}",
         "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "4 data bytes"},
        {"{'de\\'scr': '<f4'}", "expected 'key'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *b = make_npy(1, cases[i].dict, &one, 4, &n);
        decode_fails(b, n, cases[i].needle);
        free(b);
    }
    /* Writing what .npy cannot hold. */
    floe_tensor *t;
    int64_t two = 2;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, &two, 1, &t), FLOE_OK);
    void *d = (void *)1;
    assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_INVALID_ARGUMENT);
    assert_null(d);
    tc_assert_error_contains("string");
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_BF16, &two, 1, &t), FLOE_OK);
    assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(t);
    assert_int_equal(floe_npy_decode(NULL, 3, &t), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_npy_decode("", 0, NULL), FLOE_INVALID_ARGUMENT);
}

static void npy_truncated_and_corrupted(void **state) {
    (void)state;
    int64_t shape[2] = {3, 5};
    floe_tensor *t = tc_rand_tensor(FLOE_DTYPE_I32, shape, 2, -100, 100, 5);
    void *d;
    size_t n;
    assert_int_equal(floe_npy_encode(t, &d, &n), FLOE_OK);
    floe_tensor_unref(t);
    for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, d, k);
        floe_tensor *u = (floe_tensor *)1;
        assert_int_equal(floe_npy_decode(cut, k, &u), FLOE_INVALID_ARGUMENT);
        assert_null(u);
        free(cut);
    }
    for (size_t k = 0; k < n; k++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = malloc(n);
            memcpy(c, d, n);
            c[k] ^= (uint8_t)(1u << bit);
            floe_tensor *u = NULL;
            floe_status st = floe_npy_decode(c, n, &u);
            assert_true(st == FLOE_OK || st == FLOE_INVALID_ARGUMENT);
            assert_true((st == FLOE_OK) == (u != NULL));
            floe_tensor_unref(u);
            free(c);
        }
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_roundtrip_every_dtype),
        cmocka_unit_test(npy_roundtrip_every_rank),
        cmocka_unit_test(npy_versions_and_byte_orders),
        cmocka_unit_test(npy_reads_numpy_output),
        cmocka_unit_test(npy_save_and_load_files),
        cmocka_unit_test(npy_errors_name_the_problem),
        cmocka_unit_test(npy_truncated_and_corrupted),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
