/*
 * optimizers.c - TensorFlow's training ops on resource variables, on CPU:
 * ResourceApplyGradientDescent, ResourceApplyMomentum, ResourceApplyAdam,
 * ResourceApplyAdagrad, ResourceApplyRMSProp, ResourceApplyCenteredRMSProp and
 * ResourceApplyFtrl, for f32 and f64, with TensorFlow's input order and semantics.
 *
 * Every op takes its variable and slots as RESOURCE handles, then scalar
 * hyperparameters and the gradient.  One generic kernel (apply_compute) serves them all,
 * driven by a table (apply_spec): it resolves the handles, checks that they name
 * distinct, initialised variables of the op's dtype whose values all have the
 * gradient's shape, reads the scalars, takes every variable's lock exclusively (in
 * address order, so two updates sharing a slot cannot deadlock), makes each value
 * exclusive with value_for_update (copied only if a reader still holds it) and runs
 * ONE fused pass over the parameter and its slots: each element is loaded and stored
 * once per tensor.  The loops are plain restrict-qualified element loops that the
 * compiler vectorises (sqrtf included: the plugin builds with -fno-math-errno);
 * tensors above PAR_GRAIN elements are split over the context's thread pool.
 *
 * Update rules (g the gradient; TensorFlow's training_ops.cc):
 *   GradientDescent  var -= alpha * g
 *   Momentum         accum = accum * momentum + g
 *                    var -= lr * accum, or with nesterov var -= g*lr + accum*momentum*lr
 *   Adam             lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
 *                    m += (g - m) * (1 - beta1);  v += (g*g - v) * (1 - beta2)
 *                    var -= lr_t * m / (sqrt(v) + epsilon), or with nesterov
 *                    var -= lr_t * (g*(1 - beta1) + beta1*m) / (sqrt(v) + epsilon)
 *   Adagrad          accum += g*g (when update_slots); var -= lr * g / sqrt(accum)
 *   RMSProp          ms += (g*g - ms) * (1 - rho)
 *                    mom = mom * momentum + lr * g / sqrt(ms + epsilon); var -= mom
 *   CenteredRMSProp  as RMSProp, with mg += (g - mg) * (1 - rho) and the denominator
 *                    sqrt(ms - mg*mg + epsilon)
 *   Ftrl             n' = accum + g*g
 *                    linear += g - (n'^-p - accum^-p) / lr * var       (p = lr_power)
 *                    quad = n'^-p / lr + 2*l2
 *                    var = |linear| > l1 ? (sign(linear)*l1 - linear) / quad : 0
 *                    accum = n'   (lr_power -0.5 uses sqrt; multiply_linear_by_lr
 *                    scales the linear term by lr as TensorFlow does)
 * The ops have no outputs; they are stateful.
 *
 * Sections: the op table; the fused loops; the generic kernel; definitions and
 * registration.
 */
#include "ops_nn-impl.h"

#include <math.h>
#include <stdio.h>

#define PAR_GRAIN (32 * 1024)
#define MAX_VARS 4
#define MAX_SCALARS 8

/* ---- The op table -------------------------------------------------------------------- */

typedef enum opt_kind {
    OPT_SGD,
    OPT_MOMENTUM,
    OPT_ADAM,
    OPT_ADAGRAD,
    OPT_RMSPROP,
    OPT_CENTERED_RMSPROP,
    OPT_FTRL
} opt_kind;

/* Inputs: @nvars resource handles first, then the scalars and the gradient in op order;
 * @grad is the gradient's input index. */
typedef struct apply_spec {
    const char *op;
    opt_kind kind;
    int nvars;
    int grad;
    int ninputs;
} apply_spec;

