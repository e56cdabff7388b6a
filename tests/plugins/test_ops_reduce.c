/*
 * test_ops_reduce.c - the reductions of ops_math (reduce.c): Sum, Mean, Max, Min, Prod,
 * ArgMax, ArgMin.
 *
 * Each op runs eagerly on random inputs and is compared with naive loops in double (or
 * exact int64 arithmetic), over axes that exercise every path of the kernel: all axes,
 * inner, outer and middle groups, several separate groups (several passes), negative
 * and unordered axes, extent-1 axes, rank 0 and rank 5, keep_dims, i32 and i64 axes,
 * and sizes that split across threads (by output, and by the reduced axis).  Then the
 * identities of empty reductions, NaN, the accuracy of long f32 sums, invalid axes and
 * the shape function with constant and unknown axes.
 *
 * Sections: helpers; float reductions; integer reductions; empty and special values;
 * ArgMax/ArgMin; errors; shape inference.
 */
#include "test_common.h"

#include <floe/experimental/testing.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

static floe_tensor *rand_tensor(floe_dtype dt, const int64_t *shape, int nd, double lo,
                                double hi, uint64_t seed) {
    return tc_rand_tensor_stream(dt, shape, nd, lo, hi, seed * 0x9E3779B97F4A7C15ull + 11);
}

/* Axes as a 1-D tensor of dtype @dt (i32 or i64); @n < 0 makes a scalar of axes[0]. */
static floe_tensor *axes_tensor(floe_dtype dt, const int64_t *axes, int n) {
    int64_t len = n < 0 ? 1 : n;
    floe_tensor *t = tc_tensor(dt, &len, n < 0 ? 0 : 1, NULL);
    for (int i = 0; i < len; i++) {
        if (dt == FLOE_DTYPE_I32)
            ((int32_t *)floe_tensor_data(t))[i] = (int32_t)axes[i];
        else
            ((int64_t *)floe_tensor_data(t))[i] = axes[i];
    }
    return t;
}

static floe_attrs *keep_attrs(int keep) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, "keep_dims", keep), FLOE_OK);
    return a;
}

/* Runs reduction @op of @x over @axes, asserting success.  The result is a host copy of
 * a GPU's: the cases read it element by element, and tc_get_i/tc_get_f on a device
 * tensor copy all of it for every element. */
static floe_tensor *reduce(floe_context *ctx, const char *op, floe_tensor *x, const int64_t *axes,
                           int naxes, int keep, floe_dtype axes_dt) {
    floe_tensor *ax = axes_tensor(axes_dt, axes, naxes);
    floe_attrs *a = keep_attrs(keep);
    floe_tensor *in[2] = {x, ax};
    floe_tensor *y = tc_take_host(tc_run1(ctx, op, in, 2, a));
    floe_attrs_free(a);
    floe_tensor_unref(ax);
    return y;
}

/* The reference's bookkeeping: for input flat index @i of shape @shape, the flat index
 * of its output element (reduced dims dropped). */
static int64_t out_index(int64_t i, const int64_t *shape, int nd, const bool *red) {
    int64_t o = 0, stride = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int64_t c = i % shape[d];
        i /= shape[d];
        if (!red[d]) {
            o += c * stride;
            stride *= shape[d];
        }
    }
    return o;
}

/* Expected output shape for @axes into @out; returns its rank. */
static int expected_shape(const int64_t *shape, int nd, const bool *red, int keep, int64_t *out) {
    int r = 0;
    for (int d = 0; d < nd; d++)
        if (!red[d] || keep)
            out[r++] = red[d] ? 1 : shape[d];
    return r;
}

typedef struct red_case {
    int nd;
    int64_t shape[5];
    int naxes;            /* -1: a scalar axis */
    int64_t axes[5];
} red_case;

