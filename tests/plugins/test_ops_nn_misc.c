/*
 * test_ops_nn_misc.c - BiasAdd and BiasAddGrad (bias.c); Dropout, ResourceGather with its
 * gradient, InTopK and InTopKV2 (misc.c) of ops_nn.
 *
 * BiasAdd and BiasAddGrad run in both data formats, f32 and f64, on shapes from empty
 * to large enough for the thread pool, against naive references in double; their
 * errors (unknown data_format, bias of the wrong length, too low a rank) and BiasAdd's
 * gradient against float64 central differences.  Dropout: the mask's values and keep
 * rate, seeding (same seed, same mask; a new mask each run of one node), rate 0, bad
 * rates, and its gradient (upstream * mask) through floe_gradients.  ResourceGather on
 * a variable in a session: values for i32/i64 and scalar indices, bad indices named,
 * an uninitialised variable, and the dense gradient of the variable (repeated indices
 * sum).  InTopK/InTopKV2 against a naive count, ties, targets out of range and
 * non-finite predictions.  Last, SQLite's OOM loop over kernels of ops_nn that allocate
 * (kernel state, partial sums): every injected failure is RESOURCE_EXHAUSTED with no
 * output, and the sanitizer build checks that nothing leaks.
 *
 * Sections: helpers; BiasAdd; Dropout; ResourceGather; InTopK; allocation failures.
 */
#include "test_common.h"

#include <floe/experimental/testing.h>
#include <floe/gradients.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

static void assert_close(const floe_tensor *t, const double *want, int64_t n, double rtol,
                         double atol, const char *what) {
    tc_assert_near(t, want, n, rtol, atol, false, what);
}

static floe_attrs *format_attrs(const char *fmt) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "data_format", fmt, strlen(fmt)), FLOE_OK);
    return a;
}

/* A Const node of @t, which the caller keeps. */
static floe_node *constant(floe_graph *g, floe_tensor *t) {
    return tc_g_const(g, floe_tensor_ref(t));
}

static floe_tensor *fetch1(floe_session *s, floe_output f) {
    floe_tensor *t = NULL;
    if (floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t) != FLOE_OK)
        fail_msg("fetch: %s", floe_last_error());
    return t;
}

static void check_gradient(floe_context *ctx, const char *op, floe_tensor **in, int nin,
                           const floe_attrs *attrs, double tol) {
    double err = -1;
    floe_status st = floe_gradient_check(ctx, op, in, nin, attrs, 0, 1e-6, &err);
    if (st != FLOE_OK)
        fail_msg("gradient check of %s: %s: %s", op, floe_status_str(st), floe_last_error());
    if (!(err <= tol))
        fail_msg("gradient of %s: max error %g > %g", op, err, tol);
}

/* ---- BiasAdd ------------------------------------------------------------------------- */

typedef struct bias_case {
    int64_t shape[4];
    int nd;
    bool nchw;
} bias_case;

static const bias_case bias_cases[] = {
    {{3, 4}, 2, false},         {{2, 3, 4, 5}, 4, false}, {{0, 4}, 2, false},
    {{5000, 16}, 2, false},     {{3, 0}, 2, false},       {{2, 3, 4, 5}, 4, true},
    {{2, 3, 7}, 3, true},       {{4, 16, 40, 40}, 4, true}, {{0, 3, 2}, 3, true},
    {{2, 5, 0, 3}, 4, true},
};
#define NBIAS (sizeof(bias_cases) / sizeof(bias_cases[0]))

