"""Stem warm-up: a single-object kind classifier that runs before the full training.

The full training alone never taught the conv stem shapes; this classifier does in a few
minutes, and only the stem's weights carry over. The runs behind it: docs/demo_model.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from atom_deploy.demo import sample_at
from atom_deploy.demo.dataset import Sample
from atom_deploy.demo.vocab import KINDS
from atom_deploy.training.attributes import AttributeProbe
from atom_deploy.video.preprocess import ClipSpec, to_clip_tensor

VALIDATION_CLIPS = 200


@dataclass(frozen=True)
class WarmupTask:
    """What a warm-up classifies: an attribute of the clip's single object, on clips of `frames`."""

    attribute: str  # a SceneObject field
    labels: tuple[str, ...]
    frames: int
    # Far past any main run (steps x caption_batch), so warm-up clips are never training clips.
    first_index: int


# Two frames are one tubelet: a third of a six-frame clip's render for the same stem input.
KIND_TASK = WarmupTask("kind", KINDS, frames=2, first_index=50_000_000)


def single_object_samples(split: str, seed: int, first: int, frames: int, size: int) -> Iterator[Sample]:
    # A scene is sampled in ~1 ms and rendered only when asked, so filtering is cheap.
    index = first
    while True:
        sample = sample_at(split, index, seed, frames, size)
        index += 1
        if len(sample.scene.objects) == 1:
            yield sample


def labelled_batch(samples: list[Sample], task: WarmupTask, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    spec = ClipSpec(task.frames, size)
    clips = np.stack([to_clip_tensor(list(s.frames()), spec)[0] for s in samples])
    labels = torch.tensor([task.labels.index(getattr(s.scene.objects[0], task.attribute)) for s in samples])
    return torch.from_numpy(clips), labels


class LabelledStream(torch.utils.data.IterableDataset):
    def __init__(self, task: WarmupTask, seed: int, steps: int, batch: int, size: int):
        self.task, self.seed, self.steps, self.batch, self.size = task, seed, steps, batch, size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        samples = single_object_samples("train", self.seed, self.task.first_index, self.task.frames, self.size)
        for _ in range(self.steps):
            yield labelled_batch([next(samples) for _ in range(self.batch)], self.task, self.size)


def warm_up(module: nn.Module, width: int, task: WarmupTask, size: int, seed: int, steps: int, batch: int,
            lr: float) -> float:
    """Train `module` (in place) as a classifier of `task`; returns held-out accuracy.

    `module` maps clips [B, 3, T, S, S] to tokens [B, N, width] (the loop passes the conv stem).
    """
    head = AttributeProbe(width, outputs=len(task.labels))
    params = list(module.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    loader = torch.utils.data.DataLoader(LabelledStream(task, seed, steps, batch, size), batch_size=None,
                                         num_workers=1, prefetch_factor=4,
                                         worker_init_fn=lambda _: torch.set_num_threads(1))
    module.train()
    for clips, labels in loader:
        loss = F.cross_entropy(head(module(clips)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    samples = single_object_samples("val", seed, 0, task.frames, size)
    clips, labels = labelled_batch([next(samples) for _ in range(VALIDATION_CLIPS)], task, size)
    with torch.no_grad():
        predicted = torch.cat([head(module(part)).argmax(-1) for part in clips.split(50)])
    return float((predicted == labels).float().mean())
