/*
 * loss.c - the losses: SoftmaxCrossEntropyWithLogits, SparseSoftmaxCrossEntropyWithLogits,
 * SigmoidCrossEntropyWithLogits and L2Loss, on CPU (f32, f64), with their gradients.
 *
 *   SoftmaxCrossEntropyWithLogits(features [B, C], labels [B, C]) -> loss [B],
 *       backprop [B, C]: loss_b = sum_c labels (logsumexp(x_b) - x_bc) and
 *       backprop = softmax(x) - labels (TensorFlow's op; labels must have the features'
 *       shape here, TensorFlow also broadcasts them).
 *   SparseSoftmaxCrossEntropyWithLogits(features [B, C], labels [B] i32/i64) -> loss [B],
 *       backprop [B, C]: loss_b = logsumexp(x_b) - x_b,label and backprop = softmax(x) -
 *       one_hot(label).  A label outside [0, C) is INVALID_ARGUMENT naming the label and
 *       its position, checked before anything is computed.
 *   SigmoidCrossEntropyWithLogits(labels, logits) -> loss, same shape: TensorFlow's
 *       Python function of that name (a composition there, one fused op here), computed
 *       as max(x, 0) - x z + log(1 + e^-|x|), which never overflows.
 *   L2Loss(t) -> scalar sum(t^2) / 2 (accumulated in double).
 *
 * Gradients: the softmax cross-entropies give features the backprop output scaled by
 * the loss's upstream gradient (ExpandDims + Mul of ops_math); the dense one gives its
 * labels -logsoftmax(features) times the upstream (TensorFlow's gradient).  A gradient
 * flowing into the backprop output itself (second order) is UNIMPLEMENTED.
 * SigmoidCrossEntropyWithLogits' gradient is the fused op
 * SigmoidCrossEntropyWithLogitsGrad(gradients, labels, logits) -> (logits_backprop =
 * g (sigmoid(x) - z), labels_backprop = -g x).  L2Loss' gradient is t * upstream (Mul).
 *
 * Rows are independent and split across the kernel's thread pool when the features
 * hold more than OPS_NN_GRAIN_HEAVY elements.
 *
 * Sections: row kernels; the softmax cross-entropies; sigmoid cross-entropy; L2Loss;
 * gradient functions; definitions and registration.
 */
#include "ops_nn-impl.h"

#include <math.h>

/* ---- Row kernels ------------------------------------------------------------------ */

/*
 * One row of a softmax cross-entropy: @x the logits, @z dense labels (NULL: the sparse
 * @label), @bp the backprop row (may not alias x).  Returns the row's loss.
 */
#define XENT_ROW(SFX, T, EXP, LOG)                                                       \
    static T xent_row_##SFX(void *bp_, const void *x_, const void *z_, int64_t label,    \
                            int64_t n) {                                                 \
        T *bp = bp_;                                                                     \
        const T *x = x_, *z = z_;                                                        \
        const T m = ops_nn__row_max_##SFX(x, n);                                         \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            bp[i] = EXP(x[i] - m);                                                       \
        const T sum = ops_nn__row_sum_##SFX(bp, n);                                      \
        const T lse = LOG(sum), inv = (T)1 / sum;                                        \
        if (z == NULL) {                                                                 \
            OPS_NN_IVDEP                                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                bp[i] *= inv;                                                            \
            bp[label] -= (T)1;                                                           \
            return lse - (x[label] - m);                                                 \
        }                                                                                \
        T loss = 0;                                                                      \
        for (int64_t i = 0; i < n; i++)                                                  \
            loss += z[i] * (lse - (x[i] - m));                                           \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            bp[i] = bp[i] * inv - z[i];                                                  \
        return loss;                                                                     \
    }

XENT_ROW(f32, float, ops_nn__exp_f32, logf)
XENT_ROW(f64, double, exp, log)

/* ---- The softmax cross-entropies ---------------------------------------------------- */

typedef struct xent_args {
    floe_dtype dt;
    int64_t cols;
    char *loss, *bp;
    const char *x, *z;             /* z NULL: sparse */
    const void *labels;            /* sparse: i32 or i64 */
    bool labels64;
} xent_args;

