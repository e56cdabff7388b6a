/*
 * bcast.c - index plans for the CUDA kernels, computed on the host (no CUDA call):
 * broadcasting of binary elementwise ops, reductions over a set of axes, transposes.
 * Each plan collapses adjacent dimensions that behave alike, so most launches index
 * in one or two dimensions.  Unit-tested in test_dev_cuda_host.
 */
#include "dev_cuda-impl.h"

#include <stdio.h>
#include <string.h>

static floe_status bad(char *err, size_t errlen, const char *msg, int a, int b) {
    if (errlen > 0)
        snprintf(err, errlen, msg, a, b);
    return FLOE_INVALID_ARGUMENT;
}

/* ---- Broadcasting -------------------------------------------------------------------- */

floe_status dev_cuda__bcast_plan(const int64_t *xd, int xn, const int64_t *yd, int yn,
                                 dev_cuda__bcast *out, char *err, size_t errlen) {
    int nd = xn > yn ? xn : yn;
    int64_t dims[DEV_CUDA__MAX_DIMS], xs[DEV_CUDA__MAX_DIMS], ys[DEV_CUDA__MAX_DIMS];
    int64_t xstr = 1, ystr = 1;
    bool has_zero = false;
    int k = 0;

    memset(out, 0, sizeof(*out));
    if (xn < 0 || yn < 0 || nd > DEV_CUDA__MAX_DIMS)
        return bad(err, errlen, "ranks %d and %d: at most 8 dimensions", xn, yn);
    out->n = 1;
    out->out_ndim = nd;
    /* Walk from the innermost dimension outwards. */
    for (int i = 0; i < nd; i++) {
        int64_t a = i < xn ? xd[xn - 1 - i] : 1, b = i < yn ? yd[yn - 1 - i] : 1, d;
        if (a != b && a != 1 && b != 1) { /* the CPU kernels' message */
            char xs_[200], ys_[200];
            dev_cuda__format_dims(xd, xn, xs_, sizeof(xs_));
            dev_cuda__format_dims(yd, yn, ys_, sizeof(ys_));
            if (errlen > 0)
                snprintf(err, errlen, "Incompatible shapes: %s vs. %s", xs_, ys_);
            return FLOE_INVALID_ARGUMENT;
        }
        d = a == 1 ? b : a;
        out->out_dims[nd - 1 - i] = d;
        has_zero = has_zero || d == 0;
        dims[i] = d;
    }
    /* No elements: nothing runs, and the products below could overflow (a zero extent
     * beside huge ones), so the plan stops at the output's shape. */
    if (has_zero) {
        out->n = 0;
        return FLOE_OK;
    }
    for (int i = 0; i < nd; i++) { /* every product is bounded by the output's count */
        int64_t a = i < xn ? xd[xn - 1 - i] : 1, b = i < yn ? yd[yn - 1 - i] : 1;
        xs[i] = a == 1 ? 0 : xstr;
        ys[i] = b == 1 ? 0 : ystr;
        xstr *= a;
        ystr *= b;
        out->n *= dims[i];
    }
    /* Collapse runs where x and y keep the same broadcast pattern (inner first). */
    for (int i = 0; i < nd; i++) {
        if (dims[i] == 1)
            continue;
        if (k > 0 && (xs[i] == 0) == (out->xstride[k - 1] == 0) &&
            (ys[i] == 0) == (out->ystride[k - 1] == 0) &&
            (xs[i] == 0 || xs[i] == out->xstride[k - 1] * out->dims[k - 1]) &&
            (ys[i] == 0 || ys[i] == out->ystride[k - 1] * out->dims[k - 1])) {
            out->dims[k - 1] *= dims[i];
            continue;
        }
        out->dims[k] = dims[i];
        out->xstride[k] = xs[i];
        out->ystride[k] = ys[i];
        k++;
    }
    /* Stored inner-first above; the kernels want outer-first. */
    for (int i = 0; i < k / 2; i++) {
        int j = k - 1 - i;
        int64_t t = out->dims[i]; out->dims[i] = out->dims[j]; out->dims[j] = t;
        t = out->xstride[i]; out->xstride[i] = out->xstride[j]; out->xstride[j] = t;
        t = out->ystride[i]; out->ystride[i] = out->ystride[j]; out->ystride[j] = t;
    }
    out->ndim = k;
    out->x_scalar = xstr == 1;
    out->y_scalar = ystr == 1;
    out->same = xstr == out->n && ystr == out->n && xn == yn;
    return FLOE_OK;
}

/* ---- Reductions ------------------------------------------------------------------------ */

/* A zero extent: the output's shape and counts only (no strides: their products could
 * overflow beside huge extents, and no element is read).  nred 0 leaves each output at
 * the reduction's initial value. */
