"""atom-deploy parity: eager fp32, eager quantized (int8, and 8da4w when exported) and each exported backend on the same seeded inputs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atom_deploy.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help=__doc__.split(": ", 1)[1])
    p.add_argument("folder", type=Path, help="an export folder (OUT or OUT/<backend>)")
    p.add_argument("--json", type=Path, default=None, help="where to write the JSON report (default: FOLDER/parity.json)")
    p.add_argument("--lm-tokens", type=int, default=None,
                   help="tokens of the shipped text each quantized decoder is scored on against eager fp32 "
                        "(top-1, KL, perplexity; default 2048, 0: skip)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.parity.lm_fidelity import DEFAULT_TOKENS
    from atom_deploy.parity.run import rows_to_json, run_parity
    from atom_runner.errors import AtomError

    lm_tokens = DEFAULT_TOKENS if args.lm_tokens is None else args.lm_tokens
    if lm_tokens < 0:
        raise AtomError(f"--lm-tokens must be 0 or more, got {lm_tokens}")
    rows = run_parity(args.folder, lm_tokens)
    table = []
    for r in rows:
        gate = "-" if r.threshold is None else (f">= {r.threshold:g}" if r.higher_is_better else f"<= {r.threshold:g}")
        diverge = "" if r.first_divergence is None else str(r.first_divergence)
        table.append((r.module, r.run, r.reference, r.metric, f"{r.value:.6g}", gate, diverge, "ok" if r.passed else "FAIL"))
    print_table(("module", "run", "vs", "metric", "value", "threshold", "first diff", "result"), table)
    out = args.json or args.folder / "parity.json"
    out.write_text(json.dumps(rows_to_json(rows), indent=2) + "\n", encoding="utf-8")
    failed = [r for r in rows if not r.passed]
    print(f"wrote {out}; {len(rows) - len(failed)} passed, {len(failed)} failed")
    if failed:
        names = "; ".join(f"{r.run} {r.metric} {r.value:.4g} {'<' if r.higher_is_better else '>'} {r.threshold:g}"
                          for r in failed)
        print(f"atom-deploy parity: error: {len(failed)} check(s) failed: {names}", file=sys.stderr)
    return 1 if failed else 0
