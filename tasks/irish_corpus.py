"""The corpus side of ``irish_dance``: dance tunes of two 19th-century collections, as the music21 wheel ships them.

The tunes are O'Neill's *Music of Ireland* (1850 tunes, 1903) and *Ryan's Mammoth Collection* (1883), ABC files
in ``music21/corpus/oneills1850/`` (many tunes per file) and ``music21/corpus/ryansMammoth/`` (one tune per file).
Each kept tune is one row of ``datasets/irish_dance/tunes.csv``, written by
``scripts/make_irish_dance_manifest.py`` (its docstring and ``datasets/irish_dance/README.md`` give the rules: the
class mapping, the filters, the title dedup, the split and the cap). A row names its ABC file (relative to the
music21 corpus root), the tune's ``X:`` number in it and the file's sha256, so a different music21 corpus is
refused rather than silently rendered.

This module reads the manifest (:func:`load_tunes`), parses one tune (:func:`tune_stream`) and turns it into a
one-track MIDI file whose tempo plays eighth notes at a given rate, the same for every tune type
(:func:`tune_midi`); :func:`note_rate` is the note onsets per second at that tempo. It also holds the pure text
rules the manifest script uses (:func:`abc_tunes`, :func:`map_tune_type`, :func:`title_key`), so the rules live in
one place and the tests can check them.

"Eighth note" means the note value a player feels as the tune's running eighth. For a 6/8 jig, a 9/8 slip jig and
a reel, hornpipe or strathspey written in C, C| or 4/4 that is the written eighth (``eighth_ql = 0.5`` quarter
notes). Both books write many reels and hornpipes in 2/4 with sixteenth notes as the running value (``L:1/16``,
eight sixteenths a bar, which is a C| bar of eight eighths at half the written size): for those the written
sixteenth is the played eighth (``eighth_ql = 0.25``; :func:`running_eighth_ql` decides from the note density).
The MIDI file rescales written durations by ``0.5 / eighth_ql``, so every tune's MIDI has the same tempo
(``30 * eighths_per_second`` quarter notes a minute) and the same eighth-note grid whatever the notation.
"""
from __future__ import annotations

import csv
import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from benchmark.checksums import file_sha256

CLASSES: tuple[str, ...] = ("reel", "jig", "hornpipe", "slip_jig", "strathspey")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
# The two collections: manifest name -> folder of the music21 corpus, and the prefix of their tune ids.
COLLECTIONS: dict[str, str] = {"oneills1850": "oneills1850", "ryansMammoth": "ryansMammoth"}
TUNE_ID_PREFIX: dict[str, str] = {"oneills1850": "oneills1850", "ryansMammoth": "ryans"}
COLUMNS: tuple[str, ...] = ("tune_id", "collection", "corpus_path", "number", "title", "title_key", "tune_type",
                            "meter", "eighth_ql", "onsets", "eighths", "split", "sha256")
EIGHTH_QL = (0.5, 0.25)  # the written value of the played eighth: an eighth, or a sixteenth (2/4 reel notation)
SIXTEENTH_DENSITY = 2.8  # written onsets per quarter note above which the running value is the sixteenth
MIDI_TPQ = 480  # MIDI ticks per quarter note
MIDI_VELOCITY = 80

