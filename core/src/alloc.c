/*
 * alloc.c - the core's allocator, with out-of-memory fault injection.
 *
 * Every allocation of the core, and every host->alloc of a plugin, goes through the
 * functions below, which consult one process-wide counter first: a test arms it with
 * floe_testing_fail_alloc(N, persistent) to fail the Nth allocation from then on (and,
 * if persistent, every later one), SQLite's OOM loop.  Disarmed, the check costs one
 * relaxed atomic load.  Aligned blocks come from posix_memalign and are released with
 * free(), so floe__free_aligned and floe__free differ only in what they document.
 */
#include "core-impl.h"

#include <floe/experimental/testing.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FLOE__DEFAULT_ALIGN 64

static atomic_int fault_armed;            /* 0: injection off */
static atomic_llong fault_counter;        /* allocations seen since arming */
static atomic_llong fault_nth;
static atomic_int fault_persistent;
static atomic_llong fault_failures;

void floe_testing_fail_alloc(int64_t nth, int persistent) {
    atomic_store(&fault_armed, 0);
    atomic_store(&fault_counter, 0);
    atomic_store(&fault_failures, 0);
    atomic_store(&fault_nth, nth);
    atomic_store(&fault_persistent, persistent != 0);
    if (nth > 0)
        atomic_store(&fault_armed, 1);
}

int64_t floe_testing_alloc_failures(void) {
    return atomic_load(&fault_failures);
}

/* True when this allocation must fail. */
static bool fault_hit(void) {
    if (__builtin_expect(atomic_load_explicit(&fault_armed, memory_order_relaxed) == 0, 1))
        return false;
    long long n = atomic_fetch_add(&fault_counter, 1) + 1;
    long long nth = atomic_load(&fault_nth);
    if (n == nth || (n > nth && atomic_load(&fault_persistent))) {
        atomic_fetch_add(&fault_failures, 1);
        return true;
    }
    return false;
}

void *floe__malloc(size_t n) {
    if (fault_hit())
        return NULL;
    return malloc(n != 0 ? n : 1);
}

void *floe__calloc(size_t count, size_t n) {
    if (fault_hit())
        return NULL;
    if (count == 0 || n == 0)
        return calloc(1, 1);
    return calloc(count, n);
}

void *floe__realloc(void *p, size_t n) {
    if (fault_hit())
        return NULL;
    return realloc(p, n != 0 ? n : 1);
}

void floe__free(void *p) {
    free(p);
}

char *floe__strndup(const char *s, size_t n) {
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = floe__malloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *floe__strdup(const char *s) {
    if (s == NULL)
        return NULL;
    return floe__strndup(s, strlen(s));
}

void *floe__alloc_aligned(size_t n, size_t align) {
    void *p = NULL;

    if (align == 0)
        align = FLOE__DEFAULT_ALIGN;
    if ((align & (align - 1)) != 0)
        return NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (fault_hit())
        return NULL;
    if (posix_memalign(&p, align, n != 0 ? n : 1) != 0)
        return NULL;
    return p;
}

void floe__free_aligned(void *p) {
    free(p);
}
