/*
 * array.c - TensorFlow's array ops with CPU kernels: Reshape, Transpose, ConcatV2, Pack,
 * Unpack, Fill, ZerosLike, OnesLike, Range, Shape, Rank, Size, ExpandDims, Squeeze, Tile,
 * Pad and PadV2, with TensorFlow's names, attrs, semantics and error messages.
 *
 * Every kernel moves elements by size (memcpy of contiguous runs), so one kernel serves
 * every dtype but RESOURCE; STRING elements are copied one by one with
 * floe_tensor_set_string() (ops_math__copier).  Shape, axis, perm, multiples and
 * padding inputs are validated in the shape functions when the graph knows their values
 * and again in the kernels, always before any byte is written: a permutation must be
 * one, every extent is checked against int64 overflow, every index against its range.
 *
 * Reshape, ExpandDims and Squeeze share their input's buffer (host->tensor_reshape):
 * they copy nothing.
 *
 * Sections: helpers shared with slice.c and gather.c; Reshape; Transpose; ConcatV2 and
 * Pack; Unpack; Fill, ZerosLike, OnesLike; Range; Shape, Rank, Size; ExpandDims,
 * Squeeze; Tile; Pad and PadV2; registration.
 */
#include "ops_math-impl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        floe_status try_st_ = (expr);                                                              \
        if (try_st_ != FLOE_OK)                                                                    \
            return try_st_;                                                                        \
    } while (0)

/* Room for a formatted shape: "[" + 8 * ("," + 20 digits) + "]". */
#define DIMS_BUF 200

/* ---- Helpers shared with slice.c and gather.c -------------------------------------- */

typedef struct copy_all_job {
    char *dst;
    const char *src;
    size_t esize;
} copy_all_job;

static void copy_all_range(void *arg, int64_t begin, int64_t end) {
    const copy_all_job *j = arg;
    memcpy(j->dst + (size_t)begin * j->esize, j->src + (size_t)begin * j->esize,
           (size_t)(end - begin) * j->esize);
}

floe_status ops_math__copy_all(floe_threadpool *pool, floe_tensor *dst, const floe_tensor *src) {
    int64_t n = floe_tensor_num_elements(src);
    ops_math__copier c;

    if (n != floe_tensor_num_elements(dst) || floe_tensor_dtype(dst) != floe_tensor_dtype(src))
        return floe_fail(FLOE_INTERNAL, "copy between tensors of different sizes");
    if (n == 0)
        return FLOE_OK;
    ops_math__copier_init(&c, dst, src);
    if (c.strings)
        return ops_math__copier_run(&c, 0, 0, n);
    copy_all_job j = {c.dst_data, c.src_data, c.esize};
    ops_math__parallel(pool, n, OPS_MATH_COPY_GRAIN_BYTES / (int64_t)c.esize, copy_all_range, &j);
    return FLOE_OK;
}

floe_status ops_math__index_values(const floe_tensor *t, const char *what, int64_t *out, int cap,
                                   int *n) {
    floe_dtype dt = floe_tensor_dtype(t);
    int64_t count = floe_tensor_num_elements(t);
    const void *data = floe_tensor_data(t);

    *n = 0;
    if (dt != FLOE_DTYPE_I32 && dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be int32 or int64, not %s", what,
                         floe_dtype_name(dt));
    if (count > cap)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s has %lld elements, at most %d are supported",
                         what, (long long)count, cap);
    if (count > 0 && data == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s is not in host memory", what);
    for (int64_t i = 0; i < count; i++)
        out[i] =
            dt == FLOE_DTYPE_I32 ? (int64_t)((const int32_t *)data)[i] : ((const int64_t *)data)[i];
    *n = (int)count;
    return FLOE_OK;
}

floe_status ops_math__index_scalar(const floe_tensor *t, const char *what, int64_t *out) {
    char buf[DIMS_BUF];
    int n;

    *out = 0;
    if (floe_tensor_ndim(t) > 1 || floe_tensor_num_elements(t) != 1) {
        ops_math__format_dims(floe_tensor_shape(t), floe_tensor_ndim(t), buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be a scalar, not shape %s", what, buf);
    }
    return ops_math__index_values(t, what, out, 1, &n);
}

floe_status ops_math__shape_index_values(floe_shape_ctx *sc, int i, const char *what, int64_t *out,
                                         int cap, int *n, bool *known) {
    floe_tensor *v = floe_shape_input_value(sc, i);

    *n = 0;
    *known = false;
    if (v == NULL)
        return FLOE_OK;
    TRY(ops_math__index_values(v, what, out, cap, n));
    *known = true;
    return FLOE_OK;
}

floe_status ops_math__checked_count(const char *op, const int64_t *dims, int ndim, int64_t *out) {
    int64_t count = 1;
    char buf[DIMS_BUF];

    *out = 0;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || __builtin_mul_overflow(count, dims[i], &count)) {
            ops_math__format_dims(dims, ndim, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: shape %s has too many elements", op, buf);
        }
    }
    *out = count;
    return FLOE_OK;
}

void ops_math__strides(const int64_t *dims, int ndim, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* A shape of unknown rank, and one of known rank with unknown extents. */
static floe_shape shape_unknown(void) {
    floe_shape s;
    memset(&s, 0, sizeof(s));
    s.ndim = -1;
    return s;
}

static floe_shape shape_unknown_dims(int ndim) {
    floe_shape s = shape_unknown();
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dims[i] = -1;
    return s;
}

static bool shape_fully_known(const floe_shape *s) {
    if (s->ndim < 0)
        return false;
    for (int i = 0; i < s->ndim; i++)
        if (s->dims[i] < 0)
            return false;
    return true;
}

static floe_status check_rank(const char *op, int64_t rank) {
    if (rank > FLOE_MAX_DIMS)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: rank %lld exceeds the maximum of %d", op,
                         (long long)rank, FLOE_MAX_DIMS);
    return FLOE_OK;
}

/* Writes @n copies of the @esize-byte element @elem at @dst, by doubling memcpys. */
static void fill_bytes(char *dst, int64_t n, const void *elem, size_t esize) {
    size_t total = (size_t)n * esize, filled = esize;

    if (n <= 0)
        return;
    memcpy(dst, elem, esize);
    while (filled < total) {
        size_t k = filled < total - filled ? filled : total - filled;
        memcpy(dst + filled, dst, k);
        filled += k;
    }
}

/* Sets every element of @t to the element at @elem (a floe_tstring for STRING). */
static floe_status fill_tensor(floe_tensor *t, const void *elem) {
    int64_t n = floe_tensor_num_elements(t);

    if (n == 0)
        return FLOE_OK;
    if (floe_tensor_dtype(t) == FLOE_DTYPE_STRING) {
        const floe_tstring *s = elem;
        for (int64_t i = 0; i < n; i++)
            TRY(floe_tensor_set_string(t, i, s->data != NULL ? s->data : "", s->size));
        return FLOE_OK;
    }
    fill_bytes(floe_tensor_data(t), n, elem, floe_dtype_size(floe_tensor_dtype(t)));
    return FLOE_OK;
}

/* ---- Reshape ---------------------------------------------------------------------- */

/* Checks the requested sizes (one -1 at most, others >= 0, product fits int64) and copies
 * them to @out with the -1 left as 1; *@unknown (out) is its index or -1, *@product the
 * product of the positive sizes, *@has_zero whether one is 0. */
static floe_status reshape_check_sizes(const int64_t *sizes, int n, int64_t *out, int *unknown,
                                       int64_t *product, bool *has_zero) {
    char buf[DIMS_BUF];

    *unknown = -1;
    *product = 1;
    *has_zero = false;
    TRY(check_rank("Reshape", n));
    for (int d = 0; d < n; d++) {
        int64_t s = sizes[d];
        out[d] = s;
        if (s == -1) {
            if (*unknown != -1)
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "Only one input size may be -1, not both %d and %d", *unknown, d);
            *unknown = d;
            out[d] = 1;
        } else if (s < 0) {
            return floe_fail(FLOE_INVALID_ARGUMENT, "Size %d must be non-negative, not %lld", d,
                             (long long)s);
        } else if (s == 0) {
            *has_zero = true;
        } else if (__builtin_mul_overflow(*product, s, product)) {
            ops_math__format_dims(sizes, n, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "Shape %s has too many elements", buf);
        }
    }
    return FLOE_OK;
}

/* TensorFlow's Reshape: the output dims for an input of fully known shape @in. */
static floe_status reshape_resolve(const int64_t *in, int in_ndim, const int64_t *sizes, int n,
                                   int64_t *out) {
    int64_t in_count, product, out_count;
    int unknown;
    bool has_zero;

    TRY(ops_math__checked_count("Reshape", in, in_ndim, &in_count));
    TRY(reshape_check_sizes(sizes, n, out, &unknown, &product, &has_zero));
    if (unknown != -1) {
        /* Zero extents of the input are left out of the count when the request has one
         * too, so [2,0,3] -> [0,-1] infers 6 as TensorFlow does. */
        int64_t known = 1;
        bool in_has_zero = false;
        for (int d = 0; d < in_ndim; d++) {
            if (in[d] > 0 || !has_zero) {
                if (__builtin_mul_overflow(known, in[d], &known))
                    return floe_fail(FLOE_INVALID_ARGUMENT,
                                     "Reshape: input shape has too many elements");
            } else {
                in_has_zero = true;
            }
        }
        int64_t missing = known / product;
        if (!in_has_zero && product * missing != known)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Input to reshape is a tensor with %lld values, but the requested "
                             "shape requires a multiple of %lld",
                             (long long)known, (long long)product);
        out[unknown] = missing;
    }
    if (ops_math__checked_count("Reshape", out, n, &out_count) != FLOE_OK ||
        out_count != in_count) {
        char buf[DIMS_BUF];
        ops_math__format_dims(out, n, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Input to reshape is a tensor with %lld values, but the requested "
                         "shape %s has %lld",
                         (long long)in_count, buf, (long long)out_count);
    }
    return FLOE_OK;
}

static floe_status reshape_check_shape_rank(int ndim, const int64_t *dims) {
    char buf[DIMS_BUF];
    if (ndim > 1) {
        ops_math__format_dims(dims, ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "sizes input must be 1-D, not %s", buf);
    }
    return FLOE_OK;
}

