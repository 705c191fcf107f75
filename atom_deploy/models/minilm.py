"""all-MiniLM-L6-v2 (a 6-layer BERT) with mean pooling and L2 normalization in the graph.

Pooling and normalization live inside the module so every runtime returns final
sentence embeddings: (input_ids [B, S], attention_mask [B, S]) -> [B, 384].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.config import MiniLMConfig
from atom_deploy.models.fused_linear import FusedLinear, fuse_siblings


class BertLayer(nn.Module):
    """Post-LayerNorm BERT block with exact (erf) GELU."""

    def __init__(self, config: MiniLMConfig):
        super().__init__()
        d = config.dim
        self.heads = config.heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(d, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, d)
        self.out_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.qkv: FusedLinear | None = None  # query/key/value as one, after fuse_projections()

    def fuse_projections(self) -> None:
        self.qkv = fuse_siblings(self, ("query", "key", "value"))

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        # x: [B, S, D], bias: [B, 1, 1, S] (0 for tokens, -inf-ish for padding)
        B, S, D = x.shape
        q, k, v = self.qkv(x) if self.qkv is not None else (self.query(x), self.key(x), self.value(x))
        q = q.view(B, S, self.heads, -1).transpose(1, 2)
        k = k.view(B, S, self.heads, -1).transpose(1, 2)
        v = v.view(B, S, self.heads, -1).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5) + bias
        ctx = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, S, D)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.output(F.gelu(self.intermediate(x))))


class MiniLM(nn.Module):
    def __init__(self, config: MiniLMConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.position_embeddings = nn.Embedding(config.max_positions, config.dim)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.dim)
        self.embed_norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        # input_ids, attention_mask: [B, S] int64 -> sentence embeddings [B, D], unit norm
        S = input_ids.shape[1]
        positions = torch.arange(S, dtype=torch.int64).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = self.embed_norm(x + self.token_type_embeddings(torch.zeros_like(input_ids)))
        B = input_ids.shape[0]
        mask = attention_mask.to(x.dtype)  # [B, S]
        # view(), not unsqueeze/None-indexing: XNNPACK serializes a reshape with at most one
        # dynamic dim, and its partitioner checks that rule for view but not for unsqueeze.
        # A large finite negative (not -inf) keeps an all-padding row free of NaN.
        bias = ((1.0 - mask) * -1e9).view(B, 1, 1, S)
        for layer in self.layers:
            x = layer(x, bias)
        summed = (x * mask.view(B, S, 1)).sum(dim=1)
        mean = summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return F.normalize(mean, p=2.0, dim=1)
