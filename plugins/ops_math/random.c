/*
 * random.c - RandomUniform, RandomStandardNormal and TruncatedNormal on CPU, for f32,
 * f64, f16 and bf16 outputs of a shape given as an i32 or i64 vector.
 *
 * The generator is TensorFlow's: Philox4x32-10, a counter-based generator whose
 * 128-bit counter blocks each give four 32-bit words.  The key is "seed" (low, high
 * words) and the counter's upper half "seed2", as in TF's PhiloxRandom(seed, seed2);
 * when both attrs are 0 the kernel picks a random pair once, in create(), so a node is
 * random across sessions but one stream within a session.  With seeds given, a fresh
 * session reproduces the same numbers; each run of a node reserves the counter blocks
 * it uses (atomically, so concurrent runs draw disjoint streams) and the next run
 * continues after them.
 *
 * Output element i belongs to group i / G, G = 4 for 32-bit words per float (f32, f16,
 * bf16) and 2 for f64 (two words per double); group g reads counter block base + g,
 * so the numbers never depend on how the output is split across threads.
 *
 *   uniform    [0, 1): 23 random mantissa bits (52 for f64) under exponent 0, minus 1;
 *              f16 and bf16 take 10 and 7 bits, exact in their type
 *   normal     Box-Muller on pairs of uniforms (the first clamped to >= 1e-7)
 *   truncated  normal values with |x| >= 2 rejected; group g owns the 256 blocks from
 *              base + 256 g (each rejection costs one value; running past 256 blocks,
 *              odds about 10^-1000, reads on into the next group's blocks)
 *
 * Sections: Philox; conversions; distributions per group; the kernel; shape
 * function; definitions and registration.
 */
#include "ops_math-impl.h"

#include <math.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>

#define RANDOM_GRAIN_GROUPS 4096             /* groups per parallel_for chunk */
#define TRUNC_BLOCKS_PER_GROUP 256
#define TRUNC_LIMIT 2.0

/* ---- Philox4x32-10 ------------------------------------------------------------------ */

typedef struct philox_block {
    uint32_t w[4];
} philox_block;

static inline philox_block philox_round(philox_block c, const uint32_t key[2]) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c.w[0], p1 = (uint64_t)0xCD9E8D57u * c.w[2];
    philox_block r;
    r.w[0] = (uint32_t)(p1 >> 32) ^ c.w[1] ^ key[0];
    r.w[1] = (uint32_t)p1;
    r.w[2] = (uint32_t)(p0 >> 32) ^ c.w[3] ^ key[1];
    r.w[3] = (uint32_t)p0;
    return r;
}

/* The four words of counter @ctr under @key (ten rounds, key bumped between them). */
static inline philox_block philox(const uint32_t ctr[4], const uint32_t key_in[2]) {
    philox_block c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    uint32_t key[2] = {key_in[0], key_in[1]};
    for (int r = 0; r < 10; r++) {
        c = philox_round(c, key);
        key[0] += 0x9E3779B9u;
        key[1] += 0xBB67AE85u;
    }
    return c;
}

/* @base + @skip as 128-bit counters (TF's PhiloxRandom::Skip). */
static inline void counter_add(const uint32_t base[4], uint64_t skip, uint32_t out[4]) {
    uint64_t lo = ((uint64_t)base[1] << 32 | base[0]) + skip;
    uint64_t hi = (uint64_t)base[3] << 32 | base[2];
    if (lo < skip)
        hi++;
    out[0] = (uint32_t)lo;
    out[1] = (uint32_t)(lo >> 32);
    out[2] = (uint32_t)hi;
    out[3] = (uint32_t)(hi >> 32);
}

/* ---- Conversions ------------------------------------------------------------------- */

static inline float u32_to_unit_float(uint32_t x) {
    uint32_t v = (x & 0x7fffffu) | 0x3f800000u;
    float f;
    memcpy(&f, &v, sizeof(f));
    return f - 1.0f;
}

static inline double u64_to_unit_double(uint32_t hi, uint32_t lo) {
    uint64_t v = ((uint64_t)(hi & 0xfffffu) << 32 | lo) | 0x3ff0000000000000ull;
    double d;
    memcpy(&d, &v, sizeof(d));
    return d - 1.0;
}

