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

#endif /* FLOE_OPS_MATH_IMPL_H */
