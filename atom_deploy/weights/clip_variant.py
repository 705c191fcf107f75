"""Run a trained encoder on smaller or fewer frames: the paper's 112-vs-224 and 2-vs-6 ablations.

Smaller frames: with patch P at size S, the model at size S/f with patch P/f and each
patch kernel summed over f x f blocks computes *exactly* what the original computes on
the S/f frames upscaled f times (nearest). The grid, and so the positional table and
the visual prefix, stay the same; only the input the encoder sees loses detail. A model
with a conv stem gets the same result the direct way: it upscales the frames (nearest)
in its first op, so its weights stay as trained.

Fewer frames: the tubelet stays, so fewer frames mean fewer time steps; each kept step
takes the temporal embedding of the original step nearest to it in clip time.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl, urlencode

import torch

from atom_deploy.config import ModelConfig, VideoEncoderConfig
from atom_deploy.models import VideoEncoder
from atom_runner.errors import AtomError

VARIANT_KEYS = ("clip_size", "clip_frames")


def split_spec(spec: str) -> tuple[str, dict[str, int]]:
    """'demo?clip_size=112' -> ('demo', {'clip_size': 112})."""
    base, _, query = spec.partition("?")
    variant = {}
    for key, value in parse_qsl(query, strict_parsing=bool(query)):
        if key not in VARIANT_KEYS:
            raise AtomError(f"unknown model variant {key!r} in {spec!r}; valid: {list(VARIANT_KEYS)}")
        if not value.isdigit():
            raise AtomError(f"model variant {key} must be a positive integer, got {value!r}")
        variant[key] = int(value)
    return base, variant


def variant_spec(base: str, clip_size: int | None, clip_frames: int | None) -> str:
    variant = {k: v for k, v in (("clip_size", clip_size), ("clip_frames", clip_frames)) if v is not None}
    return f"{base}?{urlencode(variant)}" if variant else base


def variant_config(config: ModelConfig, variant: dict[str, int]) -> ModelConfig:
    enc = config.encoder
    size = variant.get("clip_size", enc.image_size)
    frames = variant.get("clip_frames", enc.num_frames)
    if size <= 0 or enc.image_size % size or (not enc.stem_channels and enc.patch_size % (enc.image_size // size)):
        raise AtomError(
            f"clip_size {size} must divide {enc.image_size} by a factor that also divides the patch size {enc.patch_size}"
        )
    if frames <= 0 or frames > enc.num_frames or frames % enc.tubelet:
        raise AtomError(f"clip_frames {frames} must be a multiple of the tubelet {enc.tubelet}, at most {enc.num_frames}")
    factor = enc.image_size // size
    if enc.stem_channels:
        encoder = dataclasses.replace(enc, image_size=size, upscale=enc.upscale * factor, num_frames=frames)
    else:
        encoder = dataclasses.replace(enc, image_size=size, patch_size=enc.patch_size // factor, num_frames=frames)
    return dataclasses.replace(config, encoder=encoder)


@torch.no_grad()
def adapt_encoder(trained: VideoEncoder, target: VideoEncoder) -> None:
    """Copy `trained` into `target` (built from variant_config), rewriting patch and time tables."""
    src, dst = trained.config, target.config
    state = trained.state_dict()
    if not src.stem_channels:
        _sum_patch_kernel(state, src, dst)
    if dst.time_steps < src.time_steps:
        # centre of each kept step, in the original's step index; take the nearest step
        centres = (torch.arange(dst.time_steps) + 0.5) * src.time_steps / dst.time_steps - 0.5
        state["temporal_embedding"] = state["temporal_embedding"][centres.round().long()]
    target.load_state_dict(state, strict=True)


def _sum_patch_kernel(state: dict, src: VideoEncoderConfig, dst: VideoEncoderConfig) -> None:
    f = src.patch_size // dst.patch_size
    kernel = state["patch_embed.proj.weight"].reshape(src.width, 3, src.tubelet, dst.patch_size, f, dst.patch_size, f)
    state["patch_embed.proj.weight"] = kernel.sum(dim=(4, 6)).reshape(src.width, -1)
