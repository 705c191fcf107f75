#!/usr/bin/env python
"""Load test of `atom-deploy serve`: bounded, 127.0.0.1 only, stops by itself.

    .venv/bin/python scripts/load_test.py --artifacts artifacts/executorch [--clients 16 --requests 50]

It starts the server on a free local port, indexes a generated demo-world video, then:
  1. serves every distinct request alone (the reference answers);
  2. 1 client x N mixed requests (caption, embed, search, generate), then C clients x N;
     every answer must equal its reference; latency p50/p95/p99 and throughput per phase;
  3. captions only: 1 client vs C clients (the decoder's throughput);
  4. fault runs: clients that disconnect mid-request, corrupt clips (JSON and .npy), a burst that overflows
     the decode queue (503 + Retry-After), SIGTERM under load (drain), and kill -9 during an
     index job followed by a restart that resumes it.
Server RSS and the machine's 1-minute load average are sampled every 0.25 s throughout.
Prints a markdown table; --out writes JSON. --no-batching serves one request per decoder
call (what batching is measured against); --phases picks phases (captions_one captions_many
for a quick decoder comparison); --upload json sends clips as base64 JSON instead of .npy bodies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from atom_deploy.demo import sample_scene, summary_input, write_video
from atom_deploy.serve.tensor_codec import NPY_MEDIA_TYPE, encode_npy, encode_tensor
from atom_deploy.video.clips import iter_clips
from atom_deploy.video.preprocess import ClipSpec

HOST = "127.0.0.1"  # never anything else: this is a local test
REQUEST_TIMEOUT_S = 300.0
LOCAL_TLS = ssl.create_default_context()  # never used on http://127.0.0.1; built once so no client builds its own


# --- the server ----------------------------------------------------------------------------


class Server:
    def __init__(self, artifacts: Path, backend: str | None, index: Path, log: Path, *extra: str):
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        cmd = [sys.executable, "-m", "atom_deploy", "serve", "--artifacts", str(artifacts), "--host", HOST,
               "--port", str(self.port), "--index", str(index), *extra]
        if backend:
            cmd += ["--backend", backend]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        self.proc.kill()
        raise SystemExit("server did not start in 300 s")

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


class RssSampler(threading.Thread):
    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.samples, self._stop = server, [], threading.Event()
        self.loads: list[float] = []  # the machine's 1-minute load average: other jobs share these cores

    def run(self) -> None:
        while not self._stop.is_set():
            rss = self.server.rss_mb()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
                self.loads.append(os.getloadavg()[0])
            self._stop.wait(0.25)

    def mark(self) -> int:
        return len(self.samples)

    def window(self, start: int) -> dict:
        values = [r for _, r in self.samples[start:]] or [0.0]
        loads = self.loads[start:] or [0.0]
        return {"start_mb": round(values[0], 1), "end_mb": round(values[-1], 1), "max_mb": round(max(values), 1),
                "load_mean": round(float(np.mean(loads)), 1), "load_max": round(max(loads), 1)}

    def stop(self) -> None:
        self._stop.set()


# --- the requests --------------------------------------------------------------------------


def demo_inputs(folder: Path, scenes: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path = folder / f"demo_{scenes}x10s_{seed}.mp4"
    write_video(path, [sample_scene(rng) for _ in range(scenes)], 10.0, fps=8, size=(320, 240))
    return path


def caption_request(clip: np.ndarray, upload: str) -> tuple[str, str, dict | bytes]:
    if upload == "npy":
        return "caption", "/v1/caption/npy?beam=4", encode_npy([clip])
    return "caption", "/v1/caption", caption_json(clip)


def caption_json(clip: np.ndarray) -> dict:
    return {"clips": [encode_tensor(clip)], "beam": 4}


def request_pool(clips: list[np.ndarray], captions: list[str], upload: str) -> list[tuple[str, str, dict | bytes]]:
    """(kind, path, body) of every distinct request: 8 of each kind. A body is JSON (a dict) or .npy bytes."""
    pool = [caption_request(c, upload) for c in clips]
    texts = ["a red square moves left", "a small green circle bounces", "a large blue triangle on a striped background",
             "two shapes move right", "a yellow star", "the camera pans", "a white circle on a black background", "nothing moves"]
    pool += [("embed", "/v1/embed", {"texts": [t]}) for t in texts]
    pool += [("search", "/v1/search", {"prompt": t, "k": 3}) for t in texts]
    pool += [("generate", "/v1/generate", {"prompt": summary_input(captions[i:i + 3])}) for i in range(8)]
    return pool


def wire(body: dict | bytes | tuple[bytes, str]) -> tuple[bytes, str]:
    """A body as (content, media type): a dict is JSON, bytes are a .npy file, a pair is already both."""
    if isinstance(body, tuple):
        return body
    if isinstance(body, bytes):
        return body, NPY_MEDIA_TYPE
    return json.dumps(body).encode(), "application/json"


def timed_post(client: httpx.Client, path: str, body: dict | bytes | tuple[bytes, str]) -> tuple[int, dict | None, float, dict]:
    """body as `wire` takes it; the clients send the same bodies many times, already encoded
    (re-encoding megabytes of clip per request would take the server's cores)."""
    content, media = wire(body)
    began = time.perf_counter()
    try:
        r = client.post(path, content=content, headers={"content-type": media})
    except httpx.TransportError as exc:
        return -1, {"error": type(exc).__name__}, time.perf_counter() - began, {}
    try:
        payload = r.json()
    except ValueError:
        payload = None
    return r.status_code, payload, time.perf_counter() - began, dict(r.headers)


def run_clients(url: str, pool: list, plans: list[list[int]], refs: dict[int, dict] | None) -> tuple[list, float]:
    """Each plan is one client's sequence of pool indices, sent one after another."""
    records: list[tuple[str, int, float, bool]] = []  # (kind, status, seconds, equal to reference)
    lock = threading.Lock()
    encoded = {i: wire(pool[i][2]) for plan in plans for i in plan}
    # Made before the clock starts: each httpx.Client loads the CA bundle (~0.1 s of CPU), which
    # would otherwise come out of the cores the server is measured on.
    clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) for _ in plans]

    def client(c: httpx.Client, plan: list[int]) -> None:
        with c:
            for i in plan:
                kind, path, _ = pool[i]
                status, payload, seconds, _ = timed_post(c, path, encoded[i])
                same = refs is None or (status == 200 and payload == refs[i])
                with lock:
                    records.append((kind, status, seconds, same))

    threads = [threading.Thread(target=client, args=(c, plan)) for c, plan in zip(clients, plans)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records, time.perf_counter() - began


def summarize_records(records: list, wall: float, clients: int) -> dict:
    ok = [r for r in records if r[1] == 200]
    lat = np.array([r[2] for r in ok]) if ok else np.zeros(1)
    captions = [r for r in ok if r[0] == "caption"]
    return {
        "clients": clients, "requests": len(records), "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 2), "captions_per_s": round(len(captions) / wall, 3),
        "p50_s": round(float(np.percentile(lat, 50)), 3), "p95_s": round(float(np.percentile(lat, 95)), 3),
        "p99_s": round(float(np.percentile(lat, 99)), 3),
        "wrong": sum(1 for r in records if r[1] == 200 and not r[3]),
        "status": {str(s): sum(1 for r in records if r[1] == s) for s in sorted({r[1] for r in records})},
        "unexpected_5xx": sum(1 for r in records if r[1] >= 500 and r[1] != 503),
    }


def process_cpu_s(pid: int) -> float:
    """CPU seconds the server has used so far, all threads (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decoder_counters(url: str) -> dict[str, float]:
    """Running totals from /metrics: decoder calls, requests in them and busy seconds per kind; encoder seconds."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=60).text):
        for sample in family.samples:
            kind = sample.labels.get("kind", "")
            name = {"atom_decode_group_size_count": f"{kind}_calls", "atom_decode_group_size_sum": f"{kind}_requests",
                    "atom_decode_call_seconds_sum": f"{kind}_decoder_s", "atom_encode_seconds_sum": "encoder_s",
                    "atom_encode_seconds_count": "clips_encoded"}.get(sample.name)
            if name:
                totals[name] = sample.value
    return totals


def counters_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 2) for k in sorted(after)}


