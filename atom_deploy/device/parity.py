"""atom-deploy device parity: the bundle's runner on the phone against the same .pte on the host.

The reference set is fixed and needs no particular model: demo-world test clips rendered at the
manifest's clip shape (seeded random clips if the shape is not [1, 3, T, S, S]), a few texts for
MiniLM and one `generate` prompt. The host runs the bundle's own artifacts through the Python
ExecuTorch runner, so the comparison is kernel against kernel; parity_report.py judges it. Where
a greedy decode parts, the host also scores the device's token at that step (host_margin), so a
near-tie that rounding tipped is told from a kernel that computes something else.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from atom_deploy.device.adb import Adb, DeviceError
from atom_deploy.device.bundle import BUNDLE_MANIFEST
from atom_deploy.device.parity_report import Thresholds, as_dict, compare_tokens, cosines, differing_steps, verdict
from atom_deploy.device.remote import push_bundle, push_files, run_runner
from atom_runner.decoding import trim_after_eos
from atom_runner.decoding.prefill import prefill
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key
from atom_runner.session import Session

SEED = 0
TEXTS = ("a red car", "a large green cross spins on a striped purple background", "Café naïve résumé",
         "two small circles move left while the camera pans")
PROMPT = "summary: a small yellow circle grows"
BEAMS = (1, 4)


def reference_clips(clip_shape: tuple[int, ...], n: int) -> list[np.ndarray]:
    """Demo test clips (seed 0) when the shape is a video clip; otherwise seeded noise of the shape."""
    if len(clip_shape) == 5 and clip_shape[:2] == (1, 3) and clip_shape[3] == clip_shape[4]:
        from atom_deploy.eval.data import load_for_shape

        return [np.ascontiguousarray(c, dtype=np.float32) for c in load_for_shape(n, SEED, clip_shape).clips]
    rng = np.random.default_rng(SEED)
    return [rng.standard_normal(clip_shape).astype(np.float32) for _ in range(n)]


def host_reference(session: Session, clips: list[np.ndarray], beams: tuple[int, ...]) -> dict:
    """Token ids per beam and clip, the generate prompt's tokens, MiniLM embeddings: the Python runner."""
    def tokens(prompt: list[int], prefix, beam: int) -> list[int]:
        return trim_after_eos(session.decode_ids(prompt, prefix, beam), session.eos_id)

    prefixes = [session.encode(c) for c in clips]
    return {
        "prefixes": prefixes,
        "captions": {b: [tokens([], p, b) for p in prefixes] for b in beams},
        "generate": tokens(session.tokenizer.encode(PROMPT), None, 1),
        "embeddings": session.embed(list(TEXTS)).tolist(),
    }


def host_margin(session: Session, prompt: list[int], prefix: np.ndarray | None, host: list[int], device: list[int]) -> float | None:
    """Where greedy host and device tokens first part, the host's logits after the tokens both
    chose (BOS + prefix + prompt + host[:step], one decode step at a time as decode_ids runs):
    (best - logit of the device's token) / (best - worst). None when they do not part or the
    device's token is outside the vocabulary. A token missing on the device is its EOS."""
    steps = differing_steps(host, device)
    if not steps:
        return None
    step = steps[0]
    chosen = device[step] if step < len(device) else session.eos_id
    stepper = session.new_stepper()
    logits, pos = prefill(stepper, session.bos_id, prompt, prefix)
    for token in host[:step]:
        logits = stepper.step(stepper.embed(np.array([[token]], dtype=np.int64)), np.array([pos], dtype=np.int64),
                              np.zeros(1, dtype=np.int64))
        pos += 1
    row = np.asarray(logits[0], dtype=np.float64)
    if not 0 <= chosen < row.size:
        return None
    return float((row.max() - row[chosen]) / (row.max() - row.min()))


def device_run(adb: Adb, bundle: Path, clips: list[np.ndarray], beams: tuple[int, ...], cpu_disable: str) -> dict:
    """The same reference set through the bundled runner on the device, plus its device-info."""
    flags = ["--cpu-disable", cpu_disable] if cpu_disable else []
    push_bundle(adb, bundle)
    with tempfile.TemporaryDirectory() as tmp:
        local = []
        for i, clip in enumerate(clips):
            path = Path(tmp) / f"parity{i}.bin"
            clip.tofile(path)
            local.append(path)
        remote = push_files(adb, local, "parity")

    def runner(*argv: str) -> dict:
        return json.loads(run_runner(adb, [argv[0], "--artifacts", "artifacts", *flags, *argv[1:]]))

    info = runner("device-info")
    info["serial"] = adb.serial
    captions = {b: [c["tokens"] for c in runner("caption", "--beam", str(b), *remote)["captions"]] for b in beams}
    return {
        "info": info,
        "captions": captions,
        "generate": runner("generate", "--beam", "1", "--", PROMPT)["tokens"],
        "embeddings": runner("embed", "--", *TEXTS)["embeddings"],
    }


def device_parity(serial: str | None, bundle: Path, n_clips: int, beams: tuple[int, ...] = BEAMS,
                  cpu_disable: str = "", limits: Thresholds = Thresholds()) -> dict:
    """Run both sides and judge; returns the report (JSON-ready), with "ok" and a one-line "message"."""
    record_path = bundle / BUNDLE_MANIFEST
    if not record_path.is_file():
        raise DeviceError(f"{bundle} is not a bundle (no {BUNDLE_MANIFEST}): run atom-deploy device bundle first")
    if n_clips < 1:
        raise DeviceError(f"--clips must be at least 1, got {n_clips}")
    if any(b not in BEAMS for b in beams):
        raise DeviceError(f"--beams takes {', '.join(map(str, BEAMS))}; got {', '.join(map(str, beams))}")
    record = json.loads(record_path.read_text())
    artifacts = bundle / "artifacts"
    shape = tuple(load_manifest(artifacts).data[Key.CLIP][Key.SHAPE])
    clips = reference_clips(shape, n_clips)
    adb = Adb(serial)
    rows = []
    # The host side first: it is quick, and a host-side error must not come after minutes on the device.
    with Session(artifacts, backend="executorch", overlap="off") as session:
        host = host_reference(session, clips, beams)
        dev = device_run(adb, bundle, clips, beams, cpu_disable)
        for b in beams:
            decode = "greedy" if b == 1 else f"beam{b}"
            for i, (h, d) in enumerate(zip(host["captions"][b], dev["captions"][b], strict=True)):
                margin = host_margin(session, [], host["prefixes"][i], h, d) if b == 1 else None
                rows.append(compare_tokens(f"clip {i}", decode, h, d, limits, margin))
        prompt = session.tokenizer.encode(PROMPT)
        margin = host_margin(session, prompt, None, host["generate"], dev["generate"])
        rows.append(compare_tokens("generate", "greedy", host["generate"], dev["generate"], limits, margin))
    cos = cosines(host["embeddings"], dev["embeddings"])
    judged = verdict(rows, cos, limits, dev["info"])
    return {
        "ok": judged.ok, "message": judged.message, "failures": list(judged.failures),
        "thresholds": {"greedy": "identical, or parting at a near-tie", "near_tie": limits.near_tie,
                       "beam_max_swapped": limits.beam_max_swapped, "cosine_min": limits.cosine_min},
        "reference": {"clips": n_clips, "clip_seed": SEED, "clip_shape": list(shape), "texts": list(TEXTS),
                      "prompt": PROMPT, "beams": list(beams)},
        "cpu_disable": cpu_disable,
        "device": dev["info"], "bundle_build": record.get("runner_build"),
        "tokens": as_dict(rows), "cosines": cos,
    }
