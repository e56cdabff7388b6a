/*
 * tfrecord.c - TFRecord files: the writer and the reader of floe/tfrecord.h.
 *
 * Layout: the byte source of a reader (a file read through the filesystem ABI in
 * buffered preads, or caller memory), optionally inflated by zlib (ZLIB or GZIP, where
 * concatenated gzip members are read one after the other); the record framing on top
 * (length, masked CRC32C of the length, data, masked CRC32C of the data); then the writer,
 * which frames records into a buffer, optionally deflated, and hands it to floe_file_write.
 *
 * The reader never returns part of a record: every record is read whole and both CRCs
 * are checked before it is handed out.  Any failure is sticky: once a reader has
 * reported data loss, every later read reports it again.  A corrupt length field
 * (whose CRC still matched, so only a deliberately made file) cannot make the reader
 * allocate beyond what the file holds: the record buffer grows as the bytes arrive.
 */
#include <floe/floe.h>
#include <floe/tfrecord.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define RAW_CAP (256u << 10)   /* bytes of compressed or plain input read at once */
#define OUT_CAP (256u << 10)   /* bytes of output buffered by the writer */
#define GROW_STEP (1u << 20)   /* first size of the record buffer for a long record */

/* ---- Reader: the byte source -------------------------------------------------- */

struct floe_tfrecord_reader {
    char *name;             /* the URI, for messages */
    floe_file *file;        /* NULL for a memory reader */
    floe_compression comp;
    /* raw input: a window of the file, or the caller's whole buffer */
    uint8_t *raw;
    const uint8_t *mem;
    size_t raw_pos, raw_len;
    uint64_t file_off;      /* offset of the next pread */
    bool raw_eof;           /* no more raw input after raw[raw_len) */
    /* inflate */
    z_stream zs;
    bool zs_live;
    bool z_end;             /* the last stream ended (Z_STREAM_END) and no input follows */
    uint8_t *zout;          /* inflated bytes zout[zpos, zlen) not yet read */
    size_t zpos, zlen;
    char zwhat[160];        /* damage found by inflate, reported after the bytes before it */
    /* framing */
    uint64_t offset;        /* offset of the next record in the (inflated) stream */
    uint8_t *rec;
    size_t rec_cap;
    floe_status sticky;     /* FLOE_OK, or the error every later read returns */
    char *sticky_msg;
};

/* Records a data-loss error (the message names the file and @off) and makes it sticky. */
static floe_status reader_fail(floe_tfrecord_reader *r, floe_status st, const char *what,
                               uint64_t off) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s: %s at offset %" PRIu64, r->name, what, off);
    free(r->sticky_msg);
    r->sticky_msg = strdup(buf);
    r->sticky = st;
    return floe_set_error(st, "%s", buf);
}

/* Refills raw[] from the file; sets raw_eof at the end of the file. */
static floe_status raw_refill(floe_tfrecord_reader *r) {
    size_t got = 0;
    r->raw_pos = r->raw_len = 0;
    if (r->raw_eof)
        return FLOE_OK;
    floe_status st = floe_file_pread(r->file, r->file_off, r->raw, RAW_CAP, &got);
    if (st != FLOE_OK) {
        r->sticky = st;
        r->sticky_msg = strdup(floe_last_error());
        return st;
    }
    r->raw_len = got;
    r->file_off += got;
    if (got < RAW_CAP)
        r->raw_eof = true;
    return FLOE_OK;
}

