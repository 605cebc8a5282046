"""gtzan: genre classification on GTZAN with the fault-filtered split (multiclass, 10 genres, accuracy).

The split is the one the field reports (jukemir ``gtzan_ff``, MARBLE, Lee, minzwon): the three
``{train,valid,test}_filtered.txt`` lists of coreyker/dnn-mgr at bdad579e (Kereliuk, Sturm & Larsen 2015),
443 / 197 / 290 tracks, committed byte for byte in ``datasets/gtzan/``. They leave out the 70 tracks of Sturm's
fault analysis (repetitions, distortions, mislabellings) and share no artist between sets, which is why numbers
on this split are lower, and more honest, than on random splits.

The audio is the user's copy of GTZAN as distributed (``genres.tar.gz`` unpacked)::

    <data_root>/gtzan/genres/<genre>/<genre>.<5 digits>.wav     22.05 kHz mono 16-bit, about 30 s

Every file is checked against the md5 of the mirdata gtzan_genre 1.0 index (``datasets/gtzan/md5.csv``). One
file needs attention: ``jazz/jazz.00054.wav`` is in the train split but is not a WAV file in common copies (the
Kaggle redistribution). A copy that fails its md5 is skipped by the run's dataset check like any corrupt file;
:func:`warn_known_faults` additionally names it with the reason and the fix, so nobody has to guess why train
has 442 tracks.

The module-level helpers (:data:`GTZAN_GENRES`, :func:`read_split_lists`, :func:`gtzan_audio_path`,
:func:`gtzan_checksums`, :func:`warn_known_faults`) are shared with the other task that reads GTZAN audio
(beat tracking on the same split); keep their names and signatures stable.
"""
from __future__ import annotations

import csv
import functools
import logging
import urllib.error
from pathlib import Path, PurePosixPath
from typing import Any

import soundfile as sf

from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import (
    MANIFEST_ROOT, SPLITS, DatasetMissingError, Task, Track, check_dataset, missing_dataset_message,
)
from benchmark.tasks.download import download, extract
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

# Label order = class index. Alphabetical, as in the GTZAN folder listing, jukemir and MARBLE.
GTZAN_GENRES: list[str] = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae",
                           "rock"]

# The committed split lists and checksum table (see datasets/gtzan/README.md for provenance).
MANIFEST_DIR = MANIFEST_ROOT / "gtzan"
SPLIT_FILES: dict[str, str] = {s: f"{s}_filtered.txt" for s in SPLITS}
SPLIT_VERSION = "fault-filtered, coreyker/dnn-mgr@bdad579ea6cb37b665ea6019fe1026a6ce20cbc7"

# The original archive, as pinned by mirdata's gtzan_genre REMOTES (md5) and jukemir's assets/gtzan.json (sha256
# 24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6). It unpacks to genres/<genre>/*.wav.
ARCHIVE_URL = "http://opihi.cs.uvic.ca/sound/genres.tar.gz"
ARCHIVE_MD5 = "5b3d6dddb579ab49814ab86dba69e7c7"
ARCHIVE_NAME = "genres.tar.gz"

# Files that are broken in copies people commonly have, with what is known about them.
KNOWN_FAULTS: dict[str, str] = {
    "jazz/jazz.00054.wav": "in common GTZAN copies (e.g. the Kaggle redistribution "
                           "andradaolteanu/gtzan-dataset-music-genre-classification) this file is not a WAV file",
}

_LAYOUT = """\
<data_root>/gtzan/genres/blues/blues.00000.wav ... blues.00099.wav
<data_root>/gtzan/genres/classical/classical.00000.wav ...
... one folder per genre (blues classical country disco hiphop jazz metal pop reggae rock),
100 files <genre>.<5 digits>.wav each: the folder genres/ of GTZAN's genres.tar.gz, unpacked as is"""


def task_folder(data_root: Path | str) -> Path:
    """``<data_root>/gtzan``: where the archive is downloaded and unpacked."""
    return Path(data_root) / "gtzan"


def genres_folder(data_root: Path | str) -> Path:
    """``<data_root>/gtzan/genres``: the unpacked archive's root, which split-list entries are relative to."""
    return task_folder(data_root) / "genres"


