"""nsynth_instrument and nsynth_pitch: NSynth (Engel et al. 2017) instrument family (11 classes) and MIDI pitch
(128 classes), both scored by note-level accuracy, on the official split (MARBLE v1's NSynthI / NSynthP).

The split is the archive a note comes from: ``nsynth-train`` / ``nsynth-valid`` / ``nsynth-test``
(**289,205 / 12,678 / 4,096** notes; no instrument of train is in valid or test). No list of train or valid
notes is published apart from the archives, so their membership is read from the user's ``examples.json``; the
test notes are committed (``datasets/nsynth/test_notes.tsv``) and the user's test set is checked against them.

What comes from where:
    split membership  the folder ``nsynth-<split>/`` a note's ``examples.json`` entry is in; the 4,096 test notes
                      also from the committed list (a test note absent from a partial examples.json is listed as
                      missing, so a partial copy is scored on what it has and says so)
    family label      ``instrument_family_str`` of examples.json, which must equal the family prefix of the note
                      name (refused otherwise), as an index into ``datasets/nsynth/label_vocab.tsv`` (MARBLE v1's
                      ``class2id``: 0 bass ... 9 synth_lead, 10 vocal)
    pitch label       ``pitch`` of examples.json, which must equal the ``PPP`` of the note name; the class index is
                      the MIDI number itself (0-127; labels ``"0"`` .. ``"127"``)

Layout of the user's copy (``python -m benchmark prepare nsynth_instrument`` builds it; both tasks share it)::

    <data_root>/nsynth/nsynth-<split>/examples.json
    <data_root>/nsynth/nsynth-<split>/audio/<note_str>.wav      4 s, 16 kHz mono

A track is a note; its id is the note name (``bass_synthetic_033-022-050``), unique across the three splits.
Windowing as MARBLE: the whole 4-s note is one encoder window (``configs/task/nsynth_*.yaml``). Both tasks read
the same notes, so they name one :class:`~benchmark.tasks.base.SharedAudio` collection and share one feature cache.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import re
import tarfile
import urllib.error
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from benchmark.checksums import file_sha256, hash_file
from benchmark.errors import UserError
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import (
    MANIFEST_ROOT, SPLITS, DatasetMissingError, SharedAudio, Task, Track, missing_dataset_message,
    warn_unknown_config_keys,
)
from benchmark.tasks.download import download, extract
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

MANIFEST_DIR = MANIFEST_ROOT / "nsynth"
TEST_NOTES_FILE = MANIFEST_DIR / "test_notes.tsv"
VOCAB_FILE = MANIFEST_DIR / "label_vocab.tsv"
TEST_NOTES_COLUMNS = ("note_str", "instrument_str", "instrument_family_str", "instrument_family",
                      "instrument_source_str", "instrument_source", "pitch", "velocity")

# The published split sizes (TFDS nsynth "full" metadata; the Hugging Face jg583/NSynth card gives the same).
PUBLISHED_COUNTS: dict[str, int] = {"train": 289_205, "valid": 12_678, "test": 4_096}
NUM_PITCHES = 128

SPLIT_VERSION = ("official NSynth split: the archive a note comes from, nsynth-train 289,205 / nsynth-valid "
                 "12,678 / nsynth-test 4,096 notes (MARBLE v1 NSynthI/NSynthP)")
# The audio collection both tasks read (SharedAudio.identity): what decides the audio of a note id, nothing about
# either task's labels. The jsonwav archives carry no version number of their own, so the identity names them.
SHARED_IDENTITY: dict[str, Any] = {"dataset": "nsynth", "release": "magenta nsynth-{train,valid,test}.jsonwav.tar.gz",
                                   "layout": "nsynth-<split>/audio/<note_str>.wav"}

# The archives as published. No checksum of the .jsonwav.tar.gz files is published (TFDS pins only the tfrecord
# variant), so a download is checked by what it holds (note counts, the committed test list, every wav present)
# and its size and sha256 are recorded in a marker next to it. Tests point this table at local copies.
BASE_URL = "http://download.magenta.tensorflow.org/datasets/nsynth/"
SOURCES: dict[str, str] = {split: f"{BASE_URL}nsynth-{split}.jsonwav.tar.gz" for split in SPLITS}
EXAMPLES = "examples.json"

# A note name: <family>_<source>_<NNN>-<PPP>-<VVV> (instrument_str, MIDI pitch, MIDI velocity; 3 digits each).
NOTE_RE = re.compile(r"(?P<family>[a-z]+(?:_[a-z]+)*?)_(?P<source>acoustic|electronic|synthetic)_(?P<number>\d{3})"
                     r"-(?P<pitch>\d{3})-(?P<velocity>\d{3})")

_LAYOUT = """\
<data_root>/nsynth/nsynth-train/examples.json      labels of the 289,205 training notes
<data_root>/nsynth/nsynth-train/audio/<note_str>.wav   e.g. audio/bass_synthetic_033-022-050.wav (4 s, 16 kHz mono)
<data_root>/nsynth/nsynth-valid/examples.json, audio/   the 12,678 validation notes
<data_root>/nsynth/nsynth-test/examples.json, audio/    the 4,096 test notes
(each nsynth-<split>/ folder is what nsynth-<split>.jsonwav.tar.gz from
http://download.magenta.tensorflow.org/datasets/nsynth/ unpacks to)"""

# Task config keys: the schema's (windowing and registration); anything else (added with +task.key=) is a typo.
_CONFIG_KEYS = frozenset(f.name for f in dataclasses.fields(WindowedTaskSpec))
# Problems named in one error message; the rest are counted.
_MAX_LISTED = 5


class NSynthDataError(UserError, ValueError):
    """The user's NSynth copy is not the published one (malformed examples.json, labels that contradict the note
    names, a different test set): the message names the file, what differs and the fix."""


class NSynthPrepareError(UserError, RuntimeError):
    """``prepare`` could not download, unpack or verify an archive; the message says what to do by hand."""


def task_folder(data_root: Path | str) -> Path:
    """``<data_root>/nsynth``: where the archives are downloaded and unpacked (one copy for both tasks)."""
    return Path(data_root) / "nsynth"


def split_folder(data_root: Path | str, split: str) -> Path:
    """``<data_root>/nsynth/nsynth-<split>``: the folder the split's archive unpacks to."""
    return task_folder(data_root) / f"nsynth-{split}"


def note_path(data_root: Path | str, split: str, note: str) -> Path:
    """Where the audio of ``note`` of ``split`` is in the user's copy."""
    return split_folder(data_root, split) / "audio" / f"{note}.wav"


def archive_name(split: str) -> str:
    return f"nsynth-{split}.jsonwav.tar.gz"


def _listed(items: list[str], total: int | None = None) -> str:
    """The first :data:`_MAX_LISTED` items and how many more there are."""
    total = len(items) if total is None else total
    more = f" ... (+{total - _MAX_LISTED} more)" if total > _MAX_LISTED else ""
    return "; ".join(items[:_MAX_LISTED]) + more


# ----------------------------------------------------------------------------------------------------------------
# The committed files


@functools.lru_cache(maxsize=None)
def read_family_vocab(path: Path = VOCAB_FILE) -> tuple[str, ...]:
    """The 11 instrument families in class-index order (``label_vocab.tsv`` rows ``instrument_family``).

    Checked to be indices 0..10 in order, so that a reordered file cannot silently permute the classes.
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["vocabulary"] == "instrument_family"]
    if [int(r["index"]) for r in rows] != list(range(len(rows))) or len(rows) != 11:
        raise ValueError(f"{path}: the instrument_family rows must be indices 0..10 in order")
    return tuple(r["name"] for r in rows)


FAMILIES: tuple[str, ...] = read_family_vocab()
_FAMILY_INDEX: dict[str, int] = {name: i for i, name in enumerate(FAMILIES)}


@dataclass(frozen=True)
class TestNote:
    """One row of ``datasets/nsynth/test_notes.tsv``: a note of the official test set and its two labels."""

    note: str
    family: int
    pitch: int


@functools.lru_cache(maxsize=None)
def read_test_notes(path: Path = TEST_NOTES_FILE) -> tuple[TestNote, ...]:
    """The 4,096 notes of nsynth-test in examples.json key order, with family index and MIDI pitch.

    Every row is checked against its note name (family prefix, instrument, pitch, velocity) and the family id
    against the vocabulary, so that the list cannot disagree with the rule the task applies to examples.json.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if tuple(reader.fieldnames or ()) != TEST_NOTES_COLUMNS:
            raise ValueError(f"{path}: header {reader.fieldnames} is not {', '.join(TEST_NOTES_COLUMNS)}")
        rows = list(reader)
    out = []
    for row in rows:
        m = NOTE_RE.fullmatch(row["note_str"])
        fam = row["instrument_family_str"]
        if (m is None or m["family"] != fam or _FAMILY_INDEX.get(fam) != int(row["instrument_family"])
                or row["note_str"] != f"{row['instrument_str']}-{int(row['pitch']):03d}-{int(row['velocity']):03d}"):
            raise ValueError(f"{path}: row {row['note_str']!r} contradicts its note name or the family vocabulary")
        out.append(TestNote(row["note_str"], int(row["instrument_family"]), int(row["pitch"])))
    if len({n.note for n in out}) != len(out):
        raise ValueError(f"{path}: a note is listed twice")
    return tuple(out)


# ----------------------------------------------------------------------------------------------------------------
# examples.json

# The fields of an examples.json entry the tasks read; the others (qualities, velocity, ids) are not needed.
_ENTRY_FIELDS = ("note_str", "instrument_family_str", "pitch")


def _compact_entry(obj: dict[str, Any]) -> Any:
    """``json.load`` object hook: an entry becomes the tuple ``(note_str, instrument_family_str, pitch)``.

    Why: the training examples.json holds 289,205 entries of 13 fields; keeping three of them as a tuple while the
    file is parsed keeps the parse to a few seconds and a small fraction of the memory of the full dicts. Objects
    without those three fields (the top level, a malformed entry) are returned as they are and judged afterwards.
    """
    if "note_str" in obj and "instrument_family_str" in obj and "pitch" in obj:
        return (obj["note_str"], obj["instrument_family_str"], obj["pitch"])
    return obj


def _entry_problem(key: Any, value: Any) -> tuple[str, int, int] | str:
    """``(note, family index, pitch)`` of one examples.json entry, or why it is refused."""
    if not isinstance(value, tuple):
        return f"{key!r} lacks a field of {', '.join(_ENTRY_FIELDS)}"
    note_str, family, pitch = value
    m = NOTE_RE.fullmatch(key) if isinstance(key, str) else None
    if m is None:
        return f"{key!r} is not a note name <family>_<source>_<NNN>-<PPP>-<VVV>"
    if note_str != key:
        return f"{key!r} has note_str {note_str!r}"
    if family != m["family"]:
        return f"{key!r} has instrument_family_str {family!r}, but its name says {m['family']!r}"
    if family not in _FAMILY_INDEX:
        return f"{key!r} has the unknown family {family!r} (known: {', '.join(FAMILIES)})"
    if type(pitch) is not int or pitch != int(m["pitch"]):
        return f"{key!r} has pitch {pitch!r}, but its name says {int(m['pitch'])}"
    if not 0 <= pitch < NUM_PITCHES:
        return f"{key!r} has pitch {pitch}, outside MIDI 0-127"
    return key, _FAMILY_INDEX[family], pitch


@functools.lru_cache(maxsize=8)
def _parse_examples(path_str: str, size: int, mtime_ns: int) -> dict[str, tuple[int, int]]:
    """``{note: (family index, pitch)}`` of one examples.json; cached by path, size and mtime (both tasks and the
    shared-audio listing of one process read each file once)."""
    path = Path(path_str)
    try:
        with open(path, "rb") as f:
            data = json.load(f, object_hook=_compact_entry)
    except json.JSONDecodeError as exc:
        raise NSynthDataError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): the file is truncated "
            f"or not the examples.json of the NSynth archive. Unpack {path.parent.name}.jsonwav.tar.gz again "
            f"(python -m benchmark prepare nsynth_instrument).") from None
    except UnicodeDecodeError as exc:
        raise NSynthDataError(f"{path} is not UTF-8 JSON ({exc.reason}): not the examples.json of the NSynth "
                              f"archive.") from None
    if not isinstance(data, dict):  # (a lone entry at the top level was made a tuple by the hook)
        raise NSynthDataError(
            f"{path}: expected one JSON object mapping each note name to its entry ({{\"bass_synthetic_033-022-050\": "
            f"{{\"note_str\": ..., \"pitch\": ..., \"instrument_family_str\": ..., ...}}, ...}}), as in the NSynth "
            f"jsonwav archives; found a {type(data).__name__}.")
    notes: dict[str, tuple[int, int]] = {}
    problems: list[str] = []
    for key, value in data.items():
        got = _entry_problem(key, value)
        if isinstance(got, str):
            problems.append(got)
        else:
            notes[got[0]] = (got[1], got[2])
    if problems:
        raise NSynthDataError(
            f"{path}: {len(problems)} entr{'y is' if len(problems) == 1 else 'ies are'} refused: "
            f"{_listed(problems)}. The tasks take the family from instrument_family_str and the pitch from pitch, "
            f"and require both to agree with the note name, so a label that contradicts its note is not guessed "
            f"at; this is not the examples.json of the published archive.")
    return notes


