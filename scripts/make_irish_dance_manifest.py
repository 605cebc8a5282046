"""Write datasets/irish_dance/tunes.csv and README.md: the dance tunes of the music21 corpus kept for ``irish_dance``.

Rerun after a music21 upgrade (each row records its corpus file's sha256, and the task refuses a corpus that
differs); the output is a pure function of the installed corpus and the options::

    python scripts/make_irish_dance_manifest.py                     # 150 tunes per class at most
    python scripts/make_irish_dance_manifest.py --max-per-class 0   # no cap

What it keeps, in this order (every step's counts go into the README):

1. Every tune (``X:`` block) of ``music21/corpus/oneills1850/*.abc`` and ``music21/corpus/ryansMammoth/*.abc``.
2. The class comes from the ABC rhythm field ``R:`` (lower-cased, spaces collapsed) through
   ``irish_corpus.TYPE_MAP`` (reel(s), jig(s) / double jig / single jig, hornpipe(s), slip jig / slipjig / hop
   jig, strathspey(s)); a missing or empty ``R:`` or any other value (air, waltz, march, slide, clog, highland
   fling, fling, walkaround) drops the tune. The metre ``M:`` must fit the class (``irish_corpus.METERS``); a
   "jig" in 9/8 is a slip jig (``METER_REMAP``), a "jig" in 2/4 or C| (Ryan's American stage jigs) is dropped.
3. O'Neill numbers transcribed twice (overlapping files such as ``0732-0758_bs`` / ``0732-0758_mh``): the first
   file (path order) whose copy has a class is kept, so each O'Neill number is one tune id.
4. Title keys (``irish_corpus.title_key``) that carry two classes among the tunes of step 3 (the same name printed
   as a reel and as a hornpipe, say) are dropped entirely: the label of such a name is doubtful and the two could
   be one melody.
5. music21 must parse the tune (``converter.parseFile(path, number=X)``), give it the title of the file, expand its
   repeats, and the tune must have at least ``--min-notes`` (32) written notes (grace notes and chord symbols
   not counted). The written value of the played eighth (``eighth_ql``) comes from the note density
   (``irish_corpus.running_eighth_ql``: a sixteenth above 2.8 onsets per written quarter note, as in the 2/4 reels
   and hornpipes, else an eighth); ``onsets`` and ``eighths`` describe one round with the repeats expanded.
6. One tune per title key: the first in (collection: O'Neill before Ryan, corpus path, ``X:`` number) order.
   After this step a title key is one row, so a split by row is a split by title key.
7. Split by title key, stratified by class: ``u = sha256("irish_dance/" + title_key)`` as a fraction in [0, 1);
   u < 0.70 train, < 0.85 valid, else test; then per class, while valid or test holds fewer than
   ``MIN_HELD_OUT`` tunes, the train tune with the largest u moves there (test first, then valid).
8. Cap: a class with more than ``--max-per-class`` tunes keeps, in each split, a share of the cap proportional to
   that split's size in the class (largest remainder), taking the tunes of smallest u. The split of a title key
   never depends on the cap.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without the editable install too

try:
    from benchmark.tasks import irish_corpus as ic
except ImportError:  # pragma: no cover - checkout without the package installed
    from tasks import irish_corpus as ic  # type: ignore[no-redef]

SPLIT_SEED = "irish_dance/"
SHARES = (("train", 0.70), ("valid", 0.85), ("test", 1.0))  # cumulative
MIN_HELD_OUT = 5
DEFAULT_CAP = 150
DEFAULT_MIN_NOTES = 32
COLLECTION_ORDER = tuple(ic.COLLECTIONS)


@dataclass
class Candidate:
    collection: str
    corpus_path: str
    number: int
    title: str
    rhythm: str
    meter: str
    tune_type: str | None
    sha256: str
    tune_id: str = ""
    title_key: str = ""
    eighth_ql: float = 0.5
    onsets: int = 0
    eighths: float = 0.0
    written_notes: int = 0
    failure: str = ""
    split: str = ""

    @property
    def order(self) -> tuple:
        return (COLLECTION_ORDER.index(self.collection), self.corpus_path, self.number)


def split_fraction(title_key: str) -> float:
    return int(hashlib.sha256((SPLIT_SEED + title_key).encode()).hexdigest()[:15], 16) / 16 ** 15


def read_candidates(root: Path) -> list[Candidate]:
    out = []
    for collection, folder in ic.COLLECTIONS.items():
        for path in sorted((root / folder).glob("*.abc")):
            rel = path.relative_to(root).as_posix()
            digest = ic.file_sha256(path)
            tunes = ic.abc_tunes(path.read_text(encoding="utf-8"))
            for tune in tunes:
                meter = (tune.field("M") or "").strip()
                rhythm = tune.field("R") or ""
                c = Candidate(collection=collection, corpus_path=rel, number=tune.number, title=tune.title,
                              rhythm=rhythm, meter=meter, tune_type=ic.map_tune_type(rhythm, meter), sha256=digest)
                c.title_key = ic.title_key(c.title)
                if collection == "oneills1850":
                    c.tune_id = f"{ic.TUNE_ID_PREFIX[collection]}-{tune.number:04d}"
                else:
                    if len(tunes) != 1:
                        raise SystemExit(f"{rel}: {len(tunes)} tunes, expected one per Ryan's file")
                    c.tune_id = f"{ic.TUNE_ID_PREFIX[collection]}-{path.stem}"
                out.append(c)
    return out


def analyse(args: tuple[str, str, int, str, str]) -> tuple[str, int, int, float, str]:
    """Parse one tune as the task will: (tune_id, written notes, onsets of one round, its length in written
    quarter notes, failure or '')."""
    from music21 import harmony

    tune_id, corpus_path, number, title, sha = args
    row = ic.TuneRow(tune_id=tune_id, collection="", corpus_path=corpus_path, number=number, title=title,
                     title_key=ic.title_key(title), tune_type="reel", meter="", eighth_ql=0.5, onsets=1,
                     eighths=1.0, split="train", sha256=sha)
    try:
        score = ic.tune_stream(row)
    except ic.IrishCorpusError as e:
        return tune_id, 0, 0, 0.0, f"title: {e}"
    except Exception as e:  # noqa: BLE001 - any music21 parse failure drops the tune
        return tune_id, 0, 0, 0.0, f"parse: {type(e).__name__}: {e}"
    part = score.parts[0] if score.parts else score
    written = sum(1 for n in part.recurse().notes
                  if not isinstance(n, harmony.ChordSymbol) and not n.duration.isGrace and n.quarterLength > 0)
    try:
        melody = ic.score_melody(score, 0.5, strict=True)  # length in written eighths
    except Exception as e:  # noqa: BLE001
        return tune_id, written, 0, 0.0, f"repeats: {e}"
    return tune_id, written, melody.onsets, melody.length / 2, ""


def assign_splits(kept: list[Candidate]) -> None:
    for c in kept:
        u = split_fraction(c.title_key)
        c.split = next(name for name, upper in SHARES if u < upper)
    for cls in ic.CLASSES:
        rows = [c for c in kept if c.tune_type == cls]
        for held_out in ("test", "valid"):
            while sum(c.split == held_out for c in rows) < MIN_HELD_OUT:
                train = [c for c in rows if c.split == "train"]
                if not train:
                    raise SystemExit(f"class {cls}: too few tunes for {MIN_HELD_OUT} in valid and test")
                max(train, key=lambda c: split_fraction(c.title_key)).split = held_out


def cap_class(rows: list[Candidate], cap: int) -> list[Candidate]:
    if cap <= 0 or len(rows) <= cap:
        return rows
    by_split = {s: sorted((c for c in rows if c.split == s), key=lambda c: split_fraction(c.title_key))
                for s in ic.SPLITS}
    exact = {s: cap * len(by_split[s]) / len(rows) for s in ic.SPLITS}
    quota = {s: int(exact[s]) for s in ic.SPLITS}
    for s in sorted(ic.SPLITS, key=lambda s: (-(exact[s] - quota[s]), ic.SPLITS.index(s)))[: cap - sum(quota.values())]:
        quota[s] += 1
    return [c for s in ic.SPLITS for c in by_split[s][: quota[s]]]


def table(counts: Counter, rows: list[str], cols: list[str], row_label: str) -> str:
    lines = [f"| {row_label} | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for r in rows:
        lines.append(f"| {r} | " + " | ".join(str(counts[(r, c)]) for c in cols)
                     + f" | {sum(counts[(r, c)] for c in cols)} |")
    lines.append("| total | " + " | ".join(str(sum(counts[(r, c)] for r in rows)) for c in cols)
                 + f" | {sum(counts[(r, c)] for r in rows for c in cols)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "datasets" / "irish_dance",
                        help="folder for tunes.csv and README.md")
    parser.add_argument("--max-per-class", type=int, default=DEFAULT_CAP, help="cap per class (0: no cap)")
    parser.add_argument("--min-notes", type=int, default=DEFAULT_MIN_NOTES)
    parser.add_argument("--jobs", type=int, default=2, help="parser processes")
    args = parser.parse_args(argv)

    root = ic.corpus_root()
    stats: dict[str, Counter] = defaultdict(Counter)
    notes: list[str] = []
    everything = read_candidates(root)
    for c in everything:
        stats["tunes"][c.collection] += 1
        stats["rhythm"][(c.collection, ic.normalise_type_field(c.rhythm) or "(missing)", c.meter)] += 1
        if c.tune_type is not None:
            stats["typed"][(c.tune_type, c.collection)] += 1
        if c.tune_type == "slip_jig" and ic.TYPE_MAP.get(ic.normalise_type_field(c.rhythm)) == "jig":
            stats["remapped"][c.collection] += 1

    # 3. one tune per O'Neill number
    typed = [c for c in everything if c.tune_type is not None]
    by_id: dict[str, list[Candidate]] = defaultdict(list)
    for c in sorted(typed, key=lambda c: c.order):
        by_id[c.tune_id].append(c)
    unique = []
    for tune_id, copies in by_id.items():
        unique.append(copies[0])
        for other in copies[1:]:
            stats["same_number"][(copies[0].tune_type, other.collection)] += 1
            if other.tune_type != copies[0].tune_type:
                notes.append(f"{tune_id}: transcriptions typed {copies[0].tune_type} ({copies[0].corpus_path}) and "
                             f"{other.tune_type} ({other.corpus_path}); kept the first")
    # 4. title keys with two classes
    classes_of: dict[str, set[str]] = defaultdict(set)
    for c in unique:
        classes_of[c.title_key].add(c.tune_type)
    conflicted = {k for k, v in classes_of.items() if len(v) > 1}
    conflicts = [f"`{k}`: " + ", ".join(f"{c.tune_id} ({c.tune_type})" for c in unique if c.title_key == k)
                 for k in sorted(conflicted)]
    for c in unique:
        if c.title_key in conflicted:
            stats["conflict"][(c.tune_type, c.collection)] += 1
    candidates = [c for c in unique if c.title_key not in conflicted]

    # 5. parse
    jobs = [(c.tune_id, c.corpus_path, c.number, c.title, c.sha256) for c in candidates]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(analyse, jobs, chunksize=16))
    else:
        results = [analyse(j) for j in jobs]
    parsed = []
    for c, (tune_id, written, onsets, quarters, failure) in zip(candidates, results):
        assert tune_id == c.tune_id
        c.written_notes, c.onsets, c.failure = written, onsets, failure
        c.eighth_ql = ic.running_eighth_ql(onsets, quarters)
        c.eighths = quarters / c.eighth_ql
        if failure:
            stats["failed"][(c.tune_type, c.collection)] += 1
            notes.append(f"{c.tune_id} ({c.corpus_path} X:{c.number}, {c.title!r}): {failure}")
        elif written < args.min_notes:
            stats["short"][(c.tune_type, c.collection)] += 1
            notes.append(f"{c.tune_id} ({c.corpus_path} X:{c.number}, {c.title!r}): {written} notes")
        else:
            parsed.append(c)
            stats["parsed"][(c.tune_type, c.collection)] += 1

    # 6. one tune per title key
    kept: list[Candidate] = []
    seen: set[str] = set()
    for c in sorted(parsed, key=lambda c: c.order):
        if c.title_key in seen:
            stats["duplicate"][(c.tune_type, c.collection)] += 1
            continue
        seen.add(c.title_key)
        kept.append(c)
        stats["deduped"][(c.tune_type, c.collection)] += 1

    # 7-8. split, cap
    assign_splits(kept)
    for c in kept:
        stats["split_all"][(c.tune_type, c.split)] += 1
    final = [c for cls in ic.CLASSES for c in cap_class([c for c in kept if c.tune_type == cls],
                                                        args.max_per_class)]
    final.sort(key=lambda c: (ic.SPLITS.index(c.split), ic.CLASSES.index(c.tune_type), c.tune_id))
    for c in final:
        stats["final"][(c.tune_type, c.split)] += 1
        stats["final_collection"][(c.tune_type, c.collection)] += 1
        if c.eighth_ql == 0.25:
            stats["sixteenths"][(c.tune_type, c.meter)] += 1

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "tunes.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(ic.COLUMNS)
        for c in final:
            w.writerow([c.tune_id, c.collection, c.corpus_path, c.number, c.title, c.title_key, c.tune_type,
                        c.meter, c.eighth_ql, c.onsets, f"{c.eighths:g}", c.split, c.sha256])
    ic.load_tunes(args.out / "tunes.csv")  # the file must read back
    baseline = ic.tempo_only_baseline(ic.load_tunes(args.out / "tunes.csv"))
    (args.out / "README.md").write_text(readme(stats, notes, conflicts, args, len(everything), baseline),
                                        encoding="utf-8")
    print(f"wrote {len(final)} tunes to {args.out / 'tunes.csv'}")
    for cls in ic.CLASSES:
        print(f"  {cls:11s} typed {sum(stats['typed'][(cls, k)] for k in ic.COLLECTIONS):4d}  deduped "
              f"{sum(stats['deduped'][(cls, k)] for k in ic.COLLECTIONS):4d}  kept "
              + " ".join(f"{s} {stats['final'][(cls, s)]}" for s in ic.SPLITS))
    return 0


def readme(stats: dict[str, Counter], notes: list[str], conflicts: list[str], args: argparse.Namespace,
           n_tunes: int, baseline: float) -> str:
    import music21

    classes, colls = list(ic.CLASSES), list(ic.COLLECTIONS)
    cap = args.max_per_class
    steps = Counter()
    for name in ("typed", "same_number", "conflict", "failed", "short", "parsed", "duplicate", "deduped"):
        for cls in classes:
            steps[(name, cls)] = sum(stats[name][(cls, k)] for k in colls)
    step_rows = ["typed", "same_number", "conflict", "failed", "short", "duplicate", "deduped"]
    step_names = {
        "typed": "class from R: and M: (step 2)", "same_number": "- O'Neill number transcribed twice (step 3)",
        "conflict": "- title key with two classes (step 4)", "failed": "- music21 parse / title / repeats failed (5)",
        "short": f"- fewer than {args.min_notes} notes (5)", "duplicate": "- duplicate title key (6)",
        "deduped": "**after dedup**"}
    step_table = ["| step | " + " | ".join(classes) + " | total |", "|---" * (len(classes) + 2) + "|"]
    for name in step_rows:
        vals = [steps[(name, c)] for c in classes]
        step_table.append(f"| {step_names[name]} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    rhythm_lines = []
    for (coll, rhythm, meter), n in sorted(stats["rhythm"].items(), key=lambda kv: (kv[0][0], -kv[1], kv[0])):
        cls = ic.map_tune_type(rhythm if rhythm != "(missing)" else "", meter)
        cell = (meter or "(none)").replace("|", "\\|")  # C| in a markdown table
        rhythm_lines.append(f"| {coll} | {rhythm} | {cell} | {n} | {cls or 'dropped'} |")
    return f"""# irish_dance: tune type of Irish and Scottish dance tunes (committed tune list)

