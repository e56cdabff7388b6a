/*
 * run.c - `floe run MODEL.pb --input NAME=FILE.npy ... --output NAME ...`: loads a
 * TensorFlow frozen GraphDef (floe_graphdef_load: untrusted bytes, limits, cycle
 * detection), feeds .npy files to its placeholders, runs the outputs asked for in one
 * session and prints them or writes them as .npy.
 *
 * Sections: argument parsing; name resolution ("node" or "node:N"); feeding (dtype and
 * shape checked against the placeholder, naming both); printing; the timed repeat
 * (--time N: N runs of the prepared plan after the first, min and median reported).
 */
#define _POSIX_C_SOURCE 200809L
#include "run-cmd.h"

#include <floe/floe.h>
#include <floe/graph.h>
#include <floe/graphdef.h>
#include <floe/npy.h>
#include <floe/session.h>
#include <floe/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#define MAX_IO 64

static const char usage_run[] =
    "usage: floe run MODEL.pb --input NAME=FILE.npy ... --output NAME ...\n"
    "                [--output-file NAME=FILE.npy ...] [--time N]\n"
    "\n"
    "Runs a TensorFlow frozen graph (a GraphDef, e.g. from\n"
    "convert_variables_to_constants_v2): each --input feeds a .npy file to a node's output\n"
    "(usually a Placeholder; NAME is \"node\" or \"node:N\"), each --output is computed and\n"
    "printed (dtype, shape, values), and each --output-file writes one output as .npy\n"
    "instead (it also counts as an --output).  MODEL.pb and the files may be URIs.\n"
    "\n"
    "Options:\n"
    "  --input NAME=FILE.npy        feed FILE to NAME (repeatable)\n"
    "  --output NAME                compute and print NAME (repeatable)\n"
    "  --output-file NAME=FILE.npy  compute NAME and write it to FILE (repeatable)\n"
    "  --time N                     then run N more times and report the min and median\n"
    "                               time of one run (and the load and first-run times)\n"
    "\n"
    "An op no plugin provides, an attribute Floe does not support (data_format NCHW on\n"
    "CPU) or a feed of the wrong dtype or shape is an error naming the node; exit status\n"
    "1 for such errors, 2 for usage errors.\n";

typedef struct io_arg {
    const char *name;
    const char *file;  /* NULL: print */
} io_arg;

typedef struct run_args {
    const char *model;
    io_arg in[MAX_IO], out[MAX_IO];
    int nin, nout;
    long repeat;
} run_args;

static int usage(const char *fmt, const char *arg) {
    fprintf(stderr, "floe run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_run);
    return EXIT_USAGE;
}

/* Splits "NAME=FILE" in place. */
static int split_pair(char *s, io_arg *a) {
    char *eq = strchr(s, '=');
    if (eq == NULL || eq == s || eq[1] == '\0')
        return -1;
    *eq = '\0';
    a->name = s;
    a->file = eq + 1;
    return 0;
}

static int parse_args(int argc, char **argv, run_args *ra) {
    memset(ra, 0, sizeof(*ra));
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            fputs(usage_run, stdout);
            return EXIT_OK;
        }
        if (opt[0] != '-') {
            if (ra->model != NULL)
                return usage("unexpected argument '%s'", opt);
            ra->model = opt;
            continue;
        }
        if (i + 1 >= argc)
            return usage("%s needs a value", opt);
        char *val = argv[++i];
        if (strcmp(opt, "--input") == 0 || strcmp(opt, "--output-file") == 0) {
            int is_in = strcmp(opt, "--input") == 0;
            if ((is_in ? ra->nin : ra->nout) >= MAX_IO)
                return usage("too many %s options", opt);
            io_arg *a = is_in ? &ra->in[ra->nin++] : &ra->out[ra->nout++];
            if (split_pair(val, a) != 0)
                return usage("expected NAME=FILE.npy, got '%s'", val);
        } else if (strcmp(opt, "--output") == 0) {
            if (ra->nout >= MAX_IO)
                return usage("too many %s options", opt);
            ra->out[ra->nout].name = val;
            ra->out[ra->nout++].file = NULL;
        } else if (strcmp(opt, "--time") == 0) {
            char *end;
            ra->repeat = strtol(val, &end, 10);
            if (*end != '\0' || ra->repeat < 1 || ra->repeat > 1000000)
                return usage("--time needs a count from 1 to 1000000, got '%s'", val);
        } else {
            return usage("unknown option '%s'", opt);
        }
    }
    if (ra->model == NULL)
        return usage("%s", "no MODEL.pb given");
    if (ra->nout == 0)
        return usage("%s", "no --output or --output-file given");
    return -1;
}

