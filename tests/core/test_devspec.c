/*
 * test_devspec.c - white-box tests of device spec parsing (floe__device_spec_parse)
 * and of invariants the public API cannot break: a graph edited into a cycle is
 * rejected when a plan is prepared.
 */
#include "test_common.h"
#include "exec_test_util.h"

#include "core-impl.h"

static void parse_ok(const char *s, const char *job, int replica, int task, const char *type,
                     int index) {
    floe__device_spec sp;
    floe_status st = floe__device_spec_parse(s, &sp);
    if (st != FLOE_OK)
        fail_msg("'%s': %s", s, floe_last_error());
    assert_string_equal(sp.job, job);
    assert_int_equal(sp.replica, replica);
    assert_int_equal(sp.task, task);
    assert_string_equal(sp.type, type);
    assert_int_equal(sp.index, index);
}

static void parse_bad(const char *s) {
    floe__device_spec sp;
    floe_status st = floe__device_spec_parse(s, &sp);
    if (st != FLOE_INVALID_ARGUMENT)
        fail_msg("'%s' was accepted", s);
    char quoted[160];
    snprintf(quoted, sizeof(quoted), "'%s'", s);
    tc_assert_error_contains(quoted);
    assert_string_equal(sp.type, "");
    assert_int_equal(sp.index, -1);
}

static void devspec_parses_full_and_short_forms(void **state) {
    parse_ok("", "", -1, -1, "", -1);
    parse_ok("/job:localhost/replica:0/task:0/device:CPU:0", "localhost", 0, 0, "CPU", 0);
    parse_ok("/job:worker/task:3", "worker", -1, 3, "", -1);
    parse_ok("/device:GPU:1", "", -1, -1, "GPU", 1);
    parse_ok("/device:GPU", "", -1, -1, "GPU", -1);
    parse_ok("/device:GPU:*", "", -1, -1, "GPU", -1);
    parse_ok("/cpu:0", "", -1, -1, "CPU", 0);
    parse_ok("/gpu:2", "", -1, -1, "GPU", 2);
    parse_ok("GPU:1", "", -1, -1, "GPU", 1);
    parse_ok("CPU", "", -1, -1, "CPU", -1);
    parse_ok("cpu", "", -1, -1, "CPU", -1);
    parse_ok("device:TestDev_2:12", "", -1, -1, "TESTDEV_2", 12);
    parse_ok("/replica:1/device:CPU:0", "", 1, -1, "CPU", 0);
}

static void devspec_rejects_malformed_strings(void **state) {
    parse_bad("/");
    parse_bad("//cpu:0");
    parse_bad("/cpu:0/");
    parse_bad("/device:");
    parse_bad("/device:CPU:");
    parse_bad("/device:CPU:x");
    parse_bad("/device:CPU:-1");
    parse_bad("/device:CPU:0:1");
    parse_bad("/device:0CPU:0");
    parse_bad("/device:C-PU:0");
    parse_bad("/job:");
    parse_bad("/job:a b");
    parse_bad("/replica:x");
    parse_bad("/task:");
    parse_bad("/job:a/job:b");
    parse_bad("/cpu:0/gpu:0");
    parse_bad("/device:CPU:99999999999");
    parse_bad("/device:AVERYLONGDEVICETYPENAMEOVERTHIRTYTWO:0");
    floe__device_spec sp;
    assert_int_equal(floe__device_spec_parse(NULL, &sp), FLOE_INVALID_ARGUMENT);
}

static void prepare_rejects_a_cycle(void **state) {
    floe_context *ctx = et_context(0);
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_plan *p = (floe_plan *)&p;

    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node *a = et_const(g, "a", 1, -1, 0);
    floe_node *b = et_op1(g, "ExIncr", "b", floe_out(a, 0));
    floe_node *c = et_op1(g, "ExIncr", "c", floe_out(b, 0));
    /* Only a graph importer could do this: b now reads c, which reads b. */
    b->inputs[0] = floe_out(c, 0);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_output fetch = floe_out(c, 0);
    assert_int_equal(floe_session_prepare(s, NULL, 0, &fetch, 1, NULL, 0, &p),
                     FLOE_INVALID_ARGUMENT);
    assert_null(p);
    tc_assert_error_contains("cycle through node 'b' (ExIncr)");
    /* Feeding the edge that closes the loop breaks the cycle. */
    floe_output feed = floe_out(c, 0);
    floe_output fetch_b = floe_out(b, 0);
    assert_int_equal(floe_session_prepare(s, &feed, 1, &fetch_b, 1, NULL, 0, &p), FLOE_OK);
    assert_int_equal(floe_plan_num_nodes(p), 1);
    floe_session_free(s);
    floe_graph_free(g);
    floe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devspec_parses_full_and_short_forms),
        cmocka_unit_test(devspec_rejects_malformed_strings),
        cmocka_unit_test(prepare_rejects_a_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
