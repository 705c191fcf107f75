"""bench --search at a tiny size: the JSON, the chart and the CLI (the real sizes are docs/search_scale.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import atom_deploy


@pytest.mark.slow
def test_search_bench_writes_json_and_chart_for_each_size_and_engine(tmp_path):
    result = atom_deploy("bench", "--search", "--sizes", "2000,3000", "--queries", "10", "--scenes", "300",
                         "--out", str(tmp_path), check=True)
    summary = json.loads((tmp_path / "search_bench.json").read_text())
    assert [(r["size"], r["engine"]) for r in summary["results"]] == [(2000, "ann"), (2000, "exact"), (3000, "ann"), (3000, "exact")]
    for r in summary["results"]:
        assert 0 < r["warm_p50_ms"] <= r["warm_p99_ms"] and r["cold_p50_ms"] > 0 and r["query_peak_rss_mb"] > 0
        assert r["build_rows_s"] > 0 and r["build_vectors_s"] > 0 and r["disk_rows_mb"] > r["disk_vectors_mb"] > 0
        assert r["recall_at_10"] == 1.0 if r["engine"] == "exact" else r["recall_at_10"] >= 0.9
    assert summary["machine"]["cores"] >= 1 and summary["config"]["bases"] > 200
    assert (tmp_path / "search_bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2,000 | ann" in result.stdout


def test_search_bench_refuses_an_unknown_engine_in_one_line(tmp_path):
    result = atom_deploy("bench", "--search", "--engine", "ann,hnsw", "--sizes", "2000", "--out", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["atom-deploy bench: error: unknown search engine 'hnsw'; choose from ann, exact"]


@pytest.mark.parametrize("chunk", [3, 7, 64, 500])
def test_exact_top_k_over_chunks_equals_one_pass_over_every_vector(chunk):
    from atom_deploy.bench.search_scale import exact_top_k

    rng = np.random.default_rng(1)
    library = rng.standard_normal((500, 16), dtype=np.float32)
    queries = rng.standard_normal((20, 16), dtype=np.float32)
    truth = np.argsort(-(queries @ library.T), axis=1)[:, :10] + 1  # ids are 1.. in library order
    found = exact_top_k(queries, (library[s:s + chunk] for s in range(0, len(library), chunk)), 10)
    assert found.tolist() == truth.tolist()


def test_search_bench_refuses_exact_at_a_size_no_memory_holds(tmp_path):
    # refused at once: without the check it would start building, and the timeout fails the test
    result = atom_deploy("bench", "--search", "--sizes", "1000000000", "--out", str(tmp_path), timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert "--engine exact reads all 1,000,000,000 rows at once" in line and "use --engine ann" in line
    assert not list(tmp_path.iterdir())  # refused before anything was built
