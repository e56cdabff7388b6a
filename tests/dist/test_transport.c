/*
 * test_transport.c - the "grpc" transport (plugins/dist_grpc) through the experimental
 * transport API: round trips of 0 B, 4 KiB and 64 MiB, deadlines, cancellation, handler
 * errors, TLS with token and mutual-TLS authentication, and every refusal (wrong or no
 * token, plaintext against TLS, a certificate from another CA, insecure off loopback).
 *
 * Server and client run in one process but in two floe_contexts, so each has its own
 * transport options, as two processes would.  Ports are picked by the kernel
 * (127.0.0.1:0).  The test CA comes from scripts/make-test-ca.sh, run into a temporary
 * directory (exit 77 when openssl is missing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <floe/floe.h>
#include <floe/experimental/transport.h>

static char ca_dir[256];
static atomic_int handled;

static floe_context *new_ctx(void) {
    floe_context *ctx = NULL;
    assert_int_equal(floe_context_new(NULL, &ctx), FLOE_OK);
    return ctx;
}

static floe_transport *grpc_of(floe_context *ctx) {
    floe_transport *t = NULL;
    floe_status st = floe_transport_find(ctx, "grpc", &t);
    if (st != FLOE_OK)
        fail_msg("no grpc transport: %s", floe_last_error());
    return t;
}

static void set(floe_transport *t, const char *key, const char *value) {
    char path[512];
    if (strncmp(key, "tls_", 4) == 0 && value[0] != '\0') {
        snprintf(path, sizeof(path), "%s/%s", ca_dir, value);
        value = path;
    }
    if (floe_transport_set_option(t, key, value) != FLOE_OK)
        fail_msg("set_option %s: %s", key, floe_last_error());
}

/* "echo": the request back; "sleep": waits 2 s; "fail": PERMISSION_DENIED with text. */
static floe_status handler(void *arg, const char *method, const void *req, size_t req_len,
                           void **resp, size_t *resp_len) {
    (void)arg;
    atomic_fetch_add(&handled, 1);
    if (strcmp(method, "sleep") == 0) {
        struct timespec ts = {2, 0};
        nanosleep(&ts, NULL);
    }
    if (strcmp(method, "fail") == 0)
        return floe_set_error(FLOE_PERMISSION_DENIED, "handler says no to %zu bytes", req_len);
    *resp_len = req_len;
    *resp = NULL;
    if (req_len > 0) {
        if ((*resp = floe_transport_alloc(req_len)) == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "oom");
        memcpy(*resp, req, req_len);
    }
    return FLOE_OK;
}

typedef struct fixture {
    floe_context *sctx, *cctx;
    floe_transport *st, *ct;
    floe_transport_server *server;
    char target[64];
} fixture;

/* A TLS server with token "s3cret" (or mTLS when @mtls), and a client context. */
static void start(fixture *f, int mtls) {
    memset(f, 0, sizeof(*f));
    f->sctx = new_ctx();
    f->cctx = new_ctx();
    f->st = grpc_of(f->sctx);
    f->ct = grpc_of(f->cctx);
    set(f->st, "tls_cert", "server.pem");
    set(f->st, "tls_key", "server.key");
    set(f->st, "tls_ca", "ca.pem");
    if (mtls)
        set(f->st, "mtls", "1");
    else
        set(f->st, "token", "s3cret");
    if (floe_transport_serve(f->st, "127.0.0.1:0", handler, NULL, &f->server) != FLOE_OK)
        fail_msg("serve: %s", floe_last_error());
    assert_true(floe_transport_server_port(f->server) > 0);
    snprintf(f->target, sizeof(f->target), "127.0.0.1:%d", floe_transport_server_port(f->server));
    set(f->ct, "tls_ca", "ca.pem");
}

static void stop(fixture *f) {
    floe_transport_shutdown(f->server);
    floe_context_free(f->cctx);
    floe_context_free(f->sctx);
}

static floe_transport_conn *connect_ok(fixture *f) {
    floe_transport_conn *c = NULL;
    if (floe_transport_connect(f->ct, f->target, 5000, &c) != FLOE_OK)
        fail_msg("connect %s: %s", f->target, floe_last_error());
    return c;
}

