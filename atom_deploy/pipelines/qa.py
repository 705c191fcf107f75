"""Summarize a video, or answer a question about it: caption its clips, then one text-only call.

Captions come from the index when one is given (indexing the file first if needed, so a
second question about the same video costs one decoder call), else straight from the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from atom_deploy.pipelines.captioning import Captioned, FileOutcome, caption_file
from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.pipelines.model_facts import clip_spec
from atom_deploy.pipelines.script import TextAnswer, write_answer, write_summary
from atom_deploy.pipelines.sources import canonical
from atom_runner.errors import AtomError
from atom_runner.session import Session


@dataclass(frozen=True)
class VideoAnswer:
    video: str
    text: str
    captions: list[Captioned]  # every clip, in timeline order
    used: list[int]  # the clips the decoder's prompt held (the context may not fit them all)
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def video_captions(
    session: Session, video: str | Path, window_s: float = 10.0, stride_s: float = 5.0, beam: int = 4,
    index: ClipIndex | None = None, progress: bool = False,
) -> tuple[list[Captioned], str | None]:
    """(captions in timeline order, a note when the file stopped early). Unreadable: AtomError."""
    path = canonical(video)
    if index is not None:
        report = index_videos(session, index, [path], window_s, stride_s, beam, progress=progress)
        problem = report.skipped[0][1] if report.skipped else None
        captions = [Captioned(c.start_s, c.end_s, c.caption) for c in index.clips_of(str(path))]
    else:
        if not path.is_file():
            raise AtomError(f"{video}: no such video file")
        outcome = FileOutcome()
        captions = list(caption_file(session, path, clip_spec(session), window_s, stride_s, beam, outcome))
        problem = outcome.error
    if not captions:
        raise AtomError(problem or f"{video}: no clips to caption")
    note = f"{problem} (using the {len(captions)} clips before that)" if problem else None
    return captions, note


def _answered(video: str | Path, captions: list[Captioned], answer: TextAnswer, note: str | None) -> VideoAnswer:
    if len(answer.used) < len(captions):
        fit = f"the decoder's context held {len(answer.used)} of {len(captions)} clip captions, spread over the video"
        note = f"{note}; {fit}" if note else fit
    return VideoAnswer(str(video), answer.text, captions, answer.used, note)


@dataclass(frozen=True)
class CaptionOptions:
    window_s: float = 10.0
    stride_s: float = 5.0
    beam: int = 4
    progress: bool = False


def summarize(session: Session, video: str | Path, index: ClipIndex | None = None, options: CaptionOptions = CaptionOptions()) -> VideoAnswer:
    captions, note = video_captions(session, video, options.window_s, options.stride_s, options.beam, index, options.progress)
    return _answered(video, captions, write_summary(session, [c.caption for c in captions]), note)


def ask(
    session: Session, video: str | Path, question: str, index: ClipIndex | None = None, options: CaptionOptions = CaptionOptions()
) -> VideoAnswer:
    captions, note = video_captions(session, video, options.window_s, options.stride_s, options.beam, index, options.progress)
    return _answered(video, captions, write_answer(session, [c.caption for c in captions], question), note)
