"""giantsteps_key: the split and labels re-derived from the published annotation files equal the committed
manifest and jukemir's; the published md5s; key spelling and filtering on real annotation rows; the metric's
partial credit; downloads (resume, mirrors, md5); and an end-to-end run on a fixture in the datasets' real layout.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import mir_eval
import numpy as np
import pytest
import soundfile as sf
import yaml
from rich.console import Console

import benchmark.tasks.giantsteps_key as gk
from benchmark.audio import window_bounds
from benchmark.metrics import compute_metrics
from benchmark.run_checks import window_spec
from tests.conftest import REFDATA, REPO_ROOT

GS_REPO = REFDATA / "giantsteps_key"        # byte copies of GiantSteps/giantsteps-key-dataset (no audio)
MTG_REPO = REFDATA / "giantsteps_mtg_key"   # byte copies of GiantSteps/giantsteps-mtg-key-dataset (no audio)
JUKEMIR = REFDATA / "jukemir" / "metadata" / "giantsteps_clips.json.gz"
TASK_CFG = yaml.safe_load((REPO_ROOT / "configs" / "task" / "giantsteps_key.yaml").read_text())


def _jukemir() -> dict:
    return json.loads(gzip.decompress(JUKEMIR.read_bytes()))


def _task() -> gk.GiantStepsKey:
    from benchmark.tasks.registry import build_task

    return build_task(TASK_CFG)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------------
# Split, labels, checksums


def test_committed_manifest_has_the_published_counts_and_24_flat_mir_eval_labels():
    songs = gk.read_manifest()
    assert Counter(s.split for s in songs) == {"train": 923, "valid": 236, "test": 604}
    assert _task().expected_counts == {"train": 923, "valid": 236, "test": 604}
    assert len(gk.LABELS) == len(set(gk.LABELS)) == 24
    for label in gk.LABELS:
        mir_eval.key.validate_key(label)
        assert "#" not in label
    assert {s.key for s in songs} == set(gk.LABELS)  # every class occurs
    assert gk.LABELS[:3] == ["C major", "Db major", "D major"] and gk.LABELS[12] == "C minor"  # MARBLE order


def test_split_derived_from_the_published_files_equals_the_manifest_and_jukemir():
    derived = gk.derive_songs(GS_REPO, MTG_REPO)
    assert derived == list(gk.read_manifest())

    songs = {}
    clips = Counter()
    for record in _jukemir().values():
        songs[str(int(record["clip"]["audio_uid"]))] = (record["split"], record["y"])
        clips[record["split"]] += 1
    assert songs == {s.id: (s.split, s.key) for s in derived}
    assert clips == {"train": 3687, "valid": 942, "test": 2406}

    # Train and valid share no artist (the point of the rule); test is another dataset.
    artists = gk.read_beatport_artists(MTG_REPO / "annotations" / "beatport_metadata.txt")
    by_split = {split: {a for s in derived if s.split == split for a in artists[s.id]} for split in ("train", "valid")}
    assert not by_split["train"] & by_split["valid"]
    # The collaborator passes run over all 1,486 rows: over the kept rows only, five songs land elsewhere.
    kept = {s.id for s in derived if s.split != "test"}
    narrow = gk.artist_split({i: a for i, a in artists.items() if i in kept}, kept)
    assert Counter(narrow.values()) == {"train": 928, "valid": 231}


def test_keys_are_spelled_with_flats_and_ambiguous_or_doubtful_rows_are_excluded():
    for text, label in [("D# minor", "Eb minor"), ("d# minor", "Eb minor"), ("A# major", "Bb major"),
                        ("Eb minor", "Eb minor"), ("B major ", "B major"), ("C# major ", "Db major"),
                        ("F minor / G# major", None), ("G minor/major", None), ("A-A# minor", None), ("-", None),
                        (" ", None), ("E / B / A minor", None), ("H minor", None)]:
        assert gk.normalise_key(text) == label, text

    rows = gk.read_mtg_annotations(MTG_REPO / "annotations" / "annotations.txt")
    kept = gk.mtg_kept_keys(rows)
    assert len(rows) == 1486 and len(kept) == 1159

    def ids(value: str, confidence: str | None = None) -> list[str]:
        return [i for i, (v, c) in rows.items() if v == value and (confidence is None or c == confidence)]

    assert ids("F minor / G# major") and not set(ids("F minor / G# major")) & set(kept)
    assert len(ids("-")) == 72 and not set(ids("-")) & set(kept)
    assert ids("A-A# minor") and not set(ids("A-A# minor")) & set(kept)
    for value, label in [("B major ", "B major"), ("C# major ", "Db major")]:  # the two trailing spaces
        (song,) = ids(value)
        assert rows[song][1] == "2" and kept[song] == label
    doubtful = ids("D# minor", "1")
    assert doubtful and not set(doubtful) & set(kept)
    assert Counter(c for _, c in rows.values()) == {"2": 1182, "1": 208, "0": 96}
    # The lowercase key files say the same as annotations.txt for every kept song.
    key_dir = MTG_REPO / "annotations" / "key"
    for song, label in kept.items():
        assert gk.normalise_key((key_dir / f"{song}.LOFI.key").read_text().split("\t")[0]) == label


def test_md5_table_is_the_published_per_file_md5s():
    table = gk.md5_table()
    from_repos = {(gk.KEY_REPO, i): d for i, d in gk.read_md5_dir(GS_REPO).items()}
    from_repos.update({(gk.MTG_REPO, i): d for i, d in gk.read_md5_dir(MTG_REPO).items()})
    assert table == from_repos and len(table) == 2090

    marble = json.loads((REFDATA / "marble" / "giantsteps.json").read_text())
    from_marble = {}
    for tag, entry in marble.items():
        repo = gk.KEY_REPO if "/backup/" in entry["url"] else gk.MTG_REPO
        song = entry["url"].rsplit("/", 1)[1].split(".")[0]
        assert tag.endswith(f"_{song}") and entry["url"].startswith(gk.AUDIO_MIRRORS[repo][0])
        from_marble[(repo, song)] = entry["checksum"]
    assert from_marble == table

    checksums = _task().checksums(Path("/data"))
    assert checksums[Path("/data/giantsteps_key/giantsteps-key-dataset/audio/10089.LOFI.mp3")] == (
        "md5", "4e7abe2aba492646a24971445325ea5b")
    assert len(checksums) == 2090


def test_config_windows_reproduce_jukemir_clip_counts():
    """30 s windows from 0 s, a final partial window dropped: counted on each song's decoded length (the end of
    its last jukemir clip where that clip is short, the header duration otherwise)."""
    songs: dict[str, list[dict]] = {}
    split = {}
    for record in _jukemir().values():
        songs.setdefault(record["clip"]["audio_uid"], []).append(record["clip"])
        split[record["clip"]["audio_uid"]] = record["split"]
    sr = 16000

    def count(spec) -> Counter:
        out = Counter()
        for uid, clips in songs.items():
            last = max(clips, key=lambda c: c["clip_idx"])
            seconds = last["clip_offset"] + last["clip_duration"] if last["clip_duration"] < 30 else \
                last["audio_duration"]
            out[split[uid]] += len(window_bounds(int(seconds * sr), sr, spec))
        return out

    spec = window_spec(TASK_CFG, SimpleNamespace(context_seconds=5.0))
    assert (spec.window, spec.hop) == (30.0, 30.0)
    assert count(spec) == {"train": 3687, "valid": 942, "test": 2406}
    # A strict 1.0 would drop the 18 last windows that decode a few ms short of 30 s.
    strict = window_spec({**TASK_CFG, "window_min_fraction": 1.0}, SimpleNamespace(context_seconds=5.0))
    assert sum(count(spec).values()) - sum(count(strict).values()) == 18


def test_metric_gives_fifth_relative_and_parallel_errors_partial_credit():
    index = gk.LABELS.index
    cases = [("C major", "C major", 1.0), ("C major", "G major", 0.5), ("C major", "A minor", 0.3),
             ("C major", "C minor", 0.2), ("Eb minor", "Gb major", 0.3), ("Eb minor", "Eb major", 0.2),
             ("C major", "Gb major", 0.0)]
    y_true = np.array([index(ref) for ref, _, _ in cases])
    y_score = np.full((len(cases), 24), 0.01)
    y_score[np.arange(len(cases)), [index(est) for _, est, _ in cases]] = 0.9
    for i, (_, _, credit) in enumerate(cases):
        one = compute_metrics("key", y_true[i:i + 1], y_score[i:i + 1], gk.LABELS)
        assert one["weighted_score"] == pytest.approx(credit)
    both = compute_metrics("key", y_true, y_score, gk.LABELS)
    assert both["weighted_score"] == pytest.approx(sum(c for _, _, c in cases) / len(cases))
    assert both["accuracy"] == pytest.approx(1 / len(cases))


# ----------------------------------------------------------------------------------------------------------------
# The local copy: missing, partial, differing


def test_missing_dataset_message_names_folder_layout_and_fetch_command(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["check", "task=giantsteps_key", f"data_root={tmp_path}"]) == 1
    err = capsys.readouterr().err
    for text in (str(tmp_path / "giantsteps_key"), "giantsteps-key-dataset/", "giantsteps-mtg-key-dataset/",
                 "annotations/key/<id>.LOFI.key", "annotations/annotations.txt", "audio/<id>.LOFI.mp3",
                 "audio_dl.sh", "python -m benchmark prepare giantsteps_key"):
        assert text in err, text


def _real_lines(path: Path, ids: set[str]) -> str:
    """Header plus the published lines of ``ids`` (tab-separated files whose first field is the id)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return "\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split("\t")[0] in ids]) + "\n"


