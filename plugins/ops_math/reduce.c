/*
 * reduce.c - TensorFlow's reductions on CPU: Sum, Mean, Max, Min, Prod (input,
 * reduction_indices, keep_dims) and ArgMax, ArgMin (input, dimension, output_type).
 *
 * Sections: reading and checking axes; shape functions; accumulating rows and column
 * blocks (generated per op and dtype); one reduction pass over an [O, R, I] view, split
 * across the thread pool; the Sum/Mean/Max/Min/Prod kernel; ArgMax/ArgMin; op
 * definitions and registration.
 *
 * How a reduction runs: the input's dims of extent 1 are dropped and neighbours that
 * are all reduced or all kept are merged, leaving alternating groups such as [K, R, K].
 * One pass reduces the innermost reduced group R of a view [O, R, I] (O and I the
 * products of the groups outside and inside it) into an accumulator buffer [O, I];
 * several reduced groups take one pass each.  A pass splits its output across threads
 * (rows of R when I == 1, blocks of columns otherwise) or, when the output is too small
 * to split, splits R and combines per-thread partial results.
 *
 * Accumulators: floats accumulate in double (so f32 sums are accurate to about 1e-16
 * relative per element) with sums of long rows taken pairwise, except f32 Max/Min,
 * which are exact in float and run at twice the vector width; integers in int64 with
 * wrap-around, so Sum and Prod give TensorFlow's wrapped results in T, and Mean of
 * integers divides the 64-bit sum by the count, truncating (TensorFlow's MeanReducer
 * does the same).  Max/Min propagate NaN.  An empty reduction gives the identity: 0
 * (Sum), 1 (Prod), -inf / the lowest integer (Max), +inf / the highest (Min), NaN for
 * the Mean of floats and 0 for the Mean of integers (TensorFlow divides by zero).
 * ArgMax/ArgMin return the first index of the extreme value; a NaN counts as the
 * extreme (the first NaN wins); an empty reduction axis is an error.
 */
#include "ops_math-impl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* ---- Axes ------------------------------------------------------------------------ */

/* Reads the axes tensor @axes (i32 or i64, rank 0 or 1) against @rank into @reduce
 * (one flag per dim); rejects out-of-range and duplicate axes. */
static floe_status read_axes(const char *op, const floe_tensor *axes, int rank,
                             bool reduce[FLOE_MAX_DIMS]) {
    floe_dtype dt = floe_tensor_dtype(axes);
    int64_t n = floe_tensor_num_elements(axes);
    const void *p = floe_tensor_data(axes);

    memset(reduce, 0, FLOE_MAX_DIMS * sizeof(bool));
    if (dt != FLOE_DTYPE_I32 && dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: reduction indices must be i32 or i64, "
                         "not %s", op, floe_dtype_name(dt));
    if (floe_tensor_ndim(axes) > 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: reduction indices must be 0-D or 1-D, "
                         "got rank %d", op, floe_tensor_ndim(axes));
    if (n > 0 && p == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: reduction indices are not in host memory",
                         op);
    for (int64_t i = 0; i < n; i++) {
        int64_t a = dt == FLOE_DTYPE_I32 ? ((const int32_t *)p)[i] : ((const int64_t *)p)[i];
        if (a < -(int64_t)rank || a >= rank)
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: Invalid reduction dimension %lld for input with %d "
                             "dimensions", op, (long long)a, rank);
        int d = (int)(a < 0 ? a + rank : a);
        if (reduce[d])
            return floe_fail(FLOE_INVALID_ARGUMENT,
                             "%s: Axes contains duplicate dimension: %d", op, d);
        reduce[d] = true;
    }
    return FLOE_OK;
}

/* Reads the scalar axis of ArgMax/ArgMin (i32 or i64, one element) into *@axis. */
static floe_status read_arg_axis(const char *op, const floe_tensor *t, int rank, int *axis) {
    floe_dtype dt = floe_tensor_dtype(t);
    const void *p = floe_tensor_data(t);

    *axis = 0;
    if (dt != FLOE_DTYPE_I32 && dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: dimension must be i32 or i64, not %s", op,
                         floe_dtype_name(dt));
    if (floe_tensor_num_elements(t) != 1 || floe_tensor_ndim(t) > 1 || p == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: dimension must be a scalar", op);
    int64_t a = dt == FLOE_DTYPE_I32 ? *(const int32_t *)p : *(const int64_t *)p;
    if (a < -(int64_t)rank || a >= rank)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: Expected dimension in the range [%d, %d), but got %lld", op, -rank,
                         rank, (long long)a);
    *axis = (int)(a < 0 ? a + rank : a);
    return FLOE_OK;
}

/* Reads a bool attr that has a default (absent: @dflt). */
static floe_status bool_attr(const floe_attrs *a, const char *name, int dflt, int *v) {
    *v = dflt;
    if (a == NULL || floe_attrs_type(a, name) != FLOE_ATTR_BOOL)
        return FLOE_OK;
    return floe_attrs_get_bool(a, name, v);
}

/* ---- Shape functions -------------------------------------------------------------- */

static floe_status reduce_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out;
    floe_tensor *axes = floe_shape_input_value(sc, 1);
    bool reduce[FLOE_MAX_DIMS];
    int keep;
    floe_status st = bool_attr(floe_shape_attrs(sc), "keep_dims", 0, &keep);

    if (st != FLOE_OK)
        return st;
    memset(&out, 0, sizeof(out));
    out.ndim = -1;
    if (in.ndim < 0 || in.ndim > FLOE_MAX_DIMS)
        return floe_shape_set_output(sc, 0, &out);
    if (axes == NULL) {
        /* keep_dims keeps the rank; which dims become 1 is not known yet */
        if (keep) {
            out.ndim = in.ndim;
            for (int d = 0; d < in.ndim; d++)
                out.dims[d] = -1;
        }
        return floe_shape_set_output(sc, 0, &out);
    }
    if ((st = read_axes(floe_shape_node_name(sc), axes, in.ndim, reduce)) != FLOE_OK)
        return st;
    out.ndim = 0;
    for (int d = 0; d < in.ndim; d++) {
        if (!reduce[d])
            out.dims[out.ndim++] = in.dims[d];
        else if (keep)
            out.dims[out.ndim++] = 1;
    }
    return floe_shape_set_output(sc, 0, &out);
}

