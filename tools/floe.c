/*
 * floe.c - the `floe` command-line tool: what a Floe installation has loaded, and why.
 *
 *   floe plugins        every plugin tried: loaded, skipped or rejected, with the reason
 *   floe ops [NAME]     the registered ops, or one op's definition and kernels
 *   floe devices        the registered devices
 *   floe version        library, ABI and plugin directory versions
 *   floe checkpoint ls FILE   a checkpoint's tensors: name, dtype, shape (checksums verified)
 *   floe train, floe predict   train on Fashion-MNIST, classify with a checkpoint (train.c)
 *   floe run MODEL.pb   run a TensorFlow frozen graph on .npy inputs (run.c)
 *   floe conformance PLUGIN.so  certify a third-party plugin (conformance.c)
 *
 * Global options pick the plugins as the library would (--plugin-path, --no-system);
 * otherwise the FLOE_PLUGIN_* environment variables apply.  Exit status: 0 success,
 * 1 runtime error (an unknown op, a context that cannot be made), 2 usage error.
 * Results go to stdout, errors to stderr.
 */
#include <floe/floe.h>
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/plugin.h>

#include "conformance-cmd.h"
#include "run-cmd.h"
#include "server-cmd.h"
#include "train-cmd.h"

#include <floe/checkpoint.h>
#include <floe/keras.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLOE_PLUGINSDIR
#  define FLOE_PLUGINSDIR "(unknown)"
#endif

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct global_opts {
    const char *plugin_path; /* NULL: FLOE_PLUGIN_PATH */
    int no_system;
} global_opts;

static const char usage_main[] =
    "usage: floe [--plugin-path PATH] [--no-system] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  plugins        list every plugin tried: loaded, skipped or rejected, and why\n"
    "  ops [NAME]     list the registered ops, or show one op's definition and kernels\n"
    "  devices        list the registered devices\n"
    "  version        show library and ABI versions\n"
    "  checkpoint ls FILE  list a checkpoint's tensors: names, dtypes, shapes\n"
    "  train          train a model on Fashion-MNIST (`floe train --help`)\n"
    "  predict        classify test images with a trained checkpoint\n"
    "  run MODEL.pb   run a TensorFlow frozen graph on .npy inputs (`floe run --help`)\n"
    "  server         a task of a distributed job (`floe server --help`)\n"
    "  conformance PLUGIN.so  certify a plugin: descriptor, registrations, kernels against\n"
    "                 the reference, device battery (`floe conformance --help`)\n"
    "\n"
    "Options:\n"
    "  -p, --plugin-path PATH  ':'-separated plugin files or directories (instead of\n"
    "                          FLOE_PLUGIN_PATH)\n"
    "  --no-system             do not search the installed plugin directory\n"
    "  -h, --help              show this help; `floe COMMAND --help` for a command\n"
    "\n"
    "Environment: FLOE_PLUGIN_PATH, FLOE_PLUGIN_SYSTEM_PATH (empty: no system directory),\n"
    "FLOE_PLUGIN_ALLOW, FLOE_PLUGIN_DENY (comma-separated plugin names), FLOE_LOG_LEVEL.\n";

static const char usage_plugins[] =
    "usage: floe plugins\n"
    "\n"
    "Lists every plugin file tried, in load order: its name, version, the plugin ABI it\n"
    "was built for, its path, and its state.  A loaded plugin shows what it registered;\n"
    "a skipped one (cannot run here, not selected, shadowed) and a rejected one (broken,\n"
    "incompatible, conflicting) show the reason.\n";

static const char usage_ops[] =
    "usage: floe ops [NAME]\n"
    "\n"
    "Without NAME, lists the registered op names, one per line, in name order.  With\n"
    "NAME, shows the op's definition (inputs, outputs, attrs), the plugin that defined\n"
    "it, and its kernels per device type with their priorities and plugins.\n";

static const char usage_devices[] =
    "usage: floe devices\n"
    "\n"
    "Lists the registered devices: name, plugin, memory and description.\n";

static const char usage_version[] =
    "usage: floe version\n"
    "\n"
    "Shows the versions of the library, of the plugin ABI it loads, and the installed\n"
    "plugin directory.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "floe: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

static int is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Handles --help and rejects options and extra arguments: returns -1 to go on, or
 * the exit status.  @max_args: positional arguments allowed. */
