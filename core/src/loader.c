/*
 * loader.c - plugin discovery, checks and loading.
 *
 * Discovery: the context's plugin path (option, else FLOE_PLUGIN_PATH), ':'-separated
 * directories or files, then the installed plugin directory FLOE_PLUGINSDIR unless the
 * option system_plugins is 0 or FLOE_PLUGIN_SYSTEM_PATH is set (set and empty: off;
 * set: those directories instead).  A directory contributes its floe_*.so files in
 * name order, so the load order, and with it the outcome of every conflict (first
 * loaded wins, registry.c), is deterministic.  A file reached twice (realpath) is
 * tried once; a file whose plugin name is already loaded from elsewhere is skipped as
 * shadowed, so the path overrides the system directory.
 *
 * Loading one file checks as much as possible before running plugin code (lesson 8
 * of PLUGIN-ABI.md): the allow and deny lists and the name, from the file name alone;
 * then dlopen(RTLD_NOW | RTLD_LOCAL), the entry symbol floe_plugin_<name>_get_desc,
 * the descriptor's header (ABI major equal, minor not newer, size), its required
 * members and its name, the "requires_cpu" manifest; only then score() and init().
 * Every outcome is recorded on the plugin (state and reason: file, name, plugin
 * version, both ABI versions, cause) and logged (INFO; WARNING for a rejection);
 * none aborts the process.  Conflicts follow registry.c: the first plugin loaded
 * wins.  In a discovery pass, a plugin whose kernels or gradients target ops that no
 * plugin has registered yet waits, its names claimed, and commits after the pass's
 * other plugins (commit_waiting()), so a kernel plugin whose name sorts first still
 * finds the ops of the plugin that defines them.  Libraries
 * are never dlclose'd (lesson 10); floe__loader_unload_all() runs the teardown
 * callbacks.
 *
 * Sections: recording outcomes; CPU features; names and lists; checks; loading;
 * discovery; unloading.
 */
#include "core-impl.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__x86_64__) || defined(__i386__)
#  include <cpuid.h>
#endif

#ifndef FLOE_PLUGINSDIR
#  define FLOE_PLUGINSDIR "/usr/local/lib/floe-1"
#endif

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
/* The header of floe_plugin_desc, and the end of its last required member. */
#define DESC_HEADER_SIZE END_OF(floe_plugin_desc, struct_size)
#define DESC_MIN_SIZE END_OF(floe_plugin_desc, init)

#define PLUGIN_NAME_MAX 64

/* ---- Recording outcomes ------------------------------------------------------ */

static const char *state_word(floe__plugin_state s) {
    return s == FLOE__PLUGIN_LOADED ? "loaded" : s == FLOE__PLUGIN_SKIPPED ? "skipped" : "rejected";
}

/* Records @state with a reason naming the file, the plugin, both versions and the
 * cause, logs it, sets the thread's error, and returns @code. */
static floe_status finish(floe_plugin *p, floe__plugin_state state, floe_status code,
                          const char *fmt, ...) FLOE_PRINTF(4, 5);
static floe_status finish(floe_plugin *p, floe__plugin_state state, floe_status code,
                          const char *fmt, ...) {
    char cause[1024], abi[32], reason[2048];
    const char *version = p->desc_copy.version != NULL ? p->desc_copy.version : "version unknown";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    if (p->desc != NULL)
        snprintf(abi, sizeof(abi), "%u.%u", p->desc_copy.abi_major, p->desc_copy.abi_minor);
    else
        snprintf(abi, sizeof(abi), "unknown");
    snprintf(reason, sizeof(reason), "%s: plugin '%s' (%s, plugin ABI %s, core ABI %d.%d): %s",
             p->path, p->name, version, abi, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR, cause);
    p->state = state;
    floe__free(p->reason);
    p->reason = floe__strdup(reason);
    floe__log(p->ctx, state == FLOE__PLUGIN_REJECTED ? FLOE_LOG_WARNING : FLOE_LOG_INFO,
              "plugin %s: %s", state_word(state), reason);
    return floe__fail(code, "plugin %s: %s", state_word(state), reason);
}

/* ---- CPU features ------------------------------------------------------------ */

/* The features __builtin_cpu_supports() knows on every supported compiler, then f16c,
 * which clang before 16 rejects there and cpu_has() tests with CPUID instead. */
