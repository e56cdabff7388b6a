/*
 * test_loader.c - plugin loading through the public API, with the fixture plugins of
 * tests/fixtures (FLOE_TEST_FIXTURES names their directory).
 *
 * Each test names the fixture files it loads through the plugin_path option (the
 * system directory off), then checks the records floe_context_plugin() reports: every
 * rejection or skip names the file, the plugin, its version, both ABI versions and the
 * cause; the good plugin keeps loading and working next to broken ones; conflicts
 * resolve the same way whatever else is loaded (first loaded wins) in either order.
 */
#include "test_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Helpers --------------------------------------------------------------------- */

static const char *fixture_dir(void) {
    const char *d = getenv("FLOE_TEST_FIXTURES");
    if (d == NULL || d[0] == '\0')
        fail_msg("FLOE_TEST_FIXTURES is not set (run through meson test)");
    return d;
}

/* "<dir>/floe_fx_<name>.so" in a static rotating buffer. */
static const char *fixture(const char *name) {
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s/floe_fx_%s.so", fixture_dir(), name);
    return b;
}

static char log_lines[64 * 1024];

static void capture_log(void *arg, floe_log_level level, const char *msg) {
    size_t n = strlen(log_lines);
    (void)arg;
    snprintf(log_lines + n, sizeof(log_lines) - n, "[%d] %s\n", (int)level, msg);
}

/* When set, load_fixtures() loads these first (the build tree's plugins). */
static const char *extra_path;

/* A context loading the named fixtures (NULL-terminated), in order. */
static floe_context *load_fixtures(const char *first, ...) {
    char path[8192] = "";
    floe_context_options o;
    floe_context *ctx = NULL;
    va_list ap;

    if (extra_path != NULL)
        snprintf(path, sizeof(path), "%s", extra_path);
    va_start(ap, first);
    for (const char *n = first; n != NULL; n = va_arg(ap, const char *)) {
        if (path[0] != '\0')
            strcat(path, ":");
        strcat(path, fixture(n));
    }
    va_end(ap);
    floe_context_options_init(&o);
    o.plugin_path = path;
    o.system_plugins = 0;
    o.num_threads = 1;
    o.log_level = FLOE_LOG_INFO;
    o.log_fn = capture_log;
    log_lines[0] = '\0';
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    return ctx;
}

/* The record of plugin @name; fails the test if absent. */
static floe_plugin_info plugin_info(floe_context *ctx, const char *name) {
    floe_plugin_info pi;
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        memset(&pi, 0, sizeof(pi));
        pi.struct_size = sizeof(pi);
        assert_int_equal(floe_context_plugin(ctx, i, &pi), FLOE_OK);
        if (strcmp(pi.name, name) == 0)
            return pi;
    }
    fail_msg("no record of plugin '%s'", name);
    memset(&pi, 0, sizeof(pi));
    return pi;
}

