/*
 * conformance.c - `floe conformance PLUGIN.so`: certifies a third-party plugin.
 *
 * Everything the plugin runs, runs in a forked child, so a crash, a hang or an abort is
 * a line of the report, never the end of it; the parent process never loads the plugin.
 * Children report back over a pipe, one line per record ("TAG\tfield\t..."), flushed as
 * they go, so the parent knows how far a child got before it died and resumes after the
 * case that killed it.
 *
 *   descriptor    the child dlopens the file (RTLD_LOCAL), checks the entry symbol and
 *                 every descriptor field, calls score() and init() with a recording host
 *                 table (memory, errors and tensors are real; registrations are recorded),
 *                 and checks each registration: op definitions, kernels (op, device type,
 *                 type constraints), gradients, devices, filesystems.
 *   loading       a child loads the plugin into a real core next to the plugins of the
 *                 search path (its own copy there denied), which validates the spec
 *                 strings and the conflicts; the registrations must match what init
 *                 registered, every kernel must name a known op.  It sends back each op's
 *                 description (floe_context_describe_op) with and without the plugin.
 *   kernels       for every (op, device type) the plugin has a kernel for, and every dtype
 *                 for which that kernel is the one the core would pick, a child runs the op
 *                 eagerly on generated inputs: matching shapes, rank 0, zero-size,
 *                 broadcasting, mismatched shapes, non-finite values, rank 4.  The reference
 *                 is the same op in a core without the plugin (the in-tree CPU kernels) for
 *                 CPU kernels, and the op on CPU:0 for kernels of other devices.  Results
 *                 must agree (status class, dtype, shape, values within tolerance), an input
 *                 the reference rejects must be rejected, the output shape must agree with
 *                 the op's shape function; with no reference, a kernel must not crash and
 *                 must be deterministic.
 *   devices       for every device the plugin registers, a battery in fresh children:
 *                 alloc/copy round trips from 1 byte to 64 MiB, zero-byte copies, the
 *                 optional members, memory statistics, 8 threads at once, and the error
 *                 paths (an impossible allocation, free(NULL)).
 *
 * The report is text (or --json), one line per check: PASS, FAIL, WARN (conformant but
 * worth fixing, or not exercised) or SKIP; the exit status is 1 when any check failed.
 *
 * Sections: report; children; recording host; descriptor phase; device battery; loading
 * phase; op descriptions; kernel cases; the command.
 */
#include <floe/floe.h>
#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/plugin.h>

#include "conformance-cmd.h"

#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage_conformance[] =
    "usage: floe conformance [--json] [--verbose] [--timeout SECONDS] PLUGIN.so\n"
    "\n"
    "Certifies a plugin: its descriptor and ABI fields, what it registers, every kernel\n"
    "run against the reference kernels (the plugins of the search path without it) on\n"
    "random and edge-case inputs, and for device plugins a battery of memory, copy,\n"
    "concurrency and error-path checks.  Everything the plugin runs, runs in a child\n"
    "process: a crash or hang is reported, not fatal.  Prints a report (text, or JSON\n"
    "with --json) and exits 0 when the plugin conforms, 1 otherwise.\n"
    "\n"
    "  --json             the report as one JSON object\n"
    "  --verbose          every kernel case, not only failures\n"
    "  --timeout SECONDS  limit for each child process (default 120)\n"
    "\n"
    "The reference plugins come from the global options (--plugin-path, --no-system) or\n"
    "the FLOE_PLUGIN_* environment variables, as for every command.\n";

/* ---- Report ---------------------------------------------------------------------------- */

typedef enum verdict { V_PASS, V_FAIL, V_WARN, V_SKIP } verdict;
static const char *const verdict_names[] = {"PASS", "FAIL", "WARN", "SKIP"};

typedef struct check {
    verdict v;
    char *section;
    char *text;
} check;

typedef struct report {
    check *checks;
    int n, cap;
    int counts[4];
} report;

static void rep_add(report *r, verdict v, const char *section, const char *text) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        check *c = realloc(r->checks, (size_t)cap * sizeof(*c));
        if (c == NULL) {
            fprintf(stderr, "floe conformance: out of memory\n");
            exit(EXIT_RUNTIME);
        }
        r->checks = c;
        r->cap = cap;
    }
    r->checks[r->n].v = v;
    r->checks[r->n].section = strdup(section);
    r->checks[r->n].text = strdup(text);
    if (r->checks[r->n].section == NULL || r->checks[r->n].text == NULL) {
        fprintf(stderr, "floe conformance: out of memory\n");
        exit(EXIT_RUNTIME);
    }
    r->n++;
    r->counts[v]++;
}

static void rep_addf(report *r, verdict v, const char *section, const char *fmt, ...)
    FLOE_PRINTF(4, 5);
static void rep_addf(report *r, verdict v, const char *section, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    rep_add(r, v, section, text);
}

static void rep_free(report *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->checks[i].section);
        free(r->checks[i].text);
    }
    free(r->checks);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ---- Children ------------------------------------------------------------------------ */

/* A child writes records to this descriptor (dprintf: unbuffered, so nothing is lost when
 * it dies); fields are cleaned of tabs and newlines by clean(). */
static int out_fd = -1;

static void clean(char *s) {
    for (; *s; s++)
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
}

/* A check line from a child: C <verdict> <section> <text>. */
static void emit(verdict v, const char *section, const char *fmt, ...) FLOE_PRINTF(3, 4);
static void emit(verdict v, const char *section, const char *fmt, ...) {
    char text[1024], sec[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(sec, sizeof(sec), "%s", section);
    clean(text);
    clean(sec);
    dprintf(out_fd, "C\t%s\t%s\t%s\n", verdict_names[v], sec, text);
}

typedef struct child_out {
    char *buf;
    size_t len;
    int signal;       /* the signal that ended it, 0 if it exited */
    int code;         /* its exit status when it exited */
} child_out;

static int child_timeout = 120;

/* Runs @fn(@arg) in a child with its stdout on our stderr (plugins that print must not
 * corrupt the report) and collects what it writes to out_fd. */
static int run_child(void (*fn)(void *arg), void *arg, child_out *co) {
    int fds[2];
    pid_t pid;
    int status = 0;

    memset(co, 0, sizeof(*co));
    fflush(NULL);
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        out_fd = fds[1];
        dup2(STDERR_FILENO, STDOUT_FILENO);
        signal(SIGPIPE, SIG_DFL);
        alarm((unsigned)child_timeout);
        fn(arg);
        _exit(0); /* no atexit handlers or leak checks of a half-torn-down plugin */
    }
    close(fds[1]);
    size_t cap = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fds[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (co->len + (size_t)n + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            while (ncap < co->len + (size_t)n + 1)
                ncap *= 2;
            char *nb = realloc(co->buf, ncap);
            if (nb == NULL)
                break;
            co->buf = nb;
            cap = ncap;
        }
        memcpy(co->buf + co->len, tmp, (size_t)n);
        co->len += (size_t)n;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (co->buf == NULL)
        co->buf = calloc(1, 1);
    else
        co->buf[co->len] = '\0';
    if (co->buf == NULL)
        return -1;
    if (WIFSIGNALED(status))
        co->signal = WTERMSIG(status);
    else
        co->code = WEXITSTATUS(status);
    return 0;
}

/* "crashed with SIGSEGV", "timed out after 120 s", "exited with status 3". */
static void describe_death(const child_out *co, char *buf, size_t len) {
    if (co->signal == SIGALRM)
        snprintf(buf, len, "hung: killed after %d s", child_timeout);
    else if (co->signal != 0)
        snprintf(buf, len, "crashed with signal %d (%s)", co->signal, strsignal(co->signal));
    else
        snprintf(buf, len, "exited with status %d", co->code);
}

static int child_died(const child_out *co) {
    return co->signal != 0 || co->code != 0;
}

/* Splits @line at tabs in place; returns the number of fields (at most @max). */
static int split(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

/* Adds the C lines of @co to the report; calls @other for the rest. */
static void collect(report *r, child_out *co, void (*other)(char **f, int n, void *arg),
                    void *arg) {
    char *save = NULL;
    for (char *line = strtok_r(co->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[8];
        int n = split(line, f, 8);
        if (strcmp(f[0], "C") == 0 && n == 4) {
            verdict v = V_FAIL;
            for (int i = 0; i < 4; i++)
                if (strcmp(f[1], verdict_names[i]) == 0)
                    v = (verdict)i;
            rep_add(r, v, f[2], f[3]);
        } else if (other != NULL) {
            other(f, n, arg);
        }
    }
}

/* ---- The plugin under test ------------------------------------------------------------- */

#define MAX_REC 4096

typedef struct kernel_rec {
    char *op;
    char *device;
    int32_t priority;
} kernel_rec;

typedef struct plugin_ut {
    const char *path;
    char name[128];               /* from the file name */
    const char *search_path;      /* the reference plugins (NULL: FLOE_PLUGIN_PATH) */
    int no_system;
    /* Filled from the descriptor child. */
    char *ops[MAX_REC];
    int nops;
    kernel_rec kernels[MAX_REC];
    int nkernels;
    char *grads[MAX_REC];
    int ngrads;
    int ndevices, nfilesystems, ntransports;
    int init_ok;
    int loaded;                   /* by the real core */
} plugin_ut;

/* Derives the plugin name from the file name as the loader does. */
static int name_from_path(const char *path, char *name, size_t len) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "libfloe_", 8) == 0)
        base += 8;
    else if (strncmp(base, "floe_", 5) == 0)
        base += 5;
    else if (strncmp(base, "lib", 3) == 0)
        base += 3;
    size_t n = strlen(base);
    if (n < 4 || strcmp(base + n - 3, ".so") != 0 || n - 3 >= len)
        return -1;
    memcpy(name, base, n - 3);
    name[n - 3] = '\0';
    return 0;
}

/* ---- Recording host ------------------------------------------------------------------ */

/* What init() registered, in the child. */
typedef struct rec_state {
    floe_device_desc devices[64];
    int ndevices;
    floe_fs_ops fs_copy[64];      /* copied, as the core does: the caller's may be temporary */
    const floe_fs_ops *fs[64];    /* &fs_copy[i], NULL when too small to copy */
    int nfs;
    int nops, nkernels, ngrads, ntransports;
    char note[512];
    int report_records;           /* write O/K/G lines (the descriptor child only) */
} rec_state;

static rec_state rec;
static __thread char rec_msg[1024];
static __thread int rec_msg_set;

static void *rec_alloc(size_t nbytes, size_t align) {
    void *p = NULL;
    if (align == 0)
        align = 64;
    if ((align & (align - 1)) != 0 || align < sizeof(void *))
        align = align < sizeof(void *) && (align & (align - 1)) == 0 ? sizeof(void *) : 0;
    /* No machine has 16 TiB to give: refuse before the allocator (sanitizers abort on
     * absurd sizes instead of returning NULL, as the core's allocator does too). */
    if (align == 0 || nbytes > ((size_t)1 << 44))
        return NULL;
    if (posix_memalign(&p, align, nbytes ? nbytes : 1) != 0)
        return NULL;
    return p;
}

static void rec_free(void *p) {
    free(p);
}

static floe_status rec_vfail(floe_status code, const char *fmt, va_list ap) {
    if (fmt != NULL)
        vsnprintf(rec_msg, sizeof(rec_msg), fmt, ap);
    else
        snprintf(rec_msg, sizeof(rec_msg), "(no message)");
    rec_msg_set = 1;
    return code;
}

static floe_status rec_fail(floe_status code, const char *fmt, ...) FLOE_PRINTF(2, 3);
static floe_status rec_fail(floe_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rec_vfail(code, fmt, ap);
    va_end(ap);
    return code;
}

static void rec_log(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...)
    FLOE_PRINTF(3, 4);
