"""Reference forward pass in PyTorch for ckpt probe's tests.

Usage: python3 torch_reference.py DTYPES TOKENS_CSV MODEL_DIR...
DTYPES is a comma-separated list of float32 and bfloat16 (CPU PyTorch 1.13 has
no float16 matmul). For each dtype and MODEL_DIR, reads its config.json and MODEL_DIR/model.safetensors (parsed here: the
tests must not depend on the safetensors package), runs the decoder in float32
the way Hugging Face's modeling_llama / modeling_qwen2 / modeling_qwen3 /
modeling_gemma do after model.to(dtype) (eager attention: RMSNorm and softmax
in float32, everything else stored in the dtype); prints one JSON object
mapping each dtype to a list holding, per model, the logits of every position
(one process: importing torch is slow). Only generated test models are ever given to it.
"""
import json
import math
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def load(path, dtype):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = bytearray(data[base + b : base + e])
        t = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]) if e > b else torch.zeros(0, dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).to(dtype)
    return out


def rms_norm(x, w, eps, gemma):
    dtype = x.dtype
    x = x.to(torch.float32)
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    if gemma:
        return (y * (1.0 + w.float())).to(dtype)
    return w * y.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def inv_freq(cfg, d):
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    rs = cfg.get("rope_scaling") or {}
    typ = rs.get("rope_type", rs.get("type", "default"))
    if typ == "linear":
        inv = inv / rs["factor"]
    elif typ == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wl = 2 * math.pi / inv
        llama = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - low) / (high - low)
        smoothed = (1 - smooth) * llama / factor + smooth * llama
        medium = ~(wl < high_wl) * ~(wl > low_wl)
        inv = torch.where(medium, smoothed, llama)
    elif typ != "default":
        raise SystemExit("unsupported rope_scaling " + typ)
    return inv


def forward(d, tokens, dtype):
    cfg = json.load(open(d + "/config.json"))
    w = load(d + "/model.safetensors", dtype)
    fam = cfg["model_type"]
    gemma = fam == "gemma"
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    T = len(tokens)
    window = cfg.get("sliding_window") if fam == "mistral" or cfg.get("use_sliding_window") else None
    window_from = cfg.get("max_window_layers", 0) if fam != "mistral" else 0

    x = w["model.embed_tokens.weight"][torch.tensor(tokens)].unsqueeze(0)
    if gemma:
        x = x * torch.tensor(H**0.5, dtype=x.dtype)
    pos = torch.arange(T).float()
    freqs = torch.outer(pos, inv_freq(cfg, hd))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None].to(dtype), emb.sin()[None, None].to(dtype)
    causal = torch.full((T, T), torch.finfo(dtype).min, dtype=dtype).triu(1)
    windowed = causal
    if window:
        i = torch.arange(T)
        windowed = causal.masked_fill(i[None, :] <= i[:, None] - window, torch.finfo(dtype).min)

    def lin(v, name):
        b = w.get(name[: -len("weight")] + "bias")
        return torch.nn.functional.linear(v, w[name], b)

    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        mask = windowed if window and l >= window_from else causal
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps, gemma)
        q = lin(h, p + "self_attn.q_proj.weight").view(1, T, nh, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj.weight").view(1, T, nkv, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj.weight").view(1, T, nkv, hd).transpose(1, 2)
        if fam == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps, False)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps, False)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = torch.matmul(q, k.transpose(2, 3)) * hd**-0.5 + mask
        s = torch.softmax(s, dim=-1, dtype=torch.float32).to(dtype)
        a = torch.matmul(s, v).transpose(1, 2).reshape(1, T, nh * hd)
        x = x + lin(a, p + "self_attn.o_proj.weight")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, gemma)
        g = lin(h, p + "mlp.gate_proj.weight")
        g = torch.nn.functional.gelu(g, approximate="tanh") if gemma else torch.nn.functional.silu(g)
        x = x + lin(g * lin(h, p + "mlp.up_proj.weight"), p + "mlp.down_proj.weight")
    h = rms_norm(x, w["model.norm.weight"], eps, gemma)
    tie = cfg.get("tie_word_embeddings", True)
    head = w["model.embed_tokens.weight"] if tie else w["lm_head.weight"]
    return torch.nn.functional.linear(h, head)[0].float().tolist()


def main():
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    tokens = [int(t) for t in sys.argv[2].split(",")]
    out = {}
    for name in sys.argv[1].split(","):
        out[name] = [forward(d, tokens, dtypes[name]) for d in sys.argv[3:]]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