The task `irish_dance` renders dance tunes of two 19th-century printed collections, as the `music21` wheel ships
them in ABC, to audio and asks which of five tune types each is: **{', '.join(classes)}**. `tunes.csv` lists the
tunes, their class and split; `tasks/irish_corpus.py` reads it, parses a tune from the installed music21 corpus
and writes its MIDI. Nothing is downloaded: the scores are in the music21 wheel.

This file and `tunes.csv` are written by `scripts/make_irish_dance_manifest.py` (its docstring states every rule);
do not edit them by hand. Rerun, after a music21 upgrade for instance:

    python scripts/make_irish_dance_manifest.py{'' if cap == DEFAULT_CAP else f' --max-per-class {cap}'}

Written from **music21 {music21.__version__}** (corpus at `music21/corpus/`), `--max-per-class {cap}`,
`--min-notes {args.min_notes}`. Every row records the sha256 of its ABC file; `irish_corpus.tune_stream` refuses
a corpus file with another digest and names the installed music21 version.

## Sources and licence

* *O'Neill's Music of Ireland* (Francis O'Neill, Chicago 1903; "1850 melodies"): public domain. ABC
  transcriptions in `music21/corpus/oneills1850/` (files of 1-100 tunes; `X:` is O'Neill's number; transcribers
  named in each tune's `Z:` field, e.g. Henrik Norbeck, Dan G. Petersen, Trish O'Neil; some numbers are
  transcribed twice in overlapping files).
* *Ryan's Mammoth Collection* (William Bradbury Ryan, Boston 1883; reprinted as *Cole's 1000 Fiddle Tunes*, 1940,
  which some files cite in `B:`): the 1883 book is public domain. ABC in `music21/corpus/ryansMammoth/` (one tune
  per file, `X: 1`; contributors named in `Z:`).
