"""Fetching dataset files: resumable HTTP downloads checked against published checksums, with a progress bar.

Used by ``python -m benchmark prepare <task>`` for sources that are public. A download goes to ``<name>.part``
(resumed with an HTTP Range request when interrupted) and is moved into place only after its checksum matched,
so a corrupted or truncated file never replaces a good one.
"""
from __future__ import annotations

import os
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from benchmark.checksums import hash_file

CHUNK = 1 << 20


class ChecksumMismatchError(RuntimeError):
    """A downloaded file does not match its published checksum (the previous file, if any, is kept)."""


def download(url: str, dest: Path, checksum: tuple[str, str] | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` already exists with the right checksum.

    Args:
        checksum: ``(algorithm, hex digest)``, e.g. ``("md5", "...")``; verified before ``dest`` is written.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    dest = Path(dest)
    if dest.is_file() and (checksum is None or hash_file(dest, checksum[0]) == checksum[1].lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if done and getattr(response, "status", None) != 206:  # the server ignored the range: start again
            done = 0
        length = getattr(response, "length", None)  # file:// responses (mirrors, tests) have no length
        total = length + done if length is not None else None
        with open(part, "ab" if done else "wb") as out, Progress(
            TextColumn(dest.name), BarColumn(), DownloadColumn(), TransferSpeedColumn()) as bar:
            job = bar.add_task("download", total=total, completed=done)
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.advance(job, len(block))
    if checksum is not None:
        got = hash_file(part, checksum[0])
        if got != checksum[1].lower():
            bad = part.with_name(dest.name + ".corrupt")
            os.replace(part, bad)
            kept = f"; the existing {dest} was kept" if dest.exists() else ""
            raise ChecksumMismatchError(
                f"{url}: {checksum[0]} {got} != published {checksum[1]} (download moved to {bad}{kept})")
    os.replace(part, dest)
    return dest


def extract(archive: Path, into: Path) -> None:
    """Unpack a .zip / .tar(.gz) archive into ``into``, refusing members that would land outside it."""
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _inside(root, name)
            z.extractall(into)
        return
    with tarfile.open(archive) as t:
        for member in t.getmembers():
            _inside(root, member.name)
            if member.issym() or member.islnk():
                raise ValueError(f"{archive}: refusing link member {member.name}")
        t.extractall(into)


def _inside(root: Path, name: str) -> None:
    if not (root / name).resolve().is_relative_to(root):
        raise ValueError(f"refusing archive member outside the target folder: {name}")
