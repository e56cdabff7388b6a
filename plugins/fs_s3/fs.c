/*
 * fs.c - floe_fs_ops for "s3://bucket/key" on S3 requests (request.c), and the plugin's
 * entry point.
 *
 * Reading: open_read HEADs the object (size, ETag); pread serves from a read-ahead
 * window filled by ranged GETs of FLOE_S3_READAHEAD bytes, doubling up to
 * FLOE_S3_READAHEAD_MAX while reads are sequential, with the next window fetched by a
 * thread meanwhile; a large request is fetched straight into the caller's buffer; every GET carries If-Match with the ETag, so an
 * object replaced while open fails with FLOE_ABORTED instead of mixing versions.
 * Writing: bytes are buffered; a file that stays under one part is sent by one PUT at
 * close, a larger one as a multipart upload (parts of FLOE_S3_PART_SIZE sent as the
 * buffer fills, CompleteMultipartUpload at close).  Either way the object appears at
 * once, whole, on commit; a failure or close without commit aborts the upload, so no
 * partial object is ever visible.  Directories are key prefixes: list uses
 * ListObjectsV2 with delimiter '/' and continuation tokens, mkdir writes a "dir/"
 * marker object, stat falls back to the prefix, rename is copy plus delete (not atomic:
 * caps has no FLOE_FS_CAP_ATOMIC_RENAME, and no APPEND).
 *
 * Sections: helpers, reading, writing, metadata and directories, the plugin.
 */
#include "fs_s3-impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

/* ---- Helpers ------------------------------------------------------------------------------- */

static floe_status oom(const char *uri) {
    return floe_fail(FLOE_RESOURCE_EXHAUSTED, "s3: '%s': out of memory", uri);
}

static void req_init(s3_req *r, const char *method, const char *bucket, const char *key,
                     const char *uri) {
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->bucket = bucket;
    r->key = key;
    r->uri = uri;
}

/* HEAD of an object: 1 in *@found with its size and mtime, 0 when it does not exist. */
static floe_status head_object(s3_fs *fs, const char *bucket, const char *key, const char *uri,
                               int *found, floe_file_info *info, char *etag, size_t etag_len) {
    s3_req r;
    req_init(&r, "HEAD", bucket, key, uri);
    floe_status st = s3_request(fs, &r);
    *found = 0;
    if (st == FLOE_OK) {
        *found = 1;
        if (info != NULL) {
            info->size = r.has_length ? r.content_length : 0;
            info->mtime_ns = s3_parse_time(r.last_modified);
            info->is_dir = 0;
        }
        if (etag != NULL)
            snprintf(etag, etag_len, "%s", r.etag);
    } else if (st == FLOE_NOT_FOUND && r.status == 404) {
        st = FLOE_OK;        /* decided by the caller (a missing bucket shows in the listing) */
    }
    s3_req_clear(&r);
    return st;
}

/* ---- Reading ------------------------------------------------------------------------------ */

typedef struct s3_rfile {
    s3_fs *fs;
    char *bucket, *key, *uri;
    uint64_t size;
    char if_match[300];
    size_t win;                  /* read-ahead window: grows while reads are sequential */
    uint8_t *ra;                 /* the window's bytes [ra_off, ra_off + ra_len) */
    size_t ra_cap, ra_len;
    uint64_t ra_off;
    /* The next window, fetched by a thread while the caller reads this one. */
    uint8_t *pf;
    size_t pf_cap, pf_len;
    uint64_t pf_off;
    pthread_t pf_tid;
    int pf_running;
    floe_status pf_st;
} s3_rfile;

static void prefetch_join(s3_rfile *f) {
    if (f->pf_running)
        pthread_join(f->pf_tid, NULL);
    f->pf_running = 0;
}

static void close_read(void *file) {
    s3_rfile *f = file;
    if (f == NULL)
        return;
    prefetch_join(f);
    free(f->bucket);
    free(f->key);
    free(f->uri);
    free(f->ra);
    free(f->pf);
    free(f);
}

