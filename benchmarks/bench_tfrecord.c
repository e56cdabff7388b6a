/*
 * bench_tfrecord.c - TFRecord read throughput and input-pipeline examples/s, the Floe side
 * of benchmarks/bench_tfrecord.sh (whose peer, peer_tfrecord.py, runs TensorFlow's
 * tf.data on the same files).
 *
 * Usage: bench_tfrecord [--quick] [DIR]   (DIR default /tmp/floe-bench-tfrecord)
 *
 * Writes DIR/mnist.tfrecord and DIR/mnist_gzip.tfrecord: N tf.train.Examples shaped like
 * MNIST (image: 784 raw bytes, label: int64), N = 60000 (10000 with --quick), unless
 * they are there already.  Then, each the median of 5 runs (3 with --quick):
 *   read_plain / read_gzip: every record through floe_tfrecord_read (MB/s of file);
 *   pipeline: from_tfrecord -> batch(256) -> parse_example (image, label) -> map
 *     decoding the bytes to f32 / 255 -> prefetch(2), parse and map with 4 workers
 *     each, drained: examples/s;
 *   pipeline_shuffle: the same with shuffle(10000) before batch;
 *   pipeline_seq: the same as pipeline with parse and map sequential (on the prefetch
 *     thread).
 * Output lines "floe <name> <value> <unit>", read by bench_tfrecord.sh.
 */
#include "bench_common.h"

#include <floe/example.h>
#include <floe/pipeline.h>
#include <floe/tfrecord.h>

#include <sys/stat.h>

static char g_plain[512], g_gzip[512];

static void write_files(int64_t n) {
    struct stat sb;
    if (stat(g_plain, &sb) == 0 && stat(g_gzip, &sb) == 0)
        return;
    floe_tfrecord_writer *w[2];
    bench_check(floe_tfrecord_writer_open(NULL, g_plain, FLOE_COMPRESSION_NONE, 0, &w[0]),
                "open");
    bench_check(floe_tfrecord_writer_open(NULL, g_gzip, FLOE_COMPRESSION_GZIP, 0, &w[1]), "open");
    floe_example_builder *b = floe_example_builder_new();
    uint8_t img[784];
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) {
        /* MNIST-like: mostly zeros, some strokes */
        for (int k = 0; k < 784; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            img[k] = (k / 28 > 4 && k / 28 < 24 && (s & 3) == 0) ? (uint8_t)(s >> 32) : 0;
        }
        const void *p = img;
        size_t len = 784;
        int64_t label = i % 10;
        floe_example_builder_clear(b);
        bench_check(floe_example_builder_add_bytes(b, "image", &p, &len, 1), "add");
        bench_check(floe_example_builder_add_int64s(b, "label", &label, 1), "add");
        const void *d;
        size_t dn;
        bench_check(floe_example_builder_serialize(b, &d, &dn), "serialize");
        for (int f = 0; f < 2; f++)
            bench_check(floe_tfrecord_write(w[f], d, dn), "write");
    }
    floe_example_builder_free(b);
    for (int f = 0; f < 2; f++)
        bench_check(floe_tfrecord_writer_close(w[f]), "close");
}

static double read_all(const char *path, floe_compression c, int64_t *records) {
    floe_tfrecord_reader *r;
    double t0 = bench_now_s();
    bench_check(floe_tfrecord_reader_open(NULL, path, c, &r), "reader_open");
    const void *d;
    size_t n;
    floe_status st;
    *records = 0;
    while ((st = floe_tfrecord_read(r, &d, &n)) == FLOE_OK)
        (*records)++;
    if (st != FLOE_OUT_OF_RANGE)
        bench_check(st, "read");
    floe_tfrecord_reader_close(r);
    return bench_now_s() - t0;
}

static floe_status decode(void *arg, floe_tensor *const *in, int nin, floe_tensor **out,
                          int *nout) {
    (void)arg;
    int64_t rows = floe_tensor_num_elements(in[0]), shape[2] = {rows, 784};
    floe_status st = floe_tensor_new(FLOE_DTYPE_F32, shape, 2, &out[0]);
    if (st != FLOE_OK)
        return st;
    float *x = floe_tensor_data(out[0]);
    for (int64_t r = 0; r < rows; r++) {
        const char *b;
        size_t len;
        if ((st = floe_tensor_get_string(in[0], r, &b, &len)) != FLOE_OK || len != 784) {
            floe_tensor_unref(out[0]);
            return st != FLOE_OK ? st : floe_set_error(FLOE_DATA_LOSS, "bad image");
        }
        for (int k = 0; k < 784; k++)
            x[r * 784 + k] = (float)(uint8_t)b[k] * (1.0f / 255.0f);
    }
    for (int i = 1; i < nin; i++)
        out[i] = floe_tensor_ref(in[i]);
    *nout = nin;
    return FLOE_OK;
}

