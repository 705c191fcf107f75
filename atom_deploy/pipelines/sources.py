"""Which files a command works on, and how a file is identified in the index.

A folder contributes the files under it (recursively) with a video suffix, so the
licences and notes that sit beside videos are not reported as failures. A file named
on the command line is always tried, whatever its suffix: the user asked for it.

A file whose name is not valid UTF-8 is reported and left out: the index stores names
as text, and one such name must not stop the files beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from atom_runner.manifest import sha256_file

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".3gp", ".wmv", ".flv", ".ogv",
})


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """(video files in a stable order, without repeats; [(input, problem)] for the inputs left out)."""
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                problems.append((shown(path), f"{shown(path)}: folder holds no video files"))
        elif path.is_file():
            found = [path]
        else:
            problems.append((shown(path), f"{shown(path)}: no such file or folder"))
            continue
        for file in found:
            key = canonical(file)
            if shown(key) != str(key):
                problems.append((shown(key), f"{shown(key)}: file name is not valid UTF-8; rename the file"))
                continue
            if key not in seen:
                seen.add(key)
                files.append(key)
    return files, problems


def shown(path: str | Path) -> str:
    """The path as printable text: bytes that are not UTF-8 appear as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def canonical(path: str | Path) -> Path:
    """The absolute path a video is stored under: one row per file however it was named."""
    return Path(path).resolve()


def content_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes, read in 1 MiB blocks (memory flat in the file size)."""
    return sha256_file(Path(path))