/* clang-format off */
#define CPU_FEATURES_BUILTIN(X)                                                           \
    X("sse") X("sse2") X("sse3") X("ssse3") X("sse4.1") X("sse4.2") X("popcnt") X("aes")   \
    X("pclmul") X("avx") X("avx2") X("fma") X("bmi") X("bmi2") X("avx512f")                \
    X("avx512bw") X("avx512vl") X("avx512dq") X("avx512cd") X("avx512vnni") X("avx512bf16")
#define CPU_FEATURES(X) CPU_FEATURES_BUILTIN(X) X("f16c")
/* clang-format on */

/* Lower case without '_', '.', '-': "avx512_vnni", "AVX512VNNI" and "sse4_2" match. */
static void feature_norm(const char *s, size_t n, char *out, size_t len) {
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < len; i++)
        if (s[i] != '_' && s[i] != '.' && s[i] != '-')
            out[j++] = (char)tolower((unsigned char)s[i]);
    out[j] = '\0';
}

/* The canonical name of a feature, or NULL if unknown. */
static const char *feature_canonical(const char *s, size_t n) {
#define NAME_(f) f,
    static const char *const names[] = {CPU_FEATURES(NAME_)};
#undef NAME_
    char want[40], have[40];
    feature_norm(s, n, want, sizeof(want));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        feature_norm(names[i], strlen(names[i]), have, sizeof(have));
        if (strcmp(want, have) == 0)
            return names[i];
    }
    return NULL;
}

static bool cpu_has(const char *canonical) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
/* clang-format off */
#  define TEST_(f)                                                                         \
    if (strcmp(canonical, f) == 0)                                                         \
        return __builtin_cpu_supports(f) != 0;
    /* clang-format on */
    CPU_FEATURES_BUILTIN(TEST_)
#  undef TEST_
    /* F16C: CPUID.1:ECX bit 29, usable only where AVX is (as GCC's builtin tests it). */
    if (strcmp(canonical, "f16c") == 0) {
        unsigned int eax, ebx, ecx, edx;
        return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0 &&
               __builtin_cpu_supports("avx") != 0;
    }
#endif
    (void)canonical;
    return false;
}

/* The next comma-separated item of *@s, trimmed, or false at the end. */
static bool next_item(const char **s, const char **b, size_t *n) {
    while (*s != NULL && **s != '\0') {
        const char *e = strchr(*s, ',');
        if (e == NULL)
            e = *s + strlen(*s);
        *b = *s;
        *s = *e == ',' ? e + 1 : e;
        while (*b < e && isspace((unsigned char)**b))
            (*b)++;
        while (e > *b && isspace((unsigned char)e[-1]))
            e--;
        if ((*n = (size_t)(e - *b)) > 0)
            return true;
    }
    return false;
}

/* Checks the "requires_cpu" manifest; FLOE_OK, or the plugin recorded as rejected
 * (a feature name unknown here: a broken manifest, whatever the order) or skipped (a
 * feature this CPU lacks). */
static floe_status check_cpu(floe_plugin *p) {
    const char *s = p->desc_copy.requires_cpu, *b;
    size_t n;

    while (next_item(&s, &b, &n))
        if (feature_canonical(b, n) == NULL)
            return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                          "requires_cpu names unknown CPU feature '%.*s' (known: sse, sse2, "
                          "sse3, ssse3, sse4.1, sse4.2, popcnt, aes, pclmul, avx, avx2, fma, "
                          "f16c, bmi, bmi2, avx512f, avx512bw, avx512vl, avx512dq, avx512cd, "
                          "avx512vnni, avx512bf16)",
                          (int)(n > 64 ? 64 : n), b);
    s = p->desc_copy.requires_cpu;
    while (next_item(&s, &b, &n)) {
        const char *feat = feature_canonical(b, n);
        if (!cpu_has(feat))
            return finish(p, FLOE__PLUGIN_SKIPPED, FLOE_UNAVAILABLE,
                          "requires CPU feature '%s', which this CPU lacks", feat);
    }
    return FLOE_OK;
}

/* ---- Names and lists -------------------------------------------------------- */

