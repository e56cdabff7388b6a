/*
 * softmax.c - Softmax and LogSoftmax over the last axis, and their fused gradient ops,
 * on CPU (f32, f64).
 *
 *   Softmax(logits)       softmax[..., j] = e^(x_j - m) / sum_k e^(x_k - m)
 *   LogSoftmax(logits)    logsoftmax[..., j] = x_j - m - log(sum_k e^(x_k - m))
 * with m the row's maximum, so nothing overflows (TensorFlow's semantics; logits of rank
 * >= 1, the last axis is the class axis; a NaN in a row makes the whole row NaN).
 *
 * TensorFlow differentiates these with compositions of Mul, Sum and Sub; here each
 * gradient is one fused pass (not TensorFlow raw ops, named after them):
 *   SoftmaxGrad(gradients, softmax)       = (g - sum_k g_k y_k) * y
 *   LogSoftmaxGrad(gradients, logsoftmax) = g - e^y * sum_k g_k
 *
 * Rows are independent: tensors of more than OPS_NN_GRAIN_HEAVY elements are split by
 * rows across the kernel's thread pool, smaller ones run inline.  Outputs reuse the
 * first input's buffer when it is not shared.
 *
 * Sections: row kernels; compute; gradient functions; definitions and registration.
 */
#include "ops_nn-impl.h"

#include <math.h>

/* ---- Row kernels ------------------------------------------------------------------ */

/* One row of Softmax (log = false) or LogSoftmax (log = true); y may be x. */
#define SOFTMAX_ROW(SFX, T, EXP, LOG)                                                    \
    static void softmax_row_##SFX(T *y, const T *x, int64_t n, bool log_form) {          \
        const T m = ops_nn__row_max_##SFX(x, n);                                         \
        if (log_form) {  /* y may be x: nothing is written before the last loop */      \
            T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                           \
            int64_t k = 0;                                                               \
            for (; k + 8 <= n; k += 8)                                                   \
                for (int j = 0; j < 8; j++)                                              \
                    s[j] += EXP(x[k + j] - m);                                           \
            for (; k < n; k++)                                                           \
                s[0] += EXP(x[k] - m);                                                   \
            const T lse = LOG(((s[0] + s[1]) + (s[2] + s[3])) +                          \
                              ((s[4] + s[5]) + (s[6] + s[7])));                          \
            OPS_NN_IVDEP                                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                y[i] = (x[i] - m) - lse;                                                 \
            return;                                                                      \
        }                                                                                \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            y[i] = EXP(x[i] - m);                                                        \
        const T inv = (T)1 / ops_nn__row_sum_##SFX(y, n);                                \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            y[i] *= inv;                                                                 \
    }                                                                                    \
    /* One row of SoftmaxGrad / LogSoftmaxGrad; dx may be g. */                          \
    static void softmax_grad_row_##SFX(T *dx, const T *g, const T *y, int64_t n,         \
                                       bool log_form) {                                  \
        if (log_form) {                                                                  \
            const T s = ops_nn__row_sum_##SFX(g, n);                                     \
            OPS_NN_IVDEP                                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                dx[i] = g[i] - EXP(y[i]) * s;                                            \
            return;                                                                      \
        }                                                                                \
        const T s = ops_nn__row_dot_##SFX(g, y, n);                                      \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            dx[i] = (g[i] - s) * y[i];                                                   \
    }

SOFTMAX_ROW(f32, float, ops_nn__exp_f32, logf)
SOFTMAX_ROW(f64, double, exp, log)

/* ---- Compute ------------------------------------------------------------------------ */

/* What a kernel's state points at. */
typedef struct softmax_op {
    const char *name;
    bool log_form;
    bool grad;
} softmax_op;

typedef struct softmax_args {
    const softmax_op *op;
    floe_dtype dt;
    char *y;
    const char *a, *b;
    int64_t cols;
} softmax_args;

static void softmax_range(void *arg, int64_t begin, int64_t end) {
    const softmax_args *p = arg;
    const size_t es = floe_dtype_size(p->dt);
    for (int64_t r = begin; r < end; r++) {
        size_t off = (size_t)(r * p->cols) * es;
        void *y = p->y + off;
        const void *a = p->a + off, *b = p->b != NULL ? p->b + off : NULL;
        if (p->dt == FLOE_DTYPE_F32) {
            if (p->op->grad)
                softmax_grad_row_f32(y, a, b, p->cols, p->op->log_form);
            else
                softmax_row_f32(y, a, p->cols, p->op->log_form);
        } else {
            if (p->op->grad)
                softmax_grad_row_f64(y, a, b, p->cols, p->op->log_form);
            else
                softmax_row_f64(y, a, p->cols, p->op->log_form);
        }
    }
}

