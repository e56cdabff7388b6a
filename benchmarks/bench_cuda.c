/*
 * bench_cuda.c - dev_cuda's MatMul against cuBLAS and its Conv2D against cuDNN, each
 * called directly on the same GPU, same shapes, same data type (f32, no TF32).
 *
 * Floe side: a session whose inputs are resource variables on /device:GPU:0 (assigned
 * once), so a run is ReadVariableOp -> MatMul (or Conv2D) on the GPU and the fetched
 * output stays in GPU memory: what is timed is the executor plus the kernel, as in a
 * training step.  The clock stops after the last run's output has been copied to the
 * host (which waits for the stream).  Direct side: cublasSgemm / cudnnConvolutionForward
 * in a loop, then cudaDeviceSynchronize.  Medians of 5 timings of N iterations each;
 * the ratio printed is Floe time / library time (1.00: no overhead).
 *
 * Usage: bench_cuda [ITERS]   (exit 77 without a GPU).  benchmarks/bench_cuda.sh runs
 * it with the PyTorch epoch comparison.
 */
#include "bench_common.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

static floe_context *ctx;

#define CK(x)                                                                             \
    do {                                                                                  \
        int e_ = (int)(x);                                                                \
        if (e_ != 0) {                                                                    \
            fprintf(stderr, "bench_cuda: %s failed (%d) at line %d\n", #x, e_, __LINE__); \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* ---- Floe: variables on the GPU, one op, output left on the GPU ----------------------- */

static floe_node *gpu_op(floe_graph *g, const char *op, floe_node *const *in, int nin,
                         void (*attrs)(floe_attrs *)) {
    floe_node_builder *b;
    floe_node *n = NULL;
    bench_check(floe_node_builder_new(g, op, NULL, &b), op);
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(b, floe_out(in[i], 0));
    floe_node_builder_set_device(b, "/device:GPU:0");
    if (attrs != NULL)
        attrs(floe_node_builder_attrs(b));
    bench_check(floe_node_builder_finish(b, &n), op);
    return n;
}

static floe_node *gpu_var(floe_graph *g, const char *name, const int64_t *dims, int nd,
                          floe_node **assign) {
    floe_node_builder *b;
    floe_node *v = NULL, *c, *in[2];
    floe_tensor *t;
    int64_t n = 1;

    bench_check(floe_node_builder_new(g, "VarHandleOp", name, &b), "VarHandleOp");
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, nd);
    floe_attrs_set_string(floe_node_builder_attrs(b), "shared_name", name, strlen(name));
    floe_node_builder_set_device(b, "/device:GPU:0");
    bench_check(floe_node_builder_finish(b, &v), "VarHandleOp");
    for (int i = 0; i < nd; i++)
        n *= dims[i];
    bench_check(floe_tensor_new(FLOE_DTYPE_F32, dims, nd, &t), "tensor");
    bench_fill(floe_tensor_data(t), n, (uint64_t)nd * 31 + (uint64_t)dims[0]);
    c = bench_const(g, NULL, t);
    floe_tensor_unref(t);
    in[0] = v;
    in[1] = c;
    *assign = gpu_op(g, "AssignVariableOp", in, 2, NULL);
    return v;
}

static void read_dtype(floe_attrs *a) {
    floe_attrs_set_type(a, "dtype", FLOE_DTYPE_F32);
}

static int64_t conv_s = 1;
static void conv_attrs(floe_attrs *a) {
    int64_t st[4] = {1, conv_s, conv_s, 1};
    floe_attrs_set_int_list(a, "strides", st, 4);
    floe_attrs_set_string(a, "padding", "SAME", 4);
}

/* Seconds per run of @out (median of 5 timings of @iters runs). */
static double time_floe(floe_session *s, floe_node *out, int iters) {
    double t[5];
    floe_output f = floe_out(out, 0);
    for (int rep = 0; rep < 6; rep++) {
        floe_tensor *v = NULL, *h = NULL;
        double t0 = bench_now_s();
        for (int i = 0; i < iters; i++) {
            floe_tensor_unref(v);
            bench_check(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &v), "run");
        }
        bench_check(floe_tensor_to_host(v, &h), "to_host"); /* waits for the stream */
        if (rep > 0)
            t[rep - 1] = (bench_now_s() - t0) / iters;
        floe_tensor_unref(h);
        floe_tensor_unref(v);
    }
    return bench_median(t, 5);
}

static double floe_matmul(int64_t m, int64_t n, int64_t k, int iters) {
    floe_graph *g;
    floe_session *s;
    floe_node *assign[2], *in[2];
    int64_t da[2] = {m, k}, db[2] = {k, n};
    double t;

    bench_check(floe_graph_new(ctx, &g), "graph");
    floe_node *va = gpu_var(g, "a", da, 2, &assign[0]), *vb = gpu_var(g, "b", db, 2, &assign[1]);
    in[0] = gpu_op(g, "ReadVariableOp", &va, 1, read_dtype);
    in[1] = gpu_op(g, "ReadVariableOp", &vb, 1, read_dtype);
    floe_node *mm = gpu_op(g, "MatMul", in, 2, NULL);
    bench_check(floe_session_new(g, NULL, &s), "session");
    bench_check(floe_session_run(s, NULL, NULL, 0, NULL, 0, assign, 2, NULL), "assign");
    t = time_floe(s, mm, iters);
    floe_session_free(s);
    floe_graph_free(g);
    return t;
}

static double floe_conv(const int64_t *x, const int64_t *f, int iters) {
    floe_graph *g;
    floe_session *s;
    floe_node *assign[2], *in[2];
    double t;

    bench_check(floe_graph_new(ctx, &g), "graph");
    floe_node *vx = gpu_var(g, "x", x, 4, &assign[0]), *vf = gpu_var(g, "f", f, 4, &assign[1]);
    in[0] = gpu_op(g, "ReadVariableOp", &vx, 1, read_dtype);
    in[1] = gpu_op(g, "ReadVariableOp", &vf, 1, read_dtype);
    floe_node *cv = gpu_op(g, "Conv2D", in, 2, conv_attrs);
    bench_check(floe_session_new(g, NULL, &s), "session");
    bench_check(floe_session_run(s, NULL, NULL, 0, NULL, 0, assign, 2, NULL), "assign");
    t = time_floe(s, cv, iters);
    floe_session_free(s);
    floe_graph_free(g);
    return t;
}

/* ---- The libraries called directly ---------------------------------------------------- */

static double cublas_matmul(int m, int n, int k, int iters) {
    cublasHandle_t h;
    float *a, *b, *c, one = 1, zero = 0;
    double t[5];

    CK(cublasCreate(&h));
    CK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
    CK(cudaMalloc((void **)&a, (size_t)m * k * 4));
    CK(cudaMalloc((void **)&b, (size_t)k * n * 4));
    CK(cudaMalloc((void **)&c, (size_t)m * n * 4));
    CK(cudaMemset(a, 0, (size_t)m * k * 4));
    CK(cudaMemset(b, 0, (size_t)k * n * 4));
    for (int rep = 0; rep < 6; rep++) {
        double t0 = bench_now_s();
        for (int i = 0; i < iters; i++)
            CK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, n, a, k, &zero, c, n));
        CK(cudaDeviceSynchronize());
        if (rep > 0)
            t[rep - 1] = (bench_now_s() - t0) / iters;
    }
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cublasDestroy(h);
    return bench_median(t, 5);
}

