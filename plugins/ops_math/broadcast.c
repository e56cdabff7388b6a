/*
 * broadcast.c - numpy broadcasting for the ops_math plugin: shapes, shape inference and
 * the iteration scheme shared by every broadcasting kernel (elementwise.c, select.c).
 *
 * Sections: formatting; broadcasting concrete shapes and collapsing dims
 * (ops_math__bcast_init); walking a broadcast output in rows, split across the thread
 * pool for large outputs (ops_math__bcast_run); shape functions; kernel input checks.
 *
 * The walk hands each kernel whole rows of the innermost collapsed dim, in which every
 * input either advances element by element or repeats one element.  The fast paths
 * fall out of the collapsing: equal shapes collapse to one dim (one row per chunk), a
 * scalar operand is a step-0 input of that one row, a row vector [N] against [M,N] is
 * M rows re-reading the vector, a column [M,1] against [M,N] is M rows with a step-0
 * operand, and everything else is a strided N-d walk over the collapsed dims.
 */
#include "ops_math-impl.h"

#include <stdio.h>

/* ---- Formatting ------------------------------------------------------------------ */

void ops_math__format_dims(const int64_t *dims, int ndim, char *buf, size_t len) {
    size_t used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (ndim < 0) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    used += (size_t)snprintf(buf + used, len - used, "[");
    for (int i = 0; i < ndim && used < len; i++) {
        if (dims[i] < 0)
            used += (size_t)snprintf(buf + used, len - used, "%s?", i ? "," : "");
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                     (long long)dims[i]);
    }
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* "[2,3] vs. [4]" (or three shapes) for error messages. */
static void format_shapes(const int64_t dims[][FLOE_MAX_DIMS], const int *ndims, int n,
                          char *buf, size_t len) {
    size_t used = 0;

    buf[0] = '\0';
    for (int k = 0; k < n && used + 1 < len; k++) {
        char one[8 * 24 + 4];
        ops_math__format_dims(dims[k], ndims[k], one, sizeof(one));
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? " vs. " : "", one);
    }
}

/* ---- Broadcasting concrete shapes ------------------------------------------------- */

/* Collapses the broadcast of @pad (inputs' shapes left-padded with 1 to @bc->out_ndim)
 * into bc->dims/strides: drops extent-1 dims, merges neighbours with the same
 * full-or-broadcast pattern for every input, then lays out element strides. */
static void bcast_collapse(ops_math__bcast *bc, const int64_t pad[][FLOE_MAX_DIMS]) {
    bool full[FLOE_MAX_DIMS][OPS_MATH_BCAST_MAX_IN];
    int nd = 0;

    if (bc->n == 0) {  /* nothing is walked; keep the collapsed view trivially valid */
        bc->ndim = 1;
        bc->dims[0] = 0;
        return;
    }
    for (int d = 0; d < bc->out_ndim; d++) {
        int64_t extent = bc->out_shape[d];
        if (extent == 1)
            continue;
        bool f[OPS_MATH_BCAST_MAX_IN] = {false, false, false};
        for (int k = 0; k < bc->nin; k++)
            f[k] = pad[k][d] == extent;
        bool mergeable = nd > 0;
        for (int k = 0; k < bc->nin && mergeable; k++)
            mergeable = full[nd - 1][k] == f[k];
        if (mergeable) {
            bc->dims[nd - 1] *= extent;  /* cannot overflow: divides bc->n */
        } else {
            bc->dims[nd] = extent;
            memcpy(full[nd], f, sizeof(f));
            nd++;
        }
    }
    if (nd == 0) {  /* one element (every extent 1): a single row of length 1 */
        bc->dims[0] = 1;
        for (int k = 0; k < bc->nin; k++)
            full[0][k] = true;
        nd = 1;
    }
    bc->ndim = nd;
    for (int k = 0; k < bc->nin; k++) {
        int64_t running = 1;
        for (int j = nd - 1; j >= 0; j--) {
            bc->strides[k][j] = full[j][k] ? running : 0;
            if (full[j][k])
                running *= bc->dims[j];
        }
    }
}