/* "node" or "node:N" to an output of @g; prints the error and returns -1 if none. */
static int resolve(floe_graph *g, const char *spec, floe_output *out) {
    char name[1024];
    int index = 0;
    snprintf(name, sizeof(name), "%s", spec);
    char *colon = strrchr(name, ':');
    if (colon != NULL && colon[1] != '\0' && strspn(colon + 1, "0123456789") ==
                                                 strlen(colon + 1) && strlen(colon + 1) < 7) {
        index = atoi(colon + 1);
        *colon = '\0';
    }
    floe_node *n = floe_graph_find(g, name);
    if (n == NULL) {
        fprintf(stderr, "floe run: the graph has no node '%s'\n", name);
        return -1;
    }
    if (index >= floe_node_num_outputs(n)) {
        fprintf(stderr, "floe run: node '%s' (%s) has %d output%s, not %d\n", name,
                floe_node_op(n), floe_node_num_outputs(n),
                floe_node_num_outputs(n) == 1 ? "" : "s", index + 1);
        return -1;
    }
    *out = floe_out(n, index);
    return 0;
}

/* The feed must have the dtype of the output it replaces and fit its static shape. */
static int check_feed(const char *spec, floe_output o, const floe_tensor *t) {
    floe_dtype want = floe_node_output_dtype(o.node, o.index);
    if (floe_tensor_dtype(t) != want) {
        fprintf(stderr, "floe run: input '%s': the file holds %s, node '%s' (%s) takes %s\n",
                spec, floe_dtype_name(floe_tensor_dtype(t)), floe_node_name(o.node),
                floe_node_op(o.node), floe_dtype_name(want));
        return -1;
    }
    floe_shape sh = floe_node_output_shape(o.node, o.index);
    if (sh.ndim < 0)
        return 0;
    int ok = sh.ndim == floe_tensor_ndim(t);
    for (int d = 0; ok && d < sh.ndim; d++)
        ok = sh.dims[d] < 0 || sh.dims[d] == floe_tensor_dim(t, d);
    if (!ok) {
        char want_s[256] = "", got_s[256] = "";
        size_t a = 0, b = 0;
        for (int d = 0; d < sh.ndim && a < 200; d++)
            a += (size_t)snprintf(want_s + a, sizeof(want_s) - a, "%s%lld", d ? "," : "",
                                  (long long)sh.dims[d]);
        for (int d = 0; d < floe_tensor_ndim(t) && b < 200; d++)
            b += (size_t)snprintf(got_s + b, sizeof(got_s) - b, "%s%lld", d ? "," : "",
                                  (long long)floe_tensor_dim(t, d));
        fprintf(stderr,
                "floe run: input '%s': the file's shape [%s] does not fit node '%s' (%s), "
                "shape [%s] (-1: any)\n", spec, got_s, floe_node_name(o.node),
                floe_node_op(o.node), want_s);
        return -1;
    }
    return 0;
}

