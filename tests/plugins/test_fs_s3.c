/*
 * test_fs_s3.c - the fs_s3 plugin against a real S3 server: moto's server mode on
 * loopback, started by tests/s3/s3_server.py at ports chosen at run time, behind that
 * script's fault-injecting proxy (which forwards untouched unless told otherwise).
 * Nothing in the plugin is mocked: every call goes through libcurl over TCP.
 *
 * Covered: small, empty and multipart objects (several parts, a part-boundary end),
 * ranged reads at odd offsets through the read-ahead buffer and around it, listing over
 * several pages (1100 keys at the default page size; a small FLOE_S3_MAX_KEYS), prefix
 * directories (mkdir, stat, list, remove), rename (copy + delete, not atomic), missing
 * keys and buckets, bad credentials against a moto that checks SigV4 signatures through
 * IAM, retried faults (503, 429, 500, dropped connections, a stalled answer), retries
 * exhausted and the abort of the multipart upload (no object appears), a deadline, an
 * unreachable server, bad configuration, a training run that checkpoints to S3, is
 * killed with SIGKILL and resumes from S3, checkpoint saves interrupted or read back
 * damaged, and the libraries and tools on s3:// URIs: TFRecord files (plain and gzip,
 * multipart), a TensorBoard event file (flushed by rewriting: no append on S3), and
 * `floe run` with its model, input and output on S3.
 *
 * Skips (exit 77) when python3 or moto's server is missing.  The server process is
 * stopped at the end, and exits by itself when this process dies (its stdin closes) or
 * after 600 s; every wait here is bounded.
 *
 * Sections: the server, contexts, objects, listing and directories, errors, faults,
 * checkpoints and a killed training run, libraries and tools on s3://, main.
 */
#include "test_common.h"

#include <floe/checkpoint.h>
#include <floe/data.h>
#include <floe/fs.h>
#include <floe/keras.h>
#include <floe/summary.h>
#include <floe/tfrecord.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- The server --------------------------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int in, out;               /* its stdin (we write), its stdout (we read) */
    int moto_port, proxy_port;
    char key[256], secret[256];
} server;

static server srv = {.pid = -1, .in = -1, .out = -1};
static server auth_srv = {.pid = -1, .in = -1, .out = -1};
static char self_exe[4096];

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one line from @fd within @timeout_ms; 0 on success. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms) {
    size_t n = 0;
    int64_t end = now_ms() + timeout_ms;
    while (n + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k <= 0)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return 0;
}

