/*
 * test_ops_slice.c - Slice and StridedSlice of ops_math (plugins/ops_math/slice.c), run
 * eagerly on CPU.
 *
 * Slice is checked against a naive reference on random inputs; StridedSlice against a
 * table of Python-indexing cases whose results were worked out by hand from
 * TensorFlow's semantics (x[1:-1:2], x[::-1], x[..., 0], x[:, tf.newaxis], shrinking,
 * clamping, negative strides), and against CPython's slice.indices() rules on random
 * begin/end/strides with begin/end masks.  Rank-0 and empty tensors, STRING copies and
 * every validation error (with its message) are covered.
 */
#include "test_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------------- */

/* Results checked element by element are read as host copies (tc_take_host):
 * tc_assert_elem_eq on a GPU's tensor would copy all of it for every element. */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    return tc_rng_next(&rng);
}

static int64_t rnd_range(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static floe_tensor *rand_tensor(floe_dtype dt, const int64_t *shape, int nd) {
    return tc_rand_bytes(dt, shape, nd, &rng, "e%lld-%llu", 1000);
}

static floe_tensor *vec(bool i64, const int64_t *v, int64_t n) {
    if (i64)
        return tc_i64(&n, 1, v);
    int32_t v32[32];
    for (int64_t i = 0; i < n; i++)
        v32[i] = (int32_t)v[i];
    return tc_i32(&n, 1, v32);
}

static void expect_invalid(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                           const floe_attrs *attrs, const char *needle) {
    tc_expect_invalid(ctx, op, in, nin, attrs, 1, needle);
}

static const floe_dtype data_types[] = {FLOE_DTYPE_F32, FLOE_DTYPE_U8,     FLOE_DTYPE_I16,
                                        FLOE_DTYPE_F64, FLOE_DTYPE_STRING, FLOE_DTYPE_BOOL};
#define NTYPES (sizeof(data_types) / sizeof(data_types[0]))

/* ---- Slice --------------------------------------------------------------------------- */

static void check_slice(floe_context *ctx, floe_dtype dt, const int64_t *dims, int nd,
                        const int64_t *begin, const int64_t *size, bool i64) {
    int64_t od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS];
    floe_tensor *in[3];

    for (int d = 0; d < nd; d++)
        od[d] = size[d] == -1 ? dims[d] - begin[d] : size[d];
    in[0] = rand_tensor(dt, dims, nd);
    in[1] = vec(i64, begin, nd);
    in[2] = vec(i64, size, nd);
    floe_tensor *out = tc_take_host(tc_run1(ctx, "Slice", in, 3, NULL));
    tc_assert_shape(out, dt, od, nd);
    for (int64_t o = 0; o < tc_count(od, nd); o++) {
        tc_unravel(o, od, nd, co);
        for (int d = 0; d < nd; d++)
            co[d] += begin[d];
        tc_assert_elem_eq(out, o, in[0], tc_ravel(co, dims, nd), false);
    }
    floe_tensor_unref(out);
    tc_unref_all(in, 3);
}

static void slice_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 80; trial++) {
        int nd = (int)rnd_range(0, 5);
        int64_t dims[FLOE_MAX_DIMS], begin[FLOE_MAX_DIMS], size[FLOE_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            dims[d] = rnd_range(trial % 9 == 8 ? 0 : 1, 5);
            begin[d] = rnd_range(0, dims[d]);
            size[d] = rnd() % 4 == 0 ? -1 : rnd_range(0, dims[d] - begin[d]);
        }
        check_slice(ctx, data_types[trial % NTYPES], dims, nd, begin, size, trial & 1);
    }
    /* large enough to split rows across threads, and a whole-row slice */
    check_slice(ctx, FLOE_DTYPE_F32, (int64_t[]){500, 300}, 2, (int64_t[]){10, 5},
                (int64_t[]){400, 200}, false);
    check_slice(ctx, FLOE_DTYPE_F64, (int64_t[]){50, 6, 70}, 3, (int64_t[]){3, 0, 0},
                (int64_t[]){20, -1, -1}, true);
}

