"""PyTorch CPU reference for `prune bench forward` and `prune bench backward`: the same GGUF model,
dequantised to f32, run as a plain LLaMA forward (interleaved RoPE, the GGUF layout) with 2 threads.
With --backward it times forward + loss.backward() with every weight requiring a gradient.

Prints one JSON object: tokens_per_second (best of --iterations), and the mean NLL of the first
4x512 WikiText-2 reference windows when --check is given (to show it is the same model).
"""
import argparse, json, time
import numpy as np
import torch
import torch.nn.functional as F
from gguf import GGUFReader
from gguf.quants import dequantize


def load(path):
    r = GGUFReader(path)
    meta = {f.name: f for f in r.fields.values()}

    def val(key):
        f = meta[key]
        return f.parts[f.data[0]].tolist()[0]

    cfg = dict(
        n_layer=val("llama.block_count"), d=val("llama.embedding_length"),
        n_head=val("llama.attention.head_count"), n_kv=val("llama.attention.head_count_kv"),
        eps=val("llama.attention.layer_norm_rms_epsilon"), base=val("llama.rope.freq_base"),
    )
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)])
        w[t.name] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return cfg, w


class Llama(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.c, self.w = cfg, w
        self.hd = cfg["d"] // cfg["n_head"]

    def rope(self, x, T):
        hd = self.hd
        inv = self.c["base"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        cos, sin = ang.cos().float(), ang.sin().float()
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def norm(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["eps"]) * g

    def forward(self, tok):
        B, T = tok.shape
        c, w, hd = self.c, self.w, self.hd
        x = w["token_embd.weight"][tok]
        for l in range(c["n_layer"]):
            p = f"blk.{l}."
            h = self.norm(x, w[p + "attn_norm.weight"])
            q = (h @ w[p + "attn_q.weight"].T).view(B, T, -1, hd).transpose(1, 2)
            k = (h @ w[p + "attn_k.weight"].T).view(B, T, -1, hd).transpose(1, 2)
            v = (h @ w[p + "attn_v.weight"].T).view(B, T, -1, hd).transpose(1, 2)
            q, k = self.rope(q, T), self.rope(k, T)
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, -1)
            x = x + a @ w[p + "attn_output.weight"].T
            h = self.norm(x, w[p + "ffn_norm.weight"])
            x = x + (F.silu(h @ w[p + "ffn_gate.weight"].T) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
        x = self.norm(x, w["output_norm.weight"])
        return x @ w.get("output.weight", w["token_embd.weight"]).T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backward", action="store_true", help="time forward + backward of the mean NLL")
    ap.add_argument("--check", help="reference token ids (.i32) to compute the 4x512 mean NLL")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w = load(a.model)
    m = Llama(cfg, w)
    V = w["token_embd.weight"].shape[0]
    tok = torch.randint(0, V, (a.batch, a.seq_len), generator=torch.Generator().manual_seed(1))
    out = {"engine": f"torch {torch.__version__}", "threads": a.threads, "batch": a.batch, "seq_len": a.seq_len}
    if a.backward:
        for t in w.values():
            t.requires_grad_(True)

        def step():
            for t in w.values():
                t.grad = None
            logits = m(tok)
            F.cross_entropy(logits[:, :-1].reshape(-1, V), tok[:, 1:].reshape(-1)).backward()

        step()
        secs = []
        for _ in range(a.iterations):
            t0 = time.perf_counter()
            step()
            secs.append(time.perf_counter() - t0)
        out["mode"] = "forward+backward"
        out["seconds"] = secs
        out["tokens_per_second"] = a.batch * a.seq_len / min(secs)
        print(json.dumps(out))
        return
    with torch.inference_mode():
        logits = m(tok)
        F.cross_entropy(logits[:, :-1].reshape(-1, V), tok[:, 1:].reshape(-1))
        secs = []
        for _ in range(a.iterations):
            t0 = time.perf_counter()
            logits = m(tok)
            F.cross_entropy(logits[:, :-1].reshape(-1, V), tok[:, 1:].reshape(-1))
            secs.append(time.perf_counter() - t0)
        out["seconds"] = secs
        out["tokens_per_second"] = a.batch * a.seq_len / min(secs)
        if a.check:
            ids = torch.from_numpy(np.fromfile(a.check, dtype="<i4")[: 4 * 512].astype(np.int64)).view(4, 512)
            lg = m(ids)
            out["check_mean_nll"] = F.cross_entropy(lg[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1)).item()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
