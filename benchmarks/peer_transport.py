#!/usr/bin/env python3
"""peer_transport.py CA_DIR - the peer of bench_transport.c: the same echo of raw bytes
(4 KiB latency, median of 2000; 64 MiB throughput, median of 7) over Python grpcio on
loopback, with TLS and in plaintext, to print beside Floe's figures."""
import statistics
import sys
import time
from concurrent import futures

import grpc

MB = 1 << 20


def serve(creds):
    handler = grpc.method_handlers_generic_handler(
        "floe.dist.Dist",
        {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
    opts = [("grpc.max_receive_message_length", 256 * MB),
            ("grpc.max_send_message_length", 256 * MB)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=opts)
    server.add_generic_rpc_handlers((handler,))
    port = (server.add_secure_port("127.0.0.1:0", creds) if creds
            else server.add_insecure_port("127.0.0.1:0"))
    server.start()
    return server, port, opts


def roundtrips(call, n, reps):
    buf = b"\x5a" * n
    for _ in range(reps // 10 + 1):
        call(buf, timeout=60)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = call(buf, timeout=60)
        times.append(time.perf_counter() - t0)
        assert len(out) == n
    return statistics.median(times)


def run(ca, tls):
    read = lambda f: open(f"{ca}/{f}", "rb").read()
    screds = (grpc.ssl_server_credentials([(read("server.key"), read("server.pem"))])
              if tls else None)
    server, port, opts = serve(screds)
    target = f"127.0.0.1:{port}"
    chan = (grpc.secure_channel(target, grpc.ssl_channel_credentials(read("ca.pem")),
                                options=opts + [("grpc.ssl_target_name_override", "localhost")])
            if tls else grpc.insecure_channel(target, options=opts))
    call = chan.unary_unary("/floe.dist.Dist/Echo")
    small = roundtrips(call, 4096, 2000)
    big = roundtrips(call, 64 * MB, 7)
    name = "grpcio TLS" if tls else "grpcio plain"
    print(f"{name:<16} 4 KiB round trip {small * 1e6:8.1f} us   64 MiB round trip "
          f"{big * 1e3:7.1f} ms = {2 * 64 / big:6.0f} MiB/s (both ways)")
    chan.close()
    server.stop(None)


if __name__ == "__main__":
    run(sys.argv[1], True)
    run(sys.argv[1], False)
