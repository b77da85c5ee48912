#!/usr/bin/env bash
# Generation speed at batch 1 (each new token one forward, memory-bound): `prune generate` beside
# llama.cpp on the same GGUF file and prompt, greedy, 2 threads each.
#
#   [TOKENS=32] bench/run_generate.sh [MODEL]     # default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M
#
# Needs a llama-cpp-python environment (LLAMA_PY, default /root/llama-env/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
tokens=${TOKENS:-32}
llama_py=${LLAMA_PY:-/root/llama-env/bin/python}
prompt="The history of the printing press begins"
swift build -c release --product prune >/dev/null 2>&1
echo "prune generate ($model, $tokens tokens):"
/usr/bin/time -f "  peak RSS %M KiB, wall %e s" .build/release/prune generate --model "$model" --prompt "$prompt" \
  --max-tokens "$tokens" --temperature 0 2>&1 >/dev/null | sed 's/^/  /'
echo "llama.cpp (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE removed):"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$llama_py" bench/llamacpp_generate.py "$model" --prompt "$prompt" --tokens "$tokens" | sed 's/^/  /'
