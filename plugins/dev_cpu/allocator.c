/*
 * allocator.c - the CPU device's caching allocator.
 *
 * Kernels allocate an output per node per step, mostly of the same few sizes, so
 * freed blocks are kept for reuse instead of going back to malloc (and, for big
 * blocks, to mmap and page faults) each time.  Layout:
 *
 *   size classes   64, 96, 128, 192, 256, ... 48 MiB, 64 MiB: powers of two and the
 *                  halves between them, so rounding wastes at most a third.  Requests
 *                  above 64 MiB (DEV_CPU__BIG_BLOCK) are "big": exact size, never
 *                  cached, straight to the host allocator and back.
 *   blocks         one host->alloc each, a 64-byte header in front of the user's
 *                  64-byte-aligned bytes: magic, class, size.  The header lets free()
 *                  find the class without trusting its caller and catch pointers
 *                  freed twice or never allocated here.
 *   free lists     one LIFO list per class under its own mutex (the next pointer is
 *                  kept in the free block itself), so different sizes never contend.
 *   cache cap      a freed block is cached only while the cached total stays under
 *                  the limit; otherwise it goes back to the host.  When the host runs
 *                  out, the cache is emptied and the allocation retried once.
 *   lifetime       a reference count of 1 (the device) plus one per live block: a
 *                  tensor that outlives its context still frees into a valid
 *                  allocator (and device state, its "payload"), which go away with
 *                  the last block.
 *   statistics     atomics: bytes in use and their peak, bytes cached, allocations.
 */
#include "dev_cpu-impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define CLASS_MIN_SHIFT 6                      /* smallest class: 64 bytes */
#define NUM_CLASSES 41                         /* up to 64 << 20 = 2^26 */
#define HEADER_SIZE ((size_t)64)
#define MAGIC_LIVE 0x666c6f6563707531ull       /* "floecpu1" */
#define MAGIC_FREE 0x666c6f6566726565ull       /* "floefree" */

typedef struct block_header {
    uint64_t magic;
    size_t size;                               /* class size, or exact for big blocks */
    int32_t cls;                               /* -1: big block */
} block_header;

_Static_assert(sizeof(block_header) <= HEADER_SIZE, "header fits its 64 bytes");

typedef struct free_list {
    pthread_mutex_t lock;
    void *head;                                /* user pointers, linked through word 0 */
    char pad_[64 - sizeof(void *)];            /* one cache line each, roughly */
} free_list;

struct dev_cpu__allocator {
    floe_plugin *self;
    void *payload;                             /* freed with the allocator */
    uint64_t cache_limit;
    atomic_uint_fast64_t refs;                 /* 1 for the device + live blocks */
    atomic_bool closed;                        /* the device is gone: cache nothing */
    atomic_uint_fast64_t in_use, peak, cached, num_allocs;
    free_list lists[NUM_CLASSES];
};

/* ---- Size classes ----------------------------------------------------------------- */

static int class_index(size_t nbytes) {
    int b;

    if (nbytes <= ((size_t)1 << CLASS_MIN_SHIFT))
        return 0;
    if (nbytes > DEV_CPU__BIG_BLOCK)
        return -1;
    b = 63 - __builtin_clzll((unsigned long long)(nbytes - 1)); /* 2^b < n <= 2^(b+1) */
    if (nbytes <= ((size_t)3 << (b - 1)))
        return 2 * (b - CLASS_MIN_SHIFT) + 1;
    return 2 * (b + 1 - CLASS_MIN_SHIFT);
}

static size_t class_size(int cls) {
    int j = cls / 2;
    return cls % 2 == 0 ? (size_t)64 << j : (size_t)96 << j;
}

size_t dev_cpu__allocator_class_size(size_t nbytes) {
    int cls = class_index(nbytes == 0 ? 1 : nbytes);
    return cls < 0 ? nbytes : class_size(cls);
}

static block_header *header_of(void *ptr) {
    return (block_header *)((char *)ptr - HEADER_SIZE);
}

/* ---- Host memory ------------------------------------------------------------------ */

static void *host_block_new(size_t size, int cls) {
    char *raw = floe_alloc(HEADER_SIZE + size, 64);
    block_header *h = (block_header *)raw;

    if (raw == NULL)
        return NULL;
    h->magic = MAGIC_LIVE;
    h->size = size;
    h->cls = cls;
    return raw + HEADER_SIZE;
}

static void host_block_free(void *ptr) {
    block_header *h = header_of(ptr);
    h->magic = 0;
    floe_free(h);
}

/* ---- Lifetime --------------------------------------------------------------------- */

dev_cpu__allocator *dev_cpu__allocator_new(floe_plugin *self, uint64_t cache_limit) {
    dev_cpu__allocator *a = floe_alloc(sizeof(*a), 64);
    int i;

    if (a == NULL)
        return NULL;
    memset(a, 0, sizeof(*a));
    a->self = self;
    a->cache_limit = cache_limit;
    atomic_init(&a->refs, 1);
    atomic_init(&a->closed, false);
    atomic_init(&a->in_use, 0);
    atomic_init(&a->peak, 0);
    atomic_init(&a->cached, 0);
    atomic_init(&a->num_allocs, 0);
    for (i = 0; i < NUM_CLASSES; i++) {
        if (pthread_mutex_init(&a->lists[i].lock, NULL) != 0)
            goto fail_destroy_locks;
    }
    return a;

fail_destroy_locks:
    while (--i >= 0)
        pthread_mutex_destroy(&a->lists[i].lock);
    floe_free(a);
    return NULL;
}

