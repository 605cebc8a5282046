"""Tests of the GTZAN genre task (tasks/gtzan.py) on the committed split lists and on fixtures in the real layout.

Why these tests: the split and label order must be exactly the published fault-filtered split (numbers are only
comparable on it), every split entry must have a published md5 so a corrupt copy is caught, the known-broken
``jazz.00054.wav`` of common copies must be skipped with a message naming it, a missing dataset must say where
and how to get it, and ``prepare`` must download, unpack and verify. Fixtures use the real file names with a few
seconds of synthetic audio whose content depends on the genre.
"""
from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from benchmark.cli import main as cli_main
from benchmark.runner import run
from benchmark.tasks import gtzan
from benchmark.tasks.base import DatasetMissingError, check_dataset
from benchmark.tasks.download import ChecksumMismatchError
from benchmark.tasks.registry import build_task
from tests.conftest import FIXTURES, REPO_ROOT

SR = 22050
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
# The published table (refdata gtzan_ff_split/PROVENANCE.md), per genre in the order above.
PUBLISHED = {
    "train": [46, 48, 45, 42, 47, 43, 44, 41, 43, 44],
    "valid": [23, 20, 23, 22, 18, 17, 20, 13, 17, 24],
    "test": [31, 31, 30, 29, 27, 27, 27, 30, 26, 32],
}
# sha256 of the dnn-mgr lists at bdad579e (jukemir pins the same values).
LIST_SHA256 = {
    "train": "2b04966cef1486f1a7767b74271533fa23e220388db804a1937835e1fc4fa3fa",
    "valid": "f8fbee7c52397a0e0f3a91dc54fedecb2e27f5bdc9a9daeab8cb10d077e26956",
    "test": "09cafa6a89ce0a27f30ed250d56ecb4d03c22fffb5a693f96c7ae655ee02ac72",
}
# Fixture genres: three audibly different synthetic "styles" (see _genre_audio).
FIXTURE_GENRES = ("blues", "classical", "metal")


@pytest.fixture(autouse=True)
def _private_hash_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests of fixture files go to a sidecar in tmp, not the user's cache."""
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))


def _task() -> gtzan.GTZAN:
    import yaml

    task = build_task(yaml.safe_load((REPO_ROOT / "configs" / "task" / "gtzan.yaml").read_text()))
    assert isinstance(task, gtzan.GTZAN)
    return task


def _genre_audio(genre: str, index: int, seconds: float = 2.0) -> np.ndarray:
    """A clip whose pitch, brightness and pulse depend on the genre, varying a little per file."""
    rng = np.random.default_rng(1000 * GENRES.index(genre) + index)
    t = np.arange(int(seconds * SR)) / SR
    g = GENRES.index(genre)
    f0 = 110.0 * 2 ** (g / 3) * rng.uniform(0.97, 1.03)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k ** (2.0 - 0.15 * g) for k in range(1, 6))
    pulse = (np.sin(2 * np.pi * (1.5 + g) * t) > 0.6) * rng.standard_normal(t.size) * 0.3 * (g % 2)
    x = tone + pulse
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def _write_fixture(data_root: Path, per_split: dict[str, int]) -> dict[str, list[str]]:
    """Write the first ``n`` entries of each fixture genre per split, as 16-bit 22.05 kHz mono WAV."""
    written: dict[str, list[str]] = {}
    lists = gtzan.read_split_lists()
    for k, (split, n) in enumerate(per_split.items()):
        written[split] = []
        for genre in FIXTURE_GENRES:
            for i, entry in enumerate([e for e in lists[split] if e.startswith(genre + "/")][:n]):
                path = gtzan.gtzan_audio_path(data_root, entry)
                path.parent.mkdir(parents=True, exist_ok=True)
                # a seed per split: the same audio in two splits is refused by the protocol checks
                sf.write(path, _genre_audio(genre, 100 * k + i + 10 * len(written[split])), SR, subtype="PCM_16")
                written[split].append(entry)
    return written


def _fixture_md5s(data_root: Path, entries: list[str]) -> dict[str, str]:
    return {e: hashlib.md5(gtzan.gtzan_audio_path(data_root, e).read_bytes()).hexdigest() for e in entries}


