/*
 * test_ops_nn_act.c - the activations and softmaxes of ops_nn (activation.c, softmax.c).
 *
 * Every forward and gradient kernel runs eagerly in f32 and f64 on random inputs of
 * several shapes (rank 0, empty, vectors, rank 3, and tensors large enough to be split
 * across the thread pool) and is compared with a naive reference computed here in
 * double.  Then special values (NaN, large logits), the attrs (LeakyRelu's alpha,
 * Gelu's approximate), the errors (mismatched gradient shapes, scalar logits, integer
 * inputs), the shape functions in a graph, and every registered gradient (those of
 * ReluGrad, Relu6Grad and LeakyReluGrad included) against float64 central differences
 * (floe_gradient_check).
 *
 * Sections: helpers; references; activations; gradient ops; softmax; errors and shapes;
 * gradient checks.
 */
#include "test_common.h"

#include <floe/gradients.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------------------ */

/* A tensor of values uniform in [lo, hi), avoiding |x - k| < gap for k in @kinks. */
static floe_tensor *rand_tensor(floe_dtype dt, const int64_t *shape, int nd, double lo,
                                double hi, uint64_t seed, const double *kinks, int nkinks,
                                double gap) {
    floe_tensor *t = tc_tensor(dt, shape, nd, NULL);
    int64_t n = floe_tensor_num_elements(t);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (int64_t i = 0; i < n; i++) {
        double v;
        bool near;
        do {
            v = lo + (hi - lo) * tc_uniform01(&s);
            near = false;
            for (int k = 0; k < nkinks; k++)
                near = near || fabs(v - kinks[k]) < gap;
        } while (near);
        if (dt == FLOE_DTYPE_F32)
            ((float *)floe_tensor_data(t))[i] = (float)v;
        else
            ((double *)floe_tensor_data(t))[i] = v;
    }
    return t;
}

/* Asserts @t (f32 or f64) matches @want within atol + rtol |want|, NaN matching NaN. */
static void assert_close(const floe_tensor *t, const double *want, int64_t n, double rtol,
                         double atol, const char *what) {
    tc_assert_near(t, want, n, rtol, atol, true, what);
}

static floe_tensor *run(floe_context *ctx, const char *op, floe_tensor **in, int nin,
                        const floe_attrs *attrs) {
    /* the cases read the result's floats: a host copy of a GPU's */
    floe_tensor *y = tc_run1(ctx, op, in, nin, attrs), *h = tc_host(y);
    floe_tensor_unref(y);
    return h;
}

static floe_attrs *attrs_alpha(float alpha) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_float(a, "alpha", alpha), FLOE_OK);
    return a;
}

static floe_attrs *attrs_approx(int approximate) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, "approximate", approximate), FLOE_OK);
    return a;
}

/* Shapes every elementwise case runs on: rank 0, empty, small, rank 3, large. */
static const int64_t shapes[][3] = {{0, 0, 0}, {0, 0, 0}, {7, 0, 0}, {2, 3, 5}, {70001, 0, 0}};
static const int ranks[] = {0, 1, 1, 3, 1};
#define NSHAPES 5

/* ---- References --------------------------------------------------------------------- */

#define SELU_A 1.6732632423543772848170429916717
#define SELU_S 1.0507009873554804934193349852946

typedef enum act { RELU, RELU6, ELU, SELU, LEAKY, GELU, GELU_TANH, SOFTPLUS, SOFTSIGN, NACT } act;

static const char *const act_names[NACT] = {"Relu", "Relu6", "Elu", "Selu", "LeakyRelu",
                                            "Gelu", "Gelu", "Softplus", "Softsign"};
static const char *const grad_names[NACT] = {"ReluGrad", "Relu6Grad", "EluGrad", "SeluGrad",
                                             "LeakyReluGrad", "GeluGrad", "GeluGrad",
                                             "SoftplusGrad", "SoftsignGrad"};