static void assert_contains(const char *hay, const char *needle) {
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

static void assert_good_works(floe_context *ctx) {
    floe_plugin_info pi = plugin_info(ctx, "fx_good");
    floe_device *dev = NULL;
    void *data = NULL;
    size_t size = 0;

    assert_int_equal(pi.loaded, 1);
    assert_int_equal(floe_context_find_device(ctx, "FIXTURE:0", &dev), FLOE_OK);
    assert_non_null(dev);
    assert_int_equal(floe_fs_read_all(ctx, "fxmem://hello", 0, &data, &size), FLOE_OK);
    assert_int_equal(size, strlen("hello from fx_good"));
    assert_memory_equal(data, "hello from fx_good", size);
    free(data);
}

/* ---- The good plugin ------------------------------------------------------------- */

static void loader_good_plugin_registers_everything(void **state) {
    (void)state;
    floe_context *ctx = load_fixtures("good", NULL);
    floe_plugin_info pi = plugin_info(ctx, "fx_good");
    char desc[4096];

    assert_int_equal(floe_context_num_plugins(ctx), 1);
    assert_int_equal(pi.loaded, 1);
    assert_int_equal(pi.skipped, 0);
    assert_string_equal(pi.version, "0.1.0");
    assert_string_equal(pi.vendor, "Floe tests");
    assert_string_equal(pi.license, "Apache-2.0");
    assert_string_equal(pi.path, fixture("good"));
    assert_int_equal(pi.abi_major, 1);
    assert_int_equal(pi.abi_minor, 0);
    assert_string_equal(pi.reason, "");
    assert_string_equal(pi.note, "fixture note: all good");
    assert_int_equal(pi.num_ops, 1);
    assert_int_equal(pi.num_kernels, 2);
    assert_int_equal(pi.num_devices, 1);
    assert_int_equal(pi.num_filesystems, 1);
    assert_int_equal(pi.num_transports, 0);

    assert_int_equal(floe_context_num_ops(ctx), 1);
    assert_string_equal(floe_context_op_name(ctx, 0), "FixtureAddOne");
    assert_int_equal(floe_context_describe_op(ctx, "FixtureAddOne", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "x: T");
    assert_contains(desc, "y: T");
    assert_contains(desc, "T: {f32, i32}");
    assert_contains(desc, "CPU:");
    assert_contains(desc, "FIXTURE:");
    assert_contains(desc, "plugin fx_good");
    assert_contains(desc, "Adds one");
    assert_good_works(ctx);
    /* The decision was logged at INFO with file and versions. */
    assert_contains(log_lines, "plugin loaded:");
    assert_contains(log_lines, fixture("good"));
    assert_contains(log_lines, "plugin ABI 1.0");
    floe_context_free(ctx);
}

/* Eager calls need ops_math (Placeholder) and dev_cpu: the build tree's plugins. */
static floe_context *load_with_build_plugins(const char *a, const char *b) {
    floe_context *ctx;
    extra_path = getenv("FLOE_PLUGIN_PATH");
    ctx = load_fixtures(a, b, NULL);
    extra_path = NULL;
    return ctx;
}

static void loader_good_plugin_kernel_runs(void **state) {
    (void)state;
    floe_context *ctx = load_with_build_plugins("good", NULL);
    const float in[3] = {1.0f, -2.0f, 0.5f}, want[3] = {2.0f, -1.0f, 1.5f};
    int64_t shape[1] = {3};
    floe_tensor *x = tc_f32(shape, 1, in), *y = NULL;

    if (floe_eager_run(ctx, "FixtureAddOne", "FIXTURE:0", &x, 1, NULL, &y, 1) != FLOE_OK)
        fail_msg("eager FixtureAddOne: %s", floe_last_error());
    tc_assert_close_f32(y, want, 3, 0, 0);
    floe_tensor_unref(y);
    floe_tensor_unref(x);
    floe_context_free(ctx);
}

static void loader_kernel_override_wins_by_priority(void **state) {
    (void)state;
    floe_context *ctx = load_with_build_plugins("good", "kernel_over");
    const int32_t in[2] = {1, 2}, want[2] = {101, 102};
    int64_t shape[1] = {2};
    floe_tensor *x = tc_i32(shape, 1, in), *y = NULL;
    char desc[4096];

    assert_int_equal(plugin_info(ctx, "fx_kernel_over").loaded, 1);
    assert_int_equal(floe_context_describe_op(ctx, "FixtureAddOne", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "priority 10 (preferred), plugin fx_kernel_over");
    if (floe_eager_run(ctx, "FixtureAddOne", "FIXTURE:0", &x, 1, NULL, &y, 1) != FLOE_OK)
        fail_msg("eager FixtureAddOne: %s", floe_last_error());
    assert_memory_equal(floe_tensor_data(y), want, sizeof(want));
    floe_tensor_unref(y);
    floe_tensor_unref(x);
    floe_context_free(ctx);
}

static void loader_old_minor_shorter_descriptor_loads(void **state) {
    (void)state;
    floe_context *ctx = load_fixtures("old_minor", NULL);
    floe_plugin_info pi = plugin_info(ctx, "fx_old_minor");
    char desc[2048];

    assert_int_equal(pi.loaded, 1);
    assert_string_equal(pi.version, "0.0.9");
    assert_int_equal(pi.abi_major, 1);
    assert_int_equal(pi.num_ops, 1);
    assert_int_equal(floe_context_describe_op(ctx, "FixtureOld", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "value: float = 1.5");
    floe_context_free(ctx); /* no deinit member: zero-filled, not read past the struct */
}

/* ---- Rejections and skips ----------------------------------------------------------- */

typedef struct bad_case {
    const char *fixture;
    int skipped;
    const char *version; /* in the reason */
    const char *abi;     /* "plugin ABI ..." in the reason */
    const char *cause;
} bad_case;

static const bad_case bad_cases[] = {
    {"noentry", 0, "version unknown", "plugin ABI unknown",
     "no entry symbol floe_plugin_fx_noentry_get_desc"},
    {"null_desc", 0, "version unknown", "plugin ABI unknown", "returned NULL"},
    {"major", 0, "version unknown", "plugin ABI 2.0", "built for plugin ABI major 2"},
    {"minor", 0, "0.3.0", "plugin ABI 1.1", "newer than this core's 1.0"},
    {"tiny", 0, "version unknown", "plugin ABI 1.0", "struct_size 16 is smaller"},
    {"null_member", 0, "0.3.0", "plugin ABI 1.0", "member 'vendor' is NULL"},
    {"mismatch", 0, "0.3.0", "plugin ABI 1.0", "name 'fx_other' does not match"},
    {"nocpu", 0, "0.2.0", "plugin ABI 1.0", "unknown CPU feature 'nonexistent_feature'"},
    {"score0", 1, "0.2.0", "plugin ABI 1.0", "cannot run here: fixture: no hardware here"},
    {"init_fail", 0, "0.2.0", "plugin ABI 1.0",
     "init() failed with UNAVAILABLE: fixture init failure: no widget attached"},
    {"bad_spec", 0, "0.2.0", "plugin ABI 1.0", "input spec \"x: Q\""},
    {"dup_op", 0, "0.2.0", "plugin ABI 1.0",
     "op 'FixtureAddOne' is already registered by plugin 'fx_good'"},
    {"dup_device", 0, "0.2.0", "plugin ABI 1.0",
     "device FIXTURE:0 is already registered by plugin 'fx_good'"},
    {"dup_fs", 0, "0.2.0", "plugin ABI 1.0",
     "filesystem scheme 'fxmem' is already registered by plugin 'fx_good'"},
    {"file_fs", 0, "0.2.0", "plugin ABI 1.0",
     "filesystem scheme 'file' is already registered by the core"},
    {"kernel_same", 0, "0.2.0", "plugin ABI 1.0",
     "kernel for op 'FixtureAddOne' on CPU with priority 0 is already registered by plugin "
     "'fx_good'"},
};

static void loader_rejections_name_file_versions_and_cause(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case *c = &bad_cases[i];
        char name[64];
        floe_context *ctx = load_fixtures("good", c->fixture, NULL);
        floe_plugin_info pi;

        snprintf(name, sizeof(name), "fx_%s", c->fixture);
        pi = plugin_info(ctx, name);
        assert_int_equal(floe_context_num_plugins(ctx), 2);
        if (pi.loaded || pi.skipped != c->skipped)
            fail_msg("%s: loaded %d skipped %d", name, pi.loaded, pi.skipped);
        assert_string_equal(pi.path, fixture(c->fixture));
        assert_contains(pi.reason, fixture(c->fixture));
        assert_contains(pi.reason, name);
        assert_contains(pi.reason, c->version);
        assert_contains(pi.reason, c->abi);
        assert_contains(pi.reason, "core ABI 1.0");
        assert_contains(pi.reason, c->cause);
        assert_int_equal(pi.num_ops + pi.num_kernels + pi.num_devices + pi.num_filesystems, 0);
        /* Logged, naming the file; the good plugin is untouched. */
        assert_contains(log_lines, c->skipped ? "plugin skipped:" : "plugin rejected:");
        assert_contains(log_lines, c->cause);
        assert_good_works(ctx);
        assert_int_equal(floe_context_num_ops(ctx), 1);
        assert_int_equal(floe_context_num_devices(ctx), 1);
        floe_context_free(ctx);
    }
}

static void loader_unopenable_files_are_recorded(void **state) {
    (void)state;
    char dir[] = "/tmp/floe_test_loader_XXXXXX", junk[600], missing[600];
    floe_context_options o;
    floe_context *ctx = NULL;
    char path[2048];
    FILE *f;
    floe_plugin_info pi;

    assert_non_null(mkdtemp(dir));
    snprintf(junk, sizeof(junk), "%s/floe_junk.so", dir);
    snprintf(missing, sizeof(missing), "%s/floe_gone.so", dir);
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);

    floe_context_options_init(&o);
    o.system_plugins = 0;
    o.log_level = FLOE_LOG_NONE;
    o.no_plugins = 1;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_load_plugin(ctx, junk), FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("dlopen failed");
    assert_int_equal(floe_context_load_plugin(ctx, missing), FLOE_NOT_FOUND);
    tc_assert_error_contains("cannot open");
    pi = plugin_info(ctx, "junk");
    assert_contains(pi.reason, junk);
    assert_contains(pi.reason, "dlopen failed");
    pi = plugin_info(ctx, "gone");
    assert_contains(pi.reason, "No such file");
    /* A file name that gives no plugin name. */
    snprintf(path, sizeof(path), "%s/Weird-Name.so", dir);
    rename(junk, path);
    assert_int_equal(floe_context_load_plugin(ctx, path), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("no valid plugin name");
    assert_int_equal(floe_context_num_plugins(ctx), 3);
    floe_context_free(ctx);
    unlink(path);
    rmdir(dir);
}

/* ---- Conflicts ----------------------------------------------------------------------- */

static void loader_duplicates_resolve_first_loaded_wins_in_both_orders(void **state) {
    (void)state;
    floe_context *ctx = load_fixtures("good", "dup_op", NULL);
    char desc[4096];

    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    assert_int_equal(plugin_info(ctx, "fx_dup_op").loaded, 0);
    assert_contains(plugin_info(ctx, "fx_dup_op").reason, "registered by plugin 'fx_good'");
    assert_int_equal(floe_context_describe_op(ctx, "FixtureAddOne", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "defined by: fx_good");
    floe_context_free(ctx);

    ctx = load_fixtures("dup_op", "good", NULL);
    assert_int_equal(plugin_info(ctx, "fx_dup_op").loaded, 1);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 0);
    assert_contains(plugin_info(ctx, "fx_good").reason,
                    "op 'FixtureAddOne' is already registered by plugin 'fx_dup_op'");
    assert_contains(plugin_info(ctx, "fx_good").reason, fixture("dup_op"));
    assert_contains(plugin_info(ctx, "fx_good").reason, "none took effect");
    assert_int_equal(floe_context_describe_op(ctx, "FixtureAddOne", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "defined by: fx_dup_op");
    /* Nothing of the rejected good plugin is left: no device, no filesystem. */
    assert_int_equal(floe_context_num_devices(ctx), 0);
    floe_context_free(ctx);

    ctx = load_fixtures("dup_device", "good", NULL);
    assert_contains(plugin_info(ctx, "fx_good").reason,
                    "device FIXTURE:0 is already registered by plugin 'fx_dup_device'");
    assert_int_equal(floe_context_num_ops(ctx), 0);
    floe_context_free(ctx);
}

static void loader_kernel_plugin_sorted_first_waits_for_its_ops(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = load_fixtures("kernel_over", "good", NULL);
    char desc[4096];

    /* In one pass, load order does not decide whether a kernel finds its op. */
    assert_int_equal(plugin_info(ctx, "fx_kernel_over").loaded, 1);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    assert_int_equal(floe_context_describe_op(ctx, "FixtureAddOne", desc, sizeof(desc)), FLOE_OK);
    assert_contains(desc, "priority 10 (preferred), plugin fx_kernel_over");
    floe_context_free(ctx);

    /* The op never comes: rejected at the end of the pass. */
    ctx = load_fixtures("kernel_over", "old_minor", NULL);
    assert_int_equal(plugin_info(ctx, "fx_kernel_over").loaded, 0);
    assert_contains(plugin_info(ctx, "fx_kernel_over").reason, "unknown op 'FixtureAddOne'");
    assert_contains(plugin_info(ctx, "fx_kernel_over").reason, fixture("kernel_over"));
    assert_int_equal(plugin_info(ctx, "fx_old_minor").loaded, 1);
    floe_context_free(ctx);

    /* Waiting, it commits after the others: their kernels were there first. */
    ctx = load_fixtures("kernel_same", "good", NULL);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    assert_contains(plugin_info(ctx, "fx_kernel_same").reason,
                    "kernel for op 'FixtureAddOne' on CPU with priority 0 is already "
                    "registered by plugin 'fx_good'");
    floe_context_free(ctx);

    /* Its names are claimed while it waits: first loaded wins for them too. */
    ctx = load_fixtures("wait_fs", "good", NULL);
    assert_contains(plugin_info(ctx, "fx_good").reason,
                    "filesystem scheme 'fxmem' is already claimed by plugin 'fx_wait_fs'");
    assert_contains(plugin_info(ctx, "fx_wait_fs").reason, "unknown op 'FixtureAddOne'");
    assert_int_equal(floe_context_num_plugins(ctx), 2);
    floe_context_free(ctx);
    ctx = load_fixtures("good", "wait_fs", NULL);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    assert_contains(plugin_info(ctx, "fx_wait_fs").reason,
                    "filesystem scheme 'fxmem' is already registered by plugin 'fx_good'");
    floe_context_free(ctx);

    /* An explicit load does not wait: the application orders its loads. */
    floe_context_options_init(&o);
    o.no_plugins = 1;
    o.log_level = FLOE_LOG_NONE;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("kernel_over")), FLOE_NOT_FOUND);
    tc_assert_error_contains("unknown op 'FixtureAddOne'");
    assert_int_equal(floe_context_load_plugin(ctx, fixture("good")), FLOE_OK);
    floe_context_free(ctx);
}

static char *read_text(const char *path) {
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    buf[0] = '\0';
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static void loader_teardown_order_and_undo_of_refused_init(void **state) {
    (void)state;
    char events[] = "/tmp/floe_test_events_XXXXXX";
    int fd = mkstemp(events);
    floe_context *ctx;
    const char *text;

    assert_true(fd >= 0);
    close(fd);
    setenv("FX_EVENTS", events, 1);
    ctx = load_fixtures("good", "dup_op", NULL);
    /* The refused plugin was initialised, then undone at once. */
    assert_string_equal(read_text(events), "fx_good:init\nfx_dup_op:init\nfx_dup_op:deinit\n");
    floe_context_free(ctx);
    text = read_text(events);
    /* Devices and filesystems are destroyed before deinit. */
    assert_contains(text, "fx_dup_op:deinit\n");
    assert_non_null(strstr(text, "fx_good:device_destroy"));
    assert_non_null(strstr(text, "fx_good:fs_destroy"));
    assert_true(strstr(text, "fx_good:deinit\n") > strstr(text, "fx_good:device_destroy"));
    assert_true(strstr(text, "fx_good:deinit\n") > strstr(text, "fx_good:fs_destroy"));

    /* A failed init is never deinit'ed. */
    fd = open(events, O_TRUNC | O_WRONLY);
    close(fd);
    ctx = load_fixtures("init_fail", NULL);
    floe_context_free(ctx);
    assert_string_equal(read_text(events), "fx_init_fail:init\n");
    unsetenv("FX_EVENTS");
    unlink(events);
}

/* ---- Discovery ------------------------------------------------------------------------ */

static void loader_same_file_loaded_once(void **state) {
    (void)state;
    char twice[3000];
    floe_context_options o;
    floe_context *ctx = NULL;

    snprintf(twice, sizeof(twice), "%s:%s/../fixtures/floe_fx_good.so:%s", fixture("good"),
             fixture_dir(), fixture_dir());
    floe_context_options_init(&o);
    o.plugin_path = twice;
    o.system_plugins = 0;
    o.log_level = FLOE_LOG_NONE;
    o.allow = "fx_good";
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    /* fx_good once; the directory scan adds the other fixtures, skipped by the allow list. */
    int good = 0;
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info pi = {.struct_size = sizeof(pi)};
        assert_int_equal(floe_context_plugin(ctx, i, &pi), FLOE_OK);
        if (strcmp(pi.name, "fx_good") == 0)
            good++;
        else
            assert_true(pi.skipped && strstr(pi.reason, "not in the allow list") != NULL);
    }
    assert_int_equal(good, 1);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("good")), FLOE_OK);
    floe_context_free(ctx);
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in != NULL && out != NULL;
    while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    return ok;
}

