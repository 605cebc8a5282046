"""vocalset_technique and vocalset_singer: MARBLE v1's VocalSetT (10 singing techniques) and VocalSetS (20
singers), multiclass, accuracy over 3-s chunks.

VocalSet (Wilkins et al. 2018, CC BY 4.0) is a set of long recordings; MARBLE v1 does not probe them as such but
builds 3-s chunks with its own preprocessing script and splits the *chunks*. Numbers are only comparable on those
chunks, so both tasks read the six chunk lists that script wrote (committed byte for byte in
``datasets/vocalset/``, see its README for provenance): technique 1,850 / 1,142 / 1,140 chunks, singer 3,688 /
2,413 / 1,405. The technique split holds VocalSet's own five test singers (f2, f8, m3, m5, m10) out; the singer
split is random over recordings, so the same chunk can be in train for one task and in test for the other.

The audio the tasks read is MARBLE's preprocessed layout, one WAV per chunk::

    <data_root>/vocalset/audio/<technique folder>/<recording stem>_<jj>.wav

``python -m benchmark prepare vocalset_technique`` (or ``vocalset_singer``, the same data) downloads
``VocalSet11.zip`` (VocalSet 1.1, Zenodo record 1203819, md5-checked, resumable) and rebuilds the chunks with
:func:`preprocess_archive`, this suite's own implementation of MARBLE's rules: entry selection, the 28 renames and 5
deletions, leading-silence trimming by ``torchaudio.functional.vad``, chunks of ``44100 // 1000 * 3000`` = 132,000
samples with the remainder dropped, each chunk z-normalised and written as 32-bit float WAV. The trimming depends
on the torchaudio version, so the committed lists, not the rule, decide which chunks exist: ``prepare`` compares
what it produced with the lists and names every listed chunk it could not produce (the run then skips it, within
``max_missing_fraction``) and every produced chunk no list names (never read).

Both tasks read the same chunk files, so they name one :class:`~benchmark.tasks.base.SharedAudio` collection (the
7,506 chunks of the singer lists, which contain the technique lists): one feature extraction per encoder serves
both tasks.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import os
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, ClassVar, Iterable, Mapping

import numpy as np

from benchmark.checksums import file_sha256
from benchmark.errors import UserError
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import (
    MANIFEST_ROOT, SPLITS, DatasetMissingError, SharedAudio, Task, Track, missing_dataset_message,
)
from benchmark.tasks.download import download
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------------------
# Labels (MARBLE v1's class2id orders)

# VocalSetT: label = the chunk's technique folder, in MARBLE v1's order (alphabetical).
TECHNIQUES: list[str] = ["belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo",
                         "vibrato", "vocal_fry"]
# The seven dynamics / articulation folders the singer task also reads (MARBLE's tech_types after the ten above).
OTHER_FOLDERS: list[str] = ["fast_forte", "fast_piano", "forte", "messa", "pp", "slow_forte", "slow_piano"]
FOLDERS: list[str] = TECHNIQUES + OTHER_FOLDERS
# VocalSetS: label = the file-name prefix before the first "_", f1..f9 then m1..m11 (numeric, not string, order).
SINGERS: list[str] = [f"f{i}" for i in range(1, 10)] + [f"m{i}" for i in range(1, 12)]
# VocalSet's own technique-classifier test singers (test_singers_technique.txt in the zip): the technique split's
# test set is exactly their chunks, and train / valid never hold them.
TECHNIQUE_TEST_SINGERS: frozenset[str] = frozenset({"f2", "f8", "m3", "m5", "m10"})

# ----------------------------------------------------------------------------------------------------------------
# The committed lists

MANIFEST_DIR = MANIFEST_ROOT / "vocalset"
LIST_FILES: dict[str, dict[str, str]] = {
    "technique": {s: f"{s}_t.txt" for s in SPLITS},
    "singer": {s: f"{s}_s.txt" for s in SPLITS},
}
SPLIT_VERSION = ("MARBLE v1 VocalSet preprocess.py (seed 42617) output, as committed in "
                 "nicolaus625/CMI-bench@4c15f410bf0c7ff59d654b2a96f3295f3dec5aa5 data/VocalSet/")

# ----------------------------------------------------------------------------------------------------------------
# The archive and MARBLE's preprocessing rules

ARCHIVE_NAME = "VocalSet11.zip"
# VocalSet 1.1, the file MARBLE v1 downloads (https://zenodo.org/record/1203819/files/VocalSet11.zip). Zenodo lists
# md5 0c09396242f946e7111ad7d8fc649b81 and 2,077,243,579 bytes for it (as quoted by independent public scripts that
# check it against Zenodo's API; see datasets/vocalset/README.md).
ARCHIVE_URL = "https://zenodo.org/records/1203819/files/VocalSet11.zip?download=1"
ARCHIVE_PAGE = "https://zenodo.org/records/1203819"
ARCHIVE_MD5 = "0c09396242f946e7111ad7d8fc649b81"
ARCHIVE_BYTES = 2_077_243_579

SAMPLE_RATE = 44100
CHUNK_MS = 3000
# MARBLE computes the chunk length as sr // 1000 * 3000: 132,000 samples at 44.1 kHz (2.993 s), not 132,300.
CHUNK_SAMPLES = SAMPLE_RATE // 1000 * CHUNK_MS

# Files of the zip that lack the singer prefix get it (MARBLE's name_correction, "align with Table 2 of the
# paper"): (folder, name in the zip, name after the rename). 28 renames.
RENAMES: tuple[tuple[str, str, str], ...] = (
    ("lip_trill", "lip_trill_arps.wav", "f2_lip_trill_arps.wav"),
    ("lip_trill", "scales_lip_trill.wav", "m3_scales_lip_trill.wav"),
    *(("straight", f"arpeggios_straight_{v}.wav", f"f4_arpeggios_straight_{v}.wav") for v in "aeiou"),
    ("straight", "row_straight.wav", "m8_row_straight.wav"),
    *(("straight", f"scales_straight_{v}.wav", f"f4_scales_straight_{v}.wav") for v in "aeiou"),
    ("vocal_fry", "scales_vocal_fry.wav", "f2_scales_vocal_fry.wav"),
    ("fast_forte", "arps_fast_piano_c.wav", "f9_arps_fast_piano_c.wav"),
    ("fast_piano", "fast_piano_arps_f.wav", "f2_fast_piano_arps_f.wav"),
    ("fast_piano", "arps_c_fast_piano.wav", "m3_arps_c_fast_piano.wav"),
    ("fast_piano", "scales_fast_piano_f.wav", "f3_scales_fast_piano_f.wav"),
    *(("fast_piano", f"scales_{key}_fast_piano_{v}.wav", f"m10_scales_{key}_fast_piano_{v}.wav")
      for key in ("c", "f") for v in "aeiou"),
)
# A duplicate and four files outside the paper's Table 2, removed after the renames (MARBLE's file_delete).
DELETIONS: tuple[tuple[str, str], ...] = (
    ("vibrato", "f2_scales_vibrato_a(1).wav"),
    ("vibrato", "caro_vibrato.wav"),
    ("vibrato", "dona_vibrato.wav"),
    ("vibrato", "row_vibrato.wav"),
    ("vibrato", "slow_vibrato_arps.wav"),
)
# Zip entry names MARBLE skips even when they sit in a technique folder (a folder entry ends in "/").
_SKIPPED_NAMES = frozenset({"", ".DS_Store"})

# Written into <data_root>/vocalset/audio/ (ignored by git with the chunks): recordings already chunked, appended
# after each one (so an interrupted prepare resumes), and the marker of a finished prepare.
PROGRESS_FILE = ".prepare_progress.tsv"
PREPARED_MARKER = ".prepared.json"

_LAYOUT = """\
<data_root>/vocalset/audio/belt/f1_arpeggios_belt_c_a_00.wav
<data_root>/vocalset/audio/belt/f1_arpeggios_belt_c_a_01.wav
<data_root>/vocalset/audio/spoken/m4_ row_spoken_00.wav        (some names contain a space)
... one folder per technique folder of VocalSet (belt breathy inhaled lip_trill spoken straight trill trillo
vibrato vocal_fry fast_forte fast_piano forte messa pp slow_forte slow_piano), one 44.1 kHz WAV per 3-s chunk,
<recording>_<jj>.wav: MARBLE v1's preprocessed VocalSet chunks (not the raw FULL/ folder of VocalSet11.zip;
`python -m benchmark prepare vocalset_technique` builds them from the zip)"""


class VocalSetPrepareError(UserError, RuntimeError):
    """``prepare`` could not fetch or read VocalSet11.zip; the message names the file and the manual steps."""


# ----------------------------------------------------------------------------------------------------------------
# Split lists


@dataclass(frozen=True)
class Chunk:
    """One line of a split list, ``<folder>/<recording stem>_<jj>.wav``, taken apart."""

    entry: str
    folder: str
    recording: str  # the recording's file name after MARBLE's renames, e.g. f1_arpeggios_belt_c_a.wav
    index: int
    singer: str

    @property
    def track_id(self) -> str:
        """The chunk's file stem (``f1_arpeggios_belt_c_a_00``): unique over all folders, so it names the chunk."""
        return PurePosixPath(self.entry).stem


