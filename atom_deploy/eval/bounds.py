"""The paper's int8-vs-fp32 bounds, and each row's deltas checked against them.

An int8 row is compared with the fp32 row of the same backend when that row was run
(the quantization effect alone), else with eager fp32; the reference is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

CIDER_DROP_MAX = 1.5  # int8 CIDEr may be at most 1.5 below fp32
R1_DROP_MAX = 2.3  # int8 R@1 may be at most 2.3 points below fp32
BACKEND_CIDER_GAP_MAX = 0.5  # ExecuTorch int8 vs ONNX int8 CIDEr, either way
STSB_DROP_MAX = 0.005  # int8 MiniLM Pearson on STS-B may be at most 0.005 below fp32


@dataclass(frozen=True)
class BoundCheck:
    row: str
    metric: str  # e.g. "CIDEr drop"
    reference: str  # the row compared against
    value: float  # reference - row for drops, |a - b| for gaps
    bound: float

    @property
    def passed(self) -> bool:
        return self.value <= self.bound


def check_rows(metrics: dict[str, dict[str, float]]) -> list[BoundCheck]:
    """metrics: row name -> {"cider": .., "r1": ..}, for the rows that ran."""
    checks = []
    for row, values in metrics.items():
        backend, quant = row.split()
        if quant != "int8":
            continue
        reference = f"{backend} fp32" if f"{backend} fp32" in metrics else "eager fp32"
        if reference not in metrics:
            continue
        ref = metrics[reference]
        checks.append(BoundCheck(row, "CIDEr drop", reference, ref["cider"] - values["cider"], CIDER_DROP_MAX))
        checks.append(BoundCheck(row, "R@1 drop", reference, ref["r1"] - values["r1"], R1_DROP_MAX))
    pair = ("executorch int8", "onnx int8")
    if all(p in metrics for p in pair):
        gap = abs(metrics[pair[0]]["cider"] - metrics[pair[1]]["cider"])
        checks.append(BoundCheck(pair[0], "CIDEr gap", pair[1], gap, BACKEND_CIDER_GAP_MAX))
    return checks


def check_stsb(pearsons: dict[str, float]) -> list[BoundCheck]:
    if "eager fp32" not in pearsons:
        return []
    ref = pearsons["eager fp32"]
    return [
        BoundCheck(row, "STS-B Pearson drop", "eager fp32", ref - value, STSB_DROP_MAX)
        for row, value in pearsons.items() if row.endswith("int8")
    ]
