/*
 * test_ops_gather.c - GatherV2 of ops_math (plugins/ops_math/gather.c), run eagerly on
 * CPU: random params/indices/axis/batch_dims against a naive reference (several dtypes,
 * int32 and int64 indices, rank-0 indices, empty tensors, a large gather split across
 * threads), and every validation error with its message, above all indices out of
 * range, which must name the index's position, its value and the valid range.
 */
#include "test_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void) {
    return tc_rng_next(&rng);
}

static int64_t rnd_range(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static floe_tensor *rand_tensor(floe_dtype dt, const int64_t *shape, int nd) {
    return tc_rand_bytes(dt, shape, nd, &rng, "p%lld/%llu", 777);
}

/* An index tensor of @dt (I32 or I64) holding @v. */
static floe_tensor *index_tensor(floe_dtype dt, const int64_t *shape, int nd, const int64_t *v) {
    floe_tensor *t = tc_tensor(dt, shape, nd, NULL);
    for (int64_t i = 0; i < floe_tensor_num_elements(t); i++) {
        if (dt == FLOE_DTYPE_I64)
            ((int64_t *)floe_tensor_data(t))[i] = v[i];
        else
            ((int32_t *)floe_tensor_data(t))[i] = (int32_t)v[i];
    }
    return t;
}

static floe_attrs *batch_attrs(int64_t bd) {
    floe_attrs *a = NULL;
    assert_int_equal(floe_attrs_new(&a), FLOE_OK);
    assert_int_equal(floe_attrs_set_int(a, "batch_dims", bd), FLOE_OK);
    return a;
}

static void expect_invalid(floe_context *ctx, floe_tensor *const *in, const floe_attrs *a,
                           const char *needle) {
    tc_expect_invalid(ctx, "GatherV2", in, 3, a, 1, needle);
}

static const floe_dtype data_types[] = {FLOE_DTYPE_F32, FLOE_DTYPE_U8,     FLOE_DTYPE_I16,
                                        FLOE_DTYPE_F64, FLOE_DTYPE_STRING, FLOE_DTYPE_COMPLEX64};
#define NTYPES (sizeof(data_types) / sizeof(data_types[0]))

/* Gathers and checks against the definition, element by element. */
static void check_gather(floe_context *ctx, floe_dtype dt, const int64_t *pd, int pr,
                         const int64_t *id, int ir, int axis, int bd, bool i64, bool neg_axis) {
    int64_t idx[4096], od[FLOE_MAX_DIMS], co[FLOE_MAX_DIMS], pc[FLOE_MAX_DIMS];
    int64_t ic[FLOE_MAX_DIMS];
    int64_t ni = tc_count(id, ir), on = 0;
    floe_dtype it = i64 ? FLOE_DTYPE_I64 : FLOE_DTYPE_I32;

    assert_true(ni <= 4096);
    for (int64_t k = 0; k < ni; k++)
        idx[k] = rnd_range(0, pd[axis] - 1);
    for (int i = 0; i < axis; i++)
        od[on++] = pd[i];
    for (int i = bd; i < ir; i++)
        od[on++] = id[i];
    for (int i = axis + 1; i < pr; i++)
        od[on++] = pd[i];

    floe_tensor *in[3];
    in[0] = rand_tensor(dt, pd, pr);
    in[1] = index_tensor(it, id, ir, idx);
    int64_t ax = neg_axis ? axis - pr : axis;
    in[2] = index_tensor(i64 ? FLOE_DTYPE_I32 : FLOE_DTYPE_I64, NULL, 0, &ax);
    floe_attrs *a = batch_attrs(bd);
    /* a host copy of a GPU's result: tc_assert_elem_eq would copy it for every element */
    floe_tensor *out = tc_take_host(tc_run1(ctx, "GatherV2", in, 3, a));
    tc_assert_shape(out, dt, od, (int)on);
    for (int64_t o = 0; o < tc_count(od, (int)on); o++) {
        tc_unravel(o, od, (int)on, co);
        /* indices coordinate: the batch dims, then the gathered ones */
        for (int i = 0; i < bd; i++)
            ic[i] = co[i];
        for (int i = bd; i < ir; i++)
            ic[i] = co[axis + i - bd];
        for (int i = 0; i < axis; i++)
            pc[i] = co[i];
        pc[axis] = idx[tc_ravel(ic, id, ir)];
        for (int i = axis + 1; i < pr; i++)
            pc[i] = co[axis + (ir - bd) + (i - axis - 1)];
        tc_assert_elem_eq(out, o, in[0], tc_ravel(pc, pd, pr), false);
    }
    floe_tensor_unref(out);
    floe_attrs_free(a);
    tc_unref_all(in, 3);
}

static void gather_random_matches_reference(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 120; trial++) {
        int pr = (int)rnd_range(1, 4), ir = (int)rnd_range(0, 3);
        int bd = trial % 3 == 2 ? (int)rnd_range(0, ir < pr - 1 ? ir : pr - 1) : 0;
        int axis = (int)rnd_range(bd, pr - 1);
        int64_t pd[FLOE_MAX_DIMS], id[FLOE_MAX_DIMS];
        if (pr - 1 + ir - bd > FLOE_MAX_DIMS)
            continue;
        for (int i = 0; i < pr; i++)
            pd[i] = rnd_range(1, 4);
        for (int i = 0; i < ir; i++)
            id[i] = i < bd ? pd[i] : rnd_range(trial % 8 == 7 ? 0 : 1, 4);
        if (trial % 17 == 16 && axis + 1 < pr)
            pd[pr - 1] = 0; /* empty slices */
        check_gather(ctx, data_types[trial % NTYPES], pd, pr, id, ir, axis, bd, trial & 1,
                     trial % 4 == 3);
    }
}