static floe_status open_read(void *state, const char *uri, void **out) {
    s3_fs *fs = state;
    floe_file_info info;
    char etag[256];
    int found;
    floe_status st;

    *out = NULL;
    s3_rfile *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return oom(uri);
    f->fs = fs;
    if ((st = s3_split_uri(uri, &f->bucket, &f->key)) != FLOE_OK)
        goto fail;
    if ((f->uri = strdup(uri)) == NULL) {
        st = oom(uri);
        goto fail;
    }
    if (f->key[0] == '\0' || f->key[strlen(f->key) - 1] == '/') {
        st = floe_fail(FLOE_FAILED_PRECONDITION, "s3: open '%s': is a directory (a prefix)", uri);
        goto fail;
    }
    if ((st = head_object(fs, f->bucket, f->key, uri, &found, &info, etag, sizeof(etag))) != FLOE_OK)
        goto fail;
    if (!found) {
        st = floe_fail(FLOE_NOT_FOUND, "s3: open '%s': no such object (HTTP 404 on HEAD)", uri);
        goto fail;
    }
    f->size = info.size;
    if (etag[0] != '\0')
        snprintf(f->if_match, sizeof(f->if_match), "If-Match: %s", etag);
    f->win = fs->cfg.readahead;
    *out = f;
    return FLOE_OK;
fail:
    close_read(f);
    return st;
}

/* GETs bytes [@off, @off + @n) into @dst; anything but exactly @n bytes is an error,
 * with its message in @msg (no floe_fail: prefetch threads call this too). */
static floe_status get_range(s3_rfile *f, uint64_t off, void *dst, size_t n, char *msg,
                             size_t mlen) {
    char range[80];
    s3_req r;

    snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + n - 1);
    req_init(&r, "GET", f->bucket, f->key, f->uri);
    r.headers[0] = range;
    r.headers[1] = f->if_match[0] ? f->if_match : NULL;
    r.sink = dst;
    r.sink_cap = n;
    floe_status st = s3_request_msg(f->fs, &r, msg, mlen);
    if (st == FLOE_FAILED_PRECONDITION && r.status == 412) {
        st = FLOE_ABORTED;
        snprintf(msg, mlen, "s3: read '%s': the object was replaced while open (If-Match "
                 "failed; request id %s)", f->uri, r.request_id);
    } else if (st == FLOE_OK && r.sink_len != n) {
        st = FLOE_DATA_LOSS;
        snprintf(msg, mlen, "s3: read '%s': asked bytes %" PRIu64 "-%" PRIu64 ", got %zu "
                 "(HTTP %ld)", f->uri, off, off + n - 1, r.sink_len, r.status);
    }
    s3_req_clear(&r);
    return st;
}

static void *prefetch_worker(void *arg) {
    s3_rfile *f = arg;
    char msg[1600];
    /* A failure is not reported from here: the caller's own GET retries and reports it. */
    f->pf_st = get_range(f, f->pf_off, f->pf, f->pf_len, msg, sizeof(msg));
    return NULL;
}

/* Starts fetching the window after the current one, when there is one. */
static void prefetch_start(s3_rfile *f) {
    uint64_t at = f->ra_off + f->ra_len;
    if (f->pf_running || at >= f->size || f->win == 0)
        return;
    size_t n = f->size - at < f->win ? (size_t)(f->size - at) : f->win;
    if (f->pf_cap < n) {
        uint8_t *b = realloc(f->pf, n);
        if (b == NULL)
            return;
        f->pf = b;
        f->pf_cap = n;
    }
    f->pf_off = at;
    f->pf_len = n;
    f->pf_st = FLOE_UNKNOWN;
    f->pf_running = pthread_create(&f->pf_tid, NULL, prefetch_worker, f) == 0;
}

/* Makes the window hold @at: the prefetched window if it has it, else a GET.  A miss
 * where the last window ended is sequential reading: the window doubles (up to
 * FLOE_S3_READAHEAD_MAX) and the next one is prefetched. */
static floe_status fill_window(s3_rfile *f, uint64_t at) {
    int sequential = f->ra_len > 0 && at == f->ra_off + f->ra_len;
    size_t max = f->fs->cfg.readahead_max;
    char msg[1600];

    if (sequential && f->win < max)
        f->win = f->win * 2 < max ? f->win * 2 : max;
    if (f->pf_running) {
        prefetch_join(f);
        if (f->pf_st == FLOE_OK && at >= f->pf_off && at < f->pf_off + f->pf_len) {
            uint8_t *b = f->ra;
            size_t c = f->ra_cap;
            f->ra = f->pf;
            f->ra_cap = f->pf_cap;
            f->ra_off = f->pf_off;
            f->ra_len = f->pf_len;
            f->pf = b;
            f->pf_cap = c;
            goto next;
        }
    }
    size_t n = f->size - at < f->win ? (size_t)(f->size - at) : f->win;
    if (f->ra_cap < n) {
        uint8_t *b = realloc(f->ra, n);
        if (b == NULL)
            return oom(f->uri);
        f->ra = b;
        f->ra_cap = n;
    }
    f->ra_len = 0;
    floe_status st = get_range(f, at, f->ra, n, msg, sizeof(msg));
    if (st != FLOE_OK)
        return floe_fail(st, "%s", msg);
    f->ra_off = at;
    f->ra_len = n;
next:
    if (sequential)
        prefetch_start(f);
    return FLOE_OK;
}