static double gelu_tanh_ref(double x) {
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double ref_fwd(act a, double x, double alpha) {
    switch (a) {
    case RELU: return x > 0 ? x : 0;
    case RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case ELU: return x < 0 ? expm1(x) : x;
    case SELU: return x < 0 ? SELU_S * SELU_A * expm1(x) : SELU_S * x;
    case LEAKY: return x > 0 ? x : alpha * x;
    case GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case GELU_TANH: return gelu_tanh_ref(x);
    case SOFTPLUS: return x > 30 ? x : log1p(exp(x));
    case SOFTSIGN: return x / (1 + fabs(x));
    default: return NAN;
    }
}

/* d act / dx at x (by formula; the tanh form of Gelu by a central difference in double). */
static double ref_deriv(act a, double x, double alpha) {
    switch (a) {
    case RELU: return x > 0;
    case RELU6: return x > 0 && x < 6;
    case ELU: return x < 0 ? exp(x) : 1;
    case SELU: return x < 0 ? SELU_S * SELU_A * exp(x) : SELU_S;
    case LEAKY: return x > 0 ? 1 : alpha;
    case GELU: return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    case GELU_TANH: return (gelu_tanh_ref(x + 1e-6) - gelu_tanh_ref(x - 1e-6)) / 2e-6;
    case SOFTPLUS: return 1 / (1 + exp(-x));
    case SOFTSIGN: return 1 / ((1 + fabs(x)) * (1 + fabs(x)));
    default: return NAN;
    }
}

static floe_attrs *act_attrs(act a) {
    if (a == LEAKY)
        return attrs_alpha(0.3f);
    if (a == GELU || a == GELU_TANH)
        return attrs_approx(a == GELU_TANH);
    return NULL;
}

/* ---- Activations ------------------------------------------------------------------- */

static void check_forward(floe_context *ctx, act a, floe_dtype dt) {
    floe_attrs *attrs = act_attrs(a);
    double kinks[2] = {0, 6};
    for (int s = 0; s < NSHAPES; s++) {
        floe_tensor *x = rand_tensor(dt, shapes[s], ranks[s], -8, 8, 11 + s, kinks, 2, 1e-3);
        int64_t n = floe_tensor_num_elements(x);
        double *want = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++)
            want[i] = ref_fwd(a, tc_get_f(x, i), (double)0.3f);
        floe_tensor *y = run(ctx, act_names[a], &x, 1, attrs);
        tc_assert_shape(y, dt, shapes[s], ranks[s]);
        double tol = dt == FLOE_DTYPE_F32 ? 2e-6 : 1e-13;
        assert_close(y, want, n, tol, tol, act_names[a]);
        free(want);
        floe_tensor_unref(y);
        floe_tensor_unref(x);
    }
    floe_attrs_free(attrs);
}

static void activations_match_reference(void **state) {
    for (int a = 0; a < NACT; a++) {
        check_forward(*state, (act)a, FLOE_DTYPE_F32);
        check_forward(*state, (act)a, FLOE_DTYPE_F64);
    }
}