def read_examples(path: Path | str) -> dict[str, tuple[int, int]]:
    """``{note name: (family index, MIDI pitch)}`` of an NSynth examples.json, validated (see
    :func:`_entry_problem`); malformed files raise :class:`NSynthDataError`. Do not mutate the result (cached)."""
    path = Path(path)
    st = path.stat()
    return _parse_examples(str(path), st.st_size, st.st_mtime_ns)


# ----------------------------------------------------------------------------------------------------------------
# The notes of a local copy


class Note(NamedTuple):
    """One note of the user's copy: its name, split, audio path and both labels (a tuple: 300k are built)."""

    note: str
    split: str
    path: Path
    family: int
    pitch: int


def _missing_examples(data_root: Path) -> list[str]:
    return [f"nsynth-{s}/{EXAMPLES}" for s in SPLITS if not (split_folder(data_root, s) / EXAMPLES).is_file()]


def missing_message(task: str, data_root: Path | str, fetch: str) -> str:
    """The missing-dataset paragraph, naming which examples.json files were not found."""
    data_root = Path(data_root)
    gone = _missing_examples(data_root)
    fetch += f" (about 25 GB; or download the three archives by hand and unpack them into {task_folder(data_root)})"
    if gone and len(gone) < len(SPLITS):
        fetch += f"\n(not found: {', '.join(gone)})"
    return missing_dataset_message(task, task_folder(data_root), _LAYOUT, fetch)


