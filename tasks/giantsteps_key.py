"""giantsteps_key: global key detection on EDM previews (24 keys, mir_eval weighted score), the jukemir / MARBLE
GS protocol.

Test is the 604-song GiantSteps Key set; train and valid come from the GiantSteps MTG Key set (rows annotated with
confidence 2 and one unambiguous key), split by a hash of the artist names so that no artist (or collaborator of a
valid artist) is in both: 923 / 236 / 604 songs. Each song is one track; the task config cuts it into
non-overlapping 30 s windows from 0 s (a final partial window dropped) and the runner averages the window
predictions per song, which is jukemir's clip protocol (3,687 / 942 / 2,406 clips) scored per song.
``task.ensemble=marble`` scores the clips as MARBLE v1 does instead (:data:`ENSEMBLES`).

The split and labels are committed in ``datasets/giantsteps_key/songs.csv`` (derived from the published
annotation files by :func:`derive_songs`; the tests prove the two agree, and agree with jukemir's
``giantsteps_clips.json.gz``), the published per-file md5s in ``datasets/giantsteps_key/md5.csv``. A user's local
copy is the layout the datasets' own READMEs produce: a clone of each GitHub repository with ``audio/`` filled by
its ``audio_dl.sh``. When the local annotation files are present they are parsed in their published formats and
must agree with the committed manifest, so a different packaging or an edited copy is refused rather than
silently scored against other labels.

``python -m benchmark.tasks.giantsteps_key KEY_REPO MTG_REPO`` rewrites the two committed files from local clones.
"""
from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from benchmark.errors import ConfigError
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import MANIFEST_ROOT, SPLITS, DatasetMissingError, Task, Track, missing_dataset_message
from benchmark.tasks.registry import register_task

KEY_REPO = "giantsteps-key-dataset"
MTG_REPO = "giantsteps-mtg-key-dataset"
MANIFEST_DIR = MANIFEST_ROOT / "giantsteps_key"

# mir_eval key strings with flat spellings, in MARBLE's LABEL2IDX order (C..B major, then C..B minor).
TONICS_FLAT: tuple[str, ...] = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
LABELS: list[str] = [f"{t} major" for t in TONICS_FLAT] + [f"{t} minor" for t in TONICS_FLAT]
# Every tonic spelling found in either dataset, mapped to the flat spelling of the label vocabulary.
_TONIC_SPELLINGS: dict[str, str] = {**{t.lower(): t for t in TONICS_FLAT},
                                    "c#": "Db", "d#": "Eb", "f#": "Gb", "g#": "Ab", "a#": "Bb"}

# jukemir's artist split of the MTG Key songs: buckets of sha1(lowercased artist) modulo 116, 100..115 valid,
# then two passes that move every co-artist of a valid artist to valid.
ARTIST_BUCKETS = 116
FIRST_VALID_BUCKET = 100
COLLABORATOR_PASSES = 2
CONFIDENT = "2"  # the C column of annotations.txt: 2 = confident, 1 = doubtful, 0 = none

# Published sources. The archives are GitHub's zips of the commits jukemir and MARBLE pin, with jukemir's sha256
# (assets/giantsteps.json); the audio URLs are MARBLE's giantsteps.json table, then the Beatport host that both
# datasets' audio_dl.sh scripts also try.
ANNOTATION_ARCHIVES: dict[str, dict[str, str]] = {
    KEY_REPO: {
        "commit": "c8cb8aad2cb53f165be51ea099d0dc75c64a844f",
        "url": "https://github.com/GiantSteps/giantsteps-key-dataset/archive/"
               "c8cb8aad2cb53f165be51ea099d0dc75c64a844f.zip",
        "sha256": "7749bee0f919b0f53db2c540fa6707f322b82a5d140e453f10f9af7875ad5bb8",
    },
    MTG_REPO: {
        "commit": "fd7b8c584f7bd6d720d170c325a6d42c9bf75a6b",
        "url": "https://github.com/GiantSteps/giantsteps-mtg-key-dataset/archive/"
               "fd7b8c584f7bd6d720d170c325a6d42c9bf75a6b.zip",
        "sha256": "c754c3fabbc0bf275d399028e212fa2c9c6680084bd003e3a283ae7b3ea22996",
    },
}
AUDIO_MIRRORS: dict[str, tuple[str, ...]] = {
    KEY_REPO: ("http://www.cp.jku.at/datasets/giantsteps/backup/", "https://geo-samples.beatport.com/lofi/"),
    MTG_REPO: ("http://www.cp.jku.at/datasets/giantsteps/mtg_key_backup/", "https://geo-samples.beatport.com/lofi/"),
}
# md5.csv names the two sets by these short codes (compact), the folders by the repository names.
_SET_CODES: dict[str, str] = {"key": KEY_REPO, "mtg_key": MTG_REPO}