* The ABC encodings are distributed inside music21 (BSD-3-Clause software). music21's `corpus/license.txt` assumes
  no copyright and changes no licence for corpus content: the encodings are "distributed with the permission of
  the encoders ... and where permitted under United States copyright law", "some encodings included in the corpus
  may not be used for commercial uses or have other restrictions", and it points to licences embedded in
  individual files or directories. music21's package description (README / wheel METADATA) adds: "The encoded
  musical scores in the corpus have their own copyrights and licenses. The underlying music is believed to be in
  the public domain in the US, EU, and Canada (and most of the world) and the encodings are also either public
  domain or used by permission." Neither `oneills1850/` nor `ryansMammoth/` has a licence file, and their ABC
  files carry no licence or copyright line. So: the music is public domain; the transcriptions are used as
  music21 redistributes them, for research; check with the encoders before commercial use. This folder holds
  only the tune list (titles, numbers, derived labels), no ABC text.
* Soundfont (default): TimGM6mb.sf2 by Tim Brechbill, GPL-2, shipped in the `pretty_midi` wheel; audio rendered
  with it is a product of its samples. `task.soundfont=FluidR3_GM` (MIT, Debian `fluid-soundfont-gm`) or
  `MuseScore_General` (MIT, Debian `musescore-general-soundfont`) use permissively licensed samples instead.
  Renderer: TinySoundFont (MIT) through the `tinysoundfont` wheel.

