"""atom-deploy bench end to end on tiny: 2 clips, 1 repeat, the three variants in fresh processes."""

from __future__ import annotations

import csv
import json

import pytest

from atom_runner.schema import Module
from conftest import atom_deploy

pytestmark = pytest.mark.slow  # every test reads one bench run (two variants, fresh processes)

@pytest.fixture(scope="module")
def bench_result(tiny_exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = atom_deploy("bench", "--artifacts", str(tiny_exports["int8"]), "--backend", "executorch",
                         "--clips", "2", "--repeat", "1", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout


def test_bench_writes_json_csv_and_chart(bench_result):
    out, stdout = bench_result
    summary = json.loads((out / "bench.json").read_text())
    assert {"medians", "ratios", "peak_rss_mb", "runs", "config"} <= set(summary)
    for variant in ("no_reuse", "atom", "atom_batched"):
        seconds = summary["medians"][variant]["seconds"]
        assert {"load", "captioning", "index", "script", "retrieval_done", "assembly_done"} <= set(seconds)
        assert seconds["assembly_done"] >= seconds["retrieval_done"] > 0
        assert {"load", "run"} == set(summary["medians"][variant]["peak_mb"])
        assert all(v > 0 for v in summary["medians"][variant]["peak_mb"].values())
    for ratios in (summary["ratios"], summary["ratios_batched"]):
        assert ratios["assembly_done"] > 0 and ratios["peak_rss"] > 0
    assert [r["variant"] for r in summary["runs"]] == ["no_reuse", "atom", "atom_batched"]  # interleaved A B C
    # the mode `auto` resolved to, not the request: tiny's encoder is far under the worker-process bar
    assert summary["config"]["overlap"] == "auto" and summary["medians"]["atom"]["overlap"] == "off"
    rows = list(csv.reader((out / "bench.csv").open()))
    assert rows[0] == ["metric", "no_reuse_s", "atom_s", "atom/no_reuse", "atom_batched_s", "atom_batched/no_reuse"] and any("end-to-end video assembly" in r[0] for r in rows)
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "end-to-end video retrieval" in stdout


def test_no_reuse_loads_each_stage_model_again_and_atom_loads_once(bench_result):
    out, _ = bench_result
    summary = json.loads((out / "bench.json").read_text())
    no_reuse, atom = summary["medians"]["no_reuse"]["loads"], summary["medians"]["atom"]["loads"]
    # The separate script model is the decoder artifact loaded a second time.
    assert no_reuse == {Module.VIDEO_ENCODER: 1, Module.DECODER: 2, Module.MINILM: 1}
    assert atom == {Module.VIDEO_ENCODER: 1, Module.DECODER: 1, Module.MINILM: 1}
    assert summary["medians"]["atom_batched"]["loads"] == atom


def test_both_variants_compute_the_same_pipeline(bench_result):
    out, _ = bench_result
    runs = {r["variant"]: r["outputs"] for r in json.loads((out / "bench.json").read_text())["runs"]}
    # Same artifacts, same clips, same decode loop: identical captions, ranking and script.
    assert runs["atom"]["captions"] == runs["no_reuse"]["captions"]
    assert runs["atom"]["top"] == runs["no_reuse"]["top"]
    assert runs["atom"]["script"] == runs["no_reuse"]["script"]
    assert runs["atom_batched"] == runs["atom"]  # batching changes no caption, ranking or script


def test_bench_rejects_a_missing_backend_folder(tiny_exports, tmp_path):
    result = atom_deploy("bench", "--artifacts", str(tiny_exports["int8"] / "onnx"), "--backend", "executorch",
                         "--out", str(tmp_path))
    assert result.returncode == 1 and "holds onnx artifacts, not executorch" in result.stderr
