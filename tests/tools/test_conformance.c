/*
 * test_conformance.c - `floe conformance PLUGIN.so` (tools/conformance.c) run with
 * popen() on the in-tree plugins, which must conform, and on fixtures that must not:
 * fx_broken (wrong values, a crash on zero-size input, a lying shape function, a device
 * with misaligned memory, a copy that drops a byte and an impossible allocation that
 * "succeeds"), fx_leaky (links libfloe, exports a helper), fx_init_fail, fx_major,
 * fx_noentry, fx_null_member and a file that is not a shared object.
 * Each failure must be named in the report, the tool must survive the fixture's crash,
 * and the exit status must be 1 (0 for a conforming plugin, 2 for a usage error).  The
 * reference plugins are the build tree's (FLOE_PLUGIN_PATH set by meson); the system
 * directory is off.
 */
#include "test_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_result {
    int status; /* exit status, or -1 if the tool did not exit normally */
    char out[262144];
    char err[16384];
} run_result;

static run_result result;

static void read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Runs "floe conformance @args". */
static const run_result *run(const char *args) {
    const char *root = getenv("FLOE_BUILD_ROOT");
    char errpath[] = "/tmp/floe_conf_err_XXXXXX", cmd[8192];
    int fd = mkstemp(errpath), st;
    FILE *p;
    size_t n;

    if (root == NULL)
        fail_msg("FLOE_BUILD_ROOT is not set (run through meson test)");
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "env FLOE_PLUGIN_SYSTEM_PATH= FLOE_LOG_LEVEL=error '%s/tools/floe' conformance %s "
             "2>'%s'", root, args, errpath);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(result.out, 1, sizeof(result.out) - 1, p);
    result.out[n] = '\0';
    st = pclose(p);
    result.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_file(errpath, result.err, sizeof(result.err));
    unlink(errpath);
    return &result;
}

static const char *plugin(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof(buf), "'%s/plugins/%s/floe_%s.so'", getenv("FLOE_BUILD_ROOT"), name,
             name);
    return buf;
}

static const char *fixture(const char *name) {
    static char buf[4096];
    const char *dir = getenv("FLOE_TEST_FIXTURES");
    if (dir == NULL)
        fail_msg("FLOE_TEST_FIXTURES is not set");
    snprintf(buf, sizeof(buf), "'%s/floe_%s.so'", dir, name);
    return buf;
}

static void expect_contains(const char *hay, const char *needle) {
    if (strstr(hay, needle) == NULL)
        fail_msg("output does not contain \"%s\":\n%s", needle, hay);
}

/* A line of the report that starts with @verdict and contains every one of @parts. */
static void expect_line(const char *report, const char *verdict, const char *a, const char *b) {
    const char *line = report;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[2048];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) - 1 ? len : sizeof(buf) - 1),
                 line);
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "  %s  ", verdict);
        if (strncmp(buf, prefix, strlen(prefix)) == 0 && strstr(buf, a) != NULL &&
            (b == NULL || strstr(buf, b) != NULL))
            return;
        line = end ? end + 1 : NULL;
    }
    fail_msg("no %s line with \"%s\"%s%s in:\n%s", verdict, a, b ? " and " : "", b ? b : "",
             report);
}

static void expect_conformant(const char *name) {
    const run_result *r = run(plugin(name));
    if (r->status != 0)
        fail_msg("%s: exit %d\n%s\n%s", name, r->status, r->out, r->err);
    expect_contains(r->out, "RESULT: CONFORMANT");
    expect_contains(r->out, " 0 failed");
}

