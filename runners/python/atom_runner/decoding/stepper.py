"""One decoder call behind one signature, whatever the backend does with the KV cache.

    step(embeds [B,S,D], input_pos [S], cache_index [B], shared_until) -> logits [B,V]

Row b continues from cache row cache_index[b]. `shared_until` says that every position
below it holds the same keys in all rows (the prompt a beam started from), so a reorder
need not move them. By KVStyle:
- IN_PLACE: the cache lives inside the loaded program, which moves positions
  shared_until..input_pos[0]-1 between rows itself and attends over 0..input_pos[-1];
- RUNNER_HELD: the stepper holds one [rows, Hkv, T, Dh] array per layer and side (T: the
  context so far, in blocks), moves those positions itself, passes the arrays in (read in
  place) and writes the new positions the call returns;
- EXPLICIT_IO: the stepper threads the whole cache through each call.
Either way the stepper owns one request's cache: concurrent requests must not share a stepper.
"""

from __future__ import annotations

import weakref

import numpy as np

from atom_runner.runtimes import LoadedModule
from atom_runner.schema import Entry, KVStyle

# attend_pos grows a block of positions at a time: each new length makes XNNPACK re-plan
# the attention's delegate calls, a fixed cost per step that a 16-position block pays once
# every 16 steps, for at most 15 masked positions more read.
ATTEND_BLOCK = 16
_SIZED_WORKSPACES: "weakref.WeakSet[LoadedModule]" = weakref.WeakSet()


class DecoderStepper:
    def __init__(self, module: LoadedModule, kv_style: str, cache_shape: list[int]):
        self.module = module
        self.kv_style = kv_style
        self.cache_shape = list(cache_shape)  # [L, max_batch, Hkv, S_max, Dh]
        self._held: list[np.ndarray] = []  # RUNNER_HELD: k_0, v_0, k_1, ... each [rows, Hkv, T, Dh], T <= S_max
        self.reset()

    def _size_workspace(self) -> None:
        """One step at the largest shape decoding uses (every cache row, the whole cache
        attended), once per loaded program, before its first real step. XNNPACK plans a
        delegate's memory again whenever an input's shape changes, and zeroes what it must
        add to the workspace; sized at its largest up front, it never grows afterwards. Growing it as the context grew cost a
        4-row SmolLM2-135M step 33 ms instead of 9. The step writes the last position of
        every row, which a decode always writes again before it attends to it."""
        _, rows, _, max_context, _ = self.cache_shape
        embeds = self.embed(np.zeros((rows, 1), dtype=np.int64))
        last = np.array([max_context - 1], dtype=np.int64)
        self.module.run(Entry.TEXT_DECODER, in_place_inputs(embeds, last, np.arange(rows), 0, max_context))

    def reset(self, rows: int = 1) -> None:
        """A cache for `rows` rows. Positions are written before they are attended to, so
        an in-place or held cache of the same rows is reused: the positions a new request
        has not written yet are masked, and hold finite keys from zeros or an earlier one."""
        shape = list(self.cache_shape)
        shape[1] = rows
        if self.kv_style == KVStyle.EXPLICIT_IO:
            self._k = np.zeros(shape, dtype=np.float32)
            self._v = np.zeros(shape, dtype=np.float32)
        elif self.kv_style == KVStyle.RUNNER_HELD and (not self._held or self._held[0].shape[0] != rows):
            shape[3] = min(ATTEND_BLOCK, shape[3])  # grown a block at a time by _held_step
            self._held = [np.zeros(shape[1:], dtype=np.float32) for _ in range(2 * shape[0])]

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        # tokens: [B, S] int64 -> [B, S, D]
        return self.module.run(Entry.TOKEN_EMBEDDING, [np.asarray(tokens, dtype=np.int64)])[0]

    def step(self, embeds: np.ndarray, input_pos: np.ndarray, cache_index: np.ndarray, shared_until: int = 0) -> np.ndarray:
        cache_index = np.asarray(cache_index, dtype=np.int64)
        input_pos = np.asarray(input_pos, dtype=np.int64)
        inputs = [np.ascontiguousarray(embeds, dtype=np.float32), input_pos, cache_index]
        if self.kv_style == KVStyle.IN_PLACE:
            if self.module not in _SIZED_WORKSPACES:
                self._size_workspace()
                _SIZED_WORKSPACES.add(self.module)
            max_context = self.cache_shape[3]
            return self.module.run(Entry.TEXT_DECODER, in_place_inputs(inputs[0], input_pos, cache_index, shared_until, max_context))[0]
        if self.kv_style == KVStyle.RUNNER_HELD:
            return self._held_step(inputs[0], input_pos, cache_index, shared_until)
        logits, self._k, self._v = self.module.run(Entry.TEXT_DECODER, inputs + [self._k, self._v])
        return logits

    def _held_step(self, embeds: np.ndarray, input_pos: np.ndarray, cache_index: np.ndarray, shared_until: int) -> np.ndarray:
        start = int(input_pos[0])
        end = start + len(input_pos)
        if len(cache_index) != self._held[0].shape[0]:  # rows split (a beam's first step): a new array of B rows
            self._held = [layer[cache_index] for layer in self._held]
        elif span := reorder_span(cache_index, input_pos, shared_until):
            first, stop = span
            for layer in self._held:
                layer[:, :, first:stop] = layer[cache_index, :, first:stop]
        # The arrays hold the context so far rounded up to a block (what the graph reads,
        # past positions from start on masked), grown here when the step's positions pass it.
        if (length := attended_length(end - 1, self.cache_shape[3])) > self._held[0].shape[2]:
            self._held = [_wider(layer, length) for layer in self._held]
        logits, k_new, v_new = self.module.run(Entry.TEXT_DECODER, [embeds, input_pos, *self._held])
        for i, (k, v) in enumerate(zip(k_new, v_new)):
            self._held[2 * i][:, :, start:end] = k
            self._held[2 * i + 1][:, :, start:end] = v
        return logits


