"""Llama 3.2 language decoder: RMSNorm, llama3 RoPE, grouped-query attention, SwiGLU.

The decoder is a pure language model: it reads embeddings, so a visual prefix from the
video encoder and plain token embeddings enter the same way, and every text task reuses
it. Each layer reads and writes its keys and values through a cache object
(models/kv_cache.py): a buffer written in place for ExecuTorch, tensors passed in and out
for ONNX and the eager reference, none for teacher-forced training. The cache is static:
[layers, batch, kv_heads, max_context, head_dim].
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.config import DecoderConfig
from atom_deploy.models.attention import attention_bias
from atom_deploy.models.fused_linear import FusedLinear, fuse_siblings
from atom_deploy.models.kv_cache import ExplicitCache
from atom_deploy.models.rope import apply_rope, rope_tables

LayerCache = Any  # NoCache, ExplicitCache, InPlaceCache or HeldCache (models/kv_cache.py)


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
        self.qkv_proj: FusedLinear | None = None  # q/k/v_proj as one, after fuse_projections()

    def fuse_projections(self) -> None:
        self.qkv_proj = fuse_siblings(self, ("q_proj", "k_proj", "v_proj"))

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, bias: Tensor, input_pos: Tensor, cache: LayerCache) -> Tensor:
        # x: [B, S, D], cos/sin: [S, Dh], bias: [rep * S, S_max] (attention_bias): the step's positions over the cache's
        B, S, _ = x.shape
        q, k, v = self.qkv_proj(x) if self.qkv_proj is not None else (self.q_proj(x), self.k_proj(x), self.v_proj(x))
        q = q.view(B, S, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, S, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = cache.attend(input_pos, q, k, v, bias)  # [B, Hkv, rep, S, Dh]
        return self.o_proj(out.permute(0, 3, 1, 2, 4).reshape(B, S, -1))


class FeedForward(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.dim, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.dim, bias=False)
        self.gate_up_proj: FusedLinear | None = None  # gate/up_proj as one, after fuse_projections()

    def fuse_projections(self) -> None:
        self.gate_up_proj = fuse_siblings(self, ("gate_proj", "up_proj"))

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up_proj(x) if self.gate_up_proj is not None else (self.gate_proj(x), self.up_proj(x))
        return self.down_proj(F.silu(gate) * up)


class DecoderBlock(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.mlp = FeedForward(config)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, bias: Tensor, input_pos: Tensor, cache: LayerCache) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, bias, input_pos, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


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

    def attention_bias(self, mask: Tensor) -> Tensor:
        return attention_bias(mask, self.config.heads // self.config.kv_heads)

    def embed(self, tokens: Tensor) -> Tensor:
        # tokens: [B, S] -> [B, S, D]
        return self.embed_tokens(tokens)

    def forward(self, embeds: Tensor, input_pos: Tensor, caches: Sequence[LayerCache]) -> Tensor:
        # embeds: [B, S, D], input_pos: [S] consecutive positions, one cache per layer
        # -> logits of the last position [B, V]
        cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]
        bias = self.attention_bias(self.causal_mask[input_pos])  # position p sees 0..p of S_max
        x = embeds
        for layer, cache in zip(self.layers, caches):
            x = layer(x, cos, sin, bias, input_pos, cache)
        return self.lm_head(self.norm(x[:, -1:, :]))[:, 0, :]

    def forward_explicit(
        self, embeds: Tensor, input_pos: Tensor, k_cache: Tensor, v_cache: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`forward` over caches passed in and returned: k_cache/v_cache [L, B, Hkv, S_max, Dh]."""
        caches = [ExplicitCache(k, v) for k, v in zip(k_cache, v_cache)]
        logits = self(embeds, input_pos, caches)
        return logits, torch.stack([c.k for c in caches]), torch.stack([c.v for c in caches])
