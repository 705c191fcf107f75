"""Reading a Hugging Face checkpoint folder and copying its tensors strictly.

Every HF importer (CLIP, Llama, MiniLM) goes through these few functions, so the rules
are written once: an unknown tensor, a missing tensor, a shape mismatch or a config
field that disagrees with ours is an `AtomError` naming it, and nothing is written
into the module until every check has passed (a failed import leaves it untouched).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from atom_runner.errors import AtomError

WEIGHTS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
CONFIG = "config.json"


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise AtomError(f"HF config not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AtomError(f"{path} is not valid JSON: {exc}") from None


def config_field(config: dict[str, Any], key: str, source: str) -> Any:
    if config.get(key) is None:
        raise AtomError(f"{source}: config.json has no {key!r}")
    return config[key]


def read_tensors(folder: Path) -> dict[str, Tensor]:
    """All tensors of `folder/model.safetensors`, or of its shards when an index is there."""
    single = folder / WEIGHTS
    if single.is_file():
        return _load(single)
    index = folder / SHARD_INDEX
    if not index.is_file():
        raise AtomError(f"HF weights not found: {single} (nor a sharded {SHARD_INDEX})")
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (json.JSONDecodeError, KeyError, AttributeError) as exc:
        raise AtomError(f"{index} is not a valid shard index: {exc!r}") from None
    tensors: dict[str, Tensor] = {}
    for shard in shards:
        tensors.update(_load(folder / shard))
    return tensors


def _load(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise AtomError(f"HF weights shard not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise AtomError(f"{path} is not a readable safetensors file: {exc}") from None


def copy_into(targets: dict[str, Tensor], tensors: dict[str, Tensor], source: str) -> None:
    """Copy `tensors[name]` into `targets[name]` for every name, in place.

    targets: checkpoint tensor name -> our parameter (or a scratch tensor the caller
    post-processes). Both sides must hold exactly the same names and shapes; the
    caller drops the checkpoint tensors it deliberately ignores before calling.
    """
    unknown = sorted(set(tensors) - set(targets))
    if unknown:
        raise AtomError(f"{source}: unknown tensor {unknown[0]!r}{_more(unknown)}")
    missing = sorted(set(targets) - set(tensors))
    if missing:
        raise AtomError(f"{source}: missing tensor {missing[0]!r}{_more(missing)}")
    for name, target in targets.items():
        found = tuple(tensors[name].shape)
        if found != tuple(target.shape):
            raise AtomError(f"{source}: tensor {name!r} has shape {found}, expected {tuple(target.shape)}")
        if not tensors[name].is_floating_point():
            raise AtomError(f"{source}: tensor {name!r} has dtype {tensors[name].dtype}, expected a float")
    with torch.no_grad():
        for name, target in targets.items():
            target.copy_(tensors[name])  # casts bf16/fp16 checkpoints to our fp32


def check_fields(found: dict[str, Any], config: Any, hf_names: dict[str, str], source: str) -> None:
    """Each `found[ours]` (read from config.json's `hf_names[ours]`) must equal `config.ours`."""
    for ours, value in found.items():
        expected = getattr(config, ours)
        same = math.isclose(value, expected, rel_tol=1e-9) if isinstance(value, float) else value == expected
        if not same:
            raise AtomError(
                f"{source}: config.json {hf_names.get(ours, ours)}={value!r} does not match "
                f"our {type(config).__name__}.{ours}={expected!r}"
            )


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""
