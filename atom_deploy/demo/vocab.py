"""The demo world's vocabulary: every name a scene can hold, defined once.

Renderer, captions, caption parser and text tasks all import these tables, so a new
colour or motion is added here and nowhere else. The first word of each name is what
the canonical caption says; captions.py adds the synonyms.
"""

from __future__ import annotations

from atom_runner.errors import AtomError

# Saturated object colours (RGB). Kept far apart so the names stay unambiguous even
# after pixel noise and the encoder's resize.
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 185, 60),
    "blue": (40, 90, 235),
    "yellow": (245, 220, 40),
    "orange": (245, 135, 25),
    "purple": (155, 60, 205),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

# Muted mid-tone background colours: a caption may name them ("on a blue background"),
# but they never compete with a saturated object for attention.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "blue": (70, 100, 165),
    "green": (80, 135, 90),
    "grey": (128, 128, 128),
    "brown": (130, 95, 65),
    "purple": (115, 85, 145),
    "pink": (215, 150, 170),
}

# An object colour this close (RGB distance) to the background's base colour is never
# sampled onto it: the object must be visibly there for its caption to be true.
MIN_OBJECT_CONTRAST = 100.0

KINDS = ("square", "circle", "triangle", "star", "cross", "ring", "bar")
# Rotation is invisible on these, so "spins" would describe nothing that is drawn.
ROTATION_SYMMETRIC_KINDS = frozenset({"circle", "ring"})

# Object radius as a fraction of the stage (the frame's centred square). Each step is 1.4x, so the
# three names stay distinguishable at 112 px.
SIZE_RADII: dict[str, float] = {"small": 0.07, "medium": 0.10, "large": 0.14}

MOTIONS = (
    "moves left", "moves right", "moves up", "moves down", "bounces",
    "grows", "shrinks", "spins", "appears", "disappears", "stays still",
)
HORIZONTAL_MOTIONS = frozenset({"moves left", "moves right"})

BACKGROUND_KINDS = ("gradient", "striped", "checkered", "dotted", "speckled")

MAX_OBJECTS = 3


def require_name(value: str, valid: tuple[str, ...] | dict, what: str) -> None:
    """Unknown names are an error that lists the valid ones, never a silent default."""
    if value not in valid:
        raise AtomError(f"unknown {what} {value!r}; valid: {sorted(valid)}")


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5)
