/*
 * test_dlpack.c - DLPack export and import: round trips both ways without copying,
 * deleters called exactly once, dtype mapping, and the layouts and devices refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dlpack/dlpack.h>
#include <floe/floe.h>

/* ---- Export -------------------------------------------------------------------------- */

static void export_shares_data_and_holds_a_reference(void **state) {
    int64_t shape[2] = {2, 3};
    floe_tensor *t = NULL;
    DLManagedTensor *dl = NULL;

    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &t), FLOE_OK);
    float *d = floe_tensor_data(t);
    for (int i = 0; i < 6; i++)
        d[i] = (float)i;
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
    assert_non_null(dl);
    assert_non_null(dl->deleter);
    /* The export keeps the tensor alive after the caller's reference goes. */
    floe_tensor_unref(t);
    const DLTensor *x = &dl->dl_tensor;
    assert_int_equal(x->device.device_type, kDLCPU);
    assert_int_equal(x->ndim, 2);
    assert_int_equal(x->shape[0], 2);
    assert_int_equal(x->shape[1], 3);
    assert_int_equal(x->strides[0], 3);
    assert_int_equal(x->strides[1], 1);
    assert_int_equal(x->dtype.code, kDLFloat);
    assert_int_equal(x->dtype.bits, 32);
    assert_int_equal(x->dtype.lanes, 1);
    assert_ptr_equal((char *)x->data + x->byte_offset, d);
    assert_true(((float *)((char *)x->data + x->byte_offset))[5] == 5.0f);
    dl->deleter(dl);                     /* frees the tensor: ASan checks */
}

static void export_dtype_mapping(void **state) {
    static const struct {
        floe_dtype dt;
        uint8_t code, bits;
    } cases[] = {
        {FLOE_DTYPE_I8, kDLInt, 8},       {FLOE_DTYPE_I16, kDLInt, 16},
        {FLOE_DTYPE_I32, kDLInt, 32},     {FLOE_DTYPE_I64, kDLInt, 64},
        {FLOE_DTYPE_U8, kDLUInt, 8},      {FLOE_DTYPE_U16, kDLUInt, 16},
        {FLOE_DTYPE_U32, kDLUInt, 32},    {FLOE_DTYPE_U64, kDLUInt, 64},
        {FLOE_DTYPE_BOOL, kDLUInt, 8},    {FLOE_DTYPE_F16, kDLFloat, 16},
        {FLOE_DTYPE_F32, kDLFloat, 32},   {FLOE_DTYPE_F64, kDLFloat, 64},
        {FLOE_DTYPE_BF16, kDLBfloat, 16}, {FLOE_DTYPE_COMPLEX64, kDLComplex, 64},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        floe_tensor *t = NULL;
        DLManagedTensor *dl = NULL;
        int64_t n = 4;
        assert_int_equal(floe_tensor_new(cases[i].dt, &n, 1, &t), FLOE_OK);
        assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
        assert_int_equal(dl->dl_tensor.dtype.code, cases[i].code);
        assert_int_equal(dl->dl_tensor.dtype.bits, cases[i].bits);
        floe_tensor_unref(t);
        dl->deleter(dl);
    }
}

static void export_rejects_strings(void **state) {
    floe_tensor *t = NULL;
    DLManagedTensor *dl = (DLManagedTensor *)state;
    int64_t n = 2;
    assert_int_equal(floe_tensor_new(FLOE_DTYPE_STRING, &n, 1, &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_UNIMPLEMENTED);
    assert_null(dl);
    assert_non_null(strstr(floe_last_error(), "string"));
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_to_dlpack(NULL, &dl), FLOE_INVALID_ARGUMENT);
}

/* ---- Import -------------------------------------------------------------------------- */

typedef struct producer {
    DLManagedTensor m;
    int64_t shape[4];
    int64_t strides[4];
    double data[32];
    int deleted;
} producer;

static void producer_deleter(DLManagedTensor *self) {
    producer *p = self->manager_ctx;
    p->deleted++;
}

