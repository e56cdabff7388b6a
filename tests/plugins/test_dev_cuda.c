/*
 * test_dev_cuda.c - the CUDA device: device conformance against the CPU kernels, the
 * device contract, and training on the GPU to the CPU's accuracy.
 *
 * Two runs (tests/meson.build): test_dev_cuda against the real plugin, and
 * test_dev_cuda_emu against the same sources built on the host emulation of CUDA,
 * cuBLAS and cuDNN (plugins/dev_cuda/emu, FLOE_TEST_CUDA_EMULATED=1, two emulated GPUs).
 * Without a GPU the real run exits 77, which meson reports as SKIP, after printing the
 * reason dev_cuda gave (`floe plugins` shows it too); the emulated run never skips.
 * With a GPU:
 *
 *   conformance  every case builds the op twice in one graph, pinned to /device:GPU:0
 *                and /device:CPU:0, on the same random inputs, and compares every
 *                output (f32: rtol 1e-4 / atol 1e-5 elementwise, 2e-3 for long sums
 *                and convolutions; f64: 1e-10; integers: exact); a coverage check
 *                fails if an op with a dev_cuda kernel has no case here
 *                (FusedBatchNormV3 and its gradient: every output, training and
 *                inference, NHWC and NCHW, the GPU gradient also from the CPU's
 *                reserve spaces)
 *   optimizers   each ResourceApply* op updates GPU- and CPU-pinned variables from the
 *                same start; the values read back agree
 *   contract     copies both ways (sizes around the staging buffer), memory
 *                statistics through floe_device_get_memory_stats(), bad input
 *                returning the CPU's error (no crash), placement (an unpinned MatMul
 *                runs on the GPU and a pinned one on the CPU), running out of GPU
 *                memory, GPU:0 -> GPU:1 through copy_peer (when there are two)
 *   training     `floe train --model mlp --epochs 1` on the GPU reaches the CPU's test
 *                accuracy (within 1.5 points; same seed, same data)
 */
#include "test_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static floe_context *ctx;

/* ---- Building and running ---------------------------------------------------------------- */

typedef struct input_spec {
    floe_dtype dt;
    int nd;
    int64_t dims[4];
    double lo, hi;            /* random range; ints: integers in [lo, hi) */
    const int64_t *values;    /* when set: an integer tensor with these values (axes...) */
} input_spec;

typedef struct conf_case {
    const char *op;
    int nin, nout;
    input_spec in[4];
    void (*attrs)(floe_attrs *a);
    double rtol, atol;
    int nlist;                /* the first nlist inputs form the op's list argument */
} conf_case;

static floe_tensor *make_input(const input_spec *s, uint64_t *seed) {
    if (s->values != NULL) {
        floe_tensor *t = tc_tensor(s->dt, s->dims, s->nd, NULL);
        for (int64_t i = 0; i < tc_count(s->dims, s->nd); i++)
            tc_set_i(t, i, s->values[i]);
        return t;
    }
    return tc_rand_tensor(s->dt, s->dims, s->nd, s->lo, s->hi, (*seed)++);
}

static floe_node *pinned(floe_graph *g, const conf_case *c, floe_node *const *in,
                         const char *device) {
    floe_node_builder *b;
    floe_node *n = NULL;
    assert_int_equal(floe_node_builder_new(g, c->op, NULL, &b), FLOE_OK);
    if (c->nlist > 0) {
        floe_output list[4];
        for (int i = 0; i < c->nlist; i++)
            list[i] = (floe_output){in[i], 0};
        floe_node_builder_add_input_list(b, list, c->nlist);
    }
    for (int i = c->nlist; i < c->nin; i++)
        floe_node_builder_add_input(b, (floe_output){in[i], 0});
    floe_node_builder_set_device(b, device);
    if (c->attrs != NULL)
        c->attrs(floe_node_builder_attrs(b));
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("%s on %s: %s", c->op, device, floe_last_error());
    return n;
}

static void compare(const conf_case *c, int k, floe_tensor *gpu, floe_tensor *cpu) {
    floe_tensor *h;
    int64_t n = floe_tensor_num_elements(cpu);
    bool flt = floe_tensor_dtype(cpu) == FLOE_DTYPE_F32 || floe_tensor_dtype(cpu) == FLOE_DTYPE_F64;
    double rtol = c->rtol, atol = c->atol;

    assert_int_equal(floe_tensor_to_host(gpu, &h), FLOE_OK);
    assert_int_equal(floe_tensor_dtype(h), floe_tensor_dtype(cpu));
    assert_int_equal(floe_tensor_ndim(h), floe_tensor_ndim(cpu));
    for (int i = 0; i < floe_tensor_ndim(cpu); i++)
        assert_int_equal(floe_tensor_dim(h, i), floe_tensor_dim(cpu, i));
    if (floe_tensor_dtype(cpu) == FLOE_DTYPE_F64 && rtol > 1e-10) {
        rtol = 1e-10;
        atol = 1e-12;
    }
    for (int64_t i = 0; i < n; i++) {
        double a = tc_get_f(h, i), b = tc_get_f(cpu, i);
        if (!flt) {
            if (a != b)
                fail_msg("%s output %d element %lld: GPU %g, CPU %g", c->op, k, (long long)i, a, b);
        } else if (!(isnan(a) && isnan(b)) && !(fabs(a - b) <= atol + rtol * fabs(b))) {
            fail_msg("%s output %d element %lld: GPU %.9g, CPU %.9g", c->op, k, (long long)i, a, b);
        }
    }
    floe_tensor_unref(h);
}

static void run_case(const conf_case *c) {
    floe_graph *g;
    floe_session *s;
    floe_node *in[4], *ng, *nc;
    floe_output fetch[8];
    floe_tensor *vals[8] = {NULL};
    uint64_t seed = 0x5eed ^ (uint64_t)strlen(c->op) * 7919;

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    for (int i = 0; i < c->nin; i++)
        in[i] = tc_g_const(g, make_input(&c->in[i], &seed));
    ng = pinned(g, c, in, "/device:GPU:0");
    nc = pinned(g, c, in, "/device:CPU:0");
    for (int k = 0; k < c->nout; k++) {
        fetch[k] = (floe_output){ng, k};
        fetch[c->nout + k] = (floe_output){nc, k};
    }
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, NULL, NULL, 0, fetch, 2 * c->nout, NULL, 0, vals) != FLOE_OK)
        fail_msg("%s: %s", c->op, floe_last_error());
    for (int k = 0; k < c->nout; k++) {
        /* the GPU node's outputs live in GPU memory (or host memory for host args) */
        compare(c, k, vals[k], vals[c->nout + k]);
    }
    tc_unref_all(vals, 2 * c->nout);
    floe_session_free(s);
    floe_graph_free(g);
}

