"""Greedy decoding: exactly `steps` tokens, no data-dependent exit (trim after EOS later)."""

from __future__ import annotations

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper


def greedy_rows(stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int) -> list[list[int]]:
    """Each of the R rows of logits [R, V] continues on its own cache row."""
    rows = logits.shape[0]
    same_rows = np.arange(rows, dtype=np.int64)
    tokens = np.zeros((rows, steps), dtype=np.int64)
    pos = start_pos
    for i in range(steps):
        tokens[:, i] = np.argmax(logits, axis=-1)
        if i + 1 < steps:  # the last token is never fed back
            embeds = stepper.embed(tokens[:, i : i + 1])
            logits = stepper.step(embeds, np.array([pos], dtype=np.int64), same_rows)
            pos += 1
    return tokens.tolist()


def greedy(stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int) -> list[int]:
    return greedy_rows(stepper, logits, start_pos, steps)[0]
