"""Makes the llama.cpp quantization reference (Tests/PruneFrameworkTests/Fixtures/quantize/): small
f32 GGUF models with seeded weights are quantized by llama.cpp's own `llama_model_quantize` to every
file type the exporter offers, and each output's tensor types and bytes are recorded. The Swift test
(PruneFrameworkTests/QuantizeTests) regenerates the same f32 weights, checks them against the
recorded input sha256, and requires its type choice (QuantizationMix.swift) and its bytes
(Quantize*.swift) to equal llama.cpp's.

    ~/llama-env/bin/python scripts/reference/ggml_quantize_reference.py [--check] [--keep DIR]

Made with llama-cpp-python 0.3.36 (its vendored llama.cpp, CPU build); needs only numpy and
llama_cpp. --check writes to a temporary folder and compares with the committed files instead of
replacing them; --keep DIR keeps the f32 and quantized GGUFs there (they are not committed: the f32
models are 5-50 MB, and the Swift test rebuilds their weights from the generator below).

Models (all written by this script, loadable by llama.cpp; `tiny` is loaded and run once as a check):
- tiny: `deci`, 3 layers, hidden 256, head dim 64, heads [4, 4, 2], KV heads [2, 1, 1], FFN
  [512, 320, 200], vocabulary 300 (GPT-2 byte tokens and 44 merges), untied output head. Row lengths
  256, 512, 128 (attn_output of layer 2), 320 and 200 cover K-quants, the 256 → 32 fallbacks
  (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0) and the final F16 fallback. Types and sha256 of every tensor;
  raw bytes of `blk.0.attn_v.weight` and `blk.2.attn_output.weight`.
- tiny-tied: the same tensors without `output.weight` (tied head: token_embd takes the head's type).
- qwen2-28: `qwen2`, 28 layers (the use_more_bits layer pattern of Q4_K_M/Q5_K_M), q/k/v biases.
  Types only.
- llama-80: `llama`, 80 layers with 2 query heads per KV head (llama.cpp's "70B" rule: attn_v one
  step up in Q4_K mixes), tied head. Types only.

Weights (mirrored in QuantizeTests.swift, `ReferenceWeights`): element i of a tensor named N (row
major, [rows, cols]) is s·2^-22 with s the sum of the four 16-bit fields of mix(fnv1a64(N) + i)
minus 131070 (mix: splitmix64's output function after adding its gamma), then hard cases by
32-blocks (pattern mix((seed ^ C32) + k) % 64: zeros, tiny, subnormal, one outlier, all negative,
one large value among zeros, constant, all positive, large, half zeros) and by 256-blocks (pattern
mix((seed ^ C256) + K) % 40: zeros, all tiny, sub-blocks spanning 2^-4..2^3, all negative). Norm
weights are 1 + s·2^-22 and biases s·2^-22, without hard cases.
"""
import argparse, ctypes, hashlib, json, pathlib, shutil, struct, sys, tempfile
import numpy as np
import llama_cpp

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "PruneFrameworkTests" / "Fixtures" / "quantize"

# (name, llama_ftype) in the order the fixtures list them.
FTYPES = [("F32", 0), ("F16", 1), ("BF16", 32), ("Q8_0", 7), ("Q4_0", 2), ("Q4_1", 3), ("Q5_0", 8),
          ("Q5_1", 9), ("Q4_K_S", 14), ("Q4_K_M", 15), ("Q5_K_S", 16), ("Q5_K_M", 17), ("Q6_K", 18)]

MODELS = {
    "tiny": dict(arch="deci", layers=3, hidden=256, head_dim=64, heads=[4, 4, 2], kv=[2, 1, 1],
                 ffn=[512, 320, 200], vocab=300, tied=False, biases=False, hashes=True),
    "tiny-tied": dict(arch="deci", layers=3, hidden=256, head_dim=64, heads=[4, 4, 2], kv=[2, 1, 1],
                      ffn=[512, 320, 200], vocab=300, tied=True, biases=False, hashes=True),
    "qwen2-28": dict(arch="qwen2", layers=28, hidden=256, head_dim=64, heads=[4] * 28, kv=[2] * 28,
                     ffn=[64] * 28, vocab=300, tied=False, biases=True, hashes=False),
    "llama-80": dict(arch="llama", layers=80, hidden=256, head_dim=64, heads=[2] * 80, kv=[1] * 80,
                     ffn=[64] * 80, vocab=300, tied=True, biases=False, hashes=False),
}
RAW = {"tiny": ["blk.0.attn_v.weight", "blk.2.attn_output.weight"]}

