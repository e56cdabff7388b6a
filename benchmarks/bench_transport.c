/*
 * bench_transport.c - round trips of the grpc transport (plugins/dist_grpc) through
 * floe/experimental/transport.h: one server and one client in this process (two
 * contexts), on loopback, echoing 4 KiB (latency: median of 2000 calls) and 64 MiB
 * (throughput: bytes sent plus received per second, median of 7 calls) tensors' bytes,
 * over TLS with a token (the default) and over plaintext (--insecure's path).
 *
 *   bench_transport CA_DIR      (CA_DIR from scripts/make-test-ca.sh)
 *
 * benchmarks/peer_transport.py runs the same echo over Python grpcio for a side-by-side
 * figure (benchmarks/run_transport.sh runs both).
 */
#include "bench_common.h"

#include <floe/experimental/transport.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static floe_status echo(void *arg, const char *method, const void *req, size_t len,
                        void **resp, size_t *resp_len) {
    (void)arg;
    (void)method;
    *resp_len = len;
    *resp = NULL;
    if (len == 0)
        return FLOE_OK;
    if ((*resp = floe_transport_alloc(len)) == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "oom");
    memcpy(*resp, req, len);
    return FLOE_OK;
}

static void opt(floe_transport *t, const char *dir, const char *key, const char *file) {
    char path[512];
    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, file);
    bench_check(floe_transport_set_option(t, key, dir ? path : file), key);
}

static double roundtrips(floe_transport_conn *c, size_t n, int reps) {
    unsigned char *buf = malloc(n);
    double *t = malloc(sizeof(double) * (size_t)reps), med;
    void *resp;
    size_t len;
    if (buf == NULL || t == NULL)
        exit(1);
    memset(buf, 0x5a, n);
    for (int i = 0; i < reps / 10 + 1; i++) {   /* warm-up */
        bench_check(floe_transport_call(c, "Echo", buf, n, &resp, &len, 60000), "call");
        floe_transport_free(resp);
    }
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now_s();
        bench_check(floe_transport_call(c, "Echo", buf, n, &resp, &len, 60000), "call");
        t[i] = bench_now_s() - t0;
        if (len != n)
            exit(1);
        floe_transport_free(resp);
    }
    med = bench_median(t, reps);
    free(buf);
    free(t);
    return med;
}

static void run(const char *ca, int tls) {
    floe_context *sctx = bench_context(), *cctx = bench_context();
    floe_transport *st, *ct;
    floe_transport_server *s;
    floe_transport_conn *c;
    char target[64];
    double small, big;

    bench_check(floe_transport_find(sctx, "grpc", &st), "find");
    bench_check(floe_transport_find(cctx, "grpc", &ct), "find");
    if (tls) {
        opt(st, ca, "tls_cert", "server.pem");
        opt(st, ca, "tls_key", "server.key");
        opt(ct, ca, "tls_ca", "ca.pem");
    } else {
        opt(st, NULL, "insecure", "1");
        opt(ct, NULL, "insecure", "1");
    }
    opt(st, NULL, "token", "bench");
    opt(ct, NULL, "token", "bench");
    bench_check(floe_transport_serve(st, "127.0.0.1:0", echo, NULL, &s), "serve");
    snprintf(target, sizeof(target), "127.0.0.1:%d", floe_transport_server_port(s));
    bench_check(floe_transport_connect(ct, target, 5000, &c), "connect");
    small = roundtrips(c, 4096, 2000);
    big = roundtrips(c, (size_t)64 << 20, 7);
    printf("%-16s 4 KiB round trip %8.1f us   64 MiB round trip %7.1f ms = %6.0f MiB/s "
           "(both ways)\n", tls ? "floe grpc TLS" : "floe grpc plain", small * 1e6, big * 1e3,
           2 * 64 / big);
    floe_transport_disconnect(c);
    floe_transport_shutdown(s);
    floe_context_free(cctx);
    floe_context_free(sctx);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench_transport CA_DIR (scripts/make-test-ca.sh CA_DIR)\n");
        return 2;
    }
    run(argv[1], 1);
    run(argv[1], 0);
    return 0;
}
