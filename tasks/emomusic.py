"""emomusic: static music emotion regression on emoMusic / MediaEval 2013 "1000 songs" (arousal, valence).

The dataset as its authors distribute it (http://cvml.unige.ch/databases/emoMusic/)::

    <data_root>/emomusic/clips_45seconds/<song_id>.mp3          45-s excerpts (clips_45sec.tar.gz)
    <data_root>/emomusic/annotations/static_annotations.csv     song_id, mean_arousal, std_arousal,
                                                               mean_valence, std_valence  (annotations.tar.gz)
    <data_root>/emomusic/annotations/songs_info.csv             song_id, file_name, Artist, Song title,
                                                               start/end of the segment (min.sec), Genre,
                                                               Mediaeval 2013 set

Both CSVs have CRLF line endings and values padded with whitespace in places, so rows are read with the csv
module (``newline=""``) and every header and value is stripped.

Split (the one jukemir and MARBLE v1 use, so scores are comparable with theirs): test = the 125 songs of the
MediaEval 2013 "evaluation" set; the 619 "development" songs are split by artist with a hash of the normalised
artist name (:func:`artist_split`), buckets 0-7 of 10 train and 8-9 valid: 504 / 115 / 125 songs. The split is
derived from the user's songs_info.csv every time and compared with the committed
``datasets/emomusic/songs.csv``, so an annotation file from another release (DEAM, an edited copy) is caught
before it silently changes the benchmark.

Targets: ``[arousal, valence]`` mean ratings (1-9 scale) z-scored with the mean and population standard deviation
of the 619 development songs (see :func:`zscore_statistics` for why not train-only): the targets jukemir and
MARBLE v1 publish and score. Like every regression task's, they are z-scored once more with train statistics for
the probe's optimisation (``benchmark.kinds.clip.standardized_targets``); that per-target affine map leaves R2
unchanged, so the reported R2 is the R2 on these published targets.

Windows: ``task.window_seconds`` (5 s); ``task.crop_seconds: 30`` windows only each clip's first 30 s as MARBLE v1
does (null, the default, windows all 45 s).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import MANIFEST_ROOT, DatasetMissingError, Task, Track, missing_dataset_message
from benchmark.tasks.download import download, extract
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

TASK_NAME = "emomusic"
CLIPS_DIR = "clips_45seconds"
ANNOTATIONS_DIR = "annotations"
SONGS_INFO = "songs_info.csv"
STATIC_ANNOTATIONS = "static_annotations.csv"
# The committed split (song_id, split) that the derivation from the user's songs_info.csv must reproduce.
SONGS_MANIFEST = MANIFEST_ROOT / TASK_NAME / "songs.csv"

# songs_info.csv / static_annotations.csv header names, as published (verified against the raw rows that
# jukemir's metadata/emomusic.json.gz carries for all 744 songs).
COL_ID = "song_id"
COL_ARTIST = "Artist"
COL_START = "start of the segment (min.sec)"
COL_END = "end of the segment (min.sec)"
COL_SET = "Mediaeval 2013 set"
COL_AROUSAL = "mean_arousal"
COL_VALENCE = "mean_valence"
CLIP_SECONDS = 45.0

# The archives the dataset's authors publish, with the sha256 that jukemir's assets/emomusic.json records.
# ``into`` is the folder (relative to <data_root>/emomusic) the archive is unpacked into: the clips archive holds
# a clips_45seconds/ folder; the annotations archive holds the CSVs at its top level. Tests point the URLs at
# local file:// archives.
ARCHIVES: dict[str, dict[str, str]] = {
    "clips": {
        "url": "http://cvml.unige.ch/databases/emoMusic/clips_45sec.tar.gz",
        "sha256": "3994a5d5fefc27f9540d1a69cd7f1294c68e6cb311ce49765021e2e9c7a1057b",
        "file": "clips_45sec.tar.gz",
        "into": ".",
    },
    "annotations": {
        "url": "http://cvml.unige.ch/databases/emoMusic/annotations.tar.gz",
        "sha256": "e0cb0b06e1b0ce7f04b1572fc410937699b7fad9dae67ddaa745f06cda4b0b33",
        "file": "annotations.tar.gz",
        "into": ANNOTATIONS_DIR,
    },
}

LAYOUT = f"""\
<data_root>/emomusic/{CLIPS_DIR}/<song_id>.mp3         (2.mp3 ... 1000.mp3; 744 songs are used)
<data_root>/emomusic/{ANNOTATIONS_DIR}/{STATIC_ANNOTATIONS}
<data_root>/emomusic/{ANNOTATIONS_DIR}/{SONGS_INFO}
(from {ARCHIVES['clips']['url']} and {ARCHIVES['annotations']['url']})"""


# ------------------------------------------------------------------------------------------------------------
# Parsing the published files


def parse_minsec(text: str) -> float:
    """Seconds from songs_info.csv's ``min.sec`` notation, which is *not* decimal minutes.

    ``1.33`` is 1:33 (93 s); a single digit after the dot is tens of seconds (``0.2`` = 0:20, the trailing zero was
    lost when the file was saved as numbers); no dot means whole minutes (``1`` = 1:00).
    """
    value = text.strip()
    minutes, dot, seconds = value.partition(".")
    if not minutes.isdigit() or (dot and not seconds.isdigit()) or len(seconds) > 2:
        raise ValueError(f"not a min.sec time: {text!r} (expected e.g. 0.48, 1.3 or 2)")
    if len(seconds) == 1:
        seconds += "0"
    secs = int(seconds) if seconds else 0
    if secs >= 60:
        raise ValueError(f"not a min.sec time: {text!r} (seconds part {secs} >= 60)")
    return 60.0 * int(minutes) + secs


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a published emoMusic CSV as ``{header: value}``, headers and values stripped.

    The files have CRLF line endings (``newline=""`` lets the csv module consume them, so no value ends in
    ``\\r``) and some padded values. They are UTF-8 (artist names such as "Vieux Farka Touré"); a copy re-saved in
    a legacy code page is read as cp1252 rather than refused, since only ASCII letters of the artist enter the
    split and only numbers enter the targets.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValueError(f"{path} is empty") from None
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue  # blank line (a trailing CRLF, an empty record)
        rows.append({h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)})
    return rows


def _require_columns(path: Path, rows: list[dict[str, str]], columns: Iterable[str]) -> None:
    have = list(rows[0]) if rows else []
    missing = [c for c in columns if c not in have]
    if missing:
        hint = ""
        if "valence_mean" in have or "arousal_mean" in have:
            hint = (" This looks like DEAM's static_annotations.csv (MediaEval 2015+, 1,802 songs), a different "
                    "dataset: emoMusic 2013 is the '1000 songs' release.")
        raise ValueError(f"{path}: missing column(s) {missing}; found {have}.{hint} "
                         f"Use the files of {ARCHIVES['annotations']['url']}")


@dataclass(frozen=True)
class Song:
    """One song of the dataset, as its two annotation files describe it."""

    song_id: str
    artist: str
    mediaeval_set: str  # "development" or "evaluation"
    segment_start: float  # seconds into the original song where the 45-s clip starts (metadata only)
    arousal: float  # mean static rating, 1-9
    valence: float


def _song_id(path: Path, value: str) -> str:
    if not value.isdigit():
        raise ValueError(f"{path}: song_id {value!r} is not an integer")
    return str(int(value))  # "0002" and "2" are one song; clips are named without padding


def read_songs(annotations_dir: Path) -> dict[str, Song]:
    """Join songs_info.csv and static_annotations.csv by song id.

    Raises ``ValueError`` naming the file and row for anything the split or targets would silently absorb: a
    missing column, an unknown MediaEval set, a segment that is not 45 s, an unparseable rating, duplicate ids.
    """
    info_path, static_path = annotations_dir / SONGS_INFO, annotations_dir / STATIC_ANNOTATIONS
    info_rows, static_rows = read_csv_rows(info_path), read_csv_rows(static_path)
    _require_columns(info_path, info_rows, (COL_ID, COL_ARTIST, COL_START, COL_END, COL_SET))
    _require_columns(static_path, static_rows, (COL_ID, COL_AROUSAL, COL_VALENCE))
    ratings: dict[str, tuple[float, float]] = {}
    for line, row in enumerate(static_rows, start=2):
        sid = _song_id(static_path, row[COL_ID])
        if sid in ratings:
            raise ValueError(f"{static_path} line {line}: song_id {sid} appears twice")
        try:
            ratings[sid] = (float(row[COL_AROUSAL]), float(row[COL_VALENCE]))
        except ValueError:
            raise ValueError(f"{static_path} line {line}: unparseable rating(s) {row[COL_AROUSAL]!r}, "
                             f"{row[COL_VALENCE]!r}") from None
    songs: dict[str, Song] = {}
    for line, row in enumerate(info_rows, start=2):
        sid = _song_id(info_path, row[COL_ID])
        if sid in songs:
            raise ValueError(f"{info_path} line {line}: song_id {sid} appears twice")
        if row[COL_SET] not in ("development", "evaluation"):
            raise ValueError(f"{info_path} line {line}: '{COL_SET}' is {row[COL_SET]!r}, expected development "
                             "or evaluation")
        try:
            start, end = parse_minsec(row[COL_START]), parse_minsec(row[COL_END])
        except ValueError as exc:
            raise ValueError(f"{info_path} line {line}: {exc}") from None
        if end - start != CLIP_SECONDS:
            raise ValueError(f"{info_path} line {line}: segment {row[COL_START]}-{row[COL_END]} is "
                             f"{end - start:g} s, not the 45 s of every emoMusic clip")
        if sid not in ratings:
            raise ValueError(f"{static_path}: no ratings for song {sid} listed in {info_path}")
        songs[sid] = Song(sid, row[COL_ARTIST], row[COL_SET], start, *ratings[sid])
    return songs


# ------------------------------------------------------------------------------------------------------------
# Split and targets


def artist_key(artist: str) -> str:
    """The normalised artist name the split hashes: lowercased, then only ASCII letters and whitespace kept,
    whitespace runs collapsed to one space (so "Vieux Farka Touré" and "vieux  farka tour" are one artist)."""
    kept = "".join(c for c in artist.lower() if c.isascii() and (c.isalpha() or c.isspace()))
    return " ".join(kept.split())


def artist_split(artist: str) -> str:
    """train or valid for a development-set artist: ``int(sha1(key), 16) % 10``, buckets 0-7 train, 8-9 valid.

    Hashing the artist (not the song) keeps every artist on one side, so valid measures generalisation to unseen
    artists; hashing (not a random draw) makes the split a pure function of the published metadata.
    """
    bucket = int(hashlib.sha1(artist_key(artist).encode("utf-8")).hexdigest(), 16) % 10
    return "train" if bucket < 8 else "valid"


def song_split(mediaeval_set: str, artist: str) -> str:
    """The benchmark split of a song: MediaEval evaluation -> test; development -> :func:`artist_split`."""
    if mediaeval_set == "evaluation":
        return "test"
    if mediaeval_set == "development":
        return artist_split(artist)
    raise ValueError(f"unknown MediaEval 2013 set {mediaeval_set!r}; expected development or evaluation")


def read_split_manifest(path: Path = SONGS_MANIFEST) -> dict[str, str]:
    """The committed ``song_id -> split`` (744 songs)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {str(int(row["song_id"])): row["split"] for row in csv.DictReader(fh)}


