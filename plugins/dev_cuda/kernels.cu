/*
 * kernels.cu - Floe's own CUDA kernels and their C launchers (kernels-impl.h).
 *
 * Every kernel is a grid-stride loop over its output (so any size runs with a bounded
 * grid) templated on the element type; the launchers dispatch on the floe_dtype and
 * return cudaGetLastError().  Index plans (broadcasting, reductions, transposes) come
 * from bcast.c, collapsed on the host, and are passed by value.
 *
 * Sections: launch helpers; elementwise; reductions; bias, cast, fill, transpose;
 * softmax cross-entropy; optimizers; pooling; padding; batch normalisation.
 */
#include "kernels-impl.h"

#include <math.h>
#include <stdint.h>

/* FLOE_LAUNCH(grid, block, stream, kernel)(args...) launches @kernel; FLOE_LAUNCH_SYNC
 * marks kernels whose threads meet at __syncthreads().  On a GPU both are kernel<<<>>>;
 * the host emulator (emu/device.h, included first when FLOE_CUDA_EMU is defined) runs
 * the threads of a FLOE_LAUNCH_SYNC block as fibers so that they can wait for each other. */
#ifndef FLOE_CUDA_EMU
#  include <cuda_runtime.h>
#  define FLOE_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#  define FLOE_LAUNCH_SYNC FLOE_LAUNCH
#endif

/* ---- Launch helpers ----------------------------------------------------------------- */

namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
    int64_t b = (n + kThreads - 1) / kThreads;
    if (b < 1)
        b = 1;
    return (unsigned)(b > 65535 ? 65535 : b);
}

#define GRID_LOOP(i, n)                                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);               \
         i += (int64_t)blockDim.x * gridDim.x)

template <typename F>
int by_dtype(int dtype, F f) {
    switch (dtype) {
    case FLOE_DTYPE_F32: return f((float)0);
    case FLOE_DTYPE_F64: return f((double)0);
    case FLOE_DTYPE_I32: return f((int32_t)0);
    case FLOE_DTYPE_I64: return f((int64_t)0);
    default: return (int)cudaErrorInvalidValue;
    }
}

template <typename F>
int by_float(int dtype, F f) {
    switch (dtype) {
    case FLOE_DTYPE_F32: return f((float)0);
    case FLOE_DTYPE_F64: return f((double)0);
    default: return (int)cudaErrorInvalidValue;
    }
}

inline int launched() {
    return (int)cudaGetLastError();
}

/* ---- Elementwise --------------------------------------------------------------------- */

template <typename T>
__device__ inline T bin(int op, T a, T b) {
    switch (op) {
    case DC_ADD: return a + b;
    case DC_SUB: return a - b;
    case DC_MUL: return a * b;
    case DC_DIV: return a / b;
    case DC_MAX: return (a != a || a > b) ? a : b;    /* NaN propagates */
    case DC_MIN: return (a != a || a < b) ? a : b;
    case DC_SQDIFF: return (a - b) * (a - b);
    case DC_RELU_GRAD: return b > T(0) ? a : T(0);
    case DC_RELU6_GRAD: return (b > T(0) && b < T(6)) ? a : T(0);
    default: return T(0);
    }
}

/* Integer division by zero must not trap: 0, as the CPU kernels avoid UB likewise. */
template <>
__device__ inline int32_t bin<int32_t>(int op, int32_t a, int32_t b) {
    switch (op) {
    case DC_ADD: return (int32_t)((uint32_t)a + (uint32_t)b);
    case DC_SUB: return (int32_t)((uint32_t)a - (uint32_t)b);
    case DC_MUL: return (int32_t)((uint32_t)a * (uint32_t)b);
    case DC_DIV: return b == 0 ? 0 : (b == -1 ? (int32_t)(0u - (uint32_t)a) : a / b);
    case DC_MAX: return a > b ? a : b;
    case DC_MIN: return a < b ? a : b;
    case DC_SQDIFF: return (int32_t)((uint32_t)(a - b) * (uint32_t)(a - b));
    default: return 0;
    }
}

template <>
__device__ inline int64_t bin<int64_t>(int op, int64_t a, int64_t b) {
    switch (op) {
    case DC_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case DC_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case DC_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case DC_DIV: return b == 0 ? 0 : (b == -1 ? (int64_t)(0ull - (uint64_t)a) : a / b);
    case DC_MAX: return a > b ? a : b;
    case DC_MIN: return a < b ? a : b;
    case DC_SQDIFF: return (int64_t)((uint64_t)(a - b) * (uint64_t)(a - b));
    default: return 0;
    }
}

template <typename T>
__global__ void binary_flat(int op, int64_t n, const T *x, int64_t xs, const T *y, int64_t ys,
                            T *z) {
    GRID_LOOP(i, n) z[i] = bin<T>(op, x[i * xs], y[i * ys]);
}

template <typename T>
__global__ void binary_bcast(int op, dev_cuda__bcast p, const T *x, const T *y, T *z) {
    GRID_LOOP(i, p.n) {
        int64_t rem = i, xo = 0, yo = 0;
        for (int d = p.ndim - 1; d >= 0; d--) {
            int64_t c = rem % p.dims[d];
            rem /= p.dims[d];
            xo += c * p.xstride[d];
            yo += c * p.ystride[d];
        }
        z[i] = bin<T>(op, x[xo], y[yo]);
    }
}

template <typename T>
__device__ inline T un(int op, T a) {
    switch (op) {
    case DC_NEG: return -a;
    case DC_ABS: return a < T(0) ? -a : a;
    case DC_EXP: return exp(a);
    case DC_LOG: return log(a);
    case DC_SQRT: return sqrt(a);
    case DC_RSQRT: return T(1) / sqrt(a);
    case DC_SQUARE: return a * a;
    case DC_RELU: return a > T(0) ? a : (a != a ? a : T(0));
    case DC_RELU6: return a != a ? a : (a < T(0) ? T(0) : (a > T(6) ? T(6) : a));
    /* in double: f32 sigmoid keeps its subnormal results below -88 (exp(88) overflows
     * f32), and tanh stays within the CPU kernel's 2 ulp */
    case DC_SIGMOID: return (T)(1.0 / (1.0 + exp(-(double)a)));
    case DC_TANH: return (T)tanh((double)a);
    case DC_SIGN: return a > T(0) ? T(1) : (a < T(0) ? T(-1) : a);
    case DC_SIN: return sin(a);
    case DC_COS: return cos(a);
    case DC_LOG1P: return log1p(a);
    case DC_SOFTPLUS: return a > T(0) ? a + log1p(exp(-a)) : log1p(exp(a));
    default: return T(0);
    }
}

