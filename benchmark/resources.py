"""Where the files the suite ships with live: Hydra configs, split manifests and published reference tables.

They sit at the top of the checkout (``configs/``, ``datasets/``, ``results/reference/``) and are installed as
the package-data packages ``benchmark.configs``, ``benchmark.datasets`` and ``benchmark.reference``
(``pyproject.toml`` maps the folders). Every module finds them here, through the import system, so an editable
install, a plain ``pip install .`` and a wheel resolve them the same way, and nothing is ever read from, or
written into, a path computed from a source file's location.
"""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path


@cache
def package_data_dir(package: str) -> Path:
    """The folder of a package-data package (``benchmark.configs`` -> ``<checkout>/configs`` or site-packages)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the suite's data package {package!r} is missing: the suite is not installed. From the checkout run "
            f"`pip install -e .` (or `pip install .`), then run the command again.")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def config_dir() -> Path:
    """``configs/``: the Hydra config tree (``config.yaml``, ``model/``, ``task/``, ...)."""
    return package_data_dir("benchmark.configs")


def manifest_root() -> Path:
    """``datasets/`` as shipped: committed split manifests, checksums and label lists (never audio)."""
    return package_data_dir("benchmark.datasets")


def reference_dir() -> Path:
    """``results/reference/``: published numbers the leaderboard sets beside ours."""
    return package_data_dir("benchmark.reference")


def config_file_values(path: Path) -> dict:
    """A config group file's own keys, resolved (its ``defaults:`` list, which names its schema, left out).

    For readers that want one file's values without composing a run: the catalog of ``list``, and records
    written before a group was stored in them (which held exactly these keys).
    """
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file must be a mapping of keys to values")
    values.pop("defaults", None)
    return values