static void xent_range(void *arg, int64_t begin, int64_t end) {
    const xent_args *p = arg;
    const size_t es = floe_dtype_size(p->dt);
    for (int64_t r = begin; r < end; r++) {
        size_t off = (size_t)(r * p->cols) * es;
        int64_t label = 0;
        if (p->z == NULL)
            label = p->labels64 ? ((const int64_t *)p->labels)[r]
                                : ((const int32_t *)p->labels)[r];
        const void *z = p->z != NULL ? p->z + off : NULL;
        if (p->dt == FLOE_DTYPE_F32)
            ((float *)(void *)p->loss)[r] =
                xent_row_f32(p->bp + off, p->x + off, z, label, p->cols);
        else
            ((double *)(void *)p->loss)[r] =
                xent_row_f64(p->bp + off, p->x + off, z, label, p->cols);
    }
}

/* Checks the sparse labels against [0, @classes): the first bad one is named. */
static floe_status check_labels(const floe_tensor *labels, int64_t classes) {
    int64_t n = floe_tensor_num_elements(labels);
    const void *p = floe_tensor_data(labels);
    bool wide = floe_tensor_dtype(labels) == FLOE_DTYPE_I64;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = wide ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
        if (v < 0 || v >= classes)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "SparseSoftmaxCrossEntropyWithLogits: received a label value of "
                             "%lld (labels[%lld]) which is outside the valid range of "
                             "[0, %lld)",
                             (long long)v, (long long)i, (long long)classes);
    }
    return FLOE_OK;
}

static floe_status shape_error(const char *op, const char *what, const floe_tensor *a,
                               const floe_tensor *b) {
    char sa[128], sb[128];
    ops_nn__format_dims(floe_tensor_shape(a), floe_tensor_ndim(a), sa, sizeof(sa));
    ops_nn__format_dims(floe_tensor_shape(b), floe_tensor_ndim(b), sb, sizeof(sb));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: %s: logits %s, labels %s", op, what, sa, sb);
}

static floe_status xent_compute_common(floe_kernel_ctx *kc, bool sparse) {
    const char *name = sparse ? "SparseSoftmaxCrossEntropyWithLogits"
                              : "SoftmaxCrossEntropyWithLogits";
    floe_tensor *x, *z, *loss = NULL, *bp = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &x)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(x);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", name,
                         floe_dtype_name(dt));
    if ((st = ops_nn__input(kc, 1, sparse ? FLOE_DTYPE_INVALID : dt, &z)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(x) != 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: logits must be 2-dimensional, got rank "
                         "%d", name, floe_tensor_ndim(x));
    int64_t rows = floe_tensor_dim(x, 0), cols = floe_tensor_dim(x, 1);
    if (sparse) {
        floe_dtype lt = floe_tensor_dtype(z);
        if (lt != FLOE_DTYPE_I32 && lt != FLOE_DTYPE_I64)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: labels must be int32 or int64, got "
                             "%s", name, floe_dtype_name(lt));
        if (floe_tensor_ndim(z) != 1 || floe_tensor_dim(z, 0) != rows)
            return shape_error(name, "labels must be 1-D with the logits' batch size", x, z);
        if (rows > 0 && cols == 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: must have at least one class, but "
                             "got logits of shape [%lld,0]", name, (long long)rows);
        if ((st = check_labels(z, cols)) != FLOE_OK)
            return st;
    } else if (!ops_nn__same_shape(x, z)) {
        return shape_error(name, "logits and labels must have the same shape", x, z);
    }
    if ((st = floe_kernel_alloc_output(kc, 0, &rows, 1, &loss)) != FLOE_OK ||
        (st = floe_kernel_alloc_output(kc, 1, floe_tensor_shape(x), 2, &bp)) != FLOE_OK)
        return st;
    if (rows == 0)
        return FLOE_OK;
    if (cols == 0) {  /* dense labels over no classes: a loss of 0 */
        memset(floe_tensor_data(loss), 0, floe_tensor_nbytes(loss));
        return FLOE_OK;
    }
    xent_args args = {dt, cols, floe_tensor_data(loss), floe_tensor_data(bp),
                      floe_tensor_data(x), sparse ? NULL : floe_tensor_data(z),
                      sparse ? floe_tensor_data(z) : NULL,
                      floe_tensor_dtype(z) == FLOE_DTYPE_I64};
    if (args.loss == NULL || args.bp == NULL)
        return floe_fail(FLOE_INTERNAL, "%s: outputs are not in host memory", name);
    int64_t grain = OPS_NN_GRAIN_HEAVY / cols;
    ops_nn__parallel(floe_kernel_threadpool(kc), rows, grain < 1 ? 1 : grain, xent_range,
                     &args);
    return FLOE_OK;
}

