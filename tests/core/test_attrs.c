/*
 * test_attrs.c - attribute sets: every kind set and read back, replacement, copies
 * (strings and lists) versus references (tensors), iteration, and the errors of
 * wrong types, missing names and bad values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <floe/floe.h>

static int setup_attrs(void **state) {
    floe_attrs *a = NULL;
    if (floe_attrs_new(&a) != FLOE_OK)
        return -1;
    *state = a;
    return 0;
}

static int teardown_attrs(void **state) {
    floe_attrs_free(*state);
    return 0;
}

static void scalars_round_trip(void **state) {
    floe_attrs *a = *state;
    int64_t i = 0;
    float f = 0;
    int b = 0;
    floe_dtype t = FLOE_DTYPE_INVALID;

    assert_int_equal(floe_attrs_set_int(a, "i", INT64_MIN), FLOE_OK);
    assert_int_equal(floe_attrs_set_float(a, "f", -1.5f), FLOE_OK);
    assert_int_equal(floe_attrs_set_bool(a, "b", 7), FLOE_OK);
    assert_int_equal(floe_attrs_set_type(a, "T", FLOE_DTYPE_BF16), FLOE_OK);
    assert_int_equal(floe_attrs_get_int(a, "i", &i), FLOE_OK);
    assert_int_equal(i, INT64_MIN);
    assert_int_equal(floe_attrs_get_float(a, "f", &f), FLOE_OK);
    assert_true(f == -1.5f);
    assert_int_equal(floe_attrs_get_bool(a, "b", &b), FLOE_OK);
    assert_int_equal(b, 1);                              /* normalised */
    assert_int_equal(floe_attrs_get_type(a, "T", &t), FLOE_OK);
    assert_int_equal(t, FLOE_DTYPE_BF16);
    assert_int_equal(floe_attrs_type(a, "i"), FLOE_ATTR_INT);
    assert_int_equal(floe_attrs_type(a, "f"), FLOE_ATTR_FLOAT);
    assert_int_equal(floe_attrs_type(a, "b"), FLOE_ATTR_BOOL);
    assert_int_equal(floe_attrs_type(a, "T"), FLOE_ATTR_TYPE);
    assert_int_equal(floe_attrs_type(a, "absent"), FLOE_ATTR_NONE);
}

