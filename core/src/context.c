/*
 * context.c - the runtime context: options, creation and teardown, plugin records.
 *
 * A context owns a copy of its options (strings included), the shared thread pool,
 * the registry (registry.c) with the built-in local filesystem as "file", and the
 * record of every plugin it tried (loader.c).  Environment variables supply what the
 * options leave unset: FLOE_PLUGIN_PATH, FLOE_PLUGIN_ALLOW, FLOE_PLUGIN_DENY,
 * FLOE_NUM_THREADS, FLOE_LOG_LEVEL (read by floe_context_options_init()).
 *
 * Sections: options; environment; creation and teardown; plugin records; thread pool.
 */
#include "core-impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
/* Sizes of the first published layouts: a caller's struct is at least this big. */
#define OPTIONS_MIN_SIZE END_OF(floe_context_options, log_arg)
#define PLUGIN_INFO_MIN_SIZE END_OF(floe_plugin_info, num_transports)
#define MAX_THREADS 4096

/* ---- Environment ---------------------------------------------------------------- */

/* FLOE_LOG_LEVEL: debug, info, warning (warn), error, none; else @dflt. */
static floe_log_level env_log_level(floe_log_level dflt) {
    static const struct {
        const char *name;
        floe_log_level level;
    } levels[] = {{"debug", FLOE_LOG_DEBUG},     {"info", FLOE_LOG_INFO},
                  {"warning", FLOE_LOG_WARNING}, {"warn", FLOE_LOG_WARNING},
                  {"error", FLOE_LOG_ERROR},     {"none", FLOE_LOG_NONE}};
    const char *s = getenv("FLOE_LOG_LEVEL");
    if (s == NULL || s[0] == '\0')
        return dflt;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcasecmp(s, levels[i].name) == 0)
            return levels[i].level;
    return dflt;
}

/* A positive int from FLOE_NUM_THREADS, or 0 when unset or malformed. */
static int env_num_threads(floe_context *ctx) {
    const char *s = getenv("FLOE_NUM_THREADS");
    char *end;
    long v;
    if (s == NULL || s[0] == '\0')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > MAX_THREADS) {
        floe__log(ctx, FLOE_LOG_WARNING,
                  "FLOE_NUM_THREADS=\"%s\" ignored: expected an integer "
                  "in [1, %d]",
                  s, MAX_THREADS);
        return 0;
    }
    return (int)v;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* ---- Options ------------------------------------------------------------------ */

void floe_context_options_init(floe_context_options *opts) {
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->struct_size = sizeof(*opts);
    opts->system_plugins = 1;
    opts->log_level = env_log_level(FLOE_LOG_WARNING);
}

/* Copies the caller's options (of its struct_size) into @out, defaults past it. */
static floe_status options_copy(const floe_context_options *in, floe_context_options *out) {
    floe_context_options_init(out);
    if (in == NULL)
        return FLOE_OK;
    if (in->struct_size < OPTIONS_MIN_SIZE)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "context options: struct_size %zu is too small "
                          "(initialise them with floe_context_options_init())",
                          in->struct_size);
    memcpy(out, in, in->struct_size < sizeof(*out) ? in->struct_size : sizeof(*out));
    out->struct_size = sizeof(*out);
    if (out->num_threads < 0 || out->num_threads > MAX_THREADS)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "context options: num_threads %d out of range "
                          "[0, %d]",
                          out->num_threads, MAX_THREADS);
    if ((unsigned)out->log_level > FLOE_LOG_NONE)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "context options: log_level %d is not a "
                          "floe_log_level",
                          (int)out->log_level);
    return FLOE_OK;
}

/* Owned copies of the option strings, or of their environment defaults. */
static floe_status copy_strings(floe_context *ctx) {
    const char *path = ctx->opts.plugin_path, *allow = ctx->opts.allow, *deny = ctx->opts.deny;
    if (path == NULL)
        path = getenv("FLOE_PLUGIN_PATH");
    if (allow == NULL)
        allow = getenv("FLOE_PLUGIN_ALLOW");
    if (deny == NULL)
        deny = getenv("FLOE_PLUGIN_DENY");
    if ((path != NULL && (ctx->plugin_path = floe__strdup(path)) == NULL) ||
        (allow != NULL && (ctx->allow = floe__strdup(allow)) == NULL) ||
        (deny != NULL && (ctx->deny = floe__strdup(deny)) == NULL))
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_context_new: out of memory");
    /* The copies replace the caller's pointers, which need not outlive this call. */
    ctx->opts.plugin_path = ctx->plugin_path;
    ctx->opts.allow = ctx->allow;
    ctx->opts.deny = ctx->deny;
    return FLOE_OK;
}

/* ---- Creation and teardown ------------------------------------------------------ */

static void plugin_free(floe_plugin *p) {
    floe__registry_deinit(&p->pending);
    floe__free(p->path);
    floe__free(p->name);
    floe__free(p->reason);
    floe__free(p->note);
    floe__free(p);
}

