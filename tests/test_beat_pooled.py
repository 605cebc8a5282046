"""The beat F-measure pooled over tracks (MARBLE v1's GTZAN beat metric) next to the mean of per-track F, and
``task.f_aggregation``, which chooses the primary one of the two.

MARBLE sums matched, estimated and reference beats over every track of a split, then takes one F
(P = matches / estimates, R = matches / references, F = 2PR / (P + R)); this suite's ``f_measure`` is the mean of
per-track F. The hand-made tracks below are chosen so the two give different exact fractions.
"""
from __future__ import annotations

import inspect
import json

import mir_eval
import numpy as np
import pytest
from rich.console import Console

from benchmark.errors import ConfigError
from benchmark.frame_level import (
    F_MEASURE_WINDOW, BeatEvaluator, BeatTarget, beat_match_counts, frame_layout, pooled_f_measure,
)
from benchmark.kinds import metric
from benchmark.kinds.beat import BEAT
from benchmark.record import run_checksum
from tests.conftest import REPO_ROOT

FPS = 50.0

# (reference beats, estimated beats) of three tracks with 10, 4 and 2 reference beats.
TRACKS = [
    # every beat found: 10 matched of 10 estimated, 10 references; F = 1
    (np.arange(0.5, 5.01, 0.5), np.arange(0.5, 5.01, 0.5)),
    # 1.02 and 3.0 match; 4.1 is 0.1 s off (outside 70 ms): 2 of 5 estimated, 4 references; F = 4/9
    (np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.02, 2.5, 3.0, 3.5, 4.1])),
    # both beats found among four extra estimates: 2 of 6 estimated, 2 references; F = 1/2
    (np.array([1.0, 2.0]), np.array([1.05, 1.5, 2.06, 2.5, 3.0, 3.5])),
]
POOLED = 28 / 37  # 14 matched, 21 estimated, 16 references: P = 2/3, R = 7/8, F = 2 * 14 / (21 + 16)
MEAN = 35 / 54  # (1 + 4/9 + 1/2) / 3


def _evaluator(references: list[np.ndarray], **kwargs) -> BeatEvaluator:
    """An evaluator over tracks of 10 s (500 frames at 50 frames/s), one window each."""
    index = {"track_ids": [str(i) for i in range(len(references))], "shape": [500 * len(references), 1, 1],
             "windows": [[i, 0, 500] for i in range(len(references))]}
    layout = frame_layout(index, 1000.0, 1000, FPS)
    return BeatEvaluator(layout, [BeatTarget(tuple(r)) for r in references], FPS, **kwargs)


