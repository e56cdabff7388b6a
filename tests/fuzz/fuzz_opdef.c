/*
 * fuzz_opdef.c - libFuzzer target for the op-definition spec parser (opdef.c:
 * floe__op_def_parse), which reads the spec strings a plugin registers.
 *
 * Input format: a 3-byte header, then fields cut at NUL or newline bytes.
 *   byte 0  counts: inputs = b & 7, outputs = (b >> 3) & 3, attrs = (b >> 5) & 7
 *   byte 1  options: bits 0-1 struct_size (0: sizeof, 1: the minor-0 minimum, which
 *           ends at `name`, 2: one byte short of it, 3: a larger struct from a newer
 *           minor); bits 2-3 flags (0, STATEFUL, STATEFUL|NO_GRADIENT, an unknown
 *           bit); bit 4 name NULL; bit 5 allocation failure injection, bit 6 makes it
 *           persistent; bit 7 passes empty spec lists as {NULL} instead of NULL
 *   byte 2  with bit 5: fail the (b + 1)th allocation
 *   fields  op name, input specs, output specs, attr specs (as many as the counts ask
 *           for and the input holds; extra fields are ignored)
 * A missing header byte reads as 0.
 *
 * Oracle: the parse returns OK, INVALID_ARGUMENT, or (only when an injected allocation
 * failure happened) RESOURCE_EXHAUSTED; a failure leaves a non-empty floe_last_error()
 * and a zeroed output; a success yields a definition whose every reference resolves
 * (type attrs are type attrs, length attrs ints with a minimum >= 0, defaults of their
 * attr's kind, within its minimum and allowed set) and floe__op_def_deinit frees all
 * of it (LeakSanitizer checks).  Without an injected failure the result matches the
 * run without injection.
 */
#include "fuzz_util.h"

#include "core-impl.h"
#include <floe/experimental/testing.h>

#include <ctype.h>
#include <math.h>

#define MAX_SPECS 8

/* What the target passes to the parser: a floe_op_def inside a larger block, so a
 * struct_size from a newer minor describes memory that exists. */
typedef struct def_block {
    floe_op_def def;
    unsigned char newer_minor_tail[32];
} def_block;

typedef struct fuzz_case {
    def_block block;
    const char *inputs[MAX_SPECS];
    const char *outputs[MAX_SPECS];
    const char *attrs[MAX_SPECS];
    int ninputs, noutputs, nattrs;  /* as the parser should see them */
    bool inject;
    int64_t nth;
    bool persistent;
} fuzz_case;

