/*
 * slice.c - TensorFlow's Slice and StridedSlice with CPU kernels.
 *
 * Both reduce to one strided copy (slice_plan): output element (j_0, ..., j_r-1) is input
 * element (start_k + j_k * stride_k)_k.  The plan merges trailing dims taken whole into
 * longer contiguous runs, copies rows with memcpy when the innermost stride is 1 and
 * element by element otherwise, and splits the rows across the thread pool when the
 * copy is large.  STRING elements go through floe_tensor_set_string().
 *
 * StridedSlice follows TensorFlow's ValidateStridedSliceOp (strided_slice_op.cc) step by
 * step: the sparse spec (one entry per begin/end/strides element, with ellipsis,
 * new-axis and shrink-axis bits) becomes a dense spec of one entry per input dim, each
 * dense (begin, end) is made canonical (negative indices from the end, masks meaning
 * "from the start/to the end", clamping), and the final shape drops shrunk dims and adds
 * new axes.  Every bound is checked before a byte moves, so no begin, end or stride can
 * read outside the input; a stride of 0 is an error.
 *
 * Sections: the strided copy; Slice; StridedSlice validation; StridedSlice op;
 * registration.
 */
#include "ops_math-impl.h"

#include <stdio.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        floe_status try_st_ = (expr);                                                              \
        if (try_st_ != FLOE_OK)                                                                    \
            return try_st_;                                                                        \
    } while (0)

#define DIMS_BUF 200

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

/* ---- The strided copy ---------------------------------------------------------------- */

typedef struct slice_plan {
    int ndim;
    int64_t in_dims[FLOE_MAX_DIMS];
    int64_t out_dims[FLOE_MAX_DIMS]; /* >= 0 */
    int64_t start[FLOE_MAX_DIMS];    /* in [0, in_dims) when out_dims > 0 */
    int64_t stride[FLOE_MAX_DIMS];   /* != 0 */
} slice_plan;

typedef struct slice_job {
    const slice_plan *p;
    int64_t in_stride[FLOE_MAX_DIMS];
    ops_math__copier c;
} slice_job;

/* Checks that every index the plan reads lies inside the input (a broken validation
 * must not become an out-of-bounds read). */
static floe_status slice_plan_check(const slice_plan *p) {
    for (int k = 0; k < p->ndim; k++) {
        int64_t n = p->out_dims[k], last;
        if (n == 0)
            continue;
        if (n < 0 || p->stride[k] == 0 || p->start[k] < 0 || p->start[k] >= p->in_dims[k] ||
            __builtin_mul_overflow(n - 1, p->stride[k], &last) ||
            __builtin_add_overflow(last, p->start[k], &last) || last < 0 || last >= p->in_dims[k])
            return floe_fail(FLOE_INTERNAL, "slice of dimension %d reads outside the input", k);
    }
    return FLOE_OK;
}

/* Merges dim k into dim k-1 wherever dim k is taken whole (start 0, stride 1, every
 * element) and dim k-1 has stride 1: together they read contiguous runs. */
static void slice_plan_merge(slice_plan *p) {
    int k = p->ndim - 1;
    while (k >= 1) {
        bool whole = p->start[k] == 0 && p->stride[k] == 1 && p->out_dims[k] == p->in_dims[k];
        if (whole && p->stride[k - 1] == 1) {
            int64_t d = p->in_dims[k];
            p->start[k - 1] *= d;
            p->out_dims[k - 1] *= d;
            p->in_dims[k - 1] *= d;
            for (int j = k; j < p->ndim - 1; j++) {
                p->in_dims[j] = p->in_dims[j + 1];
                p->out_dims[j] = p->out_dims[j + 1];
                p->start[j] = p->start[j + 1];
                p->stride[j] = p->stride[j + 1];
            }
            p->ndim--;
        }
        k--;
    }
}

