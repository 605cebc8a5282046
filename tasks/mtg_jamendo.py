"""mtg_top50, mtg_genre, mtg_moodtheme, mtg_instrument: MTG-Jamendo auto-tagging (multilabel; macro ROC-AUC and
macro average precision), MARBLE's MTGTop50 / MTGGenre / MTGMood / MTGInstrument.

The four tasks are the four tag subsets of the official **split-0** autotagging lists of MTG-Jamendo (Bogdanov et
al. 2019), the split MARBLE v1 and v2 report on:

=================  =====================  ======  =====================================
task               split files            tags    train / valid / test tracks
=================  =====================  ======  =====================================
mtg_top50          autotagging_top50tags  50      32,136 / 10,888 / 11,356
mtg_genre          autotagging_genre      87      32,572 / 11,043 / 11,479
mtg_moodtheme      autotagging_moodtheme  56       9,949 /  3,802 /  4,231
mtg_instrument     autotagging_instrument 40      14,395 /  5,466 /  5,115
=================  =====================  ======  =====================================

What comes from where:
    split and labels  the 12 published split files ``datasets/mtg_jamendo/splits/split-0/autotagging_<subset>-
                      {train,validation,test}.tsv.gz`` (gzip-compressed byte copies of MTG/mtg-jamendo-dataset's
                      ``data/splits/split-0/``); every row is one track with its artist, album, path, duration and
                      tags. The splits are artist-disjoint, and the four subsets are filtered from one split, so a
                      track is in the same split in every subset it belongs to.
    label order       ``datasets/mtg_jamendo/DERIVED_marble_label_order.tsv``: MARBLE's class index of every tag
                      (first appearance over the train, validation, then test rows). Macro metrics do not depend on
                      the order; it only makes label-vector columns match MARBLE's.
    audio             the user's copy of the ``raw_30s`` **audio-low** release (mono LAME VBR mp3s of whole tracks;
                      what MARBLE v1 downloads): 100 tar archives of about 1.6 GB each, about 156 GB in all.

Layout of the user's copy (``python -m benchmark prepare mtg_top50`` builds it, as MTG's own
``scripts/download/download.py --dataset raw_30s --type audio-low --unpack`` does)::

    <data_root>/mtg_jamendo/00/ ... <data_root>/mtg_jamendo/99/   <NN>/<numeric id>.low.mp3, NN = the last two
                                                                   digits of the id: 41/241.low.mp3 = track_0000241

The four tasks read the same recordings, so each names the same :class:`~benchmark.tasks.base.SharedAudio`
(:meth:`MTGJamendoTask.shared_audio`): the 55,525 tracks of the union of the subsets (32,859 / 11,101 / 11,565),
whose features are extracted once per encoder and window setting and serve all four tasks.

Windowing (the task configs): MARBLE cuts the whole track into non-overlapping 30 s windows from 0 s, keeps a final
window of at least 1 s and drops a shorter one; the suite averages a track's window predictions and scores per track.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import re
import shutil
import urllib.error
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from benchmark.checksums import file_sha256
from benchmark.errors import UserError
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import (MANIFEST_ROOT, SPLITS, DatasetMissingError, SharedAudio, Task, Track,
                                  missing_dataset_message, warn_unknown_config_keys)
from benchmark.tasks.download import download, extract
from benchmark.tasks.registry import register_task

MANIFEST_DIR = MANIFEST_ROOT / "mtg_jamendo"
SPLIT_DIR = MANIFEST_DIR / "splits" / "split-0"
LABEL_ORDER_FILE = MANIFEST_DIR / "DERIVED_marble_label_order.tsv"
TAR_CHECKSUMS_FILE = MANIFEST_DIR / "download" / "raw_30s_audio-low_sha256_tars.txt"

# The folder of the user's copy under data_root (what MTG's download script unpacks the archives into).
FOLDER = "mtg_jamendo"
# The split files name the suite's "valid" split "validation".
SPLIT_FILE_SUFFIX: dict[str, str] = {"train": "train", "valid": "validation", "test": "test"}
HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
TAG_CATEGORIES = ("genre", "instrument", "mood/theme")
_TRACK_ID = re.compile(r"track_(\d{7})")
_ARTIST_ID = re.compile(r"artist_\d{6}")
_ALBUM_ID = re.compile(r"album_\d{6}")

# Where the split files come from: MTG/mtg-jamendo-dataset, unchanged since 3680551 (2019-06-17); read at 1b4fa8c.
SPLIT_VERSION = "MTG/mtg-jamendo-dataset split-0 (unchanged since 3680551, read at 1b4fa8c3)"
LABEL_ORDER = "MARBLE v1 read_class2id: first appearance over the train, validation, test rows"
# The audio every task reads: the cache identity of the shared collection (no task-specific field).
SHARED_IDENTITY: dict[str, str] = {"dataset": "mtg_jamendo", "audio": "raw_30s audio-low",
                                   "split": "split-0 autotagging"}
# Tracks of the union of the four subsets per split (the upstream README's count of split-0 autotagging).
UNION_COUNTS: dict[str, int] = {"train": 32859, "valid": 11101, "test": 11565}

# Mirrors of the audio-low archives, in the order tried: MTG's fast mirror (download.py's default "mtg-fast"), then
# MTG's own server ("mtg"). Tests point this at a local server.
MIRRORS: tuple[str, ...] = (
    "https://cdn.freesound.org/mtg-jamendo/raw_30s/audio-low/",
    "https://essentia.upf.edu/documentation/datasets/mtg-jamendo/raw_30s/audio-low/",
)
ARCHIVE_BYTES = 1_560_000_000  # about 156 GB / 100 archives: for the free-space warning only
TOTAL_SIZE = "about 156 GB"
# Written into <data_root>/mtg_jamendo/.unpacked/<archive>.done (holding its sha256) after an archive is unpacked.
MARKER_DIR = ".unpacked"
MTG_REPOSITORY = "https://github.com/MTG/mtg-jamendo-dataset"

LAYOUT = f"""\
<data_root>/{FOLDER}/00/ ... <data_root>/{FOLDER}/99/   the raw_30s audio-low mp3s, <NN>/<numeric id>.low.mp3
    with NN the last two digits of the id, e.g. 41/241.low.mp3 for track_0000241
