/*
 * test_ops_nn_optim.c - the ResourceApply* training ops of ops_nn against references
 * computed here in double precision from TensorFlow's update rules.
 *
 * Each case creates the variable and its slots with known values, feeds a different
 * gradient at each of several steps through a Placeholder, runs the apply node and
 * compares every variable and slot with the reference after the last step.  Sizes
 * cover the vector loop's remainder (37 elements) and the parallel path (100003
 * elements, above the kernel's split threshold).  Error cases: a gradient of the wrong
 * shape, an uninitialised slot, the same variable passed as var and slot, a non-scalar
 * learning rate.
 */
#include "test_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXV 4

/* ---- Graph helpers ------------------------------------------------------------------ */

static floe_node *var_handle(floe_graph *g, const char *name, const int64_t *shape, int nd) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "VarHandleOp", name, &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, nd);
    return tc_finish(b);
}

static floe_node *placeholder(floe_graph *g, const int64_t *shape, int nd) {
    return tc_placeholder(g, "grad", FLOE_DTYPE_F32, shape, nd);
}

static floe_node *assign(floe_graph *g, floe_node *h, floe_node *v) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "AssignVariableOp", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_node_builder_add_input(b, floe_out(v, 0));
    return tc_finish(b);
}

static floe_node *read_var(floe_graph *g, floe_node *h) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, "ReadVariableOp", NULL, &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(h, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    return tc_finish(b);
}

/* ---- One case --------------------------------------------------------------------- */

/* An optimizer case: @nvars variables (var, then slots) with initial values, the
 * scalars in op order, the gradient's position among the non-resource inputs. */
typedef struct opt_case {
    const char *op;
    int nvars;
    int nscalars;
    int grad_pos;             /* index among the non-resource inputs */
    double scalars[8];
    const char *bool_attr;    /* NULL or "use_nesterov", ... */
    int bool_value;
} opt_case;

typedef void (*ref_step)(const opt_case *c, double **v, const double *g, int64_t n, int step);

/* Builds the graph, runs @steps steps and compares with @ref. */
static void run_case(const opt_case *c, ref_step ref, int64_t n, int steps, float tol) {
    floe_context *ctx = tc_context();
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_node *h[MAXV], *reads[MAXV], *init[MAXV], *gph, *apply;
    double *ref_v[MAXV];
    float *buf = malloc((size_t)n * sizeof(float));
    int64_t shape[1] = {n};

    assert_non_null(buf);
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    for (int k = 0; k < c->nvars; k++) {
        char name[16];
        snprintf(name, sizeof(name), "v%d", k);
        h[k] = var_handle(g, name, shape, 1);
        ref_v[k] = malloc((size_t)n * sizeof(double));
        assert_non_null(ref_v[k]);
        /* var in [-1, 1); slots positive (accumulators must be > 0 for Adagrad/Ftrl). */
        tc_fill_uniform(buf, n, k == 0 ? -1.0f : 0.1f, 1.0f, 11 + (uint64_t)k);
        for (int64_t i = 0; i < n; i++)
            ref_v[k][i] = buf[i];
        init[k] = assign(g, h[k], tc_g_const(g, tc_f32(shape, 1, buf)));
        reads[k] = read_var(g, h[k]);
    }
    gph = placeholder(g, shape, 1);
    {
        floe_node_builder *b = NULL;
        int si = 0;
        assert_int_equal(floe_node_builder_new(g, c->op, "apply", &b), FLOE_OK);
        for (int k = 0; k < c->nvars; k++)
            floe_node_builder_add_input(b, floe_out(h[k], 0));
        for (int i = 0; i < c->nscalars + 1; i++) {
            if (i == c->grad_pos)
                floe_node_builder_add_input(b, floe_out(gph, 0));
            else
                floe_node_builder_add_input(
                    b, floe_out(tc_g_const(g, tc_scalar_f32((float)c->scalars[si++])), 0));
        }
        if (c->bool_attr != NULL)
            floe_attrs_set_bool(floe_node_builder_attrs(b), c->bool_attr, c->bool_value);
        apply = tc_finish(b);
    }
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, init, c->nvars, NULL), FLOE_OK);

    double *gd = malloc((size_t)n * sizeof(double));
    assert_non_null(gd);
    for (int step = 0; step < steps; step++) {
        tc_fill_uniform(buf, n, -2.0f, 2.0f, 100 + (uint64_t)step);
        for (int64_t i = 0; i < n; i++)
            gd[i] = buf[i];
        floe_tensor *gt = tc_f32(shape, 1, buf);
        floe_output feed = floe_out(gph, 0);
        if (floe_session_run(s, &feed, &gt, 1, NULL, 0, &apply, 1, NULL) != FLOE_OK)
            fail_msg("%s step %d: %s", c->op, step, floe_last_error());
        floe_tensor_unref(gt);
        ref(c, ref_v, gd, n, step);
    }
    for (int k = 0; k < c->nvars; k++) {
        floe_output f = floe_out(reads[k], 0);
        floe_tensor *t = NULL;
        assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &t), FLOE_OK);
        for (int64_t i = 0; i < n; i++)
            buf[i] = (float)ref_v[k][i];
        tc_assert_close_f32(t, buf, n, tol, tol);
        floe_tensor_unref(t);
        free(ref_v[k]);
    }
    free(gd);
    free(buf);
    floe_session_free(s);
    floe_graph_free(g);
    floe_context_free(ctx);
}

