/*
 * test_ops_elementwise.c - the elementwise ops of ops_math (elementwise.c, broadcast.c).
 *
 * Every kernel runs eagerly on random inputs and is compared with a reference computed
 * here with naive loops in double (or exact int64 arithmetic for integers), on
 * broadcasting cases: rank 0, scalar against tensor, vectors against matrices,
 * [3,1] x [1,4], rank 5, empty extents and outputs large enough to be split across
 * the thread pool.  Then the semantics TensorFlow fixes (NaN in Maximum, FloorDiv signs,
 * wrap-around), the errors (incompatible shapes, integer division by zero, negative
 * integer powers, wrong dtypes) and the broadcasting shape function in a graph.
 *
 * Sections: helpers; float binary ops; integer binary ops; comparisons and logic;
 * unary ops; special values; errors; shape inference.
 */
#include "test_common.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

/* The broadcast shape of @a and @b (both known compatible) into @out. */
static int bcast_shape(const int64_t *a, int na, const int64_t *b, int nb, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int ia = d - (n - na), ib = d - (n - nb);
        int64_t x = ia >= 0 ? a[ia] : 1, y = ib >= 0 ? b[ib] : 1;
        out[d] = x == 1 ? y : x;
    }
    return n;
}

/* run2 and run1 return host copies of a GPU's results: the cases read them element by
 * element, and tc_get_i/tc_get_f on a device tensor copy all of it for every element. */
static floe_tensor *run2(floe_context *ctx, const char *op, floe_tensor *a, floe_tensor *b) {
    floe_tensor *in[2] = {a, b};
    return tc_take_host(tc_run1(ctx, op, in, 2, NULL));
}

static floe_tensor *run1(floe_context *ctx, const char *op, floe_tensor *a) {
    return tc_take_host(tc_run1(ctx, op, &a, 1, NULL));
}

typedef struct shape_pair {
    int na, nb;
    int64_t a[5], b[5];
} shape_pair;

/* Shapes covering every iteration path of broadcast.c. */
static const shape_pair pairs[] = {
    {0, 0, {0}, {0}},                              /* rank 0 with rank 0 */
    {1, 0, {7}, {0}},                              /* vector, scalar */
    {0, 2, {0}, {3, 5}},                           /* scalar, matrix */
    {2, 2, {3, 4}, {3, 4}},                        /* same shape */
    {2, 2, {3, 1}, {1, 4}},                        /* outer product */
    {1, 2, {4}, {3, 4}},                           /* row vector */
    {2, 1, {3, 4}, {4}},
    {2, 2, {3, 1}, {3, 4}},                        /* column vector */
    {2, 2, {3, 4}, {3, 1}},
    {3, 3, {2, 1, 3}, {1, 4, 1}},
    {5, 4, {2, 3, 1, 4, 5}, {3, 5, 1, 5}},         /* rank 5 */
    {5, 5, {1, 2, 1, 3, 1}, {2, 1, 2, 1, 2}},
    {2, 1, {0, 3}, {3}},                           /* empty */
    {2, 2, {4, 0}, {1, 1}},
    {2, 1, {300, 257}, {257}},                     /* split across threads */
    {2, 2, {300, 1}, {1, 257}},
    {1, 1, {100003}, {100003}},
    {1, 0, {100003}, {0}},
};
#define NPAIRS ((int)(sizeof(pairs) / sizeof(pairs[0])))

/* ---- Float binary ops ------------------------------------------------------------- */

typedef enum fop { F_ADD, F_SUB, F_MUL, F_DIV, F_FLOORDIV, F_FLOORMOD, F_MAX, F_MIN, F_POW } fop;

static const struct {
    const char *name;
    fop op;
    double lo_a, hi_a, lo_b, hi_b;   /* operand ranges */
} float_ops[] = {
    {"AddV2", F_ADD, -10, 10, -10, 10},
    {"Sub", F_SUB, -10, 10, -10, 10},
    {"Mul", F_MUL, -10, 10, -10, 10},
    {"RealDiv", F_DIV, -10, 10, 0.5, 4},
    {"FloorDiv", F_FLOORDIV, -10, 10, -4, -0.5},
    {"FloorMod", F_FLOORMOD, -10, 10, 0.5, 4},
    {"Maximum", F_MAX, -10, 10, -10, 10},
    {"Minimum", F_MIN, -10, 10, -10, 10},
    {"Pow", F_POW, 0.1, 3, -3, 3},
};

static double ref_float(fop op, double x, double y) {
    switch (op) {
    case F_ADD: return x + y;
    case F_SUB: return x - y;
    case F_MUL: return x * y;
    case F_DIV: return x / y;
    case F_FLOORDIV: return floor(x / y);
    case F_FLOORMOD: return x - floor(x / y) * y;
    case F_MAX: return x > y ? x : y;
    case F_MIN: return x < y ? x : y;
    case F_POW: return pow(x, y);
    }
    return 0;
}

static void check_float_binary(floe_context *ctx, floe_dtype dt, int k, const shape_pair *sp,
                               uint64_t seed) {
    int64_t out_shape[5];
    int nd = bcast_shape(sp->a, sp->na, sp->b, sp->nb, out_shape);
    floe_tensor *a = tc_rand_tensor(dt, sp->a, sp->na, float_ops[k].lo_a, float_ops[k].hi_a, seed);
    floe_tensor *b = tc_rand_tensor(dt, sp->b, sp->nb, float_ops[k].lo_b, float_ops[k].hi_b,
                                 seed + 1);
    floe_tensor *z = run2(ctx, float_ops[k].name, a, b);
    tc_assert_shape(z, dt, out_shape, nd);
    int64_t n = tc_count(out_shape, nd);
    double *expect = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t o = 0; o < n; o++) {
        double x = tc_get_f(a, tc_bcast_index(o, out_shape, nd, sp->a, sp->na));
        double y = tc_get_f(b, tc_bcast_index(o, out_shape, nd, sp->b, sp->nb));
        expect[o] = ref_float(float_ops[k].op, x, y);
    }
    if (dt == FLOE_DTYPE_F32) {
        float *ef = malloc(sizeof(float) * (size_t)(n + 1));
        for (int64_t o = 0; o < n; o++)
            ef[o] = (float)expect[o];
        /* FloorMod in f32 differs from the double reference by f32 rounding of fmod */
        tc_assert_close_f32(z, ef, n, 2e-6f, float_ops[k].op == F_FLOORMOD ? 2e-5f : 1e-6f);
        free(ef);
    } else {
        tc_assert_close_f64(z, expect, n, 1e-13, 1e-13);
    }
    free(expect);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_tensor_unref(z);
}