(what raw_30s_audio-low-00.tar ... raw_30s_audio-low-99.tar unpack to: 100 archives, {TOTAL_SIZE}; every archive
holds tracks of all four mtg_* tasks, which read the same files)"""

# Task config keys: the schema's (windowing and registration); anything else (added with +task.key=) is a typo.
_CONFIG_KEYS = frozenset(f.name for f in dataclasses.fields(WindowedTaskSpec))


class MalformedSplitFileError(UserError, ValueError):
    """A committed split or label-order file does not read as published (edited, truncated or another release)."""


class ArchiveDownloadError(UserError, RuntimeError):
    """An audio archive could be fetched from none of the mirrors (the message names the manual steps)."""


def task_folder(data_root: Path | str) -> Path:
    """``<data_root>/mtg_jamendo``: the audio folders 00..99, the downloaded archives and the unpack markers."""
    return Path(data_root) / FOLDER


# ----------------------------------------------------------------------------------------------------------------
# The committed split files and label order


@dataclass(frozen=True)
class Subset:
    """One tag subset of the split: the task that reads it, its split-file prefix and MARBLE's task name."""

    task: str
    file_prefix: str
    marble: str
    counts: Mapping[str, int]

    def split_file(self, split: str, split_dir: Path | None = None) -> Path:
        """The committed split file of ``split`` (``valid`` is the files' ``validation``)."""
        return (SPLIT_DIR if split_dir is None else split_dir) / f"{self.file_prefix}-{SPLIT_FILE_SUFFIX[split]}.tsv.gz"


