#!/usr/bin/env python3
"""peer_mlp.py - the seed's Fashion-MNIST MLP, one epoch, Floe against PyTorch in one run.

Usage: /usr/bin/python3 benchmarks/peer_mlp.py [BUILD_DIR] [--epochs N]
(Debian's python3-torch 1.13 lives in /usr/bin/python3; any python with torch and numpy works.)

Model: Flatten, Dense 128 relu, Dense 10, Adam 1e-3, batch 32 (issue 3's main job).  PyTorch
runs with 1 and 2 intra-op threads and its best steady epoch is the peer; Floe runs
`floe train --epochs N` from BUILD_DIR (default build) and its steady epoch (the last one
printed) is compared.  Prints the ratio Floe / best PyTorch (issue 3 target <= 0.5).
PyTorch is optional: without it, only Floe's figures are printed.
"""
import gzip
import os
import re
import subprocess
import sys
import time

DATA = "/usr/share/datasets/fashion-mnist"


def load(kind):
    import numpy as np
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def torch_epochs(threads, epochs):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = load("train")
    xt = torch.from_numpy(x.astype(np.float32) / 255.0)
    yt = torch.from_numpy(y.astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        t0 = time.perf_counter()
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def floe_epochs(build, epochs):
    env = dict(os.environ)
    env["FLOE_PLUGIN_PATH"] = ":".join(f"{build}/plugins/{p}" for p in ("dev_cpu", "ops_math", "ops_nn"))
    env["FLOE_PLUGIN_SYSTEM_PATH"] = ""
    out = subprocess.run([f"{build}/tools/floe", "train", "--epochs", str(epochs),
                          "--checkpoint", "/tmp/floe-peer-mlp-ckpt"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return [float(t) for t in re.findall(r"Epoch \d+/\d+ - ([0-9.]+)s", out)], out


def main():
    args = [a for a in sys.argv[1:]]
    epochs = 2
    if "--epochs" in args:
        k = args.index("--epochs")
        epochs = int(args[k + 1])
        del args[k:k + 2]
    build = args[0] if args else "build"
    ft, out = floe_epochs(build, epochs)
    print(f"floe train: epochs {', '.join(f'{t:.3f}' for t in ft)} s")
    print("\n".join(l for l in out.splitlines() if l.startswith("Test")))
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch: not installed, skipped (apt-get install python3-torch)")
        return
    best = None
    for threads in (1, 2):
        tt = torch_epochs(threads, epochs)
        print(f"torch {torch.__version__} threads={threads}: epochs {', '.join(f'{t:.3f}' for t in tt)} s")
        steady = min(tt[1:] or tt)
        best = steady if best is None else min(best, steady)
    print(f"ratio Floe steady epoch / best PyTorch: {ft[-1] / best:.2f} (issue 3 target <= 0.5)")


if __name__ == "__main__":
    main()