def parse_entry(entry: str) -> Chunk:
    """Split a list line into folder, recording, chunk index and singer; refuse anything else.

    The lists are the label source (technique = folder, singer = prefix), so a malformed line must not silently
    become a class.
    """
    parts = entry.split("/")
    if len(parts) != 2 or not parts[1].endswith(".wav"):
        raise ValueError(f"VocalSet entry {entry!r} is not of the form <folder>/<recording>_<jj>.wav")
    folder, name = parts
    stem, _, jj = name[: -len(".wav")].rpartition("_")
    singer = name.split("_", 1)[0]
    if folder not in FOLDERS or not stem or len(jj) != 2 or not jj.isdigit() or singer not in SINGERS:
        raise ValueError(f"VocalSet entry {entry!r}: expected <folder>/<singer>_..._<two digits>.wav with a folder "
                         f"among {', '.join(FOLDERS)} and a singer among {', '.join(SINGERS)}")
    return Chunk(entry=entry, folder=folder, recording=f"{stem}.wav", index=int(jj), singer=singer)


def read_list(path: Path) -> list[str]:
    """The lines of a list file, as written by MARBLE's ``np.savetxt``: one name per line, spaces kept.

    Why line by line: six recordings' names contain a space (``spoken/m4_ row_spoken_00.wav``), so splitting on
    whitespace would silently make two wrong names.
    """
    text = path.read_text(encoding="ascii")
    return [line for line in text.split("\n") if line != ""]


