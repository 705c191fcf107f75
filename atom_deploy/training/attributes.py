"""A training-only probe that asks the encoder directly what the scene holds.

Captioning from scratch stalls: while the decoder still attends evenly over the visual
tokens, their average dilutes a 30-pixel object to nothing, so the caption loss gives the
encoder almost no signal about objects (docs/demo_model.md has the run without it). This
probe reads the visual prefix with mean and max pooling, so one patch can carry a whole
answer, and predicts the scene's facts as independent yes/no targets. The binding targets
(colour+kind, colour+motion) teach which attributes belong together, which captions
of several objects need. The probe is discarded after training: the shipped model and
every export are exactly the encoder + decoder the caption loss trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.demo.scene import Scene
from atom_deploy.demo.vocab import BACKGROUND_COLOURS, BACKGROUND_KINDS, KINDS, MOTIONS, OBJECT_COLOURS, SIZE_RADII


def _attribute_names() -> tuple[str, ...]:
    names = [f"colour={c}" for c in OBJECT_COLOURS]
    names += [f"kind={k}" for k in KINDS]
    names += [f"motion={m}" for m in MOTIONS]
    names += [f"{c}+{k}" for c in OBJECT_COLOURS for k in KINDS]
    names += [f"{c}+{m}" for c in OBJECT_COLOURS for m in MOTIONS]
    names += [f"{c}+{s}" for c in OBJECT_COLOURS for s in SIZE_RADII]
    names += [f"objects={n}" for n in (1, 2, 3)]
    names += [f"background={c}" for c in BACKGROUND_COLOURS]
    names += [f"background={k}" for k in BACKGROUND_KINDS]
    names += ["camera_pan"]
    return tuple(names)


ATTRIBUTES = _attribute_names()
_INDEX = {name: i for i, name in enumerate(ATTRIBUTES)}


def scene_attributes(scene: Scene) -> list[str]:
    """The names in ATTRIBUTES that are true of `scene`."""
    facts = [f"objects={len(scene.objects)}", f"background={scene.background.colour}", f"background={scene.background.kind}"]
    for o in scene.objects:
        facts += [f"colour={o.colour}", f"kind={o.kind}", f"motion={o.motion}",
                  f"{o.colour}+{o.kind}", f"{o.colour}+{o.motion}", f"{o.colour}+{o.size}"]
    if scene.camera_pan:
        facts.append("camera_pan")
    return facts


def attribute_vector(scene: Scene) -> Tensor:
    target = torch.zeros(len(ATTRIBUTES))
    target[[_INDEX[name] for name in scene_attributes(scene)]] = 1.0
    return target


class AttributeProbe(nn.Module):
    """visual tokens [B, N, D] -> `outputs` logits: by default one per name in ATTRIBUTES.

    The stem warm-up and the motion term use the same pooled reader with a softmax over
    one attribute (kinds, motions) instead.
    """

    def __init__(self, dim: int, hidden: int = 512, outputs: int = len(ATTRIBUTES)):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(2 * dim), nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, outputs))

    def forward(self, prefix: Tensor) -> Tensor:
        return self.net(torch.cat([prefix.mean(dim=1), prefix.amax(dim=1)], dim=-1))


def attribute_loss(probe: nn.Module, prefix: Tensor, targets: Tensor) -> Tensor:
    # Summed over attributes, averaged over clips: each fact pulls on the encoder like one
    # caption token does (a mean over ~200 mostly-false facts would give it 1/200 of that).
    return F.binary_cross_entropy_with_logits(probe(prefix), targets, reduction="sum") / targets.shape[0]


# The motion term's label of a clip with more than one object: which motion a caption of
# several objects names first is a matter of word order, not of what the encoder sees.
NO_SINGLE_MOTION = -100  # F.cross_entropy's default ignore_index


def single_object_motion(scene: Scene) -> int:
    """Index in MOTIONS of the one object's motion, or NO_SINGLE_MOTION."""
    return MOTIONS.index(scene.objects[0].motion) if len(scene.objects) == 1 else NO_SINGLE_MOTION


def motion_loss(probe: nn.Module, prefix: Tensor, motions: Tensor) -> Tensor:
    # A softmax over the single object's motion, all through training: the caption loss
    # alone left direction unread (captions said "moves up" for most moving objects).
    # Batches without a single-object clip contribute zero (a mean over no clips is NaN).
    labelled = motions != NO_SINGLE_MOTION
    if not labelled.any():
        return prefix.sum() * 0.0
    return F.cross_entropy(probe(prefix[labelled]), motions[labelled])
