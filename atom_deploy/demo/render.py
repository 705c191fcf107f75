"""Draw a scene: background, anti-aliased sprites at their trajectory state, pixel noise.

`render_frame` draws one moment of a clip at any resolution; `render_clip` samples the
frames a video encoder sees (slice centres, see motion.frame_times) and the mp4 writer
calls `render_frame` at the video's own rate. Sprites are polygons in a unit circle,
drawn 4x supersampled with PIL inside a crop around the object, then box-filtered.

A scene lives in the centred square of the frame (`stage`): a wider frame only shows
more background at the sides. The video pipeline centre-crops to a square, so it sees
every object a caption names, at the place render_clip draws it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from atom_deploy.demo.background import render_background
from atom_deploy.demo.motion import ObjectState, frame_times, object_state
from atom_deploy.demo.scene import Scene
from atom_deploy.demo.vocab import KINDS, OBJECT_COLOURS, require_name

_SUPERSAMPLE = 4


def render_clip(scene: Scene, num_frames: int = 6, size: int = 224, seed: int = 0) -> np.ndarray:
    """uint8 (num_frames, size, size, 3): frames evenly spaced over the ~10 s clip.

    `seed` drives only the pixel noise; the same (scene, num_frames, size, seed) gives
    the same bytes.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    rng = np.random.default_rng(seed)
    return np.stack([render_frame(scene, float(t), size, size, rng) for t in frame_times(num_frames)])


def render_frame(
    scene: Scene, t: float, width: int, height: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """uint8 (height, width, 3) at normalised clip time t; no noise when rng is None."""
    frame = render_background(scene.background, t, scene.camera_pan, width, height)
    for obj in scene.objects:
        state = object_state(obj, t)
        if state.visible:
            _paint(frame, obj.kind, OBJECT_COLOURS[obj.colour], state)
    if rng is not None and scene.noise_std > 0:
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(scene.noise_std)
    return np.rint(np.clip(frame, 0.0, 255.0)).astype(np.uint8)


def stage(width: int, height: int) -> tuple[int, tuple[float, float]]:
    """(side, (left, top)) of the centred square where a scene's objects live, in pixels."""
    side = min(width, height)
    return side, ((width - side) / 2.0, (height - side) / 2.0)


def _paint(frame: np.ndarray, kind: str, rgb: tuple[int, int, int], state: ObjectState) -> None:
    height, width = frame.shape[:2]
    alpha, (top, left) = _coverage(kind, state, width, height)
    if alpha.size == 0:
        return
    region = frame[top:top + alpha.shape[0], left:left + alpha.shape[1]]
    colour = np.asarray(rgb, dtype=np.float32)
    region += alpha[..., None] * (colour - region)  # in-place blend over the background


def _coverage(kind: str, state: ObjectState, width: int, height: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Anti-aliased coverage of the sprite inside its bounding box, clipped to the frame."""
    require_name(kind, KINDS, "object kind")
    side, (stage_left, stage_top) = stage(width, height)
    cx, cy = stage_left + state.x * side, stage_top + state.y * side
    r = state.radius * side
    left, top = max(0, math.floor(cx - r) - 1), max(0, math.floor(cy - r) - 1)
    right, bottom = min(width, math.ceil(cx + r) + 1), min(height, math.ceil(cy + r) + 1)
    if right <= left or bottom <= top:
        return np.zeros((0, 0), dtype=np.float32), (0, 0)
    box_w, box_h = right - left, bottom - top
    canvas = Image.new("L", (box_w * _SUPERSAMPLE, box_h * _SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    cos_a, sin_a = math.cos(state.angle), math.sin(state.angle)

    def to_canvas(points: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
        # Unit-circle points, y up, rotated counter-clockwise on screen (y down).
        return [
            (((cx - left) + r * (px * cos_a - py * sin_a)) * _SUPERSAMPLE,
             ((cy - top) - r * (px * sin_a + py * cos_a)) * _SUPERSAMPLE)
            for px, py in points
        ]

    for outline, fill in _SPRITES[kind]:
        draw.polygon(to_canvas(outline), fill=255 if fill else 0)
    big = np.asarray(canvas, dtype=np.float32) / 255.0
    alpha = big.reshape(box_h, _SUPERSAMPLE, box_w, _SUPERSAMPLE).mean(axis=(1, 3))
    return alpha, (top, left)


def _polygon_at(radii: list[float], angles_deg: list[float]) -> tuple[tuple[float, float], ...]:
    return tuple((r * math.cos(math.radians(a)), r * math.sin(math.radians(a))) for r, a in zip(radii, angles_deg))


def _disc(radius: float) -> tuple[tuple[float, float], ...]:
    return _polygon_at([radius] * 64, [i * 360 / 64 for i in range(64)])


def _box(half_w: float, half_h: float) -> tuple[tuple[float, float], ...]:
    return ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h))


def _plus(reach: float, half_arm: float) -> tuple[tuple[float, float], ...]:
    a, b = reach, half_arm
    return ((-b, a), (b, a), (b, b), (a, b), (a, -b), (b, -b), (b, -a), (-b, -a), (-b, -b), (-a, -b), (-a, b), (-b, b))


# Each sprite: (outline, fill?) layers painted in order, all inside the unit circle so
# radius * scale bounds every rotation (the sampler relies on that for placement).
_SPRITES: dict[str, tuple[tuple[tuple[tuple[float, float], ...], bool], ...]] = {
    "square": ((_box(0.7, 0.7), True),),
    "circle": ((_disc(0.8), True),),
    "triangle": ((_polygon_at([1.0] * 3, [90, 210, 330]), True),),
    "star": ((_polygon_at([1.0, 0.45] * 5, [90 + 36 * i for i in range(10)]), True),),
    "cross": ((_plus(0.95, 0.3), True),),
    "ring": ((_disc(0.9), True), (_disc(0.55), False)),  # the hole shows the background
    "bar": ((_box(0.96, 0.28), True),),
}
assert set(_SPRITES) == set(KINDS), "every object kind needs a sprite"
