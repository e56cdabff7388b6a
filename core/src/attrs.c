/*
 * attrs.c - attribute sets: named values of the kinds in floe_attr_type.
 *
 * A set is a small array of entries kept in insertion order (nodes have a handful of
 * attrs, so a linear search beats hashing).  Values are deep copies: strings and lists
 * are copied, tensors referenced.  Setting a value builds the copy first and only then
 * replaces the old one, so a failed set leaves the set unchanged.  Sections: values,
 * sets, public setters, public getters, formatting.
 */
#include "core-impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- Values ------------------------------------------------------------------------ */

static const char *attr_type_name(floe_attr_type t) {
    switch (t) {
    case FLOE_ATTR_NONE: return "none";
    case FLOE_ATTR_INT: return "int";
    case FLOE_ATTR_FLOAT: return "float";
    case FLOE_ATTR_BOOL: return "bool";
    case FLOE_ATTR_STRING: return "string";
    case FLOE_ATTR_TYPE: return "type";
    case FLOE_ATTR_SHAPE: return "shape";
    case FLOE_ATTR_TENSOR: return "tensor";
    case FLOE_ATTR_LIST_INT: return "list(int)";
    case FLOE_ATTR_LIST_FLOAT: return "list(float)";
    case FLOE_ATTR_LIST_BOOL: return "list(bool)";
    case FLOE_ATTR_LIST_STRING: return "list(string)";
    case FLOE_ATTR_LIST_TYPE: return "list(type)";
    case FLOE_ATTR_LIST_SHAPE: return "list(shape)";
    case FLOE_ATTR_LIST_TENSOR: return "list(tensor)";
    }
    return "invalid";
}

static size_t list_item_size(floe_attr_type t) {
    switch (t) {
    case FLOE_ATTR_LIST_INT: return sizeof(int64_t);
    case FLOE_ATTR_LIST_FLOAT: return sizeof(float);
    case FLOE_ATTR_LIST_BOOL: return sizeof(int);
    case FLOE_ATTR_LIST_STRING: return sizeof(floe_tstring);
    case FLOE_ATTR_LIST_TYPE: return sizeof(floe_dtype);
    case FLOE_ATTR_LIST_SHAPE: return sizeof(floe_shape);
    case FLOE_ATTR_LIST_TENSOR: return sizeof(floe_tensor *);
    default: return 0;
    }
}

void floe__attr_value_clear(floe__attr_value *v) {
    if (v == NULL)
        return;
    switch (v->type) {
    case FLOE_ATTR_STRING:
        floe__free(v->u.s.data);
        break;
    case FLOE_ATTR_TENSOR:
        floe_tensor_unref(v->u.tensor);
        break;
    case FLOE_ATTR_LIST_STRING: {
        floe_tstring *items = v->u.list.items;
        for (int i = 0; i < v->u.list.n; i++)
            floe__free((void *)items[i].data);
        floe__free(items);
        break;
    }
    case FLOE_ATTR_LIST_TENSOR: {
        floe_tensor **items = v->u.list.items;
        for (int i = 0; i < v->u.list.n; i++)
            floe_tensor_unref(items[i]);
        floe__free(items);
        break;
    }
    default:
        if (list_item_size(v->type) != 0)
            floe__free(v->u.list.items);
        break;
    }
    memset(v, 0, sizeof(*v));
}

static floe_status check_shape(const floe_shape *s) {
    if (s->ndim == -1)
        return FLOE_OK;
    if (s->ndim < 0 || s->ndim > FLOE_MAX_DIMS)
        return floe__fail(FLOE_INVALID_ARGUMENT, "shape rank %d out of range -1..%d", (int)s->ndim,
                          FLOE_MAX_DIMS);
    for (int i = 0; i < s->ndim; i++)
        if (s->dims[i] < -1)
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "shape dimension %d has extent %" PRId64 " (must be >= -1)", i,
                              s->dims[i]);
    return FLOE_OK;
}

