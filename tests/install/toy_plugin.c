/*
 * toy_plugin.c - the smallest out-of-tree plugin: built by the install test against an
 * installed Floe with `pkg-config --cflags floe-plugin` only (no libfloe to link), installed
 * into the plugin directory, and loaded by the consumer program (consumer.c).
 *
 * It registers one op, ToyScale (y = scale * x over f32, attr scale defaulting to 2), with
 * a shape function and a CPU kernel, using the natural names of floe/plugin.h.
 */
#include <floe/plugin.h>

static const char *const toy_scale_inputs[] = {"x: f32", NULL};
static const char *const toy_scale_outputs[] = {"y: f32", NULL};
static const char *const toy_scale_attrs[] = {"scale: float = 2.0", NULL};

/* y has x's shape. */
static floe_status toy_scale_shape(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0);
    return floe_shape_set_output(sc, 0, &s);
}

static floe_status toy_scale_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0);
    floe_tensor *y = NULL;
    float scale = 2.0f;
    floe_status st;

    (void)state;
    st = floe_attrs_get_float(floe_kernel_attrs(kc), "scale", &scale);
    if (st != FLOE_OK)
        return st;
    st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    const float *xs = floe_tensor_data(x);
    float *ys = floe_tensor_data(y);
    int64_t n = floe_tensor_num_elements(x);
    for (int64_t i = 0; i < n; i++)
        ys[i] = scale * xs[i];
    return FLOE_OK;
}

static const floe_op_def toy_scale_op = {
    .struct_size = sizeof(floe_op_def),
    .name = "ToyScale",
    .inputs = toy_scale_inputs,
    .outputs = toy_scale_outputs,
    .attrs = toy_scale_attrs,
    .shape_fn = toy_scale_shape,
    .flags = 0,
    .doc = "y = scale * x (an out-of-tree test op)",
};

static const floe_kernel_def toy_scale_kernel = {
    .struct_size = sizeof(floe_kernel_def),
    .op = "ToyScale",
    .device_type = "CPU",
    .constraints = NULL,
    .priority = 0,
    .create = NULL,
    .compute = toy_scale_compute,
    .destroy = NULL,
    .host_memory = NULL,
};

static floe_status toy_init(floe_plugin *self, void **user) {
    floe_status st;

    *user = NULL;
    st = floe_register_op(self, &toy_scale_op);
    if (st != FLOE_OK)
        return st;
    return floe_register_kernel(self, &toy_scale_kernel);
}

FLOE_PLUGIN_DEFINE(toy, "0.0.1", "Floe install test", "Apache-2.0",
                   "an out-of-tree plugin built against the installed SDK", toy_init, NULL)
