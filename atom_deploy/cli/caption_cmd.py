"""atom-deploy caption: caption clip tensors (.npy, shape [1,3,T,H,W]) with the exported modules."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from atom_deploy.cli.runner_args import add_session_args, emit, open_session
from atom_runner.errors import AtomError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("caption", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    p.add_argument("--beam", type=int, default=4, help="beam width (1: greedy; the paper's default is 4)")
    p.add_argument("clips", nargs="+", type=Path, help="clip tensors saved with numpy.save")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    clips = [_load_clip(path) for path in args.clips]
    with open_session(args, overlap="auto" if len(clips) > 1 else "off") as session:
        captions = session.caption(clips, beam=args.beam)
    for path, caption in zip(args.clips, captions):
        emit(args, {"clip": str(path), "caption": caption, "beam": args.beam}, f"{path}: {caption}")
    return 0


def _load_clip(path: Path) -> np.ndarray:
    if path.suffix != ".npy":
        raise AtomError(f"{path}: expected a .npy clip tensor (video files go through `atom-deploy index`)")
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise AtomError(f"clip file not found: {path}") from None
    except (ValueError, OSError) as exc:
        raise AtomError(f"{path} is not a readable .npy tensor: {exc}") from None
