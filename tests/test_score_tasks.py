"""Tests of the rendered-score tasks' shared parts (tasks/score_render.py, tasks/score_task.py) and chorale_key.

Why these tests: these are the suite's real-music tasks, so the labels must be true of the audio. The renderer is
checked note by note against the pitch it was asked for (a soundfont renderer that plays a program at the wrong
pitch, as symusic's did, would silently corrupt every key label), the transposition is checked to move the audio's
pitch classes exactly as it moves the label, and the committed split is checked for hymn tunes crossing splits.
"""
from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from benchmark.errors import ConfigError, UserError
from benchmark.resources import config_file_values
from benchmark.tasks.chorale_key import CHORALE_FAMILIES, ChoraleKey, chorale_midi, parse_key
from benchmark.tasks.registry import build_task
from benchmark.tasks.score_render import GM_PROGRAMS, PEAK, render_midi, resolve_soundfont
from benchmark.tasks.score_task import check_split_of

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def chorale_task(**overrides) -> ChoraleKey:
    cfg = config_file_values(REPO / "configs" / "task" / "chorale_key.yaml")
    task = build_task({**cfg, **overrides})
    assert isinstance(task, ChoraleKey)
    return task


def midi_note(pitch: int, seconds: float = 1.0) -> bytes:
    from symusic import Note, Score, Tempo, Track

    score = Score(480)
    score.tempos.append(Tempo(0, 120.0))
    track = Track(program=0)
    track.notes.append(Note(0, int(960 * seconds), pitch, 90))
    score.tracks.append(track)
    return score.dumps_midi()


