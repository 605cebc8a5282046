"""Shared audio collections (Task.shared_audio): one extraction serves every task that reads the same recordings.

The pieces are tested here on hand-made arrays; the end-to-end property (the four MTG-Jamendo subsets call the
encoder once per track) is tested on the MTG fixture in tests/test_task_mtg_jamendo.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.cache import SplitFeatures
from benchmark.extract import ExtractionStats
from benchmark.feature_store import SHARED_SPLIT, RowSubset, select_tracks, shared_extraction_plan, split_shared_stats
from benchmark.sweep import feature_statistics
from benchmark.tasks.base import SharedAudio, Track


def _collection() -> SplitFeatures:
    """Four items a, b, c, d with 2, 1, 0 (undecodable) and 3 windows; row r holds the value r everywhere."""
    window_track = np.array([0, 0, 1, 3, 3, 3])
    features = np.arange(6, dtype=np.float16)[:, None, None] * np.ones((1, 2, 3), np.float16)
    return SplitFeatures(features=features, window_track=window_track, track_ids=["a", "b", "c", "d"])


def _track(tid: str, split: str = "train") -> Track:
    return Track(track_id=tid, path=Path(f"/nowhere/{tid}.mp3"), split=split, target=0)


def test_select_tracks_takes_each_tracks_rows_in_the_tasks_order():
    picked = select_tracks(_collection(), [_track("d"), _track("a"), _track("c")])
    assert picked.track_ids == ["d", "a", "c"]
    assert picked.window_track.tolist() == [0, 0, 0, 1, 1]  # c has no rows, it keeps its place
    assert np.asarray(picked.features)[:, 0, 0].tolist() == [3, 4, 5, 0, 1]
    assert picked.features.shape == (5, 2, 3) and picked.features.dtype == np.float16


def test_select_tracks_refuses_a_track_the_collection_does_not_list():
    with pytest.raises(ValueError, match="shared_audio"):
        select_tracks(_collection(), [_track("a"), _track("zz")])


def test_row_subset_reads_like_the_array_it_stands_for():
    base = np.random.default_rng(0).normal(size=(50, 3, 4)).astype(np.float16)
    rows = np.array([7, 3, 3, 40, 12, 0, 49])
    view, dense = RowSubset(base, rows), base[rows]
    assert len(view) == 7 and view.shape == dense.shape
    np.testing.assert_array_equal(view[np.array([1, 4])], dense[[1, 4]])
    np.testing.assert_array_equal(np.asarray(view[2:5], dtype=np.float32), dense[2:5].astype(np.float32))
    assert isinstance(view[2:5], RowSubset)  # slices stay lazy
    mean, std = feature_statistics(view, chunk=3)
    want_mean, want_std = feature_statistics(dense)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-6)
    np.testing.assert_allclose(std, want_std, rtol=1e-6)


def test_the_plan_extracts_every_present_item_at_its_place_in_the_full_list(tmp_path):
    paths = [tmp_path / f"{i}.wav" for i in range(5)]
    for i in (0, 2, 3):
        paths[i].write_bytes(b"x")
    shared = SharedAudio({"dataset": "d"}, tuple(Track(str(i), p, "all", None) for i, p in enumerate(paths)))
    items, positions = shared_extraction_plan(shared)
    assert [t.track_id for t in items[SHARED_SPLIT]] == ["0", "2", "3"]
    assert positions == {SHARED_SPLIT: [0, 2, 3]}
    twice = SharedAudio({"dataset": "d"}, shared.tracks + shared.tracks[:1])
    with pytest.raises(ValueError, match="listed twice"):
        shared_extraction_plan(twice)


def test_outcomes_of_the_shared_extraction_are_reported_under_the_tasks_splits():
    stats = ExtractionStats(forward_calls=9, skipped={SHARED_SPLIT: ["c", "x"]},
                            failures={SHARED_SPLIT: {"c": "bad mp3", "x": "bad too"}},
                            flagged={SHARED_SPLIT: {"padded_short": ["a", "d"], "non_finite": []}})
    by_split = {"train": [_track("a")], "valid": [_track("c", "valid")], "test": [_track("d", "test")]}
    out = split_shared_stats(stats, by_split)
    assert out.forward_calls == 9
    assert out.skipped == {"train": [], "valid": ["c"], "test": []}  # x belongs to another task of the collection
    assert out.failures == {"train": {}, "valid": {"c": "bad mp3"}, "test": {}}
    assert out.flagged["train"] == {"padded_short": ["a"], "non_finite": []}
    assert out.flagged["test"] == {"padded_short": ["d"], "non_finite": []}


def test_the_four_mtg_subsets_run_the_encoder_once_per_track(compose_config):
    """The issue's property: one extraction per encoder serves mtg_top50, _genre, _moodtheme and _instrument."""
    from rich.console import Console

    from benchmark.runner import run
    from tests.conftest import FIXTURES
    from tests.fixtures.mtg_jamendo.make import FIXTURE_SECONDS, FIXTURE_TRACKS, write_fixture

    records = {}
    for i, task in enumerate(("mtg_genre", "mtg_top50", "mtg_moodtheme", "mtg_instrument")):
        config = compose_config(f"task={task}", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                                "trainer.max_epochs=1", "max_missing_fraction=1.0")
        if i == 0:
            write_fixture(config["data_root"], sample_rate=32000)
        records[task] = run(config, console=Console(quiet=True))
    first, *others = records.values()
    # the first run extracted every present track of the collection once, whole (a 0.99 s tail dropped) ...
    assert first["timings"]["encoder_forward_calls"] > 0
    assert first["timings"]["extraction_audio_seconds"] == pytest.approx(sum(FIXTURE_SECONDS.values()) - 0.99,
                                                                         abs=0.01)
    # ... and the other three subsets read it: no encoder call, the same tracks, their own labels
    for record in others:
        assert record["timings"]["encoder_forward_calls"] == 0
        assert record["split_sizes"] == {s: len(ids) for s, ids in FIXTURE_TRACKS.items()}
    assert {r["task"] for r in records.values()} == set(records)
    assert len({r["feature_cache"]["key"] for r in records.values()}) == 1  # one cache entry for all four
