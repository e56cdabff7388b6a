/*
 * request.c - one S3 request through libcurl, with retries, error mapping and XML.
 *
 * libcurl (loaded with dlopen at the first request: see fs_s3-impl.h) does the HTTP
 * (keep-alive connections held by a small pool of easy handles per filesystem, TLS,
 * timeouts) and signs every request with AWS Signature V4
 * (CURLOPT_AWS_SIGV4, "aws:amz:<region>:s3"); the payload is declared
 * UNSIGNED-PAYLOAD (x-amz-content-sha256), as the AWS SDKs do over TLS.  Query strings
 * are built sorted and percent-encoded here because curl 7.88 signs the query as given.
 *
 * s3_request() retries an attempt that failed with a connection error, a stall (less
 * than 1 byte/s for FLOE_S3_STALL_SECONDS), HTTP 429, 500, 502, 503, 504, 400
 * RequestTimeout, or a 200 whose body is an <Error> (CompleteMultipartUpload and
 * CopyObject answer so), sleeping a random time in [0, min(cap, base * 2^attempt)]
 * ("full jitter"), while the attempts stay under FLOE_S3_MAX_ATTEMPTS and the next one
 * can start before the deadline (FLOE_S3_DEADLINE_MS after the first).  A final failure
 * maps to a floe_status (s3_map_http) with the S3 error code, message and request id.
 *
 * XML answers are parsed in xml.c.
 *
 * Sections: handles, callbacks, one attempt, loading libcurl, retries and errors,
 * encoding.
 */
#include "fs_s3-impl.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>   /* xmlInitParser */

#define MAX_TEXT_BODY ((size_t)64 << 20)   /* XML answers (a 1000-key listing is ~300 KiB) */

/* ---- Handles ------------------------------------------------------------------------------ */

static CURL *handle_get(s3_fs *fs) {
    CURL *h = NULL;
    pthread_mutex_lock(&fs->lock);
    if (fs->pool_len > 0)
        h = fs->pool[--fs->pool_len];
    pthread_mutex_unlock(&fs->lock);
    if (h == NULL)
        h = s3_curl.easy_init();
    else
        s3_curl.easy_reset(h);
    return h;
}

static void handle_put(s3_fs *fs, CURL *h) {
    pthread_mutex_lock(&fs->lock);
    if (fs->pool_len < (int)(sizeof(fs->pool) / sizeof(fs->pool[0]))) {
        fs->pool[fs->pool_len++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&fs->lock);
    if (h != NULL)
        s3_curl.easy_cleanup(h);
}

/* ---- Callbacks ------------------------------------------------------------------------------- */

typedef struct xfer {
    s3_req *r;
    CURL *h;
    size_t sent;
    size_t text_cap;
    int overflow;            /* the answer was larger than the sink or the text cap */
} xfer;

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg) {
    xfer *x = arg;
    size_t n = size * nitems, left = x->r->body_len - x->sent;
    if (n > left)
        n = left;
    if (n > 0)
        memcpy(buf, (const char *)x->r->body + x->sent, n);
    x->sent += n;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg) {
    xfer *x = arg;
    s3_req *r = x->r;
    size_t n = size * nmemb;
    long code = 0;

    s3_curl.easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (r->sink != NULL && code >= 200 && code < 300) {
        if (n > r->sink_cap - r->sink_len) {
            x->overflow = 1;
            return 0;
        }
        memcpy((char *)r->sink + r->sink_len, data, n);
        r->sink_len += n;
        return n;
    }
    if (r->text_len + n + 1 > x->text_cap) {
        size_t cap = x->text_cap ? x->text_cap : 4096;
        while (cap < r->text_len + n + 1)
            cap *= 2;
        if (cap > MAX_TEXT_BODY) {
            x->overflow = 1;
            return 0;
        }
        char *t = realloc(r->text, cap);
        if (t == NULL)
            return 0;
        r->text = t;
        x->text_cap = cap;
    }
    memcpy(r->text + r->text_len, data, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return n;
}

/* Copies the value of header @name from @line ("Name: value\r\n") into @out. */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t cap) {
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return 0;
    const char *v = line + nlen + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg) {
    xfer *x = arg;
    s3_req *r = x->r;
    size_t len = size * nitems;
    char num[32];

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {   /* a new answer (after 100 Continue) */
        r->etag[0] = r->request_id[0] = r->last_modified[0] = '\0';
        r->has_length = 0;
    } else if (header_value(line, len, "Content-Length", num, sizeof(num))) {
        char *end;
        unsigned long long v = strtoull(num, &end, 10);
        r->has_length = end != num && *end == '\0';
        r->content_length = r->has_length ? v : 0;
    } else if (!header_value(line, len, "ETag", r->etag, sizeof(r->etag)) &&
               !header_value(line, len, "x-amz-request-id", r->request_id, sizeof(r->request_id))) {
        header_value(line, len, "Last-Modified", r->last_modified, sizeof(r->last_modified));
    }
    return len;
}

