/*
 * test_example.c - tf.train.Example parsing and building (io/src/example.c).
 *
 * Values of TensorFlow-written Examples (tests/fixtures/tfrecord/, expected.txt holds
 * what tf.io.parse_single_example returned), the builder's output parsed back, batch
 * parsing with var_len padding, every error naming its feature, and damaged bytes
 * (every truncation and byte flip of an Example) giving an error or a value, never a
 * crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <floe/floe.h>
#include <floe/example.h>
#include <floe/tfrecord.h>

#include "test_common.h"

static floe_feature_spec spec(const char *key, floe_dtype dt, int ndim, int64_t d0) {
    floe_feature_spec s;
    memset(&s, 0, sizeof s);
    s.key = key;
    s.dtype = dt;
    s.ndim = ndim;
    s.shape[0] = d0;
    return s;
}

typedef struct expect {
    long long id;
    double label;
    double pix[4];
    int ntags;
    char tags[4][8];
    size_t taglen[4];
    char name[32];
    size_t namelen;
} expect;

static size_t unhex(const char *h, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n + 1 && i < n; i += 2) {
        unsigned v;
        sscanf(h + i, "%2x", &v);
        out[k++] = (char)v;
    }
    return k;
}

static int load_expected(expect *e, int max) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/tfrecord/expected.txt",
             getenv("FLOE_SOURCE_ROOT"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        expect *x = &e[n];
        memset(x, 0, sizeof *x);
        char tags[256] = "", name[128] = "";
        int idx;
        int got = sscanf(line, "%d id=%lld label=%lf pix=%lf,%lf,%lf,%lf tags=%d:%255s name=%127s",
                         &idx, &x->id, &x->label, &x->pix[0], &x->pix[1], &x->pix[2], &x->pix[3],
                         &x->ntags, tags, name);
        if (got == 9) { /* empty tag list: "tags=0: name=..." */
            got = sscanf(line, "%d id=%lld label=%lf pix=%lf,%lf,%lf,%lf tags=%d: name=%127s",
                         &idx, &x->id, &x->label, &x->pix[0], &x->pix[1], &x->pix[2], &x->pix[3],
                         &x->ntags, name);
            assert_int_equal(got, 9);
            tags[0] = 0;
        } else {
            assert_int_equal(got, 10);
        }
        assert_int_equal(idx, n);
        char *tok = strtok(tags, ",");
        for (int t = 0; t < x->ntags; t++, tok = strtok(NULL, ","))
            x->taglen[t] = unhex(tok, strlen(tok), x->tags[t]);
        x->namelen = unhex(name, strlen(name), x->name);
        n++;
    }
    fclose(f);
    return n;
}

/* The fixture's records, read with Floe's reader. */
static int load_records(void **rec, size_t *len, int max) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/tfrecord/examples_gzip.tfrecord",
             getenv("FLOE_SOURCE_ROOT"));
    floe_tfrecord_reader *r;
    assert_int_equal(floe_tfrecord_reader_open(NULL, path, FLOE_COMPRESSION_GZIP, &r), FLOE_OK);
    int n = 0;
    const void *d;
    size_t l;
    while (n < max && floe_tfrecord_read(r, &d, &l) == FLOE_OK) {
        rec[n] = malloc(l + 1);
        memcpy(rec[n], d, l);
        len[n++] = l;
    }
    floe_tfrecord_reader_close(r);
    return n;
}

static void fixture_specs(floe_feature_spec *s, const floe_tstring *dflt_name) {
    s[0] = spec("id", FLOE_DTYPE_I64, 0, 0);
    s[1] = spec("label", FLOE_DTYPE_F32, 0, 0);
    s[2] = spec("pix", FLOE_DTYPE_F32, 1, 4);
    s[3] = spec("tags", FLOE_DTYPE_STRING, 0, 0);
    s[3].var_len = 1;
    s[4] = spec("name", FLOE_DTYPE_STRING, 0, 0);
    s[4].default_value = dflt_name;
    s[4].default_count = 1;
}