static floe_status s3_pread(void *file, uint64_t offset, void *buf, size_t n, size_t *nread) {
    s3_rfile *f = file;
    size_t done = 0;
    char msg[1600];
    floe_status st;

    *nread = 0;
    if (offset >= f->size)
        return FLOE_OK;
    if (n > f->size - offset)
        n = (size_t)(f->size - offset);
    while (done < n) {
        uint64_t at = offset + done;
        size_t want = n - done;
        if (f->ra_len > 0 && at >= f->ra_off && at < f->ra_off + f->ra_len) {
            size_t k = (size_t)(f->ra_off + f->ra_len - at);
            k = k < want ? k : want;
            memcpy((char *)buf + done, f->ra + (at - f->ra_off), k);
            done += k;
            continue;
        }
        int prefetched = f->pf_running && at >= f->pf_off && at < f->pf_off + f->pf_len;
        if (want >= f->win && !prefetched) {     /* large: straight into the caller's buffer */
            if ((st = get_range(f, at, (char *)buf + done, want, msg, sizeof(msg))) != FLOE_OK)
                return floe_fail(st, "%s", msg);
            done += want;
            continue;
        }
        if ((st = fill_window(f, at)) != FLOE_OK)
            return st;
    }
    *nread = done;
    return FLOE_OK;
}

/* ---- Writing ------------------------------------------------------------------------------ */

#define MAX_UPLOAD_THREADS 16

/* One part being uploaded by a worker thread (or by the caller when no thread starts). */
typedef struct part_job {
    struct s3_wfile *f;
    int number;                  /* 1-based part number */
    uint8_t *buf;                /* owned by the job while it runs */
    size_t len;
    pthread_t tid;
    int threaded;
    floe_status st;
    char etag[256];
    char msg[1600];
} part_job;

typedef struct s3_wfile {
    s3_fs *fs;
    char *bucket, *key, *uri;
    uint8_t *buf;                /* the part being filled */
    size_t len, cap;
    uint8_t *spare;              /* a finished part's buffer, reused for the next */
    char *upload_id;             /* multipart upload in progress, or NULL */
    char **etags;                /* per part number - 1 */
    int etags_cap;
    int parts;                   /* parts handed out so far */
    part_job jobs[MAX_UPLOAD_THREADS];   /* a ring of parts in flight */
    int job_first, inflight;
    floe_status failed;          /* sticky: an earlier part or write failed */
    char fail_msg[1600];
} s3_wfile;

static floe_status oom_msg(s3_wfile *f, floe_status *st) {
    snprintf(f->fail_msg, sizeof(f->fail_msg), "s3: '%s': out of memory", f->uri);
    return *st = FLOE_RESOURCE_EXHAUSTED;
}

static void *part_worker(void *arg) {
    part_job *j = arg;
    s3_wfile *f = j->f;
    char num[16];
    s3_req r;

    snprintf(num, sizeof(num), "%d", j->number);
    const char *kv[] = {"partNumber", num, "uploadId", f->upload_id};
    char *q = s3_query(2, kv);
    if (q == NULL) {
        j->st = FLOE_RESOURCE_EXHAUSTED;
        snprintf(j->msg, sizeof(j->msg), "s3: UploadPart %d of '%s': out of memory", j->number,
                 f->uri);
        return NULL;
    }
    req_init(&r, "PUT", f->bucket, f->key, f->uri);
    r.query = q;
    r.body = j->buf;
    r.body_len = j->len;
    j->st = s3_request_msg(f->fs, &r, j->msg, sizeof(j->msg));
    if (j->st == FLOE_OK && r.etag[0] == '\0') {
        j->st = FLOE_DATA_LOSS;
        snprintf(j->msg, sizeof(j->msg), "s3: UploadPart %d of '%s': no ETag in the answer "
                 "(request id %s)", j->number, f->uri, r.request_id);
    }
    snprintf(j->etag, sizeof(j->etag), "%s", r.etag);
    s3_req_clear(&r);
    free(q);
    return NULL;
}

