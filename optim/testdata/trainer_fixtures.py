"""Writes Trainer-like checkpoint directories of a tiny Qwen2-named model
trained with torch.optim.AdamW, for ckpt's optimizer tests.

Usage: python3 trainer_fixtures.py OUTDIR

The parameters are given to AdamW as transformers' Trainer gives them: one
group of the parameters that get weight decay, then one of those that do not
(biases and norm weights: get_decay_parameter_names forbids names matching
bias, layernorm, rmsnorm, (^|.)norm($|.) and _norm($|.)), each in
named_parameters() order. Every directory holds pytorch_model.bin,
optimizer.pt, scheduler.pt, trainer_state.json and config.json;
OUTDIR/expected.json holds what torch says about each: the parameter names by
optimizer id, the nonfinite counts of every state tensor and the predicted
update ratio ||lr * m_hat / (sqrt(v_hat) + eps)|| / ||theta|| (bias
correction with the saved step; weight decay not included), in float64.
"""
import json
import math
import os
import re
import shutil
import sys

import torch
from torch import nn

H, HEADS, KV, HD, FF, LAYERS, VOCAB = 8, 2, 1, 4, 16, 2, 32


class RMSNorm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(H, HEADS * HD, bias=True)
        self.k_proj = nn.Linear(H, KV * HD, bias=True)
        self.v_proj = nn.Linear(H, KV * HD, bias=True)
        self.o_proj = nn.Linear(HEADS * HD, H, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, HEADS, HD).transpose(1, 2)
        k = self.k_proj(x).view(b, t, KV, HD).transpose(1, 2).repeat_interleave(HEADS // KV, 1)
        v = self.v_proj(x).view(b, t, KV, HD).transpose(1, 2).repeat_interleave(HEADS // KV, 1)
        a = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
        a = a.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        return self.o_proj((a @ v).transpose(1, 2).reshape(b, t, HEADS * HD))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate_proj = nn.Linear(H, FF, bias=False)
        self.up_proj = nn.Linear(H, FF, bias=False)
        self.down_proj = nn.Linear(FF, H, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attention()
        self.mlp = MLP()
        self.input_layernorm = RMSNorm(H)
        self.post_attention_layernorm = RMSNorm(H)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, H)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.norm = RMSNorm(H)


class ForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = Model()
        self.lm_head = nn.Linear(H, VOCAB, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


NO_DECAY = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def decays(name):
    return not any(re.search(p, name.lower()) for p in NO_DECAY)


def config():
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": H,
        "num_attention_heads": HEADS, "num_key_value_heads": KV, "intermediate_size": FF,
        "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }


def save(model, opt, sched, step, out, losses):
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "pytorch_model.bin"))
    torch.save(opt.state_dict(), os.path.join(out, "optimizer.pt"))
    torch.save(sched.state_dict(), os.path.join(out, "scheduler.pt"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config(), f, indent=2)
    log = [{"step": i + 1, "loss": l, "learning_rate": 1e-2} for i, l in enumerate(losses)]
    with open(os.path.join(out, "trainer_state.json"), "w") as f:
        json.dump({"global_step": step, "epoch": 1.0, "max_steps": 100, "log_history": log}, f, indent=2)


def expected(out):
    """What torch says about a saved checkpoint directory, read back with torch.load."""
    sd = torch.load(os.path.join(out, "pytorch_model.bin"))
    osd = torch.load(os.path.join(out, "optimizer.pt"))
    names = [n for n, _ in NAMED]
    params = []
    for g in osd["param_groups"]:
        b1, b2 = g["betas"]
        for pid in g["params"]:
            name = names[pid]
            st = osd["state"].get(pid, {})
            e = {"id": pid, "name": name, "shape": list(sd[name].shape), "nonfinite": {}, "negative": {}}
            for k, v in st.items():
                if torch.is_tensor(v) and v.dim() > 0:
                    e["nonfinite"][k] = int((~torch.isfinite(v)).sum())
                    e["negative"][k] = int((v < 0).sum())
            if "exp_avg" in st:
                t = float(st["step"])
                m = st["exp_avg"].double() / (1 - b1 ** t)
                # amsgrad divides by the running maximum of the second moment.
                v = st.get("max_exp_avg_sq", st["exp_avg_sq"]).double() / (1 - b2 ** t)
                d = g["lr"] * m / (v.sqrt() + g["eps"])
                theta = sd[name].double().norm().item()
                e["step"] = t
                r = d.norm().item() / theta if theta > 0 else None
                e["update_ratio"] = r if r is None or math.isfinite(r) else None
            params.append(e)
    return {"params": params, "groups": [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                                          for g in osd["param_groups"]]}


def train(root, exp, amsgrad, saves, prefix="checkpoint"):
    torch.manual_seed(0)
    model = ForCausalLM()
    global NAMED
    NAMED = list(model.named_parameters())
    decay = [p for n, p in NAMED if decays(n)]
    rest = [p for n, p in NAMED if not decays(n)]
    # The optimizer's ids follow the groups: rename NAMED into group order.
    NAMED = [(n, p) for n, p in NAMED if decays(n)] + [(n, p) for n, p in NAMED if not decays(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.999), eps=1e-8, amsgrad=amsgrad)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 100)
    ids = torch.randint(0, VOCAB, (4, 6))
    losses = []
    for step in range(1, max(saves) + 1):
        loss = nn.functional.cross_entropy(model(ids[:, :-1]).reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step in saves:
            d = os.path.join(root, "%s-%d" % (prefix, step))
            save(model, opt, sched, step, d, losses)
            exp[os.path.basename(d)] = expected(d)


def main():
    root = sys.argv[1]
    exp = {}
    train(root, exp, True, (4,), prefix="amsgrad")
    train(root, exp, False, (3, 6))
    src = os.path.join(root, "checkpoint-6")
    by_name = {n: i for i, (n, _) in enumerate(NAMED)}

    def variant(name, change, global_step=6):
        d = os.path.join(root, name)
        shutil.copytree(src, d)
        osd = torch.load(os.path.join(d, "optimizer.pt"))
        change(osd)
        torch.save(osd, os.path.join(d, "optimizer.pt"))
        if global_step != 6:
            save_state = json.load(open(os.path.join(d, "trainer_state.json")))
            save_state["global_step"] = global_step
            json.dump(save_state, open(os.path.join(d, "trainer_state.json"), "w"), indent=2)
        exp[name] = expected(d)

    def nan(osd):
        osd["state"][by_name["model.layers.1.self_attn.k_proj.bias"]]["exp_avg"][:2] = float("nan")

    def negative(osd):
        osd["state"][by_name["model.layers.0.mlp.up_proj.weight"]]["exp_avg_sq"][0, :3] = -1.0

    def shape(osd):
        st = osd["state"][by_name["model.layers.0.self_attn.q_proj.weight"]]
        st["exp_avg"] = torch.zeros(4, 8)
        st["exp_avg_sq"] = torch.zeros(4, 8)

    variant("poison-nan", nan)
    variant("poison-negative", negative)
    variant("poison-shape", shape)
    variant("poison-step", lambda osd: None, global_step=9)
    with open(os.path.join(root, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


if __name__ == "__main__":
    main()
