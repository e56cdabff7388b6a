/*
 * ops_nn-impl.h - shared declarations of the ops_nn plugin (not installed).
 *
 * Each source file registers its ops, CPU kernels and gradient functions through one
 * function called by plugin.c.
 */
#ifndef FLOE_OPS_NN_IMPL_H
#define FLOE_OPS_NN_IMPL_H

#include <floe/plugin.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

floe_status ops_nn__register_conv(floe_plugin *self);        /* conv.c: Conv2D, backprops, depthwise */
floe_status ops_nn__register_pool(floe_plugin *self);        /* pool.c: MaxPool, AvgPool, grads */
floe_status ops_nn__register_batchnorm(floe_plugin *self);   /* batchnorm.c: FusedBatchNormV3, grad */
floe_status ops_nn__register_activation(floe_plugin *self);  /* activation.c: Relu ... Softsign, grads */
floe_status ops_nn__register_softmax(floe_plugin *self);     /* softmax.c: Softmax, LogSoftmax */
floe_status ops_nn__register_loss(floe_plugin *self);        /* loss.c: cross-entropies, L2Loss */
floe_status ops_nn__register_bias(floe_plugin *self);        /* bias.c: BiasAdd, BiasAddGrad */
floe_status ops_nn__register_misc(floe_plugin *self);        /* misc.c: dropout, ResourceGather, InTopK */
floe_status ops_nn__register_optimizers(floe_plugin *self);  /* optimizers.c: ResourceApply* */

/* ---- Shared helpers of activation.c, softmax.c, loss.c, bias.c and misc.c ------------- */

/* Elements per parallel_for chunk: cheap elementwise work, and work that calls libm or
 * an exponential per element.  Smaller tensors run inline (no fork/join). */
#define OPS_NN_GRAIN (32 * 1024)
#define OPS_NN_GRAIN_HEAVY (8 * 1024)

/* The loop that follows carries no dependence between iterations, so it vectorises
 * even where the output is an input's buffer (in-place kernels read element i before
 * writing element i and nothing else). */
#if defined(__clang__)
#  pragma clang diagnostic ignored "-Wpass-failed"
#  define OPS_NN_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#  define OPS_NN_IVDEP _Pragma("GCC ivdep")
#else
#  define OPS_NN_IVDEP
#endif

/* Runs fn(arg, begin, end) over [0, @n): inline when @n <= @grain or @pool is NULL,
 * else split across @pool; nothing when @n <= 0. */
static inline void ops_nn__parallel(floe_threadpool *pool, int64_t n, int64_t grain,
                                    void (*fn)(void *arg, int64_t begin, int64_t end),
                                    void *arg) {
    if (n <= 0)
        return;
    if (pool == NULL || n <= grain || grain < 1)
        fn(arg, 0, n);
    else
        floe_parallel_for(pool, n, grain, fn, arg);
}

/* Input @i of a kernel, checked: dtype @dt (FLOE_DTYPE_INVALID: any) and host data when
 * it has elements.  *@out (out) is NULL on failure. */