static floe_status arg_shape_fn(floe_shape_ctx *sc) {
    floe_shape in = floe_shape_input(sc, 0), out;
    floe_tensor *dim = floe_shape_input_value(sc, 1);
    int axis;

    memset(&out, 0, sizeof(out));
    out.ndim = -1;
    if (in.ndim < 0 || in.ndim > FLOE_MAX_DIMS)
        return floe_shape_set_output(sc, 0, &out);
    if (in.ndim == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input must be at least 1-D",
                         floe_shape_node_name(sc));
    out.ndim = in.ndim - 1;
    if (dim == NULL) {
        for (int d = 0; d < out.ndim; d++)
            out.dims[d] = -1;
        return floe_shape_set_output(sc, 0, &out);
    }
    floe_status st = read_arg_axis(floe_shape_node_name(sc), dim, in.ndim, &axis);
    if (st != FLOE_OK)
        return st;
    if (in.dims[axis] == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: Reduction axis %d is empty",
                         floe_shape_node_name(sc), axis);
    for (int d = 0, j = 0; d < in.ndim; d++)
        if (d != axis)
            out.dims[j++] = in.dims[d];
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- Accumulating rows and column blocks ------------------------------------------ */

/* An accumulator value: double for float inputs, int64 for integer inputs. */
typedef union red_acc {
    double f;
    int64_t i;
    float s;     /* f32 Max/Min: exact in float, so twice the vector width */
} red_acc;

/* Combines accumulator @a with element @x. */
#define COMB_sum_F(a, x) ((a) + (x))
#define COMB_prod_F(a, x) ((a) * (x))
#define COMB_max_F(a, x) (((x) > (a) || (x) != (x)) ? (x) : (a))
#define COMB_min_F(a, x) (((x) < (a) || (x) != (x)) ? (x) : (a))
#define COMB_sum_I(a, x) ((int64_t)((uint64_t)(a) + (uint64_t)(x)))
#define COMB_prod_I(a, x) ((int64_t)((uint64_t)(a) * (uint64_t)(x)))
#define COMB_max_I(a, x) ((x) > (a) ? (x) : (a))
#define COMB_min_I(a, x) ((x) < (a) ? (x) : (a))
#define COMB_max_S COMB_max_F
#define COMB_min_S COMB_min_F

#define ACC_F double
#define ACC_I int64_t
#define ACC_S float
#define ACCF_F f
#define ACCF_I i
#define ACCF_S s

/* Columns per block when I > 1: the block's accumulators stay in L1. */
#define RED_COL_BLOCK 2048
/* Rows shorter than this are summed directly; longer ones pairwise. */
#define RED_PAIRWISE_BASE 1024

/* red_<op>_<sfx>: reduces rows r0..r1 of [O, R, I] input @in at outer index @o,
 * columns i0..i1, into @dst (i1 - i0 accumulators), starting from the identity. */
typedef void (*red_block_fn)(const void *in, int64_t R, int64_t I, int64_t o, int64_t i0,
                             int64_t i1, int64_t r0, int64_t r1, void *dst, red_acc ident);

#define RED_FUNCS(OP, SFX, T, K)                                                       \
    static ACC_##K red_row_##OP##_##SFX(const T *restrict x, int64_t n, ACC_##K id) {  \
        ACC_##K acc[8] = {id, id, id, id, id, id, id, id};                             \
        int64_t i = 0;                                                                 \
        for (; i + 8 <= n; i += 8)                                                     \
            for (int l = 0; l < 8; l++) {                                              \
                ACC_##K v = (ACC_##K)x[i + l];                                         \
                acc[l] = COMB_##OP##_##K(acc[l], v);                                   \
            }                                                                          \
        for (; i < n; i++) {                                                           \
            ACC_##K v = (ACC_##K)x[i];                                                 \
            acc[0] = COMB_##OP##_##K(acc[0], v);                                       \
        }                                                                              \
        ACC_##K r = acc[0];                                                            \
        for (int l = 1; l < 8; l++)                                                    \
            r = COMB_##OP##_##K(r, acc[l]);                                            \
        return r;                                                                      \
    }                                                                                  \
    static void red_##OP##_##SFX(const void *in_, int64_t R, int64_t I, int64_t o,      \
                                 int64_t i0, int64_t i1, int64_t r0, int64_t r1,       \
                                 void *dst_, red_acc ident) {                          \
        const T *in = in_;                                                             \
        ACC_##K *restrict dst = dst_;                                                  \
        const ACC_##K id = ident.ACCF_##K;                                             \
        if (I == 1) {                                                                  \
            *dst = red_rowpw_##OP##_##SFX(in + o * R + r0, r1 - r0, id);               \
            return;                                                                    \
        }                                                                              \
        const int64_t w = i1 - i0;                                                     \
        for (int64_t i = 0; i < w; i++)                                                \
            dst[i] = id;                                                               \
        for (int64_t r = r0; r < r1; r++) {                                            \
            const T *restrict row = in + (o * R + r) * I + i0;                         \
            for (int64_t i = 0; i < w; i++) {                                          \
                ACC_##K v = (ACC_##K)row[i];                                           \
                dst[i] = COMB_##OP##_##K(dst[i], v);                                   \
            }                                                                          \
        }                                                                              \
    }

