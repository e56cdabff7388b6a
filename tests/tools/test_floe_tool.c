/*
 * test_floe_tool.c - runs the built `floe` tool ($FLOE_BUILD_ROOT/tools/floe) with
 * popen() and checks its output, its messages on stderr and its exit status (0 ok,
 * 1 runtime error, 2 usage).  Plugins come from the fixture directory
 * (FLOE_TEST_FIXTURES), named explicitly with --plugin-path, the system directory off.
 */
#include "test_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_result {
    int status; /* exit status, or -1 if the tool did not exit normally */
    char out[32768];
    char err[8192];
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

/* Runs "floe @args" with FLOE_PLUGIN_SYSTEM_PATH="" and @env (may be ""). */
static const run_result *run(const char *env, const char *args) {
    const char *root = getenv("FLOE_BUILD_ROOT");
    char errpath[] = "/tmp/floe_tool_err_XXXXXX", cmd[8192];
    int fd = mkstemp(errpath), st;
    FILE *p;
    size_t n;

    if (root == NULL)
        fail_msg("FLOE_BUILD_ROOT is not set (run through meson test)");
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "env FLOE_PLUGIN_SYSTEM_PATH= FLOE_LOG_LEVEL=error %s "
             "'%s/tools/floe' %s 2>'%s'",
             env, root, args, errpath);
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

/* "--plugin-path <fixtures>/floe_fx_a.so:..." for a NULL-terminated list of names. */
static const char *plugin_args(const char *first, ...) {
    static char buf[4096];
    const char *dir = getenv("FLOE_TEST_FIXTURES");
    va_list ap;
    if (dir == NULL)
        fail_msg("FLOE_TEST_FIXTURES is not set");
    snprintf(buf, sizeof(buf), "--no-system --plugin-path '");
    va_start(ap, first);
    for (const char *n = first; n != NULL; n = va_arg(ap, const char *)) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof(buf) - len, "%s%s/floe_fx_%s.so", n == first ? "" : ":", dir, n);
    }
    va_end(ap);
    strcat(buf, "'");
    return buf;
}

static void expect_contains(const char *hay, const char *needle) {
    if (strstr(hay, needle) == NULL)
        fail_msg("output does not contain \"%s\":\n%s", needle, hay);
}

/* ---- Tests ------------------------------------------------------------------------- */

static void tool_version(void **state) {
    (void)state;
    const run_result *r = run("", "version");
    assert_int_equal(r->status, 0);
    expect_contains(r->out, floe_version());
    expect_contains(r->out, "plugin ABI 1.0");
    expect_contains(r->out, "plugin directory:");
    assert_string_equal(r->err, "");
    r = run("", "--version");
    assert_int_equal(r->status, 0);
    expect_contains(r->out, floe_version());
}

static void tool_help_for_every_command(void **state) {
    (void)state;
    static const char *const cmds[] = {"", "plugins", "ops", "devices", "version"};
    char args[64], want[64];
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        for (int form = 0; form < 2; form++) {
            const run_result *r;
            snprintf(args, sizeof(args), "%s %s", cmds[i], form ? "-h" : "--help");
            r = run("", args);
            if (r->status != 0)
                fail_msg("floe %s: exit %d", args, r->status);
            snprintf(want, sizeof(want), "usage: floe %s", cmds[i]);
            expect_contains(r->out, want);
            assert_string_equal(r->err, "");
        }
    }
}

static void tool_usage_errors_exit_2(void **state) {
    (void)state;
    const run_result *r = run("", "frobnicate");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "unknown command 'frobnicate'");
    expect_contains(r->err, "usage: floe");
    assert_string_equal(r->out, "");

    r = run("", "");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "no command given");
    r = run("", "--bogus plugins");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "unknown option '--bogus'");
    r = run("", "ops A B");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "unexpected argument 'B'");
    r = run("", "devices --all");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "unknown option '--all'");
    r = run("", "--plugin-path");
    assert_int_equal(r->status, 2);
    expect_contains(r->err, "needs a path");
}

static void tool_plugins_lists_loaded_skipped_rejected(void **state) {
    (void)state;
    char args[4200];
    const run_result *r;

    snprintf(args, sizeof(args), "%s plugins",
             plugin_args("good", "major", "score0", "dup_op", NULL));
    r = run("", args);
    assert_int_equal(r->status, 0);
    expect_contains(r->out, "loaded    fx_good 0.1.0 (plugin ABI 1.0)");
    expect_contains(r->out, "registered: 1 ops, 2 kernels, 1 devices, 1 filesystems");
    expect_contains(r->out, "note: fixture note: all good");
    expect_contains(r->out, "rejected  fx_major (version unknown) (plugin ABI 2.0)");
    expect_contains(r->out, "floe_fx_major.so");
    expect_contains(r->out, "built for plugin ABI major 2");
    expect_contains(r->out, "skipped   fx_score0 0.2.0");
    expect_contains(r->out, "no hardware here");
    expect_contains(r->out, "rejected  fx_dup_op");
    expect_contains(r->out, "op 'FixtureAddOne' is already registered by plugin 'fx_good'");
    expect_contains(r->out, "4 plugins: 1 loaded, 1 skipped, 2 rejected");
    /* The report is the listing; nothing is logged on top of it. */
    assert_string_equal(r->err, "");

    /* The environment works as for any program. */
    r = run("FLOE_PLUGIN_DENY=fx_good", args);
    assert_int_equal(r->status, 0);
    expect_contains(r->out, "skipped   fx_good");
    expect_contains(r->out, "deny list");
}

static void tool_ops_lists_and_describes(void **state) {
    (void)state;
    char args[4200];
    const run_result *r;

    snprintf(args, sizeof(args), "%s ops", plugin_args("good", "old_minor", "kernel_over", NULL));
    r = run("", args);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "FixtureAddOne\nFixtureOld\n");

    snprintf(args, sizeof(args), "%s ops FixtureAddOne",
             plugin_args("good", "old_minor", "kernel_over", NULL));
    r = run("", args);
    assert_int_equal(r->status, 0);
    expect_contains(r->out, "op FixtureAddOne");
    expect_contains(r->out, "defined by: fx_good 0.1.0");
    expect_contains(r->out, "x: T");
    expect_contains(r->out, "T: {f32, i32}");
    expect_contains(r->out, "CPU:\n      priority 0 (preferred), plugin fx_good");
    expect_contains(r->out, "FIXTURE:\n      priority 10 (preferred), plugin fx_kernel_over");

    snprintf(args, sizeof(args), "%s ops NoSuchOp", plugin_args("good", NULL));
    r = run("", args);
    assert_int_equal(r->status, 1);
    expect_contains(r->err, "no op named 'NoSuchOp'");
    assert_string_equal(r->out, "");
}

static void tool_devices(void **state) {
    (void)state;
    char args[4200];
    const run_result *r;

    snprintf(args, sizeof(args), "%s devices", plugin_args("good", NULL));
    r = run("", args);
    assert_int_equal(r->status, 0);
    expect_contains(r->out, "/device:FIXTURE:0");
    expect_contains(r->out, "plugin fx_good");
    expect_contains(r->out, "loader-test fixture device");

    snprintf(args, sizeof(args), "%s devices", plugin_args("old_minor", NULL));
    r = run("", args);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "");
    expect_contains(r->err, "no devices registered");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tool_version),
        cmocka_unit_test(tool_help_for_every_command),
        cmocka_unit_test(tool_usage_errors_exit_2),
        cmocka_unit_test(tool_plugins_lists_loaded_skipped_rejected),
        cmocka_unit_test(tool_ops_lists_and_describes),
        cmocka_unit_test(tool_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