floe_status ops_math__bcast_init(ops_math__bcast *bc, const char *op, floe_tensor *const *in,
                                 int nin) {
    int64_t pad[OPS_MATH_BCAST_MAX_IN][FLOE_MAX_DIMS];
    int64_t orig[OPS_MATH_BCAST_MAX_IN][FLOE_MAX_DIMS];
    int ndims[OPS_MATH_BCAST_MAX_IN];
    char shapes[3 * (8 * 24 + 8)];

    bc->nin = nin;
    bc->out_ndim = 0;
    if (nin < 1 || nin > OPS_MATH_BCAST_MAX_IN)
        return floe_fail(FLOE_INTERNAL, "%s: cannot broadcast %d inputs", op, nin);
    bool all_same = true;
    for (int k = 0; k < nin; k++) {
        int r = floe_tensor_ndim(in[k]);
        const int64_t *dims = floe_tensor_shape(in[k]);
        if (r < 0 || r > FLOE_MAX_DIMS || (r > 0 && dims == NULL))
            return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input %d has bad rank %d", op, k, r);
        ndims[k] = r;
        if (r > 0)
            memcpy(orig[k], dims, (size_t)r * sizeof(int64_t));
        if (r > bc->out_ndim)
            bc->out_ndim = r;
        all_same = all_same && r == ndims[0] &&
                   (r == 0 || memcmp(orig[k], orig[0], (size_t)r * sizeof(int64_t)) == 0);
    }
    if (all_same) {
        /* the common case: one flat row, every input stepping along */
        memcpy(bc->out_shape, orig[0], (size_t)bc->out_ndim * sizeof(int64_t));
        bc->n = floe_tensor_num_elements(in[0]);
        bc->ndim = 1;
        bc->dims[0] = bc->n;
        for (int k = 0; k < nin; k++) {
            bc->strides[k][0] = 1;
            bc->same[k] = true;
        }
        return FLOE_OK;
    }
    for (int k = 0; k < nin; k++) {
        int lead = bc->out_ndim - ndims[k];
        for (int d = 0; d < bc->out_ndim; d++)
            pad[k][d] = d < lead ? 1 : orig[k][d - lead];
    }
    bool has_zero = false;
    for (int d = 0; d < bc->out_ndim; d++) {
        int64_t extent = 1;
        for (int k = 0; k < nin; k++) {
            int64_t v = pad[k][d];
            if (v == 1 || v == extent)
                continue;
            if (extent != 1) {
                format_shapes((const int64_t(*)[FLOE_MAX_DIMS])orig, ndims, nin, shapes,
                              sizeof(shapes));
                return floe_fail(FLOE_INVALID_ARGUMENT, "%s: Incompatible shapes: %s", op,
                                 shapes);
            }
            extent = v;
        }
        bc->out_shape[d] = extent;
        has_zero = has_zero || extent == 0;
    }
    /* Counted as the core counts tensors: any 0 extent makes it empty, whatever the
     * others; otherwise the product must fit int64. */
    bc->n = has_zero ? 0 : 1;
    for (int d = 0; d < bc->out_ndim && !has_zero; d++) {
        if (__builtin_mul_overflow(bc->n, bc->out_shape[d], &bc->n)) {
            format_shapes((const int64_t(*)[FLOE_MAX_DIMS])orig, ndims, nin, shapes,
                          sizeof(shapes));
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: broadcasting %s overflows the element count", op, shapes);
        }
    }
    for (int k = 0; k < nin; k++) {
        bc->same[k] = ndims[k] == bc->out_ndim;
        for (int d = 0; d < bc->out_ndim && bc->same[k]; d++)
            bc->same[k] = pad[k][d] == bc->out_shape[d];
    }
    bcast_collapse(bc, (const int64_t(*)[FLOE_MAX_DIMS])pad);
    return FLOE_OK;
}

/* ---- Walking a broadcast output ------------------------------------------------- */

typedef struct bcast_walk {
    const ops_math__bcast *bc;
    ops_math__bcast_row_fn fn;
    void *arg;
} bcast_walk;

/* Walks output elements [begin, end) row by row (a chunk may start or end mid-row). */
static void bcast_walk_range(void *arg, int64_t begin, int64_t end) {
    const bcast_walk *w = arg;
    const ops_math__bcast *bc = w->bc;
    const int nd = bc->ndim, last = nd - 1, nin = bc->nin;
    const int64_t row_len = bc->dims[last];
    int64_t idx[FLOE_MAX_DIMS] = {0};
    int64_t base[OPS_MATH_BCAST_MAX_IN] = {0, 0, 0};
    int64_t off[OPS_MATH_BCAST_MAX_IN];
    int step[OPS_MATH_BCAST_MAX_IN] = {0, 0, 0};
    int64_t inner = begin % row_len, rest = begin / row_len;

    for (int j = last - 1; j >= 0; j--) {
        idx[j] = rest % bc->dims[j];
        rest /= bc->dims[j];
        for (int k = 0; k < nin; k++)
            base[k] += idx[j] * bc->strides[k][j];
    }
    for (int k = 0; k < nin; k++)
        step[k] = bc->strides[k][last] != 0;

    int64_t pos = begin;
    while (pos < end) {
        int64_t len = row_len - inner;
        if (len > end - pos)
            len = end - pos;
        for (int k = 0; k < nin; k++)
            off[k] = base[k] + inner * step[k];
        w->fn(w->arg, pos, off, step, len);
        pos += len;
        inner = 0;
        /* advance the odometer over the outer dims */
        for (int j = last - 1; j >= 0; j--) {
            for (int k = 0; k < nin; k++)
                base[k] += bc->strides[k][j];
            if (++idx[j] < bc->dims[j])
                break;
            for (int k = 0; k < nin; k++)
                base[k] -= bc->strides[k][j] * bc->dims[j];
            idx[j] = 0;
        }
    }
}

