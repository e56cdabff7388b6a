/*
 * dist_grpc.cc - the "grpc" transport of the distributed runtime (experimental
 * transport ABI, floe_transport_ops in floe/plugin.h) over gRPC's C++ API.
 *
 * Why C++ and not the C core: Debian's gRPC 1.51 ships both, but a unary call on the C
 * core is a hand-driven batch of six ops on a completion queue per call and per served
 * request, plus metadata arrays and slice ownership to manage; the C++ generic API
 * (GenericStub::UnaryCall, CallbackGenericService) does the same with raw bytes in a
 * tenth of the code, and is stable across the 1.4x-1.5x releases.  The C++ stays in this
 * file, built as dist_grpc_impl.so (not a plugin: its only export is the C function
 * floe_dist_grpc_impl_ops), which the plugin floe_dist_grpc.so (plugin.c) opens the first
 * time a program uses the transport: loading gRPC, protobuf and OpenSSL costs ~11 ms and
 * 6 MB at every floe_context_new otherwise.  It links with -Wl,-z,defs against gRPC,
 * never libfloe.
 *
 * Wire: every RPC is "/floe.dist.Dist/<method>" carrying the runtime's serialized
 * message as raw bytes (no protobuf on this layer: the runtime validates the bytes).
 *
 * Security (plugins/dist_grpc/README.md): TLS by default (tls_cert/tls_key for servers,
 * tls_ca to verify the peer); authentication by a shared token ("authorization: Bearer"
 * metadata, compared in constant time, checked before any handler runs) or mutual TLS
 * (mtls=1: servers require and verify a client certificate); "insecure=1" is plain TCP
 * and is refused for addresses other than loopback.  A server with neither a token nor
 * mTLS refuses to start unless insecure with no_auth=1 (tests on loopback only).
 *
 * Sections: options; client (connect, call, cancel); server (reactor, serve, shutdown);
 * the entry point for plugin.c.
 */
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/byte_buffer.h>

#define FLOE_PLUGIN_NO_NATURAL_NAMES 1
#include <floe/plugin.h>

/* The host table, handed over by the plugin (plugin.c) when it loads this library
 * (declared by floe/plugin.h; hidden here like every symbol but the entry point). */
extern "C" {
const floe_host *floe__host;
}

namespace {

const char kService[] = "/floe.dist.Dist/";
const size_t kDefaultMaxMessage = 256u << 20;   /* a 64 MiB tensor and then some */

/* ---- Options ------------------------------------------------------------------------ */

struct Options {
    std::string ca, cert, key;   /* PEM contents, read when the option is set */
    std::string token;
    std::string server_name;     /* TLS name to expect instead of the target's host */
    bool insecure = false, mtls = false, no_auth = false;
    size_t max_message = kDefaultMaxMessage;
};

struct Transport {
    std::mutex mu;
    Options opt;
};

floe_status fail(floe_status code, const std::string &msg) {
    return floe__host->fail(code, "dist_grpc: %s", msg.c_str());
}

bool read_file(const std::string &path, std::string *out) {
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    *out = ss.str();
    return !f.bad();
}

bool parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !*v) {
        *out = false;
        return true;
    }
    return false;
}

