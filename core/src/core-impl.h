/*
 * core-impl.h - libfloe's private structures and the functions its modules share.
 *
 * Not installed, not API.  Every non-static function here starts with floe__ so that
 * `nm -D libfloe.so` shows at a glance that none escaped (only FLOE_API symbols are
 * exported).  Sections follow the modules that own them:
 *
 *   error.c, alloc.c       thread-local error messages, the host allocator (+ faults)
 *   dtype.c, tensor.c      dtypes, buffers, tensors; dlpack.c the DLPack bridge
 *   attrs.c                attribute sets
 *   threadpool.c           the one shared pool
 *   fs.c, fs_local.c       the filesystem ABI dispatch and the local filesystem
 *   opdef.c                the op-definition spec parser
 *   registry.c, device.c   ops, kernels, gradients, devices, filesystems, transports
 *   loader.c, context.c    plugin discovery and loading; the context
 *   host.c                 the floe_host table handed to plugins
 *   graph.c, shape.c       graphs, node builders, shape inference
 *   session.c, placement.c, executor.c, variable.c, eager.c   running graphs
 *   gradients.c            automatic differentiation (host->grad_*)
 */
#ifndef FLOE_CORE_IMPL_H
#define FLOE_CORE_IMPL_H

#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/floe.h>
#include <floe/plugin.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Internal invariant check: aborts, for broken invariants only, never for input. */
#define FLOE_ASSERT(x)                                                                 \
    do {                                                                               \
        if (!(x))                                                                      \
            floe__assert_fail(#x, __FILE__, __LINE__);                                 \
    } while (0)
_Noreturn void floe__assert_fail(const char *expr, const char *file, int line);

/* ---- error.c ------------------------------------------------------------------------ */

/* Sets this thread's last-error message and returns @code (FLOE_OK clears it). */
floe_status floe__fail(floe_status code, const char *fmt, ...) FLOE_PRINTF(2, 3);
floe_status floe__vfail(floe_status code, const char *fmt, va_list ap);
/* Prepends a formatted prefix to this thread's message ("node 'x' (MatMul): "). */
void floe__error_prefix(const char *fmt, ...) FLOE_PRINTF(1, 2);
/* Logs through the context's sink (ctx may be NULL: stderr, level WARNING and up). */
void floe__log(floe_context *ctx, floe_log_level level, const char *fmt, ...) FLOE_PRINTF(3, 4);

/* ---- alloc.c ------------------------------------------------------------------------ */

/* Every allocation of the core and of plugins (host->alloc) goes through these, so the
 * out-of-memory tests can fail the Nth one (floe/experimental/testing.h). */
void *floe__malloc(size_t n);
void *floe__calloc(size_t count, size_t n);
void *floe__realloc(void *p, size_t n);
void floe__free(void *p);
char *floe__strdup(const char *s);
char *floe__strndup(const char *s, size_t n);
/* Aligned to @align (power of two; 0 means 64).  Freed with floe__free_aligned. */
void *floe__alloc_aligned(size_t n, size_t align);
void floe__free_aligned(void *p);

/* ---- dtype.c, tensor.c ------------------------------------------------------------ */

typedef struct floe__buffer {
    atomic_int refcount;
    void *data;
    size_t nbytes;
    floe_device *device;                 /* NULL: host memory of the core */
    floe_deallocator dealloc;            /* frees data; NULL: not owned */
    void *dealloc_arg;
    floe_dtype dtype;                    /* STRING buffers free their elements */
} floe__buffer;

struct floe_tensor {
    atomic_int refcount;
    floe_dtype dtype;
    int ndim;
    int64_t dims[FLOE_MAX_DIMS];
    int64_t num_elements;
    size_t nbytes;
    void *data;                          /* buf->data, or NULL when num_elements == 0 */
    floe__buffer *buf;                   /* refcounted; may be shared by reshapes */
};

bool floe__dtype_valid(floe_dtype dt);
/* Checked product of extents: FLOE_INVALID_ARGUMENT for a negative extent, a rank out of
 * range or an overflow of int64 elements or size_t bytes; message says which. */
floe_status floe__shape_check(floe_dtype dtype, const int64_t *shape, int ndim,
                              int64_t *num_elements, size_t *nbytes);
/* A tensor in @dev's memory (host memory when @dev is NULL), uninitialised except for
 * STRING (empty strings). */
floe_status floe__tensor_new_on(floe_device *dev, floe_dtype dtype, const int64_t *shape,
                                int ndim, floe_tensor **out);
/* A tensor sharing @buf (takes a buffer reference). */
floe_status floe__tensor_new_view(floe__buffer *buf, floe_dtype dtype, const int64_t *shape,
                                  int ndim, floe_tensor **out);
int floe__tensor_is_exclusive(const floe_tensor *t);
/* The data pointer whatever memory it is in (host->tensor_device_data). */
void *floe__tensor_device_data(const floe_tensor *t);
/* Copies @src into a new tensor on @dst_dev (NULL: host) through the devices' ops. */
floe_status floe__tensor_copy_to(const floe_tensor *src, floe_device *dst_dev, floe_tensor **out);
/* The shape as floe_shape. */
floe_shape floe__tensor_fshape(const floe_tensor *t);

/* ---- attrs.c -------------------------------------------------------------------------- */

typedef struct floe__attr_value {
    floe_attr_type type;
    union {
        int64_t i;
        float f;
        int b;
        floe_dtype type;
        floe_shape shape;
        floe_tensor *tensor;
        struct {
            char *data;                  /* NUL-terminated copy */
            size_t len;
        } s;
        struct {
            void *items;                 /* int64_t[], float[], int[], floe_dtype[],
                                            floe_shape[], floe_tensor*[] or floe_tstring[] */
            int n;
        } list;
    } u;
} floe__attr_value;

typedef struct floe__attr_entry {
    char *name;
    floe__attr_value value;
} floe__attr_entry;

struct floe_attrs {
    floe__attr_entry *entries;
    int n, cap;
};

void floe__attrs_init(floe_attrs *a);
void floe__attrs_deinit(floe_attrs *a);
const floe__attr_value *floe__attrs_find(const floe_attrs *a, const char *name);
/* Deep copy of @v into entry @name (replacing). */
floe_status floe__attrs_set_value(floe_attrs *a, const char *name, const floe__attr_value *v);
floe_status floe__attrs_copy(floe_attrs *dst, const floe_attrs *src);
void floe__attr_value_clear(floe__attr_value *v);
/* Human-readable value ("[1, 2]", "f32", "true") into @buf. */
void floe__attr_value_format(const floe__attr_value *v, char *buf, size_t len);

/* ---- threadpool.c --------------------------------------------------------------------- */

struct floe_threadpool;
/* @nthreads counts the caller: nthreads - 1 workers are started. */
floe_status floe__threadpool_new(int nthreads, floe_threadpool **out);
void floe__threadpool_free(floe_threadpool *pool);
int floe__threadpool_size(const floe_threadpool *pool);
/* Queues @fn(@arg) to run on a worker (or inline when there are no workers). */
void floe__threadpool_submit(floe_threadpool *pool, void (*fn)(void *arg), void *arg);
void floe__threadpool_parallel_for(floe_threadpool *pool, int64_t n, int64_t grain,
                                   void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/* ---- fs.c, fs_local.c ----------------------------------------------------------------- */

extern const floe_fs_ops floe__local_fs_ops;
/* Splits "scheme://rest": copies the scheme ("file" for a plain path) into @scheme. */
void floe__uri_scheme(const char *uri, char *scheme, size_t len);

/* ---- opdef.c ------------------------------------------------------------------------- */

#define FLOE__DTYPE_MASK(dt) ((uint64_t)1 << ((unsigned)(dt) & 63u))

typedef struct floe__arg_def {
    char *name;
    floe_dtype fixed_type;       /* != INVALID: a fixed dtype */
    char *type_attr;             /* "T" */
    char *number_attr;           /* "N" for "N * T" */
    char *type_list_attr;        /* "Tlist" for a list(type) argument */
} floe__arg_def;

typedef struct floe__attr_def {
    char *name;
    floe_attr_type type;
    uint64_t allowed_types;      /* type/list(type) attrs: mask of FLOE__DTYPE_MASK; 0: any */
    bool has_min;
    int64_t min;
    bool has_default;
    floe__attr_value default_value;
} floe__attr_def;

typedef struct floe__op_def {
    char *name;
    floe__arg_def *inputs;
    int ninputs;
    floe__arg_def *outputs;
    int noutputs;
    floe__attr_def *attrs;
    int nattrs;
    floe_status (*shape_fn)(floe_shape_ctx *sc);
    uint32_t flags;
    const char *doc;
    struct floe_plugin *plugin;  /* that defined it; NULL for the core's own */
    struct floe__kernel **kernels;   /* registered kernels, all devices */
    int nkernels;
    floe_grad_fn grad_fn;
    struct floe_plugin *grad_plugin;
} floe__op_def;

/* Parses a plugin's floe_op_def into @out (FLOE_INVALID_ARGUMENT names the bad spec). */
floe_status floe__op_def_parse(const floe_op_def *def, floe__op_def *out);
void floe__op_def_deinit(floe__op_def *op);
const floe__attr_def *floe__op_def_find_attr(const floe__op_def *op, const char *name);
/* Lengths of @op's input args (@len, one per arg) from @ninputs flattened inputs: lists take
 * their length attr from @attrs when given, else the one list of unknown length takes what
 * the other args leave.  Used by eager calls and gradient nodes. */
floe_status floe__op_group_inputs(const floe__op_def *op, const floe_attrs *attrs, int ninputs,
                                  int *len);
/* Parses "T: {f32, f64}" constraint lists of a kernel against @op. */
floe_status floe__parse_type_set(const char *spec, uint64_t *mask);

/* ---- registry.c, device.c ------------------------------------------------------------ */

typedef struct floe__kernel {
    floe__op_def *op;
    char *device_type;
    /* Per type attr constraint: attr name and allowed mask. */
    struct {
        char *attr;
        uint64_t mask;
    } *constraints;
    int nconstraints;
    int32_t priority;
    floe_status (*create)(floe_kernel_ctx *kc, void **state);
    floe_status (*compute)(floe_kernel_ctx *kc, void *state);
    void (*destroy)(void *state);
    char **host_memory;          /* arg names */
    int nhost_memory;
    struct floe_plugin *plugin;
} floe__kernel;

struct floe_device {
    floe_context *ctx;
    struct floe_plugin *plugin;
    char type[32];
    int index;
    int priority;
    uint32_t flags;
    char name[64];               /* "/device:CPU:0" */
    char *description;
    uint64_t memory_bytes;
    floe_device_ops ops;         /* copied; members past the plugin's size are NULL */
    void *state;
};

typedef struct floe__filesystem {
    floe_fs_ops ops;             /* copied; members past the plugin's size are NULL */
    struct floe_plugin *plugin;  /* NULL for the built-in local filesystem */
} floe__filesystem;

typedef struct floe__transport {
    floe_transport_ops ops;
    struct floe_plugin *plugin;
} floe__transport;

/* A gradient function waiting in a plugin's pending registrations (committed ones
 * live in floe__op_def.grad_fn). */
typedef struct floe__gradient {
    char *op;
    floe_grad_fn fn;
} floe__gradient;

/* The registry lives in the context; it changes only while plugins load. */
typedef struct floe__registry {
    floe__op_def **ops;          /* sorted by name */
    int nops, cap_ops;
    floe__kernel **kernels;
    int nkernels, cap_kernels;
    floe_device **devices;       /* registration order */
    int ndevices, cap_devices;
    floe__filesystem **filesystems;
    int nfilesystems, cap_filesystems;
    floe__transport **transports;
    int ntransports, cap_transports;
    floe__gradient *grads;       /* plugin->pending only */
    int ngrads, cap_grads;
} floe__registry;

const floe__op_def *floe__registry_find_op(const floe_context *ctx, const char *name);
/* The best kernel for @op on @device_type given the node's resolved attrs (type attrs
 * checked against constraints); NULL if none. */
const floe__kernel *floe__registry_find_kernel(const floe_context *ctx, const floe__op_def *op,
                                               const char *device_type, const floe_attrs *attrs);
const floe__filesystem *floe__registry_find_fs(floe_context *ctx, const char *scheme);
/* Device by parsed spec: type ("" any) and index (-1 any); the best-priority match. */
floe_device *floe__registry_find_device(const floe_context *ctx, const char *type, int index);
floe_status floe__device_alloc(floe_device *dev, size_t nbytes, void **out);
void floe__device_free(floe_device *dev, void *ptr, size_t nbytes);
/* True for NULL (core host memory) and FLOE_DEVICE_HOST_MEMORY devices. */
bool floe__device_is_host(const floe_device *dev);

/* ---- loader.c, context.c -------------------------------------------------------------- */

typedef enum floe__plugin_state {
    FLOE__PLUGIN_LOADING = 0,
    FLOE__PLUGIN_LOADED,
    FLOE__PLUGIN_REJECTED,
    FLOE__PLUGIN_SKIPPED        /* score() 0 or CPU features missing: not an error */
} floe__plugin_state;

struct floe_plugin {
    floe_context *ctx;
    char *path;
    char *name;
    const floe_plugin_desc *desc;   /* NULL if none was found */
    floe_plugin_desc desc_copy;     /* zero-filled past the plugin's struct_size */
    floe__plugin_state state;
    char *reason;
    char *note;
    void *user;
    bool inited;
    /* Registrations made during init, committed when init succeeds. */
    floe__registry pending;
    int num_ops, num_kernels, num_devices, num_filesystems, num_transports;
};

struct floe_context {
    floe_context_options opts;
    char *plugin_path;              /* owned copies of the option strings */
    char *allow, *deny;
    floe_threadpool *pool;
    int num_threads;
    floe__registry reg;
    struct floe_plugin **plugins;
    int nplugins, cap_plugins;
    floe__filesystem local_fs;
    pthread_mutex_t lock;           /* load_plugin vs introspection */
};

/* Discovers and loads plugins per the context's options (context_new). */
void floe__loader_load_all(floe_context *ctx);
floe_status floe__loader_load_file(floe_context *ctx, const char *path);
/* Calls deinit and destroys devices/filesystems of every plugin, reverse order. */
void floe__loader_unload_all(floe_context *ctx);
/* Moves a plugin's pending registrations into the context registry, or explains (in
 * @reason) the first conflict and leaves both unchanged. */
floe_status floe__registry_commit(floe_context *ctx, struct floe_plugin *p, char **reason);
void floe__registry_deinit(floe__registry *reg);

/* ---- host.c ---------------------------------------------------------------------------- */

/* The one table handed to every plugin. */
extern const floe_host floe__host_table;

/* Registration members (registry.c). */
floe_status floe__host_register_op(floe_plugin *self, const floe_op_def *def);
floe_status floe__host_register_kernel(floe_plugin *self, const floe_kernel_def *def);
floe_status floe__host_register_gradient(floe_plugin *self, const char *op, floe_grad_fn fn);
floe_status floe__host_register_device(floe_plugin *self, const floe_device_desc *desc);
floe_status floe__host_register_filesystem(floe_plugin *self, const floe_fs_ops *ops);
floe_status floe__host_register_transport(floe_plugin *self, const floe_transport_ops *ops);

/* ---- graph.c, shape.c -------------------------------------------------------------------- */

/* A parsed device constraint: "" / -1 for parts not given. */
typedef struct floe__device_spec {
    char job[32];
    int replica, task;
    char type[32];
    int index;
} floe__device_spec;

/* Parses TensorFlow's device strings; FLOE_INVALID_ARGUMENT with the string quoted. */
floe_status floe__device_spec_parse(const char *s, floe__device_spec *out);

struct floe_node {
    floe_graph *graph;
    int id;                         /* index in graph->nodes */
    char *name;
    const floe__op_def *op;
    char *device;                   /* requested, "" if none */
    floe__device_spec devspec;
    floe_attrs attrs;               /* complete: defaults and inferred type attrs filled */
    floe_output *inputs;            /* flattened */
    int ninputs;
    floe_node **controls;
    int ncontrols;
    int noutputs;                   /* flattened */
    floe_dtype *out_dtypes;
    floe_shape *out_shapes;
    floe_dtype *in_dtypes;          /* expected dtype of each flattened input */
    /* First flattened index of each op input/output arg (length ninputs/noutputs
     * of the op def, plus one). */
    int *in_arg_start;
    int *out_arg_start;
};

struct floe_graph {
    floe_context *ctx;
    floe_node **nodes;
    int nnodes, cap;
    /* name -> node, open addressing */
    floe_node **table;
    int table_cap;
};

/* Shape-function context (host->shape_*), implemented in shape.c. */
struct floe_shape_ctx {
    const floe_node *node;          /* inputs, attrs, dtypes filled */
    floe_shape *out_shapes;
};

floe_status floe__node_run_shape_fn(floe_node *n);

/* ---- session.c, placement.c, executor.c, variable.c ------------------------------------ */

/* Implemented in executor.c and variable.c, used by host.c. */
const floe_attrs *floe__kernel_attrs(const floe_kernel_ctx *kc);
const char *floe__kernel_node_name(const floe_kernel_ctx *kc);
int floe__kernel_num_inputs(const floe_kernel_ctx *kc);
int floe__kernel_num_outputs(const floe_kernel_ctx *kc);
floe_dtype floe__kernel_input_dtype(const floe_kernel_ctx *kc, int i);
floe_dtype floe__kernel_output_dtype(const floe_kernel_ctx *kc, int i);
floe_shape floe__kernel_input_static_shape(const floe_kernel_ctx *kc, int i);
floe_tensor *floe__kernel_input(const floe_kernel_ctx *kc, int i);
floe_status floe__kernel_alloc_output(floe_kernel_ctx *kc, int i, const int64_t *shape, int ndim,
                                      floe_tensor **out);
floe_status floe__kernel_forward_or_alloc(floe_kernel_ctx *kc, int in, int i,
                                          const int64_t *shape, int ndim, floe_tensor **out);
floe_status floe__kernel_set_output(floe_kernel_ctx *kc, int i, floe_tensor *t);
floe_device *floe__kernel_device(const floe_kernel_ctx *kc);
floe_threadpool *floe__kernel_threadpool(const floe_kernel_ctx *kc);
floe_status floe__kernel_resource_handle(floe_kernel_ctx *kc, const char *container,
                                         const char *shared_name, floe_dtype dtype,
                                         const floe_shape *shape, floe_tensor **out);
floe_status floe__kernel_variable(floe_kernel_ctx *kc, const floe_tensor *handle, int create,
                                  floe_variable **out);
void floe__variable_lock(floe_variable *v, int exclusive);
void floe__variable_unlock(floe_variable *v);
floe_tensor *floe__variable_value(floe_variable *v);
floe_status floe__variable_assign(floe_variable *v, floe_tensor *value);
floe_status floe__variable_value_for_update(floe_variable *v, floe_tensor **out);
floe_dtype floe__variable_dtype(const floe_variable *v);

/* Shape-function members (shape.c). */
const floe_attrs *floe__shape_attrs(const floe_shape_ctx *sc);
const char *floe__shape_node_name(const floe_shape_ctx *sc);
int floe__shape_num_inputs(const floe_shape_ctx *sc);
int floe__shape_num_outputs(const floe_shape_ctx *sc);
floe_dtype floe__shape_input_dtype(const floe_shape_ctx *sc, int i);
floe_shape floe__shape_input(const floe_shape_ctx *sc, int i);
floe_tensor *floe__shape_input_value(const floe_shape_ctx *sc, int i);
floe_status floe__shape_set_output(floe_shape_ctx *sc, int i, const floe_shape *s);

/* ---- gradients.c ----------------------------------------------------------------------- */

/* The grad_* members of the host table. */
const floe_attrs *floe__grad_attrs(const floe_grad_ctx *gc);
const char *floe__grad_node_name(const floe_grad_ctx *gc);
const char *floe__grad_op(const floe_grad_ctx *gc);
int floe__grad_num_inputs(const floe_grad_ctx *gc);
int floe__grad_num_outputs(const floe_grad_ctx *gc);
floe_output floe__grad_input(const floe_grad_ctx *gc, int i);
floe_output floe__grad_output(const floe_grad_ctx *gc, int i);
floe_output floe__grad_upstream(const floe_grad_ctx *gc, int i);
floe_dtype floe__grad_edge_dtype(const floe_grad_ctx *gc, floe_output o);
floe_shape floe__grad_edge_shape(const floe_grad_ctx *gc, floe_output o);
floe_status floe__grad_set_input_grad(floe_grad_ctx *gc, int i, floe_output grad);
floe_status floe__grad_add_node(floe_grad_ctx *gc, const char *op, const floe_output *inputs,
                                int ninputs, const floe_attrs *attrs, floe_node **out);
floe_status floe__grad_const_scalar(floe_grad_ctx *gc, floe_dtype dtype, double v,
                                    floe_output *out);

#endif /* FLOE_CORE_IMPL_H */
