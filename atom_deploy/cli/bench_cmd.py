"""atom-deploy bench: ATOM (reuse + overlap) vs a sequential pipeline that loads a model per stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help=__doc__.split(": ", 1)[1])
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", default="executorch", help="executorch or onnx")
    p.add_argument("--clips", type=int, default=5, help="clips per run (the paper uses 5)")
    p.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved A B A B")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("results"), help="bench.json, bench.csv, bench.png go here")
    p.add_argument("--overlap", default="auto", help="ATOM's encode/decode overlap: auto, off, thread or process")
    d = p.add_argument_group("device", "run both variants with the C++ runner on a phone over adb instead")
    d.add_argument("--device", action="store_true", help="bench on the device (needs atom-deploy device bundle)")
    d.add_argument("--serial", help="which device, when several are connected")
    d.add_argument("--bundle", type=Path, default=Path("build") / "device-bundle", help="the device bundle folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.bench.reuse import BenchRequest, run_bench, table_rows
    from atom_runner.errors import AtomError

    if args.clips < 1 or args.repeat < 1:
        raise AtomError("--clips and --repeat must be at least 1")
    if args.device:
        from atom_deploy.bench.device import DeviceBenchRequest, run_device_bench

        summary = run_device_bench(DeviceBenchRequest(args.bundle, args.serial, args.clips, args.repeat, args.beam, args.out))
    else:
        request = BenchRequest(args.artifacts, args.backend, args.clips, args.repeat, args.beam, args.out, args.overlap)
        summary = run_bench(request)
    print_table(("metric", "no reuse (s)", "ATOM (s)", "ATOM / no reuse", "saved"), table_rows(summary))
    loads = {v: summary["medians"][v]["loads"] for v in ("no_reuse", "atom")}
    print(f"module loads: no reuse {loads['no_reuse']}, ATOM {loads['atom']}")
    print(f"wrote {args.out / 'bench.json'}, {args.out / 'bench.csv'}, {args.out / 'bench.png'}")
    return 0