static void slice_rejects_out_of_bounds(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[3];

    in[0] = tc_f32((int64_t[]){2, 3}, 2, NULL);
    in[1] = vec(false, (int64_t[]){0, 4}, 2);
    in[2] = vec(false, (int64_t[]){1, 0}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected begin[1] in [0, 3], but got 4");
    floe_tensor_unref(in[1]);
    in[1] = vec(false, (int64_t[]){-1, 0}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected begin[0] in [0, 2], but got -1");
    floe_tensor_unref(in[1]);
    floe_tensor_unref(in[2]);
    in[1] = vec(false, (int64_t[]){1, 0}, 2);
    in[2] = vec(false, (int64_t[]){2, 3}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected size[0] in [0, 1], but got 2");
    floe_tensor_unref(in[2]);
    in[2] = vec(false, (int64_t[]){1, -2}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected size[1] in [0, 3], but got -2");
    floe_tensor_unref(in[2]);
    in[2] = vec(true, (int64_t[]){1, INT64_MAX}, 2);
    floe_tensor_unref(in[1]);
    in[1] = vec(true, (int64_t[]){1, 2}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected size[1] in [0, 1]");
    floe_tensor_unref(in[1]);
    floe_tensor_unref(in[2]);
    in[1] = vec(false, (int64_t[]){1, 0}, 2);
    in[2] = vec(false, (int64_t[]){1}, 1);
    expect_invalid(ctx, "Slice", in, 3, NULL, "1-D tensors of size 2");
    tc_unref_all(in, 3);

    /* an empty dim admits only begin 0, size 0 */
    in[0] = tc_f32((int64_t[]){0, 3}, 2, NULL);
    in[1] = vec(false, (int64_t[]){1, 0}, 2);
    in[2] = vec(false, (int64_t[]){0, 3}, 2);
    expect_invalid(ctx, "Slice", in, 3, NULL, "Expected begin[0] == 0 (got 1)");
    tc_unref_all(in, 3);
}

/* ---- StridedSlice: hand-derived table ------------------------------------------------- */

typedef struct ss_case {
    const char *python; /* what the case means */
    int input;          /* 1: x = arange(6); 3: y = arange(24).reshape(2, 3, 4) */
    int n;
    int64_t begin[6], end[6], strides[6];
    int begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask;
    int ndim;
    int64_t shape[4];
    int32_t values[24];
} ss_case;

static const ss_case ss_cases[] = {
    {"x[1:-1:2]", 1, 1, {1}, {-1}, {2}, 0, 0, 0, 0, 0, 1, {2}, {1, 3}},
    {"x[::-1]", 1, 1, {0}, {0}, {-1}, 1, 1, 0, 0, 0, 1, {6}, {5, 4, 3, 2, 1, 0}},
    {"x[-2:]", 1, 1, {-2}, {0}, {1}, 0, 1, 0, 0, 0, 1, {2}, {4, 5}},
    {"x[4:1:-1]", 1, 1, {4}, {1}, {-1}, 0, 0, 0, 0, 0, 1, {3}, {4, 3, 2}},
    {"x[10:]", 1, 1, {10}, {0}, {1}, 0, 1, 0, 0, 0, 1, {0}, {0}},
    {"x[-100:2]", 1, 1, {-100}, {2}, {1}, 0, 0, 0, 0, 0, 1, {2}, {0, 1}},
    {"x[3]", 1, 1, {3}, {4}, {1}, 0, 0, 0, 0, 1, 0, {0}, {3}},
    {"x[-1]", 1, 1, {-1}, {0}, {1}, 0, 0, 0, 0, 1, 0, {0}, {5}},
    {"x[:, tf.newaxis]",
     1,
     2,
     {0, 0},
     {0, 0},
     {1, 1},
     1,
     1,
     0,
     2,
     0,
     2,
     {6, 1},
     {0, 1, 2, 3, 4, 5}},
    {"x[tf.newaxis]", 1, 1, {0}, {0}, {1}, 0, 0, 0, 1, 0, 2, {1, 6}, {0, 1, 2, 3, 4, 5}},
    {"x[5:0:-2]", 1, 1, {5}, {0}, {-2}, 0, 0, 0, 0, 0, 1, {3}, {5, 3, 1}},
    {"x[::2]", 1, 1, {0}, {0}, {2}, 1, 1, 0, 0, 0, 1, {3}, {0, 2, 4}},
    {"x[::-4]", 1, 1, {0}, {0}, {-4}, 1, 1, 0, 0, 0, 1, {2}, {5, 1}},
    {"x[100:-100:-1]", 1, 1, {100}, {-100}, {-1}, 0, 0, 0, 0, 0, 1, {6}, {5, 4, 3, 2, 1, 0}},
    {"x[...]", 1, 1, {0}, {0}, {1}, 0, 0, 1, 0, 0, 1, {6}, {0, 1, 2, 3, 4, 5}},
    {"x[2:2]", 1, 1, {2}, {2}, {1}, 0, 0, 0, 0, 0, 1, {0}, {0}},
    {"x[1:-1:-1] (wrong direction)", 1, 1, {1}, {-1}, {-1}, 0, 0, 0, 0, 0, 1, {0}, {0}},
    {"y[..., 0]", 3, 2, {0, 0}, {0, 1}, {1, 1}, 0, 0, 1, 0, 2, 2, {2, 3}, {0, 4, 8, 12, 16, 20}},
    {"y[1, ...]",
     3,
     2,
     {1, 0},
     {2, 0},
     {1, 1},
     0,
     0,
     2,
     0,
     1,
     2,
     {3, 4},
     {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}},
    {"y[:, 1:, ::-1]",
     3,
     3,
     {0, 1, 0},
     {0, 0, 0},
     {1, 1, -1},
     5,
     7,
     0,
     0,
     0,
     3,
     {2, 2, 4},
     {7, 6, 5, 4, 11, 10, 9, 8, 19, 18, 17, 16, 23, 22, 21, 20}},
    {"y[..., tf.newaxis, 1]",
     3,
     3,
     {0, 0, 1},
     {0, 0, 2},
     {1, 1, 1},
     0,
     0,
     1,
     2,
     4,
     3,
     {2, 3, 1},
     {1, 5, 9, 13, 17, 21}},
    {"y[0, tf.newaxis, :, 2]",
     3,
     4,
     {0, 0, 0, 2},
     {1, 0, 0, 3},
     {1, 1, 1, 1},
     4,
     4,
     0,
     2,
     9,
     2,
     {1, 3},
     {2, 6, 10}},
    {"y[1:2]",
     3,
     1,
     {1},
     {2},
     {1},
     0,
     0,
     0,
     0,
     0,
     3,
     {1, 3, 4},
     {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}},
    {"y[-1, -1, -1]", 3, 3, {-1, -1, -1}, {0, 0, 0}, {1, 1, 1}, 0, 0, 0, 0, 7, 0, {0}, {23}},
    {"y[:, ::-2]",
     3,
     2,
     {0, 0},
     {0, 0},
     {1, -2},
     3,
     3,
     0,
     0,
     0,
     3,
     {2, 2, 4},
     {8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 12, 13, 14, 15}},
    {"y[..., 1:3]",
     3,
     2,
     {0, 1},
     {0, 3},
     {1, 1},
     0,
     0,
     1,
     0,
     0,
     3,
     {2, 3, 2},
     {1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}},
    {"y[1, -2:, 3:0:-2]",
     3,
     3,
     {1, -2, 3},
     {2, 0, 0},
     {1, 1, -2},
     0,
     2,
     0,
     0,
     1,
     2,
     {2, 2},
     {19, 17, 23, 21}},
};

static floe_tensor *arange_i32(const int64_t *dims, int nd) {
    int32_t v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    return tc_i32(dims, nd, v);
}

static floe_attrs *ss_attrs(int bm, int em, int elm, int nam, int sam) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "begin_mask", bm), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "end_mask", em), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "ellipsis_mask", elm), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "new_axis_mask", nam), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "shrink_axis_mask", sam), FLOE_OK);
    return a;
}

