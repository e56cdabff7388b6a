/*
 * test_grad_ops_math.c - every gradient of ops_math checked with floe_gradient_check:
 * float64 inputs drawn at random (seeded), central finite differences, a relative
 * tolerance of 1e-6; broadcasting shapes for the binary ops, every transpose
 * combination of MatMul, keep_dims both ways for reductions.  Also the helper ops the
 * gradients use (AddN, BroadcastGradientArgs, ReducedShape, InvertPermutation,
 * ConcatOffset, GatherGrad, StridedSliceGrad) on known values.
 */
#include "test_common.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define TOL 1e-6

static uint64_t rng_state = 12345;

static double uniform(double lo, double hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A random f64 tensor with values in [lo, hi). */
static floe_tensor *rnd(const int64_t *dims, int ndim, double lo, double hi) {
    floe_tensor *t = tc_tensor(FLOE_DTYPE_F64, dims, ndim, NULL);
    double *d = floe_tensor_data(t);
    for (int64_t i = 0; i < floe_tensor_num_elements(t); i++)
        d[i] = uniform(lo, hi);
    return t;
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define R(lo, hi, ...) rnd(DIMS(__VA_ARGS__), lo, hi)
#define SCALAR(lo, hi) rnd(NULL, 0, lo, hi)

static floe_tensor *i32v(const int32_t *v, int64_t n) {
    return tc_i32(&n, 1, v);
}
#define I32(...) i32v((const int32_t[]){__VA_ARGS__}, (int64_t)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)))

/* Checks op's gradient on @in (unreferenced here) and asserts the error is small. */
static void check_out(floe_context *ctx, const char *op, floe_tensor **in, int n, floe_attrs *attrs,
                      int out) {
    double err = -1;
    floe_status st = floe_gradient_check(ctx, op, in, n, attrs, out, 1e-6, &err);
    if (st != FLOE_OK)
        fail_msg("%s: %s", op, floe_last_error());
    if (!(err <= TOL))
        fail_msg("%s: gradient error %g", op, err);
    for (int i = 0; i < n; i++)
        floe_tensor_unref(in[i]);
    floe_attrs_free(attrs);
}

#define CHECK(ctx, op, attrs, ...)                                                     \
    do {                                                                               \
        floe_tensor *in_[] = {__VA_ARGS__};                                            \
        check_out(ctx, op, in_, (int)(sizeof(in_) / sizeof(in_[0])), attrs, 0);        \
    } while (0)

static floe_attrs *attrs_int(const char *a, int64_t v) {
    floe_attrs *at;
    assert_int_equal(floe_attrs_new(&at), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(at, a, v), FLOE_OK);
    return at;
}

static floe_attrs *attrs_bool2(const char *a, int va, const char *b, int vb) {
    floe_attrs *at;
    assert_int_equal(floe_attrs_new(&at), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(at, a, va), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(at, b, vb), FLOE_OK);
    return at;
}

static void test_unary(void **state) {
    floe_context *ctx = *state;
    static const char *const any[] = {"Identity", "Neg", "Abs", "Sign", "Square", "Exp",
                                      "Tanh", "Sigmoid", "Sin", "Cos"};
    static const char *const pos[] = {"Sqrt", "Rsqrt", "Log", "Log1p"};
    for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
        CHECK(ctx, any[i], NULL, R(-2, 2, 2, 3));
    for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++)
        CHECK(ctx, pos[i], NULL, R(0.5, 2, 3, 2));
    CHECK(ctx, "Exp", NULL, SCALAR(-1, 1));
}

static void test_binary_broadcasting(void **state) {
    floe_context *ctx = *state;
    static const char *const ops[] = {"AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum",
                                      "Pow"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        bool p = strcmp(ops[i], "Pow") == 0 || strcmp(ops[i], "RealDiv") == 0;
        double lo = p ? 0.5 : -2, hi = p ? 2 : 2;
        CHECK(ctx, ops[i], NULL, R(lo, hi, 2, 3), R(lo, hi, 2, 3));
        CHECK(ctx, ops[i], NULL, R(lo, hi, 2, 3), R(lo, hi, 3));
        CHECK(ctx, ops[i], NULL, R(lo, hi, 3), R(lo, hi, 2, 3));
        CHECK(ctx, ops[i], NULL, R(lo, hi, 2, 1), R(lo, hi, 1, 3));
        CHECK(ctx, ops[i], NULL, SCALAR(lo, hi), R(lo, hi, 2, 2, 3));
        CHECK(ctx, ops[i], NULL, R(lo, hi, 2, 1, 3), R(lo, hi, 4, 1));
    }
    CHECK(ctx, "FloorMod", NULL, R(-2, 2, 2, 3), R(0.7, 2, 3));
    CHECK(ctx, "FloorDiv", NULL, R(0.1, 0.9, 2, 3), R(1.5, 2, 3));   /* zero: piecewise constant */
    CHECK(ctx, "AddN", attrs_int("N", 3), R(-1, 1, 2, 3), R(-1, 1, 2, 3), R(-1, 1, 2, 3));
}

static void test_select(void **state) {
    floe_context *ctx = *state;
    int64_t d[2] = {2, 3};
    uint8_t c[6] = {1, 0, 0, 1, 1, 0};
    CHECK(ctx, "SelectV2", NULL, tc_tensor(FLOE_DTYPE_BOOL, d, 2, c), R(-1, 1, 2, 3),
          R(-1, 1, 2, 3));
    CHECK(ctx, "SelectV2", NULL, tc_tensor(FLOE_DTYPE_BOOL, d, 2, c), R(-1, 1, 3), SCALAR(-1, 1));
}

static void test_cast(void **state) {
    floe_context *ctx = *state;
    floe_attrs *a;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_type(a, "DstT", FLOE_DTYPE_F64);
    CHECK(ctx, "Cast", a, R(-1, 1, 2, 3));
}

static void test_matmul(void **state) {
    floe_context *ctx = *state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            floe_tensor *a = ta ? R(-1, 1, 3, 2) : R(-1, 1, 2, 3);
            floe_tensor *b = tb ? R(-1, 1, 4, 3) : R(-1, 1, 3, 4);
            CHECK(ctx, "MatMul", attrs_bool2("transpose_a", ta, "transpose_b", tb), a, b);
        }
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            floe_tensor *a = ta ? R(-1, 1, 2, 3, 2) : R(-1, 1, 2, 2, 3);
            floe_tensor *b = tb ? R(-1, 1, 4, 3) : R(-1, 1, 3, 4);
            CHECK(ctx, "BatchMatMulV2", attrs_bool2("adj_x", ta, "adj_y", tb), a, b);
        }
    CHECK(ctx, "BatchMatMulV2", NULL, R(-1, 1, 1, 2, 3), R(-1, 1, 2, 3, 2));
    CHECK(ctx, "BatchMatMulV2", NULL, R(-1, 1, 2, 1, 2, 3), R(-1, 1, 3, 3, 2));
}