static void binary_f32_matches_reference(void **state) {
    for (int k = 0; k < (int)(sizeof(float_ops) / sizeof(float_ops[0])); k++)
        for (int p = 0; p < NPAIRS; p++)
            check_float_binary(*state, FLOE_DTYPE_F32, k, &pairs[p], (uint64_t)(k * 100 + p));
}

static void binary_f64_matches_reference(void **state) {
    for (int k = 0; k < (int)(sizeof(float_ops) / sizeof(float_ops[0])); k++)
        for (int p = 0; p < NPAIRS; p += 2)
            check_float_binary(*state, FLOE_DTYPE_F64, k, &pairs[p], (uint64_t)(k * 77 + p));
}

/* ---- Integer binary ops ------------------------------------------------------------ */

typedef enum iop { I_ADD, I_SUB, I_MUL, I_MAX, I_MIN, I_FLOORDIV, I_FLOORMOD, I_POW } iop;

static const struct {
    const char *name;
    iop op;
    bool signed_only;
} int_ops[] = {
    {"AddV2", I_ADD, false},        {"Sub", I_SUB, false},
    {"Mul", I_MUL, false},          {"Maximum", I_MAX, false},
    {"Minimum", I_MIN, false},      {"FloorDiv", I_FLOORDIV, true},
    {"FloorMod", I_FLOORMOD, true}, {"Pow", I_POW, true},
};

/* Reference in int64 with the result wrapped to @dt. */
static int64_t ref_int(floe_dtype dt, iop op, int64_t x, int64_t y) {
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case I_ADD: return tc_wrap_to(dt, (int64_t)(ux + uy));
    case I_SUB: return tc_wrap_to(dt, (int64_t)(ux - uy));
    case I_MUL: return tc_wrap_to(dt, (int64_t)(ux * uy));
    case I_MAX: return x > y ? x : y;
    case I_MIN: return x < y ? x : y;
    case I_FLOORDIV: {
        if (y == -1)
            return tc_wrap_to(dt, (int64_t)(0 - ux));
        int64_t q = x / y;
        if (q * y != x && ((x < 0) != (y < 0)))
            q--;
        return q;
    }
    case I_FLOORMOD: {
        if (y == -1)
            return 0;
        int64_t r = x % y;
        if (r != 0 && ((r < 0) != (y < 0)))
            r += y;
        return r;
    }
    case I_POW: {
        uint64_t r = 1;
        for (int64_t i = 0; i < y; i++)
            r *= ux;
        return tc_wrap_to(dt, (int64_t)r);
    }
    }
    return 0;
}

static void check_int_binary(floe_context *ctx, floe_dtype dt, int k, const shape_pair *sp,
                             uint64_t seed) {
    int64_t out_shape[5];
    int nd = bcast_shape(sp->a, sp->na, sp->b, sp->nb, out_shape);
    double lo = dt == FLOE_DTYPE_U8 ? 0 : -100, hi = dt == FLOE_DTYPE_U8 ? 255 : 100;
    double blo = lo, bhi = hi;
    if (int_ops[k].op == I_FLOORDIV || int_ops[k].op == I_FLOORMOD)
        blo = 1, bhi = 9;    /* signs of the divisor are mixed below */
    if (int_ops[k].op == I_POW)
        lo = -5, hi = 5, blo = 0, bhi = 7;
    floe_tensor *a = tc_rand_tensor(dt, sp->a, sp->na, lo, hi, seed);
    floe_tensor *b = tc_rand_tensor(dt, sp->b, sp->nb, blo, bhi, seed + 1);
    if (int_ops[k].op == I_FLOORDIV || int_ops[k].op == I_FLOORMOD)
        for (int64_t i = 0; i < floe_tensor_num_elements(b); i += 2)
            tc_set_i(b, i, -tc_get_i(b, i));
    floe_tensor *z = run2(ctx, int_ops[k].name, a, b);
    tc_assert_shape(z, dt, out_shape, nd);
    int64_t n = tc_count(out_shape, nd);
    for (int64_t o = 0; o < n; o++) {
        int64_t x = tc_get_i(a, tc_bcast_index(o, out_shape, nd, sp->a, sp->na));
        int64_t y = tc_get_i(b, tc_bcast_index(o, out_shape, nd, sp->b, sp->nb));
        int64_t e = ref_int(dt, int_ops[k].op, x, y);
        if (tc_get_i(z, o) != e)
            fail_msg("%s %s element %lld: %lld op %lld = %lld, expected %lld", int_ops[k].name,
                     floe_dtype_name(dt), (long long)o, (long long)x, (long long)y,
                     (long long)tc_get_i(z, o), (long long)e);
    }
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_tensor_unref(z);
}