def _check_entry(entry: str) -> str:
    """The genre of a split-list entry ``<genre>/<genre>.<5 digits>.wav``; anything else is refused.

    The lists are the label source (folder = label), so a malformed line must not silently become a class.
    """
    parts = PurePosixPath(entry).parts
    if len(parts) != 2 or not parts[1].endswith(".wav"):
        raise ValueError(f"GTZAN entry {entry!r} is not of the form <genre>/<genre>.<5 digits>.wav")
    genre, name = parts
    stem = name[: -len(".wav")]
    prefix, _, number = stem.partition(".")
    if genre not in GTZAN_GENRES or prefix != genre or len(number) != 5 or not number.isdigit():
        raise ValueError(f"GTZAN entry {entry!r}: expected <genre>/<genre>.<5 digits>.wav with a genre among "
                         f"{', '.join(GTZAN_GENRES)}")
    return genre


def gtzan_audio_path(data_root: Path | str, entry: str) -> Path:
    """Where the audio of a split-list entry (e.g. ``blues/blues.00029.wav``) is in the user's copy."""
    _check_entry(entry)
    return genres_folder(data_root) / entry


@functools.lru_cache(maxsize=None)
def _split_lists() -> dict[str, tuple[str, ...]]:
    lists: dict[str, tuple[str, ...]] = {}
    for split, name in SPLIT_FILES.items():
        entries = tuple(line.strip() for line in (MANIFEST_DIR / name).read_text().splitlines() if line.strip())
        for entry in entries:
            _check_entry(entry)
        lists[split] = entries
    seen: dict[str, str] = {}
    for split, entries in lists.items():
        for entry in entries:
            if entry in seen:
                raise ValueError(f"GTZAN split lists: {entry} is in both {seen[entry]} and {split}")
            seen[entry] = split
    return lists


def read_split_lists() -> dict[str, list[str]]:
    """The fault-filtered split: ``{"train": [entries], "valid": [...], "test": [...]}`` in file order.

    Entries are paths relative to ``genres/`` (``blues/blues.00029.wav``). A fresh copy is returned each call.
    """
    return {split: list(entries) for split, entries in _split_lists().items()}


def track_id_of(entry: str) -> str:
    """Track id of an entry: the file stem (``blues.00029``), the key jukemir and mirdata use."""
    return PurePosixPath(entry).stem


