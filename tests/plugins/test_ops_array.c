/*
 * test_ops_array.c - the array ops of ops_math (plugins/ops_math/array.c), run eagerly
 * on CPU: Reshape, Transpose, ConcatV2, Pack, Unpack, Fill, ZerosLike, OnesLike, Range,
 * Shape, Rank, Size, ExpandDims, Squeeze, Tile, Pad, PadV2.
 *
 * Each kernel is checked against a reference computed here with naive index loops on
 * random inputs of several dtypes (compared byte for byte; STRING element by element,
 * also checking that the output owns copies), including rank-0 and empty tensors, and
 * every validation error is checked for its status and for a message naming the problem.
 */
#include "test_common.h"

#include <floe/experimental/testing.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------------- */

static uint64_t rng = 0x1234567887654321ull;

static uint64_t rnd(void) {
    return tc_rng_next(&rng);
}

static int64_t rnd_range(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A tensor of random contents: random bytes, 0/1 for BOOL, "s<k>:<random>" strings. */
static floe_tensor *rand_tensor(floe_dtype dt, const int64_t *shape, int nd) {
    return tc_rand_bytes(dt, shape, nd, &rng, "s%lld:%llu", 100000);
}

static void assert_elem_zero(const floe_tensor *a, int64_t ia) {
    if (floe_tensor_dtype(a) == FLOE_DTYPE_STRING) {
        const char *s;
        size_t n;
        assert_int_equal(floe_tensor_get_string(a, ia, &s, &n), FLOE_OK);
        assert_int_equal(n, 0);
        return;
    }
    size_t es = floe_dtype_size(floe_tensor_dtype(a));
    floe_tensor *h = tc_host(a);
    const unsigned char *p = (const unsigned char *)floe_tensor_data(h) + ia * es;
    bool zero = true;
    for (size_t k = 0; k < es; k++)
        zero = zero && p[k] == 0;
    floe_tensor_unref(h);
    if (!zero)
        fail_msg("element %lld is not zero", (long long)ia);
}

static floe_tensor *vec_i32(const int32_t *v, int64_t n) {
    return tc_i32(&n, 1, v);
}
static floe_tensor *vec_i64(const int64_t *v, int64_t n) {
    return tc_i64(&n, 1, v);
}

static const floe_dtype data_types[] = {FLOE_DTYPE_F32,   FLOE_DTYPE_U8,        FLOE_DTYPE_I16,
                                        FLOE_DTYPE_F64,   FLOE_DTYPE_COMPLEX64, FLOE_DTYPE_BOOL,
                                        FLOE_DTYPE_STRING};
#define NTYPES (sizeof(data_types) / sizeof(data_types[0]))

/* Results checked element by element are read as host copies (tc_take_host):
 * tc_assert_elem_eq on a GPU's tensor would copy all of it for every element. */

/* ---- Reshape ---------------------------------------------------------------------- */

static void reshape_random_keeps_element_order(void **state) {
    floe_context *ctx = *state;
    for (size_t t = 0; t < NTYPES; t++) {
        int64_t shape[3] = {3, 4, 5};
        floe_tensor *in[2];
        in[0] = rand_tensor(data_types[t], shape, 3);
        int64_t sizes[2] = {5, -1};
        in[1] = t % 2 ? vec_i64(sizes, 2) : vec_i32((int32_t[]){5, -1}, 2);
        floe_tensor *out = tc_take_host(tc_run1(ctx, "Reshape", in, 2, NULL));
        tc_assert_shape(out, data_types[t], (int64_t[]){5, 12}, 2);
        for (int64_t i = 0; i < 60; i++)
            tc_assert_elem_eq(out, i, in[0], i, true);
        floe_tensor_unref(out);
        tc_unref_all(in, 2);
    }
}

static void reshape_handles_rank0_and_empty(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2], *out;

    /* scalar -> [1,1] */
    in[0] = tc_scalar_f32(2.5f);
    in[1] = vec_i32((int32_t[]){1, 1}, 2);
    out = tc_run1(ctx, "Reshape", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){1, 1}, 2);
    assert_true(tc_get_f(out, 0) == 2.5f);
    floe_tensor_unref(in[1]);
    /* [1,1] -> scalar through an empty shape */
    in[1] = vec_i32(NULL, 0);
    floe_tensor *back = tc_run1(ctx, "Reshape", (floe_tensor *[]){out, in[1]}, 2, NULL);
    tc_assert_shape(back, FLOE_DTYPE_F32, NULL, 0);
    assert_true(tc_get_f(back, 0) == 2.5f);
    /* Reshape is a view: it shares the input's buffer instead of copying it (on the
     * CPU, where the host can see the buffers; a GPU's are not host pointers). */
    if (!tc_on_device(back))
        assert_ptr_equal(floe_tensor_data(back), floe_tensor_data(out));
    floe_tensor_unref(back);
    floe_tensor_unref(out);
    tc_unref_all(in, 2);

    /* [2,0,3] -> [0,-1] infers 6 (zero extents left out), [-1] infers 0 */
    in[0] = tc_f32((int64_t[]){2, 0, 3}, 3, NULL);
    in[1] = vec_i32((int32_t[]){0, -1}, 2);
    out = tc_run1(ctx, "Reshape", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){0, 6}, 2);
    floe_tensor_unref(out);
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){-1}, 1);
    out = tc_run1(ctx, "Reshape", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){0}, 1);
    floe_tensor_unref(out);
    tc_unref_all(in, 2);
}

static void reshape_rejects_bad_sizes(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2];

    in[0] = tc_f32((int64_t[]){3, 4}, 2, NULL);
    in[1] = vec_i32((int32_t[]){-1, -1}, 2);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "Only one input size may be -1");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){-2, 6}, 2);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "must be non-negative");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){5, 3}, 2);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "tensor with 12 values");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){5, -1}, 2);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "multiple of 5");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){2, 1}, 2, (int32_t[]){3, 4});
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "1-D");
    floe_tensor_unref(in[1]);
    /* a product overflowing int64 */
    in[1] = vec_i64((int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40}, 2);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "too many elements");
    floe_tensor_unref(in[1]);
    /* more dims than Floe supports */
    in[1] = vec_i32((int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 12}, 10);
    tc_expect_invalid(ctx, "Reshape", in, 2, NULL, 1, "rank 10 exceeds the maximum of 8");
    tc_unref_all(in, 2);
}

/* ---- Transpose ---------------------------------------------------------------------- */

static void check_transpose(floe_context *ctx, floe_dtype dt, const int64_t *dims, int nd,
                            const int *perm, bool i64) {
    floe_tensor *in[2];
    int64_t pv[FLOE_MAX_DIMS], od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS], ci[FLOE_MAX_DIMS];
    int32_t pv32[FLOE_MAX_DIMS];

    for (int i = 0; i < nd; i++) {
        pv[i] = perm[i];
        pv32[i] = perm[i];
        od[i] = dims[perm[i]];
    }
    in[0] = rand_tensor(dt, dims, nd);
    in[1] = i64 ? vec_i64(pv, nd) : vec_i32(pv32, nd);
    floe_tensor *out = tc_take_host(tc_run1(ctx, "Transpose", in, 2, NULL));
    tc_assert_shape(out, dt, od, nd);
    int64_t n = tc_count(od, nd);
    for (int64_t o = 0; o < n; o++) {
        tc_unravel(o, od, nd, co);
        for (int i = 0; i < nd; i++)
            ci[perm[i]] = co[i];
        tc_assert_elem_eq(out, o, in[0], tc_ravel(ci, dims, nd), true);
    }
    floe_tensor_unref(out);
    tc_unref_all(in, 2);
}

