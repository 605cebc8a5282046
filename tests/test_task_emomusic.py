"""emomusic: split derivation, target scaling, the published file formats, prepare(), and an end-to-end run.

The annotation fixture is rebuilt in the published format (CRLF, the real headers, some padded values) from the
verbatim strings of the reference data for all 744 songs, so the split and the z-score statistics are computed
exactly as on a user's copy; audio exists for a dozen real song ids only (synthetic, loudness following arousal
and brightness following valence).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from benchmark.tasks import emomusic
from benchmark.tasks.base import DatasetMissingError
from benchmark.tasks.download import ChecksumMismatchError
from benchmark.tasks.emomusic import (
    EmoMusic, artist_key, artist_split, parse_minsec, read_csv_rows, read_songs, read_split_manifest, song_split,
)
from tests.conftest import FIXTURES, REFDATA

DERIVED_CSV = REFDATA / "emomusic" / "DERIVED_static_annotations_from_jukemir.csv"
# jukemir's emomusic.json.gz slimmed to the fields read here (split, y, clip.clip_offset); see its PROVENANCE.md.
JUKEMIR_JSON = REFDATA / "jukemir" / "metadata" / "emomusic.slim.json.gz"

INFO_HEADER = ["song_id", "file_name", "Artist", "Song title", "start of the segment (min.sec)",
               "end of the segment (min.sec)", "Genre", "Mediaeval 2013 set"]
STATIC_HEADER = ["song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence"]
# Real song ids with audio in the end-to-end fixture: 6 train, 3 valid, 3 test (checked below).
AUDIO_SONGS = {"train": ["5", "10", "13", "17", "19", "20"], "valid": ["2", "4", "7"], "test": ["3", "12", "22"]}


def refdata_rows() -> list[dict[str, str]]:
    with open(DERIVED_CSV, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def jukemir_records() -> dict[str, dict]:
    with gzip.open(JUKEMIR_JSON, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def write_annotations(folder: Path, rows: list[dict[str, str]] | None = None, pad: bool = True) -> None:
    """songs_info.csv and static_annotations.csv as distributed: CRLF, the published headers, padded values."""
    rows = refdata_rows() if rows is None else rows
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "songs_info.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(INFO_HEADER)
        for i, r in enumerate(rows):
            artist = r["artist"] + ("   " if pad and i % 3 == 0 else "")  # trailing blanks, as in the real file
            w.writerow([r["song_id"], r["file_name"], artist, r["song_title"], r["segment_start_minsec"],
                        r["segment_end_minsec"], r["genre"], r["mediaeval2013_set"]])
    with open(folder / "static_annotations.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(STATIC_HEADER)
        for r in rows:
            w.writerow([r["song_id"], (" " if pad else "") + r["mean_arousal"], r["std_arousal"],
                        r["mean_valence"], r["std_valence"]])


def synth_clip(arousal: float, valence: float, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Stereo harmonic tone + noise: louder and busier with arousal, brighter (slower roll-off) with valence."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(110.0, 220.0)
    rolloff = 2.2 - 0.6 * np.clip(valence, -2.0, 2.0)  # harmonic k has amplitude k ** -rolloff
    tone = sum(k ** -rolloff * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 16))
    pulses = 1.0 + 0.5 * np.sign(np.sin(2 * np.pi * (1.5 + 0.5 * np.clip(arousal, -2.0, 2.0)) * t))
    x = tone * pulses + 0.05 * rng.standard_normal(t.size)
    x *= 10 ** ((-22.0 + 6.0 * np.clip(arousal, -2.0, 2.0)) / 20.0) / (np.abs(x).max() + 1e-9)
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def emo_root(tmp_path_factory) -> Path:
    """<data_root> holding emomusic/ in the published layout: all 744 annotation rows, audio for 12 songs."""
    root = tmp_path_factory.mktemp("emo")
    folder = root / "emomusic"
    write_annotations(folder / "annotations")
    rows = {r["song_id"]: r for r in refdata_rows()}
    rng = np.random.default_rng(0)
    (folder / "clips_45seconds").mkdir()
    for i, sid in enumerate(sid for ids in AUDIO_SONGS.values() for sid in ids):
        a = (float(rows[sid]["mean_arousal"]) - 4.756) / 1.386
        v = (float(rows[sid]["mean_valence"]) - 4.974) / 1.255
        audio = synth_clip(a, v, 6.0 + (i % 6), 44100, rng)  # 6-11 s: one or two 5-s windows
        sf.write(folder / "clips_45seconds" / f"{sid}.mp3", audio, 44100, format="MP3")
    return root


# -------------------------------------------------------------------------------------------- split, counts
def test_committed_split_counts_and_expected_counts():
    manifest = read_split_manifest()
    counts = {s: sum(v == s for v in manifest.values()) for s in ("train", "valid", "test")}
    assert counts == EmoMusic.expected_counts == {"train": 504, "valid": 115, "test": 125}
    text = emomusic.SONGS_MANIFEST.read_text(encoding="utf-8")
    assert text.startswith("song_id,split\n") and "\r" not in text
    assert EmoMusic().checksums(Path("/nowhere")) == {}


def test_split_derivation_equals_committed_manifest_and_jukemir():
    derived = {r["song_id"]: song_split(r["mediaeval2013_set"], r["artist"]) for r in refdata_rows()}
    assert derived == read_split_manifest()
    jukemir = {str(int(uid)): rec["split"] for uid, rec in jukemir_records().items()}
    assert derived == jukemir
    # train and valid share no (normalised) artist; test is exactly the evaluation set
    rows = refdata_rows()
    by_split = {s: {artist_key(r["artist"]) for r in rows if derived[r["song_id"]] == s} for s in ("train", "valid")}
    assert not by_split["train"] & by_split["valid"]
    assert {r["song_id"] for r in rows if r["mediaeval2013_set"] == "evaluation"} == {
        k for k, v in derived.items() if v == "test"}


def test_artist_normalisation():
    assert artist_key("  Vieux Farka Touré ") == "vieux farka tour"
    assert artist_key("The New\tMystikal  Troubadours") == "the new mystikal troubadours"
    assert artist_key("…And You Will Know Us") == "and you will know us"
    assert artist_key("Björn & Gorden") == artist_key("bjrn gorden")
    assert artist_split("Kevin MacLeod") == artist_split("kevin   macleod!") == "valid"  # song 4 is valid
    with pytest.raises(ValueError, match="MediaEval"):
        song_split("dev", "x")


# ------------------------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("text, seconds", [("0.48", 48.0), ("1.33", 93.0), ("0.2", 20.0), ("1", 60.0),
                                           ("2.05", 125.0), (" 1.3 ", 90.0)])
def test_minsec_is_minutes_and_seconds(text: str, seconds: float):
    assert parse_minsec(text) == seconds


@pytest.mark.parametrize("bad", ["1.75", "0.123", "a.10", "", "1.-3"])
def test_minsec_rejects_malformed(bad: str):
    with pytest.raises(ValueError, match="min.sec"):
        parse_minsec(bad)


def test_crlf_padded_and_bom_csv_is_read_clean(tmp_path):
    raw = "\ufeffsong_id, mean_arousal ,std_arousal\r\n2,3.1 ,0.99\r\n 3 ,\t3.5,1.8\r\n\r\n".encode("utf-8")
    (tmp_path / "x.csv").write_bytes(raw)
    rows = read_csv_rows(tmp_path / "x.csv")
    assert rows == [{"song_id": "2", "mean_arousal": "3.1", "std_arousal": "0.99"},
                    {"song_id": "3", "mean_arousal": "3.5", "std_arousal": "1.8"}]


def test_every_refdata_segment_is_45_seconds_and_jukemir_agrees():
    records = jukemir_records()
    for r in refdata_rows():
        start, end = parse_minsec(r["segment_start_minsec"]), parse_minsec(r["segment_end_minsec"])
        assert end - start == 45.0
        assert records[r["song_id"].zfill(4)]["clip"]["clip_offset"] == start


def test_published_format_round_trip(tmp_path):
    write_annotations(tmp_path)
    assert (tmp_path / "songs_info.csv").read_bytes().count(b"\r\n") == 745
    songs = read_songs(tmp_path)
    assert len(songs) == 744
    s2 = songs["2"]
    assert (s2.artist, s2.mediaeval_set, s2.segment_start, s2.arousal, s2.valence) == (
        "The New Mystikal Troubadours", "development", 48.0, 3.1, 3.0)
    assert all(not s.mediaeval_set.endswith("\r") for s in songs.values())


def test_wrong_files_are_refused_with_the_reason(tmp_path):
    rows = refdata_rows()
    (tmp_path / "deam").mkdir()
    write_annotations(tmp_path / "deam", rows[:3])
    (tmp_path / "deam" / "static_annotations.csv").write_text("id,valence_mean,valence_std,arousal_mean,arousal_std"
                                                              "\r\n2,3.1,0.94,3.0,0.63\r\n")
    with pytest.raises(ValueError, match="DEAM"):
        read_songs(tmp_path / "deam")
    bad = [dict(rows[0], segment_end_minsec="1.34"), *rows[1:3]]
    write_annotations(tmp_path / "seg", bad)
    with pytest.raises(ValueError, match="not the 45 s"):
        read_songs(tmp_path / "seg")

    # another release: an artist renamed so that a development song changes split
    dev = next(i for i, r in enumerate(rows) if r["song_id"] == "4")  # Kevin MacLeod, valid
    edited = [dict(r) for r in rows]
    edited[dev]["artist"] = "Kevin Mac Leod"
    assert artist_split("Kevin Mac Leod") == "train"
    write_annotations(tmp_path / "edit" / "emomusic" / "annotations", edited)
    with pytest.raises(ValueError, match="differs from the committed"):
        EmoMusic().tracks(tmp_path / "edit")


# ------------------------------------------------------------------------------------------------ targets
def test_targets_are_zscored_with_development_statistics(emo_root):
    task = EmoMusic()
    tracks = task.tracks(emo_root)
    assert len(tracks) == 744 and [t.track_id for t in tracks[:3]] == ["2", "3", "4"]
    assert {s: sum(t.split == s for t in tracks) for s in ("train", "valid", "test")} == task.expected_counts
    stats = task.target_statistics
    np.testing.assert_allclose(stats["arousal"], (4.756063, 1.386010), atol=5e-7)
    np.testing.assert_allclose(stats["valence"], (4.973865, 1.254618), atol=5e-7)
    y = task.target_array(tracks)
    assert y.shape == (744, 2) and y.dtype == np.float32
    dev = np.array([t.split != "test" for t in tracks])
    np.testing.assert_allclose(y[dev].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y[dev].std(axis=0), 1.0, atol=1e-5)
    records = jukemir_records()
    expected = np.array([records[t.track_id.zfill(4)]["y"] for t in tracks])
    np.testing.assert_allclose(np.array([t.target for t in tracks]), expected, atol=1e-9)
    assert tracks[0].path == emo_root / "emomusic" / "clips_45seconds" / "2.mp3"
    assert task.labels == ["arousal", "valence"] and task.task_type == "regression"


def test_probe_scale_r2_is_the_r2_on_the_published_targets(emo_root):
    """The tracks carry the published (development-z-scored) targets; the regression kind z-scores them again with
    train statistics for the probe. The R2 reported on the probe's scale must be the R2 of the same predictions
    mapped back to the published targets, and the two scales must be as close as the task's docstring says."""
    import torch
    from sklearn.metrics import r2_score

    from benchmark.evaluation import ClipEvaluator

    task = EmoMusic()
    tracks = task.tracks(emo_root)
    published = {s: task.target_array([t for t in tracks if t.split == s]) for s in ("train", "valid", "test")}
    probe = task.kind.probe_targets(published)  # what clip_level_data trains and scores on
    mean, std = published["train"].mean(axis=0), published["train"].std(axis=0)
    np.testing.assert_allclose(mean, [0.0120, 0.0179], atol=1e-4)  # arousal, valence
    np.testing.assert_allclose(std, [1.0047, 1.0059], atol=1e-4)
    np.testing.assert_allclose(probe["test"], (published["test"] - mean) / std, rtol=1e-5, atol=1e-6)

    # six window predictions per test song on the probe's scale, shrunk towards 0 and noisy
    rng = np.random.default_rng(0)
    n = len(probe["test"])
    window_track = np.repeat(np.arange(n), 6)
    rows = (0.6 * probe["test"][window_track] + rng.normal(0.0, 0.8, (len(window_track), 2))).astype(np.float32)
    reported = ClipEvaluator(task.kind, task.labels, window_track, probe["test"])(torch.from_numpy(rows)[None])[0]

    back = rows.astype(np.float64) * std + mean  # the same predictions on the published scale
    per_song = np.stack([back[window_track == i].mean(axis=0) for i in range(n)])
    on_published = r2_score(published["test"], per_song, multioutput="raw_values")
    assert reported["r2_arousal"] == pytest.approx(on_published[0], abs=1e-5)
    assert reported["r2_valence"] == pytest.approx(on_published[1], abs=1e-5)
    assert reported["r2"] == pytest.approx(on_published.mean(), abs=1e-5)
    assert 0.3 < reported["r2"] < 0.95  # a real score, not a degenerate 0 or 1
    # scored against the published targets WITHOUT mapping the predictions back, R2 would differ
    unmapped = np.stack([rows[window_track == i].mean(axis=0) for i in range(n)])
    assert abs(r2_score(published["test"], unmapped) - reported["r2"]) > 1e-3