@functools.lru_cache(maxsize=None)
def published_md5() -> dict[str, str]:
    """md5 of every GTZAN wav, keyed by the path relative to ``genres/`` (mirdata gtzan_genre 1.0 index)."""
    with open(MANIFEST_DIR / "md5.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    table = {row["path"]: row["md5"].lower() for row in rows}
    if len(table) != len(rows):
        raise ValueError(f"{MANIFEST_DIR / 'md5.csv'}: duplicate paths")
    return table


def gtzan_checksums(data_root: Path | str) -> dict[Path, tuple[str, str]]:
    """Published checksums of all 1,000 GTZAN wavs under ``data_root``: ``{path: ("md5", hex)}``."""
    root = genres_folder(data_root)
    return {root / entry: ("md5", digest) for entry, digest in published_md5().items()}


def _fault(path: Path, entry: str) -> str | None:
    """Why a present file is unusable (md5 mismatch and/or not decodable), or None when it is fine."""
    from benchmark.checksums import file_md5

    problems = []
    want = published_md5().get(entry)
    got = file_md5(path)
    if want is not None and got != want:
        problems.append(f"md5 {got} differs from the published {want}")
    try:
        sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable input
        problems.append(f"it cannot be decoded ({str(exc).strip()})")
    return "; ".join(problems) or None


def warn_known_faults(data_root: Path | str) -> list[str]:
    """Log a warning for every known-faulty file (:data:`KNOWN_FAULTS`) that is present but unusable.

    Returns the faulty entries. Absent files are left to the dataset check, which lists them as missing.
    Runs on every ``tracks()`` call (one small file, its md5 remembered), so both ``run`` and ``check`` say why
    the track is skipped.
    """
    faulty = []
    for entry, known in KNOWN_FAULTS.items():
        path = genres_folder(data_root) / entry
        if not path.is_file():
            continue
        problem = _fault(path, entry)
        if problem is None:
            continue
        faulty.append(entry)
        log.warning(
            "GTZAN %s is unusable: %s. This is a known fault: %s. The dataset check skips it as a checksum "
            "failure (it counts against max_missing_fraction; with verify_checksums=false it is not skipped and "
            "decoding it fails). Fix: replace %s with the file from the original genres.tar.gz "
            "(python -m benchmark prepare gtzan), md5 %s.",
            track_id_of(entry), problem, known, path, published_md5().get(entry))
    return faulty


@register_task("gtzan", schema=WindowedTaskSpec)
class GTZAN(Task):
    """GTZAN genre classification, fault-filtered split 443 / 197 / 290 (10 genres, accuracy)."""

    name = "gtzan"
    task_type = "multiclass"
    labels = list(GTZAN_GENRES)
    expected_counts = {"train": 443, "valid": 197, "test": 290}

    def tracks(self, data_root: Path) -> list[Track]:
        """Every track of the three split lists, with the path its audio should have (present or not)."""
        root = genres_folder(data_root)
        if not root.is_dir():
            raise DatasetMissingError(self._missing_message(data_root))
        warn_known_faults(data_root)
        out = []
        for split, entries in _split_lists().items():
            for entry in entries:
                out.append(Track(track_id=track_id_of(entry), path=root / entry, split=split,
                                 target=GTZAN_GENRES.index(_check_entry(entry))))
        return out

    def _missing_message(self, data_root: Path | str) -> str:
        folder = genres_folder(data_root)
        fetch = self.fetch_command()
        for other in ("genres_original", "Data/genres_original"):  # the Kaggle redistribution's folder name
            if (task_folder(data_root) / other).is_dir():
                fetch += (f"\n(found {task_folder(data_root) / other}: that looks like the Kaggle redistribution; "
                          f"rename or link it to {folder}; its jazz.00054.wav is broken and will be skipped)")
                break
        return missing_dataset_message(self.name, folder, _LAYOUT, fetch)

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """md5 of every wav (mirdata gtzan_genre 1.0 index): a corrupt or truncated copy fails the check."""
        return gtzan_checksums(data_root)

    def dataset_identity(self) -> dict[str, Any]:
        """The split version, the label order and the audio release: what decides a track's audio and label."""
        return {"task": self.name, "split": SPLIT_VERSION, "labels": list(GTZAN_GENRES),
                "audio": f"{ARCHIVE_NAME} md5 {ARCHIVE_MD5}"}

    def prepare(self, data_root: Path) -> None:
        """Download ``genres.tar.gz`` (md5-checked, resumable), unpack it into ``<data_root>/gtzan/`` and verify.

        Nothing is fetched when the local copy is already complete and passes its checksums. The archive is kept
        next to ``genres/`` (a later ``prepare`` reuses it); it may be deleted once the check passes.
        """
        folder = task_folder(data_root)
        if genres_folder(data_root).is_dir():
            report = check_dataset(self, self.tracks(data_root), data_root)
            if report.complete:
                print(f"gtzan: {genres_folder(data_root)} is complete and matches the published md5s; "
                      f"nothing to do")
                return
        archive = folder / ARCHIVE_NAME
        if archive.is_file():
            print(f"gtzan: found {archive}; checking its md5 ({ARCHIVE_MD5}), resuming or refetching if needed")
        else:
            print(f"gtzan: downloading {ARCHIVE_URL} to {archive} (about 1.2 GB; md5 {ARCHIVE_MD5})")
        try:
            download(ARCHIVE_URL, archive, checksum=("md5", ARCHIVE_MD5))
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(
                f"gtzan: could not download {ARCHIVE_URL}: {exc}\n"
                f"Get genres.tar.gz (md5 {ARCHIVE_MD5}) elsewhere, put it at {archive} and run "
                f"`{self.fetch_command()}` again, or unpack a copy so that it has this layout:\n{_LAYOUT}") from exc
        print(f"gtzan: unpacking {archive} into {folder}")
        extract(archive, folder)
        report = check_dataset(self, self.tracks(data_root), data_root)
        print(report.summary())
        if not report.complete:
            raise RuntimeError(f"gtzan: {archive} did not give the expected dataset (see the check above); "
                               f"expected layout:\n{_LAYOUT}")
        print(f"gtzan: ready in {genres_folder(data_root)} (930 split tracks, md5 verified); "
              f"{archive} may be deleted")
