/*
 * plugin_abi_anchor.c - gives libabigail something to read for the plugin ABI.
 *
 * The plugin ABI is a header (plugin_api/include/floe/plugin.h), not a library, so
 * scripts/abi-check.sh compiles this file with -g into a throw-away shared object and
 * runs abidw on it: the one exported function below takes a pointer to every struct and
 * enum that crosses the plugin boundary, which puts their full layouts (members, offsets,
 * sizes, function-pointer signatures) into the DWARF that abidw turns into the baseline
 * abi/plugin_api.abi.  A type added to plugin.h should be added here too.
 */
#include <floe/plugin.h>

__attribute__((visibility("default"))) void floe_plugin_abi_anchor(
    floe_plugin_desc *desc, floe_op_def *op, floe_kernel_def *kernel, floe_grad_fn grad,
    floe_device_memory_stats *stats, floe_device_ops *dev_ops, floe_device_desc *dev,
    floe_fs_ops *fs, floe_rpc_handler handler, floe_transport_ops *transport,
    floe_plugin_log_level level, struct floe_host *host, floe_dtype dtype, floe_status status,
    floe_shape *shape, floe_output *output, floe_file_info *file_info, floe_attr_type attr);

void floe_plugin_abi_anchor(floe_plugin_desc *desc, floe_op_def *op, floe_kernel_def *kernel,
                            floe_grad_fn grad, floe_device_memory_stats *stats,
                            floe_device_ops *dev_ops, floe_device_desc *dev, floe_fs_ops *fs,
                            floe_rpc_handler handler, floe_transport_ops *transport,
                            floe_plugin_log_level level, struct floe_host *host,
                            floe_dtype dtype, floe_status status, floe_shape *shape,
                            floe_output *output, floe_file_info *file_info,
                            floe_attr_type attr) {
    (void)desc, (void)op, (void)kernel, (void)grad, (void)stats, (void)dev_ops, (void)dev;
    (void)fs, (void)handler, (void)transport, (void)level, (void)host, (void)dtype;
    (void)status, (void)shape, (void)output, (void)file_info, (void)attr;
}
