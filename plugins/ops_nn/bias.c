/*
 * bias.c - BiasAdd and BiasAddGrad on CPU (f32, f64), with BiasAdd's gradient.
 *
 *   BiasAdd(value, bias; data_format) -> value + bias along the channel dimension: the
 *       last one for "NHWC" (the default), dimension 1 for "NCHW".  value has rank >= 2
 *       (>= 3 for NCHW, as TensorFlow), bias is 1-D with the channel count.
 *   BiasAddGrad(out_backprop; data_format) -> the sum of out_backprop over every
 *       dimension but the channel one (accumulated in double for f32).
 * Any other data_format is INVALID_ARGUMENT, at graph construction and in the kernel.
 * BiasAdd's gradient: the upstream gradient itself for value, BiasAddGrad of it for bias.
 *
 * BiasAdd writes in place into value's buffer when it is not shared; rows of channels
 * (NHWC) or planes of one channel (NCHW) are split across the thread pool for large
 * tensors.  BiasAddGrad sums blocks of rows into per-block partial sums in parallel,
 * then adds the blocks.
 *
 * Sections: data format; BiasAdd; BiasAddGrad; gradient function; definitions and
 * registration.
 */
#include "ops_nn-impl.h"

/* ---- Data format -------------------------------------------------------------------- */

/* Reads data_format of @a: *@nchw (out) true for "NCHW"; errors for other values. */
static floe_status read_format(const char *op, const floe_attrs *a, bool *nchw) {
    const char *s = "NHWC";
    size_t len = 4;
    *nchw = false;
    if (a != NULL && floe_attrs_type(a, "data_format") == FLOE_ATTR_STRING) {
        floe_status st = floe_attrs_get_string(a, "data_format", &s, &len);
        if (st != FLOE_OK)
            return st;
    }
    if (len == 4 && memcmp(s, "NHWC", 4) == 0)
        return FLOE_OK;
    if (len == 4 && memcmp(s, "NCHW", 4) == 0) {
        *nchw = true;
        return FLOE_OK;
    }
    return floe_fail(FLOE_INVALID_ARGUMENT, "%s: unknown data_format \"%.*s\" (NHWC or NCHW)",
                     op, (int)(len > 32 ? 32 : len), s);
}

/* Splits a shape of rank @nd into outer x channels x inner for the format. */
static void split_dims(const int64_t *dims, int nd, bool nchw, int64_t *outer, int64_t *c,
                       int64_t *inner) {
    int cd = nchw ? 1 : nd - 1;
    *outer = *inner = 1;
    for (int d = 0; d < cd; d++)
        *outer *= dims[d];
    for (int d = cd + 1; d < nd; d++)
        *inner *= dims[d];
    *c = dims[cd];
}

static floe_status check_rank(const char *op, int nd, bool nchw) {
    int min = nchw ? 3 : 2;
    if (nd >= 0 && nd < min)
        return floe_fail(FLOE_INVALID_ARGUMENT, "%s: input must have at least %d dimensions "
                         "for data_format %s, got rank %d", op, min, nchw ? "NCHW" : "NHWC",
                         nd);
    return FLOE_OK;
}

static floe_status format_create(floe_kernel_ctx *kc, void **state, const char *op) {
    bool nchw;
    floe_status st = read_format(op, floe_kernel_attrs(kc), &nchw);
    *state = nchw ? (void *)kc : NULL;  /* non-NULL marks NCHW; the pointer is not used */
    return st;
}

static floe_status bias_add_create(floe_kernel_ctx *kc, void **state) {
    return format_create(kc, state, "BiasAdd");
}

static floe_status bias_add_grad_create(floe_kernel_ctx *kc, void **state) {
    return format_create(kc, state, "BiasAddGrad");
}

/* ---- BiasAdd ------------------------------------------------------------------------- */

typedef struct bias_args {
    floe_dtype dt;
    char *y;
    const char *x, *b;
    int64_t c, inner;              /* rows of c channels (NHWC, inner 1) or planes */
    bool nchw;
} bias_args;