SUBSETS: dict[str, Subset] = {s.task: s for s in (
    Subset("mtg_top50", "autotagging_top50tags", "MTGTop50", {"train": 32136, "valid": 10888, "test": 11356}),
    Subset("mtg_genre", "autotagging_genre", "MTGGenre", {"train": 32572, "valid": 11043, "test": 11479}),
    Subset("mtg_moodtheme", "autotagging_moodtheme", "MTGMood", {"train": 9949, "valid": 3802, "test": 4231}),
    Subset("mtg_instrument", "autotagging_instrument", "MTGInstrument", {"train": 14395, "valid": 5466, "test": 5115}),
)}


@dataclass(frozen=True)
class Row:
    """One row of a split file: a track with its artist, album, published path, full duration (s) and tags."""

    track_id: str
    artist_id: str
    album_id: str
    path: str
    duration: float
    tags: tuple[str, ...]

    @property
    def audio_path(self) -> str:
        """The audio-low file of the track relative to the dataset folder: ``41/241.mp3`` -> ``41/241.low.mp3``."""
        return self.path[: -len(".mp3")] + ".low.mp3"


def _malformed(path: Path, line_no: int | None, problem: str) -> MalformedSplitFileError:
    where = f"{path}:{line_no}" if line_no is not None else str(path)
    return MalformedSplitFileError(
        f"{where}: {problem}. The files under {MANIFEST_DIR} are copies of {MTG_REPOSITORY}'s published split "
        f"files and archive checksums (gzip-compressed), and a label order derived from them; README.md there lists "
        f"the sha256 of each. This one was edited, truncated or replaced: restore it (git checkout) or reinstall the "
        f"package.")


@functools.lru_cache(maxsize=None)
def read_split_file(path: Path) -> tuple[Row, ...]:
    """The rows of one split file as published: gzip, UTF-8, tab-separated, CRLF line ends, header
    ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``, then one tag per further column.

    Everything the tasks rely on is checked, and a deviation is refused with the line number
    (:class:`MalformedSplitFileError`): well-formed ids, ``PATH`` equal to ``<last two digits>/<id>.mp3`` (the audio
    path is derived from it), a numeric duration, at least one tag and every tag prefixed by its category, no track
    twice, rows sorted by track id. A silently misread row would only show up as a wrong score.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise _malformed(path, None, "the split file is missing") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _malformed(path, None, f"not a readable gzip-compressed UTF-8 file ({exc})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or tuple(lines[0].rstrip("\r").split("\t")) != HEADER:
        shown = lines[0][:80] if lines else ""
        raise _malformed(path, 1, f"expected the header {' '.join(HEADER)!r} (tab-separated), found {shown!r}")
    rows: list[Row] = []
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) < len(HEADER):
            raise _malformed(path, line_no, f"{len(fields)} tab-separated fields, a row has at least {len(HEADER)}")
        track_id, artist_id, album_id, rel_path, duration, *tags = fields
        number = _TRACK_ID.fullmatch(track_id)
        if number is None or not _ARTIST_ID.fullmatch(artist_id) or not _ALBUM_ID.fullmatch(album_id):
            raise _malformed(path, line_no, f"ids {track_id!r} {artist_id!r} {album_id!r} are not of the form "
                                            "track_NNNNNNN artist_NNNNNN album_NNNNNN")
        numeric = int(number.group(1))
        if rel_path != f"{numeric % 100:02d}/{numeric}.mp3":
            raise _malformed(path, line_no, f"PATH {rel_path!r} of {track_id} is not "
                                            f"'{numeric % 100:02d}/{numeric}.mp3' (last two digits / numeric id)")
        try:
            seconds = float(duration)
        except ValueError:
            raise _malformed(path, line_no, f"DURATION {duration!r} is not a number") from None
        if not seconds > 0:
            raise _malformed(path, line_no, f"DURATION {duration!r} is not positive")
        bad = [t for t in tags if t.partition("---")[0] not in TAG_CATEGORIES or not t.partition("---")[2]]
        if not tags or bad:
            raise _malformed(path, line_no, f"tags {tags} of {track_id}: a row needs at least one tag, each "
                                            f"'<category>---<tag>' with category one of {', '.join(TAG_CATEGORIES)}")
        if len(set(tags)) != len(tags):
            raise _malformed(path, line_no, f"{track_id} lists a tag twice")
        if rows and rows[-1].track_id >= track_id:
            raise _malformed(path, line_no, f"{track_id} follows {rows[-1].track_id}: rows must be sorted by track "
                                            "id with no track twice")
        rows.append(Row(track_id, artist_id, album_id, rel_path, seconds, tuple(tags)))
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def read_label_order(path: Path = LABEL_ORDER_FILE) -> dict[str, tuple[str, ...]]:
    """MARBLE's class order of each task, ``{marble task: (tag of index 0, tag of index 1, ...)}``.

    The file (``marble_task split_file_subset index tag``) is derived from the split files; the tests rebuild it
    from them. Indices must run 0..n-1 per task without a repeated tag.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _malformed(path, None, f"cannot be read ({exc})") from None
    if not lines or lines[0].split("\t") != ["marble_task", "split_file_subset", "index", "tag"]:
        raise _malformed(path, 1, "expected the header 'marble_task split_file_subset index tag'")
    order: dict[str, list[str]] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 4 or not fields[2].isdigit():
            raise _malformed(path, line_no, f"expected 4 tab-separated fields with a numeric index, found {line!r}")
        tags = order.setdefault(fields[0], [])
        if int(fields[2]) != len(tags) or fields[3] in tags:
            raise _malformed(path, line_no, f"index {fields[2]} of {fields[0]} out of sequence or tag repeated")
        tags.append(fields[3])
    return {task: tuple(tags) for task, tags in order.items()}


