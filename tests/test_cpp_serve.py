"""`atom_runner serve` (host build): one resident process answers a sequence of JSON-line
requests as the one-shot subcommands answer them, loads each module once, answers every bad
line with one error line and reads on, and exits 0 at end of input."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from atom_deploy.device.resident import ResidentRunner
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key
from test_cpp_common import run_json, write_clips

TEXTS = ["a red car", "A dog runs in the park!", "Café naïve résumé", "日本語のテキスト", "tabs\tand\nnewlines  x"]
PROMPT = "summary: the dog"
MODULES = {"video_encoder": 1, "decoder": 1, "minilm": 1}


@pytest.fixture(scope="module")
def art(tiny_exports):
    return tiny_exports["int8"] / "executorch"


@pytest.fixture(scope="module")
def clips(art, tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("serve_clips"), load_manifest(art).data[Key.CLIP][Key.SHAPE], 2, seed=5)


def same_floats(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=0, atol=1e-6)


def test_a_sequence_answers_as_the_one_shot_commands_with_each_module_loaded_once(host_runner, art, clips, tmp_path):
    one = lambda *args: run_json(host_runner, args[0], "--artifacts", str(art), *args[1:])  # noqa: E731
    embeddings = tmp_path / "index.bin"
    np.asarray(one("embed", *TEXTS)["embeddings"], dtype=np.float32).tofile(embeddings)
    with ResidentRunner.on_host(host_runner, art, timeout_s=300) as r:
        caption4 = r.ask("caption", clips=clips, beam=4, id=1)
        assert caption4["id"] == 1
        caption1 = r.ask("caption", clips=clips, beam=1, overlap=False)
        embed = r.ask("embed", texts=TEXTS)
        greedy = r.ask("generate", prompt=PROMPT)
        beam = r.ask("generate", prompt=PROMPT, beam=4, steps=5)
        search = r.ask("search", query="a dog in a park", texts=TEXTS, top=3)
        search_file = r.ask("search", query="a dog in a park", embeddings=str(embeddings), top=2)
        assert "error" in r.request({"op": "caption", "clips": [str(tmp_path / "missing.bin")]})
        pipeline = r.ask("pipeline", prompt="script:", clips=clips, top=2)
        ids = r.ask("tokenize", texts=TEXTS)
        minilm_ids = r.ask("tokenize", texts=TEXTS, tokenizer="minilm")
        again = r.ask("caption", clips=clips, beam=4)  # after an error and every other task
        stats = r.stats()

    for served, shot in ((caption4, one("caption", "--beam", "4", *clips)),
                         (caption1, one("caption", "--beam", "1", "--no-overlap", *clips)),
                         (again, one("caption", "--beam", "4", *clips))):
        assert [(c["clip"], c["tokens"], c["text"]) for c in served["captions"]] == \
               [(c["clip"], c["tokens"], c["text"]) for c in shot["captions"]]
        assert served["timings"]["overlap"] == shot["timings"]["overlap"]
    same_floats(embed["embeddings"], one("embed", *TEXTS)["embeddings"])
    for served, shot in ((greedy, one("generate", PROMPT)), (beam, one("generate", "--beam", "4", "--steps", "5", PROMPT))):
        assert (served["tokens"], served["text"]) == (shot["tokens"], shot["text"])
    for served, shot in ((search, one("search", "--query", "a dog in a park", "--top", "3", *TEXTS)),
                         (search_file, one("search", "--query", "a dog in a park", "--embeddings", str(embeddings),
                                           "--top", "2"))):
        assert [x["index"] for x in served["results"]] == [x["index"] for x in shot["results"]]
        same_floats([x["score"] for x in served["results"]], [x["score"] for x in shot["results"]])
    shot = one("pipeline", "--prompt", "script:", "--top", "2", *clips)
    assert pipeline["captions"] == shot["captions"] and pipeline["script"] == shot["script"]
    assert [x["clip"] for x in pipeline["ranked"]] == [x["clip"] for x in shot["ranked"]]
    assert ids["ids"] == one("tokenize", "--decoder", "--", *TEXTS)["ids"]
    assert minilm_ids["ids"] == one("tokenize", "--minilm", "--", *TEXTS)["ids"]
    # 13 requests served by one process that loaded each module once
    assert stats["loads"] == MODULES and stats["requests"] == 13 and stats["errors"] == 1, stats


class RawServe:
    """The runner driven byte for byte, so a line can be anything (invalid UTF-8 included)."""

    def __init__(self, binary, art):
        self.proc = subprocess.Popen([str(binary), "serve", "--artifacts", str(art)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(self, line: bytes) -> dict:
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply.endswith(b"\n") and reply.count(b"\n") == 1, (line[:80], reply, self.proc.poll())
        return json.loads(reply)

    def close(self) -> tuple[int, bytes, bytes]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def test_every_bad_line_gets_one_error_line_and_the_next_request_succeeds(host_runner, art, clips, tmp_path):
    short = tmp_path / "short.bin"
    np.zeros(10, dtype=np.float32).tofile(short)
    nan = tmp_path / "nan.bin"
    values = np.fromfile(clips[0], dtype=np.float32)
    values[3] = np.nan
    values.tofile(nan)
    bad_index = tmp_path / "bad_index.bin"
    np.zeros(7, dtype=np.float32).tofile(bad_index)
    nan_index = tmp_path / "nan_index.bin"
    np.full((2, 384), np.nan, dtype=np.float32).tofile(nan_index)
    too_wide = load_manifest(art).decode[Key.MAX_BATCH] + 1
    c0 = json.dumps(clips[0])
    hostile = json.dumps("\"; rm -rf / #\n\r\u202e}{'$(x)")
    cases = [  # (line, what the error must say, the id it must echo)
        (b"not json", "not valid JSON", None),
        (b'{"op":"embed","texts":["a"]', "not valid JSON", None),
        (b"", "not valid JSON", None),
        (b'{"op":"embed","texts":["\xff\xfe"]}', "not valid JSON", None),  # invalid UTF-8
        (b"[1, 2]", "must be a JSON object", None),
        (b'"caption"', "must be a JSON object", None),
        (b'{"op":"embed","texts":' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than", None),
        (b'{"id":1}', 'no "op"', 1),
        (b'{"id":2,"op":7}', '"op" must be a string', 2),
        (b'{"id":"three","op":"frobnicate"}', 'unknown op "frobnicate"', "three"),
        (b'{"id":{"n":[4]},"op":"stats","x":1}', 'unknown key "x" for stats', {"n": [4]}),
        (f'{{"id":5,"op":"caption","clips":[{c0}],"bem":4}}'.encode(), 'unknown key "bem" for caption; valid:', 5),
        (f'{{"id":6,"op":"caption","clips":[{c0}],"beam":"4"}}'.encode(), '"beam" must be an integer', 6),
        (f'{{"id":7,"op":"caption","clips":[{c0}],"beam":1e20}}'.encode(), '"beam" must be an integer', 7),
        (f'{{"id":8,"op":"caption","clips":[{c0}],"beam":4.5}}'.encode(), '"beam" must be an integer', 8),
        (f'{{"id":9,"op":"caption","clips":{c0}}}'.encode(), '"clips" must be a list of strings', 9),
        (b'{"id":10,"op":"caption","clips":[1]}', '"clips[]" must be a string', 10),
        (f'{{"id":11,"op":"caption","clips":[{c0}],"overlap":"no"}}'.encode(), '"overlap" must be true or false', 11),
        (f'{{"id":12,"op":"caption","clips":[{c0}],"beam":{too_wide}}}'.encode(), "beam must be between 1 and", 12),
        (b'{"id":13,"op":"caption","clips":[]}', "caption needs clip files", 13),
        (b'{"id":14,"op":"caption","clips":["/nonexistent/x.bin"]}', "cannot open clip /nonexistent/x.bin", 14),
        (f'{{"id":15,"op":"caption","clips":[{json.dumps(str(short))}]}}'.encode(), "short.bin has 40 bytes, expected", 15),
        (f'{{"id":16,"op":"caption","clips":[{json.dumps(str(nan))}]}}'.encode(), "contains NaN", 16),
        (f'{{"id":17,"op":"caption","clips":[{hostile}]}}'.encode(), "cannot open clip", 17),
        (f'{{"id":27,"op":"caption","clips":[{json.dumps(clips[0] + chr(0) + "x")}]}}'.encode(),
         '"clips[]" contains a NUL character', 27),  # a path cut at the NUL would open clips[0]
        (b'{"id":18,"op":"generate","prompt":"x","steps":100000}', "do not fit the context", 18),
        (json.dumps({"id": 19, "op": "generate", "prompt": "word " * 400}).encode(), "pass --truncate", 19),
        (b'{"id":20,"op":"generate","messages":[{"role":"user"}]}', "message 0 must be an object", 20),
        (b'{"id":21,"op":"generate"}', "generate needs exactly one PROMPT", 21),
        (b'{"id":28,"op":"generate","prompt":"hi","chat":true}', "no chat template", 28),  # the tiny export has none
        (b'{"id":29,"op":"generate","messages":[{"role":"user","content":"hi"}]}', "no chat template", 29),
        (b'{"id":30,"op":"generate","prompt":"hi","system":"be brief"}', "--system needs --chat", 30),
        (b'{"id":22,"op":"tokenize","texts":["a"],"tokenizer":"gpt"}', '"tokenizer" must be "decoder" or "minilm"', 22),
        (b'{"id":23,"op":"search","texts":["a"]}', "search needs --query", 23),
        (f'{{"id":24,"op":"search","query":"a","embeddings":{json.dumps(str(bad_index))}}}'.encode(),
         "is not a float32", 24),
        (f'{{"id":31,"op":"search","query":"a","embeddings":{json.dumps(str(nan_index))}}}'.encode(),
         "nan_index.bin contains NaN", 31),
        (b'{"id":25,"op":"embed","texts":[]}', "empty list of texts", 25),
        (b'{"op":"embed","texts":["' + b"x" * (9 << 20) + b'"]}', "longer than 8388608 bytes", None),
    ]
    ok = b'{"id":"ok","op":"embed","texts":["a red car"]}'
    serve = RawServe(host_runner, art)
    try:
        expected = serve.send(ok)
        for line, message, rid in cases:
            reply = serve.send(line)
            assert set(reply) == {"id", "error"} and message in reply["error"], (line[:80], reply)
            assert reply["id"] == rid and "\n" not in reply["error"], (line[:80], reply)
            assert serve.send(ok) == expected, f"after {line[:80]!r}"
        hostile_prompt = serve.send(json.dumps({"id": 26, "op": "generate", "prompt": json.loads(hostile),
                                                "steps": 3}).encode())
        assert len(hostile_prompt["tokens"]) <= 3 and hostile_prompt["id"] == 26, hostile_prompt
        stats = serve.send(b'{"op":"stats"}')
        assert stats["loads"] == MODULES and stats["errors"] == len(cases), stats
    finally:
        rc, rest, err = serve.close()
    assert (rc, rest) == (0, b""), err[-2000:]


def serve_all(binary, *args: str, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "serve", *args], input=text, capture_output=True, text=True, timeout=120)


def test_end_of_input_exits_0_and_a_load_failure_is_one_line(host_runner, art, tmp_path):
    quiet = serve_all(host_runner, "--artifacts", str(art), text="")
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stderr
    last = serve_all(host_runner, "--artifacts", str(art), text='{"id":1,"op":"stats"}')  # no final newline
    assert last.returncode == 0 and json.loads(last.stdout)["id"] == 1 and last.stdout.count("\n") == 1
    missing = serve_all(host_runner, "--artifacts", str(tmp_path / "nowhere"), text='{"op":"stats"}\n')
    lines = [line for line in missing.stderr.splitlines() if line.strip()]
    assert missing.returncode == 1 and missing.stdout == "" and len(lines) == 1 and "nowhere" in lines[0], missing.stderr
    assert serve_all(host_runner, text="").returncode == 2  # no --artifacts
