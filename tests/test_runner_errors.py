"""Bad input to the runner: a clear error naming the problem; the session stays usable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from atom_runner.errors import AtomError
from atom_runner.schema import MANIFEST_FILE, Key
from atom_runner.session import Session
from conftest import atom_deploy


@pytest.fixture()
def onnx_copy(tiny_exports, tmp_path):
    folder = tmp_path / "onnx"
    shutil.copytree(tiny_exports["int8"] / "onnx", folder)
    return folder


def edit_manifest(folder, change):
    data = json.loads((folder / MANIFEST_FILE).read_text())
    change(data)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


def test_missing_artifact(onnx_copy):
    (onnx_copy / "minilm.onnx").unlink()
    with pytest.raises(AtomError, match="missing artifact file: .*minilm.onnx"):
        Session(onnx_copy)


def test_flipped_byte_is_caught_by_sha256(onnx_copy):
    path = onnx_copy / "video_encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(AtomError, match="video_encoder.onnx does not match its sha256"):
        Session(onnx_copy)


def test_truncated_file(onnx_copy):
    path = onnx_copy / "decoder.text_decoder.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(AtomError, match="decoder.text_decoder.onnx has 1000 bytes.*truncated"):
        Session(onnx_copy)


def test_manifest_hash_mismatch(onnx_copy):
    edit_manifest(onnx_copy, lambda d: d[Key.MODULES]["minilm"][Key.FILES][0].update({Key.SHA256: "0" * 64}))
    with pytest.raises(AtomError, match="minilm.onnx does not match its sha256"):
        Session(onnx_copy)


def test_manifest_from_another_kit_version(onnx_copy):
    edit_manifest(onnx_copy, lambda d: d.update({Key.FORMAT_VERSION: 99, Key.KIT_VERSION: "9.0"}))
    with pytest.raises(AtomError, match="manifest format 99 .*re-export"):
        Session(onnx_copy)


def test_manifest_naming_a_file_outside_the_folder(onnx_copy):
    edit_manifest(onnx_copy, lambda d: d[Key.MODULES]["minilm"][Key.FILES][0].update({Key.FILE: "../x"}))
    with pytest.raises(AtomError, match="outside the artifact folder: '../x'"):
        Session(onnx_copy)


def test_not_an_artifact_folder(tmp_path):
    with pytest.raises(AtomError, match="no manifest.json"):
        Session(tmp_path)


def test_bad_calls_leave_the_session_usable(tiny_exports):
    with Session(tiny_exports["int8"], backend="onnx", overlap="off") as s:
        good = np.zeros((1, 3, 6, 32, 32), np.float32)
        expected = s.caption(good, beam=1)
        with pytest.raises(AtomError, match=r"clip has shape \(1, 3, 6, 16, 16\), expected \(1, 3, 6, 32, 32\)"):
            s.encode(np.zeros((1, 3, 6, 16, 16), np.float32))
        with pytest.raises(AtomError, match="clip has dtype float64, expected float32"):
            s.encode(np.zeros((1, 3, 6, 32, 32)))
        with pytest.raises(AtomError, match="NaN"):
            s.encode(np.full((1, 3, 6, 32, 32), np.nan, np.float32))
        with pytest.raises(AtomError, match="empty list of texts"):
            s.embed([])
        with pytest.raises(AtomError, match="list of texts"):
            s.embed("not a list")
        with pytest.raises(AtomError, match="not valid UTF-8 .*0xff"):
            s.generate(b"caption \xff\xfe")
        with pytest.raises(AtomError, match=f"beam must be between 1 and {s.max_batch}"):
            s.caption(good, beam=s.max_batch + 1)
        assert s.caption(good, beam=1) == expected


def test_cli_reports_runner_errors_in_one_line(onnx_copy, tmp_path):
    bad = tmp_path / "clip.npy"
    np.save(bad, np.zeros((1, 3, 6, 8, 8), np.float32))
    result = atom_deploy("caption", "--artifacts", str(onnx_copy), str(bad))
    assert result.returncode == 1
    assert "clip has shape (1, 3, 6, 8, 8)" in result.stderr and "Traceback" not in result.stderr
    result = atom_deploy("embed", "--artifacts", str(tmp_path / "nowhere"), "x")
    assert result.returncode == 1 and "no manifest.json" in result.stderr


def test_a_session_opened_without_a_module_refuses_its_tasks_in_one_line(tiny_exports):
    """Session(modules=...) loads only the stages it names (the bench's no-reuse baseline
    opens one per stage); a task that needs a module left out is an error, not a crash."""
    from atom_runner.schema import Module

    with Session(tiny_exports["int8"], backend="onnx", overlap="off", modules=(Module.MINILM,)) as s:
        assert s.stats.loads == {Module.MINILM: 1}
        assert s.embed(["a red car"]).shape == (1, 384)
        with pytest.raises(AtomError, match="opened without the video_encoder module"):
            s.encode(np.zeros(s.clip_shape, np.float32))
        with pytest.raises(AtomError, match="opened without the decoder module"):
            s.generate("summary:")
    with pytest.raises(AtomError, match=r"unknown modules \['vae'\]; valid: \['video_encoder', 'decoder', 'minilm'\]"):
        Session(tiny_exports["int8"], backend="onnx", modules=("vae",))