LAYOUT = f"""\
  {KEY_REPO}/               git clone https://github.com/GiantSteps/{KEY_REPO}
    annotations/key/<id>.LOFI.key       604 songs (test), e.g. 10089.LOFI.key: "D major"
    md5/<id>.LOFI.md5
    audio/<id>.LOFI.mp3                 2-min previews, written by the repository's ./audio_dl.sh
  {MTG_REPO}/           git clone https://github.com/GiantSteps/{MTG_REPO}
    annotations/annotations.txt         ID, MANUAL KEY, C (923 train + 236 valid of 1,486 songs)
    annotations/beatport_metadata.txt   ID, ARTIST, ...
    md5/<id>.LOFI.md5
    audio/<id>.LOFI.mp3                 written by the repository's ./audio_dl.sh"""


# task.ensemble: how a song's 30 s window predictions become its key. The default is what the suite has always
# done (benchmark.evaluation.ClipEvaluator averages the windows' softmax probabilities per track, then the argmax
# key is scored); ``marble`` is MARBLE v1's GS protocol (benchmark.kinds.clip.KeyEnsembleKind).
ENSEMBLE_DEFAULT = "mean_probabilities"
ENSEMBLE_MARBLE = "marble"
ENSEMBLES: dict[str, str] = {
    ENSEMBLE_DEFAULT: "argmax of the mean softmax probabilities over a song's windows (jukemir; the default)",
    ENSEMBLE_MARBLE: "MARBLE v1: vote / max / gmean / mean per song, ensemble_best on valid selects, test reports "
                     "the strategy best on valid (ensemble_val_select)",
}


def check_ensemble(value: Any) -> str:
    """``value`` if it is a known ``task.ensemble``, else the ConfigError naming the key and every value."""
    if not isinstance(value, str) or value not in ENSEMBLES:
        known = "; ".join(f"{name} = {about}" for name, about in ENSEMBLES.items())
        raise ConfigError(f"task.ensemble={value!r}: must be one of {', '.join(ENSEMBLES)} ({known})")
    return value


@dataclass
class GiantStepsKeySpec(WindowedTaskSpec):
    """``task=giantsteps_key``: the windowed task keys, and how window predictions are aggregated per song."""

    ensemble: str = ENSEMBLE_DEFAULT

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ensemble(self.ensemble)


@dataclass(frozen=True)
class Song:
    """One song of the benchmark: Beatport id (as in the file names), split, and its mir_eval key label."""

    id: str
    split: str
    key: str

    @property
    def repo(self) -> str:
        """The repository folder that holds this song's files (test songs are GiantSteps Key, others MTG Key)."""
        return KEY_REPO if self.split == "test" else MTG_REPO


# ----------------------------------------------------------------------------------------------------------------
# Parsing the published formats


def normalise_key(text: str) -> str | None:
    """A published key value as a label of :data:`LABELS`, or ``None`` when it is not one unambiguous key.

    Accepts both spellings in use: GiantSteps Key's flats (``Eb minor``), MTG Key's sharps, capitalised in
    annotations.txt (``D# minor``) and lowercase in its key files (``d# minor``). Surrounding whitespace is
    ignored (two MTG values end with a space). Ambiguous values (``F minor / G# major``, ``G minor/major``,
    ``A-A# minor``), "no key" (``-``) and blanks give ``None``.
    """
    parts = text.strip().split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor"):
        return None
    tonic = _TONIC_SPELLINGS.get(parts[0].lower())
    return None if tonic is None else f"{tonic} {parts[1].lower()}"