static void random_perm(int *perm, int nd) {
    for (int i = 0; i < nd; i++)
        perm[i] = i;
    for (int i = nd - 1; i > 0; i--) {
        int j = (int)(rnd() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void transpose_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 60; trial++) {
        int nd = (int)rnd_range(0, 6);
        int64_t dims[FLOE_MAX_DIMS];
        int perm[FLOE_MAX_DIMS];
        for (int i = 0; i < nd; i++)
            dims[i] = rnd_range(trial % 10 == 9 ? 0 : 1, 5);
        random_perm(perm, nd);
        check_transpose(ctx, data_types[trial % NTYPES], dims, nd, perm, trial & 1);
    }
}

static void transpose_large_uses_tiles(void **state) {
    floe_context *ctx = *state;
    /* 2-D over the tile size, a 3-D permutation moving the innermost dim, and a
     * permutation that keeps it (row copies) */
    check_transpose(ctx, FLOE_DTYPE_F32, (int64_t[]){300, 257}, 2, (int[]){1, 0}, false);
    check_transpose(ctx, FLOE_DTYPE_U8, (int64_t[]){37, 70, 65}, 3, (int[]){2, 0, 1}, false);
    check_transpose(ctx, FLOE_DTYPE_F64, (int64_t[]){64, 3, 100}, 3, (int[]){1, 0, 2}, true);
    check_transpose(ctx, FLOE_DTYPE_I16, (int64_t[]){2, 1, 129, 1, 33}, 5, (int[]){4, 3, 0, 2, 1},
                    false);
    check_transpose(ctx, FLOE_DTYPE_STRING, (int64_t[]){40, 33}, 2, (int[]){1, 0}, false);
}

static void transpose_rejects_bad_perm(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2];

    in[0] = tc_f32((int64_t[]){2, 3, 4}, 3, NULL);
    in[1] = vec_i32((int32_t[]){0, -1, 2}, 3);
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "perm[1] = -1 is out of range");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){0, 3, 1}, 3);
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "perm[1] = 3 is out of range");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){0, 1, 1}, 3);
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "duplicate");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){1, 0}, 2);
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "vector of size 3");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){3, 1}, 2, (int32_t[]){0, 1, 2});
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "perm must be a vector");
    floe_tensor_unref(in[1]);
    in[1] = vec_i64((int64_t[]){0, INT64_MIN, 1}, 3);
    tc_expect_invalid(ctx, "Transpose", in, 2, NULL, 1, "out of range");
    tc_unref_all(in, 2);
}

/* ---- ConcatV2 --------------------------------------------------------------------- */

static void concat_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 40; trial++) {
        floe_dtype dt = data_types[trial % NTYPES];
        int nd = (int)rnd_range(1, 4), n = (int)rnd_range(2, 4);
        int axis = (int)rnd_range(0, nd - 1);
        int64_t base[FLOE_MAX_DIMS], od[FLOE_MAX_DIMS], dims[4][FLOE_MAX_DIMS];
        int64_t co[FLOE_MAX_DIMS];
        floe_tensor *in[5];
        for (int d = 0; d < nd; d++)
            base[d] = rnd_range(1, 4);
        memcpy(od, base, sizeof(base));
        od[axis] = 0;
        for (int i = 0; i < n; i++) {
            memcpy(dims[i], base, sizeof(base));
            dims[i][axis] = rnd_range(trial % 7 == 6 ? 0 : 1, 4);
            od[axis] += dims[i][axis];
            in[i] = rand_tensor(dt, dims[i], nd);
        }
        int32_t ax = trial & 1 ? axis - nd : axis; /* negative axes too */
        in[n] = tc_scalar_i32(ax);
        floe_attrs *a = tc_attrs_new();
        assert_int_equal(floe_attrs_set_int(a, "N", n), FLOE_OK);
        floe_tensor *out = tc_take_host(tc_run1(ctx, "ConcatV2", in, n + 1, a));
        tc_assert_shape(out, dt, od, nd);
        for (int64_t o = 0; o < tc_count(od, nd); o++) {
            tc_unravel(o, od, nd, co);
            int i = 0;
            while (co[axis] >= dims[i][axis]) {
                co[axis] -= dims[i][axis];
                i++;
            }
            tc_assert_elem_eq(out, o, in[i], tc_ravel(co, dims[i], nd), true);
        }
        floe_tensor_unref(out);
        floe_attrs_free(a);
        tc_unref_all(in, n + 1);
    }
}

static void concat_rejects_bad_inputs(void **state) {
    floe_context *ctx = *state;
    floe_attrs *a = tc_attrs_new();
    floe_tensor *in[3];

    assert_int_equal(floe_attrs_set_int(a, "N", 2), FLOE_OK);
    in[0] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    in[1] = tc_f32((int64_t[]){2, 4}, 2, NULL);
    in[2] = tc_scalar_i32(0);
    tc_expect_invalid(ctx, "ConcatV2", in, 3, a, 1, "Dimension 1 in both shapes must be equal");
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(2);
    tc_expect_invalid(ctx, "ConcatV2", in, 3, a, 1, "range [-2, 2), but got 2");
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(-3);
    tc_expect_invalid(ctx, "ConcatV2", in, 3, a, 1, "but got -3");
    floe_tensor_unref(in[2]);
    floe_tensor_unref(in[1]);
    in[1] = tc_f32((int64_t[]){2, 3, 1}, 3, NULL);
    in[2] = tc_scalar_i32(0);
    tc_expect_invalid(ctx, "ConcatV2", in, 3, a, 1, "Ranks of all input tensors should match");
    tc_unref_all(in, 3);

    in[0] = tc_scalar_f32(1);
    in[1] = tc_scalar_f32(2);
    in[2] = tc_scalar_i32(0);
    tc_expect_invalid(ctx, "ConcatV2", in, 3, a, 1, "concatenate scalars");
    tc_unref_all(in, 3);
    floe_attrs_free(a);
}

/* ---- Pack and Unpack ---------------------------------------------------------------- */