#define BIAS_ROWS(SFX, T)                                                                \
    /* NHWC: rows [begin, end) of c channels. */                                         \
    static void bias_rows_##SFX(T *y, const T *x, const T *b, int64_t begin, int64_t end, \
                                int64_t c) {                                             \
        for (int64_t r = begin; r < end; r++) {                                          \
            T *yr = y + r * c;                                                           \
            const T *xr = x + r * c;                                                     \
            OPS_NN_IVDEP                                                                 \
            for (int64_t j = 0; j < c; j++)                                              \
                yr[j] = xr[j] + b[j];                                                    \
        }                                                                                \
    }                                                                                    \
    /* NCHW: planes [begin, end) of inner elements, plane p has channel p % c. */        \
    static void bias_planes_##SFX(T *y, const T *x, const T *b, int64_t begin,           \
                                  int64_t end, int64_t c, int64_t inner) {               \
        for (int64_t p = begin; p < end; p++) {                                          \
            T *yp = y + p * inner;                                                       \
            const T *xp = x + p * inner;                                                 \
            const T v = b[p % c];                                                        \
            OPS_NN_IVDEP                                                                 \
            for (int64_t j = 0; j < inner; j++)                                          \
                yp[j] = xp[j] + v;                                                       \
        }                                                                                \
    }

BIAS_ROWS(f32, float)
BIAS_ROWS(f64, double)

static void bias_range(void *arg, int64_t begin, int64_t end) {
    const bias_args *p = arg;
    if (p->dt == FLOE_DTYPE_F32) {
        if (p->nchw)
            bias_planes_f32((float *)(void *)p->y, (const float *)(const void *)p->x,
                            (const float *)(const void *)p->b, begin, end, p->c, p->inner);
        else
            bias_rows_f32((float *)(void *)p->y, (const float *)(const void *)p->x,
                          (const float *)(const void *)p->b, begin, end, p->c);
    } else {
        if (p->nchw)
            bias_planes_f64((double *)(void *)p->y, (const double *)(const void *)p->x,
                            (const double *)(const void *)p->b, begin, end, p->c, p->inner);
        else
            bias_rows_f64((double *)(void *)p->y, (const double *)(const void *)p->x,
                          (const double *)(const void *)p->b, begin, end, p->c);
    }
}

static floe_status bias_add_compute(floe_kernel_ctx *kc, void *state) {
    const bool nchw = state != NULL;
    floe_tensor *x, *b, *y = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &x)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(x);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "BiasAdd: no CPU kernel for dtype %s",
                         floe_dtype_name(dt));
    if ((st = ops_nn__input(kc, 1, dt, &b)) != FLOE_OK)
        return st;
    int nd = floe_tensor_ndim(x);
    if ((st = check_rank("BiasAdd", nd, nchw)) != FLOE_OK)
        return st;
    int64_t outer, c, inner;
    split_dims(floe_tensor_shape(x), nd, nchw, &outer, &c, &inner);
    if (floe_tensor_ndim(b) != 1 || floe_tensor_dim(b, 0) != c) {
        char sb[128];
        ops_nn__format_dims(floe_tensor_shape(b), floe_tensor_ndim(b), sb, sizeof(sb));
        return floe_fail(FLOE_INVALID_ARGUMENT, "BiasAdd: bias must be 1-D with the %lld "
                         "channels of value's dimension %d, got shape %s", (long long)c,
                         nchw ? 1 : nd - 1, sb);
    }
    st = floe_kernel_forward_or_alloc(kc, 0, 0, floe_tensor_shape(x), nd, &y);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(x);
    if (n == 0)
        return FLOE_OK;
    bias_args args = {dt, floe_tensor_data(y), floe_tensor_data(x), floe_tensor_data(b), c,
                      inner, nchw};
    if (args.y == NULL)
        return floe_fail(FLOE_INTERNAL, "BiasAdd: output is not in host memory");
    int64_t units = nchw ? outer * c : outer, per = nchw ? inner : c;
    int64_t grain = OPS_NN_GRAIN / per;
    ops_nn__parallel(floe_kernel_threadpool(kc), units, grain < 1 ? 1 : grain, bias_range,
                     &args);
    return FLOE_OK;
}

/* ---- BiasAddGrad --------------------------------------------------------------------- */

/* Rows (NHWC) or planes (NCHW) summed per block into partial[block * c ...]. */
#define GRAD_BLOCK_ELEMS (64 * 1024)

typedef struct bgrad_args {
    floe_dtype dt;
    const char *g;
    int64_t units, per_block;      /* rows or planes, and how many of them per block */
    int64_t c, inner;
    bool nchw;
    double *partial;
} bgrad_args;

