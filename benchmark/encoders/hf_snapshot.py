"""Locate the few files of a Hugging Face model snapshot, locally or through the hub cache.

Encoders that load official checkpoints natively need only ``config.json``, ``preprocessor_config.json`` and one
weight file, never the repository's custom code. This module finds those files either in a local folder
(``model.checkpoint=PATH``) or in the standard Hugging Face cache (downloading them when online), and records
which commit they came from, so that a run can say exactly which weights produced its features.

Every way a hub download can fail for a reason the user can fix (a revision the hub does not know, a repository
that is gone, private or gated, a cache that lacks the files while ``HF_HUB_OFFLINE=1``, no connection) becomes a
:class:`HubSnapshotError`: one paragraph naming the repository, the revision asked for and the fix, printed by the
command line without a traceback. A pinned revision must never strand a user: each message offers
``model.revision=main`` (the newest files, whose commit is still recorded) or ``model.checkpoint=/path/to/snapshot``.

Weight files are hashed by :mod:`benchmark.checksums`, which remembers each hash in a sidecar.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

from benchmark.checksums import file_sha256  # noqa: F401  (re-exported: weight files are hashed here)
from benchmark.errors import UserError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
# Preferred first: safetensors cannot execute code and loads faster; the m-a-p repositories ship only the .bin.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}
# The fix every hub message offers for a local copy; spelled once so the messages and the tests agree.
LOCAL_FIX = "model.checkpoint=/path/to/snapshot"


class HubSnapshotError(UserError, RuntimeError):
    """The files of a Hugging Face model could not be had, for a reason the user can fix.

    A :class:`~benchmark.errors.UserError`, so the command line prints the message alone (the traceback of
    ``huggingface_hub`` would bury the fix under HTTP details); still a ``RuntimeError`` for callers that catch
    download failures as such.
    """


class CheckpointFolderError(UserError, FileNotFoundError):
    """``model.checkpoint=PATH`` names no folder, or one without the files a native loader reads.

    Also a ``FileNotFoundError``, which is what a missing folder or file is to library code.
    """


class UnsafeWeightsError(UserError, pickle.UnpicklingError):
    """A weight file whose pickle asks to run code or build objects that are not tensors: refused, never loaded.

    Also a ``pickle.UnpicklingError``, which is what ``torch.load`` raises for it. The message is ours alone:
    torch's own text advises loading the file with ``weights_only`` switched off, which is exactly what must not
    happen to a file that asks to run code.
    """


def unsafe_weights_error(path: Path, exc: BaseException) -> UnsafeWeightsError:
    """The refusal of ``path`` (named with its sha256, so it can be compared with the hub's listing) and the fix."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\s+was not an allowed global|\n\n|$)", str(exc),
                      re.DOTALL)
    detail = " ".join(found.group(1).split()) if found else ""
    if "weights_only" in detail:  # only torch's own name of what it refused is kept, never its advice
        detail = ""
    return UnsafeWeightsError(
        f"Refused to load {path} (sha256 {file_sha256(path)}): it holds pickled code or objects that are not plain "
        f"tensors (torch.load: Weights only load failed{': ' + detail if detail else ''}), and this suite never "
        f"runs code from a weight file. The official snapshots hold plain tensors, so this copy was altered or "
        f"is not a model's weights. Fix: delete it and download the official snapshot again, or use a "
        f"model.safetensors file (it cannot hold code), e.g. with {LOCAL_FIX} pointing at a folder that holds "
        f"config.json, preprocessor_config.json and model.safetensors.")


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
        CheckpointFolderError: naming the folder or the missing file and how to fix it.
    """
    folder = Path(path).expanduser()
    fix = (
        "Set model.checkpoint=PATH to a folder holding config.json, preprocessor_config.json and "
        "model.safetensors or pytorch_model.bin (a copy of the official Hugging Face snapshot)"
        + (f", or model.checkpoint=null to load {hint} from the Hugging Face hub" if hint else "")
        + "."
    )
    if not folder.is_dir():
        raise CheckpointFolderError(f"model.checkpoint={str(path)!r}: no such folder. {fix}")
    for name in (CONFIG_FILE, PREPROCESSOR_FILE):
        if not (folder / name).is_file():
            raise CheckpointFolderError(f"model.checkpoint={str(path)!r}: {name} is missing in {folder}. {fix}")
    weights = next((folder / w for w in WEIGHT_FILES if (folder / w).is_file()), None)
    if weights is None:
        raise CheckpointFolderError(
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

    ``revision`` is resolved once, by the first download: ``hf_hub_download`` returns a path inside the cache's
    ``snapshots/<commit>`` folder, and the other files are then requested at that commit, not at ``revision``
    again. A branch such as ``main`` that moves between two downloads can therefore not mix the config of one
    commit with the weights of another, and :attr:`Snapshot.commit` is the commit every file came from.

    Raises:
        HubSnapshotError: one paragraph naming the repository, the revision asked for and the fix (see
            :func:`hub_error`).
    """
    from huggingface_hub import hf_hub_download

    types = _hub_error_types()
    entry_not_found = (types["EntryNotFoundError"], types["LocalEntryNotFoundError"])
    offline = hub_offline()
    cache = hub_cache_dir(cache_dir)

    def fetch(filename: str, rev: str) -> Path:
        return Path(
            hf_hub_download(
                repo_id=repo_id,
                filename=filename,
                revision=rev,
                cache_dir=cache,
                local_files_only=offline,
            )
        )

    def fail(what: str, exc: BaseException, commit: str | None = None) -> HubSnapshotError:
        return hub_error(repo_id, revision, what, exc, offline=offline, cache=cache, commit=commit)

    try:
        config_path = fetch(CONFIG_FILE, revision)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message (hub_error keeps the cause's text)
        raise fail(CONFIG_FILE, exc) from exc
    commit = _commit_of_folder(config_path.parent)
    if commit is None and is_commit_hash(revision):
        commit = revision
    if commit is None:  # not a cache snapshot folder: nothing to pin to, so the record cannot name the commit
        log.warning("%s: could not tell which commit revision %r resolved to (files in %s)", repo_id, revision,
                    config_path.parent)
    pinned = commit or revision

    try:
        preprocessor_path = fetch(PREPROCESSOR_FILE, pinned)
    except Exception as exc:  # noqa: BLE001
        raise fail(PREPROCESSOR_FILE, exc, commit) from exc

    weights_path: Path | None = None
    errors: list[BaseException] = []
    for name in WEIGHT_FILES:
        try:
            weights_path = fetch(name, pinned)
            break
        except entry_not_found as exc:  # this revision lacks it (remote or in the offline cache): try the next
            errors.append(exc)
        except Exception as exc:  # noqa: BLE001
            raise fail(name, exc, commit) from exc
    if weights_path is None:
        raise fail(" or ".join(WEIGHT_FILES), errors[-1], commit)

    folder = config_path.parent
    if commit is not None and {preprocessor_path.parent.name, weights_path.parent.name} != {commit}:
        raise HubSnapshotError(  # cannot happen with huggingface_hub's cache layout; never record a mixed snapshot
            f"The files of Hugging Face repo {repo_id!r} at revision {revision!r} came from different folders "
            f"({config_path.parent}, {preprocessor_path.parent}, {weights_path.parent}) instead of one snapshot "
            f"of commit {commit}. Clear that repository from the cache and run again, or point {LOCAL_FIX} at a "
            f"folder holding config.json, preprocessor_config.json and the weight file."
        )
    if revision != pinned:
        log.info("%s: revision %r resolved to commit %s", repo_id, revision, pinned)
    return Snapshot(
        folder=folder,
        config_path=config_path,
        preprocessor_path=preprocessor_path,
        weights_path=weights_path,
        source="hub",
        repo_id=repo_id,
        revision=revision,
        commit=commit,
    )


def _hub_error_types() -> dict[str, type[BaseException]]:
    """huggingface_hub's error classes by name; one this version lacks maps to a class nothing raises.

    Looked up by name because the supported releases (``huggingface_hub>=0.24``) add classes over time
    (``RemoteEntryNotFoundError``, ``DisabledRepoError``) and a missing one must not break the import.
    """
    from huggingface_hub import errors

    class _NeverRaised(Exception):
        pass

    names = ("RevisionNotFoundError", "RepositoryNotFoundError", "GatedRepoError", "DisabledRepoError",
             "EntryNotFoundError", "LocalEntryNotFoundError", "OfflineModeIsEnabled", "HFValidationError")
    return {name: getattr(errors, name, _NeverRaised) for name in names}


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text, for a message that must stay one paragraph."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def cached_commits(repo_id: str, cache: str | os.PathLike[str] | None) -> list[tuple[str, list[str], bool]]:
    """What the hub cache holds of ``repo_id``: ``(commit, refs pointing at it, complete)`` per snapshot folder.

    ``complete`` means the folder holds config.json, preprocessor_config.json and a weight file, i.e. a
    ``model.revision=<commit>`` override would load offline. Lets an offline error say what *would* work instead
    of only what did not. Unreadable parts of the cache are skipped: this only enriches a message.
    """
    if cache is None:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    repo_dir = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    refs: dict[str, list[str]] = {}
    try:
        for ref in sorted((repo_dir / "refs").rglob("*")):
            if ref.is_file():
                refs.setdefault(ref.read_text().strip(), []).append(ref.relative_to(repo_dir / "refs").as_posix())
    except OSError:
        pass
    found: list[tuple[str, list[str], bool]] = []
    try:
        for snap in sorted((repo_dir / "snapshots").iterdir()):
            if snap.is_dir() and _COMMIT_RE.match(snap.name):
                complete = (all((snap / f).is_file() for f in (CONFIG_FILE, PREPROCESSOR_FILE))
                            and any((snap / w).is_file() for w in WEIGHT_FILES))
                found.append((snap.name, refs.get(snap.name, []), complete))
    except OSError:
        pass
    return found


def hub_error(
    repo_id: str,
    revision: str,
    what: str,
    exc: BaseException,
    *,
    offline: bool,
    cache: str | None,
    commit: str | None = None,
) -> HubSnapshotError:
    """The one-paragraph :class:`HubSnapshotError` for a failed download of ``what`` from ``repo_id``.

    Each case names the repository and the revision asked for and ends with fixes that work *now*: a pinned
    revision the hub no longer knows (deleted, mistyped, history rewritten) must not strand the user, so
    ``model.revision=main`` is offered whenever another revision was asked for (the record still stores the
    commit main resolved to), next to ``model.checkpoint=/path/to/snapshot`` for a local copy. Only the first
    line of huggingface_hub's own text is kept, where it helps at all: its full text spans lines of HTTP details
    and request ids.
    """
    t = _hub_error_types()
    where = f"the cache {cache}" if cache else "the default Hugging Face cache (~/.cache/huggingface/hub)"
    at = f"revision {revision!r}" + (f" (commit {commit})" if commit and commit != revision else "")
    local = (f"or use a local copy of the snapshot with {LOCAL_FIX} (a folder holding config.json, "
             f"preprocessor_config.json and {' or '.join(WEIGHT_FILES)})")
    on_main = revision == "main"  # then "use main" is no way out
    main = ("load the repository's current files with model.revision=main (the run records the commit main "
            "resolves to, so its results stay traceable)")
    history = f"https://huggingface.co/{repo_id}/commits/main"
    into = f" --cache-dir {cache}" if cache else ""
    download = (f"`hf download {repo_id} --revision {revision}{into} {CONFIG_FILE} {PREPROCESSOR_FILE} "
                f"pytorch_model.bin` (older clients: `huggingface-cli download ...`)")

    if isinstance(exc, t["RevisionNotFoundError"]):
        msg = (f"The Hugging Face hub does not know revision {revision!r} of the model {repo_id!r}: the commit or "
               f"branch was mistyped, deleted, or dropped when the repository's history was rewritten. Fix: "
               f"{'' if on_main else main + ', '}pin a commit that exists (listed at {history}) with "
               f"model.revision=<commit>, {local}.")
    elif isinstance(exc, t["GatedRepoError"]):
        msg = (f"The Hugging Face model {repo_id!r} is gated: the hub refused {what} at {at} because this machine "
               f"is not logged in with an account that accepted its terms. Fix: accept them at "
               f"https://huggingface.co/{repo_id}, log in with `hf auth login` (or set HF_TOKEN) and run again, "
               f"{local}.")
    elif isinstance(exc, t["RepositoryNotFoundError"]):
        msg = (f"The Hugging Face hub has no model {repo_id!r} (or it is private and this machine is not logged "
               f"in), so {what} at {at} could not be fetched. Fix: check model.hub_id, log in with "
               f"`hf auth login` (or set HF_TOKEN) for a private repository, {local}.")
    elif isinstance(exc, t["DisabledRepoError"]):
        msg = (f"The Hugging Face model {repo_id!r} has been disabled on the hub, so {what} at {at} cannot be "
               f"fetched. Fix: {local}.")
    elif isinstance(exc, t["HFValidationError"]):
        msg = (f"model.hub_id={repo_id!r} with model.revision={revision!r} is not a valid Hugging Face reference "
               f"({_first_line(exc)}). Fix: set model.hub_id to '<owner>/<name>' (e.g. m-a-p/MERT-v1-95M) and "
               f"model.revision to a commit hash or a branch such as main, {local}.")
    elif isinstance(exc, (t["LocalEntryNotFoundError"], t["OfflineModeIsEnabled"])) and offline:
        held = cached_commits(repo_id, cache)
        usable = [c for c, _, complete in held if complete and c != commit]
        listing = "; ".join(f"{c}" + (f" ({', '.join(r)})" if r else "") + ("" if ok else " (incomplete)")
                            for c, r, ok in held) or "nothing"
        instead = f"use a cached commit with model.revision={usable[0]}, " if usable else ""
        if_gone = "" if on_main else f" (with model.revision=main if the hub no longer knows {revision!r})"
        msg = (f"{where[0].upper()}{where[1:]} holds no {what} of the model {repo_id!r} at {at}, and "
               f"HF_HUB_OFFLINE=1, so the hub was not asked (cached for this model: {listing}). Fix: {instead}"
               f"download the files on a connected machine into that cache with {download}, or unset "
               f"HF_HUB_OFFLINE to download them now{if_gone}, {local}.")
    elif isinstance(exc, t["EntryNotFoundError"]) and not isinstance(exc, t["LocalEntryNotFoundError"]):
        msg = (f"The Hugging Face model {repo_id!r} has no {what} at {at}: that revision is not a snapshot the "
               f"native loader can read (it needs {CONFIG_FILE}, {PREPROCESSOR_FILE} and "
               f"{' or '.join(WEIGHT_FILES)}). Fix: {'' if on_main else main + ', '}pin a commit that holds those "
               f"files (listed at {history}) with model.revision=<commit>, {local}.")
    elif isinstance(exc, t["LocalEntryNotFoundError"]):
        msg = (f"Could not reach the Hugging Face hub for {what} of the model {repo_id!r} at {at}, and {where} "
               f"holds no copy ({_first_line(exc)}). Fix: check the connection (a proxy: HTTPS_PROXY; a "
               f"mirror: HF_ENDPOINT), pre-download the files on a connected machine into that cache with "
               f"{download}, {local}.")
    else:
        if_gone = "" if on_main else f"{main} if the hub no longer knows {revision!r}, "
        msg = (f"Could not get {what} of the Hugging Face model {repo_id!r} at {at} ({where}; "
               f"{type(exc).__name__}: {_first_line(exc)}). Fix: check the connection and run again, pre-download "
               f"the files on a connected machine with {download}, {if_gone}{local}.")
    return HubSnapshotError(msg)


def bytes_sha256(data: bytes) -> str:
    """SHA-256 of an in-memory blob (small files such as config.json)."""
    return hashlib.sha256(data).hexdigest()
