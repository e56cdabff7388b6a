/*
 * floe/plugin.h - the plugin ABI: what a Floe plugin exports and what the core hands it.
 *
 * A plugin is a shared object that exports exactly one symbol,
 *
 *     const floe_plugin_desc *floe_plugin_<name>_get_desc(void);
 *
 * where <name> is the file name without a "libfloe_"/"floe_"/"lib" prefix and without
 * ".so" (floe_ops_math.so -> ops_math).  FLOE_PLUGIN_DEFINE() writes it.  The getter
 * returns static data and runs no other code.  The loader then checks the descriptor
 * (ABI major equal to the core's, minor no newer, required members present, the
 * "requires" manifest), calls score() if present, then init().  During init() the
 * plugin registers any mix of op definitions, kernels, gradient functions, devices,
 * filesystems and transports through the host table.  Registrations are held back
 * until init() returns FLOE_OK and none of them collides with an earlier plugin's;
 * otherwise none of them takes effect, and the plugin is recorded as rejected with
 * its file, versions and reason.
 *
 * Plugins never link libfloe: every service comes through `const floe_host *`, and
 * this header maps the natural names (floe_tensor_data(t), ...) onto it, as SQLite's
 * sqlite3ext.h does.  So a plugin includes this header and not floe/floe.h.
 *
 * Versioning: every struct crossing the boundary starts with its size (and, for
 * tables, the ABI version it was built against); members are only ever appended,
 * grouped below by the minor version that added them.  A reader checks the size
 * before touching a member newer than the writer (FLOE_HAS_MEMBER).
 *
 * Ownership: memory that crosses the boundary is allocated and freed with the host's
 * allocator (host->alloc/host->free) or stays with the side that made it; each
 * member below says which.  Strings in descriptors and definitions must stay valid
 * for the life of the process (plugins are never unloaded).
 *
 * Sections: versions; descriptor; op definitions; kernels; gradients; devices;
 * filesystems; transports; the host table; natural names; FLOE_PLUGIN_DEFINE.
 */
#ifndef FLOE_PLUGIN_H
#define FLOE_PLUGIN_H

#include <stdarg.h>
#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions -------------------------------------------------------------------- */

/* Bump the major for anything removed, reordered or retyped (the loader refuses other
 * majors); bump the minor when a member is appended (a plugin built against minor m
 * loads in any core with minor >= m). */
#define FLOE_PLUGIN_ABI_MAJOR 1
#define FLOE_PLUGIN_ABI_MINOR 0

/* True when a struct written against an older minor contains @member: its size covers
 * the member and the member is set.  Use before reading any member newer than 0. */
#define FLOE_HAS_MEMBER(type, ptr, member)                                              \
    ((ptr) != NULL && offsetof(type, member) + sizeof((ptr)->member) <= (ptr)->struct_size \
     && (ptr)->member != NULL)

typedef struct floe_plugin floe_plugin;          /* the core's record of this plugin */
typedef struct floe_host floe_host;
typedef struct floe_shape_ctx floe_shape_ctx;    /* shape inference of one node */
typedef struct floe_kernel_ctx floe_kernel_ctx;  /* one node's kernel, create or compute */
typedef struct floe_grad_ctx floe_grad_ctx;      /* building one op's gradient */
typedef struct floe_variable floe_variable;      /* a resource variable */

/* ---- Descriptor ----------------------------------------------------------------- */

typedef struct floe_plugin_desc {
    /* Header: never moves. */
    uint32_t abi_major;        /* FLOE_PLUGIN_ABI_MAJOR at build time */
    uint32_t abi_minor;        /* FLOE_PLUGIN_ABI_MINOR at build time */
    size_t struct_size;        /* sizeof(floe_plugin_desc) at build time */

    /* minor 0 */
    const char *name;          /* required; [a-z0-9_]+, equals <name> of the entry symbol */
    const char *version;       /* required; the plugin's own version, "1.2.0" */
    const char *vendor;        /* required */
    const char *license;       /* required; SPDX expression */
    const char *description;   /* (optional) one line */
    /* (optional) manifest checked before any plugin code runs: comma-separated CPU
     * features the plugin was compiled for ("avx2,fma,avx512f"); the loader skips the
     * plugin, with that reason, on a CPU without them. */
    const char *requires_cpu;
    /* (optional) 0: cannot run here (for example, no driver), the loader skips it and
     * records the reason the plugin gave through host->set_note(); > 0: can run.
     * Called before init(), may be called without init() ever following. */
    int (*score)(floe_plugin *self, const floe_host *host);
    /* required: register what the plugin offers.  @user (out) is passed to deinit().
     * May be called once per floe_context, so keep per-context state in @user or in
     * the state pointers of what you register, not in globals.  When init() fails it
     * releases what it made itself: the core drops its registrations without calling
     * any destroy() or deinit().  When init() succeeds but its registrations are
     * refused (a conflict), the core calls the destroy() of each device, filesystem
     * and transport it registered, then deinit(). */
    floe_status (*init)(floe_plugin *self, const floe_host *host, void **user);
    /* (optional) undo init(): called at floe_context_free(), after every device and
     * filesystem the plugin registered has been destroyed.  Never called when init()
     * failed.  The library stays mapped. */
    void (*deinit)(void *user);

    /* Append new members here, and bump FLOE_PLUGIN_ABI_MINOR. */
} floe_plugin_desc;

/* ---- Op definitions -------------------------------------------------------------- */