static void binary_int_matches_reference(void **state) {
    const floe_dtype dts[] = {FLOE_DTYPE_I32, FLOE_DTYPE_I64, FLOE_DTYPE_I8, FLOE_DTYPE_I16,
                              FLOE_DTYPE_U8};
    for (int t = 0; t < 5; t++)
        for (int k = 0; k < (int)(sizeof(int_ops) / sizeof(int_ops[0])); k++) {
            if (int_ops[k].signed_only && dts[t] == FLOE_DTYPE_U8)
                continue;
            for (int p = t % 2; p < NPAIRS; p += 2)
                check_int_binary(*state, dts[t], k, &pairs[p], (uint64_t)(t * 1000 + k * 50 + p));
        }
}

static void floordiv_floormod_follow_python_signs(void **state) {
    const int64_t s[1] = {8};
    const int32_t x[8] = {7, -7, 7, -7, 6, -6, 0, INT32_MIN};
    const int32_t y[8] = {2, 2, -2, -2, 3, -3, -5, -1};
    const int32_t q[8] = {3, -4, -4, 3, 2, 2, 0, INT32_MIN};
    const int32_t r[8] = {1, 1, -1, -1, 0, 0, 0, 0};
    floe_tensor *a = tc_i32(s, 1, x), *b = tc_i32(s, 1, y);
    floe_tensor *zq = run2(*state, "FloorDiv", a, b), *zr = run2(*state, "FloorMod", a, b);
    assert_memory_equal(floe_tensor_data(zq), q, sizeof(q));
    assert_memory_equal(floe_tensor_data(zr), r, sizeof(r));
    floe_tensor_unref(zq);
    floe_tensor_unref(zr);
    floe_tensor_unref(a);
    floe_tensor_unref(b);

    const float fx[4] = {7.5f, -7.5f, 7.5f, -7.5f}, fy[4] = {2, 2, -2, -2};
    const float fq[4] = {3, -4, -4, 3}, fr[4] = {1.5f, 0.5f, -0.5f, -1.5f};
    const int64_t s4[1] = {4};
    a = tc_f32(s4, 1, fx);
    b = tc_f32(s4, 1, fy);
    zq = run2(*state, "FloorDiv", a, b);
    zr = run2(*state, "FloorMod", a, b);
    tc_assert_close_f32(zq, fq, 4, 0, 0);
    tc_assert_close_f32(zr, fr, 4, 0, 0);
    floe_tensor_unref(zq);
    floe_tensor_unref(zr);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

static void int_arithmetic_wraps_around(void **state) {
    const int64_t s[1] = {3};
    const int32_t x[3] = {INT32_MAX, INT32_MIN, INT32_MIN};
    const int32_t y[3] = {1, 1, -1};
    const int32_t add[3] = {INT32_MIN, INT32_MIN + 1, INT32_MAX};
    const int32_t sub[3] = {INT32_MAX - 1, INT32_MAX, INT32_MIN + 1};
    const int32_t mul[3] = {INT32_MAX, INT32_MIN, INT32_MIN};
    floe_tensor *a = tc_i32(s, 1, x), *b = tc_i32(s, 1, y);
    floe_tensor *z = run2(*state, "AddV2", a, b);
    assert_memory_equal(floe_tensor_data(z), add, sizeof(add));
    floe_tensor_unref(z);
    z = run2(*state, "Sub", a, b);
    assert_memory_equal(floe_tensor_data(z), sub, sizeof(sub));
    floe_tensor_unref(z);
    z = run2(*state, "Mul", a, b);
    assert_memory_equal(floe_tensor_data(z), mul, sizeof(mul));
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);

    const int64_t lx[2] = {INT64_MIN, INT64_MIN}, ly[2] = {-1, -1};
    const int64_t s2[1] = {2};
    a = tc_i64(s2, 1, lx);
    b = tc_i64(s2, 1, ly);
    z = run2(*state, "FloorDiv", a, b);
    assert_int_equal(((int64_t *)floe_tensor_data(z))[0], INT64_MIN);
    floe_tensor_unref(z);
    z = run2(*state, "FloorMod", a, b);
    assert_int_equal(((int64_t *)floe_tensor_data(z))[1], 0);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

/* ---- Comparisons and logic ---------------------------------------------------------- */

static void comparisons_match_reference(void **state) {
    const char *names[6] = {"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"};
    const floe_dtype dts[4] = {FLOE_DTYPE_F32, FLOE_DTYPE_I32, FLOE_DTYPE_I64, FLOE_DTYPE_U8};
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 6; k++)
            for (int p = 0; p < NPAIRS; p += 3) {
                const shape_pair *sp = &pairs[p];
                int64_t out_shape[5];
                int nd = bcast_shape(sp->a, sp->na, sp->b, sp->nb, out_shape);
                /* a small range so that equal values occur */
                floe_tensor *a = tc_rand_tensor(dts[t], sp->a, sp->na, 0, 3, (uint64_t)(p + k));
                floe_tensor *b = tc_rand_tensor(dts[t], sp->b, sp->nb, 0, 3, (uint64_t)(p + 50));
                if (dts[t] == FLOE_DTYPE_F32) {     /* integral values: ties happen */
                    for (int64_t i = 0; i < floe_tensor_num_elements(a); i++)
                        ((float *)floe_tensor_data(a))[i] = floorf(((float *)floe_tensor_data(a))[i]);
                    for (int64_t i = 0; i < floe_tensor_num_elements(b); i++)
                        ((float *)floe_tensor_data(b))[i] = floorf(((float *)floe_tensor_data(b))[i]);
                }
                floe_tensor *z = run2(*state, names[k], a, b);
                tc_assert_shape(z, FLOE_DTYPE_BOOL, out_shape, nd);
                int64_t n = tc_count(out_shape, nd);
                for (int64_t o = 0; o < n; o++) {
                    double x = tc_get_f(a, tc_bcast_index(o, out_shape, nd, sp->a, sp->na));
                    double y = tc_get_f(b, tc_bcast_index(o, out_shape, nd, sp->b, sp->nb));
                    int e = k == 0 ? x == y : k == 1 ? x != y : k == 2 ? x < y
                          : k == 3 ? x <= y : k == 4 ? x > y : x >= y;
                    if (tc_get_i(z, o) != e)
                        fail_msg("%s %s element %lld: %g vs %g gave %lld", names[k],
                                 floe_dtype_name(dts[t]), (long long)o, x, y,
                                 (long long)tc_get_i(z, o));
                }
                floe_tensor_unref(a);
                floe_tensor_unref(b);
                floe_tensor_unref(z);
            }
}