/* The plugin name a file name gives: "libfloe_"/"floe_"/"lib" and ".so*" stripped. */
static bool name_from_file(const char *path, char *out, size_t len) {
    const char *base = strrchr(path, '/'), *end;
    size_t n;

    base = base != NULL ? base + 1 : path;
    if (strncmp(base, "libfloe_", 8) == 0)
        base += 8;
    else if (strncmp(base, "floe_", 5) == 0)
        base += 5;
    else if (strncmp(base, "lib", 3) == 0)
        base += 3;
    for (end = strstr(base, ".so"); end != NULL && end[3] != '\0' && end[3] != '.';
         end = strstr(end + 1, ".so"))
        ;
    n = end != NULL ? (size_t)(end - base) : strlen(base);
    if (n == 0 || n >= len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)base[i]) && !isdigit((unsigned char)base[i]) && base[i] != '_')
            return false;
    memcpy(out, base, n);
    out[n] = '\0';
    return true;
}

static bool plugin_name_ok(const char *s) {
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (!islower((unsigned char)s[n]) && !isdigit((unsigned char)s[n]) && s[n] != '_')
            return false;
    return n > 0 && n < PLUGIN_NAME_MAX;
}

/* Whether @name is an item of the comma-separated @list (spaces ignored). */
static bool in_list(const char *list, const char *name) {
    const char *b;
    size_t n;
    while (next_item(&list, &b, &n))
        if (n == strlen(name) && strncmp(b, name, n) == 0)
            return true;
    return false;
}

/* ---- Checks ------------------------------------------------------------------- */

/* Allow/deny lists and shadowing: decided from the name, before opening the file. */
static floe_status check_selection(floe_context *ctx, floe_plugin *p, bool apply_lists) {
    if (apply_lists && ctx->deny != NULL && in_list(ctx->deny, p->name))
        return finish(p, FLOE__PLUGIN_SKIPPED, FLOE_UNAVAILABLE,
                      "in the deny list (deny option or FLOE_PLUGIN_DENY=\"%s\")", ctx->deny);
    /* An empty allow list is no list: FLOE_PLUGIN_ALLOW= must not turn everything off. */
    if (apply_lists && ctx->allow != NULL && ctx->allow[0] != '\0' && !in_list(ctx->allow, p->name))
        return finish(p, FLOE__PLUGIN_SKIPPED, FLOE_UNAVAILABLE,
                      "not in the allow list (allow option or FLOE_PLUGIN_ALLOW=\"%s\")",
                      ctx->allow);
    for (int i = 0; i < ctx->nplugins; i++) {
        const floe_plugin *o = ctx->plugins[i];
        bool taken =
            o->state == FLOE__PLUGIN_LOADED || (o->state == FLOE__PLUGIN_LOADING && o->inited);
        if (o != p && taken && strcmp(o->name, p->name) == 0)
            return finish(p, FLOE__PLUGIN_SKIPPED, FLOE_ALREADY_EXISTS,
                          "a plugin named '%s' is already loaded from %s (found first)", p->name,
                          o->path);
    }
    return FLOE_OK;
}

/* Opens the library and fetches the descriptor; the header is copied for reports. */
static floe_status open_desc(floe_plugin *p) {
    const floe_plugin_desc *(*get_desc)(void);
    char sym[128];
    void *handle;
    struct stat sb;

    if (stat(p->path, &sb) != 0)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_NOT_FOUND, "cannot open: %s", strerror(errno));
    dlerror();
    handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *err = dlerror();
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION, "dlopen failed: %s",
                      err != NULL ? err : "unknown error");
    }
    snprintf(sym, sizeof(sym), "floe_plugin_%s_get_desc", p->name);
    *(void **)(&get_desc) = dlsym(handle, sym);
    if (get_desc == NULL)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "no entry symbol %s (not a Floe plugin, or the file was renamed)", sym);
    if ((p->desc = get_desc()) == NULL)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION, "%s() returned NULL",
                      sym);
    memset(&p->desc_copy, 0, sizeof(p->desc_copy));
    memcpy(&p->desc_copy, p->desc, DESC_HEADER_SIZE);
    return FLOE_OK;
}

