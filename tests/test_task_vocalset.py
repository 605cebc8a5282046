"""Tests of the VocalSet tasks (tasks/vocalset.py): MARBLE v1's committed chunk lists, labels, a fixture in the
real chunk layout run end to end for both tasks, the missing-dataset message, and prepare() on a tiny synthetic
VocalSet11.zip.

Why these tests: numbers on VocalSet are only comparable on MARBLE's chunks, so the lists must be the published
bytes with the published counts; the technique task is a singer-held-out task (a test singer in train would
inflate it), and no recording may have chunks in two splits (neighbouring chunks of one take are near copies). The
fixture uses real chunk names from the lists, one with a space; only the audio is synthetic. The preprocessing runs
on a zip in VocalSet's own layout with a rename, a deletion and the entries MARBLE skips.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from benchmark.cli import main as cli_main
from benchmark.runner import run
from benchmark.tasks import vocalset
from benchmark.tasks.base import DatasetMissingError
from benchmark.tasks.registry import build_task
from tests.conftest import FIXTURES, REPO_ROOT

LISTS = REPO_ROOT / "datasets" / "vocalset"
# sha256 of the six lists as committed in nicolaus625/CMI-bench@4c15f410 data/VocalSet/ (refdata MANIFEST.tsv).
LIST_SHA256 = {
    "train_t.txt": "a4baf3e31626bf82493eb9999b280651c8af03226ec2b018a6bd32a5793238b8",
    "valid_t.txt": "3ec8025d2f984d898061553ca307d310d6a1b362183293cadcc0508833a6975a",
    "test_t.txt": "bde9c6ea504fa05cf1d6ee3cc0ad67a98a21d3e884b81dc867d3301af3b04e4a",
    "train_s.txt": "33599e89f58cf641d508917b63d31077ba0efdf66c73c845368acc1fd5395a03",
    "valid_s.txt": "a3e3b4ef5760e2325eb9690bc76386bf9503585fa4604f5c5d5884fc497b123a",
    "test_s.txt": "bf1c4ff4e4a9c49e74630be2b0b4ef6bfed065b717bfc8088a6797a9149f9247",
}
CHUNKS = {"technique": {"train": 1850, "valid": 1142, "test": 1140},
          "singer": {"train": 3688, "valid": 2413, "test": 1405}}
RECORDINGS = {"technique": {"train": 726, "valid": 449, "test": 410},
              "singer": {"train": 1493, "valid": 984, "test": 585}}
# Chunks per technique (train, valid, test), MARBLE's class order (refdata PROVENANCE.md).
PER_TECHNIQUE = {"belt": (206, 113, 83), "breathy": (161, 81, 71), "inhaled": (22, 9, 30),
                 "lip_trill": (137, 81, 99), "spoken": (33, 11, 12), "straight": (487, 354, 305),
                 "trill": (130, 68, 89), "trillo": (94, 55, 51), "vibrato": (438, 289, 230),
                 "vocal_fry": (142, 81, 170)}
TEST_SINGERS = {"f2", "f8", "m3", "m5", "m10"}
SPACE_CHUNK = "spoken/m4_ row_spoken_00.wav"  # technique train, singer valid
SR = vocalset.SAMPLE_RATE


@pytest.fixture(autouse=True)
def _private_hash_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests of fixture files go to a sidecar in tmp, not the user's cache."""
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))