static void pack_unpack_random_match_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 30; trial++) {
        floe_dtype dt = data_types[trial % NTYPES];
        int nd = (int)rnd_range(0, 3), n = (int)rnd_range(1, 4);
        int axis = (int)rnd_range(0, nd); /* in [0, nd] */
        int64_t dims[FLOE_MAX_DIMS], od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS], ci[FLOE_MAX_DIMS];
        floe_tensor *in[4], *outs[4] = {NULL};
        for (int d = 0; d < nd; d++)
            dims[d] = rnd_range(trial % 9 == 8 ? 0 : 1, 4);
        for (int d = 0, k = 0; d <= nd; d++)
            od[d] = d == axis ? n : dims[k++];
        for (int i = 0; i < n; i++)
            in[i] = rand_tensor(dt, dims, nd);
        floe_attrs *a = tc_attrs_new();
        assert_int_equal(floe_attrs_set_int(a, "N", n), FLOE_OK);
        assert_int_equal(floe_attrs_set_int(a, "axis", trial & 1 ? axis - nd - 1 : axis), FLOE_OK);
        floe_tensor *packed = tc_take_host(tc_run1(ctx, "Pack", in, n, a));
        tc_assert_shape(packed, dt, od, nd + 1);
        for (int64_t o = 0; o < tc_count(od, nd + 1); o++) {
            tc_unravel(o, od, nd + 1, co);
            for (int d = 0, k = 0; d <= nd; d++)
                if (d != axis)
                    ci[k++] = co[d];
            tc_assert_elem_eq(packed, o, in[co[axis]], tc_ravel(ci, dims, nd), true);
        }
        /* Unpack gives the inputs back */
        floe_attrs *u = tc_attrs_new();
        assert_int_equal(floe_attrs_set_int(u, "num", n), FLOE_OK);
        assert_int_equal(floe_attrs_set_int(u, "axis", axis), FLOE_OK);
        floe_status st = floe_eager_run(ctx, "Unpack", NULL, &packed, 1, u, outs, n);
        if (st != FLOE_OK)
            fail_msg("Unpack: %s", floe_last_error());
        for (int i = 0; i < n; i++) {
            tc_assert_shape(outs[i], dt, dims, nd);
            for (int64_t k = 0; k < tc_count(dims, nd); k++)
                tc_assert_elem_eq(outs[i], k, in[i], k, true);
        }
        tc_unref_all(outs, n);
        floe_tensor_unref(packed);
        floe_attrs_free(a);
        floe_attrs_free(u);
        tc_unref_all(in, n);
    }
}

static void pack_unpack_reject_bad_inputs(void **state) {
    floe_context *ctx = *state;
    floe_attrs *a = tc_attrs_new();
    floe_tensor *in[2];

    assert_int_equal(floe_attrs_set_int(a, "N", 2), FLOE_OK);
    in[0] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    in[1] = tc_f32((int64_t[]){3, 2}, 2, NULL);
    tc_expect_invalid(ctx, "Pack", in, 2, a, 1, "Shapes of all inputs must match");
    floe_tensor_unref(in[1]);
    in[1] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    assert_int_equal(floe_attrs_set_int(a, "axis", 3), FLOE_OK);
    tc_expect_invalid(ctx, "Pack", in, 2, a, 1, "axis = 3 not in [-3, 3)");
    floe_attrs_free(a);

    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "num", 3), FLOE_OK);
    tc_expect_invalid(ctx, "Unpack", in, 1, a, 3, "Input shape axis 0 must equal 3");
    assert_int_equal(floe_attrs_set_int(a, "axis", -3), FLOE_OK);
    tc_expect_invalid(ctx, "Unpack", in, 1, a, 3, "axis = -3 not in [-2, 2)");
    floe_attrs_free(a);
    tc_unref_all(in, 2);

    /* a scalar has no axis to unpack */
    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "num", 1), FLOE_OK);
    in[0] = tc_scalar_f32(1);
    tc_expect_invalid(ctx, "Unpack", in, 1, a, 1, "not in [0, 0)");
    floe_tensor_unref(in[0]);
    floe_attrs_free(a);
}

/* ---- Fill, ZerosLike, OnesLike ---------------------------------------------------- */

static void fill_sets_every_element(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2], *out;

    in[0] = vec_i32((int32_t[]){2, 3, 4}, 3);
    in[1] = tc_scalar_f32(7.5f);
    out = tc_take_host(tc_run1(ctx, "Fill", in, 2, NULL));
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){2, 3, 4}, 3);
    for (int i = 0; i < 24; i++)
        assert_true(((float *)floe_tensor_data(out))[i] == 7.5f);
    floe_tensor_unref(out);
    floe_tensor_unref(in[1]);

    /* strings, i64 dims, empty and rank-0 results */
    in[1] = tc_tensor(FLOE_DTYPE_STRING, NULL, 0, NULL);
    assert_int_equal(floe_tensor_set_string(in[1], 0, "abc", 3), FLOE_OK);
    floe_tensor_unref(in[0]);
    in[0] = vec_i64((int64_t[]){5}, 1);
    out = tc_take_host(tc_run1(ctx, "Fill", in, 2, NULL));
    tc_assert_shape(out, FLOE_DTYPE_STRING, (int64_t[]){5}, 1);
    for (int i = 0; i < 5; i++)
        tc_assert_elem_eq(out, i, in[1], 0, true);
    floe_tensor_unref(out);
    floe_tensor_unref(in[0]);
    in[0] = vec_i32((int32_t[]){3, 0}, 2);
    out = tc_run1(ctx, "Fill", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_STRING, (int64_t[]){3, 0}, 2);
    floe_tensor_unref(out);
    floe_tensor_unref(in[0]);
    in[0] = vec_i32(NULL, 0);
    out = tc_run1(ctx, "Fill", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_STRING, NULL, 0);
    tc_assert_elem_eq(out, 0, in[1], 0, true);
    floe_tensor_unref(out);
    tc_unref_all(in, 2);
}

static void fill_rejects_bad_inputs(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2];

    in[0] = vec_i32((int32_t[]){2, -1}, 2);
    in[1] = tc_scalar_f32(1);
    tc_expect_invalid(ctx, "Fill", in, 2, NULL, 1, "dims[1] = -1 must be non-negative");
    floe_tensor_unref(in[0]);
    in[0] = vec_i64((int64_t[]){INT64_C(1) << 32, INT64_C(1) << 32}, 2);
    tc_expect_invalid(ctx, "Fill", in, 2, NULL, 1, "too many elements");
    floe_tensor_unref(in[0]);
    in[0] = tc_scalar_i32(3);
    tc_expect_invalid(ctx, "Fill", in, 2, NULL, 1, "dims must be a vector");
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
    in[0] = vec_i32((int32_t[]){2}, 1);
    in[1] = tc_f32((int64_t[]){2}, 1, NULL);
    tc_expect_invalid(ctx, "Fill", in, 2, NULL, 1, "value must be a scalar");
    tc_unref_all(in, 2);
}