/* Waits for the oldest part in flight and records its ETag or failure. */
static void join_oldest(s3_wfile *f) {
    part_job *j = &f->jobs[f->job_first];
    if (j->threaded)
        pthread_join(j->tid, NULL);
    if (j->st == FLOE_OK) {
        f->etags[j->number - 1] = strdup(j->etag);
        if (f->etags[j->number - 1] == NULL && f->failed == FLOE_OK)
            oom_msg(f, &f->failed);
    } else if (f->failed == FLOE_OK) {
        f->failed = j->st;
        snprintf(f->fail_msg, sizeof(f->fail_msg), "%s", j->msg);
    }
    if (f->spare == NULL)
        f->spare = j->buf;
    else
        free(j->buf);
    j->buf = NULL;
    f->job_first = (f->job_first + 1) % MAX_UPLOAD_THREADS;
    f->inflight--;
}

static void join_all(s3_wfile *f) {
    while (f->inflight > 0)
        join_oldest(f);
}

static void wfile_free(s3_wfile *f) {
    join_all(f);
    for (int i = 0; i < f->parts && f->etags != NULL; i++)
        free(f->etags[i]);
    free(f->etags);
    free(f->upload_id);
    free(f->buf);
    free(f->spare);
    free(f->bucket);
    free(f->key);
    free(f->uri);
    free(f);
}

static floe_status open_write(void *state, const char *uri, int append, void **out) {
    s3_fs *fs = state;
    floe_status st;

    *out = NULL;
    if (append)
        return floe_fail(FLOE_UNIMPLEMENTED, "s3: '%s': objects cannot be appended to", uri);
    s3_wfile *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return oom(uri);
    f->fs = fs;
    if ((st = s3_split_uri(uri, &f->bucket, &f->key)) != FLOE_OK)
        goto fail;
    if ((f->uri = strdup(uri)) == NULL) {
        st = oom(uri);
        goto fail;
    }
    if (f->key[0] == '\0' || f->key[strlen(f->key) - 1] == '/') {
        st = floe_fail(FLOE_INVALID_ARGUMENT, "s3: write '%s': a key ending in '/' names a "
                       "directory", uri);
        goto fail;
    }
    *out = f;
    return FLOE_OK;
fail:
    wfile_free(f);
    return st;
}

/* Best effort: parts left by a failed abort are invisible (never an object) and removed
 * by the bucket's AbortIncompleteMultipartUpload lifecycle rule. */
static void abort_upload(s3_wfile *f) {
    char msg[1600];
    const char *kv[] = {"uploadId", f->upload_id};
    join_all(f);
    if (f->upload_id == NULL)
        return;
    char *q = s3_query(1, kv);
    if (q != NULL) {
        s3_req r;
        req_init(&r, "DELETE", f->bucket, f->key, f->uri);
        r.query = q;
        (void)s3_request_msg(f->fs, &r, msg, sizeof(msg));
        s3_req_clear(&r);
    }
    free(q);
    free(f->upload_id);
    f->upload_id = NULL;
}

static floe_status create_upload(s3_wfile *f) {
    s3_req r;
    char id[1024];
    req_init(&r, "POST", f->bucket, f->key, f->uri);
    r.query = "uploads=";
    r.headers[0] = "Content-Type: application/octet-stream";
    floe_status st = s3_request_msg(f->fs, &r, f->fail_msg, sizeof(f->fail_msg));
    if (st == FLOE_OK) {
        xmlDoc *doc = s3_xml_parse(r.text, r.text_len);
        xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
        if (root == NULL || !s3_xml_text(root, "UploadId", id, sizeof(id)) || id[0] == '\0') {
            st = FLOE_DATA_LOSS;
            snprintf(f->fail_msg, sizeof(f->fail_msg), "s3: CreateMultipartUpload '%s': no "
                     "UploadId in the answer (request id %s)", f->uri, r.request_id);
        } else if ((f->upload_id = strdup(id)) == NULL) {
            oom_msg(f, &st);
        }
        xmlFreeDoc(doc);
    }
    s3_req_clear(&r);
    return st;
}

/* Hands the filled buffer to a worker as the next part (starting the multipart upload
 * first), waiting for the oldest part when FLOE_S3_UPLOAD_THREADS are in flight.  The
 * status is the first failure so far (message in f->fail_msg). */
