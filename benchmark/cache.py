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

Why checksums: a cache is reused for weeks by many runs, so what it returns must be what was written. Every shard
and every split's data file carries the sha256 of its bytes in its index, written with the data; a split is
verified in full (about 2 GB/s on one core) the first time a process reads it, a shard before it is reused. An
index that cannot be read, a data file of the wrong size or with other bytes is a missing split: it is extracted
again after a one-line warning naming the entry. Which audio a cached track came from is part of its key
(``size:mtime_ns`` of the file), so audio replaced behind a cached entry is extracted again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from benchmark.errors import UserError, storage_error_message
from benchmark.processes import dead_writers_temporary

log = logging.getLogger(__name__)

# 2: rows in canonical (track, window, frame) order, written through shards. Part of every cache key, so a
# cache written by an older layout is never read as if it were current.
CACHE_FORMAT_VERSION = 2
SHARD_FORMAT_VERSION = 2  # 2: the index holds the shard's sha256
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
        if dead_writers_temporary(p, (".tmp", ".part")):
            p.unlink(missing_ok=True)
            removed.append(p)
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


_VERIFIED: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> sha256, per process


def stream_sha256(path: Path) -> str:
    """sha256 of a file read in bounded chunks (a split's data file can be many GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(COPY_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_sha256(path: Path) -> str:
    """:func:`stream_sha256`, computed once per process for a file that has not changed since (several checks
    of the same split in one run, e.g. before and after taking its lock, read it once)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _VERIFIED:
        _VERIFIED[key] = stream_sha256(path)
    return _VERIFIED[key]


class CacheSpaceError(UserError):
    """The feature cache's disk is full (or over quota, read-only, not writable): which folder, and the fix."""


def storage_failure(exc: OSError, path: Path, needed_bytes: int | None = None) -> UserError | None:
    """The suite's one-paragraph storage message (:func:`benchmark.errors.storage_error_message`: the folder, its
    free space and the space still needed) for a cache write to ``path`` that failed; None for other errors.

    A failed ``write()`` carries no file name, so the cache names the file it was writing itself."""
    named = OSError(exc.errno, exc.strerror, os.fspath(exc.filename or path))
    message = storage_error_message(named, needed_bytes)
    return None if message is None else CacheSpaceError(f"feature cache: {message}")


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
    sha256: str = ""


