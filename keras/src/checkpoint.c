/*
 * checkpoint.c - checkpoints of a session's variables (floe/checkpoint.h): the file
 * format, its writer and its untrusting reader, saving and restoring through sessions,
 * and the "checkpoint" pointer file with keep-last-N.
 *
 * The format is described in checkpoint.h.  Checksums are CRC32C (Castagnoli,
 * reflected polynomial 0x82F63B78; table-driven here, no dependency).  The writer
 * builds the header and index in memory, then streams header, index and each tensor's
 * bytes into one floe_file_open_write() file, committed by floe_file_close() (write
 * aside, fsync, atomic rename on the local filesystem) or discarded by
 * floe_file_abort() on any error; on a filesystem without atomic rename (s3://) the
 * save reads the committed file's header and index back before writing the pointer.
 * The reader (struct floe_checkpoint) reads the header
 * and index with pread, checks both checksums, then parses the index with a bounds-
 * checked cursor: lengths against what is left, dtypes by name against the fixed-size
 * numeric ones, extents >= 0 with overflow-checked products, data ranges inside the
 * data section; tensor data is read on demand and checked against its CRC.
 *
 * Variables are the graph's VarHandleOp nodes.  Saving adds (once) "save/<var>/Read"
 * nodes and fetches them all in one run; restoring adds (once) a Placeholder and an
 * AssignVariableOp per variable under "restore/<var>/" and runs them in one run, after
 * every tensor has been read and checked, so a failed restore assigns nothing.
 *
 * Sections: CRC32C; errors and small helpers; the graph's variables; writing; reading;
 * save and restore; the pointer file and keep-last-N.
 */
#include "keras-impl.h"

#include <floe/checkpoint.h>
#include <floe/fs.h>
#include <floe/tfrecord.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_MAGIC "FLOECKPT"
#define HEADER_SIZE 32
#define MAX_NAME_LEN 4096
#define MAX_INDEX_BYTES ((uint64_t)1 << 30)
#define POINTER_FILE "checkpoint"
#define POINTER_MAX_BYTES (1u << 20)
#define PATH_LEN 4096

/* ---- Errors and small helpers ------------------------------------------------------------ */

static floe_status lib_fail(floe_status st, const char *what, const char *path) {
    return floe__keras_fail(st, "%s '%s': %s", what, path, floe_last_error());
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void format_shape(const int64_t *dims, int ndim, char *buf, size_t len) {
    size_t n = 0;

    if (ndim < 0) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    n += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && n < len; i++) {
        if (dims[i] < 0)
            n += (size_t)snprintf(buf + n, len - n, "%s?", i ? ", " : "");
        else
            n += (size_t)snprintf(buf + n, len - n, "%s%" PRId64, i ? ", " : "", dims[i]);
    }
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* Dtypes a checkpoint may hold: fixed-size elements. */
static bool savable_dtype(floe_dtype dt) {
    return dt != FLOE_DTYPE_INVALID && dt != FLOE_DTYPE_STRING && dt != FLOE_DTYPE_RESOURCE &&
           floe_dtype_size(dt) > 0;
}

/* ---- The graph's variables ----------------------------------------------------------- */

typedef struct var_entry {
    const char *name;        /* shared_name or node name (lent by the graph) */
    floe_node *handle;
    floe_dtype dtype;
    floe_shape shape;        /* declared */
} var_entry;

static int var_cmp(const void *a, const void *b) {
    return strcmp(((const var_entry *)a)->name, ((const var_entry *)b)->name);
}

/* Every VarHandleOp of @g, one per name, sorted by name.  *@out freed with free(). */
static floe_status graph_vars(floe_graph *g, var_entry **out, int *count) {
    int n = floe_graph_num_nodes(g), k = 0;
    var_entry *v;

    *out = NULL;
    *count = 0;
    v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    if (v == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint: out of memory");
    for (int i = 0; i < n; i++) {
        floe_node *node = floe_graph_node(g, i);
        const floe_attrs *a;
        const char *shared = NULL;
        size_t len = 0;

        if (strcmp(floe_node_op(node), "VarHandleOp") != 0)
            continue;
        a = floe_node_attrs(node);
        if (floe_attrs_get_string(a, "shared_name", &shared, &len) != FLOE_OK || len == 0)
            shared = floe_node_name(node);
        v[k].name = shared;
        v[k].handle = node;
        if (floe_attrs_get_type(a, "dtype", &v[k].dtype) != FLOE_OK)
            v[k].dtype = FLOE_DTYPE_INVALID;
        if (floe_attrs_get_shape(a, "shape", &v[k].shape) != FLOE_OK)
            v[k].shape.ndim = -1;
        k++;
    }
    qsort(v, (size_t)k, sizeof(*v), var_cmp);
    /* One entry per name (two handles of one shared name are one variable). */
    int u = 0;
    for (int i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1].name, v[i].name) != 0)
            v[u++] = v[i];
    *out = v;
    *count = u;
    return FLOE_OK;
}

