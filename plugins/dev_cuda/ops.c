/*
 * ops.c - the host side of Floe's own CUDA kernels: each compute() validates its
 * inputs exactly as the CPU kernel does (rank, shapes, axes, dtypes), allocates its
 * outputs on the GPU, plans the indexing (bcast.c) and queues one launcher of
 * kernels.cu on the device's stream.  Nothing here waits for the GPU.
 *
 * Arguments the kernels need on the host (axes, shapes, optimizer scalars) are
 * declared host_memory, so the core hands them over in host memory.
 *
 * Sections: helpers; elementwise; reductions and bias; shapes and data movement;
 * losses; optimizers and variables; pooling; the kernel table.
 */
#include "gpu-impl.h"
#include "kernels-impl.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- Helpers ----------------------------------------------------------------------- */

static void *dptr(const floe_tensor *t) {
    return floe_tensor_device_data(t);
}

static floe_status launched(int err, floe_kernel_ctx *kc) {
    return dev_cuda__fail_cuda(err, floe_kernel_node_name(kc));
}

/* Reads a host-memory integer vector (i32 or i64) of at most @max entries. */
static floe_status read_ints(const floe_tensor *t, const char *what, int64_t *out, int max,
                             int *n) {
    floe_dtype dt = floe_tensor_dtype(t);
    int64_t ne = floe_tensor_num_elements(t);
    const void *p = floe_tensor_data(t);

    *n = 0;
    if (floe_tensor_ndim(t) > 1) /* the CPU kernels' words: "must be 0-D or 1-D" */
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be 0-D or 1-D, got rank %d", what,
                         floe_tensor_ndim(t));
    if (ne > max)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s has %lld entries, at most %d", what,
                         (long long)ne, max);
    if (ne > 0 && p == NULL)
        return floe_fail(FLOE_INTERNAL, "%s is not in host memory", what);
    for (int64_t i = 0; i < ne; i++)
        out[i] = dt == FLOE_DTYPE_I64 ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
    *n = (int)ne;
    return FLOE_OK;
}

/* ---- Elementwise ----------------------------------------------------------------------- */

static floe_status binary_run(floe_kernel_ctx *kc, int code) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *y = floe_kernel_input(kc, 1);
    dev_cuda__bcast p;
    floe_tensor *z;
    char err[256];
    floe_status st;
    int in_place;

    if (d == NULL)
        return FLOE_INTERNAL;
    if (dev_cuda__bcast_plan(floe_tensor_shape(x), floe_tensor_ndim(x), floe_tensor_shape(y),
                             floe_tensor_ndim(y), &p, err, sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s", err);
    in_place = p.same || (p.y_scalar && p.out_ndim == floe_tensor_ndim(x) &&
                          floe_tensor_num_elements(x) == p.n);
    st = in_place ? floe_kernel_forward_or_alloc(kc, 0, 0, p.out_dims, p.out_ndim, &z)
                  : floe_kernel_alloc_output(kc, 0, p.out_dims, p.out_ndim, &z);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_binary(d->stream, code,
                                       floe_tensor_dtype(x), &p, dptr(x), dptr(y), dptr(z)),
                    kc);
}

static floe_status unary_run(floe_kernel_ctx *kc, int code) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_unary(d->stream, code, floe_tensor_dtype(x),
                                      floe_tensor_num_elements(x), dptr(x), dptr(y)),
                    kc);
}

/* ---- Reductions and bias --------------------------------------------------------------- */

static floe_status reduce_run(floe_kernel_ctx *kc, int code) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    int64_t axes[DEV_CUDA__MAX_DIMS * 4];
    int naxes, keep = 0;
    dev_cuda__reduce p;
    floe_tensor *y;
    char err[256];
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    st = read_ints(floe_kernel_input(kc, 1), "reduction indices", axes,
                   (int)(sizeof(axes) / sizeof(axes[0])), &naxes);
    if (st != FLOE_OK)
        return st;
    floe_attrs_get_bool(floe_kernel_attrs(kc), "keep_dims", &keep);
    if (dev_cuda__reduce_plan(floe_tensor_shape(x), floe_tensor_ndim(x), axes, naxes, keep != 0,
                              &p, err, sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s", err);
    st = floe_kernel_alloc_output(kc, 0, p.out_dims, p.out_ndim, &y);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_reduce(d->stream, code, floe_tensor_dtype(x), &p,
                                       dptr(x), dptr(y)),
                    kc);
}

/* The channel dimension of @t for data_format: its index and the elements after it. */
static floe_status channel_of(floe_kernel_ctx *kc, const floe_tensor *t, int *axis,
                              int64_t *inner) {
    const char *fmt = "NHWC";
    size_t len = 4;
    int nd = floe_tensor_ndim(t);

    floe_attrs_get_string(floe_kernel_attrs(kc), "data_format", &fmt, &len);
    if (nd < 2)
        return floe_fail(FLOE_INVALID_ARGUMENT, "value must have rank >= 2, got %d", nd);
    if (len == 4 && memcmp(fmt, "NHWC", 4) == 0)
        *axis = nd - 1;
    else if (len == 4 && memcmp(fmt, "NCHW", 4) == 0)
        *axis = 1;
    else
        return floe_fail(FLOE_INVALID_ARGUMENT, "data_format must be NHWC or NCHW, got \"%.*s\"",
                         (int)len, fmt);
    *inner = 1;
    for (int i = *axis + 1; i < nd; i++)
        *inner *= floe_tensor_dim(t, i);
    return FLOE_OK;
}

static floe_status bias_add_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *b = floe_kernel_input(kc, 1);
    int axis;
    int64_t inner, c;
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = channel_of(kc, x, &axis, &inner)) != FLOE_OK)
        return st;
    c = floe_tensor_dim(x, axis);
    if (floe_tensor_ndim(b) != 1 || floe_tensor_dim(b, 0) != c)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "bias must be a vector of the %lld channels of value",
                         (long long)c);
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_bias_add(d->stream, floe_tensor_dtype(x),
                                         floe_tensor_num_elements(x), c, inner, dptr(x), dptr(b),
                                         dptr(y)),
                    kc);
}

static floe_status bias_add_grad_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *g = floe_kernel_input(kc, 0);
    int axis, nd = floe_tensor_ndim(g), naxes = 0;
    int64_t inner, axes[DEV_CUDA__MAX_DIMS];
    dev_cuda__reduce p;
    floe_tensor *y;
    char err[256];
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = channel_of(kc, g, &axis, &inner)) != FLOE_OK)
        return st;
    for (int i = 0; i < nd; i++)
        if (i != axis)
            axes[naxes++] = i;
    if (dev_cuda__reduce_plan(floe_tensor_shape(g), nd, axes, naxes, false, &p, err,
                              sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s", err);
    st = floe_kernel_alloc_output(kc, 0, p.out_dims, p.out_ndim, &y);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_reduce(d->stream, DC_SUM, floe_tensor_dtype(g), &p, dptr(g),
                                       dptr(y)),
                    kc);
}

/* ---- Shapes and data movement --------------------------------------------------------- */

static floe_status identity_compute(floe_kernel_ctx *kc, void *state) {
    return floe_kernel_set_output(kc, 0, floe_kernel_input(kc, 0));
}

/* Reshape is a view: no data moves (the shape argument is in host memory).  The sizes
 * are resolved by the CPU kernel's rules, with its messages (ops_math/array.c): one -1
 * at most, inferred leaving zero extents out when the request has one too ([2,0,3] ->
 * [0,-1] gives [0,6]). */