floe_status tp_set_option(void *state, const char *key, const char *value) {
    Transport *tp = static_cast<Transport *>(state);
    std::lock_guard<std::mutex> lock(tp->mu);
    Options &o = tp->opt;
    std::string k(key);
    try {
        if (k == "tls_ca" || k == "tls_cert" || k == "tls_key" || k == "token_file") {
            std::string *dst = k == "tls_ca" ? &o.ca : k == "tls_cert" ? &o.cert
                             : k == "tls_key" ? &o.key : &o.token;
            if (!*value) {
                dst->clear();
                return FLOE_OK;
            }
            if (!read_file(value, dst))
                return fail(FLOE_NOT_FOUND, "option " + k + ": cannot read '" + value + "'");
            if (k == "token_file")
                while (!dst->empty() && (dst->back() == '\n' || dst->back() == '\r'))
                    dst->pop_back();
            if (k == "token_file" && dst->empty())
                return fail(FLOE_INVALID_ARGUMENT, "option token_file: '" + std::string(value) +
                                                       "' is empty");
            return FLOE_OK;
        }
        if (k == "token") {
            o.token = value;
            return FLOE_OK;
        }
        if (k == "server_name") {
            o.server_name = value;
            return FLOE_OK;
        }
        if (k == "insecure" || k == "mtls" || k == "no_auth") {
            bool *dst = k == "insecure" ? &o.insecure : k == "mtls" ? &o.mtls : &o.no_auth;
            if (!parse_bool(value, dst))
                return fail(FLOE_INVALID_ARGUMENT, "option " + k + ": '" + value +
                                                       "' is not a boolean (0/1)");
            return FLOE_OK;
        }
        if (k == "max_message_bytes") {
            char *end;
            unsigned long long v = strtoull(value, &end, 10);
            if (*end || v < 1024 || v > (1ull << 31) - 1)
                return fail(FLOE_INVALID_ARGUMENT,
                            std::string("option max_message_bytes: '") + value +
                                "' is not in [1024, 2^31)");
            o.max_message = (size_t)v;
            return FLOE_OK;
        }
    } catch (const std::bad_alloc &) {
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    return fail(FLOE_INVALID_ARGUMENT, "unknown option '" + k +
                                           "' (tls_ca, tls_cert, tls_key, token, token_file, "
                                           "server_name, insecure, mtls, no_auth, "
                                           "max_message_bytes)");
}

/* The host part of "host:port", "[v6]:port", "ipv4:host:port", "dns:///host:port". */
std::string host_of(std::string a) {
    for (const char *p : {"dns:///", "ipv4:", "ipv6:"})
        if (a.compare(0, strlen(p), p) == 0)
            a = a.substr(strlen(p));
    if (!a.empty() && a[0] == '[') {
        size_t e = a.find(']');
        return e == std::string::npos ? a : a.substr(1, e - 1);
    }
    size_t c = a.rfind(':');
    return c == std::string::npos ? a : a.substr(0, c);
}

bool is_loopback(const std::string &address) {
    std::string h = host_of(address);
    return h == "localhost" || h == "::1" || h.compare(0, 4, "127.") == 0;
}

floe_status code_of(const grpc::Status &s) {
    int c = (int)s.error_code();
    return c >= 0 && c <= 16 ? (floe_status)c : FLOE_UNKNOWN;
}

std::chrono::system_clock::time_point deadline_of(int64_t ms) {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

/* ---- Client ------------------------------------------------------------------------- */

struct Conn {
    std::string target, token;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::GenericStub> stub;
    std::mutex mu;
    std::set<grpc::ClientContext *> live;
    bool cancelled = false;
};

floe_status tp_connect(void *state, const char *target, int64_t deadline_ms, void **out) {
    Transport *tp = static_cast<Transport *>(state);
    *out = nullptr;
    Options o;
    {
        std::lock_guard<std::mutex> lock(tp->mu);
        o = tp->opt;
    }
    try {
        std::shared_ptr<grpc::ChannelCredentials> creds;
        if (o.insecure) {
            if (!is_loopback(target))
                return fail(FLOE_PERMISSION_DENIED,
                            std::string("insecure mode refuses '") + target +
                                "': plaintext is only allowed to loopback addresses");
            creds = grpc::InsecureChannelCredentials();
        } else {
            if (o.ca.empty())
                return fail(FLOE_FAILED_PRECONDITION,
                            "TLS needs the CA certificate to verify servers (option tls_ca), "
                            "or insecure=1 on loopback");
            grpc::SslCredentialsOptions so;
            so.pem_root_certs = o.ca;
            if (o.mtls || (!o.cert.empty() && !o.key.empty())) {
                if (o.cert.empty() || o.key.empty())
                    return fail(FLOE_FAILED_PRECONDITION,
                                "mutual TLS needs the client's tls_cert and tls_key");
                so.pem_cert_chain = o.cert;
                so.pem_private_key = o.key;
            }
            creds = grpc::SslCredentials(so);
        }
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize((int)o.max_message);
        args.SetMaxSendMessageSize((int)o.max_message);
        /* Notice dead peers within seconds, and reconnect fast after a restart. */
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
        args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
        args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        /* Big tensors: a flow-control window that does not stall every 64 KiB. */
        args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
        if (!o.server_name.empty())
            args.SetSslTargetNameOverride(o.server_name);
        std::unique_ptr<Conn> c(new Conn);
        c->target = target;
        c->token = o.token;
        c->channel = grpc::CreateCustomChannel(target, creds, args);
        if (!c->channel)
            return fail(FLOE_INVALID_ARGUMENT, std::string("bad target '") + target + "'");
        if (deadline_ms > 0 && !c->channel->WaitForConnected(deadline_of(deadline_ms)))
            return fail(FLOE_UNAVAILABLE, std::string("cannot connect to ") + target +
                                              " within " + std::to_string(deadline_ms) +
                                              " ms (no server, or the TLS handshake failed)");
        c->stub.reset(new grpc::GenericStub(c->channel));
        *out = c.release();
        return FLOE_OK;
    } catch (const std::bad_alloc &) {
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
}

void tp_disconnect(void *conn) {
    delete static_cast<Conn *>(conn);
}

void tp_cancel(void *conn) {
    Conn *c = static_cast<Conn *>(conn);
    std::lock_guard<std::mutex> lock(c->mu);
    c->cancelled = true;
    for (grpc::ClientContext *ctx : c->live)
        ctx->TryCancel();
}

floe_status copy_out(const grpc::ByteBuffer &bb, void **resp, size_t *resp_len) {
    grpc::Slice s;
    if (!bb.Valid()) {
        *resp = nullptr;
        *resp_len = 0;
        return FLOE_OK;
    }
    if (!bb.DumpToSingleSlice(&s).ok())
        return fail(FLOE_INTERNAL, "cannot read the reply");
    *resp_len = s.size();
    if (s.size() == 0) {
        *resp = nullptr;
        return FLOE_OK;
    }
    if ((*resp = floe__host->alloc(s.size(), 0)) == nullptr) {
        *resp_len = 0;
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory for a reply of " +
                                                 std::to_string(s.size()) + " bytes");
    }
    memcpy(*resp, s.begin(), s.size());
    return FLOE_OK;
}

floe_status tp_call(void *conn, const char *method, const void *req, size_t req_len, void **resp,
                    size_t *resp_len, int64_t deadline_ms) {
    Conn *c = static_cast<Conn *>(conn);
    *resp = nullptr;
    *resp_len = 0;
    try {
        grpc::ClientContext ctx;
        if (deadline_ms > 0)
            ctx.set_deadline(deadline_of(deadline_ms));
        if (!c->token.empty())
            ctx.AddMetadata("authorization", "Bearer " + c->token);
        /* No copy: @req outlives the call, which completes before we return. */
        grpc::Slice slice(req, req_len, grpc::Slice::STATIC_SLICE);
        grpc::ByteBuffer request(&slice, 1), reply;
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        grpc::Status status;
        {
            std::lock_guard<std::mutex> lock(c->mu);
            if (c->cancelled)
                return fail(FLOE_CANCELLED, std::string(method) + " to " + c->target +
                                                ": the connection was cancelled");
            c->live.insert(&ctx);
        }
        c->stub->UnaryCall(&ctx, std::string(kService) + method, grpc::StubOptions(), &request,
                           &reply, [&](grpc::Status s) {
                               std::lock_guard<std::mutex> lock(mu);
                               status = std::move(s);
                               done = true;
                               cv.notify_one();
                           });
        {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return done; });
        }
        {
            std::lock_guard<std::mutex> lock(c->mu);
            c->live.erase(&ctx);
        }
        if (!status.ok())
            return fail(code_of(status), std::string(method) + " to " + c->target + ": " +
                                             status.error_message());
        return copy_out(reply, resp, resp_len);
    } catch (const std::bad_alloc &) {
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
}

/* ---- Server ------------------------------------------------------------------------- */

struct Server;

class Reactor : public grpc::ServerGenericBidiReactor {
  public:
    Reactor(Server *s, grpc::GenericCallbackServerContext *ctx);
    void OnReadDone(bool ok) override;
    void OnWriteDone(bool) override {}
    void OnDone() override;

  private:
    void run();
    Server *srv_;
    grpc::GenericCallbackServerContext *ctx_;
    grpc::ByteBuffer req_, resp_;
};

class Service : public grpc::CallbackGenericService {
  public:
    explicit Service(Server *s) : srv_(s) {}
    grpc::ServerGenericBidiReactor *CreateReactor(grpc::GenericCallbackServerContext *ctx)
        override {
        return new Reactor(srv_, ctx);
    }

  private:
    Server *srv_;
};

struct Server {
    floe_rpc_handler handler;
    void *arg;
    std::string token;
    int port = -1;
    Service service{this};
    std::unique_ptr<grpc::Server> server;
    std::mutex mu;
    std::condition_variable idle;
    int running = 0;   /* reactors not yet done (their threads included) */
};

bool token_ok(const std::string &want, grpc::GenericCallbackServerContext *ctx) {
    auto &md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end())
        return false;
    std::string got(it->second.data(), it->second.size());
    std::string expect = "Bearer " + want;
    unsigned char diff = got.size() != expect.size();
    for (size_t i = 0; i < expect.size(); i++)
        diff |= (unsigned char)(expect[i] ^ (i < got.size() ? got[i] : 0));
    return diff == 0;
}