static bool all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static bool is_ident(const char *s) {
    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; *s != '\0'; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static bool is_list(floe_attr_type t) {
    return t >= FLOE_ATTR_LIST_INT && t <= FLOE_ATTR_LIST_TENSOR;
}

/* Takes up to @want fields starting at *@next into @list (NULL-terminated). */
static int take_specs(const fuzz_fields *f, size_t *next, int want, const char **list) {
    int n = 0;
    while (n < want && *next < f->n)
        list[n++] = f->items[(*next)++];
    list[n] = NULL;
    return n;
}

static void build_case(const uint8_t *data, size_t size, const fuzz_fields *f, fuzz_case *fc) {
    uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0, b2 = size > 2 ? data[2] : 0;
    floe_op_def *d = &fc->block.def;
    size_t next = 1;
    int nin, nout, nattr;
    static const uint32_t flag_choices[4] = {0, FLOE_OP_STATEFUL,
                                             FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT, 0x100};
    const size_t min_size = offsetof(floe_op_def, name) + sizeof(d->name);

    memset(fc, 0, sizeof(*fc));
    nin = take_specs(f, &next, b0 & 7, fc->inputs);
    nout = take_specs(f, &next, (b0 >> 3) & 3, fc->outputs);
    nattr = take_specs(f, &next, (b0 >> 5) & 7, fc->attrs);

    d->name = (b1 & 0x10) ? NULL : f->items[0];
    d->inputs = nin > 0 || (b1 & 0x80) ? fc->inputs : NULL;
    d->outputs = nout > 0 || (b1 & 0x80) ? fc->outputs : NULL;
    d->attrs = nattr > 0 || (b1 & 0x80) ? fc->attrs : NULL;
    d->flags = flag_choices[(b1 >> 2) & 3];
    d->doc = "fuzzed";
    fc->ninputs = nin;
    fc->noutputs = nout;
    fc->nattrs = nattr;
    switch (b1 & 3) {
    case 0:
        d->struct_size = sizeof(*d);
        break;
    case 1:
        /* Minor 0's minimum: the parser must not look past `name`, so what lies there
         * is poison that would crash it if it did. */
        d->struct_size = min_size;
        d->inputs = d->outputs = d->attrs = (const char *const *)(uintptr_t)16;
        d->flags = 0xdead;
        d->doc = (const char *)(uintptr_t)16;
        fc->ninputs = fc->noutputs = fc->nattrs = 0;
        break;
    case 2:
        d->struct_size = min_size - 1;
        break;
    default:
        d->struct_size = sizeof(fc->block);
        memset(fc->block.newer_minor_tail, 0xa5, sizeof(fc->block.newer_minor_tail));
        break;
    }
    fc->inject = (b1 & 0x20) != 0;
    fc->persistent = (b1 & 0x40) != 0;
    fc->nth = (int64_t)b2 + 1;
}

/* A float default is NaN only when its spec says "nan" (0e999 is 0, not 0 * inf). */
static bool nan_ok(float f, const char *spec) {
    return !isnan(f) || strstr(spec, "nan") != NULL;
}

/* A scalar float default agrees with strtod (the "C" locale here) on the same text,
 * within float rounding, when the text is short enough for its digits to matter; longer
 * ones only get the NaN check. */
static void check_float_default(float f, const char *spec) {
    const char *text = strchr(spec, '=');
    char *end;
    double want;
    float wf;

    FUZZ_CHECK(nan_ok(f, spec));
    if (text == NULL || strlen(++text) > 40)
        return;
    want = strtod(text, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    if (*end != '\0')
        return; /* strtod reads it differently (hex, "infinity"): the parser rejected those */
    wf = (float)want;
    if (isnan(wf) || isinf(wf)) {
        FUZZ_CHECK(isnan(wf) ? isnan(f) : f == wf);
        return;
    }
    if (fabsf(f - wf) > 1e-6f * fmaxf(fabsf(f), fabsf(wf)) + 1e-44f)
        fprintf(stderr, "float default \"%s\": parsed %.9g, strtod %.9g\n", text, (double)f,
                (double)wf);
    FUZZ_CHECK(fabsf(f - wf) <= 1e-6f * fmaxf(fabsf(f), fabsf(wf)) + 1e-44f);
}

/* Checks every invariant of a successful parse of @fc into @op. */
static void check_parsed(const fuzz_case *fc, const floe__op_def *op) {
    const floe_op_def *d = &fc->block.def;
    bool minimal = d->struct_size < sizeof(*d);

    FUZZ_CHECK(d->struct_size >= offsetof(floe_op_def, name) + sizeof(d->name));
    FUZZ_CHECK(op->name != NULL && d->name != NULL && strcmp(op->name, d->name) == 0);
    FUZZ_CHECK(isupper((unsigned char)op->name[0]) || op->name[0] == '_');
    FUZZ_CHECK(is_ident(op->name) && strlen(op->name) < 128);
    FUZZ_CHECK(op->ninputs == fc->ninputs);
    FUZZ_CHECK(op->noutputs == fc->noutputs);
    FUZZ_CHECK(op->nattrs == fc->nattrs);
    FUZZ_CHECK(op->flags == (minimal ? 0 : d->flags));
    FUZZ_CHECK((op->flags & ~(FLOE_OP_STATEFUL | FLOE_OP_NO_GRADIENT)) == 0);
    FUZZ_CHECK(op->doc == (minimal ? NULL : d->doc));
    FUZZ_CHECK(op->shape_fn == NULL && op->kernels == NULL && op->nkernels == 0);

    for (int i = 0; i < op->nattrs; i++) {
        const floe__attr_def *a = &op->attrs[i];
        const floe__attr_value *v = &a->default_value;

        FUZZ_CHECK(is_ident(a->name));
        FUZZ_CHECK(floe__op_def_find_attr(op, a->name) == a); /* unique */
        FUZZ_CHECK(a->type >= FLOE_ATTR_INT && a->type <= FLOE_ATTR_LIST_TENSOR);
        if (a->type != FLOE_ATTR_TYPE && a->type != FLOE_ATTR_LIST_TYPE)
            FUZZ_CHECK(a->allowed_types == 0);
        if (a->has_min)
            FUZZ_CHECK(a->type == FLOE_ATTR_INT || (is_list(a->type) && a->min >= 0));
        if (!a->has_default) {
            FUZZ_CHECK(all_zero(v, sizeof(*v)));
            continue;
        }
        FUZZ_CHECK(v->type == a->type);
        FUZZ_CHECK(a->type != FLOE_ATTR_TENSOR);
        switch (a->type) {
        case FLOE_ATTR_INT:
            if (a->has_min)
                FUZZ_CHECK(v->u.i >= a->min);
            break;
        case FLOE_ATTR_FLOAT:
            check_float_default(v->u.f, fc->attrs[i]);
            break;
        case FLOE_ATTR_BOOL:
            FUZZ_CHECK(v->u.b == 0 || v->u.b == 1);
            break;
        case FLOE_ATTR_STRING:
            FUZZ_CHECK(v->u.s.data != NULL && strlen(v->u.s.data) <= v->u.s.len);
            break;
        case FLOE_ATTR_TYPE:
            FUZZ_CHECK(floe__dtype_valid(v->u.type));
            if (a->allowed_types != 0)
                FUZZ_CHECK((a->allowed_types & FLOE__DTYPE_MASK(v->u.type)) != 0);
            break;
        case FLOE_ATTR_SHAPE:
            FUZZ_CHECK(v->u.shape.ndim >= -1 && v->u.shape.ndim <= FLOE_MAX_DIMS);
            for (int k = 0; k < v->u.shape.ndim; k++)
                FUZZ_CHECK(v->u.shape.dims[k] >= -1);
            break;
        default:
            break;
        }
        if (is_list(a->type)) {
            FUZZ_CHECK(v->u.list.n >= 0);
            FUZZ_CHECK((v->u.list.n == 0) == (v->u.list.items == NULL));
            if (a->has_min)
                FUZZ_CHECK(v->u.list.n >= a->min);
            FUZZ_CHECK(a->type != FLOE_ATTR_LIST_TENSOR || v->u.list.n == 0);
            for (int k = 0; k < v->u.list.n; k++) {
                if (a->type == FLOE_ATTR_LIST_TYPE) {
                    floe_dtype dt = ((const floe_dtype *)v->u.list.items)[k];
                    FUZZ_CHECK(floe__dtype_valid(dt));
                    if (a->allowed_types != 0)
                        FUZZ_CHECK((a->allowed_types & FLOE__DTYPE_MASK(dt)) != 0);
                } else if (a->type == FLOE_ATTR_LIST_STRING) {
                    const floe_tstring *ts = (const floe_tstring *)v->u.list.items + k;
                    FUZZ_CHECK(ts->data != NULL && strlen(ts->data) <= ts->size);
                } else if (a->type == FLOE_ATTR_LIST_FLOAT) {
                    FUZZ_CHECK(nan_ok(((const float *)v->u.list.items)[k], fc->attrs[i]));
                } else if (a->type == FLOE_ATTR_LIST_BOOL) {
                    int b = ((const int *)v->u.list.items)[k];
                    FUZZ_CHECK(b == 0 || b == 1);
                } else if (a->type == FLOE_ATTR_LIST_SHAPE) {
                    const floe_shape *s = (const floe_shape *)v->u.list.items + k;
                    FUZZ_CHECK(s->ndim >= -1 && s->ndim <= FLOE_MAX_DIMS);
                }
            }
        }
        {
            /* The formatter reads every default the parser can produce. */
            char text[256];
            floe__attr_value_format(v, text, sizeof(text));
            FUZZ_CHECK(memchr(text, '\0', sizeof(text)) != NULL);
        }
    }

    for (int side = 0; side < 2; side++) {
        const floe__arg_def *args = side == 0 ? op->inputs : op->outputs;
        int n = side == 0 ? op->ninputs : op->noutputs;
        for (int i = 0; i < n; i++) {
            const floe__arg_def *g = &args[i];
            int kinds = (g->fixed_type != FLOE_DTYPE_INVALID) + (g->type_attr != NULL) +
                        (g->type_list_attr != NULL);

            FUZZ_CHECK(is_ident(g->name));
            for (int j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(args[j].name, g->name) != 0);
            FUZZ_CHECK(kinds == 1);
            if (g->fixed_type != FLOE_DTYPE_INVALID)
                FUZZ_CHECK(floe__dtype_valid(g->fixed_type));
            if (g->type_attr != NULL) {
                const floe__attr_def *a = floe__op_def_find_attr(op, g->type_attr);
                FUZZ_CHECK(a != NULL && a->type == FLOE_ATTR_TYPE);
            }
            if (g->type_list_attr != NULL) {
                const floe__attr_def *a = floe__op_def_find_attr(op, g->type_list_attr);
                FUZZ_CHECK(a != NULL && a->type == FLOE_ATTR_LIST_TYPE);
                FUZZ_CHECK(g->number_attr == NULL);
            }
            if (g->number_attr != NULL) {
                const floe__attr_def *a = floe__op_def_find_attr(op, g->number_attr);
                FUZZ_CHECK(a != NULL && a->type == FLOE_ATTR_INT && a->has_min && a->min >= 0);
                if (a->has_default)
                    FUZZ_CHECK(a->default_value.u.i >= a->min);
            }
        }
    }
}

/* Parses @fc once (with the case's allocation failure if @injected); checks the
 * outcome; returns the status and, in *@failures_out, the allocations failed. */
static floe_status parse_and_check(const fuzz_case *fc, bool injected, int64_t *failures_out) {
    floe__op_def op;
    floe_status st;
    int64_t failures;

    memset(&op, 0x5a, sizeof(op)); /* the parser must set all of it */
    if (injected)
        floe_testing_fail_alloc(fc->nth, fc->persistent);
    st = floe__op_def_parse(&fc->block.def, &op);
    failures = injected ? floe_testing_alloc_failures() : 0;
    floe_testing_fail_alloc(0, 0);
    *failures_out = failures;
    if (fuzz_verbose())
        fprintf(stderr, "  %s%s: %s\n", injected ? "(injected) " : "", floe_status_str(st),
                st == FLOE_OK ? "" : floe_last_error());

    if (st == FLOE_OK) {
        FUZZ_CHECK(failures == 0); /* an allocation failure was swallowed */
        check_parsed(fc, &op);
        floe__op_def_deinit(&op);
        FUZZ_CHECK(all_zero(&op, sizeof(op)));
        return st;
    }
    FUZZ_CHECK(st == FLOE_INVALID_ARGUMENT || (st == FLOE_RESOURCE_EXHAUSTED && failures > 0));
    if (failures > 0)
        FUZZ_CHECK(st == FLOE_RESOURCE_EXHAUSTED);
    FUZZ_CHECK(floe_last_error()[0] != '\0');
    FUZZ_CHECK(all_zero(&op, sizeof(op))); /* nothing to free after a failure */
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_fields f;
    fuzz_case fc;
    size_t skip = size < 3 ? size : 3;
    floe_status plain, injected;
    int64_t failures;

    if (fuzz_split(data + skip, size - skip, &f) != 0) {
        fuzz_fields_free(&f);
        return 0;
    }
    build_case(data, size, &f, &fc);
    plain = parse_and_check(&fc, false, &failures);
    if (fc.inject) {
        injected = parse_and_check(&fc, true, &failures);
        /* Injection that hit nothing changes nothing. */
        if (failures == 0)
            FUZZ_CHECK(injected == plain);
    }
    fuzz_fields_free(&f);
    return 0;
}
