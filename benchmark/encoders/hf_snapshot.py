"""Locate the few files of a Hugging Face model snapshot, locally or through the hub cache.

Encoders that load official checkpoints natively need only ``config.json``, ``preprocessor_config.json`` and one
weight file, never the repository's custom code. This module finds those files either in a local folder
(``model.checkpoint=PATH``) or in the standard Hugging Face cache (downloading them when online), and records
which commit they came from, so that a run can say exactly which weights produced its features.

Weight files are hashed by :mod:`benchmark.checksums`, which remembers each hash in a sidecar.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.checksums import file_sha256  # noqa: F401  (re-exported: weight files are hashed here)

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
# Preferred first: safetensors cannot execute code and loads faster; the m-a-p repositories ship only the .bin.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Snapshot:
    """The files of one model snapshot and where they came from.

    Attributes:
        folder: folder holding the files (a hub-cache ``snapshots/<commit>`` folder or a user folder).
        config_path, preprocessor_path, weights_path: the three files a native loader reads.
        source: ``"local"`` (``model.checkpoint``) or ``"hub"`` (Hugging Face cache).
        repo_id, revision: what was asked for on the hub (``None`` for a local folder).
        commit: the commit hash the files belong to, when known (hub cache folder name).
    """

    folder: Path
    config_path: Path
    preprocessor_path: Path
    weights_path: Path
    source: str
    repo_id: str | None
    revision: str | None
    commit: str | None


def is_commit_hash(revision: str | None) -> bool:
    """Whether ``revision`` is a full 40-hex commit hash (an immutable pin)."""
    return bool(revision) and bool(_COMMIT_RE.match(str(revision)))


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set *now*.

    ``huggingface_hub`` reads these variables once, at import; reading them at call time lets tests and callers
    switch offline mode after the import and still be honoured.
    """
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def hub_cache_dir(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The hub cache folder to use, resolved at call time.

    Order: an explicit folder, then ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME/hub``; ``None`` lets
    ``huggingface_hub`` use its own default. Resolving here (instead of relying on the library's import-time
    constants) makes an environment change after import effective.
    """
    if explicit:
        return str(Path(explicit).expanduser())
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return str(Path(os.path.expandvars(os.environ[var])).expanduser())
    if os.environ.get("HF_HOME"):
        return str(Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub")
    return None


def _commit_of_folder(folder: Path) -> str | None:
    """The commit hash of a hub-cache ``snapshots/<commit>`` folder, else ``None``."""
    if folder.parent.name == "snapshots" and _COMMIT_RE.match(folder.name):
        return folder.name
    return None


def local_snapshot(path: str | os.PathLike[str], *, hint: str = "") -> Snapshot:
    """Find the config, preprocessor config and weights in a local snapshot folder.

    Raises:
        FileNotFoundError: naming the folder or the missing file and how to fix it.
    """
    folder = Path(path).expanduser()
    fix = (
        "Set model.checkpoint=PATH to a folder holding config.json, preprocessor_config.json and "
        "model.safetensors or pytorch_model.bin (a copy of the official Hugging Face snapshot)"
        + (f", or model.checkpoint=null to load {hint} from the Hugging Face hub" if hint else "")
        + "."
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"model.checkpoint={str(path)!r}: no such folder. {fix}")
    for name in (CONFIG_FILE, PREPROCESSOR_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"model.checkpoint={str(path)!r}: {name} is missing in {folder}. {fix}")
    weights = next((folder / w for w in WEIGHT_FILES if (folder / w).is_file()), None)
    if weights is None:
        raise FileNotFoundError(
            f"model.checkpoint={str(path)!r}: no weight file in {folder} (looked for {', '.join(WEIGHT_FILES)}). {fix}"
        )
    resolved = folder.resolve()
    return Snapshot(
        folder=folder,
        config_path=folder / CONFIG_FILE,
        preprocessor_path=folder / PREPROCESSOR_FILE,
        weights_path=weights,
        source="local",
        repo_id=None,
        revision=None,
        commit=_commit_of_folder(folder) or _commit_of_folder(resolved),
    )


def hub_snapshot(repo_id: str, revision: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Snapshot:
    """Fetch (or, offline, find in the cache) the three files of ``repo_id`` at ``revision``.

    Only ``config.json``, ``preprocessor_config.json`` and one weight file are requested (``model.safetensors``
    if the revision has it, else ``pytorch_model.bin``), so the multi-GB fairseq checkpoints and the custom code
    files of the m-a-p repositories are never downloaded.

    Raises:
        RuntimeError: naming the repository, revision and cache, with the fix (connect, pre-download, or
            ``model.checkpoint=PATH``).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    offline = hub_offline()
    cache = hub_cache_dir(cache_dir)

    def fail(what: str, exc: BaseException) -> RuntimeError:
        where = cache or "the default Hugging Face cache (~/.cache/huggingface/hub)"
        mode = f"HF_HUB_OFFLINE=1, so only the cache {where} was searched" if offline else f"cache {where}"
        return RuntimeError(
            f"Could not get {what} of Hugging Face repo {repo_id!r} at revision {revision!r} ({mode}): "
            f"{type(exc).__name__}: {exc}\n"
            f"Fix: connect to the internet (and unset HF_HUB_OFFLINE), or pre-download the files on a connected "
            f"machine with `hf download {repo_id} --revision {revision} config.json preprocessor_config.json "
            f"pytorch_model.bin` (older clients: `huggingface-cli download ...`) into that cache, or point "
            f"model.checkpoint=PATH at a local folder holding those files."
        )

    def fetch(filename: str) -> Path:
        return Path(
            hf_hub_download(
                repo_id=repo_id,
                filename=filename,
                revision=revision,
                cache_dir=cache,
                local_files_only=offline,
            )
        )

    try:
        config_path = fetch(CONFIG_FILE)
        preprocessor_path = fetch(PREPROCESSOR_FILE)
    except Exception as exc:  # any hub/network/cache failure becomes one actionable message
        raise fail("config.json / preprocessor_config.json", exc) from exc

    weights_path: Path | None = None
    errors: list[BaseException] = []
    for name in WEIGHT_FILES:
        try:
            weights_path = fetch(name)
            break
        except (EntryNotFoundError, LocalEntryNotFoundError) as exc:  # this revision lacks it: try the next
            errors.append(exc)
        except Exception as exc:
            raise fail(name, exc) from exc
    if weights_path is None:
        raise fail(" or ".join(WEIGHT_FILES), errors[-1])

    folder = config_path.parent
    return Snapshot(
        folder=folder,
        config_path=config_path,
        preprocessor_path=preprocessor_path,
        weights_path=weights_path,
        source="hub",
        repo_id=repo_id,
        revision=revision,
        commit=_commit_of_folder(folder),
    )


def bytes_sha256(data: bytes) -> str:
    """SHA-256 of an in-memory blob (small files such as config.json)."""
    return hashlib.sha256(data).hexdigest()