static void roundtrip(floe_transport_conn *c, size_t n) {
    unsigned char *buf = malloc(n ? n : 1);
    void *resp = NULL;
    size_t len = 0;
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 131 + (i >> 13));
    if (floe_transport_call(c, "echo", buf, n, &resp, &len, 20000) != FLOE_OK)
        fail_msg("echo %zu: %s", n, floe_last_error());
    assert_int_equal(len, n);
    if (n > 0)
        assert_memory_equal(resp, buf, n);
    floe_transport_free(resp);
    free(buf);
}

static void transport_call_roundtrips_0_4k_64m(void **state) {
    fixture f;
    floe_transport_conn *c;
    (void)state;
    start(&f, 0);
    set(f.ct, "token", "s3cret");
    c = connect_ok(&f);
    roundtrip(c, 0);
    roundtrip(c, 4096);
    roundtrip(c, (size_t)64 << 20);
    floe_transport_disconnect(c);
    stop(&f);
}

static void transport_call_past_deadline_fails(void **state) {
    fixture f;
    floe_transport_conn *c;
    void *resp = (void *)&f;
    size_t len = 7;
    (void)state;
    start(&f, 0);
    set(f.ct, "token", "s3cret");
    c = connect_ok(&f);
    assert_int_equal(floe_transport_call(c, "sleep", "x", 1, &resp, &len, 200),
                     FLOE_DEADLINE_EXCEEDED);
    assert_null(resp);
    assert_int_equal(len, 0);
    assert_non_null(strstr(floe_last_error(), "sleep"));
    floe_transport_disconnect(c);
    stop(&f);   /* waits for the sleeping handler */
}

typedef struct canceller {
    floe_transport_conn *c;
    floe_status st;
} canceller;

static void *call_sleep(void *arg) {
    canceller *k = arg;
    void *resp;
    size_t len;
    k->st = floe_transport_call(k->c, "sleep", "x", 1, &resp, &len, 10000);
    return NULL;
}

static void transport_cancel_stops_call_in_flight(void **state) {
    fixture f;
    canceller k;
    pthread_t th;
    void *resp;
    size_t len;
    (void)state;
    start(&f, 0);
    set(f.ct, "token", "s3cret");
    k.c = connect_ok(&f);
    atomic_store(&handled, 0);
    assert_int_equal(pthread_create(&th, NULL, call_sleep, &k), 0);
    for (int i = 0; i < 500 && atomic_load(&handled) == 0; i++)
        usleep(10000);
    assert_int_equal(floe_transport_cancel(k.c), FLOE_OK);
    pthread_join(th, NULL);
    assert_int_equal(k.st, FLOE_CANCELLED);
    assert_int_equal(floe_transport_call(k.c, "echo", "x", 1, &resp, &len, 1000), FLOE_CANCELLED);
    floe_transport_disconnect(k.c);
    stop(&f);
}

static void transport_handler_error_reaches_client(void **state) {
    fixture f;
    floe_transport_conn *c;
    void *resp;
    size_t len;
    (void)state;
    start(&f, 0);
    set(f.ct, "token", "s3cret");
    c = connect_ok(&f);
    assert_int_equal(floe_transport_call(c, "fail", "abc", 3, &resp, &len, 5000),
                     FLOE_PERMISSION_DENIED);
    assert_non_null(strstr(floe_last_error(), "handler says no to 3 bytes"));
    assert_int_equal(floe_transport_call(c, "bad/method", "", 0, &resp, &len, 5000),
                     FLOE_INVALID_ARGUMENT);
    floe_transport_disconnect(c);
    stop(&f);
}

static void expect_unauthenticated(fixture *f) {
    floe_transport_conn *c = connect_ok(f);
    void *resp;
    size_t len;
    atomic_store(&handled, 0);
    assert_int_equal(floe_transport_call(c, "echo", "hi", 2, &resp, &len, 5000),
                     FLOE_UNAUTHENTICATED);
    assert_int_equal(atomic_load(&handled), 0);   /* nothing ran */
    floe_transport_disconnect(c);
}