static floe_status reshape_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *x = floe_kernel_input(kc, 0), *y;
    int64_t dims[FLOE_MAX_DIMS], product = 1, ne = floe_tensor_num_elements(x), out_count = 1;
    int n, unknown = -1;
    bool has_zero = false, overflow = false;
    char buf[200];
    floe_status st = read_ints(floe_kernel_input(kc, 1), "shape", dims, FLOE_MAX_DIMS, &n);

    if (st != FLOE_OK)
        return st;
    for (int i = 0; i < n; i++) {
        if (dims[i] == -1) {
            if (unknown != -1)
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "Only one input size may be -1, not both %d and %d", unknown, i);
            unknown = i;
        } else if (dims[i] < 0) {
            return floe_fail(FLOE_INVALID_ARGUMENT, "Size %d must be non-negative, not %lld", i,
                             (long long)dims[i]);
        } else if (dims[i] == 0) {
            has_zero = true;
        } else if (__builtin_mul_overflow(product, dims[i], &product)) {
            dev_cuda__format_dims(dims, n, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "Shape %s has too many elements", buf);
        }
    }
    if (unknown != -1) {
        int64_t known = 1;
        bool in_has_zero = false;
        for (int d = 0; d < floe_tensor_ndim(x); d++) {
            if (floe_tensor_dim(x, d) > 0 || !has_zero)
                known *= floe_tensor_dim(x, d);
            else
                in_has_zero = true;
        }
        if (!in_has_zero && product * (known / product) != known)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Input to reshape is a tensor with %lld values, but the requested "
                             "shape requires a multiple of %lld",
                             (long long)known, (long long)product);
        dims[unknown] = known / product;
    }
    for (int i = 0; i < n; i++)
        overflow = overflow || __builtin_mul_overflow(out_count, dims[i], &out_count);
    if (overflow || out_count != ne) {
        dev_cuda__format_dims(dims, n, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Input to reshape is a tensor with %lld values, but the requested "
                         "shape %s has %lld",
                         (long long)ne, buf, (long long)out_count);
    }
    st = floe_tensor_reshape(x, dims, n, &y);
    if (st != FLOE_OK)
        return st;
    st = floe_kernel_set_output(kc, 0, y);
    floe_tensor_unref(y);
    return st;
}

/* Shape's output is in host memory: only the input's shape is read. */
static floe_status shape_compute(floe_kernel_ctx *kc, void *state) {
    const floe_tensor *x = floe_kernel_input(kc, 0);
    int64_t nd = floe_tensor_ndim(x);
    floe_tensor *y;
    floe_status st = floe_kernel_alloc_output(kc, 0, &nd, 1, &y);
    void *p;

    if (st != FLOE_OK)
        return st;
    p = floe_tensor_data(y);
    for (int i = 0; i < (int)nd && p != NULL; i++) {
        int64_t v = floe_tensor_dim(x, i);
        if (floe_tensor_dtype(y) == FLOE_DTYPE_I64)
            ((int64_t *)p)[i] = v;
        else if (v > INT32_MAX)
            return floe_fail(FLOE_INVALID_ARGUMENT, /* the CPU kernel's words */
                             "dim %d is %lld, larger than representable by the 32-bit output "
                             "type", i, (long long)v);
        else
            ((int32_t *)p)[i] = (int32_t)v;
    }
    return FLOE_OK;
}

static floe_status cast_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    floe_tensor *y;
    int truncate = 0;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    if (floe_tensor_nbytes(x) == 0)
        return FLOE_OK;
    if (floe_tensor_dtype(x) == floe_tensor_dtype(y))
        return dev_cuda__fail_cuda(cudaMemcpyAsync(dptr(y), dptr(x), floe_tensor_nbytes(x),
                                                   cudaMemcpyDeviceToDevice, d->stream),
                                   floe_kernel_node_name(kc));
    if (floe_attrs_type(floe_kernel_attrs(kc), "Truncate") == FLOE_ATTR_BOOL)
        floe_attrs_get_bool(floe_kernel_attrs(kc), "Truncate", &truncate);
    return launched(dev_cuda__k_cast(d->stream, floe_tensor_dtype(x), floe_tensor_dtype(y),
                                     floe_tensor_num_elements(x), dptr(x), dptr(y), truncate),
                    kc);
}

static floe_status fill_value(floe_kernel_ctx *kc, floe_tensor *y, const void *value) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    if (d == NULL)
        return FLOE_INTERNAL;
    return launched(dev_cuda__k_fill(d->stream, floe_dtype_size(floe_tensor_dtype(y)),
                                     floe_tensor_num_elements(y), value, dptr(y)),
                    kc);
}

static floe_status fill_compute(floe_kernel_ctx *kc, void *state) {
    const floe_tensor *v = floe_kernel_input(kc, 1);
    int64_t dims[FLOE_MAX_DIMS];
    int n;
    floe_tensor *y;
    floe_status st = read_ints(floe_kernel_input(kc, 0), "dims", dims, FLOE_MAX_DIMS, &n);

    if (st != FLOE_OK)
        return st;
    if (floe_tensor_ndim(v) != 0 || floe_tensor_data(v) == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "value must be a scalar");
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "dims[%d] = %lld must be non-negative", i,
                             (long long)dims[i]);
    for (int64_t i = 0, count = 1; i < n; i++) {
        if (__builtin_mul_overflow(count, dims[i], &count)) {
            char buf[200];
            dev_cuda__format_dims(dims, n, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "Fill: shape %s has too many elements", buf);
        }
    }
    st = floe_kernel_alloc_output(kc, 0, dims, n, &y);
    if (st != FLOE_OK)
        return st;
    return fill_value(kc, y, floe_tensor_data(v));
}

static floe_status zeros_ones_run(floe_kernel_ctx *kc, bool ones) {
    const floe_tensor *x = floe_kernel_input(kc, 0);
    floe_dtype dt = floe_tensor_dtype(x);
    union { float f; double d; int32_t i; int64_t l; } one;
    floe_tensor *y;
    floe_status st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);

    if (st != FLOE_OK)
        return st;
    memset(&one, 0, sizeof(one));
    if (ones) {
        if (dt == FLOE_DTYPE_F32)
            one.f = 1.0f;
        else if (dt == FLOE_DTYPE_F64)
            one.d = 1.0;
        else if (dt == FLOE_DTYPE_I32)
            one.i = 1;
        else
            one.l = 1;
    }
    return fill_value(kc, y, &one);
}

static floe_status transpose_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    int64_t perm[FLOE_MAX_DIMS];
    int n;
    dev_cuda__transpose p;
    floe_tensor *y;
    char err[256];
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_ints(floe_kernel_input(kc, 1), "perm", perm, FLOE_MAX_DIMS, &n)) != FLOE_OK)
        return st;
    if (dev_cuda__transpose_plan(floe_tensor_shape(x), floe_tensor_ndim(x), perm, n, &p, err,
                                 sizeof(err)) != FLOE_OK)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s", err);
    st = floe_kernel_alloc_output(kc, 0, p.out_dims, p.ndim, &y);
    if (st != FLOE_OK)
        return st;
    return launched(dev_cuda__k_transpose(d->stream, floe_dtype_size(floe_tensor_dtype(x)), &p,
                                          dptr(x), dptr(y)),
                    kc);
}

/* ConcatV2: one 2-D strided copy per input (cudaMemcpy2DAsync) into its columns of the
 * output viewed as [outer, total * inner]. */