# ---------------------------------------------------------------- weights

U64 = np.uint64
C32, C256 = U64(0x5EED_0000_0000_0032), U64(0x5EED_0000_0000_0256)


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def mix(z):
    """splitmix64's output for state z (wrapping uint64 arithmetic on arrays)."""
    with np.errstate(over="ignore"):
        z = z + U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def p2(e: int) -> np.float32:
    return np.float32(2.0 ** e)


def base_values(name: str, n: int) -> np.ndarray:
    seed = U64(fnv1a64(name))
    with np.errstate(over="ignore"):
        h = mix(seed + np.arange(n, dtype=np.uint64))
    m = U64(0xFFFF)
    s = (h & m) + ((h >> U64(16)) & m) + ((h >> U64(32)) & m) + (h >> U64(48))
    return (s.astype(np.int64) - 131070).astype(np.float32) * p2(-22)


def weights(name: str, shape) -> np.ndarray:
    """The f32 values of tensor `name` (row-major `shape`), as QuantizeTests.swift rebuilds them."""
    n = int(np.prod(shape))
    v = base_values(name, n)
    if len(shape) == 1:
        return (np.float32(1) + v) if name.endswith("_norm.weight") else v
    seed = U64(fnv1a64(name))
    b = v.reshape(-1, 32)
    with np.errstate(over="ignore"):
        hb = mix((seed ^ C32) + np.arange(b.shape[0], dtype=np.uint64))
    pat, j0 = (hb % U64(64)).astype(np.int64), ((hb >> U64(8)) % U64(32)).astype(np.int64)
    rows = np.arange(b.shape[0])
    b[pat == 0] = 0
    b[pat == 1] *= p2(-60)
    b[pat == 2] = (b[pat == 2] * p2(-70)) * p2(-70)
    r = rows[pat == 3]; b[r, j0[r]] *= p2(6)
    b[pat == 4] = -np.abs(b[pat == 4])
    r = rows[pat == 5]; keep = b[r, j0[r]] * p2(8); b[r] = 0; b[r, j0[r]] = keep
    r = rows[pat == 6]; b[r] = b[r, :1]
    b[pat == 7] = np.abs(b[pat == 7])
    b[pat == 8] *= p2(12)
    r = rows[pat == 9]; b[r, 16:] = 0
    s = v.reshape(-1, 256)
    with np.errstate(over="ignore"):
        hs = mix((seed ^ C256) + np.arange(s.shape[0], dtype=np.uint64))
    sp = (hs % U64(40)).astype(np.int64)
    s[sp == 0] = 0
    s[sp == 1] *= p2(-70)
    spread = np.repeat(np.array([p2(e) for e in range(-4, 4)], dtype=np.float32), 32)
    s[sp == 2] *= spread
    s[sp == 3] = -np.abs(s[sp == 3])
    return v.reshape(shape)


def layout(m):
    """(name, [rows, cols]) of every tensor, in file order."""
    d, hd = m["hidden"], m["head_dim"]
    out = [("token_embd.weight", [m["vocab"], d])]
    for i in range(m["layers"]):
        q, kv, f = m["heads"][i] * hd, m["kv"][i] * hd, m["ffn"][i]
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", [d]), (p + "attn_q.weight", [q, d]), (p + "attn_k.weight", [kv, d]),
                (p + "attn_v.weight", [kv, d])]
        if m["biases"]:
            out += [(p + "attn_q.bias", [q]), (p + "attn_k.bias", [kv]), (p + "attn_v.bias", [kv])]
        out += [(p + "attn_output.weight", [d, q]), (p + "ffn_norm.weight", [d]), (p + "ffn_gate.weight", [f, d]),
                (p + "ffn_up.weight", [f, d]), (p + "ffn_down.weight", [d, f])]
    out.append(("output_norm.weight", [d]))
    if not m["tied"]:
        out.append(("output.weight", [m["vocab"], d]))
    return out