static void loader_shadowed_copy_and_system_path(void **state) {
    (void)state;
    char dir[] = "/tmp/floe_test_sys_XXXXXX", copy[600], path[2048];
    floe_context_options o;
    floe_context *ctx = NULL;
    floe_plugin_info pi;

    assert_non_null(mkdtemp(dir));
    snprintf(copy, sizeof(copy), "%s/floe_fx_good.so", dir);
    assert_true(copy_file(fixture("good"), copy));

    /* Path first, then the system directory given by FLOE_PLUGIN_SYSTEM_PATH. */
    setenv("FLOE_PLUGIN_SYSTEM_PATH", dir, 1);
    floe_context_options_init(&o);
    snprintf(path, sizeof(path), "%s", fixture("good"));
    o.plugin_path = path;
    o.log_level = FLOE_LOG_NONE;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 2);
    pi.struct_size = sizeof(pi);
    assert_int_equal(floe_context_plugin(ctx, 1, &pi), FLOE_OK);
    assert_string_equal(pi.path, copy);
    assert_int_equal(pi.skipped, 1);
    assert_contains(pi.reason, "already loaded from");
    assert_contains(pi.reason, fixture("good"));
    floe_context_free(ctx);

    /* Only the system directory. */
    o.plugin_path = "";
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 1);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    floe_context_free(ctx);

    /* system_plugins = 0, or FLOE_PLUGIN_SYSTEM_PATH set but empty: off. */
    o.system_plugins = 0;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 0);
    floe_context_free(ctx);
    o.system_plugins = 1;
    setenv("FLOE_PLUGIN_SYSTEM_PATH", "", 1);
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 0);
    floe_context_free(ctx);

    unlink(copy);
    rmdir(dir);
}

