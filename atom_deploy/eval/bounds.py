"""Each quantized recipe's bounds against fp32, and each row's deltas checked against them.

int8 has the paper's bounds; 8da4w (int4 grouped weights) has its own, looser ones (issue 16).
A quantized row ("<backend> <recipe>") is compared with the fp32 row of the same backend
when that row was run (the quantization effect alone), else with eager fp32; the reference
is recorded. The ExecuTorch and ONNX rows of one recipe are also compared with each other.

Each CIDEr and R@1 delta also gets a 95% interval from a paired bootstrap over clips.
int8 changes a few captions out of a hundred, and at 100 clips one flipped query is a
whole point of R@1, so a delta near its bound says little without its interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed, so a report's intervals are reproducible
BACKEND_PAIR = ("executorch", "onnx")


@dataclass(frozen=True)
class QuantBounds:
    cider_drop: float  # CIDEr may be at most this far below fp32
    r1_drop: float  # R@1 may be at most this many points below fp32
    backend_cider_gap: float  # ExecuTorch vs ONNX CIDEr of the same recipe, either way
    stsb_drop: float | None  # MiniLM Pearson on STS-B below fp32; None: not gated


QUANT_BOUNDS = {
    "int8": QuantBounds(cider_drop=1.5, r1_drop=2.3, backend_cider_gap=0.5, stsb_drop=0.005),  # the paper's
    # Issue 16's for int4 weights. Both backends run the same integers and roundings per Linear
    # (tests/test_quant_8da4w.py), so their gap keeps int8's bound.
    "8da4w": QuantBounds(cider_drop=2.0, r1_drop=3.0, backend_cider_gap=0.5, stsb_drop=None),
}


@dataclass(frozen=True)
class BoundCheck:
    row: str
    metric: str  # e.g. "CIDEr drop"
    reference: str  # the row compared against
    value: float  # reference - row for drops, |a - b| for gaps
    bound: float
    interval: tuple[float, float] | None = None  # 95% paired-bootstrap interval of `value`

    @property
    def passed(self) -> bool:
        return self.value <= self.bound


def paired_interval(reference: Sequence[float], row: Sequence[float], absolute: bool = False) -> tuple[float, float]:
    """95% interval of mean(reference - row) (or of its absolute value), resampling clips in pairs."""
    if len(reference) != len(row) or len(reference) == 0:
        raise ValueError(f"need two equal-length, non-empty per-clip series, got {len(reference)} and {len(row)}")
    diff = np.asarray(reference, dtype=np.float64) - np.asarray(row, dtype=np.float64)
    picks = np.random.default_rng(BOOTSTRAP_SEED).integers(0, diff.size, size=(BOOTSTRAP_RESAMPLES, diff.size))
    means = diff[picks].mean(axis=1)
    if absolute:
        means = np.abs(means)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def check_rows(metrics: dict[str, dict]) -> list[BoundCheck]:
    """metrics: row name -> {"cider": .., "r1": ..} for the rows that ran, optionally with
    per-clip series "cider_per_clip" and "r1_hits" (0/100 per query) for the intervals."""
    checks = []
    for row, values in metrics.items():
        backend, quant = row.split()
        if quant not in QUANT_BOUNDS:
            continue
        bounds = QUANT_BOUNDS[quant]
        reference = f"{backend} fp32" if f"{backend} fp32" in metrics else "eager fp32"
        if reference not in metrics:
            continue
        ref = metrics[reference]
        checks.append(BoundCheck(row, "CIDEr drop", reference, ref["cider"] - values["cider"], bounds.cider_drop,
                                 _interval(ref, values, "cider_per_clip")))
        checks.append(BoundCheck(row, "R@1 drop", reference, ref["r1"] - values["r1"], bounds.r1_drop,
                                 _interval(ref, values, "r1_hits")))
    for quant, bounds in QUANT_BOUNDS.items():
        pair = [f"{backend} {quant}" for backend in BACKEND_PAIR]
        if all(p in metrics for p in pair):
            a, b = metrics[pair[0]], metrics[pair[1]]
            checks.append(BoundCheck(pair[0], "CIDEr gap", pair[1], abs(a["cider"] - b["cider"]), bounds.backend_cider_gap,
                                     _interval(a, b, "cider_per_clip", absolute=True)))
    return checks


def _interval(reference: dict, row: dict, series: str, absolute: bool = False) -> tuple[float, float] | None:
    a, b = reference.get(series), row.get(series)
    if a is None or b is None or len(a) == 0 or len(a) != len(b):
        return None
    return paired_interval(a, b, absolute)


def check_stsb(pearsons: dict[str, float]) -> list[BoundCheck]:
    if "eager fp32" not in pearsons:
        return []
    ref = pearsons["eager fp32"]
    checks = []
    for row, value in pearsons.items():
        bounds = QUANT_BOUNDS.get(row.split()[-1])
        if bounds is not None and bounds.stsb_drop is not None:
            checks.append(BoundCheck(row, "STS-B Pearson drop", "eager fp32", ref - value, bounds.stsb_drop))
    return checks
