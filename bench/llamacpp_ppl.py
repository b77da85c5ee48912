"""Perplexity of a GGUF file in llama.cpp (llama-cpp-python) over the same non-overlapping windows
`prune eval` uses: token ids from `prune tokenize`, fresh context per window, every next-token
prediction scored. Prints one JSON object.

    python bench/llamacpp_ppl.py MODEL.gguf IDS.i32 --seq-len 128 --max-windows 40 [--f32-kv]
"""
import argparse, json, math
import numpy as np
from llama_cpp import Llama

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("ids")
ap.add_argument("--seq-len", type=int, default=128)
ap.add_argument("--max-windows", type=int, default=40)
ap.add_argument("--f32-kv", action="store_true", help="f32 KV cache instead of llama.cpp's default f16")
a = ap.parse_args()
ids = np.fromfile(a.ids, dtype="<i4")
kw = dict(type_k=0, type_v=0) if a.f32_kv else {}
llm = Llama(a.model, n_ctx=a.seq_len, n_batch=a.seq_len, logits_all=True, verbose=False, n_threads=2, **kw)
total, count = 0.0, 0
windows = min(a.max_windows, len(ids) // a.seq_len)
for w in range(windows):
    toks = ids[w * a.seq_len:(w + 1) * a.seq_len].tolist()
    llm.reset()
    llm.eval(toks)
    logits = np.array(llm.scores[: a.seq_len], dtype=np.float64)
    m = logits.max(1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(logits - m).sum(1)))
    nll = lse[:-1] - logits[np.arange(a.seq_len - 1), toks[1:]]
    total += nll.sum()
    count += len(nll)
print(json.dumps({"model": a.model, "windows": windows, "tokens": count, "mean_nll": total / count,
                  "ppl": math.exp(total / count), "kv_cache": "f32" if a.f32_kv else "f16"}))
