/*
 * test_common.h - helpers shared by Floe's cmocka tests.
 *
 * Include after <cmocka.h>'s prerequisites.  The helpers fail the running test through
 * cmocka's assertions, so callers need not check their results.
 */
#ifndef FLOE_TEST_COMMON_H
#define FLOE_TEST_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
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
/* A host-readable @t: a new reference to @t when the host can read its data, else a host
 * copy (floe_tensor_to_host) of a tensor in device memory, as an output placed on a GPU
 * is.  Tests read results through it so that they pass on any device.  (transfer full) */
floe_tensor *tc_host(const floe_tensor *t);
/* tc_host(@t) taking over the caller's reference to @t: `y = tc_take_host(tc_run1(...))`
 * for a result the test reads directly. (transfer full) */
floe_tensor *tc_take_host(floe_tensor *t);
/* Whether @t's data lives in device memory the host cannot read (a GPU's).  Tests skip
 * assertions about the CPU kernels' implementation (buffer forwarding, the CPU
 * allocator's fault injection) for such outputs. */
bool tc_on_device(const floe_tensor *t);
/* Asserts floe_last_error() contains @needle. */
void tc_assert_error_contains(const char *needle);

/* Releases @n tensors of @t (NULL entries allowed). */
void tc_unref_all(floe_tensor **t, int n);
/* The number of elements of a shape of @nd extents (1 for a scalar). */
int64_t tc_count(const int64_t *dims, int nd);
/* Row-major coordinates @coord of flat index @idx in a shape of @nd extents. */
void tc_unravel(int64_t idx, const int64_t *dims, int nd, int64_t *coord);
/* The row-major flat index of coordinates @coord in a shape of @nd extents. */
int64_t tc_ravel(const int64_t *coord, const int64_t *dims, int nd);

/* Runs @op eagerly expecting FLOE_INVALID_ARGUMENT and a message containing @needle. */
void tc_expect_invalid(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                       const floe_attrs *attrs, int nout, const char *needle);

/* ---- Random data and element access ---- */

/* One xorshift64 step of the state @s (non-zero), returning the new state. */
uint64_t tc_rng_next(uint64_t *s);
/* A double uniform in [0, 1) from the top 53 bits of tc_rng_next(@s). */
double tc_uniform01(uint64_t *s);
/* A tensor of random values from the xorshift stream starting at @state: F32/F64 uniform in
 * [lo, hi), integer and BOOL dtypes floor-uniform in [lo, hi] (stored as by tc_set_i). */
floe_tensor *tc_rand_tensor_stream(floe_dtype dt, const int64_t *shape, int nd, double lo,
                                   double hi, uint64_t state);
/* tc_rand_tensor_stream from the state @seed * 0x9E3779B97F4A7C15 + 7. */
floe_tensor *tc_rand_tensor(floe_dtype dt, const int64_t *shape, int nd, double lo, double hi,
                            uint64_t seed);

/* Element @i of a numeric (float, integer or BOOL) tensor as double. */
double tc_get_f(const floe_tensor *t, int64_t i);
/* Element @i of an integer or BOOL tensor as int64. */
int64_t tc_get_i(const floe_tensor *t, int64_t i);
/* Stores int64 @v into element @i of an integer or BOOL tensor, keeping the low bits (the
 * dtype's wrap-around); BOOL stores v != 0. */
void tc_set_i(floe_tensor *t, int64_t i, int64_t v);
/* @v wrapped to the range of integer dtype @dt (I8, I16, I32, U8; others unchanged). */
int64_t tc_wrap_to(floe_dtype dt, int64_t v);

/* Asserts that @t has @n elements, each within atol + rtol * |want[i]| of @want (read with
 * tc_get_f); with @nan_equal a NaN matches a NaN.  @what names the check in the failure. */
void tc_assert_near(const floe_tensor *t, const double *want, int64_t n, double rtol, double atol,
                    bool nan_equal, const char *what);
/* Asserts element @ia of @a equals element @ib of @b, byte for byte (same dtype).  STRING
 * elements must also be separate copies, unless @may_share and @a and @b are the same
 * buffer (views share their strings by design). */
void tc_assert_elem_eq(const floe_tensor *a, int64_t ia, const floe_tensor *b, int64_t ib,
                       bool may_share);

/* Flat index into an input of shape @in (rank @nd_in) for output flat index @o of shape
 * @out (rank @nd_out), by numpy's broadcasting rule: right-aligned, extent 1 repeats. */
int64_t tc_bcast_index(int64_t o, const int64_t *out, int nd_out, const int64_t *in, int nd_in);
/* A tensor of arbitrary contents drawn from the xorshift state *@state: one draw a byte
 * (its low byte; BOOL its low bit), one a STRING element, formatted by @str_fmt from the
 * element's index (long long) and the draw modulo @str_mod (unsigned long long). */
floe_tensor *tc_rand_bytes(floe_dtype dt, const int64_t *shape, int nd, uint64_t *state,
                           const char *str_fmt, uint64_t str_mod);

/* A new empty attrs set. */
floe_attrs *tc_attrs_new(void);
/* A named (nullable) Placeholder of @dt and @nd extents (-1 unknown; @nd -1 unknown rank). */
floe_node *tc_placeholder(floe_graph *g, const char *name, floe_dtype dt, const int64_t *dims,
                          int nd);

/* ---- Graph building: each helper asserts success unless it returns a status ---- */

/* Finishes @b, failing the test with floe_last_error() if that fails. */
floe_node *tc_finish(floe_node_builder *b);
/* A Const node holding @v, whose reference it takes. */
floe_node *tc_g_const(floe_graph *g, floe_tensor *v);
/* A Placeholder of @nd extents (-1 unknown), or of unknown rank when @nd is -1. */
floe_node *tc_g_ph(floe_graph *g, floe_dtype dt, const int64_t *dims, int nd);
/* Builds @op over output 0 of each of @in; the first @nlist inputs form its list argument
 * (0: none, at most 8).  The int and int-list attrs of @a (nullable) are copied.  Returns
 * floe_node_builder_finish's status, the node in *out. */
floe_status tc_g_node(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                      const floe_attrs *a, floe_node **out);
/* Builds @op (as tc_g_node) and asserts output @k's inferred shape (@nd -1: unknown rank). */
void tc_expect_shape(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                     const floe_attrs *a, int k, const int64_t *dims, int nd);
/* Builds @op (as tc_g_node) and asserts that building fails with FLOE_INVALID_ARGUMENT and a
 * message containing @needle. */
void tc_expect_build_error(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                           const floe_attrs *a, const char *needle);

/* A new empty directory /tmp/floe-@what-<random> (mkdtemp) written to @buf; fails the
 * test when it cannot be made.  The caller removes it. */
void tc_tmpdir(char *buf, size_t len, const char *what);

#endif /* FLOE_TEST_COMMON_H */
