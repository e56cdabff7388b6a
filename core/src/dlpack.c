/*
 * dlpack.c - zero-copy exchange with other frameworks through DLPack 0.6.
 *
 * Export wraps a host tensor in a DLManagedTensor that holds one tensor reference;
 * its deleter drops it.  Import wraps the DLPack data in a Floe tensor whose buffer
 * deallocator calls the producer's deleter, once, when the last reference goes.
 *
 * dtype mapping (both ways): iN/uN <-> kDLInt/kDLUInt N bits, f16/f32/f64 <-> kDLFloat,
 * bf16 <-> kDLBfloat 16, complex64 <-> kDLComplex 64.  DLPack 0.6 has no boolean
 * code: BOOL exports as kDLUInt 8 (values 0 and 1), and kDLUInt 8 imports as U8; the
 * kDLBool code (6) of later DLPack versions imports as BOOL.  Vector types (lanes != 1),
 * strings and resources have no mapping.  Only compact row-major CPU memory is
 * accepted on import: strides must be NULL or those of a packed C-order array (the
 * stride of an extent-1 dimension does not matter).
 */
#include "core-impl.h"

#include <dlpack/dlpack.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#if DLPACK_VERSION < 60
#  error "DLPack 0.6 or newer is needed (libdlpack-dev)"
#endif

/* kDLBool from DLPack 0.8; absent from the 0.6 header. */
#define FLOE__DL_BOOL 6u

/* ---- dtypes -------------------------------------------------------------------------- */

static bool dtype_to_dl(floe_dtype dt, DLDataType *out) {
    uint8_t code;
    switch (dt) {
    case FLOE_DTYPE_I8: case FLOE_DTYPE_I16: case FLOE_DTYPE_I32: case FLOE_DTYPE_I64:
        code = kDLInt;
        break;
    case FLOE_DTYPE_U8: case FLOE_DTYPE_U16: case FLOE_DTYPE_U32: case FLOE_DTYPE_U64:
    case FLOE_DTYPE_BOOL:
        code = kDLUInt;
        break;
    case FLOE_DTYPE_F16: case FLOE_DTYPE_F32: case FLOE_DTYPE_F64:
        code = kDLFloat;
        break;
    case FLOE_DTYPE_BF16:
        code = kDLBfloat;
        break;
    case FLOE_DTYPE_COMPLEX64:
        code = kDLComplex;
        break;
    default:
        return false;
    }
    out->code = code;
    out->bits = (uint8_t)(floe_dtype_size(dt) * 8);
    out->lanes = 1;
    return true;
}

static floe_dtype dtype_from_dl(DLDataType t) {
    if (t.lanes != 1)
        return FLOE_DTYPE_INVALID;
    switch (t.code) {
    case kDLInt:
        return t.bits == 8 ? FLOE_DTYPE_I8 : t.bits == 16 ? FLOE_DTYPE_I16
             : t.bits == 32 ? FLOE_DTYPE_I32 : t.bits == 64 ? FLOE_DTYPE_I64 : FLOE_DTYPE_INVALID;
    case kDLUInt:
        return t.bits == 8 ? FLOE_DTYPE_U8 : t.bits == 16 ? FLOE_DTYPE_U16
             : t.bits == 32 ? FLOE_DTYPE_U32 : t.bits == 64 ? FLOE_DTYPE_U64 : FLOE_DTYPE_INVALID;
    case kDLFloat:
        return t.bits == 16 ? FLOE_DTYPE_F16 : t.bits == 32 ? FLOE_DTYPE_F32
             : t.bits == 64 ? FLOE_DTYPE_F64 : FLOE_DTYPE_INVALID;
    case kDLBfloat:
        return t.bits == 16 ? FLOE_DTYPE_BF16 : FLOE_DTYPE_INVALID;
    case kDLComplex:
        return t.bits == 64 ? FLOE_DTYPE_COMPLEX64 : FLOE_DTYPE_INVALID;
    case FLOE__DL_BOOL:
        return t.bits == 8 ? FLOE_DTYPE_BOOL : FLOE_DTYPE_INVALID;
    default:
        return FLOE_DTYPE_INVALID;
    }
}

/* ---- Export ---------------------------------------------------------------------------- */

typedef struct dl_export {
    DLManagedTensor m;
    floe_tensor *t;
    int64_t shape[FLOE_MAX_DIMS];
    int64_t strides[FLOE_MAX_DIMS];
} dl_export;

static void dl_export_deleter(DLManagedTensor *self) {
    dl_export *e = self->manager_ctx;
    floe_tensor_unref(e->t);
    floe__free(e);
}