static void example_parses_tensorflow_examples(void **state) {
    (void)state;
    expect e[8];
    void *rec[8];
    size_t len[8];
    assert_int_equal(load_expected(e, 8), 8);
    assert_int_equal(load_records(rec, len, 8), 8);
    floe_tstring none = {"none", 4};
    floe_feature_spec s[5];
    fixture_specs(s, &none);
    for (int i = 0; i < 8; i++) {
        floe_tensor *out[5];
        assert_int_equal(floe_example_parse(rec[i], len[i], s, 5, out), FLOE_OK);
        assert_int_equal(floe_tensor_ndim(out[0]), 0);
        assert_int_equal(*(int64_t *)floe_tensor_data(out[0]), e[i].id);
        assert_true(*(float *)floe_tensor_data(out[1]) == (float)e[i].label);
        int64_t four = 4;
        tc_assert_shape(out[2], FLOE_DTYPE_F32, &four, 1);
        for (int k = 0; k < 4; k++)
            assert_true(((float *)floe_tensor_data(out[2]))[k] == (float)e[i].pix[k]);
        int64_t nt = e[i].ntags;
        tc_assert_shape(out[3], FLOE_DTYPE_STRING, &nt, 1);
        for (int t = 0; t < e[i].ntags; t++) {
            const char *b;
            size_t bl;
            assert_int_equal(floe_tensor_get_string(out[3], t, &b, &bl), FLOE_OK);
            assert_int_equal(bl, e[i].taglen[t]);
            assert_memory_equal(b, e[i].tags[t], bl);
        }
        const char *b;
        size_t bl;
        assert_int_equal(floe_tensor_get_string(out[4], 0, &b, &bl), FLOE_OK);
        assert_int_equal(bl, e[i].namelen);
        assert_memory_equal(b, e[i].name, bl);
        if (i == 5)
            assert_memory_equal(b, "none", 4); /* the default */
        tc_unref_all(out, 5);
    }
    for (int i = 0; i < 8; i++)
        free(rec[i]);
}