static double cudnn_conv(const int64_t *x, const int64_t *f, int64_t stride, int iters) {
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t fd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int np = 0, n, c, hh, w;
    size_t ws_size = 0;
    void *xp, *fp, *yp, *ws = NULL;
    float one = 1, zero = 0;
    double t[5];

    CK(cudnnCreate(&h));
    CK(cudnnCreateTensorDescriptor(&xd));
    CK(cudnnCreateTensorDescriptor(&yd));
    CK(cudnnCreateFilterDescriptor(&fd));
    CK(cudnnCreateConvolutionDescriptor(&cd));
    CK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)x[0], (int)x[3],
                                  (int)x[1], (int)x[2]));
    CK(cudnnSetFilter4dDescriptor(fd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, (int)f[3], (int)f[2],
                                  (int)f[0], (int)f[1]));
    CK(cudnnSetConvolution2dDescriptor(cd, (int)(f[0] - 1) / 2, (int)(f[1] - 1) / 2, (int)stride,
                                       (int)stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                       CUDNN_DATA_FLOAT));
    CK(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
    CK(cudnnGetConvolution2dForwardOutputDim(cd, xd, fd, &n, &c, &hh, &w));
    CK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, c, hh, w));
    CK(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, fd, cd, yd, 8, &np, perf));
    CK(cudnnGetConvolutionForwardWorkspaceSize(h, xd, fd, cd, yd, perf[0].algo, &ws_size));
    CK(cudaMalloc(&xp, (size_t)(x[0] * x[1] * x[2] * x[3]) * 4));
    CK(cudaMalloc(&fp, (size_t)(f[0] * f[1] * f[2] * f[3]) * 4));
    CK(cudaMalloc(&yp, (size_t)n * c * hh * w * 4));
    if (ws_size > 0)
        CK(cudaMalloc(&ws, ws_size));
    for (int rep = 0; rep < 6; rep++) {
        double t0 = bench_now_s();
        for (int i = 0; i < iters; i++)
            CK(cudnnConvolutionForward(h, &one, xd, xp, fd, fp, cd, perf[0].algo, ws, ws_size,
                                       &zero, yd, yp));
        CK(cudaDeviceSynchronize());
        if (rep > 0)
            t[rep - 1] = (bench_now_s() - t0) / iters;
    }
    cudaFree(xp);
    cudaFree(fp);
    cudaFree(yp);
    cudaFree(ws);
    cudnnDestroy(h);
    return bench_median(t, 5);
}