/* ---- The cases ----------------------------------------------------------------------------- */

#define IN(dt, nd, d0, d1, d2, d3, lo, hi) {dt, nd, {d0, d1, d2, d3}, lo, hi, NULL}
#define INTS(nd, d0, vals) {FLOE_DTYPE_I32, nd, {d0, 0, 0, 0}, 0, 0, vals}

static void a_transpose_b(floe_attrs *a) { floe_attrs_set_bool(a, "transpose_b", 1); }
static void a_transpose_a(floe_attrs *a) { floe_attrs_set_bool(a, "transpose_a", 1); }
static void a_adj_x(floe_attrs *a) { floe_attrs_set_bool(a, "adj_x", 1); }
static void a_keep(floe_attrs *a) { floe_attrs_set_bool(a, "keep_dims", 1); }
static void a_dst_i32(floe_attrs *a) { floe_attrs_set_type(a, "DstT", FLOE_DTYPE_I32); }
static void a_dst_f64(floe_attrs *a) { floe_attrs_set_type(a, "DstT", FLOE_DTYPE_F64); }
static void a_nchw(floe_attrs *a) { floe_attrs_set_string(a, "data_format", "NCHW", 4); }

static void seeded(floe_attrs *a, floe_dtype dt) {
    floe_attrs_set_int(a, "seed", 7);
    floe_attrs_set_int(a, "seed2", 3);
    floe_attrs_set_type(a, "dtype", dt);
}
static void a_seeded_f32(floe_attrs *a) { seeded(a, FLOE_DTYPE_F32); }
static void a_seeded_f64(floe_attrs *a) { seeded(a, FLOE_DTYPE_F64); }

/* NCHW: strides (and ksize) are [1, 1, h, w] and data_format is set. */
static void conv_attrs(floe_attrs *a, int64_t s, const char *pad, bool nchw) {
    int64_t st[4] = {1, s, s, 1}, st_nchw[4] = {1, 1, s, s};
    floe_attrs_set_int_list(a, "strides", nchw ? st_nchw : st, 4);
    floe_attrs_set_string(a, "padding", pad, strlen(pad));
    if (nchw)
        a_nchw(a);
}
static void a_conv_same1(floe_attrs *a) { conv_attrs(a, 1, "SAME", false); }
static void a_conv_same2(floe_attrs *a) { conv_attrs(a, 2, "SAME", false); } /* asymmetric pads */
static void a_conv_valid2(floe_attrs *a) { conv_attrs(a, 2, "VALID", false); }
static void a_conv_same1_nchw(floe_attrs *a) { conv_attrs(a, 1, "SAME", true); }
static void a_conv_same2_nchw(floe_attrs *a) { conv_attrs(a, 2, "SAME", true); }

static void pool_attrs(floe_attrs *a, int64_t k, int64_t s, const char *pad, bool nchw) {
    int64_t ks[4] = {1, k, k, 1}, st[4] = {1, s, s, 1};
    int64_t ks_nchw[4] = {1, 1, k, k}, st_nchw[4] = {1, 1, s, s};
    floe_attrs_set_int_list(a, "ksize", nchw ? ks_nchw : ks, 4);
    floe_attrs_set_int_list(a, "strides", nchw ? st_nchw : st, 4);
    floe_attrs_set_string(a, "padding", pad, strlen(pad));
    if (nchw)
        a_nchw(a);
}
static void a_pool_2_2_valid(floe_attrs *a) { pool_attrs(a, 2, 2, "VALID", false); }
static void a_pool_3_2_same(floe_attrs *a) { pool_attrs(a, 3, 2, "SAME", false); }
static void a_pool_3_2_same_nchw(floe_attrs *a) { pool_attrs(a, 3, 2, "SAME", true); }

static const int64_t axes_1[] = {1}, axes_02[] = {0, 2}, axes_neg[] = {-1};
static const int64_t shape_24[] = {2, -1}, perm_201[] = {2, 0, 1};
static const int64_t dims_345[] = {3, 4, 5};
static const int64_t conv_in[] = {2, 9, 9, 3}, conv_in_s2[] = {2, 9, 9, 3};
static const int64_t conv_in_nchw[] = {2, 3, 9, 9};
static const int64_t conv_f[] = {3, 3, 3, 4};
static const int64_t labels4[] = {0, 3, 9, 5};
static const int64_t pool_in[] = {2, 8, 8, 3}, pool_in_nchw[] = {2, 3, 8, 8};
static const int64_t axis0[] = {0}, begin_3[] = {1, 0, 2}, size_3[] = {1, -1, 2};
static const int64_t idx5[] = {3, 0, 3, 1, 2};
static const int64_t rand_shape[] = {37, 11};