Reactor::Reactor(Server *s, grpc::GenericCallbackServerContext *ctx) : srv_(s), ctx_(ctx) {
    {
        std::lock_guard<std::mutex> lock(srv_->mu);
        srv_->running++;
    }
    const std::string &m = ctx->method();
    if (m.compare(0, sizeof(kService) - 1, kService) != 0) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown service"));
        return;
    }
    if (!srv_->token.empty() && !token_ok(srv_->token, ctx)) {
        Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong token"));
        return;
    }
    StartRead(&req_);
}

void Reactor::OnReadDone(bool ok) {
    if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
    }
    /* Handlers may block (a synchronous step waits for every worker): never on gRPC's
     * callback threads. */
    try {
        std::thread([this] { run(); }).detach();
    } catch (const std::exception &) {
        Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "cannot start a thread"));
    }
}

void Reactor::run() {
    grpc::Slice in;
    void *out = nullptr;
    size_t out_len = 0;
    if (!req_.DumpToSingleSlice(&in).ok()) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the request"));
        return;
    }
    std::string method = ctx_->method().substr(sizeof(kService) - 1);
    floe_status st = srv_->handler(srv_->arg, method.c_str(), in.begin(), in.size(), &out,
                                   &out_len);
    if (st != FLOE_OK) {
        std::string msg = out ? std::string((const char *)out, out_len)
                              : std::string("handler failed");
        floe__host->free(out);
        int code = (int)st > 0 && (int)st <= 16 ? (int)st : (int)grpc::StatusCode::UNKNOWN;
        Finish(grpc::Status((grpc::StatusCode)code, msg));
        return;
    }
    /* gRPC takes the reply buffer and frees it with the host's allocator when sent. */
    grpc::Slice s(out, out_len, floe__host->free);
    resp_ = grpc::ByteBuffer(&s, 1);
    StartWriteAndFinish(&resp_, grpc::WriteOptions(), grpc::Status::OK);
}

