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
- Several prompts of one length may search together (`beam_search_groups`): each owns K
  consecutive rows, and its hypotheses are ranked and reordered only among themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom_runner.decoding.stepper import DecoderStepper


@dataclass(frozen=True)
class BeamResult:
    tokens: list[int]  # untrimmed, `steps` long
    score: float  # length-normalized log-probability


def log_normalizer(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits - row max, log of the row's sum of exp) in float64: a log-softmax is their
    difference, taken here only where a candidate needs it."""
    shifted = logits.astype(np.float64)
    shifted -= shifted.max(axis=-1, keepdims=True)
    return shifted, np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted, log_norm = log_normalizer(logits)
    return shifted - log_norm


def select(
    logits: np.ndarray, sums: np.ndarray, lengths: np.ndarray, frozen: np.ndarray, eos_id: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One beam step on [B, V] logits: (parent rows, tokens, their log-probs), each [width].

    The ranking is that of every B x V candidate's normalized score, sorted stably, but
    only the few that can win are scored. Within a live row the score grows with the
    logit, so a token more than a rounding margin below the row's width-th logit has
    `width` row-mates strictly ahead of it and can never be chosen. Scoring all 4 x 128k
    candidates in float64 each step cost as much as a tenth of the decoder step itself.
    """
    rows, vocab = logits.shape
    shifted, log_norm = log_normalizer(logits)
    k = min(width, vocab)
    kth = np.partition(shifted, vocab - k, axis=-1)[:, vocab - k]
    margin = 1e-9 * (1.0 + np.abs(kth) + np.abs(log_norm[:, 0]) + np.abs(sums))
    cand_rows, cand_tokens = [], []
    for r in range(rows):
        tokens = np.array([eos_id]) if frozen[r] else np.flatnonzero(shifted[r] >= kth[r] - margin[r])
        cand_rows.append(np.full(tokens.size, r))
        cand_tokens.append(tokens)
    parents_all, tokens_all = np.concatenate(cand_rows), np.concatenate(cand_tokens)  # ascending flat index
    logprobs = shifted[parents_all, tokens_all] - log_norm[parents_all, 0]
    scores = (sums[parents_all] + logprobs) / (lengths[parents_all] + 1)
    scores[frozen[parents_all]] = (sums / np.maximum(lengths, 1))[parents_all][frozen[parents_all]]
    if scores.size < width:  # too few candidates to fill the beam: rank every B x V one
        return _select_all(shifted - log_norm, sums, lengths, frozen, eos_id, width)
    best = np.argsort(-scores, kind="stable")[:width]
    return parents_all[best], tokens_all[best], logprobs[best]


def _select_all(
    logprobs: np.ndarray, sums: np.ndarray, lengths: np.ndarray, frozen: np.ndarray, eos_id: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vocab = logprobs.shape[1]
    scores = (sums[:, None] + logprobs) / (lengths[:, None] + 1)
    scores[frozen] = -np.inf
    scores[frozen, eos_id] = sums[frozen] / lengths[frozen]
    flat = top_k_stable(scores.reshape(-1), width)
    parents, tokens = flat // vocab, flat % vocab
    return parents, tokens, logprobs[parents, tokens]


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


def beam_search_groups(
    stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int, eos_id: int, width: int = 4
) -> list[BeamResult]:
    """One beam search per row of the prefill's logits [G, V], all G decoded in one batch of
    G x width cache rows. Group g owns rows g*width .. g*width+width-1 and its hypotheses
    are ranked and reordered only among themselves, so its result does not depend on
    which groups shared the batch."""
    groups = logits.shape[0]
    sums = np.zeros((groups, 1))
    lengths = np.zeros((groups, 1), dtype=np.int64)
    frozen = np.zeros((groups, 1), dtype=bool)
    tokens = np.zeros((groups, 1, 0), dtype=np.int64)
    rows_per_group = 1  # the prefill gave each group one row
    pos = start_pos
    for i in range(steps):
        picks = [
            select(logits[g * rows_per_group : (g + 1) * rows_per_group], sums[g], lengths[g], frozen[g], eos_id, width)
            for g in range(groups)
        ]
        parents, chosen, logprobs = (np.stack(part) for part in zip(*picks))  # each [G, width]
        was_frozen = np.take_along_axis(frozen, parents, axis=1)
        sums = np.take_along_axis(sums, parents, axis=1) + np.where(was_frozen, 0.0, logprobs)
        lengths = np.take_along_axis(lengths, parents, axis=1) + (~was_frozen)
        frozen = was_frozen | (chosen == eos_id)
        tokens = np.concatenate([np.take_along_axis(tokens, parents[:, :, None], axis=1), chosen[:, :, None]], axis=2)
        if i + 1 < steps:
            cache_rows = (np.arange(groups)[:, None] * rows_per_group + parents).reshape(-1)
            embeds = stepper.embed(chosen.reshape(-1, 1))
            logits = stepper.step(embeds, np.array([pos], dtype=np.int64), cache_rows, shared_until=start_pos if i else 0)
            pos += 1
        rows_per_group = width
    final = sums / lengths
    best = np.argmax(final, axis=1)  # first maximum: the lowest row wins ties
    return [BeamResult([int(t) for t in tokens[g, best[g]]], float(final[g, best[g]])) for g in range(groups)]


def beam_search(
    stepper: DecoderStepper, logits: np.ndarray, start_pos: int, steps: int, eos_id: int, width: int = 4
) -> BeamResult:
    return beam_search_groups(stepper, logits, start_pos, steps, eos_id, width)[0]