static const apply_spec specs[] = {
    {"ResourceApplyGradientDescent", OPT_SGD, 1, 2, 3},        /* var, alpha, delta */
    {"ResourceApplyMomentum", OPT_MOMENTUM, 2, 3, 5},          /* var, accum, lr, grad, momentum */
    {"ResourceApplyAdam", OPT_ADAM, 3, 9, 10},                 /* var, m, v, b1p, b2p, lr, b1, b2, eps, grad */
    {"ResourceApplyAdagrad", OPT_ADAGRAD, 2, 3, 4},            /* var, accum, lr, grad */
    {"ResourceApplyRMSProp", OPT_RMSPROP, 3, 7, 8},            /* var, ms, mom, lr, rho, momentum, eps, grad */
    {"ResourceApplyCenteredRMSProp", OPT_CENTERED_RMSPROP, 4, 8, 9}, /* var, mg, ms, mom, lr, rho, momentum, eps, grad */
    {"ResourceApplyFtrl", OPT_FTRL, 3, 3, 8},                 /* var, accum, linear, grad, lr, l1, l2, lr_power */
};

/* Everything one fused pass needs; scalars in op order, as double. */
typedef struct apply_args {
    opt_kind kind;
    void *p[MAX_VARS];           /* var and slots, in op order */
    const void *g;
    double s[MAX_SCALARS];       /* the op's scalar inputs, in op order */
    int nesterov;
    int update_slots;
    int multiply_linear_by_lr;
} apply_args;

/* ---- The fused loops ------------------------------------------------------------------ */

/* One FTRL element: pn = new_accum^-lr_power, po = accum^-lr_power (T, g..., in scope). */
#define FTRL_BODY(PN, PO, FABS)                                                           \
    do {                                                                                  \
        const __typeof__(gi) pn = (PN), po = (PO);                                        \
        __typeof__(gi) li = lin[i] + gi * lin_scale - (pn - po) / lr * lin_scale * var[i]; \
        __typeof__(gi) quad = pn / lr * lin_scale + two_l2;                               \
        __typeof__(gi) sgn = li > 0 ? 1 : -1;                                             \
        var[i] = FABS(li) > l1_s ? (sgn * l1_s - li) / quad : 0;                          \
        lin[i] = li;                                                                      \
        acc[i] = nac;                                                                     \
    } while (0)

