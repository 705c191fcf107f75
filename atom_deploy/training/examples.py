"""Training examples as token ids, batched: clips with their canonical caption, and text tasks.

The sequence layout is the runner's prefill exactly (atom_runner.decoding.prefill):

    caption:  BOS, visual prefix (N_vis embeddings), caption tokens, EOS
    text:     BOS, prompt tokens,                    target tokens,  EOS

so what the decoder learns is what it is asked at inference. Loss falls only on the
target tokens and EOS. Example i of a run is always the same (seeded per index), so a
run is reproducible and the producer can run ahead in a worker process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from atom_deploy.demo import sample_at
from atom_deploy.demo.dataset import text_example_at
from atom_deploy.training.attributes import attribute_vector, single_object_motion
from atom_deploy.training.object_motion import object_motions
from atom_deploy.video.preprocess import ClipSpec, to_clip_tensor

IGNORE = -100  # label of positions that carry no loss


@dataclass(frozen=True)
class TokenizedText:
    prompt: list[int]
    target: list[int]  # ends with EOS


@dataclass
class CaptionBatch:
    clips: torch.Tensor  # [B, 3, T, S, S] float32, CLIP-normalised
    targets: torch.Tensor  # [B, L] int64, right-padded with pad_id
    lengths: torch.Tensor  # [B] tokens per target, EOS included
    attributes: torch.Tensor  # [B, len(ATTRIBUTES)] 0/1: the scene's facts, for the attribute probe
    motions: torch.Tensor  # [B] int64: index in MOTIONS of a single object's motion, NO_SINGLE_MOTION otherwise
    objects: torch.Tensor  # [B, MAX_OBJECTS, 2] int64: each object's (colour, motion) indices, NO_OBJECT padded


@dataclass
class TextBatch:
    tokens: torch.Tensor  # [B, S] int64: BOS + prompt + target, right-padded
    labels: torch.Tensor  # [B, S] int64: next token at target positions, IGNORE elsewhere


class Encoding:
    """Tokenizer + special ids, picklable for the producer process."""

    def __init__(self, tokenizer_path: str, bos_id: int, eos_id: int, pad_id: int):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(tokenizer_path)
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    def ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def caption(self, caption: str) -> list[int]:
        return self.ids(caption) + [self.eos_id]

    def text_task(self, prompt: str, target: str) -> TokenizedText:
        # The target follows the cue ("script:") after a space, as it would in running text.
        return TokenizedText(self.ids(prompt), self.ids(" " + target) + [self.eos_id])


def caption_batch(encoding: Encoding, spec: ClipSpec, seed: int, start: int, size: int) -> CaptionBatch:
    clips, targets, attributes, motions, objects = [], [], [], [], []
    for index in range(start, start + size):
        sample = sample_at("train", index, seed, spec.num_frames, spec.size)
        clips.append(to_clip_tensor(list(sample.frames()), spec)[0])
        targets.append(encoding.caption(sample.canonical))
        attributes.append(attribute_vector(sample.scene))
        motions.append(single_object_motion(sample.scene))
        objects.append(object_motions(sample.scene))
    return CaptionBatch(
        torch.from_numpy(np.stack(clips)),
        _pad(targets, encoding.pad_id),
        torch.tensor([len(t) for t in targets]),
        torch.stack(attributes),
        torch.tensor(motions),
        torch.stack(objects),
    )


def text_batch(encoding: Encoding, seed: int, start: int, size: int, clips_per_example: tuple[int, int]) -> TextBatch:
    # Tasks rotate by index, so any range of 3k examples is balanced.
    examples = [text_example_at("train", i, seed, clips_per_example)[1] for i in range(start, start + size)]
    rows = [encoding.text_task(e.input_text, e.target_text) for e in examples]
    sequences = [[encoding.bos_id, *r.prompt, *r.target] for r in rows]
    tokens = _pad(sequences, encoding.pad_id)
    labels = torch.full_like(tokens, IGNORE)
    for b, row in enumerate(rows):
        first = 1 + len(row.prompt)  # index of the first target token in the sequence
        # the hidden state at position p predicts token p + 1
        labels[b, first - 1 : first - 1 + len(row.target)] = torch.tensor(row.target)
    return TextBatch(tokens, labels)


def _pad(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.tensor(row)
    return out


class BatchStream(torch.utils.data.IterableDataset):
    """(CaptionBatch, TextBatch) for steps first..steps-1, made in a worker process."""

    def __init__(self, encoding: Encoding, spec: ClipSpec, seed: int, steps: int, caption_batch_size: int,
                 text_batch_size: int, clips_per_example: tuple[int, int], first: int = 0):
        self.encoding, self.spec, self.seed, self.steps = encoding, spec, seed, steps
        self.caption_batch_size, self.text_batch_size = caption_batch_size, text_batch_size
        self.clips_per_example, self.first = clips_per_example, first

    def __iter__(self) -> Iterator[tuple[CaptionBatch, TextBatch]]:
        for step in range(self.first, self.steps):
            yield (
                caption_batch(self.encoding, self.spec, self.seed, step * self.caption_batch_size, self.caption_batch_size),
                text_batch(self.encoding, self.seed, step * self.text_batch_size, self.text_batch_size, self.clips_per_example),
            )
