"""Resolve `--model`: a preset name, a kit model folder, or a folder of HF checkpoints.

- `demo`: the trained demo model shipped in the package (atom_deploy/assets/demo/);
- preset (`tiny`, `mplug2plus`): seeded random weights, the kit's trained BPE tokenizer;
- kit folder: `atom_config.json` + `model.safetensors` + `tokenizer.json`;
- HF folder: `vision/` (a CLIPVisionModel) and `language/` (a LlamaForCausalLM with its
  tokenizer.json). The projector between them is not in either checkpoint, so it starts
  from the seeded random init and the folder may carry it in `projector.safetensors`.
  Text conventions (BOS rule, EOS ids, chat template) come from the language folder
  (weights/hf_conventions.py), the context from its max_position_embeddings within the
  KV budget (export/kv_budget.py);
- a `.gguf` file, or a folder holding one: converted once into such an HF folder
  (weights/gguf_import.py).

Any of them may carry a clip variant, `SPEC?clip_size=112&clip_frames=2` (see
weights/clip_variant.py); the manifest stores the whole spec, so parity rebuilds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from atom_deploy.config import PRESETS, ModelConfig, preset
from atom_deploy.model import AtomModel, build_model
from atom_deploy.weights.hf_conventions import CheckpointConventions
from atom_runner.errors import AtomError
from atom_runner.schema import DecoderRole

KIT_CONFIG = "atom_config.json"
KIT_WEIGHTS = "model.safetensors"
KIT_TOKENIZER = "tokenizer.json"
DEMO = "demo"
DEMO_FOLDER = Path(__file__).resolve().parent / "assets" / DEMO


@dataclass(frozen=True)
class ModelSource:
    spec: str  # what --model said, so parity can rebuild the same eager model
    seed: int
    description: str
    config: ModelConfig
    build: Callable[[], AtomModel]
    tokenizer: Path | None  # None: train the kit tokenizer for this config
    # The checkpoint's BOS rule, EOS ids and chat template; None: the kit's own (BOS, one EOS, no chat).
    conventions: CheckpointConventions | None = None

    @property
    def decoder_role(self) -> str:
        """A decoder with a checkpoint's own text conventions is a language model imported from
        that checkpoint; every other is one of the kit's captioners (schema.DecoderRole)."""
        return DecoderRole.CAPTIONER if self.conventions is None else DecoderRole.LANGUAGE_MODEL


@dataclass(frozen=True)
class ExportShape:
    """Export-time shapes over the model config (None: the config's). They change no weight."""

    decode_steps: int | None = None
    max_batch: int | None = None  # KV-cache rows
    # KV-cache positions (None: the config's; for HF imports the checkpoint's own, cut to a
    # memory budget: export/kv_budget.py)
    max_context: int | None = None

    def apply(self, config: ModelConfig) -> ModelConfig:
        if self.decode_steps is not None:
            config = config.replace(decode_steps=self.decode_steps)
        if self.max_batch is not None:
            config = config.replace(decoder=replace(config.decoder, max_batch=self.max_batch))
        if self.max_context is not None:
            config = config.replace(decoder=replace(config.decoder, max_context=self.max_context))
        return config


def resolve_model(
    spec: str, decode_steps: int | None = None, seed: int = 0, max_batch: int | None = None,
    max_context: int | None = None,
) -> ModelSource:
    from atom_deploy.weights.clip_variant import split_spec

    base, variant = split_spec(spec)
    source = _resolve_base(base, ExportShape(decode_steps, max_batch, max_context), seed)
    return _with_variant(source, spec, variant) if variant else source


