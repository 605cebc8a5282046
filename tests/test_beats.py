"""Beat tracking, the suite's frame-level path: decoding, targets, metrics, annotations, and end-to-end runs.

Why these tests: the decoders must turn activations into the right beats (a probe's score is only as good as
its decoding); the widened targets and the frame layout decide what the probes learn; every reported number
must be mir_eval's own (with the empty cases handled on purpose); the committed GTZAN-Rhythm table must be the
published files exactly; and a frame-level run must go through the runner, cache only the requested layers and
read them back without running the encoder.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import mir_eval
import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console

from benchmark.beat_decode import (
    DBNConfig, NonFiniteActivationError, dbn_beat_frames, dbn_beats, downbeats_from_beats, peak_beat_frames,
    peak_beats, period_bounds,
)
from benchmark.cache import FeatureCache
from benchmark.encoders.base import Encoder
from benchmark.errors import UserError
from benchmark.frame_level import (
    BeatEvaluator, BeatTarget, DecoderConfig, FrameLayout, beat_scores, frame_layout, frame_targets,
    metronome_chance, split_targets,
)
from benchmark.runner import run
from benchmark.tasks import gtzan_beat
from benchmark.tasks.gtzan import read_split_lists, track_id_of
from benchmark.tasks.registry import build_task
from tests.conftest import GTZAN_RHYTHM

FPS = 50.0
REFDATA = GTZAN_RHYTHM


def _activation(beats: np.ndarray, seconds: float, fps: float = FPS, noise: float = 0.0, seed: int = 0,
                miss: float = 0.0, spurious: float = 0.0) -> np.ndarray:
    """A probe-like beat activation: the training target's shape (peak on the nearest frame, half on its
    neighbours); when noisy, peaks of random height 0.5-0.95, a noise floor with occasional bumps
    (``noise * U^3``), a fraction ``miss`` of beats missed and ``spurious`` extra peaks per beat."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    a = np.zeros(n)
    for b in beats:
        if rng.random() < miss:
            continue
        i = int(round(b * fps))
        h = rng.uniform(0.5, 0.95) if noise else 1.0
        for d, v in ((0, h), (-1, h / 2), (1, h / 2)):
            if 0 <= i + d < n:
                a[i + d] = max(a[i + d], v)
    if noise:
        a = np.clip(a + noise * rng.random(n) ** 3, 0.0, 1.0)
        for i in rng.integers(0, n, int(spurious * len(beats))):
            a[i] = max(a[i], rng.uniform(0.3, 0.7))
    return a


# ----------------------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("bpm", [58.0, 83.0, 111.0, 128.0, 157.0, 196.0])
@pytest.mark.parametrize("fps", [50.0, 75.0])
def test_dbn_recovers_beats_at_several_tempi(bpm, fps):
    beats = np.arange(0.37, 20.0, 60.0 / bpm)
    clean = _activation(beats, 20.0, fps)
    assert mir_eval.beat.f_measure(beats, dbn_beats(clean, fps)) > 0.95
    noisy = _activation(beats, 20.0, fps, noise=0.5, seed=int(bpm), miss=0.15, spurious=0.15)
    est = dbn_beats(noisy, fps)
    assert mir_eval.beat.f_measure(beats, est) > 0.9
    # missed and spurious peaks defeat plain peak picking; the tempo model is what holds the beats
    assert mir_eval.beat.f_measure(beats, peak_beats(noisy, fps)) < mir_eval.beat.f_measure(beats, est)


def test_dbn_follows_a_tempo_change():
    first = np.arange(0.3, 10.0, 60.0 / 100.0)
    for tempo in (120.0, 85.0):
        beats = np.concatenate([first, np.arange(first[-1] + 60.0 / tempo, 20.0, 60.0 / tempo)])
        act = _activation(beats, 20.0, noise=0.4, seed=3, miss=0.1, spurious=0.1)
        est = dbn_beats(act, FPS)
        assert mir_eval.beat.f_measure(beats, est) > 0.9
        late = est[est > 12.0]  # after the change the decoded tempo is the new one
        assert 60.0 / np.median(np.diff(late)) == pytest.approx(tempo, rel=0.03)


