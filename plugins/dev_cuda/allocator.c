/*
 * allocator.c - the bookkeeping of dev_cuda's caching allocator (no CUDA call here:
 * raw device memory comes from the backend, cudaMalloc/cudaFree in dev_cuda.c).
 *
 * Memory is reserved from the backend in regions.  A region is cut into chunks that
 * tile it in address order (a doubly linked list through prev/next); a chunk is in use
 * or free.  A request takes the smallest free chunk that fits (best fit, ties: lower
 * address), splitting off the remainder when it is at least DEV_CUDA__ALIGN bytes; a
 * freed chunk merges with free neighbours of its region.  Chunks in use are found by
 * address in a chained hash table.  This is TensorFlow's BFC scheme without its size
 * bins: the free list is scanned, which is fast enough for the hundreds of live
 * tensors of a training step.
 *
 * Sections: regions and chunks; the hash of chunks in use; alloc and free; stats.
 */
#include "dev_cuda-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct region region;

typedef struct chunk {
    uintptr_t addr;
    size_t size;
    bool in_use;
    region *reg;
    struct chunk *prev, *next;          /* neighbours in the region, by address */
    struct chunk *free_prev, *free_next;/* the free list (free chunks only) */
    struct chunk *hnext;                /* the hash chain (chunks in use only) */
} chunk;

struct region {
    void *base;
    size_t size;
    chunk *first;
    region *next;
};

struct dev_cuda__allocator {
    pthread_mutex_t lock;
    dev_cuda__alloc_backend backend;
    uint64_t limit;
    bool allow_growth;
    size_t next_region;                 /* growth: the next region's size */
    region *regions;
    chunk *free_list;
    chunk **buckets;
    size_t nbuckets, nused;             /* hash of chunks in use */
    uint64_t reserved, in_use, peak, num_allocs;
};

/* ---- Regions and chunks --------------------------------------------------------------- */

size_t dev_cuda__allocator_round(size_t nbytes) {
    if (nbytes == 0)
        nbytes = 1;
    if (nbytes > SIZE_MAX - (DEV_CUDA__ALIGN - 1))
        return 0;
    return (nbytes + DEV_CUDA__ALIGN - 1) & ~(DEV_CUDA__ALIGN - 1);
}

static void free_list_push(dev_cuda__allocator *a, chunk *c) {
    c->free_prev = NULL;
    c->free_next = a->free_list;
    if (a->free_list != NULL)
        a->free_list->free_prev = c;
    a->free_list = c;
}

static void free_list_remove(dev_cuda__allocator *a, chunk *c) {
    if (c->free_prev != NULL)
        c->free_prev->free_next = c->free_next;
    else
        a->free_list = c->free_next;
    if (c->free_next != NULL)
        c->free_next->free_prev = c->free_prev;
    c->free_prev = c->free_next = NULL;
}

static chunk *chunk_new(region *r, uintptr_t addr, size_t size) {
    chunk *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->addr = addr;
        c->size = size;
        c->reg = r;
    }
    return c;
}

/* Reserves a region of @size bytes from the backend: one free chunk. */
static floe_status region_add(dev_cuda__allocator *a, size_t size) {
    region *r = calloc(1, sizeof(*r));
    void *base = NULL;
    floe_status st;

    if (r == NULL)
        return FLOE_RESOURCE_EXHAUSTED;
    st = a->backend.reserve(a->backend.ctx, size, &base);
    if (st != FLOE_OK) {
        free(r);
        return st;
    }
    r->base = base;
    r->size = size;
    r->first = chunk_new(r, (uintptr_t)base, size);
    if (r->first == NULL) {
        a->backend.release(a->backend.ctx, base, size);
        free(r);
        return FLOE_RESOURCE_EXHAUSTED;
    }
    r->next = a->regions;
    a->regions = r;
    a->reserved += size;
    free_list_push(a, r->first);
    return FLOE_OK;
}

/* Releases every region whose only chunk is free. */
static uint64_t trim_locked(dev_cuda__allocator *a) {
    region **pp = &a->regions;
    uint64_t released = 0;

    while (*pp != NULL) {
        region *r = *pp;
        if (r->first->in_use || r->first->next != NULL) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        free_list_remove(a, r->first);
        a->backend.release(a->backend.ctx, r->base, r->size);
        a->reserved -= r->size;
        released += r->size;
        free(r->first);
        free(r);
    }
    return released;
}

