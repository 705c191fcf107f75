"""Tokenizers read from the artifact folder, and input-text checks shared by every task."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from atom_runner.errors import AtomError


def check_text(text: object, what: str) -> str:
    """Accept str, or UTF-8 bytes; anything else (or undecodable bytes) is an error."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AtomError(f"{what} is not valid UTF-8 (byte 0x{text[exc.start]:02x} at offset {exc.start})") from None
    if not isinstance(text, str):
        raise AtomError(f"{what} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. undecodable bytes in argv
        raise AtomError(f"{what} is not valid UTF-8 (undecodable character at offset {exc.start})") from None
    return text


def load_tokenizer(path) -> Tokenizer:
    """A tokenizer.json; a file the tokenizers library cannot read is a one-line error."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception with serde's message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AtomError(f"tokenizer {path} could not be read: {first}") from None


class DecoderTokenizer:
    """Byte-level BPE of the decoder: prompts to ids (no specials), ids back to text."""

    def __init__(self, path, special_ids: set[int]):
        self._tok = load_tokenizer(path)
        self._special = special_ids

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode([i for i in ids if i not in self._special], skip_special_tokens=True).strip()


class MiniLMTokenizer:
    """WordPiece of all-MiniLM-L6-v2, padded per batch and truncated like sentence-transformers."""

    def __init__(self, path, max_seq_length: int, pad_id: int = 0):
        self._tok = load_tokenizer(path)
        self._tok.enable_truncation(max_seq_length)
        self._tok.enable_padding(pad_id=pad_id)

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask
