"""Import a local transformers `LlamaForCausalLM` checkpoint into our `Decoder`.

Our module names mirror HF's (`layers.N.self_attn.q_proj`, `mlp.gate_proj`, ...), so the
mapping is HF's name minus the `model.` prefix. `lm_head.weight` is absent from tied
checkpoints; where a tied checkpoint still stores it, it must equal the embedding.
Legacy `rotary_emb.inv_freq` buffers are ignored: our RoPE tables come from the config.

Rope settings are read from `rope_parameters` (transformers 5, with rope_theta inside)
or from `rope_scaling` + a top-level `rope_theta` (transformers 4, the Llama 3.2 hub
files). Only the "default" and "llama3" rope types exist in our decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from atom_deploy.config import DecoderConfig
from atom_deploy.models.decoder import Decoder
from atom_deploy.weights.checkpoint_io import check_fields, config_field, copy_into, read_config, read_tensors
from atom_runner.errors import AtomError

# Our DecoderConfig field -> Llama config.json key.
_BASE_FIELDS = {
    "vocab_size": "vocab_size",
    "dim": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "intermediate_size": "intermediate_size",
    "norm_eps": "rms_norm_eps",
    "tie_embeddings": "tie_word_embeddings",
}
# Our DecoderConfig field -> key in the "llama3" rope dict.
_LLAMA3_FIELDS = {
    "rope_scaling_factor": "factor",
    "rope_low_freq_factor": "low_freq_factor",
    "rope_high_freq_factor": "high_freq_factor",
    "rope_original_max_positions": "original_max_position_embeddings",
}
_FIELDS = {**_BASE_FIELDS, "rope_theta": "rope_theta", **_LLAMA3_FIELDS}
# What transformers' LlamaConfig assumes when config.json leaves these out.
_HF_DEFAULTS = {"rms_norm_eps": 1e-6, "tie_word_embeddings": False, "rope_theta": 10000.0}


def decoder_config_from_llama(folder: Path, max_context: int = 128, max_batch: int = DecoderConfig.max_batch) -> DecoderConfig:
    """Our decoder config from a Llama config.json.

    `eos_token_id` may be a list (Llama 3.2 Instruct: end_of_text, eom, eot): eos_id is the
    first, and hf_conventions.eos_ids_of keeps them all for the manifest. Llama has no pad
    token: pad falls back to eos.
    """
    from atom_deploy.weights.hf_conventions import eos_ids_of, read_generation_config

    config = read_config(folder)
    source = str(folder / "config.json")
    config_field(config, "eos_token_id", source)
    eos = eos_ids_of(config, read_generation_config(folder), source)[0]
    pad = config.get("pad_token_id")
    return DecoderConfig(
        **_llama_fields(folder),
        max_context=max_context,
        max_batch=max_batch,
        bos_id=config_field(config, "bos_token_id", source),
        eos_id=eos,
        pad_id=eos if pad is None else pad,
    )


def load_llama(folder: Path, decoder: Decoder) -> None:
    source = str(folder / "model.safetensors")
    check_fields(_llama_fields(folder), decoder.config, _FIELDS, str(folder / "config.json"))
    tensors = {k: v for k, v in read_tensors(folder).items() if not k.endswith("rotary_emb.inv_freq")}
    tied_head = tensors.pop("lm_head.weight", None) if decoder.config.tie_embeddings else None
    embed = tensors.get("model.embed_tokens.weight")
    if tied_head is not None and embed is not None and not torch.equal(tied_head, embed):
        raise AtomError(
            f"{source}: tensor 'lm_head.weight' differs from 'model.embed_tokens.weight' but the embeddings are tied"
        )
    copy_into(_targets(decoder), tensors, source)


def llama_tokenizer_path(folder: Path) -> Path:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise AtomError(f"Llama tokenizer not found: {path}")
    return path


def _targets(decoder: Decoder) -> dict[str, Tensor]:
    # named_parameters() lists a tied lm_head.weight once, under embed_tokens.
    targets = {f"model.{name}": param for name, param in decoder.named_parameters() if not name.startswith("lm_head.")}
    if not decoder.config.tie_embeddings:
        targets["lm_head.weight"] = decoder.lm_head.weight
    return targets


def _llama_fields(folder: Path) -> dict[str, Any]:
    config = {**_HF_DEFAULTS, **read_config(folder)}
    source = str(folder / "config.json")
    if config.get("model_type") != "llama":
        raise AtomError(f"{source}: model_type {config.get('model_type')!r} is not 'llama'")
    for key, supported in (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)):
        if config.get(key, supported) != supported:
            raise AtomError(f"{source}: {key}={config[key]!r} is not supported (our decoder has {supported!r})")
    config.setdefault("num_key_value_heads", config.get("num_attention_heads"))  # no GQA: kv == heads
    fields = {ours: config_field(config, hf, source) for ours, hf in _BASE_FIELDS.items()}
    head_dim = config.get("head_dim")
    if head_dim is not None and head_dim * fields["heads"] != fields["dim"]:
        raise AtomError(f"{source}: head_dim={head_dim} is not hidden_size / num_attention_heads, as our decoder needs")
    rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    fields["rope_theta"] = float(rope.get("rope_theta", config["rope_theta"]))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "default":
        fields["rope_scaling_factor"] = 0.0  # disables scaling in our decoder
    elif rope_type == "llama3":
        for ours, hf in _LLAMA3_FIELDS.items():
            fields[ours] = config_field(rope, hf, f"{source} rope parameters")
        for ours in ("rope_scaling_factor", "rope_low_freq_factor", "rope_high_freq_factor"):
            fields[ours] = float(fields[ours])
    else:
        raise AtomError(f"{source}: rope_type {rope_type!r} is not supported (only 'default' and 'llama3')")
    return fields