/* Integer arithmetic wraps (two's complement) as in the CPU kernels, through the
 * unsigned type: signed overflow is undefined in device code too. */
template <typename T> struct Unsigned { using type = T; };   /* floats: unchanged */
template <> struct Unsigned<int32_t> { using type = uint32_t; };
template <> struct Unsigned<int64_t> { using type = uint64_t; };

template <typename T>
__device__ inline T wrap_add(T a, T b) {
    using U = typename Unsigned<T>::type;
    return (T)((U)a + (U)b);
}

template <typename T>
__device__ inline T wrap_mul(T a, T b) {
    using U = typename Unsigned<T>::type;
    return (T)((U)a * (U)b);
}

template <typename T>
__device__ inline T un_int(int op, T a) {
    using U = typename Unsigned<T>::type;
    switch (op) {
    case DC_NEG: return (T)((U)0 - (U)a);
    case DC_ABS: return a < 0 ? (T)((U)0 - (U)a) : a;
    case DC_SQUARE: return wrap_mul(a, a);
    case DC_SIGN: return a > 0 ? 1 : (a < 0 ? -1 : 0);
    default: return 0;
    }
}

template <typename T>
__global__ void unary_kernel(int op, int64_t n, const T *x, T *y) {
    GRID_LOOP(i, n) y[i] = un<T>(op, x[i]);
}

template <typename T>
__global__ void unary_int_kernel(int op, int64_t n, const T *x, T *y) {
    GRID_LOOP(i, n) y[i] = un_int<T>(op, x[i]);
}

/* ---- Reductions -------------------------------------------------------------------- */

template <typename T>
struct Acc {
    using type = T;
};
template <>
struct Acc<float> {
    using type = double; /* f32 sums accumulate in double, as close to the CPU as it gets */
};

template <typename A>
__device__ inline A red_init(int op) {
    switch (op) {
    case DC_PROD: return A(1);
    case DC_RMAX: return (A)(-INFINITY);
    case DC_RMIN: return (A)(INFINITY);
    default: return A(0);
    }
}

template <>
__device__ inline int32_t red_init<int32_t>(int op) {
    return op == DC_PROD ? 1 : op == DC_RMAX ? INT32_MIN : op == DC_RMIN ? INT32_MAX : 0;
}
template <>
__device__ inline int64_t red_init<int64_t>(int op) {
    return op == DC_PROD ? 1 : op == DC_RMAX ? INT64_MIN : op == DC_RMIN ? INT64_MAX : 0;
}

template <typename A>
__device__ inline A red_step(int op, A acc, A v) {
    switch (op) {
    case DC_PROD: return acc * v;
    case DC_RMAX: return (v != v || v > acc) ? v : acc;
    case DC_RMIN: return (v != v || v < acc) ? v : acc;
    default: return acc + v;
    }
}

template <typename A>
__device__ inline A red_step_int(int op, A acc, A v) {
    switch (op) {
    case DC_PROD: return wrap_mul(acc, v);
    case DC_RMAX: return v > acc ? v : acc;
    case DC_RMIN: return v < acc ? v : acc;
    default: return wrap_add(acc, v);
    }
}

template <>
__device__ inline int32_t red_step<int32_t>(int op, int32_t acc, int32_t v) {
    return red_step_int(op, acc, v);
}

template <>
__device__ inline int64_t red_step<int64_t>(int op, int64_t acc, int64_t v) {
    return red_step_int(op, acc, v);
}

__device__ inline int64_t keep_offset(const dev_cuda__reduce &p, int64_t o) {
    int64_t off = 0;
    for (int d = p.nkeep - 1; d >= 0; d--) {
        off += (o % p.keep_dims[d]) * p.keep_stride[d];
        o /= p.keep_dims[d];
    }
    return off;
}

__device__ inline int64_t red_offset(const dev_cuda__reduce &p, int64_t r) {
    int64_t off = 0;
    for (int d = p.nred_dims - 1; d >= 0; d--) {
        off += (r % p.red_dims[d]) * p.red_stride[d];
        r /= p.red_dims[d];
    }
    return off;
}

template <typename T, typename A>
__device__ inline T red_finish(int op, A acc, int64_t nred) {
    if (op == DC_MEAN)
        return nred > 0 ? (T)(acc / (A)nred) : (T)NAN; /* mean of nothing */
    return (T)acc;
}

template <>
__device__ inline int32_t red_finish<int32_t, int32_t>(int op, int32_t acc, int64_t nred) {
    return op == DC_MEAN ? (nred > 0 ? (int32_t)(acc / nred) : 0) : acc;
}
template <>
__device__ inline int64_t red_finish<int64_t, int64_t>(int op, int64_t acc, int64_t nred) {
    return op == DC_MEAN ? (nred > 0 ? acc / nred : 0) : acc;
}

/* One thread per output: for many outputs with short reductions. */
template <typename T>
__global__ void reduce_thread(int op, dev_cuda__reduce p, const T *x, T *y) {
    using A = typename Acc<T>::type;
    GRID_LOOP(o, p.nout) {
        const T *base = x + keep_offset(p, o);
        A acc = red_init<A>(op);
        for (int64_t r = 0; r < p.nred; r++)
            acc = red_step<A>(op, acc, (A)base[red_offset(p, r)]);
        y[o] = red_finish<T, A>(op, acc, p.nred);
    }
}

