/*
 * floe/floe.h - the umbrella header of libfloe, and the runtime context.
 *
 * A floe_context is one Floe runtime: the plugins it loaded, the ops, kernels,
 * devices and filesystems they registered, and one thread pool shared by the
 * executor and the kernels.  Applications usually make one.
 *
 * Errors: every call that can fail returns a floe_status; the message of the most
 * recent failure on the calling thread is floe_last_error(), valid until the next
 * failing Floe call on that thread (like dlerror()).  Nothing an application or a
 * plugin does makes the core abort.
 *
 * Anything not declared in the headers under floe/ is not API.
 */
#ifndef FLOE_FLOE_H
#define FLOE_FLOE_H

#include <floe/types.h>
#include <floe/tensor.h>
#include <floe/graph.h>
#include <floe/session.h>
#include <floe/fs.h>
#include <floe/gradients.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------------- */

#define FLOE_VERSION_MAJOR 0
#define FLOE_VERSION_MINOR 2
#define FLOE_VERSION_PATCH 0

/* "0.2.0" of the library actually loaded (which may differ from the header). */
FLOE_API const char *floe_version(void);

/* ---- Errors --------------------------------------------------------------------- */

/* "OK", "INVALID_ARGUMENT", ... (gRPC names); "UNKNOWN_STATUS" for other values. */
FLOE_API const char *floe_status_str(floe_status st);
/* Message of the last failure on this thread; "" if none.  (transfer none) */
FLOE_API const char *floe_last_error(void);
/* Records @fmt as this thread's floe_last_error() and returns @code (FLOE_OK clears the
 * message), so that libraries built on libfloe (libfloe_io, libfloe_keras) report their
 * failures the same way: `return floe_set_error(FLOE_DATA_LOSS, "%s: bad CRC", path);`. */
FLOE_API floe_status floe_set_error(floe_status code, const char *fmt, ...) FLOE_PRINTF(2, 3);

/* ---- Context ------------------------------------------------------------------- */

typedef enum floe_log_level {
    FLOE_LOG_DEBUG = 0,
    FLOE_LOG_INFO = 1,
    FLOE_LOG_WARNING = 2,
    FLOE_LOG_ERROR = 3,
    FLOE_LOG_NONE = 4
} floe_log_level;

/* Receives log lines; @msg has no trailing newline.  May be called from any thread. */
typedef void (*floe_log_fn)(void *arg, floe_log_level level, const char *msg);

/*
 * Context options.  Initialise with floe_context_options_init(), then set fields.
 * Fields are only appended; struct_size says which the caller knows.
 */
typedef struct floe_context_options {
    size_t struct_size;
    /* Plugin search path: ':'-separated directories or .so files, searched first.
     * NULL: the FLOE_PLUGIN_PATH environment variable. */
    const char *plugin_path;
    /* Search the installed plugin directory after the path (default 1).  The
     * environment variable FLOE_PLUGIN_SYSTEM_PATH="" also turns it off. */
    int system_plugins;
    /* Comma-separated plugin names to load (NULL: all); FLOE_PLUGIN_ALLOW if NULL. */
    const char *allow;
    /* Comma-separated plugin names never to load; FLOE_PLUGIN_DENY if NULL. */
    const char *deny;
    /* Load no plugins at all (for tests and embedders that register statically). */
    int no_plugins;
    /* Threads in the shared pool, caller included; 0: FLOE_NUM_THREADS or the cores. */
    int num_threads;
    /* Messages below this level are dropped; default FLOE_LOG_WARNING, or FLOE_LOG_LEVEL. */
    floe_log_level log_level;
    /* (nullable) log sink; NULL writes to stderr. */
    floe_log_fn log_fn;
    void *log_arg;
} floe_context_options;

FLOE_API void floe_context_options_init(floe_context_options *opts);

/*
 * floe_context_new: creates a runtime and loads plugins.
 * @opts: (nullable) NULL for defaults.
 * A plugin that fails to load is recorded (floe_context_plugin()) and skipped; it never
 * makes this call fail.  Returns FLOE_RESOURCE_EXHAUSTED or FLOE_INVALID_ARGUMENT
 * (bad options) only.  (transfer full)
 */
FLOE_API floe_status floe_context_new(const floe_context_options *opts, floe_context **out);
/* Frees the context: calls each plugin's deinit (reverse load order), stops threads.
 * Plugins stay mapped (never dlclose'd).  Every graph and session must be freed first.
 * NULL-safe. */
FLOE_API void floe_context_free(floe_context *ctx);

/* Loads one more plugin file now (path to a .so).  The result, loaded or rejected, is
 * recorded like the others; the return value says which (FLOE_OK when loaded). */