static void strided_slice_table(void **state) {
    floe_context *ctx = *state;
    for (size_t c = 0; c < sizeof(ss_cases) / sizeof(ss_cases[0]); c++) {
        const ss_case *k = &ss_cases[c];
        bool i64 = c & 1;
        floe_tensor *in[4];
        in[0] = k->input == 1 ? arange_i32((int64_t[]){6}, 1) : arange_i32((int64_t[]){2, 3, 4}, 3);
        in[1] = vec(i64, k->begin, k->n);
        in[2] = vec(i64, k->end, k->n);
        in[3] = vec(i64, k->strides, k->n);
        floe_attrs *a = ss_attrs(k->begin_mask, k->end_mask, k->ellipsis_mask, k->new_axis_mask,
                                 k->shrink_axis_mask);
        floe_tensor *out = NULL;
        floe_status st = floe_eager_run(ctx, "StridedSlice", NULL, in, 4, a, &out, 1);
        if (st != FLOE_OK)
            fail_msg("%s: %s", k->python, floe_last_error());
        if (floe_tensor_ndim(out) != k->ndim)
            fail_msg("%s: rank %d, expected %d", k->python, floe_tensor_ndim(out), k->ndim);
        tc_assert_shape(out, FLOE_DTYPE_I32, k->shape, k->ndim);
        out = tc_take_host(out);               /* a host copy of a GPU's */
        int64_t n = floe_tensor_num_elements(out);
        if (n > 0 && memcmp(floe_tensor_data(out), k->values, (size_t)n * 4) != 0)
            fail_msg("%s: wrong values (first %d)", k->python,
                     ((int32_t *)floe_tensor_data(out))[0]);
        floe_tensor_unref(out);
        floe_attrs_free(a);
        tc_unref_all(in, 4);
    }
}

