/*
 * fuzz_util.h - helpers shared by the fuzz targets of tests/fuzz: the oracle check
 * that turns a broken invariant into a crash libFuzzer reports, and a splitter that
 * cuts the fuzz input into separately allocated NUL-terminated fields (one heap block
 * each, exactly sized, so AddressSanitizer catches a parser reading past a string's
 * terminator).
 *
 * The targets link the core's internal archive (or, for libFuzzer builds, the core
 * sources compiled with coverage instrumentation) and see the floe__ functions.
 */
#ifndef FLOE_FUZZ_UTIL_H
#define FLOE_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant: report it and abort, so both libFuzzer and the replay test fail. */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                               \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* True when FLOE_FUZZ_VERBOSE is set: targets then print each input's outcome (for
 * checking what a corpus file exercises; libFuzzer runs leave it unset). */
static inline bool fuzz_verbose(void) {
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FLOE_FUZZ_VERBOSE") != NULL;
    return verbose != 0;
}

/* Fields of an input cut at every NUL or newline byte. */
typedef struct fuzz_fields {
    char **items;
    size_t n;
} fuzz_fields;

static inline size_t fuzz_field_len(const uint8_t *data, size_t size) {
    size_t k = 0;
    while (k < size && data[k] != '\0' && data[k] != '\n')
        k++;
    return k;
}

/* Splits @data into fields; an input of N separators has N + 1 fields (the empty input
 * has one empty field).  Returns 0, or -1 when malloc fails (the target then skips the
 * input: running out of memory in the harness is no finding). */
static inline int fuzz_split(const uint8_t *data, size_t size, fuzz_fields *out) {
    size_t n = 1, pos = 0;

    out->items = NULL;
    out->n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\0' || data[i] == '\n';
    out->items = calloc(n, sizeof(*out->items));
    if (out->items == NULL)
        return -1;
    for (size_t f = 0; f < n; f++) {
        size_t len = fuzz_field_len(data + pos, size - pos);
        char *s = malloc(len + 1);
        if (s == NULL)
            return -1;
        memcpy(s, data + pos, len);
        s[len] = '\0';
        out->items[out->n++] = s;
        pos += len + 1;
    }
    return 0;
}

static inline void fuzz_fields_free(fuzz_fields *f) {
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i]);
    free(f->items);
    f->items = NULL;
    f->n = 0;
}

/* The input up to its first NUL byte as an exactly sized NUL-terminated string (what a
 * C caller would pass).  NULL when malloc fails. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
    const uint8_t *nul = size > 0 ? memchr(data, '\0', size) : NULL;
    size_t len = nul != NULL ? (size_t)(nul - data) : size;
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    if (len > 0)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* FLOE_FUZZ_UTIL_H */