/* Input offset of the first element of output row @row (every dim but the last). */
static int64_t slice_row_base(const slice_job *j, int64_t row) {
    const slice_plan *p = j->p;
    int last = p->ndim - 1;
    int64_t off = p->start[last] * j->in_stride[last];
    for (int k = last - 1; k >= 0; k--) {
        int64_t c = row % p->out_dims[k];
        row /= p->out_dims[k];
        off += (p->start[k] + c * p->stride[k]) * j->in_stride[k];
    }
    return off;
}

#define SLICE_STRIDED_LOOP(type)                                                                   \
    do {                                                                                           \
        type *d_ = (type *)(void *)j->c.dst_data + row * n;                                        \
        const type *s_ = (const type *)(const void *)j->c.src_data + base;                         \
        for (int64_t i = 0; i < n; i++)                                                            \
            d_[i] = s_[i * step];                                                                  \
    } while (0)

static void slice_rows(void *arg, int64_t begin, int64_t end) {
    const slice_job *j = arg;
    const slice_plan *p = j->p;
    const int last = p->ndim - 1;
    const int64_t n = p->out_dims[last], step = p->stride[last] * j->in_stride[last];
    const size_t es = j->c.esize;

    for (int64_t row = begin; row < end; row++) {
        int64_t base = slice_row_base(j, row);
        if (step == 1) {
            memcpy(j->c.dst_data + (size_t)(row * n) * es, j->c.src_data + (size_t)base * es,
                   (size_t)n * es);
            continue;
        }
        switch (es) {
        case 1:
            SLICE_STRIDED_LOOP(uint8_t);
            break;
        case 2:
            SLICE_STRIDED_LOOP(uint16_t);
            break;
        case 4:
            SLICE_STRIDED_LOOP(uint32_t);
            break;
        case 8:
            SLICE_STRIDED_LOOP(uint64_t);
            break;
        default:
            for (int64_t i = 0; i < n; i++)
                memcpy(j->c.dst_data + (size_t)(row * n + i) * es,
                       j->c.src_data + (size_t)(base + i * step) * es, es);
            break;
        }
    }
}

/* Copies the elements @p selects from @in into @out (same element count). */
static floe_status slice_run(floe_kernel_ctx *kc, floe_tensor *out, const floe_tensor *in,
                             slice_plan *p) {
    slice_job j;

    TRY(slice_plan_check(p));
    if (floe_tensor_num_elements(out) == 0)
        return FLOE_OK;
    ops_math__copier_init(&j.c, out, in);
    if (p->ndim == 0)
        return ops_math__copier_run(&j.c, 0, 0, 1);
    slice_plan_merge(p);
    j.p = p;
    ops_math__strides(p->in_dims, p->ndim, j.in_stride);

    const int last = p->ndim - 1;
    const int64_t n = p->out_dims[last], rows = floe_tensor_num_elements(out) / n;
    if (j.c.strings) {
        int64_t step = p->stride[last] * j.in_stride[last];
        for (int64_t row = 0; row < rows; row++) {
            int64_t base = slice_row_base(&j, row);
            if (step == 1) {
                TRY(ops_math__copier_run(&j.c, row * n, base, n));
                continue;
            }
            for (int64_t i = 0; i < n; i++)
                TRY(ops_math__copier_run(&j.c, row * n + i, base + i * step, 1));
        }
        return FLOE_OK;
    }
    ops_math__parallel(floe_kernel_threadpool(kc), rows,
                       OPS_MATH_COPY_GRAIN_BYTES / (n * (int64_t)j.c.esize) + 1, slice_rows, &j);
    return FLOE_OK;
}

/* ---- Slice ---------------------------------------------------------------------- */

/* Checks begin/size (@n values each) against @in (extents -1 unknown) as TensorFlow's
 * SharedSliceValidation does, and writes the output extents into @out. */