/* A canonical copy of a shape: unused dims and the reserved field zeroed. */
static floe_shape shape_canon(const floe_shape *s) {
    floe_shape c;
    memset(&c, 0, sizeof(c));
    c.ndim = s->ndim;
    for (int i = 0; i < s->ndim && i < FLOE_MAX_DIMS; i++)
        c.dims[i] = s->dims[i];
    return c;
}

static floe_status check_value(const floe__attr_value *v) {
    switch (v->type) {
    case FLOE_ATTR_INT: case FLOE_ATTR_FLOAT: case FLOE_ATTR_BOOL: case FLOE_ATTR_TYPE:
        return FLOE_OK;
    case FLOE_ATTR_STRING:
        if (v->u.s.data == NULL && v->u.s.len > 0)
            return floe__fail(FLOE_INVALID_ARGUMENT, "string value is NULL");
        return FLOE_OK;
    case FLOE_ATTR_SHAPE:
        return check_shape(&v->u.shape);
    case FLOE_ATTR_TENSOR:
        if (v->u.tensor == NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT, "tensor value is NULL");
        return FLOE_OK;
    case FLOE_ATTR_NONE:
        return floe__fail(FLOE_INVALID_ARGUMENT, "attribute value has no type");
    default:
        break;
    }
    if (list_item_size(v->type) == 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "invalid attribute type %d", (int)v->type);
    if (v->u.list.n < 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "list length %d is negative", v->u.list.n);
    if (v->u.list.n > 0 && v->u.list.items == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "list of %d items is NULL", v->u.list.n);
    for (int i = 0; i < v->u.list.n; i++) {
        if (v->type == FLOE_ATTR_LIST_SHAPE) {
            floe_status st = check_shape((const floe_shape *)v->u.list.items + i);
            if (st != FLOE_OK) {
                floe__error_prefix("list item %d: ", i);
                return st;
            }
        } else if (v->type == FLOE_ATTR_LIST_TENSOR) {
            if (((floe_tensor *const *)v->u.list.items)[i] == NULL)
                return floe__fail(FLOE_INVALID_ARGUMENT, "list item %d: tensor is NULL", i);
        } else if (v->type == FLOE_ATTR_LIST_STRING) {
            const floe_tstring *s = (const floe_tstring *)v->u.list.items + i;
            if (s->data == NULL && s->size > 0)
                return floe__fail(FLOE_INVALID_ARGUMENT, "list item %d: string is NULL", i);
        }
    }
    return FLOE_OK;
}

static floe_status oom(void) {
    return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory copying an attribute");
}