static void example_parse_batch_pads_var_len(void **state) {
    (void)state;
    expect e[8];
    void *rec[8];
    size_t len[8];
    load_expected(e, 8);
    assert_int_equal(load_records(rec, len, 8), 8);
    floe_tstring none = {"none", 4};
    floe_feature_spec s[5];
    fixture_specs(s, &none);
    floe_tstring pad = {"-", 1};
    s[3].default_value = &pad;
    s[3].default_count = 1;
    floe_tensor *out[5];
    assert_int_equal(floe_example_parse_batch((const void *const *)rec, len, 8, s, 5, out),
                     FLOE_OK);
    int64_t sh[2] = {8, 4};
    tc_assert_shape(out[2], FLOE_DTYPE_F32, sh, 2);
    tc_assert_shape(out[3], FLOE_DTYPE_STRING, sh, 2); /* longest tag list: 4 (record 2) */
    tc_assert_shape(out[0], FLOE_DTYPE_I64, sh, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(((int64_t *)floe_tensor_data(out[0]))[i], e[i].id);
        for (int k = 0; k < 4; k++)
            assert_true(((float *)floe_tensor_data(out[2]))[i * 4 + k] == (float)e[i].pix[k]);
        for (int t = 0; t < 4; t++) {
            const char *b;
            size_t bl;
            assert_int_equal(floe_tensor_get_string(out[3], i * 4 + t, &b, &bl), FLOE_OK);
            if (t < e[i].ntags) {
                assert_int_equal(bl, e[i].taglen[t]);
                assert_memory_equal(b, e[i].tags[t], bl);
            } else {
                assert_int_equal(bl, 1);
                assert_memory_equal(b, "-", 1);
            }
        }
    }
    tc_unref_all(out, 5);
    /* An error in one Example names its index. */
    s[4].default_value = NULL;
    assert_int_equal(floe_example_parse_batch((const void *const *)rec, len, 8, s, 5, out),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Example 5");
    tc_assert_error_contains("'name'");
    for (int j = 0; j < 5; j++)
        assert_null(out[j]);
    for (int i = 0; i < 8; i++)
        free(rec[i]);
}

static void example_builder_roundtrip(void **state) {
    (void)state;
    floe_example_builder *b = floe_example_builder_new();
    assert_non_null(b);
    float f[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e30f, -1e-30f};
    int64_t i64[3] = {-1, INT64_MAX, 300};
    const void *strs[2] = {"hello", ""};
    size_t slen[2] = {5, 0};
    assert_int_equal(floe_example_builder_add_floats(b, "f", f, 6), FLOE_OK);
    assert_int_equal(floe_example_builder_add_int64s(b, "i", i64, 3), FLOE_OK);
    assert_int_equal(floe_example_builder_add_bytes(b, "s", strs, slen, 2), FLOE_OK);
    int64_t small[2] = {7, -9};
    assert_int_equal(floe_example_builder_add_int64s(b, "small", small, 2), FLOE_OK);
    assert_int_equal(floe_example_builder_add_floats(b, "empty", NULL, 0), FLOE_OK);
    const void *data;
    size_t size;
    assert_int_equal(floe_example_builder_serialize(b, &data, &size), FLOE_OK);
    floe_feature_spec s[5];
    s[0] = spec("f", FLOE_DTYPE_F32, 2, 2);
    s[0].shape[1] = 3;
    s[1] = spec("i", FLOE_DTYPE_I64, 1, 3);
    s[2] = spec("s", FLOE_DTYPE_STRING, 1, 2);
    s[3] = spec("small", FLOE_DTYPE_I32, 1, 2);
    s[4] = spec("empty", FLOE_DTYPE_F32, 1, 0);
    floe_tensor *out[5];
    assert_int_equal(floe_example_parse(data, size, s, 5, out), FLOE_OK);
    int64_t sh[2] = {2, 3};
    tc_assert_shape(out[0], FLOE_DTYPE_F32, sh, 2);
    assert_memory_equal(floe_tensor_data(out[0]), f, sizeof f);
    assert_memory_equal(floe_tensor_data(out[1]), i64, sizeof i64);
    const char *bs;
    size_t bl;
    assert_int_equal(floe_tensor_get_string(out[2], 0, &bs, &bl), FLOE_OK);
    assert_int_equal(bl, 5);
    assert_memory_equal(bs, "hello", 5);
    assert_int_equal(floe_tensor_get_string(out[2], 1, &bs, &bl), FLOE_OK);
    assert_int_equal(bl, 0);
    assert_int_equal(((int32_t *)floe_tensor_data(out[3]))[1], -9);
    assert_int_equal(floe_tensor_num_elements(out[4]), 0);
    tc_unref_all(out, 5);
    /* Defaults: one value repeated, or the whole shape. */
    float d1 = 4.0f, d4[4] = {1, 2, 3, 4};
    floe_feature_spec m[2] = {spec("nope", FLOE_DTYPE_F32, 1, 4), spec("gone", FLOE_DTYPE_F32, 1, 4)};
    m[0].default_value = &d1;
    m[0].default_count = 1;
    m[1].default_value = d4;
    m[1].default_count = 4;
    assert_int_equal(floe_example_parse(data, size, m, 2, out), FLOE_OK);
    for (int k = 0; k < 4; k++) {
        assert_true(((float *)floe_tensor_data(out[0]))[k] == 4.0f);
        assert_true(((float *)floe_tensor_data(out[1]))[k] == d4[k]);
    }
    tc_unref_all(out, 2);
    /* Clear and reuse; a key added twice: the last entry wins. */
    floe_example_builder_clear(b);
    int64_t one = 1, two = 2;
    floe_example_builder_add_int64s(b, "k", &one, 1);
    floe_example_builder_add_int64s(b, "k", &two, 1);
    assert_int_equal(floe_example_builder_serialize(b, &data, &size), FLOE_OK);
    floe_feature_spec k = spec("k", FLOE_DTYPE_I64, 0, 0);
    assert_int_equal(floe_example_parse(data, size, &k, 1, out), FLOE_OK);
    assert_int_equal(*(int64_t *)floe_tensor_data(out[0]), 2);
    floe_tensor_unref(out[0]);
    floe_example_builder_free(b);
    floe_example_builder_free(NULL);
}

/* Hand-written wire bytes: unpacked lists, merged lists, unknown fields. */
static void example_parses_unpacked_and_merged(void **state) {
    (void)state;
    /* Feature{int64_list{value:5 value:6}} then Feature.int64_list again {value:7} */
    const uint8_t feat[] = {0x1a, 0x04, 0x08, 0x05, 0x08, 0x06, 0x1a, 0x02, 0x08, 0x07,
                            0x78, 0x01 /* unknown field 15 varint */};
    uint8_t entry[64], ex[80];
    size_t n = 0;
    entry[n++] = 0x0a;
    entry[n++] = 1;
    entry[n++] = 'x';
    entry[n++] = 0x12;
    entry[n++] = sizeof feat;
    memcpy(entry + n, feat, sizeof feat);
    n += sizeof feat;
    size_t m = 0;
    ex[m++] = 0x0a;            /* features */
    ex[m++] = (uint8_t)(n + 2);
    ex[m++] = 0x0a;            /* feature map entry */
    ex[m++] = (uint8_t)n;
    memcpy(ex + m, entry, n);
    m += n;
    floe_feature_spec s = spec("x", FLOE_DTYPE_I64, 1, 3);
    floe_tensor *out;
    assert_int_equal(floe_example_parse(ex, m, &s, 1, &out), FLOE_OK);
    const int64_t *v = floe_tensor_data(out);
    assert_int_equal(v[0], 5);
    assert_int_equal(v[1], 6);
    assert_int_equal(v[2], 7);
    floe_tensor_unref(out);
    /* An empty Example: every feature missing. */
    s.default_value = NULL;
    assert_int_equal(floe_example_parse("", 0, &s, 1, &out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'x' is missing");
}

static void example_errors_name_the_feature(void **state) {
    (void)state;
    floe_example_builder *b = floe_example_builder_new();
    float f[3] = {1, 2, 3};
    int64_t big = INT64_C(1) << 40;
    floe_example_builder_add_floats(b, "f", f, 3);
    floe_example_builder_add_int64s(b, "big", &big, 1);
    const void *data;
    size_t size;
    floe_example_builder_serialize(b, &data, &size);
    floe_tensor *out[1];
    floe_feature_spec s = spec("f", FLOE_DTYPE_F32, 1, 4);
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'f' has 3 values");
    assert_null(out[0]);
    s = spec("f", FLOE_DTYPE_I64, 1, 3);
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'f' holds a float_list");
    s = spec("big", FLOE_DTYPE_I32, 0, 0);
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_OUT_OF_RANGE);
    tc_assert_error_contains("'big'");
    s = spec("absent", FLOE_DTYPE_F32, 0, 0);
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'absent' is missing");
    s = spec("f", FLOE_DTYPE_U8, 1, 3);
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dtype");
    float d[2] = {0, 0};
    s = spec("f", FLOE_DTYPE_F32, 1, 3);
    s.default_value = d;
    s.default_count = 2;
    assert_int_equal(floe_example_parse(data, size, &s, 1, out), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("default");
    s = spec("f", FLOE_DTYPE_F32, 1, 3);
    assert_int_equal(floe_example_parse("\x0a\x05\x01", 3, &s, 1, out), FLOE_DATA_LOSS);
    assert_int_equal(floe_example_parse(NULL, 0, &s, 0, out), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_example_builder_add_floats(NULL, "x", f, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_example_builder_add_floats(b, NULL, f, 1), FLOE_INVALID_ARGUMENT);
    floe_example_builder_free(b);
}

/* Every truncation and every byte flip of a real Example: an error or a value. */
static void example_damaged_bytes_never_crash(void **state) {
    (void)state;
    void *rec[8];
    size_t len[8];
    assert_int_equal(load_records(rec, len, 8), 8);
    floe_tstring none = {"none", 4};
    floe_feature_spec s[5];
    fixture_specs(s, &none);
    uint8_t *copy = malloc(len[2]);
    int ok = 0, bad = 0;
    for (size_t cut = 0; cut < len[2]; cut++) {
        floe_tensor *out[5];
        floe_status st = floe_example_parse(rec[2], cut, s, 5, out);
        if (st == FLOE_OK)
            tc_unref_all(out, 5);
        assert_true(st == FLOE_OK || st == FLOE_DATA_LOSS || st == FLOE_INVALID_ARGUMENT);
        st == FLOE_OK ? ok++ : bad++;
    }
    for (size_t at = 0; at < len[2]; at++)
        for (int v = 0; v < 256; v += 17) {
            memcpy(copy, rec[2], len[2]);
            copy[at] ^= (uint8_t)(v | 1);
            floe_tensor *out[5];
            floe_status st = floe_example_parse_batch((const void *const *)&copy, &len[2], 1, s,
                                                      5, out);
            if (st == FLOE_OK)
                tc_unref_all(out, 5);
            else
                assert_true(strlen(floe_last_error()) > 0);
            st == FLOE_OK ? ok++ : bad++;
        }
    assert_true(bad > 0);
    free(copy);
    for (int i = 0; i < 8; i++)
        free(rec[i]);
}

/* TensorFlow parses what the builder writes (tests/io/check_example_tf.py); skipped
 * without the tensorflow package. */
static void example_tensorflow_parses_builder_output(void **state) {
    (void)state;
    if (system("python3 -c 'import tensorflow' >/dev/null 2>&1") != 0) {
        printf("SKIP: the tensorflow Python package is not installed\n");
        skip();
    }
    char dir[64], path[128], cmd[512];
    tc_tmpdir(dir, sizeof dir, "example");
    snprintf(path, sizeof path, "%s/floe_examples.tfrecord", dir);
    floe_tfrecord_writer *w;
    assert_int_equal(floe_tfrecord_writer_open(NULL, path, FLOE_COMPRESSION_NONE, 0, &w), FLOE_OK);
    floe_example_builder *b = floe_example_builder_new();
    for (int i = 0; i < 20; i++) {
        float f[3] = {(float)i, -i * 0.5f, 1e-3f};
        int64_t v[3] = {i, -i, (INT64_C(1) << 40) + i};
        char s0[16];
        snprintf(s0, sizeof s0, "s%d", i);
        const void *sv[2] = {s0, ""};
        size_t sl[2] = {strlen(s0), 0};
        floe_example_builder_clear(b);
        assert_int_equal(floe_example_builder_add_floats(b, "f", f, 3), FLOE_OK);
        assert_int_equal(floe_example_builder_add_int64s(b, "i", v, 3), FLOE_OK);
        assert_int_equal(floe_example_builder_add_bytes(b, "s", sv, sl, 2), FLOE_OK);
        assert_int_equal(floe_example_builder_add_floats(b, "empty", NULL, 0), FLOE_OK);
        const void *d;
        size_t n;
        assert_int_equal(floe_example_builder_serialize(b, &d, &n), FLOE_OK);
        assert_int_equal(floe_tfrecord_write(w, d, n), FLOE_OK);
    }
    floe_example_builder_free(b);
    assert_int_equal(floe_tfrecord_writer_close(w), FLOE_OK);
    snprintf(cmd, sizeof cmd, "TF_CPP_MIN_LOG_LEVEL=3 python3 '%s/tests/io/check_example_tf.py' "
             "'%s'", getenv("FLOE_SOURCE_ROOT"), path);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_parses_tensorflow_examples),
        cmocka_unit_test(example_parse_batch_pads_var_len),
        cmocka_unit_test(example_builder_roundtrip),
        cmocka_unit_test(example_parses_unpacked_and_merged),
        cmocka_unit_test(example_errors_name_the_feature),
        cmocka_unit_test(example_damaged_bytes_never_crash),
        cmocka_unit_test(example_tensorflow_parses_builder_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
