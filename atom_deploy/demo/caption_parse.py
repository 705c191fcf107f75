"""Read a caption back into facts: which coloured objects, doing what, on what background.

The text tasks derive their targets from captions alone (at inference they only have
the captioner's text), and evaluation uses the same reader to score a generated caption
against a scene. It understands every wording in captions.py; on other text it reports
what it can recognise and leaves the rest as None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from atom_deploy.demo.captions import BACKGROUND_NOUNS, KIND_WORDS, MOTION_WORDS, SIZE_WORDS
from atom_deploy.demo.vocab import BACKGROUND_COLOURS, OBJECT_COLOURS


@dataclass(frozen=True)
class MentionedObject:
    kind: str
    colour: str | None
    size: str | None  # None when unsaid (canonical captions never say "medium")
    motion: str | None


@dataclass(frozen=True)
class ParsedCaption:
    objects: tuple[MentionedObject, ...]
    background_colour: str | None
    camera_pan: bool


def phrase_table(words: dict[str, Sequence[str]]) -> list[tuple[tuple[str, ...], str]]:
    # Longest phrases first, so "bounces up and down" wins over "bounces".
    table = [(tuple(phrase.split()), name) for name, phrases in words.items() for phrase in phrases]
    return sorted(table, key=lambda entry: -len(entry[0]))


_KIND_PHRASES = phrase_table(KIND_WORDS)
_MOTION_PHRASES = phrase_table(MOTION_WORDS)
_SIZE_BY_WORD = {word: size for size, words in SIZE_WORDS.items() for word in words}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def match_phrase(words: list[str], at: int, table: list[tuple[tuple[str, ...], str]]) -> tuple[str, int] | None:
    """(name, length) of the longest phrase in `table` starting at words[at], if any."""
    for phrase, name in table:
        if tuple(words[at:at + len(phrase)]) == phrase:
            return name, len(phrase)
    return None


def parse_caption(text: str) -> ParsedCaption:
    words = words_of(text)
    # (kind, colour, size, first word index, index after the noun)
    found: list[tuple[str, str | None, str | None, int, int]] = []
    i = 0
    while i < len(words):
        hit = match_phrase(words, i, _KIND_PHRASES)
        if hit is None:
            i += 1
            continue
        kind, length = hit
        colour = words[i - 1] if i >= 1 and words[i - 1] in OBJECT_COLOURS else None
        size_at = i - 2 if colour else i - 1
        size = _SIZE_BY_WORD.get(words[size_at]) if size_at >= 0 else None
        found.append((kind, colour, size, i, i + length))
        i += length
    objects = []
    for n, (kind, colour, size, _, end) in enumerate(found):
        stop = found[n + 1][3] if n + 1 < len(found) else len(words)
        objects.append(MentionedObject(kind, colour, size, _first_motion(words, end, stop)))
    return ParsedCaption(
        objects=tuple(objects),
        background_colour=_background_colour(words),
        camera_pan="camera" in words or "pans" in words,
    )


def _first_motion(words: list[str], start: int, stop: int) -> str | None:
    for at in range(start, stop):
        hit = match_phrase(words[:stop], at, _MOTION_PHRASES)
        if hit is not None:
            return hit[0]
    return None


def _background_colour(words: list[str]) -> str | None:
    # "a striped blue background", "a blue gradient": a colour one or two words before
    # a background noun describes the background, not an object.
    for i, word in enumerate(words):
        if word in BACKGROUND_COLOURS and any(w in BACKGROUND_NOUNS for w in words[i + 1:i + 3]):
            return word
    return None
