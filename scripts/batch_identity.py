"""Does a caption depend on which clips shared its batch? Decodes demo-world clips alone and
batched (Session.decode_batch, as captioning batches them) and lists every clip whose
tokens differ.

    .venv/bin/python scripts/batch_identity.py artifacts/executorch --clips 100 [--beam 1 4]

Prints one line per (beam) with the count of identical clips, then each difference with
its first differing step; `--out FILE` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from atom_deploy.bench.reuse import make_clips
from atom_runner.session import Session


def first_difference(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(session: Session, prefixes: np.ndarray, beam: int) -> dict:
    alone = [session.decode_ids([], prefix[None], beam=beam) for prefix in prefixes]
    per_batch = session.clips_per_batch(beam)
    batched = []
    for start in range(0, len(prefixes), per_batch):
        batched += session.decode_batch([], prefixes[start : start + per_batch], beam=beam)
    differences = [
        {"clip": i, "first_step": first_difference(a, b), "alone": session.tokenizer.decode(a),
         "batched": session.tokenizer.decode(b)}
        for i, (a, b) in enumerate(zip(alone, batched)) if a != b
    ]
    return {"beam": beam, "clips_per_batch": per_batch, "identical": len(alone) - len(differences),
            "clips": len(alone), "differences": differences}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, help="a backend folder (OUT/<backend>)")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--beam", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with Session(args.artifacts, overlap="off") as session:
        clips = make_clips(session.manifest.root, args.clips, seed=7)
        prefixes = np.concatenate([session.encode(clip) for clip in clips])
        results = [compare(session, prefixes, beam) for beam in args.beam]
        for r in results:
            print(f"{session.backend} beam {r['beam']} ({r['clips_per_batch']} clips a batch): "
                  f"{r['identical']}/{r['clips']} clips identical")
            for d in r["differences"]:
                print(f"  clip {d['clip']} differs from step {d['first_step']}: {d['alone']!r} / {d['batched']!r}")
    if args.out:
        args.out.write_text(json.dumps({"artifacts": str(args.artifacts), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
