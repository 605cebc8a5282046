"""Lee's MagnaTagATune split files (pickles from the internet) read safely, and cross-checked with our manifest.

Why: the ``*_list_pub.cP`` files are Python-2 pickles; loading them with ``pickle.load`` would run any callable a
tampered copy names. tasks/safe_pickle.py reads them without executing anything, and this file proves both halves:
the real files load (with the counts refdata/magnatagatune/PROVENANCE.md gives) and a malicious pickle is refused
before it runs.
The cross-check then ties our committed split (datasets/mtt/clips.csv, jukemir / MARBLE v1) to Lee's: valid and
test are the same clips once the tag-less ones are dropped, and train differs by exactly clips 29, 11268, 11269.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import benchmark.tasks.mtt as mtt
import benchmark.tasks.safe_pickle as safe_pickle
from benchmark.tasks.safe_pickle import UnsafePickleError, load_pickled_list
from tests.conftest import REFDATA

LEE = REFDATA / "magnatagatune" / "jongpillee_MTAT_split"
JUKEMIR_META = REFDATA / "jukemir" / "metadata" / "magnatagatune.json.gz"
LEE_COUNTS = {"train": 15_244, "valid": 1_529, "test": 4_332}
# Clips in jukemir's train with tags but not in Lee's (American Bach Soloists, BWV 18; see
# tests/fixtures/refdata/magnatagatune/PROVENANCE.md).
ONLY_IN_OURS_TRAIN = {"29", "11268", "11269"}


def lee_mp3_paths(split: str) -> list[str]:
    """Lee's list for ``split`` as MTT ``mp3_path``s (his entries name ``.npy`` feature files)."""
    entries = load_pickled_list(LEE / f"{split}_list_pub.cP")
    assert all(e.endswith(".npy") for e in entries)
    return [e[: -len(".npy")] + ".mp3" for e in entries]


# --- the safe reader ---------------------------------------------------------------------------------------------
class _RunsCommand:
    """Pickles as a call to os.system: what a tampered split file would contain."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_a_pickle_that_would_run_a_command_is_refused_without_running_it(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "train_list_pub.cP"
    path.write_bytes(pickle.dumps(["0/a.npy", _RunsCommand(f"touch {marker}")], protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"opcode (GLOBAL|STACK_GLOBAL) at byte \d+ is not allowed"):
        load_pickled_list(path)
    assert not marker.exists()
    # the payload is real: a plain pickle.load would have run it
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_find_class_refuses_even_when_the_opcode_screen_is_off(tmp_path: Path, monkeypatch) -> None:
    """Two independent guards: with the opcode allow-list disabled, find_class still blocks the import."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.cP"
    path.write_bytes(pickle.dumps([_RunsCommand(f"touch {marker}")], protocol=0))
    everything = frozenset(op.name for op in __import__("pickletools").opcodes)
    monkeypatch.setattr(safe_pickle, "ALLOWED_OPCODES", everything)
    with pytest.raises(UnsafePickleError, match="refusing to import (posix|os|nt).system"):
        load_pickled_list(path)
    assert not marker.exists()


@pytest.mark.parametrize("value,match", [
    ({"a": "b"}, "opcode EMPTY_DICT"),
    (["a", 3], "opcode BININT1"),
    (["a", ["b"]], "item 1 is a list"),
    ("just a string", "holds a str"),
])
def test_only_lists_of_strings_are_accepted(tmp_path: Path, value, match: str) -> None:
    path = tmp_path / "x.cP"
    path.write_bytes(pickle.dumps(value, protocol=2))
    with pytest.raises(UnsafePickleError, match=match):
        load_pickled_list(path)


def test_strings_bytes_and_tuples_load(tmp_path: Path) -> None:
    for protocol in (0, 2, 3, 5):
        path = tmp_path / f"p{protocol}.cP"
        path.write_bytes(pickle.dumps(("c/a.npy", "d/b.npy"), protocol=protocol))
        assert load_pickled_list(path) == ["c/a.npy", "d/b.npy"]
    path = tmp_path / "bytes.cP"
    path.write_bytes(pickle.dumps([b"c/a.npy", "d/caf\u00e9.npy"], protocol=3))
    assert load_pickled_list(path) == ["c/a.npy", "d/caf\u00e9.npy"]
    py2 = tmp_path / "py2.cP"  # a Python-2 cPickle protocol-0 list of str, as Lee's files are written
    py2.write_bytes(b"(lp1\nS'c/a.npy'\np2\naS'd/b.npy'\np3\na.")
    assert load_pickled_list(py2) == ["c/a.npy", "d/b.npy"]