static void zeros_and_ones_like_every_dtype(void **state) {
    floe_context *ctx = *state;
    static const struct {
        floe_dtype dt;
        unsigned char one[8];
    } cases[] = {
        {FLOE_DTYPE_F32, {0x00, 0x00, 0x80, 0x3f}},
        {FLOE_DTYPE_F64, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
        {FLOE_DTYPE_F16, {0x00, 0x3c}},
        {FLOE_DTYPE_BF16, {0x80, 0x3f}},
        {FLOE_DTYPE_I8, {1}},
        {FLOE_DTYPE_U16, {1, 0}},
        {FLOE_DTYPE_I32, {1, 0, 0, 0}},
        {FLOE_DTYPE_U64, {1, 0, 0, 0, 0, 0, 0, 0}},
        {FLOE_DTYPE_COMPLEX64, {0x00, 0x00, 0x80, 0x3f, 0, 0, 0, 0}},
        {FLOE_DTYPE_BOOL, {1}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (int nd = 0; nd <= 2; nd++) {
            int64_t dims[2] = {3, nd == 2 ? 0 : 5};
            floe_tensor *x = rand_tensor(cases[c].dt, dims, nd);
            floe_tensor *z = tc_run1(ctx, "ZerosLike", &x, 1, NULL);
            floe_tensor *o = tc_take_host(tc_run1(ctx, "OnesLike", &x, 1, NULL));
            tc_assert_shape(z, cases[c].dt, dims, nd);
            tc_assert_shape(o, cases[c].dt, dims, nd);
            size_t es = floe_dtype_size(cases[c].dt);
            for (int64_t i = 0; i < floe_tensor_num_elements(x); i++) {
                assert_elem_zero(z, i);
                assert_memory_equal((unsigned char *)floe_tensor_data(o) + i * es, cases[c].one,
                                    es);
            }
            floe_tensor_unref(z);
            floe_tensor_unref(o);
            floe_tensor_unref(x);
        }
    }
    /* ZerosLike of strings gives empty strings; OnesLike has none */
    floe_tensor *s = rand_tensor(FLOE_DTYPE_STRING, (int64_t[]){4}, 1);
    floe_tensor *z = tc_run1(ctx, "ZerosLike", &s, 1, NULL);
    for (int i = 0; i < 4; i++)
        assert_elem_zero(z, i);
    floe_tensor_unref(z);
    assert_int_not_equal(tc_run_status(ctx, "OnesLike", &s, 1, NULL, 1), FLOE_OK);
    floe_tensor_unref(s);
}

/* ---- Range ------------------------------------------------------------------------ */

static void range_int_and_float_match_reference(void **state) {
    floe_context *ctx = *state;
    static const int32_t cases[][3] = {{0, 10, 3}, {10, 0, -3}, {-5, 5, 1},
                                       {3, 3, 1},  {7, -2, -4}, {0, 1, 100}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        floe_tensor *in[3];
        for (int k = 0; k < 3; k++)
            in[k] = tc_scalar_i32(cases[c][k]);
        floe_tensor *out = tc_take_host(tc_run1(ctx, "Range", in, 3, NULL));
        int32_t expect[64];
        int64_t n = 0;
        for (int32_t v = cases[c][0]; cases[c][2] > 0 ? v < cases[c][1] : v > cases[c][1];
             v += cases[c][2])
            expect[n++] = v;
        tc_assert_shape(out, FLOE_DTYPE_I32, &n, 1);
        if (n > 0)
            assert_memory_equal(floe_tensor_data(out), expect, (size_t)n * 4);
        floe_tensor_unref(out);
        tc_unref_all(in, 3);
    }

    /* float: accumulated like TensorFlow, size ceil(|limit - start| / |delta|) */
    floe_tensor *in[3] = {tc_scalar_f32(0.5f), tc_scalar_f32(2.0f), tc_scalar_f32(0.3f)};
    floe_tensor *out = tc_run1(ctx, "Range", in, 3, NULL);
    int64_t n = (int64_t)ceilf(fabsf((2.0f - 0.5f) / 0.3f));
    float expect[8], v = 0.5f;
    assert_true(n >= 5 && n <= 6);
    for (int i = 0; i < n; i++, v += 0.3f)
        expect[i] = v;
    tc_assert_close_f32(out, expect, n, 0, 0);
    floe_tensor_unref(out);
    tc_unref_all(in, 3);

    /* int64 extremes: the span does not fit int64 but the count does */
    int64_t lo = INT64_MIN, hi = INT64_MAX, step = INT64_C(1) << 62;
    floe_tensor *w[3] = {tc_i64(NULL, 0, &lo), tc_i64(NULL, 0, &hi), tc_i64(NULL, 0, &step)};
    out = tc_take_host(tc_run1(ctx, "Range", w, 3, NULL));
    tc_assert_shape(out, FLOE_DTYPE_I64, (int64_t[]){4}, 1);
    const int64_t *o = floe_tensor_data(out);
    assert_true(o[0] == INT64_MIN && o[1] == -(INT64_C(1) << 62) && o[2] == 0 &&
                o[3] == INT64_C(1) << 62);
    floe_tensor_unref(out);
    tc_unref_all(w, 3);
}

static void range_rejects_bad_arguments(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[3];

    in[0] = tc_scalar_i32(0);
    in[1] = tc_scalar_i32(10);
    in[2] = tc_scalar_i32(0);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "delta != 0");
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(-1);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "start >= limit when delta < 0");
    tc_unref_all(in, 3);

    in[0] = tc_scalar_i32(5);
    in[1] = tc_scalar_i32(1);
    in[2] = tc_scalar_i32(2);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "start <= limit when delta > 0");
    tc_unref_all(in, 3);

    int64_t lo = INT64_MIN, hi = INT64_MAX, one = 1;
    in[0] = tc_i64(NULL, 0, &lo);
    in[1] = tc_i64(NULL, 0, &hi);
    in[2] = tc_i64(NULL, 0, &one);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "Requires ((limit - start) / delta)");
    tc_unref_all(in, 3);

    in[0] = tc_scalar_f32(0);
    in[1] = tc_scalar_f32(NAN);
    in[2] = tc_scalar_f32(1);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "finite");
    floe_tensor_unref(in[1]);
    in[1] = tc_scalar_f32(1e30f);
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_f32(1e-30f);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "Requires ((limit - start) / delta)");
    tc_unref_all(in, 3);

    in[0] = vec_i32((int32_t[]){0, 1}, 2);
    in[1] = tc_scalar_i32(3);
    in[2] = tc_scalar_i32(1);
    tc_expect_invalid(ctx, "Range", in, 3, NULL, 1, "start must be a scalar");
    tc_unref_all(in, 3);
}

/* ---- Shape, Rank, Size ------------------------------------------------------------- */

static void shape_rank_size_report_the_input(void **state) {
    floe_context *ctx = *state;
    int64_t dims[3] = {4, 0, 7};
    floe_tensor *x = tc_f32(dims, 3, NULL), *out;
    floe_attrs *a = tc_attrs_new();

    out = tc_take_host(tc_run1(ctx, "Shape", &x, 1, NULL));
    tc_assert_shape(out, FLOE_DTYPE_I32, (int64_t[]){3}, 1);
    assert_memory_equal(floe_tensor_data(out), ((int32_t[]){4, 0, 7}), 12);
    floe_tensor_unref(out);
    assert_int_equal(floe_attrs_set_type(a, "out_type", FLOE_DTYPE_I64), FLOE_OK);
    out = tc_take_host(tc_run1(ctx, "Shape", &x, 1, a));
    tc_assert_shape(out, FLOE_DTYPE_I64, (int64_t[]){3}, 1);
    assert_memory_equal(floe_tensor_data(out), dims, 24);
    floe_tensor_unref(out);
    out = tc_take_host(tc_run1(ctx, "Rank", &x, 1, NULL));
    tc_assert_shape(out, FLOE_DTYPE_I32, NULL, 0);
    assert_int_equal(*(int32_t *)floe_tensor_data(out), 3);
    floe_tensor_unref(out);
    out = tc_take_host(tc_run1(ctx, "Size", &x, 1, a));
    tc_assert_shape(out, FLOE_DTYPE_I64, NULL, 0);
    assert_int_equal(*(int64_t *)floe_tensor_data(out), 0);
    floe_tensor_unref(out);
    floe_tensor_unref(x);

    /* an extent beyond int32 (no elements, so nothing is allocated) */
    x = tc_f32((int64_t[]){INT64_C(3000000000), 0}, 2, NULL);
    tc_expect_invalid(ctx, "Shape", &x, 1, NULL, 1, "dim 0 is 3000000000");
    out = tc_take_host(tc_run1(ctx, "Shape", &x, 1, a));
    assert_true(((int64_t *)floe_tensor_data(out))[0] == INT64_C(3000000000));
    floe_tensor_unref(out);
    floe_tensor_unref(x);

    /* rank 0 */
    x = tc_scalar_f32(1);
    out = tc_take_host(tc_run1(ctx, "Shape", &x, 1, NULL));
    tc_assert_shape(out, FLOE_DTYPE_I32, (int64_t[]){0}, 1);
    floe_tensor_unref(out);
    out = tc_take_host(tc_run1(ctx, "Size", &x, 1, NULL));
    assert_int_equal(*(int32_t *)floe_tensor_data(out), 1);
    floe_tensor_unref(out);
    out = tc_take_host(tc_run1(ctx, "Rank", &x, 1, NULL));
    assert_int_equal(*(int32_t *)floe_tensor_data(out), 0);
    floe_tensor_unref(out);
    floe_tensor_unref(x);
    floe_attrs_free(a);
}

