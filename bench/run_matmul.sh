#!/usr/bin/env bash
# Matmul throughput, ours against numpy (OpenBLAS), interleaved: ours, numpy, ours, numpy, ...
# Prints a table per (op, m, n, k) of the best GFLOP/s of each over the rounds, the ratio ours/numpy,
# and the geometric mean and worst ratio at M >= 128. Both use every core (`nproc` threads).
#
#   bench/run_matmul.sh                 # 2 rounds, 0.3 s per case
#   ROUNDS=3 MIN_SECONDS=0.5 bench/run_matmul.sh
#   PRUNE_BENCH_CMD="path/to/driver --json" bench/run_matmul.sh   # another command printing the same JSON
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
ROUNDS=${ROUNDS:-2}
MIN_SECONDS=${MIN_SECONDS:-0.3}
PYTHON=${PYTHON:-python3}
THREADS=$(nproc)
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

if [ -z "${PRUNE_BENCH_CMD:-}" ]; then
    swift build -c release --product prune >&2
    PRUNE_BENCH_CMD="$(swift build -c release --show-bin-path)/prune bench matmul --json --min-seconds $MIN_SECONDS"
fi
"$PYTHON" -c "import numpy" 2>/dev/null || { echo "run_matmul.sh: $PYTHON has no numpy; pip install numpy" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in $(seq "$ROUNDS"); do
    echo "round $r/$ROUNDS: ours" >&2
    $PRUNE_BENCH_CMD > "$out/ours.$r.json"
    echo "round $r/$ROUNDS: numpy" >&2
    "$PYTHON" bench/matmul_numpy.py --min-seconds "$MIN_SECONDS" > "$out/numpy.$r.json"
done

"$PYTHON" - "$out" <<'PY'
import glob, json, math, sys

def best(pattern):
    b = {}
    for f in sorted(glob.glob(pattern)):
        for r in json.load(open(f)):
            key = (r["op"], r["m"], r["n"], r["k"])
            b[key] = max(b.get(key, 0.0), r["gflops"])
    return b

d = sys.argv[1]
ours, ref = best(d + "/ours.*.json"), best(d + "/numpy.*.json")
print(f"{'op':<5} {'m':>5} {'n':>6} {'k':>5} {'ours':>9} {'numpy':>9} {'ratio':>6}   (GFLOP/s, best of rounds)")
big = []
for key in sorted(ours, key=lambda t: (t[2], t[3], t[1], t[0])):
    if key not in ref:
        continue
    op, m, n, k = key
    ratio = ours[key] / ref[key]
    if m >= 128:
        big.append((ratio, key))
    print(f"{op:<5} {m:>5} {n:>6} {k:>5} {ours[key]:>9.1f} {ref[key]:>9.1f} {ratio:>6.2f}")
if big:
    geo = math.exp(sum(math.log(r) for r, _ in big) / len(big))
    worst, (op, m, n, k) = min(big)
    print(f"M >= 128: geo-mean ratio {geo:.2f} over {len(big)} cases; worst {worst:.2f} ({op} m={m} n={n} k={k})")
PY
