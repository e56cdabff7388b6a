/*
 * variable.c - resource variables: VarHandleOp, ReadVariableOp, AssignVariableOp,
 * AssignAddVariableOp and AssignSubVariableOp on CPU.
 *
 * The core keeps the variables (one record per container and name in each session,
 * alive across runs); these kernels go through the host's variable members and hold
 * the variable's lock for as long as they touch its value:
 *
 *   VarHandleOp      a scalar RESOURCE handle naming (container, shared_name); an
 *                    empty shared_name means the node's name, as in TensorFlow
 *   ReadVariableOp   shared lock; outputs the current value itself (a new reference:
 *                    updates copy a value someone still holds, so it stays as read)
 *   AssignVariableOp exclusive lock; the variable takes a reference to the value.  With
 *                    validate_shape, the value must keep the variable's current shape
 *   AssignAdd/Sub    exclusive lock; value_for_update (copied first if shared), then
 *                    += / -= in place; shapes must be equal
 *
 * Errors name the variable: reading or updating one that was never assigned is
 * FAILED_PRECONDITION "variable 'v' (container '') is uninitialised".  The host table
 * has no member giving a variable's name, but value_for_update() of an uninitialised
 * variable fails with exactly that message, so uninitialised_error() asks it (under
 * the exclusive lock it requires).  Kernels look variables up with create = 1, so a
 * variable whose handle exists always reaches that check.
 *
 * All five ops are stateful.  Sections: helpers; the kernels; definitions and
 * registration.
 */
#include "ops_math-impl.h"

#include <stdio.h>

#define VAR_UPDATE_GRAIN (64 * 1024)

/* ---- Helpers ------------------------------------------------------------------------- */

/* The variable input 0 names. */
static floe_status input_variable(floe_kernel_ctx *kc, floe_variable **out) {
    floe_tensor *h;
    floe_status st = ops_math__kernel_input(kc, 0, FLOE_DTYPE_RESOURCE, &h);

    *out = NULL;
    if (st != FLOE_OK)
        return st;
    return floe_kernel_variable(kc, h, 1, out);
}

/* The error for an uninitialised variable, with its name (see the file comment).  If
 * another run assigned it meanwhile, *@value (out) is that value, lent until @v is
 * unlocked, and the result FLOE_OK.  Leaves @v locked exclusively on FLOE_OK only. */
static floe_status uninitialised_error(floe_variable *v, floe_tensor **value) {
    floe_status st;

    floe_variable_lock(v, 1);
    st = floe_variable_value_for_update(v, value);
    if (st == FLOE_OK && *value == NULL)
        st = floe_fail(FLOE_FAILED_PRECONDITION, "variable is uninitialised");
    if (st != FLOE_OK) {
        *value = NULL;
        floe_variable_unlock(v);
    }
    return st;
}

static floe_status dtype_mismatch(const char *what, floe_dtype var, floe_dtype given) {
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: the variable has dtype %s, got %s", what,
                     floe_dtype_name(var), floe_dtype_name(given));
}

static floe_status shape_mismatch(const char *what, const floe_tensor *var,
                                  const floe_tensor *value) {
    char a[160], b[160];

    ops_math__format_dims(floe_tensor_shape(var), floe_tensor_ndim(var), a, sizeof(a));
    ops_math__format_dims(floe_tensor_shape(value), floe_tensor_ndim(value), b, sizeof(b));
    return floe_fail(FLOE_INVALID_ARGUMENT,
                     "%s: the variable has shape %s but the value has shape %s", what, a, b);
}

static bool same_shape(const floe_tensor *a, const floe_tensor *b) {
    if (floe_tensor_ndim(a) != floe_tensor_ndim(b))
        return false;
    for (int i = 0; i < floe_tensor_ndim(a); i++)
        if (floe_tensor_dim(a, i) != floe_tensor_dim(b, i))
            return false;
    return true;
}

/* ---- VarHandleOp ----------------------------------------------------------------------- */

/* The attrs, read once; the strings are lent by the node, which outlives the kernel. */
typedef struct var_handle_state {
    const char *container, *name;
    floe_dtype dtype;
    floe_shape shape;
} var_handle_state;

static floe_status var_handle_create(floe_kernel_ctx *kc, void **state) {
    const floe_attrs *attrs = floe_kernel_attrs(kc);
    var_handle_state *s;
    size_t len = 0, clen = 0;
    floe_status st;

    *state = NULL;
    s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "VarHandleOp: out of memory");
    if ((st = floe_attrs_get_string(attrs, "container", &s->container, &clen)) != FLOE_OK ||
        (st = floe_attrs_get_string(attrs, "shared_name", &s->name, &len)) != FLOE_OK ||
        (st = floe_attrs_get_type(attrs, "dtype", &s->dtype)) != FLOE_OK ||
        (st = floe_attrs_get_shape(attrs, "shape", &s->shape)) != FLOE_OK) {
        floe_free(s);
        return st;
    }
    if (len == 0)
        s->name = floe_kernel_node_name(kc);
    *state = s;
    return FLOE_OK;
}

