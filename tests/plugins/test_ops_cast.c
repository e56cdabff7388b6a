/*
 * test_ops_cast.c - the Cast op of ops_math (cast.c).
 *
 * Half-precision conversions are checked exhaustively where that is cheap (all 65536
 * f16 and bf16 bit patterns widened and narrowed back) and against a reference built
 * from nearbyint() and ldexp() on random f32/f64 values spanning subnormals, normals and
 * overflow.  Then the documented rules: saturation of float to integer (NaN to 0),
 * wrap-around between integers, single rounding of wide integers into narrow floats,
 * Truncate, bool; every one of the 169 (source, destination) pairs on small values;
 * same-dtype forwarding, empty and large tensors, and invalid attrs.
 *
 * Sections: helpers; half precision; integers; every pair; errors.
 */
#include "test_common.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------------- */

static floe_tensor *cast_attrs_run(floe_context *ctx, floe_tensor *x, floe_dtype dst,
                                   int truncate) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(a, "SrcT", floe_tensor_dtype(x)), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(a, "DstT", dst), FLOE_OK);
    if (truncate >= 0)
        assert_int_equal(floe_attrs_set_bool(a, "Truncate", truncate), FLOE_OK);
    floe_tensor *y = tc_run1(ctx, "Cast", &x, 1, a);
    floe_attrs_free(a);
    tc_assert_shape(y, dst, floe_tensor_shape(x), floe_tensor_ndim(x));
    /* the cases read (and one writes) the result's bytes: a host copy of a GPU's */
    floe_tensor *h = tc_host(y);
    floe_tensor_unref(y);
    return h;
}

static floe_tensor *cast(floe_context *ctx, floe_tensor *x, floe_dtype dst) {
    return cast_attrs_run(ctx, x, dst, -1);
}

/* Reference decoders. */
static double ref_f16_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double s = (h >> 15) ? -1.0 : 1.0;
    if (e == 31)
        return m ? NAN : s * INFINITY;
    if (e == 0)
        return s * ldexp(m, -24);
    return s * ldexp(1024 + m, e - 25);
}

static double ref_bf16_value(uint16_t h) {
    int e = (h >> 7) & 255, m = h & 127;
    double s = (h >> 15) ? -1.0 : 1.0;
    if (e == 255)
        return m ? NAN : s * INFINITY;
    if (e == 0)
        return s * ldexp(m, -133);
    return s * ldexp(128 + m, e - 134);
}

/* Reference rounding of @v to a float of @mbits mantissa bits, minimum normal exponent
 * @emin and overflow threshold @max (the largest finite), ties to even (nearbyint in
 * the default rounding mode). */
static double ref_round(double v, int mbits, int emin, double max) {
    if (isnan(v) || isinf(v) || v == 0)
        return v;
    int e;
    frexp(fabs(v), &e);
    e -= 1;                          /* |v| in [2^e, 2^(e+1)) */
    if (e < emin)
        e = emin;                    /* subnormal: fixed spacing */
    double ulp = ldexp(1.0, e - mbits);
    double r = nearbyint(v / ulp) * ulp;
    if (fabs(r) > max)
        return v < 0 ? -INFINITY : INFINITY;
    return r;
}

