"""atom-deploy embed: MiniLM sentence embeddings of texts, from the exported minilm module."""

from __future__ import annotations

import argparse

from atom_deploy.cli.runner_args import add_session_args, emit, open_session


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    p.add_argument("texts", nargs="+", help="texts to embed")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with open_session(args) as session:
        vectors = session.embed(args.texts)
    for text, vector in zip(args.texts, vectors):
        preview = " ".join(f"{x:+.4f}" for x in vector[:6])
        emit(args, {"text": text, "embedding": [float(x) for x in vector]}, f"[{preview} ...] {text}")
    return 0
