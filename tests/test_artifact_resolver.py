"""One rule for where artifacts are (atom_runner.manifest.artifact_folders / open_artifacts)."""

from __future__ import annotations

import pytest

from atom_runner.errors import AtomError
from atom_runner.manifest import artifact_folders, open_artifacts


def test_a_backend_folder_names_itself_and_an_export_root_its_backends_executorch_first(tmp_path):
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "manifest.json").write_text("{}")
    assert artifact_folders(tmp_path) == [tmp_path / "onnx"]
    (tmp_path / "executorch").mkdir()
    (tmp_path / "executorch" / "manifest.json").write_text("{}")
    assert artifact_folders(tmp_path) == [tmp_path / "executorch", tmp_path / "onnx"]
    assert artifact_folders(tmp_path / "onnx") == [tmp_path / "onnx"]
    with pytest.raises(AtomError, match="no manifest.json here nor in executorch/ or onnx/"):
        artifact_folders(tmp_path / "executorch" / "missing")


def test_open_artifacts_picks_the_asked_backend_and_refuses_a_mismatch(tiny_exports):
    root = tiny_exports["int8"]
    assert open_artifacts(root).backend == "executorch"
    assert open_artifacts(root, "onnx").root == root / "onnx"
    assert open_artifacts(root / "onnx", "onnx").root == root / "onnx"
    with pytest.raises(AtomError, match="holds onnx artifacts, not executorch"):
        open_artifacts(root / "onnx", "executorch")
    with pytest.raises(AtomError, match="unknown backend 'tflite'"):
        open_artifacts(root, "tflite")
