"""NSynth instrument family and pitch (tasks/nsynth.py): the committed test list and vocabulary, reading
examples.json as published, the checks that refuse another test set or contradictory labels, the shared audio
collection of the two tasks, end-to-end runs on a fixture in the real layout, the missing-dataset message and
prepare()'s download + unpack + verification.

Why these tests: NSynth's split is defined by its archives, so the only fixed facts are the published sizes and
the committed list of the 4,096 test notes; the tests hold the task to both. The fixture uses real test note names
from the committed list and invented train/valid notes in the real name pattern (examples.json in the real
format, written at test time); its audio is a tone at the note's pitch with a timbre per family.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml
from rich.console import Console

from benchmark.cli import main as cli_main
from benchmark.runner import run
from benchmark.tasks import nsynth
from benchmark.tasks.base import DatasetMissingError, SharedAudio
from benchmark.tasks.registry import build_task
from tests.conftest import FIXTURES, REPO_ROOT

SR = 16000
FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal"]
QUALITIES = ["bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic", "nonlinear_env",
             "percussive", "reverb", "tempo-synced"]
SOURCES = ["acoustic", "electronic", "synthetic"]
SHA256 = {"test_notes.tsv": "3f730ff70c2be35f28c65688a43d4f352151b89bcae132c537fea7ac97a0d904",
          "label_vocab.tsv": "f0aff29ec7061f16871ac543f604bceae0b939b865f8c30aa33f32e9486d9d5c"}

# Real test notes (datasets/nsynth/test_notes.tsv), two per family, and invented train/valid notes of instruments
# numbered 9xx (no such instrument is in the test list) at the same family/pitch pairs, so that train can teach
# every class that valid and test hold (the protocol checks refuse anything else).
FIXTURE_TEST = ["bass_synthetic_068-049-025", "bass_electronic_025-048-075", "guitar_acoustic_010-066-100",
                "guitar_acoustic_021-045-025", "keyboard_acoustic_004-058-127", "keyboard_electronic_002-072-075"]
FIXTURE_VALID = ["bass_synthetic_950-049-050", "guitar_acoustic_951-066-075", "keyboard_electronic_952-072-100"]
FIXTURE_TRAIN = [f"{fam}_{src}_{inst}-{p:03d}-{v:03d}"
                 for fam, src, pitches in (("bass", "synthetic", (48, 49)), ("guitar", "acoustic", (45, 66)),
                                           ("keyboard", "electronic", (58, 72)))
                 for inst, v in ((960, 50), (971, 100)) for p in pitches]
FIXTURE = {"train": FIXTURE_TRAIN, "valid": FIXTURE_VALID, "test": FIXTURE_TEST}


def parts(note: str) -> dict[str, Any]:
    m = nsynth.NOTE_RE.fullmatch(note)
    assert m is not None, note
    return {"family": m["family"], "source": m["source"], "instrument": f"{m['family']}_{m['source']}_{m['number']}",
            "pitch": int(m["pitch"]), "velocity": int(m["velocity"])}


def entry(note: str, index: int) -> dict[str, Any]:
    """An examples.json entry in the published format (all 13 fields)."""
    p = parts(note)
    qualities = [int(b) for b in format(zlib.crc32(note.encode()) % 1024, "010b")]
    return {"note": index, "note_str": note, "instrument": zlib.crc32(p["instrument"].encode()) % 1006,
            "instrument_str": p["instrument"], "pitch": p["pitch"], "velocity": p["velocity"], "sample_rate": SR,
            "qualities": qualities, "qualities_str": [q for q, b in zip(QUALITIES, qualities) if b],
            "instrument_source": SOURCES.index(p["source"]), "instrument_source_str": p["source"],
            "instrument_family": FAMILIES.index(p["family"]), "instrument_family_str": p["family"]}


def note_audio(note: str) -> np.ndarray:
    """4 s at the note's pitch: held 3 s, decaying over the last second; harmonics by family; a little noise."""
    p = parts(note)
    t = np.arange(4 * SR) / SR
    f0 = 440.0 * 2 ** ((p["pitch"] - 69) / 12)
    harmonics = {"bass": [1, 2, 3, 4, 5, 6], "guitar": [1, 2, 3], "keyboard": [1, 3, 5]}[p["family"]]
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in harmonics)
    envelope = np.where(t < 3.0, 1.0, np.exp(-6 * (t - 3.0)))
    noise = np.random.default_rng(zlib.crc32(note.encode())).standard_normal(t.size)
    x = envelope * x / np.max(np.abs(x)) * (0.2 + p["velocity"] / 254) + 0.01 * noise
    return x.astype(np.float32)


