/*
 * runtime.cc - the emulated CUDA runtime (emu.h): the calls dev_cuda makes, with the
 * semantics its code relies on, on the host.
 *
 *   devices   FLOE_CUDA_EMU_DEVICES of them (default 1; 0: cudaGetDeviceCount fails
 *             with cudaErrorNoDevice, as without a GPU), each with
 *             FLOE_CUDA_EMU_MEMORY bytes (default 512 MiB) that cudaMalloc counts
 *             against, so running out is cudaErrorMemoryAllocation
 *   memory    cudaMalloc'd blocks are recorded (floe_cuda_emu_is_device) and filled
 *             with 0xff; cudaHostAlloc'd blocks are recorded as pinned
 *   streams   a worker thread each, running its queue in order; events mark points in
 *             a queue.  Copies between device and pinned memory are queued like
 *             kernels; copies involving pageable host memory wait for the stream and
 *             run at the call, as CUDA's do; cudaFree waits for every stream
 *   kernels   a grid runs on its stream's worker: block after block, and within a
 *             block thread after thread (FLOE_LAUNCH) or as fibers that switch at
 *             __syncthreads() (FLOE_LAUNCH_SYNC)
 *   errors    the calling thread's last error (cudaGetLastError); failures found
 *             while queued work runs make the stream's sticky error, returned by every
 *             later synchronisation with it
 */
#include "device.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#  include <sanitizer/common_interface_defs.h>
#  define EMU_ASAN 1
#else
#  define EMU_ASAN 0
#endif

/* ---- Streams and events ---------------------------------------------------------------- */

struct CUstream_st {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    uint64_t queued = 0, done = 0;       /* items ever queued / finished */
    bool stop = false;
    cudaError_t sticky = cudaSuccess;
    int device = 0;
    std::thread worker;
};

struct CUevent_st {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t recorded = 0, reached = 0;  /* generations */
    cudaStream_t stream = nullptr;       /* of the last record */
};

namespace {

struct Device {
    size_t total = 0, used = 0;
};

std::mutex g_mu;                                  /* everything below */
std::vector<Device> g_devices;
std::map<uintptr_t, std::pair<size_t, int>> g_device_blocks;   /* start -> (size, device) */
std::map<uintptr_t, size_t> g_pinned_size;
std::set<cudaStream_t> g_streams;
bool g_ready = false;
cudaError_t g_init_error = cudaSuccess;

thread_local int t_device = 0;
thread_local cudaError_t t_last = cudaSuccess;
thread_local cudaStream_t t_running = nullptr;   /* the stream whose work this thread runs */

size_t env_size(const char *name, size_t dflt) {
    const char *v = getenv(name);
    char *end;
    unsigned long long x;
    if (v == nullptr || *v == '\0')
        return dflt;
    x = strtoull(v, &end, 10);
    return *end == '\0' ? (size_t)x : dflt;
}

cudaError_t arena_init(size_t total);

/* Under g_mu. */
cudaError_t ensure_init() {
    if (g_ready)
        return g_init_error;
    g_ready = true;
    size_t n = env_size("FLOE_CUDA_EMU_DEVICES", 1);
    if (n == 0 || n > 16)
        g_init_error = cudaErrorNoDevice;
    g_devices.resize(n <= 16 ? n : 0);
    for (Device &d : g_devices)
        d.total = env_size("FLOE_CUDA_EMU_MEMORY", (size_t)512 << 20);
    if (g_init_error == cudaSuccess && !g_devices.empty())
        g_init_error = arena_init(g_devices[0].total * g_devices.size());
    return g_init_error;
}

/* ---- Device memory: one arena the host cannot touch ------------------------------------
 *
 * Every device's memory is carved from one reserved region that is PROT_NONE whenever
 * every stream is idle (and no copy is running at the call).  So host code that reads
 * or writes device memory directly, a crash on a real GPU, faults here too, with a
 * message (FLOE_CUDA_EMU_PROTECT=0 turns this off).  It cannot catch a host access made
 * while some stream has work queued: protection is per process, and changing it per
 * kernel costs too much (every populated page's entry is rewritten). */
char *g_arena = nullptr;
size_t g_arena_size = 0;
std::map<uintptr_t, size_t> g_arena_free;          /* start -> size, coalesced */
bool g_protect = true;
std::mutex g_access_mu;
int g_access_depth = 0;
struct sigaction g_old_segv;

void segv_handler(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = (uintptr_t)si->si_addr;
    (void)uc;
    if (g_arena != nullptr && a >= (uintptr_t)g_arena && a < (uintptr_t)g_arena + g_arena_size) {
        static const char msg[] = "cuda-emu: the host touched GPU memory outside a kernel or copy "
                                  "(a crash on a real GPU: copy the tensor to the host first)\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
    }
    /* Hand the fault to whoever handled it before (the default: a core dump; ASan: its
     * report), by re-executing the access under the old handler. */
    sigaction(sig, &g_old_segv, nullptr);
}

/* Under g_mu. */
cudaError_t arena_init(size_t total) {
    const char *p = getenv("FLOE_CUDA_EMU_PROTECT");
    g_protect = p == nullptr || strcmp(p, "0") != 0;
    g_arena_size = total;
    void *m = mmap(nullptr, total, g_protect ? PROT_NONE : PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return cudaErrorInitializationError;
    g_arena = (char *)m;
    g_arena_free[(uintptr_t)m] = total;
    if (g_protect) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = segv_handler;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &g_old_segv);
    }
    return cudaSuccess;
}

