"""One decoder call behind one signature, whatever the backend does with the KV cache.

    step(embeds [B,S,D], input_pos [S], cache_index [B]) -> logits [B,V]

With KVStyle.MUTABLE_BUFFERS the cache lives inside the loaded program. With
KVStyle.EXPLICIT_IO the stepper holds it and threads it through each call. Either way
the stepper owns one request's cache: concurrent requests must not share a stepper.
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

    def reset(self) -> None:
        if self.kv_style == KVStyle.EXPLICIT_IO:
            shape = list(self.cache_shape)
            shape[1] = 1
            self._k = np.zeros(shape, dtype=np.float32)
            self._v = np.zeros(shape, dtype=np.float32)

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        # tokens: [B, S] int64 -> [B, S, D]
        return self.module.run(Entry.TOKEN_EMBEDDING, [np.asarray(tokens, dtype=np.int64)])[0]

    def step(self, embeds: np.ndarray, input_pos: np.ndarray, cache_index: np.ndarray) -> np.ndarray:
        inputs = [
            np.ascontiguousarray(embeds, dtype=np.float32),
            np.asarray(input_pos, dtype=np.int64),
            np.asarray(cache_index, dtype=np.int64),
        ]
        if self.kv_style == KVStyle.MUTABLE_BUFFERS:
            return self.module.run(Entry.TEXT_DECODER, inputs)[0]
        logits, self._k, self._v = self.module.run(Entry.TEXT_DECODER, inputs + [self._k, self._v])
        return logits


def trim_after_eos(tokens: list[int], eos_id: int) -> list[int]:
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else list(tokens)
