"""Video file -> (window, caption) pairs through Session.caption_stream (encoder/decoder overlap).

A file that fails part-way (truncated, damaged) must not break the stream: the session's
encoder may hold a clip already submitted, and a half-finished stream would leave it
there for the next file. So decoding errors are caught at the clip source, the stream
ends normally, and the error is handed back to the caller beside the captions it got.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterator
from dataclasses import dataclass
from pathlib import Path

from atom_deploy.video.clips import iter_clips
from atom_deploy.video.preprocess import ClipSpec
from atom_runner.errors import AtomError
from atom_runner.session import Session


@dataclass(frozen=True)
class Captioned:
    start_s: float
    end_s: float
    caption: str


@dataclass
class FileOutcome:
    """Filled while a file streams; `error` is set when it stopped early."""

    error: str | None = None
    skipped_windows: int = 0  # already in the index, not captioned again


def clean_caption(text: str) -> str:
    """One line of printable text. The prompt formats number captions one per line, and an
    untrained decoder writes newlines, tabs and control bytes."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def caption_file(
    session: Session,
    path: Path,
    spec: ClipSpec,
    window_s: float,
    stride_s: float,
    beam: int,
    outcome: FileOutcome,
    done: Container[tuple[float, float]] = frozenset(),
    only: Collection[tuple[float, float]] | None = None,
) -> Iterator[Captioned]:
    """Captions of the file's windows not in `done`, in timeline order, as they are made.
    `only`: caption just these windows, decoding only the part of the file they cover."""
    windows: list[tuple[float, float]] = []

    def tensors():
        try:
            for clip in iter_clips(path, spec, window_s, stride_s, only):
                if (clip.start, clip.end) in done:
                    outcome.skipped_windows += 1
                    continue
                windows.append((clip.start, clip.end))
                yield clip.tensor
        except AtomError as exc:
            outcome.error = str(exc)

    for number, caption in enumerate(session.caption_stream(tensors(), beam=beam)):
        yield Captioned(*windows[number], clean_caption(caption))

