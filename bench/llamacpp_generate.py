"""Greedy generation speed of a GGUF file in llama.cpp (llama-cpp-python), 2 threads: the prompt's
token ids evaluated at once, then `--tokens` tokens one at a time (each a batch-1 forward, where
reading the weights dominates). Prints one JSON object.

    python bench/llamacpp_generate.py MODEL.gguf --prompt TEXT --tokens 32
"""
import argparse, json, time
from llama_cpp import Llama

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--prompt", required=True)
ap.add_argument("--tokens", type=int, default=32)
a = ap.parse_args()
llm = Llama(a.model, n_ctx=512, n_batch=512, logits_all=True, verbose=False, n_threads=2)
ids = llm.tokenize(a.prompt.encode(), add_bos=True)
t0 = time.perf_counter()
llm.eval(ids)
t1 = time.perf_counter()
out = []
for _ in range(a.tokens):
    nxt = int(llm.scores[llm.n_tokens - 1].argmax())
    out.append(nxt)
    llm.eval([nxt])
t2 = time.perf_counter()
print(json.dumps({"prompt_tokens": len(ids), "prompt_seconds": t1 - t0, "tokens": a.tokens,
                  "tokens_per_second": a.tokens / (t2 - t1), "text": llm.detokenize(out).decode(errors="replace")}))
