"""The language-model rows of eval: each quantized row's decoder read against fp32 on real text.

The math and the bounds are parity's (atom_deploy/parity/lm_fidelity.py). The reference is
the same backend's fp32 row when that row runs (the quantization effect alone), else eager
fp32, as for the caption bounds (bounds.py). Two Sessions are open at a time: the quantized
row and its reference, stepping through the text in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atom_deploy.eval.bounds import BoundCheck
from atom_deploy.eval.rows import RowSpec, open_row
from atom_deploy.parity.lm_fidelity import LM_BOUNDS, LmFidelity, corpus_text, measure


@dataclass(frozen=True)
class LmRow:
    row: str
    reference: str
    fidelity: LmFidelity


def lm_rows(rows: list[RowSpec], artifacts: Path, fp32_artifacts: Path | None, tokens: int, log=print) -> list[LmRow]:
    by_name = {r.name: r for r in rows}
    eager = RowSpec("eager fp32", "eager", "fp32", None)
    out = []
    for row in rows:
        if row.quant == "fp32" or row.backend == "eager":
            continue
        reference = by_name.get(f"{row.backend} fp32", eager)
        log(f"{row.name}: teacher-forced on {tokens} tokens of text against {reference.name}")
        with open_row(reference, artifacts, fp32_artifacts) as ref, open_row(row, artifacts, fp32_artifacts) as session:
            ids = session.tokenizer.encode(corpus_text())
            bos = session.bos_id if session.conventions.add_bos else None
            fidelity = measure(ref.new_stepper(), session.new_stepper(), ids, bos, tokens)
        out.append(LmRow(row.name, reference.name, fidelity))
    return out


def lm_checks(rows: list[LmRow]) -> list[BoundCheck]:
    """The gated metrics as BoundChecks (value <= bound): top-1 agreement as its complement.
    A recipe without LM bounds (LM_BOUNDS) is reported in the LM table only."""
    checks = []
    for r in rows:
        for metric, value, bound, higher_is_better in r.fidelity.gates(LM_BOUNDS.get(r.row.split()[1])):
            if bound is None:
                continue
            if higher_is_better:
                metric, value, bound = metric.replace("agreement", "disagreement"), 1.0 - value, round(1.0 - bound, 12)
            checks.append(BoundCheck(r.row, metric, r.reference, value, bound))
    return checks