static void check_bias(floe_context *ctx, const bias_case *c, floe_dtype dt, uint64_t seed) {
    int cd = c->nchw ? 1 : c->nd - 1;
    int64_t channels = c->shape[cd], inner = 1;
    for (int d = cd + 1; d < c->nd; d++)
        inner *= c->shape[d];
    floe_tensor *x = tc_rand_tensor(dt, c->shape, c->nd, -2, 2, seed);
    floe_tensor *b = tc_rand_tensor(dt, &channels, 1, -2, 2, seed + 1);
    int64_t n = floe_tensor_num_elements(x);
    double *want = malloc(sizeof(double) * (size_t)(n + 1));
    double *sums = calloc((size_t)channels + 1, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        int64_t ch = (i / inner) % channels;
        want[i] = tc_get_f(x, i) + tc_get_f(b, ch);
        sums[ch] += tc_get_f(x, i);
    }
    floe_attrs *attrs = format_attrs(c->nchw ? "NCHW" : "NHWC");
    floe_tensor *in[2] = {x, b};
    floe_tensor *y = tc_run1(ctx, "BiasAdd", in, 2, attrs);
    tc_assert_shape(y, dt, c->shape, c->nd);
    assert_close(y, want, n, 1e-6, 1e-6, "BiasAdd");
    floe_tensor *gb = tc_run1(ctx, "BiasAddGrad", &x, 1, attrs);
    tc_assert_shape(gb, dt, &channels, 1);
    assert_close(gb, sums, channels, 1e-5, 1e-5, "BiasAddGrad");
    floe_attrs_free(attrs);
    free(want);
    free(sums);
    floe_tensor_unref(gb);
    floe_tensor_unref(y);
    floe_tensor_unref(b);
    floe_tensor_unref(x);
}

static void bias_add_matches_reference(void **state) {
    for (size_t i = 0; i < NBIAS; i++) {
        check_bias(*state, &bias_cases[i], FLOE_DTYPE_F32, 10 + i);
        check_bias(*state, &bias_cases[i], FLOE_DTYPE_F64, 30 + i);
    }
}