/*
 * An op definition is written as spec strings, the notation of TensorFlow's REGISTER_OP,
 * so it needs no struct layout beyond this one.  Grammar:
 *
 *   input/output:  "NAME: TYPE"         TYPE is a dtype name (f32, int32, resource,
 *                                       string, ...) or the name of a type attr ("T")
 *                  "NAME: N * T"        a list of N tensors of type T (N an int attr)
 *                  "NAME: Tlist"        a list whose dtypes are the list(type) attr
 *   attr:          "NAME: KIND"         KIND: int, float, bool, string, type, shape,
 *                                       tensor, list(int), list(float), list(bool),
 *                                       list(string), list(type), list(shape),
 *                                       list(tensor)
 *                  "T: {f32, f64}"      a type attr restricted to the listed dtypes;
 *                                       "numbertype", "realnumbertype", "floattype",
 *                                       "inttype" and "alltypes" name the usual sets
 *                  "NAME: int >= 1"     a minimum for int attrs
 *                  "... = DEFAULT"      default: 3, -1.5, true, "text", f32, [1, 2],
 *                                       [] or a shape [2, -1]
 *
 * Type attrs that inputs determine are inferred when a node is built; others need a
 * value or a default.
 */
typedef struct floe_op_def {
    size_t struct_size;              /* sizeof(floe_op_def) */
    /* minor 0 */
    const char *name;                /* required: "MatMul" */
    const char *const *inputs;       /* NULL-terminated spec strings; NULL for none */
    const char *const *outputs;      /* NULL-terminated */
    const char *const *attrs;        /* NULL-terminated */
    /* (optional) infers output shapes from input shapes, constant inputs and attrs; may
     * reject the node with host->fail().  NULL: outputs of unknown shape. */
    floe_status (*shape_fn)(floe_shape_ctx *sc);
    uint32_t flags;                  /* FLOE_OP_* */
    const char *doc;                 /* (optional) one paragraph for `floe ops NAME` */
} floe_op_def;

#define FLOE_OP_STATEFUL   0x1u  /* has side effects or state: never folded, deduplicated */
#define FLOE_OP_NO_GRADIENT 0x2u /* not differentiable, by design (Shape, ArgMax, ...) */

/* ---- Kernels ------------------------------------------------------------------- */

typedef struct floe_kernel_def {
    size_t struct_size;              /* sizeof(floe_kernel_def) */
    /* minor 0 */
    const char *op;                  /* required: op name */
    const char *device_type;         /* required: "CPU", "GPU", ... */
    /* NULL-terminated type constraints ("T: {f32, f64}"); NULL: every type the op
     * definition allows. */
    const char *const *constraints;
    /* Among kernels matching a node on one device type, the highest priority wins.  Two
     * kernels with the same op, device type and priority from different plugins are a
     * conflict (the later plugin is rejected); a higher priority overrides by design. */
    int32_t priority;
    /* (optional) called once per node when a plan is prepared: read attrs and dtypes,
     * build caches.  *@state (out) is passed to compute and destroy. */
    floe_status (*create)(floe_kernel_ctx *kc, void **state);
    /* required: computes one node; may run on any thread, concurrently for different
     * nodes (and for the same node from concurrent session runs).  Errors through
     * host->fail(); the core adds the node's name. */
    floe_status (*compute)(floe_kernel_ctx *kc, void *state);
    void (*destroy)(void *state);    /* (optional) */
    /* (optional) NULL-terminated names of input and output args that live in host memory
     * even on a device (shape tensors, axes): the core copies them there. */
    const char *const *host_memory;
} floe_kernel_def;

/* ---- Gradients ------------------------------------------------------------------- */

/* Adds the gradient of one op to a graph through the host's grad_* services: reads
 * the forward node and the gradients of its outputs, adds nodes, and declares the
 * gradients of its inputs with grad_set_input_grad().  Errors through host->fail(). */
typedef floe_status (*floe_grad_fn)(floe_grad_ctx *gc);

/* ---- Devices ------------------------------------------------------------------- */

typedef struct floe_device_memory_stats {
    size_t struct_size;
    uint64_t bytes_in_use;
    uint64_t peak_bytes_in_use;
    uint64_t bytes_cached;      /* held by the device's allocator, not in use */
    uint64_t bytes_limit;       /* 0 if none */
    uint64_t num_allocs;
} floe_device_memory_stats;

/*
 * The operations of one device.  @dev is the state pointer given in floe_device_desc.
 * All members may be called from any thread, concurrently.
 */
typedef struct floe_device_ops {
    uint32_t abi_major;          /* FLOE_PLUGIN_ABI_MAJOR at build time */
    uint32_t abi_minor;
    size_t struct_size;          /* sizeof(floe_device_ops) at build time */

    /* minor 0: required */
    /* Device memory of @nbytes (> 0), aligned to at least 64 bytes.  FLOE_RESOURCE_EXHAUSTED
     * when none is left. */
    floe_status (*alloc)(void *dev, size_t nbytes, void **out);
    void (*free)(void *dev, void *ptr, size_t nbytes);                    /* ptr may be NULL */
    floe_status (*copy_to_device)(void *dev, void *dst, const void *host_src, size_t n);
    floe_status (*copy_from_device)(void *dev, void *host_dst, const void *src, size_t n);
    floe_status (*copy_on_device)(void *dev, void *dst, const void *src, size_t n);
    /* Waits for all work queued on the device. */
    floe_status (*synchronize)(void *dev);

    /* minor 0: (optional) */
    /* Device-to-device copy between two devices of this plugin; NULL: through the host. */
    floe_status (*copy_peer)(void *dst_dev, void *dst, void *src_dev, const void *src, size_t n);
    /* Vendor extras by name ("floe_cpu_sgemm"); NULL: none. */
    void *(*proc_address)(void *dev, const char *symbol);
    floe_status (*memory_stats)(void *dev, floe_device_memory_stats *out);
    /* Releases @dev at floe_context_free(). */
    void (*destroy)(void *dev);

    /* Append new members here, and bump FLOE_PLUGIN_ABI_MINOR. */
} floe_device_ops;

