/*
 * fs.c - the public file API (floe/fs.h), dispatching on the URI's scheme.
 *
 * Each call splits the scheme off the URI (floe__uri_scheme: "s3://b/k" -> "s3", a
 * plain path -> "file"), asks the registry for the filesystem serving it and calls its
 * floe_fs_ops member; the built-in local filesystem serves "file".  With @ctx NULL
 * only local paths can be served (handy for tools and tests without a context).
 * Whole-file helpers sit on top: floe_fs_read_all (with a size cap) and
 * floe_fs_write_all (atomic through the filesystem's commit).
 *
 * Sections: schemes, files, whole files, metadata and directories.
 */
#include "core-impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct floe_file {
    const floe_fs_ops *ops;
    void *handle;
    bool writing;
};

/* ---- Schemes -------------------------------------------------------------------------- */

void floe__uri_scheme(const char *uri, char *scheme, size_t len) {
    const char *sep;
    size_t n;

    if (scheme == NULL || len == 0)
        return;
    scheme[0] = '\0';
    sep = uri != NULL ? strstr(uri, "://") : NULL;
    n = sep != NULL ? (size_t)(sep - uri) : 0;
    /* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    bool ok = n > 0 && isalpha((unsigned char)uri[0]);
    for (size_t i = 1; ok && i < n; i++)
        ok = isalnum((unsigned char)uri[i]) || uri[i] == '+' || uri[i] == '-' || uri[i] == '.';
    if (!ok || n >= len) {
        snprintf(scheme, len, "file");
        return;
    }
    for (size_t i = 0; i < n; i++)
        scheme[i] = (char)tolower((unsigned char)uri[i]);
    scheme[n] = '\0';
}

/* The filesystem serving @uri. */
static floe_status resolve(floe_context *ctx, const char *uri, const floe_fs_ops **ops) {
    char scheme[64];

    *ops = NULL;
    if (uri == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "URI is NULL");
    floe__uri_scheme(uri, scheme, sizeof(scheme));
    if (ctx == NULL) {
        if (strcmp(scheme, "file") == 0) {
            *ops = &floe__local_fs_ops;
            return FLOE_OK;
        }
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "'%s': a context is needed for scheme '%s' (it is NULL)", uri, scheme);
    }
    const floe__filesystem *fs = floe__registry_find_fs(ctx, scheme);
    if (fs == NULL)
        return floe__fail(FLOE_NOT_FOUND, "'%s': no filesystem for scheme '%s' (plugin not loaded?)",
                          uri, scheme);
    *ops = &fs->ops;
    return FLOE_OK;
}

static floe_status missing_op(const floe_fs_ops *ops, const char *what) {
    return floe__fail(FLOE_UNIMPLEMENTED, "filesystem '%s' has no %s", ops->scheme, what);
}