void Reactor::OnDone() {
    Server *s = srv_;
    delete this;
    std::lock_guard<std::mutex> lock(s->mu);
    if (--s->running == 0)
        s->idle.notify_all();
}

floe_status tp_serve(void *state, const char *address, floe_rpc_handler handler, void *arg,
                     void **out) {
    Transport *tp = static_cast<Transport *>(state);
    *out = nullptr;
    Options o;
    {
        std::lock_guard<std::mutex> lock(tp->mu);
        o = tp->opt;
    }
    try {
        std::shared_ptr<grpc::ServerCredentials> creds;
        if (o.insecure) {
            if (!is_loopback(address))
                return fail(FLOE_PERMISSION_DENIED,
                            std::string("insecure mode refuses to listen on '") + address +
                                "': plaintext is only allowed on loopback addresses");
            creds = grpc::InsecureServerCredentials();
        } else {
            if (o.cert.empty() || o.key.empty())
                return fail(FLOE_FAILED_PRECONDITION,
                            "a TLS server needs tls_cert and tls_key (or insecure=1 on "
                            "loopback)");
            if (o.mtls && o.ca.empty())
                return fail(FLOE_FAILED_PRECONDITION,
                            "mutual TLS needs tls_ca to verify client certificates");
            grpc::SslServerCredentialsOptions so(
                o.mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                       : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
            so.pem_root_certs = o.ca;
            so.pem_key_cert_pairs.push_back({o.key, o.cert});
            creds = grpc::SslServerCredentials(so);
        }
        if (o.token.empty() && !o.mtls && !(o.insecure && o.no_auth))
            return fail(FLOE_FAILED_PRECONDITION,
                        "a server must authenticate its clients: set a token (token or "
                        "token_file) or mtls=1 (no_auth=1 is only for insecure loopback)");
        std::unique_ptr<Server> s(new Server);
        s->handler = handler;
        s->arg = arg;
        s->token = o.token;
        grpc::ServerBuilder b;
        b.AddListeningPort(address, creds, &s->port);
        b.RegisterCallbackGenericService(&s->service);
        b.SetMaxReceiveMessageSize((int)o.max_message);
        b.SetMaxSendMessageSize((int)o.max_message);
        b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
        b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
        b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
        b.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
        s->server = b.BuildAndStart();
        if (!s->server || s->port <= 0)
            return fail(FLOE_UNAVAILABLE, std::string("cannot listen on '") + address +
                                              "' (address in use, or malformed; TLS "
                                              "certificate and key must match)");
        *out = s.release();
        return FLOE_OK;
    } catch (const std::bad_alloc &) {
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
}

int tp_server_port(void *server) {
    return static_cast<Server *>(server)->port;
}

void tp_shutdown(void *server) {
    Server *s = static_cast<Server *>(server);
    s->server->Shutdown(deadline_of(1000));
    {
        std::unique_lock<std::mutex> lock(s->mu);
        s->idle.wait(lock, [s] { return s->running == 0; });
    }
    s->server->Wait();
    s->server.reset();
    delete s;
}

void tp_destroy(void *state) {
    delete static_cast<Transport *>(state);
}

/* ---- Entry point for plugin.c ------------------------------------------------------- */

/* Fills @ops with the transport's functions and a new state (the tables's other members are
 * left to the caller).  Called once per context, the first time a program uses the
 * transport; @host is the core's host table. */
floe_status impl_ops(const floe_host *host, floe_transport_ops *ops) {
    floe__host = host;
    Transport *tp;
    try {
        tp = new Transport;
    } catch (const std::bad_alloc &) {
        return fail(FLOE_RESOURCE_EXHAUSTED, "out of memory");
    }
    ops->state = tp;
    ops->connect = tp_connect;
    ops->disconnect = tp_disconnect;
    ops->call = tp_call;
    ops->serve = tp_serve;
    ops->shutdown = tp_shutdown;
    ops->destroy = tp_destroy;
    ops->set_option = tp_set_option;
    ops->cancel = tp_cancel;
    ops->server_port = tp_server_port;
    return FLOE_OK;
}

} // namespace

extern "C" __attribute__((visibility("default")))
floe_status floe_dist_grpc_impl_ops(const floe_host *host, floe_transport_ops *ops) {
    return impl_ops(host, ops);
}
