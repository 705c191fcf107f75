"""atom-deploy bench: ATOM (reuse + overlap) vs a sequential pipeline that loads a model per stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.cli.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help=__doc__.split(": ", 1)[1])
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", default="executorch", help="executorch or onnx")
    p.add_argument("--clips", type=int, default=5, help="clips per run (the paper uses 5)")
    p.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved A B A B")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("results"), help="bench.json, bench.csv, bench.png go here")
    p.add_argument("--overlap", default="auto", help="ATOM's encode/decode overlap: auto, off, thread or process")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.bench.reuse import BenchRequest, run_bench, table_rows
    from atom_runner.errors import AtomError

    if args.clips < 1 or args.repeat < 1:
        raise AtomError("--clips and --repeat must be at least 1")
    request = BenchRequest(args.artifacts, args.backend, args.clips, args.repeat, args.beam, args.out, args.overlap)
    summary = run_bench(request)
    print_table(("metric", "no reuse (s)", "ATOM (s)", "ATOM / no reuse", "saved"), table_rows(summary))
    loads = {v: summary["medians"][v]["loads"] for v in ("no_reuse", "atom")}
    print(f"module loads: no reuse {loads['no_reuse']}, ATOM {loads['atom']}")
    print(f"wrote {args.out / 'bench.json'}, {args.out / 'bench.csv'}, {args.out / 'bench.png'}")
    return 0
