"""atom-deploy serve: the real server in a subprocess on a free localhost port (tiny ONNX int8
export), each endpoint against the local Session's answer, each error code, SIGTERM drain,
and kill -9 during an index job followed by a resume."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import pytest

from atom_deploy.client import RemoteSession
from atom_deploy.pipelines.captioning import clean_caption
from atom_deploy.pipelines.qa import CaptionOptions, ask, summarize
from atom_deploy.pipelines.search import search
from atom_deploy.serve.tensor_codec import NPY_MEDIA_TYPE, encode_npy, encode_tensor
from atom_runner.errors import AtomError
from pipeline_helpers import demo_video, open_index
from serve_helpers import Server, caption_body, clips

QUEUE_LIMIT = 4
NPY_HEADERS = {"content-type": NPY_MEDIA_TYPE}
MAX_BODY_MB = 0.5  # 524,288 bytes: a tiny clip is 98 kB in base64; three fit, six do not
SHORT = CaptionOptions(window_s=2.0, stride_s=1.0, beam=4, progress=False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("serve_videos")
    made = {"short": folder / "short.mp4", "long": folder / "long.mp4"}
    demo_video(made["short"], "blue", seconds=6.0, scenes=2)
    demo_video(made["long"], "green", seconds=30.0, scenes=3)
    return made


@pytest.fixture(scope="module")
def server(tiny_exports, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    s = Server(tiny_exports["int8"], "--backend", "onnx", "--queue-limit", str(QUEUE_LIMIT), "--max-body-mb", str(MAX_BODY_MB),
               index=folder / "clips.db", log=folder / "server.log")
    s.index_path = folder / "clips.db"
    yield s
    s.stop()


@pytest.fixture(scope="module")
def indexed(server, videos) -> dict:
    job = server.client.post("/v1/index", json={"inputs": [str(videos["short"])], "window_s": 2.0, "stride_s": 1.0}).json()
    return server.wait_job(job["id"])


def post(server, path: str, payload=None, **kwargs) -> httpx.Response:
    return server.client.post(path, json=payload, **kwargs)


# --- endpoints -------------------------------------------------------------------------


def test_health_docs_and_model(server, session):
    assert server.client.get("/healthz").json()["status"] == "ok"
    assert "swagger" in server.client.get("/docs").text.lower()
    paths = server.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/caption", "/v1/caption/npy", "/v1/embed", "/v1/generate", "/v1/search", "/v1/summarize", "/v1/ask",
                 "/v1/index", "/v1/assemble", "/v1/jobs/{job_id}", "/healthz", "/metrics"):
        assert path in paths
    model = server.client.get("/v1/model").json()
    assert model["clip_shape"] == list(session.clip_shape) and model["decode_steps"] == session.decode_steps


def test_caption_tensors_equal_the_local_session(server, session):
    arrays = clips(3, session.clip_shape)
    response = post(server, "/v1/caption", caption_body(arrays, beam=4))
    assert response.status_code == 200, response.text
    assert response.json()["captions"] == session.caption(arrays, beam=4)
    greedy = post(server, "/v1/caption", caption_body(arrays[:1], beam=1, steps=10)).json()
    assert greedy["captions"] == [session.caption(arrays[0], beam=1, steps=10)] and greedy["steps"] == 10


def test_caption_npy_bodies_equal_the_local_session(server, session):
    arrays = clips(3, session.clip_shape, seed=2)
    stacked = server.client.post("/v1/caption/npy", content=encode_npy(arrays), headers=NPY_HEADERS)
    assert stacked.status_code == 200, stacked.text
    assert stacked.json()["captions"] == session.caption(arrays, beam=4)
    one = server.client.post("/v1/caption/npy?beam=1&steps=10", content=encode_npy(arrays[:1]), headers=NPY_HEADERS).json()
    assert one["captions"] == [session.caption(arrays[0], beam=1, steps=10)] and one["steps"] == 10


def test_concurrent_captions_each_equal_alone(server, session):
    arrays = clips(6, session.clip_shape, seed=1)
    expected = session.caption(arrays, beam=4)
    got: dict[int, str] = {}

    def one(i: int) -> None:
        got[i] = post(server, "/v1/caption", caption_body([arrays[i]])).json()["captions"][0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(arrays))]
    for t in threads[:QUEUE_LIMIT]:  # within the queue limit: none is refused
        t.start()
    for t in threads[:QUEUE_LIMIT]:
        t.join()
    for t in threads[QUEUE_LIMIT:]:
        t.start()
        t.join()
    assert [got[i] for i in range(len(arrays))] == expected


def decoder_groups(server, kind: str) -> tuple[float, float]:
    """(decoder calls, requests in them) of `kind` that /metrics has counted so far."""
    text = server.client.get("/metrics").text
    found = [re.search(rf'^atom_decode_group_size_{part}{{kind="{kind}"}} (\S+)$', text, re.M) for part in ("count", "sum")]
    return tuple(float(m.group(1)) if m else 0.0 for m in found)


def shared_calls(server, kind: str, path: str, bodies: list[dict], expected: list, answer) -> tuple[float, float]:
    """Sends the bodies at once, a few rounds until some share a decoder call (a round can miss
    when the first request's decode ends before the others arrive): (calls, requests) over
    the rounds. Each answer must equal its `expected` one, computed alone."""
    calls = requests = 0.0
    for _ in range(3):
        before = decoder_groups(server, kind)
        start, got = threading.Barrier(len(bodies)), {}

        def one(i: int) -> None:
            start.wait(30)
            response = post(server, path, bodies[i])
            got[i] = answer(response.json()) if response.status_code == 200 else response.text

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [got[i] for i in range(len(bodies))] == expected
        after = decoder_groups(server, kind)
        calls, requests = calls + after[0] - before[0], requests + after[1] - before[1]
        if calls < requests:
            break
    return calls, requests


def test_concurrent_captions_share_decode_steps(server, session):
    # QUEUE_LIMIT requests at beam 4 fit one decode of the tiny export's 16 rows.
    arrays = clips(QUEUE_LIMIT, session.clip_shape, seed=7)
    alone = [session.caption(a, beam=4) for a in arrays]
    calls, captions = shared_calls(server, "caption", "/v1/caption", [caption_body([a], beam=4) for a in arrays], alone,
                                   lambda answer: answer["captions"][0])
    assert captions % QUEUE_LIMIT == 0 and calls < captions, (calls, captions)


def test_concurrent_generations_of_one_prompt_length_share_decode_steps(server, session):
    prompts = [f"clips:\n0: a {c} square moves left\nsummary:" for c in ("red", "blue", "green", "white")]
    assert len({len(session.prompt_ids(p, 30)) for p in prompts}) == 1  # one position vector for all rows
    alone = [session.generate(p, steps=30, beam=4) for p in prompts]
    calls, generations = shared_calls(server, "generate", "/v1/generate",
                                      [{"prompt": p, "steps": 30, "beam": 4} for p in prompts], alone, lambda a: a["text"])
    assert generations % len(prompts) == 0 and calls < generations, (calls, generations)


def test_caption_video_range_equals_the_index_window(server, session, videos, indexed):
    response = post(server, "/v1/caption", {"video": {"path": str(videos["short"]), "start_s": 1.0, "end_s": 3.0}})
    assert response.status_code == 200, response.text
    with closing(sqlite3.connect(server.index_path)) as db:
        stored = db.execute("SELECT caption FROM clips WHERE start_s = 1.0 AND end_s = 3.0").fetchone()[0]
    assert [clean_caption(c) for c in response.json()["captions"]] == [stored]  # the index stores them cleaned


def test_embed_generate_tokenize_equal_the_local_session(server, session):
    texts = ["a red car", "a small green circle bounces"]
    got = np.asarray(post(server, "/v1/embed", {"texts": texts}).json()["embeddings"], np.float32)
    np.testing.assert_array_equal(got, session.embed(texts))
    prompt = "clips:\n0: a small red square moves left\nsummary:"
    assert post(server, "/v1/generate", {"prompt": prompt, "steps": 12}).json()["text"] == session.generate(prompt, steps=12)
    assert post(server, "/v1/tokenize", {"text": prompt}).json()["ids"] == session.tokenizer.encode(prompt)


def test_index_job_then_search_summarize_ask(server, session, videos, indexed):
    assert indexed["state"] == "done", indexed
    assert indexed["progress"]["clips_done"] == indexed["progress"]["clips_total"] == indexed["result"]["clips_added"] == 5
    with open_index(server.index_path, session) as index:
        local_hits = [h.as_dict() for h in search(session, index, "a red square", 3)]
    assert post(server, "/v1/search", {"prompt": "a red square", "k": 3}).json()["hits"] == local_hits
    body = {"video": str(videos["short"]), "window_s": 2.0, "stride_s": 1.0}
    assert post(server, "/v1/summarize", body).json()["text"] == summarize(session, videos["short"], options=SHORT).text
    question = "how many clips show a square?"
    answer = post(server, "/v1/ask", {**body, "question": question, "use_index": True}).json()
    assert answer["text"] == ask(session, videos["short"], question, options=SHORT).text


def test_assemble_job_writes_the_reel(server, videos, indexed, tmp_path):
    out = tmp_path / "reel.mp4"
    job = post(server, "/v1/assemble", {"prompt": "the red square", "inputs": [str(videos["short"])], "out": str(out),
                                        "k": 2, "window_s": 2.0, "stride_s": 1.0})
    assert job.status_code == 202, job.text
    done = server.wait_job(job.json()["id"])
    assert done["state"] == "done", done
    assert out.stat().st_size > 0 and json.loads(out.with_suffix(".json").read_text())["clips"]


def test_cancel_keeps_committed_clips_and_the_next_request_resumes(server, videos):
    body = {"inputs": [str(videos["long"])], "window_s": 1.0, "stride_s": 1.0, "commit_every": 1}
    job = post(server, "/v1/index", body).json()
    assert job["progress"]["clips_total"] == 30
    while server.client.get(f"/v1/jobs/{job['id']}").json()["progress"]["clips_done"] < 3:
        time.sleep(0.05)
    assert server.client.delete(f"/v1/jobs/{job['id']}").json()["state"] in ("cancelling", "cancelled")
    cancelled = server.wait_job(job["id"])
    assert cancelled["state"] == "cancelled"
    kept = _rows(server.index_path, videos["long"])
    assert 3 <= len(kept) < 30
    resumed = server.wait_job(post(server, "/v1/index", body).json()["id"])
    assert resumed["state"] == "done" and resumed["result"]["clips_added"] == 30 - len(kept)
    assert _rows(server.index_path, videos["long"])[: len(kept)] == kept


def test_client_runs_the_pipelines_against_the_server(server, session, videos, indexed):
    with RemoteSession(server.url) as remote:
        assert remote.caption(clips(1, session.clip_shape)[0]) == session.caption(clips(1, session.clip_shape)[0])
        assert summarize(remote, videos["short"], options=SHORT) == summarize(session, videos["short"], options=SHORT)
        question = "what moves?"
        assert ask(remote, videos["short"], question, options=SHORT) == ask(session, videos["short"], question, options=SHORT)
        # Greedy: clips_per_batch(1) clips in flight at once, grouped by the server's queue, answered in order.
        greedy = CaptionOptions(window_s=2.0, stride_s=1.0, beam=1, progress=False)
        assert summarize(remote, videos["short"], options=greedy) == summarize(session, videos["short"], options=greedy)
        with open_index(server.index_path, session) as index:
            assert remote.manifest_sha256 == index.manifest_sha256
            assert search(remote, index, "a red square", 2) == search(session, index, "a red square", 2)
        with pytest.raises(AtomError, match="400: .*shape"):
            remote.caption(np.zeros((1, 3, 2, 8, 8), np.float32))


# --- errors ----------------------------------------------------------------------------


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _bad_requests(shape, videos) -> list[tuple[str, str, dict | bytes, str]]:
    good = encode_tensor(np.zeros(shape, np.float32))
    good_npy = npy_bytes(np.zeros(shape, np.float32))
    header_end = good_npy.index(b"\n") + 1
    hostile_header = good_npy[:header_end].replace(b"'descr': '<f4',", b"'descr': f(),  ")  # same length
    object_array = np.empty(2, dtype=object)
    object_array[:] = [{"a": 1}, "b"]
    return [
        ("npy: not a .npy file", "/v1/caption/npy", b"hello, this is not a tensor" * 4, "not a .npy"),
        ("npy: hostile header", "/v1/caption/npy", hostile_header + good_npy[header_end:], "not a .npy"),
        ("npy: unknown format version", "/v1/caption/npy", good_npy[:6] + b"\x09\x00" + good_npy[8:], "format 9.0"),
        ("npy: pickled objects", "/v1/caption/npy", npy_bytes(object_array), "dtype"),
        ("npy: float64", "/v1/caption/npy", npy_bytes(np.zeros(shape, np.float64)), "dtype"),
        ("npy: big-endian", "/v1/caption/npy", npy_bytes(np.zeros(shape, ">f4")), "dtype"),
        ("npy: Fortran order", "/v1/caption/npy", npy_bytes(np.asfortranarray(np.zeros(shape, np.float32))), "Fortran"),
        ("npy: wrong shape", "/v1/caption/npy", npy_bytes(np.zeros((1, 3, 6, 16, 16), np.float32)), "shape"),
        ("npy: truncated", "/v1/caption/npy", good_npy[:-8], "bytes of data"),
        ("npy: trailing bytes", "/v1/caption/npy", good_npy + b"\0" * 4, "bytes of data"),
        ("npy: NaN clip", "/v1/caption/npy", npy_bytes(np.full(shape, np.nan, np.float32)), "NaN"),
        ("npy: beam 0", "/v1/caption/npy?beam=0", good_npy, "beam"),
        ("npy: beam too wide", "/v1/caption/npy?beam=99", good_npy, "beam"),

        ("malformed JSON", "/v1/generate", b'{"prompt": ', "malformed JSON"),
        ("missing field", "/v1/embed", {}, "texts"),
        ("unknown field", "/v1/generate", {"prompt": "x", "temperature": 2}, "temperature"),
        ("wrong shape", "/v1/caption", {"clips": [{**good, "shape": [1, 3, 6, 16, 16]}]}, "shape"),
        ("wrong dtype", "/v1/caption", {"clips": [{**good, "dtype": "float64"}]}, "dtype"),
        ("bad base64", "/v1/caption", {"clips": [{**good, "data": "!" * len(good["data"])}]}, "base64"),
        ("short data", "/v1/caption", {"clips": [{**good, "data": good["data"][:-8]}]}, "base64 characters"),
        ("NaN clip", "/v1/caption", {"clips": [encode_tensor(np.full(shape, np.nan, np.float32))]}, "NaN"),
        ("beam too wide", "/v1/caption", {"clips": [good], "beam": 99}, "beam"),
        ("clips and video", "/v1/caption", {"clips": [good], "video": {"path": "x.mp4", "start_s": 0, "end_s": 1}}, "either"),
        ("missing video", "/v1/caption", {"video": {"path": "/no/such.mp4", "start_s": 0, "end_s": 1}}, "no such video"),
        ("range past the end", "/v1/caption", {"video": {"path": str(videos["short"]), "start_s": 0, "end_s": 60}}, "long"),
        ("missing summarize file", "/v1/summarize", {"video": "/no/such.mp4"}, "no such video"),
        ("missing index input", "/v1/index", {"inputs": ["/no/such.mp4"]}, "no such file"),
        ("reel not mp4", "/v1/assemble", {"prompt": "x", "inputs": [str(videos["short"])], "out": "/tmp/reel.avi"}, "mp4"),
        ("empty texts", "/v1/embed", {"texts": []}, "texts"),
    ]


def test_bad_requests_are_400_with_one_line(server, session, videos):
    for name, path, payload, words in _bad_requests(session.clip_shape, videos):
        if isinstance(payload, bytes):
            media = NPY_MEDIA_TYPE if path.startswith("/v1/caption/npy") else "application/json"
            response = server.client.post(path, content=payload, headers={"content-type": media})
        else:
            response = post(server, path, payload)
        assert response.status_code == 400, (name, response.status_code, response.text)
        message = response.json()["error"]
        assert words.lower() in message.lower() and "\n" not in message and "Traceback" not in message, (name, message)
    assert server.client.get("/v1/jobs/nope").status_code == 404
    assert server.client.get("/healthz").status_code == 200


def test_oversized_body_is_413(server, session):
    body = json.dumps(caption_body(clips(6, session.clip_shape))).encode()
    assert len(body) > MAX_BODY_MB * 1024 * 1024
    response = server.client.post("/v1/caption", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    response = server.client.post("/v1/caption", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert server.client.get("/healthz").status_code == 200


def test_full_queue_is_503_with_retry_after(server):
    prompt = "clips:\n0: a small red square moves left\nsummary:"
    alone = post(server, "/v1/generate", {"prompt": prompt, "steps": 40, "beam": 4}).json()["text"]
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            r = c.post("/v1/generate", json={"prompt": prompt, "steps": 40, "beam": 4})
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=one) for _ in range(4 * QUEUE_LIMIT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers)
    assert set(codes) == {200, 503}, codes
    assert all(r.headers["retry-after"] == "1" and "full" in r.json()["error"] for r in answers if r.status_code == 503)
    assert all(r.json()["text"] == alone for r in answers if r.status_code == 200)


def test_client_that_disconnects_mid_request_does_not_hurt_the_server(server, session):
    body = json.dumps(caption_body(clips(1, session.clip_shape))).encode()
    head = f"POST /v1/caption HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    for cut in (len(body) // 2, len(body)):  # mid-body, and after the body while it is decoded
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(head + body[:cut])
    arrays = clips(1, session.clip_shape, seed=5)
    assert post(server, "/v1/caption", caption_body(arrays)).json()["captions"] == [session.caption(arrays[0])]


def test_metrics_count_requests_queues_and_one_load_per_module(server):
    post(server, "/v1/embed", {"texts": ["warm"]})
    text = server.client.get("/metrics").text
    for module in ("video_encoder", "decoder", "minilm"):
        assert f'atom_module_loads{{module="{module}"}} 1.0' in text
    assert 'atom_requests_total{method="POST",route="/v1/embed",status="200"}' in text
    assert 'atom_requests_total{method="POST",route="/v1/caption",status="400"}' in text or "status=\"400\"" in text
    assert 'atom_request_seconds_bucket{le="0.5",route="/v1/embed"}' in text
    assert 'atom_queue_depth{queue="decode"}' in text and "atom_decode_group_size_count" in text


# --- lifecycle -------------------------------------------------------------------------


def test_sigterm_drains_in_flight_requests(tiny_exports, session, tmp_path):
    server = Server(tiny_exports["int8"], "--backend", "onnx", log=tmp_path / "server.log")
    arrays = clips(4, session.clip_shape, seed=9)
    expected = session.caption(arrays, beam=4, steps=40)
    got: dict[int, httpx.Response] = {}

    def one(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            got[i] = c.post("/v1/caption", json=caption_body([arrays[i]], steps=40))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while server.client.get("/healthz").json()["queues"]["decode"] < len(arrays) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.client.get("/healthz").json()["queues"]["decode"] >= 2, "the requests were not in flight at SIGTERM"
    server.signal(signal.SIGTERM)
    for t in threads:
        t.join()
    assert server.proc.wait(60) == 0
    assert [got[i].status_code for i in range(len(arrays))] == [200] * len(arrays)
    assert [got[i].json()["captions"][0] for i in range(len(arrays))] == expected
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)
    server.stop()


@pytest.mark.slow  # two server starts and a 30-clip index: about a minute
def test_kill_9_during_an_index_job_loses_nothing_committed_and_resumes(tiny_exports, videos, tmp_path):
    index_path = tmp_path / "clips.db"
    body = {"inputs": [str(videos["long"])], "window_s": 1.0, "stride_s": 1.0, "commit_every": 1}
    first = Server(tiny_exports["int8"], "--backend", "onnx", index=index_path, log=tmp_path / "first.log")
    post(first, "/v1/index", body)
    deadline = time.monotonic() + 60
    while len(_rows(index_path, videos["long"])) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.signal(signal.SIGKILL)
    first.proc.wait(30)
    committed = _rows(index_path, videos["long"])
    assert 4 <= len(committed) < 30
    second = Server(tiny_exports["int8"], "--backend", "onnx", index=index_path, log=tmp_path / "second.log")
    try:
        job = post(second, "/v1/index", body).json()
        assert job["progress"]["clips_total"] == 30 - len(committed)
        done = second.wait_job(job["id"])
        assert done["state"] == "done" and done["result"]["clips_added"] == 30 - len(committed), done
        after = _rows(index_path, videos["long"])
        assert len(after) == 30 and after[: len(committed)] == committed
    finally:
        second.stop()


def _rows(index_path: Path, video: Path) -> list[tuple]:
    with closing(sqlite3.connect(index_path)) as db:
        return db.execute("SELECT id, start_s, end_s, caption FROM clips WHERE video_path = ? ORDER BY id",
                          (str(video.resolve()),)).fetchall()


def readme_serving_commands() -> list[str]:
    """The curl lines of the README's Serving section (the server start is the fixture's)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = next((s for s in re.split(r"^(?=## )", text, flags=re.M) if s.startswith("## Serving")), "")
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S) for line in block.splitlines()]
    # A comment starts at two or more spaces and '#'; no command holds that sequence.
    return [re.sub(r"\s{2,}#.*$", "", line).strip() for line in lines if "127.0.0.1:8000" in line and "atom-deploy serve" not in line]


def test_readme_curl_examples_answer(server, tiny_exports, tmp_path):
    commands = readme_serving_commands()
    assert len(commands) >= 12, commands
    (tmp_path / ".venv").symlink_to(Path(__file__).resolve().parents[1] / ".venv")
    made = subprocess.run([sys.executable, "-m", "atom_deploy.demo", "try", "--artifacts", str(tiny_exports["int8"])],
                          cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    # The README indexes try/ before it starts the server; here the server's own job does it.
    indexed = server.wait_job(post(server, "/v1/index", {"inputs": [str(tmp_path / "try")]}).json()["id"])
    assert indexed["state"] == "done", indexed
    job_id = None
    for command in commands:
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        if "/v1/jobs/ID" in command:
            command = command.replace("/v1/jobs/ID", f"/v1/jobs/{job_id}")
        out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip(), (command, out.stdout[-500:], out.stderr[-500:])
        assert '"error":"' not in out.stdout, (command, out.stdout[-500:])  # a job's "error": null is fine
        if '"id"' in out.stdout:
            job_id = json.loads(out.stdout)["id"]