#define FLOE_DEVICE_HOST_MEMORY 0x1u  /* memory is ordinary host memory (CPU-like) */

typedef struct floe_device_desc {
    size_t struct_size;
    /* minor 0 */
    const char *type;            /* required: [A-Z][A-Z0-9_]*, "CPU", "GPU", "TPU" */
    int32_t index;               /* 0, 1, ... within the type */
    /* Placement preference between device types: a node goes to the highest-priority
     * device that has a kernel for it.  CPU uses 0, GPUs 100. */
    int32_t priority;
    uint32_t flags;              /* FLOE_DEVICE_* */
    const char *description;     /* copied by the core */
    uint64_t memory_bytes;       /* 0 if unknown */
    const floe_device_ops *ops;  /* required; must outlive the context */
    void *state;                 /* passed to every op */
} floe_device_desc;

/* ---- Filesystems ------------------------------------------------------------------ */


/*
 * A filesystem for one URI scheme.  Every member gets the full URI.  Errors through
 * host->fail(): FLOE_NOT_FOUND for a missing file, FLOE_PERMISSION_DENIED,
 * FLOE_UNAVAILABLE for transient failures worth retrying, with a message that names
 * the URI.
 */
typedef struct floe_fs_ops {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /* minor 0: required */
    const char *scheme;          /* "s3" (lower case, no "://") */
    uint32_t caps;               /* FLOE_FS_CAP_* */
    void *state;                 /* passed to every op */
    floe_status (*open_read)(void *fs, const char *uri, void **file);
    floe_status (*pread)(void *file, uint64_t offset, void *buf, size_t n, size_t *nread);
    void (*close_read)(void *file);
    /* Writes become visible at close_write(@commit = 1); @commit = 0 discards them. */
    floe_status (*open_write)(void *fs, const char *uri, int append, void **file);
    floe_status (*write)(void *file, const void *buf, size_t n);
    floe_status (*close_write)(void *file, int commit);
    floe_status (*stat)(void *fs, const char *uri, floe_file_info *info);
    floe_status (*list)(void *fs, const char *uri,
                        void (*fn)(void *arg, const char *name, const floe_file_info *info),
                        void *arg);
    floe_status (*remove)(void *fs, const char *uri);
    floe_status (*mkdir)(void *fs, const char *uri);
    /* Atomic only when caps has FLOE_FS_CAP_ATOMIC_RENAME. */
    floe_status (*rename)(void *fs, const char *from, const char *to);

    /* minor 0: (optional) */
    void (*destroy)(void *fs);

    /* Append new members here, and bump FLOE_PLUGIN_ABI_MINOR. */
} floe_fs_ops;

/* ---- Transports (experimental: FLOE_TRANSPORT_ABI_MAJOR 0 may change) ----------------- */

#define FLOE_TRANSPORT_ABI_MAJOR 0
#define FLOE_TRANSPORT_ABI_MINOR 2

/* Serves one RPC: @req is lent; *@resp (out) is allocated with host->alloc and freed
 * by the transport after sending.  On failure *@resp (nullable) may hold the error
 * message (text of *@resp_len bytes, host->alloc), which the client receives with the
 * status.  Called on a thread of the transport, concurrently for concurrent calls; may
 * block (each call has its own thread). */
typedef floe_status (*floe_rpc_handler)(void *arg, const char *method, const void *req,
                                        size_t req_len, void **resp, size_t *resp_len);

/*
 * A transport for the distributed runtime: unary RPCs carrying serialized messages.
 * Tables of this experimental ABI are checked against FLOE_TRANSPORT_ABI_MAJOR, not
 * the plugin ABI.
 */
typedef struct floe_transport_ops {
    uint32_t abi_major;          /* FLOE_TRANSPORT_ABI_MAJOR */
    uint32_t abi_minor;
    size_t struct_size;

    const char *name;            /* "grpc" */
    void *state;
    floe_status (*connect)(void *tp, const char *target, int64_t deadline_ms, void **conn);
    void (*disconnect)(void *conn);
    /* *@resp (out) allocated with host->alloc; the caller frees it with host->free. */
    floe_status (*call)(void *conn, const char *method, const void *req, size_t req_len,
                        void **resp, size_t *resp_len, int64_t deadline_ms);
    floe_status (*serve)(void *tp, const char *address, floe_rpc_handler handler, void *arg,
                         void **server);
    void (*shutdown)(void *server);
    void (*destroy)(void *tp);   /* (optional) */

    /* -- minor 2 (optional; NULL: the transport does not offer it) --------------------
     * Deadlines: every @deadline_ms above is relative, in milliseconds from the call;
     * <= 0 means none.  A call past its deadline returns FLOE_DEADLINE_EXCEEDED. */
    /* Sets a configuration option (credentials, limits) read by later connect() and
     * serve() calls; the keys are the transport's (dist_grpc: plugins/dist_grpc/README.md).
     * FLOE_INVALID_ARGUMENT for an unknown key or a bad value.  Not thread-safe
     * against connect/serve on the same @tp. */
    floe_status (*set_option)(void *tp, const char *key, const char *value);
    /* Cancels every call in flight on @conn and every later one (FLOE_CANCELLED).
     * Thread-safe: meant to be called while another thread waits in call(). */
    void (*cancel)(void *conn);
    /* The TCP port @server listens on (serve() with port 0 picks one); -1 if unknown. */
    int (*server_port)(void *server);

    /* Append new members here, and bump FLOE_TRANSPORT_ABI_MINOR. */
} floe_transport_ops;

