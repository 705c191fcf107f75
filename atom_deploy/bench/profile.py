"""Where ExecuTorch spends a decoder step or an encoder call, from its own profiler (ETDump).

Each program is loaded with ETDump on. The decoder is prefilled with BOS + a visual
prefix and stepped greedily (batch 1) and as a beam of 4 (batch 4, reordering every
step); the video encoder runs a clip. The Inspector then gives each operator's time per
call: XNNPACK delegate calls, and every operator that runs in the portable kernels. A
delegate call is one fused XNNPACK subgraph, so its time covers the Linears and whatever
else XNNPACK took.
"""

from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from atom_runner.decoding import DecoderStepper
from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest
from atom_runner.schema import Entry, Key, KVStyle, Module

_RUNTIME_EVENTS = ("Method::execute", "Program::load_method", "Method::init")
_DELEGATE, _OPERATOR = "DELEGATE_CALL", "OPERATOR_CALL"


@dataclass(frozen=True)
class OpShare:
    name: str
    calls_per_run: float
    ms_per_run: float
    share: float  # of the run's total operator time


@dataclass(frozen=True)
class Profile:
    what: str  # "decoder greedy", "decoder beam4", "video_encoder"
    runs: int
    ms_per_run: float  # sum of every operator's time per run
    ops: tuple[OpShare, ...]  # slowest first


def profile_artifacts(folder: Path, steps: int = 20) -> list[Profile]:
    manifest = load_manifest(folder)
    if manifest.backend != "executorch":
        raise AtomError(f"{folder} holds {manifest.backend} artifacts; the profiler reads ExecuTorch's ETDump")
    decoder = manifest.module(Module.DECODER)
    decoder_path = manifest.verified(decoder[Key.FILES][0])
    dim = decoder[Key.DIM]
    start = 1 + manifest.decode[Key.NUM_VISUAL_TOKENS]
    profiles = []
    for mode, rows in (("greedy", 1), ("beam4", 4)):

        def decode(program, rows=rows) -> None:
            # stepped as the runners step it (workspace sizing, attend_pos), by the same stepper
            stepper = DecoderStepper(_ProgramModule(program), KVStyle.IN_PLACE, decoder[Key.KV_CACHE][Key.SHAPE])
            rng = np.random.default_rng(0)
            stepper.step(rng.standard_normal((1, start, dim), dtype=np.float32), np.arange(start), np.zeros(1, np.int64))
            for i in range(steps + 1):  # the first step pays one-off work: not counted
                parents = np.zeros(rows, np.int64) if i == 0 else np.sort(rng.integers(0, rows, rows))
                embeds = rng.standard_normal((rows, 1, dim), dtype=np.float32)
                stepper.step(embeds, np.array([start + i]), parents, start if i else 0)

        profiles.append(_profile(decoder_path, f"decoder {mode}", decode, Entry.TEXT_DECODER, steps))
    encoder = manifest.module(Module.VIDEO_ENCODER)
    clip = np.random.default_rng(0).standard_normal(manifest.data[Key.CLIP][Key.SHAPE]).astype(np.float32)

    def encode(program) -> None:
        for _ in range(3):
            program.run_method(Entry.FORWARD, (_torch().from_numpy(clip),))

    profiles.append(_profile(manifest.verified(encoder[Key.FILES][0]), Module.VIDEO_ENCODER, encode, Entry.FORWARD, 2))
    return profiles


def _torch():
    import torch  # the ExecuTorch bindings take torch tensors

    return torch


class _ProgramModule:
    """A program loaded with ETDump on, behind the runners' LoadedModule interface."""

    def __init__(self, program):
        self.program = program

    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = self.program.run_method(entry, tuple(_torch().from_numpy(np.ascontiguousarray(a)) for a in inputs))
        return [o.numpy() for o in outputs]


def _profile(path: Path, what: str, drive: Callable, method: str, counted: int) -> Profile:
    from executorch.devtools import Inspector
    from executorch.extension.pybindings.portable_lib import _load_for_executorch

    program = _load_for_executorch(str(path), enable_etdump=True)
    drive(program)
    with tempfile.TemporaryDirectory() as tmp:
        etdump = Path(tmp) / "run.etdp"
        program.write_etdump_result_to_file(str(etdump))
        inspector = Inspector(etdump_path=str(etdump))
    return _summarize(what, inspector, counted)


def _summarize(what: str, inspector, counted: int) -> Profile:
    """Per operator: the time of its last `counted` executions (earlier ones warm up).

    ETDump nests events: DELEGATE_CALL spans an XNNPACK subgraph and holds its operators
    (`Fully Connected (NC, QD8, F32, QC8W) GEMM #3`: the instance number is dropped so one
    kind of operator is one row); OPERATOR_CALL spans a portable kernel and holds its
    `native_call_*` event. The two outer kinds are the method's operator time; the rows
    are the inner events plus what the outer ones spend around them (dispatch, delegate
    entry, the copies in and out of XNNPACK).
    """
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    for block in inspector.event_blocks:
        for event in block.events:
            if event.perf_data is None or event.name in _RUNTIME_EVENTS:
                continue
            name = re.sub(r" #\d+$", "", event.name)
            times = event.perf_data.raw[-counted:]
            totals[name] += float(np.sum(times))
            calls[name] += len(times)
    outer = {_DELEGATE: 0.0, _OPERATOR: 0.0}
    inner = {_DELEGATE: 0.0, _OPERATOR: 0.0}
    for name, t in totals.items():
        if name in outer:
            outer[name] = t
        else:
            inner[_OPERATOR if name.startswith("native_call_") else _DELEGATE] += t
    rows = {name: t for name, t in totals.items() if name not in outer}
    rows["XNNPACK delegate entry and copies"] = max(outer[_DELEGATE] - inner[_DELEGATE], 0.0)
    rows["portable kernel dispatch"] = max(outer[_OPERATOR] - inner[_OPERATOR], 0.0)
    calls["XNNPACK delegate entry and copies"] = calls[_DELEGATE]
    calls["portable kernel dispatch"] = calls[_OPERATOR]
    total = sum(outer.values()) or 1.0
    ops = sorted(
        (OpShare(name, calls[name] / counted, t / counted, t / total) for name, t in rows.items()),
        key=lambda o: -o.ms_per_run,
    )
    return Profile(what, counted, total / counted, tuple(ops))