/* ---- ExpandDims, Squeeze ------------------------------------------------------------- */

static void expand_dims_and_squeeze(void **state) {
    floe_context *ctx = *state;
    int64_t dims[3] = {2, 1, 3};
    floe_tensor *x = rand_tensor(FLOE_DTYPE_STRING, dims, 3), *in[2], *out;

    for (int d = -4; d <= 3; d++) {
        int64_t od[4];
        int at = d < 0 ? d + 4 : d;
        for (int k = 0, j = 0; k < 4; k++)
            od[k] = k == at ? 1 : dims[j++];
        in[0] = x;
        in[1] = d & 1 ? tc_scalar_i32(d) : vec_i64((int64_t[]){d}, 1);
        out = tc_take_host(tc_run1(ctx, "ExpandDims", in, 2, NULL));
        tc_assert_shape(out, FLOE_DTYPE_STRING, od, 4);
        for (int i = 0; i < 6; i++)
            tc_assert_elem_eq(out, i, x, i, true);
        floe_tensor_unref(out);
        floe_tensor_unref(in[1]);
    }
    in[1] = tc_scalar_i32(4);
    tc_expect_invalid(ctx, "ExpandDims", in, 2, NULL, 1, "Tried to expand dim index 4");
    floe_tensor_unref(in[1]);
    in[1] = tc_scalar_i32(-5);
    tc_expect_invalid(ctx, "ExpandDims", in, 2, NULL, 1, "Tried to expand dim index -5");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){0, 1}, 2);
    tc_expect_invalid(ctx, "ExpandDims", in, 2, NULL, 1, "single value");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){1, 1}, 2, (int32_t[]){-1}); /* one value, any rank */
    out = tc_run1(ctx, "ExpandDims", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_STRING, (int64_t[]){2, 1, 3, 1}, 4);
    floe_tensor_unref(out);
    floe_tensor_unref(in[1]);

    /* Squeeze: all extent-1 dims by default, listed ones otherwise */
    out = tc_take_host(tc_run1(ctx, "Squeeze", &x, 1, NULL));
    tc_assert_shape(out, FLOE_DTYPE_STRING, (int64_t[]){2, 3}, 2);
    for (int i = 0; i < 6; i++)
        tc_assert_elem_eq(out, i, x, i, true);
    floe_tensor_unref(out);
    floe_attrs *a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int_list(a, "squeeze_dims", (int64_t[]){-2}, 1), FLOE_OK);
    out = tc_run1(ctx, "Squeeze", &x, 1, a);
    tc_assert_shape(out, FLOE_DTYPE_STRING, (int64_t[]){2, 3}, 2);
    floe_tensor_unref(out);
    assert_int_equal(floe_attrs_set_int_list(a, "squeeze_dims", (int64_t[]){0}, 1), FLOE_OK);
    tc_expect_invalid(ctx, "Squeeze", &x, 1, a, 1,
                      "Can not squeeze dim[0], expected a dimension of 1, got 2");
    assert_int_equal(floe_attrs_set_int_list(a, "squeeze_dims", (int64_t[]){3}, 1), FLOE_OK);
    tc_expect_invalid(ctx, "Squeeze", &x, 1, a, 1, "Tried to squeeze dim index 3");
    floe_attrs_free(a);
    floe_tensor_unref(x);

    /* rank 8 is the limit */
    int64_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    x = tc_f32(ones, 8, NULL);
    in[0] = x;
    in[1] = tc_scalar_i32(0);
    tc_expect_invalid(ctx, "ExpandDims", in, 2, NULL, 1, "exceeds the maximum");
    floe_tensor_unref(in[1]);
    out = tc_run1(ctx, "Squeeze", &x, 1, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F32, NULL, 0);
    floe_tensor_unref(out);
    floe_tensor_unref(x);
}

/* ---- Tile ---------------------------------------------------------------------------- */

static void tile_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 40; trial++) {
        floe_dtype dt = data_types[trial % NTYPES];
        int nd = (int)rnd_range(0, 4);
        int64_t dims[FLOE_MAX_DIMS], mult[FLOE_MAX_DIMS], od[FLOE_MAX_DIMS];
        int64_t co[FLOE_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            dims[d] = rnd_range(trial % 11 == 10 ? 0 : 1, 4);
            mult[d] = rnd_range(trial % 13 == 12 ? 0 : 1, 4);
            od[d] = dims[d] * mult[d];
        }
        floe_tensor *in[2] = {rand_tensor(dt, dims, nd), vec_i64(mult, nd)};
        floe_tensor *out = tc_run1(ctx, "Tile", in, 2, NULL);
        tc_assert_shape(out, dt, od, nd);
        for (int64_t o = 0; o < tc_count(od, nd); o++) {
            tc_unravel(o, od, nd, co);
            for (int d = 0; d < nd; d++)
                co[d] %= dims[d];
            tc_assert_elem_eq(out, o, in[0], tc_ravel(co, dims, nd), true);
        }
        floe_tensor_unref(out);
        tc_unref_all(in, 2);
    }
    /* a long innermost repeat */
    floe_tensor *in[2] = {rand_tensor(FLOE_DTYPE_F64, (int64_t[]){3, 1}, 2),
                          vec_i32((int32_t[]){2, 1000}, 2)};
    floe_tensor *out = tc_run1(ctx, "Tile", in, 2, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F64, (int64_t[]){6, 1000}, 2);
    for (int64_t o = 0; o < 6000; o++)
        tc_assert_elem_eq(out, o, in[0], (o / 1000) % 3, true);
    floe_tensor_unref(out);
    tc_unref_all(in, 2);
}

static void tile_rejects_bad_multiples(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[2];

    in[0] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    in[1] = vec_i32((int32_t[]){1, -2}, 2);
    tc_expect_invalid(ctx, "Tile", in, 2, NULL, 1, "Expected multiples[1] >= 0, but got -2");
    floe_tensor_unref(in[1]);
    in[1] = vec_i32((int32_t[]){1, 2, 3}, 3);
    tc_expect_invalid(ctx, "Tile", in, 2, NULL, 1, "vector of length 2 but got length 3");
    floe_tensor_unref(in[1]);
    in[1] = vec_i64((int64_t[]){INT64_C(1) << 62, 1}, 2);
    tc_expect_invalid(ctx, "Tile", in, 2, NULL, 1, "overflows");
    floe_tensor_unref(in[1]);
    in[1] = vec_i64((int64_t[]){INT64_C(1) << 31, INT64_C(1) << 31}, 2);
    tc_expect_invalid(ctx, "Tile", in, 2, NULL, 1, "too many elements");
    tc_unref_all(in, 2);
}

