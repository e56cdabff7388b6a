/*
 * test_floe_run.c - `floe run MODEL.pb --input NAME=FILE.npy --output NAME`, the built
 * tool run as a user runs it (popen), on the TensorFlow fixtures of tests/fixtures/tf.
 *
 * Covers: --output-file writing TensorFlow's numbers (within 1e-5 relative); printed
 * outputs; "node:N" names; --time; usage errors (exit 2) and runtime errors (exit 1)
 * whose messages name what was wrong: a missing model, a truncated model, an op Floe
 * lacks (op and node named), an unknown node, an output index out of range, an input of
 * the wrong dtype or shape, a missing .npy.
 */
#include "test_common.h"

#include <floe/npy.h>
#include <floe/tensor.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_result {
    int status;
    char out[65536];
    char err[65536];
} run_result;

static run_result result;
static char fixture_dir[2048];
static char tmpdir[] = "/tmp/floe_run_test_XXXXXX";

static void read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Runs "floe run @args" (printf-style), capturing stdout, stderr and the exit status. */
static const run_result *run(const char *fmt, ...) FLOE_PRINTF(1, 2);
static const run_result *run(const char *fmt, ...) {
    const char *root = getenv("FLOE_BUILD_ROOT");
    char args[8192], cmd[16384], errpath[4096];
    va_list ap;

    if (root == NULL)
        fail_msg("FLOE_BUILD_ROOT is not set (run through meson test)");
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof(cmd), "env FLOE_PLUGIN_SYSTEM_PATH= '%s/tools/floe' run %s 2>'%s'",
             root, args, errpath);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(result.out, 1, sizeof(result.out) - 1, p);
    result.out[n] = '\0';
    int st = pclose(p);
    result.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_file(errpath, result.err, sizeof(result.err));
    return &result;
}

static void expect(const run_result *r, int status, const char *in_out, const char *in_err) {
    if (r->status != status || (in_out && !strstr(r->out, in_out)) ||
        (in_err && !strstr(r->err, in_err)))
        fail_msg("exit %d (wanted %d)\nstdout: %s\nstderr: %s\nwanted in stdout: %s\n"
                 "wanted in stderr: %s", r->status, status, r->out, r->err,
                 in_out ? in_out : "-", in_err ? in_err : "-");
}

static void floe_run_writes_tensorflows_numbers(void **state) {
    floe_context *ctx = *state;
    const char *models[] = {"mlp", "cnn", "resnet", "keras"};
    for (int m = 0; m < 4; m++) {
        char out[4096], want_path[4096];
        snprintf(out, sizeof(out), "%s/%s_out.npy", tmpdir, models[m]);
        expect(run("%s/%s.pb --input x=%s/%s_x.npy --output-file Identity=%s", fixture_dir,
                   models[m], fixture_dir, models[m], out),
               0, NULL, NULL);
        floe_tensor *got, *want;
        assert_int_equal(floe_npy_load(ctx, out, 0, &got), FLOE_OK);
        snprintf(want_path, sizeof(want_path), "%s/%s_y.npy", fixture_dir, models[m]);
        assert_int_equal(floe_npy_load(ctx, want_path, 0, &want), FLOE_OK);
        assert_int_equal(floe_tensor_num_elements(got), floe_tensor_num_elements(want));
        const float *a = floe_tensor_data(got), *b = floe_tensor_data(want);
        for (int64_t i = 0; i < floe_tensor_num_elements(got); i++)
            if (!(fabs((double)a[i] - b[i]) <= 1e-7 + 1e-5 * fabs((double)b[i])))
                fail_msg("%s element %lld: %.9g vs TensorFlow %.9g", models[m], (long long)i,
                         (double)a[i], (double)b[i]);
        floe_tensor_unref(got);
        floe_tensor_unref(want);
        unlink(out);
    }
}

static void floe_run_prints_outputs(void **state) {
    (void)state;
    expect(run("%s/mlp.pb --input x=%s/mlp_x.npy --output Identity --output MatMul:0",
               fixture_dir, fixture_dir),
           0, "Identity: f32 [2, 4]\n", NULL);
    assert_non_null(strstr(result.out, "MatMul:0: f32 [2, 16]\n"));
    /* Two rows of four probabilities after the header line. */
    const char *rows = strchr(strstr(result.out, "Identity:"), '\n') + 1;
    float p[8];
    assert_int_equal(sscanf(rows, "%f %f %f %f %f %f %f %f", &p[0], &p[1], &p[2], &p[3],
                            &p[4], &p[5], &p[6], &p[7]), 8);
    assert_true(fabsf(p[0] + p[1] + p[2] + p[3] - 1) < 1e-5f);
    expect(run("%s/cnn.pb --input x=%s/cnn_x.npy --output Identity --time 3", fixture_dir,
               fixture_dir),
           0, "Identity: f32 [2, 3]", "3 runs: min ");
}

