/*
 * test_ops_random.c - RandomUniform, RandomStandardNormal and TruncatedNormal.
 *
 * Exactness: an independent Philox4x32-10, checked against Random123's known answers,
 * predicts RandomUniform's f32 output bit for bit (the stream TensorFlow's first run
 * of a seeded node gives).  Statistics on 100k samples: ranges, mean and variance
 * within about five standard errors, the truncation at 2 sigma.  Streams:
 * reproducible with seeds in a fresh session, different for other seeds and for
 * unseeded nodes, advancing across runs of one node, and independent of the number
 * of threads.  Errors: bad shapes.
 */
#include "test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- An independent Philox4x32-10 -------------------------------------------------------- */

static void ref_philox(const uint32_t in[4], const uint32_t key_in[2], uint32_t out[4]) {
    uint32_t c[4] = {in[0], in[1], in[2], in[3]}, k0 = key_in[0], k1 = key_in[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[1] = (uint32_t)p1;
        c[3] = (uint32_t)p0;
        c[0] = n0;
        c[2] = n2;
    }
    memcpy(out, c, sizeof(c));
}

static void ref_philox_matches_random123(void **state) {
    /* Random123 kat_vectors, philox4x32 with 10 rounds. */
    static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                       {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                       {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    static const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu},
                                       {0xa4093822u, 0x299f31d0u}};
    static const uint32_t want[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int i = 0; i < 3; i++) {
        uint32_t got[4];
        ref_philox(ctr[i], key[i], got);
        assert_memory_equal(got, want[i], sizeof(got));
    }
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static floe_attrs *rand_attrs(floe_dtype dt, int64_t seed, int64_t seed2) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_type(a, "dtype", dt);
    floe_attrs_set_int(a, "seed", seed);
    floe_attrs_set_int(a, "seed2", seed2);
    return a;
}

/* Eagerly runs @op for @n values (shape [n] or [2, n/2]). */
static floe_tensor *run_rand(floe_context *ctx, const char *op, floe_dtype dt, int64_t n,
                             int64_t seed, int64_t seed2) {
    int64_t dims[2] = {2, n / 2}, len2[1] = {2}, len1[1] = {1};
    int32_t n32[1] = {(int32_t)n};
    int two = n % 2 == 0 && n > 0;
    floe_tensor *shape = two ? tc_i64(len2, 1, dims) : tc_i32(len1, 1, n32);
    floe_attrs *a = rand_attrs(dt, seed, seed2);
    floe_tensor *out = tc_run1(ctx, op, &shape, 1, a);

    assert_int_equal(floe_tensor_dtype(out), dt);
    assert_int_equal(floe_tensor_num_elements(out), n);
    assert_int_equal(floe_tensor_ndim(out), two ? 2 : 1);
    floe_attrs_free(a);
    floe_tensor_unref(shape);
    /* the cases read the values' bytes: a host copy of a GPU's */
    floe_tensor *h = tc_host(out);
    floe_tensor_unref(out);
    return h;
}

static double elem(const floe_tensor *t, int64_t i) {
    const void *d = floe_tensor_data(t);
    uint32_t x;
    float f;
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_F32: return ((const float *)d)[i];
    case FLOE_DTYPE_F64: return ((const double *)d)[i];
    case FLOE_DTYPE_BF16:
        x = (uint32_t)((const uint16_t *)d)[i] << 16;
        memcpy(&f, &x, sizeof(f));
        return f;
    case FLOE_DTYPE_F16: {
        uint16_t h = ((const uint16_t *)d)[i];
        int e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        assert_true(e != 31);
        return (h & 0x8000) ? -v : v;
    }
    default: fail_msg("dtype");
    }
    return 0;
}

typedef struct moments {
    double mean, var, min, max, frac_beyond2;
} moments;