static bool same_value(double a, double b) {
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

/* ---- Half precision --------------------------------------------------------------------- */

static void f16_bf16_widen_exactly_and_round_trip(void **state) {
    const int64_t n = 65536;
    for (int which = 0; which < 2; which++) {
        floe_dtype dt = which ? FLOE_DTYPE_BF16 : FLOE_DTYPE_F16;
        floe_tensor *h = tc_tensor(dt, &n, 1, NULL);
        uint16_t *hp = floe_tensor_data(h);
        for (int64_t i = 0; i < n; i++)
            hp[i] = (uint16_t)i;
        floe_tensor *f = cast(*state, h, FLOE_DTYPE_F32);
        floe_tensor *d = cast(*state, h, FLOE_DTYPE_F64);
        const float *fp = floe_tensor_data(f);
        const double *dp = floe_tensor_data(d);
        for (int64_t i = 0; i < n; i++) {
            double e = which ? ref_bf16_value((uint16_t)i) : ref_f16_value((uint16_t)i);
            if (!same_value(fp[i], e) || !same_value(dp[i], e))
                fail_msg("%s 0x%04x: f32 %.9g f64 %.17g, expected %.17g", floe_dtype_name(dt),
                         (unsigned)i, fp[i], dp[i], e);
        }
        /* and back: identical bits, except NaNs which stay NaN */
        floe_tensor *back_f = cast(*state, f, dt), *back_d = cast(*state, d, dt);
        const uint16_t *bf = floe_tensor_data(back_f), *bd = floe_tensor_data(back_d);
        for (int64_t i = 0; i < n; i++) {
            double e = which ? ref_bf16_value((uint16_t)i) : ref_f16_value((uint16_t)i);
            if (isnan(e)) {
                double g1 = which ? ref_bf16_value(bf[i]) : ref_f16_value(bf[i]);
                double g2 = which ? ref_bf16_value(bd[i]) : ref_f16_value(bd[i]);
                assert_true(isnan(g1) && isnan(g2));
                assert_int_equal(bf[i] >> 15, (uint16_t)i >> 15);   /* sign kept */
            } else if (bf[i] != (uint16_t)i || bd[i] != (uint16_t)i) {
                fail_msg("%s 0x%04x came back as 0x%04x / 0x%04x", floe_dtype_name(dt),
                         (unsigned)i, bf[i], bd[i]);
            }
        }
        floe_tensor_unref(back_f);
        floe_tensor_unref(back_d);
        floe_tensor_unref(f);
        floe_tensor_unref(d);
        floe_tensor_unref(h);
    }
}

static void narrowing_to_f16_bf16_rounds_to_nearest_even(void **state) {
    const int64_t n = 200000;
    floe_tensor *x32 = tc_tensor(FLOE_DTYPE_F32, &n, 1, NULL);
    floe_tensor *x64 = tc_tensor(FLOE_DTYPE_F64, &n, 1, NULL);
    float *p32 = floe_tensor_data(x32);
    double *p64 = floe_tensor_data(x64);
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        /* random bits over the exponent range of both formats, plus exact ties */
        uint64_t r = tc_rng_next(&s);
        double m = 1.0 + (double)(r >> 12) * 0x1p-52;
        int e = (int)(r % 300) - 150;
        double v = ldexp(m, e) * ((r >> 11) & 1 ? -1 : 1);
        if (i % 5 == 0)          /* halfway between two f16 values */
            v = ldexp(1.0 + (double)((r >> 20) % 1024) / 1024 + 1.0 / 2048, (int)(r % 40) - 25);
        if (i % 7 == 0)          /* halfway between two bf16 values */
            v = ldexp(1.0 + (double)((r >> 20) % 128) / 128 + 1.0 / 256, (int)(r % 260) - 135);
        p64[i] = v;
        p32[i] = (float)v;
    }
    for (int which = 0; which < 2; which++) {
        floe_dtype dt = which ? FLOE_DTYPE_BF16 : FLOE_DTYPE_F16;
        for (int src = 0; src < 2; src++) {
            floe_tensor *y = cast(*state, src ? x64 : x32, dt);
            const uint16_t *h = floe_tensor_data(y);
            for (int64_t i = 0; i < n; i++) {
                double v = src ? p64[i] : p32[i];
                double e = which ? ref_round(v, 7, -126, ldexp(255, 120))
                                 : ref_round(v, 10, -14, 65504);
                double g = which ? ref_bf16_value(h[i]) : ref_f16_value(h[i]);
                if (!same_value(g, e))
                    fail_msg("%s -> %s of %.17g: got %.17g (0x%04x), expected %.17g",
                             src ? "f64" : "f32", floe_dtype_name(dt), v, g, h[i], e);
            }
            floe_tensor_unref(y);
        }
    }
    /* f64 -> f32 against the C conversion (IEEE round to nearest even) */
    floe_tensor *y = cast(*state, x64, FLOE_DTYPE_F32);
    for (int64_t i = 0; i < n; i++)
        assert_true(same_value(((float *)floe_tensor_data(y))[i], (float)p64[i]));
    floe_tensor_unref(y);
    floe_tensor_unref(x32);
    floe_tensor_unref(x64);
}

