/*
 * tensorboard-impl.h - fit's TensorBoard log directory (tensorboard.c), private to
 * libfloe_keras.  Errors are reported with floe__keras_fail.
 */
#ifndef FLOE_KERAS_TENSORBOARD_IMPL_H
#define FLOE_KERAS_TENSORBOARD_IMPL_H

#include <floe/floe.h>
#include <floe/keras.h>

typedef struct floe__tensorboard floe__tensorboard;

/* Creates LOGDIR/train (and LOGDIR/validation when @validation) event files and writes
 * @g to the train file.  (transfer full): floe__tensorboard_close(). */
floe_status floe__tensorboard_open(floe_context *ctx, const char *logdir, int validation,
                                   const floe_graph *g, floe__tensorboard **out);
/* Adds a variable whose histogram is written each epoch: @read outputs its value. */
floe_status floe__tensorboard_add_weight(floe__tensorboard *tb, const char *name,
                                         floe_output read);
/* Sets the node output whose value is logged as epoch_learning_rate (an F32/F64 scalar);
 * .node NULL: none. */
void floe__tensorboard_set_lr(floe__tensorboard *tb, floe_output lr);
/* Writes one training step's batch_loss and batch_accuracy (@accuracy < 0: none). */
floe_status floe__tensorboard_batch(floe__tensorboard *tb, int64_t step, double loss,
                                    double accuracy);
/* Writes one epoch's scalars and histograms and flushes both files. */
floe_status floe__tensorboard_epoch(floe__tensorboard *tb, floe_session *s,
                                    const floe_epoch_logs *logs);
/* Closes the files and frees @tb.  NULL-safe. */
floe_status floe__tensorboard_close(floe__tensorboard *tb);

#endif /* FLOE_KERAS_TENSORBOARD_IMPL_H */
