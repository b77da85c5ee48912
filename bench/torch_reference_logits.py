"""Writes PyTorch's f32 logits for positions 0-7 of WikiText-2 window 0 (reference token ids) with the
same GGUF weights dequantised to f32: an independent check of our forward pass (used by ReferenceTests).

    python bench/torch_reference_logits.py MODEL.gguf TOKENS.i32 OUT.f32
"""
import sys
import numpy as np
import torch
from forward_torch import load, Llama

model, tokens, out = sys.argv[1:4]
torch.set_num_threads(2)
cfg, w = load(model)
ids = torch.from_numpy(np.fromfile(tokens, dtype="<i4")[:512].astype(np.int64)).view(1, 512)
with torch.inference_mode():
    logits = Llama(cfg, w)(ids)[0, :8].numpy().astype("<f4")
logits.tofile(out)
print(f"wrote {out}: {logits.shape}, torch {torch.__version__}")
