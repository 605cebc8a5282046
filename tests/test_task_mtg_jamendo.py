"""MTG-Jamendo (tasks/mtg_jamendo.py): the committed split-0 files and what they must satisfy, the label order, the
shared audio of the four tasks, MARBLE's windowing, the messages for a missing dataset or a malformed split file,
``check`` on a partial copy, ``prepare`` on locally built archives, and an end-to-end run on a fixture.

Why these tests: the split counts, the artist-disjointness and the tag order are facts numbers are reported on, so
they are checked on the committed files themselves (which must be the published bytes); the four tasks share one
feature cache, which is only right if every subset's track has the same path and split as the shared item. The
fixture uses real track ids at their real paths with synthetic audio (tests/fixtures/mtg_jamendo/make.py).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

import benchmark.tasks.mtg_jamendo as mtg
from benchmark.audio import WindowSpec, load_audio, window_bounds
from benchmark.cli import main as cli_main
from benchmark.resources import config_file_values
from benchmark.run_checks import window_spec
from benchmark.tasks.base import SPLITS, DatasetMissingError, SharedAudio
from benchmark.tasks.registry import build_task
from tests.conftest import FIXTURES, REPO_ROOT
from tests.fixtures.mtg_jamendo.make import FIXTURE_SECONDS, FIXTURE_TRACKS, FIXTURE_WINDOWS, write_fixture

TASKS = ("mtg_top50", "mtg_genre", "mtg_moodtheme", "mtg_instrument")
COUNTS = {
    "mtg_top50": ({"train": 32136, "valid": 10888, "test": 11356}, 50),
    "mtg_genre": ({"train": 32572, "valid": 11043, "test": 11479}, 87),
    "mtg_moodtheme": ({"train": 9949, "valid": 3802, "test": 4231}, 56),
    "mtg_instrument": ({"train": 14395, "valid": 5466, "test": 5115}, 40),
}
COMMITTED_SPLITS = mtg.SPLIT_DIR
UNION = {"train": 32859, "valid": 11101, "test": 11565}
# sha256 of each committed split file (gzip) and of its content after gunzip (= the upstream file at 1b4fa8c3).
SPLIT_SHA256 = {
    "autotagging_genre-test": ("436b7298bffafa2618129c84235e1bac1975c26f160e2ea86cb6efdfb12f7f7d",
                               "cf917388eebfa7d17d363c2fca037e2379ac027e31aa6dbe92e8dbf409ac5098"),
    "autotagging_genre-train": ("24e70f744779f51c77e0df3e5532b3d74f396046aa4241e95391bed372905d42",
                                "c1cddb195ef94a07e67e227bf38e2a79389c1820950702b8c8894a2096f21e54"),
    "autotagging_genre-validation": ("ed1afa038722cdcdc5ac1beaa63c3fbeaa7586871590c04f8606da1b19f832b2",
                                     "3e203b4c573db6ec63a06c7066cf678dcf673a68ad5694c8fed22637c270dbcf"),
    "autotagging_instrument-test": ("3a21c00ebc6041e1807df86b6a630c91116864986f56a5adbcb806be1d6c48fd",
                                    "8c1ab86f3212b6484106baf2e78f70dd5520b917607487ac98999adbd5d7ab1a"),
    "autotagging_instrument-train": ("488eb189527e3f1b534ed253ee7ff3b20951714ef77bdcdf80489dfa22d399a2",
                                     "f844a85f0b40bb31a5d5b448ddfc10a68d7b38ecc760673d23df2bd6e7ca0f4c"),
    "autotagging_instrument-validation": ("9e0b3827751fbbcae98006268b776f4542994c4201f40b9a96e0a42566da8b37",
                                          "a5060020013ac5ba65c6470ee83fc2a9785db1fe554b55065de08aa9b0cca70d"),
    "autotagging_moodtheme-test": ("69e4789f6ca3a96ab3e99b51282bf101f7d1a62ba44067d11bb7827a14a8aaaa",
                                   "4341b5586bb3e5a80a882ce9ef33cb8b1bdaa7df856246ecc5de188dfe1cf394"),
    "autotagging_moodtheme-train": ("5e652fbb9f78b25ba049100c9f45b7ab5b3975ef7026933c6786f43ad9c9823a",
                                    "e5e9e798364b34bd241b773e5011809b24429edf471f27cf21dd8181077ba2d4"),
    "autotagging_moodtheme-validation": ("39ba0268508ee5655a8bf5edbb8b94e97f741ddd6464577c291e46cfb83bbd03",
                                         "ecaa279367153476884d84d686479e566234cef1814bd6892a8755ba0a550dbf"),
    "autotagging_top50tags-test": ("94813e5e9009b953172ad3f521da275e4ad1cc05c6e4f09aff9ac203e8dc8054",
                                   "3ede06a35e6cb27e1dbe8cfc84708a607622e30e5cd0a7199fce6c081124bc35"),
    "autotagging_top50tags-train": ("1d9d2d2571ad34256dc8e1dbdeb7421f5e6d338742cf97e372d72470a0e225f5",
                                    "6dee445ddd1901286184c2059d3d5eef7486f083ae80de9011705f852a850dde"),
    "autotagging_top50tags-validation": ("a49ef14cb0c53d4a2fa14bf305d036872f9f0fbc430a79f52481909c72b737d3",
                                         "4f5f0f0a7662f523b45727476f67d799d6e98151b2c585a8e94e19d980ad93c1"),
}
OTHER_SHA256 = {
    "download/raw_30s_audio-low_sha256_tars.txt": "9c28e6090fac7fae7274296622e8fc8b6e905672c18707ac02c8be716d4623c3",
    "tags/top50.txt": "b682c25c732a52e553b238f6dc71e0015333e03c50a5f73ca7d2e225b0bf1b44",
    "tags/moodtheme_split.txt": "68797d2f5164d78aafb641a6575f6ba68723293a715a91a8166a7b8ec19af169",
    "DERIVED_marble_label_order.tsv": "fb6e14783c9e6ee447cf098acb77b6b88d5c3f10f350a2d30716f52ade7e2e7f",
}


def _config(name: str) -> dict:
    """The task config file's own keys (its ``defaults:`` list, which names its schema, left out)."""
    return config_file_values(REPO_ROOT / "configs" / "task" / f"{name}.yaml")


