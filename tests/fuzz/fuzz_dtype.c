/*
 * fuzz_dtype.c - libFuzzer target for the dtype-name parsers: floe_dtype_from_name
 * (dtype.c: "f32", "float", "DT_FLOAT", "float32", any case) and the type-set parser
 * floe__parse_type_set (opdef.c: "{f32, inttype}", "numbertype", "i64"), which reads
 * the constraints of the kernels a plugin registers.
 *
 * Input format: the bytes up to the first NUL are the name or set.
 *
 * Oracle: floe_dtype_from_name returns INVALID or a valid dtype whose own name maps
 * back to it.  floe__parse_type_set returns OK with a non-empty mask of valid dtypes,
 * or INVALID_ARGUMENT with mask 0 and a message; a set accepted bare is accepted in
 * braces with the same mask; a string that is one identifier and a dtype name is the
 * set of that one dtype.
 */
#include "fuzz_util.h"

#include "core-impl.h"

#include <ctype.h>

/* The mask of every valid dtype. */
static uint64_t valid_mask(void) {
    uint64_t m = 0;
    for (int dt = 0; dt < 64; dt++)
        if (floe__dtype_valid((floe_dtype)dt))
            m |= FLOE__DTYPE_MASK(dt);
    return m;
}

static bool is_ident(const char *s) {
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; *s != '\0'; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static void check_name(const char *s) {
    floe_dtype dt = floe_dtype_from_name(s);
    if (dt == FLOE_DTYPE_INVALID)
        return;
    FUZZ_CHECK(floe__dtype_valid(dt));
    FUZZ_CHECK(floe_dtype_size(dt) > 0);
    FUZZ_CHECK(floe_dtype_from_name(floe_dtype_name(dt)) == dt);
}

/* Parses @spec as a type set; checks the outcome; returns the mask (0: rejected). */
static uint64_t check_set(const char *spec) {
    uint64_t mask = 0x5a5a5a5a5a5a5a5aull;
    floe_status st = floe__parse_type_set(spec, &mask);
    if (fuzz_verbose())
        fprintf(stderr, "  type set: %s: %s (mask 0x%llx)\n", floe_status_str(st),
                st == FLOE_OK ? "" : floe_last_error(), (unsigned long long)mask);
    if (st != FLOE_OK) {
        FUZZ_CHECK(st == FLOE_INVALID_ARGUMENT);
        FUZZ_CHECK(mask == 0);
        FUZZ_CHECK(floe_last_error()[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(mask != 0);
    FUZZ_CHECK((mask & ~valid_mask()) == 0);
    return mask;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstring(data, size);
    uint64_t mask;

    if (s == NULL)
        return 0;
    check_name(s);
    mask = check_set(s);
    if (mask != 0) {
        const char *p = s;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '{') {
            size_t n = strlen(s);
            char *braced = malloc(n + 3);
            if (braced != NULL) {
                braced[0] = '{';
                memcpy(braced + 1, s, n);
                braced[n + 1] = '}';
                braced[n + 2] = '\0';
                FUZZ_CHECK(check_set(braced) == mask);
                free(braced);
            }
        }
    }
    if (is_ident(s) && floe_dtype_from_name(s) != FLOE_DTYPE_INVALID)
        FUZZ_CHECK(mask == FLOE__DTYPE_MASK(floe_dtype_from_name(s)));
    free(s);
    return 0;
}
