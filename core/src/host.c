/*
 * host.c - the floe_host table handed to every plugin.
 *
 * One constant table per process: every member points at the core function that
 * implements it (allocation in alloc.c, errors in error.c, registration in registry.c,
 * tensors in tensor.c, attrs in attrs.c, shape and kernel contexts in shape.c and
 * executor.c, variables in variable.c, threads in threadpool.c, gradient contexts in
 * gradients.c).  The few members that
 * only exist for plugins, logging and notes on the plugin record and the device extras
 * lookup, are written here.  The designated initialisers name every member, so a
 * member added to struct floe_host without an entry here stays NULL and the fixture
 * plugin's check of the table (tests/fixtures) fails.
 */
#include "core-impl.h"

#include <stdio.h>
#include <string.h>

/* Serialises note updates; notes are normally set from score() or init(). */
static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;

static floe_log_level map_level(floe_plugin_log_level level) {
    switch (level) {
    case FLOE_PLUGIN_LOG_DEBUG:
        return FLOE_LOG_DEBUG;
    case FLOE_PLUGIN_LOG_INFO:
        return FLOE_LOG_INFO;
    case FLOE_PLUGIN_LOG_WARNING:
        return FLOE_LOG_WARNING;
    default:
        return FLOE_LOG_ERROR;
    }
}

static void host_log(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...)
    FLOE_PRINTF(3, 4);
static void host_log(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;

    if (fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    floe__log(self != NULL ? self->ctx : NULL, map_level(level), "plugin %s: %s",
              self != NULL && self->name != NULL ? self->name : "?", msg);
}

static void host_set_note(floe_plugin *self, const char *fmt, ...) FLOE_PRINTF(2, 3);
static void host_set_note(floe_plugin *self, const char *fmt, ...) {
    char msg[512], *copy;
    va_list ap;

    if (self == NULL || fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    copy = floe__strdup(msg); /* on failure the previous note stays */
    if (copy == NULL)
        return;
    pthread_mutex_lock(&note_lock);
    floe__free(self->note);
    self->note = copy;
    pthread_mutex_unlock(&note_lock);
}

static void *host_device_proc_address(floe_device *dev, const char *symbol) {
    if (dev == NULL || symbol == NULL || dev->ops.proc_address == NULL)
        return NULL;
    return dev->ops.proc_address(dev->state, symbol);
}

const floe_host floe__host_table = {
    .abi_major = FLOE_PLUGIN_ABI_MAJOR,
    .abi_minor = FLOE_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(floe_host),

    .alloc = floe__alloc_aligned,
    .free = floe__free_aligned,
    .fail = floe__fail,
    .vfail = floe__vfail,
    .log = host_log,
    .set_note = host_set_note,

    .register_op = floe__host_register_op,
    .register_kernel = floe__host_register_kernel,
    .register_gradient = floe__host_register_gradient,
    .register_device = floe__host_register_device,
    .register_filesystem = floe__host_register_filesystem,
    .register_transport = floe__host_register_transport,

    .dtype_size = floe_dtype_size,
    .dtype_name = floe_dtype_name,
    .tensor_new = floe_tensor_new,
    .tensor_ref = floe_tensor_ref,
    .tensor_unref = floe_tensor_unref,
    .tensor_dtype = floe_tensor_dtype,
    .tensor_ndim = floe_tensor_ndim,
    .tensor_dim = floe_tensor_dim,
    .tensor_shape = floe_tensor_shape,
    .tensor_num_elements = floe_tensor_num_elements,
    .tensor_nbytes = floe_tensor_nbytes,
    .tensor_data = floe_tensor_data,
    .tensor_device = floe_tensor_device,
    .tensor_set_string = floe_tensor_set_string,
    .tensor_get_string = floe_tensor_get_string,
    .tensor_is_exclusive = floe__tensor_is_exclusive,

    .attrs_type = floe_attrs_type,
    .attrs_get_int = floe_attrs_get_int,
    .attrs_get_float = floe_attrs_get_float,
    .attrs_get_bool = floe_attrs_get_bool,
    .attrs_get_string = floe_attrs_get_string,
    .attrs_get_type = floe_attrs_get_type,
    .attrs_get_shape = floe_attrs_get_shape,
    .attrs_get_tensor = floe_attrs_get_tensor,
    .attrs_get_int_list = floe_attrs_get_int_list,
    .attrs_get_float_list = floe_attrs_get_float_list,
    .attrs_get_type_list = floe_attrs_get_type_list,

    .shape_attrs = floe__shape_attrs,
    .shape_node_name = floe__shape_node_name,
    .shape_num_inputs = floe__shape_num_inputs,
    .shape_num_outputs = floe__shape_num_outputs,
    .shape_input_dtype = floe__shape_input_dtype,
    .shape_input = floe__shape_input,
    .shape_input_value = floe__shape_input_value,
    .shape_set_output = floe__shape_set_output,

    .kernel_attrs = floe__kernel_attrs,
    .kernel_node_name = floe__kernel_node_name,
    .kernel_num_inputs = floe__kernel_num_inputs,
    .kernel_num_outputs = floe__kernel_num_outputs,
    .kernel_input_dtype = floe__kernel_input_dtype,
    .kernel_output_dtype = floe__kernel_output_dtype,
    .kernel_input_static_shape = floe__kernel_input_static_shape,
    .kernel_input = floe__kernel_input,
    .kernel_alloc_output = floe__kernel_alloc_output,
    .kernel_forward_or_alloc = floe__kernel_forward_or_alloc,
    .kernel_set_output = floe__kernel_set_output,
    .kernel_device = floe__kernel_device,
    .kernel_threadpool = floe__kernel_threadpool,

    .device_proc_address = host_device_proc_address,
    .parallel_for = floe__threadpool_parallel_for,
    .threadpool_size = floe__threadpool_size,

    .kernel_resource_handle = floe__kernel_resource_handle,
    .kernel_variable = floe__kernel_variable,
    .variable_lock = floe__variable_lock,
    .variable_unlock = floe__variable_unlock,
    .variable_value = floe__variable_value,
    .variable_assign = floe__variable_assign,
    .variable_value_for_update = floe__variable_value_for_update,
    .variable_dtype = floe__variable_dtype,
    .tensor_reshape = floe_tensor_reshape,
    .tensor_device_data = floe__tensor_device_data,

    .grad_attrs = floe__grad_attrs,
    .grad_node_name = floe__grad_node_name,
    .grad_op = floe__grad_op,
    .grad_num_inputs = floe__grad_num_inputs,
    .grad_num_outputs = floe__grad_num_outputs,
    .grad_input = floe__grad_input,
    .grad_output = floe__grad_output,
    .grad_upstream = floe__grad_upstream,
    .grad_edge_dtype = floe__grad_edge_dtype,
    .grad_edge_shape = floe__grad_edge_shape,
    .grad_set_input_grad = floe__grad_set_input_grad,
    .grad_add_node = floe__grad_add_node,
    .grad_const_scalar = floe__grad_const_scalar,

    .attrs_new = floe_attrs_new,
    .attrs_free = floe_attrs_free,
    .attrs_set_int = floe_attrs_set_int,
    .attrs_set_float = floe_attrs_set_float,
    .attrs_set_bool = floe_attrs_set_bool,
    .attrs_set_type = floe_attrs_set_type,
    .attrs_set_string = floe_attrs_set_string,
    .attrs_set_shape = floe_attrs_set_shape,
    .attrs_set_int_list = floe_attrs_set_int_list,
    .attrs_set_tensor = floe_attrs_set_tensor,
};