static const conf_case cases[] = {
    /* cuBLAS */
    {"MatMul", 2, 1, {IN(FLOE_DTYPE_F32, 2, 33, 47, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 47, 65, 0, 0, -1, 1)}, NULL, 1e-4, 1e-4},
    {"MatMul", 2, 1, {IN(FLOE_DTYPE_F32, 2, 33, 47, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 65, 47, 0, 0, -1, 1)}, a_transpose_b, 1e-4, 1e-4},
    {"MatMul", 2, 1, {IN(FLOE_DTYPE_F32, 2, 47, 33, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 47, 65, 0, 0, -1, 1)}, a_transpose_a, 1e-4, 1e-4},
    {"MatMul", 2, 1, {IN(FLOE_DTYPE_F64, 2, 20, 30, 0, 0, -1, 1), IN(FLOE_DTYPE_F64, 2, 30, 10, 0, 0, -1, 1)}, NULL, 1e-10, 1e-12},
    {"BatchMatMulV2", 2, 1, {IN(FLOE_DTYPE_F32, 3, 4, 8, 16, 0, -1, 1), IN(FLOE_DTYPE_F32, 3, 4, 16, 5, 0, -1, 1)}, NULL, 1e-4, 1e-4},
    {"BatchMatMulV2", 2, 1, {IN(FLOE_DTYPE_F32, 3, 4, 16, 8, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 16, 5, 0, 0, -1, 1)}, a_adj_x, 1e-4, 1e-4},
    {"BatchMatMulV2", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 1, 3, 4, -1, 1), IN(FLOE_DTYPE_F32, 4, 1, 3, 4, 2, -1, 1)}, NULL, 1e-4, 1e-4},
    /* cuDNN */
    {"Conv2D", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1), IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1)}, a_conv_same1, 2e-3, 1e-4},
    {"Conv2D", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 10, 10, 3, -1, 1), IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1)}, a_conv_same2, 2e-3, 1e-4},
    {"Conv2D", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1), IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1)}, a_conv_valid2, 2e-3, 1e-4},
    {"Conv2DBackpropInput", 3, 1, {{FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_in}, IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1), IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 4, -1, 1)}, a_conv_same1, 2e-3, 1e-4},
    {"Conv2DBackpropInput", 3, 1, {{FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_in_s2}, IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1), IN(FLOE_DTYPE_F32, 4, 2, 5, 5, 4, -1, 1)}, a_conv_same2, 2e-3, 1e-4},
    {"Conv2DBackpropFilter", 3, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1), {FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_f}, IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 4, -1, 1)}, a_conv_same1, 2e-3, 1e-4},
    {"Conv2DBackpropFilter", 3, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1), {FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_f}, IN(FLOE_DTYPE_F32, 4, 2, 5, 5, 4, -1, 1)}, a_conv_same2, 2e-3, 1e-4},
    /* NCHW: cuDNN's KCRS filters; asymmetric SAME padding as [n * c, h, w, 1] */
    {"Conv2D", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 9, 9, -1, 1), IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1)}, a_conv_same1_nchw, 2e-3, 1e-4},
    {"Conv2D", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 10, 10, -1, 1), IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1)}, a_conv_same2_nchw, 2e-3, 1e-4},
    {"Conv2DBackpropInput", 3, 1, {{FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_in_nchw}, IN(FLOE_DTYPE_F32, 4, 3, 3, 3, 4, -1, 1), IN(FLOE_DTYPE_F32, 4, 2, 4, 5, 5, -1, 1)}, a_conv_same2_nchw, 2e-3, 1e-4},
    {"Conv2DBackpropFilter", 3, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 9, 9, -1, 1), {FLOE_DTYPE_I32, 1, {4}, 0, 0, conv_f}, IN(FLOE_DTYPE_F32, 4, 2, 4, 5, 5, -1, 1)}, a_conv_same2_nchw, 2e-3, 1e-4},
    {"Softmax", 1, 1, {IN(FLOE_DTYPE_F32, 2, 7, 10, 0, 0, -5, 5)}, NULL, 1e-5, 1e-6},
    {"LogSoftmax", 1, 1, {IN(FLOE_DTYPE_F64, 3, 2, 3, 10, 0, -5, 5)}, NULL, 1e-10, 1e-12},
    /* Floe's kernels: elementwise with broadcasting */
    {"AddV2", 2, 1, {IN(FLOE_DTYPE_F32, 3, 4, 5, 6, 0, -1, 1), IN(FLOE_DTYPE_F32, 1, 6, 0, 0, 0, -1, 1)}, NULL, 1e-6, 1e-7},
    {"AddV2", 2, 1, {IN(FLOE_DTYPE_I32, 2, 3, 1, 0, 0, -100, 100), IN(FLOE_DTYPE_I32, 2, 1, 4, 0, 0, -100, 100)}, NULL, 0, 0},
    {"Sub", 2, 1, {IN(FLOE_DTYPE_F64, 3, 4, 1, 6, 0, -1, 1), IN(FLOE_DTYPE_F64, 3, 1, 5, 1, 0, -1, 1)}, NULL, 0, 0},
    {"Mul", 2, 1, {IN(FLOE_DTYPE_F32, 2, 100, 30, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 0, 0, 0, 0, 0, -1, 1)}, NULL, 1e-6, 1e-7},
    {"Mul", 2, 1, {IN(FLOE_DTYPE_I64, 1, 50, 0, 0, 0, -1000, 1000), IN(FLOE_DTYPE_I64, 1, 50, 0, 0, 0, -1000, 1000)}, NULL, 0, 0},
    {"RealDiv", 2, 1, {IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, 0.5, 2)}, NULL, 1e-6, 1e-7},
    {"Maximum", 2, 1, {IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 1, 9, 0, 0, 0, -1, 1)}, NULL, 0, 0},
    {"Minimum", 2, 1, {IN(FLOE_DTYPE_I32, 2, 8, 9, 0, 0, -9, 9), IN(FLOE_DTYPE_I32, 2, 8, 9, 0, 0, -9, 9)}, NULL, 0, 0},
    {"ReluGrad", 2, 1, {IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -1, 1)}, NULL, 0, 0},
    {"Relu6Grad", 2, 1, {IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -1, 1), IN(FLOE_DTYPE_F32, 2, 8, 9, 0, 0, -2, 8)}, NULL, 0, 0},
    {"Neg", 1, 1, {IN(FLOE_DTYPE_I64, 1, 40, 0, 0, 0, -100, 100)}, NULL, 0, 0},
    {"Abs", 1, 1, {IN(FLOE_DTYPE_F32, 1, 40, 0, 0, 0, -10, 10)}, NULL, 0, 0},
    {"Exp", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -10, 10)}, NULL, 2e-6, 1e-7},
    {"Log", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, 0.01, 10)}, NULL, 2e-6, 1e-6},
    {"Sqrt", 1, 1, {IN(FLOE_DTYPE_F64, 1, 400, 0, 0, 0, 0, 10)}, NULL, 0, 0},
    {"Rsqrt", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, 0.1, 10)}, NULL, 2e-6, 1e-7},
    {"Square", 1, 1, {IN(FLOE_DTYPE_I32, 1, 40, 0, 0, 0, -100, 100)}, NULL, 0, 0},
    {"Relu", 1, 1, {IN(FLOE_DTYPE_F32, 2, 30, 40, 0, 0, -1, 1)}, NULL, 0, 0},
    {"Relu6", 1, 1, {IN(FLOE_DTYPE_F32, 2, 30, 40, 0, 0, -3, 9)}, NULL, 0, 0},
    {"Sigmoid", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -20, 20)}, NULL, 2e-6, 1e-7},
    {"Tanh", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -10, 10)}, NULL, 2e-6, 1e-7},
    {"Sign", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -1, 1)}, NULL, 0, 0},
    {"Sin", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -10, 10)}, NULL, 2e-6, 1e-6},
    {"Cos", 1, 1, {IN(FLOE_DTYPE_F64, 1, 400, 0, 0, 0, -10, 10)}, NULL, 1e-12, 1e-14},
    {"Log1p", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -0.9, 10)}, NULL, 2e-6, 1e-7},
    {"Softplus", 1, 1, {IN(FLOE_DTYPE_F32, 1, 400, 0, 0, 0, -30, 30)}, NULL, 2e-6, 1e-7},
    /* reductions, bias */
    {"Sum", 2, 1, {IN(FLOE_DTYPE_F32, 3, 7, 300, 5, 0, -1, 1), INTS(1, 1, axes_1)}, NULL, 2e-3, 1e-4},
    {"Sum", 2, 1, {IN(FLOE_DTYPE_F32, 3, 7, 3000, 5, 0, -1, 1), INTS(1, 2, axes_02)}, a_keep, 2e-3, 1e-4},
    {"Mean", 2, 1, {IN(FLOE_DTYPE_F64, 2, 10, 20, 0, 0, -1, 1), INTS(1, 1, axes_neg)}, NULL, 1e-10, 1e-12},
    {"Mean", 2, 1, {IN(FLOE_DTYPE_I32, 2, 10, 20, 0, 0, -50, 50), INTS(1, 1, axes_1)}, NULL, 0, 0},
    {"Prod", 2, 1, {IN(FLOE_DTYPE_F32, 2, 10, 6, 0, 0, 0.5, 1.5), INTS(1, 1, axes_1)}, NULL, 1e-5, 1e-7},
    {"Max", 2, 1, {IN(FLOE_DTYPE_F32, 3, 4, 5, 6, 0, -1, 1), INTS(1, 2, axes_02)}, NULL, 0, 0},
    {"Min", 2, 1, {IN(FLOE_DTYPE_I64, 3, 4, 5, 6, 0, -99, 99), INTS(1, 1, axes_1)}, NULL, 0, 0},
    {"BiasAdd", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 4, 5, -1, 1), IN(FLOE_DTYPE_F32, 1, 5, 0, 0, 0, -1, 1)}, NULL, 1e-6, 1e-7},
    {"BiasAdd", 2, 1, {IN(FLOE_DTYPE_F32, 4, 2, 5, 4, 3, -1, 1), IN(FLOE_DTYPE_F32, 1, 5, 0, 0, 0, -1, 1)}, a_nchw, 1e-6, 1e-7},
    {"BiasAddGrad", 1, 1, {IN(FLOE_DTYPE_F32, 4, 8, 7, 6, 5, -1, 1)}, NULL, 2e-5, 1e-5},
    /* data movement */
    {"Identity", 1, 1, {IN(FLOE_DTYPE_F32, 2, 3, 4, 0, 0, -1, 1)}, NULL, 0, 0},
    {"StopGradient", 1, 1, {IN(FLOE_DTYPE_F32, 2, 3, 4, 0, 0, -1, 1)}, NULL, 0, 0},
    {"Reshape", 2, 1, {IN(FLOE_DTYPE_F32, 3, 2, 3, 4, 0, -1, 1), INTS(1, 2, shape_24)}, NULL, 0, 0},
    {"Shape", 1, 1, {IN(FLOE_DTYPE_F32, 3, 2, 3, 4, 0, -1, 1)}, NULL, 0, 0},
    {"Cast", 1, 1, {IN(FLOE_DTYPE_F32, 1, 100, 0, 0, 0, -1e10, 1e10)}, a_dst_i32, 0, 0},
    {"Cast", 1, 1, {IN(FLOE_DTYPE_I32, 1, 100, 0, 0, 0, -1000, 1000)}, a_dst_f64, 0, 0},
    {"Fill", 2, 1, {INTS(1, 3, dims_345), IN(FLOE_DTYPE_F32, 0, 0, 0, 0, 0, -1, 1)}, NULL, 0, 0},
    {"ZerosLike", 1, 1, {IN(FLOE_DTYPE_F64, 2, 3, 4, 0, 0, -1, 1)}, NULL, 0, 0},
    {"OnesLike", 1, 1, {IN(FLOE_DTYPE_I32, 2, 3, 4, 0, 0, -9, 9)}, NULL, 0, 0},
    {"Transpose", 2, 1, {IN(FLOE_DTYPE_F32, 3, 3, 4, 5, 0, -1, 1), INTS(1, 3, perm_201)}, NULL, 0, 0},
    {"ConcatV2", 4, 1, {IN(FLOE_DTYPE_F32, 3, 2, 3, 4, 0, -1, 1), IN(FLOE_DTYPE_F32, 3, 2, 5, 4, 0, -1, 1), IN(FLOE_DTYPE_F32, 3, 2, 0, 4, 0, -1, 1), INTS(0, 1, axes_1)}, NULL, 0, 0, 3},
    {"ConcatV2", 3, 1, {IN(FLOE_DTYPE_I64, 2, 2, 3, 0, 0, -9, 9), IN(FLOE_DTYPE_I64, 2, 4, 3, 0, 0, -9, 9), INTS(0, 1, axis0)}, NULL, 0, 0, 2},
    {"Slice", 3, 1, {IN(FLOE_DTYPE_F32, 3, 3, 4, 5, 0, -1, 1), INTS(1, 3, begin_3), INTS(1, 3, size_3)}, NULL, 0, 0},
    {"GatherV2", 3, 1, {IN(FLOE_DTYPE_F32, 2, 4, 6, 0, 0, -1, 1), INTS(1, 5, idx5), INTS(0, 1, axis0)}, NULL, 0, 0},
    {"GatherV2", 3, 1, {IN(FLOE_DTYPE_F64, 3, 2, 4, 3, 0, -1, 1), INTS(1, 5, idx5), INTS(0, 1, axes_1)}, NULL, 0, 0},
    /* random numbers: the same seeds draw the CPU's Philox streams */
    {"RandomUniform", 1, 1, {INTS(1, 2, rand_shape)}, a_seeded_f32, 0, 0},
    {"RandomUniform", 1, 1, {INTS(1, 2, rand_shape)}, a_seeded_f64, 0, 0},
    {"RandomStandardNormal", 1, 1, {INTS(1, 2, rand_shape)}, a_seeded_f32, 1e-5, 1e-6},
    {"RandomStandardNormal", 1, 1, {INTS(1, 2, rand_shape)}, a_seeded_f64, 1e-10, 1e-12},
    {"TruncatedNormal", 1, 1, {INTS(1, 2, rand_shape)}, a_seeded_f32, 1e-5, 1e-6},
    /* losses, pooling */
    {"SparseSoftmaxCrossEntropyWithLogits", 2, 2, {IN(FLOE_DTYPE_F32, 2, 4, 10, 0, 0, -5, 5), {FLOE_DTYPE_I64, 1, {4}, 0, 0, labels4}}, NULL, 1e-5, 1e-6},
    {"MaxPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 8, 8, 3, -1, 1)}, a_pool_2_2_valid, 0, 0},
    {"MaxPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1)}, a_pool_3_2_same, 0, 0},
    {"AvgPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1)}, a_pool_3_2_same, 1e-5, 1e-6},
    {"AvgPoolGrad", 2, 1, {{FLOE_DTYPE_I32, 1, {4}, 0, 0, pool_in}, IN(FLOE_DTYPE_F32, 4, 2, 4, 4, 3, -1, 1)}, a_pool_3_2_same, 1e-5, 1e-6},
    {"MaxPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 9, 9, -1, 1)}, a_pool_3_2_same_nchw, 0, 0},
    {"AvgPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 3, 9, 9, -1, 1)}, a_pool_3_2_same_nchw, 1e-5, 1e-6},
    {"AvgPoolGrad", 2, 1, {{FLOE_DTYPE_I32, 1, {4}, 0, 0, pool_in_nchw}, IN(FLOE_DTYPE_F32, 4, 2, 3, 4, 4, -1, 1)}, a_pool_3_2_same_nchw, 1e-5, 1e-6},
};

/* MaxPoolGrad takes the forward output as input: built from a MaxPool on each device. */
static void conformance_maxpool_grad(bool nchw) {
    conf_case mp = {"MaxPool", 1, 1, {IN(FLOE_DTYPE_F32, 4, 2, 9, 9, 3, -1, 1)}, a_pool_3_2_same, 0, 0};
    conf_case mg = {"MaxPoolGrad", 3, 1, {{0}}, a_pool_3_2_same, 1e-6, 1e-7};
    if (nchw) {
        mp.in[0] = (input_spec)IN(FLOE_DTYPE_F32, 4, 2, 3, 9, 9, -1, 1);
        mp.attrs = mg.attrs = a_pool_3_2_same_nchw;
    }
    floe_graph *g;
    floe_session *s;
    uint64_t seed = 77;
    floe_node *x, *yg, *yc, *dy, *in_g[3], *in_c[3], *gg, *gc;
    floe_tensor *v[2] = {NULL};
    int64_t dyd[4] = {2, 5, 5, 3}, dyd_nchw[4] = {2, 3, 5, 5};

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    x = tc_g_const(g, make_input(&mp.in[0], &seed));
    dy = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, nchw ? dyd_nchw : dyd, 4, -1, 1, seed++));
    yg = pinned(g, &mp, &x, "/device:GPU:0");
    yc = pinned(g, &mp, &x, "/device:CPU:0");
    in_g[0] = x, in_g[1] = yg, in_g[2] = dy;
    in_c[0] = x, in_c[1] = yc, in_c[2] = dy;
    gg = pinned(g, &mg, in_g, "/device:GPU:0");
    gc = pinned(g, &mg, in_c, "/device:CPU:0");
    floe_output f[2] = {{gg, 0}, {gc, 0}};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, NULL, NULL, 0, f, 2, NULL, 0, v) != FLOE_OK)
        fail_msg("MaxPoolGrad: %s", floe_last_error());
    compare(&mg, 0, v[0], v[1]);
    tc_unref_all(v, 2);
    floe_session_free(s);
    floe_graph_free(g);
}

