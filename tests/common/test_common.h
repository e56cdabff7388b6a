/*
 * test_common.h - helpers shared by Floe's cmocka tests.
 *
 * Include after <cmocka.h>'s prerequisites.  The helpers fail the running test through
 * cmocka's assertions, so callers need not check their results.
 */
#ifndef FLOE_TEST_COMMON_H
#define FLOE_TEST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <floe/floe.h>

/* A context loading the plugins of the build tree (FLOE_PLUGIN_PATH set by meson). */
floe_context *tc_context(void);
/* cmocka setup/teardown storing a context in *state. */
int tc_setup_context(void **state);
int tc_teardown_context(void **state);

/* A new host tensor with a copy of @data (may be NULL: zeros). */
floe_tensor *tc_tensor(floe_dtype dt, const int64_t *shape, int ndim, const void *data);
floe_tensor *tc_f32(const int64_t *shape, int ndim, const float *data);
floe_tensor *tc_i32(const int64_t *shape, int ndim, const int32_t *data);
floe_tensor *tc_i64(const int64_t *shape, int ndim, const int64_t *data);
floe_tensor *tc_scalar_f32(float v);
floe_tensor *tc_scalar_i32(int32_t v);

/* Deterministic uniform random floats in [lo, hi) (xorshift, per-seed). */
void tc_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* Runs @op eagerly on CPU with one output, asserting success. (transfer full) */
floe_tensor *tc_run1(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                     const floe_attrs *attrs);
/* Runs @op eagerly and returns its status (outputs freed); for error-path tests. */
floe_status tc_run_status(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                          const floe_attrs *attrs, int nout);

/* Asserts @t has dtype @dt and shape @shape. */
void tc_assert_shape(const floe_tensor *t, floe_dtype dt, const int64_t *shape, int ndim);
/* Asserts element-wise closeness of an f32 tensor to @expect: |a-b| <= atol + rtol*|b|. */
void tc_assert_close_f32(const floe_tensor *t, const float *expect, int64_t n, float rtol,
                         float atol);
void tc_assert_close_f64(const floe_tensor *t, const double *expect, int64_t n, double rtol,
                         double atol);
/* Asserts floe_last_error() contains @needle. */
void tc_assert_error_contains(const char *needle);

#endif /* FLOE_TEST_COMMON_H */
