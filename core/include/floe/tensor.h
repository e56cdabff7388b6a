/*
 * floe/tensor.h - dtypes and tensors.
 *
 * A floe_tensor is an immutable-shape, reference-counted view of a buffer that lives on
 * one device (host memory for every tensor made through this header).  Tensors are
 * shared between threads, sessions and plugins, so they are refcounted: every call
 * that returns a tensor says whether it hands over a reference (transfer full) or
 * lends one (transfer none).  floe_tensor_unref(NULL) is a no-op.
 *
 * Thread safety: ref/unref and all getters are safe from any thread.  Writing the
 * data of a tensor that other threads read is the caller's business.
 */
#ifndef FLOE_TENSOR_H
#define FLOE_TENSOR_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct DLManagedTensor;

/* ---- dtypes ------------------------------------------------------------------- */

/* Size of one element in bytes (sizeof(floe_tstring) for STRING, sizeof(void *) for
 * RESOURCE); 0 for an unknown dtype. */
FLOE_API size_t floe_dtype_size(floe_dtype dtype);

/* Short name: "f32", "i64", "bool", "string", ...; "invalid" for unknown values.
 * (transfer none) static storage. */
FLOE_API const char *floe_dtype_name(floe_dtype dtype);

/* Parses a name given by floe_dtype_name() or a TensorFlow name ("float", "int32",
 * "half", "bfloat16", "double", ...).  Returns FLOE_DTYPE_INVALID if unknown. */
FLOE_API floe_dtype floe_dtype_from_name(const char *name);

/* ---- Construction --------------------------------------------------------------- */

/*
 * floe_tensor_new:
 * @dtype: any dtype but RESOURCE and INVALID.
 * @shape: (array length=ndim) extents, each >= 0.  May be NULL when @ndim is 0.
 * @ndim:  0..FLOE_MAX_DIMS.
 * @out:   (out) (transfer full): a new host tensor, zero-filled, 64-byte aligned;
 *         NULL on failure.
 *
 * Returns FLOE_OK, FLOE_INVALID_ARGUMENT (bad dtype, rank or extent; element count or
 * byte size overflowing int64) or FLOE_RESOURCE_EXHAUSTED.  Thread-safe.
 */
FLOE_API floe_status floe_tensor_new(floe_dtype dtype, const int64_t *shape, int ndim,
                                     floe_tensor **out);

/* Deallocator for floe_tensor_wrap(): called once, when the last reference goes. */
typedef void (*floe_deallocator)(void *data, size_t nbytes, void *arg);

/*
 * floe_tensor_wrap: a host tensor over caller memory, without copying.
 * @data:    (transfer full if @dealloc is not NULL) at least the tensor's byte size;
 *           must stay valid until @dealloc runs.  Any alignment is accepted; kernels
 *           that need more copy.
 * @nbytes:  size of @data, checked against the shape.
 * @dealloc: (nullable) called with (@data, @nbytes, @arg) when the tensor dies; NULL
 *           means the caller keeps ownership and must outlive the tensor.
 * @out:     (out) (transfer full).
 *
 * On failure @dealloc is NOT called: the caller still owns @data.
 * Not for STRING tensors (their elements own heap storage).
 */
FLOE_API floe_status floe_tensor_wrap(floe_dtype dtype, const int64_t *shape, int ndim,
                                      void *data, size_t nbytes, floe_deallocator dealloc,
                                      void *arg, floe_tensor **out);

/* Convenience: a new host tensor holding a copy of @nbytes bytes at @src. */
FLOE_API floe_status floe_tensor_new_copy(floe_dtype dtype, const int64_t *shape, int ndim,
                                          const void *src, size_t nbytes, floe_tensor **out);

/* Convenience: a new rank-0 tensor of the given value. (transfer full) */
FLOE_API floe_status floe_tensor_new_scalar_f32(float v, floe_tensor **out);
FLOE_API floe_status floe_tensor_new_scalar_i32(int32_t v, floe_tensor **out);
FLOE_API floe_status floe_tensor_new_scalar_i64(int64_t v, floe_tensor **out);

