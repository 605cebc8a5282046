"""Frame-level beat validation: parallel DBN decoding decodes exactly what serial decoding does, a sweep selects the
same epochs, stops and layer with it as with one-sequence-at-a-time decoding without the memo, and the
validation-share bench (benchmark/bench_validation.py) returns parts that add up. Nothing here is timed."""
from __future__ import annotations

import mir_eval
import numpy as np
import pytest
import torch

from benchmark.beat_decode import dbn_beat_frames
from benchmark.bench_validation import (
    beat_validation_share, describe_beat_validation, probe_like_activation, synthetic_beats,
)
from benchmark.cache import SplitFeatures
from benchmark.frame_level import BeatEvaluator, frame_layout, split_targets
from benchmark.kinds.losses import BCE
from benchmark.probe import LayerSweepProbe, make_heads
from benchmark.sweep import HeadResult, summarise, train_sweep


def _activations(fps: float, count: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Probe-like beat activations of ``count`` tracks of 8-14 s (70-180 BPM; misses, spurious peaks, a noise
    floor) and their reference beats."""
    rng = np.random.default_rng(seed)
    acts, refs = [], []
    for k in range(count):
        seconds = float(rng.uniform(8.0, 14.0))
        refs.append(np.asarray(synthetic_beats(1, seconds, seed + k)[0].beats))
        acts.append(probe_like_activation(refs[-1], int(round(seconds * fps)), fps, rng))
    return acts, refs


@pytest.mark.parametrize("fps", [50.0, 75.0])
def test_decoding_many_sequences_at_once_equals_decoding_each_alone(fps):
    acts, refs = _activations(fps, 12, seed=int(fps))
    acts.insert(6, acts[0][:5])  # a sequence shorter than any beat period, between long ones
    together = dbn_beat_frames(acts, fps)
    alone = [dbn_beat_frames([a], fps)[0] for a in acts]
    assert len(together) == len(acts)
    for k, (a, b) in enumerate(zip(together, alone)):
        np.testing.assert_array_equal(a, b, err_msg=f"sequence {k}")
    del together[6]
    # the fixture is realistic enough to decode: the beats found are mostly the annotated ones
    assert np.mean([mir_eval.beat.f_measure(r, b / fps) for r, b in zip(refs, together)]) > 0.8


class _SerialEvaluator(BeatEvaluator):
    """The evaluator as it would be without batching or memo: every head decoded every epoch, one sequence per
    decoder call."""

    def decode(self, activations: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for a in activations:
            out += BeatEvaluator.decode(self, [a])
        return out

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        self._memo = {}
        return super().__call__(row_scores)


FPS, SECONDS = 50.0, 6.0


def _sweep_fixture(evaluator_class: type[BeatEvaluator]) -> tuple[list[HeadResult], LayerSweepProbe]:
    """A three-state, 8-head sweep on six training tracks: state 1 carries the beat targets, state 2 a noisier
    copy, state 0 nothing; patience 1, so heads stop at different epochs and the stopped ones reuse their
    memoised scores while the others still train."""
    rng = np.random.default_rng(0)
    frames = int(SECONDS * FPS)
    splits, targets, evaluators = {}, {}, {}
    for split, n, seed in (("train", 6, 10), ("valid", 3, 20), ("test", 2, 30)):
        beats = synthetic_beats(n, SECONDS, seed)
        index = {"windows": [[i, 0, frames] for i in range(n)], "track_ids": [str(i) for i in range(n)],
                 "shape": [n * frames]}
        layout = frame_layout(index, SECONDS, 1000, FPS)
        y = split_targets(layout, beats, FPS)
        x = rng.standard_normal((n * frames, 3, 8)).astype(np.float32)
        x[:, 1, :2] += 3.0 * y
        x[:, 2, :2] += 1.0 * y
        splits[split] = SplitFeatures(x.astype(np.float16), layout.row_track, [str(i) for i in range(n)])
        targets[split] = y
        if split != "train":
            evaluators[split] = evaluator_class(layout, beats, FPS)
    heads = make_heads([0, 1, 2], True, [1e-2, 5e-2])
    trainer = {"max_epochs": 6, "patience": 1, "lr_decay_patience": 0, "batch_size": 600, "accelerator": "cpu"}
    results, model = train_sweep(splits, targets["train"], evaluators, BCE, 2, heads, {"hidden": 16}, trainer,
                                 seed=0)
    return results, model


def test_a_sweep_selects_the_same_with_parallel_memoised_decoding_as_with_serial_decoding():
    parallel, model_p = _sweep_fixture(BeatEvaluator)
    serial, model_s = _sweep_fixture(_SerialEvaluator)
    assert model_p.history == model_s.history  # every head's decoded F, every epoch
    np.testing.assert_array_equal(model_p.best_epoch, model_s.best_epoch)
    np.testing.assert_array_equal(model_p.stopped, model_s.stopped)
    assert [r.valid for r in parallel] == [r.valid for r in serial]
    assert [r.test for r in parallel] == [r.test for r in serial]
    rows_p, chosen_p = summarise(parallel, "f_measure")
    rows_s, chosen_s = summarise(serial, "f_measure")
    assert (chosen_p.layer, chosen_p.lr, chosen_p.best_epoch) == (chosen_s.layer, chosen_s.lr, chosen_s.best_epoch)
    assert [(r.layer, r.lr) for r in rows_p] == [(r.layer, r.lr) for r in rows_s]
    # the fixture exercises what it claims: heads peaked (and so stopped) at different epochs, some of them while
    # others still trained, and the memo handed the stopped ones their last scores
    assert len(set(model_p.best_epoch.tolist())) > 2 and model_p.best_epoch.min() + 2 < len(model_p.history)


def test_the_validation_share_bench_returns_parts_that_add_up():
    result = beat_validation_share(frame_rate=50.0, num_states=2, dim=8, train_tracks=3, valid_tracks=4,
                                   track_seconds=4.0, epochs=2, train_steps=2, measure_valid_tracks=2)
    parts = ("valid_forward_s", "decode_s", "scoring_s", "other_s")
    assert result["valid_s"] == pytest.approx(sum(result[p] for p in parts))
    assert result["epoch_s"] == pytest.approx(result["train_s"] + result["valid_s"])
    assert 0.0 < result["valid_share"] < 1.0
    assert result["valid_share"] == pytest.approx(result["valid_s"] / result["epoch_s"])
    setup, measured = result["setup"], result["measured"]
    assert setup["heads"] == 3 and setup["frames_per_track"] == 200 and setup["decoded_sequences"] == 12
    assert measured["valid_tracks"] == 2 and measured["decoded_sequences"] == 3 * 2
    assert measured["memo_decoded_sequences"] == 0  # unchanged outputs: every head reuses its scores
    # the scaling is what the dict says: decode by tracks (4 / 2), train by rows (3 tracks / 2 steps of 64)
    assert result["decode_s"] == pytest.approx(measured["decode_s"] * 2)
    assert result["train_s"] == pytest.approx(measured["train_s"] * setup["train_steps_per_epoch"] / 2)
    lines = describe_beat_validation(result)
    assert "validation share" in lines[1] and "scaled" in lines[2]
