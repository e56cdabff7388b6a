/*
 * basic.c - the graph's plumbing ops: Const, Placeholder, Identity, StopGradient,
 * PreventGradient and NoOp, with their shape functions and CPU kernels.
 *
 *   Const        outputs its "value" attr itself (a new reference, no copy); the
 *                shape function gives the value's shape and rejects a value whose
 *                dtype is not "dtype".
 *   Placeholder  stands for a value the caller feeds; a fed placeholder never runs,
 *                so its kernel only fails, as TensorFlow's does: INVALID_ARGUMENT
 *                "You must feed a value for placeholder tensor 'x' with dtype f32".
 *                Stateful, so graph passes never merge two placeholders.
 *   Identity     forwards its input tensor (a new reference, no copy); StopGradient
 *                and PreventGradient do the same and differ only for gradients.
 *   NoOp         does nothing: a target that groups control dependencies.
 */
#include "ops_math-impl.h"

#include <stdio.h>

/* ---- Const ------------------------------------------------------------------------ */

/* The "value" attr, checked against "dtype"; *@out lent. */
static floe_status const_value(const floe_attrs *attrs, floe_tensor **out) {
    floe_dtype dtype = FLOE_DTYPE_INVALID;
    floe_tensor *value = NULL;
    floe_status st;

    *out = NULL;
    st = floe_attrs_get_tensor(attrs, "value", &value);
    if (st == FLOE_OK && value == NULL)
        st = floe_fail(FLOE_INVALID_ARGUMENT, "Const: attr 'value' holds no tensor");
    if (st == FLOE_OK)
        st = floe_attrs_get_type(attrs, "dtype", &dtype);
    if (st != FLOE_OK)
        return st;
    if (floe_tensor_dtype(value) != dtype)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Const: attr 'value' has dtype %s but attr 'dtype' is %s",
                         floe_dtype_name(floe_tensor_dtype(value)), floe_dtype_name(dtype));
    *out = value;
    return FLOE_OK;
}

static floe_status const_shape_fn(floe_shape_ctx *sc) {
    floe_tensor *value;
    floe_shape s;
    floe_status st = const_value(floe_shape_attrs(sc), &value);

    if (st != FLOE_OK)
        return st;
    s = ops_math__shape_of(value);
    return floe_shape_set_output(sc, 0, &s);
}

/* The state is a reference to the value, so compute is one call. */
static floe_status const_create(floe_kernel_ctx *kc, void **state) {
    floe_tensor *value;
    floe_status st = const_value(floe_kernel_attrs(kc), &value);

    *state = st == FLOE_OK ? floe_tensor_ref(value) : NULL;
    return st;
}

static floe_status const_compute(floe_kernel_ctx *kc, void *state) {
    if (state == NULL)
        return floe_fail(FLOE_INTERNAL, "Const: kernel was not created");
    return floe_kernel_set_output(kc, 0, state);
}

static void const_destroy(void *state) {
    floe_tensor_unref(state);
}

/* ---- Placeholder -------------------------------------------------------------------- */

static floe_status placeholder_shape_fn(floe_shape_ctx *sc) {
    floe_shape s;
    floe_status st = floe_attrs_get_shape(floe_shape_attrs(sc), "shape", &s);

    if (st != FLOE_OK)
        return st;
    return floe_shape_set_output(sc, 0, &s);
}

static floe_status placeholder_compute(floe_kernel_ctx *kc, void *state) {
    const floe_attrs *attrs = floe_kernel_attrs(kc);
    floe_dtype dtype = FLOE_DTYPE_INVALID;
    floe_shape s;
    char dims[160] = "";

    floe_attrs_get_type(attrs, "dtype", &dtype);
    if (floe_attrs_get_shape(attrs, "shape", &s) == FLOE_OK && s.ndim >= 0) {
        memcpy(dims, " and shape ", 11);
        ops_math__format_dims(s.dims, s.ndim, dims + 11, sizeof(dims) - 11);
    }
    return floe_fail(FLOE_INVALID_ARGUMENT,
                     "You must feed a value for placeholder tensor '%s' with dtype %s%s",
                     floe_kernel_node_name(kc), floe_dtype_name(dtype), dims);
}

/* ---- Identity, StopGradient, PreventGradient, NoOp ---------------------------------- */

static floe_status identity_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0);

    if (x == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input 0 is missing");
    return floe_kernel_set_output(kc, 0, x);
}

static floe_status noop_compute(floe_kernel_ctx *kc, void *state) {
    return FLOE_OK;
}

/* ---- Definitions and registration ---------------------------------------------------- */

static const char *const out_dtype[] = {"output: dtype", NULL};
static const char *const in_t[] = {"input: T", NULL};
static const char *const out_t[] = {"output: T", NULL};
static const char *const attrs_const[] = {"value: tensor", "dtype: type", NULL};
static const char *const attrs_placeholder[] = {"dtype: type", "shape: shape = ?", NULL};
static const char *const attrs_t[] = {"T: type", NULL};
static const char *const attrs_prevent[] = {"T: type", "message: string = \"\"", NULL};

static const floe_op_def basic_ops[] = {
    {sizeof(floe_op_def), "Const", NULL, out_dtype, attrs_const, const_shape_fn,
     FLOE_OP_NO_GRADIENT, "A constant: outputs the tensor in attr 'value'."},
    {sizeof(floe_op_def), "Placeholder", NULL, out_dtype, attrs_placeholder,
     placeholder_shape_fn, FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT,
     "A value fed at run time; running it unfed is an error."},
    {sizeof(floe_op_def), "Identity", in_t, out_t, attrs_t, ops_math__unchanged_shape_fn, 0,
     "Returns its input, without copying."},
    {sizeof(floe_op_def), "StopGradient", in_t, out_t, attrs_t, ops_math__unchanged_shape_fn,
     FLOE_OP_NO_GRADIENT, "Identity whose gradient is zero: gradients do not flow through."},
    {sizeof(floe_op_def), "PreventGradient", in_t, out_t, attrs_prevent,
     ops_math__unchanged_shape_fn, 0,
     "Identity that must not be differentiated ('message' says why)."},
    {sizeof(floe_op_def), "NoOp", NULL, NULL, NULL, NULL, FLOE_OP_NO_GRADIENT,
     "Does nothing; groups control dependencies."},
};

static const floe_kernel_def basic_kernels[] = {
    {sizeof(floe_kernel_def), "Const", "CPU", NULL, 0, const_create, const_compute,
     const_destroy, NULL},
    {sizeof(floe_kernel_def), "Placeholder", "CPU", NULL, 0, NULL, placeholder_compute, NULL,
     NULL},
    {sizeof(floe_kernel_def), "Identity", "CPU", NULL, 0, NULL, identity_compute, NULL, NULL},
    {sizeof(floe_kernel_def), "StopGradient", "CPU", NULL, 0, NULL, identity_compute, NULL,
     NULL},
    {sizeof(floe_kernel_def), "PreventGradient", "CPU", NULL, 0, NULL, identity_compute, NULL,
     NULL},
    {sizeof(floe_kernel_def), "NoOp", "CPU", NULL, 0, NULL, noop_compute, NULL, NULL},
};

floe_status ops_math__register_basic(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(basic_ops) / sizeof(basic_ops[0]); i++) {
        floe_status st = floe_register_op(self, &basic_ops[i]);
        if (st != FLOE_OK)
            return st;
    }
    for (size_t i = 0; i < sizeof(basic_kernels) / sizeof(basic_kernels[0]); i++) {
        floe_status st = floe_register_kernel(self, &basic_kernels[i]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