/* ---- References --------------------------------------------------------------- */

/* Adds a reference and returns @t.  NULL-safe. */
FLOE_API floe_tensor *floe_tensor_ref(floe_tensor *t);
/* Drops a reference; the last one frees the tensor and releases its buffer. NULL-safe. */
FLOE_API void floe_tensor_unref(floe_tensor *t);

/* ---- Getters (never fail; defined results for NULL) ------------------------------- */

FLOE_API floe_dtype floe_tensor_dtype(const floe_tensor *t);     /* INVALID for NULL */
FLOE_API int floe_tensor_ndim(const floe_tensor *t);             /* 0 for NULL */
/* Extent of dimension @i; negative @i counts from the end; 0 when out of range. */
FLOE_API int64_t floe_tensor_dim(const floe_tensor *t, int i);
/* (transfer none) pointer to ndim extents, valid while @t lives. */
FLOE_API const int64_t *floe_tensor_shape(const floe_tensor *t);
FLOE_API int64_t floe_tensor_num_elements(const floe_tensor *t);
FLOE_API size_t floe_tensor_nbytes(const floe_tensor *t);
/* Host-accessible data pointer, or NULL when the buffer lives in device memory only
 * (use floe_tensor_to_host) or the tensor has no elements. (transfer none) */
FLOE_API void *floe_tensor_data(const floe_tensor *t);
/* The device whose memory holds the data; NULL for host memory allocated by the core.
 * (transfer none) */
FLOE_API floe_device *floe_tensor_device(const floe_tensor *t);

/* ---- Strings ------------------------------------------------------------------ */

/* Copies @size bytes into element @index of a STRING tensor, replacing what was
 * there.  FLOE_INVALID_ARGUMENT for another dtype or an index out of range. */
FLOE_API floe_status floe_tensor_set_string(floe_tensor *t, int64_t index, const void *bytes,
                                            size_t size);
/* Lends element @index: *@bytes stays valid until the element is set again or @t dies. */
FLOE_API floe_status floe_tensor_get_string(const floe_tensor *t, int64_t index,
                                            const char **bytes, size_t *size);

/* ---- Copies and reshapes ---------------------------------------------------------- */

/* A host copy of any tensor (device tensors are copied through their device).
 * (transfer full) */
FLOE_API floe_status floe_tensor_to_host(const floe_tensor *t, floe_tensor **out);

/* A tensor sharing @t's buffer with another shape of the same element count.
 * (transfer full) */
FLOE_API floe_status floe_tensor_reshape(floe_tensor *t, const int64_t *shape, int ndim,
                                         floe_tensor **out);

/* ---- DLPack (dlpack/dlpack.h, DLPACK_VERSION 0.6 layout) ---------------------------- */

/*
 * floe_tensor_to_dlpack: exports @t without copying.
 * @out: (out) (transfer full): a DLManagedTensor whose deleter drops the reference it
 *       holds on @t.  The consumer calls out->deleter(out) exactly once.
 * FLOE_UNIMPLEMENTED for STRING and RESOURCE tensors (no DLPack equivalent).
 */
FLOE_API floe_status floe_tensor_to_dlpack(floe_tensor *t, struct DLManagedTensor **out);

/*
 * floe_tensor_from_dlpack: imports a DLPack tensor without copying.
 * @dl: (transfer full on success): Floe calls dl->deleter(dl) when the tensor dies.
 *      On failure ownership stays with the caller.
 * Accepts compact row-major CPU (kDLCPU, kDLCUDAHost) tensors of the supported dtypes;
 * strided layouts give FLOE_UNIMPLEMENTED with the strides in the message.
 */
FLOE_API floe_status floe_tensor_from_dlpack(struct DLManagedTensor *dl, floe_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_TENSOR_H */