/* ---- StridedSlice: random cases against CPython's slice rules ------------------------- */

/* slice(start, stop, step).indices(length) as CPython computes it; *has_start == false
 * for a masked (None) start. */
static int64_t py_slice(int64_t length, bool has_start, int64_t start, bool has_stop, int64_t stop,
                        int64_t step, int64_t *first) {
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? length - 1 : length;
    if (!has_start) {
        start = step < 0 ? upper : lower;
    } else if (start < 0) {
        start += length;
        if (start < 0)
            start = lower;
    } else if (start > upper) {
        start = upper;
    }
    if (!has_stop) {
        stop = step < 0 ? lower : upper;
    } else if (stop < 0) {
        stop += length;
        if (stop < 0)
            stop = lower;
    } else if (stop > upper) {
        stop = upper;
    }
    *first = start;
    if (step < 0)
        return stop < start ? (start - stop - 1) / (-step) + 1 : 0;
    return start < stop ? (stop - start - 1) / step + 1 : 0;
}

static void strided_slice_random_matches_python(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 150; trial++) {
        floe_dtype dt = data_types[trial % NTYPES];
        int nd = (int)rnd_range(1, 4), n = (int)rnd_range(1, nd);
        int64_t dims[FLOE_MAX_DIMS], b[FLOE_MAX_DIMS], e[FLOE_MAX_DIMS], s[FLOE_MAX_DIMS];
        int64_t first[FLOE_MAX_DIMS], step[FLOE_MAX_DIMS], od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS];
        int bm = 0, em = 0;
        for (int d = 0; d < nd; d++) {
            dims[d] = rnd_range(trial % 10 == 9 ? 0 : 1, 6);
            first[d] = 0;
            step[d] = 1;
            od[d] = dims[d];
        }
        for (int d = 0; d < n; d++) {
            b[d] = rnd_range(-8, 8);
            e[d] = rnd_range(-8, 8);
            do
                s[d] = rnd_range(-3, 3);
            while (s[d] == 0);
            if (rnd() % 4 == 0)
                bm |= 1 << d;
            if (rnd() % 4 == 0)
                em |= 1 << d;
            od[d] = py_slice(dims[d], !(bm >> d & 1), b[d], !(em >> d & 1), e[d], s[d], &first[d]);
            step[d] = s[d];
        }
        floe_tensor *in[4] = {rand_tensor(dt, dims, nd), vec(trial & 1, b, n), vec(trial & 1, e, n),
                              vec(trial & 1, s, n)};
        floe_attrs *a = ss_attrs(bm, em, 0, 0, 0);
        floe_tensor *out = tc_take_host(tc_run1(ctx, "StridedSlice", in, 4, a));
        tc_assert_shape(out, dt, od, nd);
        for (int64_t o = 0; o < tc_count(od, nd); o++) {
            tc_unravel(o, od, nd, co);
            for (int d = 0; d < nd; d++)
                co[d] = first[d] + co[d] * step[d];
            tc_assert_elem_eq(out, o, in[0], tc_ravel(co, dims, nd), false);
        }
        floe_tensor_unref(out);
        floe_attrs_free(a);
        tc_unref_all(in, 4);
    }
}

