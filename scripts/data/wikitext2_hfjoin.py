"""Makes Data/wikitext2/wikitext2_test_hfjoin.txt from Data/wikitext2/wiki.test.raw and checks it.

The string LLM-Pruner, Wanda, SparseGPT and FLAP tokenize for WikiText-2 perplexity is
"\n\n".join(rows) of the Hugging Face `wikitext-2-raw-v1` test split. Its rows are the lines of
wiki.test.raw: a line with text becomes the line plus "\n", a blank line (spaces only) becomes "",
and the empty string after the file's last newline is not a row.

    python3 scripts/data/wikitext2_hfjoin.py [--write]
"""
import hashlib, pathlib, sys

want = "696cca6b65a171b0a358a4be6732cdfdf2dd6164a32e20fd70e3c13fc4dfae83"
folder = pathlib.Path(__file__).resolve().parents[2] / "Data" / "wikitext2"
lines = (folder / "wiki.test.raw").read_bytes().decode("utf-8").split("\n")[:-1]
rows = ["" if line.strip() == "" else line + "\n" for line in lines]
joined = "\n\n".join(rows).encode("utf-8")
got = hashlib.sha256(joined).hexdigest()
if got != want:
    sys.exit(f"wikitext2_hfjoin: sha256 {got}, expected {want}")
if "--write" in sys.argv:
    (folder / "wikitext2_test_hfjoin.txt").write_bytes(joined)
print(f"wikitext2_hfjoin: {len(rows)} rows, {len(joined)} bytes, sha256 ok")