# ------------------------------------------------------------------------------------------------ renderer
def test_every_program_plays_the_pitch_class_it_is_given() -> None:
    soundfont = resolve_soundfont("TimGM6mb")
    for family, programs in GM_PROGRAMS.items():
        for program in programs:
            for pitch in (55, 69):
                audio = render_midi(midi_note(pitch), program=program, soundfont=soundfont, sample_rate=SR,
                                    seconds=1.0)
                f0 = librosa.yin(audio[SR // 10: SR // 2], fmin=60, fmax=2000, sr=SR, frame_length=2048)
                heard = 12 * np.log2(np.median(f0) / 440.0) + 69
                off = (heard - pitch + 6) % 12 - 6  # octave errors (an organ's 16-foot stop) keep the pitch class
                assert abs(off) < 0.3, (family, program, pitch, heard)


def test_render_is_full_length_scaled_and_repeats_a_short_piece() -> None:
    soundfont = resolve_soundfont("TimGM6mb")
    audio = render_midi(midi_note(60, 0.5), program=0, soundfont=soundfont, sample_rate=SR, seconds=3.0)
    assert audio.dtype == np.float32 and audio.shape == (3 * SR,)
    assert np.isclose(np.abs(audio).max(), PEAK)
    # a 0.5 s note is replayed: sound at the start of the second half as well as the first
    envelope = np.abs(audio).reshape(30, -1).max(axis=1)
    assert (envelope > 0.05).sum() >= 6 and envelope[-10:].max() > 0.05


def test_silent_score_is_refused() -> None:
    with pytest.raises(ValueError, match="no notes|silence"):
        from symusic import Score, Tempo, Track

        score = Score(480)
        score.tempos.append(Tempo(0, 120.0))
        score.tracks.append(Track(program=0))
        render_midi(score.dumps_midi(), program=0, soundfont=resolve_soundfont("TimGM6mb"), sample_rate=SR,
                    seconds=1.0)


def test_unknown_soundfont_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TimGM6mb"):
        resolve_soundfont(str(tmp_path / "missing.sf2"))
    text = tmp_path / "font.txt"
    text.write_text("not a soundfont")
    with pytest.raises(ConfigError, match=r"\.sf2"):
        resolve_soundfont(str(text))
    garbage = tmp_path / "garbage.sf2"
    garbage.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ConfigError, match="cannot be read as a soundfont"):
        resolve_soundfont(str(garbage))


def test_soundfont_content_is_part_of_the_dataset_identity(tmp_path: Path) -> None:
    bundled = resolve_soundfont("TimGM6mb")
    copy = tmp_path / "copy.sf2"
    shutil.copyfile(bundled.path, copy)
    same = chorale_task(soundfont=str(copy)).dataset_identity()["renderer"]
    assert same["soundfont_sha256"] == bundled.sha256
    changed = tmp_path / "changed.sf2"
    data = bytearray(bundled.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    other = chorale_task(soundfont=str(changed)).dataset_identity()["renderer"]
    assert other["soundfont_sha256"] != bundled.sha256
    assert chorale_task().dataset_identity() != chorale_task(seed=1).dataset_identity()


# ------------------------------------------------------------------------------------------- chorale_key
def test_chorale_list_counts_keys_and_hymn_tunes_stay_in_one_split() -> None:
    task = chorale_task()
    rows = task.pieces
    assert len(rows) == 272 and len({r["work"] for r in rows}) == 272
    assert collections.Counter(r["split"] for r in rows) == {"train": 190, "valid": 41, "test": 41}
    assert collections.Counter(r["key"].split()[1] for r in rows) == {"major": 161, "minor": 111}
    check_split_of(rows, "tune_group")
    for row in rows:
        parse_key(row["key"])  # a flat-spelled mir_eval key
    task.check_corpus()  # every score is in the installed corpus with the committed sha256


def test_leak_check_can_fail() -> None:
    with pytest.raises(ValueError, match="two splits"):
        check_split_of([{"g": "a", "split": "train"}, {"g": "a", "split": "test"}], "g")


def test_transpositions_balance_the_keys_of_each_mode_in_each_split() -> None:
    task = chorale_task()
    specs = task.clip_specs()
    assert collections.Counter(split for _, split, _, _ in specs) == {"train": 380, "valid": 82, "test": 82}
    assert len({track_id for track_id, _, _, _ in specs}) == len(specs)
    for split in ("train", "valid", "test"):
        counts = collections.Counter(label[0] for _, s, _, label in specs if s == split)
        for mode in (range(12), range(12, 24)):
            values = [counts[k] for k in mode]
            assert max(values) - min(values) <= 2, (split, values)
    shifts = collections.defaultdict(list)
    for _, _, _, (_, index, shift) in specs:
        shifts[index].append(shift)
    assert all(len(set(v)) == 2 for v in shifts.values())
    assert task.clip_specs() == specs  # deterministic
    assert chorale_task(seed=1).clip_specs() != specs


def test_transposition_moves_the_audio_by_the_label_interval() -> None:
    """The chroma of a chorale transposed by s equals the untransposed chroma rotated by s (and no other shift)."""
    task = chorale_task()
    row = task.pieces[0]
    soundfont = resolve_soundfont("TimGM6mb")
    chroma = {}
    for shift in (0, 5):
        audio = render_midi(chorale_midi(row["corpus_path"]), program=48, soundfont=soundfont, sample_rate=SR,
                            seconds=12.0, qpm=80.0, transpose=shift)
        chroma[shift] = librosa.feature.chroma_cqt(y=audio, sr=SR).mean(axis=1)
    fits = [np.corrcoef(np.roll(chroma[0], k), chroma[5])[0, 1] for k in range(12)]
    assert int(np.argmax(fits)) == 5 and fits[5] > 0.95


@pytest.fixture(scope="module")
def small_chorales(tmp_path_factory: pytest.TempPathFactory) -> tuple[ChoraleKey, Path]:
    root = tmp_path_factory.mktemp("chorales")
    task = chorale_task(max_pieces_per_split=2, clip_seconds=4.0, sample_rate=SR, render_workers=1)
    task.prepare(root)
    return task, root


def test_small_render_layout_labels_and_reuse(small_chorales) -> None:
    task, root = small_chorales
    tracks = task.tracks(root)
    assert len(tracks) == 12 and collections.Counter(t.split for t in tracks) == {"train": 4, "valid": 4, "test": 4}
    for track in tracks:
        audio, rate = sf.read(track.path, dtype="float32")
        assert rate == SR and audio.shape == (4 * SR,) and np.abs(audio).max() > 0.3
        assert task.labels[track.target] in task.labels
    manifest = (root / "chorale_key" / "rendered" / "manifest.csv").read_text()
    assert "tune_group" in manifest and "meta_program" in manifest
    families = {line.split(",")[-3] for line in manifest.splitlines()[1:]}
    assert families <= set(CHORALE_FAMILIES)
    audio_dir = root / "chorale_key" / "rendered" / "audio"
    before = {p: p.stat().st_mtime_ns for p in audio_dir.iterdir()}
    task.prepare(root)  # an identical render is reused, not redone
    assert before == {p: p.stat().st_mtime_ns for p in audio_dir.iterdir()}


def test_same_seed_renders_the_same_bytes(small_chorales, tmp_path: Path) -> None:
    task, root = small_chorales
    first = next((root / "chorale_key" / "rendered" / "audio").iterdir())
    other = chorale_task(max_pieces_per_split=2, clip_seconds=4.0, sample_rate=SR, render_workers=1)
    spec = next(s for s in other.clip_specs() if first.name.startswith(s[0] + "."))
    audio, _ = other.render_clip(spec[1], spec[2], spec[3])
    stored, _ = sf.read(first, dtype="float32")
    assert np.abs(audio - stored).max() < 1e-4  # the same render, up to 16-bit rounding


def test_a_render_beside_the_committed_piece_list_leaves_it_alone(tmp_path: Path) -> None:
    """A checkout run from its root renders into datasets/, the folder of the committed lists: they must survive."""
    committed = tmp_path / "chorale_key" / "chorales.csv"
    committed.parent.mkdir()
    committed.write_text("committed\n")
    task = chorale_task(max_pieces_per_split=1, clip_seconds=2.0, sample_rate=SR, render_workers=1)
    task.prepare(tmp_path)
    task.prepare(tmp_path.as_posix())
    chorale_task(max_pieces_per_split=1, clip_seconds=2.5, sample_rate=SR, render_workers=1).prepare(tmp_path)
    assert committed.read_text() == "committed\n"
    assert sorted(p.name for p in committed.parent.iterdir()) == ["chorales.csv", "rendered"]


def test_a_different_corpus_is_refused_before_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = chorale_task(max_pieces_per_split=1, clip_seconds=2.0)
    rows = [dict(r) for r in task.pieces]
    rows[0]["sha256"] = hashlib.sha256(b"another corpus").hexdigest()
    monkeypatch.setattr(type(task), "pieces", property(lambda self: rows))
    with pytest.raises(UserError, match="music21"):
        task.prepare(tmp_path)
    assert not (tmp_path / "chorale_key").exists()


# ------------------------------------------------------------------------------------------- irish_dance
def irish_task(**overrides):
    from benchmark.tasks.irish_dance import IrishDance

    cfg = config_file_values(REPO / "configs" / "task" / "irish_dance.yaml")
    task = build_task({**cfg, **overrides})
    assert isinstance(task, IrishDance)
    return task


def test_irish_clips_are_one_per_tune_with_the_collectors_classes() -> None:
    task = irish_task()
    specs = task.clip_specs()
    assert len(specs) == 587
    assert collections.Counter(split for _, split, _, _ in specs) == {"train": 406, "valid": 96, "test": 85}
    by_class = collections.Counter(task.labels[label[0]] for _, _, _, label in specs)
    assert by_class == {"reel": 150, "jig": 150, "hornpipe": 150, "slip_jig": 89, "strathspey": 48}
    check_split_of(task.pieces, "title_key")
    assert task.kind.name == "multiclass_balanced" and task.kind.primary.name == "balanced_accuracy"


def test_irish_render_draws_tempo_from_one_range_and_plays_the_tune(tmp_path: Path) -> None:
    task = irish_task(max_pieces_per_split=2, clip_seconds=4.0, sample_rate=SR, render_workers=1)
    task.prepare(tmp_path)
    tracks = task.tracks(tmp_path)
    assert len(tracks) == 6
    rows = (tmp_path / "irish_dance" / "rendered" / "manifest.csv").read_text().splitlines()
    header = rows[0].split(",")
    rates = [float(r.split(",")[header.index("meta_eighths_per_second")]) for r in rows[1:]]
    assert all(5.0 <= r <= 8.0 for r in rates) and len(set(rates)) == len(rates)
    for track in tracks:
        audio, rate = sf.read(track.path, dtype="float32")
        assert rate == SR and audio.shape == (4 * SR,)
        # sound throughout: every half second has a note playing (the tune is looped, never padded with silence)
        assert np.abs(audio).reshape(8, -1).max(axis=1).min() > 0.02