static floe_status reduce_plan_empty(const int64_t *dims, int ndim, const bool *red,
                                     bool keep_dims, dev_cuda__reduce *out, char *err,
                                     size_t errlen) {
    bool out_zero = false;
    for (int i = 0; i < ndim; i++) {
        if (!red[i])
            out_zero = out_zero || dims[i] == 0;
        if (!red[i] || keep_dims)
            out->out_dims[out->out_ndim++] = red[i] ? 1 : dims[i];
    }
    out->nout = 0;
    out->nred = 0;
    if (!out_zero) { /* every output exists and reduces nothing */
        out->nout = 1;
        for (int i = 0; i < ndim; i++)
            if (!red[i] && __builtin_mul_overflow(out->nout, dims[i], &out->nout))
                return bad(err, errlen, "the reduction's output would have more than 2^63 "
                           "elements", 0, 0);
    }
    return FLOE_OK;
}

floe_status dev_cuda__reduce_plan(const int64_t *dims, int ndim, const int64_t *axes,
                                  int naxes, bool keep_dims, dev_cuda__reduce *out, char *err,
                                  size_t errlen) {
    bool red[DEV_CUDA__MAX_DIMS] = {false};
    int64_t stride[DEV_CUDA__MAX_DIMS], s = 1;

    memset(out, 0, sizeof(*out));
    if (ndim < 0 || ndim > DEV_CUDA__MAX_DIMS)
        return bad(err, errlen, "rank %d: at most %d dimensions", ndim, DEV_CUDA__MAX_DIMS);
    /* The CPU kernel's (TensorFlow's) checks and messages, ops_math/reduce.c. */
    for (int i = 0; i < naxes; i++) {
        int64_t a = axes[i];
        if (a < -ndim || a >= ndim || (ndim == 0 && a != 0 && a != -1))
            return bad(err, errlen, "Invalid reduction dimension %d for input with %d dimensions",
                       (int)a, ndim);
        if (ndim == 0)
            continue;
        if (red[a < 0 ? a + ndim : a])
            return bad(err, errlen, "Axes contains duplicate dimension: %d",
                       (int)(a < 0 ? a + ndim : a), 0);
        red[a < 0 ? a + ndim : a] = true;
    }
    for (int i = 0; i < ndim; i++)
        if (dims[i] == 0)
            return reduce_plan_empty(dims, ndim, red, keep_dims, out, err, errlen);
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= dims[i];
    }
    out->nout = 1;
    out->nred = 1;
    for (int i = 0; i < ndim; i++) {
        if (red[i]) {
            out->nred *= dims[i];
            if (keep_dims)
                out->out_dims[out->out_ndim++] = 1;
            if (dims[i] == 1)
                continue;
            /* merge with the previous reduced dim when contiguous */
            if (out->nred_dims > 0 &&
                out->red_stride[out->nred_dims - 1] == stride[i] * dims[i]) {
                out->red_dims[out->nred_dims - 1] *= dims[i];
                out->red_stride[out->nred_dims - 1] = stride[i];
            } else {
                out->red_dims[out->nred_dims] = dims[i];
                out->red_stride[out->nred_dims++] = stride[i];
            }
        } else {
            out->nout *= dims[i];
            out->out_dims[out->out_ndim++] = dims[i];
            if (dims[i] == 1)
                continue;
            if (out->nkeep > 0 && out->keep_stride[out->nkeep - 1] == stride[i] * dims[i]) {
                out->keep_dims[out->nkeep - 1] *= dims[i];
                out->keep_stride[out->nkeep - 1] = stride[i];
            } else {
                out->keep_dims[out->nkeep] = dims[i];
                out->keep_stride[out->nkeep++] = stride[i];
            }
        }
    }
    return FLOE_OK;
}

/* ---- Transpose ---------------------------------------------------------------------- */

floe_status dev_cuda__transpose_plan(const int64_t *dims, int ndim, const int64_t *perm,
                                     int nperm, dev_cuda__transpose *out, char *err,
                                     size_t errlen) {
    int64_t stride[DEV_CUDA__MAX_DIMS], s = 1;
    bool seen[DEV_CUDA__MAX_DIMS] = {false};

    memset(out, 0, sizeof(*out));
    if (ndim < 0 || ndim > DEV_CUDA__MAX_DIMS || nperm != ndim)
        return bad(err, errlen,
                   "transpose expects a vector of size %d. But input(1) is a vector of size %d",
                   ndim, nperm);
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= dims[i];
    }
    out->ndim = ndim;
    out->n = s;
    for (int i = 0; i < ndim; i++) {
        int64_t p = perm[i];
        /* the CPU kernel's messages (ops_math/array.c) */
        if (p < 0 || p >= ndim) {
            if (errlen > 0)
                snprintf(err, errlen, "perm[%d] = %lld is out of range [0 .. %d)", i,
                         (long long)p, ndim);
            return FLOE_INVALID_ARGUMENT;
        }
        if (seen[p]) {
            if (errlen > 0)
                snprintf(err, errlen,
                         "perm[%d] = %lld is a duplicate: perm must be a permutation of 0..%d",
                         i, (long long)p, ndim - 1);
            return FLOE_INVALID_ARGUMENT;
        }
        seen[p] = true;
        out->out_dims[i] = dims[p];
        out->in_stride[i] = stride[p];
    }
    return FLOE_OK;
}
