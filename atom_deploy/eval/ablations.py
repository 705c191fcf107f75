"""Ablations: CIDEr and per-clip latency measured in the same run, per setting.

    beam        1 vs 4           (default export)
    steps       12 vs 23         (default export, beam 4)
    clip size   112 vs 224       (variant export "clip112" vs default)
    frames      2 vs 6           (variant export "frames2" vs default)

Clip size and frame count change the encoder's input shape, so they need their own
exports; they come in as a mapping of variant name -> artifacts dir, and a group whose
variant is missing is skipped with a message instead of guessed. Each distinct
(variant, beam, steps) is run once and shared between groups. Captions are scored with
CIDEr only: METEOR's JVM start per setting would dwarf the small sets used here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atom_deploy.eval.caption_metrics import score_captions
from atom_deploy.eval.captioning import caption_clips
from atom_deploy.eval.data import EvalSet, for_clip_shape
from atom_runner.errors import AtomError

DEFAULT = "default"
CLIP112, FRAMES2 = "clip112", "frames2"
DEFAULT_BEAM, DEFAULT_STEPS = 4, 23


@dataclass(frozen=True)
class AblationSetting:
    group: str
    label: str
    variant: str
    beam: int
    steps: int


@dataclass(frozen=True)
class AblationResult:
    group: str
    label: str
    variant: str
    beam: int
    steps: int
    clip_shape: tuple[int, ...]
    cider: float
    seconds_per_clip: float  # median encode + decode per clip


SETTINGS = (
    AblationSetting("beam", "beam 1", DEFAULT, 1, DEFAULT_STEPS),
    AblationSetting("beam", "beam 4", DEFAULT, 4, DEFAULT_STEPS),
    AblationSetting("steps", "12 steps", DEFAULT, DEFAULT_BEAM, 12),
    AblationSetting("steps", "23 steps", DEFAULT, DEFAULT_BEAM, DEFAULT_STEPS),
    AblationSetting("clip size", "112 px", CLIP112, DEFAULT_BEAM, DEFAULT_STEPS),
    AblationSetting("clip size", "224 px", DEFAULT, DEFAULT_BEAM, DEFAULT_STEPS),
    AblationSetting("frames", "2 frames", FRAMES2, DEFAULT_BEAM, DEFAULT_STEPS),
    AblationSetting("frames", "6 frames", DEFAULT, DEFAULT_BEAM, DEFAULT_STEPS),
)


def run_ablations(
    variants: dict[str, Path], eval_set: EvalSet, backend: str = "executorch", log=print
) -> tuple[list[AblationResult], list[str]]:
    """(results, skip messages). variants: name -> export folder holding <backend>/."""
    from atom_runner.session import Session

    if DEFAULT not in variants:
        raise AtomError(f"ablations need the {DEFAULT!r} variant")
    runnable = [s for s in SETTINGS if _group_ready(s.group, variants)]
    skipped = [
        f"ablation {s.group!r}: skipped, no {s.variant!r} export"
        for s in SETTINGS if s.variant not in variants
    ]
    measured: dict[tuple[str, int, int], AblationResult] = {}
    results = []
    for variant in dict.fromkeys(s.variant for s in runnable):
        with Session(variants[variant], backend=backend, overlap="off") as session:
            clips_set = for_clip_shape(eval_set, session.clip_shape)
            for setting in (s for s in runnable if s.variant == variant):
                key = (variant, setting.beam, setting.steps)
                if key not in measured:
                    log(f"ablation {variant}: beam {setting.beam}, {setting.steps} steps")
                    run = caption_clips(session, clips_set.clips, beam=setting.beam, steps=setting.steps)
                    scores = score_captions(dict(zip(clips_set.ids, run.captions)), clips_set.references(), meteor=False)
                    measured[key] = AblationResult(
                        "", "", variant, setting.beam, setting.steps, tuple(session.clip_shape),
                        scores.cider, run.seconds_per_clip,
                    )
    for setting in runnable:
        base = measured[(setting.variant, setting.beam, setting.steps)]
        results.append(AblationResult(setting.group, _label(setting, base.clip_shape), base.variant, base.beam,
                                      base.steps, base.clip_shape, base.cider, base.seconds_per_clip))
    return results, skipped


def _label(setting: AblationSetting, clip_shape: tuple[int, ...]) -> str:
    # Label by what was measured: a small preset's "112 px" variant is really half its size.
    if setting.group == "clip size":
        return f"{clip_shape[3]} px"
    if setting.group == "frames":
        return f"{clip_shape[2]} frames"
    return setting.label


def _group_ready(group: str, variants: dict[str, Path]) -> bool:
    return all(s.variant in variants for s in SETTINGS if s.group == group)
