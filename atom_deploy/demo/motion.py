"""Where each object is at clip time t: the single trajectory both renderer and sampler use.

Time is normalised: t = 0 is the start of the ~10 s clip and t = 1 its end. A frame
shows the centre of its slice of the clip, so T frames sit at (i + 0.5) / T. The
sampler checks trajectories (not just start points) for overlap and frame exits, so
what a caption promises stays visible for the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from atom_deploy.demo.vocab import MOTIONS, SIZE_RADII, require_name

if TYPE_CHECKING:
    from atom_deploy.demo.scene import SceneObject

# Tuned so the change between the first and last of 6 frames is obvious at 112 px.
MOVE_DISTANCE = 0.5  # fraction of the stage travelled by "moves left/right/up/down"
BOUNCE_HEIGHT = 0.3  # fraction of the stage a bounce rises above its resting point
BOUNCES_PER_CLIP = 2  # with 6 frames at slice centres, 2 bounces never alias to "still"
GROW_FACTOR = 1.8
SHRINK_FACTOR = 0.45
# 270 degrees: 45 degrees between neighbouring frames of a 6-frame clip, the largest
# visible step for the 4-fold symmetric square and cross.
SPIN_RADIANS = 1.5 * math.pi
APPEAR_AT = 0.5  # "appears"/"disappears" switch halfway through the clip


@dataclass(frozen=True)
class ObjectState:
    # All in fractions of the stage: the centred square of the frame (render.stage).
    x: float  # centre, 0 = left
    y: float  # centre, 0 = top
    radius: float
    angle: float  # radians, counter-clockwise
    visible: bool


def frame_times(num_frames: int) -> np.ndarray:
    """Normalised times of `num_frames` evenly spaced frames: slice centres of the clip."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return (np.arange(num_frames, dtype=np.float64) + 0.5) / num_frames


def motion_offset(motion: str, t: float) -> tuple[float, float, float, float, bool]:
    """(dx, dy, scale, angle, visible) of `motion` at time t, relative to the start."""
    require_name(motion, MOTIONS, "motion")
    dx = dy = angle = 0.0
    scale = 1.0
    visible = True
    if motion == "moves left":
        dx = -MOVE_DISTANCE * t
    elif motion == "moves right":
        dx = MOVE_DISTANCE * t
    elif motion == "moves up":
        dy = -MOVE_DISTANCE * t
    elif motion == "moves down":
        dy = MOVE_DISTANCE * t
    elif motion == "bounces":
        dy = -BOUNCE_HEIGHT * abs(math.sin(math.pi * BOUNCES_PER_CLIP * t))
    elif motion == "grows":
        scale = 1.0 + (GROW_FACTOR - 1.0) * t
    elif motion == "shrinks":
        scale = 1.0 + (SHRINK_FACTOR - 1.0) * t
    elif motion == "spins":
        angle = SPIN_RADIANS * t
    elif motion == "appears":
        visible = t >= APPEAR_AT
    elif motion == "disappears":
        visible = t < APPEAR_AT
    return dx, dy, scale, angle, visible


def object_state(obj: SceneObject, t: float) -> ObjectState:
    dx, dy, scale, angle, visible = motion_offset(obj.motion, t)
    return ObjectState(
        x=obj.start[0] + dx,
        y=obj.start[1] + dy,
        radius=SIZE_RADII[obj.size] * scale,
        angle=angle,
        visible=visible,
    )


def motion_extent(motion: str, steps: int = 41) -> tuple[float, float, float, float, float]:
    """(min dx, max dx, min dy, max dy, max scale) over the clip, for placing starts."""
    offsets = [motion_offset(motion, t) for t in np.linspace(0.0, 1.0, steps)]
    dxs, dys, scales = [o[0] for o in offsets], [o[1] for o in offsets], [o[2] for o in offsets]
    return min(dxs), max(dxs), min(dys), max(dys), max(scales)