/* IEEE binary16, round to nearest even. */
static uint16_t f32_to_f16(float f) {
    uint32_t x, a, sign, mant, rem;
    int exp;

    memcpy(&x, &f, sizeof(x));
    sign = (x >> 16) & 0x8000u;
    a = x & 0x7fffffffu;
    if (a >= 0x7f800000u)                        /* inf, NaN */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
    if (a >= 0x477ff000u)                        /* rounds past 65504 */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                       /* below 2^-14: subnormal or zero */
        float v;
        memcpy(&v, &a, sizeof(v));
        return (uint16_t)(sign | (uint32_t)lrintf(v * 16777216.0f));
    }
    exp = (int)(a >> 23) - 127 + 15;
    mant = a & 0x7fffffu;
    rem = mant & 0x1fffu;
    x = ((uint32_t)exp << 10) | (mant >> 13);
    if (rem > 0x1000u || (rem == 0x1000u && (x & 1u)))
        x++;
    return (uint16_t)(sign | x);
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t x;
    float f;

    if (exp == 0) {                              /* zero or subnormal: exact in float */
        f = (float)mant * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    x = exp == 31 ? sign | 0x7f800000u | (mant << 13)
                  : sign | ((exp - 15 + 127) << 23) | (mant << 13);
    memcpy(&f, &x, sizeof(f));
    return f;
}

/* bfloat16, round to nearest even (values here are finite). */
static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static float bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, sizeof(f));
    return f;
}

/* ---- Distributions, one group of outputs at a time ------------------------------------ */

typedef enum dist_kind { DIST_UNIFORM, DIST_NORMAL, DIST_TRUNCATED } dist_kind;

typedef struct random_state {
    dist_kind dist;
    floe_dtype dtype;
    uint32_t key[2];
    uint32_t counter[4];
    atomic_uint_fast64_t used;               /* counter blocks taken by earlier runs */
} random_state;

typedef struct fill_args {
    const random_state *s;
    uint32_t start[4];                       /* this run's first counter block */
    void *out;
    int64_t n;
    int group;                               /* outputs per group: 4, or 2 for f64 */
} fill_args;

static inline void box_muller_f(uint32_t x0, uint32_t x1, float *z0, float *z1) {
    float u1 = u32_to_unit_float(x0), v1 = 6.2831853071795864f * u32_to_unit_float(x1), r;
    if (u1 < 1.0e-7f)
        u1 = 1.0e-7f;
    r = sqrtf(-2.0f * logf(u1));
    *z0 = sinf(v1) * r;
    *z1 = cosf(v1) * r;
}

static inline void box_muller_d(const uint32_t w[4], double *z0, double *z1) {
    double u1 = u64_to_unit_double(w[0], w[1]);
    double v1 = 6.283185307179586477 * u64_to_unit_double(w[2], w[3]), r;
    if (u1 < 1.0e-7)
        u1 = 1.0e-7;
    r = sqrt(-2.0 * log(u1));
    *z0 = sin(v1) * r;
    *z1 = cos(v1) * r;
}

/* The float of @v as stored in @dtype (f16/bf16 rounded), stored at element @i. */
static inline float store_f(floe_dtype dtype, void *out, int64_t i, float v) {
    uint16_t h;
    switch (dtype) {
    case FLOE_DTYPE_F16:
        h = f32_to_f16(v);
        ((uint16_t *)out)[i] = h;
        return f16_to_f32(h);
    case FLOE_DTYPE_BF16:
        h = f32_to_bf16(v);
        ((uint16_t *)out)[i] = h;
        return bf16_to_f32(h);
    default:
        ((float *)out)[i] = v;
        return v;
    }
}