def _marble_f(tracks: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """MARBLE v1's arithmetic, written out: mir_eval.util.match_events per track at 0.07 s, counts summed."""
    matched = sum(len(mir_eval.util.match_events(r, e, 0.07)) for r, e in tracks)
    estimated, reference = sum(len(e) for _, e in tracks), sum(len(r) for r, _ in tracks)
    p = matched / estimated if estimated else 0.0
    r = matched / reference if reference else 0.0
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def test_the_window_is_mir_evals_default_and_marbles():
    default = inspect.signature(mir_eval.beat.f_measure).parameters["f_measure_threshold"].default
    assert F_MEASURE_WINDOW == default == 0.07


def test_pooled_f_sums_matches_over_tracks_and_differs_from_the_mean_of_per_track_f():
    evaluator = _evaluator([r for r, _ in TRACKS])
    got = evaluator.score_estimates([(e, e[:0]) for _, e in TRACKS])
    assert [beat_match_counts(r, e) for r, e in TRACKS] == [(10, 10, 10), (2, 5, 4), (2, 6, 2)]
    assert _marble_f(TRACKS) == pytest.approx(POOLED, abs=1e-12)
    assert got["f_measure_pooled"] == pytest.approx(POOLED, abs=1e-12)  # 0.756757
    assert got["f_measure"] == pytest.approx(MEAN, abs=1e-12)  # 0.648148, unchanged by the new metric
    assert got["f_measure"] == pytest.approx(np.mean([mir_eval.beat.f_measure(r, e) for r, e in TRACKS]))
    assert abs(got["f_measure_pooled"] - got["f_measure"]) > 0.1


def test_empty_estimates_and_empty_references_are_summed_as_marble_does():
    no_estimate = (np.array([1.0, 2.0, 3.0]), np.zeros(0))  # adds 3 references, nothing found
    no_reference = (np.zeros(0), np.array([0.5, 1.5]))  # adds 2 estimates (false positives), nothing to find
    tracks = [*TRACKS, no_estimate, no_reference]
    assert beat_match_counts(*no_estimate) == (0, 0, 3)
    assert beat_match_counts(*no_reference) == (0, 2, 0)
    got = _evaluator([r for r, _ in tracks]).score_estimates([(e, e[:0]) for _, e in tracks])
    # 14 matched, 23 estimated, 19 references: F = 2 * 14 / (23 + 19)
    assert _marble_f(tracks) == pytest.approx(2 / 3, abs=1e-12)
    assert got["f_measure_pooled"] == pytest.approx(2 / 3, abs=1e-12)
    # the mean F leaves the track without reference beats out, and scores the empty estimate 0
    assert got["f_measure"] == pytest.approx((1 + 4 / 9 + 1 / 2 + 0) / 4, abs=1e-12)  # 35/72
    # nothing to divide by: 0, never a ZeroDivisionError or NaN
    assert pooled_f_measure([]) == 0.0
    assert pooled_f_measure([beat_match_counts(*no_estimate)]) == 0.0
    assert pooled_f_measure([beat_match_counts(*no_reference)]) == 0.0
    assert pooled_f_measure([(0, 0, 0), (0, 0, 0)]) == 0.0


def test_pooled_f_uses_the_same_trimming_as_the_mean():
    ref = np.arange(0.5, 9.5, 0.5)
    est = np.concatenate([ref[ref < 5.0] + 0.2, ref[ref >= 5.0]])  # wrong in the first 5 s only
    trimmed = _evaluator([ref], skip_seconds=5.0).score_estimates([(est, est[:0])])
    whole = _evaluator([ref]).score_estimates([(est, est[:0])])
    assert trimmed["f_measure_pooled"] == trimmed["f_measure"] == 1.0
    # one track: pooled and mean agree (9 of 18 estimates match 9 of 18 references)
    assert whole["f_measure_pooled"] == pytest.approx(whole["f_measure"]) == pytest.approx(0.5)


def test_the_kind_declares_the_pooled_f_higher_is_better():
    assert BEAT.find_metric("f_measure_pooled") is not None
    assert metric("f_measure_pooled").higher_is_better
    assert BEAT.primary.name == "f_measure"  # the default of task.f_aggregation


def test_f_aggregation_picks_the_evaluators_primary_and_refuses_other_values():
    refs = [r for r, _ in TRACKS]
    assert _evaluator(refs).primary == "f_measure"
    assert _evaluator(refs, f_aggregation="pooled").primary == "f_measure_pooled"
    with pytest.raises(ConfigError, match=r"task\.f_aggregation='median': must be one of mean, pooled"):
        _evaluator(refs, f_aggregation="median")


def test_an_unknown_f_aggregation_is_refused_before_any_data_is_read(compose_config):
    from benchmark.config_store import validate_run_config

    assert validate_run_config(compose_config("task=synth_beats", "model=mfcc")).task.f_aggregation == "mean"
    assert compose_config("task=gtzan_beat", "model=mfcc")["task"]["f_aggregation"] == "mean"
    config = compose_config("task=synth_beats", "task.f_aggregation=sum", "model=mfcc")
    with pytest.raises(ConfigError, match=r"task\.f_aggregation='sum': must be one of mean, pooled"):
        validate_run_config(config)


TINY = ["task=synth_beats", "model=mfcc", "task.n_train=8", "task.n_valid=4", "task.n_test=4",
        "trainer.max_epochs=2"]


@pytest.mark.slow  # ~5 s end to end; the pooled F itself is tested fast in this file
def test_f_aggregation_pooled_makes_the_pooled_f_primary_end_to_end(compose_config):
    from benchmark.runner import run

    default = run(compose_config(*TINY), console=Console(quiet=True))
    pooled = run(compose_config(*TINY, "task.f_aggregation=pooled"), console=Console(quiet=True))
    assert default["primary_metric"] == "f_measure"
    assert pooled["primary_metric"] == "f_measure_pooled"
    for record in (default, pooled):
        primary = record["primary_metric"]
        assert record["test_score"] == record["selected"]["test"][primary]
        for row in record["layers"]:
            assert {"f_measure", "f_measure_pooled"} <= set(row["valid"]) and 0.0 <= row["test"][primary] <= 1.0
    # another primary is another protocol: its own record, not the default's
    assert pooled["protocol_checksum"] != default["protocol_checksum"]


def test_the_default_leaves_the_protocol_checksum_unchanged(compose_config):
    config = compose_config("task=synth_beats", "model=mfcc")
    assert config["task"]["f_aggregation"] == "mean"
    without = {**config, "task": {k: v for k, v in config["task"].items() if k != "f_aggregation"}}
    assert run_checksum(config) == run_checksum(without)
    pooled = {**config, "task": {**config["task"], "f_aggregation": "pooled"}}
    assert run_checksum(pooled) != run_checksum(config)
    # the committed synth_beats record, made before the key existed, keeps its checksum with the key at its default
    (path,) = (REPO_ROOT / "results" / "runs" / "synth_beats").rglob("*.json")
    record = json.loads(path.read_text())
    grown = {k: v for k, v in record["config"].items() if k != "seed"}
    grown["task"] = {**grown["task"], "f_aggregation": "mean"}
    assert run_checksum(grown) == record["protocol_checksum"]
