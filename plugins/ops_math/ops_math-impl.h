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
floe_status ops_math__register_grad(floe_plugin *self);        /* grad.c: gradients */

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

/* ---- Shared helpers of elementwise.c, select.c, reduce.c (defined in broadcast.c) ---- */

/* Elements per parallel_for chunk: cheap elementwise work, and work that calls libm. */
#define OPS_MATH_GRAIN (32 * 1024)
#define OPS_MATH_GRAIN_HEAVY (8 * 1024)

/* Tells the compiler that a loop carries no dependence between iterations, so it
 * vectorises loops whose output may be the very same buffer as an input (in-place
 * kernels: element i is read before element i is written, and nothing else).  Used
 * instead of `restrict`, which would make that exact aliasing undefined. */
#if defined(__clang__)
/* Clang reads assume_safety as a request and warns where a loop cannot vectorise
 * (integer division, libm calls); that is expected, not a fault. */
#  pragma clang diagnostic ignored "-Wpass-failed"
#  define OPS_MATH_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#  define OPS_MATH_IVDEP _Pragma("GCC ivdep")
#else
#  define OPS_MATH_IVDEP
#endif

/* The most inputs one broadcast iteration handles (SelectV2 has three). */
#define OPS_MATH_BCAST_MAX_IN 3

/*
 * Numpy broadcasting of up to three tensors, with the output's dims collapsed: dims of
 * extent 1 are dropped and neighbours that every input either fully has or fully
 * broadcasts are merged, so [8,3,4] + [3,4] iterates as [8, 12] and [3,1] x [1,4]
 * as [3, 4].  The innermost collapsed dim is then walked as one contiguous row, in
 * which each input either advances by one element or stays on one (step 1 or 0).
 */
typedef struct ops_math__bcast {
    int nin;
    int out_ndim;                                /* rank of the broadcast result */
    int64_t out_shape[FLOE_MAX_DIMS];
    int64_t n;                                   /* output element count */
    int ndim;                                    /* collapsed rank, >= 1 */
    int64_t dims[FLOE_MAX_DIMS];                 /* collapsed extents */
    int64_t strides[OPS_MATH_BCAST_MAX_IN][FLOE_MAX_DIMS]; /* in elements; 0: broadcast */
    bool same[OPS_MATH_BCAST_MAX_IN];            /* input k has the output's shape */
} ops_math__bcast;

/* One row of a broadcast walk: @n output elements from element @out_off; input k
 * starts at element @in_off[k] and advances @step[k] (0 or 1) per element. */
typedef void (*ops_math__bcast_row_fn)(void *arg, int64_t out_off, const int64_t *in_off,
                                       const int *step, int64_t n);

/* Broadcasts the shapes of @in[0..@nin) (@nin 1..3) into @bc.  FLOE_INVALID_ARGUMENT
 * "Incompatible shapes: [2,3] vs. [4]" (naming @op) when they do not broadcast, or
 * when the result's element count overflows int64. */
floe_status ops_math__bcast_init(ops_math__bcast *bc, const char *op, floe_tensor *const *in,
                                 int nin);
/* Calls @fn over every row of @bc's output: inline when the output has at most
 * @grain elements, else split across @pool (may be NULL) in chunks of >= @grain. */
void ops_math__bcast_run(floe_threadpool *pool, const ops_math__bcast *bc, int64_t grain,
                         ops_math__bcast_row_fn fn, void *arg);
/* Runs fn(arg, begin, end) over [0, @n): inline when @n <= @grain or @pool is NULL,
 * else through floe_parallel_for; nothing when @n <= 0. */
void ops_math__parallel(floe_threadpool *pool, int64_t n, int64_t grain,
                        void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/* Shape function of every broadcasting op: output 0 is the broadcast of all inputs'
 * shapes (unknown extents stay unknown where they matter; an unknown rank gives an
 * unknown rank); rejects shapes known to be incompatible. */
floe_status ops_math__broadcast_shape_fn(floe_shape_ctx *sc);
/* Shape function of ops whose output 0 has input 0's shape (unary elementwise). */
floe_status ops_math__unchanged_shape_fn(floe_shape_ctx *sc);

/* Formats @ndim extents of @dims as "[2,3,?]" (-1 as "?"; ndim < 0 as "<unknown>")
 * into @buf of @len bytes. */
void ops_math__format_dims(const int64_t *dims, int ndim, char *buf, size_t len);

/* Checks input @i of a kernel: dtype @dt (FLOE_DTYPE_INVALID: any) and host-accessible
 * data when it has elements; *@out (out) is the tensor or NULL on failure. */
floe_status ops_math__kernel_input(floe_kernel_ctx *kc, int i, floe_dtype dt,
                                   floe_tensor **out);

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
