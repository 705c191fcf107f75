"""The task endpoints: caption (JSON or .npy), embed, generate, tokenize, search, summarize, ask.

Each request is checked whole (shape, dtype, beam, files) before any of it is queued.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Query, Request

from atom_deploy.pipelines.qa import CaptionOptions, ask, summarize
from atom_deploy.pipelines.search import search
from atom_deploy.serve import schemas as s
from atom_deploy.serve.state import ServerState
from atom_deploy.serve.tensor_codec import decode_npy, decode_tensor
from atom_deploy.serve.video_range import range_clip
from atom_runner.errors import AtomError

router = APIRouter(prefix="/v1", tags=["tasks"])
ERRORS = {400: {"model": s.ErrorResponse}, 413: {"model": s.ErrorResponse}, 503: {"model": s.ErrorResponse}}


def state_of(request: Request) -> ServerState:
    return request.app.state.atom


@router.post("/caption", response_model=s.CaptionResponse, responses=ERRORS)
async def caption(body: s.CaptionRequest, request: Request):
    """Captions of clip tensors (`clips`), or of one range of a video file on the server (`video`)."""
    state = state_of(request)
    if (body.clips is None) == (body.video is None):
        raise AtomError("send either clips (tensors) or video (a file and a time range), not both or neither")
    steps = state.decoder.check(body.beam, body.steps)
    if body.clips is not None:
        def decode_all():  # base64 and the finite check of megabytes: off the event loop
            return [decode_tensor(c.dtype, c.shape, c.data, state.session.clip_shape, f"clips[{i}]") for i, c in enumerate(body.clips)]

        clips = await state.pool.run(decode_all)
    else:
        v = body.video
        clips = [await state.pool.run(range_clip, v.path, v.start_s, v.end_s, state.spec)]
    return await _caption_clips(state, clips, body.beam, steps)


@router.post("/caption/npy", response_model=s.CaptionResponse, responses=ERRORS, openapi_extra=s.NPY_BODY)
async def caption_npy(request: Request, beam: int = Query(4, ge=1), steps: int | None = Query(None, ge=1)):
    """Captions of clips sent as a `.npy` body (`np.save` of one clip, or of a stack `[N, *clip shape]`)."""
    state = state_of(request)
    steps = state.decoder.check(beam, steps)
    raw = await request.body()
    clips = await state.pool.run(decode_npy, raw, state.session.clip_shape, s.MAX_CLIPS_PER_REQUEST)
    return await _caption_clips(state, clips, beam, steps)


async def _caption_clips(state: ServerState, clips: list, beam: int, steps: int) -> s.CaptionResponse:
    futures = []
    try:
        for clip in clips:
            futures.append(state.decoder.caption(clip, beam, steps))
    except BaseException:  # the queue filled part-way: withdraw this request's other clips
        for future in futures:
            future.cancel()
        raise
    captions = [await asyncio.wrap_future(f) for f in futures]
    return s.CaptionResponse(captions=captions, beam=beam, steps=steps)


@router.post("/embed", response_model=s.EmbedResponse, responses=ERRORS)
async def embed(body: s.EmbedRequest, request: Request):
    """MiniLM sentence embeddings, unit length."""
    state = state_of(request)
    vectors = await state.pool.run(state.session.embed, body.texts)
    return s.EmbedResponse(dim=int(vectors.shape[1]), embeddings=vectors.tolist())


@router.post("/generate", response_model=s.GenerateResponse, responses=ERRORS)
async def generate(body: s.GenerateRequest, request: Request):
    """The decoder in text-only mode (`atom-deploy generate --help` lists the trained prompt formats)."""
    state = state_of(request)
    future = state.decoder.generate(body.prompt, body.steps, body.beam, body.truncate)
    return s.GenerateResponse(text=await asyncio.wrap_future(future))


@router.post("/tokenize", response_model=s.TokenizeResponse, responses=ERRORS)
async def tokenize(body: s.TokenizeRequest, request: Request):
    """The decoder tokenizer's ids (the client fits prompts to the context with them)."""
    return s.TokenizeResponse(ids=state_of(request).session.tokenizer.encode(body.text))


@router.post("/search", response_model=s.SearchResponse, responses=ERRORS)
async def search_clips(body: s.SearchRequest, request: Request):
    """The indexed clips closest to a prompt (MiniLM cosine); needs --index."""
    state = state_of(request)
    state.index.get()  # no index: 400 before queuing

    def run():
        return search(state.queued(), state.index.get(), body.prompt, body.k, body.videos)

    hits = await state.pool.run(run)
    return s.SearchResponse(hits=[s.SearchHit(**h.as_dict()) for h in hits])


def _video_task(state: ServerState, body: s.SummarizeRequest, task):
    if not Path(body.video).is_file():
        raise AtomError(f"{body.video}: no such video file")
    state.decoder.check(body.beam, None)
    if body.use_index:
        state.index.get()
    options = CaptionOptions(body.window_s, body.stride_s, body.beam, progress=False)

    def run():
        index = state.index.get() if body.use_index else None
        return task(state.queued(), index, options).as_dict()

    return run


@router.post("/summarize", response_model=s.VideoAnswerResponse, responses=ERRORS)
async def summarize_video(body: s.SummarizeRequest, request: Request):
    """Caption a video's clips, then summarize them with the same decoder."""
    state = state_of(request)
    run = _video_task(state, body, lambda session, index, options: summarize(session, body.video, index, options))
    return await state.pool.run(run)


@router.post("/ask", response_model=s.VideoAnswerResponse, responses=ERRORS)
async def ask_video(body: s.AskRequest, request: Request):
    """Caption a video's clips, then answer a question from the captions."""
    state = state_of(request)
    run = _video_task(state, body, lambda session, index, options: ask(session, body.video, body.question, index, options))
    return await state.pool.run(run)
