#!/usr/bin/env python3
"""numpy float32 reference for `prune bench matmul`: the same shapes and forms, the same JSON.

Forms (FLOPs 2·m·n·k each): xwt  Y = X·Wᵀ  (x @ w.T, X m×k, W n×k)
                            dyw  dX = dY·W (dy @ w, dY m×n)
                            dytx dW = dYᵀ·X (dy.T @ x)
Each case runs back to back for at least --min-seconds (and 3 calls); the best call is reported.
Output: a JSON array of {"m", "n", "k", "op", "gflops", "seconds"}.
With --info, prints instead one line naming the BLAS numpy runs (from threadpoolctl: library, version,
core type, threads) and exits; run it with the same environment as the timed run, since
OPENBLAS_CORETYPE and friends pick the kernels.
"""
import argparse
import json
import os
import time

import numpy as np

MS = [1, 128, 512, 2048]
SHAPES = [(576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576)]
OPS = ["xwt", "dyw", "dytx"]


def case(op, m, n, k, rng):
    w = rng.standard_normal((n, k), dtype=np.float32)
    if op == "xwt":
        x = rng.standard_normal((m, k), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        return lambda: np.matmul(x, w.T, out=out)
    dy = rng.standard_normal((m, n), dtype=np.float32)
    if op == "dyw":
        out = np.empty((m, k), np.float32)
        return lambda: np.matmul(dy, w, out=out)
    x = rng.standard_normal((m, k), dtype=np.float32)
    out = np.empty((n, k), np.float32)
    return lambda: np.matmul(dy.T, x, out=out)


def info():
    """One line: which BLAS numpy runs, which kernels (OpenBLAS core type), how many threads."""
    pinned = " ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ)
    line = f"numpy {np.__version__}"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return line + ": BLAS unknown (threadpoolctl not installed; pip install threadpoolctl)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return line + ": no BLAS found by threadpoolctl"
    parts = [f"{i.get('internal_api')} {i.get('version')}, core type {i.get('architecture', '?')}, "
             f"{i.get('num_threads')} threads ({i.get('threading_layer', '?')})" for i in blas]
    return line + ": " + "; ".join(parts) + (f"; env {pinned}" if pinned else "; OPENBLAS_CORETYPE/L2_SIZE unset")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-seconds", type=float, default=0.3)
    ap.add_argument("--ms", default=",".join(map(str, MS)), help="comma-separated M values")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--info", action="store_true", help="print the BLAS library and kernels numpy uses, and exit")
    args = ap.parse_args()
    if args.info:
        print(info())
        return
    ms = [int(s) for s in args.ms.split(",") if s]
    ops = [s for s in args.ops.split(",") if s]
    rng = np.random.default_rng(1)
    results = []
    for n, k in SHAPES:
        for m in ms:
            for op in ops:
                f = case(op, m, n, k, rng)
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