static floe_status xent_compute(floe_kernel_ctx *kc, void *state) {
    return xent_compute_common(kc, false);
}

static floe_status sparse_xent_compute(floe_kernel_ctx *kc, void *state) {
    return xent_compute_common(kc, true);
}

/* ---- Sigmoid cross-entropy ---------------------------------------------------------- */

#define SIGMOID_ROWS(SFX, T, EXP, LOG1P, FABS)                                           \
    static void sxent_row_##SFX(void *loss_, const void *z_, const void *x_, int64_t n) { \
        T *loss = loss_;                                                                 \
        const T *z = z_, *x = x_;                                                        \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++)                                                  \
            loss[i] = (x[i] > 0 ? x[i] : (T)0) - x[i] * z[i] + LOG1P(EXP(-FABS(x[i])));  \
    }                                                                                    \
    static void sxent_grad_row_##SFX(void *dx_, void *dz_, const void *g_,               \
                                     const void *z_, const void *x_, int64_t n) {        \
        T *dx = dx_, *dz = dz_;                                                          \
        const T *g = g_, *z = z_, *x = x_;                                               \
        OPS_NN_IVDEP                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                \
            const T e = EXP(-FABS(x[i]));                                                \
            const T sig = (x[i] >= 0 ? (T)1 : e) / ((T)1 + e);                           \
            const T gi = g[i], xi = x[i];                                                \
            dx[i] = gi * (sig - z[i]);                                                   \
            dz[i] = -gi * xi;                                                            \
        }                                                                                \
    }

SIGMOID_ROWS(f32, float, ops_nn__exp_f32, log1pf, fabsf)
SIGMOID_ROWS(f64, double, exp, log1p, fabs)

typedef struct sxent_args {
    floe_dtype dt;
    char *out0, *out1;
    const char *g, *z, *x;         /* g NULL: forward */
} sxent_args;

static void sxent_range(void *arg, int64_t begin, int64_t end) {
    const sxent_args *p = arg;
    const size_t off = (size_t)begin * floe_dtype_size(p->dt);
    const int64_t n = end - begin;
    const bool f32 = p->dt == FLOE_DTYPE_F32;
    if (p->g == NULL)
        (f32 ? sxent_row_f32 : sxent_row_f64)(p->out0 + off, p->z + off, p->x + off, n);
    else
        (f32 ? sxent_grad_row_f32 : sxent_grad_row_f64)(p->out0 + off, p->out1 + off,
                                                        p->g + off, p->z + off, p->x + off, n);
}

/* Forward (labels, logits) or gradient (gradients, labels, logits): all one shape. */
static floe_status sxent_compute_common(floe_kernel_ctx *kc, bool grad) {
    const char *name = grad ? "SigmoidCrossEntropyWithLogitsGrad"
                            : "SigmoidCrossEntropyWithLogits";
    floe_tensor *in[3] = {NULL, NULL, NULL}, *o0 = NULL, *o1 = NULL;
    const int nin = grad ? 3 : 2;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &in[0])) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(in[0]);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", name,
                         floe_dtype_name(dt));
    for (int i = 1; i < nin; i++) {
        if ((st = ops_nn__input(kc, i, dt, &in[i])) != FLOE_OK)
            return st;
        if (!ops_nn__same_shape(in[0], in[i]))
            return shape_error(name, "inputs must have one shape", in[nin - 1],
                               in[i == nin - 1 ? 0 : i]);
    }
    const int64_t *shape = floe_tensor_shape(in[0]);
    int nd = floe_tensor_ndim(in[0]);
    /* the loss (forward) or the logits' backprop reuses the logits' buffer */
    if ((st = floe_kernel_forward_or_alloc(kc, nin - 1, 0, shape, nd, &o0)) != FLOE_OK)
        return st;
    if (grad && (st = floe_kernel_forward_or_alloc(kc, 0, 1, shape, nd, &o1)) != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(in[0]);
    if (n == 0)
        return FLOE_OK;
    sxent_args args = {dt, floe_tensor_data(o0), grad ? floe_tensor_data(o1) : NULL,
                       grad ? floe_tensor_data(in[0]) : NULL, floe_tensor_data(in[nin - 2]),
                       floe_tensor_data(in[nin - 1])};
    if (args.out0 == NULL || (grad && args.out1 == NULL))
        return floe_fail(FLOE_INTERNAL, "%s: outputs are not in host memory", name);
    ops_nn__parallel(floe_kernel_threadpool(kc), n, OPS_NN_GRAIN_HEAVY, sxent_range, &args);
    return FLOE_OK;
}

