"""`atom-deploy` command line: one module per subcommand, registered here.

User errors (AtomError) become one line on stderr and exit code 1, never a traceback.
What the user cannot act on (toolchain warnings, runtime logs) stays off the terminal
unless --verbose (or ATOM_VERBOSE=1) asks for it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from importlib import import_module

from atom_runner.errors import AtomError
from atom_runner.runtimes.quiet import set_verbose, verbose

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
    "serve": "serve_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atom-deploy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        import_module(f"atom_deploy.cli.{module_name}").add_parser(sub)
    _add_verbose(parser, top=True)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--verbose on the top level and on every (sub)command, so it goes anywhere on the line.
    Below the top, SUPPRESS: a subcommand's default must not reset a --verbose given before it."""
    parser.add_argument("--verbose", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="also show runtime and toolchain logs (warnings, ExecuTorch and ONNX Runtime lines)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child)


def main(argv: list[str] | None = None) -> int:
    # Model weights never come from a hub: make any accidental attempt fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    quiet = not verbose()
    if quiet:  # before the parser: building it imports torch, whose import may warn
        _quiet_toolchains()
    args = build_parser().parse_args(argv)
    if args.verbose and quiet:
        set_verbose()
        _unquiet_toolchains()
    try:
        return int(args.run(args) or 0)
    except AtomError as exc:
        print(f"atom-deploy {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"atom-deploy {args.command}: interrupted", file=sys.stderr)
        return 130


def _quiet_toolchains() -> None:
    """The exporters' deprecation chatter would bury our progress lines and one-line errors.

    logging.disable rather than logger levels: torch sets its own loggers' levels when it
    is imported (torch._logging), after anything set here, and then its pytree and
    torch.onnx warnings ('torchvision is not installed') would print. Errors still show."""
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def _unquiet_toolchains() -> None:
    warnings.resetwarnings()
    logging.disable(logging.NOTSET)


if __name__ == "__main__":
    sys.exit(main())