static char *bytes_dup(const void *s, size_t len) {
    char *d = floe__malloc(len + 1);
    if (d == NULL)
        return NULL;
    if (len > 0)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static floe_status copy_list(const floe__attr_value *src, floe__attr_value *dst) {
    int n = src->u.list.n;
    size_t isize = list_item_size(src->type);

    dst->u.list.n = 0;
    dst->u.list.items = NULL;
    if (n == 0)
        return FLOE_OK;
    void *items = floe__calloc((size_t)n, isize);
    if (items == NULL)
        return oom();
    if (src->type == FLOE_ATTR_LIST_STRING) {
        const floe_tstring *s = src->u.list.items;
        floe_tstring *d = items;
        for (int i = 0; i < n; i++) {
            d[i].data = bytes_dup(s[i].data, s[i].size);
            if (d[i].data == NULL) {
                for (int j = 0; j < i; j++)
                    floe__free((void *)d[j].data);
                floe__free(items);
                return oom();
            }
            d[i].size = s[i].size;
        }
    } else if (src->type == FLOE_ATTR_LIST_TENSOR) {
        floe_tensor *const *s = src->u.list.items;
        floe_tensor **d = items;
        for (int i = 0; i < n; i++)
            d[i] = floe_tensor_ref(s[i]);
    } else if (src->type == FLOE_ATTR_LIST_SHAPE) {
        const floe_shape *s = src->u.list.items;
        floe_shape *d = items;
        for (int i = 0; i < n; i++)
            d[i] = shape_canon(&s[i]);
    } else {
        memcpy(items, src->u.list.items, (size_t)n * isize);
    }
    dst->u.list.items = items;
    dst->u.list.n = n;
    return FLOE_OK;
}

/* Deep copy of a checked value. */
static floe_status value_copy(const floe__attr_value *src, floe__attr_value *dst) {
    memset(dst, 0, sizeof(*dst));
    dst->type = src->type;
    switch (src->type) {
    case FLOE_ATTR_STRING:
        dst->u.s.data = bytes_dup(src->u.s.data, src->u.s.len);
        if (dst->u.s.data == NULL) {
            dst->type = FLOE_ATTR_NONE;
            return oom();
        }
        dst->u.s.len = src->u.s.len;
        return FLOE_OK;
    case FLOE_ATTR_TENSOR:
        dst->u.tensor = floe_tensor_ref(src->u.tensor);
        return FLOE_OK;
    case FLOE_ATTR_SHAPE:
        dst->u.shape = shape_canon(&src->u.shape);
        return FLOE_OK;
    case FLOE_ATTR_INT: case FLOE_ATTR_FLOAT: case FLOE_ATTR_BOOL: case FLOE_ATTR_TYPE:
        dst->u = src->u;
        if (src->type == FLOE_ATTR_BOOL)
            dst->u.b = src->u.b != 0;
        return FLOE_OK;
    default: {
        floe_status st = copy_list(src, dst);
        if (st != FLOE_OK)
            dst->type = FLOE_ATTR_NONE;
        return st;
    }
    }
}

/* ---- Sets ---------------------------------------------------------------------------- */

void floe__attrs_init(floe_attrs *a) {
    a->entries = NULL;
    a->n = 0;
    a->cap = 0;
}

void floe__attrs_deinit(floe_attrs *a) {
    if (a == NULL)
        return;
    for (int i = 0; i < a->n; i++) {
        floe__free(a->entries[i].name);
        floe__attr_value_clear(&a->entries[i].value);
    }
    floe__free(a->entries);
    floe__attrs_init(a);
}

static int attrs_index(const floe_attrs *a, const char *name) {
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->entries[i].name, name) == 0)
            return i;
    return -1;
}

const floe__attr_value *floe__attrs_find(const floe_attrs *a, const char *name) {
    if (a == NULL || name == NULL)
        return NULL;
    int i = attrs_index(a, name);
    return i >= 0 ? &a->entries[i].value : NULL;
}

