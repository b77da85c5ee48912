#!/usr/bin/env bash
# Memory and time of pruning large models (issue "scale"): peak RSS (/usr/bin/time -v), wall time
# per stage (report.json) and PPL before/after, for
#   1.5b, 1.5b-taylor: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (scripts/setup.sh qwen2.5-1.5b), 20% of
#        KV groups and MLP channels with wanda, or taylor element1;
#   1.5b-lora: wanda as above, then LoRA recovery (LORA_STEPS steps, default 4, of 2 × 128 tokens
#        from WikiText-2) over the weights kept quantized in the file;
#   7b, 7b-taylor: the same on a 7B-shaped model (Llama-2-7B shapes, random Q4_K weights, written by
#        bench/make_7b_gguf.py to $WORK at benchmark time and deleted at the end), and llama.cpp
#        loading the pruned file;
#   eval: evaluation speed on the 1.5B model beside llama.cpp's over the same tokens.
#
#   [WORK=/tmp/prune-scale] [WINDOWS=16] [SAMPLES=32] bench/run_scale.sh [1.5b] [1.5b-taylor] [1.5b-lora] [7b] [7b-taylor] [eval]
#
# Needs bench/.venv (numpy) and a llama-cpp-python environment (LLAMA_PY, default
# /root/llama-env/bin/python). Nothing else may run on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${WORK:-/tmp/prune-scale}
windows=${WINDOWS:-16}
samples=${SAMPLES:-32}
lora_steps=${LORA_STEPS:-4}
llama_py=${LLAMA_PY:-/root/llama-env/bin/python}
steps=${*:-1.5b 1.5b-taylor 7b 7b-taylor eval}
mkdir -p "$work"
trap 'rm -f "$work/synthetic-7b.q4_k.gguf"' EXIT
swift build -c release --product prune >/dev/null 2>&1
prune=$root/.build/release/prune

recipe() {  # model criterion out type [fineTuner]
  cat <<JSON
{"version": 1, "model": "$1", "fineTuner": ${5:-null},
 "calibration": {"dataset": "wikitext2", "samples": $samples, "seqLen": 128},
 "grouping": {"type": "llama"}, "criterion": {"type": "$2"},
 "scheduler": {"type": "uniform", "ratio": 0.2},
 "evaluation": {"datasets": ["wikitext2"], "seqLen": 128, "maxWindows": $windows},
 "output": {"dir": "$3", "formats": ["gguf"], "type": "$4"}}
JSON
}

measure() {  # name model criterion type [fineTuner]
  local dir=$work/$1
  mkdir -p "$dir"
  recipe "$2" "$3" "$dir/out" "$4" "${5:-null}" > "$dir/recipe.json"
  /usr/bin/time -v "$prune" run "$dir/recipe.json" > /dev/null 2> "$dir/log.txt"
  python3 - "$dir" "$1" <<'PY'
import json, re, sys
d, name = sys.argv[1], sys.argv[2]
log = open(d + "/log.txt").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1))
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", log).group(1)
r = json.load(open(d + "/out/report.json"))
stages = ", ".join(f"{s['name'].split(' ')[0]} {s['seconds']:.0f} s" for s in r["stages"])
print(f"{name}: peak RSS {rss / 1048576:.2f} GiB, wall {wall}; PPL@128 ({r['evaluations_after'][0]['windows']} windows) "
      f"{r['ppl_before']:.3f} -> {r['ppl_after']:.3f}; params {r['params_before']} -> {r['params_after']}")
print(f"  stages: {stages}")
ft = r.get("fine_tune")
if ft:
    print(f"  fine-tune: {len(ft['losses'])} steps, loss {ft['losses'][0]:.3f} -> {ft['losses'][-1]:.3f}, "
          f"{ft['tokens'] / ft['seconds']:.0f} tokens/s; PPL before it {r['evaluations_before_fine_tune'][0]['ppl']:.3f}")
PY
}

for step in $steps; do
  case $step in
  1.5b|1.5b-taylor)
    criterion=wanda; [ "$step" = 1.5b-taylor ] && criterion='taylor", "estimator": "element1'
    measure "qwen1.5b-$step" "$root/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" "$criterion" same-as-input ;;
  1.5b-lora)
    lora='{"type": "lora", "steps": '$lora_steps', "batch": 2, "microBatch": 2, "seqLen": 128, "dataset": "wikitext2", "learningRate": 0.0002, "warmupSteps": 1}'
    measure "qwen1.5b-$step" "$root/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" wanda same-as-input "$lora" ;;
  7b|7b-taylor)
    criterion=wanda; [ "$step" = 7b-taylor ] && criterion='taylor", "estimator": "element1'
    model=$work/synthetic-7b.q4_k.gguf
    [ -f "$model" ] || bench/.venv/bin/python bench/make_7b_gguf.py --out "$model"
    measure "synthetic-$step" "$model" "$criterion" same-as-input
    out=$(ls "$work/synthetic-$step"/out/*.gguf)
    "$llama_py" - "$out" <<'PY'
import sys, math, numpy as np
from llama_cpp import Llama
m = Llama(model_path=sys.argv[1], n_ctx=64, logits_all=True, verbose=False, n_threads=2)
toks = m.tokenize(b"The quick brown fox jumps over the lazy dog")
m.eval(toks)
logits = np.array(m.scores[:len(toks)])
print(f"  llama.cpp loads {sys.argv[1].split('/')[-1]}: {m.n_vocab()} tokens, logits finite: {bool(np.isfinite(logits).all())}")
PY
    rm -f "$out" ;;
  eval)
    model=$root/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    ids=$work/wikitext2.i32
    "$prune" tokenize --model "$model" --input "$root/Data/wikitext2/wikitext2_test_hfjoin.txt" --ids-out "$ids" >/dev/null
    ours=$("$prune" eval --model "$model" --dataset wikitext2 --max-windows "$windows" 2>&1 | grep -E "PPL|tokens/s")
    echo "prune eval (1.5B, $windows windows of 128):"; echo "$ours" | sed 's/^/  /'
    t0=$(date +%s.%N)
    ref=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$llama_py" bench/llamacpp_ppl.py "$model" "$ids" --seq-len 128 --max-windows "$windows")
    t1=$(date +%s.%N)
    python3 - "$ref" "$t0" "$t1" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); s = float(sys.argv[3]) - float(sys.argv[2])
print(f"llama.cpp: PPL {r['ppl']:.4f} over {r['tokens']} predicted tokens, {s:.1f} s with loading, {r['windows'] * 128 / s:.0f} tokens/s")
PY
    ;;
  esac
done
