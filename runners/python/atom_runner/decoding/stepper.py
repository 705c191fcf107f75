"""One decoder call behind one signature, whatever the backend does with the KV cache.

    step(embeds [B,S,D], input_pos [S], cache_index [B], shared_until) -> logits [B,V]

Row b continues from cache row cache_index[b]. `shared_until` says that every position
below it holds the same keys in all rows (the prompt a beam started from), so a reorder
need not move them. With KVStyle.IN_PLACE the cache lives inside the loaded program and
only positions shared_until..input_pos[0]-1 are moved; with KVStyle.EXPLICIT_IO the
stepper holds the cache and threads it through each call. Either way the stepper owns
one request's cache: concurrent requests must not share a stepper.
"""

from __future__ import annotations

import numpy as np

from atom_runner.runtimes import LoadedModule
from atom_runner.schema import Entry, KVStyle


class DecoderStepper:
    def __init__(self, module: LoadedModule, kv_style: str, cache_shape: list[int]):
        self.module = module
        self.kv_style = kv_style
        self.cache_shape = list(cache_shape)  # [L, max_batch, Hkv, S_max, Dh]
        self.reset()

    def reset(self, rows: int = 1) -> None:
        """A fresh cache for `rows` rows (the in-place cache is simply overwritten)."""
        if self.kv_style == KVStyle.EXPLICIT_IO:
            shape = list(self.cache_shape)
            shape[1] = rows
            self._k = np.zeros(shape, dtype=np.float32)
            self._v = np.zeros(shape, dtype=np.float32)

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        # tokens: [B, S] int64 -> [B, S, D]
        return self.module.run(Entry.TOKEN_EMBEDDING, [np.asarray(tokens, dtype=np.int64)])[0]

    def step(self, embeds: np.ndarray, input_pos: np.ndarray, cache_index: np.ndarray, shared_until: int = 0) -> np.ndarray:
        cache_index = np.asarray(cache_index, dtype=np.int64)
        input_pos = np.asarray(input_pos, dtype=np.int64)
        inputs = [np.ascontiguousarray(embeds, dtype=np.float32), input_pos, cache_index]
        if self.kv_style == KVStyle.IN_PLACE:
            return self.module.run(Entry.TEXT_DECODER, inputs + [reorder_positions(cache_index, input_pos, shared_until)])[0]
        logits, self._k, self._v = self.module.run(Entry.TEXT_DECODER, inputs + [self._k, self._v])
        return logits


def reorder_positions(cache_index: np.ndarray, input_pos: np.ndarray, shared_until: int) -> np.ndarray:
    """The positions a reorder must move: none when every row continues from itself.

    The graph takes at least one position, so "none" is the position about to be
    written, which the step overwrites anyway.
    """
    start = int(input_pos[0])
    if np.array_equal(cache_index, np.arange(len(cache_index))) or shared_until >= start:
        return np.array([start], dtype=np.int64)
    return np.arange(shared_until, start, dtype=np.int64)


def trim_after_eos(tokens: list[int], eos_id: int) -> list[int]:
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else list(tokens)
