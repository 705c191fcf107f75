"""The evaluation set: demo test clips as encoder tensors, with references and queries.

Each sample carries 5 varied reference captions besides its canonical training target.
The last reference is held out as the retrieval query; captioning is scored against the
other 4. Holding it out keeps retrieval honest: the query is a wording the caption
metrics never saw, and the canonical caption (what the model was trained to write)
is never used as either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom_deploy.demo import make_split
from atom_deploy.demo.scene import Scene
from atom_deploy.video.preprocess import ClipSpec, to_clip_tensor
from atom_runner.errors import AtomError

SPLIT = "test"


@dataclass(frozen=True)
class EvalSample:
    id: str
    canonical: str
    references: tuple[str, ...]  # scored against by the caption metrics
    query: str  # held-out reference, the retrieval query
    scene: Scene  # the ground truth, for the fact check (eval/facts.py)


@dataclass(frozen=True)
class EvalSet:
    samples: tuple[EvalSample, ...]
    clips: tuple[np.ndarray, ...]  # (1, 3, T, S, S) float32, CLIP-normalised
    spec: ClipSpec
    seed: int

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def references(self) -> dict[str, list[str]]:
        return {s.id: list(s.references) for s in self.samples}


def load_eval_set(count: int, seed: int, num_frames: int = 6, size: int = 224, render_size: int | None = None) -> EvalSet:
    """`count` test clips, rendered at the encoder's input size and normalised like at inference.

    Rendered at the encoder's size rather than resized from 224: the demo world draws
    at any size, and the demo model is trained on clips rendered the same way.
    render_size: draw at this size and resize to `size` with the inference preprocessing
    (the clip-size ablation: the same scenes, seen with less detail).
    """
    if count < 1:
        raise AtomError(f"need at least 1 clip, got {count}")
    spec = ClipSpec(num_frames=num_frames, size=size)
    samples, clips = [], []
    for sample in make_split(SPLIT, count, seed, num_frames=num_frames, size=render_size or size):
        *refs, query = sample.captions
        samples.append(EvalSample(sample.id, sample.canonical, tuple(refs), query, sample.scene))
        clips.append(to_clip_tensor(list(sample.frames()), spec))
    return EvalSet(tuple(samples), tuple(clips), spec, seed)


def load_for_shape(count: int, seed: int, clip_shape: tuple[int, ...]) -> EvalSet:
    """Clips for an encoder input of shape (1, 3, T, S, S), as in the manifest."""
    _, _, frames, size, _ = clip_shape
    return load_eval_set(count, seed, num_frames=int(frames), size=int(size))


def for_clip_shape(eval_set: EvalSet, clip_shape: tuple[int, ...]) -> EvalSet:
    """The same samples re-rendered for another encoder input shape (ablation variants)."""
    _, _, frames, size, _ = clip_shape
    if (frames, size) == (eval_set.spec.num_frames, eval_set.spec.size):
        return eval_set
    return load_eval_set(len(eval_set.samples), eval_set.seed, num_frames=int(frames), size=int(size),
                         render_size=eval_set.spec.size)