static floe_status concat_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    int nin = floe_kernel_num_inputs(kc) - 1, n, nd;
    const floe_tensor *x0 = floe_kernel_input(kc, 0);
    int64_t ax, dims[FLOE_MAX_DIMS], outer = 1, inner = 1, total = 0;
    size_t es, off = 0;
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_ints(floe_kernel_input(kc, nin), "axis", &ax, 1, &n)) != FLOE_OK)
        return st;
    nd = floe_tensor_ndim(x0);
    if (nd == 0) /* the CPU kernel's messages (ops_math/array.c) */
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ConcatOp : Expected concatenating dimensions in the range [0, 0), but "
                         "got %lld (Can't concatenate scalars (use tf.stack instead))",
                         (long long)(n == 1 ? ax : 0));
    if (n != 1 || ax < -nd || ax >= nd)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ConcatOp : Expected concatenating dimensions in the range [%d, %d), but "
                         "got %lld",
                         -nd, nd, (long long)(n == 1 ? ax : 0));
    ax = ax < 0 ? ax + nd : ax;
    memcpy(dims, floe_tensor_shape(x0), sizeof(int64_t) * (size_t)nd);
    for (int i = 0; i < nin; i++) {
        const floe_tensor *x = floe_kernel_input(kc, i);
        if (floe_tensor_ndim(x) != nd)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "ConcatOp : Ranks of all input tensors should match (input %d has "
                             "rank %d, input 0 rank %d)",
                             i, floe_tensor_ndim(x), nd);
        for (int k = 0; k < nd; k++)
            if (k != ax && floe_tensor_dim(x, k) != dims[k])
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "ConcatOp : Dimension %d in both shapes must be equal (input %d)",
                                 k, i);
        if (__builtin_add_overflow(total, floe_tensor_dim(x, (int)ax), &total))
            return floe_fail(FLOE_INVALID_ARGUMENT, "ConcatOp : output dimension overflows");
    }
    dims[ax] = total;
    for (int k = 0; k < ax; k++)
        outer *= dims[k];
    for (int k = (int)ax + 1; k < nd; k++)
        inner *= dims[k];
    if ((st = floe_kernel_alloc_output(kc, 0, dims, nd, &y)) != FLOE_OK)
        return st;
    es = floe_dtype_size(floe_tensor_dtype(y));
    for (int i = 0; i < nin && st == FLOE_OK; i++) {
        const floe_tensor *x = floe_kernel_input(kc, i);
        size_t w = (size_t)(floe_tensor_dim(x, (int)ax) * inner) * es;
        if (w > 0 && outer > 0)
            st = dev_cuda__fail_cuda(cudaMemcpy2DAsync((char *)dptr(y) + off,
                                                       (size_t)(total * inner) * es, dptr(x), w,
                                                       w, (size_t)outer, cudaMemcpyDeviceToDevice,
                                                       d->stream),
                                     floe_kernel_node_name(kc));
        off += w;
    }
    return st;
}

static floe_status slice_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    int64_t begin[FLOE_MAX_DIMS], size[FLOE_MAX_DIMS], stride[FLOE_MAX_DIMS], s = 1, base = 0;
    int nb, ns, nd = floe_tensor_ndim(x);
    dev_cuda__transpose p;
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_ints(floe_kernel_input(kc, 1), "begin", begin, FLOE_MAX_DIMS, &nb)) != FLOE_OK ||
        (st = read_ints(floe_kernel_input(kc, 2), "size", size, FLOE_MAX_DIMS, &ns)) != FLOE_OK)
        return st;
    if (nb != nd || ns != nd) /* the CPU kernel's messages from here on (ops_math/slice.c) */
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Expected begin and size arguments to be 1-D tensors of size %d, but got "
                         "shapes [%d] and [%d] instead.",
                         nd, nb, ns);
    for (int k = nd - 1; k >= 0; k--) {
        stride[k] = s;
        s *= floe_tensor_dim(x, k);
    }
    memset(&p, 0, sizeof(p));
    p.ndim = nd;
    p.n = 1;
    for (int k = 0; k < nd; k++) {
        int64_t dim = floe_tensor_dim(x, k), b = begin[k], z = size[k];
        bool bad_begin = b < 0 || b > dim;
        if (z == -1 && !bad_begin)
            z = dim - b;
        if (dim == 0 && (b != 0 || z != 0))
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Expected begin[%d] == 0 (got %lld) and size[%d] == 0 (got %lld) "
                             "when input.dim_size(%d) == 0",
                             k, (long long)b, k, (long long)z, k);
        if (bad_begin)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Expected begin[%d] in [0, %lld], but got %lld",
                             k, (long long)dim, (long long)b);
        if (z < 0 || z > dim - b)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Expected size[%d] in [0, %lld], but got %lld",
                             k, (long long)(dim - b), (long long)z);
        p.out_dims[k] = z;
        p.in_stride[k] = stride[k];
        p.n *= z;
        base += b * stride[k];
    }
    if ((st = floe_kernel_alloc_output(kc, 0, p.out_dims, nd, &y)) != FLOE_OK)
        return st;
    return launched(dev_cuda__k_strided_copy(d->stream, floe_dtype_size(floe_tensor_dtype(x)), &p,
                                             p.n > 0 ? base : 0, dptr(x), dptr(y)),
                    kc);
}

/* GatherV2 with TensorFlow's batch_dims; indices in host memory are checked here, exactly
 * as on the CPU (an index out of range is an error, not a clamp), then copied over. */