#define BGRAD_ROWS(SFX, T)                                                               \
    static void bgrad_block_##SFX(const bgrad_args *p, int64_t blk) {                    \
        const T *g = (const T *)(const void *)p->g;                                      \
        double *acc = p->partial + blk * p->c;                                           \
        int64_t lo = blk * p->per_block, hi = lo + p->per_block;                         \
        if (hi > p->units)                                                               \
            hi = p->units;                                                               \
        for (int64_t j = 0; j < p->c; j++)                                               \
            acc[j] = 0;                                                                  \
        if (!p->nchw) {                                                                  \
            for (int64_t r = lo; r < hi; r++) {                                          \
                const T *gr = g + r * p->c;                                              \
                OPS_NN_IVDEP                                                             \
                for (int64_t j = 0; j < p->c; j++)                                       \
                    acc[j] += gr[j];                                                     \
            }                                                                            \
            return;                                                                      \
        }                                                                                \
        for (int64_t q = lo; q < hi; q++) {                                              \
            const T *gp = g + q * p->inner;                                              \
            double s = 0;                                                                \
            for (int64_t j = 0; j < p->inner; j++)                                       \
                s += gp[j];                                                              \
            acc[q % p->c] += s;                                                          \
        }                                                                                \
    }

BGRAD_ROWS(f32, float)
BGRAD_ROWS(f64, double)

static void bgrad_range(void *arg, int64_t begin, int64_t end) {
    const bgrad_args *p = arg;
    for (int64_t blk = begin; blk < end; blk++) {
        if (p->dt == FLOE_DTYPE_F32)
            bgrad_block_f32(p, blk);
        else
            bgrad_block_f64(p, blk);
    }
}