/* The loops are compiled for the baseline ISA and for AVX2 and AVX-512 (picked at load
 * time through an ifunc), since the project builds for the x86-64 baseline. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define OPT_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#  endif
#endif
#ifndef OPT_CLONES
#  define OPT_CLONES
#endif

/* One function per (op, dtype).  The scalars are converted to T once per chunk. */
#define DEFINE_LOOPS(T, SFX, SQRT, POW, FABS)                                             \
    OPT_CLONES static void sgd_##SFX(void *arg, int64_t b, int64_t e) {                              \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0];                                                        \
        const T *restrict g = a->g;                                                       \
        const T alpha = (T)a->s[0];                                                       \
        for (int64_t i = b; i < e; i++)                                                   \
            var[i] -= alpha * g[i];                                                       \
    }                                                                                     \
    OPT_CLONES static void momentum_##SFX(void *arg, int64_t b, int64_t e) {                         \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict acc = a->p[1];                               \
        const T *restrict g = a->g;                                                       \
        const T lr = (T)a->s[0], mu = (T)a->s[1];                                         \
        if (a->nesterov)                                                                  \
            for (int64_t i = b; i < e; i++) {                                             \
                T ac = acc[i] * mu + g[i];                                                \
                acc[i] = ac;                                                              \
                var[i] -= g[i] * lr + ac * mu * lr;                                       \
            }                                                                             \
        else                                                                              \
            for (int64_t i = b; i < e; i++) {                                             \
                T ac = acc[i] * mu + g[i];                                                \
                acc[i] = ac;                                                              \
                var[i] -= lr * ac;                                                        \
            }                                                                             \
    }                                                                                     \
    OPT_CLONES static void adam_##SFX(void *arg, int64_t b, int64_t e) {                             \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict m = a->p[1], *restrict v = a->p[2];          \
        const T *restrict g = a->g;                                                       \
        const double b1p = a->s[0], b2p = a->s[1];                                        \
        const T lr_t = (T)(a->s[2] * sqrt(1.0 - b2p) / (1.0 - b1p));                      \
        const T b1 = (T)a->s[3], one_b1 = (T)(1.0 - a->s[3]), one_b2 = (T)(1.0 - a->s[4]); \
        const T eps = (T)a->s[5];                                                         \
        if (a->nesterov)                                                                  \
            for (int64_t i = b; i < e; i++) {                                             \
                T gi = g[i];                                                              \
                T mi = m[i] + (gi - m[i]) * one_b1;                                       \
                T vi = v[i] + (gi * gi - v[i]) * one_b2;                                  \
                m[i] = mi;                                                                \
                v[i] = vi;                                                                \
                var[i] -= lr_t * (gi * one_b1 + b1 * mi) / (SQRT(vi) + eps);              \
            }                                                                             \
        else                                                                              \
            for (int64_t i = b; i < e; i++) {                                             \
                T gi = g[i];                                                              \
                T mi = m[i] + (gi - m[i]) * one_b1;                                       \
                T vi = v[i] + (gi * gi - v[i]) * one_b2;                                  \
                m[i] = mi;                                                                \
                v[i] = vi;                                                                \
                var[i] -= lr_t * mi / (SQRT(vi) + eps);                                   \
            }                                                                             \
    }                                                                                     \
    OPT_CLONES static void adagrad_##SFX(void *arg, int64_t b, int64_t e) {                          \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict acc = a->p[1];                               \
        const T *restrict g = a->g;                                                       \
        const T lr = (T)a->s[0];                                                          \
        if (a->update_slots)                                                              \
            for (int64_t i = b; i < e; i++) {                                             \
                T ac = acc[i] + g[i] * g[i];                                              \
                acc[i] = ac;                                                              \
                var[i] -= lr * g[i] / SQRT(ac);                                           \
            }                                                                             \
        else                                                                              \
            for (int64_t i = b; i < e; i++)                                               \
                var[i] -= lr * g[i] / SQRT(acc[i]);                                       \
    }                                                                                     \
    OPT_CLONES static void rmsprop_##SFX(void *arg, int64_t b, int64_t e) {                          \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict ms = a->p[1], *restrict mom = a->p[2];       \
        const T *restrict g = a->g;                                                       \
        const T lr = (T)a->s[0], one_rho = (T)(1.0 - a->s[1]), mu = (T)a->s[2];           \
        const T eps = (T)a->s[3];                                                         \
        for (int64_t i = b; i < e; i++) {                                                 \
            T gi = g[i];                                                                  \
            T msi = ms[i] + (gi * gi - ms[i]) * one_rho;                                  \
            T mo = mom[i] * mu + lr * gi / SQRT(msi + eps);                               \
            ms[i] = msi;                                                                  \
            mom[i] = mo;                                                                  \
            var[i] -= mo;                                                                 \
        }                                                                                 \
    }                                                                                     \
    OPT_CLONES static void centered_rmsprop_##SFX(void *arg, int64_t b, int64_t e) {                 \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict mg = a->p[1], *restrict ms = a->p[2];        \
        T *restrict mom = a->p[3];                                                        \
        const T *restrict g = a->g;                                                       \
        const T lr = (T)a->s[0], one_rho = (T)(1.0 - a->s[1]), mu = (T)a->s[2];           \
        const T eps = (T)a->s[3];                                                         \
        for (int64_t i = b; i < e; i++) {                                                 \
            T gi = g[i];                                                                  \
            T msi = ms[i] + (gi * gi - ms[i]) * one_rho;                                  \
            T mgi = mg[i] + (gi - mg[i]) * one_rho;                                       \
            T mo = mom[i] * mu + lr * gi / SQRT(msi - mgi * mgi + eps);                   \
            ms[i] = msi;                                                                  \
            mg[i] = mgi;                                                                  \
            mom[i] = mo;                                                                  \
            var[i] -= mo;                                                                 \
        }                                                                                 \
    }                                                                                     \
    OPT_CLONES static void ftrl_##SFX(void *arg, int64_t b, int64_t e) {                             \
        const apply_args *a = arg;                                                        \
        T *restrict var = a->p[0], *restrict acc = a->p[1], *restrict lin = a->p[2];      \
        const T *restrict g = a->g;                                                       \
        const T lr = (T)a->s[0], l1 = (T)a->s[1], l2 = (T)a->s[2], p = (T)a->s[3];        \
        const T lin_scale = a->multiply_linear_by_lr ? lr : (T)1;                         \
        const T l1_s = l1 * lin_scale, two_l2 = 2 * l2 * lin_scale;                       \
        if (a->s[3] == -0.5)                                                              \
            for (int64_t i = b; i < e; i++) {                                             \
                T gi = g[i], ac = acc[i], nac = ac + gi * gi;                             \
                FTRL_BODY(SQRT(nac), SQRT(ac), FABS);                                     \
            }                                                                             \
        else                                                                              \
            for (int64_t i = b; i < e; i++) {                                             \
                T gi = g[i], ac = acc[i], nac = ac + gi * gi;                             \
                FTRL_BODY(POW(nac, -p), POW(ac, -p), FABS);                               \
            }                                                                             \
    }