/* First fit, 256-byte aligned; under g_mu. */
void *arena_alloc(size_t n) {
    for (auto it = g_arena_free.begin(); it != g_arena_free.end(); ++it) {
        if (it->second < n)
            continue;
        uintptr_t at = it->first;
        size_t left = it->second - n;
        g_arena_free.erase(it);
        if (left > 0)
            g_arena_free[at + n] = left;
        return (void *)at;
    }
    return nullptr;
}

void arena_free(void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto next = g_arena_free.lower_bound(a);
    if (next != g_arena_free.end() && a + n == next->first) {
        n += next->second;
        g_arena_free.erase(next);
    }
    auto prev = g_arena_free.lower_bound(a);
    if (prev != g_arena_free.begin()) {
        --prev;
        if (prev->first + prev->second == a) {
            prev->second += n;
            return;
        }
    }
    g_arena_free[a] = n;
}

/* Device memory is open to whoever runs queued work (stream workers, copies at the call)
 * between begin and end. */
void floe_emu_access_begin() {
    std::lock_guard<std::mutex> lk(g_access_mu);
    if (g_access_depth++ == 0 && g_protect && g_arena != nullptr)
        mprotect(g_arena, g_arena_size, PROT_READ | PROT_WRITE);
}

void floe_emu_access_end() {
    std::lock_guard<std::mutex> lk(g_access_mu);
    if (--g_access_depth == 0 && g_protect && g_arena != nullptr)
        mprotect(g_arena, g_arena_size, PROT_NONE);
}

cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess)
        t_last = e;
    return e;
}

cudaError_t init_or_fail() {
    std::lock_guard<std::mutex> lk(g_mu);
    return ensure_init();
}

/* The live device block holding [p, p + n), or false.  Under g_mu. */
bool device_range_locked(const void *p, size_t n, int *device) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_device_blocks.upper_bound(a);
    if (it == g_device_blocks.begin())
        return false;
    --it;
    if (a - it->first > it->second.first || n > it->second.first - (a - it->first))
        return false;
    if (device != nullptr)
        *device = it->second.second;
    return true;
}

bool pinned_range_locked(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_pinned_size.upper_bound(a);
    if (it == g_pinned_size.begin())
        return false;
    --it;
    return a - it->first <= it->second && n <= it->second - (a - it->first);
}