static void print_tensor(const char *name, const floe_tensor *t) {
    int nd = floe_tensor_ndim(t);
    int64_t n = floe_tensor_num_elements(t);
    floe_dtype dt = floe_tensor_dtype(t);
    const void *p = floe_tensor_data(t);

    printf("%s: %s [", name, floe_dtype_name(dt));
    for (int d = 0; d < nd; d++)
        printf("%s%lld", d ? ", " : "", (long long)floe_tensor_dim(t, d));
    printf("]\n");
    int64_t row = nd > 0 ? floe_tensor_dim(t, -1) : 1;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case FLOE_DTYPE_F32: printf("%.9g", (double)((const float *)p)[i]); break;
        case FLOE_DTYPE_F64: printf("%.17g", ((const double *)p)[i]); break;
        case FLOE_DTYPE_I32: printf("%d", ((const int32_t *)p)[i]); break;
        case FLOE_DTYPE_I64: printf("%lld", (long long)((const int64_t *)p)[i]); break;
        case FLOE_DTYPE_U8: printf("%u", ((const uint8_t *)p)[i]); break;
        case FLOE_DTYPE_I8: printf("%d", ((const int8_t *)p)[i]); break;
        case FLOE_DTYPE_I16: printf("%d", ((const int16_t *)p)[i]); break;
        case FLOE_DTYPE_U16: printf("%u", ((const uint16_t *)p)[i]); break;
        case FLOE_DTYPE_U32: printf("%u", ((const uint32_t *)p)[i]); break;
        case FLOE_DTYPE_U64: printf("%llu", (unsigned long long)((const uint64_t *)p)[i]); break;
        case FLOE_DTYPE_BOOL: printf("%s", ((const uint8_t *)p)[i] ? "true" : "false"); break;
        default: printf("?"); break;
        }
        putchar(row > 0 && (i + 1) % row == 0 ? '\n' : ' ');
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int timed_repeat(floe_plan *plan, floe_tensor *const *feeds, int nout, long repeat) {
    double *ms = malloc((size_t)repeat * sizeof(double));
    floe_tensor *outs[MAX_IO];
    if (ms == NULL) {
        fprintf(stderr, "floe run: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (long r = 0; r < repeat; r++) {
        double t0 = now_ms();
        floe_status st = floe_plan_run(plan, feeds, outs);
        ms[r] = now_ms() - t0;
        if (st != FLOE_OK) {
            fprintf(stderr, "floe run: %s: %s\n", floe_status_str(st), floe_last_error());
            free(ms);
            return EXIT_RUNTIME;
        }
        for (int k = 0; k < nout; k++)
            floe_tensor_unref(outs[k]);
    }
    qsort(ms, (size_t)repeat, sizeof(double), cmp_double);
    fprintf(stderr, "floe run: %ld runs: min %.3f ms, median %.3f ms\n", repeat, ms[0],
            ms[repeat / 2]);
    free(ms);
    return EXIT_OK;
}

int floe_tool_run(const char *plugin_path, int no_system, int argc, char **argv) {
    run_args ra;
    floe_context *ctx = NULL;
    floe_graph *g = NULL;
    floe_session *s = NULL;
    floe_output feeds[MAX_IO], fetches[MAX_IO];
    floe_tensor *feed_vals[MAX_IO] = {NULL}, *outs[MAX_IO] = {NULL};
    int rc = parse_args(argc, argv, &ra);
    floe_status st;
    floe_plan *plan;

    if (rc >= 0)
        return rc;
    rc = EXIT_RUNTIME;
    double t0 = now_ms();
    floe_context_options opts;
    floe_context_options_init(&opts);
    opts.plugin_path = plugin_path;
    opts.system_plugins = !no_system;
    if (getenv("FLOE_LOG_LEVEL") == NULL)
        opts.log_level = FLOE_LOG_ERROR;
    if ((st = floe_context_new(&opts, &ctx)) != FLOE_OK) {
        fprintf(stderr, "floe run: cannot create a context: %s\n", floe_last_error());
        return EXIT_RUNTIME;
    }
    if ((st = floe_graph_new(ctx, &g)) != FLOE_OK || (st = floe_graphdef_load(g, ra.model,
                                                                               NULL)) != FLOE_OK) {
        fprintf(stderr, "floe run: %s: %s: %s\n", ra.model, floe_status_str(st),
                floe_last_error());
        goto done;
    }
    for (int i = 0; i < ra.nin; i++) {
        if (resolve(g, ra.in[i].name, &feeds[i]) != 0)
            goto done;
        if ((st = floe_npy_load(ctx, ra.in[i].file, 0, &feed_vals[i])) != FLOE_OK) {
            fprintf(stderr, "floe run: input '%s': %s\n", ra.in[i].name, floe_last_error());
            goto done;
        }
        if (check_feed(ra.in[i].name, feeds[i], feed_vals[i]) != 0)
            goto done;
    }
    for (int i = 0; i < ra.nout; i++)
        if (resolve(g, ra.out[i].name, &fetches[i]) != 0)
            goto done;
    double t_load = now_ms();
    if ((st = floe_session_new(g, NULL, &s)) != FLOE_OK ||
        (st = floe_session_prepare(s, feeds, ra.nin, fetches, ra.nout, NULL, 0, &plan)) !=
            FLOE_OK ||
        (st = floe_plan_run(plan, feed_vals, outs)) != FLOE_OK) {
        fprintf(stderr, "floe run: %s: %s\n", floe_status_str(st), floe_last_error());
        goto done;
    }
    double t_first = now_ms();
    for (int i = 0; i < ra.nout; i++) {
        floe_tensor *host;
        if ((st = floe_tensor_to_host(outs[i], &host)) != FLOE_OK) {
            fprintf(stderr, "floe run: output '%s': %s\n", ra.out[i].name, floe_last_error());
            goto done;
        }
        floe_tensor_unref(outs[i]);
        outs[i] = host;
        if (ra.out[i].file != NULL) {
            if ((st = floe_npy_save(ctx, ra.out[i].file, host)) != FLOE_OK) {
                fprintf(stderr, "floe run: output '%s': %s: %s\n", ra.out[i].name,
                        ra.out[i].file, floe_last_error());
                goto done;
            }
        } else {
            print_tensor(ra.out[i].name, host);
        }
    }
    rc = EXIT_OK;
    if (ra.repeat > 0) {
        fprintf(stderr, "floe run: load %.3f ms (context, GraphDef, inputs), first run %.3f ms\n",
                t_load - t0, t_first - t_load);
        rc = timed_repeat(plan, feed_vals, ra.nout, ra.repeat);
    }
done:
    for (int i = 0; i < MAX_IO; i++) {
        floe_tensor_unref(feed_vals[i]);
        floe_tensor_unref(outs[i]);
    }
    floe_session_free(s);
    floe_graph_free(g);
    floe_context_free(ctx);
    return rc;
}
