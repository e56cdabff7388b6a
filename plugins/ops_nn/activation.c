/*
 * activation.c - TensorFlow's activation ops and their gradient ops, on CPU (f32, f64).
 *
 * Forward:  Relu, Relu6, Elu, Selu, LeakyRelu (alpha), Gelu (approximate), Softplus,
 *           Softsign: features -> activations, same shape.
 * Backward: ReluGrad, Relu6Grad, LeakyReluGrad, SoftplusGrad, SoftsignGrad and GeluGrad
 *           take (gradients, features); EluGrad and SeluGrad take (gradients, outputs),
 *           as TensorFlow's do.  Both inputs must have one shape.
 *
 * Formulas (alpha of Selu and its scale are TensorFlow's constants):
 *   Relu max(x, 0)              Relu6 min(max(x, 0), 6)      Elu x < 0 ? e^x - 1 : x
 *   Selu scale * (x < 0 ? alpha (e^x - 1) : x)                LeakyRelu x > 0 ? x : alpha x
 *   Softplus log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) (no overflow)
 *   Softsign x / (1 + |x|)
 *   Gelu 0.5 x (1 + erf(x / sqrt 2)), or with approximate = true (tf.nn.gelu's flag)
 *        0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
 * GeluGrad is not a TensorFlow raw op (TensorFlow differentiates its composition); here
 * it is the fused derivative of the formula above, with the same approximate attr.
 * NaN propagates through every op.  ReluGrad, Relu6Grad and LeakyReluGrad have
 * gradients too (second order): they are linear in their gradients input.
 *
 * Each op is one pass whose inner loop is a plain loop over contiguous elements (f32
 * exponentials, tanh and erf in arithmetic that vectorises); tensors of more than
 * OPS_NN_GRAIN elements are split across the kernel's thread pool, smaller ones run
 * inline.  The output reuses the first input's buffer when it is not shared
 * (floe_kernel_forward_or_alloc).
 *
 * Sections: scalar math; row functions; kernels; gradient functions; definitions and
 * registration.
 */
#include "ops_nn-impl.h"

#include <math.h>

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_C 0.7978845608028654   /* sqrt(2 / pi) */
#define GELU_K 0.044715
#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT2PI 0.39894228040143267794

/* ---- Scalar math ------------------------------------------------------------------- */

/* tanh: Cephes' odd polynomial below 0.625, else 1 - 2 / (e^2|x| + 1), x's sign. */
static inline float tanh_f32(float x) {
    const float a = fabsf(x), z = a * a;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * a + a;
    const float big = 1.0f - 2.0f / (ops_nn__exp_f32(2.0f * a) + 1.0f);
    return copysignf(a < 0.625f ? small : big, x);
}

/* erf: Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, f32's precision
 * around the 1 that Gelu adds to it), with x's sign. */
static inline float erf_f32(float x) {
    const float a = fabsf(x);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.0f - p * t * ops_nn__exp_f32(-a * a);
    return copysignf(y, x);
}

static inline float sigmoid_f32(float x) {
    const float e = ops_nn__exp_f32(-fabsf(x));
    return (x >= 0 ? 1.0f : e) / (1.0f + e);
}
static inline double sigmoid_f64(double x) {
    const double e = exp(-fabs(x));
    return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

/* Exp, tanh, erf per dtype: the vectorising f32 versions and libm for f64. */
#define EXP_f32 ops_nn__exp_f32
#define EXP_f64 exp
#define EXPM1_f32 expm1f
#define EXPM1_f64 expm1
#define LOG1P_f32 log1pf
#define LOG1P_f64 log1p
#define TANH_f32 tanh_f32
#define TANH_f64 tanh
#define ERF_f32 erf_f32
#define ERF_f64 erf
#define FABS_f32 fabsf
#define FABS_f64 fabs

/* ---- Row functions ------------------------------------------------------------------ */

/* Attribute values a row function may use. */
typedef struct act_params {
    double alpha;        /* LeakyRelu */
    int approximate;     /* Gelu: tanh form */
} act_params;

typedef void (*fwd_fn)(void *y, const void *x, int64_t n, const act_params *p);
typedef void (*bwd_fn)(void *dx, const void *g, const void *f, int64_t n, const act_params *p);

/* y = EXPR(x) over one contiguous row (y may be x). */
#define FWD(NAME, SFX, T, EXPR)                                                         \
    static void NAME##_##SFX(void *y_, const void *x_, int64_t n, const act_params *p) { \
        T *y = y_;                                                                       \
        const T *xs = x_;                                                                \
        const T alpha = (T)p->alpha;                                                     \
        (void)alpha;                                                                     \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                \
            const T x = xs[i];                                                           \
            y[i] = (T)(EXPR);                                                            \
        }                                                                                \
    }