static floe_status slice_check(const floe_shape *in, const int64_t *begin, const int64_t *size,
                               floe_shape *out) {
    *out = shape_unknown_dims(in->ndim);
    for (int i = 0; i < in->ndim; i++) {
        int64_t b = begin[i], s = size[i], dim = in->dims[i];
        if (dim < 0) {
            out->dims[i] = s >= 0 ? s : -1;
            continue;
        }
        bool bad_begin = b < 0 || b > dim;
        if (s == -1 && !bad_begin)
            s = dim - b; /* -1: everything from begin on */
        if (dim == 0) {
            if (b != 0 || s != 0)
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "Expected begin[%d] == 0 (got %lld) and size[%d] == 0 (got "
                                 "%lld) when input.dim_size(%d) == 0",
                                 i, (long long)b, i, (long long)s, i);
        } else if (bad_begin) {
            return floe_fail(FLOE_INVALID_ARGUMENT, "Expected begin[%d] in [0, %lld], but got %lld",
                             i, (long long)dim, (long long)b);
        } else if (s < 0 || s > dim - b) {
            return floe_fail(FLOE_INVALID_ARGUMENT, "Expected size[%d] in [0, %lld], but got %lld",
                             i, (long long)(dim - b), (long long)s);
        }
        out->dims[i] = s;
    }
    return FLOE_OK;
}

/* begin and size must be vectors of the input's rank. */
static floe_status slice_check_args(int r, const floe_shape *bs, const floe_shape *ss) {
    char a[DIMS_BUF], b[DIMS_BUF];
    bool ok = true;

    if (bs->ndim >= 0)
        ok = bs->ndim == 1 && (bs->dims[0] < 0 || r < 0 || bs->dims[0] == r);
    if (ss->ndim >= 0)
        ok = ok && ss->ndim == 1 && (ss->dims[0] < 0 || r < 0 || ss->dims[0] == r);
    if (ok && bs->ndim == 1 && ss->ndim == 1 && bs->dims[0] >= 0 && ss->dims[0] >= 0)
        ok = bs->dims[0] == ss->dims[0];
    if (ok)
        return FLOE_OK;
    ops_math__format_dims(bs->dims, bs->ndim, a, sizeof(a));
    ops_math__format_dims(ss->dims, ss->ndim, b, sizeof(b));
    return floe_fail(FLOE_INVALID_ARGUMENT,
                     "Expected begin and size arguments to be 1-D tensors of size %d, but got "
                     "shapes %s and %s instead.",
                     r, a, b);
}

static floe_status slice_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out;
    floe_shape bs = floe_shape_input(sc, 1), ss = floe_shape_input(sc, 2);
    int64_t begin[FLOE_MAX_DIMS], size[FLOE_MAX_DIMS];
    int nb, ns;
    bool bknown, sknown;

    /* Known values carry their true shapes. */
    if (floe_shape_input_value(sc, 1) != NULL)
        bs = ops_math__shape_of(floe_shape_input_value(sc, 1));
    if (floe_shape_input_value(sc, 2) != NULL)
        ss = ops_math__shape_of(floe_shape_input_value(sc, 2));
    TRY(slice_check_args(in.ndim, &bs, &ss));
    TRY(ops_math__shape_index_values(sc, 1, "begin", begin, FLOE_MAX_DIMS, &nb, &bknown));
    TRY(ops_math__shape_index_values(sc, 2, "size", size, FLOE_MAX_DIMS, &ns, &sknown));
    if (in.ndim < 0 && sknown) {
        in = shape_unknown_dims(ns);
    } else if (in.ndim < 0) {
        out =
            bs.ndim == 1 && bs.dims[0] >= 0 ? shape_unknown_dims((int)bs.dims[0]) : shape_unknown();
        if (bs.ndim == 1 && bs.dims[0] > FLOE_MAX_DIMS)
            return floe_fail(FLOE_INVALID_ARGUMENT, "Slice: rank %lld exceeds the maximum of %d",
                             (long long)bs.dims[0], FLOE_MAX_DIMS);
        return floe_shape_set_output(sc, 0, &out);
    }
    if (bknown && sknown) {
        TRY(slice_check(&in, begin, size, &out));
    } else {
        out = shape_unknown_dims(in.ndim);
        for (int i = 0; sknown && i < in.ndim; i++)
            out.dims[i] = size[i] >= 0 ? size[i] : -1;
    }
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status slice_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *begin_t, *size_t_, *out;
    floe_shape s, bs, ss, os;
    int64_t begin[FLOE_MAX_DIMS], size[FLOE_MAX_DIMS];
    int nb, ns;
    slice_plan p;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &begin_t));
    TRY(ops_math__kernel_input(kc, 2, FLOE_DTYPE_INVALID, &size_t_));
    s = ops_math__shape_of(in);
    bs = ops_math__shape_of(begin_t);
    ss = ops_math__shape_of(size_t_);
    TRY(slice_check_args(s.ndim, &bs, &ss));
    TRY(ops_math__index_values(begin_t, "begin", begin, FLOE_MAX_DIMS, &nb));
    TRY(ops_math__index_values(size_t_, "size", size, FLOE_MAX_DIMS, &ns));
    TRY(slice_check(&s, begin, size, &os));
    TRY(floe_kernel_alloc_output(kc, 0, os.dims, os.ndim, &out));
    p.ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) {
        p.in_dims[i] = s.dims[i];
        p.out_dims[i] = os.dims[i];
        p.start[i] = begin[i];
        p.stride[i] = 1;
    }
    return slice_run(kc, out, in, &p);
}