# ------------------------------------------------------------------------------------------- end to end
def test_end_to_end_with_the_tiny_mert(emo_root, compose_config, tmp_path):
    from benchmark.runner import run

    manifest = read_split_manifest()
    assert all(manifest[sid] == split for split, ids in AUDIO_SONGS.items() for sid in ids)
    config = compose_config("task=emomusic", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                            f"data_root={emo_root}", "max_missing_fraction=1.0", "trainer.max_epochs=3")
    assert config["task"]["window_seconds"] == 5.0 and config["task"]["hop_seconds"] is None
    record = run(config, console=Console(quiet=True))
    assert record["split_sizes"] == {"train": 6, "valid": 3, "test": 3}
    assert {s: len(v) for s, v in record["skipped"].items()} == {"train": 498, "valid": 112, "test": 122}
    assert record["window"] == {"window": 5.0, "hop": 5.0, "min_fraction": 0.5}
    assert record["primary_metric"] == "r2" and record["task_type"] == "regression"
    for row in record["layers"]:
        for split in ("valid", "test"):
            scores = row[split]
            assert set(scores) == {"r2", "r2_arousal", "r2_valence"}
            assert all(np.isfinite(v) and v <= 1.0 for v in scores.values())
            assert scores["r2"] == pytest.approx((scores["r2_arousal"] + scores["r2_valence"]) / 2)
    assert record["dataset"]["task"] == "emomusic"
    assert np.isfinite(record["chance_level"]) and record["chance_level"] <= 0.0  # the train mean scores R2 <= 0