static void test_reductions(void **state) {
    floe_context *ctx = *state;
    static const char *const ops[] = {"Sum", "Mean", "Max", "Min"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        for (int keep = 0; keep < 2; keep++) {
            floe_attrs *a;
            assert_int_equal(floe_attrs_new(&a), FLOE_OK);
            floe_attrs_set_bool(a, "keep_dims", keep);
            floe_attrs *b, *c;
            assert_int_equal(floe_attrs_new(&b), FLOE_OK);
            floe_attrs_set_bool(b, "keep_dims", keep);
            assert_int_equal(floe_attrs_new(&c), FLOE_OK);
            floe_attrs_set_bool(c, "keep_dims", keep);
            CHECK(ctx, ops[i], a, R(-2, 2, 2, 3, 4), I32(1));
            CHECK(ctx, ops[i], b, R(-2, 2, 2, 3, 4), I32(0, -1));
            CHECK(ctx, ops[i], c, R(-2, 2, 3, 4), I32(0, 1));
        }
}

/* Prod, also with one and two zeros in a group. */
static void test_prod(void **state) {
    floe_context *ctx = *state;
    for (int keep = 0; keep < 2; keep++) {
        floe_attrs *a;
        assert_int_equal(floe_attrs_new(&a), FLOE_OK);
        floe_attrs_set_bool(a, "keep_dims", keep);
        CHECK(ctx, "Prod", a, R(0.5, 1.5, 2, 3, 2), I32(1, 2));
    }
    floe_tensor *x = R(-1, 1, 2, 3);
    double *d = floe_tensor_data(x);
    d[1] = 0;             /* row 0: one zero */
    d[3] = d[5] = 0;      /* row 1: two zeros */
    CHECK(ctx, "Prod", NULL, x, I32(1));
}

static void test_shapes(void **state) {
    floe_context *ctx = *state;
    CHECK(ctx, "Reshape", NULL, R(-1, 1, 2, 3), I32(3, 2));
    CHECK(ctx, "Reshape", NULL, R(-1, 1, 2, 3, 2), I32(-1, 2));
    CHECK(ctx, "ExpandDims", NULL, R(-1, 1, 2, 3), tc_scalar_i32(1));
    floe_attrs *a;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_int_list(a, "squeeze_dims", (const int64_t[]){1}, 1);
    CHECK(ctx, "Squeeze", a, R(-1, 1, 2, 1, 3));
    CHECK(ctx, "Squeeze", NULL, R(-1, 1, 1, 3, 1));
    CHECK(ctx, "Transpose", NULL, R(-1, 1, 2, 3, 4), I32(2, 0, 1));
    CHECK(ctx, "Transpose", NULL, R(-1, 1, 2, 3), I32(1, 0));
}

static void test_pack_concat(void **state) {
    floe_context *ctx = *state;
    CHECK(ctx, "Pack", attrs_int("axis", 1), R(-1, 1, 2, 3), R(-1, 1, 2, 3), R(-1, 1, 2, 3));
    CHECK(ctx, "Pack", NULL, R(-1, 1, 2), R(-1, 1, 2));
    for (int k = 0; k < 3; k++) {
        floe_attrs *a;
        assert_int_equal(floe_attrs_new(&a), FLOE_OK);
        floe_attrs_set_int(a, "num", 3);
        floe_attrs_set_int(a, "axis", 1);
        floe_tensor *in[1] = {R(-1, 1, 2, 3, 2)};
        check_out(ctx, "Unpack", in, 1, a, k);
    }
    CHECK(ctx, "ConcatV2", NULL, R(-1, 1, 2, 3), R(-1, 1, 2, 1), tc_scalar_i32(1));
    CHECK(ctx, "ConcatV2", NULL, R(-1, 1, 1, 3), R(-1, 1, 2, 3), R(-1, 1, 3, 3), tc_scalar_i32(0));
    CHECK(ctx, "ConcatV2", NULL, R(-1, 1, 2, 3), R(-1, 1, 2, 2), tc_scalar_i32(-1));
}

static void test_slices(void **state) {
    floe_context *ctx = *state;
    CHECK(ctx, "Slice", NULL, R(-1, 1, 3, 4), I32(1, 0), I32(2, 3));
    CHECK(ctx, "Slice", NULL, R(-1, 1, 3, 4), I32(0, 1), I32(-1, 2));
    CHECK(ctx, "StridedSlice", NULL, R(-1, 1, 4, 5), I32(1, 0), I32(3, 5), I32(1, 2));
    CHECK(ctx, "StridedSlice", NULL, R(-1, 1, 4, 5), I32(-1, 4), I32(0, 0), I32(-1, -2));
    floe_attrs *a;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_int(a, "shrink_axis_mask", 1);
    floe_attrs_set_int(a, "end_mask", 2);
    CHECK(ctx, "StridedSlice", a, R(-1, 1, 4, 5), I32(2, 1), I32(3, 0), I32(1, 1));
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_int(a, "ellipsis_mask", 1);
    floe_attrs_set_int(a, "new_axis_mask", 2);
    CHECK(ctx, "StridedSlice", a, R(-1, 1, 2, 3, 4), I32(0, 0, 1), I32(0, 0, 3), I32(1, 1, 1));
    CHECK(ctx, "Pad", NULL, R(-1, 1, 2, 3), tc_i32(DIMS(2, 2), (const int32_t[]){1, 0, 2, 1}));
    floe_tensor *pv = SCALAR(-1, 1);
    CHECK(ctx, "PadV2", NULL, R(-1, 1, 2, 3), tc_i32(DIMS(2, 2), (const int32_t[]){0, 1, 1, 1}),
          pv);
    CHECK(ctx, "Tile", NULL, R(-1, 1, 2, 3), I32(2, 3));
    CHECK(ctx, "Tile", NULL, R(-1, 1, 1, 3, 2), I32(3, 1, 2));
    CHECK(ctx, "Fill", NULL, I32(2, 3), SCALAR(-1, 1));
}

static void test_gather(void **state) {
    floe_context *ctx = *state;
    CHECK(ctx, "GatherV2", NULL, R(-1, 1, 4, 3), I32(3, 0, 3, 1), tc_scalar_i32(0));
    int64_t d[2] = {2, 2};
    CHECK(ctx, "GatherV2", NULL, R(-1, 1, 5), tc_i32(d, 2, (const int32_t[]){4, 4, 0, 2}),
          tc_scalar_i32(0));
    /* Other axes are refused when the gradient runs, with a message. */
    double err;
    floe_tensor *in[3] = {R(-1, 1, 4, 3), I32(1, 0), tc_scalar_i32(1)};
    assert_int_equal(floe_gradient_check(ctx, "GatherV2", in, 3, NULL, 0, 1e-6, &err),
                     FLOE_UNIMPLEMENTED);
    tc_assert_error_contains("only axis 0");
    assert_true(isinf(err));
    for (int i = 0; i < 3; i++)
        floe_tensor_unref(in[i]);
}

/* The helper ops on known values. */
static void test_helper_ops(void **state) {
    floe_context *ctx = *state;
    floe_tensor *out[2] = {NULL, NULL};
    floe_tensor *in[2] = {I32(2, 1, 3), I32(4, 1)};
    assert_int_equal(floe_eager_run(ctx, "BroadcastGradientArgs", NULL, in, 2, NULL, out, 2),
                     FLOE_OK);
    assert_int_equal(floe_tensor_num_elements(out[0]), 1);
    assert_int_equal(((int32_t *)floe_tensor_data(out[0]))[0], 1);
    assert_int_equal(floe_tensor_num_elements(out[1]), 2);
    assert_int_equal(((int32_t *)floe_tensor_data(out[1]))[0], 0);
    assert_int_equal(((int32_t *)floe_tensor_data(out[1]))[1], 2);
    floe_tensor_unref(out[0]);
    floe_tensor_unref(out[1]);
    floe_tensor_unref(in[1]);
    in[1] = I32(4);
    assert_int_equal(tc_run_status(ctx, "BroadcastGradientArgs", in, 2, NULL, 2),
                     FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);

    in[0] = I32(2, 3, 4);
    in[1] = I32(-1, 0);
    floe_tensor *r = tc_run1(ctx, "ReducedShape", in, 2, NULL);
    assert_memory_equal(floe_tensor_data(r), ((int32_t[]){1, 3, 1}), 12);
    floe_tensor_unref(r);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);

    in[0] = I32(2, 0, 1);
    r = tc_run1(ctx, "InvertPermutation", in, 1, NULL);
    assert_memory_equal(floe_tensor_data(r), ((int32_t[]){1, 2, 0}), 12);
    floe_tensor_unref(r);
    floe_tensor_unref(in[0]);
    in[0] = I32(0, 0, 1);
    assert_int_equal(tc_run_status(ctx, "InvertPermutation", in, 1, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(in[0]);

    floe_tensor *co[3] = {tc_scalar_i32(1), I32(2, 3), I32(2, 5)};
    assert_int_equal(floe_eager_run(ctx, "ConcatOffset", NULL, co, 3, NULL, out, 2), FLOE_OK);
    assert_memory_equal(floe_tensor_data(out[0]), ((int32_t[]){0, 0}), 8);
    assert_memory_equal(floe_tensor_data(out[1]), ((int32_t[]){0, 3}), 8);
    floe_tensor_unref(out[0]);
    floe_tensor_unref(out[1]);
    for (int i = 0; i < 3; i++)
        floe_tensor_unref(co[i]);

    float g[6] = {1, 2, 3, 4, 5, 6};
    int64_t gd[2] = {3, 2}, pd[1] = {2};
    floe_tensor *gg[4] = {tc_f32(gd, 2, g), I32(2, 0, 2), tc_i64(pd, 1, (int64_t[]){3, 2}),
                          tc_scalar_i32(0)};
    r = tc_run1(ctx, "GatherGrad", gg, 4, NULL);
    tc_assert_close_f32(r, (float[]){3, 4, 0, 0, 6, 8}, 6, 0, 0);
    floe_tensor_unref(r);
    floe_tensor_unref(gg[1]);
    gg[1] = I32(2, 0, 3);
    assert_int_equal(tc_run_status(ctx, "GatherGrad", gg, 4, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("out of range");
    for (int i = 0; i < 4; i++)
        floe_tensor_unref(gg[i]);

    floe_tensor *an[2] = {tc_f32(gd, 2, g), tc_f32(gd, 2, g)};
    r = tc_run1(ctx, "AddN", an, 2, NULL);
    tc_assert_close_f32(r, (float[]){2, 4, 6, 8, 10, 12}, 6, 0, 0);
    floe_tensor_unref(r);
    floe_tensor_unref(an[1]);
    an[1] = tc_f32(pd, 1, g);
    assert_int_equal(tc_run_status(ctx, "AddN", an, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(an[0]);
    floe_tensor_unref(an[1]);
}

/* Ops flagged as not differentiable give no gradient and no error. */
static void test_no_gradient_ops(void **state) {
    floe_context *ctx = *state;
    double err = -1;
    floe_tensor *in[1] = {R(-1, 1, 2, 3)};
    /* StopGradient: the symbolic gradient is zero, the numeric one is not. */
    assert_int_equal(floe_gradient_check(ctx, "StopGradient", in, 1, NULL, 0, 1e-6, &err),
                     FLOE_OK);
    assert_true(err > 0.4);
    assert_int_equal(floe_gradient_check(ctx, "PreventGradient", in, 1, NULL, 0, 1e-6, &err),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("gradient explicitly prevented");
    floe_tensor_unref(in[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),          cmocka_unit_test(test_binary_broadcasting),
        cmocka_unit_test(test_select),         cmocka_unit_test(test_cast),
        cmocka_unit_test(test_matmul),         cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_shapes),         cmocka_unit_test(test_prod),         cmocka_unit_test(test_pack_concat),
        cmocka_unit_test(test_slices),         cmocka_unit_test(test_gather),
        cmocka_unit_test(test_helper_ops),     cmocka_unit_test(test_no_gradient_ops),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
