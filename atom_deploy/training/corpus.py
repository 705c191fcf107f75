"""The demo model's tokenizer: a byte-level BPE trained on the generated world's text.

Same tokenizer family as Llama 3 (byte-level BPE, so any UTF-8 prompt encodes), but with
a vocabulary fitted to the world: every caption word is then one token, which keeps
captions inside the 23-step decode and makes a small decoder cheap to train.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from atom_deploy.demo import make_split, make_text_examples
from atom_deploy.text.tokenizers import train_byte_bpe

# Enough clips and text examples that every word and phrasing of the world appears.
CORPUS_CLIPS = 4000
CORPUS_TEXT_EXAMPLES = 3000


def world_corpus(seed: int, clips_per_example: tuple[int, int]) -> Iterator[str]:
    """Captions (canonical and references) and text-task inputs/targets of the train split."""
    for sample in make_split("train", CORPUS_CLIPS, seed):
        yield sample.canonical
        yield from sample.captions
    for _, example in make_text_examples("train", CORPUS_TEXT_EXAMPLES, seed, clips_per_example):
        yield example.input_text
        yield example.target_text


def train_world_tokenizer(out: Path, vocab_size: int, seed: int, clips_per_example: tuple[int, int]) -> Path:
    return train_byte_bpe(world_corpus(seed, clips_per_example), out, vocab_size, vocab_size)