def write_split(root: Path, split: str, notes: list[str], audio: bool = True) -> None:
    folder = nsynth.split_folder(root, split)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    # Python 2's json.dump(indent=4) layout, as in the archives
    (folder / "examples.json").write_text(json.dumps({n: entry(n, i) for i, n in enumerate(notes)}, indent=4))
    if audio:
        for n in notes:
            sf.write(folder / "audio" / f"{n}.wav", note_audio(n), SR, subtype="PCM_16")


def make_fixture(root: Path, audio: bool = True) -> Path:
    for split, notes in FIXTURE.items():
        write_split(root, split, notes, audio)
    return root


def task(name: str) -> nsynth.NSynthTask:
    cfg = yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{name}.yaml").read_text())
    cfg.pop("defaults")  # Hydra's key: a composed config does not have it
    built = build_task(cfg)
    assert isinstance(built, nsynth.NSynthTask)
    return built


def edit_examples(root: Path, split: str, change) -> None:
    path = nsynth.split_folder(root, split) / "examples.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=4))


# ----------------------------------------------------------------------------------------------------------------
# Committed files, labels, configs


def test_committed_test_list_and_vocabulary_are_the_published_ones():
    readme = (nsynth.MANIFEST_DIR / "README.md").read_text()
    for name, digest in SHA256.items():
        assert hashlib.sha256((nsynth.MANIFEST_DIR / name).read_bytes()).hexdigest() == digest
        assert digest in readme
    assert "CC BY 4.0" in readme
    notes = nsynth.read_test_notes()
    assert len(notes) == len({n.note for n in notes}) == nsynth.PUBLISHED_COUNTS["test"] == 4096
    assert notes[0] == nsynth.TestNote("bass_synthetic_068-049-025", 0, 49)  # examples.json key order
    by_family = Counter(FAMILIES[n.family] for n in notes)
    assert by_family == {"bass": 843, "brass": 269, "flute": 180, "guitar": 652, "keyboard": 766, "mallet": 202,
                         "organ": 502, "reed": 235, "string": 306, "vocal": 141}  # no synth_lead in test
    pitches = {n.pitch for n in notes}
    assert (min(pitches), max(pitches), len(pitches)) == (9, 119, 106)
    assert len({parts(n.note)["instrument"] for n in notes}) == 53
    assert all(parts(n.note)["pitch"] == n.pitch and FAMILIES.index(parts(n.note)["family"]) == n.family
               for n in notes)
    assert list(nsynth.FAMILIES) == FAMILIES  # MARBLE v1 NSynthI class2id
    assert not set(FIXTURE_TRAIN + FIXTURE_VALID) & {n.note for n in notes}
    assert set(FIXTURE_TEST) <= {n.note for n in notes}


def test_labels_kinds_counts_and_configs():
    inst, pitch = task("nsynth_instrument"), task("nsynth_pitch")
    assert isinstance(inst, nsynth.NSynthInstrument) and isinstance(pitch, nsynth.NSynthPitch)
    assert inst.labels == FAMILIES and inst.num_outputs == 11
    assert pitch.labels == [str(p) for p in range(128)] and pitch.num_outputs == 128
    for t in (inst, pitch):
        assert t.task_type == "multiclass" and t.level == "clip" and t.kind.primary.name == "accuracy"
        assert t.expected_counts == {"train": 289205, "valid": 12678, "test": 4096}
        assert t.checksums(Path("/d")) == {}
        assert t.dataset_identity()["test_notes_sha256"] == SHA256["test_notes.tsv"]
        cfg = yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{t.name}.yaml").read_text())
        assert (cfg["kind"], cfg["window_seconds"], cfg["hop_seconds"]) == (t.name, 4.0, None)  # the whole note
    assert inst.dataset_identity()["labels"] == FAMILIES
    with pytest.warns(UserWarning, match="window_secs"):
        nsynth.NSynthPitch({"name": "nsynth_pitch", "kind": "nsynth_pitch", "window_secs": 4})


