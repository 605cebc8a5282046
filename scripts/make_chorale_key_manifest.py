"""Write datasets/chorale_key/chorales.csv: the Bach chorales of the music21 corpus kept for ``chorale_key``.

Rerun after a music21 upgrade (the manifest records each score's sha256, and the task refuses a corpus that
differs)::

    python scripts/make_chorale_key_manifest.py            # writes datasets/chorale_key/chorales.csv

What it keeps and why:

* Riemenschneider's 371 chorales as music21 lists them (``ChoraleListRKBWV``); several numbers are the same score,
  so they map to 350 unique files. Each file is one row, with all its Riemenschneider numbers.
* The key written in the score (its first ``Key`` object: the score states mode as well as signature) must equal
  music21's Krumhansl-Schmuckler estimate (``analyze('key')``): where they disagree the written key is doubtful as
  a label (a modal chorale, a signature one accidental off), and a key task must not score probes against it.
* Harmonisations of one hymn tune stay in one split: chorales are grouped by their hymn title (as printed, minus
  punctuation) and by the soprano's opening contour (the first 8 pitch intervals between distinct notes, which do
  not change under transposition); the groups are connected components of both relations, so a tune sung to two
  texts is still one group. Groups are assigned to train / valid / test (70 / 15 / 15 of the chorales) in the
  order of a hash of their first work name, each to the split furthest below its target share.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

TARGET_SHARES = {"train": 0.70, "valid": 0.15, "test": 0.15}
CONTOUR_INTERVALS = 8
COLUMNS = ["work", "corpus_path", "riemenschneider", "title", "tune_group", "key", "n_quarters", "split", "sha256"]


def title_key(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z]+", " ", text).strip()


def soprano_contour(score) -> tuple[int, ...]:  # noqa: ANN001 - music21 stream
    pitches = [n.pitch.midi for n in score.parts[0].recurse().notes if n.isNote]
    distinct = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    return tuple(b - a for a, b in zip(distinct, distinct[1:]))[:CONTOUR_INTERVALS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "datasets" / "chorale_key"
                        / "chorales.csv")
    args = parser.parse_args(argv)

    import music21
    from music21 import corpus
    from music21.corpus.chorales import ChoraleListRKBWV

    numbers: dict[str, list[int]] = defaultdict(list)
    titles: dict[str, str] = {}
    for riemenschneider, info in sorted(ChoraleListRKBWV().byRiemenschneider.items()):
        work = f"bwv{info['bwv']}"
        numbers[work].append(int(riemenschneider))
        titles.setdefault(work, info["title"])
    root = Path(corpus.__file__).parent
    rows, contours = [], {}
    for work, riemenschneider in numbers.items():
        found = corpus.getWork(work)
        paths = found if isinstance(found, list) else [found]
        path = next((Path(p) for p in paths if str(p).endswith(".mxl")), Path(paths[0]))
        score = corpus.parse(str(path))
        written = next(iter(score.recurse().getElementsByClass(music21.key.Key)), None)
        analysed = score.analyze("key")
        if written is None or str(written) != str(analysed):
            continue
        tonic = written.tonic.name.replace("-", "b")
        if len(tonic) == 2 and tonic[1] == "#":  # mir_eval spelling with flats, as the task's labels
            tonic = {"C#": "Db", "D#": "Eb", "F#": "Gb", "G#": "Ab", "A#": "Bb"}[tonic]
        tonic = {"Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}.get(tonic, tonic)
        contours[work] = soprano_contour(score)
        rows.append({
            "work": work, "corpus_path": path.relative_to(root).as_posix(),
            "riemenschneider": " ".join(map(str, riemenschneider)), "title": titles[work],
            "key": f"{tonic} {written.mode}", "n_quarters": f"{float(score.highestTime):g}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        })
    # connected components of "same title" and "same soprano opening"
    parent = {row["work"]: row["work"] for row in rows}

    def find(work: str) -> str:
        while parent[work] != work:
            parent[work] = parent[parent[work]]
            work = parent[work]
        return work

    for relation in (lambda r: title_key(r["title"]), lambda r: contours[r["work"]]):
        first: dict[object, str] = {}
        for row in rows:
            other = first.setdefault(relation(row), row["work"])
            parent[find(row["work"])] = find(other)
    members: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        members[find(row["work"])].append(row)
    groups = sorted(members.values(), key=lambda g: hashlib.sha256(min(r["work"] for r in g).encode()).hexdigest())
    counts = {split: 0 for split in TARGET_SHARES}
    for group in groups:
        name = min(r["work"] for r in group)
        total = sum(counts.values()) + len(group)
        split = max(TARGET_SHARES, key=lambda s: TARGET_SHARES[s] * total - counts[s])
        counts[split] += len(group)
        for row in group:
            row["tune_group"] = name
            row["split"] = split
    rows.sort(key=lambda r: (list(TARGET_SHARES).index(r["split"]), r["work"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    modes = {s: sum(r["split"] == s and r["key"].endswith("major") for r in rows) for s in TARGET_SHARES}
    print(f"music21 {music21.__version__}: {len(numbers)} unique chorale files, {len(rows)} kept "
          f"(written key = analysed key), {len(groups)} tune groups; per split {counts}, of which major {modes}; "
          f"largest group {max(len(g) for g in groups)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