static void strided_slice_large_reverse(void **state) {
    floe_context *ctx = *state;
    int64_t dims[2] = {400, 300}, co[2];
    floe_tensor *in[4] = {rand_tensor(FLOE_DTYPE_F32, dims, 2), vec(false, (int64_t[]){0, 0}, 2),
                          vec(false, (int64_t[]){0, 0}, 2), vec(false, (int64_t[]){-1, -3}, 2)};
    floe_attrs *a = ss_attrs(3, 3, 0, 0, 0);
    floe_tensor *out = tc_take_host(tc_run1(ctx, "StridedSlice", in, 4, a));
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){400, 100}, 2);
    for (int64_t o = 0; o < 40000; o++) {
        tc_unravel(o, (int64_t[]){400, 100}, 2, co);
        tc_assert_elem_eq(out, o, in[0], (399 - co[0]) * 300 + 299 - 3 * co[1], false);
    }
    floe_tensor_unref(out);
    floe_attrs_free(a);
    tc_unref_all(in, 4);
}

/* ---- StridedSlice: errors ----------------------------------------------------------- */

static void check_ss_error(floe_context *ctx, floe_tensor *x, int n, const int64_t *b,
                           const int64_t *e, const int64_t *s, int bm, int em, int elm, int nam,
                           int sam, const char *needle) {
    floe_tensor *in[4] = {x, vec(false, b, n), vec(false, e, n), vec(false, s, n)};
    floe_attrs *a = ss_attrs(bm, em, elm, nam, sam);
    expect_invalid(ctx, "StridedSlice", in, 4, a, needle);
    floe_attrs_free(a);
    tc_unref_all(in + 1, 3);
}