static void var_handle_destroy(void *state) {
    floe_free(state);
}

static floe_status var_handle_compute(floe_kernel_ctx *kc, void *state) {
    const var_handle_state *s = state;
    floe_tensor *h = NULL;
    floe_status st;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "VarHandleOp: kernel was not created");
    st = floe_kernel_resource_handle(kc, s->container, s->name, s->dtype, &s->shape, &h);
    if (st != FLOE_OK)
        return st;
    st = floe_kernel_set_output(kc, 0, h);
    floe_tensor_unref(h);
    return st;
}

static floe_status scalar_shape_fn(floe_shape_ctx *sc) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    return floe_shape_set_output(sc, 0, &s);
}

/* ---- ReadVariableOp --------------------------------------------------------------------- */

static floe_status read_compute(floe_kernel_ctx *kc, void *state) {
    floe_dtype want = floe_kernel_output_dtype(kc, 0);
    floe_variable *v;
    floe_tensor *value;
    floe_status st;

    if ((st = input_variable(kc, &v)) != FLOE_OK)
        return st;
    if (floe_variable_dtype(v) != want)
        return dtype_mismatch("ReadVariableOp", floe_variable_dtype(v), want);
    floe_variable_lock(v, 0);
    value = floe_variable_value(v);
    if (value == NULL) {
        floe_variable_unlock(v);
        if ((st = uninitialised_error(v, &value)) != FLOE_OK)
            return st;
    }
    if (floe_tensor_dtype(value) != want)
        st = dtype_mismatch("ReadVariableOp", floe_tensor_dtype(value), want);
    else
        st = floe_kernel_set_output(kc, 0, value);
    floe_variable_unlock(v);
    return st;
}

/* ---- AssignVariableOp ------------------------------------------------------------------- */

static floe_status assign_compute(floe_kernel_ctx *kc, void *state) {
    floe_variable *v;
    floe_tensor *value, *old;
    int validate = 0;
    floe_status st;

    if ((st = input_variable(kc, &v)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &value)) != FLOE_OK ||
        (st = floe_attrs_get_bool(floe_kernel_attrs(kc), "validate_shape", &validate)) != FLOE_OK)
        return st;
    if (floe_variable_dtype(v) != floe_tensor_dtype(value))
        return dtype_mismatch("AssignVariableOp", floe_variable_dtype(v),
                              floe_tensor_dtype(value));
    floe_variable_lock(v, 1);
    old = floe_variable_value(v);
    if (validate && old != NULL && !same_shape(old, value))
        st = shape_mismatch("AssignVariableOp (validate_shape)", old, value);
    else
        st = floe_variable_assign(v, value);
    floe_variable_unlock(v);
    return st;
}

/* ---- AssignAddVariableOp, AssignSubVariableOp ---------------------------------------- */

typedef struct update_args {
    void *dst;
    const void *src;
    floe_dtype dtype;
    int sub;
} update_args;

/* dst[i] +=/-= src[i]; integers wrap (computed unsigned). */
#define UPDATE_LOOP(T, U)                                                                \
    do {                                                                                 \
        T *d = (T *)a->dst;                                                              \
        const T *s = (const T *)a->src;                                                  \
        if (a->sub)                                                                      \
            for (int64_t i = begin; i < end; i++)                                        \
                d[i] = (T)((U)d[i] - (U)s[i]);                                           \
        else                                                                             \
            for (int64_t i = begin; i < end; i++)                                        \
                d[i] = (T)((U)d[i] + (U)s[i]);                                           \
    } while (0)

static void update_range(void *arg, int64_t begin, int64_t end) {
    const update_args *a = arg;
    switch (a->dtype) {
    case FLOE_DTYPE_F32:
        UPDATE_LOOP(float, float);
        break;
    case FLOE_DTYPE_F64:
        UPDATE_LOOP(double, double);
        break;
    case FLOE_DTYPE_I32:
        UPDATE_LOOP(int32_t, uint32_t);
        break;
    case FLOE_DTYPE_I64:
        UPDATE_LOOP(int64_t, uint64_t);
        break;
    default:
        break;
    }
}

