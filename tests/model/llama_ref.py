"""An independent Llama forward pass in PyTorch (Debian's python3-torch),
written from Hugging Face's modeling_llama, reading steper's checkpoint with
the standard library. steper's C++ logits are checked against its output.

  llama_ref.py MODEL_DIR IDS_TXT OUT_BIN
IDS_TXT: one left-padded sequence per line (pad id 0, padding at the left
counted from the first token of the unpadded length). OUT_BIN: float32 logits.
"""
import json
import math
import struct
import sys

import torch


def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8 : 8 + n]), raw[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        assert e["dtype"] == "F32"
        vals = struct.unpack("<%df" % ((end - b) // 4), data[b:end])
        out[name] = torch.tensor(vals, dtype=torch.float32).reshape(e["shape"])
    return out


def inv_freq(cfg):
    d = cfg["hidden_size"] // cfg["num_attention_heads"]
    f = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / f
        scaled = torch.where(wavelen > old / low, f / factor, f)
        smooth = (old / wavelen - low) / (high - low)
        mid = (1 - smooth) * scaled / factor + smooth * scaled
        is_mid = (wavelen >= old / high) & (wavelen <= old / low)
        f = torch.where(is_mid, mid, scaled)
    return f.float()


def rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def main():
    model_dir, ids_path, out_path = sys.argv[1:4]
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = load(f"{model_dir}/model.safetensors")
    rows = [[int(x) for x in line.split()] for line in open(ids_path)]
    ids = torch.tensor(rows)
    B, L = ids.shape
    H, K = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg["hidden_size"] // H
    # Padding: the tests' batches pad with id 0 at the left; lengths are given
    # by the position of the first non-pad token in each row.
    lengths = torch.tensor([L - next(i for i, v in enumerate(r) if v != 0) for r in rows])
    pos = torch.arange(L).unsqueeze(0) - (L - lengths).unsqueeze(1)
    valid = pos >= 0
    pos = pos.clamp(min=0)
    ang = pos.float().unsqueeze(-1) * inv_freq(cfg)
    emb = torch.cat((ang, ang), -1)
    cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)
    causal = torch.tril(torch.ones(L, L, dtype=torch.bool))
    allowed = causal.unsqueeze(0) & valid.unsqueeze(1)
    mask = torch.zeros(B, 1, L, L).masked_fill(~allowed.unsqueeze(1), -1e9)
    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, w[p + "input_layernorm.weight"], cfg["rms_norm_eps"])
        # Qwen2's q/k/v carry biases; Llama's do not.
        q = (x @ w[p + "self_attn.q_proj.weight"].T + w.get(p + "self_attn.q_proj.bias", 0)).view(B, L, H, D).transpose(1, 2)
        k = (x @ w[p + "self_attn.k_proj.weight"].T + w.get(p + "self_attn.k_proj.bias", 0)).view(B, L, K, D).transpose(1, 2)
        v = (x @ w[p + "self_attn.v_proj.weight"].T + w.get(p + "self_attn.v_proj.bias", 0)).view(B, L, K, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(B, K, H // K, L, D).reshape(B, H, L, D)
        v = v[:, :, None].expand(B, K, H // K, L, D).reshape(B, H, L, D)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D) + mask, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, L, H * D)
        h = h + y @ w[p + "self_attn.o_proj.weight"].T
        x = rms(h, w[p + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
        gate = x @ w[p + "mlp.gate_proj.weight"].T
        up = x @ w[p + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    h = rms(h, w["model.norm.weight"], cfg["rms_norm_eps"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = h @ head.T
    open(out_path, "wb").write(logits.contiguous().numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