def test_dbn_respects_its_tempo_range_and_handles_degenerate_input():
    beats = np.arange(0.2, 12.0, 60.0 / 240.0)  # 240 BPM is outside 55-215: the model can only go half tempo
    est = dbn_beats(_activation(beats, 12.0), FPS)
    assert 60.0 / np.median(np.diff(est)) < 215.0
    assert len(dbn_beats(np.zeros(0), FPS)) == 0
    assert len(dbn_beats(np.zeros(3), FPS)) <= 1
    with pytest.raises(ValueError):
        DBNConfig(min_bpm=200, max_bpm=100).periods(FPS)


def test_peak_picking_keeps_one_peak_per_beat_period():
    act = np.zeros(200)
    act[[10, 12, 60, 61, 140]] = [0.9, 0.8, 0.5, 0.7, 0.2]
    frames = np.round(peak_beats(act, FPS, threshold=0.3) * FPS).astype(int)
    assert frames.tolist() == [10, 61]  # 12 is too close to 10; 140 is below the threshold
    # the gap is the 215 BPM period rounded up: 14 frames at 50/s (13 frames would be 230.8 BPM)
    act = np.zeros(200)
    act[[10, 23, 40, 54]] = [0.9, 0.8, 0.7, 0.6]
    assert peak_beat_frames(act, FPS).tolist() == [10, 40, 54]  # 23 is 13 frames after 10; 54 is 14 after 40


@pytest.mark.parametrize("meter,phase", [(4, 1), (3, 2), (2, 0)])
def test_downbeats_are_fitted_among_the_beats(meter, phase):
    beat_frames = np.arange(10, 1000, 25)
    act = np.full(1000, 0.1)
    act[beat_frames[phase::meter]] = 0.8
    act[beat_frames[(phase + 2) % meter::meter] if meter == 4 else []] = 0.4  # a secondary accent on beat 3
    down = downbeats_from_beats(beat_frames, act)
    assert down.tolist() == beat_frames[phase::meter].tolist()
    assert len(downbeats_from_beats(np.array([5]), act)) == 0
    assert len(downbeats_from_beats(np.zeros(0, dtype=int), act)) == 0


# --------------------------------------------------------------------- decoder edge cases (issue 11, item 6)
def test_period_bounds_keep_the_decoded_tempo_inside_the_range():
    """The shortest period is rounded up and the longest down: 14 and 21 frames for 215 BPM at 50 and 75
    frames/s (13 and 20 were 230.8 and 225 BPM), 54 and 81 frames for 55 BPM (55 and 82 were 54.5 and 54.9)."""
    assert period_bounds(50.0, 55.0, 215.0) == (14, 54)
    assert period_bounds(75.0, 55.0, 215.0) == (21, 81)
    np.testing.assert_array_equal(DBNConfig().periods(50.0), np.arange(14, 55))
    np.testing.assert_array_equal(DBNConfig().periods(75.0), np.arange(21, 82))
    for fps in (25.0, 43.066, 50.0, 62.5, 75.0, 86.1328125, 100.0):  # tight: one frame further is out of range
        lo, hi = period_bounds(fps, 55.0, 215.0)
        assert 60.0 * fps / lo <= 215.0 < 60.0 * fps / (lo - 1), fps
        assert 60.0 * fps / hi >= 55.0 > 60.0 * fps / (hi + 1), fps
    assert period_bounds(75.0, 55.0, 225.0)[0] == 20  # a whole-frame bound is kept: 20 frames is 225 BPM
    assert period_bounds(32.2, 55.0, 138.0)[0] == 14  # 60 * 32.2 / 138 is 14.000000000000002 in floating point
    with pytest.raises(ValueError, match="no whole-frame beat period"):  # 24.59-24.79 frames: no whole period
        period_bounds(50.0, 121.0, 122.0)
    with pytest.raises(ValueError, match="no whole-frame beat period"):  # found when the evaluator is built
        BeatEvaluator(_layout([100]), [BeatTarget((0.5,))], FPS, DecoderConfig(dbn=DBNConfig(121.0, 122.0)))


