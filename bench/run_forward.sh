#!/usr/bin/env bash
# Forward throughput: `prune bench forward` beside the PyTorch CPU reference (bench/forward_torch.py)
# on the same GGUF model, interleaved in one run, 2 threads each. MODE=backward times forward +
# backward instead (`prune bench backward`, forward_torch.py --backward); bench/run_backward.sh.
#
#   [ROUNDS=2] [MODE=forward|backward] bench/run_forward.sh [MODEL] [BATCH] [SEQ_LEN]
#
# Needs a Python with torch, numpy and gguf; set PYTHON (default: bench/.venv/bin/python, created
# with `python3 -m venv bench/.venv && bench/.venv/bin/pip install torch numpy gguf` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
batch=${2:-8}
seq=${3:-128}
py=${PYTHON:-bench/.venv/bin/python}
if [ ! -x "$py" ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch numpy gguf
fi
mode=${MODE:-forward}
torch_flag=""
[ "$mode" = backward ] && torch_flag=--backward
swift build -c release --product prune >/dev/null
for round in $(seq "${ROUNDS:-2}"); do
  ours=$(.build/release/prune bench "$mode" --model "$model" --batch "$batch" --seq-len "$seq" --json)
  ref=$("$py" bench/forward_torch.py --model "$model" --batch "$batch" --seq-len "$seq" --threads 2 $torch_flag 2>/dev/null)
  python3 - "$ours" "$ref" "$round" <<'PY'
import json, sys
o, r, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"round {n}: prune {o['tokens_per_second']:.0f} tok/s ({o['backend']}), "
      f"{r['engine']} {r['tokens_per_second']:.0f} tok/s, ratio {o['tokens_per_second'] / r['tokens_per_second']:.2f}")
PY
done
