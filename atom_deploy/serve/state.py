"""What the server holds for its lifetime: built once in the lifespan, closed once at exit."""

from __future__ import annotations

from dataclasses import dataclass

from atom_deploy.pipelines.model_facts import artifacts_label, clip_spec, manifest_sha256
from atom_deploy.serve.admission import Gate
from atom_deploy.serve.config import ServeConfig
from atom_deploy.serve.decode_queue import DecodeQueue
from atom_deploy.serve.index_handle import IndexHandle
from atom_deploy.serve.jobs import JobRunner
from atom_deploy.serve.metrics import Metrics
from atom_deploy.serve.queued_session import QueuedSession
from atom_deploy.serve.work_pool import WorkPool
from atom_deploy.video.preprocess import ClipSpec
from atom_runner.runtimes import set_onnx_spinning
from atom_runner.schema import Module
from atom_runner.session import Session


@dataclass
class ServerState:
    config: ServeConfig
    metrics: Metrics
    session: Session
    decoder: DecodeQueue
    pool: WorkPool
    jobs: JobRunner
    index: IndexHandle
    spec: ClipSpec
    manifest_sha256: str
    label: str

    @classmethod
    def open(cls, config: ServeConfig, metrics: Metrics) -> "ServerState":
        # overlap="off": the decode queue runs the encoder on a thread of its own (encoding the
        # next requests' clips while the decoder decodes); the Session needs none of its own.
        # Modules run at once here, so ONNX Runtime's idle threads must not spin on the cores.
        set_onnx_spinning(False)
        session = Session(config.artifacts, backend=config.backend, overlap="off", threads=config.threads,
                          decoder_lanes=config.decoder_lanes)
        try:
            index = IndexHandle(config.index, session)
            decoder = DecodeQueue(session, Gate("decode", config.decode_queue_limit, config.retry_after_s),
                                  on_group=metrics.observe_group, on_encode=metrics.encode_seconds.observe,
                                  batching=config.decode_batching)
        except BaseException:
            session.close()
            raise
        pool = WorkPool(config.work_threads, Gate("work", config.work_queue_limit, config.retry_after_s))
        jobs = JobRunner(lambda job, on_caption: QueuedSession(session, decoder, on_caption, job.cancel_event),
                         Gate("jobs", config.job_queue_limit, config.retry_after_s))
        state = cls(config, metrics, session, decoder, pool, jobs, index, clip_spec(session),
                    manifest_sha256(session), artifacts_label(session))
        metrics.watch_queue("decode", lambda: decoder.depth)
        metrics.watch_queue("work", lambda: pool.gate.count)
        metrics.watch_queue("jobs", lambda: state.jobs.depth)
        metrics.watch_loads(lambda: dict(session.stats.loads), list(Module.ALL))
        return state

    def queued(self) -> QueuedSession:
        """The Session for a pipeline run by a request (summarize, ask, search)."""
        return QueuedSession(self.session, self.decoder)

    def close(self) -> None:
        """Jobs stop at their next clip, in-flight work finishes, then the modules go."""
        self.jobs.close()
        self.pool.close()
        self.decoder.close()
        self.index.close()
        self.session.close()

