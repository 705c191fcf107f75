"""One pydantic model per request and response: validation and the OpenAPI page come from here.

Field limits catch what needs no model (empty lists, k < 1); what depends on the loaded
model (clip shape, beam <= the exported batch) is checked in the routes before any work.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from atom_deploy.serve.tensor_codec import NPY_MEDIA_TYPE

# Per-request caps: a request is one unit of admission, so it must stay small.
MAX_CLIPS_PER_REQUEST = 8
MAX_TEXTS_PER_REQUEST = 256
MAX_TEXT_CHARS = 10_000


# /v1/caption/npy reads its body itself (raw bytes, not JSON); this describes it on the OpenAPI page.
NPY_BODY = {"requestBody": {"required": True, "content": {
    NPY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary",
                                     "description": "np.save of a float32 clip, or of a stack [N, *clip shape]"}}}}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelled field is an error, not ignored


class Tensor(_Strict):
    """A clip tensor: float32 little-endian bytes in C order, base64 (atom_deploy/serve/tensor_codec.py)."""

    dtype: str = Field(examples=["float32"])
    shape: list[int]
    data: str


class VideoRange(_Strict):
    """A clip cut from a video file on the server's disk: [start_s, end_s] seconds."""

    path: str
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)


class CaptionRequest(_Strict):
    clips: list[Tensor] | None = Field(default=None, min_length=1, max_length=MAX_CLIPS_PER_REQUEST)
    video: VideoRange | None = None
    beam: int = Field(default=4, ge=1)
    steps: int | None = Field(default=None, ge=1)


class CaptionResponse(BaseModel):
    captions: list[str]
    beam: int
    steps: int


class EmbedRequest(_Strict):
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS_PER_REQUEST)


class EmbedResponse(BaseModel):
    dim: int
    embeddings: list[list[float]]


class GenerateRequest(_Strict):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    steps: int | None = Field(default=None, ge=1)
    beam: int = Field(default=1, ge=1)
    truncate: bool = Field(default=False, description="keep the end of a prompt longer than the context (else 400)")


class GenerateResponse(BaseModel):
    text: str


class TokenizeRequest(_Strict):
    text: str = Field(max_length=MAX_TEXT_CHARS)


class TokenizeResponse(BaseModel):
    ids: list[int]


class SearchRequest(_Strict):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    k: int = Field(default=10, ge=1, le=1000)
    videos: list[str] | None = None


class SearchHit(BaseModel):
    rank: int
    score: float
    video: str
    start_s: float
    end_s: float
    caption: str
    clip_id: int


class SearchResponse(BaseModel):
    hits: list[SearchHit]


class ClipOptions(_Strict):
    window_s: float = Field(default=10.0, gt=0)
    stride_s: float = Field(default=5.0, gt=0)
    beam: int = Field(default=4, ge=1)


class SummarizeRequest(ClipOptions):
    video: str
    use_index: bool = Field(default=False, description="caption through the server's index (indexing the video first)")


class AskRequest(SummarizeRequest):
    question: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class VideoAnswerResponse(BaseModel):
    video: str
    text: str
    captions: list[dict]
    used: list[int]
    note: str | None = None


class IndexRequest(ClipOptions):
    inputs: list[str] = Field(min_length=1)
    prune: bool = False
    commit_every: int = Field(default=8, ge=1)


class AssembleRequest(ClipOptions):
    prompt: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    inputs: list[str] = Field(min_length=1)
    out: str = Field(description="the reel's path on the server, *.mp4; its script goes beside it as .json")
    k: int = Field(default=5, ge=1, le=100)


class JobProgress(BaseModel):
    clips_done: int
    clips_total: int | None = Field(description="an estimate made when the job starts")
    stage: str


class JobResponse(BaseModel):
    id: str
    kind: str
    state: str = Field(description="queued | running | cancelling | done | failed | cancelled")
    progress: JobProgress
    result: dict | None = None
    error: str | None = None


class ModelResponse(BaseModel):
    backend: str
    label: str
    manifest_sha256: str
    manifest: dict
    clip_shape: list[int]
    decode_steps: int
    max_context: int
    max_batch: int


class ErrorResponse(BaseModel):
    error: str