/* ---- StridedSlice validation --------------------------------------------------------- */

/* Sparse entries are limited to 31 so that the implicit trailing ellipsis still has a
 * bit of the 32-bit masks (TensorFlow's limit). */
#define SS_MAX_SPARSE 31
#define SS_NEW_AXIS (-1)
#define SS_SHRINK_AXIS (-2)

/* The op's inputs and attrs: one sparse entry per element of strides. */
typedef struct ss_sparse {
    int n;
    const int64_t *begin; /* NULL: not known (shape functions) */
    const int64_t *end;   /* NULL: not known */
    const int64_t *strides;
    uint32_t begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask;
} ss_sparse;

/* The result: one entry per input dim, and the final shape. */
typedef struct ss_dense {
    int ndim;
    int64_t begin[FLOE_MAX_DIMS];
    int64_t end[FLOE_MAX_DIMS];
    int64_t stride[FLOE_MAX_DIMS];
    int64_t size[FLOE_MAX_DIMS]; /* the processing shape; -1 unknown */
    floe_shape final_shape;
} ss_dense;

/* Per-dense-dim masks and the final shape's sources, while building. */
typedef struct ss_build {
    uint32_t begin_mask, end_mask, shrink_mask;
    int final_src[SS_MAX_SPARSE + 1 + FLOE_MAX_DIMS]; /* dense dim, NEW_AXIS, SHRINK_AXIS */
    int nfinal;
} ss_build;

/* Step 2 of ValidateStridedSliceOp: expands the ellipsis and lays the sparse entries
 * onto the input's dims. */
static floe_status ss_build_dense(const ss_sparse *sp, uint32_t ellipsis, int sparse_dims,
                                  int add_after_ellipsis, ss_dense *d, ss_build *b) {
    int full = 0;

    for (int i = 0; i < sparse_dims; i++) {
        uint32_t bit = 1u << i;
        if (ellipsis & bit) {
            int next = d->ndim - (sparse_dims - i) + 1 + add_after_ellipsis;
            if (next > d->ndim)
                next = d->ndim;
            for (; full < next; full++) {
                d->begin[full] = d->end[full] = 0;
                d->stride[full] = 1;
                b->begin_mask |= 1u << full;
                b->end_mask |= 1u << full;
                b->final_src[b->nfinal++] = full;
            }
        } else if (sp->new_axis_mask & bit) {
            b->final_src[b->nfinal++] = SS_NEW_AXIS;
        } else {
            if (full == d->ndim) {
                if (d->ndim == 0)
                    return floe_fail(FLOE_INVALID_ARGUMENT, "Attempting to slice scalar input.");
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "Index out of range using input dim %d; input has only %d dims",
                                 full, d->ndim);
            }
            d->begin[full] = sp->begin != NULL ? sp->begin[i] : 0;
            d->end[full] = sp->end != NULL ? sp->end[i] : 0;
            d->stride[full] = sp->strides[i];
            if (sp->begin_mask & bit)
                b->begin_mask |= 1u << full;
            if (sp->end_mask & bit)
                b->end_mask |= 1u << full;
            if (sp->shrink_axis_mask & bit) {
                b->final_src[b->nfinal++] = SS_SHRINK_AXIS;
                b->shrink_mask |= 1u << full;
            } else {
                b->final_src[b->nfinal++] = full;
            }
            full++;
        }
    }
    return FLOE_OK;
}