static void loader_directory_scan_is_sorted_and_deterministic(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = NULL;
    char prev[1024] = "";
    int n;

    floe_context_options_init(&o);
    o.plugin_path = fixture_dir();
    o.system_plugins = 0;
    o.log_level = FLOE_LOG_NONE;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    n = floe_context_num_plugins(ctx);
    assert_true(n >= 20);
    for (int i = 0; i < n; i++) {
        floe_plugin_info pi = {.struct_size = sizeof(pi)};
        assert_int_equal(floe_context_plugin(ctx, i, &pi), FLOE_OK);
        assert_true(strcmp(prev, pi.path) < 0);
        snprintf(prev, sizeof(prev), "%s", pi.path);
    }
    /* In name order fx_dup_device, fx_dup_fs and fx_dup_op come before fx_good: they win. */
    assert_int_equal(plugin_info(ctx, "fx_dup_op").loaded, 1);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 0);
    assert_contains(plugin_info(ctx, "fx_good").reason, "plugin 'fx_dup_op'");
    assert_int_equal(plugin_info(ctx, "fx_old_minor").loaded, 1);
    floe_context_free(ctx);
}

static void loader_allow_and_deny_lists(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = NULL;
    char path[2048];

    snprintf(path, sizeof(path), "%s:%s", fixture("good"), fixture("old_minor"));
    floe_context_options_init(&o);
    o.plugin_path = path;
    o.system_plugins = 0;
    o.log_level = FLOE_LOG_NONE;
    o.deny = "fx_old_minor, other";
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(plugin_info(ctx, "fx_good").loaded, 1);
    assert_int_equal(plugin_info(ctx, "fx_old_minor").skipped, 1);
    assert_contains(plugin_info(ctx, "fx_old_minor").reason, "deny list");
    /* An explicit load is the application's choice: the lists do not apply, and a
     * skipped file is tried again (a rejected one is not: see loader_explicit_load). */
    assert_int_equal(floe_context_load_plugin(ctx, fixture("old_minor")), FLOE_OK);
    assert_int_equal(plugin_info(ctx, "fx_old_minor").loaded, 1);
    assert_int_equal(floe_context_num_plugins(ctx), 2);
    floe_context_free(ctx);

    /* From the environment when the options leave them NULL. */
    o.deny = NULL;
    setenv("FLOE_PLUGIN_ALLOW", "fx_old_minor", 1);
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(plugin_info(ctx, "fx_good").skipped, 1);
    assert_contains(plugin_info(ctx, "fx_good").reason, "allow list");
    assert_int_equal(plugin_info(ctx, "fx_old_minor").loaded, 1);
    floe_context_free(ctx);
    unsetenv("FLOE_PLUGIN_ALLOW");
    setenv("FLOE_PLUGIN_DENY", "fx_good", 1);
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(plugin_info(ctx, "fx_good").skipped, 1);
    floe_context_free(ctx);
    unsetenv("FLOE_PLUGIN_DENY");
}