DEFINE_LOOPS(float, f32, sqrtf, powf, fabsf)
DEFINE_LOOPS(double, f64, sqrt, pow, fabs)

typedef void (*range_fn)(void *arg, int64_t b, int64_t e);

static range_fn loop_for(opt_kind kind, floe_dtype dt) {
    static const range_fn f32[] = {sgd_f32, momentum_f32, adam_f32, adagrad_f32,
                                   rmsprop_f32, centered_rmsprop_f32, ftrl_f32};
    static const range_fn f64[] = {sgd_f64, momentum_f64, adam_f64, adagrad_f64,
                                   rmsprop_f64, centered_rmsprop_f64, ftrl_f64};
    return dt == FLOE_DTYPE_F32 ? f32[kind] : f64[kind];
}

/* ---- The generic kernel --------------------------------------------------------------- */

static void format_dims(const floe_tensor *t, char *buf, size_t len) {
    size_t n = 0;
    int nd = floe_tensor_ndim(t);

    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int i = 0; i < nd && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "",
                              (long long)floe_tensor_dim(t, i));
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

static bool same_shape(const floe_tensor *a, const floe_tensor *b) {
    if (floe_tensor_ndim(a) != floe_tensor_ndim(b))
        return false;
    for (int i = 0; i < floe_tensor_ndim(a); i++)
        if (floe_tensor_dim(a, i) != floe_tensor_dim(b, i))
            return false;
    return true;
}

static const char *slot_name(opt_kind kind, int i) {
    static const char *const names[][MAX_VARS] = {
        [OPT_SGD] = {"var"},
        [OPT_MOMENTUM] = {"var", "accum"},
        [OPT_ADAM] = {"var", "m", "v"},
        [OPT_ADAGRAD] = {"var", "accum"},
        [OPT_RMSPROP] = {"var", "ms", "mom"},
        [OPT_CENTERED_RMSPROP] = {"var", "mg", "ms", "mom"},
        [OPT_FTRL] = {"var", "accum", "linear"},
    };
    return names[kind][i];
}

/* Reads scalar input @i as a double; rejects anything but one element of @dt. */
static floe_status read_scalar(floe_kernel_ctx *kc, const apply_spec *sp, int i, floe_dtype dt,
                               double *out) {
    floe_tensor *t = floe_kernel_input(kc, i);

    *out = 0;
    if (t == NULL || floe_tensor_dtype(t) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input %d must be a %s scalar", sp->op, i,
                         floe_dtype_name(dt));
    if (floe_tensor_ndim(t) != 0 || floe_tensor_num_elements(t) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input %d must be a scalar, got rank %d",
                         sp->op, i, floe_tensor_ndim(t));
    if (dt == FLOE_DTYPE_F32)
        *out = *(const float *)floe_tensor_data(t);
    else
        *out = *(const double *)floe_tensor_data(t);
    return FLOE_OK;
}

