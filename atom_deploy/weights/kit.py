"""The kit's own weight format: one model.safetensors with `video_encoder.`, `decoder.`
and (optionally) `minilm.` prefixed tensors, beside an atom_config.json.

A folder without `minilm.*` tensors keeps the real all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from atom_deploy.model import AtomModel
from atom_runner.errors import AtomError


def save_kit_weights(model: AtomModel, path: Path, include_minilm: bool = False) -> None:
    modules = {name: m for name, m in model.modules().items() if name != "minilm" or include_minilm}
    write_kit_weights(path, modules, model.config.decoder.tie_embeddings)


def write_kit_weights(path: Path, modules: Mapping[str, nn.Module], tie_embeddings: bool,
                      dtype: torch.dtype | None = None) -> None:
    """The one writer of the format: `{module}.{tensor}` keys, contiguous, optionally cast
    (the demo model ships float16; loading casts back to the model's dtype).

    Written to PATH.tmp and renamed, so a run cut off mid-write keeps the previous file.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            value = value.detach() if dtype is None else value.detach().to(dtype)
            tensors[f"{name}.{key}"] = value.contiguous()
    # Tied weights are stored once; safetensors refuses shared storage.
    if tie_embeddings:
        tensors.pop("decoder.lm_head.weight", None)
    partial = path.with_name(path.name + ".tmp")
    save_file(tensors, str(partial))
    partial.replace(path)


def load_kit_weights(path: Path, model: AtomModel) -> None:
    if not path.is_file():
        raise AtomError(f"weights file not found: {path}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise AtomError(f"{path} is not a readable safetensors file: {exc}") from None
    for name, module in model.modules().items():
        part = {k.removeprefix(f"{name}."): v for k, v in tensors.items() if k.startswith(f"{name}.")}
        if name == "minilm" and not part:
            continue
        if name == "decoder" and model.config.decoder.tie_embeddings:
            part.setdefault("lm_head.weight", part.get("embed_tokens.weight"))
        _load_strict(module, part, f"{path.name}:{name}")
    unknown = sorted(k for k in tensors if k.split(".", 1)[0] not in model.modules())
    if unknown:
        raise AtomError(f"{path}: unknown tensor {unknown[0]!r} (expected video_encoder.*, decoder.*, minilm.*)")


def load_projector(path: Path, encoder: nn.Module) -> None:
    tensors = load_file(str(path))
    _load_strict(encoder.projector, {k.removeprefix("projector."): v for k, v in tensors.items()}, path.name)


def _load_strict(module: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = module.state_dict()
    for key in expected:
        if tensors.get(key) is None:
            raise AtomError(f"{where}: missing tensor {key!r}")
    for key, value in tensors.items():
        if key not in expected:
            raise AtomError(f"{where}: unknown tensor {key!r}")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise AtomError(f"{where}: tensor {key!r} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    module.load_state_dict(tensors, strict=True)
