"""atom-deploy generate: text-only generation on the same decoder (scripts, summaries, answers)."""

from __future__ import annotations

import argparse

from atom_deploy.cli.runner_args import add_session_args, emit, open_session, show_warnings_as_notes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    p.add_argument("--steps", type=int, default=None, help="decode steps (default: the manifest's)")
    p.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    p.add_argument("prompt", help="the prompt text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    show_warnings_as_notes()
    with open_session(args) as session:
        text = session.generate(args.prompt, steps=args.steps, beam=args.beam)
    emit(args, {"prompt": args.prompt, "text": text}, text)
    return 0