floe_status floe__attrs_set_value(floe_attrs *a, const char *name, const floe__attr_value *v) {
    floe__attr_value copy;
    floe_status st;

    if (a == NULL || v == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attribute set or value is NULL");
    if (name == NULL || name[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT, "attribute name is NULL or empty");
    st = check_value(v);
    if (st != FLOE_OK) {
        floe__error_prefix("attr '%s': ", name);
        return st;
    }
    st = value_copy(v, &copy);
    if (st != FLOE_OK) {
        floe__error_prefix("attr '%s': ", name);
        return st;
    }
    int i = attrs_index(a, name);
    if (i >= 0) {
        floe__attr_value_clear(&a->entries[i].value);
        a->entries[i].value = copy;
        return FLOE_OK;
    }
    if (a->n == a->cap) {
        int cap = a->cap > 0 ? a->cap * 2 : 4;
        floe__attr_entry *e = floe__realloc(a->entries, (size_t)cap * sizeof(*e));
        if (e == NULL)
            goto fail_clear_copy;
        a->entries = e;
        a->cap = cap;
    }
    char *dup = floe__strdup(name);
    if (dup == NULL)
        goto fail_clear_copy;
    a->entries[a->n].name = dup;
    a->entries[a->n].value = copy;
    a->n++;
    return FLOE_OK;

fail_clear_copy:
    floe__attr_value_clear(&copy);
    st = oom();
    floe__error_prefix("attr '%s': ", name);
    return st;
}

floe_status floe__attrs_copy(floe_attrs *dst, const floe_attrs *src) {
    floe_attrs tmp;
    floe_status st;

    if (dst == NULL || src == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attribute set is NULL");
    floe__attrs_init(&tmp);
    for (int i = 0; i < src->n; i++) {
        st = floe__attrs_set_value(&tmp, src->entries[i].name, &src->entries[i].value);
        if (st != FLOE_OK) {
            floe__attrs_deinit(&tmp);
            return st;
        }
    }
    /* Replaces @dst's contents only once the copy is complete. */
    floe__attrs_deinit(dst);
    *dst = tmp;
    return FLOE_OK;
}

floe_status floe_attrs_new(floe_attrs **out) {
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_attrs_new: out is NULL");
    *out = floe__malloc(sizeof(**out));
    if (*out == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_attrs_new: out of memory");
    floe__attrs_init(*out);
    return FLOE_OK;
}

void floe_attrs_free(floe_attrs *a) {
    if (a == NULL)
        return;
    floe__attrs_deinit(a);
    floe__free(a);
}

/* ---- Public setters ------------------------------------------------------------------- */

static floe_status set(floe_attrs *a, const char *name, const floe__attr_value *v) {
    if (a == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attribute set is NULL");
    return floe__attrs_set_value(a, name, v);
}

floe_status floe_attrs_set_int(floe_attrs *a, const char *name, int64_t v) {
    floe__attr_value val = {.type = FLOE_ATTR_INT, .u.i = v};
    return set(a, name, &val);
}

floe_status floe_attrs_set_float(floe_attrs *a, const char *name, float v) {
    floe__attr_value val = {.type = FLOE_ATTR_FLOAT, .u.f = v};
    return set(a, name, &val);
}

floe_status floe_attrs_set_bool(floe_attrs *a, const char *name, int v) {
    floe__attr_value val = {.type = FLOE_ATTR_BOOL, .u.b = v != 0};
    return set(a, name, &val);
}

floe_status floe_attrs_set_string(floe_attrs *a, const char *name, const void *s, size_t len) {
    floe__attr_value val = {.type = FLOE_ATTR_STRING};
    val.u.s.data = (char *)s;
    val.u.s.len = len;
    return set(a, name, &val);
}

floe_status floe_attrs_set_type(floe_attrs *a, const char *name, floe_dtype v) {
    floe__attr_value val = {.type = FLOE_ATTR_TYPE, .u.type = v};
    if (!floe__dtype_valid(v))
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s': invalid dtype %d",
                          name != NULL ? name : "(null)", (int)v);
    return set(a, name, &val);
}

floe_status floe_attrs_set_shape(floe_attrs *a, const char *name, const int64_t *dims, int ndim) {
    floe__attr_value val = {.type = FLOE_ATTR_SHAPE};
    if (ndim < -1 || ndim > FLOE_MAX_DIMS || (ndim > 0 && dims == NULL))
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s': bad shape of rank %d",
                          name != NULL ? name : "(null)", ndim);
    val.u.shape.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        val.u.shape.dims[i] = dims[i];
    return set(a, name, &val);
}

floe_status floe_attrs_set_tensor(floe_attrs *a, const char *name, floe_tensor *t) {
    floe__attr_value val = {.type = FLOE_ATTR_TENSOR, .u.tensor = t};
    return set(a, name, &val);
}

static floe_status set_list(floe_attrs *a, const char *name, floe_attr_type type,
                            const void *items, int n) {
    floe__attr_value val = {.type = type};
    val.u.list.items = (void *)items;
    val.u.list.n = n;
    return set(a, name, &val);
}

floe_status floe_attrs_set_int_list(floe_attrs *a, const char *name, const int64_t *v, int n) {
    return set_list(a, name, FLOE_ATTR_LIST_INT, v, n);
}

floe_status floe_attrs_set_float_list(floe_attrs *a, const char *name, const float *v, int n) {
    return set_list(a, name, FLOE_ATTR_LIST_FLOAT, v, n);
}

floe_status floe_attrs_set_bool_list(floe_attrs *a, const char *name, const int *v, int n) {
    return set_list(a, name, FLOE_ATTR_LIST_BOOL, v, n);
}

floe_status floe_attrs_set_type_list(floe_attrs *a, const char *name, const floe_dtype *v,
                                     int n) {
    for (int i = 0; i < n && v != NULL; i++)
        if (!floe__dtype_valid(v[i]))
            return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s': list item %d: invalid dtype %d",
                              name != NULL ? name : "(null)", i, (int)v[i]);
    return set_list(a, name, FLOE_ATTR_LIST_TYPE, v, n);
}

floe_status floe_attrs_set_string_list(floe_attrs *a, const char *name, const char *const *v,
                                       const size_t *lens, int n) {
    floe_tstring small[16];
    floe_tstring *items = small;
    floe_status st;

    if (n < 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s': list length %d is negative",
                          name != NULL ? name : "(null)", n);
    if (n > 0 && v == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s': list of %d strings is NULL",
                          name != NULL ? name : "(null)", n);
    if (n > (int)(sizeof(small) / sizeof(small[0]))) {
        items = floe__malloc((size_t)n * sizeof(*items));
        if (items == NULL)
            return floe__fail(FLOE_RESOURCE_EXHAUSTED, "attr '%s': out of memory",
                              name != NULL ? name : "(null)");
    }
    /* @lens NULL: the strings are NUL-terminated. */
    for (int i = 0; i < n; i++) {
        items[i].data = v[i];
        items[i].size = lens != NULL ? lens[i] : (v[i] != NULL ? strlen(v[i]) : 0);
    }
    st = set_list(a, name, FLOE_ATTR_LIST_STRING, items, n);
    if (items != small)
        floe__free(items);
    return st;
}

floe_status floe_attrs_set_shape_list(floe_attrs *a, const char *name, const floe_shape *v,
                                      int n) {
    return set_list(a, name, FLOE_ATTR_LIST_SHAPE, v, n);
}

floe_status floe_attrs_set_tensor_list(floe_attrs *a, const char *name, floe_tensor *const *v,
                                       int n) {
    return set_list(a, name, FLOE_ATTR_LIST_TENSOR, v, n);
}

/* ---- Public getters -------------------------------------------------------------------- */

floe_attr_type floe_attrs_type(const floe_attrs *a, const char *name) {
    const floe__attr_value *v = floe__attrs_find(a, name);
    return v != NULL ? v->type : FLOE_ATTR_NONE;
}

/* The value of @name if it has type @type; else NULL with the failure recorded. */
static const floe__attr_value *get(const floe_attrs *a, const char *name, floe_attr_type type,
                                   floe_status *st) {
    if (a == NULL || name == NULL) {
        *st = floe__fail(FLOE_INVALID_ARGUMENT, "attribute set or name is NULL");
        return NULL;
    }
    const floe__attr_value *v = floe__attrs_find(a, name);
    if (v == NULL) {
        *st = floe__fail(FLOE_NOT_FOUND, "no attr '%s'", name);
        return NULL;
    }
    if (v->type != type) {
        *st = floe__fail(FLOE_INVALID_ARGUMENT, "attr '%s' is %s, not %s", name,
                         attr_type_name(v->type), attr_type_name(type));
        return NULL;
    }
    *st = FLOE_OK;
    return v;
}

floe_status floe_attrs_get_int(const floe_attrs *a, const char *name, int64_t *out) {
    floe_status st;
    if (out != NULL)
        *out = 0;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_INT, &st);
    if (v != NULL && out != NULL)
        *out = v->u.i;
    return st;
}

floe_status floe_attrs_get_float(const floe_attrs *a, const char *name, float *out) {
    floe_status st;
    if (out != NULL)
        *out = 0.0f;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_FLOAT, &st);
    if (v != NULL && out != NULL)
        *out = v->u.f;
    return st;
}

