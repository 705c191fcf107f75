"""Index and assemble as jobs: 202 with the job, then GET /v1/jobs/{id} for progress and
DELETE /v1/jobs/{id} to cancel. Inputs are checked before the job is queued."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from atom_deploy.serve import schemas as s
from atom_deploy.serve.job_tasks import assemble_work, check_inputs, check_reel_path, estimate_clips, index_work
from atom_deploy.serve.routes_tasks import ERRORS, state_of

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.post("/index", status_code=202, response_model=s.JobResponse, responses=ERRORS)
async def index(body: s.IndexRequest, request: Request):
    """Caption and embed video files into the server's index (resumes what a killed run left)."""
    state = state_of(request)
    state.decoder.check(body.beam, None)

    def prepare() -> int | None:
        check_inputs(body.inputs)
        return estimate_clips(state.index.get(), body.inputs, body.window_s, body.stride_s)

    total = await state.pool.run(prepare)
    return state.jobs.submit("index", index_work(body, state.index), total).as_dict()


@router.post("/assemble", status_code=202, response_model=s.JobResponse, responses=ERRORS)
async def assemble(body: s.AssembleRequest, request: Request):
    """Index what is missing, pick the top-k clips, write a script and stitch the reel."""
    state = state_of(request)
    state.decoder.check(body.beam, None)
    check_reel_path(body.out)

    def prepare() -> int | None:
        check_inputs(body.inputs)
        return estimate_clips(state.index.get(), body.inputs, body.window_s, body.stride_s)

    total = await state.pool.run(prepare)
    return state.jobs.submit("assemble", assemble_work(body, state.index), total).as_dict()


@router.get("/jobs/{job_id}", response_model=s.JobResponse, responses={404: {"model": s.ErrorResponse}})
async def job(job_id: str, request: Request):
    found = state_of(request).jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found.as_dict()


@router.delete("/jobs/{job_id}", response_model=s.JobResponse, responses={404: {"model": s.ErrorResponse}})
async def cancel(job_id: str, request: Request):
    """Cancel: a queued job never starts; a running one stops at its next clip, keeping what it committed."""
    found = state_of(request).jobs.cancel(job_id)
    if found is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return found.as_dict()
