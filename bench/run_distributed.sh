#!/usr/bin/env bash
# Two MPI ranks of one thread each against one process of two threads, on this machine, for what a
# distributed run shares out: calibration + scoring (wanda: activation statistics; taylor: the
# block-by-block gradient), evaluation (`prune eval`, WikiText-2 PPL@128) and LoRA steps. Prints,
# per case, the best wall time of each over the rounds (interleaved: one process, two ranks, ...)
# and what rank 0's collectives sent (each all-gather sends its bytes to every other rank and
# receives theirs), so a user can judge the gain on several machines.
#
#   bench/run_distributed.sh              # 2 rounds; needs mpirun (Open MPI) and models/ SmolLM2
#   ROUNDS=3 bench/run_distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
ROUNDS=${ROUNDS:-2}
MODEL=$(pwd)/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$MODEL" ] || { echo "bench: $MODEL is missing; run scripts/setup.sh" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "bench: mpirun is missing; install Open MPI (openmpi-bin)" >&2; exit 1; }
swift build -c release --product prune > /dev/null 2>&1
PRUNE=$(pwd)/.build/release/prune
work=$(mktemp -d /tmp/prune-bench-distributed.XXXXXX)
trap 'rm -rf "$work"' EXIT
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2)

# recipe NAME CRITERION SAMPLES EXTRA: a quick-start recipe with SAMPLES × 128 calibration tokens.
recipe() {
  cat > "$work/$1.json" <<EOF
{
  "version": 1,
  "model": "$MODEL",
  "calibration": { "dataset": "c4", "samples": $3, "seqLen": 128, "seed": 42 },
  "grouping": { "type": "decoder", "structures": ["kv-groups", "mlp-channels"], "layers": [3, 26] },
  "criterion": $2,
  "scheduler": { "type": "uniform", "ratio": 0.2, "roundTo": 32 },$4
  "evaluation": { "datasets": ["wikitext2"], "seqLen": 128, "maxWindows": 2 },
  "output": { "dir": "$work/out-$1", "formats": ["gguf"], "type": "same-as-input" }
}
EOF
}
recipe wanda '{ "type": "wanda" }' 128 ""
recipe taylor '{ "type": "taylor", "estimator": "element1" }' 32 ""
recipe lora '{ "type": "wanda" }' 16 '
  "fineTuner": { "type": "lora", "steps": 10, "batch": 8, "microBatch": 1, "seqLen": 128 },'

# One measurement: MODE (one|two) CASE; appends "CASE MODE seconds bytes gathers largest" to results.
measure() {
  local mode=$1 case=$2 launch=()
  [ "$mode" = two ] && launch=("${MPIRUN[@]}")
  if [ "$case" = eval ]; then
    "${launch[@]}" "$PRUNE" eval --model "$MODEL" --dataset wikitext2 --max-windows 96 --json > "$work/eval.json" 2> /dev/null
    python3 - "$work/eval.json" "$mode" >> "$work/results" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
# 96 windows: one gather of 2 doubles per batch of 8 windows per rank, each rank 6 batches.
print("eval", sys.argv[2], r["seconds"], "-", "-", "-", r["ppl"])
PY
    return
  fi
  "${launch[@]}" "$PRUNE" run "$work/$case.json" --output-dir "$work/out-$case-$mode" > /dev/null 2>&1
  python3 - "$work/out-$case-$mode/report.json" "$case" "$mode" >> "$work/results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); case, mode = sys.argv[2], sys.argv[3]
want = {"wanda": ("calibrate", "score"), "taylor": ("gradients", "score"), "lora": ("fine-tune",)}[case]
secs = sum(s["seconds"] for s in r["stages"] if s["name"].startswith(want))
t = [x for x in (r.get("distributed") or {}).get("traffic", []) if x["stage"].startswith(want)]
sent = sum(x["sent"]["bytes_sent"] for x in t); calls = sum(x["sent"]["all_gathers"] for x in t)
largest = max([x["sent"]["largest_bytes"] for x in t] or [0])
print(case, mode, secs, sent if t else "-", calls if t else "-", largest if t else "-", r["ppl_after"])
PY
}

: > "$work/results"
for round in $(seq "$ROUNDS"); do
  for case in wanda taylor eval lora; do
    for mode in one two; do measure "$mode" "$case"; done
  done
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(mpirun --version | head -1)"
echo "one process: $("$PRUNE" bench matmul --min-seconds 0.01 2>/dev/null | head -1); two ranks: 1 thread each (cores / processes on the machine)"
python3 - "$work/results" "$ROUNDS" <<'PY'
import sys, collections
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
best = collections.defaultdict(lambda: None)
info = {}
for case, mode, secs, sent, calls, largest, ppl in rows:
    s = float(secs)
    if best[(case, mode)] is None or s < best[(case, mode)]: best[(case, mode)] = s
    if mode == "two": info[case] = (sent, calls, largest)
    info[(case, mode, "ppl")] = ppl
what = {"wanda": "calibrate + score, wanda (128 × 128 tokens)", "taylor": "gradients + score, taylor element1 (32 × 128 tokens)",
        "eval": "prune eval, WikiText-2 PPL@128, 96 windows", "lora": "LoRA, 10 steps × 8 × 128 tokens"}
print(f"best of {sys.argv[2]} rounds\n")
print("| stage | 1 process × 2 threads (s) | 2 ranks × 1 thread (s) | speed-up | rank 0 sent | all-gathers | largest all-gather | same result |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for case in ["wanda", "taylor", "eval", "lora"]:
    one, two = best[(case, "one")], best[(case, "two")]
    sent, calls, largest = info.get(case, ("-", "-", "-"))
    mb = lambda b: "-" if b == "-" else f"{int(b) / 1e6:.1f} MB"
    a, b = info[(case, "one", "ppl")], info[(case, "two", "ppl")]
    same = f"PPL {a[:8]} in both" if a == b else f"PPL {a[:8]} vs {b[:8]}"
    print(f"| {what[case]} | {one:.2f} | {two:.2f} | {one / two:.2f}× | {mb(sent)} | {calls} | {mb(largest)} | {same} |")
PY