def subset_labels(task: str) -> list[str]:
    """The label names of a task (``genre---rock``, ...) in MARBLE's class order."""
    marble = SUBSETS[task].marble
    order = read_label_order()
    if marble not in order:
        raise _malformed(LABEL_ORDER_FILE, None, f"it has no rows for {marble}")
    return list(order[marble])


def subset_rows(task: str) -> dict[str, tuple[Row, ...]]:
    """The rows of a task's three split files, ``{split: rows}``, checked against each other: no track in two
    splits, and every tag one of the task's labels (the label-order file is derived from these very files).

    Parsed once per process (the caches below are keyed by the split folder, so a test reading a modified copy
    leaves the committed files' entries alone).
    """
    return _subset_rows(task, SPLIT_DIR)


@functools.lru_cache(maxsize=None)
def _subset_rows(task: str, split_dir: Path) -> dict[str, tuple[Row, ...]]:
    subset = SUBSETS[task]
    rows = {split: read_split_file(subset.split_file(split, split_dir)) for split in SPLITS}
    labels = set(subset_labels(task))
    seen: dict[str, str] = {}
    for split in SPLITS:
        for row in rows[split]:
            if row.track_id in seen:
                raise _malformed(subset.split_file(split, split_dir), None,
                                 f"{row.track_id} is also in the {seen[row.track_id]} split")
            seen[row.track_id] = split
            unknown = [t for t in row.tags if t not in labels]
            if unknown:
                raise _malformed(subset.split_file(split, split_dir), None,
                                 f"{row.track_id} has tag(s) {unknown} that are not among the {len(labels)} labels "
                                 f"of {task} in {LABEL_ORDER_FILE}")
    return rows


def union_rows() -> tuple[tuple[Row, str], ...]:
    """Every track of the four subsets once, with its split, sorted by track id: the shared audio collection.

    A track in different splits (or with a different path) in two subsets is refused: the subsets are filtered
    from one split of ``autotagging.tsv``, and one cache serving all four tasks relies on it.
    """
    return _union_rows(SPLIT_DIR)


