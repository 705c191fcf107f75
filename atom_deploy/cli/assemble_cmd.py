"""atom-deploy assemble: make a reel (mp4 + JSON script) of the clips that best fit a prompt."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from atom_deploy.cli.pipeline_args import add_clip_args, add_index_arg, note, open_index, report_skipped, seconds_span
from atom_deploy.cli.runner_args import add_session_args, emit, open_session, show_warnings_as_notes
from atom_runner.errors import AtomError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assemble", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    add_index_arg(p, required=False)
    add_clip_args(p)
    p.add_argument("-k", type=int, default=5, help="clips offered to the script writer (default 5)")
    p.add_argument("-o", "--out", type=Path, default=Path("reel.mp4"), help="the reel (default reel.mp4); the script goes beside it as .json")
    p.add_argument("--size", default="640x360", help="reel WIDTHxHEIGHT, even numbers (default 640x360)")
    p.add_argument("--fps", type=int, default=25, help="reel frame rate (default 25)")
    p.add_argument("prompt", help="what the reel should show")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files, or folders searched for videos")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.pipelines.assemble import assemble
    from atom_deploy.pipelines.stitch import ReelFormat

    show_warnings_as_notes()
    fmt = ReelFormat(*_size(args.size), fps=args.fps)
    with tempfile.TemporaryDirectory(prefix="atom-assemble-") as scratch:
        # Without --index the clips are indexed into a throwaway file: same code path, nothing kept.
        index_path = args.index or Path(scratch) / "index.sqlite"
        with open_session(args, overlap="auto") as session, open_index(index_path, session) as index:
            reel = assemble(
                session, index, args.prompt, args.inputs, args.out, args.k, fmt,
                args.window, args.stride, args.beam, progress=args.progress,
            )
    lines = [f"{reel.video}: {reel.duration_s:.2f} s, {len(reel.clips)} clips ({reel.script_source} order); script: {reel.script_file}"]
    lines += [f"  {c.order}. {c.source}  {seconds_span(c.start_s, c.end_s)}  {c.narration}" for c in reel.clips]
    emit(args, reel.as_dict(), "\n".join(lines))
    note(reel.note)
    report_skipped("assemble", reel.index_report.skipped)
    return 0


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise AtomError(f"--size must look like 640x360, got {text!r}")
    return int(width), int(height)
