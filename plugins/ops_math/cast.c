/*
 * cast.c - TensorFlow's Cast op (attrs SrcT, DstT, Truncate) on CPU, between bool,
 * the signed and unsigned integers of 8 to 64 bits, f16, bf16, f32 and f64.
 *
 * Sections: half-precision conversions written by hand; loading a source element as
 * one of three canonical values (double for floats, int64 for signed integers and
 * bool, uint64 for u64) and storing it as the destination; one generated loop per
 * (source, destination) pair; vectorising fast paths between f32 and f16/bf16; the
 * kernel; the op definition.
 *
 * Conversion rules (all defined behaviour, whatever the input):
 *  - float -> narrower float rounds to nearest, ties to even, with overflow to +-inf,
 *    gradual underflow into subnormals, NaN kept NaN (quiet, sign and top payload
 *    bits kept).  With Truncate=true the dropped mantissa bits are discarded instead
 *    (round toward zero; overflow then gives the largest finite value).
 *  - integer -> float rounds to nearest even in one step (no double rounding).
 *  - float -> integer truncates toward zero and SATURATES: NaN gives 0, values above
 *    the destination's range its maximum, below its minimum (TensorFlow's x86 build
 *    leaves this to the hardware; XLA and JAX saturate as here).
 *  - integer -> integer keeps the low bits (two's complement wrap-around), as C++
 *    static_cast does in TensorFlow.
 *  - anything -> bool is "not zero" (NaN is true); bool -> anything is 0 or 1.
 * SrcT == DstT forwards the input unchanged.
 */
#include "ops_math-impl.h"

#include <math.h>
#include <stdint.h>

/* ---- Half-precision conversions ---------------------------------------------------- */

/* Rounds @d to a binary float of @ebits exponent and @mbits mantissa bits (f32: 8/23,
 * f16: 5/10, bf16: 8/7), returning its bit pattern. */
static inline uint32_t narrow_float_bits(double d, int ebits, int mbits, int truncate) {
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    const uint32_t sign = (uint32_t)(u >> 63) << (ebits + mbits);
    const int exp = (int)((u >> 52) & 0x7ff);
    const uint64_t man = u & ((UINT64_C(1) << 52) - 1);
    const uint32_t exp_max = (UINT32_C(1) << ebits) - 1;
    const int bias = (1 << (ebits - 1)) - 1;

    if (exp == 0x7ff) {
        if (man == 0)
            return sign | (exp_max << mbits);
        return sign | (exp_max << mbits) | (UINT32_C(1) << (mbits - 1)) |
               (uint32_t)(man >> (52 - mbits));
    }
    if (exp == 0)  /* zero or a double subnormal: far below every target's range */
        return sign;

    const uint64_t sig = man | (UINT64_C(1) << 52);   /* 53 bits, value sig * 2^(e-52) */
    int te = exp - 1023 + bias;                         /* target biased exponent */
    if (te >= (int)exp_max)
        return truncate ? sign | ((exp_max << mbits) - 1) : sign | (exp_max << mbits);
    int shift = 52 - mbits;
    if (te <= 0) {          /* subnormal in the target */
        shift += 1 - te;
        if (shift > 53)     /* below half the smallest subnormal */
            return sign;
        te = 0;
    }
    uint64_t q = sig >> shift;
    const uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
    const uint64_t half = UINT64_C(1) << (shift - 1);
    if (!truncate && (rem > half || (rem == half && (q & 1))))
        q++;
    /* For normals q carries the implicit bit, which adding the exponent field absorbs;
     * a mantissa that rounds up to 2^(mbits+1) carries into the exponent (to inf at
     * the top), and a subnormal that rounds up to 2^mbits becomes the smallest normal. */
    uint32_t bits = te > 0 ? ((uint32_t)(te - 1) << mbits) + (uint32_t)q : (uint32_t)q;
    return sign | bits;
}

