/*
 * test_cuda_emu.c - the safety nets of dev_cuda's host emulation (plugins/dev_cuda/emu),
 * called through the CUDA runtime API as the plugin calls it: if these did not hold,
 * test_dev_cuda_emu and the gpu-emu suite could pass over bugs a GPU would show.
 *
 *   memory     a host access to device memory faults (in a child process); the arena
 *              counts what is allocated, refuses more than the device has, and rejects
 *              frees of pointers it never gave
 *   copies     a copy whose device side is not inside one live block is refused; pinned
 *              copies are queued and land once the stream is synchronised
 *   streams    an event recorded on one stream orders work on another
 */
#include "test_common.h"

#include "emu.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void host_access_to_device_memory_faults(void **state) {
    void *p = NULL;
    int status = 0;
    pid_t pid;

    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaMalloc(&p, 4096), cudaSuccess);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile char *)p)[100] = 1;   /* a GPU pointer dereferenced on the host */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_int_equal(cudaFree(p), cudaSuccess);
}

static void allocation_is_bounded_and_checked(void **state) {
    size_t free_b = 0, total_b = 0, free2 = 0;
    void *p = NULL, *q = (void *)&free_b;

    assert_int_equal(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
    assert_true(total_b > 0 && free_b <= total_b);
    assert_int_equal(cudaMalloc(&p, total_b + 1), cudaErrorMemoryAllocation);
    assert_null(p);
    assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);
    assert_int_equal(cudaGetLastError(), cudaSuccess);   /* read once, then cleared */
    assert_int_equal(cudaMalloc(&p, 1 << 20), cudaSuccess);
    assert_int_equal(cudaMemGetInfo(&free2, &total_b), cudaSuccess);
    assert_int_equal(free_b - free2, 1 << 20);
    assert_true(floe_cuda_emu_is_device(p, 1 << 20));
    assert_false(floe_cuda_emu_is_device(p, (1 << 20) + 1));   /* one byte past the end */
    assert_false(floe_cuda_emu_is_device(q, 1));
    assert_int_equal(cudaFree(q), cudaErrorInvalidDevicePointer);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(cudaMemGetInfo(&free2, &total_b), cudaSuccess);
    assert_int_equal(free2, free_b);
}

static void copies_check_spans_and_follow_the_stream(void **state) {
    cudaStream_t s;
    void *d = NULL, *pinned = NULL;
    unsigned char host[256];

    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaMalloc(&d, 256), cudaSuccess);
    assert_int_equal(cudaHostAlloc(&pinned, 256, cudaHostAllocDefault), cudaSuccess);
    /* past the block's end, and a host pointer where the device side should be */
    assert_int_equal(cudaMemcpyAsync((char *)d + 1, host, 256, cudaMemcpyHostToDevice, s),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpyAsync(host, pinned, 16, cudaMemcpyDeviceToHost, s),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaMemsetAsync(d, 0x5a, 257, s), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    /* memset then a pinned copy back: queued, there once the stream is synchronised */
    assert_int_equal(cudaMemsetAsync(d, 0x5a, 256, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(pinned, d, 256, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    for (int i = 0; i < 256; i++)
        assert_int_equal(((unsigned char *)pinned)[i], 0x5a);
    /* pageable: the copy has happened when the call returns */
    memset(host, 0, sizeof(host));
    assert_int_equal(cudaMemcpyAsync(host, d, 256, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_int_equal(host[255], 0x5a);
    assert_int_equal(cudaFreeHost(pinned), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
}

static void events_order_work_across_streams(void **state) {
    cudaStream_t a, b;
    cudaEvent_t e;
    void *d = NULL, *pinned = NULL;

    assert_int_equal(cudaStreamCreate(&a), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&b), cudaSuccess);
    assert_int_equal(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
    assert_int_equal(cudaMalloc(&d, 1 << 22), cudaSuccess);
    assert_int_equal(cudaHostAlloc(&pinned, 1 << 22, cudaHostAllocDefault), cudaSuccess);
    for (int round = 0; round < 20; round++) {
        int v = 0x10 + round;
        assert_int_equal(cudaMemsetAsync(d, v, 1 << 22, a), cudaSuccess);
        assert_int_equal(cudaEventRecord(e, a), cudaSuccess);
        assert_int_equal(cudaStreamWaitEvent(b, e, 0), cudaSuccess);
        assert_int_equal(cudaMemcpyAsync(pinned, d, 1 << 22, cudaMemcpyDeviceToHost, b),
                         cudaSuccess);
        assert_int_equal(cudaStreamSynchronize(b), cudaSuccess);
        assert_int_equal(((unsigned char *)pinned)[(1 << 22) - 1], v);
    }
    assert_int_equal(cudaEventDestroy(e), cudaSuccess);
    assert_int_equal(cudaFreeHost(pinned), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(a), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(b), cudaSuccess);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_access_to_device_memory_faults),
        cmocka_unit_test(allocation_is_bounded_and_checked),
        cmocka_unit_test(copies_check_spans_and_follow_the_stream),
        cmocka_unit_test(events_order_work_across_streams),
    };
    setenv("FLOE_CUDA_EMU_MEMORY", "67108864", 1);   /* 64 MiB: running out is cheap */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