def _task(name: str = "mtg_top50") -> mtg.MTGJamendoTask:
    task = build_task(_config(name))
    assert isinstance(task, mtg.MTGJamendoTask) and task.name == name
    return task


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def audio_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root that counts as a copy (one audio folder, no files): tracks built on it are cached per module."""
    root = tmp_path_factory.mktemp("mtg_root")
    (root / "mtg_jamendo" / "41").mkdir(parents=True)
    return root


@pytest.fixture(autouse=True)
def _private_hash_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests of fixture files go to a sidecar in tmp, not the user's cache."""
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))


# ----------------------------------------------------------------------------------------------------------------
# The committed files


def test_committed_files_are_the_published_bytes():
    readme = (mtg.MANIFEST_DIR / "README.md").read_text(encoding="utf-8")
    assert "CC BY-NC-SA 4.0" in readme and "1b4fa8c32e076c73b5175c1703ae805b4109309d" in readme
    for stem, (gz_sha, content_sha) in SPLIT_SHA256.items():
        path = mtg.SPLIT_DIR / f"{stem}.tsv.gz"
        assert _sha256(path) == gz_sha and gz_sha in readme, stem
        assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == content_sha, stem
    for name, sha in OTHER_SHA256.items():
        assert _sha256(mtg.MANIFEST_DIR / name) == sha and sha in readme, name
    committed = {p.relative_to(mtg.MANIFEST_DIR).as_posix() for p in mtg.MANIFEST_DIR.rglob("*") if p.is_file()}
    assert {f"splits/split-0/{s}.tsv.gz" for s in SPLIT_SHA256} | set(OTHER_SHA256) | {"README.md"} <= committed
    assert len(mtg.ARCHIVES) == 100 and mtg.ARCHIVES["raw_30s_audio-low-00.tar"].startswith("c89826f7fa27")


@pytest.mark.parametrize("name", TASKS)
def test_split_counts_labels_and_expected_counts(name):
    counts, num_tags = COUNTS[name]
    rows = mtg.subset_rows(name)
    assert {s: len(rows[s]) for s in SPLITS} == counts == _task(name).expected_counts
    task = _task(name)
    assert task.task_type == "multilabel" and task.num_outputs == num_tags == len(set(task.labels))
    # every tag has positives in all three splits, and every track has at least one tag
    for split in SPLITS:
        assert {t for row in rows[split] for t in row.tags} == set(task.labels), split
        assert all(row.tags for row in rows[split])


