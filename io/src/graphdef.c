/*
 * graphdef.c - TensorFlow GraphDef export and import (floe/graphdef.h).
 *
 * Sections:
 *   - helpers: little-endian copies, an arena for the messages export builds;
 *   - export: floe tensors, shapes and attributes to TensorProto, TensorShapeProto and
 *     AttrValue, nodes to NodeDefs, packed by protobuf-c;
 *   - the wire scan: a walk over the raw bytes before protobuf-c decodes them, which
 *     checks the framing, counts nodes and bounds the nesting below each attribute
 *     (protobuf-c recurses once per nested message and has no depth limit of its own);
 *   - import: TensorProto/AttrValue decoding with byte budgets, input-name parsing, the
 *     op signatures (which inputs form a list), a topological order with cycle
 *     detection, and node building, first into a scratch graph, then into the caller's.
 */
#include <floe/graphdef.h>

#include <floe/floe.h>
#include <floe/fs.h>
#include <floe/tensor.h>

#include "graph.pb-c.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TensorFlow 2.21's GraphDef version: what the exported graphs mean is today's ops. */
#define GRAPHDEF_PRODUCER 2474

/* ---- Helpers ----------------------------------------------------------------------- */

static bool host_is_le(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Copies @n elements of @esize bytes between host order and little-endian. */
static void le_copy(void *dst, const void *src, size_t n, size_t esize) {
    if (host_is_le() || esize == 1) {
        memcpy(dst, src, n * esize);
        return;
    }
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < esize; k++)
            d[i * esize + k] = s[i * esize + esize - 1 - k];
}

/* Bytes of one scalar component in the wire layout (complex64: two f32). */
static size_t component_size(floe_dtype dt) {
    return dt == FLOE_DTYPE_COMPLEX64 ? 4 : floe_dtype_size(dt);
}

static bool dtype_known(int v) {
    if (v <= 0 || v > 127)
        return false;
    return strcmp(floe_dtype_name((floe_dtype)v), "invalid") != 0;
}

/* Every allocation of one export, freed at once. */
typedef struct arena_block {
    struct arena_block *next;
    max_align_t data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    if (n > SIZE_MAX - sizeof(arena_block))
        return NULL;
    arena_block *b = calloc(1, sizeof(arena_block) + (n ? n : 1));
    if (b == NULL)
        return NULL;
    b->next = a->head;
    a->head = b;
    return b->data;
}

static void *arena_array(arena *a, size_t n, size_t esize) {
    if (esize != 0 && n > SIZE_MAX / esize)
        return NULL;
    return arena_alloc(a, n * esize);
}