static void producer_init(producer *p, int ndim, const int64_t *shape) {
    memset(p, 0, sizeof(*p));
    p->m.dl_tensor.data = p->data;
    p->m.dl_tensor.device.device_type = kDLCPU;
    p->m.dl_tensor.ndim = ndim;
    p->m.dl_tensor.dtype.code = kDLFloat;
    p->m.dl_tensor.dtype.bits = 64;
    p->m.dl_tensor.dtype.lanes = 1;
    memcpy(p->shape, shape, (size_t)ndim * sizeof(int64_t));
    p->m.dl_tensor.shape = p->shape;
    p->m.manager_ctx = p;
    p->m.deleter = producer_deleter;
    for (int i = 0; i < 32; i++)
        p->data[i] = i * 0.5;
}

static void import_shares_data_deleter_once(void **state) {
    producer p;
    const int64_t shape[2] = {3, 4};
    floe_tensor *t = NULL, *r = NULL;

    producer_init(&p, 2, shape);
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F64);
    assert_int_equal(floe_tensor_ndim(t), 2);
    assert_int_equal(floe_tensor_dim(t, 1), 4);
    assert_ptr_equal(floe_tensor_data(t), p.data);
    /* A reshape shares the buffer: the deleter waits for both. */
    const int64_t flat[1] = {12};
    assert_int_equal(floe_tensor_reshape(t, flat, 1, &r), FLOE_OK);
    floe_tensor_unref(t);
    assert_int_equal(p.deleted, 0);
    assert_true(((double *)floe_tensor_data(r))[11] == 5.5);
    floe_tensor_unref(r);
    assert_int_equal(p.deleted, 1);
}

static void import_byte_offset_and_explicit_strides(void **state) {
    producer p;
    const int64_t shape[2] = {2, 3};
    floe_tensor *t = NULL;

    producer_init(&p, 2, shape);
    p.m.dl_tensor.byte_offset = 4 * sizeof(double);
    p.strides[0] = 3;
    p.strides[1] = 1;
    p.m.dl_tensor.strides = p.strides;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    assert_true(((double *)floe_tensor_data(t))[0] == 2.0);
    floe_tensor_unref(t);
    assert_int_equal(p.deleted, 1);

    /* Extent-1 dimensions may carry any stride (as PyTorch writes them). */
    const int64_t shape1[3] = {2, 1, 3};
    producer_init(&p, 3, shape1);
    p.strides[0] = 3;
    p.strides[1] = 99;
    p.strides[2] = 1;
    p.m.dl_tensor.strides = p.strides;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    floe_tensor_unref(t);
    assert_int_equal(p.deleted, 1);
}

static void import_rejects_strided_layout(void **state) {
    producer p;
    const int64_t shape[2] = {3, 2};
    floe_tensor *t = (floe_tensor *)state;

    producer_init(&p, 2, shape);
    p.strides[0] = 1;                        /* a transposed (column-major) view */
    p.strides[1] = 3;
    p.m.dl_tensor.strides = p.strides;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_UNIMPLEMENTED);
    assert_null(t);
    assert_non_null(strstr(floe_last_error(), "[1, 3]"));
    assert_int_equal(p.deleted, 0);          /* ownership stays with the caller */
}

static void import_rejects_devices_dtypes_shapes(void **state) {
    producer p;
    const int64_t shape[1] = {4};
    floe_tensor *t = NULL;

    producer_init(&p, 1, shape);
    p.m.dl_tensor.device.device_type = kDLCUDA;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_UNIMPLEMENTED);
    assert_non_null(strstr(floe_last_error(), "device"));

    producer_init(&p, 1, shape);
    p.m.dl_tensor.dtype.lanes = 4;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_UNIMPLEMENTED);
    producer_init(&p, 1, shape);
    p.m.dl_tensor.dtype.bits = 24;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_UNIMPLEMENTED);

    const int64_t neg[1] = {-2};
    producer_init(&p, 1, neg);
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_INVALID_ARGUMENT);
    producer_init(&p, 1, shape);
    p.m.dl_tensor.ndim = 9;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_INVALID_ARGUMENT);
    producer_init(&p, 1, shape);
    p.m.dl_tensor.data = NULL;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_INVALID_ARGUMENT);
    assert_int_equal(p.deleted, 0);
    assert_int_equal(floe_tensor_from_dlpack(NULL, &t), FLOE_INVALID_ARGUMENT);
    assert_null(t);
}