def sum_counts(parts: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(sum(p.get(k, 0.0) for p in parts), 2) for k in sorted({k for p in parts for k in p})}


def merge_windows(windows: list[dict]) -> dict:
    return {"start_mb": windows[0]["start_mb"], "end_mb": windows[-1]["end_mb"], "max_mb": max(w["max_mb"] for w in windows),
            "load_mean": round(float(np.mean([w["load_mean"] for w in windows])), 1),
            "load_max": max(w["load_max"] for w in windows)}


def plans_for(pool: list, clients: int, requests: int, seed: int, kinds: set[str] | None = None) -> list[list[int]]:
    eligible = [i for i, (kind, _, _) in enumerate(pool) if kinds is None or kind in kinds]
    return [list(np.random.default_rng(seed + c).choice(eligible, size=requests)) for c in range(clients)]


# --- fault runs ----------------------------------------------------------------------------


def fault_disconnects(server: Server, clip: np.ndarray, ref: dict) -> dict:
    body = json.dumps(caption_json(clip)).encode()
    head = f"POST /v1/caption HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    for cut in [len(body) // 3, len(body) // 2, len(body), len(body)] * 3:  # mid-body, and whole but gone before the answer
        with socket.create_connection((HOST, server.port)) as raw:
            raw.sendall(head + body[:cut])
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) as c:
        status, payload, _, _ = timed_post(c, "/v1/caption", caption_json(clip))
    return {"disconnects": 12, "after": status, "answer_right": payload == ref, "alive": server.proc.poll() is None}