/* FusedBatchNormV3 and FusedBatchNormGradV3 (more inputs than a conf_case holds): the
 * forward on each device, all six outputs compared; then the gradient on each device
 * from its own device's reserve spaces, and on the GPU from the CPU's (mixed placement
 * must work, so the reserve spaces must mean the same on both). */
typedef struct bn_case {
    int training, nchw, empty_stats;
    float factor;
} bn_case;

static floe_node *bn_node(floe_graph *g, const char *op, floe_output *in, int nin,
                          const bn_case *bc, const char *device) {
    floe_node_builder *b;
    floe_node *n = NULL;
    floe_attrs *a;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(b, in[i]);
    floe_node_builder_set_device(b, device);
    a = floe_node_builder_attrs(b);
    floe_attrs_set_float(a, "epsilon", 0.001f);
    floe_attrs_set_bool(a, "is_training", bc->training);
    if (bc->nchw)
        floe_attrs_set_string(a, "data_format", "NCHW", 4);
    if (strcmp(op, "FusedBatchNormV3") == 0)
        floe_attrs_set_float(a, "exponential_avg_factor", bc->factor);
    if (floe_node_builder_finish(b, &n) != FLOE_OK)
        fail_msg("%s on %s: %s", op, device, floe_last_error());
    return n;
}

