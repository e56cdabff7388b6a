/*
 * test_status.c - status names, the thread-local last-error message, and the version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <floe/floe.h>

static void status_str_uses_grpc_names(void **state) {
    static const char *names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    for (int i = 0; i <= 16; i++)
        assert_string_equal(floe_status_str((floe_status)i), names[i]);
    assert_string_equal(floe_status_str((floe_status)17), "UNKNOWN_STATUS");
    assert_string_equal(floe_status_str((floe_status)-1), "UNKNOWN_STATUS");
}

static void status_values_are_grpc_codes(void **state) {
    assert_int_equal(FLOE_OK, 0);
    assert_int_equal(FLOE_INVALID_ARGUMENT, 3);
    assert_int_equal(FLOE_NOT_FOUND, 5);
    assert_int_equal(FLOE_RESOURCE_EXHAUSTED, 8);
    assert_int_equal(FLOE_UNIMPLEMENTED, 12);
    assert_int_equal(FLOE_UNAUTHENTICATED, 16);
}

static void last_error_reports_the_failure(void **state) {
    floe_tensor *t = NULL;
    int64_t shape[1] = {-5};
    assert_non_null(floe_last_error());
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &t), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "negative"));
    assert_non_null(strstr(floe_last_error(), "-5"));
    /* A later failure replaces the message. */
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 9, &t), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "rank 9"));
    assert_null(strstr(floe_last_error(), "negative"));
}

static void *fail_on_thread(void *arg) {
    floe_tensor *t = NULL;
    int64_t shape[1] = {-7};
    floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &t);
    snprintf(arg, 256, "%s", floe_last_error());
    return NULL;
}

static void last_error_is_per_thread(void **state) {
    floe_tensor *t = NULL;
    char other[256] = "";
    pthread_t th;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, NULL, -1, &t), FLOE_INVALID_ARGUMENT);
    char mine[256];
    snprintf(mine, sizeof(mine), "%s", floe_last_error());
    assert_int_equal(pthread_create(&th, NULL, fail_on_thread, other), 0);
    pthread_join(th, NULL);
    assert_non_null(strstr(other, "-7"));
    assert_string_equal(floe_last_error(), mine);
}

static void long_messages_are_truncated_safely(void **state) {
    char path[4096];
    void *data = NULL;
    size_t size = 0;
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_not_equal(floe_fs_read_all(NULL, path, 0, &data, &size), FLOE_OK);
    size_t len = strlen(floe_last_error());
    assert_true(len > 0 && len < 4096);
}

static void version_matches_header(void **state) {
    char expect[32];
    snprintf(expect, sizeof(expect), "%d.%d.%d", FLOE_VERSION_MAJOR, FLOE_VERSION_MINOR,
             FLOE_VERSION_PATCH);
    assert_string_equal(floe_version(), expect);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_str_uses_grpc_names),
        cmocka_unit_test(status_values_are_grpc_codes),
        cmocka_unit_test(last_error_reports_the_failure),
        cmocka_unit_test(last_error_is_per_thread),
        cmocka_unit_test(long_messages_are_truncated_safely),
        cmocka_unit_test(version_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