def _task(name: str) -> vocalset.VocalSetTask:
    import yaml

    task = build_task(yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{name}.yaml").read_text()))
    assert isinstance(task, vocalset.VocalSetTask)
    return task


def _recording(entry: str) -> str:
    return vocalset.parse_entry(entry).folder + "/" + vocalset.parse_entry(entry).recording


# -- the committed lists -----------------------------------------------------------------------------------------
def test_lists_are_the_published_bytes_with_the_published_counts() -> None:
    readme = (LISTS / "README.md").read_text()
    for name, sha in LIST_SHA256.items():
        assert hashlib.sha256((LISTS / name).read_bytes()).hexdigest() == sha, name
        assert sha in readme
    for name in ("recordings.tsv", "train_singers_technique.txt", "test_singers_technique.txt"):
        assert hashlib.sha256((LISTS / name).read_bytes()).hexdigest() in readme, name
    for task in ("technique", "singer"):
        lists = vocalset.read_split_lists(task)
        assert {s: len(v) for s, v in lists.items()} == CHUNKS[task]
        assert {s: len({_recording(e) for e in v}) for s, v in lists.items()} == RECORDINGS[task]
        every = [e for v in lists.values() for e in v]
        assert len(set(every)) == len(every)  # no chunk twice
    technique = vocalset.read_split_lists("technique")
    for i, split in enumerate(("train", "valid", "test")):
        by = Counter(e.split("/")[0] for e in technique[split])
        assert {t: by[t] for t in vocalset.TECHNIQUES} == {t: c[i] for t, c in PER_TECHNIQUE.items()}, split
    assert vocalset.VocalSetTechnique.expected_counts == CHUNKS["technique"]
    assert vocalset.VocalSetSinger.expected_counts == CHUNKS["singer"]
    # names with a space (6 recordings, 20 lines over the six lists) are read whole, never split
    spaced = [e for task in ("technique", "singer") for v in vocalset.read_split_lists(task).values() for e in v
              if " " in e]
    assert len(spaced) == 20 and SPACE_CHUNK in spaced and "trillo/f7_ long_trillo_a_00.wav" in spaced
    assert len({_recording(e) for e in spaced}) == 6


def test_no_singer_crosses_the_technique_split() -> None:
    chunks = vocalset.list_chunks("technique")
    singers = {s: {c.singer for c in v} for s, v in chunks.items()}
    assert singers["test"] == TEST_SINGERS
    assert singers["train"] == singers["valid"] == set(vocalset.SINGERS) - TEST_SINGERS
    assert not (singers["train"] | singers["valid"]) & singers["test"]
    # VocalSet's own technique test singers (shipped in the zip) are these five
    own = (LISTS / "test_singers_technique.txt").read_text().split()
    assert {n.replace("female", "f").replace("male", "m") for n in own} == TEST_SINGERS
    assert vocalset.TECHNIQUE_TEST_SINGERS == TEST_SINGERS


def test_no_recording_is_split_across_splits_and_technique_is_within_singer() -> None:
    for task in ("technique", "singer"):
        where: dict[str, set[str]] = defaultdict(set)
        for split, entries in vocalset.read_split_lists(task).items():
            for e in entries:
                where[_recording(e)].add(split)
        assert all(len(s) == 1 for s in where.values()), task
    singer = {e for v in vocalset.read_split_lists("singer").values() for e in v}
    assert {e for v in vocalset.read_split_lists("technique").values() for e in v} <= singer
    assert [c.entry for c in vocalset.all_chunks()] == sorted(singer)
    # every singer and every folder in every split of the singer task
    for split, chunks in vocalset.list_chunks("singer").items():
        assert {c.singer for c in chunks} == set(vocalset.SINGERS), split
        assert {c.folder for c in chunks} == set(vocalset.FOLDERS), split


def test_recordings_table_is_the_lists_collapsed() -> None:
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for task, column in (("singer", "vocalset_s_split"), ("technique", "vocalset_t_split")):
        for split, chunks in vocalset.list_chunks(task).items():
            for c in chunks:
                row = rows.setdefault((c.folder, c.recording), {"singer": c.singer, "n": 0,
                                                                "vocalset_t_split": "", "vocalset_s_split": ""})
                row[column] = split
                if task == "singer":
                    row["n"] = int(row["n"]) + 1  # type: ignore[call-overload]
    lines = ["technique_folder\trecording\tsinger\tn_chunks\tvocalset_t_split\tvocalset_s_split"]
    lines += [f"{f}\t{r}\t{v['singer']}\t{v['n']}\t{v['vocalset_t_split']}\t{v['vocalset_s_split']}"
              for (f, r), v in sorted(rows.items())]
    assert (LISTS / "recordings.tsv").read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    assert len(rows) == 3062


def test_labels_class_orders_and_tracks(tmp_path: Path) -> None:
    technique, singer = _task("vocalset_technique"), _task("vocalset_singer")
    assert technique.labels == ["belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo",
                                "vibrato", "vocal_fry"]
    assert singer.labels == [f"f{i}" for i in range(1, 10)] + [f"m{i}" for i in range(1, 12)]
    assert technique.task_type == singer.task_type == "multiclass" and technique.level == "clip"
    assert (technique.num_outputs, singer.num_outputs) == (10, 20)
    (tmp_path / "vocalset" / "audio").mkdir(parents=True)
    t_tracks, s_tracks = technique.tracks(tmp_path), singer.tracks(tmp_path)
    assert len(t_tracks) == 4132 and len(s_tracks) == 7506
    assert len({t.track_id for t in s_tracks}) == 7506  # the chunk stem names a chunk over all folders
    for split, counts in (("train", 0), ("valid", 1), ("test", 2)):
        y = technique.target_array([t for t in t_tracks if t.split == split])
        assert np.bincount(y, minlength=10).tolist() == [c[counts] for c in PER_TECHNIQUE.values()]
    first = t_tracks[0]
    assert (first.track_id, first.split, first.target) == ("f1_arpeggios_belt_c_a_00", "train", 0)
    assert first.path == tmp_path / "vocalset" / "audio" / "belt" / "f1_arpeggios_belt_c_a_00.wav"
    spoken = {t.track_id: t for t in s_tracks}["m4_ row_spoken_00"]
    assert (spoken.split, singer.labels[spoken.target]) == ("valid", "m4")
    assert spoken.path == tmp_path / "vocalset" / "audio" / "spoken" / "m4_ row_spoken_00.wav"
    assert {t.track_id: t for t in t_tracks}["m4_ row_spoken_00"].split == "train"
    m10 = next(t for t in s_tracks if t.track_id.startswith("m10_"))
    assert singer.labels[m10.target] == "m10" and m10.target == 18  # numeric order: m10 after m9, not after m1
    # one shared collection: the same items, ids and paths for both tasks
    shared_t, shared_s = technique.shared_audio(tmp_path), singer.shared_audio(tmp_path)
    assert shared_t == shared_s and len(shared_s.tracks) == 7506
    items = {t.track_id: t for t in shared_s.tracks}
    assert all(items[t.track_id].path == t.path and t.offset == 0.0 and t.duration is None for t in t_tracks)
    assert technique.dataset_identity()["labels"] == technique.labels
    assert technique.checksums(tmp_path) == {}


def test_malformed_entries_are_refused() -> None:
    for bad in ("belt/f1_x.wav", "polka/f1_x_00.wav", "belt/x1_arps_00.wav", "f1_arps_00.wav", "belt/f1_arps_0.wav",
                "belt/sub/f1_arps_00.wav", "belt/f1_arps_00.flac"):
        with pytest.raises(ValueError):
            vocalset.parse_entry(bad)
    chunk = vocalset.parse_entry("trillo/f7_ long_trillo_a_01.wav")
    assert (chunk.folder, chunk.recording, chunk.index, chunk.singer) == ("trillo", "f7_ long_trillo_a.wav", 1, "f7")


def test_configs_window_one_chunk() -> None:
    import yaml

    for name in ("vocalset_technique", "vocalset_singer"):
        cfg = yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{name}.yaml").read_text())
        assert (cfg["name"], cfg["kind"], cfg["window_seconds"], cfg["hop_seconds"]) == (name, name, 3.0, None)
    assert vocalset.CHUNK_SAMPLES == 132000 and vocalset.CHUNK_SAMPLES / SR < 3.0  # one chunk = one window


# -- a fixture in the real layout, end to end ----------------------------------------------------------------------
def _chunk_audio(entry: str) -> np.ndarray:
    """A z-normalised 132,000-sample chunk: pitch from the singer, modulation and noise from the technique."""
    c = vocalset.parse_entry(entry)
    rng = np.random.default_rng(int(hashlib.sha256(entry.encode()).hexdigest()[:8], 16))
    t = np.arange(vocalset.CHUNK_SAMPLES) / SR
    f0 = 110.0 * 2 ** (vocalset.SINGERS.index(c.singer) / 8) * rng.uniform(0.98, 1.02)
    k = vocalset.FOLDERS.index(c.folder)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * (k % 3) * np.sin(2 * np.pi * (2 + k) * t))) / SR
    x = sum(np.sin(h * phase) / h ** (1 + 0.2 * k) for h in range(1, 6)) + 0.1 * (k % 4) * rng.standard_normal(t.size)
    return ((x - x.mean()) / x.std()).astype(np.float32)