# -- the committed split and labels ------------------------------------------------------------------------------
def test_split_lists_are_the_published_fault_filtered_split() -> None:
    for split, sha in LIST_SHA256.items():
        data = (REPO_ROOT / "datasets" / "gtzan" / f"{split}_filtered.txt").read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha
    lists = gtzan.read_split_lists()
    assert {s: len(v) for s, v in lists.items()} == {"train": 443, "valid": 197, "test": 290}
    for split, counts in PUBLISHED.items():
        by_genre = Counter(e.split("/")[0] for e in lists[split])
        assert [by_genre[g] for g in GENRES] == counts, split
    everything = [e for v in lists.values() for e in v]
    assert len(set(everything)) == 930  # disjoint
    assert lists["train"][0] == "blues/blues.00029.wav"
    assert "jazz/jazz.00054.wav" in lists["train"]
    lists["train"].clear()  # callers get a copy
    assert len(gtzan.read_split_lists()["train"]) == 443


def test_labels_targets_and_track_ids(tmp_path: Path) -> None:
    task = _task()
    assert gtzan.GTZAN_GENRES == GENRES == task.labels
    assert task.task_type == "multiclass" and task.level == "clip"
    assert task.expected_counts == {"train": 443, "valid": 197, "test": 290}
    (tmp_path / "gtzan" / "genres").mkdir(parents=True)
    tracks = task.tracks(tmp_path)
    assert len(tracks) == 930
    for split, counts in PUBLISHED.items():
        y = task.target_array([t for t in tracks if t.split == split])
        assert np.bincount(y, minlength=10).tolist() == counts
    first = tracks[0]
    assert (first.track_id, first.split, first.target) == ("blues.00029", "train", 0)
    assert first.path == tmp_path / "gtzan" / "genres" / "blues" / "blues.00029.wav"
    rock = next(t for t in tracks if t.track_id == "rock.00054")
    assert (rock.split, rock.target, GENRES[rock.target]) == ("valid", 9, "rock")
    assert len({t.track_id for t in tracks}) == 930
    identity = task.dataset_identity()
    assert identity["labels"] == GENRES and "bdad579e" in identity["split"]


def test_audio_path_helper_refuses_malformed_entries(tmp_path: Path) -> None:
    assert gtzan.gtzan_audio_path(tmp_path, "blues/blues.00029.wav") == \
        tmp_path / "gtzan" / "genres" / "blues" / "blues.00029.wav"
    for bad in ("blues/jazz.00029.wav", "polka/polka.00001.wav", "../blues/blues.00029.wav", "blues.00029.wav",
                "blues/blues.29.wav", "blues/blues.00029.au"):
        with pytest.raises(ValueError):
            gtzan.gtzan_audio_path(tmp_path, bad)


def test_md5_table_covers_every_split_entry(tmp_path: Path) -> None:
    table = gtzan.published_md5()
    assert len(table) == 1000
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in table.values())
    entries = [e for v in gtzan.read_split_lists().values() for e in v]
    assert all(e in table for e in entries)
    assert table["jazz/jazz.00054.wav"] == "8f0ab76fff2d2c6bc80eb9c9362318ca"  # refdata PROVENANCE
    assert table["blues/blues.00000.wav"] == "b462fa6a82a35d00940fe251f11447e5"  # mirdata index
    sums = _task().checksums(tmp_path)
    assert sums[tmp_path / "gtzan" / "genres" / "jazz" / "jazz.00054.wav"] == \
        ("md5", "8f0ab76fff2d2c6bc80eb9c9362318ca")
    assert len(sums) == 1000


def test_config_window_is_whole_clips() -> None:
    import yaml

    cfg = yaml.safe_load((REPO_ROOT / "configs" / "task" / "gtzan.yaml").read_text())
    assert (cfg["name"], cfg["kind"], cfg["window_seconds"], cfg["hop_seconds"], cfg["window_min_fraction"]) == \
        ("gtzan", "gtzan", 30.0, None, 0.5)


