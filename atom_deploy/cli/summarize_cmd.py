"""atom-deploy summarize: caption a video's clips, then summarize them with the same decoder."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from atom_deploy.cli.pipeline_args import add_clip_args, add_index_arg, note, open_index
from atom_deploy.cli.runner_args import add_session_args, emit, open_session, show_warnings_as_notes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summarize", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    add_index_arg(p, required=False)
    add_clip_args(p)
    p.add_argument("video", type=Path, help="the video file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.pipelines.qa import CaptionOptions, summarize

    show_warnings_as_notes()
    options = CaptionOptions(args.window, args.stride, args.beam, args.progress)
    with open_session(args, overlap="auto") as session:
        with open_index(args.index, session) if args.index else nullcontext() as index:
            result = summarize(session, args.video, index, options)
    emit(args, result.as_dict(), result.text)
    note(result.note)
    return 0
