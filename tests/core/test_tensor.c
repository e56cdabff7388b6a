/*
 * test_tensor.c - dtypes and host tensors: construction, getters, the error paths of
 * shapes (negative extents, rank, overflow), wrapping caller memory, string tensors,
 * reshapes that share buffers, host copies, and concurrent reference counting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>

#include <floe/floe.h>

/* ---- dtypes ---------------------------------------------------------------------------- */

static void dtype_sizes_and_names(void **state) {
    static const struct {
        floe_dtype dt;
        size_t size;
        const char *name;
    } cases[] = {
        {FLOE_DTYPE_F32, 4, "f32"},   {FLOE_DTYPE_F64, 8, "f64"},
        {FLOE_DTYPE_I32, 4, "i32"},   {FLOE_DTYPE_U8, 1, "u8"},
        {FLOE_DTYPE_I16, 2, "i16"},   {FLOE_DTYPE_I8, 1, "i8"},
        {FLOE_DTYPE_STRING, sizeof(floe_tstring), "string"},
        {FLOE_DTYPE_COMPLEX64, 8, "complex64"},
        {FLOE_DTYPE_I64, 8, "i64"},   {FLOE_DTYPE_BOOL, 1, "bool"},
        {FLOE_DTYPE_BF16, 2, "bf16"}, {FLOE_DTYPE_U16, 2, "u16"},
        {FLOE_DTYPE_F16, 2, "f16"},   {FLOE_DTYPE_RESOURCE, sizeof(void *), "resource"},
        {FLOE_DTYPE_U32, 4, "u32"},   {FLOE_DTYPE_U64, 8, "u64"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(floe_dtype_size(cases[i].dt), cases[i].size);
        assert_string_equal(floe_dtype_name(cases[i].dt), cases[i].name);
        assert_int_equal(floe_dtype_from_name(cases[i].name), cases[i].dt);
    }
    assert_int_equal(floe_dtype_size(FLOE_DTYPE_INVALID), 0);
    assert_int_equal(floe_dtype_size((floe_dtype)11), 0);
    assert_int_equal(floe_dtype_size((floe_dtype)1000), 0);
    assert_string_equal(floe_dtype_name((floe_dtype)11), "invalid");
    assert_string_equal(floe_dtype_name(FLOE_DTYPE_INVALID), "invalid");
}

static void dtype_from_tensorflow_names(void **state) {
    assert_int_equal(floe_dtype_from_name("float"), FLOE_DTYPE_F32);
    assert_int_equal(floe_dtype_from_name("double"), FLOE_DTYPE_F64);
    assert_int_equal(floe_dtype_from_name("half"), FLOE_DTYPE_F16);
    assert_int_equal(floe_dtype_from_name("bfloat16"), FLOE_DTYPE_BF16);
    assert_int_equal(floe_dtype_from_name("int32"), FLOE_DTYPE_I32);
    assert_int_equal(floe_dtype_from_name("int64"), FLOE_DTYPE_I64);
    assert_int_equal(floe_dtype_from_name("uint8"), FLOE_DTYPE_U8);
    assert_int_equal(floe_dtype_from_name("resource"), FLOE_DTYPE_RESOURCE);
    assert_int_equal(floe_dtype_from_name("DT_FLOAT"), FLOE_DTYPE_F32);
    assert_int_equal(floe_dtype_from_name("DT_INT64"), FLOE_DTYPE_I64);
    assert_int_equal(floe_dtype_from_name("float32"), FLOE_DTYPE_F32);
    assert_int_equal(floe_dtype_from_name("invalid"), FLOE_DTYPE_INVALID);
    assert_int_equal(floe_dtype_from_name("floaty"), FLOE_DTYPE_INVALID);
    assert_int_equal(floe_dtype_from_name(""), FLOE_DTYPE_INVALID);
    assert_int_equal(floe_dtype_from_name(NULL), FLOE_DTYPE_INVALID);
}

/* ---- Construction and getters --------------------------------------------------------- */

static void new_is_zeroed_aligned_host(void **state) {
    int64_t shape[3] = {2, 3, 5};
    floe_tensor *t = NULL;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F64, shape, 3, &t), FLOE_OK);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F64);
    assert_int_equal(floe_tensor_ndim(t), 3);
    assert_int_equal(floe_tensor_dim(t, 0), 2);
    assert_int_equal(floe_tensor_dim(t, 2), 5);
    assert_int_equal(floe_tensor_dim(t, -1), 5);
    assert_int_equal(floe_tensor_dim(t, -3), 2);
    assert_int_equal(floe_tensor_dim(t, 3), 0);
    assert_int_equal(floe_tensor_dim(t, -4), 0);
    assert_memory_equal(floe_tensor_shape(t), shape, sizeof(shape));
    assert_int_equal(floe_tensor_num_elements(t), 30);
    assert_int_equal(floe_tensor_nbytes(t), 240);
    assert_null(floe_tensor_device(t));
    const double *d = floe_tensor_data(t);
    assert_non_null(d);
    assert_int_equal((uintptr_t)d % 64, 0);
    for (int i = 0; i < 30; i++)
        assert_true(d[i] == 0.0);
    floe_tensor_unref(t);
}