def fault_corrupt_clips(server: Server, clip: np.ndarray) -> dict:
    good = encode_tensor(clip)
    bad = [
        {**good, "data": "!" * len(good["data"])}, {**good, "data": good["data"][:-16]}, {**good, "dtype": "float16"},
        {**good, "shape": [1, 3, 6, 112, 112]}, encode_tensor(np.full(good["shape"], np.nan, np.float32)),
    ]
    codes = []
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) as c:
        for tensor in bad:
            codes.append(timed_post(c, "/v1/caption", {"clips": [tensor]})[0])
        codes.append(c.post("/v1/caption", content=b'{"clips": [', headers={"content-type": "application/json"}).status_code)
        good_npy = encode_npy([clip])
        for body in (good_npy[:-16], b"not a .npy file", encode_npy([np.full(clip.shape, np.nan, np.float32)])):
            codes.append(timed_post(c, "/v1/caption/npy", body)[0])
    return {"requests": len(codes), "status": codes, "all_400": all(c == 400 for c in codes), "alive": server.proc.poll() is None}


def fault_burst(server: Server, pool: list, refs: dict, size: int) -> dict:
    index = next(i for i, p in enumerate(pool) if p[0] == "generate")
    answers = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) as c:
            got = timed_post(c, pool[index][1], pool[index][2])
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=one) for _ in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [a for a in answers if a[0] == 503]
    return {
        "burst": size, "status": {str(s): sum(1 for a in answers if a[0] == s) for s in sorted({a[0] for a in answers})},
        "retry_after_on_all_503": all("retry-after" in a[3] for a in refused),
        "wrong": sum(1 for a in answers if a[0] == 200 and a[1] != refs[index]),
        "unexpected_5xx": sum(1 for a in answers if a[0] >= 500 and a[0] != 503),
    }


