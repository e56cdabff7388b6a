/*
 * test_opdef.c - white-box tests of the op-definition parser (opdef.c), the registry's
 * registration checks, commit policy and kernel selection (registry.c), and the host
 * table (host.c).
 *
 * Registry tests drive floe__host_register_* and floe__registry_commit() on plugin
 * records made here, without shared objects: what the loader does after dlopen.
 */
#include "test_common.h"

#include "core-impl.h"
#include <floe/experimental/testing.h>

#include <math.h>
#include <string.h>

/* ---- Helpers --------------------------------------------------------------------- */

#define SPECS(...) ((const char *const[]){__VA_ARGS__, NULL})

static floe_op_def make_def(const char *name, const char *const *in, const char *const *out,
                            const char *const *attrs) {
    floe_op_def d;
    memset(&d, 0, sizeof(d));
    d.struct_size = sizeof(d);
    d.name = name;
    d.inputs = in;
    d.outputs = out;
    d.attrs = attrs;
    return d;
}

/* Parses an op with one attr spec (and no args); asserts success. */
static void parse_attr_ok(const char *spec, floe__op_def *op) {
    floe_op_def d = make_def("Op", NULL, NULL, SPECS(spec));
    floe_status st = floe__op_def_parse(&d, op);
    if (st != FLOE_OK)
        fail_msg("\"%s\": %s", spec, floe_last_error());
    assert_int_equal(op->nattrs, 1);
}

/* Expects a parse failure whose message names the op, the spec and @needle. */
static void expect_bad(const floe_op_def *d, const char *spec, const char *needle) {
    floe__op_def op;
    memset(&op, 0x5a, sizeof(op));
    assert_int_equal(floe__op_def_parse(d, &op), FLOE_INVALID_ARGUMENT);
    assert_null(op.name); /* zeroed on failure, nothing to free */
    assert_int_equal(op.nattrs, 0);
    if (d->name != NULL && spec != NULL) {
        tc_assert_error_contains(d->name);
        tc_assert_error_contains(spec);
    }
    tc_assert_error_contains(needle);
}

static void expect_bad_attr(const char *spec, const char *needle) {
    floe_op_def d = make_def("BadAttr", NULL, NULL, SPECS(spec));
    expect_bad(&d, spec, needle);
}

static void expect_bad_input(const char *spec, const char *const *attrs, const char *needle) {
    floe_op_def d = make_def("BadInput", SPECS(spec), NULL, attrs);
    expect_bad(&d, spec, needle);
}

static uint64_t mask_of(const floe_dtype *dts, int n) {
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        m |= FLOE__DTYPE_MASK(dts[i]);
    return m;
}

/* ---- Args ------------------------------------------------------------------------- */

static void opdef_parse_args_and_type_attrs(void **state) {
    (void)state;
    floe_op_def d = make_def("MatMulLike", SPECS("a: T", "b: T"), SPECS("product: T"),
                             SPECS("T: {f32, f64}", "transpose_a: bool = false"));
    floe__op_def op;
    const floe_dtype fl[] = {FLOE_DTYPE_F32, FLOE_DTYPE_F64};

    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_string_equal(op.name, "MatMulLike");
    assert_int_equal(op.ninputs, 2);
    assert_int_equal(op.noutputs, 1);
    assert_int_equal(op.nattrs, 2);
    assert_string_equal(op.inputs[1].name, "b");
    assert_string_equal(op.inputs[1].type_attr, "T");
    assert_int_equal(op.inputs[1].fixed_type, FLOE_DTYPE_INVALID);
    assert_null(op.inputs[1].number_attr);
    assert_string_equal(op.outputs[0].name, "product");
    assert_int_equal(op.attrs[0].type, FLOE_ATTR_TYPE);
    assert_true(op.attrs[0].allowed_types == mask_of(fl, 2));
    assert_false(op.attrs[0].has_default);
    assert_int_equal(op.attrs[1].type, FLOE_ATTR_BOOL);
    assert_true(op.attrs[1].has_default);
    assert_int_equal(op.attrs[1].default_value.u.b, 0);
    assert_ptr_equal(floe__op_def_find_attr(&op, "transpose_a"), &op.attrs[1]);
    assert_null(floe__op_def_find_attr(&op, "nope"));
    assert_null(floe__op_def_find_attr(NULL, "T"));
    floe__op_def_deinit(&op);
    assert_null(op.name);
}

