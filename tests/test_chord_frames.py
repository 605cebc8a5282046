"""The ``chord_frames`` kind and the ``synth_chord_frames`` task: a second frame-level kind on the generic path.

Why these tests: the issue asks to prove the frame-level path generic by plugging in a second kind without
touching the runner, the probe or the sweep. So: the kind's scores must be mir_eval.chord's own (segments merged
from frames, then compared exactly as ``mir_eval.chord.evaluate`` does), pooled by duration as MIREX does; a full
run through ``benchmark.runner.run`` must train, select on ``majmin`` and beat the chance level; and the
runner, probe and sweep must not know chords exist.
"""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import pytest
import torch
from rich.console import Console

from benchmark.frame_level import FrameLayout
from benchmark.kinds import FrameKind, get_kind
from benchmark.kinds.beat import BEAT
from benchmark.kinds.chords import (
    CHORD_FRAMES, ChordEvaluator, NonFiniteChordScoresError, chord_index, constant_chance, frame_classes,
    frames_to_segments, pooled_scores, track_scores,
)
from benchmark.resources import config_file_values
from benchmark.runner import run
from benchmark.targets import CHORD_VOCABULARY, ChordSegments
from benchmark.tasks.registry import build_task
from benchmark.tasks.synth_chord_frames import SynthChordFrames

REPO = Path(__file__).resolve().parents[1]
FPS = 50.0
METRICS = ("root", "majmin", "mirex")


def _layout(frames_per_track: list[int], fps: float = FPS) -> FrameLayout:
    """Rows of several tracks, frames at j / fps, tracks one after another in row order."""
    row_track = np.concatenate([np.full(n, i) for i, n in enumerate(frames_per_track)])
    row_time = np.concatenate([np.arange(n) / fps for n in frames_per_track])
    bounds = np.concatenate([[0], np.cumsum(frames_per_track)])
    return FrameLayout(row_track, row_time, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)])


def _random_segments(rng: np.random.Generator, seconds: float, labels=CHORD_VOCABULARY) -> ChordSegments:
    cuts = np.round(np.sort(rng.uniform(0.0, seconds, int(rng.integers(1, 6)))), 3)
    bounds = np.unique(np.concatenate([[0.0], cuts, [seconds]]))
    names = [labels[int(rng.integers(len(labels)))] for _ in range(len(bounds) - 1)]
    return ChordSegments(tuple(bounds[:-1]), tuple(bounds[1:]), tuple(names))


# ------------------------------------------------------------------------------------------------ the kind
def test_both_frame_level_kinds_implement_the_frame_kind_interface() -> None:
    assert isinstance(BEAT, FrameKind) and isinstance(CHORD_FRAMES, FrameKind)
    kind = get_kind("chord_frames")
    assert kind is CHORD_FRAMES and kind.level == "frame" and kind.loss.name == "cross_entropy"
    assert kind.primary.name == "majmin" and kind.primary.higher_is_better
    assert {m.name for m in kind.metrics} == set(METRICS) and all(m.higher_is_better for m in kind.metrics)
    assert ChordEvaluator.primary == kind.primary.name
    assert len(CHORD_VOCABULARY) == 25 and CHORD_VOCABULARY[0] == "N"


def test_chord_labels_map_to_classes_by_root_and_triad() -> None:
    assert [chord_index(x) for x in ("N", "C:maj", "C:min", "Db:maj", "C#:maj", "B:min", "E:maj/3")] == \
        [0, 1, 2, 3, 3, 24, 9]
    for label in CHORD_VOCABULARY:
        assert CHORD_VOCABULARY[chord_index(label)] == label
    for bad in ("C:7", "C:dim", "X"):
        with pytest.raises(ValueError, match="outside the chord_frames vocabulary"):
            chord_index(bad)


def test_frame_targets_take_the_label_of_the_segment_each_frame_falls_in() -> None:
    target = ChordSegments((0.0, 0.5, 1.0), (0.5, 1.0, 1.2), ("N", "A:min", "C:maj"))
    times = np.array([0.0, 0.49, 0.5, 0.99, 1.0, 1.19, 1.2, 1.5])
    np.testing.assert_array_equal(frame_classes(times, target), [0, 0, 20, 20, 1, 1, 0, 0])
    layout = _layout([3, 2])
    y = CHORD_FRAMES.frame_targets(layout, [ChordSegments((0.0,), (0.03,), ("D:min",)),
                                            ChordSegments((0.02,), (1.0,), ("G:maj",))], FPS)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [6, 6, 0, 0, 15])  # frames at 0, .02, .04 | 0, .02


def test_frames_merge_into_segments_with_boundaries_between_frames() -> None:
    times = np.arange(8) / 10.0
    intervals, labels = frames_to_segments(times, np.array([1, 1, 1, 0, 0, 2, 2, 2]), 10.0)
    assert labels == ["C:maj", "N", "C:min"]
    np.testing.assert_allclose(intervals, [[0.0, 0.25], [0.25, 0.45], [0.45, 0.75]])
    one, single = frames_to_segments(times[:1], np.array([5]), 10.0)
    assert single == ["D:maj"] and np.allclose(one, [[0.0, 0.05]])