def test_label_order_is_marbles_first_appearance_and_the_published_tag_lists():
    order = mtg.read_label_order()
    assert {k: len(v) for k, v in order.items()} == {"MTGTop50": 50, "MTGGenre": 87, "MTGMood": 56,
                                                     "MTGInstrument": 40}
    for name, subset in mtg.SUBSETS.items():
        first_seen: list[str] = []
        for split in SPLITS:
            for row in mtg.subset_rows(name)[split]:
                first_seen.extend(t for t in row.tags if t not in first_seen)
        assert first_seen == list(order[subset.marble]) == _task(name).labels, name
    assert order["MTGTop50"][:4] == ("genre---rock", "genre---pop", "genre---classical", "instrument---voice")
    top50 = (mtg.MANIFEST_DIR / "tags" / "top50.txt").read_text().split()
    assert sorted(order["MTGTop50"]) == top50
    mood = (mtg.MANIFEST_DIR / "tags" / "moodtheme_split.txt").read_text().split()
    assert sorted(order["MTGMood"]) == mood
    assert all(t.startswith("genre---") for t in order["MTGGenre"])
    assert all(t.startswith("instrument---") for t in order["MTGInstrument"])


@pytest.mark.parametrize("name", TASKS)
def test_no_artist_is_in_two_splits(name):
    rows = mtg.subset_rows(name)
    artists = {s: {row.artist_id for row in rows[s]} for s in SPLITS}
    assert not artists["train"] & artists["valid"]
    assert not artists["train"] & artists["test"]
    assert not artists["valid"] & artists["test"]


def test_union_has_one_split_per_track_and_the_published_count():
    split_of: dict[str, str] = {}
    for name in TASKS:
        for split, rows in mtg.subset_rows(name).items():
            for row in rows:
                assert split_of.setdefault(row.track_id, split) == split, (name, row.track_id)
    union = mtg.union_rows()
    assert dict(Counter(split for _, split in union)) == UNION == mtg.UNION_COUNTS
    assert len(union) == 55525 == len(split_of)
    assert [row.track_id for row, _ in union] == sorted(split_of)
    artists = {s: {row.artist_id for row, split in union if split == s} for s in SPLITS}
    assert not (artists["train"] & artists["valid"] or artists["train"] & artists["test"]
                or artists["valid"] & artists["test"])


# ----------------------------------------------------------------------------------------------------------------
# Tracks, targets and the shared audio


def test_tracks_have_real_paths_and_marble_targets(audio_root):
    tracks = _task().tracks(audio_root)
    assert Counter(t.split for t in tracks) == COUNTS["mtg_top50"][0]
    first = tracks[0]
    assert first.track_id == "track_0000241" and first.split == "train"
    assert first.path == audio_root / "mtg_jamendo" / "41" / "241.low.mp3"
    assert first.target == (0,) and _task().labels[0] == "genre---rock"
    assert (first.offset, first.duration) == (0.0, None)
    y = _task().target_array(tracks)
    assert y.shape == (54380, 50) and y.sum() == 94953 + 37140 + 34878  # tag positives train / valid / test
    row = next(r for r in mtg.subset_rows("mtg_instrument")["test"] if len(r.tags) > 2)
    track = next(t for t in _task("mtg_instrument").tracks(audio_root) if t.track_id == row.track_id)
    assert [_task("mtg_instrument").labels[i] for i in track.target] == sorted(row.tags, key=_task(
        "mtg_instrument").labels.index) and list(track.target) == sorted(track.target)


def test_all_four_tasks_name_the_same_shared_audio(audio_root):
    shared = [_task(name).shared_audio(audio_root) for name in TASKS]
    assert all(isinstance(s, SharedAudio) for s in shared)
    assert all(s == shared[0] for s in shared[1:])
    audio = shared[0]
    assert audio.identity == {"dataset": "mtg_jamendo", "audio": "raw_30s audio-low", "split": "split-0 autotagging"}
    assert len(audio.tracks) == 55525 and [t.track_id for t in audio.tracks] == sorted(t.track_id for t in audio.tracks)
    assert Counter(t.split for t in audio.tracks) == UNION
    items = {(t.track_id, t.path, t.offset, t.duration, t.split) for t in audio.tracks}
    for name in TASKS:
        assert {(t.track_id, t.path, t.offset, t.duration, t.split) for t in _task(name).tracks(audio_root)} <= items
    assert shared[0].identity is not shared[1].identity  # a caller editing its copy changes no other task's
    identities = [_task(name).dataset_identity() for name in TASKS]
    assert len({i["split_sha256"] for i in identities}) == 4 and len({i["task"] for i in identities}) == 4