static void gather_large_and_scalar_index(void **state) {
    floe_context *ctx = *state;
    /* many rows, split across threads; single elements (axis last); a rank-0 index */
    check_gather(ctx, FLOE_DTYPE_F32, (int64_t[]){1000, 64}, 2, (int64_t[]){4000}, 1, 0, 0, false,
                 false);
    check_gather(ctx, FLOE_DTYPE_I16, (int64_t[]){30, 500}, 2, (int64_t[]){40, 100}, 2, 1, 0, true,
                 true);
    check_gather(ctx, FLOE_DTYPE_F64, (int64_t[]){5, 7, 3}, 3, NULL, 0, 1, 0, false, false);
    check_gather(ctx, FLOE_DTYPE_STRING, (int64_t[]){9}, 1, NULL, 0, 0, 0, true, false);
}

static void gather_rejects_out_of_range_indices(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[3];

    in[0] = tc_f32((int64_t[]){5, 2}, 2, NULL);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){2, 3}, 2, (int64_t[]){0, 1, 2, 3, 4, 7});
    in[2] = tc_scalar_i32(0);
    expect_invalid(ctx, in, NULL, "indices[1,2] = 7 is not in [0, 5)");
    floe_tensor_unref(in[1]);
    in[1] = index_tensor(FLOE_DTYPE_I64, (int64_t[]){3}, 1, (int64_t[]){0, -1, 2});
    expect_invalid(ctx, in, NULL, "indices[1] = -1 is not in [0, 5)");
    floe_tensor_unref(in[1]);
    in[1] = index_tensor(FLOE_DTYPE_I64, NULL, 0, (int64_t[]){INT64_MIN});
    expect_invalid(ctx, in, NULL, "is not in [0, 5)");
    floe_tensor_unref(in[1]);
    /* along axis 1 the range is [0, 2) */
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){1}, 1, (int64_t[]){2});
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(-1);
    expect_invalid(ctx, in, NULL, "indices[0] = 2 is not in [0, 2)");
    tc_unref_all(in, 3);

    /* an empty gather dim admits no index, but empty indices are fine */
    in[0] = tc_f32((int64_t[]){0, 3}, 2, NULL);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){1}, 1, (int64_t[]){0});
    in[2] = tc_scalar_i32(0);
    expect_invalid(ctx, in, NULL, "indices[0] = 0 is not in [0, 0)");
    floe_tensor_unref(in[1]);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){0}, 1, NULL);
    floe_tensor *out = tc_run1(ctx, "GatherV2", in, 3, NULL);
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){0, 3}, 2);
    floe_tensor_unref(out);
    tc_unref_all(in, 3);
}