/* Row reductions other than float sums need no pairwise split. */
#define RED_ROWPW_PLAIN(OP, SFX, T, K)                                                 \
    static inline ACC_##K red_rowpw_##OP##_##SFX(const T *x, int64_t n, ACC_##K id) {  \
        return red_row_##OP##_##SFX(x, n, id);                                         \
    }
/* Float sums of long rows: pairwise, so the rounding error grows with log n. */
#define RED_ROWPW_PAIRWISE(SFX, T)                                                     \
    static double red_rowpw_sum_##SFX(const T *x, int64_t n, double id) {              \
        if (n <= RED_PAIRWISE_BASE)                                                    \
            return red_row_sum_##SFX(x, n, id);                                        \
        int64_t h = (n / 2) & ~(int64_t)7;                                             \
        return red_rowpw_sum_##SFX(x, h, id) + red_rowpw_sum_##SFX(x + h, n - h, 0.0); \
    }

#define RED_FLOAT_TYPE(SFX, T)                                                         \
    static double red_rowpw_sum_##SFX(const T *x, int64_t n, double id);               \
    RED_FUNCS(sum, SFX, T, F)                                                          \
    RED_ROWPW_PAIRWISE(SFX, T)                                                         \
    static inline double red_rowpw_prod_##SFX(const T *x, int64_t n, double id);       \
    static inline double red_rowpw_max_##SFX(const T *x, int64_t n, double id);        \
    static inline double red_rowpw_min_##SFX(const T *x, int64_t n, double id);        \
    RED_FUNCS(prod, SFX, T, F)                                                         \
    RED_FUNCS(max, SFX, T, F)                                                          \
    RED_FUNCS(min, SFX, T, F)                                                          \
    RED_ROWPW_PLAIN(prod, SFX, T, F)                                                   \
    RED_ROWPW_PLAIN(max, SFX, T, F)                                                    \
    RED_ROWPW_PLAIN(min, SFX, T, F)

#define RED_INT_TYPE(SFX, T)                                                           \
    static inline int64_t red_rowpw_sum_##SFX(const T *x, int64_t n, int64_t id);      \
    static inline int64_t red_rowpw_prod_##SFX(const T *x, int64_t n, int64_t id);     \
    static inline int64_t red_rowpw_max_##SFX(const T *x, int64_t n, int64_t id);      \
    static inline int64_t red_rowpw_min_##SFX(const T *x, int64_t n, int64_t id);      \
    RED_FUNCS(sum, SFX, T, I)                                                          \
    RED_FUNCS(prod, SFX, T, I)                                                         \
    RED_FUNCS(max, SFX, T, I)                                                          \
    RED_FUNCS(min, SFX, T, I)                                                          \
    RED_ROWPW_PLAIN(sum, SFX, T, I)                                                    \
    RED_ROWPW_PLAIN(prod, SFX, T, I)                                                   \
    RED_ROWPW_PLAIN(max, SFX, T, I)                                                    \
    RED_ROWPW_PLAIN(min, SFX, T, I)

RED_FLOAT_TYPE(f32, float)
RED_FLOAT_TYPE(f64, double)
RED_INT_TYPE(i8, int8_t)
RED_INT_TYPE(i16, int16_t)
RED_INT_TYPE(i32, int32_t)
RED_INT_TYPE(i64, int64_t)
RED_INT_TYPE(u8, uint8_t)
/* f32 Max/Min with float accumulators ("f32s") */
static inline float red_rowpw_max_f32s(const float *x, int64_t n, float id);
static inline float red_rowpw_min_f32s(const float *x, int64_t n, float id);
RED_FUNCS(max, f32s, float, S)
RED_FUNCS(min, f32s, float, S)
RED_ROWPW_PLAIN(max, f32s, float, S)
RED_ROWPW_PLAIN(min, f32s, float, S)

/* Folds @P partial accumulator arrays of @M into @dst. */
typedef void (*red_merge_fn)(void *dst, const void *parts, int64_t P, int64_t M);

#define RED_MERGE(OP, K)                                                               \
    static void merge_##OP##_##K(void *dst_, const void *parts_, int64_t P, int64_t M) { \
        ACC_##K *restrict dst = dst_;                                                  \
        const ACC_##K *restrict parts = parts_;                                        \
        for (int64_t m = 0; m < M; m++)                                                \
            dst[m] = parts[m];                                                         \
        for (int64_t p = 1; p < P; p++)                                                \
            for (int64_t m = 0; m < M; m++)                                            \
                dst[m] = COMB_##OP##_##K(dst[m], parts[p * M + m]);                    \
    }
RED_MERGE(sum, F)
RED_MERGE(prod, F)
RED_MERGE(max, F)
RED_MERGE(min, F)
RED_MERGE(sum, I)
RED_MERGE(prod, I)
RED_MERGE(max, I)
RED_MERGE(min, I)
RED_MERGE(max, S)
RED_MERGE(min, S)

/* Writes @n accumulators as T, divided by @count when @mean. */
typedef void (*red_final_fn)(const void *acc, void *out, int64_t n, int mean, int64_t count);

#define RED_FINAL_F(SFX, T)                                                            \
    static void final_##SFX(const void *acc_, void *out_, int64_t n, int mean,          \
                            int64_t count) {                                           \
        const double *acc = acc_;                                                      \
        T *out = out_;                                                                 \
        if (mean) {                                                                    \
            const double c = (double)count;  /* 0: 0 / 0 is NaN, as TensorFlow */      \
            for (int64_t i = 0; i < n; i++)                                            \
                out[i] = (T)(acc[i] / c);                                              \
        } else {                                                                       \
            for (int64_t i = 0; i < n; i++)                                            \
                out[i] = (T)acc[i];                                                    \
        }                                                                              \
    }