# ----------------------------------------------------------------------------------------------------------------
# Tracks, labels and the shared audio collection


def test_tracks_splits_targets_and_the_shared_collection(tmp_path, caplog):
    make_fixture(tmp_path, audio=False)
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.nsynth"):
        inst = task("nsynth_instrument").tracks(tmp_path)
    pitch = task("nsynth_pitch").tracks(tmp_path)
    counts = Counter(t.split for t in inst)
    assert counts == {"train": 12, "valid": 3, "test": 4096}  # test: the whole committed list
    partial = [r.getMessage() for r in caplog.records if "partial copy" in r.getMessage()]
    assert len(partial) == 3 and "lists 12 notes; the published nsynth-train has 289205" in partial[0]

    official = {n.note: n for n in nsynth.read_test_notes()}
    for a, b in zip(inst, pitch):
        assert (a.track_id, a.path, a.split, a.offset, a.duration) == (b.track_id, b.path, b.split, 0.0, None)
        assert a.path == tmp_path / "nsynth" / f"nsynth-{a.split}" / "audio" / f"{a.track_id}.wav"
        assert FAMILIES[a.target] == parts(a.track_id)["family"] and b.target == parts(a.track_id)["pitch"]
        if a.split == "test":
            assert (a.target, b.target) == (official[a.track_id].family, official[a.track_id].pitch)
    ids = [t.track_id for t in inst]
    assert ids == sorted(FIXTURE_TRAIN) + sorted(FIXTURE_VALID) + sorted(official)  # split, then note name

    shared = task("nsynth_instrument").shared_audio(tmp_path)
    assert isinstance(shared, SharedAudio) and shared == task("nsynth_pitch").shared_audio(tmp_path)
    assert shared.identity == {"dataset": "nsynth", "release": "magenta nsynth-{train,valid,test}.jsonwav.tar.gz",
                               "layout": "nsynth-<split>/audio/<note_str>.wav"}
    assert [(t.track_id, t.path, t.offset, t.duration) for t in shared.tracks] == \
        [(t.track_id, t.path, t.offset, t.duration) for t in inst]
    y = task("nsynth_pitch").target_array([t for t in pitch if t.split == "test"])
    assert y.dtype == np.int64 and y.min() == 9 and y.max() == 119


def test_a_complete_test_examples_json_labels_the_test_split(tmp_path, caplog):
    official = nsynth.read_test_notes()
    make_fixture(tmp_path, audio=False)
    write_split(tmp_path, "test", [n.note for n in official], audio=False)
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.nsynth"):
        tracks = task("nsynth_instrument").tracks(tmp_path)
    assert not [r for r in caplog.records if "nsynth-test has" in r.getMessage()]  # complete: no warning
    test = [t for t in tracks if t.split == "test"]
    assert len(test) == 4096 and 9 not in {t.target for t in test}  # no synth_lead in the test set
    assert Counter(t.target for t in test) == Counter(n.family for n in official)


def _variant(tmp_path: Path, name: str, split: str, change) -> Path:
    root = make_fixture(tmp_path / name, audio=False)
    edit_examples(root, split, change)
    return root


