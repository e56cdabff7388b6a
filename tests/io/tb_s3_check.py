#!/usr/bin/env python3
"""tb_s3_check.py - event files written to s3:// (a filesystem without append, so the
summary writer rewrites the whole object at each flush) are complete and TensorBoard
reads them.

Usage: tb_s3_check.py TB_SAMPLE

Starts tests/s3/s3_server.py (moto's S3 server), runs `TB_SAMPLE s3://floe-tb/run`
with the fs_s3 plugin pointed at it, downloads what it wrote with boto3 and runs
tb_check.py's checks (TensorBoard's own readers) on the copy.  Exits 77 (meson:
skipped) with the reason when moto, boto3 or tensorboard is missing.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tb_check  # noqa: E402  (exits 77 itself without tensorboard)

try:
    import boto3
    from botocore.config import Config
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: boto3 is not available ({e}); pip install 'moto[server]'")
    sys.exit(77)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    server = os.path.join(HERE, "..", "s3", "s3_server.py")
    srv = subprocess.Popen([sys.executable, server, "--lifetime", "300"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = srv.stdout.readline().strip()
        if line.startswith("skip:"):
            print("SKIP:", line[5:].strip())
            return 77
        _, moto_port, proxy_port, key, secret = line.split()
        srv.stdin.write("mkbucket floe-tb\n")
        srv.stdin.flush()
        if srv.stdout.readline().strip() != "ok":
            print("FAIL: mkbucket")
            return 1
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy_port}",
                   AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent/floe-test",
                   AWS_CONFIG_FILE="/nonexistent/floe-test")
        out = subprocess.run([sys.argv[1], "s3://floe-tb/run"], capture_output=True, text=True,
                             env=env)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            print("FAIL: tb_sample on s3://")
            return 1
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}",
                          aws_access_key_id=key, aws_secret_access_key=secret,
                          region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
        with tempfile.TemporaryDirectory(prefix="floe-tb-s3-") as d:
            n = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="floe-tb",
                                                                     Prefix="run/"):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len("run/"):]
                    if "events.out.tfevents." not in name:
                        continue  # directory markers
                    dest = os.path.join(d, name)
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    s3.download_file("floe-tb", obj["Key"], dest)
                    n += 1
            tb_check.check(n == 3, f"3 event files under s3://floe-tb/run/, got {n}")
            epochs, graph = tb_check.parse_sample_output(out.stdout)
            tb_check.check_sample(os.path.join(d, "sample"), graph)
            tb_check.check_fit(os.path.join(d, "fit"), epochs)
    finally:
        try:
            srv.stdin.write("quit\n")
            srv.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
    if tb_check.FAILURES:
        print(f"{len(tb_check.FAILURES)} check(s) failed")
        return 1
    print("TensorBoard read every value Floe wrote to s3://")
    return 0


if __name__ == "__main__":
    sys.exit(main())