@pytest.mark.parametrize("fps", [50.0, 75.0])
@pytest.mark.parametrize("bpm", [225.0, 230.0, 235.0])
def test_tempi_above_max_bpm_decode_at_half_tempo_on_the_beats(bpm, fps):
    """Above max_bpm (215) the only paths left are slower: the DBN goes half tempo, every decoded beat on a true
    one; before the periods were rounded up, 225 and 230 BPM at 50/s and 225 BPM at 75/s decoded at full speed.
    Peak picking keeps its peaks at least the 215 BPM period apart."""
    beats = np.arange(0.37, 20.0, 60.0 / bpm)
    act = _activation(beats, 20.0, fps)
    est = dbn_beats(act, fps)
    tempo = 60.0 / np.median(np.diff(est))
    assert tempo <= 215.0
    assert tempo == pytest.approx(bpm / 2, rel=0.025)
    assert len(mir_eval.util.match_events(beats, est, 0.07)) == len(est)  # every decoded beat is a true beat
    shortest = {50.0: 14, 75.0: 21}[fps]
    assert np.diff(peak_beat_frames(act, fps)).min() >= shortest
    assert 60.0 / np.median(np.diff(peak_beats(act, fps))) <= 215.0


@pytest.mark.parametrize("fps", [50.0, 75.0])
@pytest.mark.parametrize("bpm", [205.0, 210.0, 215.0])
def test_tempi_up_to_max_bpm_still_decode_at_their_own_tempo(bpm, fps):
    """Rounding the shortest period up must not cost the fast end of the range: 205 and 210 BPM are followed
    (the mean interval is the true one; the path alternates the two nearest whole periods). Exactly 215 BPM is
    13.95 / 20.93 frames, 0.3 % faster than the shortest period (14 / 21 frames, 214.3 BPM): the path keeps that
    tempo and skips a beat now and then to catch up, so its F-measure is lower, but it does not halve."""
    beats = np.arange(0.37, 20.0, 60.0 / bpm)
    est = dbn_beats(_activation(beats, 20.0, fps), fps)
    assert 60.0 / np.median(np.diff(est)) == pytest.approx(bpm, rel=0.01 if bpm == 215.0 else 0.025)
    if bpm < 215.0:
        assert 60.0 * (len(est) - 1) / (est[-1] - est[0]) == pytest.approx(bpm, rel=0.005)
        assert mir_eval.beat.f_measure(beats, est) > 0.98
    else:
        assert mir_eval.beat.f_measure(beats, est) > 0.8


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_decoders_refuse_non_finite_activations(bad):
    """NaN used to decode as a steady beat at the fastest tempo (every Viterbi comparison is false on NaN)."""
    act = _activation(np.arange(0.4, 8.0, 0.5), 8.0)
    act[[100, 101, 300]] = bad
    with pytest.raises(NonFiniteActivationError, match="track blues.00042 has 3 NaN or infinite frame"):
        dbn_beats(act, FPS, name="blues.00042")
    with pytest.raises(NonFiniteActivationError, match="track blues.00042 has 3 NaN or infinite frame"):
        peak_beats(act, FPS, name="blues.00042")
    with pytest.raises(NonFiniteActivationError, match="track b has 3 NaN") as info:
        dbn_beat_frames([np.zeros(50), act], FPS, names=["a", "b"])
    assert (info.value.track, info.value.bad, info.value.total) == ("b", 3, 400)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("decoder", ["dbn", "peaks"])
def test_evaluator_refuses_non_finite_outputs_naming_the_track(bad, decoder):
    """The evaluator a run calls every epoch knows the track ids the decoders do not: the error names the
    track, counts its non-finite frames (a beat or downbeat output), and says how to tell and fix the causes."""
    beats = [np.arange(0.4, 8.0, 0.5), np.arange(0.1, 6.0, 0.45)]
    targets = [BeatTarget(tuple(b), tuple(b[::4])) for b in beats]
    evaluator = BeatEvaluator(_layout([400, 300]), targets, FPS, DecoderConfig(decoder=decoder),
                              track_ids=["blues.00000", "jazz.00003"], cache_dir="/cache/mert/abc123")
    rows = np.zeros((700, 2), np.float32)
    rows[:400, 0] = _activation(beats[0], 8.0)
    rows[400:, 0] = _activation(beats[1], 6.0)
    scores = np.stack([rows, rows])
    assert evaluator(torch.from_numpy(scores))[1]["f_measure"] == 1.0  # finite: decoded and scored
    scores[1, 450:457, 0] = bad  # head 1, track jazz.00003: 7 beat frames
    scores[1, 460, 1] = bad  # and 1 downbeat frame
    with pytest.raises(NonFiniteActivationError) as info:
        evaluator(torch.from_numpy(scores))
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, UserError)
    assert (err.track, err.bad, err.total) == ("jazz.00003", 8, 300)
    message = str(err)
    assert message.startswith("the beat activation of track jazz.00003 has 8 NaN or infinite frame(s) out of 300 "
                              "(probe head 1; 1 of 2 heads and 1 of 2 tracks have non-finite frames)")
    assert "lower probe.lr" in message and "delete the feature cache entry /cache/mert/abc123" in message
    assert "\n" not in message
    anonymous = BeatEvaluator(_layout([400, 300]), targets, FPS)  # without ids: named by position
    with pytest.raises(NonFiniteActivationError, match="track #1 of the split has 8 NaN"):
        anonymous(torch.from_numpy(scores))
    with pytest.raises(ValueError, match="1 track ids for 2 targets"):
        BeatEvaluator(_layout([400, 300]), targets, FPS, track_ids=["blues.00000"])