/* ---- The host table ------------------------------------------------------------- */

typedef enum floe_plugin_log_level {
    FLOE_PLUGIN_LOG_DEBUG = 0,
    FLOE_PLUGIN_LOG_INFO = 1,
    FLOE_PLUGIN_LOG_WARNING = 2,
    FLOE_PLUGIN_LOG_ERROR = 3
} floe_plugin_log_level;

/*
 * The services the core offers plugins.  One table per process, valid for the life of
 * the process; check host->abi_minor (or FLOE_HAS_MEMBER) before using a member newer
 * than minor 0.  Every member is thread-safe unless it says otherwise.
 */
struct floe_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /* -- minor 0: memory, errors, logging ---------------------------------------- */
    /* Host memory aligned to @align (a power of two, or 0 for 64); NULL when exhausted.
     * Free with host->free. */
    void *(*alloc)(size_t nbytes, size_t align);
    void (*free)(void *ptr);
    /* Records a message for the current failure on this thread and returns @code, so a
     * plugin writes `return host->fail(FLOE_INVALID_ARGUMENT, "axis %d", axis);`. */
    floe_status (*fail)(floe_status code, const char *fmt, ...) FLOE_PRINTF(2, 3);
    floe_status (*vfail)(floe_status code, const char *fmt, va_list ap);
    void (*log)(floe_plugin *self, floe_plugin_log_level level, const char *fmt, ...)
        FLOE_PRINTF(3, 4);
    /* A short note on the plugin's state, shown by `floe plugins` ("no CUDA driver:
     * ..."); also the reason recorded when score() returns 0. */
    void (*set_note)(floe_plugin *self, const char *fmt, ...) FLOE_PRINTF(2, 3);

    /* -- minor 0: registration, only during init() ----------------------------------
     * Definitions are copied where marked; pointers in them (functions, spec strings,
     * ops tables) must stay valid for the life of the process.  A malformed definition
     * fails here with FLOE_INVALID_ARGUMENT and a message; init() should return it. */
    floe_status (*register_op)(floe_plugin *self, const floe_op_def *def);
    floe_status (*register_kernel)(floe_plugin *self, const floe_kernel_def *def);
    floe_status (*register_gradient)(floe_plugin *self, const char *op, floe_grad_fn fn);
    floe_status (*register_device)(floe_plugin *self, const floe_device_desc *desc);
    floe_status (*register_filesystem)(floe_plugin *self, const floe_fs_ops *ops);
    floe_status (*register_transport)(floe_plugin *self, const floe_transport_ops *ops);

    /* -- minor 0: dtypes and tensors (see floe/tensor.h for each) -------------------- */
    size_t (*dtype_size)(floe_dtype dtype);
    const char *(*dtype_name)(floe_dtype dtype);
    floe_status (*tensor_new)(floe_dtype dtype, const int64_t *shape, int ndim,
                              floe_tensor **out);
    floe_tensor *(*tensor_ref)(floe_tensor *t);
    void (*tensor_unref)(floe_tensor *t);
    floe_dtype (*tensor_dtype)(const floe_tensor *t);
    int (*tensor_ndim)(const floe_tensor *t);
    int64_t (*tensor_dim)(const floe_tensor *t, int i);
    const int64_t *(*tensor_shape)(const floe_tensor *t);
    int64_t (*tensor_num_elements)(const floe_tensor *t);
    size_t (*tensor_nbytes)(const floe_tensor *t);
    void *(*tensor_data)(const floe_tensor *t);
    floe_device *(*tensor_device)(const floe_tensor *t);
    floe_status (*tensor_set_string)(floe_tensor *t, int64_t index, const void *bytes,
                                     size_t size);
    floe_status (*tensor_get_string)(const floe_tensor *t, int64_t index, const char **bytes,
                                     size_t *size);
    /* 1 when @t holds the only reference to its buffer, so it may be written in place. */
    int (*tensor_is_exclusive)(const floe_tensor *t);

    /* -- minor 0: attributes (see floe/graph.h) --------------------------------------- */
    floe_attr_type (*attrs_type)(const floe_attrs *a, const char *name);
    floe_status (*attrs_get_int)(const floe_attrs *a, const char *name, int64_t *v);
    floe_status (*attrs_get_float)(const floe_attrs *a, const char *name, float *v);
    floe_status (*attrs_get_bool)(const floe_attrs *a, const char *name, int *v);
    floe_status (*attrs_get_string)(const floe_attrs *a, const char *name, const char **s,
                                    size_t *len);
    floe_status (*attrs_get_type)(const floe_attrs *a, const char *name, floe_dtype *v);
    floe_status (*attrs_get_shape)(const floe_attrs *a, const char *name, floe_shape *v);
    floe_status (*attrs_get_tensor)(const floe_attrs *a, const char *name, floe_tensor **v);
    floe_status (*attrs_get_int_list)(const floe_attrs *a, const char *name,
                                      const int64_t **v, int *n);
    floe_status (*attrs_get_float_list)(const floe_attrs *a, const char *name,
                                        const float **v, int *n);
    floe_status (*attrs_get_type_list)(const floe_attrs *a, const char *name,
                                       const floe_dtype **v, int *n);

    /* -- minor 0: shape inference (only inside an op's shape_fn) ---------------------- */
    const floe_attrs *(*shape_attrs)(const floe_shape_ctx *sc);
    const char *(*shape_node_name)(const floe_shape_ctx *sc);
    int (*shape_num_inputs)(const floe_shape_ctx *sc);       /* lists flattened */
    int (*shape_num_outputs)(const floe_shape_ctx *sc);
    floe_dtype (*shape_input_dtype)(const floe_shape_ctx *sc, int i);
    floe_shape (*shape_input)(const floe_shape_ctx *sc, int i);
    /* The value of input @i when the graph knows it (a Const), else NULL.  Lent. */
    floe_tensor *(*shape_input_value)(const floe_shape_ctx *sc, int i);
    floe_status (*shape_set_output)(floe_shape_ctx *sc, int i, const floe_shape *s);

    /* -- minor 0: kernels (inside create/compute) ------------------------------------ */
    const floe_attrs *(*kernel_attrs)(const floe_kernel_ctx *kc);
    const char *(*kernel_node_name)(const floe_kernel_ctx *kc);
    int (*kernel_num_inputs)(const floe_kernel_ctx *kc);     /* lists flattened */
    int (*kernel_num_outputs)(const floe_kernel_ctx *kc);
    floe_dtype (*kernel_input_dtype)(const floe_kernel_ctx *kc, int i);
    floe_dtype (*kernel_output_dtype)(const floe_kernel_ctx *kc, int i);
    /* Static shape of input @i as inferred at graph build time (valid in create). */
    floe_shape (*kernel_input_static_shape)(const floe_kernel_ctx *kc, int i);
    /* compute only: input @i (lent for the duration of compute). */
    floe_tensor *(*kernel_input)(const floe_kernel_ctx *kc, int i);
    /* compute only: allocates output @i on the node's device (lent: the core owns it). */
    floe_status (*kernel_alloc_output)(floe_kernel_ctx *kc, int i, const int64_t *shape,
                                       int ndim, floe_tensor **out);
    /* compute only: like alloc_output, but reuses input @in's buffer when it is
     * exclusively owned and of the same byte size, for in-place elementwise kernels. */
    floe_status (*kernel_forward_or_alloc)(floe_kernel_ctx *kc, int in, int i,
                                           const int64_t *shape, int ndim, floe_tensor **out);
    /* compute only: makes @t output @i (the core takes its own reference). */
    floe_status (*kernel_set_output)(floe_kernel_ctx *kc, int i, floe_tensor *t);
    floe_device *(*kernel_device)(const floe_kernel_ctx *kc);
    floe_threadpool *(*kernel_threadpool)(const floe_kernel_ctx *kc);

    /* -- minor 0: devices and threads ------------------------------------------------ */
    /* The device's vendor extra @symbol (floe_device_ops.proc_address), or NULL. */
    void *(*device_proc_address)(floe_device *dev, const char *symbol);
    /* See floe_threadpool_parallel_for() in floe/floe.h. */
    void (*parallel_for)(floe_threadpool *pool, int64_t n, int64_t grain,
                         void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);
    int (*threadpool_size)(const floe_threadpool *pool);

    /* -- minor 0: resource variables (kernels of the Var* ops) ------------------------- */
    /* A new scalar RESOURCE tensor naming variable @shared_name in @container of the
     * session running @kc; @dtype and @shape describe the variable. (transfer full) */
    floe_status (*kernel_resource_handle)(floe_kernel_ctx *kc, const char *container,
                                          const char *shared_name, floe_dtype dtype,
                                          const floe_shape *shape, floe_tensor **out);
    /* The variable a RESOURCE tensor names, created uninitialised if @create. Lent: it
     * lives as long as the session.  FLOE_NOT_FOUND if absent and !@create. */
    floe_status (*kernel_variable)(floe_kernel_ctx *kc, const floe_tensor *handle, int create,
                                   floe_variable **out);
    void (*variable_lock)(floe_variable *v, int exclusive);
    void (*variable_unlock)(floe_variable *v);
    /* Under the lock: the current value (lent), or NULL if uninitialised. */
    floe_tensor *(*variable_value)(floe_variable *v);
    /* Under an exclusive lock: replaces the value (the variable takes a reference). */
    floe_status (*variable_assign)(floe_variable *v, floe_tensor *value);
    /* Under an exclusive lock: the value made exclusive (copied if shared, so readers
     * holding the old value keep it), to update in place.  Lent. */
    floe_status (*variable_value_for_update)(floe_variable *v, floe_tensor **out);
    /* The dtype and shape the handle declared. */
    floe_dtype (*variable_dtype)(const floe_variable *v);

    /* -- minor 0: views --------------------------------------------------------------- */
    /* A tensor sharing @t's buffer with another shape of the same element count (see
     * floe_tensor_reshape in floe/tensor.h): Reshape, ExpandDims and Squeeze copy
     * nothing. (transfer full) */
    floe_status (*tensor_reshape)(floe_tensor *t, const int64_t *shape, int ndim,
                                  floe_tensor **out);
    /* The data pointer in the memory of the tensor's device (floe_tensor_device()),
     * for device kernels: tensor_data() is NULL for memory the host cannot address.
     * NULL when the tensor has no elements. (transfer none) */
    void *(*tensor_device_data)(const floe_tensor *t);

    /* -- minor 0: gradients (inside a floe_grad_fn; see floe/gradients.h) --------------
     * A gradient function reads the forward node and the gradients flowing into its
     * outputs, adds nodes computing the gradients of its inputs, and declares them with
     * grad_set_input_grad().  Inputs left unset get no gradient (indices, shapes). */
    const floe_attrs *(*grad_attrs)(const floe_grad_ctx *gc);     /* the forward node's */
    const char *(*grad_node_name)(const floe_grad_ctx *gc);
    const char *(*grad_op)(const floe_grad_ctx *gc);
    int (*grad_num_inputs)(const floe_grad_ctx *gc);              /* lists flattened */
    int (*grad_num_outputs)(const floe_grad_ctx *gc);
    floe_output (*grad_input)(const floe_grad_ctx *gc, int i);    /* forward input @i */
    floe_output (*grad_output)(const floe_grad_ctx *gc, int i);   /* forward output @i */
    /* dL/d(output @i); .node == NULL when no gradient reaches that output (read: zeros). */
    floe_output (*grad_upstream)(const floe_grad_ctx *gc, int i);
    /* dtype and inferred static shape of any edge of the graph. */
    floe_dtype (*grad_edge_dtype)(const floe_grad_ctx *gc, floe_output o);
    floe_shape (*grad_edge_shape)(const floe_grad_ctx *gc, floe_output o);
    /* Declares dL/d(input @i).  Setting it twice is an error. */
    floe_status (*grad_set_input_grad)(floe_grad_ctx *gc, int i, floe_output grad);
    /* Adds a node running @op to the graph, named after the forward node.  @inputs are
     * flattened in op-definition order (an op with one list argument takes the extra
     * inputs there); @attrs may be NULL (type attrs are inferred).  *@out (transfer none)
     * belongs to the graph.  Errors name the forward node. */
    floe_status (*grad_add_node)(floe_grad_ctx *gc, const char *op, const floe_output *inputs,
                                 int ninputs, const floe_attrs *attrs, floe_node **out);
    /* A scalar constant of @dtype holding @v (converted), added to the graph. */
    floe_status (*grad_const_scalar)(floe_grad_ctx *gc, floe_dtype dtype, double v,
                                     floe_output *out);

    /* -- minor 0: attribute sets built by plugins (for grad_add_node) ------------------ */
    floe_status (*attrs_new)(floe_attrs **out);
    void (*attrs_free)(floe_attrs *a);
    floe_status (*attrs_set_int)(floe_attrs *a, const char *name, int64_t v);
    floe_status (*attrs_set_float)(floe_attrs *a, const char *name, float v);
    floe_status (*attrs_set_bool)(floe_attrs *a, const char *name, int v);
    floe_status (*attrs_set_type)(floe_attrs *a, const char *name, floe_dtype v);
    floe_status (*attrs_set_string)(floe_attrs *a, const char *name, const void *s, size_t len);
    floe_status (*attrs_set_shape)(floe_attrs *a, const char *name, const int64_t *dims,
                                   int ndim);
    floe_status (*attrs_set_int_list)(floe_attrs *a, const char *name, const int64_t *v, int n);
    floe_status (*attrs_set_tensor)(floe_attrs *a, const char *name, floe_tensor *t);

    /* Append new members here, and bump FLOE_PLUGIN_ABI_MINOR. */
};