static char *arena_strdup(arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = arena_alloc(a, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void arena_free(arena *a) {
    while (a->head != NULL) {
        arena_block *b = a->head;
        a->head = b->next;
        free(b);
    }
}

/* ---- Export -------------------------------------------------------------------------- */

typedef struct exporter {
    arena ar;
    const char *node;  /* for messages */
    const char *attr;
} exporter;

static floe_status oom(void) {
    return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef export: out of memory");
}

static Floe__Tf__TensorShapeProto *export_dims(exporter *ex, const int64_t *dims, int ndim) {
    Floe__Tf__TensorShapeProto *sp = arena_alloc(&ex->ar, sizeof(*sp));
    if (sp == NULL)
        return NULL;
    floe__tf__tensor_shape_proto__init(sp);
    if (ndim < 0) {
        sp->unknown_rank = 1;
        return sp;
    }
    sp->dim = arena_array(&ex->ar, (size_t)ndim, sizeof(*sp->dim));
    if (sp->dim == NULL)
        return NULL;
    for (int i = 0; i < ndim; i++) {
        Floe__Tf__TensorShapeProto__Dim *d = arena_alloc(&ex->ar, sizeof(*d));
        if (d == NULL)
            return NULL;
        floe__tf__tensor_shape_proto__dim__init(d);
        d->size = dims[i];
        sp->dim[i] = d;
    }
    sp->n_dim = (size_t)ndim;
    return sp;
}

static floe_status export_tensor(exporter *ex, const floe_tensor *t0,
                                 Floe__Tf__TensorProto **out) {
    floe_tensor *host = NULL;
    const floe_tensor *t = t0;
    floe_dtype dt = floe_tensor_dtype(t0);

    *out = NULL;
    if (dt == FLOE_DTYPE_RESOURCE || floe_dtype_size(dt) == 0)
        return floe_set_error(FLOE_UNIMPLEMENTED,
                              "node '%s': attr '%s': a %s tensor has no GraphDef form",
                              ex->node, ex->attr, floe_dtype_name(dt));
    if (floe_tensor_device(t0) != NULL) {
        floe_status st = floe_tensor_to_host(t0, &host);
        if (st != FLOE_OK)
            return st;
        t = host;
    }
    Floe__Tf__TensorProto *tp = arena_alloc(&ex->ar, sizeof(*tp));
    if (tp == NULL)
        goto fail_oom;
    floe__tf__tensor_proto__init(tp);
    tp->dtype = (Floe__Tf__DataType)dt;
    tp->tensor_shape = export_dims(ex, floe_tensor_shape(t), floe_tensor_ndim(t));
    if (tp->tensor_shape == NULL)
        goto fail_oom;
    int64_t n = floe_tensor_num_elements(t);
    if (dt == FLOE_DTYPE_STRING) {
        tp->string_val = arena_array(&ex->ar, (size_t)n, sizeof(*tp->string_val));
        if (tp->string_val == NULL)
            goto fail_oom;
        for (int64_t i = 0; i < n; i++) {
            const char *s;
            size_t len;
            floe_status st = floe_tensor_get_string(t, i, &s, &len);
            if (st != FLOE_OK) {
                floe_tensor_unref(host);
                return st;
            }
            uint8_t *copy = arena_alloc(&ex->ar, len);
            if (copy == NULL)
                goto fail_oom;
            if (len > 0)
                memcpy(copy, s, len);
            tp->string_val[i].data = copy;
            tp->string_val[i].len = len;
        }
        tp->n_string_val = (size_t)n;
    } else if (n > 0) {
        size_t nbytes = floe_tensor_nbytes(t), cs = component_size(dt);
        uint8_t *buf = arena_alloc(&ex->ar, nbytes);
        if (buf == NULL)
            goto fail_oom;
        le_copy(buf, floe_tensor_data(t), nbytes / cs, cs);
        tp->tensor_content.data = buf;
        tp->tensor_content.len = nbytes;
    }
    floe_tensor_unref(host);
    *out = tp;
    return FLOE_OK;
fail_oom:
    floe_tensor_unref(host);
    return oom();
}

static floe_status export_attr(exporter *ex, const floe_attrs *as, const char *name,
                               Floe__Tf__AttrValue *v) {
    floe_attr_type kind = floe_attrs_type(as, name);
    floe_status st = FLOE_OK;

    floe__tf__attr_value__init(v);
    switch (kind) {
    case FLOE_ATTR_INT:
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_I;
        return floe_attrs_get_int(as, name, &v->i);
    case FLOE_ATTR_FLOAT:
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_F;
        return floe_attrs_get_float(as, name, &v->f);
    case FLOE_ATTR_BOOL: {
        int b = 0;
        st = floe_attrs_get_bool(as, name, &b);
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_B;
        v->b = b != 0;
        return st;
    }
    case FLOE_ATTR_STRING: {
        const char *s;
        size_t len;
        if ((st = floe_attrs_get_string(as, name, &s, &len)) != FLOE_OK)
            return st;
        uint8_t *copy = arena_alloc(&ex->ar, len);
        if (copy == NULL)
            return oom();
        if (len > 0)
            memcpy(copy, s, len);
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_S;
        v->s.data = copy;
        v->s.len = len;
        return FLOE_OK;
    }
    case FLOE_ATTR_TYPE: {
        floe_dtype d;
        if ((st = floe_attrs_get_type(as, name, &d)) != FLOE_OK)
            return st;
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_TYPE;
        v->type = (Floe__Tf__DataType)d;
        return FLOE_OK;
    }
    case FLOE_ATTR_SHAPE: {
        floe_shape sh;
        if ((st = floe_attrs_get_shape(as, name, &sh)) != FLOE_OK)
            return st;
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_SHAPE;
        v->shape = export_dims(ex, sh.dims, sh.ndim);
        return v->shape != NULL ? FLOE_OK : oom();
    }
    case FLOE_ATTR_TENSOR: {
        floe_tensor *t;
        if ((st = floe_attrs_get_tensor(as, name, &t)) != FLOE_OK)
            return st;
        v->value_case = FLOE__TF__ATTR_VALUE__VALUE_TENSOR;
        return export_tensor(ex, t, &v->tensor);
    }
    case FLOE_ATTR_LIST_INT:
    case FLOE_ATTR_LIST_FLOAT:
    case FLOE_ATTR_LIST_TYPE:
    case FLOE_ATTR_LIST_BOOL:
    case FLOE_ATTR_LIST_STRING:
    case FLOE_ATTR_LIST_SHAPE:
    case FLOE_ATTR_LIST_TENSOR:
        break;
    default:
        return floe_set_error(FLOE_UNIMPLEMENTED, "node '%s': attr '%s': unknown kind %d",
                              ex->node, name, (int)kind);
    }
    Floe__Tf__AttrValue__ListValue *lv = arena_alloc(&ex->ar, sizeof(*lv));
    if (lv == NULL)
        return oom();
    floe__tf__attr_value__list_value__init(lv);
    v->value_case = FLOE__TF__ATTR_VALUE__VALUE_LIST;
    v->list = lv;
    int n = 0;
    if (kind == FLOE_ATTR_LIST_INT) {
        const int64_t *p;
        if ((st = floe_attrs_get_int_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->i = arena_array(&ex->ar, (size_t)n, sizeof(*lv->i))) == NULL)
            return oom();
        if (n > 0)
            memcpy(lv->i, p, (size_t)n * sizeof(*p));
        lv->n_i = (size_t)n;
    } else if (kind == FLOE_ATTR_LIST_FLOAT) {
        const float *p;
        if ((st = floe_attrs_get_float_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->f = arena_array(&ex->ar, (size_t)n, sizeof(*lv->f))) == NULL)
            return oom();
        if (n > 0)
            memcpy(lv->f, p, (size_t)n * sizeof(*p));
        lv->n_f = (size_t)n;
    } else if (kind == FLOE_ATTR_LIST_BOOL) {
        const int *p;
        if ((st = floe_attrs_get_bool_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->b = arena_array(&ex->ar, (size_t)n, sizeof(*lv->b))) == NULL)
            return oom();
        for (int i = 0; i < n; i++)
            lv->b[i] = p[i] != 0;
        lv->n_b = (size_t)n;
    } else if (kind == FLOE_ATTR_LIST_STRING) {
        const floe_tstring *p;
        if ((st = floe_attrs_get_string_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->s = arena_array(&ex->ar, (size_t)n, sizeof(*lv->s))) == NULL)
            return oom();
        for (int i = 0; i < n; i++) {
            uint8_t *copy = arena_alloc(&ex->ar, p[i].size);
            if (copy == NULL)
                return oom();
            if (p[i].size > 0)
                memcpy(copy, p[i].data, p[i].size);
            lv->s[i].data = copy;
            lv->s[i].len = p[i].size;
        }
        lv->n_s = (size_t)n;
    } else if (kind == FLOE_ATTR_LIST_SHAPE) {
        const floe_shape *p;
        if ((st = floe_attrs_get_shape_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->shape = arena_array(&ex->ar, (size_t)n, sizeof(*lv->shape))) == NULL)
            return oom();
        for (int i = 0; i < n; i++)
            if ((lv->shape[i] = export_dims(ex, p[i].dims, p[i].ndim)) == NULL)
                return oom();
        lv->n_shape = (size_t)n;
    } else if (kind == FLOE_ATTR_LIST_TENSOR) {
        floe_tensor *const *p;
        if ((st = floe_attrs_get_tensor_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->tensor = arena_array(&ex->ar, (size_t)n, sizeof(*lv->tensor))) == NULL)
            return oom();
        for (int i = 0; i < n; i++)
            if ((st = export_tensor(ex, p[i], &lv->tensor[i])) != FLOE_OK)
                return st;
        lv->n_tensor = (size_t)n;
    } else {
        const floe_dtype *p;
        if ((st = floe_attrs_get_type_list(as, name, &p, &n)) != FLOE_OK)
            return st;
        if ((lv->type = arena_array(&ex->ar, (size_t)n, sizeof(*lv->type))) == NULL)
            return oom();
        for (int i = 0; i < n; i++)
            lv->type[i] = (Floe__Tf__DataType)p[i];
        lv->n_type = (size_t)n;
    }
    return FLOE_OK;
}

static char *export_input_name(exporter *ex, const floe_node *src, int index, bool control) {
    const char *name = floe_node_name(src);
    size_t n = strlen(name) + 16;
    char *s = arena_alloc(&ex->ar, n);
    if (s == NULL)
        return NULL;
    if (control)
        snprintf(s, n, "^%s", name);
    else if (index == 0)
        snprintf(s, n, "%s", name);
    else
        snprintf(s, n, "%s:%d", name, index);
    return s;
}

static floe_status export_node(exporter *ex, const floe_node *node, Floe__Tf__NodeDef **out) {
    Floe__Tf__NodeDef *nd = arena_alloc(&ex->ar, sizeof(*nd));
    if (nd == NULL)
        return oom();
    floe__tf__node_def__init(nd);
    ex->node = floe_node_name(node);
    nd->name = arena_strdup(&ex->ar, floe_node_name(node));
    nd->op = arena_strdup(&ex->ar, floe_node_op(node));
    nd->device = arena_strdup(&ex->ar, floe_node_device(node) ? floe_node_device(node) : "");
    int ni = floe_node_num_inputs(node), nc = floe_node_num_control_inputs(node);
    nd->input = arena_array(&ex->ar, (size_t)(ni + nc), sizeof(char *));
    if (nd->name == NULL || nd->op == NULL || nd->device == NULL || nd->input == NULL)
        return oom();
    for (int i = 0; i < ni; i++) {
        floe_output in = floe_node_input(node, i);
        if ((nd->input[i] = export_input_name(ex, in.node, in.index, false)) == NULL)
            return oom();
    }
    for (int i = 0; i < nc; i++)
        if ((nd->input[ni + i] = export_input_name(ex, floe_node_control_input(node, i), 0,
                                                   true)) == NULL)
            return oom();
    nd->n_input = (size_t)(ni + nc);

    const floe_attrs *as = floe_node_attrs(node);
    int na = floe_attrs_count(as);
    nd->attr = arena_array(&ex->ar, (size_t)na, sizeof(*nd->attr));
    if (nd->attr == NULL)
        return oom();
    for (int i = 0; i < na; i++) {
        const char *name = floe_attrs_name(as, i);
        Floe__Tf__NodeDef__AttrEntry *e = arena_alloc(&ex->ar, sizeof(*e));
        Floe__Tf__AttrValue *v = arena_alloc(&ex->ar, sizeof(*v));
        if (e == NULL || v == NULL)
            return oom();
        floe__tf__node_def__attr_entry__init(e);
        if ((e->key = arena_strdup(&ex->ar, name)) == NULL)
            return oom();
        ex->attr = name;
        floe_status st = export_attr(ex, as, name, v);
        if (st != FLOE_OK)
            return st;
        e->value = v;
        nd->attr[i] = e;
    }
    nd->n_attr = (size_t)na;
    *out = nd;
    return FLOE_OK;
}

floe_status floe_graphdef_export(const floe_graph *g, void **data, size_t *size) {
    exporter ex = {{NULL}, "", ""};
    Floe__Tf__GraphDef gd;
    Floe__Tf__VersionDef ver;
    floe_status st = FLOE_OK;

    /* The _init functions, not the INIT macros: these name the deprecated `version`
     * field, which clang warns about. */
    floe__tf__graph_def__init(&gd);
    floe__tf__version_def__init(&ver);

    if (data != NULL)
        *data = NULL;
    if (size != NULL)
        *size = 0;
    if (g == NULL || data == NULL || size == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_graphdef_export: NULL argument");
    int n = floe_graph_num_nodes(g);
    gd.node = arena_array(&ex.ar, (size_t)n, sizeof(*gd.node));
    if (gd.node == NULL) {
        st = oom();
        goto done;
    }
    for (int i = 0; i < n; i++)
        if ((st = export_node(&ex, floe_graph_node(g, i), &gd.node[i])) != FLOE_OK)
            goto done;
    gd.n_node = (size_t)n;
    ver.producer = GRAPHDEF_PRODUCER;
    gd.versions = &ver;
    size_t len = floe__tf__graph_def__get_packed_size(&gd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        st = oom();
        goto done;
    }
    floe__tf__graph_def__pack(&gd, buf);
    *data = buf;
    *size = len;
done:
    arena_free(&ex.ar);
    return st;
}

floe_status floe_graphdef_save(const floe_graph *g, const char *uri) {
    void *data;
    size_t size;

    if (g == NULL || uri == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_graphdef_save: NULL argument");
    floe_status st = floe_graphdef_export(g, &data, &size);
    if (st != FLOE_OK)
        return st;
    st = floe_fs_write_all(floe_graph_context(g), uri, data, size);
    free(data);
    return st;
}

/* ---- The wire scan --------------------------------------------------------------------- */

/* The messages whose nesting matters: every message field protobuf-c would recurse into
 * from a GraphDef. */
typedef enum wire_kind {
    W_GRAPH, W_NODE, W_NODE_ATTR, W_ATTR, W_LIST, W_TENSOR, W_SHAPE, W_DIM, W_FUNC,
    W_FUNC_ATTR, W_VERSION, W_LEAF
} wire_kind;

typedef struct wire_scan {
    const uint8_t *base;
    const floe_graphdef_options *opts;
    int64_t nodes;
} wire_scan;

static wire_kind wire_child(wire_kind k, uint32_t field) {
    switch (k) {
    case W_GRAPH: return field == 1 ? W_NODE : field == 4 ? W_VERSION : W_LEAF;
    case W_NODE: return field == 5 ? W_NODE_ATTR : W_LEAF;
    case W_NODE_ATTR: return field == 2 ? W_ATTR : W_LEAF;
    case W_ATTR:
        return field == 1 ? W_LIST : field == 7 ? W_SHAPE : field == 8 ? W_TENSOR
               : field == 10 ? W_FUNC : W_LEAF;
    case W_LIST:
        return field == 7 ? W_SHAPE : field == 8 ? W_TENSOR : field == 9 ? W_FUNC : W_LEAF;
    case W_TENSOR: return field == 2 ? W_SHAPE : W_LEAF;
    case W_SHAPE: return field == 2 ? W_DIM : W_LEAF;
    case W_FUNC: return field == 2 ? W_FUNC_ATTR : W_LEAF;
    case W_FUNC_ATTR: return field == 2 ? W_ATTR : W_LEAF;
    default: return W_LEAF;
    }
}

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static floe_status wire_bad(const wire_scan *ws, const uint8_t *at, const char *what) {
    return floe_set_error(FLOE_INVALID_ARGUMENT, "malformed GraphDef at byte %zu: %s",
                          (size_t)(at - ws->base), what);
}

/* @depth: the AttrValue nesting depth of the message being scanned (0 above attrs). */
static floe_status wire_walk(wire_scan *ws, const uint8_t *p, const uint8_t *end, wire_kind k,
                             int depth) {
    while (p < end) {
        const uint8_t *at = p;
        uint64_t tag, v;
        if (!wire_varint(&p, end, &tag))
            return wire_bad(ws, at, "truncated field tag");
        uint64_t field = tag >> 3;
        if (field == 0 || field > 536870911u)
            return wire_bad(ws, at, "field number out of range");
        switch (tag & 7) {
        case 0:
            if (!wire_varint(&p, end, &v))
                return wire_bad(ws, at, "truncated varint");
            break;
        case 1:
            if (end - p < 8)
                return wire_bad(ws, at, "truncated 64-bit field");
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return wire_bad(ws, at, "truncated 32-bit field");
            p += 4;
            break;
        case 2: {
            if (!wire_varint(&p, end, &v))
                return wire_bad(ws, at, "truncated length");
            if (v > (uint64_t)(end - p))
                return wire_bad(ws, at, "length runs past the end of the data");
            wire_kind child = wire_child(k, (uint32_t)field);
            if (k == W_GRAPH && child == W_NODE && ++ws->nodes > ws->opts->max_nodes)
                return floe_set_error(FLOE_INVALID_ARGUMENT,
                                      "GraphDef has more than %lld nodes (the limit)",
                                      (long long)ws->opts->max_nodes);
            if (child != W_LEAF) {
                int d = depth + (child == W_NODE || child == W_NODE_ATTR || child == W_VERSION
                                 ? 0 : 1);
                if (d > ws->opts->max_attr_depth)
                    return floe_set_error(FLOE_INVALID_ARGUMENT,
                                          "GraphDef at byte %zu: attribute nesting deeper "
                                          "than %d (the limit)",
                                          (size_t)(at - ws->base), ws->opts->max_attr_depth);
                floe_status st = wire_walk(ws, p, p + v, child, d);
                if (st != FLOE_OK)
                    return st;
            }
            p += v;
            break;
        }
        default:
            return wire_bad(ws, at, "unsupported wire type (groups are not used by GraphDef)");
        }
    }
    return FLOE_OK;
}

/* ---- Import: values ---------------------------------------------------------------------- */

void floe_graphdef_options_init(floe_graphdef_options *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->struct_size = sizeof(*opts);
    opts->max_nodes = 1000000;
    opts->max_attr_depth = 16;
    opts->max_tensor_bytes = (uint64_t)1 << 30;
    opts->max_total_bytes = (uint64_t)2 << 30;
}

typedef struct sig_arg {
    int kind;           /* 0 single, 1 "N * T" (count from an int attr), 2 a type-list attr */
    char attr[64];
} sig_arg;

typedef struct op_sig {
    char op[128];
    int nargs;
    sig_arg args[32];
    int nattrs;
    char attrs[48][64];  /* attr names the op defines */
} op_sig;

typedef struct importer {
    floe_graph *target;
    floe_context *ctx;
    const Floe__Tf__GraphDef *gd;
    floe_graphdef_options opts;
    uint64_t tensor_bytes;  /* decoded so far in this pass */
    /* per node: resolved inputs */
    int **in_node;      /* source node index per input string, -1 none */
    int **in_index;     /* output index, -1 for a control input */
    floe_node **built;  /* in the graph being built */
    int *sig;           /* per node: index into sigs */
    op_sig *sigs;
    int nsigs, capsigs;
    /* name hash */
    int *slots;
    size_t nslots;
} importer;

static const char *node_name(const importer *im, size_t i) {
    return im->gd->node[i]->name;
}

static floe_status dims_from_proto(const Floe__Tf__TensorShapeProto *sp, bool allow_unknown,
                                   int64_t *dims, int *ndim, const char *node,
                                   const char *attr) {
    if (sp == NULL) {
        *ndim = 0;
        return FLOE_OK;
    }
    if (sp->unknown_rank) {
        if (!allow_unknown || sp->n_dim != 0)
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "node '%s': attr '%s': %s", node, attr,
                                  allow_unknown ? "a shape of unknown rank lists dimensions"
                                                : "a tensor's shape must be fully known");
        *ndim = -1;
        return FLOE_OK;
    }
    if (sp->n_dim > FLOE_MAX_DIMS)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': rank %zu exceeds Floe's %d", node, attr,
                              sp->n_dim, FLOE_MAX_DIMS);
    for (size_t i = 0; i < sp->n_dim; i++) {
        int64_t d = sp->dim[i]->size;
        if (d < -1 || (d == -1 && !allow_unknown))
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "node '%s': attr '%s': bad extent %lld in dimension %zu",
                                  node, attr, (long long)d, i);
        dims[i] = d;
    }
    *ndim = (int)sp->n_dim;
    return FLOE_OK;
}

/* The number of values a typed repeated field holds for @dt, and whether the dtype has
 * one at all. */
static bool typed_count(const Floe__Tf__TensorProto *tp, floe_dtype dt, size_t *count) {
    switch (dt) {
    case FLOE_DTYPE_F32: *count = tp->n_float_val; return true;
    case FLOE_DTYPE_F64: *count = tp->n_double_val; return true;
    case FLOE_DTYPE_I32: case FLOE_DTYPE_U8: case FLOE_DTYPE_I16: case FLOE_DTYPE_I8:
    case FLOE_DTYPE_U16:
        *count = tp->n_int_val; return true;
    case FLOE_DTYPE_I64: *count = tp->n_int64_val; return true;
    case FLOE_DTYPE_BOOL: *count = tp->n_bool_val; return true;
    case FLOE_DTYPE_F16: case FLOE_DTYPE_BF16: *count = tp->n_half_val; return true;
    case FLOE_DTYPE_COMPLEX64: *count = tp->n_scomplex_val / 2; return true;
    case FLOE_DTYPE_U32: *count = tp->n_uint32_val; return true;
    case FLOE_DTYPE_U64: *count = tp->n_uint64_val; return true;
    case FLOE_DTYPE_STRING: *count = tp->n_string_val; return true;
    default: return false;
    }
}

/* Stores value @k of the typed field into element @i of @dst. */
static void typed_store(const Floe__Tf__TensorProto *tp, floe_dtype dt, size_t k, void *dst,
                        int64_t i) {
    switch (dt) {
    case FLOE_DTYPE_F32: ((float *)dst)[i] = tp->float_val[k]; break;
    case FLOE_DTYPE_F64: ((double *)dst)[i] = tp->double_val[k]; break;
    case FLOE_DTYPE_I32: ((int32_t *)dst)[i] = tp->int_val[k]; break;
    case FLOE_DTYPE_U8: ((uint8_t *)dst)[i] = (uint8_t)tp->int_val[k]; break;
    case FLOE_DTYPE_I16: ((int16_t *)dst)[i] = (int16_t)tp->int_val[k]; break;
    case FLOE_DTYPE_I8: ((int8_t *)dst)[i] = (int8_t)tp->int_val[k]; break;
    case FLOE_DTYPE_U16: ((uint16_t *)dst)[i] = (uint16_t)tp->int_val[k]; break;
    case FLOE_DTYPE_I64: ((int64_t *)dst)[i] = tp->int64_val[k]; break;
    case FLOE_DTYPE_BOOL: ((uint8_t *)dst)[i] = tp->bool_val[k] ? 1 : 0; break;
    case FLOE_DTYPE_F16: case FLOE_DTYPE_BF16:
        ((uint16_t *)dst)[i] = (uint16_t)tp->half_val[k];
        break;
    case FLOE_DTYPE_COMPLEX64:
        ((float *)dst)[2 * i] = tp->scomplex_val[2 * k];
        ((float *)dst)[2 * i + 1] = tp->scomplex_val[2 * k + 1];
        break;
    case FLOE_DTYPE_U32: ((uint32_t *)dst)[i] = tp->uint32_val[k]; break;
    case FLOE_DTYPE_U64: ((uint64_t *)dst)[i] = tp->uint64_val[k]; break;
    default: break;
    }
}

static floe_status tensor_from_proto(importer *im, const Floe__Tf__TensorProto *tp,
                                     const char *node, const char *attr, floe_tensor **out) {
    int64_t dims[FLOE_MAX_DIMS];
    int ndim = 0;
    floe_dtype dt = (floe_dtype)tp->dtype;
    size_t count = 0;

    *out = NULL;
    if (!dtype_known((int)tp->dtype) || dt == FLOE_DTYPE_RESOURCE || !typed_count(tp, dt, &count))
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': tensor dtype %d is not supported", node,
                              attr, (int)tp->dtype);
    floe_status st = dims_from_proto(tp->tensor_shape, false, dims, &ndim, node, attr);
    if (st != FLOE_OK)
        return st;
    uint64_t numel = 1, esize = floe_dtype_size(dt);
    uint64_t wire_esize = dt == FLOE_DTYPE_STRING ? 16 : esize;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] != 0 && numel > im->opts.max_tensor_bytes / (uint64_t)dims[i])
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "node '%s': attr '%s': tensor larger than %llu bytes (the "
                                  "limit)", node, attr,
                                  (unsigned long long)im->opts.max_tensor_bytes);
        numel *= (uint64_t)dims[i];
    }
    uint64_t nbytes = numel * wire_esize;
    if (numel > im->opts.max_tensor_bytes / wire_esize)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': tensor of %llu elements is larger than "
                              "%llu bytes (the limit)", node, attr,
                              (unsigned long long)numel,
                              (unsigned long long)im->opts.max_tensor_bytes);
    if (nbytes > im->opts.max_total_bytes - im->tensor_bytes)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': the graph's constants exceed %llu bytes "
                              "(the limit)", node, attr,
                              (unsigned long long)im->opts.max_total_bytes);
    im->tensor_bytes += nbytes;
    if (tp->tensor_content.len != 0 && dt == FLOE_DTYPE_STRING)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': string tensors in tensor_content are not "
                              "supported", node, attr);
    if (tp->tensor_content.len != 0 && tp->tensor_content.len != numel * esize)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': tensor_content holds %zu bytes, the "
                              "shape needs %llu", node, attr, tp->tensor_content.len,
                              (unsigned long long)(numel * esize));
    if (tp->tensor_content.len == 0 && count > numel)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "node '%s': attr '%s': %zu values for a tensor of %llu elements",
                              node, attr, count, (unsigned long long)numel);
    floe_tensor *t;
    if ((st = floe_tensor_new(dt, dims, ndim, &t)) != FLOE_OK)
        return st;
    void *data = floe_tensor_data(t);
    if (tp->tensor_content.len != 0) {
        size_t cs = component_size(dt);
        le_copy(data, tp->tensor_content.data, tp->tensor_content.len / cs, cs);
    } else if (count > 0) {
        /* TensorFlow's rule: values past the last given repeat the last one. */
        for (uint64_t i = 0; i < numel; i++) {
            size_t k = i < count ? (size_t)i : count - 1;
            if (dt == FLOE_DTYPE_STRING)
                st = floe_tensor_set_string(t, (int64_t)i, tp->string_val[k].data,
                                            tp->string_val[k].len);
            else
                typed_store(tp, dt, k, data, (int64_t)i);
            if (st != FLOE_OK) {
                floe_tensor_unref(t);
                return st;
            }
        }
    }
    *out = t;
    return FLOE_OK;
}

