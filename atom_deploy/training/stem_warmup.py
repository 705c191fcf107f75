"""Stem warm-up: teach the conv stem object kinds before the full model trains.

Inside the full training the stem never learned shapes: after 2,100 steps a linear probe
on the previous model's visual prefix found object kind at 19% (chance 14%). Trained
alone on the scene's yes/no facts, on clips of one to three objects or of one, or with a
softmax over the kinds present, the stem was still at 11-22% after 200-300 steps. With a
softmax over the kind of a single object, it reaches ~89% held-out in 200 steps of 32
two-frame clips. So the loop first runs that classifier for a few minutes; the stem then
starts the full training with shape filters that the caption loss can use. The classifier
head is dropped; only the stem's weights carry over. Clips come from a range of train
indices that the main loop never reaches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from atom_deploy.demo import sample_at
from atom_deploy.demo.dataset import Sample
from atom_deploy.demo.vocab import KINDS
from atom_deploy.training.attributes import AttributeProbe
from atom_deploy.video.preprocess import ClipSpec, to_clip_tensor

# Far past any main run (steps x caption_batch), so warm-up clips are never training clips.
FIRST_INDEX = 50_000_000
WARMUP_FRAMES = 2  # one tubelet: a third of a 6-frame clip's render for the same stem input
VALIDATION_CLIPS = 200


def single_object_samples(split: str, seed: int, first: int, size: int) -> Iterator[Sample]:
    # A scene is sampled in ~1 ms and rendered only when asked, so filtering is cheap.
    index = first
    while True:
        sample = sample_at(split, index, seed, WARMUP_FRAMES, size)
        index += 1
        if len(sample.scene.objects) == 1:
            yield sample


def kind_batch(samples: list[Sample], spec: ClipSpec) -> tuple[torch.Tensor, torch.Tensor]:
    clips = np.stack([to_clip_tensor(list(s.frames()), spec)[0] for s in samples])
    kinds = torch.tensor([KINDS.index(s.scene.objects[0].kind) for s in samples])
    return torch.from_numpy(clips), kinds


class KindStream(torch.utils.data.IterableDataset):
    def __init__(self, seed: int, steps: int, batch: int, size: int):
        self.seed, self.steps, self.batch, self.size = seed, steps, batch, size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        samples = single_object_samples("train", self.seed, FIRST_INDEX, self.size)
        spec = ClipSpec(WARMUP_FRAMES, self.size)
        for _ in range(self.steps):
            yield kind_batch([next(samples) for _ in range(self.batch)], spec)


def warm_up_stem(stem: nn.Module, width: int, size: int, seed: int, steps: int, batch: int, lr: float) -> float:
    """Train `stem` (in place) to tell object kinds apart; returns held-out kind accuracy."""
    head = AttributeProbe(width, hidden=512)
    # A softmax over kinds, not the yes/no facts. The head is built whole and its last layer
    # swapped, so the global RNG draws stay those that trained the shipped weights.
    head.net[-1] = nn.Linear(512, len(KINDS))
    params = list(stem.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    loader = torch.utils.data.DataLoader(KindStream(seed, steps, batch, size), batch_size=None, num_workers=1,
                                         prefetch_factor=4, worker_init_fn=lambda _: torch.set_num_threads(1))
    stem.train()
    for clips, kinds in loader:
        loss = F.cross_entropy(head(stem(clips)), kinds)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    samples = single_object_samples("val", seed, 0, size)
    clips, kinds = kind_batch([next(samples) for _ in range(VALIDATION_CLIPS)], ClipSpec(WARMUP_FRAMES, size))
    with torch.no_grad():
        predicted = torch.cat([head(stem(part)).argmax(-1) for part in clips.split(50)])
    return float((predicted == kinds).float().mean())