/* ---- The hash of chunks in use ----------------------------------------------------- */

static size_t hash_of(const dev_cuda__allocator *a, uintptr_t p) {
    uint64_t x = (uint64_t)p >> 8;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (size_t)(x & (a->nbuckets - 1));
}

static int hash_grow(dev_cuda__allocator *a) {
    size_t n = a->nbuckets * 2;
    chunk **b = calloc(n, sizeof(*b));
    chunk **old = a->buckets;
    size_t oldn = a->nbuckets;

    if (b == NULL)
        return -1;
    a->buckets = b;
    a->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        chunk *c = old[i];
        while (c != NULL) {
            chunk *nx = c->hnext;
            size_t h = hash_of(a, c->addr);
            c->hnext = b[h];
            b[h] = c;
            c = nx;
        }
    }
    free(old);
    return 0;
}

static void hash_insert(dev_cuda__allocator *a, chunk *c) {
    size_t h;
    if (a->nused + 1 > a->nbuckets * 2)
        (void)hash_grow(a); /* on failure the chains just get longer */
    h = hash_of(a, c->addr);
    c->hnext = a->buckets[h];
    a->buckets[h] = c;
    a->nused++;
}

static chunk *hash_take(dev_cuda__allocator *a, uintptr_t p) {
    chunk **pp = &a->buckets[hash_of(a, p)];
    while (*pp != NULL) {
        chunk *c = *pp;
        if (c->addr == p) {
            *pp = c->hnext;
            c->hnext = NULL;
            a->nused--;
            return c;
        }
        pp = &c->hnext;
    }
    return NULL;
}

/* ---- Allocation -------------------------------------------------------------------- */

dev_cuda__allocator *dev_cuda__allocator_new(const dev_cuda__alloc_backend *backend,
                                             uint64_t limit, bool allow_growth) {
    dev_cuda__allocator *a;

    if (backend == NULL || backend->reserve == NULL || backend->release == NULL || limit == 0)
        return NULL;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->nbuckets = 256;
    a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
    if (a->buckets == NULL || pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a->buckets);
        free(a);
        return NULL;
    }
    a->backend = *backend;
    a->limit = limit & ~(uint64_t)(DEV_CUDA__ALIGN - 1);
    if (a->limit == 0)
        a->limit = DEV_CUDA__ALIGN;
    a->allow_growth = allow_growth;
    a->next_region = DEV_CUDA__MIN_REGION;
    return a;
}

int dev_cuda__allocator_free_all(dev_cuda__allocator *a) {
    int leaked = 0;

    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->lock);
    while (a->regions != NULL) {
        region *r = a->regions;
        chunk *c = r->first;
        a->regions = r->next;
        while (c != NULL) {
            chunk *nx = c->next;
            leaked += c->in_use ? 1 : 0;
            free(c);
            c = nx;
        }
        a->backend.release(a->backend.ctx, r->base, r->size);
        free(r);
    }
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_destroy(&a->lock);
    free(a->buckets);
    free(a);
    return leaked;
}

static chunk *best_fit(dev_cuda__allocator *a, size_t size) {
    chunk *best = NULL;
    for (chunk *c = a->free_list; c != NULL; c = c->free_next)
        if (c->size >= size &&
            (best == NULL || c->size < best->size || (c->size == best->size && c->addr < best->addr)))
            best = c;
    return best;
}

/* Takes @size bytes from the front of free chunk @c. */
static int take(dev_cuda__allocator *a, chunk *c, size_t size) {
    if (c->size - size >= DEV_CUDA__ALIGN) {
        chunk *rest = chunk_new(c->reg, c->addr + size, c->size - size);
        if (rest == NULL)
            return -1;
        rest->prev = c;
        rest->next = c->next;
        if (c->next != NULL)
            c->next->prev = rest;
        c->next = rest;
        c->size = size;
        free_list_push(a, rest);
    }
    free_list_remove(a, c);
    c->in_use = true;
    hash_insert(a, c);
    a->in_use += c->size;
    if (a->in_use > a->peak)
        a->peak = a->in_use;
    a->num_allocs++;
    return 0;
}

