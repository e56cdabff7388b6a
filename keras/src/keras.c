/*
 * keras.c - the Sequential model (floe/keras.h): compile builds the graph and session,
 * fit, evaluate and predict run prepared plans; and libfloe_keras's error messages.
 *
 * Sections: errors.
 */
#include "keras-impl.h"

#include <floe/keras.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- Errors ------------------------------------------------------------------------ */

static _Thread_local char keras_error[1024];

floe_status floe__keras_fail(floe_status st, const char *fmt, ...) {
    char buf[sizeof(keras_error)];
    va_list ap;

    /* Formatted aside first: a message may quote the previous one. */
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memcpy(keras_error, buf, sizeof(buf));
    return st;
}

const char *floe_keras_last_error(void) {
    return keras_error;
}
