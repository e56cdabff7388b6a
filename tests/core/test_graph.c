/*
 * test_graph.c - graphs and node builders: names, inputs against the op definition,
 * type attr inference, lists, defaults and required attrs, allowed types, minimums,
 * shape inference, device constraints, accessors.  Ops come from floe_exectest.
 */
#include "test_common.h"
#include "exec_test_util.h"

static floe_graph *new_graph(void **state) {
    floe_graph *g = NULL;
    assert_int_equal(floe_graph_new(*state, &g), FLOE_OK);
    return g;
}

/* Finishes @b expecting @code and a message containing @needle. */
static void expect_fail(floe_node_builder *b, floe_status code, const char *needle) {
    floe_node *n = (floe_node *)&n;
    floe_status st = floe_node_builder_finish(b, &n);
    if (st != code)
        fail_msg("finish gave %s (%s), expected %s", floe_status_str(st), floe_last_error(),
                 floe_status_str(code));
    assert_null(n);
    tc_assert_error_contains(needle);
}

static void graph_new_rejects_null_arguments(void **state) {
    floe_graph *g = (floe_graph *)&g;
    assert_int_equal(floe_graph_new(NULL, &g), FLOE_INVALID_ARGUMENT);
    assert_null(g);
    assert_int_equal(floe_graph_new(*state, NULL), FLOE_INVALID_ARGUMENT);
    floe_graph_free(NULL);
    assert_int_equal(floe_graph_num_nodes(NULL), 0);
    assert_null(floe_graph_node(NULL, 0));
    assert_null(floe_graph_find(NULL, "x"));
}

static void graph_nodes_keep_insertion_order_and_names(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_const(g, "a", 1, -1, 0);
    floe_node *b = et_const(g, "b", 2, -1, 0);
    floe_node *c = et_add(g, "c", floe_out(a, 0), floe_out(b, 0), 0);

    assert_int_equal(floe_graph_num_nodes(g), 3);
    assert_ptr_equal(floe_graph_node(g, 0), a);
    assert_ptr_equal(floe_graph_node(g, 2), c);
    assert_null(floe_graph_node(g, 3));
    assert_null(floe_graph_node(g, -1));
    assert_ptr_equal(floe_graph_find(g, "b"), b);
    assert_null(floe_graph_find(g, "d"));
    assert_ptr_equal(floe_graph_context(g), *state);
    assert_string_equal(floe_node_name(c), "c");
    assert_string_equal(floe_node_op(c), "ExAdd");
    assert_string_equal(floe_node_device(c), "");
    assert_int_equal(floe_node_num_inputs(c), 2);
    assert_ptr_equal(floe_node_input(c, 1).node, b);
    assert_int_equal(floe_node_input(c, 1).index, 0);
    assert_null(floe_node_input(c, 2).node);
    assert_int_equal(floe_node_num_outputs(c), 1);
    assert_int_equal(floe_node_output_dtype(c, 0), FLOE_DTYPE_F32);
    assert_int_equal(floe_node_output_dtype(c, 1), FLOE_DTYPE_INVALID);
    floe_graph_free(g);
}

static void graph_many_nodes_are_found(void **state) {
    floe_graph *g = new_graph(state);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        et_const(g, name, (float)i, -1, 0);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        floe_node *n = floe_graph_find(g, name);
        assert_non_null(n);
        assert_ptr_equal(floe_graph_node(g, i), n);
    }
    floe_graph_free(g);
}

static void builder_auto_names_are_unique(void **state) {
    floe_graph *g = new_graph(state);
    et_const(g, "ExConst_1", 0, -1, 0);
    floe_node *a = et_const(g, NULL, 0, -1, 0);
    floe_node *b = et_const(g, NULL, 0, -1, 0);
    assert_string_equal(floe_node_name(a), "ExConst_2");
    assert_string_equal(floe_node_name(b), "ExConst_3");
    floe_graph_free(g);
}

