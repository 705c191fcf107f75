"""`atom-deploy device` over a stand-in adb (tests/fake_adb/adb): the "phone" is a local folder and
the bundle runs under qemu-aarch64 -cpu cortex-a76 through its own glibc loader. No phone here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cpp_common import REPO, run_json, write_clips

FAKE_ADB = REPO / "tests" / "fake_adb"


# The device subcommand alone, with the CLI's error handling: importing every CLI module
# costs tens of seconds on a loaded machine. test_registered_in_cli runs the real entry point.
DRIVER = """
import argparse, sys
from atom_runner.errors import AtomError
from atom_deploy.cli import device_cmd
parser = argparse.ArgumentParser(prog="atom-deploy")
device_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(int(args.run(args) or 0))
except AtomError as exc:
    print(f"atom-deploy device: error: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def device(*args: str, env: dict, check: bool = True, input: str = "") -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", DRIVER, "device", *args], capture_output=True, text=True,
                         env=env, timeout=600, input=input)
    if check and out.returncode != 0:
        raise AssertionError(f"device {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="module")
def setup(aarch64_runner, tiny_exports, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("device")
    env = dict(os.environ, PATH=f"{FAKE_ADB}{os.pathsep}{os.environ['PATH']}", FAKE_ADB_ROOT=str(tmp / "phone"))
    env.pop("FAKE_ADB_MODE", None)
    env.pop("FAKE_ADB_DEVICES", None)
    art = tiny_exports["int8"] / "executorch"
    bundle = tmp / "bundle"
    device("bundle", "--artifacts", str(art), "--out", str(bundle), "--binary", str(aarch64_runner), env=env)
    shape = json.loads((art / "manifest.json").read_text())["clip"]["shape"]
    clips = write_clips(tmp, shape, 2, seed=3)
    return {"env": env, "bundle": bundle, "clips": clips, "art": art, "phone": tmp / "phone" / "data/local/tmp/atom"}


def test_bundle_is_self_contained(setup):
    b = setup["bundle"]
    record = json.loads((b / "bundle.json").read_text())
    for name in ("atom_runner", "ld-linux-aarch64.so.1", "libc.so.6", "libstdc++.so.6", "libexecutorch.so",
                 "libexecutorch_backend_xnnpack.so", "artifacts/manifest.json", "artifacts/decoder.pte"):
        assert name in record["files"], name
    assert record["run"] == "./ld-linux-aarch64.so.1 --library-path . ./atom_runner"


def test_push_skips_matching_files(setup):
    env, b = setup["env"], setup["bundle"]
    first = device("push", "--bundle", str(b), env=env).stdout
    again = device("push", "--bundle", str(b), env=env).stdout
    n = len(json.loads((b / "bundle.json").read_text())["files"])
    assert "0 already up to date" in first or f"pushed {n} files" in first or "pushed" in first
    assert again.startswith(f"pushed 0 files, {n} already up to date")
    (setup["phone"] / "artifacts" / "minilm_tokenizer.json").write_text("stale")
    third = device("push", "--bundle", str(b), env=env).stdout
    assert third.startswith(f"pushed 1 files, {n - 1} already up to date")


def test_run_on_device_matches_direct_qemu_run(setup, aarch64_runner):
    env, b = setup["env"], setup["bundle"]
    device("push", "--bundle", str(b), env=env)
    args = ["--bundle", str(b)] + [a for c in setup["clips"] for a in ("--clip", c)]
    on_device = json.loads(device("run", *args, "--", "caption", "--beam", "4", env=env).stdout)
    direct = run_json(aarch64_runner, "caption", "--artifacts", str(setup["art"]), "--beam", "4", *setup["clips"])
    assert [c["tokens"] for c in on_device["captions"]] == [c["tokens"] for c in direct["captions"]]
    emb = json.loads(device("run", "--bundle", str(b), "--", "embed", "a red car", env=env).stdout)
    assert len(emb["embeddings"][0]) == 384


def test_reuse_bench_through_the_device_runner(setup, tmp_path):
    """atom-deploy bench --device: both variants as fresh atom_runner processes on the "phone"."""
    from conftest import atom_deploy

    out = tmp_path / "bench"
    result = atom_deploy("bench", "--device", "--bundle", str(setup["bundle"]), "--clips", "2", "--repeat", "1",
                         "--beam", "2", "--out", str(out), env=setup["env"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "bench.json").read_text())
    print("device reuse bench (qemu cortex-a76):", json.dumps(summary["ratios"]))
    assert [r["variant"] for r in summary["runs"]] == ["no_reuse", "atom"]
    runs = {r["variant"]: r for r in summary["runs"]}
    # The no-reuse pipeline loads the decoder again for the script; ATOM loads each module once.
    assert runs["no_reuse"]["loads"] == {"video_encoder": 1, "decoder": 2, "minilm": 1}
    assert runs["atom"]["loads"] == {"video_encoder": 1, "decoder": 1, "minilm": 1}
    for run in runs.values():
        assert {"load", "captioning", "index", "script", "retrieval_done", "assembly_done"} <= set(run["seconds"])
        assert run["seconds"]["assembly_done"] >= run["seconds"]["retrieval_done"] > 0
        assert set(run["peak_mb"]) == {"load", "run"} and min(run["peak_mb"].values()) > 0
    # Same bundle, same clips, same decode loop: the two variants compute the same pipeline.
    assert runs["atom"]["outputs"] == runs["no_reuse"]["outputs"]
    assert len(runs["atom"]["outputs"]["captions"]) == 2
    assert summary["config"]["device"] == "fake0" and summary["config"]["model"] == "tiny"
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG" and "end-to-end video assembly" in result.stdout


def test_serve_keeps_one_runner_for_a_sequence_of_tasks(setup, aarch64_runner):
    """device serve: one resident atom_runner over adb shell answers every line; the modules load once."""
    env, b, clip = setup["env"], str(setup["bundle"]), setup["clips"][0]
    device("push", "--bundle", b, env=env)
    lines = [json.dumps({"id": 1, "op": "caption", "clips": [clip], "beam": 2}), "not json",
             json.dumps({"id": 2, "op": "embed", "texts": ["a red car"]})]
    out = device("serve", "--bundle", b, env=env, input="\n".join(lines) + "\n")
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    direct = run_json(aarch64_runner, "caption", "--artifacts", str(setup["art"]), "--beam", "2", clip)
    assert len(replies) == 3 and replies[0]["id"] == 1 and replies[2]["id"] == 2, out.stdout[:2000]
    assert [c["tokens"] for c in replies[0]["captions"]] == [c["tokens"] for c in direct["captions"]]
    assert replies[0]["captions"][0]["clip"] == "clips/0-clip0.bin"  # the clip was pushed, not read from here
    assert "not valid JSON" in replies[1]["error"] and len(replies[2]["embeddings"][0]) == 384
    assert "3 requests, 1 errors, loads decoder=1 minilm=1 video_encoder=1" in out.stderr, out.stderr
    lost = device("serve", "--bundle", b, env={**env, "FAKE_ADB_MODE": "disconnect"}, input=lines[2] + "\n", check=False)
    assert "fake0 disconnected during atom_runner serve" in one_line_error(lost)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_errors_are_one_line(setup):
    env, b = dict(setup["env"]), str(setup["bundle"])
    assert "no device connected" in one_line_error(device("push", "--bundle", b, env={**env, "FAKE_ADB_DEVICES": ""}, check=False))
    two = {**env, "FAKE_ADB_DEVICES": "fake0:device,fake1:device"}
    assert "--serial" in one_line_error(device("push", "--bundle", b, env=two, check=False))
    assert device("push", "--bundle", b, "--serial", "fake0", env=two).returncode == 0
    assert "not connected" in one_line_error(device("push", "--bundle", b, "--serial", "nope", env=two, check=False))
    unauth = {**env, "FAKE_ADB_DEVICES": "fake0:unauthorized"}
    assert "unauthorized" in one_line_error(device("push", "--bundle", b, env=unauth, check=False))
    (setup["phone"] / "atom_runner").unlink(missing_ok=True)  # force a push
    assert "storage is full" in one_line_error(device("push", "--bundle", b, env={**env, "FAKE_ADB_MODE": "full"}, check=False))
    device("push", "--bundle", b, env=env)
    assert "disconnected" in one_line_error(
        device("run", "--bundle", b, "--", "embed", "x", env={**env, "FAKE_ADB_MODE": "disconnect"}, check=False))
    bad = Path(setup["clips"][0]).with_name("bad.bin")
    np.zeros(7, dtype=np.float32).tofile(bad)
    line = one_line_error(device("run", "--bundle", b, "--clip", str(bad), "--", "caption", env=env, check=False))
    assert "exited 1" in line and "bad.bin" in line and "expected" in line
    assert "not a bundle" in one_line_error(device("push", "--bundle", str(bad.parent / "nothing"), env=env, check=False))


def test_registered_in_cli(setup):
    out = subprocess.run([sys.executable, "-m", "atom_deploy", "device", "list"], capture_output=True, text=True,
                         env=setup["env"], timeout=600)
    assert out.returncode == 0 and out.stdout.split() == ["fake0", "device"], out.stderr