@functools.lru_cache(maxsize=None)
def _lists() -> dict[str, dict[str, tuple[Chunk, ...]]]:
    out: dict[str, dict[str, tuple[Chunk, ...]]] = {}
    for task, files in LIST_FILES.items():
        out[task] = {}
        seen: dict[str, str] = {}
        for split, name in files.items():
            chunks = tuple(parse_entry(e) for e in read_list(MANIFEST_DIR / name))
            for c in chunks:
                if c.entry in seen:
                    raise ValueError(f"VocalSet {task} lists: {c.entry} is in both {seen[c.entry]} and {split}")
                seen[c.entry] = split
            out[task][split] = chunks
    singer_entries = {c.entry for chunks in out["singer"].values() for c in chunks}
    stray = [c.entry for chunks in out["technique"].values() for c in chunks if c.entry not in singer_entries]
    if stray:  # the shared collection is the singer lists; a technique chunk outside them would have no features
        raise ValueError(f"VocalSet lists: {len(stray)} technique chunk(s) are in no singer list, e.g. {stray[0]}")
    return out


def read_split_lists(task: str) -> dict[str, list[str]]:
    """The committed chunk list of ``task`` (``technique`` or ``singer``): ``{split: [entries]}`` in file order."""
    return {split: [c.entry for c in chunks] for split, chunks in _lists()[task].items()}


def list_chunks(task: str) -> dict[str, tuple[Chunk, ...]]:
    """The committed chunks of ``task`` (``technique`` or ``singer``), parsed, per split."""
    return dict(_lists()[task])