/* Group @g of a 32-bit-float output: elements [4g, 4g + cnt). */
static void group_f(const fill_args *a, int64_t g, int64_t i0, int cnt) {
    uint32_t ctr[4];
    float z[4];

    if (a->s->dist == DIST_TRUNCATED) {
        uint64_t j = (uint64_t)g * TRUNC_BLOCKS_PER_GROUP;
        int filled = 0;
        while (filled < cnt) {
            counter_add(a->start, j++, ctr);
            philox_block b = philox(ctr, a->s->key);
            box_muller_f(b.w[0], b.w[1], &z[0], &z[1]);
            box_muller_f(b.w[2], b.w[3], &z[2], &z[3]);
            for (int q = 0; q < 4 && filled < cnt; q++) {
                if (fabsf(z[q]) >= (float)TRUNC_LIMIT)
                    continue;
                /* Check what was stored: rounding to f16 may reach the limit. */
                if (fabsf(store_f(a->s->dtype, a->out, i0 + filled, z[q])) < (float)TRUNC_LIMIT)
                    filled++;
            }
        }
        return;
    }
    counter_add(a->start, (uint64_t)g, ctr);
    philox_block b = philox(ctr, a->s->key);
    if (a->s->dist == DIST_NORMAL) {
        box_muller_f(b.w[0], b.w[1], &z[0], &z[1]);
        box_muller_f(b.w[2], b.w[3], &z[2], &z[3]);
    } else if (a->s->dtype == FLOE_DTYPE_F16) {
        for (int q = 0; q < 4; q++)
            z[q] = (float)(b.w[q] & 0x3ffu) * (1.0f / 1024.0f);
    } else if (a->s->dtype == FLOE_DTYPE_BF16) {
        for (int q = 0; q < 4; q++)
            z[q] = (float)(b.w[q] & 0x7fu) * (1.0f / 128.0f);
    } else {
        for (int q = 0; q < 4; q++)
            z[q] = u32_to_unit_float(b.w[q]);
    }
    for (int q = 0; q < cnt; q++)
        store_f(a->s->dtype, a->out, i0 + q, z[q]);
}

/* Group @g of an f64 output: elements [2g, 2g + cnt). */
static void group_d(const fill_args *a, int64_t g, int64_t i0, int cnt) {
    double *out = a->out, z[2];
    uint32_t ctr[4];

    if (a->s->dist == DIST_TRUNCATED) {
        uint64_t j = (uint64_t)g * TRUNC_BLOCKS_PER_GROUP;
        int filled = 0;
        while (filled < cnt) {
            counter_add(a->start, j++, ctr);
            philox_block b = philox(ctr, a->s->key);
            box_muller_d(b.w, &z[0], &z[1]);
            for (int q = 0; q < 2 && filled < cnt; q++)
                if (fabs(z[q]) < TRUNC_LIMIT)
                    out[i0 + filled++] = z[q];
        }
        return;
    }
    counter_add(a->start, (uint64_t)g, ctr);
    philox_block b = philox(ctr, a->s->key);
    if (a->s->dist == DIST_NORMAL) {
        box_muller_d(b.w, &z[0], &z[1]);
    } else {
        z[0] = u64_to_unit_double(b.w[0], b.w[1]);
        z[1] = u64_to_unit_double(b.w[2], b.w[3]);
    }
    for (int q = 0; q < cnt; q++)
        out[i0 + q] = z[q];
}

static void fill_range(void *arg, int64_t g0, int64_t g1) {
    const fill_args *a = arg;
    for (int64_t g = g0; g < g1; g++) {
        int64_t i0 = g * a->group;
        int cnt = a->n - i0 < a->group ? (int)(a->n - i0) : a->group;
        if (a->group == 2)
            group_d(a, g, i0, cnt);
        else
            group_f(a, g, i0, cnt);
    }
}

/* ---- The kernel ------------------------------------------------------------------------ */

/* A random 64-bit value for unseeded nodes. */
static uint64_t random_u64(void) {
    uint64_t v = 0;
    struct timespec ts;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v) && v != 0)
        return v;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)&v;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return v;
}

