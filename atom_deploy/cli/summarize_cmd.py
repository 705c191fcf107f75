"""atom-deploy summarize: caption a video's clips, then summarize them with the same decoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.cli.pipeline_args import add_clip_args, add_index_arg, answer_about_video
from atom_deploy.cli.runner_args import add_session_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summarize", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    add_index_arg(p, required=False)
    add_clip_args(p)
    p.add_argument("video", type=Path, help="the video file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.pipelines.qa import summarize

    return answer_about_video(args, lambda session, index, options: summarize(session, args.video, index, options))
