/*
 * fs_s3-impl.h - private declarations shared by the fs_s3 plugin's sources.
 *
 * config.c reads the configuration (AWS_* variables, the shared credentials and config
 * files, FLOE_S3_* knobs) and splits "s3://bucket/key" URIs; request.c sends one S3
 * request through libcurl (signed with CURLOPT_AWS_SIGV4) with retries, maps failures
 * to floe_status and parses XML answers with libxml2; fs.c implements floe_fs_ops on
 * top and registers the "s3" scheme.
 */
#ifndef FLOE_FS_S3_IMPL_H
#define FLOE_FS_S3_IMPL_H

#include <floe/plugin.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#define S3_MIN_PART_SIZE ((size_t)5 << 20)
#define S3_MAX_PART_SIZE ((size_t)5 << 30)
#define S3_MAX_PARTS 10000
#define S3_MAX_KEY 1024

/* ---- Configuration (config.c) ------------------------------------------------------ */

typedef struct s3_config {
    char *access_key;        /* NULL: anonymous, unsigned requests */
    char *secret_key;
    char *session_token;     /* NULL: none */
    char *region;            /* never NULL ("us-east-1" by default) */
    char *endpoint;          /* "https://host[:port]" without a trailing '/'; NULL: AWS */
    char *sigv4;             /* "aws:amz:<region>:s3" for CURLOPT_AWS_SIGV4 */
    int path_style;          /* 1 forced, 0 virtual-hosted unless a bucket needs path style */
    size_t part_size;        /* multipart part size, [5 MiB, 5 GiB] */
    size_t readahead;        /* bytes fetched per ranged GET for small reads */
    size_t readahead_max;    /* the window grows to this while reads are sequential */
    int64_t deadline_ms;     /* all attempts of one request */
    int64_t connect_timeout_ms;
    long stall_seconds;      /* an attempt slower than 1 byte/s for this long fails */
    int max_attempts;
    int64_t retry_base_ms;   /* first backoff; doubles per attempt, full jitter */
    int64_t retry_cap_ms;
    int max_keys;            /* ListObjectsV2 page size, 1..1000 */
    int upload_threads;      /* parts of one file uploaded at once, 1..16 */
    int verbose;             /* FLOE_S3_VERBOSE: curl's trace on stderr */
} s3_config;

/* Reads the configuration from the environment and the shared files; on failure a
 * message through floe_fail() naming the variable or file.  Free with s3_config_free. */
floe_status s3_config_load(s3_config *cfg);
void s3_config_free(s3_config *cfg);

/* "s3://bucket/key" -> bucket and key (key may be empty: the bucket itself).  The
 * strings are malloc'd; FLOE_INVALID_ARGUMENT with a message for a malformed URI. */
floe_status s3_split_uri(const char *uri, char **bucket, char **key);

/* ---- libcurl, loaded on first use (request.c) ------------------------------------------ */

/* libcurl and its ~40 libraries (TLS, HTTP/2, IDN, ...) take 20-40 ms to map: loaded
 * with dlopen() at the first request instead of with the plugin, so every Floe process
 * that never touches s3:// starts as fast as without the plugin. */
typedef struct s3_curl_api {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode rc);
    CURLcode (*global_init)(long flags);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    curl_version_info_data *(*version_info)(CURLversion v);
} s3_curl_api;

/* Valid once a request has started (s3_request_msg loads it). */
extern s3_curl_api s3_curl;

/* ---- Requests (request.c) ------------------------------------------------------------ */

typedef struct s3_fs {
    floe_fs_ops ops;         /* the table registered for this context */
    s3_config cfg;
    pthread_mutex_t lock;    /* guards pool */
    CURL *pool[8];           /* idle easy handles, kept for their connections */
    int pool_len;
} s3_fs;

