"""Device parity's verdict: the device's tokens and embeddings against the host's, per threshold.

Thresholds (docs/device_parity.md): greedy tokens identical on every clip and on the generate
prompt, unless they first part at a near-tie (the device's token within `near_tie` of the host's
best logit, as a fraction of the host's logit range at that step: rounding, not a wrong kernel);
beam 4 at most one swapped token a caption; MiniLM embedding cosine >= 0.999. The host runs the
same .pte through the Python ExecuTorch runner, so a miss is the device's kernels, not the model
or the export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# The features that change which matmul kernels XNNPACK and KleidiAI pick (hwcap names).
KERNEL_FEATURES = ("asimddp", "i8mm", "bf16", "sve", "sve2", "sme", "sme2")


@dataclass(frozen=True)
class Thresholds:
    beam_max_swapped: int = 1  # positions a beam-4 caption may differ by
    cosine_min: float = 0.999
    # greedy: identical tokens, or a first difference at a near-tie: the host's best logit minus
    # its logit for the device's token, over the host's logit range at that step, at most this.
    # int8 rounding on another CPU moves logits by about 0.5% of their range; a wrong kernel by
    # most of it (docs/device_parity.md has the measured margins).
    near_tie: float = 0.01


@dataclass(frozen=True)
class TokenRow:
    name: str  # "clip 0", "generate"
    decode: str  # "greedy" | "beam4"
    host: tuple[int, ...]
    device: tuple[int, ...]
    agreement: float  # matching positions / the longer sequence
    first_diff: int | None  # the first step where they differ (None: identical)
    swapped: int  # positions that differ, a missing token counting as one
    host_margin: float | None  # greedy, at first_diff: how far the device's token sits below the host's best
    ok: bool


def differing_steps(host: list[int], device: list[int]) -> list[int]:
    """Positions where the two differ, a token missing on one side counting as a difference."""
    return [i for i in range(max(len(host), len(device))) if i >= len(host) or i >= len(device) or host[i] != device[i]]


def compare_tokens(name: str, decode: str, host: list[int], device: list[int], limits: Thresholds,
                   host_margin: float | None = None) -> TokenRow:
    """host_margin: for greedy rows that differ, the host's relative logit margin at the first
    difference (host_margin() in parity.py); None where not measured, which never passes."""
    n = max(len(host), len(device))
    diffs = differing_steps(host, device)
    if decode == "greedy":
        ok = not diffs or (host_margin is not None and host_margin <= limits.near_tie)
    else:
        ok = len(diffs) <= limits.beam_max_swapped
    return TokenRow(name, decode, tuple(host), tuple(device), 1.0 - len(diffs) / n if n else 1.0,
                    diffs[0] if diffs else None, len(diffs), host_margin if diffs else None, ok)


def cosines(a, b) -> list[float]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return [-1.0] * max(len(a), len(b))
    return ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).tolist()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    failures: tuple[str, ...]  # one phrase each: "greedy tokens differ on 2/2 clips (clip 0 from step 0)"
    message: str  # the one line printed on failure


def verdict(rows: list[TokenRow], cos: list[float], limits: Thresholds, device: dict) -> Verdict:
    failures = []
    for decode, what in (("greedy", "greedy tokens differ"), ("beam4", "beam-4 captions swap more than "
                                                              f"{limits.beam_max_swapped} token")):
        bad = [r for r in rows if r.decode == decode and not r.ok]
        total = [r for r in rows if r.decode == decode]
        if bad:
            where = f"{bad[0].name} from step {bad[0].first_diff}"
            if bad[0].host_margin is not None:
                where += f", {bad[0].host_margin:.1%} of the logit range below the host's best"
            failures.append(f"{what} on {len(bad)}/{len(total)} ({where})")
    low = [c for c in cos if not c >= limits.cosine_min]
    if low:
        failures.append(f"embedding cosine {min(cos):.6f} < {limits.cosine_min} on {len(low)}/{len(cos)} texts")
    if not failures:
        return Verdict(True, (), "")
    cpu = device.get("cpu", {})
    seen = [f for f in KERNEL_FEATURES if f in cpu.get("runtime_features", [])]
    kernels = sorted({k for calls in (device.get("kernels") or {}).values() for k in calls})
    message = (f"device parity FAILED on {device.get('serial', '?')}: {'; '.join(failures)}; "
               f"CPU features the runtime used: {','.join(seen) or 'none of ' + ','.join(KERNEL_FEATURES)}")
    if cpu.get("disabled"):
        message += f" (disabled: {','.join(cpu['disabled'])})"
    if kernels:
        message += f"; KleidiAI kernels: {','.join(kernels)}"
    if "sme" in seen:
        message += "; SME kernels are the known suspect: retry with --cpu-disable sme (docs/device_parity.md)"
    return Verdict(False, tuple(failures), message)


def table(report: dict) -> str:
    """One screen: the device and build, one row per comparison, the verdict."""
    dev, cpu, build = report["device"], report["device"].get("cpu", {}), report["device"].get("build", {})
    bundle_build = report.get("bundle_build") or {}
    lines = [
        f"device {dev.get('serial', '?')}   runner {build.get('commit', '?')[:12]}{' (dirty)' if build.get('dirty') else ''}"
        f" {build.get('compiler', '?')} {build.get('build_type', '')}   executorch {build.get('executorch', '?')}"
        + ("" if not bundle_build or bundle_build.get("commit") == build.get("commit")
           else f"   (bundle.json says {bundle_build.get('commit', '?')[:12]})"),
        f"CPU features: {' '.join(f for f in KERNEL_FEATURES if f in cpu.get('features', [])) or '-'}"
        + (f"   disabled: {','.join(cpu['disabled'])}" if cpu.get("disabled") else "")
        + (f"   SVL {cpu['sme_svl_bytes'] * 8} bit" if "sme_svl_bytes" in cpu else ""),
    ]
    for stage, calls in (dev.get("kernels") or {}).items():
        lines.append(f"kernels {stage:<15} {', '.join(f'{k} x{n}' for k, n in calls.items()) or 'XNNPACK only (no KleidiAI)'}")
    lines.append(f"{'input':<10} {'decode':<7} {'agree':>6} {'swapped':>7} {'first diff':>10}  result")
    for r in report["tokens"]:
        first = "" if r["first_diff"] is None else str(r["first_diff"])
        margin = r.get("host_margin")
        note = "" if margin is None else f" ({'near-tie' if r['ok'] else 'host margin'} {margin:.2%} of the logit range)"
        lines.append(f"{r['name']:<10} {r['decode']:<7} {r['agreement']:>6.3f} {r['swapped']:>7} {first:>10}  "
                     f"{'ok' if r['ok'] else 'FAIL'}{note}")
    cos = report["cosines"]
    lines.append(f"{'minilm':<10} {'cosine':<7} {min(cos):>6.4f} {'':>7} {'':>10}  "
                 f"{'ok' if min(cos) >= report['thresholds']['cosine_min'] else 'FAIL'} (min of {len(cos)} texts)")
    lines.append("parity: ok" if report["ok"] else report["message"])
    return "\n".join(lines)


def as_dict(rows: list[TokenRow]) -> list[dict]:
    return [asdict(r) for r in rows]
