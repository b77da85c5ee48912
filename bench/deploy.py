"""Deployment speed in llama.cpp (llama-cpp-python): for each GGUF, prompt processing of a
512-token prompt and generation of 128 tokens, in tokens per second, the file size and the peak
resident memory of the process. Every measurement runs in a fresh process; the models take turns
(dense, pruned, dense, ...) so drift on a shared machine hits all of them alike; each figure is the
median over --runs.

    ~/llama-env/bin/python bench/deploy.py DENSE.gguf PRUNED.gguf [...] [--runs 5] [--threads 2]
        [--prompt 512] [--gen 128] [--json OUT.json]

The prompt is the first --prompt tokens of WikiText-2's test text (Data/wikitext2/wiki.test.raw) in
each model's own tokenizer, evaluated in one batch (n_batch = n_ubatch = prompt length). Generation
continues greedily from it, one token per decode call, --gen tokens. Speeds are llama.cpp's own
timers (llama_perf_context: t_p_eval_ms and t_eval_ms); the wall-clock time of the same calls is
recorded beside them. Peak RSS is the process's VmHWM after generation: the Python interpreter,
llama.cpp's buffers and the pages of the memory-mapped model that were touched.
"""
import argparse, json, os, pathlib, statistics, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = ROOT / "Data" / "wikitext2" / "wiki.test.raw"


def measure(model, prompt_len, gen, threads):
    """One run in this process; returns a dict of figures."""
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama
    llm = Llama(model, n_ctx=prompt_len + gen + 16, n_batch=prompt_len, n_ubatch=prompt_len, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    ids = llm.tokenize(TEXT.read_text(encoding="utf-8").encode("utf-8"), add_bos=False, special=False)[:prompt_len]
    assert len(ids) == prompt_len, f"the text gives only {len(ids)} tokens"
    llama_cpp.llama_perf_context_reset(llm.ctx)
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    vocab = llm.n_vocab()

    def greedy():
        """The most likely next token after the last evaluated one."""
        return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))))

    tok = greedy()
    for _ in range(gen):
        llm.eval([tok])
        tok = greedy()
    t2 = time.perf_counter()
    perf = llama_cpp.llama_perf_context(llm.ctx)
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return {"pp_tok_s": perf.n_p_eval / (perf.t_p_eval_ms / 1000), "tg_tok_s": perf.n_eval / (perf.t_eval_ms / 1000),
            "pp_wall_tok_s": prompt_len / (t1 - t0), "tg_wall_tok_s": gen / (t2 - t1),
            "n_p_eval": perf.n_p_eval, "n_eval": perf.n_eval, "peak_rss_mb": hwm / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--json", help="write the figures here as well")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.models[0], a.prompt, a.gen, a.threads)))
        return
    runs = {m: [] for m in a.models}
    for r in range(a.runs):
        for m in a.models:
            out = subprocess.run([sys.executable, __file__, m, "--child", "--prompt", str(a.prompt), "--gen", str(a.gen),
                                  "--threads", str(a.threads)], capture_output=True, text=True, check=True)
            runs[m].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{a.runs} {pathlib.Path(m).name}: {runs[m][-1]}", file=sys.stderr)
    rows = []
    for m, rs in runs.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        rows.append({"model": m, "file_mb": os.path.getsize(m) / 1e6, "runs": len(rs), **med, "all": rs})
    import llama_cpp
    result = {"llama_cpp_python": llama_cpp.__version__, "threads": a.threads, "prompt": a.prompt, "gen": a.gen,
              "system_info": llama_cpp.llama_print_system_info().decode(), "models": rows}
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"llama-cpp-python {result['llama_cpp_python']}, {a.threads} threads, median of {a.runs} runs")
    print("| model | file MB | pp512 tok/s | tg128 tok/s | peak RSS MB |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {pathlib.Path(r['model']).name} | {r['file_mb']:.1f} | {r['pp_tok_s']:.1f} | {r['tg_tok_s']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