/* The descriptor's versions, size and required members. */
static floe_status check_desc(floe_plugin *p) {
    const floe_plugin_desc *d = p->desc;
    const floe_plugin_desc *c = &p->desc_copy;
    const char *missing;

    if (d->abi_major != FLOE_PLUGIN_ABI_MAJOR)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "built for plugin ABI major %u; this core loads major %d only (rebuild "
                      "the plugin against this Floe)",
                      d->abi_major, FLOE_PLUGIN_ABI_MAJOR);
    if (d->struct_size < DESC_MIN_SIZE)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "descriptor struct_size %zu is smaller than its required members "
                      "(%zu bytes)",
                      d->struct_size, (size_t)DESC_MIN_SIZE);
    /* Same major: the minor-0 members sit where this core expects them, whatever the
     * minor (append-only).  Members past the plugin's struct are zero: absent
     * optional members. */
    memcpy(&p->desc_copy, d,
           d->struct_size < sizeof(p->desc_copy) ? d->struct_size : sizeof(p->desc_copy));
    if (d->abi_minor > FLOE_PLUGIN_ABI_MINOR)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "built for plugin ABI %u.%u, newer than this core's %d.%d (upgrade Floe)",
                      d->abi_major, d->abi_minor, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR);
    missing = c->name == NULL      ? "name"
              : c->version == NULL ? "version"
              : c->vendor == NULL  ? "vendor"
              : c->license == NULL ? "license"
              : c->init == NULL    ? "init"
                                   : NULL;
    if (missing != NULL)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "required descriptor member '%s' is NULL", missing);
    if (!plugin_name_ok(c->name))
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "descriptor name '%.64s' is malformed: expected [a-z0-9_]+", c->name);
    if (strcmp(c->name, p->name) != 0)
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "descriptor name '%s' does not match the name '%s' that the file name "
                      "gives",
                      c->name, p->name);
    return FLOE_OK;
}

/* ---- Loading ------------------------------------------------------------------ */

static floe_status run_score(floe_plugin *p) {
    int score;
    if (p->desc_copy.score == NULL)
        return FLOE_OK;
    score = p->desc_copy.score(p, &floe__host_table);
    if (p->pending.nops + p->pending.nkernels + p->pending.ndevices + p->pending.nfilesystems +
            p->pending.ntransports + p->pending.ngrads >
        0) {
        floe__registry_deinit(&p->pending);
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_FAILED_PRECONDITION,
                      "registered definitions from score(); only init() may register");
    }
    if (score <= 0)
        return finish(p, FLOE__PLUGIN_SKIPPED, FLOE_UNAVAILABLE, "cannot run here: %s",
                      p->note != NULL ? p->note : "score() returned 0 without a note");
    return FLOE_OK;
}

/* Undoes an init() whose registrations were refused: tears down what it registered
 * (reverse order), then deinit(). */
static void undo_init(floe_plugin *p) {
    floe__registry *pend = &p->pending;
    for (int i = pend->ntransports - 1; i >= 0; i--)
        if (pend->transports[i]->ops.destroy != NULL)
            pend->transports[i]->ops.destroy(pend->transports[i]->ops.state);
    for (int i = pend->nfilesystems - 1; i >= 0; i--)
        if (pend->filesystems[i]->ops.destroy != NULL)
            pend->filesystems[i]->ops.destroy(pend->filesystems[i]->ops.state);
    for (int i = pend->ndevices - 1; i >= 0; i--)
        if (pend->devices[i]->ops.destroy != NULL)
            pend->devices[i]->ops.destroy(pend->devices[i]->state);
    if (p->desc_copy.deinit != NULL)
        p->desc_copy.deinit(p->user);
    p->inited = false;
    p->user = NULL;
    floe__registry_deinit(pend);
}

static bool is_waiting(const floe_plugin *p) {
    return p->state == FLOE__PLUGIN_LOADING && p->inited;
}

static void mark_loaded(floe_context *ctx, floe_plugin *p) {
    p->state = FLOE__PLUGIN_LOADED;
    floe__free(p->reason);
    p->reason = NULL;
    floe__log(ctx, FLOE_LOG_INFO,
              "plugin loaded: %s: plugin '%s' %s by %s (plugin ABI %u.%u, "
              "core ABI %d.%d): %d ops, %d kernels, %d devices, %d filesystems, %d transports",
              p->path, p->name, p->desc_copy.version, p->desc_copy.vendor, p->desc_copy.abi_major,
              p->desc_copy.abi_minor, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR, p->num_ops,
              p->num_kernels, p->num_devices, p->num_filesystems, p->num_transports);
    floe__fail(FLOE_OK, "%s", "");
}