void ops_math__parallel(floe_threadpool *pool, int64_t n, int64_t grain,
                        void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (pool == NULL || n <= grain)
        fn(arg, 0, n);
    else
        floe_parallel_for(pool, n, grain, fn, arg);
}

void ops_math__bcast_run(floe_threadpool *pool, const ops_math__bcast *bc, int64_t grain,
                         ops_math__bcast_row_fn fn, void *arg) {
    bcast_walk w = {bc, fn, arg};
    ops_math__parallel(pool, bc->n, grain, bcast_walk_range, &w);
}

/* ---- Shape functions ------------------------------------------------------------ */

/* Broadcasts partially known @b into @acc (both of known rank); -1 extents are
 * unknown.  An unknown extent against a known one other than 1 takes the known one
 * (it must be 1 or equal); against 1 it stays unknown. */
static bool broadcast_partial(floe_shape *acc, const floe_shape *b) {
    floe_shape r;
    memset(&r, 0, sizeof(r));
    r.ndim = acc->ndim > b->ndim ? acc->ndim : b->ndim;
    for (int d = 0; d < r.ndim; d++) {
        int ia = d - (r.ndim - acc->ndim), ib = d - (r.ndim - b->ndim);
        int64_t x = ia >= 0 ? acc->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
        if (x < 0 && y < 0)
            r.dims[d] = -1;
        else if (x < 0)
            r.dims[d] = y == 1 ? -1 : y;
        else if (y < 0)
            r.dims[d] = x == 1 ? -1 : x;
        else if (x == y || y == 1)
            r.dims[d] = x;
        else if (x == 1)
            r.dims[d] = y;
        else
            return false;
    }
    *acc = r;
    return true;
}

floe_status ops_math__broadcast_shape_fn(floe_shape_ctx *sc) {
    int nin = floe_shape_num_inputs(sc);
    floe_shape acc;

    memset(&acc, 0, sizeof(acc));
    acc.ndim = 0;
    for (int k = 0; k < nin; k++) {
        floe_shape s = floe_shape_input(sc, k);
        if (s.ndim < 0 || s.ndim > FLOE_MAX_DIMS) {
            acc.ndim = -1;
            break;
        }
        floe_shape before = acc;
        if (!broadcast_partial(&acc, &s)) {
            char a[8 * 24 + 4], b[8 * 24 + 4];
            ops_math__format_dims(before.dims, before.ndim, a, sizeof(a));
            ops_math__format_dims(s.dims, s.ndim, b, sizeof(b));
            return floe_fail(FLOE_INVALID_ARGUMENT, "Incompatible shapes: %s vs. %s", a, b);
        }
    }
    return floe_shape_set_output(sc, 0, &acc);
}

floe_status ops_math__unchanged_shape_fn(floe_shape_ctx *sc) {
    floe_shape s = floe_shape_input(sc, 0);
    return floe_shape_set_output(sc, 0, &s);
}

/* ---- Kernel input checks -------------------------------------------------------- */

floe_status ops_math__kernel_input(floe_kernel_ctx *kc, int i, floe_dtype dt,
                                   floe_tensor **out) {
    floe_tensor *t = floe_kernel_input(kc, i);

    *out = NULL;
    if (t == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d is missing", i);
    if (dt != FLOE_DTYPE_INVALID && floe_tensor_dtype(t) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d has dtype %s, expected %s", i,
                         floe_dtype_name(floe_tensor_dtype(t)), floe_dtype_name(dt));
    if (floe_tensor_num_elements(t) > 0 && floe_tensor_data(t) == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "input %d is not in host memory", i);
    *out = t;
    return FLOE_OK;
}