def _resolve_base(spec: str, shape: ExportShape, seed: int) -> ModelSource:
    if spec == DEMO:
        if not (DEMO_FOLDER / KIT_WEIGHTS).is_file():
            raise AtomError(f"the demo model is not in this install ({DEMO_FOLDER}); train it with atom-deploy train-demo")
        return _kit_folder(DEMO_FOLDER, shape, seed, spec=DEMO)
    path = Path(spec)
    if spec in PRESETS:
        config = shape.apply(preset(spec))
        return ModelSource(spec, seed, f"preset {spec} (random weights, seed {seed})", config, lambda: build_model(config, seed), None)
    if (path / KIT_CONFIG).is_file():
        return _kit_folder(path, shape, seed)
    if (path / "vision").is_dir() and (path / "language").is_dir():
        return _hf_folder(path, shape, seed)
    if path.suffix == ".gguf" or path.is_dir():
        from atom_deploy.weights.gguf_import import cached_model_folder, find_gguf

        gguf = find_gguf(path)
        if gguf is not None:  # spec stays the .gguf, so parity converts (or finds) the same folder
            return replace(_hf_folder(cached_model_folder(gguf), shape, seed), spec=str(path.resolve()),
                           description=f"GGUF {gguf.name} (transformers' GGUF loader, dequantized to fp32)")
    if path.exists():
        raise AtomError(f"{spec}: not a model folder (needs {KIT_CONFIG}, vision/ and language/ HF checkpoints, "
                        "or a .gguf file)")
    raise AtomError(f"unknown model {spec!r}: not a preset {sorted(PRESETS)} and no such folder")


def _with_variant(source: ModelSource, spec: str, variant: dict[str, int]) -> ModelSource:
    from atom_deploy.models import VideoEncoder
    from atom_deploy.weights.clip_variant import adapt_encoder, variant_config

    config = variant_config(source.config, variant)

    def build() -> AtomModel:
        model = source.build()
        encoder = VideoEncoder(config.encoder, decoder_dim=config.decoder.dim)
        adapt_encoder(model.encoder, encoder)
        encoder.eval().requires_grad_(False)
        return AtomModel(config, encoder, model.decoder, model.minilm)

    return ModelSource(spec, source.seed, f"{source.description}, clip variant {variant}", config, build, source.tokenizer,
                       source.conventions)


def _kit_folder(path: Path, shape: ExportShape, seed: int, spec: str | None = None) -> ModelSource:
    from atom_deploy.weights.kit import load_kit_weights

    try:
        data = json.loads((path / KIT_CONFIG).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AtomError(f"{path / KIT_CONFIG} is not valid JSON: {exc}") from None
    config = shape.apply(ModelConfig.from_dict(data))

    def build() -> AtomModel:
        model = build_model(config, seed)
        load_kit_weights(path / KIT_WEIGHTS, model)
        return model

    description = "the shipped demo model" if spec == DEMO else f"kit model folder {path}"
    return ModelSource(spec or str(path.resolve()), seed, description, config, build, path / KIT_TOKENIZER)


def _hf_folder(path: Path, shape: ExportShape, seed: int) -> ModelSource:
    from atom_deploy.weights import (
        decoder_config_from_llama,
        encoder_config_from_clip,
        llama_tokenizer_path,
        load_clip_vision,
        load_llama,
    )
    from atom_deploy.weights.checkpoint_io import read_config
    from atom_deploy.weights.hf_conventions import eos_ids_of, read_conventions, read_generation_config

    decoder_config = decoder_config_from_llama(path / "language")
    encoder_config = encoder_config_from_clip(path / "vision")
    config = shape.apply(ModelConfig(name=path.name, encoder=encoder_config, decoder=decoder_config))
    if shape.max_context is None:  # the checkpoint's own context, as far as the KV budget allows
        from atom_deploy.export.kv_budget import budget_context

        positions = read_config(path / "language").get("max_position_embeddings", config.decoder.max_context)
        config = config.replace(decoder=replace(config.decoder, max_context=budget_context(config.decoder, positions)))

    def build() -> AtomModel:
        model = build_model(config, seed)
        load_clip_vision(path / "vision", model.encoder)
        load_llama(path / "language", model.decoder)
        projector = path / "projector.safetensors"
        if projector.is_file():
            from atom_deploy.weights.kit import load_projector

            load_projector(projector, model.encoder)
        return model

    conventions = read_conventions(path / "language", decoder_config.bos_id,
                                   eos_ids_of(read_config(path / "language"), read_generation_config(path / "language"),
                                              str(path / "language" / "config.json")))
    return ModelSource(str(path.resolve()), seed, f"HF checkpoints in {path}", config, build,
                       llama_tokenizer_path(path / "language"), conventions)