static floe_status apply_compute(floe_kernel_ctx *kc, const apply_spec *sp) {
    const floe_attrs *attrs = floe_kernel_attrs(kc);
    floe_variable *vars[MAX_VARS] = {NULL}, *order[MAX_VARS];
    floe_tensor *vals[MAX_VARS] = {NULL}, *grad;
    floe_dtype dt;
    apply_args a;
    int ns = 0, locked = 0;
    floe_status st = FLOE_OK;

    memset(&a, 0, sizeof(a));
    a.kind = sp->kind;
    if ((st = floe_attrs_get_type(attrs, "T", &dt)) != FLOE_OK)
        return st;
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: unsupported dtype %s", sp->op,
                         floe_dtype_name(dt));
    if (floe_attrs_type(attrs, "use_nesterov") == FLOE_ATTR_BOOL &&
        (st = floe_attrs_get_bool(attrs, "use_nesterov", &a.nesterov)) != FLOE_OK)
        return st;
    if (floe_attrs_type(attrs, "update_slots") == FLOE_ATTR_BOOL &&
        (st = floe_attrs_get_bool(attrs, "update_slots", &a.update_slots)) != FLOE_OK)
        return st;
    if (floe_attrs_type(attrs, "multiply_linear_by_lr") == FLOE_ATTR_BOOL &&
        (st = floe_attrs_get_bool(attrs, "multiply_linear_by_lr", &a.multiply_linear_by_lr))
            != FLOE_OK)
        return st;

    /* Handles -> variables, all distinct and of dtype T. */
    for (int i = 0; i < sp->nvars; i++) {
        floe_tensor *h = floe_kernel_input(kc, i);
        if (h == NULL || floe_tensor_dtype(h) != FLOE_DTYPE_RESOURCE)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input '%s' must be a resource handle",
                             sp->op, slot_name(sp->kind, i));
        if ((st = floe_kernel_variable(kc, h, 1, &vars[i])) != FLOE_OK)
            return st;
        if (floe_variable_dtype(vars[i]) != dt)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: variable '%s' has dtype %s, expected %s",
                             sp->op, slot_name(sp->kind, i),
                             floe_dtype_name(floe_variable_dtype(vars[i])), floe_dtype_name(dt));
        for (int j = 0; j < i; j++)
            if (vars[j] == vars[i])
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "%s: '%s' and '%s' are the same variable", sp->op,
                                 slot_name(sp->kind, j), slot_name(sp->kind, i));
    }

    /* Scalars and the gradient. */
    for (int i = sp->nvars; i < sp->ninputs; i++) {
        if (i == sp->grad)
            continue;
        if ((st = read_scalar(kc, sp, i, dt, &a.s[ns++])) != FLOE_OK)
            return st;
    }
    grad = floe_kernel_input(kc, sp->grad);
    if (grad == NULL || floe_tensor_dtype(grad) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: the gradient must be %s", sp->op,
                         floe_dtype_name(dt));
    if (sp->kind == OPT_ADAM && (a.s[0] == 1.0 || a.s[0] != a.s[0]))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: beta1_power must not be 1", sp->op);
    if ((sp->kind == OPT_FTRL || sp->kind == OPT_ADAGRAD) && !(a.s[0] > 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: lr must be positive, got %g", sp->op,
                         a.s[0]);
    if (sp->kind == OPT_FTRL && (!(a.s[1] >= 0) || !(a.s[2] >= 0) || !(a.s[3] <= 0)))
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: l1 and l2 must be >= 0 and lr_power <= 0 (got %g, %g, %g)",
                         sp->op, a.s[1], a.s[2], a.s[3]);

    /* Lock in address order (insertion sort of at most four pointers). */
    for (int i = 0; i < sp->nvars; i++) {
        int j = i;
        while (j > 0 && (uintptr_t)order[j - 1] > (uintptr_t)vars[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = vars[i];
    }
    for (locked = 0; locked < sp->nvars; locked++)
        floe_variable_lock(order[locked], 1);

    for (int i = 0; i < sp->nvars; i++) {
        if ((st = floe_variable_value_for_update(vars[i], &vals[i])) != FLOE_OK)
            goto unlock;
        if (vals[i] == NULL) {
            st = floe_fail(FLOE_FAILED_PRECONDITION, "%s: variable '%s' is uninitialised",
                           sp->op, slot_name(sp->kind, i));
            goto unlock;
        }
        if (floe_tensor_dtype(vals[i]) != dt || !same_shape(vals[i], grad)) {
            char ws[160], gs[160];
            format_dims(vals[i], ws, sizeof(ws));
            format_dims(grad, gs, sizeof(gs));
            st = floe_fail(FLOE_INVALID_ARGUMENT,
                           "%s: '%s' has shape %s (%s) but the gradient has shape %s (%s)",
                           sp->op, slot_name(sp->kind, i), ws,
                           floe_dtype_name(floe_tensor_dtype(vals[i])), gs,
                           floe_dtype_name(dt));
            goto unlock;
        }
        a.p[i] = floe_tensor_data(vals[i]);
    }
    a.g = floe_tensor_data(grad);
    {
        int64_t n = floe_tensor_num_elements(grad);
        range_fn fn = loop_for(sp->kind, dt);
        if (n > 0) {
            if (n > PAR_GRAIN)
                floe_parallel_for(floe_kernel_threadpool(kc), n, PAR_GRAIN, fn, &a);
            else
                fn(&a, 0, n);
        }
    }

unlock:
    while (locked > 0)
        floe_variable_unlock(order[--locked]);
    return st;
}

/* ---- Definitions and registration ---------------------------------------------------- */

/* Rejects hyperparameters of known rank other than 0.  The gradient's shape is checked
 * against the variables' values by the kernel: the shapes live in the session. */
static floe_status apply_shape(floe_shape_ctx *sc, const apply_spec *sp) {
    for (int i = sp->nvars; i < sp->ninputs && i < floe_shape_num_inputs(sc); i++) {
        floe_shape s = floe_shape_input(sc, i);
        if (i != sp->grad && s.ndim > 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input %d must be a scalar, got rank %d",
                             sp->op, i, (int)s.ndim);
    }
    return FLOE_OK;
}

/* Per-op entry points binding the table row. */
#define OP_ENTRIES(K)                                                                     \
    static floe_status compute_##K(floe_kernel_ctx *kc, void *state) {                    \
        (void)state;                                                                      \
        return apply_compute(kc, &specs[K]);                                      \
    }                                                                                     \
    static floe_status shape_##K(floe_shape_ctx *sc) {                                    \
        return apply_shape(sc, &specs[K]);                                                \
    }
