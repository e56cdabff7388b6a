/*
 * floe/experimental/testing.h - fault injection for tests (unstable API).
 *
 * Every allocation of the core, and every host->alloc of a plugin, passes through one
 * counter, so a test can fail the Nth allocation and check that the public call it
 * made returns FLOE_RESOURCE_EXHAUSTED and leaks nothing (SQLite's OOM loop).
 */
#ifndef FLOE_EXPERIMENTAL_TESTING_H
#define FLOE_EXPERIMENTAL_TESTING_H

#include <floe/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fails the @nth allocation from now (1 = the next one); with @persistent, every one
 * after it too.  @nth <= 0 turns injection off.  Process-wide; not thread-safe against
 * concurrent calls of itself. */
FLOE_API void floe_testing_fail_alloc(int64_t nth, int persistent);
/* Number of allocations failed by injection since the last floe_testing_fail_alloc(). */
FLOE_API int64_t floe_testing_alloc_failures(void);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_EXPERIMENTAL_TESTING_H */
