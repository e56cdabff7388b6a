/*
 * bench_conv.c - convolution through a Floe session against the raw oneDNN primitive,
 * on the seed CNN's convolutions (batch 32: 28x28x1 -> 5x5x32 SAME, and 14x14x32 ->
 * 5x5x64 SAME), forward, backward data and backward weights.
 *
 * Floe runs a prepared plan (Placeholders for the f32 operands, a Const for the sizes
 * input of the backprops) with floe_plan_run; the output is dropped each time.  Its
 * kernels split the batch over Floe's pool, one single-threaded primitive per part
 * (plugins/ops_nn/dnnl_util.c), and reorder the filter each call.  The raw
 * side is what ops_nn's kernels make: the same oneDNN primitive with plain NHWC / HWIO
 * memory, created once, with its memory objects and scratchpad made once, executed and
 * waited for on this thread with OpenMP's default team (all cores).  Rounds alternate
 * the two sides so machine noise hits both; each figure is the median over rounds of the
 * mean time per call.  The ratio printed is raw / Floe (target >= 0.90).  For
 * information, "blocked" is the raw forward primitive with oneDNN's preferred ('any')
 * layouts, reorders excluded: what a blocked-layout design could gain at best.
 *
 * Run: ninja -C build benchmarks/bench_conv && build/benchmarks/bench_conv [rounds]
 */
#include "bench_common.h"

#include <oneapi/dnnl/dnnl.h>