static void string_is_copied(void **state) {
    floe_attrs *a = *state;
    char src[] = "pad\0ding";
    const char *s = NULL;
    size_t len = 0;

    assert_int_equal(floe_attrs_set_string(a, "s", src, 8), FLOE_OK);
    memset(src, 'x', sizeof(src));
    assert_int_equal(floe_attrs_get_string(a, "s", &s, &len), FLOE_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(s, "pad\0ding", 8);
    assert_int_equal(s[8], '\0');                          /* NUL-terminated copy */
    assert_int_equal(floe_attrs_set_string(a, "empty", NULL, 0), FLOE_OK);
    assert_int_equal(floe_attrs_get_string(a, "empty", &s, &len), FLOE_OK);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
}

static void shape_round_trip(void **state) {
    floe_attrs *a = *state;
    int64_t dims[3] = {2, -1, 4};
    floe_shape s;

    assert_int_equal(floe_attrs_set_shape(a, "shape", dims, 3), FLOE_OK);
    assert_int_equal(floe_attrs_get_shape(a, "shape", &s), FLOE_OK);
    assert_int_equal(s.ndim, 3);
    assert_int_equal(s.dims[0], 2);
    assert_int_equal(s.dims[1], -1);
    assert_int_equal(s.dims[2], 4);
    assert_int_equal(s.dims[3], 0);
    assert_int_equal(floe_attrs_set_shape(a, "unknown", NULL, -1), FLOE_OK);
    assert_int_equal(floe_attrs_get_shape(a, "unknown", &s), FLOE_OK);
    assert_int_equal(s.ndim, -1);
    assert_int_equal(floe_attrs_set_shape(a, "scalar", NULL, 0), FLOE_OK);
    assert_int_equal(floe_attrs_get_shape(a, "scalar", &s), FLOE_OK);
    assert_int_equal(s.ndim, 0);
}

static void tensor_is_referenced(void **state) {
    floe_attrs *a = *state;
    floe_tensor *t = NULL, *got = NULL;

    assert_int_equal(floe_tensor_new_scalar_f32(3.0f, &t), FLOE_OK);
    assert_int_equal(floe_attrs_set_tensor(a, "value", t), FLOE_OK);
    floe_tensor_unref(t);                                  /* the set keeps it alive */
    assert_int_equal(floe_attrs_get_tensor(a, "value", &got), FLOE_OK);
    assert_ptr_equal(got, t);
    assert_true(*(float *)floe_tensor_data(got) == 3.0f);
    assert_int_equal(floe_attrs_set_tensor(a, "null", NULL), FLOE_INVALID_ARGUMENT);
}

static void lists_round_trip(void **state) {
    floe_attrs *a = *state;
    int64_t iv[3] = {1, -2, 3};
    float fv[2] = {0.5f, -0.25f};
    floe_dtype tv[2] = {FLOE_DTYPE_F32, FLOE_DTYPE_I64};
    const int64_t *gi = NULL;
    const float *gf = NULL;
    const floe_dtype *gt = NULL;
    int n = -1;

    assert_int_equal(floe_attrs_set_int_list(a, "il", iv, 3), FLOE_OK);
    iv[0] = 100;                                           /* copied */
    assert_int_equal(floe_attrs_get_int_list(a, "il", &gi, &n), FLOE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(gi[0], 1);
    assert_int_equal(gi[2], 3);
    assert_int_equal(floe_attrs_set_float_list(a, "fl", fv, 2), FLOE_OK);
    assert_int_equal(floe_attrs_get_float_list(a, "fl", &gf, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_true(gf[1] == -0.25f);
    assert_int_equal(floe_attrs_set_type_list(a, "tl", tv, 2), FLOE_OK);
    assert_int_equal(floe_attrs_get_type_list(a, "tl", &gt, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(gt[1], FLOE_DTYPE_I64);
    assert_int_equal(floe_attrs_set_int_list(a, "empty", NULL, 0), FLOE_OK);
    assert_int_equal(floe_attrs_get_int_list(a, "empty", &gi, &n), FLOE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(floe_attrs_type(a, "empty"), FLOE_ATTR_LIST_INT);

    int bv[3] = {1, 0, 5};
    assert_int_equal(floe_attrs_set_bool_list(a, "bl", bv, 3), FLOE_OK);
    assert_int_equal(floe_attrs_type(a, "bl"), FLOE_ATTR_LIST_BOOL);

    const char *sv[3] = {"a", "bc", "d\0e"};
    size_t lens[3] = {1, 2, 3};
    assert_int_equal(floe_attrs_set_string_list(a, "sl", sv, lens, 3), FLOE_OK);
    assert_int_equal(floe_attrs_set_string_list(a, "sl0", sv, NULL, 2), FLOE_OK);
    assert_int_equal(floe_attrs_type(a, "sl"), FLOE_ATTR_LIST_STRING);

    floe_shape shapes[2] = {{2, 0, {3, -1}}, {-1, 0, {0}}};
    assert_int_equal(floe_attrs_set_shape_list(a, "shl", shapes, 2), FLOE_OK);
    assert_int_equal(floe_attrs_type(a, "shl"), FLOE_ATTR_LIST_SHAPE);

    floe_tensor *t1 = NULL, *t2 = NULL;
    assert_int_equal(floe_tensor_new_scalar_i32(1, &t1), FLOE_OK);
    assert_int_equal(floe_tensor_new_scalar_i32(2, &t2), FLOE_OK);
    floe_tensor *tl[2] = {t1, t2};
    assert_int_equal(floe_attrs_set_tensor_list(a, "tens", tl, 2), FLOE_OK);
    floe_tensor_unref(t1);
    floe_tensor_unref(t2);
    assert_int_equal(floe_attrs_type(a, "tens"), FLOE_ATTR_LIST_TENSOR);
    /* Many strings (beyond the setter's stack buffer). */
    const char *many[40];
    for (int i = 0; i < 40; i++)
        many[i] = "item";
    assert_int_equal(floe_attrs_set_string_list(a, "many", many, NULL, 40), FLOE_OK);

    /* The getters of the other list kinds (GraphDef export reads every kind). */
    const int *gb = NULL;
    assert_int_equal(floe_attrs_get_bool_list(a, "bl", &gb, &n), FLOE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(gb[2], 5);
    const floe_tstring *gs = NULL;
    assert_int_equal(floe_attrs_get_string_list(a, "sl", &gs, &n), FLOE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(gs[2].size, 3);
    assert_memory_equal(gs[2].data, "d\0e", 3);
    assert_int_equal(gs[2].data[3], '\0');                    /* NUL-terminated too */
    assert_int_equal(floe_attrs_get_string_list(a, "sl0", &gs, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(gs[1].data, "bc");
    const floe_shape *gsh = NULL;
    assert_int_equal(floe_attrs_get_shape_list(a, "shl", &gsh, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(gsh[0].ndim, 2);
    assert_int_equal(gsh[0].dims[1], -1);
    assert_int_equal(gsh[1].ndim, -1);
    floe_tensor *const *gtl = NULL;
    assert_int_equal(floe_attrs_get_tensor_list(a, "tens", &gtl, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(*(const int32_t *)floe_tensor_data(gtl[1]), 2);
    /* Wrong kind and missing name: an error, outputs reset. */
    assert_int_equal(floe_attrs_get_string_list(a, "bl", &gs, &n), FLOE_INVALID_ARGUMENT);
    assert_null(gs);
    assert_int_equal(n, 0);
    assert_int_equal(floe_attrs_get_tensor_list(a, "nope", &gtl, &n), FLOE_NOT_FOUND);
    assert_int_equal(floe_attrs_get_shape_list(a, "il", &gsh, &n), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_get_bool_list(a, "tens", &gb, &n), FLOE_INVALID_ARGUMENT);
}

static void set_replaces_and_keeps_order(void **state) {
    floe_attrs *a = *state;
    const char *s = NULL;
    size_t len = 0;
    int64_t v = 0;

    assert_int_equal(floe_attrs_count(a), 0);
    assert_int_equal(floe_attrs_set_int(a, "first", 1), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "second", 2), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "third", 3), FLOE_OK);
    assert_int_equal(floe_attrs_set_string(a, "first", "now a string", 12), FLOE_OK);
    assert_int_equal(floe_attrs_count(a), 3);
    assert_string_equal(floe_attrs_name(a, 0), "first");
    assert_string_equal(floe_attrs_name(a, 1), "second");
    assert_string_equal(floe_attrs_name(a, 2), "third");
    assert_null(floe_attrs_name(a, 3));
    assert_null(floe_attrs_name(a, -1));
    assert_int_equal(floe_attrs_get_string(a, "first", &s, &len), FLOE_OK);
    assert_int_equal(len, 12);
    assert_int_equal(floe_attrs_get_int(a, "third", &v), FLOE_OK);
    assert_int_equal(v, 3);
    /* Grow past the initial capacity. */
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(floe_attrs_set_int(a, name, i), FLOE_OK);
    }
    assert_int_equal(floe_attrs_count(a), 103);
    assert_int_equal(floe_attrs_get_int(a, "n77", &v), FLOE_OK);
    assert_int_equal(v, 77);
}

static void wrong_type_names_both(void **state) {
    floe_attrs *a = *state;
    float f = 9;
    int64_t i = 9;
    const int64_t *il = (const int64_t *)&i;
    int n = 9;
    floe_tensor *t = (floe_tensor *)&f;

    assert_int_equal(floe_attrs_set_int(a, "N", 3), FLOE_OK);
    assert_int_equal(floe_attrs_get_float(a, "N", &f), FLOE_INVALID_ARGUMENT);
    assert_true(f == 0.0f);
    assert_non_null(strstr(floe_last_error(), "'N'"));
    assert_non_null(strstr(floe_last_error(), "is int"));
    assert_non_null(strstr(floe_last_error(), "not float"));
    assert_int_equal(floe_attrs_get_int_list(a, "N", &il, &n), FLOE_INVALID_ARGUMENT);
    assert_null(il);
    assert_int_equal(n, 0);
    assert_non_null(strstr(floe_last_error(), "list(int)"));
    assert_int_equal(floe_attrs_get_tensor(a, "N", &t), FLOE_INVALID_ARGUMENT);
    assert_null(t);
    assert_int_equal(floe_attrs_get_int(a, "missing", &i), FLOE_NOT_FOUND);
    assert_int_equal(i, 0);
    assert_non_null(strstr(floe_last_error(), "missing"));
}

static void bad_arguments(void **state) {
    floe_attrs *a = *state;
    int64_t dims[2] = {2, -3};
    floe_dtype bad_types[2] = {FLOE_DTYPE_F32, (floe_dtype)99};
    floe_shape bad_shape = {9, 0, {0}};
    int64_t v = 0;

    assert_int_equal(floe_attrs_set_int(a, NULL, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_int(a, "", 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_int(NULL, "x", 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_shape(a, "s", dims, 2), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(floe_last_error(), "-3"));
    assert_int_equal(floe_attrs_set_shape(a, "s", dims, 9), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_shape(a, "s", NULL, 2), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_int_list(a, "l", NULL, -1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_int_list(a, "l", NULL, 2), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_type(a, "t", (floe_dtype)99), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_type_list(a, "tl", bad_types, 2), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_shape_list(a, "sl", &bad_shape, 1), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_set_string(a, "s", NULL, 4), FLOE_INVALID_ARGUMENT);
    floe_tensor *nulls[1] = {NULL};
    assert_int_equal(floe_attrs_set_tensor_list(a, "tl", nulls, 1), FLOE_INVALID_ARGUMENT);
    /* A failed set leaves an earlier value alone. */
    assert_int_equal(floe_attrs_set_int(a, "kept", 5), FLOE_OK);
    assert_int_equal(floe_attrs_set_shape(a, "kept", dims, 2), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_get_int(a, "kept", &v), FLOE_OK);
    assert_int_equal(v, 5);
    assert_int_equal(floe_attrs_count(a), 1);
    assert_int_equal(floe_attrs_get_int(NULL, "kept", &v), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_attrs_count(NULL), 0);
    assert_int_equal(floe_attrs_type(NULL, "kept"), FLOE_ATTR_NONE);
    assert_int_equal(floe_attrs_new(NULL), FLOE_INVALID_ARGUMENT);
    floe_attrs_free(NULL);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_attrs, teardown_attrs)
    const struct CMUnitTest tests[] = {
        T(scalars_round_trip),
        T(string_is_copied),
        T(shape_round_trip),
        T(tensor_is_referenced),
        T(lists_round_trip),
        T(set_replaces_and_keeps_order),
        T(wrong_type_names_both),
        T(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