static void activations_special_values(void **state) {
    floe_context *ctx = *state;
    const float xs[6] = {NAN, INFINITY, -INFINITY, 100.0f, -100.0f, -0.0f};
    int64_t shape[1] = {6};
    floe_tensor *x = tc_f32(shape, 1, xs);
    floe_tensor *y = run(ctx, "Relu", &x, 1, NULL);
    const float *r = floe_tensor_data(y);
    assert_true(isnan(r[0]));
    assert_true(r[1] == INFINITY && r[2] == 0 && r[3] == 100 && r[4] == 0);
    floe_tensor_unref(y);
    y = run(ctx, "Softplus", &x, 1, NULL);
    r = floe_tensor_data(y);
    assert_true(isnan(r[0]));
    assert_true(r[1] == INFINITY && r[2] == 0 && r[3] == 100.0f && r[4] >= 0 && r[4] < 1e-40);
    floe_tensor_unref(y);
    y = run(ctx, "Softsign", &x, 1, NULL);
    r = floe_tensor_data(y);
    assert_true(isnan(r[0]));
    assert_true(fabsf(r[3] - 100.0f / 101.0f) < 1e-6f && fabsf(r[4] + 100.0f / 101.0f) < 1e-6f);
    floe_tensor_unref(y);
    y = run(ctx, "Elu", &x, 1, NULL);
    r = floe_tensor_data(y);
    assert_true(isnan(r[0]) && r[1] == INFINITY && r[2] == -1.0f && r[4] == -1.0f);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

/* LeakyRelu's default alpha is TensorFlow's 0.2. */
static void leaky_relu_default_alpha(void **state) {
    float xs[2] = {-2.0f, 3.0f};
    int64_t shape[1] = {2};
    floe_tensor *x = tc_f32(shape, 1, xs);
    floe_tensor *y = run(*state, "LeakyRelu", &x, 1, NULL);
    const float want[2] = {-0.4f, 3.0f};
    tc_assert_close_f32(y, want, 2, 1e-6f, 0);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

/* ---- Gradient ops ------------------------------------------------------------------- */

static void check_grad_op(floe_context *ctx, act a, floe_dtype dt) {
    floe_attrs *attrs = act_attrs(a);
    double kinks[2] = {0, 6};
    /* EluGrad and SeluGrad take the forward outputs, the others the features */
    bool outputs = a == ELU || a == SELU;
    for (int s = 0; s < NSHAPES; s++) {
        floe_tensor *x = rand_tensor(dt, shapes[s], ranks[s], -8, 8, 21 + s, kinks, 2, 1e-3);
        floe_tensor *g = rand_tensor(dt, shapes[s], ranks[s], -2, 2, 31 + s, NULL, 0, 0);
        int64_t n = floe_tensor_num_elements(x);
        double *want = malloc(sizeof(double) * (size_t)(n + 1));
        floe_tensor *f = x;
        if (outputs)
            f = run(ctx, act_names[a], &x, 1, NULL);
        for (int64_t i = 0; i < n; i++)
            want[i] = tc_get_f(g, i) * ref_deriv(a, tc_get_f(x, i), (double)0.3f);
        floe_tensor *in[2] = {g, f};
        floe_tensor *dx = run(ctx, grad_names[a], in, 2, attrs);
        tc_assert_shape(dx, dt, shapes[s], ranks[s]);
        double tol = dt == FLOE_DTYPE_F32 ? 1e-5 : a == GELU_TANH ? 1e-8 : 1e-12;
        assert_close(dx, want, n, tol, tol, grad_names[a]);
        free(want);
        floe_tensor_unref(dx);
        if (outputs)
            floe_tensor_unref(f);
        floe_tensor_unref(g);
        floe_tensor_unref(x);
    }
    floe_attrs_free(attrs);
}

static void grad_ops_match_reference(void **state) {
    for (int a = 0; a < NACT; a++) {
        check_grad_op(*state, (act)a, FLOE_DTYPE_F32);
        check_grad_op(*state, (act)a, FLOE_DTYPE_F64);
    }
}

/* ---- Softmax ----------------------------------------------------------------------- */

/* softmax / log-softmax of each last-axis row of @x, in double. */
static void ref_softmax(const floe_tensor *x, bool log_form, double *out) {
    int nd = floe_tensor_ndim(x);
    int64_t n = floe_tensor_num_elements(x), c = floe_tensor_dim(x, nd - 1);
    for (int64_t r = 0; c > 0 && r < n / c; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < c; j++)
            m = fmax(m, tc_get_f(x, r * c + j));
        for (int64_t j = 0; j < c; j++)
            s += exp(tc_get_f(x, r * c + j) - m);
        for (int64_t j = 0; j < c; j++) {
            double v = tc_get_f(x, r * c + j) - m;
            out[r * c + j] = log_form ? v - log(s) : exp(v) / s;
        }
    }
}

static const int64_t sm_shapes[][3] = {{5, 0, 0}, {3, 7, 0}, {0, 4, 0}, {4, 0, 0},
                                       {2, 3, 5}, {300, 200, 0}, {1, 1, 0}};
static const int sm_ranks[] = {1, 2, 2, 2, 3, 2, 2};
#define NSM 7

static void check_softmax(floe_context *ctx, floe_dtype dt, bool log_form) {
    const char *op = log_form ? "LogSoftmax" : "Softmax";
    const char *gop = log_form ? "LogSoftmaxGrad" : "SoftmaxGrad";
    for (int s = 0; s < NSM; s++) {
        floe_tensor *x = rand_tensor(dt, sm_shapes[s], sm_ranks[s], -10, 10, 41 + s, NULL, 0, 0);
        floe_tensor *g = rand_tensor(dt, sm_shapes[s], sm_ranks[s], -1, 1, 51 + s, NULL, 0, 0);
        int64_t n = floe_tensor_num_elements(x), c = sm_shapes[s][sm_ranks[s] - 1];
        double *want = malloc(sizeof(double) * (size_t)(n + 1));
        double *p = malloc(sizeof(double) * (size_t)(n + 1));
        ref_softmax(x, log_form, want);
        floe_tensor *y = run(ctx, op, &x, 1, NULL);
        tc_assert_shape(y, dt, sm_shapes[s], sm_ranks[s]);
        double tol = dt == FLOE_DTYPE_F32 ? 1e-5 : 1e-12;
        assert_close(y, want, n, tol, tol, op);
        /* gradient op from the forward result: reference by the formula in double */
        ref_softmax(x, false, p);
        for (int64_t r = 0; c > 0 && r < n / c; r++) {
            double dot = 0, sum = 0;
            for (int64_t j = 0; j < c; j++) {
                dot += tc_get_f(g, r * c + j) * p[r * c + j];
                sum += tc_get_f(g, r * c + j);
            }
            for (int64_t j = 0; j < c; j++) {
                double gj = tc_get_f(g, r * c + j), pj = p[r * c + j];
                want[r * c + j] = log_form ? gj - pj * sum : (gj - dot) * pj;
            }
        }
        floe_tensor *in[2] = {g, y};
        floe_tensor *dx = run(ctx, gop, in, 2, NULL);
        tc_assert_shape(dx, dt, sm_shapes[s], sm_ranks[s]);
        assert_close(dx, want, n, dt == FLOE_DTYPE_F32 ? 1e-4 : 1e-11,
                     dt == FLOE_DTYPE_F32 ? 1e-5 : 1e-12, gop);
        free(want);
        free(p);
        floe_tensor_unref(dx);
        floe_tensor_unref(y);
        floe_tensor_unref(g);
        floe_tensor_unref(x);
    }
}

static void softmax_matches_reference(void **state) {
    check_softmax(*state, FLOE_DTYPE_F32, false);
    check_softmax(*state, FLOE_DTYPE_F64, false);
    check_softmax(*state, FLOE_DTYPE_F32, true);
    check_softmax(*state, FLOE_DTYPE_F64, true);
}

/* Logits of 1000 would overflow e^x: the shifted form does not. */
static void softmax_is_stable_for_large_logits(void **state) {
    float xs[4] = {1000.0f, 1001.0f, -1000.0f, 1000.0f};
    int64_t shape[2] = {2, 2};
    floe_tensor *x = tc_f32(shape, 2, xs);
    floe_tensor *y = run(*state, "Softmax", &x, 1, NULL);
    double e = exp(-1.0);
    const float want[4] = {(float)(e / (1 + e)), (float)(1 / (1 + e)), 0.0f, 1.0f};
    tc_assert_close_f32(y, want, 4, 1e-6f, 1e-7f);
    floe_tensor_unref(y);
    y = run(*state, "LogSoftmax", &x, 1, NULL);
    const float lwant[4] = {(float)(-1 - log1p(e)), (float)(-log1p(e)), -2000.0f, 0.0f};
    tc_assert_close_f32(y, lwant, 4, 1e-6f, 1e-6f);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

static void softmax_propagates_nan(void **state) {
    float xs[6] = {1.0f, NAN, 2.0f, 1.0f, 2.0f, 3.0f};
    int64_t shape[2] = {2, 3};
    floe_tensor *x = tc_f32(shape, 2, xs);
    floe_tensor *y = run(*state, "Softmax", &x, 1, NULL);
    const float *r = floe_tensor_data(y);
    assert_true(isnan(r[0]) && isnan(r[1]) && isnan(r[2]));
    assert_false(isnan(r[3]) || isnan(r[4]) || isnan(r[5]));
    floe_tensor_unref(y);
    floe_tensor_unref(x);
}

/* In a graph, an op fed by a tensor nobody else holds (Neg's output) writes into its
 * buffer: the results must be those of separate buffers. */
static void kernels_in_place_match(void **state) {
    const char *ops[4] = {"LogSoftmax", "Softmax", "Relu", "Gelu"};
    int64_t shape[2] = {6, 37};
    floe_tensor *xv = rand_tensor(FLOE_DTYPE_F32, shape, 2, -5, 5, 99, NULL, 0, 0);
    floe_tensor *nv = tc_run1(*state, "Neg", &xv, 1, NULL);
    for (int i = 0; i < 4; i++) {
        floe_graph *g = NULL;
        floe_node_builder *b = NULL;
        floe_node *c = NULL, *neg = NULL, *y = NULL;
        assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
        assert_int_equal(floe_node_builder_new(g, "Const", NULL, &b), FLOE_OK);
        floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", xv);
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
        assert_int_equal(floe_node_builder_finish(b, &c), FLOE_OK);
        assert_int_equal(floe_node_builder_new(g, "Neg", NULL, &b), FLOE_OK);
        floe_node_builder_add_input(b, floe_out(c, 0));
        assert_int_equal(floe_node_builder_finish(b, &neg), FLOE_OK);
        assert_int_equal(floe_node_builder_new(g, ops[i], NULL, &b), FLOE_OK);
        floe_node_builder_add_input(b, floe_out(neg, 0));
        assert_int_equal(floe_node_builder_finish(b, &y), FLOE_OK);
        floe_session *s = NULL;
        floe_tensor *got = NULL;
        floe_output f = floe_out(y, 0);
        assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
        assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &got), FLOE_OK);
        floe_tensor *want = run(*state, ops[i], &nv, 1, NULL);
        tc_assert_close_f32(got, floe_tensor_data(want), 6 * 37, 0, 0);
        floe_tensor_unref(want);
        floe_tensor_unref(got);
        floe_session_free(s);
        floe_graph_free(g);
    }
    floe_tensor_unref(nv);
    floe_tensor_unref(xv);
}