static void rec_log(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...) {
    va_list ap;
    (void)self;
    if (level < FLOE_PLUGIN_LOG_WARNING)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "plugin log: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void rec_set_note(floe_plugin *self, const char *fmt, ...) FLOE_PRINTF(2, 3);
static void rec_set_note(floe_plugin *self, const char *fmt, ...) {
    va_list ap;
    (void)self;
    va_start(ap, fmt);
    vsnprintf(rec.note, sizeof(rec.note), fmt, ap);
    va_end(ap);
}

static int valid_op_name(const char *s) {
    if (s == NULL || !isupper((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static int valid_device_type(const char *s) {
    if (s == NULL || !isupper((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isupper((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* Checks a type constraint "T: {f32, f64}" or a named set; returns 0 with @why set. */
static int valid_constraint(const char *c, char *why, size_t len) {
    const char *colon = strchr(c, ':');
    if (colon == NULL || colon == c) {
        snprintf(why, len, "'%s' is not 'ATTR: {types}'", c);
        return 0;
    }
    const char *p = colon + 1;
    while (*p == ' ')
        p++;
    if (*p != '{') {
        static const char *const sets[] = {"numbertype", "realnumbertype", "floattype",
                                           "inttype", "alltypes"};
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
            if (strcmp(p, sets[i]) == 0)
                return 1;
        snprintf(why, len, "'%s': unknown type set '%s'", c, p);
        return 0;
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", p + 1);
    char *end = strchr(buf, '}');
    if (end == NULL) {
        snprintf(why, len, "'%s': no closing brace", c);
        return 0;
    }
    *end = '\0';
    char *save = NULL;
    int ntypes = 0;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (floe_dtype_from_name(t) == FLOE_DTYPE_INVALID) {
            snprintf(why, len, "'%s': unknown dtype '%s'", c, t);
            return 0;
        }
        ntypes++;
    }
    if (ntypes == 0) {
        snprintf(why, len, "'%s': empty type set", c);
        return 0;
    }
    return 1;
}

static floe_status rec_register_op(floe_plugin *self, const floe_op_def *def) {
    (void)self;
    rec.nops++;
    if (def == NULL)
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_op: NULL definition");
    if (def->struct_size < offsetof(floe_op_def, doc) + sizeof(def->doc) ||
        def->struct_size > 4096) {
        if (rec.report_records)
            emit(V_FAIL, "registration", "op definition has struct_size %zu (expected %zu)",
                 def->struct_size, sizeof(floe_op_def));
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_op: bad struct_size");
    }
    if (rec.report_records) {
        if (!valid_op_name(def->name))
            emit(V_FAIL, "registration", "op name '%s' is not [A-Z][A-Za-z0-9_]*",
                 def->name ? def->name : "(NULL)");
        else
            dprintf(out_fd, "O\t%s\n", def->name);
        if (def->outputs == NULL)
            emit(V_WARN, "registration", "op %s has no outputs", def->name ? def->name : "?");
        if (def->doc == NULL || def->doc[0] == '\0')
            emit(V_WARN, "registration", "op %s has no doc string (floe ops %s shows it)",
                 def->name ? def->name : "?", def->name ? def->name : "?");
        if (def->shape_fn == NULL)
            emit(V_WARN, "registration",
                 "op %s has no shape function: its outputs have unknown shapes",
                 def->name ? def->name : "?");
    }
    return FLOE_OK;
}

static floe_status rec_register_kernel(floe_plugin *self, const floe_kernel_def *def) {
    (void)self;
    rec.nkernels++;
    if (def == NULL)
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_kernel: NULL definition");
    if (def->struct_size < offsetof(floe_kernel_def, host_memory) + sizeof(def->host_memory) ||
        def->struct_size > 4096) {
        if (rec.report_records)
            emit(V_FAIL, "registration", "kernel definition has struct_size %zu (expected %zu)",
                 def->struct_size, sizeof(floe_kernel_def));
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_kernel: bad struct_size");
    }
    if (!rec.report_records)
        return FLOE_OK;
    const char *op = def->op ? def->op : "(NULL)";
    if (!valid_op_name(def->op))
        emit(V_FAIL, "registration", "kernel for op '%s': not a valid op name", op);
    if (!valid_device_type(def->device_type))
        emit(V_FAIL, "registration", "kernel for %s: device type '%s' is not [A-Z][A-Z0-9_]*",
             op, def->device_type ? def->device_type : "(NULL)");
    if (def->compute == NULL)
        emit(V_FAIL, "registration", "kernel for %s on %s has no compute function", op,
             def->device_type ? def->device_type : "?");
    for (int i = 0; def->constraints != NULL && def->constraints[i] != NULL && i < 64; i++) {
        char why[512];
        if (!valid_constraint(def->constraints[i], why, sizeof(why)))
            emit(V_FAIL, "registration", "kernel for %s: type constraint %s", op, why);
    }
    if (valid_op_name(def->op) && valid_device_type(def->device_type))
        dprintf(out_fd, "K\t%s\t%s\t%d\n", def->op, def->device_type, (int)def->priority);
    return FLOE_OK;
}

static floe_status rec_register_gradient(floe_plugin *self, const char *op, floe_grad_fn fn) {
    (void)self;
    rec.ngrads++;
    if (rec.report_records) {
        if (!valid_op_name(op) || fn == NULL)
            emit(V_FAIL, "registration", "gradient for '%s': %s", op ? op : "(NULL)",
                 fn == NULL ? "NULL function" : "not a valid op name");
        else
            dprintf(out_fd, "G\t%s\n", op);
    }
    return FLOE_OK;
}

static floe_status rec_register_device(floe_plugin *self, const floe_device_desc *desc) {
    (void)self;
    if (desc == NULL)
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_device: NULL descriptor");
    if (rec.ndevices == 64)
        return rec_fail(FLOE_RESOURCE_EXHAUSTED, "register_device: more than 64 devices");
    floe_device_desc *d = &rec.devices[rec.ndevices++];
    memset(d, 0, sizeof(*d));
    memcpy(d, desc, desc->struct_size < sizeof(*d) ? desc->struct_size : sizeof(*d));
    return FLOE_OK;
}

static floe_status rec_register_filesystem(floe_plugin *self, const floe_fs_ops *ops) {
    (void)self;
    if (ops == NULL)
        return rec_fail(FLOE_INVALID_ARGUMENT, "register_filesystem: NULL ops");
    if (rec.nfs < 64) {
        floe_fs_ops *c = &rec.fs_copy[rec.nfs];
        memset(c, 0, sizeof(*c));
        if (ops->struct_size >= offsetof(floe_fs_ops, destroy) && ops->struct_size <= 65536) {
            memcpy(c, ops, ops->struct_size < sizeof(*c) ? ops->struct_size : sizeof(*c));
            rec.fs[rec.nfs] = c;
        } else {
            rec.fs[rec.nfs] = NULL;
        }
    }
    rec.nfs++;
    return FLOE_OK;
}

static floe_status rec_register_transport(floe_plugin *self, const floe_transport_ops *ops) {
    (void)self;
    (void)ops;
    rec.ntransports++;
    return FLOE_OK;
}

static void pool_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                              void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
    (void)pool;
    (void)grain;
    if (n > 0)
        fn(arg, 0, n);
}

static int pool_size(const floe_threadpool *pool) {
    (void)pool;
    return 1;
}

/*
 * The table handed to init() in the children that do not use a real core.  Memory, errors,
 * logging, dtypes, tensors and attribute sets are real (libfloe's public functions of the
 * same signatures); registrations are recorded; the members that only make sense inside a
 * kernel, a shape function or a gradient are NULL: calling them from init() is a bug that
 * shows as a crash in the report.
 */
static floe_host rec_host;

static void rec_host_init(void) {
    memset(&rec_host, 0, sizeof(rec_host));
    rec_host.abi_major = FLOE_PLUGIN_ABI_MAJOR;
    rec_host.abi_minor = FLOE_PLUGIN_ABI_MINOR;
    rec_host.struct_size = sizeof(rec_host);
    rec_host.alloc = rec_alloc;
    rec_host.free = rec_free;
    rec_host.fail = rec_fail;
    rec_host.vfail = rec_vfail;
    rec_host.log = rec_log;
    rec_host.set_note = rec_set_note;
    rec_host.register_op = rec_register_op;
    rec_host.register_kernel = rec_register_kernel;
    rec_host.register_gradient = rec_register_gradient;
    rec_host.register_device = rec_register_device;
    rec_host.register_filesystem = rec_register_filesystem;
    rec_host.register_transport = rec_register_transport;
    rec_host.dtype_size = floe_dtype_size;
    rec_host.dtype_name = floe_dtype_name;
    rec_host.tensor_new = floe_tensor_new;
    rec_host.tensor_ref = floe_tensor_ref;
    rec_host.tensor_unref = floe_tensor_unref;
    rec_host.tensor_dtype = floe_tensor_dtype;
    rec_host.tensor_ndim = floe_tensor_ndim;
    rec_host.tensor_dim = floe_tensor_dim;
    rec_host.tensor_shape = floe_tensor_shape;
    rec_host.tensor_num_elements = floe_tensor_num_elements;
    rec_host.tensor_nbytes = floe_tensor_nbytes;
    rec_host.tensor_data = floe_tensor_data;
    rec_host.tensor_device = floe_tensor_device;
    rec_host.tensor_set_string = floe_tensor_set_string;
    rec_host.tensor_get_string = floe_tensor_get_string;
    rec_host.attrs_type = floe_attrs_type;
    rec_host.attrs_get_int = floe_attrs_get_int;
    rec_host.attrs_get_float = floe_attrs_get_float;
    rec_host.attrs_get_bool = floe_attrs_get_bool;
    rec_host.attrs_get_string = floe_attrs_get_string;
    rec_host.attrs_get_type = floe_attrs_get_type;
    rec_host.attrs_get_shape = floe_attrs_get_shape;
    rec_host.attrs_get_tensor = floe_attrs_get_tensor;
    rec_host.attrs_get_int_list = floe_attrs_get_int_list;
    rec_host.attrs_get_float_list = floe_attrs_get_float_list;
    rec_host.attrs_get_type_list = floe_attrs_get_type_list;
    rec_host.parallel_for = pool_parallel_for;
    rec_host.threadpool_size = pool_size;
    rec_host.tensor_reshape = floe_tensor_reshape;
    rec_host.attrs_new = floe_attrs_new;
    rec_host.attrs_free = floe_attrs_free;
    rec_host.attrs_set_int = floe_attrs_set_int;
    rec_host.attrs_set_float = floe_attrs_set_float;
    rec_host.attrs_set_bool = floe_attrs_set_bool;
    rec_host.attrs_set_type = floe_attrs_set_type;
    rec_host.attrs_set_string = floe_attrs_set_string;
    rec_host.attrs_set_shape = floe_attrs_set_shape;
    rec_host.attrs_set_int_list = floe_attrs_set_int_list;
    rec_host.attrs_set_tensor = floe_attrs_set_tensor;
}

/* ---- Descriptor phase (child) ------------------------------------------------------ */

/* The minimal descriptor: everything up to init (deinit came with minor 0 but is
 * optional, and fx_old_minor-style plugins end at init). */
#define DESC_MIN_SIZE (offsetof(floe_plugin_desc, init) + sizeof(void *))

static struct {
    void *handle;
    const floe_plugin_desc *desc;
    void *user;
    int inited;
} ut;

static const char *str_or(const char *s, const char *dflt) {
    return s != NULL ? s : dflt;
}

static int desc_has_deinit(const floe_plugin_desc *d) {
    return d->struct_size >= offsetof(floe_plugin_desc, deinit) + sizeof(d->deinit) &&
           d->deinit != NULL;
}

/* Reads the ELF file's dynamic symbols and DT_NEEDED entries (no plugin code runs):
 * the plugin must export only its entry symbol and must not link libfloe.  The file is
 * untrusted: every offset is checked against its size. */
static void check_elf(const char *path, const char *entry) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < (long)sizeof(Elf64_Ehdr) ||
        size > (1L << 30) || fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)size)) == NULL ||
        fread(buf, 1, (size_t)size, f) != (size_t)size) {
        emit(V_WARN, "descriptor", "cannot read %s to check its symbols", path);
        goto done;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > (uint64_t)size ||
        eh->e_shnum > ((uint64_t)size - eh->e_shoff) / sizeof(Elf64_Shdr)) {
        emit(V_WARN, "descriptor", "not a 64-bit ELF file with section headers: symbols not checked");
        goto done;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(buf + eh->e_shoff);
    char extra[512] = "", needed_floe[128] = "";
    int nextra = 0, found_entry = 0;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM && sh[i].sh_type != SHT_DYNAMIC)
            continue;
        if (sh[i].sh_link >= eh->e_shnum || sh[i].sh_offset > (uint64_t)size ||
            sh[i].sh_size > (uint64_t)size - sh[i].sh_offset)
            continue;
        const Elf64_Shdr *st = &sh[sh[i].sh_link];
        if (st->sh_offset > (uint64_t)size || st->sh_size > (uint64_t)size - st->sh_offset)
            continue;
        const char *strs = (const char *)buf + st->sh_offset;
        uint64_t nstr = st->sh_size;
        if (sh[i].sh_type == SHT_DYNSYM) {
            const Elf64_Sym *sym = (const Elf64_Sym *)(buf + sh[i].sh_offset);
            uint64_t n = sh[i].sh_size / sizeof(Elf64_Sym);
            for (uint64_t k = 0; k < n; k++) {
                int bind = ELF64_ST_BIND(sym[k].st_info), type = ELF64_ST_TYPE(sym[k].st_info);
                if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= nstr ||
                    (bind != STB_GLOBAL && bind != STB_WEAK) ||
                    (type != STT_FUNC && type != STT_OBJECT) ||
                    ELF64_ST_VISIBILITY(sym[k].st_other) != STV_DEFAULT)
                    continue;
                const char *name = strs + sym[k].st_name;
                if (memchr(name, '\0', nstr - sym[k].st_name) == NULL || name[0] == '_')
                    continue;
                if (strcmp(name, entry) == 0) {
                    found_entry = 1;
                } else if (nextra++ < 8) {
                    size_t len = strlen(extra);
                    snprintf(extra + len, sizeof(extra) - len, "%s%.60s", len ? ", " : "", name);
                }
            }
        } else {
            const Elf64_Dyn *dyn = (const Elf64_Dyn *)(buf + sh[i].sh_offset);
            uint64_t n = sh[i].sh_size / sizeof(Elf64_Dyn);
            for (uint64_t k = 0; k < n && dyn[k].d_tag != DT_NULL; k++) {
                if (dyn[k].d_tag != DT_NEEDED || dyn[k].d_un.d_val >= nstr)
                    continue;
                const char *lib = strs + dyn[k].d_un.d_val;
                if (memchr(lib, '\0', nstr - dyn[k].d_un.d_val) != NULL &&
                    strncmp(lib, "libfloe.so", 10) == 0)
                    snprintf(needed_floe, sizeof(needed_floe), "%.100s", lib);
            }
        }
    }
    if (needed_floe[0] != '\0')
        emit(V_FAIL, "descriptor", "links %s: a plugin reaches the core only through the host "
             "table (build with pkg-config floe-plugin, never floe)", needed_floe);
    else
        emit(V_PASS, "descriptor", "does not link libfloe");
    if (nextra > 0)
        emit(V_WARN, "descriptor", "exports %d symbol(s) besides %s: %s%s (build with "
             "-fvisibility=hidden: they can collide with other plugins' or the host's)",
             nextra, entry, extra, nextra > 8 ? ", ..." : "");
    else if (found_entry)
        emit(V_PASS, "descriptor", "exports only %s", entry);
done:
    free(buf);
    if (f != NULL)
        fclose(f);
}

/* Opens the plugin and reads its descriptor; with @report, emits the checks.  Returns 0
 * when init() may be called. */
static int open_plugin(const plugin_ut *p, int loud) {
    char sym[256];
    const char *base = strrchr(p->path, '/');

    base = base ? base + 1 : p->path;
    ut.handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (ut.handle == NULL) {
        if (loud)
            emit(V_FAIL, "descriptor", "dlopen failed: %s", dlerror());
        return -1;
    }
    if (loud) {
        if (strncmp(base, "floe_", 5) != 0)
            emit(V_WARN, "descriptor",
                 "file name %s: plugins are installed as floe_<name>.so", base);
        else
            emit(V_PASS, "descriptor", "file name %s", base);
    }
    snprintf(sym, sizeof(sym), "floe_plugin_%s_get_desc", p->name);
    const floe_plugin_desc *(*get)(void) =
        (const floe_plugin_desc *(*)(void))(uintptr_t)dlsym(ut.handle, sym);
    if (get == NULL) {
        if (loud)
            emit(V_FAIL, "descriptor", "entry symbol %s not found: the symbol must be named "
                 "after the file (floe_<name>.so exports floe_plugin_<name>_get_desc)", sym);
        return -1;
    }
    ut.desc = get();
    if (ut.desc == NULL) {
        if (loud)
            emit(V_FAIL, "descriptor", "%s returned NULL", sym);
        return -1;
    }
    if (!loud)
        return ut.desc->init != NULL ? 0 : -1;
    emit(V_PASS, "descriptor", "entry symbol %s", sym);
    check_elf(p->path, sym);
    if (get() != ut.desc)
        emit(V_WARN, "descriptor", "%s returns a different pointer on each call: it should "
             "return static data and run no other code", sym);

    const floe_plugin_desc *d = ut.desc;
    int ok = 1;
    if (d->abi_major != FLOE_PLUGIN_ABI_MAJOR) {
        emit(V_FAIL, "descriptor", "built for plugin ABI %u.%u, this core loads %d.x",
             d->abi_major, d->abi_minor, FLOE_PLUGIN_ABI_MAJOR);
        return -1;
    }
    if (d->abi_minor > FLOE_PLUGIN_ABI_MINOR) {
        emit(V_FAIL, "descriptor",
             "built for plugin ABI %u.%u, newer than this core's %d.%d: rebuild against "
             "the oldest Floe you support",
             d->abi_major, d->abi_minor, FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR);
        return -1;
    }
    emit(V_PASS, "descriptor", "plugin ABI %u.%u (this core: %d.%d)", d->abi_major, d->abi_minor,
         FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR);
    if (d->struct_size < DESC_MIN_SIZE || d->struct_size > 65536) {
        emit(V_FAIL, "descriptor", "struct_size %zu is impossible (minor 0 needs >= %zu)",
             d->struct_size, (size_t)DESC_MIN_SIZE);
        return -1;
    }
    if (d->abi_minor == FLOE_PLUGIN_ABI_MINOR && d->struct_size != sizeof(floe_plugin_desc))
        emit(V_WARN, "descriptor", "struct_size %zu differs from sizeof(floe_plugin_desc) %zu "
             "at the same ABI minor", d->struct_size, sizeof(floe_plugin_desc));
    else
        emit(V_PASS, "descriptor", "struct_size %zu", d->struct_size);

    if (d->name == NULL || strcmp(d->name, p->name) != 0) {
        emit(V_FAIL, "descriptor", "name '%s' differs from the file's '%s'",
             str_or(d->name, "(NULL)"), p->name);
        ok = 0;
    } else {
        int good = d->name[0] != '\0';
        for (const char *c = d->name; *c; c++)
            good &= islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_';
        if (good)
            emit(V_PASS, "descriptor", "name %s", d->name);
        else {
            emit(V_FAIL, "descriptor", "name '%s' is not [a-z0-9_]+", d->name);
            ok = 0;
        }
    }
    if (d->version == NULL || d->version[0] == '\0') {
        emit(V_FAIL, "descriptor", "version is missing");
        ok = 0;
    } else {
        unsigned a, b, c;
        char rest;
        if (sscanf(d->version, "%u.%u.%u%c", &a, &b, &c, &rest) == 3)
            emit(V_PASS, "descriptor", "version %s", d->version);
        else
            emit(V_WARN, "descriptor", "version '%s' is not MAJOR.MINOR.PATCH", d->version);
    }
    if (d->vendor == NULL || d->vendor[0] == '\0') {
        emit(V_FAIL, "descriptor", "vendor is missing (required)");
        ok = 0;
    } else {
        emit(V_PASS, "descriptor", "vendor %s", d->vendor);
    }
    if (d->license == NULL || d->license[0] == '\0') {
        emit(V_FAIL, "descriptor", "license is missing (required: an SPDX expression)");
        ok = 0;
    } else {
        int spdx = 1;
        for (const char *c = d->license; *c; c++)
            spdx &= isalnum((unsigned char)*c) || strchr(".-+ ()", *c) != NULL;
        if (spdx)
            emit(V_PASS, "descriptor", "license %s", d->license);
        else
            emit(V_WARN, "descriptor", "license '%s' does not look like an SPDX expression",
                 d->license);
    }
    if (d->description == NULL || d->description[0] == '\0')
        emit(V_WARN, "descriptor", "no description (shown by `floe plugins`)");
    if (d->requires_cpu != NULL)
        emit(V_PASS, "descriptor", "requires CPU features: %s", d->requires_cpu);
    if (d->init == NULL) {
        emit(V_FAIL, "descriptor", "init is NULL (required)");
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Calls score() and init() with the recording host.  Returns 0 when init() succeeded. */
static int init_plugin(int loud) {
    const floe_plugin_desc *d = ut.desc;
    floe_plugin *self = (floe_plugin *)(void *)&rec; /* opaque to the plugin */
    floe_status st;

    rec_host_init();
    if (d->score != NULL) {
        int s = d->score(self, &rec_host);
        if (s <= 0) {
            if (loud)
                emit(V_SKIP, "registration",
                     "score() is %d: the plugin says it cannot run here (%s); nothing "
                     "further can be checked on this machine", s,
                     rec.note[0] ? rec.note : "no note given");
            return -1;
        }
        if (loud)
            emit(V_PASS, "registration", "score() %d", s);
    }
    rec_msg_set = 0;
    rec.report_records = loud;
    st = d->init(self, &rec_host, &ut.user);
    rec.report_records = 0;
    if (st != FLOE_OK) {
        if (loud)
            emit(V_FAIL, "registration", "init() failed: %s: %s", floe_status_str(st),
                 rec_msg_set ? rec_msg : "(no message set with host->fail)");
        return -1;
    }
    ut.inited = 1;
    if (loud)
        emit(V_PASS, "registration", "init() registered %d ops, %d kernels, %d gradients, "
             "%d devices, %d filesystems, %d transports", rec.nops, rec.nkernels, rec.ngrads,
             rec.ndevices, rec.nfs, rec.ntransports);
    return 0;
}

/* Destroys what init() made, as the core does at floe_context_free(). */
static void fini_plugin(void) {
    if (!ut.inited)
        return;
    for (int i = rec.ndevices - 1; i >= 0; i--)
        if (rec.devices[i].ops != NULL && rec.devices[i].ops->destroy != NULL)
            rec.devices[i].ops->destroy(rec.devices[i].state);
    for (int i = rec.nfs - 1; i >= 0 && i < 64; i--)
        if (rec.fs[i] != NULL && rec.fs[i]->destroy != NULL)
            rec.fs[i]->destroy(rec.fs[i]->state);
    if (desc_has_deinit(ut.desc))
        ut.desc->deinit(ut.user);
    ut.inited = 0;
}

static void check_device_desc(int i) {
    const floe_device_desc *d = &rec.devices[i];
    const floe_device_ops *o = d->ops;
    char sec[64];

    snprintf(sec, sizeof(sec), "device %s:%d", str_or(d->type, "?"), (int)d->index);
    if (!valid_device_type(d->type))
        emit(V_FAIL, sec, "device type '%s' is not [A-Z][A-Z0-9_]*", str_or(d->type, "(NULL)"));
    if (o == NULL) {
        emit(V_FAIL, sec, "no ops table");
        return;
    }
    if (o->abi_major != FLOE_PLUGIN_ABI_MAJOR || o->abi_minor > FLOE_PLUGIN_ABI_MINOR ||
        o->struct_size < offsetof(floe_device_ops, destroy) + sizeof(o->destroy))
        emit(V_FAIL, sec, "ops table: ABI %u.%u, struct_size %zu (expected %d.<=%d, >= %zu)",
             o->abi_major, o->abi_minor, o->struct_size, FLOE_PLUGIN_ABI_MAJOR,
             FLOE_PLUGIN_ABI_MINOR, offsetof(floe_device_ops, destroy) + sizeof(o->destroy));
    else
        emit(V_PASS, sec, "ops table ABI %u.%u, struct_size %zu", o->abi_major, o->abi_minor,
             o->struct_size);
    const char *missing = o->alloc == NULL ? "alloc" : o->free == NULL ? "free"
                          : o->copy_to_device == NULL ? "copy_to_device"
                          : o->copy_from_device == NULL ? "copy_from_device"
                          : o->copy_on_device == NULL ? "copy_on_device"
                          : o->synchronize == NULL ? "synchronize" : NULL;
    if (missing != NULL)
        emit(V_FAIL, sec, "required member %s is NULL", missing);
    else
        emit(V_PASS, sec, "required members present; optional: copy_peer %s, proc_address %s, "
             "memory_stats %s, destroy %s", o->copy_peer ? "yes" : "no",
             o->proc_address ? "yes" : "no", o->memory_stats ? "yes" : "no",
             o->destroy ? "yes" : "no");
    if (d->description == NULL || d->description[0] == '\0')
        emit(V_WARN, sec, "no description");
}

static void check_fs(int i) {
    const floe_fs_ops *o = rec.fs[i];
    char sec[64];
    snprintf(sec, sizeof(sec), "filesystem %d", i);
    if (o == NULL || o->struct_size < offsetof(floe_fs_ops, destroy)) {
        emit(V_FAIL, sec, "ops table missing or too small");
        return;
    }
    snprintf(sec, sizeof(sec), "filesystem %s://", str_or(o->scheme, "?"));
    int good = o->scheme != NULL && o->scheme[0] != '\0';
    for (const char *c = o->scheme; good && *c; c++)
        good = islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '+' ||
               *c == '-' || *c == '.';
    if (!good)
        emit(V_FAIL, sec, "scheme '%s' is not lower case without '://'",
             str_or(o->scheme, "(NULL)"));
    if (!o->open_read || !o->pread || !o->close_read || !o->open_write || !o->write ||
        !o->close_write || !o->stat || !o->list || !o->remove || !o->mkdir || !o->rename)
        emit(V_FAIL, sec, "a required member is NULL");
    else if (good)
        emit(V_PASS, sec, "ops table complete (ABI %u.%u)", o->abi_major, o->abi_minor);
}

static void descriptor_child(void *arg) {
    plugin_ut *p = arg;

    if (open_plugin(p, 1) != 0)
        return;
    dprintf(out_fd, "P\topened\n");
    if (init_plugin(1) != 0)
        return;
    dprintf(out_fd, "P\tinit\n");
    for (int i = 0; i < rec.ndevices; i++) {
        char type[64];
        snprintf(type, sizeof(type), "%s", str_or(rec.devices[i].type, "?"));
        clean(type); /* the type is the plugin's string: keep the record one line */
        dprintf(out_fd, "V\t%s\t%d\n", type, (int)rec.devices[i].index);
        check_device_desc(i);
    }
    for (int i = 0; i < rec.nfs && i < 64; i++)
        check_fs(i);
    dprintf(out_fd, "N\t%d\t%d\n", rec.nfs, rec.ntransports);
    dprintf(out_fd, "P\tteardown\n");
    fini_plugin();
    dprintf(out_fd, "P\tdone\n");
}

/* ---- Device battery (children) --------------------------------------------------- */

typedef struct dev_job {
    plugin_ut *p;
    int device;   /* index among the registered devices */
    int test;     /* DT_* */
} dev_job;

enum { DT_ROUNDTRIP, DT_LARGE, DT_ZERO, DT_OPTIONAL, DT_THREADS, DT_ERRORS, DT_COUNT };
static const char *const dev_test_names[DT_COUNT] = {
    "alloc/copy round trips", "large buffer", "zero-byte copies", "optional members",
    "concurrent use", "error paths"};

/* One round trip of @n bytes: host -> dev -> dev -> host, compared.  0 on success. */
static int roundtrip(const floe_device_desc *d, size_t n, unsigned seed, char *why, size_t len) {
    const floe_device_ops *o = d->ops;
    void *a = NULL, *b = NULL;
    unsigned char *src = malloc(n), *dst = malloc(n);
    floe_status st;
    int rc = -1;

    if (src == NULL || dst == NULL) {
        snprintf(why, len, "test harness out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
    memset(dst, 0xA5, n);
    rec_msg_set = 0;
    if ((st = o->alloc(d->state, n, &a)) != FLOE_OK || a == NULL) {
        snprintf(why, len, "alloc(%zu) failed: %s: %.200s", n, floe_status_str(st),
                 rec_msg_set ? rec_msg : "no message");
        goto done;
    }
    int misaligned = ((uintptr_t)a & 63u) != 0; /* reported after the contents */
    if ((st = o->alloc(d->state, n, &b)) != FLOE_OK || b == NULL) {
        snprintf(why, len, "second alloc(%zu) failed: %s", n, floe_status_str(st));
        goto done;
    }
    if (a == b) {
        snprintf(why, len, "two live allocations of %zu bytes share address %p", n, a);
        b = NULL;
        goto done;
    }
    if ((st = o->copy_to_device(d->state, a, src, n)) != FLOE_OK) {
        snprintf(why, len, "copy_to_device(%zu) failed: %s", n, floe_status_str(st));
        goto done;
    }
    if ((st = o->copy_on_device(d->state, b, a, n)) != FLOE_OK) {
        snprintf(why, len, "copy_on_device(%zu) failed: %s", n, floe_status_str(st));
        goto done;
    }
    if ((st = o->copy_from_device(d->state, dst, b, n)) != FLOE_OK) {
        snprintf(why, len, "copy_from_device(%zu) failed: %s", n, floe_status_str(st));
        goto done;
    }
    if ((st = o->synchronize(d->state)) != FLOE_OK) {
        snprintf(why, len, "synchronize failed: %s", floe_status_str(st));
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (dst[i] != src[i]) {
            snprintf(why, len, "%zu-byte round trip differs at byte %zu (0x%02x, expected "
                     "0x%02x)%s", n, i, dst[i], src[i],
                     misaligned ? "; alloc is not 64-byte aligned either" : "");
            goto done;
        }
    if (misaligned) {
        snprintf(why, len, "alloc(%zu) returned %p, not 64-byte aligned", n, a);
        goto done;
    }
    rc = 0;
done:
    if (a != NULL)
        o->free(d->state, a, n);
    if (b != NULL)
        o->free(d->state, b, n);
    free(src);
    free(dst);
    return rc;
}

typedef struct thread_arg {
    const floe_device_desc *d;
    int id;
    int failed;
    char why[256];
} thread_arg;

static void *thread_main(void *arg) {
    thread_arg *t = arg;
    for (int i = 0; i < 50 && !t->failed; i++) {
        size_t n = (size_t)(1 + ((t->id * 7919 + i * 104729) % 65536));
        if (roundtrip(t->d, n, (unsigned)(t->id * 1000 + i), t->why, sizeof(t->why)) != 0)
            t->failed = 1;
    }
    return NULL;
}

static void device_child(void *arg) {
    dev_job *j = arg;
    char why[512];

    if (open_plugin(j->p, 0) != 0 || init_plugin(0) != 0) {
        emit(V_FAIL, "device", "the plugin no longer opens or initialises in a fresh process");
        return;
    }
    if (j->device >= rec.ndevices) {
        emit(V_FAIL, "device", "init() registered %d devices in a fresh process, before %d",
             rec.ndevices, j->device + 1);
        fini_plugin();
        return;
    }
    const floe_device_desc *d = &rec.devices[j->device];
    const floe_device_ops *o = d->ops;
    char sec[64];
    snprintf(sec, sizeof(sec), "device %s:%d", str_or(d->type, "?"), (int)d->index);
    if (o == NULL || !o->alloc || !o->free || !o->copy_to_device || !o->copy_from_device ||
        !o->copy_on_device || !o->synchronize) {
        emit(V_SKIP, sec, "%s: the ops table is incomplete", dev_test_names[j->test]);
        fini_plugin();
        return;
    }
    switch (j->test) {
    case DT_ROUNDTRIP: {
        static const size_t sizes[] = {1, 3, 63, 64, 65, 4096, 65537, 1 << 20};
        int ok = 1;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && ok; i++)
            if (roundtrip(d, sizes[i], (unsigned)i, why, sizeof(why)) != 0) {
                emit(V_FAIL, sec, "round trip: %s", why);
                ok = 0;
            }
        if (ok)
            emit(V_PASS, sec, "alloc, copy to/on/from device, synchronize, free: 1 B to 1 MiB, "
                 "64-byte aligned, contents intact");
        break;
    }
    case DT_LARGE: {
        size_t n = (size_t)64 << 20;
        if (d->memory_bytes != 0 && d->memory_bytes < 4 * n)
            emit(V_SKIP, sec, "large buffer: the device has only %llu bytes",
                 (unsigned long long)d->memory_bytes);
        else if (roundtrip(d, n, 99, why, sizeof(why)) != 0)
            emit(V_FAIL, sec, "large buffer: %s", why);
        else
            emit(V_PASS, sec, "64 MiB round trip");
        break;
    }
    case DT_ZERO: {
        void *a = NULL;
        unsigned char h[1] = {0};
        floe_status st = o->alloc(d->state, 64, &a);
        if (st != FLOE_OK) {
            emit(V_FAIL, sec, "zero-byte copies: alloc(64) failed: %s", floe_status_str(st));
            break;
        }
        floe_status s1 = o->copy_to_device(d->state, a, h, 0);
        floe_status s2 = o->copy_from_device(d->state, h, a, 0);
        floe_status s3 = o->copy_on_device(d->state, a, a, 0);
        o->free(d->state, a, 64);
        if (s1 != FLOE_OK || s2 != FLOE_OK || s3 != FLOE_OK)
            emit(V_FAIL, sec, "zero-byte copies must succeed as no-ops: to %s, from %s, on %s",
                 floe_status_str(s1), floe_status_str(s2), floe_status_str(s3));
        else
            emit(V_PASS, sec, "zero-byte copies are no-ops (zero-size tensors)");
        break;
    }
    case DT_OPTIONAL: {
        int any = 0;
        if (o->proc_address != NULL) {
            void *f = o->proc_address(d->state, "floe_conformance_no_such_symbol");
            if (f != NULL)
                emit(V_FAIL, sec, "proc_address returns non-NULL for an unknown symbol");
            else
                emit(V_PASS, sec, "proc_address returns NULL for an unknown symbol");
            any = 1;
        }
        if (o->memory_stats != NULL) {
            floe_device_memory_stats before, after;
            void *a = NULL;
            memset(&before, 0, sizeof(before));
            memset(&after, 0, sizeof(after));
            before.struct_size = after.struct_size = sizeof(before);
            floe_status s1 = o->memory_stats(d->state, &before);
            floe_status s2 = o->alloc(d->state, 1 << 20, &a);
            floe_status s3 = s2 == FLOE_OK ? o->memory_stats(d->state, &after) : s2;
            if (a != NULL)
                o->free(d->state, a, 1 << 20);
            if (s1 != FLOE_OK || s3 != FLOE_OK)
                emit(V_FAIL, sec, "memory_stats failed: %s", floe_status_str(s1 != FLOE_OK ? s1 : s3));
            else if (after.bytes_in_use < before.bytes_in_use + (1 << 20) ||
                     after.peak_bytes_in_use < after.bytes_in_use)
                emit(V_WARN, sec, "memory_stats: bytes_in_use %llu -> %llu after a 1 MiB "
                     "allocation (peak %llu)", (unsigned long long)before.bytes_in_use,
                     (unsigned long long)after.bytes_in_use,
                     (unsigned long long)after.peak_bytes_in_use);
            else
                emit(V_PASS, sec, "memory_stats follows a 1 MiB allocation");
            any = 1;
        }
        if (o->copy_peer != NULL) {
            emit(V_SKIP, sec, "copy_peer: needs two devices of the plugin");
            any = 1;
        }
        if (!any)
            emit(V_PASS, sec, "no optional members to check");
        break;
    }
    case DT_THREADS: {
        enum { NT = 8 };
        pthread_t th[NT];
        thread_arg ta[NT];
        int started = 0, failed = 0;
        for (int i = 0; i < NT; i++) {
            memset(&ta[i], 0, sizeof(ta[i]));
            ta[i].d = d;
            ta[i].id = i;
            if (pthread_create(&th[i], NULL, thread_main, &ta[i]) == 0)
                started++;
            else
                break;
        }
        for (int i = 0; i < started; i++) {
            pthread_join(th[i], NULL);
            if (ta[i].failed && !failed) {
                emit(V_FAIL, sec, "concurrent use: thread %d: %s", i, ta[i].why);
                failed = 1;
            }
        }
        if (!failed)
            emit(V_PASS, sec, "%d threads x 50 round trips of up to 64 KiB at once", started);
        break;
    }
    case DT_ERRORS: {
        void *a = NULL;
        rec_msg_set = 0;
        floe_status st = o->alloc(d->state, SIZE_MAX / 2, &a);
        if (st == FLOE_OK) {
            emit(V_FAIL, sec, "alloc(SIZE_MAX/2) succeeded: impossible allocations must "
                 "return FLOE_RESOURCE_EXHAUSTED");
            o->free(d->state, a, SIZE_MAX / 2);
        } else if (st != FLOE_RESOURCE_EXHAUSTED) {
            emit(V_WARN, sec, "alloc(SIZE_MAX/2) returned %s, expected RESOURCE_EXHAUSTED",
                 floe_status_str(st));
        } else if (!rec_msg_set) {
            emit(V_WARN, sec, "alloc(SIZE_MAX/2) failed without a message (host->fail)");
        } else {
            emit(V_PASS, sec, "impossible allocation: RESOURCE_EXHAUSTED, \"%s\"", rec_msg);
        }
        o->free(d->state, NULL, 0);
        emit(V_PASS, sec, "free(NULL) is harmless");
        break;
    }
    }
    dprintf(out_fd, "P\tteardown\n");
    fini_plugin();
}

/* ---- Loading phase (child) -------------------------------------------------------- */

static floe_status new_context(const plugin_ut *p, const char *deny, floe_context **out) {
    floe_context_options o;
    floe_context_options_init(&o);
    o.plugin_path = p->search_path;
    o.system_plugins = !p->no_system;
    o.deny = deny;
    o.num_threads = 1;
    o.log_level = FLOE_LOG_ERROR;
    return floe_context_new(&o, out);
}

/* Sends one op description: D|E <op> <text with newlines as \x1f>. */
static void send_describe(const char *tag, floe_context *ctx, const char *op) {
    static char buf[65536];
    if (floe_context_describe_op(ctx, op, buf, sizeof(buf)) != FLOE_OK)
        return;
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = '\x1f';
        else if (*c == '\t')
            *c = ' ';
    dprintf(out_fd, "%s\t%s\t%s\n", tag, op, buf);
}

static void load_child(void *arg) {
    plugin_ut *p = arg;
    floe_context *t = NULL, *r = NULL;
    floe_plugin_info info;
    floe_status st;

    if ((st = new_context(p, p->name, &t)) != FLOE_OK ||
        (st = new_context(p, p->name, &r)) != FLOE_OK) {
        emit(V_FAIL, "loading", "cannot create a context: %s: %s", floe_status_str(st),
             floe_last_error());
        return;
    }
    st = floe_context_load_plugin(t, p->path);
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    int n = floe_context_num_plugins(t), found = 0;
    for (int i = n - 1; i >= 0 && !found; i--) {
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        found = floe_context_plugin(t, i, &info) == FLOE_OK && info.path != NULL &&
                strcmp(info.path, p->path) == 0;
    }
    if (!found) {
        emit(V_FAIL, "loading", "the core did not record the plugin %s", p->path);
        return;
    }
    if (st != FLOE_OK || !info.loaded) {
        emit(info.skipped ? V_SKIP : V_FAIL, "loading", "the core %s the plugin: %s",
             info.skipped ? "skipped" : "rejected", info.reason);
        return;
    }
    dprintf(out_fd, "L\n");
    emit(V_PASS, "loading", "loaded by libfloe %s next to %d other plugin(s): %d ops, "
         "%d kernels, %d devices, %d filesystems, %d transports", floe_version(), n - 1,
         info.num_ops, info.num_kernels, info.num_devices, info.num_filesystems,
         info.num_transports);
    if (info.num_ops != p->nops || info.num_kernels != p->nkernels ||
        info.num_devices != p->ndevices || info.num_filesystems != p->nfilesystems)
        emit(V_FAIL, "loading", "the core counted %d ops, %d kernels, %d devices, "
             "%d filesystems; init() registered %d, %d, %d, %d in the first run: "
             "registration must not depend on the host or the run",
             info.num_ops, info.num_kernels, info.num_devices, info.num_filesystems, p->nops,
             p->nkernels, p->ndevices, p->nfilesystems);
    /* Every kernel and gradient names a known op; send the descriptions. */
    char buf[256];
    for (int i = 0; i < p->nkernels; i++) {
        const char *op = p->kernels[i].op;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(p->kernels[j].op, op) == 0;
        if (seen)
            continue;
        if (floe_context_describe_op(t, op, buf, sizeof(buf)) == FLOE_NOT_FOUND) {
            emit(V_FAIL, "registration", "kernel for unknown op %s (not defined by this "
                 "plugin nor by the plugins loaded next to it)", op);
            continue;
        }
        send_describe("D", t, op);
        send_describe("E", r, op);
    }
    for (int i = 0; i < p->ngrads; i++)
        if (floe_context_describe_op(t, p->grads[i], buf, 1) == FLOE_NOT_FOUND)
            emit(V_FAIL, "registration", "gradient for unknown op %s", p->grads[i]);
    for (int i = 0; i < p->nops; i++) {
        int has_kernel = 0;
        for (int j = 0; j < p->nkernels && !has_kernel; j++)
            has_kernel = strcmp(p->kernels[j].op, p->ops[i]) == 0;
        if (!has_kernel) {
            static char text[65536];
            if (floe_context_describe_op(t, p->ops[i], text, sizeof(text)) == FLOE_OK &&
                strstr(text, "kernels: none") != NULL)
                emit(V_WARN, "registration", "op %s has no kernel on any device", p->ops[i]);
        }
    }
    /* The reference has a CPU device. */
    int ref_cpu = 0;
    for (int i = 0; i < floe_context_num_devices(r); i++) {
        floe_device_info di;
        memset(&di, 0, sizeof(di));
        di.struct_size = sizeof(di);
        if (floe_context_device(r, i, &di) == FLOE_OK && strcmp(di.type, "CPU") == 0)
            ref_cpu = 1;
    }
    dprintf(out_fd, "R\t%d\n", ref_cpu);
    floe_context_free(r);
    floe_context_free(t);
}

/* ---- Op descriptions --------------------------------------------------------------- */

#define MAX_ARGS 16
#define NCAND 4
static const floe_dtype cand_dtypes[NCAND] = {FLOE_DTYPE_F32, FLOE_DTYPE_F64, FLOE_DTYPE_I32,
                                              FLOE_DTYPE_I64};

typedef struct kline {
    char device[32];
    int priority;
    char plugin[128];
    unsigned mask;                /* candidates its constraints allow (bit i: cand_dtypes[i]) */
} kline;

typedef struct op_sig {
    char name[128];
    int ninputs, noutputs;
    char in_type[MAX_ARGS][64];   /* a dtype name or a type attr */
    int in_list[MAX_ARGS];        /* "N * T" */
    unsigned in_mask;             /* candidates the type attr of input 0 allows */
    char unsupported[256];        /* why generated inputs cannot drive it ("" if they can) */
    int stateful;
    char type_attrs[4][64];       /* type attrs set to the dtype under test */
    int ntype_attrs;
    kline k[32];
    int nk;
} op_sig;

/* Bit set of the candidate dtypes in a type-set text: "{f32, f64}" or a named set. */
static unsigned type_mask(const char *s) {
    while (*s == ' ')
        s++;
    if (strncmp(s, "floattype", 9) == 0)
        return 0x3;
    if (strncmp(s, "inttype", 7) == 0)
        return 0xC;
    if (*s != '{')
        return 0xF; /* numbertype, realnumbertype, alltypes, type */
    unsigned m = 0;
    const char *end = strchr(s, '}');
    for (int i = 0; i < NCAND; i++) {
        const char *n = floe_dtype_name(cand_dtypes[i]);
        size_t len = strlen(n);
        for (const char *q = s; q && (end == NULL || q < end); q = strchr(q + 1, ' ')) {
            const char *w = q + (*q == ' ' || *q == '{');
            if (strncmp(w, n, len) == 0 && (w[len] == ',' || w[len] == '}'))
                m |= 1u << i;
        }
    }
    return m;
}

/* Parses floe_context_describe_op's text (lines separated by \x1f). */
static void parse_describe(char *text, op_sig *s) {
    enum { NONE, IN, OUT, ATTRS, KERNELS } sec = NONE;
    char device[32] = "";
    char *save = NULL;
    char attr_req[512] = "";

    s->in_mask = 0xF;
    for (char *l = strtok_r(text, "\x1f", &save); l; l = strtok_r(NULL, "\x1f", &save)) {
        if (strncmp(l, "  inputs:", 9) == 0) {
            sec = IN;
        } else if (strncmp(l, "  outputs:", 10) == 0) {
            sec = OUT;
        } else if (strncmp(l, "  attrs:", 8) == 0) {
            sec = ATTRS;
        } else if (strncmp(l, "  kernels:", 10) == 0) {
            sec = KERNELS;
        } else if (strncmp(l, "  flags:", 8) == 0) {
            s->stateful = strstr(l, "stateful") != NULL;
        } else if (strncmp(l, "  gradient:", 11) == 0) {
            sec = NONE;
        } else if (sec == IN && strncmp(l, "    ", 4) == 0 && s->ninputs < MAX_ARGS) {
            const char *c = strchr(l, ':');
            if (c == NULL)
                continue;
            c += 2;
            int list = strstr(c, " * ") != NULL;
            if (list)
                c = strstr(c, " * ") + 3;
            snprintf(s->in_type[s->ninputs], sizeof(s->in_type[0]), "%s", c);
            s->in_list[s->ninputs++] = list;
            if (list && s->unsupported[0] == '\0')
                snprintf(s->unsupported, sizeof(s->unsupported), "list input");
        } else if (sec == OUT && strncmp(l, "    ", 4) == 0) {
            if (strstr(l, " * ") != NULL && s->unsupported[0] == '\0')
                snprintf(s->unsupported, sizeof(s->unsupported), "list output");
            s->noutputs++;
        } else if (sec == ATTRS && strncmp(l, "    ", 4) == 0) {
            char name[64];
            const char *c = strchr(l, ':');
            if (c == NULL)
                continue;
            snprintf(name, sizeof(name), "%.*s", (int)(c - l - 4), l + 4);
            int used_by_input = 0;
            for (int i = 0; i < s->ninputs; i++)
                used_by_input |= strcmp(s->in_type[i], name) == 0;
            if (strncmp(c + 2, "list(", 5) == 0 && strchr(c + 7, '{') == NULL && used_by_input &&
                s->unsupported[0] == '\0')
                snprintf(s->unsupported, sizeof(s->unsupported), "type-list input %s", name);
            if (s->ninputs > 0 && strcmp(s->in_type[0], name) == 0)
                s->in_mask = type_mask(c + 2);
            /* Type attrs no input determines (Cast's DstT) get the dtype under test. */
            const char *kind = c + 2;
            int is_type = kind[0] == '{' || strncmp(kind, "type", 4) == 0 ||
                          (strstr(kind, "type") != NULL && strncmp(kind, "list(", 5) != 0);
            if (!used_by_input && strstr(c, " = ") == NULL && is_type && s->ntype_attrs < 4) {
                snprintf(s->type_attrs[s->ntype_attrs++], sizeof(s->type_attrs[0]), "%s", name);
                continue;
            }
            /* A number attr of a list input is inferred too. */
            if (!used_by_input && strstr(c, " = ") == NULL && strlen(attr_req) < 400)
                snprintf(attr_req + strlen(attr_req), sizeof(attr_req) - strlen(attr_req),
                         "%s%s", attr_req[0] ? ", " : "", name);
        } else if (sec == KERNELS && strncmp(l, "    ", 4) == 0 && l[4] != ' ') {
            snprintf(device, sizeof(device), "%s", l + 4);
            char *colon = strchr(device, ':');
            if (colon)
                *colon = '\0';
        } else if (sec == KERNELS && strncmp(l, "      priority ", 15) == 0 && s->nk < 32) {
            kline *k = &s->k[s->nk++];
            snprintf(k->device, sizeof(k->device), "%s", device);
            k->priority = atoi(l + 15);
            const char *pl = strstr(l, "plugin ");
            k->plugin[0] = '\0';
            if (pl) {
                snprintf(k->plugin, sizeof(k->plugin), "%s", pl + 7);
                char *comma = strchr(k->plugin, ',');
                if (comma)
                    *comma = '\0';
            }
            const char *f = strstr(l, ", for ");
            k->mask = 0xF;
            if (f != NULL) {
                /* Only the constraint on input 0's type attr matters for the dtypes we feed. */
                char key[80];
                snprintf(key, sizeof(key), "%s: ", s->ninputs > 0 ? s->in_type[0] : "T");
                const char *c = strstr(f, key);
                if (c != NULL)
                    k->mask = type_mask(c + strlen(key));
            }
        }
    }
    if (s->unsupported[0] == '\0' && attr_req[0] != '\0')
        snprintf(s->unsupported, sizeof(s->unsupported), "attrs without defaults: %s", attr_req);
    if (s->ninputs > 0 && floe_dtype_from_name(s->in_type[0]) != FLOE_DTYPE_INVALID) {
        s->in_mask = 0;
        for (int i = 0; i < NCAND; i++)
            if (cand_dtypes[i] == floe_dtype_from_name(s->in_type[0]))
                s->in_mask = 1u << i;
        if (s->in_mask == 0 && s->unsupported[0] == '\0')
            snprintf(s->unsupported, sizeof(s->unsupported), "input of dtype %s", s->in_type[0]);
    }
    if (s->unsupported[0] == '\0' && s->ninputs == 0)
        snprintf(s->unsupported, sizeof(s->unsupported), "no inputs");
    if (s->unsupported[0] == '\0')
        for (int i = 0; i < s->ninputs; i++) {
            floe_dtype d = floe_dtype_from_name(s->in_type[i]);
            if (d == FLOE_DTYPE_STRING || d == FLOE_DTYPE_RESOURCE)
                snprintf(s->unsupported, sizeof(s->unsupported), "%s input",
                         floe_dtype_name(d));
        }
}

/* ---- Kernel cases (children) ------------------------------------------------------------ */

#define NCONFIG 9
static const char *const config_names[NCONFIG] = {
    "matching [3,4]", "rank 0", "zero-size [0,4]", "broadcast [3,4] with [4]",
    "broadcast [3,1] with [1,4]", "square [4,4]", "rank 4 [2,3,4,5]",
    "mismatched [3,4] with [5,2]", "non-finite values [3,4]"};

enum ref_kind { REF_NONE, REF_CORE_WITHOUT, REF_CPU_OF_SAME };

typedef struct kernel_job {
    plugin_ut *p;
    op_sig *sig;
    const char *device;        /* "CPU", "GPU" */
    unsigned dtypes;           /* bits of cand_dtypes to run */
    int ref;                   /* enum ref_kind */
    int start;                 /* first case (dtype * NCONFIG + config) */
    int verbose;
} kernel_job;

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* The shape of input @i in config @c (*nd = rank). */
static void config_shape(int c, int i, int64_t *dims, int *nd) {
    static const int64_t s34[] = {3, 4}, s4[] = {4}, s31[] = {3, 1}, s14[] = {1, 4},
                         s44[] = {4, 4}, s2345[] = {2, 3, 4, 5}, s52[] = {5, 2}, s04[] = {0, 4};
    const int64_t *src = s34;
    int n = 2;
    switch (c) {
    case 1: n = 0; break;
    case 2: src = s04; break;
    case 3: if (i > 0) { src = s4; n = 1; } break;
    case 4: src = i == 0 ? s31 : s14; break;
    case 5: src = s44; break;
    case 6: src = s2345; n = 4; break;
    case 7: if (i > 0) src = s52; break;
    default: break;
    }
    memcpy(dims, src, (size_t)n * sizeof(int64_t));
    *nd = n;
}

/* Makes input @i of config @c for dtype @dt.  Fixed-dtype inputs (axes, shapes) get a
 * scalar 0 of that dtype. */
static floe_status make_input(const op_sig *s, int i, int c, floe_dtype dt, floe_tensor **out) {
    int64_t dims[8];
    int nd;
    floe_dtype fixed = floe_dtype_from_name(s->in_type[i]);
    uint32_t seed = (uint32_t)(c * 977 + i * 31 + 7);

    if (fixed == FLOE_DTYPE_INVALID && i > 0 && strcmp(s->in_type[i], s->in_type[0]) != 0)
        fixed = FLOE_DTYPE_I32; /* an index or axis of its own type attr: a scalar 0 */
    if (i == 0 && fixed != FLOE_DTYPE_INVALID) {
        dt = fixed; /* input 0 of a fixed dtype: the config's shape */
        fixed = FLOE_DTYPE_INVALID;
        config_shape(c, i, dims, &nd);
    } else if (fixed != FLOE_DTYPE_INVALID) {
        dt = fixed;
        nd = 0;
    } else {
        config_shape(c, i, dims, &nd);
    }
    floe_status st = floe_tensor_new(dt, dims, nd, out);
    if (st != FLOE_OK)
        return st;
    int64_t n = floe_tensor_num_elements(*out);
    void *data = floe_tensor_data(*out);
    for (int64_t k = 0; k < n; k++) {
        double v = (double)(lcg(&seed) % 20001) / 5000.0 - 2.0; /* [-2, 2] */
        if (fixed != FLOE_DTYPE_INVALID)
            v = 0;
        if (c == 8) {
            static const double special[] = {NAN, INFINITY, -INFINITY, 1e30, -0.0, 1e-40};
            if (k < 6)
                v = special[k];
        }
        switch (dt) {
        case FLOE_DTYPE_F32: ((float *)data)[k] = (float)v; break;
        case FLOE_DTYPE_F64: ((double *)data)[k] = v; break;
        case FLOE_DTYPE_I32: {
            int32_t iv = (int32_t)(lcg(&seed) % 9) - 4;
            ((int32_t *)data)[k] = fixed != FLOE_DTYPE_INVALID ? 0 : iv == 0 ? 3 : iv;
            break;
        }
        case FLOE_DTYPE_I64: {
            int64_t iv = (int64_t)(lcg(&seed) % 9) - 4;
            ((int64_t *)data)[k] = fixed != FLOE_DTYPE_INVALID ? 0 : iv == 0 ? 3 : iv;
            break;
        }
        case FLOE_DTYPE_BOOL: ((uint8_t *)data)[k] = 0; break;
        default: memset((char *)data + k * (int64_t)floe_dtype_size(dt), 0, floe_dtype_size(dt));
        }
    }
    return FLOE_OK;
}

typedef struct run_result {
    floe_status st;
    char msg[256];
    floe_tensor *out[MAX_ARGS];
    int nout;
} run_result;

static void run_op(floe_context *ctx, const op_sig *s, const char *device,
                   floe_tensor *const *in, const floe_attrs *attrs, run_result *r) {
    memset(r, 0, sizeof(*r));
    r->nout = s->noutputs;
    r->st = floe_eager_run(ctx, s->name, device, in, s->ninputs, attrs, r->out, s->noutputs);
    if (r->st != FLOE_OK)
        snprintf(r->msg, sizeof(r->msg), "%s", floe_last_error());
    for (int i = 0; r->st == FLOE_OK && i < r->nout; i++) {
        floe_tensor *h = NULL;
        if (r->out[i] != NULL && floe_tensor_to_host(r->out[i], &h) == FLOE_OK) {
            floe_tensor_unref(r->out[i]);
            r->out[i] = h;
        }
    }
}

static void free_result(run_result *r) {
    for (int i = 0; i < MAX_ARGS; i++)
        floe_tensor_unref(r->out[i]);
}

static double elem(const floe_tensor *t, int64_t k) {
    const void *d = floe_tensor_data(t);
    switch (floe_tensor_dtype(t)) {
    case FLOE_DTYPE_F32: return ((const float *)d)[k];
    case FLOE_DTYPE_F64: return ((const double *)d)[k];
    case FLOE_DTYPE_I32: return ((const int32_t *)d)[k];
    case FLOE_DTYPE_I64: return (double)((const int64_t *)d)[k];
    case FLOE_DTYPE_U8: case FLOE_DTYPE_BOOL: return ((const uint8_t *)d)[k];
    case FLOE_DTYPE_I8: return ((const int8_t *)d)[k];
    case FLOE_DTYPE_I16: return ((const int16_t *)d)[k];
    default: return 0;
    }
}

static void shape_str(const floe_tensor *t, char *buf, size_t len) {
    size_t n = (size_t)snprintf(buf, len, "%s[", floe_dtype_name(floe_tensor_dtype(t)));
    for (int i = 0; i < floe_tensor_ndim(t) && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? "," : "",
                              (long long)floe_tensor_dim(t, i));
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* Compares two results' outputs; returns 0 when they agree, else explains in @why. */
static int compare(const run_result *a, const run_result *b, int values, char *why, size_t len) {
    for (int i = 0; i < a->nout; i++) {
        const floe_tensor *x = a->out[i], *y = b->out[i];
        char sx[128], sy[128];
        if (x == NULL || y == NULL) {
            snprintf(why, len, "output %d missing", i);
            return -1;
        }
        int same = floe_tensor_dtype(x) == floe_tensor_dtype(y) &&
                   floe_tensor_ndim(x) == floe_tensor_ndim(y);
        for (int d = 0; same && d < floe_tensor_ndim(x); d++)
            same = floe_tensor_dim(x, d) == floe_tensor_dim(y, d);
        if (!same) {
            shape_str(x, sx, sizeof(sx));
            shape_str(y, sy, sizeof(sy));
            snprintf(why, len, "output %d is %s, reference %s", i, sx, sy);
            return -1;
        }
        if (!values)
            continue;
        int fl = floe_tensor_dtype(x) == FLOE_DTYPE_F32 || floe_tensor_dtype(x) == FLOE_DTYPE_F64;
        double tol = floe_tensor_dtype(x) == FLOE_DTYPE_F64 ? 1e-9 : 1e-4;
        int64_t n = floe_tensor_num_elements(x);
        for (int64_t k = 0; k < n; k++) {
            double u = elem(x, k), v = elem(y, k);
            int ok;
            if (!fl)
                ok = u == v;
            else if (isnan(u) || isnan(v))
                ok = isnan(u) && isnan(v);
            else if (isinf(u) || isinf(v))
                ok = u == v;
            else
                ok = fabs(u - v) <= tol * (1.0 + fabs(v));
            if (!ok) {
                snprintf(why, len, "output %d element %lld is %.9g, reference %.9g", i,
                         (long long)k, u, v);
                return -1;
            }
        }
    }
    return 0;
}

/* The output shapes the op's shape function gives for the inputs' static shapes agree with
 * what the kernel produced.  0 when they agree or the shape function gives no answer. */
static int check_static_shapes(floe_context *ctx, const op_sig *s, floe_tensor *const *in,
                               const floe_attrs *attrs, const run_result *r, char *why,
                               size_t len) {
    floe_graph *g = NULL;
    floe_node_builder *b = NULL;
    floe_node *node = NULL;
    int rc = 0;

    if (floe_graph_new(ctx, &g) != FLOE_OK)
        return 0;
    if (floe_node_builder_new(g, s->name, "op", &b) != FLOE_OK)
        goto done;
    for (int i = 0; i < s->ntype_attrs; i++) {
        floe_dtype v = FLOE_DTYPE_INVALID;
        if (floe_attrs_get_type(attrs, s->type_attrs[i], &v) == FLOE_OK)
            floe_attrs_set_type(floe_node_builder_attrs(b), s->type_attrs[i], v);
    }
    for (int i = 0; i < s->ninputs; i++) {
        floe_node_builder *pb = NULL;
        floe_node *ph = NULL;
        char name[16];
        snprintf(name, sizeof(name), "in%d", i);
        if (floe_node_builder_new(g, "Const", name, &pb) != FLOE_OK)
            goto done_b;
        floe_attrs_set_type(floe_node_builder_attrs(pb), "dtype", floe_tensor_dtype(in[i]));
        floe_attrs_set_tensor(floe_node_builder_attrs(pb), "value", in[i]);
        if (floe_node_builder_finish(pb, &ph) != FLOE_OK)
            goto done_b;
        floe_node_builder_add_input(b, floe_out(ph, 0));
    }
    if (floe_node_builder_finish(b, &node) != FLOE_OK) {
        b = NULL;
        snprintf(why, len, "the shape function rejects inputs the kernel accepted: %s",
                 floe_last_error());
        rc = -1;
        goto done;
    }
    b = NULL;
    for (int i = 0; i < r->nout && rc == 0; i++) {
        floe_shape sh = floe_node_output_shape(node, i);
        const floe_tensor *t = r->out[i];
        if (sh.ndim < 0 || t == NULL)
            continue;
        int ok = sh.ndim == floe_tensor_ndim(t);
        for (int d = 0; ok && d < sh.ndim; d++)
            ok = sh.dims[d] < 0 || sh.dims[d] == floe_tensor_dim(t, d);
        if (!ok) {
            char st[128], ss[160];
            size_t n = (size_t)snprintf(ss, sizeof(ss), "[");
            for (int d = 0; d < sh.ndim && n < sizeof(ss); d++)
                n += (size_t)snprintf(ss + n, sizeof(ss) - n, "%s%lld", d ? "," : "",
                                      (long long)sh.dims[d]);
            if (n < sizeof(ss))
                snprintf(ss + n, sizeof(ss) - n, "]");
            shape_str(t, st, sizeof(st));
            snprintf(why, len, "output %d: the shape function says %s, the kernel produced %s",
                     i, ss, st);
            rc = -1;
        }
    }
done_b:
    floe_node_builder_free(b);
done:
    floe_graph_free(g);
    return rc;
}

/* One case; emits K <case> <ok|fail|na|exercised> <text>. */
static void kernel_case(kernel_job *j, floe_context *t, floe_context *r, int idx) {
    int di = idx / NCONFIG, c = idx % NCONFIG;
    floe_dtype dt = cand_dtypes[di];
    const op_sig *s = j->sig;
    floe_tensor *in[MAX_ARGS] = {0};
    run_result rt, rr, rt2;
    floe_attrs *attrs = NULL;
    char dev[48], why[512] = "";
    const char *label = config_names[c];

    if (c == 7 && s->ninputs < 2)
        return;
    if (c == 8 && dt != FLOE_DTYPE_F32 && dt != FLOE_DTYPE_F64)
        return;
    dprintf(out_fd, "M\t%d\n", idx);
    snprintf(dev, sizeof(dev), "%s:0", j->device);
    if (floe_attrs_new(&attrs) != FLOE_OK) {
        dprintf(out_fd, "K\t%d\tna\tout of memory\n", idx);
        return;
    }
    for (int i = 0; i < s->ntype_attrs; i++)
        floe_attrs_set_type(attrs, s->type_attrs[i], dt);
    for (int i = 0; i < s->ninputs; i++)
        if (make_input(s, i, c, dt, &in[i]) != FLOE_OK) {
            dprintf(out_fd, "K\t%d\tna\tcannot make inputs\n", idx);
            goto done_in;
        }
    run_op(t, s, dev, in, attrs, &rt);
    if (j->ref == REF_NONE) {
        if (rt.st == FLOE_OK && !s->stateful) {
            run_op(t, s, dev, in, attrs, &rt2);
            if (rt2.st != FLOE_OK || compare(&rt2, &rt, 1, why, sizeof(why)) != 0)
                dprintf(out_fd, "K\t%d\tfail\t%s %s: not deterministic: %s\n", idx,
                        floe_dtype_name(dt), label, rt2.st != FLOE_OK ? "second run failed" : why);
            else if (check_static_shapes(t, s, in, attrs, &rt, why, sizeof(why)) != 0)
                dprintf(out_fd, "K\t%d\tfail\t%s %s: %s\n", idx, floe_dtype_name(dt), label, why);
            else
                dprintf(out_fd, "K\t%d\tok\t%s %s: ran, deterministic\n", idx, floe_dtype_name(dt),
                        label);
            free_result(&rt2);
        } else {
            clean(rt.msg);
            dprintf(out_fd, "K\t%d\t%s\t%s %s: %s%s\n", idx, rt.st == FLOE_OK ? "ok" : "err",
                    floe_dtype_name(dt), label, floe_status_str(rt.st), rt.st ? rt.msg : "");
        }
        free_result(&rt);
        goto done_in;
    }
    if (j->ref == REF_CORE_WITHOUT)
        run_op(r, s, dev, in, attrs, &rr);
    else
        run_op(t, s, "CPU:0", in, attrs, &rr);
    clean(rt.msg);
    clean(rr.msg);
    if (rt.st == FLOE_OK && rr.st == FLOE_OK) {
        if (compare(&rt, &rr, !s->stateful, why, sizeof(why)) != 0)
            dprintf(out_fd, "K\t%d\tfail\t%s %s: %s\n", idx, floe_dtype_name(dt), label, why);
        else if (check_static_shapes(t, s, in, attrs, &rt, why, sizeof(why)) != 0)
            dprintf(out_fd, "K\t%d\tfail\t%s %s: %s\n", idx, floe_dtype_name(dt), label, why);
        else
            dprintf(out_fd, "K\t%d\tok\t%s %s: matches the reference\n", idx,
                    floe_dtype_name(dt), label);
    } else if (rt.st != FLOE_OK && rr.st != FLOE_OK) {
        dprintf(out_fd, "K\t%d\terr\t%s %s: both reject (%s / reference %s)\n", idx,
                floe_dtype_name(dt), label, floe_status_str(rt.st), floe_status_str(rr.st));
    } else if (rt.st == FLOE_OK) {
        dprintf(out_fd, "K\t%d\tfail\t%s %s: accepted an input the reference rejects (%s: %s)\n",
                idx, floe_dtype_name(dt), label, floe_status_str(rr.st), rr.msg);
    } else {
        dprintf(out_fd, "K\t%d\tfail\t%s %s: failed where the reference succeeds: %s: %s\n", idx,
                floe_dtype_name(dt), label, floe_status_str(rt.st), rt.msg);
    }
    free_result(&rt);
    free_result(&rr);
done_in:
    for (int i = 0; i < s->ninputs; i++)
        floe_tensor_unref(in[i]);
    floe_attrs_free(attrs);
}

static void kernel_child(void *arg) {
    kernel_job *j = arg;
    floe_context *t = NULL, *r = NULL;
    floe_status st;

    if ((st = new_context(j->p, j->p->name, &t)) != FLOE_OK ||
        (j->ref == REF_CORE_WITHOUT && (st = new_context(j->p, j->p->name, &r)) != FLOE_OK)) {
        emit(V_FAIL, "kernels", "cannot create a context: %s", floe_status_str(st));
        return;
    }
    if (floe_context_load_plugin(t, j->p->path) != FLOE_OK) {
        emit(V_FAIL, "kernels", "the plugin no longer loads: %s", floe_last_error());
        return;
    }
    for (int idx = j->start; idx < NCAND * NCONFIG; idx++)
        if (j->dtypes & (1u << (idx / NCONFIG)))
            kernel_case(j, t, r, idx);
    dprintf(out_fd, "M\tdone\n");
    floe_context_free(r);
    floe_context_free(t);
}

/* ---- The command --------------------------------------------------------------------- */

typedef struct desc_ctx {
    plugin_ut *p;
    char phase[32];
    char (*devices)[48];
    int ndev;
} desc_ctx;

static void on_desc_line(char **f, int n, void *arg) {
    desc_ctx *c = arg;
    plugin_ut *p = c->p;
    if (strcmp(f[0], "P") == 0 && n == 2)
        snprintf(c->phase, sizeof(c->phase), "%s", f[1]);
    else if (strcmp(f[0], "O") == 0 && n == 2 && p->nops < MAX_REC)
        p->ops[p->nops++] = strdup(f[1]);
    else if (strcmp(f[0], "K") == 0 && n == 4 && p->nkernels < MAX_REC) {
        p->kernels[p->nkernels].op = strdup(f[1]);
        p->kernels[p->nkernels].device = strdup(f[2]);
        p->kernels[p->nkernels].priority = atoi(f[3]);
        p->nkernels++;
    } else if (strcmp(f[0], "G") == 0 && n == 2 && p->ngrads < MAX_REC)
        p->grads[p->ngrads++] = strdup(f[1]);
    else if (strcmp(f[0], "V") == 0 && n == 3 && c->ndev < 64)
        snprintf(c->devices[c->ndev++], 48, "%s:%s", f[1], f[2]);
    else if (strcmp(f[0], "N") == 0 && n == 3) {
        p->nfilesystems = atoi(f[1]);
        p->ntransports = atoi(f[2]);
    }
}

static void on_device_line(char **f, int n, void *arg) {
    if (strcmp(f[0], "P") == 0 && n == 2 && strcmp(f[1], "teardown") == 0)
        *(int *)arg = 1;
}

typedef struct load_ctx {
    op_sig *sigs;
    int nsigs;
    int loaded;
    int ref_cpu;
} load_ctx;

static void on_load_line(char **f, int n, void *arg) {
    load_ctx *c = arg;
    if (strcmp(f[0], "L") == 0)
        c->loaded = 1;
    else if (strcmp(f[0], "R") == 0 && n == 2)
        c->ref_cpu = atoi(f[1]);
    else if ((strcmp(f[0], "D") == 0 || strcmp(f[0], "E") == 0) && n == 3) {
        op_sig *s = NULL;
        for (int i = 0; i < c->nsigs; i++)
            if (strcmp(c->sigs[i].name, f[1]) == 0)
                s = &c->sigs[i];
        if (s == NULL) {
            if (c->nsigs == MAX_REC)
                return;
            s = &c->sigs[c->nsigs++];
            memset(s, 0, sizeof(*s));
            snprintf(s->name, sizeof(s->name), "%s", f[1]);
        }
        if (f[0][0] == 'D') {
            parse_describe(f[2], s);
        } else {
            /* The reference core's kernels, as "plugin" lines tagged with a leading '='. */
            op_sig ref;
            memset(&ref, 0, sizeof(ref));
            parse_describe(f[2], &ref);
            for (int i = 0; i < ref.nk && s->nk < 32; i++) {
                s->k[s->nk] = ref.k[i];
                memmove(s->k[s->nk].plugin + 1, s->k[s->nk].plugin,
                        sizeof(s->k[0].plugin) - 1);
                s->k[s->nk].plugin[0] = '=';
                s->k[s->nk].plugin[sizeof(s->k[0].plugin) - 1] = '\0';
                s->nk++;
            }
        }
    }
}

typedef struct kernel_tally {
    int ok, err, fail, na;
    int last;                  /* last case started */
    int done;
    report *r;
    const char *section;
    int verbose;
} kernel_tally;

static void on_kernel_line(char **f, int n, void *arg) {
    kernel_tally *k = arg;
    if (strcmp(f[0], "M") == 0 && n == 2) {
        if (strcmp(f[1], "done") == 0)
            k->done = 1;
        else
            k->last = atoi(f[1]);
    } else if (strcmp(f[0], "K") == 0 && n == 4) {
        if (strcmp(f[2], "ok") == 0)
            k->ok++;
        else if (strcmp(f[2], "err") == 0)
            k->err++;
        else if (strcmp(f[2], "na") == 0)
            k->na++;
        else
            k->fail++;
        if (strcmp(f[2], "fail") == 0 && (k->fail <= 4 || k->verbose))
            rep_addf(k->r, V_FAIL, k->section, "%s", f[3]);
        else if (strcmp(f[2], "fail") == 0 && k->fail == 5)
            rep_addf(k->r, V_FAIL, k->section, "more failing cases (--verbose lists them)");
        else if (k->verbose)
            rep_addf(k->r, V_PASS, k->section, "%s", f[3]);
    }
}

/* Runs every case of one kernel, resuming after a case that crashed. */
static void test_kernel(report *r, plugin_ut *p, op_sig *s, const char *device, int verbose) {
    char sec[192];
    unsigned dtypes = 0;
    const char *shadow = NULL;
    int ref = REF_NONE;

    snprintf(sec, sizeof(sec), "kernel %.100s on %.60s", s->name, device);
    if (s->unsupported[0] != '\0') {
        rep_addf(r, V_WARN, sec, "not exercised: generated inputs cannot drive it (%s); test "
                 "it with your own cases", s->unsupported);
        return;
    }
    for (int b = 0; b < NCAND; b++) {
        if (!(s->in_mask & (1u << b)))
            continue;
        /* The winner among the test core's kernels (reference lines start with '='). */
        const kline *w = NULL;
        for (int i = 0; i < s->nk; i++)
            if (s->k[i].plugin[0] != '=' && strcmp(s->k[i].device, device) == 0 &&
                (s->k[i].mask & (1u << b)) && (w == NULL || s->k[i].priority > w->priority))
                w = &s->k[i];
        if (w != NULL && strcmp(w->plugin, p->name) == 0)
            dtypes |= 1u << b;
        else if (w != NULL)
            shadow = w->plugin;
    }
    if (dtypes == 0) {
        rep_addf(r, V_WARN, sec, "not exercised: for the dtypes tried, the core picks %s's "
                 "kernel (higher priority)", shadow ? shadow : "another plugin");
        return;
    }
    if (strcmp(device, "CPU") != 0) {
        ref = REF_CPU_OF_SAME;
        for (int b = 0; b < NCAND; b++) {
            int has = 0;
            for (int i = 0; i < s->nk; i++)
                has |= s->k[i].plugin[0] != '=' && strcmp(s->k[i].device, "CPU") == 0 &&
                       (s->k[i].mask & (1u << b));
            if (!has)
                dtypes &= ~(1u << b);
        }
        if (dtypes == 0)
            ref = REF_NONE;
    } else {
        /* The dtypes the reference core has a CPU kernel for. */
        unsigned covered = 0;
        for (int i = 0; i < s->nk; i++)
            if (s->k[i].plugin[0] == '=' && strcmp(s->k[i].device, "CPU") == 0)
                covered |= s->k[i].mask;
        if ((dtypes & covered) != 0) {
            ref = REF_CORE_WITHOUT;
            dtypes &= covered;
        }
    }

    kernel_tally k = {0, 0, 0, 0, -1, 0, r, sec, verbose};
    kernel_job j = {p, s, device, dtypes, ref, 0, verbose};
    int crashes = 0;
    while (!k.done && j.start < NCAND * NCONFIG && crashes < 8) {
        child_out co;
        k.last = -1;
        if (run_child(kernel_child, &j, &co) != 0) {
            rep_addf(r, V_FAIL, sec, "cannot fork: %s", strerror(errno));
            return;
        }
        collect(r, &co, on_kernel_line, &k);
        free(co.buf);
        if (!k.done) {
            char death[128];
            describe_death(&co, death, sizeof(death));
            if (k.last < 0) {
                rep_addf(r, V_FAIL, sec, "the test process %s before the first case", death);
                return;
            }
            rep_addf(r, V_FAIL, sec, "%s %s: %s (invalid or unusual input must return an "
                     "error, never crash or hang)", floe_dtype_name(cand_dtypes[k.last / NCONFIG]),
                     config_names[k.last % NCONFIG], death);
            k.fail++;
            crashes++;
            j.start = k.last + 1;
        }
    }
    char dts[64] = "";
    for (int b = 0; b < NCAND; b++)
        if (dtypes & (1u << b))
            snprintf(dts + strlen(dts), sizeof(dts) - strlen(dts), "%s%s", dts[0] ? "," : "",
                     floe_dtype_name(cand_dtypes[b]));
    const char *against = ref == REF_CORE_WITHOUT ? "against the reference CPU kernel"
                          : ref == REF_CPU_OF_SAME ? "against the op on CPU:0"
                                                   : "no reference kernel: checked for crashes, "
                                                     "determinism and shape agreement";
    if (k.fail == 0)
        rep_addf(r, k.ok > 0 ? V_PASS : V_WARN, sec, "%s: %d cases agree, %d rejected as %s; %s",
                 dts, k.ok, k.err, ref == REF_NONE ? "invalid" : "by the reference", against);
    else
        rep_addf(r, V_FAIL, sec, "%s: %d of %d cases failed (%s)", dts, k.fail,
                 k.ok + k.err + k.fail, against);
}

static void print_text(const report *r, const plugin_ut *p, const floe_plugin_desc *d) {
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    (void)d;
    printf("Floe plugin conformance report\n");
    printf("  plugin:  %s (%s)\n", p->name, p->path);
    printf("  core:    libfloe %s, plugin ABI %d.%d\n", floe_version(), FLOE_PLUGIN_ABI_MAJOR,
           FLOE_PLUGIN_ABI_MINOR);
    printf("  date:    %s\n", when);
    /* Grouped by heading, in the order the headings first appear; kernels under one. */
    for (int h = 0; h < r->n; h++) {
        const char *hs = strncmp(r->checks[h].section, "kernel ", 7) == 0 ? "kernels"
                                                                          : r->checks[h].section;
        int seen = 0;
        for (int e = 0; e < h && !seen; e++) {
            const char *es = strncmp(r->checks[e].section, "kernel ", 7) == 0
                                 ? "kernels" : r->checks[e].section;
            seen = strcmp(es, hs) == 0;
        }
        if (seen)
            continue;
        printf("\n[%s]\n", hs);
        for (int i = h; i < r->n; i++) {
            const check *c = &r->checks[i];
            int kernel = strncmp(c->section, "kernel ", 7) == 0;
            if (strcmp(kernel ? "kernels" : c->section, hs) != 0)
                continue;
            if (kernel)
                printf("  %s  %s: %s\n", verdict_names[c->v], c->section + 7, c->text);
            else
                printf("  %s  %s\n", verdict_names[c->v], c->text);
        }
    }
    printf("\nsummary: %d checks: %d passed, %d failed, %d warnings, %d skipped\n", r->n,
           r->counts[V_PASS], r->counts[V_FAIL], r->counts[V_WARN], r->counts[V_SKIP]);
    printf("RESULT: %s\n", r->counts[V_FAIL] == 0 ? "CONFORMANT" : "NOT CONFORMANT");
}

static void print_json(const report *r, const plugin_ut *p) {
    printf("{\"plugin\": ");
    json_str(stdout, p->name);
    printf(", \"path\": ");
    json_str(stdout, p->path);
    printf(", \"core\": ");
    json_str(stdout, floe_version());
    printf(", \"plugin_abi\": \"%d.%d\", \"conformant\": %s,\n", FLOE_PLUGIN_ABI_MAJOR,
           FLOE_PLUGIN_ABI_MINOR, r->counts[V_FAIL] == 0 ? "true" : "false");
    printf(" \"summary\": {\"pass\": %d, \"fail\": %d, \"warn\": %d, \"skip\": %d},\n",
           r->counts[V_PASS], r->counts[V_FAIL], r->counts[V_WARN], r->counts[V_SKIP]);
    printf(" \"checks\": [");
    for (int i = 0; i < r->n; i++) {
        printf("%s\n  {\"result\": \"%s\", \"section\": ", i ? "," : "",
               verdict_names[r->checks[i].v]);
        json_str(stdout, r->checks[i].section);
        printf(", \"text\": ");
        json_str(stdout, r->checks[i].text);
        printf("}");
    }
    printf("\n]}\n");
}

int floe_tool_conformance(const char *plugin_path, int no_system, int argc, char **argv) {
    static plugin_ut p;
    static op_sig sigs[512];
    report r = {0};
    int json = 0, verbose = 0;
    const char *file = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_conformance, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end != '\0' || t < 1 || t > 86400) {
                fprintf(stderr, "floe: --timeout takes 1 to 86400 seconds, not '%s'\n\n%s",
                        argv[i], usage_conformance);
                return EXIT_USAGE;
            }
            child_timeout = (int)t;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "floe: unknown option '%s'\n\n%s", argv[i], usage_conformance);
            return EXIT_USAGE;
        } else if (file != NULL) {
            fprintf(stderr, "floe: unexpected argument '%s'\n\n%s", argv[i], usage_conformance);
            return EXIT_USAGE;
        } else {
            file = argv[i];
        }
    }
    if (file == NULL) {
        fprintf(stderr, "floe: conformance needs a plugin file\n\n%s", usage_conformance);
        return EXIT_USAGE;
    }
    if (access(file, R_OK) != 0) {
        fprintf(stderr, "floe: conformance: cannot read %s: %s\n", file, strerror(errno));
        return EXIT_RUNTIME;
    }
    /* dlopen needs a path with a slash to avoid the library search. */
    char *abs = realpath(file, NULL);
    if (abs == NULL) {
        fprintf(stderr, "floe: conformance: %s: %s\n", file, strerror(errno));
        return EXIT_RUNTIME;
    }
    memset(&p, 0, sizeof(p));
    p.path = abs;
    p.search_path = plugin_path;
    p.no_system = no_system;
    if (name_from_path(abs, p.name, sizeof(p.name)) != 0) {
        fprintf(stderr, "floe: conformance: %s is not a plugin file name (floe_<name>.so)\n",
                file);
        free(abs);
        return EXIT_RUNTIME;
    }

    /* 1. Descriptor and registration. */
    char devices[64][48];
    desc_ctx dc = {&p, "start", devices, 0};
    child_out co;
    if (run_child(descriptor_child, &p, &co) != 0) {
        fprintf(stderr, "floe: conformance: cannot fork: %s\n", strerror(errno));
        free(abs);
        return EXIT_RUNTIME;
    }
    collect(&r, &co, on_desc_line, &dc);
    free(co.buf);
    if (child_died(&co)) {
        char death[128];
        describe_death(&co, death, sizeof(death));
        rep_addf(&r, V_FAIL, strcmp(dc.phase, "init") == 0 ? "registration" : "descriptor",
                 "the plugin %s %s", death,
                 strcmp(dc.phase, "start") == 0 ? "while its descriptor was read"
                 : strcmp(dc.phase, "opened") == 0 ? "in score() or init()"
                 : strcmp(dc.phase, "teardown") == 0 ? "in destroy() or deinit()"
                                                    : "after init()");
    } else if (strcmp(dc.phase, "done") == 0) {
        p.init_ok = 1;
        p.ndevices = dc.ndev;
    }

    /* 2. Loading into a real core; 3. kernels. */
    if (p.init_ok) {
        load_ctx lc = {sigs, 0, 0, 0};
        if (run_child(load_child, &p, &co) == 0) {
            collect(&r, &co, on_load_line, &lc);
            free(co.buf);
            if (child_died(&co)) {
                char death[128];
                describe_death(&co, death, sizeof(death));
                rep_addf(&r, V_FAIL, "loading", "loading into the core %s", death);
            }
        }
        p.loaded = lc.loaded;
        for (int i = 0; lc.loaded && i < p.nkernels; i++) {
            int seen = 0;
            for (int k = 0; k < i && !seen; k++)
                seen = strcmp(p.kernels[k].op, p.kernels[i].op) == 0 &&
                       strcmp(p.kernels[k].device, p.kernels[i].device) == 0;
            if (seen)
                continue;
            for (int s = 0; s < lc.nsigs; s++)
                if (strcmp(sigs[s].name, p.kernels[i].op) == 0) {
                    if (!lc.ref_cpu)
                        for (int k = 0; k < sigs[s].nk; k++)
                            if (sigs[s].k[k].plugin[0] == '=')
                                sigs[s].k[k].device[0] = '\0'; /* no CPU to run them */
                    test_kernel(&r, &p, &sigs[s], p.kernels[i].device, verbose);
                }
        }
        if (lc.loaded && p.nkernels == 0 && p.ndevices == 0 && p.nfilesystems == 0 &&
            p.ntransports == 0 && p.nops == 0)
            rep_addf(&r, V_WARN, "kernels", "the plugin registers nothing");
    }

    /* 4. Device battery. */
    for (int d = 0; p.init_ok && d < p.ndevices; d++) {
        char sec[64];
        snprintf(sec, sizeof(sec), "device %.48s", devices[d]);
        for (int t = 0; t < DT_COUNT; t++) {
            dev_job dj = {&p, d, t};
            int teardown = 0;
            if (run_child(device_child, &dj, &co) != 0)
                continue;
            collect(&r, &co, on_device_line, &teardown);
            if (child_died(&co)) {
                char death[128];
                describe_death(&co, death, sizeof(death));
                rep_addf(&r, V_FAIL, sec, "%s: the device %s%s", dev_test_names[t], death,
                         teardown ? " in destroy() or deinit()" : "");
            }
            free(co.buf);
        }
    }

    if (json)
        print_json(&r, &p);
    else
        print_text(&r, &p, NULL);
    int rc = r.counts[V_FAIL] == 0 ? EXIT_OK : EXIT_RUNTIME;
    rep_free(&r);
    for (int i = 0; i < p.nops; i++)
        free(p.ops[i]);
    for (int i = 0; i < p.nkernels; i++) {
        free(p.kernels[i].op);
        free(p.kernels[i].device);
    }
    for (int i = 0; i < p.ngrads; i++)
        free(p.grads[i]);
    free(abs);
    return rc;
}