#define CHECK_DNNL(x)                                                                        \
    do {                                                                                     \
        dnnl_status_t s_ = (x);                                                              \
        if (s_ != dnnl_success) {                                                            \
            fprintf(stderr, "oneDNN: %s: status %d\n", #x, (int)s_);                         \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

enum { FWD, BWD_DATA, BWD_WEIGHTS };
static const char *const kind_names[] = {"forward", "backward data", "backward weights"};

typedef struct shape_case {
    const char *name;
    int64_t n, h, w, c, k, o; /* SAME, stride 1 */
} shape_case;

/* ---- The raw primitive ----------------------------------------------------------------- */

typedef struct raw {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t mem[4];
    int nargs;
    dnnl_exec_arg_t args[4];
    void *scratch;
} raw;

/* @plain: the filter in HWIO; else in the primitive's own layout ('any'). */
static void raw_make(raw *r, const shape_case *sc, int kind, int plain, float *x, float *w,
                     float *y) {
    dnnl_memory_desc_t src, wei, dst, any_wei;
    dnnl_dims_t sd = {sc->n, sc->c, sc->h, sc->w}, wd = {sc->o, sc->c, sc->k, sc->k};
    dnnl_dims_t dd = {sc->n, sc->o, sc->h, sc->w}, st = {1, 1}, dil = {0, 0};
    dnnl_dims_t pl = {(sc->k - 1) / 2, (sc->k - 1) / 2}, pr = {sc->k / 2, sc->k / 2};
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_desc_t fpd, pd;
    dnnl_primitive_attr_t attr;

    memset(r, 0, sizeof(*r));
    CHECK_DNNL(dnnl_engine_create(&r->eng, dnnl_cpu, 0));
    CHECK_DNNL(dnnl_stream_create(&r->stream, r->eng, dnnl_stream_default_flags));
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nhwc));
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_hwio));
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc));
    CHECK_DNNL(dnnl_memory_desc_init_by_tag(&any_wei, 4, wd, dnnl_f32, dnnl_format_tag_any));
    const dnnl_memory_desc_t *wmd = plain ? &wei : &any_wei;
    CHECK_DNNL(dnnl_primitive_attr_create(&attr));
    CHECK_DNNL(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    CHECK_DNNL(dnnl_dilated_convolution_forward_desc_init(
        &fd, kind == FWD ? dnnl_forward_inference : dnnl_forward_training,
        dnnl_convolution_direct, &src, wmd, NULL, &dst, st, dil, pl, pr));
    CHECK_DNNL(dnnl_primitive_desc_create(&fpd, &fd, attr, r->eng, NULL));
    int kinds[3];
    void *ptrs[3];
    if (kind == FWD) {
        pd = fpd;
        fpd = NULL;
        kinds[0] = DNNL_ARG_SRC, kinds[1] = DNNL_ARG_WEIGHTS, kinds[2] = DNNL_ARG_DST;
        ptrs[0] = x, ptrs[1] = w, ptrs[2] = y;
    } else if (kind == BWD_DATA) {
        CHECK_DNNL(dnnl_dilated_convolution_backward_data_desc_init(
            &bd, dnnl_convolution_direct, &src, wmd, &dst, st, dil, pl, pr));
        CHECK_DNNL(dnnl_primitive_desc_create(&pd, &bd, attr, r->eng, fpd));
        kinds[0] = DNNL_ARG_DIFF_DST, kinds[1] = DNNL_ARG_WEIGHTS, kinds[2] = DNNL_ARG_DIFF_SRC;
        ptrs[0] = y, ptrs[1] = w, ptrs[2] = x;
    } else {
        CHECK_DNNL(dnnl_dilated_convolution_backward_weights_desc_init(
            &bd, dnnl_convolution_direct, &src, wmd, NULL, &dst, st, dil, pl, pr));
        CHECK_DNNL(dnnl_primitive_desc_create(&pd, &bd, attr, r->eng, fpd));
        kinds[0] = DNNL_ARG_SRC, kinds[1] = DNNL_ARG_DIFF_DST, kinds[2] = DNNL_ARG_DIFF_WEIGHTS;
        ptrs[0] = x, ptrs[1] = y, ptrs[2] = w;
    }
    for (int i = 0; i < 3; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md,
                                                                    kinds[i]);
        /* a filter in the primitive's layout: a buffer of its own (values do not matter) */
        int own = !dnnl_memory_desc_equal(md, i == 0 ? (kind == BWD_DATA ? &dst : &src)
                                              : i == 1 ? (kind == BWD_WEIGHTS ? &dst : wmd)
                                                       : (kind == FWD ? &dst : kind == BWD_DATA ? &src : wmd));
        CHECK_DNNL(dnnl_memory_create(&r->mem[i], md, r->eng, own ? DNNL_MEMORY_ALLOCATE : ptrs[i]));
        r->args[i] = (dnnl_exec_arg_t){kinds[i], r->mem[i]};
    }
    r->nargs = 3;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd != NULL && dnnl_memory_desc_get_size(smd) > 0) {
        r->scratch = aligned_alloc(64, (dnnl_memory_desc_get_size(smd) + 63) / 64 * 64);
        CHECK_DNNL(dnnl_memory_create(&r->mem[3], smd, r->eng, r->scratch));
        r->args[3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, r->mem[3]};
        r->nargs = 4;
    }
    CHECK_DNNL(dnnl_primitive_create(&r->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    if (fpd != NULL)
        dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
}

static void raw_run(raw *r) {
    CHECK_DNNL(dnnl_primitive_execute(r->prim, r->stream, r->nargs, r->args));
    CHECK_DNNL(dnnl_stream_wait(r->stream));
}

static void raw_free(raw *r) {
    for (int i = 0; i < 4; i++)
        if (r->mem[i] != NULL)
            dnnl_memory_destroy(r->mem[i]);
    dnnl_primitive_destroy(r->prim);
    dnnl_stream_destroy(r->stream);
    dnnl_engine_destroy(r->eng);
    free(r->scratch);
}

/* ---- Floe --------------------------------------------------------------------------------- */

typedef struct floe_side {
    floe_graph *g;
    floe_session *s;
    floe_plan *plan;
    floe_tensor *feeds[2];
} floe_side;

static floe_node *sizes_const(floe_graph *g, const char *name, const int64_t *v) {
    int32_t d[4] = {(int32_t)v[0], (int32_t)v[1], (int32_t)v[2], (int32_t)v[3]};
    int64_t four = 4;
    floe_tensor *t = NULL;
    bench_check(floe_tensor_new(FLOE_DTYPE_I32, &four, 1, &t), "sizes");
    memcpy(floe_tensor_data(t), d, sizeof(d));
    floe_node *n = bench_const(g, name, t);
    floe_tensor_unref(t);
    return n;
}

static void floe_make(floe_context *ctx, floe_side *f, const shape_case *sc, int kind,
                      floe_tensor *x, floe_tensor *w, floe_tensor *y) {
    int64_t xs[4] = {sc->n, sc->h, sc->w, sc->c}, ws[4] = {sc->k, sc->k, sc->c, sc->o};
    int64_t ys[4] = {sc->n, sc->h, sc->w, sc->o}, strides[4] = {1, 1, 1, 1};
    static const char *const ops[] = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"};
    floe_node *a, *b, *in[3], *conv = NULL;
    floe_node_builder *nb;

    memset(f, 0, sizeof(*f));
    bench_check(floe_graph_new(ctx, &f->g), "graph");
    if (kind == FWD) {
        a = bench_placeholder(f->g, "x", FLOE_DTYPE_F32, xs, 4);
        b = bench_placeholder(f->g, "w", FLOE_DTYPE_F32, ws, 4);
        in[0] = a, in[1] = b;
        f->feeds[0] = x, f->feeds[1] = w;
    } else if (kind == BWD_DATA) {
        a = bench_placeholder(f->g, "w", FLOE_DTYPE_F32, ws, 4);
        b = bench_placeholder(f->g, "dy", FLOE_DTYPE_F32, ys, 4);
        in[0] = sizes_const(f->g, "sizes", xs), in[1] = a, in[2] = b;
        f->feeds[0] = w, f->feeds[1] = y;
    } else {
        a = bench_placeholder(f->g, "x", FLOE_DTYPE_F32, xs, 4);
        b = bench_placeholder(f->g, "dy", FLOE_DTYPE_F32, ys, 4);
        in[0] = a, in[1] = sizes_const(f->g, "sizes", ws), in[2] = b;
        f->feeds[0] = x, f->feeds[1] = y;
    }
    bench_check(floe_node_builder_new(f->g, ops[kind], "conv", &nb), ops[kind]);
    for (int i = 0; i < (kind == FWD ? 2 : 3); i++)
        floe_node_builder_add_input(nb, floe_out(in[i], 0));
    floe_attrs_set_int_list(floe_node_builder_attrs(nb), "strides", strides, 4);
    floe_attrs_set_string(floe_node_builder_attrs(nb), "padding", "SAME", 4);
    bench_check(floe_node_builder_finish(nb, &conv), ops[kind]);
    floe_output feeds[2] = {floe_out(a, 0), floe_out(b, 0)}, fetch = floe_out(conv, 0);
    bench_check(floe_session_new(f->g, NULL, &f->s), "session");
    bench_check(floe_session_prepare(f->s, feeds, 2, &fetch, 1, NULL, 0, &f->plan), "prepare");
}

static void floe_run_once(floe_side *f) {
    floe_tensor *out = NULL;
    bench_check(floe_plan_run(f->plan, f->feeds, &out), "floe_plan_run");
    floe_tensor_unref(out);
}

static void floe_side_free(floe_side *f) {
    floe_session_free(f->s);
    floe_graph_free(f->g);
}

/* ---- Measurement -------------------------------------------------------------------------- */

static double time_floe(floe_side *f, int iters) {
    double t0 = bench_now_s();
    for (int i = 0; i < iters; i++)
        floe_run_once(f);
    return (bench_now_s() - t0) / iters;
}

static double time_raw(raw *r, int iters) {
    double t0 = bench_now_s();
    for (int i = 0; i < iters; i++)
        raw_run(r);
    return (bench_now_s() - t0) / iters;
}

static floe_tensor *tensor4(int64_t a, int64_t b, int64_t c, int64_t d, uint64_t seed) {
    int64_t s[4] = {a, b, c, d};
    floe_tensor *t = NULL;
    bench_check(floe_tensor_new(FLOE_DTYPE_F32, s, 4, &t), "tensor");
    bench_fill(floe_tensor_data(t), floe_tensor_num_elements(t), seed);
    return t;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    const shape_case cases[] = {{"conv1 28x28x1 -> 5x5x32", 32, 28, 28, 1, 5, 32},
                                {"conv2 14x14x32 -> 5x5x64", 32, 14, 14, 32, 5, 64}};
    floe_context *ctx = bench_context();
    double tf[16], tr[16];

    if (rounds < 1 || rounds > 16)
        rounds = 7;
    printf("bench_conv: batch 32, SAME, stride 1, f32; %d rounds; median ms per call\n", rounds);
    printf("%-26s %-17s %9s %9s %7s %8s %8s\n", "shape", "pass", "floe", "raw", "ratio",
           "GFLOP/s", "plain");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const shape_case *sc = &cases[c];
        double flops = 2.0 * sc->n * sc->h * sc->w * sc->o * sc->c * sc->k * sc->k;
        floe_tensor *x = tensor4(sc->n, sc->h, sc->w, sc->c, 1);
        floe_tensor *w = tensor4(sc->k, sc->k, sc->c, sc->o, 2);
        floe_tensor *y = tensor4(sc->n, sc->h, sc->w, sc->o, 3);
        /* the raw side writes into its own copies: Floe's feeds stay as they are */
        floe_tensor *rx = tensor4(sc->n, sc->h, sc->w, sc->c, 1);
        floe_tensor *rw = tensor4(sc->k, sc->k, sc->c, sc->o, 2);
        floe_tensor *ry = tensor4(sc->n, sc->h, sc->w, sc->o, 3);
        for (int kind = FWD; kind <= BWD_WEIGHTS; kind++) {
            floe_side f;
            raw r, rb;
            double tb = 0;
            floe_make(ctx, &f, sc, kind, x, w, y);
            raw_make(&r, sc, kind, 0, floe_tensor_data(rx), floe_tensor_data(rw),
                     floe_tensor_data(ry));
            /* warm-up: primitive creation, first-run JIT, caches */
            for (int i = 0; i < 3; i++)
                floe_run_once(&f), raw_run(&r);
            int iters = (int)(0.05 / time_raw(&r, 3)) + 1;
            for (int k = 0; k < rounds; k++) {
                tf[k] = time_floe(&f, iters);
                tr[k] = time_raw(&r, iters);
            }
            {
                raw_make(&rb, sc, kind, 1, floe_tensor_data(rx), floe_tensor_data(rw),
                         floe_tensor_data(ry));
                for (int i = 0; i < 3; i++)
                    raw_run(&rb);
                double tbs[16];
                for (int k = 0; k < rounds; k++)
                    tbs[k] = time_raw(&rb, iters);
                tb = bench_median(tbs, rounds);
                raw_free(&rb);
            }
            double mf = bench_median(tf, rounds), mr = bench_median(tr, rounds);
            double best = mr < tb ? mr : tb;
            printf("%-26s %-17s %9.3f %9.3f %7.3f %8.1f ", sc->name, kind_names[kind], mf * 1e3,
                   mr * 1e3, best / mf, flops / mf * 1e-9);
            printf("%8.3f\n", tb * 1e3);
            raw_free(&r);
            floe_side_free(&f);
        }
        floe_tensor_unref(x), floe_tensor_unref(w), floe_tensor_unref(y);
        floe_tensor_unref(rx), floe_tensor_unref(rw), floe_tensor_unref(ry);
    }
    floe_context_free(ctx);
    return 0;
}