static void dev_cpu_conforms(void **state) {
    (void)state;
    expect_conformant("dev_cpu");
    expect_line(result.out, "PASS", "does not link libfloe", NULL);
    expect_line(result.out, "PASS", "exports only floe_plugin_dev_cpu_get_desc", NULL);
    /* The device battery ran, every case of it. */
    expect_line(result.out, "PASS", "1 B to 1 MiB", NULL);
    expect_line(result.out, "PASS", "64 MiB round trip", NULL);
    expect_line(result.out, "PASS", "zero-byte copies", NULL);
    expect_line(result.out, "PASS", "8 threads", NULL);
    expect_line(result.out, "PASS", "impossible allocation: RESOURCE_EXHAUSTED", NULL);
    expect_line(result.out, "PASS", "memory_stats follows", NULL);
}

static void ops_math_conforms(void **state) {
    (void)state;
    expect_conformant("ops_math");
    /* Kernels were run, not only listed. */
    expect_line(result.out, "PASS", "AddV2 on CPU", "cases agree");
    expect_line(result.out, "PASS", "MatMul on CPU", "cases agree");
}

static void ops_nn_conforms(void **state) {
    (void)state;
    expect_conformant("ops_nn");
    expect_line(result.out, "PASS", "Relu on CPU", "cases agree");
}

/* The other in-tree plugins, where this build has them: a filesystem, a transport, and a
 * GPU device plugin (skipped by its own score() on a machine without a GPU: conformant,
 * with a SKIP line). */
static void other_in_tree_plugins_conform(void **state) {
    static const char *const names[] = {"fs_s3", "dist_grpc", "dev_cuda"};
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/plugins/%s/floe_%s.so", getenv("FLOE_BUILD_ROOT"),
                 names[i], names[i]);
        if (access(path, R_OK) != 0) {
            printf("%s: not built here\n", names[i]);
            continue;
        }
        expect_conformant(names[i]);
        printf("%s: conformant\n", names[i]);
    }
}

static void broken_plugin_fails_clearly(void **state) {
    const run_result *r;
    (void)state;
    r = run(fixture("fx_broken"));
    if (r->status != 1)
        fail_msg("fx_broken: exit %d, expected 1\n%s\n%s", r->status, r->out, r->err);
    expect_contains(r->out, "RESULT: NOT CONFORMANT");
    /* Wrong values against the reference (ops_math's AddV2). */
    expect_line(r->out, "FAIL", "AddV2 on CPU: f32 matching [3,4]: output 0 element", "reference");
    /* The crash is reported, and the cases after it still ran. */
    /* (signal 11 normally; under UBSan's halt_on_error the child exits with a status) */
    expect_line(r->out, "FAIL", "AddV2 on CPU: f32 zero-size [0,4]", "never crash");
    expect_line(r->out, "FAIL", "AddV2 on CPU: f32", "of 9 cases failed");
    /* The lying shape function. */
    expect_line(r->out, "FAIL", "FxBadShape on CPU", "the shape function says [1]");
    /* The device battery. */
    expect_line(r->out, "FAIL", "not 64-byte aligned", NULL);
    expect_line(r->out, "FAIL", "round trip differs at byte 67108863", NULL);
    expect_line(r->out, "FAIL", "alloc(SIZE_MAX/2) succeeded", NULL);
    /* And the warnings on its descriptor. */
    expect_line(r->out, "WARN", "version '1' is not MAJOR.MINOR.PATCH", NULL);
}

static void broken_plugin_json(void **state) {
    const run_result *r;
    (void)state;
    r = run("--json --timeout 60 " /* also checks the option */);
    assert_int_equal(r->status, 2); /* no file */
    char args[4200];
    snprintf(args, sizeof(args), "--json %s", fixture("fx_broken"));
    r = run(args);
    assert_int_equal(r->status, 1);
    expect_contains(r->out, "{\"plugin\": \"fx_broken\"");
    expect_contains(r->out, "\"conformant\": false");
    expect_contains(r->out, "{\"result\": \"FAIL\", \"section\": \"kernel AddV2 on CPU\"");
}

/* A hang is reported as such (the child killed after --timeout), and the cases after it
 * still run. */
