"""A thin client of `atom-deploy serve`: the Session's task methods, over HTTP (httpx).

    with RemoteSession("http://127.0.0.1:8000") as s:
        s.caption(clip)                  # numpy float32 [1,3,T,H,W], as Session.caption
        s.embed(["a red car"])           # [1, 384]
        s.generate("summary: ...")

It offers what the pipelines read off a Session (`manifest.data`, `tokenizer.encode`,
`decode_steps`, `max_context`, `caption_stream`, `embed`, `generate`), so they run against
a remote server as against a local Session: `summarize(RemoteSession(url), "video.mp4")`
decodes the video here and sends clip tensors there. A local ClipIndex binds to the
server's artifacts with `ClipIndex(path, s.manifest_sha256, s.artifacts_label)`.
The server-side pipelines (search over its index, summarize/ask of its files, index and
assemble jobs) are methods too. Every error the server answers is an AtomError whose
message is the server's one line, so callers handle it as they handle a local one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from atom_deploy.serve.tensor_codec import NPY_MEDIA_TYPE, encode_npy
from atom_runner.errors import AtomError

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class RemoteManifest:
    """The server's manifest as the pipelines read it (`.data`); `root` names the server."""

    data: dict
    root: str


class RemoteTokenizer:
    def __init__(self, client: "RemoteSession"):
        self._client = client

    def encode(self, text: str) -> list[int]:
        return self._client._post("/v1/tokenize", {"text": text})["ids"]


class RemoteSession:
    def __init__(self, url: str = DEFAULT_URL, timeout_s: float = 600.0, retries_on_503: int = 3):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._retries = retries_on_503
        try:
            model = self._get("/v1/model")
        except BaseException:
            self._http.close()
            raise
        self.manifest = RemoteManifest(model["manifest"], self.url)
        self.backend: str = model["backend"]
        self.manifest_sha256: str = model["manifest_sha256"]
        self.artifacts_label: str = model["label"]
        self.clip_shape = tuple(model["clip_shape"])
        self.decode_steps: int = model["decode_steps"]
        self.max_context: int = model["max_context"]
        self.max_batch: int = model["max_batch"]
        self.tokenizer = RemoteTokenizer(self)

    # --- the Session's tasks -----------------------------------------------------------

    def caption(self, clips: np.ndarray | list[np.ndarray], beam: int = 4, steps: int | None = None) -> str | list[str]:
        if isinstance(clips, list):
            return list(self.caption_stream(clips, beam=beam, steps=steps))
        return self._caption([clips], beam, steps)[0]

    def caption_stream(self, clips: Iterable[np.ndarray], beam: int = 4, steps: int | None = None) -> Iterator[str]:
        """Captions in order, one request per clip, with as many in flight as one batched decode
        pass holds (max_batch // beam): the server's queue can then decode them together."""
        ahead = max(1, self.max_batch // max(1, beam))
        waiting: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="atom-client") as pool:
            try:
                for clip in clips:
                    waiting.append(pool.submit(self._caption, [clip], beam, steps))
                    if len(waiting) >= ahead:
                        yield waiting.popleft().result()[0]
                while waiting:
                    yield waiting.popleft().result()[0]
            finally:
                for future in waiting:  # closed early: requests not sent yet are dropped
                    future.cancel()

    def caption_video(self, path: str | Path, start_s: float, end_s: float, beam: int = 4, steps: int | None = None) -> str:
        """A range of a video file on the server's disk."""
        video = {"path": str(path), "start_s": start_s, "end_s": end_s}
        return self._post("/v1/caption", {"video": video, "beam": beam, "steps": steps})["captions"][0]

    def generate(self, prompt: str, steps: int | None = None, prefix: np.ndarray | None = None, beam: int = 1,
                 truncate: bool = False) -> str:
        if prefix is not None:
            raise AtomError("a remote session generates from text only (no visual prefix)")
        return self._post("/v1/generate", {"prompt": prompt, "steps": steps, "beam": beam, "truncate": truncate})["text"]

    def embed(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
            raise AtomError("embed expects a list of texts")
        return np.asarray(self._post("/v1/embed", {"texts": list(texts)})["embeddings"], dtype=np.float32)

    # --- the server's pipelines --------------------------------------------------------

    def search(self, prompt: str, k: int = 10, videos: list[str] | None = None) -> list[dict]:
        return self._post("/v1/search", {"prompt": prompt, "k": k, "videos": videos})["hits"]

    def summarize(self, video: str, use_index: bool = False, **clip_options) -> dict:
        return self._post("/v1/summarize", {"video": video, "use_index": use_index, **clip_options})

    def ask(self, video: str, question: str, use_index: bool = False, **clip_options) -> dict:
        return self._post("/v1/ask", {"video": video, "question": question, "use_index": use_index, **clip_options})

    def index(self, inputs: list[str], **options) -> dict:
        """Starts an index job; returns the job (see job() and wait())."""
        return self._post("/v1/index", {"inputs": [str(i) for i in inputs], **options})

    def assemble(self, prompt: str, inputs: list[str], out: str, **options) -> dict:
        return self._post("/v1/assemble", {"prompt": prompt, "inputs": [str(i) for i in inputs], "out": out, **options})

    def job(self, job_id: str) -> dict:
        return self._get(f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._request("DELETE", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, poll_s: float = 0.2, timeout_s: float = 3600.0) -> dict:
        """The job once it is done, failed or cancelled."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in ("done", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise AtomError(f"job {job_id} still {job['state']} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- HTTP ----------------------------------------------------------------------------

    def _caption(self, clips: list[np.ndarray], beam: int, steps: int | None) -> list[str]:
        for clip in clips:
            if not isinstance(clip, np.ndarray):
                raise AtomError(f"clip must be a numpy array, got {type(clip).__name__}")
        params = {"beam": beam} if steps is None else {"beam": beam, "steps": steps}
        return self._request("POST", "/v1/caption/npy", content=encode_npy(clips), params=params)["captions"]

    def _get(self, path: str) -> dict:
        return self._request("GET", path)

    def _post(self, path: str, payload: dict) -> dict:
        return self._request("POST", path, payload)

    def _request(self, method: str, path: str, payload: dict | None = None, content: bytes | None = None,
                 params: dict | None = None) -> dict:
        headers = {"content-type": NPY_MEDIA_TYPE} if content is not None else None
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, path, json=payload, content=content, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise AtomError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 503 and attempt < self._retries:
                time.sleep(float(response.headers.get("Retry-After", "1")))  # the server said when
                continue
            break
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise AtomError(f"{self.url}{path}: {response.status_code}: {message}")
        return response.json()