## Files

**tunes.csv**, one row per kept tune, sorted by split, class, tune id. Columns:

| column | meaning |
|---|---|
| tune_id | `oneills1850-<O'Neill number, 4 digits>` or `ryans-<ABC file stem>` (stable while the corpus is) |
| collection | `oneills1850` or `ryansMammoth` (the music21 corpus folder) |
| corpus_path | the ABC file relative to the music21 corpus root, e.g. `oneills1850/1176-1275.abc` |
| number | the tune's `X:` number in that file (`music21.converter.parseFile(path, number=...)`) |
| title | the first `T:` as printed (a repeated `T:` removed); Ryan's titles often end in the tune type ("-- Reel"): never a model input |
| title_key | normalised title (below): the unit of dedup and split |
| tune_type | one of {', '.join(classes)} |
| meter | the `M:` field as written |
| eighth_ql | written value, in quarter notes, of the played eighth: 0.25 for a tune written in running sixteenths (more than {ic.SIXTEENTH_DENSITY} onsets per written quarter note: the 2/4 reels and hornpipes, eight sixteenths a bar; counts below), else 0.5 |
| onsets | note onsets of one round of the tune, repeats expanded, ties merged, grace notes left out |
| eighths | length of that round in played eighths (so note rate = eighths_per_second x onsets / eighths) |
| split | train / valid / test |
| sha256 | sha256 of the ABC file in the music21 {music21.__version__} corpus |

