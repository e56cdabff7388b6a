/*
 * floe/experimental/transport.h - the transports plugins register (experimental).
 *
 * A transport carries unary RPCs of serialized messages between Floe processes; the
 * distributed runtime (libfloe_dist, floe/dist.h) is built on it.  Transports come from
 * plugins (plugins/dist_grpc registers "grpc") through the experimental transport ABI
 * of floe/plugin.h (floe_transport_ops, FLOE_TRANSPORT_ABI_MAJOR 0): this header is the
 * application's side of it, a thin layer that checks arguments and forwards to the
 * plugin's table.  Being experimental, it may change in any release.
 *
 * Deadlines are relative, in milliseconds from the call; <= 0 means none.
 * Errors: calls return a floe_status; the message is floe_last_error().
 * Thread safety: a connection may be used by several threads at once (calls run
 * concurrently); options must not be set while another thread connects or serves.
 */
#ifndef FLOE_EXPERIMENTAL_TRANSPORT_H
#define FLOE_EXPERIMENTAL_TRANSPORT_H

#include <floe/floe.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct floe_transport floe_transport;               /* lent by the context */
typedef struct floe_transport_conn floe_transport_conn;     /* a client connection */
typedef struct floe_transport_server floe_transport_server; /* a listening server */

/*
 * Serves one RPC on a thread of the transport (concurrently for concurrent calls; it
 * may block, for bounded time).  @req (transfer none) is valid during the call.
 * *@resp (out, transfer full): allocated with floe_transport_alloc() (NULL with
 * *@resp_len 0 for an empty reply).  A non-OK return is sent to the client with the
 * message of floe_last_error() (floe_set_error() sets it); *@resp is then ignored.
 */
typedef floe_status (*floe_transport_handler)(void *arg, const char *method, const void *req,
                                              size_t req_len, void **resp, size_t *resp_len);

/* The transport named @name ("grpc") of @ctx's plugins.  *@out (transfer none) lives as
 * long as @ctx.  FLOE_NOT_FOUND when no loaded plugin registered it. */
FLOE_API floe_status floe_transport_find(floe_context *ctx, const char *name,
                                         floe_transport **out);

/* Sets a transport option read by later connects and serves (dist_grpc's keys: tls_ca,
 * tls_cert, tls_key, token, token_file, insecure, mtls, server_name, max_message_bytes;
 * see plugins/dist_grpc/README.md).  FLOE_UNIMPLEMENTED when the transport has no
 * options; FLOE_INVALID_ARGUMENT for an unknown key or a bad value. */
FLOE_API floe_status floe_transport_set_option(floe_transport *t, const char *key,
                                               const char *value);

/* Connects to @target ("host:port"), waiting at most @deadline_ms for the connection
 * (FLOE_UNAVAILABLE or FLOE_DEADLINE_EXCEEDED when it does not come up).
 * (transfer full): free with floe_transport_disconnect(). */
FLOE_API floe_status floe_transport_connect(floe_transport *t, const char *target,
                                            int64_t deadline_ms, floe_transport_conn **out);
/* Closes @c; calls in flight on other threads must have returned.  NULL-safe. */
FLOE_API void floe_transport_disconnect(floe_transport_conn *c);
/* Cancels the calls in flight on @c and every later one (FLOE_CANCELLED).
 * FLOE_UNIMPLEMENTED when the transport cannot.  Thread-safe. */
FLOE_API floe_status floe_transport_cancel(floe_transport_conn *c);

/*
 * floe_transport_call: one unary RPC.
 * @method: [A-Za-z0-9_]+, the handler's @method.
 * @resp, @resp_len: (out) the reply (transfer full, free with floe_transport_free();
 *        NULL with 0 for an empty reply); NULL and 0 on failure.
 * Returns the server handler's status and message, or the transport's
 * (FLOE_UNAVAILABLE, FLOE_DEADLINE_EXCEEDED, FLOE_UNAUTHENTICATED, FLOE_CANCELLED, ...).
 */
FLOE_API floe_status floe_transport_call(floe_transport_conn *c, const char *method,
                                         const void *req, size_t req_len, void **resp,
                                         size_t *resp_len, int64_t deadline_ms);

/* Memory of RPC replies (what a handler returns, what call() hands back). */
FLOE_API void *floe_transport_alloc(size_t nbytes);
FLOE_API void floe_transport_free(void *p);   /* NULL-safe */

/* Listens on @address ("127.0.0.1:0" picks a port; floe_transport_server_port() says
 * which) and serves every RPC with @handler(@arg, ...).  (transfer full): stop and free
 * with floe_transport_shutdown(). */
FLOE_API floe_status floe_transport_serve(floe_transport *t, const char *address,
                                          floe_transport_handler handler, void *arg,
                                          floe_transport_server **out);
/* The port @s listens on; -1 when the transport cannot say. */
FLOE_API int floe_transport_server_port(const floe_transport_server *s);
/* Stops accepting, cancels calls in flight, waits for running handlers, frees @s.
 * NULL-safe. */
FLOE_API void floe_transport_shutdown(floe_transport_server *s);

#ifdef __cplusplus
}
#endif
#endif /* FLOE_EXPERIMENTAL_TRANSPORT_H */