void worker_main(cudaStream_t s) {
    t_running = s;
    for (;;) {
        std::function<void()> fn;
        {
            std::unique_lock<std::mutex> lk(s->mu);
            s->cv.wait(lk, [s] { return s->stop || !s->queue.empty(); });
            if (s->queue.empty())
                return;
            fn = std::move(s->queue.front());
        }
        t_device = s->device;
        fn();
        {
            std::lock_guard<std::mutex> lk(s->mu);
            s->queue.pop_front();
            s->done++;
            if (s->queue.empty())
                floe_emu_access_end(); /* this stream is idle again */
        }
        s->cv.notify_all();
    }
}

cudaStream_t stream_new(int device) {
    cudaStream_t s = new CUstream_st;
    s->device = device;
    s->worker = std::thread(worker_main, s);
    std::lock_guard<std::mutex> lk(g_mu);
    g_streams.insert(s);
    return s;
}

bool stream_valid(cudaStream_t s) {
    std::lock_guard<std::mutex> lk(g_mu);
    return s == nullptr || g_streams.count(s) != 0;
}

/* Waits until everything queued on @s so far has run; its sticky error. */
cudaError_t stream_drain(cudaStream_t s) {
    std::unique_lock<std::mutex> lk(s->mu);
    uint64_t target = s->queued;
    s->cv.wait(lk, [s, target] { return s->done >= target; });
    return s->sticky;
}

cudaError_t drain_all() {
    std::vector<cudaStream_t> all;
    cudaError_t e = cudaSuccess;
    {
        std::lock_guard<std::mutex> lk(g_mu);
        all.assign(g_streams.begin(), g_streams.end());
    }
    for (cudaStream_t s : all) {
        cudaError_t se = stream_drain(s);
        if (e == cudaSuccess)
            e = se;
    }
    return e;
}

/* Queues @fn on @s; the legacy default stream (NULL) runs it at the call, once every
 * other stream is idle. */
cudaError_t enqueue(cudaStream_t s, std::function<void()> fn) {
    if (!stream_valid(s))
        return cudaErrorInvalidResourceHandle;
    if (s == nullptr) {
        cudaError_t e = drain_all();
        if (e == cudaSuccess) {
            floe_emu_access_begin();
            fn();
            floe_emu_access_end();
        }
        return e;
    }
    {
        std::lock_guard<std::mutex> lk(s->mu);
        if (s->sticky != cudaSuccess)
            return s->sticky;
        if (s->queue.empty())
            floe_emu_access_begin(); /* before the worker can see the work */
        s->queue.push_back(std::move(fn));
        s->queued++;
    }
    s->cv.notify_all();
    return cudaSuccess;
}

/* ---- Running a grid --------------------------------------------------------------------- */

/* One fiber per thread of a FLOE_LAUNCH_SYNC grid.  A fiber runs the kernel's body
 * once per block: after each it marks itself finished and returns to the scheduler,
 * which resumes it for the next block, so contexts are made once per launch.
 *
 * On x86-64 a switch is six pushes, a stack swap and six pops (fiber_swap below):
 * glibc's swapcontext() also saves the signal mask with a system call, which made
 * kernels with many barriers a hundred times slower.  Elsewhere, ucontext. */
#if defined(__x86_64__)
#  define EMU_FAST_SWITCH 1
extern "C" void floe_emu_fiber_swap(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl floe_emu_fiber_swap\n"
    ".hidden floe_emu_fiber_swap\n"
    ".type floe_emu_fiber_swap, @function\n"
    "floe_emu_fiber_swap:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size floe_emu_fiber_swap, .-floe_emu_fiber_swap\n");
#else
#  define EMU_FAST_SWITCH 0
#endif

struct Context {
#if EMU_FAST_SWITCH
    void *sp = nullptr;
#else
    ucontext_t uc;
#endif
};

struct Fiber {
    Context ctx;
    void *stack = nullptr;
    bool finished = false, at_barrier = false;
    void *fake = nullptr;                /* ASan's fake stack while switched away */
};

constexpr size_t kFiberStack = EMU_ASAN ? (size_t)256 << 10 : (size_t)32 << 10;