static floe_status attr_bad(const char *node, const char *attr, const char *what) {
    return floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s': attr '%s': %s", node, attr, what);
}

static floe_status set_list(importer *im, floe_attrs *as, const char *node, const char *name,
                            const Floe__Tf__AttrValue__ListValue *lv) {
    int kinds = (lv->n_s > 0) + (lv->n_i > 0) + (lv->n_f > 0) + (lv->n_b > 0) +
                (lv->n_type > 0) + (lv->n_shape > 0) + (lv->n_tensor > 0) + (lv->n_func > 0);
    floe_status st = FLOE_OK;

    if (kinds > 1)
        return attr_bad(node, name, "a list mixes value kinds");
    size_t n = lv->n_s + lv->n_i + lv->n_f + lv->n_b + lv->n_type + lv->n_shape + lv->n_tensor +
               lv->n_func;
    if (n > INT_MAX / 16)
        return attr_bad(node, name, "list too long");
    if (kinds == 0 || lv->n_i > 0)
        return floe_attrs_set_int_list(as, name, lv->i, (int)lv->n_i);
    if (lv->n_f > 0)
        return floe_attrs_set_float_list(as, name, lv->f, (int)lv->n_f);
    if (lv->n_func > 0)
        return attr_bad(node, name, "lists of functions are not supported");
    if (lv->n_b > 0) {
        int *b = malloc(n * sizeof(int));
        if (b == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        for (size_t i = 0; i < n; i++)
            b[i] = lv->b[i] != 0;
        st = floe_attrs_set_bool_list(as, name, b, (int)n);
        free(b);
        return st;
    }
    if (lv->n_type > 0) {
        for (size_t i = 0; i < n; i++)
            if (!dtype_known((int)lv->type[i]))
                return floe_set_error(FLOE_INVALID_ARGUMENT,
                                      "node '%s': attr '%s': unknown dtype %d", node, name,
                                      (int)lv->type[i]);
        floe_dtype *t = malloc(n * sizeof(floe_dtype));
        if (t == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        for (size_t i = 0; i < n; i++)
            t[i] = (floe_dtype)lv->type[i];
        st = floe_attrs_set_type_list(as, name, t, (int)n);
        free(t);
        return st;
    }
    if (lv->n_s > 0) {
        const char **s = malloc(n * sizeof(char *));
        size_t *lens = malloc(n * sizeof(size_t));
        if (s != NULL && lens != NULL) {
            for (size_t i = 0; i < n; i++) {
                s[i] = (const char *)lv->s[i].data;
                lens[i] = lv->s[i].len;
            }
            st = floe_attrs_set_string_list(as, name, s, lens, (int)n);
        } else {
            st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        }
        free(s);
        free(lens);
        return st;
    }
    if (lv->n_shape > 0) {
        floe_shape *sh = calloc(n, sizeof(floe_shape));
        if (sh == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        for (size_t i = 0; i < n && st == FLOE_OK; i++) {
            int nd;
            st = dims_from_proto(lv->shape[i], true, sh[i].dims, &nd, node, name);
            sh[i].ndim = nd;
        }
        if (st == FLOE_OK)
            st = floe_attrs_set_shape_list(as, name, sh, (int)n);
        free(sh);
        return st;
    }
    floe_tensor **ts = calloc(n, sizeof(floe_tensor *));
    if (ts == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
    for (size_t i = 0; i < n && st == FLOE_OK; i++)
        st = tensor_from_proto(im, lv->tensor[i], node, name, &ts[i]);
    if (st == FLOE_OK)
        st = floe_attrs_set_tensor_list(as, name, ts, (int)n);
    for (size_t i = 0; i < n; i++)
        floe_tensor_unref(ts[i]);
    free(ts);
    return st;
}

static floe_status set_attr(importer *im, floe_attrs *as, const char *node, const char *name,
                            const Floe__Tf__AttrValue *v) {
    floe_status st;

    switch (v->value_case) {
    case FLOE__TF__ATTR_VALUE__VALUE_S:
        return floe_attrs_set_string(as, name, v->s.data, v->s.len);
    case FLOE__TF__ATTR_VALUE__VALUE_I:
        return floe_attrs_set_int(as, name, v->i);
    case FLOE__TF__ATTR_VALUE__VALUE_F:
        return floe_attrs_set_float(as, name, v->f);
    case FLOE__TF__ATTR_VALUE__VALUE_B:
        return floe_attrs_set_bool(as, name, v->b != 0);
    case FLOE__TF__ATTR_VALUE__VALUE_TYPE:
        if (!dtype_known((int)v->type))
            return floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s': attr '%s': unknown dtype %d",
                                  node, name, (int)v->type);
        return floe_attrs_set_type(as, name, (floe_dtype)v->type);
    case FLOE__TF__ATTR_VALUE__VALUE_SHAPE: {
        int64_t dims[FLOE_MAX_DIMS];
        int nd;
        if ((st = dims_from_proto(v->shape, true, dims, &nd, node, name)) != FLOE_OK)
            return st;
        return floe_attrs_set_shape(as, name, dims, nd);
    }
    case FLOE__TF__ATTR_VALUE__VALUE_TENSOR: {
        floe_tensor *t;
        if ((st = tensor_from_proto(im, v->tensor, node, name, &t)) != FLOE_OK)
            return st;
        st = floe_attrs_set_tensor(as, name, t);
        floe_tensor_unref(t);
        return st;
    }
    case FLOE__TF__ATTR_VALUE__VALUE_LIST:
        return set_list(im, as, node, name, v->list);
    case FLOE__TF__ATTR_VALUE__VALUE_FUNC:
        return attr_bad(node, name, "function attributes are not supported");
    case FLOE__TF__ATTR_VALUE__VALUE_PLACEHOLDER:
        return attr_bad(node, name, "placeholder attributes (function bodies) are not supported");
    default:
        return attr_bad(node, name, "the attribute has no value");
    }
}

/* ---- Import: names, inputs, signatures, order ------------------------------------------- */

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int name_find_n(const importer *im, const char *s, size_t len) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    for (size_t k = h & (im->nslots - 1);; k = (k + 1) & (im->nslots - 1)) {
        int i = im->slots[k];
        if (i < 0)
            return -1;
        const char *nm = node_name(im, (size_t)i);
        if (strncmp(nm, s, len) == 0 && nm[len] == '\0')
            return i;
    }
}

static floe_status names_index(importer *im) {
    size_t n = im->gd->n_node, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    im->slots = malloc(cap * sizeof(int));
    if (im->slots == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
    for (size_t k = 0; k < cap; k++)
        im->slots[k] = -1;
    im->nslots = cap;
    for (size_t i = 0; i < n; i++) {
        const Floe__Tf__NodeDef *nd = im->gd->node[i];
        if (nd->name[0] == '\0')
            return floe_set_error(FLOE_INVALID_ARGUMENT, "GraphDef node %zu has no name", i);
        if (nd->op[0] == '\0')
            return floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s' has no op", nd->name);
        if (floe_graph_find(im->target, nd->name) != NULL)
            return floe_set_error(FLOE_ALREADY_EXISTS,
                                  "node '%s': the graph already has a node of that name",
                                  nd->name);
        if (name_find_n(im, nd->name, strlen(nd->name)) >= 0)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s' is defined twice", nd->name);
        size_t k = str_hash(nd->name) & (cap - 1);
        while (im->slots[k] >= 0)
            k = (k + 1) & (cap - 1);
        im->slots[k] = (int)i;
    }
    return FLOE_OK;
}

/* Resolves the input strings of every node to (node index, output index or -1). */
static floe_status inputs_resolve(importer *im) {
    size_t n = im->gd->n_node;
    im->in_node = calloc(n, sizeof(int *));
    im->in_index = calloc(n, sizeof(int *));
    if (im->in_node == NULL || im->in_index == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
    for (size_t i = 0; i < n; i++) {
        const Floe__Tf__NodeDef *nd = im->gd->node[i];
        if (nd->n_input > (size_t)INT_MAX / 2)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s': too many inputs", nd->name);
        im->in_node[i] = malloc((nd->n_input + 1) * sizeof(int));
        im->in_index[i] = malloc((nd->n_input + 1) * sizeof(int));
        if (im->in_node[i] == NULL || im->in_index[i] == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        bool seen_control = false;
        for (size_t k = 0; k < nd->n_input; k++) {
            const char *s = nd->input[k];
            size_t len = strlen(s);
            int index = 0;
            if (s[0] == '^') {
                s++;
                len--;
                index = -1;
                seen_control = true;
            } else {
                if (seen_control)
                    return floe_set_error(FLOE_INVALID_ARGUMENT,
                                          "node '%s': data input '%s' follows a control input",
                                          nd->name, s);
                const char *colon = strrchr(s, ':');
                if (colon != NULL && colon[1] != '\0' &&
                    strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
                    if (strlen(colon + 1) > 6)
                        return floe_set_error(FLOE_INVALID_ARGUMENT,
                                              "node '%s': input '%s': output index too large",
                                              nd->name, s);
                    index = atoi(colon + 1);
                    len = (size_t)(colon - s);
                }
            }
            int src = len > 0 ? name_find_n(im, s, len) : -1;
            if (src < 0)
                return floe_set_error(FLOE_INVALID_ARGUMENT,
                                      "node '%s': input '%s' names no node of the GraphDef",
                                      nd->name, nd->input[k]);
            im->in_node[i][k] = src;
            im->in_index[i][k] = index;
        }
    }
    return FLOE_OK;
}

static void heap_push(int *h, size_t *n, int v) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static void heap_pop(int *h, size_t *n) {
    int v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
}

/* Kahn's algorithm over the input edges: fills @order, or names a node on a cycle. */
static floe_status topo_order(importer *im, int *order) {
    size_t n = im->gd->n_node, nedges = 0;
    floe_status st = FLOE_OK;

    for (size_t i = 0; i < n; i++)
        nedges += im->gd->node[i]->n_input;
    int *indeg = calloc(n + 1, sizeof(int));
    size_t *start = calloc(n + 1, sizeof(size_t));
    int *cons = malloc((nedges + 1) * sizeof(int));
    if (indeg == NULL || start == NULL || cons == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < im->gd->node[i]->n_input; k++)
            start[im->in_node[i][k]]++;
    size_t acc = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t c = start[i];
        start[i] = acc;
        acc += c;
    }
    /* start[s] is now where consumer list of s begins; fill with a moving cursor. */
    size_t *cursor = malloc((n + 1) * sizeof(size_t));
    if (cursor == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        goto done;
    }
    memcpy(cursor, start, (n + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < im->gd->node[i]->n_input; k++) {
            cons[cursor[im->in_node[i][k]]++] = (int)i;
            indeg[i]++;
        }
    free(cursor);
    /* Ready nodes leave a min-heap by GraphDef position, so a GraphDef already in
     * topological order keeps its order (and a round trip its bytes). */
    int *heap = malloc((n + 1) * sizeof(int));
    if (heap == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        goto done;
    }
    size_t nheap = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            heap[nheap++] = (int)i;  /* ascending: already a heap */
    while (nheap > 0) {
        int s = heap[0];
        order[tail++] = s;
        heap_pop(heap, &nheap);
        for (size_t e = start[s]; e < start[s + 1]; e++)
            if (--indeg[cons[e]] == 0)
                heap_push(heap, &nheap, cons[e]);
    }
    free(heap);
    if (tail < n) {
        size_t bad = 0;
        while (indeg[bad] == 0)
            bad++;
        st = floe_set_error(FLOE_INVALID_ARGUMENT,
                            "GraphDef has a cycle: node '%s' depends on itself through its "
                            "inputs", node_name(im, bad));
    }
done:
    free(indeg);
    free(start);
    free(cons);
    return st;
}

/* Reads an op's input arguments and attr names from floe_context_describe_op()'s text:
 * "  inputs:\n    NAME: SPEC\n" ... "  attrs:\n    NAME: KIND ...\n". */
static floe_status sig_parse(const char *text, const char *op, op_sig *sig) {
    memset(sig, 0, sizeof(*sig));
    snprintf(sig->op, sizeof(sig->op), "%s", op);
    char typelists[48][64];
    int ntl = 0;
    const char *sec = NULL;
    for (const char *line = text; line != NULL && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ') {
            sec = strncmp(line, "  inputs:", 9) == 0 ? "i"
                  : strncmp(line, "  attrs:", 8) == 0 ? "a" : NULL;
        } else if (sec != NULL && len > 4 && strncmp(line, "    ", 4) == 0 && line[4] != ' ') {
            const char *colon = memchr(line, ':', len);
            if (colon != NULL) {
                const char *nm = line + 4, *spec = colon + 2;
                size_t nlen = (size_t)(colon - nm);
                size_t slen = len > (size_t)(spec - line) ? len - (size_t)(spec - line) : 0;
                if (nlen >= 64)
                    nlen = 63;
                if (sec[0] == 'i' && sig->nargs < 32) {
                    sig_arg *a = &sig->args[sig->nargs++];
                    const char *star = slen > 0 ? memchr(spec, '*', slen) : NULL;
                    if (star != NULL && star > spec + 1) {
                        a->kind = 1;
                        snprintf(a->attr, sizeof(a->attr), "%.*s", (int)(star - 1 - spec), spec);
                    } else {
                        a->kind = 0;
                        snprintf(a->attr, sizeof(a->attr), "%.*s", (int)(slen < 63 ? slen : 63),
                                 spec);
                    }
                } else if (sec[0] == 'a' && sig->nattrs < 48) {
                    snprintf(sig->attrs[sig->nattrs++], 64, "%.*s", (int)nlen, nm);
                    if (slen >= 10 && strncmp(spec, "list(type)", 10) == 0 && ntl < 48)
                        snprintf(typelists[ntl++], 64, "%.*s", (int)nlen, nm);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    for (int i = 0; i < sig->nargs; i++)
        for (int k = 0; k < ntl && sig->args[i].kind == 0; k++)
            if (strcmp(sig->args[i].attr, typelists[k]) == 0)
                sig->args[i].kind = 2;
    return FLOE_OK;
}

static floe_status sig_get(importer *im, const char *node, const char *op, int *out) {
    for (int i = 0; i < im->nsigs; i++)
        if (strcmp(im->sigs[i].op, op) == 0) {
            *out = i;
            return FLOE_OK;
        }
    if (strlen(op) >= sizeof(im->sigs[0].op))
        return floe_set_error(FLOE_NOT_FOUND, "node '%s': op '%.64s...' is not registered",
                              node, op);
    if (im->nsigs == im->capsigs) {
        int cap = im->capsigs ? 2 * im->capsigs : 16;
        op_sig *grown = realloc(im->sigs, (size_t)cap * sizeof(op_sig));
        if (grown == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        im->sigs = grown;
        im->capsigs = cap;
    }
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    if (text == NULL)
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
    floe_status st = floe_context_describe_op(im->ctx, op, text, cap);
    if (st == FLOE_NOT_FOUND) {
        free(text);
        return floe_set_error(FLOE_NOT_FOUND,
                              "node '%s': op '%s' is not registered (no loaded plugin defines "
                              "it; `floe ops` lists those that are)", node, op);
    }
    if (st != FLOE_OK) {
        free(text);
        return st;
    }
    sig_parse(text, op, &im->sigs[im->nsigs]);
    free(text);
    *out = im->nsigs++;
    return FLOE_OK;
}

static bool sig_has_attr(const op_sig *sig, const char *name) {
    for (int i = 0; i < sig->nattrs; i++)
        if (strcmp(sig->attrs[i], name) == 0)
            return true;
    return false;
}

/* TensorFlow attributes that do not change what a node computes, dropped when the op
 * definition lacks them: internal "_" ones, MatMul's gradient hints, and an empty
 * explicit_paddings (MaxPool's, meaningful only with padding "EXPLICIT"). */
static bool attr_ignorable(const op_sig *sig, const char *name, const Floe__Tf__AttrValue *v) {
    if (sig_has_attr(sig, name))
        return false;
    if (name[0] == '_')
        return true;
    if (strcmp(name, "explicit_paddings") == 0 && v != NULL &&
        v->value_case == FLOE__TF__ATTR_VALUE__VALUE_LIST && v->list->n_i == 0 &&
        v->list->n_s + v->list->n_f + v->list->n_b + v->list->n_type + v->list->n_shape +
                v->list->n_tensor + v->list->n_func == 0)
        return true;
    if ((strcmp(name, "grad_a") == 0 || strcmp(name, "grad_b") == 0) &&
        (strcmp(sig->op, "MatMul") == 0 || strncmp(sig->op, "BatchMatMul", 11) == 0))
        return true;
    return false;
}

static const Floe__Tf__AttrValue *nd_attr(const Floe__Tf__NodeDef *nd, const char *name) {
    const Floe__Tf__AttrValue *v = NULL;
    for (size_t i = 0; i < nd->n_attr; i++)
        if (strcmp(nd->attr[i]->key, name) == 0)
            v = nd->attr[i]->value;
    return v;
}

/* The number of inputs argument @a of node @nd takes. */
static floe_status arg_count(const Floe__Tf__NodeDef *nd, const sig_arg *a, size_t *count) {
    if (a->kind == 0) {
        *count = 1;
        return FLOE_OK;
    }
    const Floe__Tf__AttrValue *v = nd_attr(nd, a->attr);
    if (a->kind == 1 && v != NULL && v->value_case == FLOE__TF__ATTR_VALUE__VALUE_I &&
        v->i >= 0 && v->i <= INT_MAX / 2) {
        *count = (size_t)v->i;
        return FLOE_OK;
    }
    if (a->kind == 2 && v != NULL && v->value_case == FLOE__TF__ATTR_VALUE__VALUE_LIST) {
        *count = v->list->n_type;
        return FLOE_OK;
    }
    return floe_set_error(FLOE_INVALID_ARGUMENT,
                          "node '%s' (%s): attr '%s' (the length of an input list) is missing "
                          "or not a %s", nd->name, nd->op, a->attr,
                          a->kind == 1 ? "non-negative int" : "list of types");
}

/* ---- Import: building ------------------------------------------------------------------- */

static floe_status build_node(importer *im, floe_graph *g, size_t i) {
    const Floe__Tf__NodeDef *nd = im->gd->node[i];
    const op_sig *sig = &im->sigs[im->sig[i]];
    floe_node_builder *b = NULL;
    floe_output *list = NULL;
    floe_status st = floe_node_builder_new(g, nd->op, nd->name, &b);

    if (st != FLOE_OK)
        return st;
    if (nd->device[0] != '\0')
        floe_node_builder_set_device(b, nd->device);
    floe_attrs *as = floe_node_builder_attrs(b);
    for (size_t k = 0; k < nd->n_attr; k++) {
        const char *name = nd->attr[k]->key;
        if (name[0] == '\0') {
            st = floe_set_error(FLOE_INVALID_ARGUMENT, "node '%s': an attribute has no name",
                                nd->name);
            goto fail;
        }
        if (attr_ignorable(sig, name, nd->attr[k]->value))
            continue;
        if (nd->attr[k]->value == NULL) {
            st = attr_bad(nd->name, name, "the attribute has no value");
            goto fail;
        }
        if ((st = set_attr(im, as, nd->name, name, nd->attr[k]->value)) != FLOE_OK)
            goto fail;
    }
    size_t ndata = 0;
    while (ndata < nd->n_input && im->in_index[i][ndata] >= 0)
        ndata++;
    list = malloc((ndata + 1) * sizeof(floe_output));
    if (list == NULL) {
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
        goto fail;
    }
    for (size_t k = 0; k < ndata; k++) {
        floe_node *src = im->built[im->in_node[i][k]];
        if (im->in_index[i][k] >= floe_node_num_outputs(src)) {
            st = floe_set_error(FLOE_INVALID_ARGUMENT,
                                "node '%s': input '%s': node '%s' (%s) has %d outputs", nd->name,
                                nd->input[k], floe_node_name(src), floe_node_op(src),
                                floe_node_num_outputs(src));
            goto fail;
        }
        list[k] = floe_out(src, im->in_index[i][k]);
    }
    size_t used = 0;
    for (int a = 0; a < sig->nargs; a++) {
        size_t cnt = 0;
        if ((st = arg_count(nd, &sig->args[a], &cnt)) != FLOE_OK)
            goto fail;
        if (cnt > ndata - used) {
            used = ndata + 1;
            break;
        }
        if (sig->args[a].kind == 0)
            floe_node_builder_add_input(b, list[used]);
        else
            floe_node_builder_add_input_list(b, list + used, (int)cnt);
        used += cnt;
    }
    if (used != ndata) {
        st = floe_set_error(FLOE_INVALID_ARGUMENT,
                            "node '%s' (%s): %zu data inputs given, the op definition and the "
                            "node's attrs do not take that many", nd->name, nd->op, ndata);
        goto fail;
    }
    for (size_t k = ndata; k < nd->n_input; k++)
        floe_node_builder_add_control_input(b, im->built[im->in_node[i][k]]);
    free(list);
    return floe_node_builder_finish(b, &im->built[i]);
fail:
    free(list);
    floe_node_builder_free(b);
    return st;
}

static floe_status build_all(importer *im, floe_graph *g, const int *order) {
    im->tensor_bytes = 0;
    for (size_t k = 0; k < im->gd->n_node; k++) {
        floe_status st = build_node(im, g, (size_t)order[k]);
        if (st != FLOE_OK)
            return st;
    }
    return FLOE_OK;
}

static floe_status import_checked(importer *im) {
    size_t n = im->gd->n_node;
    floe_status st;
    int *order = malloc((n + 1) * sizeof(int));
    im->built = calloc(n + 1, sizeof(floe_node *));
    im->sig = calloc(n + 1, sizeof(int));
    if (order == NULL || im->built == NULL || im->sig == NULL) {
        free(order);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "GraphDef import: out of memory");
    }
    if ((st = names_index(im)) != FLOE_OK || (st = inputs_resolve(im)) != FLOE_OK ||
        (st = topo_order(im, order)) != FLOE_OK)
        goto done;
    for (size_t i = 0; i < n; i++)
        if ((st = sig_get(im, node_name(im, i), im->gd->node[i]->op, &im->sig[i])) != FLOE_OK)
            goto done;
    floe_graph *scratch;
    if ((st = floe_graph_new(im->ctx, &scratch)) != FLOE_OK)
        goto done;
    st = build_all(im, scratch, order);
    floe_graph_free(scratch);
    if (st == FLOE_OK)
        st = build_all(im, im->target, order);
done:
    free(order);
    return st;
}

floe_status floe_graphdef_import_v2(floe_graph *g, const void *data, size_t size,
                                    const floe_graphdef_options *opts) {
    importer im;
    floe_status st;

    memset(&im, 0, sizeof(im));
    if (g == NULL || (data == NULL && size > 0))
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_graphdef_import: NULL argument");
    floe_graphdef_options_init(&im.opts);
    if (opts != NULL) {
        if (opts->struct_size < offsetof(floe_graphdef_options, max_total_bytes) +
                                    sizeof(opts->max_total_bytes))
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "floe_graphdef_import: options struct_size %zu too small",
                                  opts->struct_size);
        im.opts.max_nodes = opts->max_nodes;
        im.opts.max_attr_depth = opts->max_attr_depth;
        im.opts.max_tensor_bytes = opts->max_tensor_bytes;
        im.opts.max_total_bytes = opts->max_total_bytes;
        if (opts->max_nodes < 0 || opts->max_nodes > INT_MAX / 4 || opts->max_attr_depth < 1 ||
            opts->max_attr_depth > 64 || opts->max_tensor_bytes == 0)
            return floe_set_error(FLOE_INVALID_ARGUMENT,
                                  "floe_graphdef_import: bad limits (max_nodes 0..%d, "
                                  "max_attr_depth 1..64, max_tensor_bytes > 0)", INT_MAX / 4);
    }
    if (size > im.opts.max_total_bytes)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "GraphDef of %zu bytes exceeds the limit of %llu bytes", size,
                              (unsigned long long)im.opts.max_total_bytes);
    wire_scan ws = {data, &im.opts, 0};
    if (size > 0 && (st = wire_walk(&ws, data, (const uint8_t *)data + size, W_GRAPH, 0)) !=
                        FLOE_OK)
        return st;
    Floe__Tf__GraphDef *gd = floe__tf__graph_def__unpack(NULL, size, data);
    if (gd == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT,
                              "malformed GraphDef (%zu bytes): protobuf decoding failed (a "
                              "field of the wrong type, bad UTF-8 or truncation)", size);
    im.gd = gd;
    im.target = g;
    im.ctx = floe_graph_context(g);
    st = import_checked(&im);
    for (size_t i = 0; i < gd->n_node; i++) {
        if (im.in_node)
            free(im.in_node[i]);
        if (im.in_index)
            free(im.in_index[i]);
    }
    free(im.in_node);
    free(im.in_index);
    free(im.built);
    free(im.sig);
    free(im.sigs);
    free(im.slots);
    floe__tf__graph_def__free_unpacked(gd, NULL);
    return st;
}

floe_status floe_graphdef_import(floe_graph *g, const void *data, size_t size) {
    return floe_graphdef_import_v2(g, data, size, NULL);
}

floe_status floe_graphdef_load(floe_graph *g, const char *uri, const floe_graphdef_options *opts) {
    floe_graphdef_options o;
    void *data = NULL;
    size_t size = 0;

    if (g == NULL || uri == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_graphdef_load: NULL argument");
    floe_graphdef_options_init(&o);
    uint64_t cap = opts != NULL && opts->struct_size >= sizeof(o) ? opts->max_total_bytes
                                                                  : o.max_total_bytes;
    floe_status st = floe_fs_read_all(floe_graph_context(g), uri,
                                      cap > SIZE_MAX ? SIZE_MAX : (size_t)cap, &data, &size);
    if (st != FLOE_OK)
        return st;
    st = floe_graphdef_import_v2(g, data, size, opts);
    free(data);
    return st;
}