static floe_status reshape_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), sz = floe_shape_input(sc, 1), out;
    int64_t sizes[FLOE_MAX_DIMS], product;
    int n, unknown;
    bool known, has_zero;

    TRY(reshape_check_shape_rank(sz.ndim, sz.dims));
    if (floe_shape_input_value(sc, 1) != NULL)
        TRY(check_rank("Reshape", floe_tensor_num_elements(floe_shape_input_value(sc, 1))));
    TRY(ops_math__shape_index_values(sc, 1, "shape", sizes, FLOE_MAX_DIMS, &n, &known));
    if (!known) {
        if (sz.ndim == 0)
            out = shape_unknown_dims(1);
        else if (sz.ndim == 1 && sz.dims[0] >= 0) {
            TRY(check_rank("Reshape", sz.dims[0]));
            out = shape_unknown_dims((int)sz.dims[0]);
        } else
            out = shape_unknown();
        return floe_shape_set_output(sc, 0, &out);
    }
    out = shape_unknown_dims(n);
    if (shape_fully_known(&in)) {
        TRY(reshape_resolve(in.dims, in.ndim, sizes, n, out.dims));
    } else {
        TRY(reshape_check_sizes(sizes, n, out.dims, &unknown, &product, &has_zero));
        if (unknown >= 0)
            out.dims[unknown] = -1;
    }
    return floe_shape_set_output(sc, 0, &out);
}

/* Output 0 of @kc is @in's buffer under another shape: Reshape, ExpandDims and Squeeze
 * copy nothing. */
static floe_status emit_view(floe_kernel_ctx *kc, floe_tensor *in, const int64_t *dims, int n) {
    floe_tensor *view;
    TRY(floe_tensor_reshape(in, dims, n, &view));
    floe_status st = floe_kernel_set_output(kc, 0, view);
    floe_tensor_unref(view);
    return st;
}

static floe_status reshape_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *shape;
    int64_t sizes[FLOE_MAX_DIMS], dims[FLOE_MAX_DIMS];
    int n;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &shape));
    TRY(reshape_check_shape_rank(floe_tensor_ndim(shape), floe_tensor_shape(shape)));
    TRY(check_rank("Reshape", floe_tensor_num_elements(shape)));
    TRY(ops_math__index_values(shape, "shape", sizes, FLOE_MAX_DIMS, &n));
    TRY(reshape_resolve(floe_tensor_shape(in), floe_tensor_ndim(in), sizes, n, dims));
    return emit_view(kc, in, dims, n);
}

/* ---- Transpose -------------------------------------------------------------------- */

/* Side of the square tiles a transpose moves at a time: the tile's source lines stay in
 * L1 while it writes whole output runs (measured best among 8..64 on 4096^2 f32, where
 * power-of-two strides make larger tiles thrash cache sets). */
#define TRANSPOSE_TILE 16

/* Checks that @perm (@n values) is a permutation of 0..@rank-1, into @out. */
static floe_status transpose_check_perm(const int64_t *perm, int n, int rank, int *out) {
    bool seen[FLOE_MAX_DIMS] = {false};

    if (n != rank)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "transpose expects a vector of size %d. But input(1) is a vector of "
                         "size %d",
                         rank, n);
    for (int i = 0; i < n; i++) {
        int64_t p = perm[i];
        if (p < 0 || p >= rank)
            return floe_fail(FLOE_INVALID_ARGUMENT, "perm[%d] = %lld is out of range [0 .. %d)", i,
                             (long long)p, rank);
        if (seen[p])
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "perm[%d] = %lld is a duplicate: perm must be a permutation of "
                             "0..%d",
                             i, (long long)p, rank - 1);
        seen[p] = true;
        out[i] = (int)p;
    }
    return FLOE_OK;
}

static floe_status transpose_check_perm_rank(int ndim, const int64_t *dims) {
    char buf[DIMS_BUF];
    if (ndim != 1) {
        ops_math__format_dims(dims, ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "perm must be a vector, not %s", buf);
    }
    return FLOE_OK;
}

static floe_status transpose_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), ps = floe_shape_input(sc, 1), out;
    int64_t perm[FLOE_MAX_DIMS] = {0};
    int p[FLOE_MAX_DIMS], n;
    bool known;

    if (ps.ndim >= 0)
        TRY(transpose_check_perm_rank(ps.ndim, ps.dims));
    TRY(ops_math__shape_index_values(sc, 1, "perm", perm, FLOE_MAX_DIMS, &n, &known));
    if (known && in.ndim >= 0) {
        TRY(transpose_check_perm(perm, n, in.ndim, p));
        out = shape_unknown_dims(n);
        for (int i = 0; i < n; i++)
            out.dims[i] = in.dims[p[i]];
    } else if (in.ndim >= 0) {
        if (ps.ndim == 1 && ps.dims[0] >= 0 && ps.dims[0] != in.ndim)
            return transpose_check_perm(perm, (int)ps.dims[0], in.ndim, p);
        out = shape_unknown_dims(in.ndim);
    } else if (known) {
        TRY(transpose_check_perm(perm, n, n, p)); /* the rank is the perm's length */
        out = shape_unknown_dims(n);
    } else if (ps.ndim == 1 && ps.dims[0] >= 0) {
        TRY(check_rank("Transpose", ps.dims[0]));
        out = shape_unknown_dims((int)ps.dims[0]);
    } else {
        out = shape_unknown();
    }
    return floe_shape_set_output(sc, 0, &out);
}

/*
 * Collapses a transpose of @dims (rank @r, no zero extent) by @perm: drops extent-1 dims
 * and merges input dims that stay neighbours in the output, into @cdims (the collapsed
 * input dims) and @cperm.  Returns the collapsed rank (0 for one element).
 */
static int transpose_collapse(const int64_t *dims, const int *perm, int r, int64_t *cdims,
                              int *cperm) {
    int map[FLOE_MAX_DIMS], p1[FLOE_MAX_DIMS], gstart[FLOE_MAX_DIMS], glen[FLOE_MAX_DIMS];
    int64_t d1[FLOE_MAX_DIMS];
    int r1 = 0, n1 = 0, ng = 0;

    for (int k = 0; k < r; k++) {
        map[k] = dims[k] == 1 ? -1 : r1;
        if (dims[k] != 1)
            d1[r1++] = dims[k];
    }
    for (int i = 0; i < r; i++)
        if (map[perm[i]] >= 0)
            p1[n1++] = map[perm[i]];
    for (int i = 0; i < n1; i++) {
        if (i > 0 && p1[i] == p1[i - 1] + 1) {
            glen[ng - 1]++;
        } else {
            gstart[ng] = p1[i];
            glen[ng] = 1;
            ng++;
        }
    }
    for (int g = 0; g < ng; g++) {
        int rank = 0;
        for (int h = 0; h < ng; h++)
            rank += gstart[h] < gstart[g];
        cperm[g] = rank;
        int64_t size = 1;
        for (int k = gstart[g]; k < gstart[g] + glen[g]; k++)
            size *= d1[k];
        cdims[rank] = size;
    }
    return ng;
}

typedef struct transpose_job {
    int ndim; /* collapsed rank, >= 2 */
    int64_t out_dims[FLOE_MAX_DIMS];
    int64_t src_stride[FLOE_MAX_DIMS]; /* input elements per step of each output dim */
    int64_t out_stride[FLOE_MAX_DIMS];
    char *dst;
    const char *src;
    size_t esize;
    /* Tiled case: output dim @a reads the input's contiguous dim. */
    int a;
    int64_t tiles_a, tiles_last;
} transpose_job;

/* Input and output offsets of output row @row (every output dim but the last). */
static void transpose_row_base(const transpose_job *j, int64_t row, int64_t *src, int64_t *dst) {
    *src = 0;
    *dst = 0;
    for (int k = j->ndim - 2; k >= 0; k--) {
        int64_t c = row % j->out_dims[k];
        row /= j->out_dims[k];
        *src += c * j->src_stride[k];
        *dst += c * j->out_stride[k];
    }
}

/* The innermost input dim stays innermost: whole output rows are contiguous inputs. */
static void transpose_rows(void *arg, int64_t begin, int64_t end) {
    const transpose_job *j = arg;
    size_t row_bytes = (size_t)j->out_dims[j->ndim - 1] * j->esize;

    for (int64_t row = begin; row < end; row++) {
        int64_t s, d;
        transpose_row_base(j, row, &s, &d);
        memcpy(j->dst + (size_t)d * j->esize, j->src + (size_t)s * j->esize, row_bytes);
    }
}

#define TRANSPOSE_TILE_LOOP(type)                                                                  \
    do {                                                                                           \
        type *dst_ = (type *)(void *)j->dst;                                                       \
        const type *src_ = (const type *)(const void *)j->src;                                     \
        for (int64_t p = p0; p < p1; p++) {                                                        \
            type *d_ = dst_ + base_d + p * oa + q0;                                                \
            const type *s_ = src_ + base_s + p + q0 * sl;                                          \
            for (int64_t q = q0; q < q1; q++, d_++, s_ += sl)                                      \
                *d_ = *s_;                                                                         \
        }                                                                                          \
    } while (0)

/* One tile: output dims @a (contiguous in the input) and last (contiguous in the
 * output) over [p0, p1) x [q0, q1), at the given outer position. */
static void transpose_tile(const transpose_job *j, int64_t base_s, int64_t base_d, int64_t p0,
                           int64_t p1, int64_t q0, int64_t q1) {
    const int64_t sl = j->src_stride[j->ndim - 1], oa = j->out_stride[j->a];

    switch (j->esize) {
    case 1:
        TRANSPOSE_TILE_LOOP(uint8_t);
        break;
    case 2:
        TRANSPOSE_TILE_LOOP(uint16_t);
        break;
    case 4:
        TRANSPOSE_TILE_LOOP(uint32_t);
        break;
    case 8:
        TRANSPOSE_TILE_LOOP(uint64_t);
        break;
    default:
        for (int64_t q = q0; q < q1; q++)
            for (int64_t p = p0; p < p1; p++)
                memcpy(j->dst + (size_t)(base_d + q + p * oa) * j->esize,
                       j->src + (size_t)(base_s + q * sl + p) * j->esize, j->esize);
        break;
    }
}