static floe_status gather_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *pa = floe_kernel_input(kc, 0), *ix = floe_kernel_input(kc, 1);
    int pr = floe_tensor_ndim(pa), ir = floe_tensor_ndim(ix), n, od = 0;
    int64_t ax, bd = 0, batch = 1, outer = 1, inner = 1, nidx = 1, axis_dim, out[FLOE_MAX_DIMS];
    bool i64 = floe_tensor_dtype(ix) == FLOE_DTYPE_I64;
    const void *host_idx = floe_tensor_data(ix);
    void *dev_idx = NULL;
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_ints(floe_kernel_input(kc, 2), "axis", &ax, 1, &n)) != FLOE_OK)
        return st;
    if (floe_attrs_type(floe_kernel_attrs(kc), "batch_dims") != FLOE_ATTR_NONE)
        floe_attrs_get_int(floe_kernel_attrs(kc), "batch_dims", &bd);
    if (n != 1 || ax < -pr || ax >= pr)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Expected axis in the range [%d, %d), but got %lld",
                         -pr, pr, (long long)(n == 1 ? ax : 0));
    ax = ax < 0 ? ax + pr : ax;
    if (bd < -ir || bd > ir)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Expected batch_dims in the range [%d, %d], but got %lld",
                         -ir, ir, (long long)bd);
    bd = bd < 0 ? bd + ir : bd;
    if (bd != 0 && bd >= pr) /* the CPU kernel's messages (ops_math/gather.c) */
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "batch_dims (%lld) must be less than rank(params) (%d).", (long long)bd,
                         pr);
    if (bd != 0 && ax < bd)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "batch_dims (%lld) must be less than or equal to axis (%lld).",
                         (long long)bd, (long long)ax);
    if (pr - 1 + ir - bd > FLOE_MAX_DIMS)
        return floe_fail(FLOE_INVALID_ARGUMENT, "the output would have more than %d dimensions",
                         FLOE_MAX_DIMS);
    for (int k = 0; k < bd; k++)
        if (floe_tensor_dim(pa, k) != floe_tensor_dim(ix, k))
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "params.shape[%d]: %lld should be equal to indices.shape[%d]: "
                             "%lld",
                             k, (long long)floe_tensor_dim(pa, k), k,
                             (long long)floe_tensor_dim(ix, k));
    axis_dim = floe_tensor_dim(pa, (int)ax);
    for (int k = 0; k < pr; k++) {
        int64_t e = floe_tensor_dim(pa, k);
        batch *= k < bd ? e : 1;
        outer *= k >= bd && k < ax ? e : 1;
        inner *= k > ax ? e : 1;
        if (k == ax)
            for (int j = (int)bd; j < ir; j++)
                out[od++] = floe_tensor_dim(ix, j);
        else
            out[od++] = e;
    }
    for (int j = (int)bd; j < ir; j++)
        nidx *= floe_tensor_dim(ix, j);
    for (int64_t i = 0; i < floe_tensor_num_elements(ix); i++) {
        int64_t v = i64 ? ((const int64_t *)host_idx)[i] : ((const int32_t *)host_idx)[i];
        if (v < 0 || v >= axis_dim) {
            int64_t coord[FLOE_MAX_DIMS], rest = i;
            char pos[200];
            for (int k = ir - 1; k >= 0; k--) {
                coord[k] = rest % floe_tensor_dim(ix, k);
                rest /= floe_tensor_dim(ix, k);
            }
            dev_cuda__format_dims(coord, ir, pos, sizeof(pos));
            return floe_fail(FLOE_INVALID_ARGUMENT, "indices%s = %lld is not in [0, %lld)", pos,
                             (long long)v, (long long)axis_dim);
        }
    }
    if ((st = floe_kernel_alloc_output(kc, 0, out, od, &y)) != FLOE_OK)
        return st;
    if (floe_tensor_num_elements(y) == 0)
        return FLOE_OK;
    if ((st = dev_cuda__scratch(d, floe_tensor_nbytes(ix), &dev_idx)) != FLOE_OK)
        return st;
    /* From pageable memory: returns once the bytes are staged, so @ix may go. */
    st = dev_cuda__fail_cuda(cudaMemcpyAsync(dev_idx, host_idx, floe_tensor_nbytes(ix),
                                             cudaMemcpyHostToDevice, d->stream),
                             "GatherV2 indices");
    if (st == FLOE_OK)
        st = launched(dev_cuda__k_gather(d->stream, floe_dtype_size(floe_tensor_dtype(pa)), batch,
                                         outer, axis_dim, inner, nidx, dptr(pa), dev_idx, i64,
                                         dptr(y)),
                      kc);
    dev_cuda__scratch_free(d, dev_idx);
    return st;
}

/* ---- Random numbers ---------------------------------------------------------------------- */

/* The state of one random node: ops_math/random.c's, so that with the same seeds the GPU
 * draws exactly the CPU's numbers (one stream per node, continued run after run). */
typedef struct random_state {
    int dist;                    /* 0 uniform, 1 normal, 2 truncated */
    floe_dtype dtype;
    uint32_t key[2];
    uint32_t counter[4];
    _Atomic uint64_t used;       /* counter blocks taken by earlier runs */
} random_state;

static uint64_t random_seed(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v) || v == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)&v;
        v = (v ^ (v >> 33)) * 0xff51afd7ed558ccdull;
    }
    return v;
}

static floe_status random_create(floe_kernel_ctx *kc, int dist, void **state) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    int64_t seed = 0, seed2 = 0;
    floe_dtype dt = FLOE_DTYPE_INVALID;
    random_state *s;
    floe_status st;

    *state = NULL;
    if ((st = floe_attrs_get_int(a, "seed", &seed)) != FLOE_OK ||
        (st = floe_attrs_get_int(a, "seed2", &seed2)) != FLOE_OK ||
        (st = floe_attrs_get_type(a, "dtype", &dt)) != FLOE_OK)
        return st;
    if ((s = floe_alloc(sizeof(*s), 0)) == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "random op: out of memory");
    if (seed == 0 && seed2 == 0) {
        seed = (int64_t)random_seed();
        seed2 = (int64_t)random_seed();
    }
    s->dist = dist;
    s->dtype = dt;
    s->key[0] = (uint32_t)(uint64_t)seed;
    s->key[1] = (uint32_t)((uint64_t)seed >> 32);
    s->counter[0] = s->counter[1] = 0;
    s->counter[2] = (uint32_t)(uint64_t)seed2;
    s->counter[3] = (uint32_t)((uint64_t)seed2 >> 32);
    atomic_init(&s->used, 0);
    *state = s;
    return FLOE_OK;
}

static floe_status uniform_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, 0, state);
}
static floe_status normal_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, 1, state);
}
static floe_status truncated_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, 2, state);
}

static void random_destroy(void *state) {
    floe_free(state);
}

static floe_status random_compute(floe_kernel_ctx *kc, void *state) {
    random_state *s = state;
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    int64_t dims[FLOE_MAX_DIMS], n = 1, groups;
    uint64_t base, lo, hi;
    uint32_t start[4];
    int nd;
    floe_tensor *y;
    floe_status st;

    if (d == NULL || s == NULL)
        return d == NULL ? FLOE_INTERNAL : floe_fail(FLOE_INTERNAL, "random op: no state");
    if (floe_tensor_ndim(floe_kernel_input(kc, 0)) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape must be a vector");
    if ((st = read_ints(floe_kernel_input(kc, 0), "shape", dims, FLOE_MAX_DIMS, &nd)) != FLOE_OK)
        return st;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "shape dimension %d is %lld, must be >= 0", i,
                             (long long)dims[i]);
        if (dims[i] > 0 && n > INT64_MAX / dims[i])
            return floe_fail(FLOE_INVALID_ARGUMENT, "shape's element count overflows int64");
        n *= dims[i];
    }
    if ((st = floe_kernel_alloc_output(kc, 0, dims, nd, &y)) != FLOE_OK || n == 0)
        return st;
    groups = s->dtype == FLOE_DTYPE_F64 ? (n + 1) / 2 : (n + 3) / 4;
    base = atomic_fetch_add(&s->used, (uint64_t)groups * (s->dist == 2 ? 256u : 1u));
    lo = ((uint64_t)s->counter[1] << 32 | s->counter[0]) + base;
    hi = ((uint64_t)s->counter[3] << 32 | s->counter[2]) + (lo < base ? 1 : 0);
    start[0] = (uint32_t)lo;
    start[1] = (uint32_t)(lo >> 32);
    start[2] = (uint32_t)hi;
    start[3] = (uint32_t)(hi >> 32);
    return launched(dev_cuda__k_random(d->stream, s->dist, s->dtype, n, s->key, start, dptr(y)),
                    kc);
}

/* ---- Losses --------------------------------------------------------------------------- */

static floe_status sparse_xent_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *l = floe_kernel_input(kc, 1);
    int64_t batch, classes;
    floe_tensor *loss, *bp;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if (floe_tensor_ndim(x) != 2 || floe_tensor_ndim(l) != 1 ||
        floe_tensor_dim(l, 0) != floe_tensor_dim(x, 0))
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "logits must be [batch, classes] and labels [batch]; got ranks %d, %d",
                         floe_tensor_ndim(x), floe_tensor_ndim(l));
    batch = floe_tensor_dim(x, 0);
    classes = floe_tensor_dim(x, 1);
    if (classes == 0 && batch > 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "logits must have at least one class");
    if ((st = floe_kernel_alloc_output(kc, 0, &batch, 1, &loss)) != FLOE_OK ||
        (st = floe_kernel_alloc_output(kc, 1, floe_tensor_shape(x), 2, &bp)) != FLOE_OK)
        return st;
    return launched(dev_cuda__k_sparse_xent(d->stream, floe_tensor_dtype(x), batch, classes,
                                            dptr(x), dptr(l),
                                            floe_tensor_dtype(l) == FLOE_DTYPE_I64, dptr(loss),
                                            dptr(bp)),
                    kc);
}

