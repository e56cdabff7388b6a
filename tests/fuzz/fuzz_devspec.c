/*
 * fuzz_devspec.c - libFuzzer target for the device-spec parser (graph.c:
 * floe__device_spec_parse), which reads the device strings of graphs and callers
 * ("/job:worker/replica:0/task:1/device:GPU:0", "gpu:1", "CPU").
 *
 * Input format: the bytes up to the first NUL are the spec string.
 *
 * Oracle: the parse returns OK or INVALID_ARGUMENT.  A failure leaves a message that
 * quotes the spec and the output at "no constraint" ("" / -1 everywhere).  A success
 * yields only well-formed parts (job of [A-Za-z0-9_.-], type upper case
 * [A-Z][A-Z0-9_]*, numbers -1 or 0..999999999), and the canonical spelling of the result,
 * "/job:J/replica:R/task:T/device:TYPE:N" with the absent parts left out, parses back to
 * the same result.
 */
#include "fuzz_util.h"

#include "core-impl.h"

#include <ctype.h>

static void check_reset(const floe__device_spec *sp) {
    FUZZ_CHECK(sp->job[0] == '\0' && sp->type[0] == '\0');
    FUZZ_CHECK(sp->replica == -1 && sp->task == -1 && sp->index == -1);
}

static void check_well_formed(const floe__device_spec *sp) {
    FUZZ_CHECK(memchr(sp->job, '\0', sizeof(sp->job)) != NULL);
    FUZZ_CHECK(memchr(sp->type, '\0', sizeof(sp->type)) != NULL);
    for (const char *p = sp->job; *p != '\0'; p++)
        FUZZ_CHECK(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.');
    if (sp->type[0] != '\0')
        FUZZ_CHECK(isupper((unsigned char)sp->type[0]));
    for (const char *p = sp->type; *p != '\0'; p++)
        FUZZ_CHECK(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_');
    FUZZ_CHECK(sp->replica >= -1 && sp->replica <= 999999999);
    FUZZ_CHECK(sp->task >= -1 && sp->task <= 999999999);
    FUZZ_CHECK(sp->index >= -1 && sp->index <= 999999999);
    /* An index comes only with a type. */
    if (sp->type[0] == '\0')
        FUZZ_CHECK(sp->index == -1);
}

/* The canonical spelling of @sp ("" for no constraint). */
static void canonical(const floe__device_spec *sp, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = '\0';
    if (sp->job[0] != '\0')
        n += (size_t)snprintf(buf + n, len - n, "/job:%s", sp->job);
    if (sp->replica >= 0)
        n += (size_t)snprintf(buf + n, len - n, "/replica:%d", sp->replica);
    if (sp->task >= 0)
        n += (size_t)snprintf(buf + n, len - n, "/task:%d", sp->task);
    if (sp->type[0] != '\0') {
        n += (size_t)snprintf(buf + n, len - n, "/device:%s", sp->type);
        if (sp->index >= 0)
            n += (size_t)snprintf(buf + n, len - n, ":%d", sp->index);
    }
    FUZZ_CHECK(n < len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstring(data, size);
    floe__device_spec sp, again;
    char canon[160];
    floe_status st;

    if (s == NULL)
        return 0;
    memset(&sp, 0x5a, sizeof(sp));
    st = floe__device_spec_parse(s, &sp);
    if (fuzz_verbose())
        fprintf(stderr, "  %s: %s\n", floe_status_str(st), st == FLOE_OK ? "" : floe_last_error());
    if (st != FLOE_OK) {
        const char *err = floe_last_error();
        FUZZ_CHECK(st == FLOE_INVALID_ARGUMENT);
        FUZZ_CHECK(err[0] != '\0');
        if (strlen(s) < 512)
            FUZZ_CHECK(strstr(err, s) != NULL);
        check_reset(&sp);
        free(s);
        return 0;
    }
    check_well_formed(&sp);
    if (s[0] == '\0')
        check_reset(&sp);
    canonical(&sp, canon, sizeof(canon));
    memset(&again, 0x5a, sizeof(again));
    st = floe__device_spec_parse(canon, &again);
    if (st != FLOE_OK)
        fprintf(stderr, "canonical form '%s' of '%s' fails: %s\n", canon, s, floe_last_error());
    FUZZ_CHECK(st == FLOE_OK);
    FUZZ_CHECK(strcmp(again.job, sp.job) == 0 && strcmp(again.type, sp.type) == 0);
    FUZZ_CHECK(again.replica == sp.replica && again.task == sp.task && again.index == sp.index);
    free(s);
    return 0;
}