/* ---- Natural names (sqlite3ext.h style) ------------------------------------------
 * FLOE_PLUGIN_DEFINE() stores the host table in floe__host; these macros let plugin
 * code call floe_tensor_data(t) instead of floe__host->tensor_data(t).  The core
 * defines FLOE_PLUGIN_NO_NATURAL_NAMES. */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak, visibility("hidden")))
#endif
extern const floe_host *floe__host;

#ifndef FLOE_PLUGIN_NO_NATURAL_NAMES
#  ifdef FLOE_FLOE_H
#    error "a plugin includes <floe/plugin.h>, not <floe/floe.h>: it must not link libfloe"
#  endif
#  define floe_alloc(n, a)                 (floe__host->alloc((n), (a)))
#  define floe_free(p)                     (floe__host->free((p)))
#  define floe_fail(...)                   (floe__host->fail(__VA_ARGS__))
#  define floe_log(...)                    (floe__host->log(__VA_ARGS__))
#  define floe_set_note(...)               (floe__host->set_note(__VA_ARGS__))
#  define floe_register_op(s, d)           (floe__host->register_op((s), (d)))
#  define floe_register_kernel(s, d)       (floe__host->register_kernel((s), (d)))
#  define floe_register_gradient(s, o, f)  (floe__host->register_gradient((s), (o), (f)))
#  define floe_register_device(s, d)       (floe__host->register_device((s), (d)))
#  define floe_register_filesystem(s, o)   (floe__host->register_filesystem((s), (o)))
#  define floe_register_transport(s, o)    (floe__host->register_transport((s), (o)))
#  define floe_dtype_size(d)               (floe__host->dtype_size((d)))
#  define floe_dtype_name(d)               (floe__host->dtype_name((d)))
#  define floe_tensor_new(d, s, n, o)      (floe__host->tensor_new((d), (s), (n), (o)))
#  define floe_tensor_ref(t)               (floe__host->tensor_ref((t)))
#  define floe_tensor_unref(t)             (floe__host->tensor_unref((t)))
#  define floe_tensor_dtype(t)             (floe__host->tensor_dtype((t)))
#  define floe_tensor_ndim(t)              (floe__host->tensor_ndim((t)))
#  define floe_tensor_dim(t, i)            (floe__host->tensor_dim((t), (i)))
#  define floe_tensor_shape(t)             (floe__host->tensor_shape((t)))
#  define floe_tensor_num_elements(t)      (floe__host->tensor_num_elements((t)))
#  define floe_tensor_nbytes(t)            (floe__host->tensor_nbytes((t)))
#  define floe_tensor_data(t)              (floe__host->tensor_data((t)))
#  define floe_tensor_device(t)            (floe__host->tensor_device((t)))
#  define floe_tensor_set_string(t, i, b, n) (floe__host->tensor_set_string((t), (i), (b), (n)))
#  define floe_tensor_get_string(t, i, b, n) (floe__host->tensor_get_string((t), (i), (b), (n)))
#  define floe_tensor_is_exclusive(t)      (floe__host->tensor_is_exclusive((t)))
#  define floe_attrs_type(a, n)            (floe__host->attrs_type((a), (n)))
#  define floe_attrs_get_int(a, n, v)      (floe__host->attrs_get_int((a), (n), (v)))
#  define floe_attrs_get_float(a, n, v)    (floe__host->attrs_get_float((a), (n), (v)))
#  define floe_attrs_get_bool(a, n, v)     (floe__host->attrs_get_bool((a), (n), (v)))
#  define floe_attrs_get_string(a, n, s, l) (floe__host->attrs_get_string((a), (n), (s), (l)))
#  define floe_attrs_get_type(a, n, v)     (floe__host->attrs_get_type((a), (n), (v)))
#  define floe_attrs_get_shape(a, n, v)    (floe__host->attrs_get_shape((a), (n), (v)))
#  define floe_attrs_get_tensor(a, n, v)   (floe__host->attrs_get_tensor((a), (n), (v)))
#  define floe_attrs_get_int_list(a, n, v, c)   (floe__host->attrs_get_int_list((a), (n), (v), (c)))
#  define floe_attrs_get_float_list(a, n, v, c) (floe__host->attrs_get_float_list((a), (n), (v), (c)))
#  define floe_attrs_get_type_list(a, n, v, c)  (floe__host->attrs_get_type_list((a), (n), (v), (c)))
#  define floe_shape_attrs(sc)             (floe__host->shape_attrs((sc)))
#  define floe_shape_node_name(sc)         (floe__host->shape_node_name((sc)))
#  define floe_shape_num_inputs(sc)        (floe__host->shape_num_inputs((sc)))
#  define floe_shape_num_outputs(sc)       (floe__host->shape_num_outputs((sc)))
#  define floe_shape_input_dtype(sc, i)    (floe__host->shape_input_dtype((sc), (i)))
#  define floe_shape_input(sc, i)          (floe__host->shape_input((sc), (i)))
#  define floe_shape_input_value(sc, i)    (floe__host->shape_input_value((sc), (i)))
#  define floe_shape_set_output(sc, i, s)  (floe__host->shape_set_output((sc), (i), (s)))
#  define floe_kernel_attrs(kc)            (floe__host->kernel_attrs((kc)))
#  define floe_kernel_node_name(kc)        (floe__host->kernel_node_name((kc)))
#  define floe_kernel_num_inputs(kc)       (floe__host->kernel_num_inputs((kc)))
#  define floe_kernel_num_outputs(kc)      (floe__host->kernel_num_outputs((kc)))
#  define floe_kernel_input_dtype(kc, i)   (floe__host->kernel_input_dtype((kc), (i)))
#  define floe_kernel_output_dtype(kc, i)  (floe__host->kernel_output_dtype((kc), (i)))
#  define floe_kernel_input_static_shape(kc, i) (floe__host->kernel_input_static_shape((kc), (i)))
#  define floe_kernel_input(kc, i)         (floe__host->kernel_input((kc), (i)))
#  define floe_kernel_alloc_output(kc, i, s, n, o) (floe__host->kernel_alloc_output((kc), (i), (s), (n), (o)))
#  define floe_kernel_forward_or_alloc(kc, in, i, s, n, o) \
      (floe__host->kernel_forward_or_alloc((kc), (in), (i), (s), (n), (o)))