# ---------------------------------------------------------------------------------------- targets, layout
def test_targets_mark_the_nearest_frame_and_widen_its_neighbours():
    times = np.arange(100) / FPS
    target = BeatTarget(beats=(0.0, 0.514, 1.029, 5.0), downbeats=(0.514,))
    y = frame_targets(times, target, FPS)
    assert y.shape == (100, 2)
    assert np.nonzero(y[:, 0] == 1.0)[0].tolist() == [0, 26, 51]  # 0.514 -> frame 26 (0.52), not 25 (0.50)
    assert np.nonzero(y[:, 0] == 0.5)[0].tolist() == [1, 25, 27, 50, 52]  # 5.0 s is past the last frame
    assert np.nonzero(y[:, 1])[0].tolist() == [25, 26, 27] and y[26, 1] == 1.0
    close = frame_targets(times, BeatTarget(beats=(0.2, 0.24)), FPS)  # a neighbour of one beat is another's peak
    assert close[10, 0] == close[12, 0] == 1.0 and close[11, 0] == 0.5


def _index(records: list[list[int]], num_tracks: int) -> dict:
    return {"windows": records, "track_ids": [f"t{i}" for i in range(num_tracks)],
            "shape": [sum(r[2] for r in records), 1, 1]}


def test_frame_layout_places_rows_of_out_of_order_windows_in_time():
    # rows written as batches group windows by length: track 0's tail comes after track 1's first window
    layout = frame_layout(_index([[0, 0, 3], [1, 0, 3], [0, 1, 2], [1, 1, 1]], 2), 0.06, 1000, 50.0)
    assert layout.row_track.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 1]
    np.testing.assert_allclose(layout.track_times(0), [0.0, 0.02, 0.04, 0.06, 0.08])
    assert layout.track_rows[0].tolist() == [0, 1, 2, 6, 7]
    assert layout.track_rows[1].tolist() == [3, 4, 5, 8]
    # targets land on the rows of the frames they belong to, wherever those rows were written
    y = split_targets(layout, [BeatTarget(beats=(0.06,)), BeatTarget(beats=(0.02,), downbeats=(0.02,))], 50.0)
    assert y[:, 0].tolist() == [0, 0, 0.5, 0.5, 1, 0.5, 1, 0.5, 0] and y[:, 1].tolist() == [0, 0, 0, 0.5, 1, 0.5, 0, 0, 0]
    with pytest.raises(ValueError, match="every row"):
        frame_layout({**_index([[0, 0, 3]], 1), "shape": [4, 1, 1]}, 0.06, 1000, 50.0)


def _layout(lengths: list[int]) -> FrameLayout:
    records = [[i, 0, n] for i, n in enumerate(lengths)]
    return frame_layout(_index(records, len(lengths)), 1000.0, 1000, FPS)