static void import_bool_and_u8(void **state) {
    producer p;
    const int64_t shape[1] = {4};
    floe_tensor *t = NULL;

    producer_init(&p, 1, shape);
    p.m.dl_tensor.dtype.code = kDLUInt;
    p.m.dl_tensor.dtype.bits = 8;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_U8);
    floe_tensor_unref(t);
    producer_init(&p, 1, shape);
    p.m.dl_tensor.dtype.code = 6;            /* kDLBool of DLPack 0.8 */
    p.m.dl_tensor.dtype.bits = 8;
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_BOOL);
    floe_tensor_unref(t);
    assert_int_equal(p.deleted, 1);
}

/* ---- Round trips ------------------------------------------------------------------------ */

static void round_trip_floe_dlpack_floe(void **state) {
    int64_t shape[3] = {2, 2, 2};
    floe_tensor *t = NULL, *back = NULL;
    DLManagedTensor *dl = NULL;
    int32_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};

    assert_int_equal(floe_tensor_new_copy(FLOE_DTYPE_I32, shape, 3, v, sizeof(v), &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
    assert_int_equal(floe_tensor_from_dlpack(dl, &back), FLOE_OK);
    /* Same memory, same meaning. */
    assert_ptr_equal(floe_tensor_data(back), floe_tensor_data(t));
    assert_int_equal(floe_tensor_dtype(back), FLOE_DTYPE_I32);
    assert_int_equal(floe_tensor_num_elements(back), 8);
    floe_tensor_unref(t);
    assert_memory_equal(floe_tensor_data(back), v, sizeof(v));
    floe_tensor_unref(back);               /* calls dl->deleter, which frees t */
}

static void round_trip_dlpack_floe_dlpack(void **state) {
    producer p;
    const int64_t shape[1] = {5};
    floe_tensor *t = NULL;
    DLManagedTensor *dl = NULL;

    producer_init(&p, 1, shape);
    assert_int_equal(floe_tensor_from_dlpack(&p.m, &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
    floe_tensor_unref(t);
    assert_int_equal(p.deleted, 0);
    assert_ptr_equal((char *)dl->dl_tensor.data + dl->dl_tensor.byte_offset, p.data);
    assert_int_equal(dl->dl_tensor.dtype.code, kDLFloat);
    assert_int_equal(dl->dl_tensor.dtype.bits, 64);
    dl->deleter(dl);
    assert_int_equal(p.deleted, 1);
}

static void round_trip_empty_and_scalar(void **state) {
    int64_t shape[2] = {0, 3};
    floe_tensor *t = NULL, *back = NULL;
    DLManagedTensor *dl = NULL;

    assert_int_equal(floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_from_dlpack(dl, &back), FLOE_OK);
    assert_int_equal(floe_tensor_num_elements(back), 0);
    assert_int_equal(floe_tensor_dim(back, 1), 3);
    floe_tensor_unref(back);

    assert_int_equal(floe_tensor_new_scalar_i64(-7, &t), FLOE_OK);
    assert_int_equal(floe_tensor_to_dlpack(t, &dl), FLOE_OK);
    assert_int_equal(dl->dl_tensor.ndim, 0);
    floe_tensor_unref(t);
    assert_int_equal(floe_tensor_from_dlpack(dl, &back), FLOE_OK);
    assert_int_equal(*(int64_t *)floe_tensor_data(back), -7);
    floe_tensor_unref(back);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(export_shares_data_and_holds_a_reference),
        cmocka_unit_test(export_dtype_mapping),
        cmocka_unit_test(export_rejects_strings),
        cmocka_unit_test(import_shares_data_deleter_once),
        cmocka_unit_test(import_byte_offset_and_explicit_strides),
        cmocka_unit_test(import_rejects_strided_layout),
        cmocka_unit_test(import_rejects_devices_dtypes_shapes),
        cmocka_unit_test(import_bool_and_u8),
        cmocka_unit_test(round_trip_floe_dlpack_floe),
        cmocka_unit_test(round_trip_dlpack_floe_dlpack),
        cmocka_unit_test(round_trip_empty_and_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
