"""The `cli` and `export` markers (tests/markers.py) on tests whose cost is known."""

from __future__ import annotations

import test_decode_cache
import test_export_errors
import test_export_rows
import test_quant_8da4w
import test_runner
from markers import markers_of


def test_a_process_started_through_a_helper_or_the_kit_is_cli():
    # atom_deploy(...) is conftest's helper around subprocess.run
    assert markers_of(test_export_errors, "test_unknown_backend", {"tmp_path"}) == {"cli", "export"}
    # the encoder worker process, named only in the parametrize values
    assert "cli" in markers_of(test_runner, "test_caption_stream_overlaps_without_changing_captions", set())


def test_lowering_in_process_or_through_a_fixture_is_export():
    assert markers_of(test_quant_8da4w, "test_onnx_8da4w_linear_equals_executorch_8da4w", {"tmp_path"}) == {"export"}
    assert "export" in markers_of(test_quant_8da4w, "test_export_records_the_recipe_and_group_size", {"tiny_8da4w"})
    assert "export" in markers_of(test_runner, "test_int8_executorch_runner_matches_eager_int8_tokens", {"smollm2"})
    # a kit backend's export called directly
    assert markers_of(test_export_rows, "test_a_decoder_with_few_cache_rows_exports_and_runs", {"tmp_path"}) == {"export"}


def test_pure_logic_gets_neither():
    assert markers_of(test_decode_cache, "test_top_k_stable_is_a_stable_full_sort_cut_to_k", set()) == set()
    assert markers_of(test_runner, "test_int8_executorch_runner_matches_eager_int8_tokens", {"tiny_exports"}) == set()