def _tsv_rows(path: Path, header: tuple[str, ...]) -> list[list[str]]:
    """Rows of a published tab-separated file whose first line must be ``header``.

    Split on tabs by hand rather than with :mod:`csv`: titles contain quote characters, and values keep their
    trailing spaces until :func:`normalise_key` decides what they mean.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    if tuple(lines[0].rstrip("\r").split("\t")) != header:
        raise ValueError(f"{path}: expected the header {chr(9).join(header)!r}, found {lines[0]!r}")
    rows = [line.rstrip("\r").split("\t") for line in lines[1:] if line.strip()]
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}:{n}: expected {len(header)} tab-separated fields, found {len(row)}")
    return rows


def read_mtg_annotations(path: Path) -> dict[str, tuple[str, str]]:
    """``annotations.txt`` of GiantSteps MTG Key: ``{id: (MANUAL KEY as published, C)}`` in file order."""
    return {row[0]: (row[1], row[2].strip()) for row in _tsv_rows(path, ("ID", "MANUAL KEY", "C"))}


def mtg_kept_keys(annotations: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The MTG rows the benchmark uses, ``{id: label}``: confidence 2 and no ``/`` in ``MANUAL KEY``.

    That is jukemir's rule. Every confident single value parses; one that does not would mean a changed file, so
    it raises instead of silently dropping a song.
    """
    kept: dict[str, str] = {}
    for song_id, (value, confidence) in annotations.items():
        if confidence != CONFIDENT or "/" in value:
            continue
        label = normalise_key(value)
        if label is None:
            raise ValueError(f"MTG Key song {song_id}: confident key {value!r} is not a single key")
        kept[song_id] = label
    return kept


def read_beatport_artists(path: Path) -> dict[str, list[str]]:
    """``beatport_metadata.txt`` of MTG Key: ``{id: [artist, ...]}`` in file order (ARTIST is comma-separated)."""
    header = ("ID", "ARTIST", "SONG TITLE", "MIX", "LABEL", "BP GENRE", "BP BPM", "BP KEY")
    return {row[0]: [a.strip() for a in row[1].split(",")] for row in _tsv_rows(path, header)}


def read_gs_keys(key_dir: Path, ids: Iterable[str] | None = None) -> dict[str, str | None]:
    """GiantSteps Key ``annotations/key/<id>.LOFI.key`` files (one line, no newline): ``{id: label or None}``.

    ``ids`` restricts the read to those songs (absent files are left out); by default every key file is read.
    """
    paths = (sorted(key_dir.glob("*.LOFI.key")) if ids is None
             else [key_dir / f"{i}.LOFI.key" for i in ids])
    return {p.name.split(".")[0]: normalise_key(p.read_text(encoding="utf-8")) for p in paths if p.is_file()}


def artist_bucket(artist: str) -> int:
    """jukemir's artist hash: ``int(sha1(lowercased artist)) % 116``."""
    return int(hashlib.sha1(artist.lower().encode("utf-8")).hexdigest(), 16) % ARTIST_BUCKETS


def artist_split(artists: Mapping[str, list[str]], song_ids: Iterable[str]) -> dict[str, str]:
    """train / valid for each of ``song_ids`` by artist, so that valid shares no artist with train.

    Artists in buckets 100..115 are valid; then, over all songs of ``artists`` (all 1,486 MTG songs, in file
    order, not only the kept ones: a collaboration on an excluded song still links two artists), every co-artist
    of a valid artist becomes valid, for two passes updated in place. A song is valid when any of its artists is.
    """
    valid = {a for names in artists.values() for a in names if artist_bucket(a) >= FIRST_VALID_BUCKET}
    for _ in range(COLLABORATOR_PASSES):
        for names in artists.values():
            if any(a in valid for a in names):
                valid.update(names)
    return {i: "valid" if any(a in valid for a in artists[i]) else "train" for i in song_ids}