static void special_values_in_half_precision(void **state) {
    const int64_t n = 10;
    /* 2^-24 is the smallest f16 subnormal; 2^-25 a tie between it and 0 (to 0) */
    const float x[10] = {65504.0f, 65519.0f, 65520.0f, -1e6f, 0x1p-24f, 0x1p-25f,
                         0x1.000002p-25f, NAN, -0.0f, INFINITY};
    const uint16_t f16[10] = {0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0001, 0x7e00,
                              0x8000, 0x7c00};
    floe_tensor *t = tc_f32(&n, 1, x);
    floe_tensor *y = cast(*state, t, FLOE_DTYPE_F16);
    const uint16_t *h = floe_tensor_data(y);
    for (int i = 0; i < 10; i++) {
        if (i == 7)
            assert_true((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff) != 0);
        else if (h[i] != f16[i])
            fail_msg("f16 of %.9g: 0x%04x, expected 0x%04x", x[i], h[i], f16[i]);
    }
    floe_tensor_unref(y);
    /* bf16: the largest finite f32 rounds to inf, 1 + 2^-8 (a tie) to 1 */
    const float xb[3] = {3.4028235e38f, 1.00390625f, 1.01171875f};
    const uint16_t bf[3] = {0x7f80, 0x3f80, 0x3f82};
    const int64_t n3 = 3;
    floe_tensor *tb = tc_f32(&n3, 1, xb);
    y = cast(*state, tb, FLOE_DTYPE_BF16);
    assert_memory_equal(floe_tensor_data(y), bf, sizeof(bf));
    floe_tensor_unref(y);
    /* Truncate drops the low bits instead */
    y = cast_attrs_run(*state, tb, FLOE_DTYPE_BF16, 1);
    const uint16_t bft[3] = {0x7f7f, 0x3f80, 0x3f81};
    assert_memory_equal(floe_tensor_data(y), bft, sizeof(bft));
    floe_tensor_unref(y);
    floe_tensor_unref(tb);
    floe_tensor_unref(t);
}

static void truncate_rounds_toward_zero(void **state) {
    const int64_t n = 100000;
    floe_tensor *x = tc_tensor(FLOE_DTYPE_F32, &n, 1, NULL);
    uint32_t *bits = floe_tensor_data(x);
    uint64_t s = 99;
    for (int64_t i = 0; i < n; i++) {
        bits[i] = (uint32_t)tc_rng_next(&s);
        if (((bits[i] >> 23) & 0xff) == 0xff)   /* no inf or NaN here */
            bits[i] &= ~(1u << 30);
    }
    floe_tensor *y = cast_attrs_run(*state, x, FLOE_DTYPE_BF16, 1);
    const uint16_t *h = floe_tensor_data(y);
    for (int64_t i = 0; i < n; i++)
        if (h[i] != (uint16_t)(bits[i] >> 16))
            fail_msg("truncating 0x%08x gave 0x%04x", bits[i], h[i]);
    floe_tensor_unref(y);
    /* f64 -> f32 truncating: |result| <= |value|, and within one f32 ulp */
    floe_tensor *d = tc_tensor(FLOE_DTYPE_F64, &n, 1, NULL);
    double *dp = floe_tensor_data(d);
    for (int64_t i = 0; i < n; i++)
        dp[i] = ldexp(1.0 + (double)(tc_rng_next(&s) >> 12) * 0x1p-52, (int)(i % 200) - 100) *
                (i % 2 ? -1 : 1);
    dp[0] = 1e300;              /* overflow truncates to the largest finite */
    y = cast_attrs_run(*state, d, FLOE_DTYPE_F32, 1);
    const float *fp = floe_tensor_data(y);
    assert_true(fp[0] == 3.4028235e38f);
    for (int64_t i = 1; i < n; i++) {
        double v = dp[i], g = fp[i];
        if (!(fabs(g) <= fabs(v) && fabs(v) - fabs(g) < ldexp(fabs(g), -23) && signbit(g) == signbit(v)))
            fail_msg("truncating %.17g gave %.9g", v, g);
    }
    floe_tensor_unref(y);
    floe_tensor_unref(d);
    floe_tensor_unref(x);
}