static void server_stop(server *s) {
    if (s->pid <= 0)
        return;
    if (s->in >= 0) {
        (void)!write(s->in, "quit\n", 5);
        close(s->in);
    }
    int status;
    for (int i = 0; i < 100 && waitpid(s->pid, &status, WNOHANG) == 0; i++)
        usleep(50000);
    if (waitpid(s->pid, &status, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
    }
    if (s->out >= 0)
        close(s->out);
    s->pid = -1;
    s->in = s->out = -1;
}

/* Starts tests/s3/s3_server.py; 0 when ready, 77 when moto or python3 is missing. */
static int server_start(server *s, int auth) {
    const char *root = getenv("FLOE_SOURCE_ROOT");
    char script[4096], line[1024];
    int to_child[2], from_child[2];

    snprintf(script, sizeof(script), "%s/tests/s3/s3_server.py", root ? root : ".");
    if (pipe(to_child) != 0 || pipe(from_child) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0 && getenv("FLOE_S3_TEST_VERBOSE") == NULL)
            dup2(null, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        char *argv[] = {"python3", script, auth ? "--auth" : "--lifetime", auth ? "--lifetime" : "600",
                        auth ? "600" : NULL, NULL};
        execvp("python3", argv);
        printf("skip: python3 not found: %s\n", strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    s->pid = pid;
    s->in = to_child[1];
    s->out = from_child[0];
    if (read_line(s->out, line, sizeof(line), 60000) != 0) {
        fprintf(stderr, "s3_server.py did not start within 60 s\n");
        server_stop(s);
        return -1;
    }
    if (strncmp(line, "skip:", 5) == 0) {
        printf("SKIP: %s\n", line + 5);
        server_stop(s);
        return 77;
    }
    if (sscanf(line, "ready %d %d %255s %255s", &s->moto_port, &s->proxy_port, s->key,
               s->secret) != 4) {
        fprintf(stderr, "s3_server.py: unexpected first line '%s'\n", line);
        server_stop(s);
        return -1;
    }
    return 0;
}

/* Sends one command; returns N of "ok N" (0 for a bare "ok"), -1 on "error: ...". */
static long server_cmd(server *s, const char *fmt, ...) {
    char cmd[1024], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
    va_end(ap);
    cmd[n++] = '\n';
    if (write(s->in, cmd, (size_t)n) != n || read_line(s->out, line, sizeof(line), 30000) != 0)
        fail_msg("s3_server.py: no answer to '%.*s'", n - 1, cmd);
    if (strncmp(line, "ok", 2) != 0) {
        print_message("s3_server.py: '%.*s' -> %s\n", n - 1, cmd, line);
        return -1;
    }
    return line[2] == ' ' ? strtol(line + 3, NULL, 10) : 0;
}

/* ---- Contexts -------------------------------------------------------------------------------- */

static const char *const knob_names[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "FLOE_S3_PART_SIZE", "FLOE_S3_READAHEAD",
    "FLOE_S3_DEADLINE_MS", "FLOE_S3_STALL_SECONDS", "FLOE_S3_MAX_ATTEMPTS",
    "FLOE_S3_RETRY_BASE_MS", "FLOE_S3_RETRY_CAP_MS", "FLOE_S3_MAX_KEYS",
    "FLOE_S3_FORCE_PATH_STYLE", "FLOE_S3_CONNECT_TIMEOUT_MS", NULL};

/* Sets the environment for @s (through its proxy) plus @extra ("NAME=value" pairs,
 * NULL-terminated; "NAME=" unsets). */
static void set_env(const server *s, const char *const *extra) {
    char url[128];
    for (int i = 0; knob_names[i] != NULL; i++)
        unsetenv(knob_names[i]);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->proxy_port);
    setenv("AWS_ENDPOINT_URL", url, 1);
    setenv("AWS_ACCESS_KEY_ID", s->key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", s->secret, 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/floe-test", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/floe-test", 1);
    setenv("FLOE_S3_RETRY_BASE_MS", "5", 1);
    setenv("FLOE_S3_RETRY_CAP_MS", "100", 1);
    setenv("FLOE_S3_DEADLINE_MS", "30000", 1);
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        char name[128];
        const char *eq = strchr(extra[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - extra[i]), extra[i]);
        if (eq[1] == '\0')
            unsetenv(name);
        else
            setenv(name, eq + 1, 1);
    }
}

static floe_context *ctx_for(const server *s, const char *const *extra) {
    set_env(s, extra);
    return tc_context();
}

#define EXTRA(...) ((const char *const[]){__VA_ARGS__, NULL})

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static void expect_status(floe_status got, floe_status want, const char *needle) {
    if (got != want)
        fail_msg("got %s (%s), want %s", floe_status_str(got), floe_last_error(),
                 floe_status_str(want));
    if (needle != NULL && strstr(floe_last_error(), needle) == NULL)
        fail_msg("message '%s' lacks '%s'", floe_last_error(), needle);
}

#define OK(call)                                                                          \
    do {                                                                                  \
        floe_status st_ = (call);                                                         \
        if (st_ != FLOE_OK)                                                               \
            fail_msg("%s: %s: %s", #call, floe_status_str(st_), floe_last_error());       \
    } while (0)

/* Writes @n bytes of pattern @seed to @uri in chunks of @chunk. */
static void put_pattern(floe_context *ctx, const char *uri, size_t n, uint64_t seed, size_t chunk) {
    uint8_t *p = malloc(n ? n : 1);
    floe_file *f;
    assert_non_null(p);
    fill_pattern(p, n, seed);
    OK(floe_file_open_write(ctx, uri, 0, &f));
    for (size_t off = 0; off < n; off += chunk)
        OK(floe_file_write(f, p + off, n - off < chunk ? n - off : chunk));
    OK(floe_file_close(f));
    free(p);
}

static void check_pattern(floe_context *ctx, const char *uri, size_t n, uint64_t seed) {
    void *data;
    size_t size;
    uint8_t *want = malloc(n ? n : 1);
    assert_non_null(want);
    fill_pattern(want, n, seed);
    OK(floe_fs_read_all(ctx, uri, 0, &data, &size));
    assert_int_equal(size, n);
    assert_memory_equal(data, want, n);
    free(data);
    free(want);
}

/* ---- Objects ------------------------------------------------------------------------------------ */

static void small_object_roundtrip(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    floe_file_info info = {.struct_size = sizeof(info)};
    uint32_t caps = 99;

    OK(floe_fs_caps(ctx, "s3://floe-test/x", &caps));
    assert_int_equal(caps & FLOE_FS_CAP_ATOMIC_RENAME, 0);   /* checkpoints go manifest-last */
    assert_int_equal(caps & FLOE_FS_CAP_APPEND, 0);
    put_pattern(ctx, "s3://floe-test/small/a.bin", 1000, 1, 333);
    check_pattern(ctx, "s3://floe-test/small/a.bin", 1000, 1);
    OK(floe_fs_stat(ctx, "s3://floe-test/small/a.bin", &info));
    assert_int_equal(info.size, 1000);
    assert_int_equal(info.is_dir, 0);
    assert_true(info.mtime_ns > 0);
    /* Overwrite: readers see the new content whole. */
    put_pattern(ctx, "s3://floe-test/small/a.bin", 77, 2, 77);
    check_pattern(ctx, "s3://floe-test/small/a.bin", 77, 2);
    /* Empty object; a key with spaces and UTF-8. */
    put_pattern(ctx, "s3://floe-test/small/empty", 0, 3, 1);
    check_pattern(ctx, "s3://floe-test/small/empty", 0, 3);
    put_pattern(ctx, "s3://floe-test/small/with space+plus=é.txt", 4096, 4, 1000);
    check_pattern(ctx, "s3://floe-test/small/with space+plus=é.txt", 4096, 4);
    /* An abort leaves nothing behind. */
    floe_file *f;
    OK(floe_file_open_write(ctx, "s3://floe-test/small/aborted", 0, &f));
    OK(floe_file_write(f, "abc", 3));
    floe_file_abort(f);
    expect_status(floe_fs_stat(ctx, "s3://floe-test/small/aborted", &info), FLOE_NOT_FOUND, NULL);
    /* Append is refused (S3 objects are immutable). */
    expect_status(floe_file_open_write(ctx, "s3://floe-test/small/a.bin", 1, &f), FLOE_UNIMPLEMENTED,
                  "cannot append");
    floe_context_free(ctx);
}

static void multipart_object_roundtrip(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=5M"));
    size_t part = (size_t)5 << 20, n = 3 * part + 12345;

    long creates = server_cmd(&srv, "count POST uploads");
    long parts = server_cmd(&srv, "count PUT partNumber=");
    put_pattern(ctx, "s3://floe-test/big/four-parts", n, 10, 1000003);   /* odd chunks */
    assert_int_equal(server_cmd(&srv, "count POST uploads") - creates, 1);
    assert_int_equal(server_cmd(&srv, "count PUT partNumber=") - parts, 4);
    check_pattern(ctx, "s3://floe-test/big/four-parts", n, 10);
    /* Exactly two parts: the data ends on a part boundary. */
    put_pattern(ctx, "s3://floe-test/big/two-parts", 2 * part, 11, part);
    check_pattern(ctx, "s3://floe-test/big/two-parts", 2 * part, 11);
    /* One part exactly: a single PUT. */
    put_pattern(ctx, "s3://floe-test/big/one-part", part, 12, 65536);
    check_pattern(ctx, "s3://floe-test/big/one-part", part, 12);
    assert_int_equal(server_cmd(&srv, "uploads floe-test"), 0);
    floe_context_free(ctx);
}

static void ranged_reads_at_odd_offsets(void **state) {
    (void)state;
    /* A small read-ahead so reads cross its edges and large reads bypass it. */
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_READAHEAD=1000"));
    size_t n = 100003;
    uint8_t *want = malloc(n), buf[5000];
    floe_file *f;
    size_t got;

    put_pattern(ctx, "s3://floe-test/ranged", n, 20, 4096);
    fill_pattern(want, n, 20);
    OK(floe_file_open_read(ctx, "s3://floe-test/ranged", &f));
    static const struct { uint64_t off; size_t len; } cases[] = {
        {0, 1}, {1, 999}, {999, 2}, {12345, 4999}, {12346, 17}, {50001, 1000}, {50000, 3},
        {99999, 4}, {100000, 3}, {100001, 5000}, {7, 0}, {3, 1001},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        OK(floe_file_pread(f, cases[i].off, buf, cases[i].len, &got));
        size_t expect = cases[i].off + cases[i].len <= n ? cases[i].len : n - cases[i].off;
        assert_int_equal(got, expect);
        assert_memory_equal(buf, want + cases[i].off, expect);
    }
    /* A sequential scan in small reads: the window doubles from 1000 bytes and the next
     * one is prefetched (1000, 2000, 2000, 4000, ..., 32000, then the last 35003 bytes:
     * 8 GETs, not 1001). */
    floe_file_close(f);
    OK(floe_file_open_read(ctx, "s3://floe-test/ranged", &f));
    long gets = server_cmd(&srv, "count GET /floe-test/ranged");
    for (size_t off = 0; off < n; off += 100) {
        OK(floe_file_pread(f, off, buf, 100, &got));
        assert_int_equal(got, off + 100 <= n ? 100 : n - off);
        assert_memory_equal(buf, want + off, got);
    }
    assert_int_equal(server_cmd(&srv, "count GET /floe-test/ranged") - gets, 8);
    OK(floe_file_pread(f, n, buf, 10, &got));        /* at the end */
    assert_int_equal(got, 0);
    OK(floe_file_pread(f, n + 500, buf, 10, &got));  /* past the end */
    assert_int_equal(got, 0);
    /* Replaced while open: the reader refuses to mix versions. */
    put_pattern(ctx, "s3://floe-test/ranged", n, 21, 65536);
    expect_status(floe_file_pread(f, 60000, buf, 10, &got), FLOE_ABORTED, "replaced");
    floe_file_close(f);
    free(want);
    floe_context_free(ctx);
}

/* ---- Listing and directories ---------------------------------------------------------------- */

typedef struct listing {
    int files, dirs;
    uint64_t bytes;
    char names[64][64];
} listing;

static void on_entry(void *arg, const char *name, const floe_file_info *info) {
    listing *l = arg;
    if (l->files + l->dirs < 64)
        snprintf(l->names[l->files + l->dirs], 64, "%s%s", name, info->is_dir ? "/" : "");
    if (info->is_dir)
        l->dirs++;
    else
        l->files++;
    l->bytes += info->size;
}

static int has_name(const listing *l, const char *name) {
    for (int i = 0; i < l->files + l->dirs && i < 64; i++)
        if (strcmp(l->names[i], name) == 0)
            return 1;
    return 0;
}

typedef struct put_many_arg {
    floe_context *ctx;
    int first, step;
    floe_status st;
} put_many_arg;

/* Writes keys first, first + step, ... < 1100 (one of several threads sharing ctx). */
static void *put_many(void *p) {
    put_many_arg *a = p;
    char uri[256];
    a->st = FLOE_OK;
    for (int i = a->first; i < 1100 && a->st == FLOE_OK; i += a->step) {
        snprintf(uri, sizeof(uri), "s3://floe-many/k/%04d", i);
        a->st = floe_fs_write_all(a->ctx, uri, "xx", (size_t)(i % 3));
    }
    return NULL;
}

static void list_many_pages(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    char uri[256];
    listing l;

    OK(server_cmd(&srv, "mkbucket floe-many") == 0 ? FLOE_OK : FLOE_INTERNAL);
    /* 1100 keys written by 4 threads through one context (the plugin is thread-safe). */
    pthread_t tid[4];
    put_many_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (put_many_arg){.ctx = ctx, .first = t, .step = 4};
        assert_int_equal(pthread_create(&tid[t], NULL, put_many, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(tid[t], NULL);
        assert_int_equal(args[t].st, FLOE_OK);
    }
    long gets = server_cmd(&srv, "count GET list-type=2");
    memset(&l, 0, sizeof(l));
    OK(floe_fs_list(ctx, "s3://floe-many/k", on_entry, &l));
    assert_int_equal(l.files, 1100);
    assert_int_equal(l.bytes, 1100 / 3 * 3 + 1);
    assert_int_equal(server_cmd(&srv, "count GET list-type=2") - gets, 2);   /* two pages */
    floe_context_free(ctx);

    /* A page size of 7: many continuation tokens, files and prefixes mixed. */
    ctx = ctx_for(&srv, EXTRA("FLOE_S3_MAX_KEYS=7"));
    for (int i = 0; i < 20; i++) {
        snprintf(uri, sizeof(uri), "s3://floe-test/tree/f%02d", i);
        OK(floe_fs_write_all(ctx, uri, "abcd", 4));
        snprintf(uri, sizeof(uri), "s3://floe-test/tree/d%02d/inner", i % 5);
        OK(floe_fs_write_all(ctx, uri, "ab", 2));
    }
    gets = server_cmd(&srv, "count GET list-type=2");
    memset(&l, 0, sizeof(l));
    OK(floe_fs_list(ctx, "s3://floe-test/tree/", on_entry, &l));
    assert_int_equal(l.files, 20);
    assert_int_equal(l.dirs, 5);
    assert_int_equal(l.bytes, 80);
    assert_true(has_name(&l, "f07"));
    assert_true(has_name(&l, "d03/"));
    assert_int_equal(server_cmd(&srv, "count GET list-type=2") - gets, 4);   /* 25 / 7 */
    floe_context_free(ctx);
}

static void directories_are_prefixes(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    floe_file_info info = {.struct_size = sizeof(info)};
    listing l;

    OK(floe_fs_mkdir(ctx, "s3://floe-test/dirs/empty"));
    OK(floe_fs_mkdir(ctx, "s3://floe-test/dirs/empty"));            /* exists: OK */
    OK(floe_fs_stat(ctx, "s3://floe-test/dirs/empty", &info));
    assert_int_equal(info.is_dir, 1);
    memset(&l, 0, sizeof(l));
    OK(floe_fs_list(ctx, "s3://floe-test/dirs/empty", on_entry, &l));
    assert_int_equal(l.files + l.dirs, 0);                           /* the marker is hidden */
    OK(floe_fs_write_all(ctx, "s3://floe-test/dirs/full/a", "1", 1));
    OK(floe_fs_stat(ctx, "s3://floe-test/dirs/full", &info));        /* implied by a key */
    assert_int_equal(info.is_dir, 1);
    OK(floe_fs_stat(ctx, "s3://floe-test", &info));                  /* the bucket */
    assert_int_equal(info.is_dir, 1);
    expect_status(floe_fs_mkdir(ctx, "s3://floe-test/dirs/full/a"), FLOE_ALREADY_EXISTS, NULL);
    expect_status(floe_fs_remove(ctx, "s3://floe-test/dirs/full"), FLOE_FAILED_PRECONDITION,
                  "not empty");
    OK(floe_fs_remove(ctx, "s3://floe-test/dirs/empty"));
    expect_status(floe_fs_stat(ctx, "s3://floe-test/dirs/empty", &info), FLOE_NOT_FOUND, NULL);
    expect_status(floe_fs_list(ctx, "s3://floe-test/dirs/nothing", on_entry, &l), FLOE_NOT_FOUND,
                  "no such prefix");
    /* Rename: copy then delete. */
    OK(floe_fs_rename(ctx, "s3://floe-test/dirs/full/a", "s3://floe-test/dirs/full/b"));
    expect_status(floe_fs_stat(ctx, "s3://floe-test/dirs/full/a", &info), FLOE_NOT_FOUND, NULL);
    void *data;
    size_t size;
    OK(floe_fs_read_all(ctx, "s3://floe-test/dirs/full/b", 0, &data, &size));
    assert_int_equal(size, 1);
    assert_memory_equal(data, "1", 1);
    free(data);
    expect_status(floe_fs_rename(ctx, "s3://floe-test/dirs/nope", "s3://floe-test/dirs/x"),
                  FLOE_NOT_FOUND, NULL);
    OK(floe_fs_remove(ctx, "s3://floe-test/dirs/full/b"));
    expect_status(floe_fs_remove(ctx, "s3://floe-test/dirs/full/b"), FLOE_NOT_FOUND, NULL);
    floe_context_free(ctx);
}

/* ---- Errors ---------------------------------------------------------------------------------- */

static void missing_keys_and_buckets(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    floe_file_info info = {.struct_size = sizeof(info)};
    floe_file *f;
    listing l;
    void *data;
    size_t size;

    expect_status(floe_file_open_read(ctx, "s3://floe-test/no/such/key", &f), FLOE_NOT_FOUND,
                  "s3://floe-test/no/such/key");
    assert_null(f);
    expect_status(floe_fs_read_all(ctx, "s3://floe-test/nokey", 0, &data, &size), FLOE_NOT_FOUND,
                  NULL);
    expect_status(floe_fs_stat(ctx, "s3://floe-test/nokey", &info), FLOE_NOT_FOUND, NULL);
    expect_status(floe_fs_remove(ctx, "s3://floe-test/nokey"), FLOE_NOT_FOUND, NULL);
    /* A missing bucket: S3's code and request id are in the message. */
    expect_status(floe_fs_list(ctx, "s3://floe-no-bucket/", on_entry, &l), FLOE_NOT_FOUND,
                  "NoSuchBucket");
    assert_non_null(strstr(floe_last_error(), "request id"));
    expect_status(floe_fs_write_all(ctx, "s3://floe-no-bucket/a", "x", 1), FLOE_NOT_FOUND,
                  "NoSuchBucket");
    expect_status(floe_fs_stat(ctx, "s3://floe-no-bucket/a", &info), FLOE_NOT_FOUND,
                  "NoSuchBucket");
    expect_status(floe_fs_mkdir(ctx, "s3://floe-no-bucket/d"), FLOE_NOT_FOUND, "NoSuchBucket");
    /* A broken server: a listing that never ends, an answer that is not XML. */
    OK(server_cmd(&srv, "fault GET list-type=2 listloop 1000"));
    memset(&l, 0, sizeof(l));
    expect_status(floe_fs_list(ctx, "s3://floe-test/loop", on_entry, &l), FLOE_DATA_LOSS,
                  "page 2: truncated");
    assert_true(has_name(&l, "a&b"));
    OK(server_cmd(&srv, "clear"));
    OK(server_cmd(&srv, "fault GET list-type=2 notxml 1"));
    expect_status(floe_fs_list(ctx, "s3://floe-test/", on_entry, &l), FLOE_DATA_LOSS,
                  "not a ListBucketResult");
    OK(server_cmd(&srv, "clear"));
    /* Malformed URIs never reach the network. */
    expect_status(floe_fs_stat(ctx, "s3://ab/k", &info), FLOE_INVALID_ARGUMENT, "3 to 63");
    expect_status(floe_fs_stat(ctx, "s3://bad!bucket/k", &info), FLOE_INVALID_ARGUMENT,
                  "bad character");
    expect_status(floe_file_open_write(ctx, "s3://floe-test/dir/", 0, &f), FLOE_INVALID_ARGUMENT,
                  "directory");
    expect_status(floe_file_open_read(ctx, "s3://floe-test", &f), FLOE_FAILED_PRECONDITION,
                  "directory");
    floe_context_free(ctx);
}

static void bad_credentials_are_refused(void **state) {
    (void)state;
    floe_file_info info = {.struct_size = sizeof(info)};
    char *cred_path = NULL;

    if (auth_srv.pid <= 0)
        skip();
    /* The right key (from the shared credentials file and a profile): moto checks the
     * SigV4 signature of every request against IAM. */
    char path[] = "/tmp/floe-s3-credentials-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *cf = fdopen(fd, "w");
    fprintf(cf, "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
                "[floe]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
            auth_srv.key, auth_srv.secret);
    fclose(cf);
    cred_path = path;
    char cred_env[300], endpoint[128];
    snprintf(cred_env, sizeof(cred_env), "AWS_SHARED_CREDENTIALS_FILE=%s", cred_path);
    snprintf(endpoint, sizeof(endpoint), "AWS_ENDPOINT_URL_S3=http://127.0.0.1:%d",
             auth_srv.moto_port);
    floe_context *ctx = ctx_for(&auth_srv, EXTRA("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
                                                 "AWS_ENDPOINT_URL=http://127.0.0.1:1", endpoint,
                                                 cred_env, "AWS_PROFILE=floe"));
    OK(server_cmd(&auth_srv, "mkbucket floe-auth") == 0 ? FLOE_OK : FLOE_INTERNAL);
    put_pattern(ctx, "s3://floe-auth/ok.bin", 5000, 30, 999);
    check_pattern(ctx, "s3://floe-auth/ok.bin", 5000, 30);
    OK(floe_fs_stat(ctx, "s3://floe-auth/ok.bin", &info));
    OK(floe_fs_rename(ctx, "s3://floe-auth/ok.bin", "s3://floe-auth/ok2.bin"));
    OK(floe_fs_remove(ctx, "s3://floe-auth/ok2.bin"));
    floe_context_free(ctx);

    /* The default profile's key is unknown to the server. */
    ctx = ctx_for(&auth_srv, EXTRA("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", endpoint,
                                   cred_env));
    expect_status(floe_fs_write_all(ctx, "s3://floe-auth/x", "x", 1), FLOE_PERMISSION_DENIED,
                  "InvalidAccessKeyId");
    floe_context_free(ctx);
    /* The right key with a wrong secret. */
    char key_env[300];
    snprintf(key_env, sizeof(key_env), "AWS_ACCESS_KEY_ID=%s", auth_srv.key);
    ctx = ctx_for(&auth_srv, EXTRA(key_env, "AWS_SECRET_ACCESS_KEY=not-the-secret", endpoint));
    expect_status(floe_fs_write_all(ctx, "s3://floe-auth/x", "x", 1), FLOE_PERMISSION_DENIED,
                  "SignatureDoesNotMatch");
    assert_non_null(strstr(floe_last_error(), "request id"));
    expect_status(floe_fs_stat(ctx, "s3://floe-auth/x", &info), FLOE_PERMISSION_DENIED, "403");
    floe_context_free(ctx);
    /* The right key and secret with a session token the server did not issue: the token
     * is sent (x-amz-security-token) and refused. */
    char secret_env[300];
    snprintf(secret_env, sizeof(secret_env), "AWS_SECRET_ACCESS_KEY=%s", auth_srv.secret);
    ctx = ctx_for(&auth_srv, EXTRA(key_env, secret_env, endpoint, "AWS_SESSION_TOKEN=bogus"));
    expect_status(floe_fs_write_all(ctx, "s3://floe-auth/x", "x", 1), FLOE_UNAUTHENTICATED,
                  "InvalidToken");
    floe_context_free(ctx);
    unlink(cred_path);
}

static void addressing_styles(void **state) {
    (void)state;
    char url[128];
    listing l;

    /* Virtual-hosted: bucket.localhost:PORT/key (curl resolves *.localhost to loopback);
     * the proxy sees the key alone as the path. */
    snprintf(url, sizeof(url), "AWS_ENDPOINT_URL=http://localhost:%d", srv.proxy_port);
    floe_context *ctx = ctx_for(&srv, EXTRA(url, "FLOE_S3_FORCE_PATH_STYLE=0"));
    long before = server_cmd(&srv, "count PUT /vhost/object");
    put_pattern(ctx, "s3://floe-test/vhost/object", 3000, 50, 3000);
    check_pattern(ctx, "s3://floe-test/vhost/object", 3000, 50);
    assert_int_equal(server_cmd(&srv, "count PUT /vhost/object") - before, 1);
    assert_int_equal(server_cmd(&srv, "count PUT /floe-test/vhost/object"), 0);
    memset(&l, 0, sizeof(l));
    OK(floe_fs_list(ctx, "s3://floe-test/vhost", on_entry, &l));
    assert_int_equal(l.files, 1);
    /* A bucket name with dots is always addressed path-style (TLS wildcards do not
     * cover dotted names). */
    OK(server_cmd(&srv, "mkbucket floe.dotted") == 0 ? FLOE_OK : FLOE_INTERNAL);
    before = server_cmd(&srv, "count PUT /floe.dotted/object");
    put_pattern(ctx, "s3://floe.dotted/object", 100, 51, 100);
    check_pattern(ctx, "s3://floe.dotted/object", 100, 51);
    assert_int_equal(server_cmd(&srv, "count PUT /floe.dotted/object") - before, 1);
    floe_context_free(ctx);
}

static void bad_configuration_fails_init(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=1M"));
    floe_file_info info = {.struct_size = sizeof(info)};
    /* The plugin refused to load (init failed, named the variable); the process goes on and
     * s3:// URIs say no filesystem serves them. */
    expect_status(floe_fs_stat(ctx, "s3://floe-test/x", &info), FLOE_NOT_FOUND,
                  "no filesystem for scheme 's3'");
    floe_context_free(ctx);
    ctx = ctx_for(&srv, EXTRA("AWS_ENDPOINT_URL=ftp://example.com"));
    expect_status(floe_fs_stat(ctx, "s3://floe-test/x", &info), FLOE_NOT_FOUND, "no filesystem");
    floe_context_free(ctx);
}

/* ---- Faults -------------------------------------------------------------------------------------- */

static void transient_faults_are_retried(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=5M", "FLOE_S3_STALL_SECONDS=1"));
    size_t n = ((size_t)5 << 20) * 2 + 1000;

    /* Part 2 throttled twice (503 SlowDown), the completion once (429), the first
     * HEAD's connection dropped, a ranged GET stalled longer than the stall limit. */
    OK(server_cmd(&srv, "clear"));
    long before = server_cmd(&srv, "count PUT partNumber=2");
    OK(server_cmd(&srv, "fault PUT partNumber=2& 503 2"));
    OK(server_cmd(&srv, "fault POST uploadId= 429 1"));
    put_pattern(ctx, "s3://floe-test/faults/retried", n, 40, 1 << 20);
    assert_int_equal(server_cmd(&srv, "count PUT partNumber=2") - before, 3);
    OK(server_cmd(&srv, "fault HEAD * drop 1"));
    OK(server_cmd(&srv, "fault GET /floe-test/faults/retried hang:3 1"));
    check_pattern(ctx, "s3://floe-test/faults/retried", n, 40);
    OK(server_cmd(&srv, "fault PUT * 500 2"));
    OK(floe_fs_write_all(ctx, "s3://floe-test/faults/small", "hello", 5));
    OK(server_cmd(&srv, "clear"));
    floe_context_free(ctx);
}

static void failed_upload_is_aborted(void **state) {
    (void)state;
    /* One upload thread: the caller sends each part, so the failure shows at the write. */
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=5M", "FLOE_S3_MAX_ATTEMPTS=3",
                                            "FLOE_S3_UPLOAD_THREADS=1"));
    floe_file_info info = {.struct_size = sizeof(info)};
    size_t part = (size_t)5 << 20;
    uint8_t *buf = calloc(1, part);
    floe_file *f;

    /* Part 2 fails for good: the write reports it, the upload is aborted, no object. */
    OK(server_cmd(&srv, "clear"));
    long aborts = server_cmd(&srv, "count DELETE uploadId=");
    OK(server_cmd(&srv, "fault PUT partNumber=2& 500 100"));
    OK(floe_file_open_write(ctx, "s3://floe-test/faults/aborted", 0, &f));
    OK(floe_file_write(f, buf, part));
    OK(floe_file_write(f, buf, part));           /* part 1 sent */
    expect_status(floe_file_write(f, buf, 1), FLOE_UNAVAILABLE, "InternalError");
    assert_non_null(strstr(floe_last_error(), "3 attempts"));
    expect_status(floe_file_write(f, buf, 1), FLOE_FAILED_PRECONDITION, "earlier write failed");
    expect_status(floe_file_close(f), FLOE_FAILED_PRECONDITION, "nothing was written");
    assert_int_equal(server_cmd(&srv, "count DELETE uploadId=") - aborts, 1);
    assert_int_equal(server_cmd(&srv, "uploads floe-test"), 0);
    expect_status(floe_fs_stat(ctx, "s3://floe-test/faults/aborted", &info), FLOE_NOT_FOUND, NULL);
    OK(server_cmd(&srv, "clear"));
    floe_context_free(ctx);

    /* Parts in flight on worker threads (the default): part 3 of 5 fails for good while
     * the caller writes on; the failure comes back at a later write or at close, every
     * other part is waited for, the upload is aborted, and no object appears. */
    ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=5M", "FLOE_S3_MAX_ATTEMPTS=3"));
    aborts = server_cmd(&srv, "count DELETE uploadId=");
    OK(server_cmd(&srv, "fault PUT partNumber=3& 503 100"));
    OK(floe_file_open_write(ctx, "s3://floe-test/faults/aborted-async", 0, &f));
    floe_status st = FLOE_OK;
    for (int i = 0; i < 5 && st == FLOE_OK; i++)
        st = floe_file_write(f, buf, part);
    if (st == FLOE_OK)
        st = floe_file_close(f);
    else
        floe_file_abort(f);
    expect_status(st, FLOE_UNAVAILABLE, "partNumber=3");
    assert_non_null(strstr(floe_last_error(), "SlowDown"));
    assert_int_equal(server_cmd(&srv, "count DELETE uploadId=") - aborts, 1);
    assert_int_equal(server_cmd(&srv, "uploads floe-test"), 0);
    expect_status(floe_fs_stat(ctx, "s3://floe-test/faults/aborted-async", &info), FLOE_NOT_FOUND,
                  NULL);
    OK(server_cmd(&srv, "clear"));

    /* The server goes away mid-upload (every connection dropped): close fails, and even
     * though the abort cannot reach it either, no object appears. */
    OK(floe_file_open_write(ctx, "s3://floe-test/faults/gone", 0, &f));
    OK(floe_file_write(f, buf, part));
    OK(floe_file_write(f, buf, part));
    OK(server_cmd(&srv, "fault * * drop 1000"));
    expect_status(floe_file_close(f), FLOE_UNAVAILABLE, "s3://floe-test/faults/gone");
    OK(server_cmd(&srv, "clear"));
    expect_status(floe_fs_stat(ctx, "s3://floe-test/faults/gone", &info), FLOE_NOT_FOUND, NULL);
    free(buf);
    floe_context_free(ctx);
}

static void deadline_bounds_retries(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_DEADLINE_MS=400", "FLOE_S3_MAX_ATTEMPTS=100",
                                            "FLOE_S3_RETRY_BASE_MS=50"));
    floe_file_info info = {.struct_size = sizeof(info)};

    OK(server_cmd(&srv, "fault HEAD * 503 1000"));
    floe_status st = floe_fs_stat(ctx, "s3://floe-test/small/a.bin", &info);
    OK(server_cmd(&srv, "clear"));
    /* The last attempt ended with the 503 or was cut by the deadline itself. */
    expect_status(st, FLOE_DEADLINE_EXCEEDED, "attempts");
    floe_context_free(ctx);

    /* Nobody listening: connection refused, retried, then UNAVAILABLE. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    char url[128];
    snprintf(url, sizeof(url), "AWS_ENDPOINT_URL=http://127.0.0.1:%d", ntohs(a.sin_port));
    ctx = ctx_for(&srv, EXTRA(url, "FLOE_S3_MAX_ATTEMPTS=3"));
    expect_status(floe_fs_stat(ctx, "s3://floe-test/a", &info), FLOE_UNAVAILABLE, "3 attempts");
    floe_context_free(ctx);
}

/* ---- Checkpoints and a killed training run ----------------------------------------------------- */

#define TRAIN_N 256
#define TRAIN_BATCH 32
#define STEPS_PER_EPOCH (TRAIN_N / TRAIN_BATCH)

/* A small classifier on synthetic data; *@out compiled. */
static floe_status small_model(floe_context *ctx, floe_model **out, floe_dataset **ds) {
    static float x[TRAIN_N * 8];
    static int32_t y[TRAIN_N];
    const int64_t in_shape[] = {8};
    floe_model *m = NULL;
    floe_status st;

    tc_fill_uniform(x, TRAIN_N * 8, -1.0f, 1.0f, 7);
    for (int i = 0; i < TRAIN_N; i++)
        y[i] = x[i * 8] + x[i * 8 + 1] > 0;
    *out = NULL;
    if ((st = floe_dataset_from_arrays(TRAIN_N, FLOE_DTYPE_F32, x, in_shape, 1, FLOE_DTYPE_I32, y,
                                       NULL, 0, 1.0f, ds)) != FLOE_OK ||
        (st = floe_model_new(ctx, in_shape, 1, &m)) != FLOE_OK)
        return st;
    if ((st = floe_model_add(m, floe_layer_dense(16, "relu"))) != FLOE_OK ||
        (st = floe_model_add(m, floe_layer_dense(2, "softmax"))) != FLOE_OK ||
        (st = floe_model_compile(m, "adam", 1e-2, "sparse_categorical_crossentropy", "accuracy")) !=
            FLOE_OK) {
        floe_model_free(m);
        return st;
    }
    *out = m;
    return FLOE_OK;
}

/* The epoch number N of ".../ckpt-N.floeckpt", or -1. */
static int64_t ckpt_number(const char *path) {
    const char *p = strrchr(path, '/');
    long long n;
    if (p == NULL || sscanf(p, "/ckpt-%lld.floeckpt", &n) != 1)
        return -1;
    return n;
}

/* The child: resumes from @dir's latest checkpoint if any, then trains @epochs epochs,
 * saving a checkpoint after each (named by epoch) and printing "saved PATH". */
static int train_child(const char *dir, int epochs) {
    floe_context *ctx = NULL;
    floe_model *m = NULL;
    floe_dataset *ds = NULL;
    char path[4096];
    int64_t epoch = 0;

    if (floe_context_new(NULL, &ctx) != FLOE_OK || small_model(ctx, &m, &ds) != FLOE_OK) {
        fprintf(stderr, "child: %s %s\n", floe_last_error(), floe_keras_last_error());
        return 1;
    }
    if (floe_checkpoint_latest(ctx, dir, path, sizeof(path)) == FLOE_OK) {
        if (floe_checkpoint_restore(floe_model_graph(m), floe_model_session(m), path) != FLOE_OK) {
            fprintf(stderr, "child: restore %s: %s\n", path, floe_keras_last_error());
            return 1;
        }
        epoch = ckpt_number(path);
        printf("resumed %s\n", path);
        fflush(stdout);
    }
    floe_fit_options o;
    floe_fit_options_init(&o);
    o.epochs = 1;
    o.batch_size = TRAIN_BATCH;
    o.verbose = 0;
    for (int e = 0; e < epochs; e++) {
        if (floe_model_fit(m, ds, NULL, &o, NULL) != FLOE_OK ||
            floe_checkpoint_save(floe_model_graph(m), floe_model_session(m), dir, ++epoch, 3, path,
                                 sizeof(path)) != FLOE_OK) {
            fprintf(stderr, "child: epoch %" PRId64 ": %s\n", epoch, floe_keras_last_error());
            return 1;
        }
        printf("saved %s\n", path);
        fflush(stdout);
    }
    floe_model_free(m);
    floe_dataset_free(ds);
    floe_context_free(ctx);
    return 0;
}

/* Opens @path, reads every tensor (checksums checked) and returns global_step. */
static int64_t verify_checkpoint(floe_context *ctx, const char *path) {
    floe_checkpoint *c;
    floe_tensor *t;
    int64_t step = -1;

    OK(floe_checkpoint_open(ctx, path, &c));
    for (int i = 0; i < floe_checkpoint_num_tensors(c); i++) {
        OK(floe_checkpoint_read_tensor(c, i, &t));
        if (i == floe_checkpoint_find(c, "global_step"))
            step = *(const int64_t *)floe_tensor_data(t);
        floe_tensor_unref(t);
    }
    floe_checkpoint_close(c);
    return step;
}

static pid_t spawn_child(const char *dir, const char *epochs, int *out_fd) {
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(self_exe, self_exe, "--train-child", dir, epochs, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

static void checkpoint_interrupted_save_keeps_previous(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_MAX_ATTEMPTS=2"));
    floe_model *m;
    floe_dataset *ds;
    char path[4096];
    const char *dir = "s3://floe-test/ckpt-direct";

    OK(small_model(ctx, &m, &ds));
    OK(floe_checkpoint_save(floe_model_graph(m), floe_model_session(m), dir, 1, 3, path,
                            sizeof(path)));
    /* The data object of step 2 cannot be written: the save fails and "latest" stays 1. */
    OK(server_cmd(&srv, "fault PUT ckpt-2.floeckpt 500 100"));
    assert_int_not_equal(floe_checkpoint_save(floe_model_graph(m), floe_model_session(m), dir, 2,
                                              3, path, sizeof(path)),
                         FLOE_OK);
    OK(server_cmd(&srv, "clear"));
    OK(floe_checkpoint_latest(ctx, dir, path, sizeof(path)));
    assert_int_equal(ckpt_number(path), 1);
    /* The pointer file cannot be written: the data object is there, "latest" stays 1. */
    OK(server_cmd(&srv, "fault PUT /checkpoint 503 100"));
    assert_int_not_equal(floe_checkpoint_save(floe_model_graph(m), floe_model_session(m), dir, 3,
                                              3, path, sizeof(path)),
                         FLOE_OK);
    OK(server_cmd(&srv, "clear"));
    OK(floe_checkpoint_latest(ctx, dir, path, sizeof(path)));
    assert_int_equal(ckpt_number(path), 1);
    /* The store serves the new data object damaged: the read-back before the pointer
     * catches it, "latest" stays 1. */
    OK(server_cmd(&srv, "fault GET ckpt-4.floeckpt flip 1"));
    assert_int_equal(floe_checkpoint_save(floe_model_graph(m), floe_model_session(m), dir, 4, 3,
                                          path, sizeof(path)),
                     FLOE_DATA_LOSS);
    OK(server_cmd(&srv, "clear"));
    OK(floe_checkpoint_latest(ctx, dir, path, sizeof(path)));
    assert_int_equal(ckpt_number(path), 1);
    OK(floe_checkpoint_restore_latest(floe_model_graph(m), floe_model_session(m), dir, NULL, 0));
    floe_model_free(m);
    floe_dataset_free(ds);
    floe_context_free(ctx);
}

static void training_killed_and_resumed_from_s3(void **state) {
    (void)state;
    const char *dir = "s3://floe-test/train-run";
    char line[4096], path[4096];
    int fd, status;

    floe_context *ctx = ctx_for(&srv, NULL);   /* the children inherit this environment */
    pid_t pid = spawn_child(dir, "100000", &fd);
    assert_true(pid > 0);
    int64_t saved = 0;
    while (saved < 3 && read_line(fd, line, sizeof(line), 120000) == 0)
        if (strncmp(line, "saved ", 6) == 0)
            saved = ckpt_number(line + 6);
    assert_true(saved >= 3);
    usleep((useconds_t)(now_ms() % 40) * 1000);   /* anywhere in the next save */
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    close(fd);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* What the killed run left: "latest" names a whole checkpoint whose global_step
     * matches its epoch. */
    OK(floe_checkpoint_latest(ctx, dir, path, sizeof(path)));
    int64_t latest = ckpt_number(path);
    assert_true(latest >= 3);
    assert_int_equal(verify_checkpoint(ctx, path), latest * STEPS_PER_EPOCH);

    /* Resume: the new run restores it and goes on from there. */
    pid = spawn_child(dir, "2", &fd);
    assert_true(pid > 0);
    int resumed = 0, last = 0;
    while (read_line(fd, line, sizeof(line), 120000) == 0) {
        if (strncmp(line, "resumed ", 8) == 0)
            resumed = ckpt_number(line + 8) == latest;
        if (strncmp(line, "saved ", 6) == 0)
            last = (int)ckpt_number(line + 6);
    }
    close(fd);
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(resumed);
    assert_int_equal(last, latest + 2);
    OK(floe_checkpoint_latest(ctx, dir, path, sizeof(path)));
    assert_int_equal(ckpt_number(path), latest + 2);
    /* A fresh start would hold 2 epochs of steps; the resumed one continued. */
    assert_int_equal(verify_checkpoint(ctx, path), (latest + 2) * STEPS_PER_EPOCH);
    floe_context_free(ctx);
}

/* ---- Libraries and tools on s3:// -------------------------------------------------------------- */

static void tfrecord_file_on_s3(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, EXTRA("FLOE_S3_PART_SIZE=5M", "FLOE_S3_READAHEAD=64K"));
    static const floe_compression kinds[] = {FLOE_COMPRESSION_NONE, FLOE_COMPRESSION_GZIP};
    uint8_t rec[3000];

    for (int k = 0; k < 2; k++) {
        const char *uri = k == 0 ? "s3://floe-test/io/data.tfrecord" : "s3://floe-test/io/data.tfrecord.gz";
        floe_tfrecord_writer *w;
        floe_tfrecord_reader *r;
        /* ~6 MiB uncompressed: a multipart upload for the plain file. */
        OK(floe_tfrecord_writer_open(ctx, uri, kinds[k], 0, &w));
        for (int i = 0; i < 2000; i++) {
            fill_pattern(rec, sizeof(rec), (uint64_t)i + 100);
            OK(floe_tfrecord_write(w, rec, 1 + (size_t)(i * 7919) % sizeof(rec)));
        }
        OK(floe_tfrecord_writer_close(w));
        OK(floe_tfrecord_reader_open(ctx, uri, kinds[k], &r));
        const void *data;
        size_t n;
        int i = 0;
        floe_status st;
        while ((st = floe_tfrecord_read(r, &data, &n)) == FLOE_OK) {
            fill_pattern(rec, sizeof(rec), (uint64_t)i + 100);
            assert_int_equal(n, 1 + (size_t)(i * 7919) % sizeof(rec));
            assert_memory_equal(data, rec, n);
            i++;
        }
        expect_status(st, FLOE_OUT_OF_RANGE, NULL);
        assert_int_equal(i, 2000);
        floe_tfrecord_reader_close(r);
    }
    floe_context_free(ctx);
}

static void event_file_on_s3(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    floe_summary_writer *w;
    floe_event_reader *r;
    const floe_event *ev;
    char path[1024];

    OK(floe_summary_writer_new(ctx, "s3://floe-test/io/logs/run1", -1, &w));
    for (int step = 0; step < 50; step++) {
        OK(floe_summary_scalar(w, "loss", 1.0 / (step + 1), step));
        if (step == 20)
            OK(floe_summary_flush(w));      /* no append on S3: the object is rewritten */
    }
    snprintf(path, sizeof(path), "%s", floe_summary_writer_path(w));
    assert_true(strncmp(path, "s3://floe-test/io/logs/run1/", 28) == 0);
    OK(floe_summary_writer_close(w));
    OK(floe_event_reader_open(ctx, path, &r));
    int scalars = 0;
    while (floe_event_reader_next(r, &ev) == FLOE_OK)
        if (ev->kind == FLOE_EVENT_SUMMARY && ev->nvalues == 1 &&
            strcmp(ev->values[0].tag, "loss") == 0) {
            assert_true(fabs(ev->values[0].scalar - 1.0 / (ev->step + 1)) < 1e-6);
            scalars++;
        }
    floe_event_reader_close(r);
    assert_int_equal(scalars, 50);
    floe_context_free(ctx);
}

/* Copies local file @from to @to (any URI). */
static void copy_file(floe_context *ctx, const char *from, const char *to) {
    void *data;
    size_t size;
    OK(floe_fs_read_all(ctx, from, 0, &data, &size));
    OK(floe_fs_write_all(ctx, to, data, size));
    free(data);
}

/* IDX data sets (floe train --data) read through the filesystem ABI: Fashion-MNIST's gzip
 * files copied to S3 load exactly as the local ones; a plain IDX pair, and a cut one. */
static void idx_data_on_s3(void **state) {
    (void)state;
    floe_context *ctx = ctx_for(&srv, NULL);
    const char *dir = FLOE_FASHION_MNIST_DIR;
    char from[512];
    floe_dataset *local = NULL, *remote = NULL;

    snprintf(from, sizeof(from), "%s/t10k-images-idx3-ubyte.gz", dir);
    if (access(from, R_OK) == 0) {
        copy_file(ctx, from, "s3://floe-test/fmnist/t10k-images-idx3-ubyte.gz");
        snprintf(from, sizeof(from), "%s/t10k-labels-idx1-ubyte.gz", dir);
        copy_file(ctx, from, "s3://floe-test/fmnist/t10k-labels-idx1-ubyte.gz");
        OK(floe_dataset_load_fashion_mnist(dir, 0, &local));
        OK(floe_dataset_load_fashion_mnist_ctx(ctx, "s3://floe-test/fmnist", 0, &remote));
        assert_int_equal(floe_dataset_size(remote), 10000);
        for (int64_t i = 0; i < 10000; i += 997) {
            assert_memory_equal(floe_dataset_example(local, i), floe_dataset_example(remote, i),
                                28 * 28);
            assert_int_equal(floe_dataset_label(local, i), floe_dataset_label(remote, i));
        }
        floe_dataset_free(local);
        floe_dataset_free(remote);
    } else {
        printf("note: %s missing (dataset-fashion-mnist): only the plain IDX case runs\n", from);
    }
    /* Plain (not gzip) IDX: 3 images of 2x2 and 3 labels. */
    static const uint8_t images[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                     1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9};
    OK(floe_fs_write_all(ctx, "s3://floe-test/idx/images", images, sizeof(images)));
    OK(floe_fs_write_all(ctx, "s3://floe-test/idx/labels", labels, sizeof(labels)));
    OK(floe_dataset_load_idx_ctx(ctx, "s3://floe-test/idx/images", "s3://floe-test/idx/labels",
                                 1.0f, &remote));
    assert_int_equal(floe_dataset_size(remote), 3);
    assert_int_equal(((const uint8_t *)floe_dataset_example(remote, 2))[3], 12);
    assert_int_equal(floe_dataset_label(remote, 1), 8);
    floe_dataset_free(remote);
    /* Cut one byte short: a data-loss error naming the URI, no data set. */
    OK(floe_fs_write_all(ctx, "s3://floe-test/idx/cut", images, sizeof(images) - 1));
    remote = (floe_dataset *)&remote;
    assert_int_equal(floe_dataset_load_idx_ctx(ctx, "s3://floe-test/idx/cut",
                                               "s3://floe-test/idx/labels", 1.0f, &remote),
                     FLOE_DATA_LOSS);
    assert_null(remote);
    assert_non_null(strstr(floe_keras_last_error(), "s3://floe-test/idx/cut"));
    /* Without a context only local files are accepted, and the error says so. */
    assert_int_not_equal(floe_dataset_load_idx("s3://floe-test/idx/images",
                                               "s3://floe-test/idx/labels", 1.0f, &remote),
                         FLOE_OK);
    floe_context_free(ctx);
}

static void floe_run_model_on_s3(void **state) {
    (void)state;
    const char *root = getenv("FLOE_SOURCE_ROOT"), *build = getenv("FLOE_BUILD_ROOT");
    char src[2048], cmd[8192], local_out[] = "/tmp/floe-s3-run-XXXXXX";
    floe_context *ctx = ctx_for(&srv, NULL);

    assert_non_null(root);
    assert_non_null(build);
    snprintf(src, sizeof(src), "%s/tests/fixtures/tf/mlp.pb", root);
    copy_file(ctx, src, "s3://floe-test/models/mlp.pb");
    snprintf(src, sizeof(src), "%s/tests/fixtures/tf/mlp_x.npy", root);
    copy_file(ctx, src, "s3://floe-test/models/mlp_x.npy");
    int fd = mkstemp(local_out);
    assert_true(fd >= 0);
    close(fd);
    /* The same model run from local files and from S3 (output written to S3). */
    snprintf(cmd, sizeof(cmd),
             "'%s/tools/floe' run '%s/tests/fixtures/tf/mlp.pb' --input x='%s' "
             "--output-file Identity='%s' >/dev/null && "
             "'%s/tools/floe' run s3://floe-test/models/mlp.pb "
             "--input x=s3://floe-test/models/mlp_x.npy "
             "--output-file Identity=s3://floe-test/models/out.npy",
             build, root, src, local_out, build);
    int rc = system(cmd);
    assert_int_equal(rc, 0);
    void *a, *b;
    size_t na, nb;
    OK(floe_fs_read_all(ctx, local_out, 0, &a, &na));
    OK(floe_fs_read_all(ctx, "s3://floe-test/models/out.npy", 0, &b, &nb));
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    unlink(local_out);
    /* A missing model on S3: the tool fails and names it. */
    snprintf(cmd, sizeof(cmd), "'%s/tools/floe' run s3://floe-test/models/none.pb --input x=%s "
             "--output Identity 2>&1 | grep -q 's3://floe-test/models/none.pb'", build, src);
    assert_int_equal(system(cmd), 0);
    floe_context_free(ctx);
}

/* ---- Main ---------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--train-child") == 0)
        return train_child(argv[2], atoi(argv[3]));
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    int rc = server_start(&srv, 0);
    if (rc != 0)
        return rc == 77 ? 77 : 1;
    if (server_cmd(&srv, "mkbucket floe-test") != 0) {
        server_stop(&srv);
        return 1;
    }
    if (server_start(&auth_srv, 1) != 0)
        printf("note: the IAM-checking moto did not start; bad_credentials_are_refused skips\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_object_roundtrip),
        cmocka_unit_test(multipart_object_roundtrip),
        cmocka_unit_test(ranged_reads_at_odd_offsets),
        cmocka_unit_test(list_many_pages),
        cmocka_unit_test(directories_are_prefixes),
        cmocka_unit_test(missing_keys_and_buckets),
        cmocka_unit_test(bad_credentials_are_refused),
        cmocka_unit_test(addressing_styles),
        cmocka_unit_test(bad_configuration_fails_init),
        cmocka_unit_test(transient_faults_are_retried),
        cmocka_unit_test(failed_upload_is_aborted),
        cmocka_unit_test(deadline_bounds_retries),
        cmocka_unit_test(checkpoint_interrupted_save_keeps_previous),
        cmocka_unit_test(training_killed_and_resumed_from_s3),
        cmocka_unit_test(tfrecord_file_on_s3),
        cmocka_unit_test(event_file_on_s3),
        cmocka_unit_test(floe_run_model_on_s3),
        cmocka_unit_test(idx_data_on_s3),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    server_stop(&auth_srv);
    server_stop(&srv);
    return rc;
}
