"""Index videos: segment -> caption (caption_stream overlap) -> embed (MiniLM) -> store.

Incremental by content: a file whose sha256 and segmentation match a 'complete' row is
skipped; changed content replaces its rows; a 'partial' file (an earlier run was killed)
resumes with only its missing windows. Clips are committed in small batches, so a kill
loses at most one batch. A file that fails is reported at the end; the batch goes on,
and so does a file another run re-indexed with another segmentation meanwhile (its
clips are that run's: see index_db). clips_added counts rows really added.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from atom_deploy.pipelines.captioning import Captioned, FileOutcome, caption_file
from atom_deploy.pipelines.index_db import ClipIndex, VideoRow, VideoTakenOver
from atom_deploy.pipelines.model_facts import clip_spec
from atom_deploy.pipelines.sources import canonical, content_sha256, expand_inputs
from atom_deploy.video.decode import probe
from atom_deploy.video.segment import segment
from atom_runner.errors import AtomError
from atom_runner.session import Session

COMMIT_EVERY_CLIPS = 8  # a batch is also one MiniLM call: bigger batches embed faster
COMMIT_EVERY_S = 2.0  # ... but a slow model still commits often


@dataclass
class IndexReport:
    indexed: list[str] = field(default_factory=list)  # captioned in this run (fully or resumed)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    pruned: list[str] = field(default_factory=list)
    clips_added: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "indexed": self.indexed, "unchanged": self.unchanged, "pruned": self.pruned,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "clips_added": self.clips_added, "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class VideoJob:
    """A file to caption: its content hash and the windows not stored yet, in timeline order."""

    path: Path
    sha256: str
    todo: tuple[tuple[float, float], ...]


def index_videos(
    session: Session, index: ClipIndex, inputs: Sequence[str | Path], window_s: float = 10.0, stride_s: float = 5.0,
    beam: int = 4, prune: bool = False, progress: bool = True, commit_every: int = COMMIT_EVERY_CLIPS,
) -> IndexReport:
    started = time.perf_counter()
    if commit_every < 1:
        raise AtomError(f"commit_every must be at least 1 clip, got {commit_every}")
    report, jobs = plan_run(index, inputs, window_s, stride_s, prune)
    spec = clip_spec(session)
    total = sum(len(j.todo) for j in jobs)
    bar = tqdm(total=total, unit="clip", file=sys.stderr, disable=not progress or total == 0, dynamic_ncols=True)
    try:
        for job in jobs:
            bar.set_postfix_str(job.path.name, refresh=False)
            key = str(job.path)
            video = index.start_video(key, job.sha256, window_s, stride_s)
            outcome = FileOutcome()
            try:
                added = _index_file(session, index, video, job.path, spec, beam, outcome, commit_every, bar)
            except VideoTakenOver as exc:
                report.skipped.append((key, str(exc)))  # what it added went with the other run's restart
                continue
            report.clips_added += added
            if outcome.error is not None:
                # Its whole clips stay stored; the row stays 'partial', so a re-run tries the rest again.
                report.skipped.append((key, outcome.error))
                continue
            index.finish_video(video)
            report.indexed.append(key)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _index_file(
    session: Session, index: ClipIndex, video: VideoRow, path: Path, spec, beam: int, outcome: FileOutcome,
    commit_every: int, bar: tqdm,
) -> int:
    """Caption and store the windows of `video` not stored yet; returns the clips added."""
    added = 0
    batch: list[Captioned] = []
    last_commit = time.perf_counter()
    done = index.windows_done(video.path)
    captions = caption_file(session, path, spec, video.window_s, video.stride_s, beam, outcome, done)
    with closing(captions):  # stopped early (VideoTakenOver): the clip still at the encoder is dropped
        for item in captions:
            batch.append(item)
            bar.update(1)
            if len(batch) >= commit_every or time.perf_counter() - last_commit >= COMMIT_EVERY_S:
                added += _store(session, index, video, batch)
                batch, last_commit = [], time.perf_counter()
    return added + _store(session, index, video, batch)


def plan_run(
    index: ClipIndex, inputs: Sequence[str | Path], window_s: float, stride_s: float, prune: bool,
) -> tuple[IndexReport, list[VideoJob]]:
    """What a run (of any engine) has to caption: the files' missing windows. Prunes first
    when asked; unchanged files and unreadable inputs are already in the report."""
    segment(window_s, window_s, stride_s)  # bad window/stride: one error now, not one per file
    report = IndexReport()
    files, missing = expand_inputs(inputs)
    report.skipped.extend(missing)
    if prune:
        gone = [p for p in index.video_paths() if not Path(p).is_file()]
        index.drop_videos(gone)
        report.pruned = gone
    return report, _plan(index, files, window_s, stride_s, report)


def _plan(index: ClipIndex, files: list[Path], window_s: float, stride_s: float, report: IndexReport) -> list[VideoJob]:
    """Hash and probe every file first, so the progress bar knows the total and bad files drop out."""
    jobs = []
    for path in files:
        key = str(canonical(path))
        try:
            sha = content_sha256(path)
            row = index.video(key)
            if row and row.status == "complete" and (row.content_sha256, row.window_s, row.stride_s) == (sha, window_s, stride_s):
                report.unchanged.append(key)
                continue
            windows = [(w.start, w.end) for w in segment(probe(path).duration_s, window_s, stride_s)]
        except AtomError as exc:
            report.skipped.append((key, str(exc)))
            continue
        except OSError as exc:  # unreadable file (permissions, vanished mid-run)
            report.skipped.append((key, f"{path}: {exc.strerror or exc}"))
            continue
        resuming = row is not None and row.content_sha256 == sha and (row.window_s, row.stride_s) == (window_s, stride_s)
        done = index.windows_done(key) if resuming else set()
        jobs.append(VideoJob(canonical(path), sha, tuple(w for w in windows if w not in done)))
    return jobs


def _store(session: Session, index: ClipIndex, video: VideoRow, batch: list[Captioned]) -> int:
    if not batch:
        return 0
    vectors = session.embed([c.caption for c in batch])
    return index.add_clips(video, [(c.start_s, c.end_s, c.caption, v) for c, v in zip(batch, vectors)])