/* ---- Optimizers and variables ------------------------------------------------------------ */

typedef struct apply_spec {
    const char *op;
    int kind;
    int nvars, grad, ninputs;
    const char *flag_attr;
} apply_spec;

static const apply_spec apply_specs[] = {
    {"ResourceApplyGradientDescent", DC_OPT_SGD, 1, 2, 3, NULL},
    {"ResourceApplyMomentum", DC_OPT_MOMENTUM, 2, 3, 5, "use_nesterov"},
    {"ResourceApplyAdam", DC_OPT_ADAM, 3, 9, 10, "use_nesterov"},
    {"ResourceApplyAdagrad", DC_OPT_ADAGRAD, 2, 3, 4, "update_slots"},
    {"ResourceApplyRMSProp", DC_OPT_RMSPROP, 3, 7, 8, NULL},
};

/* The CPU kernel's message (ops_nn/optimizers.c): "ResourceApplyAdam: 'm' has shape [3]
 * (f32) but the gradient has shape [5] (f32)". */
static floe_status slot_mismatch(const apply_spec *sp, int i, const floe_tensor *v,
                                 const floe_tensor *grad, floe_dtype dt) {
    static const char *const names[][3] = {
        [DC_OPT_SGD] = {"var"},
        [DC_OPT_MOMENTUM] = {"var", "accum"},
        [DC_OPT_ADAM] = {"var", "m", "v"},
        [DC_OPT_ADAGRAD] = {"var", "accum"},
        [DC_OPT_RMSPROP] = {"var", "ms", "mom"},
    };
    char ws[160], gs[160];
    dev_cuda__format_dims(floe_tensor_shape(v), floe_tensor_ndim(v), ws, sizeof(ws));
    dev_cuda__format_dims(floe_tensor_shape(grad), floe_tensor_ndim(grad), gs, sizeof(gs));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: '%s' has shape %s (%s) but the gradient has "
                     "shape %s (%s)", sp->op, names[sp->kind][i], ws,
                     floe_dtype_name(floe_tensor_dtype(v)), gs, floe_dtype_name(dt));
}

static floe_status read_scalar(floe_kernel_ctx *kc, int i, floe_dtype dt, double *out) {
    const floe_tensor *t = floe_kernel_input(kc, i);
    const void *p = floe_tensor_data(t);
    if (floe_tensor_dtype(t) != dt || floe_tensor_ndim(t) != 0 || p == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d must be a %s scalar", i,
                         floe_dtype_name(dt));
    *out = dt == FLOE_DTYPE_F32 ? *(const float *)p : *(const double *)p;
    return FLOE_OK;
}

static bool same_shape(const floe_tensor *a, const floe_tensor *b) {
    if (floe_tensor_ndim(a) != floe_tensor_ndim(b))
        return false;
    for (int i = 0; i < floe_tensor_ndim(a); i++)
        if (floe_tensor_dim(a, i) != floe_tensor_dim(b, i))
            return false;
    return true;
}

/* Scalars and variables checked as ops_nn/optimizers.c does; variables locked in
 * address order, updated in place by one launch. */
static floe_status apply_run(floe_kernel_ctx *kc, const apply_spec *sp) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    floe_variable *vars[4] = {NULL}, *order[4];
    void *slots[4] = {NULL};
    double s[8] = {0};
    int ns = 0, flag = sp->kind == DC_OPT_ADAGRAD;
    floe_dtype dt = FLOE_DTYPE_INVALID;
    const floe_tensor *grad = floe_kernel_input(kc, sp->grad);
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    floe_attrs_get_type(floe_kernel_attrs(kc), "T", &dt);
    if (sp->flag_attr != NULL)
        floe_attrs_get_bool(floe_kernel_attrs(kc), sp->flag_attr, &flag);
    for (int i = sp->nvars; i < sp->ninputs; i++)
        if (i != sp->grad && (st = read_scalar(kc, i, dt, &s[ns++])) != FLOE_OK)
            return st;
    if (sp->kind == DC_OPT_ADAM && (s[0] == 1.0 || s[0] != s[0]))
        return floe_fail(FLOE_INVALID_ARGUMENT, "beta1_power must not be 1");
    if (sp->kind == DC_OPT_ADAGRAD && !(s[0] > 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "lr must be positive, got %g", s[0]);
    for (int i = 0; i < sp->nvars; i++) {
        if ((st = floe_kernel_variable(kc, floe_kernel_input(kc, i), 1, &vars[i])) != FLOE_OK)
            return st;
        if (floe_variable_dtype(vars[i]) != dt)
            return floe_fail(FLOE_INVALID_ARGUMENT, "variable %d has dtype %s, expected %s", i,
                             floe_dtype_name(floe_variable_dtype(vars[i])), floe_dtype_name(dt));
        for (int j = 0; j < i; j++)
            if (vars[j] == vars[i])
                return floe_fail(FLOE_INVALID_ARGUMENT, "inputs %d and %d are the same variable",
                                 j, i);
        int k = i;
        while (k > 0 && (uintptr_t)order[k - 1] > (uintptr_t)vars[i]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = vars[i];
    }
    for (int i = 0; i < sp->nvars; i++)
        floe_variable_lock(order[i], 1);
    for (int i = 0; i < sp->nvars && st == FLOE_OK; i++) {
        floe_tensor *v;
        st = floe_variable_value_for_update(vars[i], &v);
        if (st == FLOE_OK && v == NULL)
            st = floe_fail(FLOE_FAILED_PRECONDITION, "variable %d is uninitialised", i);
        else if (st == FLOE_OK && (floe_tensor_dtype(v) != dt || !same_shape(v, grad)))
            st = slot_mismatch(sp, i, v, grad, dt);
        else if (st == FLOE_OK && floe_tensor_device(v) != floe_kernel_device(kc))
            st = floe_fail(FLOE_FAILED_PRECONDITION, "variable %d is not in this GPU's memory", i);
        if (st == FLOE_OK)
            slots[i] = dptr(v);
    }
    if (st == FLOE_OK)
        st = launched(dev_cuda__k_apply(d->stream, sp->kind, dt, floe_tensor_num_elements(grad),
                                        slots, dptr(grad), s, flag),
                      kc);
    for (int i = sp->nvars - 1; i >= 0; i--)
        floe_variable_unlock(order[i]);
    return st;
}

static floe_status var_handle_compute(floe_kernel_ctx *kc, void *state) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    const char *name = "", *container = "";
    size_t len;
    floe_dtype dt = FLOE_DTYPE_INVALID;
    floe_shape shape;
    floe_tensor *h;
    floe_status st;

    memset(&shape, 0, sizeof(shape));
    shape.ndim = -1;
    floe_attrs_get_string(a, "shared_name", &name, &len);
    floe_attrs_get_string(a, "container", &container, &len);
    floe_attrs_get_type(a, "dtype", &dt);
    floe_attrs_get_shape(a, "shape", &shape);
    if (name[0] == '\0')
        name = floe_kernel_node_name(kc);
    st = floe_kernel_resource_handle(kc, container, name, dt, &shape, &h);
    if (st != FLOE_OK)
        return st;
    st = floe_kernel_set_output(kc, 0, h);
    floe_tensor_unref(h);
    return st;
}