def _fixture_entries() -> list[str]:
    """Real chunk names: 3 techniques x 3 / 2 / 2 chunks (technique splits), the chunk with a space, and for every
    singer these put in the singer task's valid or test one singer-train chunk from a folder outside the technique
    task, so that both tasks' protocol checks pass on the same files."""
    technique = vocalset.read_split_lists("technique")
    picked: list[str] = []
    for split, n in (("train", 3), ("valid", 2), ("test", 2)):
        for tech in ("belt", "breathy", "vibrato"):
            picked += [e for e in technique[split] if e.startswith(tech + "/")][:n]
    picked.append(SPACE_CHUNK)
    singer_split = {c.entry: s for s, chunks in vocalset.list_chunks("singer").items() for c in chunks}
    in_train = {vocalset.parse_entry(e).singer for e in picked if singer_split[e] == "train"}
    needed = sorted({vocalset.parse_entry(e).singer for e in picked if singer_split[e] != "train"} - in_train)
    for who in needed:
        picked.append(next(c.entry for c in vocalset.list_chunks("singer")["train"]
                            if c.singer == who and c.folder in vocalset.OTHER_FOLDERS))
    return picked


def _write_fixture(data_root: Path) -> list[str]:
    entries = _fixture_entries()
    for entry in entries:
        path = vocalset.chunk_path(data_root, entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _chunk_audio(entry), SR, subtype="FLOAT")  # as MARBLE writes chunks
    return entries


