"""On-disk feature cache: hidden states of every layer, one memory-mapped float16 file per split.

The cache folder name is a checksum of everything that changes the features (encoder identity, preprocessing,
windowing, pooling and dataset identity), so a second run, another probe or another seed finds the features of
the first and never runs the encoder.

Why shards: extracting a real split takes hours, and one file written at the end would lose all of it to a
``kill -9`` at 95 %. Work is therefore committed in SHARDS of ``shard_tracks`` consecutive tracks (by the
track's position in the task's split list): a shard's rows go to a temporary name, are fsynced and renamed, and
its small index is written last, atomically; an index on disk therefore always describes a complete data file.
A rerun reuses every complete shard whose tracks are still exactly the ones to extract, and computes the rest.
When every shard is present the split is FINALISED: the shards are streamed (bounded memory) into the one
``<split>.f16`` the probes memory-map, the old index is removed before the new data file is renamed into place
and the new index written last, so ``has(split)`` never sees a data file that does not match its index.

Temporary files carry the writer's process id; a later writer deletes those of processes that no longer run and
no reader ever opens them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from benchmark.processes import pid_alive

# 2: rows in canonical (track, window, frame) order, written through shards. Part of every cache key, so a
# cache written by an older layout is never read as if it were current.
CACHE_FORMAT_VERSION = 2
SHARD_FORMAT_VERSION = 1
COPY_CHUNK_BYTES = 64 << 20  # finalisation copies shards in chunks of this size: memory stays bounded


def config_checksum(fields: dict[str, Any]) -> str:
    """Stable short checksum of a JSON-serialisable mapping (key order does not matter)."""
    blob = json.dumps(fields, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a power cut after it must not resurrect the old name)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str, durable: bool = False) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so readers never see a partial file.

    ``durable=True`` also fsyncs the file before the rename and the folder after it (cache indices use it: an
    index must never survive a crash that its data did not).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete ``*.tmp<pid>`` files (and ``*.part<pid>``) of processes that no longer run; return them.

    Temporary names are never read, so this is only about disk space; files of a live process (another run
    extracting into the same cache) are left alone.
    """
    removed = []
    if not folder.exists():
        return removed
    for p in folder.rglob("*"):
        for marker in (".tmp", ".part"):
            head, sep, pid = p.name.rpartition(marker)
            if sep and pid.isdigit() and head and not pid_alive(int(pid)) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
                break
    return removed


@dataclass
class SplitFeatures:
    """Features of one split.

    Attributes:
        features: ``[rows, hidden_states, dim]`` float16, memory-mapped (rows = windows, or frames).
        window_track: ``[rows]`` index into ``track_ids`` of the track each row belongs to.
        track_ids: the split's track ids, in task order (a track whose audio could not be decoded has no row).
    """

    features: np.ndarray
    window_track: np.ndarray
    track_ids: list[str]


def track_list_checksum(track_keys: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(track_keys).encode()).hexdigest()[:16]


