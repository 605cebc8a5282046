"""On-disk feature cache: pooled hidden states of every layer, one memory-mapped float16 file per split.

The cache folder name is a checksum of everything that changes the features (encoder identity, preprocessing,
windowing, pooling and dataset identity), so a second run, another probe or another seed finds the features of
the first and never runs the encoder. A split is written to a temporary name while it streams in and renamed
when complete; its index (written last) marks it complete, so an interrupted extraction leaves nothing that a
later run could mistake for finished work.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

CACHE_FORMAT_VERSION = 1


def config_checksum(fields: dict[str, Any]) -> str:
    """Stable short checksum of a JSON-serialisable mapping (key order does not matter)."""
    blob = json.dumps(fields, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class SplitFeatures:
    """Pooled features of one split.

    Attributes:
        features: ``[windows, hidden_states, dim]`` float16, memory-mapped.
        window_track: ``[windows]`` index into ``track_ids`` of the track each window belongs to.
        track_ids: the split's track ids, in task order.
    """

    features: np.ndarray
    window_track: np.ndarray
    track_ids: list[str]


def track_list_checksum(track_keys: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(track_keys).encode()).hexdigest()[:16]


class FeatureCache:
    """The cache folder of one (encoder, preprocessing, dataset) combination."""

    def __init__(self, root: Path, key_fields: dict[str, Any]) -> None:
        self.key_fields = {"format": CACHE_FORMAT_VERSION, **key_fields}
        self.key = config_checksum(self.key_fields)
        self.dir = Path(root) / "features" / self.key

    def _paths(self, split: str) -> tuple[Path, Path]:
        return self.dir / f"{split}.f16", self.dir / f"{split}.index.json"

    def has(self, split: str, tracks_checksum: str) -> bool:
        """True when ``split`` was completely extracted for exactly this list of tracks."""
        data, index = self._paths(split)
        if not (data.exists() and index.exists()):
            return False
        meta = json.loads(index.read_text())
        return meta.get("tracks_checksum") == tracks_checksum

    def load(self, split: str) -> SplitFeatures:
        data, index = self._paths(split)
        meta = json.loads(index.read_text())
        shape = tuple(meta["shape"])
        features = np.memmap(data, dtype=np.float16, mode="r", shape=shape) if shape[0] else np.zeros(shape, np.float16)
        return SplitFeatures(
            features=features,
            window_track=np.asarray(meta["window_track"], dtype=np.int64),
            track_ids=list(meta["track_ids"]),
        )

    def index(self, split: str) -> dict[str, Any]:
        """The index of a complete split: shape, track ids, and what the extraction recorded (e.g. frame-level
        caches list every window's track, position and row count under ``windows``)."""
        return json.loads(self._paths(split)[1].read_text())

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("*") if p.is_file()) if self.dir.exists() else 0

    def writer(self, split: str, num_states: int, dim: int) -> "SplitWriter":
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / "key.json", json.dumps(self.key_fields, indent=2, sort_keys=True, default=str))
        data, index = self._paths(split)
        return SplitWriter(data, index, num_states, dim)


class SplitWriter:
    """Streams rows of ``[hidden_states, dim]`` float16 to disk; memory does not grow with the split."""

    def __init__(self, data_path: Path, index_path: Path, num_states: int, dim: int) -> None:
        self.data_path, self.index_path = data_path, index_path
        self.tmp_path = data_path.with_name(data_path.name + f".tmp{os.getpid()}")
        self.row_shape = (num_states, dim)
        self.window_track: list[int] = []
        self._file = open(self.tmp_path, "wb")

    def append(self, rows: np.ndarray, track_indices: Iterable[int]) -> None:
        """Append ``rows`` ``[n, hidden_states, dim]`` belonging to the given track indices."""
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"feature rows have shape {rows.shape[1:]}, expected {self.row_shape}")
        self._file.write(np.ascontiguousarray(rows, dtype=np.float16).tobytes())
        self.window_track.extend(int(i) for i in track_indices)

    def finish(self, track_ids: list[str], tracks_checksum: str, extra: dict[str, Any] | None = None) -> None:
        """Close the data file, move it into place, then write the index that marks the split complete."""
        self._file.close()
        os.replace(self.tmp_path, self.data_path)
        meta = {
            "shape": [len(self.window_track), *self.row_shape],
            "dtype": "float16",
            "track_ids": track_ids,
            "tracks_checksum": tracks_checksum,
            "window_track": self.window_track,
            **(extra or {}),
        }
        atomic_write_text(self.index_path, json.dumps(meta))

    def abort(self) -> None:
        self._file.close()
        self.tmp_path.unlink(missing_ok=True)