static const red_case cases[] = {
    {0, {0}, 0, {0}},                          /* rank 0, no axes */
    {1, {7}, 1, {0}},
    {1, {7}, 0, {0}},                          /* nothing reduced */
    {1, {7}, -1, {-1}},                        /* scalar axis */
    {2, {3, 4}, 1, {0}},                       /* outer */
    {2, {3, 4}, 1, {1}},                       /* inner */
    {2, {3, 4}, 2, {1, 0}},                    /* all, unordered */
    {3, {2, 3, 4}, 1, {1}},                    /* middle */
    {3, {2, 3, 4}, 2, {0, 2}},                 /* two groups: two passes */
    {3, {2, 1, 4}, 1, {1}},                    /* only an extent-1 axis */
    {3, {2, 1, 4}, 2, {0, 1}},
    {5, {2, 3, 1, 4, 5}, 3, {0, 2, 4}},        /* rank 5 */
    {5, {2, 3, 2, 4, 5}, 2, {-4, -2}},
    {5, {2, 3, 2, 4, 5}, 3, {0, 2, 4}},        /* three groups */
    {2, {300, 257}, 1, {0}},                   /* split by output columns */
    {2, {300, 257}, 1, {1}},                   /* split by output rows */
    {1, {200003}, 1, {0}},                     /* split the reduced axis */
    {2, {3, 70001}, 1, {1}},
    {2, {70001, 3}, 1, {0}},                   /* reduced axis split, I > 1 */
    {3, {5, 5000, 9}, 1, {1}},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static void case_flags(const red_case *c, bool *red) {
    memset(red, 0, 8 * sizeof(bool));
    int n = c->naxes < 0 ? 1 : c->naxes;
    for (int i = 0; i < n; i++)
        red[c->axes[i] < 0 ? c->axes[i] + c->nd : c->axes[i]] = true;
}

/* ---- Float reductions -------------------------------------------------------------- */

static const char *const red_ops[5] = {"Sum", "Mean", "Max", "Min", "Prod"};

static void check_float_case(floe_context *ctx, floe_dtype dt, int op, const red_case *c,
                             int keep, floe_dtype axes_dt, uint64_t seed) {
    bool red[8];
    int64_t oshape[8];
    case_flags(c, red);
    int ond = expected_shape(c->shape, c->nd, red, keep, oshape);
    double lo = op == 4 ? 0.999 : -5, hi = op == 4 ? 1.001 : 5;
    floe_tensor *x = rand_tensor(dt, c->shape, c->nd, lo, hi, seed);
    floe_tensor *y = reduce(ctx, red_ops[op], x, c->axes, c->naxes, keep, axes_dt);
    tc_assert_shape(y, dt, oshape, ond);
    int64_t n_in = floe_tensor_num_elements(x), n_out = floe_tensor_num_elements(y);
    double *acc = malloc(sizeof(double) * (size_t)n_out), *mag = calloc((size_t)n_out, sizeof(double));
    for (int64_t o = 0; o < n_out; o++)
        acc[o] = op == 0 || op == 1 ? 0 : op == 2 ? -INFINITY : op == 3 ? INFINITY : 1;
    for (int64_t i = 0; i < n_in; i++) {
        int64_t o = out_index(i, c->shape, c->nd, red);
        double v = tc_get_f(x, i);
        mag[o] += fabs(v);
        switch (op) {
        case 0: case 1: acc[o] += v; break;
        case 2: acc[o] = v > acc[o] ? v : acc[o]; break;
        case 3: acc[o] = v < acc[o] ? v : acc[o]; break;
        default: acc[o] *= v; break;
        }
    }
    int64_t count = n_out > 0 ? n_in / n_out : 0;
    for (int64_t o = 0; o < n_out; o++) {
        double e = op == 1 ? acc[o] / (double)count : acc[o];
        double m = op == 1 ? mag[o] / (double)count : op <= 1 ? mag[o] : fabs(e);
        double tol = dt == FLOE_DTYPE_F32 ? 1e-6 * m + 1e-30 : 1e-13 * m + 1e-300;
        if (op == 4)
            tol = (dt == FLOE_DTYPE_F32 ? 1e-6 : 1e-12) * fabs(e);
        double g = tc_get_f(y, o);
        if (!(fabs(g - e) <= tol))
            fail_msg("%s %s case shape[0]=%lld nd=%d element %lld: got %.12g, expected %.12g",
                     red_ops[op], floe_dtype_name(dt), (long long)c->shape[0], c->nd,
                     (long long)o, g, e);
    }
    free(acc);
    free(mag);
    floe_tensor_unref(x);
    floe_tensor_unref(y);
}

static void reduce_float_matches_reference(void **state) {
    for (int op = 0; op < 5; op++)
        for (int k = 0; k < NCASES; k++) {
            check_float_case(*state, FLOE_DTYPE_F32, op, &cases[k], k % 2,
                             k % 3 ? FLOE_DTYPE_I32 : FLOE_DTYPE_I64, (uint64_t)(op * 100 + k));
            if (k % 2 == 0)
                check_float_case(*state, FLOE_DTYPE_F64, op, &cases[k], (k / 2) % 2,
                                 FLOE_DTYPE_I64, (uint64_t)(op * 100 + k + 50));
        }
}

static void sum_f32_is_accurate_for_long_rows(void **state) {
    const int64_t n = 4000000;
    float *x = malloc(sizeof(float) * (size_t)n);
    double exact = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0.1f + (float)(i % 7) * 1e-3f;
        exact += x[i];
    }
    floe_tensor *t = tc_f32(&n, 1, x);
    const int64_t axis = 0;
    floe_tensor *y = reduce(*state, "Sum", t, &axis, 1, 0, FLOE_DTYPE_I32);
    /* one f32 rounding of the exact sum; naive f32 accumulation is off by ~1e-2 here */
    assert_true(fabs(tc_get_f(y, 0) - exact) <= 1e-7 * exact);
    floe_tensor_unref(y);
    y = reduce(*state, "Mean", t, &axis, 1, 0, FLOE_DTYPE_I32);
    assert_true(fabs(tc_get_f(y, 0) - exact / (double)n) <= 1e-7 * exact / (double)n);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    free(x);
}

