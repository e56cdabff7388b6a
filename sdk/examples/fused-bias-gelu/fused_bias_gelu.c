/*
 * fused_bias_gelu.c - a researcher's fused op, built out of tree against an installed
 * Floe (`pkg-config floe-plugin`), loaded through FLOE_PLUGIN_PATH.
 *
 *   FusedBiasGelu(x, bias) = gelu(x + bias), bias broadcast along x's last axis,
 *   gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2))   (the exact form)
 *
 * One pass over memory instead of the three of BiasAdd, then Gelu, then the gradient's
 * re-reads.  Its gradient is a second fused op,
 *
 *   FusedBiasGeluGrad(dy, x, bias) -> (dx, dbias),
 *   dx = dy * gelu'(x + bias),  gelu'(z) = Phi(z) + z phi(z),
 *   dbias = sum of dx over every axis but the last,
 *
 * registered as FusedBiasGelu's gradient function (it adds one FusedBiasGeluGrad node).
 * Kernels: CPU, f32 and f64, rows split over Floe's thread pool.
 *
 * Sections: shape functions; kernels; gradient; registration.
 */
#include <floe/plugin.h>

#include <math.h>
#include <string.h>

/* ---- Shape functions -------------------------------------------------------------- */

/* x of rank >= 1, bias of rank 1 with x's last extent (when both are known). */
static floe_status check_x_bias(floe_shape_ctx *sc, int xi, int bi) {
    floe_shape x = floe_shape_input(sc, xi), b = floe_shape_input(sc, bi);
    if (x.ndim == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x must have rank >= 1, got a scalar",
                         floe_shape_node_name(sc));
    if (b.ndim >= 0 && b.ndim != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: bias must have rank 1, got rank %d",
                         floe_shape_node_name(sc), b.ndim);
    if (x.ndim > 0 && b.ndim == 1 && x.dims[x.ndim - 1] >= 0 && b.dims[0] >= 0 &&
        x.dims[x.ndim - 1] != b.dims[0])
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: bias has %lld elements, x's last dimension is %lld",
                         floe_shape_node_name(sc), (long long)b.dims[0],
                         (long long)x.dims[x.ndim - 1]);
    return FLOE_OK;
}

static floe_status fbg_shape(floe_shape_ctx *sc) {
    floe_status st = check_x_bias(sc, 0, 1);
    if (st != FLOE_OK)
        return st;
    floe_shape x = floe_shape_input(sc, 0);
    return floe_shape_set_output(sc, 0, &x);
}

static floe_status fbg_grad_shape(floe_shape_ctx *sc) {
    floe_status st = check_x_bias(sc, 1, 2);
    if (st != FLOE_OK)
        return st;
    floe_shape x = floe_shape_input(sc, 1), b = floe_shape_input(sc, 2);
    if ((st = floe_shape_set_output(sc, 0, &x)) != FLOE_OK)
        return st;
    return floe_shape_set_output(sc, 1, &b);
}

/* ---- Kernels --------------------------------------------------------------------------- */

/* Validates x (rank >= 1) and bias (rank 1, x's last extent) at run time: shapes fed to
 * placeholders of unknown shape reach the kernel unchecked. */
static floe_status check_run(floe_kernel_ctx *kc, const floe_tensor *x, const floe_tensor *b,
                             int64_t *rows, int64_t *cols) {
    if (floe_tensor_ndim(x) < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "x must have rank >= 1, got a scalar");
    if (floe_tensor_ndim(b) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "bias must have rank 1, got rank %d",
                         floe_tensor_ndim(b));
    *cols = floe_tensor_dim(x, floe_tensor_ndim(x) - 1);
    if (floe_tensor_dim(b, 0) != *cols)
        return floe_fail(FLOE_INVALID_ARGUMENT, "bias has %lld elements, x's last dimension is %lld",
                         (long long)floe_tensor_dim(b, 0), (long long)*cols);
    if (floe_tensor_dtype(b) != floe_tensor_dtype(x))
        return floe_fail(FLOE_INVALID_ARGUMENT, "bias is %s, x is %s",
                         floe_dtype_name(floe_tensor_dtype(b)), floe_dtype_name(floe_tensor_dtype(x)));
    *rows = *cols == 0 ? 0 : floe_tensor_num_elements(x) / *cols;
    (void)kc;
    return FLOE_OK;
}