static void comparisons_with_nan_are_false_except_not_equal(void **state) {
    const int64_t s[1] = {2};
    const float x[2] = {NAN, 1}, y[2] = {NAN, NAN};
    floe_tensor *a = tc_f32(s, 1, x), *b = tc_f32(s, 1, y);
    const char *names[6] = {"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"};
    for (int k = 0; k < 6; k++) {
        floe_tensor *z = run2(*state, names[k], a, b);
        for (int i = 0; i < 2; i++)
            assert_int_equal(tc_get_i(z, i), k == 1);
        floe_tensor_unref(z);
    }
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

static void equal_on_bools_and_incompatible_shapes(void **state) {
    const int64_t s[1] = {4}, s3[1] = {3};
    const uint8_t x[4] = {0, 1, 0, 1}, y[4] = {0, 0, 1, 1};
    floe_tensor *a = tc_tensor(FLOE_DTYPE_BOOL, s, 1, x), *b = tc_tensor(FLOE_DTYPE_BOOL, s, 1, y);
    floe_tensor *z = run2(*state, "Equal", a, b);
    const uint8_t eq[4] = {1, 0, 0, 1};
    assert_memory_equal(floe_tensor_data(z), eq, 4);
    floe_tensor_unref(z);

    /* incompatible_shape_error = false: a scalar false (Equal) / true (NotEqual) */
    floe_tensor *c = tc_tensor(FLOE_DTYPE_BOOL, s3, 1, x);
    floe_attrs *attrs = NULL;
    assert_int_equal(floe_attrs_new(&attrs), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(attrs, "incompatible_shape_error", 0), FLOE_OK);
    floe_tensor *in[2] = {a, c};
    z = tc_run1(*state, "Equal", in, 2, attrs);
    tc_assert_shape(z, FLOE_DTYPE_BOOL, NULL, 0);
    assert_int_equal(tc_get_i(z, 0), 0);
    floe_tensor_unref(z);
    z = tc_run1(*state, "NotEqual", in, 2, attrs);
    tc_assert_shape(z, FLOE_DTYPE_BOOL, NULL, 0);
    assert_int_equal(tc_get_i(z, 0), 1);
    floe_tensor_unref(z);
    /* the default is strict */
    assert_int_equal(tc_run_status(*state, "Equal", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible shapes");
    floe_attrs_free(attrs);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_tensor_unref(c);
}

static void logical_ops_broadcast(void **state) {
    const int64_t sa[2] = {2, 1}, sb[1] = {2}, so[2] = {2, 2};
    const uint8_t x[2] = {0, 1}, y[2] = {0, 1};
    floe_tensor *a = tc_tensor(FLOE_DTYPE_BOOL, sa, 2, x), *b = tc_tensor(FLOE_DTYPE_BOOL, sb, 1, y);
    floe_tensor *z = run2(*state, "LogicalAnd", a, b);
    const uint8_t and_[4] = {0, 0, 0, 1}, or_[4] = {0, 1, 1, 1}, not_[2] = {1, 0};
    tc_assert_shape(z, FLOE_DTYPE_BOOL, so, 2);
    assert_memory_equal(floe_tensor_data(z), and_, 4);
    floe_tensor_unref(z);
    z = run2(*state, "LogicalOr", a, b);
    assert_memory_equal(floe_tensor_data(z), or_, 4);
    floe_tensor_unref(z);
    z = run1(*state, "LogicalNot", b);
    tc_assert_shape(z, FLOE_DTYPE_BOOL, sb, 1);
    assert_memory_equal(floe_tensor_data(z), not_, 2);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

/* ---- Unary ops ------------------------------------------------------------------------ */

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static const struct {
    const char *name;
    double (*ref)(double);
    double lo, hi;
} float_unary[] = {
    {"Sqrt", sqrt, 0, 100},     {"Exp", exp, -20, 20},      {"Log", log, 1e-3, 100},
    {"Log1p", log1p, -0.9, 10}, {"Tanh", tanh, -10, 10},    {"Sigmoid", sigmoid, -30, 30},
    {"Sin", sin, -10, 10},      {"Cos", cos, -10, 10},      {"Abs", fabs, -10, 10},
};

static double ref_rsqrt(double x) { return 1.0 / sqrt(x); }
static double ref_neg(double x) { return -x; }
static double ref_square(double x) { return x * x; }
static double ref_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : x; }

static void unary_float_matches_reference(void **state) {
    const struct { const char *name; double (*ref)(double); double lo, hi; } extra[] = {
        {"Rsqrt", ref_rsqrt, 0.01, 100}, {"Neg", ref_neg, -10, 10},
        {"Square", ref_square, -10, 10}, {"Sign", ref_sign, -10, 10},
    };
    const int64_t shapes[3][2] = {{1, 1}, {17, 3}, {257, 260}};
    for (int t = 0; t < 2; t++) {
        floe_dtype dt = t == 0 ? FLOE_DTYPE_F32 : FLOE_DTYPE_F64;
        int nf = (int)(sizeof(float_unary) / sizeof(float_unary[0]));
        for (int k = 0; k < nf + 4; k++) {
            const char *name = k < nf ? float_unary[k].name : extra[k - nf].name;
            double (*ref)(double) = k < nf ? float_unary[k].ref : extra[k - nf].ref;
            double lo = k < nf ? float_unary[k].lo : extra[k - nf].lo;
            double hi = k < nf ? float_unary[k].hi : extra[k - nf].hi;
            for (int s = 0; s < 3; s++) {
                floe_tensor *x = tc_rand_tensor(dt, shapes[s], 2, lo, hi, (uint64_t)(k * 7 + s));
                floe_tensor *y = run1(*state, name, x);
                int64_t n = floe_tensor_num_elements(x);
                tc_assert_shape(y, dt, shapes[s], 2);
                for (int64_t i = 0; i < n; i++) {
                    double e = ref(tc_get_f(x, i)), g = tc_get_f(y, i);
                    double tol = dt == FLOE_DTYPE_F32 ? 4e-7 * fabs(e) + 1e-7 : 1e-14 * fabs(e) + 1e-15;
                    if (!(fabs(g - e) <= tol))
                        fail_msg("%s %s(%.9g) = %.12g, expected %.12g", name,
                                 floe_dtype_name(dt), tc_get_f(x, i), g, e);
                }
                floe_tensor_unref(x);
                floe_tensor_unref(y);
            }
        }
    }
}

static void unary_int_matches_reference(void **state) {
    const char *names[4] = {"Neg", "Abs", "Sign", "Square"};
    const floe_dtype dts[4] = {FLOE_DTYPE_I8, FLOE_DTYPE_I16, FLOE_DTYPE_I32, FLOE_DTYPE_I64};
    const int64_t s[1] = {1000};
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 4; k++) {
            floe_tensor *x = tc_rand_tensor(dts[t], s, 1, -128, 127, (uint64_t)(t * 4 + k));
            tc_set_i(x, 0, dts[t] == FLOE_DTYPE_I64 ? INT64_MIN : dts[t] == FLOE_DTYPE_I32
                        ? INT32_MIN : dts[t] == FLOE_DTYPE_I16 ? INT16_MIN : INT8_MIN);
            floe_tensor *y = run1(*state, names[k], x);
            for (int64_t i = 0; i < s[0]; i++) {
                int64_t v = tc_get_i(x, i);
                uint64_t u = (uint64_t)v;
                int64_t e = k == 0 ? (int64_t)(0 - u) : k == 1 ? (v < 0 ? (int64_t)(0 - u) : v)
                          : k == 2 ? (v > 0) - (v < 0) : (int64_t)(u * u);
                e = tc_wrap_to(dts[t], e);
                if (tc_get_i(y, i) != e)
                    fail_msg("%s %s(%lld) = %lld, expected %lld", names[k],
                             floe_dtype_name(dts[t]), (long long)v, (long long)tc_get_i(y, i),
                             (long long)e);
            }
            floe_tensor_unref(x);
            floe_tensor_unref(y);
        }
}

/* ---- Special values ---------------------------------------------------------------- */

static void maximum_minimum_propagate_nan(void **state) {
    const int64_t s[1] = {5};
    const float x[5] = {NAN, 1, NAN, INFINITY, -INFINITY};
    const float y[5] = {1, NAN, NAN, 2, -3};
    const float mx[5] = {NAN, NAN, NAN, INFINITY, -3};
    const float mn[5] = {NAN, NAN, NAN, 2, -INFINITY};
    floe_tensor *a = tc_f32(s, 1, x), *b = tc_f32(s, 1, y);
    floe_tensor *z = run2(*state, "Maximum", a, b);
    tc_assert_close_f32(z, mx, 5, 0, 0);
    floe_tensor_unref(z);
    z = run2(*state, "Minimum", a, b);
    tc_assert_close_f32(z, mn, 5, 0, 0);
    floe_tensor_unref(z);
    /* NaN against a broadcast scalar, on either side */
    floe_tensor *n = tc_scalar_f32(NAN);
    z = run2(*state, "Maximum", n, a);
    for (int i = 0; i < 5; i++)
        assert_true(isnan(tc_get_f(z, i)));
    floe_tensor_unref(z);
    z = run2(*state, "Minimum", a, n);
    for (int i = 0; i < 5; i++)
        assert_true(isnan(tc_get_f(z, i)));
    floe_tensor_unref(z);
    floe_tensor_unref(n);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

/* NaN matches NaN; infinities match by sign. */
static bool same_special(float g, double e) {
    return (isnan(e) && isnan(g)) || (isinf(e) && g == e);
}

/* Error of f32 @g against exact @e in units of the last place of e (subnormal spacing
 * below FLT_MIN). */
static double ulp_error(float g, double e) {
    if (isnan(e) || isinf(e))
        return same_special(g, e) ? 0 : 1e9;
    double ulp = fabs(e) < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb((float)e) - 23);
    return fabs((double)g - e) / ulp;
}

/* f32 Exp, Tanh and Sigmoid are computed inline (not by libm): bound their errors over
 * their whole useful range and check the special values. */
static void exp_tanh_sigmoid_f32_accuracy_and_special_values(void **state) {
    const int64_t n = 300001;
    floe_tensor *x[3];
    const double lo[3] = {-104.0, -12.0, -90.0}, hi[3] = {89.0, 12.0, 40.0};
    const char *names[3] = {"Exp", "Tanh", "Sigmoid"};
    const double bound[3] = {1.5, 2.0, 3.0};
    for (int k = 0; k < 3; k++) {
        x[k] = tc_f32(&n, 1, NULL);
        float *p = floe_tensor_data(x[k]);
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)(lo[k] + (hi[k] - lo[k]) * (double)i / (double)(n - 1));
        for (int64_t i = 0; i < n; i += 3)    /* tiny arguments too */
            p[i] = p[i] * 1e-5f;
        floe_tensor *y = run1(*state, names[k], x[k]);
        const float *g = floe_tensor_data(y);
        for (int64_t i = 0; i < n; i++) {
            double v = p[i];
            double e = k == 0 ? exp(v) : k == 1 ? tanh(v) : 1.0 / (1.0 + exp(-v));
            if ((float)e == 0 && fabs(g[i]) <= 0x1p-149)
                continue;
            if (ulp_error(g[i], e) > bound[k])
                fail_msg("%s(%.9g) = %.9g, expected %.9g (%.2f ulp)", names[k], v, g[i], e,
                         ulp_error(g[i], e));
        }
        floe_tensor_unref(y);
        floe_tensor_unref(x[k]);
    }
    const int64_t ns = 7;
    const float sv[7] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 89.0f, -110.0f};
    const float ex[3][7] = {
        {NAN, INFINITY, 0, 1, 1, INFINITY, 0},
        {NAN, 1, -1, 0.0f, -0.0f, 1, -1},
        {NAN, 1, 0, 0.5f, 0.5f, 1, 0},
    };
    floe_tensor *t = tc_f32(&ns, 1, sv);
    for (int k = 0; k < 3; k++) {
        floe_tensor *y = run1(*state, names[k], t);
        const float *g = floe_tensor_data(y);
        for (int i = 0; i < 7; i++)
            if (!(same_special(g[i], ex[k][i]) || (g[i] == ex[k][i] && signbit(g[i]) == signbit(ex[k][i]))))
                fail_msg("%s(%g) = %g, expected %g", names[k], sv[i], g[i], ex[k][i]);
        floe_tensor_unref(y);
    }
    floe_tensor_unref(t);
}