static void conformance_batch_norm_case(const bn_case *bc) {
    conf_case fwd = {"FusedBatchNormV3", 5, 6, {{0}}, NULL, 2e-3, 1e-4};
    conf_case bwd = {"FusedBatchNormGradV3", 6, 5, {{0}}, NULL, 2e-3, 1e-4};
    int64_t xd[4] = {4, 6, 7, 8}, cd[1] = {8}, ed[1] = {0};
    floe_graph *g;
    floe_session *s;
    uint64_t seed = 1234 + (uint64_t)(bc->training * 4 + bc->nchw * 2 + bc->empty_stats);
    floe_node *x, *dy, *sc, *of, *mean, *var, *fg, *fc, *gg, *gc, *gm;
    floe_output in[6], f[6 * 2 + 5 * 3];
    floe_tensor *v[6 * 2 + 5 * 3] = {NULL};

    if (bc->nchw)
        xd[1] = 8, xd[3] = 6;    /* [4, 8, 7, 6]: 8 channels either way */
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    x = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, xd, 4, -2, 3, seed++));
    dy = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, xd, 4, -1, 1, seed++));
    sc = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, cd, 1, 0.5, 1.5, seed++));
    of = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, cd, 1, -1, 1, seed++));
    if (bc->empty_stats) {
        mean = tc_g_const(g, tc_tensor(FLOE_DTYPE_F32, ed, 1, NULL));
        var = tc_g_const(g, tc_tensor(FLOE_DTYPE_F32, ed, 1, NULL));
    } else {
        mean = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, cd, 1, -0.5, 0.5, seed++));
        var = tc_g_const(g, tc_rand_tensor(FLOE_DTYPE_F32, cd, 1, 0.5, 2, seed++));
    }
    in[0] = (floe_output){x, 0}, in[1] = (floe_output){sc, 0}, in[2] = (floe_output){of, 0};
    in[3] = (floe_output){mean, 0}, in[4] = (floe_output){var, 0};
    fg = bn_node(g, "FusedBatchNormV3", in, 5, bc, "/device:GPU:0");
    fc = bn_node(g, "FusedBatchNormV3", in, 5, bc, "/device:CPU:0");
    in[0] = (floe_output){dy, 0}, in[1] = (floe_output){x, 0}, in[2] = (floe_output){sc, 0};
    for (int i = 0; i < 3; i++)
        in[3 + i] = (floe_output){fg, 3 + i};
    gg = bn_node(g, "FusedBatchNormGradV3", in, 6, bc, "/device:GPU:0");
    for (int i = 0; i < 3; i++)
        in[3 + i] = (floe_output){fc, 3 + i};
    gc = bn_node(g, "FusedBatchNormGradV3", in, 6, bc, "/device:CPU:0");
    gm = bn_node(g, "FusedBatchNormGradV3", in, 6, bc, "/device:GPU:0");
    for (int k = 0; k < 6; k++) {
        f[k] = (floe_output){fg, k};
        f[6 + k] = (floe_output){fc, k};
    }
    for (int k = 0; k < 5; k++) {
        f[12 + k] = (floe_output){gg, k};
        f[17 + k] = (floe_output){gc, k};
        f[22 + k] = (floe_output){gm, k};
    }
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, NULL, NULL, 0, f, 27, NULL, 0, v) != FLOE_OK)
        fail_msg("FusedBatchNormV3 (training %d, NCHW %d): %s", bc->training, bc->nchw,
                 floe_last_error());
    for (int k = 0; k < 6; k++)
        compare(&fwd, k, v[k], v[6 + k]);
    for (int k = 0; k < 5; k++) {
        compare(&bwd, k, v[12 + k], v[17 + k]);
        compare(&bwd, k, v[22 + k], v[17 + k]);
    }
    tc_unref_all(v, 27);
    floe_session_free(s);
    floe_graph_free(g);
}