/* ---- Integer reductions ------------------------------------------------------------- */

static void reduce_int_matches_reference(void **state) {
    const floe_dtype dts[5] = {FLOE_DTYPE_I32, FLOE_DTYPE_I64, FLOE_DTYPE_I8, FLOE_DTYPE_I16,
                               FLOE_DTYPE_U8};
    for (int t = 0; t < 5; t++)
        for (int op = 0; op < 5; op++)
            for (int k = t % 2; k < NCASES; k += 2) {
                const red_case *c = &cases[k];
                bool red[8];
                int64_t oshape[8];
                case_flags(c, red);
                int ond = expected_shape(c->shape, c->nd, red, k % 3 == 0, oshape);
                double lo = dts[t] == FLOE_DTYPE_U8 ? 0 : -120, hi = dts[t] == FLOE_DTYPE_U8 ? 255 : 120;
                if (dts[t] == FLOE_DTYPE_I32 && op == 0)
                    lo = -2e9, hi = 2e9;    /* sums wrap */
                floe_tensor *x = rand_tensor(dts[t], c->shape, c->nd, lo, hi, (uint64_t)(t * 999 + k));
                floe_tensor *y = reduce(*state, red_ops[op], x, c->axes, c->naxes, k % 3 == 0,
                                        FLOE_DTYPE_I32);
                tc_assert_shape(y, dts[t], oshape, ond);
                int64_t n_in = floe_tensor_num_elements(x), n_out = floe_tensor_num_elements(y);
                int64_t *acc = malloc(sizeof(int64_t) * (size_t)n_out);
                for (int64_t o = 0; o < n_out; o++)
                    acc[o] = op <= 1 ? 0 : op == 2 ? INT64_MIN : op == 3 ? INT64_MAX : 1;
                for (int64_t i = 0; i < n_in; i++) {
                    int64_t o = out_index(i, c->shape, c->nd, red), v = tc_get_i(x, i);
                    switch (op) {
                    case 0: case 1: acc[o] = (int64_t)((uint64_t)acc[o] + (uint64_t)v); break;
                    case 2: acc[o] = v > acc[o] ? v : acc[o]; break;
                    case 3: acc[o] = v < acc[o] ? v : acc[o]; break;
                    default: acc[o] = (int64_t)((uint64_t)acc[o] * (uint64_t)v); break;
                    }
                }
                int64_t count = n_out > 0 ? n_in / n_out : 0;
                for (int64_t o = 0; o < n_out; o++) {
                    int64_t e = tc_wrap_to(dts[t], op == 1 ? acc[o] / count : acc[o]);
                    if (tc_get_i(y, o) != e)
                        fail_msg("%s %s case %d element %lld: got %lld, expected %lld",
                                 red_ops[op], floe_dtype_name(dts[t]), k, (long long)o,
                                 (long long)tc_get_i(y, o), (long long)e);
                }
                free(acc);
                floe_tensor_unref(x);
                floe_tensor_unref(y);
            }
}

static void mean_of_integers_truncates(void **state) {
    const int64_t s[1] = {4};
    const int32_t x[4] = {1, 2, 2, 2};          /* 7 / 4 = 1 */
    const int8_t x8[4] = {100, 100, 100, -101}; /* 199 / 4 = 49: summed wider than i8 */
    const int64_t axis = 0;
    floe_tensor *t = tc_i32(s, 1, x);
    floe_tensor *y = reduce(*state, "Mean", t, &axis, 1, 0, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 1);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    t = tc_tensor(FLOE_DTYPE_I8, s, 1, x8);
    y = reduce(*state, "Mean", t, &axis, 1, 0, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 49);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    const int32_t xn[4] = {-1, -2, -2, -2};     /* -7 / 4 = -1 (toward zero) */
    t = tc_i32(s, 1, xn);
    y = reduce(*state, "Mean", t, &axis, 1, 0, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), -1);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
}

/* ---- Empty and special values ------------------------------------------------------ */

