"""atom-deploy device: bundle the aarch64 C++ runner and run it on a phone over adb (bundle|list|push|run|serve|parity)."""

from __future__ import annotations

import argparse
import json
import sys
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
                       ("serve", "one resident atom_runner serve for many tasks: JSON request lines on stdin (local "
                                 "clip paths are pushed), one reply line each on stdout (docs/android.md)"),
                       ("parity", "the device's tokens and embeddings against the same .pte on the host; exit 1 below "
                                  "the thresholds (docs/device_parity.md)")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--serial", help="which device, when several are connected")
        a.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
        if name == "run":
            a.add_argument("--clip", action="append", default=[], type=Path, help="a local float32 clip .bin, pushed first")
            a.add_argument("runner_args", nargs=argparse.REMAINDER, help="atom_runner subcommand and options")
        if name == "parity":
            a.add_argument("--clips", type=int, default=2, help="demo test clips at the manifest's clip shape")
            a.add_argument("--beams", default="1,4", help="decodes to compare: 1 (greedy), 4 (beam 4) or 1,4")
            a.add_argument("--cpu-disable", default="", metavar="FEATURES",
                           help="hide CPU features from the runtime on the device (the safe path), e.g. sme")
            a.add_argument("--out", type=Path, default=Path("device_parity.json"), help="the JSON report")
    for a in actions.choices.values():
        a.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.device import Adb, DeviceError, make_bundle
    from atom_deploy.device.remote import list_devices, push_bundle, push_files, run_runner

    if args.action == "bundle":
        record = make_bundle(args.artifacts, args.out, args.binary)
        size = sum((args.out / f).stat().st_size for f in record["files"])
        print(f"bundle {args.out}: {len(record['files'])} files, {size / 1e6:.1f} MB; on the device: "
              f"cd {record['device_dir']} && {record['run']} caption --artifacts artifacts CLIP.bin")
        return 0
    if args.action == "list":
        for d in list_devices():
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
    if args.action == "serve":
        from atom_deploy.device.resident import ResidentRunner, relay

        with ResidentRunner.on_device(adb) as runner:
            relay(runner, sys.stdin, sys.stdout)
            stats = runner.stats()
        loads = " ".join(f"{module}={n}" for module, n in sorted(stats["loads"].items()))
        print(f"atom_runner serve on {adb.serial}: {stats['requests'] - 1} requests, {stats['errors']} errors, "
              f"loads {loads} ({stats['load_s']:.2f} s)", file=sys.stderr)
        return 0
    if args.action == "parity":
        from atom_deploy.device.parity import device_parity
        from atom_deploy.device.parity_report import table

        try:
            beams = tuple(int(b) for b in args.beams.split(","))
        except ValueError:
            raise DeviceError(f"--beams takes a comma list of 1 and 4, got {args.beams!r}") from None
        report = device_parity(args.serial, args.bundle, args.clips, beams, args.cpu_disable)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(table(report))
        print(f"report: {args.out}")
        if not report["ok"]:
            print(report["message"], file=sys.stderr)
            return 1
        return 0
    raise DeviceError(f"unknown action {args.action}")