static void sign_keeps_zero_and_nan(void **state) {
    const int64_t s[1] = {6};
    const float x[6] = {0.0f, -0.0f, NAN, -2.5f, 3.0f, -INFINITY};
    floe_tensor *a = tc_f32(s, 1, x);
    floe_tensor *z = run1(*state, "Sign", a);
    const float *r = floe_tensor_data(z);
    assert_true(r[0] == 0 && !signbit(r[0]));
    assert_true(r[1] == 0 && signbit(r[1]));
    assert_true(isnan(r[2]));
    assert_true(r[3] == -1 && r[4] == 1 && r[5] == -1);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
}

static void float_division_by_zero_is_ieee(void **state) {
    const int64_t s[1] = {3};
    const float x[3] = {1, -1, 0}, y[3] = {0, 0, 0};
    floe_tensor *a = tc_f32(s, 1, x), *b = tc_f32(s, 1, y);
    floe_tensor *z = run2(*state, "RealDiv", a, b);
    const float e[3] = {INFINITY, -INFINITY, NAN};
    tc_assert_close_f32(z, e, 3, 0, 0);
    floe_tensor_unref(z);
    z = run2(*state, "FloorDiv", a, b);
    tc_assert_close_f32(z, e, 3, 0, 0);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

static void empty_tensors_give_empty_outputs(void **state) {
    const int64_t s0[2] = {0, 3}, s1[1] = {3};
    floe_tensor *a = tc_f32(s0, 2, NULL), *b = tc_f32(s1, 1, NULL);
    floe_tensor *z = run2(*state, "Mul", a, b);
    tc_assert_shape(z, FLOE_DTYPE_F32, s0, 2);
    floe_tensor_unref(z);
    z = run1(*state, "Exp", a);
    tc_assert_shape(z, FLOE_DTYPE_F32, s0, 2);
    floe_tensor_unref(z);
    z = run2(*state, "Less", b, a);
    tc_assert_shape(z, FLOE_DTYPE_BOOL, s0, 2);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    /* an integer divisor tensor with no elements holds no zero */
    floe_tensor *ia = tc_i32(s0, 2, NULL), *ib = tc_i32(s0, 2, NULL);
    z = run2(*state, "FloorDiv", ia, ib);
    tc_assert_shape(z, FLOE_DTYPE_I32, s0, 2);
    floe_tensor_unref(z);
    floe_tensor_unref(ia);
    floe_tensor_unref(ib);
}

/* ---- Errors ---------------------------------------------------------------------- */

static void incompatible_shapes_fail_naming_both(void **state) {
    const int64_t sa[2] = {2, 3}, sb[1] = {4};
    floe_tensor *a = tc_f32(sa, 2, NULL), *b = tc_f32(sb, 1, NULL);
    floe_tensor *in[2] = {a, b};
    const char *ops[4] = {"AddV2", "Maximum", "Less", "FloorMod"};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(tc_run_status(*state, ops[k], in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("Incompatible shapes");
        tc_assert_error_contains("[2,3]");
        tc_assert_error_contains("[4]");
    }
    /* 0 against 3 does not broadcast either */
    const int64_t s0[1] = {0}, s3[1] = {3};
    floe_tensor *c = tc_f32(s0, 1, NULL), *d = tc_f32(s3, 1, NULL);
    floe_tensor *in2[2] = {c, d};
    assert_int_equal(tc_run_status(*state, "Sub", in2, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible shapes");
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_tensor_unref(c);
    floe_tensor_unref(d);
}

static void broadcast_of_empty_with_huge_extents_is_empty(void **state) {
    /* both hold no elements; the broadcast [2^40, 2^40, 0] has no elements either,
     * although the product of its other extents overflows int64 */
    const int64_t sa[3] = {1ll << 40, 1, 0}, sb[3] = {1, 1ll << 40, 0};
    const int64_t so[3] = {1ll << 40, 1ll << 40, 0};
    floe_tensor *a = tc_f32(sa, 3, NULL), *b = tc_f32(sb, 3, NULL);
    floe_tensor *z = run2(*state, "AddV2", a, b);
    tc_assert_shape(z, FLOE_DTYPE_F32, so, 3);
    assert_int_equal(floe_tensor_num_elements(z), 0);
    floe_tensor_unref(z);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

static void integer_division_by_zero_fails(void **state) {
    const int64_t s[1] = {3};
    const floe_dtype dts[4] = {FLOE_DTYPE_I8, FLOE_DTYPE_I16, FLOE_DTYPE_I32, FLOE_DTYPE_I64};
    for (int t = 0; t < 4; t++) {
        floe_tensor *a = tc_rand_tensor(dts[t], s, 1, -9, 9, 3);
        floe_tensor *b = tc_rand_tensor(dts[t], s, 1, 1, 9, 4);
        tc_set_i(b, 2, 0);
        floe_tensor *in[2] = {a, b};
        assert_int_equal(tc_run_status(*state, "FloorDiv", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("Integer division by zero");
        assert_int_equal(tc_run_status(*state, "FloorMod", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("Integer division by zero");
        /* a broadcast scalar zero too */
        floe_tensor *zero = tc_tensor(dts[t], NULL, 0, NULL);
        floe_tensor *in2[2] = {a, zero};
        assert_int_equal(tc_run_status(*state, "FloorDiv", in2, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("Integer division by zero");
        floe_tensor_unref(zero);
        floe_tensor_unref(a);
        floe_tensor_unref(b);
    }
}

static void integer_pow_negative_exponent_fails(void **state) {
    const int64_t s[1] = {2};
    const int32_t x[2] = {2, 3}, y[2] = {2, -1};
    floe_tensor *a = tc_i32(s, 1, x), *b = tc_i32(s, 1, y);
    floe_tensor *in[2] = {a, b};
    assert_int_equal(tc_run_status(*state, "Pow", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("negative integer powers");
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

static void wrong_dtypes_are_rejected(void **state) {
    const int64_t s[1] = {2};
    floe_tensor *f = tc_f32(s, 1, NULL), *i = tc_i32(s, 1, NULL);
    floe_tensor *mixed[2] = {f, i};
    /* mixed input dtypes */
    assert_int_not_equal(tc_run_status(*state, "AddV2", mixed, 2, NULL, 1), FLOE_OK);
    tc_assert_error_contains("i32");
    /* a float-only op on integers */
    assert_int_not_equal(tc_run_status(*state, "Sqrt", &i, 1, NULL, 1), FLOE_OK);
    tc_assert_error_contains("i32");
    /* logic on non-bools */
    floe_tensor *ff[2] = {f, f};
    assert_int_not_equal(tc_run_status(*state, "LogicalAnd", ff, 2, NULL, 1), FLOE_OK);
    tc_assert_error_contains("f32");
    /* an attr T that contradicts the inputs */
    floe_attrs *attrs = NULL;
    assert_int_equal(floe_attrs_new(&attrs), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(attrs, "T", FLOE_DTYPE_F64), FLOE_OK);
    assert_int_not_equal(tc_run_status(*state, "Mul", ff, 2, attrs, 1), FLOE_OK);
    floe_attrs_free(attrs);
    floe_tensor_unref(f);
    floe_tensor_unref(i);
}

/* ---- Shape inference -------------------------------------------------------------- */

/* A Placeholder of dtype f32 and shape @dims (-1 unknown; @ndim -1 unknown rank). */
static floe_node *placeholder(floe_graph *g, const char *name, const int64_t *dims, int ndim) {
    return tc_placeholder(g, name, FLOE_DTYPE_F32, dims, ndim);
}

static floe_status binary_node(floe_graph *g, const char *op, floe_node *x, floe_node *y,
                               floe_node **out) {
    floe_node_builder *b = NULL;
    *out = NULL;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(y, 0));
    return floe_node_builder_finish(b, out);
}

static void assert_fshape(floe_shape s, const int64_t *dims, int ndim) {
    assert_int_equal(s.ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (s.dims[i] != dims[i])
            fail_msg("dim %d is %lld, expected %lld", i, (long long)s.dims[i], (long long)dims[i]);
}

static void shape_fn_broadcasts_partial_shapes(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    const int64_t a[3] = {-1, 1, 5}, b[2] = {4, -1}, c[2] = {3, 7};
    floe_node *pa = placeholder(g, "a", a, 3), *pb = placeholder(g, "b", b, 2);
    floe_node *pc = placeholder(g, "c", c, 2), *pu = placeholder(g, "u", NULL, -1);
    floe_node *n = NULL;

    /* [?,1,5] with [4,?]: [?,4,5] (the ? against 5 must be 5 or 1) */
    assert_int_equal(binary_node(g, "AddV2", pa, pb, &n), FLOE_OK);
    const int64_t e1[3] = {-1, 4, 5};
    assert_fshape(floe_node_output_shape(n, 0), e1, 3);
    /* comparisons give bool of the same shape */
    assert_int_equal(binary_node(g, "Less", pa, pb, &n), FLOE_OK);
    assert_int_equal(floe_node_output_dtype(n, 0), FLOE_DTYPE_BOOL);
    assert_fshape(floe_node_output_shape(n, 0), e1, 3);
    /* unknown rank wins */
    assert_int_equal(binary_node(g, "Mul", pa, pu, &n), FLOE_OK);
    assert_int_equal(floe_node_output_shape(n, 0).ndim, -1);
    /* known incompatible: [?,1,5] vs [3,7] (5 vs 7) fails when the node is built */
    assert_int_equal(binary_node(g, "Sub", pa, pc, &n), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("Incompatible shapes");
    /* unary keeps the shape */
    floe_node_builder *bld = NULL;
    assert_int_equal(floe_node_builder_new(g, "Tanh", NULL, &bld), FLOE_OK);
    floe_node_builder_add_input(bld, floe_out(pb, 0));
    assert_int_equal(floe_node_builder_finish(bld, &n), FLOE_OK);
    assert_fshape(floe_node_output_shape(n, 0), b, 2);
    floe_graph_free(g);
}

/* ---- Kernels in a session (shapes known only at run time; in-place chains) ---------- */

static floe_node *unary_node(floe_graph *g, const char *op, floe_node *x) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("%s: %s", op, floe_last_error());
    return n;
}

static void kernel_rejects_shapes_known_only_at_run(void **state) {
    floe_graph *g = NULL;
    floe_session *sess = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *pa = placeholder(g, "a", NULL, -1), *pb = placeholder(g, "b", NULL, -1);
    floe_node *n = NULL;
    assert_int_equal(binary_node(g, "AddV2", pa, pb, &n), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &sess), FLOE_OK);
    const int64_t sa[2] = {2, 3}, sb[1] = {4};
    floe_tensor *a = tc_f32(sa, 2, NULL), *b = tc_f32(sb, 1, NULL);
    floe_output feeds[2] = {floe_out(pa, 0), floe_out(pb, 0)};
    floe_tensor *vals[2] = {a, b};
    floe_output fetch = floe_out(n, 0);
    floe_tensor *out = NULL;
    assert_int_equal(floe_session_run(sess, feeds, vals, 2, &fetch, 1, NULL, 0, &out),
                     FLOE_INVALID_ARGUMENT);
    assert_null(out);
    tc_assert_error_contains("Incompatible shapes: [2,3] vs. [4]");
    floe_session_free(sess);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_graph_free(g);
}

/* exp(a) - 2, then -(that) * b, then sqrt|.|, 1 - that: intermediates are exclusively
 * owned, so the kernels may write in place, on either operand and with a broadcast
 * scalar on either side. */
static void in_place_chains_match_reference(void **state) {
    floe_graph *g = NULL;
    floe_session *sess = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    const int64_t unknown2[2] = {-1, -1};
    floe_node *pa = placeholder(g, "a", unknown2, 2), *pb = placeholder(g, "b", unknown2, 2);
    floe_node *two = placeholder(g, "two", NULL, 0), *one = placeholder(g, "one", NULL, 0);
    floe_node *e = unary_node(g, "Exp", pa), *d = NULL, *m = NULL, *r = NULL;
    assert_int_equal(binary_node(g, "Sub", e, two, &d), FLOE_OK);
    floe_node *ng = unary_node(g, "Neg", d);
    assert_int_equal(binary_node(g, "Mul", ng, pb, &m), FLOE_OK);
    floe_node *sq = unary_node(g, "Sqrt", unary_node(g, "Abs", m));
    assert_int_equal(binary_node(g, "Sub", one, sq, &r), FLOE_OK);
    assert_int_equal(floe_session_new(g, NULL, &sess), FLOE_OK);
    const int64_t sa[2] = {300, 200};
    floe_tensor *a = tc_rand_tensor(FLOE_DTYPE_F32, sa, 2, -2, 2, 1);
    floe_tensor *b = tc_rand_tensor(FLOE_DTYPE_F32, sa, 2, -2, 2, 2);
    floe_tensor *t2 = tc_scalar_f32(2), *t1 = tc_scalar_f32(1);
    floe_output feeds[4] = {floe_out(pa, 0), floe_out(pb, 0), floe_out(two, 0), floe_out(one, 0)};
    floe_tensor *vals[4] = {a, b, t2, t1};
    floe_output fetch = floe_out(r, 0);
    for (int run = 0; run < 2; run++) {
        floe_tensor *out = NULL;
        assert_int_equal(floe_session_run(sess, feeds, vals, 4, &fetch, 1, NULL, 0, &out), FLOE_OK);
        out = tc_take_host(out);
        tc_assert_shape(out, FLOE_DTYPE_F32, sa, 2);
        for (int64_t i = 0; i < sa[0] * sa[1]; i++) {
            double x = tc_get_f(a, i), y = tc_get_f(b, i);
            double ex = 1.0 - sqrt(fabs(-((double)expf((float)x) - 2.0) * y));
            if (!(fabs(tc_get_f(out, i) - ex) <= 1e-5 * (1 + fabs(ex))))
                fail_msg("element %lld: %.9g, expected %.9g", (long long)i, tc_get_f(out, i), ex);
        }
        floe_tensor_unref(out);
    }
    /* the inputs were not written */
    floe_tensor *a2 = tc_rand_tensor(FLOE_DTYPE_F32, sa, 2, -2, 2, 1);
    assert_memory_equal(floe_tensor_data(a), floe_tensor_data(a2), floe_tensor_nbytes(a));
    floe_tensor_unref(a2);
    floe_session_free(sess);
    floe_tensor_unref(a);
    floe_tensor_unref(b);
    floe_tensor_unref(t1);
    floe_tensor_unref(t2);
    floe_graph_free(g);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tc_setup_context, tc_teardown_context)
    const struct CMUnitTest tests[] = {
        T(binary_f32_matches_reference),
        T(binary_f64_matches_reference),
        T(binary_int_matches_reference),
        T(floordiv_floormod_follow_python_signs),
        T(int_arithmetic_wraps_around),
        T(comparisons_match_reference),
        T(comparisons_with_nan_are_false_except_not_equal),
        T(equal_on_bools_and_incompatible_shapes),
        T(logical_ops_broadcast),
        T(unary_float_matches_reference),
        T(unary_int_matches_reference),
        T(maximum_minimum_propagate_nan),
        T(exp_tanh_sigmoid_f32_accuracy_and_special_values),
        T(sign_keeps_zero_and_nan),
        T(float_division_by_zero_is_ieee),
        T(empty_tensors_give_empty_outputs),
        T(incompatible_shapes_fail_naming_both),
        T(broadcast_of_empty_with_huge_extents_is_empty),
        T(integer_division_by_zero_fails),
        T(integer_pow_negative_exponent_fails),
        T(wrong_dtypes_are_rejected),
        T(shape_fn_broadcasts_partial_shapes),
        T(kernel_rejects_shapes_known_only_at_run),
        T(in_place_chains_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