# ------------------------------------------------------------------------------------------------ metrics
def test_metrics_equal_mir_eval_and_handle_empty_tracks():
    rng = np.random.default_rng(0)
    refs = [np.arange(0.5, 9.5, 0.5), np.arange(0.3, 9.0, 0.62), np.zeros(0), np.arange(1.0, 9.0, 0.4)]
    downs = [refs[0][::4], refs[1][::3], np.zeros(0), np.zeros(0)]  # track 3: beats without bar positions
    targets = [BeatTarget(tuple(b), tuple(d)) for b, d in zip(refs, downs)]
    evaluator = BeatEvaluator(_layout([500] * 4), targets, FPS)
    estimates = [
        (refs[0] + rng.normal(0, 0.03, len(refs[0])), refs[0][1::4]),
        (np.zeros(0), np.zeros(0)),  # nothing detected: 0 on every metric
        (np.arange(0.2, 9.0, 0.5), np.zeros(0)),  # a track with no annotated beat: not scored at all
        (refs[3][::2] + 0.01, refs[3][::8]),
    ]
    got = evaluator.score_estimates(estimates)
    scored = [0, 1, 3]
    want = {"f_measure": [], "cmlt": [], "amlt": [], "p_score": []}
    for i in scored:
        est = np.sort(np.asarray(estimates[i][0]))
        if len(est):
            _, cmlt, _, amlt = mir_eval.beat.continuity(refs[i], est)
            vals = [mir_eval.beat.f_measure(refs[i], est), cmlt, amlt, mir_eval.beat.p_score(refs[i], est)]
        else:
            with pytest.warns(UserWarning):
                vals = [mir_eval.beat.f_measure(refs[i], est), *mir_eval.beat.continuity(refs[i], est)[1::2],
                        mir_eval.beat.p_score(refs[i], est)]
            assert vals == [0.0, 0.0, 0.0, 0.0]
        for name, v in zip(want, vals):
            want[name].append(v)
    for name, values in want.items():
        assert got[name] == pytest.approx(np.mean(values), abs=1e-12), name
    # downbeats: only tracks with annotated downbeats (0 and 1) count; track 1 detected none
    assert got["downbeat_f_measure"] == pytest.approx(
        np.mean([mir_eval.beat.f_measure(downs[0], estimates[0][1]), 0.0]), abs=1e-12)
    assert got["downbeat_f_measure"] < 0.5
    assert beat_scores(refs[0], refs[0]) == {"f_measure": 1.0, "cmlt": 1.0, "amlt": 1.0, "p_score": 1.0}
    with pytest.raises(ValueError, match="nothing to score"):
        BeatEvaluator(_layout([100]), [BeatTarget(())], FPS)


def test_trimming_follows_mir_eval_trim_beats():
    ref = np.arange(0.5, 9.5, 0.5)
    est = np.concatenate([ref[ref < 5.0] + 0.2, ref[ref >= 5.0]])  # wrong in the first 5 s only
    trimmed = BeatEvaluator(_layout([500]), [BeatTarget(tuple(ref))], FPS, skip_seconds=5.0)
    whole = BeatEvaluator(_layout([500]), [BeatTarget(tuple(ref))], FPS)
    assert trimmed.score_estimates([(est, est[:0])])["f_measure"] == pytest.approx(
        mir_eval.beat.evaluate(ref, est)["F-measure"])
    assert trimmed.score_estimates([(est, est[:0])])["f_measure"] == 1.0
    assert whole.score_estimates([(est, est[:0])])["f_measure"] < 0.7


def test_evaluator_decodes_rows_per_track_and_reuses_unchanged_heads():
    beats = [np.arange(0.4, 8.0, 0.5), np.arange(0.1, 6.0, 0.45)]
    layout = _layout([400, 300])
    targets = [BeatTarget(tuple(b), tuple(b[::4])) for b in beats]
    evaluator = BeatEvaluator(layout, targets, FPS)
    rows = np.zeros((700, 2), np.float32)
    rows[:400, 0] = _activation(beats[0], 8.0)
    rows[400:, 0] = _activation(beats[1], 6.0)
    rows[:400, 1] = _activation(beats[0][::4], 8.0)
    rows[400:, 1] = _activation(beats[1][::4], 6.0)
    scores = torch.from_numpy(np.stack([rows, np.zeros_like(rows)]))
    first = evaluator(scores)
    assert first[0]["f_measure"] == 1.0 and first[0]["downbeat_f_measure"] == 1.0
    assert first[1]["f_measure"] < 0.5
    peaks = BeatEvaluator(layout, targets, FPS, DecoderConfig(decoder="peaks"))(scores)
    assert peaks[0]["f_measure"] == 1.0
    calls = []
    evaluator.decode = lambda acts: calls.append(len(acts)) or BeatEvaluator.decode(evaluator, acts)
    changed = scores.clone()
    changed[1] = 0.9 * changed[0]
    again = evaluator(changed)
    assert calls == [2]  # only head 1 (two tracks) is decoded: head 0 did not change
    assert again[0] == first[0] and again[1]["f_measure"] == 1.0
    assert evaluator(changed) == again and calls == [2, 0]
    chance, tempo = metronome_chance(targets, evaluator)
    assert 110 < tempo < 135 and 0.0 <= chance < 0.8