/* (begin, end) of a masked or given index made canonical for a dim of extent @dim:
 * negative counts from the end, then clamped to the valid range of @stride's direction.
 * @c is 0 for begin, 1 for end. */
static int64_t ss_canonical(int64_t x, int c, bool masked, int64_t stride, int64_t dim) {
    const int64_t lo = stride > 0 ? 0 : -1, hi = stride > 0 ? dim : dim - 1;
    if (masked)
        return (stride > 0) == (c == 0) ? lo : hi;
    int64_t fwd = x < 0 ? dim + x : x;
    return fwd < lo ? lo : fwd > hi ? hi : fwd;
}

/* Step 3: canonical begin/end of dense dim @i and its extent in the processing shape. */
static floe_status ss_dense_dim(ss_dense *d, const ss_build *b, int i, int64_t dim, bool valid) {
    int64_t *begin = &d->begin[i], *end = &d->end[i], stride = d->stride[i], len = 0;
    bool shrink = (b->shrink_mask >> i) & 1u, bm = (b->begin_mask >> i) & 1u;
    bool em = (b->end_mask >> i) & 1u, known = false;

    if (stride == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "strides[%d] must be non-zero", i);
    if (dim < 0) {
        d->size[i] = shrink ? 1 : -1;
        return FLOE_OK;
    }
    if (shrink && stride <= 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "only stride 1 allowed on non-range indexing.");
    if (valid) {
        if (shrink) {
            /* x[-1] has begin -1, end 0: rebuild end as begin + 1 once begin is known good. */
            int64_t fwd = *begin < 0 ? dim + *begin : *begin;
            if (fwd < 0 || fwd >= dim)
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "slice index %lld of dimension %d out of bounds.", (long long)fwd,
                                 i);
            *begin = fwd;
            *end = fwd + 1;
        } else {
            *begin = ss_canonical(*begin, 0, bm, stride, dim);
            *end = ss_canonical(*end, 1, em, stride, dim);
        }
        len = *end - *begin;
        known = true;
    } else if (shrink) {
        len = 1;
        known = true;
    } else if (bm && em) {
        len = stride < 0 ? -dim : dim;
        known = true;
    }
    if (!known)
        d->size[i] = -1;
    else if (len == 0 || ((len < 0) != (stride < 0)))
        d->size[i] = 0;
    else
        d->size[i] = len / stride + (len % stride != 0);
    return FLOE_OK;
}

/* TensorFlow's ValidateStridedSliceOp for an input of shape @in (rank known, extents
 * -1 unknown). */
static floe_status ss_validate(const floe_shape *in, const ss_sparse *sp, ss_dense *d) {
    uint32_t ellipsis = sp->ellipsis_mask;
    int sparse_dims = sp->n, add_after_ellipsis = 0;
    bool seen = false;
    ss_build b;

    memset(d, 0, sizeof(*d));
    memset(&b, 0, sizeof(b));
    d->ndim = in->ndim;
    if (sp->n > SS_MAX_SPARSE)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "StridedSlice: %d slice entries, at most %d are supported", sp->n,
                         SS_MAX_SPARSE);
    if (ellipsis & (ellipsis - 1))
        return floe_fail(FLOE_INVALID_ARGUMENT, "Multiple ellipses in slice spec not allowed");
    for (int i = 0; i < sp->n; i++) {
        if (seen && ((sp->new_axis_mask >> i) & 1u))
            add_after_ellipsis++;
        if ((ellipsis >> i) & 1u)
            seen = true;
    }
    if (!seen) { /* an implicit ellipsis after the last entry */
        ellipsis |= 1u << sp->n;
        sparse_dims++;
    }
    TRY(ss_build_dense(sp, ellipsis, sparse_dims, add_after_ellipsis, d, &b));
    for (int i = 0; i < d->ndim; i++)
        TRY(ss_dense_dim(d, &b, i, in->dims[i], sp->begin != NULL && sp->end != NULL));

    d->final_shape = shape_unknown_dims(0);
    for (int k = 0; k < b.nfinal; k++) {
        int src = b.final_src[k];
        if (src == SS_SHRINK_AXIS)
            continue;
        if (d->final_shape.ndim == FLOE_MAX_DIMS)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "StridedSlice: the result would have more than %d dimensions",
                             FLOE_MAX_DIMS);
        d->final_shape.dims[d->final_shape.ndim++] = src == SS_NEW_AXIS ? 1 : d->size[src];
    }
    return FLOE_OK;
}

