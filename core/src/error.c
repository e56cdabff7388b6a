/*
 * error.c - error messages, status names, logging and the version string.
 *
 * Every failing call records a message in a thread-local buffer (floe__fail) and
 * returns its status; floe_last_error() reads the buffer back, like dlerror().  The
 * buffer is fixed-size so that recording an error never allocates (out-of-memory
 * paths report through it too).  Sections: messages, status names, logging, asserts,
 * version.
 */
#include "core-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOE__ERROR_LEN 1024

static _Thread_local char tl_error[FLOE__ERROR_LEN];

/* ---- Messages -------------------------------------------------------------------- */

floe_status floe__vfail(floe_status code, const char *fmt, va_list ap) {
    if (code == FLOE_OK || fmt == NULL) {
        tl_error[0] = '\0';
        return code;
    }
    /* The message may quote the previous one (floe_last_error() as an argument):
     * format into a scratch buffer first. */
    char tmp[FLOE__ERROR_LEN];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    memcpy(tl_error, tmp, sizeof(tmp));
    return code;
}

floe_status floe__fail(floe_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    floe_status st = floe__vfail(code, fmt, ap);
    va_end(ap);
    return st;
}

floe_status floe_set_error(floe_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    floe_status st = floe__vfail(code, fmt, ap);
    va_end(ap);
    return st;
}

void floe__error_prefix(const char *fmt, ...) {
    char prefix[FLOE__ERROR_LEN];
    va_list ap;
    size_t plen, mlen;

    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    plen = strlen(prefix);
    mlen = strlen(tl_error);
    /* Keep the prefix whole and truncate the old message to fit. */
    if (plen + mlen >= FLOE__ERROR_LEN)
        mlen = FLOE__ERROR_LEN - 1 - plen;
    memmove(tl_error + plen, tl_error, mlen);
    memcpy(tl_error, prefix, plen);
    tl_error[plen + mlen] = '\0';
}

const char *floe_last_error(void) {
    return tl_error;
}

/* ---- Status names ---------------------------------------------------------------- */

const char *floe_status_str(floe_status st) {
    switch (st) {
    case FLOE_OK: return "OK";
    case FLOE_CANCELLED: return "CANCELLED";
    case FLOE_UNKNOWN: return "UNKNOWN";
    case FLOE_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case FLOE_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case FLOE_NOT_FOUND: return "NOT_FOUND";
    case FLOE_ALREADY_EXISTS: return "ALREADY_EXISTS";
    case FLOE_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case FLOE_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case FLOE_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case FLOE_ABORTED: return "ABORTED";
    case FLOE_OUT_OF_RANGE: return "OUT_OF_RANGE";
    case FLOE_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case FLOE_INTERNAL: return "INTERNAL";
    case FLOE_UNAVAILABLE: return "UNAVAILABLE";
    case FLOE_DATA_LOSS: return "DATA_LOSS";
    case FLOE_UNAUTHENTICATED: return "UNAUTHENTICATED";
    }
    return "UNKNOWN_STATUS";
}

/* ---- Logging --------------------------------------------------------------------- */

static const char *level_name(floe_log_level level) {
    switch (level) {
    case FLOE_LOG_DEBUG: return "debug";
    case FLOE_LOG_INFO: return "info";
    case FLOE_LOG_WARNING: return "warning";
    case FLOE_LOG_ERROR: return "error";
    case FLOE_LOG_NONE: break;
    }
    return "log";
}

void floe__log(floe_context *ctx, floe_log_level level, const char *fmt, ...) {
    floe_log_level threshold = ctx != NULL ? ctx->opts.log_level : FLOE_LOG_WARNING;
    char msg[FLOE__ERROR_LEN];
    va_list ap;

    if (level < threshold || level >= FLOE_LOG_NONE || fmt == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx != NULL && ctx->opts.log_fn != NULL)
        ctx->opts.log_fn(ctx->opts.log_arg, level, msg);
    else
        fprintf(stderr, "floe %s: %s\n", level_name(level), msg);
}

/* ---- Asserts --------------------------------------------------------------------- */

_Noreturn void floe__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "floe: internal error: %s:%d: assertion '%s' failed\n", file, line, expr);
    fflush(stderr);
    abort();
}

/* ---- Version --------------------------------------------------------------------- */

#ifndef FLOE_VERSION_STRING
#  error "FLOE_VERSION_STRING must be defined by the build (core/meson.build)"
#endif

const char *floe_version(void) {
    return FLOE_VERSION_STRING;
}