static void new_scalar_and_empty(void **state) {
    floe_tensor *t = NULL;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_I32, NULL, 0, &t), FLOE_OK);
    assert_int_equal(floe_tensor_ndim(t), 0);
    assert_int_equal(floe_tensor_num_elements(t), 1);
    assert_int_equal(floe_tensor_nbytes(t), 4);
    floe_tensor_unref(t);

    int64_t shape[2] = {4, 0};
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &t), FLOE_OK);
    assert_int_equal(floe_tensor_num_elements(t), 0);
    assert_int_equal(floe_tensor_nbytes(t), 0);
    assert_null(floe_tensor_data(t));
    floe_tensor_unref(t);

    /* A zero extent makes the count 0 even when other extents are huge. */
    int64_t huge[3] = {INT64_MAX, 0, INT64_MAX};
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, huge, 3, &t), FLOE_OK);
    assert_int_equal(floe_tensor_num_elements(t), 0);
    floe_tensor_unref(t);

    assert_int_equal(floe_tensor_new_scalar_f32(2.5f, &t), FLOE_OK);
    assert_true(*(float *)floe_tensor_data(t) == 2.5f);
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_new_scalar_i32(-3, &t), FLOE_OK);
    assert_int_equal(*(int32_t *)floe_tensor_data(t), -3);
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_new_scalar_i64(INT64_MIN, &t), FLOE_OK);
    assert_int_equal(*(int64_t *)floe_tensor_data(t), INT64_MIN);
    floe_tensor_unref(t);
}

static void getters_on_null(void **state) {
    assert_int_equal(floe_tensor_dtype(NULL), FLOE_DTYPE_INVALID);
    assert_int_equal(floe_tensor_ndim(NULL), 0);
    assert_int_equal(floe_tensor_dim(NULL, 0), 0);
    assert_null(floe_tensor_shape(NULL));
    assert_int_equal(floe_tensor_num_elements(NULL), 0);
    assert_int_equal(floe_tensor_nbytes(NULL), 0);
    assert_null(floe_tensor_data(NULL));
    assert_null(floe_tensor_device(NULL));
    assert_null(floe_tensor_ref(NULL));
    floe_tensor_unref(NULL);
}

/* ---- Error paths ----------------------------------------------------------------------- */

static void expect_invalid(floe_dtype dt, const int64_t *shape, int ndim, const char *needle) {
    floe_tensor *t = (floe_tensor *)&needle;        /* poison: must come back NULL */
    assert_int_equal(floe_tensor_new(dt, shape, ndim, &t), FLOE_INVALID_ARGUMENT);
    assert_null(t);
    if (strstr(floe_last_error(), needle) == NULL)
        fail_msg("message '%s' lacks '%s'", floe_last_error(), needle);
}

static void new_rejects_bad_shapes(void **state) {
    int64_t neg[2] = {3, -1};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    int64_t bytes[1] = {(int64_t)1 << 61};      /* fits int64 elements, not f64 bytes */
    int64_t ok[1] = {2};

    expect_invalid(FLOE_DTYPE_F32, neg, 2, "negative");
    expect_invalid(FLOE_DTYPE_F32, neg, 2, "dimension 1");
    expect_invalid(FLOE_DTYPE_F32, nine, 9, "rank 9");
    expect_invalid(FLOE_DTYPE_F32, nine, -1, "rank -1");
    expect_invalid(FLOE_DTYPE_F32, big, 2, "overflows");
    expect_invalid(FLOE_DTYPE_F64, bytes, 1, "byte size");
    expect_invalid(FLOE_DTYPE_F32, NULL, 1, "NULL");
    expect_invalid(FLOE_DTYPE_INVALID, ok, 1, "dtype");
    expect_invalid((floe_dtype)12, ok, 1, "dtype");
    expect_invalid(FLOE_DTYPE_RESOURCE, ok, 1, "resource");
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, ok, 1, NULL), FLOE_INVALID_ARGUMENT);
}

/* ---- Wrap and copy ------------------------------------------------------------------------ */

