"""Import a local transformers CLIP vision checkpoint into our `VideoEncoder`.

Accepted layouts of `folder/model.safetensors` (+ `config.json`):
- `CLIPVisionModel` saved by transformers 5: vision keys without a prefix
  (`embeddings.patch_embedding.weight`, `encoder.layers.0.self_attn.q_proj.weight`, ...);
- `CLIPVisionModel` / `CLIPVisionModelWithProjection` saved by transformers 4: the same
  keys under `vision_model.`;
- `CLIPModel` (e.g. openai/clip-vit-large-patch14): `vision_model.*` plus the text tower.
`text_model.*`, `logit_scale`, `text_projection.weight`, `visual_projection.weight` and
the `embeddings.position_ids` buffer are ignored: we use the vision tower's hidden
states, not CLIP's joint embedding space. Every other tensor must map, and every
encoder parameter except `temporal_embedding` and `projector` must be found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from atom_deploy.config import VideoEncoderConfig
from atom_deploy.models.video_encoder import VideoEncoder
from atom_deploy.weights.checkpoint_io import check_fields, config_field, copy_into, read_config, read_tensors
from atom_runner.errors import AtomError

# Our VideoEncoderConfig field -> CLIP vision config.json key.
_FIELDS = {
    "image_size": "image_size",
    "patch_size": "patch_size",
    "width": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "layer_norm_eps": "layer_norm_eps",
}
# What transformers assumes when a config.json leaves these out.
_HF_DEFAULTS = {"layer_norm_eps": 1e-5}
_PREFIX = "vision_model."
_IGNORED_PREFIXES = ("text_model.",)
_IGNORED = {"logit_scale", "text_projection.weight", "visual_projection.weight", "embeddings.position_ids"}
# The pooled visual prefix aims at 4 x 4 tokens per time step, as the mplug2plus preset.
_POOLED_SIDE = 4


def encoder_config_from_clip(
    folder: Path, num_frames: int = 6, tubelet: int = 2, pool: int | None = None
) -> VideoEncoderConfig:
    """Our encoder config from a CLIP vision config.json.

    pool=None picks the smallest pool that divides the patch grid and leaves at most
    4 x 4 tokens per time step (ViT-L/14 at 224: grid 16, pool 4), so the visual prefix
    fits the decoder's default context.
    """
    fields = _clip_fields(folder)
    grid = fields["image_size"] // fields["patch_size"]
    if pool is None:
        pool = next(p for p in range(1, grid + 1) if grid % p == 0 and grid // p <= _POOLED_SIDE)
    return VideoEncoderConfig(num_frames=num_frames, tubelet=tubelet, pool=pool, **fields)


def load_clip_vision(folder: Path, encoder: VideoEncoder) -> None:
    """Copy CLIP's vision tower into `encoder`; `temporal_embedding` is zeroed, `projector` kept."""
    source = str(folder / "model.safetensors")
    check_fields(_clip_fields(folder), encoder.config, _FIELDS, str(folder / "config.json"))
    tensors = read_tensors(folder)
    prefix = _PREFIX if any(k.startswith(_PREFIX) for k in tensors) else ""
    tensors = {k: v for k, v in tensors.items() if not _ignored(k.removeprefix(prefix))}
    c = encoder.config
    # CLIP's patch embedding is a Conv2d: land it in a scratch tensor of that shape so
    # copy_into checks it, then inflate it over the tubelet.
    patch = torch.empty(c.width, 3, c.patch_size, c.patch_size)
    targets = {prefix + name: target for name, target in _targets(encoder, patch).items()}
    copy_into(targets, tensors, source)
    encoder.patch_embed.load_conv_weight(patch)
    with torch.no_grad():
        encoder.temporal_embedding.zero_()  # image weights carry no time offsets


def _targets(encoder: VideoEncoder, patch: Tensor) -> dict[str, Tensor]:
    targets = {
        "embeddings.patch_embedding.weight": patch,
        "embeddings.class_embedding": encoder.class_embedding,
        "embeddings.position_embedding.weight": encoder.position_embedding,  # [G*G + 1, D]
    }
    targets.update(_weight_bias("pre_layrnorm", encoder.pre_layernorm))  # sic: HF's spelling
    targets.update(_weight_bias("post_layernorm", encoder.post_layernorm))
    for i, block in enumerate(encoder.blocks):
        hf = f"encoder.layers.{i}."
        for ours, theirs in (
            ("q_proj", "self_attn.q_proj"), ("k_proj", "self_attn.k_proj"), ("v_proj", "self_attn.v_proj"),
            ("out_proj", "self_attn.out_proj"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2"),
            ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
        ):
            targets.update(_weight_bias(hf + theirs, getattr(block, ours)))
    return targets


def _weight_bias(name: str, module: torch.nn.Module) -> dict[str, Tensor]:
    # Linear and LayerNorm both carry exactly `weight` and `bias`.
    return {f"{name}.weight": module.weight, f"{name}.bias": module.bias}


def _ignored(name: str) -> bool:
    return name in _IGNORED or name.startswith(_IGNORED_PREFIXES)


def _clip_fields(folder: Path) -> dict[str, Any]:
    config = read_config(folder)
    source = str(folder / "config.json")
    # A full CLIPModel nests the vision tower's settings under vision_config.
    vision = config.get("vision_config") or config
    if vision.get("model_type", "clip_vision_model") != "clip_vision_model":
        raise AtomError(f"{source}: model_type {vision.get('model_type')!r} is not a CLIP vision model")
    act = vision.get("hidden_act", "quick_gelu")
    if act != "quick_gelu":
        raise AtomError(f"{source}: hidden_act {act!r} is not supported (our encoder uses quick_gelu)")
    if vision.get("num_channels", 3) != 3:
        raise AtomError(f"{source}: num_channels {vision['num_channels']!r} is not supported (RGB only)")
    vision = {**_HF_DEFAULTS, **vision}
    return {ours: config_field(vision, hf, source) for ours, hf in _FIELDS.items()}
