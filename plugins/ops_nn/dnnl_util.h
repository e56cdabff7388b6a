/*
 * dnnl_util.h - oneDNN helpers shared by the ops_nn kernels (conv.c, pool.c): the CPU
 * engine, a per-kernel cache of primitives keyed by shapes, per-call execution with a
 * reusable scratch buffer, OpenMP thread control, and oneDNN statuses mapped to Floe's
 * with a message.  Not installed.
 */
#ifndef FLOE_OPS_NN_DNNL_UTIL_H
#define FLOE_OPS_NN_DNNL_UTIL_H

#include "ops_nn-impl.h"

#ifdef FLOE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

#define NN_KEY_MAX 24      /* int64 values identifying one problem (shapes, strides, ...) */
#define NN_MAX_ARGS 6      /* execution arguments of one primitive, scratchpad excluded */
#define NN_ENTRY_PRIMS 2   /* primitives per cache entry (MaxPoolGrad: forward + backward) */
#define NN_SLOTS 4         /* scratch buffers per entry reused by concurrent calls */
#define NN_CACHE_CAPACITY 8 /* entries per kernel; the least recently used goes first */

/* One primitive with the memory descriptors of its arguments, in the order the kernel
 * passes data pointers to ops_nn__prim_run(). */
typedef struct nn_prim {
    dnnl_primitive_t prim;
    int nargs;
    int kinds[NN_MAX_ARGS];                 /* DNNL_ARG_* */
    dnnl_memory_desc_t md[NN_MAX_ARGS];
    dnnl_memory_desc_t scratch_md;
    size_t scratch_size;                    /* 0: none */
} nn_prim;

typedef struct nn_slot {
    atomic_int busy;
    void *buf;                              /* slot_bytes, made on first use */
} nn_slot;

/* A cache entry: what one shape needs.  Kernels fill prims, nprims, slot_bytes (the
 * scratch each call needs: scratchpads and temporaries) and may keep plain numbers in
 * info[] in their build function. */
typedef struct nn_entry nn_entry;
struct nn_entry {
    int64_t key[NN_KEY_MAX];
    int nkey;
    atomic_int refs;                        /* the cache's and each running call's */
    nn_prim prims[NN_ENTRY_PRIMS];
    int nprims;
    size_t slot_bytes;
    int64_t info[8];
    nn_slot slots[NN_SLOTS];
    nn_entry *next;                         /* most recently used first */
};

/* A kernel's cache (one per kernel state).  Lookups and builds hold the mutex: a shape
 * is built once, on its first call. */
typedef struct nn_cache {
    pthread_mutex_t lock;
    nn_entry *head;
    int count;
} nn_cache;

/* Fills @e (key already set) for one problem; errors through floe_fail. */
typedef floe_status (*nn_build_fn)(void *arg, dnnl_engine_t engine, nn_entry *e);

/* The process's CPU engine, made on first use (FLOE_INTERNAL if oneDNN has none). */
floe_status ops_nn__dnnl_engine(dnnl_engine_t *out);
/* Maps @st to a Floe status with a message "@op: @what failed: <oneDNN's reason>". */
floe_status ops_nn__dnnl_fail(dnnl_status_t st, const char *op, const char *what);

void ops_nn__cache_init(nn_cache *c);
void ops_nn__cache_clear(nn_cache *c);      /* frees entries no call holds */
/* The entry for @key (@nkey <= NN_KEY_MAX values), built by @build on first sight; the
 * caller releases it with ops_nn__entry_put. */
floe_status ops_nn__cache_get(nn_cache *c, const int64_t *key, int nkey, nn_build_fn build,
                              void *arg, const char *op, nn_entry **out);
void ops_nn__entry_put(nn_entry *e);

/* Makes @p from @pd: the primitive and the descriptors of the @nargs arguments @kinds
 * (queried from @pd, so 'any' formats are resolved).  Takes @pd's ownership. */
floe_status ops_nn__prim_from_pd(dnnl_primitive_desc_t pd, int nargs, const int *kinds,
                                 const char *op, nn_prim *p);

/* A scratch buffer of e->slot_bytes for one call: an idle slot's or a fresh one.  NULL
 * when out of memory (message set).  Give it back with ops_nn__scratch_release. */
void *ops_nn__scratch_claim(nn_entry *e, int *slot);
void ops_nn__scratch_release(nn_entry *e, int slot, void *buf);

/* Runs @p on the calling thread with @ptrs[i] for argument i and @scratch for the
 * scratchpad (at least p->scratch_size bytes when that is not 0). */
floe_status ops_nn__prim_run(const nn_prim *p, void *const *ptrs, void *scratch, const char *op);

/* Limits OpenMP (oneDNN's runtime) to the calling thread for the oneDNN calls that follow
 * (see dnnl_util.c: Floe's pool does the parallel work).  Returns the previous setting
 * for ops_nn__omp_end. */
