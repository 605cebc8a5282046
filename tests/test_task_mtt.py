"""MagnaTagATune (tasks/mtt.py): the committed split, the tag list, reading annotations_final.csv as published,
an end-to-end run on a fixture in the real layout, the missing-dataset message and prepare()'s join + unzip.

Why these tests: the split and label order are facts the field reports numbers on, so the committed manifest is
rebuilt from jukemir's metadata and compared byte for byte, and the whole annotations file (reconstructed from
the same metadata, 25,863 rows) must give the committed top 50. The fixture uses real clip ids, real mp3 paths and
real tag rows; only the audio is synthetic.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

import benchmark.tasks.mtt as mtt
from benchmark.runner import run
from benchmark.tasks.base import DatasetMissingError
from benchmark.tasks.download import ChecksumMismatchError
from tests.conftest import FIXTURES, REFDATA

JUKEMIR_META = REFDATA / "jukemir" / "metadata" / "magnatagatune.json.gz"
LEE_TOP50 = REFDATA / "magnatagatune" / "jongpillee_MTAT_split" / "top50_tags.txt"

# The 188 tag columns of annotations_final.csv in the order of its header, as quoted by third-party READMEs
# (refdata keeps the tag sets, not the column order). The task reads columns by name; a test shuffles them.
CSV_TAG_COLUMNS = [
    "no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord", "female singing",
    "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals", "clarinet", "heavy", "silence", "beats",
    "men", "woodwind", "funky", "no strings", "chimes", "foreign", "no piano", "horns", "classical", "female",
    "no voices", "soft rock", "eerie", "spacey", "jazz", "guitar", "quiet", "no beat", "banjo", "electric", "solo",
    "violins", "folk", "female voice", "wind", "happy", "ambient", "new age", "synth", "funk", "no singing",
    "middle eastern", "trumpet", "percussion", "drum", "airy", "voice", "repetitive", "birds", "space", "strings",
    "bass", "harpsicord", "medieval", "male voice", "girl", "keyboard", "acoustic", "loud", "classic", "string",
    "drums", "electronic", "not classical", "chanting", "no violin", "not rock", "no guitar", "organ", "no vocal",
    "talking", "choral", "weird", "opera", "soprano", "fast", "acoustic guitar", "electric guitar", "male singer",
    "man singing", "classical guitar", "country", "violin", "electro", "reggae", "tribal", "dark", "male opera",
    "no vocals", "irish", "electronica", "horn", "operatic", "arabic", "lol", "low", "instrumental", "trance",
    "chant", "strange", "drone", "synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep",
    "fast beat", "industrial", "hard", "harp", "no flute", "jungle", "pop", "lute", "female vocal", "oboe",
    "mellow", "orchestral", "viola", "light", "echo", "piano", "celtic", "male vocals", "orchestra", "eastern",
    "old", "flutes", "punk", "spanish", "sad", "sax", "slow", "male", "blues", "vocal", "indian", "no singer",
    "scary", "india", "woman", "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy",
    "singing", "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house", "monks",
    "flute", "not opera", "not english", "oriental", "beat", "upbeat", "soft", "noise", "choir", "female singer",
    "rap", "metal", "hip hop", "quick", "water", "baroque", "women", "fiddle", "english",
]

# Real clips for the fixture: classical, guitar and techno clips plus tag-less ones in every split.
FIXTURE_CLIPS = {
    "train": [29, 51, 53, 56, 66, 105, 148, 170, 190, 219, 134, 172, 232, 295, 299, 25, 59, 61],
    "valid": [372, 3973, 3976, 199, 200, 202, 14, 293, 19],
    "test": [2, 6, 10, 32, 178, 188, 180, 181, 35],
}
TAGLESS = {25, 59, 61, 19, 35}
CORRUPT_ROW = 35644  # annotated, audio present in the fixture, but never a track


@functools.lru_cache(maxsize=1)
def jukemir() -> dict[str, Any]:
    with gzip.open(JUKEMIR_META, "rt", encoding="utf-8") as f:
        return json.load(f)


def write_annotations(path: Path, clip_ids: list[int], columns: list[str] = CSV_TAG_COLUMNS) -> None:
    """An annotations_final.csv as published: tab-separated, every field quoted, 0/1 per tag column."""
    meta = jukemir()
    lines = ["\t".join(f'"{c}"' for c in ["clip_id", *columns, "mp3_path"])]
    for cid in clip_ids:
        rec = meta[f"{cid:05d}"]
        on = set(rec["y_all"])
        fields = [str(cid), *("1" if t in on else "0" for t in columns), rec["extra"]["mp3_path"]]
        lines.append("\t".join(f'"{v}"' for v in fields))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def expected_target(cid: int) -> tuple[int, ...]:
    y = set(jukemir()[f"{cid:05d}"]["y"])
    return tuple(i for i, t in enumerate(mtt.MagnaTagATune.labels) if t in y)


def make_fixture(root: Path, with_audio: bool = True) -> Path:
    """``<root>/mtt`` with the fixture rows and 2.5 s synthetic 16 kHz mono mp3s at the real paths."""
    folder = root / "mtt"
    ids = [c for split in FIXTURE_CLIPS.values() for c in split] + [CORRUPT_ROW]
    write_annotations(folder / mtt.ANNOTATIONS, ids)
    if with_audio:
        sr, t = 16000, np.arange(int(2.5 * 16000)) / 16000
        for cid in ids:
            rng = np.random.default_rng(cid)
            tones = [np.sin(2 * np.pi * (110.0 * (1 + k)) * t) for k in expected_target(cid)[:3]]
            x = 0.3 * sum(tones, np.zeros_like(t)) / max(len(tones), 1) + 0.05 * rng.standard_normal(len(t))
            path = folder / jukemir()[f"{cid:05d}"]["extra"]["mp3_path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), sr, format="MP3")
    return folder


def build(**cfg: Any) -> mtt.MagnaTagATune:
    return mtt.MagnaTagATune({"name": "mtt", "kind": "mtt", **cfg})


# ----------------------------------------------------------------------------------------------------------------
# Committed split and tag list


def test_manifest_reproduces_the_published_split_sizes():
    clips = mtt.read_manifest()
    counts = Counter(c.split for c in clips)
    assert dict(counts) == {"train": 18706, "valid": 1825, "test": 5329} == mtt.MagnaTagATune.expected_counts
    assert all(mtt.FOLDER_SPLIT[c.mp3_path[0]] == c.split for c in clips)
    assert not {c.clip_id for c in clips} & mtt.CORRUPT_CLIP_IDS
    assert {c.mp3_path[0] for c in clips if c.split == "valid"} == {"c"}


def test_manifest_is_exactly_what_jukemir_metadata_gives(tmp_path):
    assert hashlib.sha256(JUKEMIR_META.read_bytes()).hexdigest() == (
        "9bab4d673c60a41ae75ed0f10a743d7a475d760c9d35b30c7b90e6a8c09501e0")
    rebuilt = tmp_path / "clips.csv"
    mtt.write_manifest(mtt.manifest_rows_from_jukemir(JUKEMIR_META), rebuilt)
    assert rebuilt.read_bytes() == mtt.CLIPS_FILE.read_bytes()
    readme = (mtt.MANIFEST_DIR / "README.md").read_text()
    for name in ("clips.csv", "top50_tags.txt"):
        assert hashlib.sha256((mtt.MANIFEST_DIR / name).read_bytes()).hexdigest() in readme


def test_a_manifest_listing_a_corrupt_clip_is_refused(tmp_path):
    bad = tmp_path / "clips.csv"
    mtt.write_manifest([mtt.ManifestClip("35644", "6/norine_braun-now_and_zen-08-gently-117-146.mp3", "train")], bad)
    with pytest.raises(ValueError, match="corrupt clip 35644"):
        mtt.read_manifest(bad)
    wrong = tmp_path / "wrong.csv"
    mtt.write_manifest([mtt.ManifestClip("2", "f/x.mp3", "train")], wrong)  # folder f is test
    with pytest.raises(ValueError, match="folder"):
        mtt.read_manifest(wrong)


def test_top50_tags_are_the_50_most_frequent_in_marble_order():
    labels = mtt.read_tag_list()
    assert labels == mtt.MagnaTagATune.labels and len(set(labels)) == 50
    meta = jukemir()
    assert set(labels) == {t for r in meta.values() if r.get("y") for t in r["y"]}
    counts = Counter(t for r in meta.values() if r.get("y_all") for t in r["y_all"])
    assert sum(1 for r in meta.values() if r.get("y_all") is not None) == mtt.PUBLISHED_ANNOTATION_ROWS
    freq = [counts[t] for t in labels]
    assert freq == sorted(freq, reverse=True)
    assert freq[0] == 4852 and freq[-1] == 490 > max(c for t, c in counts.items() if t not in labels)  # no tie at 50
    assert labels[47:49] == ["metal", "female voice"] and counts["metal"] == counts["female voice"] == 505
    lee = [line.strip() for line in LEE_TOP50.read_text().splitlines() if line.strip()]
    lee_spaced = [{"noVocals": "no vocals", "maleVocal": "male vocal", "noVocal": "no vocal", "newAge": "new age",
                   "maleVoice": "male voice", "femaleVocal": "female vocal", "noVoice": "no voice",
                   "femaleVoice": "female voice"}.get(t, t) for t in lee]
    lee_spaced[47], lee_spaced[48] = lee_spaced[48], lee_spaced[47]
    assert lee_spaced == labels  # Lee's order up to the documented 47/48 swap


# ----------------------------------------------------------------------------------------------------------------
# annotations_final.csv


@pytest.fixture(scope="module")
def full_annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The complete annotations_final.csv (all 25,863 rows), rebuilt from jukemir's y_all; no audio."""
    root = tmp_path_factory.mktemp("mtt_full")
    ids = sorted(int(k) for k, r in jukemir().items() if r.get("y_all") is not None)
    write_annotations(root / "mtt" / mtt.ANNOTATIONS, ids)
    return root