static void floe_run_usage_errors(void **state) {
    (void)state;
    expect(run("--help"), 0, "usage: floe run MODEL.pb", NULL);
    expect(run("%s/mlp.pb --input x=%s/mlp_x.npy", fixture_dir, fixture_dir), 2, NULL,
           "no --output");
    expect(run("--output y"), 2, NULL, "no MODEL.pb");
    expect(run("a.pb b.pb --output y"), 2, NULL, "unexpected argument 'b.pb'");
    expect(run("a.pb --input x --output y"), 2, NULL, "expected NAME=FILE.npy");
    expect(run("a.pb --output"), 2, NULL, "--output needs a value");
    expect(run("a.pb --output y --time 0"), 2, NULL, "--time needs a count");
    expect(run("a.pb --output y --frobnicate 1"), 2, NULL, "unknown option '--frobnicate'");
}

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static void floe_run_runtime_errors_name_the_problem(void **state) {
    floe_context *ctx = *state;
    char path[4096], npy[4096];

    expect(run("%s/nothing.pb --output y", tmpdir), 1, NULL, "nothing.pb");
    expect(run("%s/mlp.pb --input x=%s/mlp_x.npy --output nope", fixture_dir, fixture_dir), 1,
           NULL, "the graph has no node 'nope'");
    expect(run("%s/mlp.pb --input x=%s/mlp_x.npy --output Identity:3", fixture_dir, fixture_dir),
           1, NULL, "has 1 output, not 4");
    expect(run("%s/mlp.pb --input x=%s/none.npy --output Identity", fixture_dir, tmpdir), 1,
           NULL, "input 'x'");

    /* A truncated model. */
    snprintf(path, sizeof(path), "%s/mlp.pb", fixture_dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/cut.pb", tmpdir);
    write_bytes(path, buf, n / 2 + 3);
    expect(run("%s --output Identity", path), 1, NULL, "malformed GraphDef");

    /* An op Floe lacks: the same GraphDef with the op field (2, length 7) "Softmax"
     * renamed in place. */
    char *sm = memmem(buf, n, "\x12\x07Softmax", 9);
    assert_non_null(sm);
    memcpy(sm + 2, "Softmux", 7);
    snprintf(path, sizeof(path), "%s/mux.pb", tmpdir);
    write_bytes(path, buf, n);
    expect(run("%s --input x=%s/mlp_x.npy --output Identity", path, fixture_dir), 1, NULL,
           "op 'Softmux' is not registered");
    assert_non_null(strstr(result.err, "node 'Softmax'"));

    /* Inputs of the wrong dtype or shape. */
    int64_t shape[2] = {2, 8}, bad_shape[2] = {2, 7};
    floe_tensor *t = tc_rand_tensor(FLOE_DTYPE_F64, shape, 2, 0, 1, 1);
    snprintf(npy, sizeof(npy), "%s/f64.npy", tmpdir);
    assert_int_equal(floe_npy_save(ctx, npy, t), FLOE_OK);
    floe_tensor_unref(t);
    expect(run("%s/mlp.pb --input x=%s --output Identity", fixture_dir, npy), 1, NULL,
           "the file holds f64, node 'x' (Placeholder) takes f32");
    t = tc_rand_tensor(FLOE_DTYPE_F32, bad_shape, 2, 0, 1, 1);
    snprintf(npy, sizeof(npy), "%s/bad.npy", tmpdir);
    assert_int_equal(floe_npy_save(ctx, npy, t), FLOE_OK);
    floe_tensor_unref(t);
    expect(run("%s/mlp.pb --input x=%s --output Identity", fixture_dir, npy), 1, NULL,
           "shape [2,7] does not fit node 'x'");
}

static int setup(void **state) {
    const char *root = getenv("FLOE_SOURCE_ROOT");
    if (root == NULL || mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/tests/fixtures/tf", root);
    return tc_setup_context(state);
}

static int teardown(void **state) {
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return -1;
    return tc_teardown_context(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(floe_run_writes_tensorflows_numbers),
        cmocka_unit_test(floe_run_prints_outputs),
        cmocka_unit_test(floe_run_usage_errors),
        cmocka_unit_test(floe_run_runtime_errors_name_the_problem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
