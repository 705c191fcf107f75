"""`atom-deploy` command line: one module per subcommand, registered here.

User errors (AtomError) become one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from importlib import import_module

from atom_runner.errors import AtomError

# subcommand -> module under atom_deploy.cli exposing add_parser(subparsers)
COMMANDS = {
    "export": "export_cmd",
    "inspect": "inspect_cmd",
    "parity": "parity_cmd",
    "caption": "caption_cmd",
    "embed": "embed_cmd",
    "generate": "generate_cmd",
    "latency": "latency_cmd",
    "profile": "profile_cmd",
    "overlap": "overlap_cmd",
    "bench": "bench_cmd",
    "train-demo": "train_demo_cmd",
    "index": "index_cmd",
    "search": "search_cmd",
    "assemble": "assemble_cmd",
    "summarize": "summarize_cmd",
    "ask": "ask_cmd",
    "eval": "eval_cmd",
    "device": "device_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atom-deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        import_module(f"atom_deploy.cli.{module_name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Model weights never come from a hub: make any accidental attempt fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _quiet_toolchains()
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AtomError as exc:
        print(f"atom-deploy {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"atom-deploy {args.command}: interrupted", file=sys.stderr)
        return 130


def _quiet_toolchains() -> None:
    """The exporters' deprecation chatter would bury our progress lines; errors still show."""
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    for name in ("torch", "torchao", "onnxscript", "onnx_ir", "root", "executorch"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
