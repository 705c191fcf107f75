"""The device bundle: the aarch64 runner, its ExecuTorch .so files, the glibc loader and libs
from /usr/aarch64-linux-gnu, and the artifacts, laid out as they sit under DEVICE_DIR.

On the phone it runs as `./ld-linux-aarch64.so.1 --library-path . ./atom_runner ...`: the
bundled glibc loader, so nothing depends on Android's bionic (the no-NDK route).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from atom_deploy.device.adb import DeviceError
from atom_runner.manifest import open_artifacts, sha256_file

DEVICE_DIR = "/data/local/tmp/atom"
SYSROOT = Path("/usr/aarch64-linux-gnu")
LOADER = "ld-linux-aarch64.so.1"
REPO = Path(__file__).resolve().parents[2]
BUNDLE_MANIFEST = "bundle.json"
BUILD_MARKER = b"ATOM_BUILD_INFO:"  # runners/android/src/device_info.cpp


def build_aarch64() -> Path:
    script = REPO / "scripts" / "build_runner.sh"
    out = subprocess.run([str(script), "aarch64"], capture_output=True, text=True)
    if out.returncode != 0:
        raise DeviceError(f"aarch64 build failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return Path(out.stdout.strip().splitlines()[-1])


def needed(elf: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True)
    if out.returncode != 0:
        raise DeviceError(f"readelf failed on {elf}: {out.stderr.strip()}")
    return re.findall(r"\(NEEDED\).*\[(.+?)\]", out.stdout)


def _find_lib(name: str, dirs: list[Path]) -> Path:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise DeviceError(f"bundle: cannot find {name} in {', '.join(map(str, dirs))}")


def runner_build(binary: Path) -> dict | None:
    """The build record the runner carries (git commit, compiler, ExecuTorch version), read from
    its bytes: an aarch64 binary cannot run here. None for a runner built before device-info."""
    data = Path(binary).read_bytes()
    start = data.find(BUILD_MARKER)
    if start < 0:
        return None
    start += len(BUILD_MARKER)
    return json.loads(data[start : data.index(b"\0", start)].decode())


def make_bundle(artifacts: Path, out: Path, binary: Path | None = None) -> dict:
    # an export root or its executorch/ folder, verified before anything is copied
    artifacts = open_artifacts(artifacts, "executorch").root
    if not (SYSROOT / "lib" / LOADER).is_file():
        raise DeviceError(f"{SYSROOT}/lib/{LOADER} missing: apt-get install g++-aarch64-linux-gnu")
    binary = Path(binary) if binary else build_aarch64()
    et_lib = REPO / "runners" / "android" / "build-deps" / "executorch-aarch64" / "executorch" / "lib"
    search = [et_lib, SYSROOT / "lib"]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(binary, out / "atom_runner")
    todo, seen = list(needed(binary)), set()
    while todo:  # the transitive closure of shared libraries
        name = todo.pop()
        if name in seen or name == LOADER:
            continue
        seen.add(name)
        path = _find_lib(name, search)
        shutil.copy2(path, out / name)
        todo += needed(path)
    shutil.copy2(SYSROOT / "lib" / LOADER, out / LOADER)
    shutil.copytree(artifacts, out / "artifacts")
    files = {str(p.relative_to(out)): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()}
    record = {"device_dir": DEVICE_DIR, "run": f"./{LOADER} --library-path . ./atom_runner",
              "runner_build": runner_build(binary), "files": files}
    (out / BUNDLE_MANIFEST).write_text(json.dumps(record, indent=1))
    return record
