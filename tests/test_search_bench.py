"""bench --search at a tiny size: the JSON, the chart and the CLI (the real sizes are docs/search_scale.md)."""

from __future__ import annotations

import json

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