static floe_status bias_add_grad_compute(floe_kernel_ctx *kc, void *state) {
    const bool nchw = state != NULL;
    floe_tensor *g, *out = NULL;
    floe_status st;

    if ((st = ops_nn__input(kc, 0, FLOE_DTYPE_INVALID, &g)) != FLOE_OK)
        return st;
    floe_dtype dt = floe_tensor_dtype(g);
    if (dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return floe_fail(FLOE_UNIMPLEMENTED, "BiasAddGrad: no CPU kernel for dtype %s",
                         floe_dtype_name(dt));
    int nd = floe_tensor_ndim(g);
    if ((st = check_rank("BiasAddGrad", nd, nchw)) != FLOE_OK)
        return st;
    int64_t outer, c, inner;
    split_dims(floe_tensor_shape(g), nd, nchw, &outer, &c, &inner);
    if ((st = floe_kernel_alloc_output(kc, 0, &c, 1, &out)) != FLOE_OK)
        return st;
    if (c == 0)
        return FLOE_OK;
    void *o = floe_tensor_data(out);
    if (o == NULL)
        return floe_fail(FLOE_INTERNAL, "BiasAddGrad: output is not in host memory");
    int64_t units = nchw ? outer * c : outer, per = nchw ? inner : c;
    int64_t per_block = per > 0 ? GRAD_BLOCK_ELEMS / per : units;
    if (per_block < 1)
        per_block = 1;
    if (nchw && per_block > c)
        per_block -= per_block % c;  /* whole images per block where several fit */
    int64_t blocks = units > 0 ? (units + per_block - 1) / per_block : 0;
    /* small cases (one block of a dense layer's bias) sum on the stack */
    double local[512], *partial = local;
    if (blocks * c > (int64_t)(sizeof(local) / sizeof(local[0])) &&
        (partial = floe_alloc((size_t)(blocks * c) * sizeof(double), 0)) == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "BiasAddGrad: out of memory");
    bgrad_args args = {dt, floe_tensor_data(g), units, per_block, c, inner, nchw, partial};
    ops_nn__parallel(floe_kernel_threadpool(kc), blocks, 1, bgrad_range, &args);
    for (int64_t j = 0; j < c; j++) {
        double s = 0;
        for (int64_t blk = 0; blk < blocks; blk++)
            s += partial[blk * c + j];
        if (dt == FLOE_DTYPE_F32)
            ((float *)o)[j] = (float)s;
        else
            ((double *)o)[j] = s;
    }
    if (partial != local)
        floe_free(partial);
    return FLOE_OK;
}

/* ---- Gradient function ---------------------------------------------------------------- */

static floe_status bias_add_gradient(floe_grad_ctx *gc) {
    floe_output up = floe_grad_upstream(gc, 0), gb;
    const floe_attrs *fa = floe_grad_attrs(gc);
    floe_attrs *attrs = NULL;
    bool nchw;
    floe_status st;

    if (up.node == NULL)
        return FLOE_OK;
    if ((st = read_format("BiasAdd", fa, &nchw)) != FLOE_OK)
        return st;
    if ((st = floe_grad_set_input_grad(gc, 0, up)) != FLOE_OK)
        return st;
    if ((st = floe_attrs_new(&attrs)) != FLOE_OK)
        return st;
    st = floe_attrs_set_string(attrs, "data_format", nchw ? "NCHW" : "NHWC", 4);
    if (st == FLOE_OK)
        st = ops_nn__grad_node(gc, "BiasAddGrad", &up, 1, attrs, &gb);
    floe_attrs_free(attrs);
    if (st == FLOE_OK)
        st = floe_grad_set_input_grad(gc, 1, gb);
    return st;
}

/* ---- Definitions and registration -------------------------------------------------- */

static floe_status bias_add_shape_fn(floe_shape_ctx *sc) {
    bool nchw;
    floe_shape x = floe_shape_input(sc, 0), b = floe_shape_input(sc, 1);
    floe_status st = read_format("BiasAdd", floe_shape_attrs(sc), &nchw);
    if (st != FLOE_OK || (st = check_rank("BiasAdd", x.ndim, nchw)) != FLOE_OK)
        return st;
    if (b.ndim >= 0 && b.ndim != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "BiasAdd: bias must be 1-D, got rank %d",
                         b.ndim);
    if (x.ndim >= 0 && b.ndim == 1) {
        int cd = nchw ? 1 : x.ndim - 1;
        if (x.dims[cd] >= 0 && b.dims[0] >= 0 && x.dims[cd] != b.dims[0])
            return floe_fail(FLOE_INVALID_ARGUMENT, "BiasAdd: bias has %lld elements but "
                             "value has %lld channels (dimension %d)", (long long)b.dims[0],
                             (long long)x.dims[cd], cd);
        if (x.dims[cd] < 0)
            x.dims[cd] = b.dims[0];
    }
    return floe_shape_set_output(sc, 0, &x);
}

static floe_status bias_add_grad_shape_fn(floe_shape_ctx *sc) {
    bool nchw;
    floe_shape g = floe_shape_input(sc, 0), out;
    floe_status st = read_format("BiasAddGrad", floe_shape_attrs(sc), &nchw);
    if (st != FLOE_OK || (st = check_rank("BiasAddGrad", g.ndim, nchw)) != FLOE_OK)
        return st;
    memset(&out, 0, sizeof(out));
    out.ndim = 1;
    out.dims[0] = g.ndim < 0 ? -1 : g.dims[nchw ? 1 : g.ndim - 1];
    return floe_shape_set_output(sc, 0, &out);
}

#define TS_NUM "T: {bf16, f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64}"
static const char *const ks_float[] = {"T: {f32, f64}", NULL};
static const char *const attrs_bias[] = {TS_NUM, "data_format: string = \"NHWC\"", NULL};
static const char *const in_bias_add[] = {"value: T", "bias: T", NULL};
static const char *const out_bias_add[] = {"output: T", NULL};
static const char *const in_bias_grad[] = {"out_backprop: T", NULL};

static const floe_op_def op_defs[] = {
    {sizeof(floe_op_def), "BiasAdd", in_bias_add, out_bias_add, attrs_bias, bias_add_shape_fn,
     0, "value + bias along the channel dimension (last for NHWC, 1 for NCHW)."},
    {sizeof(floe_op_def), "BiasAddGrad", in_bias_grad, out_bias_add, attrs_bias,
     bias_add_grad_shape_fn, 0,
     "Sum of out_backprop over every dimension but the channel one: BiasAdd's gradient for "
     "the bias."},
};

static const floe_kernel_def kernel_defs[] = {
    {sizeof(floe_kernel_def), "BiasAdd", "CPU", ks_float, 0, bias_add_create,
     bias_add_compute, NULL, NULL},
    {sizeof(floe_kernel_def), "BiasAddGrad", "CPU", ks_float, 0, bias_add_grad_create,
     bias_add_grad_compute, NULL, NULL},
};

floe_status ops_nn__register_bias(floe_plugin *self) {
    floe_status st = FLOE_OK;
    for (size_t i = 0; st == FLOE_OK && i < 2; i++) {
        st = floe_register_op(self, &op_defs[i]);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &kernel_defs[i]);
    }
    if (st == FLOE_OK)
        st = floe_register_gradient(self, "BiasAdd", bias_add_gradient);
    return st;
}
