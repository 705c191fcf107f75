"""Health, metrics and what model is loaded."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from atom_deploy.serve import schemas as s
from atom_deploy.serve.routes_tasks import state_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    """Answers while the modules are loaded; the queues' depths show the load."""
    state = state_of(request)
    return {"status": "ok", "model": state.label,
            "queues": {"decode": state.decoder.depth, "work": state.pool.gate.count, "jobs": state.jobs.depth}}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    rendered = state_of(request).metrics
    return Response(rendered.render(), media_type=rendered.content_type)


@router.get("/v1/model", response_model=s.ModelResponse)
async def model(request: Request):
    """The loaded artifacts: the manifest, its sha256 (to bind an index) and the decode settings."""
    state = state_of(request)
    session = state.session
    return s.ModelResponse(
        backend=session.backend, label=state.label, manifest_sha256=state.manifest_sha256, manifest=session.manifest.data,
        clip_shape=list(session.clip_shape), decode_steps=session.decode_steps, max_context=session.max_context,
        max_batch=session.max_batch,
    )