typedef struct dealloc_log {
    int calls;
    void *data;
    size_t nbytes;
} dealloc_log;

static void log_dealloc(void *data, size_t nbytes, void *arg) {
    dealloc_log *l = arg;
    l->calls++;
    l->data = data;
    l->nbytes = nbytes;
}

static void wrap_uses_caller_memory(void **state) {
    float buf[7] = {1, 2, 3, 4, 5, 6, 7};
    int64_t shape[2] = {2, 3};
    dealloc_log log = {0};
    floe_tensor *t = NULL, *r = NULL;

    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_F32, shape, 2, buf, sizeof(buf), log_dealloc,
                                      &log, &t), FLOE_OK);
    assert_ptr_equal(floe_tensor_data(t), buf);
    assert_int_equal(floe_tensor_nbytes(t), 24);
    floe_tensor_ref(t);
    int64_t flat[1] = {6};
    assert_int_equal(floe_tensor_reshape(t, flat, 1, &r), FLOE_OK);
    floe_tensor_unref(t);
    floe_tensor_unref(t);
    assert_int_equal(log.calls, 0);
    floe_tensor_unref(r);
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.data, buf);
    assert_int_equal(log.nbytes, sizeof(buf));

    /* Without a deallocator the caller keeps the memory. */
    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_F32, shape, 2, buf, 24, NULL, NULL, &t), FLOE_OK);
    floe_tensor_unref(t);
}

static void wrap_rejects_bad_arguments_without_dealloc(void **state) {
    float buf[6];
    int64_t shape[2] = {2, 3};
    dealloc_log log = {0};
    floe_tensor *t = NULL;

    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_F32, shape, 2, NULL, 24, log_dealloc, &log, &t),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "NULL"));
    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_F32, shape, 2, buf, 20, log_dealloc, &log, &t),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "20"));
    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_STRING, shape, 2, buf, 96, log_dealloc, &log, &t),
                     FLOE_INVALID_ARGUMENT);
    int64_t neg[1] = {-1};
    assert_int_equal(floe_tensor_wrap(FLOE_DTYPE_F32, neg, 1, buf, 24, log_dealloc, &log, &t),
                     FLOE_INVALID_ARGUMENT);
    assert_null(t);
    assert_int_equal(log.calls, 0);
}

static void new_copy_checks_size(void **state) {
    int32_t v[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    floe_tensor *t = NULL;
    assert_int_equal(floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 1, v, sizeof(v), &t), FLOE_OK);
    assert_memory_equal(floe_tensor_data(t), v, sizeof(v));
    assert_ptr_not_equal(floe_tensor_data(t), v);
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 1, v, 12, &t),
                     FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "12 bytes"));
    assert_null(t);
    assert_int_equal(floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 1, NULL, 16, &t),
                     FLOE_INVALID_ARGUMENT);
}

/* ---- Strings ---------------------------------------------------------------------------- */

static void string_tensor_owns_elements(void **state) {
    int64_t shape[2] = {2, 2};
    floe_tensor *t = NULL, *h = NULL;
    const char *b = NULL;
    size_t n = 99;

    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, shape, 2, &t), FLOE_OK);
    assert_int_equal(floe_tensor_get_string(t, 3, &b, &n), FLOE_OK);
    assert_int_equal(n, 0);                       /* starts empty */
    assert_non_null(b);
    char src[] = "hello";
    assert_int_equal(floe_tensor_set_string(t, 0, src, 5), FLOE_OK);
    src[0] = 'J';                                 /* the tensor has its own copy */
    assert_int_equal(floe_tensor_set_string(t, 1, "a\0b", 3), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 1, "replaced", 8), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 2, "x", 1), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 2, NULL, 0), FLOE_OK);
    assert_int_equal(floe_tensor_get_string(t, 0, &b, &n), FLOE_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(b, "hello", 5);
    assert_int_equal(floe_tensor_get_string(t, 1, &b, &n), FLOE_OK);
    assert_int_equal(n, 8);
    assert_int_equal(floe_tensor_get_string(t, 2, &b, &n), FLOE_OK);
    assert_int_equal(n, 0);

    /* A host copy is deep. */
    assert_int_equal(floe_tensor_to_host(t, &h), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 0, "changed", 7), FLOE_OK);
    assert_int_equal(floe_tensor_get_string(h, 0, &b, &n), FLOE_OK);
    assert_memory_equal(b, "hello", 5);
    floe_tensor_unref(h);
    floe_tensor_unref(t);                         /* frees the elements: ASan checks */
}

