"""Makes the llama.cpp reference for pruned exports (Tests/PruneFrameworkTests/Fixtures/llamacpp/pruned/):
each recipe there is run with the built `prune` (a release build), the GGUF it writes is loaded by
llama.cpp, and llama.cpp's NLL over the first four 512-token WikiText-2 windows (the token ids of
the model's fixture, no BOS, fresh context per window) goes to NAME_llamacpp.json beside the recipe.
The test (RunnerTests/PrunedExportAgreementTests) runs the same recipe, evaluates the same file with
this package and compares.

    swift build -c release
    ~/llama-env/bin/python scripts/reference/llamacpp_pruned_reference.py [NAME ...] [--check]

NAME is a recipe's file name without .json (default: all). --check compares with the committed
files instead of writing them: architecture and widths equal, NLL within --tolerance (1e-3).
Made with llama-cpp-python 0.3.36 (the environment of llamacpp_reference.py).
"""
import argparse, hashlib, json, pathlib, subprocess, sys, tempfile
import numpy as np
import llama_cpp
from llama_cpp import Llama

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "PruneFrameworkTests" / "Fixtures" / "llamacpp"
PRUNED = FIXTURES / "pruned"
WINDOWS, SEQ = 4, 512
TOKENS = {"qwen2.5-0.5b": "qwen2.5-0.5b_wikitext2_test_tokens.i32", "smollm2": "smollm2_wikitext2_test_tokens.i32"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def window_nll(llm, ids):
    """Mean NLL (nats) of each window: every next-token prediction inside it."""
    out = []
    for w in range(WINDOWS):
        toks = ids[w * SEQ:(w + 1) * SEQ].tolist()
        llm.reset()
        llm.eval(toks)
        x = np.array(llm.scores[:SEQ], dtype=np.float64)
        m = x.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
        out.append(float((lse[:-1] - x[np.arange(SEQ - 1), toks[1:]]).mean()))
    return out


def reference(recipe: pathlib.Path) -> dict:
    prefix = next(p for p in TOKENS if recipe.stem.startswith(p))
    ids = np.fromfile(FIXTURES / TOKENS[prefix], dtype="<i4")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([str(ROOT / ".build/release/prune"), "run", str(recipe), "--output-dir", out], check=True,
                       stdout=subprocess.DEVNULL)
        gguf = next(pathlib.Path(out).glob("*.gguf"))
        report = json.loads((pathlib.Path(out) / "report.json").read_text())
        llm = Llama(str(gguf), n_ctx=SEQ, n_batch=SEQ, logits_all=True, verbose=False, n_threads=2)
        nll = window_nll(llm, ids)
        return {
            "recipe": recipe.name,
            "tokens": f"{TOKENS[prefix]}, windows 0-{WINDOWS - 1} of {SEQ} tokens, no BOS, fresh context per window",
            "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__}, CPU, default f16 KV cache)",
            "file": {"name": gguf.name, "bytes": gguf.stat().st_size, "sha256": sha256(gguf),
                     "architecture": llm.metadata.get("general.architecture")},
            "widths": report["widths_after"],
            "window_mean_nll": [round(v, 6) for v in nll],
            "mean_nll": round(sum(nll) / len(nll), 6),
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    a = ap.parse_args()
    recipes = [PRUNED / f"{n}.json" for n in a.names] or sorted(p for p in PRUNED.glob("*.json") if not p.stem.endswith("_llamacpp"))
    failed = False
    for recipe in recipes:
        doc = reference(recipe)
        target = PRUNED / f"{recipe.stem}_llamacpp.json"
        if a.check:
            old = json.loads(target.read_text())
            same = (old["file"]["architecture"] == doc["file"]["architecture"] and old["widths"] == doc["widths"]
                    and abs(old["mean_nll"] - doc["mean_nll"]) <= a.tolerance * abs(old["mean_nll"]))
            print(f"{recipe.stem}: {'ok' if same else 'DIFFERS'} (mean NLL {doc['mean_nll']} vs committed {old['mean_nll']})")
            failed |= not same
        else:
            target.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{recipe.stem}: {doc['file']['architecture']}, mean NLL {doc['mean_nll']} -> {target.relative_to(ROOT)}")
    sys.exit(1 if failed else 0)


main()