def all_chunks() -> list[Chunk]:
    """Every chunk either task reads, once (the singer lists contain the technique lists), sorted by entry.

    The order is fixed and does not depend on the files present: it is the shared collection's item order.
    """
    return sorted((c for chunks in _lists()["singer"].values() for c in chunks), key=lambda c: c.entry)


# ----------------------------------------------------------------------------------------------------------------
# Paths


def task_folder(data_root: Path | str) -> Path:
    """``<data_root>/vocalset``: where the zip is downloaded."""
    return Path(data_root) / "vocalset"


def audio_folder(data_root: Path | str) -> Path:
    """``<data_root>/vocalset/audio``: the chunk files, which list entries are relative to."""
    return task_folder(data_root) / "audio"


def chunk_path(data_root: Path | str, entry: str) -> Path:
    """Where the chunk of a list entry (``belt/f1_arpeggios_belt_c_a_00.wav``) is in the prepared layout."""
    parse_entry(entry)
    return audio_folder(data_root).joinpath(*entry.split("/"))


# ----------------------------------------------------------------------------------------------------------------
# MARBLE's preprocessing, re-implemented


@dataclass
class ArchivePlan:
    """What MARBLE's flat extraction, renames and deletions leave of a zip: ``{(folder, name): zip member}``.

    ``overwritten`` lists the ``folder/name`` targets that two zip entries share (MARBLE extracts both to the same
    path, so the later one in the zip wins); ``renamed`` and ``deleted`` the rules that found their file.
    """

    recordings: dict[tuple[str, str], str]
    overwritten: list[str]
    renamed: list[str]
    deleted: list[str]


def plan_archive(names: Iterable[str]) -> ArchivePlan:
    """Which recordings MARBLE's preprocessing takes from a zip with these member names, and their final names.

    The rule (MARBLE v1 ``benchmark/tasks/VocalSet/preprocess.py``): members with exactly five path components
    (``FULL/<singer>/<context>/<technique>/<file>`` in VocalSet's layout) whose fourth is one of the 17 technique
    folders, except folder entries and ``.DS_Store``, are extracted flat to ``<technique>/<file>``; then
    :data:`RENAMES` (each when its file exists; a rename onto an existing name replaces it), then
    :data:`DELETIONS`. Why a plan rather than an extraction: the chunks are cut from the members read straight
    from the zip, so the 2 GB archive is never unpacked.
    """
    recordings: dict[tuple[str, str], str] = {}
    overwritten: list[str] = []
    for member in names:
        parts = member.split("/")
        if len(parts) != 5 or parts[3] not in FOLDERS or parts[4] in _SKIPPED_NAMES:
            continue
        key = (parts[3], parts[4])
        if key in recordings:
            overwritten.append("/".join(key))
        recordings[key] = member
    renamed, deleted = [], []
    for folder, old, new in RENAMES:
        if (folder, old) in recordings:
            recordings[(folder, new)] = recordings.pop((folder, old))
            renamed.append(f"{folder}/{old} -> {new}")
    for folder, name in DELETIONS:
        if recordings.pop((folder, name), None) is not None:
            deleted.append(f"{folder}/{name}")
    return ArchivePlan(recordings, overwritten, renamed, deleted)


def chunk_stem(name: str) -> str:
    """The part of a recording's file name the chunk names start with: up to the first dot, as MARBLE cuts it."""
    return name.split(".")[0]