static inline floe_status ops_nn__input(floe_kernel_ctx *kc, int i, floe_dtype dt,
                                        floe_tensor **out) {
    floe_tensor *t = floe_kernel_input(kc, i);
    *out = NULL;
    if (t == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d is missing", i);
    if (dt != FLOE_DTYPE_INVALID && floe_tensor_dtype(t) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d has dtype %s, expected %s", i,
                         floe_dtype_name(floe_tensor_dtype(t)), floe_dtype_name(dt));
    if (floe_tensor_num_elements(t) > 0 && floe_tensor_data(t) == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d is not in host memory", i);
    *out = t;
    return FLOE_OK;
}

/* True when @a and @b have the same rank and extents. */
static inline bool ops_nn__same_shape(const floe_tensor *a, const floe_tensor *b) {
    int nd = floe_tensor_ndim(a);
    if (nd != floe_tensor_ndim(b))
        return false;
    for (int d = 0; d < nd; d++)
        if (floe_tensor_dim(a, d) != floe_tensor_dim(b, d))
            return false;
    return true;
}

/* Formats @ndim extents as "[2,3,?]" (-1 as "?", ndim < 0 as "<unknown>") into @buf. */
static inline void ops_nn__format_dims(const int64_t *dims, int ndim, char *buf, size_t len) {
    size_t used = 0;
    if (len == 0)
        return;
    buf[0] = 0;
    if (ndim < 0) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    for (int d = 0; d <= ndim && used + 1 < len; d++) {
        int w;
        if (d == ndim)
            w = snprintf(buf + used, len - used, "]");
        else if (dims[d] < 0)
            w = snprintf(buf + used, len - used, "%s?", d == 0 ? "[" : ",");
        else
            w = snprintf(buf + used, len - used, "%s%lld", d == 0 ? "[" : ",",
                         (long long)dims[d]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
    if (ndim == 0)
        snprintf(buf, len, "[]");
}

/*
 * f32 e^x in plain arithmetic that vectorises (libm's expf is a scalar call): Cephes'
 * expf, x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r (about 1 ulp),
 * 2^n applied in two steps so that subnormal results round correctly and large ones
 * overflow to inf.  NaN gives NaN.  (The same function as ops_math's elementwise.c.)
 */
static inline float ops_nn__exp_f32(float x) {
    const float xs = x != x ? 0.0f : x > 89.0f ? 89.0f : x < -104.0f ? -104.0f : x;
    const float nf = (xs * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (xs - nf * 0.693359375f) - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t n = (int32_t)nf;
    const int32_t n1 = n / 2, n2 = n - n1;
    const uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof(s1));
    memcpy(&s2, &b2, sizeof(s2));
    const float y = p * s1 * s2;
    return x != x ? x : y;
}

/* Row reductions in 8 independent lanes, so that they vectorise without reassociation
 * flags: the maximum of @n >= 1 elements (NaN when any is NaN), the sum and the dot
 * product (for f32 also more accurate than one running sum). */
#define OPS_NN_ROW_REDUCTIONS(SFX, T)                                                    \
    static inline T ops_nn__row_max_##SFX(const T *x, int64_t n) {                       \
        T m[8];                                                                          \
        int nan = 0;                                                                     \
        int64_t i = 0;                                                                   \
        for (int j = 0; j < 8; j++)                                                      \
            m[j] = x[0];                                                                 \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++) {                                                \
                const T v = x[i + j];                                                    \
                m[j] = v > m[j] ? v : m[j];                                              \
                nan |= v != v;                                                           \
            }                                                                            \
        for (; i < n; i++) {                                                             \
            m[0] = x[i] > m[0] ? x[i] : m[0];                                            \
            nan |= x[i] != x[i];                                                         \
        }                                                                                \
        T r = m[0];                                                                      \
        for (int j = 1; j < 8; j++)                                                      \
            r = m[j] > r ? m[j] : r;                                                     \
        return nan ? (T)NAN : r;                                                         \
    }                                                                                    \
    static inline T ops_nn__row_sum_##SFX(const T *x, int64_t n) {                       \
        T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                               \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++)                                                  \
                s[j] += x[i + j];                                                        \
        for (; i < n; i++)                                                               \
            s[0] += x[i];                                                                \
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));        \
    }                                                                                    \
    static inline T ops_nn__row_dot_##SFX(const T *x, const T *y, int64_t n) {           \
        T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                               \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++)                                                  \
                s[j] += x[i + j] * y[i + j];                                             \
        for (; i < n; i++)                                                               \
            s[0] += x[i] * y[i];                                                         \
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));        \
    }
OPS_NN_ROW_REDUCTIONS(f32, float)
OPS_NN_ROW_REDUCTIONS(f64, double)

/* Gradient functions: adds node @op with @n inputs and (nullable) @attrs, output 0 in
 * *@out. */
static inline floe_status ops_nn__grad_node(floe_grad_ctx *gc, const char *op,
                                            const floe_output *in, int n,
                                            const floe_attrs *attrs, floe_output *out) {
    floe_node *node = NULL;
    floe_status st = floe_grad_add_node(gc, op, in, n, attrs, &node);
    memset(out, 0, sizeof(*out));
    if (st == FLOE_OK)
        out->node = node;
    return st;
}

#endif /* FLOE_OPS_NN_IMPL_H */
