"""Seeded splits of the demo world: clips with captions, and text-task examples.

Every sample is derived on its own from (seed, split, stream, index) through numpy's
SeedSequence, so splits never share a random stream, sample i is the same whichever
range is asked for, and a given seed always gives the same bytes. Frames are rendered
on request (`Sample.frames()`): a split of thousands of clips costs no memory up front.
Caption strings can still repeat across splits, as in any real dataset; the scenes
(positions included) do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from atom_deploy.demo.captions import canonical_caption, captions
from atom_deploy.demo.render import render_clip
from atom_deploy.demo.scene import Scene, sample_scene
from atom_deploy.demo.tasks import TextExample, assembly_example, qa_example, summary_example
from atom_runner.errors import AtomError

SPLITS = {"train": 0, "val": 1, "test": 2}  # the code mixed into every sample's seed
_CLIP_STREAM = 0
_TEXT_STREAM = 1
REFERENCE_CAPTIONS = 5
TEXT_TASKS = ("assembly", "summary", "qa")


@dataclass(frozen=True)
class Sample:
    id: str
    scene: Scene
    canonical: str  # the training target
    captions: tuple[str, ...]  # varied references, for evaluation
    render_seed: int  # pixel-noise seed for frames()
    num_frames: int
    size: int

    def frames(self) -> np.ndarray:
        """uint8 (num_frames, size, size, 3), rendered now and not cached."""
        return render_clip(self.scene, self.num_frames, self.size, self.render_seed)


def make_split(name: str, count: int, seed: int, num_frames: int = 6, size: int = 224) -> Iterator[Sample]:
    _sequence(name, seed, _CLIP_STREAM, 0)  # bad arguments fail here, not at the first next()
    return (sample_at(name, index, seed, num_frames, size) for index in range(count))


def sample_at(name: str, index: int, seed: int, num_frames: int = 6, size: int = 224) -> Sample:
    scene_seq, caption_seq, noise_seq = _sequence(name, seed, _CLIP_STREAM, index).spawn(3)
    scene = sample_scene(np.random.default_rng(scene_seq))
    return Sample(
        id=f"{name}-{seed}-{index:06d}",
        scene=scene,
        canonical=canonical_caption(scene),
        captions=tuple(captions(scene, np.random.default_rng(caption_seq), REFERENCE_CAPTIONS)),
        render_seed=int(noise_seq.generate_state(1)[0]),
        num_frames=num_frames,
        size=size,
    )


def make_text_examples(
    name: str, count: int, seed: int, clips_per_example: tuple[int, int] = (2, 3)
) -> Iterator[tuple[str, TextExample]]:
    """(task, example) pairs over canonical captions of fresh scenes from this split.

    Canonical captions, because at inference the lists come from the captioner, which
    is trained to write them. Tasks rotate so each gets a third of the examples. At most
    3 clips by default: input plus target then stays under ~110 tokens of a small BPE,
    inside a 128-token decoder context; 4 clips can run past it.
    """
    low, high = clips_per_example
    if not 1 <= low <= high:
        raise AtomError(f"clips_per_example must be 1 <= low <= high, got {clips_per_example}")
    _sequence(name, seed, _TEXT_STREAM, 0)
    return _text_examples(name, count, seed, low, high)


def _text_examples(name: str, count: int, seed: int, low: int, high: int) -> Iterator[tuple[str, TextExample]]:
    for index in range(count):
        yield text_example_at(name, index, seed, (low, high))


def text_example_at(name: str, index: int, seed: int, clips_per_example: tuple[int, int] = (2, 3)) -> tuple[str, TextExample]:
    """Text example `index` of a split on its own: the same whichever range is asked for."""
    low, high = clips_per_example
    rng = np.random.default_rng(_sequence(name, seed, _TEXT_STREAM, index))
    clip_captions = [canonical_caption(sample_scene(rng)) for _ in range(int(rng.integers(low, high + 1)))]
    task = TEXT_TASKS[index % len(TEXT_TASKS)]
    if task == "assembly":
        return task, assembly_example(clip_captions, None, rng)
    if task == "summary":
        return task, summary_example(clip_captions)
    return task, qa_example(clip_captions, rng)


def _sequence(name: str, seed: int, stream: int, index: int) -> np.random.SeedSequence:
    if name not in SPLITS:
        raise AtomError(f"unknown split {name!r}; valid splits: {sorted(SPLITS)}")
    if seed < 0 or index < 0:
        raise AtomError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.SeedSequence([seed, SPLITS[name], stream, index])