/* The node "@prefix/@name/@suffix", or NULL (names too long count as absent). */
static floe_node *find_aux(floe_graph *g, const char *prefix, const char *name,
                           const char *suffix, char *buf, size_t len) {
    if ((size_t)snprintf(buf, len, "%s/%s/%s", prefix, name, suffix) >= len)
        return NULL;
    return floe_graph_find(g, buf);
}

/* The ReadVariableOp "save/<var>/Read" of @v, added on first use. */
static floe_status save_read_node(floe_graph *g, const var_entry *v, floe_node **out) {
    char name[PATH_LEN];
    floe_node_builder *b = NULL;
    floe_status st;

    *out = find_aux(g, "save", v->name, "Read", name, sizeof(name));
    if (*out != NULL) {
        if (strcmp(floe_node_op(*out), "ReadVariableOp") != 0 ||
            floe_node_input(*out, 0).node != v->handle)
            return floe__keras_fail(FLOE_FAILED_PRECONDITION,
                                    "checkpoint: node '%s' is not this library's", name);
        return FLOE_OK;
    }
    if ((st = floe_node_builder_new(g, "ReadVariableOp", name, &b)) != FLOE_OK)
        return lib_fail(st, "checkpoint: reading variable", v->name);
    floe_node_builder_add_input(b, floe_out(v->handle, 0));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", v->dtype);
    if ((st = floe_node_builder_finish(b, out)) != FLOE_OK)
        return lib_fail(st, "checkpoint: reading variable", v->name);
    return FLOE_OK;
}

/* Placeholder "restore/<var>/value" and AssignVariableOp "restore/<var>/Assign". */
static floe_status restore_nodes(floe_graph *g, const var_entry *v, floe_node **ph,
                                 floe_node **assign) {
    char name[PATH_LEN];
    floe_node_builder *b = NULL;
    floe_status st;

    *ph = find_aux(g, "restore", v->name, "value", name, sizeof(name));
    if (*ph == NULL) {
        if ((st = floe_node_builder_new(g, "Placeholder", name, &b)) != FLOE_OK)
            return lib_fail(st, "checkpoint: restoring variable", v->name);
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", v->dtype);
        if ((st = floe_node_builder_finish(b, ph)) != FLOE_OK)
            return lib_fail(st, "checkpoint: restoring variable", v->name);
    }
    *assign = find_aux(g, "restore", v->name, "Assign", name, sizeof(name));
    if (*assign == NULL) {
        if ((st = floe_node_builder_new(g, "AssignVariableOp", name, &b)) != FLOE_OK)
            return lib_fail(st, "checkpoint: restoring variable", v->name);
        floe_node_builder_add_input(b, floe_out(v->handle, 0));
        floe_node_builder_add_input(b, floe_out(*ph, 0));
        if ((st = floe_node_builder_finish(b, assign)) != FLOE_OK)
            return lib_fail(st, "checkpoint: restoring variable", v->name);
    }
    if (strcmp(floe_node_op(*ph), "Placeholder") != 0 ||
        strcmp(floe_node_op(*assign), "AssignVariableOp") != 0)
        return floe__keras_fail(FLOE_FAILED_PRECONDITION,
                                "checkpoint: nodes under 'restore/%s/' are not this library's",
                                v->name);
    return FLOE_OK;
}

/* ---- Writing ---------------------------------------------------------------------------- */