# -- runs on fixtures -------------------------------------------------------------------------------------------
def test_end_to_end_with_the_tiny_mert_fixture(compose_config, tmp_path: Path) -> None:
    written = _write_fixture(tmp_path / "data", {"train": 4, "valid": 2, "test": 2})
    config = compose_config("task=gtzan", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                            "max_missing_fraction=1.0", "verify_checksums=false", "trainer.max_epochs=5")
    record = run(config, console=Console(quiet=True))
    assert record["split_sizes"] == {"train": 12, "valid": 6, "test": 6}
    assert {s: len(v) for s, v in record["skipped"].items()} == {"train": 431, "valid": 191, "test": 284}
    assert not set(record["skipped"]["train"]) & {gtzan.track_id_of(e) for e in written["train"]}
    assert record["primary_metric"] == "accuracy" and record["task_type"] == "multiclass"
    assert record["window"]["window"] == 30.0  # each 2 s clip is one window
    assert record["dataset"]["labels"] == GENRES
    assert [row["name"] for row in record["layers"]] == ["0", "1", "2", "weighted_sum"]
    for row in record["layers"]:
        for split in ("valid", "test"):
            assert 0.0 <= row[split]["accuracy"] <= 1.0
    assert record["timings"]["encoder_forward_calls"] > 0


def test_broken_jazz_00054_is_skipped_with_a_warning_naming_it(compose_config, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    data = tmp_path / "data"
    written = _write_fixture(data, {"train": 4, "valid": 2, "test": 2})
    broken = gtzan.gtzan_audio_path(data, "jazz/jazz.00054.wav")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"<!DOCTYPE html> not a RIFF file " * 40)
    # Treat the synthetic files as the published ones, so that only jazz.00054 fails its md5.
    entries = [e for v in written.values() for e in v]
    table = {**gtzan.published_md5(), **_fixture_md5s(data, entries)}
    monkeypatch.setattr(gtzan, "published_md5", lambda: table)

    config = compose_config("task=gtzan", "model=mfcc", "max_missing_fraction=1.0", "trainer.max_epochs=2")
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.gtzan"):
        record = run(config, console=Console(quiet=True))
    assert "jazz.00054" in record["skipped"]["train"]
    assert record["split_sizes"] == {"train": 12, "valid": 6, "test": 6}
    message = " ".join(r.getMessage() for r in caplog.records if r.name == "benchmark.tasks.gtzan")
    assert "jazz.00054" in message and "cannot be decoded" in message and "8f0ab76fff2d2c6bc80eb9c9362318ca" in message
    assert "Kaggle" in message

    # A good jazz.00054 (its md5 is the published one) is used, with no warning.
    caplog.clear()
    sf.write(broken, _genre_audio("jazz", 0), SR, subtype="PCM_16")
    table["jazz/jazz.00054.wav"] = _fixture_md5s(data, ["jazz/jazz.00054.wav"])["jazz/jazz.00054.wav"]
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.gtzan"):
        assert gtzan.warn_known_faults(data) == []
        tracks = _task().tracks(data)
    assert not [r for r in caplog.records if r.name == "benchmark.tasks.gtzan"]
    report = check_dataset(_task(), tracks, data)
    assert not report.bad_checksums and report.present("train") == 13


