"""What to export: each ATOM module as an `ExportableModule` (entry points + metadata).

Registered by module name, so a new module is one decorated function. The decoder's
text_decoder is stepped through one calling contract on every backend (the runner's
DecoderStepper):

    step(embeds [B, S, D], input_pos [S], cache_index [B]) -> logits [B, V]

`cache_index` names, for each of the B rows, which cache row it continues from: greedy
passes [0]; beam search prefills one row and then passes the parent beam of each of its
4 hypotheses. How the cache crosses the graph boundary, and so who reorders it, is the
backend's KV style (schema.KVStyle):
- IN_PLACE (ExecuTorch): per-layer buffers written in place. Two more inputs:
  `reorder_pos` [N] names the positions where a row takes its parent's keys and values
  (beam search passes only the positions decoded since the rows split, so a reorder moves
  a few positions, not the cache; greedy passes its own position, a no-op copy), and
  `attend_pos` [T] the positions the step attends over, 0..input_pos[-1], so the attention
  reads the context so far rather than the whole cache.
- RUNNER_HELD (ONNX, which has no mutable state): the runner holds the cache and reorders
  it. The graph takes each layer's keys and values as inputs of their own, read where
  they lie, and returns only the step's new positions; so it has no cache_index.
- EXPLICIT_IO (the eager reference): the whole cache goes in and out as tensors.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from atom_deploy.export.contract import DynamicDim, EntryPoint, ExportableModule, OutputSpec, TensorSpec
from atom_deploy.model import AtomModel
from atom_deploy.models import Decoder
from atom_deploy.models.attention import attention_bias
from atom_deploy.models.kv_cache import HeldCache, InPlaceCache, buffer_shape, copy_rows, slot_index
from atom_runner.errors import AtomError
from atom_runner.schema import Entry, Key, KVStyle, Module
from atom_runner.schema import Tensor as T

# Sentences per MiniLM call; runners split longer lists. ExecuTorch plans activation memory
# for the upper bound: at 64 x 256 tokens the attention scores alone are 200 MB per buffer,
# which dominated the C++ runner's peak RSS. 16 keeps the plan 4x smaller for no loss of
# throughput: MiniLM int8 on 16-token captions (ONNX Runtime, 2 x86 cores) took 4.8 ms a
# sentence at batch 16 and 4.7 ms at batch 64.
MINILM_MAX_BATCH = 16
_BUILDERS: dict[str, Callable[[AtomModel, str], ExportableModule]] = {}


def register(name: str):
    def wrap(fn):
        _BUILDERS[name] = fn
        return fn

    return wrap


def build_exportable(name: str, model: AtomModel, kv_style: str) -> ExportableModule:
    if name not in _BUILDERS:
        raise AtomError(f"unknown module {name!r}; valid modules: {sorted(_BUILDERS)}")
    return _BUILDERS[name](model, kv_style)


class TokenEmbedding(nn.Module):
    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, tokens: Tensor) -> Tensor:
        return self.decoder.embed(tokens)


class InPlaceTextDecoder(nn.Module):
    """KV cache in per-layer mutable buffers [max_batch * Hkv * S_max, Dh], written in place (ExecuTorch)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder
        c = decoder.config
        shape = buffer_shape(c.max_batch, c.kv_heads, c.max_context, c.head_dim)
        for i in range(c.layers):
            self.register_buffer(f"k_cache_{i}", torch.zeros(shape), persistent=False)
            self.register_buffer(f"v_cache_{i}", torch.zeros(shape), persistent=False)

    def forward(
        self, embeds: Tensor, input_pos: Tensor, cache_index: Tensor, reorder_pos: Tensor, attend_pos: Tensor
    ) -> Tensor:
        c = self.decoder.config
        rows = torch.arange(embeds.shape[0])
        # Slot arithmetic and the mask are the same for every layer: computed once a step,
        # not per layer and cache (it was a third of the step's portable-kernel calls).
        write = slot_index(rows, input_pos, c.kv_heads, c.max_context)
        read = slot_index(rows, attend_pos, c.kv_heads, c.max_context)
        bias = attention_bias(attend_pos[None, :] <= input_pos[:, None], c.heads // c.kv_heads)
        reorder_from = slot_index(cache_index, reorder_pos, c.kv_heads, c.max_context)
        reorder_to = slot_index(rows, reorder_pos, c.kv_heads, c.max_context)
        caches = []
        for i in range(c.layers):
            k, v = getattr(self, f"k_cache_{i}"), getattr(self, f"v_cache_{i}")
            copy_rows(k, reorder_from, reorder_to)
            copy_rows(v, reorder_from, reorder_to)
            caches.append(InPlaceCache(k, v, write, read, bias))
        return self.decoder(embeds, input_pos, caches)


class ExplicitTextDecoder(nn.Module):
    """KV cache as graph inputs and outputs [L, B, Hkv, S_max, Dh] (ONNX)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, embeds, input_pos, cache_index, k_cache, v_cache):
        k = k_cache.index_select(1, cache_index)
        v = v_cache.index_select(1, cache_index)
        return self.decoder.forward_explicit(embeds, input_pos, k, v)


class HeldCacheTextDecoder(nn.Module):
    """Each layer's cache rows [B, Hkv, T, Dh] as two inputs of their own (RUNNER_HELD); T is
    the context the runner holds so far (at most S_max), so the attention reads no more.

    One input per layer and side, not one stacked [L, ...] tensor: ONNX Runtime copies a
    Split or Slice of an input, so a stacked cache was copied whole every step (with the
    gather, transposes and stack of EXPLICIT_IO, half a 16-row step), while a separate
    input is read in place. -> logits [B, V], new keys and values [L, B, Hkv, S, Dh].
    """

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, embeds: Tensor, input_pos: Tensor, *layer_caches: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = self.decoder.config
        rep = c.heads // c.kv_heads
        # Computed once a step for every layer: the cache's positions before this step,
        # and the step's positions causally among themselves. The runner passes as many
        # positions as the context has so far (rounded up), not the whole cache.
        past_bias = attention_bias((torch.arange(layer_caches[0].shape[2]) < input_pos[0])[None, :], 1)
        new_bias = attention_bias(input_pos[None, :] <= input_pos[:, None], rep)
        caches = [HeldCache(layer_caches[2 * i], layer_caches[2 * i + 1], past_bias, new_bias) for i in range(c.layers)]
        logits = self.decoder(embeds, input_pos, caches)
        return logits, torch.stack([cache.new_k for cache in caches]), torch.stack([cache.new_v for cache in caches])


def held_cache_names(layers: int) -> list[str]:
    """RUNNER_HELD's cache inputs in order: k_cache_0, v_cache_0, k_cache_1, ..."""
    return [f"{side}_{i}" for i in range(layers) for side in (T.K_CACHE, T.V_CACHE)]


@register(Module.VIDEO_ENCODER)
def video_encoder(model: AtomModel, kv_style: str) -> ExportableModule:
    c = model.config.encoder
    clip = TensorSpec(T.CLIP, torch.randn(c.clip_shape))
    entry = EntryPoint(Entry.FORWARD, model.encoder, (clip,), (OutputSpec(T.VISUAL_PREFIX),))
    return ExportableModule(Module.VIDEO_ENCODER, (entry,), {Key.NUM_VISUAL_TOKENS: c.num_visual_tokens})


@register(Module.DECODER)
def decoder(model: AtomModel, kv_style: str) -> ExportableModule:
    c = model.config.decoder
    seq = DynamicDim("seq", 1, c.max_context)
    # Examples use sizes >= 2: export specializes dimensions whose example is 1. A one-row
    # cache has no batch dimension to vary, so it is exported static at 1.
    B, S = min(2, c.max_batch), 3
    batch = {0: DynamicDim("batch", 1, c.max_batch)} if c.max_batch > 1 else {}
    tokens = TensorSpec(T.TOKENS, torch.arange(1, B * S + 1).reshape(B, S), {**batch, 1: seq})
    embedding = EntryPoint(
        Entry.TOKEN_EMBEDDING, TokenEmbedding(model.decoder), (tokens,), (OutputSpec(T.EMBEDS, {**batch, 1: seq}),)
    )
    inputs = [
        TensorSpec(T.EMBEDS, torch.randn(B, S, c.dim), {**batch, 1: seq}),
        TensorSpec(T.INPUT_POS, torch.arange(S), {0: seq}),
    ]
    outputs = [OutputSpec(T.LOGITS, batch)]
    if kv_style != KVStyle.RUNNER_HELD:
        inputs.append(TensorSpec(T.CACHE_INDEX, torch.arange(B), batch))
    if kv_style == KVStyle.IN_PLACE:
        step_module: nn.Module = InPlaceTextDecoder(model.decoder)
        inputs.append(TensorSpec(T.REORDER_POS, torch.tensor([1, 2]), {0: DynamicDim("reorder", 1, c.max_context)}))
        # The positions the step attends over (0..input_pos[-1]); its length is the context
        # the attention reads. Example 5 > S = 3: the step's positions follow earlier ones.
        inputs.append(TensorSpec(T.ATTEND_POS, torch.arange(S + 2), {0: DynamicDim("attend", 1, c.max_context)}))
    elif kv_style == KVStyle.EXPLICIT_IO:
        step_module = ExplicitTextDecoder(model.decoder)
        # The cache's rows vary apart from the step's (a beam's first step reads one row and
        # writes four), so its example differs from the batch example where the rows allow.
        cache_rows = {1: DynamicDim("cache_batch", 1, c.max_batch)} if c.max_batch > 1 else {}
        example_rows = min(3, c.max_batch)
        for name in (T.K_CACHE, T.V_CACHE):
            inputs.append(TensorSpec(name, torch.zeros(model.decoder.cache_shape(example_rows)), cache_rows))
        outputs += [OutputSpec(name, {1: d for d in batch.values()}) for name in (T.K_CACHE_OUT, T.V_CACHE_OUT)]
    elif kv_style == KVStyle.RUNNER_HELD:
        step_module = HeldCacheTextDecoder(model.decoder)
        # Past positions hold something finite: a masked score must be finite + -inf. One
        # tensor per input: torch.export treats inputs given the same tensor as one input.
        # Their positions vary apart from the step's (the context so far, not S): example 5 > S = 3.
        layer_shape = (B, c.kv_heads, min(S + 2, c.max_context), c.head_dim)
        context = {2: DynamicDim("context", 1, c.max_context)}
        inputs += [TensorSpec(name, torch.zeros(layer_shape), batch | context) for name in held_cache_names(c.layers)]
        new_dims = {1: d for d in batch.values()} | {3: seq}
        outputs += [OutputSpec(name, new_dims) for name in (T.K_NEW, T.V_NEW)]
    else:
        raise AtomError(f"unknown KV cache style {kv_style!r}")
    text_decoder = EntryPoint(Entry.TEXT_DECODER, step_module, tuple(inputs), tuple(outputs))
    metadata = {
        Key.KV_CACHE: {Key.KV_STYLE: kv_style, Key.SHAPE: list(model.decoder.cache_shape(c.max_batch))},
        Key.VOCAB_SIZE: c.vocab_size,
        Key.DIM: c.dim,
    }
    return ExportableModule(Module.DECODER, (embedding, text_decoder), metadata)


@register(Module.MINILM)
def minilm(model: AtomModel, kv_style: str) -> ExportableModule:
    c = model.config.minilm
    batch = DynamicDim("batch", 1, MINILM_MAX_BATCH)
    seq = DynamicDim("seq", 1, c.max_seq_length)
    ids = TensorSpec(T.INPUT_IDS, torch.tensor([[101, 2000, 102], [101, 2001, 102]]), {0: batch, 1: seq})
    mask = TensorSpec(T.ATTENTION_MASK, torch.ones(2, 3, dtype=torch.int64), {0: batch, 1: seq})
    entry = EntryPoint(Entry.FORWARD, model.minilm, (ids, mask), (OutputSpec(T.SENTENCE_EMBEDDING, {0: batch}),))
    return ExportableModule(Module.MINILM, (entry,), {Key.MAX_SEQ_LENGTH: c.max_seq_length, Key.DIM: c.dim})