/* Writes @n tensors named @names to @path as one committed file. */
static floe_status write_file(floe_context *ctx, const char *path, const var_entry *vars,
                              floe_tensor *const *vals, int n) {
    uint8_t header[HEADER_SIZE], *index = NULL, *p;
    uint64_t index_bytes = 0, offset;
    floe_file *f = NULL;
    floe_status st;

    for (int i = 0; i < n; i++) {
        const char *dn = floe_dtype_name(floe_tensor_dtype(vals[i]));
        index_bytes += 4 + strlen(vars[i].name) + 1 + strlen(dn) + 4 +
                       8 * (uint64_t)floe_tensor_ndim(vals[i]) + 8 + 8 + 4;
    }
    index = malloc(index_bytes > 0 ? (size_t)index_bytes : 1);
    if (index == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory", path);
    p = index;
    offset = HEADER_SIZE + index_bytes;
    for (int i = 0; i < n; i++) {
        const char *dn = floe_dtype_name(floe_tensor_dtype(vals[i]));
        size_t nl = strlen(vars[i].name), dl = strlen(dn), nbytes = floe_tensor_nbytes(vals[i]);
        int nd = floe_tensor_ndim(vals[i]);

        put_u32(p, (uint32_t)nl);
        memcpy(p + 4, vars[i].name, nl);
        p += 4 + nl;
        *p++ = (uint8_t)dl;
        memcpy(p, dn, dl);
        p += dl;
        put_u32(p, (uint32_t)nd);
        p += 4;
        for (int d = 0; d < nd; d++, p += 8)
            put_u64(p, (uint64_t)floe_tensor_dim(vals[i], d));
        put_u64(p, offset);
        put_u64(p + 8, nbytes);
        put_u32(p + 16, nbytes > 0 ? floe_crc32c(0, floe_tensor_data(vals[i]), nbytes) : 0);
        p += 20;
        offset += nbytes;
    }
    memcpy(header, CKPT_MAGIC, 8);
    put_u32(header + 8, FLOE_CHECKPOINT_VERSION);
    put_u32(header + 12, (uint32_t)n);
    put_u64(header + 16, index_bytes);
    put_u32(header + 24, floe_crc32c(0, index, (size_t)index_bytes));
    put_u32(header + 28, floe_crc32c(0, header, 28));

    if ((st = floe_file_open_write(ctx, path, 0, &f)) != FLOE_OK) {
        free(index);
        return lib_fail(st, "checkpoint: cannot write", path);
    }
    st = floe_file_write(f, header, sizeof(header));
    if (st == FLOE_OK && index_bytes > 0)
        st = floe_file_write(f, index, (size_t)index_bytes);
    for (int i = 0; i < n && st == FLOE_OK; i++)
        if (floe_tensor_nbytes(vals[i]) > 0)
            st = floe_file_write(f, floe_tensor_data(vals[i]), floe_tensor_nbytes(vals[i]));
    free(index);
    if (st != FLOE_OK) {
        floe__keras_fail(st, "checkpoint: writing '%s': %s", path, floe_last_error());
        floe_file_abort(f);
        return st;
    }
    if ((st = floe_file_close(f)) != FLOE_OK)
        return lib_fail(st, "checkpoint: committing", path);
    return FLOE_OK;
}

FLOE_KERAS_API floe_status floe_checkpoint_write(floe_graph *g, floe_session *s,
                                                 const char *path) {
    var_entry *vars = NULL;
    floe_output *fetches = NULL;
    floe_tensor **vals = NULL;
    int n = 0;
    floe_status st;

    if (g == NULL || s == NULL || path == NULL || path[0] == '\0')
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_write: NULL argument");
    if ((st = graph_vars(g, &vars, &n)) != FLOE_OK)
        return st;
    fetches = calloc(n > 0 ? (size_t)n : 1, sizeof(*fetches));
    vals = calloc(n > 0 ? (size_t)n : 1, sizeof(*vals));
    if (fetches == NULL || vals == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        floe_node *r;
        if (!savable_dtype(vars[i].dtype)) {
            st = floe__keras_fail(FLOE_UNIMPLEMENTED,
                                  "checkpoint '%s': variable '%s' has dtype %s, which cannot "
                                  "be saved", path, vars[i].name,
                                  floe_dtype_name(vars[i].dtype));
            goto done;
        }
        if (strlen(vars[i].name) > MAX_NAME_LEN) {
            st = floe__keras_fail(FLOE_INVALID_ARGUMENT,
                                  "checkpoint '%s': variable name '%.64s...' is too long", path,
                                  vars[i].name);
            goto done;
        }
        if ((st = save_read_node(g, &vars[i], &r)) != FLOE_OK)
            goto done;
        fetches[i] = floe_out(r, 0);
    }
    if (n > 0 && (st = floe_session_run(s, NULL, NULL, 0, fetches, n, NULL, 0, vals)) != FLOE_OK) {
        st = lib_fail(st, "checkpoint: reading the variables for", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        floe_tensor *h = NULL;
        if (floe_tensor_data(vals[i]) == NULL && floe_tensor_nbytes(vals[i]) > 0) {
            /* A value in device memory: a host copy to write. */
            if ((st = floe_tensor_to_host(vals[i], &h)) != FLOE_OK) {
                st = lib_fail(st, "checkpoint: copying a variable to the host for", path);
                goto done;
            }
            floe_tensor_unref(vals[i]);
            vals[i] = h;
        }
    }
    st = write_file(floe_graph_context(g), path, vars, vals, n);

done:
    for (int i = 0; vals != NULL && i < n; i++)
        floe_tensor_unref(vals[i]);
    free(vals);
    free(fetches);
    free(vars);
    return st;
}

/* ---- Reading ---------------------------------------------------------------------------- */

typedef struct ckpt_entry {
    char *name;
    floe_dtype dtype;
    floe_shape shape;
    uint64_t offset, nbytes;
    uint32_t crc;
} ckpt_entry;

struct floe_checkpoint {
    floe_file *file;
    char *path;
    int count;
    ckpt_entry *entries;
};

FLOE_KERAS_API void floe_checkpoint_close(floe_checkpoint *c) {
    if (c == NULL)
        return;
    for (int i = 0; i < c->count; i++)
        free(c->entries[i].name);
    free(c->entries);
    floe_file_close(c->file);
    free(c->path);
    free(c);
}

/* Reads exactly @n bytes at @off, else FLOE_DATA_LOSS (a short file). */
static floe_status read_exact(floe_checkpoint *c, uint64_t off, void *buf, size_t n,
                              const char *what) {
    size_t got = 0;
    floe_status st = floe_file_pread(c->file, off, buf, n, &got);

    if (st != FLOE_OK)
        return lib_fail(st, "checkpoint: reading", c->path);
    if (got != n)
        return floe__keras_fail(FLOE_DATA_LOSS,
                                "checkpoint '%s': truncated: %s needs %zu bytes at offset %" PRIu64
                                ", the file has %zu", c->path, what, n, off, got);
    return FLOE_OK;
}

/* A bounds-checked cursor over the index. */
typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take(cursor *cu, size_t n, const uint8_t **out) {
    if (cu->left < n)
        return false;
    *out = cu->p;
    cu->p += n;
    cu->left -= n;
    return true;
}

static floe_status corrupt(const floe_checkpoint *c, int i, const char *why) {
    return floe__keras_fail(FLOE_DATA_LOSS, "checkpoint '%s': corrupt index entry %d: %s",
                            c->path, i, why);
}

/* Parses the index (@n entries in @idx) into c->entries; data must lie in
 * [@data_start, @file_size). */
static floe_status parse_index(floe_checkpoint *c, const uint8_t *idx, size_t len, uint32_t n,
                               uint64_t data_start, uint64_t file_size) {
    cursor cu = {idx, len};

    /* Each entry takes at least 4 + 1 + 1 + 4 + 20 bytes: a count beyond that is a lie. */
    if ((uint64_t)n > len / 30)
        return floe__keras_fail(FLOE_DATA_LOSS,
                                "checkpoint '%s': %u tensors cannot fit a %zu-byte index",
                                c->path, n, len);
    c->entries = calloc(n > 0 ? n : 1, sizeof(*c->entries));
    if (c->entries == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory",
                                c->path);
    for (uint32_t i = 0; i < n; i++) {
        ckpt_entry *e = &c->entries[i];
        const uint8_t *q;
        char dname[256];
        uint32_t nl, nd;
        uint64_t elems = 1, nonzero = 1, esize;

        if (!take(&cu, 4, &q))
            return corrupt(c, (int)i, "truncated name length");
        nl = get_u32(q);
        if (nl == 0 || nl > MAX_NAME_LEN)
            return corrupt(c, (int)i, "bad name length");
        if (!take(&cu, nl, &q))
            return corrupt(c, (int)i, "truncated name");
        if (memchr(q, '\0', nl) != NULL)
            return corrupt(c, (int)i, "NUL in the name");
        e->name = malloc(nl + 1);
        if (e->name == NULL)
            return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory",
                                    c->path);
        c->count = (int)i + 1;
        memcpy(e->name, q, nl);
        e->name[nl] = '\0';
        if (i > 0 && strcmp(c->entries[i - 1].name, e->name) >= 0)
            return corrupt(c, (int)i, "names not sorted or repeated");
        if (!take(&cu, 1, &q) || *q == 0 || !take(&cu, *q, &q))
            return corrupt(c, (int)i, "bad dtype name");
        memcpy(dname, q, q[-1]);
        dname[q[-1]] = '\0';
        e->dtype = floe_dtype_from_name(dname);
        if (!savable_dtype(e->dtype))
            return corrupt(c, (int)i, "unknown or unsavable dtype");
        if (!take(&cu, 4, &q))
            return corrupt(c, (int)i, "truncated rank");
        nd = get_u32(q);
        if (nd > FLOE_MAX_DIMS)
            return corrupt(c, (int)i, "rank above FLOE_MAX_DIMS");
        e->shape.ndim = (int32_t)nd;
        esize = floe_dtype_size(e->dtype);
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t dim;
            if (!take(&cu, 8, &q))
                return corrupt(c, (int)i, "truncated shape");
            dim = get_u64(q);
            if (dim > (uint64_t)INT64_MAX)
                return corrupt(c, (int)i, "negative extent");
            e->shape.dims[d] = (int64_t)dim;
            /* The product of the non-zero extents must fit too: an empty tensor of
             * absurd extents is as corrupt as a huge one. */
            if (dim != 0 && nonzero > (uint64_t)INT64_MAX / esize / dim)
                return corrupt(c, (int)i, "element count overflows");
            nonzero *= dim != 0 ? dim : 1;
            elems *= dim;
        }
        if (!take(&cu, 20, &q))
            return corrupt(c, (int)i, "truncated data reference");
        e->offset = get_u64(q);
        e->nbytes = get_u64(q + 8);
        e->crc = get_u32(q + 16);
        if (e->nbytes != elems * esize)
            return corrupt(c, (int)i, "data size does not match the shape");
        if (e->offset < data_start || e->offset > file_size || e->nbytes > file_size - e->offset)
            return corrupt(c, (int)i, "data outside the file");
    }
    if (cu.left != 0)
        return floe__keras_fail(FLOE_DATA_LOSS, "checkpoint '%s': %zu stray bytes after the index",
                                c->path, cu.left);
    return FLOE_OK;
}

