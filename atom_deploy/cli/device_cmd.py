"""atom-deploy device: bundle the aarch64 C++ runner and run it on a phone over adb (bundle|list|push|run|bench)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

DEFAULT_BUNDLE = Path("build") / "device-bundle"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("device", help=__doc__.split(": ", 1)[1])
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    b = actions.add_parser("bundle", help="aarch64 runner + .so files + glibc loader + artifacts, in one folder")
    b.add_argument("--artifacts", type=Path, default=Path("artifacts/executorch"), help="executorch export folder")
    b.add_argument("--out", type=Path, default=DEFAULT_BUNDLE)
    b.add_argument("--binary", type=Path, help="a prebuilt aarch64 atom_runner (default: scripts/build_runner.sh aarch64)")

    actions.add_parser("list", help="connected devices and their state")

    for name, text in (("push", "copy the bundle, skipping files whose sha256 already matches"),
                       ("run", "run atom_runner on the device: device run [--clip F]... -- caption --beam 4"),
                       ("bench", "push N random clips and run atom_runner bench on the device")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--serial", help="which device, when several are connected")
        a.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
        if name == "run":
            a.add_argument("--clip", action="append", default=[], type=Path, help="a local float32 clip .bin, pushed first")
            a.add_argument("runner_args", nargs=argparse.REMAINDER, help="atom_runner subcommand and options")
        if name == "bench":
            a.add_argument("--clips", type=int, default=4)
            a.add_argument("--iters", type=int, default=3)
            a.add_argument("--beam", type=int, default=4)
    for a in actions.choices.values():
        a.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.device import Adb, DeviceError, make_bundle

    if args.action == "bundle":
        record = make_bundle(args.artifacts, args.out, args.binary)
        size = sum((args.out / f).stat().st_size for f in record["files"])
        print(f"bundle {args.out}: {len(record['files'])} files, {size / 1e6:.1f} MB; on the device: "
              f"cd {record['device_dir']} && {record['run']} caption --artifacts artifacts CLIP.bin")
        return 0
    if args.action == "list":
        for d in _list_devices():
            print(f"{d.serial}\t{d.state}")
        return 0
    adb = Adb(args.serial)
    if args.action == "push":
        pushed, skipped = push_bundle(adb, args.bundle)
        print(f"pushed {pushed} files, {skipped} already up to date on {adb.serial}")
        return 0
    if args.action == "run":
        argv = list(args.runner_args[1:] if args.runner_args[:1] == ["--"] else args.runner_args)
        if not argv:
            raise DeviceError("device run needs an atom_runner subcommand after --, e.g. -- caption --beam 4")
        clips = push_files(adb, args.clip, "clips")
        out = run_runner(adb, [argv[0], "--artifacts", "artifacts", *argv[1:], *clips])
        sys.stdout.write(out)
        return 0
    if args.action == "bench":
        import numpy as np

        shape = json.loads((args.bundle / "artifacts" / "manifest.json").read_text())["clip"]["shape"]
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            local = []
            for i in range(args.clips):
                path = Path(tmp) / f"bench{i}.bin"
                rng.standard_normal(shape).astype(np.float32).tofile(path)
                local.append(path)
            clips = push_files(adb, local, "clips")
        out = run_runner(adb, ["bench", "--artifacts", "artifacts", "--iters", str(args.iters),
                               "--beam", str(args.beam), *clips])
        sys.stdout.write(out)
        return 0
    raise DeviceError(f"unknown action {args.action}")


def _list_devices():
    from atom_deploy.device.adb import Adb

    adb = Adb.__new__(Adb)  # listing must work with zero or many devices: skip device selection
    import shutil

    adb.adb, adb.timeout, adb.serial = shutil.which("adb") or "adb", 60, None
    if not shutil.which(adb.adb):
        from atom_deploy.device import DeviceError

        raise DeviceError("adb not found on PATH (Debian/Ubuntu: apt-get install adb)")
    return adb.devices()


def push_bundle(adb, bundle: Path) -> tuple[int, int]:
    from atom_deploy.device import DEVICE_DIR, DeviceError

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


def push_files(adb, paths: list[Path], sub: str) -> list[str]:
    """Push local files into DEVICE_DIR/sub (sha256-skipping); returns their paths relative to DEVICE_DIR."""
    from atom_deploy.device import DEVICE_DIR, DeviceError
    from atom_runner.manifest import sha256_file

    if not paths:
        return []
    adb.shell(f"mkdir -p {DEVICE_DIR}/{sub}", "mkdir")
    on_device = adb.sha256s(f"{DEVICE_DIR}/{sub}")
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise DeviceError(f"clip {p} does not exist")
        if on_device.get(Path(p).name) != sha256_file(Path(p)):
            adb.push(str(p), f"{DEVICE_DIR}/{sub}/{Path(p).name}")
        out.append(f"{sub}/{Path(p).name}")
    return out


def run_runner(adb, argv: list[str]) -> str:
    """Run the bundled runner; returns its stdout, or raises with its stderr on a non-zero exit."""
    from atom_deploy.device import DEVICE_DIR, DeviceError

    cmd = (f"cd {DEVICE_DIR} && ./ld-linux-aarch64.so.1 --library-path . ./atom_runner "
           + " ".join(shlex.quote(a) for a in argv) + "; echo ATOM_RC=$?")
    out = adb.shell(cmd, f"atom_runner {argv[0]}")
    lines = out.stdout.rstrip("\n").splitlines()
    if not lines or not lines[-1].startswith("ATOM_RC="):
        raise DeviceError(f"device {adb.serial} disconnected during atom_runner {argv[0]} (no exit status came back)")
    rc = int(lines[-1].split("=", 1)[1])
    if rc != 0:
        err = [l for l in out.stderr.splitlines() if l.strip() and not l.startswith("I ")]
        raise DeviceError(f"atom_runner {argv[0]} exited {rc} on {adb.serial}: {err[-1] if err else 'no stderr'}")
    return "\n".join(lines[:-1]) + "\n"
