"""Rotary position embeddings with Llama 3's "llama3" frequency scaling.

Tables are computed once for the whole KV-cache length, then indexed by input_pos,
so the exported graph holds no trigonometry and no data-dependent shapes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atom_deploy.config import DecoderConfig


def llama3_inv_freq(config: DecoderConfig) -> Tensor:
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    factor = config.rope_scaling_factor
    if not factor:
        return inv_freq
    # Long wavelengths are slowed by `factor`, short ones kept, the middle band blended.
    old_len = config.rope_original_max_positions
    low_wavelen = old_len / config.rope_low_freq_factor
    high_wavelen = old_len / config.rope_high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - config.rope_low_freq_factor) / (
        config.rope_high_freq_factor - config.rope_low_freq_factor
    )
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(is_medium, blended, scaled)


def rope_tables(config: DecoderConfig) -> tuple[Tensor, Tensor]:
    """cos, sin: [max_context, head_dim] in the rotate-half layout (HF Llama's)."""
    positions = torch.arange(config.max_context, dtype=torch.float32)
    freqs = torch.outer(positions, llama3_inv_freq(config))  # [S_max, Dh/2]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # x: [B, H, S, Dh], cos/sin: [S, Dh]
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin
