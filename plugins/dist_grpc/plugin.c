/*
 * plugin.c - floe_dist_grpc.so, the plugin of the "grpc" transport: a descriptor and a
 * transport table of trampolines, with no gRPC in it.
 *
 * The transport itself (dist_grpc.cc) links gRPC's C++ library, protobuf and OpenSSL,
 * which cost every process ~11 ms and ~6 MB to map and initialise; most programs never
 * train across machines.  So it is built as dist_grpc_impl.so beside this plugin (a name
 * the loader does not take for a plugin) and opened the first time a program calls the
 * transport (set_option, connect or serve), once per process; each context then gets its
 * own state from it.  A missing or broken implementation library is an error of that
 * call, naming the file and dlerror(), never of floe_context_new.
 *
 * Sections: loading the implementation; the trampolines; registration.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <floe/plugin.h>

#define IMPL_FILE "dist_grpc_impl.so"

typedef floe_status (*impl_ops_fn)(const floe_host *host, floe_transport_ops *ops);

/* ---- Loading the implementation ----------------------------------------------------- */

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static impl_ops_fn impl_entry;     /* set once the library is loaded */
static char load_error[4096 + 512];

/* Opens IMPL_FILE from this plugin's own directory. */
static void load_impl(void) {
    Dl_info info;
    char path[4096];     /* load_error has room for it and a message */
    const char *slash;

    if (dladdr((void *)load_impl, &info) == 0 || info.dli_fname == NULL) {
        snprintf(load_error, sizeof(load_error), "cannot find the plugin's own file");
        return;
    }
    slash = strrchr(info.dli_fname, '/');
    if (slash == NULL)
        snprintf(path, sizeof(path), "./%s", IMPL_FILE);
    else if ((size_t)snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - info.dli_fname),
                              info.dli_fname, IMPL_FILE) >= sizeof(path)) {
        snprintf(load_error, sizeof(load_error), "path of %s too long", IMPL_FILE);
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(load_error, sizeof(load_error), "cannot load %s: %s", path,
                 e != NULL ? e : "unknown error");
        return;
    }
    /* Never closed: gRPC keeps threads running for the life of the process. */
    impl_entry = (impl_ops_fn)dlsym(h, "floe_dist_grpc_impl_ops");
    if (impl_entry == NULL)
        snprintf(load_error, sizeof(load_error), "%s has no floe_dist_grpc_impl_ops", path);
}

/* One context's transport: the implementation's table, made at first use. */
typedef struct wrapper {
    pthread_mutex_t mu;
    int ready;
    floe_transport_ops impl;
} wrapper;

/* The implementation's functions are the same for every context; set with the first. */
static floe_transport_ops impl_fns;
static pthread_mutex_t impl_fns_mu = PTHREAD_MUTEX_INITIALIZER;

static floe_status ensure(wrapper *w) {
    floe_status st = FLOE_OK;

    pthread_once(&load_once, load_impl);
    if (impl_entry == NULL)
        return floe_fail(FLOE_UNAVAILABLE, "dist_grpc: %s", load_error);
    pthread_mutex_lock(&w->mu);
    if (!w->ready) {
        memset(&w->impl, 0, sizeof(w->impl));
        st = impl_entry(floe__host, &w->impl);
        if (st == FLOE_OK) {
            w->ready = 1;
            pthread_mutex_lock(&impl_fns_mu);
            impl_fns = w->impl;
            impl_fns.state = NULL;
            pthread_mutex_unlock(&impl_fns_mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return st;
}

/* ---- The trampolines ------------------------------------------------------------------- */

/* Connections and servers are the implementation's objects: they exist only after ensure()
 * succeeded, so impl_fns is set whenever one of these is called. */

static floe_status tr_set_option(void *tp, const char *key, const char *value) {
    wrapper *w = tp;
    floe_status st = ensure(w);
    return st != FLOE_OK ? st : w->impl.set_option(w->impl.state, key, value);
}

static floe_status tr_connect(void *tp, const char *target, int64_t deadline_ms, void **conn) {
    wrapper *w = tp;
    floe_status st;

    *conn = NULL;
    st = ensure(w);
    return st != FLOE_OK ? st : w->impl.connect(w->impl.state, target, deadline_ms, conn);
}

static void tr_disconnect(void *conn) {
    if (conn != NULL)
        impl_fns.disconnect(conn);
}

static floe_status tr_call(void *conn, const char *method, const void *req, size_t req_len,
                           void **resp, size_t *resp_len, int64_t deadline_ms) {
    return impl_fns.call(conn, method, req, req_len, resp, resp_len, deadline_ms);
}

static void tr_cancel(void *conn) {
    if (conn != NULL)
        impl_fns.cancel(conn);
}

static floe_status tr_serve(void *tp, const char *address, floe_rpc_handler handler, void *arg,
                            void **server) {
    wrapper *w = tp;
    floe_status st;

    *server = NULL;
    st = ensure(w);
    return st != FLOE_OK ? st : w->impl.serve(w->impl.state, address, handler, arg, server);
}

static void tr_shutdown(void *server) {
    if (server != NULL)
        impl_fns.shutdown(server);
}

static int tr_server_port(void *server) {
    return impl_fns.server_port(server);
}

static void tr_destroy(void *tp) {
    wrapper *w = tp;
    if (w->ready && w->impl.destroy != NULL)
        w->impl.destroy(w->impl.state);
    pthread_mutex_destroy(&w->mu);
    floe_free(w);
}

/* ---- Registration --------------------------------------------------------------------- */

static floe_status dist_grpc_init(floe_plugin *self, void **user) {
    floe_transport_ops ops;
    wrapper *w;
    floe_status st;

    *user = NULL;
    w = floe_alloc(sizeof(*w), 0);
    if (w == NULL)
        return floe_fail(FLOE_RESOURCE_EXHAUSTED, "dist_grpc: out of memory");
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    memset(&ops, 0, sizeof(ops));
    ops.abi_major = FLOE_TRANSPORT_ABI_MAJOR;
    ops.abi_minor = FLOE_TRANSPORT_ABI_MINOR;
    ops.struct_size = sizeof(ops);
    ops.name = "grpc";
    ops.state = w;
    ops.connect = tr_connect;
    ops.disconnect = tr_disconnect;
    ops.call = tr_call;
    ops.serve = tr_serve;
    ops.shutdown = tr_shutdown;
    ops.destroy = tr_destroy;
    ops.set_option = tr_set_option;
    ops.cancel = tr_cancel;
    ops.server_port = tr_server_port;
    st = floe__host->register_transport(self, &ops);
    if (st != FLOE_OK) {
        pthread_mutex_destroy(&w->mu);
        floe_free(w);
    }
    return st;
}

FLOE_PLUGIN_DEFINE(dist_grpc, "0.1.0", "Floe", "Apache-2.0",
                   "gRPC transport of the distributed runtime (TLS, token or mTLS)",
                   dist_grpc_init, NULL)