static floe_tensor *argop(floe_context *ctx, const char *op, floe_tensor *x, int64_t axis,
                          floe_dtype out_type, floe_dtype axis_dt);

static void empty_reductions_give_identity(void **state) {
    const int64_t s[2] = {0, 3}, s3[1] = {3}, s0[1] = {0};
    const int64_t axis0 = 0, axis1 = 1;
    floe_tensor *x = tc_f32(s, 2, NULL);
    const float ident[5] = {0, NAN, -INFINITY, INFINITY, 1};
    for (int op = 0; op < 5; op++) {
        floe_tensor *y = reduce(*state, red_ops[op], x, &axis0, 1, 0, FLOE_DTYPE_I32);
        tc_assert_shape(y, FLOE_DTYPE_F32, s3, 1);
        float e[3] = {ident[op], ident[op], ident[op]};
        tc_assert_close_f32(y, e, 3, 0, 0);
        floe_tensor_unref(y);
        /* reducing the other axis leaves nothing */
        y = reduce(*state, red_ops[op], x, &axis1, 1, 0, FLOE_DTYPE_I32);
        tc_assert_shape(y, FLOE_DTYPE_F32, s0, 1);
        floe_tensor_unref(y);
    }
    floe_tensor_unref(x);

    floe_tensor *xi = tc_i32(s, 2, NULL);
    const int64_t iident[5] = {0, 0, INT32_MIN, INT32_MAX, 1};
    for (int op = 0; op < 5; op++) {
        floe_tensor *y = reduce(*state, red_ops[op], xi, &axis0, 1, 1, FLOE_DTYPE_I64);
        const int64_t ks[2] = {1, 3};
        tc_assert_shape(y, FLOE_DTYPE_I32, ks, 2);
        for (int i = 0; i < 3; i++)
            assert_int_equal(tc_get_i(y, i), iident[op]);
        floe_tensor_unref(y);
    }
    floe_tensor_unref(xi);
    floe_tensor *xu = tc_tensor(FLOE_DTYPE_U8, s, 2, NULL);
    floe_tensor *y = reduce(*state, "Min", xu, &axis0, 1, 0, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 255);
    floe_tensor_unref(y);
    y = reduce(*state, "Max", xu, &axis0, 1, 0, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 0);
    floe_tensor_unref(y);
    floe_tensor_unref(xu);

    /* an empty input with huge other extents: the count of reduced elements per output
     * element (2^80) must not be computed */
    const int64_t big[3] = {1ll << 40, 1ll << 40, 0};
    const int64_t ax2[2] = {0, 1};
    x = tc_f32(big, 3, NULL);
    for (int op = 0; op < 5; op++) {
        y = reduce(*state, red_ops[op], x, ax2, 2, 0, FLOE_DTYPE_I32);
        tc_assert_shape(y, FLOE_DTYPE_F32, &big[2], 1);
        floe_tensor_unref(y);
    }
    /* ArgMax along a non-empty axis of it: an empty result */
    y = argop(*state, "ArgMax", x, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    tc_assert_shape(y, FLOE_DTYPE_I64, &big[1], 2);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

static void max_min_propagate_nan(void **state) {
    const int64_t s[2] = {2, 3};
    const float x[6] = {1, NAN, 3, 4, 5, 6};
    const int64_t axis1 = 1, axis0 = 0;
    floe_tensor *t = tc_f32(s, 2, x);
    for (int op = 2; op <= 3; op++) {
        floe_tensor *y = reduce(*state, red_ops[op], t, &axis1, 1, 0, FLOE_DTYPE_I32);
        assert_true(isnan(tc_get_f(y, 0)));
        assert_false(isnan(tc_get_f(y, 1)));
        floe_tensor_unref(y);
        y = reduce(*state, red_ops[op], t, &axis0, 1, 0, FLOE_DTYPE_I32);
        assert_false(isnan(tc_get_f(y, 0)));
        assert_true(isnan(tc_get_f(y, 1)));
        floe_tensor_unref(y);
    }
    floe_tensor_unref(t);
}

/* ---- ArgMax/ArgMin ------------------------------------------------------------------- */

static floe_tensor *argop(floe_context *ctx, const char *op, floe_tensor *x, int64_t axis,
                          floe_dtype out_type, floe_dtype axis_dt) {
    floe_tensor *ax = axes_tensor(axis_dt, &axis, -1);
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    if (out_type != FLOE_DTYPE_INVALID)
        assert_int_equal(floe_attrs_set_type(a, "output_type", out_type), FLOE_OK);
    floe_tensor *in[2] = {x, ax};
    floe_tensor *y = tc_run1(ctx, op, in, 2, a);
    floe_attrs_free(a);
    floe_tensor_unref(ax);
    return y;
}

static void argmax_argmin_match_reference(void **state) {
    const int64_t shapes[4][3] = {{7, 1, 1}, {3, 4, 5}, {2, 300, 200}, {1, 1, 100003}};
    const int nds[4] = {1, 3, 3, 3};
    const floe_dtype dts[3] = {FLOE_DTYPE_F32, FLOE_DTYPE_I32, FLOE_DTYPE_U8};
    for (int t = 0; t < 3; t++)
        for (int s = 0; s < 4; s++)
            for (int axis = -nds[s]; axis < nds[s]; axis++)
                for (int is_max = 0; is_max < 2; is_max++) {
                    int nd = nds[s];
                    const int64_t *shape = shapes[s];
                    /* few distinct values, so ties occur and the first must win */
                    floe_tensor *x = rand_tensor(dts[t], shape, nd, 0, 9, (uint64_t)(s * 10 + t));
                    if (dts[t] == FLOE_DTYPE_F32)
                        for (int64_t i = 0; i < floe_tensor_num_elements(x); i++)
                            ((float *)floe_tensor_data(x))[i] = floorf(((float *)floe_tensor_data(x))[i]);
                    floe_dtype ot = (axis & 1) ? FLOE_DTYPE_I32 : FLOE_DTYPE_INVALID;
                    floe_tensor *y = argop(*state, is_max ? "ArgMax" : "ArgMin", x, axis, ot,
                                           (axis & 2) ? FLOE_DTYPE_I64 : FLOE_DTYPE_I32);
                    int a = axis < 0 ? axis + nd : axis;
                    int64_t O = 1, R = shape[a], I = 1, oshape[3];
                    for (int d = 0, j = 0; d < nd; d++) {
                        if (d != a)
                            oshape[j++] = shape[d];
                        if (d < a)
                            O *= shape[d];
                        if (d > a)
                            I *= shape[d];
                    }
                    tc_assert_shape(y, ot == FLOE_DTYPE_INVALID ? FLOE_DTYPE_I64 : ot, oshape, nd - 1);
                    floe_tensor *yh = tc_host(y);        /* a host copy of a GPU's */
                    for (int64_t o = 0; o < O; o++)
                        for (int64_t i = 0; i < I; i++) {
                            int64_t best = 0;
                            double bv = 0;
                            for (int64_t r = 0; r < R; r++) {
                                double v = dts[t] == FLOE_DTYPE_F32
                                               ? tc_get_f(x, (o * R + r) * I + i)
                                               : (double)tc_get_i(x, (o * R + r) * I + i);
                                if (r == 0 || (is_max ? v > bv : v < bv)) {
                                    bv = v;
                                    best = r;
                                }
                            }
                            int64_t g = ot == FLOE_DTYPE_I32 ? ((int32_t *)floe_tensor_data(yh))[o * I + i]
                                                             : ((int64_t *)floe_tensor_data(yh))[o * I + i];
                            if (g != best)
                                fail_msg("%s axis %d at %lld: %lld, expected %lld",
                                         is_max ? "ArgMax" : "ArgMin", axis,
                                         (long long)(o * I + i), (long long)g, (long long)best);
                        }
                    floe_tensor_unref(yh);
                    floe_tensor_unref(x);
                    floe_tensor_unref(y);
                }
}

static void argmax_first_nan_wins(void **state) {
    const int64_t s[1] = {5};
    const float x[5] = {1, NAN, 7, NAN, -3};
    floe_tensor *t = tc_f32(s, 1, x);
    floe_tensor *y = argop(*state, "ArgMax", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 1);
    floe_tensor_unref(y);
    y = argop(*state, "ArgMin", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 1);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    /* rows long enough for the lane-parallel scan: ties and NaNs in different lanes */
    const int64_t n = 37;
    float v[37];
    for (int i = 0; i < 37; i++)
        v[i] = (float)(i % 5);
    v[21] = 9;
    v[10] = 9;          /* the first maximum, in another lane */
    v[30] = -9;
    v[14] = -9;         /* the first minimum */
    t = tc_f32(&n, 1, v);
    y = argop(*state, "ArgMax", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 10);
    floe_tensor_unref(y);
    y = argop(*state, "ArgMin", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 14);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    v[29] = NAN;
    v[13] = NAN;
    v[36] = NAN;        /* in the scalar tail */
    t = tc_f32(&n, 1, v);
    y = argop(*state, "ArgMax", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 13);
    floe_tensor_unref(y);
    y = argop(*state, "ArgMin", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 13);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    /* the same as a column of a [37, 3] matrix (the column-block scan) */
    float m[37 * 3];
    for (int i = 0; i < 37; i++)
        for (int j = 0; j < 3; j++)
            m[i * 3 + j] = j == 1 ? v[i] : (float)(i % 4);
    const int64_t ms[2] = {37, 3};
    t = tc_f32(ms, 2, m);
    y = argop(*state, "ArgMax", t, 0, FLOE_DTYPE_INVALID, FLOE_DTYPE_I32);
    assert_int_equal(tc_get_i(y, 0), 3);
    assert_int_equal(tc_get_i(y, 1), 13);
    assert_int_equal(tc_get_i(y, 2), 3);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
}

static void argmax_errors(void **state) {
    const int64_t s[2] = {0, 3};
    floe_tensor *x = tc_f32(s, 2, NULL);
    int64_t axis = 0;
    floe_tensor *ax = axes_tensor(FLOE_DTYPE_I32, &axis, -1);
    floe_tensor *in[2] = {x, ax};
    /* an empty reduction axis */
    assert_int_equal(tc_run_status(*state, "ArgMax", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("empty");
    floe_tensor_unref(ax);
    /* the other axis is fine and gives an empty result */
    axis = 1;
    ax = axes_tensor(FLOE_DTYPE_I32, &axis, -1);
    in[1] = ax;
    floe_tensor *y = tc_run1(*state, "ArgMin", in, 2, NULL);
    const int64_t s0[1] = {0};
    tc_assert_shape(y, FLOE_DTYPE_I64, s0, 1);
    floe_tensor_unref(y);
    floe_tensor_unref(ax);
    /* out of range */
    axis = 2;
    ax = axes_tensor(FLOE_DTYPE_I64, &axis, -1);
    in[1] = ax;
    assert_int_equal(tc_run_status(*state, "ArgMax", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dimension");
    floe_tensor_unref(ax);
    /* a scalar input has no axis */
    floe_tensor *sc = tc_scalar_f32(1);
    axis = 0;
    ax = axes_tensor(FLOE_DTYPE_I32, &axis, -1);
    floe_tensor *in2[2] = {sc, ax};
    assert_int_equal(tc_run_status(*state, "ArgMax", in2, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    /* dimension with two elements */
    const int64_t two[2] = {0, 1};
    floe_tensor *ax2 = axes_tensor(FLOE_DTYPE_I32, two, 2);
    floe_tensor *xs = tc_f32(&s[1], 1, NULL);
    floe_tensor *in3[2] = {xs, ax2};
    assert_int_equal(tc_run_status(*state, "ArgMax", in3, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("scalar");
    floe_tensor_unref(xs);
    floe_tensor_unref(ax2);
    floe_tensor_unref(ax);
    floe_tensor_unref(sc);
    floe_tensor_unref(x);
}

/* ---- Errors ----------------------------------------------------------------------- */

static void invalid_axes_are_rejected(void **state) {
    const int64_t s[2] = {2, 3};
    floe_tensor *x = tc_f32(s, 2, NULL);
    const int64_t bad[4][2] = {{2, 0}, {-3, 0}, {0, 0}, {1, -1}};
    const int nbad[4] = {1, 1, 2, 2};
    const char *msg[4] = {"reduction dimension 2", "reduction dimension -3", "duplicate",
                          "duplicate"};
    for (int op = 0; op < 5; op++)
        for (int k = 0; k < 4; k++) {
            floe_tensor *ax = axes_tensor(k % 2 ? FLOE_DTYPE_I64 : FLOE_DTYPE_I32, bad[k], nbad[k]);
            floe_tensor *in[2] = {x, ax};
            assert_int_equal(tc_run_status(*state, red_ops[op], in, 2, NULL, 1),
                             FLOE_INVALID_ARGUMENT);
            tc_assert_error_contains(msg[k]);
            floe_tensor_unref(ax);
        }
    /* axes of rank 2 */
    const int64_t s2[2] = {1, 1};
    floe_tensor *ax = tc_i32(s2, 2, NULL);
    floe_tensor *in[2] = {x, ax};
    assert_int_equal(tc_run_status(*state, "Sum", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("1-D");
    floe_tensor_unref(ax);
    /* float axes do not fit Tidx */
    floe_tensor *fax = tc_scalar_f32(0);
    in[1] = fax;
    assert_int_not_equal(tc_run_status(*state, "Sum", in, 2, NULL, 1), FLOE_OK);
    tc_assert_error_contains("f32");
    floe_tensor_unref(fax);
    /* bool input is not a number type for Sum */
    floe_tensor *b = tc_tensor(FLOE_DTYPE_BOOL, s, 2, NULL);
    floe_tensor *ax0 = tc_scalar_i32(0);
    floe_tensor *in2[2] = {b, ax0};
    assert_int_not_equal(tc_run_status(*state, "Sum", in2, 2, NULL, 1), FLOE_OK);
    tc_assert_error_contains("bool");
    floe_tensor_unref(ax0);
    floe_tensor_unref(b);
    floe_tensor_unref(x);
}

/* ---- Shape inference -------------------------------------------------------------- */

/* A Const node of @t, which the caller keeps. */
static floe_node *constant(floe_graph *g, floe_tensor *t) {
    return tc_g_const(g, floe_tensor_ref(t));
}

static floe_status reduce_node(floe_graph *g, const char *op, floe_node *x, floe_node *axes,
                               int keep, floe_node **out) {
    floe_node_builder *b = NULL;
    *out = NULL;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(axes, 0));
    if (keep)
        floe_attrs_set_bool(floe_node_builder_attrs(b), "keep_dims", 1);
    return floe_node_builder_finish(b, out);
}

static void shape_fn_uses_constant_axes(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    const int64_t xs[3] = {-1, 4, 5};
    floe_node *x = tc_placeholder(g, "x", FLOE_DTYPE_F32, xs, 3);
    const int64_t ax[2] = {-1, 0};
    floe_tensor *axt = axes_tensor(FLOE_DTYPE_I32, ax, 2);
    floe_node *c = constant(g, axt);
    floe_node *p = tc_placeholder(g, "axes", FLOE_DTYPE_I32, NULL, -1);
    floe_node *n = NULL;

    assert_int_equal(reduce_node(g, "Sum", x, c, 0, &n), FLOE_OK);
    floe_shape s = floe_node_output_shape(n, 0);
    assert_int_equal(s.ndim, 1);
    assert_int_equal(s.dims[0], 4);
    assert_int_equal(reduce_node(g, "Max", x, c, 1, &n), FLOE_OK);
    s = floe_node_output_shape(n, 0);
    assert_int_equal(s.ndim, 3);
    assert_true(s.dims[0] == 1 && s.dims[1] == 4 && s.dims[2] == 1);
    /* unknown axes: unknown rank, or the rank with unknown extents under keep_dims */
    assert_int_equal(reduce_node(g, "Mean", x, p, 0, &n), FLOE_OK);
    assert_int_equal(floe_node_output_shape(n, 0).ndim, -1);
    assert_int_equal(reduce_node(g, "Mean", x, p, 1, &n), FLOE_OK);
    s = floe_node_output_shape(n, 0);
    assert_int_equal(s.ndim, 3);
    assert_true(s.dims[0] == -1 && s.dims[1] == -1 && s.dims[2] == -1);
    /* constant axes out of range fail when the node is built */
    const int64_t bad = 3;
    floe_tensor *badt = axes_tensor(FLOE_DTYPE_I64, &bad, -1);
    floe_node *cb = constant(g, badt);
    assert_int_equal(reduce_node(g, "Prod", x, cb, 0, &n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("reduction dimension 3");
    /* ArgMax drops the axis */
    floe_tensor *one = axes_tensor(FLOE_DTYPE_I32, &ax[0], -1);
    floe_node *c1 = constant(g, one);
    assert_int_equal(reduce_node(g, "ArgMax", x, c1, 0, &n), FLOE_OK);
    s = floe_node_output_shape(n, 0);
    assert_int_equal(s.ndim, 2);
    assert_true(s.dims[0] == -1 && s.dims[1] == 4);
    assert_int_equal(floe_node_output_dtype(n, 0), FLOE_DTYPE_I64);
    floe_tensor_unref(one);
    floe_tensor_unref(badt);
    floe_tensor_unref(axt);
    floe_graph_free(g);
}

/* Axes fed at run time reach the kernel's own checks. */
static void kernel_checks_axes_fed_at_run_time(void **state) {
    floe_graph *g = NULL;
    floe_session *sess = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *x = tc_placeholder(g, "x", FLOE_DTYPE_F32, NULL, -1);
    floe_node *ax = tc_placeholder(g, "axes", FLOE_DTYPE_I32, NULL, -1);
    floe_node *n = NULL, *am = NULL;
    assert_int_equal(reduce_node(g, "Sum", x, ax, 0, &n), FLOE_OK);
    assert_int_equal(reduce_node(g, "ArgMin", x, ax, 0, &am), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &sess), FLOE_OK);
    const int64_t s[2] = {2, 3};
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    floe_tensor *xt = tc_f32(s, 2, xv);
    floe_output feeds[2] = {floe_out(x, 0), floe_out(ax, 0)};
    floe_output fetch[2] = {floe_out(n, 0), floe_out(am, 0)};
    const int64_t good[1] = {1}, bad[2] = {0, -2};
    for (int k = 0; k < 2; k++) {
        floe_tensor *axt = axes_tensor(FLOE_DTYPE_I32, k ? bad : good, k ? 2 : 1);
        floe_tensor *vals[2] = {xt, axt};
        floe_tensor *out = NULL;
        floe_status st = floe_session_run(sess, feeds, vals, 2, &fetch[0], 1, NULL, 0, &out);
        if (k == 0) {
            assert_int_equal(st, FLOE_OK);
            const float e[2] = {6, 15};
            tc_assert_close_f32(out, e, 2, 0, 0);
            floe_tensor_unref(out);
            /* ArgMin wants a scalar axis */
            out = NULL;
            assert_int_equal(floe_session_run(sess, feeds, vals, 2, &fetch[1], 1, NULL, 0, &out),
                             FLOE_OK);
            assert_int_equal(floe_tensor_dtype(out), FLOE_DTYPE_I64);
            assert_int_equal(tc_get_i(out, 1), 0);
            floe_tensor_unref(out);
        } else {
            assert_int_equal(st, FLOE_INVALID_ARGUMENT);
            assert_null(out);
            tc_assert_error_contains("duplicate dimension: 0");
            assert_int_equal(floe_session_run(sess, feeds, vals, 2, &fetch[1], 1, NULL, 0, &out),
                             FLOE_INVALID_ARGUMENT);
            tc_assert_error_contains("scalar");
        }
        floe_tensor_unref(axt);
    }
    floe_session_free(sess);
    floe_tensor_unref(xt);
    floe_graph_free(g);
}

/* SQLite's OOM loop: fail the Nth allocation (once, then every one from the Nth on) of
 * reductions that allocate scratch buffers (several passes; partial sums of a split
 * axis) until the call succeeds; every failure is RESOURCE_EXHAUSTED with no output,
 * and the sanitizer build checks that nothing leaks. */
static void reductions_survive_allocation_failures(void **state) {
    const int64_t s3[3] = {50, 40, 30}, s1[1] = {100000};
    const int64_t ax3[2] = {0, 2}, ax1[1] = {0};
    floe_tensor *x3 = rand_tensor(FLOE_DTYPE_F32, s3, 3, -1, 1, 5);
    floe_tensor *x1 = rand_tensor(FLOE_DTYPE_F32, s1, 1, -1, 1, 6);
    floe_tensor *a3 = axes_tensor(FLOE_DTYPE_I32, ax3, 2), *a1 = axes_tensor(FLOE_DTYPE_I32, ax1, 1);
    floe_tensor *cases_in[3][2] = {{x3, a3}, {x1, a1}, {x3, a3}};
    const char *ops[3] = {"Mean", "Sum", "Max"};
    for (int c = 0; c < 3; c++)
        for (int persistent = 0; persistent < 2; persistent++) {
            floe_tensor *ref = tc_run1(*state, ops[c], cases_in[c], 2, NULL);
            int64_t nth;
            for (nth = 1; nth < 10000; nth++) {
                floe_tensor *out = NULL;
                floe_testing_fail_alloc(nth, persistent);
                floe_status st = floe_eager_run(*state, ops[c], NULL, cases_in[c], 2, NULL, &out, 1);
                int64_t failures = floe_testing_alloc_failures();
                floe_testing_fail_alloc(0, 0);
                if (st != FLOE_OK) {
                    assert_int_equal(st, FLOE_RESOURCE_EXHAUSTED);
                    assert_null(out);
                    assert_true(failures > 0);
                    continue;
                }
                floe_tensor *ho = tc_host(out), *hr = tc_host(ref);
                assert_memory_equal(floe_tensor_data(ho), floe_tensor_data(hr),
                                    floe_tensor_nbytes(hr));
                floe_tensor_unref(hr);
                floe_tensor_unref(ho);
                floe_tensor_unref(out);
                if (failures == 0)
                    break;
            }
            assert_true(nth < 10000);
            floe_tensor_unref(ref);
        }
    floe_tensor_unref(x3);
    floe_tensor_unref(x1);
    floe_tensor_unref(a3);
    floe_tensor_unref(a1);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tc_setup_context, tc_teardown_context)
    const struct CMUnitTest tests[] = {
        T(reduce_float_matches_reference),
        T(sum_f32_is_accurate_for_long_rows),
        T(reduce_int_matches_reference),
        T(mean_of_integers_truncates),
        T(empty_reductions_give_identity),
        T(max_min_propagate_nan),
        T(argmax_argmin_match_reference),
        T(argmax_first_nan_wins),
        T(argmax_errors),
        T(invalid_axes_are_rejected),
        T(shape_fn_uses_constant_axes),
        T(kernel_checks_axes_fed_at_run_time),
        T(reductions_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
