"""A checkpoint's text conventions, read from its HF folder: BOS or not, every EOS id, pad,
and the chat template. The exporter writes them to the manifest; both runners follow them.

- BOS: transformers' default `tokenizer(text)` adds what the tokenizer.json post-processor
  adds. We ask the post-processor itself (encode with and without special tokens), so a
  Llama-3 TemplateProcessing gives BOS and SmolLM2's empty one gives none.
- EOS: `generation_config.json`'s `eos_token_id` when present (what `generate` stops on),
  else `config.json`'s; an int or a list, every id kept.
- Chat: `chat_template.jinja` (transformers 5) or `tokenizer_config.json`'s `chat_template`
  (a string, or a list of named templates: "default"), with the special tokens it may use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atom_runner.errors import AtomError
from atom_runner.schema import Key
from atom_runner.text import load_tokenizer

CHAT_TEMPLATE_FILE = "chat_template.jinja"
TEMPLATE_TOKENS = ("bos_token", "eos_token", "pad_token", "unk_token")  # the variables transformers passes


@dataclass(frozen=True)
class CheckpointConventions:
    add_bos: bool
    eos_ids: tuple[int, ...]
    chat: dict[str, Any] | None  # the manifest's chat record (template, special tokens, precompiled parts)

    @classmethod
    def kit(cls, eos_id: int) -> "CheckpointConventions":
        """The kit's own models (demo, presets) were trained with BOS first and one EOS."""
        return cls(True, (eos_id,), None)


def read_conventions(folder: Path, bos_id: int, eos_ids: tuple[int, ...]) -> CheckpointConventions:
    from atom_deploy.export.chat_parts import precompile

    tokenizer = load_tokenizer(folder / "tokenizer.json")
    probe = "a"
    plain = tokenizer.encode(probe, add_special_tokens=False).ids
    with_specials = tokenizer.encode(probe, add_special_tokens=True).ids
    add_bos = with_specials[:1] == [bos_id] and plain[:1] != [bos_id]
    template = _chat_template(folder)
    chat = None
    if template is not None:
        chat = {Key.CHAT_TEMPLATE: template, Key.CHAT_SPECIAL_TOKENS: _special_tokens(folder)}
        parts = precompile(chat)
        if parts is not None:
            chat[Key.CHAT_PARTS] = parts
    return CheckpointConventions(add_bos, eos_ids, chat)


def eos_ids_of(config: dict, generation: dict | None, source: str) -> tuple[int, ...]:
    value = (generation or {}).get("eos_token_id", config.get("eos_token_id"))
    ids = value if isinstance(value, list) else [value]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise AtomError(f"{source}: eos_token_id must be an integer or a list of integers, got {value!r}")
    return tuple(dict.fromkeys(ids))  # order kept, duplicates dropped


def read_generation_config(folder: Path) -> dict | None:
    path = folder / "generation_config.json"
    return _json(path) if path.is_file() else None


def _chat_template(folder: Path) -> str | None:
    path = folder / CHAT_TEMPLATE_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8")
    config = _tokenizer_config(folder)
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def _special_tokens(folder: Path) -> dict[str, str]:
    config = _tokenizer_config(folder)
    out = {}
    for name in TEMPLATE_TOKENS:
        value = config.get(name)
        value = value.get("content") if isinstance(value, dict) else value  # AddedToken form
        if isinstance(value, str):
            out[name] = value
    return out


def _tokenizer_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    return _json(path) if path.is_file() else {}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AtomError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AtomError(f"{path} must hold a JSON object")
    return data