struct BlockRun {
    const std::function<void()> *body = nullptr;
    std::vector<Fiber> fibers;
    Context sched;
    void *sched_fake = nullptr;
    void *sched_bottom = nullptr;        /* the worker thread's own stack, for ASan */
    size_t sched_size = 0;
    int current = -1;
    const char *kernel = nullptr;
};

FLOE_EMU_TLS BlockRun *t_block = nullptr;

void switch_to(Context *from, Context *to, void **fake, const void *bottom, size_t size) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
#if EMU_FAST_SWITCH
    floe_emu_fiber_swap(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(*fake, nullptr, nullptr);
#endif
}

void fiber_entry() {
    BlockRun *b = t_block;
    int me = b->current;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    for (;;) {
        (*b->body)();
        b->fibers[me].finished = true;
        switch_to(&b->fibers[me].ctx, &b->sched, &b->fibers[me].fake, b->sched_bottom,
                  b->sched_size);
    }
}

/* A context that starts fiber_entry() on @stack. */
void make_context(Context *c, void *stack, size_t size) {
#if EMU_FAST_SWITCH
    /* What floe_emu_fiber_swap pops: six registers, then fiber_entry as the return
     * address, entered with the stack 8 off 16-byte alignment as after a call. */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    sp[0] = (void *)fiber_entry;
    sp[1] = nullptr;
    sp -= 6;
    for (int i = 0; i < 6; i++)
        sp[i] = nullptr;
    c->sp = sp;
#else
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, fiber_entry, 0);
#endif
}

void thread_stack(void **bottom, size_t *size) {
    pthread_attr_t a;
    *bottom = nullptr;
    *size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, bottom, size);
        pthread_attr_destroy(&a);
    }
}

/* Runs the threads of one block as fibers, round after round: each round resumes every
 * thread until it reaches a barrier or finishes its body.  Returns false (reported)
 * when some threads finished while others wait at a barrier. */
bool run_block_fibers(BlockRun &b, unsigned nthreads) {
    if (b.fibers.empty()) {
        b.fibers.resize(nthreads);
        thread_stack(&b.sched_bottom, &b.sched_size);
        for (unsigned t = 0; t < nthreads; t++) {
            Fiber &f = b.fibers[t];
            f.stack = mmap(nullptr, kFiberStack, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (f.stack == MAP_FAILED) {
                f.stack = nullptr;
                floe_cuda_emu_fail("%s: no memory for a fiber stack", b.kernel);
                return false;
            }
            make_context(&f.ctx, f.stack, kFiberStack);
        }
    }
    for (unsigned t = 0; t < nthreads; t++)
        b.fibers[t].finished = false;
    for (;;) {
        unsigned waiting = 0, finished = 0;
        for (unsigned t = 0; t < nthreads; t++) {
            Fiber &f = b.fibers[t];
            if (f.finished)
                continue;
            f.at_barrier = false;
            b.current = (int)t;
            floe_emu::thread_idx = {t % floe_emu::block_dim.x,
                                    (t / floe_emu::block_dim.x) % floe_emu::block_dim.y,
                                    t / (floe_emu::block_dim.x * floe_emu::block_dim.y)};
            switch_to(&b.sched, &f.ctx, &b.sched_fake, f.stack, kFiberStack);
        }
        for (unsigned t = 0; t < nthreads; t++) {
            waiting += b.fibers[t].at_barrier;
            finished += b.fibers[t].finished;
        }
        if (finished == nthreads)
            return true;
        if (waiting != nthreads) {
            floe_cuda_emu_fail("%s: block (%u,%u,%u): %u threads wait at __syncthreads() while "
                               "%u have exited (undefined behaviour on a GPU)",
                               b.kernel, floe_emu::block_idx.x, floe_emu::block_idx.y,
                               floe_emu::block_idx.z, waiting, finished);
            return false; /* the waiting fibers are abandoned with their stacks */
        }
    }
}

void run_grid(const char *kernel, bool sync, dim3 grid, dim3 block,
              const std::function<void()> &body) {
    unsigned nthreads = block.x * block.y * block.z;
    BlockRun run;
    run.body = &body;
    run.kernel = kernel;
    floe_emu::grid_dim = grid;
    floe_emu::block_dim = block;
    if (!sync) {
        body(); /* the grid loop is in the body (device.h) */
        return;
    }
    /* __shared__ arrays are plain statics (device.h): one such grid at a time. */
    static std::mutex shared_memory;
    std::lock_guard<std::mutex> lk(shared_memory);
    t_block = &run;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                floe_emu::block_idx = {x, y, z};
                if (!run_block_fibers(run, nthreads))
                    goto out;
            }
out:
    t_block = nullptr;
    for (Fiber &f : run.fibers)
        if (f.stack != nullptr)
            munmap(f.stack, kFiberStack);
}