OP_ENTRIES(OPT_SGD)
OP_ENTRIES(OPT_MOMENTUM)
OP_ENTRIES(OPT_ADAM)
OP_ENTRIES(OPT_ADAGRAD)
OP_ENTRIES(OPT_RMSPROP)
OP_ENTRIES(OPT_CENTERED_RMSPROP)
OP_ENTRIES(OPT_FTRL)

static floe_status (*const computes[])(floe_kernel_ctx *, void *) = {
    compute_OPT_SGD, compute_OPT_MOMENTUM, compute_OPT_ADAM, compute_OPT_ADAGRAD,
    compute_OPT_RMSPROP, compute_OPT_CENTERED_RMSPROP, compute_OPT_FTRL};
static floe_status (*const shapes[])(floe_shape_ctx *) = {
    shape_OPT_SGD, shape_OPT_MOMENTUM, shape_OPT_ADAM, shape_OPT_ADAGRAD,
    shape_OPT_RMSPROP, shape_OPT_CENTERED_RMSPROP, shape_OPT_FTRL};

#define COMMON_ATTRS "T: {f32, f64}", "use_locking: bool = false"

static const char *const sgd_in[] = {"var: resource", "alpha: T", "delta: T", NULL};
static const char *const sgd_attrs[] = {COMMON_ATTRS, NULL};
static const char *const mom_in[] = {"var: resource", "accum: resource", "lr: T", "grad: T",
                                     "momentum: T", NULL};
