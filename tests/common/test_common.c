/*
 * test_common.c - helpers shared by Floe's cmocka tests (see test_common.h).
 */
#include "test_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* @t's bytes on the host: its own, or (on a device whose memory the host cannot read,
 * a GPU's) those of a host copy returned in *@hold for the caller to unref.  The
 * suite's readers go through it, so that tests pass with nodes placed on a GPU. */
static const void *host_bytes(const floe_tensor *t, floe_tensor **hold) {
    *hold = NULL;
    if (floe_tensor_data(t) != NULL || floe_tensor_nbytes(t) == 0)
        return floe_tensor_data(t);
    if (floe_tensor_to_host(t, hold) != FLOE_OK)
        fail_msg("reading a device tensor: %s", floe_last_error());
    return floe_tensor_data(*hold);
}

floe_context *tc_context(void) {
    floe_context *ctx = NULL;
    floe_status st = floe_context_new(NULL, &ctx);
    if (st != FLOE_OK)
        fail_msg("floe_context_new: %s: %s", floe_status_str(st), floe_last_error());
    return ctx;
}

int tc_setup_context(void **state) {
    *state = tc_context();
    return *state == NULL;
}

int tc_teardown_context(void **state) {
    floe_context_free(*state);
    return 0;
}

floe_tensor *tc_tensor(floe_dtype dt, const int64_t *shape, int ndim, const void *data) {
    floe_tensor *t = NULL;
    floe_status st = floe_tensor_new(dt, shape, ndim, &t);
    if (st != FLOE_OK)
        fail_msg("floe_tensor_new: %s", floe_last_error());
    if (data != NULL && floe_tensor_nbytes(t) > 0)
        memcpy(floe_tensor_data(t), data, floe_tensor_nbytes(t));
    return t;
}

floe_tensor *tc_f32(const int64_t *shape, int ndim, const float *data) {
    return tc_tensor(FLOE_DTYPE_F32, shape, ndim, data);
}
floe_tensor *tc_i32(const int64_t *shape, int ndim, const int32_t *data) {
    return tc_tensor(FLOE_DTYPE_I32, shape, ndim, data);
}
floe_tensor *tc_i64(const int64_t *shape, int ndim, const int64_t *data) {
    return tc_tensor(FLOE_DTYPE_I64, shape, ndim, data);
}
floe_tensor *tc_scalar_f32(float v) {
    return tc_tensor(FLOE_DTYPE_F32, NULL, 0, &v);
}
floe_tensor *tc_scalar_i32(int32_t v) {
    return tc_tensor(FLOE_DTYPE_I32, NULL, 0, &v);
}

void tc_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 11) * (1.0 / 9007199254740992.0));
    }
}

floe_tensor *tc_run1(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                     const floe_attrs *attrs) {
    floe_tensor *out = NULL;
    floe_status st = floe_eager_run(ctx, op, NULL, in, nin, attrs, &out, 1);
    if (st != FLOE_OK)
        fail_msg("%s: %s: %s", op, floe_status_str(st), floe_last_error());
    return out;
}

floe_status tc_run_status(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                          const floe_attrs *attrs, int nout) {
    floe_tensor *outs[16] = {0};
    if (nout > 16)
        fail_msg("tc_run_status: too many outputs");
    floe_status st = floe_eager_run(ctx, op, NULL, in, nin, attrs, outs, nout);
    for (int i = 0; i < nout; i++) {
        if (st != FLOE_OK && outs[i] != NULL)
            fail_msg("%s failed but output %d is not NULL", op, i);
        floe_tensor_unref(outs[i]);
    }
    return st;
}