## Class mapping

The class is the collector's / transcriber's ABC rhythm field `R:`, lower-cased with spaces collapsed:

| R: value | class |
|---|---|
| reel, reels | reel |
| jig, jigs, double jig, single jig | jig (in 6/8; a "jig" in 9/8 is a slip_jig, in 2/4 or C\\| it is dropped) |
| hornpipe, hornpipes | hornpipe |
| slip jig, slipjig, hop jig | slip_jig |
| strathspey, strathspeys | strathspey |
| missing or empty, air, waltz, march, slide, clog, highland fling, fling, walkaround | dropped |

Allowed metres: reel / hornpipe / strathspey C\\|, C, 4/4, 2/2, 2/4; jig 6/8; slip_jig 9/8; any other
combination is dropped. Every `R:` value found, with its metre, count and fate:

| collection | R: | M: | tunes | class |
|---|---|---|---|---|
{chr(10).join(rhythm_lines)}

O'Neill's collection is ordered by tune type, but whole files of its dance sections carry no `R:` (among them
`0811-0899` and `1001-1031`, all in 6/8, and `1376-1475`, 98 of 100 in C|): those tunes are dropped, not typed
from their number or metre, so O'Neill contributes fewer tunes than the book holds.

## Title key

`irish_corpus.title_key`: repeated `T:` removed; accents removed (NFKD to ASCII); lower case; text in parentheses
or brackets removed; an inverted final article removed ("Bag of Meal, The"); a final setting or number removed
("1st Setting", "Second setting", "No. 2", "No.2."), so the settings and numbered tunes of one name are one title
(a conservative choice: they are often variants of one melody and must not straddle splits); a final tune-type
word removed ("-- Reel", "- JIG", "Hornpipe", "Slip Jig", ...), so a tune printed with and without its type is one
title; "favourite" -> "favorite"; apostrophes removed; other punctuation to spaces; the words "the", "a", "an"
removed; spaces collapsed.