class FeatureCache:
    """The cache folder of one (encoder, preprocessing, dataset) combination."""

    def __init__(self, root: Path, key_fields: dict[str, Any]) -> None:
        self.key_fields = {"format": CACHE_FORMAT_VERSION, **key_fields}
        self.key = config_checksum(self.key_fields)
        self.dir = Path(root) / "features" / self.key

    def _paths(self, split: str) -> tuple[Path, Path]:
        return self.dir / f"{split}.f16", self.dir / f"{split}.index.json"

    def has(self, split: str, tracks_checksum: str) -> bool:
        """True when ``split`` was completely extracted for exactly this list of tracks (their audio files'
        stamps included), its data file holds the bytes its index describes, and no file that failed to decode
        has been replaced since (a replaced file is extracted again).

        A damaged entry (unreadable index, data of the wrong size or checksum) is reported in one warning and
        removed, so the caller extracts the split again instead of training on it.
        """
        _, index = self._paths(split)
        if not index.exists():
            return False
        meta = self._read_index(split)
        if meta is None or meta.get("tracks_checksum") != tracks_checksum:
            return False
        if not all(file_stamp(Path(f["path"])) == f["stamp"] for f in meta.get("failed", {}).values()):
            return False
        problem = self._data_problem(self._paths(split)[0], meta)
        if problem is not None:
            self._discard(split, problem)
            return False
        return True

    def _read_index(self, split: str) -> dict[str, Any] | None:
        """The split's index, or None (after a warning, and with the entry removed) when it cannot be used."""
        _, index = self._paths(split)
        try:
            meta = json.loads(index.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._discard(split, f"its index cannot be read ({type(exc).__name__}: {exc})")
            return None
        required = {"shape": list, "track_ids": list, "window_track": list, "tracks_checksum": str}
        wrong = [k for k, kind in required.items() if not isinstance(meta, dict) or not isinstance(meta.get(k), kind)]
        if wrong:
            self._discard(split, f"its index lacks {', '.join(wrong)} (written by an older suite, or damaged)")
            return None
        return meta

    def _data_problem(self, data: Path, meta: dict[str, Any]) -> str | None:
        """Why the data file does not hold what ``meta`` says (size, then sha256), or None when it does."""
        try:
            expected = int(np.prod([int(n) for n in meta["shape"]])) * 2
            size = data.stat().st_size
        except (OSError, TypeError, ValueError):
            return "its data file is missing, or its index has no valid shape"
        if size != expected:
            return f"its data file has {size} bytes where the index describes {expected}"
        if "data_sha256" not in meta:
            return "its index has no checksum (written by an older version of the suite)"
        if verified_sha256(data) != meta["data_sha256"]:
            return "its data file's checksum differs from the one written with it (the file was changed)"
        return None

    def _discard(self, split: str, reason: str) -> None:
        """Warn and remove a split's unusable index and data, so that it is extracted again from the audio."""
        data, index = self._paths(split)
        log.warning("feature cache %s, split %s: %s; extracting it again", self.dir, split, reason)
        index.unlink(missing_ok=True)
        data.unlink(missing_ok=True)

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

    def tidy(self, split: str) -> None:
        """Remove what a complete split no longer needs: its shards (unless a track failed: that shard is kept so
        that replacing the file costs one shard) and temporaries of dead writers. A process killed between
        writing a split's index and deleting its shards leaves them behind; the next run that reads the split
        removes them here."""
        meta = self._read_index(split)
        if meta is None or meta.get("failed"):
            return
        shards = self.dir / "shards"
        for folder in sorted(shards.glob(f"{split}-n*")) if shards.is_dir() else []:
            shutil.rmtree(folder, ignore_errors=True)
        try:
            shards.rmdir()
        except OSError:
            pass
        remove_stale_temporaries(self.dir)

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
        if meta.get("sha256") != verified_sha256(data):
            log.warning("feature cache %s: shard %s of split %s does not hold the bytes written with it; "
                        "extracting it again", self.dir, shard, split)
            return None
        if any(file_stamp(Path(f["path"])) != f["stamp"] for k, f in failed.items() if k in keys):
            return None  # a file that failed was replaced: extract the shard again
        return ShardResult(keys=meta["keys"], windows=meta["windows"], failed=failed, flagged=meta["flagged"],
                           forward_calls=int(meta.get("forward_calls", 0)), rows=int(meta["rows"]),
                           sha256=meta["sha256"])

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
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for shard, result in shards:
                    src, _ = self._shard_paths(split, shard_tracks, shard)
                    shard_digest = hashlib.sha256()
                    with open(src, "rb") as f:
                        for chunk in iter(lambda: f.read(COPY_CHUNK_BYTES), b""):
                            shard_digest.update(chunk)
                            digest.update(chunk)
                            out.write(chunk)
                    if shard_digest.hexdigest() != result.sha256:
                        raise RuntimeError(f"feature cache {self.dir}: shard {shard} of split {split} changed between "
                                           "its commit and the merge; run the same command again to extract it anew")
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
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            failure = storage_failure(exc, tmp, rows * int(np.prod(row_shape)) * 2) \
                if isinstance(exc, OSError) else None
            if failure is not None:
                raise failure from exc
            raise
        meta = {
            "shape": [rows, *row_shape],
            "dtype": "float16",
            "data_sha256": digest.hexdigest(),
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
        try:
            self._file.write(np.ascontiguousarray(rows, dtype=np.float16).tobytes())
        except OSError as exc:
            self._raise_storage(exc, len(rows))
        self.entries.extend((int(t), int(w), int(n)) for t, w, n in zip(key_positions, window_indices, counts))

    def _raise_storage(self, exc: OSError, rows: int) -> None:
        failure = storage_failure(exc, self.data_path, rows * int(np.prod(self.row_shape)) * 2)
        if failure is None:
            raise exc
        raise failure from exc

    def commit(self, keys: list[str], failed: dict[str, dict[str, Any]], flagged: dict[str, list[str]],
               forward_calls: int, drop: Iterable[int] = ()) -> ShardResult:
        """Write the rows in canonical order, leaving out the windows of the key positions in ``drop`` (tracks
        refused after some of their rows were appended, e.g. for non-finite features), then the index."""
        self._file.close()
        row_bytes = int(np.prod(self.row_shape)) * 2
        starts = np.cumsum([0] + [n for _, _, n in self.entries])
        dropped = set(drop)
        order = sorted((i for i in range(len(self.entries)) if self.entries[i][0] not in dropped),
                       key=lambda i: self.entries[i][:2])
        digest = hashlib.sha256()
        try:
            with open(self.part_path, "rb") as src, open(self.tmp_path, "wb") as out:
                for i in order:
                    src.seek(int(starts[i]) * row_bytes)
                    chunk = src.read(self.entries[i][2] * row_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(self.tmp_path, self.data_path)
        except OSError as exc:
            self._raise_storage(exc, int(starts[-1]))
        finally:
            self.part_path.unlink(missing_ok=True)
            self.tmp_path.unlink(missing_ok=True)
        windows = [list(self.entries[i]) for i in order]
        rows = sum(self.entries[i][2] for i in order)
        meta = {"format": SHARD_FORMAT_VERSION, "row_shape": list(self.row_shape), "rows": rows, "keys": keys,
                "windows": windows, "failed": failed, "flagged": flagged, "forward_calls": int(forward_calls),
                "sha256": digest.hexdigest()}
        try:
            atomic_write_text(self.index_path, json.dumps(meta), durable=True)
        except OSError as exc:
            self._raise_storage(exc, 0)
        return ShardResult(keys=keys, windows=windows, failed=failed, flagged=flagged, forward_calls=forward_calls,
                           rows=rows, sha256=digest.hexdigest())

    def abort(self) -> None:
        self._file.close()
        self.part_path.unlink(missing_ok=True)
        self.tmp_path.unlink(missing_ok=True)