def test_decoder_config_is_read_from_the_task_config():
    cfg = DecoderConfig.from_task_config({"decoder": "peaks", "min_bpm": 60, "max_bpm": 200, "meters": [3, 4]})
    assert cfg.decoder == "peaks" and cfg.dbn.min_bpm == 60.0 and cfg.meters == (3, 4)
    with pytest.raises(ValueError, match="decoder"):
        DecoderConfig.from_task_config({"decoder": "hmm"})


# -------------------------------------------------------------------------------------- GTZAN-Rhythm files
def test_gtzan_rhythm_files_parse_to_the_published_counts():
    annotations = gtzan_beat.read_annotation_folder(REFDATA)  # the refdata checkout: beats/ inside
    assert len(annotations) == 999 and "reggae.00086" not in annotations
    counts = {s: sum(len(annotations[track_id_of(e)].beats) for e in entries)
              for s, entries in read_split_lists().items()}
    assert counts == {"train": 26540, "valid": 12019, "test": 17059}
    positionless = sorted(t for t, a in annotations.items() if not a.downbeats)
    assert positionless == [f"jazz.000{n}" for n in ("03", "09", "10", "14", "18", "20")]
    blues = annotations["blues.00000"]
    assert blues.beats[:3] == (0.217, 0.695, 1.173) and blues.downbeats[:3] == (1.173, 3.108, 5.022)
    times, positions = gtzan_beat.parse_beats_file((REFDATA / "beats" / "gtzan_jazz_00003.beats").read_text())
    assert positions is None and times[:2].tolist() == [0.29, 1.08]


def test_committed_table_rebuilds_the_published_files(tmp_path):
    committed = gtzan_beat.committed_annotations()
    assert committed == gtzan_beat.read_annotation_folder(REFDATA / "beats")
    assert gtzan_beat.write_annotation_csv(REFDATA, tmp_path / "beats.csv") == 999
    assert (tmp_path / "beats.csv").read_bytes() == gtzan_beat.ANNOTATION_CSV.read_bytes()
    manifest = {r["local_path"]: r["sha256"] for r in csv.DictReader(
        open(REFDATA / "MANIFEST.tsv", newline=""), delimiter="\t")}
    with open(gtzan_beat.ANNOTATION_CSV, newline="") as fh:
        for row in csv.DictReader(fh):
            assert manifest[f"beats/{gtzan_beat.file_name_of(row['track_id'])}"] == row["sha256"]
            gtzan_beat.file_bytes_of_row(row)
    with pytest.raises(ValueError, match="sha256"):
        gtzan_beat.file_bytes_of_row({**row, "beats": row["beats"].replace("1", "2", 1)})


@pytest.mark.parametrize("text,message", [("1.0\t1\n0.5\t2\n", "increase"), ("1.0\t1\n2.0\n", "some lines"),
                                          ("1.0\t0\n", "integer >= 1"), ("1.0 2 3\n", "expected")])
def test_malformed_beats_files_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        gtzan_beat.parse_beats_file(text)


# ------------------------------------------------------------------------------------------ end to end
class OnsetEncoder(Encoder):
    """A tiny frame-level encoder (50 frames/s): state 1 carries band energies and their rise (what beats are
    made of), states 0 and 2 are noise. Counts its forward passes."""

    name = "onset-test"
    sample_rate = 16000
    num_layers = 2
    dim = 8
    frame_rate = 50.0
    context_seconds = 2.0
    min_samples = 640

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def hidden_states(self, waveforms, lengths=None):
        self.calls += 1
        x = waveforms.numpy().astype(np.float64)
        B, N = x.shape
        hop = 320
        T = int(np.ceil(N / hop))
        padded = np.pad(x, ((0, 0), (320, T * hop + 320 - N)))
        frames = np.stack([padded[:, t * hop:t * hop + 640] for t in range(T)], 1)  # centred at t * hop
        spec = np.abs(np.fft.rfft(frames * np.hanning(640), axis=-1))
        bands = np.stack([spec[..., lo:hi].sum(-1) for lo, hi in ((1, 8), (8, 40), (40, 120), (120, 321))], -1)
        energy = np.log1p(10 * bands)
        rise = np.maximum(np.diff(energy, axis=1, prepend=energy[:, :1]), 0)
        states = np.random.default_rng(B * 1000 + T).standard_normal((3, B, T, self.dim))
        states[1] = np.concatenate([energy, rise], -1)
        return torch.from_numpy(states.astype(np.float32)), torch.full((B,), T)

    def identity(self):
        return {"name": self.name}