/* ---- References (TensorFlow's training_ops.cc, in double) ----------------------------- */

static void ref_sgd(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    (void)step;
    for (int64_t i = 0; i < n; i++)
        v[0][i] -= c->scalars[0] * g[i];
}

static void ref_momentum(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    double lr = c->scalars[0], mu = c->scalars[1];
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        v[1][i] = v[1][i] * mu + g[i];
        if (c->bool_value)
            v[0][i] -= g[i] * lr + v[1][i] * mu * lr;
        else
            v[0][i] -= lr * v[1][i];
    }
}

/* Scalars: beta1_power, beta2_power, lr, beta1, beta2, epsilon (the powers are fixed
 * inputs here, as the op takes them). */
static void ref_adam(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    const double *s = c->scalars;
    double lr_t = s[2] * sqrt(1 - s[1]) / (1 - s[0]);
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        v[1][i] += (g[i] - v[1][i]) * (1 - s[3]);
        v[2][i] += (g[i] * g[i] - v[2][i]) * (1 - s[4]);
        double num = c->bool_value ? g[i] * (1 - s[3]) + s[3] * v[1][i] : v[1][i];
        v[0][i] -= lr_t * num / (sqrt(v[2][i]) + s[5]);
    }
}

static void ref_adagrad(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        v[1][i] += g[i] * g[i];
        v[0][i] -= c->scalars[0] * g[i] / sqrt(v[1][i]);
    }
}

static void ref_rmsprop(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    const double *s = c->scalars; /* lr, rho, momentum, epsilon */
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        v[1][i] += (g[i] * g[i] - v[1][i]) * (1 - s[1]);
        v[2][i] = v[2][i] * s[2] + s[0] * g[i] / sqrt(v[1][i] + s[3]);
        v[0][i] -= v[2][i];
    }
}

static void ref_centered(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    const double *s = c->scalars; /* lr, rho, momentum, epsilon; v: var, mg, ms, mom */
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        v[2][i] += (g[i] * g[i] - v[2][i]) * (1 - s[1]);
        v[1][i] += (g[i] - v[1][i]) * (1 - s[1]);
        v[3][i] = v[3][i] * s[2] + s[0] * g[i] / sqrt(v[2][i] - v[1][i] * v[1][i] + s[3]);
        v[0][i] -= v[3][i];
    }
}

/* TensorFlow's ApplyFtrl; scalars lr, l1, l2, lr_power. */
static void ref_ftrl(const opt_case *c, double **v, const double *g, int64_t n, int step) {
    const double lr = c->scalars[0], l1 = c->scalars[1], l2 = c->scalars[2];
    const double p = c->scalars[3];
    (void)step;
    for (int64_t i = 0; i < n; i++) {
        double acc = v[1][i], nacc = acc + g[i] * g[i];
        v[2][i] += g[i] - (pow(nacc, -p) - pow(acc, -p)) / lr * v[0][i];
        double quad = pow(nacc, -p) / lr + 2 * l2;
        double lin = v[2][i];
        v[0][i] = fabs(lin) > l1 ? ((lin > 0 ? l1 : -l1) - lin) / quad : 0.0;
        v[1][i] = nacc;
    }
}

/* ---- Tests ------------------------------------------------------------------------- */

static void test_sgd(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyGradientDescent", 1, 1, 1, {0.05}, NULL, 0};
    run_case(&c, ref_sgd, 37, 5, 1e-5f);
    run_case(&c, ref_sgd, 100003, 3, 1e-5f);
}

static void test_momentum(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyMomentum", 2, 2, 1, {0.01, 0.9}, "use_nesterov", 0};
    run_case(&c, ref_momentum, 37, 6, 1e-5f);
    run_case(&c, ref_momentum, 100003, 3, 1e-5f);
}

static void test_momentum_nesterov(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyMomentum", 2, 2, 1, {0.01, 0.9}, "use_nesterov", 1};
    run_case(&c, ref_momentum, 37, 6, 1e-5f);
    run_case(&c, ref_momentum, 100003, 3, 1e-5f);
}

static void test_adam(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyAdam", 3, 6, 6, {0.9, 0.999, 0.01, 0.9, 0.999, 1e-7},
                  "use_nesterov", 0};
    run_case(&c, ref_adam, 37, 6, 1e-5f);
    run_case(&c, ref_adam, 100003, 3, 1e-5f);
}

static void test_adam_nesterov(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyAdam", 3, 6, 6, {0.81, 0.998, 0.01, 0.9, 0.999, 1e-7},
                  "use_nesterov", 1};
    run_case(&c, ref_adam, 37, 6, 1e-5f);
    run_case(&c, ref_adam, 100003, 3, 1e-5f);
}