int main(int argc, char **argv) {
    static const int64_t mm[][3] = {{256, 256, 256}, {1024, 1024, 1024}, {4096, 4096, 4096},
                                    {32, 128, 784}, {32, 10, 128}};
    static const int64_t conv[][9] = {
        /* x NHWC, filter HWIO, stride: the seed CNN's layers at batch 32, a ResNet block */
        {32, 28, 28, 1, 5, 5, 1, 32, 1},
        {32, 14, 14, 32, 5, 5, 32, 64, 1},
        {64, 56, 56, 64, 3, 3, 64, 64, 1},
    };
    int iters = argc > 1 ? atoi(argv[1]) : 20, ngpu = 0;
    floe_device *gpu;

    if (cudaGetDeviceCount(&ngpu) != cudaSuccess || ngpu == 0) {
        printf("SKIP: no GPU\n");
        return 77;
    }
    ctx = bench_context();
    if (floe_context_find_device(ctx, "/device:GPU:0", &gpu) != FLOE_OK) {
        printf("SKIP: dev_cuda registered no GPU (`floe plugins` says why)\n");
        return 77;
    }
    printf("%-34s %12s %12s %8s\n", "MatMul f32 (m x k) . (k x n)", "Floe ms", "cuBLAS ms", "ratio");
    for (size_t i = 0; i < sizeof(mm) / sizeof(mm[0]); i++) {
        int64_t m = mm[i][0], n = mm[i][1], k = mm[i][2];
        int it = m * n * k > (int64_t)1 << 32 ? iters / 4 + 1 : iters;
        double tf = floe_matmul(m, n, k, it), tc = cublas_matmul((int)m, (int)n, (int)k, it);
        char name[64];
        snprintf(name, sizeof(name), "m=%lld n=%lld k=%lld", (long long)m, (long long)n,
                 (long long)k);
        printf("%-34s %12.4f %12.4f %8.2f   (%.0f GFLOP/s Floe)\n", name, tf * 1e3, tc * 1e3,
               tf / tc, 2.0 * m * n * k / tf * 1e-9);
    }
    printf("%-34s %12s %12s %8s\n", "Conv2D f32 NHWC, SAME", "Floe ms", "cuDNN ms", "ratio");
    for (size_t i = 0; i < sizeof(conv) / sizeof(conv[0]); i++) {
        const int64_t *x = conv[i], *f = conv[i] + 4;
        char name[64];
        conv_s = conv[i][8];
        double tf = floe_conv(x, f, iters), tc = cudnn_conv(x, f, conv_s, iters);
        snprintf(name, sizeof(name), "%lldx%lldx%lldx%lld * %lldx%lldx%lld", (long long)x[0],
                 (long long)x[1], (long long)x[2], (long long)x[3], (long long)f[0],
                 (long long)f[1], (long long)f[3]);
        printf("%-34s %12.4f %12.4f %8.2f\n", name, tf * 1e3, tc * 1e3, tf / tc);
    }
    floe_context_free(ctx);
    return 0;
}
