"""Ablation variant exports (clip size 112, 2 frames), built with `atom-deploy export`.

The variants change the encoder's input shape, so they are real exports of the same
model (same spec and seed) with `--clip-size 112` / `--clip-frames 2`. Each is built
once under OUT/variants/<name> and reused by later runs. When this checkout's exporter
does not have those flags yet, the variant is skipped with a message, never faked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from atom_runner.errors import AtomError
from atom_runner.schema import MANIFEST_FILE

BACKEND = "executorch"  # the ablations run on the deployment target
VARIANT_FLAGS = {"clip112": "--clip-size", "frames2": "--clip-frames"}


def variant_values(default_clip_shape: tuple[int, ...]) -> dict[str, int]:
    """Half the default frame size (224 -> 112, the paper's) and 2 frames.

    Derived from the default export rather than fixed, so a small preset (tiny: 32 px)
    gets its own half-size variant; the variant names keep the paper's labels."""
    _, _, _, size, _ = default_clip_shape
    return {"clip112": int(size) // 2, "frames2": 2}


def parse_variant_args(values: list[str]) -> dict[str, Path]:
    variants = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or name not in VARIANT_FLAGS:
            raise AtomError(f"--variant {value!r}: expected NAME=DIR with NAME one of {sorted(VARIANT_FLAGS)}")
        if not (Path(folder) / BACKEND / MANIFEST_FILE).is_file():
            raise AtomError(f"--variant {value!r}: no {BACKEND}/{MANIFEST_FILE} in {folder}")
        variants[name] = Path(folder)
    return variants


def build_variants(
    variants: dict[str, Path], model_spec: str, seed: int, default_clip_shape: tuple[int, ...], root: Path,
    export: bool = True, log=print,
) -> tuple[dict[str, Path], list[str]]:
    """Given variants plus any built (or found already built) under root; skip messages."""
    out, messages = dict(variants), []
    values = variant_values(default_clip_shape)
    for name, flag in VARIANT_FLAGS.items():
        value = str(values[name])
        if name in out:
            continue
        folder = root / name
        if (folder / BACKEND / MANIFEST_FILE).is_file():
            out[name] = folder
            continue
        if not export:
            messages.append(f"variant {name}: not built (--no-build-variants)")
            continue
        log(f"variant {name}: exporting {model_spec} with {flag} {value} to {folder}")
        command = [sys.executable, "-m", "atom_deploy", "export", "--model", model_spec, "--seed", str(seed),
                   "--backend", BACKEND, "--quant", "int8", flag, value, "--out", str(folder), "--force"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            messages.append(f"variant {name}: export failed ({tail[0]})")
            continue
        out[name] = folder
    return out, messages