def test_decodable_copy_with_a_wrong_md5_is_named_too(tmp_path: Path, caplog) -> None:
    path = gtzan.gtzan_audio_path(tmp_path, "jazz/jazz.00054.wav")
    path.parent.mkdir(parents=True)
    sf.write(path, _genre_audio("jazz", 0), SR, subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.gtzan"):
        assert gtzan.warn_known_faults(tmp_path) == ["jazz/jazz.00054.wav"]
    message = caplog.records[-1].getMessage()
    assert "differs from the published 8f0ab76fff2d2c6bc80eb9c9362318ca" in message
    assert "cannot be decoded" not in message


# -- missing or partial data: check and messages ----------------------------------------------------------------
def test_missing_dataset_gives_the_clear_message(tmp_path: Path, capsys) -> None:
    with pytest.raises(DatasetMissingError) as exc:
        _task().tracks(tmp_path)
    text = str(exc.value)
    assert str(tmp_path / "gtzan" / "genres") in text
    assert "genres/blues/blues.00000.wav" in text and "python -m benchmark prepare gtzan" in text

    assert cli_main(["check", "task=gtzan", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "gtzan" / "genres") in err and "python -m benchmark prepare gtzan" in err

    (tmp_path / "gtzan" / "Data" / "genres_original").mkdir(parents=True)  # the Kaggle layout
    with pytest.raises(DatasetMissingError, match="Kaggle redistribution"):
        _task().tracks(tmp_path)


def test_check_on_a_partial_copy_lists_missing_files(tmp_path: Path, capsys) -> None:
    _write_fixture(tmp_path, {"train": 1, "valid": 1, "test": 1})
    code = cli_main(["check", "task=gtzan", f"data_root={tmp_path}", "verify_checksums=false"])
    out = capsys.readouterr().out
    assert code == 1
    assert "train 3 of 443 tracks present (expected 443)" in out
    assert "test  3 of 290 tracks present (expected 290)" in out
    assert "missing: blues.00030" in out  # blues.00029 is present (first train entry), the next is not
    assert "INCOMPLETE" in out

    # With checksums on, the synthetic files fail the published md5s and are listed as such.
    assert cli_main(["check", "task=gtzan", f"data_root={tmp_path}"]) == 1
    assert "checksum mismatch:" in capsys.readouterr().out


# -- prepare ----------------------------------------------------------------------------------------------------
def _archive(path: Path, entries: list[str]) -> dict[str, str]:
    """A genres.tar.gz with ``entries`` (tiny WAVs) under ``genres/``; returns their md5s."""
    md5s = {}
    with tarfile.open(path, "w:gz") as tar:
        for i, entry in enumerate(entries):
            buf = io.BytesIO()
            sf.write(buf, np.full(32, (i % 100) / 200, dtype=np.float32), SR, format="WAV", subtype="PCM_16")
            data = buf.getvalue()
            md5s[entry] = hashlib.md5(data).hexdigest()
            info = tarfile.TarInfo(f"genres/{entry}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return md5s


def test_prepare_downloads_unpacks_and_verifies(static_http_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys) -> None:
    folder, url = static_http_server
    source = folder / "genres.tar.gz"
    md5s = _archive(source, sorted(gtzan.published_md5()))  # all 1,000 files
    monkeypatch.setattr(gtzan, "ARCHIVE_URL", f"{url}/genres.tar.gz")
    monkeypatch.setattr(gtzan, "ARCHIVE_MD5", hashlib.md5(source.read_bytes()).hexdigest())
    monkeypatch.setattr(gtzan, "published_md5", lambda: md5s)
    data = tmp_path / "data"
    task = _task()

    task.prepare(data)
    out = capsys.readouterr().out
    assert "downloading" in out and "unpacking" in out and "OK" in out and "ready" in out
    assert (data / "gtzan" / "genres.tar.gz").read_bytes() == source.read_bytes()
    assert len(list((data / "gtzan" / "genres").glob("*/*.wav"))) == 1000
    assert check_dataset(task, task.tracks(data), data).complete

    source.unlink()  # from now on the server answers 404: a second prepare must need no download
    task.prepare(data)
    assert "nothing to do" in capsys.readouterr().out

    # A damaged file: prepare re-extracts from the kept archive (no download) and so repairs it.
    gtzan.gtzan_audio_path(data, "rock/rock.00054.wav").write_bytes(b"junk")
    task.prepare(data)
    out = capsys.readouterr().out
    assert "found" in out and "ready" in out
    assert check_dataset(task, task.tracks(data), data).complete


def test_prepare_refuses_a_wrong_archive_and_reports_an_incomplete_one(static_http_server, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, url = static_http_server
    source = folder / "genres.tar.gz"
    md5s = _archive(source, ["blues/blues.00029.wav", "rock/rock.00054.wav"])
    monkeypatch.setattr(gtzan, "ARCHIVE_URL", f"{url}/genres.tar.gz")
    monkeypatch.setattr(gtzan, "published_md5", lambda: md5s)
    task = _task()

    monkeypatch.setattr(gtzan, "ARCHIVE_MD5", "0" * 32)
    with pytest.raises(ChecksumMismatchError):
        task.prepare(tmp_path / "data")
    assert not (tmp_path / "data" / "gtzan" / "genres.tar.gz").exists()
    assert not (tmp_path / "data" / "gtzan" / "genres").exists()

    monkeypatch.setattr(gtzan, "ARCHIVE_MD5", hashlib.md5(source.read_bytes()).hexdigest())
    with pytest.raises(RuntimeError, match="did not give the expected dataset"):
        task.prepare(tmp_path / "data")
    assert gtzan.gtzan_audio_path(tmp_path / "data", "rock/rock.00054.wav").is_file()

    monkeypatch.setattr(gtzan, "ARCHIVE_URL", f"{url}/nowhere.tar.gz")  # 404
    with pytest.raises(RuntimeError, match="could not download") as exc:
        task.prepare(tmp_path / "other")
    assert "genres/blues/blues.00000.wav" in str(exc.value)