def test_a_truncated_pickle_is_an_unpickling_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.cP"
    path.write_bytes(pickle.dumps(["c/a.npy", "d/b.npy"], protocol=0)[:-5])
    with pytest.raises(pickle.UnpicklingError):
        load_pickled_list(path)


# --- Lee's real files --------------------------------------------------------------------------------------------
def test_lee_split_files_load_with_the_published_counts() -> None:
    folder_of = {"train": "0123456789ab", "valid": "c", "test": "def"}
    seen: set[str] = set()
    for split, count in LEE_COUNTS.items():
        raw = (LEE / f"{split}_list_pub.cP").read_bytes()
        assert raw.startswith(b"(lp1\nS'")  # protocol 0, a list of Python-2 str, as PROVENANCE.md describes
        paths = lee_mp3_paths(split)
        assert len(paths) == count and len(set(paths)) == count
        assert {p[0] for p in paths} <= set(folder_of[split]) and all(p[1] == "/" for p in paths)
        assert not seen & set(paths)
        seen |= set(paths)


def test_lee_valid_and_test_equal_our_manifest_without_the_tagless_clips() -> None:
    with gzip.open(JUKEMIR_META, "rt", encoding="utf-8") as f:
        meta = json.load(f)
    tagless = {str(int(k)) for k, r in meta.items() if r.get("split") and not r["y"]}
    ours: dict[str, dict[str, str]] = {s: {} for s in LEE_COUNTS}
    for clip in mtt.read_manifest():
        ours[clip.split][clip.mp3_path] = clip.clip_id
    assert {s: len(v) for s, v in ours.items()} == {"train": 18_706, "valid": 1_825, "test": 5_329}

    for split in ("valid", "test"):
        lee = set(lee_mp3_paths(split))
        tagged = {p for p, cid in ours[split].items() if cid not in tagless}
        assert lee == tagged, split
    lee_train = set(lee_mp3_paths("train"))
    assert lee_train <= set(ours["train"])
    missing = {ours["train"][p] for p in set(ours["train"]) - lee_train}
    assert missing - tagless == ONLY_IN_OURS_TRAIN
    assert Counter(ours["train"][p] in tagless for p in lee_train) == Counter({False: 15_244})
    for clip_id in ONLY_IN_OURS_TRAIN:
        assert "bwv_18" in meta[f"{int(clip_id):05d}"]["extra"]["mp3_path"]


def test_lee_labels_and_tag_list_agree_with_ours() -> None:
    """Same 50 tags (Lee writes camelCase); the orders differ only at the 505-positive tie (columns 47/48)."""
    def spaced(tag: str) -> str:
        return re.sub(r"(?<=[a-z])([A-Z])", lambda m: " " + m.group(1).lower(), tag)

    lee_tags = [spaced(t) for t in (LEE / "top50_tags.txt").read_text().split()]
    ours = mtt.read_tag_list()
    assert set(lee_tags) == set(ours)
    assert [i for i, (a, b) in enumerate(zip(lee_tags, ours)) if a != b] == [47, 48]
    with gzip.open(JUKEMIR_META, "rt", encoding="utf-8") as f:
        y_by_path = {r["extra"]["mp3_path"]: set(r["y"]) for r in json.load(f).values() if r.get("split")}
    for split in ("valid", "test"):
        y = np.load(LEE / f"y_{split}_pub.npy", allow_pickle=False)
        paths = lee_mp3_paths(split)
        assert y.shape == (LEE_COUNTS[split], 50)
        expected = np.array([[tag in y_by_path[p] for tag in lee_tags] for p in paths], dtype=np.float64)
        assert np.array_equal(y, expected), split