#  define floe_kernel_set_output(kc, i, t) (floe__host->kernel_set_output((kc), (i), (t)))
#  define floe_kernel_device(kc)           (floe__host->kernel_device((kc)))
#  define floe_kernel_threadpool(kc)       (floe__host->kernel_threadpool((kc)))
#  define floe_device_proc_address(d, s)   (floe__host->device_proc_address((d), (s)))
#  define floe_parallel_for(p, n, g, f, a) (floe__host->parallel_for((p), (n), (g), (f), (a)))
#  define floe_threadpool_size(p)          (floe__host->threadpool_size((p)))
#  define floe_kernel_resource_handle(kc, c, n, d, s, o) \
      (floe__host->kernel_resource_handle((kc), (c), (n), (d), (s), (o)))
#  define floe_kernel_variable(kc, h, c, o) (floe__host->kernel_variable((kc), (h), (c), (o)))
#  define floe_variable_lock(v, x)         (floe__host->variable_lock((v), (x)))
#  define floe_variable_unlock(v)          (floe__host->variable_unlock((v)))
#  define floe_variable_value(v)           (floe__host->variable_value((v)))
#  define floe_variable_assign(v, t)       (floe__host->variable_assign((v), (t)))
#  define floe_variable_value_for_update(v, o) (floe__host->variable_value_for_update((v), (o)))
#  define floe_variable_dtype(v)           (floe__host->variable_dtype((v)))
#  define floe_tensor_reshape(t, s, n, o)  (floe__host->tensor_reshape((t), (s), (n), (o)))
#  define floe_tensor_device_data(t)       (floe__host->tensor_device_data((t)))
#  define floe_grad_attrs(gc)              (floe__host->grad_attrs((gc)))
#  define floe_grad_node_name(gc)          (floe__host->grad_node_name((gc)))
#  define floe_grad_op(gc)                 (floe__host->grad_op((gc)))
#  define floe_grad_num_inputs(gc)         (floe__host->grad_num_inputs((gc)))
#  define floe_grad_num_outputs(gc)        (floe__host->grad_num_outputs((gc)))
#  define floe_grad_input(gc, i)           (floe__host->grad_input((gc), (i)))
#  define floe_grad_output(gc, i)          (floe__host->grad_output((gc), (i)))
#  define floe_grad_upstream(gc, i)        (floe__host->grad_upstream((gc), (i)))
#  define floe_grad_edge_dtype(gc, o)      (floe__host->grad_edge_dtype((gc), (o)))
#  define floe_grad_edge_shape(gc, o)      (floe__host->grad_edge_shape((gc), (o)))
#  define floe_grad_set_input_grad(gc, i, g) (floe__host->grad_set_input_grad((gc), (i), (g)))
#  define floe_grad_add_node(gc, op, in, n, a, o) \
      (floe__host->grad_add_node((gc), (op), (in), (n), (a), (o)))
