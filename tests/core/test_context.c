/*
 * test_context.c - the runtime context: options and their environment defaults,
 * creation and teardown, plugin records, device lookup by spec, op introspection and
 * the thread pool getters.
 */
#include "test_common.h"

#include <floe/experimental/testing.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture_good(void) {
    static char path[1024];
    const char *d = getenv("FLOE_TEST_FIXTURES");
    if (d == NULL)
        fail_msg("FLOE_TEST_FIXTURES is not set (run through meson test)");
    snprintf(path, sizeof(path), "%s/floe_fx_good.so", d);
    return path;
}

/* A context with only the given plugin path, the system directory off. */
static floe_context *context_with(const char *path, int num_threads) {
    floe_context_options o;
    floe_context *ctx = NULL;
    floe_context_options_init(&o);
    o.plugin_path = path;
    o.system_plugins = 0;
    o.num_threads = num_threads;
    o.log_level = FLOE_LOG_NONE;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    return ctx;
}

/* ---- Options -------------------------------------------------------------------- */

static void options_init_sets_defaults(void **state) {
    (void)state;
    floe_context_options o;
    unsetenv("FLOE_LOG_LEVEL");
    memset(&o, 0x7f, sizeof(o));
    floe_context_options_init(&o);
    assert_int_equal(o.struct_size, sizeof(o));
    assert_null(o.plugin_path);
    assert_int_equal(o.system_plugins, 1);
    assert_null(o.allow);
    assert_null(o.deny);
    assert_int_equal(o.no_plugins, 0);
    assert_int_equal(o.num_threads, 0);
    assert_int_equal(o.log_level, FLOE_LOG_WARNING);
    assert_null(o.log_fn);
    floe_context_options_init(NULL); /* harmless */

    setenv("FLOE_LOG_LEVEL", "debug", 1);
    floe_context_options_init(&o);
    assert_int_equal(o.log_level, FLOE_LOG_DEBUG);
    setenv("FLOE_LOG_LEVEL", "ERROR", 1);
    floe_context_options_init(&o);
    assert_int_equal(o.log_level, FLOE_LOG_ERROR);
    setenv("FLOE_LOG_LEVEL", "loud", 1);
    floe_context_options_init(&o);
    assert_int_equal(o.log_level, FLOE_LOG_WARNING);
    unsetenv("FLOE_LOG_LEVEL");
}

static void context_new_rejects_bad_options(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = (floe_context *)&o;

    assert_int_equal(floe_context_new(NULL, NULL), FLOE_INVALID_ARGUMENT);
    floe_context_options_init(&o);
    o.struct_size = 0;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_INVALID_ARGUMENT);
    assert_null(ctx);
    tc_assert_error_contains("floe_context_options_init");
    floe_context_options_init(&o);
    o.num_threads = -1;
    ctx = (floe_context *)&o;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_INVALID_ARGUMENT);
    assert_null(ctx);
    tc_assert_error_contains("num_threads");
    floe_context_options_init(&o);
    o.log_level = (floe_log_level)42;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("log_level");
}

/* ---- Threads ---------------------------------------------------------------------- */

static void context_thread_count_from_option_env_or_cpus(void **state) {
    (void)state;
    floe_context *ctx;

    unsetenv("FLOE_NUM_THREADS");
    ctx = context_with("", 3);
    assert_int_equal(floe_context_num_threads(ctx), 3);
    assert_non_null(floe_context_threadpool(ctx));
    floe_context_free(ctx);

    setenv("FLOE_NUM_THREADS", "2", 1);
    ctx = context_with("", 0);
    assert_int_equal(floe_context_num_threads(ctx), 2);
    floe_context_free(ctx);
    ctx = context_with("", 1); /* the option wins over the environment */
    assert_int_equal(floe_context_num_threads(ctx), 1);
    floe_context_free(ctx);

    setenv("FLOE_NUM_THREADS", "lots", 1);
    ctx = context_with("", 0);
    assert_true(floe_context_num_threads(ctx) >= 1);
    floe_context_free(ctx);
    unsetenv("FLOE_NUM_THREADS");

    assert_null(floe_context_threadpool(NULL));
    assert_int_equal(floe_context_num_threads(NULL), 0);
}

/* ---- Plugin records --------------------------------------------------------------- */

