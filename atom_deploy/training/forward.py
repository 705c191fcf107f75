"""Teacher-forced training forward: the decoder's own layers over whole sequences.

`Decoder.forward` is the export/inference path: it returns only the last position's
logits and writes a static KV cache. Training needs every target position at once, so
this runs the same layers attending over the sequence itself (no cache) with the causal
mask sliced to it. Same weights, same arithmetic, so what is trained here is what the
exported decoder computes step by step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from atom_deploy.models import Decoder
from atom_deploy.models.kv_cache import NoCache
from atom_deploy.training.examples import IGNORE, CaptionBatch, TextBatch


def hidden_states(decoder: Decoder, embeds: Tensor) -> Tensor:
    # embeds: [B, S, D] -> final-normed hidden states [B, S, D]
    S = embeds.shape[1]
    pos = torch.arange(S)
    cos, sin = decoder.rope_cos[pos], decoder.rope_sin[pos]
    bias = decoder.attention_bias(decoder.causal_mask[:S, :S])
    x = embeds
    for layer in decoder.layers:
        x = layer(x, cos, sin, bias, pos, NoCache())
    return decoder.norm(x)


def caption_loss(decoder: Decoder, prefix: Tensor, batch: CaptionBatch, bos_id: int) -> Tensor:
    # prefix: the encoder's output for batch.clips [B, N_vis, D], shared with the attribute probe
    B, n_vis, _ = prefix.shape
    bos = decoder.embed(torch.full((B, 1), bos_id, dtype=torch.long))
    # The last target (EOS) is never an input.
    embeds = torch.cat([bos, prefix, decoder.embed(batch.targets[:, :-1])], dim=1)
    hidden = hidden_states(decoder, embeds)[:, n_vis:]  # position of the last visual token onward
    labels = batch.targets.clone()
    steps = torch.arange(labels.shape[1])[None, :]
    labels[steps >= batch.lengths[:, None]] = IGNORE
    return _cross_entropy(decoder, hidden, labels)


def text_loss(decoder: Decoder, batch: TextBatch) -> Tensor:
    hidden = hidden_states(decoder, decoder.embed(batch.tokens))
    return _cross_entropy(decoder, hidden, batch.labels)


def _cross_entropy(decoder: Decoder, hidden: Tensor, labels: Tensor) -> Tensor:
    keep = labels != IGNORE  # only target positions go through the vocabulary projection
    logits = decoder.lm_head(hidden[keep])
    return F.cross_entropy(logits, labels[keep])
