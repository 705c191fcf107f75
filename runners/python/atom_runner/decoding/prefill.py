"""Prefill: [BOS] + optional visual prefix + prompt tokens, in one decoder call.

Several requests prefill together when they share the prompt length: one row each, the
same positions for every row (the contract carries one position vector per call).
Captions qualify: BOS, a visual prefix of fixed length, no prompt tokens. So do text
prompts of one token length, each in its own row.
"""

from __future__ import annotations

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper
from atom_runner.errors import AtomError


def prompt_room(max_context: int, prefix_len: int, steps: int, bos: bool = True) -> int:
    """How many prompt tokens fit beside BOS, the visual prefix and `steps` generated tokens."""
    room = max_context - int(bos) - prefix_len - steps
    if room < 0:
        raise AtomError(f"{steps} steps + {prefix_len} prefix tokens do not fit the context of {max_context}")
    return room


def prefill(
    stepper: DecoderStepper, bos_id: int | None, prompt_tokens: list[int] | np.ndarray, prefix: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Starts the stepper's cache afresh. prefix: [R, N, D] visual prefixes, one row each
    (None: text only); bos_id None: no BOS. prompt_tokens: [L], following in every row, or
    [R, L] without a prefix, one prompt per row.

    Returns the last position's logits [R, V] and the next free cache position."""
    prompts = np.asarray(prompt_tokens, dtype=np.int64)
    prompts = prompts.reshape(1, -1) if prompts.ndim == 1 else prompts  # [1 or R, L]
    if prompts.ndim != 2 or (prompts.shape[0] > 1 and prefix is not None):
        raise AtomError(f"prompt tokens must be [L], or [R, L] without a prefix; got shape {list(prompts.shape)}")
    rows = prompts.shape[0] if prefix is None else int(np.asarray(prefix).shape[0])
    stepper.reset(rows)
    parts = []
    if bos_id is not None:
        parts.append(stepper.embed(np.array([[bos_id]], dtype=np.int64)))
    if prefix is not None:
        parts.append(np.asarray(prefix, dtype=np.float32))
    if prompts.shape[1]:
        parts.append(stepper.embed(prompts))
    if not parts:
        raise AtomError("nothing to prefill: no BOS, no prefix and an empty prompt")
    embeds = np.concatenate([np.broadcast_to(p, (rows, *p.shape[1:])) for p in parts], axis=1)
    length = embeds.shape[1]
    logits = stepper.step(embeds, np.arange(length, dtype=np.int64), np.arange(rows, dtype=np.int64))
    return logits, length