static void conformance_batch_norm(void) {
    static const bn_case bcs[] = {
        {1, 0, 1, 1.0f},     /* training, NHWC, no running statistics given */
        {1, 0, 0, 0.25f},    /* training, blended with the running statistics */
        {0, 0, 0, 1.0f},     /* inference */
        {1, 1, 0, 0.5f},     /* NCHW */
        {0, 1, 0, 1.0f},
    };
    for (size_t i = 0; i < sizeof(bcs) / sizeof(bcs[0]); i++)
        conformance_batch_norm_case(&bcs[i]);
}

static void conformance_every_case(void **state) {
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
    conformance_maxpool_grad(false);
    conformance_maxpool_grad(true);
    conformance_batch_norm();
}

/* Ops with a dev_cuda kernel that the cases above, the optimizer test or the variable
 * plumbing cover. */
static bool covered(const char *op) {
    static const char *const elsewhere[] = {
        "MaxPoolGrad", "FusedBatchNormV3", "FusedBatchNormGradV3",
        "ResourceApplyGradientDescent", "ResourceApplyMomentum",
        "ResourceApplyAdam", "ResourceApplyAdagrad", "ResourceApplyRMSProp", "VarHandleOp",
        "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(cases[i].op, op) == 0)
            return true;
    for (size_t i = 0; i < sizeof(elsewhere) / sizeof(elsewhere[0]); i++)
        if (strcmp(elsewhere[i], op) == 0)
            return true;
    return false;
}

static void conformance_covers_every_gpu_kernel(void **state) {
    static char buf[1 << 16];
    int missing = 0;
    for (int i = 0; i < floe_context_num_ops(ctx); i++) {
        const char *op = floe_context_op_name(ctx, i);
        assert_int_equal(floe_context_describe_op(ctx, op, buf, sizeof(buf)), FLOE_OK);
        char *gpu = strstr(buf, "    GPU:");
        if (gpu != NULL && strstr(gpu, "plugin dev_cuda") != NULL && !covered(op)) {
            print_error("no conformance case for GPU kernel %s\n", op);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

/* ---- Optimizers: GPU- and CPU-pinned variables from the same start ----------------------- */

typedef struct opt_case {
    const char *op;
    int nslots;
    int nscalars;
    double scalars[8];
    const char *flag;          /* bool attr set to 1, or NULL */
} opt_case;

static floe_node *var_node(floe_graph *g, const char *dev, const char *name, int64_t n) {
    floe_node_builder *b;
    floe_node *v;
    assert_int_equal(floe_node_builder_new(g, "VarHandleOp", name, &b), FLOE_OK);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", &n, 1);
    floe_attrs_set_string(floe_node_builder_attrs(b), "shared_name", name, strlen(name));
    floe_node_builder_set_device(b, dev);
    v = tc_finish(b);
    return v;
}

static floe_node *op_node(floe_graph *g, const char *op, floe_node *const *in, int nin,
                          const char *dev, void (*attrs)(floe_attrs *, const void *),
                          const void *arg) {
    floe_node_builder *b;
    assert_int_equal(floe_node_builder_new(g, op, NULL, &b), FLOE_OK);
    for (int i = 0; i < nin; i++)
        floe_node_builder_add_input(b, (floe_output){in[i], 0});
    floe_node_builder_set_device(b, dev);
    if (attrs != NULL)
        attrs(floe_node_builder_attrs(b), arg);
    return tc_finish(b);
}

static void set_flag(floe_attrs *a, const void *arg) {
    if (arg != NULL)
        floe_attrs_set_bool(a, (const char *)arg, 1);
}

static void set_read_dtype(floe_attrs *a, const void *arg) {
    floe_attrs_set_type(a, "dtype", FLOE_DTYPE_F32);
}

static void optimizer_matches_cpu(const opt_case *oc) {
    enum { N = 1000 };
    const char *devs[2] = {"/device:GPU:0", "/device:CPU:0"};
    floe_graph *g;
    floe_session *s;
    floe_node *assigns[8], *apply[2], *reads[8];
    int na = 0, nr = 0;
    uint64_t seed = 4242;
    int64_t n = N;
    floe_tensor *init[4], *grad = tc_rand_tensor(FLOE_DTYPE_F32, &n, 1, -1, 1, seed++);
    floe_tensor *vals[8] = {NULL};

    for (int k = 0; k < oc->nslots; k++)  /* slots positive: accumulators, v */
        init[k] = tc_rand_tensor(FLOE_DTYPE_F32, &n, 1, k == 0 ? -1 : 0.1, 1, seed++);
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *gnode = tc_g_const(g, grad);
    for (int d = 0; d < 2; d++) {
        floe_node *in[12];
        int ni = 0;
        for (int k = 0; k < oc->nslots; k++) {
            char name[32];
            snprintf(name, sizeof(name), "v%d_%d", d, k);
            floe_node *v = var_node(g, devs[d], name, N);
            floe_tensor_ref(init[k]);
            floe_node *c = tc_g_const(g, init[k]);
            floe_node *ac[2] = {v, c};
            assigns[na++] = op_node(g, "AssignVariableOp", ac, 2, devs[d], NULL, NULL);
            in[ni++] = v;
        }
        /* scalars and the gradient in op order: the gradient's place varies */
        int grad_at = strcmp(oc->op, "ResourceApplyGradientDescent") == 0 ? 1
                      : strcmp(oc->op, "ResourceApplyMomentum") == 0 ? 1
                      : strcmp(oc->op, "ResourceApplyAdagrad") == 0 ? 1
                                                                    : oc->nscalars;
        for (int k = 0, used = 0; k <= oc->nscalars; k++) {
            if (k == grad_at)
                in[ni++] = gnode;
            else
                in[ni++] = tc_g_const(g, tc_scalar_f32((float)oc->scalars[used++]));
        }
        apply[d] = op_node(g, oc->op, in, ni, devs[d], set_flag, oc->flag);
        for (int k = 0; k < oc->nslots; k++) {
            reads[nr++] = op_node(g, "ReadVariableOp", &in[k], 1, devs[d], set_read_dtype, NULL);
        }
    }
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, NULL, NULL, 0, NULL, 0, assigns, na, NULL) != FLOE_OK)
        fail_msg("%s assign: %s", oc->op, floe_last_error());
    for (int step = 0; step < 3; step++)
        if (floe_session_run(s, NULL, NULL, 0, NULL, 0, apply, 2, NULL) != FLOE_OK)
            fail_msg("%s: %s", oc->op, floe_last_error());
    floe_output f[8];
    for (int k = 0; k < nr; k++)
        f[k] = (floe_output){reads[k], 0};
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, f, nr, NULL, 0, vals), FLOE_OK);
    conf_case c = {oc->op, 0, 0, {{0}}, NULL, 1e-5, 1e-6};
    for (int k = 0; k < oc->nslots; k++)
        compare(&c, k, vals[k], vals[oc->nslots + k]);
    tc_unref_all(vals, nr);
    tc_unref_all(init, oc->nslots);
    floe_session_free(s);
    floe_graph_free(g);
}