#define RED_FINAL_I(SFX, T)                                                            \
    static void final_##SFX(const void *acc_, void *out_, int64_t n, int mean,          \
                            int64_t count) {                                           \
        const int64_t *acc = acc_;                                                     \
        T *out = out_;                                                                 \
        for (int64_t i = 0; i < n; i++) {                                              \
            int64_t v = acc[i];                                                        \
            if (mean)                                                                  \
                v = count > 0 ? v / count : 0;                                         \
            out[i] = (T)(uint64_t)v;                                                   \
        }                                                                              \
    }
RED_FINAL_F(f32, float)
RED_FINAL_F(f64, double)
RED_FINAL_I(i8, int8_t)
RED_FINAL_I(i16, int16_t)
RED_FINAL_I(i32, int32_t)
RED_FINAL_I(i64, int64_t)
RED_FINAL_I(u8, uint8_t)

/* ---- One reduction pass ------------------------------------------------------------ */

typedef enum red_op { RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD } red_op;

/* What one (op, dtype) pair needs. */
typedef struct red_impl {
    red_block_fn first;    /* reads T */
    red_block_fn later;    /* reads accumulators (passes after the first) */
    red_merge_fn merge;
    red_final_fn final;
    red_acc ident;
    size_t asize;          /* bytes per accumulator: 8, or 4 for f32 Max/Min */
    bool acc_is_t;         /* T is its own accumulator type (f64, i64, f32 Max/Min) */
} red_impl;

typedef struct red_pass {
    red_block_fn fn;
    const char *in;
    int64_t O, R, I, nb;   /* nb: column blocks per outer index (1 when I == 1) */
    red_acc ident;
    size_t asize;
    char *dst;             /* [O, I] accumulators, or a partial array of them */
    /* R split: part p reduces rows [p * rchunk, ...) into dst + p * O * I */
    int64_t rchunk;
} red_pass;

/* Output units u = o * nb + block, over rows r0..r1 into @dst. */
static void red_units(const red_pass *p, int64_t u0, int64_t u1, int64_t r0, int64_t r1,
                      char *dst) {
    for (int64_t u = u0; u < u1; u++) {
        int64_t o = u / p->nb, i0 = (u % p->nb) * RED_COL_BLOCK;
        int64_t i1 = i0 + RED_COL_BLOCK < p->I ? i0 + RED_COL_BLOCK : p->I;
        p->fn(p->in, p->R, p->I, o, i0, i1, r0, r1, dst + (size_t)(o * p->I + i0) * p->asize,
              p->ident);
    }
}

static void red_units_task(void *arg, int64_t u0, int64_t u1) {
    const red_pass *p = arg;
    red_units(p, u0, u1, 0, p->R, p->dst);
}

static void red_split_task(void *arg, int64_t p0, int64_t p1) {
    const red_pass *p = arg;
    for (int64_t part = p0; part < p1; part++) {
        int64_t r0 = part * p->rchunk;
        int64_t r1 = r0 + p->rchunk < p->R ? r0 + p->rchunk : p->R;
        red_units(p, 0, p->O * p->nb, r0, r1, p->dst + (size_t)(part * p->O * p->I) * p->asize);
    }
}

/* Reduces [O, R, I] @in into @dst ([O, I] accumulators of @asize bytes). */
static floe_status reduce_pass(floe_threadpool *pool, red_block_fn fn, red_merge_fn merge,
                               const void *in, int64_t O, int64_t R, int64_t I,
                               red_acc ident, size_t asize, void *dst) {
    red_pass p = {fn, in, O, R, I, I == 1 ? 1 : (I + RED_COL_BLOCK - 1) / RED_COL_BLOCK,
                  ident, asize, dst, 0};
    const int64_t units = O * p.nb, total = O * R * I;
    const int64_t unit_cost = R * (I < RED_COL_BLOCK ? I : RED_COL_BLOCK);
    const int nt = pool != NULL ? floe_threadpool_size(pool) : 1;

    if (total <= OPS_MATH_GRAIN || nt <= 1 || units >= 2 * (int64_t)nt) {
        int64_t grain = OPS_MATH_GRAIN / unit_cost;
        ops_math__parallel(pool, units, grain < 1 ? 1 : grain, red_units_task, &p);
        return FLOE_OK;
    }
    /* Too few output units to keep the threads busy: split R, then merge partials. */
    int64_t parts = total / OPS_MATH_GRAIN;
    if (parts > 4 * (int64_t)nt)
        parts = 4 * (int64_t)nt;
    if (parts > R)
        parts = R;
    if (parts < 2) {
        red_units(&p, 0, units, 0, R, dst);
        return FLOE_OK;
    }
    p.rchunk = (R + parts - 1) / parts;
    parts = (R + p.rchunk - 1) / p.rchunk;
    size_t nbytes = (size_t)parts * (size_t)(O * I) * asize;
    p.dst = floe_alloc(nbytes, 64);
    if (p.dst == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for %zu bytes of partial sums",
                         nbytes);
    floe_parallel_for(pool, parts, 1, red_split_task, &p);
    merge(dst, p.dst, parts, O * I);
    floe_free(p.dst);
    return FLOE_OK;
}

/* ---- Sum, Mean, Max, Min, Prod ----------------------------------------------------- */

#define IMPL_F(OP, SFX, IDENT, ACCT)                                                   \
    (red_impl) {                                                                       \
        red_##OP##_##SFX, red_##OP##_f64, merge_##OP##_F, final_##SFX,                  \
            {.f = (IDENT)}, 8, ACCT                                                    \
    }
#define IMPL_I(OP, SFX, IDENT, ACCT)                                                   \
    (red_impl) {                                                                       \
        red_##OP##_##SFX, red_##OP##_i64, merge_##OP##_I, final_##SFX,                  \
            {.i = (IDENT)}, 8, ACCT                                                    \
    }