def test_the_complete_annotations_give_the_split_and_jukemir_labels(full_annotations, caplog):
    with caplog.at_level(logging.WARNING, logger="benchmark.tasks.mtt"):
        tracks = build().tracks(full_annotations)
    assert not [r for r in caplog.records if "cannot be verified" in r.getMessage()]  # strict check ran
    assert dict(Counter(t.split for t in tracks)) == {"train": 18706, "valid": 1825, "test": 5329}
    assert not {t.track_id for t in tracks} & mtt.CORRUPT_CLIP_IDS
    labels = mtt.MagnaTagATune.labels
    meta = jukemir()
    for t in tracks:
        assert {labels[i] for i in t.target} == set(meta[f"{int(t.track_id):05d}"]["y"])
        assert t.path == full_annotations / "mtt" / meta[f"{int(t.track_id):05d}"]["extra"]["mp3_path"]
    empty = Counter(t.split for t in tracks if not t.target)
    assert dict(empty) == {"train": 3459, "valid": 296, "test": 997}  # tag-less clips are kept
    ann = mtt.read_annotations(full_annotations / "mtt" / mtt.ANNOTATIONS)
    top = mtt.top_tags(ann)  # by frequency, ties in header order: that puts female voice before metal (Lee's order)
    assert set(top) == set(labels) and top[47:49] == labels[48:46:-1]
    assert [t for i, t in enumerate(top) if i not in (47, 48)] == [t for i, t in enumerate(labels) if i not in (47, 48)]
    y = build().target_array(tracks)
    assert y.shape == (25860, 50) and y.dtype == np.float32