void tc_assert_shape(const floe_tensor *t, floe_dtype dt, const int64_t *shape, int ndim) {
    assert_non_null(t);
    if (floe_tensor_dtype(t) != dt)
        fail_msg("dtype %s, expected %s", floe_dtype_name(floe_tensor_dtype(t)),
                 floe_dtype_name(dt));
    if (floe_tensor_ndim(t) != ndim)
        fail_msg("rank %d, expected %d", floe_tensor_ndim(t), ndim);
    for (int i = 0; i < ndim; i++)
        if (floe_tensor_dim(t, i) != shape[i])
            fail_msg("dim %d is %lld, expected %lld", i, (long long)floe_tensor_dim(t, i),
                     (long long)shape[i]);
}

void tc_assert_close_f32(const floe_tensor *t, const float *expect, int64_t n, float rtol,
                         float atol) {
    assert_non_null(t);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F32);
    assert_int_equal(floe_tensor_num_elements(t), n);
    floe_tensor *hold;
    const float *a = host_bytes(t, &hold);
    for (int64_t i = 0; i < n; i++) {
        float b = expect[i];
        if (isnan(b) && isnan(a[i]))
            continue;
        if (isinf(b) && a[i] == b)
            continue;
        if (!(fabsf(a[i] - b) <= atol + rtol * fabsf(b)))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, a[i], b);
    }
    floe_tensor_unref(hold);
}

void tc_assert_close_f64(const floe_tensor *t, const double *expect, int64_t n, double rtol,
                         double atol) {
    assert_non_null(t);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F64);
    assert_int_equal(floe_tensor_num_elements(t), n);
    floe_tensor *hold;
    const double *a = host_bytes(t, &hold);
    for (int64_t i = 0; i < n; i++) {
        double b = expect[i];
        if (isnan(b) && isnan(a[i]))
            continue;
        if (isinf(b) && a[i] == b)
            continue;
        if (!(fabs(a[i] - b) <= atol + rtol * fabs(b)))
            fail_msg("element %lld: got %.17g, expected %.17g", (long long)i, a[i], b);
    }
    floe_tensor_unref(hold);
}

floe_tensor *tc_host(const floe_tensor *t) {
    floe_tensor *hold;
    (void)host_bytes(t, &hold);
    return hold != NULL ? hold : floe_tensor_ref((floe_tensor *)t);
}

floe_tensor *tc_take_host(floe_tensor *t) {
    floe_tensor *h = tc_host(t);
    floe_tensor_unref(t);
    return h;
}

bool tc_on_device(const floe_tensor *t) {
    return floe_tensor_device(t) != NULL && floe_tensor_data(t) == NULL &&
           floe_tensor_nbytes(t) > 0;
}

void tc_assert_error_contains(const char *needle) {
    const char *msg = floe_last_error();
    if (msg == NULL || strstr(msg, needle) == NULL)
        fail_msg("error message \"%s\" does not contain \"%s\"", msg ? msg : "(null)", needle);
}

void tc_unref_all(floe_tensor **t, int n) {
    for (int i = 0; i < n; i++)
        floe_tensor_unref(t[i]);
}

int64_t tc_count(const int64_t *dims, int nd) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    return n;
}

void tc_unravel(int64_t idx, const int64_t *dims, int nd, int64_t *coord) {
    for (int i = nd - 1; i >= 0; i--) {
        coord[i] = dims[i] > 0 ? idx % dims[i] : 0;
        idx = dims[i] > 0 ? idx / dims[i] : 0;
    }
}

int64_t tc_ravel(const int64_t *coord, const int64_t *dims, int nd) {
    int64_t idx = 0;
    for (int i = 0; i < nd; i++)
        idx = idx * dims[i] + coord[i];
    return idx;
}

void tc_expect_invalid(floe_context *ctx, const char *op, floe_tensor *const *in, int nin,
                       const floe_attrs *attrs, int nout, const char *needle) {
    floe_status st = tc_run_status(ctx, op, in, nin, attrs, nout);
    if (st != FLOE_INVALID_ARGUMENT)
        fail_msg("%s: expected INVALID_ARGUMENT (\"%s\"), got %s: %s", op, needle,
                 floe_status_str(st), floe_last_error());
    tc_assert_error_contains(needle);
}

