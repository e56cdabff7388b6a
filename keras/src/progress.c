/*
 * progress.c - what fit prints: on a terminal, a progress bar redrawn in place (at most
 * ten times a second) with the step, loss, accuracy, throughput and ETA; otherwise one
 * plain line per epoch, so logs and pipes stay readable.
 */
#include "keras-impl.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30

double floe__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void floe__progress_begin(floe__progress *p, FILE *f, int verbose, int epoch, int epochs,
                          int64_t steps) {
    p->f = f;
    p->verbose = verbose;
    p->tty = verbose == 1 && isatty(fileno(f));
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->start = floe__now();
    p->last_draw = 0;
    if (p->tty) {
        fprintf(f, "Epoch %d/%d\n", epoch, epochs);
        fflush(f);
    }
}

static void format_eta(double s, char *buf, size_t len) {
    if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    else if (s >= 60)
        snprintf(buf, len, "%d:%02d", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, len, "%ds", (int)s);
}

void floe__progress_update(floe__progress *p, int64_t step, double loss, double accuracy,
                           int64_t examples) {
    double now, elapsed;
    char bar[BAR_WIDTH + 1], eta[32];
    int filled;

    if (!p->tty)
        return;
    now = floe__now();
    if (step < p->steps && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    elapsed = now - p->start;
    filled = (int)(BAR_WIDTH * step / (p->steps > 0 ? p->steps : 1));
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '=' : i == filled ? '>' : '.';
    bar[BAR_WIDTH] = '\0';
    format_eta(step > 0 ? elapsed * (double)(p->steps - step) / (double)step : 0, eta,
               sizeof(eta));
    fprintf(p->f, "\r%6lld/%lld [%s] - ETA %s - loss: %.4f", (long long)step,
            (long long)p->steps, bar, eta, loss);
    if (accuracy >= 0)
        fprintf(p->f, " - accuracy: %.4f", accuracy);
    fprintf(p->f, " - %.0f examples/s ", elapsed > 0 ? (double)examples / elapsed : 0.0);
    fflush(p->f);
}

void floe__progress_end(floe__progress *p, const floe_epoch_logs *logs) {
    if (p->verbose == 0)
        return;
    if (p->tty)
        fprintf(p->f, "\r%6lld/%lld - %.2fs - loss: %.4f", (long long)p->steps,
                (long long)p->steps, logs->seconds, logs->loss);
    else
        fprintf(p->f, "Epoch %d/%d - %.2fs - loss: %.4f", logs->epoch, logs->epochs,
                logs->seconds, logs->loss);
    if (logs->accuracy >= 0)
        fprintf(p->f, " - accuracy: %.4f", logs->accuracy);
    if (logs->val_loss >= 0)
        fprintf(p->f, " - val_loss: %.4f", logs->val_loss);
    if (logs->val_accuracy >= 0)
        fprintf(p->f, " - val_accuracy: %.4f", logs->val_accuracy);
    fprintf(p->f, " - %.0f examples/s%s\n",
            logs->seconds > 0 ? (double)logs->examples / logs->seconds : 0.0,
            p->tty ? "                " : "");
    fflush(p->f);
}