def file_stamp(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (``None`` if absent): a file that failed to decode is retried once this
    changes, i.e. once it was replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


@dataclass
class ShardResult:
    """What one shard holds, as recorded in its index.

    ``keys``: the track keys (``id|offset|duration``) the shard was asked for, in order; ``rows_per_track``: rows
    of each (0 for a failed track); ``windows``: ``[key position, window, rows]`` per window in row order;
    ``failed``: key -> {"reason", "path", "stamp"}; ``flagged``: flag name -> keys.
    """

    keys: list[str]
    windows: list[list[int]]
    failed: dict[str, dict[str, Any]]
    flagged: dict[str, list[str]]
    forward_calls: int
    rows: int


class FeatureCache:
    """The cache folder of one (encoder, preprocessing, dataset) combination."""

    def __init__(self, root: Path, key_fields: dict[str, Any]) -> None:
        self.key_fields = {"format": CACHE_FORMAT_VERSION, **key_fields}
        self.key = config_checksum(self.key_fields)
        self.dir = Path(root) / "features" / self.key

    def _paths(self, split: str) -> tuple[Path, Path]:
        return self.dir / f"{split}.f16", self.dir / f"{split}.index.json"

    def has(self, split: str, tracks_checksum: str) -> bool:
        """True when ``split`` was completely extracted for exactly this list of tracks and no file that failed
        to decode has been replaced since (a replaced file is extracted again)."""
        data, index = self._paths(split)
        if not (data.exists() and index.exists()):
            return False
        meta = json.loads(index.read_text())
        if meta.get("tracks_checksum") != tracks_checksum:
            return False
        return all(file_stamp(Path(f["path"])) == f["stamp"] for f in meta.get("failed", {}).values())

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
        """The index of a complete split: shape, track ids, failed and flagged tracks, and what the extraction
        recorded (frame-level caches list every window's track, position and row count under ``windows``)."""
        return json.loads(self._paths(split)[1].read_text())

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file()) if self.dir.exists() else 0

    def prepare(self) -> None:
        """Create the folder, record what the key covers, and delete temporaries of dead writers."""
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / "key.json", json.dumps(self.key_fields, indent=2, sort_keys=True, default=str))
        remove_stale_temporaries(self.dir)

    # ------------------------------------------------------------------------------------------ shards
    def shard_dir(self, split: str, shard_tracks: int) -> Path:
        return self.dir / "shards" / f"{split}-n{int(shard_tracks)}"

    def _shard_paths(self, split: str, shard_tracks: int, shard: int) -> tuple[Path, Path]:
        d = self.shard_dir(split, shard_tracks)
        return d / f"{shard:06d}.f16", d / f"{shard:06d}.json"

    def complete_shard(self, split: str, shard_tracks: int, shard: int, row_shape: tuple[int, int],
                       keys: list[str]) -> ShardResult | None:
        """The shard's result when it is complete and covers exactly ``keys`` (the tracks to extract now, some
        of which may have failed then; a failed file that was replaced since makes the shard stale)."""
        data, index = self._shard_paths(split, shard_tracks, shard)
        if not index.exists():
            return None
        try:
            meta = json.loads(index.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if (meta.get("format") != SHARD_FORMAT_VERSION or meta.get("row_shape") != list(row_shape)
                or not data.exists() or data.stat().st_size != meta["rows"] * int(np.prod(row_shape)) * 2):
            return None
        failed = meta["failed"]
        if [k for k in meta["keys"] if k not in failed] != [k for k in keys if k not in failed]:
            return None  # other tracks than now (a track was added back, or the list changed)
        if any(file_stamp(Path(f["path"])) != f["stamp"] for k, f in failed.items() if k in keys):
            return None  # a file that failed was replaced: extract the shard again
        return ShardResult(keys=meta["keys"], windows=meta["windows"], failed=failed, flagged=meta["flagged"],
                           forward_calls=int(meta.get("forward_calls", 0)), rows=int(meta["rows"]))

    def shard_writer(self, split: str, shard_tracks: int, shard: int, row_shape: tuple[int, int]) -> "ShardWriter":
        data, index = self._shard_paths(split, shard_tracks, shard)
        data.parent.mkdir(parents=True, exist_ok=True)
        return ShardWriter(data, index, row_shape)

    def finalise(self, split: str, shard_tracks: int, shards: list[tuple[int, ShardResult]], track_ids: list[str],
                 track_keys: list[str], tracks_checksum: str, row_shape: tuple[int, int],
                 extra: dict[str, Any] | None = None, keep_shards: bool = False) -> None:
        """Merge complete shards (in shard order) into the split's single file and index; rows keep the
        shards' canonical order (track, window, frame). Shards are deleted afterwards unless ``keep_shards``
        (the extractor keeps them while a track failed, so that replacing that file costs one shard)."""
        data, index = self._paths(split)
        position = {k: i for i, k in enumerate(track_keys)}
        tmp = data.with_name(data.name + f".tmp{os.getpid()}")
        window_track: list[int] = []
        windows: list[list[int]] = []
        failed: dict[str, dict[str, Any]] = {}
        flagged: dict[str, list[str]] = {}
        rows = 0
        try:
            with open(tmp, "wb") as out:
                for shard, result in shards:
                    src, _ = self._shard_paths(split, shard_tracks, shard)
                    with open(src, "rb") as f:
                        shutil.copyfileobj(f, out, COPY_CHUNK_BYTES)
                    for local, w, n in result.windows:
                        t = position[result.keys[local]]
                        window_track.extend([t] * n)
                        windows.append([t, w, n])
                    rows += result.rows
                    for k, f in result.failed.items():
                        if k in position:
                            failed[track_ids[position[k]]] = f
                    for name, ks in result.flagged.items():
                        flagged.setdefault(name, []).extend(track_ids[position[k]] for k in ks if k in position)
                out.flush()
                os.fsync(out.fileno())
            index.unlink(missing_ok=True)  # the split is incomplete from here until the new index exists
            os.replace(tmp, data)
            _fsync_dir(data.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        meta = {
            "shape": [rows, *row_shape],
            "dtype": "float16",
            "track_ids": track_ids,
            "tracks_checksum": tracks_checksum,
            "window_track": window_track,
            "failed": failed,
            "flagged": flagged,
            "shard_tracks": int(shard_tracks),
            **(extra or {}),
        }
        if extra and extra.get("frame_level"):
            meta["windows"] = windows
        atomic_write_text(index, json.dumps(meta), durable=True)
        if not keep_shards:
            shutil.rmtree(self.shard_dir(split, shard_tracks), ignore_errors=True)
            try:
                self.shard_dir(split, shard_tracks).parent.rmdir()  # only when no other split has shards
            except OSError:
                pass


class ShardWriter:
    """Collects one shard's rows in batch order (on disk), then commits them in canonical order.

    Batches finish in an order set by window lengths, not by tracks; :meth:`commit` rewrites the rows sorted by
    (track, window) -- frames stay in time order inside their window -- so the shard's bytes depend only on
    its tracks' features, and fsyncs, renames and writes the index last.
    """

    def __init__(self, data_path: Path, index_path: Path, row_shape: tuple[int, int]) -> None:
        self.data_path, self.index_path, self.row_shape = data_path, index_path, tuple(row_shape)
        self.part_path = data_path.with_name(data_path.name + f".part{os.getpid()}")
        self.tmp_path = data_path.with_name(data_path.name + f".tmp{os.getpid()}")
        self.entries: list[tuple[int, int, int]] = []  # (key position, window, rows) in write order
        self._file = open(self.part_path, "wb")

    def append(self, rows: np.ndarray, key_positions: Iterable[int], window_indices: Iterable[int],
               counts: Iterable[int]) -> None:
        """Append the rows ``[n, hidden_states, dim]`` of a batch: per window its track, position and rows."""
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"feature rows have shape {rows.shape[1:]}, expected {self.row_shape}")
        self._file.write(np.ascontiguousarray(rows, dtype=np.float16).tobytes())
        self.entries.extend((int(t), int(w), int(n)) for t, w, n in zip(key_positions, window_indices, counts))

    def commit(self, keys: list[str], failed: dict[str, dict[str, Any]], flagged: dict[str, list[str]],
               forward_calls: int) -> ShardResult:
        self._file.close()
        row_bytes = int(np.prod(self.row_shape)) * 2
        starts = np.cumsum([0] + [n for _, _, n in self.entries])
        order = sorted(range(len(self.entries)), key=lambda i: self.entries[i][:2])
        try:
            with open(self.part_path, "rb") as src, open(self.tmp_path, "wb") as out:
                for i in order:
                    src.seek(int(starts[i]) * row_bytes)
                    out.write(src.read(self.entries[i][2] * row_bytes))
                out.flush()
                os.fsync(out.fileno())
            os.replace(self.tmp_path, self.data_path)
        finally:
            self.part_path.unlink(missing_ok=True)
            self.tmp_path.unlink(missing_ok=True)
        windows = [list(self.entries[i]) for i in order]
        rows = int(starts[-1])
        meta = {"format": SHARD_FORMAT_VERSION, "row_shape": list(self.row_shape), "rows": rows, "keys": keys,
                "windows": windows, "failed": failed, "flagged": flagged, "forward_calls": int(forward_calls)}
        atomic_write_text(self.index_path, json.dumps(meta), durable=True)
        return ShardResult(keys=keys, windows=windows, failed=failed, flagged=flagged, forward_calls=forward_calls,
                           rows=rows)

    def abort(self) -> None:
        self._file.close()
        self.part_path.unlink(missing_ok=True)
        self.tmp_path.unlink(missing_ok=True)