@functools.lru_cache(maxsize=None)
def _union_rows(split_dir: Path) -> tuple[tuple[Row, str], ...]:
    found: dict[str, tuple[Row, str, str]] = {}
    for task in SUBSETS:
        for split, rows in _subset_rows(task, split_dir).items():
            for row in rows:
                other = found.get(row.track_id)
                if other is None:
                    found[row.track_id] = (row, split, task)
                elif (other[1], other[0].path) != (split, row.path):
                    raise _malformed(SUBSETS[task].split_file(split, split_dir), None,
                                     f"{row.track_id} is in {split} here but in {other[1]} in {other[2]}'s files")
    return tuple((row, split) for _, (row, split, _) in sorted(found.items()))


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _subset_tracks(task: str, folder: Path, split_dir: Path) -> tuple[Track, ...]:
    index = {tag: i for i, tag in enumerate(subset_labels(task))}
    return tuple(Track(track_id=row.track_id, path=folder / row.audio_path, split=split,
                       target=tuple(sorted(index[t] for t in row.tags)))
                 for split, rows in _subset_rows(task, split_dir).items() for row in rows)


@functools.lru_cache(maxsize=4)
def _union_tracks(folder: Path, split_dir: Path) -> tuple[Track, ...]:
    return tuple(Track(track_id=row.track_id, path=folder / row.audio_path, split=split, target=())
                 for row, split in _union_rows(split_dir))


# ----------------------------------------------------------------------------------------------------------------
# The audio archives


def read_tar_checksums(path: Path = TAR_CHECKSUMS_FILE) -> dict[str, str]:
    """``{archive name: sha256}`` of the 100 raw_30s audio-low archives, as MTG publishes them
    (``data/download/raw_30s_audio-low_sha256_tars.txt``: ``<sha256> <name>`` per line)."""
    table: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text(encoding="ascii").splitlines(), start=1):
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or \
                not re.fullmatch(r"raw_30s_audio-low-\d\d\.tar", parts[1]):
            raise _malformed(Path(path), line_no, f"expected '<sha256> raw_30s_audio-low-NN.tar', found {line!r}")
        table[parts[1]] = parts[0]
    return table


# The archives prepare() fetches, {name: sha256}. Tests point this at locally built archives.
ARCHIVES: dict[str, str] = read_tar_checksums()


def archive_folder(name: str) -> str:
    """The audio folder an archive unpacks to: ``raw_30s_audio-low-41.tar`` -> ``41``."""
    return name[: -len(".tar")].rsplit("-", 1)[1]