def _swap_header(src: Path, dst: Path, a: str, b: str) -> None:
    head, rest = src.read_text(encoding="utf-8").split("\n", 1)
    cols = head.split("\t")
    i, j = cols.index(f'"{a}"'), cols.index(f'"{b}"')
    cols[i], cols[j] = cols[j], cols[i]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\t".join(cols) + "\n" + rest, encoding="utf-8")


def test_annotations_with_another_top50_are_refused(full_annotations, tmp_path):
    src = full_annotations / "mtt" / mtt.ANNOTATIONS
    _swap_header(src, tmp_path / "a" / "mtt" / mtt.ANNOTATIONS, "choral", "electro")  # 490 <-> 474 clips
    with pytest.raises(ValueError, match=r"50 most frequent tags differ.*electro \(490\).*choral \(474\)"):
        build().tracks(tmp_path / "a")
    _swap_header(src, tmp_path / "b" / "mtt" / mtt.ANNOTATIONS, "guitar", "choral")  # same set, wrong order
    with pytest.raises(ValueError, match="not by frequency"):
        build().tracks(tmp_path / "b")


def test_columns_are_read_by_name_and_bad_files_are_refused(tmp_path):
    ids = [c for split in FIXTURE_CLIPS.values() for c in split]
    write_annotations(tmp_path / "a" / "mtt" / mtt.ANNOTATIONS, ids)
    shuffled = list(np.random.default_rng(0).permutation(CSV_TAG_COLUMNS))
    write_annotations(tmp_path / "b" / "mtt" / mtt.ANNOTATIONS, ids, columns=shuffled)
    first = {t.track_id: t.target for t in build().tracks(tmp_path / "a") if t.target}
    second = {t.track_id: t.target for t in build().tracks(tmp_path / "b") if t.target}
    assert first == second == {str(c): expected_target(c) for c in ids if c not in TAGLESS}

    comma = tmp_path / "c" / "mtt" / mtt.ANNOTATIONS  # a comma-separated re-export is not the published format
    comma.parent.mkdir(parents=True)
    comma.write_text((tmp_path / "a" / "mtt" / mtt.ANNOTATIONS).read_text().replace("\t", ","))
    with pytest.raises(ValueError, match="tab-separated"):
        build().tracks(tmp_path / "c")

    stranger = tmp_path / "d" / "mtt" / mtt.ANNOTATIONS  # a row for a clip the dataset does not have
    stranger.parent.mkdir(parents=True)
    stranger.write_text((tmp_path / "a" / "mtt" / mtt.ANNOTATIONS).read_text().replace('"2"\t', '"999999"\t', 1))
    with pytest.raises(ValueError, match="999999"):
        build().tracks(tmp_path / "d")


