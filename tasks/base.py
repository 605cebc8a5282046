"""What every task provides: its tracks with splits and targets, its type, and its label names.

A task knows its data (where the audio is, how the split is defined, how labels are encoded); it knows nothing
about encoders or probes. The task type picks the loss and metrics (see :mod:`benchmark.metrics`).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

TaskType = Literal["multiclass", "multilabel", "regression", "key"]
SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class Track:
    """One labelled audio item.

    ``target`` is a class index (multiclass, key), a tuple of tag indices (multilabel) or a tuple of floats
    (regression). ``offset``/``duration`` (seconds) select a clip of a longer file; ``None`` means all of it.
    """

    track_id: str
    path: Path
    split: str
    target: Any
    offset: float = 0.0
    duration: float | None = None


class Task(abc.ABC):
    """Base class of a task; subclasses are built from ``configs/task/<name>.yaml``.

    Subclasses set (as class attributes or in ``__init__``):
        name: task name as used on the command line (``task=<name>``).
        task_type: one of ``multiclass``, ``multilabel``, ``regression``, ``key``.
        labels: class names, tag names or regression target names (their order is the output order).
    ``cfg`` is the task's config section (window, hop, task-specific settings).
    """

    name: str = ""
    task_type: TaskType = "multiclass"
    labels: list[str] = []

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        self.cfg: dict[str, Any] = dict(cfg or {})

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    @abc.abstractmethod
    def tracks(self, data_root: Path) -> list[Track]:
        """All tracks of all splits, read from the dataset under ``data_root``.

        Raises a ``FileNotFoundError`` naming the folder looked in, the expected layout and the command that
        fetches the data when the dataset is missing.
        """

    def prepare(self, data_root: Path) -> None:
        """Fetch or generate the dataset under ``data_root`` (synthetic tasks render their audio here)."""

    def dataset_identity(self) -> dict[str, Any]:
        """Everything about the dataset that changes the audio read for a track id (used in the cache key)."""
        return {"task": self.name}

    def target_array(self, tracks: list[Track]) -> np.ndarray:
        """Targets of ``tracks`` as one array: int ``[N]`` (multiclass, key), float ``[N, C]`` multi-hot
        (multilabel) or float ``[N, T]`` (regression)."""
        if self.task_type in ("multiclass", "key"):
            return np.asarray([t.target for t in tracks], dtype=np.int64)
        if self.task_type == "multilabel":
            y = np.zeros((len(tracks), self.num_outputs), dtype=np.float32)
            for i, t in enumerate(tracks):
                y[i, list(t.target)] = 1.0
            return y
        return np.asarray([list(t.target) for t in tracks], dtype=np.float32).reshape(len(tracks), -1)