floe_status floe_attrs_get_bool(const floe_attrs *a, const char *name, int *out) {
    floe_status st;
    if (out != NULL)
        *out = 0;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_BOOL, &st);
    if (v != NULL && out != NULL)
        *out = v->u.b;
    return st;
}

floe_status floe_attrs_get_string(const floe_attrs *a, const char *name, const char **s,
                                  size_t *len) {
    floe_status st;
    if (s != NULL)
        *s = NULL;
    if (len != NULL)
        *len = 0;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_STRING, &st);
    if (v != NULL) {
        if (s != NULL)
            *s = v->u.s.data;
        if (len != NULL)
            *len = v->u.s.len;
    }
    return st;
}

floe_status floe_attrs_get_type(const floe_attrs *a, const char *name, floe_dtype *out) {
    floe_status st;
    if (out != NULL)
        *out = FLOE_DTYPE_INVALID;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_TYPE, &st);
    if (v != NULL && out != NULL)
        *out = v->u.type;
    return st;
}

floe_status floe_attrs_get_shape(const floe_attrs *a, const char *name, floe_shape *out) {
    floe_status st;
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
        out->ndim = -1;
    }
    const floe__attr_value *v = get(a, name, FLOE_ATTR_SHAPE, &st);
    if (v != NULL && out != NULL)
        *out = v->u.shape;
    return st;
}