/* Without the attr, the format is NHWC. */
static void bias_add_defaults_to_nhwc(void **state) {
    int64_t shape[2] = {2, 3}, c = 3;
    float xs[6] = {0, 1, 2, 3, 4, 5}, bs[3] = {10, 20, 30};
    floe_tensor *in[2] = {tc_f32(shape, 2, xs), tc_f32(&c, 1, bs)};
    floe_tensor *y = tc_run1(*state, "BiasAdd", in, 2, NULL);
    const float want[6] = {10, 21, 32, 13, 24, 35};
    tc_assert_close_f32(y, want, 6, 0, 0);
    floe_tensor_unref(y);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void bias_add_rejects_bad_arguments(void **state) {
    floe_context *ctx = *state;
    int64_t s34[2] = {3, 4}, s4[1] = {4}, s3[1] = {3}, s1[1] = {4};
    floe_tensor *x = tc_f32(s34, 2, NULL), *b4 = tc_f32(s4, 1, NULL), *b3 = tc_f32(s3, 1, NULL);
    floe_tensor *v = tc_f32(s1, 1, NULL);
    floe_attrs *bad = format_attrs("NHCW"), *nchw = format_attrs("NCHW");
    floe_tensor *in[2] = {x, b4};
    assert_int_equal(tc_run_status(ctx, "BiasAdd", in, 2, bad, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("data_format \"NHCW\"");
    assert_int_equal(tc_run_status(ctx, "BiasAddGrad", &x, 1, bad, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("NHCW");
    in[1] = b3;  /* 3 biases for 4 channels */
    assert_int_equal(tc_run_status(ctx, "BiasAdd", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("channels");
    in[0] = v;   /* rank 1 */
    in[1] = b4;
    assert_int_equal(tc_run_status(ctx, "BiasAdd", in, 2, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("at least 2 dimensions");
    in[0] = x;   /* NCHW needs rank 3 */
    in[1] = b3;
    assert_int_equal(tc_run_status(ctx, "BiasAdd", in, 2, nchw, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("at least 3 dimensions");
    floe_attrs_free(bad);
    floe_attrs_free(nchw);
    floe_tensor *ts[4] = {x, b4, b3, v};
    for (int i = 0; i < 4; i++)
        floe_tensor_unref(ts[i]);
}

static void bias_add_gradient_matches_finite_differences(void **state) {
    int64_t nhwc[3] = {2, 3, 4}, nchw[4] = {2, 3, 2, 2}, c4 = 4, c3 = 3;
    floe_tensor *in[2] = {tc_rand_tensor(FLOE_DTYPE_F64, nhwc, 3, -1, 1, 201),
                          tc_rand_tensor(FLOE_DTYPE_F64, &c4, 1, -1, 1, 202)};
    check_gradient(*state, "BiasAdd", in, 2, NULL, 1e-7);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
    floe_attrs *a = format_attrs("NCHW");
    in[0] = tc_rand_tensor(FLOE_DTYPE_F64, nchw, 4, -1, 1, 203);
    in[1] = tc_rand_tensor(FLOE_DTYPE_F64, &c3, 1, -1, 1, 204);
    check_gradient(*state, "BiasAdd", in, 2, a, 1e-7);
    floe_attrs_free(a);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

/* ---- Dropout ------------------------------------------------------------------------- */

static floe_attrs *dropout_attrs(float rate, int64_t seed) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_float(a, "rate", rate), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "seed", seed), FLOE_OK);
    return a;
}

static void run_dropout(floe_context *ctx, floe_tensor *x, float rate, int64_t seed,
                        floe_tensor **out) {
    floe_attrs *a = dropout_attrs(rate, seed);
    floe_status st = floe_eager_run(ctx, "Dropout", NULL, &x, 1, a, out, 2);
    if (st != FLOE_OK)
        fail_msg("Dropout: %s", floe_last_error());
    floe_attrs_free(a);
}

static void dropout_masks_and_scales(void **state) {
    const int64_t n = 100000;
    for (int d = 0; d < 2; d++) {
        floe_dtype dt = d == 0 ? FLOE_DTYPE_F32 : FLOE_DTYPE_F64;
        floe_tensor *x = tc_rand_tensor(dt, &n, 1, -1, 1, 301), *out[2];
        run_dropout(*state, x, 0.3f, 42, out);
        tc_assert_shape(out[0], dt, &n, 1);
        tc_assert_shape(out[1], dt, &n, 1);
        double scale = 1.0 / (1.0 - (double)0.3f);
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++) {
            double m = tc_get_f(out[1], i);
            if (m != 0) {
                assert_true(fabs(m - scale) < 1e-6);
                kept++;
            }
            assert_true(fabs(tc_get_f(out[0], i) - tc_get_f(x, i) * m) < 1e-6);
        }
        /* 70% kept, within 5 standard deviations of a binomial draw */
        assert_true(fabs((double)kept / n - 0.7) < 5 * sqrt(0.21 / n));
        floe_tensor_unref(out[0]);
        floe_tensor_unref(out[1]);
        floe_tensor_unref(x);
    }
}

static int64_t count_differences(const floe_tensor *a, const floe_tensor *b) {
    int64_t d = 0;
    for (int64_t i = 0; i < floe_tensor_num_elements(a); i++)
        d += tc_get_f(a, i) != tc_get_f(b, i);
    return d;
}

static void dropout_seeds(void **state) {
    const int64_t n = 4096;
    floe_tensor *x = tc_rand_tensor(FLOE_DTYPE_F32, &n, 1, 1, 2, 311), *a[2], *b[2], *c[2];
    run_dropout(*state, x, 0.5f, 7, a);
    run_dropout(*state, x, 0.5f, 7, b);
    run_dropout(*state, x, 0.5f, 8, c);
    assert_int_equal(count_differences(a[1], b[1]), 0);   /* same seed, same mask */
    assert_true(count_differences(a[1], c[1]) > n / 4);   /* another seed, another one */
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(b[i]);
        floe_tensor_unref(c[i]);
    }
    run_dropout(*state, x, 0.5f, 0, b);                   /* seed 0: from the clock */
    run_dropout(*state, x, 0.5f, 0, c);
    assert_true(count_differences(b[1], c[1]) > n / 4);
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(a[i]);
        floe_tensor_unref(b[i]);
        floe_tensor_unref(c[i]);
    }
    /* a dropped inf gives 0, not NaN (TensorFlow selects zeros) */
    floe_tensor *inf = tc_f32(&n, 1, NULL);
    for (int64_t i = 0; i < n; i++)
        ((float *)floe_tensor_data(inf))[i] = INFINITY;
    run_dropout(*state, inf, 0.5f, 9, a);
    for (int64_t i = 0; i < n; i++)
        assert_true(tc_get_f(a[0], i) == (tc_get_f(a[1], i) != 0 ? INFINITY : 0.0));
    floe_tensor_unref(a[0]);
    floe_tensor_unref(a[1]);
    floe_tensor_unref(inf);
    /* rate 0 keeps everything: the output is the input */
    run_dropout(*state, x, 0.0f, 3, a);
    assert_int_equal(count_differences(a[0], x), 0);
    floe_tensor_unref(a[0]);
    floe_tensor_unref(a[1]);
    floe_tensor_unref(x);
}

static void dropout_rejects_bad_rates(void **state) {
    int64_t n = 4;
    floe_tensor *x = tc_f32(&n, 1, NULL);
    const float rates[3] = {1.0f, -0.1f, NAN};
    for (int i = 0; i < 3; i++) {
        floe_attrs *a = dropout_attrs(rates[i], 1);
        assert_int_equal(tc_run_status(*state, "Dropout", &x, 1, a, 2), FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("rate must be in [0, 1)");
        floe_attrs_free(a);
    }
    floe_tensor_unref(x);
}

/* In a session one Dropout node draws a new mask each run; its gradient is the mask. */
static void dropout_session_runs_and_gradient(void **state) {
    floe_graph *g = NULL;
    floe_node_builder *b = NULL;
    int64_t shape[2] = {64, 32};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_tensor *xv = tc_rand_tensor(FLOE_DTYPE_F32, shape, 2, -1, 1, 321);
    floe_node *x = constant(g, xv);
    assert_int_equal(floe_node_builder_new(g, "Dropout", "drop", &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_attrs_set_float(floe_node_builder_attrs(b), "rate", 0.5f);
    floe_attrs_set_int(floe_node_builder_attrs(b), "seed", 5);
    floe_node *drop = tc_finish(b);
    floe_output y = floe_out(drop, 0), xo = floe_out(x, 0), dx = {0};
    assert_int_equal(floe_gradients(g, &y, 1, &xo, 1, NULL, &dx), FLOE_OK);
    assert_non_null(dx.node);
    floe_session *s = NULL;
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_output fetches[2] = {floe_out(drop, 1), dx};
    floe_tensor *r1[2] = {NULL, NULL}, *r2[2] = {NULL, NULL};
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, fetches, 2, NULL, 0, r1), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, fetches, 2, NULL, 0, r2), FLOE_OK);
    assert_int_equal(count_differences(r1[0], r1[1]), 0);  /* d output / d x = mask */
    assert_int_equal(count_differences(r2[0], r2[1]), 0);
    assert_true(count_differences(r1[0], r2[0]) > 64 * 32 / 4);
    for (int i = 0; i < 2; i++) {
        floe_tensor_unref(r1[i]);
        floe_tensor_unref(r2[i]);
    }
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(xv);
}

/* ---- ResourceGather ------------------------------------------------------------------ */

typedef struct emb_graph {
    floe_graph *g;
    floe_node *handle, *assign;
    floe_tensor *value;
} emb_graph;

/* A [5, 3] variable of @dt holding 10 r + c, its handle and its assign node. */
static emb_graph make_emb(floe_context *ctx, floe_dtype dt) {
    emb_graph e;
    floe_node_builder *b = NULL;
    int64_t shape[2] = {5, 3};
    assert_int_equal(floe_graph_new(ctx, &e.g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(e.g, "VarHandleOp", "emb", &b), FLOE_OK);
    floe_attrs_set_string(floe_node_builder_attrs(b), "shared_name", "emb", 3);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, 2);
    e.handle = tc_finish(b);
    e.value = tc_tensor(dt, shape, 2, NULL);
    for (int i = 0; i < 15; i++) {
        if (dt == FLOE_DTYPE_F32)
            ((float *)floe_tensor_data(e.value))[i] = (float)(10 * (i / 3) + i % 3);
        else
            ((double *)floe_tensor_data(e.value))[i] = 10 * (i / 3) + i % 3;
    }
    floe_node *init = constant(e.g, e.value);
    assert_int_equal(floe_node_builder_new(e.g, "AssignVariableOp", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(e.handle, 0));
    floe_node_builder_add_input(b, floe_out(init, 0));
    e.assign = tc_finish(b);
    return e;
}

static floe_node *gather(floe_graph *g, floe_node *h, floe_node *idx, floe_dtype dt) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "ResourceGather", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node_builder_add_input(b, floe_out(idx, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    return tc_finish(b);
}

static void resource_gather_reads_rows(void **state) {
    for (int d = 0; d < 2; d++) {
        floe_dtype dt = d == 0 ? FLOE_DTYPE_F32 : FLOE_DTYPE_F64;
        emb_graph e = make_emb(*state, dt);
        int64_t ishape[2] = {2, 2};
        int32_t i32[4] = {4, 0, 1, 4};
        int64_t i64[1] = {3};
        floe_tensor *t32 = tc_i32(ishape, 2, i32), *t64 = tc_i64(NULL, 0, i64);
        floe_node *g32 = gather(e.g, e.handle, constant(e.g, t32), dt);
        floe_node *g64 = gather(e.g, e.handle, constant(e.g, t64), dt);
        floe_session *s = NULL;
        assert_int_equal(floe_session_new(e.g, NULL, &s), FLOE_OK);
        assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &e.assign, 1, NULL),
                         FLOE_OK);
        floe_tensor *r = fetch1(s, floe_out(g32, 0));
        int64_t oshape[3] = {2, 2, 3};
        tc_assert_shape(r, dt, oshape, 3);
        double want[12];
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 3; c++)
                want[k * 3 + c] = 10 * i32[k] + c;
        assert_close(r, want, 12, 0, 0, "ResourceGather");
        floe_tensor_unref(r);
        r = fetch1(s, floe_out(g64, 0));
        int64_t three = 3;
        tc_assert_shape(r, dt, &three, 1);
        const double w3[3] = {30, 31, 32};
        assert_close(r, w3, 3, 0, 0, "ResourceGather");
        floe_tensor_unref(r);
        floe_session_free(s);
        floe_graph_free(e.g);
        floe_tensor_unref(e.value);
        floe_tensor_unref(t32);
        floe_tensor_unref(t64);
    }
}

static void resource_gather_rejects_bad_indices(void **state) {
    emb_graph e = make_emb(*state, FLOE_DTYPE_F32);
    int64_t n = 3;
    int32_t bad[3] = {0, 5, 1};
    int64_t neg[3] = {0, 1, -2};
    floe_tensor *tb = tc_i32(&n, 1, bad), *tn = tc_i64(&n, 1, neg);
    floe_node *gb = gather(e.g, e.handle, constant(e.g, tb), FLOE_DTYPE_F32);
    floe_node *gn = gather(e.g, e.handle, constant(e.g, tn), FLOE_DTYPE_F32);
    floe_session *s = NULL;
    floe_tensor *r = NULL;
    floe_output f = floe_out(gb, 0);
    assert_int_equal(floe_session_new(e.g, NULL, &s), FLOE_OK);
    /* before the variable is assigned */
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &r),
                     FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("uninitialised");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &e.assign, 1, NULL), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &r),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("indices[1] = 5 is not in [0, 5)");
    f = floe_out(gn, 0);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &r),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("indices[2] = -2");
    assert_null(r);
    floe_session_free(s);
    floe_graph_free(e.g);
    floe_tensor_unref(e.value);
    floe_tensor_unref(tb);
    floe_tensor_unref(tn);
}

/* d sum(w * gather(v, idx)) / dv: w's rows added at their indices, repeats summed. */
static void resource_gather_gradient_is_dense_scatter_add(void **state) {
    for (int d = 0; d < 2; d++) {
        floe_dtype dt = d == 0 ? FLOE_DTYPE_F32 : FLOE_DTYPE_F64;
        emb_graph e = make_emb(*state, dt);
        int64_t n = 4, wshape[2] = {4, 3};
        int64_t idx[4] = {4, 0, 4, 2};
        floe_tensor *ti = tc_i64(&n, 1, idx);
        floe_tensor *w = tc_rand_tensor(dt, wshape, 2, -1, 1, 401 + d);
        floe_node *gn = gather(e.g, e.handle, constant(e.g, ti), dt);
        floe_node *wn = constant(e.g, w);
        floe_output y = floe_out(gn, 0), x = floe_out(e.handle, 0), gy = floe_out(wn, 0);
        floe_output dx = {0};
        assert_int_equal(floe_gradients(e.g, &y, 1, &x, 1, &gy, &dx), FLOE_OK);
        assert_non_null(dx.node);
        floe_session *s = NULL;
        assert_int_equal(floe_session_new(e.g, NULL, &s), FLOE_OK);
        assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &e.assign, 1, NULL),
                         FLOE_OK);
        floe_tensor *r = fetch1(s, dx);
        int64_t vshape[2] = {5, 3};
        tc_assert_shape(r, dt, vshape, 2);
        double want[15] = {0};
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 3; c++)
                want[idx[k] * 3 + c] += tc_get_f(w, k * 3 + c);
        assert_close(r, want, 15, 1e-6, 1e-6, "ResourceGatherGrad");
        floe_tensor_unref(r);
        floe_session_free(s);
        floe_graph_free(e.g);
        floe_tensor_unref(e.value);
        floe_tensor_unref(w);
        floe_tensor_unref(ti);
    }
}

