"""The demo model's tokenizer: a byte-level BPE trained on the generated world's text.

Same tokenizer family as Llama 3 (byte-level BPE, so any UTF-8 prompt encodes), but with
a vocabulary fitted to the world: every caption word is then one token, which keeps
captions inside the 23-step decode and makes a small decoder cheap to train.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from atom_deploy.demo import make_split, make_text_examples
from atom_deploy.text.tokenizers import SPECIAL_TOKENS
from atom_runner.errors import AtomError

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
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),  # pad 0, bos 1, eos 2: the demo preset's ids
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(world_corpus(seed, clips_per_example), trainer=trainer)
    if tokenizer.get_vocab_size() > vocab_size:
        raise AtomError(f"tokenizer needs {tokenizer.get_vocab_size()} ids, decoder has {vocab_size}")
    tokenizer.save(str(out))
    return out