floe_status floe_attrs_get_tensor(const floe_attrs *a, const char *name, floe_tensor **out) {
    floe_status st;
    if (out != NULL)
        *out = NULL;
    const floe__attr_value *v = get(a, name, FLOE_ATTR_TENSOR, &st);
    if (v != NULL && out != NULL)
        *out = v->u.tensor;
    return st;
}

static floe_status get_list(const floe_attrs *a, const char *name, floe_attr_type type,
                            const void **items, int *n) {
    floe_status st;
    if (items != NULL)
        *items = NULL;
    if (n != NULL)
        *n = 0;
    const floe__attr_value *v = get(a, name, type, &st);
    if (v != NULL) {
        if (items != NULL)
            *items = v->u.list.items;
        if (n != NULL)
            *n = v->u.list.n;
    }
    return st;
}

floe_status floe_attrs_get_int_list(const floe_attrs *a, const char *name, const int64_t **v,
                                    int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_INT, (const void **)v, n);
}

floe_status floe_attrs_get_float_list(const floe_attrs *a, const char *name, const float **v,
                                      int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_FLOAT, (const void **)v, n);
}

floe_status floe_attrs_get_type_list(const floe_attrs *a, const char *name, const floe_dtype **v,
                                     int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_TYPE, (const void **)v, n);
}

floe_status floe_attrs_get_bool_list(const floe_attrs *a, const char *name, const int **v,
                                     int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_BOOL, (const void **)v, n);
}

floe_status floe_attrs_get_string_list(const floe_attrs *a, const char *name,
                                       const floe_tstring **v, int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_STRING, (const void **)v, n);
}

floe_status floe_attrs_get_shape_list(const floe_attrs *a, const char *name,
                                      const floe_shape **v, int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_SHAPE, (const void **)v, n);
}

floe_status floe_attrs_get_tensor_list(const floe_attrs *a, const char *name,
                                       floe_tensor *const **v, int *n) {
    return get_list(a, name, FLOE_ATTR_LIST_TENSOR, (const void **)v, n);
}

int floe_attrs_count(const floe_attrs *a) {
    return a != NULL ? a->n : 0;
}

const char *floe_attrs_name(const floe_attrs *a, int i) {
    if (a == NULL || i < 0 || i >= a->n)
        return NULL;
    return a->entries[i].name;
}

/* ---- Formatting ------------------------------------------------------------------------- */