# ------------------------------------------------------------------------------------ missing, prepare
def test_missing_dataset_message_names_folder_layout_and_fetch(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["check", "task=emomusic", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "emomusic") in err
    assert "clips_45seconds/<song_id>.mp3" in err and "annotations/static_annotations.csv" in err
    assert "python -m benchmark prepare emomusic" in err
    (tmp_path / "emomusic").mkdir()  # the folder without its annotations
    with pytest.raises(DatasetMissingError, match="songs_info.csv"):
        EmoMusic().tracks(tmp_path)


def _tar(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_downloads_checks_and_unpacks_into_the_layout(tmp_path, monkeypatch, static_http_server, capsys):
    src, base = static_http_server
    write_annotations(src / "ann")
    ann = {n: (src / "ann" / n).read_bytes() for n in ("songs_info.csv", "static_annotations.csv")}
    ann_sha = _tar(src / "annotations.tar.gz", ann)  # CSVs at the top level, as published
    clips_sha = _tar(src / "clips_45sec.tar.gz",
                     {f"clips_45seconds/{sid}.mp3": b"ID3" for sid in read_split_manifest()})
    table = {
        "clips": dict(emomusic.ARCHIVES["clips"], url=f"{base}/clips_45sec.tar.gz", sha256=clips_sha),
        "annotations": dict(emomusic.ARCHIVES["annotations"], url=f"{base}/annotations.tar.gz",
                            sha256="0" * 64),
    }
    monkeypatch.setattr(emomusic, "ARCHIVES", table)
    root = tmp_path / "data"
    with pytest.raises(ChecksumMismatchError):
        EmoMusic().prepare(root)
    assert not (root / "emomusic" / "annotations").exists()
    table["annotations"]["url"] = f"{base}/gone.tar.gz"  # the host lost the file: manual steps, then the error
    with pytest.raises(OSError):
        EmoMusic().prepare(root)
    out = capsys.readouterr().out
    assert "Manual steps" in out and "annotations.tar.gz" in out and "clips_45seconds" in out
    table["annotations"]["url"] = f"{base}/annotations.tar.gz"
    table["annotations"]["sha256"] = ann_sha
    EmoMusic().prepare(root)
    folder = root / "emomusic"
    assert (folder / "annotations" / "songs_info.csv").read_bytes() == ann["songs_info.csv"]
    assert len(list((folder / "clips_45seconds").glob("*.mp3"))) == 744
    assert len(EmoMusic().tracks(root)) == 744
    for archive in src.glob("*.tar.gz"):
        archive.unlink()  # a second prepare finds everything in place and fetches nothing
    EmoMusic().prepare(root)