def prepare_audio(data_root: Path, task: str = "mtg_top50", keep_archives: bool = False) -> None:
    """Download, verify and unpack the raw_30s audio-low archives into ``<data_root>/mtg_jamendo/``, one by one.

    Each archive is downloaded resumably (``<name>.part``) and checked against MTG's published sha256, unpacked,
    checked to hold every listed track of its folder, marked done (``.unpacked/<name>.done``, holding its sha256)
    and then deleted unless ``keep_archives``. An interrupted prepare resumes at the archive it was on: done ones
    are skipped (remove a marker to unpack that archive again), a verified archive already in the folder is used
    without downloading. Deleting each archive after unpacking keeps the disk need near the audio's own size
    (the 100 archives are about 156 GB; MTG's script does the same with ``--remove``).
    """
    folder = task_folder(data_root)
    folder.mkdir(parents=True, exist_ok=True)
    markers = folder / MARKER_DIR
    todo = [name for name in sorted(ARCHIVES) if not _is_done(markers / f"{name}.done", ARCHIVES[name])]
    if not todo:
        print(f"{task}: all {len(ARCHIVES)} audio archives already unpacked in {folder} (remove a marker in "
              f"{markers} to unpack that archive again)")
        return
    free = shutil.disk_usage(folder).free
    need = len(todo) * ARCHIVE_BYTES
    print(f"{task}: {len(todo)} of {len(ARCHIVES)} raw_30s audio-low archives to fetch and unpack into {folder} "
          f"(about {need / 1e9:.0f} GB; {free / 1e9:.0f} GB free)")
    if free < need:
        print(f"{task}: warning: the {len(todo)} archives unpack to about {need / 1e9:.0f} GB, more than the "
              f"{free / 1e9:.0f} GB free here; the archives unpacked before the disk fills are kept, and a rerun "
              f"with more space resumes after them")
    expected = _tracks_by_folder()
    for k, name in enumerate(todo, start=1):
        digest = ARCHIVES[name]
        archive = _fetch_archive(name, digest, folder, task, done=len(ARCHIVES) - len(todo) + k - 1)
        print(f"{task}: [{k}/{len(todo)}] unpacking {name}")
        extract(archive, folder)
        sub = archive_folder(name)
        absent = [p for p in expected.get(sub, []) if not (folder / p).is_file()]
        if absent:
            raise ArchiveDownloadError(
                f"{task}: {archive} (sha256 {digest}) unpacked, but {len(absent)} track(s) of the split that belong "
                f"in {folder / sub} are not there (e.g. {', '.join(absent[:5])}); the archive is not the published "
                f"raw_30s audio-low archive. Remove it and run `python -m benchmark prepare {task}` again.")
        markers.mkdir(exist_ok=True)
        (markers / f"{name}.done").write_text(digest + "\n", encoding="ascii")
        if not keep_archives:
            archive.unlink()
    print(f"{task}: ready in {folder} (check with `python -m benchmark check task={task} data_root={data_root}`)")


