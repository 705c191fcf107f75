"""Grouped-query attention over keys and values as a cache holds them.

Shared by every cache home (models/kv_cache.py): each cache decides where the keys come
from, and these functions do the arithmetic, so all homes compute the same attention.
"""

from __future__ import annotations

import torch
from torch import Tensor


def attention_bias(mask: Tensor, rep: int) -> Tensor:
    """The mask [S, T] (True = may attend) as an additive bias for `rep` query heads per
    KV head, [rep * S, T] of 0 and -inf. Built once a step rather than masked per layer: a
    masked_fill and its negation per layer ran outside XNNPACK and split each layer's
    delegate call, while adding 0 or -inf to a finite score is exactly the masked score."""
    blocked = torch.zeros(mask.shape, dtype=torch.float32).masked_fill(~mask, float("-inf"))
    return blocked.repeat(rep, 1)


def grouped_queries(q: Tensor, kv_heads: int) -> Tensor:
    # q [B, H, S, Dh] with H = Hkv * rep -> [B * Hkv, rep * S, Dh]: each KV head's rep query heads together
    B, H, S, Dh = q.shape
    return q.reshape(B * kv_heads, (H // kv_heads) * S, Dh)


def grouped_scores(keys: Tensor, grouped: Tensor) -> Tensor:
    """Scaled scores [B * Hkv, rep * S, T] of keys [B, Hkv, T, Dh] as they lie in memory:
    computed as keys @ q^T, then the small [T, rep * S] result is transposed, so the keys
    are only reshaped, never expanded to H heads or transposed. A cache-sized copy per
    layer is what made a beam step's attention cost more than its weights."""
    B, kv_heads, T, Dh = keys.shape
    return torch.bmm(keys.reshape(B * kv_heads, T, Dh), grouped.transpose(1, 2)).transpose(1, 2) * (Dh**-0.5)


def grouped_attention(q: Tensor, keys: Tensor, values: Tensor, bias: Tensor) -> Tensor:
    """q [B, H, S, Dh] over keys/values [B, Hkv, T, Dh], bias [rep * S, T] -> [B, Hkv, rep, S, Dh]."""
    B, H, S, Dh = q.shape
    kv_heads, T = keys.shape[1], keys.shape[2]
    scores = grouped_scores(keys, grouped_queries(q, kv_heads)) + bias
    out = torch.bmm(scores.softmax(dim=-1), values.reshape(B * kv_heads, T, Dh))
    return out.view(B, kv_heads, H // kv_heads, S, Dh)


def split_attention(
    q: Tensor, past_keys: Tensor, past_values: Tensor, past_bias: Tensor, keys: Tensor, values: Tensor, bias: Tensor
) -> Tensor:
    """The same attention with its keys in two parts that are never joined: the cache's
    past positions [B, Hkv, T, Dh] under past_bias [1 or rep * S, T], and the step's own
    positions [B, Hkv, S, Dh] under bias [rep * S, S]. One softmax runs over both parts'
    scores (a small [rep * S, T + S] join), so the result is attention over their union,
    while the cache is read where it lies: nothing cache-sized is copied or written.
    -> [B, Hkv, rep, S, Dh]"""
    B, H, S, Dh = q.shape
    kv_heads, T = past_keys.shape[1], past_keys.shape[2]
    grouped = grouped_queries(q, kv_heads)
    scores = torch.cat([grouped_scores(past_keys, grouped) + past_bias, grouped_scores(keys, grouped) + bias], dim=-1)
    probs = scores.softmax(dim=-1)
    out = torch.bmm(probs[:, :, :T], past_values.reshape(B * kv_heads, T, Dh))
    out = out + torch.bmm(probs[:, :, T:], values.reshape(B * kv_heads, S, Dh))
    return out.view(B, kv_heads, H // kv_heads, S, Dh)