/* ---- StridedSlice op ------------------------------------------------------------------ */

static floe_status ss_masks(const floe_attrs *a, ss_sparse *sp) {
    static const char *const names[5] = {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                         "shrink_axis_mask"};
    uint32_t *dst[5] = {&sp->begin_mask, &sp->end_mask, &sp->ellipsis_mask, &sp->new_axis_mask,
                        &sp->shrink_axis_mask};
    for (int k = 0; k < 5; k++) {
        int64_t v = 0;
        *dst[k] = 0;
        if (floe_attrs_type(a, names[k]) == FLOE_ATTR_NONE)
            continue;
        TRY(floe_attrs_get_int(a, names[k], &v));
        *dst[k] = (uint32_t)v; /* TensorFlow's masks are int32 bit sets */
    }
    return FLOE_OK;
}

/* begin, end and strides must be vectors of one length below 32. */
static floe_status ss_check_args(const floe_shape *bs, const floe_shape *es, const floe_shape *ss) {
    char a[DIMS_BUF], b[DIMS_BUF], c[DIMS_BUF];
    const floe_shape *all[3] = {bs, es, ss};
    int64_t n = -1;
    bool ok = true;

    for (int k = 0; k < 3 && ok; k++) {
        if (all[k]->ndim < 0)
            continue;
        ok = all[k]->ndim == 1;
        if (ok && all[k]->dims[0] >= 0) {
            ok = (n < 0 || all[k]->dims[0] == n) && all[k]->dims[0] <= SS_MAX_SPARSE;
            n = all[k]->dims[0];
        }
    }
    if (ok)
        return FLOE_OK;
    ops_math__format_dims(bs->dims, bs->ndim, a, sizeof(a));
    ops_math__format_dims(es->dims, es->ndim, b, sizeof(b));
    ops_math__format_dims(ss->dims, ss->ndim, c, sizeof(c));
    return floe_fail(FLOE_INVALID_ARGUMENT,
                     "Expected begin, end, and strides to be 1D equal size tensors (of at most "
                     "%d elements), but got shapes %s, %s, and %s instead.",
                     SS_MAX_SPARSE, a, b, c);
}

static floe_status strided_slice_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out = shape_unknown();
    floe_shape bs = floe_shape_input(sc, 1), es = floe_shape_input(sc, 2);
    floe_shape ss = floe_shape_input(sc, 3);
    int64_t begin[SS_MAX_SPARSE], end[SS_MAX_SPARSE], strides[SS_MAX_SPARSE];
    int nb, ne, ns;
    bool bknown, eknown, sknown;
    ss_sparse sp;
    ss_dense d;

    if (floe_shape_input_value(sc, 1) != NULL) /* known values carry their true shapes */
        bs = ops_math__shape_of(floe_shape_input_value(sc, 1));
    if (floe_shape_input_value(sc, 2) != NULL)
        es = ops_math__shape_of(floe_shape_input_value(sc, 2));
    if (floe_shape_input_value(sc, 3) != NULL)
        ss = ops_math__shape_of(floe_shape_input_value(sc, 3));
    TRY(ss_check_args(&bs, &es, &ss));
    TRY(ops_math__shape_index_values(sc, 1, "begin", begin, SS_MAX_SPARSE, &nb, &bknown));
    TRY(ops_math__shape_index_values(sc, 2, "end", end, SS_MAX_SPARSE, &ne, &eknown));
    TRY(ops_math__shape_index_values(sc, 3, "strides", strides, SS_MAX_SPARSE, &ns, &sknown));
    if (in.ndim < 0 || !sknown)
        return floe_shape_set_output(sc, 0, &out);
    memset(&sp, 0, sizeof(sp));
    TRY(ss_masks(floe_shape_attrs(sc), &sp));
    sp.n = ns;
    sp.strides = strides;
    sp.begin = bknown && nb == ns ? begin : NULL;
    sp.end = eknown && ne == ns ? end : NULL;
    TRY(ss_validate(&in, &sp, &d));
    return floe_shape_set_output(sc, 0, &d.final_shape);
}