static floe_status sxent_compute(floe_kernel_ctx *kc, void *state) {
    return sxent_compute_common(kc, false);
}

static floe_status sxent_grad_compute(floe_kernel_ctx *kc, void *state) {
    return sxent_compute_common(kc, true);
}

/* ---- L2Loss ------------------------------------------------------------------------- */

#define L2_CHUNK (64 * 1024)

typedef struct l2_args {
    floe_dtype dt;
    const char *t;
    int64_t n;
    double *partial;               /* one per chunk of L2_CHUNK elements */
} l2_args;

static void l2_range(void *arg, int64_t begin, int64_t end) {
    const l2_args *p = arg;
    for (int64_t c = begin; c < end; c++) {
        int64_t lo = c * L2_CHUNK, hi = lo + L2_CHUNK < p->n ? lo + L2_CHUNK : p->n;
        double s = 0;
        if (p->dt == FLOE_DTYPE_F32) {
            const float *t = (const float *)(const void *)p->t;
            for (int64_t i = lo; i < hi; i++)
                s += (double)t[i] * t[i];
        } else {
            const double *t = (const double *)(const void *)p->t;
            for (int64_t i = lo; i < hi; i++)
                s += t[i] * t[i];
        }
        p->partial[c] = s;
    }
}

static floe_status l2_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *t, *out = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &t)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(t);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "L2Loss: no CPU kernel for dtype %s",
                         floe_dtype_name(dt));
    if ((st = floe_kernel_alloc_output(kc, 0, NULL, 0, &out)) != FLOE_OK)
        return st;
    void *o = floe_tensor_data(out);
    if (o == NULL)
        return floe_fail(FLOE_INTERNAL, "L2Loss: output is not in host memory");
    int64_t n = floe_tensor_num_elements(t);
    int64_t chunks = (n + L2_CHUNK - 1) / L2_CHUNK;
    double one = 0, *partial = &one, sum = 0;
    if (chunks > 1 && (partial = floe_alloc((size_t)chunks * sizeof(double), 0)) == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "L2Loss: out of memory");
    l2_args args = {dt, floe_tensor_data(t), n, partial};
    ops_nn__parallel(floe_kernel_threadpool(kc), chunks, 1, l2_range, &args);
    for (int64_t c = 0; c < chunks; c++)
        sum += partial[c];
    if (partial != &one)
        floe_free(partial);
    if (dt == FLOE_DTYPE_F32)
        *(float *)o = (float)(sum / 2);
    else
        *(double *)o = sum / 2;
    return FLOE_OK;
}

/* ---- Gradient functions ------------------------------------------------------------- */

/* backprop (output 1) * ExpandDims(upstream of the loss, -1) into *@out; *@have (out)
 * false when no gradient reaches the loss. */
static floe_status scaled_backprop(floe_grad_ctx *gc, floe_output *expanded,
                                   floe_output *out, bool *have) {
    floe_output up = floe_grad_upstream(gc, 0), axis;
    floe_status st;

    *have = false;
    if (floe_grad_upstream(gc, 1).node != NULL)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: a gradient through its backprop output "
                         "(second order) is not supported", floe_grad_op(gc));
    if (up.node == NULL)
        return FLOE_OK;
    if ((st = floe_grad_const_scalar(gc, FLOE_DTYPE_I32, -1, &axis)) != FLOE_OK)
        return st;
    floe_output in[2] = {up, axis};
    if ((st = ops_nn__grad_node(gc, "ExpandDims", in, 2, NULL, expanded)) != FLOE_OK)
        return st;
    floe_output m[2] = {floe_grad_output(gc, 1), *expanded};
    if ((st = ops_nn__grad_node(gc, "Mul", m, 2, NULL, out)) != FLOE_OK)
        return st;
    *have = true;
    return FLOE_OK;
}