def test_both_tasks_run_end_to_end_on_one_shared_extraction(compose_config, tmp_path: Path) -> None:
    entries = _write_fixture(tmp_path / "data")
    present = set(entries)
    records = {}
    for name, key in (("vocalset_technique", "technique"), ("vocalset_singer", "singer")):
        config = compose_config(f"task={name}", "model=mert-v1-95m", f"model.checkpoint={FIXTURES / 'v1-95m-tiny'}",
                                "max_missing_fraction=1.0", "trainer.max_epochs=3")
        record = records[name] = run(config, console=Console(quiet=True))
        lists = vocalset.read_split_lists(key)
        sizes = {s: len([e for e in v if e in present]) for s, v in lists.items()}
        assert all(sizes.values())
        assert record["split_sizes"] == sizes
        assert {s: len(v) for s, v in record["skipped"].items()} == {s: CHUNKS[key][s] - sizes[s] for s in sizes}
        assert "m4_ row_spoken_00" not in {t for v in record["skipped"].values() for t in v}
        assert record["primary_metric"] == "accuracy" and record["task_type"] == "multiclass"
        assert record["window"]["window"] == 3.0
        assert record["dataset"]["labels"] == _task(name).labels
        for row in record["layers"]:
            for split in ("valid", "test"):
                assert 0.0 <= row[split]["accuracy"] <= 1.0
    # the technique run extracted every fixture chunk once for both tasks: the singer run calls no encoder
    assert records["vocalset_technique"]["timings"]["encoder_forward_calls"] > 0
    assert records["vocalset_singer"]["timings"]["encoder_forward_calls"] == 0


# -- missing data --------------------------------------------------------------------------------------------------
def test_missing_dataset_gives_the_clear_message(tmp_path: Path, capsys) -> None:
    with pytest.raises(DatasetMissingError) as exc:
        _task("vocalset_singer").tracks(tmp_path)
    text = str(exc.value)
    assert str(tmp_path / "vocalset" / "audio") in text and "belt/f1_arpeggios_belt_c_a_00.wav" in text
    assert "python -m benchmark prepare vocalset_singer" in text
    assert cli_main(["check", "task=vocalset_technique", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "dataset not found in" in err and "python -m benchmark prepare vocalset_technique" in err
    assert "Traceback" not in err
    (tmp_path / "vocalset" / "FULL").mkdir(parents=True)  # the raw zip unpacked instead of prepared
    with pytest.raises(DatasetMissingError, match="not the recordings"):
        _task("vocalset_technique").tracks(tmp_path)


# -- prepare: MARBLE's preprocessing on a tiny synthetic VocalSet11.zip ----------------------------------------------
def _voice(seconds: float, rate: int = SR, channels: int = 1) -> np.ndarray:
    """1 s of faint noise (what the VAD learns the noise floor from), then a harmonic tone with vibrato."""
    rng = np.random.default_rng(int(seconds * 10))
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(220 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))) / rate
    x = np.concatenate([1e-4 * rng.standard_normal(rate), 0.2 * sum(np.sin(k * phase) / k for k in range(1, 8))])
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