static void builder_rejects_duplicate_and_bad_names(void **state) {
    floe_graph *g = new_graph(state);
    et_const(g, "x", 0, -1, 0);
    expect_fail(et_builder(g, "ExConst", "x"), FLOE_INVALID_ARGUMENT,
                "node 'x' (ExConst): a node of that name already exists");
    expect_fail(et_builder(g, "ExConst", "a:0"), FLOE_INVALID_ARGUMENT, "invalid node name");
    expect_fail(et_builder(g, "ExConst", "-a"), FLOE_INVALID_ARGUMENT, "invalid node name");
    expect_fail(et_builder(g, "ExConst", ""), FLOE_INVALID_ARGUMENT, "invalid node name");
    assert_int_equal(floe_graph_num_nodes(g), 1);
    floe_graph_free(g);
}

static void builder_unknown_op_is_not_found(void **state) {
    floe_graph *g = new_graph(state);
    expect_fail(et_builder(g, "NoSuchOp", "q"), FLOE_NOT_FOUND,
                "node 'q' (NoSuchOp): unknown op 'NoSuchOp'");
    floe_graph_free(g);
}

static void builder_new_and_finish_validate_arguments(void **state) {
    floe_graph *g = new_graph(state);
    floe_node_builder *b = (floe_node_builder *)&b;
    assert_int_equal(floe_node_builder_new(NULL, "ExConst", NULL, &b), FLOE_INVALID_ARGUMENT);
    assert_null(b);
    assert_int_equal(floe_node_builder_new(g, NULL, NULL, &b), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_node_builder_new(g, "ExConst", NULL, NULL), FLOE_INVALID_ARGUMENT);
    assert_int_equal(floe_node_builder_finish(NULL, NULL), FLOE_INVALID_ARGUMENT);
    floe_node_builder_free(NULL);
    /* Abandoning a builder with inputs and attrs leaks nothing (checked under ASan). */
    floe_node *a = et_const(g, "a", 0, -1, 0);
    b = et_builder(g, "ExAdd", "abandoned");
    floe_node_builder_add_input(b, floe_out(a, 0));
    floe_attrs_set_int(floe_node_builder_attrs(b), "slot", 3);
    floe_node_builder_free(b);
    /* out may be NULL. */
    assert_int_equal(floe_node_builder_finish(et_builder(g, "ExConst", "noout"), NULL), FLOE_OK);
    assert_non_null(floe_graph_find(g, "noout"));
    floe_graph_free(g);
}