/* f32 Max/Min: float accumulators written straight into the output */
#define IMPL_S(OP, IDENT)                                                              \
    (red_impl) {                                                                       \
        red_##OP##_f32s, red_##OP##_f32s, merge_##OP##_S, NULL, {.s = (IDENT)}, 4, true \
    }
#define IMPLS_F(SFX, ACCT)                                                             \
    switch (op) {                                                                      \
    case RED_SUM:                                                                      \
    case RED_MEAN:                                                                     \
        *impl = IMPL_F(sum, SFX, 0.0, ACCT);                                           \
        return true;                                                                   \
    case RED_PROD:                                                                     \
        *impl = IMPL_F(prod, SFX, 1.0, ACCT);                                          \
        return true;                                                                   \
    case RED_MAX:                                                                      \
        *impl = IMPL_F(max, SFX, -INFINITY, ACCT);                                     \
        return true;                                                                   \
    case RED_MIN:                                                                      \
        *impl = IMPL_F(min, SFX, INFINITY, ACCT);                                      \
        return true;                                                                   \
    }                                                                                  \
    return false
#define IMPLS_I(SFX, LO, HI, ACCT)                                                     \
    switch (op) {                                                                      \
    case RED_SUM:                                                                      \
    case RED_MEAN:                                                                     \
        *impl = IMPL_I(sum, SFX, 0, ACCT);                                             \
        return true;                                                                   \
    case RED_PROD:                                                                     \
        *impl = IMPL_I(prod, SFX, 1, ACCT);                                            \
        return true;                                                                   \
    case RED_MAX:                                                                      \
        *impl = IMPL_I(max, SFX, LO, ACCT);                                            \
        return true;                                                                   \
    case RED_MIN:                                                                      \
        *impl = IMPL_I(min, SFX, HI, ACCT);                                            \
        return true;                                                                   \
    }                                                                                  \
    return false

static bool find_impl(red_op op, floe_dtype dt, red_impl *impl) {
    if (dt == FLOE_DTYPE_F32 && (op == RED_MAX || op == RED_MIN)) {
        *impl = op == RED_MAX ? IMPL_S(max, -INFINITY) : IMPL_S(min, INFINITY);
        return true;
    }
    switch (dt) {
    case FLOE_DTYPE_F32: IMPLS_F(f32, false);
    case FLOE_DTYPE_F64: IMPLS_F(f64, true);
    case FLOE_DTYPE_I8: IMPLS_I(i8, INT8_MIN, INT8_MAX, false);
    case FLOE_DTYPE_I16: IMPLS_I(i16, INT16_MIN, INT16_MAX, false);
    case FLOE_DTYPE_I32: IMPLS_I(i32, INT32_MIN, INT32_MAX, false);
    case FLOE_DTYPE_I64: IMPLS_I(i64, INT64_MIN, INT64_MAX, true);
    case FLOE_DTYPE_U8: IMPLS_I(u8, 0, UINT8_MAX, false);
    default:
        return false;
    }
}

static const char *const red_names[] = {"Sum", "Mean", "Max", "Min", "Prod"};

/* The kernel state of reductions: keep_dims, NULL for false, else this tag's address. */
static int keep_dims_tag;

static floe_status red_create(floe_kernel_ctx *kc, void **state) {
    int keep = 0;
    floe_status st = bool_attr(floe_kernel_attrs(kc), "keep_dims", 0, &keep);
    *state = st == FLOE_OK && keep ? &keep_dims_tag : NULL;
    return st;
}

/* The input's dims as groups: extent-1 dims dropped, runs of reduced or kept merged. */
typedef struct red_groups {
    int n;
    int64_t ext[FLOE_MAX_DIMS];
    bool red[FLOE_MAX_DIMS];
} red_groups;

static void red_group(const floe_tensor *x, const bool *reduce, red_groups *g) {
    memset(g, 0, sizeof(*g));
    for (int d = 0; d < floe_tensor_ndim(x); d++) {
        int64_t e = floe_tensor_dim(x, d);
        if (e == 1)
            continue;
        if (g->n > 0 && g->red[g->n - 1] == reduce[d]) {
            g->ext[g->n - 1] *= e;
        } else {
            g->ext[g->n] = e;
            g->red[g->n] = reduce[d];
            g->n++;
        }
    }
}

/* Runs one pass per reduced group, innermost first, ending in @acc. */
static floe_status red_passes(floe_threadpool *pool, const red_impl *impl, red_groups *g,
                              const void *in, void *acc) {
    const void *cur = in;
    void *owned = NULL;    /* the buffer @cur points to, when it is a temporary */
    red_block_fn fn = impl->first;
    floe_status st = FLOE_OK;

    for (;;) {
        int j = g->n - 1;
        while (j >= 0 && !g->red[j])
            j--;
        if (j < 0)
            break;
        int64_t O = 1, I = 1;
        bool last = true;
        for (int k = 0; k < j; k++) {
            O *= g->ext[k];
            last = last && !g->red[k];
        }
        for (int k = j + 1; k < g->n && k < FLOE_MAX_DIMS; k++)
            I *= g->ext[k];
        void *dst = acc;
        if (!last && (dst = floe_alloc((size_t)(O * I) * impl->asize, 64)) == NULL) {
            st = floe_fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for a reduction");
            break;
        }
        st = reduce_pass(pool, fn, impl->merge, cur, O, g->ext[j], I, impl->ident,
                         impl->asize, dst);
        floe_free(owned);
        owned = dst != acc ? dst : NULL;
        if (st != FLOE_OK)
            break;
        cur = dst;
        fn = impl->later;
        /* Drop group j: the kept group before it (groups alternate) absorbs I. */
        g->n = j;
        if (g->n > 0) {
            g->ext[g->n - 1] *= I;
        } else if (I > 1) {
            g->ext[0] = I;
            g->red[0] = false;
            g->n = 1;
        }
    }
    floe_free(owned);
    return st;
}

