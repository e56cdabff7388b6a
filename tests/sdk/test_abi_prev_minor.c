/*
 * test_abi_prev_minor.c - a plugin built against the previous plugin ABI minor loads and
 * works in the current core.
 *
 * The fixture floe_fx_prev_minor.so (tests/fixtures/fx_prev_minor.c) is compiled against
 * the frozen 1.0 headers in tests/fixtures/abi-1.0/ only, as a vendor's binary built
 * against an older Floe would be; its descriptor, op and kernel definitions, device
 * descriptor and device ops table have 1.0 sizes.  While the tree is still at minor 0
 * the "previous" minor is the same one (the test says so in its output); the struct_size
 * paths for truly older structs are covered by fx_old_minor (test_loader.c).
 *
 * Checks: it loads (not skipped, not rejected) and reports ABI 1.0; its op runs on CPU
 * and on its device FXPREV:0 (inputs and outputs crossing through its 1.0 device ops
 * table); its gradient function works (floe_gradient_check); and the CPU plugins loaded
 * beside it still work.
 */
#include "test_common.h"

#include <floe/gradients.h>
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static floe_context *ctx;

static int setup(void **state) {
    const char *dir = getenv("FLOE_TEST_FIXTURES");
    char path[4096];
    (void)state;
    if (dir == NULL || floe_context_new(NULL, &ctx) != FLOE_OK)
        return -1;
    snprintf(path, sizeof(path), "%s/floe_fx_prev_minor.so", dir);
    if (floe_context_load_plugin(ctx, path) != FLOE_OK) {
        fprintf(stderr, "loading %s: %s\n", path, floe_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    floe_context_free(ctx);
    return 0;
}

static void prev_minor_plugin_is_loaded(void **state) {
    int found = 0;
    (void)state;
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info info;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        assert_int_equal(floe_context_plugin(ctx, i, &info), FLOE_OK);
        if (strcmp(info.name, "fx_prev_minor") != 0)
            continue;
        found = 1;
        if (!info.loaded)
            fail_msg("fx_prev_minor not loaded: %s", info.reason);
        assert_int_equal(info.abi_major, 1);
        assert_int_equal(info.abi_minor, 0);
        assert_true(info.abi_minor <= FLOE_PLUGIN_ABI_MINOR);
        assert_int_equal(info.num_ops, 1);
        assert_int_equal(info.num_kernels, 2);
        assert_int_equal(info.num_devices, 1);
        printf("plugin built for ABI %u.%u loaded by a core at ABI %d.%d%s\n", info.abi_major,
               info.abi_minor, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR,
               FLOE_PLUGIN_ABI_MINOR == 0 ? " (no older minor exists yet: same layout)" : "");
    }
    assert_true(found);
}

static void prev_minor_op_runs_on_cpu_and_its_device(void **state) {
    static const int64_t shape[2] = {3, 5};
    float xv[15], yv[15], want[15];
    (void)state;
    for (int i = 0; i < 15; i++) {
        xv[i] = (float)i * 0.5f - 3.0f;
        yv[i] = (float)(i % 4) - 1.0f;
        want[i] = 2.0f * xv[i] + yv[i];
    }
    floe_tensor *in[2] = {tc_f32(shape, 2, xv), tc_f32(shape, 2, yv)}, *out = NULL, *host = NULL;
    const char *devices[2] = {"CPU:0", "FXPREV:0"};
    for (int d = 0; d < 2; d++) {
        floe_status st = floe_eager_run(ctx, "FxPrevAxpy", devices[d], in, 2, NULL, &out, 1);
        if (st != FLOE_OK)
            fail_msg("FxPrevAxpy on %s: %s", devices[d], floe_last_error());
        assert_int_equal(floe_tensor_to_host(out, &host), FLOE_OK);
        tc_assert_close_f32(host, want, 15, 0, 0);
        floe_tensor_unref(host);
        floe_tensor_unref(out);
    }
    /* The base plugins loaded beside it are unaffected. */
    assert_int_equal(floe_eager_run(ctx, "AddV2", "CPU:0", in, 2, NULL, &out, 1), FLOE_OK);
    floe_tensor_unref(out);
    tc_unref_all(in, 2);
}

static void prev_minor_gradient_checks(void **state) {
    static const int64_t shape[1] = {6};
    float xv[6] = {-1, 0.5f, 2, 3, -4, 0}, yv[6] = {1, 1, 1, 2, 2, 2};
    double err = -1;
    (void)state;
    floe_tensor *in[2] = {tc_f32(shape, 1, xv), tc_f32(shape, 1, yv)};
    assert_int_equal(floe_gradient_check(ctx, "FxPrevAxpy", in, 2, NULL, 0, 1e-2, &err), FLOE_OK);
    assert_true(err < 1e-2);
    tc_unref_all(in, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prev_minor_plugin_is_loaded),
        cmocka_unit_test(prev_minor_op_runs_on_cpu_and_its_device),
        cmocka_unit_test(prev_minor_gradient_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