static void test_adagrad(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyAdagrad", 2, 1, 1, {0.1}, NULL, 0};
    run_case(&c, ref_adagrad, 37, 6, 1e-5f);
    run_case(&c, ref_adagrad, 100003, 3, 1e-5f);
}

static void test_rmsprop(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyRMSProp", 3, 4, 4, {0.01, 0.9, 0.5, 1e-6}, NULL, 0};
    run_case(&c, ref_rmsprop, 37, 6, 1e-5f);
    run_case(&c, ref_rmsprop, 100003, 3, 1e-5f);
}

static void test_centered_rmsprop(void **state) {
    (void)state;
    opt_case c = {"ResourceApplyCenteredRMSProp", 4, 4, 4, {0.01, 0.9, 0.5, 1.0}, NULL, 0};
    run_case(&c, ref_centered, 37, 6, 1e-5f);
    run_case(&c, ref_centered, 100003, 3, 1e-5f);
}

static void test_ftrl(void **state) {
    (void)state;
    /* grad first among the non-resource inputs, then lr, l1, l2, lr_power. */
    opt_case half = {"ResourceApplyFtrl", 3, 4, 0, {0.5, 0.05, 0.1, -0.5}, NULL, 0};
    opt_case other = {"ResourceApplyFtrl", 3, 4, 0, {0.5, 0.01, 0.2, -0.3}, NULL, 0};
    run_case(&half, ref_ftrl, 37, 5, 1e-4f);
    run_case(&other, ref_ftrl, 37, 5, 1e-4f);
    run_case(&half, ref_ftrl, 100003, 2, 1e-4f);
}

/* ---- Errors ------------------------------------------------------------------------ */

static void test_errors(void **state) {
    (void)state;
    floe_context *ctx = tc_context();
    floe_graph *g = NULL;
    floe_session *s = NULL;
    int64_t shape[1] = {4}, bad[1] = {5};
    float z[5] = {0};
    floe_node *v, *acc, *other, *b1, *b2, *b3, *b4, *iv;
    floe_node_builder *b = NULL;
    floe_node *n = NULL;

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    v = var_handle(g, "v", shape, 1);
    acc = var_handle(g, "acc", shape, 1);
    other = var_handle(g, "uninit", shape, 1);
    iv = assign(g, v, tc_g_const(g, tc_f32(shape, 1, z)));
    floe_node *ia = assign(g, acc, tc_g_const(g, tc_f32(shape, 1, z)));

    /* Gradient of the wrong shape. */
    assert_int_equal(floe_node_builder_new(g, "ResourceApplyGradientDescent", "bad_shape", &b),
                     FLOE_OK);
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_scalar_f32(0.1f)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(bad, 1, z)), 0));
    b1 = tc_finish(b);
    /* An uninitialised slot. */
    assert_int_equal(floe_node_builder_new(g, "ResourceApplyMomentum", "uninit_slot", &b),
                     FLOE_OK);
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(other, 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_scalar_f32(0.1f)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(shape, 1, z)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_scalar_f32(0.9f)), 0));
    b2 = tc_finish(b);
    /* The same variable as var and slot. */
    assert_int_equal(floe_node_builder_new(g, "ResourceApplyAdagrad", "aliased", &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_scalar_f32(0.1f)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(shape, 1, z)), 0));
    b3 = tc_finish(b);
    /* Adam with beta1_power == 1 (division by zero in lr_t). */
    assert_int_equal(floe_node_builder_new(g, "ResourceApplyAdam", "adam_b1p", &b), FLOE_OK);
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(acc, 0));
    floe_node_builder_add_input(b, floe_out(other, 0));
    for (int i = 0; i < 6; i++)
        floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_scalar_f32(1.0f)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(shape, 1, z)), 0));
    b4 = tc_finish(b);

    /* A non-scalar learning rate is rejected when the node is built. */
    assert_int_equal(floe_node_builder_new(g, "ResourceApplyGradientDescent", "vec_lr", &b),
                     FLOE_OK);
    floe_node_builder_add_input(b, floe_out(v, 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(shape, 1, z)), 0));
    floe_node_builder_add_input(b, floe_out(tc_g_const(g, tc_f32(shape, 1, z)), 0));
    assert_int_equal(floe_node_builder_finish(b, &n), FLOE_INVALID_ARGUMENT);
    assert_null(n);
    tc_assert_error_contains("must be a scalar");

    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_node *inits[2] = {iv, ia};
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, inits, 2, NULL), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &b1, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("gradient has shape [5]");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &b2, 1, NULL),
                     FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("uninitialised");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &b3, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("same variable");
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, NULL, 0, &b4, 1, NULL),
                     FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("beta1_power");
    floe_session_free(s);
    floe_graph_free(g);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_momentum),
        cmocka_unit_test(test_momentum_nesterov),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_nesterov),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_centered_rmsprop),
        cmocka_unit_test(test_ftrl),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