/* ---- Pad and PadV2 ----------------------------------------------------------------------- */

static void check_pad(floe_context *ctx, floe_dtype dt, const int64_t *dims, int nd,
                      const int64_t *pad, bool v2) {
    int64_t od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS];
    floe_tensor *in[3];
    int n = 2;

    for (int d = 0; d < nd; d++)
        od[d] = pad[2 * d] + dims[d] + pad[2 * d + 1];
    in[0] = rand_tensor(dt, dims, nd);
    in[1] = tc_i64((int64_t[]){nd, 2}, 2, pad);
    if (v2) {
        in[2] = rand_tensor(dt, NULL, 0);
        n = 3;
    }
    floe_tensor *out = tc_run1(ctx, v2 ? "PadV2" : "Pad", in, n, NULL);
    tc_assert_shape(out, dt, od, nd);
    for (int64_t o = 0; o < tc_count(od, nd); o++) {
        tc_unravel(o, od, nd, co);
        bool inside = true;
        for (int d = 0; d < nd; d++) {
            co[d] -= pad[2 * d];
            inside = inside && co[d] >= 0 && co[d] < dims[d];
        }
        if (inside)
            tc_assert_elem_eq(out, o, in[0], tc_ravel(co, dims, nd), true);
        else if (v2)
            tc_assert_elem_eq(out, o, in[2], 0, true);
        else
            assert_elem_zero(out, o);
    }
    floe_tensor_unref(out);
    tc_unref_all(in, n);
}

static void pad_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 40; trial++) {
        int nd = (int)rnd_range(0, 4);
        int64_t dims[FLOE_MAX_DIMS], pad[2 * FLOE_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            dims[d] = rnd_range(trial % 7 == 6 ? 0 : 1, 4);
            pad[2 * d] = rnd_range(0, 3);
            pad[2 * d + 1] = rnd_range(0, 3);
        }
        check_pad(ctx, data_types[trial % NTYPES], dims, nd, pad, trial & 1);
    }
    /* large enough to be split across threads */
    check_pad(ctx, FLOE_DTYPE_F32, (int64_t[]){200, 300}, 2, (int64_t[]){3, 1, 7, 2}, false);
}

static void pad_rejects_bad_paddings(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[3];

    in[0] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    in[1] = tc_i32((int64_t[]){2, 2}, 2, (int32_t[]){0, 1, -1, 0});
    tc_expect_invalid(ctx, "Pad", in, 2, NULL, 1, "Paddings must be non-negative: -1 0");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){2, 3}, 2, (int32_t[]){0, 1, 1, 0, 0, 0});
    tc_expect_invalid(ctx, "Pad", in, 2, NULL, 1, "paddings must be a matrix with 2 columns");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){3, 2}, 2, (int32_t[]){0, 1, 1, 0, 0, 0});
    tc_expect_invalid(ctx, "Pad", in, 2, NULL, 1,
                      "The first dimension of paddings must be the rank");
    floe_tensor_unref(in[1]);
    in[1] = tc_i64((int64_t[]){2, 2}, 2, (int64_t[]){INT64_MAX, 0, 0, 0});
    tc_expect_invalid(ctx, "Pad", in, 2, NULL, 1, "overflows");
    floe_tensor_unref(in[1]);
    in[1] = tc_i32((int64_t[]){2, 2}, 2, (int32_t[]){1, 1, 1, 1});
    in[2] = tc_f32((int64_t[]){1}, 1, NULL);
    tc_expect_invalid(ctx, "PadV2", in, 3, NULL, 1, "constant_values must be a scalar");
    tc_unref_all(in, 3);
}

/* ---- Shape functions: graphs with Const inputs ------------------------------------------ */

/* Eager calls feed Placeholders, so these build graphs whose shape, perm, axis, ... inputs
 * are Consts, to check that shape inference uses their values and rejects bad ones when
 * the node is built. */

#define U (-1)

static void shape_fns_reshape_transpose_concat(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *x34 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){3, 4}, 2);
    floe_node *xu4 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){U, 4}, 2);
    floe_node *xr = tc_g_ph(g, FLOE_DTYPE_F32, NULL, -1);

    tc_expect_shape(g, "Reshape",
                    (floe_node *[]){x34, tc_g_const(g, vec_i32((int32_t[]){-1, 2}, 2))}, 2, 0, NULL,
                    0, (int64_t[]){6, 2}, 2);
    tc_expect_shape(g, "Reshape",
                    (floe_node *[]){xu4, tc_g_const(g, vec_i32((int32_t[]){2, -1}, 2))}, 2, 0, NULL,
                    0, (int64_t[]){2, U}, 2);
    tc_expect_shape(g, "Reshape", (floe_node *[]){xr, tc_g_const(g, vec_i64((int64_t[]){2, 3}, 2))},
                    2, 0, NULL, 0, (int64_t[]){2, 3}, 2);
    tc_expect_shape(g, "Reshape",
                    (floe_node *[]){x34, tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){3}, 1)}, 2, 0, NULL,
                    0, (int64_t[]){U, U, U}, 3);
    tc_expect_build_error(g, "Reshape",
                          (floe_node *[]){x34, tc_g_const(g, vec_i32((int32_t[]){5, -1}, 2))}, 2, 0,
                          NULL, "multiple of 5");

    floe_node *x2u5 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, U, 5}, 3);
    tc_expect_shape(g, "Transpose",
                    (floe_node *[]){x2u5, tc_g_const(g, vec_i32((int32_t[]){2, 0, 1}, 3))}, 2, 0,
                    NULL, 0, (int64_t[]){5, 2, U}, 3);
    tc_expect_shape(g, "Transpose",
                    (floe_node *[]){x2u5, tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){U}, 1)}, 2, 0,
                    NULL, 0, (int64_t[]){U, U, U}, 3);
    tc_expect_build_error(g, "Transpose",
                          (floe_node *[]){x2u5, tc_g_const(g, vec_i32((int32_t[]){0, -1, 1}, 3))},
                          2, 0, NULL, "perm[1] = -1 is out of range");
    tc_expect_build_error(g, "Transpose",
                          (floe_node *[]){x2u5, tc_g_const(g, vec_i32((int32_t[]){0, 0, 1}, 3))}, 2,
                          0, NULL, "duplicate");
    tc_expect_shape(g, "Transpose",
                    (floe_node *[]){xr, tc_g_const(g, vec_i32((int32_t[]){1, 0}, 2))}, 2, 0, NULL,
                    0, (int64_t[]){U, U}, 2);
    tc_expect_build_error(g, "Transpose",
                          (floe_node *[]){xr, tc_g_const(g, vec_i32((int32_t[]){1, 2}, 2))}, 2, 0,
                          NULL, "perm[1] = 2 is out of range");

    floe_attrs *a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "N", 2), FLOE_OK);
    floe_node *x23 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, 3}, 2);
    floe_node *x2u = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, U}, 2);
    floe_node *x53 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){5, 3}, 2);
    tc_expect_shape(g, "ConcatV2", (floe_node *[]){x23, x2u, tc_g_const(g, tc_scalar_i32(1))}, 3, 2,
                    a, 0, (int64_t[]){2, U}, 2);
    tc_expect_shape(g, "ConcatV2", (floe_node *[]){x23, x53, tc_g_const(g, tc_scalar_i32(-2))}, 3,
                    2, a, 0, (int64_t[]){7, 3}, 2);
    tc_expect_shape(g, "ConcatV2", (floe_node *[]){x23, x53, tc_g_ph(g, FLOE_DTYPE_I32, NULL, 0)},
                    3, 2, a, 0, (int64_t[]){U, U}, 2);
    tc_expect_build_error(g, "ConcatV2", (floe_node *[]){x23, x53, tc_g_const(g, tc_scalar_i32(1))},
                          3, 2, a, "Dimension 0 in both shapes must be equal");
    tc_expect_build_error(g, "ConcatV2", (floe_node *[]){x23, x53, tc_g_const(g, tc_scalar_i32(2))},
                          3, 2, a, "range [-2, 2)");
    floe_attrs_free(a);
    floe_graph_free(g);
}