static void strided_slice_rejects_bad_specs(void **state) {
    floe_context *ctx = *state;
    floe_tensor *x = arange_i32((int64_t[]){6}, 1);

    check_ss_error(ctx, x, 1, (int64_t[]){0}, (int64_t[]){6}, (int64_t[]){0}, 0, 0, 0, 0, 0,
                   "strides[0] must be non-zero");
    check_ss_error(ctx, x, 1, (int64_t[]){6}, (int64_t[]){7}, (int64_t[]){1}, 0, 0, 0, 0, 1,
                   "slice index 6 of dimension 0 out of bounds");
    check_ss_error(ctx, x, 1, (int64_t[]){-7}, (int64_t[]){0}, (int64_t[]){1}, 0, 0, 0, 0, 1,
                   "slice index -1 of dimension 0 out of bounds");
    check_ss_error(ctx, x, 1, (int64_t[]){2}, (int64_t[]){3}, (int64_t[]){-1}, 0, 0, 0, 0, 1,
                   "only stride 1 allowed on non-range indexing");
    check_ss_error(ctx, x, 2, (int64_t[]){0, 0}, (int64_t[]){0, 0}, (int64_t[]){1, 1}, 0, 0, 3, 0,
                   0, "Multiple ellipses");
    check_ss_error(ctx, x, 2, (int64_t[]){1, 2}, (int64_t[]){2, 3}, (int64_t[]){1, 1}, 0, 0, 0, 0,
                   0, "Index out of range using input dim 1");
    check_ss_error(ctx, x, 9, (int64_t[9]){0}, (int64_t[9]){0},
                   (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0xff, 0,
                   "more than 8 dimensions");

    /* begin, end and strides of different lengths */
    floe_tensor *in[4] = {x, vec(false, (int64_t[]){0, 1}, 2), vec(false, (int64_t[]){1}, 1),
                          vec(false, (int64_t[]){1}, 1)};
    floe_attrs *a = ss_attrs(0, 0, 0, 0, 0);
    expect_invalid(ctx, "StridedSlice", in, 4, a, "1D equal size");
    tc_unref_all(in + 1, 3);
    floe_tensor_unref(x);

    /* a scalar cannot be indexed */
    x = tc_scalar_i32(7);
    check_ss_error(ctx, x, 1, (int64_t[]){0}, (int64_t[]){1}, (int64_t[]){1}, 0, 0, 0, 0, 1,
                   "Attempting to slice scalar input");
    /* ... but x[...] and x[tf.newaxis] are fine */
    in[0] = x;
    in[1] = vec(false, (int64_t[]){0}, 1);
    in[2] = vec(false, (int64_t[]){0}, 1);
    in[3] = vec(false, (int64_t[]){1}, 1);
    floe_attrs_free(a);
    a = ss_attrs(0, 0, 1, 0, 0);
    floe_tensor *out = tc_run1(ctx, "StridedSlice", in, 4, a);
    tc_assert_shape(out, FLOE_DTYPE_I32, NULL, 0);
    assert_int_equal(tc_get_i(out, 0), 7);
    floe_tensor_unref(out);
    floe_attrs_free(a);
    a = ss_attrs(0, 0, 0, 1, 0);
    out = tc_run1(ctx, "StridedSlice", in, 4, a);
    tc_assert_shape(out, FLOE_DTYPE_I32, (int64_t[]){1}, 1);
    assert_int_equal(tc_get_i(out, 0), 7);
    floe_tensor_unref(out);
    floe_attrs_free(a);
    tc_unref_all(in, 4);
}

/* ---- Random specs, valid or not ------------------------------------------------------ */

/* A value that is often in range, sometimes far outside it. */
static int64_t wild(int64_t dim) {
    switch (rnd() % 8) {
    case 0:
        return INT64_MIN + (int64_t)(rnd() % 3);
    case 1:
        return INT64_MAX - (int64_t)(rnd() % 3);
    case 2:
        return rnd_range(-100, 100);
    default:
        return rnd_range(-dim - 2, dim + 2);
    }
}

/* Thousands of random specs, masks included: each call must succeed or fail with
 * INVALID_ARGUMENT, never read outside the input (the ASan build checks). */
static void random_specs_succeed_or_fail_cleanly(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 3000; trial++) {
        int nd = (int)rnd_range(0, 4), n = (int)rnd_range(0, 6);
        int64_t dims[FLOE_MAX_DIMS], b[8], e[8], st[8];
        for (int d = 0; d < nd; d++)
            dims[d] = rnd_range(0, 4);
        for (int k = 0; k < n; k++) {
            b[k] = wild(4);
            e[k] = wild(4);
            st[k] = rnd() % 10 == 0 ? wild(4) : rnd_range(-3, 3);
        }
        floe_tensor *in[4] = {
            rand_tensor(trial % 5 == 0 ? FLOE_DTYPE_STRING : FLOE_DTYPE_F32, dims, nd),
            vec(true, b, n), vec(true, e, n), vec(true, st, n)};
        floe_attrs *a = ss_attrs(
            (int)(rnd() & 0x3f), (int)(rnd() & 0x3f), rnd() % 3 == 0 ? 1 << (rnd() % 6) : 0,
            rnd() % 3 == 0 ? (int)(rnd() & 0x3f) : 0, rnd() % 3 == 0 ? (int)(rnd() & 0x3f) : 0);
        floe_status status = tc_run_status(ctx, "StridedSlice", in, 4, a, 1);
        if (status != FLOE_OK && status != FLOE_INVALID_ARGUMENT)
            fail_msg("StridedSlice returned %s: %s", floe_status_str(status), floe_last_error());
        floe_attrs_free(a);
        tc_unref_all(in + 1, 3);

        /* Slice with the same input */
        for (int d = 0; d < nd; d++) {
            b[d] = rnd() % 4 == 0 ? wild(dims[d]) : rnd_range(0, dims[d]);
            e[d] = rnd() % 4 == 0 ? wild(dims[d]) : rnd_range(-1, dims[d]);
        }
        in[1] = vec(true, b, nd);
        in[2] = vec(true, e, nd);
        status = tc_run_status(ctx, "Slice", in, 3, NULL, 1);
        if (status != FLOE_OK && status != FLOE_INVALID_ARGUMENT)
            fail_msg("Slice returned %s: %s", floe_status_str(status), floe_last_error());
        tc_unref_all(in, 3);
    }
}

/* ---- Shape functions: graphs with Const inputs ------------------------------------------ */

/* Eager calls feed Placeholders, so these build graphs whose shape, perm, axis, ... inputs
 * are Consts, to check that shape inference uses their values and rejects bad ones when
 * the node is built. */

#define U (-1)

static floe_tensor *vec_i32(const int32_t *v, int64_t n) {
    return tc_i32(&n, 1, v);
}