/* One request and its answer. */
typedef struct s3_req {
    /* in */
    const char *method;          /* "GET", "HEAD", "PUT", "POST", "DELETE" */
    const char *bucket;
    const char *key;             /* "" for the bucket */
    const char *query;           /* canonical (sorted, encoded) query without '?', or NULL */
    const char *uri;             /* for messages */
    const char *headers[6];      /* extra "Name: value" headers, NULL-terminated */
    const void *body;            /* PUT/POST body, or NULL */
    size_t body_len;
    void *sink;                  /* GET: 2xx body goes here (up to sink_cap bytes) */
    size_t sink_cap;
    int error_body_ok;           /* a 200 answer may carry <Error> (Complete, Copy) */
    /* out */
    long status;
    size_t sink_len;
    char *text;                  /* other bodies (XML), NUL-terminated, malloc'd */
    size_t text_len;
    uint64_t content_length;
    int has_length;
    char etag[256];
    char request_id[128];
    char last_modified[64];
    int attempts;
} s3_req;

/* Sends @r with retries (throttling, 5xx, connection errors, stalls) until it succeeds,
 * fails for good or the deadline passes.  FLOE_OK for a 2xx answer (and no <Error>
 * body); else the mapped status with a message naming method, URI, HTTP status, S3
 * error code, message and request id.  Free r->text with s3_req_clear() either way. */
floe_status s3_request(s3_fs *fs, s3_req *r);
/* The same without floe_fail(): the message goes to @errmsg (for worker threads, whose
 * error records the caller never sees). */
floe_status s3_request_msg(s3_fs *fs, s3_req *r, char *errmsg, size_t errlen);
void s3_req_clear(s3_req *r);

/* The status a final HTTP answer maps to. */
floe_status s3_map_http(long status, const char *code);

/* Appends "k=v" pairs URI-encoded to a query string: the caller passes them sorted by
 * key.  Returns a malloc'd string or NULL when out of memory. */
char *s3_query(int n, const char *const *kv);
/* Percent-encodes @s for a URL path (keeps '/' when @keep_slash).  malloc'd or NULL. */
char *s3_encode(const char *s, int keep_slash);

/* ---- XML answers (xml.c: no host calls, fuzzed by tests/fuzz/fuzz_s3_xml.c) ------------ */

/* Parses an XML answer (network access, DTD loading and entity substitution off; a
 * document with a DTD is refused).  NULL for malformed text. */
xmlDoc *s3_xml_parse(const char *text, size_t len);
/* The first child element of @parent named @name, or NULL. */
xmlNode *s3_xml_child(xmlNode *parent, const char *name);
/* The text of child @name of @parent into @buf (truncated), "" when absent. Returns 1
 * when present. */
int s3_xml_text(xmlNode *parent, const char *name, char *buf, size_t len);

/* ISO 8601 ("2024-01-02T03:04:05.000Z") or RFC 1123 time in ns since the epoch; 0 if
 * unparsable. */
int64_t s3_parse_time(const char *s);

/* 1 when @text is an S3 <Error>: its Code, Message and (when @rid is still empty)
 * RequestId into the buffers (truncated); else 0 with code and msg "". */
int s3_parse_error(const char *text, size_t len, char *code, size_t clen, char *msg, size_t mlen,
                   char *rid, size_t rlen);

typedef void (*s3_list_fn)(void *arg, const char *name, const floe_file_info *info);

/* Parses one ListObjectsV2 page.  Each key or common prefix that is a direct child of
 * @prefix goes to @fn (nullable) by its name relative to @prefix (the marker object
 * "prefix" itself only counts, setting *@marker); *@count grows by those entries.
 * *@more: the page is truncated; then @token (in: the token sent, "" for the first page;
 * out: the next) must be present, fit @token_len and differ from the one sent.
 * FLOE_DATA_LOSS with @msg for anything else (not a listing, an over-long key, ...). */
floe_status s3_parse_list_page(const char *text, size_t len, const char *prefix, s3_list_fn fn,
                               void *arg, int64_t *count, int *marker, int *more, char *token,
                               size_t token_len, char *msg, size_t mlen);

#endif /* FLOE_FS_S3_IMPL_H */
