"""mtt: MagnaTagATune auto-tagging (multilabel, top-50 tags; macro ROC-AUC and macro average precision).

The split is the one jukemir and MARBLE v1 report: by the first character of ``mp3_path``, folders ``0``-``b``
train, ``c`` valid, ``d``-``f`` test; every annotated clip with audio is kept, including the clips that carry
none of the top-50 tags (an all-zero target), and the three clips whose mp3 is corrupt (35644, 55753, 57881) are
left out: **18,706 / 1,825 / 5,329** clips. Lee's / minzwon's split (15,244 / 1,529 / 4,332) drops the tag-less
clips and is a different benchmark.

What comes from where:
    split membership  the committed manifest ``datasets/mtt/clips.csv`` (clip_id, mp3_path, split), derived from
                      jukemir's ``metadata/magnatagatune.json.gz`` by :func:`manifest_rows_from_jukemir`
    label vocabulary  ``datasets/mtt/top50_tags.txt`` (the 50 most frequent tags, in MARBLE v2's order: see
                      ``datasets/mtt/README.md`` for the tie at columns 47/48 and the mapping to Lee's order)
    labels            the user's ``annotations_final.csv`` as distributed: tab-separated, every field quoted,
                      ``clip_id``, 188 tag columns of 0/1, ``mp3_path``. Columns are read by name. When the file
                      covers every clip of the split, the top 50 computed from it must be the committed 50
                      (a different release of the annotations is refused with a message saying what differs).

Layout of the user's copy (``python -m benchmark prepare mtt`` builds it)::

    <data_root>/mtt/annotations_final.csv
    <data_root>/mtt/0/ ... <data_root>/mtt/f/     the mp3s (``mp3.zip.001``-``003`` concatenated and unzipped)

A track is a clip (about 29.1 s of 16 kHz mono mp3); its id is the ``clip_id``.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import json
import logging
import os
import shutil
import urllib.error
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from benchmark.checksums import file_sha256
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import (MANIFEST_ROOT, DatasetMissingError, Task, Track, missing_dataset_message,
                                  warn_unknown_config_keys)
from benchmark.tasks.download import download, extract
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

MANIFEST_DIR = MANIFEST_ROOT / "mtt"
CLIPS_FILE = MANIFEST_DIR / "clips.csv"
TAGS_FILE = MANIFEST_DIR / "top50_tags.txt"
CLIPS_COLUMNS = ("clip_id", "mp3_path", "split")

ANNOTATIONS = "annotations_final.csv"
# clip ids whose mp3 in mp3.zip is corrupt; jukemir and MARBLE v1 exclude them (they are annotated).
CORRUPT_CLIP_IDS: frozenset[str] = frozenset({"35644", "55753", "57881"})
# The split rule: first character of mp3_path (the hex folder) -> split.
FOLDER_SPLIT: dict[str, str] = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
# Rows of the published annotations_final.csv (25,860 split clips + the 3 corrupt ones).
PUBLISHED_ANNOTATION_ROWS = 25_863
NUM_TAGS = 188

SPLIT_VERSION = ("jukemir/MARBLE v1: mp3_path folder 0-b train, c valid, d-f test; tag-less clips kept; corrupt "
                 "35644, 55753, 57881 excluded; p-lambda/jukemir@241555645682d18fb909775c54014edfc3a03163 "
                 "metadata/magnatagatune.json.gz")
TAG_ORDER = "top-50 by frequency over annotations_final.csv, MARBLE v2 LABEL2IDX order (metal 47, female voice 48)"

# Published files (http://mi.soi.city.ac.uk/datasets/magnatagatune/) with the sha256 of jukemir's
# assets/magnatagatune.json. Tests point this table at local copies.
BASE_URL = "http://mi.soi.city.ac.uk/datasets/magnatagatune/"
SOURCES: dict[str, tuple[str, str]] = {
    ANNOTATIONS: (BASE_URL + ANNOTATIONS, "99b94e95825d4fa576386a5367b9c96e0ec636e9f9c240aceb492f4728f68c3c"),
    "mp3.zip.001": (BASE_URL + "mp3.zip.001", "f857fe185968773058cc71662c2ef5d8f2d4b7338e3c122cfd52f82dcb9760b9"),
    "mp3.zip.002": (BASE_URL + "mp3.zip.002", "fc2e1ec441755556ed1398b1808f1b08b6034372f8bc27394510c0c58cdb52ce"),
    "mp3.zip.003": (BASE_URL + "mp3.zip.003", "83a689824c17e82f6eb81cdbc4e4ca239a4cfc1fb41f1a5c80b861caec90450f"),
}
AUDIO_PARTS: tuple[str, ...] = ("mp3.zip.001", "mp3.zip.002", "mp3.zip.003")
JOINED_ARCHIVE = "mp3.zip"
# Written after a complete unzip; holds the part checksums so another release of the parts is unpacked again.
EXTRACTED_MARKER = ".mp3_extracted.json"

_LAYOUT = """\
<data_root>/mtt/annotations_final.csv   tab-separated, quoted: "clip_id", 188 tag columns of 0/1, "mp3_path"
<data_root>/mtt/0/ ... <data_root>/mtt/f/   the mp3s, <folder>/<name>.mp3 as in the mp3_path column, e.g.
    f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3
