/*
 * floe/types.h - the vocabulary shared by libfloe's public API and the plugin ABI.
 *
 * Everything here is plain C11 with no dependency on libfloe's symbols, so a plugin
 * can include it without linking the core.  Sections: export macros, status codes,
 * data types, shapes, opaque handles.
 *
 * Anything not declared in the public headers under floe/ is not API.
 */
#ifndef FLOE_TYPES_H
#define FLOE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Export macros ------------------------------------------------------------ */

#if defined(_WIN32)
#  define FLOE_EXPORT_ __declspec(dllexport)
#  define FLOE_IMPORT_ __declspec(dllimport)
#else
#  define FLOE_EXPORT_ __attribute__((visibility("default")))
#  define FLOE_IMPORT_
#endif

/* FLOE_API marks a libfloe entry point.  libfloe is built with -fvisibility=hidden and
 * -DFLOE_BUILDING_CORE, so only FLOE_API symbols are exported. */
#ifdef FLOE_BUILDING_CORE
#  define FLOE_API FLOE_EXPORT_
#else
#  define FLOE_API FLOE_IMPORT_
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define FLOE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#  define FLOE_PRINTF(fmt, args)
#endif

/* ---- Status codes --------------------------------------------------------------- */

/*
 * floe_status: the result of every call that can fail.  Values 0-16 are the canonical
 * gRPC status codes (google.rpc.Code), so the distributed runtime passes them through
 * unchanged.  The human-readable message of the most recent failure on the calling
 * thread is floe_last_error() (floe/floe.h) or, inside a plugin, set by host->fail().
 */
typedef enum floe_status {
    FLOE_OK = 0,
    FLOE_CANCELLED = 1,
    FLOE_UNKNOWN = 2,
    FLOE_INVALID_ARGUMENT = 3,
    FLOE_DEADLINE_EXCEEDED = 4,
    FLOE_NOT_FOUND = 5,
    FLOE_ALREADY_EXISTS = 6,
    FLOE_PERMISSION_DENIED = 7,
    FLOE_RESOURCE_EXHAUSTED = 8,
    FLOE_FAILED_PRECONDITION = 9,
    FLOE_ABORTED = 10,
    FLOE_OUT_OF_RANGE = 11,
    FLOE_UNIMPLEMENTED = 12,
    FLOE_INTERNAL = 13,
    FLOE_UNAVAILABLE = 14,
    FLOE_DATA_LOSS = 15,
    FLOE_UNAUTHENTICATED = 16
} floe_status;

/* ---- Data types --------------------------------------------------------------- */

/*
 * floe_dtype: element types.  The numeric values are TensorFlow's DataType enum values
 * (types.proto), so GraphDef import/export maps them one to one.
 */
typedef enum floe_dtype {
    FLOE_DTYPE_INVALID = 0,
    FLOE_DTYPE_F32 = 1,
    FLOE_DTYPE_F64 = 2,
    FLOE_DTYPE_I32 = 3,
    FLOE_DTYPE_U8 = 4,
    FLOE_DTYPE_I16 = 5,
    FLOE_DTYPE_I8 = 6,
    FLOE_DTYPE_STRING = 7,    /* elements are floe_tstring */
    FLOE_DTYPE_COMPLEX64 = 8, /* two f32: real, imaginary */
    FLOE_DTYPE_I64 = 9,
    FLOE_DTYPE_BOOL = 10,     /* one byte, 0 or 1 */
    FLOE_DTYPE_BF16 = 14,
    FLOE_DTYPE_U16 = 17,
    FLOE_DTYPE_F16 = 19,
    FLOE_DTYPE_RESOURCE = 20, /* a handle to a resource such as a variable */
    FLOE_DTYPE_U32 = 22,
    FLOE_DTYPE_U64 = 23
} floe_dtype;

/* One element of a FLOE_DTYPE_STRING tensor: bytes (not NUL-terminated) owned by
 * the tensor.  Never write these fields directly: use floe_tensor_set_string(). */
typedef struct floe_tstring {
    const char *data;
    size_t size;
} floe_tstring;

/* ---- Shapes ------------------------------------------------------------------- */

/* The largest rank Floe supports.  Frozen: part of the ABI through floe_shape. */
#define FLOE_MAX_DIMS 8

/*
 * floe_shape: a possibly partially known shape, used by shape inference.
 * ndim == -1: unknown rank.  dims[i] == -1: unknown extent.  A plain value type whose
 * layout is frozen for ABI major 1.
 */
typedef struct floe_shape {
    int32_t ndim;
    int32_t reserved_;           /* zero */
    int64_t dims[FLOE_MAX_DIMS];
} floe_shape;

/* ---- Attribute kinds (floe/graph.h, floe/plugin.h) ------------------------------ */

typedef enum floe_attr_type {
    FLOE_ATTR_NONE = 0,
    FLOE_ATTR_INT = 1,
    FLOE_ATTR_FLOAT = 2,
    FLOE_ATTR_BOOL = 3,
    FLOE_ATTR_STRING = 4,
    FLOE_ATTR_TYPE = 5,
    FLOE_ATTR_SHAPE = 6,
    FLOE_ATTR_TENSOR = 7,
    FLOE_ATTR_LIST_INT = 8,
    FLOE_ATTR_LIST_FLOAT = 9,
    FLOE_ATTR_LIST_BOOL = 10,
    FLOE_ATTR_LIST_STRING = 11,
    FLOE_ATTR_LIST_TYPE = 12,
    FLOE_ATTR_LIST_SHAPE = 13,
    FLOE_ATTR_LIST_TENSOR = 14
} floe_attr_type;

/* ---- Files (floe/fs.h, floe_fs_ops in floe/plugin.h) ------------------------------ */

typedef struct floe_file_info {
    size_t struct_size;
    uint64_t size;          /* bytes; 0 for directories */
    int64_t mtime_ns;       /* modification time, ns since the epoch; 0 if unknown */
    int is_dir;
} floe_file_info;

/* Filesystem capabilities (floe_fs_ops.caps, floe_fs_caps()). */
#define FLOE_FS_CAP_ATOMIC_RENAME 0x1u  /* rename is atomic (local); not on S3 */
#define FLOE_FS_CAP_APPEND        0x2u  /* open for append is supported */

/* ---- Opaque handles ----------------------------------------------------------- */

typedef struct floe_context floe_context;   /* a runtime: plugins, devices, threads */
typedef struct floe_tensor floe_tensor;     /* a refcounted n-dimensional array */
typedef struct floe_device floe_device;     /* one registered device instance */
typedef struct floe_graph floe_graph;       /* a dataflow graph */
typedef struct floe_node floe_node;         /* a node of a graph, owned by the graph */
typedef struct floe_attrs floe_attrs;       /* a set of named attribute values */
typedef struct floe_threadpool floe_threadpool;

/* One output of a node: the edge source in a graph. */
typedef struct floe_output {
    floe_node *node;
    int32_t index;
    int32_t reserved_;  /* zero */
} floe_output;

#ifdef __cplusplus
}
#endif
#endif /* FLOE_TYPES_H */