static moments moments_of(const floe_tensor *t) {
    int64_t n = floe_tensor_num_elements(t);
    moments m = {0, 0, INFINITY, -INFINITY, 0};
    for (int64_t i = 0; i < n; i++) {
        double v = elem(t, i);
        assert_false(isnan(v));
        m.mean += v;
        m.min = v < m.min ? v : m.min;
        m.max = v > m.max ? v : m.max;
        m.frac_beyond2 += fabs(v) >= 2;
    }
    m.mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        m.var += (elem(t, i) - m.mean) * (elem(t, i) - m.mean);
    m.var /= (double)(n - 1);
    m.frac_beyond2 /= (double)n;
    return m;
}

static void assert_near(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol))
        fail_msg("%s = %.6f, expected %.6f +- %.6f", what, got, want, tol);
}

#define N 100000

/* ---- Exact values --------------------------------------------------------------------------- */

static void uniform_f32_is_philox_stream(void **state) {
    const int64_t seed = 0x123456789abcdefll, seed2 = 42;
    floe_tensor *t = run_rand(*state, "RandomUniform", FLOE_DTYPE_F32, 1001, seed, seed2);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)((uint64_t)seed >> 32)};
    const float *got = floe_tensor_data(t);

    for (int64_t i = 0; i < 1001; i++) {
        uint32_t ctr[4] = {(uint32_t)(i / 4), 0, (uint32_t)seed2, 0}, w[4], bits;
        float want;
        ref_philox(ctr, key, w);
        bits = (w[i % 4] & 0x7fffffu) | 0x3f800000u;
        memcpy(&want, &bits, sizeof(want));
        want -= 1.0f;
        if (got[i] != want)
            fail_msg("element %lld: %.9g, expected %.9g", (long long)i, got[i], want);
    }
    floe_tensor_unref(t);
}

/* ---- Statistics ------------------------------------------------------------------------------ */

static void uniform_statistics(void **state) {
    static const floe_dtype dts[] = {FLOE_DTYPE_F32, FLOE_DTYPE_F64, FLOE_DTYPE_F16,
                                     FLOE_DTYPE_BF16};
    for (int d = 0; d < 4; d++) {
        floe_tensor *t = run_rand(*state, "RandomUniform", dts[d], N, 7, 11);
        moments m = moments_of(t);
        assert_true(m.min >= 0);
        assert_true(m.max < 1);
        /* Coarse types hold 2^-10 (f16) or 2^-7 (bf16) steps: mean shifts by half a step. */
        double bias = dts[d] == FLOE_DTYPE_F16 ? 0.5 / 1024 : dts[d] == FLOE_DTYPE_BF16 ? 0.5 / 128 : 0;
        assert_near(m.mean, 0.5 - bias, 0.005, "uniform mean");
        assert_near(m.var, 1.0 / 12, 0.002, "uniform variance");
        floe_tensor_unref(t);
    }
}

static void normal_statistics(void **state) {
    static const floe_dtype dts[] = {FLOE_DTYPE_F32, FLOE_DTYPE_F64, FLOE_DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        floe_tensor *t = run_rand(*state, "RandomStandardNormal", dts[d], N, 3, 5);
        moments m = moments_of(t);
        assert_near(m.mean, 0, 0.016, "normal mean");
        assert_near(m.var, 1, 0.025, "normal variance");
        assert_near(m.frac_beyond2, 0.0455, 0.0035, "normal fraction beyond 2 sigma");
        assert_true(m.max > 3.5 && m.min < -3.5);
        floe_tensor_unref(t);
    }
}

static void truncated_normal_statistics(void **state) {
    static const floe_dtype dts[] = {FLOE_DTYPE_F32, FLOE_DTYPE_F64, FLOE_DTYPE_F16};
    /* Variance of N(0,1) cut at +-2: 1 - 4 phi(2) / (2 Phi(2) - 1) = 0.773741. */
    for (int d = 0; d < 3; d++) {
        floe_tensor *t = run_rand(*state, "TruncatedNormal", dts[d], N, 9, 1);
        moments m = moments_of(t);
        assert_true(m.max < 2 && m.min > -2);
        assert_true(m.max > 1.95 && m.min < -1.95);
        assert_near(m.mean, 0, 0.014, "truncated mean");
        assert_near(m.var, 0.773741, 0.02, "truncated variance");
        floe_tensor_unref(t);
    }
}