def test_track_scores_equal_mir_eval_chord_evaluate_and_pooling_weights_by_duration() -> None:
    rng = np.random.default_rng(0)
    vocab = CHORD_VOCABULARY + ("C:7", "A:min7", "G:maj/5", "X")  # references may hold chords mirex scores apart
    weighted, totals = {m: 0.0 for m in METRICS}, {m: 0.0 for m in METRICS}
    refs, ests = [], []
    for _ in range(12):
        seconds = float(rng.uniform(2.0, 8.0))
        ref = _random_segments(rng, seconds, vocab)
        est = _random_segments(rng, float(rng.uniform(1.0, 9.0)))  # shorter or longer than the reference
        ref_iv, est_iv = ref.intervals(), est.intervals()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = mir_eval.chord.evaluate(ref_iv, list(ref.labels), est_iv, list(est.labels))
        ours = track_scores(ref_iv, list(ref.labels), est_iv, list(est.labels))
        for m in METRICS:
            assert ours[m][0] == expected[m], m  # exactly mir_eval's number
            score, _, scorable = ours[m]
            weighted[m] += score * scorable
            totals[m] += scorable
        # scorable duration: the reference's duration, less its X chords (which no metric scores)
        x_time = sum(e - s for s, e, label in zip(ref.starts, ref.ends, ref.labels) if label == "X")
        assert ours["majmin"][2] <= ref_iv[-1, 1] - ref_iv[0, 0] - x_time + 1e-9
        assert ours["root"][2] == pytest.approx(ref_iv[-1, 1] - ref_iv[0, 0] - x_time)
        refs.append((ref_iv, list(ref.labels)))
        ests.append((est_iv, list(est.labels)))
    pooled = pooled_scores(refs, ests)
    for m in METRICS:
        assert pooled[m] == pytest.approx(weighted[m] / totals[m], rel=1e-12)
        per_track_mean = np.mean([track_scores(*r, *e)[m][0] for r, e in zip(refs, ests)])
        assert abs(pooled[m] - per_track_mean) > 1e-9  # pooled by duration, not a mean over tracks