## Counts

{n_tunes} tunes in the two collections ({stats['tunes']['oneills1850']} O'Neill `X:` blocks, including
duplicate transcriptions; {stats['tunes']['ryansMammoth']} Ryan's files). {sum(stats['remapped'].values())} tunes
typed "jig" in 9/8 became slip jigs. From the class of step 2 to one tune per title key:

{chr(10).join(step_table)}

Split of all {sum(stats['split_all'].values())} deduplicated tunes (before the cap):

{table(stats['split_all'], classes, list(ic.SPLITS), 'class')}

**tunes.csv** (cap {cap} per class{'' if cap > 0 else ': none'}), per class and split
(tests/test_irish_corpus.py checks this table against the file):

<!-- counts of tunes.csv -->
{table(stats['final'], classes, list(ic.SPLITS), 'class')}

by collection:

{table(stats['final_collection'], classes, colls, 'class')}

Rows with `eighth_ql = 0.25` (running sixteenths), by class and metre: {', '.join(f"{c} {m} {n}" for (c, m), n in sorted(stats['sixteenths'].items())) or 'none'}.

## Caveats for the task

* Strathspeys come from Ryan's collection only (O'Neill 1850 has none with `R:strathspey`), so that class is one
  book and one set of transcribers; the other classes mix both books (table above). A model that tells the books
  apart (notation habits that survive in MIDI: ornaments written out, dotted rhythms) gets some strathspey signal
  for free.
* `title` often contains the tune type (Ryan's "-- Reel"); it is metadata, never an input.
* Tempo: `tune_midi` plays every tune at the same eighth-note rate, so tempo carries no class. The note rate does
  carry some: slip jigs have more long notes (fewer onsets per eighth), strathspeys more short ones. A logistic
  regression on [tempo, note rate], tempo uniform in 5-8 eighths/s for every class, 5-fold stratified CV
  (`irish_corpus.tempo_only_baseline`, seed 0) scores a class-balanced accuracy of **{baseline:.3f}** on
  tunes.csv (chance 0.200); tests/test_irish_corpus.py keeps the mean over seeds 0, 1, 2 below 0.40.

## Dropped by music21 or as too short, and other notes

{chr(10).join('* ' + n for n in notes) if notes else '(none)'}

## Title keys with two classes (all their tunes dropped, step 4)

{chr(10).join('* ' + n for n in conflicts) if conflicts else '(none)'}
"""


if __name__ == "__main__":
    raise SystemExit(main())
