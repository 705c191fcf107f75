"""What an index or assemble job does: checks made before it is queued, an estimate of its
clips for progress, and the pipeline call itself (atom_deploy/pipelines, unchanged)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from atom_deploy.pipelines.assemble import assemble
from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.pipelines.sources import canonical, expand_inputs
from atom_deploy.serve.index_handle import IndexHandle
from atom_deploy.serve.jobs import Job
from atom_deploy.serve.queued_session import QueuedSession
from atom_deploy.serve.schemas import AssembleRequest, IndexRequest
from atom_deploy.video.decode import probe
from atom_deploy.video.segment import segment
from atom_runner.errors import AtomError

Work = Callable[[Job, QueuedSession], dict]


def check_inputs(inputs: list[str]) -> None:
    """Every input exists on the server's disk: a typo is a 400 now, not a failed job later."""
    _, problems = expand_inputs(inputs)
    if problems:
        raise AtomError("; ".join(reason for _, reason in problems))


def estimate_clips(index: ClipIndex, inputs: list[str], window_s: float, stride_s: float) -> int | None:
    """Windows still to caption (each file's windows minus those stored); None if unknown.
    An estimate: a changed file is counted as resumable until the job hashes it."""
    segment(window_s, window_s, stride_s)  # a bad window/stride is the caller's 400
    files, _ = expand_inputs(inputs)
    total = 0
    for path in files:
        try:
            windows = len(segment(probe(path).duration_s, window_s, stride_s))
        except AtomError:
            continue  # the job reports the file
        row = index.video(str(canonical(path)))
        if row is not None and (row.window_s, row.stride_s) == (window_s, stride_s):
            windows = 0 if row.status == "complete" else max(0, windows - len(index.windows_done(row.path)))
        total += windows
    return total


def index_work(request: IndexRequest, handle: IndexHandle) -> Work:
    def work(job: Job, session: QueuedSession) -> dict:
        report = index_videos(
            session, handle.get(), request.inputs, request.window_s, request.stride_s, request.beam,
            prune=request.prune, progress=False, commit_every=request.commit_every,
        )
        return {**report.as_dict(), "total_clips": handle.get().count()}

    return work


def check_reel_path(out: str) -> None:
    path = Path(out)
    if path.suffix.lower() != ".mp4":
        raise AtomError(f"out must name an .mp4 file, not {path.name!r}")
    if not path.parent.is_dir():
        raise AtomError(f"cannot write {out}: folder {path.parent} does not exist")


def assemble_work(request: AssembleRequest, handle: IndexHandle) -> Work:
    def work(job: Job, session: QueuedSession) -> dict:
        reel = assemble(
            session, handle.get(), request.prompt, request.inputs, request.out, k=request.k,
            window_s=request.window_s, stride_s=request.stride_s, beam=request.beam, progress=False,
        )
        return reel.as_dict()

    return work
