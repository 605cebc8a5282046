"""The ``chord_frames`` kind: frame-level chord recognition, scored on decoded segments with ``mir_eval.chord``.

A second frame-level kind, beside ``beat``, and the proof that the frame-level path is generic: it plugs into
:func:`benchmark.frame_level.frame_level_data` through the :class:`~benchmark.kinds.base.FrameKind` interface and
needs no change to the runner, the probe or the sweep.

* Targets: one class per frame among :data:`benchmark.targets.CHORD_VOCABULARY` (``N`` + 12 roots x {maj, min}),
  the label of the annotated segment the frame's time falls in (``N`` after the last one); softmax cross-entropy.
* Evaluation (:class:`ChordEvaluator`): per head and track, the argmax class of every frame, consecutive equal
  frames merged into segments (boundaries half-way between frame times), then scored against the reference
  segments exactly as ``mir_eval.chord.evaluate`` does (estimates padded or cut to the reference span, both
  segmentations merged, each comparison weighted by duration). Metrics ``root``, ``majmin`` (primary) and
  ``mirex``, all higher-is-better, are pooled over the tracks of a split by duration (the total duration scored
  correct over the total duration scorable, as MIREX reports weighted chord symbol recall), not averaged per track.
* Chance: the single chord label that, held for the whole of every training track, scores best on train, scored
  the same way on the test split.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import mir_eval
import numpy as np
import torch

from benchmark.errors import UserError
from benchmark.kinds.base import FrameKind, Metric, register_kind
from benchmark.kinds.losses import CROSS_ENTROPY
from benchmark.targets import CHORD_VOCABULARY, ChordSegments

if TYPE_CHECKING:
    from benchmark.frame_level import FrameLayout
    from benchmark.tasks.base import Task, Track

CHORD_METRICS: tuple[str, ...] = ("majmin", "root", "mirex")
_COMPARE = {"root": mir_eval.chord.root, "majmin": mir_eval.chord.majmin, "mirex": mir_eval.chord.mirex}
_MAJ = (1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0)
_MIN = (1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0)


class NonFiniteChordScoresError(UserError, ValueError):
    """A head's chord outputs hold NaN or inf: the argmax of such a frame is meaningless, so nothing is scored."""


@functools.lru_cache(maxsize=None)
def chord_index(label: str) -> int:
    """Class index in :data:`CHORD_VOCABULARY` of a mir_eval chord label (any spelling: ``Db:maj`` = ``C#:maj``).

    The root and the triad's intervals decide (the bass of an inversion does not): ``N`` is 0, a major or minor
    triad its class. A label of another quality (``C:7``, ``C:dim``, ``X``) is refused with ``ValueError``
    rather than reduced: the kind's classes are the majmin vocabulary, and a silent reduction would train the
    probe on labels the task never meant.
    """
    root, bitmap, _ = mir_eval.chord.encode(label)
    if root < 0 and not np.any(bitmap):
        return 0
    triad = tuple(int(b) for b in bitmap)
    if root < 0 or triad not in (_MAJ, _MIN):
        raise ValueError(f"chord label {label!r} is not N, maj or min: outside the chord_frames vocabulary")
    return 1 + 2 * int(root) + (triad == _MIN)


def frame_classes(times: np.ndarray, target: ChordSegments) -> np.ndarray:
    """int64 class of each frame at ``times``: the segment ``start <= t < end`` it falls in, ``N`` (0) in gaps and
    outside the annotation."""
    y = np.zeros(len(times), dtype=np.int64)
    if not len(target.labels) or not len(times):
        return y
    starts, ends = np.asarray(target.starts), np.asarray(target.ends)
    k = np.searchsorted(starts, times, side="right") - 1
    inside = (k >= 0) & (times < ends[np.clip(k, 0, None)])
    classes = np.asarray([chord_index(label) for label in target.labels], dtype=np.int64)
    y[inside] = classes[k[inside]]
    return y


def frames_to_segments(times: np.ndarray, classes: np.ndarray, frame_rate: float,
                       labels: Sequence[str] = CHORD_VOCABULARY) -> tuple[np.ndarray, list[str]]:
    """Merge consecutive frames of equal class into segments: (``[n, 2]`` intervals, labels).

    A frame at time ``t`` stands for the audio around it (centred frames): segment boundaries fall half-way
    between the times of two frames of different class, the first segment starts at 0 and the last one ends
    half a frame period after the last frame (the end of the encoded audio, see :func:`encoded_end`).
    """
    times, classes = np.asarray(times, dtype=np.float64), np.asarray(classes)
    if not len(times):
        return np.zeros((0, 2)), []
    change = np.flatnonzero(classes[1:] != classes[:-1]) + 1  # first frame of each new segment
    bounds = np.concatenate([[0.0], (times[change - 1] + times[change]) / 2.0, [encoded_end(times, frame_rate)]])
    first = np.concatenate([[0], change])
    return np.stack([bounds[:-1], bounds[1:]], 1), [labels[int(c)] for c in classes[first]]


