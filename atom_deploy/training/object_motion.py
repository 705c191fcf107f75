"""A training-only probe that asks the encoder what each object, named by its colour, does.

A pooled reader (attributes.motion_loss, the attribute probe) cannot say whose motion it
sees, so objects that share a clip got their motions wrong (docs/demo_model.md). Here the
object's colour is the query of an attention read over the visual tokens, so the loss asks the encoder to keep each
object's motion where a reader looking for that colour finds it, as a caption of several
objects has to. Like every probe it is dropped after training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.demo.scene import Scene
from atom_deploy.demo.vocab import MAX_OBJECTS, MOTIONS, OBJECT_COLOURS

NO_OBJECT = -100  # F.cross_entropy's default ignore_index: a clip's unused object slots
_COLOURS = tuple(OBJECT_COLOURS)


def object_motions(scene: Scene) -> Tensor:
    """[MAX_OBJECTS, 2] int64 rows of (colour index, motion index); unused rows are (0, NO_OBJECT)."""
    rows = torch.tensor([[0, NO_OBJECT]] * MAX_OBJECTS)
    for slot, o in enumerate(scene.objects):
        rows[slot] = torch.tensor([_COLOURS.index(o.colour), MOTIONS.index(o.motion)])
    return rows


class ObjectMotionProbe(nn.Module):
    """visual tokens [B, N, D] and colour indices [B, K] -> motion logits [B, K, len(MOTIONS)]."""

    def __init__(self, dim: int, heads: int = 4, hidden: int = 512):
        super().__init__()
        self.colour = nn.Embedding(len(_COLOURS), dim)
        self.norm = nn.LayerNorm(dim)
        self.read = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, len(MOTIONS)))

    def forward(self, prefix: Tensor, colours: Tensor) -> Tensor:
        tokens = self.norm(prefix)
        found, _ = self.read(self.colour(colours), tokens, tokens, need_weights=False)
        return self.head(found)


def object_motion_loss(probe: ObjectMotionProbe, prefix: Tensor, objects: Tensor) -> Tensor:
    # objects: [B, MAX_OBJECTS, 2] from object_motions; a mean over every object in the batch
    logits = probe(prefix, objects[..., 0])
    return F.cross_entropy(logits.flatten(0, 1), objects[..., 1].flatten(), ignore_index=NO_OBJECT)