FLOE_KERAS_API floe_status floe_checkpoint_open(floe_context *ctx, const char *path,
                                                floe_checkpoint **out) {
    uint8_t h[HEADER_SIZE], *idx = NULL;
    floe_file_info info;
    floe_checkpoint *c;
    uint64_t index_bytes;
    uint32_t n, version;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    if (ctx == NULL || path == NULL || out == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_open: NULL argument");
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    if ((st = floe_fs_stat(ctx, path, &info)) != FLOE_OK)
        return lib_fail(st, "checkpoint: cannot open", path);
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory", path);
    }
    if ((st = floe_file_open_read(ctx, path, &c->file)) != FLOE_OK) {
        st = lib_fail(st, "checkpoint: cannot open", path);
        goto fail;
    }
    if (info.size < HEADER_SIZE) {
        st = floe__keras_fail(FLOE_DATA_LOSS,
                              "checkpoint '%s': truncated: %" PRIu64 " bytes, the header alone "
                              "takes %d", path, info.size, HEADER_SIZE);
        goto fail;
    }
    if ((st = read_exact(c, 0, h, HEADER_SIZE, "the header")) != FLOE_OK)
        goto fail;
    if (memcmp(h, CKPT_MAGIC, 8) != 0) {
        st = floe__keras_fail(FLOE_DATA_LOSS, "checkpoint '%s': not a Floe checkpoint (bad magic)",
                              path);
        goto fail;
    }
    if (get_u32(h + 28) != floe_crc32c(0, h, 28)) {
        st = floe__keras_fail(FLOE_DATA_LOSS, "checkpoint '%s': header checksum mismatch", path);
        goto fail;
    }
    version = get_u32(h + 8);
    if (version != FLOE_CHECKPOINT_VERSION) {
        st = floe__keras_fail(FLOE_UNIMPLEMENTED,
                              "checkpoint '%s': format version %u; this library reads %d", path,
                              version, FLOE_CHECKPOINT_VERSION);
        goto fail;
    }
    n = get_u32(h + 12);
    index_bytes = get_u64(h + 16);
    if (index_bytes > MAX_INDEX_BYTES || index_bytes > info.size - HEADER_SIZE) {
        st = floe__keras_fail(FLOE_DATA_LOSS,
                              "checkpoint '%s': truncated or corrupt: a %" PRIu64 "-byte index "
                              "in a %" PRIu64 "-byte file", path, index_bytes, info.size);
        goto fail;
    }
    idx = malloc(index_bytes > 0 ? (size_t)index_bytes : 1);
    if (idx == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory", path);
        goto fail;
    }
    if ((st = read_exact(c, HEADER_SIZE, idx, (size_t)index_bytes, "the index")) != FLOE_OK)
        goto fail;
    if (floe_crc32c(0, idx, (size_t)index_bytes) != get_u32(h + 24)) {
        st = floe__keras_fail(FLOE_DATA_LOSS, "checkpoint '%s': index checksum mismatch", path);
        goto fail;
    }
    if ((st = parse_index(c, idx, (size_t)index_bytes, n, HEADER_SIZE + index_bytes,
                          info.size)) != FLOE_OK)
        goto fail;
    free(idx);
    *out = c;
    return FLOE_OK;

fail:
    free(idx);
    floe_checkpoint_close(c);
    return st;
}