static void opdef_parse_fixed_dtypes(void **state) {
    (void)state;
    floe_op_def d = make_def("Fixed", SPECS("h: resource", "s: string", "i: int32", "f:float"),
                             SPECS("out: i64"), NULL);
    floe__op_def op;
    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_int_equal(op.inputs[0].fixed_type, FLOE_DTYPE_RESOURCE);
    assert_int_equal(op.inputs[1].fixed_type, FLOE_DTYPE_STRING);
    assert_int_equal(op.inputs[2].fixed_type, FLOE_DTYPE_I32);
    assert_int_equal(op.inputs[3].fixed_type, FLOE_DTYPE_F32);
    assert_int_equal(op.outputs[0].fixed_type, FLOE_DTYPE_I64);
    assert_null(op.inputs[0].type_attr);
    assert_int_equal(op.nattrs, 0);
    floe__op_def_deinit(&op);
}

static void opdef_parse_lists(void **state) {
    (void)state;
    floe_op_def d =
        make_def("Lists", SPECS("values: N * T", "ids: N * int64", "args: Tin"), SPECS("out: Tout"),
                 SPECS("N: int >= 1", "T: type", "Tin: list(type)", "Tout: list({f32, i32}) >= 1"));
    floe__op_def op;
    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_string_equal(op.inputs[0].number_attr, "N");
    assert_string_equal(op.inputs[0].type_attr, "T");
    assert_string_equal(op.inputs[1].number_attr, "N");
    assert_int_equal(op.inputs[1].fixed_type, FLOE_DTYPE_I64);
    assert_string_equal(op.inputs[2].type_list_attr, "Tin");
    assert_null(op.inputs[2].type_attr);
    assert_string_equal(op.outputs[0].type_list_attr, "Tout");
    assert_true(op.attrs[0].has_min);
    assert_int_equal(op.attrs[0].min, 1);
    assert_int_equal(op.attrs[2].type, FLOE_ATTR_LIST_TYPE);
    assert_int_equal(op.attrs[2].allowed_types, 0);
    assert_int_equal(op.attrs[3].type, FLOE_ATTR_LIST_TYPE);
    assert_true(op.attrs[3].allowed_types != 0);
    assert_int_equal(op.attrs[3].min, 1);
    floe__op_def_deinit(&op);
}

static void opdef_length_attr_gets_minimum_zero(void **state) {
    (void)state;
    floe_op_def d =
        make_def("Pack", SPECS("values: N * T"), SPECS("out: T"), SPECS("N: int", "T: type"));
    floe__op_def op;
    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_true(op.attrs[0].has_min);
    assert_int_equal(op.attrs[0].min, 0);
    floe__op_def_deinit(&op);
}

static void opdef_attr_named_like_dtype_wins(void **state) {
    (void)state;
    /* "Half" would be f16 by name (case-insensitive); the op's own attr wins. */
    floe_op_def d = make_def("Shadow", SPECS("x: Half"), NULL, SPECS("Half: type"));
    floe__op_def op;
    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_string_equal(op.inputs[0].type_attr, "Half");
    assert_int_equal(op.inputs[0].fixed_type, FLOE_DTYPE_INVALID);
    floe__op_def_deinit(&op);
}

/* ---- Attrs and defaults ------------------------------------------------------------- */

static void opdef_scalar_defaults(void **state) {
    (void)state;
    floe__op_def op;

    parse_attr_ok("axis: int = -3", &op);
    assert_int_equal(op.attrs[0].default_value.type, FLOE_ATTR_INT);
    assert_int_equal(op.attrs[0].default_value.u.i, -3);
    floe__op_def_deinit(&op);

    parse_attr_ok("alpha: float = -1.5", &op);
    assert_true(op.attrs[0].default_value.u.f == -1.5f);
    floe__op_def_deinit(&op);

    parse_attr_ok("eps: float = 1e-3", &op);
    assert_true(fabsf(op.attrs[0].default_value.u.f - 1e-3f) < 1e-9f);
    floe__op_def_deinit(&op);

    parse_attr_ok("big: float = -inf", &op);
    assert_true(isinf(op.attrs[0].default_value.u.f) && op.attrs[0].default_value.u.f < 0);
    floe__op_def_deinit(&op);

    parse_attr_ok("whole: float = 2", &op);
    assert_true(op.attrs[0].default_value.u.f == 2.0f);
    floe__op_def_deinit(&op);

    parse_attr_ok("keep: bool = true", &op);
    assert_int_equal(op.attrs[0].default_value.u.b, 1);
    floe__op_def_deinit(&op);

    parse_attr_ok("pad: string = \"SA\\\"ME\"", &op);
    assert_string_equal(op.attrs[0].default_value.u.s.data, "SA\"ME");
    assert_int_equal(op.attrs[0].default_value.u.s.len, 5);
    floe__op_def_deinit(&op);

    parse_attr_ok("c: string = 'single'", &op);
    assert_string_equal(op.attrs[0].default_value.u.s.data, "single");
    floe__op_def_deinit(&op);

    parse_attr_ok("dt: type = f32", &op);
    assert_int_equal(op.attrs[0].default_value.u.type, FLOE_DTYPE_F32);
    floe__op_def_deinit(&op);

    parse_attr_ok("T: {f32, i32} = int32", &op);
    assert_int_equal(op.attrs[0].default_value.u.type, FLOE_DTYPE_I32);
    floe__op_def_deinit(&op);

    parse_attr_ok("n: int >= 2 = 2", &op);
    assert_int_equal(op.attrs[0].min, 2);
    floe__op_def_deinit(&op);
}