/* Commits the registrations of an initialised plugin.  With @may_wait (a discovery
 * pass), a plugin whose kernels or gradients need ops that no plugin has registered
 * yet is left waiting (*@waiting, state LOADING) for commit_waiting(): name order
 * must not decide whether a kernel plugin ("dev_cuda") loads before the plugin that
 * defines its ops ("ops_math").  Any other refusal rejects it, undoing init(). */
static floe_status commit_plugin(floe_context *ctx, floe_plugin *p, bool may_wait, bool *waiting) {
    char *reason = NULL;
    floe_status st = floe__registry_commit(ctx, p, &reason);

    *waiting = false;
    if (st == FLOE_OK) {
        mark_loaded(ctx, p);
        return FLOE_OK;
    }
    if (st == FLOE_NOT_FOUND && may_wait && reason != NULL) {
        floe__free(p->reason);
        p->reason = reason;
        *waiting = true;
        floe__log(ctx, FLOE_LOG_DEBUG,
                  "plugin '%s' waits for the other plugins of this pass: "
                  "%s",
                  p->name, reason);
        floe__fail(FLOE_OK, "%s", "");
        return FLOE_OK;
    }
    undo_init(p);
    st = finish(p, FLOE__PLUGIN_REJECTED, st,
                "registrations refused, none took effect "
                "(first loaded wins): %s",
                reason != NULL ? reason : "out of memory");
    floe__free(reason);
    return st;
}

static floe_status run_init(floe_context *ctx, floe_plugin *p, bool may_wait) {
    floe_status st;
    void *user = NULL;
    bool waiting;

    floe__fail(FLOE_OK, "%s", "");
    st = p->desc_copy.init(p, &floe__host_table, &user);
    if (st != FLOE_OK) {
        const char *msg = floe_last_error();
        char saved[1024];
        snprintf(saved, sizeof(saved), "%s", msg[0] != '\0' ? msg : "(no message)");
        /* A failed init() cleans up after itself: its registrations are dropped and
         * deinit() is not called. */
        floe__registry_deinit(&p->pending);
        return finish(p, FLOE__PLUGIN_REJECTED, st, "init() failed with %s: %s",
                      floe_status_str(st), saved);
    }
    p->user = user;
    p->inited = true;
    return commit_plugin(ctx, p, may_wait, &waiting);
}

/* Commits the plugins left waiting by a discovery pass, in load order, round after
 * round while one of them gets through; those still waiting are then rejected. */
static void commit_waiting(floe_context *ctx) {
    bool progress = true;
    while (progress) {
        progress = false;
        for (int i = 0; i < ctx->nplugins; i++) {
            bool waiting;
            if (!is_waiting(ctx->plugins[i]))
                continue;
            commit_plugin(ctx, ctx->plugins[i], true, &waiting);
            progress = progress || !waiting;
        }
    }
    for (int i = 0; i < ctx->nplugins; i++) {
        floe_plugin *p = ctx->plugins[i];
        char saved[1024];
        if (!is_waiting(p))
            continue;
        snprintf(saved, sizeof(saved), "%s", p->reason != NULL ? p->reason : "unknown op");
        undo_init(p);
        finish(p, FLOE__PLUGIN_REJECTED, FLOE_NOT_FOUND,
               "registrations refused, none took "
               "effect: %s",
               saved);
    }
}

/* @discovery: part of a discovery pass (allow and deny lists apply, and the plugin may
 * wait for the pass's other plugins); otherwise an explicit request. */
static floe_status load_record(floe_context *ctx, floe_plugin *p, bool discovery) {
    floe_status st;

    if (!plugin_name_ok(p->name))
        return finish(p, FLOE__PLUGIN_REJECTED, FLOE_INVALID_ARGUMENT,
                      "the file name gives no valid plugin name: expected "
                      "[lib][floe_]<name>.so with <name> in [a-z0-9_]+");
    if ((st = check_selection(ctx, p, discovery)) != FLOE_OK || (st = open_desc(p)) != FLOE_OK ||
        (st = check_desc(p)) != FLOE_OK || (st = check_cpu(p)) != FLOE_OK ||
        (st = run_score(p)) != FLOE_OK)
        return st;
    return run_init(ctx, p, discovery);
}