/* Reads up to @n plain bytes; *@got < @n only at the end of the input. */
static floe_status plain_read(floe_tfrecord_reader *r, uint8_t *dst, size_t n, size_t *got) {
    *got = 0;
    while (n > 0) {
        if (r->raw_pos < r->raw_len) {
            size_t k = r->raw_len - r->raw_pos < n ? r->raw_len - r->raw_pos : n;
            memcpy(dst, r->raw + r->raw_pos, k);
            r->raw_pos += k;
            dst += k;
            n -= k;
            *got += k;
            continue;
        }
        if (r->raw_eof)
            break;
        if (n >= RAW_CAP) {
            /* A long record: read it straight into place. */
            size_t k = 0;
            floe_status st = floe_file_pread(r->file, r->file_off, dst, n, &k);
            if (st != FLOE_OK) {
                r->sticky = st;
                r->sticky_msg = strdup(floe_last_error());
                return st;
            }
            r->file_off += k;
            *got += k;
            if (k < n)
                r->raw_eof = true;
            return FLOE_OK;
        }
        floe_status st = raw_refill(r);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

/* Makes more raw input available to inflate; false at the end of the input. */
static floe_status z_more_input(floe_tfrecord_reader *r, bool *any) {
    *any = false;
    if (r->raw_pos >= r->raw_len) {
        if (r->raw_eof)
            return FLOE_OK;
        floe_status st = raw_refill(r);
        if (st != FLOE_OK)
            return st;
        if (r->raw_len == 0)
            return FLOE_OK;
    }
    *any = true;
    return FLOE_OK;
}

/* Inflates up to @n bytes into @dst; *@got < @n only at the clean end of the last stream
 * or at damage, which is then described in r->zwhat (reported by z_read once the bytes
 * before it are used up, so the records before damage are still read). */
static floe_status z_inflate(floe_tfrecord_reader *r, uint8_t *dst, size_t n, size_t *got) {
    *got = 0;
    while (n > 0 && !r->z_end) {
        bool any;
        floe_status st = z_more_input(r, &any);
        if (st != FLOE_OK)
            return st;
        r->zs.next_in = (Bytef *)(r->raw + r->raw_pos);
        r->zs.avail_in = (uInt)(r->raw_len - r->raw_pos);
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        r->zs.next_out = dst;
        r->zs.avail_out = (uInt)chunk;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        size_t out = chunk - r->zs.avail_out;
        r->raw_pos = r->raw_len - r->zs.avail_in;
        dst += out;
        n -= out;
        *got += out;
        if (zr == Z_STREAM_END) {
            /* Another gzip member may follow; a zlib stream must be the whole file. */
            st = z_more_input(r, &any);
            if (st != FLOE_OK)
                return st;
            if (!any) {
                r->z_end = true;
                break;
            }
            if (r->comp != FLOE_COMPRESSION_GZIP) {
                snprintf(r->zwhat, sizeof r->zwhat, "bytes after the end of the ZLIB stream");
                break;
            }
            inflateReset(&r->zs);
            continue;
        }
        if (zr == Z_BUF_ERROR && !any && out == 0 && r->zs.total_in == 0 && r->offset == 0 &&
            *got == 0) {
            r->z_end = true; /* an empty file: no stream, no records */
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            snprintf(r->zwhat, sizeof r->zwhat, "corrupt %s stream (%s)",
                     r->comp == FLOE_COMPRESSION_GZIP ? "GZIP" : "ZLIB",
                     r->zs.msg ? r->zs.msg : "inflate failed");
            break;
        }
        if (!any && out == 0) {
            snprintf(r->zwhat, sizeof r->zwhat, "compressed stream cut short");
            break;
        }
    }
    return FLOE_OK;
}

/* Reads up to @n inflated bytes through zout[]; *@got < @n only at the clean end. */
static floe_status z_read(floe_tfrecord_reader *r, uint8_t *dst, size_t n, size_t *got) {
    *got = 0;
    while (n > 0) {
        if (r->zpos < r->zlen) {
            size_t k = r->zlen - r->zpos < n ? r->zlen - r->zpos : n;
            memcpy(dst, r->zout + r->zpos, k);
            r->zpos += k;
            dst += k;
            n -= k;
            *got += k;
            continue;
        }
        if (r->zwhat[0])
            return reader_fail(r, FLOE_DATA_LOSS, r->zwhat, r->offset);
        if (r->z_end)
            break;
        size_t k;
        floe_status st;
        if (n >= RAW_CAP) {
            /* a long record: inflate straight into place */
            if ((st = z_inflate(r, dst, n, &k)) != FLOE_OK)
                return st;
            dst += k;
            n -= k;
            *got += k;
            continue;
        }
        r->zpos = 0;
        if ((st = z_inflate(r, r->zout, RAW_CAP, &r->zlen)) != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status src_read(floe_tfrecord_reader *r, uint8_t *dst, size_t n, size_t *got) {
    return r->comp == FLOE_COMPRESSION_NONE ? plain_read(r, dst, n, got)
                                            : z_read(r, dst, n, got);
}

/* ---- Reader: framing ------------------------------------------------------------ */

static uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load64(const uint8_t *p) {
    return (uint64_t)load32(p) | (uint64_t)load32(p + 4) << 32;
}

static void store32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void store64(uint8_t *p, uint64_t v) {
    store32(p, (uint32_t)v);
    store32(p + 4, (uint32_t)(v >> 32));
}

static floe_status rec_reserve(floe_tfrecord_reader *r, size_t need) {
    if (need <= r->rec_cap)
        return FLOE_OK;
    uint8_t *p = realloc(r->rec, need);
    if (p == NULL)
        return reader_fail(r, FLOE_RESOURCE_EXHAUSTED, "out of memory for a record", r->offset);
    r->rec = p;
    r->rec_cap = need;
    return FLOE_OK;
}

floe_status floe_tfrecord_read(floe_tfrecord_reader *r, const void **data, size_t *n) {
    if (data != NULL)
        *data = NULL;
    if (n != NULL)
        *n = 0;
    if (r == NULL || data == NULL || n == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_tfrecord_read: NULL argument");
    if (r->sticky != FLOE_OK)
        return floe_set_error(r->sticky, "%s", r->sticky_msg ? r->sticky_msg : "read failed");
    uint8_t hdr[12];
    size_t got;
    floe_status st = src_read(r, hdr, sizeof hdr, &got);
    if (st != FLOE_OK)
        return st;
    if (got == 0)
        return floe_set_error(FLOE_OUT_OF_RANGE, "%s: end of file", r->name);
    if (got < sizeof hdr)
        return reader_fail(r, FLOE_DATA_LOSS, "truncated record header", r->offset);
    uint64_t len = load64(hdr);
    if (floe_crc32c_mask(floe_crc32c(0, hdr, 8)) != load32(hdr + 8))
        return reader_fail(r, FLOE_DATA_LOSS, "corrupt record length (CRC mismatch)", r->offset);
    if (len > SIZE_MAX / 2)
        return reader_fail(r, FLOE_DATA_LOSS, "record length too large", r->offset);
    size_t want = (size_t)len + 4, have = 0;
    while (have < want) {
        size_t step = want <= GROW_STEP ? want : (have < GROW_STEP ? GROW_STEP : have * 2);
        size_t target = step < want ? step : want;
        if ((st = rec_reserve(r, target)) != FLOE_OK)
            return st;
        if ((st = src_read(r, r->rec + have, target - have, &got)) != FLOE_OK)
            return st;
        have += got;
        if (have < target)
            return reader_fail(r, FLOE_DATA_LOSS, "truncated record", r->offset);
    }
    if (floe_crc32c_mask(floe_crc32c(0, r->rec, (size_t)len)) != load32(r->rec + len))
        return reader_fail(r, FLOE_DATA_LOSS, "corrupt record data (CRC mismatch)", r->offset);
    r->offset += 12 + want;
    *data = r->rec;
    *n = (size_t)len;
    return FLOE_OK;
}

static floe_status reader_new(const char *name, floe_compression compression,
                              floe_tfrecord_reader **out) {
    floe_tfrecord_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->name = strdup(name)) == NULL) {
        free(r);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", name);
    }
    r->comp = compression;
    if (compression != FLOE_COMPRESSION_NONE) {
        int wbits = compression == FLOE_COMPRESSION_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
        if (inflateInit2(&r->zs, wbits) != Z_OK) {
            free(r->name);
            free(r);
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: inflateInit failed", name);
        }
        r->zs_live = true;
        if ((r->zout = malloc(RAW_CAP)) == NULL) {
            floe_tfrecord_reader_close(r);
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", name);
        }
    }
    *out = r;
    return FLOE_OK;
}

static floe_status check_compression(const char *fn, floe_compression c) {
    if (c != FLOE_COMPRESSION_NONE && c != FLOE_COMPRESSION_ZLIB && c != FLOE_COMPRESSION_GZIP)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "%s: unknown compression %d", fn, (int)c);
    return FLOE_OK;
}

floe_status floe_tfrecord_reader_open(floe_context *ctx, const char *uri,
                                      floe_compression compression,
                                      floe_tfrecord_reader **out) {
    if (out != NULL)
        *out = NULL;
    if (uri == NULL || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_tfrecord_reader_open: NULL argument");
    floe_status st = check_compression("floe_tfrecord_reader_open", compression);
    if (st != FLOE_OK)
        return st;
    floe_tfrecord_reader *r;
    if ((st = reader_new(uri, compression, &r)) != FLOE_OK)
        return st;
    r->raw = malloc(RAW_CAP);
    if (r->raw == NULL) {
        floe_tfrecord_reader_close(r);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", uri);
    }
    if ((st = floe_file_open_read(ctx, uri, &r->file)) != FLOE_OK) {
        floe_tfrecord_reader_close(r);
        return st;
    }
    *out = r;
    return FLOE_OK;
}

floe_status floe_tfrecord_reader_open_memory(const void *data, size_t size,
                                             floe_compression compression, const char *name,
                                             floe_tfrecord_reader **out) {
    if (out != NULL)
        *out = NULL;
    if ((data == NULL && size > 0) || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "floe_tfrecord_reader_open_memory: NULL argument");
    floe_status st = check_compression("floe_tfrecord_reader_open_memory", compression);
    if (st != FLOE_OK)
        return st;
    floe_tfrecord_reader *r;
    if ((st = reader_new(name ? name : "<memory>", compression, &r)) != FLOE_OK)
        return st;
    /* raw is only read through, never written, in a memory reader */
    r->raw = (uint8_t *)(uintptr_t)data;
    r->mem = data;
    r->raw_len = size;
    r->raw_eof = true;
    *out = r;
    return FLOE_OK;
}

uint64_t floe_tfrecord_reader_offset(const floe_tfrecord_reader *r) {
    return r ? r->offset : 0;
}

void floe_tfrecord_reader_close(floe_tfrecord_reader *r) {
    if (r == NULL)
        return;
    if (r->zs_live)
        inflateEnd(&r->zs);
    if (r->file != NULL)
        floe_file_close(r->file);
    if (r->mem == NULL)
        free(r->raw);
    free(r->rec);
    free(r->zout);
    free(r->sticky_msg);
    free(r->name);
    free(r);
}

/* ---- Writer ------------------------------------------------------------------- */

struct floe_tfrecord_writer {
    char *name;
    floe_file *file;
    floe_compression comp;
    z_stream zs;
    bool zs_live;
    uint8_t *out;           /* OUT_CAP bytes waiting for floe_file_write */
    size_t out_len;
    uint64_t offset;        /* bytes of records written (before compression) */
    floe_status sticky;
};

static floe_status writer_flush_out(floe_tfrecord_writer *w) {
    if (w->out_len == 0)
        return FLOE_OK;
    floe_status st = floe_file_write(w->file, w->out, w->out_len);
    w->out_len = 0;
    return st;
}

/* Deflates @n bytes (with @flush) into out[], writing out[] whenever it fills. */
static floe_status writer_deflate(floe_tfrecord_writer *w, const uint8_t *p, size_t n,
                                  int flush) {
    do {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        w->zs.next_in = (Bytef *)(uintptr_t)p;
        w->zs.avail_in = (uInt)chunk;
        int last = chunk == n ? flush : Z_NO_FLUSH;
        for (;;) {
            w->zs.next_out = w->out + w->out_len;
            w->zs.avail_out = (uInt)(OUT_CAP - w->out_len);
            int zr = deflate(&w->zs, last);
            w->out_len = OUT_CAP - w->zs.avail_out;
            if (zr == Z_STREAM_ERROR)
                return floe_set_error(FLOE_INTERNAL, "%s: deflate failed", w->name);
            if (w->out_len == OUT_CAP) {
                floe_status st = writer_flush_out(w);
                if (st != FLOE_OK)
                    return st;
                continue;
            }
            if (w->zs.avail_in == 0 && (last == Z_NO_FLUSH || w->zs.avail_out > 0))
                break;
        }
        p += chunk;
        n -= chunk;
    } while (n > 0);
    return FLOE_OK;
}

static floe_status writer_put(floe_tfrecord_writer *w, const void *p, size_t n) {
    if (w->comp != FLOE_COMPRESSION_NONE)
        return writer_deflate(w, p, n, Z_NO_FLUSH);
    if (n >= OUT_CAP) {
        floe_status st = writer_flush_out(w);
        return st != FLOE_OK ? st : floe_file_write(w->file, p, n);
    }
    if (w->out_len + n > OUT_CAP) {
        floe_status st = writer_flush_out(w);
        if (st != FLOE_OK)
            return st;
    }
    memcpy(w->out + w->out_len, p, n);
    w->out_len += n;
    return FLOE_OK;
}

floe_status floe_tfrecord_writer_open(floe_context *ctx, const char *uri,
                                      floe_compression compression, int append,
                                      floe_tfrecord_writer **out) {
    if (out != NULL)
        *out = NULL;
    if (uri == NULL || out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_tfrecord_writer_open: NULL argument");
    floe_status st = check_compression("floe_tfrecord_writer_open", compression);
    if (st != FLOE_OK)
        return st;
    if (append && compression == FLOE_COMPRESSION_ZLIB)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "%s: a ZLIB file cannot be appended to (use GZIP or NONE)", uri);
    floe_tfrecord_writer *w = calloc(1, sizeof *w);
    if (w == NULL || (w->name = strdup(uri)) == NULL || (w->out = malloc(OUT_CAP)) == NULL) {
        if (w != NULL)
            free(w->name);
        free(w);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: out of memory", uri);
    }
    w->comp = compression;
    if (compression != FLOE_COMPRESSION_NONE) {
        int wbits = compression == FLOE_COMPRESSION_GZIP ? 16 + MAX_WBITS : MAX_WBITS;
        if (deflateInit2(&w->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, wbits, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            floe_tfrecord_writer_abort(w);
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "%s: deflateInit failed", uri);
        }
        w->zs_live = true;
    }
    if ((st = floe_file_open_write(ctx, uri, append, &w->file)) != FLOE_OK) {
        floe_tfrecord_writer_abort(w);
        return st;
    }
    *out = w;
    return FLOE_OK;
}

floe_status floe_tfrecord_write(floe_tfrecord_writer *w, const void *data, size_t n) {
    if (w == NULL || (data == NULL && n > 0))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_tfrecord_write: NULL argument");
    if (w->sticky != FLOE_OK)
        return floe_set_error(w->sticky, "%s: an earlier write failed", w->name);
    uint8_t hdr[12], foot[4];
    store64(hdr, (uint64_t)n);
    store32(hdr + 8, floe_crc32c_mask(floe_crc32c(0, hdr, 8)));
    store32(foot, floe_crc32c_mask(floe_crc32c(0, data, n)));
    floe_status st = writer_put(w, hdr, sizeof hdr);
    if (st == FLOE_OK && n > 0)
        st = writer_put(w, data, n);
    if (st == FLOE_OK)
        st = writer_put(w, foot, sizeof foot);
    if (st != FLOE_OK) {
        w->sticky = st;
        return st;
    }
    w->offset += 16 + (uint64_t)n;
    return FLOE_OK;
}

floe_status floe_tfrecord_writer_flush(floe_tfrecord_writer *w) {
    if (w == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_tfrecord_writer_flush: NULL argument");
    if (w->sticky != FLOE_OK)
        return floe_set_error(w->sticky, "%s: an earlier write failed", w->name);
    floe_status st = FLOE_OK;
    if (w->comp != FLOE_COMPRESSION_NONE)
        st = writer_deflate(w, NULL, 0, Z_SYNC_FLUSH);
    if (st == FLOE_OK)
        st = writer_flush_out(w);
    if (st != FLOE_OK)
        w->sticky = st;
    return st;
}

floe_status floe_tfrecord_writer_close(floe_tfrecord_writer *w) {
    if (w == NULL)
        return FLOE_OK;
    if (w->sticky != FLOE_OK) {
        floe_status st = floe_set_error(w->sticky, "%s: not written: an earlier write failed",
                                        w->name);
        floe_tfrecord_writer_abort(w);
        return st;
    }
    floe_status st = FLOE_OK;
    if (w->comp != FLOE_COMPRESSION_NONE)
        st = writer_deflate(w, NULL, 0, Z_FINISH);
    if (st == FLOE_OK)
        st = writer_flush_out(w);
    if (st != FLOE_OK) {
        floe_tfrecord_writer_abort(w);
        return st;
    }
    st = floe_file_close(w->file);
    w->file = NULL;
    floe_tfrecord_writer_abort(w);
    return st;
}

void floe_tfrecord_writer_abort(floe_tfrecord_writer *w) {
    if (w == NULL)
        return;
    if (w->zs_live)
        deflateEnd(&w->zs);
    floe_file_abort(w->file);
    free(w->out);
    free(w->name);
    free(w);
}
