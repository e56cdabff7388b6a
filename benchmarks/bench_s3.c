/*
 * bench_s3.c - sequential write and read throughput of one object through the fs_s3
 * plugin (floe_file_* on an s3:// URI), for benchmarks/bench_s3.sh, which runs curl
 * against the same server beside it and prints the ratios.
 *
 *     bench_s3 s3://bucket/key MIB [CHUNK_KIB]
 *
 * Writes MIB MiB of pseudo-random bytes in CHUNK_KIB (default 1024) KiB writes (a
 * multipart upload of FLOE_S3_PART_SIZE parts), then reads them back in CHUNK_KIB
 * preads (ranged GETs through the read-ahead buffer), checks them, and prints
 *     write_s <seconds>
 *     read_s <seconds>
 * The endpoint and credentials come from the AWS_* variables, as for any Floe program.
 */
#include "bench_common.h"

#include <floe/fs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_s3 s3://bucket/key MIB [CHUNK_KIB]\n");
        return 2;
    }
    const char *uri = argv[1];
    size_t total = (size_t)strtoull(argv[2], NULL, 10) << 20;
    size_t chunk = (size_t)(argc > 3 ? strtoull(argv[3], NULL, 10) : 1024) << 10;
    if (total == 0 || chunk == 0) {
        fprintf(stderr, "bench_s3: MIB and CHUNK_KIB must be > 0\n");
        return 2;
    }
    uint8_t *data = malloc(total), *back = malloc(chunk);
    if (data == NULL || back == NULL)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    floe_context *ctx = bench_context();
    floe_file *f;
    floe_status st;

    double t0 = bench_now_s();
    st = floe_file_open_write(ctx, uri, 0, &f);
    for (size_t off = 0; st == FLOE_OK && off < total; off += chunk)
        st = floe_file_write(f, data + off, total - off < chunk ? total - off : chunk);
    if (st == FLOE_OK)
        st = floe_file_close(f);
    else
        floe_file_abort(f);
    double t1 = bench_now_s();
    if (st != FLOE_OK) {
        fprintf(stderr, "bench_s3: write %s: %s\n", uri, floe_last_error());
        return 1;
    }
    st = floe_file_open_read(ctx, uri, &f);
    for (size_t off = 0; st == FLOE_OK && off < total; off += chunk) {
        size_t want = total - off < chunk ? total - off : chunk, got = 0;
        st = floe_file_pread(f, off, back, want, &got);
        if (st == FLOE_OK && (got != want || memcmp(back, data + off, want) != 0)) {
            fprintf(stderr, "bench_s3: read back differs at %zu\n", off);
            return 1;
        }
    }
    floe_file_close(f);
    double t2 = bench_now_s();
    if (st != FLOE_OK) {
        fprintf(stderr, "bench_s3: read %s: %s\n", uri, floe_last_error());
        return 1;
    }
    printf("write_s %.4f\nread_s %.4f\n", t1 - t0, t2 - t1);
    floe_context_free(ctx);
    free(data);
    free(back);
    return 0;
}