static void transport_wrong_or_no_token_is_unauthenticated(void **state) {
    fixture f;
    (void)state;
    start(&f, 0);
    expect_unauthenticated(&f);           /* no token */
    set(f.ct, "token", "s3creT");
    expect_unauthenticated(&f);
    set(f.ct, "token", "s3cret-and-more");
    expect_unauthenticated(&f);
    stop(&f);
}

static void transport_plaintext_client_against_tls_is_refused(void **state) {
    fixture f;
    floe_transport_conn *c = NULL;
    (void)state;
    start(&f, 0);
    set(f.ct, "insecure", "1");
    set(f.ct, "token", "s3cret");
    atomic_store(&handled, 0);
    assert_int_not_equal(floe_transport_connect(f.ct, f.target, 1500, &c), FLOE_OK);
    assert_null(c);
    assert_int_equal(atomic_load(&handled), 0);
    stop(&f);
}

static void transport_untrusted_server_certificate_is_refused(void **state) {
    fixture f;
    floe_transport_conn *c = NULL;
    (void)state;
    start(&f, 0);
    set(f.ct, "tls_ca", "other-ca.pem");   /* the server's CA is not trusted */
    set(f.ct, "token", "s3cret");
    assert_int_not_equal(floe_transport_connect(f.ct, f.target, 1500, &c), FLOE_OK);
    assert_null(c);
    stop(&f);
}

static void transport_mtls_needs_a_certificate_of_the_ca(void **state) {
    fixture f;
    floe_transport_conn *c = NULL;
    (void)state;
    start(&f, 1);
    /* No client certificate: the handshake fails. */
    assert_int_not_equal(floe_transport_connect(f.ct, f.target, 1500, &c), FLOE_OK);
    /* A certificate signed by another CA: refused too. */
    set(f.ct, "tls_cert", "other.pem");
    set(f.ct, "tls_key", "other.key");
    assert_int_not_equal(floe_transport_connect(f.ct, f.target, 1500, &c), FLOE_OK);
    assert_null(c);
    set(f.ct, "tls_cert", "client.pem");
    set(f.ct, "tls_key", "client.key");
    c = connect_ok(&f);
    roundtrip(c, 4096);
    floe_transport_disconnect(c);
    stop(&f);
}

static void transport_insecure_only_on_loopback(void **state) {
    floe_context *ctx = new_ctx();
    floe_transport *t = grpc_of(ctx);
    floe_transport_server *s = NULL;
    floe_transport_conn *c = NULL;
    void *resp;
    size_t len;
    (void)state;
    set(t, "insecure", "1");
    set(t, "token", "tok");
    assert_int_equal(floe_transport_serve(t, "0.0.0.0:0", handler, NULL, &s), FLOE_PERMISSION_DENIED);
    assert_non_null(strstr(floe_last_error(), "loopback"));
    assert_int_equal(floe_transport_connect(t, "10.1.2.3:5000", 100, &c), FLOE_PERMISSION_DENIED);
    assert_null(c);
    /* On loopback it works, token still required. */
    assert_int_equal(floe_transport_serve(t, "127.0.0.1:0", handler, NULL, &s), FLOE_OK);
    {
        char target[64];
        snprintf(target, sizeof(target), "127.0.0.1:%d", floe_transport_server_port(s));
        assert_int_equal(floe_transport_connect(t, target, 5000, &c), FLOE_OK);
        assert_int_equal(floe_transport_call(c, "echo", "ok", 2, &resp, &len, 5000), FLOE_OK);
        assert_int_equal(len, 2);
        floe_transport_free(resp);
        floe_transport_disconnect(c);
    }
    floe_transport_shutdown(s);
    floe_context_free(ctx);
}

