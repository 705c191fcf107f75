"""atom-deploy overlap: measure caption_stream's encode/decode overlap against its ideal bound."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from atom_deploy.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("overlap", help=__doc__.split(": ", 1)[1])
    p.add_argument("--artifacts", type=Path, required=True, help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", action="append", default=None,
                   help="executorch and/or onnx (repeatable; default: each the folder holds)")
    p.add_argument("--clips", type=int, default=5)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="runtime threads per module (default: runtime's)")
    p.add_argument("--out", type=Path, default=None, help="write JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.bench.overlap import measure_overlap
    from atom_runner.manifest import artifact_folders, load_manifest

    # Default: the backends the folder holds (a backend folder holds one; an export root, each it has).
    backends = args.backend or [load_manifest(folder).backend for folder in artifact_folders(args.artifacts)]
    rows, results = [], []
    for backend in backends:
        for mode in ("thread", "process"):
            r = measure_overlap(args.artifacts, backend, args.clips, args.beam, mode, args.threads)
            results.append(r)
            rows.append((backend, mode, f"{r['sum_encode_s']:.2f}", f"{r['sum_decode_s']:.2f}", f"{r['sequential_s']:.2f}",
                         f"{r['overlapped_s']:.2f}", f"{r['ideal_s']:.2f}", f"{r['speedup']:.2f}x", f"{r['vs_ideal']:.2f}"))
    print_table(("backend", "overlap", "Σencode s", "Σdecode s", "sequential s", "caption_stream s",
                 "ideal max(Σ) s", "speedup", "/ ideal"), rows)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0