static floe_plugin *find_by_path(floe_context *ctx, const char *path) {
    for (int i = 0; i < ctx->nplugins; i++)
        if (strcmp(ctx->plugins[i]->path, path) == 0)
            return ctx->plugins[i];
    return NULL;
}

/* A new record for @path, appended to the context's list. */
static floe_plugin *plugin_new(floe_context *ctx, const char *path) {
    char name[PLUGIN_NAME_MAX];
    const char *base = strrchr(path, '/');
    floe_plugin *p;

    if (ctx->nplugins == ctx->cap_plugins) {
        int cap = ctx->cap_plugins > 0 ? ctx->cap_plugins * 2 : 8;
        void *n = floe__realloc(ctx->plugins, (size_t)cap * sizeof(*ctx->plugins));
        if (n == NULL)
            return NULL;
        ctx->plugins = n;
        ctx->cap_plugins = cap;
    }
    if ((p = floe__calloc(1, sizeof(*p))) == NULL)
        return NULL;
    p->ctx = ctx;
    p->state = FLOE__PLUGIN_LOADING;
    if (!name_from_file(path, name, sizeof(name)))
        snprintf(name, sizeof(name), "%s", base != NULL ? base + 1 : path);
    if ((p->path = floe__strdup(path)) == NULL || (p->name = floe__strdup(name)) == NULL) {
        floe__free(p->path);
        floe__free(p);
        return NULL;
    }
    ctx->plugins[ctx->nplugins++] = p;
    return p;
}

/* Loads one file once (by realpath); @discovery: see load_record(). */
static floe_status load_path(floe_context *ctx, const char *path, bool discovery) {
    char *real = realpath(path, NULL);
    const char *use = real != NULL ? real : path;
    floe_plugin *p = find_by_path(ctx, use);

    if (p != NULL && (discovery || p->state != FLOE__PLUGIN_SKIPPED)) {
        floe__log(ctx, FLOE_LOG_DEBUG, "plugin file %s already tried (%s)", use,
                  state_word(p->state));
        free(real);
        if (p->state == FLOE__PLUGIN_LOADED)
            return FLOE_OK;
        return floe__fail(FLOE_FAILED_PRECONDITION, "plugin %s: %s", state_word(p->state),
                          p->reason != NULL ? p->reason : use);
    }
    if (p != NULL) {
        /* An explicit load retries a skipped file (a denied plugin, say): skips are not
         * errors, and the application asked for this one.  Same record, tried afresh. */
        free(real);
        floe__free(p->reason);
        floe__free(p->note);
        p->reason = p->note = NULL;
        p->desc = NULL;
        memset(&p->desc_copy, 0, sizeof(p->desc_copy));
        p->state = FLOE__PLUGIN_LOADING;
        return load_record(ctx, p, discovery);
    }
    p = plugin_new(ctx, use);
    free(real);
    if (p == NULL) {
        floe__log(ctx, FLOE_LOG_ERROR, "out of memory recording plugin %s", path);
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "out of memory recording plugin %s", path);
    }
    return load_record(ctx, p, discovery);
}

