"""Which files a command works on, and how a file is identified in the index.

A folder contributes the files under it (recursively) with a video suffix, so the
licences and notes that sit beside videos are not reported as failures. A file named
on the command line is always tried, whatever its suffix: the user asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from atom_runner.manifest import sha256_file

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp", ".wmv", ".flv", ".ogv",
})


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """(video files in a stable order, without repeats; [(input, problem)] for missing inputs)."""
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                problems.append((str(path), f"{path}: folder holds no video files"))
        elif path.is_file():
            found = [path]
        else:
            problems.append((str(path), f"{path}: no such file or folder"))
            continue
        for file in found:
            key = canonical(file)
            if key not in seen:
                seen.add(key)
                files.append(key)
    return files, problems


def canonical(path: str | Path) -> Path:
    """The absolute path a video is stored under: one row per file however it was named."""
    return Path(path).resolve()


def content_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes, read in 1 MiB blocks (memory flat in the file size)."""
    return sha256_file(Path(path))
