"""Artifact folders to break on purpose: linked copies of a real export, and stand-ins
whose files are a few bytes each (for tests that never get as far as running a model)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from atom_runner.schema import MANIFEST_FILE, Key


def linked_copy(src: Path, dst: Path) -> Path:
    """A copy of an artifact folder whose big files are hard links (same bytes, no copy).
    Change a file only through `replace_file`, which breaks the link first."""
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.name == MANIFEST_FILE:
            shutil.copy(path, dst / path.name)
            continue
        try:
            os.link(path, dst / path.name)
        except OSError:  # another file system
            shutil.copy(path, dst / path.name)
    return dst


def replace_file(path: Path, data: bytes) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def write_manifest(folder: Path, data) -> None:
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


def edit_manifest(folder: Path, change) -> None:
    data = read_manifest(folder)
    change(data)
    write_manifest(folder, data)


def vouch_for(folder: Path, data: dict, file_name: str) -> None:
    """Make every manifest record of `file_name` match the file's current bytes and sha256."""
    content = (folder / file_name).read_bytes()
    for record in file_records(data):
        if record.get(Key.FILE) == file_name:
            record[Key.SHA256] = hashlib.sha256(content).hexdigest()
            record[Key.BYTES] = len(content)


def file_records(data: dict) -> list[dict]:
    """Every {file, sha256, bytes} record of a manifest: module files and tokenizers."""
    records = [r for m in data[Key.MODULES].values() for r in m[Key.FILES]]
    return records + list(data[Key.TOKENIZERS].values())


def stand_in_folder(src: Path, dst: Path) -> Path:
    """src's manifest over files of a few bytes each, hashed: every check before a runtime
    passes, and the runtime then refuses the file (not a program, not a tokenizer)."""
    dst.mkdir(parents=True)
    data = read_manifest(src)
    for record in file_records(data):
        (dst / record[Key.FILE]).write_bytes(b"stand-in for " + record[Key.FILE].encode())
        vouch_for(dst, data, record[Key.FILE])
    write_manifest(dst, data)
    return dst