(the 16 folders are what mp3.zip.001 + .002 + .003, concatenated into one zip, unpack to)"""

# Task config keys: the schema's (windowing and registration); anything else (added with +task.key=) is a typo.
_CONFIG_KEYS = frozenset(f.name for f in dataclasses.fields(WindowedTaskSpec))


def task_folder(data_root: Path | str) -> Path:
    """``<data_root>/mtt``: where the annotations, the mp3 folders and the downloaded parts live."""
    return Path(data_root) / "mtt"


def split_of_mp3_path(mp3_path: str) -> str:
    """The split of a clip from its ``mp3_path`` (``"c/..."`` -> ``"valid"``); refuses paths outside 0-f."""
    folder = PurePosixPath(mp3_path).parts[0] if mp3_path else ""
    if folder not in FOLDER_SPLIT or not mp3_path.endswith(".mp3") or len(PurePosixPath(mp3_path).parts) != 2:
        raise ValueError(f"MTT mp3_path {mp3_path!r} is not of the form <hex folder 0-f>/<name>.mp3")
    return FOLDER_SPLIT[folder]


# ----------------------------------------------------------------------------------------------------------------
# The committed manifest and tag list


@dataclass(frozen=True)
class ManifestClip:
    """One row of ``datasets/mtt/clips.csv``."""

    clip_id: str
    mp3_path: str
    split: str


def manifest_rows_from_jukemir(metadata_path: Path | str) -> list[ManifestClip]:
    """The split as jukemir's ``metadata/magnatagatune.json.gz`` defines it, sorted by clip id.

    Why derived rather than copied: jukemir's file (1.8 MB gzip) carries every clip_info column and all tags;
    the task needs only which clip is in which split. Every record with a non-null ``split`` is kept, and each is
    checked against the folder rule, so the manifest cannot drift from the rule it documents.
    """
    with gzip.open(metadata_path, "rt", encoding="utf-8") as f:
        records = json.load(f)
    rows = []
    for key, record in records.items():
        split = record.get("split")
        if split is None:
            continue
        clip_id = str(record["extra"]["clip_id"])
        mp3_path = record["extra"]["mp3_path"]
        if int(key) != int(clip_id):
            raise ValueError(f"{metadata_path}: record {key} has clip_id {clip_id}")
        if split_of_mp3_path(mp3_path) != split:
            raise ValueError(f"{metadata_path}: clip {clip_id} ({mp3_path}) is in {split}, not by the folder rule")
        if clip_id in CORRUPT_CLIP_IDS:
            raise ValueError(f"{metadata_path}: corrupt clip {clip_id} has split {split}")
        rows.append(ManifestClip(clip_id, mp3_path, split))
    return sorted(rows, key=lambda r: int(r.clip_id))


def write_manifest(rows: Iterable[ManifestClip], path: Path | str = CLIPS_FILE) -> None:
    """Write ``clips.csv`` (comma-separated, header ``clip_id,mp3_path,split``, LF line ends)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CLIPS_COLUMNS)
        for row in rows:
            writer.writerow((row.clip_id, row.mp3_path, row.split))