def test_examples_json_that_contradicts_the_published_data_is_refused(tmp_path, capsys):
    bad_json = make_fixture(tmp_path / "json", audio=False)
    path = nsynth.split_folder(bad_json, "valid") / "examples.json"
    path.write_text(path.read_text()[:200])  # truncated
    top_list = make_fixture(tmp_path / "top", audio=False)
    (nsynth.split_folder(top_list, "test") / "examples.json").write_text(json.dumps([entry(FIXTURE_TEST[0], 0)]))
    cases = {
        bad_json: r"nsynth-valid/examples.json is not valid JSON \(.* at line \d+",
        top_list: r"expected one JSON object mapping each note name to its entry .* found a list",
        _variant(tmp_path, "family", "train", lambda d: d[FIXTURE_TRAIN[0]].update(instrument_family_str="brass")):
            r"1 entry is refused: 'bass_synthetic_960-048-050' has instrument_family_str 'brass', but its name says "
            r"'bass'",
        _variant(tmp_path, "pitch", "valid", lambda d: d[FIXTURE_VALID[0]].update(pitch=50)):
            r"has pitch 50, but its name says 49",
        _variant(tmp_path, "field", "train", lambda d: d[FIXTURE_TRAIN[1]].pop("pitch")): r"lacks a field",
        _variant(tmp_path, "name", "train", lambda d: d.update(Bass_1=d.pop(FIXTURE_TRAIN[0]))):
            r"'Bass_1' is not a note name <family>_<source>_<NNN>-<PPP>-<VVV>",
        _variant(tmp_path, "stranger", "test", lambda d: d.update({"bass_synthetic_999-040-050": entry(
            "bass_synthetic_999-040-050", 9)})): r"not in the official NSynth test set .*different test set",
        _variant(tmp_path, "leak", "train", lambda d: d.update({FIXTURE_TEST[0]: entry(FIXTURE_TEST[0], 99)})):
            r"nsynth-train/examples.json lists 1 note\(s\) of the official test set: bass_synthetic_068-049-025",
        _variant(tmp_path, "twice", "valid", lambda d: d.update({FIXTURE_TRAIN[0]: entry(FIXTURE_TRAIN[0], 99)})):
            r"in both nsynth-train and nsynth-valid",
    }
    for root, message in cases.items():
        with pytest.raises(nsynth.NSynthDataError, match=message):
            task("nsynth_pitch").tracks(root)
    # the command line prints the paragraph, not a traceback
    assert cli_main(["check", "task=nsynth_pitch", f"data_root={tmp_path / 'family'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "instrument_family_str 'brass'" in err


def test_test_audio_without_an_examples_entry_is_refused(tmp_path):
    make_fixture(tmp_path, audio=False)
    orphan = next(n.note for n in nsynth.read_test_notes() if n.note not in FIXTURE_TEST)
    nsynth.note_path(tmp_path, "test", orphan).write_bytes(b"not read")
    with pytest.raises(nsynth.NSynthDataError, match=rf"no entry for 1 test note\(s\) whose audio is present "
                                                     rf"\({orphan}\)"):
        task("nsynth_instrument").tracks(tmp_path)


def test_missing_dataset_gives_the_clear_message(tmp_path, capsys):
    with pytest.raises(DatasetMissingError) as exc:
        task("nsynth_instrument").tracks(tmp_path)
    text = str(exc.value)
    assert f"dataset not found in {tmp_path / 'nsynth'}" in text
    assert "nsynth-train/audio/<note_str>.wav" in text and "python -m benchmark prepare nsynth_instrument" in text
    assert "not found:" not in text  # nothing there at all: the layout says it
    write_split(tmp_path, "test", FIXTURE_TEST, audio=False)  # only the test archive unpacked
    assert cli_main(["check", "task=nsynth_pitch", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "not found: nsynth-train/examples.json, nsynth-valid/examples.json" in err
    assert "python -m benchmark prepare nsynth_pitch" in err and "Traceback" not in err


def test_check_compares_the_split_counts_with_the_published_sizes(tmp_path, capsys):
    make_fixture(tmp_path)
    assert cli_main(["check", "task=nsynth_instrument", f"data_root={tmp_path}"]) == 1
    out = capsys.readouterr().out
    assert "train 12 of 12 tracks present (expected 289205)" in out
    assert "valid 3 of 3 tracks present (expected 12678)" in out
    assert "test  6 of 4096 tracks present (expected 4096)" in out
    assert "INCOMPLETE" in out and "protocol: OK" in out


# ----------------------------------------------------------------------------------------------------------------
# End to end


def test_both_tasks_run_end_to_end_on_one_extraction(compose_config, tmp_path):
    """Both tasks on the fixture with the tiny MERT, one cache: the second run reuses the first one's features
    (the shared collection), and each scores its own labels."""
    records = {}
    for name in ("nsynth_instrument", "nsynth_pitch"):
        config = compose_config(f"task={name}", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                                "trainer.max_epochs=2", "max_missing_fraction=1.0")
        if not records:
            make_fixture(Path(config["data_root"]))
        records[name] = record = run(config, console=Console(quiet=True))
        assert record["split_sizes"] == {"train": 12, "valid": 3, "test": 6}
        assert {s: len(ids) for s, ids in record["skipped"].items()} == {"train": 0, "valid": 0, "test": 4090}
        assert not set(record["skipped"]["test"]) & set(FIXTURE_TEST)
        assert record["task_type"] == "multiclass" and record["primary_metric"] == "accuracy"
        assert record["window"]["window"] == 4.0  # one window: the whole note
        assert record["dataset"]["split"] == nsynth.SPLIT_VERSION
        for row in record["layers"]:
            for split in ("valid", "test"):
                assert 0.0 <= row[split]["accuracy"] <= 1.0
    assert records["nsynth_instrument"]["timings"]["encoder_forward_calls"] > 0
    assert records["nsynth_pitch"]["timings"]["encoder_forward_calls"] == 0  # features of the shared collection


# ----------------------------------------------------------------------------------------------------------------
# prepare()


def _archive(path: Path, split: str, notes: list[str]) -> None:
    """An nsynth-<split>.jsonwav.tar.gz: examples.json and tiny wavs under nsynth-<split>/."""
    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"nsynth-{split}/{name}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, "examples.json", json.dumps({n: entry(n, i) for i, n in enumerate(notes)}, indent=4).encode())
        for n in notes:
            buf = io.BytesIO()
            sf.write(buf, note_audio(n)[:800], SR, format="WAV", subtype="PCM_16")
            add(tar, f"audio/{n}.wav", buf.getvalue())


def test_prepare_downloads_unpacks_verifies_and_records_the_archives(static_http_server, tmp_path, monkeypatch,
                                                                     capsys):
    served, url = static_http_server
    for split, notes in FIXTURE.items():
        _archive(served / nsynth.archive_name(split), split, notes)
    monkeypatch.setattr(nsynth, "SOURCES", {s: f"{url}/{nsynth.archive_name(s)}" for s in FIXTURE})
    monkeypatch.setattr(nsynth, "PUBLISHED_COUNTS", {s: len(n) for s, n in FIXTURE.items()})
    data = tmp_path / "data"
    task("nsynth_pitch").prepare(data)
    folder = data / "nsynth"
    for split, notes in FIXTURE.items():
        archive = served / nsynth.archive_name(split)
        marker = json.loads((folder / f".nsynth-{split}.unpacked.json").read_text())
        assert marker["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert (marker["bytes"], marker["notes"]) == (archive.stat().st_size, len(notes))
        assert all(nsynth.note_path(data, split, n).is_file() for n in notes)
    assert "no published checksum" in capsys.readouterr().out
    tracks = task("nsynth_instrument").tracks(data)
    assert Counter(t.split for t in tracks) == {"train": 12, "valid": 3, "test": 4096}

    for split in FIXTURE:  # a rerun fetches nothing: the server no longer has the archives
        (served / nsynth.archive_name(split)).unlink()
    task("nsynth_instrument").prepare(data)
    assert capsys.readouterr().out.count("already unpacked") == 3
    for split in FIXTURE:  # unpacked by hand (no marker, no archive): verified in place, nothing downloaded
        (folder / f".nsynth-{split}.unpacked.json").unlink()
        (folder / nsynth.archive_name(split)).unlink()
    task("nsynth_instrument").prepare(data)
    assert capsys.readouterr().out.count("is complete") == 3

    other = tmp_path / "other"  # a truncated download is refused with the fix
    _archive(served / "whole.tar.gz", "test", FIXTURE_TEST)
    (served / nsynth.archive_name("test")).write_bytes((served / "whole.tar.gz").read_bytes()[:3000])
    with pytest.raises(nsynth.NSynthPrepareError, match="could not be unpacked .*truncated or corrupt. Delete it"):
        task("nsynth_pitch").prepare(other)
    assert not (other / "nsynth" / ".nsynth-test.unpacked.json").exists()

    (other / "nsynth" / nsynth.archive_name("test")).unlink()  # another test set is refused
    _archive(served / nsynth.archive_name("test"), "test", FIXTURE_TEST[:-1] + ["bass_synthetic_999-040-050"])
    with pytest.raises(nsynth.NSynthPrepareError, match=r"not in the official test list .*bass_synthetic_999"):
        task("nsynth_pitch").prepare(other)

    monkeypatch.setattr(nsynth, "SOURCES", {s: f"{url}/nowhere.tar.gz" for s in FIXTURE})  # 404
    with pytest.raises(nsynth.NSynthPrepareError, match="could not download") as exc:
        task("nsynth_pitch").prepare(tmp_path / "third")
    assert "nsynth-train/audio/<note_str>.wav" in str(exc.value)
