"""Beam search with length-normalized log-probabilities, over a fixed number of steps.

Rules (the C++ runner mirrors them one for one):
- K hypotheses run as a batch of K cache rows; after each selection the cache is
  reordered inside the graph through `cache_index` (each row's parent row). The rows
  share the prompt: the first step copies it to every row, later steps move only the
  positions decoded since (`shared_until`).
- Scores are sums of float64 log-softmax; a hypothesis is ranked by sum / length.
- A hypothesis that emits EOS is frozen: it keeps its row, its score and its length,
  and offers exactly one candidate (itself) at every later step.
- Each step ranks all candidates [K, V] by normalized score with a stable sort (ties go
  to the lower row, then the lower token id) and keeps the top K.
- Exactly `steps` selections run: no early exit. With K = 1 this is greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper


@dataclass(frozen=True)
class BeamResult:
    tokens: list[int]  # untrimmed, `steps` long
    score: float  # length-normalized log-probability


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def select(
    logprobs: np.ndarray, sums: np.ndarray, lengths: np.ndarray, frozen: np.ndarray, eos_id: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One beam step on [B, V] log-probs: returns (parent rows, tokens), each [width]."""
    rows, vocab = logprobs.shape
    scores = (sums[:, None] + logprobs) / (lengths[:, None] + 1)
    scores[frozen] = -np.inf
    scores[frozen, eos_id] = sums[frozen] / lengths[frozen]
    flat = top_k_stable(scores.reshape(-1), width)
    return flat // vocab, flat % vocab


def top_k_stable(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k highest scores, ties to the lower index: exactly
    `np.argsort(-scores, kind="stable")[:k]`, without sorting all rows x vocab scores
    (a full sort of 4 x 128k scores costs more than a decoder step's selection should)."""
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]  # the k-th highest
        candidates = np.flatnonzero(scores >= kth)  # ascending index: ties keep their order
        if candidates.size >= k:
            return candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
    return np.argsort(-scores, kind="stable")[:k]


def beam_search(
    stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int, eos_id: int, width: int = 4
) -> BeamResult:
    sums = np.zeros(1)
    lengths = np.zeros(1, dtype=np.int64)
    frozen = np.zeros(1, dtype=bool)
    tokens = np.zeros((1, 0), dtype=np.int64)
    pos = start_pos
    for i in range(steps):
        logprobs = log_softmax(logits)
        parents, chosen = select(logprobs, sums, lengths, frozen, eos_id, width)
        was_frozen = frozen[parents]
        sums = sums[parents] + np.where(was_frozen, 0.0, logprobs[parents, chosen])
        lengths = lengths[parents] + (~was_frozen)
        frozen = was_frozen | (chosen == eos_id)
        tokens = np.concatenate([tokens[parents], chosen[:, None]], axis=1)
        if i + 1 < steps:
            embeds = stepper.embed(chosen[:, None])
            logits = stepper.step(embeds, np.array([pos], dtype=np.int64), parents, shared_until=start_pos if i else 0)
            pos += 1
    final = sums / lengths
    best = int(np.argmax(final))  # first maximum: the lowest row wins ties
    return BeamResult([int(t) for t in tokens[best]], float(final[best]))
