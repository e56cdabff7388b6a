/*
 * cluster.c - cluster specs ("ps=a:1,b:2;worker=c:3" or "@file") and the transport
 * options shared by servers and workers (floe_dist_options, applied to a transport).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <floe/experimental/transport.h>
#include "dist-impl.h"

#define MAX_TASKS 64
#define MAX_SPEC (64 * 1024)

struct floe_cluster {
    char *ps[MAX_TASKS];
    int nps;
    char *worker[MAX_TASKS];
    int nworker;
};

void floe_cluster_free(floe_cluster *c) {
    if (c == NULL)
        return;
    for (int i = 0; i < c->nps; i++)
        free(c->ps[i]);
    for (int i = 0; i < c->nworker; i++)
        free(c->worker[i]);
    free(c);
}

static bool address_ok(const char *a) {
    const char *colon = strrchr(a, ':');
    char *end;
    long port;
    if (colon == NULL || colon == a || strlen(a) > 255)
        return false;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || end == colon + 1)
        return false;
    for (const char *p = a; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_[]:", *p))
            return false;
    return true;
}

/* Parses "job=addr,addr" into @c. */
static floe_status parse_job(floe_cluster *c, char *item) {
    char *eq = strchr(item, '='), *save = NULL, *tok;
    char **list;
    int *n;

    if (eq == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec: '%.64s' is not JOB=ADDRESSES",
                              item);
    *eq = '\0';
    if (strcmp(item, "ps") == 0)
        list = c->ps, n = &c->nps;
    else if (strcmp(item, "worker") == 0)
        list = c->worker, n = &c->nworker;
    else
        return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec: unknown job '%.32s' (ps, "
                              "worker)", item);
    if (*n > 0)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec: job '%s' given twice", item);
    for (tok = strtok_r(eq + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]); e--)
            e[-1] = '\0';
        if (!address_ok(tok))
            return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec: job '%s' task %d: "
                                  "'%.64s' is not HOST:PORT", item, *n, tok);
        if (*n == MAX_TASKS)
            return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec: more than %d tasks in "
                                  "job '%s'", MAX_TASKS, item);
        if ((list[*n] = strdup(tok)) == NULL)
            return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
        (*n)++;
    }
    return FLOE_OK;
}

static floe_status read_spec(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    *out = NULL;
    if (f == NULL)
        return floe_set_error(FLOE_NOT_FOUND, "cluster spec file '%s' cannot be opened", path);
    buf = malloc(MAX_SPEC + 1);
    if (buf == NULL) {
        fclose(f);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    n = fread(buf, 1, MAX_SPEC + 1, f);
    fclose(f);
    if (n > MAX_SPEC) {
        free(buf);
        return floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec file '%s' is over %d bytes",
                              path, MAX_SPEC);
    }
    buf[n] = '\0';
    *out = buf;
    return FLOE_OK;
}

floe_status floe_cluster_parse(const char *spec, floe_cluster **out) {
    floe_cluster *c;
    char *text, *save = NULL, *item;
    floe_status st = FLOE_OK;

    if (out == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_cluster_parse: NULL out");
    *out = NULL;
    if (spec == NULL)
        return floe_set_error(FLOE_INVALID_ARGUMENT, "floe_cluster_parse: NULL spec");
    if (spec[0] == '@')
        st = read_spec(spec + 1, &text);
    else if ((text = strdup(spec)) == NULL)
        st = floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    if (st != FLOE_OK)
        return st;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        free(text);
        return floe_set_error(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (item = strtok_r(text, ";\n", &save); item && st == FLOE_OK;
         item = strtok_r(NULL, ";\n", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        if (*item == '\0' || *item == '#')
            continue;
        st = parse_job(c, item);
    }
    free(text);
    if (st == FLOE_OK && (c->nps == 0 || c->nworker == 0))
        st = floe_set_error(FLOE_INVALID_ARGUMENT, "cluster spec needs both jobs, ps and worker "
                            "(ps=HOST:PORT,...;worker=HOST:PORT,...)");
    if (st != FLOE_OK) {
        floe_cluster_free(c);
        return st;
    }
    *out = c;
    return FLOE_OK;
}

int floe_cluster_num_tasks(const floe_cluster *c, const char *job) {
    if (c == NULL || job == NULL)
        return 0;
    return strcmp(job, "ps") == 0 ? c->nps : strcmp(job, "worker") == 0 ? c->nworker : 0;
}

const char *floe_cluster_task(const floe_cluster *c, const char *job, int task) {
    int n = floe_cluster_num_tasks(c, job);
    if (task < 0 || task >= n)
        return NULL;
    return strcmp(job, "ps") == 0 ? c->ps[task] : c->worker[task];
}

void floe_dist_options_init(floe_dist_options *o) {
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->transport = "grpc";
    o->rpc_timeout_ms = 10000;
}

/* Finds the transport of @o and applies its options. */
floe_status floe__dist_transport(floe_context *ctx, const floe_dist_options *o,
                                 floe_transport **out) {
    floe_dist_options d;
    floe_status st;
    struct {
        const char *key, *value;
    } kv[8];
    int n = 0;

    floe_dist_options_init(&d);
    if (o != NULL)
        memcpy(&d, o, o->struct_size < sizeof(d) ? o->struct_size : sizeof(d));
    if ((st = floe_transport_find(ctx, d.transport ? d.transport : "grpc", out)) != FLOE_OK)
        return st;
    kv[n].key = "tls_ca", kv[n++].value = d.tls_ca ? d.tls_ca : "";
    kv[n].key = "tls_cert", kv[n++].value = d.tls_cert ? d.tls_cert : "";
    kv[n].key = "tls_key", kv[n++].value = d.tls_key ? d.tls_key : "";
    if (d.token_file)
        kv[n].key = "token_file", kv[n++].value = d.token_file;
    else
        kv[n].key = "token", kv[n++].value = d.token ? d.token : "";
    kv[n].key = "mtls", kv[n++].value = d.mtls ? "1" : "0";
    kv[n].key = "insecure", kv[n++].value = d.insecure ? "1" : "0";
    for (int i = 0; i < n; i++)
        if ((st = floe_transport_set_option(*out, kv[i].key, kv[i].value)) != FLOE_OK)
            return st;
    return FLOE_OK;
}
