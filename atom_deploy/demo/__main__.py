"""Inputs to try the CLI on: `python -m atom_deploy.demo OUT [--artifacts DIR]`.

Writes OUT/demo.mp4 (scenes of the demo world, 10 s each, the world the demo model was
trained on) and, with --artifacts, OUT/clip.npy: one clip tensor at those artifacts' clip
shape, for `atom-deploy caption`. Prints what it wrote, with each scene's caption.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from atom_deploy.demo.scene import sample_scene
from atom_deploy.demo.video_file import write_video
from atom_runner.errors import AtomError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atom_deploy.demo", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for demo.mp4 (and clip.npy)")
    parser.add_argument("--artifacts", type=Path, help="an export: also write clip.npy at its clip shape")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        video = args.out / "demo.mp4"
        for start, end, caption in write_video(video, [sample_scene(rng) for _ in range(args.scenes)], seed=args.seed):
            print(f"{video} {start:4.0f}-{end:.0f} s: {caption}")
        if args.artifacts:
            from atom_deploy.bench.reuse import make_clips
            from atom_runner.manifest import open_artifacts

            clip = make_clips(open_artifacts(args.artifacts).root, 1, args.seed)[0]
            np.save(args.out / "clip.npy", clip)
            print(f"{args.out / 'clip.npy'}: clip tensor {list(clip.shape)}")
    except AtomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
