#!/usr/bin/env bash
# Matmul throughput, ours against numpy (OpenBLAS) and PyTorch (torch.matmul on CPU, MKL in the stock
# wheels), interleaved per round: ours, numpy, torch, ours, numpy, torch, ...
# Prints which BLAS and kernels each reference ran, then a table per (op, m, n, k) of the best GFLOP/s of
# each over the rounds, the ratios ours/numpy and ours/torch, and per reference the geometric mean and
# worst ratio at M >= 128. Everything uses every core (`nproc` threads).
#
# The references run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from their environment (and only
# theirs; our binary inherits the environment unchanged): a machine-wide OPENBLAS_CORETYPE=Haswell pins
# OpenBLAS to its AVX2 kernels on an AVX-512 machine, a handicapped reference.
#
#   bench/run_matmul.sh                 # 2 rounds, 0.3 s per case
#   ROUNDS=3 MIN_SECONDS=0.5 bench/run_matmul.sh
#   PRUNE_BENCH_CMD="path/to/driver --json" bench/run_matmul.sh   # another command printing the same JSON
#   PYTHON=python3 bench/run_matmul.sh  # the python for numpy (default bench/.venv/bin/python if it has numpy)
#   TORCH_PYTHON=/path/to/python bench/run_matmul.sh   # the python for torch (default bench/.venv/bin/python);
#                                       # without a torch there, the torch columns are skipped
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
ROUNDS=${ROUNDS:-2}
MIN_SECONDS=${MIN_SECONDS:-0.3}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if [ -x bench/.venv/bin/python ] && bench/.venv/bin/python -c "import numpy" 2>/dev/null; then
        PYTHON=bench/.venv/bin/python
    fi
fi
TORCH_PYTHON=${TORCH_PYTHON:-bench/.venv/bin/python}
THREADS=$(nproc)
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
REF_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)   # for the references' commands alone

if [ -z "${PRUNE_BENCH_CMD:-}" ]; then
    swift build -c release --product prune >&2
    PRUNE_BENCH_CMD="$(swift build -c release --show-bin-path)/prune bench matmul --json --min-seconds $MIN_SECONDS"
fi
"$PYTHON" -c "import numpy" 2>/dev/null || { echo "run_matmul.sh: $PYTHON has no numpy; pip install numpy" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
{
    inherited=$(env | grep -E '^OPENBLAS_(CORETYPE|L2_SIZE)=' | tr '\n' ' ' || true)
    echo "threads: $THREADS; inherited: ${inherited:-no OPENBLAS_CORETYPE/L2_SIZE }(removed for the references only)"
    echo "ours: $PRUNE_BENCH_CMD"
    "${REF_ENV[@]}" "$PYTHON" bench/matmul_numpy.py --info
    if "$TORCH_PYTHON" -c "import torch" 2>/dev/null; then
        "${REF_ENV[@]}" "$TORCH_PYTHON" bench/matmul_torch.py --info --threads "$THREADS"
        touch "$out/have_torch"
    else
        echo "torch: skipped ($TORCH_PYTHON cannot import torch; set TORCH_PYTHON)"
    fi
} > "$out/kernels.txt"
cat "$out/kernels.txt" >&2

for r in $(seq "$ROUNDS"); do
    echo "round $r/$ROUNDS: ours" >&2
    $PRUNE_BENCH_CMD > "$out/ours.$r.json"
    echo "round $r/$ROUNDS: numpy" >&2
    "${REF_ENV[@]}" "$PYTHON" bench/matmul_numpy.py --min-seconds "$MIN_SECONDS" > "$out/numpy.$r.json"
    if [ -e "$out/have_torch" ]; then
        echo "round $r/$ROUNDS: torch" >&2
        "${REF_ENV[@]}" "$TORCH_PYTHON" bench/matmul_torch.py --min-seconds "$MIN_SECONDS" --threads "$THREADS" \
            > "$out/torch.$r.json"
    fi
done

cat "$out/kernels.txt"
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
ours = best(d + "/ours.*.json")
refs = {"numpy": best(d + "/numpy.*.json")}
torch = best(d + "/torch.*.json")
if torch:
    refs["torch"] = torch
names = list(refs)
head = f"{'op':<5} {'m':>5} {'n':>6} {'k':>5} {'ours':>8}" + "".join(f" {n:>8}" for n in names)
head += "".join(f" {'ours/' + n:>11}" for n in names)
print(head + "   (GFLOP/s, best of rounds)")
big = {n: [] for n in names}
for key in sorted(ours, key=lambda t: (t[2], t[3], t[1], t[0])):
    if key not in refs["numpy"]:
        continue
    op, m, n, k = key
    row = f"{op:<5} {m:>5} {n:>6} {k:>5} {ours[key]:>8.1f}"
    row += "".join(f" {refs[r][key]:>8.1f}" if key in refs[r] else f" {'-':>8}" for r in names)
    for r in names:
        if key in refs[r]:
            ratio = ours[key] / refs[r][key]
            row += f" {ratio:>11.2f}"
            if m >= 128:
                big[r].append((ratio, key))
        else:
            row += f" {'-':>11}"
    print(row)
for r in names:
    if big[r]:
        geo = math.exp(sum(math.log(x) for x, _ in big[r]) / len(big[r]))
        worst, (op, m, n, k) = min(big[r])
        print(f"M >= 128, ours/{r}: geo-mean ratio {geo:.2f} over {len(big[r])} cases; "
              f"worst {worst:.2f} ({op} m={m} n={n} k={k}: {ours[(op, m, n, k)]:.0f} vs {refs[r][(op, m, n, k)]:.0f} GFLOP/s)")
if "torch" not in refs:
    print("torch: no torch results; columns skipped")
PY