int ops_nn__omp_begin(void);
void ops_nn__omp_end(int saved);

/* How many batch parts to run on @pool for @n images and @work multiply-adds (or
 * elements) in all: 1 when the work is too small to share. */
int ops_nn__batch_parts(floe_threadpool *pool, int64_t n, int64_t work);
/* Images [*n0, *n1) of part @p of @parts over @n (the first n % parts get one more). */
void ops_nn__batch_part(int64_t n, int parts, int p, int64_t *n0, int64_t *n1);
/* Runs fn(arg, p) for p in [0, @parts) on @pool, each with OpenMP limited to its thread;
 * returns the first non-OK status a part returned (the caller words the message: a
 * message set on a pool thread does not reach the caller). */
floe_status ops_nn__run_parts(floe_threadpool *pool, int parts,
                              floe_status (*fn)(void *arg, int p), void *arg);

/* One call split over the batch (see dnnl_util.c): part p runs images [n0, n1) of
 * ops_nn__batch_part through the entry made for its size (at most two sizes), with its
 * own scratch. */
#define NN_MAX_PARTS 64
typedef struct nn_split {
    int64_t n;
    int parts;
    nn_entry *entry[2];             /* for parts with n / parts + 1 images and n / parts */
    void *scratch[NN_MAX_PARTS];
    int slot[NN_MAX_PARTS];
    int claimed;                    /* parts holding their scratch */
} nn_split;

/* Gets (ops_nn__cache_get) the entry for @n images of the kernel's problem @arg. */
typedef floe_status (*nn_entry_get_fn)(void *arg, int64_t n, nn_entry **out);

/* Splits @n images over @pool for @work in all (ops_nn__batch_parts, at most NN_MAX_PARTS
 * parts) and gets the entry of each part size through @get on the calling thread (so
 * creation errors keep their message).  *@sp goes to ops_nn__split_end on every path. */
floe_status ops_nn__split_begin(nn_split *sp, floe_threadpool *pool, int64_t n, int64_t work,
                                nn_entry_get_fn get, void *arg);
/* The entry part @part runs. */
nn_entry *ops_nn__split_entry(const nn_split *sp, int part);
/* Claims each part's scratch: FLOE_RESOURCE_EXHAUSTED (message set) when out of memory. */
floe_status ops_nn__split_claim(nn_split *sp);
/* Releases the scratch claimed and the entries. */
void ops_nn__split_end(nn_split *sp);

/* Bytes rounded up to 64. */
static inline size_t ops_nn__align64(size_t n) {
    return (n + 63) & ~(size_t)63;
}
#endif /* FLOE_HAVE_DNNL */

/* ---- Kernel states (conv.c, pool.c) ----------------------------------------------------- */

/* A kernel state of @size bytes whose first member is its nn_cache (in oneDNN builds; the
 * cache is initialized here), the rest left for the caller to fill; NULL with a message
 * naming @op when out of memory. */
void *ops_nn__state_new(size_t size, const char *op);
/* Frees a state from ops_nn__state_new (NULL: nothing), clearing its cache. */
void ops_nn__state_free(void *state);

/* ---- Shared by conv.c and pool.c (no oneDNN needed) --------------------------------- */

typedef enum nn_padding { NN_PAD_SAME, NN_PAD_VALID, NN_PAD_EXPLICIT } nn_padding;

/* Reads "padding" (SAME, VALID, EXPLICIT if @explicit_ok); errors name @op. */
floe_status ops_nn__get_padding(const floe_attrs *a, const char *op, int explicit_ok,
                                nn_padding *out);
/* Reads "data_format" (NHWC or NCHW): *@nchw = 1 for NCHW. */
floe_status ops_nn__get_format(const floe_attrs *a, const char *op, int *nchw);
/* Reads a list(int) attr of 4 positive values with N and C entries equal to 1 (unless
 * @nc_free), as [h, w]; "strides", "dilations", "ksize". */
floe_status ops_nn__get_hw4(const floe_attrs *a, const char *name, const char *op, int nchw,
                            int nc_free, int64_t hw[2]);
/* Checks that @t (the op's input @what) is a 4-dimensional f32 tensor. */
floe_status ops_nn__rank4_f32(const char *op, const floe_tensor *t, const char *what);
/* Output extent and padding before/after of one spatial dimension per TensorFlow: @in
 * input, @k filter, @s stride, @d dilation; EXPLICIT uses @pb/@pa as given.  Fails
 * (naming @op) when the output would be empty or negative. */
floe_status ops_nn__window(const char *op, nn_padding pad, int64_t in, int64_t k, int64_t s,
                           int64_t d, int64_t *pb, int64_t *pa, int64_t *out);

#endif /* FLOE_OPS_NN_DNNL_UTIL_H */
