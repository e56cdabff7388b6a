/*
 * fuzz_example.c - libFuzzer target for the tf.train.Example parser of libfloe_io
 * (io/src/example.c): untrusted protobuf wire bytes.
 *
 * Input format: the whole input is one serialized Example, parsed with a fixed set of
 * specs covering every dtype, fixed shapes with and without defaults, and var_len; then
 * the input cut in two halves is parsed as a batch of two.
 *
 * Oracle: FLOE_OK with tensors of exactly the requested shapes (var_len: rank 1, no
 * longer than the input could hold); or FLOE_DATA_LOSS / FLOE_INVALID_ARGUMENT /
 * FLOE_OUT_OF_RANGE with every output NULL and a message; no crash, no leak.
 */
#include "fuzz_util.h"

#include <floe/floe.h>
#include <floe/example.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSPECS 6

static void make_specs(floe_feature_spec *s) {
    static const float f_default = 0.5f;
    static const floe_tstring s_default = {"dflt", 4};
    static const int64_t i_default[2] = {1, 2};
    static const int32_t i32_default = 7;
    memset(s, 0, NSPECS * sizeof *s);
    s[0].key = "a";
    s[0].dtype = FLOE_DTYPE_F32;
    s[0].ndim = 1;
    s[0].shape[0] = 3;
    s[0].default_value = &f_default;
    s[0].default_count = 1;
    s[1].key = "b";
    s[1].dtype = FLOE_DTYPE_I64;
    s[1].ndim = 1;
    s[1].shape[0] = 2;
    s[1].default_value = i_default;
    s[1].default_count = 2;
    s[2].key = "c";
    s[2].dtype = FLOE_DTYPE_STRING;
    s[2].default_value = &s_default;
    s[2].default_count = 1;
    s[3].key = "d";
    s[3].dtype = FLOE_DTYPE_F32;
    s[3].var_len = 1;
    s[4].key = "e";
    s[4].dtype = FLOE_DTYPE_STRING;
    s[4].var_len = 1;
    s[5].key = "f";
    s[5].dtype = FLOE_DTYPE_I32;
    s[5].default_value = &i32_default;
    s[5].default_count = 1;
}

static void check(floe_status st, floe_tensor **out, const floe_feature_spec *s, int batched,
                  size_t size) {
    if (st != FLOE_OK) {
        FUZZ_CHECK(st == FLOE_DATA_LOSS || st == FLOE_INVALID_ARGUMENT ||
                   st == FLOE_OUT_OF_RANGE);
        FUZZ_CHECK(floe_last_error()[0] != '\0');
        for (int j = 0; j < NSPECS; j++)
            FUZZ_CHECK(out[j] == NULL);
        return;
    }
    for (int j = 0; j < NSPECS; j++) {
        FUZZ_CHECK(out[j] != NULL && floe_tensor_dtype(out[j]) == s[j].dtype);
        int nd = floe_tensor_ndim(out[j]) - batched;
        if (s[j].var_len) {
            FUZZ_CHECK(nd == 1 && (size_t)floe_tensor_dim(out[j], -1) <= size);
        } else {
            FUZZ_CHECK(nd == s[j].ndim);
            for (int d = 0; d < nd; d++)
                FUZZ_CHECK(floe_tensor_dim(out[j], d + batched) == s[j].shape[d]);
        }
        floe_tensor_unref(out[j]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    floe_feature_spec s[NSPECS];
    floe_tensor *out[NSPECS];
    make_specs(s);
    /* an exactly sized copy, so reads past the end are caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    if (size)
        memcpy(copy, data, size);
    floe_status st = floe_example_parse(copy, size, s, NSPECS, out);
    if (fuzz_verbose())
        fprintf(stderr, "%s: %s\n", floe_status_str(st), st ? floe_last_error() : "");
    check(st, out, s, 0, size);
    const void *parts[2] = {copy, copy + size / 2};
    size_t sizes[2] = {size / 2, size - size / 2};
    st = floe_example_parse_batch(parts, sizes, 2, s, NSPECS, out);
    check(st, out, s, 1, size);
    free(copy);
    return 0;
}
