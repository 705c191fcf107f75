"""Weight import: the kit's own safetensors format and local Hugging Face checkpoints.

HF importers are strict: an unknown, missing or wrongly shaped tensor, or a config.json
field that disagrees with our config, is an `AtomError` naming it.
"""

from atom_deploy.weights.hf_clip import encoder_config_from_clip, load_clip_vision
from atom_deploy.weights.hf_llama import decoder_config_from_llama, llama_tokenizer_path, load_llama
from atom_deploy.weights.minilm import load_minilm, minilm_folder

__all__ = [
    "decoder_config_from_llama",
    "encoder_config_from_clip",
    "llama_tokenizer_path",
    "load_clip_vision",
    "load_llama",
    "load_minilm",
    "minilm_folder",
]