static void builder_checks_input_count(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_const(g, "a", 0, -1, 0);
    floe_node_builder *b = et_builder(g, "ExAdd", "add");
    floe_node_builder_add_input(b, floe_out(a, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'add' (ExAdd): expects 2 inputs (a, b), got 1");
    floe_graph_free(g);
}

static void builder_checks_input_edges(void **state) {
    floe_graph *g = new_graph(state), *g2 = new_graph(state);
    floe_node *a = et_const(g, "a", 0, -1, 0);
    floe_node *other = et_const(g2, "other", 0, -1, 0);

    floe_node_builder *b = et_builder(g, "ExAdd", "x");
    floe_node_builder_add_input(b, floe_out(a, 0));
    floe_node_builder_add_input(b, floe_out(other, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "comes from node 'other' of another graph");

    b = et_builder(g, "ExAdd", "y");
    floe_node_builder_add_input(b, floe_out(a, 1));
    floe_node_builder_add_input(b, floe_out(a, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'y' (ExAdd): input 0: node 'a' (ExConst) has no output 1");

    b = et_builder(g, "ExAdd", "z");
    floe_node_builder_add_input(b, floe_out(NULL, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "input 0 is NULL");

    b = et_builder(g, "ExConst", "w");
    floe_node_builder_add_control_input(b, other);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "control input 'other' comes from another graph");
    floe_graph_free(g);
    floe_graph_free(g2);
}

static void builder_checks_fixed_dtypes(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *d = et_placeholder(g, "d", FLOE_DTYPE_F64, NULL, -1);
    floe_node_builder *b = et_builder(g, "ExIncr", "inc");
    floe_node_builder_add_input(b, floe_out(d, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'inc' (ExIncr): input 'x' has dtype f64, expected f32");
    floe_graph_free(g);
}

static void builder_infers_type_attrs(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_placeholder(g, "a", FLOE_DTYPE_F64, NULL, -1);
    floe_node *n = et_add(g, "add", floe_out(a, 0), floe_out(a, 0), 0);
    floe_dtype t = FLOE_DTYPE_INVALID;
    int64_t slot = -1;

    assert_int_equal(floe_attrs_get_type(floe_node_attrs(n), "T", &t), FLOE_OK);
    assert_int_equal(t, FLOE_DTYPE_F64);
    assert_int_equal(floe_node_output_dtype(n, 0), FLOE_DTYPE_F64);
    /* Defaults are filled in. */
    assert_int_equal(floe_attrs_get_int(floe_node_attrs(n), "slot", &slot), FLOE_OK);
    assert_int_equal(slot, 0);
    floe_graph_free(g);
}

static void builder_rejects_conflicting_type_attrs(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_placeholder(g, "a", FLOE_DTYPE_F32, NULL, -1);
    floe_node *d = et_placeholder(g, "d", FLOE_DTYPE_F64, NULL, -1);

    floe_node_builder *b = et_builder(g, "ExAdd", "mix");
    floe_node_builder_add_input(b, floe_out(a, 0));
    floe_node_builder_add_input(b, floe_out(d, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT,
                "node 'mix' (ExAdd): conflicting dtypes for attr 'T': input 'a' is f32, input 'b' is f64");

    b = et_builder(g, "ExAdd", "given");
    floe_attrs_set_type(floe_node_builder_attrs(b), "T", FLOE_DTYPE_F64);
    floe_node_builder_add_input(b, floe_out(a, 0));
    floe_node_builder_add_input(b, floe_out(a, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "input 'a' has dtype f32 but attr 'T' is f64");
    floe_graph_free(g);
}

static void builder_rejects_disallowed_types(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *i = et_placeholder(g, "i", FLOE_DTYPE_I32, NULL, -1);
    floe_node_builder *b = et_builder(g, "ExAdd", "iadd");
    floe_node_builder_add_input(b, floe_out(i, 0));
    floe_node_builder_add_input(b, floe_out(i, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "attr 'T' = i32 is not allowed (allowed: f32, f64)");
    floe_graph_free(g);
}

static void builder_handles_number_lists(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_const(g, "a", 1, 2, 0);
    floe_output three[3] = {floe_out(a, 0), floe_out(a, 0), floe_out(a, 0)};
    int64_t n = 0;

    floe_node_builder *b = et_builder(g, "ExAddN", "sum");
    floe_node_builder_add_input_list(b, three, 3);
    floe_node *sum = et_finish(b);
    assert_int_equal(floe_attrs_get_int(floe_node_attrs(sum), "N", &n), FLOE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(floe_node_num_inputs(sum), 3);
    assert_int_equal(floe_node_output_shape(sum, 0).ndim, 1);
    assert_int_equal(floe_node_output_shape(sum, 0).dims[0], 2);

    b = et_builder(g, "ExAddN", "empty");
    floe_node_builder_add_input_list(b, NULL, 0);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "attr 'N' = 0 is below its minimum 1");

    b = et_builder(g, "ExAddN", "notalist");
    floe_node_builder_add_input(b, floe_out(a, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "input 'values' is a list");

    b = et_builder(g, "ExAdd", "listforone");
    floe_node_builder_add_input_list(b, three, 1);
    floe_node_builder_add_input(b, floe_out(a, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "input 'a' is one tensor, not a list");

    b = et_builder(g, "ExAddN", "wrongn");
    floe_attrs_set_int(floe_node_builder_attrs(b), "N", 2);
    floe_node_builder_add_input_list(b, three, 3);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "attr 'N' is 2 but input 'values' has 3 tensors");

    b = et_builder(g, "ExAddN", "negative");
    floe_node_builder_add_input_list(b, three, -1);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "bad list");
    floe_graph_free(g);
}

static void builder_handles_type_lists(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_const(g, "a", 1, -1, 0);
    floe_node *i = et_placeholder(g, "i", FLOE_DTYPE_I64, NULL, -1);
    floe_output ins[2] = {floe_out(a, 0), floe_out(i, 0)};
    const floe_dtype *types = NULL;
    int n = 0;

    floe_node_builder *b = et_builder(g, "ExTuple", "tup");
    floe_node_builder_add_input_list(b, ins, 2);
    floe_node *t = et_finish(b);
    assert_int_equal(floe_attrs_get_type_list(floe_node_attrs(t), "Tlist", &types, &n), FLOE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(types[1], FLOE_DTYPE_I64);
    assert_int_equal(floe_node_num_outputs(t), 2);
    assert_int_equal(floe_node_output_dtype(t, 0), FLOE_DTYPE_F32);
    assert_int_equal(floe_node_output_dtype(t, 1), FLOE_DTYPE_I64);

    b = et_builder(g, "ExTuple", "mismatch");
    floe_dtype want[2] = {FLOE_DTYPE_F32, FLOE_DTYPE_F32};
    floe_attrs_set_type_list(floe_node_builder_attrs(b), "Tlist", want, 2);
    floe_node_builder_add_input_list(b, ins, 2);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "input 'values' has dtypes [f32, i64] but attr 'Tlist' is [f32, f32]");
    floe_graph_free(g);
}

static void builder_checks_attrs(void **state) {
    floe_graph *g = new_graph(state);
    floe_node_builder *b = et_builder(g, "ExConst", "c1");
    floe_attrs_set_int(floe_node_builder_attrs(b), "colour", 3);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'c1' (ExConst): unknown attr 'colour'");

    b = et_builder(g, "ExConst", "c2");
    floe_attrs_set_string(floe_node_builder_attrs(b), "value", "x", 1);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "attr 'value' is string, expected float");

    b = et_builder(g, "ExTicks", "t");
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 't' (ExTicks): missing required attr 'slot' (int)");

    b = et_builder(g, "ExAddN", "n0");
    floe_attrs_set_int(floe_node_builder_attrs(b), "N", 0);
    floe_node_builder_add_input_list(b, NULL, 0);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "attr 'N' = 0 is below its minimum 1");
    floe_graph_free(g);
}

static void builder_accepts_an_empty_list_of_any_kind(void **state) {
    floe_graph *g = new_graph(state);
    floe_node_builder *b = et_builder(g, "ExTuple", "none");
    floe_attrs_set_int_list(floe_node_builder_attrs(b), "Tlist", NULL, 0);
    floe_node_builder_add_input_list(b, NULL, 0);
    floe_node *n = et_finish(b);
    assert_int_equal(floe_node_num_outputs(n), 0);
    assert_int_equal(floe_attrs_type(floe_node_attrs(n), "Tlist"), FLOE_ATTR_LIST_TYPE);
    floe_graph_free(g);
}

static void builder_runs_shape_functions(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *v4 = et_const(g, "v4", 1, 4, 0);
    floe_node *v3 = et_const(g, "v3", 1, 3, 0);
    floe_node *s = et_const(g, "s", 1, -1, 0);
    floe_shape sh = floe_node_output_shape(v4, 0);

    assert_int_equal(sh.ndim, 1);
    assert_int_equal(sh.dims[0], 4);
    assert_int_equal(floe_node_output_shape(s, 0).ndim, 0);
    assert_int_equal(floe_node_output_shape(s, 5).ndim, -1);

    floe_node_builder *b = et_builder(g, "ExAdd", "bad");
    floe_node_builder_add_input(b, floe_out(v4, 0));
    floe_node_builder_add_input(b, floe_out(s, 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'bad' (ExAdd): ExAdd needs equal shapes (ranks 1 and 0)");
    (void)v3;

    /* Ops without a shape function leave outputs unknown. */
    floe_node *t = et_op1(g, "ExNoOutput", "unk", floe_out(v4, 0));
    assert_int_equal(floe_node_output_shape(t, 0).ndim, -1);
    floe_graph_free(g);
}

static void builder_records_device_and_controls(void **state) {
    floe_graph *g = new_graph(state);
    floe_node *a = et_const(g, "a", 0, -1, 0);
    floe_node_builder *b = et_builder(g, "ExConst", "c");
    floe_node_builder_set_device(b, "/device:CPU:0");
    floe_node_builder_add_control_input(b, a);
    floe_node_builder_add_control_input(b, a);
    floe_node *c = et_finish(b);
    assert_string_equal(floe_node_device(c), "/device:CPU:0");
    assert_int_equal(floe_node_num_control_inputs(c), 1);
    assert_ptr_equal(floe_node_control_input(c, 0), a);
    assert_null(floe_node_control_input(c, 1));

    b = et_builder(g, "ExConst", "d");
    floe_node_builder_set_device(b, "/device:CPU:zero");
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'd' (ExConst): invalid device spec '/device:CPU:zero'");

    b = et_builder(g, "ExConst", "e");
    floe_node_builder_add_control_input(b, NULL);
    expect_fail(b, FLOE_INVALID_ARGUMENT, "control input 0 is NULL");
    floe_graph_free(g);
}

static void node_accessors_tolerate_null(void **state) {
    assert_null(floe_node_name(NULL));
    assert_null(floe_node_op(NULL));
    assert_null(floe_node_device(NULL));
    assert_null(floe_node_attrs(NULL));
    assert_int_equal(floe_node_num_inputs(NULL), 0);
    assert_int_equal(floe_node_num_outputs(NULL), 0);
    assert_int_equal(floe_node_num_control_inputs(NULL), 0);
    assert_null(floe_node_control_input(NULL, 0));
    assert_null(floe_node_input(NULL, 0).node);
    assert_int_equal(floe_node_output_dtype(NULL, 0), FLOE_DTYPE_INVALID);
    assert_int_equal(floe_node_output_shape(NULL, 0).ndim, -1);
    assert_null(floe_node_builder_attrs(NULL));
    floe_node_builder_add_input(NULL, floe_out(NULL, 0));
    floe_node_builder_set_device(NULL, "CPU");
}

/* Shape functions see the value of Const inputs (ops_math's Reshape reads its shape). */
static void shape_functions_see_const_values(void **state) {
    floe_context *ctx = tc_context();
    floe_graph *g = NULL;
    int64_t six[1] = {6}, two[1] = {2};
    const int32_t good[2] = {2, 3}, bad[2] = {4, 2};
    floe_tensor *tgood = tc_i32(two, 1, good), *tbad = tc_i32(two, 1, bad);

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node_builder *b = et_builder(g, "Placeholder", "x");
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", six, 1);
    floe_node *x = et_finish(b);
    floe_node *consts[2];
    for (int i = 0; i < 2; i++) {
        b = et_builder(g, "Const", i == 0 ? "good" : "bad");
        floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", i == 0 ? tgood : tbad);
        floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_I32);
        consts[i] = et_finish(b);
    }
    b = et_builder(g, "Reshape", "r");
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(consts[0], 0));
    floe_node *r = et_finish(b);
    floe_shape sh = floe_node_output_shape(r, 0);
    assert_int_equal(sh.ndim, 2);
    assert_int_equal(sh.dims[0], 2);
    assert_int_equal(sh.dims[1], 3);

    b = et_builder(g, "Reshape", "r2");
    floe_node_builder_add_input(b, floe_out(x, 0));
    floe_node_builder_add_input(b, floe_out(consts[1], 0));
    expect_fail(b, FLOE_INVALID_ARGUMENT, "node 'r2' (Reshape): ");
    floe_graph_free(g);
    floe_tensor_unref(tgood);
    floe_tensor_unref(tbad);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(graph_new_rejects_null_arguments),
        cmocka_unit_test(graph_nodes_keep_insertion_order_and_names),
        cmocka_unit_test(graph_many_nodes_are_found),
        cmocka_unit_test(builder_auto_names_are_unique),
        cmocka_unit_test(builder_rejects_duplicate_and_bad_names),
        cmocka_unit_test(builder_unknown_op_is_not_found),
        cmocka_unit_test(builder_new_and_finish_validate_arguments),
        cmocka_unit_test(builder_checks_input_count),
        cmocka_unit_test(builder_checks_input_edges),
        cmocka_unit_test(builder_checks_fixed_dtypes),
        cmocka_unit_test(builder_infers_type_attrs),
        cmocka_unit_test(builder_rejects_conflicting_type_attrs),
        cmocka_unit_test(builder_rejects_disallowed_types),
        cmocka_unit_test(builder_handles_number_lists),
        cmocka_unit_test(builder_handles_type_lists),
        cmocka_unit_test(builder_checks_attrs),
        cmocka_unit_test(builder_accepts_an_empty_list_of_any_kind),
        cmocka_unit_test(builder_runs_shape_functions),
        cmocka_unit_test(builder_records_device_and_controls),
        cmocka_unit_test(node_accessors_tolerate_null),
        cmocka_unit_test(shape_functions_see_const_values),
    };
    return cmocka_run_group_tests(tests, et_setup, et_teardown);
}