def chunk_recording(audio: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """MARBLE's chunks of one recording: ``[channels, CHUNK_SAMPLES]`` float32 arrays, z-normalised each.

    ``audio`` is ``[channels, samples]`` as decoded (floats in [-1, 1]). Steps, in MARBLE's order: leading
    silence trimmed by ``torchaudio.functional.vad`` (its defaults); resampled to 44.1 kHz, first channel only, when
    the file has another rate (VocalSet has none); cut from the start into chunks of ``sr // 1000 * 3000`` samples
    while more than one chunk's length remains, the remainder dropped (MARBLE without ``--keep``); each chunk
    ``(x - mean) / std`` (unbiased std, over all its samples). A chunk with no variation would be all NaN in
    MARBLE; it is kept at zero here instead, so that no file holds non-finite samples.
    """
    import torch
    import torchaudio

    signal = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    signal = torchaudio.functional.vad(signal, sample_rate)
    if sample_rate != SAMPLE_RATE:
        signal = torchaudio.functional.resample(signal[:1, :], sample_rate, SAMPLE_RATE)
        sample_rate = SAMPLE_RATE
    length = sample_rate // 1000 * CHUNK_MS
    count = max(0, (signal.shape[1] - 1) // length)  # chunks while more than `length` samples remain
    chunks = []
    for j in range(count):
        piece = signal[:, j * length:(j + 1) * length]
        centred = piece - piece.mean()
        std = piece.std()
        chunks.append((centred / std if std > 0 else centred).numpy().astype(np.float32))
    return chunks


def _read_progress(path: Path) -> dict[str, int]:
    """``{folder/name: chunks written}`` of the recordings a previous (maybe interrupted) prepare finished."""
    done: dict[str, int] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").split("\n"):
            recording, sep, count = line.rpartition("\t")
            if sep and count.isdigit():
                done[recording] = int(count)
    return done


def _write_chunk(path: Path, chunk: np.ndarray) -> None:
    """Write a chunk as 32-bit float WAV (what MARBLE's ``torchaudio.save`` writes for a float tensor), atomically."""
    import soundfile as sf

    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), chunk.T, SAMPLE_RATE, subtype="FLOAT", format="WAV")
    os.replace(tmp, path)


@dataclass
class PreprocessSummary:
    """What :func:`preprocess_archive` did: recordings chunked now and before, chunks per recording, the rules."""

    plan: ArchivePlan
    processed: int
    resumed: int
    chunks: dict[str, int]  # folder/recording name -> chunks written (0: 3 s or less after trimming)

    def produced(self) -> set[str]:
        """The list entries of every chunk written (``<folder>/<stem>_<jj>.wav``)."""
        out = set()
        for recording, count in self.chunks.items():
            folder, name = recording.split("/", 1)
            out.update(f"{folder}/{chunk_stem(name)}_{j:02d}.wav" for j in range(count))
        return out


def preprocess_archive(archive: Path, out: Path, progress: Callable[[int, int, str], None] | None = None,
                       ) -> PreprocessSummary:
    """Chunk every recording MARBLE takes from ``archive`` into ``out/<folder>/<stem>_<jj>.wav``.

    Resumable: each finished recording is appended to ``out/.prepare_progress.tsv`` and skipped by a later call;
    chunk files are written under a temporary name and renamed when complete, so an interruption leaves no
    truncated chunk under a real name. ``progress(done, total, recording)`` is called after each recording.
    """
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    progress_path = out / PROGRESS_FILE
    done = _read_progress(progress_path)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise VocalSetPrepareError(f"{archive} cannot be read as a zip file ({exc}); delete it and run "
                                   f"`python -m benchmark prepare vocalset_technique` again") from exc
    with zf:
        plan = plan_archive(zf.namelist())
        if not plan.recordings:
            raise VocalSetPrepareError(
                f"{archive} holds no recording in VocalSet's layout (FULL/<singer>/<context>/<technique>/<file>.wav "
                f"with one of the 17 technique folders): it is not VocalSet11.zip (md5 {ARCHIVE_MD5})")
        order = sorted(plan.recordings)  # folders sorted, then file names sorted: MARBLE's processing order
        chunks: dict[str, int] = {}
        processed = resumed = 0
        with open(progress_path, "a", encoding="utf-8") as log_file:
            for k, key in enumerate(order):
                recording = "/".join(key)
                if recording in done:
                    chunks[recording] = done[recording]
                    resumed += 1
                    continue
                member = plan.recordings[key]
                try:
                    audio, sr = sf.read(io.BytesIO(zf.read(member)), dtype="float32", always_2d=True)
                except Exception as exc:  # soundfile raises several types for undecodable input
                    raise VocalSetPrepareError(
                        f"{archive}: member {member} cannot be decoded ({str(exc).strip()}); the zip is damaged or "
                        f"not VocalSet11.zip (md5 {ARCHIVE_MD5}): delete it and run the prepare command again"
                    ) from exc
                pieces = chunk_recording(audio.T, sr)
                folder = out / key[0]
                folder.mkdir(exist_ok=True)
                for j, piece in enumerate(pieces):
                    _write_chunk(folder / f"{chunk_stem(key[1])}_{j:02d}.wav", piece)
                log_file.write(f"{recording}\t{len(pieces)}\n")
                log_file.flush()
                chunks[recording] = len(pieces)
                processed += 1
                if progress is not None:
                    progress(k + 1, len(order), recording)
    return PreprocessSummary(plan, processed, resumed, chunks)


