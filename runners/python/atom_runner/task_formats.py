"""The text formats of the decoder's text-only tasks: the contract used verbatim at inference.

Every input starts with the clip captions as a numbered list (0-based, the number the
script refers to) and ends with a cue line; the decoder writes the target after it.
Lines are joined with "\\n"; captions are lower-case with no trailing period.

Assembly script::

    clips:
    0: a small red square moves left on a striped blue background
    1: a green circle bounces while a small yellow star spins
    request: make a highlight reel of the red objects
    script:

  target: ``clip 0: the red square moves left`` -- entries ``clip <i>: <narration>``
  joined by `` | ``, in playing order; ``no matching clips`` when nothing fits.

Summary::

    clips:
    0: ...
    summary:

  target: ``two clips with a red square, a green circle and a yellow star``

Question answering::

    clips:
    0: ...
    question: how many clips show a red object?
    answer:

  target: a short answer: a number word (``two``), ``yes``/``no``, ``it moves left``,
  ``clip 1`` or a colour name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CLIPS_HEADER = "clips:"
REQUEST_PREFIX = "request:"
SCRIPT_CUE = "script:"
SUMMARY_CUE = "summary:"
QUESTION_PREFIX = "question:"
ANSWER_CUE = "answer:"
SCRIPT_SEPARATOR = " | "
NO_MATCHING_CLIPS = "no matching clips"

_SCRIPT_ENTRY = re.compile(r"clip (\d+): (\S.*)")


def clip_list(captions: Sequence[str]) -> str:
    if not captions:
        raise ValueError("a text task needs at least one clip caption")
    lines = [CLIPS_HEADER]
    for index, caption in enumerate(captions):
        if "\n" in caption:
            raise ValueError(f"clip {index}'s caption spans lines: {caption!r}")
        lines.append(f"{index}: {caption}")
    return "\n".join(lines)


def assembly_input(captions: Sequence[str], prompt: str) -> str:
    return f"{clip_list(captions)}\n{REQUEST_PREFIX} {prompt}\n{SCRIPT_CUE}"


def summary_input(captions: Sequence[str]) -> str:
    return f"{clip_list(captions)}\n{SUMMARY_CUE}"


def qa_input(captions: Sequence[str], question: str) -> str:
    return f"{clip_list(captions)}\n{QUESTION_PREFIX} {question}\n{ANSWER_CUE}"


def format_script(entries: Sequence[tuple[int, str]]) -> str:
    if not entries:
        return NO_MATCHING_CLIPS
    return SCRIPT_SEPARATOR.join(f"clip {index}: {narration}" for index, narration in entries)


def parse_script(text: str, num_clips: int | None = None) -> list[tuple[int, str]]:
    """[(clip index, narration)] in playing order; ValueError names the first bad entry.

    With `num_clips`, indices must also lie in 0..num_clips-1 (a decoder can invent clips).
    """
    text = text.strip()
    if text == NO_MATCHING_CLIPS:
        return []
    entries = []
    for raw in text.split(SCRIPT_SEPARATOR.strip()):
        match = _SCRIPT_ENTRY.fullmatch(raw.strip())
        if match is None:
            raise ValueError(f"script entry {raw.strip()!r} is not 'clip <index>: <narration>'")
        index = int(match.group(1))
        if num_clips is not None and not 0 <= index < num_clips:
            raise ValueError(f"script names clip {index}, but there are {num_clips} clips")
        entries.append((index, match.group(2).strip()))
    return entries