/* ---- InTopK -------------------------------------------------------------------------- */

static floe_tensor *in_top_k(floe_context *ctx, floe_tensor *pred, floe_tensor *targets, int k,
                             bool v2) {
    if (v2) {
        int64_t k64 = k;
        floe_tensor *kt = floe_tensor_dtype(targets) == FLOE_DTYPE_I64
                              ? tc_i64(NULL, 0, &k64) : tc_scalar_i32(k);
        floe_tensor *in[3] = {pred, targets, kt};
        floe_tensor *r = tc_run1(ctx, "InTopKV2", in, 3, NULL);
        floe_tensor_unref(kt);
        return r;
    }
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    floe_attrs_set_int(a, "k", k);
    floe_tensor *in[2] = {pred, targets};
    floe_tensor *r = tc_run1(ctx, "InTopK", in, 2, a);
    floe_attrs_free(a);
    return r;
}

static void in_top_k_matches_reference(void **state) {
    int64_t shape[2] = {200, 10}, rows = 200;
    floe_tensor *p = tc_rand_tensor(FLOE_DTYPE_F32, shape, 2, 0, 1, 501);
    float *pd = floe_tensor_data(p);
    for (int64_t i = 0; i < 200 * 10; i += 7)
        pd[i] = 0.5f;   /* ties */
    floe_tensor *t = tc_tensor(FLOE_DTYPE_I32, &rows, 1, NULL);
    uint64_t s = 9;
    for (int64_t r = 0; r < rows; r++)
        ((int32_t *)floe_tensor_data(t))[r] = (int32_t)(tc_rng_next(&s) % 10);
    for (int k = 0; k <= 10; k += 1) {
        for (int v2 = 0; v2 < 2; v2++) {
            floe_tensor *r = in_top_k(*state, p, t, k, v2);
            tc_assert_shape(r, FLOE_DTYPE_BOOL, &rows, 1);
            const uint8_t *o = floe_tensor_data(r);
            for (int64_t b = 0; b < rows; b++) {
                int32_t tg = ((int32_t *)floe_tensor_data(t))[b];
                int larger = 0;
                for (int j = 0; j < 10; j++)
                    larger += pd[b * 10 + j] > pd[b * 10 + tg];
                assert_int_equal(o[b], larger < k);
            }
            floe_tensor_unref(r);
        }
    }
    floe_tensor_unref(t);
    floe_tensor_unref(p);
}