/* Items are (outer position, tile of dim a, tile of the last dim). */
static void transpose_tiles(void *arg, int64_t begin, int64_t end) {
    const transpose_job *j = arg;
    const int last = j->ndim - 1;

    for (int64_t item = begin; item < end; item++) {
        int64_t t = item, tl = t % j->tiles_last;
        t /= j->tiles_last;
        int64_t ta = t % j->tiles_a;
        t /= j->tiles_a;
        int64_t base_s = 0, base_d = 0;
        for (int k = last - 1; k >= 0; k--) {
            if (k == j->a)
                continue;
            int64_t c = t % j->out_dims[k];
            t /= j->out_dims[k];
            base_s += c * j->src_stride[k];
            base_d += c * j->out_stride[k];
        }
        int64_t p0 = ta * TRANSPOSE_TILE, q0 = tl * TRANSPOSE_TILE;
        int64_t p1 =
            p0 + TRANSPOSE_TILE < j->out_dims[j->a] ? p0 + TRANSPOSE_TILE : j->out_dims[j->a];
        int64_t q1 =
            q0 + TRANSPOSE_TILE < j->out_dims[last] ? q0 + TRANSPOSE_TILE : j->out_dims[last];
        transpose_tile(j, base_s, base_d, p0, p1, q0, q1);
    }
}

/* STRING elements: one odometer walk over the output, copying each string. */
static floe_status transpose_strings(const transpose_job *j, floe_tensor *out,
                                     const floe_tensor *in) {
    const floe_tstring *src = floe_tensor_data(in);
    int64_t idx[FLOE_MAX_DIMS] = {0}, s = 0, total = floe_tensor_num_elements(out);

    for (int64_t o = 0; o < total; o++) {
        TRY(floe_tensor_set_string(out, o, src[s].data != NULL ? src[s].data : "", src[s].size));
        for (int k = j->ndim - 1; k >= 0; k--) {
            s += j->src_stride[k];
            if (++idx[k] < j->out_dims[k])
                break;
            s -= j->src_stride[k] * j->out_dims[k];
            idx[k] = 0;
        }
    }
    return FLOE_OK;
}

static floe_status transpose_run(floe_kernel_ctx *kc, floe_tensor *out, const floe_tensor *in,
                                 const int *perm) {
    int r = floe_tensor_ndim(in);
    const int64_t *dims = floe_tensor_shape(in);
    int64_t cdims[FLOE_MAX_DIMS], in_stride[FLOE_MAX_DIMS];
    int cperm[FLOE_MAX_DIMS];
    transpose_job j;

    if (floe_tensor_num_elements(in) == 0)
        return FLOE_OK;
    memset(&j, 0, sizeof(j));
    j.ndim = transpose_collapse(dims, perm, r, cdims, cperm);
    if (j.ndim <= 1)
        return ops_math__copy_all(floe_kernel_threadpool(kc), out, in);
    ops_math__strides(cdims, j.ndim, in_stride);
    for (int i = 0; i < j.ndim; i++) {
        j.out_dims[i] = cdims[cperm[i]];
        j.src_stride[i] = in_stride[cperm[i]];
    }
    ops_math__strides(j.out_dims, j.ndim, j.out_stride);
    j.dst = floe_tensor_data(out);
    j.src = floe_tensor_data(in);
    j.esize = floe_dtype_size(floe_tensor_dtype(in));
    if (floe_tensor_dtype(in) == FLOE_DTYPE_STRING)
        return transpose_strings(&j, out, in);

    const int last = j.ndim - 1;
    floe_threadpool *pool = floe_kernel_threadpool(kc);
    if (cperm[last] == last) {
        int64_t rows = floe_tensor_num_elements(in) / j.out_dims[last];
        int64_t row_bytes = j.out_dims[last] * (int64_t)j.esize;
        ops_math__parallel(pool, rows, OPS_MATH_COPY_GRAIN_BYTES / row_bytes + 1, transpose_rows,
                           &j);
        return FLOE_OK;
    }
    for (int i = 0; i < j.ndim; i++)
        if (cperm[i] == last)
            j.a = i;
    j.tiles_a = (j.out_dims[j.a] + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
    j.tiles_last = (j.out_dims[last] + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
    int64_t outer = floe_tensor_num_elements(in) / (j.out_dims[j.a] * j.out_dims[last]);
    int64_t tile_bytes = TRANSPOSE_TILE * TRANSPOSE_TILE * (int64_t)j.esize;
    ops_math__parallel(pool, outer * j.tiles_a * j.tiles_last,
                       OPS_MATH_COPY_GRAIN_BYTES / tile_bytes + 1, transpose_tiles, &j);
    return FLOE_OK;
}

static floe_status transpose_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *perm_t, *out;
    int64_t perm[FLOE_MAX_DIMS], dims[FLOE_MAX_DIMS];
    int p[FLOE_MAX_DIMS], n, r;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &perm_t));
    TRY(transpose_check_perm_rank(floe_tensor_ndim(perm_t), floe_tensor_shape(perm_t)));
    r = floe_tensor_ndim(in);
    if (floe_tensor_num_elements(perm_t) != r)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "transpose expects a vector of size %d. But input(1) is a vector of "
                         "size %lld",
                         r, (long long)floe_tensor_num_elements(perm_t));
    TRY(ops_math__index_values(perm_t, "perm", perm, FLOE_MAX_DIMS, &n));
    TRY(transpose_check_perm(perm, n, r, p));
    for (int i = 0; i < r; i++)
        dims[i] = floe_tensor_dim(in, p[i]);
    TRY(floe_kernel_alloc_output(kc, 0, dims, r, &out));
    return transpose_run(kc, out, in, p);
}

/* ---- ConcatV2 and Pack ---------------------------------------------------------------- */

/* Copies N inputs into @out: output row o (of @outer) is the concatenation of row o of
 * every input, input i contributing @inner[i] elements. */
typedef struct concat_job {
    int n;
    char *dst;
    const char **src;
    int64_t *inner;  /* elements per row of each input */
    int64_t *offset; /* its start within an output row */
    int64_t out_inner;
    size_t esize;
} concat_job;

/* Items are (output row, input) pairs. */
static void concat_range(void *arg, int64_t begin, int64_t end) {
    const concat_job *j = arg;
    for (int64_t item = begin; item < end; item++) {
        int64_t o = item / j->n;
        int i = (int)(item % j->n);
        if (j->inner[i] > 0)
            memcpy(j->dst + (size_t)(o * j->out_inner + j->offset[i]) * j->esize,
                   j->src[i] + (size_t)(o * j->inner[i]) * j->esize,
                   (size_t)j->inner[i] * j->esize);
    }
}

/* Runs the copy described above; @in are the @n inputs, @inner their row lengths. */
static floe_status concat_copy(floe_kernel_ctx *kc, floe_tensor *out, floe_tensor *const *in, int n,
                               int64_t outer, const int64_t *inner) {
    concat_job j;
    floe_status st = FLOE_OK;

    if (floe_tensor_num_elements(out) == 0)
        return FLOE_OK;
    j.n = n;
    j.dst = floe_tensor_data(out);
    j.esize = floe_dtype_size(floe_tensor_dtype(out));
    j.src = floe_alloc((size_t)n * sizeof(*j.src), 0);
    j.offset = floe_alloc((size_t)n * sizeof(*j.offset), 0);
    if (j.src == NULL || j.offset == NULL) {
        st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %d inputs", n);
        goto out_free;
    }
    j.inner = (int64_t *)inner;
    j.out_inner = 0;
    for (int i = 0; i < n; i++) {
        j.src[i] = floe_tensor_data(in[i]);
        j.offset[i] = j.out_inner;
        j.out_inner += inner[i];
    }
    if (floe_tensor_dtype(out) == FLOE_DTYPE_STRING) {
        for (int i = 0; i < n && st == FLOE_OK; i++) {
            ops_math__copier c;
            ops_math__copier_init(&c, out, in[i]);
            for (int64_t o = 0; o < outer && st == FLOE_OK; o++)
                st =
                    ops_math__copier_run(&c, o * j.out_inner + j.offset[i], o * inner[i], inner[i]);
        }
    } else {
        int64_t item_bytes = j.out_inner / n * (int64_t)j.esize;
        ops_math__parallel(floe_kernel_threadpool(kc), outer * n,
                           OPS_MATH_COPY_GRAIN_BYTES / (item_bytes + 1) + 1, concat_range, &j);
    }
out_free:
    floe_free(j.src);
    floe_free(j.offset);
    return st;
}

/* Formats "shape[0] = [2,3] vs. shape[i] = [2,4]" into @buf. */
static void format_two_shapes(const char *name, const int64_t *a, int na, int i, const int64_t *b,
                              int nb, char *buf, size_t len) {
    char sa[DIMS_BUF], sb[DIMS_BUF];
    ops_math__format_dims(a, na, sa, sizeof(sa));
    ops_math__format_dims(b, nb, sb, sizeof(sb));
    snprintf(buf, len, "%s[0] = %s vs. %s[%d] = %s", name, sa, name, i, sb);
}

/* Checks ConcatV2's inputs (ranks, non-axis extents, axis range) and computes the
 * output dims into @out; extents of -1 (shape functions) are unknown.  *@axis_out is
 * the normalised axis. */