/* ---- Streams -------------------------------------------------------------------------------- */

static int same_values(const floe_tensor *a, const floe_tensor *b) {
    return floe_tensor_nbytes(a) == floe_tensor_nbytes(b) &&
           memcmp(floe_tensor_data(a), floe_tensor_data(b), floe_tensor_nbytes(a)) == 0;
}

static void seeded_runs_reproduce_and_seeds_matter(void **state) {
    static const char *const ops[] = {"RandomUniform", "RandomStandardNormal",
                                      "TruncatedNormal"};
    for (int o = 0; o < 3; o++) {
        floe_tensor *a = run_rand(*state, ops[o], FLOE_DTYPE_F32, 999, 5, 6);
        floe_tensor *b = run_rand(*state, ops[o], FLOE_DTYPE_F32, 999, 5, 6);
        floe_tensor *c = run_rand(*state, ops[o], FLOE_DTYPE_F32, 999, 5, 7);
        floe_tensor *d = run_rand(*state, ops[o], FLOE_DTYPE_F32, 999, 6, 6);
        assert_true(same_values(a, b));
        assert_false(same_values(a, c));
        assert_false(same_values(a, d));
        floe_tensor_unref(a);
        floe_tensor_unref(b);
        floe_tensor_unref(c);
        floe_tensor_unref(d);
    }
}

static void unseeded_nodes_differ(void **state) {
    floe_tensor *a = run_rand(*state, "RandomUniform", FLOE_DTYPE_F32, 100, 0, 0);
    floe_tensor *b = run_rand(*state, "RandomUniform", FLOE_DTYPE_F32, 100, 0, 0);
    assert_false(same_values(a, b));
    floe_tensor_unref(a);
    floe_tensor_unref(b);
}

/* A graph with one random node over a constant shape; *@out its node. */
static floe_graph *rand_graph(floe_context *ctx, const char *op, int64_t n, int64_t seed,
                              floe_node **out) {
    floe_graph *g = NULL;
    floe_node_builder *b = NULL;
    floe_node *shape = NULL;
    int64_t one[1] = {1};
    floe_tensor *sv = tc_i64(one, 1, &n);

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Const", "shape", &b), FLOE_OK);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", sv);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_I64);
    assert_int_equal(floe_node_builder_finish(b, &shape), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, op, "r", &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(shape, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_int(floe_node_builder_attrs(b), "seed", seed);
    floe_attrs_set_int(floe_node_builder_attrs(b), "seed2", 0);
    assert_int_equal(floe_node_builder_finish(b, out), FLOE_OK);
    floe_tensor_unref(sv);
    return g;
}

static floe_tensor *session_fetch(floe_session *s, floe_node *n) {
    floe_output f = floe_out(n, 0);
    floe_tensor *t = NULL;
    if (floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t) != FLOE_OK)
        fail_msg("run: %s", floe_last_error());
    floe_tensor *h = tc_host(t);
    floe_tensor_unref(t);
    return h;
}

static void runs_advance_and_fresh_sessions_repeat(void **state) {
    static const char *const ops[] = {"RandomUniform", "TruncatedNormal"};
    for (int o = 0; o < 2; o++) {
        floe_node *r = NULL;
        floe_graph *g = rand_graph(*state, ops[o], 1000, 77, &r);
        floe_session *s1 = NULL, *s2 = NULL;
        floe_shape shp = floe_node_output_shape(r, 0);
        assert_int_equal(shp.ndim, 1);
        assert_int_equal(shp.dims[0], 1000);
        assert_int_equal(floe_session_new(g, NULL, &s1), FLOE_OK);
        assert_int_equal(floe_session_new(g, NULL, &s2), FLOE_OK);
        floe_tensor *a1 = session_fetch(s1, r), *a2 = session_fetch(s1, r);
        floe_tensor *b1 = session_fetch(s2, r), *b2 = session_fetch(s2, r);
        assert_false(same_values(a1, a2));
        assert_true(same_values(a1, b1));
        assert_true(same_values(a2, b2));
        floe_tensor_unref(a1);
        floe_tensor_unref(a2);
        floe_tensor_unref(b1);
        floe_tensor_unref(b2);
        floe_session_free(s1);
        floe_session_free(s2);
        floe_graph_free(g);
    }
}