def fault_sigterm(server: Server, pool: list, refs: dict, clients: int) -> dict:
    records: list[tuple[int, bool]] = []
    lock, stop = threading.Lock(), threading.Event()
    plans = plans_for(pool, clients, 1000, seed=99, kinds={"caption", "generate"})

    def client(plan: list[int]) -> None:
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) as c:
            for i in plan:
                if stop.is_set():
                    return
                status, payload, _, _ = timed_post(c, pool[i][1], pool[i][2])
                with lock:
                    records.append((status, status == 200 and payload == refs[i]))
                if status == -1:
                    return

    threads = [threading.Thread(target=client, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    time.sleep(5.0)
    began = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(300)
    exit_s = time.perf_counter() - began
    stop.set()
    for t in threads:
        t.join()
    answered = [r for r in records if r[0] == 200]
    return {
        "exit_code": code, "exit_s": round(exit_s, 2), "answered_200": len(answered),
        "wrong": sum(1 for r in answered if not r[1]),
        "refused_after_close": sum(1 for r in records if r[0] == -1),
        "unexpected_5xx": sum(1 for r in records if r[0] >= 500 and r[0] != 503),
    }


def fault_kill9(args, work: Path, video: Path) -> dict:
    index = work / "kill9.db"
    log = work / "server_kill9.log"
    body = {"inputs": [str(video)], "commit_every": 2}
    first = Server(args.artifacts, args.backend, index, log)
    httpx.post(f"{first.url}/v1/index", json=body, timeout=60).raise_for_status()
    deadline = time.monotonic() + 600
    while count_rows(index) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    committed = rows(index)
    second = Server(args.artifacts, args.backend, index, log)
    try:
        job = httpx.post(f"{second.url}/v1/index", json=body, timeout=60).json()
        while job["state"] not in ("done", "failed", "cancelled"):
            time.sleep(0.5)
            job = httpx.get(f"{second.url}/v1/jobs/{job['id']}", timeout=60).json()
    finally:
        second.stop()
    after = rows(index)
    return {
        "committed_before_kill": len(committed), "resumed_added": job["result"]["clips_added"] if job.get("result") else None,
        "total_after": len(after), "committed_rows_kept": after[: len(committed)] == committed, "job_state": job["state"],
    }


def rows(index: Path) -> list[tuple]:
    with closing(sqlite3.connect(index)) as db:
        return db.execute("SELECT id, start_s, end_s, caption FROM clips ORDER BY id").fetchall()


def count_rows(index: Path) -> int:
    try:
        with closing(sqlite3.connect(index)) as db:
            return db.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    except sqlite3.Error:
        return 0


# --- main ----------------------------------------------------------------------------------


def table(results: dict) -> str:
    rows = ["| run | clients x requests | wall s | req/s | captions/s | p50 s | p95 s | p99 s | wrong | unexpected 5xx "
            "| RSS MB (end / max) | load avg (mean / max) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    names = ("mixed, 1 client", "mixed, concurrent", "captions only, 1 client", "captions only, concurrent")
    for key, name in zip(PHASES, names):
        r = results.get(key)
        if r:
            rounds = r.get("rounds", 1)
            size = f"{r['clients']} x {r['requests'] // r['clients'] // rounds}" + (f", {rounds} rounds" if rounds > 1 else "")
            rows.append(f"| {name} | {size} | {r['wall_s']} | {r['throughput_rps']} | "
                        f"{r['captions_per_s']} | {r['p50_s']} | {r['p95_s']} | {r['p99_s']} | {r['wrong']} | {r['unexpected_5xx']} | "
                        f"{r['rss']['end_mb']:.0f} / {r['rss']['max_mb']:.0f} | {r['rss']['load_mean']} / {r['rss']['load_max']} |")
    return "\n".join(rows)



PHASES = ("one_client", "many_clients", "captions_one", "captions_many")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--backend", default=None)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=50, help="per client")
    p.add_argument("--queue-limit", type=int, default=32)
    p.add_argument("--max-seconds", type=float, default=1800, help="the whole run's budget; the run stops past it")
    p.add_argument("--skip-faults", action="store_true")
    p.add_argument("--no-batching", action="store_true", help="serve with --no-batching: one request per decoder call")
    p.add_argument("--threads", type=int, default=None, help="serve with --threads N (runtime threads per module)")
    p.add_argument("--decoder-lanes", type=int, default=None, help="serve with --decoder-lanes N")
    p.add_argument("--rounds", type=int, default=1, help="times the two caption phases alternate (default 1)")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES), help="load phases to run (default: all)")
    p.add_argument("--upload", choices=("npy", "json"), default="npy",
                   help="how captions send their clip: a .npy body (default) or JSON with base64")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args()
    watchdog = threading.Timer(args.max_seconds, lambda: (print("load test: time budget spent, stopping", file=sys.stderr), os._exit(2)))
    watchdog.daemon = True
    watchdog.start()

    work = Path(tempfile.mkdtemp(prefix="atom_load_"))
    video = demo_inputs(work, scenes=6, seed=1)
    extra = ["--queue-limit", str(args.queue_limit)] + (["--no-batching"] if args.no_batching else [])
    for flag, value in (("--threads", args.threads), ("--decoder-lanes", args.decoder_lanes)):
        extra += [flag, str(value)] if value is not None else []
    server = Server(args.artifacts, args.backend, work / "clips.db", work / "server.log", *extra)
    sampler = RssSampler(server)
    sampler.start()
    results: dict = {"server": server.url, "work": str(work)}
    try:
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S, verify=LOCAL_TLS) as c:
            model = c.get("/v1/model").json()
            results["model"] = model["label"]
            results["batching"] = not args.no_batching
            results["upload"] = args.upload
            results["max_batch"] = model["max_batch"]
            job = c.post("/v1/index", json={"inputs": [str(video)]}).json()
            while job["state"] not in ("done", "failed", "cancelled"):
                time.sleep(0.5)
                job = c.get(f"/v1/jobs/{job['id']}").json()
            assert job["state"] == "done", job
            captions = [h["caption"] for h in c.post("/v1/search", json={"prompt": "a shape", "k": 20}).json()["hits"]]
            spec = ClipSpec(num_frames=model["clip_shape"][2], size=model["clip_shape"][3])
            clips = [c.tensor for c in iter_clips(video, spec)][:8]
            pool = request_pool(clips, captions, args.upload)
            refs = {}
            for i, (_, path, body) in enumerate(pool):  # served alone: the reference answers
                status, payload, _, _ = timed_post(c, path, body)
                assert status == 200, (path, status, payload)
                refs[i] = payload
        mark = sampler.mark()
        per_client = max(1, 16 // args.clients) if args.clients < 16 else 4
        phases = {
            "one_client": plans_for(pool, 1, args.requests, 0),
            "many_clients": plans_for(pool, args.clients, args.requests, 0),
            "captions_one": plans_for(pool, 1, 16, 7, {"caption"}),
            "captions_many": plans_for(pool, args.clients, per_client, 7, {"caption"}),
        }
        # The caption phases alternate for --rounds: the machine's load drifts, and the 1-client and
        # 16-client rows are compared with each other.
        order = [n for n in PHASES[:2] if n in args.phases]
        order += [n for _ in range(args.rounds) for n in PHASES[2:] if n in args.phases]
        runs: dict[str, list] = {}
        for name in order:
            phase_mark, before, cpu = sampler.mark(), decoder_counters(server.url), process_cpu_s(server.proc.pid)
            records, wall = run_clients(server.url, pool, phases[name], refs)
            runs.setdefault(name, []).append((records, wall, sampler.window(phase_mark),
                                              {**counters_between(before, decoder_counters(server.url)),
                                               "server_cpu_s": round(process_cpu_s(server.proc.pid) - cpu, 2)}))
        for name, done in runs.items():
            summary = summarize_records([r for run in done for r in run[0]], sum(run[1] for run in done), len(phases[name]))
            results[name] = {**summary, "rounds": len(done), "round_walls_s": [round(run[1], 2) for run in done],
                             "rss": merge_windows([run[2] for run in done]), "server": sum_counts([run[3] for run in done])}
        results["rss_load"] = sampler.window(mark)
        if not args.skip_faults:
            results["fault_disconnect"] = fault_disconnects(server, clips[0], refs[0])
            results["fault_corrupt"] = fault_corrupt_clips(server, clips[0])
            results["fault_burst"] = fault_burst(server, pool, refs, size=3 * args.queue_limit)
            results["metrics_loads"] = [line for line in httpx.get(f"{server.url}/metrics").text.splitlines()
                                        if line.startswith(("atom_module_loads", "atom_decode_group_size_count", "atom_decode_group_size_sum"))]
            results["rss_all"] = sampler.window(0)
            results["fault_sigterm"] = fault_sigterm(server, pool, refs, args.clients)
            results["fault_kill9"] = fault_kill9(args, work, demo_inputs(work, scenes=12, seed=2))
    finally:
        sampler.stop()
        server.stop()
    print(json.dumps(results, indent=2))
    print(table(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