/* The size of the next region for a request of @size bytes, 0 when over the limit. */
static size_t region_size_for(dev_cuda__allocator *a, size_t size) {
    uint64_t room = a->limit - a->reserved;
    size_t want;

    if (!a->allow_growth)
        want = a->regions == NULL ? (size_t)a->limit : size;
    else
        want = size > a->next_region ? size : a->next_region;
    if (want > room)
        want = (size_t)room;
    return want >= size ? want : 0;
}

static floe_status grow(dev_cuda__allocator *a, size_t size) {
    size_t rs = region_size_for(a, size);
    floe_status st;

    if (rs == 0)
        return FLOE_RESOURCE_EXHAUSTED;
    st = region_add(a, rs);
    if (st == FLOE_OK && a->allow_growth && a->next_region <= SIZE_MAX / 2)
        a->next_region *= 2;
    return st;
}

floe_status dev_cuda__allocator_alloc(dev_cuda__allocator *a, size_t nbytes, void **out) {
    size_t size = dev_cuda__allocator_round(nbytes);
    floe_status st = FLOE_OK;
    chunk *c;

    if (out == NULL || a == NULL)
        return floe_fail(FLOE_INVALID_ARGUMENT, "CUDA allocator: NULL %s",
                         a == NULL ? "allocator" : "output");
    *out = NULL;
    if (size == 0 || size > a->limit)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED,
                         "GPU allocation of %zu bytes exceeds the memory limit of %llu bytes "
                         "(FLOE_CUDA_MEMORY_FRACTION sets it)",
                         nbytes, (unsigned long long)a->limit);
    pthread_mutex_lock(&a->lock);
    c = best_fit(a, size);
    if (c == NULL) {
        st = grow(a, size);
        if (st != FLOE_OK && trim_locked(a) > 0)
            st = grow(a, size);
        c = st == FLOE_OK ? best_fit(a, size) : NULL;
    }
    if (c != NULL && take(a, c, size) == 0)
        *out = (void *)c->addr;
    pthread_mutex_unlock(&a->lock);
    if (*out != NULL)
        return FLOE_OK;
    {
        floe_device_memory_stats s;
        dev_cuda__allocator_stats(a, &s);
        return floe_fail(FLOE_RESOURCE_EXHAUSTED,
                         "GPU out of memory allocating %zu bytes: %llu in use, %llu cached, "
                         "limit %llu (FLOE_CUDA_MEMORY_FRACTION, FLOE_CUDA_ALLOW_GROWTH)",
                         nbytes, (unsigned long long)s.bytes_in_use,
                         (unsigned long long)s.bytes_cached, (unsigned long long)s.bytes_limit);
    }
}

/* Merges free chunk @c with its free neighbour @n (n == c->next). */
static void merge_next(dev_cuda__allocator *a, chunk *c, chunk *n) {
    free_list_remove(a, n);
    c->size += n->size;
    c->next = n->next;
    if (n->next != NULL)
        n->next->prev = c;
    free(n);
}

floe_status dev_cuda__allocator_dealloc(dev_cuda__allocator *a, void *ptr) {
    chunk *c;

    if (ptr == NULL || a == NULL)
        return FLOE_OK;
    pthread_mutex_lock(&a->lock);
    c = hash_take(a, (uintptr_t)ptr);
    if (c == NULL) {
        pthread_mutex_unlock(&a->lock);
        return floe_fail(FLOE_INVALID_ARGUMENT,
                         "GPU free of %p, which is not an allocation in use (freed twice?)", ptr);
    }
    c->in_use = false;
    a->in_use -= c->size;
    free_list_push(a, c);
    if (c->next != NULL && !c->next->in_use)
        merge_next(a, c, c->next);
    if (c->prev != NULL && !c->prev->in_use)
        merge_next(a, c->prev, c);
    pthread_mutex_unlock(&a->lock);
    return FLOE_OK;
}

uint64_t dev_cuda__allocator_trim(dev_cuda__allocator *a) {
    uint64_t n;
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->lock);
    n = trim_locked(a);
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* ---- Statistics ------------------------------------------------------------------- */

void dev_cuda__allocator_stats(dev_cuda__allocator *a, floe_device_memory_stats *out) {
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    out->bytes_in_use = a->in_use;
    out->peak_bytes_in_use = a->peak;
    out->bytes_cached = a->reserved - a->in_use;
    out->bytes_limit = a->limit;
    out->num_allocs = a->num_allocs;
    pthread_mutex_unlock(&a->lock);
}