static void optimizers_match_cpu(void **state) {
    static const opt_case oc[] = {
        {"ResourceApplyGradientDescent", 1, 1, {0.1}, NULL},
        {"ResourceApplyMomentum", 2, 2, {0.1, 0.9}, NULL},
        {"ResourceApplyMomentum", 2, 2, {0.1, 0.9}, "use_nesterov"},
        {"ResourceApplyAdam", 3, 6, {0.9, 0.999, 0.01, 0.9, 0.999, 1e-7}, NULL},
        {"ResourceApplyAdam", 3, 6, {0.9, 0.999, 0.01, 0.9, 0.999, 1e-7}, "use_nesterov"},
        {"ResourceApplyAdagrad", 2, 1, {0.1}, NULL},
        {"ResourceApplyRMSProp", 3, 4, {0.01, 0.9, 0.5, 1e-7}, NULL},
    };
    for (size_t i = 0; i < sizeof(oc) / sizeof(oc[0]); i++)
        optimizer_matches_cpu(&oc[i]);
}

/* ---- The device contract ------------------------------------------------------------------- */

/* Identity on the GPU of a Const: one copy in, one copy out, through the staging
 * buffers (8 MiB by default: sizes below, at and above it). */
static void copies_round_trip_around_staging_size(void **state) {
    static const int64_t sizes[] = {1, 255, 4096, (8 << 20) / 4 - 1, (8 << 20) / 4,
                                    (8 << 20) / 4 + 7, (20 << 20) / 4};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t seed = (uint64_t)i + 1;
        int64_t n = sizes[i];
        floe_tensor *t = tc_rand_tensor(FLOE_DTYPE_F32, &n, 1, -1, 1, seed++), *out, *h;
        floe_graph *g;
        floe_session *s;
        assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
        floe_tensor_ref(t);
        floe_node *c = tc_g_const(g, t);
        floe_node *id = op_node(g, "Neg", &c, 1, "/device:GPU:0", NULL, NULL);
        floe_node *id2 = op_node(g, "Neg", &id, 1, "/device:GPU:0", NULL, NULL);
        floe_output f = {id2, 0};
        assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
        assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &out), FLOE_OK);
        assert_int_equal(floe_tensor_to_host(out, &h), FLOE_OK);
        assert_memory_equal(floe_tensor_data(h), floe_tensor_data(t), (size_t)n * 4);
        floe_tensor_unref(h);
        floe_tensor_unref(out);
        floe_tensor_unref(t);
        floe_session_free(s);
        floe_graph_free(g);
    }
}

static void bad_input_fails_with_message_not_crash(void **state) {
    floe_graph *g;
    floe_session *s;
    int64_t a[2] = {3, 4}, b[2] = {5, 6};
    floe_tensor *out = NULL;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *pa = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){-1, -1}, 2);
    floe_node *pb = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){-1, -1}, 2);
    floe_node *in[2] = {pa, pb};
    floe_node *mm = op_node(g, "MatMul", in, 2, "/device:GPU:0", NULL, NULL);
    floe_tensor *va = tc_tensor(FLOE_DTYPE_F32, a, 2, NULL), *vb = tc_tensor(FLOE_DTYPE_F32, b, 2, NULL);
    floe_output feeds[2] = {{pa, 0}, {pb, 0}}, f = {mm, 0};
    floe_tensor *fv[2] = {va, vb};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, feeds, fv, 2, &f, 1, NULL, 0, &out), FLOE_INVALID_ARGUMENT);
    assert_null(out);
    /* the CPU kernel's message, word for word */
    tc_assert_error_contains("Matrix size-incompatible: In[0]: [3,4], In[1]: [5,6]");
    tc_unref_all(fv, 2);
    floe_session_free(s);
    floe_graph_free(g);
}

/* Twice what the GPU's allocator may hold: RESOURCE_EXHAUSTED naming the node, no crash,
 * and the GPU works afterwards. */
static void out_of_gpu_memory_is_an_error(void **state) {
    floe_memory_stats ms = {.struct_size = sizeof(ms)};
    floe_device *gpu;
    floe_graph *g;
    floe_session *s;
    floe_tensor *out = NULL;
    int64_t one = 1;

    assert_int_equal(floe_context_find_device(ctx, "/device:GPU:0", &gpu), FLOE_OK);
    assert_int_equal(floe_device_get_memory_stats(gpu, &ms), FLOE_OK);
    if (ms.bytes_limit == 0)
        skip();
    int64_t n = (int64_t)(ms.bytes_limit / sizeof(float)) * 2;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *dims = tc_g_const(g, tc_i64(&one, 1, &n));
    floe_node *v = tc_g_const(g, tc_scalar_f32(1.0f));
    floe_node *in[2] = {dims, v};
    floe_node *fill = op_node(g, "Fill", in, 2, "/device:GPU:0", NULL, NULL);
    floe_output f = {fill, 0};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &out),
                     FLOE_RESOURCE_EXHAUSTED);
    assert_null(out);
    tc_assert_error_contains("Fill");
    floe_session_free(s);
    floe_graph_free(g);

    /* the GPU still computes */
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *c = tc_g_const(g, tc_scalar_f32(3.0f)), *cc[2] = {c, c};
    f = (floe_output){op_node(g, "Mul", cc, 2, "/device:GPU:0", NULL, NULL), 0};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &out), FLOE_OK);
    assert_true(tc_get_f(out, 0) == 9.0);
    floe_tensor_unref(out);
    floe_session_free(s);
    floe_graph_free(g);
}

/* A value made on GPU:0 and used on GPU:1 crosses by copy_peer (two GPUs: the emulated
 * run has FLOE_CUDA_EMU_DEVICES=2). */
