/*
 * test_oom.c - SQLite's out-of-memory loop over the core's allocating calls.
 *
 * For N = 1, 2, ... the Nth allocation from the call is made to fail (once, then in a
 * second pass persistently) until the call succeeds without meeting a failure.  Every
 * failing run must return FLOE_RESOURCE_EXHAUSTED, set its out-parameters to their
 * empty values, leave the objects it was given unchanged, and leak nothing (the ASan
 * build's LeakSanitizer checks that at exit).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <floe/floe.h>
#include <floe/experimental/testing.h>

/* One allocating operation under test: returns its status; @arg is its fixture. */
typedef floe_status (*oom_op)(void *arg);

/* Runs @op under injection until it succeeds; returns the number of failing runs. */
static int oom_loop(oom_op op, void *arg, void (*check_failed)(void *arg),
                    void (*undo_success)(void *arg)) {
    int failing_runs = 0;
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (int64_t n = 1;; n++) {
            assert_true(n < 10000);
            floe_testing_fail_alloc(n, persistent);
            floe_status st = op(arg);
            int64_t failures = floe_testing_alloc_failures();
            floe_testing_fail_alloc(0, 0);
            if (failures == 0) {
                assert_int_equal(st, FLOE_OK);
                if (undo_success != NULL)
                    undo_success(arg);
                break;
            }
            if (st != FLOE_RESOURCE_EXHAUSTED)
                fail_msg("allocation %d failed (%s) but the call returned %s: %s", (int)n,
                         persistent ? "persistent" : "once", floe_status_str(st),
                         floe_last_error());
            if (check_failed != NULL)
                check_failed(arg);
            failing_runs++;
        }
    }
    return failing_runs;
}

static void injection_counts_failures(void **state) {
    floe_tensor *t = NULL;
    int64_t shape[1] = {4};
    floe_testing_fail_alloc(1, 0);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &t), FLOE_RESOURCE_EXHAUSTED);
    assert_int_equal(floe_testing_alloc_failures(), 1);
    assert_null(t);
    assert_non_null(strstr(floe_last_error(), "out of memory"));
    /* Once: the next allocation succeeds. */
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &t), FLOE_OK);
    floe_tensor_unref(t);
    floe_testing_fail_alloc(0, 0);
    assert_int_equal(floe_testing_alloc_failures(), 0);
}

/* ---- Tensors ----------------------------------------------------------------------------- */

typedef struct tensor_fix {
    floe_dtype dt;
    floe_tensor *out;
} tensor_fix;

static floe_status op_tensor_new(void *arg) {
    tensor_fix *f = arg;
    int64_t shape[2] = {3, 5};
    f->out = (floe_tensor *)f;                     /* poison */
    return floe_tensor_new(f->dt, shape, 2, &f->out);
}

static void tensor_check_failed(void *arg) {
    assert_null(((tensor_fix *)arg)->out);
}

static void tensor_undo(void *arg) {
    tensor_fix *f = arg;
    assert_non_null(f->out);
    floe_tensor_unref(f->out);
}

static void tensor_new_oom(void **state) {
    tensor_fix f = {FLOE_DTYPE_F32, NULL};
    assert_true(oom_loop(op_tensor_new, &f, tensor_check_failed, tensor_undo) >= 2);
    f.dt = FLOE_DTYPE_STRING;
    assert_true(oom_loop(op_tensor_new, &f, tensor_check_failed, tensor_undo) >= 2);
}

static floe_status op_reshape(void *arg) {
    tensor_fix *f = arg;
    int64_t shape[1] = {6};
    floe_tensor *src = NULL;
    f->out = NULL;
    floe_status st = floe_tensor_new(FLOE_DTYPE_I32, (int64_t[]){2, 3}, 2, &src);
    if (st != FLOE_OK)
        return st;
    st = floe_tensor_reshape(src, shape, 1, &f->out);
    floe_tensor_unref(src);
    return st;
}

static void tensor_reshape_oom(void **state) {
    tensor_fix f = {FLOE_DTYPE_I32, NULL};
    assert_true(oom_loop(op_reshape, &f, tensor_check_failed, tensor_undo) >= 2);
}

typedef struct string_fix {
    floe_tensor *t;
} string_fix;

static floe_status op_set_string(void *arg) {
    string_fix *f = arg;
    return floe_tensor_set_string(f->t, 1, "new value", 9);
}

static void string_check_failed(void *arg) {
    string_fix *f = arg;
    const char *b = NULL;
    size_t n = 0;
    /* The element keeps its old value. */
    assert_int_equal(floe_tensor_get_string(f->t, 1, &b, &n), FLOE_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(b, "old", 3);
}

static void string_undo(void *arg) {
    string_fix *f = arg;
    assert_int_equal(floe_tensor_set_string(f->t, 1, "old", 3), FLOE_OK);
}

static void string_set_oom(void **state) {
    string_fix f = {NULL};
    int64_t shape[1] = {3};
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, shape, 1, &f.t), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(f.t, 1, "old", 3), FLOE_OK);
    assert_true(oom_loop(op_set_string, &f, string_check_failed, string_undo) >= 2);
    floe_tensor_unref(f.t);
}