/* Locks @v exclusively and lends its value for an update in place.  An uninitialised
 * variable fails as on the CPU: the core's value_for_update() names it ("variable 'v'
 * (container '') is uninitialised"), and @v is left unlocked. */
static floe_status lock_for_update(floe_variable *v, floe_tensor **val) {
    floe_status st;
    floe_variable_lock(v, 1);
    st = floe_variable_value_for_update(v, val);
    if (st == FLOE_OK && *val == NULL)
        st = floe_fail(FLOE_FAILED_PRECONDITION, "variable is uninitialised");
    if (st != FLOE_OK)
        floe_variable_unlock(v);
    return st;
}

/* Reading a variable nobody created is FAILED_PRECONDITION "uninitialised", as on the
 * CPU (create = 1), not NOT_FOUND. */
static floe_status read_var_compute(floe_kernel_ctx *kc, void *state) {
    floe_variable *v;
    floe_tensor *val;
    floe_status st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 1, &v);

    if (st != FLOE_OK)
        return st;
    floe_variable_lock(v, 0);
    val = floe_variable_value(v);
    if (val == NULL) {
        floe_variable_unlock(v);
        if ((st = lock_for_update(v, &val)) != FLOE_OK) /* or assigned meanwhile */
            return st;
    }
    if (floe_tensor_dtype(val) != floe_kernel_output_dtype(kc, 0))
        st = floe_fail(FLOE_INVALID_ARGUMENT, "variable holds %s, the node reads %s",
                       floe_dtype_name(floe_tensor_dtype(val)),
                       floe_dtype_name(floe_kernel_output_dtype(kc, 0)));
    else
        st = floe_kernel_set_output(kc, 0, val);
    floe_variable_unlock(v);
    return st;
}

/* As the CPU kernel (ops_math/variable.c), validate_shape included. */
static floe_status assign_var_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *value = floe_kernel_input(kc, 1), *old;
    floe_variable *v;
    int validate = 0;
    floe_status st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 1, &v);

    if (st != FLOE_OK)
        return st;
    floe_attrs_get_bool(floe_kernel_attrs(kc), "validate_shape", &validate);
    if (floe_variable_dtype(v) != floe_tensor_dtype(value))
        return floe_fail(FLOE_INVALID_ARGUMENT, "AssignVariableOp: the variable has dtype %s, got %s",
                         floe_dtype_name(floe_variable_dtype(v)),
                         floe_dtype_name(floe_tensor_dtype(value)));
    floe_variable_lock(v, 1);
    old = floe_variable_value(v);
    if (validate && old != NULL && !same_shape(old, value)) {
        char a[160], b[160];
        dev_cuda__format_dims(floe_tensor_shape(old), floe_tensor_ndim(old), a, sizeof(a));
        dev_cuda__format_dims(floe_tensor_shape(value), floe_tensor_ndim(value), b, sizeof(b));
        st = floe_fail(FLOE_INVALID_ARGUMENT, "AssignVariableOp (validate_shape): the variable "
                       "has shape %s but the value has shape %s", a, b);
    } else {
        st = floe_variable_assign(v, value);
    }
    floe_variable_unlock(v);
    return st;
}

/* AssignAdd/AssignSub: the binary kernel, in place on the variable's value. */
static floe_status assign_update_run(floe_kernel_ctx *kc, int code) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *value = floe_kernel_input(kc, 1);
    floe_variable *v;
    floe_tensor *cur;
    dev_cuda__bcast p;
    char err[64];
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = floe_kernel_variable(kc, floe_kernel_input(kc, 0), 1, &v)) != FLOE_OK)
        return st;
    if ((st = lock_for_update(v, &cur)) != FLOE_OK)
        return st;
    if (floe_tensor_dtype(cur) != floe_tensor_dtype(value)) {
        st = floe_fail(FLOE_INVALID_ARGUMENT, "%s: the variable has dtype %s, got %s",
                       code == DC_ADD ? "AssignAddVariableOp" : "AssignSubVariableOp",
                       floe_dtype_name(floe_tensor_dtype(cur)),
                       floe_dtype_name(floe_tensor_dtype(value)));
    } else if (!same_shape(cur, value)) { /* the CPU kernel's message (ops_math/variable.c) */
        char a[160], b[160];
        dev_cuda__format_dims(floe_tensor_shape(cur), floe_tensor_ndim(cur), a, sizeof(a));
        dev_cuda__format_dims(floe_tensor_shape(value), floe_tensor_ndim(value), b, sizeof(b));
        st = floe_fail(FLOE_INVALID_ARGUMENT,
                       "%s: the variable has shape %s but the value has shape %s",
                       code == DC_ADD ? "AssignAddVariableOp" : "AssignSubVariableOp", a, b);
    }
    if (st == FLOE_OK)
        st = dev_cuda__bcast_plan(floe_tensor_shape(cur), floe_tensor_ndim(cur),
                                  floe_tensor_shape(value), floe_tensor_ndim(value), &p, err,
                                  sizeof(err));
    if (st == FLOE_OK)
        st = launched(dev_cuda__k_binary(d->stream, code, floe_tensor_dtype(cur),
                                         &p, dptr(cur), dptr(value), dptr(cur)),
                      kc);
    floe_variable_unlock(v);
    return st;
}

/* ---- Pooling (NHWC or NCHW) ---------------------------------------------------------------- */

/* Output extent and leading padding of one spatial dim, TensorFlow's VALID and SAME. */
static floe_status pool_dim(int64_t in, int64_t k, int64_t s, bool same, int64_t *out,
                            int64_t *pad) {
    if (k <= 0 || s <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "ksize and strides must be positive");
    if (same) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + k - in;
        *pad = total > 0 ? total / 2 : 0;
    } else {
        *out = in >= k ? (in - k) / s + 1 : 0;
        *pad = 0;
    }
    return FLOE_OK;
}