def derive_songs(key_repo: Path, mtg_repo: Path) -> list[Song]:
    """The benchmark's songs from the two published repositories (clones or the annotation archives).

    This is the definition of the split; ``datasets/giantsteps_key/songs.csv`` is its committed result.
    """
    mtg = Path(mtg_repo) / "annotations"
    kept = mtg_kept_keys(read_mtg_annotations(mtg / "annotations.txt"))
    split = artist_split(read_beatport_artists(mtg / "beatport_metadata.txt"), kept)
    songs = [Song(i, split[i], label) for i, label in kept.items()]
    for song_id, label in read_gs_keys(Path(key_repo) / "annotations" / "key").items():
        if label is None:
            raise ValueError(f"GiantSteps Key song {song_id}: key file does not hold a single key")
        songs.append(Song(song_id, "test", label))
    return _ordered(songs)


def read_md5_dir(repo: Path) -> dict[str, str]:
    """A repository's ``md5/<id>.LOFI.md5`` files (the md5 of ``<id>.LOFI.mp3``): ``{id: md5}``."""
    return {p.name.split(".")[0]: p.read_text(encoding="ascii").strip().lower()
            for p in sorted(Path(repo, "md5").glob("*.LOFI.md5"))}


# ----------------------------------------------------------------------------------------------------------------
# The committed manifest and checksums


def _ordered(songs: Iterable[Song]) -> list[Song]:
    return sorted(songs, key=lambda s: (SPLITS.index(s.split), int(s.id)))


def write_manifest(songs: Iterable[Song], path: Path = MANIFEST_DIR / "songs.csv") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "split", "key"])
        w.writerows([s.id, s.split, s.key] for s in _ordered(songs))


@functools.lru_cache(maxsize=4)
def read_manifest(path: Path = MANIFEST_DIR / "songs.csv") -> tuple[Song, ...]:
    """The committed songs (id, split, key), validated: known splits and labels, no repeated id."""
    with open(path, newline="", encoding="utf-8") as f:
        songs = tuple(Song(r["id"], r["split"], r["key"]) for r in csv.DictReader(f))
    bad = [s for s in songs if s.split not in SPLITS or s.key not in LABELS]
    if bad or len({s.id for s in songs}) != len(songs):
        raise ValueError(f"{path}: invalid rows {bad[:5]} or repeated ids")
    return songs