def _wider(layer: np.ndarray, length: int) -> np.ndarray:
    # [rows, Hkv, T, Dh] -> [rows, Hkv, length, Dh], the new positions zero
    wider = np.zeros(layer.shape[:2] + (length,) + layer.shape[3:], dtype=np.float32)
    wider[:, :, : layer.shape[2]] = layer
    return wider


def reorder_span(cache_index: np.ndarray, input_pos: np.ndarray, shared_until: int) -> tuple[int, int] | None:
    """The positions [first, stop) a reorder must move: shared_until..input_pos[0]-1, or None
    when every row continues from itself or nothing was decoded since the rows split."""
    start = int(input_pos[0])
    if np.array_equal(cache_index, np.arange(len(cache_index))) or shared_until >= start:
        return None
    return shared_until, start


def reorder_positions(cache_index: np.ndarray, input_pos: np.ndarray, shared_until: int) -> np.ndarray:
    """`reorder_span` as the in-place graph's `reorder_pos`. The graph takes at least one
    position, so "none" is the position about to be written, which the step overwrites anyway."""
    span = reorder_span(cache_index, input_pos, shared_until)
    return np.array([int(input_pos[0])], dtype=np.int64) if span is None else np.arange(*span, dtype=np.int64)


def attended_length(last_pos: int, max_context: int) -> int:
    """How many cache positions a step whose last position is `last_pos` attends over: the
    context so far, rounded up to a whole ATTEND_BLOCK (positions past the step are masked)."""
    return min(max_context, -(-(last_pos + 1) // ATTEND_BLOCK) * ATTEND_BLOCK)


def in_place_inputs(
    embeds: np.ndarray, input_pos: np.ndarray, cache_index: np.ndarray, shared_until: int, max_context: int
) -> list[np.ndarray]:
    """The in-place text_decoder's inputs in order: embeds, input_pos, cache_index,
    reorder_pos, and attend_pos: the positions up to the step's last (`attended_length`),
    so the attention reads the context written so far, not the whole cache."""
    input_pos = np.asarray(input_pos, dtype=np.int64)
    cache_index = np.asarray(cache_index, dtype=np.int64)
    attend_pos = np.arange(attended_length(int(input_pos[-1]), max_context), dtype=np.int64)
    return [np.ascontiguousarray(embeds, dtype=np.float32), input_pos, cache_index,
            reorder_positions(cache_index, input_pos, shared_until), attend_pos]


def trim_after_eos(tokens: list[int], eos_id: int) -> list[int]:
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else list(tokens)
