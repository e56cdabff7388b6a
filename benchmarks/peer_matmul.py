#!/usr/bin/env python3
"""peer_matmul.py - the peers' f32 matmul on this machine, for comparison with bench_matmul.

Times numpy (its BLAS: OpenBLAS on Debian, so OPENBLAS_CORETYPE applies) and PyTorch (its own
threads) on the same sizes as bench_matmul, 1024 and 2048, and prints GFLOP/s (median,
min..max).  Each peer is optional: a missing one is reported and skipped, and the script
exits 0.  Usage: peer_matmul.py [--quick]
"""
import statistics
import sys
import time

SIZES = (1024, 2048)


def timeit(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def report(name, n, times):
    flops = 2.0 * n * n * n
    med = statistics.median(times)
    print(f"    {name:<22} {flops / med * 1e-9:7.1f} GFLOP/s  "
          f"({flops / max(times) * 1e-9:.1f}..{flops / min(times) * 1e-9:.1f}, "
          f"{med * 1e3:.2f} ms median)")


def main():
    quick = "--quick" in sys.argv[1:]
    print("peers: f32 [n,n] x [n,n]")
    try:
        import numpy as np
    except ImportError:
        np = None
        print("  numpy: not installed, skipped")
    try:
        import torch
    except ImportError:
        torch = None
        print("  torch: not installed, skipped")
    if np is None and torch is None:
        return 0
    for n in SIZES:
        reps = (10 if n <= 1024 else 4) * (1 if quick else 3)
        print(f"  n = {n}")
        if np is not None:
            rng = np.random.default_rng(1)
            a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            report(f"numpy {np.__version__}", n, timeit(lambda: a @ b, reps))
        if torch is not None:
            ta = torch.rand(n, n, dtype=torch.float32) * 2 - 1
            tb = torch.rand(n, n, dtype=torch.float32) * 2 - 1
            report(f"torch {torch.__version__} ({torch.get_num_threads()} thr)", n,
                   timeit(lambda: torch.matmul(ta, tb), reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
