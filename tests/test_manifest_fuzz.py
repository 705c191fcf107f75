"""Mutated manifests through both runners (issue 19): whatever the manifest says, the answer
is exit code 1 and exactly one line on stderr, never a signal or a traceback.

Each case is a real export's manifest with 1-3 seeded mutations: a key dropped, a value
of the wrong type, a number at an extreme, a deep nest, a path trick. The folder's files
are few-byte stand-ins with matching hashes, so a manifest that passes every check still
ends in a refusal (not a program, not a model), and each run stays cheap.

- Python: every case through the CLI's own `main` in this process (stderr captured at the
  file descriptor, so native log lines count too), and a sample as real subprocesses.
- C++: every ExecuTorch case through the host runner binary.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys

import pytest

from artifact_helpers import stand_in_folder
from atom_deploy.cli import main as cli_main
from test_cpp_common import run

SEED = 19
CASES_PER_BACKEND = {"executorch": 160, "onnx": 80}  # 240 manifests; the C++ runner takes the 160 ExecuTorch ones
CLI_SAMPLE = 6  # per backend, as real `atom-deploy` subprocesses (about 3 s each)
PROTECTED = ("model", "versions", "created", "kit_version")  # keys no runner reads: mutations go elsewhere

PATH_TRICKS = [
    "../manifest.json", "/etc/passwd", "a\u0000b.pte", "escape.pte", "unlisted.pte", "", "sub/../../x.pte",
    "x" * 300, "line\nbreak.pte", "back\\slash.pte", ".", "./", "nested/dir/file.pte", "\u00e9t\u00e9.pte",
]
WRONG_TYPES = ["text", 3.5, [], {}, None, True, [1, "two"], {"file": 1}]
EXTREMES = [0, -1, 1, 2**31, 2**31 - 1, 2**63, 2**64 + 5, -(2**63) - 1, 10**30, 1e308, -1e-308, float("nan")]


def paths_of(value, prefix=()):
    """Every (path) to a value in the manifest, outside the keys no runner reads."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            if not prefix and key in PROTECTED:
                continue
            out += paths_of(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += paths_of(child, prefix + (i,))
    return out


def parent_of(data, path):
    for step in path[:-1]:
        data = data[step]
    return data


def mutate(data: dict, rng: random.Random) -> str:
    """Apply one mutation in place; returns a description for the failure message."""
    paths = paths_of(data)
    kind = rng.choice(["drop", "type", "extreme", "nest", "path"])
    if kind == "path":
        file_paths = [p for p in paths if p[-1] == "file"]
        path = rng.choice(file_paths)
        parent_of(data, path)[path[-1]] = value = rng.choice(PATH_TRICKS)
        return f"path {'.'.join(map(str, path))}={value!r}"
    if kind == "extreme":
        numeric = [p for p in paths if isinstance(parent_of(data, p)[p[-1]], (int, float))]
        path = rng.choice(numeric)
        parent_of(data, path)[path[-1]] = value = rng.choice(EXTREMES)
        return f"extreme {'.'.join(map(str, path))}={value!r}"
    path = rng.choice(paths)
    parent = parent_of(data, path)
    if kind == "drop":
        if isinstance(parent, list):
            parent.pop(path[-1])
        else:
            del parent[path[-1]]
        return f"drop {'.'.join(map(str, path))}"
    if kind == "type":
        parent[path[-1]] = value = rng.choice(WRONG_TYPES)
        return f"type {'.'.join(map(str, path))}={value!r}"
    depth = rng.choice([33, 200, 5000, 100_000])
    nest = "[" * depth + "]" * depth if rng.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth
    parent[path[-1]] = RawJson(nest)
    return f"nest {'.'.join(map(str, path))} depth {depth}"


class RawJson(str):
    """A JSON fragment written verbatim (too deep for json.dumps to build from Python values)."""


def dump(data) -> str:
    raws: list[str] = []

    def encode(value):
        if isinstance(value, RawJson):
            raws.append(value)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(type(value).__name__)

    text = json.dumps(data, default=encode)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw)
    return text


def make_cases(base: dict, n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        data = copy.deepcopy(base)
        steps = [mutate(data, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        cases.append(("; ".join(steps), dump(data)))
    return cases


@pytest.fixture(scope="module")
def fuzz(tiny_exports, tmp_path_factory):
    """{backend: (stand-in folder, [(description, manifest text)])}."""
    out = {}
    for i, (backend, n) in enumerate(CASES_PER_BACKEND.items()):
        root = tmp_path_factory.mktemp(f"fuzz-{backend}")
        folder = stand_in_folder(tiny_exports["int8"] / backend, root / "art")
        (root / "outside.pte").write_bytes(b"outside the folder")
        os.symlink(root / "outside.pte", folder / "escape.pte")
        (folder / "unlisted.pte").write_bytes(b"listed nowhere")
        base = json.loads((folder / "manifest.json").read_text())
        out[backend] = (folder, make_cases(base, n, SEED + i))
    return out


def test_fuzz_generates_enough_distinct_cases(fuzz):
    cases = [text for _, cs in fuzz.values() for _, text in cs]
    assert len(cases) >= 200 and len(set(cases)) >= 0.9 * len(cases)


@pytest.mark.parametrize("backend", sorted(CASES_PER_BACKEND))
def test_python_cli_main_one_line_exit_1(fuzz, backend, capfd):
    folder, cases = fuzz[backend]
    for description, text in cases:
        (folder / "manifest.json").write_text(text)
        code = cli_main(["embed", "--artifacts", str(folder), "a dog"])
        err = capfd.readouterr().err
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and "Traceback" not in err, f"{description}: exit {code}\n{err[-2000:]}"


@pytest.mark.parametrize("backend", sorted(CASES_PER_BACKEND))
def test_python_cli_subprocess_sample(fuzz, backend):
    folder, cases = fuzz[backend]
    for description, text in random.Random(SEED).sample(cases, CLI_SAMPLE):
        (folder / "manifest.json").write_text(text)
        out = subprocess.run([sys.executable, "-m", "atom_deploy", "embed", "--artifacts", str(folder), "a dog"],
                             capture_output=True, text=True, timeout=120)
        _assert_one_line_exit_1(description, out)


def test_cpp_runner_one_line_exit_1(fuzz, host_runner):
    folder, cases = fuzz["executorch"]
    for description, text in cases:
        (folder / "manifest.json").write_text(text)
        out = run(host_runner, "generate", "--artifacts", str(folder), "x", check=False, timeout=60)
        _assert_one_line_exit_1(description, out)


def _assert_one_line_exit_1(description: str, out: subprocess.CompletedProcess) -> None:
    died = f" (signal {signal.Signals(-out.returncode).name})" if out.returncode < 0 else ""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, (
        f"{description}: exit {out.returncode}{died}\n{out.stderr[-2000:]}"
    )
