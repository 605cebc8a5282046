"""gtzan_beat: beat and downbeat tracking on GTZAN with the GTZAN-Rhythm v2 annotations (frame level).

The split is the fault-filtered one of the genre task (443 / 197 / 290 tracks; :mod:`benchmark.tasks.gtzan`, whose
helpers give the entries and the audio paths), as MARBLE's beat-tracking task uses it. The annotations are
GTZAN-Rhythm v2 (Marchand & Peeters 2015) as published in TempoBeatDownbeat/gtzan_tempo_beat (the set mirdata
uses): one ``beats/gtzan_<genre>_<5 digits>.beats`` file per track, one line per beat,
``<time in s>\\t<position in bar>``; downbeats are the beats at position 1. Six jazz files (jazz.00003, 00009,
00010, 00014, 00018, 00020) give beat times only: they count for the beat metrics and are left out of the
downbeat F-measure (their downbeat target is 0 in training: the probe sees six tracks without a downbeat cue).

The annotations are committed in ``datasets/gtzan_beat/beats.csv`` (one row per track: the file's lines
joined, so every row rebuilds its source file byte for byte, checked against the sha256 in the row; see the
README there). A user who has the annotation files can read them instead with ``task.annotations=PATH``
(a folder holding the ``.beats`` files, or the repository checkout with its ``beats/`` folder).

The audio is the user's GTZAN copy (``python -m benchmark prepare gtzan_beat`` fetches it like the genre task)::

    <data_root>/gtzan/genres/<genre>/<genre>.<5 digits>.wav
"""
from __future__ import annotations

import csv
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from benchmark.schema import BeatDecoderSpec
from benchmark.targets import BeatTarget
from benchmark.tasks.base import MANIFEST_ROOT, DatasetMissingError, Task, Track, missing_dataset_message
from benchmark.tasks.gtzan import (
    ARCHIVE_MD5, ARCHIVE_NAME, GTZAN, SPLIT_VERSION, genres_folder, gtzan_audio_path, gtzan_checksums, read_split_lists,
    track_id_of, warn_known_faults,
)
from benchmark.tasks.registry import register_task

MANIFEST_DIR = MANIFEST_ROOT / "gtzan_beat"
ANNOTATION_CSV = MANIFEST_DIR / "beats.csv"
_FILE_NAME = re.compile(r"^gtzan_([a-z]+)_(\d{5})\.beats$")

_LAYOUT = """\
<data_root>/gtzan/genres/blues/blues.00000.wav ... blues.00099.wav
... one folder per genre (blues classical country disco hiphop jazz metal pop reggae rock),
100 files <genre>.<5 digits>.wav each: the folder genres/ of GTZAN's genres.tar.gz, unpacked as is
(the same copy the gtzan task reads; the beat annotations are committed in datasets/gtzan_beat/)"""