static floe_status update_compute(floe_kernel_ctx *kc, int sub) {
    const char *op = sub ? "AssignSubVariableOp" : "AssignAddVariableOp";
    floe_variable *v;
    floe_tensor *delta, *var = NULL;
    floe_dtype dt;
    update_args a;
    floe_status st;

    if ((st = input_variable(kc, &v)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &delta)) != FLOE_OK)
        return st;
    dt = floe_tensor_dtype(delta);
    if (floe_variable_dtype(v) != dt)
        return dtype_mismatch(op, floe_variable_dtype(v), dt);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64 && dt != FLOE_DTYPE_I32 &&
        dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for %s", op,
                         floe_dtype_name(dt));
    if ((st = uninitialised_error(v, &var)) != FLOE_OK)
        return st;
    if (floe_tensor_dtype(var) != dt)
        st = dtype_mismatch(op, floe_tensor_dtype(var), dt);
    else if (!same_shape(var, delta))
        st = shape_mismatch(op, var, delta);
    else if (floe_tensor_num_elements(var) > 0 && floe_tensor_data(var) == NULL)
        st = floe_fail(FLOE_INTERNAL, "%s: the variable is not in host memory", op);
    if (st == FLOE_OK) {
        a.dst = floe_tensor_data(var);
        a.src = floe_tensor_data(delta);
        a.dtype = dt;
        a.sub = sub;
        ops_math__parallel(floe_kernel_threadpool(kc), floe_tensor_num_elements(var),
                           VAR_UPDATE_GRAIN, update_range, &a);
    }
    floe_variable_unlock(v);
    return st;
}

static floe_status assign_add_compute(floe_kernel_ctx *kc, void *state) {
    return update_compute(kc, 0);
}

static floe_status assign_sub_compute(floe_kernel_ctx *kc, void *state) {
    return update_compute(kc, 1);
}

/* ---- Definitions and registration --------------------------------------------------------- */

static const char *const handle_outputs[] = {"resource: resource", NULL};
static const char *const handle_attrs[] = {"container: string = \"\"",
                                           "shared_name: string = \"\"", "dtype: type",
                                           "shape: shape",
                                           "allowed_devices: list(string) = []", NULL};
static const char *const resource_input[] = {"resource: resource", NULL};
static const char *const read_outputs[] = {"value: dtype", NULL};
static const char *const dtype_attr[] = {"dtype: type", NULL};
static const char *const assign_inputs[] = {"resource: resource", "value: dtype", NULL};
static const char *const assign_attrs[] = {"dtype: type", "validate_shape: bool = false",
                                           NULL};
static const char *const update_attrs[] = {"dtype: {f32, f64, i32, i64}", NULL};

#define VAR_OP(NAME, IN, OUT, ATTRS, SHAPE, DOC)                                         \
    {sizeof(floe_op_def), NAME, IN, OUT, ATTRS, SHAPE, FLOE_OP_STATEFUL, DOC}
#define VAR_KERNEL(NAME, CREATE, COMPUTE, DESTROY)                                       \
    {sizeof(floe_kernel_def), NAME, "CPU", NULL, 0, CREATE, COMPUTE, DESTROY, NULL}

static const floe_op_def variable_ops[] = {
    VAR_OP("VarHandleOp", NULL, handle_outputs, handle_attrs, scalar_shape_fn,
           "A handle to the resource variable (container, shared_name); an empty "
           "shared_name means the node's name."),
    VAR_OP("ReadVariableOp", resource_input, read_outputs, dtype_attr, NULL,
           "The variable's current value; FAILED_PRECONDITION when uninitialised."),
    VAR_OP("AssignVariableOp", assign_inputs, NULL, assign_attrs, NULL,
           "Makes value the variable's value (same dtype; with validate_shape, same shape)."),
    VAR_OP("AssignAddVariableOp", assign_inputs, NULL, update_attrs, NULL,
           "Adds value to the variable in place (same dtype and shape)."),
    VAR_OP("AssignSubVariableOp", assign_inputs, NULL, update_attrs, NULL,
           "Subtracts value from the variable in place (same dtype and shape)."),
};

static const floe_kernel_def variable_kernels[] = {
    VAR_KERNEL("VarHandleOp", var_handle_create, var_handle_compute, var_handle_destroy),
    VAR_KERNEL("ReadVariableOp", NULL, read_compute, NULL),
    VAR_KERNEL("AssignVariableOp", NULL, assign_compute, NULL),
    VAR_KERNEL("AssignAddVariableOp", NULL, assign_add_compute, NULL),
    VAR_KERNEL("AssignSubVariableOp", NULL, assign_sub_compute, NULL),
};

floe_status ops_math__register_variable(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(variable_ops) / sizeof(variable_ops[0]); i++) {
        floe_status st = floe_register_op(self, &variable_ops[i]);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &variable_kernels[i]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
