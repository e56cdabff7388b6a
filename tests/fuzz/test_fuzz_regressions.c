/*
 * test_fuzz_regressions.c - unit tests for the bugs that fuzzing found in the parsers
 * of untrusted text (tests/fuzz).  Each test names the corpus file that reproduces the
 * bug under its fuzz target (tests/fuzz/corpus/<target>/regress-*), which the 'fuzz'
 * suite replays as well; these tests state the expected behaviour in plain terms.
 */
#include "test_common.h"

#include "core-impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* fuzz_opdef/regress-length-negative-default: "N: int = -1" used as the length of
 * "x: N * T" was accepted; the length's implied minimum 0 was set without checking the
 * default, so the definition carried a default below its own minimum (every node that
 * relied on it failed later, and an output-only length attr was unusable).  A stated
 * minimum ("N: int >= 0 = -1") was already rejected; the implied one is now too. */
static void length_attr_with_negative_default_is_rejected(void **state) {
    floe_op_def in = make_def("Op", SPECS("x: N * T"), NULL, SPECS("N: int = -1", "T: type"));
    floe_op_def out = make_def("Op", NULL, SPECS("y: N * f32"), SPECS("N: int = -5"));
    floe_op_def stated = make_def("Op", SPECS("x: N * T"), NULL,
                                  SPECS("N: int >= 0 = -1", "T: type"));
    floe__op_def op;

    memset(&op, 0x5a, sizeof(op));
    assert_int_equal(floe__op_def_parse(&in, &op), FLOE_INVALID_ARGUMENT);
    assert_null(op.name);
    tc_assert_error_contains("x: N * T");
    tc_assert_error_contains("negative default -1");

    assert_int_equal(floe__op_def_parse(&out, &op), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("y: N * f32");
    tc_assert_error_contains("negative default -5");

    assert_int_equal(floe__op_def_parse(&stated, &op), FLOE_INVALID_ARGUMENT);
    tc_assert_error_contains("below the minimum 0");
}

/* The fix leaves the valid forms alone: a default of 0 or more, or none, gets the
 * implied minimum 0. */
static void length_attr_with_valid_default_still_parses(void **state) {
    floe_op_def zero = make_def("Op", SPECS("x: N * T"), SPECS("y: N * T"),
                                SPECS("N: int = 0", "T: type"));
    floe_op_def none = make_def("Op", SPECS("x: N * T"), NULL, SPECS("N: int", "T: type"));
    floe__op_def op;
    const floe__attr_def *n;

    assert_int_equal(floe__op_def_parse(&zero, &op), FLOE_OK);
    n = floe__op_def_find_attr(&op, "N");
    assert_non_null(n);
    assert_true(n->has_min);
    assert_int_equal(n->min, 0);
    assert_true(n->has_default);
    assert_int_equal(n->default_value.u.i, 0);
    floe__op_def_deinit(&op);

    assert_int_equal(floe__op_def_parse(&none, &op), FLOE_OK);
    n = floe__op_def_find_attr(&op, "N");
    assert_non_null(n);
    assert_true(n->has_min);
    assert_int_equal(n->min, 0);
    assert_false(n->has_default);
    floe__op_def_deinit(&op);
}

/* Parses one attr spec whose default is a float; returns the default. */
static float float_default(const char *spec) {
    floe_op_def d = make_def("Op", NULL, NULL, SPECS(spec));
    floe__op_def op;
    float f;

    if (floe__op_def_parse(&d, &op) != FLOE_OK)
        fail_msg("\"%s\": %s", spec, floe_last_error());
    assert_int_equal(op.nattrs, 1);
    assert_true(op.attrs[0].has_default);
    f = op.attrs[0].default_value.type == FLOE_ATTR_FLOAT
            ? op.attrs[0].default_value.u.f
            : ((const float *)op.attrs[0].default_value.u.list.items)[0];
    floe__op_def_deinit(&op);
    return f;
}

/* fuzz_opdef/regress-float-zero-huge-exponent: "a: float = 0E740" gave NaN (the parser
 * computed 0 * pow(10, 740) = 0 * inf).  fuzz_opdef/regress-float-long-mantissa: a
 * mantissa of more than 308 digits overflowed the double to inf before a negative
 * exponent could bring it back (inf * 0 = NaN again). */
static void float_defaults_are_never_nan_unless_written_so(void **state) {
    char spec[512];
    float f;

    f = float_default("a: float = 0E740");
    assert_false(isnan(f));
    assert_true(f == 0.0f && !signbit(f));
    f = float_default("a: float = -0e99999999999999999999");
    assert_true(f == 0.0f && signbit(f));
    assert_true(float_default("a: list(float) = [0.0e400]") == 0.0f);
    assert_true(float_default("a: float = 0.5e-9999") == 0.0f);
    assert_true(isinf(float_default("a: float = 5e9999")));

    snprintf(spec, sizeof(spec), "f: float = 1%0400de-395", 0);
    f = float_default(spec);
    assert_false(isnan(f));
    assert_float_equal(f, 1e5f, 1e-1f);
    snprintf(spec, sizeof(spec), "f: float = 25%0400d.5e-401", 0);
    assert_float_equal(float_default(spec), 2.5f, 1e-6f);

    assert_true(isnan(float_default("a: float = nan")));
    assert_true(isnan(float_default("a: float = -nan")));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(length_attr_with_negative_default_is_rejected),
        cmocka_unit_test(length_attr_with_valid_default_still_parses),
        cmocka_unit_test(float_defaults_are_never_nan_unless_written_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
