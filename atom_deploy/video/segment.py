"""Cut a video's timeline into the overlapping clip windows ATOM captions one by one.

The paper captions 10 s windows every 5 s. Overlap means every moment is seen by two
clips, so an event cut by one window boundary is whole in the neighbouring window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atom_runner.errors import AtomError

# Seconds below which two times count as equal: float sums of strides drift by ~1e-15,
# and no decoded video has timestamps finer than a microsecond.
TIME_EPS_S = 1e-6


@dataclass(frozen=True)
class ClipWindow:
    """A span of the video timeline, in seconds from the start of the file."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def _check_positive(name: str, value: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise AtomError(f"segment: {name} must be a positive finite number of seconds, got {value!r}")


def segment(duration_s: float, window_s: float = 10.0, stride_s: float = 5.0) -> list[ClipWindow]:
    """Windows of `window_s` every `stride_s`, covering [0, duration_s] with no gap.

    - A video no longer than one window gives one clip over its whole length, not a
      clip padded past the end (there is nothing there to look at).
    - When the regular windows stop short of the end, one more window is added that
      ends exactly at the end, so the last seconds are always captioned. It overlaps
      its neighbour more than usual; that is cheaper than a half-empty clip.
    """
    _check_positive("duration_s", duration_s)
    _check_positive("window_s", window_s)
    _check_positive("stride_s", stride_s)
    if stride_s > window_s + TIME_EPS_S:
        # A stride longer than the window leaves stretches no clip ever sees.
        raise AtomError(f"segment: stride_s ({stride_s}) must not exceed window_s ({window_s})")

    if duration_s <= window_s + TIME_EPS_S:
        return [ClipWindow(0.0, float(duration_s))]

    windows: list[ClipWindow] = []
    index = 0
    while True:
        # index * stride, not a running sum, so the 100th start is as exact as the 1st.
        start = index * stride_s
        if start + window_s > duration_s + TIME_EPS_S:
            break
        windows.append(ClipWindow(float(start), float(start + window_s)))
        index += 1

    if windows[-1].end < duration_s - TIME_EPS_S:
        # Its start is past the last regular start (that one's end fell short), so no duplicate.
        windows.append(ClipWindow(float(duration_s - window_s), float(duration_s)))
    return windows
