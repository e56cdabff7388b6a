/*
 * tensorboard.c - fit's log directory (floe_fit_options.logdir): TensorBoard event
 * files laid out as Keras' TensorBoard callback lays them out, through libfloe_io's
 * summary writer (floe/summary.h).
 *
 *   LOGDIR/train/events.out.tfevents...       the graph (once, at the start of fit;
 *                                             a graph that cannot be exported is
 *                                             reported on stderr, and fit goes on),
 *                                             per epoch epoch_loss, epoch_accuracy,
 *                                             epoch_learning_rate (the optimizer's rate
 *                                             node after the epoch) and a histogram of
 *                                             each layer variable ("dense/kernel", ...)
 *   LOGDIR/validation/events.out.tfevents...  per epoch epoch_loss, epoch_accuracy of
 *                                             the validation data (when fit has some)
 *
 * The step of an epoch's values is the epoch's 0-based index, as in Keras; with
 * log_every_steps, batch_loss and batch_accuracy go to train/ at the training step (the
 * train file then also flushes every 10 s).  Both files are flushed after every epoch, so `tensorboard --logdir LOGDIR` shows each epoch as
 * it ends.  Variables and the rate are read (their "NAME/Read" nodes, the rate node) in
 * one session run.
 */
#include "keras-impl.h"
#include "tensorboard-impl.h"

#include <floe/summary.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct floe__tensorboard {
    floe_summary_writer *train, *val;
    floe_output *reads;       /* the weights' readers, then the rate when has_lr */
    char **names;
    int nweights, cap;
    int has_lr;
    floe_output lr;
};

static floe_status tb_fail(floe_status st, const char *what) {
    return floe__keras_fail(st, "fit: TensorBoard log: %s: %s", what, floe_last_error());
}

floe_status floe__tensorboard_open(floe_context *ctx, const char *logdir, int validation,
                                   const floe_graph *g, floe__tensorboard **out) {
    floe__tensorboard *tb;
    char dir[4096];
    floe_status st;

    *out = NULL;
    if (logdir[0] == '\0')
        return floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: logdir is empty");
    tb = calloc(1, sizeof(*tb));
    if (tb == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "fit: out of memory");
    size_t len = strlen(logdir);
    const char *sep = logdir[len - 1] == '/' ? "" : "/";
    if ((size_t)snprintf(dir, sizeof(dir), "%s%strain", logdir, sep) >= sizeof(dir)) {
        st = floe__keras_fail(FLOE_INVALID_ARGUMENT, "fit: logdir is too long");
        goto fail;
    }
    /* Flushed by hand after each epoch, and every 10 s when batches are logged. */
    if ((st = floe_summary_writer_new(ctx, dir, 10.0, &tb->train)) != FLOE_OK) {
        st = tb_fail(st, "train writer");
        goto fail;
    }
    if (validation) {
        snprintf(dir, sizeof(dir), "%s%svalidation", logdir, sep);
        if ((st = floe_summary_writer_new(ctx, dir, -1, &tb->val)) != FLOE_OK) {
            st = tb_fail(st, "validation writer");
            goto fail;
        }
    }
    /* A graph GraphDef cannot express costs the Graphs tab only: say so and go on. */
    if (floe_summary_graph(tb->train, g) != FLOE_OK)
        fprintf(stderr, "floe: warning: TensorBoard log without the graph: %s\n",
                floe_last_error());
    if ((st = floe_summary_flush(tb->train)) != FLOE_OK) {
        st = tb_fail(st, "train writer");
        goto fail;
    }
    *out = tb;
    return FLOE_OK;

fail:
    floe__tensorboard_close(tb);
    return st;
}

floe_status floe__tensorboard_add_weight(floe__tensorboard *tb, const char *name,
                                         floe_output read) {
    if (tb->nweights == tb->cap) {
        int cap = tb->cap > 0 ? 2 * tb->cap : 16;
        floe_output *r = realloc(tb->reads, (size_t)cap * sizeof(*r));
        if (r != NULL)
            tb->reads = r;
        char **n = realloc(tb->names, (size_t)cap * sizeof(*n));
        if (n != NULL)
            tb->names = n;
        if (r == NULL || n == NULL)
            return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "fit: out of memory");
        tb->cap = cap;
    }
    if ((tb->names[tb->nweights] = strdup(name)) == NULL)
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "fit: out of memory");
    tb->reads[tb->nweights++] = read;
    return FLOE_OK;
}

void floe__tensorboard_set_lr(floe__tensorboard *tb, floe_output lr) {
    tb->lr = lr;
    tb->has_lr = lr.node != NULL;
}

