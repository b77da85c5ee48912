#!/usr/bin/env bash
# The deployment benchmark: prunes each model at 20% and 50% of its parameters with the recipes in
# bench/deploy/ (20%: KV groups and MLP channels of the middle layers, Wanda-sp; 50%: KV groups, MLP
# and hidden channels of every layer, Wanda; uniform allocation, widths in multiples of 32 for
# SmolLM2's Q4_1 and 256 for Qwen2.5's k-quants, every tensor written in its input type), then
# measures the dense and the two pruned files in llama.cpp with bench/deploy.py (same run, models
# taking turns, median of 5).
#
#   bench/run_deploy.sh [smollm2] [qwen2.5-0.5b]     (default: both; the models from scripts/setup.sh)
#
# It needs llama-cpp-python in ~/llama-env (or LLAMA_PY=/path/to/python), built from source (about
# 15 minutes): python3 -m venv ~/llama-env && ~/llama-env/bin/pip install llama-cpp-python==0.3.36 numpy
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
py=${LLAMA_PY:-$HOME/llama-env/bin/python}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(smollm2 qwen2.5-0.5b)
swift build -c release > /dev/null
for m in "${models[@]}"; do
  for r in 20 50; do .build/release/prune run "bench/deploy/$m-$r.json" 2>&1 | tail -1; done
  dense=$(python3 -c "import json, os; print(os.path.normpath(os.path.join('bench/deploy', json.load(open('bench/deploy/$m-20.json'))['model'])))")
  # llama.cpp's speed is what is measured: unset the machine's OpenBLAS pins in this command alone
  # (llama.cpp does not use OpenBLAS; numpy in the script only takes an argmax).
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/deploy.py "$dense" out/deploy/"$m"-20/*.pruned.gguf \
    out/deploy/"$m"-50/*.pruned.gguf --runs 5 --json "out/deploy/$m.json"
done