floe_status floe_fs_caps(floe_context *ctx, const char *uri, uint32_t *caps) {
    const floe_fs_ops *ops;
    if (caps != NULL)
        *caps = 0;
    if (caps == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_fs_caps: caps is NULL");
    floe_status st = resolve(ctx, uri, &ops);
    if (st == FLOE_OK)
        *caps = ops->caps;
    return st;
}

/* ---- Files ------------------------------------------------------------------------------- */

static floe_status file_open(floe_context *ctx, const char *uri, bool writing, int append,
                             floe_file **out) {
    const floe_fs_ops *ops;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if ((st = resolve(ctx, uri, &ops)) != FLOE_OK)
        return st;
    if (writing && ops->open_write == NULL)
        return missing_op(ops, "open_write");
    if (!writing && ops->open_read == NULL)
        return missing_op(ops, "open_read");
    if (writing && append && !(ops->caps & FLOE_FS_CAP_APPEND))
        return floe__fail(FLOE_UNIMPLEMENTED, "'%s': filesystem '%s' cannot append", uri,
                          ops->scheme);
    floe_file *f = floe__malloc(sizeof(*f));
    if (f == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "open '%s': out of memory", uri);
    f->ops = ops;
    f->writing = writing;
    f->handle = NULL;
    st = writing ? ops->open_write(ops->state, uri, append != 0, &f->handle)
                 : ops->open_read(ops->state, uri, &f->handle);
    if (st != FLOE_OK) {
        floe__free(f);
        return st;
    }
    *out = f;
    return FLOE_OK;
}

floe_status floe_file_open_read(floe_context *ctx, const char *uri, floe_file **out) {
    return file_open(ctx, uri, false, 0, out);
}

floe_status floe_file_open_write(floe_context *ctx, const char *uri, int append, floe_file **out) {
    return file_open(ctx, uri, true, append, out);
}

floe_status floe_file_pread(floe_file *f, uint64_t offset, void *buf, size_t n, size_t *nread) {
    if (nread != NULL)
        *nread = 0;
    if (f == NULL || nread == NULL || (buf == NULL && n > 0))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_file_pread: NULL argument");
    if (f->writing)
        return floe__fail(FLOE_FAILED_PRECONDITION, "floe_file_pread: file is open for writing");
    if (n == 0)
        return FLOE_OK;
    return f->ops->pread(f->handle, offset, buf, n, nread);
}

floe_status floe_file_write(floe_file *f, const void *buf, size_t n) {
    if (f == NULL || (buf == NULL && n > 0))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_file_write: NULL argument");
    if (!f->writing)
        return floe__fail(FLOE_FAILED_PRECONDITION, "floe_file_write: file is open for reading");
    if (n == 0)
        return FLOE_OK;
    return f->ops->write(f->handle, buf, n);
}

static floe_status file_finish(floe_file *f, int commit) {
    floe_status st = FLOE_OK;
    if (f == NULL)
        return FLOE_OK;
    if (f->writing)
        st = f->ops->close_write(f->handle, commit);
    else if (f->ops->close_read != NULL)
        f->ops->close_read(f->handle);
    floe__free(f);
    return st;
}

floe_status floe_file_close(floe_file *f) {
    return file_finish(f, 1);
}

void floe_file_abort(floe_file *f) {
    file_finish(f, 0);
}

/* ---- Whole files ---------------------------------------------------------------------- */

/* Reads @f to its end into a malloc'd buffer (NUL-terminated past *@size for text
 * parsers), failing with FLOE_OUT_OF_RANGE beyond @max_bytes (0: no cap). */
static floe_status read_to_end(floe_file *f, const char *uri, size_t hint, size_t max_bytes,
                               char **data, size_t *size) {
    size_t cap = hint > 0 ? hint + 1 : 65536, len = 0;
    floe_status st;

    if (max_bytes > 0 && cap > max_bytes + 1)
        cap = max_bytes + 1;
    char *buf = floe__malloc(cap + 1);
    if (buf == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "read '%s': out of memory for %zu bytes", uri,
                          cap);
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t ncap = cap < SIZE_MAX / 4 ? cap * 2 : SIZE_MAX - 1;
            if (max_bytes > 0 && ncap > max_bytes + 1)
                ncap = max_bytes + 1;
            char *nbuf = floe__realloc(buf, ncap + 1);
            if (nbuf == NULL) {
                st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "read '%s': out of memory for %zu bytes",
                                uri, ncap);
                goto fail_free;
            }
            buf = nbuf;
            cap = ncap;
        }
        st = floe_file_pread(f, len, buf + len, cap - len, &got);
        if (st != FLOE_OK)
            goto fail_free;
        len += got;
        if (max_bytes > 0 && len > max_bytes) {
            st = floe__fail(FLOE_OUT_OF_RANGE, "read '%s': file is larger than the cap of %zu bytes",
                            uri, max_bytes);
            goto fail_free;
        }
        if (len < cap)
            break;          /* short read: end of file */
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return FLOE_OK;

fail_free:
    floe__free(buf);
    return st;
}

