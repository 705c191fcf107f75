"""The paper's int8-vs-fp32 bounds, and each row's deltas checked against them.

An int8 row is compared with the fp32 row of the same backend when that row was run
(the quantization effect alone), else with eager fp32; the reference is recorded.

Each CIDEr and R@1 delta also gets a 95% interval from a paired bootstrap over clips.
int8 changes a few captions out of a hundred, and at 100 clips one flipped query is a
whole point of R@1, so a delta near its bound says little without its interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CIDER_DROP_MAX = 1.5  # int8 CIDEr may be at most 1.5 below fp32
R1_DROP_MAX = 2.3  # int8 R@1 may be at most 2.3 points below fp32
BACKEND_CIDER_GAP_MAX = 0.5  # ExecuTorch int8 vs ONNX int8 CIDEr, either way
STSB_DROP_MAX = 0.005  # int8 MiniLM Pearson on STS-B may be at most 0.005 below fp32
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed, so a report's intervals are reproducible


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
        if quant != "int8":
            continue
        reference = f"{backend} fp32" if f"{backend} fp32" in metrics else "eager fp32"
        if reference not in metrics:
            continue
        ref = metrics[reference]
        checks.append(BoundCheck(row, "CIDEr drop", reference, ref["cider"] - values["cider"], CIDER_DROP_MAX,
                                 _interval(ref, values, "cider_per_clip")))
        checks.append(BoundCheck(row, "R@1 drop", reference, ref["r1"] - values["r1"], R1_DROP_MAX,
                                 _interval(ref, values, "r1_hits")))
    pair = ("executorch int8", "onnx int8")
    if all(p in metrics for p in pair):
        a, b = metrics[pair[0]], metrics[pair[1]]
        checks.append(BoundCheck(pair[0], "CIDEr gap", pair[1], abs(a["cider"] - b["cider"]), BACKEND_CIDER_GAP_MAX,
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
    return [
        BoundCheck(row, "STS-B Pearson drop", "eager fp32", ref - value, STSB_DROP_MAX)
        for row, value in pearsons.items() if row.endswith("int8")
    ]