/* ---- Attribute sets ------------------------------------------------------------------------- */

typedef struct attrs_fix {
    floe_attrs *a;
    int which;
    floe_tensor *t;
} attrs_fix;

static floe_status op_attrs_set(void *arg) {
    attrs_fix *f = arg;
    static const char *strs[3] = {"alpha", "beta", "gamma"};
    int64_t iv[4] = {1, 2, 3, 4};
    int64_t dims[2] = {2, -1};
    floe_shape shapes[1] = {{1, 0, {7}}};
    floe_tensor *ts[2] = {f->t, f->t};
    switch (f->which) {
    case 0: return floe_attrs_set_int(f->a, "new_int", 5);
    case 1: return floe_attrs_set_string(f->a, "s", "a string value", 14);
    case 2: return floe_attrs_set_int_list(f->a, "il", iv, 4);
    case 3: return floe_attrs_set_string_list(f->a, "sl", strs, NULL, 3);
    case 4: return floe_attrs_set_shape(f->a, "shape", dims, 2);
    case 5: return floe_attrs_set_tensor_list(f->a, "tl", ts, 2);
    case 6: return floe_attrs_set_shape_list(f->a, "shl", shapes, 1);
    default: {
        floe_attrs *b = NULL;
        floe_status st = floe_attrs_new(&b);
        if (st == FLOE_OK)
            st = floe_attrs_set_string(b, "x", "y", 1);
        floe_attrs_free(b);
        return st;
    }
    }
}

static void attrs_check_failed(void *arg) {
    attrs_fix *f = arg;
    int64_t v = 0;
    /* Only the attribute set before the loop is there, unchanged. */
    assert_int_equal(floe_attrs_count(f->a), 1);
    assert_int_equal(floe_attrs_get_int(f->a, "existing", &v), FLOE_OK);
    assert_int_equal(v, 42);
}

static void attrs_undo(void *arg) {
    attrs_fix *f = arg;
    floe_attrs_free(f->a);
    f->a = NULL;
    assert_int_equal(floe_attrs_new(&f->a), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(f->a, "existing", 42), FLOE_OK);
}

static void attrs_set_oom(void **state) {
    attrs_fix f = {NULL, 0, NULL};
    assert_int_equal(floe_tensor_new_scalar_f32(1.0f, &f.t), FLOE_OK);
    for (f.which = 0; f.which <= 7; f.which++) {
        assert_int_equal(floe_attrs_new(&f.a), FLOE_OK);
        assert_int_equal(floe_attrs_set_int(f.a, "existing", 42), FLOE_OK);
        assert_true(oom_loop(op_attrs_set, &f, f.which == 7 ? NULL : attrs_check_failed,
                             attrs_undo) >= 1);
        floe_attrs_free(f.a);
    }
    floe_tensor_unref(f.t);
}

/* ---- Files ---------------------------------------------------------------------------------- */

typedef struct fs_fix {
    char path[256];
    void *data;
    size_t size;
} fs_fix;

static floe_status op_read_all(void *arg) {
    fs_fix *f = arg;
    return floe_fs_read_all(NULL, f->path, 0, &f->data, &f->size);
}

static void fs_check_failed(void *arg) {
    fs_fix *f = arg;
    assert_null(f->data);
    assert_int_equal(f->size, 0);
}

static void fs_undo(void *arg) {
    fs_fix *f = arg;
    assert_int_equal(f->size, 100000);
    assert_int_equal(((char *)f->data)[99999], 'z');
    free(f->data);
    f->data = NULL;
}

static floe_status op_write_all(void *arg) {
    fs_fix *f = arg;
    return floe_fs_write_all(NULL, f->path, "replacement", 11);
}

static void fs_write_check_failed(void *arg) {
    fs_fix *f = arg;
    void *data = NULL;
    size_t size = 0;
    /* The old content is still there, whole. */
    assert_int_equal(floe_fs_read_all(NULL, f->path, 0, &data, &size), FLOE_OK);
    assert_int_equal(size, 100000);
    free(data);
}

static void fs_write_undo(void *arg) {
    fs_fix *f = arg;
    char *content = malloc(100000);
    memset(content, 'z', 100000);
    assert_int_equal(floe_fs_write_all(NULL, f->path, content, 100000), FLOE_OK);
    free(content);
}

static void fs_oom(void **state) {
    fs_fix f;
    const char *tmp = getenv("TMPDIR");
    snprintf(f.path, sizeof(f.path), "%s/floe_test_oom_%ld", tmp != NULL ? tmp : "/tmp",
             (long)getpid());
    fs_write_undo(&f);
    f.data = NULL;
    f.size = 0;
    assert_true(oom_loop(op_read_all, &f, fs_check_failed, fs_undo) >= 2);
    assert_true(oom_loop(op_write_all, &f, fs_write_check_failed, fs_write_undo) >= 2);
    unlink(f.path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(injection_counts_failures),
        cmocka_unit_test(tensor_new_oom),
        cmocka_unit_test(tensor_reshape_oom),
        cmocka_unit_test(string_set_oom),
        cmocka_unit_test(attrs_set_oom),
        cmocka_unit_test(fs_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
