"""Arguments shared by the commands that run exported artifacts through a Session."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def add_session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", default=None, help="executorch or onnx (default: the folder's; in an export root, executorch if exported)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def open_session(args: argparse.Namespace, overlap: str = "off"):
    from atom_runner.session import Session

    # where the artifacts are: atom_runner.manifest.artifact_folders, the one rule
    return Session(args.artifacts, backend=args.backend, overlap=overlap)


def emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    print(json.dumps(payload, ensure_ascii=False) if args.json else text)


def show_warnings_as_notes() -> None:
    """Runner warnings (e.g. a truncated prompt) become one `note:` line on stderr; the
    others are shown only with --verbose."""
    from atom_runner.runtimes.quiet import verbose
    from atom_runner.session import PromptTruncatedWarning

    warnings.resetwarnings()
    warnings.simplefilter("default" if verbose() else "ignore")
    warnings.simplefilter("always", PromptTruncatedWarning)
    warnings.showwarning = lambda message, *rest: print(f"note: {message}", file=sys.stderr)