@dataclass
class ListComparison:
    """The chunks a prepare produced against the committed lists: listed but absent per task and split, and
    produced but in no list."""

    missing: dict[str, dict[str, list[str]]]
    unlisted: list[str]

    @property
    def complete(self) -> bool:
        return not any(v for by_split in self.missing.values() for v in by_split.values())

    def summary(self, max_listed: int = 10) -> str:
        def shown(names: list[str]) -> str:
            more = f" ... (+{len(names) - max_listed} more)" if len(names) > max_listed else ""
            return ", ".join(names[:max_listed]) + more

        lines = []
        for task, by_split in self.missing.items():
            expected = {s: len(v) for s, v in _lists()[task].items()}
            for split in SPLITS:
                gone = by_split.get(split, [])
                lines.append(f"  vocalset_{task} {split:5s} {expected[split] - len(gone)} of {expected[split]} "
                             f"listed chunks produced" + (f"; not produced: {shown(gone)}" if gone else ""))
        if self.unlisted:
            lines.append(f"  {len(self.unlisted)} produced chunk(s) are in no list (never read): "
                         f"{shown(sorted(self.unlisted))}")
        return "\n".join(lines)


def compare_with_lists(produced: set[str]) -> ListComparison:
    """Which listed chunks were not produced (per task and split) and which produced chunks no list names."""
    missing = {task: {split: [c.entry for c in chunks if c.entry not in produced]
                      for split, chunks in _lists()[task].items()} for task in LIST_FILES}
    listed = {c.entry for c in all_chunks()}
    return ListComparison(missing, sorted(produced - listed))


def _torchaudio_version() -> str:
    import torchaudio

    return str(torchaudio.__version__)


# ----------------------------------------------------------------------------------------------------------------
# The tasks