static void transport_bad_configurations_are_refused(void **state) {
    floe_context *ctx = new_ctx();
    floe_transport *t = grpc_of(ctx);
    floe_transport_server *s = NULL;
    floe_transport_conn *c = NULL;
    (void)state;
    assert_int_equal(floe_transport_set_option(t, "colour", "blue"), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_transport_set_option(t, "insecure", "maybe"), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_transport_set_option(t, "tls_ca", "/nonexistent/ca.pem"), FLOE_NOT_FOUND);
    assert_int_equal(floe_transport_set_option(t, "max_message_bytes", "12"), FLOE_INVALID_ARGUMENT);
    /* TLS without a certificate; then with one but no authentication. */
    assert_int_equal(floe_transport_serve(t, "127.0.0.1:0", handler, NULL, &s),
                     FLOE_FAILED_PRECONDITION);
    set(t, "tls_cert", "server.pem");
    set(t, "tls_key", "server.key");
    assert_int_equal(floe_transport_serve(t, "127.0.0.1:0", handler, NULL, &s),
                     FLOE_FAILED_PRECONDITION);
    assert_non_null(strstr(floe_last_error(), "authenticate"));
    assert_null(s);
    /* A TLS client without a CA. */
    assert_int_equal(floe_transport_connect(t, "127.0.0.1:1", 100, &c), FLOE_FAILED_PRECONDITION);
    /* Nobody listening: UNAVAILABLE within the deadline. */
    set(t, "tls_ca", "ca.pem");
    assert_int_equal(floe_transport_connect(t, "127.0.0.1:1", 300, &c), FLOE_UNAVAILABLE);
    assert_null(c);
    assert_int_equal(floe_transport_find(ctx, "carrier_pigeon", &t), FLOE_NOT_FOUND);
    assert_null(t);
    floe_context_free(ctx);
}

/* The plugin opens gRPC (dist_grpc_impl.so beside it) only when a program uses the
 * transport: copied alone into a directory, it still loads, and the first call fails
 * with UNAVAILABLE naming the missing file, not the context. */
static void transport_missing_implementation_fails_at_first_use(void **state) {
    (void)state;
    const char *build = getenv("FLOE_BUILD_ROOT");
    char dir[256], cmd[1024];
    floe_context_options o;
    floe_context *ctx = NULL;
    floe_transport *t = NULL;
    floe_transport_conn *c = (floe_transport_conn *)&t;

    assert_non_null(build);
    snprintf(dir, sizeof(dir), "/tmp/floe-grpc-alone-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "cp '%s/plugins/dist_grpc/floe_dist_grpc.so' '%s/'", build, dir);
    assert_int_equal(system(cmd), 0);
    floe_context_options_init(&o);
    o.plugin_path = dir;
    o.system_plugins = 0;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    assert_int_equal(floe_transport_find(ctx, "grpc", &t), FLOE_OK);
    assert_int_equal(floe_transport_connect(t, "127.0.0.1:1", 300, &c), FLOE_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(floe_last_error(), "dist_grpc_impl.so"));
    assert_int_equal(floe_transport_set_option(t, "insecure", "1"), FLOE_UNAVAILABLE);
    floe_context_free(ctx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv) {
    char cmd[600];
    const char *src = getenv("FLOE_SOURCE_ROOT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transport_call_roundtrips_0_4k_64m),
        cmocka_unit_test(transport_call_past_deadline_fails),
        cmocka_unit_test(transport_cancel_stops_call_in_flight),
        cmocka_unit_test(transport_handler_error_reaches_client),
        cmocka_unit_test(transport_wrong_or_no_token_is_unauthenticated),
        cmocka_unit_test(transport_plaintext_client_against_tls_is_refused),
        cmocka_unit_test(transport_untrusted_server_certificate_is_refused),
        cmocka_unit_test(transport_mtls_needs_a_certificate_of_the_ca),
        cmocka_unit_test(transport_insecure_only_on_loopback),
        cmocka_unit_test(transport_bad_configurations_are_refused),
        cmocka_unit_test(transport_missing_implementation_fails_at_first_use),
    };
    int rc;

    if (src == NULL || system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("SKIP: needs openssl and FLOE_SOURCE_ROOT for the test CA\n");
        return 77;
    }
    snprintf(ca_dir, sizeof(ca_dir), "/tmp/floe-test-ca-XXXXXX");
    if (mkdtemp(ca_dir) == NULL)
        return 1;
    snprintf(cmd, sizeof(cmd), "sh '%s/scripts/make-test-ca.sh' '%s'", src, ca_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "make-test-ca.sh failed\n");
        return 1;
    }
    if (argc > 1)   /* one case, by name (cmocka's filter) */
        cmocka_set_test_filter(argv[1]);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ca_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", ca_dir);
    return rc;
}