/* One block per output: for long reductions. */
template <typename T>
__global__ void reduce_block(int op, dev_cuda__reduce p, const T *x, T *y) {
    using A = typename Acc<T>::type;
    __shared__ A part[kThreads];
    for (int64_t o = blockIdx.x; o < p.nout; o += gridDim.x) {
        const T *base = x + keep_offset(p, o);
        A acc = red_init<A>(op);
        for (int64_t r = threadIdx.x; r < p.nred; r += blockDim.x)
            acc = red_step<A>(op, acc, (A)base[red_offset(p, r)]);
        part[threadIdx.x] = acc;
        __syncthreads();
        for (int w = kThreads / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w)
                part[threadIdx.x] = red_step<A>(op, part[threadIdx.x], part[threadIdx.x + w]);
            __syncthreads();
        }
        if (threadIdx.x == 0)
            y[o] = red_finish<T, A>(op, part[0], p.nred);
        __syncthreads();
    }
}

/* ---- Bias, cast, fill, transpose ---------------------------------------------------------- */

template <typename T>
__global__ void bias_add_kernel(int64_t n, int64_t c, int64_t inner, const T *x, const T *b, T *y) {
    GRID_LOOP(i, n) y[i] = bin<T>(DC_ADD, x[i], b[(i / inner) % c]);
}

template <typename D, typename S>
__device__ inline D convert(S v) {
    return (D)v;
}

/* Float to integer: truncate, saturate, NaN -> 0 (the CPU kernel's rule). */
template <typename D>
__device__ inline D float_to_int(double v, double lo, double hi) {
    if (v != v)
        return 0;
    if (v <= lo)
        return (D)lo;
    if (v >= hi)
        return (D)hi;
    return (D)v;
}

/* f64 -> f32 rounding toward zero (Cast's Truncate): overflow gives the largest finite
 * value, NaN stays NaN. */
__device__ inline float truncate_to_float(double v) {
    float f = (float)v;
    if (fabs((double)f) > fabs(v))
        f = nextafterf(f, 0.0f);
    return f;
}

template <typename D, typename S>
__global__ void cast_kernel(int64_t n, const S *x, D *y, int kind) {
    GRID_LOOP(i, n) {
        S v = x[i];
        switch (kind) {
        case 1: y[i] = (D)(v != S(0)); break;          /* to bool, and from bool: 0 or 1 */
        case 5: y[i] = (D)truncate_to_float((double)v); break;             /* Truncate */
        case 2: y[i] = float_to_int<D>((double)v, -2147483648.0, 2147483647.0); break;
        case 3: y[i] = float_to_int<D>((double)v, -9223372036854775808.0, 9223372036854775807.0); break;
        case 4: y[i] = float_to_int<D>((double)v, 0.0, 255.0); break;
        default: y[i] = (D)v; break;
        }
    }
}

template <typename T>
__global__ void fill_kernel(int64_t n, T v, T *y) {
    GRID_LOOP(i, n) y[i] = v;
}

template <typename T>
__global__ void transpose_kernel(dev_cuda__transpose p, int64_t base, const T *x, T *y) {
    GRID_LOOP(i, p.n) {
        int64_t rem = i, off = base;
        for (int d = p.ndim - 1; d >= 0; d--) {
            off += (rem % p.out_dims[d]) * p.in_stride[d];
            rem /= p.out_dims[d];
        }
        y[i] = x[off];
    }
}

template <typename T, typename I>
__global__ void gather_kernel(int64_t total, int64_t outer, int64_t axis_dim, int64_t inner,
                              int64_t nidx, const T *params, const I *indices, T *y) {
    GRID_LOOP(i, total) {
        int64_t k = i % inner, t = i / inner, j = t % nidx, t2 = t / nidx;
        int64_t o = t2 % outer, b = t2 / outer;
        int64_t at = (int64_t)indices[b * nidx + j];
        y[i] = params[((b * outer + o) * axis_dim + at) * inner + k];
    }
}

/* ---- Softmax cross-entropy with sparse labels: one block per row ------------------------ */

template <typename T, typename L>
__global__ void sparse_xent_kernel(int64_t batch, int64_t classes, const T *logits,
                                   const L *labels, T *loss, T *backprop) {
    __shared__ double red[kThreads];
    for (int64_t row = blockIdx.x; row < batch; row += gridDim.x) {
        const T *x = logits + row * classes;
        T *bp = backprop + row * classes;
        L label = labels[row];
        bool bad = label < 0 || (int64_t)label >= classes;
        double mx = -INFINITY, sum = 0;

        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
            mx = fmax(mx, (double)x[j]);
        red[threadIdx.x] = mx;
        __syncthreads();
        for (int w = kThreads / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w)
                red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + w]);
            __syncthreads();
        }
        mx = red[0];
        __syncthreads();
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
            sum += exp((double)x[j] - mx);
        red[threadIdx.x] = sum;
        __syncthreads();
        for (int w = kThreads / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w)
                red[threadIdx.x] += red[threadIdx.x + w];
            __syncthreads();
        }
        sum = red[0];
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
            double p = exp((double)x[j] - mx) / sum;
            bp[j] = bad ? (T)NAN : (T)(p - (j == (int64_t)label ? 1.0 : 0.0));
        }
        if (threadIdx.x == 0)
            loss[row] = bad ? (T)NAN : (T)(log(sum) - ((double)x[label] - mx));
        __syncthreads();
    }
}

/* ---- Random numbers (ops_math/random.c's streams) ---------------------------------------- */

struct Block {
    uint32_t w[4];
};

