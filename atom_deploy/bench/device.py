"""`atom-deploy bench --device`: the same two variants, run by the C++ runner on a phone over adb.

Each run is a fresh `atom_runner reuse-bench` process on the device (runners/android/src/
reuse_bench.cpp), interleaved A B A B like the host bench, and its JSON has the host
worker's fields, so `summarize`, the table, CSV and chart are shared. Clips are the same
demo-world scenes as the host bench, rendered here at the bundle's clip shape and pushed
once (sha256-skipped when already there).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from atom_deploy.bench.reuse import PROMPT, make_clips, summarize, write_outputs
from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest

# The C++ runner's reuse-bench variants; its "atom" decodes clips in batches (caption_clips).
DEVICE_VARIANTS = ("no_reuse", "atom")


@dataclass(frozen=True)
class DeviceBenchRequest:
    bundle: Path
    serial: str | None = None
    clips: int = 5
    repeat: int = 3
    beam: int = 4
    out: Path = Path("results")


def run_device_bench(request: DeviceBenchRequest, progress: Callable[[str], None] = print) -> dict:
    from atom_deploy.device import Adb
    from atom_deploy.device.remote import push_bundle, push_files, run_runner

    artifacts = request.bundle / "artifacts"
    if not (request.bundle / "bundle.json").is_file():
        raise AtomError(f"{request.bundle} is not a bundle (no bundle.json): run atom-deploy device bundle first")
    adb = Adb(request.serial)
    pushed, _ = push_bundle(adb, request.bundle)
    if pushed:
        progress(f"pushed {pushed} bundle files to {adb.serial}")
    request.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        local = []
        for i, clip in enumerate(make_clips(artifacts, request.clips)):
            path = Path(tmp) / f"bench_clip{i}.bin"
            clip.astype(np.float32).tofile(path)
            local.append(path)
        on_device = push_files(adb, local, "clips")
    runs = []
    for r in range(request.repeat):
        for variant in DEVICE_VARIANTS:  # interleaved: A B A B, a fresh runner process each
            progress(f"repeat {r + 1}/{request.repeat}: {variant} on {adb.serial}")
            out = run_runner(adb, ["reuse-bench", "--artifacts", "artifacts", "--variant", variant,
                                   "--prompt", PROMPT, "--beam", str(request.beam), *on_device])
            runs.append(_last_json(out, variant))
    summary = summarize(runs)
    manifest = load_manifest(artifacts).data
    summary["config"] = {
        "bundle": str(request.bundle), "device": adb.serial, "backend": "executorch (C++ runner on the device)",
        "clips": request.clips, "repeat": request.repeat, "beam": request.beam, "overlap": "thread",
        "model": manifest["model"]["name"], "device_info": device_info(adb),
    }
    write_outputs(summary, request.out)
    return summary


def device_info(adb) -> dict:
    """What the numbers came from: CPU model and core count, as the device reports them."""
    cpu = adb.shell("uname -m; nproc; grep -m1 -i -E 'model name|Hardware|CPU part' /proc/cpuinfo || true", "cpu info")
    lines = cpu.stdout.strip().splitlines()
    return {"machine": lines[0] if lines else "?", "cores": lines[1] if len(lines) > 1 else "?",
            "cpu": lines[2].split(":", 1)[-1].strip() if len(lines) > 2 else "?"}


def _last_json(stdout: str, variant: str) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise AtomError(f"atom_runner reuse-bench {variant} printed no JSON")
    return json.loads(lines[-1])