# zip member -> (seconds of voice, sample rate, channels). After trimming ~0.1 s of the lead is kept, so a
# recording gives (samples - 1) // 132,000 chunks: 10 s -> 3, 7.5 s -> 2, 2 s -> none; far from every boundary.
ZIP_AUDIO = {
    "FULL/f1/arpeggios/belt/f1_arpeggios_belt_c_a.wav": (10.0, SR, 1),  # 3 chunks: 00, 01 listed, 02 in no list
    "FULL/f2/arpeggios/lip_trill/lip_trill_arps.wav": (7.5, SR, 1),  # renamed to f2_lip_trill_arps: 2 of 11 listed
    "FULL/m4/excerpts/spoken/m4_ row_spoken.wav": (10.0, SR, 1),  # 3 chunks, all listed, name with a space
    "FULL/f2/scales/vibrato/f2_scales_vibrato_a.wav": (2.0, SR, 1),  # too short after trimming: no chunk
    "FULL/f2/scales/vibrato/f2_scales_vibrato_a(1).wav": (7.5, SR, 1),  # deleted (a duplicate)
    "FULL/f3/long_tones/messa/f3_long_messa_a.wav": (7.5, 22050, 2),  # resampled to 44.1 kHz, first channel; 2 of 4
}
SKIPPED_MEMBERS = ["FULL/", "FULL/f1/arpeggios/belt/", "FULL/f1/arpeggios/belt/.DS_Store",
                   "__MACOSX/FULL/f1/arpeggios/belt/._f1_arpeggios_belt_c_a.wav", "FULL/readme-anon.txt",
                   "FULL/f1/arpeggios/unknown/f1_arpeggios_unknown.wav"]


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name in SKIPPED_MEMBERS:
            z.writestr(name, b"" if name.endswith("/") else b"not audio")
        for name, (seconds, rate, channels) in ZIP_AUDIO.items():
            buf = io.BytesIO()
            sf.write(buf, _voice(seconds, rate, channels), rate, format="WAV", subtype="PCM_16")
            z.writestr(name, buf.getvalue())
    return path


PRODUCED = {"belt/f1_arpeggios_belt_c_a_00.wav", "belt/f1_arpeggios_belt_c_a_01.wav",
            "belt/f1_arpeggios_belt_c_a_02.wav", "lip_trill/f2_lip_trill_arps_00.wav",
            "lip_trill/f2_lip_trill_arps_01.wav", "spoken/m4_ row_spoken_00.wav", "spoken/m4_ row_spoken_01.wav",
            "spoken/m4_ row_spoken_02.wav", "messa/f3_long_messa_a_00.wav", "messa/f3_long_messa_a_01.wav"}


def test_plan_selects_renames_and_deletes_as_marble() -> None:
    plan = vocalset.plan_archive([*SKIPPED_MEMBERS, *ZIP_AUDIO, "FULL/f9/scales/belt/f1_arpeggios_belt_c_a.wav"])
    assert sorted(plan.recordings) == [("belt", "f1_arpeggios_belt_c_a.wav"), ("lip_trill", "f2_lip_trill_arps.wav"),
                                       ("messa", "f3_long_messa_a.wav"), ("spoken", "m4_ row_spoken.wav"),
                                       ("vibrato", "f2_scales_vibrato_a.wav")]
    assert plan.recordings[("belt", "f1_arpeggios_belt_c_a.wav")] == "FULL/f9/scales/belt/f1_arpeggios_belt_c_a.wav"
    assert plan.overwritten == ["belt/f1_arpeggios_belt_c_a.wav"]  # flat extraction: the later member wins
    assert plan.renamed == ["lip_trill/lip_trill_arps.wav -> f2_lip_trill_arps.wav"]
    assert plan.deleted == ["vibrato/f2_scales_vibrato_a(1).wav"]
    assert len(vocalset.RENAMES) == 28 and len({(f, o) for f, o, _ in vocalset.RENAMES}) == 28
    assert len(vocalset.DELETIONS) == 5
    assert all(n.split("_")[0] in vocalset.SINGERS for _, _, n in vocalset.RENAMES)


