"""Task kinds: what ``Task.task_type`` means to the pipeline, one registered object per kind.

A kind owns its target encoding, its loss (and with it the output activation), how its evaluator is built, its
metrics with their direction, its primary metric and its chance level. The built-in kinds:

================  =====  ==========================  ==================  ====================================
kind              level  loss -> activation          primary             chance
================  =====  ==========================  ==================  ====================================
``multiclass``    clip   cross_entropy -> softmax    accuracy            best constant class on train
``multilabel``    clip   bce -> sigmoid              roc_auc             training tag rates
``regression``    clip   mse (z-scored) -> identity  r2                  training mean
``key``           clip   cross_entropy -> softmax    weighted_score      best constant key on train
``beat``          frame  bce -> sigmoid (2 outputs)  f_measure           metronome at the median train tempo
``chord_frames``  frame  cross_entropy -> softmax    majmin              best constant chord on train
================  =====  ==========================  ==================  ====================================

``key`` has an unregistered variant, :class:`benchmark.kinds.clip.KeyEnsembleKind` (loss
``cross_entropy_logits``, primary ``ensemble_best`` on valid and ``ensemble_val_select`` on test): MARBLE v1's
per-song ensemble, which ``giantsteps_key`` uses with ``task.ensemble=marble``.

(:mod:`benchmark.kinds.clip`, :mod:`benchmark.kinds.beat` and :mod:`benchmark.kinds.chords`; losses in
:mod:`benchmark.kinds.losses`.) Frame-level kinds subclass :class:`FrameKind`, the interface the generic
frame-level data path (:func:`benchmark.frame_level.frame_level_data`) calls.

Why: see :mod:`benchmark.kinds.base`. Selection and early stopping read the primary metric's direction from the
registry (:func:`metric`), so a kind whose primary metric is an error is minimised, not maximised.

``get_kind(task.task_type)`` is how the pipeline finds a kind; the first lookup imports the kind modules of this
package. This package's own import stays light (only the registry), so that tasks can name their kind.
"""
from __future__ import annotations

from benchmark.kinds.base import (LEVELS, FrameKind, Metric, TaskKind, get_kind, kind_names, metric, register_kind,
                                  unregister_kind)

__all__ = ["LEVELS", "FrameKind", "Metric", "TaskKind", "get_kind", "kind_names", "metric", "register_kind",
           "unregister_kind"]