static void in_top_k_special_cases(void **state) {
    int64_t shape[2] = {4, 3}, rows = 4;
    const float pd[12] = {0.1f, 0.9f, 0.5f, NAN,  1.0f, 0.0f,
                          0.2f, 0.2f, 0.2f, 0.3f, 0.1f, INFINITY};
    const int64_t td[4] = {1, 1, 2, 7};
    floe_tensor *p = tc_f32(shape, 2, pd), *t = tc_i64(&rows, 1, td);
    floe_tensor *r = in_top_k(*state, p, t, 1, true);
    const uint8_t *o = floe_tensor_data(r);
    /* top-1 hit; NaN in the row; a three-way tie counts in the target's favour; target
     * out of range */
    assert_int_equal(o[0], 1);
    assert_int_equal(o[1], 0);
    assert_int_equal(o[2], 1);
    assert_int_equal(o[3], 0);
    floe_tensor_unref(r);
    int64_t three = 3, one = 1;
    floe_tensor *t3 = tc_i64(&three, 1, td);
    floe_tensor *kt = tc_i64(NULL, 0, &one);
    floe_tensor *in[3] = {p, t3, kt};
    assert_int_equal(tc_run_status(*state, "InTopKV2", in, 3, NULL, 1), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(kt);
    floe_tensor_unref(t3);
    floe_tensor_unref(t);
    floe_tensor_unref(p);
}

/* ---- Allocation failures ------------------------------------------------------------- */

static void kernels_survive_allocation_failures(void **state) {
    const int64_t big[1] = {300001}, wide[2] = {300, 600}, small[1] = {10};
    floe_tensor *xb = tc_rand_tensor(FLOE_DTYPE_F32, big, 1, -1, 1, 601);
    floe_tensor *xw = tc_rand_tensor(FLOE_DTYPE_F64, wide, 2, -1, 1, 602);
    floe_tensor *xs = tc_rand_tensor(FLOE_DTYPE_F32, small, 1, -1, 1, 603);
    floe_attrs *leaky = NULL, *drop = dropout_attrs(0.5f, 3);
    assert_int_equal(floe_attrs_new(&leaky), FLOE_OK);
    floe_attrs_set_float(leaky, "alpha", 0.1f);
    struct { const char *op; floe_tensor *x; floe_attrs *attrs; int nout; } cases[] = {
        {"L2Loss", xb, NULL, 1},     {"BiasAddGrad", xw, NULL, 1},
        {"LeakyRelu", xs, leaky, 1}, {"Dropout", xs, drop, 2},
        {"Softmax", xw, NULL, 1},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
        for (int persistent = 0; persistent < 2; persistent++) {
            floe_tensor *ref[2] = {NULL, NULL};
            assert_int_equal(floe_eager_run(*state, cases[c].op, NULL, &cases[c].x, 1,
                                            cases[c].attrs, ref, cases[c].nout), FLOE_OK);
            int64_t nth;
            for (nth = 1; nth < 10000; nth++) {
                floe_tensor *out[2] = {NULL, NULL};
                floe_testing_fail_alloc(nth, persistent);
                floe_status st = floe_eager_run(*state, cases[c].op, NULL, &cases[c].x, 1,
                                                cases[c].attrs, out, cases[c].nout);
                int64_t failures = floe_testing_alloc_failures();
                floe_testing_fail_alloc(0, 0);
                if (st != FLOE_OK) {
                    assert_int_equal(st, FLOE_RESOURCE_EXHAUSTED);
                    assert_null(out[0]);
                    assert_null(out[1]);
                    assert_true(failures > 0);
                    continue;
                }
                for (int o = 0; o < cases[c].nout; o++) {
                    floe_tensor *ho = tc_host(out[o]), *hr = tc_host(ref[o]);
                    assert_memory_equal(floe_tensor_data(ho), floe_tensor_data(hr),
                                        floe_tensor_nbytes(hr));
                    floe_tensor_unref(hr);
                    floe_tensor_unref(ho);
                    floe_tensor_unref(out[o]);
                }
                if (failures == 0)
                    break;
            }
            assert_true(nth < 10000);
            floe_tensor_unref(ref[0]);
            floe_tensor_unref(ref[1]);
        }
    floe_attrs_free(leaky);
    floe_attrs_free(drop);
    floe_tensor_unref(xb);
    floe_tensor_unref(xw);
    floe_tensor_unref(xs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bias_add_matches_reference),
        cmocka_unit_test(bias_add_defaults_to_nhwc),
        cmocka_unit_test(bias_add_rejects_bad_arguments),
        cmocka_unit_test(bias_add_gradient_matches_finite_differences),
        cmocka_unit_test(dropout_masks_and_scales),
        cmocka_unit_test(dropout_seeds),
        cmocka_unit_test(dropout_rejects_bad_rates),
        cmocka_unit_test(dropout_session_runs_and_gradient),
        cmocka_unit_test(resource_gather_reads_rows),
        cmocka_unit_test(resource_gather_rejects_bad_indices),
        cmocka_unit_test(resource_gather_gradient_is_dense_scatter_add),
        cmocka_unit_test(in_top_k_matches_reference),
        cmocka_unit_test(in_top_k_special_cases),
        cmocka_unit_test(kernels_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