def test_evaluator_decodes_argmax_frames_and_scores_them_like_mir_eval() -> None:
    rng = np.random.default_rng(1)
    layout = _layout([150, 90, 200])
    targets = [_random_segments(rng, n / FPS + float(rng.uniform(-0.5, 0.5))) for n in (150, 90, 200)]
    evaluator = ChordEvaluator(layout, targets, FPS)
    rows = len(layout.row_track)
    logits = torch.randn(3, rows, 25, generator=torch.Generator().manual_seed(0))
    perfect = CHORD_FRAMES.frame_targets(layout, targets, FPS)
    logits[2] = torch.nn.functional.one_hot(torch.from_numpy(perfect), 25).float()
    results = evaluator(logits.softmax(-1))
    assert len(results) == 3 and all(set(r) == set(METRICS) for r in results)
    for h in range(3):
        classes = logits[h].argmax(-1).numpy()
        correct, total = dict.fromkeys(METRICS, 0.0), dict.fromkeys(METRICS, 0.0)
        for i, target in enumerate(targets):
            times = layout.row_time[layout.track_rows[i]]
            end = times[-1] + 0.5 / FPS
            ref_iv = target.intervals()
            keep = ref_iv[:, 0] < end
            ref_iv = np.minimum(ref_iv[keep], end)
            ref_labels = [label for label, k in zip(target.labels, keep) if k]
            # the estimate built by hand: one segment per frame, boundaries half-way, mir_eval merges equal labels
            bounds = np.concatenate([[0.0], (times[1:] + times[:-1]) / 2, [end]])
            est_iv = np.stack([bounds[:-1], bounds[1:]], 1)
            est_labels = [CHORD_VOCABULARY[c] for c in classes[layout.track_rows[i]]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = mir_eval.chord.evaluate(ref_iv, ref_labels, est_iv, est_labels)
            durations = np.sum(np.diff(ref_iv, axis=1))
            for m in METRICS:
                correct[m] += expected[m] * durations
                total[m] += durations
        for m in METRICS:
            assert results[h][m] == pytest.approx(correct[m] / total[m], abs=1e-9), (h, m)
    # the frame targets themselves score all but the frame quantisation (a change lands up to half a frame off)
    assert all(0.98 < results[2][m] < 1.0 for m in METRICS)
    assert results[0]["majmin"] < 0.3


def test_evaluator_refuses_non_finite_scores_naming_the_track() -> None:
    layout = _layout([20, 20])
    targets = [ChordSegments((0.0,), (0.4,), ("C:maj",))] * 2
    evaluator = ChordEvaluator(layout, targets, FPS, track_ids=["a", "b"], cache_dir="/cache/x")
    scores = torch.full((1, 40, 25), 1 / 25)
    scores[0, 25, 3] = float("nan")
    with pytest.raises(NonFiniteChordScoresError, match="track b .*/cache/x"):
        evaluator(scores)


def test_chance_is_the_best_constant_chord_on_train_scored_on_the_split() -> None:
    train = [ChordSegments((0.0, 1.0), (1.0, 4.0), ("A:min", "F:maj")),
             ChordSegments((0.0, 2.0), (2.0, 3.0), ("F:maj", "C:maj"))]
    layout = _layout([100])  # 2 s of frames
    test = [ChordSegments((0.0, 0.5), (0.5, 2.0), ("F:maj", "G:maj"))]
    evaluator = ChordEvaluator(layout, test, FPS)
    score, label = constant_chance(train, evaluator)
    assert label == "F:maj"
    assert score == pytest.approx(0.5 / (99 / FPS + 0.5 / FPS))  # the reference is cut at the last frame's end
    score2, text = CHORD_FRAMES.chance(train, evaluator)
    assert score2 == score and "F:maj" in text


# ------------------------------------------------------------------------------------------------- the task
def test_config_builds_the_task_and_its_targets_are_chord_sequences_on_beats() -> None:
    cfg = config_file_values(REPO / "configs" / "task" / "synth_chord_frames.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = build_task(cfg)
    assert isinstance(task, SynthChordFrames) and task.level == "frame" and task.kind is CHORD_FRAMES
    assert task.labels == list(CHORD_VOCABULARY)
    assert tuple(task.params[f"n_{s}"] for s in ("train", "valid", "test")) == (48, 16, 16)
    assert task.params["clip_seconds"] == 6.0
    changes = 0
    for _, _, _, label in task.clip_specs()[:20]:
        target = task._target_from_row(task._label_columns(label))
        bpm, offset = float(label[0]), float(label[1])
        assert target.starts[0] == 0.0 and target.ends[-1] == 6.0
        assert target.starts[1:] == target.ends[:-1]
        assert all(a != b for a, b in zip(target.labels, target.labels[1:]))
        assert all(chord_index(x) >= 0 for x in target.labels) and "N" not in target.labels[1:]
        for t in target.starts[1:]:  # every change is on a beat of the grid
            k = (t - offset) * bpm / 60.0
            assert abs(k - round(k)) * 60.0 / bpm < 2e-4
            changes += 1
    assert changes >= 40


def test_synth_chord_frames_sizes_are_overridable_and_in_the_identity() -> None:
    small = build_task({"kind": "synth_chord_frames", "n_train": 4, "n_valid": 2, "n_test": 2, "clip_seconds": 3})
    assert len(small.clip_specs()) == 8
    assert small.dataset_identity() != build_task({"kind": "synth_chord_frames"}).dataset_identity()
    with pytest.raises(ValueError):
        build_task({"kind": "synth_chord_frames", "tempo_min": 200.0, "tempo_max": 100.0})


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow  # ~15 s; the chord_frames kind, evaluator and frame layout have their own fast tests
def test_synth_chord_frames_runs_end_to_end_and_beats_chance(compose_config) -> None:
    config = compose_config("task=synth_chord_frames", "model=mfcc", "task.n_train=32", "task.n_valid=8",
                            "task.n_test=8", "trainer.max_epochs=6")
    record = run(config, console=Console(quiet=True))
    assert record["task_type"] == "chord_frames" and record["primary_metric"] == "majmin"
    assert record["split_sizes"] == {"train": 32, "valid": 8, "test": 8}
    assert 0.0 <= record["chance_level"] < 0.15
    for row in record["layers"]:
        assert set(row["test"]) == set(METRICS) and all(0.0 <= v <= 1.0 for v in row["test"].values())
        assert row["test"]["root"] >= row["test"]["majmin"] - 1e-12  # a right chord has the right root
    selected = record["selected"]
    assert selected["valid"]["majmin"] > record["chance_level"] + 0.1
    assert selected["test"]["majmin"] > record["chance_level"] + 0.05


def test_the_runner_probe_and_sweep_know_nothing_of_chords() -> None:
    from benchmark import frame_level

    pipeline = ["runner.py", "run_checks.py", "run_tracks.py", "clip_level.py", "probe.py", "sweep.py",
                "probe_data.py", "evaluation.py"]
    paths = [REPO / "benchmark" / name for name in pipeline if (REPO / "benchmark" / name).exists()]
    assert {p.name for p in paths} >= {"runner.py", "probe.py", "sweep.py"}
    for path in paths:
        assert "chord" not in path.read_text().lower(), path.name
    assert "chord" not in inspect.getsource(frame_level.frame_level_data).split('"""')[-1].lower()