floe_status floe_tensor_to_dlpack(floe_tensor *t, struct DLManagedTensor **out) {
    DLDataType dt;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_to_dlpack: out is NULL");
    *out = NULL;
    if (t == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_to_dlpack: tensor is NULL");
    if (!dtype_to_dl(t->dtype, &dt))
        return floe__fail(FLOE_UNIMPLEMENTED, "floe_tensor_to_dlpack: %s tensors have no DLPack type",
                          floe_dtype_name(t->dtype));
    if (!floe__device_is_host(t->buf->device))
        return floe__fail(FLOE_UNIMPLEMENTED,
                          "floe_tensor_to_dlpack: the tensor is in memory of device %s; "
                          "copy it with floe_tensor_to_host() first", t->buf->device->name);
    dl_export *e = floe__malloc(sizeof(*e));
    if (e == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_tensor_to_dlpack: out of memory");
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        e->shape[i] = t->dims[i];
        e->strides[i] = stride;
        stride *= t->dims[i] > 0 ? t->dims[i] : 1;
    }
    e->t = floe_tensor_ref(t);
    e->m.dl_tensor.data = t->buf->data;
    e->m.dl_tensor.device.device_type = kDLCPU;
    e->m.dl_tensor.device.device_id = 0;
    e->m.dl_tensor.ndim = t->ndim;
    e->m.dl_tensor.dtype = dt;
    e->m.dl_tensor.shape = e->shape;
    e->m.dl_tensor.strides = e->strides;
    e->m.dl_tensor.byte_offset = (uint64_t)((char *)t->data - (char *)t->buf->data);
    if (t->data == NULL)
        e->m.dl_tensor.byte_offset = 0;
    e->m.manager_ctx = e;
    e->m.deleter = dl_export_deleter;
    *out = &e->m;
    return FLOE_OK;
}

/* ---- Import ---------------------------------------------------------------------------- */

static void dl_import_dealloc(void *data, size_t nbytes, void *arg) {
    DLManagedTensor *dl = arg;
    if (dl->deleter != NULL)
        dl->deleter(dl);
}

static void format_dims(char *buf, size_t len, const int64_t *v, int n) {
    size_t pos = 0;
    int w = snprintf(buf, len, "[");
    pos = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < n && pos < len; i++) {
        w = snprintf(buf + pos, len - pos, "%s%" PRId64, i > 0 ? ", " : "", v[i]);
        if (w < 0)
            return;
        pos += (size_t)w;
    }
    if (pos < len)
        snprintf(buf + pos, len - pos, "]");
}

/* FLOE_OK when @dl's strides describe a packed row-major array. */
static floe_status check_strides(const DLTensor *dl, int64_t count) {
    int64_t expect = 1;
    if (dl->strides == NULL || count == 0)
        return FLOE_OK;
    for (int i = dl->ndim - 1; i >= 0; i--) {
        if (dl->shape[i] != 1 && dl->strides[i] != expect) {
            char shape[200], strides[200];
            format_dims(shape, sizeof(shape), dl->shape, dl->ndim);
            format_dims(strides, sizeof(strides), dl->strides, dl->ndim);
            return floe__fail(FLOE_UNIMPLEMENTED,
                              "floe_tensor_from_dlpack: strides %s of shape %s are not compact "
                              "row-major", strides, shape);
        }
        expect *= dl->shape[i];
    }
    return FLOE_OK;
}

floe_status floe_tensor_from_dlpack(struct DLManagedTensor *m, floe_tensor **out) {
    int64_t count;
    size_t nbytes;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_from_dlpack: out is NULL");
    *out = NULL;
    if (m == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_from_dlpack: tensor is NULL");
    const DLTensor *dl = &m->dl_tensor;
    if (dl->device.device_type != kDLCPU && dl->device.device_type != kDLCUDAHost)
        return floe__fail(FLOE_UNIMPLEMENTED,
                          "floe_tensor_from_dlpack: device type %d is not host memory "
                          "(kDLCPU or kDLCUDAHost)", (int)dl->device.device_type);
    floe_dtype dt = dtype_from_dl(dl->dtype);
    if (dt == FLOE_DTYPE_INVALID)
        return floe__fail(FLOE_UNIMPLEMENTED,
                          "floe_tensor_from_dlpack: no Floe dtype for DLPack code %u, %u bits, "
                          "%u lanes", dl->dtype.code, dl->dtype.bits, dl->dtype.lanes);
    if (dl->ndim > 0 && dl->shape == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_from_dlpack: shape is NULL");
    st = floe__shape_check(dt, dl->shape, dl->ndim, &count, &nbytes);
    if (st != FLOE_OK) {
        floe__error_prefix("floe_tensor_from_dlpack: ");
        return st;
    }
    if ((st = check_strides(dl, count)) != FLOE_OK)
        return st;
    if (dl->data == NULL && nbytes > 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_tensor_from_dlpack: data is NULL");
    char *data = dl->data != NULL ? (char *)dl->data + dl->byte_offset : NULL;
    st = floe_tensor_wrap(dt, dl->shape, dl->ndim, data, nbytes, dl_import_dealloc, m, out);
    if (st != FLOE_OK)
        floe__error_prefix("floe_tensor_from_dlpack: ");
    return st;
}