static floe_status concat_check(const floe_shape *shapes, int n, int64_t axis, int *axis_out,
                                floe_shape *out) {
    char buf[2 * DIMS_BUF + 64];
    int r = shapes[0].ndim, ax;

    *axis_out = 0;
    if (r == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ConcatOp : Expected concatenating dimensions in the range [0, 0), but "
                         "got %lld (Can't concatenate scalars (use tf.stack instead))",
                         (long long)axis);
    if (axis < -r || axis >= r)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "ConcatOp : Expected concatenating dimensions in the range [%d, %d), "
                         "but got %lld",
                         -r, r, (long long)axis);
    ax = (int)(axis < 0 ? axis + r : axis);
    *out = shapes[0];
    for (int i = 1; i < n; i++) {
        const floe_shape *s = &shapes[i];
        if (s->ndim != r) {
            format_two_shapes("shape", shapes[0].dims, r, i, s->dims, s->ndim, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "ConcatOp : Ranks of all input tensors should match: %s", buf);
        }
        for (int d = 0; d < r; d++) {
            if (d == ax) {
                if (out->dims[d] < 0 || s->dims[d] < 0)
                    out->dims[d] = -1;
                else if (__builtin_add_overflow(out->dims[d], s->dims[d], &out->dims[d]))
                    return floe_fail(FLOE_INVALID_ARGUMENT,
                                     "ConcatOp : output dimension %d overflows int64", d);
            } else if (out->dims[d] >= 0 && s->dims[d] >= 0 && out->dims[d] != s->dims[d]) {
                format_two_shapes("shape", shapes[0].dims, r, i, s->dims, s->ndim, buf,
                                  sizeof(buf));
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "ConcatOp : Dimension %d in both shapes must be equal: %s", d,
                                 buf);
            } else if (out->dims[d] < 0) {
                out->dims[d] = s->dims[d];
            }
        }
    }
    *axis_out = ax;
    return FLOE_OK;
}

static floe_status concat_shape_fn(floe_shape_ctx *sc) {
    int n = floe_shape_num_inputs(sc) - 1, rank = -1, ax;
    floe_shape *shapes, out;
    int64_t axis;
    int cnt;
    bool known;
    floe_status st;

    TRY(ops_math__shape_index_values(sc, n, "axis", &axis, 1, &cnt, &known));
    for (int i = 0; i < n && rank < 0; i++)
        rank = floe_shape_input(sc, i).ndim;
    if (rank < 0 || !known || cnt != 1) {
        out = rank < 0 ? shape_unknown() : shape_unknown_dims(rank);
        return floe_shape_set_output(sc, 0, &out);
    }
    shapes = floe_alloc((size_t)n * sizeof(*shapes), 0);
    if (shapes == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %d inputs", n);
    for (int i = 0; i < n; i++) {
        shapes[i] = floe_shape_input(sc, i);
        if (shapes[i].ndim < 0) /* unknown rank: assume the known one, extents unknown */
            shapes[i] = shape_unknown_dims(rank);
    }
    st = concat_check(shapes, n, axis, &ax, &out);
    floe_free(shapes);
    if (st != FLOE_OK)
        return st;
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status concat_compute(floe_kernel_ctx *kc, void *state) {
    int n = floe_kernel_num_inputs(kc) - 1, ax;
    floe_tensor **in = NULL, *axis_t, *out = NULL;
    floe_shape *shapes = NULL, os;
    int64_t *inner = NULL, axis, outer = 1, tail = 1;
    floe_status st;

    if (n < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "ConcatV2 needs at least one value");
    TRY(ops_math__kernel_input(kc, n, FLOE_DTYPE_INVALID, &axis_t));
    TRY(ops_math__index_scalar(axis_t, "axis", &axis));
    in = floe_alloc((size_t)n * sizeof(*in), 0);
    shapes = floe_alloc((size_t)n * sizeof(*shapes), 0);
    inner = floe_alloc((size_t)n * sizeof(*inner), 0);
    if (in == NULL || shapes == NULL || inner == NULL) {
        st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %d inputs", n);
        goto out_free;
    }
    for (int i = 0; i < n; i++) {
        st = ops_math__kernel_input(kc, i, FLOE_DTYPE_INVALID, &in[i]);
        if (st != FLOE_OK)
            goto out_free;
        shapes[i] = ops_math__shape_of(in[i]);
    }
    st = concat_check(shapes, n, axis, &ax, &os);
    if (st == FLOE_OK)
        st = floe_kernel_alloc_output(kc, 0, os.dims, os.ndim, &out);
    if (st != FLOE_OK || floe_tensor_num_elements(out) == 0)
        goto out_free;
    /* Every extent is > 0 here, so no partial product exceeds the element count. */
    for (int d = 0; d < ax; d++)
        outer *= os.dims[d];
    for (int d = ax + 1; d < os.ndim; d++)
        tail *= os.dims[d];
    for (int i = 0; i < n; i++)
        inner[i] = shapes[i].dims[ax] * tail;
    st = concat_copy(kc, out, in, n, outer, inner);
out_free:
    floe_free(in);
    floe_free(shapes);
    floe_free(inner);
    return st;
}

/* Pack's axis in [-(r+1), r+1) normalised. */
static floe_status pack_axis(int64_t axis, int r, int *out) {
    *out = 0;
    if (axis < -(int64_t)(r + 1) || axis >= r + 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "axis = %lld not in [%d, %d)", (long long)axis,
                         -(r + 1), r + 1);
    *out = (int)(axis < 0 ? axis + r + 1 : axis);
    return check_rank("Pack", r + 1);
}

static floe_status pack_shape_fn(floe_shape_ctx *sc) {
    int n = floe_shape_num_inputs(sc), ax;
    int64_t axis = 0;
    floe_shape acc = shape_unknown(), out;
    char buf[2 * DIMS_BUF + 64];

    TRY(floe_attrs_get_int(floe_shape_attrs(sc), "axis", &axis));
    for (int i = 0; i < n; i++) {
        floe_shape s = floe_shape_input(sc, i);
        if (s.ndim < 0)
            continue;
        if (acc.ndim < 0) {
            acc = s;
            continue;
        }
        bool ok = s.ndim == acc.ndim;
        for (int d = 0; ok && d < s.ndim; d++) {
            if (acc.dims[d] < 0)
                acc.dims[d] = s.dims[d];
            else if (s.dims[d] >= 0 && s.dims[d] != acc.dims[d])
                ok = false;
        }
        if (!ok) {
            format_two_shapes("values", acc.dims, acc.ndim, i, s.dims, s.ndim, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "Shapes of all inputs must match: %s", buf);
        }
    }
    if (acc.ndim < 0) {
        out = shape_unknown();
        return floe_shape_set_output(sc, 0, &out);
    }
    TRY(pack_axis(axis, acc.ndim, &ax));
    out = shape_unknown_dims(acc.ndim + 1);
    for (int d = 0, k = 0; d <= acc.ndim; d++)
        out.dims[d] = d == ax ? n : acc.dims[k++];
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status pack_compute(floe_kernel_ctx *kc, void *state) {
    int n = floe_kernel_num_inputs(kc), ax, r;
    floe_tensor **in = NULL, *out = NULL;
    int64_t *inner = NULL, axis = 0, dims[FLOE_MAX_DIMS], outer = 1, row = 1;
    char buf[2 * DIMS_BUF + 64];
    floe_status st;

    TRY(floe_attrs_get_int(floe_kernel_attrs(kc), "axis", &axis));
    if (n < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Pack needs at least one value");
    in = floe_alloc((size_t)n * sizeof(*in), 0);
    inner = floe_alloc((size_t)n * sizeof(*inner), 0);
    if (in == NULL || inner == NULL) {
        st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %d inputs", n);
        goto out_free;
    }
    for (int i = 0; i < n; i++) {
        st = ops_math__kernel_input(kc, i, FLOE_DTYPE_INVALID, &in[i]);
        if (st != FLOE_OK)
            goto out_free;
    }
    r = floe_tensor_ndim(in[0]);
    for (int i = 1; i < n; i++) {
        bool ok = floe_tensor_ndim(in[i]) == r;
        for (int d = 0; ok && d < r; d++)
            ok = floe_tensor_dim(in[i], d) == floe_tensor_dim(in[0], d);
        if (!ok) {
            format_two_shapes("values", floe_tensor_shape(in[0]), r, i, floe_tensor_shape(in[i]),
                              floe_tensor_ndim(in[i]), buf, sizeof(buf));
            st = floe_fail(FLOE_INVALID_ARGUMENT, "Shapes of all inputs must match: %s", buf);
            goto out_free;
        }
    }
    st = pack_axis(axis, r, &ax);
    if (st != FLOE_OK)
        goto out_free;
    for (int d = 0, k = 0; d <= r; d++)
        dims[d] = d == ax ? n : floe_tensor_dim(in[0], k++);
    st = floe_kernel_alloc_output(kc, 0, dims, r + 1, &out);
    if (st != FLOE_OK || floe_tensor_num_elements(out) == 0)
        goto out_free;
    for (int d = 0; d < ax; d++)
        outer *= dims[d];
    for (int d = ax + 1; d <= r; d++)
        row *= dims[d];
    for (int i = 0; i < n; i++)
        inner[i] = row;
    st = concat_copy(kc, out, in, n, outer, inner);
out_free:
    floe_free(in);
    floe_free(inner);
    return st;
}

/* ---- Unpack ----------------------------------------------------------------------- */

static floe_status unpack_check(const floe_shape *in, int64_t num, int64_t axis, int *ax) {
    char buf[DIMS_BUF];
    int r = in->ndim;

    *ax = 0;
    if (axis < -(int64_t)r || axis >= r)
        return floe_fail(FLOE_INVALID_ARGUMENT, "axis = %lld not in [%d, %d)", (long long)axis, -r,
                         r);
    *ax = (int)(axis < 0 ? axis + r : axis);
    if (in->dims[*ax] >= 0 && in->dims[*ax] != num) {
        ops_math__format_dims(in->dims, r, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "Input shape axis %d must equal %lld, got shape %s",
                         *ax, (long long)num, buf);
    }
    return FLOE_OK;
}

static floe_status unpack_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out;
    int64_t num = 0, axis = 0;
    int ax;

    TRY(floe_attrs_get_int(floe_shape_attrs(sc), "num", &num));
    TRY(floe_attrs_get_int(floe_shape_attrs(sc), "axis", &axis));
    if (in.ndim < 0) {
        out = shape_unknown();
    } else {
        TRY(unpack_check(&in, num, axis, &ax));
        out = shape_unknown_dims(in.ndim - 1);
        for (int d = 0, k = 0; d < in.ndim; d++)
            if (d != ax)
                out.dims[k++] = in.dims[d];
    }
    for (int i = 0; i < floe_shape_num_outputs(sc); i++)
        TRY(floe_shape_set_output(sc, i, &out));
    return FLOE_OK;
}

typedef struct unpack_job {
    char **dst;
    const char *src;
    int64_t num, inner;
    size_t esize;
} unpack_job;

/* Items are (output, row) pairs. */
static void unpack_range(void *arg, int64_t begin, int64_t end) {
    const unpack_job *j = arg;
    size_t bytes = (size_t)j->inner * j->esize;
    for (int64_t item = begin; item < end; item++) {
        int64_t i = item % j->num, o = item / j->num;
        memcpy(j->dst[i] + (size_t)o * bytes, j->src + (size_t)(o * j->num + i) * bytes, bytes);
    }
}

static floe_status unpack_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *out;
    floe_shape s;
    int64_t num = 0, axis = 0, outer = 1, inner = 1, dims[FLOE_MAX_DIMS];
    int ax, k = 0;
    unpack_job j;
    floe_status st = FLOE_OK;

    TRY(floe_attrs_get_int(floe_kernel_attrs(kc), "num", &num));
    TRY(floe_attrs_get_int(floe_kernel_attrs(kc), "axis", &axis));
    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    s = ops_math__shape_of(in);
    TRY(unpack_check(&s, num, axis, &ax));
    if (num != floe_kernel_num_outputs(kc))
        return floe_fail(FLOE_INVALID_ARGUMENT, "num = %lld but the node has %d outputs",
                         (long long)num, floe_kernel_num_outputs(kc));
    for (int d = 0; d < s.ndim; d++)
        if (d != ax)
            dims[k++] = s.dims[d];
    if (floe_tensor_num_elements(in) > 0) {
        /* Every extent is > 0 here, so no partial product exceeds the element count. */
        for (int d = 0; d < ax; d++)
            outer *= s.dims[d];
        for (int d = ax + 1; d < s.ndim; d++)
            inner *= s.dims[d];
    } else {
        outer = 0;
    }
    if (num == 0)
        return FLOE_OK;
    j.dst = floe_alloc((size_t)num * sizeof(*j.dst), 0);
    if (j.dst == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %lld outputs", (long long)num);
    for (int64_t i = 0; i < num && st == FLOE_OK; i++) {
        st = floe_kernel_alloc_output(kc, (int)i, dims, s.ndim - 1, &out);
        if (st != FLOE_OK)
            break;
        j.dst[i] = floe_tensor_data(out);
        if (floe_tensor_dtype(in) == FLOE_DTYPE_STRING) {
            ops_math__copier c;
            ops_math__copier_init(&c, out, in);
            for (int64_t o = 0; o < outer && st == FLOE_OK; o++)
                st = ops_math__copier_run(&c, o * inner, (o * num + i) * inner, inner);
        }
    }
    if (st == FLOE_OK && floe_tensor_dtype(in) != FLOE_DTYPE_STRING && outer * inner > 0) {
        j.src = floe_tensor_data(in);
        j.num = num;
        j.inner = inner;
        j.esize = floe_dtype_size(floe_tensor_dtype(in));
        ops_math__parallel(floe_kernel_threadpool(kc), num * outer,
                           OPS_MATH_COPY_GRAIN_BYTES / (inner * (int64_t)j.esize) + 1, unpack_range,
                           &j);
    }
    floe_free(j.dst);
    return st;
}

/* ---- Fill, ZerosLike, OnesLike ------------------------------------------------------- */

/* Checks Fill's dims values (count @n, each >= 0, product fits int64). */
static floe_status fill_check_dims(const int64_t *dims, int n) {
    int64_t count;
    TRY(check_rank("Fill", n));
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "dims[%d] = %lld must be non-negative", i,
                             (long long)dims[i]);
    return ops_math__checked_count("Fill", dims, n, &count);
}

static floe_status fill_check_ranks(const floe_shape *dims, const floe_shape *value) {
    char buf[DIMS_BUF];
    if (dims->ndim >= 0 && dims->ndim != 1) {
        ops_math__format_dims(dims->dims, dims->ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "dims must be a vector, got shape %s", buf);
    }
    if (value->ndim > 0) {
        ops_math__format_dims(value->dims, value->ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "value must be a scalar, got shape %s", buf);
    }
    return FLOE_OK;
}

static floe_status fill_shape_fn(floe_shape_ctx *sc) {
    floe_shape ds = floe_shape_input(sc, 0), vs = floe_shape_input(sc, 1), out;
    int64_t dims[FLOE_MAX_DIMS];
    int n;
    bool known;

    TRY(fill_check_ranks(&ds, &vs));
    if (floe_shape_input_value(sc, 0) != NULL)
        TRY(check_rank("Fill", floe_tensor_num_elements(floe_shape_input_value(sc, 0))));
    TRY(ops_math__shape_index_values(sc, 0, "dims", dims, FLOE_MAX_DIMS, &n, &known));
    if (known) {
        TRY(fill_check_dims(dims, n));
        out = shape_unknown_dims(n);
        memcpy(out.dims, dims, (size_t)n * sizeof(dims[0]));
    } else if (ds.ndim == 1 && ds.dims[0] >= 0) {
        TRY(check_rank("Fill", ds.dims[0]));
        out = shape_unknown_dims((int)ds.dims[0]);
    } else {
        out = shape_unknown();
    }
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status fill_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *dims_t, *value, *out;
    floe_shape ds, vs;
    int64_t dims[FLOE_MAX_DIMS];
    int n;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &dims_t));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &value));
    ds = ops_math__shape_of(dims_t);
    vs = ops_math__shape_of(value);
    TRY(fill_check_ranks(&ds, &vs));
    TRY(check_rank("Fill", floe_tensor_num_elements(dims_t)));
    TRY(ops_math__index_values(dims_t, "dims", dims, FLOE_MAX_DIMS, &n));
    TRY(fill_check_dims(dims, n));
    TRY(floe_kernel_alloc_output(kc, 0, dims, n, &out));
    return fill_tensor(out, floe_tensor_data(value));
}