static void gather_rejects_bad_axis_and_batch_dims(void **state) {
    floe_context *ctx = *state;
    floe_tensor *in[3];
    floe_attrs *a;

    in[0] = tc_f32((int64_t[]){2, 3, 4}, 3, NULL);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){2, 1}, 2, (int64_t[]){0, 1});
    in[2] = tc_scalar_i32(3);
    expect_invalid(ctx, in, NULL, "Expected axis in the range [-3, 3), but got 3");
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(-4);
    expect_invalid(ctx, in, NULL, "but got -4");
    floe_tensor_unref(in[2]);
    in[2] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){2}, 1, (int64_t[]){0, 1});
    expect_invalid(ctx, in, NULL, "axis must be scalar");
    floe_tensor_unref(in[2]);

    in[2] = tc_scalar_i32(0);
    a = batch_attrs(1);
    expect_invalid(ctx, in, a, "batch_dims (1) must be less than or equal to axis (0)");
    floe_attrs_free(a);
    a = batch_attrs(3);
    expect_invalid(ctx, in, a, "Expected batch_dims in the range [-2, 2], but got 3");
    floe_attrs_free(a);
    floe_tensor_unref(in[2]);
    in[2] = tc_scalar_i32(2);
    floe_tensor_unref(in[1]);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){3, 1}, 2, (int64_t[]){0, 1, 2});
    a = batch_attrs(1);
    expect_invalid(ctx, in, a, "params.shape[0]: 2 should be equal to indices.shape[0]: 3");
    floe_attrs_free(a);
    /* negative batch_dims counts from the end of indices' dims */
    a = batch_attrs(-1);
    floe_tensor_unref(in[1]);
    in[1] = index_tensor(FLOE_DTYPE_I32, (int64_t[]){2, 2}, 2, (int64_t[]){0, 3, 1, 2});
    floe_tensor *out = tc_run1(ctx, "GatherV2", in, 3, a);
    tc_assert_shape(out, FLOE_DTYPE_F32, (int64_t[]){2, 3, 2}, 3);
    floe_tensor_unref(out);
    floe_attrs_free(a);
    tc_unref_all(in, 3);

    /* params must have a dim to gather from */
    in[0] = tc_scalar_f32(1);
    in[1] = index_tensor(FLOE_DTYPE_I32, NULL, 0, (int64_t[]){0});
    in[2] = tc_scalar_i32(0);
    expect_invalid(ctx, in, NULL, "params must be at least 1 dimensional");
    tc_unref_all(in, 3);
}

/* Random params, indices (some out of range), axis and batch_dims: each call succeeds
 * or fails with INVALID_ARGUMENT, never reading outside params (the ASan build checks). */
