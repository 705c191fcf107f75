"""How `export` replaces its output: the whole set in one step, nothing left by a failure,
and stale staging folders of dead exports removed (those of live ones kept).

Lowering itself is replaced by a stub that writes one file per module: what is tested
here is only where the files go, so no model is built or traced.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import atom_deploy.export.pipeline as pipeline
from atom_deploy.export.pipeline import ExportRequest, run_export
from atom_deploy.export.swap import swap_into_place
from atom_runner.errors import AtomError


@pytest.fixture()
def stub_lowering(monkeypatch):
    """Each module becomes <module>.<backend>.txt; `fail` names a backend whose lowering raises."""
    state = {"fail": None}

    def export_module(name, backend, source, quant, folder, progress, reports):
        if backend.name == state["fail"]:
            raise AtomError(f"export failed: module {name}, backend {backend.name}, stage lower: simulated")
        (folder / f"{name}.{backend.name}.txt").write_text("new")

    monkeypatch.setattr(pipeline, "_export_module", export_module)
    monkeypatch.setattr(pipeline, "_write_tokenizers", lambda source, folder: {})
    monkeypatch.setattr(pipeline, "write_manifest",
                        lambda folder, *rest: (folder / "manifest.json").write_text("new"))
    return state


def old_set(out: Path) -> None:
    for backend in ("executorch", "onnx"):
        (out / backend).mkdir(parents=True)
        (out / backend / "manifest.json").write_text("old")
    (out / "parity.json").write_text("old report")


def request(out: Path, *backends: str) -> ExportRequest:
    return ExportRequest(model="tiny", backends=backends, out=out, force=True, modules=("video_encoder",))


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_failure_in_the_second_backend_leaves_the_whole_old_set(stub_lowering, tmp_path):
    out = tmp_path / "out"
    old_set(out)
    before = tree(out)
    stub_lowering["fail"] = "executorch"
    with pytest.raises(AtomError, match="backend executorch"):
        run_export(request(out, "onnx", "executorch"), progress=lambda _: None)
    assert tree(out) == before  # the new ONNX set is not beside the old ExecuTorch one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_a_new_set_replaces_what_it_exports_and_keeps_the_rest(stub_lowering, tmp_path):
    out = tmp_path / "out"
    old_set(out)
    run_export(request(out, "onnx"), progress=lambda _: None)
    assert tree(out) == {
        "executorch/manifest.json": "old", "onnx/manifest.json": "new", "onnx/video_encoder.onnx.txt": "new",
        "parity.json": "old report",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_staging_folders_of_dead_exports_go_and_live_ones_stay(stub_lowering, tmp_path):
    out = tmp_path / "out"
    old_set(out)
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [out / f".onnx.partial-{dead}", tmp_path / f".out.partial-{dead}"]  # before and after this layout
        working = tmp_path / f".out.partial-{live.pid}"
        for folder in (*stale, working):
            folder.mkdir()
            (folder / "half-written").write_text("x")
        run_export(request(out, "onnx"), progress=lambda _: None)
        assert not any(p.exists() for p in stale)
        assert (working / "half-written").exists()
        assert ".onnx.partial" not in "".join(tree(out))
    finally:
        live.kill()
        live.wait()


def test_a_swap_killed_between_its_two_renames_is_undone(stub_lowering, tmp_path):
    out = tmp_path / "out"
    old_set(out)
    out.rename(tmp_path / f".out.old-{dead_pid()}")  # where a killed two-rename swap left it
    run_export(request(out, "onnx"), progress=lambda _: None)
    assert tree(out)["executorch/manifest.json"] == "old" and tree(out)["parity.json"] == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_readers_never_find_the_output_missing_during_swaps(tmp_path):
    out = tmp_path / "out"
    (out / "onnx").mkdir(parents=True)
    (out / "onnx" / "manifest.json").write_text("0")
    missing, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            if not (out / "onnx" / "manifest.json").is_file():
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            staging = tmp_path / ".out.partial-new"
            (staging / "onnx").mkdir(parents=True)
            (staging / "onnx" / "manifest.json").write_text(str(i + 1))
            swap_into_place(staging, out)
    finally:
        stop.set()
        thread.join()
    assert missing == [] and (out / "onnx" / "manifest.json").read_text() == "200"


def test_the_current_folder_cannot_be_the_output(stub_lowering, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AtomError, match="holds the current folder"):
        run_export(request(Path("."), "onnx"), progress=lambda _: None)
