"""Greedy decoding: exactly `steps` tokens, no data-dependent exit (trim after EOS later)."""

from __future__ import annotations

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper


def greedy(stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int) -> list[int]:
    tokens: list[int] = []
    pos = start_pos
    for i in range(steps):
        token = int(np.argmax(logits[0]))
        tokens.append(token)
        if i + 1 < steps:  # the last token is never fed back
            embeds = stepper.embed(np.array([[token]], dtype=np.int64))
            logits = stepper.step(embeds, np.array([pos], dtype=np.int64), np.zeros(1, dtype=np.int64))
            pos += 1
    return tokens
