"""Peak resident memory from /proc: the kit's one reader of VmHWM (the C++ runner's mirror
is peak_rss_kb in runners/android/src/process_memory.cpp).

VmHWM is the process's high-water mark, so a measurement that must not include an earlier
phase either runs in a fresh process or resets the mark first (reset_peak).
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM of a process in MB (2^20 bytes); NaN where the kernel does not report it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int | str = "self") -> bool:
    """Reset VmHWM to the current RSS (clear_refs "5"); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
