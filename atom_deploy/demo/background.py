"""Background textures: a named base colour plus a low-contrast pattern that can pan.

Patterns are functions of world coordinates measured in units of the frame's shorter
side, with the origin at the corner of the centred square where objects live (see
render.stage), so a clip looks the same at 112, 224 or inside 320x240, and a wider
frame just shows more of the same texture at the sides. A camera pan samples the world
further right as the clip goes on, which slides the texture left on screen. Pattern
contrast stays small next to the base colour so "a blue background" stays true.
"""

from __future__ import annotations

import functools

import numpy as np

from atom_deploy.demo.scene import Background
from atom_deploy.demo.vocab import BACKGROUND_COLOURS, BACKGROUND_KINDS, require_name

PAN_DISTANCE = 0.5  # world units the view travels over one clip
_SPECKLE_TILE = 48  # cells in the repeating speckle tile
_SPECKLE_CELL = 0.02  # world units per speckle cell


def render_background(
    background: Background, t: float, camera_pan: bool, width: int, height: int
) -> np.ndarray:
    """Float32 (height, width, 3) RGB in 0..255 for normalised clip time t."""
    require_name(background.kind, BACKGROUND_KINDS, "background kind")
    short = float(min(width, height))
    left, top = (width - short) / 2.0, (height - short) / 2.0
    u = (np.arange(width, dtype=np.float32) + np.float32(0.5 - left)) / np.float32(short)
    v = (np.arange(height, dtype=np.float32) + np.float32(0.5 - top)) / np.float32(short)
    if camera_pan:
        u = u + np.float32(PAN_DISTANCE * t)
    # (1, W) and (H, 1): patterns broadcast to (H, W) without building coordinate grids.
    shade = _PATTERNS[background.kind](u[None, :], v[:, None])  # grey-level offset
    base = np.asarray(BACKGROUND_COLOURS[background.colour], dtype=np.float32)
    return np.clip(base[None, None, :] + shade[..., None], 0.0, 255.0)


def _gradient(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # A slow diagonal wave rather than a ramp, so panning never runs off its end.
    return 35.0 * np.cos(2.0 * np.pi * (u + 0.6 * v) / 2.0)


def _striped(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # tanh of a sine: crisp stripes without the aliasing of a hard threshold.
    return 22.0 * np.tanh(4.0 * np.sin(2.0 * np.pi * (u + v) / 0.18))


def _checkered(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return 22.0 * np.tanh(4.0 * np.sin(2.0 * np.pi * u / 0.2)) * np.tanh(4.0 * np.sin(2.0 * np.pi * v / 0.2))


def _dotted(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    spacing, radius, soft = 0.12, 0.028, 0.008
    du = (u % spacing) - spacing / 2
    dv = (v % spacing) - spacing / 2
    inside = np.clip((radius - np.hypot(du, dv)) / soft, 0.0, 1.0)
    return 40.0 * inside


def _speckled(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    tile = _speckle_tile()
    gu, gv = u / _SPECKLE_CELL, v / _SPECKLE_CELL
    iu, iv = np.floor(gu).astype(np.int64), np.floor(gv).astype(np.int64)
    fu, fv = (gu - iu).astype(np.float32), (gv - iv).astype(np.float32)
    n = _SPECKLE_TILE

    def at(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return tile[b % n, a % n]

    # Bilinear lookup, so a pan moves the speckle smoothly instead of in cell jumps.
    top = at(iu, iv) * (1 - fu) + at(iu + 1, iv) * fu
    bottom = at(iu, iv + 1) * (1 - fu) + at(iu + 1, iv + 1) * fu
    return 20.0 * (top * (1 - fv) + bottom * fv)


@functools.cache
def _speckle_tile() -> np.ndarray:
    # One fixed tile for every clip: "speckled" is a look, not a per-clip random field.
    noise = np.random.default_rng(12345).standard_normal((_SPECKLE_TILE, _SPECKLE_TILE))
    blurred = sum(np.roll(noise, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    tile = (blurred / np.abs(blurred).max()).astype(np.float32)
    tile.setflags(write=False)  # cached and shared: nobody may edit it in place
    return tile


_PATTERNS = {
    "gradient": _gradient,
    "striped": _striped,
    "checkered": _checkered,
    "dotted": _dotted,
    "speckled": _speckled,
}
assert set(_PATTERNS) == set(BACKGROUND_KINDS), "every background kind needs a pattern"
