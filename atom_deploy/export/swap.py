"""Replace an export's output folder in one step, and clear what interrupted exports left.

An export builds every backend into one staging folder beside OUT (`.OUT.partial-<pid>`),
links in what OUT holds that it does not replace (another backend's folder, a parity
report), then swaps the two folders with one renameat2(RENAME_EXCHANGE): a reader sees
the whole old set or the whole new one, never a mix of backends and never no folder.
Where the filesystem cannot exchange, OUT is moved aside (`.OUT.old-<pid>`) and the new
one renamed in; a run killed between those two renames is undone by the next export.

Leftovers are removed only when the process that made them is gone: a live export's
staging folder is its work in progress.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def staging_folder(out: Path) -> Path:
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def remove_stale(out: Path) -> list[Path]:
    """Remove the staging folders of dead exports of `out` (beside it, and the per-backend
    ones inside it that exports before this layout made); put back an OUT that a killed
    swap had moved aside. Returns what was removed."""
    removed = []
    aside = re.compile(rf"\.(?P<name>{re.escape(out.name)})\.(?P<kind>partial|old)-(?P<pid>\d+)")
    inside = re.compile(r"\.(?P<name>[\w-]+)\.(?P<kind>partial|old)-(?P<pid>\d+)")
    candidates = [(p, aside.fullmatch(p.name)) for p in _entries(out.parent)]
    candidates += [(p, inside.fullmatch(p.name)) for p in _entries(out)]
    for path, match in candidates:
        if not match or not path.is_dir() or _alive(int(match["pid"])):
            continue
        home = path.parent / match["name"]
        if match["kind"] == "old" and not home.exists():
            path.rename(home)  # killed between its two renames: the old folder is still the right one
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def carry_over(out: Path, staging: Path) -> None:
    """Hard-link into `staging` every entry of `out` it does not replace (a copy where links fail)."""
    for entry in _entries(out):
        target = staging / entry.name
        if target.exists() or target.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def swap_into_place(staging: Path, out: Path) -> None:
    """Make `staging` be `out`; the old `out` is removed afterwards."""
    if not out.exists():
        staging.rename(out)
    elif _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # it holds the old set now
    else:
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the kernel or filesystem cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not glibc >= 2.28 (or not Linux)
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel cannot exchange
        return False
    raise OSError(error, os.strerror(error), str(b))


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