typedef struct fbg_job {
    const void *x, *b, *dy;
    void *y;
    int64_t cols;
    floe_dtype dtype;
} fbg_job;

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

static void fwd_rows(void *arg, int64_t begin, int64_t end) {
    const fbg_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r * j->cols;
        if (j->dtype == FLOE_DTYPE_F32) {
            const float *x = (const float *)j->x + o, *b = j->b;
            float *y = (float *)j->y + o;
            for (int64_t c = 0; c < j->cols; c++) {
                float z = x[c] + b[c];
                y[c] = 0.5f * z * (1.0f + erff(z * (float)INV_SQRT2));
            }
        } else {
            const double *x = (const double *)j->x + o, *b = j->b;
            double *y = (double *)j->y + o;
            for (int64_t c = 0; c < j->cols; c++) {
                double z = x[c] + b[c];
                y[c] = 0.5 * z * (1.0 + erf(z * INV_SQRT2));
            }
        }
    }
}

static floe_status fbg_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *b = floe_kernel_input(kc, 1), *y = NULL;
    int64_t rows, cols;
    floe_status st;

    (void)state;
    if ((st = check_run(kc, x, b, &rows, &cols)) != FLOE_OK)
        return st;
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    if (rows == 0)
        return FLOE_OK;
    fbg_job j = {floe_tensor_data(x), floe_tensor_data(b), NULL, floe_tensor_data(y), cols,
                 floe_tensor_dtype(x)};
    floe_parallel_for(floe_kernel_threadpool(kc), rows, 4096 / (cols + 1) + 1, fwd_rows, &j);
    return FLOE_OK;
}

/* dx row by row (in parallel); dbias is summed afterwards, in row order, so results do
 * not depend on the number of threads. */
static void bwd_rows(void *arg, int64_t begin, int64_t end) {
    const fbg_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r * j->cols;
        if (j->dtype == FLOE_DTYPE_F32) {
            const float *x = (const float *)j->x + o, *b = j->b, *dy = (const float *)j->dy + o;
            float *dx = (float *)j->y + o;
            for (int64_t c = 0; c < j->cols; c++) {
                float z = x[c] + b[c];
                float cdf = 0.5f * (1.0f + erff(z * (float)INV_SQRT2));
                float pdf = (float)INV_SQRT_2PI * expf(-0.5f * z * z);
                dx[c] = dy[c] * (cdf + z * pdf);
            }
        } else {
            const double *x = (const double *)j->x + o, *b = j->b, *dy = (const double *)j->dy + o;
            double *dx = (double *)j->y + o;
            for (int64_t c = 0; c < j->cols; c++) {
                double z = x[c] + b[c];
                double cdf = 0.5 * (1.0 + erf(z * INV_SQRT2));
                double pdf = INV_SQRT_2PI * exp(-0.5 * z * z);
                dx[c] = dy[c] * (cdf + z * pdf);
            }
        }
    }
}

static floe_status fbg_grad_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *dy = floe_kernel_input(kc, 0), *x = floe_kernel_input(kc, 1);
    floe_tensor *b = floe_kernel_input(kc, 2), *dx = NULL, *db = NULL;
    int64_t rows, cols;
    floe_status st;

    (void)state;
    if ((st = check_run(kc, x, b, &rows, &cols)) != FLOE_OK)
        return st;
    if (floe_tensor_ndim(dy) != floe_tensor_ndim(x) ||
        floe_tensor_num_elements(dy) != floe_tensor_num_elements(x) ||
        floe_tensor_dtype(dy) != floe_tensor_dtype(x))
        return floe_fail(FLOE_INVALID_ARGUMENT, "dy must have x's dtype and shape");
    for (int i = 0; i < floe_tensor_ndim(x); i++)
        if (floe_tensor_dim(dy, i) != floe_tensor_dim(x, i))
            return floe_fail(FLOE_INVALID_ARGUMENT, "dy must have x's shape (dimension %d: "
                             "%lld vs %lld)", i, (long long)floe_tensor_dim(dy, i),
                             (long long)floe_tensor_dim(x, i));
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &dx)) !=
            FLOE_OK ||
        (st = floe_kernel_alloc_output(kc, 1, floe_tensor_shape(b), 1, &db)) != FLOE_OK)
        return st;
    size_t es = floe_dtype_size(floe_tensor_dtype(x));
    if (cols > 0)
        memset(floe_tensor_data(db), 0, (size_t)cols * es);
    if (rows == 0)
        return FLOE_OK;
    fbg_job j = {floe_tensor_data(x), floe_tensor_data(b), floe_tensor_data(dy),
                 floe_tensor_data(dx), cols, floe_tensor_dtype(x)};
    floe_parallel_for(floe_kernel_threadpool(kc), rows, 4096 / (cols + 1) + 1, bwd_rows, &j);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            if (j.dtype == FLOE_DTYPE_F32)
                ((float *)floe_tensor_data(db))[c] += ((const float *)j.y)[r * cols + c];
            else
                ((double *)floe_tensor_data(db))[c] += ((const double *)j.y)[r * cols + c];
        }
    return FLOE_OK;
}

