"""adb transfers and failure judgement, through the stand-in adb (tests/fake_adb/adb): no
runner build and no qemu needed. Clip names that cannot collide on the phone, and a
disconnect judged from adb's exit status and stderr, never from what the runner printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atom_deploy.device.adb import Adb, DeviceError
from atom_deploy.device.bundle import DEVICE_DIR
from atom_deploy.device.remote import push_files

FAKE_ADB = Path(__file__).resolve().parent / "fake_adb"


@pytest.fixture()
def phone(tmp_path, monkeypatch) -> Path:
    """The stand-in's device filesystem; returns DEVICE_DIR on it."""
    monkeypatch.setenv("PATH", f"{FAKE_ADB}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    for name in ("FAKE_ADB_MODE", "FAKE_ADB_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "phone" / DEVICE_DIR.removeprefix("/")


def test_clips_with_one_name_from_two_folders_stay_two_files(phone, tmp_path):
    a, b = tmp_path / "a" / "clip.bin", tmp_path / "b" / "clip.bin"
    for path, content in ((a, b"clip from a"), (b, b"clip from b")):
        path.parent.mkdir()
        path.write_bytes(content)
    remote = push_files(Adb(), [a, b], "clips")
    assert len(set(remote)) == 2
    assert [(phone / r).read_bytes() for r in remote] == [b"clip from a", b"clip from b"]
    assert push_files(Adb(), [a, b], "clips") == remote  # the same names again: nothing to push twice


def test_runner_output_that_says_device_offline_is_not_a_disconnect(phone):
    out = Adb().shell("echo 'caption: the device offline icon blinks'; echo 'error: device offline' >&2")
    assert "device offline" in out.stdout and out.returncode == 0


def test_a_failed_adb_that_says_device_offline_is_a_disconnect(phone, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_MODE", "disconnect")
    with pytest.raises(DeviceError, match="disconnected during atom_runner caption"):
        Adb().shell("./atom_runner caption", "atom_runner caption")
