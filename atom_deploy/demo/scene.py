"""What a clip contains (frozen dataclasses) and how scenes are sampled from a seeded rng.

A `Scene` is the ground truth: renderer and captions both read it and nothing else,
so a caption can only say what is drawn. Sampling rejects anything a viewer could
misread: an object leaving the frame, two objects touching, an object the colour of
its background, a spinning circle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom_deploy.demo.motion import motion_extent, object_state
from atom_deploy.demo.vocab import (
    BACKGROUND_COLOURS,
    BACKGROUND_KINDS,
    KINDS,
    MAX_OBJECTS,
    MIN_OBJECT_CONTRAST,
    MOTIONS,
    OBJECT_COLOURS,
    ROTATION_SYMMETRIC_KINDS,
    SIZE_RADII,
    colour_distance,
    require_name,
)
from atom_runner.errors import AtomError

OBJECT_COUNT_WEIGHTS = (0.45, 0.35, 0.20)  # one, two, three objects
CAMERA_PAN_PROBABILITY = 0.3
MAX_NOISE_STD = 8.0  # grey levels; enough to matter, never enough to hide an object
EDGE_MARGIN = 0.02  # objects keep this far (fraction of the frame) from every edge
OBJECT_GAP = 0.03  # and this far from each other, at every moment of the clip
_PLACEMENT_TRIES = 30
_OVERLAP_CHECK_TIMES = np.linspace(0.0, 1.0, 41)


@dataclass(frozen=True)
class SceneObject:
    kind: str
    colour: str
    size: str
    motion: str
    start: tuple[float, float]  # centre (x, y) at t = 0, fractions of the stage square

    def __post_init__(self) -> None:
        require_name(self.kind, KINDS, "object kind")
        require_name(self.colour, OBJECT_COLOURS, "object colour")
        require_name(self.size, SIZE_RADII, "object size")
        require_name(self.motion, MOTIONS, "motion")
        if len(self.start) != 2:
            raise AtomError(f"start must be (x, y), got {self.start!r}")


@dataclass(frozen=True)
class Background:
    kind: str
    colour: str

    def __post_init__(self) -> None:
        require_name(self.kind, BACKGROUND_KINDS, "background kind")
        require_name(self.colour, BACKGROUND_COLOURS, "background colour")


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    background: Background
    camera_pan: bool  # the background slides left, as if the camera turned right
    noise_std: float = 0.0  # per-pixel Gaussian noise, grey levels

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise AtomError(f"a scene holds 1..{MAX_OBJECTS} objects, got {len(self.objects)}")
        if self.noise_std < 0:
            raise AtomError(f"noise_std must be >= 0, got {self.noise_std}")


def sample_scene(rng: np.random.Generator) -> Scene:
    background = Background(
        kind=str(rng.choice(BACKGROUND_KINDS)),
        colour=str(rng.choice(list(BACKGROUND_COLOURS))),
    )
    wanted = 1 + int(rng.choice(len(OBJECT_COUNT_WEIGHTS), p=OBJECT_COUNT_WEIGHTS))
    objects: list[SceneObject] = []
    for _ in range(wanted):
        placed = _sample_object(rng, background, objects)
        if placed is None:  # the frame is full; fewer objects beat overlapping ones
            break
        objects.append(placed)
    return Scene(
        objects=tuple(objects),
        background=background,
        camera_pan=bool(rng.random() < CAMERA_PAN_PROBABILITY),
        noise_std=round(float(rng.uniform(0.0, MAX_NOISE_STD)), 2),
    )


def _sample_object(
    rng: np.random.Generator, background: Background, others: list[SceneObject]
) -> SceneObject | None:
    # Distinct colours per scene keep "the red object" unambiguous in captions and QA.
    used = {o.colour for o in others}
    bg_rgb = BACKGROUND_COLOURS[background.colour]
    colours = [
        name for name, rgb in OBJECT_COLOURS.items()
        if name not in used and name != background.colour
        and colour_distance(rgb, bg_rgb) >= MIN_OBJECT_CONTRAST
    ]
    if not colours:
        return None
    for _ in range(_PLACEMENT_TRIES):
        kind = str(rng.choice(KINDS))
        size = str(rng.choice(list(SIZE_RADII)))
        motion = str(rng.choice(_motions_for(kind, size)))
        start = _sample_start(rng, size, motion)
        if start is None:
            continue
        candidate = SceneObject(kind, str(rng.choice(colours)), size, motion, start)
        if all(_apart(candidate, other) for other in others):
            return candidate
    return None


def _motions_for(kind: str, size: str) -> list[str]:
    motions = list(MOTIONS)
    if kind in ROTATION_SYMMETRIC_KINDS:
        motions.remove("spins")
    if size == "large":
        motions.remove("grows")  # would fill half the frame
    if size == "small":
        motions.remove("shrinks")  # would end as a few pixels at 112 px
    return motions


def _sample_start(rng: np.random.Generator, size: str, motion: str) -> tuple[float, float] | None:
    dx_min, dx_max, dy_min, dy_max, max_scale = motion_extent(motion)
    reach = SIZE_RADII[size] * max_scale + EDGE_MARGIN
    x_low, x_high = reach - dx_min, 1.0 - reach - dx_max
    y_low, y_high = reach - dy_min, 1.0 - reach - dy_max
    if x_low > x_high or y_low > y_high:
        return None
    return (round(float(rng.uniform(x_low, x_high)), 4), round(float(rng.uniform(y_low, y_high)), 4))


def _apart(a: SceneObject, b: SceneObject) -> bool:
    """True when the two never touch while both are visible."""
    for t in _OVERLAP_CHECK_TIMES:
        sa, sb = object_state(a, float(t)), object_state(b, float(t))
        if not (sa.visible and sb.visible):
            continue
        if np.hypot(sa.x - sb.x, sa.y - sb.y) < sa.radius + sb.radius + OBJECT_GAP:
            return False
    return True
