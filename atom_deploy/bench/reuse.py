"""`atom-deploy bench`: what reuse, overlap and batching buy, in the shape of the paper's Tables 3 and 8.

Variants: no_reuse (a model per stage, sequential), atom (reuse + overlap, one clip
decoded at a time) and atom_batched (reuse + overlap + clips sharing decode steps). All
variants get the same clips (rendered once from the demo world at the artifacts'
clip shape) and run in fresh processes, interleaved A B A B across repeats so machine
drift cancels; medians are reported with ATOM / no-reuse ratios.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest, open_artifacts
from atom_runner.schema import Key

VARIANTS = ("no_reuse", "atom", "atom_batched")
PROMPT = "make a highlight reel of the moving shapes"
# (label, key in seconds) rows of the latency table; None marks the paper's end-to-end rows
LATENCY_ROWS = (
    ("model loading", "load"),
    ("  of which encoder worker start (Python + runtime import)", "worker_start"),
    ("captioning stage (encode + decode)", "captioning"),
    ("  video encoding (sum, sequential only)", "encode"),
    ("  caption generation (sum, sequential only)", "caption"),
    ("indexing (MiniLM)", "index"),
    ("script generation", "script"),
    ("end-to-end video retrieval", "retrieval_done"),
    ("end-to-end video assembly", "assembly_done"),
)
MEMORY_ROWS = (("peak RSS during loading", "load"), ("peak RSS during the run", "run"))


@dataclass(frozen=True)
class BenchRequest:
    artifacts: Path
    backend: str = "executorch"
    clips: int = 5
    repeat: int = 3
    beam: int = 4
    out: Path = Path("results")
    overlap: str = "auto"


def make_clips(folder: Path, count: int, seed: int = 0) -> np.ndarray:
    """[count, 1, 3, T, H, W] float32: demo-world scenes, CLIP-normalized like the runner's input."""
    from atom_deploy.demo import render_clip, sample_scene

    clip = load_manifest(folder).data[Key.CLIP]
    _, _, frames, size, _ = clip[Key.SHAPE]
    mean = np.array(clip[Key.MEAN], np.float32)[:, None, None, None]
    std = np.array(clip[Key.STD], np.float32)[:, None, None, None]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        video = render_clip(sample_scene(rng), num_frames=frames, size=size, seed=seed + i)  # [T, H, W, 3] uint8
        x = video.astype(np.float32).transpose(3, 0, 1, 2) / 255.0  # [3, T, H, W]
        out.append(((x - mean) / std)[None])
    return np.stack(out).astype(np.float32)


def run_bench(request: BenchRequest, progress: Callable[[str], None] = print) -> dict:
    folder = open_artifacts(request.artifacts, request.backend).root
    request.out.mkdir(parents=True, exist_ok=True)
    clips_path = request.out / "clips.npy"
    np.save(clips_path, make_clips(folder, request.clips))
    runs = []
    for r in range(request.repeat):
        for variant in VARIANTS:  # interleaved: A B A B
            progress(f"repeat {r + 1}/{request.repeat}: {variant}")
            runs.append(_run_variant(variant, folder, request, clips_path))
    summary = summarize(runs)
    summary["config"] = {
        "artifacts": str(folder), "backend": request.backend, "clips": request.clips, "repeat": request.repeat,
        "beam": request.beam, "overlap": request.overlap, "model": load_manifest(folder).data[Key.MODEL][Key.MODEL_NAME],
    }
    write_outputs(summary, request.out)
    return summary


def _run_variant(variant: str, folder: Path, request: BenchRequest, clips_path: Path) -> dict:
    command = [sys.executable, "-m", "atom_deploy.bench.reuse_worker", variant, str(folder), request.backend,
               str(clips_path), PROMPT, str(request.beam), request.overlap]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AtomError(f"bench variant {variant} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """Medians per variant present in `runs` (the device bench runs no_reuse and atom only)."""
    by_variant = {v: [r for r in runs if r["variant"] == v] for v in VARIANTS if any(r["variant"] == v for r in runs)}
    medians = {}
    for variant, vruns in by_variant.items():
        seconds = {key: statistics.median(r["seconds"].get(key, 0.0) for r in vruns) for _, key in LATENCY_ROWS}
        peaks = {key: statistics.median(r["peak_mb"].get(key, 0.0) for r in vruns) for _, key in MEMORY_ROWS}
        medians[variant] = {"seconds": seconds, "peak_mb": peaks, "loads": vruns[0]["loads"],
                            "overlap": vruns[0].get("overlap")}  # the device runner's reports none: it overlaps on a thread
    peak = {v: max(m["peak_mb"].values()) for v, m in medians.items()}

    def ratios_of(variant: str) -> dict:
        ratios = {}
        for _, key in LATENCY_ROWS:
            base = medians["no_reuse"]["seconds"][key]
            ratios[key] = medians[variant]["seconds"][key] / base if base else None
        ratios["peak_rss"] = peak[variant] / peak["no_reuse"]
        return ratios

    summary = {"medians": medians, "ratios": ratios_of("atom"), "peak_rss_mb": peak, "runs": runs}
    if "atom_batched" in medians:
        summary["ratios_batched"] = ratios_of("atom_batched")
    return summary


def _compared(summary: dict) -> list[tuple[str, str, dict]]:
    """(variant, label, ratios) of each variant the summary compares with no_reuse."""
    out = [("atom", "ATOM", summary["ratios"])]
    if "ratios_batched" in summary:
        out.append(("atom_batched", "ATOM + batching", summary["ratios_batched"]))
    return out


def table_header(summary: dict) -> tuple[str, ...]:
    header = ["metric", "no reuse (s)"]
    for _, label, _ in _compared(summary):
        header += [f"{label} (s)", f"{label} / no reuse"]
    return tuple(header)


def table_rows(summary: dict) -> list[tuple[str, ...]]:
    m = summary["medians"]
    variants = [(v, ratios) for v, _, ratios in _compared(summary)]
    rows = []
    for label, key in LATENCY_ROWS:
        base = m["no_reuse"]["seconds"][key]
        if key == "worker_start" and not (base or any(m[v]["seconds"][key] for v, _ in variants)):
            continue
        row = [label, f"{base:.2f}"]
        for variant, ratios in variants:
            value, ratio = m[variant]["seconds"][key], ratios[key]
            row.append("not split" if key in ("encode", "caption") and not value else f"{value:.2f}")  # one stage in ATOM
            row.append("" if ratio is None or not value else f"{ratio:.2f}")
        rows.append(tuple(row))
    for label, key in MEMORY_ROWS:
        base = m["no_reuse"]["peak_mb"][key]
        row = [label + " (MB)", f"{base:.0f}"]
        for variant, _ in variants:
            value = m[variant]["peak_mb"][key]
            row += [f"{value:.0f}", f"{value / base:.3f}" if base else ""]
        rows.append(tuple(row))
    p = summary["peak_rss_mb"]
    row = ["peak RSS overall (MB)", f"{p['no_reuse']:.0f}"]
    for variant, ratios in variants:
        row += [f"{p[variant]:.0f}", f"{ratios['peak_rss']:.3f}"]
    rows.append(tuple(row))
    return rows


def write_outputs(summary: dict, out: Path) -> None:
    (out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.writer(f)
        header = ["metric", "no_reuse_s"]
        for variant, _, _ in _compared(summary):
            header += [f"{variant}_s", f"{variant}/no_reuse"]
        writer.writerow(header)
        writer.writerows(table_rows(summary))
    from atom_deploy.bench.chart import stacked_chart

    stacked_chart(summary, out / "bench.png")