SMALL_BEATS = ["task=synth_beats", "task.n_train=16", "task.n_valid=6", "task.n_test=6", "task.clip_seconds=5.0",
               "trainer.max_epochs=6", "trainer.batch_size=128", "probe.hidden=32"]


@pytest.mark.slow  # ~6 s; the frame path runs by default in the gtzan_beat end-to-end test
def test_synth_beats_end_to_end_caches_only_the_requested_layers(compose_config):
    encoder = OnsetEncoder()
    config = compose_config(*SMALL_BEATS, "layers=[1,2]")
    record = run(config, console=Console(quiet=True), encoder=encoder)
    assert encoder.calls > 0
    assert record["task_type"] == "beat" and record["primary_metric"] == "f_measure"
    assert record["split_sizes"] == {"train": 16, "valid": 6, "test": 6}
    by_layer = {row["name"]: row for row in record["layers"]}
    assert set(by_layer) == {"1", "2"}
    for row in record["layers"]:
        assert set(row["test"]) == {"f_measure", "cmlt", "amlt", "p_score", "downbeat_f_measure", "f_measure_pooled"}
        assert all(0.0 <= v <= 1.0 for v in row["test"].values())
    assert 0.0 < record["chance_level"] < 0.6
    assert by_layer["1"]["valid"]["f_measure"] > max(0.7, record["chance_level"] + 0.2)  # the onset layer
    assert by_layer["1"]["valid"]["f_measure"] > by_layer["2"]["valid"]["f_measure"] + 0.1
    assert record["selected"]["layer"] == 1

    cache = FeatureCache(Path(config["cache_dir"]), {})
    cache.dir = Path(record["feature_cache"]["dir"])
    key = json.loads((cache.dir / "key.json").read_text())
    assert key["pooling"] == "none" and key["layers"] == [1, 2]
    train = cache.load("train")
    assert train.features.shape == (16 * 5 * 50, 2, 8)  # every frame of 5 s clips at 50 frames/s, two layers
    assert record["feature_cache"]["disk_bytes"] >= train.features.nbytes
    # the cache holds the encoder's layers 1 and 2 exactly (float16), for the frames in time order
    audio = torch.from_numpy(__import__("benchmark.audio", fromlist=["load_audio"]).load_audio(
        Path(config["data_root"]) / "synth_beats" / "audio" / "train_0000.wav", 16000))
    states, _ = OnsetEncoder().hidden_states(audio[None, :32000])
    first_window = np.asarray(train.features[train.window_track == 0][:100], dtype=np.float32)
    np.testing.assert_allclose(first_window[:, 0], states[1, 0].numpy(), rtol=1e-3, atol=1e-3)

    again = OnsetEncoder()
    second = run(compose_config(*SMALL_BEATS, "layers=[1,2]", "seed=1", "task.decoder=peaks"),
                 console=Console(quiet=True), encoder=again)
    assert again.calls == 0 and second["timings"]["encoder_forward_calls"] == 0
    assert second["layers"][0]["valid"]["f_measure"] > 0.5


def test_a_run_with_non_finite_probe_outputs_stops_naming_the_track(compose_config, monkeypatch):
    """Through the runner: the first validation of a run whose probe outputs NaN on three frames stops with the
    track's id (a real valid-split id, passed from the task to the evaluator) and the run's feature cache."""
    import benchmark.probe as probe_module

    real, calls = probe_module.output_activation, []

    def nan_on_the_first_rows(loss, logits):  # the first three rows of the first validation batch
        out = real(loss, logits)
        if not calls:
            out[:, :3] = float("nan")
        calls.append(1)
        return out

    monkeypatch.setattr(probe_module, "output_activation", nan_on_the_first_rows)
    config = compose_config(*SMALL_BEATS[:5], "trainer.max_epochs=1", "trainer.batch_size=128", "probe.hidden=8",
                            "layers=[1]")
    with pytest.raises(NonFiniteActivationError) as info:
        run(config, console=Console(quiet=True), encoder=OnsetEncoder())
    message = str(info.value)
    assert re.match(r"the beat activation of track valid_000[0-5] has 3 NaN or infinite frame\(s\) out of 250 ",
                    message), message
    assert f"delete the feature cache entry {config['cache_dir']}" in message