static floe_status zeros_like_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *out;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(floe_kernel_alloc_output(kc, 0, floe_tensor_shape(in), floe_tensor_ndim(in), &out));
    /* A new STRING tensor already holds empty strings. */
    if (floe_tensor_dtype(out) != FLOE_DTYPE_STRING && floe_tensor_nbytes(out) > 0)
        memset(floe_tensor_data(out), 0, floe_tensor_nbytes(out));
    return FLOE_OK;
}

/* The bytes of the value 1 in @dt, into @buf (16 bytes); false for a dtype without one. */
static bool one_of(floe_dtype dt, unsigned char *buf) {
    memset(buf, 0, 16);
    switch (dt) {
    case FLOE_DTYPE_F32: {
        float v = 1.0f;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_COMPLEX64: {
        float v[2] = {1.0f, 0.0f};
        memcpy(buf, v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_F64: {
        double v = 1.0;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_F16: {
        uint16_t v = 0x3C00;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_BF16: {
        uint16_t v = 0x3F80;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_I8:
    case FLOE_DTYPE_U8:
    case FLOE_DTYPE_BOOL:
        buf[0] = 1;
        return true;
    case FLOE_DTYPE_I16:
    case FLOE_DTYPE_U16: {
        uint16_t v = 1;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_I32:
    case FLOE_DTYPE_U32: {
        uint32_t v = 1;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    case FLOE_DTYPE_I64:
    case FLOE_DTYPE_U64: {
        uint64_t v = 1;
        memcpy(buf, &v, sizeof(v));
        return true;
    }
    default:
        return false;
    }
}

static floe_status ones_like_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *out;
    unsigned char one[16];

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    if (!one_of(floe_tensor_dtype(in), one))
        return floe_fail(FLOE_UNIMPLEMENTED, "OnesLike is not defined for %s",
                         floe_dtype_name(floe_tensor_dtype(in)));
    TRY(floe_kernel_alloc_output(kc, 0, floe_tensor_shape(in), floe_tensor_ndim(in), &out));
    return fill_tensor(out, one);
}

/* ---- Range ------------------------------------------------------------------------ */

/* The three scalars of a Range, widened. */
typedef struct range_args {
    floe_dtype dt;
    int64_t i[3]; /* start, limit, delta of an integer Range */
    double f[3];  /* ... of a float one */
} range_args;

static const char *const range_names[3] = {"start", "limit", "delta"};

static bool range_is_int(floe_dtype dt) {
    return dt == FLOE_DTYPE_I32 || dt == FLOE_DTYPE_I64;
}

static floe_status range_read(floe_tensor *const *t, range_args *a) {
    char buf[DIMS_BUF];

    memset(a, 0, sizeof(*a));
    a->dt = floe_tensor_dtype(t[0]);
    for (int k = 0; k < 3; k++) {
        floe_dtype dt = floe_tensor_dtype(t[k]);
        const void *p = floe_tensor_data(t[k]);
        if (floe_tensor_ndim(t[k]) > 1 || floe_tensor_num_elements(t[k]) != 1) {
            ops_math__format_dims(floe_tensor_shape(t[k]), floe_tensor_ndim(t[k]), buf,
                                  sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be a scalar, not shape %s",
                             range_names[k], buf);
        }
        if (dt != a->dt || p == NULL)
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s has dtype %s, expected %s", range_names[k],
                             floe_dtype_name(dt), floe_dtype_name(a->dt));
        switch (dt) {
        case FLOE_DTYPE_I32:
            a->i[k] = *(const int32_t *)p;
            break;
        case FLOE_DTYPE_I64:
            a->i[k] = *(const int64_t *)p;
            break;
        case FLOE_DTYPE_F32:
            a->f[k] = *(const float *)p;
            break;
        case FLOE_DTYPE_F64:
            a->f[k] = *(const double *)p;
            break;
        default:
            return floe_fail(FLOE_INVALID_ARGUMENT, "Range is not defined for %s",
                             floe_dtype_name(dt));
        }
    }
    return FLOE_OK;
}

/* TensorFlow's Range size, without overflow: ceil(|limit - start| / |delta|). */
static floe_status range_size(const range_args *a, int64_t *size) {
    *size = 0;
    if (range_is_int(a->dt)) {
        int64_t start = a->i[0], limit = a->i[1], delta = a->i[2];
        if (delta == 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Requires delta != 0: %lld", (long long)delta);
        if (delta > 0 && start > limit)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Requires start <= limit when delta > 0: %lld/%lld", (long long)start,
                             (long long)limit);
        if (delta < 0 && start < limit)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Requires start >= limit when delta < 0: %lld/%lld", (long long)start,
                             (long long)limit);
        /* Unsigned magnitudes: limit - start and |INT64_MIN| fit in uint64. */
        uint64_t span =
            delta > 0 ? (uint64_t)limit - (uint64_t)start : (uint64_t)start - (uint64_t)limit;
        uint64_t step = delta > 0 ? (uint64_t)delta : 0 - (uint64_t)delta;
        uint64_t n = span / step + (span % step != 0);
        if (n > (uint64_t)INT64_MAX)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Requires ((limit - start) / delta) <= %lld",
                             (long long)INT64_MAX);
        *size = (int64_t)n;
        return FLOE_OK;
    }
    double start = a->f[0], limit = a->f[1], delta = a->f[2], n;
    if (!isfinite(start) || !isfinite(limit) || !isfinite(delta))
        return floe_fail(FLOE_INVALID_ARGUMENT, "Requires finite start, limit and delta: %g/%g/%g",
                         start, limit, delta);
    if (delta == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Requires delta != 0: %g", delta);
    if (delta > 0 && start > limit)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Requires start <= limit when delta > 0: %g/%g",
                         start, limit);
    if (delta < 0 && start < limit)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Requires start >= limit when delta < 0: %g/%g",
                         start, limit);
    if (a->dt == FLOE_DTYPE_F32) /* computed in the op's type, as TensorFlow does */
        n = ceilf(fabsf(((float)limit - (float)start) / (float)delta));
    else
        n = ceil(fabs((limit - start) / delta));
    if (!(n < 9223372036854775807.0))
        return floe_fail(FLOE_INVALID_ARGUMENT, "Requires ((limit - start) / delta) <= %lld",
                         (long long)INT64_MAX);
    *size = (int64_t)n;
    return FLOE_OK;
}

static floe_status range_shape_fn(floe_shape_ctx *sc) {
    floe_tensor *t[3];
    floe_shape out = shape_unknown_dims(1);
    range_args a;
    bool all = true;

    for (int k = 0; k < 3; k++) {
        floe_shape s = floe_shape_input(sc, k);
        char buf[DIMS_BUF];
        if (s.ndim > 1 || (s.ndim == 1 && s.dims[0] >= 0 && s.dims[0] != 1)) {
            ops_math__format_dims(s.dims, s.ndim, buf, sizeof(buf));
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s must be a scalar, not shape %s",
                             range_names[k], buf);
        }
        t[k] = floe_shape_input_value(sc, k);
        all = all && t[k] != NULL;
    }
    if (all) {
        TRY(range_read(t, &a));
        TRY(range_size(&a, &out.dims[0]));
    }
    return floe_shape_set_output(sc, 0, &out);
}

#define RANGE_FILL_INT(type)                                                                       \
    do {                                                                                           \
        type *o_ = floe_tensor_data(out);                                                          \
        for (int64_t i = 0; i < n; i++) /* wraps only where the true value fits */                 \
            o_[i] = (type)(int64_t)((uint64_t)a.i[0] + (uint64_t)i * (uint64_t)a.i[2]);            \
    } while (0)

static floe_status range_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *t[3], *out;
    range_args a;
    int64_t n;

    for (int k = 0; k < 3; k++)
        TRY(ops_math__kernel_input(kc, k, FLOE_DTYPE_INVALID, &t[k]));
    TRY(range_read(t, &a));
    TRY(range_size(&a, &n));
    TRY(floe_kernel_alloc_output(kc, 0, &n, 1, &out));
    switch (a.dt) {
    case FLOE_DTYPE_I32:
        RANGE_FILL_INT(int32_t);
        break;
    case FLOE_DTYPE_I64:
        RANGE_FILL_INT(int64_t);
        break;
    case FLOE_DTYPE_F32: {
        /* Accumulated like TensorFlow's kernel, so results match it bit for bit. */
        float *o = floe_tensor_data(out), v = (float)a.f[0], d = (float)a.f[2];
        for (int64_t i = 0; i < n; i++, v += d)
            o[i] = v;
        break;
    }
    default: {
        double *o = floe_tensor_data(out), v = a.f[0], d = a.f[2];
        for (int64_t i = 0; i < n; i++, v += d)
            o[i] = v;
        break;
    }
    }
    return FLOE_OK;
}

/* ---- Shape, Rank, Size ---------------------------------------------------------------- */

static floe_status out_type(const floe_attrs *a, floe_dtype *dt) {
    *dt = FLOE_DTYPE_I32;
    if (floe_attrs_type(a, "out_type") == FLOE_ATTR_NONE)
        return FLOE_OK;
    return floe_attrs_get_type(a, "out_type", dt);
}

static floe_status shape_op_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out = shape_unknown_dims(1);
    out.dims[0] = in.ndim;
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status scalar_shape_fn(floe_shape_ctx *sc) {
    floe_shape out = shape_unknown_dims(0);
    return floe_shape_set_output(sc, 0, &out);
}

/* Stores @v as element @i of an int32 or int64 tensor, failing when int32 is too small. */
static floe_status store_index(floe_tensor *t, int64_t i, int64_t v, const char *what) {
    if (floe_tensor_dtype(t) == FLOE_DTYPE_I64) {
        ((int64_t *)floe_tensor_data(t))[i] = v;
        return FLOE_OK;
    }
    if (v > INT32_MAX)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s is %lld, larger than representable by the 32-bit output type", what,
                         (long long)v);
    ((int32_t *)floe_tensor_data(t))[i] = (int32_t)v;
    return FLOE_OK;
}

