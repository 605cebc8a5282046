"""The task-kind interface and its registry: metrics with a direction, and one object per kind.

Why objects and a registry instead of ``if task.task_type == ...`` switches: before, what a task type meant was
spread over the target encoding, the metrics table, the loss table, the probe, the sweep and the runner, and the
one fact that is easiest to forget, whether a larger value of the primary metric is better, was read only by the
leaderboard: selection and early stopping always maximised, so a lower-is-better metric (an error rate, an MAE)
would have picked the WORST layer and checkpoint without any error. Now a kind declares everything about itself
in one place, and the pipeline asks the kind (or, for a metric name, :func:`metric`) instead of switching on
strings. A task names its kind by ``Task.task_type`` (the string stored in run records as ``task_type``).

This module is a leaf: it imports nothing of the suite, so tasks, metrics, evaluators and the probe can all depend
on it and dependencies still go one way. The built-in kinds (``benchmark/kinds/*.py``, which import metric and
evaluation code) are imported on the first lookup, as ``benchmark.tasks.registry`` imports the task modules.
"""
from __future__ import annotations

import abc
import importlib
import math
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Sequence, TypeVar

import numpy as np

if TYPE_CHECKING:
    from benchmark.kinds.losses import Loss
    from benchmark.tasks.base import Task, Track

T = TypeVar("T")
LEVELS: tuple[str, ...] = ("clip", "frame")


@dataclass(frozen=True)
class Metric:
    """A metric name and its direction; the one place that says which of two scores is better.

    Every comparison the suite makes to select something (a head's best epoch and its patience counter, the best
    learning rate of a layer, the reported layer, the leaderboard's ranks) goes through :meth:`better` or
    :meth:`best`, so a lower-is-better metric is minimised everywhere, never maximised by a stray ``>``.
    """

    name: str
    higher_is_better: bool = True

    @property
    def worst(self) -> float:
        """A value every real score beats: the start of a best-so-far."""
        return -math.inf if self.higher_is_better else math.inf

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (a NaN is never better, nor beaten by a NaN)."""
        return bool(a > b) if self.higher_is_better else bool(a < b)

    def best(self, items: Iterable[T], key: Callable[[T], float]) -> T:
        """The first best item by ``key`` (``max`` / ``min``: on ties the earliest wins)."""
        return max(items, key=key) if self.higher_is_better else min(items, key=key)

    def best_index(self, values: Sequence[float] | np.ndarray) -> int:
        """Position of the first best of ``values``."""
        return int(np.argmax(values)) if self.higher_is_better else int(np.argmin(values))

    def best_value(self, values: Sequence[float] | np.ndarray) -> float:
        return float(np.max(values)) if self.higher_is_better else float(np.min(values))


class TaskKind(abc.ABC):
    """What a kind of task is, for the pipeline: targets, loss, output activation, evaluator, metrics, chance.

    A kind is shared by every task of that kind (gtzan and synth_chords are both ``multiclass``), which is why a
    new task of an existing kind touches only its own module, config and ``datasets/`` folder: all the
    probing, scoring and selection follows from ``task_type``. A new kind subclasses :class:`ClipKind`
    (:mod:`benchmark.kinds.clip`: one target per track) or :class:`FrameKind` (a target per encoder frame),
    and calls :func:`register_kind` in a module of ``benchmark/kinds/`` (imported with the registry) or in one
    its tasks import.

    Class attributes:
        name: the ``task_type`` string tasks use (stored in run records, so it never changes for a kind).
        level: ``clip`` (windows pooled per track) or ``frame`` (a target per encoder frame).
        loss: the probe's training loss, which also fixes the output activation (:mod:`benchmark.kinds.losses`).
        metrics: every metric the kind reports, each with its direction.
        primary: the one of ``metrics`` used for early stopping, selection and the headline number.
    """

    name: ClassVar[str]
    level: ClassVar[str]
    loss: ClassVar["Loss"]
    metrics: ClassVar[tuple[Metric, ...]]
    primary: ClassVar[Metric]

    def find_metric(self, name: str) -> Metric | None:
        """The metric called ``name`` if this kind reports it (kinds with per-label metrics override this)."""
        return next((m for m in self.metrics if m.name == name), None)

    def activate(self, logits: Any) -> Any:
        """Scores the evaluator reads from raw head outputs (probabilities, or values for regression)."""
        return self.loss.activation(logits)

    def num_outputs(self, task: "Task") -> int:
        """Outputs of each probe head: by default one per label (class, tag, regression target)."""
        return task.num_outputs

    @abc.abstractmethod
    def encode_targets(self, task: "Task", tracks: list["Track"]) -> Any:
        """The targets of ``tracks`` (their ``Track.target`` values) in the form this kind's evaluator reads."""

    def __repr__(self) -> str:
        return f"<task kind {self.name}: {self.level}-level, loss {self.loss.name}, primary {self.primary.name}" \
               f"{'' if self.primary.higher_is_better else ' (lower is better)'}>"