/* Appends to @buf (NUL-terminated, capacity @len) at *@pos; truncates silently. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) FLOE_PRINTF(4, 5);
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
    va_list ap;
    if (*pos >= len)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = *pos + (size_t)n < len ? *pos + (size_t)n : len;
}

static void format_shape(char *buf, size_t len, size_t *pos, const floe_shape *s) {
    if (s->ndim < 0) {
        append(buf, len, pos, "<unknown>");
        return;
    }
    append(buf, len, pos, "[");
    for (int i = 0; i < s->ndim && i < FLOE_MAX_DIMS; i++) {
        if (s->dims[i] < 0)
            append(buf, len, pos, "%s?", i > 0 ? ", " : "");
        else
            append(buf, len, pos, "%s%" PRId64, i > 0 ? ", " : "", s->dims[i]);
    }
    append(buf, len, pos, "]");
}

static void format_tensor(char *buf, size_t len, size_t *pos, const floe_tensor *t) {
    floe_shape s = floe__tensor_fshape(t);
    append(buf, len, pos, "<tensor %s ", floe_dtype_name(floe_tensor_dtype(t)));
    format_shape(buf, len, pos, &s);
    append(buf, len, pos, ">");
}

static void format_string(char *buf, size_t len, size_t *pos, const char *s, size_t n) {
    append(buf, len, pos, "\"");
    for (size_t i = 0; i < n && *pos < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            append(buf, len, pos, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            append(buf, len, pos, "\\x%02x", c);
        else
            append(buf, len, pos, "%c", c);
    }
    append(buf, len, pos, "\"");
}

static void format_item(char *buf, size_t len, size_t *pos, floe_attr_type type,
                        const void *items, int i) {
    switch (type) {
    case FLOE_ATTR_LIST_INT:
        append(buf, len, pos, "%" PRId64, ((const int64_t *)items)[i]);
        break;
    case FLOE_ATTR_LIST_FLOAT:
        append(buf, len, pos, "%g", (double)((const float *)items)[i]);
        break;
    case FLOE_ATTR_LIST_BOOL:
        append(buf, len, pos, "%s", ((const int *)items)[i] ? "true" : "false");
        break;
    case FLOE_ATTR_LIST_TYPE:
        append(buf, len, pos, "%s", floe_dtype_name(((const floe_dtype *)items)[i]));
        break;
    case FLOE_ATTR_LIST_SHAPE:
        format_shape(buf, len, pos, (const floe_shape *)items + i);
        break;
    case FLOE_ATTR_LIST_STRING: {
        const floe_tstring *s = (const floe_tstring *)items + i;
        format_string(buf, len, pos, s->data, s->size);
        break;
    }
    case FLOE_ATTR_LIST_TENSOR:
        format_tensor(buf, len, pos, ((floe_tensor *const *)items)[i]);
        break;
    default:
        break;
    }
}

void floe__attr_value_format(const floe__attr_value *v, char *buf, size_t len) {
    size_t pos = 0;

    if (buf == NULL || len == 0)
        return;
    buf[0] = '\0';
    if (v == NULL)
        return;
    switch (v->type) {
    case FLOE_ATTR_NONE: append(buf, len, &pos, "<none>"); return;
    case FLOE_ATTR_INT: append(buf, len, &pos, "%" PRId64, v->u.i); return;
    case FLOE_ATTR_FLOAT: append(buf, len, &pos, "%g", (double)v->u.f); return;
    case FLOE_ATTR_BOOL: append(buf, len, &pos, "%s", v->u.b ? "true" : "false"); return;
    case FLOE_ATTR_STRING: format_string(buf, len, &pos, v->u.s.data, v->u.s.len); return;
    case FLOE_ATTR_TYPE: append(buf, len, &pos, "%s", floe_dtype_name(v->u.type)); return;
    case FLOE_ATTR_SHAPE: format_shape(buf, len, &pos, &v->u.shape); return;
    case FLOE_ATTR_TENSOR: format_tensor(buf, len, &pos, v->u.tensor); return;
    default: break;
    }
    append(buf, len, &pos, "[");
    for (int i = 0; i < v->u.list.n; i++) {
        if (i > 0)
            append(buf, len, &pos, ", ");
        format_item(buf, len, &pos, v->type, v->u.list.items, i);
    }
    append(buf, len, &pos, "]");
}