# ---------------------------------------------------------------- GGUF

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR, GGUF_U64 = 4, 5, 6, 7, 8, 9, 10
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type id -> (name, block size, bytes per block)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
         7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
         12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2)}


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, v) -> bytes:
    if kind == "str":
        return struct.pack("<I", GGUF_STR) + gguf_string(v)
    if kind == "u32":
        return struct.pack("<II", GGUF_U32, v)
    if kind == "f32":
        return struct.pack("<If", GGUF_F32, v)
    if kind == "arr_u32":
        return struct.pack("<IIQ", GGUF_ARR, GGUF_U32, len(v)) + struct.pack(f"<{len(v)}I", *v)
    if kind == "arr_i32":
        return struct.pack("<IIQ", GGUF_ARR, GGUF_I32, len(v)) + struct.pack(f"<{len(v)}i", *v)
    if kind == "arr_str":
        return struct.pack("<IIQ", GGUF_ARR, GGUF_STR, len(v)) + b"".join(gguf_string(s) for s in v)
    raise ValueError(kind)


def write_gguf(path, kvs, tensors, align=32):
    """GGUF v3 with f32 tensors; `tensors`: (name, float32 array, row-major)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    head += b"".join(gguf_string(k) + gguf_value(kind, v) for k, kind, v in kvs)
    offset, blobs = 0, []
    for name, a in tensors:
        dims = list(reversed(a.shape))
        head += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", 0, offset)
        data = a.astype("<f4").tobytes()
        pad = (-len(data)) % align
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head += b"\0" * ((-len(head)) % align)
    pathlib.Path(path).write_bytes(head + b"".join(blobs))


def read_gguf(path):
    """{name: (type name, ne list, raw bytes)} of a GGUF file."""
    buf = pathlib.Path(path).read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n].decode()
        pos += n
        return s

    def value(t):
        if t == GGUF_STR:
            return string()
        if t == GGUF_ARR:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(SCALAR[t])

    assert buf[:4] == b"GGUF"
    pos = 4
    _version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        ne = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, ne, take("<I"), take("<Q")))
    align = meta.get("general.alignment", 32)
    base = pos + (-pos) % align
    out = {}
    for name, ne, t, off in infos:
        tname, bs, ts = TYPES[t]
        size = int(np.prod(ne)) // bs * ts
        out[name] = (tname, ne, buf[base + off:base + off + size])
    return out


def model_metadata(m):
    a = m["arch"]
    byte_tokens = bytes_to_unicode()
    merges = MERGES[:m["vocab"] - 256]
    tokens = [byte_tokens[b] for b in range(256)] + ["".join(byte_tokens[c] for c in (l + r).encode()) for l, r in merges]
    per_layer = a == "deci"
    def width(v):
        return ("arr_u32", v) if per_layer else ("u32", v[0])
    kvs = [("general.architecture", "str", a), ("general.name", "str", "quantize reference"),
           (f"{a}.block_count", "u32", m["layers"]), (f"{a}.context_length", "u32", 256),
           (f"{a}.embedding_length", "u32", m["hidden"]),
           (f"{a}.feed_forward_length", *width(m["ffn"])),
           (f"{a}.attention.head_count", *width(m["heads"])),
           (f"{a}.attention.head_count_kv", *width(m["kv"])),
           (f"{a}.attention.key_length", "u32", m["head_dim"]), (f"{a}.attention.value_length", "u32", m["head_dim"]),
           (f"{a}.rope.dimension_count", "u32", m["head_dim"]), (f"{a}.rope.freq_base", "f32", 10000.0),
           (f"{a}.attention.layer_norm_rms_epsilon", "f32", 1e-5), (f"{a}.vocab_size", "u32", m["vocab"]),
           ("general.file_type", "u32", 0),
           ("tokenizer.ggml.model", "str", "gpt2"), ("tokenizer.ggml.tokens", "arr_str", tokens),
           ("tokenizer.ggml.token_type", "arr_i32", [1] * len(tokens)),
           ("tokenizer.ggml.merges", "arr_str", [" ".join("".join(byte_tokens[c] for c in s.encode()) for s in mg) for mg in merges])]
    return kvs


def bytes_to_unicode():
    """GPT-2's byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