static floe_status shape_op_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in = floe_kernel_input(kc, 0), *out;
    floe_dtype dt;
    char what[40];

    if (in == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input 0 is missing");
    int64_t r = floe_tensor_ndim(in);
    TRY(out_type(floe_kernel_attrs(kc), &dt));
    TRY(floe_kernel_alloc_output(kc, 0, &r, 1, &out));
    if (floe_tensor_dtype(out) != dt)
        return floe_fail(FLOE_INTERNAL, "Shape output has dtype %s, expected %s",
                         floe_dtype_name(floe_tensor_dtype(out)), floe_dtype_name(dt));
    for (int i = 0; i < r; i++) {
        snprintf(what, sizeof(what), "dim %d", i);
        TRY(store_index(out, i, floe_tensor_dim(in, i), what));
    }
    return FLOE_OK;
}

static floe_status rank_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in = floe_kernel_input(kc, 0), *out;

    if (in == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input 0 is missing");
    TRY(floe_kernel_alloc_output(kc, 0, NULL, 0, &out));
    *(int32_t *)floe_tensor_data(out) = floe_tensor_ndim(in);
    return FLOE_OK;
}

static floe_status size_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in = floe_kernel_input(kc, 0), *out;
    floe_dtype dt;

    if (in == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input 0 is missing");
    TRY(out_type(floe_kernel_attrs(kc), &dt));
    TRY(floe_kernel_alloc_output(kc, 0, NULL, 0, &out));
    if (floe_tensor_dtype(out) != dt)
        return floe_fail(FLOE_INTERNAL, "Size output has dtype %s, expected %s",
                         floe_dtype_name(floe_tensor_dtype(out)), floe_dtype_name(dt));
    return store_index(out, 0, floe_tensor_num_elements(in), "Number of elements");
}

/* ---- ExpandDims, Squeeze ----------------------------------------------------------- */

static floe_status expand_dims_check(int r, int64_t dim, int *at) {
    *at = 0;
    if (dim < -(int64_t)(r + 1) || dim > r)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Tried to expand dim index %lld for tensor with %d dimensions.",
                         (long long)dim, r);
    *at = (int)(dim < 0 ? dim + r + 1 : dim);
    return check_rank("ExpandDims", r + 1);
}

static floe_status expand_dims_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), ds = floe_shape_input(sc, 1), out;
    int64_t dim;
    int n, at;
    bool known;

    /* Any rank holding one value, as TensorFlow accepts. */
    for (int i = 0; i < ds.ndim; i++)
        if (ds.dims[i] >= 0 && ds.dims[i] != 1)
            return floe_fail(FLOE_INVALID_ARGUMENT, "'dim' must be a tensor with a single value");
    TRY(ops_math__shape_index_values(sc, 1, "dim", &dim, 1, &n, &known));
    if (known && n != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "'dim' must be a tensor with a single value");
    if (in.ndim < 0) {
        out = shape_unknown();
    } else if (!known) {
        TRY(check_rank("ExpandDims", in.ndim + 1));
        out = shape_unknown_dims(in.ndim + 1);
    } else {
        TRY(expand_dims_check(in.ndim, dim, &at));
        out = shape_unknown_dims(in.ndim + 1);
        for (int d = 0, k = 0; d <= in.ndim; d++)
            out.dims[d] = d == at ? 1 : in.dims[k++];
    }
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status expand_dims_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *dim_t;
    int64_t dim, dims[FLOE_MAX_DIMS];
    int r, at, n;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &dim_t));
    if (floe_tensor_num_elements(dim_t) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "'dim' must be a tensor with a single value");
    TRY(ops_math__index_values(dim_t, "dim", &dim, 1, &n));
    r = floe_tensor_ndim(in);
    TRY(expand_dims_check(r, dim, &at));
    for (int d = 0, k = 0; d <= r; d++)
        dims[d] = d == at ? 1 : floe_tensor_dim(in, k++);
    return emit_view(kc, in, dims, r + 1);
}

/*
 * Squeeze of a shape (extents -1 unknown): with @n listed dims, each must be in range and
 * of extent 1 (an unknown one is taken to be 1); with none, every extent-1 dim goes.
 * *@unknown (out) is set when the result's rank cannot be known.
 */