static void random_arguments_succeed_or_fail_cleanly(void **state) {
    floe_context *ctx = *state;
    for (int trial = 0; trial < 2000; trial++) {
        int pr = (int)rnd_range(0, 4), ir = (int)rnd_range(0, 3);
        int64_t pd[FLOE_MAX_DIMS], id[FLOE_MAX_DIMS], iv[64];
        for (int i = 0; i < pr; i++)
            pd[i] = rnd_range(0, 4);
        for (int i = 0; i < ir; i++)
            id[i] = rnd() % 3 == 0 && i < pr ? pd[i] : rnd_range(0, 3);
        for (int64_t k = 0; k < tc_count(id, ir); k++)
            iv[k] = rnd() % 20 == 0 ? (rnd() & 1 ? INT64_MIN : INT64_MAX) : rnd_range(-2, 5);
        int64_t axis = rnd() % 10 == 0 ? INT64_MIN : rnd_range(-pr - 1, pr);
        floe_tensor *in[3] = {
            rand_tensor(trial % 4 == 0 ? FLOE_DTYPE_STRING : FLOE_DTYPE_F32, pd, pr),
            index_tensor(trial & 1 ? FLOE_DTYPE_I64 : FLOE_DTYPE_I32, id, ir, iv),
            index_tensor(FLOE_DTYPE_I64, NULL, 0, &axis)};
        floe_attrs *a = batch_attrs(rnd() % 3 == 0 ? rnd_range(-3, 3) : 0);
        floe_status st = tc_run_status(ctx, "GatherV2", in, 3, a, 1);
        if (st != FLOE_OK && st != FLOE_INVALID_ARGUMENT)
            fail_msg("GatherV2 returned %s: %s", floe_status_str(st), floe_last_error());
        floe_attrs_free(a);
        tc_unref_all(in, 3);
    }
}

/* ---- Shape functions: graphs with Const inputs ------------------------------------------ */

/* Eager calls feed Placeholders, so these build graphs whose shape, perm, axis, ... inputs
 * are Consts, to check that shape inference uses their values and rejects bad ones when
 * the node is built. */

#define U (-1)

static void shape_fns_gather(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    floe_node *p = tc_g_ph(g, FLOE_DTYPE_F32, (int64_t[]){5, U, 7}, 3);
    floe_node *i = tc_g_ph(g, FLOE_DTYPE_I32, (int64_t[]){2, 3}, 2);

    tc_expect_shape(g, "GatherV2", (floe_node *[]){p, i, tc_g_const(g, tc_scalar_i32(1))}, 3, 0,
                    NULL, 0, (int64_t[]){5, 2, 3, 7}, 4);
    tc_expect_shape(g, "GatherV2", (floe_node *[]){p, i, tc_g_const(g, tc_scalar_i32(-3))}, 3, 0,
                    NULL, 0, (int64_t[]){2, 3, U, 7}, 4);
    tc_expect_shape(g, "GatherV2", (floe_node *[]){p, i, tc_g_ph(g, FLOE_DTYPE_I32, NULL, 0)}, 3, 0,
                    NULL, 0, (int64_t[]){U, U, U, U}, 4);
    tc_expect_build_error(g, "GatherV2", (floe_node *[]){p, i, tc_g_const(g, tc_scalar_i32(3))}, 3,
                          0, NULL, "Expected axis in the range [-3, 3), but got 3");
    floe_attrs *a = batch_attrs(1);
    tc_expect_shape(g, "GatherV2",
                    (floe_node *[]){p, tc_g_ph(g, FLOE_DTYPE_I64, (int64_t[]){U, 4}, 2),
                                    tc_g_const(g, tc_scalar_i32(2))},
                    3, 0, a, 0, (int64_t[]){5, U, 4}, 3);
    tc_expect_build_error(g, "GatherV2", (floe_node *[]){p, i, tc_g_const(g, tc_scalar_i32(2))}, 3,
                          0, a, "params.shape[0]: 5 should be equal to indices.shape[0]: 2");
    floe_attrs_free(a);
    floe_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gather_random_matches_reference),
        cmocka_unit_test(gather_large_and_scalar_index),
        cmocka_unit_test(gather_rejects_out_of_range_indices),
        cmocka_unit_test(gather_rejects_bad_axis_and_batch_dims),
        cmocka_unit_test(random_arguments_succeed_or_fail_cleanly),
        cmocka_unit_test(shape_fns_gather),
    };
    return cmocka_run_group_tests(tests, tc_setup_context, tc_teardown_context);
}
