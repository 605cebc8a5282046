"""Fetching dataset files: resumable HTTP downloads checked against published checksums, with a progress bar.

Used by ``python -m benchmark prepare <task>`` for sources that are public. A download goes to ``<name>.part``
(resumed with an HTTP Range request when interrupted) and is moved into place only after its checksum matched,
so a corrupted or truncated file never replaces a good one.
"""
from __future__ import annotations

import os
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from benchmark.checksums import hash_file
from benchmark.errors import UserError

CHUNK = 1 << 20


class ChecksumMismatchError(UserError, RuntimeError):
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
    try:
        response = _open(url, done, timeout)
    except urllib.error.HTTPError as exc:
        if not (done and exc.code == 416):  # 416: nothing after byte `done`, i.e. the .part is already complete
            raise
        exc.close()
        response = None
    if response is not None and done and getattr(response, "status", None) != 206:
        done = 0  # the server ignored the range and sends the whole file: write it from the start
    elif response is not None and done and not _resumes_at(response, done):
        response.close()  # a 206 for another range than asked: appending it would corrupt the file
        done = 0
        response = _open(url, 0, timeout)
    if response is not None:
        with response:
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
            kept = f"; the existing {dest} was kept unchanged" if dest.exists() else ""
            raise ChecksumMismatchError(
                f"{url}: {checksum[0]} {got} != published {checksum[1]} (download moved to {bad}{kept}). The "
                "server sent a different file: rerun later (the next attempt starts from zero) or fetch it from a "
                "mirror and place it at the path above.")
    os.replace(part, dest)
    return dest


def _open(url: str, start: int, timeout: float):
    """GET ``url`` from byte ``start`` (a Range request when ``start`` > 0)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    return urllib.request.urlopen(request, timeout=timeout)


def _resumes_at(response, start: int) -> bool:
    """True when the 206 ``response`` covers the file from byte ``start`` (so appending to the .part is right)."""
    return response.headers.get("Content-Range", "").startswith(f"bytes {start}-")


def extract(archive: Path, into: Path) -> None:
    """Unpack a .zip / .tar(.gz) archive into ``into``, refusing members that would land outside it.

    Every member is checked before anything is written, so a refused archive leaves ``into`` as it was. Links are
    refused outright (zip and tar): a dataset archive has no use for them, and a link member followed by a member
    written through it is the classic way out of the target folder. Tar members that are devices or FIFOs are
    refused too, and tar extraction also runs under the standard library's ``data`` filter where available.
    """
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                _inside(root, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise ValueError(f"{archive}: refusing link member {info.filename}")
            z.extractall(into)
        return
    with tarfile.open(archive) as t:
        for member in t.getmembers():
            _inside(root, member.name)
            if member.issym() or member.islnk():
                raise ValueError(f"{archive}: refusing link member {member.name}")
            if not (member.isfile() or member.isdir()):
                raise ValueError(f"{archive}: refusing special member {member.name} (device, FIFO or unknown type)")
        if hasattr(tarfile, "data_filter"):
            t.extractall(into, filter="data")
        else:  # Python < 3.11.4: the checks above are the guard
            t.extractall(into)


def _inside(root: Path, name: str) -> None:
    """Refuse a member name that resolves outside ``root`` (``../x``, ``/abs/x``)."""
    if os.path.isabs(name) or not (root / name).resolve().is_relative_to(root):
        raise ValueError(f"refusing archive member outside the target folder: {name}")