def zscore_statistics(songs: Iterable[Song]) -> dict[str, tuple[float, float]]:
    """``{target: (mean, population std)}`` over the MediaEval development songs.

    The field (jukemir, MARBLE v1, whose published EMO numbers this task is compared with) standardises with the
    statistics of all 619 development songs, i.e. train + valid, computed before the artist split (ddof=0, as
    numpy.std), so the tracks carry exactly the targets the field trained on and scored. Valid ratings enter only a
    mean and a std, the same for every probe, so layer selection is not biased by them.

    The probe does not train on these values directly: the regression kind z-scores every regression task's
    targets with train statistics (``benchmark.kinds.clip.standardized_targets``), here a shift of 0.012 / 0.018
    and a scale of 1.005 / 1.006 (arousal / valence) away from these targets. The probe's predictions are scored
    on that scale, which gives the R2 of the same predictions mapped back to the published targets: the map is
    ``(y - mean) / std`` per target with std > 0, R2 is unchanged when truth and prediction go through one such
    map, and averaging window predictions per song commutes with it. What differs from MARBLE is only the MSE's
    weighting of arousal against valence (by 0.3 %) and the scale the learning rate acts on (by < 0.6 %).
    """
    dev = [s for s in songs if s.mediaeval_set == "development"]
    if not dev:
        raise ValueError("no MediaEval 2013 development songs to standardise the targets with")
    out = {}
    for name in EmoMusic.labels:
        values = np.asarray([getattr(s, name) for s in dev], dtype=np.float64)
        out[name] = (float(values.mean()), float(values.std(ddof=0)))
    return out