/* FLOE_CUDA_EMU_PROFILE=1: the time each kernel took, printed at exit (where the
 * emulator's time goes; nothing to do with a GPU's). */
struct ProfileEntry {
    double seconds = 0;
    uint64_t launches = 0;
};
std::mutex g_profile_mu;
std::map<std::string, ProfileEntry> *g_profile = nullptr;

void profile_print() {
    std::lock_guard<std::mutex> lk(g_profile_mu);
    std::vector<std::pair<double, std::string>> rows;
    for (auto &kv : *g_profile)
        rows.push_back({kv.second.seconds, kv.first});
    std::sort(rows.rbegin(), rows.rend());
    for (auto &r : rows)
        fprintf(stderr, "cuda-emu profile: %9.3f s %8llu launches  %s\n", r.first,
                (unsigned long long)(*g_profile)[r.second].launches, r.second.c_str());
}

void profile_add(const char *kernel, std::chrono::steady_clock::duration d) {
    static const bool on = getenv("FLOE_CUDA_EMU_PROFILE") != nullptr;
    if (!on)
        return;
    std::lock_guard<std::mutex> lk(g_profile_mu);
    if (g_profile == nullptr) {
        g_profile = new std::map<std::string, ProfileEntry>;
        atexit(profile_print);
    }
    ProfileEntry &e = (*g_profile)[kernel];
    e.seconds += std::chrono::duration<double>(d).count();
    e.launches++;
}

const char *error_name(cudaError_t e) {
    switch (e) {
#define N(x) case x: return #x;
    N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation)
    N(cudaErrorInitializationError) N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidPitchValue)
    N(cudaErrorInvalidDevicePointer) N(cudaErrorInvalidMemcpyDirection) N(cudaErrorNoDevice)
    N(cudaErrorInvalidDevice) N(cudaErrorInvalidResourceHandle) N(cudaErrorNotReady)
    N(cudaErrorIllegalAddress) N(cudaErrorLaunchFailure) N(cudaErrorNotSupported)
#undef N
    default: return "cudaErrorUnknown";
    }
}

} // namespace

/* ---- The kernel side (device.h) --------------------------------------------------------- */

namespace floe_emu {

FLOE_EMU_TLS uint3 thread_idx, block_idx;
FLOE_EMU_TLS dim3 block_dim, grid_dim;

void launch(const char *kernel, bool sync, dim3 grid, dim3 block, cudaStream_t s,
            std::function<void()> body) {
    uint64_t threads = (uint64_t)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
        grid.z > 65535 || threads == 0 || threads > 1024 || block.z > 64) {
        floe_cuda_emu_fail("%s: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)",
                           kernel, grid.x, grid.y, grid.z, block.x, block.y, block.z);
        ret(cudaErrorInvalidConfiguration);
        return;
    }
    cudaError_t e = enqueue(s, [kernel, sync, grid, block, body = std::move(body)]() {
        auto t0 = std::chrono::steady_clock::now();
        run_grid(kernel, sync, grid, block, body);
        profile_add(kernel, std::chrono::steady_clock::now() - t0);
    });
    ret(e);
}

