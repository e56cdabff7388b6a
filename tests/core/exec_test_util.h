/*
 * exec_test_util.h - helpers of the graph, session, executor and variable tests:
 * a context with dev_cpu and the floe_exectest plugin (tests/core/exec_test_plugin.c)
 * and one-line builders for its ops.  Include after test_common.h.
 */
#ifndef FLOE_EXEC_TEST_UTIL_H
#define FLOE_EXEC_TEST_UTIL_H

#include "test_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counter slots of the plugin. */
#define ET_COPY_TO 60
#define ET_COPY_FROM 61
#define ET_CREATE 62
#define ET_DESTROY 63

/* A context loading dev_cpu and floe_exectest only; @nthreads 0 for the default. */
static inline floe_context *et_context_full(int nthreads, floe_log_fn log_fn, void *log_arg) {
    const char *dirs = getenv("FLOE_PLUGIN_PATH");
    const char *plugin = getenv("FLOE_EXECTEST_PLUGIN");
    char path[8192];
    floe_context_options o;
    floe_context *ctx = NULL;

    if (plugin == NULL)
        fail_msg("FLOE_EXECTEST_PLUGIN is not set (run through meson test)");
    snprintf(path, sizeof(path), "%s:%s", dirs != NULL ? dirs : "", plugin);
    floe_context_options_init(&o);
    o.plugin_path = path;
    o.system_plugins = 0;
    o.allow = "dev_cpu,exectest";
    o.num_threads = nthreads;
    o.log_fn = log_fn;
    o.log_arg = log_arg;
    floe_status st = floe_context_new(&o, &ctx);
    if (st != FLOE_OK)
        fail_msg("floe_context_new: %s", floe_last_error());
    if (floe_context_find_device(ctx, "TESTDEV:0", &(floe_device *){NULL}) != FLOE_OK ||
        floe_context_find_device(ctx, "CPU:0", &(floe_device *){NULL}) != FLOE_OK)
        fail_msg("dev_cpu or floe_exectest did not load");
    return ctx;
}

static inline floe_context *et_context(int nthreads) {
    return et_context_full(nthreads, NULL, NULL);
}

static inline int et_setup(void **state) {
    *state = et_context(0);
    return 0;
}

static inline int et_teardown(void **state) {
    floe_context_free(*state);
    return 0;
}

/* Finishes @b, failing the test on error. */
static inline floe_node *et_finish(floe_node_builder *b) {
    floe_node *n = NULL;
    floe_status st = floe_node_builder_finish(b, &n);
    if (st != FLOE_OK)
        fail_msg("finish: %s: %s", floe_status_str(st), floe_last_error());
    return n;
}

static inline floe_node_builder *et_builder(floe_graph *g, const char *op, const char *name) {
    floe_node_builder *b = NULL;
    assert_int_equal(floe_node_builder_new(g, op, name, &b), FLOE_OK);
    return b;
}

/* ExConst: @n < 0 a scalar, else a vector of @n; @slot > 0 counts executions. */
static inline floe_node *et_const(floe_graph *g, const char *name, float value, int n, int slot) {
    floe_node_builder *b = et_builder(g, "ExConst", name);
    floe_attrs_set_float(floe_node_builder_attrs(b), "value", value);
    floe_attrs_set_int(floe_node_builder_attrs(b), "n", n);
    floe_attrs_set_int(floe_node_builder_attrs(b), "slot", slot);
    return et_finish(b);
}

static inline floe_node *et_add(floe_graph *g, const char *name, floe_output a, floe_output c,
                                int slot) {
    floe_node_builder *b = et_builder(g, "ExAdd", name);
    floe_node_builder_add_input(b, a);
    floe_node_builder_add_input(b, c);
    floe_attrs_set_int(floe_node_builder_attrs(b), "slot", slot);
    return et_finish(b);
}

/* A one-input op with no attrs to set. */
static inline floe_node *et_op1(floe_graph *g, const char *op, const char *name, floe_output in) {
    floe_node_builder *b = et_builder(g, op, name);
    floe_node_builder_add_input(b, in);
    return et_finish(b);
}

/* ExPlaceholder; @ndim < 0 leaves the shape unknown. */
static inline floe_node *et_placeholder(floe_graph *g, const char *name, floe_dtype dt,
                                        const int64_t *dims, int ndim) {
    floe_node_builder *b = et_builder(g, "ExPlaceholder", name);
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", dt);
    if (ndim >= 0)
        floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", dims, ndim);
    return et_finish(b);
}

/* Runs @s fetching one output, asserting success. (transfer full) */
static inline floe_tensor *et_run1(floe_session *s, floe_output fetch) {
    floe_tensor *out = NULL;
    floe_status st = floe_session_run(s, NULL, NULL, 0, &fetch, 1, NULL, 0, &out);
    if (st != FLOE_OK)
        fail_msg("run: %s: %s", floe_status_str(st), floe_last_error());
    return out;
}

/* Value of the plugin's counter @slot, read through a graph of its own. */
static inline long et_ticks(floe_context *ctx, int slot) {
    floe_graph *g = NULL;
    floe_session *s = NULL;
    assert_int_equal(floe_graph_new(ctx, &g), FLOE_OK);
    floe_node_builder *b = et_builder(g, "ExTicks", "ticks");
    floe_attrs_set_int(floe_node_builder_attrs(b), "slot", slot);
    floe_node *n = et_finish(b);
    assert_int_equal(floe_session_new(g, NULL, &s), FLOE_OK);
    floe_tensor *t = et_run1(s, floe_out(n, 0));
    long v = (long)*(const int64_t *)floe_tensor_data(t);
    floe_tensor_unref(t);
    floe_session_free(s);
    floe_graph_free(g);
    return v;
}

static inline float et_scalar(const floe_tensor *t) {
    assert_non_null(t);
    assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F32);
    assert_int_equal(floe_tensor_num_elements(t), 1);
    assert_non_null(floe_tensor_data(t));
    return *(const float *)floe_tensor_data(t);
}

#endif /* FLOE_EXEC_TEST_UTIL_H */