__device__ inline Block philox(Block c, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c.w[0], p1 = (uint64_t)0xCD9E8D57u * c.w[2];
        Block n;
        n.w[0] = (uint32_t)(p1 >> 32) ^ c.w[1] ^ k0;
        n.w[1] = (uint32_t)p1;
        n.w[2] = (uint32_t)(p0 >> 32) ^ c.w[3] ^ k1;
        n.w[3] = (uint32_t)p0;
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

/* @start + @skip as a 128-bit counter. */
__device__ inline Block counter_at(const uint32_t *start, uint64_t skip) {
    uint64_t lo = ((uint64_t)start[1] << 32 | start[0]) + skip;
    uint64_t hi = (uint64_t)start[3] << 32 | start[2];
    if (lo < skip)
        hi++;
    Block b = {{(uint32_t)lo, (uint32_t)(lo >> 32), (uint32_t)hi, (uint32_t)(hi >> 32)}};
    return b;
}

__device__ inline float unit_f(uint32_t x) {
    return __uint_as_float((x & 0x7fffffu) | 0x3f800000u) - 1.0f;
}

__device__ inline double unit_d(uint32_t hi, uint32_t lo) {
    return __longlong_as_double((long long)(((uint64_t)(hi & 0xfffffu) << 32 | lo) |
                                            0x3ff0000000000000ull)) - 1.0;
}

__device__ inline void box_muller_f(uint32_t x0, uint32_t x1, float *z0, float *z1) {
    float u1 = unit_f(x0), v1 = 6.2831853071795864f * unit_f(x1), r;
    if (u1 < 1.0e-7f)
        u1 = 1.0e-7f;
    r = sqrtf(-2.0f * logf(u1));
    *z0 = sinf(v1) * r;
    *z1 = cosf(v1) * r;
}

__device__ inline void box_muller_d(const uint32_t *w, double *z0, double *z1) {
    double u1 = unit_d(w[0], w[1]), v1 = 6.283185307179586477 * unit_d(w[2], w[3]), r;
    if (u1 < 1.0e-7)
        u1 = 1.0e-7;
    r = sqrt(-2.0 * log(u1));
    *z0 = sin(v1) * r;
    *z1 = cos(v1) * r;
}

struct RandArgs {
    uint32_t key[2], start[4];
};

__global__ void random_f32(int dist, int64_t n, RandArgs a, float *out) {
    GRID_LOOP(g, (n + 3) / 4) {
        int64_t i0 = g * 4;
        int cnt = n - i0 < 4 ? (int)(n - i0) : 4;
        float z[4];
        if (dist == 2) {
            uint64_t j = (uint64_t)g * 256;
            int filled = 0;
            while (filled < cnt) {
                Block b = philox(counter_at(a.start, j++), a.key[0], a.key[1]);
                box_muller_f(b.w[0], b.w[1], &z[0], &z[1]);
                box_muller_f(b.w[2], b.w[3], &z[2], &z[3]);
                for (int q = 0; q < 4 && filled < cnt; q++)
                    if (fabsf(z[q]) < 2.0f)
                        out[i0 + filled++] = z[q];
            }
            continue;
        }
        Block b = philox(counter_at(a.start, (uint64_t)g), a.key[0], a.key[1]);
        if (dist == 1) {
            box_muller_f(b.w[0], b.w[1], &z[0], &z[1]);
            box_muller_f(b.w[2], b.w[3], &z[2], &z[3]);
        } else {
            for (int q = 0; q < 4; q++)
                z[q] = unit_f(b.w[q]);
        }
        for (int q = 0; q < cnt; q++)
            out[i0 + q] = z[q];
    }
}

__global__ void random_f64(int dist, int64_t n, RandArgs a, double *out) {
    GRID_LOOP(g, (n + 1) / 2) {
        int64_t i0 = g * 2;
        int cnt = n - i0 < 2 ? (int)(n - i0) : 2;
        double z[2];
        if (dist == 2) {
            uint64_t j = (uint64_t)g * 256;
            int filled = 0;
            while (filled < cnt) {
                Block b = philox(counter_at(a.start, j++), a.key[0], a.key[1]);
                box_muller_d(b.w, &z[0], &z[1]);
                for (int q = 0; q < 2 && filled < cnt; q++)
                    if (fabs(z[q]) < 2.0)
                        out[i0 + filled++] = z[q];
            }
            continue;
        }
        Block b = philox(counter_at(a.start, (uint64_t)g), a.key[0], a.key[1]);
        if (dist == 1) {
            box_muller_d(b.w, &z[0], &z[1]);
        } else {
            z[0] = unit_d(b.w[0], b.w[1]);
            z[1] = unit_d(b.w[2], b.w[3]);
        }
        for (int q = 0; q < cnt; q++)
            out[i0 + q] = z[q];
    }
}

/* ---- Optimizers (ops_nn/optimizers.c's formulas) ----------------------------------------- */

struct OptArgs {
    void *p[4];
    const void *g;
    double s[8];
    int flag;
};

template <typename T>
__global__ void apply_kernel(int kind, int64_t n, OptArgs a) {
    T *var = (T *)a.p[0], *s1 = (T *)a.p[1], *s2 = (T *)a.p[2];
    const T *g = (const T *)a.g;
    GRID_LOOP(i, n) {
        T gi = g[i];
        switch (kind) {
        case DC_OPT_SGD:
            var[i] -= (T)a.s[0] * gi;
            break;
        case DC_OPT_MOMENTUM: {
            T lr = (T)a.s[0], mu = (T)a.s[1];
            T ac = s1[i] * mu + gi;
            s1[i] = ac;
            var[i] -= a.flag ? gi * lr + ac * mu * lr : lr * ac;
            break;
        }
        case DC_OPT_ADAM: {
            T lr_t = (T)(a.s[2] * sqrt(1.0 - a.s[1]) / (1.0 - a.s[0]));
            T b1 = (T)a.s[3], one_b1 = (T)(1.0 - a.s[3]), one_b2 = (T)(1.0 - a.s[4]);
            T eps = (T)a.s[5];
            T mi = s1[i] + (gi - s1[i]) * one_b1;
            T vi = s2[i] + (gi * gi - s2[i]) * one_b2;
            s1[i] = mi;
            s2[i] = vi;
            var[i] -= a.flag ? lr_t * (gi * one_b1 + b1 * mi) / (sqrt(vi) + eps)
                             : lr_t * mi / (sqrt(vi) + eps);
            break;
        }
        case DC_OPT_ADAGRAD: {
            T lr = (T)a.s[0];
            T ac = a.flag ? s1[i] + gi * gi : s1[i];
            s1[i] = ac;
            var[i] -= lr * gi / sqrt(ac);
            break;
        }
        case DC_OPT_RMSPROP: {
            T lr = (T)a.s[0], one_rho = (T)(1.0 - a.s[1]), mu = (T)a.s[2], eps = (T)a.s[3];
            T msi = s1[i] + (gi * gi - s1[i]) * one_rho;
            T mo = s2[i] * mu + lr * gi / sqrt(msi + eps);
            s1[i] = msi;
            s2[i] = mo;
            var[i] -= mo;
            break;
        }
        default:
            break;
        }
    }
}

/* ---- Pooling (NHWC or NCHW, f32) ----------------------------------------------------------- */

/* Output element @i as (batch, row, column, channel) in the pool's data format. */
__device__ inline void pool_coords(const dev_cuda__pool &p, int64_t i, int64_t *b, int64_t *oy,
                                   int64_t *ox, int64_t *c) {
    if (p.nchw) {
        *ox = i % p.ow;
        *oy = (i / p.ow) % p.oh;
        *c = (i / (p.ow * p.oh)) % p.c;
        *b = i / (p.ow * p.oh * p.c);
    } else {
        *c = i % p.c;
        *ox = (i / p.c) % p.ow;
        *oy = (i / (p.c * p.ow)) % p.oh;
        *b = i / (p.c * p.ow * p.oh);
    }
}

/* The input element at (batch, row, column, channel). */
__device__ inline int64_t pool_at(const dev_cuda__pool &p, int64_t b, int64_t iy, int64_t ix,
                                  int64_t c) {
    return p.nchw ? ((b * p.c + c) * p.h + iy) * p.w + ix : ((b * p.h + iy) * p.w + ix) * p.c + c;
}

__global__ void maxpool_kernel(dev_cuda__pool p, const float *x, float *y) {
    int64_t n = p.n * p.oh * p.ow * p.c;
    GRID_LOOP(i, n) {
        int64_t b, oy, ox, c;
        pool_coords(p, i, &b, &oy, &ox, &c);
        float best = -INFINITY;
        bool any = false;
        for (int64_t ky = 0; ky < p.kh; ky++) {
            int64_t iy = oy * p.sh - p.pt + ky;
            if (iy < 0 || iy >= p.h)
                continue;
            for (int64_t kx = 0; kx < p.kw; kx++) {
                int64_t ix = ox * p.sw - p.pl + kx;
                if (ix < 0 || ix >= p.w)
                    continue;
                float v = x[pool_at(p, b, iy, ix, c)];
                if (!any || v > best || v != v)
                    best = v;
                any = true;
            }
        }
        y[i] = best;
    }
}

/* Each output position finds its window's first maximum and adds its gradient there
 * (atomically: windows overlap when strides are smaller than the window). */
__global__ void maxpool_grad_kernel(dev_cuda__pool p, const float *x, const float *g, float *dx) {
    int64_t n = p.n * p.oh * p.ow * p.c;
    GRID_LOOP(i, n) {
        int64_t b, oy, ox, c;
        pool_coords(p, i, &b, &oy, &ox, &c);
        float best = -INFINITY;
        int64_t at = -1;
        for (int64_t ky = 0; ky < p.kh; ky++) {
            int64_t iy = oy * p.sh - p.pt + ky;
            if (iy < 0 || iy >= p.h)
                continue;
            for (int64_t kx = 0; kx < p.kw; kx++) {
                int64_t ix = ox * p.sw - p.pl + kx;
                if (ix < 0 || ix >= p.w)
                    continue;
                int64_t k = pool_at(p, b, iy, ix, c);
                if (at < 0 || x[k] > best) {
                    best = x[k];
                    at = k;
                }
            }
        }
        if (at >= 0)
            atomicAdd(&dx[at], g[i]);
    }
}

__device__ inline int64_t window_count(const dev_cuda__pool &p, int64_t oy, int64_t ox) {
    int64_t y0 = oy * p.sh - p.pt, x0 = ox * p.sw - p.pl;
    int64_t y1 = min(y0 + p.kh, p.h), x1 = min(x0 + p.kw, p.w);
    y0 = max(y0, (int64_t)0);
    x0 = max(x0, (int64_t)0);
    return (y1 - y0) * (x1 - x0);
}

__global__ void avgpool_kernel(dev_cuda__pool p, const float *x, float *y) {
    int64_t n = p.n * p.oh * p.ow * p.c;
    GRID_LOOP(i, n) {
        int64_t b, oy, ox, c;
        pool_coords(p, i, &b, &oy, &ox, &c);
        float sum = 0;
        for (int64_t ky = 0; ky < p.kh; ky++) {
            int64_t iy = oy * p.sh - p.pt + ky;
            if (iy < 0 || iy >= p.h)
                continue;
            for (int64_t kx = 0; kx < p.kw; kx++) {
                int64_t ix = ox * p.sw - p.pl + kx;
                if (ix >= 0 && ix < p.w)
                    sum += x[pool_at(p, b, iy, ix, c)];
            }
        }
        int64_t cnt = window_count(p, oy, ox);
        y[i] = cnt > 0 ? sum / (float)cnt : 0.0f;
    }
}

__global__ void avgpool_grad_kernel(dev_cuda__pool p, const float *g, float *dx) {
    int64_t n = p.n * p.oh * p.ow * p.c;
    GRID_LOOP(i, n) {
        int64_t b, oy, ox, c;
        pool_coords(p, i, &b, &oy, &ox, &c);
        int64_t cnt = window_count(p, oy, ox);
        if (cnt <= 0)
            continue;
        float share = g[i] / (float)cnt;
        for (int64_t ky = 0; ky < p.kh; ky++) {
            int64_t iy = oy * p.sh - p.pt + ky;
            if (iy < 0 || iy >= p.h)
                continue;
            for (int64_t kx = 0; kx < p.kw; kx++) {
                int64_t ix = ox * p.sw - p.pl + kx;
                if (ix >= 0 && ix < p.w)
                    atomicAdd(&dx[pool_at(p, b, iy, ix, c)], share);
            }
        }
    }
}

/* ---- Padding (NHWC, f32) -------------------------------------------------------------- */

__global__ void pad_kernel(int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt, int64_t pb,
                           int64_t pl, int64_t pr, const float *x, float *y) {
    int64_t H = h + pt + pb, W = w + pl + pr, total = n * H * W * c;
    GRID_LOOP(i, total) {
        int64_t ch = i % c, t = i / c, X = t % W, Y = (t / W) % H, b = t / (W * H);
        int64_t iy = Y - pt, ix = X - pl;
        y[i] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[((b * h + iy) * w + ix) * c + ch] : 0.0f;
    }
}

__global__ void crop_kernel(int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt, int64_t pb,
                            int64_t pl, int64_t pr, const float *y, float *x) {
    int64_t H = h + pt + pb, W = w + pl + pr, total = n * h * w * c;
    GRID_LOOP(i, total) {
        int64_t ch = i % c, t = i / c, ix = t % w, iy = (t / w) % h, b = t / (w * h);
        x[i] = y[((b * H + iy + pt) * W + ix + pl) * c + ch];
    }
}

/* ---- Batch normalisation (f32; per-channel finishing around cuDNN's) -------------- */

/* From cuDNN's saved mean and its running variance (factor 1: the unbiased batch
 * variance) to FusedBatchNormV3's outputs, as ops_nn/batchnorm.c computes them. */
__global__ void bn_train_stats_kernel(int64_t c, double count, float f, int blend,
                                      const float *save_mean, const float *run_var,
                                      const float *rm, const float *rv, float *bmean,
                                      float *bvar, float *rs1, float *rs2) {
    GRID_LOOP(i, c) {
        float mean = save_mean[i];
        float unbiased = count > 1 ? run_var[i] : 0.0f;
        float var = count > 1 ? (float)((double)run_var[i] * ((count - 1) / count)) : 0.0f;
        bmean[i] = blend ? (1 - f) * rm[i] + f * mean : mean;
        bvar[i] = blend ? (1 - f) * rv[i] + f * unbiased : unbiased;
        rs1[i] = mean;
        rs2[i] = var;
    }
}

__global__ void bn_inv_std_kernel(int64_t c, float eps, const float *var, float *inv) {
    GRID_LOOP(i, c) {
        inv[i] = 1.0f / sqrtf(var[i] + eps);
    }
}

__global__ void bn_dx_infer_kernel(int64_t n, int64_t c, int64_t inner, const float *dy,
                                   const float *scale, const float *inv, float *dx) {
    GRID_LOOP(i, n) {
        int64_t ch = (i / inner) % c;
        dx[i] = (scale[ch] * inv[ch]) * dy[i];
    }
}

/* @kind for each destination: a bool source is 0 or 1 whatever its byte (kind 1); float
 * sources saturate into integers (2-4); f64 -> f32 with Truncate rounds toward zero (5). */
template <typename S>
int cast_from(cudaStream_t s, int dst, int64_t n, const S *x, void *y, bool src_bool,
              bool truncate) {
    bool src_float = sizeof(S) >= 4 && (S)0.5 != (S)0;
    int plain = src_bool ? 1 : 0;
    switch (dst) {
    case FLOE_DTYPE_F32:
        FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<float, S>)(
            n, x, (float *)y, truncate && sizeof(S) == 8 && src_float ? 5 : plain);
        break;
    case FLOE_DTYPE_F64: FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<double, S>)(n, x, (double *)y, plain); break;
    case FLOE_DTYPE_I32:
        FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<int32_t, S>)(n, x, (int32_t *)y, src_float ? 2 : plain);
        break;
    case FLOE_DTYPE_I64:
        FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<int64_t, S>)(n, x, (int64_t *)y, src_float ? 3 : plain);
        break;
    case FLOE_DTYPE_U8:
        FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<uint8_t, S>)(n, x, (uint8_t *)y, src_float ? 4 : plain);
        break;
    case FLOE_DTYPE_BOOL:
        FLOE_LAUNCH(blocks_for(n), kThreads, s, cast_kernel<uint8_t, S>)(n, x, (uint8_t *)y, 1);
        break;
    default:
        return (int)cudaErrorInvalidValue;
    }
    return launched();
}