void syncthreads() {
    BlockRun *b = t_block;
    if (b == nullptr || b->current < 0 || b->fibers.empty()) {
        floe_cuda_emu_fail("%s calls __syncthreads() but was launched with FLOE_LAUNCH, not "
                           "FLOE_LAUNCH_SYNC", b != nullptr ? b->kernel : "a kernel");
        abort();
    }
    Fiber &f = b->fibers[b->current];
    f.at_barrier = true;
    switch_to(&f.ctx, &b->sched, &f.fake, b->sched_bottom, b->sched_size);
}

} // namespace floe_emu

/* ---- emu.h ------------------------------------------------------------------------------ */

extern "C" cudaError_t floe_cuda_emu_enqueue(cudaStream_t s, void (*fn)(void *), const void *arg,
                                             size_t size) {
    std::vector<unsigned char> copy((const unsigned char *)arg, (const unsigned char *)arg + size);
    return enqueue(s, [fn, copy = std::move(copy)]() mutable { fn(copy.data()); });
}

extern "C" bool floe_cuda_emu_is_device(const void *p, size_t n) {
    if (n == 0)
        return true;
    std::lock_guard<std::mutex> lk(g_mu);
    return device_range_locked(p, n, nullptr);
}

extern "C" void floe_cuda_emu_fail(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "cuda-emu: %s\n", msg);
    if (t_running != nullptr) {
        std::lock_guard<std::mutex> lk(t_running->mu);
        if (t_running->sticky == cudaSuccess)
            t_running->sticky = cudaErrorIllegalAddress;
    }
}

/* ---- The CUDA runtime API ---------------------------------------------------------------- */

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    std::lock_guard<std::mutex> lk(g_mu);
    cudaError_t e = ensure_init();
    *count = e == cudaSuccess ? (int)g_devices.size() : 0;
    return ret(e);
}

cudaError_t cudaSetDevice(int device) {
    std::lock_guard<std::mutex> lk(g_mu);
    cudaError_t e = ensure_init();
    if (e == cudaSuccess && (device < 0 || (size_t)device >= g_devices.size()))
        e = cudaErrorInvalidDevice;
    if (e == cudaSuccess)
        t_device = device;
    return ret(e);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    std::lock_guard<std::mutex> lk(g_mu);
    cudaError_t e = ensure_init();
    if (e == cudaSuccess && (device < 0 || (size_t)device >= g_devices.size()))
        e = cudaErrorInvalidDevice;
    if (e != cudaSuccess)
        return ret(e);
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "Floe CUDA emulator (host)");
    prop->totalGlobalMem = g_devices[device].total;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->warpSize = 32;
    prop->sharedMemPerBlock = 48 << 10;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}

const char *cudaGetErrorName(cudaError_t e) {
    return error_name(e);
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulator: FLOE_CUDA_EMU_DEVICES=0)";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered (see cuda-emu: on stderr)";
    default: return error_name(e);
    }
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    std::lock_guard<std::mutex> lk(g_mu);
    cudaError_t e = ensure_init();
    if (e != cudaSuccess)
        return ret(e);
    Device &d = g_devices[t_device];
    *free_b = d.total - d.used;
    *total_b = d.total;
    return cudaSuccess;
}

static size_t rounded_size(size_t n) {
    return n == 0 ? 256 : (n + 255) & ~(size_t)255;
}