static floe_status random_create(floe_kernel_ctx *kc, dist_kind dist, void **state) {
    const floe_attrs *attrs = floe_kernel_attrs(kc);
    int64_t seed = 0, seed2 = 0;
    floe_dtype dtype = FLOE_DTYPE_INVALID;
    random_state *s;
    floe_status st;

    *state = NULL;
    if ((st = floe_attrs_get_int(attrs, "seed", &seed)) != FLOE_OK ||
        (st = floe_attrs_get_int(attrs, "seed2", &seed2)) != FLOE_OK ||
        (st = floe_attrs_get_type(attrs, "dtype", &dtype)) != FLOE_OK)
        return st;
    if (dtype != FLOE_DTYPE_F32 && dtype != FLOE_DTYPE_F64 && dtype != FLOE_DTYPE_F16 &&
        dtype != FLOE_DTYPE_BF16)
        return floe_fail(FLOE_UNIMPLEMENTED, "no CPU kernel for dtype %s",
                         floe_dtype_name(dtype));
    s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "random op: out of memory");
    if (seed == 0 && seed2 == 0) {
        seed = (int64_t)random_u64();
        seed2 = (int64_t)random_u64();
    }
    s->dist = dist;
    s->dtype = dtype;
    s->key[0] = (uint32_t)(uint64_t)seed;
    s->key[1] = (uint32_t)((uint64_t)seed >> 32);
    s->counter[0] = 0;
    s->counter[1] = 0;
    s->counter[2] = (uint32_t)(uint64_t)seed2;
    s->counter[3] = (uint32_t)((uint64_t)seed2 >> 32);
    atomic_init(&s->used, 0);
    *state = s;
    return FLOE_OK;
}

static floe_status uniform_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, DIST_UNIFORM, state);
}
static floe_status normal_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, DIST_NORMAL, state);
}
static floe_status truncated_create(floe_kernel_ctx *kc, void **state) {
    return random_create(kc, DIST_TRUNCATED, state);
}

static void random_destroy(void *state) {
    floe_free(state);
}

/* The "shape" input: a vector of non-negative extents whose product fits int64. */
static floe_status read_shape(const floe_tensor *t, int64_t *dims, int *ndim) {
    int64_t n = floe_tensor_num_elements(t), count = 1;
    floe_dtype dt = floe_tensor_dtype(t);

    *ndim = 0;
    if (floe_tensor_ndim(t) != 1)
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape must be a vector, got rank %d",
                         floe_tensor_ndim(t));
    if (n > FLOE_MAX_DIMS)
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape has %lld dimensions, at most %d",
                         (long long)n, FLOE_MAX_DIMS);
    if (dt != FLOE_DTYPE_I32 && dt != FLOE_DTYPE_I64)
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape must be i32 or i64, got %s",
                         floe_dtype_name(dt));
    if (n > 0 && floe_tensor_data(t) == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape is not in host memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t d = dt == FLOE_DTYPE_I32 ? ((const int32_t *)floe_tensor_data(t))[i]
                                         : ((const int64_t *)floe_tensor_data(t))[i];
        if (d < 0)
            return floe_fail(FLOE_INVALID_ARGUMENT, "shape dimension %lld is %lld, must be >= 0",
                             (long long)i, (long long)d);
        if (d > 0 && count > INT64_MAX / d)
            return floe_fail(FLOE_INVALID_ARGUMENT, "shape's element count overflows int64");
        count *= d;
        dims[i] = d;
    }
    *ndim = (int)n;
    return FLOE_OK;
}

static floe_status random_compute(floe_kernel_ctx *kc, void *state) {
    random_state *s = state;
    int64_t dims[FLOE_MAX_DIMS], ngroups;
    uint64_t blocks, base;
    floe_tensor *shape, *out = NULL;
    fill_args a;
    floe_status st;
    int ndim;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "random op: kernel was not created");
    if ((st = ops_math__kernel_input(kc, 0, FLOE_DTYPE_INVALID, &shape)) != FLOE_OK ||
        (st = read_shape(shape, dims, &ndim)) != FLOE_OK ||
        (st = floe_kernel_alloc_output(kc, 0, dims, ndim, &out)) != FLOE_OK)
        return st;
    a.n = floe_tensor_num_elements(out);
    if (a.n == 0)
        return FLOE_OK;
    a.out = floe_tensor_data(out);
    if (a.out == NULL || floe_tensor_dtype(out) != s->dtype)
        return floe_fail(FLOE_INTERNAL, "random op: output is not a host %s tensor",
                         floe_dtype_name(s->dtype));
    a.s = s;
    a.group = s->dtype == FLOE_DTYPE_F64 ? 2 : 4;
    ngroups = (a.n + a.group - 1) / a.group;
    blocks = (uint64_t)ngroups;
    if (s->dist == DIST_TRUNCATED)
        blocks *= TRUNC_BLOCKS_PER_GROUP;  /* ngroups < 2^62: no overflow */
    base = atomic_fetch_add(&s->used, blocks);
    counter_add(s->counter, base, a.start);
    ops_math__parallel(floe_kernel_threadpool(kc), ngroups, RANDOM_GRAIN_GROUPS, fill_range,
                       &a);
    return FLOE_OK;
}