def _is_done(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text(encoding="ascii").strip() == digest
    except (OSError, UnicodeDecodeError):
        return False


def _tracks_by_folder() -> dict[str, list[str]]:
    """Audio paths of the union's tracks grouped by folder ``NN``: what each archive must provide."""
    out: dict[str, list[str]] = {}
    for row, _ in union_rows():
        out.setdefault(row.audio_path[:2], []).append(row.audio_path)
    return out


def _fetch_archive(name: str, digest: str, folder: Path, task: str, done: int) -> Path:
    """Download one archive from the first mirror that serves it with the published sha256."""
    failures: list[str] = []
    for base in MIRRORS:
        url = base + name
        print(f"{task}: {name} <- {url} (sha256 {digest[:12]}...)")
        try:
            return download(url, folder / name, checksum=("sha256", digest))
        except (urllib.error.URLError, OSError, UserError) as exc:
            failures.append(f"{url}: {exc}")
    raise ArchiveDownloadError(
        f"{task}: could not download {name} from any mirror ({'; '.join(failures)}). The archives unpacked so far "
        f"({done} of {len(ARCHIVES)}) are kept (markers in {folder / MARKER_DIR}) and a partial download resumes: run "
        f"`python -m benchmark prepare {task}` again later. Or fetch it by hand: put {name} (sha256 {digest}) at "
        f"{folder / name} and rerun (a verified archive there is used as is), or in a clone of {MTG_REPOSITORY} run "
        f"`python3 scripts/download/download.py --dataset raw_30s --type audio-low --unpack --remove {folder}` "
        f"({TOTAL_SIZE}), which gives the layout: {' '.join(LAYOUT.split())}")


# ----------------------------------------------------------------------------------------------------------------
# The tasks


class MTGJamendoTask(Task):
    """One MTG-Jamendo tag subset (a subclass per subset): split-0 tracks, MARBLE label order, shared audio."""

    task_type = "multilabel"

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        warn_unknown_config_keys(self.name, self.cfg, _CONFIG_KEYS)

    @property
    def subset(self) -> Subset:
        return SUBSETS[self.name]

    def tracks(self, data_root: Path) -> list[Track]:
        """Every track of the subset's split files, its target the indices of its tags in the label order.

        The audio of a track is ``<data_root>/mtg_jamendo/<NN>/<id>.low.mp3``; absent files are listed by
        ``check`` and skipped by a run (within ``max_missing_fraction``). The dataset counts as missing when none
        of the 100 folders 00..99 exists (``data_root=datasets`` holds this folder's committed split files, which
        are not audio).
        """
        folder = task_folder(data_root)
        if not folder.is_dir() or not any((folder / f"{n:02d}").is_dir() for n in range(100)):
            fetch = (f"`{self.fetch_command()}` downloads the 100 archives ({TOTAL_SIZE}, sha256-checked, resumable; "
                     f"any mtg_* task fetches the audio of all four), or in a clone of {MTG_REPOSITORY} run "
                     f"`python3 scripts/download/download.py --dataset raw_30s --type audio-low --unpack --remove "
                     f"{folder}`")
            raise DatasetMissingError(missing_dataset_message(self.name, folder, LAYOUT, fetch))
        return list(_subset_tracks(self.name, folder, SPLIT_DIR))

    def shared_audio(self, data_root: Path) -> SharedAudio:
        """The 55,525 tracks of the four subsets' split files (one extraction serves mtg_top50, mtg_genre,
        mtg_moodtheme and mtg_instrument): the same identity and item list whichever task asks, and whatever is on
        disk, sorted by track id; each item has the path, offset 0 and whole-file duration of the task tracks."""
        return SharedAudio(identity=dict(SHARED_IDENTITY), tracks=_union_tracks(task_folder(data_root), SPLIT_DIR))

    def dataset_identity(self) -> dict[str, Any]:
        """The audio release, the split files (their sha256) and the label order: what decides which tracks are
        read and the columns of their targets."""
        subset = self.subset
        return {"task": self.name, **SHARED_IDENTITY, "split_files": f"{SPLIT_VERSION} {subset.file_prefix}",
                "split_sha256": _sha256_files([subset.split_file(s) for s in SPLITS]),
                "labels": LABEL_ORDER, "labels_sha256": hashlib.sha256("\n".join(self.labels).encode()).hexdigest()}

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """None per track: MTG publishes the sha256 of each audio-low *archive* (checked by ``prepare`` when it
        downloads one), and per-track sha256 only in a 4 MiB file that is not committed here. A track is then
        verified by being decoded when a run reads it."""
        return {}

    def prepare(self, data_root: Path) -> None:
        """Fetch the audio every mtg_* task reads (:func:`prepare_audio`: 100 archives, about 156 GB)."""
        prepare_audio(Path(data_root), self.name)


@register_task("mtg_top50", schema=WindowedTaskSpec)
class MTGTop50(MTGJamendoTask):
    """MTG-Jamendo top-50 tags (MARBLE MTGTop50), official split-0, artist-disjoint."""

    name = "mtg_top50"
    labels = subset_labels(name)
    expected_counts = dict(SUBSETS[name].counts)


@register_task("mtg_genre", schema=WindowedTaskSpec)
class MTGGenre(MTGJamendoTask):
    """MTG-Jamendo genre tags (MARBLE MTGGenre), official split-0, artist-disjoint."""

    name = "mtg_genre"
    labels = subset_labels(name)
    expected_counts = dict(SUBSETS[name].counts)


@register_task("mtg_moodtheme", schema=WindowedTaskSpec)
class MTGMoodTheme(MTGJamendoTask):
    """MTG-Jamendo mood/theme tags (MARBLE MTGMood), official split-0, artist-disjoint."""

    name = "mtg_moodtheme"
    labels = subset_labels(name)
    expected_counts = dict(SUBSETS[name].counts)


@register_task("mtg_instrument", schema=WindowedTaskSpec)
class MTGInstrument(MTGJamendoTask):
    """MTG-Jamendo instrument tags (MARBLE MTGInstrument), official split-0, artist-disjoint."""

    name = "mtg_instrument"
    labels = subset_labels(name)
    expected_counts = dict(SUBSETS[name].counts)