class VocalSetTask(Task):
    """What both VocalSet tasks share: the chunk layout, the shared collection, the archive and ``prepare``.

    A subclass names its lists (``list_key``) and how a chunk becomes a class index (:meth:`target`).
    """

    task_type = "multiclass"
    list_key: ClassVar[str] = ""

    def target(self, chunk: Chunk) -> int:
        raise NotImplementedError

    def tracks(self, data_root: Path) -> list[Track]:
        """Every chunk of the task's three lists, with the path its file should have (present or not)."""
        root = audio_folder(data_root)
        if not root.is_dir():
            raise DatasetMissingError(self._missing_message(data_root))
        return [Track(track_id=c.track_id, path=root / c.folder / PurePosixPath(c.entry).name, split=split,
                      target=self.target(c))
                for split, chunks in _lists()[self.list_key].items() for c in chunks]

    def shared_audio(self, data_root: Path) -> SharedAudio:
        """The 7,506 chunks of the singer lists, which both tasks read: features are extracted once for both.

        The identity names the archive and the preprocessing, plus the torchaudio version that produced the chunks
        when ``prepare`` recorded it: the trimming depends on it, so chunks rebuilt with another version must not
        reuse features cached for the old ones.
        """
        root = audio_folder(data_root)
        items = tuple(Track(track_id=c.track_id, path=root / c.folder / PurePosixPath(c.entry).name, split="all",
                            target=None) for c in all_chunks())
        identity = {"dataset": "vocalset_marble_v1_chunks", "audio": f"{ARCHIVE_NAME} md5 {ARCHIVE_MD5}",
                    "preprocessing": f"MARBLE v1: vad trim, {CHUNK_SAMPLES}-sample chunks, z-normalised",
                    "prepared_with_torchaudio": self._prepared_with(data_root)}
        return SharedAudio(identity=identity, tracks=items)

    @staticmethod
    def _prepared_with(data_root: Path | str) -> str | None:
        marker = audio_folder(data_root) / PREPARED_MARKER
        try:
            return json.loads(marker.read_text()).get("torchaudio")
        except (OSError, ValueError, AttributeError):
            return None

    def dataset_identity(self) -> dict[str, Any]:
        """The lists (version and content), the label order and the audio release: what decides a track's audio
        and label."""
        return {"task": self.name, "split": SPLIT_VERSION, "labels": list(self.labels),
                "lists_sha256": {s: file_sha256(MANIFEST_DIR / f) for s, f in LIST_FILES[self.list_key].items()},
                "audio": f"{ARCHIVE_NAME} md5 {ARCHIVE_MD5}, MARBLE v1 preprocessing ({CHUNK_SAMPLES}-sample "
                         f"chunks)"}

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """None: the chunks are computed locally and their bytes depend on the torchaudio version, so nobody can
        publish them. The zip they are cut from is md5-checked by ``prepare``."""
        return {}

    def _missing_message(self, data_root: Path | str) -> str:
        folder = task_folder(data_root)
        fetch = self.fetch_command()
        if (folder / ARCHIVE_NAME).is_file():
            fetch += f"\n(found {folder / ARCHIVE_NAME}: prepare chunks it without downloading it again)"
        elif (folder / "FULL").is_dir() or (Path(data_root) / "FULL").is_dir():
            fetch += (f"\n(found an unpacked VocalSet FULL/ folder: the tasks read MARBLE's 3-s chunks, not the "
                      f"recordings; put {ARCHIVE_NAME} (md5 {ARCHIVE_MD5}) at {folder / ARCHIVE_NAME} and prepare "
                      f"builds them)")
        return missing_dataset_message(self.name, audio_folder(data_root), _LAYOUT, fetch)

    def prepare(self, data_root: Path) -> None:
        """Download VocalSet11.zip (md5-checked, resumable), cut MARBLE's chunks from it, compare them with the
        lists.

        Nothing is done when a finished prepare of the same archive is recorded in
        ``audio/.prepared.json``. An interrupted prepare resumes: the download from its ``.part`` file, the
        chunking after the last finished recording. The zip is kept (a later prepare reuses it) and may be
        deleted once the chunks are there. Both tasks read the same chunks, so preparing one prepares both.
        """
        folder, out = task_folder(data_root), audio_folder(data_root)
        marker = out / PREPARED_MARKER
        if marker.is_file():
            try:
                recorded = json.loads(marker.read_text())
            except ValueError:
                recorded = {}
            if recorded.get("archive_md5") == ARCHIVE_MD5:
                print(f"vocalset: chunks already prepared in {out} (torchaudio {recorded.get('torchaudio')}); "
                      f"nothing to do (remove {marker} to check them against the lists again)")
                return
        archive = self._fetch(folder)
        print(f"vocalset: cutting MARBLE's 3-s chunks from {archive} into {out} "
              f"(VAD trim with torchaudio {_torchaudio_version()}; resumable)")

        def report(done: int, total: int, recording: str) -> None:
            if done % 250 == 0 or done == total:
                print(f"vocalset: {done} / {total} recordings ({recording})", flush=True)

        summary = preprocess_archive(archive, out, progress=report)
        plan = summary.plan
        print(f"vocalset: {len(plan.recordings)} recordings taken from the zip ({summary.processed} chunked now, "
              f"{summary.resumed} before), {len(plan.renamed)} of {len(RENAMES)} renames and {len(plan.deleted)} "
              f"of {len(DELETIONS)} deletions applied"
              + (f"; {len(plan.overwritten)} name(s) given by two zip entries, the later kept as MARBLE does: "
                 f"{', '.join(plan.overwritten[:5])}" if plan.overwritten else ""))
        comparison = compare_with_lists(summary.produced())
        print(comparison.summary())
        if comparison.complete:
            print("vocalset: every listed chunk was produced")
        else:
            absent = sorted({e for by_split in comparison.missing.values() for v in by_split.values() for e in v})
            print(f"vocalset: {len(absent)} listed chunk(s) were not produced. A few are expected: the silence "
                  f"trimming of torchaudio {_torchaudio_version()} can leave a recording shorter than the "
                  f"torchaudio MARBLE's lists were made with did, so its last chunk is not cut. A run skips absent "
                  f"chunks while they are at most max_missing_fraction of a split (default 0.01) and refuses to "
                  f"start otherwise; `python -m benchmark check task=vocalset_technique` (or vocalset_singer) "
                  f"lists them.")
        marker.write_text(json.dumps({
            "archive_md5": ARCHIVE_MD5, "torchaudio": _torchaudio_version(), "recordings": len(plan.recordings),
            "chunks": sum(summary.chunks.values()),
            "listed_not_produced": {t: {s: len(v) for s, v in by.items()} for t, by in comparison.missing.items()},
            "produced_not_listed": len(comparison.unlisted)}, indent=1, sort_keys=True) + "\n")
        print(f"vocalset: ready in {out} for vocalset_technique and vocalset_singer; {archive} may be deleted")

    def _fetch(self, folder: Path) -> Path:
        archive = folder / ARCHIVE_NAME
        if archive.is_file():
            print(f"vocalset: found {archive}; checking its md5 ({ARCHIVE_MD5})")
        else:
            print(f"vocalset: downloading {ARCHIVE_URL} to {archive} ({ARCHIVE_BYTES / 1e9:.2f} GB, md5 "
                  f"{ARCHIVE_MD5}; an interrupted download resumes)")
        try:
            return download(ARCHIVE_URL, archive, checksum=("md5", ARCHIVE_MD5))
        except (urllib.error.URLError, OSError) as exc:
            raise VocalSetPrepareError(
                f"vocalset: could not download {ARCHIVE_URL}: {exc}. Download {ARCHIVE_NAME} (VocalSet 1.1, "
                f"{ARCHIVE_BYTES:,} bytes, md5 {ARCHIVE_MD5}) from {ARCHIVE_PAGE} yourself, put it at {archive} "
                f"and run `{self.fetch_command()}` again: it then only checks the md5 and cuts the chunks.") from exc


