#!/usr/bin/env python3
"""A real S3 server for Floe's fs_s3 tests and benchmark: moto's server on loopback,
plus a fault-injecting HTTP proxy in front of it.

    python3 s3_server.py [--auth] [--lifetime SECONDS]

Starts moto's S3 server (moto.server.ThreadedMotoServer) on 127.0.0.1 at a port the
kernel picks, and a proxy on another free port that forwards every request to it
unchanged unless a fault rule matches.  With --auth, moto checks every request's
SigV4 signature against IAM: this script first creates the IAM user "floe" with an
s3:* policy and an access key (the server's first three actions are unauthenticated,
INITIAL_NO_AUTH_ACTION_COUNT=3), so requests signed with another key or secret fail
with 403 as on AWS.

Prints one line when ready:
    ready <moto port> <proxy port> <access key id> <secret access key>
then reads commands from stdin, one per line, answering "ok" (or "error: why"):
    fault METHOD SUBSTRING ACTION COUNT   the next COUNT requests whose method is METHOD
                                          (or *) and whose path+query contains SUBSTRING
                                          (or *) get ACTION instead of being forwarded:
                                          an HTTP status (500, 503, 429, ...) with an S3
                                          error body, "hang:SECONDS" (read the request,
                                          answer nothing for SECONDS, then close), or
                                          "drop" (close the connection at once) or
                                          "flip" (forward, flipping a bit of byte
                                          20 of the answer's body), "listloop" (a
                                          listing page that is truncated and gives
                                          the same token each time) or "notxml"
    clear                                 removes every rule
    count METHOD SUBSTRING                answers "ok N": requests seen by the proxy
    mkbucket NAME                         creates bucket NAME (through boto3, to moto)
    uploads BUCKET                        answers "ok N": multipart uploads in progress
    quit                                  stops
It stops on "quit", when stdin closes (the test died) or after --lifetime seconds
(default 600), so no server outlives its test.
"""
import argparse
import http.client
import http.server
import os
import socketserver
import sys
import threading
import time

rules_lock = threading.Lock()
rules = []          # [method, substring, action, remaining]
seen = []           # (method, path) of every request
moto_port = 0


def take_rule(method, path):
    with rules_lock:
        seen.append((method, path))
        for r in rules:
            if r[3] > 0 and r[0] in ("*", method) and (r[1] == "*" or r[1] in path):
                r[3] -= 1
                return r[2]
    return None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        action = take_rule(self.command, self.path)
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if action == "flip":     # forward, but flip one bit of byte 20 of the answer
            action = None
            flip = True
        else:
            flip = False
        if action in ("listloop", "notxml"):   # a broken server's 200 answers
            payload = (b"<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true"
                       b"</IsTruncated><NextContinuationToken>same</NextContinuationToken>"
                       b"<Contents><Key>loop/a&amp;b</Key><Size>1</Size></Contents>"
                       b"</ListBucketResult>" if action == "listloop"
                       else b"<html>this is not S3</html><<<")
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if action is not None and action.startswith("hang:"):
            time.sleep(float(action[5:]))
            self.close_connection = True
            return
        if action is not None:
            status = int(action)
            code = {503: "SlowDown", 429: "TooManyRequests"}.get(status, "InternalError")
            payload = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                       "<Message>injected by the test proxy</Message>"
                       "<RequestId>FAULT%d</RequestId></Error>" % (code, status)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection("127.0.0.1", moto_port, timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "expect")}
        conn.request(self.command, self.path, body=body if length > 0 else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if flip and len(data) > 20:
            data = data[:20] + bytes([data[20] ^ 1]) + data[21:]
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                 "server", "date"):
                self.send_header(k, v)
        # A HEAD answer has no body but the object's length.
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length if length is not None else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def setup_iam(port):
    import boto3
    iam = boto3.client("iam", endpoint_url="http://127.0.0.1:%d" % port,
                       region_name="us-east-1", aws_access_key_id="setup",
                       aws_secret_access_key="setup")
    iam.create_user(UserName="floe")
    iam.put_user_policy(UserName="floe", PolicyName="s3all", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",'
        '"Resource":"*"}]}'))
    key = iam.create_access_key(UserName="floe")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def s3_client(key, secret):
    import boto3
    return boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % moto_port,
                        region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret)


def main():
    global moto_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--auth", action="store_true")
    ap.add_argument("--lifetime", type=float, default=600)
    args = ap.parse_args()
    if args.auth:
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        print("skip: moto's server is not installed (pip install 'moto[server]'): %s" % e,
              flush=True)
        return 77
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    moto_port = server.get_host_and_port()[1]
    key, secret = ("floe-test-key", "floe-test-secret")
    if args.auth:
        key, secret = setup_iam(moto_port)
    proxy = ThreadingServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    # Bounded life: a watchdog ends the process even if stdin never closes.
    threading.Timer(args.lifetime, lambda: os._exit(3)).start()
    print("ready %d %d %s %s" % (moto_port, proxy.server_address[1], key, secret), flush=True)
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        if w[0] == "quit":
            break
        if w[0] == "clear":
            with rules_lock:
                rules.clear()
            print("ok", flush=True)
        elif w[0] == "fault" and len(w) == 5 and w[4].isdigit():
            with rules_lock:
                rules.append([w[1], w[2], w[3], int(w[4])])
            print("ok", flush=True)
        elif w[0] == "count" and len(w) == 3:
            with rules_lock:
                n = sum(1 for m, p in seen if w[1] in ("*", m) and (w[2] == "*" or w[2] in p))
            print("ok %d" % n, flush=True)
        elif w[0] == "mkbucket" and len(w) == 2:
            try:
                s3_client(key, secret).create_bucket(Bucket=w[1])
                print("ok", flush=True)
            except Exception as e:  # the answer names the failure; the test fails on it
                print("error: %s" % str(e).replace("\n", " "), flush=True)
        elif w[0] == "uploads" and len(w) == 2:
            try:
                ups = s3_client(key, secret).list_multipart_uploads(Bucket=w[1])
                print("ok %d" % len(ups.get("Uploads", [])), flush=True)
            except Exception as e:
                print("error: %s" % str(e).replace("\n", " "), flush=True)
        else:
            print("error: unknown command %r" % line.strip(), flush=True)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