static floe_status squeeze_dims(const floe_shape *in, const int64_t *list, int n, floe_shape *out,
                                bool *unknown) {
    bool drop[FLOE_MAX_DIMS] = {false};
    int r = in->ndim;

    *unknown = false;
    for (int i = 0; i < n; i++) {
        int64_t d = list[i];
        if (d < -(int64_t)r || d >= r)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Tried to squeeze dim index %lld for tensor with %d dimensions.",
                             (long long)d, r);
        if (d < 0)
            d += r;
        if (in->dims[d] >= 0 && in->dims[d] != 1)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Can not squeeze dim[%lld], expected a dimension of 1, got %lld",
                             (long long)d, (long long)in->dims[d]);
        drop[d] = true;
    }
    for (int d = 0; n == 0 && d < r; d++) {
        if (in->dims[d] < 0)
            *unknown = true;
        drop[d] = in->dims[d] == 1;
    }
    *out = shape_unknown_dims(0);
    for (int d = 0; d < r; d++)
        if (!drop[d])
            out->dims[out->ndim++] = in->dims[d];
    return FLOE_OK;
}

static floe_status squeeze_list(const floe_attrs *a, const int64_t **list, int *n) {
    *list = NULL;
    *n = 0;
    if (floe_attrs_type(a, "squeeze_dims") == FLOE_ATTR_NONE)
        return FLOE_OK;
    return floe_attrs_get_int_list(a, "squeeze_dims", list, n);
}

static floe_status squeeze_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out = shape_unknown();
    const int64_t *list;
    int n;
    bool unknown = true;

    TRY(squeeze_list(floe_shape_attrs(sc), &list, &n));
    if (in.ndim >= 0)
        TRY(squeeze_dims(&in, list, n, &out, &unknown));
    if (unknown)
        out = shape_unknown();
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status squeeze_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in;
    floe_shape s, os;
    const int64_t *list;
    int n;
    bool unknown;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(squeeze_list(floe_kernel_attrs(kc), &list, &n));
    s = ops_math__shape_of(in);
    TRY(squeeze_dims(&s, list, n, &os, &unknown));
    return emit_view(kc, in, os.dims, os.ndim);
}

/* ---- Tile --------------------------------------------------------------------------- */

/* Output dims of tiling @in (extents -1 unknown) by @mult, checked. */
static floe_status tile_check(const floe_shape *in, const int64_t *mult, int n, floe_shape *out) {
    int r = in->ndim;

    if (n != r)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Expected multiples argument to be a vector of length %d but got "
                         "length %d",
                         r, n);
    *out = shape_unknown_dims(r);
    for (int i = 0; i < r; i++) {
        if (mult[i] < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Expected multiples[%d] >= 0, but got %lld", i,
                             (long long)mult[i]);
        if (in->dims[i] < 0)
            out->dims[i] = mult[i] == 0 ? 0 : -1;
        else if (__builtin_mul_overflow(in->dims[i], mult[i], &out->dims[i]))
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Tile: dimension %d of the output (%lld * %lld) overflows int64", i,
                             (long long)in->dims[i], (long long)mult[i]);
    }
    if (shape_fully_known(out)) {
        int64_t count;
        TRY(ops_math__checked_count("Tile", out->dims, r, &count));
    }
    return FLOE_OK;
}

static floe_status tile_check_mult_rank(int ndim, const int64_t *dims) {
    char buf[DIMS_BUF];
    if (ndim != 1) {
        ops_math__format_dims(dims, ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Expected multiples argument to be a vector, "
                         "got shape %s",
                         buf);
    }
    return FLOE_OK;
}

static floe_status tile_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), ms = floe_shape_input(sc, 1), out;
    int64_t mult[FLOE_MAX_DIMS];
    int n;
    bool known;

    if (ms.ndim >= 0)
        TRY(tile_check_mult_rank(ms.ndim, ms.dims));
    TRY(ops_math__shape_index_values(sc, 1, "multiples", mult, FLOE_MAX_DIMS, &n, &known));
    if (in.ndim < 0)
        out = known ? shape_unknown_dims(n) : shape_unknown();
    else if (known)
        TRY(tile_check(&in, mult, n, &out));
    else
        out = shape_unknown_dims(in.ndim);
    return floe_shape_set_output(sc, 0, &out);
}

typedef struct tile_job {
    int r;
    const int64_t *dims;
    const int64_t *mult;
    int64_t in_stride[FLOE_MAX_DIMS];
    int64_t out_stride[FLOE_MAX_DIMS];
    ops_math__copier from_in; /* input -> output */
    ops_math__copier within;  /* output -> output */
} tile_job;

/* Copies @n elements at @off of the output to follow themselves until @total are
 * filled, doubling the copied span each time. */
static floe_status tile_replicate(const tile_job *j, int64_t off, int64_t n, int64_t total) {
    int64_t filled = n;
    while (filled < total) {
        int64_t k = filled < total - filled ? filled : total - filled;
        TRY(ops_math__copier_run(&j->within, off + filled, off, k));
        filled += k;
    }
    return FLOE_OK;
}

/* Fills the output block of dim @k at @out_off from the input block at @in_off: every
 * row of the block first, then the block repeated mult[k] times. */
static floe_status tile_dim(const tile_job *j, int k, int64_t in_off, int64_t out_off) {
    if (k == j->r - 1) {
        TRY(ops_math__copier_run(&j->from_in, out_off, in_off, j->dims[k]));
    } else {
        for (int64_t i = 0; i < j->dims[k]; i++)
            TRY(tile_dim(j, k + 1, in_off + i * j->in_stride[k], out_off + i * j->out_stride[k]));
    }
    int64_t block = j->dims[k] * j->out_stride[k];
    return tile_replicate(j, out_off, block, block * j->mult[k]);
}

static floe_status tile_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *mult_t, *out;
    floe_shape s, os;
    int64_t mult[FLOE_MAX_DIMS];
    int n;
    tile_job j;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &mult_t));
    TRY(tile_check_mult_rank(floe_tensor_ndim(mult_t), floe_tensor_shape(mult_t)));
    TRY(ops_math__index_values(mult_t, "multiples", mult, FLOE_MAX_DIMS, &n));
    s = ops_math__shape_of(in);
    TRY(tile_check(&s, mult, n, &os));
    TRY(floe_kernel_alloc_output(kc, 0, os.dims, os.ndim, &out));
    if (floe_tensor_num_elements(out) == 0)
        return FLOE_OK;
    ops_math__copier_init(&j.from_in, out, in);
    ops_math__copier_init(&j.within, out, out);
    if (s.ndim == 0)
        return ops_math__copier_run(&j.from_in, 0, 0, 1);
    j.r = s.ndim;
    j.dims = s.dims;
    j.mult = mult;
    ops_math__strides(s.dims, s.ndim, j.in_stride);
    ops_math__strides(os.dims, os.ndim, j.out_stride);
    return tile_dim(&j, 0, 0, 0);
}

/* ---- Pad and PadV2 --------------------------------------------------------------------- */

/* Checks paddings of shape @ps (values @pad, 2 per dim, when @known) against @in, and
 * computes the output shape (extents -1 unknown). */
static floe_status pad_check(const floe_shape *in, const floe_shape *ps, const int64_t *pad,
                             bool known, floe_shape *out) {
    char a[DIMS_BUF], b[DIMS_BUF];
    int r = in->ndim;

    if (ps->ndim >= 0 && (ps->ndim != 2 || (ps->dims[1] >= 0 && ps->dims[1] != 2))) {
        ops_math__format_dims(ps->dims, ps->ndim, b, sizeof(b));
        return floe_fail(FLOE_INVALID_ARGUMENT, "paddings must be a matrix with 2 columns: %s", b);
    }
    if (r >= 0 && ps->ndim == 2 && ps->dims[0] >= 0 && ps->dims[0] != r) {
        ops_math__format_dims(in->dims, r, a, sizeof(a));
        ops_math__format_dims(ps->dims, ps->ndim, b, sizeof(b));
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "The first dimension of paddings must be the rank of inputs %s %s", a, b);
    }
    if (r < 0) {
        *out = shape_unknown();
        if (ps->ndim == 2 && ps->dims[0] >= 0) {
            TRY(check_rank("Pad", ps->dims[0]));
            *out = shape_unknown_dims((int)ps->dims[0]);
        }
        return FLOE_OK;
    }
    *out = shape_unknown_dims(r);
    if (!known)
        return FLOE_OK;
    for (int i = 0; i < r; i++) {
        int64_t before = pad[2 * i], after = pad[2 * i + 1];
        if (before < 0 || after < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Paddings must be non-negative: %lld %lld",
                             (long long)before, (long long)after);
        if (in->dims[i] < 0)
            continue;
        if (__builtin_add_overflow(in->dims[i], before, &out->dims[i]) ||
            __builtin_add_overflow(out->dims[i], after, &out->dims[i]))
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "Pad: dimension %d of the output (%lld + %lld + %lld) overflows "
                             "int64",
                             i, (long long)before, (long long)in->dims[i], (long long)after);
    }
    if (shape_fully_known(out)) {
        int64_t count;
        TRY(ops_math__checked_count("Pad", out->dims, r, &count));
    }
    return FLOE_OK;
}

static floe_status pad_check_constant(const floe_shape *cs) {
    char buf[DIMS_BUF];
    if (cs->ndim > 0) {
        ops_math__format_dims(cs->dims, cs->ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "constant_values must be a scalar. Got: %s", buf);
    }
    return FLOE_OK;
}

static floe_status pad_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), ps = floe_shape_input(sc, 1), out;
    int64_t pad[2 * FLOE_MAX_DIMS] = {0};
    int n;
    bool known;

    if (floe_shape_num_inputs(sc) > 2) {
        floe_shape cs = floe_shape_input(sc, 2);
        TRY(pad_check_constant(&cs));
    }
    if (floe_shape_input_value(sc, 1) != NULL)
        ps = ops_math__shape_of(floe_shape_input_value(sc, 1));
    TRY(pad_check(&in, &ps, NULL, false, &out));
    if (in.ndim >= 0) { /* the shape checks passed: paddings is [rank, 2] or unknown */
        TRY(ops_math__shape_index_values(sc, 1, "paddings", pad, 2 * FLOE_MAX_DIMS, &n, &known));
        if (known)
            TRY(pad_check(&in, &ps, pad, true, &out));
    }
    return floe_shape_set_output(sc, 0, &out);
}

typedef struct pad_job {
    int r;
    int64_t in_dims[FLOE_MAX_DIMS];
    int64_t before[FLOE_MAX_DIMS];
    int64_t out_stride[FLOE_MAX_DIMS];
    ops_math__copier c;
} pad_job;