floe_status floe_fs_read_all(floe_context *ctx, const char *uri, size_t max_bytes, void **data,
                             size_t *size) {
    floe_file *f = NULL;
    floe_file_info info;
    floe_status st;
    size_t hint = 0;
    char *buf = NULL;
    size_t len = 0;

    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (data == NULL || size == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_fs_read_all: data or size is NULL");
    st = floe_file_open_read(ctx, uri, &f);
    if (st != FLOE_OK)
        return st;
    /* The size is only a hint (the file may change); reading stops at the real end. */
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    if (f->ops->stat != NULL && f->ops->stat(f->ops->state, uri, &info) == FLOE_OK)
        hint = info.size <= SIZE_MAX / 2 ? (size_t)info.size : 0;
    if (max_bytes > 0 && hint > max_bytes) {
        st = floe__fail(FLOE_OUT_OF_RANGE, "read '%s': %zu bytes exceed the cap of %zu bytes",
                        uri, hint, max_bytes);
        goto out_close;
    }
    st = read_to_end(f, uri, hint, max_bytes, &buf, &len);
    if (st == FLOE_OK) {
        *data = buf;
        *size = len;
    }
out_close:
    floe_file_close(f);
    return st;
}

floe_status floe_fs_write_all(floe_context *ctx, const char *uri, const void *data, size_t size) {
    floe_file *f = NULL;
    floe_status st;

    if (data == NULL && size > 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_fs_write_all: data is NULL");
    st = floe_file_open_write(ctx, uri, 0, &f);
    if (st != FLOE_OK)
        return st;
    st = floe_file_write(f, data, size);
    if (st != FLOE_OK) {
        floe_file_abort(f);
        return st;
    }
    return floe_file_close(f);
}

/* ---- Metadata and directories ------------------------------------------------------- */

floe_status floe_fs_stat(floe_context *ctx, const char *uri, floe_file_info *info) {
    const floe_fs_ops *ops;
    floe_file_info full;
    floe_status st;
    size_t want;

    if (info == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_fs_stat: info is NULL");
    /* A caller built against an older floe_file_info gets the members it knows; 0 is
     * taken as "the current size". */
    want = info->struct_size == 0 || info->struct_size > sizeof(full) ? sizeof(full)
                                                                      : info->struct_size;
    memset(&full, 0, sizeof(full));
    full.struct_size = sizeof(full);
    st = resolve(ctx, uri, &ops);
    if (st == FLOE_OK)
        st = ops->stat != NULL ? ops->stat(ops->state, uri, &full) : missing_op(ops, "stat");
    if (st != FLOE_OK)
        memset(&full, 0, sizeof(full));
    full.struct_size = want;
    memcpy(info, &full, want);
    return st;
}

floe_status floe_fs_list(floe_context *ctx, const char *uri,
                         void (*fn)(void *arg, const char *name, const floe_file_info *info),
                         void *arg) {
    const floe_fs_ops *ops;
    floe_status st;

    if (fn == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_fs_list: callback is NULL");
    if ((st = resolve(ctx, uri, &ops)) != FLOE_OK)
        return st;
    if (ops->list == NULL)
        return missing_op(ops, "list");
    return ops->list(ops->state, uri, fn, arg);
}

floe_status floe_fs_remove(floe_context *ctx, const char *uri) {
    const floe_fs_ops *ops;
    floe_status st;

    if ((st = resolve(ctx, uri, &ops)) != FLOE_OK)
        return st;
    if (ops->remove == NULL)
        return missing_op(ops, "remove");
    return ops->remove(ops->state, uri);
}

floe_status floe_fs_mkdir(floe_context *ctx, const char *uri) {
    const floe_fs_ops *ops;
    floe_status st;

    if ((st = resolve(ctx, uri, &ops)) != FLOE_OK)
        return st;
    if (ops->mkdir == NULL)
        return missing_op(ops, "mkdir");
    return ops->mkdir(ops->state, uri);
}

floe_status floe_fs_rename(floe_context *ctx, const char *from, const char *to) {
    const floe_fs_ops *ops, *ops_to;
    floe_status st;

    if ((st = resolve(ctx, from, &ops)) != FLOE_OK || (st = resolve(ctx, to, &ops_to)) != FLOE_OK)
        return st;
    if (ops != ops_to)
        return floe__fail(FLOE_UNIMPLEMENTED, "rename '%s' to '%s': different filesystems", from,
                          to);
    if (ops->rename == NULL)
        return missing_op(ops, "rename");
    return ops->rename(ops->state, from, to);
}