/* ---- One attempt ---------------------------------------------------------------------------- */

static char *build_url(const s3_fs *fs, const s3_req *r) {
    const s3_config *c = &fs->cfg;
    char *key = s3_encode(r->key, 1);
    /* Virtual-hosted style needs a DNS-safe bucket name without dots (TLS wildcards). */
    int path_style = c->path_style || strchr(r->bucket, '.') != NULL ||
                     strchr(r->bucket, '_') != NULL;
    for (const char *b = r->bucket; !path_style && *b != '\0'; b++)
        path_style = isupper((unsigned char)*b);
    if (key == NULL)
        return NULL;
    const char *q = r->query != NULL && r->query[0] != '\0' ? r->query : NULL;
    size_t n = strlen(key) + strlen(r->bucket) + (q ? strlen(q) : 0) + 128 +
               (c->endpoint ? strlen(c->endpoint) : strlen(c->region));
    char *url = malloc(n);
    if (url != NULL) {
        if (c->endpoint != NULL && path_style)
            snprintf(url, n, "%s/%s/%s%s%s", c->endpoint, r->bucket, key, q ? "?" : "", q ? q : "");
        else if (c->endpoint != NULL) {
            const char *sep = strstr(c->endpoint, "://") + 3;
            snprintf(url, n, "%.*s%s.%s/%s%s%s", (int)(sep - c->endpoint), c->endpoint,
                     r->bucket, sep, key, q ? "?" : "", q ? q : "");
        } else if (path_style)
            snprintf(url, n, "https://s3.%s.amazonaws.com/%s/%s%s%s", c->region, r->bucket, key,
                     q ? "?" : "", q ? q : "");
        else
            snprintf(url, n, "https://%s.s3.%s.amazonaws.com/%s%s%s", r->bucket, c->region, key,
                     q ? "?" : "", q ? q : "");
    }
    free(key);
    return url;
}