def encoded_end(times: np.ndarray, frame_rate: float) -> float:
    """Where the decoded segments of a track end: half a frame period after its last frame."""
    return float(times[-1]) + 0.5 / float(frame_rate)


def cut_reference(target: ChordSegments, end: float) -> tuple[np.ndarray, list[str]]:
    """The reference segments inside ``[0, end]`` (the encoded audio): later ones dropped, the last one cut."""
    intervals = target.intervals()
    keep = intervals[:, 0] < end
    intervals = intervals[keep].copy()
    intervals[:, 1] = np.minimum(intervals[:, 1], end)
    return intervals, [label for label, k in zip(target.labels, keep) if k]


def chord_comparisons(ref_intervals: np.ndarray, ref_labels: Sequence[str], est_intervals: np.ndarray,
                      est_labels: Sequence[str], metrics: Sequence[str] = CHORD_METRICS
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(durations, {metric: comparisons}) of one track, preprocessed exactly as ``mir_eval.chord.evaluate`` does:
    estimates padded with ``N`` or cut to the reference span, then both segmentations merged."""
    est_intervals, est_labels = mir_eval.util.adjust_intervals(
        np.asarray(est_intervals, dtype=np.float64), list(est_labels), ref_intervals.min(), ref_intervals.max(),
        mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD)
    intervals, ref, est = mir_eval.util.merge_labeled_intervals(ref_intervals, list(ref_labels), est_intervals,
                                                                est_labels)
    durations = mir_eval.util.intervals_to_durations(intervals)
    return durations, {m: _COMPARE[m](ref, est) for m in metrics}


def track_scores(ref_intervals: np.ndarray, ref_labels: Sequence[str], est_intervals: np.ndarray,
                 est_labels: Sequence[str], metrics: Sequence[str] = CHORD_METRICS
                 ) -> dict[str, tuple[float, float, float]]:
    """Per metric (score, correct duration, scorable duration) of one track; the score is
    ``mir_eval.chord.weighted_accuracy``, so it equals ``mir_eval.chord.evaluate``'s."""
    durations, comparisons = chord_comparisons(ref_intervals, ref_labels, est_intervals, est_labels, metrics)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no scorable chord: mir_eval warns and returns 0
        for m, c in comparisons.items():
            valid = c >= 0
            out[m] = (float(mir_eval.chord.weighted_accuracy(c, durations)),
                      float(np.sum(c[valid] * durations[valid])), float(np.sum(durations[valid])))
    return out


def pooled_scores(references: Sequence[tuple[np.ndarray, list[str]]],
                  estimates: Sequence[tuple[np.ndarray, list[str]]],
                  metrics: Sequence[str] = CHORD_METRICS) -> dict[str, float]:
    """Each metric pooled over tracks by duration: total correct duration / total scorable duration (MIREX's
    weighted chord symbol recall), so a long track counts for more than a short one."""
    correct = dict.fromkeys(metrics, 0.0)
    total = dict.fromkeys(metrics, 0.0)
    for (ref_iv, ref_lab), (est_iv, est_lab) in zip(references, estimates):
        for m, (_, c, t) in track_scores(ref_iv, ref_lab, est_iv, est_lab, metrics).items():
            correct[m] += c
            total[m] += t
    return {m: correct[m] / total[m] if total[m] > 0 else 0.0 for m in metrics}


class ChordEvaluator:
    """Scores every head of a frame-level chord task (the :class:`~benchmark.evaluation.Evaluator` protocol).

    Per head and track: argmax class per frame (frames in time order), merged into segments
    (:func:`frames_to_segments`), scored against the reference cut to the encoded audio (:func:`cut_reference`),
    pooled over the split's tracks by duration (:func:`pooled_scores`). A track with no frame or no reference
    segment inside its audio is left out (there is nothing to score); a split with none is refused when built.
    Non-finite outputs are refused (:class:`NonFiniteChordScoresError`), naming the track: an argmax over NaN
    would be scored as if the probe had chosen it.
    """

    primary = "majmin"

    def __init__(self, layout: "FrameLayout", targets: Sequence[ChordSegments], frame_rate: float,
                 labels: Sequence[str] = CHORD_VOCABULARY, track_ids: Sequence[str] | None = None,
                 cache_dir: Path | str | None = None) -> None:
        if track_ids is not None and len(track_ids) != len(targets):
            raise ValueError(f"{len(track_ids)} track ids for {len(targets)} targets")
        self.layout, self.frame_rate, self.labels = layout, float(frame_rate), list(labels)
        self.track_ids = [str(t) for t in track_ids] if track_ids is not None else [
            f"#{i} of the split" for i in range(len(targets))]
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.tracks: list[int] = []
        self.references: list[tuple[np.ndarray, list[str]]] = []
        for i, target in enumerate(targets):
            times = layout.track_times(i)
            if not len(times):
                continue
            intervals, ref_labels = cut_reference(target, encoded_end(times, self.frame_rate))
            if len(ref_labels):
                self.tracks.append(i)
                self.references.append((intervals, ref_labels))
        if not self.tracks:
            raise ValueError("no track of this split has an annotated chord inside its audio: nothing to score")

    def decode(self, row_classes: np.ndarray) -> list[tuple[np.ndarray, list[str]]]:
        """Estimated segments of every scored track from one head's ``[rows]`` argmax classes."""
        return [frames_to_segments(self.layout.track_times(i), row_classes[self.layout.track_rows[i]],
                                   self.frame_rate, self.labels) for i in self.tracks]

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        scores = row_scores.detach().cpu()
        finite = torch.isfinite(scores).all(dim=-1)  # [heads, rows]
        if not bool(finite.all()):
            h, row = (int(x) for x in torch.nonzero(~finite)[0])
            track = self.track_ids[int(self.layout.row_track[row])]
            where = f"delete the feature cache entry {self.cache_dir}" if self.cache_dir else "delete the cache"
            raise NonFiniteChordScoresError(
                f"probe head {h} gives NaN or infinite chord scores on track {track} ({int((~finite[h]).sum())} "
                f"frames of the split): lower probe.lr if the probe diverged, or {where} if the features are "
                f"non-finite")
        classes = scores.argmax(dim=-1).numpy()  # [heads, rows]
        return [pooled_scores(self.references, self.decode(classes[h])) for h in range(classes.shape[0])]


def constant_chance(train_targets: Sequence[ChordSegments], evaluator: ChordEvaluator,
                    primary: str = "majmin") -> tuple[float, str]:
    """(test score, label) of the best constant chord on train: the label that, held over the whole of every
    training track, scores best on ``primary`` (pooled by duration), then scored the same way on ``evaluator``'s
    split (held over each track's encoded audio)."""
    references = [(t.intervals(), list(t.labels)) for t in train_targets if len(t.labels)]

    def constant(refs: Sequence[tuple[np.ndarray, list[str]]], label: str) -> float:
        estimates = [(np.array([[iv.min(), iv.max()]]), [label]) for iv, _ in refs]
        return pooled_scores(refs, estimates, (primary,))[primary]

    best = max(evaluator.labels, key=lambda label: constant(references, label)) if references else "N"
    return constant(evaluator.references, best), best


class ChordFramesKind(FrameKind):
    """Chord recognition per frame: 25 classes (N + 12 roots x {maj, min}), scored with mir_eval.chord on
    decoded segments (majmin primary, root, mirex), pooled by duration."""

    name = "chord_frames"
    loss = CROSS_ENTROPY
    primary = Metric("majmin")
    metrics = (primary, Metric("root"), Metric("mirex"))
    labels: tuple[str, ...] = CHORD_VOCABULARY

    def num_outputs(self, task: "Task") -> int:
        """One output per class of the vocabulary, whatever the task lists (it must list the same)."""
        return len(self.labels)

    def encode_targets(self, task: "Task", tracks: list["Track"]) -> list[ChordSegments]:
        """The tracks' :class:`~benchmark.targets.ChordSegments`, refusing another target type, a task whose
        labels are not the vocabulary in order, and a chord label outside it."""
        if list(task.labels) != list(self.labels):
            raise ValueError(f"task {task.name}: a chord_frames task lists the classes of "
                             f"benchmark.targets.CHORD_VOCABULARY, in order; got {list(task.labels)[:5]}...")
        for t in tracks:
            if not isinstance(t.target, ChordSegments):
                raise TypeError(f"task {task.name}: track {t.track_id} has target {type(t.target).__name__}; "
                                f"chord_frames tasks give ChordSegments")
            for label in t.target.labels:
                chord_index(label)  # ValueError outside the vocabulary
        return [t.target for t in tracks]

    def frame_targets(self, layout: "FrameLayout", targets: Sequence[ChordSegments],
                      frame_rate: float) -> np.ndarray:
        """int64 ``[rows]``: each frame's chord class (:func:`frame_classes`), in row order."""
        y = np.zeros(len(layout.row_track), dtype=np.int64)
        for i, target in enumerate(targets):
            rows = layout.track_rows[i]
            y[rows] = frame_classes(layout.row_time[rows], target)
        return y

    def build_evaluator(self, task: "Task", layout: "FrameLayout", targets: Sequence[ChordSegments],
                        frame_rate: float, task_config: Mapping[str, Any], track_ids: Sequence[str] | None = None,
                        cache_dir: Path | str | None = None) -> ChordEvaluator:
        return ChordEvaluator(layout, targets, frame_rate, self.labels, track_ids=track_ids, cache_dir=cache_dir)

    def chance(self, train_targets: Sequence[ChordSegments], evaluator: ChordEvaluator) -> tuple[float, str]:
        score, label = constant_chance(train_targets, evaluator, self.primary.name)
        return score, f"the constant chord {label} (the best on train)"

    def describe_targets(self, train_y: np.ndarray) -> str:
        return f"{len(np.unique(train_y))} of {len(self.labels)} chord classes present"


CHORD_FRAMES = register_kind(ChordFramesKind())