/* dx = EXPR(g, f) over one contiguous row (dx may be g). */
#define BWD(NAME, SFX, T, EXPR)                                                         \
    static void NAME##_##SFX(void *dx_, const void *g_, const void *f_, int64_t n,       \
                             const act_params *p) {                                      \
        T *dx = dx_;                                                                     \
        const T *gs = g_, *fs = f_;                                                      \
        const T alpha = (T)p->alpha;                                                     \
        (void)alpha;                                                                     \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                \
            const T g = gs[i], f = fs[i];                                                \
            dx[i] = (T)(EXPR);                                                           \
        }                                                                                \
    }

#define ROWS(SFX, T)                                                                     \
    FWD(relu, SFX, T, x < 0 ? (T)0 : x)                                                  \
    FWD(relu6, SFX, T, x < 0 ? (T)0 : x > 6 ? (T)6 : x)                                  \
    FWD(elu, SFX, T, x < 0 ? EXPM1_##SFX(x) : x)                                         \
    FWD(selu, SFX, T, x < 0 ? (T)(SELU_SCALE * SELU_ALPHA) * EXPM1_##SFX(x)              \
                            : (T)SELU_SCALE * x)                                         \
    FWD(leaky_relu, SFX, T, x > 0 ? x : alpha * x)                                       \
    FWD(softplus, SFX, T, (x > 0 ? x : (T)0) + LOG1P_##SFX(EXP_##SFX(-FABS_##SFX(x))))   \
    FWD(softsign, SFX, T, x / ((T)1 + FABS_##SFX(x)))                                    \
    FWD(gelu_erf, SFX, T, (T)0.5 * x * ((T)1 + ERF_##SFX(x * (T)INV_SQRT2)))             \
    FWD(gelu_tanh, SFX, T,                                                               \
        (T)0.5 * x * ((T)1 + TANH_##SFX((T)GELU_C * (x + (T)GELU_K * x * x * x))))       \
    BWD(relu_grad, SFX, T, f > 0 ? g : (T)0)                                             \
    BWD(relu6_grad, SFX, T, (f > 0 && f < 6) ? g : (T)0)                                 \
    BWD(elu_grad, SFX, T, f < 0 ? g * (f + (T)1) : g)                                    \
    BWD(selu_grad, SFX, T, f < 0 ? g * (f + (T)(SELU_SCALE * SELU_ALPHA))                \
                                 : g * (T)SELU_SCALE)                                    \
    BWD(leaky_relu_grad, SFX, T, f > 0 ? g : alpha * g)                                  \
    BWD(softplus_grad, SFX, T, g * sigmoid_##SFX(f))                                     \
    BWD(softsign_grad, SFX, T, g / (((T)1 + FABS_##SFX(f)) * ((T)1 + FABS_##SFX(f))))    \
    BWD(gelu_erf_grad, SFX, T,                                                           \
        g * ((T)0.5 * ((T)1 + ERF_##SFX(f * (T)INV_SQRT2)) +                             \
             f * (T)INV_SQRT2PI * EXP_##SFX((T)-0.5 * f * f)))                           \
    BWD(gelu_tanh_grad, SFX, T, gelu_tanh_d_##SFX(f) * g)

/* d/dx of the tanh form of Gelu. */
#define GELU_TANH_D(SFX, T)                                                              \
    static inline T gelu_tanh_d_##SFX(T x) {                                             \
        const T t = TANH_##SFX((T)GELU_C * (x + (T)GELU_K * x * x * x));                 \
        return (T)0.5 * ((T)1 + t) +                                                     \
               (T)0.5 * x * ((T)1 - t * t) * (T)GELU_C * ((T)1 + (T)(3 * GELU_K) * x * x); \
    }
GELU_TANH_D(f32, float)
GELU_TANH_D(f64, double)

ROWS(f32, float)
ROWS(f64, double)

/* ---- Kernels ------------------------------------------------------------------------ */

/* One op's kernels: forward (fwd[]) or gradient (bwd[]), by dtype 0 = f32, 1 = f64. */
typedef struct act_op {
    const char *name;
    int64_t grain;
    fwd_fn fwd[2];
    bwd_fn bwd[2];
    fwd_fn fwd_approx[2];        /* Gelu with approximate = true */
    bwd_fn bwd_approx[2];
} act_op;

/* A kernel's state: its op and attribute values. */
typedef struct act_state {
    const act_op *op;
    act_params params;
} act_state;

typedef struct act_args {
    fwd_fn fwd;
    bwd_fn bwd;
    char *y;
    const char *a, *b;
    size_t esize;
    const act_params *params;
} act_args;

static void act_range(void *arg, int64_t begin, int64_t end) {
    const act_args *p = arg;
    size_t off = (size_t)begin * p->esize;
    if (p->fwd != NULL)
        p->fwd(p->y + off, p->a + off, end - begin, p->params);
    else
        p->bwd(p->y + off, p->a + off, p->b + off, end - begin, p->params);
}

static int dtype_slot(floe_dtype dt) {
    return dt == FLOE_DTYPE_F32 ? 0 : dt == FLOE_DTYPE_F64 ? 1 : -1;
}

static floe_status act_compute(floe_kernel_ctx *kc, void *state) {
    const act_state *s = state;
    const act_op *op = s->op;
    const bool grad = op->bwd[0] != NULL;
    floe_tensor *a, *b = NULL, *y = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &a)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(a);
    int slot = dtype_slot(dt);
    if (slot < 0)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", op->name,
                         floe_dtype_name(dt));
    if (grad) {
        if ((st = ops_nn__input(kc, 1, dt, &b)) != FLOE_OK)
            return st;
        if (!ops_nn__same_shape(a, b)) {
            char sa[128], sb[128];
            ops_nn__format_dims(floe_tensor_shape(a), floe_tensor_ndim(a), sa, sizeof(sa));
            ops_nn__format_dims(floe_tensor_shape(b), floe_tensor_ndim(b), sb, sizeof(sb));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: gradients and features must have one shape: %s vs. %s",
                             op->name, sa, sb);
        }
    }
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(a), floe_tensor_ndim(a), &y);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(a);
    if (n == 0)
        return FLOE_OK;
    act_args args = {NULL, NULL, floe_tensor_data(y), floe_tensor_data(a),
                     b != NULL ? floe_tensor_data(b) : NULL, floe_dtype_size(dt), &s->params};
    if (args.y == NULL || floe_tensor_dtype(y) != dt)
        return floe_fail(FLOE_INTERNAL, "%s: output is not a host %s tensor", op->name,
                         floe_dtype_name(dt));
    if (grad)
        args.bwd = s->params.approximate && op->bwd_approx[slot] ? op->bwd_approx[slot]
                                                                 : op->bwd[slot];
    else
        args.fwd = s->params.approximate && op->fwd_approx[slot] ? op->fwd_approx[slot]
                                                                 : op->fwd[slot];
    ops_nn__parallel(floe_kernel_threadpool(kc), n, op->grain, act_range, &args);
    return FLOE_OK;
}

/* Reads the optional alpha (float) and approximate (bool) attrs of @a into @p. */
static floe_status read_params(const floe_attrs *a, act_params *p) {
    float alpha = 0.2f;
    int approx = 0;
    floe_status st = FLOE_OK;
    if (a != NULL && floe_attrs_type(a, "alpha") == FLOE_ATTR_FLOAT)
        st = floe_attrs_get_float(a, "alpha", &alpha);
    if (st == FLOE_OK && a != NULL && floe_attrs_type(a, "approximate") == FLOE_ATTR_BOOL)
        st = floe_attrs_get_bool(a, "approximate", &approx);
    p->alpha = alpha;
    p->approximate = approx != 0;
    return st;
}

static floe_status act_create(floe_kernel_ctx *kc, void **state, const act_op *op) {
    act_state *s = floe_alloc(sizeof(*s), 0);
    *state = NULL;
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", op->name);
    s->op = op;
    floe_status st = read_params(floe_kernel_attrs(kc), &s->params);
    if (st != FLOE_OK) {
        floe_free(s);
        return st;
    }
    *state = s;
    return FLOE_OK;
}

static void act_destroy(void *state) {
    floe_free(state);
}

#define F2(fn) {fn##_f32, fn##_f64}
#define ACT_OP(ID, NAME, GRAIN, FWD2, BWD2, FWDA, BWDA)                                 \
    static const act_op ID##_op = {NAME, GRAIN, FWD2, BWD2, FWDA, BWDA};                \
    static floe_status ID##_create(floe_kernel_ctx *kc, void **state) {                 \
        return act_create(kc, state, &ID##_op);                                          \
    }

#define NONE {NULL, NULL}
ACT_OP(relu, "Relu", OPS_NN_GRAIN, F2(relu), NONE, NONE, NONE)
ACT_OP(relu6, "Relu6", OPS_NN_GRAIN, F2(relu6), NONE, NONE, NONE)
ACT_OP(elu, "Elu", OPS_NN_GRAIN_HEAVY, F2(elu), NONE, NONE, NONE)
ACT_OP(selu, "Selu", OPS_NN_GRAIN_HEAVY, F2(selu), NONE, NONE, NONE)
ACT_OP(leaky_relu, "LeakyRelu", OPS_NN_GRAIN, F2(leaky_relu), NONE, NONE, NONE)
ACT_OP(gelu, "Gelu", OPS_NN_GRAIN_HEAVY, F2(gelu_erf), NONE, F2(gelu_tanh), NONE)
ACT_OP(softplus, "Softplus", OPS_NN_GRAIN_HEAVY, F2(softplus), NONE, NONE, NONE)
ACT_OP(softsign, "Softsign", OPS_NN_GRAIN, F2(softsign), NONE, NONE, NONE)
ACT_OP(relu_grad, "ReluGrad", OPS_NN_GRAIN, NONE, F2(relu_grad), NONE, NONE)
ACT_OP(relu6_grad, "Relu6Grad", OPS_NN_GRAIN, NONE, F2(relu6_grad), NONE, NONE)
ACT_OP(elu_grad, "EluGrad", OPS_NN_GRAIN, NONE, F2(elu_grad), NONE, NONE)
ACT_OP(selu_grad, "SeluGrad", OPS_NN_GRAIN, NONE, F2(selu_grad), NONE, NONE)
ACT_OP(leaky_relu_grad, "LeakyReluGrad", OPS_NN_GRAIN, NONE, F2(leaky_relu_grad), NONE, NONE)
ACT_OP(gelu_grad, "GeluGrad", OPS_NN_GRAIN_HEAVY, NONE, F2(gelu_erf_grad), NONE,
       F2(gelu_tanh_grad))
ACT_OP(softplus_grad, "SoftplusGrad", OPS_NN_GRAIN_HEAVY, NONE, F2(softplus_grad), NONE, NONE)
ACT_OP(softsign_grad, "SoftsignGrad", OPS_NN_GRAIN, NONE, F2(softsign_grad), NONE, NONE)

/* ---- Gradient functions ------------------------------------------------------------- */

/* Where a gradient op's second input comes from. */
typedef enum grad_source { FROM_INPUT0, FROM_OUTPUT0, FROM_INPUT1 } grad_source;

/* dL/d(input 0) = GRAD_OP(upstream, features or outputs), with the forward node's
 * alpha / approximate attrs passed on when it has them. */
static floe_status act_gradient(floe_grad_ctx *gc, const char *grad_op, grad_source src) {
    floe_output up = floe_grad_upstream(gc, 0), g;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[2] = {up, src == FROM_OUTPUT0 ? floe_grad_output(gc, 0)
                             : floe_grad_input(gc, src == FROM_INPUT1 ? 1 : 0)};
    const floe_attrs *fa = floe_grad_attrs(gc);
    floe_attrs *attrs = NULL;
    floe_status st = FLOE_OK;
    act_params p;

    if (fa != NULL && (floe_attrs_type(fa, "alpha") == FLOE_ATTR_FLOAT ||
                       floe_attrs_type(fa, "approximate") == FLOE_ATTR_BOOL)) {
        if ((st = read_params(fa, &p)) != FLOE_OK || (st = floe_attrs_new(&attrs)) != FLOE_OK)
            return st;
        if (floe_attrs_type(fa, "alpha") == FLOE_ATTR_FLOAT)
            st = floe_attrs_set_float(attrs, "alpha", (float)p.alpha);
        if (st == FLOE_OK && floe_attrs_type(fa, "approximate") == FLOE_ATTR_BOOL)
            st = floe_attrs_set_bool(attrs, "approximate", p.approximate);
    }
    if (st == FLOE_OK)
        st = ops_nn__grad_node(gc, grad_op, in, 2, attrs, &g);
    floe_attrs_free(attrs);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

#define GRAD_FN(ID, GRAD_OP, SRC)                                                        \
    static floe_status ID##_gradient(floe_grad_ctx *gc) {                                \
        return act_gradient(gc, GRAD_OP, SRC);                                           \
    }
GRAD_FN(relu, "ReluGrad", FROM_INPUT0)
GRAD_FN(relu6, "Relu6Grad", FROM_INPUT0)
GRAD_FN(elu, "EluGrad", FROM_OUTPUT0)
GRAD_FN(selu, "SeluGrad", FROM_OUTPUT0)
GRAD_FN(leaky_relu, "LeakyReluGrad", FROM_INPUT0)
GRAD_FN(gelu, "GeluGrad", FROM_INPUT0)
GRAD_FN(softplus, "SoftplusGrad", FROM_INPUT0)
GRAD_FN(softsign, "SoftsignGrad", FROM_INPUT0)

/* Second order, for the piecewise-linear ones (TensorFlow's _ReluGradGrad): ReluGrad
 * is linear in its gradients input, so d/d(gradients) is the same op applied to the
 * upstream gradient; d/d(features) is zero almost everywhere (left unset). */
static floe_status linear_grad_gradient(floe_grad_ctx *gc) {
    return act_gradient(gc, floe_grad_op(gc), FROM_INPUT1);
}

/* ---- Definitions and registration -------------------------------------------------- */

/* The op definitions take TensorFlow's float types; the CPU kernels here compute f32
 * and f64. */
#define TS_FLOAT "T: {bf16, f16, f32, f64}"
static const char *const ks_float[] = {"T: {f32, f64}", NULL};
static const char *const in_features[] = {"features: T", NULL};
static const char *const in_grad_features[] = {"gradients: T", "features: T", NULL};
static const char *const in_grad_outputs[] = {"gradients: T", "outputs: T", NULL};
static const char *const out_activations[] = {"activations: T", NULL};
static const char *const out_backprops[] = {"backprops: T", NULL};
static const char *const attrs_t[] = {TS_FLOAT, NULL};
static const char *const attrs_alpha[] = {"alpha: float = 0.2", TS_FLOAT, NULL};
static const char *const attrs_approx[] = {"approximate: bool = false", TS_FLOAT, NULL};

/* Output 0 has input 0's shape; a gradient op's two inputs must agree where known. */
static floe_status act_shape_fn(floe_shape_ctx *sc) {
    floe_shape a = floe_shape_input(sc, 0);
    if (floe_shape_num_inputs(sc) == 2) {
        floe_shape b = floe_shape_input(sc, 1);
        bool clash = a.ndim >= 0 && b.ndim >= 0 && a.ndim != b.ndim;
        for (int d = 0; !clash && a.ndim >= 0 && b.ndim >= 0 && d < a.ndim; d++)
            clash = a.dims[d] >= 0 && b.dims[d] >= 0 && a.dims[d] != b.dims[d];
        if (clash) {
            char sa[128], sb[128];
            ops_nn__format_dims(a.dims, a.ndim, sa, sizeof(sa));
            ops_nn__format_dims(b.dims, b.ndim, sb, sizeof(sb));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "gradients and features must have one shape: %s vs. %s", sa, sb);
        }
        if (a.ndim < 0)
            a = b;
        for (int d = 0; d < a.ndim && b.ndim == a.ndim; d++)
            if (a.dims[d] < 0)
                a.dims[d] = b.dims[d];
    }
    return floe_shape_set_output(sc, 0, &a);
}

typedef struct act_entry {
    floe_op_def op;
    floe_kernel_def kernel;
    floe_grad_fn grad;
} act_entry;

#define ENTRY(ID, NAME, IN, OUT, ATTRS, GRAD, DOC)                                       \
    {{sizeof(floe_op_def), NAME, IN, OUT, ATTRS, act_shape_fn, 0, DOC},                 \
     {sizeof(floe_kernel_def), NAME, "CPU", ks_float, 0, ID##_create, act_compute,     \
      act_destroy, NULL},                                                                \
     GRAD}

static const act_entry entries[] = {
    ENTRY(relu, "Relu", in_features, out_activations, attrs_t, relu_gradient, "max(features, 0)."),
    ENTRY(relu6, "Relu6", in_features, out_activations, attrs_t, relu6_gradient,
          "min(max(features, 0), 6)."),
    ENTRY(elu, "Elu", in_features, out_activations, attrs_t, elu_gradient,
          "exp(features) - 1 if features < 0, else features."),
    ENTRY(selu, "Selu", in_features, out_activations, attrs_t, selu_gradient,
          "scale * alpha * (exp(features) - 1) if features < 0, else scale * features "
          "(alpha 1.6732632, scale 1.0507010)."),
    ENTRY(leaky_relu, "LeakyRelu", in_features, out_activations, attrs_alpha,
          leaky_relu_gradient, "features if features > 0, else alpha * features."),
    ENTRY(gelu, "Gelu", in_features, out_activations, attrs_approx, gelu_gradient,
          "0.5 x (1 + erf(x / sqrt(2))); with approximate, "
          "0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."),
    ENTRY(softplus, "Softplus", in_features, out_activations, attrs_t, softplus_gradient,
          "log(exp(features) + 1), without overflow."),
    ENTRY(softsign, "Softsign", in_features, out_activations, attrs_t, softsign_gradient,
          "features / (abs(features) + 1)."),
    ENTRY(relu_grad, "ReluGrad", in_grad_features, out_backprops, attrs_t, linear_grad_gradient,
          "gradients * (features > 0)."),
    ENTRY(relu6_grad, "Relu6Grad", in_grad_features, out_backprops, attrs_t,
          linear_grad_gradient,
          "gradients * (0 < features < 6)."),
    ENTRY(elu_grad, "EluGrad", in_grad_outputs, out_backprops, attrs_t, NULL,
          "gradients * (outputs + 1) if outputs < 0, else gradients (outputs of Elu)."),
    ENTRY(selu_grad, "SeluGrad", in_grad_outputs, out_backprops, attrs_t, NULL,
          "gradients * (outputs + scale * alpha) if outputs < 0, else gradients * scale "
          "(outputs of Selu)."),
    ENTRY(leaky_relu_grad, "LeakyReluGrad", in_grad_features, out_backprops, attrs_alpha,
          linear_grad_gradient, "gradients if features > 0, else alpha * gradients."),
    ENTRY(gelu_grad, "GeluGrad", in_grad_features, out_backprops, attrs_approx, NULL,
          "gradients * d Gelu(features) / d features, for the same approximate flag."),
    ENTRY(softplus_grad, "SoftplusGrad", in_grad_features, out_backprops, attrs_t, NULL,
          "gradients * sigmoid(features)."),
    ENTRY(softsign_grad, "SoftsignGrad", in_grad_features, out_backprops, attrs_t, NULL,
          "gradients / (1 + abs(features))^2."),
};

floe_status ops_nn__register_activation(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        floe_status st = floe_register_op(self, &entries[i].op);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &entries[i].kernel);
        if (st == FLOE_OK && entries[i].grad != NULL)
            st = floe_register_gradient(self, entries[i].op.name, entries[i].grad);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
