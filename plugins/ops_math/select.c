/*
 * select.c - TensorFlow's SelectV2 on CPU: out = condition ? t : e, elementwise, with
 * numpy broadcasting across all three inputs.
 *
 * Values are only moved, never interpreted, so one loop per element size (1, 2, 4 or 8
 * bytes) serves every fixed-size dtype.  A row of the broadcast walk
 * (ops_math__bcast_run) has each input stepping by one element or repeating one; the
 * common case, all three stepping, is a plain vectorisable loop.  The output may be
 * t's or e's buffer (in place, when that input has the output's shape and is not shared).
 */
#include "ops_math-impl.h"

#include <stdint.h>

/* ---- Rows --------------------------------------------------------------------------- */

typedef struct sel_args {
    char *o;
    const uint8_t *c;
    const char *t, *e;
    size_t esize;
} sel_args;

#define SEL_ROW(BITS)                                                                  \
    static void sel_row_##BITS(uint##BITS##_t *o, const uint8_t *c,                     \
                               const uint##BITS##_t *t, const uint##BITS##_t *e,       \
                               const int *step, int64_t n) {                           \
        if (step[0] && step[1] && step[2]) {                                           \
            OPS_MATH_IVDEP                                                             \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = c[i] ? t[i] : e[i];                                             \
        } else if (!step[0]) {                                                         \
            const uint##BITS##_t *src = c[0] ? t : e;                                  \
            const int s = c[0] ? step[1] : step[2];                                    \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = src[i * s];                                                     \
        } else {                                                                       \
            const int64_t st = step[1], se = step[2];                                  \
            for (int64_t i = 0; i < n; i++)                                            \
                o[i] = c[i] ? t[i * st] : e[i * se];                                   \
        }                                                                              \
    }
SEL_ROW(8)
SEL_ROW(16)
SEL_ROW(32)
SEL_ROW(64)

static void sel_row(void *arg, int64_t out_off, const int64_t *in_off, const int *step,
                    int64_t n) {
    const sel_args *a = arg;
    const size_t es = a->esize;
    void *o = a->o + (size_t)out_off * es;
    const uint8_t *c = a->c + in_off[0];
    const void *t = a->t + (size_t)in_off[1] * es, *e = a->e + (size_t)in_off[2] * es;
    int s[3] = {step[0], step[1], step[2]};

    switch (es) {
    case 1: sel_row_8(o, c, t, e, s, n); break;
    case 2: sel_row_16(o, c, t, e, s, n); break;
    case 4: sel_row_32(o, c, t, e, s, n); break;
    default: sel_row_64(o, c, t, e, s, n); break;
    }
}

/* ---- Kernel ------------------------------------------------------------------------- */

static floe_status select_compute(floe_kernel_ctx *kc, void *state) {
    floe_tensor *in[3], *out = NULL;
    ops_math__bcast bc;
    floe_status st;

    if ((st = ops_math__kernel_input(kc, 0, FLOE_DTYPE_BOOL, &in[0])) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &in[1])) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 2, FLOE_DTYPE_INVALID, &in[2])) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(in[1]);
    if (floe_tensor_dtype(in[2]) != dt)
        return floe_fail(FLOE_INVALID_ARGUMENT, "SelectV2: t is %s but e is %s",
                         floe_dtype_name(dt), floe_dtype_name(floe_tensor_dtype(in[2])));
    size_t es = floe_dtype_size(dt);
    if (dt == FLOE_DTYPE_STRING || dt == FLOE_DTYPE_RESOURCE ||
        (es != 1 && es != 2 && es != 4 && es != 8))
        return floe_fail(FLOE_UNIMPLEMENTED, "SelectV2: no CPU kernel for dtype %s",
                         floe_dtype_name(dt));
    if ((st = ops_math__bcast_init(&bc, "SelectV2", in, 3)) != FLOE_OK)
        return st;
    if (bc.same[1])
        st = floe_kernel_forward_or_alloc(kc, 1, 0, bc.out_shape, bc.out_ndim, &out);
    else if (bc.same[2])
        st = floe_kernel_forward_or_alloc(kc, 2, 0, bc.out_shape, bc.out_ndim, &out);
    else
        st = floe_kernel_alloc_output(kc, 0, bc.out_shape, bc.out_ndim, &out);
    if (st != FLOE_OK)
        return st;
    if (bc.n == 0)
        return FLOE_OK;
    sel_args a = {floe_tensor_data(out), floe_tensor_data(in[0]), floe_tensor_data(in[1]),
                  floe_tensor_data(in[2]), es};
    if (a.o == NULL || floe_tensor_dtype(out) != dt)
        return floe_fail(FLOE_INTERNAL, "SelectV2: output is not a host %s tensor",
                         floe_dtype_name(dt));
    ops_math__bcast_run(floe_kernel_threadpool(kc), &bc, OPS_MATH_GRAIN, sel_row, &a);
    return FLOE_OK;
}

/* ---- Op definition ---------------------------------------------------------------- */

static const char *const sel_inputs[] = {"condition: bool", "t: T", "e: T", NULL};
static const char *const sel_outputs[] = {"output: T", NULL};
static const char *const sel_attrs[] = {"T: type", NULL};
/* Any fixed-size value type: the kernel only moves bytes. */
static const char *const sel_ks[] = {
    "T: {bf16, f16, f32, f64, u8, u16, u32, u64, i8, i16, i32, i64, bool, complex64}", NULL};

static const floe_op_def select_op = {
    sizeof(floe_op_def), "SelectV2", sel_inputs, sel_outputs, sel_attrs,
    ops_math__broadcast_shape_fn, 0,
    "condition ? t : e elementwise, broadcasting condition, t and e together."};

static const floe_kernel_def select_kernel = {
    sizeof(floe_kernel_def), "SelectV2", "CPU", sel_ks, 0, NULL, select_compute, NULL, NULL};

floe_status ops_math__register_select(floe_plugin *self) {
    floe_status st = floe_register_op(self, &select_op);
    if (st != FLOE_OK)
        return st;
    return floe_register_kernel(self, &select_kernel);
}
