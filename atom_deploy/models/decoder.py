"""Llama 3.2 language decoder: RMSNorm, llama3 RoPE, grouped-query attention, SwiGLU.

The decoder is a pure language model: it reads embeddings, so a visual prefix from the
video encoder and plain token embeddings enter the same way, and every text task reuses
it. `forward` is functional over an explicit KV cache; `atom_deploy.export.decoder`
wraps it either with the cache in module buffers (ExecuTorch) or as graph inputs and
outputs (ONNX). The cache is static: [layers, batch, kv_heads, max_context, head_dim].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.config import DecoderConfig
from atom_deploy.models.rope import apply_rope, rope_tables


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Attention(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = config.heads, config.kv_heads, config.head_dim
        self.q_proj = nn.Linear(config.dim, config.heads * config.head_dim, bias=False)
        self.k_proj = nn.Linear(config.dim, config.kv_heads * config.head_dim, bias=False)
        self.v_proj = nn.Linear(config.dim, config.kv_heads * config.head_dim, bias=False)
        self.o_proj = nn.Linear(config.heads * config.head_dim, config.dim, bias=False)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor, input_pos: Tensor,
        k_cache: Tensor, v_cache: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        # x: [B, S, D], cos/sin: [S, Dh], mask: [S, S_max] bool, input_pos: [S]
        # k_cache/v_cache: [B, Hkv, S_max, Dh]
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k_cache = k_cache.index_copy(2, input_pos, k)
        v_cache = v_cache.index_copy(2, input_pos, v)
        keys, values = self._repeat_kv(k_cache), self._repeat_kv(v_cache)  # [B, H, S_max, Dh]
        scores = (q @ keys.transpose(-2, -1)) * (self.head_dim**-0.5)  # [B, H, S, S_max]
        scores = scores.masked_fill(~mask, float("-inf"))
        out = scores.softmax(dim=-1) @ values  # [B, H, S, Dh]
        return self.o_proj(out.transpose(1, 2).reshape(B, S, -1)), k_cache, v_cache

    def _repeat_kv(self, cache: Tensor) -> Tensor:
        B, Hkv, S_max, Dh = cache.shape
        rep = self.heads // self.kv_heads
        return cache[:, :, None].expand(B, Hkv, rep, S_max, Dh).reshape(B, Hkv * rep, S_max, Dh)


class FeedForward(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderBlock(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.mlp = FeedForward(config)

    def forward(self, x, cos, sin, mask, input_pos, k_cache, v_cache):
        h, k_cache, v_cache = self.self_attn(
            self.input_layernorm(x), cos, sin, mask, input_pos, k_cache, v_cache
        )
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), k_cache, v_cache


class Decoder(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(DecoderBlock(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        causal = torch.ones(config.max_context, config.max_context, dtype=torch.bool).tril()
        self.register_buffer("causal_mask", causal, persistent=False)

    def cache_shape(self, batch: int) -> tuple[int, int, int, int, int]:
        c = self.config
        return (c.layers, batch, c.kv_heads, c.max_context, c.head_dim)

    def embed(self, tokens: Tensor) -> Tensor:
        # tokens: [B, S] -> [B, S, D]
        return self.embed_tokens(tokens)

    def forward(
        self, embeds: Tensor, input_pos: Tensor, k_cache: Tensor, v_cache: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        # embeds: [B, S, D], input_pos: [S], k_cache/v_cache: [L, B, Hkv, S_max, Dh]
        # -> logits of the last position [B, V], updated caches
        cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]
        mask = self.causal_mask[input_pos]  # [S, S_max]: position p sees 0..p
        x = embeds
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, cos, sin, mask, input_pos, k_cache[i], v_cache[i])
            new_k.append(k)
            new_v.append(v)
        logits = self.lm_head(self.norm(x[:, -1:, :]))[:, 0, :]
        return logits, torch.stack(new_k), torch.stack(new_v)