class FrameKind(TaskKind):
    """A frame-level kind: a target per encoder frame, scored per track after decoding the frames.

    Why an interface of its own: the frame-level data path (:func:`benchmark.frame_level.frame_level_data`)
    extracts, caches and lays out per-frame features the same way for every frame-level kind; everything that
    depends on WHAT is predicted per frame comes from the kind, through the methods below, so a new frame-level
    kind (beats, chords, ...) is one module of ``benchmark/kinds/`` and touches neither the runner, the probe nor
    the sweep. ``layout`` is a :class:`benchmark.frame_level.FrameLayout` (each split row's track and time).

    Besides :meth:`frame_targets`, :meth:`build_evaluator` and :meth:`chance`, a kind declares ``loss`` (which
    fixes the dtype and shape of its frame targets: int64 ``[rows]`` class indices for cross-entropy, float
    ``[rows, outputs]`` for binary cross-entropy) and, through :meth:`num_outputs`, the width of each head.
    """

    level = "frame"

    @abc.abstractmethod
    def frame_targets(self, layout: Any, targets: Sequence[Any], frame_rate: float) -> np.ndarray:
        """Training targets of every row (frame) of a split, in row order, from the tracks' encoded targets."""

    @abc.abstractmethod
    def build_evaluator(self, task: "Task", layout: Any, targets: Sequence[Any], frame_rate: float,
                        task_config: dict[str, Any], track_ids: Sequence[str] | None = None,
                        cache_dir: Path | str | None = None) -> Any:
        """The evaluator of one split (the :class:`~benchmark.evaluation.Evaluator` protocol): ``[heads, rows,
        outputs]`` activated scores -> one dict of this kind's metrics per head. ``task_config`` is the task's
        config section (decoding and scoring settings); ``track_ids`` and ``cache_dir`` let errors name the
        track and the cache entry."""

    @abc.abstractmethod
    def chance(self, train_targets: Sequence[Any], evaluator: Any) -> tuple[float, str]:
        """(score, description): the primary metric on ``evaluator``'s split of a prediction fitted on the
        training targets alone, without audio, and a few words saying what that prediction is."""

    def describe_targets(self, train_y: np.ndarray) -> str:
        """A short note on the training frame targets for the console (e.g. how many positives)."""
        return ""

_KINDS: dict[str, TaskKind] = {}
_BUILTINS_IMPORTED = False
# Modules of this package that define no kind (everything else in benchmark/kinds/ is imported to register its kinds).
_NOT_KINDS = frozenset({"base", "losses"})


def _import_builtin_kinds() -> None:
    """Import every kind module of this package once (importing one registers its kinds)."""
    global _BUILTINS_IMPORTED
    if _BUILTINS_IMPORTED:
        return
    _BUILTINS_IMPORTED = True  # first: the modules call register_kind while they are imported
    try:
        for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
            if module.name not in _NOT_KINDS:
                importlib.import_module(f"{__name__.rpartition('.')[0]}.{module.name}")
    except BaseException:
        _BUILTINS_IMPORTED = False
        raise


def register_kind(kind: TaskKind, replace: bool = False) -> TaskKind:
    """Add ``kind`` to the registry under ``kind.name`` and return it.

    Refused (``ValueError``): a name already taken (unless ``replace``), an unknown level, a primary metric that
    is not among the kind's metrics, and a metric name another kind declares with the opposite direction: a
    metric name means one thing across the suite, because records and the leaderboard know metrics by name only.
    """
    _import_builtin_kinds()  # a kind of one's own is checked against the built-in ones
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"task kind {kind!r} has no name")
    if name in _KINDS and not replace:
        raise ValueError(f"task kind {name!r} is already registered ({_KINDS[name]!r})")
    if kind.level not in LEVELS:
        raise ValueError(f"task kind {name}: level {kind.level!r}; expected one of {', '.join(LEVELS)}")
    if not kind.metrics or kind.primary not in kind.metrics:
        raise ValueError(f"task kind {name}: the primary metric {kind.primary!r} must be one of its metrics")
    for m in kind.metrics:
        for other in _KINDS.values():
            theirs = other.find_metric(m.name) if other.name != name else None
            if theirs is not None and theirs.higher_is_better != m.higher_is_better:
                raise ValueError(f"task kind {name}: metric {m.name!r} is {_direction(m)}, but kind {other.name} "
                                 f"declares it {_direction(theirs)}; give the metric another name")
    _KINDS[name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that register a kind of their own clean up with this)."""
    _KINDS.pop(name, None)


def get_kind(name: str) -> TaskKind:
    """The registered kind called ``name``; ``ValueError`` naming the registered kinds otherwise."""
    _import_builtin_kinds()
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task type {name!r}; expected one of {', '.join(_KINDS)}") from None


def kind_names() -> list[str]:
    """Names of the registered kinds, in registration order."""
    _import_builtin_kinds()
    return list(_KINDS)


def metric(name: str) -> Metric:
    """The metric called ``name`` with its direction, as the registered kinds declare it.

    Per-label names (``r2_<label>``) are resolved by the kind that reports them, and any name ending in ``loss``
    is lower-is-better. An unknown name raises ``KeyError``: the suite never guesses a direction, because a
    guessed "higher is better" for an error would select the worst layer without a sign of trouble.
    """
    _import_builtin_kinds()
    for kind in _KINDS.values():
        found = kind.find_metric(name)
        if found is not None:
            return found
    if name.endswith("loss"):
        return Metric(name, higher_is_better=False)
    known = sorted({m.name for k in _KINDS.values() for m in k.metrics})
    raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(known)}, r2_<label>")


def _direction(m: Metric) -> str:
    return "higher-is-better" if m.higher_is_better else "lower-is-better"