static floe_status send_part(s3_wfile *f) {
    floe_status st;

    if (f->upload_id == NULL && (st = create_upload(f)) != FLOE_OK)
        return st;
    if (f->parts >= S3_MAX_PARTS) {
        snprintf(f->fail_msg, sizeof(f->fail_msg), "s3: write '%s': more than %d parts of %zu "
                 "bytes; raise FLOE_S3_PART_SIZE", f->uri, S3_MAX_PARTS, f->fs->cfg.part_size);
        return FLOE_RESOURCE_EXHAUSTED;
    }
    if (f->parts >= f->etags_cap) {
        int cap = f->etags_cap ? f->etags_cap * 2 : 64;
        char **e = realloc(f->etags, (size_t)cap * sizeof(char *));
        if (e == NULL)
            return oom_msg(f, &st);
        memset(e + f->etags_cap, 0, (size_t)(cap - f->etags_cap) * sizeof(char *));
        f->etags = e;
        f->etags_cap = cap;
    }
    int limit = f->fs->cfg.upload_threads;
    while (f->inflight >= limit)
        join_oldest(f);
    if (f->failed != FLOE_OK)
        return f->failed;
    part_job *j = &f->jobs[(f->job_first + f->inflight) % MAX_UPLOAD_THREADS];
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->number = ++f->parts;
    j->buf = f->buf;
    j->len = f->len;
    f->buf = f->spare;
    f->cap = f->buf != NULL ? f->fs->cfg.part_size : 0;
    f->spare = NULL;
    f->len = 0;
    f->inflight++;
    /* With FLOE_S3_UPLOAD_THREADS=1, or when no thread can start, the caller uploads. */
    j->threaded = limit > 1 && pthread_create(&j->tid, NULL, part_worker, j) == 0;
    if (!j->threaded)
        part_worker(j);
    if (!j->threaded)
        join_oldest(f);
    return f->failed;
}

static floe_status s3_write(void *file, const void *data, size_t n) {
    s3_wfile *f = file;
    size_t part = f->fs->cfg.part_size;
    floe_status st = FLOE_OK;

    if (f->failed != FLOE_OK)
        return floe_fail(FLOE_FAILED_PRECONDITION, "s3: write '%s': an earlier write failed "
                         "and the upload was aborted", f->uri);
    while (n > 0) {
        if (f->cap < part && f->len + n > f->cap) {
            size_t cap = f->cap ? f->cap : 65536;
            while (cap < f->len + n && cap < part)
                cap *= 2;
            cap = cap < part ? cap : part;
            uint8_t *b = realloc(f->buf, cap);
            if (b == NULL) {
                oom_msg(f, &st);
                goto fail;
            }
            f->buf = b;
            f->cap = cap;
        }
        size_t k = f->cap - f->len < n ? f->cap - f->len : n;
        memcpy(f->buf + f->len, data, k);
        f->len += k;
        data = (const char *)data + k;
        n -= k;
        if (f->len == part && n > 0 && (st = send_part(f)) != FLOE_OK)
            goto fail;
    }
    return FLOE_OK;
fail:
    if (f->failed == FLOE_OK)
        f->failed = st;
    abort_upload(f);
    return floe_fail(f->failed, "%s", f->fail_msg);
}