/* Output offset of input row @row (every input dim but the last). */
static int64_t pad_row_offset(const pad_job *j, int64_t row) {
    int64_t off = j->before[j->r - 1];
    for (int k = j->r - 2; k >= 0; k--) {
        int64_t c = row % j->in_dims[k];
        row /= j->in_dims[k];
        off += (j->before[k] + c) * j->out_stride[k];
    }
    return off;
}

static void pad_rows(void *arg, int64_t begin, int64_t end) {
    const pad_job *j = arg;
    int64_t len = j->in_dims[j->r - 1];
    for (int64_t row = begin; row < end; row++)
        (void)ops_math__copier_run(&j->c, pad_row_offset(j, row), row * len, len);
}

static floe_status pad_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *pad_t, *cv = NULL, *out;
    floe_shape s, ps, os;
    int64_t pad[2 * FLOE_MAX_DIMS] = {0};
    unsigned char zero[16] = {0};
    const void *fill = zero;
    floe_tstring empty = {"", 0};
    int n;
    pad_job j;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &pad_t));
    if (floe_kernel_num_inputs(kc) > 2) {
        TRY(ops_math__kernel_input(kc, 2, floe_tensor_dtype(in), &cv));
        floe_shape cs = ops_math__shape_of(cv);
        TRY(pad_check_constant(&cs));
        fill = floe_tensor_data(cv);
    } else if (floe_tensor_dtype(in) == FLOE_DTYPE_STRING) {
        fill = &empty;
    }
    s = ops_math__shape_of(in);
    ps = ops_math__shape_of(pad_t);
    if (ps.ndim != 2 || ps.dims[1] != 2 || ps.dims[0] != s.ndim)
        return pad_check(&s, &ps, pad, false, &os);
    TRY(ops_math__index_values(pad_t, "paddings", pad, 2 * FLOE_MAX_DIMS, &n));
    TRY(pad_check(&s, &ps, pad, true, &os));
    TRY(floe_kernel_alloc_output(kc, 0, os.dims, os.ndim, &out));
    if (floe_tensor_num_elements(out) == 0)
        return FLOE_OK;
    if (cv == NULL && floe_tensor_dtype(out) != FLOE_DTYPE_STRING)
        memset(floe_tensor_data(out), 0, floe_tensor_nbytes(out));
    else
        TRY(fill_tensor(out, fill));
    if (floe_tensor_num_elements(in) == 0)
        return FLOE_OK;
    ops_math__copier_init(&j.c, out, in);
    if (s.ndim == 0)
        return ops_math__copier_run(&j.c, 0, 0, 1);
    j.r = s.ndim;
    for (int i = 0; i < s.ndim; i++) {
        j.in_dims[i] = s.dims[i];
        j.before[i] = pad[2 * i];
    }
    ops_math__strides(os.dims, os.ndim, j.out_stride);
    int64_t len = s.dims[s.ndim - 1], rows = floe_tensor_num_elements(in) / len;
    if (j.c.strings) {
        for (int64_t row = 0; row < rows; row++)
            TRY(ops_math__copier_run(&j.c, pad_row_offset(&j, row), row * len, len));
        return FLOE_OK;
    }
    ops_math__parallel(floe_kernel_threadpool(kc), rows,
                       OPS_MATH_COPY_GRAIN_BYTES / (len * (int64_t)j.c.esize) + 1, pad_rows, &j);
    return FLOE_OK;
}

/* ---- Registration ----------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define T_ALL "T: type"
#define T_DATA "T: " OPS_MATH_ARRAY_TYPES
#define ONES_TYPES "T: {f32, f64, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64, bool, complex64}"

static const floe_op_def array_ops[] = {
    {sizeof(floe_op_def), "Reshape", S("tensor: T", "shape: Tshape"), S("output: T"),
     S(T_ALL, "Tshape: {i32, i64} = i32"), reshape_shape_fn, 0,
     "Reshapes a tensor; one extent of `shape` may be -1 and is then inferred."},
    {sizeof(floe_op_def), "Transpose", S("x: T", "perm: Tperm"), S("y: T"),
     S(T_ALL, "Tperm: {i32, i64} = i32"), transpose_shape_fn, 0,
     "Permutes the dimensions of x: y.shape[i] = x.shape[perm[i]]."},
    {sizeof(floe_op_def), "ConcatV2", S("values: N * T", "axis: Tidx"), S("output: T"),
     S("N: int >= 2", T_ALL, "Tidx: {i32, i64} = i32"), concat_shape_fn, 0,
     "Concatenates N tensors along axis; other extents must match."},
    {sizeof(floe_op_def), "Pack", S("values: N * T"), S("output: T"),
     S("N: int >= 1", T_ALL, "axis: int = 0"), pack_shape_fn, 0,
     "Stacks N tensors of one shape into one of rank + 1 along axis."},
    {sizeof(floe_op_def), "Unpack", S("value: T"), S("output: num * T"),
     S("num: int >= 0", T_ALL, "axis: int = 0"), unpack_shape_fn, 0,
     "Unstacks value along axis into num tensors of rank - 1."},
    {sizeof(floe_op_def), "Fill", S("dims: index_type", "value: T"), S("output: T"),
     S(T_ALL, "index_type: {i32, i64} = i32"), fill_shape_fn, 0,
     "A tensor of shape dims with every element set to the scalar value."},
    {sizeof(floe_op_def), "ZerosLike", S("x: T"), S("y: T"), S(T_ALL), ops_math__unchanged_shape_fn,
     FLOE_OP_NO_GRADIENT, "Zeros of x's shape and dtype."},
    {sizeof(floe_op_def), "OnesLike", S("x: T"), S("y: T"), S(ONES_TYPES),
     ops_math__unchanged_shape_fn, FLOE_OP_NO_GRADIENT, "Ones of x's shape and dtype."},
    {sizeof(floe_op_def), "Range", S("start: Tidx", "limit: Tidx", "delta: Tidx"),
     S("output: Tidx"), S("Tidx: {f32, f64, i32, i64} = i32"), range_shape_fn, FLOE_OP_NO_GRADIENT,
     "The sequence start, start + delta, ... up to but excluding limit."},
    {sizeof(floe_op_def), "Shape", S("input: T"), S("output: out_type"),
     S(T_ALL, "out_type: {i32, i64} = i32"), shape_op_shape_fn, FLOE_OP_NO_GRADIENT,
     "The shape of input as a 1-D integer tensor."},
    {sizeof(floe_op_def), "Rank", S("input: T"), S("output: i32"), S(T_ALL), scalar_shape_fn,
     FLOE_OP_NO_GRADIENT, "The number of dimensions of input."},
    {sizeof(floe_op_def), "Size", S("input: T"), S("output: out_type"),
     S(T_ALL, "out_type: {i32, i64} = i32"), scalar_shape_fn, FLOE_OP_NO_GRADIENT,
     "The number of elements of input."},
    {sizeof(floe_op_def), "ExpandDims", S("input: T", "dim: Tdim"), S("output: T"),
     S(T_ALL, "Tdim: {i32, i64} = i32"), expand_dims_shape_fn, 0,
     "Inserts a dimension of extent 1 at index dim."},
    {sizeof(floe_op_def), "Squeeze", S("input: T"), S("output: T"),
     S(T_ALL, "squeeze_dims: list(int) = []"), squeeze_shape_fn, 0,
     "Removes dimensions of extent 1 (those listed, or all of them)."},
    {sizeof(floe_op_def), "Tile", S("input: T", "multiples: Tmultiples"), S("output: T"),
     S(T_ALL, "Tmultiples: {i32, i64} = i32"), tile_shape_fn, 0,
     "Repeats input multiples[i] times along dimension i."},
    {sizeof(floe_op_def), "Pad", S("input: T", "paddings: Tpaddings"), S("output: T"),
     S(T_ALL, "Tpaddings: {i32, i64} = i32"), pad_shape_fn, 0,
     "Pads with zeros: paddings[i] = [before, after] elements of dimension i."},
    {sizeof(floe_op_def), "PadV2", S("input: T", "paddings: Tpaddings", "constant_values: T"),
     S("output: T"), S(T_ALL, "Tpaddings: {i32, i64} = i32"), pad_shape_fn, 0,
     "Pads with the scalar constant_values."},
};

#define KERNEL(op, types, fn, ...)                                                                 \
    { sizeof(floe_kernel_def), op, "CPU", types, 0, NULL, fn, NULL, __VA_ARGS__ }

static const floe_kernel_def array_kernels[] = {
    KERNEL("Reshape", S(T_DATA), reshape_compute, S("shape")),
    KERNEL("Transpose", S(T_DATA), transpose_compute, S("perm")),
    KERNEL("ConcatV2", S(T_DATA), concat_compute, S("axis")),
    KERNEL("Pack", S(T_DATA), pack_compute, NULL),
    KERNEL("Unpack", S(T_DATA), unpack_compute, NULL),
    KERNEL("Fill", S(T_DATA), fill_compute, S("dims")),
    KERNEL("ZerosLike", S(T_DATA), zeros_like_compute, NULL),
    KERNEL("OnesLike", NULL, ones_like_compute, NULL),
    KERNEL("Range", NULL, range_compute, S("start", "limit", "delta")),
    KERNEL("Shape", NULL, shape_op_compute, S("output")),
    KERNEL("Rank", NULL, rank_compute, S("output")),
    KERNEL("Size", NULL, size_compute, S("output")),
    KERNEL("ExpandDims", S(T_DATA), expand_dims_compute, S("dim")),
    KERNEL("Squeeze", S(T_DATA), squeeze_compute, NULL),
    KERNEL("Tile", S(T_DATA), tile_compute, S("multiples")),
    KERNEL("Pad", S(T_DATA), pad_compute, S("paddings")),
    KERNEL("PadV2", S(T_DATA), pad_compute, S("paddings")),
};

floe_status ops_math__register_array(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(array_ops) / sizeof(array_ops[0]); i++)
        TRY(floe_register_op(self, &array_ops[i]));
    for (size_t i = 0; i < sizeof(array_kernels) / sizeof(array_kernels[0]); i++)
        TRY(floe_register_kernel(self, &array_kernels[i]));
    return FLOE_OK;
}