def nsynth_notes(data_root: Path | str, task: str = "nsynth") -> tuple[Note, ...]:
    """Every note of the three splits once, in split order (train, valid, test), each split by note name.

    Train and valid are the notes of their examples.json; test is the committed list of 4,096 notes, labelled
    from the user's examples.json where it has the note and from the committed list otherwise (such a note's
    audio must be absent: see :func:`_collect_notes`). Raises :class:`DatasetMissingError` when an examples.json
    is not there, :class:`NSynthDataError` when the copy contradicts the published split.
    """
    data_root = Path(data_root)
    if _missing_examples(data_root):
        raise DatasetMissingError(missing_message(task, data_root, f"python -m benchmark prepare {task}"))
    signature = []
    for split in SPLITS:
        st = (split_folder(data_root, split) / EXAMPLES).stat()
        signature.append((st.st_size, st.st_mtime_ns))
    return _collect_notes(str(data_root), tuple(signature))


@functools.lru_cache(maxsize=4)
def _collect_notes(root: str, signature: tuple[tuple[int, int], ...]) -> tuple[Note, ...]:
    """The checks across splits, once per state of the three examples.json files (``signature``)."""
    data_root = Path(root)
    examples = {s: read_examples(split_folder(data_root, s) / EXAMPLES) for s in SPLITS}
    test_notes = read_test_notes()
    official = {n.note for n in test_notes}
    test_file = split_folder(data_root, "test") / EXAMPLES

    strangers = sorted(set(examples["test"]) - official)
    if strangers:
        raise NSynthDataError(
            f"{test_file} lists {len(strangers)} note(s) that are not in the official NSynth test set "
            f"({TEST_NOTES_FILE}, 4,096 notes): {_listed(strangers)}. This is a different test set, and scores on it "
            f"are not comparable with published NSynth numbers; use the test archive {archive_name('test')} from "
            f"{BASE_URL} (python -m benchmark prepare nsynth_instrument).")
    for split in ("train", "valid"):
        leaked = sorted(set(examples[split]) & official)
        if leaked:
            raise NSynthDataError(
                f"{split_folder(data_root, split) / EXAMPLES} lists {len(leaked)} note(s) of the official test set: "
                f"{_listed(leaked)}. A test note used for {'training' if split == 'train' else 'model selection'} "
                f"makes the test score meaningless; unpack each split's archive into its own folder.")
    both = sorted(set(examples["train"]) & set(examples["valid"]))
    if both:
        raise NSynthDataError(f"{len(both)} note(s) are in both nsynth-train and nsynth-valid ({_listed(both)}); "
                              f"each note belongs to the archive it comes from.")

    for split in SPLITS:
        n, published = len(examples[split]), PUBLISHED_COUNTS[split]
        if n != published:
            log.warning("%s lists %d notes; the published nsynth-%s has %d. This is a partial copy: scores on it "
                        "are not comparable with published NSynth numbers (check with `python -m benchmark check "
                        "task=nsynth_instrument`).", split_folder(data_root, split) / EXAMPLES, n, split, published)

    # One folder Path per split and one join per note: pathlib parses every component it is given, and a full
    # note_path() per note made this loop take most of ten seconds on the real train split.
    audio = {split: note_path(data_root, split, "x").parent for split in SPLITS}
    out: list[Note] = []
    for split in ("train", "valid"):
        labels = examples[split]
        folder = audio[split]
        out.extend(Note(note, split, folder / f"{note}.wav", *labels[note]) for note in sorted(labels))
    orphans = []
    for row in sorted(test_notes, key=lambda r: r.note):
        path = audio["test"] / f"{row.note}.wav"
        labels = examples["test"].get(row.note)
        if labels is None:
            if path.exists():
                orphans.append(row.note)
            labels = (row.family, row.pitch)
        out.append(Note(row.note, "test", path, *labels))
    if orphans:
        raise NSynthDataError(
            f"{test_file} has no entry for {len(orphans)} test note(s) whose audio is present ({_listed(orphans)}): "
            f"the file is truncated or from another copy; unpack {archive_name('test')} again.")
    return tuple(out)


