"""Prefill: BOS + optional visual prefix + prompt tokens, in one decoder call."""

from __future__ import annotations

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper
from atom_runner.errors import AtomError


def prompt_room(max_context: int, prefix_len: int, steps: int) -> int:
    """How many prompt tokens fit beside BOS, the visual prefix and `steps` generated tokens."""
    room = max_context - 1 - prefix_len - steps
    if room < 0:
        raise AtomError(f"{steps} steps + {prefix_len} prefix tokens do not fit the context of {max_context}")
    return room


def prefill(
    stepper: DecoderStepper, bos_id: int, prompt_tokens: list[int], prefix: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Returns the last position's logits [1, V] and the next free cache position."""
    parts = [stepper.embed(np.array([[bos_id]], dtype=np.int64))]
    if prefix is not None:
        parts.append(np.asarray(prefix, dtype=np.float32).reshape(1, -1, parts[0].shape[-1]))
    if prompt_tokens:
        parts.append(stepper.embed(np.array([prompt_tokens], dtype=np.int64)))
    embeds = np.concatenate(parts, axis=1)
    length = embeds.shape[1]
    logits = stepper.step(embeds, np.arange(length, dtype=np.int64), np.zeros(1, dtype=np.int64))
    return logits, length