/* ---- Errors and shapes --------------------------------------------------------------- */

static void grad_ops_reject_mismatched_shapes(void **state) {
    int64_t a[2] = {2, 3}, b[2] = {3, 2};
    floe_tensor *in[2] = {tc_f32(a, 2, NULL), tc_f32(b, 2, NULL)};
    for (int i = 0; i < NACT; i++) {
        floe_attrs *attrs = act_attrs((act)i);
        assert_int_equal(tc_run_status(*state, grad_names[i], in, 2, attrs, 1),
                         FLOE_INVALID_ARGUMENT);
        tc_assert_error_contains("[2,3]");
        floe_attrs_free(attrs);
    }
    assert_int_equal(tc_run_status(*state, "SoftmaxGrad", in, 2, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(in[0]);
    floe_tensor_unref(in[1]);
}

static void softmax_rejects_scalars(void **state) {
    floe_tensor *x = tc_scalar_f32(1.0f);
    assert_int_equal(tc_run_status(*state, "Softmax", &x, 1, NULL, 1), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("dimension");
    assert_int_equal(tc_run_status(*state, "LogSoftmax", &x, 1, NULL, 1),
                     FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(x);
}

static void activations_reject_integers(void **state) {
    int32_t v[2] = {1, -1};
    int64_t shape[1] = {2};
    floe_tensor *x = tc_i32(shape, 1, v);
    for (int i = 0; i < NACT; i++)
        assert_int_not_equal(tc_run_status(*state, act_names[i], &x, 1, NULL, 1), FLOE_OK);
    floe_tensor_unref(x);
}

/* In a graph, outputs keep the input's (partly known) shape; grad ops merge theirs. */
static void shape_functions_in_graph(void **state) {
    floe_graph *g = NULL;
    floe_node *x = NULL, *y = NULL, *dy = NULL, *bad = NULL;
    floe_node_builder *b = NULL;
    int64_t dims[2] = {-1, 10};
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "x", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, 2);
    assert_int_equal(floe_node_builder_finish(b, &x), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Softmax", "y", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){x, 0, 0});
    assert_int_equal(floe_node_builder_finish(b, &y), FLOE_OK);
    floe_shape s = floe_node_output_shape(y, 0);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[0], -1);
    assert_int_equal(s.dims[1], 10);
    assert_int_equal(floe_node_builder_new(g, "ReluGrad", "dy", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){x, 0, 0});
    floe_node_builder_add_input(b, (floe_output){y, 0, 0});
    assert_int_equal(floe_node_builder_finish(b, &dy), FLOE_OK);
    assert_int_equal(floe_node_output_shape(dy, 0).dims[1], 10);
    /* a scalar into Softmax is rejected when the graph is built */
    floe_node *c = NULL;
    assert_int_equal(floe_node_builder_new(g, "Placeholder", "c", &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", NULL, 0);
    assert_int_equal(floe_node_builder_finish(b, &c), FLOE_OK);
    assert_int_equal(floe_node_builder_new(g, "Softmax", "bad", &b), FLOE_OK);
    floe_node_builder_add_input(b, (floe_output){c, 0, 0});
    assert_int_equal(floe_node_builder_finish(b, &bad), FLOE_INVALID_ARGUMENT);
    floe_graph_free(g);
}

/* ---- Gradient checks ----------------------------------------------------------------- */

static void check_gradient(floe_context *ctx, const char *op, floe_tensor **in, int nin,
                           const floe_attrs *attrs, int output, double tol) {
    double err = -1;
    floe_status st = floe_gradient_check(ctx, op, in, nin, attrs, output, 1e-6, &err);
    if (st != FLOE_OK)
        fail_msg("gradient check of %s: %s: %s", op, floe_status_str(st), floe_last_error());
    if (!(err <= tol))
        fail_msg("gradient of %s: max error %g > %g", op, err, tol);
}

static void activation_gradients_match_finite_differences(void **state) {
    int64_t shape[2] = {3, 4};
    double kinks[2] = {0, 6};
    for (int a = 0; a < NACT; a++) {
        floe_tensor *x = rand_tensor(FLOE_DTYPE_F64, shape, 2, -7, 7, 61 + a, kinks, 2, 1e-2);
        floe_attrs *attrs = act_attrs((act)a);
        check_gradient(*state, act_names[a], &x, 1, attrs, 0, 1e-6);
        floe_attrs_free(attrs);
        floe_tensor_unref(x);
    }
}

/* The piecewise-linear gradient ops are differentiable too (second order). */
static void linear_grad_ops_have_gradients(void **state) {
    int64_t shape[2] = {3, 4};
    double kinks[2] = {0, 6};
    const act ops[3] = {RELU, RELU6, LEAKY};
    for (int i = 0; i < 3; i++) {
        floe_tensor *in[2] = {rand_tensor(FLOE_DTYPE_F64, shape, 2, -2, 2, 81 + i, NULL, 0, 0),
                              rand_tensor(FLOE_DTYPE_F64, shape, 2, -7, 7, 91 + i, kinks, 2,
                                          1e-2)};
        floe_attrs *attrs = act_attrs(ops[i]);
        check_gradient(*state, grad_names[ops[i]], in, 2, attrs, 0, 1e-6);
        floe_attrs_free(attrs);
        floe_tensor_unref(in[0]);
        floe_tensor_unref(in[1]);
    }
}

static void softmax_gradients_match_finite_differences(void **state) {
    int64_t shape[2] = {3, 5};
    floe_tensor *x = rand_tensor(FLOE_DTYPE_F64, shape, 2, -3, 3, 71, NULL, 0, 0);
    check_gradient(*state, "Softmax", &x, 1, NULL, 0, 1e-6);
    check_gradient(*state, "LogSoftmax", &x, 1, NULL, 0, 1e-6);
    floe_tensor_unref(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(activations_match_reference),
        cmocka_unit_test(activations_special_values),
        cmocka_unit_test(leaky_relu_default_alpha),
        cmocka_unit_test(grad_ops_match_reference),
        cmocka_unit_test(softmax_matches_reference),
        cmocka_unit_test(softmax_is_stable_for_large_logits),
        cmocka_unit_test(softmax_propagates_nan),
        cmocka_unit_test(kernels_in_place_match),
        cmocka_unit_test(grad_ops_reject_mismatched_shapes),
        cmocka_unit_test(softmax_rejects_scalars),
        cmocka_unit_test(activations_reject_integers),
        cmocka_unit_test(shape_functions_in_graph),
        cmocka_unit_test(activation_gradients_match_finite_differences),
        cmocka_unit_test(linear_grad_ops_have_gradients),
        cmocka_unit_test(softmax_gradients_match_finite_differences),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