static void opdef_list_and_shape_defaults(void **state) {
    (void)state;
    floe__op_def op;
    const floe__attr_value *v;

    parse_attr_ok("strides: list(int) = [1, 2, -3]", &op);
    v = &op.attrs[0].default_value;
    assert_int_equal(v->type, FLOE_ATTR_LIST_INT);
    assert_int_equal(v->u.list.n, 3);
    assert_int_equal(((const int64_t *)v->u.list.items)[2], -3);
    floe__op_def_deinit(&op);

    parse_attr_ok("w: list(float) = []", &op);
    assert_int_equal(op.attrs[0].default_value.type, FLOE_ATTR_LIST_FLOAT);
    assert_int_equal(op.attrs[0].default_value.u.list.n, 0);
    floe__op_def_deinit(&op);

    parse_attr_ok("names: list(string) = [\"a\", \"b,c\"]", &op);
    v = &op.attrs[0].default_value;
    assert_int_equal(v->u.list.n, 2);
    assert_string_equal(((const floe_tstring *)v->u.list.items)[1].data, "b,c");
    floe__op_def_deinit(&op);

    parse_attr_ok("types: list(type) = [f32, i64]", &op);
    v = &op.attrs[0].default_value;
    assert_int_equal(((const floe_dtype *)v->u.list.items)[1], FLOE_DTYPE_I64);
    floe__op_def_deinit(&op);

    parse_attr_ok("flags: list(bool) = [true, false]", &op);
    assert_int_equal(((const int *)op.attrs[0].default_value.u.list.items)[0], 1);
    floe__op_def_deinit(&op);

    parse_attr_ok("s: shape = [2, -1]", &op);
    v = &op.attrs[0].default_value;
    assert_int_equal(v->u.shape.ndim, 2);
    assert_int_equal(v->u.shape.dims[1], -1);
    floe__op_def_deinit(&op);

    parse_attr_ok("u: shape = ?", &op);
    assert_int_equal(op.attrs[0].default_value.u.shape.ndim, -1);
    floe__op_def_deinit(&op);

    parse_attr_ok("scalar: shape = []", &op);
    assert_int_equal(op.attrs[0].default_value.u.shape.ndim, 0);
    floe__op_def_deinit(&op);

    parse_attr_ok("shapes: list(shape) = [[1], [2, 3]]", &op);
    v = &op.attrs[0].default_value;
    assert_int_equal(v->u.list.n, 2);
    assert_int_equal(((const floe_shape *)v->u.list.items)[1].dims[1], 3);
    floe__op_def_deinit(&op);

    parse_attr_ok("value: tensor", &op);
    assert_int_equal(op.attrs[0].type, FLOE_ATTR_TENSOR);
    floe__op_def_deinit(&op);
}

static void opdef_type_set_names(void **state) {
    (void)state;
    floe__op_def op;
    uint64_t m;

    parse_attr_ok("T: numbertype", &op);
    m = op.attrs[0].allowed_types;
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_COMPLEX64));
    assert_false(m & FLOE__DTYPE_MASK(FLOE_DTYPE_BOOL));
    floe__op_def_deinit(&op);

    parse_attr_ok("T: realnumbertype", &op);
    m = op.attrs[0].allowed_types;
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_U64));
    assert_false(m & FLOE__DTYPE_MASK(FLOE_DTYPE_COMPLEX64));
    floe__op_def_deinit(&op);

    parse_attr_ok("T: floattype = f32", &op);
    m = op.attrs[0].allowed_types;
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_BF16));
    assert_false(m & FLOE__DTYPE_MASK(FLOE_DTYPE_I32));
    floe__op_def_deinit(&op);

    parse_attr_ok("T: {inttype, bool}", &op);
    m = op.attrs[0].allowed_types;
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_U16));
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_BOOL));
    assert_false(m & FLOE__DTYPE_MASK(FLOE_DTYPE_F32));
    floe__op_def_deinit(&op);

    parse_attr_ok("T: alltypes", &op);
    m = op.attrs[0].allowed_types;
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_RESOURCE));
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_STRING));
    floe__op_def_deinit(&op);

    parse_attr_ok("Ts: list(floattype)", &op);
    assert_int_equal(op.attrs[0].type, FLOE_ATTR_LIST_TYPE);
    assert_true(op.attrs[0].allowed_types & FLOE__DTYPE_MASK(FLOE_DTYPE_F16));
    floe__op_def_deinit(&op);
}