static const char *const mom_attrs[] = {COMMON_ATTRS, "use_nesterov: bool = false", NULL};
static const char *const adam_in[] = {"var: resource", "m: resource", "v: resource",
                                      "beta1_power: T", "beta2_power: T", "lr: T", "beta1: T",
                                      "beta2: T", "epsilon: T", "grad: T", NULL};
static const char *const adam_attrs[] = {COMMON_ATTRS, "use_nesterov: bool = false", NULL};
static const char *const adagrad_in[] = {"var: resource", "accum: resource", "lr: T",
                                         "grad: T", NULL};
static const char *const adagrad_attrs[] = {COMMON_ATTRS, "update_slots: bool = true", NULL};
static const char *const rms_in[] = {"var: resource", "ms: resource", "mom: resource", "lr: T",
                                     "rho: T", "momentum: T", "epsilon: T", "grad: T", NULL};
static const char *const crms_in[] = {"var: resource", "mg: resource", "ms: resource",
                                      "mom: resource", "lr: T", "rho: T", "momentum: T",
                                      "epsilon: T", "grad: T", NULL};
static const char *const rms_attrs[] = {COMMON_ATTRS, NULL};
static const char *const ftrl_in[] = {"var: resource", "accum: resource", "linear: resource",
                                      "grad: T", "lr: T", "l1: T", "l2: T", "lr_power: T", NULL};
static const char *const ftrl_attrs[] = {COMMON_ATTRS, "multiply_linear_by_lr: bool = false",
                                         NULL};

static const char *const *const op_inputs[] = {sgd_in, mom_in, adam_in, adagrad_in,
                                               rms_in, crms_in, ftrl_in};
static const char *const *const op_attrs[] = {sgd_attrs, mom_attrs, adam_attrs, adagrad_attrs,
                                              rms_attrs, rms_attrs, ftrl_attrs};
static const char *const op_docs[] = {
    "var -= alpha * delta, in place on a resource variable.",
    "accum = accum * momentum + grad; var -= lr * accum (Nesterov: var -= grad * lr + "
    "accum * momentum * lr).",
    "Adam in one fused pass: m, v updated; var -= lr * sqrt(1 - beta2_power) / (1 - "
    "beta1_power) * m / (sqrt(v) + epsilon) (Nesterov variant with use_nesterov).",
    "accum += grad^2 (if update_slots); var -= lr * grad / sqrt(accum).",
    "ms += (grad^2 - ms) * (1 - rho); mom = mom * momentum + lr * grad / sqrt(ms + epsilon); "
    "var -= mom.",
    "Centered RMSProp: as RMSProp with mg += (grad - mg) * (1 - rho) and denominator "
    "sqrt(ms - mg^2 + epsilon).",
    "FTRL-proximal (TensorFlow's ApplyFtrl): accum, linear and var updated with l1, l2 and "
    "lr_power.",
};

floe_status ops_nn__register_optimizers(floe_plugin *self) {
    for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
        floe_op_def def;
        floe_kernel_def kd;
        floe_status st;

        memset(&def, 0, sizeof(def));
        def.struct_size = sizeof(def);
        def.name = specs[k].op;
        def.inputs = op_inputs[k];
        def.outputs = NULL;
        def.attrs = op_attrs[k];
        def.shape_fn = shapes[k];
        def.flags = FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT;
        def.doc = op_docs[k];
        if ((st = floe_register_op(self, &def)) != FLOE_OK)
            return st;

        memset(&kd, 0, sizeof(kd));
        kd.struct_size = sizeof(kd);
        kd.op = specs[k].op;
        kd.device_type = "CPU";
        kd.compute = computes[k];
        if ((st = floe_register_kernel(self, &kd)) != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