floe_status floe__loader_load_file(floe_context *ctx, const char *path) {
    if (ctx == NULL || path == NULL || path[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT, "load plugin: NULL context or empty path");
    /* An explicit request: the allow and deny lists govern discovery only. */
    return load_path(ctx, path, false);
}

/* ---- Discovery ---------------------------------------------------------------- */

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_plugin_file_name(const char *name) {
    size_t n = strlen(name);
    return n > 8 && strncmp(name, "floe_", 5) == 0 && strcmp(name + n - 3, ".so") == 0;
}

/* Loads the floe_*.so regular files of @dir in name order. */
static void load_dir(floe_context *ctx, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int n = 0, cap = 0;

    if (d == NULL) {
        floe__log(ctx, FLOE_LOG_INFO, "plugin directory %s: %s", dir, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *full;
        struct stat sb;
        if (!is_plugin_file_name(e->d_name))
            continue;
        if (n == cap) {
            int ncap = cap > 0 ? cap * 2 : 16;
            void *nn = floe__realloc(names, (size_t)ncap * sizeof(*names));
            if (nn == NULL)
                break;
            names = nn;
            cap = ncap;
        }
        if ((full = floe__malloc(strlen(dir) + strlen(e->d_name) + 2)) == NULL)
            break;
        sprintf(full, "%s/%s", dir, e->d_name);
        if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            floe__free(full);
            continue;
        }
        names[n++] = full;
    }
    closedir(d);
    if (n > 0)
        qsort(names, (size_t)n, sizeof(*names), str_cmp);
    floe__log(ctx, FLOE_LOG_DEBUG, "plugin directory %s: %d candidates", dir, n);
    for (int i = 0; i < n; i++) {
        load_path(ctx, names[i], true);
        floe__free(names[i]);
    }
    floe__free(names);
}

/* Each entry of a ':'-separated list: a directory is scanned, anything else loaded. */
static void load_path_list(floe_context *ctx, const char *list, const char *origin) {
    while (list != NULL && *list != '\0') {
        const char *e = strchr(list, ':');
        size_t n = e != NULL ? (size_t)(e - list) : strlen(list);
        char entry[PATH_MAX];
        struct stat sb;

        if (n > 0 && n < sizeof(entry)) {
            memcpy(entry, list, n);
            entry[n] = '\0';
            if (stat(entry, &sb) != 0)
                floe__log(ctx, FLOE_LOG_INFO, "plugin path entry %s (%s): %s", entry, origin,
                          strerror(errno));
            else if (S_ISDIR(sb.st_mode))
                load_dir(ctx, entry);
            else
                load_path(ctx, entry, true);
        }
        list = e != NULL ? e + 1 : list + n;
    }
}

static void load_system_dirs(floe_context *ctx) {
    const char *sys;

    if (!ctx->opts.system_plugins) {
        floe__log(ctx, FLOE_LOG_DEBUG, "system plugin directory off (system_plugins = 0)");
        return;
    }
    sys = getenv("FLOE_PLUGIN_SYSTEM_PATH");
    if (sys != NULL && sys[0] == '\0') {
        floe__log(ctx, FLOE_LOG_DEBUG,
                  "system plugin directory off (FLOE_PLUGIN_SYSTEM_PATH=\"\")");
        return;
    }
    load_path_list(ctx, sys != NULL ? sys : FLOE_PLUGINSDIR,
                   sys != NULL ? "FLOE_PLUGIN_SYSTEM_PATH" : "system plugin directory");
}

void floe__loader_load_all(floe_context *ctx) {
    if (ctx == NULL || ctx->opts.no_plugins)
        return;
    if (ctx->plugin_path != NULL)
        load_path_list(ctx, ctx->plugin_path, "plugin path");
    load_system_dirs(ctx);
    commit_waiting(ctx);
}

/* ---- Unloading ------------------------------------------------------------------ */

/* Devices, filesystems and transports of @p, in reverse registration order. */
static void destroy_registered(floe_context *ctx, const floe_plugin *p) {
    floe__registry *reg = &ctx->reg;
    for (int i = reg->ntransports - 1; i >= 0; i--)
        if (reg->transports[i]->plugin == p && reg->transports[i]->ops.destroy != NULL)
            reg->transports[i]->ops.destroy(reg->transports[i]->ops.state);
    for (int i = reg->nfilesystems - 1; i >= 0; i--)
        if (reg->filesystems[i]->plugin == p && reg->filesystems[i]->ops.destroy != NULL)
            reg->filesystems[i]->ops.destroy(reg->filesystems[i]->ops.state);
    for (int i = reg->ndevices - 1; i >= 0; i--)
        if (reg->devices[i]->plugin == p && reg->devices[i]->ops.destroy != NULL)
            reg->devices[i]->ops.destroy(reg->devices[i]->state);
}

void floe__loader_unload_all(floe_context *ctx) {
    if (ctx == NULL)
        return;
    for (int i = ctx->nplugins - 1; i >= 0; i--) {
        floe_plugin *p = ctx->plugins[i];
        if (p->state != FLOE__PLUGIN_LOADED || !p->inited)
            continue;
        destroy_registered(ctx, p);
        if (p->desc_copy.deinit != NULL)
            p->desc_copy.deinit(p->user);
        p->inited = false;
        p->user = NULL;
        floe__log(ctx, FLOE_LOG_DEBUG, "plugin '%s' deinitialised", p->name);
    }
}
