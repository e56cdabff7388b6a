/*
 * consumer.c - an application built against an installed Floe with `pkg-config floe`.
 *
 * Usage: consumer LIBDIR PLUGINSDIR.  Run by install_test.sh with FLOE_PLUGIN_PATH unset
 * and FLOE_PLUGIN_SYSTEM_PATH=PLUGINSDIR, it checks that the libfloe it runs is the one in
 * LIBDIR and that ops_math, dev_cpu and the out-of-tree toy plugin were loaded from
 * PLUGINSDIR, then runs
 *
 *     y = ToyScale(MatMul(a, x) + a, scale = 0.5)
 *
 * with a a Const, x a Placeholder, and compares y with the value computed here.  Exits 0 on
 * success, 1 with a message otherwise.  Frees everything, so it runs clean under LeakSanitizer.
 */
#define _GNU_SOURCE /* dladdr */
#include <floe/floe.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        floe_status st_ = (call);                                                          \
        if (st_ != FLOE_OK) {                                                              \
            fprintf(stderr, "consumer: %s failed: %s: %s\n", #call, floe_status_str(st_), \
                    floe_last_error());                                                    \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

/* Checks that plugin @name was loaded from @dir; prints the list on failure. */
static int plugin_loaded_from(floe_context *ctx, const char *name, const char *dir) {
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info info;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        if (floe_context_plugin(ctx, i, &info) != FLOE_OK || strcmp(info.name, name) != 0)
            continue;
        if (!info.loaded) {
            fprintf(stderr, "consumer: plugin %s (%s) rejected: %s\n", name, info.path,
                    info.reason);
            return 0;
        }
        if (strncmp(info.path, dir, strlen(dir)) != 0) {
            fprintf(stderr, "consumer: plugin %s loaded from %s, not from %s\n", name,
                    info.path, dir);
            return 0;
        }
        printf("plugin %-10s %-8s %s\n", info.name, info.version, info.path);
        return 1;
    }
    fprintf(stderr, "consumer: plugin %s was not found in %s\n", name, dir);
    return 0;
}

/* Checks that libfloe was loaded from @dir (not from a build tree). */
static int libfloe_loaded_from(const char *dir) {
    Dl_info info;
    if (dladdr((void *)floe_version, &info) == 0 || info.dli_fname == NULL) {
        fprintf(stderr, "consumer: dladdr cannot locate libfloe\n");
        return 0;
    }
    if (strncmp(info.dli_fname, dir, strlen(dir)) != 0) {
        fprintf(stderr, "consumer: libfloe loaded from %s, not from %s\n", info.dli_fname, dir);
        return 0;
    }
    printf("libfloe %s from %s\n", floe_version(), info.dli_fname);
    return 1;
}

int main(int argc, char **argv) {
    static const float a_data[4] = {1, 2, 3, 4};
    static const float x_data[4] = {5, 6, 7, 8};
    static const int64_t shape[2] = {2, 2};
    floe_context *ctx = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_tensor *a = NULL, *x = NULL, *y = NULL;
    floe_node_builder *b = NULL;
    floe_node *na = NULL, *nx = NULL, *nm = NULL, *ns = NULL, *ny = NULL;
    int ok = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: consumer LIBDIR PLUGINSDIR\n");
        return 2;
    }
    if (!libfloe_loaded_from(argv[1]))
        return 1;
    CHECK(floe_context_new(NULL, &ctx));
    if (!plugin_loaded_from(ctx, "ops_math", argv[2]) ||
        !plugin_loaded_from(ctx, "dev_cpu", argv[2]) || !plugin_loaded_from(ctx, "toy", argv[2]))
        goto done;

    CHECK(floe_tensor_new_copy(FLOE_DTYPE_F32, shape, 2, a_data, sizeof(a_data), &a));
    CHECK(floe_tensor_new_copy(FLOE_DTYPE_F32, shape, 2, x_data, sizeof(x_data), &x));
    CHECK(floe_graph_new(ctx, &g));

    CHECK(floe_node_builder_new(g, "Const", "a", &b));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_tensor(floe_node_builder_attrs(b), "value", a);
    CHECK(floe_node_builder_finish(b, &na));

    CHECK(floe_node_builder_new(g, "Placeholder", "x", &b));
    floe_attrs_set_type(floe_node_builder_attrs(b), "dtype", FLOE_DTYPE_F32);
    floe_attrs_set_shape(floe_node_builder_attrs(b), "shape", shape, 2);
    CHECK(floe_node_builder_finish(b, &nx));

    CHECK(floe_node_builder_new(g, "MatMul", "m", &b));
    floe_node_builder_add_input(b, floe_out(na, 0));
    floe_node_builder_add_input(b, floe_out(nx, 0));
    CHECK(floe_node_builder_finish(b, &nm));

    CHECK(floe_node_builder_new(g, "AddV2", "s", &b));
    floe_node_builder_add_input(b, floe_out(nm, 0));
    floe_node_builder_add_input(b, floe_out(na, 0));
    CHECK(floe_node_builder_finish(b, &ns));

    CHECK(floe_node_builder_new(g, "ToyScale", "y", &b));
    floe_node_builder_add_input(b, floe_out(ns, 0));
    floe_attrs_set_float(floe_node_builder_attrs(b), "scale", 0.5f);
    CHECK(floe_node_builder_finish(b, &ny));

    CHECK(floe_session_new(g, NULL, &s));
    floe_output feed = floe_out(nx, 0), fetch = floe_out(ny, 0);
    CHECK(floe_session_run(s, &feed, &x, 1, &fetch, 1, NULL, 0, &y));

    if (floe_tensor_dtype(y) != FLOE_DTYPE_F32 || floe_tensor_num_elements(y) != 4) {
        fprintf(stderr, "consumer: result has dtype %s and %lld elements\n",
                floe_dtype_name(floe_tensor_dtype(y)), (long long)floe_tensor_num_elements(y));
        goto done;
    }
    const float *got = floe_tensor_data(y);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            float want = a_data[i * 2 + j];
            for (int k = 0; k < 2; k++)
                want += a_data[i * 2 + k] * x_data[k * 2 + j];
            want *= 0.5f;
            if (fabsf(got[i * 2 + j] - want) > 1e-5f) {
                fprintf(stderr, "consumer: y[%d][%d] = %g, expected %g\n", i, j,
                        (double)got[i * 2 + j], (double)want);
                goto done;
            }
        }
    }
    printf("y = [[%g, %g], [%g, %g]]\n", (double)got[0], (double)got[1], (double)got[2],
           (double)got[3]);
    ok = 1;

done:
    floe_tensor_unref(y);
    floe_session_free(s);
    floe_graph_free(g);
    floe_tensor_unref(a);
    floe_tensor_unref(x);
    floe_context_free(ctx);
    return ok ? 0 : 1;
}