/* ---- Integers -------------------------------------------------------------------------- */

static void float_to_int_saturates(void **state) {
    const int64_t n = 12;
    const float x[12] = {NAN, INFINITY, -INFINITY, 1e10f, -1e10f, 3.7f,
                         -3.7f, 127.9f, 128.0f, -129.0f, -0.9f, 255.5f};
    floe_tensor *t = tc_f32(&n, 1, x);
    struct { floe_dtype dt; int64_t e[12]; } cases[] = {
        {FLOE_DTYPE_I8, {0, 127, -128, 127, -128, 3, -3, 127, 127, -128, 0, 127}},
        {FLOE_DTYPE_U8, {0, 255, 0, 255, 0, 3, 0, 127, 128, 0, 0, 255}},
        {FLOE_DTYPE_I16, {0, 32767, -32768, 32767, -32768, 3, -3, 127, 128, -129, 0, 255}},
        {FLOE_DTYPE_I32, {0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, 3, -3, 127, 128, -129, 0, 255}},
        {FLOE_DTYPE_I64, {0, INT64_MAX, INT64_MIN, 10000000000ll, -10000000000ll, 3, -3, 127,
                          128, -129, 0, 255}},
    };
    for (int c = 0; c < 5; c++) {
        floe_tensor *y = cast(*state, t, cases[c].dt);
        for (int i = 0; i < 12; i++) {
            int64_t g = 0;
            const void *p = floe_tensor_data(y);
            switch (cases[c].dt) {
            case FLOE_DTYPE_I8: g = ((const int8_t *)p)[i]; break;
            case FLOE_DTYPE_U8: g = ((const uint8_t *)p)[i]; break;
            case FLOE_DTYPE_I16: g = ((const int16_t *)p)[i]; break;
            case FLOE_DTYPE_I32: g = ((const int32_t *)p)[i]; break;
            default: g = ((const int64_t *)p)[i]; break;
            }
            if (g != cases[c].e[i])
                fail_msg("f32 %.9g -> %s: %lld, expected %lld", x[i], floe_dtype_name(cases[c].dt),
                         (long long)g, (long long)cases[c].e[i]);
        }
        floe_tensor_unref(y);
    }
    floe_tensor_unref(t);
    /* the int64 and uint64 edges in f64 */
    const double d[6] = {9223372036854775807.0, -9223372036854775808.0, 9.2233720368547748e18,
                         1.8446744073709552e19, 1.8446744073709550e19, -1.0};
    const int64_t n6 = 6;
    floe_tensor *td = tc_tensor(FLOE_DTYPE_F64, &n6, 1, d);
    floe_tensor *y = cast(*state, td, FLOE_DTYPE_I64);
    const int64_t *yi = floe_tensor_data(y);
    assert_true(yi[0] == INT64_MAX && yi[1] == INT64_MIN && yi[2] == 9223372036854774784ll);
    floe_tensor_unref(y);
    y = cast(*state, td, FLOE_DTYPE_U64);
    const uint64_t *yu = floe_tensor_data(y);
    assert_true(yu[0] == 9223372036854775808ull && yu[1] == 0 && yu[3] == UINT64_MAX &&
                yu[4] == 18446744073709549568ull && yu[5] == 0);
    floe_tensor_unref(y);
    floe_tensor_unref(td);
}