def write_md5_table(table: Mapping[tuple[str, str], str], path: Path = MANIFEST_DIR / "md5.csv") -> None:
    code = {repo: c for c, repo in _SET_CODES.items()}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["set", "id", "md5"])
        for (repo, song_id), digest in sorted(table.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
            w.writerow([code[repo], song_id, digest])


@functools.lru_cache(maxsize=4)
def _read_md5_csv(path: Path) -> dict[tuple[str, str], str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {(_SET_CODES[r["set"]], r["id"]): r["md5"] for r in csv.DictReader(f)}


def md5_table() -> dict[tuple[str, str], str]:
    """Published md5 of every preview of both sets (2,090), ``{(repository folder, id): md5}``."""
    return _read_md5_csv(MANIFEST_DIR / "md5.csv")


def audio_path(folder: Path, repo: str, song_id: str) -> Path:
    return folder / repo / "audio" / f"{song_id}.LOFI.mp3"


# ----------------------------------------------------------------------------------------------------------------
# The task


@register_task("giantsteps_key", schema=GiantStepsKeySpec)
class GiantStepsKey(Task):
    """GiantSteps key detection (jukemir / MARBLE GS): 24 keys per song, 923 / 236 / 604 songs, weighted score.

    Tracks are whole 2-min previews; the task config's 30 s windows and the runner's per-track averaging make
    the song prediction the mean over its clips (``task.ensemble=mean_probabilities``), or, with
    ``task.ensemble=marble``, MARBLE v1's four per-song strategies with the test strategy chosen on validation.
    """

    name = "giantsteps_key"
    task_type = "key"
    labels = LABELS
    expected_counts = {"train": 923, "valid": 236, "test": 604}

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        self.ensemble = check_ensemble(self.cfg.get("ensemble", ENSEMBLE_DEFAULT))

    @property
    def kind(self):
        """The ``key`` kind, or its MARBLE ensemble variant (same task type, other evaluator and primary metric)
        with ``task.ensemble=marble``; asked of the key kind, since a task module imports only the registry."""
        kind = super().kind
        return kind.marble_ensemble() if self.ensemble == ENSEMBLE_MARBLE else kind

    def folder(self, data_root: Path) -> Path:
        return Path(data_root) / self.name

    def tracks(self, data_root: Path) -> list[Track]:
        folder = self.folder(data_root)
        if not folder.is_dir():
            raise DatasetMissingError(missing_dataset_message(
                self.name, folder, f"{folder}/\n{LAYOUT}",
                f"{self.fetch_command()}   (or clone both repositories into {folder} and run ./audio_dl.sh in each)"))
        songs = read_manifest()
        check_local_annotations(folder, songs)
        return [Track(s.id, audio_path(folder, s.repo, s.id), s.split, LABELS.index(s.key)) for s in songs]

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        folder = self.folder(data_root)
        return {audio_path(folder, repo, i): ("md5", digest) for (repo, i), digest in md5_table().items()}

    def dataset_identity(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "audio": "GiantSteps LOFI mp3 previews (GitHub packaging, published md5)",
            "annotations": {repo: a["commit"] for repo, a in ANNOTATION_ARCHIVES.items()},
            "split": "jukemir artist-sha1 % 116 (923/236/604 songs)",
            "labels": "24 keys, flat spellings, C..B major then C..B minor",
        }

    def prepare(self, data_root: Path) -> None:
        """Fetch both repositories' annotation archives and all 2,090 previews, md5-checked and resumable.

        Files already present with the right checksum are kept; a failed file is retried from the next mirror,
        and what could not be fetched is listed at the end (after everything else was tried).
        """
        from benchmark.checksums import file_digests
        from benchmark.tasks.download import ChecksumMismatchError, download

        folder = self.folder(data_root)
        folder.mkdir(parents=True, exist_ok=True)
        failed: list[str] = []
        for repo, archive in ANNOTATION_ARCHIVES.items():
            if _annotations_present(folder / repo):
                continue
            zip_path = folder / "downloads" / f"{repo}-{archive['commit']}.zip"
            print(f"{repo}: annotations from {archive['url']}")
            try:
                download(archive["url"], zip_path, ("sha256", archive["sha256"]))
                _merge_archive(zip_path, folder / repo)
            except (OSError, ValueError, ChecksumMismatchError) as exc:
                failed.append(f"{repo} annotations: {exc}; instead run: git clone https://github.com/GiantSteps/"
                              f"{repo} {folder / repo} && git -C {folder / repo} checkout {archive['commit']}")

        table = md5_table()
        present = [audio_path(folder, r, i) for r, i in table if audio_path(folder, r, i).is_file()]
        good = {p for p, d in file_digests(present, "md5").items() if d == table[_key_of(p)]}
        todo = [(r, i) for r, i in table if audio_path(folder, r, i) not in good]
        print(f"{self.name}: {len(table) - len(todo)} of {len(table)} previews present and verified; "
              f"fetching {len(todo)}")
        for n, (repo, song_id) in enumerate(todo, start=1):
            dest = audio_path(folder, repo, song_id)
            errors = []
            for base in AUDIO_MIRRORS[repo]:
                try:
                    print(f"[{n}/{len(todo)}] {base}{dest.name}")
                    download(f"{base}{dest.name}", dest, ("md5", table[(repo, song_id)]))
                    break
                except (OSError, ChecksumMismatchError) as exc:
                    errors.append(f"{base}: {exc}")
            else:
                failed.append(f"{repo}/audio/{dest.name}: " + "; ".join(errors))
        if failed:
            listed = "\n  ".join(failed[:20]) + (f"\n  ... (+{len(failed) - 20} more)" if len(failed) > 20 else "")
            raise RuntimeError(
                f"{self.name}: {len(failed)} item(s) could not be fetched (rerun to resume; runs tolerate up to "
                f"max_missing_fraction of a split):\n  {listed}")
        print(f"{self.name}: complete in {folder}")


def _key_of(path: Path) -> tuple[str, str]:
    return path.parent.parent.name, path.name.split(".")[0]


def _annotations_present(repo_dir: Path) -> bool:
    need = (["annotations/key"] if repo_dir.name == KEY_REPO
            else ["annotations/annotations.txt", "annotations/beatport_metadata.txt"])
    return (repo_dir / "md5").is_dir() and all((repo_dir / n).exists() for n in need)


def _merge_archive(zip_path: Path, repo_dir: Path) -> None:
    """Unpack a GitHub archive (one top folder ``<repo>-<commit>/``) into ``repo_dir`` without replacing any file
    already there (audio fetched earlier, a user's own edits)."""
    from benchmark.tasks.download import extract

    staging = repo_dir.parent / f".extract-{repo_dir.name}"
    shutil.rmtree(staging, ignore_errors=True)
    extract(zip_path, staging)
    tops = [p for p in staging.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise ValueError(f"{zip_path}: expected one top-level folder, found {[p.name for p in tops]}")
    for src in sorted(tops[0].rglob("*")):
        dest = repo_dir / src.relative_to(tops[0])
        if src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
    shutil.rmtree(staging)


def check_local_annotations(folder: Path, songs: Iterable[Song]) -> None:
    """Parse the annotation files of the local copy (where present) and require them to agree with the manifest.

    Per song: a GiantSteps Key file must give the manifest's label; an ``annotations.txt`` row must be kept by
    the confidence/ambiguity rule exactly when the manifest lists the song, with the same label. Partial copies
    are fine (only present files and rows are compared).
    """
    by_id = {s.id: s for s in songs}
    differ: list[str] = []
    key_dir = folder / KEY_REPO / "annotations" / "key"
    if key_dir.is_dir():
        test_ids = [s.id for s in by_id.values() if s.split == "test"]
        for song_id, label in read_gs_keys(key_dir, test_ids).items():
            if label != by_id[song_id].key:
                differ.append(f"{KEY_REPO} {song_id}: local {label}, published {by_id[song_id].key}")
    annotations_txt = folder / MTG_REPO / "annotations" / "annotations.txt"
    if annotations_txt.is_file():
        rows = read_mtg_annotations(annotations_txt)
        kept = mtg_kept_keys(rows)
        for song_id in rows:
            listed = by_id.get(song_id)
            published = listed.key if listed is not None and listed.split != "test" else None
            if kept.get(song_id) != published:
                differ.append(f"{MTG_REPO} {song_id}: local {kept.get(song_id) or 'excluded'}, "
                              f"published {published or 'excluded'}")
    if differ:
        raise ValueError(
            f"giantsteps_key: the annotations in {folder} differ from the published ones this benchmark uses "
            f"(commits {', '.join(a['commit'][:8] for a in ANNOTATION_ARCHIVES.values())}):\n  "
            + "\n  ".join(differ[:10]) + (f"\n  ... (+{len(differ) - 10} more)" if len(differ) > 10 else ""))


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``datasets/giantsteps_key/{songs,md5}.csv`` from clones of the two repositories."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("key_repo", type=Path, help=f"a clone of GiantSteps/{KEY_REPO}")
    parser.add_argument("mtg_repo", type=Path, help=f"a clone of GiantSteps/{MTG_REPO}")
    args = parser.parse_args(argv)
    songs = derive_songs(args.key_repo, args.mtg_repo)
    write_manifest(songs)
    table = {(KEY_REPO, i): d for i, d in read_md5_dir(args.key_repo).items()}
    table.update({(MTG_REPO, i): d for i, d in read_md5_dir(args.mtg_repo).items()})
    write_md5_table(table)
    counts = {s: sum(x.split == s for x in songs) for s in SPLITS}
    print(f"wrote {len(songs)} songs {counts} and {len(table)} md5s to {MANIFEST_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