cudaError_t cudaMalloc(void **out, size_t n) {
    std::lock_guard<std::mutex> lk(g_mu);
    cudaError_t e = ensure_init();
    *out = nullptr;
    if (e != cudaSuccess)
        return ret(e);
    Device &d = g_devices[t_device];
    size_t rounded = rounded_size(n);
    if (rounded > d.total - d.used)
        return ret(cudaErrorMemoryAllocation);
    void *p = arena_alloc(rounded);
    if (p == nullptr)
        return ret(cudaErrorMemoryAllocation);
    floe_emu_access_begin();
    memset(p, 0xff, rounded); /* NaN as floats: reading memory nobody wrote shows */
    floe_emu_access_end();
    d.used += rounded;
    g_device_blocks[(uintptr_t)p] = {n, t_device}; /* checks against what was asked for */
    *out = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (p == nullptr)
        return cudaSuccess;
    drain_all(); /* cudaFree synchronizes the device */
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_device_blocks.find((uintptr_t)p);
    if (it == g_device_blocks.end()) {
        fprintf(stderr, "cuda-emu: cudaFree(%p): not a live cudaMalloc block\n", p);
        return ret(cudaErrorInvalidDevicePointer);
    }
    g_devices[it->second.second].used -= rounded_size(it->second.first);
    arena_free(p, rounded_size(it->second.first));
    g_device_blocks.erase(it);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **out, size_t n, unsigned int flags) {
    (void)flags;
    void *p = malloc(n > 0 ? n : 1);
    *out = p;
    if (p == nullptr)
        return ret(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> lk(g_mu);
    g_pinned_size[(uintptr_t)p] = n;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
    if (p == nullptr)
        return cudaSuccess;
    drain_all();
    std::lock_guard<std::mutex> lk(g_mu);
    if (g_pinned_size.erase((uintptr_t)p) == 0)
        return ret(cudaErrorInvalidValue);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    cudaError_t e = init_or_fail();
    *s = e == cudaSuccess ? stream_new(t_device) : nullptr;
    return ret(e);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    return cudaStreamCreate(s);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (s == nullptr || !stream_valid(s))
        return ret(cudaErrorInvalidResourceHandle);
    {
        std::lock_guard<std::mutex> lk(g_mu);
        g_streams.erase(s);
    }
    {
        std::lock_guard<std::mutex> lk(s->mu);
        s->stop = true; /* the worker finishes the queue first */
    }
    s->cv.notify_all();
    s->worker.join();
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (!stream_valid(s))
        return ret(cudaErrorInvalidResourceHandle);
    return ret(s == nullptr ? drain_all() : stream_drain(s));
}

cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    (void)flags;
    return cudaEventCreate(e);
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (e == nullptr)
        return ret(cudaErrorInvalidResourceHandle);
    /* CUDA lets an event be destroyed with its record pending; the marker keeps it. */
    std::unique_lock<std::mutex> lk(e->mu);
    e->cv.wait(lk, [e] { return e->reached >= e->recorded; });
    lk.unlock();
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    uint64_t gen;
    if (e == nullptr)
        return ret(cudaErrorInvalidResourceHandle);
    {
        std::lock_guard<std::mutex> lk(e->mu);
        gen = ++e->recorded;
        e->stream = s;
    }
    return ret(enqueue(s, [e, gen]() {
        {
            std::lock_guard<std::mutex> lk(e->mu);
            if (e->reached < gen)
                e->reached = gen;
        }
        e->cv.notify_all();
    }));
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    cudaStream_t s;
    if (e == nullptr)
        return ret(cudaErrorInvalidResourceHandle);
    {
        std::unique_lock<std::mutex> lk(e->mu);
        uint64_t target = e->recorded;
        e->cv.wait(lk, [e, target] { return e->reached >= target; });
        s = e->stream;
    }
    if (s != nullptr && stream_valid(s)) {
        std::lock_guard<std::mutex> lk(s->mu);
        return ret(s->sticky);
    }
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    uint64_t target;
    (void)flags;
    if (e == nullptr)
        return ret(cudaErrorInvalidResourceHandle);
    {
        std::lock_guard<std::mutex> lk(e->mu);
        target = e->recorded;
    }
    return ret(enqueue(s, [e, target]() {
        std::unique_lock<std::mutex> lk(e->mu);
        e->cv.wait(lk, [e, target] { return e->reached >= target; });
    }));
}

