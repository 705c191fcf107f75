"""Text-only pipeline pieces: prompts in the trained formats, fitted to the context; summarize and ask."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from atom_deploy.pipelines.captioning import clean_caption
from atom_deploy.pipelines.qa import CaptionOptions, ask, summarize
from atom_deploy.pipelines.script import fitted_prompt, ranked, script_entries, spread
from atom_runner.errors import AtomError
from atom_runner.task_formats import NO_MATCHING_CLIPS, assembly_input, qa_input, summary_input
from conftest import atom_deploy
from pipeline_helpers import VIDEOS, demo_video, needs_videos, open_index, open_session


@pytest.fixture(scope="module")
def session(tiny_exports):
    s = open_session(tiny_exports, "onnx")
    yield s
    s.close()


def word_session(max_context: int, decode_steps: int = 5) -> SimpleNamespace:
    """Just what fitted_prompt reads, with one token per word."""
    return SimpleNamespace(max_context=max_context, decode_steps=decode_steps, tokenizer=SimpleNamespace(encode=str.split))


def test_script_entries_keep_the_valid_ones():
    assert script_entries("clip 1: a | clip 0: b", 2) == [(1, "a"), (0, "b")]
    assert script_entries("clip 1: a | clip 5: made up | clip 1: again | nonsense | clip 0: the red sq", 2) == [(1, "a"), (0, "the red sq")]
    assert script_entries(NO_MATCHING_CLIPS, 3) == [] and script_entries("", 3) == []
    assert script_entries("\ufffd noise clip 0 | clip -1: x | clip 0:", 3) == []


def test_spread_and_ranked_choices():
    assert spread(27, 1) == [0] and spread(27, 2) == [0, 26] and spread(27, 4) == [0, 9, 17, 26]
    assert spread(3, 5) == [0, 1, 2] and ranked(10, 3) == [0, 1, 2]
    assert all(len(spread(n, k)) == min(n, k) for n in range(1, 40) for k in range(1, 40))


def test_fitted_prompt_drops_captions_until_the_answer_fits():
    captions = [f"caption number {i} with six words" for i in range(20)]  # 6 tokens each (+1 for the number)
    prompt, used, steps = fitted_prompt(word_session(60), captions, lambda c: assembly_input(c, "make a reel"), ranked)
    assert prompt == assembly_input(captions[: len(used)], "make a reel") and used == list(range(len(used)))
    length = len(prompt.split())
    assert length <= 60 - 1 - 5 and length + 8 > 60 - 1 - 5  # one more caption would not fit
    assert steps == 60 - 1 - length  # the answer gets all the room left
    prompt, used, _ = fitted_prompt(word_session(60), captions, summary_input, spread)
    assert used[0] == 0 and used[-1] == 19 and prompt == summary_input([captions[i] for i in used])
    # Nothing fits: one caption anyway (the Session then cuts the prompt and warns), default steps.
    prompt, used, steps = fitted_prompt(word_session(10), captions, summary_input, spread)
    assert used == [0] and steps == 5


def test_clean_caption_makes_one_printable_line():
    assert clean_caption("a\nred\tsquare\x07  moves\r\n") == "a red square moves"


def test_summarize_and_ask_use_the_trained_formats(session, tmp_path, monkeypatch):
    video = tmp_path / "v.mp4"
    demo_video(video, "blue", seconds=20, scenes=2)  # 3 clips of 10 s every 5 s
    prompts = []
    monkeypatch.setattr(session, "max_context", 4096)
    monkeypatch.setattr(session, "generate", lambda prompt, steps=None, prefix=None, beam=1, truncate=False: prompts.append(prompt) or "two\nclips")
    summary = summarize(session, video)
    question = "how many clips show a red object?\nignore the line break"
    answer = ask(session, video, question)
    captions = [c.caption for c in summary.captions]
    assert [(c.start_s, c.end_s) for c in summary.captions] == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]
    assert prompts == [summary_input(captions), qa_input(captions, "how many clips show a red object? ignore the line break")]
    assert summary.text == answer.text == "two clips" and summary.note is None and summary.used == [0, 1, 2]


def test_summarize_notes_a_short_context_and_reuses_the_index(session, tmp_path):
    video = tmp_path / "v.mp4"
    demo_video(video, "pink", seconds=20, scenes=2)
    with open_index(tmp_path / "idx.sqlite", session) as index:
        first = summarize(session, video, index, CaptionOptions(beam=1))
        stored = index.clips_of(str(video))
        again = ask(session, video, "is there a red square?", index, CaptionOptions(beam=1))
    assert [c.caption for c in first.captions] == [c.caption for c in again.captions] == [r.caption for r in stored]
    assert "held 1 of 3 clip captions" in first.note  # the tiny model's 64-token context


@needs_videos
def test_a_truncated_video_is_summarized_from_the_clips_it_has(session, tmp_path):
    data = (VIDEOS / "one-by-one-person-detection.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 5])
    result = summarize(session, cut, options=CaptionOptions(beam=1))
    assert 1 <= len(result.captions) < 27 and "truncated or corrupt" in result.note and "\n" not in result.note
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(AtomError, match="not a readable media file"):
        ask(session, notes, "what happens?")
    with pytest.raises(AtomError, match="no such video file"):
        summarize(session, tmp_path / "gone.mp4")


def test_summarize_and_ask_cli(tiny_exports, tmp_path):
    video = tmp_path / "v.mp4"
    demo_video(video, "blue", seconds=6, scenes=1)
    common = ["--artifacts", str(tiny_exports["int8"]), "--backend", "onnx"]
    summary = atom_deploy("summarize", *common, "--json", str(video), check=True)
    payload = json.loads(summary.stdout)
    assert payload["video"] == str(video) and len(payload["captions"]) == 1 and "\n" not in payload["text"]
    answer = atom_deploy("ask", *common, "--index", str(tmp_path / "idx.sqlite"), str(video), "'); DROP TABLE clips; --", check=True)
    assert answer.stdout.count("\n") == 1
    missing = atom_deploy("ask", *common, str(tmp_path / "gone.mp4"), "why?")
    assert missing.returncode == 1 and missing.stderr.strip() == f"atom-deploy ask: error: {tmp_path / 'gone.mp4'}: no such video file"
