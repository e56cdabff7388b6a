/*
 * keras-impl.h - private declarations shared by libfloe_keras's sources (not installed).
 */
#ifndef FLOE_KERAS_IMPL_H
#define FLOE_KERAS_IMPL_H

#include <floe/floe.h>

/*
 * floe__keras_fail: records a failure message for floe_keras_last_error() (keras.h) on
 * the calling thread and returns @st.  Pass a libfloe failure on with its message:
 * floe__keras_fail(st, "fit: %s", floe_last_error()).  Defined in keras.c.
 */
floe_status floe__keras_fail(floe_status st, const char *fmt, ...) FLOE_PRINTF(2, 3);

#endif /* FLOE_KERAS_IMPL_H */