static floe_status reduce_compute(floe_kernel_ctx *kc, red_op op, bool keep) {
    const char *name = red_names[op];
    floe_tensor *x, *axes, *y = NULL;
    bool reduce[FLOE_MAX_DIMS];
    int64_t out_shape[FLOE_MAX_DIMS];
    int out_ndim = 0;
    red_impl impl;
    floe_status st;

    if ((st = ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &x)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &axes)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(x);
    if (!find_impl(op, dt, &impl))
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", name,
                         floe_dtype_name(dt));
    const int rank = floe_tensor_ndim(x);
    if ((st = read_axes(name, axes, rank, reduce)) != FLOE_OK)
        return st;
    for (int d = 0; d < rank; d++) {
        if (!reduce[d] || keep)
            out_shape[out_ndim++] = reduce[d] ? 1 : floe_tensor_dim(x, d);
    }
    if ((st = floe_kernel_alloc_output(kc, 0, out_shape, out_ndim, &y)) != FLOE_OK)
        return st;
    const int64_t n_out = floe_tensor_num_elements(y), n_in = floe_tensor_num_elements(x);
    if (n_out == 0)
        return FLOE_OK;
    void *out = floe_tensor_data(y);
    if (out == NULL || floe_tensor_dtype(y) != dt)
        return floe_fail(FLOE_INTERNAL, "%s: output is not a host %s tensor", name,
                         floe_dtype_name(dt));
    const bool mean = op == RED_MEAN;
    /* elements per output element (an empty input may have huge other extents) */
    const int64_t count = n_in > 0 ? n_in / n_out : 0;
    red_groups g = {0};
    if (n_in > 0) {
        red_group(x, reduce, &g);
        bool any_reduced = false;
        for (int k = 0; k < g.n; k++)
            any_reduced = any_reduced || g.red[k];
        if (!any_reduced) {
            /* only extent-1 dims reduced: the values pass through (Mean divides by 1) */
            memcpy(out, floe_tensor_data(x), floe_tensor_nbytes(x));
            return FLOE_OK;
        }
    }

    void *acc = impl.acc_is_t ? out : floe_alloc((size_t)n_out * impl.asize, 64);
    if (acc == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", name);
    if (n_in == 0) {   /* reducing an empty axis: the identity */
        for (int64_t i = 0; i < n_out; i++) {
            if (impl.asize == sizeof(float))
                ((float *)acc)[i] = impl.ident.s;
            else
                memcpy((char *)acc + (size_t)i * 8, &impl.ident, 8);
        }
    } else {
        st = red_passes(floe_kernel_threadpool(kc), &impl, &g, floe_tensor_data(x), acc);
    }
    if (st == FLOE_OK && impl.final != NULL && (acc != out || mean))
        impl.final(acc, out, n_out, mean, count);
    if (acc != out)
        floe_free(acc);
    return st;
}

#define RED_KERNEL(ID, OP)                                                             \
    static floe_status ID##_compute(floe_kernel_ctx *kc, void *state) {               \
        return reduce_compute(kc, OP, state != NULL);                                  \
    }
RED_KERNEL(sum, RED_SUM)
RED_KERNEL(mean, RED_MEAN)
RED_KERNEL(max, RED_MAX)
RED_KERNEL(min, RED_MIN)
RED_KERNEL(prod, RED_PROD)

/* ---- ArgMax, ArgMin ------------------------------------------------------------------ */

/* Better-than tests: strict, so the first of equal values wins; a NaN beats any number
 * and nothing beats a NaN, so the first NaN wins. */
#define BETTER_max(x, b) (((x) > (b)) | (((x) != (x)) & ((b) == (b))))
#define BETTER_min(x, b) (((x) < (b)) | (((x) != (x)) & ((b) == (b))))

/* arg_<op>_<sfx>: indices of the extremes over R of [O, R, I] for output elements
 * [u0, u1) (u = o * I + i, at most ARG_BLOCK of them), written as int64.  With I > 1
 * the columns of one o are scanned together, row by row, so every read is contiguous. */
#define ARG_BLOCK 256
typedef void (*arg_fn)(const void *in, int64_t R, int64_t I, int64_t u0, int64_t u1,
                       int64_t *idx);

/* Same value, NaN matching NaN. */
#define SAME_VALUE(a, b) (((a) == (b)) | (((a) != (a)) & ((b) != (b))))

/* argrow_<op>_<sfx>: the first index of the extreme of one contiguous row of @n > 0,
 * in 8 lanes (element i in lane i % 8) that vectorise; the lanes' winners are then
 * compared, the smallest index winning among equal values. */
#define ARG_ROW(OP, SFX, T)                                                            \
    static int64_t argrow_##OP##_##SFX(const T *x, int64_t n) {                         \
        T best[8];                                                                     \
        int32_t bi[8];                                                                 \
        int64_t i = 0;                                                                 \
        if (n >= 8 && n <= INT32_MAX) {                                                \
            for (int l = 0; l < 8; l++) {                                              \
                best[l] = x[l];                                                        \
                bi[l] = l;                                                             \
            }                                                                          \
            for (i = 8; i + 8 <= n; i += 8)                                            \
                for (int l = 0; l < 8; l++) {                                          \
                    const T v = x[i + l];                                              \
                    const bool b = BETTER_##OP(v, best[l]);                            \
                    best[l] = b ? v : best[l];                                         \
                    bi[l] = b ? (int32_t)(i + l) : bi[l];                              \
                }                                                                      \
        } else {                                                                       \
            for (int l = 0; l < 8; l++) {                                              \
                best[l] = x[0];                                                        \
                bi[l] = 0;                                                             \
            }                                                                          \
            i = 1;                                                                     \
        }                                                                              \
        T cb = best[0];                                                                \
        int64_t ci = bi[0];                                                            \
        for (int l = 1; l < 8; l++)                                                    \
            if (BETTER_##OP(best[l], cb) || (SAME_VALUE(best[l], cb) && bi[l] < ci)) { \
                cb = best[l];                                                          \
                ci = bi[l];                                                            \
            }                                                                          \
        for (; i < n; i++)                                                             \
            if (BETTER_##OP(x[i], cb)) {                                               \
                cb = x[i];                                                             \
                ci = i;                                                                \
            }                                                                          \
        return ci;                                                                     \
    }