static void values_do_not_depend_on_thread_count(void **state) {
    static const char *const ops[] = {"RandomUniform", "RandomStandardNormal",
                                      "TruncatedNormal"};
    floe_context_options o1, o4;
    floe_context *c1 = NULL, *c4 = NULL;

    floe_context_options_init(&o1);
    o1.num_threads = 1;
    floe_context_options_init(&o4);
    o4.num_threads = 4;
    assert_int_equal(floe_context_new(&o1, &c1), FLOE_OK);
    assert_int_equal(floe_context_new(&o4, &c4), FLOE_OK);
    for (int o = 0; o < 3; o++)
        for (int dbl = 0; dbl < 2; dbl++) {
            floe_dtype dt = dbl ? FLOE_DTYPE_F64 : FLOE_DTYPE_F32;
            floe_tensor *a = run_rand(c1, ops[o], dt, 300001, 12, 34);
            floe_tensor *b = run_rand(c4, ops[o], dt, 300001, 12, 34);
            assert_true(same_values(a, b));
            floe_tensor_unref(a);
            floe_tensor_unref(b);
        }
    floe_context_free(c1);
    floe_context_free(c4);
}

/* ---- Shapes ---------------------------------------------------------------------------------- */

static void shapes_scalar_empty_and_errors(void **state) {
    floe_attrs *a = rand_attrs(FLOE_DTYPE_F32, 1, 2);
    int64_t zero[1] = {0}, two[1] = {2}, sq[2] = {1, 1};
    int32_t neg[2] = {3, -1}, dims0[1] = {0};
    floe_tensor *shape = tc_i32(zero, 1, NULL), *out;

    out = tc_run1(*state, "RandomUniform", &shape, 1, a);         /* shape [] -> scalar */
    assert_int_equal(floe_tensor_ndim(out), 0);
    assert_int_equal(floe_tensor_num_elements(out), 1);
    floe_tensor_unref(out);
    floe_tensor_unref(shape);
    shape = tc_i32((int64_t[]){1}, 1, dims0);                     /* shape [0] -> empty */
    out = tc_run1(*state, "TruncatedNormal", &shape, 1, a);
    assert_int_equal(floe_tensor_num_elements(out), 0);
    floe_tensor_unref(out);
    floe_tensor_unref(shape);
    shape = tc_i32(two, 1, neg);
    assert_int_equal(tc_run_status(*state, "RandomUniform", &shape, 1, a, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("-1");
    floe_tensor_unref(shape);
    shape = tc_i32(sq, 2, (int32_t[]){4});
    assert_int_equal(tc_run_status(*state, "RandomStandardNormal", &shape, 1, a, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("vector");
    floe_tensor_unref(shape);
    shape = tc_i64(two, 1, (int64_t[]){INT64_MAX / 2, 3});
    assert_int_equal(tc_run_status(*state, "RandomUniform", &shape, 1, a, 1),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("overflow");
    floe_tensor_unref(shape);
    floe_attrs_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ref_philox_matches_random123),
        cmocka_unit_test(uniform_f32_is_philox_stream),
        cmocka_unit_test(uniform_statistics),
        cmocka_unit_test(normal_statistics),
        cmocka_unit_test(truncated_normal_statistics),
        cmocka_unit_test(seeded_runs_reproduce_and_seeds_matter),
        cmocka_unit_test(unseeded_nodes_differ),
        cmocka_unit_test(runs_advance_and_fresh_sessions_repeat),
        cmocka_unit_test(values_do_not_depend_on_thread_count),
        cmocka_unit_test(shapes_scalar_empty_and_errors),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