def test_config_windows_keep_a_final_second_and_drop_less():
    for name in TASKS:
        cfg = _config(name)
        assert (cfg["name"], cfg["kind"], cfg["window_seconds"], cfg["hop_seconds"]) == (name, name, 30.0, 30.0)
        spec = window_spec(cfg, encoder=None)
        assert spec == WindowSpec(30.0, 30.0, 0.0333333333)
        for sr in (16000, 22050, 24000, 44100):
            assert len(window_bounds(61 * sr, sr, spec)) == 3  # 30 + 30 + a kept 1.0 s window
            assert window_bounds(61 * sr, sr, spec)[-1] == (60 * sr, 61 * sr)
            assert len(window_bounds(int(60.99 * sr), sr, spec)) == 2  # a 0.99 s tail is dropped
            assert len(window_bounds(30 * sr, sr, spec)) == 1 and len(window_bounds(95 * sr, sr, spec)) == 4
            assert len(window_bounds(20 * sr, sr, spec)) == 1  # the first window is always kept


def test_unknown_config_keys_are_warned_about():
    with pytest.warns(UserWarning, match="window_secs"):
        mtg.MTGGenre({"name": "mtg_genre", "kind": "mtg_genre", "window_secs": 10})


# ----------------------------------------------------------------------------------------------------------------
# Messages: a missing dataset, a malformed split file