static void shape_fns_pack_fill_range_tile_pad(void **state) {
    floe_graph *g = NULL;
    floe_attrs *a = tc_attrs_new();
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);

    floe_node *p1 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, U}, 2);
    floe_node *p2 = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){U, 3}, 2);
    assert_int_equal(floe_attrs_set_int(a, "N", 2), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "axis", 1), FLOE_OK);
    tc_expect_shape(g, "Pack", (floe_node *[]){p1, p2}, 2, 2, a, 0, (int64_t[]){2, 2, 3}, 3);
    floe_attrs_free(a);

    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "num", 2), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "axis", -1), FLOE_OK);
    floe_node *u = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){4, U, 2}, 3);
    tc_expect_shape(g, "Unpack", &u, 1, 0, a, 1, (int64_t[]){4, U}, 2);
    assert_int_equal(floe_attrs_set_int(a, "num", 3), FLOE_OK);
    tc_expect_build_error(g, "Unpack", &u, 1, 0, a, "Input shape axis 2 must equal 3");
    floe_attrs_free(a);

    floe_node *v = tc_g_const(g, tc_scalar_f32(1));
    tc_expect_shape(g, "Fill", (floe_node *[]){tc_g_const(g, vec_i32((int32_t[]){2, 5}, 2)), v}, 2,
                    0, NULL, 0, (int64_t[]){2, 5}, 2);
    tc_expect_shape(g, "Fill", (floe_node *[]){tc_g_ph(g, FLOE_DTYPE_I64, (int64_t[]){3}, 1), v}, 2,
                    0, NULL, 0, (int64_t[]){U, U, U}, 3);
    tc_expect_build_error(g, "Fill",
                          (floe_node *[]){tc_g_const(g, vec_i32((int32_t[]){2, -5}, 2)), v}, 2, 0,
                          NULL, "dims[1] = -5 must be non-negative");

    tc_expect_shape(g, "Range",
                    (floe_node *[]){tc_g_const(g, tc_scalar_i32(1)),
                                    tc_g_const(g, tc_scalar_i32(10)),
                                    tc_g_const(g, tc_scalar_i32(2))},
                    3, 0, NULL, 0, (int64_t[]){5}, 1);
    tc_expect_shape(g, "Range",
                    (floe_node *[]){tc_g_const(g, tc_scalar_i32(1)),
                                    tc_g_ph(g, FLOE_DTYPE_I32, NULL, 0),
                                    tc_g_const(g, tc_scalar_i32(2))},
                    3, 0, NULL, 0, (int64_t[]){U}, 1);
    tc_expect_build_error(g, "Range",
                          (floe_node *[]){tc_g_const(g, tc_scalar_i32(1)),
                                          tc_g_const(g, tc_scalar_i32(10)),
                                          tc_g_const(g, tc_scalar_i32(0))},
                          3, 0, NULL, "delta != 0");

    floe_node *x2u = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, U}, 2);
    tc_expect_shape(g, "Tile", (floe_node *[]){x2u, tc_g_const(g, vec_i32((int32_t[]){3, 0}, 2))},
                    2, 0, NULL, 0, (int64_t[]){6, 0}, 2);
    tc_expect_shape(g, "Tile", (floe_node *[]){x2u, tc_g_const(g, vec_i32((int32_t[]){3, 2}, 2))},
                    2, 0, NULL, 0, (int64_t[]){6, U}, 2);
    tc_expect_build_error(g, "Tile",
                          (floe_node *[]){x2u, tc_g_const(g, vec_i32((int32_t[]){3}, 1))}, 2, 0,
                          NULL, "vector of length 2 but got length 1");

    floe_node *pads = tc_g_const(g, tc_i32((int64_t[]){2, 2}, 2, (int32_t[]){1, 2, 3, 4}));
    tc_expect_shape(g, "Pad", (floe_node *[]){x2u, pads}, 2, 0, NULL, 0, (int64_t[]){5, U}, 2);
    tc_expect_build_error(
        g, "Pad",
        (floe_node *[]){x2u, tc_g_const(g, tc_i32((int64_t[]){2, 2}, 2, (int32_t[]){1, -2, 3, 4}))},
        2, 0, NULL, "Paddings must be non-negative");

    floe_node *xs = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){1, U, 3, 1}, 4);
    tc_expect_shape(g, "Shape", &xs, 1, 0, NULL, 0, (int64_t[]){4}, 1);
    tc_expect_shape(g, "Size", &xs, 1, 0, NULL, 0, NULL, 0);
    tc_expect_shape(g, "Squeeze", &xs, 1, 0, NULL, 0, NULL, -1); /* ? may be 1 */
    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int_list(a, "squeeze_dims", (int64_t[]){0, -1}, 2), FLOE_OK);
    tc_expect_shape(g, "Squeeze", &xs, 1, 0, a, 0, (int64_t[]){U, 3}, 2);
    assert_int_equal(floe_attrs_set_int_list(a, "squeeze_dims", (int64_t[]){2}, 1), FLOE_OK);
    tc_expect_build_error(g, "Squeeze", &xs, 1, 0, a, "Can not squeeze dim[2]");
    floe_attrs_free(a);
    tc_expect_shape(g, "ExpandDims", (floe_node *[]){xs, tc_g_const(g, tc_scalar_i32(-1))}, 2, 0,
                    NULL, 0, (int64_t[]){1, U, 3, 1, 1}, 5);
    floe_graph_free(g);
}

/* A graph run with Const shape inputs: the kernels get them from the plan. */
static void const_inputs_run_in_a_session(void **state) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *t, *x;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    x = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){2, 3}, 2);
    assert_int_equal(tc_g_node(g, "Transpose",
                               (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){1, 0}, 2))}, 2,
                               0, NULL, &t),
                     FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_tensor *in = tc_f32((int64_t[]){2, 3}, 2, (float[]){1, 2, 3, 4, 5, 6}), *out = NULL;
    floe_output feed = floe_out(x, 0), fetch = floe_out(t, 0);
    if (floe_session_run(s, &feed, &in, 1, &fetch, 1, NULL, 0, &out) != FLOE_OK)
        fail_msg("run: %s", floe_last_error());
    tc_assert_close_f32(out, (float[]){1, 4, 2, 5, 3, 6}, 6, 0, 0);
    floe_tensor_unref(out);
    floe_tensor_unref(in);
    floe_session_free(s);
    floe_graph_free(g);
}

/* ---- Random arguments, valid or not ----------------------------------------------- */

/* A shape-like value: mostly small, sometimes negative or at the ends of int64.  Never
 * merely large (2^40): a valid request of that size would try to allocate it, which
 * the ASan build reports as an error instead of returning NULL.  At the ends of int64
 * every result overflows the element count or the byte size and is refused. */
