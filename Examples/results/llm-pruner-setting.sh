#!/usr/bin/env bash
# LLM-Pruner's setting on SmolLM2-135M: KV groups and MLP channels of layers 3–26, the same ratio in
# every layer, 20% of the parameters, 10 calibration sequences of 64 C4 tokens (seed 42), for Taylor
# (vector, element1, element2), magnitude and random, without fine-tuning, plus LoRA recovery of the
# Taylor element1 model. Runs Examples/recipes/llm-pruner/*.json and writes
# Examples/results/llm-pruner-setting.md from their report.json files.
#
#   Examples/results/llm-pruner-setting.sh          (PRUNE=path/to/prune to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PRUNE:-}" ]; then
  swift build -c release --product prune >/dev/null
  PRUNE=.build/release/prune
fi
mkdir -p out/llm-pruner
names=(taylor-vector taylor-element1 taylor-element2 magnitude random taylor-element1-lora)
for n in "${names[@]}"; do
  start=$(date +%s)
  "$PRUNE" run "Examples/recipes/llm-pruner/$n.json" 2> "out/llm-pruner-$n.log" || { tail -3 "out/llm-pruner-$n.log"; exit 1; }
  echo $(( $(date +%s) - start )) > "out/llm-pruner/$n/wall_seconds"
  echo "$n: $(tail -1 "out/llm-pruner-$n.log")"
done
python3 - "${names[@]}" <<'PY'
import json, sys
rows, dense = [], None
for n in sys.argv[1:]:
    r = json.load(open(f"out/llm-pruner/{n}/report.json"))
    wall = int(open(f"out/llm-pruner/{n}/wall_seconds").read())
    ev = {e["dataset"]: e for e in r["evaluations_after"]}
    mid = {e["dataset"]: e for e in r.get("evaluations_before_fine_tune") or []}
    dense = dense or {e["dataset"]: e for e in r["evaluations_before"]}
    rows.append((n, r, ev, mid, wall))
w = dense["wikitext2"]
out = ["# LLM-Pruner's setting on SmolLM2-135M-Instruct (20% of parameters)", "",
       "Made by `Examples/results/llm-pruner-setting.sh` (recipes in `Examples/recipes/llm-pruner/`).",
       "KV groups and MLP channels of layers 3–26, `uniform` scheduler, 10 × 64 C4 calibration tokens, seed 42.",
       f"Perplexity at seqLen 128 over the first {w['windows']} windows ({w['tokens']} tokens) of each test set;",
       "the exported f16 GGUF is what is evaluated. Wall time includes evaluating the dense model.", "",
       "| method | parameters | removed | WikiText-2 PPL | PTB PPL | wall time |", "|---|---:|---:|---:|---:|---:|",
       f"| dense | {rows[0][1]['params_before']:,} | 0% | {dense['wikitext2']['ppl']:.2f} | {dense['ptb']['ppl']:.2f} | |"]
for n, r, ev, mid, wall in rows:
    label = n.replace("taylor-element1-lora", "taylor element1 + LoRA").replace("taylor-", "taylor ")
    pct = f"{100 * r['removed_fraction']:.2f}%"
    if mid:
        out.append(f"| taylor element1, before LoRA | {r['params_after']:,} | {pct} | {mid['wikitext2']['ppl']:.2f} | {mid['ptb']['ppl']:.2f} | |")
        ft = r["fine_tune"]
        label += f" ({len(ft['losses'])} steps, {ft['tokens']:,} C4 tokens)"
    out.append(f"| {label} | {r['params_after']:,} | {pct} | {ev['wikitext2']['ppl']:.2f} | {ev['ptb']['ppl']:.2f} | {wall} s |")
open("Examples/results/llm-pruner-setting.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