floe_node *tc_finish(floe_node_builder *b) {
    floe_node *n = NULL;
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("finish: %s", floe_last_error());
    return n;
}

floe_node *tc_g_const(floe_graph *g, floe_tensor *v) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, "Const", NULL, &b), FLOE_OK);
    assert_int_equal(floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", v), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", floe_tensor_dtype(v)),
                     FLOE_OK);
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("Const: %s", floe_last_error());
    floe_tensor_unref(v);
    return n;
}

floe_node *tc_placeholder(floe_graph *g, const char *name, floe_dtype dt, const int64_t *dims,
                          int nd) {
    floe_node_builder *b = NULL;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, "Placeholder", name, &b), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt), FLOE_OK);
    assert_int_equal(floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, nd), FLOE_OK);
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("Placeholder: %s", floe_last_error());
    return n;
}

floe_node *tc_g_ph(floe_graph *g, floe_dtype dt, const int64_t *dims, int nd) {
    return tc_placeholder(g, NULL, dt, dims, nd);
}

floe_status tc_g_node(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                      const floe_attrs *a, floe_node **out) {
    floe_node_builder *b = NULL;
    floe_output list[8];
    *out = NULL;
    assert_true(nlist <= 8);
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    for (int i = 0; a != NULL && i < floe_attrs_count(a); i++) {
        const char *name = floe_attrs_name(a, i);
        int64_t v;
        const int64_t *l;
        int n;
        if (floe_attrs_get_int(a, name, &v) == FLOE_OK)
            assert_int_equal(floe_attrs_set_int(floe_node_builder_attrs(b), name, v), FLOE_OK);
        else if (floe_attrs_get_int_list(a, name, &l, &n) == FLOE_OK)
            assert_int_equal(floe_attrs_set_int_list(floe_node_builder_attrs(b), name, l, n),
                             FLOE_OK);
    }
    for (int i = 0; i < nlist; i++)
        list[i] = floe_out(in[i], 0);
    if (nlist > 0)
        floe_node_builder_add_input_list(b, list, nlist);
    for (int i = nlist; i < nin; i++)
        floe_node_builder_add_input(b, floe_out(in[i], 0));
    return floe_node_builder_finish(b, out);
}

void tc_expect_shape(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                     const floe_attrs *a, int k, const int64_t *dims, int nd) {
    floe_node *n;
    if (tc_g_node(g, op, in, nin, nlist, a, &n) != FLOE_OK)
        fail_msg("%s: %s", op, floe_last_error());
    floe_shape s = floe_node_output_shape(n, k);
    if (s.ndim != nd)
        fail_msg("%s: inferred rank %d, expected %d", op, s.ndim, nd);
    for (int i = 0; i < nd; i++)
        if (s.dims[i] != dims[i])
            fail_msg("%s: inferred dim %d is %lld, expected %lld", op, i, (long long)s.dims[i],
                     (long long)dims[i]);
}

void tc_expect_build_error(floe_graph *g, const char *op, floe_node *const *in, int nin, int nlist,
                           const floe_attrs *a, const char *needle) {
    floe_node *n;
    floe_status st = tc_g_node(g, op, in, nin, nlist, a, &n);
    if (st != FLOE_INVALID_ARGUMENT)
        fail_msg("%s: expected the build to fail (\"%s\"), got %s", op, needle,
                 floe_status_str(st));
    tc_assert_error_contains(needle);
}

uint64_t tc_rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

