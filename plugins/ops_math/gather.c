/*
 * gather.c - TensorFlow's GatherV2 with a CPU kernel.
 *
 * output = params[..., indices, ...] along axis, with TensorFlow's batch_dims:
 *   output.shape = params.shape[:axis] + indices.shape[batch_dims:] + params.shape[axis+1:]
 * where the first batch_dims dims of params and indices are matched element by element.
 *
 * Every index is checked against params.shape[axis] before anything is copied (as
 * TensorFlow's CPU kernel does; there is no silent clamping): the error names the index's
 * position, its value and the valid range.  The copy moves rows of the slice
 * params.shape[axis+1:] with memcpy (single elements by type), split across the thread
 * pool when large; STRING elements are copied with floe_tensor_set_string().
 *
 * Sections: validation and shapes; the copy; the op and kernel; registration.
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

/* ---- Validation and shapes ------------------------------------------------------------ */

/*
 * Checks axis and batch_dims against params (rank @pr) and indices (rank @ir), shapes
 * with -1 for unknown extents, and writes the output shape.  *@axis_out and *@bd_out are
 * the normalised axis and batch_dims.
 */
static floe_status gather_check(const floe_shape *params, const floe_shape *indices, int64_t axis,
                                int64_t batch_dims, int *axis_out, int *bd_out, floe_shape *out) {
    int pr = params->ndim, ir = indices->ndim, ax, bd;

    *axis_out = *bd_out = 0;
    if (pr < 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "params must be at least 1 dimensional");
    if (axis < -(int64_t)pr || axis >= pr)
        return floe_fail(FLOE_INVALID_ARGUMENT, "Expected axis in the range [%d, %d), but got %lld",
                         -pr, pr, (long long)axis);
    ax = (int)(axis < 0 ? axis + pr : axis);
    if (batch_dims < -(int64_t)ir || batch_dims > ir)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "Expected batch_dims in the range [%d, %d], but got %lld", -ir, ir,
                         (long long)batch_dims);
    bd = (int)(batch_dims < 0 ? batch_dims + ir : batch_dims);
    if (bd != 0) {
        if (bd >= pr)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "batch_dims (%d) must be less than rank(params) (%d).", bd, pr);
        if (ax < bd)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "batch_dims (%d) must be less than or equal to axis (%d).", bd, ax);
        for (int i = 0; i < bd; i++)
            if (params->dims[i] >= 0 && indices->dims[i] >= 0 &&
                params->dims[i] != indices->dims[i])
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "params.shape[%d]: %lld should be equal to indices.shape[%d]: "
                                 "%lld",
                                 i, (long long)params->dims[i], i, (long long)indices->dims[i]);
    }
    int64_t rank = (int64_t)pr - 1 + ir - bd;
    if (rank > FLOE_MAX_DIMS)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "GatherV2: the result would have rank %lld, more than %d", (long long)rank,
                         FLOE_MAX_DIMS);
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < ax; i++)
        out->dims[out->ndim++] = params->dims[i];
    for (int i = bd; i < ir; i++)
        out->dims[out->ndim++] = indices->dims[i];
    for (int i = ax + 1; i < pr; i++)
        out->dims[out->ndim++] = params->dims[i];
    *axis_out = ax;
    *bd_out = bd;
    return FLOE_OK;
}

static floe_status gather_batch_dims(const floe_attrs *a, int64_t *bd) {
    *bd = 0;
    if (floe_attrs_type(a, "batch_dims") == FLOE_ATTR_NONE)
        return FLOE_OK;
    return floe_attrs_get_int(a, "batch_dims", bd);
}

static floe_status gather_check_axis_rank(const floe_shape *s) {
    char buf[DIMS_BUF];
    if (s->ndim > 0) {
        ops_math__format_dims(s->dims, s->ndim, buf, sizeof(buf));
        return floe_fail(FLOE_INVALID_ARGUMENT, "axis must be scalar, but got %s", buf);
    }
    return FLOE_OK;
}