static void context_no_plugins(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = NULL;
    floe_plugin_info pi = {.struct_size = sizeof(pi)};

    floe_context_options_init(&o);
    o.no_plugins = 1;
    o.plugin_path = fixture_good();
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 0);
    assert_int_equal(floe_context_num_ops(ctx), 0);
    assert_int_equal(floe_context_num_devices(ctx), 0);
    assert_int_equal(floe_context_plugin(ctx, 0, &pi), FLOE_OUT_OF_RANGE);
    assert_null(pi.name);
    assert_int_equal(floe_context_plugin(ctx, -1, &pi), FLOE_OUT_OF_RANGE);
    assert_int_equal(floe_context_plugin(ctx, 0, NULL), FLOE_INVALID_ARGUMENT);
    pi.struct_size = 0;
    assert_int_equal(floe_context_plugin(ctx, 0, &pi), FLOE_INVALID_ARGUMENT);
    floe_context_free(ctx);
    floe_context_free(NULL);
    assert_int_equal(floe_context_num_plugins(NULL), 0);
}

static void context_plugin_info_respects_older_struct_size(void **state) {
    (void)state;
    floe_context *ctx = context_with(fixture_good(), 1);
    unsigned char buf[sizeof(floe_plugin_info) + 16];
    floe_plugin_info *pi = (floe_plugin_info *)(void *)buf;
    size_t old_size = offsetof(floe_plugin_info, num_transports) + sizeof(int);

    memset(buf, 0xa5, sizeof(buf));
    pi->struct_size = old_size;
    assert_int_equal(floe_context_plugin(ctx, 0, pi), FLOE_OK);
    assert_string_equal(pi->name, "fx_good");
    assert_int_equal(pi->num_devices, 1);
    assert_int_equal(pi->struct_size, old_size);
    for (size_t i = old_size; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xa5); /* nothing written past the caller's struct */
    floe_context_free(ctx);
}

/* ---- Devices ---------------------------------------------------------------------- */

static void context_find_device_accepts_tensorflow_specs(void **state) {
    (void)state;
    floe_context *ctx = context_with(fixture_good(), 1);
    static const char *const specs[] = {"FIXTURE:0",
                                        "fixture:0",
                                        "/device:FIXTURE:0",
                                        "/fixture:0",
                                        "FIXTURE",
                                        "",
                                        "/job:localhost/replica:0/task:0/device:FIXTURE:0",
                                        "/job:localhost/device:FIXTURE:*",
                                        "/device:FIXTURE"};
    floe_device *dev = NULL, *first = NULL;
    floe_device_info di = {.struct_size = sizeof(di)};

    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (floe_context_find_device(ctx, specs[i], &dev) != FLOE_OK)
            fail_msg("spec \"%s\": %s", specs[i], floe_last_error());
        if (first == NULL)
            first = dev;
        assert_ptr_equal(dev, first);
    }
    assert_int_equal(floe_context_num_devices(ctx), 1);
    assert_int_equal(floe_context_device(ctx, 0, &di), FLOE_OK);
    assert_string_equal(di.name, "/device:FIXTURE:0");
    assert_string_equal(di.type, "FIXTURE");
    assert_int_equal(di.index, 0);
    assert_string_equal(di.description, "loader-test fixture device");
    assert_string_equal(di.plugin, "fx_good");
    assert_int_equal(floe_context_device(ctx, 1, &di), FLOE_OUT_OF_RANGE);
    assert_null(di.name);

    dev = first;
    assert_int_equal(floe_context_find_device(ctx, "FIXTURE:1", &dev), FLOE_NOT_FOUND);
    assert_null(dev);
    tc_assert_error_contains("FIXTURE:1");
    assert_int_equal(floe_context_find_device(ctx, "GPU:0", &dev), FLOE_NOT_FOUND);
    static const char *const bad[] = {
        "CPU:x",  "/device:", "/job:a/job:b/device:CPU:0:1", "/device:CPU:0/device:CPU:1",
        "CPU:-1", "C PU:0",   "/replica:x/device:CPU:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (floe_context_find_device(ctx, bad[i], &dev) != FLOE_INVALID_ARGUMENT)
            fail_msg("spec \"%s\" accepted", bad[i]);
        tc_assert_error_contains(bad[i]);
    }
    assert_int_equal(floe_context_find_device(ctx, NULL, &dev), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_context_find_device(NULL, "CPU:0", &dev), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_context_find_device(ctx, "CPU:0", NULL), FLOE_INVALID_ARGUMENT);
    floe_context_free(ctx);
}

