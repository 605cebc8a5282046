"""File checksums, computed once per file version and remembered in a sidecar JSON.

Weight files (1.3 GB) and datasets (thousands of files checked before every run) are hashed once: the sidecar
is keyed by (algorithm, real path, size, mtime), so a replaced file is hashed again. A sidecar that cannot be read
or written only costs a re-hash, never an error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

_HEX = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}
_MEMO: dict[str, str] = {}


def sidecar_path() -> Path:
    """Where digests are remembered (``BENCHMARK_HASH_CACHE`` overrides)."""
    if os.environ.get("BENCHMARK_HASH_CACHE"):
        return Path(os.environ["BENCHMARK_HASH_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mir-probe-benchmark" / "sha256.json"


def _key(path: Path, algorithm: str) -> str:
    stat = path.stat()
    prefix = "" if algorithm == "sha256" else f"{algorithm}|"  # sha256 keys keep their original spelling
    return f"{prefix}{path}|{stat.st_size}|{stat.st_mtime_ns}"


def hash_file(path: Path, algorithm: str) -> str:
    """Digest of a file read in 4 MiB blocks, not remembered (for files that are still changing)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(paths: Iterable[str | os.PathLike[str]], algorithm: str = "sha256") -> dict[Path, str]:
    """Digest of every file in ``paths`` (keys are the paths as given); the sidecar is read and written once."""
    if algorithm not in _HEX:
        raise ValueError(f"unsupported checksum algorithm {algorithm!r}; use one of {sorted(_HEX)}")
    sidecar = sidecar_path()
    table: dict[str, str] | None = None
    changed = False
    result: dict[Path, str] = {}
    for given in paths:
        real = Path(given).resolve()
        key = _key(real, algorithm)
        digest = _MEMO.get(key)
        if digest is None:
            if table is None:
                try:
                    loaded = json.loads(sidecar.read_text())
                    table = loaded if isinstance(loaded, dict) else {}
                except (OSError, ValueError):
                    table = {}
            digest = table.get(key)
            if not (isinstance(digest, str) and _HEX[algorithm].fullmatch(digest)):
                digest = hash_file(real, algorithm)
                table[key] = digest
                changed = True
            _MEMO[key] = digest
        result[Path(given)] = digest
    if changed and table is not None:
        try:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".digests-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(table, f, indent=0, sort_keys=True)
            os.replace(tmp, sidecar)
        except OSError as exc:
            log.debug("could not write the hash sidecar %s: %s", sidecar, exc)
    return result


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of one file (remembered; see :func:`file_digests`)."""
    return file_digests([path], "sha256")[Path(path)]


def file_md5(path: str | os.PathLike[str]) -> str:
    """MD5 of one file, the checksum GTZAN and GiantSteps publish (remembered; see :func:`file_digests`)."""
    return file_digests([path], "md5")[Path(path)]