static floe_status gather_shape_fn(floe_shape_ctx *sc) {
    floe_shape params = floe_shape_input(sc, 0), indices = floe_shape_input(sc, 1);
    floe_shape as = floe_shape_input(sc, 2), out;
    int64_t axis, bd;
    int n, ax, bdn;
    bool known;

    TRY(gather_check_axis_rank(&as));
    TRY(gather_batch_dims(floe_shape_attrs(sc), &bd));
    TRY(ops_math__shape_index_values(sc, 2, "axis", &axis, 1, &n, &known));
    memset(&out, 0, sizeof(out));
    out.ndim = -1;
    if (params.ndim >= 0 && indices.ndim >= 0) {
        if (known && n == 1) {
            TRY(gather_check(&params, &indices, axis, bd, &ax, &bdn, &out));
        } else {
            /* Axis unknown: only the rank is known. */
            int64_t b = bd < 0 ? bd + indices.ndim : bd, rank = params.ndim - 1 + indices.ndim - b;
            if (params.ndim < 1 || b < 0 || b > indices.ndim)
                return gather_check(&params, &indices, 0, bd, &ax, &bdn, &out);
            if (rank > FLOE_MAX_DIMS)
                return floe_fail(FLOE_INVALID_ARGUMENT,
                                 "GatherV2: the result would have rank %lld, more than %d",
                                 (long long)rank, FLOE_MAX_DIMS);
            out.ndim = (int)rank;
            for (int i = 0; i < out.ndim; i++)
                out.dims[i] = -1;
        }
    }
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- The copy -------------------------------------------------------------------------- */

typedef struct gather_job {
    const floe_tensor *indices;
    int64_t outer; /* params extents between batch_dims and axis */
    int64_t n;     /* indices per batch */
    int64_t dim;   /* params.shape[axis] */
    int64_t inner; /* elements per gathered slice */
    ops_math__copier c;
    bool i64;
    const void *idx;
} gather_job;

static inline int64_t gather_index(const gather_job *j, int64_t k) {
    return j->i64 ? ((const int64_t *)j->idx)[k] : (int64_t)((const int32_t *)j->idx)[k];
}

/*
 * Output rows [begin, end): row = (batch * outer + o) * n + i takes the slice at
 * indices[batch * n + i] of params' (batch, o) block.  The counters advance without a
 * division per row; COPY(dst_row, src_element) moves one row.
 */
#define GATHER_WALK(COPY)                                                                          \
    do {                                                                                           \
        int64_t i_ = begin % j->n, bo_ = begin / j->n, ib_ = bo_ / j->outer * j->n;                \
        for (int64_t row = begin; row < end; row++) {                                              \
            int64_t src = (bo_ * j->dim + gather_index(j, ib_ + i_)) * j->inner;                   \
            COPY(row, src);                                                                        \
            if (++i_ == j->n) {                                                                    \
                i_ = 0;                                                                            \
                bo_++;                                                                             \
                ib_ = bo_ / j->outer * j->n;                                                       \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define GATHER_ONE(type)                                                                           \
    do {                                                                                           \
        type *d_ = (type *)(void *)j->c.dst_data;                                                  \
        const type *s_ = (const type *)(const void *)j->c.src_data;                                \
        GATHER_WALK(GATHER_ONE_COPY_);                                                             \
    } while (0)
#define GATHER_ONE_COPY_(row, src) (d_[row] = s_[src])
#define GATHER_ROW_COPY_(row, src)                                                                 \
    memcpy(j->c.dst_data + (size_t)(row)*bytes, j->c.src_data + (size_t)(src)*es, bytes)

static void gather_rows(void *arg, int64_t begin, int64_t end) {
    const gather_job *j = arg;
    const size_t es = j->c.esize, bytes = (size_t)j->inner * es;

    if (j->inner == 1) {
        switch (es) {
        case 1:
            GATHER_ONE(uint8_t);
            return;
        case 2:
            GATHER_ONE(uint16_t);
            return;
        case 4:
            GATHER_ONE(uint32_t);
            return;
        case 8:
            GATHER_ONE(uint64_t);
            return;
        default:
            break;
        }
    }
    GATHER_WALK(GATHER_ROW_COPY_);
}

/* Source element of output row @row (the STRING path). */
static int64_t gather_src(const gather_job *j, int64_t row) {
    int64_t i = row % j->n, bo = row / j->n;
    return (bo * j->dim + gather_index(j, bo / j->outer * j->n + i)) * j->inner;
}

/* Checks every index against [0, dim); the error names its position in indices. */
static floe_status gather_check_indices(const gather_job *j) {
    int64_t count = floe_tensor_num_elements(j->indices);
    int r = floe_tensor_ndim(j->indices);

    for (int64_t k = 0; k < count; k++) {
        int64_t v = gather_index(j, k);
        if (v >= 0 && v < j->dim)
            continue;
        char pos[DIMS_BUF];
        int64_t coord[FLOE_MAX_DIMS], rest = k;
        for (int d = r - 1; d >= 0; d--) {
            int64_t e = floe_tensor_dim(j->indices, d);
            coord[d] = rest % e;
            rest /= e;
        }
        ops_math__format_dims(coord, r, pos, sizeof(pos));
        return floe_fail(FLOE_INVALID_ARGUMENT, "indices%s = %lld is not in [0, %lld)", pos,
                         (long long)v, (long long)j->dim);
    }
    return FLOE_OK;
}

/* ---- The op and kernel ---------------------------------------------------------------- */

static floe_status gather_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *params, *indices, *axis_t, *out;
    floe_shape ps, is, as, os;
    int64_t axis, bd_attr, count;
    int ax, bd;
    gather_job j;

    TRY(ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &params));
    TRY(ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &indices));
    TRY(ops_math__kernel_input(kc, 2, FLOE_DTYPE_INVALID, &axis_t));
    as = ops_math__shape_of(axis_t);
    TRY(gather_check_axis_rank(&as));
    TRY(ops_math__index_scalar(axis_t, "axis", &axis));
    TRY(gather_batch_dims(floe_kernel_attrs(kc), &bd_attr));
    if (floe_tensor_dtype(indices) != FLOE_DTYPE_I32 &&
        floe_tensor_dtype(indices) != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "indices must be int32 or int64, not %s",
                         floe_dtype_name(floe_tensor_dtype(indices)));
    ps = ops_math__shape_of(params);
    is = ops_math__shape_of(indices);
    TRY(gather_check(&ps, &is, axis, bd_attr, &ax, &bd, &os));
    TRY(ops_math__checked_count("GatherV2", os.dims, os.ndim, &count));

    memset(&j, 0, sizeof(j));
    j.indices = indices;
    j.idx = floe_tensor_data(indices);
    j.i64 = floe_tensor_dtype(indices) == FLOE_DTYPE_I64;
    j.dim = ps.dims[ax];
    TRY(gather_check_indices(&j));
    TRY(floe_kernel_alloc_output(kc, 0, os.dims, os.ndim, &out));
    if (count == 0)
        return FLOE_OK;

    /* The output is non-empty, so every extent below is > 0 and no product overflows. */
    j.outer = 1;
    j.n = 1;
    j.inner = 1;
    for (int i = bd; i < ax; i++)
        j.outer *= ps.dims[i];
    for (int i = bd; i < is.ndim; i++)
        j.n *= is.dims[i];
    for (int i = ax + 1; i < ps.ndim; i++)
        j.inner *= ps.dims[i];
    ops_math__copier_init(&j.c, out, params);
    int64_t rows = count / j.inner;
    if (j.c.strings) {
        for (int64_t row = 0; row < rows; row++)
            TRY(ops_math__copier_run(&j.c, row * j.inner, gather_src(&j, row), j.inner));
        return FLOE_OK;
    }
    ops_math__parallel(floe_kernel_threadpool(kc), rows,
                       OPS_MATH_COPY_GRAIN_BYTES / (j.inner * (int64_t)j.c.esize) + 1, gather_rows,
                       &j);
    return FLOE_OK;
}

/* ---- Registration -------------------------------------------------------------------- */

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})

static const floe_op_def gather_op = {
    sizeof(floe_op_def),
    "GatherV2",
    S("params: Tparams", "indices: Tindices", "axis: Taxis"),
    S("output: Tparams"),
    S("batch_dims: int = 0", "Tparams: type", "Tindices: {i32, i64}", "Taxis: {i32, i64}"),
    gather_shape_fn,
    0,
    "Gathers slices of params along axis at indices; an index out of range is an error."};

static const floe_kernel_def gather_kernel = {
    sizeof(floe_kernel_def), "GatherV2", "CPU",    S("Tparams: " OPS_MATH_ARRAY_TYPES), 0, NULL,
    gather_compute,          NULL,       S("axis")};

floe_status ops_math__register_gather(floe_plugin *self) {
    TRY(floe_register_op(self, &gather_op));
    return floe_register_kernel(self, &gather_kernel);
}