static void shape_fns_slice_and_strided_slice(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *x = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){5, U, 4}, 3);
    floe_node *b = tc_g_const(g, vec_i32((int32_t[]){1, 0, 2}, 3));

    tc_expect_shape(g, "Slice",
                    (floe_node *[]){x, b, tc_g_const(g, vec_i32((int32_t[]){-1, 3, -1}, 3))}, 3, 0,
                    NULL, 0, (int64_t[]){4, 3, 2}, 3);
    tc_expect_shape(g, "Slice",
                    (floe_node *[]){x, tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){3}, 1),
                                    tc_g_const(g, vec_i32((int32_t[]){2, -1, 1}, 3))},
                    3, 0, NULL, 0, (int64_t[]){2, U, 1}, 3);
    tc_expect_build_error(g, "Slice",
                          (floe_node *[]){x, b, tc_g_const(g, vec_i32((int32_t[]){5, 1, 1}, 3))}, 3,
                          0, NULL, "Expected size[0] in [0, 4], but got 5");
    tc_expect_build_error(g, "Slice",
                          (floe_node *[]){x, b, tc_g_const(g, vec_i32((int32_t[]){1, 1}, 2))}, 3, 0,
                          NULL, "1-D tensors of size 3");

    /* x[..., 0] and x[1:-1:2] with every value known */
    floe_attrs *a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "ellipsis_mask", 1), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "shrink_axis_mask", 2), FLOE_OK);
    tc_expect_shape(g, "StridedSlice",
                    (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){0, 0}, 2)),
                                    tc_g_const(g, vec_i32((int32_t[]){0, 1}, 2)),
                                    tc_g_const(g, vec_i32((int32_t[]){1, 1}, 2))},
                    4, 0, a, 0, (int64_t[]){5, U}, 2);
    floe_attrs_free(a);
    tc_expect_shape(g, "StridedSlice",
                    (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){1}, 1)),
                                    tc_g_const(g, vec_i32((int32_t[]){-1}, 1)),
                                    tc_g_const(g, vec_i32((int32_t[]){2}, 1))},
                    4, 0, NULL, 0, (int64_t[]){2, U, 4}, 3);
    /* begin unknown: the sliced dim is unknown, the rest (implicit ellipsis) known */
    tc_expect_shape(g, "StridedSlice",
                    (floe_node *[]){x, tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){1}, 1),
                                    tc_g_const(g, vec_i32((int32_t[]){3}, 1)),
                                    tc_g_const(g, vec_i32((int32_t[]){1}, 1))},
                    4, 0, NULL, 0, (int64_t[]){U, U, 4}, 3);
    /* strides unknown: nothing is known */
    tc_expect_shape(g, "StridedSlice",
                    (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){1}, 1)),
                                    tc_g_const(g, vec_i32((int32_t[]){3}, 1)),
                                    tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){1}, 1)},
                    4, 0, NULL, 0, NULL, -1);
    tc_expect_build_error(g, "StridedSlice",
                          (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){1}, 1)),
                                          tc_g_const(g, vec_i32((int32_t[]){3}, 1)),
                                          tc_g_const(g, vec_i32((int32_t[]){0}, 1))},
                          4, 0, NULL, "strides[0] must be non-zero");
    a = tc_attrs_new();
    assert_int_equal(floe_attrs_set_int(a, "shrink_axis_mask", 1), FLOE_OK);
    tc_expect_build_error(g, "StridedSlice",
                          (floe_node *[]){x, tc_g_const(g, vec_i32((int32_t[]){5}, 1)),
                                          tc_g_const(g, vec_i32((int32_t[]){6}, 1)),
                                          tc_g_const(g, vec_i32((int32_t[]){1}, 1))},
                          4, 0, a, "slice index 5 of dimension 0 out of bounds");
    floe_attrs_free(a);
    floe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slice_random_matches_reference),
        cmocka_unit_test(slice_rejects_out_of_bounds),
        cmocka_unit_test(strided_slice_table),
        cmocka_unit_test(strided_slice_random_matches_python),
        cmocka_unit_test(strided_slice_large_reverse),
        cmocka_unit_test(strided_slice_rejects_bad_specs),
        cmocka_unit_test(random_specs_succeed_or_fail_cleanly),
        cmocka_unit_test(shape_fns_slice_and_strided_slice),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