def test_audio_without_an_annotation_row_is_refused(tmp_path):
    folder = make_fixture(tmp_path, with_audio=False)
    listed = {c for split in FIXTURE_CLIPS.values() for c in split}
    clip = next(c for c in mtt.read_manifest() if int(c.clip_id) not in listed)  # no row in the fixture
    orphan = folder / clip.mp3_path
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not checked")
    with pytest.raises(ValueError, match=rf"no row for 1 clip\(s\) whose audio is present \(e\.g\. {clip.clip_id}\)"):
        build().tracks(tmp_path)


def test_missing_dataset_gives_the_clear_message(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["check", "task=mtt", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert f"dataset not found in {tmp_path / 'mtt'}" in err
    assert "annotations_final.csv" in err and "<data_root>/mtt/0/ ... <data_root>/mtt/f/" in err
    assert "python -m benchmark prepare mtt" in err
    (tmp_path / "mtt").mkdir()  # the folder alone (e.g. data_root=datasets, where the manifest lives) is not data
    with pytest.raises(DatasetMissingError, match="expected layout"):
        build().tracks(tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# End to end


def test_fixture_runs_end_to_end_with_the_tiny_mert(compose_config, tmp_path, caplog):
    config = compose_config("task=mtt", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                            "trainer.max_epochs=3", "max_missing_fraction=1.0")
    make_fixture(Path(config["data_root"]))
    with caplog.at_level(logging.WARNING):
        record = run(config, console=Console(quiet=True))

    assert record["split_sizes"] == {s: len(ids) for s, ids in FIXTURE_CLIPS.items()}
    assert {s: len(ids) for s, ids in record["skipped"].items()} == {
        s: mtt.MagnaTagATune.expected_counts[s] - len(ids) for s, ids in FIXTURE_CLIPS.items()}
    skipped = {tid for ids in record["skipped"].values() for tid in ids}
    assert str(CORRUPT_ROW) not in skipped  # not missing: never listed, although its row and audio are there
    assert record["primary_metric"] == "roc_auc" and record["window"]["window"] == 30.0
    test_y = np.array([[i in expected_target(c) for i in range(50)] for c in FIXTURE_CLIPS["test"]])
    scorable = int(((test_y.sum(0) > 0) & (test_y.sum(0) < len(test_y))).sum())
    for row in record["layers"]:
        for split in ("valid", "test"):
            scores = row[split]
            assert set(scores) == {"roc_auc", "average_precision", "tags_scored"}
            assert 0.0 <= scores["roc_auc"] <= 1.0 and 0.0 <= scores["average_precision"] <= 1.0
        assert row["test"]["tags_scored"] == scorable < 50  # tags without positives are skipped, not fatal
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "left out of the macro ROC-AUC / AP" in messages
    assert "cannot be verified" in messages  # the 37-row fixture is a partial annotations file
    assert record["dataset"]["split"] == mtt.SPLIT_VERSION


# ----------------------------------------------------------------------------------------------------------------
# prepare()


def test_prepare_downloads_joins_the_parts_and_unzips(tmp_path, monkeypatch):
    root = tmp_path / "served"  # the "server": file:// URLs in place of the dataset's http:// ones
    root.mkdir()
    url = root.as_uri() + "/"
    members = {"0/a-0-29.mp3": b"A" * 5000, "c/b-0-29.mp3": b"B" * 7000, "f/c-30-59.mp3": bytes(range(256)) * 40}
    with zipfile.ZipFile(tmp_path / "whole.zip", "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    whole = (tmp_path / "whole.zip").read_bytes()
    cut = [0, len(whole) // 3, 2 * len(whole) // 3, len(whole)]
    table = {}
    for k, name in enumerate(mtt.AUDIO_PARTS):
        (root / name).write_bytes(whole[cut[k]:cut[k + 1]])
        table[name] = (url + name, hashlib.sha256(whole[cut[k]:cut[k + 1]]).hexdigest())
    write_annotations(root / mtt.ANNOTATIONS, [2, 6])
    table[mtt.ANNOTATIONS] = (url + mtt.ANNOTATIONS, hashlib.sha256((root / mtt.ANNOTATIONS).read_bytes()).hexdigest())
    monkeypatch.setattr(mtt, "SOURCES", table)

    data = tmp_path / "data"
    (data / "mtt").mkdir(parents=True)
    (data / "mtt" / "mp3.zip.joining").write_bytes(b"left by an interrupted join")
    build().prepare(data)
    folder = data / "mtt"
    for name, content in members.items():
        assert (folder / name).read_bytes() == content
    assert (folder / mtt.ANNOTATIONS).read_bytes() == (root / mtt.ANNOTATIONS).read_bytes()
    assert not (folder / mtt.JOINED_ARCHIVE).exists() and not (folder / "mp3.zip.joining").exists()
    assert all((folder / name).is_file() for name in mtt.AUDIO_PARTS)
    assert json.loads((folder / mtt.EXTRACTED_MARKER).read_text()) == {n: table[n][1] for n in mtt.AUDIO_PARTS}

    for name in mtt.AUDIO_PARTS:  # a rerun fetches nothing: the source no longer has the parts
        (root / name).unlink()
    (folder / "0" / "a-0-29.mp3").unlink()
    build().prepare(data)
    assert not (folder / "0" / "a-0-29.mp3").exists()  # marker: the audio is not unpacked again

    (folder / mtt.EXTRACTED_MARKER).unlink()  # without the marker the kept parts are joined and unpacked again
    build().prepare(data)
    assert (folder / "0" / "a-0-29.mp3").read_bytes() == members["0/a-0-29.mp3"]

    (folder / mtt.EXTRACTED_MARKER).unlink()
    (folder / "mp3.zip.002").write_bytes(b"truncated")  # a bad part is fetched again and checked
    (root / "mp3.zip.002").write_bytes(b"a different file")
    with pytest.raises(ChecksumMismatchError):
        build().prepare(data)
    assert not (folder / mtt.EXTRACTED_MARKER).exists()


def test_checksums_and_identity():
    task = build()
    assert task.checksums(Path("/d")) == {Path("/d/mtt/annotations_final.csv"): (
        "sha256", "99b94e95825d4fa576386a5367b9c96e0ec636e9f9c240aceb492f4728f68c3c")}
    ident = task.dataset_identity()
    assert ident["labels_sha256"] == hashlib.sha256(mtt.TAGS_FILE.read_bytes()).hexdigest()
    with pytest.warns(UserWarning, match="window_secs"):
        build(window_secs=10)
