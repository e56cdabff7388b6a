#!/usr/bin/env python3
"""peer_mlp.py - the seed's Fashion-MNIST models, Floe against PyTorch in one run.

Usage: /usr/bin/python3 benchmarks/peer_mlp.py [BUILD_DIR] [--epochs N] [--model mlp|cnn]
                                                [--repeat R]
(Debian's python3-torch 1.13 lives in /usr/bin/python3; any python with torch and numpy works.)

mlp: Flatten, Dense 128 relu, Dense 10, Adam 1e-3, batch 32 (issue 3's main job; target epoch
ratio <= 0.5).  cnn: the seed CNN, conv 5x5x32 relu, max-pool 2, conv 5x5x64 relu, max-pool 2,
dense 1024 relu, dense 10 (target <= 0.6).  Every job runs in its own process, so each gets its
own peak RSS (wait4's ru_maxrss; target: Floe's whole job <= 0.6x PyTorch's).  PyTorch runs with
1 and 2 intra-op threads and its best steady epoch is the peer; Floe runs `floe train` from
BUILD_DIR (default build) R times (default 1; the spread max/min of its steady epochs is
printed, target <= 1.1).  PyTorch is optional: without it, only Floe's figures are printed.
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


def torch_epochs(threads, epochs, model_name):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = load("train")
    xt = torch.from_numpy(x.astype(np.float32) / 255.0)
    yt = torch.from_numpy(y.astype(np.int64))
    nn = torch.nn
    if model_name == "cnn":
        xt = xt.reshape(-1, 1, 28, 28)
        model = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
    else:
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
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
    print("EPOCHS " + " ".join(f"{t:.4f}" for t in times), flush=True)


def run_child(cmd, env=None):
    """Runs @cmd, returns (stdout, peak RSS in MB) from wait4."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with {p.returncode}")
    return out, ru.ru_maxrss / 1024.0


def floe_epochs(build, epochs, model_name):
    env = dict(os.environ)
    env["FLOE_PLUGIN_PATH"] = ":".join(f"{build}/plugins/{p}" for p in ("dev_cpu", "ops_math", "ops_nn"))
    env["FLOE_PLUGIN_SYSTEM_PATH"] = ""
    out, rss = run_child([f"{build}/tools/floe", "train", "--model", model_name, "--epochs",
                          str(epochs), "--checkpoint", "/tmp/floe-peer-ckpt-" + model_name], env)
    return [float(t) for t in re.findall(r"Epoch \d+/\d+ - ([0-9.]+)s", out)], out, rss


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--torch-child":
        torch_epochs(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    args = list(sys.argv[1:])
    opts = {"--epochs": "2", "--model": "mlp", "--repeat": "1"}
    for k in list(opts):
        if k in args:
            j = args.index(k)
            opts[k] = args[j + 1]
            del args[j:j + 2]
    epochs, model_name, repeat = int(opts["--epochs"]), opts["--model"], int(opts["--repeat"])
    build = args[0] if args else "build"
    steady = []
    for r in range(repeat):
        ft, out, frss = floe_epochs(build, epochs, model_name)
        steady.append(ft[-1])
        print(f"floe train --model {model_name}: epochs {', '.join(f'{t:.3f}' for t in ft)} s, "
              f"peak RSS {frss:.1f} MB")
        print("\n".join(l for l in out.splitlines() if l.startswith("Test")))
    if repeat > 1:
        print(f"floe steady-epoch spread over {repeat} runs: max/min {max(steady) / min(steady):.3f} "
              "(target <= 1.1)")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch: not installed, skipped (apt-get install python3-torch)")
        return
    best, best_rss = None, None
    for threads in (1, 2):
        out, trss = run_child([sys.executable, __file__, "--torch-child", str(threads), str(epochs),
                               model_name])
        tt = [float(t) for t in out.split("EPOCHS", 1)[1].split()]
        print(f"torch {torch.__version__} threads={threads}: epochs {', '.join(f'{t:.3f}' for t in tt)} s, "
              f"peak RSS {trss:.1f} MB")
        s = min(tt[1:] or tt)
        if best is None or s < best:
            best, best_rss = s, trss
    target = 0.6 if model_name == "cnn" else 0.5
    print(f"ratio Floe steady epoch / best PyTorch: {min(steady) / best:.2f} (target <= {target})")
    print(f"ratio Floe peak RSS / PyTorch's (best setting): {frss / best_rss:.2f} (target <= 0.6)")


if __name__ == "__main__":
    main()