/* Performs one attempt; returns curl's code (the HTTP status in r->status). */
static CURLcode attempt(s3_fs *fs, CURL *h, s3_req *r, const char *url, int64_t timeout_ms,
                        int *overflow) {
    const s3_config *c = &fs->cfg;
    struct curl_slist *hdrs = NULL, *t;
    char token[4096];
    xfer x = {.r = r, .h = h};
    CURLcode rc;

    r->status = 0;
    r->sink_len = 0;
    r->text_len = 0;
    if (r->text != NULL)
        r->text[0] = '\0';
    x.text_cap = 0;
    free(r->text);
    r->text = NULL;

    /* No "Expect:" override: curl 7.88 would sign the empty header, which servers do not
     * see; large PUTs keep curl's 100-continue, which S3 supports. */
    hdrs = s3_curl.slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (hdrs != NULL && c->session_token != NULL) {
        snprintf(token, sizeof(token), "x-amz-security-token: %s", c->session_token);
        if ((t = s3_curl.slist_append(hdrs, token)) != NULL)
            hdrs = t;
    }
    for (int i = 0; hdrs != NULL && i < 6 && r->headers[i] != NULL; i++)
        if ((t = s3_curl.slist_append(hdrs, r->headers[i])) != NULL)
            hdrs = t;
    if (hdrs == NULL)
        return CURLE_OUT_OF_MEMORY;

    s3_curl.easy_setopt(h, CURLOPT_URL, url);
    s3_curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    s3_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* Larger socket reads and writes than curl's 16/64 KiB defaults: fewer callbacks and
     * syscalls on multi-megabyte bodies (measured in benchmarks/bench_s3.sh). */
    s3_curl.easy_setopt(h, CURLOPT_BUFFERSIZE, 512L << 10);
    s3_curl.easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    s3_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    s3_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
    s3_curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    s3_curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_seconds);
    s3_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    s3_curl.easy_setopt(h, CURLOPT_WRITEDATA, &x);
    s3_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    s3_curl.easy_setopt(h, CURLOPT_HEADERDATA, &x);
    s3_curl.easy_setopt(h, CURLOPT_VERBOSE, (long)c->verbose);
    if (c->access_key != NULL) {
        s3_curl.easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
        s3_curl.easy_setopt(h, CURLOPT_USERNAME, c->access_key);
        s3_curl.easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    }
    if (strcmp(r->method, "HEAD") == 0) {
        s3_curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
        s3_curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
        s3_curl.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        s3_curl.easy_setopt(h, CURLOPT_READDATA, &x);
        s3_curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0) {
        s3_curl.easy_setopt(h, CURLOPT_POST, 1L);
        s3_curl.easy_setopt(h, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "");
        s3_curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "DELETE") == 0) {
        s3_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    rc = s3_curl.easy_perform(h);
    s3_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    s3_curl.slist_free_all(hdrs);
    *overflow = x.overflow;
    return rc;
}