static floe_status strided_slice_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in, *t[3], *out;
    floe_shape s, sh[3];
    int64_t v[3][SS_MAX_SPARSE];
    int n[3];
    ss_sparse sp;
    ss_dense d;
    slice_plan p;
    static const char *const names[3] = {"begin", "end", "strides"};

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &in));
    for (int k = 0; k < 3; k++) {
        TRY(ops_math__kernel_input(kc, k + 1, FLOE_DTYPE_INVALID, &t[k]));
        sh[k] = ops_math__shape_of(t[k]);
    }
    TRY(ss_check_args(&sh[0], &sh[1], &sh[2]));
    for (int k = 0; k < 3; k++)
        TRY(ops_math__index_values(t[k], names[k], v[k], SS_MAX_SPARSE, &n[k]));
    memset(&sp, 0, sizeof(sp));
    TRY(ss_masks(floe_kernel_attrs(kc), &sp));
    sp.n = n[2];
    sp.begin = v[0];
    sp.end = v[1];
    sp.strides = v[2];
    s = ops_math__shape_of(in);
    TRY(ss_validate(&s, &sp, &d));
    TRY(floe_kernel_alloc_output(kc, 0, d.final_shape.dims, d.final_shape.ndim, &out));
    p.ndim = s.ndim;
    for (int i = 0; i < s.ndim; i++) {
        p.in_dims[i] = s.dims[i];
        p.out_dims[i] = d.size[i];
        p.start[i] = d.begin[i];
        p.stride[i] = d.stride[i];
    }
    return slice_run(kc, out, in, &p);
}

/* ---- Registration ------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})

static const floe_op_def slice_ops[] = {
    {sizeof(floe_op_def), "Slice", S("input: T", "begin: Index", "size: Index"), S("output: T"),
     S("T: type", "Index: {i32, i64}"), slice_shape_fn, 0,
     "The block of input starting at begin of extents size (-1: to the end)."},
    {sizeof(floe_op_def), "StridedSlice",
     S("input: T", "begin: Index", "end: Index", "strides: Index"), S("output: T"),
     S("T: type", "Index: {i32, i64}", "begin_mask: int = 0", "end_mask: int = 0",
       "ellipsis_mask: int = 0", "new_axis_mask: int = 0", "shrink_axis_mask: int = 0"),
     strided_slice_shape_fn, 0,
     "Python's x[begin:end:stride] with ellipsis, new-axis and shrink-axis masks."},
};

static const floe_kernel_def slice_kernels[] = {
    {sizeof(floe_kernel_def), "Slice", "CPU", S("T: " OPS_MATH_ARRAY_TYPES), 0, NULL, slice_compute,
     NULL, S("begin", "size")},
    {sizeof(floe_kernel_def), "StridedSlice", "CPU", S("T: " OPS_MATH_ARRAY_TYPES), 0, NULL,
     strided_slice_compute, NULL, S("begin", "end", "strides")},
};

floe_status ops_math__register_slice(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(slice_ops) / sizeof(slice_ops[0]); i++)
        TRY(floe_register_op(self, &slice_ops[i]));
    for (size_t i = 0; i < sizeof(slice_kernels) / sizeof(slice_kernels[0]); i++)
        TRY(floe_register_kernel(self, &slice_kernels[i]));
    return FLOE_OK;
}