# ------------------------------------------------------------------------------------------------------------
# The task


@register_task("emomusic", schema=WindowedTaskSpec)
class EmoMusic(Task):
    """Static emotion regression on emoMusic (MediaEval 2013): arousal and valence of 45-s clips, R2."""

    name = TASK_NAME
    task_type = "regression"
    labels = ["arousal", "valence"]
    expected_counts = {"train": 504, "valid": 115, "test": 125}

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        # Filled by tracks(): the development statistics the published targets were z-scored with (for the
        # record and tests); the probe's own train re-scaling happens later, in the regression kind.
        self.target_statistics: dict[str, tuple[float, float]] = {}

    def task_dir(self, data_root: Path | str) -> Path:
        return Path(data_root) / TASK_NAME

    def tracks(self, data_root: Path) -> list[Track]:
        """The 744 songs of the committed split, with z-scored ``(arousal, valence)`` targets.

        Targets and the split are computed from the user's annotation files; a song whose derived split differs
        from the committed one is an error (another release of the files), songs the files list beyond the 744
        are ignored with a warning.
        """
        folder = self.task_dir(data_root)
        annotations = folder / ANNOTATIONS_DIR
        if not folder.is_dir():
            raise DatasetMissingError(missing_dataset_message(TASK_NAME, folder, LAYOUT, self.fetch_command()))
        for name in (SONGS_INFO, STATIC_ANNOTATIONS):
            if not (annotations / name).is_file():
                raise DatasetMissingError(missing_dataset_message(
                    TASK_NAME, folder, f"{LAYOUT}\n(missing: {annotations / name})", self.fetch_command()))
        songs = read_songs(annotations)
        committed = read_split_manifest()
        absent = sorted((sid for sid in committed if sid not in songs), key=int)
        if absent:
            raise ValueError(f"{annotations / SONGS_INFO} lacks {len(absent)} of the {len(committed)} songs of the "
                             f"benchmark (e.g. {', '.join(absent[:5])}); use the files of "
                             f"{ARCHIVES['annotations']['url']}")
        extra = sorted((sid for sid in songs if sid not in committed), key=int)
        if extra:
            log.warning("emomusic: ignoring %d song(s) of %s outside the benchmark's 744 (e.g. %s)", len(extra),
                        annotations / SONGS_INFO, ", ".join(extra[:5]))
        differ = [sid for sid in committed
                  if song_split(songs[sid].mediaeval_set, songs[sid].artist) != committed[sid]]
        if differ:
            sid = differ[0]
            raise ValueError(
                f"{annotations / SONGS_INFO}: the split derived for {len(differ)} song(s) differs from the committed "
                f"{SONGS_MANIFEST} (song {sid}, artist {songs[sid].artist!r}, set {songs[sid].mediaeval_set}: "
                f"derived {song_split(songs[sid].mediaeval_set, songs[sid].artist)}, committed {committed[sid]}); "
                f"these files are not the published emoMusic 2013 annotations ({ARCHIVES['annotations']['url']})")
        used = [songs[sid] for sid in sorted(committed, key=int)]
        self.target_statistics = stats = zscore_statistics(used)
        clips = folder / CLIPS_DIR
        return [
            Track(track_id=s.song_id, path=clips / f"{s.song_id}.mp3", split=committed[s.song_id],
                  target=tuple((getattr(s, t) - stats[t][0]) / stats[t][1] for t in self.labels))
            for s in used
        ]

    def dataset_identity(self) -> dict[str, Any]:
        """The release (archive checksums), the split rule and the target scaling: what decides audio and labels."""
        return {"task": TASK_NAME, "release": "emoMusic 2013 (MediaEval '1000 songs')",
                "clips_sha256": ARCHIVES["clips"]["sha256"], "annotations_sha256": ARCHIVES["annotations"]["sha256"],
                "split": "jukemir-v1 (evaluation=test; development by sha1(artist) % 10, 0-7 train)",
                "targets": "zscore-development-ddof0"}

    def fetch_command(self) -> str:
        return f"python -m benchmark prepare {TASK_NAME} data_root=<data_root>"

    def prepare(self, data_root: Path) -> None:
        """Download the two published archives (sha256-checked, resumable) and unpack them into the layout.

        Skips what is already in place. The archives are kept next to the data (a rerun then neither downloads
        nor unpacks again); they can be deleted once ``python -m benchmark check task=emomusic`` passes.
        """
        folder = self.task_dir(data_root)
        folder.mkdir(parents=True, exist_ok=True)
        annotations = folder / ANNOTATIONS_DIR
        wanted = {
            "annotations": lambda: all((annotations / n).is_file() for n in (SONGS_INFO, STATIC_ANNOTATIONS)),
            "clips": lambda: all((folder / CLIPS_DIR / f"{sid}.mp3").is_file() for sid in read_split_manifest()),
        }
        for key in ("annotations", "clips"):
            if wanted[key]():
                print(f"emomusic: {key} already in place")
                continue
            spec = ARCHIVES[key]
            archive = folder / spec["file"]
            try:
                download(spec["url"], archive, ("sha256", spec["sha256"]))
            except OSError as exc:
                print(f"emomusic: could not download {spec['url']} ({exc}).\nManual steps: fetch {spec['file']} "
                      f"(sha256 {spec['sha256']}) from the emoMusic page http://cvml.unige.ch/databases/emoMusic/ "
                      f"into {folder} and rerun this command, or unpack it yourself into this layout:\n{LAYOUT}")
                raise
            extract(archive, folder / spec["into"])
            if key == "annotations":
                _flatten_single_folder(annotations, STATIC_ANNOTATIONS)
            if not wanted[key]():
                raise RuntimeError(f"emomusic: {archive} did not unpack into the expected layout:\n{LAYOUT}")
        print(f"emomusic: ready in {folder}")


def _flatten_single_folder(folder: Path, marker: str) -> None:
    """Move the files of ``folder/<one subfolder>/`` up when the archive wrapped them in a folder of its own."""
    if (folder / marker).is_file():
        return
    found = sorted(folder.rglob(marker))
    if len(found) != 1:
        return
    inner = found[0].parent
    for item in inner.iterdir():
        target = folder / item.name
        if not target.exists():
            shutil.move(str(item), str(target))

