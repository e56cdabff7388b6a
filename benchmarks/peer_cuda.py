#!/usr/bin/env python3
"""peer_cuda.py - the seed's Fashion-MNIST models on one GPU: `floe train` (dev_cuda) against
PyTorch on the same GPU, same model, batch 32, Adam 1e-3.

Usage: python3 benchmarks/peer_cuda.py [BUILD_DIR] [--epochs N] [--model mlp|cnn]

Floe runs from BUILD_DIR (default build) with the build tree's plugins, dev_cuda included;
PyTorch (any python with torch built for CUDA, and numpy) runs in a child process with its
data already on the GPU, as Floe's input pipeline feeds batches from host memory (so the
comparison favours PyTorch slightly).  The first epoch includes warm-up (cuDNN and cuBLAS
heuristics, allocator growth); the ratio uses the best later epoch of each.  Exits 77 when
there is no GPU or PyTorch lacks CUDA.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_mlp import load  # noqa: E402  (the IDX reader of the CPU peer)


def torch_epochs(epochs, model_name):
    import numpy as np
    import torch
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    x, y = load("train")
    xt = torch.from_numpy(x.astype(np.float32) / 255.0).to(dev)
    yt = torch.from_numpy(y.astype(np.int64)).to(dev)
    nn = torch.nn
    if model_name == "cnn":
        xt = xt.reshape(-1, 1, 28, 28)
        model = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
    else:
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        perm = torch.randperm(len(xt), device=dev)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print("EPOCHS " + " ".join(f"{t:.4f}" for t in times), flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-child":
        torch_epochs(int(sys.argv[2]), sys.argv[3])
        return
    args = list(sys.argv[1:])
    opts = {"--epochs": "3", "--model": "mlp"}
    for k in list(opts):
        if k in args:
            i = args.index(k)
            opts[k] = args[i + 1]
            del args[i:i + 2]
    build = args[0] if args else "build"
    epochs, model_name = int(opts["--epochs"]), opts["--model"]
    try:
        import torch
        if not torch.cuda.is_available():
            raise ImportError("torch without CUDA")
    except ImportError as e:
        print(f"SKIP: {e}")
        sys.exit(77)
    env = dict(os.environ)
    env.pop("FLOE_CUDA_VISIBLE_DEVICES", None)
    env["FLOE_PLUGIN_PATH"] = ":".join(f"{build}/plugins/{p}"
                                       for p in ("dev_cpu", "ops_math", "ops_nn", "dev_cuda"))
    env["FLOE_PLUGIN_SYSTEM_PATH"] = ""
    out = subprocess.run([f"{build}/tools/floe", "train", "--model", model_name, "--epochs",
                          str(epochs), "--no-checkpoint"], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    print(out, end="")
    ft = [float(t) for t in re.findall(r"Epoch \d+/\d+ - ([0-9.]+)s", out)]
    tout = subprocess.run([sys.executable, __file__, "--torch-child", str(epochs), model_name],
                          check=True, stdout=subprocess.PIPE, text=True).stdout
    tt = [float(t) for t in tout.split("EPOCHS ")[1].split()]
    print(f"floe train --model {model_name} (GPU): epochs {', '.join(f'{t:.3f}' for t in ft)} s")
    print(f"torch {torch.__version__} (GPU): epochs {', '.join(f'{t:.3f}' for t in tt)} s")
    fb = min(ft[1:]) if len(ft) > 1 else ft[0]
    tb = min(tt[1:]) if len(tt) > 1 else tt[0]
    print(f"ratio Floe best steady epoch / PyTorch: {fb / tb:.2f}")


if __name__ == "__main__":
    main()