#  define floe_grad_const_scalar(gc, d, v, o) (floe__host->grad_const_scalar((gc), (d), (v), (o)))
#  define floe_attrs_new(o)                (floe__host->attrs_new((o)))
#  define floe_attrs_free(a)               (floe__host->attrs_free((a)))
#  define floe_attrs_set_int(a, n, v)      (floe__host->attrs_set_int((a), (n), (v)))
#  define floe_attrs_set_float(a, n, v)    (floe__host->attrs_set_float((a), (n), (v)))
#  define floe_attrs_set_bool(a, n, v)     (floe__host->attrs_set_bool((a), (n), (v)))
#  define floe_attrs_set_type(a, n, v)     (floe__host->attrs_set_type((a), (n), (v)))
#  define floe_attrs_set_string(a, n, s, l) (floe__host->attrs_set_string((a), (n), (s), (l)))
#  define floe_attrs_set_shape(a, n, d, k) (floe__host->attrs_set_shape((a), (n), (d), (k)))
#  define floe_attrs_set_int_list(a, n, v, k) (floe__host->attrs_set_int_list((a), (n), (v), (k)))
#  define floe_attrs_set_tensor(a, n, t)   (floe__host->attrs_set_tensor((a), (n), (t)))
#endif /* FLOE_PLUGIN_NO_NATURAL_NAMES */