def parse_beats_file(text: str, name: str = "<beats>") -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a ``.beats`` file: one beat per line, ``<time>\\t<position in bar>`` or ``<time>`` alone.

    Returns (times, positions) with ``positions = None`` when the file has no position column. A file mixing
    the two, a non-integer or non-positive position, or times that go backwards is refused (``name`` is used in
    the message).
    """
    times, positions = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) > 2:
            raise ValueError(f"{name}:{n}: expected '<time>\\t<position>', got {line!r}")
        times.append(float(fields[0]))
        if len(fields) == 2:
            if not fields[1].isdigit() or int(fields[1]) < 1:
                raise ValueError(f"{name}:{n}: beat position must be an integer >= 1, got {fields[1]!r}")
            positions.append(int(fields[1]))
    t = np.asarray(times, dtype=np.float64)
    if positions and len(positions) != len(times):
        raise ValueError(f"{name}: some lines have a beat position and some do not")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"{name}: beat times must increase")
    return t, (np.asarray(positions, dtype=np.int64) if positions else None)


def beat_target(times: np.ndarray, positions: np.ndarray | None) -> BeatTarget:
    """Beats and downbeats (position 1; none when the file gives no positions)."""
    downbeats = times[positions == 1] if positions is not None else times[:0]
    return BeatTarget(beats=tuple(float(x) for x in times), downbeats=tuple(float(x) for x in downbeats))


def track_id_of_file(name: str) -> str:
    """``gtzan_blues_00000.beats`` -> ``blues.00000`` (the GTZAN track id)."""
    m = _FILE_NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a GTZAN-Rhythm file name gtzan_<genre>_<5 digits>.beats")
    return f"{m.group(1)}.{m.group(2)}"


def file_name_of(track_id: str) -> str:
    genre, number = track_id.split(".")
    return f"gtzan_{genre}_{number}.beats"


def beats_folder(path: Path | str) -> Path:
    """The folder holding the ``.beats`` files: ``path`` itself or its ``beats/`` subfolder."""
    path = Path(path)
    if (path / "beats").is_dir() and not any(path.glob("*.beats")):
        return path / "beats"
    return path


def read_annotation_folder(path: Path | str) -> dict[str, BeatTarget]:
    """Every ``gtzan_*.beats`` file of a folder (the published files), keyed by track id."""
    folder = beats_folder(path)
    out = {}
    for f in sorted(folder.glob("gtzan_*.beats")):
        out[track_id_of_file(f.name)] = beat_target(*parse_beats_file(f.read_text(), str(f)))
    if not out:
        raise FileNotFoundError(f"no gtzan_<genre>_<5 digits>.beats files in {folder}")
    return out


def csv_row(track_id: str, raw: bytes) -> dict[str, str]:
    """The committed row of one annotation file: its lines joined by spaces with each tab as ``:``."""
    text = raw.decode("ascii")
    if "\r" in text or " " in text or ":" in text or not text.endswith("\n"):
        raise ValueError(f"{track_id}: unexpected characters or no final newline; the row would not rebuild it")
    return {"track_id": track_id, "sha256": hashlib.sha256(raw).hexdigest(),
            "beats": " ".join(line.replace("\t", ":") for line in text[:-1].split("\n"))}


def file_bytes_of_row(row: Mapping[str, str]) -> bytes:
    """The annotation file a committed row came from, byte for byte (checked against the row's sha256)."""
    raw = ("\n".join(tok.replace(":", "\t") for tok in row["beats"].split()) + "\n").encode("ascii")
    if hashlib.sha256(raw).hexdigest() != row["sha256"]:
        raise ValueError(f"{ANNOTATION_CSV}: row {row['track_id']} does not rebuild its source file (sha256)")
    return raw


def write_annotation_csv(source: Path | str, out: Path | str = ANNOTATION_CSV) -> int:
    """Build ``beats.csv`` from a folder of published ``.beats`` files (how the committed file was made)."""
    folder = beats_folder(source)
    rows = [csv_row(track_id_of_file(f.name), f.read_bytes()) for f in sorted(folder.glob("gtzan_*.beats"))]
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["track_id", "sha256", "beats"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


@functools.lru_cache(maxsize=None)
def committed_annotations() -> dict[str, BeatTarget]:
    """The committed annotations (``datasets/gtzan_beat/beats.csv``), each row checked against its sha256 and
    parsed as the published file it rebuilds."""
    with open(ANNOTATION_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {row["track_id"]: beat_target(*parse_beats_file(file_bytes_of_row(row).decode(), row["track_id"]))
            for row in rows}


def annotation_digest(annotations: Mapping[str, BeatTarget]) -> str:
    """A short checksum of parsed annotations (part of the dataset identity)."""
    h = hashlib.sha256()
    for track_id in sorted(annotations):
        a = annotations[track_id]
        h.update(f"{track_id}|{' '.join(map(repr, a.beats))}|{' '.join(map(repr, a.downbeats))}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class GtzanBeatSpec(BeatDecoderSpec):
    """``task=gtzan_beat``: the beat decoder's settings, and where the annotations are."""

    annotations: Optional[str] = None  # None = <data_root>/gtzan_beat/ (the committed manifest's layout)


@register_task("gtzan_beat", schema=GtzanBeatSpec)
class GTZANBeat(Task):
    """GTZAN beat and downbeat tracking (GTZAN-Rhythm v2), fault-filtered split 443 / 197 / 290 (beat F)."""

    name = "gtzan_beat"
    task_type = "beat"
    labels = ["beat", "downbeat"]
    expected_counts = {"train": 443, "valid": 197, "test": 290}

    def annotations(self) -> dict[str, BeatTarget]:
        """The committed annotations, or those of the folder ``task.annotations`` names."""
        path = self.cfg.get("annotations")
        return read_annotation_folder(path) if path else committed_annotations()

    def tracks(self, data_root: Path) -> list[Track]:
        """Every track of the three split lists with its beats, and the path its audio should have."""
        if not genres_folder(data_root).is_dir():
            raise DatasetMissingError(missing_dataset_message(self.name, genres_folder(data_root), _LAYOUT,
                                                              self.fetch_command()))
        warn_known_faults(data_root)
        annotations = self.annotations()
        out, unannotated = [], []
        for split, entries in read_split_lists().items():
            for entry in entries:
                track_id = track_id_of(entry)
                if track_id not in annotations:
                    unannotated.append(track_id)
                    continue
                out.append(Track(track_id=track_id, path=gtzan_audio_path(data_root, entry), split=split,
                                 target=annotations[track_id]))
        if unannotated:
            raise ValueError(f"task {self.name}: no beat annotation for {len(unannotated)} split track(s) "
                             f"({', '.join(unannotated[:5])}{' ...' if len(unannotated) > 5 else ''}) in "
                             f"{self.cfg.get('annotations') or ANNOTATION_CSV}")
        return out

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """md5 of every GTZAN wav (the genre task's table)."""
        return gtzan_checksums(data_root)

    def dataset_identity(self) -> dict[str, Any]:
        """Split version, audio release and a checksum of the parsed annotations in use (by content: the committed
        table and a folder of the same published files are one dataset)."""
        return {"task": self.name, "split": SPLIT_VERSION, "audio": f"{ARCHIVE_NAME} md5 {ARCHIVE_MD5}",
                "annotations": annotation_digest(self.annotations())}

    def fetch_command(self) -> str:
        return f"python -m benchmark prepare {self.name}"

    def prepare(self, data_root: Path) -> None:
        """Fetch the GTZAN audio exactly as the genre task does; the annotations are committed."""
        GTZAN({"name": "gtzan", "kind": "gtzan"}).prepare(data_root)
