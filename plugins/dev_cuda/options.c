/*
 * options.c - the FLOE_CUDA_* environment variables (dev_cuda-impl.h lists them).
 *
 * Plain C with no CUDA call: the parser takes the getenv function, so the unit test
 * feeds it a table.  A malformed value is an error naming the variable (the plugin
 * then refuses to start rather than run with a setting the user did not ask for).
 */
#include "dev_cuda-impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void defaults(dev_cuda__options *o) {
    memset(o, 0, sizeof(*o));
    o->allow_growth = false;
    o->memory_fraction = 0.9;
    o->allow_tf32 = false;
    o->visible_all = true;
    o->staging_bytes = (size_t)8 << 20;
}

static int parse_bool(const char *v, bool *out) {
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static int parse_fraction(const char *v, double *out) {
    char *end;
    double f;

    errno = 0;
    f = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(f > 0.0 && f <= 1.0))
        return -1;
    *out = f;
    return 0;
}

/* "0,2,3": distinct ordinals 0..63; "" hides every GPU. */
static int parse_visible(const char *v, dev_cuda__options *o) {
    const char *p = v;

    o->visible_all = false;
    o->nvisible = 0;
    while (*p != '\0') {
        char *end;
        long n;

        errno = 0;
        n = strtol(p, &end, 10);
        if (errno != 0 || end == p || n < 0 || n >= 64)
            return -1;
        for (int i = 0; i < o->nvisible; i++)
            if (o->visible[i] == (int)n)
                return -1;
        o->visible[o->nvisible++] = (int)n;
        if (*end == ',' && end[1] != '\0')
            p = end + 1;
        else if (*end == '\0')
            p = end;
        else
            return -1;
    }
    return 0;
}

static int parse_mb(const char *v, size_t *out) {
    char *end;
    unsigned long long mb;

    errno = 0;
    if (*v == '-')
        return -1;
    mb = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || mb == 0 || mb > 4096)
        return -1;
    *out = (size_t)mb << 20;
    return 0;
}

floe_status dev_cuda__options_parse(const char *(*getenv_fn)(const char *name),
                                    dev_cuda__options *out, char *err, size_t errlen) {
    static const char *const expect[] = {
        "0 or 1", "a number in (0, 1]", "0 or 1", "comma-separated ordinals 0..63, no repeats",
        "megabytes, 1..4096", "0 or 1"};
    static const char *const names[] = {
        "FLOE_CUDA_ALLOW_GROWTH", "FLOE_CUDA_MEMORY_FRACTION", "FLOE_CUDA_ALLOW_TF32",
        "FLOE_CUDA_VISIBLE_DEVICES", "FLOE_CUDA_STAGING_MB", "FLOE_CUDA_CHECK_REGISTRATION"};
    dev_cuda__options o;

    defaults(out);
    if (errlen > 0)
        err[0] = '\0';
    defaults(&o);
    for (int i = 0; i < 6; i++) {
        const char *v = getenv_fn(names[i]);
        int bad = 0;
        if (v == NULL)
            continue;
        switch (i) {
        case 0: bad = parse_bool(v, &o.allow_growth); break;
        case 1: bad = parse_fraction(v, &o.memory_fraction); break;
        case 2: bad = parse_bool(v, &o.allow_tf32); break;
        case 3: bad = parse_visible(v, &o); break;
        case 4: bad = parse_mb(v, &o.staging_bytes); break;
        default: bad = parse_bool(v, &o.check_registration); break;
        }
        if (bad != 0) {
            if (errlen > 0)
                snprintf(err, errlen, "%s=\"%.64s\" is not valid: expected %s", names[i], v,
                         expect[i]);
            return FLOE_INVALID_ARGUMENT;
        }
    }
    *out = o;
    return FLOE_OK;
}

bool dev_cuda__options_visible(const dev_cuda__options *o, int ordinal) {
    if (o->visible_all)
        return true;
    for (int i = 0; i < o->nvisible; i++)
        if (o->visible[i] == ordinal)
            return true;
    return false;
}
