"""Index and assemble as background jobs: queued in order, one running at a time, with
progress and cancellation (GET / DELETE /v1/jobs/{id}).

One at a time because both write the one index and share the one decoder: two would
only interleave. A job runs the pipelines on a QueuedSession, which counts its captions
and stops it at the next clip once cancelled. The index commits every few clips, so a
cancelled or killed job loses at most one uncommitted batch, and the next index request
for the same files resumes where it stopped (pipelines/indexing.py).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from atom_deploy.serve.admission import Gate
from atom_deploy.serve.queued_session import JobCancelled, QueuedSession
from atom_runner.errors import AtomError

QUEUED, RUNNING, CANCELLING, DONE, FAILED, CANCELLED = "queued", "running", "cancelling", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
KEEP_FINISHED = 100  # finished jobs remembered for GET; older ones are forgotten


@dataclass
class Job:
    id: str
    kind: str
    work: Callable[["Job", QueuedSession], dict]  # runs the pipeline, returns the result's JSON
    clips_total: int | None = None
    state: str = QUEUED
    stage: str = "queued"
    clips_done: int = 0
    result: dict | None = None
    error: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "kind": self.kind, "state": self.state,
            "progress": {"clips_done": self.clips_done, "clips_total": self.clips_total, "stage": self.stage},
            "result": self.result, "error": self.error,
        }


class JobRunner:
    def __init__(self, make_session: Callable[[Job, Callable[[], None]], QueuedSession], gate: Gate):
        self._make_session, self.gate = make_session, gate
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="atom-jobs", daemon=True)
        self._worker.start()

    def submit(self, kind: str, work: Callable[[Job, QueuedSession], dict], clips_total: int | None) -> Job:
        self.gate.enter()  # QueueFull: 503
        job = Job(uuid.uuid4().hex[:12], kind, work, clips_total)
        with self._cond:
            if self._closed:
                self.gate.leave()
                raise AtomError("the server is shutting down")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._forget_old()
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel_event.set()
            if job.state == QUEUED:
                self._waiting.remove(job)
                self._finish(job, CANCELLED, "cancelled before it started")
            else:
                job.state = job.stage = CANCELLING
        return job

    @property
    def depth(self) -> int:
        return self.gate.count

    def close(self) -> None:
        """Cancel what is queued or running (committed clips stay; a later request resumes), then stop."""
        with self._cond:
            self._closed = True
            for job_id in list(self._jobs):
                if self._jobs[job_id].state not in FINISHED:
                    self.cancel(job_id)
            self._cond.notify_all()
        self._worker.join()

    # --- the worker -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                job = self._waiting.popleft()
                job.state, job.stage = RUNNING, job.kind
            self._run(job)

    def _run(self, job: Job) -> None:
        def counted() -> None:
            job.clips_done += 1

        session = self._make_session(job, counted)
        try:
            result = job.work(job, session)
        except JobCancelled:
            self._finish(job, CANCELLED, "cancelled; committed clips are kept and the next index request resumes")
        except AtomError as exc:
            self._finish(job, FAILED, str(exc))
        except Exception as exc:  # a bug: the job fails with one line, the server lives on
            self._finish(job, FAILED, f"internal error: {type(exc).__name__}: {exc}")
        else:
            job.result = result
            self._finish(job, DONE, "done")

    def _finish(self, job: Job, state: str, message: str) -> None:
        if state != DONE:
            job.error = message
        job.state, job.stage = state, state
        self.gate.leave()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]
