#!/usr/bin/env python3
"""PyTorch (CPU) float32 reference for `prune bench matmul`: the shapes, forms and JSON of matmul_numpy.py.

Forms (FLOPs 2·m·n·k each): xwt  Y = X·Wᵀ  (x @ w.t(), X m×k, W n×k)
                            dyw  dX = dY·W (dy @ w, dY m×n)
                            dytx dW = dYᵀ·X (dy.t() @ x)
Each through torch.matmul(..., out=...) on CPU tensors, torch.set_num_threads(--threads). Each case runs
back to back for at least --min-seconds (and 3 calls); the best call is reported.
Output: a JSON array of {"m", "n", "k", "op", "gflops", "seconds"}.
With --info, prints instead one line naming the BLAS torch runs (torch version, BLAS_INFO from
torch.__config__.show(), MKL available, oneMKL's own banner, CPU capability, threads) and exits.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import torch

from matmul_numpy import MS, OPS, SHAPES


def case(op, m, n, k, g):
    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32)

    w = randn(n, k)
    if op == "xwt":
        x = randn(m, k)
        out = torch.empty(m, n, dtype=torch.float32)
        return lambda: torch.matmul(x, w.t(), out=out)
    dy = randn(m, n)
    if op == "dyw":
        out = torch.empty(m, k, dtype=torch.float32)
        return lambda: torch.matmul(dy, w, out=out)
    x = randn(m, k)
    out = torch.empty(n, k, dtype=torch.float32)
    return lambda: torch.matmul(dy.t(), x, out=out)


def mkl_banner():
    """oneMKL's own first MKL_VERBOSE line (library build and the processor class it dispatched for)."""
    code = "import torch; a = torch.ones(64, 64); torch.matmul(a, a.t())"
    env = dict(os.environ, MKL_VERBOSE="1")
    try:
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in p.stdout.splitlines() + p.stderr.splitlines():
        if line.startswith("MKL_VERBOSE") and "SGEMM" not in line:
            return line[len("MKL_VERBOSE"):].strip()
    return None


def info(threads):
    torch.set_num_threads(threads)
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    line = (f"torch {torch.__version__}: BLAS {blas.group(1) if blas else '?'}, "
            f"mkl available {torch.backends.mkl.is_available()}, "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads ({torch.__config__.parallel_info().splitlines()[-1].strip()})")
    banner = mkl_banner() if torch.backends.mkl.is_available() else None
    if banner:
        line += f"; {banner}"
    pinned = " ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ)
    return line + (f"; env {pinned}" if pinned else "; OPENBLAS_CORETYPE/L2_SIZE unset")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-seconds", type=float, default=0.3)
    ap.add_argument("--ms", default=",".join(map(str, MS)), help="comma-separated M values")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--info", action="store_true", help="print the BLAS library and threads torch uses, and exit")
    args = ap.parse_args()
    if args.info:
        print(info(args.threads))
        return
    torch.set_num_threads(args.threads)
    ms = [int(s) for s in args.ms.split(",") if s]
    ops = [s for s in args.ops.split(",") if s]
    g = torch.Generator().manual_seed(1)
    results = []
    with torch.inference_mode():
        for n, k in SHAPES:
            for m in ms:
                for op in ops:
                    f = case(op, m, n, k, g)
                    f()  # warm-up
                    best, calls, t0 = float("inf"), 0, time.perf_counter()
                    while calls < 3 or time.perf_counter() - t0 < args.min_seconds:
                        t = time.perf_counter()
                        f()
                        best = min(best, time.perf_counter() - t)
                        calls += 1
                    results.append({"m": m, "n": n, "k": k, "op": op,
                                    "gflops": 2.0 * m * n * k / best / 1e9, "seconds": best})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