static floe_status softmax_compute(floe_kernel_ctx *kc, void *state) {
    const softmax_op *op = state;
    floe_tensor *a, *b = NULL, *y = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &a)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(a);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", op->name,
                         floe_dtype_name(dt));
    int nd = floe_tensor_ndim(a);
    if (nd < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: logits must have >= 1 dimension, got a "
                         "scalar", op->name);
    if (op->grad) {
        if ((st = ops_nn__input(kc, 1, dt, &b)) != FLOE_OK)
            return st;
        if (!ops_nn__same_shape(a, b)) {
            char sa[128], sb[128];
            ops_nn__format_dims(floe_tensor_shape(a), nd, sa, sizeof(sa));
            ops_nn__format_dims(floe_tensor_shape(b), floe_tensor_ndim(b), sb, sizeof(sb));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: gradients and outputs must have one shape: %s vs. %s",
                             op->name, sa, sb);
        }
    }
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(a), nd, &y);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(a), cols = floe_tensor_dim(a, nd - 1);
    if (n == 0)
        return FLOE_OK;
    softmax_args args = {op, dt, floe_tensor_data(y), floe_tensor_data(a),
                         b != NULL ? floe_tensor_data(b) : NULL, cols};
    if (args.y == NULL || floe_tensor_dtype(y) != dt)
        return floe_fail(FLOE_INTERNAL, "%s: output is not a host %s tensor", op->name,
                         floe_dtype_name(dt));
    int64_t rows = n / cols;
    int64_t grain = OPS_NN_GRAIN_HEAVY / cols;
    ops_nn__parallel(floe_kernel_threadpool(kc), rows, grain < 1 ? 1 : grain, softmax_range,
                     &args);
    return FLOE_OK;
}

static const softmax_op softmax_ops[] = {
    {"Softmax", false, false},
    {"LogSoftmax", true, false},
    {"SoftmaxGrad", false, true},
    {"LogSoftmaxGrad", true, true},
};

#define CREATE(ID, I)                                                                    \
    static floe_status ID##_create(floe_kernel_ctx *kc, void **state) {                  \
        *state = (void *)&softmax_ops[I];                                                \
        return FLOE_OK;                                                                  \
    }
CREATE(softmax, 0)
CREATE(log_softmax, 1)
CREATE(softmax_grad, 2)
CREATE(log_softmax_grad, 3)

/* ---- Gradient functions ------------------------------------------------------------- */

static floe_status softmax_gradient_common(floe_grad_ctx *gc, const char *grad_op) {
    floe_output up = floe_grad_upstream(gc, 0), g;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[2] = {up, floe_grad_output(gc, 0)};
    floe_status st = ops_nn__grad_node(gc, grad_op, in, 2, NULL, &g);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

static floe_status softmax_gradient(floe_grad_ctx *gc) {
    return softmax_gradient_common(gc, "SoftmaxGrad");
}

static floe_status log_softmax_gradient(floe_grad_ctx *gc) {
    return softmax_gradient_common(gc, "LogSoftmaxGrad");
}

/* ---- Definitions and registration -------------------------------------------------- */

/* Output 0 has input 0's shape, of rank >= 1; a gradient op's inputs agree where known. */
static floe_status softmax_shape_fn(floe_shape_ctx *sc) {
    floe_shape a = floe_shape_input(sc, 0);
    if (a.ndim == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "logits must have >= 1 dimension, got a "
                         "scalar");
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
                             "gradients and outputs must have one shape: %s vs. %s", sa, sb);
        }
        if (a.ndim < 0)
            a = b;
    }
    return floe_shape_set_output(sc, 0, &a);
}

#define TS_FLOAT "T: {bf16, f16, f32, f64}"
static const char *const ks_float[] = {"T: {f32, f64}", NULL};
static const char *const attrs_t[] = {TS_FLOAT, NULL};
static const char *const in_logits[] = {"logits: T", NULL};
static const char *const in_grad_softmax[] = {"gradients: T", "softmax: T", NULL};
static const char *const in_grad_logsoftmax[] = {"gradients: T", "logsoftmax: T", NULL};
static const char *const out_softmax[] = {"softmax: T", NULL};
static const char *const out_logsoftmax[] = {"logsoftmax: T", NULL};
static const char *const out_backprops[] = {"backprops: T", NULL};

typedef struct softmax_entry {
    floe_op_def op;
    floe_kernel_def kernel;
    floe_grad_fn grad;
} softmax_entry;

#define ENTRY(ID, NAME, IN, OUT, GRAD, DOC)                                              \
    {{sizeof(floe_op_def), NAME, IN, OUT, attrs_t, softmax_shape_fn, 0, DOC},           \
     {sizeof(floe_kernel_def), NAME, "CPU", ks_float, 0, ID##_create, softmax_compute, \
      NULL, NULL},                                                                       \
     GRAD}

static const softmax_entry entries[] = {
    ENTRY(softmax, "Softmax", in_logits, out_softmax, softmax_gradient,
          "exp(logits) / sum(exp(logits)) over the last axis, computed stably."),
    ENTRY(log_softmax, "LogSoftmax", in_logits, out_logsoftmax, log_softmax_gradient,
          "logits - log(sum(exp(logits))) over the last axis, computed stably."),
    ENTRY(softmax_grad, "SoftmaxGrad", in_grad_softmax, out_backprops, NULL,
          "Gradient of Softmax: (gradients - sum(gradients * softmax, -1)) * softmax."),
    ENTRY(log_softmax_grad, "LogSoftmaxGrad", in_grad_logsoftmax, out_backprops, NULL,
          "Gradient of LogSoftmax: gradients - exp(logsoftmax) * sum(gradients, -1)."),
};

floe_status ops_nn__register_softmax(floe_plugin *self) {
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