/* ---- FLOE_PLUGIN_DEFINE --------------------------------------------------------- */

#define FLOE_PLUGIN_EXPORT_ __attribute__((visibility("default")))

/*
 * FLOE_PLUGIN_DEFINE(name, version, vendor, license, description, init, deinit):
 * writes the entry symbol floe_plugin_<name>_get_desc and the floe__host pointer.
 * @init has the signature floe_status init(floe_plugin *self, void **user) and may use
 * the natural names; @deinit may be NULL.  Use FLOE_PLUGIN_DEFINE_FULL to also give
 * score and requires_cpu.
 */
#define FLOE_PLUGIN_DEFINE(name, version, vendor, license, description, init, deinit)     \
    FLOE_PLUGIN_DEFINE_FULL(name, version, vendor, license, description, NULL, NULL, init, \
                            deinit)

#define FLOE_PLUGIN_DEFINE_FULL(name, version, vendor, license, description, requires_cpu, \
                                score, init, deinit)                                       \
    const floe_host *floe__host;                                                           \
    static int floe__plugin_score_##name(floe_plugin *self, const floe_host *host) {       \
        int (*fn)(floe_plugin *) = (score);                                                \
        floe__host = host;                                                                 \
        return fn != NULL ? fn(self) : 1;                                                  \
    }                                                                                      \
    static floe_status floe__plugin_init_##name(floe_plugin *self, const floe_host *host,  \
                                                void **user) {                             \
        if (host == NULL || host->abi_major != FLOE_PLUGIN_ABI_MAJOR)                      \
            return FLOE_FAILED_PRECONDITION;                                               \
        floe__host = host;                                                                 \
        return (init)(self, user);                                                         \
    }                                                                                      \
    static const floe_plugin_desc floe__plugin_desc_##name = {                             \
        FLOE_PLUGIN_ABI_MAJOR, FLOE_PLUGIN_ABI_MINOR, sizeof(floe_plugin_desc),            \
        #name, (version), (vendor), (license), (description), (requires_cpu),              \
        floe__plugin_score_##name, floe__plugin_init_##name, (deinit)};                    \
    FLOE_PLUGIN_EXPORT_ const floe_plugin_desc *floe_plugin_##name##_get_desc(void);       \
    FLOE_PLUGIN_EXPORT_ const floe_plugin_desc *floe_plugin_##name##_get_desc(void) {      \
        return &floe__plugin_desc_##name;                                                  \
    }

#ifdef __cplusplus
}
#endif
#endif /* FLOE_PLUGIN_H */
