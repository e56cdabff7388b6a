/*
 * test_abi.c - pins the layout of every struct that crosses the library or plugin
 * boundary (GStreamer's gstabi.c style): sizeof and offsetof of each member, as
 * literal numbers for x86_64 Linux (LP64).  A change here breaks binary compatibility:
 * append members instead, bump the ABI minor (plugin.h) and update these numbers in
 * the same change.  floe_host is pinned by its header, its first and last minor-0
 * members and its total size.  Also pins the enum values that are part of the ABI.
 *
 * Both the public API and the plugin ABI are included in one file, which plugin.h
 * allows only with FLOE_PLUGIN_NO_NATURAL_NAMES.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include <floe/floe.h>
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/plugin.h>

static int abi_failures;

static void check(const char *what, size_t got, size_t expect) {
    if (got != expect) {
        fprintf(stderr, "ABI: %s is %zu, pinned %zu\n", what, got, expect);
        abi_failures++;
    }
}

#define CHECK_SIZE(type, n) check("sizeof(" #type ")", sizeof(type), (n))
#define CHECK_OFFSET(type, member, n) \
    check("offsetof(" #type ", " #member ")", offsetof(type, member), (n))

static void struct_layouts_are_pinned(void **state) {
#if !defined(__x86_64__) || !defined(__LP64__) || !defined(__linux__)
    skip();
#else
    abi_failures = 0;
    CHECK_SIZE(floe_shape, 72);
    CHECK_OFFSET(floe_shape, ndim, 0);
    CHECK_OFFSET(floe_shape, reserved_, 4);
    CHECK_OFFSET(floe_shape, dims, 8);
    CHECK_SIZE(floe_output, 16);
    CHECK_OFFSET(floe_output, node, 0);
    CHECK_OFFSET(floe_output, index, 8);
    CHECK_OFFSET(floe_output, reserved_, 12);
    CHECK_SIZE(floe_tstring, 16);
    CHECK_OFFSET(floe_tstring, data, 0);
    CHECK_OFFSET(floe_tstring, size, 8);
    CHECK_SIZE(floe_file_info, 32);
    CHECK_OFFSET(floe_file_info, struct_size, 0);
    CHECK_OFFSET(floe_file_info, size, 8);
    CHECK_OFFSET(floe_file_info, mtime_ns, 16);
    CHECK_OFFSET(floe_file_info, is_dir, 24);
    CHECK_SIZE(floe_context_options, 72);
    CHECK_OFFSET(floe_context_options, struct_size, 0);
    CHECK_OFFSET(floe_context_options, plugin_path, 8);
    CHECK_OFFSET(floe_context_options, system_plugins, 16);
    CHECK_OFFSET(floe_context_options, allow, 24);
    CHECK_OFFSET(floe_context_options, deny, 32);
    CHECK_OFFSET(floe_context_options, no_plugins, 40);
    CHECK_OFFSET(floe_context_options, num_threads, 44);
    CHECK_OFFSET(floe_context_options, log_level, 48);
    CHECK_OFFSET(floe_context_options, log_fn, 56);
    CHECK_OFFSET(floe_context_options, log_arg, 64);
    CHECK_SIZE(floe_session_options, 16);
    CHECK_OFFSET(floe_session_options, struct_size, 0);
    CHECK_OFFSET(floe_session_options, log_device_placement, 8);
    CHECK_OFFSET(floe_session_options, inter_op_parallelism, 12);
    CHECK_SIZE(floe_plugin_info, 104);
    CHECK_OFFSET(floe_plugin_info, struct_size, 0);
    CHECK_OFFSET(floe_plugin_info, name, 8);
    CHECK_OFFSET(floe_plugin_info, path, 16);
    CHECK_OFFSET(floe_plugin_info, version, 24);
    CHECK_OFFSET(floe_plugin_info, vendor, 32);
    CHECK_OFFSET(floe_plugin_info, license, 40);
    CHECK_OFFSET(floe_plugin_info, abi_major, 48);
    CHECK_OFFSET(floe_plugin_info, abi_minor, 52);
    CHECK_OFFSET(floe_plugin_info, loaded, 56);
    CHECK_OFFSET(floe_plugin_info, reason, 64);
    CHECK_OFFSET(floe_plugin_info, note, 72);
    CHECK_OFFSET(floe_plugin_info, num_ops, 80);
    CHECK_OFFSET(floe_plugin_info, num_kernels, 84);
    CHECK_OFFSET(floe_plugin_info, num_devices, 88);
    CHECK_OFFSET(floe_plugin_info, num_filesystems, 92);
    CHECK_OFFSET(floe_plugin_info, num_transports, 96);
    CHECK_OFFSET(floe_plugin_info, skipped, 100);
    CHECK_SIZE(floe_device_info, 56);
    CHECK_OFFSET(floe_device_info, struct_size, 0);
    CHECK_OFFSET(floe_device_info, name, 8);
    CHECK_OFFSET(floe_device_info, type, 16);
    CHECK_OFFSET(floe_device_info, index, 24);
    CHECK_OFFSET(floe_device_info, description, 32);
    CHECK_OFFSET(floe_device_info, memory_bytes, 40);
    CHECK_OFFSET(floe_device_info, plugin, 48);
    CHECK_SIZE(floe_plugin_desc, 88);
    CHECK_OFFSET(floe_plugin_desc, abi_major, 0);
    CHECK_OFFSET(floe_plugin_desc, abi_minor, 4);
    CHECK_OFFSET(floe_plugin_desc, struct_size, 8);
    CHECK_OFFSET(floe_plugin_desc, name, 16);
    CHECK_OFFSET(floe_plugin_desc, version, 24);
    CHECK_OFFSET(floe_plugin_desc, vendor, 32);
    CHECK_OFFSET(floe_plugin_desc, license, 40);
    CHECK_OFFSET(floe_plugin_desc, description, 48);
    CHECK_OFFSET(floe_plugin_desc, requires_cpu, 56);
    CHECK_OFFSET(floe_plugin_desc, score, 64);
    CHECK_OFFSET(floe_plugin_desc, init, 72);
    CHECK_OFFSET(floe_plugin_desc, deinit, 80);
    CHECK_SIZE(floe_op_def, 64);
    CHECK_OFFSET(floe_op_def, struct_size, 0);
    CHECK_OFFSET(floe_op_def, name, 8);
    CHECK_OFFSET(floe_op_def, inputs, 16);
    CHECK_OFFSET(floe_op_def, outputs, 24);
    CHECK_OFFSET(floe_op_def, attrs, 32);
    CHECK_OFFSET(floe_op_def, shape_fn, 40);
    CHECK_OFFSET(floe_op_def, flags, 48);
    CHECK_OFFSET(floe_op_def, doc, 56);
    CHECK_SIZE(floe_kernel_def, 72);
    CHECK_OFFSET(floe_kernel_def, struct_size, 0);
    CHECK_OFFSET(floe_kernel_def, op, 8);
    CHECK_OFFSET(floe_kernel_def, device_type, 16);
    CHECK_OFFSET(floe_kernel_def, constraints, 24);
    CHECK_OFFSET(floe_kernel_def, priority, 32);
    CHECK_OFFSET(floe_kernel_def, create, 40);
    CHECK_OFFSET(floe_kernel_def, compute, 48);
    CHECK_OFFSET(floe_kernel_def, destroy, 56);
    CHECK_OFFSET(floe_kernel_def, host_memory, 64);
    CHECK_SIZE(floe_device_memory_stats, 48);
    CHECK_OFFSET(floe_device_memory_stats, struct_size, 0);
    CHECK_OFFSET(floe_device_memory_stats, bytes_in_use, 8);
    CHECK_OFFSET(floe_device_memory_stats, peak_bytes_in_use, 16);
    CHECK_OFFSET(floe_device_memory_stats, bytes_cached, 24);
    CHECK_OFFSET(floe_device_memory_stats, bytes_limit, 32);
    CHECK_OFFSET(floe_device_memory_stats, num_allocs, 40);
    CHECK_SIZE(floe_device_ops, 96);
    CHECK_OFFSET(floe_device_ops, abi_major, 0);
    CHECK_OFFSET(floe_device_ops, abi_minor, 4);
    CHECK_OFFSET(floe_device_ops, struct_size, 8);
    CHECK_OFFSET(floe_device_ops, alloc, 16);
    CHECK_OFFSET(floe_device_ops, free, 24);
    CHECK_OFFSET(floe_device_ops, copy_to_device, 32);
    CHECK_OFFSET(floe_device_ops, copy_from_device, 40);
    CHECK_OFFSET(floe_device_ops, copy_on_device, 48);
    CHECK_OFFSET(floe_device_ops, synchronize, 56);
    CHECK_OFFSET(floe_device_ops, copy_peer, 64);
    CHECK_OFFSET(floe_device_ops, proc_address, 72);
    CHECK_OFFSET(floe_device_ops, memory_stats, 80);
    CHECK_OFFSET(floe_device_ops, destroy, 88);
    CHECK_SIZE(floe_device_desc, 64);
    CHECK_OFFSET(floe_device_desc, struct_size, 0);
    CHECK_OFFSET(floe_device_desc, type, 8);
    CHECK_OFFSET(floe_device_desc, index, 16);
    CHECK_OFFSET(floe_device_desc, priority, 20);
    CHECK_OFFSET(floe_device_desc, flags, 24);
    CHECK_OFFSET(floe_device_desc, description, 32);
    CHECK_OFFSET(floe_device_desc, memory_bytes, 40);
    CHECK_OFFSET(floe_device_desc, ops, 48);
    CHECK_OFFSET(floe_device_desc, state, 56);
    CHECK_SIZE(floe_fs_ops, 136);
    CHECK_OFFSET(floe_fs_ops, abi_major, 0);
    CHECK_OFFSET(floe_fs_ops, abi_minor, 4);
    CHECK_OFFSET(floe_fs_ops, struct_size, 8);
    CHECK_OFFSET(floe_fs_ops, scheme, 16);
    CHECK_OFFSET(floe_fs_ops, caps, 24);
    CHECK_OFFSET(floe_fs_ops, state, 32);
    CHECK_OFFSET(floe_fs_ops, open_read, 40);
    CHECK_OFFSET(floe_fs_ops, pread, 48);
    CHECK_OFFSET(floe_fs_ops, close_read, 56);
    CHECK_OFFSET(floe_fs_ops, open_write, 64);
    CHECK_OFFSET(floe_fs_ops, write, 72);
    CHECK_OFFSET(floe_fs_ops, close_write, 80);
    CHECK_OFFSET(floe_fs_ops, stat, 88);
    CHECK_OFFSET(floe_fs_ops, list, 96);
    CHECK_OFFSET(floe_fs_ops, remove, 104);
    CHECK_OFFSET(floe_fs_ops, mkdir, 112);
    CHECK_OFFSET(floe_fs_ops, rename, 120);
    CHECK_OFFSET(floe_fs_ops, destroy, 128);
    CHECK_SIZE(floe_transport_ops, 104);
    CHECK_OFFSET(floe_transport_ops, abi_major, 0);
    CHECK_OFFSET(floe_transport_ops, abi_minor, 4);
    CHECK_OFFSET(floe_transport_ops, struct_size, 8);
    CHECK_OFFSET(floe_transport_ops, name, 16);
    CHECK_OFFSET(floe_transport_ops, state, 24);
    CHECK_OFFSET(floe_transport_ops, connect, 32);
    CHECK_OFFSET(floe_transport_ops, disconnect, 40);
    CHECK_OFFSET(floe_transport_ops, call, 48);
    CHECK_OFFSET(floe_transport_ops, serve, 56);
    CHECK_OFFSET(floe_transport_ops, shutdown, 64);
    CHECK_OFFSET(floe_transport_ops, destroy, 72);
    CHECK_OFFSET(floe_transport_ops, set_option, 80);
    CHECK_OFFSET(floe_transport_ops, cancel, 88);
    CHECK_OFFSET(floe_transport_ops, server_port, 96);
    CHECK_SIZE(floe_host, 784);
    CHECK_OFFSET(floe_host, abi_major, 0);
    CHECK_OFFSET(floe_host, abi_minor, 4);
    CHECK_OFFSET(floe_host, struct_size, 8);
    CHECK_OFFSET(floe_host, alloc, 16);
    CHECK_OFFSET(floe_host, variable_dtype, 576);
    CHECK_OFFSET(floe_host, tensor_reshape, 584);
    CHECK_OFFSET(floe_host, tensor_device_data, 592);
    CHECK_OFFSET(floe_host, grad_attrs, 600);
    CHECK_OFFSET(floe_host, grad_upstream, 656);
    CHECK_OFFSET(floe_host, grad_set_input_grad, 680);
    CHECK_OFFSET(floe_host, grad_add_node, 688);
    CHECK_OFFSET(floe_host, grad_const_scalar, 696);
    CHECK_OFFSET(floe_host, attrs_new, 704);
    CHECK_OFFSET(floe_host, attrs_set_int_list, 768);
    CHECK_OFFSET(floe_host, attrs_set_tensor, 776);
    assert_int_equal(abi_failures, 0);
#endif
}

static void enum_values_are_pinned(void **state) {
    /* dtypes are TensorFlow's DataType numbers. */
    assert_int_equal(FLOE_DTYPE_INVALID, 0);
    assert_int_equal(FLOE_DTYPE_F32, 1);
    assert_int_equal(FLOE_DTYPE_F64, 2);
    assert_int_equal(FLOE_DTYPE_I32, 3);
    assert_int_equal(FLOE_DTYPE_U8, 4);
    assert_int_equal(FLOE_DTYPE_I16, 5);
    assert_int_equal(FLOE_DTYPE_I8, 6);
    assert_int_equal(FLOE_DTYPE_STRING, 7);
    assert_int_equal(FLOE_DTYPE_COMPLEX64, 8);
    assert_int_equal(FLOE_DTYPE_I64, 9);
    assert_int_equal(FLOE_DTYPE_BOOL, 10);
    assert_int_equal(FLOE_DTYPE_BF16, 14);
    assert_int_equal(FLOE_DTYPE_U16, 17);
    assert_int_equal(FLOE_DTYPE_F16, 19);
    assert_int_equal(FLOE_DTYPE_RESOURCE, 20);
    assert_int_equal(FLOE_DTYPE_U32, 22);
    assert_int_equal(FLOE_DTYPE_U64, 23);
    assert_int_equal(FLOE_ATTR_NONE, 0);
    assert_int_equal(FLOE_ATTR_TENSOR, 7);
    assert_int_equal(FLOE_ATTR_LIST_INT, 8);
    assert_int_equal(FLOE_ATTR_LIST_TENSOR, 14);
    assert_int_equal(FLOE_MAX_DIMS, 8);
    assert_int_equal(FLOE_FS_CAP_ATOMIC_RENAME, 1);
    assert_int_equal(FLOE_FS_CAP_APPEND, 2);
    assert_int_equal(FLOE_DEVICE_HOST_MEMORY, 1);
    assert_int_equal(FLOE_OP_STATEFUL, 1);
    assert_int_equal(FLOE_OP_NO_GRADIENT, 2);
    assert_int_equal(FLOE_LOG_DEBUG, 0);
    assert_int_equal(FLOE_LOG_NONE, 4);
    assert_int_equal(FLOE_PLUGIN_ABI_MAJOR, 1);
    assert_int_equal(FLOE_TRANSPORT_ABI_MAJOR, 0);
    assert_int_equal(sizeof(floe_status), sizeof(int));
    assert_int_equal(sizeof(floe_dtype), sizeof(int));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(struct_layouts_are_pinned),
        cmocka_unit_test(enum_values_are_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
