"""Arguments and helpers shared by the video pipeline commands (index, search, assemble, summarize, ask)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atom_runner.session import Session


def add_index_arg(p: argparse.ArgumentParser, required: bool) -> None:
    help_text = "the SQLite index file" + ("" if required else " (reuse its captions; the video is indexed into it first)")
    p.add_argument("--index", type=Path, required=required, default=None, help=help_text)


def add_clip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=float, default=10.0, help="clip window in seconds (default 10)")
    p.add_argument("--stride", type=float, default=5.0, help="seconds between clip starts (default 5)")
    p.add_argument("--beam", type=int, default=4, help="caption beam width (default 4, the paper's)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")


def open_index(index_path: Path, session: Session, create: bool = True):
    from atom_deploy.pipelines.index_db import ClipIndex
    from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256

    return ClipIndex(index_path, manifest_sha256(session), artifacts_label(session), create=create)


def answer_about_video(args: argparse.Namespace, task, extra: dict | None = None) -> int:
    """summarize / ask: caption the video's clips (through --index when given), then run
    `task(session, index, options)` on the same decoder and print its answer."""
    from contextlib import nullcontext

    from atom_deploy.cli.runner_args import emit, open_session, show_warnings_as_notes
    from atom_deploy.pipelines.qa import CaptionOptions

    show_warnings_as_notes()
    options = CaptionOptions(args.window, args.stride, args.beam, args.progress)
    with open_session(args, overlap="auto") as session:
        with open_index(args.index, session) if args.index else nullcontext() as index:
            result = task(session, index, options)
    emit(args, {**result.as_dict(), **(extra or {})}, result.text)
    note(result.note)
    return 0


def note(message: str | None) -> None:
    if message:
        print(f"note: {message}", file=sys.stderr)


def report_skipped(command: str, skipped: list[tuple[str, str]]) -> None:
    """The files a batch left out, at the end where they are seen, one line each."""
    if skipped:
        print(f"atom-deploy {command}: skipped {len(skipped)} file(s):", file=sys.stderr)
        for _, reason in skipped:
            print(f"  {reason}", file=sys.stderr)  # every reason names its file


def seconds_span(start_s: float, end_s: float) -> str:
    return f"{start_s:.1f}\u2013{end_s:.1f} s"