def test_prepare_downloads_chunks_and_compares_with_the_lists(static_http_server, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    folder, url = static_http_server
    source = _zip(folder / "VocalSet11.zip")
    monkeypatch.setattr(vocalset, "ARCHIVE_URL", f"{url}/VocalSet11.zip")
    monkeypatch.setattr(vocalset, "ARCHIVE_MD5", hashlib.md5(source.read_bytes()).hexdigest())
    data = tmp_path / "data"
    task = _task("vocalset_technique")

    # interrupted after two recordings: the rerun chunks only the others
    calls: list[int] = []
    real = vocalset.chunk_recording

    def flaky(audio: np.ndarray, rate: int) -> list[np.ndarray]:
        calls.append(rate)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(audio, rate)

    monkeypatch.setattr(vocalset, "chunk_recording", flaky)
    with pytest.raises(KeyboardInterrupt):
        task.prepare(data)
    monkeypatch.setattr(vocalset, "chunk_recording", lambda a, r: calls.append(r) or real(a, r))
    task.prepare(data)
    assert len(calls) == 3 + 3  # five recordings: two before the interruption, three after
    out = capsys.readouterr().out
    assert (data / "vocalset" / "VocalSet11.zip").read_bytes() == source.read_bytes()

    audio = data / "vocalset" / "audio"
    produced = {p.relative_to(audio).as_posix() for p in audio.rglob("*.wav")}
    assert produced == PRODUCED
    assert not list(audio.rglob("*.part"))
    for entry in PRODUCED:
        x, rate = sf.read(audio / entry, dtype="float32")
        info = sf.info(str(audio / entry))
        assert rate == SR and x.shape == (132000,) and info.subtype == "FLOAT"
        assert abs(float(x.mean())) < 1e-4 and abs(float(x.std(ddof=1)) - 1.0) < 1e-3

    assert "5 recordings taken from the zip" in out and "1 of 28 renames and 1 of 5 deletions" in out
    # technique train: f1 belt c_a 00-01 and m4 spoken 00-02; test: f2 lip trill 00-01 (f2 is a test singer)
    assert "vocalset_technique train 5 of 1850 listed chunks produced; not produced: " \
           "belt/f1_arpeggios_belt_c_e_00.wav, " in out
    assert "vocalset_technique test  2 of 1140 listed chunks produced" in out
    # singer test: f1 belt c_a 00-01, f2 lip trill 00-01; valid: m4 spoken 00-02, f3 messa 00-01
    assert "vocalset_singer test  4 of 1405 listed chunks produced" in out
    assert "vocalset_singer valid 5 of 2413 listed chunks produced" in out
    assert "1 produced chunk(s) are in no list (never read): belt/f1_arpeggios_belt_c_a_02.wav\n" in out
    assert "listed chunk(s) were not produced" in out and "max_missing_fraction" in out

    # the check sees the produced chunks
    assert cli_main(["check", "task=vocalset_technique", f"data_root={data}"]) == 1
    assert "train 5 of 1850 tracks present (expected 1850)" in capsys.readouterr().out
    tracks = task.tracks(data)
    assert sum(t.path.is_file() for t in tracks) == 5 + 2
    assert task.shared_audio(data).identity["prepared_with_torchaudio"] == vocalset._torchaudio_version()

    task.prepare(data)  # a finished prepare is recorded: nothing to do
    assert "nothing to do" in capsys.readouterr().out


def test_prepare_without_a_download_gives_the_manual_steps(static_http_server, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _, url = static_http_server
    monkeypatch.setattr(vocalset, "ARCHIVE_URL", f"{url}/nowhere.zip")  # 404
    with pytest.raises(vocalset.VocalSetPrepareError) as exc:
        _task("vocalset_singer").prepare(tmp_path)
    text = str(exc.value)
    assert "zenodo.org/records/1203819" in text and vocalset.ARCHIVE_MD5 in text
    assert str(tmp_path / "vocalset" / "VocalSet11.zip") in text
    capsys.readouterr()

    # a zip that is not VocalSet is refused in one paragraph
    wrong = _zip_of(tmp_path / "vocalset" / "VocalSet11.zip", {"VocalSet/readme.txt": b"x"})
    monkeypatch.setattr(vocalset, "ARCHIVE_MD5", hashlib.md5(wrong.read_bytes()).hexdigest())
    with pytest.raises(vocalset.VocalSetPrepareError, match="no recording in VocalSet's layout"):
        _task("vocalset_singer").prepare(tmp_path)


def _zip_of(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path