static void int_to_int_wraps(void **state) {
    const int64_t n = 5;
    const int64_t x[5] = {300, -1, (1ll << 40) + 5, INT64_MIN, 128};
    floe_tensor *t = tc_i64(&n, 1, x);
    floe_tensor *y = cast(*state, t, FLOE_DTYPE_U8);
    const uint8_t u8[5] = {44, 255, 5, 0, 128};
    assert_memory_equal(floe_tensor_data(y), u8, 5);
    floe_tensor_unref(y);
    y = cast(*state, t, FLOE_DTYPE_I8);
    const int8_t i8[5] = {44, -1, 5, 0, -128};
    assert_memory_equal(floe_tensor_data(y), i8, 5);
    floe_tensor_unref(y);
    y = cast(*state, t, FLOE_DTYPE_I32);
    const int32_t i32[5] = {300, -1, 5, 0, 128};
    assert_memory_equal(floe_tensor_data(y), i32, sizeof(i32));
    floe_tensor_unref(y);
    y = cast(*state, t, FLOE_DTYPE_U64);
    const uint64_t u64[5] = {300, UINT64_MAX, (1ull << 40) + 5, 1ull << 63, 128};
    assert_memory_equal(floe_tensor_data(y), u64, sizeof(u64));
    /* and u64 -> i64 */
    floe_tensor *z = cast(*state, y, FLOE_DTYPE_I64);
    assert_memory_equal(floe_tensor_data(z), x, sizeof(x));
    floe_tensor_unref(z);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
}

static void wide_int_to_narrow_float_rounds_once(void **state) {
    const int64_t n = 4;
    /* just above a bf16 tie: rounding to double first would land on the tie and go to
     * even (down); rounding once goes up */
    const int64_t x[4] = {(1ll << 60) + (1ll << 52) + 1, -((1ll << 60) + (1ll << 52) + 1),
                          (1ll << 60) + (1ll << 52), (1ll << 60) + (1ll << 36) + 1};
    floe_tensor *t = tc_i64(&n, 1, x);
    floe_tensor *y = cast(*state, t, FLOE_DTYPE_BF16);
    const uint16_t *h = floe_tensor_data(y);
    assert_true(ref_bf16_value(h[0]) == ldexp(1.0, 60) + ldexp(1.0, 53));
    assert_true(ref_bf16_value(h[1]) == -(ldexp(1.0, 60) + ldexp(1.0, 53)));
    assert_true(ref_bf16_value(h[2]) == ldexp(1.0, 60));     /* an exact tie: to even */
    floe_tensor_unref(y);
    y = cast(*state, t, FLOE_DTYPE_F32);
    assert_true(((float *)floe_tensor_data(y))[3] == (float)(ldexp(1.0, 60) + ldexp(1.0, 37)));
    floe_tensor_unref(y);
    floe_tensor_unref(t);
    /* u64 beyond int64 */
    const uint64_t u[2] = {UINT64_MAX, (1ull << 63) + (1ull << 55) + 1};
    const int64_t n2 = 2;
    floe_tensor *tu = tc_tensor(FLOE_DTYPE_U64, &n2, 1, u);
    y = cast(*state, tu, FLOE_DTYPE_BF16);
    h = floe_tensor_data(y);
    assert_true(ref_bf16_value(h[0]) == ldexp(1.0, 64));
    assert_true(ref_bf16_value(h[1]) == ldexp(1.0, 63) + ldexp(1.0, 56));
    floe_tensor_unref(y);
    y = cast(*state, tu, FLOE_DTYPE_F16);
    assert_true(isinf(ref_f16_value(((uint16_t *)floe_tensor_data(y))[0])));
    floe_tensor_unref(y);
    floe_tensor_unref(tu);
    /* integers into f16: ties to even, overflow to inf */
    const int32_t xi[5] = {2049, 2051, 65504, 65519, 65520};
    const double e[5] = {2048, 2052, 65504, 65504, INFINITY};
    const int64_t n5 = 5;
    floe_tensor *ti = tc_i32(&n5, 1, xi);
    y = cast(*state, ti, FLOE_DTYPE_F16);
    for (int i = 0; i < 5; i++)
        assert_true(ref_f16_value(((uint16_t *)floe_tensor_data(y))[i]) == e[i]);
    floe_tensor_unref(y);
    floe_tensor_unref(ti);
}

