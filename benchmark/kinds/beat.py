"""The ``beat`` kind: beat and downbeat tracking, a frame-level kind (a target per encoder frame).

The algorithms (frame targets, the frame grid, decoding, mir_eval scoring, the metronome floor) live in
:mod:`benchmark.frame_level`, which this kind only routes to; what the kind itself declares is what the rest of
the pipeline must agree on: two sigmoid outputs (beat, downbeat) trained with binary cross-entropy, and its
metrics, all higher-is-better, with the beat F-measure primary: by default the mean over tracks (``f_measure``),
or with ``task.f_aggregation=pooled`` the F of matches pooled over tracks (``f_measure_pooled``, MARBLE v1's
metric); the evaluator a task gets carries that choice (``evaluator.primary``, what the runner, probe and sweep
read), while :attr:`BeatKind.primary` states the default. ``frame_level`` is imported inside the methods
(it does not import this module: dependencies go one way), so a lookup of the registry does not load the decoders.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from benchmark.kinds.base import FrameKind, Metric, register_kind
from benchmark.kinds.losses import BCE

if TYPE_CHECKING:
    from benchmark.frame_level import BeatEvaluator, FrameLayout
    from benchmark.targets import BeatTarget
    from benchmark.tasks.base import Task, Track


class BeatKind(FrameKind):
    """Beats and downbeats: per-frame ``[beat, downbeat]`` targets, decoded and scored per track by mir_eval."""

    name = "beat"
    level = "frame"
    loss = BCE
    primary = Metric("f_measure")  # beats, 70 ms tolerance, mean over tracks; the default of task.f_aggregation
    # f_measure_pooled (range [0, 1]): beat matches summed over a split's tracks, then one F (MARBLE v1)
    metrics = (primary, Metric("cmlt"), Metric("amlt"), Metric("p_score"), Metric("downbeat_f_measure"),
               Metric("f_measure_pooled"))
    outputs = ("beat", "downbeat")

    def num_outputs(self, task: "Task") -> int:
        """Two activations per frame, whatever the task calls them: the evaluator reads beat then downbeat."""
        return len(self.outputs)

    def encode_targets(self, task: "Task", tracks: list["Track"]) -> list["BeatTarget"]:
        """The tracks' :class:`~benchmark.frame_level.BeatTarget` annotations (refusing any other target)."""
        from benchmark.frame_level import BeatTarget

        for t in tracks:
            if not isinstance(t.target, BeatTarget):
                raise TypeError(f"task {task.name}: track {t.track_id} has target {type(t.target).__name__}; "
                                f"frame-level beat tasks give a BeatTarget")
        return [t.target for t in tracks]

    def frame_targets(self, layout: "FrameLayout", targets: Sequence["BeatTarget"],
                      frame_rate: float) -> np.ndarray:
        """``[rows, 2]`` training targets of a split's frames (:func:`benchmark.frame_level.split_targets`)."""
        from benchmark.frame_level import split_targets

        return split_targets(layout, targets, frame_rate)

    def build_evaluator(self, task: "Task", layout: "FrameLayout", targets: Sequence["BeatTarget"],
                        frame_rate: float, task_config: Mapping[str, Any], track_ids: Sequence[str] | None = None,
                        cache_dir: Path | str | None = None) -> "BeatEvaluator":
        """Decodes and scores every head on one split (:class:`benchmark.frame_level.BeatEvaluator`), with the
        decoder (``task.decoder`` ...), trimming (``task.eval_skip_seconds``) and primary F-measure
        (``task.f_aggregation``: ``mean`` or ``pooled``) of the task's config."""
        from benchmark.frame_level import BeatEvaluator, DecoderConfig

        decoder = DecoderConfig.from_task_config(dict(task_config))
        skip = float(task_config.get("eval_skip_seconds") or 0.0)
        return BeatEvaluator(layout, targets, frame_rate, decoder, skip, track_ids=track_ids, cache_dir=cache_dir,
                             f_aggregation=str(task_config.get("f_aggregation") or "mean"))

    def chance(self, train_targets: Sequence["BeatTarget"], evaluator: "BeatEvaluator") -> tuple[float, str]:
        """A metronome at the median training tempo (:func:`benchmark.frame_level.metronome_chance`): the floor
        a probe must beat."""
        from benchmark.frame_level import metronome_chance

        score, tempo = metronome_chance(train_targets, evaluator)
        return score, f"a metronome at the median training tempo ({tempo:.1f} BPM)"

    def describe_targets(self, train_y: np.ndarray) -> str:
        return f"{int((train_y[:, 0] == 1).sum())} beat frames"


BEAT = register_kind(BeatKind())