# ----------------------------------------------------------------------------------------------------------------
# The tasks


class NSynthTask(Task):
    """What both NSynth tasks share: the notes, the split, the missing-data message, prepare() and the shared
    audio collection. A subclass sets ``name``, ``labels`` and :meth:`target`."""

    task_type = "multiclass"
    expected_counts = dict(PUBLISHED_COUNTS)

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        warn_unknown_config_keys(self.name, self.cfg, _CONFIG_KEYS)

    def target(self, note: Note) -> int:
        raise NotImplementedError

    def tracks(self, data_root: Path) -> list[Track]:
        """Every note of the three splits (see :func:`nsynth_notes`), the whole 4-s file each."""
        return [Track(track_id=n.note, path=n.path, split=n.split, target=self.target(n))
                for n in nsynth_notes(data_root, self.name)]

    def shared_audio(self, data_root: Path) -> SharedAudio:
        """The NSynth notes, the same for both tasks: one extraction per encoder serves instrument and pitch."""
        return SharedAudio(identity=dict(SHARED_IDENTITY),
                           tracks=tuple(Track(track_id=n.note, path=n.path, split=n.split, target=None)
                                        for n in nsynth_notes(data_root, self.name)))

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """None: NSynth publishes no checksum of its wavs or of the jsonwav archives (see :meth:`prepare`)."""
        return {}

    def dataset_identity(self) -> dict[str, Any]:
        """The split, the committed test list and the label encoding: what decides a note's split and label."""
        return {"task": self.name, "release": SHARED_IDENTITY["release"], "split": SPLIT_VERSION,
                "test_notes_sha256": file_sha256(TEST_NOTES_FILE), "labels": self.label_rule()}

    def label_rule(self) -> Any:
        raise NotImplementedError

    def prepare(self, data_root: Path) -> None:
        """Download ``nsynth-{test,valid,train}.jsonwav.tar.gz`` (resumable), unpack each into
        ``<data_root>/nsynth/`` and verify what it holds; both tasks share the result.

        No checksum of these archives is published, so each is verified by its content: its examples.json must be
        well formed with labels that agree with the note names, list the published number of notes (test: exactly
        the committed 4,096), and every listed wav must be present. The archive's size and sha256 are then written
        to ``.nsynth-<split>.unpacked.json`` (compare them with another copy to know you have the same bytes); a
        later ``prepare`` skips a split with such a marker. Archives are kept (the train one is about 24 GB) and
        may be deleted after the check passes.
        """
        folder = task_folder(data_root)
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("test", "valid", "train"):  # smallest first: a broken setup shows within a minute
            self._prepare_split(data_root, split)
        print(f"nsynth: ready in {folder}; the .jsonwav.tar.gz archives may be deleted (check with `python -m "
              f"benchmark check task={self.name} data_root={data_root}`)")

    def _prepare_split(self, data_root: Path, split: str) -> None:
        folder = task_folder(data_root)
        marker = folder / f".nsynth-{split}.unpacked.json"
        if marker.is_file() and (split_folder(data_root, split) / EXAMPLES).is_file():
            try:
                done = json.loads(marker.read_text())
            except ValueError:
                done = None
            if isinstance(done, dict) and "sha256" in done:
                print(f"nsynth: nsynth-{split} already unpacked from an archive with sha256 {done['sha256']} "
                      f"(remove {marker} to unpack again)")
                return
        name, url = archive_name(split), SOURCES[split]
        archive = folder / name
        if (split_folder(data_root, split) / EXAMPLES).is_file() and not archive.is_file():
            # unpacked by hand (or the archive was deleted after unpacking): verified in place, not fetched again
            try:
                count = self._verify_split(data_root, split, split_folder(data_root, split))
            except (NSynthPrepareError, NSynthDataError) as exc:
                print(f"nsynth: the nsynth-{split} found in {folder} is not complete ({exc}); fetching the archive")
            else:
                print(f"nsynth: nsynth-{split} in {folder} is complete ({count:,} notes, every wav present); "
                      f"nothing to download")
                return
        print(f"nsynth: {name} <- {url} (no published checksum: verified by its content after unpacking)")
        try:
            download(url, archive)
        except (urllib.error.URLError, OSError) as exc:
            raise NSynthPrepareError(
                f"nsynth: could not download {url}: {exc}. Put {name} at {archive} and run `{self.fetch_command()}` "
                f"again (an interrupted download resumes from {archive.name}.part), or unpack the archives by hand "
                f"into this layout:\n{_LAYOUT}") from None
        digest = hash_file(archive, "sha256")
        print(f"nsynth: unpacking {archive} ({archive.stat().st_size:,} bytes, sha256 {digest})")
        try:
            extract(archive, folder)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise NSynthPrepareError(
                f"nsynth: {archive} (sha256 {digest}) could not be unpacked ({exc}): the download is truncated or "
                f"corrupt. Delete it and run `{self.fetch_command()}` again.") from None
        count = self._verify_split(data_root, split, archive)
        marker.write_text(json.dumps({"archive": name, "url": url, "bytes": archive.stat().st_size,
                                      "sha256": digest, "notes": count}, indent=1, sort_keys=True) + "\n")

    def _verify_split(self, data_root: Path, split: str, archive: Path) -> int:
        """The number of notes of an unpacked split, after checking it is the published one (or raising);
        ``archive`` is what the split came from, for the message."""
        examples_path = split_folder(data_root, split) / EXAMPLES
        if not examples_path.is_file():
            raise NSynthPrepareError(f"nsynth: {archive} did not unpack to {examples_path}; it is not the NSynth "
                                     f"archive. Expected layout:\n{_LAYOUT}")
        examples = read_examples(examples_path)
        problems = []
        if len(examples) != PUBLISHED_COUNTS[split]:
            problems.append(f"it lists {len(examples):,} notes, the published nsynth-{split} has "
                            f"{PUBLISHED_COUNTS[split]:,}")
        if split == "test":
            strangers = sorted(set(examples) - {n.note for n in read_test_notes()})
            if strangers:
                problems.append(f"{len(strangers)} note(s) are not in the official test list {TEST_NOTES_FILE} "
                                f"({_listed(strangers)})")
        absent = sorted(n for n in examples if not note_path(data_root, split, n).is_file())
        if absent:
            problems.append(f"{len(absent)} listed wav(s) are absent ({_listed(absent)})")
        if problems:
            raise NSynthPrepareError(f"nsynth: {archive} is not the published nsynth-{split}: "
                                     f"{'; '.join(problems)}. Delete it and run `{self.fetch_command()}` again.")
        return len(examples)