static void loader_explicit_load(void **state) {
    (void)state;
    floe_context_options o;
    floe_context *ctx = NULL;

    floe_context_options_init(&o);
    o.no_plugins = 1;
    o.log_level = FLOE_LOG_NONE;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 0);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("good")), FLOE_OK);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("good")), FLOE_OK);
    assert_int_equal(floe_context_num_plugins(ctx), 1);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("major")), FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("plugin ABI 2.0");
    tc_assert_error_contains(fixture("major"));
    assert_int_equal(floe_context_load_plugin(ctx, fixture("init_fail")), FLOE_UNAVAILABLE);
    tc_assert_error_contains("no widget attached");
    assert_int_equal(floe_context_load_plugin(ctx, fixture("score0")), FLOE_UNAVAILABLE);
    assert_int_equal(floe_context_load_plugin(ctx, fixture("dup_op")), FLOE_ALREADY_EXISTS);
    /* Tried before: the earlier outcome again. */
    assert_int_equal(floe_context_load_plugin(ctx, fixture("major")), FLOE_FAILED_PRECONDITION);
    assert_int_equal(floe_context_num_plugins(ctx), 5);
    assert_int_equal(floe_context_load_plugin(ctx, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_context_load_plugin(ctx, ""), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_context_load_plugin(NULL, fixture("good")), FLOE_INVALID_ARGUMENT);
    assert_good_works(ctx);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loader_good_plugin_registers_everything),
        cmocka_unit_test(loader_good_plugin_kernel_runs),
        cmocka_unit_test(loader_kernel_override_wins_by_priority),
        cmocka_unit_test(loader_old_minor_shorter_descriptor_loads),
        cmocka_unit_test(loader_rejections_name_file_versions_and_cause),
        cmocka_unit_test(loader_unopenable_files_are_recorded),
        cmocka_unit_test(loader_duplicates_resolve_first_loaded_wins_in_both_orders),
        cmocka_unit_test(loader_kernel_plugin_sorted_first_waits_for_its_ops),
        cmocka_unit_test(loader_teardown_order_and_undo_of_refused_init),
        cmocka_unit_test(loader_same_file_loaded_once),
        cmocka_unit_test(loader_shadowed_copy_and_system_path),
        cmocka_unit_test(loader_directory_scan_is_sorted_and_deterministic),
        cmocka_unit_test(loader_allow_and_deny_lists),
        cmocka_unit_test(loader_explicit_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