/* Checks a copy's operands against its kind: device sides inside cudaMalloc blocks. */
static cudaError_t copy_check(const char *what, void *dst, const void *src, size_t n,
                              cudaMemcpyKind kind, bool *host_pinned) {
    std::lock_guard<std::mutex> lk(g_mu);
    bool dd = device_range_locked(dst, n, nullptr), sd = device_range_locked(src, n, nullptr);
    *host_pinned = true;
    if (n == 0)
        return cudaSuccess;
    switch (kind) {
    case cudaMemcpyHostToDevice:
        if (!dd)
            break;
        *host_pinned = pinned_range_locked(src, n);
        return cudaSuccess;
    case cudaMemcpyDeviceToHost:
        if (!sd)
            break;
        *host_pinned = pinned_range_locked(dst, n);
        return cudaSuccess;
    case cudaMemcpyDeviceToDevice:
        if (!dd || !sd)
            break;
        return cudaSuccess;
    case cudaMemcpyDefault:
        *host_pinned = (dd || pinned_range_locked(dst, n)) && (sd || pinned_range_locked(src, n));
        return cudaSuccess;
    default:
        return cudaErrorInvalidMemcpyDirection;
    }
    fprintf(stderr, "cuda-emu: %s of %zu bytes %p -> %p (kind %d): the device side is not inside "
            "one cudaMalloc block\n", what, n, src, dst, (int)kind);
    return cudaErrorInvalidValue;
}

/* Pageable host memory: the copy waits for the stream and happens at the call, as
 * CUDA's staged copies do; pinned: queued. */
static cudaError_t run_copy(cudaStream_t s, bool pinned, std::function<void()> fn) {
    if (pinned)
        return ret(enqueue(s, std::move(fn)));
    if (!stream_valid(s))
        return ret(cudaErrorInvalidResourceHandle);
    cudaError_t e = s == nullptr ? drain_all() : stream_drain(s);
    if (e == cudaSuccess) {
        floe_emu_access_begin();
        fn();
        floe_emu_access_end();
    }
    return ret(e);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            cudaStream_t s) {
    bool pinned;
    cudaError_t e = copy_check("cudaMemcpyAsync", dst, src, n, kind, &pinned);
    if (e != cudaSuccess)
        return ret(e);
    return run_copy(s, pinned, [dst, src, n]() { memmove(dst, src, n); });
}

cudaError_t cudaMemcpyPeerAsync(void *dst, int dst_device, const void *src, int src_device,
                                size_t n, cudaStream_t s) {
    int dd = -1, sd = -1;
    bool ok;
    {
        std::lock_guard<std::mutex> lk(g_mu);
        ok = n == 0 || (device_range_locked(dst, n, &dd) && device_range_locked(src, n, &sd) &&
                        dd == dst_device && sd == src_device);
    }
    if (!ok) {
        fprintf(stderr, "cuda-emu: cudaMemcpyPeerAsync of %zu bytes from %p on device %d to %p "
                "on device %d: not inside cudaMalloc blocks of those devices\n",
                n, src, src_device, dst, dst_device);
        return ret(cudaErrorInvalidValue);
    }
    return ret(enqueue(s, [dst, src, n]() { memmove(dst, src, n); }));
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t s) {
    bool pinned_d, pinned_s;
    if (width > dpitch || width > spitch)
        return ret(cudaErrorInvalidPitchValue);
    if (height == 0 || width == 0)
        return cudaSuccess;
    /* the spans touched: (height - 1) pitches plus one row */
    size_t dspan = (height - 1) * dpitch + width, sspan = (height - 1) * spitch + width;
    cudaError_t e = copy_check("cudaMemcpy2DAsync (destination)", dst, dst, dspan,
                               kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice
                                   ? cudaMemcpyDeviceToDevice : cudaMemcpyDefault, &pinned_d);
    if (e == cudaSuccess)
        e = copy_check("cudaMemcpy2DAsync (source)", (void *)src, src, sspan,
                       kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice
                           ? cudaMemcpyDeviceToDevice : cudaMemcpyDefault, &pinned_s);
    if (e != cudaSuccess)
        return ret(e);
    return run_copy(s, pinned_d && pinned_s, [=]() {
        for (size_t r = 0; r < height; r++)
            memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    });
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    if (!floe_cuda_emu_is_device(p, n)) {
        fprintf(stderr, "cuda-emu: cudaMemsetAsync of %zu bytes at %p: not inside one cudaMalloc "
                "block\n", n, p);
        return ret(cudaErrorInvalidValue);
    }
    return ret(enqueue(s, [p, value, n]() { memset(p, value, n); }));
}

} /* extern "C" */