FLOE_API floe_status floe_context_load_plugin(floe_context *ctx, const char *path);

/* The shared thread pool (transfer none) and its size, caller included. */
FLOE_API floe_threadpool *floe_context_threadpool(floe_context *ctx);
FLOE_API int floe_context_num_threads(const floe_context *ctx);

/* ---- Plugins --------------------------------------------------------------------- */

typedef struct floe_plugin_info {
    size_t struct_size;
    const char *name;         /* from the descriptor, or the file name if none */
    const char *path;         /* the file */
    const char *version;      /* plugin's own version string; "" if unknown */
    const char *vendor;
    const char *license;
    uint32_t abi_major;       /* ABI the plugin was built against; 0 if unknown */
    uint32_t abi_minor;
    int loaded;               /* 1: loaded and registered; 0: rejected */
    const char *reason;       /* why it was rejected; "" when loaded */
    const char *note;         /* what the plugin said of itself ("no GPU found") */
    int num_ops, num_kernels, num_devices, num_filesystems, num_transports;
    /* 1: not loaded by design rather than by error (score() 0, a CPU feature missing,
     * the allow or deny list, a copy shadowed by one found earlier); then @reason says
     * why.  0 otherwise. */
    int skipped;
} floe_plugin_info;

/* Number of plugins tried, loaded or rejected, in load order. */
FLOE_API int floe_context_num_plugins(const floe_context *ctx);
/* Fills @info for the @i-th plugin (strings lent, valid while @ctx lives).
 * FLOE_OUT_OF_RANGE for a bad index. */
FLOE_API floe_status floe_context_plugin(const floe_context *ctx, int i, floe_plugin_info *info);

/* ---- Ops, kernels and devices (introspection) ---------------------------------------- */

FLOE_API int floe_context_num_ops(const floe_context *ctx);
/* Name of the @i-th registered op in name order; NULL when out of range. */
FLOE_API const char *floe_context_op_name(const floe_context *ctx, int i);
/* Writes a human-readable description of op @name (spec, kernels per device, the
 * plugin that defined it) into @buf, truncated to @len bytes with a NUL.  Returns
 * FLOE_NOT_FOUND for an unknown op. */
FLOE_API floe_status floe_context_describe_op(const floe_context *ctx, const char *name,
                                              char *buf, size_t len);

typedef struct floe_device_info {
    size_t struct_size;
    const char *name;         /* "/device:CPU:0" */
    const char *type;         /* "CPU", "GPU", ... */
    int index;
    const char *description;  /* "AMD EPYC 9R45 (2 threads, AVX-512)" */
    uint64_t memory_bytes;    /* 0 if unknown */
    const char *plugin;       /* plugin that registered it */
} floe_device_info;

FLOE_API int floe_context_num_devices(const floe_context *ctx);
FLOE_API floe_status floe_context_device(const floe_context *ctx, int i, floe_device_info *info);
/* Finds a device by spec ("CPU:0", "/device:GPU:1", "/job:localhost/device:CPU:0"). */
FLOE_API floe_status floe_context_find_device(const floe_context *ctx, const char *spec,
                                              floe_device **out);

/* A device allocator's statistics (TensorFlow's tf.config.experimental.get_memory_info),
 * in bytes.  The caller sets struct_size; members past it are not written. */
typedef struct floe_memory_stats {
    size_t struct_size;
    uint64_t bytes_in_use;       /* handed out and not yet freed */
    uint64_t peak_bytes_in_use;  /* the most bytes_in_use has been */
    uint64_t bytes_cached;       /* reserved by the allocator, free for reuse */
    uint64_t bytes_limit;        /* the most the allocator may reserve; 0: no limit */
    uint64_t num_allocs;         /* allocations served since the device was set up */
} floe_memory_stats;

/* Fills @out with @dev's memory statistics.  FLOE_INVALID_ARGUMENT for NULL arguments or
 * a struct_size below sizeof(size_t); FLOE_UNIMPLEMENTED when the device's plugin keeps
 * none (@out is then zeroed).  Thread-safe. */
FLOE_API floe_status floe_device_get_memory_stats(const floe_device *dev, floe_memory_stats *out);

/* ---- Thread pool ------------------------------------------------------------------ */

/* Runs @fn over [0, @n) split into chunks of at least @grain, on the pool's threads and
 * the caller's.  Safe to call from inside a pool task (the caller helps, no deadlock).
 * Returns when every chunk has run. */
FLOE_API void floe_threadpool_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                                           void (*fn)(void *arg, int64_t begin, int64_t end),
                                           void *arg);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_FLOE_H */
