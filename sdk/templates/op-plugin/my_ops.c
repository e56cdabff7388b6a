/*
 * my_ops.c - TEMPLATE: an out-of-tree op plugin.  Copy this directory, rename "my_ops"
 * (the file floe_my_ops.so, the entry symbol, FLOE_PLUGIN_DEFINE's first argument) and
 * "MyScaledAdd", and replace the arithmetic.  sdk/guides/op-plugin.md walks through it.
 *
 *   MyScaledAdd(x, y; alpha = 1.0) = x + alpha * y     x, y of the same shape, f32 or f64
 *
 * What a complete op plugin has, each in its section below:
 *   1. the op definition: spec strings (inputs, outputs, attrs), a doc line;
 *   2. a shape function: output shapes from input shapes, rejecting bad graphs early;
 *   3. kernels, one per device type (here CPU): validate at run time (shapes fed to
 *      placeholders reach the kernel unchecked), never crash on input, errors through
 *      floe_fail(), zero-size tensors handled;
 *   4. a gradient function: builds the backward nodes with existing ops (here Mul);
 *   5. registration in init().
 */
#include <floe/plugin.h>

#include <string.h>

/* ---- 1. Op definition ---------------------------------------------------------------- */

static const char *const msa_inputs[] = {"x: T", "y: T", NULL};
static const char *const msa_outputs[] = {"z: T", NULL};
static const char *const msa_attrs[] = {"T: {f32, f64}", "alpha: float = 1.0", NULL};

/* ---- 2. Shape function --------------------------------------------------------------- */

static floe_status msa_shape(floe_shape_ctx *sc) {
    floe_shape x = floe_shape_input(sc, 0), y = floe_shape_input(sc, 1);
    if (x.ndim >= 0 && y.ndim >= 0) {
        int same = x.ndim == y.ndim;
        for (int i = 0; same && i < x.ndim; i++)
            same = x.dims[i] < 0 || y.dims[i] < 0 || x.dims[i] == y.dims[i];
        if (!same)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: x and y must have the same shape",
                             floe_shape_node_name(sc));
    }
    return floe_shape_set_output(sc, 0, x.ndim >= 0 ? &x : &y);
}

/* ---- 3. Kernels -------------------------------------------------------------------- */

typedef struct msa_job {
    const void *x, *y;
    void *z;
    float alpha;
    floe_dtype dtype;
} msa_job;

static void msa_range(void *arg, int64_t begin, int64_t end) {
    const msa_job *j = arg;
    if (j->dtype == FLOE_DTYPE_F32) {
        const float *x = j->x, *y = j->y;
        float *z = j->z;
        for (int64_t i = begin; i < end; i++)
            z[i] = x[i] + j->alpha * y[i];
    } else {
        const double *x = j->x, *y = j->y;
        double *z = j->z;
        for (int64_t i = begin; i < end; i++)
            z[i] = x[i] + (double)j->alpha * y[i];
    }
}

static floe_status msa_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *y = floe_kernel_input(kc, 1), *z = NULL;
    float alpha = 1.0f;
    floe_status st;

    (void)state;
    if (floe_tensor_ndim(x) != floe_tensor_ndim(y))
        return floe_fail(FLOE_INVALID_ARGUMENT, "x has rank %d, y rank %d: they must match",
                         floe_tensor_ndim(x), floe_tensor_ndim(y));
    for (int i = 0; i < floe_tensor_ndim(x); i++)
        if (floe_tensor_dim(x, i) != floe_tensor_dim(y, i))
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "x and y differ in dimension %d (%lld vs %lld)", i,
                             (long long)floe_tensor_dim(x, i), (long long)floe_tensor_dim(y, i));
    if ((st = floe_attrs_get_float(floe_kernel_attrs(kc), "alpha", &alpha)) != FLOE_OK)
        return st;
    /* Reuse x's buffer when nobody else holds it (in-place elementwise op). */
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &z);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(x);
    if (n == 0)
        return FLOE_OK; /* zero-size: nothing to compute, the output exists */
    msa_job j = {floe_tensor_data(x), floe_tensor_data(y), floe_tensor_data(z), alpha,
                 floe_tensor_dtype(x)};
    floe_parallel_for(floe_kernel_threadpool(kc), n, 16384, msa_range, &j);
    return FLOE_OK;
}

/* ---- 4. Gradient ------------------------------------------------------------------- */

/* dz/dx = 1, dz/dy = alpha: dx = g, dy = alpha * g. */
static floe_status msa_gradient(floe_grad_ctx *gc) {
    floe_output g = floe_grad_upstream(gc, 0), a, dy_in[2];
    floe_node *mul = NULL;
    float alpha = 1.0f;
    floe_status st;

    if (g.node == NULL)
        return FLOE_OK; /* no gradient flows into z */
    if ((st = floe_attrs_get_float(floe_grad_attrs(gc), "alpha", &alpha)) != FLOE_OK)
        return st;
    if ((st = floe_grad_set_input_grad(gc, 0, g)) != FLOE_OK)
        return st;
    if ((st = floe_grad_const_scalar(gc, floe_grad_edge_dtype(gc, g), alpha, &a)) != FLOE_OK)
        return st;
    dy_in[0] = g;
    dy_in[1] = a;
    if ((st = floe_grad_add_node(gc, "Mul", dy_in, 2, NULL, &mul)) != FLOE_OK)
        return st;
    floe_output dy = {mul, 0, 0};
    return floe_grad_set_input_grad(gc, 1, dy);
}

/* ---- 5. Registration --------------------------------------------------------------- */

static const floe_op_def msa_op = {
    .struct_size = sizeof(floe_op_def),
    .name = "MyScaledAdd",
    .inputs = msa_inputs,
    .outputs = msa_outputs,
    .attrs = msa_attrs,
    .shape_fn = msa_shape,
    .doc = "x + alpha * y, x and y of the same shape (SDK op-plugin template).",
};

static const floe_kernel_def msa_cpu_kernel = {
    .struct_size = sizeof(floe_kernel_def),
    .op = "MyScaledAdd",
    .device_type = "CPU",
    .compute = msa_compute,
};

static floe_status my_ops_init(floe_plugin *self, void **user) {
    floe_status st;
    *user = NULL;
    /* Registrations are held back until init() returns FLOE_OK: return the first error. */
    if ((st = floe_register_op(self, &msa_op)) != FLOE_OK ||
        (st = floe_register_kernel(self, &msa_cpu_kernel)) != FLOE_OK)
        return st;
    return floe_register_gradient(self, "MyScaledAdd", msa_gradient);
}

FLOE_PLUGIN_DEFINE(my_ops, "0.1.0", "Your Name", "Apache-2.0",
                   "MyScaledAdd (SDK op-plugin template)", my_ops_init, NULL)