static void bool_casts_test_nonzero(void **state) {
    const int64_t n = 5;
    const float x[5] = {0.0f, -0.0f, 0.5f, NAN, -INFINITY};
    floe_tensor *t = tc_f32(&n, 1, x);
    floe_tensor *y = cast(*state, t, FLOE_DTYPE_BOOL);
    const uint8_t e[5] = {0, 0, 1, 1, 1};
    assert_memory_equal(floe_tensor_data(y), e, 5);
    floe_tensor *z = cast(*state, y, FLOE_DTYPE_F32);
    const float ez[5] = {0, 0, 1, 1, 1};
    tc_assert_close_f32(z, ez, 5, 0, 0);
    floe_tensor_unref(z);
    /* bytes other than 0/1 count as true */
    ((uint8_t *)floe_tensor_data(y))[0] = 7;
    z = cast(*state, y, FLOE_DTYPE_I32);
    assert_int_equal(((int32_t *)floe_tensor_data(z))[0], 1);
    floe_tensor_unref(z);
    floe_tensor_unref(y);
    floe_tensor_unref(t);
}

/* ---- Every pair --------------------------------------------------------------------- */

static const floe_dtype all_types[13] = {
    FLOE_DTYPE_F16, FLOE_DTYPE_BF16, FLOE_DTYPE_F32, FLOE_DTYPE_F64, FLOE_DTYPE_I8,
    FLOE_DTYPE_I16, FLOE_DTYPE_I32, FLOE_DTYPE_I64, FLOE_DTYPE_U8,  FLOE_DTYPE_U16,
    FLOE_DTYPE_U32, FLOE_DTYPE_U64, FLOE_DTYPE_BOOL};

/* Writes small value @v (0..100) as dtype @dt. */
static void put_small(floe_tensor *t, int64_t i, int v) {
    void *p = floe_tensor_data(t);
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_F16: {   /* exact: v < 2048 */
        int e = 0;
        if (v == 0) { ((uint16_t *)p)[i] = 0; break; }
        while ((v >> e) > 1) e++;
        ((uint16_t *)p)[i] = (uint16_t)(((e + 15) << 10) | (((v << 10) >> e) & 1023));
        break;
    }
    case FLOE_DTYPE_BF16: {
        float f = (float)v;
        uint32_t b;
        memcpy(&b, &f, 4);
        ((uint16_t *)p)[i] = (uint16_t)(b >> 16);
        break;
    }
    case FLOE_DTYPE_F32: ((float *)p)[i] = (float)v; break;
    case FLOE_DTYPE_F64: ((double *)p)[i] = v; break;
    case FLOE_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case FLOE_DTYPE_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case FLOE_DTYPE_I32: ((int32_t *)p)[i] = v; break;
    case FLOE_DTYPE_I64: ((int64_t *)p)[i] = v; break;
    case FLOE_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case FLOE_DTYPE_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case FLOE_DTYPE_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case FLOE_DTYPE_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case FLOE_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: fail_msg("put_small");
    }
}

static double get_any(const floe_tensor *t, int64_t i) {
    const void *p = floe_tensor_data(t);
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_F16: return ref_f16_value(((const uint16_t *)p)[i]);
    case FLOE_DTYPE_BF16: return ref_bf16_value(((const uint16_t *)p)[i]);
    case FLOE_DTYPE_F32: return ((const float *)p)[i];
    case FLOE_DTYPE_F64: return ((const double *)p)[i];
    case FLOE_DTYPE_I8: return ((const int8_t *)p)[i];
    case FLOE_DTYPE_I16: return ((const int16_t *)p)[i];
    case FLOE_DTYPE_I32: return ((const int32_t *)p)[i];
    case FLOE_DTYPE_I64: return (double)((const int64_t *)p)[i];
    case FLOE_DTYPE_U8: return ((const uint8_t *)p)[i];
    case FLOE_DTYPE_U16: return ((const uint16_t *)p)[i];
    case FLOE_DTYPE_U32: return ((const uint32_t *)p)[i];
    case FLOE_DTYPE_U64: return (double)((const uint64_t *)p)[i];
    case FLOE_DTYPE_BOOL: return ((const uint8_t *)p)[i];
    default: fail_msg("get_any");
    }
    return 0;
}

