"""Metrics of the clip-level task kinds, computed by the reference implementations (scikit-learn, mir_eval).

Which metrics a task type reports, which one is primary and in which direction it is better are declared by its
kind (:mod:`benchmark.kinds`); the arithmetic is here, once, with the handling of its awkward cases (such as a tag
with no positive example in a split). The functions are thin on purpose: scores must be comparable with
published numbers, and those were computed with scikit-learn and mir_eval, so those libraries do the arithmetic
and this module only validates inputs, decodes predictions and chooses what to average.

:func:`compute_metrics`, :func:`chance_score`, :func:`higher_is_better` and ``PRIMARY_METRIC`` take a task type or
metric name and ask the kind registry (:mod:`benchmark.kinds.base`, imported when called: importing it registers
the built-in kinds, which import the arithmetic below).
"""
from __future__ import annotations

import functools
import logging
import math
from typing import Sequence

import mir_eval
import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, balanced_accuracy_score, r2_score, roc_auc_score

log = logging.getLogger(__name__)

# Sets of unscorable tags already reported: a validation split is scored every epoch, and one warning naming the
# tags is useful while hundreds of identical ones are noise.
_WARNED_UNSCORABLE: set[tuple[str, ...]] = set()


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better, as the kind that reports it declares
    (:func:`benchmark.kinds.metric`): per-target regression scores (``r2_<label>``) follow ``r2``, names ending in
    ``loss`` are lower-is-better, and an unknown name raises ``KeyError`` rather than guessing a direction.
    """
    from benchmark.kinds.base import metric as declared

    return declared(metric).higher_is_better


def __getattr__(name: str):
    if name == "PRIMARY_METRIC":
        # The primary metric of each kind scored from arrays (the clip-level kinds), read from the registry on
        # access so that it can never disagree with what selection uses.
        from benchmark.kinds.base import get_kind, kind_names

        return {k: get_kind(k).primary.name for k in kind_names() if get_kind(k).level == "clip"}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _clip_kind(task_type: str):
    from benchmark.kinds.base import get_kind

    kind = get_kind(task_type)  # ValueError: unknown task type
    if kind.level != "clip":
        raise ValueError(f"task type {task_type!r} is {kind.level}-level: its evaluator scores it, not arrays of "
                         f"one prediction per track")
    return kind


def compute_metrics(task_type: str, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
    """All metrics of a clip-level task type for one split (what its kind's ``compute_metrics`` returns).

    Args:
        task_type: ``multiclass``, ``multilabel``, ``regression``, ``key`` or another registered clip-level kind.
        y_true: class indices ``[N]`` (multiclass, key), multi-hot ``{0, 1}`` ``[N, C]`` (multilabel) or targets
            ``[N, T]`` (regression).
        y_score: ``[N, C]`` scores (probabilities or logits; only their order per row or per column matters) for
            the classification types, predictions ``[N, T]`` for regression.
        labels: class / tag / target names, in the column order of ``y_score``. For ``key`` they are mir_eval key
            strings (``"C major"``, ``"Db minor"``).

    Returns:
        Metric name to value; the kind's ``primary`` names the headline one.

    Raises:
        ValueError: on an unknown task type, mismatched shapes, non-finite values or out-of-range labels.
    """
    return _clip_kind(task_type).compute_metrics(y_true, y_score, labels)


# ----------------------------------------------------------------------------------------------------------------
# Input validation


def _check_finite(name: str, a: np.ndarray) -> None:
    """Reject NaN / inf: sklearn would either raise a less specific error or, worse, return a plausible number."""
    if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.size and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); a diverged probe or a bad cache entry?")


def _check_nonempty(y_true: np.ndarray) -> None:
    if y_true.shape[0] == 0:
        raise ValueError("cannot compute metrics on an empty split (0 examples)")


def _class_indices(y_true: np.ndarray, num_classes: int) -> np.ndarray:
    """Validate integer class targets ``[N]`` in ``[0, num_classes)`` and return them as int64."""
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be class indices of shape [N], got shape {y_true.shape}")
    _check_finite("y_true", y_true)
    as_int = y_true.astype(np.int64)
    if not np.array_equal(as_int, y_true):
        raise ValueError("y_true must hold integer class indices")
    if as_int.size and (as_int.min() < 0 or as_int.max() >= num_classes):
        raise ValueError(f"y_true has class indices outside [0, {num_classes}): min {as_int.min()}, max {as_int.max()}")
    return as_int


def _scores_2d(y_score: np.ndarray, n: int, labels: Sequence[str], what: str = "y_score") -> np.ndarray:
    """Validate ``[N, C]`` scores against ``N`` examples and ``C = len(labels)`` columns."""
    if y_score.ndim != 2:
        raise ValueError(f"{what} must have shape [N, C], got shape {y_score.shape}")
    if y_score.shape[0] != n:
        raise ValueError(f"{what} has {y_score.shape[0]} rows but y_true has {n} examples")
    if y_score.shape[1] != len(labels):
        raise ValueError(f"{what} has {y_score.shape[1]} columns but there are {len(labels)} labels")
    _check_finite(what, y_score)
    return y_score


# ----------------------------------------------------------------------------------------------------------------
# The metrics of each clip-level kind (see benchmark.kinds.clip)


def multiclass_scores(y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Top-1 accuracy of the argmax of the scores (ties go to the lowest index, as ``np.argmax`` does)."""
    _check_nonempty(y_true)
    y = _class_indices(y_true, len(labels))
    scores = _scores_2d(y_score, y.shape[0], labels)
    pred = scores.argmax(axis=1)
    return {"accuracy": float(accuracy_score(y, pred))}


def balanced_multiclass_scores(y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Class-balanced accuracy (the mean of per-class recalls, scikit-learn's ``balanced_accuracy_score``) and
    plain accuracy of the argmax. Balanced accuracy is chance (1 / classes) for any constant prediction, however
    unequal the classes, so a probe cannot score by predicting the largest one."""
    _check_nonempty(y_true)
    y = _class_indices(y_true, len(labels))
    pred = _scores_2d(y_score, y.shape[0], labels).argmax(axis=1)
    return {"balanced_accuracy": float(balanced_accuracy_score(y, pred)), "accuracy": float(accuracy_score(y, pred))}


def multilabel_scores(y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Macro ROC-AUC and macro average precision over the tags that can be scored in this split.

    A tag whose column in ``y_true`` is all 0 (or all 1) has no ROC curve and an undefined AP; sklearn would raise
    (ROC-AUC) or silently count it as 0 (AP). Both would make the score depend on how the split happened to fall,
    so such tags are left out of *both* macros (the same tag set for both), named in a warning, and the number of
    tags that were scored is reported as ``tags_scored``. With no scorable tag at all the macros are NaN.
    """
    _check_nonempty(y_true)
    if y_true.ndim != 2:
        raise ValueError(f"multilabel y_true must be multi-hot of shape [N, C], got shape {y_true.shape}")
    _check_finite("y_true", y_true)
    if not np.all((y_true == 0) | (y_true == 1)):
        raise ValueError("multilabel y_true must contain only 0 and 1")
    scores = _scores_2d(y_score, y_true.shape[0], labels)
    if y_true.shape[1] != len(labels):
        raise ValueError(f"y_true has {y_true.shape[1]} columns but there are {len(labels)} labels")
    y = y_true.astype(np.int64)
    positives = y.sum(axis=0)
    scorable = (positives > 0) & (positives < y.shape[0])
    if not scorable.all():
        unscorable = tuple(lab for lab, ok in zip(labels, scorable) if not ok)
        if unscorable not in _WARNED_UNSCORABLE:
            _WARNED_UNSCORABLE.add(unscorable)
            log.warning(
                "%d of %d tags have no positive or no negative example in this split and are left out of the "
                "macro ROC-AUC / AP: %s",
                len(unscorable),
                len(labels),
                ", ".join(unscorable),
            )
    n_scored = int(scorable.sum())
    if n_scored == 0:
        return {"roc_auc": math.nan, "average_precision": math.nan, "tags_scored": 0.0}
    y_s, scores_s = y[:, scorable], scores[:, scorable]
    return {
        "roc_auc": float(roc_auc_score(y_s, scores_s, average="macro")),
        "average_precision": float(average_precision_score(y_s, scores_s, average="macro")),
        "tags_scored": float(n_scored),
    }


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Coefficient of determination per target (``r2_<label>``) and its unweighted mean over targets (``r2``).

    Targets are scored separately (sklearn's ``multioutput="raw_values"``) so that one well-predicted target
    cannot hide a badly predicted one; ``r2`` is their plain mean, equal to sklearn's ``uniform_average``.
    A ``[N]`` array is taken as a single target.
    """
    _check_nonempty(y_true)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.ndim != 2:
        raise ValueError(f"regression y_true must have shape [N, T], got shape {y_true.shape}")
    _check_finite("y_true", y_true)
    y_pred = _scores_2d(y_pred, y_true.shape[0], labels, what="y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    if y_true.shape[0] < 2:
        raise ValueError("R2 needs at least 2 examples")
    per_target = r2_score(y_true, y_pred, multioutput="raw_values")
    out = {"r2": float(np.mean(per_target))}
    for label, value in zip(labels, per_target):
        out[f"r2_{label}"] = float(value)
    return out


@functools.lru_cache(maxsize=16)
def key_weight_matrix(labels: tuple[str, ...]) -> np.ndarray:
    """``W[i, j] = mir_eval.key.weighted_score(labels[i], labels[j])``: the score of predicting ``j`` for ``i``.

    For the 24 major/minor keys and a reference key ``R`` (the row), mir_eval gives every estimate (the column)
    one of these weights::

        1.0  the same key: same tonic (enharmonics equal, "C# major" == "Db major") and same mode   (1 estimate)
        0.5  the estimate's tonic is a perfect fifth *above* R's, same mode ("C major" -> "G major")  (1 estimate)
             (a fifth below, "C major" -> "F major", scores 0: the rule is not symmetric)
        0.3  the relative key: same key signature, other mode
             ("C major" -> "A minor", "A minor" -> "C major")                                          (1 estimate)
        0.2  the parallel key: same tonic, other mode ("C major" -> "C minor")                         (1 estimate)
        0.0  all of the 20 others

    so each row has exactly one 1.0, one 0.5, one 0.3, one 0.2 and twenty 0.0. The values are not hard-coded here:
    they are computed by calling mir_eval once per pair, so the suite scores exactly what mir_eval scores.
    """
    for lab in labels:
        mir_eval.key.validate_key(lab)
    n = len(labels)
    w = np.empty((n, n), dtype=np.float64)
    for i, ref in enumerate(labels):
        for j, est in enumerate(labels):
            w[i, j] = mir_eval.key.weighted_score(ref, est)
    w.setflags(write=False)
    return w


def key_scores(y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
    """MIREX weighted key score (mean of :func:`mir_eval.key.weighted_score`) and exact-key accuracy.

    The estimate is the argmax key. Accuracy counts an estimate as right when mir_eval scores it 1.0, i.e. the same
    key up to enharmonic spelling, so it agrees with the weighted score's notion of "same key".
    """
    _check_nonempty(y_true)
    y = _class_indices(y_true, len(labels))
    scores = _scores_2d(y_score, y.shape[0], labels)
    try:
        w = key_weight_matrix(tuple(labels))
    except ValueError as exc:
        raise ValueError(f"key labels must be mir_eval key strings such as 'C major' or 'Db minor': {exc}") from exc
    per_item = w[y, scores.argmax(axis=1)]
    return {"weighted_score": float(per_item.mean()), "accuracy": float(np.mean(per_item == 1.0))}


# ----------------------------------------------------------------------------------------------------------------
# MARBLE v1's per-song key ensemble (the key kind with task.ensemble=marble; benchmark.kinds.clip.KeyEnsembleKind)

# MARBLE's strategies, in its order: the order breaks ties when the best one is chosen (the earlier wins).
KEY_ENSEMBLE_STRATEGIES: tuple[str, ...] = ("vote", "max", "gmean", "mean")


def _window_groups(window_logits: np.ndarray, window_track: np.ndarray, num_tracks: int) -> np.ndarray:
    """Validate ``[W, C]`` window logits and their track index ``[W]``; return the windows per track ``[T]``.

    Every track needs a window: a song without one has no prediction under any strategy, and inventing one (the
    zeros an empty mean would give) would score a class nobody predicted.
    """
    if window_logits.ndim != 2:
        raise ValueError(f"window logits must have shape [W, C], got shape {window_logits.shape}")
    _check_finite("window logits", window_logits)
    track = np.asarray(window_track)
    if track.shape != (window_logits.shape[0],) or not np.issubdtype(track.dtype, np.integer):
        raise ValueError(f"window_track must hold one integer track index per window ({window_logits.shape[0]}), "
                         f"got dtype {track.dtype} and shape {track.shape}")
    if track.size and (track.min() < 0 or track.max() >= num_tracks):
        raise ValueError(f"window_track has indices outside [0, {num_tracks})")
    counts = np.bincount(track, minlength=num_tracks)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} track(s) have no window, e.g. track "
                         f"{int(np.flatnonzero(counts == 0)[0])}: every song needs at least one clip")
    return counts


def key_ensemble_predictions(window_logits: np.ndarray, window_track: np.ndarray,
                             num_tracks: int) -> dict[str, np.ndarray]:
    """Each song's key (class index ``[T]``) under each of MARBLE v1's strategies, from its windows' logits.

    ``vote``: the most frequent window argmax, ties to the lowest class index (what ``scipy.stats.mode`` returns,
    and ``np.argmax`` returns the first of tied counts). ``max``: the argmax of each class's largest logit over the
    windows. ``gmean``: the argmax of the mean logits (the geometric mean of the softmax probabilities, up to a
    per-song factor that does not change the argmax). ``mean``: the argmax of the mean softmax probabilities, the
    suite's default aggregation. Computed in float64 from the probe's float32 logits.
    """
    logits = np.asarray(window_logits, dtype=np.float64)
    counts = _window_groups(logits, window_track, num_tracks)
    track = np.asarray(window_track, dtype=np.int64)
    num_classes = logits.shape[1]
    votes = np.zeros((num_tracks, num_classes))
    np.add.at(votes, (track, logits.argmax(axis=1)), 1.0)
    largest = np.full((num_tracks, num_classes), -np.inf)
    np.maximum.at(largest, track, logits)
    logit_sums = np.zeros((num_tracks, num_classes))
    np.add.at(logit_sums, track, logits)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    prob_sums = np.zeros((num_tracks, num_classes))
    np.add.at(prob_sums, track, probs)
    return {
        "vote": votes.argmax(axis=1),
        "max": largest.argmax(axis=1),
        "gmean": (logit_sums / counts[:, None]).argmax(axis=1),
        "mean": (prob_sums / counts[:, None]).argmax(axis=1),
    }


def key_ensemble_scores(y_true: np.ndarray, window_logits: np.ndarray, window_track: np.ndarray,
                        labels: list[str]) -> dict[str, float]:
    """``ensemble_<strategy>``: the mean over songs of :func:`mir_eval.key.weighted_score` of each strategy's key.

    ``y_true`` is one class index per song (``[T]``), ``window_logits`` ``[W, C]`` and ``window_track`` ``[W]``
    the song of each window. Also ``weighted_score`` and ``accuracy`` of the ``mean`` strategy, which is how the
    suite aggregates windows by default, so the field's columns exist for either setting.
    """
    _check_nonempty(y_true)
    y = _class_indices(y_true, len(labels))
    logits = np.asarray(window_logits)
    if logits.ndim == 2 and logits.shape[1] != len(labels):
        raise ValueError(f"window logits have {logits.shape[1]} columns but there are {len(labels)} labels")
    w = key_weight_matrix(tuple(labels))
    preds = key_ensemble_predictions(logits, window_track, y.shape[0])
    out = {f"ensemble_{name}": float(w[y, preds[name]].mean()) for name in KEY_ENSEMBLE_STRATEGIES}
    per_song = w[y, preds["mean"]]
    out.update(weighted_score=float(per_song.mean()), accuracy=float(np.mean(per_song == 1.0)))
    return out


def best_key_ensemble(scores: dict[str, float]) -> str:
    """The strategy with the highest ``ensemble_<strategy>`` score, MARBLE's rule: walking
    :data:`KEY_ENSEMBLE_STRATEGIES` in order, a strategy replaces the best so far only when strictly higher, so a
    tie keeps the earlier one (and a NaN never replaces; with no number at all the first strategy is kept)."""
    best, best_score = KEY_ENSEMBLE_STRATEGIES[0], -math.inf
    for name in KEY_ENSEMBLE_STRATEGIES:
        if scores[f"ensemble_{name}"] > best_score:
            best, best_score = name, scores[f"ensemble_{name}"]
    return best


def chance_score(task_type: str, train_targets: np.ndarray, test_targets: np.ndarray, labels: list[str]) -> float:
    """Test score of the best *constant* prediction fitted on the training split: the floor a probe must beat.

    Classes (multiclass, key): the single class whose constant prediction scores best on train (the majority
    class for accuracy; for the key weighted score a near-by key can score better). Tags and regression targets:
    the training mean. Scored with :func:`compute_metrics`, like every real prediction. (The kind's ``chance``.)
    """
    return _clip_kind(task_type).chance(train_targets, test_targets, labels)
