"""Checksums are computed once per file version and remembered in a sidecar."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from benchmark import checksums
from tests.conftest import FIXTURES


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "sidecar.json"))
    monkeypatch.setattr(checksums, "_MEMO", {})


def test_sha256_is_remembered_and_trusted_by_a_later_process(tmp_path: Path, monkeypatch) -> None:
    weights = FIXTURES / "v0-tiny" / "pytorch_model.bin"
    real = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert checksums.file_sha256(weights) == real
    sidecar = tmp_path / "sidecar.json"
    table = json.loads(sidecar.read_text())
    assert list(table.values()) == [real]
    fake = "ab" * 32  # a later process trusts the entry (same path, size, mtime) instead of re-reading the file
    sidecar.write_text(json.dumps({k: fake for k in table}))
    monkeypatch.setattr(checksums, "_MEMO", {})
    assert checksums.file_sha256(weights) == fake


def test_md5_of_many_files_and_a_changed_file_is_hashed_again(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(bytes([i]) * (1000 + i))
        files.append(f)
    digests = checksums.file_digests(files, "md5")
    assert digests == {f: hashlib.md5(f.read_bytes()).hexdigest() for f in files}
    files[0].write_bytes(b"changed content, other size")
    assert checksums.file_md5(files[0]) == hashlib.md5(b"changed content, other size").hexdigest()
    with pytest.raises(ValueError, match="unsupported"):
        checksums.file_digests(files, "crc32")