static void opdef_parse_type_set(void **state) {
    (void)state;
    uint64_t m = 1;
    assert_int_equal(floe__parse_type_set(" {f32, f64} ", &m), FLOE_OK);
    assert_true(m == (FLOE__DTYPE_MASK(FLOE_DTYPE_F32) | FLOE__DTYPE_MASK(FLOE_DTYPE_F64)));
    assert_int_equal(floe__parse_type_set("i32", &m), FLOE_OK);
    assert_true(m == FLOE__DTYPE_MASK(FLOE_DTYPE_I32));
    assert_int_equal(floe__parse_type_set("floattype", &m), FLOE_OK);
    assert_true(m & FLOE__DTYPE_MASK(FLOE_DTYPE_F16));

    assert_int_equal(floe__parse_type_set("{f32", &m), FLOE_INVALID_ARGUMENT);
    assert_int_equal(m, 0);
    tc_assert_error_contains("{f32");
    assert_int_equal(floe__parse_type_set("{f32, bogus}", &m), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("bogus");
    assert_int_equal(floe__parse_type_set("", &m), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__parse_type_set("f32 f64", &m), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__parse_type_set(NULL, &m), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__parse_type_set("f32", NULL), FLOE_INVALID_ARGUMENT);
}

/* ---- Errors ------------------------------------------------------------------------ */

static void opdef_rejects_bad_attrs(void **state) {
    (void)state;
    expect_bad_attr("T: {f32, bogus}", "unknown dtype 'bogus'");
    expect_bad_attr("T: {f32, f64} = i32", "not in the attr's allowed set");
    expect_bad_attr("n: int >= 2 = 1", "below the minimum");
    expect_bad_attr("x: float >= 1", "int and list attrs only");
    expect_bad_attr("l: list(int) >= 2 = [1]", "fewer than the minimum");
    expect_bad_attr("l: list(int) >= -1", ">= 0");
    expect_bad_attr("k: widget", "unknown attr kind 'widget'");
    expect_bad_attr("s: string = \"open", "unterminated");
    expect_bad_attr("s: string = \"\\q\"", "unknown escape");
    expect_bad_attr("n: int = 1.5", "expected an integer");
    expect_bad_attr("n: int = 99999999999999999999", "out of range");
    expect_bad_attr("b: bool = yes", "true or false");
    expect_bad_attr("t: tensor = 1", "tensor attrs take no default");
    expect_bad_attr("n: int = 3 junk", "unexpected");
    expect_bad_attr("n int", "expected ':'");
    expect_bad_attr("s: shape = [1, -2]", "-2");
    expect_bad_attr("s: shape = [1,2,3,4,5,6,7,8,9]", "more than 8");
    expect_bad_attr("l: list(int) = [1, 2", "expected ']'");
    expect_bad_attr("l: list(type) = [f32, nope]", "nope");
    expect_bad_attr("l: list(string) = [\"a\", \"b]", "unterminated");
    expect_bad_attr("l: list(widget)", "widget");
    expect_bad_attr("9x: int", "an attr name");

    floe_op_def dup = make_def("Dup", NULL, NULL, SPECS("T: type", "T: int"));
    expect_bad(&dup, "T: int", "defined twice");
}

static void opdef_rejects_bad_args(void **state) {
    (void)state;
    expect_bad_input("x: Q", NULL, "'Q' is neither a dtype nor an attr");
    expect_bad_input("x: N * T", SPECS("N: type", "T: type"), "length 'N' must name an int attr");
    expect_bad_input("x: N * Tl", SPECS("N: int", "Tl: list(type)"), "not a type attr");
    expect_bad_input("x: n", SPECS("n: int"), "not a type or list(type) attr");
    expect_bad_input("x: T extra", SPECS("T: type"), "unexpected");
    expect_bad_input("x: N * T", SPECS("N: int >= -1", "T: type"), "negative minimum");
    expect_bad_input("x", NULL, "expected ':'");

    floe_op_def dup = make_def("DupIn", SPECS("x: f32", "x: f32"), NULL, NULL);
    expect_bad(&dup, "x: f32", "defined twice");
    floe_op_def dupo = make_def("DupOut", NULL, SPECS("y: f32", "y: i32"), NULL);
    expect_bad(&dupo, "y: i32", "defined twice");
}

static void opdef_rejects_bad_definitions(void **state) {
    (void)state;
    floe_op_def d = make_def("lowerCase", NULL, NULL, NULL);
    floe__op_def op;

    expect_bad(&d, NULL, "malformed");
    d.name = "Has-Dash";
    expect_bad(&d, NULL, "malformed");
    d.name = NULL;
    expect_bad(&d, NULL, "without a name");
    d.name = "Flagged";
    d.flags = 0x80;
    expect_bad(&d, NULL, "unknown flags");
    d.flags = 0;
    d.struct_size = 4;
    expect_bad(&d, NULL, "struct_size");
    assert_int_equal(floe__op_def_parse(NULL, &op), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__op_def_parse(&d, NULL), FLOE_INVALID_ARGUMENT);

    /* A struct from a plugin whose floe_op_def ends after the name: the rest is zero. */
    d.struct_size = offsetof(floe_op_def, name) + sizeof(d.name);
    d.inputs = SPECS("garbage that must not be read");
    assert_int_equal(floe__op_def_parse(&d, &op), FLOE_OK);
    assert_int_equal(op.ninputs, 0);
    floe__op_def_deinit(&op);
}

static void opdef_parse_survives_every_allocation_failure(void **state) {
    (void)state;
    floe_op_def d =
        make_def("Everything", SPECS("values: N * T", "names: string", "more: Tl"), SPECS("out: T"),
                 SPECS("N: int >= 1 = 2", "T: numbertype = f32", "Tl: list(type)",
                       "s: list(string) = [\"a\", \"bb\"]", "p: string = \"x\"",
                       "sh: list(shape) = [[1, 2]]"));
    int failures = 0;
    for (int64_t n = 1; n < 1000; n++) {
        floe__op_def op;
        floe_testing_fail_alloc(n, 0);
        floe_status st = floe__op_def_parse(&d, &op);
        floe_testing_fail_alloc(0, 0);
        if (st == FLOE_OK) {
            assert_int_equal(op.nattrs, 6);
            floe__op_def_deinit(&op);
            assert_true(failures > 5);
            return;
        }
        assert_int_equal(st, FLOE_RESOURCE_EXHAUSTED);
        assert_null(op.name);
        failures++;
    }
    fail_msg("parse never succeeded");
}

/* ---- Registry ------------------------------------------------------------------------ */

static floe_context *bare_context(void) {
    floe_context_options o;
    floe_context *ctx = NULL;
    floe_context_options_init(&o);
    o.no_plugins = 1;
    o.num_threads = 1;
    assert_int_equal(floe_context_new(&o, &ctx), FLOE_OK);
    return ctx;
}

/* A plugin record as the loader makes it, in init(); the context frees it. */
static floe_plugin *fake_plugin(floe_context *ctx, const char *name) {
    floe_plugin *p = floe__calloc(1, sizeof(*p));
    assert_non_null(p);
    p->ctx = ctx;
    p->name = floe__strdup(name);
    p->path = floe__strdup("/fake/path.so");
    p->state = FLOE__PLUGIN_LOADING;
    if (ctx->nplugins == ctx->cap_plugins) {
        ctx->cap_plugins = ctx->cap_plugins * 2 + 4;
        ctx->plugins = floe__realloc(ctx->plugins, (size_t)ctx->cap_plugins * sizeof(p));
        assert_non_null(ctx->plugins);
    }
    ctx->plugins[ctx->nplugins++] = p;
    return p;
}

static floe_status commit(floe_context *ctx, floe_plugin *p, char **reason) {
    floe_status st = floe__registry_commit(ctx, p, reason);
    p->state = st == FLOE_OK ? FLOE__PLUGIN_LOADED : FLOE__PLUGIN_REJECTED;
    return st;
}

static floe_status dummy_compute(floe_kernel_ctx *kc, void *state) {
    (void)kc;
    (void)state;
    return FLOE_OK;
}

static floe_status other_compute(floe_kernel_ctx *kc, void *state) {
    (void)kc;
    (void)state;
    return FLOE_OK;
}

static floe_kernel_def kdef(const char *op, const char *dev, const char *const *constraints,
                            int prio, floe_status (*fn)(floe_kernel_ctx *, void *)) {
    floe_kernel_def k;
    memset(&k, 0, sizeof(k));
    k.struct_size = sizeof(k);
    k.op = op;
    k.device_type = dev;
    k.constraints = constraints;
    k.priority = prio;
    k.compute = fn;
    return k;
}

static void registry_kernel_selection_by_constraint_and_priority(void **state) {
    (void)state;
    floe_context *ctx = bare_context();
    floe_plugin *a = fake_plugin(ctx, "a"), *b = fake_plugin(ctx, "b");
    floe_op_def op = make_def("Sel", SPECS("x: T"), SPECS("y: T"), SPECS("T: {f32, i32, f64}"));
    floe_kernel_def k1 = kdef("Sel", "CPU", SPECS("T: {f32}"), 0, dummy_compute);
    floe_kernel_def k2 = kdef("Sel", "CPU", SPECS("T: {i32}"), 0, dummy_compute);
    floe_kernel_def k3 = kdef("Sel", "CPU", SPECS(" T : {f32, f64}"), 5, other_compute);
    char *reason = NULL;
    floe_attrs *attrs = NULL;
    const floe__op_def *sel;

    /* Kernels before their op, two kernels of one plugin at one priority: allowed. */
    assert_int_equal(floe__host_register_kernel(a, &k1), FLOE_OK);
    assert_int_equal(floe__host_register_kernel(a, &k2), FLOE_OK);
    assert_int_equal(floe__host_register_op(a, &op), FLOE_OK);
    assert_int_equal(commit(ctx, a, &reason), FLOE_OK);
    assert_null(reason);
    /* Another plugin overrides at a higher priority, for f32/f64 only. */
    assert_int_equal(floe__host_register_kernel(b, &k3), FLOE_OK);
    assert_int_equal(commit(ctx, b, &reason), FLOE_OK);

    sel = floe__registry_find_op(ctx, "Sel");
    assert_non_null(sel);
    assert_int_equal(sel->nkernels, 3);
    assert_int_equal(floe_attrs_new(&attrs), FLOE_OK);
    assert_null(floe__registry_find_kernel(ctx, sel, "CPU", attrs)); /* T unresolved */
    assert_int_equal(floe_attrs_set_type(attrs, "T", FLOE_DTYPE_I32), FLOE_OK);
    assert_ptr_equal(floe__registry_find_kernel(ctx, sel, "CPU", attrs), sel->kernels[1]);
    assert_int_equal(floe_attrs_set_type(attrs, "T", FLOE_DTYPE_F32), FLOE_OK);
    assert_ptr_equal(floe__registry_find_kernel(ctx, sel, "CPU", attrs)->compute, other_compute);
    assert_ptr_equal(floe__registry_find_kernel(ctx, sel, "cpu", attrs)->compute, other_compute);
    assert_null(floe__registry_find_kernel(ctx, sel, "GPU", attrs));
    floe_attrs_free(attrs);
    floe_context_free(ctx);
}

static void registry_same_priority_from_other_plugin_rejected(void **state) {
    (void)state;
    floe_context *ctx = bare_context();
    floe_plugin *a = fake_plugin(ctx, "first"), *b = fake_plugin(ctx, "second");
    floe_op_def op = make_def("Same", NULL, SPECS("y: f32"), NULL);
    floe_op_def op2 = make_def("Innocent", NULL, SPECS("y: f32"), NULL);
    floe_kernel_def k = kdef("Same", "GPU", NULL, 3, dummy_compute);
    char *reason = NULL;

    assert_int_equal(floe__host_register_op(a, &op), FLOE_OK);
    assert_int_equal(floe__host_register_kernel(a, &k), FLOE_OK);
    assert_int_equal(commit(ctx, a, &reason), FLOE_OK);
    assert_int_equal(floe__host_register_op(b, &op2), FLOE_OK);
    assert_int_equal(floe__host_register_kernel(b, &k), FLOE_OK);
    assert_int_equal(commit(ctx, b, &reason), FLOE_ALREADY_EXISTS);
    assert_non_null(reason);
    assert_non_null(strstr(reason, "kernel for op 'Same' on GPU with priority 3"));
    assert_non_null(strstr(reason, "plugin 'first'"));
    floe__free(reason);
    /* Nothing of the rejected plugin took effect. */
    assert_null(floe__registry_find_op(ctx, "Innocent"));
    assert_int_equal(floe__registry_find_op(ctx, "Same")->nkernels, 1);
    assert_int_equal(ctx->reg.nkernels, 1);
    floe_context_free(ctx);
}

static void registry_rejects_unknown_op_and_misfit_kernels(void **state) {
    (void)state;
    floe_context *ctx = bare_context();
    floe_op_def op = make_def("Fit", SPECS("x: T"), SPECS("y: T"), SPECS("T: {f32}", "n: int"));
    floe_kernel_def ghost = kdef("Ghost", "CPU", NULL, 0, dummy_compute);
    floe_kernel_def not_type = kdef("Fit", "CPU", SPECS("n: {i32}"), 0, dummy_compute);
    floe_kernel_def disjoint = kdef("Fit", "CPU", SPECS("T: {i64}"), 0, dummy_compute);
    floe_kernel_def hostmem = kdef("Fit", "CPU", NULL, 0, dummy_compute);
    const floe_kernel_def *bad[] = {&ghost, &not_type, &disjoint, &hostmem};
    const char *why[] = {"unknown op 'Ghost'", "not a type attr", "allows no dtype",
                         "'zz', which is not an argument"};
    hostmem.host_memory = SPECS("x", "zz");

    for (int i = 0; i < 4; i++) {
        floe_plugin *p = fake_plugin(ctx, "misfit");
        char *reason = NULL;
        assert_int_equal(floe__host_register_op(p, &op), FLOE_OK);
        assert_int_equal(floe__host_register_kernel(p, bad[i]), FLOE_OK);
        assert_int_not_equal(commit(ctx, p, &reason), FLOE_OK);
        if (reason == NULL || strstr(reason, why[i]) == NULL)
            fail_msg("case %d: reason \"%s\" lacks \"%s\"", i, reason ? reason : "", why[i]);
        floe__free(reason);
        assert_null(floe__registry_find_op(ctx, "Fit"));
    }
    floe_context_free(ctx);
}

static void registry_register_checks_definitions(void **state) {
    (void)state;
    floe_context *ctx = bare_context();
    floe_plugin *p = fake_plugin(ctx, "checks");
    floe_op_def op = make_def("Twice", NULL, NULL, NULL);
    floe_kernel_def k = kdef("Twice", "cpu", NULL, 0, dummy_compute);
    floe_device_ops ops;
    floe_device_desc dev;
    char *reason = NULL;

    assert_int_equal(floe__host_register_op(p, &op), FLOE_OK);
    assert_int_equal(floe__host_register_op(p, &op), FLOE_ALREADY_EXISTS);
    tc_assert_error_contains("registered twice");
    assert_int_equal(floe__host_register_op(NULL, &op), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__host_register_kernel(p, &k), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("device type 'cpu' is malformed");
    k.device_type = "CPU";
    k.compute = NULL;
    assert_int_equal(floe__host_register_kernel(p, &k), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("compute");
    k.compute = dummy_compute;
    k.constraints = SPECS("T {f32}");
    assert_int_equal(floe__host_register_kernel(p, &k), FLOE_INVALID_ARGUMENT);
    k.constraints = SPECS("T: {f32, nope}");
    assert_int_equal(floe__host_register_kernel(p, &k), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("nope");
    k.constraints = NULL;
    k.struct_size = 8;
    assert_int_equal(floe__host_register_kernel(p, &k), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__host_register_gradient(p, "Twice", NULL), FLOE_INVALID_ARGUMENT);

    /* Device ops: other major, newer minor, missing required member. */
    memset(&ops, 0, sizeof(ops));
    ops.abi_major = FLOE_PLUGIN_ABI_MAJOR + 1;
    ops.struct_size = sizeof(ops);
    memset(&dev, 0, sizeof(dev));
    dev.struct_size = sizeof(dev);
    dev.type = "TEST";
    dev.ops = &ops;
    assert_int_equal(floe__host_register_device(p, &dev), FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("ABI 2.0");
    ops.abi_major = FLOE_PLUGIN_ABI_MAJOR;
    ops.abi_minor = FLOE_PLUGIN_ABI_MINOR + 1;
    assert_int_equal(floe__host_register_device(p, &dev), FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("newer");
    ops.abi_minor = FLOE_PLUGIN_ABI_MINOR;
    assert_int_equal(floe__host_register_device(p, &dev), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("'alloc' is NULL");
    dev.type = "Bad Type";
    assert_int_equal(floe__host_register_device(p, &dev), FLOE_INVALID_ARGUMENT);
    dev.type = "TEST";
    dev.index = -1;
    assert_int_equal(floe__host_register_device(p, &dev), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__host_register_filesystem(p, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe__host_register_transport(p, NULL), FLOE_INVALID_ARGUMENT);

    assert_int_equal(commit(ctx, p, &reason), FLOE_OK);
    /* After init, registering is refused. */
    op.name = "Late";
    assert_int_equal(floe__host_register_op(ctx->plugins[0], &op), FLOE_FAILED_PRECONDITION);
    tc_assert_error_contains("only during init");
    floe_context_free(ctx);
}

static floe_status grad_a(floe_grad_ctx *gc) {
    (void)gc;
    return FLOE_OK;
}

static floe_status grad_b(floe_grad_ctx *gc) {
    (void)gc;
    return FLOE_UNIMPLEMENTED;
}

static void registry_gradients_first_loaded_wins(void **state) {
    (void)state;
    floe_context *ctx = bare_context();
    floe_plugin *a = fake_plugin(ctx, "grads_a"), *b, *c, *d;
    floe_op_def op = make_def("Diff", SPECS("x: f32"), SPECS("y: f32"), NULL);
    floe_op_def flat = make_def("Flat", SPECS("x: f32"), SPECS("y: f32"), NULL);
    char *reason = NULL;

    flat.flags = FLOE_OP_NO_GRADIENT;
    /* The gradient may come before its op. */
    assert_int_equal(floe__host_register_gradient(a, "Diff", grad_a), FLOE_OK);
    assert_int_equal(floe__host_register_gradient(a, "Diff", grad_a), FLOE_ALREADY_EXISTS);
    assert_int_equal(floe__host_register_op(a, &op), FLOE_OK);
    assert_int_equal(floe__host_register_op(a, &flat), FLOE_OK);
    assert_int_equal(commit(ctx, a, &reason), FLOE_OK);
    assert_ptr_equal(floe__registry_find_op(ctx, "Diff")->grad_fn, grad_a);
    assert_ptr_equal(floe__registry_find_op(ctx, "Diff")->grad_plugin, a);

    b = fake_plugin(ctx, "grads_b");
    assert_int_equal(floe__host_register_gradient(b, "Diff", grad_b), FLOE_OK);
    assert_int_equal(commit(ctx, b, &reason), FLOE_ALREADY_EXISTS);
    assert_non_null(strstr(reason, "gradient of op 'Diff' is already registered by plugin "
                                   "'grads_a'"));
    floe__free(reason);
    assert_ptr_equal(floe__registry_find_op(ctx, "Diff")->grad_fn, grad_a);

    c = fake_plugin(ctx, "grads_c");
    assert_int_equal(floe__host_register_gradient(c, "Flat", grad_b), FLOE_OK);
    assert_int_equal(commit(ctx, c, &reason), FLOE_INVALID_ARGUMENT);
    assert_non_null(strstr(reason, "FLOE_OP_NO_GRADIENT"));
    floe__free(reason);

    d = fake_plugin(ctx, "grads_d");
    assert_int_equal(floe__host_register_gradient(d, "Nowhere", grad_b), FLOE_OK);
    assert_int_equal(commit(ctx, d, &reason), FLOE_NOT_FOUND);
    assert_non_null(strstr(reason, "gradient for unknown op 'Nowhere'"));
    floe__free(reason);
    floe_context_free(ctx);
}

/* ---- Host table ------------------------------------------------------------------------ */

static void host_table_every_member_set(void **state) {
    (void)state;
    const unsigned char *base = (const unsigned char *)&floe__host_table;
    assert_int_equal(floe__host_table.abi_major, FLOE_PLUGIN_ABI_MAJOR);
    assert_int_equal(floe__host_table.abi_minor, FLOE_PLUGIN_ABI_MINOR);
    assert_int_equal(floe__host_table.struct_size, sizeof(floe_host));
    for (size_t off = offsetof(floe_host, alloc); off < sizeof(floe_host);
         off += sizeof(void (*)(void))) {
        void (*fn)(void);
        memcpy(&fn, base + off, sizeof(fn));
        if (fn == NULL)
            fail_msg("floe__host_table member at offset %zu is NULL", off);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opdef_parse_args_and_type_attrs),
        cmocka_unit_test(opdef_parse_fixed_dtypes),
        cmocka_unit_test(opdef_parse_lists),
        cmocka_unit_test(opdef_length_attr_gets_minimum_zero),
        cmocka_unit_test(opdef_attr_named_like_dtype_wins),
        cmocka_unit_test(opdef_scalar_defaults),
        cmocka_unit_test(opdef_list_and_shape_defaults),
        cmocka_unit_test(opdef_type_set_names),
        cmocka_unit_test(opdef_parse_type_set),
        cmocka_unit_test(opdef_rejects_bad_attrs),
        cmocka_unit_test(opdef_rejects_bad_args),
        cmocka_unit_test(opdef_rejects_bad_definitions),
        cmocka_unit_test(opdef_parse_survives_every_allocation_failure),
        cmocka_unit_test(registry_kernel_selection_by_constraint_and_priority),
        cmocka_unit_test(registry_same_priority_from_other_plugin_rejected),
        cmocka_unit_test(registry_rejects_unknown_op_and_misfit_kernels),
        cmocka_unit_test(registry_register_checks_definitions),
        cmocka_unit_test(registry_gradients_first_loaded_wins),
        cmocka_unit_test(host_table_every_member_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