template <typename T>
int gather_as(cudaStream_t s, int64_t total, int64_t outer, int64_t axis_dim,
                     int64_t inner, int64_t nidx, const void *params, const void *indices,
                     int idx_i64, void *y) {
    if (idx_i64)
        FLOE_LAUNCH(blocks_for(total), kThreads, s, gather_kernel<T, int64_t>)(
            total, outer, axis_dim, inner, nidx, (const T *)params, (const int64_t *)indices, (T *)y);
    else
        FLOE_LAUNCH(blocks_for(total), kThreads, s, gather_kernel<T, int32_t>)(
            total, outer, axis_dim, inner, nidx, (const T *)params, (const int32_t *)indices, (T *)y);
    return launched();
}

} /* namespace */

/* ---- The C launchers ------------------------------------------------------------------- */

extern "C" {

int dev_cuda__k_binary(cudaStream_t s, int op, int dtype, const dev_cuda__bcast *p,
                       const void *x, const void *y, void *z) {
    if (p->n == 0)
        return 0;
    return by_dtype(dtype, [&](auto t) {
        using T = decltype(t);
        const T *a = (const T *)x, *b = (const T *)y;
        if (p->same || p->x_scalar || p->y_scalar)
            FLOE_LAUNCH(blocks_for(p->n), kThreads, s, binary_flat<T>)(op, p->n, a, p->x_scalar ? 0 : 1,
                                                                 b, p->y_scalar ? 0 : 1, (T *)z);
        else
            FLOE_LAUNCH(blocks_for(p->n), kThreads, s, binary_bcast<T>)(op, *p, a, b, (T *)z);
        return launched();
    });
}

int dev_cuda__k_unary(cudaStream_t s, int op, int dtype, int64_t n, const void *x, void *y) {
    if (n == 0)
        return 0;
    if (dtype == FLOE_DTYPE_I32 || dtype == FLOE_DTYPE_I64) {
        if (op != DC_NEG && op != DC_ABS && op != DC_SQUARE && op != DC_SIGN)
            return (int)cudaErrorInvalidValue;
        return by_dtype(dtype, [&](auto t) {
            using T = decltype(t);
            FLOE_LAUNCH(blocks_for(n), kThreads, s, unary_int_kernel<T>)(op, n, (const T *)x, (T *)y);
            return launched();
        });
    }
    return by_float(dtype, [&](auto t) {
        using T = decltype(t);
        FLOE_LAUNCH(blocks_for(n), kThreads, s, unary_kernel<T>)(op, n, (const T *)x, (T *)y);
        return launched();
    });
}

int dev_cuda__k_reduce(cudaStream_t s, int op, int dtype, const dev_cuda__reduce *p,
                       const void *x, void *y) {
    if (p->nout == 0)
        return 0;
    return by_dtype(dtype, [&](auto t) {
        using T = decltype(t);
        if (p->nout >= 4096 || p->nred < 1024)
            FLOE_LAUNCH(blocks_for(p->nout), kThreads, s, reduce_thread<T>)(op, *p, (const T *)x, (T *)y);
        else
            FLOE_LAUNCH_SYNC((unsigned)(p->nout > 65535 ? 65535 : p->nout), kThreads, s, reduce_block<T>)(
                op, *p, (const T *)x, (T *)y);
        return launched();
    });
}

int dev_cuda__k_bias_add(cudaStream_t s, int dtype, int64_t n, int64_t c, int64_t inner,
                         const void *x, const void *b, void *y) {
    if (n == 0)
        return 0;
    return by_dtype(dtype, [&](auto t) {
        using T = decltype(t);
        FLOE_LAUNCH(blocks_for(n), kThreads, s, bias_add_kernel<T>)(n, c, inner, (const T *)x,
                                                              (const T *)b, (T *)y);
        return launched();
    });
}

int dev_cuda__k_cast(cudaStream_t s, int src, int dst, int64_t n, const void *x, void *y,
                     int truncate) {
    if (n == 0)
        return 0;
    switch (src) {
    case FLOE_DTYPE_F32: return cast_from(s, dst, n, (const float *)x, y, false, truncate);
    case FLOE_DTYPE_F64: return cast_from(s, dst, n, (const double *)x, y, false, truncate);
    case FLOE_DTYPE_I32: return cast_from(s, dst, n, (const int32_t *)x, y, false, truncate);
    case FLOE_DTYPE_I64: return cast_from(s, dst, n, (const int64_t *)x, y, false, truncate);
    case FLOE_DTYPE_U8: return cast_from(s, dst, n, (const uint8_t *)x, y, false, truncate);
    case FLOE_DTYPE_BOOL: return cast_from(s, dst, n, (const uint8_t *)x, y, true, truncate);
    default: return (int)cudaErrorInvalidValue;
    }
}

int dev_cuda__k_fill(cudaStream_t s, size_t elem_size, int64_t n, const void *value, void *y) {
    if (n == 0)
        return 0;
    switch (elem_size) {
    case 1: FLOE_LAUNCH(blocks_for(n), kThreads, s, fill_kernel<uint8_t>)(n, *(const uint8_t *)value, (uint8_t *)y); break;
    case 2: FLOE_LAUNCH(blocks_for(n), kThreads, s, fill_kernel<uint16_t>)(n, *(const uint16_t *)value, (uint16_t *)y); break;
    case 4: FLOE_LAUNCH(blocks_for(n), kThreads, s, fill_kernel<uint32_t>)(n, *(const uint32_t *)value, (uint32_t *)y); break;
    case 8: FLOE_LAUNCH(blocks_for(n), kThreads, s, fill_kernel<uint64_t>)(n, *(const uint64_t *)value, (uint64_t *)y); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return launched();
}

int dev_cuda__k_strided_copy(cudaStream_t s, size_t elem_size, const dev_cuda__transpose *p,
                             int64_t base, const void *x, void *y) {
    if (p->n == 0)
        return 0;
    switch (elem_size) {
    case 1: FLOE_LAUNCH(blocks_for(p->n), kThreads, s, transpose_kernel<uint8_t>)(*p, base, (const uint8_t *)x, (uint8_t *)y); break;
    case 2: FLOE_LAUNCH(blocks_for(p->n), kThreads, s, transpose_kernel<uint16_t>)(*p, base, (const uint16_t *)x, (uint16_t *)y); break;
    case 4: FLOE_LAUNCH(blocks_for(p->n), kThreads, s, transpose_kernel<uint32_t>)(*p, base, (const uint32_t *)x, (uint32_t *)y); break;
    case 8: FLOE_LAUNCH(blocks_for(p->n), kThreads, s, transpose_kernel<uint64_t>)(*p, base, (const uint64_t *)x, (uint64_t *)y); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return launched();
}

int dev_cuda__k_transpose(cudaStream_t s, size_t elem_size, const dev_cuda__transpose *p,
                          const void *x, void *y) {
    return dev_cuda__k_strided_copy(s, elem_size, p, 0, x, y);
}

int dev_cuda__k_gather(cudaStream_t s, size_t elem_size, int64_t batch, int64_t outer,
                       int64_t axis_dim, int64_t inner, int64_t nidx, const void *params,
                       const void *indices, int idx_i64, void *y) {
    int64_t total = batch * outer * nidx * inner;
    if (total == 0)
        return 0;
    switch (elem_size) {
    case 1: return gather_as<uint8_t>(s, total, outer, axis_dim, inner, nidx, params, indices, idx_i64, y);
    case 2: return gather_as<uint16_t>(s, total, outer, axis_dim, inner, nidx, params, indices, idx_i64, y);
    case 4: return gather_as<uint32_t>(s, total, outer, axis_dim, inner, nidx, params, indices, idx_i64, y);
    case 8: return gather_as<uint64_t>(s, total, outer, axis_dim, inner, nidx, params, indices, idx_i64, y);
    default: return (int)cudaErrorInvalidValue;
    }
}

int dev_cuda__k_sparse_xent(cudaStream_t s, int dtype, int64_t batch, int64_t classes,
                            const void *logits, const void *labels, int label_i64, void *loss,
                            void *backprop) {
    if (batch == 0)
        return 0;
    unsigned grid = (unsigned)(batch > 65535 ? 65535 : batch);
    return by_float(dtype, [&](auto t) {
        using T = decltype(t);
        if (label_i64)
            FLOE_LAUNCH_SYNC(grid, kThreads, s, sparse_xent_kernel<T, int64_t>)(
                batch, classes, (const T *)logits, (const int64_t *)labels, (T *)loss, (T *)backprop);
        else
            FLOE_LAUNCH_SYNC(grid, kThreads, s, sparse_xent_kernel<T, int32_t>)(
                batch, classes, (const T *)logits, (const int32_t *)labels, (T *)loss, (T *)backprop);
        return launched();
    });
}

int dev_cuda__k_random(cudaStream_t s, int dist, int dtype, int64_t n, const uint32_t key[2],
                       const uint32_t start[4], void *out) {
    RandArgs a = {{key[0], key[1]}, {start[0], start[1], start[2], start[3]}};
    if (n == 0)
        return 0;
    if (dtype == FLOE_DTYPE_F32)
        FLOE_LAUNCH(blocks_for((n + 3) / 4), kThreads, s, random_f32)(dist, n, a, (float *)out);
    else if (dtype == FLOE_DTYPE_F64)
        FLOE_LAUNCH(blocks_for((n + 1) / 2), kThreads, s, random_f64)(dist, n, a, (double *)out);
    else
        return (int)cudaErrorInvalidValue;
    return launched();
}

int dev_cuda__k_apply(cudaStream_t s, int kind, int dtype, int64_t n, void *const *slots,
                      const void *grad, const double *scalars, int flag) {
    OptArgs a;
    if (n == 0)
        return 0;
    for (int i = 0; i < 4; i++)
        a.p[i] = slots[i];
    for (int i = 0; i < 8; i++)
        a.s[i] = scalars[i];
    a.g = grad;
    a.flag = flag;
    return by_float(dtype, [&](auto t) {
        using T = decltype(t);
        FLOE_LAUNCH(blocks_for(n), kThreads, s, apply_kernel<T>)(kind, n, a);
        return launched();
    });
}

int dev_cuda__k_maxpool(cudaStream_t s, const dev_cuda__pool *p, const float *x, float *y) {
    int64_t n = p->n * p->oh * p->ow * p->c;
    if (n == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(n), kThreads, s, maxpool_kernel)(*p, x, y);
    return launched();
}

int dev_cuda__k_maxpool_grad(cudaStream_t s, const dev_cuda__pool *p, const float *x,
                             const float *g, float *dx) {
    int64_t n = p->n * p->oh * p->ow * p->c, nin = p->n * p->h * p->w * p->c;
    if (nin > 0) {
        int e = (int)cudaMemsetAsync(dx, 0, (size_t)nin * sizeof(float), s);
        if (e != 0)
            return e;
    }
    if (n == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(n), kThreads, s, maxpool_grad_kernel)(*p, x, g, dx);
    return launched();
}

int dev_cuda__k_avgpool(cudaStream_t s, const dev_cuda__pool *p, const float *x, float *y) {
    int64_t n = p->n * p->oh * p->ow * p->c;
    if (n == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(n), kThreads, s, avgpool_kernel)(*p, x, y);
    return launched();
}

int dev_cuda__k_avgpool_grad(cudaStream_t s, const dev_cuda__pool *p, const float *g, float *dx) {
    int64_t n = p->n * p->oh * p->ow * p->c, nin = p->n * p->h * p->w * p->c;
    if (nin > 0) {
        int e = (int)cudaMemsetAsync(dx, 0, (size_t)nin * sizeof(float), s);
        if (e != 0)
            return e;
    }
    if (n == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(n), kThreads, s, avgpool_grad_kernel)(*p, g, dx);
    return launched();
}

int dev_cuda__k_pad_nhwc(cudaStream_t s, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
                         int64_t pb, int64_t pl, int64_t pr, const float *x, float *y) {
    int64_t total = n * (h + pt + pb) * (w + pl + pr) * c;
    if (total == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(total), kThreads, s, pad_kernel)(n, h, w, c, pt, pb, pl, pr, x, y);
    return launched();
}

int dev_cuda__k_crop_nhwc(cudaStream_t s, int64_t n, int64_t h, int64_t w, int64_t c, int64_t pt,
                          int64_t pb, int64_t pl, int64_t pr, const float *y, float *x) {
    int64_t total = n * h * w * c;
    if (total == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(total), kThreads, s, crop_kernel)(n, h, w, c, pt, pb, pl, pr, y, x);
    return launched();
}

int dev_cuda__k_bn_train_stats(cudaStream_t s, int64_t c, int64_t count, float factor,
                               const float *save_mean, const float *run_var, const float *rm,
                               const float *rv, float *bmean, float *bvar, float *rs1,
                               float *rs2) {
    int blend = factor != 1.0f;
    if (c == 0)
        return 0;
    if (blend && (rm == NULL || rv == NULL))
        return (int)cudaErrorInvalidValue;
    FLOE_LAUNCH(blocks_for(c), kThreads, s, bn_train_stats_kernel)(c, (double)count, factor, blend,
                                                             save_mean, run_var, rm, rv, bmean,
                                                             bvar, rs1, rs2);
    return launched();
}

int dev_cuda__k_bn_inv_std(cudaStream_t s, int64_t c, float eps, const float *var, float *inv) {
    if (c == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(c), kThreads, s, bn_inv_std_kernel)(c, eps, var, inv);
    return launched();
}

int dev_cuda__k_bn_dx_infer(cudaStream_t s, int64_t n, int64_t c, int64_t inner,
                            const float *dy, const float *scale, const float *inv, float *dx) {
    if (n == 0 || c == 0 || inner == 0)
        return 0;
    FLOE_LAUNCH(blocks_for(n), kThreads, s, bn_dx_infer_kernel)(n, c, inner, dy, scale, inv, dx);
    return launched();
}

} /* extern "C" */
