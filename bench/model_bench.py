"""The Python side of bench/model_bench: the same Llama model, training step
and KV-cache decoding in PyTorch eager mode on Debian's python3-torch (the
same LibTorch as steper). Prints one JSON line.

  model_bench.py DIM LAYERS HEADS KV_HEADS FFN VOCAB SEQ BATCH STEPS DECODE_TOKENS
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


class Layer(nn.Module):
    def __init__(self, d, h, k, ffn):
        super().__init__()
        self.h, self.k, self.hd = h, k, d // h
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d), RMSNorm(d)
        self.q_proj = nn.Linear(d, h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, k * self.hd, bias=False)
        self.v_proj = nn.Linear(d, k * self.hd, bias=False)
        self.o_proj = nn.Linear(h * self.hd, d, bias=False)
        self.gate_proj = nn.Linear(d, ffn, bias=False)
        self.up_proj = nn.Linear(d, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, d, bias=False)

    def forward(self, x, cos, sin, mask, cache=None):
        B, T, _ = x.shape
        y = self.input_layernorm(x)
        q = self.q_proj(y).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(y).view(B, T, self.k, self.hd).transpose(1, 2)
        v = self.v_proj(y).view(B, T, self.k, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), 2)
                v = torch.cat((cache["v"], v), 2)
            cache["k"], cache["v"] = k, v
        if self.k != self.h:
            k = k.repeat_interleave(self.h // self.k, 1)
            v = v.repeat_interleave(self.h // self.k, 1)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.hd) + mask, -1)
        x = x + self.o_proj((att @ v).transpose(1, 2).reshape(B, T, -1))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class Llama(nn.Module):
    def __init__(self, d, layers, h, k, ffn, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Layer(d, h, k, ffn) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        hd = d // h
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd)))

    def forward(self, ids, start=0, caches=None):
        T = ids.shape[1]
        pos = torch.arange(start, start + T).float()
        ang = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((ang, ang), -1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, start + T), -1e9).triu(start + 1)
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, None if caches is None else caches[i])
        return self.lm_head(self.norm(x))


def main():
    d, layers, h, k, ffn, vocab, seq, batch, steps, decode = map(int, sys.argv[1:11])
    torch.manual_seed(0)
    m = Llama(d, layers, h, k, ffn, vocab)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    data = torch.randint(0, vocab, (batch, seq + 1))

    def step():
        logits = m(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), data[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    train_s = time.perf_counter() - t

    m.eval()
    with torch.no_grad():
        prompt = torch.randint(0, vocab, (1, 16))
        t = time.perf_counter()
        caches = [dict() for _ in m.layers]
        logits = m(prompt, 0, caches)
        pos = 16
        for _ in range(decode):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            logits = m(nxt, pos, caches)
            pos += 1
        decode_s = time.perf_counter() - t
    print(json.dumps({"train_tokens_per_s": steps * batch * seq / train_s, "decode_tokens_per_s": decode / decode_s,
                      "params": sum(p.numel() for p in m.parameters()), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
