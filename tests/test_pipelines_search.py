"""Search: cosine ranking over the index, with the real MiniLM; prompts are only ever text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.pipelines.search import search, top_k
from atom_runner.errors import AtomError
from conftest import atom_deploy
from pipeline_helpers import demo_video, open_index, rows

INJECTION = "'); DROP TABLE clips; --"


@pytest.fixture(scope="module")
def demo_index(session, tmp_path_factory):
    """Two demo videos cut into 4 s clips (2 + 3): their stored captions come from the tiny model."""
    folder = tmp_path_factory.mktemp("demo")
    demo_video(folder / "blue.mp4", "blue", seconds=8, scenes=2)
    demo_video(folder / f"odd name {INJECTION}.mp4", "pink", seconds=12, scenes=3)
    path = folder / "idx.sqlite"
    with open_index(path, session) as index:
        report = index_videos(session, index, [folder], window_s=4.0, stride_s=4.0, progress=False)
    assert report.skipped == [] and report.clips_added == 5
    return path


def test_a_clips_own_caption_ranks_it_first(session, demo_index):
    stored = rows(demo_index)
    captions = [r[3] for r in stored]
    with open_index(demo_index, session) as index:
        for video, start, end, caption, clip_id in stored:
            if captions.count(caption) != 1:
                continue  # the tiny model's noise can repeat; a tie would make "first" ambiguous
            best = search(session, index, caption, k=3)[0]
            assert (best.clip_id, best.video, best.start_s, best.end_s) == (clip_id, video, start, end)
            assert best.score == pytest.approx(1.0, abs=1e-3) and best.rank == 1


def test_ranking_with_known_captions_and_the_real_minilm(session, tmp_path):
    known = [
        "a small red square moves left on a striped blue background",
        "a green circle bounces on a dotted grey background",
        "a large yellow star spins on a checkered pink background",
        "a white triangle grows while a black bar moves up",
    ]
    with open_index(tmp_path / "idx.sqlite", session) as index:
        video = index.start_video("/videos/known.mp4", "f" * 64, 10.0, 5.0)
        vectors = session.embed(known)
        index.add_clips(video, [(5.0 * i, 5.0 * i + 10, c, v) for i, (c, v) in enumerate(zip(known, vectors))])
        for query, expected in [("red square moving to the left", 0), ("a bouncing green ball", 1),
                                ("yellow star spinning", 2), ("black bar rising", 3)]:
            hits = search(session, index, query, k=4)
            assert hits[0].caption == known[expected], (query, [h.caption for h in hits])
            assert [h.rank for h in hits] == [1, 2, 3, 4] and hits[0].score > hits[1].score
            assert sorted(h.start_s for h in hits) == [0.0, 5.0, 10.0, 15.0]
        with pytest.raises(AtomError, match="holds no clips for these videos"):
            search(session, index, "anything", k=10, videos=["/videos/other.mp4"])
        with pytest.raises(AtomError, match="k must be at least 1"):
            search(session, index, "anything", k=0)


def test_sql_injection_prompt_is_just_text(session, demo_index, tiny_exports):
    before = rows(demo_index)
    result = atom_deploy("search", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx",
                         "--index", str(demo_index), "-k", "3", "--json", INJECTION, check=True)
    payload = json.loads(result.stdout)
    assert payload["prompt"] == INJECTION and len(payload["results"]) == 3
    assert rows(demo_index) == before  # the table is still there, unchanged
    # The video whose file name carries the same text was stored and is found by name, verbatim.
    assert any(INJECTION in r[0] for r in before)
    with open_index(demo_index, session) as index:
        odd = [r[0] for r in before if INJECTION in r[0]]
        hits = search(session, index, INJECTION, k=5, videos=odd[:1])
        assert {h.video for h in hits} == {odd[0]} and len(hits) == 3
    text = atom_deploy("search", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx",
                       "--index", str(demo_index), "-k", "2", INJECTION, check=True).stdout.splitlines()
    assert len(text) == 2 and text[0].split()[0] == "1" and " s  " in text[0]


def test_top_k_matches_a_full_sort():
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((5000, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = matrix[1234]
    rows_, scores = top_k(matrix, query, 10)
    assert rows_[0] == 1234 and np.array_equal(rows_, np.argsort(-(matrix @ query), kind="stable")[:10])
    assert np.all(np.diff(scores) <= 0)
    ties = np.ones((6, 2), np.float32)
    assert top_k(ties, np.ones(2, np.float32), 4)[0].tolist() == [0, 1, 2, 3]  # ties keep index order
    assert len(top_k(matrix[:3], query, 10)[0]) == 3


def test_cli_searches_the_vector_index_and_exact_on_request(tiny_exports, tmp_path):
    video = tmp_path / "v.mp4"
    demo_video(video, "blue", seconds=8, scenes=2)
    common = ["--artifacts", str(tiny_exports["int8"]), "--backend", "onnx", "--index", str(tmp_path / "idx.sqlite")]
    indexed = json.loads(atom_deploy("index", *common, "--beam", "1", "--window", "4", "--stride", "4", "--no-progress",
                                     "--json", str(video), check=True).stdout)
    assert indexed["vector_index"]["action"] == "rebuilt" and indexed["vector_index"]["vectors"] == 2
    ann = atom_deploy("search", *common, "-k", "2", "--json", "a red square", check=True)
    exact = atom_deploy("search", *common, "-k", "2", "--json", "--exact", "a red square", check=True)
    ann_payload, exact_payload = json.loads(ann.stdout), json.loads(exact.stdout)
    assert (ann_payload["search"], exact_payload["search"]) == ("ann", "exact")
    assert ann_payload["results"] == exact_payload["results"] and ann.stderr == ""
    for f in (tmp_path / "idx.sqlite.vectors").iterdir():
        f.unlink()
    fallback = atom_deploy("search", *common, "-k", "2", "--json", "a red square", check=True)
    assert json.loads(fallback.stdout)["results"] == exact_payload["results"]
    assert fallback.stderr.startswith("note: ") and len(fallback.stderr.splitlines()) == 1
