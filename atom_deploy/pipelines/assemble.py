"""Assemble a reel: index if needed -> top-k clips -> a script from the decoder -> stitched mp4 + JSON.

The script comes from the same decoder that captions, in text-only mode: given the
user's request and the top-k captions it selects clips, orders them and writes a line
of narration for each. When its output names no valid clip (an untrained model, or
"no matching clips"), the reel falls back to similarity order and the JSON says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.indexing import IndexReport, index_videos
from atom_deploy.pipelines.script import script_entries, write_script
from atom_deploy.pipelines.search import Hit, search
from atom_deploy.pipelines.sources import canonical, expand_inputs
from atom_deploy.pipelines.stitch import Piece, ReelFormat, stitch
from atom_runner.errors import AtomError
from atom_runner.session import Session

DECODER, SIMILARITY = "decoder", "similarity"


@dataclass(frozen=True)
class ReelClip:
    order: int  # 1-based playing position
    source: str
    start_s: float
    end_s: float
    caption: str
    narration: str
    score: float


@dataclass
class Reel:
    video: str
    script_file: str
    prompt: str
    duration_s: float
    script_source: str  # DECODER or SIMILARITY
    generated_script: str
    clips: list[ReelClip]
    note: str | None = None
    fps: int = 0
    size: tuple[int, int] = (0, 0)
    index_report: IndexReport = field(default_factory=IndexReport, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["index_report"] = self.index_report.as_dict()
        return data


def distinct_hits(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The best k hits, skipping any that overlaps a better one of the same video by half or
    more: neighbouring 10 s windows share 5 s, and a reel should not show it twice."""
    kept: list[Hit] = []
    for hit in hits:
        length = hit.end_s - hit.start_s
        if all(h.video != hit.video or min(h.end_s, hit.end_s) - max(h.start_s, hit.start_s) < 0.5 * length for h in kept):
            kept.append(hit)
        if len(kept) == k:
            break
    return kept


def assemble(
    session: Session, index: ClipIndex, prompt: str, videos: Sequence[str | Path], out: str | Path, k: int = 5,
    fmt: ReelFormat = ReelFormat(), window_s: float = 10.0, stride_s: float = 5.0, beam: int = 4, progress: bool = True,
) -> Reel:
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AtomError(f"the reel is an mp4: name it *.mp4, not {out.name!r} (its script goes beside it as .json)")
    if k < 1:
        raise AtomError(f"k must be at least 1, got {k}")
    if not out.parent.is_dir():
        raise AtomError(f"cannot write {out}: folder {out.parent} does not exist")
    report = index_videos(session, index, videos, window_s, stride_s, beam, progress=progress)
    files, _ = expand_inputs(videos)
    wanted = [str(canonical(f)) for f in files]
    # Ask for more than k so overlapping neighbours can be skipped and k distinct clips remain.
    hits = distinct_hits(search(session, index, prompt, k * 4, videos=wanted), k)

    answer = write_script(session, [h.caption for h in hits], prompt)
    entries = script_entries(answer.text, len(answer.used))
    note = None
    if entries:
        chosen = [(hits[answer.used[i]], narration) for i, narration in entries]
        source = DECODER
    else:
        chosen = [(h, h.caption) for h in hits]
        source = SIMILARITY
        note = f"the generated script names no valid clip ({answer.text[:60]!r}); clips are in similarity order"
    clips = [
        ReelClip(order, h.video, h.start_s, h.end_s, h.caption, narration, round(h.score, 4))
        for order, (h, narration) in enumerate(chosen, start=1)
    ]
    duration = stitch([Piece(c.source, c.start_s, c.end_s) for c in clips], out, fmt)
    reel = Reel(
        video=str(out), script_file=str(out.with_suffix(".json")), prompt=prompt, duration_s=duration,
        script_source=source, generated_script=answer.text, clips=clips, note=note,
        fps=fmt.fps, size=(fmt.width, fmt.height), index_report=report,
    )
    write_json(Path(reel.script_file), {k: v for k, v in reel.as_dict().items() if k != "index_report"})
    return reel


def write_json(path: Path, payload: dict) -> None:
    """Written beside the reel under a temporary name, then renamed: never half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
