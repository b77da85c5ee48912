#!/usr/bin/env python3
"""Write a GGUF file with Llama-2-7B shapes and random Q4_K weights.

What: a synthetic "7B-shaped" llama model (GGUF v3) whose matrices are random
but *valid* Q4_K blocks, with the gpt2-style BPE tokenizer copied verbatim
(every `tokenizer.*` key) from models/SmolLM2-135M-Instruct.Q4_1.gguf.

Why: benchmark-time check that the pruning tool can handle a 7B-sized model
(~3.9 GB, ~6.9B parameters) within memory limits. The output is never committed.

Usage:
    bench/.venv/bin/python bench/make_7b_gguf.py --out /tmp/synth-7b.gguf \
        [--seed 0] [--layers 32] [--check]

Shapes (Llama-2-7B except the vocabulary, 49152 from SmolLM2):
    n_layer 32, n_embd 4096, n_ff 11008, n_head = n_head_kv = 32, ctx 4096,
    rope.freq_base 10000, rope.dimension_count 128, rms eps 1e-5.
    token_embd / output.weight [4096 x 49152] (GGUF dims: ne[0] = columns),
    blk.N.attn_{q,k,v,output}.weight [4096 x 4096],
    blk.N.ffn_{gate,up}.weight [4096 x 11008], blk.N.ffn_down.weight [11008 x 4096],
    norms (attn_norm, ffn_norm, output_norm) f32 = 1 + N(0, 0.02).
    All matrices are Q4_K (so general.file_type = 14, MOSTLY_Q4_K_S).

Weights: each Q4_K sub-block of 32 values dequantizes to d*sc*q - dmin*m with q
uniform in 0..15. We draw sc uniform in 32..63, set m = sc and dmin = 7.5*d, so
each sub-block has mean ~0; d is chosen (with +-20% per-block jitter) for a
dequantized std of ~0.02. `--check` dequantizes sample blocks with an
independent dequantizer (llama.cpp's dequantize_row_q4_K layout) and prints stats.

Data is generated and written tensor by tensor, in chunks, to OUT.tmp which is
renamed to OUT at the end. Measured (2 cores): 32 layers, 291 tensors ->
3,872,096,800 bytes in 14 s, peak RSS 118 MB. llama.cpp (llama-cpp-python 0.3.36)
loads it; logits over 32 layers are finite (std ~1.29), perplexity ~7e4.
"""
import argparse
import mmap
import os
import struct
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_SRC = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
ALIGN = 32
QK_K, Q4K_BYTES = 256, 144  # block_q4_K: d, dmin (f16), scales[12], qs[128]
GGML_F32, GGML_Q4_K = 0, 12
T_U32, T_F32, T_STRING, T_ARRAY = 4, 6, 8, 9
SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
N_EMBD, N_FF, N_HEAD, TARGET_STD = 4096, 11008, 32, 0.02


# ---------------------------------------------------------------- GGUF reading
def _skip_value(buf, pos, vtype):
    """Return the offset just past one value of type vtype starting at pos."""
    if vtype == T_STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == T_ARRAY:
        etype, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if etype in SCALAR_SIZE:
            return pos + count * SCALAR_SIZE[etype]
        for _ in range(count):
            pos = _skip_value(buf, pos, etype)
        return pos
    return pos + SCALAR_SIZE[vtype]