floe_status floe_context_new(const floe_context_options *opts, floe_context **out) {
    floe_context *ctx;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_new: NULL output");
    *out = NULL;
    if ((ctx = floe__calloc(1, sizeof(*ctx))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_context_new: out of memory");
    if ((st = options_copy(opts, &ctx->opts)) != FLOE_OK)
        goto fail_free;
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        st = floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_context_new: cannot create a mutex");
        goto fail_free;
    }
    if ((st = copy_strings(ctx)) != FLOE_OK)
        goto fail_strings;
    ctx->num_threads = ctx->opts.num_threads;
    if (ctx->num_threads == 0)
        ctx->num_threads = env_num_threads(ctx);
    if (ctx->num_threads == 0)
        ctx->num_threads = online_cpus();
    if ((st = floe__threadpool_new(ctx->num_threads, &ctx->pool)) != FLOE_OK)
        goto fail_strings;
    ctx->local_fs.ops = floe__local_fs_ops;
    ctx->local_fs.plugin = NULL;
    floe__loader_load_all(ctx);
    floe__fail(FLOE_OK, "%s", ""); /* plugin failures are recorded, not returned */
    *out = ctx;
    return FLOE_OK;

fail_strings:
    floe__free(ctx->plugin_path);
    floe__free(ctx->allow);
    floe__free(ctx->deny);
    pthread_mutex_destroy(&ctx->lock);
fail_free:
    floe__free(ctx);
    return st;
}

void floe_context_free(floe_context *ctx) {
    if (ctx == NULL)
        return;
    floe__loader_unload_all(ctx);
    floe__registry_deinit(&ctx->reg);
    for (int i = 0; i < ctx->nplugins; i++)
        plugin_free(ctx->plugins[i]);
    floe__free(ctx->plugins);
    floe__threadpool_free(ctx->pool);
    floe__free(ctx->plugin_path);
    floe__free(ctx->allow);
    floe__free(ctx->deny);
    pthread_mutex_destroy(&ctx->lock);
    floe__free(ctx);
}

floe_status floe_context_load_plugin(floe_context *ctx, const char *path) {
    floe_status st;
    if (ctx == NULL || path == NULL || path[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_load_plugin: NULL context or "
                                                 "empty path");
    pthread_mutex_lock(&ctx->lock);
    st = floe__loader_load_file(ctx, path);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

/* ---- Plugin records ------------------------------------------------------------- */

int floe_context_num_plugins(const floe_context *ctx) {
    int n;
    if (ctx == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
    n = ctx->nplugins;
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
    return n;
}

static void fill_info(const floe_plugin *p, floe_plugin_info *i) {
    const floe_plugin_desc *d = &p->desc_copy;
    bool loaded = p->state == FLOE__PLUGIN_LOADED;
    i->name = p->name;
    i->path = p->path;
    i->version = d->version != NULL ? d->version : "";
    i->vendor = d->vendor != NULL ? d->vendor : "";
    i->license = d->license != NULL ? d->license : "";
    i->abi_major = p->desc != NULL ? d->abi_major : 0;
    i->abi_minor = p->desc != NULL ? d->abi_minor : 0;
    i->loaded = loaded;
    i->reason = loaded ? "" : p->reason != NULL ? p->reason : "out of memory";
    i->note = p->note != NULL ? p->note : "";
    i->num_ops = p->num_ops;
    i->num_kernels = p->num_kernels;
    i->num_devices = p->num_devices;
    i->num_filesystems = p->num_filesystems;
    i->num_transports = p->num_transports;
    i->skipped = p->state == FLOE__PLUGIN_SKIPPED;
}

floe_status floe_context_plugin(const floe_context *ctx, int i, floe_plugin_info *info) {
    floe_plugin_info tmp;
    size_t size;
    int n;

    if (info == NULL || info->struct_size < PLUGIN_INFO_MIN_SIZE)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_plugin: info is NULL or its "
                                                 "struct_size is not set");
    size = info->struct_size < sizeof(tmp) ? info->struct_size : sizeof(tmp);
    memset(&tmp, 0, sizeof(tmp));
    if (ctx == NULL) {
        memcpy(info, &tmp, size);
        info->struct_size = size;
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_context_plugin: NULL context");
    }
    pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
    n = ctx->nplugins;
    if (i >= 0 && i < n)
        fill_info(ctx->plugins[i], &tmp);
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
    tmp.struct_size = size;
    memcpy(info, &tmp, size);
    if (i < 0 || i >= n)
        return floe__fail(FLOE_OUT_OF_RANGE, "plugin index %d out of range [0, %d)", i, n);
    return FLOE_OK;
}

/* ---- Thread pool ------------------------------------------------------------------ */

floe_threadpool *floe_context_threadpool(floe_context *ctx) {
    return ctx != NULL ? ctx->pool : NULL;
}

int floe_context_num_threads(const floe_context *ctx) {
    return ctx != NULL ? ctx->num_threads : 0;
}