static void allocator_destroy(dev_cpu__allocator *a) {
    dev_cpu__allocator_trim(a);
    for (int i = 0; i < NUM_CLASSES; i++)
        pthread_mutex_destroy(&a->lists[i].lock);
    floe_free(a->payload);
    floe_free(a);
}

void dev_cpu__allocator_set_payload(dev_cpu__allocator *a, void *payload) {
    a->payload = payload;
}

static void allocator_unref(dev_cpu__allocator *a) {
    if (atomic_fetch_sub(&a->refs, 1) == 1)
        allocator_destroy(a);
}

void dev_cpu__allocator_release(dev_cpu__allocator *a) {
    if (a == NULL)
        return;
    atomic_store(&a->closed, true);
    dev_cpu__allocator_trim(a);
    if (atomic_load(&a->in_use) > 0 && a->self != NULL)
        floe_log(a->self, FLOE_PLUGIN_LOG_DEBUG,
                 "CPU device destroyed with %llu bytes still in use; freed when released",
                 (unsigned long long)atomic_load(&a->in_use));
    allocator_unref(a);
}

/* ---- Allocation ------------------------------------------------------------------- */

static void *list_pop(dev_cpu__allocator *a, int cls) {
    free_list *l = &a->lists[cls];
    void *p;

    pthread_mutex_lock(&l->lock);
    p = l->head;
    if (p != NULL)
        l->head = *(void **)p;
    pthread_mutex_unlock(&l->lock);
    if (p != NULL)
        atomic_fetch_sub(&a->cached, class_size(cls));
    return p;
}

static void note_alloc(dev_cpu__allocator *a, size_t size) {
    uint_fast64_t now = atomic_fetch_add(&a->in_use, size) + size;
    uint_fast64_t peak = atomic_load(&a->peak);

    while (now > peak && !atomic_compare_exchange_weak(&a->peak, &peak, now))
        ;
    atomic_fetch_add(&a->num_allocs, 1);
    atomic_fetch_add(&a->refs, 1);
}

floe_status dev_cpu__allocator_alloc(dev_cpu__allocator *a, size_t nbytes, void **out) {
    int cls;
    size_t size;
    void *p = NULL;

    if (out == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "CPU alloc: NULL out pointer");
    *out = NULL;
    if (nbytes == 0)
        nbytes = 1;
    if (nbytes > SIZE_MAX - HEADER_SIZE - 64)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "CPU: cannot allocate %zu bytes", nbytes);
    cls = class_index(nbytes);
    size = cls < 0 ? (nbytes + 63) & ~(size_t)63 : class_size(cls);
    if (cls >= 0)
        p = list_pop(a, cls);
    if (p == NULL) {
        p = host_block_new(size, cls);
        if (p == NULL && atomic_load(&a->cached) > 0) {
            dev_cpu__allocator_trim(a);
            p = host_block_new(size, cls);
        }
        if (p == NULL)
            return floe_fail(FLOE_RESOURCE_EXHAUSTED,
                             "CPU: out of memory allocating %zu bytes (%llu in use)", nbytes,
                             (unsigned long long)atomic_load(&a->in_use));
    }
    header_of(p)->magic = MAGIC_LIVE;
    note_alloc(a, size);
    *out = p;
    return FLOE_OK;
}

/* Reserves @size bytes of the cache budget; false when it would pass the limit. */
static bool cache_reserve(dev_cpu__allocator *a, size_t size) {
    uint_fast64_t cur = atomic_load(&a->cached);

    do {
        if (cur + size > a->cache_limit)
            return false;
    } while (!atomic_compare_exchange_weak(&a->cached, &cur, cur + size));
    return true;
}

void dev_cpu__allocator_free(dev_cpu__allocator *a, void *ptr) {
    block_header *h;
    free_list *l;

    if (ptr == NULL)
        return;
    h = header_of(ptr);
    if (h->magic != MAGIC_LIVE) {
        /* Leaking is the only safe answer to a pointer we cannot vouch for. */
        if (a->self != NULL)
            floe_log(a->self, FLOE_PLUGIN_LOG_ERROR, "CPU free: %p %s; ignored", ptr,
                     h->magic == MAGIC_FREE ? "freed twice" : "was not allocated here");
        return;
    }
    h->magic = MAGIC_FREE;
    atomic_fetch_sub(&a->in_use, h->size);
    if (h->cls < 0 || atomic_load(&a->closed) || !cache_reserve(a, h->size)) {
        host_block_free(ptr);
    } else {
        l = &a->lists[h->cls];
        pthread_mutex_lock(&l->lock);
        *(void **)ptr = l->head;
        l->head = ptr;
        pthread_mutex_unlock(&l->lock);
    }
    allocator_unref(a);
}

void dev_cpu__allocator_trim(dev_cpu__allocator *a) {
    for (int cls = 0; cls < NUM_CLASSES; cls++) {
        free_list *l = &a->lists[cls];
        void *p;

        pthread_mutex_lock(&l->lock);
        p = l->head;
        l->head = NULL;
        pthread_mutex_unlock(&l->lock);
        while (p != NULL) {
            void *next = *(void **)p;
            host_block_free(p);
            atomic_fetch_sub(&a->cached, class_size(cls));
            p = next;
        }
    }
}

void dev_cpu__allocator_stats(dev_cpu__allocator *a, floe_device_memory_stats *out) {
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    out->bytes_in_use = atomic_load(&a->in_use);
    out->peak_bytes_in_use = atomic_load(&a->peak);
    out->bytes_cached = atomic_load(&a->cached);
    out->bytes_limit = 0;
    out->num_allocs = atomic_load(&a->num_allocs);
}