static void every_pair_converts_small_values(void **state) {
    const int vals[6] = {0, 1, 2, 3, 100, 64};
    const int64_t n = 6;
    for (int s = 0; s < 13; s++) {
        floe_tensor *x = tc_tensor(all_types[s], &n, 1, NULL);
        for (int i = 0; i < 6; i++)
            put_small(x, i, vals[i]);
        for (int d = 0; d < 13; d++) {
            floe_tensor *y = cast(*state, x, all_types[d]);
            for (int i = 0; i < 6; i++) {
                double src = all_types[s] == FLOE_DTYPE_BOOL ? (vals[i] != 0) : vals[i];
                double e = all_types[d] == FLOE_DTYPE_BOOL ? (src != 0) : src;
                if (get_any(y, i) != e)
                    fail_msg("%s -> %s of %d: %g, expected %g", floe_dtype_name(all_types[s]),
                             floe_dtype_name(all_types[d]), vals[i], get_any(y, i), e);
            }
            floe_tensor_unref(y);
        }
        floe_tensor_unref(x);
    }
}

static void same_dtype_forwards_and_large_tensors_split(void **state) {
    const int64_t s[2] = {700, 300};
    floe_tensor *x = tc_f32(s, 2, NULL);
    float *p = floe_tensor_data(x);
    for (int64_t i = 0; i < s[0] * s[1]; i++)
        p[i] = (float)(i % 1000) - 500.25f;
    floe_tensor *y = cast(*state, x, FLOE_DTYPE_F32);
    assert_memory_equal(floe_tensor_data(y), p, sizeof(float) * 700 * 300);
    floe_tensor_unref(y);
    y = cast(*state, x, FLOE_DTYPE_I32);
    const int32_t *yi = floe_tensor_data(y);
    for (int64_t i = 0; i < s[0] * s[1]; i++)
        if (yi[i] != (int32_t)p[i])
            fail_msg("element %lld: %d, expected %d", (long long)i, yi[i], (int32_t)p[i]);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
    /* empty */
    const int64_t e[2] = {0, 5};
    x = tc_f32(e, 2, NULL);
    y = cast(*state, x, FLOE_DTYPE_F16);
    tc_assert_shape(y, FLOE_DTYPE_F16, e, 2);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

/* ---- Errors ------------------------------------------------------------------------- */

static void invalid_cast_attrs_are_rejected(void **state) {
    const int64_t n = 2;
    floe_tensor *x = tc_f32(&n, 1, NULL);
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    /* no DstT */
    assert_int_not_equal(tc_run_status(*state, "Cast", &x, 1, a, 1), FLOE_OK);
    tc_assert_error_contains("DstT");
    /* a destination Cast does not handle */
    assert_int_equal(floe_attrs_set_type(a, "DstT", FLOE_DTYPE_STRING), FLOE_OK);
    assert_int_not_equal(tc_run_status(*state, "Cast", &x, 1, a, 1), FLOE_OK);
    tc_assert_error_contains("string");
    /* SrcT contradicting the input */
    assert_int_equal(floe_attrs_set_type(a, "DstT", FLOE_DTYPE_I32), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(a, "SrcT", FLOE_DTYPE_F64), FLOE_OK);
    assert_int_not_equal(tc_run_status(*state, "Cast", &x, 1, a, 1), FLOE_OK);
    /* Truncate of the wrong kind */
    assert_int_equal(floe_attrs_set_type(a, "SrcT", FLOE_DTYPE_F32), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "Truncate", 1), FLOE_OK);
    assert_int_not_equal(tc_run_status(*state, "Cast", &x, 1, a, 1), FLOE_OK);
    tc_assert_error_contains("Truncate");
    floe_attrs_free(a);
    floe_tensor_unref(x);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tc_setup_context, tc_teardown_context)
    const struct CMUnitTest tests[] = {
        T(f16_bf16_widen_exactly_and_round_trip),
        T(narrowing_to_f16_bf16_rounds_to_nearest_even),
        T(special_values_in_half_precision),
        T(truncate_rounds_toward_zero),
        T(float_to_int_saturates),
        T(int_to_int_wraps),
        T(wide_int_to_narrow_float_rounds_once),
        T(bool_casts_test_nonzero),
        T(every_pair_converts_small_values),
        T(same_dtype_forwards_and_large_tensors_split),
        T(invalid_cast_attrs_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