#define ARG_FUNC(OP, SFX, T)                                                           \
    ARG_ROW(OP, SFX, T)                                                                \
    static void arg_##OP##_##SFX(const void *in_, int64_t R, int64_t I, int64_t u0,     \
                                 int64_t u1, int64_t *idx) {                           \
        const T *in = in_;                                                             \
        if (I == 1) {                                                                  \
            for (int64_t u = u0; u < u1; u++)                                          \
                idx[u - u0] = argrow_##OP##_##SFX(in + u * R, R);                      \
            return;                                                                    \
        }                                                                              \
        T best[ARG_BLOCK];                                                             \
        int32_t ix32[ARG_BLOCK];   /* narrow indices vectorise with the values */      \
        for (int64_t u = u0; u < u1;) {                                                \
            const int64_t o = u / I, i0 = u % I;                                       \
            const int64_t w = I - i0 < u1 - u ? I - i0 : u1 - u;                       \
            const T *base = in + o * R * I + i0;                                       \
            int64_t *ix = idx + (u - u0);                                              \
            for (int64_t i = 0; i < w; i++) {                                          \
                best[i] = base[i];                                                     \
                ix[i] = 0;                                                             \
                ix32[i] = 0;                                                           \
            }                                                                          \
            if (R <= INT32_MAX) {                                                      \
                for (int64_t r = 1; r < R; r++) {                                      \
                    const T *row = base + r * I;                                       \
                    const int32_t r32 = (int32_t)r;                                    \
                    for (int64_t i = 0; i < w; i++) {                                  \
                        const T v = row[i];                                            \
                        const bool b = BETTER_##OP(v, best[i]);                        \
                        best[i] = b ? v : best[i];                                     \
                        ix32[i] = b ? r32 : ix32[i];                                   \
                    }                                                                  \
                }                                                                      \
                for (int64_t i = 0; i < w; i++)                                        \
                    ix[i] = ix32[i];                                                   \
            } else {                                                                   \
                for (int64_t r = 1; r < R; r++) {                                      \
                    const T *row = base + r * I;                                       \
                    for (int64_t i = 0; i < w; i++) {                                  \
                        const T v = row[i];                                            \
                        const bool b = BETTER_##OP(v, best[i]);                        \
                        best[i] = b ? v : best[i];                                     \
                        ix[i] = b ? r : ix[i];                                         \
                    }                                                                  \
                }                                                                      \
            }                                                                          \
            u += w;                                                                    \
        }                                                                              \
    }
#define ARG_FUNCS(SFX, T) ARG_FUNC(max, SFX, T) ARG_FUNC(min, SFX, T)
ARG_FUNCS(f32, float)
ARG_FUNCS(f64, double)
ARG_FUNCS(i8, int8_t)
ARG_FUNCS(i16, int16_t)
ARG_FUNCS(i32, int32_t)
ARG_FUNCS(i64, int64_t)
ARG_FUNCS(u8, uint8_t)

static arg_fn find_arg(bool is_max, floe_dtype dt) {
    switch (dt) {
    case FLOE_DTYPE_F32: return is_max ? arg_max_f32 : arg_min_f32;
    case FLOE_DTYPE_F64: return is_max ? arg_max_f64 : arg_min_f64;
    case FLOE_DTYPE_I8: return is_max ? arg_max_i8 : arg_min_i8;
    case FLOE_DTYPE_I16: return is_max ? arg_max_i16 : arg_min_i16;
    case FLOE_DTYPE_I32: return is_max ? arg_max_i32 : arg_min_i32;
    case FLOE_DTYPE_I64: return is_max ? arg_max_i64 : arg_min_i64;
    case FLOE_DTYPE_U8: return is_max ? arg_max_u8 : arg_min_u8;
    default: return NULL;
    }
}

typedef struct arg_args {
    arg_fn fn;
    const void *in;
    int64_t R, I;
    void *out;
    bool out64;
} arg_args;

/* Output elements [u0, u1), written through a small int64 buffer. */
static void arg_task(void *arg, int64_t u0, int64_t u1) {
    const arg_args *a = arg;
    int64_t buf[ARG_BLOCK];
    for (int64_t b = u0; b < u1; b += ARG_BLOCK) {
        int64_t e = b + ARG_BLOCK < u1 ? b + ARG_BLOCK : u1;
        a->fn(a->in, a->R, a->I, b, e, buf);
        for (int64_t u = b; u < e; u++) {
            if (a->out64)
                ((int64_t *)a->out)[u] = buf[u - b];
            else
                ((int32_t *)a->out)[u] = (int32_t)buf[u - b];
        }
    }
}