static floe_status pool_plan(floe_kernel_ctx *kc, const int64_t *in_dims, dev_cuda__pool *p) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    const int64_t *ks = NULL, *ss = NULL;
    int nk = 0, nstr = 0;
    const char *pad = "", *fmt = "NHWC";
    size_t plen = 0, flen = 4;
    bool same;
    floe_status st;

    floe_attrs_get_int_list(a, "ksize", &ks, &nk);
    floe_attrs_get_int_list(a, "strides", &ss, &nstr);
    floe_attrs_get_string(a, "padding", &pad, &plen);
    floe_attrs_get_string(a, "data_format", &fmt, &flen);
    bool nchw = flen == 4 && memcmp(fmt, "NCHW", 4) == 0;
    if (!nchw && (flen != 4 || memcmp(fmt, "NHWC", 4) != 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "data_format must be NHWC or NCHW, got %.*s",
                         (int)flen, fmt);
    int hi = nchw ? 2 : 1, wi = nchw ? 3 : 2, ci = nchw ? 1 : 3;
    if (nk != 4 || nstr != 4 || ks[0] != 1 || ks[ci] != 1 || ss[0] != 1 || ss[ci] != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ksize and strides must have 4 entries, 1 for batch and channels");
    if (!(plen == 4 && memcmp(pad, "SAME", 4) == 0) && !(plen == 5 && memcmp(pad, "VALID", 5) == 0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "padding must be SAME or VALID");
    same = plen == 4;
    memset(p, 0, sizeof(*p));
    p->nchw = nchw;
    p->n = in_dims[0];
    p->h = in_dims[hi];
    p->w = in_dims[wi];
    p->c = in_dims[ci];
    p->kh = ks[hi];
    p->kw = ks[wi];
    p->sh = ss[hi];
    p->sw = ss[wi];
    if ((st = pool_dim(p->h, p->kh, p->sh, same, &p->oh, &p->pt)) != FLOE_OK ||
        (st = pool_dim(p->w, p->kw, p->sw, same, &p->ow, &p->pl)) != FLOE_OK)
        return st;
    return FLOE_OK;
}

/* The pooled output's dims in the data format. */
static void pooled_dims(const dev_cuda__pool *p, int64_t *od) {
    int64_t nhwc[4] = {p->n, p->oh, p->ow, p->c}, nchw[4] = {p->n, p->c, p->oh, p->ow};
    memcpy(od, p->nchw ? nchw : nhwc, sizeof(nhwc));
}

static floe_status rank4_f32(const floe_tensor *t, const char *what) {
    if (floe_tensor_ndim(t) != 4 || floe_tensor_dtype(t) != FLOE_DTYPE_F32)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be a 4-D f32 tensor, got rank %d", what,
                         floe_tensor_ndim(t));
    return FLOE_OK;
}

static floe_status pool_run(floe_kernel_ctx *kc, bool avg) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0);
    dev_cuda__pool p;
    floe_tensor *y;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = rank4_f32(x, "input")) != FLOE_OK || (st = pool_plan(kc, floe_tensor_shape(x), &p)) != FLOE_OK)
        return st;
    int64_t od[4];
    pooled_dims(&p, od);
    if ((st = floe_kernel_alloc_output(kc, 0, od, 4, &y)) != FLOE_OK)
        return st;
    return launched(!avg ? dev_cuda__k_maxpool(d->stream, &p, dptr(x), dptr(y))
                                  : dev_cuda__k_avgpool(d->stream, &p, dptr(x), dptr(y)),
                    kc);
}

/* The CPU kernel's message (ops_nn/pool.c): "MaxPoolGrad: grad has shape [1,3,3,2], the
 * pooling gives [1,2,2,2]". */
static floe_status check_grad_dims(const char *op, const dev_cuda__pool *p,
                                   const floe_tensor *g) {
    int64_t od[4];
    char have[160], want[160];
    pooled_dims(p, od);
    if (floe_tensor_ndim(g) == 4 && floe_tensor_dim(g, 0) == od[0] &&
        floe_tensor_dim(g, 1) == od[1] && floe_tensor_dim(g, 2) == od[2] &&
        floe_tensor_dim(g, 3) == od[3])
        return FLOE_OK;
    dev_cuda__format_dims(floe_tensor_shape(g), floe_tensor_ndim(g), have, sizeof(have));
    dev_cuda__format_dims(od, 4, want, sizeof(want));
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: grad has shape %s, the pooling gives %s", op,
                     have, want);
}

static floe_status maxpool_grad_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *x = floe_kernel_input(kc, 0), *g = floe_kernel_input(kc, 2);
    dev_cuda__pool p;
    floe_tensor *dx;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = rank4_f32(x, "orig_input")) != FLOE_OK ||
        (st = pool_plan(kc, floe_tensor_shape(x), &p)) != FLOE_OK ||
        (st = check_grad_dims("MaxPoolGrad", &p, g)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), 4, &dx)) != FLOE_OK)
        return st;
    return launched(dev_cuda__k_maxpool_grad(d->stream, &p, dptr(x), dptr(g), dptr(dx)), kc);
}

static floe_status avgpool_grad_compute(floe_kernel_ctx *kc, void *state) {
    dev_cuda__device *d = dev_cuda__kernel_gpu(kc);
    const floe_tensor *g = floe_kernel_input(kc, 1);
    int64_t dims[4];
    int n;
    dev_cuda__pool p;
    floe_tensor *dx;
    floe_status st;

    if (d == NULL)
        return FLOE_INTERNAL;
    if ((st = read_ints(floe_kernel_input(kc, 0), "orig_input_shape", dims, 4, &n)) != FLOE_OK)
        return st;
    if (n != 4 || dims[0] < 0 || dims[1] < 0 || dims[2] < 0 || dims[3] < 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "orig_input_shape must be 4 non-negative extents");
    if ((st = pool_plan(kc, dims, &p)) != FLOE_OK ||
        (st = check_grad_dims("AvgPoolGrad", &p, g)) != FLOE_OK)
        return st;
    if ((st = floe_kernel_alloc_output(kc, 0, dims, 4, &dx)) != FLOE_OK)
        return st;
    return launched(dev_cuda__k_avgpool_grad(d->stream, &p, dptr(g), dptr(dx)), kc);
}

/* ---- The kernel table ---------------------------------------------------------------------- */

/* One compute() per op: each names its op's code for the shared implementation. */
#define WRAP(NAME, RUN, ARG)                                                                \
    static floe_status NAME(floe_kernel_ctx *kc, void *state) {                            \
        (void)state;                                                                        \
        return RUN(kc, ARG);                                                                \
    }

WRAP(add_k, binary_run, DC_ADD)
WRAP(sub_k, binary_run, DC_SUB)
WRAP(mul_k, binary_run, DC_MUL)
WRAP(div_k, binary_run, DC_DIV)
WRAP(max_k, binary_run, DC_MAX)
WRAP(min_k, binary_run, DC_MIN)
WRAP(relu_grad_k, binary_run, DC_RELU_GRAD)
WRAP(relu6_grad_k, binary_run, DC_RELU6_GRAD)
WRAP(neg_k, unary_run, DC_NEG)
WRAP(abs_k, unary_run, DC_ABS)
WRAP(exp_k, unary_run, DC_EXP)
WRAP(log_k, unary_run, DC_LOG)
WRAP(sqrt_k, unary_run, DC_SQRT)
WRAP(rsqrt_k, unary_run, DC_RSQRT)
WRAP(square_k, unary_run, DC_SQUARE)
WRAP(relu_k, unary_run, DC_RELU)
WRAP(relu6_k, unary_run, DC_RELU6)
WRAP(sigmoid_k, unary_run, DC_SIGMOID)
WRAP(tanh_k, unary_run, DC_TANH)
WRAP(sign_k, unary_run, DC_SIGN)
WRAP(sin_k, unary_run, DC_SIN)
WRAP(cos_k, unary_run, DC_COS)
WRAP(log1p_k, unary_run, DC_LOG1P)
WRAP(softplus_k, unary_run, DC_SOFTPLUS)
WRAP(sum_k, reduce_run, DC_SUM)
WRAP(mean_k, reduce_run, DC_MEAN)
WRAP(prod_k, reduce_run, DC_PROD)
WRAP(rmax_k, reduce_run, DC_RMAX)
WRAP(rmin_k, reduce_run, DC_RMIN)
WRAP(zeros_k, zeros_ones_run, false)
WRAP(ones_k, zeros_ones_run, true)
WRAP(assign_add_k, assign_update_run, DC_ADD)
WRAP(assign_sub_k, assign_update_run, DC_SUB)
WRAP(sgd_k, apply_run, &apply_specs[0])
WRAP(momentum_k, apply_run, &apply_specs[1])
WRAP(adam_k, apply_run, &apply_specs[2])
WRAP(adagrad_k, apply_run, &apply_specs[3])
WRAP(rmsprop_k, apply_run, &apply_specs[4])
WRAP(maxpool_k, pool_run, false)
WRAP(avgpool_k, pool_run, true)

