/*
 * dtype.c - element types and checked shape arithmetic.
 *
 * One table maps each floe_dtype to its size and short name; floe_dtype_from_name()
 * also accepts TensorFlow's names ("float", "int32", "half", "DT_FLOAT", ...) and the
 * numpy-style "float32".  floe__shape_check() is the single place where extents are
 * multiplied, with overflow checks against int64 elements and size_t bytes
 * (TensorFlow's CVE-2021-41197 class).
 */
#include "core-impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

typedef struct dtype_info {
    floe_dtype dtype;
    size_t size;
    const char *name;      /* Floe's short name */
    const char *tf_name;   /* TensorFlow's name (DT_ suffix, lower case) */
} dtype_info;

static const dtype_info dtype_table[] = {
    {FLOE_DTYPE_F32, 4, "f32", "float"},
    {FLOE_DTYPE_F64, 8, "f64", "double"},
    {FLOE_DTYPE_I32, 4, "i32", "int32"},
    {FLOE_DTYPE_U8, 1, "u8", "uint8"},
    {FLOE_DTYPE_I16, 2, "i16", "int16"},
    {FLOE_DTYPE_I8, 1, "i8", "int8"},
    {FLOE_DTYPE_STRING, sizeof(floe_tstring), "string", "string"},
    {FLOE_DTYPE_COMPLEX64, 8, "complex64", "complex64"},
    {FLOE_DTYPE_I64, 8, "i64", "int64"},
    {FLOE_DTYPE_BOOL, 1, "bool", "bool"},
    {FLOE_DTYPE_BF16, 2, "bf16", "bfloat16"},
    {FLOE_DTYPE_U16, 2, "u16", "uint16"},
    {FLOE_DTYPE_F16, 2, "f16", "half"},
    {FLOE_DTYPE_RESOURCE, sizeof(void *), "resource", "resource"},
    {FLOE_DTYPE_U32, 4, "u32", "uint32"},
    {FLOE_DTYPE_U64, 8, "u64", "uint64"},
};

#define NUM_DTYPES (sizeof(dtype_table) / sizeof(dtype_table[0]))

/* Other spellings seen in the wild. */
static const struct {
    const char *name;
    floe_dtype dtype;
} dtype_aliases[] = {
    {"float32", FLOE_DTYPE_F32}, {"float64", FLOE_DTYPE_F64}, {"float16", FLOE_DTYPE_F16},
    {"c64", FLOE_DTYPE_COMPLEX64},
};

static const dtype_info *dtype_lookup(floe_dtype dt) {
    /* The table is small; a switch would be no faster than this scan in practice. */
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].dtype == dt)
            return &dtype_table[i];
    return NULL;
}

size_t floe_dtype_size(floe_dtype dtype) {
    switch (dtype) {
    case FLOE_DTYPE_U8: case FLOE_DTYPE_I8: case FLOE_DTYPE_BOOL:
        return 1;
    case FLOE_DTYPE_I16: case FLOE_DTYPE_U16: case FLOE_DTYPE_F16: case FLOE_DTYPE_BF16:
        return 2;
    case FLOE_DTYPE_F32: case FLOE_DTYPE_I32: case FLOE_DTYPE_U32:
        return 4;
    case FLOE_DTYPE_F64: case FLOE_DTYPE_I64: case FLOE_DTYPE_U64: case FLOE_DTYPE_COMPLEX64:
        return 8;
    case FLOE_DTYPE_STRING:
        return sizeof(floe_tstring);
    case FLOE_DTYPE_RESOURCE:
        return sizeof(void *);
    case FLOE_DTYPE_INVALID:
        break;
    }
    return 0;
}

const char *floe_dtype_name(floe_dtype dtype) {
    const dtype_info *d = dtype_lookup(dtype);
    return d != NULL ? d->name : "invalid";
}

floe_dtype floe_dtype_from_name(const char *name) {
    char lower[32];
    size_t n;

    if (name == NULL)
        return FLOE_DTYPE_INVALID;
    /* "DT_FLOAT" -> "float" */
    if (strncmp(name, "DT_", 3) == 0)
        name += 3;
    n = strlen(name);
    if (n == 0 || n >= sizeof(lower))
        return FLOE_DTYPE_INVALID;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (strcmp(lower, dtype_table[i].name) == 0 || strcmp(lower, dtype_table[i].tf_name) == 0)
            return dtype_table[i].dtype;
    for (size_t i = 0; i < sizeof(dtype_aliases) / sizeof(dtype_aliases[0]); i++)
        if (strcmp(lower, dtype_aliases[i].name) == 0)
            return dtype_aliases[i].dtype;
    return FLOE_DTYPE_INVALID;
}

bool floe__dtype_valid(floe_dtype dt) {
    return floe_dtype_size(dt) != 0;
}

floe_status floe__shape_check(floe_dtype dtype, const int64_t *shape, int ndim,
                              int64_t *num_elements, size_t *nbytes) {
    size_t esize = floe_dtype_size(dtype);
    int64_t count = 1;
    size_t bytes;
    bool has_zero = false;

    if (num_elements != NULL)
        *num_elements = 0;
    if (nbytes != NULL)
        *nbytes = 0;
    if (esize == 0)
        return floe__fail(FLOE_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
    if (ndim < 0 || ndim > FLOE_MAX_DIMS)
        return floe__fail(FLOE_INVALID_ARGUMENT, "rank %d out of range 0..%d", ndim,
                          FLOE_MAX_DIMS);
    if (ndim > 0 && shape == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "shape is NULL for rank %d", ndim);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return floe__fail(FLOE_INVALID_ARGUMENT, "dimension %d has negative extent %" PRId64,
                              i, shape[i]);
        if (shape[i] == 0)
            has_zero = true;
    }
    if (has_zero) {
        count = 0;
    } else {
        for (int i = 0; i < ndim; i++) {
            if (__builtin_mul_overflow(count, shape[i], &count))
                return floe__fail(FLOE_INVALID_ARGUMENT,
                                  "element count overflows int64 at dimension %d (extent %" PRId64
                                  ")", i, shape[i]);
        }
    }
    if (__builtin_mul_overflow((size_t)count, esize, &bytes) || bytes > (size_t)INT64_MAX)
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "byte size of %" PRId64 " elements of %s overflows", count,
                          floe_dtype_name(dtype));
    if (num_elements != NULL)
        *num_elements = count;
    if (nbytes != NULL)
        *nbytes = bytes;
    return FLOE_OK;
}
