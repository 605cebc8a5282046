"""Tests of the synthetic tasks (tasks/synth_*.py) and their renderer (tasks/synth_audio.py).

Why these tests: the synthetic tasks are the suite's offline default and the fixture of every task type, so
they must be reproducible (same seed, same bytes), laid out like a real dataset, cheap to re-open (no silent
re-render), safe to interrupt, and the labels must really be audible: each signal check below is paired with a
negative control (wrong labels) so a broken renderer or a mislabelled manifest makes it fail.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import mir_eval
import numpy as np
import pytest
import soundfile as sf

from benchmark.metrics import chance_score
from benchmark.resources import config_file_values
from benchmark.tasks.base import SPLITS
from benchmark.tasks.registry import build_task, task_kinds
from benchmark.tasks.synth_audio import INSTRUMENTS, midi_to_hz, normalise, render_drum, render_note
from benchmark.tasks.synth_base import GENERATOR_VERSION, SynthTask
from benchmark.tasks.synth_chords import SynthChords
from benchmark.tasks.synth_music import CHORD_QUALITIES, PITCH_CLASSES_FLAT, PITCH_CLASSES_SHARP
from benchmark.tasks.synth_tags import TAG_INSTRUMENTS

REPO = Path(__file__).resolve().parents[1]
KINDS = ("synth_chords", "synth_key", "synth_tags", "synth_tempo")
SR = 22050

# Small sizes keep the file fast; chords use 96 clips so their render goes through the worker processes.
SMALL: dict[str, dict[str, int]] = {
    "synth_chords": {"n_train": 48, "n_valid": 24, "n_test": 24},
    "synth_key": {"n_train": 24, "n_valid": 12, "n_test": 12},
    "synth_tags": {"n_train": 24, "n_valid": 8, "n_test": 8},
    "synth_tempo": {"n_train": 24, "n_valid": 8, "n_test": 8},
}


def make(kind: str, **overrides: Any) -> SynthTask:
    task = build_task({"name": kind, "kind": kind, "window_seconds": None, "hop_seconds": None, **overrides})
    assert isinstance(task, SynthTask)
    return task


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[SynthTask, Path, list]]:
    """Each task rendered once at a small size: kind -> (task, data_root, tracks)."""
    root = tmp_path_factory.mktemp("synth")
    out = {}
    for kind in KINDS:
        task = make(kind, **SMALL[kind])
        task.prepare(root)
        out[kind] = (task, root, task.tracks(root))
    return out


def read(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float64")
    assert sr == SR
    return x


# ------------------------------------------------------------------------------------------ signal helpers
def chroma(x: np.ndarray, sr: int, fmin: float = 55.0, fmax: float = 2000.0) -> np.ndarray:
    """Pitch-class energy from an averaged STFT power spectrum (numpy only)."""
    n_fft, hop = 8192, 2048
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    sel = (f >= fmin) & (f <= fmax)
    pcs = np.round(12 * np.log2(f[sel] / 440.0) + 69).astype(int) % 12
    return np.bincount(pcs, weights=power[sel], minlength=12)


def chord_pcs(label: str) -> set[int]:
    root, quality = label.split(":")
    return {(PITCH_CLASSES_SHARP.index(root) + i) % 12 for i in CHORD_QUALITIES[quality]}


# Krumhansl-Kessler key profiles (C major / C minor), the classic template key finder.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def profile_key(c: np.ndarray) -> int:
    """Index into SynthKey.labels (12 majors then 12 minors) of the best-correlating key profile."""
    c = np.sqrt(c)
    scores = [np.corrcoef(c, np.roll(KK_MAJOR, k))[0, 1] for k in range(12)]
    scores += [np.corrcoef(c, np.roll(KK_MINOR, k))[0, 1] for k in range(12)]
    return int(np.argmax(scores))


def onset_autocorrelation(x: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Autocorrelation of a spectral-flux onset envelope, and the envelope's frame rate."""
    n_fft, hop = 1024, 256
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.log1p(100.0 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1)
    flux -= flux.mean()
    return np.correlate(flux, flux, "full")[len(flux) - 1:], sr / hop