/* ---- Gradient ---------------------------------------------------------------------- */

/* d/dx and d/dbias of FusedBiasGelu: one FusedBiasGeluGrad node. */
static floe_status fbg_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0);
    floe_output in[3];
    floe_node *node = NULL;
    floe_status st;

    if (up.node == NULL)
        return FLOE_OK; /* no gradient reaches y: none for x and bias either */
    in[0] = up;
    in[1] = floe_grad_input(gc, 0);
    in[2] = floe_grad_input(gc, 1);
    if ((st = floe_grad_add_node(gc, "FusedBiasGeluGrad", in, 3, NULL, &node)) != FLOE_OK)
        return st;
    floe_output dx = {node, 0, 0}, db = {node, 1, 0};
    if ((st = floe_grad_set_input_grad(gc, 0, dx)) != FLOE_OK)
        return st;
    return floe_grad_set_input_grad(gc, 1, db);
}

/* ---- Registration ------------------------------------------------------------------ */

static const char *const fbg_inputs[] = {"x: T", "bias: T", NULL};
static const char *const fbg_outputs[] = {"y: T", NULL};
static const char *const fbg_attrs[] = {"T: {f32, f64}", NULL};
static const char *const fbg_grad_inputs[] = {"dy: T", "x: T", "bias: T", NULL};
static const char *const fbg_grad_outputs[] = {"dx: T", "dbias: T", NULL};

static const floe_op_def fbg_op = {
    .struct_size = sizeof(floe_op_def),
    .name = "FusedBiasGelu",
    .inputs = fbg_inputs,
    .outputs = fbg_outputs,
    .attrs = fbg_attrs,
    .shape_fn = fbg_shape,
    .doc = "gelu(x + bias), bias along x's last axis; exact GELU (erf).",
};

static const floe_op_def fbg_grad_op = {
    .struct_size = sizeof(floe_op_def),
    .name = "FusedBiasGeluGrad",
    .inputs = fbg_grad_inputs,
    .outputs = fbg_grad_outputs,
    .attrs = fbg_attrs,
    .shape_fn = fbg_grad_shape,
    .flags = FLOE_OP_NO_GRADIENT,
    .doc = "The gradients of FusedBiasGelu: dx = dy * gelu'(x + bias), dbias = dx summed "
           "over all axes but the last.",
};

static const floe_kernel_def fbg_kernel = {
    .struct_size = sizeof(floe_kernel_def),
    .op = "FusedBiasGelu",
    .device_type = "CPU",
    .compute = fbg_compute,
};

static const floe_kernel_def fbg_grad_kernel = {
    .struct_size = sizeof(floe_kernel_def),
    .op = "FusedBiasGeluGrad",
    .device_type = "CPU",
    .compute = fbg_grad_compute,
};

static floe_status fused_init(floe_plugin *self, void **user) {
    floe_status st;
    *user = NULL;
    if ((st = floe_register_op(self, &fbg_op)) != FLOE_OK ||
        (st = floe_register_op(self, &fbg_grad_op)) != FLOE_OK ||
        (st = floe_register_kernel(self, &fbg_kernel)) != FLOE_OK ||
        (st = floe_register_kernel(self, &fbg_grad_kernel)) != FLOE_OK)
        return st;
    return floe_register_gradient(self, "FusedBiasGelu", fbg_gradient);
}

FLOE_PLUGIN_DEFINE(fused_bias_gelu, "1.0.0", "Example Lab", "Apache-2.0",
                   "FusedBiasGelu: gelu(x + bias) and its gradient in one pass (SDK example)",
                   fused_init, NULL)
