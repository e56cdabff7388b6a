/*
 * device.h - what kernels.cu needs to compile as host C++ for the emulator (emu.h):
 * included first by emu/kernels.cc, before kernels.cu itself.
 *
 * The CUDA keywords become plain C++ (__shared__ becomes a static: one FLOE_LAUNCH_SYNC
 * block runs at a time in the process, runtime.cc makes sure), the built-in index
 * variables become thread-locals that runtime.cc sets for each emulated thread, and
 * FLOE_LAUNCH(grid, block, stream, kernel)(args...) queues the grid on the stream:
 *
 *   FLOE_LAUNCH       threads run one after another, each to completion: for kernels
 *                     whose threads never wait for each other (a __syncthreads() in
 *                     one is reported as an error and aborts)
 *   FLOE_LAUNCH_SYNC  every thread of a block is a fiber; __syncthreads() switches to
 *                     the next, and a barrier some threads of a block skip (undefined
 *                     behaviour on a GPU) is reported
 *
 * atomicAdd is a plain read-modify-write: the threads of one grid never run at once.
 */
#ifndef FLOE_DEV_CUDA_EMU_DEVICE_H
#define FLOE_DEV_CUDA_EMU_DEVICE_H

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

#include "emu.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>

namespace floe_emu {

/* initial-exec: read in every kernel's inner loop, so not through __tls_get_addr (the
 * few bytes fit the static TLS that glibc keeps for dlopen'ed modules). */
#define FLOE_EMU_TLS thread_local __attribute__((tls_model("initial-exec")))
extern FLOE_EMU_TLS uint3 thread_idx, block_idx;
extern FLOE_EMU_TLS dim3 block_dim, grid_dim;

/* Queues @body on @s (runtime.cc): with @sync, run once per thread of @grid x @block
 * (each block's threads as fibers); without, run once, iterating the grid itself.  An
 * invalid configuration sets the thread's last error (cudaGetLastError), as a launch
 * does. */
void launch(const char *kernel, bool sync, dim3 grid, dim3 block, cudaStream_t s,
            std::function<void()> body);
void syncthreads();

template <typename K>
struct Launcher {
    const char *name;
    bool sync;
    dim3 grid, block;
    cudaStream_t stream;
    K kernel;

    /* FLOE_LAUNCH: the whole grid in one function, the kernel inlined into its loop;
     * FLOE_LAUNCH_SYNC: one call per fiber. */
    template <typename... A>
    void operator()(A... args) const {
        K k = kernel;
        if (sync) {
            launch(name, true, grid, block, stream, [k, args...]() { k(args...); });
            return;
        }
        launch(name, false, grid, block, stream, [k, args..., g = grid, b = block]() {
            for (unsigned z = 0; z < g.z; z++)
                for (unsigned y = 0; y < g.y; y++)
                    for (unsigned x = 0; x < g.x; x++) {
                        block_idx = {x, y, z};
                        for (unsigned t = 0; t < b.x * b.y * b.z; t++) {
                            thread_idx = {t % b.x, (t / b.x) % b.y, t / (b.x * b.y)};
                            k(args...);
                        }
                    }
        });
    }
};

template <typename K>
Launcher<K> launcher(const char *name, bool sync, dim3 grid, dim3 block, cudaStream_t s, K k) {
    return Launcher<K>{name, sync, grid, block, s, k};
}

} // namespace floe_emu

#define threadIdx floe_emu::thread_idx
#define blockIdx floe_emu::block_idx
#define blockDim floe_emu::block_dim
#define gridDim floe_emu::grid_dim
#define __syncthreads() floe_emu::syncthreads()

#define FLOE_LAUNCH(grid, block, stream, ...) \
    floe_emu::launcher(#__VA_ARGS__, false, dim3(grid), dim3(block), stream, __VA_ARGS__)
#define FLOE_LAUNCH_SYNC(grid, block, stream, ...) \
    floe_emu::launcher(#__VA_ARGS__, true, dim3(grid), dim3(block), stream, __VA_ARGS__)

inline float __uint_as_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

inline double __longlong_as_double(long long v) {
    double d;
    std::memcpy(&d, &v, sizeof(d));
    return d;
}

/* CUDA's integer min/max overloads. */
template <typename A, typename B>
inline typename std::common_type<A, B>::type min(A a, B b) {
    return a < b ? a : b;
}

template <typename A, typename B>
inline typename std::common_type<A, B>::type max(A a, B b) {
    return a > b ? a : b;
}

template <typename T>
inline T atomicAdd(T *at, T v) {
    T old = *at;
    *at = old + v;
    return old;
}

#endif /* FLOE_DEV_CUDA_EMU_DEVICE_H */