@register_task("nsynth_instrument", schema=WindowedTaskSpec)
class NSynthInstrument(NSynthTask):
    """NSynth instrument family, official split 289,205 / 12,678 / 4,096 notes (11 families, accuracy)."""

    name = "nsynth_instrument"
    labels = list(FAMILIES)

    def target(self, note: Note) -> int:
        return note.family

    def label_rule(self) -> Any:
        return list(FAMILIES)


@register_task("nsynth_pitch", schema=WindowedTaskSpec)
class NSynthPitch(NSynthTask):
    """NSynth MIDI pitch, official split 289,205 / 12,678 / 4,096 notes (128 classes, accuracy).

    Labels are the MIDI numbers as strings (``"0"`` .. ``"127"``), class index = MIDI number: that is how NSynth
    writes pitch (``PPP`` of the note name, ``pitch`` of examples.json), whereas note names would need an octave
    convention (MIDI 60 is C4 or C3 depending on the maker) that NSynth does not state. MARBLE's feature dataset
    uses ``pitch - 1``; for a 128-way classifier scored by accuracy the shift changes nothing.
    """

    name = "nsynth_pitch"
    labels = [str(p) for p in range(NUM_PITCHES)]

    def target(self, note: Note) -> int:
        return note.pitch

    def label_rule(self) -> Any:
        return "MIDI pitch 0-127 from examples.json pitch (= PPP of the note name), class index = MIDI number"
