/*
 * ops_math-impl.h - shared declarations of the ops_math plugin (not installed).
 *
 * Each source file registers its ops and CPU kernels through one function called by
 * plugin.c; shared helpers (broadcasting, axis checks, dtype dispatch) live here.
 */
#ifndef FLOE_OPS_MATH_IMPL_H
#define FLOE_OPS_MATH_IMPL_H

#include <floe/plugin.h>
#include <stdbool.h>
#include <string.h>

/* Registration, one per source file. */
floe_status ops_math__register_elementwise(floe_plugin *self); /* elementwise.c */
floe_status ops_math__register_cast(floe_plugin *self);        /* cast.c */
floe_status ops_math__register_reduce(floe_plugin *self);      /* reduce.c */
floe_status ops_math__register_select(floe_plugin *self);      /* select.c */
floe_status ops_math__register_basic(floe_plugin *self);       /* basic.c */
floe_status ops_math__register_matmul(floe_plugin *self);      /* matmul.c */
floe_status ops_math__register_array(floe_plugin *self);       /* array.c */
floe_status ops_math__register_slice(floe_plugin *self);       /* slice.c */
floe_status ops_math__register_gather(floe_plugin *self);      /* gather.c */
floe_status ops_math__register_random(floe_plugin *self);      /* random.c */
floe_status ops_math__register_variable(floe_plugin *self);    /* variable.c */

/* Normalises @axis against @rank (negative counts from the end) into *@out;
 * FLOE_INVALID_ARGUMENT with a message naming @what when out of [-rank, rank). */
static inline floe_status ops_math__axis(int64_t axis, int rank, const char *what, int *out) {
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) {
        *out = 0;
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s %lld out of range for rank %d", what,
                         (long long)axis, rank);
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return FLOE_OK;
}

/* Shape of a tensor as a floe_shape value. */
static inline floe_shape ops_math__shape_of(const floe_tensor *t) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = floe_tensor_ndim(t);
    for (int i = 0; i < s.ndim; i++)
        s.dims[i] = floe_tensor_dim(t, i);
    return s;
}

/* ---- Shared helpers of array.c, slice.c, gather.c (defined in array.c) ---------------- */

/* Type constraint of the data-moving array kernels: every dtype but RESOURCE (a handle
 * whose lifetime such a copy would not track).  STRING elements are copied with
 * floe_tensor_set_string(), never by sharing pointers. */
#define OPS_MATH_ARRAY_TYPES                                                             \
    "{f32, f64, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64, bool, string, complex64}"

/* Bytes moved per parallel_for chunk by the copying kernels. */
#define OPS_MATH_COPY_GRAIN_BYTES (256 * 1024)

/* Copies runs of elements from one tensor into another (possibly the same one, runs not
 * overlapping): memcpy for plain dtypes, floe_tensor_set_string() per STRING element. */
typedef struct ops_math__copier {
    floe_tensor *dst;
    const floe_tensor *src;
    char *dst_data;
    const char *src_data;
    size_t esize;
    bool strings;
} ops_math__copier;

static inline void ops_math__copier_init(ops_math__copier *c, floe_tensor *dst,
                                         const floe_tensor *src) {
    c->dst = dst;
    c->src = src;
    c->dst_data = floe_tensor_data(dst);
    c->src_data = floe_tensor_data(src);
    c->esize = floe_dtype_size(floe_tensor_dtype(dst));
    c->strings = floe_tensor_dtype(dst) == FLOE_DTYPE_STRING;
}

/* Copies @n elements from element @src_off of the source to element @dst_off. */
static inline floe_status ops_math__copier_run(const ops_math__copier *c, int64_t dst_off,
                                               int64_t src_off, int64_t n) {
    if (n <= 0)
        return FLOE_OK;
    if (!c->strings) {
        memcpy(c->dst_data + (size_t)dst_off * c->esize,
               c->src_data + (size_t)src_off * c->esize, (size_t)n * c->esize);
        return FLOE_OK;
    }
    const floe_tstring *s = (const floe_tstring *)(const void *)c->src_data + src_off;
    for (int64_t i = 0; i < n; i++) {
        floe_status st = floe_tensor_set_string(c->dst, dst_off + i,
                                                s[i].data != NULL ? s[i].data : "", s[i].size);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

/* Copies all of @src into @dst (same dtype and element count), split across @pool for
 * large plain tensors. */
floe_status ops_math__copy_all(floe_threadpool *pool, floe_tensor *dst, const floe_tensor *src);

/* Reads the values of an int32 or int64 tensor into @out (at most @cap of them; more is
 * FLOE_INVALID_ARGUMENT naming @what); *@n (out) is the count.  Any rank: callers check
 * it first with their own message. */
floe_status ops_math__index_values(const floe_tensor *t, const char *what, int64_t *out,
                                   int cap, int *n);
/* The one value of an int32 or int64 tensor of one element (scalar or [1]). */
floe_status ops_math__index_scalar(const floe_tensor *t, const char *what, int64_t *out);
/* For shape functions: the values of constant input @i when the graph knows them.
 * *@known (out) says whether it does; FLOE_INVALID_ARGUMENT as ops_math__index_values. */
floe_status ops_math__shape_index_values(floe_shape_ctx *sc, int i, const char *what,
                                         int64_t *out, int cap, int *n, bool *known);
/* Product of @ndim extents (each >= 0) into *@out, or FLOE_INVALID_ARGUMENT naming @op
 * when it overflows int64. */
floe_status ops_math__checked_count(const char *op, const int64_t *dims, int ndim,
                                    int64_t *out);
/* Row-major element strides of @dims into @strides. */
void ops_math__strides(const int64_t *dims, int ndim, int64_t *strides);

#endif /* FLOE_OPS_MATH_IMPL_H */