static void context_default_loads_build_tree_plugins(void **state) {
    (void)state;
    floe_context *ctx = tc_context(); /* FLOE_PLUGIN_PATH: the build tree */
    floe_device *cpu = NULL;
    int loaded = 0;

    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info pi = {.struct_size = sizeof(pi)};
        assert_int_equal(floe_context_plugin(ctx, i, &pi), FLOE_OK);
        /* skipped by design (dev_cuda without a GPU) is fine; rejected is not */
        if (!pi.loaded && !pi.skipped)
            fail_msg("build-tree plugin %s not loaded: %s", pi.name, pi.reason);
        loaded += pi.loaded;
    }
    assert_true(loaded >= 1);
    assert_int_equal(floe_context_find_device(ctx, "/cpu:0", &cpu), FLOE_OK);
    floe_context_free(ctx);
}

/* ---- Ops ---------------------------------------------------------------------------- */

static void context_op_introspection(void **state) {
    (void)state;
    char path[2048], buf[4096], tiny[16];
    const char *d = getenv("FLOE_TEST_FIXTURES");
    floe_context *ctx;

    snprintf(path, sizeof(path), "%s/floe_fx_old_minor.so:%s", d, fixture_good());
    ctx = context_with(path, 1);
    assert_int_equal(floe_context_num_ops(ctx), 2);
    assert_string_equal(floe_context_op_name(ctx, 0), "FixtureAddOne"); /* name order */
    assert_string_equal(floe_context_op_name(ctx, 1), "FixtureOld");
    assert_null(floe_context_op_name(ctx, 2));
    assert_null(floe_context_op_name(ctx, -1));
    assert_null(floe_context_op_name(NULL, 0));
    assert_int_equal(floe_context_num_ops(NULL), 0);

    assert_int_equal(floe_context_describe_op(ctx, "FixtureOld", buf, sizeof(buf)), FLOE_OK);
    assert_non_null(strstr(buf, "op FixtureOld"));
    assert_non_null(strstr(buf, "y: f32"));
    assert_non_null(strstr(buf, "kernels: none"));
    memset(tiny, 'z', sizeof(tiny));
    assert_int_equal(floe_context_describe_op(ctx, "FixtureOld", tiny, sizeof(tiny)), FLOE_OK);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1); /* truncated, terminated */
    assert_int_equal(floe_context_describe_op(ctx, "Nope", buf, sizeof(buf)), FLOE_NOT_FOUND);
    assert_string_equal(buf, "");
    tc_assert_error_contains("Nope");
    assert_int_equal(floe_context_describe_op(ctx, "FixtureOld", NULL, 10), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_context_describe_op(ctx, NULL, buf, sizeof(buf)), FLOE_INVALID_ARGUMENT);
    floe_context_free(ctx);
}

/* ---- Out of memory ----------------------------------------------------------------- */

static void context_new_survives_allocation_failures(void **state) {
    (void)state;
    floe_context_options o;
    floe_context_options_init(&o);
    o.plugin_path = fixture_good();
    o.system_plugins = 0;
    o.num_threads = 2;
    o.log_level = FLOE_LOG_NONE;
    for (int64_t n = 1; n < 2000; n++) {
        floe_context *ctx = NULL;
        floe_testing_fail_alloc(n, 0);
        floe_status st = floe_context_new(&o, &ctx);
        int failed = floe_testing_alloc_failures() > 0;
        floe_testing_fail_alloc(0, 0);
        if (st != FLOE_OK) {
            assert_int_equal(st, FLOE_RESOURCE_EXHAUSTED);
            assert_null(ctx);
            continue;
        }
        /* Failures inside plugin loading are recorded, not returned. */
        floe_context_free(ctx);
        if (!failed)
            return;
    }
    fail_msg("floe_context_new never succeeded without an injected failure");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_init_sets_defaults),
        cmocka_unit_test(context_new_rejects_bad_options),
        cmocka_unit_test(context_thread_count_from_option_env_or_cpus),
        cmocka_unit_test(context_no_plugins),
        cmocka_unit_test(context_plugin_info_respects_older_struct_size),
        cmocka_unit_test(context_find_device_accepts_tensorflow_specs),
        cmocka_unit_test(context_default_loads_build_tree_plugins),
        cmocka_unit_test(context_op_introspection),
        cmocka_unit_test(context_new_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
