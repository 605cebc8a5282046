"""tasks/download.py against a real (local) HTTP server: checksums, resume over Range, and archive escapes.

Why: dataset downloads are gigabytes over flaky links from servers we do not control. A bad transfer must never
replace a good file, an interrupted one must resume instead of restarting, and an archive from the internet must
not write outside the dataset folder. The server here binds 127.0.0.1 only and shuts itself down.
"""
from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from benchmark.tasks.download import ChecksumMismatchError, download, extract

CONTENT = bytes(range(256)) * 4096  # 1 MiB: several read chunks' worth after the resume point
SERVER_LIFETIME_S = 60.0


def sha256(data: bytes) -> tuple[str, str]:
    return ("sha256", hashlib.sha256(data).hexdigest())


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` by path; honours ``Range: bytes=N-`` unless ``honour_range`` is False."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.range_offset_error = 0  # answer a Range request with a 206 starting this many bytes off
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        name = self.path.lstrip("/")
        asked = self.headers.get("Range")
        self.server.requests.append((name, asked))
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if asked and self.server.honour_range:
            start = int(asked.removeprefix("bytes=").rstrip("-")) + self.server.range_offset_error
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up (it rejected the response)
            return
        self.server.bytes_sent += len(body)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextmanager
def file_server() -> Iterator[FileServer]:
    """A server on 127.0.0.1 that stops when the test ends, or by itself after SERVER_LIFETIME_S at the latest."""
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield server
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as s:
        yield s


# --- checksums ---------------------------------------------------------------------------------------------------
def test_download_verifies_and_moves_into_place(server: FileServer, tmp_path: Path) -> None:
    server.files["data.zip"] = CONTENT
    dest = download(server.url("data.zip"), tmp_path / "data.zip", sha256(CONTENT), timeout=10)
    assert dest.read_bytes() == CONTENT
    assert not (tmp_path / "data.zip.part").exists()
    assert server.requests == [("data.zip", None)]
    download(server.url("data.zip"), dest, sha256(CONTENT), timeout=10)  # already there: no request at all
    assert len(server.requests) == 1


def test_a_mismatching_download_never_replaces_the_existing_file(server: FileServer, tmp_path: Path) -> None:
    good = b"the copy the user already has" * 100
    published = b"what the dataset publishes today" * 100
    server.files["a.tar.gz"] = b"a tampered or truncated transfer" * 100
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(good)
    with pytest.raises(ChecksumMismatchError) as info:
        download(server.url("a.tar.gz"), dest, sha256(published), timeout=10)
    message = str(info.value)
    assert f"the existing {dest} was kept unchanged" in message and "a.tar.gz.corrupt" in message
    assert sha256(published)[1] in message and "rerun" in message
    assert dest.read_bytes() == good
    assert (tmp_path / "a.tar.gz.corrupt").read_bytes() == server.files["a.tar.gz"]
    assert not (tmp_path / "a.tar.gz.part").exists()  # a bad transfer is not resumed from

    server.files["a.tar.gz"] = published  # the server is fixed: the next run replaces the file
    download(server.url("a.tar.gz"), dest, sha256(published), timeout=10)
    assert dest.read_bytes() == published and server.requests[-1] == ("a.tar.gz", None)


# --- resume ------------------------------------------------------------------------------------------------------
def test_an_interrupted_download_resumes_with_a_range_request(server: FileServer, tmp_path: Path) -> None:
    server.files["big.bin"] = CONTENT
    dest = tmp_path / "big.bin"
    cut = 300_001
    (tmp_path / "big.bin.part").write_bytes(CONTENT[:cut])  # what an interrupted run leaves behind
    download(server.url("big.bin"), dest, sha256(CONTENT), timeout=10)
    assert dest.read_bytes() == CONTENT
    assert server.requests == [("big.bin", f"bytes={cut}-")]
    assert server.bytes_sent == len(CONTENT) - cut  # only the rest crossed the network


def test_a_server_that_ignores_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    server.files["big.bin"] = CONTENT
    server.honour_range = False
    (tmp_path / "big.bin.part").write_bytes(CONTENT[:1000])
    download(server.url("big.bin"), tmp_path / "big.bin", sha256(CONTENT), timeout=10)
    assert (tmp_path / "big.bin").read_bytes() == CONTENT
    assert server.bytes_sent == len(CONTENT)


def test_a_206_from_the_wrong_offset_is_not_appended(server: FileServer, tmp_path: Path) -> None:
    server.files["big.bin"] = CONTENT
    server.range_offset_error = 7
    (tmp_path / "big.bin.part").write_bytes(CONTENT[:1000])
    download(server.url("big.bin"), tmp_path / "big.bin", sha256(CONTENT), timeout=10)
    assert (tmp_path / "big.bin").read_bytes() == CONTENT
    assert server.requests == [("big.bin", "bytes=1000-"), ("big.bin", None)]


def test_a_complete_part_file_is_finished_after_a_416(server: FileServer, tmp_path: Path) -> None:
    """Interrupted after the last byte but before the move: the server has nothing more to send (416)."""
    server.files["big.bin"] = CONTENT
    (tmp_path / "big.bin.part").write_bytes(CONTENT)
    download(server.url("big.bin"), tmp_path / "big.bin", sha256(CONTENT), timeout=10)
    assert (tmp_path / "big.bin").read_bytes() == CONTENT
    assert server.requests == [("big.bin", f"bytes={len(CONTENT)}-")] and server.bytes_sent == 0


def test_a_stale_part_file_fails_its_checksum_once_then_downloads_clean(server: FileServer, tmp_path: Path) -> None:
    server.files["big.bin"] = CONTENT
    (tmp_path / "big.bin.part").write_bytes(b"x" * 5000)  # left by another release of the file
    with pytest.raises(ChecksumMismatchError):
        download(server.url("big.bin"), tmp_path / "big.bin", sha256(CONTENT), timeout=10)
    download(server.url("big.bin"), tmp_path / "big.bin", sha256(CONTENT), timeout=10)
    assert (tmp_path / "big.bin").read_bytes() == CONTENT


# --- archives ----------------------------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how Info-ZIP stores a symlink
            z.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                t.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                t.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _assert_refused(archive: Path, into: Path, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        extract(archive, into)
    assert not any(into.iterdir()), "a refused archive must write nothing"


def test_good_archives_extract(tmp_path: Path) -> None:
    _zip(tmp_path / "ok.zip", {"genres/blues/a.wav": b"RIFF", "README": b"hi"})
    extract(tmp_path / "ok.zip", tmp_path / "z")
    assert (tmp_path / "z" / "genres" / "blues" / "a.wav").read_bytes() == b"RIFF"
    _tar(tmp_path / "ok.tar.gz", [("genres/jazz/b.wav", b"RIFF2")])
    extract(tmp_path / "ok.tar.gz", tmp_path / "t")
    assert (tmp_path / "t" / "genres" / "jazz" / "b.wav").read_bytes() == b"RIFF2"


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/tmp/escape_abs.txt"])
def test_zip_members_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    into = tmp_path / "into"
    into.mkdir()
    _assert_refused(_zip(tmp_path / "evil.zip", {"fine.txt": b"ok", name: b"x"}), into, "outside the target")
    assert not (tmp_path / "escape.txt").exists()


def test_zip_symlink_members_are_refused(tmp_path: Path) -> None:
    into = tmp_path / "into"
    into.mkdir()
    _assert_refused(_zip(tmp_path / "link.zip", {"fine.txt": b"ok"}, links={"data": "/etc"}), into, "link member")


@pytest.mark.parametrize("members,match", [
    ([("fine.txt", b"ok"), ("../escape.txt", b"x")], "outside the target"),
    ([("/tmp/escape_abs.txt", b"x")], "outside the target"),
    ([_link("data", "/etc"), ("data/passwd", b"x")], "link member"),       # write through a symlink
    ([_link("up", "../../.."), ("fine.txt", b"ok")], "link member"),
    ([("fine.txt", b"ok"), _link("hard", "/etc/passwd", tarfile.LNKTYPE)], "link member"),
    ([_link("fifo", "", tarfile.FIFOTYPE)], "special member"),
])
def test_tar_members_that_escape_or_link_are_refused(tmp_path: Path, members, match: str) -> None:
    into = tmp_path / "into"
    into.mkdir()
    _assert_refused(_tar(tmp_path / "evil.tar.gz", members), into, match)
    assert not (tmp_path / "escape.txt").exists()