def _copy_annotations(root: Path, songs: list[gk.Song], extra_mtg: set[str] = frozenset()) -> None:
    """The songs' published annotation files in the real layout (GS key files, annotations.txt rows, md5s)."""
    key_dir = root / gk.KEY_REPO / "annotations" / "key"
    mtg_dir = root / gk.MTG_REPO / "annotations"
    for d in (key_dir, mtg_dir, root / gk.KEY_REPO / "md5", root / gk.MTG_REPO / "md5"):
        d.mkdir(parents=True, exist_ok=True)
    mtg_ids = {s.id for s in songs if s.split != "test"} | set(extra_mtg)
    for name in ("annotations.txt", "beatport_metadata.txt"):
        (mtg_dir / name).write_text(_real_lines(MTG_REPO / "annotations" / name, mtg_ids), encoding="utf-8")
    for s in songs:
        src = GS_REPO if s.split == "test" else MTG_REPO
        (root / s.repo / "md5" / f"{s.id}.LOFI.md5").write_bytes((src / "md5" / f"{s.id}.LOFI.md5").read_bytes())
        if s.split == "test":
            (key_dir / f"{s.id}.LOFI.key").write_bytes((GS_REPO / "annotations/key" / f"{s.id}.LOFI.key").read_bytes())


def test_partial_local_copy_lists_every_track_and_differing_annotations_are_refused(tmp_path):
    songs = gk.read_manifest()
    root = tmp_path / "giantsteps_key"
    chosen = [s for s in songs if s.split == "train"][:2] + [s for s in songs if s.split == "test"][:2]
    rows = gk.read_mtg_annotations(MTG_REPO / "annotations" / "annotations.txt")
    excluded = {next(i for i, (v, _) in rows.items() if v == "F minor / G# major"),
                next(i for i, (v, _) in rows.items() if v == "-")}
    _copy_annotations(root, chosen, extra_mtg=excluded)

    tracks = _task().tracks(tmp_path)
    assert len(tracks) == 1763 and Counter(t.split for t in tracks) == {"train": 923, "valid": 236, "test": 604}
    first = next(t for t in tracks if t.track_id == chosen[0].id)
    assert first.path == root / gk.MTG_REPO / "audio" / f"{chosen[0].id}.LOFI.mp3"
    assert gk.LABELS[first.target] == chosen[0].key and first.offset == 0.0 and first.duration is None

    test_song = chosen[2]
    wrong = gk.LABELS[(gk.LABELS.index(test_song.key) + 1) % 24]
    (root / gk.KEY_REPO / "annotations/key" / f"{test_song.id}.LOFI.key").write_text(wrong)
    with pytest.raises(ValueError, match=rf"{test_song.id}: local {wrong}, published {test_song.key}"):
        _task().tracks(tmp_path)
    _copy_annotations(root, chosen, extra_mtg=excluded)

    annotations = root / gk.MTG_REPO / "annotations" / "annotations.txt"  # a doubtful row for a train song
    annotations.write_text("".join(ln[:-3] + "\t1\n" if ln.startswith(f"{chosen[0].id}\t") else ln
                                   for ln in annotations.read_text().splitlines(keepends=True)))
    with pytest.raises(ValueError, match=rf"{chosen[0].id}: local excluded, published {chosen[0].key}"):
        _task().tracks(tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# prepare(): md5-checked, resumable downloads from mirrors (a local HTTP server stands in for the hosts)


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` by path, honouring ``Range: bytes=N-`` (206), and logs every request."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        asked = self.headers.get("Range")
        self.server.requests.append((self.path, asked))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(asked.split("=")[1].split("-")[0]) if asked else 0
        self.send_response(206 if asked else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_prepare_resumes_falls_back_to_the_next_mirror_and_reports_what_failed(tmp_path, server, monkeypatch):
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(gk, "AUDIO_MIRRORS", {gk.KEY_REPO: (f"{base}/p/key/", f"{base}/f/"),
                                              gk.MTG_REPO: (f"{base}/p/mtg/", f"{base}/f/")})
    audio = {name: hashlib.sha256(name.encode()).digest() * 4000 for name in ("a", "b", "c", "d")}
    ids = {"a": (gk.KEY_REPO, "10089"), "b": (gk.MTG_REPO, "5061"), "c": (gk.MTG_REPO, "5881"),
           "d": (gk.KEY_REPO, "61415")}
    monkeypatch.setattr(gk, "md5_table", lambda: {ids[n]: hashlib.md5(audio[n]).hexdigest() for n in ids})

    commit = "0" * 40  # the key set's annotation archive: GitHub's layout, one top folder <repo>-<commit>/
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{gk.KEY_REPO}-{commit}/annotations/key/10089.LOFI.key", "D major")
        z.writestr(f"{gk.KEY_REPO}-{commit}/md5/10089.LOFI.md5", hashlib.md5(audio["a"]).hexdigest() + "\n")
    server.files["/archive/key.zip"] = buf.getvalue()
    monkeypatch.setattr(gk, "ANNOTATION_ARCHIVES", {gk.KEY_REPO: {
        "commit": commit, "url": f"{base}/archive/key.zip", "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}})

    root = tmp_path / "giantsteps_key"
    path = {n: gk.audio_path(root, *ids[n]) for n in ids}
    server.files.update({"/p/key/10089.LOFI.mp3": audio["a"],              # a: resumed from a partial download
                         "/p/mtg/5061.LOFI.mp3": b"not the published file",  # b: bad primary, good fallback
                         "/f/5061.LOFI.mp3": audio["b"]})                  # c: on no mirror; d: already here
    path["a"].parent.mkdir(parents=True)
    path["a"].with_name("10089.LOFI.mp3.part").write_bytes(audio["a"][:50000])
    path["d"].write_bytes(audio["d"])

    with pytest.raises(RuntimeError, match=r"(?s)1 item\(s\) could not be fetched.*5881\.LOFI\.mp3"):
        _task().prepare(tmp_path)
    for n in "abd":
        assert hashlib.md5(path[n].read_bytes()).hexdigest() == hashlib.md5(audio[n]).hexdigest(), n
    assert not path["c"].exists()
    assert (root / gk.KEY_REPO / "annotations/key/10089.LOFI.key").read_text() == "D major"
    assert ("/p/key/10089.LOFI.mp3", "bytes=50000-") in server.requests
    assert [p for p, _ in server.requests if "5061" in p] == ["/p/mtg/5061.LOFI.mp3", "/f/5061.LOFI.mp3"]
    assert not any("61415" in p for p, _ in server.requests)

    server.requests.clear()
    server.files["/f/5881.LOFI.mp3"] = audio["c"]
    _task().prepare(tmp_path)  # completes; only the missing file is fetched, the archive is not fetched again
    assert hashlib.md5(path["c"].read_bytes()).hexdigest() == hashlib.md5(audio["c"]).hexdigest()
    assert [p for p, _ in server.requests] == ["/p/mtg/5881.LOFI.mp3", "/f/5881.LOFI.mp3"]


# ----------------------------------------------------------------------------------------------------------------
# End to end on a fixture in the real layout


def _tonal_preview(key: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Chords I-IV-V-I of the key (2 s each, harmonic tones) over a tonic bass: audio whose key is the label."""
    tonic_name, mode = key.split()
    tonic = gk.TONICS_FLAT.index(tonic_name)
    third = 4 if mode == "major" else 3
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for n, degree in enumerate(np.resize([0, 5, 7, 0], int(np.ceil(seconds / 2)))):
        seg = slice(int(2 * n * sr), int(2 * (n + 1) * sr))
        tt = t[seg] - 2 * n
        env = np.minimum(1.0, 20 * tt) * np.exp(-1.2 * tt)
        scale_third = third if degree != 7 else 4  # the dominant is major in both modes
        for semis in (degree, degree + scale_third, degree + 7):
            f = 440.0 * 2 ** ((48 + tonic + semis - 69) / 12)
            out[seg] += env * sum(np.sin(2 * np.pi * k * f * tt + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
        out[seg] += 0.8 * env * np.sin(2 * np.pi * 440.0 * 2 ** ((36 + tonic - 69) / 12) * tt)
    return (0.25 * out / np.abs(out).max()).astype(np.float32)


def test_end_to_end_run_on_fixture_scores_per_song_over_two_30s_windows(compose_config, tmp_path, monkeypatch):
    from benchmark.runner import run

    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "digests.json"))
    songs = gk.read_manifest()
    train = [s for s in songs if s.split == "train"][:5]
    chosen = train + [s for s in songs if s.split == "valid"][:2] + [s for s in songs if s.split == "test"][:2]
    root = tmp_path / "data" / "giantsteps_key"
    _copy_annotations(root, chosen)
    rng = np.random.default_rng(0)
    md5s = dict(gk.md5_table())
    for s in chosen:  # 65 s previews: exactly two 30 s windows, the 5 s rest dropped
        path = gk.audio_path(root, s.repo, s.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _tonal_preview(s.key, 65.0, 22050, rng), 22050, format="MP3")
        if s is not train[-1]:  # the last train song keeps its published md5: a corrupt file, skipped
            md5s[(s.repo, s.id)] = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setattr(gk, "md5_table", lambda: md5s)

    config = compose_config("task=giantsteps_key", "model=mfcc", "trainer.max_epochs=3", "max_missing_fraction=1.0")
    record = run(config, console=Console(quiet=True))

    assert record["task_type"] == "key" and record["primary_metric"] == "weighted_score"
    assert record["split_sizes"] == {"train": 4, "valid": 2, "test": 2}
    assert train[-1].id in record["skipped"]["train"] and len(record["skipped"]["test"]) == 602
    assert record["window"] == {"window": 30.0, "hop": 30.0, "min_fraction": 0.99}
    for row in record["layers"]:
        for split in ("valid", "test"):
            scores = row[split]
            assert set(scores) == {"weighted_score", "accuracy"}
            assert 0.0 <= scores["accuracy"] <= scores["weighted_score"] <= 1.0
    cache = Path(record["feature_cache"]["dir"])
    for split, n in record["split_sizes"].items():
        index = json.loads((cache / f"{split}.index.json").read_text())
        assert np.bincount(index["window_track"]).tolist() == [2] * n  # two windows per song, averaged per song