static void two_gpus_exchange_values(void **state) {
    floe_device *g1;
    floe_graph *g;
    floe_session *s;
    floe_tensor *out = NULL, *xv;
    int64_t d[2] = {37, 41};

    if (floe_context_find_device(ctx, "/device:GPU:1", &g1) != FLOE_OK)
        skip();
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    xv = tc_rand_tensor(FLOE_DTYPE_F32, d, 2, -1, 1, 99);
    floe_node *x = tc_g_const(g, xv);
    floe_node *in[2] = {x, x};
    floe_node *sq = op_node(g, "Mul", in, 2, "/device:GPU:0", NULL, NULL);
    floe_node *in2[2] = {sq, sq};
    floe_node *twice = op_node(g, "AddV2", in2, 2, "/device:GPU:1", NULL, NULL);
    floe_output f = {twice, 0};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    if (floe_session_run(s, NULL, NULL, 0, &f, 1, NULL, 0, &out) != FLOE_OK)
        fail_msg("GPU:0 -> GPU:1: %s", floe_last_error());
    assert_ptr_equal(floe_tensor_device(out), g1);
    for (int64_t i = 0; i < d[0] * d[1]; i++) {
        double x0 = tc_get_f(xv, i), want = 2.0 * (double)(float)(x0 * x0);
        if (fabs(tc_get_f(out, i) - want) > 1e-6 * (1 + fabs(want)))
            fail_msg("element %lld: %g, want %g", (long long)i, tc_get_f(out, i), want);
    }
    floe_tensor_unref(out);
    floe_session_free(s);
    floe_graph_free(g);
}

/* TensorFlow's rule: unpinned nodes with a GPU kernel go to the GPU; pinned ones stay. */
static void placement_prefers_gpu_unless_pinned(void **state) {
    floe_graph *g;
    floe_session *s;
    int64_t d[2] = {4, 4};
    floe_tensor *out[2] = {NULL};
    floe_device *gpu;
    assert_int_equal(floe_context_find_device(ctx, "/device:GPU:0", &gpu), FLOE_OK);
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *c = tc_g_const(g, tc_tensor(FLOE_DTYPE_F32, d, 2, NULL));
    floe_node *in[2] = {c, c};
    floe_node *free_mm = op_node(g, "MatMul", in, 2, "", NULL, NULL);
    floe_node *cpu_mm = op_node(g, "MatMul", in, 2, "/device:CPU:0", NULL, NULL);
    floe_output f[2] = {{free_mm, 0}, {cpu_mm, 0}};
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    assert_int_equal(floe_session_run(s, NULL, NULL, 0, f, 2, NULL, 0, out), FLOE_OK);
    assert_ptr_equal(floe_tensor_device(out[0]), gpu);
    assert_true(floe_tensor_device(out[1]) != gpu);
    {
        /* the GPU output is held: the allocator counts it */
        floe_memory_stats ms = {.struct_size = sizeof(ms)};
        uint64_t before;
        assert_int_equal(floe_device_get_memory_stats(gpu, &ms), FLOE_OK);
        assert_true(ms.bytes_in_use >= 64);
        assert_true(ms.peak_bytes_in_use >= ms.bytes_in_use);
        assert_true(ms.bytes_limit > 0 && ms.num_allocs > 0);
        before = ms.bytes_in_use;
        tc_unref_all(out, 2);
        assert_int_equal(floe_device_get_memory_stats(gpu, &ms), FLOE_OK);
        assert_true(ms.bytes_in_use < before);
        assert_true(ms.bytes_cached > 0);
    }
    floe_session_free(s);
    floe_graph_free(g);
}

/* ---- Training on the GPU to the CPU's accuracy -------------------------------------------- */

/* `floe train` in a child: @visible NULL leaves the GPUs visible, "" hides them. */
static double train_accuracy(const char *visible) {
    char cmd[2048], line[512];
    const char *root = getenv("FLOE_BUILD_ROOT");
    double acc = -1;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "env %s '%s/tools/floe' train --model mlp --epochs 1 --seed 1 --no-checkpoint 2>&1",
             visible == NULL ? "-u FLOE_CUDA_VISIBLE_DEVICES" : "FLOE_CUDA_VISIBLE_DEVICES=",
             root != NULL ? root : ".");
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        const char *at = strstr(line, "test accuracy: ");
        fputs(line, stdout);
        if (at != NULL)
            acc = atof(at + strlen("test accuracy: "));
    }
    assert_int_equal(pclose(p), 0);
    return acc;
}

static void mlp_trains_on_gpu_to_cpu_accuracy(void **state) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 0) != 0)
        skip();
    double gpu = train_accuracy(NULL), cpu = train_accuracy("");
    printf("test accuracy after one epoch: GPU %.4f, CPU %.4f\n", gpu, cpu);
    assert_true(gpu > 0.7 && cpu > 0.7);
    assert_true(gpu >= cpu - 0.015);
}

int main(void) {
    floe_device *gpu;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conformance_every_case),
        cmocka_unit_test(conformance_covers_every_gpu_kernel),
        cmocka_unit_test(optimizers_match_cpu),
        cmocka_unit_test(copies_round_trip_around_staging_size),
        cmocka_unit_test(bad_input_fails_with_message_not_crash),
        cmocka_unit_test(placement_prefers_gpu_unless_pinned),
        cmocka_unit_test(out_of_gpu_memory_is_an_error),
        cmocka_unit_test(two_gpus_exchange_values),
        cmocka_unit_test(mlp_trains_on_gpu_to_cpu_accuracy),
    };
    int rc;

    /* Grow on demand: the `floe train` children share the GPU with this process (the
     * default would reserve 90% of its memory at the first allocation). */
    setenv("FLOE_CUDA_ALLOW_GROWTH", "1", 1);
    ctx = tc_context();
    if (floe_context_find_device(ctx, "/device:GPU:0", &gpu) != FLOE_OK) {
        const char *why = "dev_cuda was not built (no CUDA toolkit)";
        for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
            floe_plugin_info pi;
            memset(&pi, 0, sizeof(pi));
            pi.struct_size = sizeof(pi);
            if (floe_context_plugin(ctx, i, &pi) == FLOE_OK && strcmp(pi.name, "dev_cuda") == 0)
                why = pi.loaded ? "dev_cuda loaded but registered no GPU" : pi.reason;
        }
        /* test_dev_cuda_emu: the emulated GPU is always there; not finding it fails */
        bool emulated = getenv("FLOE_TEST_CUDA_EMULATED") != NULL;
        printf("%s: no GPU: %s\n", emulated ? "FAIL" : "SKIP", why);
        floe_context_free(ctx);
        return emulated ? 1 : 77;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    floe_context_free(ctx);
    return rc;
}