static floe_status arg_compute(floe_kernel_ctx *kc, bool is_max) {
    const char *name = is_max ? "ArgMax" : "ArgMin";
    floe_tensor *x, *dim, *y = NULL;
    int64_t out_shape[FLOE_MAX_DIMS];
    int axis;
    floe_status st;

    if ((st = ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &x)) != FLOE_OK ||
        (st = ops_math__kernel_input(kc, 1, FLOE_DTYPE_INVALID, &dim)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(x), odt = floe_kernel_output_dtype(kc, 0);
    arg_fn fn = find_arg(is_max, dt);
    if (fn == NULL)
        return floe_fail(FLOE_UNIMPLEMENTED, "%s: no CPU kernel for dtype %s", name,
                         floe_dtype_name(dt));
    if (odt != FLOE_DTYPE_I32 && odt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: output_type must be i32 or i64, not %s",
                         name, floe_dtype_name(odt));
    const int rank = floe_tensor_ndim(x);
    if (rank == 0)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input must be at least 1-D", name);
    if ((st = read_arg_axis(name, dim, rank, &axis)) != FLOE_OK)
        return st;
    int64_t O = 1, R = floe_tensor_dim(x, axis), I = 1;
    char shape[8 * 24 + 4];
    if (R == 0) {
        ops_math__format_dims(floe_tensor_shape(x), rank, shape, sizeof(shape));
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: Reduction axis %d is empty in shape %s",
                         name, axis, shape);
    }
    if (odt == FLOE_DTYPE_I32 && R - 1 > INT32_MAX)
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "%s: axis extent %lld does not fit output_type i32", name,
                         (long long)R);
    for (int d = 0, j = 0; d < rank; d++)
        if (d != axis)
            out_shape[j++] = floe_tensor_dim(x, d);
    if ((st = floe_kernel_alloc_output(kc, 0, out_shape, rank - 1, &y)) != FLOE_OK)
        return st;
    const int64_t n_out = floe_tensor_num_elements(y);
    if (n_out == 0)
        return FLOE_OK;
    /* no extent is 0 now, so these products stay within the element count */
    for (int d = 0; d < rank; d++) {
        if (d < axis)
            O *= floe_tensor_dim(x, d);
        else if (d > axis)
            I *= floe_tensor_dim(x, d);
    }
    if (O * I != n_out)
        return floe_fail(FLOE_INTERNAL, "%s: output has %lld elements, expected %lld", name,
                         (long long)n_out, (long long)(O * I));
    arg_args a = {fn, floe_tensor_data(x), R, I, floe_tensor_data(y), odt == FLOE_DTYPE_I64};
    if (a.out == NULL || floe_tensor_dtype(y) != odt)
        return floe_fail(FLOE_INTERNAL, "%s: output is not a host %s tensor", name,
                         floe_dtype_name(odt));
    int64_t grain = OPS_MATH_GRAIN / R;
    ops_math__parallel(floe_kernel_threadpool(kc), n_out, grain < 1 ? 1 : grain, arg_task, &a);
    return FLOE_OK;
}

static floe_status argmax_compute(floe_kernel_ctx *kc, void *state) {
    return arg_compute(kc, true);
}
static floe_status argmin_compute(floe_kernel_ctx *kc, void *state) {
    return arg_compute(kc, false);
}

/* ---- Op definitions ------------------------------------------------------------------ */

#define RED_TYPES "{bf16, f16, f32, f64, u8, u16, u32, u64, i8, i16, i32, i64}"

static const char *const red_inputs[] = {"input: T", "reduction_indices: Tidx", NULL};
static const char *const red_outputs[] = {"output: T", NULL};
static const char *const red_attrs[] = {"keep_dims: bool = false", "T: " RED_TYPES,
                                        "Tidx: {i32, i64} = i32", NULL};
static const char *const arg_inputs[] = {"input: T", "dimension: Tidx", NULL};
static const char *const arg_outputs[] = {"output: output_type", NULL};
static const char *const arg_attrs[] = {"T: " RED_TYPES, "Tidx: {i32, i64} = i32",
                                        "output_type: {i32, i64} = i64", NULL};
static const char *const red_ks[] = {"T: {f32, f64, i8, i16, i32, i64, u8}", NULL};
static const char *const red_host[] = {"reduction_indices", NULL};
static const char *const arg_host[] = {"dimension", NULL};

typedef struct red_entry {
    floe_op_def op;
    floe_kernel_def kernel;
} red_entry;

#define RED_ENTRY(NAME, ID, DOC)                                                       \
    {{sizeof(floe_op_def), NAME, red_inputs, red_outputs, red_attrs, reduce_shape_fn, 0,  \
      DOC},                                                                            \
     {sizeof(floe_kernel_def), NAME, "CPU", red_ks, 0, red_create, ID##_compute, NULL,  \
      red_host}}
#define ARG_ENTRY(NAME, ID, DOC)                                                       \
    {{sizeof(floe_op_def), NAME, arg_inputs, arg_outputs, arg_attrs, arg_shape_fn,       \
      FLOE_OP_NO_GRADIENT, DOC},                                                       \
     {sizeof(floe_kernel_def), NAME, "CPU", red_ks, 0, NULL, ID##_compute, NULL,        \
      arg_host}}

static const red_entry red_entries[] = {
    RED_ENTRY("Sum", sum, "Sum over the axes in reduction_indices."),
    RED_ENTRY("Mean", mean,
              "Mean over the axes in reduction_indices (integers: truncating division)."),
    RED_ENTRY("Max", max, "Maximum over the axes (NaN propagates; empty: -inf or lowest)."),
    RED_ENTRY("Min", min, "Minimum over the axes (NaN propagates; empty: inf or highest)."),
    RED_ENTRY("Prod", prod, "Product over the axes in reduction_indices."),
    ARG_ENTRY("ArgMax", argmax, "Index of the largest value along one axis (first wins)."),
    ARG_ENTRY("ArgMin", argmin, "Index of the smallest value along one axis (first wins)."),
};

floe_status ops_math__register_reduce(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(red_entries) / sizeof(red_entries[0]); i++) {
        floe_status st = floe_register_op(self, &red_entries[i].op);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &red_entries[i].kernel);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
