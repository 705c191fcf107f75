"""Teacher-forced language-model fidelity of a quantized decoder against its fp32 reference.

The yardsticks the field uses for a quantized LM (llama.cpp's --kl-divergence, perplexity
checks): both models read the same real text, each predicting every next token from the
true previous ones, and per scored token we compare
- top-1 agreement: the two most likely next tokens are the same;
- KL(fp32 || quant) of the next-token distributions, in float64 from log-softmax
  (mean and 99th percentile over tokens: the mean hides rare large departures);
- perplexity of each model on the text, exp(mean negative log-likelihood).
Greedy runs diverge for good after one flip, so they are reported elsewhere, never gated.

The text is cut into windows of the export's context (at most WINDOW tokens, BOS first
where the checkpoint's tokenizer adds one). Each window prefills its first half in one call
and then steps one token at a time, scoring the second half, so every scored token sees at
least half a window of context. Windows start half a window apart, so each token of the text
after the first half window is scored exactly once, and as many windows as the KV cache has
rows run side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atom_runner.decoding import DecoderStepper
from atom_runner.errors import AtomError

# Python Language Reference excerpt (PSF License v2): atom_deploy/assets/text/SOURCE.md
CORPUS = Path(__file__).resolve().parents[1] / "assets" / "text" / "python_reference.txt"
WINDOW = 512  # llama.cpp's default perplexity context; a smaller export uses its own
DEFAULT_TOKENS = 2048  # scored tokens: seconds on the tiny model, minutes on SmolLM2-135M (docs/quantization.md)


@dataclass(frozen=True)
class LmBounds:
    """What a quantized export may lose against fp32 on the corpus (docs/quantization.md)."""

    min_top1: float  # teacher-forced top-1 agreement, at least
    max_mean_kl: float  # nats per token, at most
    max_p99_kl: float
    max_ppl_ratio: float  # perplexity / fp32 perplexity, at most


# Set from measurements (docs/quantization.md#language-model-fidelity): SmolLM2-135M-Instruct
# and the tiny preset, both backends, with headroom over the worst of them. 8da4w has none
# yet: its only measurement is the random tiny decoder, which int4 weights scramble (top-1
# 0.29), so its rows are reported, not gated, until a real checkpoint is measured.
LM_BOUNDS = {
    "int8": LmBounds(min_top1=0.85, max_mean_kl=0.05, max_p99_kl=0.3, max_ppl_ratio=1.05),
}


@dataclass(frozen=True)
class LmFidelity:
    tokens: int  # scored tokens
    window: int  # tokens per window, BOS included
    top1: float
    mean_kl: float
    p99_kl: float
    ppl_reference: float
    ppl: float

    @property
    def ppl_ratio(self) -> float:
        return self.ppl / self.ppl_reference

    def gates(self, bounds: LmBounds | None) -> list[tuple[str, float, float | None, bool]]:
        """(metric, value, bound, higher_is_better) for each metric a recipe is gated on;
        bounds None (a recipe not yet measured on a real checkpoint): every bound None."""
        return [
            ("LM top-1 agreement", self.top1, bounds and bounds.min_top1, True),
            ("LM mean KL", self.mean_kl, bounds and bounds.max_mean_kl, False),
            ("LM p99 KL", self.p99_kl, bounds and bounds.max_p99_kl, False),
            ("LM perplexity ratio", self.ppl_ratio, bounds and bounds.max_ppl_ratio, False),
        ]

    def crossed(self, bounds: LmBounds | None) -> list[str]:
        """The metrics past their bounds."""
        return [metric for metric, value, bound, higher in self.gates(bounds)
                if bound is not None and (value < bound if higher else value > bound)]


def corpus_text(path: Path = CORPUS) -> str:
    return path.read_text(encoding="utf-8")


def measure(
    reference: DecoderStepper, candidate: DecoderStepper, ids: Sequence[int], bos_id: int | None,
    tokens: int = DEFAULT_TOKENS, window: int = WINDOW,
) -> LmFidelity:
    """Score the first `tokens` tokens of `ids` (the tokenized corpus; rounded up to whole
    windows, so the scored tokens do not depend on how many run side by side) with both
    steppers in lockstep; bos_id None: the windows start without BOS."""
    rows = min(reference.cache_shape[1], candidate.cache_shape[1])
    window = min(window, reference.cache_shape[3], candidate.cache_shape[3])
    text_len = window - (bos_id is not None)
    context = text_len // 2
    if context < 1 or tokens < 1:
        raise AtomError(f"a window of {window} positions and {tokens} tokens leave nothing to score")
    starts = range(0, len(ids) - text_len + 1, text_len - context)
    if not starts:
        raise AtomError(f"the text has {len(ids)} tokens: too short for a window of {window}")
    scored = text_len - context  # per window
    windows = np.array([ids[s : s + text_len] for s in starts[: -(-tokens // scored)]], dtype=np.int64)
    totals = _Totals()
    for first in range(0, len(windows), rows):
        _score_group(reference, candidate, windows[first : first + rows], context, bos_id, totals)
    return totals.result(window)


def _score_group(reference, candidate, group: np.ndarray, context: int, bos_id, totals: "_Totals") -> None:
    rows, length = group.shape
    prefix = group[:, :context]
    if bos_id is not None:
        prefix = np.concatenate([np.full((rows, 1), bos_id, dtype=np.int64), prefix], axis=1)
    logits = [_prefill(s, prefix) for s in (reference, candidate)]
    pos, same_rows = prefix.shape[1], np.arange(rows, dtype=np.int64)
    for i in range(context, length):
        totals.add(logits[0], logits[1], group[:, i])
        if i + 1 == length:
            return
        fed = group[:, i : i + 1]
        logits = [s.step(s.embed(fed), np.array([pos], dtype=np.int64), same_rows) for s in (reference, candidate)]
        pos += 1


def _prefill(stepper: DecoderStepper, prefix: np.ndarray) -> np.ndarray:
    rows, length = prefix.shape
    stepper.reset(rows)
    return stepper.step(stepper.embed(prefix), np.arange(length, dtype=np.int64), np.arange(rows, dtype=np.int64))


class _Totals:
    def __init__(self):
        self.kl: list[np.ndarray] = []
        self.same: list[np.ndarray] = []
        self.nll_ref: list[np.ndarray] = []
        self.nll: list[np.ndarray] = []

    def add(self, ref_logits: np.ndarray, logits: np.ndarray, targets: np.ndarray) -> None:
        p, q = _log_softmax(ref_logits), _log_softmax(logits)
        rows = np.arange(len(targets))
        self.kl.append(np.sum(np.exp(p) * (p - q), axis=-1))
        self.same.append(np.argmax(ref_logits, axis=-1) == np.argmax(logits, axis=-1))
        self.nll_ref.append(-p[rows, targets])
        self.nll.append(-q[rows, targets])

    def result(self, window: int) -> LmFidelity:
        kl = np.concatenate(self.kl)
        return LmFidelity(
            tokens=int(kl.size), window=window, top1=float(np.concatenate(self.same).mean()),
            mean_kl=float(kl.mean()), p99_kl=float(np.percentile(kl, 99)),
            ppl_reference=float(np.exp(np.concatenate(self.nll_ref).mean())),
            ppl=float(np.exp(np.concatenate(self.nll).mean())),
        )


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