typedef struct gpu_kernel {
    const char *op;
    floe_status (*compute)(floe_kernel_ctx *, void *);
    const char *const *constraints;
    const char *const *host_memory;
} gpu_kernel;

#define SPECS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *const T_NUM[] = {"T: {f32, f64, i32, i64}", NULL};
static const char *const T_FLOAT[] = {"T: {f32, f64}", NULL};
static const char *const T_F32[] = {"T: {f32}", NULL};
static const char *const CAST_TYPES[] = {"SrcT: {f32, f64, i32, i64, u8, bool}",
                                         "DstT: {f32, f64, i32, i64, u8, bool}", NULL};
static const char *const VAR_NUM[] = {"dtype: {f32, f64, i32, i64}", NULL};
/* Every fixed-size type: strings (host pointers) and resources never go to the GPU. */
#define FIXED_TYPES "{f32, f64, i32, u8, i16, i8, complex64, i64, bool, bf16, u16, f16, u32, u64}"
static const char *const T_FIXED[] = {"T: " FIXED_TYPES, NULL};
static const char *const TPARAMS_FIXED[] = {"Tparams: " FIXED_TYPES, NULL};
static const char *const DTYPE_FIXED[] = {"dtype: " FIXED_TYPES, NULL};

static const gpu_kernel gpu_kernels[] = {
    {"AddV2", add_k, T_NUM, NULL},
    {"Sub", sub_k, T_NUM, NULL},
    {"Mul", mul_k, T_NUM, NULL},
    {"RealDiv", div_k, T_FLOAT, NULL},
    {"Maximum", max_k, T_NUM, NULL},
    {"Minimum", min_k, T_NUM, NULL},
    {"ReluGrad", relu_grad_k, T_FLOAT, NULL},
    {"Relu6Grad", relu6_grad_k, T_FLOAT, NULL},
    {"Neg", neg_k, T_NUM, NULL},
    {"Abs", abs_k, T_NUM, NULL},
    {"Exp", exp_k, T_FLOAT, NULL},
    {"Log", log_k, T_FLOAT, NULL},
    {"Sqrt", sqrt_k, T_FLOAT, NULL},
    {"Rsqrt", rsqrt_k, T_FLOAT, NULL},
    {"Square", square_k, T_NUM, NULL},
    {"Relu", relu_k, T_FLOAT, NULL},
    {"Relu6", relu6_k, T_FLOAT, NULL},
    {"Sigmoid", sigmoid_k, T_FLOAT, NULL},
    {"Tanh", tanh_k, T_FLOAT, NULL},
    {"Sign", sign_k, T_NUM, NULL},
    {"Sin", sin_k, T_FLOAT, NULL},
    {"Cos", cos_k, T_FLOAT, NULL},
    {"Log1p", log1p_k, T_FLOAT, NULL},
    {"Softplus", softplus_k, T_FLOAT, NULL},
    {"Sum", sum_k, T_NUM, SPECS("reduction_indices")},
    {"Mean", mean_k, T_NUM, SPECS("reduction_indices")},
    {"Prod", prod_k, T_NUM, SPECS("reduction_indices")},
    {"Max", rmax_k, T_NUM, SPECS("reduction_indices")},
    {"Min", rmin_k, T_NUM, SPECS("reduction_indices")},
    {"BiasAdd", bias_add_compute, T_NUM, NULL},
    {"BiasAddGrad", bias_add_grad_compute, T_FLOAT, NULL},
    {"Identity", identity_compute, T_FIXED, NULL},
    {"StopGradient", identity_compute, T_FIXED, NULL},
    {"Reshape", reshape_compute, T_FIXED, SPECS("shape")},
    {"Shape", shape_compute, T_FIXED, SPECS("output")},
    {"Cast", cast_compute, CAST_TYPES, NULL},
    {"Fill", fill_compute, T_NUM, SPECS("dims", "value")},
    {"ZerosLike", zeros_k, T_NUM, NULL},
    {"OnesLike", ones_k, T_NUM, NULL},
    {"Transpose", transpose_compute, T_FIXED, SPECS("perm")},
    {"ConcatV2", concat_compute, T_FIXED, SPECS("axis")},
    {"Slice", slice_compute, T_FIXED, SPECS("begin", "size")},
    {"GatherV2", gather_compute, TPARAMS_FIXED, SPECS("indices", "axis")},
    {"SparseSoftmaxCrossEntropyWithLogits", sparse_xent_compute, T_FLOAT, NULL},
    {"ResourceApplyGradientDescent", sgd_k, T_FLOAT, SPECS("alpha")},
    {"ResourceApplyMomentum", momentum_k, T_FLOAT, SPECS("lr", "momentum")},
    {"ResourceApplyAdam", adam_k, T_FLOAT,
     SPECS("beta1_power", "beta2_power", "lr", "beta1", "beta2", "epsilon")},
    {"ResourceApplyAdagrad", adagrad_k, T_FLOAT, SPECS("lr")},
    {"ResourceApplyRMSProp", rmsprop_k, T_FLOAT, SPECS("lr", "rho", "momentum", "epsilon")},
    {"VarHandleOp", var_handle_compute, DTYPE_FIXED, NULL},
    {"ReadVariableOp", read_var_compute, DTYPE_FIXED, NULL},
    {"AssignVariableOp", assign_var_compute, DTYPE_FIXED, NULL},
    {"AssignAddVariableOp", assign_add_k, VAR_NUM, NULL},
    {"AssignSubVariableOp", assign_sub_k, VAR_NUM, NULL},
    {"MaxPool", maxpool_k, T_F32, NULL},
    {"AvgPool", avgpool_k, T_F32, NULL},
    {"MaxPoolGrad", maxpool_grad_compute, T_F32, NULL},
    {"AvgPoolGrad", avgpool_grad_compute, T_F32, SPECS("orig_input_shape")},
};

static const char *const RANDOM_TYPES[] = {"dtype: {f32, f64}", NULL};
static const char *const SHAPE_ARG[] = {"shape", NULL};

static const struct {
    const char *op;
    floe_status (*create)(floe_kernel_ctx *, void **);
} random_kernels[] = {
    {"RandomUniform", uniform_create},
    {"RandomStandardNormal", normal_create},
    {"TruncatedNormal", truncated_create},
};

floe_status dev_cuda__register_ops(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(random_kernels) / sizeof(random_kernels[0]); i++) {
        floe_kernel_def k;
        floe_status st;
        memset(&k, 0, sizeof(k));
        k.struct_size = sizeof(k);
        k.op = random_kernels[i].op;
        k.device_type = "GPU";
        k.constraints = RANDOM_TYPES;
        k.create = random_kernels[i].create;
        k.compute = random_compute;
        k.destroy = random_destroy;
        k.host_memory = SHAPE_ARG;
        if ((st = floe_register_kernel(self, &k)) != FLOE_OK)
            return st;
    }
    for (size_t i = 0; i < sizeof(gpu_kernels) / sizeof(gpu_kernels[0]); i++) {
        const gpu_kernel *g = &gpu_kernels[i];
        floe_kernel_def k;
        floe_status st;

        memset(&k, 0, sizeof(k));
        k.struct_size = sizeof(k);
        k.op = g->op;
        k.device_type = "GPU";
        k.constraints = g->constraints;
        k.compute = g->compute;
        k.host_memory = g->host_memory;
        st = floe_register_kernel(self, &k);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