def read_kv_raw(path):
    """Return {key: raw bytes of the whole key/type/value record} of a GGUF."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        magic, version, _n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
        if magic != b"GGUF" or version not in (2, 3):
            sys.exit(f"{path}: not a GGUF v2/v3 file")
        pos, out = 24, {}
        for _ in range(n_kv):
            start = pos
            (klen,) = struct.unpack_from("<Q", buf, pos)
            key = bytes(buf[pos + 8:pos + 8 + klen]).decode()
            (vtype,) = struct.unpack_from("<I", buf, pos + 8 + klen)
            pos = _skip_value(buf, pos + 12 + klen, vtype)
            out[key] = bytes(buf[start:pos])
        return out


def vocab_size(tok):
    """Element count of the tokenizer.ggml.tokens array record."""
    rec = tok["tokenizer.ggml.tokens"]
    klen = struct.unpack_from("<Q", rec, 0)[0]
    return struct.unpack_from("<Q", rec, 8 + klen + 4 + 4)[0]


# ---------------------------------------------------------------- GGUF writing
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    fmt = {T_U32: "<I", T_F32: "<f"}
    payload = gguf_str(value) if vtype == T_STRING else struct.pack(fmt[vtype], value)
    return gguf_str(key) + struct.pack("<I", vtype) + payload


def model_metadata(n_layers, tokenizer_kv):
    a = "llama."
    recs = [kv("general.architecture", T_STRING, "llama"),
            kv("general.name", T_STRING, "synthetic-7b-shaped"),
            kv("general.file_type", T_U32, 14),  # MOSTLY_Q4_K_S: all Q4_K
            kv(a + "block_count", T_U32, n_layers),
            kv(a + "context_length", T_U32, 4096),
            kv(a + "embedding_length", T_U32, N_EMBD),
            kv(a + "feed_forward_length", T_U32, N_FF),
            kv(a + "attention.head_count", T_U32, N_HEAD),
            kv(a + "attention.head_count_kv", T_U32, N_HEAD),
            kv(a + "rope.freq_base", T_F32, 10000.0),
            kv(a + "attention.layer_norm_rms_epsilon", T_F32, 1e-5),
            kv(a + "rope.dimension_count", T_U32, N_EMBD // N_HEAD)]
    return recs + [raw for k, raw in tokenizer_kv.items() if k.startswith("tokenizer.")]


def tensor_list(n_layers, n_vocab):
    """[(name, dims innermost-first, ggml type)] in file order."""
    t = [("token_embd.weight", (N_EMBD, n_vocab), GGML_Q4_K)]
    for i in range(n_layers):
        p = f"blk.{i}."
        t.append((p + "attn_norm.weight", (N_EMBD,), GGML_F32))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t.append((p + n + ".weight", (N_EMBD, N_EMBD), GGML_Q4_K))
        t.append((p + "ffn_norm.weight", (N_EMBD,), GGML_F32))
        t.append((p + "ffn_gate.weight", (N_EMBD, N_FF), GGML_Q4_K))
        t.append((p + "ffn_up.weight", (N_EMBD, N_FF), GGML_Q4_K))
        t.append((p + "ffn_down.weight", (N_FF, N_EMBD), GGML_Q4_K))
    t.append(("output_norm.weight", (N_EMBD,), GGML_F32))
    t.append(("output.weight", (N_EMBD, n_vocab), GGML_Q4_K))
    return t


def nbytes(dims, gtype):
    n = int(np.prod(dims))
    return n * 4 if gtype == GGML_F32 else n // QK_K * Q4K_BYTES


def pad(n):
    return (-n) % ALIGN


def header_bytes(kv_recs, tensors):
    out = [struct.pack("<4sIQQ", b"GGUF", 3, len(tensors), len(kv_recs))] + kv_recs
    offset = 0
    for name, dims, gtype in tensors:
        out.append(gguf_str(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, gtype, offset))
        offset += nbytes(dims, gtype) + pad(nbytes(dims, gtype))
    head = b"".join(out)
    return head + b"\0" * pad(len(head))


# ---------------------------------------------------------------- Q4_K blocks
def pack_scales(sc, m):
    """Pack 8 six-bit scales and mins per block (nb x 8 uint8) into nb x 12 bytes."""
    s = np.empty((sc.shape[0], 12), np.uint8)
    s[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    s[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    return s


def random_q4k_blocks(rng, nb, std=TARGET_STD):
    """nb random Q4_K blocks (nb x 144 uint8) dequantizing to ~N(0, std)-like values."""
    sc = rng.integers(32, 64, (nb, 8), dtype=np.uint8)
    # q uniform 0..15: std 4.61; E[sc^2] for sc uniform 32..63 is ~48.3^2
    d = (std / (4.61 * 48.3)) * rng.uniform(0.8, 1.2, nb)
    blk = np.empty((nb, Q4K_BYTES), np.uint8)
    blk[:, 0:2] = d.astype(np.float16)[:, None].view(np.uint8)
    blk[:, 2:4] = (7.5 * d).astype(np.float16)[:, None].view(np.uint8)  # mean d*sc*7.5
    blk[:, 4:16] = pack_scales(sc, sc)  # m = sc
    blk[:, 16:] = rng.integers(0, 256, (nb, 128), dtype=np.uint8)
    return blk


def scale_min_k4(j, q):
    """get_scale_min_k4 from ggml-quants.c, vectorised over blocks (q: nb x 12)."""
    q = q.astype(np.int32)
    if j < 4:
        return q[:, j] & 63, q[:, j + 4] & 63
    return ((q[:, j + 4] & 0xF) | ((q[:, j - 4] >> 6) << 4),
            (q[:, j + 4] >> 4) | ((q[:, j] >> 6) << 4))


def dequant_q4k(blk):
    """dequantize_row_q4_K: nb x 144 bytes -> nb x 256 float32."""
    d = blk[:, 0:2].copy().view(np.float16).astype(np.float32)[:, 0]
    dmin = blk[:, 2:4].copy().view(np.float16).astype(np.float32)[:, 0]
    scales, qs = blk[:, 4:16], blk[:, 16:]
    out = []
    for j in range(4):  # 64 values per step: low nibbles, then high nibbles
        q = qs[:, 32 * j:32 * j + 32]
        for half, nib in enumerate((q & 0xF, q >> 4)):
            sc, m = scale_min_k4(2 * j + half, scales)
            out.append((d * sc)[:, None] * nib - (dmin * m)[:, None])
    return np.concatenate(out, axis=1).astype(np.float32)


def check(rng):
    blk = random_q4k_blocks(rng, 4096)
    sc = rng.integers(0, 64, (5, 8), dtype=np.uint8)
    mn = rng.integers(0, 64, (5, 8), dtype=np.uint8)
    packed = pack_scales(sc, mn)
    unpacked = [scale_min_k4(j, packed) for j in range(8)]
    assert all((unpacked[j][0] == sc[:, j]).all() and (unpacked[j][1] == mn[:, j]).all()
               for j in range(8)), "scale packing round trip failed"
    w = dequant_q4k(blk)
    bm = w.mean(axis=1)
    print(f"check: 6-bit scale/min packing round-trips; {w.size} dequantized values: "
          f"mean {w.mean():+.2e} std {w.std():.4f} min {w.min():+.4f} max {w.max():+.4f}; "
          f"per-block mean |max| {np.abs(bm).max():.4f}, finite {np.isfinite(w).all()}")


# ---------------------------------------------------------------- main
def write_tensor(f, rng, dims, gtype, chunk_blocks=1 << 18):
    if gtype == GGML_F32:
        data = (1.0 + 0.02 * rng.standard_normal(dims[0])).astype(np.float32)
        f.write(data.tobytes())
    else:
        left = int(np.prod(dims)) // QK_K
        while left:
            nb = min(left, chunk_blocks)
            f.write(random_q4k_blocks(rng, nb).data)
            left -= nb
    f.write(b"\0" * pad(nbytes(dims, gtype)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    if args.check:
        check(np.random.default_rng(args.seed + 1))
    tok = read_kv_raw(TOKENIZER_SRC)
    n_vocab = vocab_size(tok)
    tensors = tensor_list(args.layers, n_vocab)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header_bytes(model_metadata(args.layers, tok), tensors))
        for _name, dims, gtype in tensors:
            write_tensor(f, rng, dims, gtype)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, vocab {n_vocab}, "
          f"{os.path.getsize(args.out):,} bytes in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