static int64_t wild(void) {
    switch (rnd() % 10) {
    case 0:
        return INT64_MIN + (int64_t)(rnd() % 2);
    case 1:
        return INT64_MAX - (int64_t)(rnd() % 2);
    default:
        return rnd_range(-2, 4);
    }
}

static void check_clean(const char *op, floe_status st) {
    if (st != FLOE_OK && st != FLOE_INVALID_ARGUMENT)
        fail_msg("%s returned %s: %s", op, floe_status_str(st), floe_last_error());
}

/* Thousands of random calls: each must succeed or fail with INVALID_ARGUMENT, and never
 * touch memory outside its tensors (the ASan build checks). */
static void random_arguments_succeed_or_fail_cleanly(void **state) {
    floe_context *ctx = *state;
    floe_attrs *a2 = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a2, "N", 2), FLOE_OK);
    for (int trial = 0; trial < 1500; trial++) {
        int nd = (int)rnd_range(0, 4), n = (int)rnd_range(0, 5);
        int64_t dims[FLOE_MAX_DIMS], v[2 * FLOE_MAX_DIMS + 2];
        floe_dtype dt = trial % 4 == 0 ? FLOE_DTYPE_STRING : FLOE_DTYPE_I16;
        for (int d = 0; d < nd; d++)
            dims[d] = rnd_range(0, 4);
        floe_tensor *x = rand_tensor(dt, dims, nd), *in[3];

        for (int k = 0; k < 2 * n; k++)
            v[k] = rnd() % 3 == 0 ? wild() : rnd_range(0, nd > 0 ? nd - 1 : 0);
        in[0] = x;
        in[1] = vec_i64(v, n);
        check_clean("Transpose", tc_run_status(ctx, "Transpose", in, 2, NULL, 1));
        check_clean("Reshape", tc_run_status(ctx, "Reshape", in, 2, NULL, 1));
        check_clean("Tile", tc_run_status(ctx, "Tile", in, 2, NULL, 1));
        floe_tensor_unref(in[1]);
        in[1] = tc_i64((int64_t[]){n, 2}, 2, v);
        check_clean("Pad", tc_run_status(ctx, "Pad", in, 2, NULL, 1));
        floe_tensor_unref(in[1]);
        in[1] = tc_i64(NULL, 0, &v[0]);
        check_clean("ExpandDims", tc_run_status(ctx, "ExpandDims", in, 2, NULL, 1));
        floe_tensor_unref(in[1]);

        /* ConcatV2 of x with a random neighbour along a random axis */
        for (int d = 0; d < nd; d++)
            dims[d] = rnd() % 4 == 0 ? rnd_range(0, 4) : dims[d];
        in[1] = rand_tensor(dt, dims, rnd() % 5 == 0 ? (int)rnd_range(0, 4) : nd);
        in[2] = tc_i64(NULL, 0, (int64_t[]){rnd() % 3 == 0 ? wild() : rnd_range(-nd, nd)});
        check_clean("ConcatV2", tc_run_status(ctx, "ConcatV2", in, 3, a2, 1));
        tc_unref_all(in, 3);
    }
    floe_attrs_free(a2);
}

/* ---- Out of memory ------------------------------------------------------------------ */

/* SQLite's loop: fail the Nth allocation (once, then persistently) for N = 1, 2, ...
 * until the call succeeds; every failing call must say RESOURCE_EXHAUSTED, return no
 * outputs (tc_run_status checks) and leak nothing (LeakSanitizer in the ASan build). */
static void oom_loop(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                     const floe_attrs *a, int nout) {
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (int64_t n = 1;; n++) {
            assert_true(n < 100000);
            floe_testing_fail_alloc(n, persistent);
            floe_status st = tc_run_status(ctx, op, in, nin, a, nout);
            int64_t failures = floe_testing_alloc_failures();
            floe_testing_fail_alloc(0, 0);
            if (failures == 0) {
                if (st != FLOE_OK)
                    fail_msg("%s: %s", op, floe_last_error());
                break;
            }
            if (st != FLOE_RESOURCE_EXHAUSTED)
                fail_msg("%s: allocation %lld failed (%s) but the call returned %s: %s", op,
                         (long long)n, persistent ? "persistent" : "once", floe_status_str(st),
                         floe_last_error());
        }
    }
}

static void string_ops_survive_allocation_failures(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[4];
    floe_attrs *a = tc_attrs_new();

    in[0] = rand_tensor(FLOE_DTYPE_STRING, (int64_t[]){2, 3}, 2);
    in[1] = rand_tensor(FLOE_DTYPE_STRING, (int64_t[]){2, 3}, 2);
    in[2] = rand_tensor(FLOE_DTYPE_STRING, (int64_t[]){2, 3}, 2);
    in[3] = tc_scalar_i32(1);
    assert_int_equal(floe_attrs_set_int(a, "N", 3), FLOE_OK);
    oom_loop(ctx, "ConcatV2", in, 4, a, 1);
    oom_loop(ctx, "Pack", in, 3, a, 1);
    floe_attrs_free(a);
    floe_tensor_unref(in[3]);
    in[3] = vec_i32((int32_t[]){1, 0}, 2);
    oom_loop(ctx, "Transpose", (floe_tensor *[]){in[0], in[3]}, 2, NULL, 1);
    floe_tensor_unref(in[3]);
    in[3] = vec_i32((int32_t[]){2, 2}, 2);
    oom_loop(ctx, "Tile", (floe_tensor *[]){in[0], in[3]}, 2, NULL, 1);
    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "num", 2), FLOE_OK);
    oom_loop(ctx, "Unpack", in, 1, a, 2);
    floe_attrs_free(a);
    tc_unref_all(in, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reshape_random_keeps_element_order),
        cmocka_unit_test(reshape_handles_rank0_and_empty),
        cmocka_unit_test(reshape_rejects_bad_sizes),
        cmocka_unit_test(transpose_random_matches_reference),
        cmocka_unit_test(transpose_large_uses_tiles),
        cmocka_unit_test(transpose_rejects_bad_perm),
        cmocka_unit_test(concat_random_matches_reference),
        cmocka_unit_test(concat_rejects_bad_inputs),
        cmocka_unit_test(pack_unpack_random_match_reference),
        cmocka_unit_test(pack_unpack_reject_bad_inputs),
        cmocka_unit_test(fill_sets_every_element),
        cmocka_unit_test(fill_rejects_bad_inputs),
        cmocka_unit_test(zeros_and_ones_like_every_dtype),
        cmocka_unit_test(range_int_and_float_match_reference),
        cmocka_unit_test(range_rejects_bad_arguments),
        cmocka_unit_test(shape_rank_size_report_the_input),
        cmocka_unit_test(expand_dims_and_squeeze),
        cmocka_unit_test(tile_random_matches_reference),
        cmocka_unit_test(tile_rejects_bad_multiples),
        cmocka_unit_test(pad_random_matches_reference),
        cmocka_unit_test(pad_rejects_bad_paddings),
        cmocka_unit_test(shape_fns_reshape_transpose_concat),
        cmocka_unit_test(shape_fns_pack_fill_range_tile_pad),
        cmocka_unit_test(const_inputs_run_in_a_session),
        cmocka_unit_test(string_ops_survive_allocation_failures),
        cmocka_unit_test(random_arguments_succeed_or_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