def test_missing_dataset_gives_the_clear_message(tmp_path, capsys):
    with pytest.raises(DatasetMissingError) as exc:
        _task("mtg_moodtheme").tracks(tmp_path)
    text = str(exc.value)
    assert f"dataset not found in {tmp_path / 'mtg_jamendo'}" in text
    assert "41/241.low.mp3" in text and "raw_30s_audio-low-00.tar" in text and "156 GB" in text
    assert "python -m benchmark prepare mtg_moodtheme" in text and "download.py --dataset raw_30s" in text
    assert cli_main(["check", "task=mtg_top50", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "dataset not found" in err and "python -m benchmark prepare mtg_top50" in err and "Traceback" not in err
    # the folder with only the committed split files (data_root=datasets) is not a copy of the audio
    shutil.copytree(mtg.MANIFEST_DIR / "tags", tmp_path / "mtg_jamendo" / "tags")
    with pytest.raises(DatasetMissingError, match="expected layout"):
        _task().tracks(tmp_path)


def _copy_splits(dest: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the committed split files that the tasks read instead (the parse caches are keyed by folder)."""
    shutil.copytree(COMMITTED_SPLITS, dest)
    monkeypatch.setattr(mtg, "SPLIT_DIR", dest)
    return dest


@pytest.fixture
def split_copy(tmp_path, monkeypatch):
    return _copy_splits(tmp_path / "splits", monkeypatch)


def _rewrite(path: Path, edit) -> None:
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\r\n")
    path.write_bytes(gzip.compress("\r\n".join(edit(lines)).encode("utf-8"), compresslevel=1))


@pytest.mark.parametrize("edit, problem", [
    (lambda ls: [ls[0].replace("\t", ","), *ls[1:]], "expected the header"),
    (lambda ls: [ls[0], ls[1].replace("41/241.mp3", "41/241.flac"), *ls[2:]], "PATH '41/241.flac'"),
    (lambda ls: [ls[0], ls[1].replace("340.1", "long"), *ls[2:]], "DURATION 'long'"),
    (lambda ls: [ls[0], ls[1].replace("genre---rock", "rock"), *ls[2:]], "<category>---<tag>"),
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "must be sorted"),
    (lambda ls: [ls[0], ls[1].rsplit("\t", 1)[0], *ls[2:]], "5 tab-separated fields"),
])
def test_a_malformed_split_file_is_refused(split_copy, tmp_path, edit, problem):
    _rewrite(split_copy / "autotagging_top50tags-train.tsv.gz", edit)
    (tmp_path / "mtg_jamendo" / "00").mkdir(parents=True)
    with pytest.raises(mtg.MalformedSplitFileError, match="git checkout") as exc:
        _task().tracks(tmp_path)
    assert problem in str(exc.value) and "autotagging_top50tags-train.tsv.gz:" in str(exc.value)


def test_a_malformed_split_file_is_one_paragraph_on_the_command_line(split_copy, tmp_path, capsys):
    _rewrite(split_copy / "autotagging_instrument-validation.tsv.gz",
             lambda ls: [ls[0], ls[1].replace("instrument---", "instrument--"), *ls[2:]])
    (tmp_path / "mtg_jamendo" / "00").mkdir(parents=True)
    assert cli_main(["check", "task=mtg_instrument", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "autotagging_instrument-validation.tsv.gz:2: tags" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_truncated_files_and_a_track_in_two_splits_are_refused(tmp_path, monkeypatch):
    first_train = mtg.subset_rows("mtg_moodtheme")["train"][0]
    copy = _copy_splits(tmp_path / "a", monkeypatch)
    path = copy / "autotagging_genre-test.tsv.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(mtg.MalformedSplitFileError, match="not a readable gzip"):
        mtg.subset_rows("mtg_genre")
    copy = _copy_splits(tmp_path / "b", monkeypatch)
    _rewrite(copy / "autotagging_moodtheme-test.tsv.gz", lambda ls: [
        ls[0], "\t".join([first_train.track_id, first_train.artist_id, first_train.album_id, first_train.path, "60.0",
                          "mood/theme---happy"]), *ls[1:]])
    with pytest.raises(mtg.MalformedSplitFileError, match=f"{first_train.track_id} is also in the train split"):
        mtg.subset_rows("mtg_moodtheme")
    with pytest.raises(mtg.MalformedSplitFileError, match="is also in the train split"):
        _task("mtg_moodtheme").shared_audio(tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# check on a partial copy


def test_check_on_a_partial_copy_counts_and_lists_missing_tracks(tmp_path, capsys):
    folder = tmp_path / "mtg_jamendo"
    for split, ids in FIXTURE_TRACKS.items():
        for tid in ids:
            n = int(tid[len("track_"):])
            path = folder / f"{n % 100:02d}" / f"{n}.low.mp3"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tid.encode())  # check looks for the files, it does not decode them
    assert cli_main(["check", "task=mtg_moodtheme", f"data_root={tmp_path}"]) == 1
    out = capsys.readouterr().out
    assert "train 4 of 9949 tracks present (expected 9949)" in out
    assert "valid 2 of 3802 tracks present (expected 3802)" in out
    assert "test  2 of 4231 tracks present (expected 4231)" in out
    assert "missing: track_" in out and "INCOMPLETE" in out
    assert _task().checksums(tmp_path) == {}


# ----------------------------------------------------------------------------------------------------------------
# prepare()


def _archive(path: Path, folder: str, content=lambda member: member.encode()) -> str:
    """A raw_30s_audio-low-NN.tar as published: the folder ``NN`` first, then every listed track of it."""
    members = sorted(p for row, _ in mtg.union_rows() if (p := row.audio_path).startswith(folder + "/"))
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for member in members:
            data = content(member)
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return _sha256(path)


def test_prepare_downloads_unpacks_per_archive_and_resumes(static_http_server, tmp_path, monkeypatch, capsys):
    served, url = static_http_server
    names = ["raw_30s_audio-low-07.tar", "raw_30s_audio-low-41.tar"]
    sources = tmp_path / "built"
    sources.mkdir()
    table = {name: _archive(sources / name, mtg.archive_folder(name)) for name in names}
    monkeypatch.setattr(mtg, "ARCHIVES", table)
    monkeypatch.setattr(mtg, "MIRRORS", (f"{url}/nowhere/", f"{url}/"))  # the first mirror answers 404
    shutil.copy(sources / names[0], served / names[0])  # the second archive is not served yet
    data = tmp_path / "data"
    folder = data / "mtg_jamendo"

    with pytest.raises(mtg.ArchiveDownloadError) as exc:
        _task("mtg_genre").prepare(data)
    text = str(exc.value)
    assert f"could not download {names[1]} from any mirror" in text and "404" in text and table[names[1]] in text
    assert "archives unpacked so far (1 of 2) are kept" in text and "download.py --dataset raw_30s --type audio-low" in text
    in_07 = sorted(row.audio_path for row, _ in mtg.union_rows() if row.audio_path.startswith("07/"))
    assert in_07 and all((folder / p).read_bytes() == p.encode() for p in in_07)
    assert (folder / ".unpacked" / f"{names[0]}.done").read_text().strip() == table[names[0]]
    assert not (folder / names[0]).exists()  # deleted after unpacking
    assert not (folder / "41").exists()

    (served / names[0]).unlink()  # a rerun must not fetch the first archive again
    shutil.copy(sources / names[1], served / names[1])
    (folder / in_07[0]).unlink()
    _task("mtg_genre").prepare(data)
    out = capsys.readouterr().out
    assert "1 of 2 raw_30s audio-low archives to fetch" in out and "ready in" in out
    assert (folder / "41" / "241.low.mp3").read_bytes() == b"41/241.low.mp3"
    assert not (folder / in_07[0]).exists()  # the done archive was not unpacked again
    assert sorted(p.name for p in (folder / ".unpacked").iterdir()) == [f"{n}.done" for n in names]

    _task("mtg_top50").prepare(data)
    assert "all 2 audio archives already unpacked" in capsys.readouterr().out

    # the tasks now find the copy: check counts what is there
    tracks = _task("mtg_top50").tracks(data)
    present = {t.track_id for t in tracks if t.path.is_file()}
    assert present and all(tid[-2:] in ("07", "41") for tid in present)


def test_prepare_refuses_a_wrong_or_incomplete_archive(static_http_server, tmp_path, monkeypatch):
    served, url = static_http_server
    name = "raw_30s_audio-low-13.tar"
    digest = _archive(served / name, "13")
    monkeypatch.setattr(mtg, "MIRRORS", (f"{url}/",))
    monkeypatch.setattr(mtg, "ARCHIVES", {name: "0" * 64})
    data = tmp_path / "data"
    with pytest.raises(mtg.ArchiveDownloadError, match="sha256"):
        _task().prepare(data)
    assert not (data / "mtg_jamendo" / "13").exists() and not (data / "mtg_jamendo" / ".unpacked").exists()

    # an archive with the right checksum (per the table) that lacks tracks of its folder is not marked done
    members = sorted(row.audio_path for row, _ in mtg.union_rows() if row.audio_path.startswith("13/"))
    with tarfile.open(served / name, "w") as tar:
        info = tarfile.TarInfo(members[0])
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    monkeypatch.setattr(mtg, "ARCHIVES", {name: _sha256(served / name)})
    with pytest.raises(mtg.ArchiveDownloadError, match=rf"{len(members) - 1} track\(s\) of the split"):
        _task().prepare(data)
    assert not (data / "mtg_jamendo" / ".unpacked").exists()
    assert digest != _sha256(served / name)


# ----------------------------------------------------------------------------------------------------------------
# End to end


def test_fixture_runs_end_to_end_with_the_tiny_mert(compose_config, tmp_path):
    from benchmark.runner import run

    config = compose_config("task=mtg_top50", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                            "trainer.max_epochs=2", "max_missing_fraction=1.0")
    written = write_fixture(config["data_root"], sample_rate=32000)  # MPEG-1 as published, cheaper than 44.1 kHz
    record = run(config, console=Console(quiet=True))

    sizes = {s: len(ids) for s, ids in FIXTURE_TRACKS.items()}
    assert record["split_sizes"] == sizes
    assert {s: len(ids) for s, ids in record["skipped"].items()} == {
        s: COUNTS["mtg_top50"][0][s] - n for s, n in sizes.items()}
    assert record["task_type"] == "multilabel" and record["primary_metric"] == "roc_auc"
    assert record["window"] == {"window": 30.0, "hop": 30.0, "min_fraction": 0.0333333333}
    assert record["dataset"]["split_sha256"] == _task().dataset_identity()["split_sha256"]
    for row in record["layers"]:
        for split in ("valid", "test"):
            scores = row[split]
            assert set(scores) == {"roc_auc", "average_precision", "tags_scored"}
            assert 0.0 <= scores["roc_auc"] <= 1.0 and 0.0 < scores["tags_scored"] < 50
    # every present track was windowed whole as MARBLE does: only the 0.99 s tail of track_0844330 is dropped (the
    # 1.0 s last window of track_0078733 is kept)
    assert record["timings"]["extraction_audio_seconds"] == pytest.approx(sum(FIXTURE_SECONDS.values()) - 0.99,
                                                                          abs=0.01)
    spec = window_spec(config["task"], encoder=None)
    windows = {tid: len(window_bounds(len(load_audio(path, 24000)), 24000, spec)) for tid, path in written.items()}
    assert windows == FIXTURE_WINDOWS