@register_task("vocalset_technique", schema=WindowedTaskSpec)
class VocalSetTechnique(VocalSetTask):
    """VocalSet singing technique, MARBLE v1 VocalSetT: 10 classes, 3-s chunks 1,850 / 1,142 / 1,140 (accuracy)."""

    name = "vocalset_technique"
    list_key = "technique"
    labels = list(TECHNIQUES)
    expected_counts = {"train": 1850, "valid": 1142, "test": 1140}

    def target(self, chunk: Chunk) -> int:
        if chunk.folder not in TECHNIQUES:
            raise ValueError(f"VocalSet technique list entry {chunk.entry}: {chunk.folder} is not one of the 10 "
                             f"technique classes")
        return TECHNIQUES.index(chunk.folder)


@register_task("vocalset_singer", schema=WindowedTaskSpec)
class VocalSetSinger(VocalSetTask):
    """VocalSet singer identification, MARBLE v1 VocalSetS: 20 singers, 3-s chunks 3,688 / 2,413 / 1,405 (accuracy)."""

    name = "vocalset_singer"
    list_key = "singer"
    labels = list(SINGERS)
    expected_counts = {"train": 3688, "valid": 2413, "test": 1405}

    def target(self, chunk: Chunk) -> int:
        return SINGERS.index(chunk.singer)


def build(kind: str, cfg: Mapping[str, Any] | None = None) -> VocalSetTask:
    """A VocalSet task by kind, for scripts and tests that do not compose a config."""
    cls = {"vocalset_technique": VocalSetTechnique, "vocalset_singer": VocalSetSinger}[kind]
    return cls({"name": kind, "kind": kind, **(cfg or {})})