/* ---- Shape function ----------------------------------------------------------------------- */

static floe_status random_shape_fn(floe_shape_ctx *sc) {
    floe_tensor *value = floe_shape_input_value(sc, 0);
    floe_shape in = floe_shape_input(sc, 0), out;
    floe_status st;
    int ndim;

    memset(&out, 0, sizeof(out));
    out.ndim = -1;
    if (value != NULL) {
        if ((st = read_shape(value, out.dims, &ndim)) != FLOE_OK)
            return st;
        out.ndim = ndim;
    } else if (in.ndim >= 0 && in.ndim != 1) {
        return floe_fail(FLOE_INVALID_ARGUMENT, "shape must be a vector, got rank %d",
                         (int)in.ndim);
    } else if (in.ndim == 1 && in.dims[0] >= 0) {
        if (in.dims[0] > FLOE_MAX_DIMS)
            return floe_fail(FLOE_INVALID_ARGUMENT, "shape has %lld dimensions, at most %d",
                             (long long)in.dims[0], FLOE_MAX_DIMS);
        out.ndim = (int32_t)in.dims[0];
        for (int d = 0; d < out.ndim; d++)
            out.dims[d] = -1;
    }
    return floe_shape_set_output(sc, 0, &out);
}

/* ---- Definitions and registration ------------------------------------------------------------ */

static const char *const random_inputs[] = {"shape: T", NULL};
static const char *const random_outputs[] = {"output: dtype", NULL};
static const char *const random_attrs[] = {"seed: int = 0", "seed2: int = 0",
                                           "dtype: {f16, bf16, f32, f64}", "T: {i32, i64}",
                                           NULL};
static const char *const random_host_memory[] = {"shape", NULL};

#define RANDOM_OP(NAME, DOC)                                                             \
    {sizeof(floe_op_def), NAME, random_inputs, random_outputs, random_attrs,             \
     random_shape_fn, FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT, DOC}
#define RANDOM_KERNEL(NAME, CREATE)                                                      \
    {sizeof(floe_kernel_def), NAME, "CPU", NULL, 0, CREATE, random_compute,               \
     random_destroy, random_host_memory}

static const floe_op_def random_ops[] = {
    RANDOM_OP("RandomUniform", "Uniform random values in [0, 1) (Philox4x32-10; seed, "
                               "seed2 both 0: a random seed per node)."),
    RANDOM_OP("RandomStandardNormal", "Normal random values, mean 0, standard deviation 1 "
                                      "(Philox4x32-10, Box-Muller)."),
    RANDOM_OP("TruncatedNormal", "Normal random values, mean 0, standard deviation 1, "
                                 "redrawn until within 2 standard deviations."),
};

static const floe_kernel_def random_kernels[] = {
    RANDOM_KERNEL("RandomUniform", uniform_create),
    RANDOM_KERNEL("RandomStandardNormal", normal_create),
    RANDOM_KERNEL("TruncatedNormal", truncated_create),
};

floe_status ops_math__register_random(floe_plugin *self) {
    for (size_t i = 0; i < sizeof(random_ops) / sizeof(random_ops[0]); i++) {
        floe_status st = floe_register_op(self, &random_ops[i]);
        if (st == FLOE_OK)
            st = floe_register_kernel(self, &random_kernels[i]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}
