"""Assembly: real mp4 reels from two demo videos of very different colours, sizes and frame rates."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from atom_deploy.cli import main as cli_main
from atom_deploy.pipelines.assemble import DECODER, SIMILARITY, assemble, distinct_hits
from atom_deploy.pipelines.qa import ask, summarize
from atom_deploy.pipelines.search import Hit, search
from atom_deploy.pipelines.stitch import ReelFormat
from atom_runner.errors import AtomError
from atom_runner.schema import Module
from atom_runner.task_formats import NO_MATCHING_CLIPS, assembly_input
from pipeline_helpers import demo_video, open_index

FMT = ReelFormat(320, 180, 25)
CLIPS = dict(window_s=4.0, stride_s=4.0)  # 8 s videos -> two 4 s clips each


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    demo_video(folder / "blue.mp4", "blue", seconds=8, fps=8, size=(160, 120))  # 4:3, 8 fps
    demo_video(folder / "pink.mp4", "pink", seconds=8, fps=12, size=(200, 112))  # wider, 12 fps
    return folder


def reel_frames(path) -> tuple[tuple, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = (stream.codec_context.name, stream.width, stream.height, float(stream.average_rate))
        return info, [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


def colour_of(frame: np.ndarray) -> str:
    """Which source a frame shows: the blue background has B > R, the pink one R > B."""
    picture = frame[:, 45:-45].reshape(-1, 3).astype(float).mean(axis=0)  # inside any letterbox bars
    return "blue" if picture[2] > picture[0] + 20 else "pink" if picture[0] > picture[2] + 20 else "?"


def test_reel_is_a_real_mp4_of_the_chosen_clips(session, sources, tmp_path):
    out = tmp_path / "reel.mp4"
    with open_index(tmp_path / "idx.sqlite", session) as index:
        reel = assemble(session, index, "the red square", [sources], out, k=3, fmt=FMT, progress=False, **CLIPS)
    # The tiny random decoder writes noise, never a valid script: similarity order, and it says so.
    assert reel.script_source == SIMILARITY and "names no valid clip" in reel.note
    assert len(reel.clips) == 3 and [c.order for c in reel.clips] == [1, 2, 3]
    assert [c.score for c in reel.clips] == sorted((c.score for c in reel.clips), reverse=True)

    (codec, width, height, fps), frames = reel_frames(out)
    assert (codec, width, height, fps) == ("h264", 320, 180, 25.0)
    total = sum(c.end_s - c.start_s for c in reel.clips)
    assert abs(len(frames) / 25 - total) <= len(reel.clips) / 25 and reel.duration_s == pytest.approx(len(frames) / 25)
    start = 0
    for clip in reel.clips:
        count = round((clip.end_s - clip.start_s) * 25)
        middle = frames[start + count // 2]
        assert colour_of(middle) == ("blue" if clip.source.endswith("blue.mp4") else "pink"), clip
        if clip.source.endswith("blue.mp4"):  # 4:3 into 16:9: letterboxed, black bars left and right
            assert middle[:, :30].max() < 30 and middle[:, 45:-45].mean() > 40
        start += count
    assert {colour_of(f) for f in frames} >= {"blue", "pink"} or len({c.source for c in reel.clips}) == 1

    script = json.loads(out.with_suffix(".json").read_text())
    assert script["video"] == str(out) and script["script_source"] == SIMILARITY and script["note"]
    assert [(c["order"], c["source"], c["start_s"], c["end_s"], c["caption"], c["narration"]) for c in script["clips"]] == [
        (c.order, c.source, c.start_s, c.end_s, c.caption, c.caption) for c in reel.clips
    ]


def test_the_decoders_script_orders_and_narrates(session, sources, tmp_path, monkeypatch):
    prompts = []

    def fake_generate(prompt, steps=None, prefix=None, beam=1, truncate=False):
        prompts.append(prompt)
        return "clip 2: the last one first | clip 0: then the best | clip 2: repeated | clip 7: invented | clip 1: cut off"

    # The tiny model's 64-token context holds one caption; pretend it is larger to see ordering.
    monkeypatch.setattr(session, "max_context", 4096)
    monkeypatch.setattr(session, "generate", fake_generate)
    request = "make a highlight reel of the red objects"
    with open_index(tmp_path / "idx.sqlite", session) as index:
        reel = assemble(session, index, request, [sources], tmp_path / "reel.mp4", k=3, fmt=FMT, progress=False, **CLIPS)
        hits = distinct_hits(search(session, index, request, 12), 3)
    assert prompts == [assembly_input([h.caption for h in hits], request)]  # the trained format, verbatim
    assert reel.script_source == DECODER and reel.note is None
    assert [(c.source, c.start_s, c.narration) for c in reel.clips] == [
        (hits[2].video, hits[2].start_s, "the last one first"), (hits[0].video, hits[0].start_s, "then the best"),
        (hits[1].video, hits[1].start_s, "cut off"),
    ]
    assert json.loads((tmp_path / "reel.json").read_text())["generated_script"].startswith("clip 2:")


def test_no_matching_clips_falls_back_to_similarity(session, sources, tmp_path, monkeypatch):
    monkeypatch.setattr(session, "generate", lambda prompt, steps=None, prefix=None, beam=1, truncate=False: NO_MATCHING_CLIPS)
    with open_index(tmp_path / "idx.sqlite", session) as index:
        reel = assemble(session, index, "purple things", [sources], tmp_path / "reel.mp4", k=2, fmt=FMT, progress=False, **CLIPS)
    assert reel.script_source == SIMILARITY and NO_MATCHING_CLIPS in reel.note and len(reel.clips) == 2


def test_assemble_rejects_bad_output_names(session, sources, tmp_path):
    with open_index(tmp_path / "idx.sqlite", session) as index:
        with pytest.raises(AtomError, match="name it"):
            assemble(session, index, "x", [sources], tmp_path / "reel.json", progress=False)
        with pytest.raises(AtomError, match="does not exist"):
            assemble(session, index, "x", [sources], tmp_path / "no" / "reel.mp4", progress=False)


def test_distinct_hits_skip_half_overlapping_neighbours():
    def hit(video, start):
        return Hit(0, 0.0, video, start, start + 10.0, "", 0)

    hits = [hit("a", 0), hit("a", 5), hit("b", 0), hit("a", 10), hit("a", 7.5)]
    assert distinct_hits(hits, 3) == [hits[0], hits[2], hits[3]]


def test_every_pipeline_shares_one_session(session, sources, tmp_path):
    """index, search, assemble, summarize and ask in one process: each module loaded once."""
    video = sources / "pink.mp4"
    with open_index(tmp_path / "idx.sqlite", session) as index:
        assemble(session, index, "a reel", [sources], tmp_path / "reel.mp4", k=2, fmt=FMT, progress=False, **CLIPS)
        search(session, index, "red", 3)
        summarize(session, video, index)
        ask(session, video, "is there a red square?")
    assert session.stats.loads == {m: 1 for m in Module.ALL}


def test_assemble_cli_opens_one_session(tiny_exports, sources, tmp_path, monkeypatch, capsys):
    import atom_runner.session as session_module

    opened = []

    class CountingSession(session_module.Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(session_module, "Session", CountingSession)
    out = tmp_path / "reel.mp4"
    code = cli_main(["assemble", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx", "--no-progress",
                     "-k", "2", "-o", str(out), "--size", "320x180", "--window", "4", "--stride", "4",
                     "'); DROP TABLE clips; --", str(sources)])
    assert code == 0 and out.is_file() and out.with_suffix(".json").is_file()
    assert len(opened) == 1 and opened[0].stats.loads == {m: 1 for m in Module.ALL}
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{out}: ") and "note: the generated script names no valid clip" in captured.err