SR = 22050


def _click_track(target: BeatTarget, seconds: float, seed: int) -> np.ndarray:
    """Clicks at the annotated beats (louder and lower on downbeats) over a little noise."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal(int(seconds * SR))
    click = np.sin(2 * np.pi * 1500 * np.arange(400) / SR) * np.exp(-np.arange(400) / 60)
    low = np.sin(2 * np.pi * 400 * np.arange(800) / SR) * np.exp(-np.arange(800) / 150)
    downs = set(target.downbeats)
    for b in target.beats:
        i = int(round(b * SR))
        sig = 1.5 * low if b in downs else 0.6 * click
        if i + len(sig) <= len(x):
            x[i:i + len(sig)] += sig
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(autouse=True)
def _private_hash_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))


def test_gtzan_beat_runs_end_to_end_on_a_fixture_in_the_real_layout(compose_config, tmp_path):
    data_root = tmp_path / "data"
    annotations = gtzan_beat.committed_annotations()
    per_split = {"train": 4, "valid": 2, "test": 2}
    chosen = {}
    for split, entries in read_split_lists().items():
        chosen[split] = entries[:per_split[split]]
        for n, entry in enumerate(chosen[split]):
            path = data_root / "gtzan" / "genres" / entry
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _click_track(annotations[track_id_of(entry)], 6.0, n), SR, subtype="PCM_16")
    overrides = ["task=gtzan_beat", "max_missing_fraction=1.0", "verify_checksums=false", "trainer.max_epochs=8",
                 "trainer.batch_size=64", "probe.hidden=32", "layers=[1]"]
    encoder = OnsetEncoder()
    record = run(compose_config(*overrides), console=Console(quiet=True), encoder=encoder)
    assert record["split_sizes"] == per_split
    assert len(record["skipped"]["train"]) == 443 - 4
    assert record["dataset"]["annotations"] == gtzan_beat.annotation_digest(annotations)
    row = record["layers"][0]
    assert set(row["valid"]) == {"f_measure", "cmlt", "amlt", "p_score", "downbeat_f_measure", "f_measure_pooled"}
    assert row["valid"]["f_measure"] > 0.8  # clicks at the annotated beats (references cut at 6 s)

    again = OnsetEncoder()
    run(compose_config(*overrides, "seed=1"), console=Console(quiet=True), encoder=again)
    assert again.calls == 0


def test_gtzan_beat_check_on_an_empty_folder_says_where_and_how(tmp_path, capsys):
    from benchmark.cli import main as cli_main

    code = cli_main(["check", "task=gtzan_beat", f"data_root={tmp_path}"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0
    assert str(tmp_path / "gtzan" / "genres") in text
    assert "<genre>.<5 digits>.wav" in text and "python -m benchmark prepare gtzan_beat" in text


def test_tasks_describe_themselves_for_the_frame_level_path():
    synth = build_task({"kind": "synth_beats", "decoder": "peaks"})
    assert synth.level == "frame" and synth.task_type == "beat" and synth.labels == ["beat", "downbeat"]
    real = build_task({"kind": "gtzan_beat"})
    assert real.level == "frame" and real.expected_counts == {"train": 443, "valid": 197, "test": 290}
    label = synth.clip_specs()[0][3]
    row = synth._label_columns(label)
    target = synth._target_from_row(row)
    period = 60.0 / float(row["tempo"])
    np.testing.assert_allclose(np.diff(target.beats), period, atol=2e-4)
    assert set(target.downbeats) <= set(target.beats)
    per_bar = {"4/4": 4, "3/4": 3, "6/8": 2}[row["meter"]]
    np.testing.assert_allclose(np.diff(target.downbeats), per_bar * period, atol=2e-4)
    assert 0.0 <= target.beats[0] < period