/* ---- Retries and errors ------------------------------------------------------------------- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A random number for the jitter: splitmix64 of the clock and a per-thread counter. */
static uint64_t jitter_random(void) {
    static _Thread_local uint64_t state;
    struct timespec ts;
    if (state == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)&ts;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

floe_status s3_map_http(long status, const char *code) {
    if (code != NULL && (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
                         strcmp(code, "NoSuchUpload") == 0))
        return FLOE_NOT_FOUND;
    if (code != NULL && (strcmp(code, "InvalidToken") == 0 || strcmp(code, "ExpiredToken") == 0 ||
                         strcmp(code, "TokenRefreshRequired") == 0))
        return FLOE_UNAUTHENTICATED;
    if (code != NULL && (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
                         strcmp(code, "InternalError") == 0 ||
                         strcmp(code, "ServiceUnavailable") == 0))
        return FLOE_UNAVAILABLE;
    switch (status) {
    case 400: return FLOE_INVALID_ARGUMENT;
    case 401: return FLOE_UNAUTHENTICATED;
    case 403: return FLOE_PERMISSION_DENIED;
    case 404: return FLOE_NOT_FOUND;
    case 409: case 412: return FLOE_FAILED_PRECONDITION;
    case 416: return FLOE_OUT_OF_RANGE;
    case 301: case 307: case 308: return FLOE_FAILED_PRECONDITION;
    case 501: return FLOE_UNIMPLEMENTED;
    case 429: case 500: case 502: case 503: case 504: return FLOE_UNAVAILABLE;
    default: return status >= 500 ? FLOE_UNAVAILABLE : FLOE_UNKNOWN;
    }
}

static int retryable_curl(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* The S3 error of an answer's body: code, message and request id ("" when absent). */
static int error_of(const s3_req *r, char *code, size_t clen, char *msg, size_t mlen, char *rid,
                    size_t rlen) {
    code[0] = msg[0] = '\0';
    return s3_parse_error(r->text, r->text_len, code, clen, msg, mlen, rid, rlen);
}

/* Code names for answers without a body (HEAD). */
static const char *status_code_name(long status) {
    switch (status) {
    case 400: return "BadRequest";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 412: return "PreconditionFailed";
    case 416: return "InvalidRange";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    default: return "";
    }
}

floe_status s3_request(s3_fs *fs, s3_req *r) {
    char msg[1600];
    floe_status st = s3_request_msg(fs, r, msg, sizeof(msg));
    return st == FLOE_OK ? FLOE_OK : floe_fail(st, "%s", msg);
}

/* libcurl (dlopen), its global set-up and libxml2's, done at the first request rather
 * than at plugin load, so that processes which never touch s3:// do not pay for them. */
s3_curl_api s3_curl;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static floe_status global_st = FLOE_OK;
static char global_msg[512];
static int global_https;

static void global_init(void) {
    static const char *const libs[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    void *lib = NULL;
    for (size_t i = 0; lib == NULL && i < sizeof(libs) / sizeof(libs[0]); i++)
        lib = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        global_st = FLOE_UNAVAILABLE;
        snprintf(global_msg, sizeof(global_msg), "libcurl could not be loaded (%s); install "
                 "libcurl4", dlerror());
        return;
    }
#define S3_SYM(field, name)                                                              \
    if ((*(void **)&s3_curl.field = dlsym(lib, name)) == NULL) {                         \
        global_st = FLOE_UNAVAILABLE;                                                    \
        snprintf(global_msg, sizeof(global_msg), "libcurl lacks %s", name);             \
        return;                                                                          \
    }
    S3_SYM(easy_init, "curl_easy_init")
    S3_SYM(easy_cleanup, "curl_easy_cleanup")
    S3_SYM(easy_reset, "curl_easy_reset")
    S3_SYM(easy_setopt, "curl_easy_setopt")
    S3_SYM(easy_perform, "curl_easy_perform")
    S3_SYM(easy_getinfo, "curl_easy_getinfo")
    S3_SYM(easy_strerror, "curl_easy_strerror")
    S3_SYM(global_init, "curl_global_init")
    S3_SYM(slist_append, "curl_slist_append")
    S3_SYM(slist_free_all, "curl_slist_free_all")
    S3_SYM(version_info, "curl_version_info")
#undef S3_SYM
    const curl_version_info_data *v = s3_curl.version_info(CURLVERSION_NOW);
    if (v == NULL || v->version_num < 0x074b00) {   /* CURLOPT_AWS_SIGV4: 7.75.0 */
        global_st = FLOE_UNIMPLEMENTED;
        snprintf(global_msg, sizeof(global_msg), "libcurl %s cannot sign with AWS SigV4 "
                 "(7.75.0 or newer needed)", v != NULL ? v->version : "(unknown version)");
        return;
    }
    for (const char *const *p = v->protocols; p != NULL && *p != NULL; p++)
        global_https |= strcmp(*p, "https") == 0;
    CURLcode rc = s3_curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        global_st = FLOE_UNAVAILABLE;
        snprintf(global_msg, sizeof(global_msg), "curl_global_init failed: %s",
                 s3_curl.easy_strerror(rc));
        return;
    }
    xmlInitParser();
}

floe_status s3_request_msg(s3_fs *fs, s3_req *r, char *errmsg, size_t errlen) {
    const s3_config *c = &fs->cfg;
    char code[128], msg[512], last[1024] = "";
    floe_status st = FLOE_UNKNOWN;
    int64_t start = now_ms(), deadline = start + c->deadline_ms;

    r->attempts = 0;
    r->status = 0;
    pthread_once(&global_once, global_init);
    if (global_st != FLOE_OK) {
        snprintf(errmsg, errlen, "s3: %s '%s': %s", r->method, r->uri, global_msg);
        return global_st;
    }
    if (!global_https && (c->endpoint == NULL || strncmp(c->endpoint, "https:", 6) == 0)) {
        snprintf(errmsg, errlen, "s3: %s '%s': this libcurl was built without HTTPS", r->method,
                 r->uri);
        return FLOE_UNIMPLEMENTED;
    }
    char *url = build_url(fs, r);
    CURL *h = url != NULL ? handle_get(fs) : NULL;
    if (h == NULL) {
        free(url);
        snprintf(errmsg, errlen, "s3: %s '%s': out of memory", r->method, r->uri);
        return FLOE_RESOURCE_EXHAUSTED;
    }
    for (;;) {
        int overflow = 0, retry = 0;
        CURLcode rc = attempt(fs, h, r, url, deadline - now_ms(), &overflow);
        r->attempts++;
        if (rc == CURLE_OK && r->status >= 200 && r->status < 300) {
            int err = r->error_body_ok && error_of(r, code, sizeof(code), msg, sizeof(msg),
                                                   r->request_id, sizeof(r->request_id));
            if (!err) {
                st = FLOE_OK;
                break;
            }
            st = s3_map_http(500, code);
            retry = st == FLOE_UNAVAILABLE;
            snprintf(last, sizeof(last), "HTTP %ld with error %s: %s (request id %s)", r->status,
                     code, msg, r->request_id[0] ? r->request_id : "none");
        } else if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && r->status >= 300)) {
            if (!error_of(r, code, sizeof(code), msg, sizeof(msg), r->request_id,
                          sizeof(r->request_id)))
                snprintf(code, sizeof(code), "%s", status_code_name(r->status));
            st = s3_map_http(r->status, code);
            retry = st == FLOE_UNAVAILABLE;
            snprintf(last, sizeof(last), "HTTP %ld %s%s%s (request id %s)", r->status, code,
                     msg[0] ? ": " : "", msg, r->request_id[0] ? r->request_id : "none");
        } else if (overflow) {
            st = FLOE_DATA_LOSS;
            snprintf(last, sizeof(last), "the server sent more bytes than asked for");
        } else {
            st = rc == CURLE_OUT_OF_MEMORY ? FLOE_RESOURCE_EXHAUSTED : FLOE_UNAVAILABLE;
            retry = retryable_curl(rc);
            snprintf(last, sizeof(last), "%s (curl error %d)", s3_curl.easy_strerror(rc), (int)rc);
        }
        if (!retry)
            break;
        int64_t exp = c->retry_base_ms << (r->attempts < 20 ? r->attempts - 1 : 19);
        int64_t ceiling = exp < c->retry_cap_ms ? exp : c->retry_cap_ms;
        int64_t pause = (int64_t)(jitter_random() % (uint64_t)(ceiling + 1));
        if (r->attempts >= c->max_attempts || now_ms() + pause >= deadline) {
            if (now_ms() + pause >= deadline)
                st = FLOE_DEADLINE_EXCEEDED;
            break;
        }
        sleep_ms(pause);
    }
    handle_put(fs, h);
    free(url);
    if (st != FLOE_OK)
        snprintf(errmsg, errlen, "s3: %s '%s'%s%.200s%s: %s; %d attempt%s in %lld ms", r->method,
                 r->uri, r->query ? " (" : "", r->query ? r->query : "", r->query ? ")" : "", last,
                 r->attempts, r->attempts == 1 ? "" : "s", (long long)(now_ms() - start));
    return st;
}

void s3_req_clear(s3_req *r) {
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
}

/* ---- Encoding -------------------------------------------------------------------------------- */

static int unreserved(unsigned char ch) {
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

char *s3_encode(const char *s, int keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *s3_query(int n, const char *const *kv) {
    size_t cap = 1, len = 0;
    char **enc = calloc((size_t)(2 * n) + 1, sizeof(char *));
    char *out = NULL;
    if (enc == NULL)
        return NULL;
    for (int i = 0; i < 2 * n; i++) {
        if ((enc[i] = s3_encode(kv[i] != NULL ? kv[i] : "", 0)) == NULL)
            goto out;
        cap += strlen(enc[i]) + 2;
    }
    if ((out = malloc(cap)) == NULL)
        goto out;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "&" : "", enc[2 * i],
                                enc[2 * i + 1]);
out:
    for (int i = 0; i < 2 * n; i++)
        free(enc[i]);
    free(enc);
    return out;
}