static floe_status sparse_xent_gradient(floe_grad_ctx *gc) {
    floe_output e, g;
    bool have;
    floe_status st = scaled_backprop(gc, &e, &g, &have);
    if (st == FLOE_OK && have)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

/* features: backprop * upstream; labels: -logsoftmax(features) * upstream. */
static floe_status xent_gradient(floe_grad_ctx *gc) {
    floe_output e, g, ls, neg, gl;
    bool have;
    floe_status st = scaled_backprop(gc, &e, &g, &have);
    if (st != FLOE_OK || !have)
        return st;
    if ((st = floe_grad_set_input_grad(gc, 0, g)) != FLOE_OK)
        return st;
    floe_output x = floe_grad_input(gc, 0);
    if ((st = ops_nn__grad_node(gc, "LogSoftmax", &x, 1, NULL, &ls)) != FLOE_OK ||
        (st = ops_nn__grad_node(gc, "Neg", &ls, 1, NULL, &neg)) != FLOE_OK)
        return st;
    floe_output m[2] = {neg, e};
    if ((st = ops_nn__grad_node(gc, "Mul", m, 2, NULL, &gl)) != FLOE_OK)
        return st;
    return floe_grad_set_input_grad(gc, 1, gl);
}

static floe_status sxent_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0);
    floe_node *node = NULL;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[3] = {up, floe_grad_input(gc, 0), floe_grad_input(gc, 1)};
    floe_status st = floe_grad_add_node(gc, "SigmoidCrossEntropyWithLogitsGrad", in, 3, NULL,
                                        &node);
    if (st != FLOE_OK)
        return st;
    floe_output dx = {node, 0, 0}, dz = {node, 1, 0};
    if ((st = floe_grad_set_input_grad(gc, 1, dx)) != FLOE_OK)
        return st;
    return floe_grad_set_input_grad(gc, 0, dz);
}

static floe_status l2_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0), g;
    if (up.node == NULL)
        return FLOE_OK;
    floe_output in[2] = {floe_grad_input(gc, 0), up};
    floe_status st = ops_nn__grad_node(gc, "Mul", in, 2, NULL, &g);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 0, g);
    return st;
}

/* ---- Definitions and registration -------------------------------------------------- */

static floe_status xent_shape_fn(floe_shape_ctx *sc) {
    floe_shape x = floe_shape_input(sc, 0), z = floe_shape_input(sc, 1), loss, bp;
    bool sparse = floe_shape_input_dtype(sc, 1) == FLOE_DTYPE_I32 ||
                  floe_shape_input_dtype(sc, 1) == FLOE_DTYPE_I64;
    memset(&loss, 0, sizeof(loss));
    loss.ndim = 1;
    loss.dims[0] = -1;
    if (x.ndim >= 0 && x.ndim != 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "logits must be 2-dimensional, got rank %d",
                         x.ndim);
    if (sparse && z.ndim >= 0 && z.ndim != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "labels must be 1-dimensional, got rank %d",
                         z.ndim);
    if (!sparse && z.ndim >= 0 && z.ndim != 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "labels must be 2-dimensional, got rank %d",
                         z.ndim);
    if (x.ndim < 0) {
        x.ndim = 2;
        x.dims[0] = x.dims[1] = -1;
    }
    for (int d = 0; d < (sparse ? 1 : 2) && z.ndim > d; d++) {
        if (x.dims[d] >= 0 && z.dims[d] >= 0 && x.dims[d] != z.dims[d])
            return floe_fail(FLOE_INVALID_ARGUMENT, "logits and labels must have the same "
                             "%s: %lld vs. %lld", d == 0 ? "batch size" : "number of classes",
                             (long long)x.dims[d], (long long)z.dims[d]);
        if (x.dims[d] < 0)
            x.dims[d] = z.dims[d];
    }
    loss.dims[0] = x.dims[0];
    bp = x;
    floe_status st = floe_shape_set_output(sc, 0, &loss);
    return st == FLOE_OK ? floe_shape_set_output(sc, 1, &bp) : st;
}

