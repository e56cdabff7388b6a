/*
 * opdef.c - the op-definition spec parser.
 *
 * Plugins describe an op as spec strings in TensorFlow's REGISTER_OP notation
 * (plugin.h, floe_op_def): "x: T", "values: N * T", "T: {f32, f64} = f32",
 * "N: int >= 1".  This file turns them into the core's floe__op_def, checking every
 * reference (an input's type attr must be a type attr, a length attr an int, a default
 * must fit its kind and its minimum) so that a malformed definition fails when the
 * plugin registers it, with a message naming the op and the spec string.
 *
 * Sections: the cursor (a tiny scanner over one spec string); dtype sets; attr kinds
 * and defaults; attr specs; arg specs; the op definition; lookups.
 */
#include "core-impl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128

/* Sizes of the plugin structs read here: everything past the last required member of
 * minor 0 is optional, zero-filled when the plugin's struct ends earlier. */
#define OP_DEF_MIN_SIZE (offsetof(floe_op_def, name) + sizeof(((floe_op_def *)0)->name))

/* ---- The cursor ----------------------------------------------------------------- */

typedef struct cursor {
    const char *p;
    char err[160]; /* why parsing stopped; "" while it goes on */
} cursor;

static void cur_fail(cursor *c, const char *fmt, ...) FLOE_PRINTF(2, 3);
static void cur_fail(cursor *c, const char *fmt, ...) {
    va_list ap;
    if (c->err[0] != '\0')
        return; /* keep the first, most precise reason */
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static void cur_skip_ws(cursor *c) {
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
        c->p++;
}

static bool cur_at_end(cursor *c) {
    cur_skip_ws(c);
    return *c->p == '\0';
}

/* Consumes @tok (after spaces) if it comes next. */
static bool cur_accept(cursor *c, const char *tok) {
    size_t n = strlen(tok);
    cur_skip_ws(c);
    if (strncmp(c->p, tok, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool cur_expect(cursor *c, const char *tok) {
    if (cur_accept(c, tok))
        return true;
    cur_skip_ws(c);
    if (*c->p == '\0')
        cur_fail(c, "expected '%s' at the end", tok);
    else
        cur_fail(c, "expected '%s' at \"%.20s\"", tok, c->p);
    return false;
}

static bool is_ident_start(int ch) {
    return isalpha(ch) || ch == '_';
}

static bool is_ident_char(int ch) {
    return isalnum(ch) || ch == '_';
}

/* An identifier [A-Za-z_][A-Za-z0-9_]* into @buf (at most @len - 1 characters). */
static bool cur_ident(cursor *c, char *buf, size_t len, const char *what) {
    size_t n = 0;
    cur_skip_ws(c);
    if (!is_ident_start((unsigned char)*c->p)) {
        if (*c->p == '\0')
            cur_fail(c, "expected %s at the end", what);
        else
            cur_fail(c, "expected %s at \"%.20s\"", what, c->p);
        return false;
    }
    while (is_ident_char((unsigned char)c->p[n]))
        n++;
    if (n >= len) {
        cur_fail(c, "%s \"%.20s...\" is too long", what, c->p);
        return false;
    }
    memcpy(buf, c->p, n);
    buf[n] = '\0';
    c->p += n;
    return true;
}

/* Peeks at the identifier that comes next without consuming it ("" if none). */
static void cur_peek_ident(cursor *c, char *buf, size_t len) {
    const char *save = c->p;
    char err0 = c->err[0];
    if (!cur_ident(c, buf, len, "a name"))
        buf[0] = '\0';
    c->p = save;
    if (err0 == '\0')
        c->err[0] = '\0';
}

static bool cur_int(cursor *c, int64_t *out) {
    char *end;
    long long v;
    cur_skip_ws(c);
    if (!(isdigit((unsigned char)*c->p) ||
          ((*c->p == '-' || *c->p == '+') && isdigit((unsigned char)c->p[1])))) {
        cur_fail(c, "expected an integer at \"%.20s\"", c->p);
        return false;
    }
    errno = 0;
    v = strtoll(c->p, &end, 10);
    if (errno == ERANGE) {
        cur_fail(c, "integer \"%.24s\" out of range", c->p);
        return false;
    }
    if (*end == '.' || *end == 'e' || *end == 'E') {
        cur_fail(c, "expected an integer, not \"%.24s\"", c->p);
        return false;
    }
    c->p = end;
    *out = v;
    return true;
}

/* A float: decimal or exponent notation, inf, -inf, nan.  Parsed by hand so that the
 * C library's locale (decimal comma) cannot change the meaning of a spec. */
static bool cur_float(cursor *c, float *out) {
    const char *p;
    double sign = 1.0, v = 0.0, scale = 1.0;
    bool digits = false;
    int exp10 = 0, dropped = 0;

    cur_skip_ws(c);
    p = c->p;
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1.0 : 1.0;
        p++;
    }
    if (strncmp(p, "inf", 3) == 0 && !is_ident_char((unsigned char)p[3])) {
        c->p = p + 3;
        *out = (float)(sign * INFINITY);
        return true;
    }
    if (strncmp(p, "nan", 3) == 0 && !is_ident_char((unsigned char)p[3])) {
        c->p = p + 3;
        *out = NAN;
        return true;
    }
    /* Integer digits past a double's range count as powers of ten instead, so that a
     * long mantissa with a negative exponent stays finite. */
    for (; isdigit((unsigned char)*p); p++, digits = true) {
        if (v < 1e300)
            v = v * 10.0 + (*p - '0');
        else if (dropped < 1000000000)
            dropped++;
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits = true) {
            scale /= 10.0;
            v += (*p - '0') * scale;
        }
    }
    if (!digits) {
        cur_fail(c, "expected a number at \"%.20s\"", c->p);
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        int esign = 1;
        p++;
        if (*p == '-' || *p == '+')
            esign = *p++ == '-' ? -1 : 1;
        if (!isdigit((unsigned char)*p)) {
            cur_fail(c, "bad exponent in \"%.24s\"", c->p);
            return false;
        }
        for (; isdigit((unsigned char)*p); p++)
            if (exp10 < 100000000) /* huge enough either way; the sum fits an int */
                exp10 = exp10 * 10 + (*p - '0');
        exp10 *= esign;
    }
    c->p = p;
    /* Zero stays zero whatever the exponent (0 * pow(10, 999) would be NaN). */
    *out = (float)(sign * (v == 0.0 ? 0.0 : v * pow(10.0, exp10 + dropped)));
    return true;
}

/* A quoted string, "..." or '...', with \\ \" \' \n \t escapes.  (transfer full) */
static bool cur_string(cursor *c, char **out, size_t *len_out) {
    char quote, *buf;
    size_t n = 0;
    const char *p;

    cur_skip_ws(c);
    quote = *c->p;
    if (quote != '"' && quote != '\'') {
        cur_fail(c, "expected a quoted string at \"%.20s\"", c->p);
        return false;
    }
    buf = floe__malloc(strlen(c->p) + 1);
    if (buf == NULL) {
        cur_fail(c, "out of memory");
        return false;
    }
    for (p = c->p + 1; *p != quote; p++) {
        if (*p == '\0') {
            floe__free(buf);
            cur_fail(c, "unterminated string");
            return false;
        }
        if (*p == '\\') {
            p++;
            switch (*p) {
            case 'n':
                buf[n++] = '\n';
                break;
            case 't':
                buf[n++] = '\t';
                break;
            case '\\':
            case '"':
            case '\'':
                buf[n++] = *p;
                break;
            default:
                floe__free(buf);
                cur_fail(c, "unknown escape '\\%c' in string", *p ? *p : ' ');
                return false;
            }
            continue;
        }
        buf[n++] = *p;
    }
    buf[n] = '\0';
    c->p = p + 1;
    *out = buf;
    *len_out = n;
    return true;
}

/* ---- Dtype sets ------------------------------------------------------------------ */

#define M(dt) FLOE__DTYPE_MASK(FLOE_DTYPE_##dt)

static const struct {
    const char *name;
    uint64_t mask;
} type_sets[] = {
    {"realnumbertype", M(F32) | M(F64) | M(I32) | M(U8) | M(I16) | M(I8) | M(I64) | M(BF16) |
                           M(U16) | M(F16) | M(U32) | M(U64)},
    {"numbertype", M(F32) | M(F64) | M(I32) | M(U8) | M(I16) | M(I8) | M(I64) | M(BF16) | M(U16) |
                       M(F16) | M(U32) | M(U64) | M(COMPLEX64)},
    {"floattype", M(F16) | M(BF16) | M(F32) | M(F64)},
    {"inttype", M(I8) | M(I16) | M(I32) | M(I64) | M(U8) | M(U16) | M(U32) | M(U64)},
    {"alltypes", M(F32) | M(F64) | M(I32) | M(U8) | M(I16) | M(I8) | M(STRING) | M(COMPLEX64) |
                     M(I64) | M(BOOL) | M(BF16) | M(U16) | M(F16) | M(RESOURCE) | M(U32) | M(U64)},
};

#undef M

static uint64_t type_set_by_name(const char *name) {
    for (size_t i = 0; i < sizeof(type_sets) / sizeof(type_sets[0]); i++)
        if (strcmp(type_sets[i].name, name) == 0)
            return type_sets[i].mask;
    return 0;
}

/* A dtype name ("f32", "float", "resource") or INVALID. */
static floe_dtype dtype_by_name(const char *name) {
    floe_dtype dt = floe_dtype_from_name(name);
    return floe__dtype_valid(dt) ? dt : FLOE_DTYPE_INVALID;
}

/* One set item: a dtype or a set name. */
static bool parse_type_item(cursor *c, uint64_t *mask) {
    char name[NAME_MAX_LEN];
    floe_dtype dt;
    uint64_t set;

    if (!cur_ident(c, name, sizeof(name), "a dtype"))
        return false;
    if ((dt = dtype_by_name(name)) != FLOE_DTYPE_INVALID) {
        *mask |= FLOE__DTYPE_MASK(dt);
        return true;
    }
    if ((set = type_set_by_name(name)) != 0) {
        *mask |= set;
        return true;
    }
    cur_fail(c, "unknown dtype '%s'", name);
    return false;
}

/* "{f32, f64, inttype}" */
static bool parse_type_braces(cursor *c, uint64_t *mask) {
    *mask = 0;
    if (!cur_expect(c, "{"))
        return false;
    do {
        if (!parse_type_item(c, mask))
            return false;
    } while (cur_accept(c, ","));
    return cur_expect(c, "}");
}

/* A set expression: "{...}", a set name, or one dtype. */
static bool parse_type_set_expr(cursor *c, uint64_t *mask) {
    cur_skip_ws(c);
    if (*c->p == '{')
        return parse_type_braces(c, mask);
    *mask = 0;
    return parse_type_item(c, mask);
}

floe_status floe__parse_type_set(const char *spec, uint64_t *mask) {
    cursor c = {0};

    if (mask == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "type set: NULL output");
    *mask = 0;
    if (spec == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "type set: NULL spec");
    c.p = spec;
    if (!parse_type_set_expr(&c, mask) || !cur_at_end(&c)) {
        *mask = 0;
        cur_fail(&c, "unexpected \"%.20s\" after the set", c.p);
        return floe__fail(FLOE_INVALID_ARGUMENT, "type set \"%s\": %s", spec, c.err);
    }
    return FLOE_OK;
}

/* ---- Attr kinds and defaults --------------------------------------------------- */

static const struct {
    const char *name;
    floe_attr_type scalar;
    floe_attr_type list;
} attr_kinds[] = {
    {"int", FLOE_ATTR_INT, FLOE_ATTR_LIST_INT},
    {"float", FLOE_ATTR_FLOAT, FLOE_ATTR_LIST_FLOAT},
    {"bool", FLOE_ATTR_BOOL, FLOE_ATTR_LIST_BOOL},
    {"string", FLOE_ATTR_STRING, FLOE_ATTR_LIST_STRING},
    {"type", FLOE_ATTR_TYPE, FLOE_ATTR_LIST_TYPE},
    {"shape", FLOE_ATTR_SHAPE, FLOE_ATTR_LIST_SHAPE},
    {"tensor", FLOE_ATTR_TENSOR, FLOE_ATTR_LIST_TENSOR},
};

/* A kind word or a type set, inside or outside list(...).  @list picks the result. */
static bool parse_kind_inner(cursor *c, bool list, floe__attr_def *ad) {
    char word[NAME_MAX_LEN];

    cur_skip_ws(c);
    if (*c->p == '{') {
        ad->type = list ? FLOE_ATTR_LIST_TYPE : FLOE_ATTR_TYPE;
        return parse_type_braces(c, &ad->allowed_types);
    }
    if (!cur_ident(c, word, sizeof(word), "an attr kind"))
        return false;
    for (size_t i = 0; i < sizeof(attr_kinds) / sizeof(attr_kinds[0]); i++) {
        if (strcmp(attr_kinds[i].name, word) == 0) {
            ad->type = list ? attr_kinds[i].list : attr_kinds[i].scalar;
            return true;
        }
    }
    if ((ad->allowed_types = type_set_by_name(word)) != 0) {
        ad->type = list ? FLOE_ATTR_LIST_TYPE : FLOE_ATTR_TYPE;
        return true;
    }
    cur_fail(c, "unknown attr kind '%s'", word);
    return false;
}

static bool parse_kind(cursor *c, floe__attr_def *ad) {
    char word[NAME_MAX_LEN];

    cur_peek_ident(c, word, sizeof(word));
    if (strcmp(word, "list") == 0) {
        cur_ident(c, word, sizeof(word), "list");
        if (!cur_expect(c, "("))
            return false;
        if (!parse_kind_inner(c, true, ad))
            return false;
        return cur_expect(c, ")");
    }
    return parse_kind_inner(c, false, ad);
}

/* A shape "[2, -1]", or "?" for an unknown rank. */
static bool parse_shape(cursor *c, floe_shape *s) {
    memset(s, 0, sizeof(*s));
    if (cur_accept(c, "?")) {
        s->ndim = -1;
        return true;
    }
    if (!cur_expect(c, "["))
        return false;
    if (cur_accept(c, "]"))
        return true;
    do {
        int64_t d;
        if (!cur_int(c, &d))
            return false;
        if (d < -1) {
            cur_fail(c, "shape extent %lld (use -1 for unknown)", (long long)d);
            return false;
        }
        if (s->ndim >= FLOE_MAX_DIMS) {
            cur_fail(c, "shape has more than %d dimensions", FLOE_MAX_DIMS);
            return false;
        }
        s->dims[s->ndim++] = d;
    } while (cur_accept(c, ","));
    return cur_expect(c, "]");
}

static bool parse_bool(cursor *c, int *out) {
    char word[16];
    if (!cur_ident(c, word, sizeof(word), "true or false"))
        return false;
    if (strcmp(word, "true") == 0 || strcmp(word, "false") == 0) {
        *out = word[0] == 't';
        return true;
    }
    cur_fail(c, "expected true or false, not '%s'", word);
    return false;
}

static bool parse_dtype_value(cursor *c, uint64_t allowed, floe_dtype *out) {
    char word[NAME_MAX_LEN];
    floe_dtype dt;
    if (!cur_ident(c, word, sizeof(word), "a dtype"))
        return false;
    dt = dtype_by_name(word);
    if (dt == FLOE_DTYPE_INVALID) {
        cur_fail(c, "unknown dtype '%s'", word);
        return false;
    }
    if (allowed != 0 && (allowed & FLOE__DTYPE_MASK(dt)) == 0) {
        cur_fail(c, "dtype '%s' is not in the attr's allowed set", word);
        return false;
    }
    *out = dt;
    return true;
}

/* Size of one list element of @type, as floe__attr_value stores it. */
static size_t list_item_size(floe_attr_type type) {
    switch (type) {
    case FLOE_ATTR_LIST_INT:
        return sizeof(int64_t);
    case FLOE_ATTR_LIST_FLOAT:
        return sizeof(float);
    case FLOE_ATTR_LIST_BOOL:
        return sizeof(int);
    case FLOE_ATTR_LIST_TYPE:
        return sizeof(floe_dtype);
    case FLOE_ATTR_LIST_SHAPE:
        return sizeof(floe_shape);
    case FLOE_ATTR_LIST_STRING:
        return sizeof(floe_tstring);
    case FLOE_ATTR_LIST_TENSOR:
        return sizeof(floe_tensor *);
    default:
        return 0;
    }
}

/* One element of a list default, stored at index @i of @v's items. */
static bool parse_list_item(cursor *c, const floe__attr_def *ad, floe__attr_value *v, int i) {
    switch (ad->type) {
    case FLOE_ATTR_LIST_INT:
        return cur_int(c, (int64_t *)v->u.list.items + i);
    case FLOE_ATTR_LIST_FLOAT:
        return cur_float(c, (float *)v->u.list.items + i);
    case FLOE_ATTR_LIST_BOOL:
        return parse_bool(c, (int *)v->u.list.items + i);
    case FLOE_ATTR_LIST_TYPE:
        return parse_dtype_value(c, ad->allowed_types, (floe_dtype *)v->u.list.items + i);
    case FLOE_ATTR_LIST_SHAPE:
        return parse_shape(c, (floe_shape *)v->u.list.items + i);
    case FLOE_ATTR_LIST_STRING: {
        floe_tstring *ts = (floe_tstring *)v->u.list.items + i;
        char *s;
        size_t len;
        if (!cur_string(c, &s, &len))
            return false;
        ts->data = s;
        ts->size = len;
        return true;
    }
    default:
        cur_fail(c, "tensor lists take no default but []");
        return false;
    }
}

/* "[a, b, ...]" into @v (list kinds).  Items are counted first so that one allocation
 * holds them; the count is an upper bound (commas inside strings), never too small. */
static bool parse_list_default(cursor *c, const floe__attr_def *ad, floe__attr_value *v) {
    size_t cap = 1, isz = list_item_size(ad->type);
    int n = 0;

    v->type = ad->type;
    if (!cur_expect(c, "["))
        return false;
    if (cur_accept(c, "]"))
        return true;
    for (const char *q = c->p; *q != '\0'; q++)
        cap += *q == ',';
    v->u.list.items = floe__calloc(cap, isz);
    if (v->u.list.items == NULL) {
        cur_fail(c, "out of memory");
        return false;
    }
    do {
        if ((size_t)n >= cap) {
            cur_fail(c, "malformed list");
            return false;
        }
        /* Count the item before parsing so a half-parsed string is freed with the rest. */
        v->u.list.n = ++n;
        if (!parse_list_item(c, ad, v, n - 1))
            return false;
    } while (cur_accept(c, ","));
    return cur_expect(c, "]");
}

/* The text after '=' into ad->default_value.  On failure the partial value is left
 * in ad->default_value for the caller's cleanup. */
static bool parse_default(cursor *c, floe__attr_def *ad) {
    floe__attr_value *v = &ad->default_value;

    v->type = ad->type;
    switch (ad->type) {
    case FLOE_ATTR_INT:
        return cur_int(c, &v->u.i);
    case FLOE_ATTR_FLOAT:
        return cur_float(c, &v->u.f);
    case FLOE_ATTR_BOOL:
        return parse_bool(c, &v->u.b);
    case FLOE_ATTR_STRING:
        return cur_string(c, &v->u.s.data, &v->u.s.len);
    case FLOE_ATTR_TYPE:
        return parse_dtype_value(c, ad->allowed_types, &v->u.type);
    case FLOE_ATTR_SHAPE:
        return parse_shape(c, &v->u.shape);
    case FLOE_ATTR_TENSOR:
        cur_fail(c, "tensor attrs take no default");
        return false;
    default:
        return parse_list_default(c, ad, v);
    }
}

static bool is_list_kind(floe_attr_type t) {
    return t >= FLOE_ATTR_LIST_INT && t <= FLOE_ATTR_LIST_TENSOR;
}

/* ---- Attr specs ------------------------------------------------------------------ */

/* "NAME: KIND [>= MIN] [= DEFAULT]" */
static bool parse_attr_spec(cursor *c, floe__attr_def *ad) {
    char name[NAME_MAX_LEN];

    if (!cur_ident(c, name, sizeof(name), "an attr name") || !cur_expect(c, ":"))
        return false;
    if ((ad->name = floe__strdup(name)) == NULL) {
        cur_fail(c, "out of memory");
        return false;
    }
    if (!parse_kind(c, ad))
        return false;
    if (cur_accept(c, ">=")) {
        if (ad->type != FLOE_ATTR_INT && !is_list_kind(ad->type)) {
            cur_fail(c, "a minimum ('>=') applies to int and list attrs only");
            return false;
        }
        if (!cur_int(c, &ad->min))
            return false;
        if (is_list_kind(ad->type) && ad->min < 0) {
            cur_fail(c, "a list length minimum must be >= 0");
            return false;
        }
        ad->has_min = true;
    }
    if (cur_accept(c, "=")) {
        ad->has_default = true;
        if (!parse_default(c, ad))
            return false;
        if (ad->has_min && ad->type == FLOE_ATTR_INT && ad->default_value.u.i < ad->min) {
            cur_fail(c, "default %lld is below the minimum %lld", (long long)ad->default_value.u.i,
                     (long long)ad->min);
            return false;
        }
        if (ad->has_min && is_list_kind(ad->type) && ad->default_value.u.list.n < ad->min) {
            cur_fail(c, "default has %d elements, fewer than the minimum %lld",
                     ad->default_value.u.list.n, (long long)ad->min);
            return false;
        }
    }
    if (!cur_at_end(c)) {
        cur_fail(c, "unexpected \"%.20s\"", c->p);
        return false;
    }
    return true;
}

/* ---- Arg specs ------------------------------------------------------------------- */

static const floe__attr_def *find_attr_n(const floe__attr_def *attrs, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(attrs[i].name, name) == 0)
            return &attrs[i];
    return NULL;
}

/* "NAME: TYPE", "NAME: N * TYPE" or "NAME: Tlist", checked against @op's attrs.
 * A number attr without a minimum gets 0, since a list length cannot be negative. */
static bool parse_arg_spec(cursor *c, floe__op_def *op, floe__arg_def *ad) {
    char name[NAME_MAX_LEN], first[NAME_MAX_LEN], second[NAME_MAX_LEN];
    const char *type_word = first;
    floe__attr_def *attr;

    ad->fixed_type = FLOE_DTYPE_INVALID;
    if (!cur_ident(c, name, sizeof(name), "an argument name") || !cur_expect(c, ":") ||
        !cur_ident(c, first, sizeof(first), "a type"))
        return false;
    if ((ad->name = floe__strdup(name)) == NULL)
        goto fail_oom;
    if (cur_accept(c, "*")) {
        if (!cur_ident(c, second, sizeof(second), "a type after '*'"))
            return false;
        attr = (floe__attr_def *)find_attr_n(op->attrs, op->nattrs, first);
        if (attr == NULL || attr->type != FLOE_ATTR_INT) {
            cur_fail(c, "length '%s' must name an int attr", first);
            return false;
        }
        if (!attr->has_min) {
            /* The implied minimum 0 must hold for the default too, as a stated one does. */
            if (attr->has_default && attr->default_value.u.i < 0) {
                cur_fail(c, "length attr '%s' has a negative default %lld", first,
                         (long long)attr->default_value.u.i);
                return false;
            }
            attr->has_min = true;
            attr->min = 0;
        } else if (attr->min < 0) {
            cur_fail(c, "length attr '%s' has a negative minimum", first);
            return false;
        }
        if ((ad->number_attr = floe__strdup(first)) == NULL)
            goto fail_oom;
        type_word = second;
    }
    if (!cur_at_end(c)) {
        cur_fail(c, "unexpected \"%.20s\"", c->p);
        return false;
    }
    /* The op's own attr wins over a dtype name (dtype names match case-insensitively,
     * so an attr "Half" must not turn into f16). */
    attr = (floe__attr_def *)find_attr_n(op->attrs, op->nattrs, type_word);
    if (attr == NULL) {
        if ((ad->fixed_type = dtype_by_name(type_word)) != FLOE_DTYPE_INVALID)
            return true;
        cur_fail(c, "'%s' is neither a dtype nor an attr of the op", type_word);
        return false;
    }
    if (attr->type == FLOE_ATTR_TYPE) {
        if ((ad->type_attr = floe__strdup(type_word)) == NULL)
            goto fail_oom;
        return true;
    }
    if (attr->type == FLOE_ATTR_LIST_TYPE && ad->number_attr == NULL) {
        if ((ad->type_list_attr = floe__strdup(type_word)) == NULL)
            goto fail_oom;
        return true;
    }
    cur_fail(c, "attr '%s' is not a %s attr", type_word,
             ad->number_attr != NULL ? "type" : "type or list(type)");
    return false;

fail_oom:
    cur_fail(c, "out of memory");
    return false;
}

/* ---- The op definition ---------------------------------------------------------- */

static bool op_name_ok(const char *s) {
    size_t n = 0;
    if (s == NULL || !(isupper((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; s[n] != '\0'; n++)
        if (!is_ident_char((unsigned char)s[n]))
            return false;
    return n < NAME_MAX_LEN;
}

static int count_specs(const char *const *specs) {
    int n = 0;
    if (specs != NULL)
        while (specs[n] != NULL && n <= 4096)
            n++;
    return n;
}

static void arg_def_deinit(floe__arg_def *a) {
    floe__free(a->name);
    floe__free(a->type_attr);
    floe__free(a->number_attr);
    floe__free(a->type_list_attr);
}

static void attr_def_deinit(floe__attr_def *a) {
    floe__free(a->name);
    floe__attr_value_clear(&a->default_value);
}

static floe_status spec_fail(const char *op, const char *what, const char *spec, cursor *c) {
    if (strcmp(c->err, "out of memory") == 0)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "op '%s': out of memory", op);
    return floe__fail(FLOE_INVALID_ARGUMENT, "op '%s': %s spec \"%s\": %s", op, what, spec, c->err);
}

static floe_status parse_attrs(const floe_op_def *def, floe__op_def *op) {
    int n = count_specs(def->attrs);
    if (n > 4096)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op '%s': too many attrs", def->name);
    if (n > 0 && (op->attrs = floe__calloc((size_t)n, sizeof(*op->attrs))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "op '%s': out of memory", def->name);
    for (int i = 0; i < n; i++) {
        cursor c = {.p = def->attrs[i]};
        op->nattrs = i + 1;
        if (!parse_attr_spec(&c, &op->attrs[i]))
            return spec_fail(def->name, "attr", def->attrs[i], &c);
        if (find_attr_n(op->attrs, i, op->attrs[i].name) != NULL)
            return floe__fail(FLOE_INVALID_ARGUMENT,
                              "op '%s': attr spec \"%s\": attr '%s' "
                              "defined twice",
                              def->name, def->attrs[i], op->attrs[i].name);
    }
    return FLOE_OK;
}

static floe_status parse_args(const floe_op_def *def, floe__op_def *op, bool outputs) {
    const char *const *specs = outputs ? def->outputs : def->inputs;
    const char *what = outputs ? "output" : "input";
    floe__arg_def **args = outputs ? &op->outputs : &op->inputs;
    int *nargs = outputs ? &op->noutputs : &op->ninputs;
    int n = count_specs(specs);

    if (n > 4096)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op '%s': too many %ss", def->name, what);
    if (n > 0 && (*args = floe__calloc((size_t)n, sizeof(**args))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "op '%s': out of memory", def->name);
    for (int i = 0; i < n; i++) {
        cursor c = {.p = specs[i]};
        *nargs = i + 1;
        if (!parse_arg_spec(&c, op, &(*args)[i]))
            return spec_fail(def->name, what, specs[i], &c);
        for (int j = 0; j < i; j++)
            if (strcmp((*args)[j].name, (*args)[i].name) == 0)
                return floe__fail(FLOE_INVALID_ARGUMENT,
                                  "op '%s': %s spec \"%s\": %s '%s' "
                                  "defined twice",
                                  def->name, what, specs[i], what, (*args)[i].name);
    }
    return FLOE_OK;
}

floe_status floe__op_def_parse(const floe_op_def *user_def, floe__op_def *out) {
    floe_op_def def;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op definition: NULL output");
    memset(out, 0, sizeof(*out));
    if (user_def == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op definition is NULL");
    if (user_def->struct_size < OP_DEF_MIN_SIZE)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "op definition: struct_size %zu is smaller "
                          "than the smallest floe_op_def (%zu)",
                          user_def->struct_size, (size_t)OP_DEF_MIN_SIZE);
    memset(&def, 0, sizeof(def));
    memcpy(&def, user_def,
           user_def->struct_size < sizeof(def) ? user_def->struct_size : sizeof(def));
    if (def.name == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op definition without a name");
    if (!op_name_ok(def.name))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "op name '%.*s' is malformed: expected "
                          "[A-Z_][A-Za-z0-9_]* of at most %d characters",
                          NAME_MAX_LEN, def.name, NAME_MAX_LEN - 1);
    if ((def.flags & ~(FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT)) != 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "op '%s': unknown flags 0x%x", def.name,
                          (unsigned)(def.flags & ~(FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT)));
    if ((out->name = floe__strdup(def.name)) == NULL) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "op '%s': out of memory", def.name);
        goto fail;
    }
    /* Attrs first: the args refer to them. */
    if ((st = parse_attrs(&def, out)) != FLOE_OK ||
        (st = parse_args(&def, out, false)) != FLOE_OK ||
        (st = parse_args(&def, out, true)) != FLOE_OK)
        goto fail;
    out->shape_fn = def.shape_fn;
    out->flags = def.flags;
    out->doc = def.doc;
    return FLOE_OK;

fail:
    floe__op_def_deinit(out);
    return st;
}

void floe__op_def_deinit(floe__op_def *op) {
    if (op == NULL)
        return;
    for (int i = 0; i < op->ninputs; i++)
        arg_def_deinit(&op->inputs[i]);
    for (int i = 0; i < op->noutputs; i++)
        arg_def_deinit(&op->outputs[i]);
    for (int i = 0; i < op->nattrs; i++)
        attr_def_deinit(&op->attrs[i]);
    floe__free(op->inputs);
    floe__free(op->outputs);
    floe__free(op->attrs);
    floe__free(op->kernels); /* the kernels themselves belong to the registry */
    floe__free(op->name);
    memset(op, 0, sizeof(*op));
}

/* ---- Lookups ------------------------------------------------------------------- */

const floe__attr_def *floe__op_def_find_attr(const floe__op_def *op, const char *name) {
    if (op == NULL || name == NULL)
        return NULL;
    return find_attr_n(op->attrs, op->nattrs, name);
}

/* ---- Flattened inputs ------------------------------------------------------------ */

floe_status floe__op_group_inputs(const floe__op_def *op, const floe_attrs *attrs, int ninputs,
                                int *len) {
    int known = 0, unknown = -1;

    for (int a = 0; a < op->ninputs; a++) {
        const floe__arg_def *def = &op->inputs[a];
        len[a] = 1;
        if (def->number_attr != NULL || def->type_list_attr != NULL) {
            const char *attr = def->number_attr != NULL ? def->number_attr : def->type_list_attr;
            const floe__attr_value *v = attrs != NULL ? floe__attrs_find(attrs, attr) : NULL;
            if (v != NULL && v->type == FLOE_ATTR_INT && v->u.i >= 0 && v->u.i <= ninputs)
                len[a] = (int)v->u.i;
            else if (v != NULL && v->type == FLOE_ATTR_LIST_TYPE)
                len[a] = v->u.list.n;
            else if (unknown < 0)
                len[a] = -1, unknown = a;
            else
                return floe__fail(FLOE_INVALID_ARGUMENT,
                                  "op %s has several list inputs: give their lengths in attrs",
                                  op->name);
        }
        if (len[a] >= 0)
            known += len[a];
    }
    if (unknown >= 0) {
        if (known > ninputs)
            return floe__fail(FLOE_INVALID_ARGUMENT, "op %s takes at least %d inputs, got %d",
                              op->name, known, ninputs);
        len[unknown] = ninputs - known;
    } else if (known != ninputs) {
        return floe__fail(FLOE_INVALID_ARGUMENT, "op %s takes %d inputs, got %d", op->name, known,
                          ninputs);
    }
    return FLOE_OK;
}