static int check_args(int argc, char **argv, int max_args, const char *usage) {
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage_error(usage, "unknown option '%s'", argv[i]);
        if (++npos > max_args)
            return usage_error(usage, "unexpected argument '%s'", argv[i]);
    }
    return -1;
}

static int open_context(const global_opts *g, floe_context **ctx) {
    floe_context_options opts;
    floe_status st;

    floe_context_options_init(&opts);
    opts.plugin_path = g->plugin_path;
    opts.system_plugins = !g->no_system;
    /* The listing reports every plugin problem itself; log lines would repeat them. */
    if (getenv("FLOE_LOG_LEVEL") == NULL)
        opts.log_level = FLOE_LOG_ERROR;
    st = floe_context_new(&opts, ctx);
    if (st != FLOE_OK) {
        fprintf(stderr, "floe: cannot create a context: %s: %s\n", floe_status_str(st),
                floe_last_error());
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* ---- Commands --------------------------------------------------------------------- */

static void print_plugin(const floe_plugin_info *pi) {
    const char *state = pi->loaded ? "loaded" : pi->skipped ? "skipped" : "rejected";
    char abi[32];

    if (pi->abi_major != 0 || pi->abi_minor != 0)
        snprintf(abi, sizeof(abi), "%u.%u", pi->abi_major, pi->abi_minor);
    else
        snprintf(abi, sizeof(abi), "unknown");
    printf("%-9s %s %s (plugin ABI %s)\n", state, pi->name,
           pi->version[0] != '\0' ? pi->version : "(version unknown)", abi);
    printf("          path: %s\n", pi->path);
    if (pi->vendor[0] != '\0')
        printf("          vendor: %s, license: %s\n", pi->vendor,
               pi->license[0] != '\0' ? pi->license : "unknown");
    if (pi->loaded)
        printf("          registered: %d ops, %d kernels, %d devices, %d filesystems, "
               "%d transports\n",
               pi->num_ops, pi->num_kernels, pi->num_devices, pi->num_filesystems,
               pi->num_transports);
    else
        printf("          reason: %s\n", pi->reason);
    if (pi->note[0] != '\0')
        printf("          note: %s\n", pi->note);
}

static int cmd_plugins(const global_opts *g, int argc, char **argv) {
    int rc = check_args(argc, argv, 0, usage_plugins), n, counts[3] = {0, 0, 0};
    floe_context *ctx;

    if (rc >= 0 || (rc = open_context(g, &ctx)) != EXIT_OK)
        return rc;
    n = floe_context_num_plugins(ctx);
    for (int i = 0; i < n; i++) {
        floe_plugin_info pi;
        memset(&pi, 0, sizeof(pi));
        pi.struct_size = sizeof(pi);
        if (floe_context_plugin(ctx, i, &pi) != FLOE_OK) {
            fprintf(stderr, "floe: plugin %d: %s\n", i, floe_last_error());
            rc = EXIT_RUNTIME;
            continue;
        }
        print_plugin(&pi);
        counts[pi.loaded ? 0 : pi.skipped ? 1 : 2]++;
    }
    printf("%d plugins: %d loaded, %d skipped, %d rejected\n", n, counts[0], counts[1], counts[2]);
    floe_context_free(ctx);
    return rc < 0 ? EXIT_OK : rc;
}

static int cmd_ops(const global_opts *g, int argc, char **argv) {
    int rc = check_args(argc, argv, 1, usage_ops);
    floe_context *ctx;
    const char *name = NULL;

    if (rc >= 0)
        return rc;
    for (int i = 1; i < argc; i++)
        name = argv[i];
    if ((rc = open_context(g, &ctx)) != EXIT_OK)
        return rc;
    if (name == NULL) {
        int n = floe_context_num_ops(ctx);
        for (int i = 0; i < n; i++)
            printf("%s\n", floe_context_op_name(ctx, i));
    } else {
        size_t len = 1 << 16;
        char *buf = malloc(len);
        floe_status st =
            buf != NULL ? floe_context_describe_op(ctx, name, buf, len) : FLOE_RESOURCE_EXHAUSTED;
        if (st == FLOE_OK) {
            fputs(buf, stdout);
        } else {
            fprintf(stderr,
                    "floe: %s (%d ops registered; `floe ops` lists them, `floe plugins` "
                    "shows plugins that did not load)\n",
                    buf != NULL ? floe_last_error() : "out of memory", floe_context_num_ops(ctx));
            rc = EXIT_RUNTIME;
        }
        free(buf);
    }
    floe_context_free(ctx);
    return rc;
}

/* Device plugins that did not load, and why ("dev_cuda: cannot run here: no usable CUDA
 * driver or GPU: ..."), so that a missing GPU is explained where GPUs are listed.  A
 * plugin is taken for a device plugin when its name starts with "dev_". */
static void print_device_plugins_not_loaded(const floe_context *ctx) {
    for (int i = 0; i < floe_context_num_plugins(ctx); i++) {
        floe_plugin_info pi;
        memset(&pi, 0, sizeof(pi));
        pi.struct_size = sizeof(pi);
        if (floe_context_plugin(ctx, i, &pi) == FLOE_OK && !pi.loaded &&
            strncmp(pi.name, "dev_", 4) == 0)
            printf("(%s %s: %s)\n", pi.skipped ? "skipped" : "rejected", pi.name,
                   pi.note[0] != '\0' ? pi.note : pi.reason);
    }
}

static int cmd_devices(const global_opts *g, int argc, char **argv) {
    int rc = check_args(argc, argv, 0, usage_devices), n;
    floe_context *ctx;

    if (rc >= 0 || (rc = open_context(g, &ctx)) != EXIT_OK)
        return rc;
    n = floe_context_num_devices(ctx);
    for (int i = 0; i < n; i++) {
        floe_device_info di;
        memset(&di, 0, sizeof(di));
        di.struct_size = sizeof(di);
        if (floe_context_device(ctx, i, &di) != FLOE_OK) {
            fprintf(stderr, "floe: device %d: %s\n", i, floe_last_error());
            rc = EXIT_RUNTIME;
            continue;
        }
        printf("%-20s plugin %s", di.name, di.plugin);
        if (di.memory_bytes > 0)
            printf(", %.1f GiB", (double)di.memory_bytes / (1024.0 * 1024.0 * 1024.0));
        printf("%s%s\n", di.description[0] != '\0' ? ": " : "", di.description);
    }
    if (n == 0)
        fprintf(stderr, "floe: no devices registered (`floe plugins` shows what loaded)\n");
    print_device_plugins_not_loaded(ctx);
    floe_context_free(ctx);
    return rc;
}

static int cmd_version(const global_opts *g, int argc, char **argv) {
    int rc = check_args(argc, argv, 0, usage_version);
    (void)g;
    if (rc >= 0)
        return rc;
    printf("floe %s (tool built with headers %d.%d.%d)\n", floe_version(), FLOE_VERSION_MAJOR,
           FLOE_VERSION_MINOR, FLOE_VERSION_PATCH);
    printf("plugin ABI %d.%d (loads plugins built for %d.0 to %d.%d)\n", FLOE_PLUGIN_ABI_MAJOR,
           FLOE_PLUGIN_ABI_MINOR, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MAJOR,
           FLOE_PLUGIN_ABI_MINOR);
    printf("transport ABI %d.%d (experimental)\n", FLOE_TRANSPORT_ABI_MAJOR,
           FLOE_TRANSPORT_ABI_MINOR);
    printf("plugin directory: %s\n", FLOE_PLUGINSDIR);
    return EXIT_OK;
}

static int cmd_train(const global_opts *g, int argc, char **argv) {
    return floe_tool_train(g->plugin_path, g->no_system, argc, argv);
}

static int cmd_predict(const global_opts *g, int argc, char **argv) {
    return floe_tool_predict(g->plugin_path, g->no_system, argc, argv);
}

static int cmd_run(const global_opts *g, int argc, char **argv) {
    return floe_tool_run(g->plugin_path, g->no_system, argc, argv);
}

static int cmd_server(const global_opts *g, int argc, char **argv) {
    return floe_tool_server(g->plugin_path, g->no_system, argc, argv);
}

static int cmd_conformance(const global_opts *g, int argc, char **argv) {
    return floe_tool_conformance(g->plugin_path, g->no_system, argc, argv);
}

static const char usage_checkpoint[] =
    "usage: floe checkpoint ls FILE\n"
    "\n"
    "Lists the tensors of a checkpoint file written by floe_checkpoint_save() or\n"
    "floe_checkpoint_write(), in name order: name, dtype and shape, one per line, then the\n"
    "tensor count and total bytes (TensorFlow's inspect_checkpoint).  Every tensor is read\n"
    "and its checksum verified; a corrupt or truncated file is an error (exit status 1).\n";

static int cmd_checkpoint(const global_opts *g, int argc, char **argv) {
    floe_context *ctx = NULL;
    floe_checkpoint *c = NULL;
    uint64_t total = 0;
    int rc, n;
    floe_status st;

    if (argc >= 2 && is_help(argv[1])) {
        fputs(usage_checkpoint, stdout);
        return EXIT_OK;
    }
    if (argc < 2)
        return usage_error(usage_checkpoint, "%s", "checkpoint: no subcommand given");
    if (strcmp(argv[1], "ls") != 0)
        return usage_error(usage_checkpoint, "checkpoint: unknown subcommand '%s'", argv[1]);
    if ((rc = check_args(argc - 1, argv + 1, 1, usage_checkpoint)) >= 0)
        return rc;
    if (argc != 3)
        return usage_error(usage_checkpoint, "%s", "checkpoint ls: no FILE given");
    if ((rc = open_context(g, &ctx)) != EXIT_OK)
        return rc;
    if ((st = floe_checkpoint_open(ctx, argv[2], &c)) != FLOE_OK) {
        fprintf(stderr, "floe: %s: %s\n", floe_status_str(st), floe_keras_last_error());
        floe_context_free(ctx);
        return EXIT_RUNTIME;
    }
    n = floe_checkpoint_num_tensors(c);
    for (int i = 0; i < n; i++) {
        const char *name;
        floe_dtype dt;
        floe_shape sh;
        floe_tensor *t = NULL;
        char dims[256];
        size_t len = 0;

        floe_checkpoint_tensor_info(c, i, &name, &dt, &sh);
        if ((st = floe_checkpoint_read_tensor(c, i, &t)) != FLOE_OK) {
            fprintf(stderr, "floe: %s: %s\n", floe_status_str(st), floe_keras_last_error());
            floe_checkpoint_close(c);
            floe_context_free(ctx);
            return EXIT_RUNTIME;
        }
        total += floe_tensor_nbytes(t);
        floe_tensor_unref(t);
        len += (size_t)snprintf(dims, sizeof(dims), "[");
        for (int d = 0; d < sh.ndim && len < sizeof(dims); d++)
            len += (size_t)snprintf(dims + len, sizeof(dims) - len, "%s%lld", d ? ", " : "",
                                    (long long)sh.dims[d]);
        if (len < sizeof(dims))
            snprintf(dims + len, sizeof(dims) - len, "]");
        printf("%-40s %-6s %s\n", name, floe_dtype_name(dt), dims);
    }
    printf("%d tensor%s, %llu bytes\n", n, n == 1 ? "" : "s", (unsigned long long)total);
    floe_checkpoint_close(c);
    floe_context_free(ctx);
    return EXIT_OK;
}

/* ---- Main ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(const global_opts *g, int argc, char **argv);
} commands[] = {
    {"plugins", cmd_plugins},
    {"ops", cmd_ops},
    {"devices", cmd_devices},
    {"version", cmd_version},
    {"checkpoint", cmd_checkpoint},
    {"train", cmd_train},
    {"predict", cmd_predict},
    {"run", cmd_run},
    {"conformance", cmd_conformance},
    {"server", cmd_server},
};

int main(int argc, char **argv) {
    global_opts g = {NULL, 0};
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (is_help(argv[i])) {
            fputs(usage_main, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            return cmd_version(&g, 1, argv);
        } else if (strcmp(argv[i], "-p") == 0 || strcmp(argv[i], "--plugin-path") == 0) {
            if (++i >= argc)
                return usage_error(usage_main, "%s needs a path", argv[i - 1]);
            g.plugin_path = argv[i];
        } else if (strncmp(argv[i], "--plugin-path=", 14) == 0) {
            g.plugin_path = argv[i] + 14;
        } else if (strcmp(argv[i], "--no-system") == 0) {
            g.no_system = 1;
        } else {
            return usage_error(usage_main, "unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc)
        return usage_error(usage_main, "%s", "no command given");
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            return commands[c].fn(&g, argc - i, argv + i);
    return usage_error(usage_main, "unknown command '%s'", argv[i]);
}
