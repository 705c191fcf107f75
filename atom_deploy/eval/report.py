"""Console tables, eval.json, CSVs and a PNG chart from one EvalReport.

Files in OUT:
    eval.json       everything: config, rows, bound checks, sample captions, ablations, skips
    rows.csv        one line per row: caption metrics, recall, latency, STS-B, bound deltas
    samples.csv     the sample captions beside their references (the paper's Table 4 shape)
    ablations.csv   one line per ablation setting (only with --ablations)
    eval.png        CIDEr and R@1 per row, and the ablations' CIDEr vs latency
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from atom_deploy.eval.bounds import BACKEND_PAIR
from atom_deploy.eval.caption_metrics import clean
from atom_deploy.eval.run import EvalReport
from atom_deploy.table import format_table

ROW_FIELDS = ("row", "bleu4", "meteor", "rouge_l", "cider", "r1", "r5", "r10", "median_rank", "gallery",
              "colours_right", "objects_right", "motions_right", "counts_right", "backgrounds_right",
              "seconds_per_clip", "stsb_pearson", "stsb_spearman",
              "cider_drop", "cider_drop_low", "cider_drop_high", "cider_drop_ok",
              "r1_drop", "r1_drop_low", "r1_drop_high", "r1_drop_ok", "bounds_reference",
              "backend_cider_gap", "backend_cider_gap_low", "backend_cider_gap_high", "backend_cider_gap_ok",
              "stsb_drop", "stsb_drop_ok",  # _low/_high: the 95% paired-bootstrap interval (bounds.py)
              "lm_top1_disagreement", "lm_top1_disagreement_ok", "lm_mean_kl", "lm_mean_kl_ok",  # eval/lm.py
              "lm_p99_kl", "lm_p99_kl_ok", "lm_ppl_ratio", "lm_ppl_ratio_ok",
              "backend_identical_captions")  # on the ExecuTorch row: captions equal to the same recipe's ONNX row
ABLATION_FIELDS = ("group", "label", "variant", "beam", "steps", "clip_shape", "cider", "seconds_per_clip")
CHECK_COLUMNS = {"CIDEr drop": "cider_drop", "R@1 drop": "r1_drop", "CIDEr gap": "backend_cider_gap",
                 "STS-B Pearson drop": "stsb_drop", "LM top-1 disagreement": "lm_top1_disagreement",
                 "LM mean KL": "lm_mean_kl", "LM p99 KL": "lm_p99_kl", "LM perplexity ratio": "lm_ppl_ratio"}
FOUR_DIGIT_COLUMNS = {"stsb_drop", "lm_top1_disagreement", "lm_mean_kl", "lm_p99_kl", "lm_ppl_ratio"}


def to_json(report: EvalReport) -> dict:
    return {
        "config": report.config,
        "rows": [asdict(r) for r in report.rows],
        "checks": [{**asdict(c), "passed": c.passed} for c in report.checks],
        "all_bounds_passed": all(c.passed for c in report.checks),
        "backend_caption_agreement": caption_agreement(report),
        "samples": [asdict(s) for s in report.samples],
        "ablations": [asdict(a) for a in report.ablations],
        "lm_fidelity": [{"row": r.row, "reference": r.reference, **asdict(r.fidelity), "ppl_ratio": r.fidelity.ppl_ratio}
                        for r in report.lm],
        "skipped": list(report.skipped),
    }


def caption_agreement(report: EvalReport) -> list[dict]:
    """Per recipe run on both backends: how many of the clips got the very same caption from each."""
    rows = {r.name: r for r in report.rows}
    agreement = []
    for quant in dict.fromkeys(name.split()[1] for name in rows):
        pair = [rows.get(f"{backend} {quant}") for backend in BACKEND_PAIR]
        if all(pair):
            same = sum(a == b for a, b in zip(pair[0].captions, pair[1].captions))
            agreement.append({"row": pair[0].name, "vs": pair[1].name, "identical": same, "clips": len(pair[0].captions)})
    return agreement


def row_records(report: EvalReport) -> list[dict]:
    identical = {a["row"]: a["identical"] for a in caption_agreement(report)}
    records = []
    for r in report.rows:
        record = dict.fromkeys(ROW_FIELDS, "")
        record.update(row=r.name, bleu4=_r(r.scores.bleu4), meteor=_r(r.scores.meteor), rouge_l=_r(r.scores.rouge_l),
                      cider=_r(r.scores.cider), r1=_r(r.retrieval.r1), r5=_r(r.retrieval.r5), r10=_r(r.retrieval.r10),
                      median_rank=r.retrieval.median_rank, gallery=r.retrieval.gallery,
                      seconds_per_clip=_r(r.seconds_per_clip, 4), colours_right=_r(r.facts.colours, 1), objects_right=_r(r.facts.objects, 1),
                      motions_right=_r(r.facts.motions, 1), counts_right=_r(r.facts.counts, 1),
                      backgrounds_right=_r(r.facts.backgrounds, 1), backend_identical_captions=identical.get(r.name, ""))
        if r.stsb:
            record.update(stsb_pearson=_r(r.stsb.pearson, 4), stsb_spearman=_r(r.stsb.spearman, 4))
        for check in (c for c in report.checks if c.row == r.name):
            column = CHECK_COLUMNS[check.metric]
            record[column] = _r(check.value, 4 if column in FOUR_DIGIT_COLUMNS else 2)
            record[f"{column}_ok"] = check.passed
            if check.interval is not None:
                record[f"{column}_low"], record[f"{column}_high"] = (_r(x, 3) for x in check.interval)
            if column in ("cider_drop", "r1_drop"):
                record["bounds_reference"] = check.reference
        records.append(record)
    return records


def write_outputs(report: EvalReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "eval.json", out / "rows.csv", out / "samples.csv"]
    written[0].write_text(json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_csv(written[1], ROW_FIELDS, row_records(report))
    row_names = [r.name for r in report.rows]
    sample_fields = ("id", "references", "query", "canonical", *row_names)
    _write_csv(written[2], sample_fields, [
        {"id": s.id, "references": " | ".join(s.references), "query": s.query, "canonical": s.canonical, **s.captions}
        for s in report.samples
    ])
    if report.ablations:
        written.append(out / "ablations.csv")
        _write_csv(written[-1], ABLATION_FIELDS, [
            {**asdict(a), "clip_shape": "x".join(map(str, a.clip_shape)), "cider": _r(a.cider),
             "seconds_per_clip": _r(a.seconds_per_clip, 4)} for a in report.ablations
        ])
    written.append(out / "eval.png")
    chart(report, written[-1])
    return written


def console(report: EvalReport) -> str:
    parts = []
    records = row_records(report)
    parts.append(format_table(
        ("row", "BLEU@4", "METEOR", "ROUGE-L", "CIDEr", "R@1", "R@5", "R@10", "s/clip", "STS-B r"),
        [(d["row"], d["bleu4"], d["meteor"], d["rouge_l"], d["cider"], d["r1"], d["r5"], d["r10"],
          d["seconds_per_clip"], d["stsb_pearson"]) for d in records],
    ))
    parts.append(format_table(
        ("row", "colours right %", "colour + kind right %", "motions right %", "object counts right %",
         "backgrounds right %"),
        [(d["row"], d["colours_right"], d["objects_right"], d["motions_right"], d["counts_right"], d["backgrounds_right"]) for d in records],
    ))
    if report.checks:
        parts.append(format_table(
            ("row", "check", "vs", "value", "95% interval (paired bootstrap)", "bound", "result"),
            [(c.row, c.metric, c.reference, f"{c.value:.4g}", _interval_text(c.interval), f"<= {c.bound}",
              "ok" if c.passed else "OVER") for c in report.checks],
        ))
    if report.lm:
        parts.append(format_table(
            ("row", "vs", "tokens", "top-1 agreement", "mean KL", "p99 KL", "perplexity", "reference perplexity"),
            [(r.row, r.reference, r.fidelity.tokens, f"{r.fidelity.top1:.4f}", f"{r.fidelity.mean_kl:.4g}",
              f"{r.fidelity.p99_kl:.4g}", f"{r.fidelity.ppl:.4g}", f"{r.fidelity.ppl_reference:.4g}") for r in report.lm],
        ))
    agreement = caption_agreement(report)
    if agreement:
        parts.append(format_table(
            ("row", "vs", "identical captions"),
            [(a["row"], a["vs"], f"{a['identical']} of {a['clips']}") for a in agreement],
        ))
    if report.samples:
        names = [r.name for r in report.rows]
        sample_rows = []
        for s in report.samples:
            sample_rows.append((s.id, "reference", s.references[0]))
            # One printable line per caption: an untrained decoder emits control bytes.
            sample_rows += [("", name, clean(s.captions[name]) or "(empty)") for name in names]
        parts.append(format_table(("clip", "source", "caption"), sample_rows))
    if report.ablations:
        parts.append(format_table(
            ("ablation", "setting", "clip", "beam", "steps", "CIDEr", "s/clip"),
            [(a.group, a.label, "x".join(map(str, a.clip_shape[2:])), a.beam, a.steps, _r(a.cider),
              _r(a.seconds_per_clip, 4)) for a in report.ablations],
        ))
    if report.skipped:
        parts.append("\n".join(f"note: {s}" for s in report.skipped))
    return "\n\n".join(parts)


def chart(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if report.ablations else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2))
    names = [r.name for r in report.rows]
    for ax, values, title in (
        (axes[0], [r.scores.cider for r in report.rows], "CIDEr"),
        (axes[1], [r.retrieval.r1 for r in report.rows], "retrieval R@1 (%)"),
    ):
        bars = ax.bar(range(len(names)), values, color="#1f77b4")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names], fontsize=8)
        ax.set_title(title, fontsize=10)
    if report.ablations:
        ax = axes[2]
        labels = [f"{a.group}: {a.label}" for a in report.ablations]
        bars = ax.barh(range(len(labels)), [a.cider for a in report.ablations], color="#ff7f0e")
        ax.bar_label(bars, labels=[f"{a.cider:.1f} / {a.seconds_per_clip:.2f} s" for a in report.ablations], fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.margins(x=0.35)  # room for the value labels right of the bars
        ax.set_title("ablations: CIDEr / s per clip", fontsize=10)
    config = report.config
    fig.suptitle(f"{config.get('model', '')}: {config.get('clips', '?')} test clips, seed {config.get('seed', '?')}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_csv(path: Path, fields, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(records)


def _r(value: float | None, digits: int = 2):
    return "" if value is None else round(float(value), digits)


def _interval_text(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:.3g}, {interval[1]:.3g}]"