def has_beat_peak(x: np.ndarray, sr: int, bpm: float, tol: float = 0.05) -> bool:
    """Whether the onset autocorrelation has a local maximum within ``tol`` of the beat period of ``bpm``
    that reaches half of the strongest periodicity between 0.25 and 1.5 s."""
    ac, fps = onset_autocorrelation(x, sr)
    lags = np.arange(len(ac)) / fps
    top = ac[(lags >= 0.25) & (lags <= 1.5)].max()
    for i in np.flatnonzero(np.abs(lags * bpm / 60.0 - 1.0) <= tol):
        if 0 < i < len(ac) - 1 and ac[i] >= ac[i - 1] and ac[i] >= ac[i + 1] and ac[i] >= 0.5 * top:
            return True
    return False


def distinct_peaks(x: np.ndarray, sr: int, floor_db: float, min_sep_hz: float) -> int:
    """Spectral peaks above ``floor_db`` (re the maximum) at least ``min_sep_hz`` apart: a pure tone has one
    (its window side lobes sit within a few Hz of it), a note with partials or a chord has several."""
    n_fft = 1 << int(np.ceil(np.log2(len(x))))
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), n_fft))
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    db = 20 * np.log10(mag / mag.max() + 1e-12)
    idx = 1 + np.flatnonzero((db[1:-1] > db[:-2]) & (db[1:-1] >= db[2:]) & (db[1:-1] > floor_db))
    chosen: list[float] = []
    for i in idx[np.argsort(-db[idx])]:
        if all(abs(f[i] - c) >= min_sep_hz for c in chosen):
            chosen.append(f[i])
    return len(chosen)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC as the probability that a positive outscores a negative."""
    pos, neg = scores[positive], scores[~positive]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def manifest(task: SynthTask, root: Path) -> list[dict[str, str]]:
    with open(task.task_dir(root) / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------- configs, params
@pytest.mark.parametrize("kind", KINDS)
def test_config_builds_registered_task_without_warnings(kind: str) -> None:
    cfg = config_file_values(REPO / "configs" / "task" / f"{kind}.yaml")
    assert kind in task_kinds()
    assert cfg["name"] == cfg["kind"] == kind
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every key of the config must be understood
        task = build_task(cfg)
    assert task.name == kind
    for key, value in cfg.items():
        if key not in ("name", "kind", "window_seconds", "hop_seconds"):
            assert task.params[key] == value, key


def test_default_sizes_and_rates() -> None:
    expected = {"synth_chords": (384, 96, 96), "synth_key": (240, 72, 72), "synth_tags": (300, 100, 100),
                "synth_tempo": (240, 80, 80)}
    for kind, sizes in expected.items():
        task = build_task({"kind": kind})
        assert tuple(task.params[f"n_{s}"] for s in SPLITS) == sizes
        assert task.params["seed"] == 0 and task.params["clip_seconds"] == 3.0
        assert task.params["sample_rate"] == SR


def test_identity_covers_every_parameter_and_ignores_pipeline_keys() -> None:
    base = make("synth_tempo")
    ident = base.dataset_identity()
    assert ident["task"] == "synth_tempo" and ident["generator_version"] == GENERATOR_VERSION
    assert ident["params"] == base.params
    assert set(ident["params"]) >= {"seed", "clip_seconds", "sample_rate", "n_train", "n_valid", "n_test",
                                    "tempo_min", "tempo_max"}
    assert make("synth_tempo", window_seconds=5.0, hop_seconds=2.5).dataset_identity() == ident
    assert make("synth_tempo", clip_seconds=3).dataset_identity() == ident  # int and float are one value
    assert make("synth_tempo", render_workers=3).dataset_identity() == ident  # runtime-only knob
    for change in ({"seed": 1}, {"clip_seconds": 2.0}, {"n_test": 5}, {"tempo_max": 170.0}):
        assert make("synth_tempo", **change).dataset_identity() != ident, change
    with pytest.warns(UserWarning, match="unknown config keys"):
        make("synth_chords", clip_secnds=2.0)


@pytest.mark.parametrize("bad", [{"seed": -1}, {"clip_seconds": 0.2}, {"n_train": -1}, {"n_train": 2.5},
                                 {"sample_rate": 100}, {"render_workers": -2}])
def test_invalid_parameters_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make("synth_chords", **bad)
    with pytest.raises(ValueError):
        make("synth_tempo", tempo_min=150.0, tempo_max=100.0)


# ---------------------------------------------------------------------------------------- layout, formats
@pytest.mark.parametrize("kind", KINDS)
def test_layout_manifest_and_split_counts(rendered, kind: str) -> None:
    task, root, tracks = rendered[kind]
    folder = root / kind
    assert json.loads((folder / "generator.json").read_text()) == task.dataset_identity()
    rows = manifest(task, root)
    assert [r["track_id"] for r in rows] == [t.track_id for t in tracks]
    assert len({t.track_id for t in tracks}) == len(tracks)
    for row, track in zip(rows, tracks):
        assert row["path"] == f"audio/{row['track_id']}.wav"  # relative to the task folder
        assert track.path == folder / row["path"] and track.path.is_file()
        assert track.split == row["split"] and track.offset == 0.0 and track.duration is None
    counts = Counter(t.split for t in tracks)
    assert counts == {s: SMALL[kind][f"n_{s}"] for s in SPLITS}
    assert sorted(p.name for p in (folder / "audio").iterdir()) == sorted(f"{t.track_id}.wav" for t in tracks)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folders left


@pytest.mark.parametrize("kind", KINDS)
def test_audio_is_mono_16bit_with_headroom_and_not_a_test_tone(rendered, kind: str) -> None:
    task, _, tracks = rendered[kind]
    for track in tracks[:12]:
        info = sf.info(track.path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
        assert info.frames == round(3.0 * SR)
        x = read(track.path)
        peak = np.abs(x).max()
        assert 0.45 < peak <= 0.9  # normalised to -6..-1 dBFS: loud enough, never clipped
        assert distinct_peaks(x, SR, -30.0, 20.0) >= 3, f"{track.track_id}: spectrum looks like a pure tone"
        frames = x[: len(x) // 441 * 441].reshape(-1, 441)
        assert np.sqrt((frames**2).mean(axis=1)).min() > 1e-4, f"{track.track_id}: digital silence"


def test_target_arrays_and_chance(rendered) -> None:
    for kind, (task, _, tracks) in rendered.items():
        y = task.target_array(tracks)
        if task.task_type in ("multiclass", "key"):
            assert y.shape == (len(tracks),) and y.dtype == np.int64
            assert 0 <= y.min() and y.max() < task.num_outputs
            assert 0.0 <= chance_score(task.task_type, y, y, task.labels) <= 1.0
        elif task.task_type == "multilabel":
            assert y.shape == (len(tracks), len(TAG_INSTRUMENTS)) and set(np.unique(y)) <= {0.0, 1.0}
        else:
            assert y.shape == (len(tracks), 1) and y.dtype == np.float32


# ---------------------------------------------------------------------------------------------- chords
def test_chord_labels_and_balance(rendered) -> None:
    task, _, tracks = rendered["synth_chords"]
    assert len(task.labels) == 48 and len(set(task.labels)) == 48
    assert task.labels[:4] == ["C:maj", "C:min", "C:dim", "C:7"] and "C#:min" in task.labels
    for label in task.labels:
        mir_eval.chord.split(label)  # raises InvalidChordException on a malformed chord label
    for split in SPLITS:  # 48 train clips: each class once; 24 valid/test clips: 24 different classes
        counts = Counter(t.target for t in tracks if t.split == split)
        assert len(counts) == SMALL["synth_chords"][f"n_{split}"] and set(counts.values()) == {1}, split


def test_chord_balance_at_default_size() -> None:
    specs = make("synth_chords").clip_specs()  # labels only, nothing rendered
    for split, per_class in (("train", 8), ("valid", 2), ("test", 2)):
        counts = Counter(label for _, s, _, label in specs if s == split)
        assert set(counts.values()) == {per_class} and len(counts) == 48


def test_chord_is_audible_in_chroma(rendered) -> None:
    task, _, tracks = rendered["synth_chords"]
    templates = np.array([[float(pc in chord_pcs(lab)) for pc in range(12)] for lab in task.labels])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    in_chord = in_shifted = template_hits = 0
    for track in tracks:
        c = chroma(read(track.path), SR)
        label = task.labels[track.target]
        root, quality = label.split(":")
        shifted = f"{PITCH_CLASSES_SHARP[(PITCH_CLASSES_SHARP.index(root) + 6) % 12]}:{quality}"
        in_chord += int(np.argmax(c)) in chord_pcs(label)
        in_shifted += int(np.argmax(c)) in chord_pcs(shifted)  # negative control: a tritone away
        cn = np.sqrt(c) / np.linalg.norm(np.sqrt(c))
        template_hits += int(np.argmax(templates @ cn)) == track.target
    n = len(tracks)
    assert in_chord / n >= 0.85
    assert in_shifted / n <= 0.4
    assert template_hits / n >= 0.6  # chance is 1/48: root and quality are both there


def test_chord_clips_vary_in_instrument_style_and_voicing(rendered) -> None:
    task, root, _ = rendered["synth_chords"]
    rows = manifest(task, root)
    assert len({r["meta_instrument"] for r in rows}) >= 6
    assert len({r["meta_style"] for r in rows}) == 4
    voicings = [[int(p) for p in r["meta_voicing"].split()] for r in rows]
    assert len({tuple(np.diff(v)) for v in voicings}) >= 10  # many voicing shapes (inversions, open, doubled)
    lowest_is_root = [v[0] % 12 == PITCH_CLASSES_SHARP.index(r["label"].split(":")[0]) for v, r in zip(voicings, rows)]
    assert 0.2 < np.mean(lowest_is_root) < 0.6  # the upper voices are often inverted
    root_bass = sum(r["meta_bass"] == r["label"].split(":")[0] for r in rows)
    assert 0.5 <= root_bass / len(rows) < 1.0  # mostly the root in the bass, some inversions / no bass


# ------------------------------------------------------------------------------------------------- key
def test_key_labels_are_mir_eval_flat_spellings(rendered) -> None:
    task, _, tracks = rendered["synth_key"]
    assert task.labels == [f"{p} major" for p in PITCH_CLASSES_FLAT] + [f"{p} minor" for p in PITCH_CLASSES_FLAT]
    assert "Db major" in task.labels and "Bb minor" in task.labels and not any("#" in k for k in task.labels)
    for label in task.labels:
        mir_eval.key.validate_key(label)
    for split in SPLITS:  # balanced: every key once in train, 12 different keys in valid and test
        counts = Counter(t.target for t in tracks if t.split == split)
        assert len(counts) == SMALL["synth_key"][f"n_{split}"] and set(counts.values()) == {1}, split
    specs = make("synth_key").clip_specs()  # default size: 10 / 3 / 3 clips per key
    for split, per_key in (("train", 10), ("valid", 3), ("test", 3)):
        counts = Counter(label for _, s, _, label in specs if s == split)
        assert len(counts) == 24 and set(counts.values()) == {per_key}


def test_key_is_audible_to_a_profile_key_finder(rendered) -> None:
    task, _, tracks = rendered["synth_key"]
    scores, exact, shifted = [], 0, 0
    for track in tracks:
        est = profile_key(chroma(read(track.path), SR))
        exact += est == track.target
        wrong = (track.target // 12) * 12 + (track.target + 1) % 12  # negative control: a semitone up
        shifted += est == wrong
        scores.append(mir_eval.key.weighted_score(task.labels[track.target], task.labels[est]))
    assert exact / len(tracks) >= 0.6
    assert np.mean(scores) >= 0.7
    assert shifted / len(tracks) <= 0.1


# ------------------------------------------------------------------------------------------------ tags
def test_tags_multilabel(rendered) -> None:
    task, root, tracks = rendered["synth_tags"]
    assert task.labels == list(TAG_INSTRUMENTS)
    rows = {r["track_id"]: r for r in manifest(task, root)}
    for track in tracks:
        assert len(track.target) >= 1
        assert track.target == tuple(i for i, tag in enumerate(task.labels) if rows[track.track_id][tag] == "1")
    # at default size the tag rate is close to tag_probability (plus the forced tag of empty draws)
    specs = make("synth_tags").clip_specs()
    rate = np.mean([len(label) for _, _, _, label in specs]) / len(TAG_INSTRUMENTS)
    assert 0.35 <= rate <= 0.5
    assert min(len(label) for _, _, _, label in specs) == 1


def test_drums_and_bass_tags_are_audible(rendered) -> None:
    task, _, tracks = rendered["synth_tags"]
    high, low = [], []
    for track in tracks:
        x = read(track.path)
        power = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1.0 / SR)
        high.append(power[f > 6000].sum() / power.sum())
        low.append(power[f < 110].sum() / power.sum())
    y = task.target_array(tracks).astype(bool)
    drums, bass = task.labels.index("drums"), task.labels.index("bass")
    assert auc(np.array(high), y[:, drums]) >= 0.8
    assert auc(np.array(low), y[:, bass]) >= 0.65


# ----------------------------------------------------------------------------------------------- tempo
def test_tempo_targets(rendered) -> None:
    task, _, tracks = rendered["synth_tempo"]
    assert task.labels == ["tempo"] and task.task_type == "regression"
    bpm = task.target_array(tracks)[:, 0]
    assert ((bpm >= 70.0) & (bpm <= 180.0)).all()
    train = np.sort(bpm[: SMALL["synth_tempo"]["n_train"]])
    assert train[0] < 80.0 and train[-1] > 170.0  # stratified: the range is covered
    assert np.diff(train).max() < 15.0


def test_tempo_is_audible_in_onset_autocorrelation(rendered) -> None:
    _, _, tracks = rendered["synth_tempo"]
    true_hits = wrong_hits = 0
    for track in tracks:
        x = read(track.path)
        true_hits += has_beat_peak(x, SR, track.target[0])
        wrong_hits += has_beat_peak(x, SR, track.target[0] * 1.27)  # negative control
    assert true_hits / len(tracks) >= 0.85
    assert wrong_hits / len(tracks) <= 0.4


# ---------------------------------------------------------------------------------- determinism, caching
@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes_other_seed_other_audio(tmp_path: Path, kind: str) -> None:
    sizes = {"n_train": 3, "n_valid": 1, "n_test": 1}
    make(kind, **sizes).prepare(tmp_path / "a")
    make(kind, **sizes).prepare(tmp_path / "b")
    make(kind, seed=1, **sizes).prepare(tmp_path / "c")
    a, b, c = (folder_bytes(tmp_path / r / kind) for r in "abc")
    assert a == b
    for name in a:
        if name.endswith(".wav"):
            assert a[name] != c[name], name


def test_worker_processes_give_identical_bytes(tmp_path: Path) -> None:
    sizes = {"n_train": 6, "n_valid": 2, "n_test": 2}
    make("synth_tags", render_workers=1, **sizes).prepare(tmp_path / "serial")
    make("synth_tags", render_workers=2, **sizes).prepare(tmp_path / "parallel")
    assert folder_bytes(tmp_path / "serial") == folder_bytes(tmp_path / "parallel")


def test_prepare_reuses_a_matching_render_and_rerenders_on_change(tmp_path: Path) -> None:
    task = make("synth_key", n_train=2, n_valid=1, n_test=1)
    task.prepare(tmp_path)
    folder = tmp_path / "synth_key"
    wav = folder / "audio" / "train_0000.wav"
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    before = wav.read_bytes()
    make("synth_key", n_train=2, n_valid=1, n_test=1, window_seconds=10.0).prepare(tmp_path)
    task.tracks(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamp

    changed = make("synth_key", n_train=2, n_valid=1, n_test=1, seed=7)
    assert not changed.is_prepared(tmp_path)
    changed.tracks(tmp_path)  # renders because generator.json differs
    assert wav.stat().st_mtime_ns != stamp[wav] and wav.read_bytes() != before
    assert json.loads((folder / "generator.json").read_text())["params"]["seed"] == 7

    shorter = make("synth_key", n_train=2, n_valid=1, n_test=1, seed=7, clip_seconds=2.0)
    shorter.prepare(tmp_path)
    assert sf.info(wav).frames == 2 * SR
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_audio_triggers_a_rerender(tmp_path: Path) -> None:
    task = make("synth_tempo", n_train=2, n_valid=1, n_test=1)
    task.prepare(tmp_path)
    victim = tmp_path / "synth_tempo" / "audio" / "valid_0000.wav"
    victim.unlink()
    assert not task.is_prepared(tmp_path)
    task.prepare(tmp_path)
    assert victim.is_file() and task.is_prepared(tmp_path)


def test_interrupted_render_leaves_nothing_half_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = make("synth_chords", n_train=2, n_valid=1, n_test=1)
    good.prepare(tmp_path)
    identity_before = (tmp_path / "synth_chords" / "generator.json").read_text()
    calls = {"n": 0}
    real_render = SynthChords._render_clip

    def flaky(self: SynthChords, label: Any, rng: np.random.Generator):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of a render
        return real_render(self, label, rng)

    monkeypatch.setattr(SynthChords, "_render_clip", flaky)
    with pytest.raises(KeyboardInterrupt):
        make("synth_chords", n_train=2, n_valid=1, n_test=1, seed=3, render_workers=1).prepare(tmp_path)
    # the previous, complete render is untouched and no temporary folder is left behind
    assert (tmp_path / "synth_chords" / "generator.json").read_text() == identity_before
    assert good.is_prepared(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth_chords"]

    calls["n"] = 0  # interrupted first render into an empty root: nothing appears under the task's name
    with pytest.raises(KeyboardInterrupt):
        make("synth_chords", n_train=2, n_valid=1, n_test=1, seed=3, render_workers=1).prepare(tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []


def test_stale_temporaries_of_dead_renders_are_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / f".synth_tags.rendering-{socket.gethostname()}-999999999"
    (stale / "audio").mkdir(parents=True)
    alive = tmp_path / f".synth_tags.rendering-{socket.gethostname()}-{os.getpid()}x"
    alive.mkdir()  # not a pid we recognise: left alone
    make("synth_tags", n_train=1, n_valid=1, n_test=1).prepare(tmp_path)
    assert not stale.exists() and alive.exists()


def test_failing_worker_reports_its_error(tmp_path: Path) -> None:
    task = make("synth_tags", n_train=2, n_valid=0, n_test=0, render_workers=2)
    task.params["tag_probability"] = 2.0  # workers rebuild the task from params, which now fail validation
    with pytest.raises(RuntimeError, match="tag_probability"):
        task.prepare(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- synth_audio
@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_instrument_notes_have_the_right_pitch_and_several_partials(name: str) -> None:
    rng = np.random.default_rng(0)
    midi = 57.0  # A3, 220 Hz: every instrument's register
    x = render_note(INSTRUMENTS[name], midi, 0.8, 1.0, SR, rng).astype(np.float64)
    assert np.isfinite(x).all() and np.abs(x).max() > 0.05
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 16))
    f = np.fft.rfftfreq(1 << 16, 1.0 / SR)
    f0 = midi_to_hz(midi)
    near_f0 = mag[np.abs(f - f0) < 0.02 * f0].max()
    assert 20 * np.log10(near_f0 / mag.max()) > -20.0  # the fundamental is there
    assert distinct_peaks(x, SR, -40.0, 0.3 * f0) >= (2 if name == "marimba" else 3)  # partials, not a sine
    assert distinct_peaks(np.sin(2 * np.pi * f0 * np.arange(SR) / SR), SR, -40.0, 0.3 * f0) == 1  # control


def test_envelopes_differ_between_plucked_and_sustained() -> None:
    rng = np.random.default_rng(1)

    def rms(x: np.ndarray, a: float, b: float) -> float:
        return float(np.sqrt(np.mean(x[int(a * SR):int(b * SR)] ** 2)))

    pluck = render_note(INSTRUMENTS["pluck"], 60.0, 0.9, 2.0, SR, rng)
    organ = render_note(INSTRUMENTS["organ"], 60.0, 0.9, 2.0, SR, rng)
    pad = render_note(INSTRUMENTS["pad"], 60.0, 0.9, 2.0, SR, rng)
    assert rms(pluck, 1.5, 1.9) < 0.2 * rms(pluck, 0.0, 0.2)  # decays while held
    assert rms(organ, 1.5, 1.9) > 0.6 * rms(organ, 0.05, 0.25)  # sustains
    assert rms(pad, 0.0, 0.05) < 0.3 * rms(pad, 0.6, 0.8)  # slow attack
    soft = render_note(INSTRUMENTS["piano"], 60.0, 0.3, 1.0, SR, np.random.default_rng(2))
    loud = render_note(INSTRUMENTS["piano"], 60.0, 1.0, 1.0, SR, np.random.default_rng(2))
    assert np.abs(loud).max() > 3 * np.abs(soft).max()


def test_drums_and_normalise() -> None:
    rng = np.random.default_rng(3)
    kick, hat = render_drum("kick", 1.0, SR, rng), render_drum("hat", 1.0, SR, rng)

    def centroid(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x)) ** 2
        return float((power * np.fft.rfftfreq(len(x), 1.0 / SR)).sum() / power.sum())

    assert centroid(kick) < 300.0 < 5000.0 < centroid(hat)
    assert abs(kick[-1]) < 1e-3 and abs(hat[-1]) < 1e-3  # tails fade out: no click at the end
    with pytest.raises(ValueError):
        render_drum("cowbell", 1.0, SR, rng)
    y = normalise(np.array([0.0, 2.0, -4.0], dtype=np.float32), peak_db=-6.0)
    assert np.isclose(np.abs(y).max(), 10 ** (-6 / 20))
    with pytest.raises(ValueError):
        normalise(np.zeros(10, dtype=np.float32))