double tc_uniform01(uint64_t *s) {
    return (double)(tc_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

floe_tensor *tc_rand_tensor_stream(floe_dtype dt, const int64_t *shape, int nd, double lo,
                                   double hi, uint64_t state) {
    floe_tensor *t = tc_tensor(dt, shape, nd, NULL);
    int64_t n = floe_tensor_num_elements(t);
    for (int64_t i = 0; i < n; i++) {
        double u = tc_uniform01(&state);
        if (dt == FLOE_DTYPE_F32)
            ((float *)floe_tensor_data(t))[i] = (float)(lo + (hi - lo) * u);
        else if (dt == FLOE_DTYPE_F64)
            ((double *)floe_tensor_data(t))[i] = lo + (hi - lo) * u;
        else
            tc_set_i(t, i, (int64_t)floor(lo + (hi - lo + 1) * u));
    }
    return t;
}

floe_tensor *tc_rand_tensor(floe_dtype dt, const int64_t *shape, int nd, double lo, double hi,
                            uint64_t seed) {
    return tc_rand_tensor_stream(dt, shape, nd, lo, hi, seed * 0x9E3779B97F4A7C15ull + 7);
}

double tc_get_f(const floe_tensor *t, int64_t i) {
    const void *p = floe_tensor_data(t);
    if (p == NULL && floe_tensor_nbytes(t) > 0) { /* on a GPU: through a host copy */
        floe_tensor *hold;
        (void)host_bytes(t, &hold);
        double v = tc_get_f(hold, i);
        floe_tensor_unref(hold);
        return v;
    }
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_F32:
        return ((const float *)p)[i];
    case FLOE_DTYPE_F64:
        return ((const double *)p)[i];
    case FLOE_DTYPE_I8:
    case FLOE_DTYPE_I16:
    case FLOE_DTYPE_I32:
    case FLOE_DTYPE_I64:
    case FLOE_DTYPE_U8:
    case FLOE_DTYPE_BOOL:
        return (double)tc_get_i(t, i);
    default:
        fail_msg("tc_get_f: dtype %s", floe_dtype_name(floe_tensor_dtype(t)));
    }
    return 0;
}

int64_t tc_get_i(const floe_tensor *t, int64_t i) {
    const void *p = floe_tensor_data(t);
    if (p == NULL && floe_tensor_nbytes(t) > 0) {
        floe_tensor *hold;
        (void)host_bytes(t, &hold);
        int64_t v = tc_get_i(hold, i);
        floe_tensor_unref(hold);
        return v;
    }
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_I8:
        return ((const int8_t *)p)[i];
    case FLOE_DTYPE_I16:
        return ((const int16_t *)p)[i];
    case FLOE_DTYPE_I32:
        return ((const int32_t *)p)[i];
    case FLOE_DTYPE_I64:
        return ((const int64_t *)p)[i];
    case FLOE_DTYPE_U8:
        return ((const uint8_t *)p)[i];
    case FLOE_DTYPE_BOOL:
        return ((const uint8_t *)p)[i];
    default:
        fail_msg("tc_get_i: dtype %s", floe_dtype_name(floe_tensor_dtype(t)));
    }
    return 0;
}

void tc_set_i(floe_tensor *t, int64_t i, int64_t v) {
    void *p = floe_tensor_data(t);
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_I8:
        ((int8_t *)p)[i] = (int8_t)v;
        break;
    case FLOE_DTYPE_I16:
        ((int16_t *)p)[i] = (int16_t)v;
        break;
    case FLOE_DTYPE_I32:
        ((int32_t *)p)[i] = (int32_t)v;
        break;
    case FLOE_DTYPE_I64:
        ((int64_t *)p)[i] = v;
        break;
    case FLOE_DTYPE_U8:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    case FLOE_DTYPE_BOOL:
        ((uint8_t *)p)[i] = (uint8_t)(v != 0);
        break;
    default:
        fail_msg("tc_set_i: dtype %s", floe_dtype_name(floe_tensor_dtype(t)));
    }
}

int64_t tc_wrap_to(floe_dtype dt, int64_t v) {
    switch (dt) {
    case FLOE_DTYPE_I8:
        return (int8_t)v;
    case FLOE_DTYPE_I16:
        return (int16_t)v;
    case FLOE_DTYPE_I32:
        return (int32_t)v;
    case FLOE_DTYPE_U8:
        return (uint8_t)v;
    default:
        return v;
    }
}