/* Every input of one shape (merged where partly known); output(s) of that shape. */
static floe_status same_shape_fn(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0);
    for (int i = 1; i < floe_shape_num_inputs(sc); i++) {
        floe_shape b = floe_shape_input(sc, i);
        if (b.ndim < 0)
            continue;
        if (s.ndim < 0) {
            s = b;
            continue;
        }
        bool clash = s.ndim != b.ndim;
        for (int d = 0; !clash && d < s.ndim; d++) {
            clash = s.dims[d] >= 0 && b.dims[d] >= 0 && s.dims[d] != b.dims[d];
            if (s.dims[d] < 0)
                s.dims[d] = b.dims[d];
        }
        if (clash) {
            char sa[128], sb[128];
            ops_nn__format_dims(s.dims, s.ndim, sa, sizeof(sa));
            ops_nn__format_dims(b.dims, b.ndim, sb, sizeof(sb));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "logits and labels must have the same shape: %s vs. %s", sa, sb);
        }
    }
    for (int i = 0; i < floe_shape_num_outputs(sc); i++) {
        floe_status st = floe_shape_set_output(sc, i, &s);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status scalar_shape_fn(floe_shape_ctx *sc) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    return floe_shape_set_output(sc, 0, &s);
}

#define TS_FLOAT "T: {bf16, f16, f32, f64}"
static const char *const ks_float[] = {"T: {f32, f64}", NULL};
static const char *const attrs_t[] = {TS_FLOAT, NULL};
static const char *const attrs_sparse[] = {TS_FLOAT, "Tlabels: {i32, i64} = i64", NULL};
static const char *const in_xent[] = {"features: T", "labels: T", NULL};
static const char *const in_sparse[] = {"features: T", "labels: Tlabels", NULL};
static const char *const out_xent[] = {"loss: T", "backprop: T", NULL};
static const char *const in_sxent[] = {"labels: T", "logits: T", NULL};
static const char *const out_sxent[] = {"loss: T", NULL};
static const char *const in_sxent_grad[] = {"gradients: T", "labels: T", "logits: T", NULL};
static const char *const out_sxent_grad[] = {"logits_backprop: T", "labels_backprop: T",
                                             NULL};
static const char *const in_l2[] = {"t: T", NULL};
static const char *const out_l2[] = {"output: T", NULL};

typedef struct loss_entry {
    floe_op_def op;
    floe_kernel_def kernel;
    floe_grad_fn grad;
} loss_entry;

#define ENTRY(NAME, IN, OUT, ATTRS, SHAPE, COMPUTE, GRAD, DOC)                           \
    {{sizeof(floe_op_def), NAME, IN, OUT, ATTRS, SHAPE, 0, DOC},                         \
     {sizeof(floe_kernel_def), NAME, "CPU", ks_float, 0, NULL, COMPUTE, NULL, NULL},     \
     GRAD}

static const loss_entry entries[] = {
    ENTRY("SoftmaxCrossEntropyWithLogits", in_xent, out_xent, attrs_t, xent_shape_fn,
          xent_compute, xent_gradient,
          "Per-example softmax cross-entropy of [batch, classes] logits against a "
          "probability distribution of labels, and its gradient softmax - labels."),
    ENTRY("SparseSoftmaxCrossEntropyWithLogits", in_sparse, out_xent, attrs_sparse,
          xent_shape_fn, sparse_xent_compute, sparse_xent_gradient,
          "Per-example softmax cross-entropy of [batch, classes] logits against class "
          "indices in [0, classes), and its gradient softmax - one_hot(labels)."),
    ENTRY("SigmoidCrossEntropyWithLogits", in_sxent, out_sxent, attrs_t, same_shape_fn,
          sxent_compute, sxent_gradient,
          "Elementwise max(x, 0) - x * z + log(1 + exp(-|x|)) for logits x and labels z "
          "(tf.nn.sigmoid_cross_entropy_with_logits, fused)."),
    ENTRY("SigmoidCrossEntropyWithLogitsGrad", in_sxent_grad, out_sxent_grad, attrs_t,
          same_shape_fn, sxent_grad_compute, NULL,
          "Gradient of SigmoidCrossEntropyWithLogits: gradients * (sigmoid(logits) - "
          "labels) for the logits and -gradients * logits for the labels."),
    ENTRY("L2Loss", in_l2, out_l2, attrs_t, scalar_shape_fn, l2_compute, l2_gradient,
          "sum(t ** 2) / 2, a scalar."),
};

floe_status ops_nn__register_loss(floe_plugin *self) {
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