MERGES = [(a, b) for a, b in ["th", "he", "in", "er", "an", " t", " a", "re", "on", "at", "en", "nd", "ti", "es",
                              "or", "te", "of", "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha",
                              "as", "ou", "io", "le", "ve", "co", "me", "de", "hi", "ri", "ro", "ic", "ne", "ea",
                              "ra", "ce"]]

# ---------------------------------------------------------------- driver


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize({src}, ftype {ftype}) returned {rc}")


def check_loads(path):
    """llama.cpp loads the file and evaluates two tokens (the f32 model is a real model)."""
    llm = llama_cpp.Llama(str(path), n_ctx=32, n_threads=2, verbose=False)
    llm.eval(llm.tokenize(b" the", add_bos=False)[:2] or [1])
    del llm


def generate(out: pathlib.Path, keep):
    work = pathlib.Path(keep) if keep else pathlib.Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(parents=True, exist_ok=True)
    models_doc, per_ftype = {}, {name: {} for name, _ in FTYPES}
    for mname, m in MODELS.items():
        tensors = [(n, weights(n, s)) for n, s in layout(m)]
        src = work / f"{mname}.f32.gguf"
        write_gguf(src, model_metadata(m), tensors)
        if mname == "tiny":
            check_loads(src)
        doc = {k: m[k] for k in ("arch", "layers", "hidden", "head_dim", "heads", "kv", "ffn", "vocab", "tied")}
        doc["tensors"] = [{"name": n, "shape": list(a.shape)} | ({"input_sha256": sha256(a.astype("<f4").tobytes())} if m["hashes"] else {})
                          for n, a in tensors]
        models_doc[mname] = doc
        for fname, ftype in FTYPES:
            dst = work / f"{mname}.{fname}.gguf"
            quantize(src, dst, ftype)
            got = read_gguf(dst)
            entry = {}
            for n, _ in tensors:
                t, _, data = got[n]
                entry[n] = {"type": t, "sha256": sha256(data)} if m["hashes"] else t
                if n in RAW.get(mname, []):
                    (out / "raw" / f"{mname}.{fname}.{n}.bin").write_bytes(data)
            per_ftype[fname][mname] = entry
            if not keep:
                dst.unlink()
        if not keep:
            src.unlink()
    engine = f"llama.cpp llama_model_quantize (llama-cpp-python {llama_cpp.__version__}), no imatrix, default params, nthread 2"
    (out / "models.json").write_text(json.dumps({"engine": engine, "models": models_doc}, indent=1) + "\n")
    for fname, ftype in FTYPES:
        doc = {"ftype": fname, "llama_ftype": ftype, "engine": engine, "models": per_ftype[fname]}
        (out / f"{fname}.json").write_text(json.dumps(doc, indent=1) + "\n")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and p.name not in ("SHA256SUMS", "README.md"))
    (out / "SHA256SUMS").write_text("".join(f"{sha256((out / f).read_bytes())}  {f}\n" for f in files))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures instead of writing them")
    ap.add_argument("--keep", help="keep the f32 and quantized GGUF files in this folder")
    a = ap.parse_args()
    if not a.check:
        generate(OUT, a.keep)
        print(f"wrote {OUT}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp), a.keep)
        theirs = (pathlib.Path(tmp) / "SHA256SUMS").read_text()
        ours = (OUT / "SHA256SUMS").read_text()
        if theirs != ours:
            sys.exit("fixtures differ from a fresh run:\n" + "".join(
                f"  {l}\n" for l in sorted(set(theirs.splitlines()) ^ set(ours.splitlines()))))
        print("fixtures identical to a fresh run")


if __name__ == "__main__":
    main()