# The ABC rhythm field (R:, lower-cased, spaces collapsed) -> class. Everything else is not one of the five classes
# (air, waltz, march, slide, clog, highland fling, fling, walkaround) or missing, and the tune is dropped.
TYPE_MAP: dict[str, str] = {
    "reel": "reel", "reels": "reel",
    "jig": "jig", "jigs": "jig", "double jig": "jig", "double jigs": "jig", "single jig": "jig",
    "hornpipe": "hornpipe", "hornpipes": "hornpipe",
    "slip jig": "slip_jig", "slipjig": "slip_jig", "slip jigs": "slip_jig", "slipjigs": "slip_jig",
    "hop jig": "slip_jig",
    "strathspey": "strathspey", "strathspeys": "strathspey",
}
# The metres a class may be written in (the ABC M: field as written, spaces removed). A "jig" in 9/8 is a slip jig
# (Ryan's prints 9/8 tunes as "-- Jig" and the transcribers wrote R:jig for some of them); a "jig" in 2/4 or C| is
# the American stage "jig" (a clog or breakdown), not a 6/8 jig, and is dropped, as is any other class/metre clash.
METERS: dict[str, tuple[str, ...]] = {
    "reel": ("C|", "C", "4/4", "2/2", "2/4"),
    "hornpipe": ("C|", "C", "4/4", "2/2", "2/4"),
    "strathspey": ("C|", "C", "4/4", "2/2", "2/4"),
    "jig": ("6/8",),
    "slip_jig": ("9/8",),
}
METER_REMAP: dict[tuple[str, str], str] = {("jig", "9/8"): "slip_jig"}

# Words that name a tune type at the end of a title ("Acacia -- Reel", "Fisher's Hornpipe"): removed from the title
# key, longest first, so that a tune printed with and without its type is one title.
_TYPE_WORDS = ("highland fling", "double jig", "single jig", "slip jig", "slipjig", "hop jig", "set dance",
               "hornpipe", "strathspey", "fling", "reel", "jig", "clog", "slide")
_ARTICLES = {"the", "a", "an"}


class IrishCorpusError(RuntimeError):
    """The installed music21 corpus does not hold the tune the manifest names (another music21 version)."""


@dataclass(frozen=True)
class TuneRow:
    """One row of ``datasets/irish_dance/tunes.csv``.

    ``eighth_ql`` is the written value of the played eighth (0.5, or 0.25 for a tune written in running sixteenths);
    ``onsets`` and ``eighths`` are the note onsets and the length in played eighths of one round of the tune with
    its repeats expanded (what :func:`tune_midi` plays once), so ``note_rate = eighths_per_second * onsets /
    eighths`` without parsing.
    """

    tune_id: str
    collection: str
    corpus_path: str
    number: int
    title: str
    title_key: str
    tune_type: str
    meter: str
    eighth_ql: float
    onsets: int
    eighths: float
    split: str
    sha256: str


# ---------------------------------------------------------------------------------------------------------------
# manifest


def default_manifest() -> Path:
    """The committed ``datasets/irish_dance/tunes.csv`` (as installed with the package)."""
    from benchmark.tasks.base import MANIFEST_ROOT

    return MANIFEST_ROOT / "irish_dance" / "tunes.csv"


