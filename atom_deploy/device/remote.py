"""What the kit does on a phone over adb: list devices, push the bundle and clips
(sha256-skipping), and run the bundled atom_runner with its exit status checked."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from atom_deploy.device.adb import Adb, DeviceError
from atom_deploy.device.bundle import DEVICE_DIR
from atom_runner.manifest import sha256_file


def list_devices() -> list:
    adb = Adb.__new__(Adb)  # listing must work with zero or many devices: skip device selection
    adb.adb, adb.timeout, adb.serial = shutil.which("adb") or "adb", 60, None
    if not shutil.which(adb.adb):
        raise DeviceError("adb not found on PATH (Debian/Ubuntu: apt-get install adb)")
    return adb.devices()


def push_bundle(adb: Adb, bundle: Path) -> tuple[int, int]:
    record_path = bundle / "bundle.json"
    if not record_path.is_file():
        raise DeviceError(f"{bundle} is not a bundle (no bundle.json): run atom-deploy device bundle first")
    files = json.loads(record_path.read_text())["files"]
    on_device = adb.sha256s(DEVICE_DIR)
    todo = [f for f, sha in files.items() if on_device.get(f) != sha]
    dirs = sorted({str(Path(DEVICE_DIR, f).parent) for f in todo})
    if dirs:
        adb.shell("mkdir -p " + " ".join(shlex.quote(d) for d in dirs), "mkdir")
    for f in todo:
        adb.push(str(bundle / f), f"{DEVICE_DIR}/{f}")
    adb.shell(f"chmod 755 {DEVICE_DIR}/atom_runner {DEVICE_DIR}/ld-linux-aarch64.so.1", "chmod")
    return len(todo), len(files) - len(todo)


def push_files(adb: Adb, paths: list[Path], sub: str) -> list[str]:
    """Push local files into DEVICE_DIR/sub (sha256-skipping); returns their paths relative to DEVICE_DIR.

    The i-th file goes to sub/<i>-<name>: a/clip.bin and b/clip.bin must not land on one name."""
    if not paths:
        return []
    for p in paths:
        if not Path(p).is_file():
            raise DeviceError(f"clip {p} does not exist")
    adb.shell(f"mkdir -p {DEVICE_DIR}/{sub}", "mkdir")
    on_device = adb.sha256s(f"{DEVICE_DIR}/{sub}")
    out = []
    for number, p in enumerate(paths):
        name = remote_name(number, Path(p))
        if on_device.get(name) != sha256_file(Path(p)):
            adb.push(str(p), f"{DEVICE_DIR}/{sub}/{name}")
        out.append(f"{sub}/{name}")
    return out


def remote_name(number: int, path: Path) -> str:
    """Unique within one push by its position; the local name kept, for the runner's output."""
    return f"{number}-{path.name}"


EXIT_MARK = "ATOM_RC="  # the line the device shell prints after the runner: adb may not pass its status on


def runner_shell(argv: list[str]) -> str:
    """The device shell command that runs the bundled runner with `argv`, then prints its exit status."""
    return (f"cd {DEVICE_DIR} && ./ld-linux-aarch64.so.1 --library-path . ./atom_runner "
            + " ".join(shlex.quote(a) for a in argv) + f"; echo {EXIT_MARK}$?")


def run_runner(adb: Adb, argv: list[str]) -> str:
    """Run the bundled runner; returns its stdout, or raises with its stderr on a non-zero exit."""
    out = adb.shell(runner_shell(argv), f"atom_runner {argv[0]}")
    lines = out.stdout.rstrip("\n").splitlines()
    if not lines or not lines[-1].startswith(EXIT_MARK):
        raise DeviceError(f"device {adb.serial} disconnected during atom_runner {argv[0]} (no exit status came back)")
    rc = int(lines[-1].split("=", 1)[1])
    if rc != 0:
        err = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("I ")]
        raise DeviceError(f"atom_runner {argv[0]} exited {rc} on {adb.serial}: {err[-1] if err else 'no stderr'}")
    return "\n".join(lines[:-1]) + "\n"