static double run_pipeline(floe_context *ctx, int shuffle, int par, int64_t *examples) {
    const char *files[1] = {g_plain};
    floe_feature_spec specs[2];
    memset(specs, 0, sizeof specs);
    specs[0].key = "image";
    specs[0].dtype = FLOE_DTYPE_STRING;
    specs[1].key = "label";
    specs[1].dtype = FLOE_DTYPE_I64;
    double t0 = bench_now_s();
    floe_pipeline *p;
    bench_check(floe_pipeline_from_tfrecord(ctx, files, 1, FLOE_COMPRESSION_NONE, 1, &p), "src");
    if (shuffle)
        bench_check(floe_pipeline_shuffle(p, 10000, 1, &p), "shuffle");
    bench_check(floe_pipeline_batch(p, 256, 0, &p), "batch");
    bench_check(floe_pipeline_parse_example(p, specs, 2, ctx, par, &p), "parse");
    bench_check(floe_pipeline_map(p, decode, NULL, ctx, par, &p), "map");
    bench_check(floe_pipeline_prefetch(p, 2, &p), "prefetch");
    floe_tensor *t[FLOE_PIPELINE_MAX_TUPLE];
    int n;
    floe_status st;
    *examples = 0;
    while ((st = floe_pipeline_next(p, t, &n)) == FLOE_OK) {
        *examples += floe_tensor_dim(t[0], 0);
        for (int i = 0; i < n; i++)
            floe_tensor_unref(t[i]);
    }
    if (st != FLOE_OUT_OF_RANGE)
        bench_check(st, "next");
    floe_pipeline_free(p);
    return bench_now_s() - t0;
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *dir = "/tmp/floe-bench-tfrecord";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            dir = argv[i];
    }
    int64_t n = quick ? 10000 : 60000;
    int reps = quick ? 3 : 5;
    mkdir(dir, 0755);
    snprintf(g_plain, sizeof g_plain, "%s/mnist-%lld.tfrecord", dir, (long long)n);
    snprintf(g_gzip, sizeof g_gzip, "%s/mnist-%lld_gzip.tfrecord", dir, (long long)n);
    write_files(n);
    struct stat sb_plain, sb_gzip;
    stat(g_plain, &sb_plain);
    stat(g_gzip, &sb_gzip);
    printf("files %s %s %lld\n", g_plain, g_gzip, (long long)n);
    floe_context *ctx = bench_context();
    double t[8];
    int64_t cnt = 0;
    const char *names[2] = {"read_plain", "read_gzip"};
    for (int c = 0; c < 2; c++) {
        for (int r = 0; r < reps; r++)
            t[r] = read_all(c ? g_gzip : g_plain, c ? FLOE_COMPRESSION_GZIP : FLOE_COMPRESSION_NONE,
                            &cnt);
        double med = bench_median(t, reps);
        if (cnt != n) {
            fprintf(stderr, "read %lld records, not %lld\n", (long long)cnt, (long long)n);
            return 1;
        }
        printf("floe %s %.1f MB/s (%.0f records/s)\n", names[c],
               (double)(c ? sb_gzip.st_size : sb_plain.st_size) / med / 1e6, (double)n / med);
    }
    const char *pnames[3] = {"pipeline", "pipeline_shuffle", "pipeline_seq"};
    for (int v = 0; v < 3; v++) {
        for (int r = 0; r < reps; r++)
            t[r] = run_pipeline(ctx, v == 1, v == 2 ? 1 : 4, &cnt);
        if (cnt != n) {
            fprintf(stderr, "pipeline gave %lld examples, not %lld\n", (long long)cnt,
                    (long long)n);
            return 1;
        }
        printf("floe %s %.0f examples/s\n", pnames[v], (double)n / bench_median(t, reps));
    }
    floe_context_free(ctx);
    return 0;
}