static void string_errors(void **state) {
    int64_t shape[1] = {2};
    floe_tensor *t = NULL, *f = NULL;
    const char *b = "poison";
    size_t n = 5;

    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, shape, 1, &t), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(t, 2, "x", 1), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "index 2"));
    assert_int_equal(floe_tensor_set_string(t, -1, "x", 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_tensor_set_string(t, 0, NULL, 3), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_tensor_get_string(t, 5, &b, &n), FLOE_INVALID_ARGUMENT);
    assert_null(b);
    assert_int_equal(n, 0);
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &f), FLOE_OK);
    assert_int_equal(floe_tensor_set_string(f, 0, "x", 1), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "f32"));
    assert_int_equal(floe_tensor_set_string(NULL, 0, "x", 1), FLOE_INVALID_ARGUMENT);
    floe_tensor_unref(f);
    floe_tensor_unref(t);
}

/* ---- Reshape and copies ------------------------------------------------------------------- */

static void reshape_shares_buffer(void **state) {
    int64_t shape[2] = {3, 4};
    int64_t s2[3] = {2, 2, 3};
    int64_t bad[1] = {11};
    floe_tensor *t = NULL, *r = NULL, *r2 = NULL;

    assert_int_equal(floe_tensor_new(FLOE_DTYPE_I16, shape, 2, &t), FLOE_OK);
    assert_int_equal(floe_tensor_reshape(t, s2, 3, &r), FLOE_OK);
    assert_ptr_equal(floe_tensor_data(r), floe_tensor_data(t));
    assert_int_equal(floe_tensor_ndim(r), 3);
    assert_int_equal(floe_tensor_nbytes(r), 24);
    ((int16_t *)floe_tensor_data(t))[11] = 42;
    assert_int_equal(((int16_t *)floe_tensor_data(r))[11], 42);
    assert_int_equal(floe_tensor_reshape(r, NULL, 0, &r2), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_tensor_reshape(r, bad, 1, &r2), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "12 elements"));
    assert_non_null(strstr(floe_last_error(), "[11]"));
    assert_null(r2);
    /* The view outlives the original. */
    floe_tensor_unref(t);
    int64_t s3[1] = {12};
    assert_int_equal(floe_tensor_reshape(r, s3, 1, &r2), FLOE_OK);
    floe_tensor_unref(r);
    assert_int_equal(((int16_t *)floe_tensor_data(r2))[11], 42);
    floe_tensor_unref(r2);
}

static void to_host_copies(void **state) {
    float v[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    floe_tensor *t = NULL, *c = NULL;
    assert_int_equal(floe_tensor_new_copy(FLOE_DTYPE_F32, shape, 1, v, sizeof(v), &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_host(t, &c), FLOE_OK);
    assert_ptr_not_equal(floe_tensor_data(c), floe_tensor_data(t));
    assert_memory_equal(floe_tensor_data(c), v, sizeof(v));
    floe_tensor_unref(t);
    floe_tensor_unref(c);
    assert_int_equal(floe_tensor_to_host(NULL, &c), FLOE_INVALID_ARGUMENT);
    assert_null(c);
}

/* ---- Concurrency ---------------------------------------------------------------------------- */

static void *ref_unref_loop(void *arg) {
    floe_tensor *t = arg;
    for (int i = 0; i < 100000; i++) {
        floe_tensor_ref(t);
        floe_tensor_unref(t);
    }
    floe_tensor_unref(t);                 /* the reference the main thread gave us */
    return NULL;
}

static void refcount_is_thread_safe(void **state) {
    int64_t shape[1] = {16};
    floe_tensor *t = NULL;
    pthread_t th[4];
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 1, &t), FLOE_OK);
    for (int i = 0; i < 4; i++) {
        floe_tensor_ref(t);
        assert_int_equal(pthread_create(&th[i], NULL, ref_unref_loop, t), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(floe_tensor_num_elements(t), 16);
    floe_tensor_unref(t);                 /* the last: LeakSanitizer checks it freed */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dtype_sizes_and_names),
        cmocka_unit_test(dtype_from_tensorflow_names),
        cmocka_unit_test(new_is_zeroed_aligned_host),
        cmocka_unit_test(new_scalar_and_empty),
        cmocka_unit_test(getters_on_null),
        cmocka_unit_test(new_rejects_bad_shapes),
        cmocka_unit_test(wrap_uses_caller_memory),
        cmocka_unit_test(wrap_rejects_bad_arguments_without_dealloc),
        cmocka_unit_test(new_copy_checks_size),
        cmocka_unit_test(string_tensor_owns_elements),
        cmocka_unit_test(string_errors),
        cmocka_unit_test(reshape_shares_buffer),
        cmocka_unit_test(to_host_copies),
        cmocka_unit_test(refcount_is_thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