static void hanging_kernel_is_reported(void **state) {
    char args[4200];
    (void)state;
    snprintf(args, sizeof(args), "--timeout 3 %s", fixture("fx_hang"));
    const run_result *r = run(args);
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "FxHang on CPU: f32 rank 0", "hung: killed after 3 s");
    expect_line(r->out, "FAIL", "FxHang on CPU: f32", "1 of 8 cases failed");
}

static void unloadable_plugins_fail(void **state) {
    const run_result *r;
    (void)state;
    r = run(fixture("fx_init_fail"));
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "init() failed: UNAVAILABLE", "no widget attached");

    r = run(fixture("fx_major"));
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "built for plugin ABI 2.0", NULL);

    r = run(fixture("fx_noentry"));
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "entry symbol floe_plugin_fx_noentry_get_desc not found", NULL);

    /* Read from the ELF file: linking libfloe fails, an extra export warns. */
    r = run(fixture("fx_leaky"));
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "links libfloe.so", "host table");
    expect_line(r->out, "WARN", "exports 1 symbol(s) besides floe_plugin_fx_leaky_get_desc",
                "fx_leaky_helper");

    r = run(fixture("fx_null_member"));
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "vendor is missing", NULL);
}

/* A plugin built against the oldest layout of the descriptor conforms (with a warning). */
static void old_minor_plugin_conforms(void **state) {
    const run_result *r;
    (void)state;
    r = run(fixture("fx_old_minor"));
    if (r->status != 0)
        fail_msg("fx_old_minor: exit %d\n%s", r->status, r->out);
    expect_line(r->out, "PASS", "loaded by libfloe", NULL);
    /* And one compiled against the frozen 1.0 headers, with a device and kernels on it. */
    r = run(fixture("fx_prev_minor"));
    if (r->status != 0)
        fail_msg("fx_prev_minor: exit %d\n%s", r->status, r->out);
    expect_line(r->out, "PASS", "FxPrevAxpy on FXPREV", "against the op on CPU:0");
    expect_line(r->out, "PASS", "64 MiB round trip", NULL);
}

static void usage_errors(void **state) {
    const run_result *r;
    char path[] = "/tmp/floe_conf_notso_XXXXXX";
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not an ELF file\n", 16), 16);
    close(fd);

    r = run("");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "needs a plugin file");
    r = run("--bogus x.so");
    assert_int_equal(r->status, 2);
    r = run("--timeout 0 x.so");
    assert_int_equal(r->status, 2);
    r = run("--help");
    assert_int_equal(r->status, 0);
    expect_contains(r->out, "usage: floe conformance");
    r = run("/nonexistent/floe_x.so");
    assert_int_equal(r->status, 1);
    expect_contains(r->err, "cannot read");
    /* Not a plugin name, then not a shared object. */
    char args[400];
    snprintf(args, sizeof(args), "'%s'", path);
    r = run(args);
    assert_int_equal(r->status, 1);
    expect_contains(r->err, "not a plugin file name");
    char so[300];
    snprintf(so, sizeof(so), "%s.d", path);
    assert_int_equal(mkdir(so, 0700), 0);
    snprintf(so, sizeof(so), "%s.d/floe_junk.so", path);
    assert_int_equal(rename(path, so), 0);
    snprintf(args, sizeof(args), "'%s'", so);
    r = run(args);
    assert_int_equal(r->status, 1);
    expect_line(r->out, "FAIL", "dlopen failed", NULL);
    unlink(so);
    snprintf(so, sizeof(so), "%s.d", path);
    rmdir(so);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dev_cpu_conforms),
        cmocka_unit_test(ops_math_conforms),
        cmocka_unit_test(ops_nn_conforms),
        cmocka_unit_test(other_in_tree_plugins_conform),
        cmocka_unit_test(broken_plugin_fails_clearly),
        cmocka_unit_test(broken_plugin_json),
        cmocka_unit_test(hanging_kernel_is_reported),
        cmocka_unit_test(unloadable_plugins_fail),
        cmocka_unit_test(old_minor_plugin_conforms),
        cmocka_unit_test(usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