FLOE_KERAS_API int floe_checkpoint_num_tensors(const floe_checkpoint *c) {
    return c == NULL ? 0 : c->count;
}

FLOE_KERAS_API int floe_checkpoint_find(const floe_checkpoint *c, const char *name) {
    int lo = 0, hi;

    if (c == NULL || name == NULL)
        return -1;
    hi = c->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, r = strcmp(c->entries[mid].name, name);
        if (r == 0)
            return mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

FLOE_KERAS_API floe_status floe_checkpoint_tensor_info(const floe_checkpoint *c, int i,
                                                       const char **name, floe_dtype *dtype,
                                                       floe_shape *shape) {
    if (name != NULL)
        *name = NULL;
    if (dtype != NULL)
        *dtype = FLOE_DTYPE_INVALID;
    if (shape != NULL)
        memset(shape, 0, sizeof(*shape));
    if (c == NULL || i < 0 || i >= c->count)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_tensor_info: no tensor %d", i);
    if (name != NULL)
        *name = c->entries[i].name;
    if (dtype != NULL)
        *dtype = c->entries[i].dtype;
    if (shape != NULL)
        *shape = c->entries[i].shape;
    return FLOE_OK;
}

FLOE_KERAS_API floe_status floe_checkpoint_read_tensor(floe_checkpoint *c, int i,
                                                       floe_tensor **out) {
    const ckpt_entry *e;
    floe_tensor *t = NULL;
    floe_status st;

    if (out != NULL)
        *out = NULL;
    if (c == NULL || out == NULL || i < 0 || i >= c->count)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_read_tensor: no tensor %d", i);
    e = &c->entries[i];
    if ((st = floe_tensor_new(e->dtype, e->shape.dims, e->shape.ndim, &t)) != FLOE_OK)
        return lib_fail(st, "checkpoint: tensor for", e->name);
    if (e->nbytes > 0) {
        if ((st = read_exact(c, e->offset, floe_tensor_data(t), (size_t)e->nbytes,
                             e->name)) != FLOE_OK) {
            floe_tensor_unref(t);
            return st;
        }
        if (floe_crc32c(0, floe_tensor_data(t), (size_t)e->nbytes) != e->crc) {
            floe_tensor_unref(t);
            return floe__keras_fail(FLOE_DATA_LOSS,
                                    "checkpoint '%s': tensor '%s': data checksum mismatch",
                                    c->path, e->name);
        }
    }
    *out = t;
    return FLOE_OK;
}

/* ---- Restore --------------------------------------------------------------------------- */

/* Appends "; " and a formatted note to @msg (capacity @cap, length *@len). */
static void note(char *msg, size_t cap, size_t *len, const char *fmt, ...) FLOE_PRINTF(4, 5);
static void note(char *msg, size_t cap, size_t *len, const char *fmt, ...) {
    va_list ap;
    int k;

    if (*len >= cap - 1)
        return;
    if (*len > 0)
        *len += (size_t)snprintf(msg + *len, cap - *len, "; ");
    if (*len >= cap - 1)
        return;
    va_start(ap, fmt);
    k = vsnprintf(msg + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len += (size_t)k;
    if (*len >= cap)
        *len = cap - 1;
}

static bool shape_compatible(const floe_shape *declared, const floe_shape *got) {
    if (declared->ndim < 0)
        return true;
    if (declared->ndim != got->ndim)
        return false;
    for (int d = 0; d < got->ndim; d++)
        if (declared->dims[d] >= 0 && declared->dims[d] != got->dims[d])
            return false;
    return true;
}

FLOE_KERAS_API floe_status floe_checkpoint_restore(floe_graph *g, floe_session *s,
                                                   const char *path) {
    var_entry *vars = NULL;
    floe_checkpoint *c = NULL;
    floe_output *feeds = NULL;
    floe_tensor **vals = NULL;
    floe_node **targets = NULL;
    char msg[2048];
    size_t mlen = 0;
    int n = 0, missing = 0, mismatched = 0;
    floe_status st;

    if (g == NULL || s == NULL || path == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_restore: NULL argument");
    if ((st = graph_vars(g, &vars, &n)) != FLOE_OK)
        return st;
    if ((st = floe_checkpoint_open(floe_graph_context(g), path, &c)) != FLOE_OK)
        goto done;
    /* Compare everything first, and say everything that differs. */
    msg[0] = '\0';
    for (int i = 0; i < n; i++) {
        int k = floe_checkpoint_find(c, vars[i].name);
        char a[160], b[160];
        if (k < 0) {
            note(msg, sizeof(msg), &mlen, "variable '%s': not in the checkpoint", vars[i].name);
            missing++;
            continue;
        }
        if (c->entries[k].dtype != vars[i].dtype) {
            note(msg, sizeof(msg), &mlen, "variable '%s': dtype %s in the graph, %s in the "
                 "checkpoint", vars[i].name, floe_dtype_name(vars[i].dtype),
                 floe_dtype_name(c->entries[k].dtype));
            mismatched++;
        } else if (!shape_compatible(&vars[i].shape, &c->entries[k].shape)) {
            format_shape(vars[i].shape.dims, vars[i].shape.ndim, a, sizeof(a));
            format_shape(c->entries[k].shape.dims, c->entries[k].shape.ndim, b, sizeof(b));
            note(msg, sizeof(msg), &mlen, "variable '%s': shape %s in the graph, %s in the "
                 "checkpoint", vars[i].name, a, b);
            mismatched++;
        }
    }
    if (missing + mismatched > 0) {
        st = floe__keras_fail(mismatched > 0 ? FLOE_INVALID_ARGUMENT : FLOE_NOT_FOUND,
                              "checkpoint '%s' does not match the graph: %s", path, msg);
        goto done;
    }
    feeds = calloc(n > 0 ? (size_t)n : 1, sizeof(*feeds));
    vals = calloc(n > 0 ? (size_t)n : 1, sizeof(*vals));
    targets = calloc(n > 0 ? (size_t)n : 1, sizeof(*targets));
    if (feeds == NULL || vals == NULL || targets == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint '%s': out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        floe_node *ph;
        if ((st = floe_checkpoint_read_tensor(c, floe_checkpoint_find(c, vars[i].name),
                                              &vals[i])) != FLOE_OK ||
            (st = restore_nodes(g, &vars[i], &ph, &targets[i])) != FLOE_OK)
            goto done;
        feeds[i] = floe_out(ph, 0);
    }
    if (n > 0 && (st = floe_session_run(s, feeds, vals, n, NULL, 0, targets, n, NULL)) != FLOE_OK)
        st = lib_fail(st, "checkpoint: assigning the variables from", path);

done:
    for (int i = 0; vals != NULL && i < n; i++)
        floe_tensor_unref(vals[i]);
    free(vals);
    free(feeds);
    free(targets);
    floe_checkpoint_close(c);
    free(vars);
    return st;
}

/* ---- The pointer file and keep-last-N ---------------------------------------------------- */

/* The pointer file's kept names (oldest first) and latest. */
typedef struct pointer_list {
    char **names;
    int count;
    char *latest;
} pointer_list;

static void pointer_free(pointer_list *p) {
    for (int i = 0; i < p->count; i++)
        free(p->names[i]);
    free(p->names);
    free(p->latest);
    memset(p, 0, sizeof(*p));
}

/* A name the pointer file may hold: a plain file name, no separators, no "..". */
static bool plain_name(const char *s, size_t len) {
    if (len == 0 || len > 255 || (len <= 2 && s[0] == '.' && (len == 1 || s[1] == '.')))
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '\\' || s[i] == '\0' || (unsigned char)s[i] < 0x20)
            return false;
    return true;
}

static floe_status pointer_add(pointer_list *p, const char *s, size_t len) {
    char **nn = realloc(p->names, (size_t)(p->count + 1) * sizeof(*nn));
    if (nn == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint: out of memory");
    p->names = nn;
    if ((nn[p->count] = strndup(s, len)) == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint: out of memory");
    p->count++;
    return FLOE_OK;
}

/* Reads "<dir>/checkpoint"; an absent file is an empty list (FLOE_OK). */
static floe_status pointer_read(floe_context *ctx, const char *dir, pointer_list *p) {
    char path[PATH_LEN];
    void *data = NULL;
    size_t size = 0;
    floe_status st;

    memset(p, 0, sizeof(*p));
    snprintf(path, sizeof(path), "%s/%s", dir, POINTER_FILE);
    st = floe_fs_read_all(ctx, path, POINTER_MAX_BYTES, &data, &size);
    if (st == FLOE_NOT_FOUND)
        return FLOE_OK;
    if (st != FLOE_OK)
        return lib_fail(st, "checkpoint: reading", path);
    const char *s = data, *end = s + size;
    while (s < end && st == FLOE_OK) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *le = nl != NULL ? nl : end;
        size_t len = (size_t)(le - s);
        if (len > 8 && memcmp(s, "latest: ", 8) == 0 && plain_name(s + 8, len - 8) &&
            p->latest == NULL) {
            if ((p->latest = strndup(s + 8, len - 8)) == NULL)
                st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint: out of memory");
        } else if (len > 5 && memcmp(s, "all: ", 5) == 0 && plain_name(s + 5, len - 5)) {
            st = pointer_add(p, s + 5, len - 5);
        } else if (len > 0) {
            st = floe__keras_fail(FLOE_DATA_LOSS, "checkpoint pointer file '%s': malformed line "
                                  "'%.*s'", path, (int)(len > 80 ? 80 : len), s);
        }
        s = le + 1;
    }
    free(data);
    if (st == FLOE_OK && p->latest == NULL && p->count > 0)
        st = floe__keras_fail(FLOE_DATA_LOSS, "checkpoint pointer file '%s' has no 'latest' line",
                              path);
    if (st != FLOE_OK)
        pointer_free(p);
    return st;
}

FLOE_KERAS_API floe_status floe_checkpoint_save(floe_graph *g, floe_session *s, const char *dir,
                                                int64_t step, int keep_last, char *path,
                                                size_t path_len) {
    char name[64], file[PATH_LEN], ptr_path[PATH_LEN], *text = NULL;
    floe_context *ctx;
    pointer_list old, keep;
    size_t tlen = 0, tcap;
    int first_kept;
    floe_status st;

    if (path != NULL && path_len > 0)
        path[0] = '\0';
    memset(&old, 0, sizeof(old));
    memset(&keep, 0, sizeof(keep));
    if (g == NULL || s == NULL || dir == NULL || dir[0] == '\0' || step < 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_save: NULL argument or step < 0");
    ctx = floe_graph_context(g);
    snprintf(name, sizeof(name), "ckpt-%" PRId64 ".floeckpt", step);
    if ((size_t)snprintf(file, sizeof(file), "%s/%s", dir, name) >= sizeof(file) ||
        (size_t)snprintf(ptr_path, sizeof(ptr_path), "%s/%s", dir, POINTER_FILE) >= sizeof(ptr_path))
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_save: directory name too long");
    if ((st = floe_fs_mkdir(ctx, dir)) != FLOE_OK)
        return lib_fail(st, "checkpoint: cannot create directory", dir);
    if ((st = pointer_read(ctx, dir, &old)) != FLOE_OK)
        return st;
    /* 1. The checkpoint itself, committed atomically. */
    if ((st = floe_checkpoint_write(g, s, file)) != FLOE_OK)
        goto done;
    /* 1b. Without atomic rename (object stores: s3://) the commit is the store's own (a PUT
     * or CompleteMultipartUpload) and nothing is renamed: read the new file's header and
     * index back (checksums, extents against the size served) before the pointer names it. */
    uint32_t caps = 0;
    if (floe_fs_caps(ctx, file, &caps) == FLOE_OK && !(caps & FLOE_FS_CAP_ATOMIC_RENAME)) {
        floe_checkpoint *check = NULL;
        if ((st = floe_checkpoint_open(ctx, file, &check)) != FLOE_OK)
            goto done;
        floe_checkpoint_close(check);
    }
    /* 2. The pointer file: the kept names (the new one last), written atomically. */
    for (int i = 0; i < old.count && st == FLOE_OK; i++)
        if (strcmp(old.names[i], name) != 0)
            st = pointer_add(&keep, old.names[i], strlen(old.names[i]));
    if (st == FLOE_OK)
        st = pointer_add(&keep, name, strlen(name));
    if (st != FLOE_OK)
        goto done;
    first_kept = keep_last > 0 && keep.count > keep_last ? keep.count - keep_last : 0;
    tcap = 16 + strlen(name);
    for (int i = first_kept; i < keep.count; i++)
        tcap += 6 + strlen(keep.names[i]);
    if ((text = malloc(tcap)) == NULL) {
        st = floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "checkpoint: out of memory");
        goto done;
    }
    tlen += (size_t)snprintf(text + tlen, tcap - tlen, "latest: %s\n", name);
    for (int i = first_kept; i < keep.count; i++)
        tlen += (size_t)snprintf(text + tlen, tcap - tlen, "all: %s\n", keep.names[i]);
    if ((st = floe_fs_write_all(ctx, ptr_path, text, tlen)) != FLOE_OK) {
        st = lib_fail(st, "checkpoint: writing", ptr_path);
        goto done;
    }
    /* 3. Only now, the checkpoints beyond the newest keep_last. */
    for (int i = 0; i < first_kept; i++) {
        char victim[PATH_LEN];
        snprintf(victim, sizeof(victim), "%s/%s", dir, keep.names[i]);
        floe_fs_remove(ctx, victim);   /* best effort: a leftover file is harmless */
    }
    if (path != NULL && path_len > 0)
        snprintf(path, path_len, "%s", file);

done:
    free(text);
    pointer_free(&old);
    pointer_free(&keep);
    return st;
}

FLOE_KERAS_API floe_status floe_checkpoint_latest(floe_context *ctx, const char *dir, char *path,
                                                  size_t path_len) {
    pointer_list p;
    floe_status st;

    if (path != NULL && path_len > 0)
        path[0] = '\0';
    if (ctx == NULL || dir == NULL || path == NULL || path_len == 0)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_latest: NULL argument");
    if ((st = pointer_read(ctx, dir, &p)) != FLOE_OK)
        return st;
    if (p.latest == NULL) {
        pointer_free(&p);
        return floe__keras_fail(FLOE_NOT_FOUND, "no checkpoint in '%s'", dir);
    }
    if ((size_t)snprintf(path, path_len, "%s/%s", dir, p.latest) >= path_len) {
        path[0] = '\0';
        st = floe__keras_fail(FLOE_OUT_OF_RANGE, "checkpoint_latest: path buffer too small");
    }
    pointer_free(&p);
    return st;
}

FLOE_KERAS_API floe_status floe_checkpoint_restore_latest(floe_graph *g, floe_session *s,
                                                          const char *dir, char *path,
                                                          size_t path_len) {
    char file[PATH_LEN];
    floe_status st;

    if (path != NULL && path_len > 0)
        path[0] = '\0';
    if (g == NULL || s == NULL || dir == NULL)
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "checkpoint_restore_latest: NULL argument");
    if ((st = floe_checkpoint_latest(floe_graph_context(g), dir, file, sizeof(file))) != FLOE_OK)
        return st;
    if ((st = floe_checkpoint_restore(g, s, file)) != FLOE_OK)
        return st;
    if (path != NULL && path_len > 0)
        snprintf(path, path_len, "%s", file);
    return FLOE_OK;
}