@functools.lru_cache(maxsize=None)
def _manifest(path: Path) -> tuple[ManifestClip, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if tuple(header or ()) != CLIPS_COLUMNS:
            raise ValueError(f"{path}: header {header} is not {','.join(CLIPS_COLUMNS)}")
        rows = tuple(ManifestClip(*line) for line in reader if line)
    seen: set[str] = set()
    for row in rows:
        if row.clip_id in seen:
            raise ValueError(f"{path}: clip {row.clip_id} listed twice")
        seen.add(row.clip_id)
        if row.clip_id in CORRUPT_CLIP_IDS:
            raise ValueError(f"{path}: lists the corrupt clip {row.clip_id}")
        if split_of_mp3_path(row.mp3_path) != row.split:
            raise ValueError(f"{path}: clip {row.clip_id} ({row.mp3_path}) is in {row.split}, against the folder "
                             f"rule")
    return rows


def read_manifest(path: Path | str = CLIPS_FILE) -> list[ManifestClip]:
    """The committed split: every clip of train / valid / test with its ``mp3_path``, in clip-id order."""
    return list(_manifest(Path(path)))


def read_tag_list(path: Path | str = TAGS_FILE) -> list[str]:
    """The 50 label names (annotations_final.csv spelling) in label-vector order."""
    tags = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(tags) != 50 or len(set(tags)) != 50:
        raise ValueError(f"{path}: expected 50 distinct tags, got {len(tags)} ({len(set(tags))} distinct)")
    return tags


# ----------------------------------------------------------------------------------------------------------------
# annotations_final.csv


@dataclass
class Annotations:
    """The content of an ``annotations_final.csv``.

    Attributes:
        clip_ids, mp3_paths: per row, as written in the file.
        tags: the tag column names, in file order.
        matrix: ``[rows, tags]`` bool, True where the file has 1.
    """

    clip_ids: list[str]
    mp3_paths: list[str]
    tags: list[str]
    matrix: np.ndarray

    def tag_counts(self) -> dict[str, int]:
        return dict(zip(self.tags, self.matrix.sum(axis=0).tolist()))


def read_annotations(path: Path | str) -> Annotations:
    """Parse ``annotations_final.csv`` as distributed: tab-separated with quoted fields despite the name.

    The first column must be ``clip_id`` and the last ``mp3_path``; the ones between are tags with values 0/1.
    Anything else (a comma-separated re-export, a missing column, a value other than 0/1) is refused with the
    line number, because a silently misparsed label matrix would only show up as a bad score.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if not header or header[0] != "clip_id" or header[-1] != "mp3_path" or len(header) < 3:
            shown = (header or [""])[0][:80]
            raise ValueError(f"{path}: not the MagnaTagATune annotations_final.csv layout (a tab-separated header "
                             f"\"clip_id\", the tags, \"mp3_path\"); the header starts {shown!r}")
        tags = header[1:-1]
        if len(set(tags)) != len(tags):
            raise ValueError(f"{path}: duplicate tag columns in the header")
        width = len(header)
        clip_ids: list[str] = []
        mp3_paths: list[str] = []
        flags: list[str] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != width:
                raise ValueError(f"{path}:{line_no}: {len(row)} fields, the header has {width}")
            clip_ids.append(row[0])
            mp3_paths.append(row[-1])
            flags.append("".join(row[1:-1]))
    joined = "".join(flags)
    if len(joined) != len(flags) * len(tags):
        raise ValueError(f"{path}: tag values must be single characters 0 or 1")
    codes = np.frombuffer(joined.encode("ascii", errors="replace"), dtype=np.uint8).reshape(len(flags), len(tags))
    if not np.all((codes == ord("0")) | (codes == ord("1"))):
        bad_row = int(np.flatnonzero(~np.all((codes == ord("0")) | (codes == ord("1")), axis=1))[0])
        raise ValueError(f"{path}: clip {clip_ids[bad_row]} has tag values other than 0/1")
    if len(set(clip_ids)) != len(clip_ids):
        raise ValueError(f"{path}: a clip_id appears in more than one row")
    return Annotations(clip_ids, mp3_paths, tags, codes == ord("1"))


def top_tags(annotations: Annotations, k: int = 50) -> list[str]:
    """The ``k`` most frequent tags over all rows (ties in file column order: the set is what is compared)."""
    counts = annotations.matrix.sum(axis=0)
    order = np.argsort(-counts, kind="stable")
    return [annotations.tags[i] for i in order[:k]]


def verify_top50(annotations: Annotations, labels: Sequence[str], path: Path, complete: bool) -> None:
    """Check that ``labels`` are the top-50 tags of this annotations file.

    Always: every label is a column. When the file is ``complete`` (it has a row for every clip of the split):
    the labels are the 50 most frequent tags (a tie across the 50th place would accept either side), and the
    label order is by non-increasing frequency. A partial file (a test fixture, a subset) cannot show which tags
    are the most frequent, so it is only warned about.
    """
    absent = [t for t in labels if t not in annotations.tags]
    if absent:
        raise ValueError(f"{path}: the top-50 tag column(s) {absent} are missing; this is not the MagnaTagATune "
                         f"annotations_final.csv the task expects (tags are matched by name, with spaces, "
                         f"e.g. 'female voice')")
    if not complete:
        log.warning("%s has rows for only some of the clips of the split (%d rows, %d published): the top-50 tag "
                    "list %s cannot be verified against it", path, len(annotations.clip_ids),
                    PUBLISHED_ANNOTATION_ROWS, TAGS_FILE)
        return
    counts = annotations.tag_counts()
    ours = [counts[t] for t in labels]
    others = {t: c for t, c in counts.items() if t not in set(labels)}
    floor = min(ours)
    above = sorted(((c, t) for t, c in others.items() if c > floor), reverse=True)
    if above:
        below = sorted((c, t) for t, c in counts.items() if t in set(labels))[: len(above)]
        raise ValueError(
            f"{path}: its 50 most frequent tags differ from the task's label list {TAGS_FILE}: "
            f"more frequent here but not in the list: {', '.join(f'{t} ({c})' for c, t in above)}; "
            f"in the list but less frequent: {', '.join(f'{t} ({c})' for c, t in below)}. "
            f"The published file has sha256 {SOURCES[ANNOTATIONS][1]}, this one {file_sha256(path)}; "
            f"fetch it with `python -m benchmark prepare mtt`.")
    unordered = [(labels[i], ours[i], labels[i + 1], ours[i + 1]) for i in range(len(labels) - 1)
                 if ours[i] < ours[i + 1]]
    if unordered:
        a, ca, b, cb = unordered[0]
        raise ValueError(f"{path}: the label order of {TAGS_FILE} is not by frequency in this file ({a} {ca} < "
                         f"{b} {cb}); this is not the published annotations_final.csv "
                         f"(sha256 {SOURCES[ANNOTATIONS][1]})")


# ----------------------------------------------------------------------------------------------------------------
# The task


@register_task("mtt", schema=WindowedTaskSpec)
class MagnaTagATune(Task):
    """MagnaTagATune top-50 auto-tagging, jukemir / MARBLE v1 split 18,706 / 1,825 / 5,329 (ROC-AUC, AP)."""

    name = "mtt"
    task_type = "multilabel"
    labels = read_tag_list()
    expected_counts = {"train": 18706, "valid": 1825, "test": 5329}

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        warn_unknown_config_keys("mtt", self.cfg, _CONFIG_KEYS)

    def tracks(self, data_root: Path) -> list[Track]:
        """Every clip of the committed split, with its labels from the user's annotations_final.csv.

        A clip without an annotation row gets no labels; that is only allowed while its audio is absent too (it
        is then skipped as missing), since training on an annotated-looking clip with an empty target would be
        silently wrong.
        """
        folder = task_folder(data_root)
        csv_path = folder / ANNOTATIONS
        if not folder.is_dir() or not csv_path.is_file():
            raise DatasetMissingError(missing_dataset_message(self.name, folder, _LAYOUT, self.fetch_command()))
        ann = read_annotations(csv_path)
        manifest = _manifest(CLIPS_FILE)
        listed = {clip.clip_id for clip in manifest}
        strangers = [cid for cid in ann.clip_ids if cid not in listed and cid not in CORRUPT_CLIP_IDS]
        if strangers:
            raise ValueError(f"{csv_path}: {len(strangers)} clip(s) are neither in the split manifest {CLIPS_FILE} "
                             f"nor known-corrupt (e.g. {', '.join(strangers[:5])}); this is not the published "
                             f"annotations_final.csv (sha256 {SOURCES[ANNOTATIONS][1]})")
        row_of = {cid: i for i, cid in enumerate(ann.clip_ids)}
        verify_top50(ann, self.labels, csv_path, complete=listed.issubset(row_of))
        label_matrix = ann.matrix[:, [ann.tags.index(t) for t in self.labels]]
        out: list[Track] = []
        orphans: list[str] = []
        moved: list[str] = []
        for clip in manifest:
            path = folder.joinpath(*PurePosixPath(clip.mp3_path).parts)
            i = row_of.get(clip.clip_id)
            if i is None:
                if path.exists():
                    orphans.append(clip.clip_id)
                target: tuple[int, ...] = ()
            else:
                if ann.mp3_paths[i] != clip.mp3_path:
                    moved.append(f"{clip.clip_id}: {ann.mp3_paths[i]!r} != {clip.mp3_path!r}")
                target = tuple(int(j) for j in np.flatnonzero(label_matrix[i]))
            out.append(Track(track_id=clip.clip_id, path=path, split=clip.split, target=target))
        if moved:
            raise ValueError(f"{csv_path}: mp3_path differs from the split manifest for {len(moved)} clip(s), "
                             f"e.g. {moved[0]}")
        if orphans:
            raise ValueError(f"{csv_path} has no row for {len(orphans)} clip(s) whose audio is present (e.g. "
                             f"{', '.join(orphans[:5])}): the annotations file is truncated or another release; "
                             f"fetch it with `{self.fetch_command()}`")
        return out

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """Only annotations_final.csv's sha256: MagnaTagATune publishes no per-clip checksums."""
        return {task_folder(data_root) / ANNOTATIONS: ("sha256", SOURCES[ANNOTATIONS][1])}

    def dataset_identity(self) -> dict[str, Any]:
        """Split version and the label list: what decides which clips are read and the order of their labels."""
        return {"task": self.name, "split": SPLIT_VERSION, "manifest_sha256": file_sha256(CLIPS_FILE),
                "labels": TAG_ORDER, "labels_sha256": file_sha256(TAGS_FILE)}

    def prepare(self, data_root: Path) -> None:
        """Download annotations_final.csv and mp3.zip.001-003 (sha256-checked, resumable), join the parts into
        one zip and unpack it into ``<data_root>/mtt/``.

        Each step can be interrupted and rerun: downloads resume and verified files are not fetched again, the
        joined zip is written under a temporary name and renamed when complete, and a marker written after the
        unzip makes a later ``prepare`` skip the audio. The joined zip (about 3 GB) is deleted after the unzip;
        the parts are kept so that a rerun never downloads them again, and may be deleted by hand.
        """
        folder = task_folder(data_root)
        folder.mkdir(parents=True, exist_ok=True)
        self._fetch(ANNOTATIONS, folder)
        marker = folder / EXTRACTED_MARKER
        want = {name: SOURCES[name][1] for name in AUDIO_PARTS}
        if marker.is_file():
            try:
                done = json.loads(marker.read_text()) == want
            except ValueError:
                done = False
            if done:
                print(f"mtt: audio already unpacked in {folder} (remove {marker} to unpack again)")
                return
        parts = [self._fetch(name, folder) for name in AUDIO_PARTS]
        joined = join_parts(parts, folder / JOINED_ARCHIVE)
        print(f"mtt: unpacking {joined} into {folder}")
        extract(joined, folder)
        marker.write_text(json.dumps(want, indent=1, sort_keys=True) + "\n")
        joined.unlink()
        print(f"mtt: ready in {folder}; the parts {', '.join(AUDIO_PARTS)} may be deleted "
              f"(check with `python -m benchmark check task=mtt data_root={data_root}`)")

    def _fetch(self, name: str, folder: Path) -> Path:
        url, digest = SOURCES[name]
        print(f"mtt: {name} <- {url} (sha256 {digest[:12]}...)")
        try:
            return download(url, folder / name, checksum=("sha256", digest))
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(
                f"mtt: could not download {url}: {exc}\nPut {name} (sha256 {digest}) at {folder / name} and run "
                f"`{self.fetch_command()}` again, or lay the dataset out as:\n{_LAYOUT}") from exc


def join_parts(parts: Sequence[Path], dest: Path) -> Path:
    """Concatenate a byte-split archive (``mp3.zip.001`` + ``.002`` + ...) into ``dest``.

    The parts are plain byte slices of one zip (not a zip multi-volume set), so concatenation restores it. A
    ``dest`` of exactly the summed size is taken as already joined (it only gets its name when complete).
    """
    total = sum(p.stat().st_size for p in parts)
    if dest.is_file() and dest.stat().st_size == total:
        return dest
    tmp = dest.with_name(dest.name + ".joining")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=1 << 22)
    os.replace(tmp, dest)
    return dest