void tc_assert_near(const floe_tensor *t, const double *want, int64_t n, double rtol, double atol,
                    bool nan_equal, const char *what) {
    floe_tensor *hold;
    assert_int_equal(floe_tensor_num_elements(t), n);
    (void)host_bytes(t, &hold);
    for (int64_t i = 0; i < n; i++) {
        double a = tc_get_f(hold != NULL ? hold : t, i), b = want[i];
        if (nan_equal && isnan(b) && isnan(a))
            continue;
        if (!(fabs(a - b) <= atol + rtol * fabs(b)))
            fail_msg("%s: element %lld: got %.17g, expected %.17g", what, (long long)i, a, b);
    }
    floe_tensor_unref(hold);
}

void tc_assert_elem_eq(const floe_tensor *a, int64_t ia, const floe_tensor *b, int64_t ib,
                       bool may_share) {
    floe_dtype dt = floe_tensor_dtype(a);
    assert_int_equal(dt, floe_tensor_dtype(b));
    if (dt == FLOE_DTYPE_STRING) {
        const char *sa, *sb;
        size_t na, nb;
        assert_int_equal(floe_tensor_get_string(a, ia, &sa, &na), FLOE_OK);
        assert_int_equal(floe_tensor_get_string(b, ib, &sb, &nb), FLOE_OK);
        if (na != nb || memcmp(sa, sb, na) != 0)
            fail_msg("string element %lld is \"%.*s\", expected \"%.*s\" (element %lld)",
                     (long long)ia, (int)na, sa, (int)nb, sb, (long long)ib);
        if (!(may_share && floe_tensor_data(a) == floe_tensor_data(b)) && na > 0 && sa == sb)
            fail_msg("string element %lld shares its bytes with the input", (long long)ia);
        return;
    }
    size_t es = floe_dtype_size(dt);
    floe_tensor *ha, *hb;
    const unsigned char *pa = host_bytes(a, &ha), *pb = host_bytes(b, &hb);
    bool same = memcmp(pa + ia * es, pb + ib * es, es) == 0;
    floe_tensor_unref(ha);
    floe_tensor_unref(hb);
    if (!same)
        fail_msg("element %lld differs from expected element %lld", (long long)ia, (long long)ib);
}

floe_attrs *tc_attrs_new(void) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    return a;
}

int64_t tc_bcast_index(int64_t o, const int64_t *out, int nd_out, const int64_t *in, int nd_in) {
    int64_t idx = 0, stride = 1;
    for (int d = nd_out - 1; d >= 0; d--) {
        int64_t c = o % out[d];
        o /= out[d];
        int di = d - (nd_out - nd_in);
        if (di < 0)
            continue;
        if (in[di] != 1)
            idx += c * stride;
        stride *= in[di];
    }
    return idx;
}

floe_tensor *tc_rand_bytes(floe_dtype dt, const int64_t *shape, int nd, uint64_t *state,
                           const char *str_fmt, uint64_t str_mod) {
    floe_tensor *t = tc_tensor(dt, shape, nd, NULL);
    int64_t n = floe_tensor_num_elements(t);
    if (dt == FLOE_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            char buf[64];
            int len = snprintf(buf, sizeof(buf), str_fmt, (long long)i,
                               (unsigned long long)(tc_rng_next(state) % str_mod));
            assert_int_equal(floe_tensor_set_string(t, i, buf, (size_t)len), FLOE_OK);
        }
        return t;
    }
    unsigned char *p = floe_tensor_data(t);
    for (size_t i = 0; i < floe_tensor_nbytes(t); i++) {
        uint64_t r = tc_rng_next(state);
        p[i] = dt == FLOE_DTYPE_BOOL ? (unsigned char)(r & 1) : (unsigned char)r;
    }
    return t;
}

void tc_tmpdir(char *buf, size_t len, const char *what) {
    snprintf(buf, len, "/tmp/floe-%s-XXXXXX", what);   /* mkdtemp's template */
    if (mkdtemp(buf) == NULL)
        fail_msg("mkdtemp %s: %s", buf, strerror(errno));
}
