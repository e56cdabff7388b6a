/*
 * transport.c - the application's side of the experimental transport ABI
 * (floe/experimental/transport.h): finding a transport a plugin registered, and thin
 * wrappers that check arguments and forward to its floe_transport_ops.
 *
 * Sections: finding and options; connections and calls; servers (the handler
 * trampoline turns a failing handler's floe_last_error() into the reply the plugin
 * sends as the status message).
 */
#include <string.h>

#include "core-impl.h"
#include <floe/experimental/transport.h>

struct floe_transport {
    floe__transport tp;   /* never instantiated: a floe__transport is cast to this */
};

struct floe_transport_conn {
    const floe_transport_ops *ops;
    void *conn;
};

struct floe_transport_server {
    const floe_transport_ops *ops;
    void *server;
    floe_transport_handler handler;
    void *arg;
};

#define OPS(t) (&((floe__transport *)(t))->ops)
#define HAS(ops, m) FLOE_HAS_MEMBER(floe_transport_ops, ops, m)

/* ---- Finding and options ------------------------------------------------------------ */

floe_status floe_transport_find(floe_context *ctx, const char *name, floe_transport **out) {
    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_find: NULL out");
    *out = NULL;
    if (ctx == NULL || name == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_find: NULL context or name");
    pthread_mutex_lock(&ctx->lock);
    for (int i = 0; i < ctx->reg.ntransports; i++) {
        if (strcmp(ctx->reg.transports[i]->ops.name, name) == 0) {
            *out = (floe_transport *)ctx->reg.transports[i];
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    if (*out == NULL)
        return floe__fail(FLOE_NOT_FOUND,
                          "no transport '%s': is its plugin (dist_%s) on the plugin path?", name,
                          name);
    return FLOE_OK;
}

floe_status floe_transport_set_option(floe_transport *t, const char *key, const char *value) {
    if (t == NULL || key == NULL || value == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_set_option: NULL argument");
    if (!HAS(OPS(t), set_option))
        return floe__fail(FLOE_UNIMPLEMENTED, "transport '%s' has no options", OPS(t)->name);
    return OPS(t)->set_option(OPS(t)->state, key, value);
}

/* ---- Connections and calls ------------------------------------------------------------ */

floe_status floe_transport_connect(floe_transport *t, const char *target, int64_t deadline_ms,
                                   floe_transport_conn **out) {
    floe_transport_conn *c;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_connect: NULL out");
    *out = NULL;
    if (t == NULL || target == NULL || target[0] == '\0')
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_connect: no transport or target");
    if ((c = floe__calloc(1, sizeof(*c))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_transport_connect: out of memory");
    c->ops = OPS(t);
    st = c->ops->connect(c->ops->state, target, deadline_ms, &c->conn);
    if (st != FLOE_OK || c->conn == NULL) {
        floe__free(c);
        return st != FLOE_OK ? st : floe__fail(FLOE_INTERNAL, "transport returned no connection");
    }
    *out = c;
    return FLOE_OK;
}

void floe_transport_disconnect(floe_transport_conn *c) {
    if (c == NULL)
        return;
    c->ops->disconnect(c->conn);
    floe__free(c);
}

floe_status floe_transport_cancel(floe_transport_conn *c) {
    if (c == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_cancel: NULL connection");
    if (!HAS(c->ops, cancel))
        return floe__fail(FLOE_UNIMPLEMENTED, "transport '%s' cannot cancel", c->ops->name);
    c->ops->cancel(c->conn);
    return FLOE_OK;
}

static bool method_ok(const char *m) {
    if (m == NULL || m[0] == '\0' || strlen(m) > 64)
        return false;
    for (; *m; m++)
        if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') || (*m >= '0' && *m <= '9') ||
              *m == '_'))
            return false;
    return true;
}

floe_status floe_transport_call(floe_transport_conn *c, const char *method, const void *req,
                                size_t req_len, void **resp, size_t *resp_len,
                                int64_t deadline_ms) {
    if (resp == NULL || resp_len == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_call: NULL reply pointers");
    *resp = NULL;
    *resp_len = 0;
    if (c == NULL || (req == NULL && req_len > 0))
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_call: NULL connection or request");
    if (!method_ok(method))
        return floe__fail(FLOE_INVALID_ARGUMENT,
                          "floe_transport_call: method '%s' is not [A-Za-z0-9_]{1,64}",
                          method ? method : "(null)");
    return c->ops->call(c->conn, method, req, req_len, resp, resp_len, deadline_ms);
}

void *floe_transport_alloc(size_t nbytes) {
    return floe__alloc_aligned(nbytes ? nbytes : 1, 0);
}

void floe_transport_free(void *p) {
    floe__free_aligned(p);
}

/* ---- Servers ------------------------------------------------------------------------- */

static floe_status trampoline(void *arg, const char *method, const void *req, size_t req_len,
                              void **resp, size_t *resp_len) {
    floe_transport_server *s = arg;
    floe_status st;
    const char *msg;
    size_t n;

    *resp = NULL;
    *resp_len = 0;
    st = s->handler(s->arg, method, req, req_len, resp, resp_len);
    if (st == FLOE_OK)
        return FLOE_OK;
    floe__free_aligned(*resp);
    *resp = NULL;
    *resp_len = 0;
    msg = floe_last_error();
    n = strlen(msg);
    if (n > 0 && (*resp = floe__alloc_aligned(n, 0)) != NULL) {
        memcpy(*resp, msg, n);
        *resp_len = n;
    }
    return st;
}

floe_status floe_transport_serve(floe_transport *t, const char *address,
                                 floe_transport_handler handler, void *arg,
                                 floe_transport_server **out) {
    floe_transport_server *s;
    floe_status st;

    if (out == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_serve: NULL out");
    *out = NULL;
    if (t == NULL || address == NULL || handler == NULL)
        return floe__fail(FLOE_INVALID_ARGUMENT, "floe_transport_serve: NULL argument");
    if ((s = floe__calloc(1, sizeof(*s))) == NULL)
        return floe__fail(FLOE_RESOURCE_EXHAUSTED, "floe_transport_serve: out of memory");
    s->ops = OPS(t);
    s->handler = handler;
    s->arg = arg;
    st = s->ops->serve(s->ops->state, address, trampoline, s, &s->server);
    if (st != FLOE_OK || s->server == NULL) {
        floe__free(s);
        return st != FLOE_OK ? st : floe__fail(FLOE_INTERNAL, "transport returned no server");
    }
    *out = s;
    return FLOE_OK;
}

int floe_transport_server_port(const floe_transport_server *s) {
    if (s == NULL || !HAS(s->ops, server_port))
        return -1;
    return s->ops->server_port(s->server);
}

void floe_transport_shutdown(floe_transport_server *s) {
    if (s == NULL)
        return;
    s->ops->shutdown(s->server);
    floe__free(s);
}