/* The learning rate's scalar from its fetched value (F32 or F64, one element). */
static floe_status write_lr(floe__tensorboard *tb, const floe_tensor *t, int64_t step) {
    floe_tensor *h = NULL;
    double v;
    floe_status st = floe_tensor_to_host(t, &h);

    if (st != FLOE_OK)
        return tb_fail(st, "reading the learning rate");
    if (floe_tensor_num_elements(h) != 1 ||
        (floe_tensor_dtype(h) != FLOE_DTYPE_F32 && floe_tensor_dtype(h) != FLOE_DTYPE_F64)) {
        floe_tensor_unref(h);
        return floe__keras_fail(FLOE_INTERNAL, "fit: TensorBoard log: the learning rate is "
                                "not a real scalar");
    }
    v = floe_tensor_dtype(h) == FLOE_DTYPE_F32 ? *(const float *)floe_tensor_data(h)
                                               : *(const double *)floe_tensor_data(h);
    floe_tensor_unref(h);
    if ((st = floe_summary_scalar(tb->train, "epoch_learning_rate", v, step)) != FLOE_OK)
        return tb_fail(st, "learning rate");
    return FLOE_OK;
}

/* One histogram per variable and the learning rate, values read in one run. */
static floe_status write_weights(floe__tensorboard *tb, floe_session *s, int64_t step) {
    int n = tb->nweights + tb->has_lr;
    floe_output *fetch;
    floe_tensor **vals;
    floe_status st;

    if (n == 0)
        return FLOE_OK;
    vals = calloc((size_t)n, sizeof(*vals));
    fetch = calloc((size_t)n, sizeof(*fetch));
    if (vals == NULL || fetch == NULL) {
        free(vals);
        free(fetch);
        return floe__keras_fail(FLOE_RESOURCE_EXHAUSTED, "fit: out of memory");
    }
    if (tb->nweights > 0)
        memcpy(fetch, tb->reads, (size_t)tb->nweights * sizeof(*fetch));
    if (tb->has_lr)
        fetch[tb->nweights] = tb->lr;
    st = floe_session_run(s, NULL, NULL, 0, fetch, n, NULL, 0, vals);
    if (st != FLOE_OK)
        st = tb_fail(st, "reading the weights");
    if (st == FLOE_OK && tb->has_lr)
        st = write_lr(tb, vals[tb->nweights], step);
    for (int i = 0; i < tb->nweights && st == FLOE_OK; i++)
        if ((st = floe_summary_histogram(tb->train, tb->names[i], vals[i], step)) != FLOE_OK)
            st = tb_fail(st, "weight histogram");
    for (int i = 0; i < n; i++)
        floe_tensor_unref(vals[i]);
    free(vals);
    free(fetch);
    return st;
}

floe_status floe__tensorboard_batch(floe__tensorboard *tb, int64_t step, double loss,
                                    double accuracy) {
    floe_status st;

    if ((st = floe_summary_scalar(tb->train, "batch_loss", loss, step)) != FLOE_OK ||
        (accuracy >= 0 &&
         (st = floe_summary_scalar(tb->train, "batch_accuracy", accuracy, step)) != FLOE_OK))
        return tb_fail(st, "batch scalars");
    return FLOE_OK;
}

floe_status floe__tensorboard_epoch(floe__tensorboard *tb, floe_session *s,
                                    const floe_epoch_logs *logs) {
    int64_t step = logs->epoch - 1;
    floe_status st;

    if ((st = floe_summary_scalar(tb->train, "epoch_loss", logs->loss, step)) != FLOE_OK ||
        (logs->accuracy >= 0 &&
         (st = floe_summary_scalar(tb->train, "epoch_accuracy", logs->accuracy, step)) !=
             FLOE_OK))
        return tb_fail(st, "train scalars");
    if ((st = write_weights(tb, s, step)) != FLOE_OK)
        return st;
    if ((st = floe_summary_flush(tb->train)) != FLOE_OK)
        return tb_fail(st, "train flush");
    if (tb->val == NULL || logs->val_loss < 0)
        return FLOE_OK;
    if ((st = floe_summary_scalar(tb->val, "epoch_loss", logs->val_loss, step)) != FLOE_OK ||
        (logs->val_accuracy >= 0 &&
         (st = floe_summary_scalar(tb->val, "epoch_accuracy", logs->val_accuracy, step)) !=
             FLOE_OK) ||
        (st = floe_summary_flush(tb->val)) != FLOE_OK)
        return tb_fail(st, "validation scalars");
    return FLOE_OK;
}

floe_status floe__tensorboard_close(floe__tensorboard *tb) {
    floe_status st = FLOE_OK, s2;

    if (tb == NULL)
        return FLOE_OK;
    if ((s2 = floe_summary_writer_close(tb->train)) != FLOE_OK)
        st = tb_fail(s2, "closing");
    if ((s2 = floe_summary_writer_close(tb->val)) != FLOE_OK && st == FLOE_OK)
        st = tb_fail(s2, "closing");
    for (int i = 0; i < tb->nweights; i++)
        free(tb->names[i]);
    free(tb->names);
    free(tb->reads);
    free(tb);
    return st;
}