static inline uint16_t double_to_f16(double d, int truncate) {
    return (uint16_t)narrow_float_bits(d, 5, 10, truncate);
}

static inline uint16_t double_to_bf16(double d, int truncate) {
    return (uint16_t)narrow_float_bits(d, 8, 7, truncate);
}

static inline float double_to_f32(double d, int truncate) {
    if (!truncate)
        return (float)d;    /* IEEE conversion: nearest even, overflow to inf */
    uint32_t bits = narrow_float_bits(d, 8, 23, 1);
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static inline double f16_to_double(uint16_t h) {
    const int exp = (h >> 10) & 0x1f;
    const uint64_t man = h & 0x3ff;
    const uint64_t sign = (uint64_t)(h >> 15) << 63;
    uint64_t u;
    double d;

    if (exp == 0) {         /* zero or subnormal: man * 2^-24, exact */
        d = (double)man * 0x1p-24;
        return (h >> 15) ? -d : d;
    }
    if (exp == 0x1f)
        u = sign | (UINT64_C(0x7ff) << 52) | (man << 42);
    else
        u = sign | ((uint64_t)(exp - 15 + 1023) << 52) | (man << 42);
    memcpy(&d, &u, sizeof(d));
    return d;
}

static inline double bf16_to_double(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return (double)f;
}

/* Integers of more than 53 bits, made exactly representable as doubles by rounding
 * to odd at 53 bits: a later rounding to <= 51 bits then equals a direct one. */
static inline double u64_to_double_odd(uint64_t m) {
    if (m >> 53) {
        int k = 64 - __builtin_clzll(m) - 53;
        uint64_t mask = (UINT64_C(1) << k) - 1;
        m = (m & mask) ? (m & ~mask) | (UINT64_C(1) << k) : m;
    }
    return (double)m;
}

static inline double i64_to_double_odd(int64_t v) {
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    double d = u64_to_double_odd(m);
    return v < 0 ? -d : d;
}

/* ---- Saturating float -> integer --------------------------------------------------- */

/* @d truncated toward zero and clamped to [lo, hi] (a range within int64's); NaN -> 0.
 * The comparisons are exact in double: hi + 1 and lo - 1 are powers of two or
 * round to the range end, and every double strictly between them truncates into it. */
static inline int64_t sat_to_i64(double d, int64_t lo, int64_t hi) {
    if (d != d)
        return 0;
    if (d >= (double)hi + 1.0)
        return hi;
    if (d <= (double)lo - 1.0)
        return lo;
    return (int64_t)d;
}

static inline uint64_t sat_to_u64(double d) {
    if (d != d || d <= 0.0)
        return 0;
    if (d >= 18446744073709551616.0)
        return UINT64_MAX;
    return (uint64_t)d;
}

/* ---- Loads and stores --------------------------------------------------------------- */

/* Element types. */
typedef uint16_t f16_t;
typedef uint16_t bf16_t;
typedef float f32_t;
typedef double f64_t;
typedef int8_t i8_t;
typedef int16_t i16_t;
typedef int32_t i32_t;
typedef int64_t i64_t;
typedef uint8_t u8_t;
typedef uint16_t u16_t;
typedef uint32_t u32_t;
typedef uint64_t u64_t;
typedef uint8_t b8_t;     /* bool (the name `bool` is a macro) */

/* Canonical value kind of each source: F double, I int64, U uint64. */
#define KIND_f16 F
#define KIND_bf16 F
#define KIND_f32 F
#define KIND_f64 F
#define KIND_i8 I
#define KIND_i16 I
#define KIND_i32 I
#define KIND_i64 I
#define KIND_u8 I
#define KIND_u16 I
#define KIND_u32 I
#define KIND_u64 U
#define KIND_b8 I

#define LOAD_f16(x) f16_to_double(x)
#define LOAD_bf16(x) bf16_to_double(x)
#define LOAD_f32(x) ((double)(x))
#define LOAD_f64(x) (x)
#define LOAD_i8(x) ((int64_t)(x))
#define LOAD_i16(x) ((int64_t)(x))
#define LOAD_i32(x) ((int64_t)(x))
#define LOAD_i64(x) (x)
#define LOAD_u8(x) ((int64_t)(x))
#define LOAD_u16(x) ((int64_t)(x))
#define LOAD_u32(x) ((int64_t)(x))
#define LOAD_u64(x) (x)
#define LOAD_b8(x) ((int64_t)((x) != 0))

/* STORE_<dst>_<kind>(v, trunc): a canonical value as the destination type. */
#define STORE_f16_F(v, t) double_to_f16(v, t)
#define STORE_f16_I(v, t) double_to_f16(i64_to_double_odd(v), 0)
#define STORE_f16_U(v, t) double_to_f16(u64_to_double_odd(v), 0)
#define STORE_bf16_F(v, t) double_to_bf16(v, t)
#define STORE_bf16_I(v, t) double_to_bf16(i64_to_double_odd(v), 0)
#define STORE_bf16_U(v, t) double_to_bf16(u64_to_double_odd(v), 0)
#define STORE_f32_F(v, t) double_to_f32(v, t)
#define STORE_f32_I(v, t) ((float)(v))
#define STORE_f32_U(v, t) ((float)(v))
#define STORE_f64_F(v, t) (v)
#define STORE_f64_I(v, t) ((double)(v))
#define STORE_f64_U(v, t) ((double)(v))
#define STORE_i8_F(v, t) ((int8_t)sat_to_i64(v, INT8_MIN, INT8_MAX))
#define STORE_i16_F(v, t) ((int16_t)sat_to_i64(v, INT16_MIN, INT16_MAX))
#define STORE_i32_F(v, t) ((int32_t)sat_to_i64(v, INT32_MIN, INT32_MAX))
#define STORE_i64_F(v, t) (sat_to_i64(v, INT64_MIN, INT64_MAX))
#define STORE_u8_F(v, t) ((uint8_t)sat_to_i64(v, 0, UINT8_MAX))
#define STORE_u16_F(v, t) ((uint16_t)sat_to_i64(v, 0, UINT16_MAX))
#define STORE_u32_F(v, t) ((uint32_t)sat_to_i64(v, 0, UINT32_MAX))
#define STORE_u64_F(v, t) (sat_to_u64(v))
/* Integer to integer keeps the low bits (conversion to a signed type is modulo 2^N
 * with GCC and Clang). */
#define STORE_i8_I(v, t) ((int8_t)(uint64_t)(v))
#define STORE_i16_I(v, t) ((int16_t)(uint64_t)(v))
#define STORE_i32_I(v, t) ((int32_t)(uint64_t)(v))
#define STORE_i64_I(v, t) (v)
#define STORE_u8_I(v, t) ((uint8_t)(uint64_t)(v))
#define STORE_u16_I(v, t) ((uint16_t)(uint64_t)(v))
#define STORE_u32_I(v, t) ((uint32_t)(uint64_t)(v))
#define STORE_u64_I(v, t) ((uint64_t)(v))
#define STORE_i8_U(v, t) ((int8_t)(v))
#define STORE_i16_U(v, t) ((int16_t)(v))
#define STORE_i32_U(v, t) ((int32_t)(v))
#define STORE_i64_U(v, t) ((int64_t)(v))
#define STORE_u8_U(v, t) ((uint8_t)(v))
#define STORE_u16_U(v, t) ((uint16_t)(v))
#define STORE_u32_U(v, t) ((uint32_t)(v))
#define STORE_u64_U(v, t) (v)
#define STORE_b8_F(v, t) ((uint8_t)((v) != 0))
#define STORE_b8_I(v, t) ((uint8_t)((v) != 0))
#define STORE_b8_U(v, t) ((uint8_t)((v) != 0))

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* ---- One loop per pair ------------------------------------------------------------ */

typedef void (*cast_fn)(const void *in, void *out, int64_t n, int truncate);

#define DEFINE_CAST(D, S)                                                              \
    static void cast_##S##_to_##D(const void *in_, void *out_, int64_t n, int trunc) { \
        const S##_t *restrict in = in_;                                                \
        D##_t *restrict out = out_;                                                    \
        for (int64_t i = 0; i < n; i++)                                                \
            out[i] = CAT(STORE_##D##_, KIND_##S)(LOAD_##S(in[i]), trunc);              \
    }

#define FOR_EACH_SRC(X, D)                                                             \
    X(D, f16) X(D, bf16) X(D, f32) X(D, f64) X(D, i8) X(D, i16) X(D, i32) X(D, i64)   \
    X(D, u8) X(D, u16) X(D, u32) X(D, u64) X(D, b8)
#define FOR_EACH_PAIR(X)                                                               \
    FOR_EACH_SRC(X, f16) FOR_EACH_SRC(X, bf16) FOR_EACH_SRC(X, f32)                    \
    FOR_EACH_SRC(X, f64) FOR_EACH_SRC(X, i8) FOR_EACH_SRC(X, i16)                      \
    FOR_EACH_SRC(X, i32) FOR_EACH_SRC(X, i64) FOR_EACH_SRC(X, u8)                      \
    FOR_EACH_SRC(X, u16) FOR_EACH_SRC(X, u32) FOR_EACH_SRC(X, u64)                     \
    FOR_EACH_SRC(X, b8)

FOR_EACH_PAIR(DEFINE_CAST)

#define DTYPE_f16 FLOE_DTYPE_F16
#define DTYPE_bf16 FLOE_DTYPE_BF16
#define DTYPE_f32 FLOE_DTYPE_F32
#define DTYPE_f64 FLOE_DTYPE_F64
#define DTYPE_i8 FLOE_DTYPE_I8
#define DTYPE_i16 FLOE_DTYPE_I16
#define DTYPE_i32 FLOE_DTYPE_I32
#define DTYPE_i64 FLOE_DTYPE_I64
#define DTYPE_u8 FLOE_DTYPE_U8
#define DTYPE_u16 FLOE_DTYPE_U16
#define DTYPE_u32 FLOE_DTYPE_U32
#define DTYPE_u64 FLOE_DTYPE_U64
#define DTYPE_b8 FLOE_DTYPE_BOOL

typedef struct cast_entry {
    floe_dtype src, dst;
    cast_fn fn;
} cast_entry;

#define CAST_ENTRY(D, S) {DTYPE_##S, DTYPE_##D, cast_##S##_to_##D},
static const cast_entry cast_table[] = {FOR_EACH_PAIR(CAST_ENTRY)};

/* ---- Fast paths between f32 and f16/bf16 -------------------------------------------
 * The conversions mixed-precision code runs most, in 32-bit integer arithmetic and
 * selects that vectorise (after F. Giesen's float_to_half_fast3_rtne / half_to_float),
 * giving bit for bit the results of the general functions above. */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline uint16_t f32_to_bf16_rne(float f) {
    const uint32_t u = f32_bits(f);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

static inline uint16_t f32_to_bf16_trunc(float f) {
    const uint32_t u = f32_bits(f);
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : u >> 16);
}

static inline uint16_t f32_to_f16_rne(float f) {
    const uint32_t u0 = f32_bits(f), sign = (u0 >> 16) & 0x8000u, u = u0 & 0x7fffffffu;
    /* subnormal results: adding 0.5 aligns the f16 subnormal unit with the f32 ulp,
     * so the FPU rounds to nearest even for us */
    const uint32_t sub = f32_bits(bits_f32(u) + 0.5f) - f32_bits(0.5f);
    /* normal results: rebias, round to nearest even at bit 13 */
    const uint32_t nrm = (u + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13;
    const uint32_t big = u > 0x7f800000u ? 0x7e00u | ((u >> 13) & 0x3ffu) : 0x7c00u;
    const uint32_t r = u >= (uint32_t)(127 + 16) << 23 ? big
                       : u < (uint32_t)113 << 23    ? sub
                                                    : nrm;
    return (uint16_t)(sign | r);
}

static inline float f16_to_f32(uint16_t h) {
    const uint32_t o = (uint32_t)(h & 0x7fffu) << 13, exp = o & (0x7c00u << 13);
    const uint32_t nrm = o + ((uint32_t)(127 - 15) << 23);
    const uint32_t special = nrm + ((uint32_t)(128 - 16) << 23);          /* inf, NaN */
    const uint32_t sub = f32_bits(bits_f32(nrm + (1u << 23)) - bits_f32((uint32_t)113 << 23));
    const uint32_t r = exp == 0x7c00u << 13 ? special : exp == 0 ? sub : nrm;
    return bits_f32(r | (uint32_t)(h & 0x8000u) << 16);
}

static void cast_f32_to_bf16_fast(const void *in_, void *out_, int64_t n, int trunc) {
    const float *restrict in = in_;
    uint16_t *restrict out = out_;
    if (trunc) {
        for (int64_t i = 0; i < n; i++)
            out[i] = f32_to_bf16_trunc(in[i]);
    } else {
        for (int64_t i = 0; i < n; i++)
            out[i] = f32_to_bf16_rne(in[i]);
    }
}

static void cast_bf16_to_f32_fast(const void *in_, void *out_, int64_t n, int trunc) {
    const uint16_t *restrict in = in_;
    uint32_t *restrict out = out_;
    for (int64_t i = 0; i < n; i++)
        out[i] = (uint32_t)in[i] << 16;
}

static void cast_f32_to_f16_fast(const void *in_, void *out_, int64_t n, int trunc) {
    const float *restrict in = in_;
    uint16_t *restrict out = out_;
    for (int64_t i = 0; i < n; i++)
        out[i] = f32_to_f16_rne(in[i]);
}

static void cast_f16_to_f32_fast(const void *in_, void *out_, int64_t n, int trunc) {
    const uint16_t *restrict in = in_;
    float *restrict out = out_;
    for (int64_t i = 0; i < n; i++)
        out[i] = f16_to_f32(in[i]);
}

static cast_fn find_cast(floe_dtype src, floe_dtype dst, int truncate) {
    if (src == FLOE_DTYPE_F32 && dst == FLOE_DTYPE_BF16)
        return cast_f32_to_bf16_fast;
    if (src == FLOE_DTYPE_BF16 && dst == FLOE_DTYPE_F32)
        return cast_bf16_to_f32_fast;
    if (src == FLOE_DTYPE_F32 && dst == FLOE_DTYPE_F16 && !truncate)
        return cast_f32_to_f16_fast;
    if (src == FLOE_DTYPE_F16 && dst == FLOE_DTYPE_F32)
        return cast_f16_to_f32_fast;
    for (size_t i = 0; i < sizeof(cast_table) / sizeof(cast_table[0]); i++)
        if (cast_table[i].src == src && cast_table[i].dst == dst)
            return cast_table[i].fn;
    return NULL;
}

/* ---- Kernel ------------------------------------------------------------------------ */

typedef struct cast_state {
    floe_dtype src, dst;
    int truncate;
    cast_fn fn;
} cast_state;

typedef struct cast_args {
    cast_fn fn;
    const char *in;
    char *out;
    size_t es, ed;
    int truncate;
} cast_args;

static void cast_range(void *arg, int64_t begin, int64_t end) {
    const cast_args *p = arg;
    p->fn(p->in + (size_t)begin * p->es, p->out + (size_t)begin * p->ed, end - begin,
          p->truncate);
}

static floe_status cast_create(floe_kernel_ctx *kc, void **state) {
    const floe_attrs *a = floe_kernel_attrs(kc);
    floe_dtype src = FLOE_DTYPE_INVALID, dst = FLOE_DTYPE_INVALID;
    int truncate = 0;
    floe_status st;

    *state = NULL;
    if ((st = floe_attrs_get_type(a, "SrcT", &src)) != FLOE_OK ||
        (st = floe_attrs_get_type(a, "DstT", &dst)) != FLOE_OK)
        return floe_fail(st, "Cast: missing SrcT or DstT");
    if (floe_attrs_type(a, "Truncate") == FLOE_ATTR_BOOL &&
        (st = floe_attrs_get_bool(a, "Truncate", &truncate)) != FLOE_OK)
        return st;
    cast_fn fn = find_cast(src, dst, truncate);
    if (fn == NULL && src != dst)
        return floe_fail(FLOE_UNIMPLEMENTED, "Cast: no CPU kernel from %s to %s",
                         floe_dtype_name(src), floe_dtype_name(dst));
    cast_state *s = floe_alloc(sizeof(*s), 0);
    if (s == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "Cast: out of memory");
    s->src = src;
    s->dst = dst;
    s->truncate = truncate != 0;
    s->fn = fn;
    *state = s;
    return FLOE_OK;
}

static void cast_destroy(void *state) {
    floe_free(state);
}

static floe_status cast_compute(floe_kernel_ctx *kc, void *state) {
    const cast_state *s = state;
    floe_tensor *x, *y = NULL;
    floe_status st;

    if (s == NULL)
        return floe_fail(FLOE_INTERNAL, "Cast: kernel was not created");
    if ((st = ops_math__kernel_input(kc, 0, s->src, &x)) != FLOE_OK)
        return st;
    if (s->src == s->dst)
        return floe_kernel_set_output(kc, 0, x);
    st = floe_kernel_alloc_output(kc, 0, floe_tensor_shape(x), floe_tensor_ndim(x), &y);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(x);
    if (n == 0)
        return FLOE_OK;
    cast_args args = {s->fn, floe_tensor_data(x), floe_tensor_data(y),
                      floe_dtype_size(s->src), floe_dtype_size(s->dst), s->truncate};
    if (args.out == NULL || floe_tensor_dtype(y) != s->dst)
        return floe_fail(FLOE_INTERNAL, "Cast: output is not a host %s tensor",
                         floe_dtype_name(s->dst));
    ops_math__parallel(floe_kernel_threadpool(kc), n, OPS_MATH_GRAIN, cast_range, &args);
    return FLOE_OK;
}

/* ---- Op definition ------------------------------------------------------------------ */

#define CAST_TYPES "{f16, bf16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, bool}"

static const char *const cast_inputs[] = {"x: SrcT", NULL};
static const char *const cast_outputs[] = {"y: DstT", NULL};
static const char *const cast_attrs[] = {"SrcT: " CAST_TYPES, "DstT: " CAST_TYPES,
                                         "Truncate: bool = false", NULL};

static const floe_op_def cast_op = {
    sizeof(floe_op_def), "Cast", cast_inputs, cast_outputs, cast_attrs,
    ops_math__unchanged_shape_fn, 0,
    "Converts x to DstT: floats round to nearest even (Truncate: toward zero), "
    "float to integer truncates and saturates (NaN gives 0), integers wrap."};

static const floe_kernel_def cast_kernel = {
    sizeof(floe_kernel_def), "Cast", "CPU", NULL, 0, cast_create, cast_compute, cast_destroy,
    NULL};

floe_status ops_math__register_cast(floe_plugin *self) {
    floe_status st = floe_register_op(self, &cast_op);
    if (st != FLOE_OK)
        return st;
    return floe_register_kernel(self, &cast_kernel);
}
