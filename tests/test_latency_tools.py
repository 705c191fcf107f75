"""The decode-speed tools report what they claim: the profile, the floor, both runners' steps.

Timings are never asserted here (they belong in benchmarks); what is asserted is that each
tool measures the thing it names.
"""

from __future__ import annotations

import json

from atom_deploy.bench.bandwidth import measure_bandwidth, weight_bytes_per_step
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key, Module
from conftest import atom_deploy
from test_cpp_common import run_json


def test_profile_names_the_delegate_and_the_in_place_cache_writes(tiny_exports, tmp_path):
    out = tmp_path / "profile.json"
    result = atom_deploy("profile", str(tiny_exports["int8"] / "executorch"), "--steps", "3", "--out", str(out), check=True)
    assert "decoder greedy" in result.stdout and "decoder beam4" in result.stdout and "video_encoder" in result.stdout
    profiles = {p["what"]: p for p in json.loads(out.read_text())}
    layers = load_manifest(tiny_exports["int8"] / "executorch").module(Module.DECODER)[Key.KV_CACHE][Key.SHAPE][0]
    for mode in ("decoder greedy", "decoder beam4"):
        ops = {o["name"]: o for o in profiles[mode]["ops"]}
        assert ops["XNNPACK delegate entry and copies"]["calls_per_run"] >= 1
        assert any(name.startswith("Fully Connected") for name in ops)  # XNNPACK's own operator events
        assert ops["native_call_index_put_"]["calls_per_run"] == 2 * 2 * layers  # write + reorder, k and v
        assert abs(sum(o["share"] for o in ops.values()) - 1) < 1e-6


def test_profile_refuses_onnx_artifacts(tiny_exports):
    result = atom_deploy("profile", str(tiny_exports["int8"] / "onnx"))
    assert result.returncode == 1 and "ETDump" in result.stderr and "Traceback" not in result.stderr


def test_weight_bytes_per_step_leave_out_the_embedding_table_but_not_lm_head(tiny_exports):
    decoder = load_manifest(tiny_exports["int8"] / "executorch").module(Module.DECODER)
    file_bytes = sum(r[Key.BYTES] for r in decoder[Key.FILES])
    vocab, dim = decoder[Key.VOCAB_SIZE], decoder[Key.DIM]
    got = weight_bytes_per_step(file_bytes, decoder, "int8")
    assert got == file_bytes - vocab * dim - 4 * vocab
    assert got > vocab * dim  # the int8 lm_head alone is vocab x dim bytes


def test_bandwidth_is_measured_on_one_thread_and_on_all():
    bw = measure_bandwidth(repeats=1, threads=2)
    assert bw.threads == 2 and bw.one_thread_gbs > 0 and bw.all_threads_gbs > 0
    assert bw.best_gbs == max(bw.one_thread_gbs, bw.all_threads_gbs)


def test_cpp_latency_reports_every_stage(host_runner, tiny_exports):
    art = tiny_exports["int8"] / "executorch"
    out = run_json(host_runner, "latency", "--artifacts", str(art), "--iters", "2")
    manifest = load_manifest(art)
    assert out["runner"] == "cpp" and out["repeat"] == 2
    assert out["prefill_tokens"] == 1 + manifest.decode[Key.NUM_VISUAL_TOKENS]
    assert all(out[k] > 0 for k in ("encoder_s", "prefill_s", "greedy_step_s", "beam4_step_s"))


def test_latency_prints_the_floor_and_the_cpp_runner_beside_python(host_runner, tiny_exports, tmp_path):
    out = tmp_path / "latency.json"
    folders = [str(tiny_exports["int8"] / b) for b in ("executorch", "onnx")]
    result = atom_deploy("latency", *folders, "--repeat", "1", "--no-eager", "--cpp-runner", str(host_runner), "--out", str(out), check=True)
    assert "greedy / floor" in result.stdout and "C++ / Python greedy" in result.stdout
    data = json.loads(out.read_text())
    assert data["bandwidth"]["one_thread_gbs"] > 0
    rows = {r["backend"]: r for r in data["results"]}
    assert set(rows) == {"executorch", "onnx"}
    for row in rows.values():
        assert row["floor_s"] == row["weight_bytes_per_step"] / (max(data["bandwidth"]["one_thread_gbs"], data["bandwidth"]["all_threads_gbs"]) * 1e9)
    assert [c["folder"] for c in data["cpp"]] == [folders[0]]


def test_latency_refuses_a_missing_cpp_runner(tiny_exports, tmp_path):
    result = atom_deploy("latency", str(tiny_exports["int8"] / "executorch"), "--no-eager", "--repeat", "1",
                         "--cpp-runner", str(tmp_path / "nope"))
    assert result.returncode == 1 and "--cpp-runner" in result.stderr and "Traceback" not in result.stderr