def load_tunes(manifest_path: str | Path) -> list[TuneRow]:
    """The rows of a tunes.csv, checked: the columns, one of :data:`CLASSES` and :data:`SPLITS` per row, unique
    tune ids, and no title key in two splits. Raises ``ValueError`` naming the file, row and value otherwise."""
    path = Path(manifest_path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        if header != COLUMNS:
            raise ValueError(f"{path}: columns {list(header)}, expected {list(COLUMNS)} "
                             "(rewrite it with scripts/make_irish_dance_manifest.py)")
        rows: list[TuneRow] = []
        for line, raw in enumerate(reader, start=2):
            def bad(column: str, allowed: str) -> ValueError:
                return ValueError(f"{path}:{line}: {column}={raw[column]!r}, expected {allowed}")

            if raw["tune_type"] not in CLASSES:
                raise bad("tune_type", f"one of {', '.join(CLASSES)}")
            if raw["split"] not in SPLITS:
                raise bad("split", f"one of {', '.join(SPLITS)}")
            if raw["collection"] not in COLLECTIONS:
                raise bad("collection", f"one of {', '.join(COLLECTIONS)}")
            if not re.fullmatch(r"[0-9a-f]{64}", raw["sha256"]):
                raise bad("sha256", "64 lower-case hex digits")
            try:
                row = TuneRow(tune_id=raw["tune_id"], collection=raw["collection"], corpus_path=raw["corpus_path"],
                              number=int(raw["number"]), title=raw["title"], title_key=raw["title_key"],
                              tune_type=raw["tune_type"], meter=raw["meter"], eighth_ql=float(raw["eighth_ql"]),
                              onsets=int(raw["onsets"]), eighths=float(raw["eighths"]), split=raw["split"],
                              sha256=raw["sha256"])
            except ValueError as e:
                raise ValueError(f"{path}:{line}: {e}") from None
            if row.eighth_ql not in EIGHTH_QL:
                raise bad("eighth_ql", " or ".join(map(str, EIGHTH_QL)))
            if row.onsets <= 0 or not row.eighths > 0 or not row.title_key:
                raise ValueError(f"{path}:{line}: onsets, eighths and title_key must be positive / non-empty")
            rows.append(row)
    seen: dict[str, int] = {}
    key_split: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        if row.tune_id in seen:
            raise ValueError(f"{path}:{i}: tune_id {row.tune_id!r} also on line {seen[row.tune_id]}")
        seen[row.tune_id] = i
        if key_split.setdefault(row.title_key, row.split) != row.split:
            raise ValueError(f"{path}:{i}: title_key {row.title_key!r} is in both {key_split[row.title_key]} "
                             f"and {row.split}")
    return rows


# ---------------------------------------------------------------------------------------------------------------
# the corpus


def corpus_root() -> Path:
    """The music21 corpus folder (``music21/corpus`` of the installed wheel)."""
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def music21_version() -> str:
    import music21

    return str(music21.__version__)


def corpus_file(row: TuneRow) -> Path:
    """The row's ABC file in the installed corpus, checked against the row's sha256."""
    path = corpus_root() / row.corpus_path
    if not path.is_file():
        raise IrishCorpusError(
            f"tune {row.tune_id}: {row.corpus_path} is not in the music21 {music21_version()} corpus ({corpus_root()})"
            "; the manifest datasets/irish_dance/tunes.csv was written from another music21 version: install "
            "the version its README names or rerun scripts/make_irish_dance_manifest.py")
    digest = file_sha256(path)
    if digest != row.sha256:
        raise IrishCorpusError(
            f"tune {row.tune_id}: {path} has sha256 {digest}, the manifest expects {row.sha256}: music21 "
            f"{music21_version()} ships a different corpus file than the one the manifest was written from; "
            "install the music21 version datasets/irish_dance/README.md names or rerun "
            "scripts/make_irish_dance_manifest.py")
    return path


def tune_stream(row: TuneRow):  # noqa: ANN201 - music21.stream.Score
    """The tune as music21 parses it (a Score with one Part), from the corpus file and ``X:`` number of the row.

    Parsed from source each time (no music21 pickle is read or written)."""
    from music21 import converter

    path = corpus_file(row)
    score = converter.parseFile(path, number=row.number, format="abc", forceSource=True, storePickle=False)
    title = score.metadata.title if score.metadata is not None else None
    if title is None or title_key(title) != title_key(row.title):
        raise IrishCorpusError(f"tune {row.tune_id}: X:{row.number} of {row.corpus_path} is {title!r}, the manifest "
                               f"says {row.title!r} (music21 {music21_version()})")
    return score


# ---------------------------------------------------------------------------------------------------------------
# melody and MIDI


@dataclass(frozen=True)
class Melody:
    """One round of a tune, repeats expanded, in played eighths: ``notes`` are ``(onset, duration, midi pitches)``
    with onset and duration in eighths from the start; ``length`` is the round's length in eighths (the bar grid
    including a final short bar, so a next round starts on the beat)."""

    notes: tuple[tuple[float, float, tuple[int, ...]], ...]
    length: float

    @property
    def onsets(self) -> int:
        return len(self.notes)


def score_melody(score, eighth_ql: float, *, strict: bool = True) -> Melody:  # noqa: ANN001 - music21 stream
    """The notes of a parsed tune with repeats expanded and ties merged (grace notes and chord symbols left out).

    ``strict``: raise when music21 cannot expand the repeats; otherwise play the tune as written, once.
    """
    from music21 import harmony

    part = score.parts[0] if score.parts else score
    try:
        played = part.expandRepeats()
    except Exception as e:  # noqa: BLE001 - music21 raises several types for bad repeat structures
        if strict:
            raise IrishCorpusError(f"music21 cannot expand the repeats: {type(e).__name__}: {e}") from None
        played = part
    flat = played.stripTies().flatten()
    scale = 1.0 / eighth_ql  # written quarter notes -> played eighths
    notes = []
    for el in flat.notes:
        if isinstance(el, harmony.ChordSymbol) or el.duration.isGrace or el.quarterLength <= 0:
            continue
        pitches = tuple(sorted({int(p.midi) for p in el.pitches}))
        notes.append((float(el.offset) * scale, float(el.quarterLength) * scale, pitches))
    notes.sort()
    end = max((o + d for o, d, _ in notes), default=0.0)
    length = max(float(flat.highestTime) * scale, end)
    return Melody(notes=tuple(notes), length=length)


@functools.lru_cache(maxsize=64)
def _row_melody(row: TuneRow) -> Melody:
    return score_melody(tune_stream(row), row.eighth_ql, strict=True)


def tune_melody(row: TuneRow) -> Melody:
    """One round of the row's tune (parsed once per process and row)."""
    return _row_melody(row)


def tune_midi(row: TuneRow, eighths_per_second: float, transpose: int = 0,
              repeats_to_seconds: float | None = None) -> bytes:
    """A standard MIDI file (format 0, one track) of the tune's melody with eighth notes at ``eighths_per_second``.

    The tempo is ``30 * eighths_per_second`` quarter notes a minute for every tune (durations are written in played
    eighths, see the module docstring), so the tempo does not tell the tune type. ``transpose`` shifts every note by
    that many semitones (``ValueError`` if a note leaves MIDI 0..127: clipping would change the tune). With
    ``repeats_to_seconds`` the round is played again, end to end on the bar grid, until the file lasts at least
    that long. No program change: the renderer chooses the instrument; channel 0, velocity 80.
    """
    if not (eighths_per_second > 0 and math.isfinite(eighths_per_second)):
        raise ValueError(f"eighths_per_second must be a positive number, got {eighths_per_second!r}")
    melody = tune_melody(row)
    rounds = 1
    if repeats_to_seconds is not None:
        round_seconds = melody.length / eighths_per_second
        rounds = max(1, math.ceil(float(repeats_to_seconds) / round_seconds - 1e-9))
    return melody_midi(melody, eighths_per_second, transpose=transpose, rounds=rounds)


def melody_midi(melody: Melody, eighths_per_second: float, *, transpose: int = 0, rounds: int = 1) -> bytes:
    """The bytes of a format-0 MIDI file of ``rounds`` rounds of ``melody`` (see :func:`tune_midi`)."""
    from music21 import midi

    ticks_per_eighth = MIDI_TPQ // 2
    events: list[tuple[int, int, int]] = []  # (tick, 0 = off before 1 = on at one tick, pitch)
    for r in range(rounds):
        base = r * melody.length
        for onset, duration, pitches in melody.notes:
            start = round((base + onset) * ticks_per_eighth)
            stop = max(start + 1, round((base + onset + duration) * ticks_per_eighth))
            for p in pitches:
                q = p + int(transpose)
                if not 0 <= q <= 127:
                    raise ValueError(f"transpose={transpose} moves MIDI pitch {p} out of 0..127")
                events.append((start, 1, q))
                events.append((stop, 0, q))
    events.sort()
    mf = midi.MidiFile()
    mf.format = 0
    mf.ticksPerQuarterNote = MIDI_TPQ
    track = midi.MidiTrack(index=1)
    mf.tracks.append(track)

    def add(delta: int, event) -> None:  # noqa: ANN001 - music21 MidiEvent
        dt = midi.DeltaTime(track=track, time=delta, channel=None)
        track.events.extend([dt, event])

    tempo = midi.MidiEvent(track=track, type=midi.MetaEvents.SET_TEMPO, channel=None)
    mspq = round(60_000_000 / (30.0 * eighths_per_second))  # microseconds per quarter note
    tempo.data = mspq.to_bytes(3, "big")
    add(0, tempo)
    now = 0
    for tick, on, pitch in events:
        ev = midi.MidiEvent(track=track, type=midi.ChannelVoiceMessages.NOTE_ON if on
                            else midi.ChannelVoiceMessages.NOTE_OFF, channel=1)
        ev.pitch = pitch
        ev.velocity = MIDI_VELOCITY if on else 0
        add(tick - now, ev)
        now = tick
    end = midi.MidiEvent(track=track, type=midi.MetaEvents.END_OF_TRACK, channel=None)
    end.data = b""
    add(max(0, round(rounds * melody.length * ticks_per_eighth) - now), end)
    return mf.writestr()


def note_rate(row: TuneRow, eighths_per_second: float) -> float:
    """Note onsets per second of the tune played at ``eighths_per_second`` (onsets / duration of one round)."""
    melody = tune_melody(row)
    return eighths_per_second * melody.onsets / melody.length


def manifest_note_rate(row: TuneRow, eighths_per_second: float) -> float:
    """:func:`note_rate` from the manifest's ``onsets`` and ``eighths`` columns (no parsing)."""
    return eighths_per_second * row.onsets / row.eighths


def tempo_only_baseline(rows: list[TuneRow], low: float = 5.0, high: float = 8.0, seed: int = 0,
                        folds: int = 5, with_note_rate: bool = True) -> float:
    """Class-balanced accuracy of a logistic regression on [tempo, note rate] (or tempo alone with
    ``with_note_rate=False``), cross-validated (stratified ``folds``), where each tune's tempo is drawn uniformly
    from ``[low, high]`` eighths a second (the same range for every class, ``numpy`` generator ``seed``): how much
    the rendering tempo, and the note rate it implies, tell the tune type. Chance is 1 / 5. Tempo alone must be at
    chance (it is drawn independently of the class); the note rate (onsets per second) is partly the rhythm itself
    (a slip jig's long notes, a strathspey's snaps), so it tells a little. Note rates come from the manifest's
    columns (:func:`manifest_note_rate`)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tempo = np.random.default_rng(seed).uniform(low, high, len(rows))
    rate = np.array([manifest_note_rate(r, t) for r, t in zip(rows, tempo)])
    y = np.array([CLASSES.index(r.tune_type) for r in rows])
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    features = np.c_[tempo, rate] if with_note_rate else tempo[:, None]
    predicted = cross_val_predict(model, features, y,
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(balanced_accuracy_score(y, predicted))


# ---------------------------------------------------------------------------------------------------------------
# text rules of the manifest (used by scripts/make_irish_dance_manifest.py)


@dataclass(frozen=True)
class AbcTune:
    """One tune of an ABC file as text: its ``X:`` number, its header fields (letter -> values in order), and the
    title as the manifest records it (the first ``T:``)."""

    number: int
    fields: dict[str, tuple[str, ...]]

    @property
    def title(self) -> str:
        titles = self.fields.get("T", ())
        return clean_title(titles[0]) if titles else ""

    def field(self, letter: str) -> str | None:
        values = self.fields.get(letter, ())
        return values[0] if values else None


def abc_tunes(text: str) -> list[AbcTune]:
    """The tunes of an ABC file (a tune starts at a line ``X:``); header lines after the first body line too."""
    tunes = []
    for block in re.split(r"(?m)^(?=X:)", text):
        if not block.startswith("X:"):
            continue
        found: dict[str, list[str]] = {}
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z]):(.*)$", line)
            if m and not line.startswith("|"):
                found.setdefault(m.group(1), []).append(m.group(2).strip())
        number = int(re.match(r"\d+", found["X"][0].strip()).group())
        tunes.append(AbcTune(number=number, fields={k: tuple(v) for k, v in found.items()}))
    return tunes


def clean_title(title: str) -> str:
    """A T: value as printed, minus a repeated ``T:`` ("T: T:Beebe's") and surrounding space."""
    title = title.strip()
    while re.match(r"^T:\s*", title):
        title = re.sub(r"^T:\s*", "", title).strip()
    return title


def normalise_type_field(value: str | None) -> str:
    """An R: value lower-cased with spaces collapsed and trailing punctuation removed ('' when missing)."""
    return re.sub(r"\s+", " ", (value or "").lower()).strip(" .;,")


def map_tune_type(rhythm: str | None, meter: str | None) -> str | None:
    """The class of a tune from its R: and M: fields, or None (missing, not one of the classes, or a metre the
    class is not written in; see :data:`TYPE_MAP`, :data:`METER_REMAP`, :data:`METERS`)."""
    cls = TYPE_MAP.get(normalise_type_field(rhythm))
    if cls is None:
        return None
    m = (meter or "").replace(" ", "")
    cls = METER_REMAP.get((cls, m), cls)
    return cls if m in METERS[cls] else None


def running_eighth_ql(onsets: int, quarters: float) -> float:
    """The written value (quarter notes) of the played eighth, from the written note density: a sixteenth (0.25)
    when the tune has more than :data:`SIXTEENTH_DENSITY` onsets per written quarter note (running sixteenths, as
    in the 2/4 reels and hornpipes of both books), else an eighth (0.5). Dance tunes run at about 2 onsets per
    quarter in eighth notation and about 4 in sixteenth notation, so the threshold sits between."""
    return 0.25 if quarters > 0 and onsets / quarters > SIXTEENTH_DENSITY else 0.5


def title_key(title: str) -> str:
    """A title normalised so that one tune printed in different ways is one key.

    In order: a repeated ``T:`` is dropped; accents are removed (NFKD, ASCII); lower case; text in parentheses or
    brackets is dropped ("(1st Setting)", "(Lancashire)"); an inverted article at the end is dropped ("Bag of
    Meal, The"); a setting or number suffix is dropped ("1st Setting", "2nd setting", "No. 2", "No.2.", a bare
    final number after a comma or full stop), so settings and numbered tunes of one name are one title; a final tune
    type is dropped ("-- Reel", "- JIG", "Hornpipe", "Slip Jig", several in a row); "favourite" -> "favorite";
    apostrophes are dropped ("McLeod's" -> "mcleods"); every other non-letter/digit is a space; the words "the",
    "a" and "an" are dropped; spaces are collapsed. A title that would become empty keeps its words.
    """
    text = clean_title(title)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
    text = re.sub(r"[\u2019`]", "'", text)
    previous = None
    while previous != text:
        previous = text
        text = text.strip(" .,;:-!?\"'")
        text = re.sub(r",\s*(the|a|an)$", "", text)
        text = re.sub(r"(\bno\.?\s*\d+|\b\d+(st|nd|rd|th)\s+(setting|version|part)|\b(first|second|third|fourth)\s+"
                      r"(setting|version|part)|\bsetting\s*(no\.?\s*)?\d+)$", "", text)
        text = re.sub(r"(?<=[,.])\s*\d+$", "", text)
        for word in _TYPE_WORDS:
            stripped = re.sub(rf"(^|[\s\-.,]){re.escape(word)}s?$", "", text)
            if stripped != text and set(re.sub(r"[^a-z0-9]+", " ", stripped).split()) - _ARTICLES:
                text = stripped
                break
    text = text.replace("favourite", "favorite")
    text = re.sub(r"'", "", text)
    words = [w for w in re.sub(r"[^a-z0-9]+", " ", text).split()]
    kept = [w for w in words if w not in _ARTICLES]
    return " ".join(kept or words)