static floe_status complete_upload(s3_wfile *f) {
    size_t cap = 128 + (size_t)f->parts * 340, len = 0;
    char *xml = malloc(cap);
    const char *kv[] = {"uploadId", f->upload_id};
    char *q = s3_query(1, kv);
    floe_status st;
    s3_req r;

    if (xml == NULL || q == NULL) {
        free(xml);
        free(q);
        return oom_msg(f, &st);
    }
    len += (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
    for (int i = 0; i < f->parts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%d</PartNumber><ETag>%.250s</ETag></Part>",
                                i + 1, f->etags[i]);
    len += (size_t)snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    req_init(&r, "POST", f->bucket, f->key, f->uri);
    r.query = q;
    r.body = xml;
    r.body_len = len;
    r.headers[0] = "Content-Type: application/xml";
    r.error_body_ok = 1;
    st = s3_request_msg(f->fs, &r, f->fail_msg, sizeof(f->fail_msg));
    s3_req_clear(&r);
    free(q);
    free(xml);
    return st;
}

static floe_status close_write(void *file, int commit) {
    s3_wfile *f = file;
    floe_status st = FLOE_OK;

    if (f->failed != FLOE_OK) {
        abort_upload(f);
        if (commit)
            st = floe_fail(FLOE_FAILED_PRECONDITION, "s3: close '%s': an earlier write failed; "
                           "nothing was written", f->uri);
    } else if (!commit) {
        abort_upload(f);
    } else if (f->upload_id == NULL) {
        s3_req r;
        req_init(&r, "PUT", f->bucket, f->key, f->uri);
        r.body = f->buf != NULL ? (const void *)f->buf : (const void *)"";
        r.body_len = f->len;
        st = s3_request(f->fs, &r);
        s3_req_clear(&r);
    } else {
        /* The last part may be short (S3 allows it) or absent when the data ended on a
         * part boundary (then the parts sent already are the object). */
        if (f->len > 0)
            st = send_part(f);
        join_all(f);
        if (st == FLOE_OK)
            st = f->failed;
        if (st == FLOE_OK)
            st = complete_upload(f);
        if (st != FLOE_OK) {
            abort_upload(f);
            st = floe_fail(st, "%s", f->fail_msg);
        }
    }
    wfile_free(f);
    return st;
}

/* ---- Metadata and directories --------------------------------------------------------------- */

typedef void (*list_fn)(void *arg, const char *name, const floe_file_info *info);

/* Lists @prefix with delimiter '/', calling @fn with names relative to @prefix (the
 * marker object "prefix" itself skipped); *@count gets every key and common prefix seen,
 * the marker included.  Stops after @limit entries when > 0. */
static floe_status list_prefix(s3_fs *fs, const char *bucket, const char *prefix, const char *uri,
                               int limit, list_fn fn, void *arg, int64_t *count, int *marker) {
    char token[2048] = "", keys[16], msg[256];
    floe_status st = FLOE_OK;

    *count = 0;
    if (marker != NULL)
        *marker = 0;
    snprintf(keys, sizeof(keys), "%d", limit > 0 && limit < fs->cfg.max_keys ? limit
                                                                            : fs->cfg.max_keys);
    for (int page = 1; st == FLOE_OK; page++) {
        const char *kv[] = {"continuation-token", token, "delimiter", "/", "list-type", "2",
                            "max-keys", keys, "prefix", prefix};
        char *q = token[0] ? s3_query(5, kv) : s3_query(4, kv + 2);
        int more = 0;
        s3_req r;
        if (q == NULL)
            return oom(uri);
        req_init(&r, "GET", bucket, "", uri);
        r.query = q;
        st = s3_request(fs, &r);
        free(q);
        if (st == FLOE_OK) {
            st = s3_parse_list_page(r.text, r.text_len, prefix, fn, arg, count, marker, &more,
                                    token, sizeof(token), msg, sizeof(msg));
            if (st != FLOE_OK)
                st = floe_fail(st, "s3: list '%s': page %d: %s (request id %s)", uri, page, msg,
                               r.request_id[0] ? r.request_id : "none");
        }
        s3_req_clear(&r);
        if (st != FLOE_OK || !more || (limit > 0 && *count >= limit))
            break;
    }
    return st;
}

/* "dir" -> "dir/"; "" stays "" (the bucket).  malloc'd. */
static char *dir_prefix(const char *key) {
    size_t n = strlen(key);
    char *p = malloc(n + 2);
    if (p != NULL) {
        memcpy(p, key, n);
        if (n > 0 && key[n - 1] != '/')
            p[n++] = '/';
        p[n] = '\0';
    }
    return p;
}

static floe_status s3_stat(void *state, const char *uri, floe_file_info *info) {
    s3_fs *fs = state;
    char *bucket, *key, *prefix = NULL;
    int found = 0;
    int64_t count = 0;
    floe_status st;

    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    if ((st = s3_split_uri(uri, &bucket, &key)) != FLOE_OK)
        return st;
    size_t klen = strlen(key);
    if (klen > 0 && key[klen - 1] != '/' &&
        (st = head_object(fs, bucket, key, uri, &found, info, NULL, 0)) != FLOE_OK)
        goto out;
    if (found)
        goto out;
    if ((prefix = dir_prefix(key)) == NULL) {
        st = oom(uri);
        goto out;
    }
    /* A directory: the bucket, or a prefix with at least one key under it. */
    st = list_prefix(fs, bucket, prefix, uri, 1, NULL, NULL, &count, NULL);
    if (st == FLOE_OK && count == 0 && klen > 0)
        st = floe_fail(FLOE_NOT_FOUND, "s3: stat '%s': no such object or prefix", uri);
    if (st == FLOE_OK)
        info->is_dir = 1;
out:
    free(prefix);
    free(bucket);
    free(key);
    return st;
}

static floe_status s3_list(void *state, const char *uri, list_fn fn, void *arg) {
    s3_fs *fs = state;
    char *bucket, *key, *prefix = NULL;
    int64_t count = 0;
    floe_status st;

    if ((st = s3_split_uri(uri, &bucket, &key)) != FLOE_OK)
        return st;
    if ((prefix = dir_prefix(key)) == NULL)
        st = oom(uri);
    else
        st = list_prefix(fs, bucket, prefix, uri, 0, fn, arg, &count, NULL);
    if (st == FLOE_OK && count == 0 && key[0] != '\0')
        st = floe_fail(FLOE_NOT_FOUND, "s3: list '%s': no such prefix (no key starts with '%s')",
                       uri, prefix);
    free(prefix);
    free(bucket);
    free(key);
    return st;
}

static floe_status delete_key(s3_fs *fs, const char *bucket, const char *key, const char *uri) {
    s3_req r;
    req_init(&r, "DELETE", bucket, key, uri);
    floe_status st = s3_request(fs, &r);
    s3_req_clear(&r);
    return st;
}

static floe_status s3_remove(void *state, const char *uri) {
    s3_fs *fs = state;
    char *bucket, *key, *prefix = NULL;
    int found = 0;
    int64_t count = 0;
    floe_status st;

    if ((st = s3_split_uri(uri, &bucket, &key)) != FLOE_OK)
        return st;
    if (key[0] == '\0') {
        st = floe_fail(FLOE_FAILED_PRECONDITION, "s3: remove '%s': will not delete a bucket", uri);
        goto out;
    }
    /* DELETE answers 204 for a missing key too: HEAD first to report NOT_FOUND. */
    if (key[strlen(key) - 1] != '/' &&
        (st = head_object(fs, bucket, key, uri, &found, NULL, NULL, 0)) != FLOE_OK)
        goto out;
    if (found) {
        st = delete_key(fs, bucket, key, uri);
        goto out;
    }
    /* A directory: only an empty one (its marker alone) is removed, as rmdir does. */
    if ((prefix = dir_prefix(key)) == NULL) {
        st = oom(uri);
        goto out;
    }
    int marker = 0;
    if ((st = list_prefix(fs, bucket, prefix, uri, 2, NULL, NULL, &count, &marker)) != FLOE_OK)
        goto out;
    if (count == 0)
        st = floe_fail(FLOE_NOT_FOUND, "s3: remove '%s': no such object or prefix", uri);
    else if (count > 1 || !marker)
        st = floe_fail(FLOE_FAILED_PRECONDITION, "s3: remove '%s': directory not empty", uri);
    else
        st = delete_key(fs, bucket, prefix, uri);
out:
    free(prefix);
    free(bucket);
    free(key);
    return st;
}

static floe_status s3_mkdir(void *state, const char *uri) {
    s3_fs *fs = state;
    char *bucket, *key, *prefix = NULL;
    int found = 0;
    int64_t count = 0;
    floe_status st;

    if ((st = s3_split_uri(uri, &bucket, &key)) != FLOE_OK)
        return st;
    if ((prefix = dir_prefix(key)) == NULL) {
        st = oom(uri);
        goto out;
    }
    size_t klen = strlen(key);
    if (klen > 0 && key[klen - 1] != '/' &&
        (st = head_object(fs, bucket, key, uri, &found, NULL, NULL, 0)) != FLOE_OK)
        goto out;
    if (found) {
        st = floe_fail(FLOE_ALREADY_EXISTS, "s3: mkdir '%s': exists and is an object", uri);
        goto out;
    }
    /* The bucket must exist (listing fails with NoSuchBucket otherwise); a prefix that has
     * keys already is a directory; else a "dir/" marker makes the empty one visible. */
    if ((st = list_prefix(fs, bucket, prefix, uri, 1, NULL, NULL, &count, NULL)) != FLOE_OK ||
        count > 0 || klen == 0)
        goto out;
    s3_req r;
    req_init(&r, "PUT", bucket, prefix, uri);
    r.body = "";
    st = s3_request(fs, &r);
    s3_req_clear(&r);
out:
    free(prefix);
    free(bucket);
    free(key);
    return st;
}

static floe_status s3_rename(void *state, const char *from, const char *to) {
    s3_fs *fs = state;
    char *fb = NULL, *fk = NULL, *tb = NULL, *tk = NULL, *src = NULL, *hdr = NULL;
    floe_file_info info;
    int found = 0;
    floe_status st;

    if ((st = s3_split_uri(from, &fb, &fk)) != FLOE_OK || (st = s3_split_uri(to, &tb, &tk)) != FLOE_OK)
        goto out;
    if (fk[0] == '\0' || tk[0] == '\0' || fk[strlen(fk) - 1] == '/' || tk[strlen(tk) - 1] == '/') {
        st = floe_fail(FLOE_UNIMPLEMENTED, "s3: rename '%s' to '%s': only objects can be renamed, "
                       "not buckets or prefixes", from, to);
        goto out;
    }
    if ((st = head_object(fs, fb, fk, from, &found, &info, NULL, 0)) != FLOE_OK)
        goto out;
    if (!found) {
        st = floe_fail(FLOE_NOT_FOUND, "s3: rename '%s': no such object", from);
        goto out;
    }
    if (info.size > (uint64_t)S3_MAX_PART_SIZE) {
        st = floe_fail(FLOE_UNIMPLEMENTED, "s3: rename '%s': objects over 5 GiB need a multipart "
                       "copy, which this plugin does not do", from);
        goto out;
    }
    if (strcmp(fb, tb) == 0 && strcmp(fk, tk) == 0)
        goto out;
    src = s3_encode(fk, 1);
    size_t n = (src ? strlen(src) : 0) + strlen(fb) + 32;
    if (src == NULL || (hdr = malloc(n)) == NULL) {
        st = oom(from);
        goto out;
    }
    snprintf(hdr, n, "x-amz-copy-source: /%s/%s", fb, src);
    s3_req r;
    req_init(&r, "PUT", tb, tk, to);
    r.headers[0] = hdr;
    r.body = "";
    r.error_body_ok = 1;
    st = s3_request(fs, &r);
    s3_req_clear(&r);
    if (st == FLOE_OK)
        st = delete_key(fs, fb, fk, from);
out:
    free(hdr);
    free(src);
    free(fb);
    free(fk);
    free(tb);
    free(tk);
    return st;
}

/* ---- The plugin ------------------------------------------------------------------------------ */

static void s3_destroy(void *state) {
    s3_fs *fs = state;
    if (fs == NULL)
        return;
    for (int i = 0; i < fs->pool_len; i++)
        s3_curl.easy_cleanup(fs->pool[i]);
    pthread_mutex_destroy(&fs->lock);
    s3_config_free(&fs->cfg);
    free(fs);
}

static floe_status s3_init(floe_plugin *self, void **user) {
    static const floe_fs_ops templ = {
        .abi_major = FLOE_PLUGIN_ABI_MAJOR,
        .abi_minor = FLOE_PLUGIN_ABI_MINOR,
        .struct_size = sizeof(floe_fs_ops),
        .scheme = "s3",
        .caps = 0,   /* rename is copy + delete; no append */
        .open_read = open_read,
        .pread = s3_pread,
        .close_read = close_read,
        .open_write = open_write,
        .write = s3_write,
        .close_write = close_write,
        .stat = s3_stat,
        .list = s3_list,
        .remove = s3_remove,
        .mkdir = s3_mkdir,
        .rename = s3_rename,
        .destroy = s3_destroy,
    };
    floe_status st;

    *user = NULL;
    s3_fs *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "s3: out of memory");
    if ((st = s3_config_load(&fs->cfg)) != FLOE_OK) {
        floe_set_note(self, "bad configuration (see the load error)");
        free(fs);
        return st;
    }
    pthread_mutex_init(&fs->lock, NULL);
    /* The table lives as long as the filesystem (freed by destroy), not on the stack. */
    fs->ops = templ;
    fs->ops.state = fs;
    if ((st = floe_register_filesystem(self, &fs->ops)) != FLOE_OK) {
        s3_destroy(fs);
        return st;
    }
    floe_set_note(self, "%s, region %s, %s credentials%s; libcurl loaded on first use",
                  fs->cfg.endpoint ? fs->cfg.endpoint : "AWS endpoint", fs->cfg.region, fs->cfg.access_key ? "with" : "no (anonymous)",
                  fs->cfg.path_style ? ", path-style" : "");
    return FLOE_OK;
}

FLOE_PLUGIN_DEFINE_FULL(fs_s3, "0.1.0", "The Floe developers", "Apache-2.0",
                        "s3:// filesystem on libcurl (SigV4) and libxml2", NULL, NULL, s3_init, NULL)
