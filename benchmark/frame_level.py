"""Frame-level tasks: per-frame features (shared by every frame-level kind), and beat tracking's targets and
decoded evaluation.

The runner calls :func:`frame_level_data` when ``task.level == "frame"`` and trains the same batched layer sweep
as for clip-level tasks, with ROWS = encoder FRAMES. Step 1 below is generic; steps 2 and 3 describe the ``beat``
kind, whose functions live here. Other frame-level kinds (``chord_frames``, :mod:`benchmark.kinds.chords`) bring
their own targets and evaluators through the :class:`~benchmark.kinds.base.FrameKind` interface, which
:func:`frame_level_data` calls for everything that depends on what is predicted per frame:

1. **Features** (cached): every track is decoded whole (never cropped), cut into non-overlapping windows of
   ``spec.window`` seconds (default: the encoder's context) and the last partial window is kept when it has at
   least ``encoder.min_samples`` samples (a shorter tail, at most the receptive field, e.g. 17 ms for MERT, has no
   frame and is dropped). Equal-length windows are batched without padding; every valid frame of the requested
   hidden states (only those: ``layers``) is one float16 row of the split's memory-mapped file, streamed to disk
   (:mod:`benchmark.extract` with ``Pooling(mode="none")``), so memory does not grow with the dataset. The cache
   key is the clip-level key with ``pooling: none`` and the ``layers``.

   *Time of a frame*: frame ``j`` of window ``w`` is placed at ``w * window + j / frame_rate``. This is exact for
   centred-frame encoders (CREPE, the hand-crafted baselines: frame ``j`` is centred at ``j * hop``); for
   MERT/music2vec the conv stack's frame ``j`` covers samples ``[j*320, j*320+400)`` (its centre is 2.7 ms after
   ``j / 75``), and a 5 s window yields 374 frames for 375 frame periods, so the last 13 ms of each window have
   no frame. Both errors are under a frame and far below the 70 ms tolerance of the beat F-measure.

2. **Targets** (beats): per frame ``[beat, downbeat]``: 1 at the frame nearest each annotated time, 0.5 on the
   frames on either side (see :func:`frame_targets`).

3. **Evaluation** (beats, :class:`BeatEvaluator`): per head and track, the frame activations are put on a uniform
   grid at the encoder's frame rate, beats are decoded (:mod:`benchmark.beat_decode`: the tempo/phase DBN by default,
   ``task.decoder=peaks`` for peak picking), downbeats are chosen among them, and mir_eval scores them.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import mir_eval
import numpy as np
import torch
from rich.console import Console

from benchmark.audio import WindowSpec
from benchmark.beat_decode import (
    DBNConfig, NonFiniteActivationError, dbn_beat_frames, downbeats_from_beats, peak_beat_frames,
)
from benchmark.cache import FeatureCache
from benchmark.errors import ConfigError
from benchmark.distributed import SINGLE_PROCESS, Ranks
from benchmark.encoders.base import Encoder
from benchmark.extract import Pooling, drop_featureless, load_or_extract
from benchmark.feature_store import extraction_settings, feature_cache
from benchmark.kinds.base import FrameKind
from benchmark.targets import BeatTarget
from benchmark.probe_data import ProbeData
from benchmark.schema import check_f_aggregation
from benchmark.tasks.base import SPLITS, Task, Track

BEAT_METRICS: tuple[str, ...] = ("f_measure", "cmlt", "amlt", "p_score", "downbeat_f_measure", "f_measure_pooled")
"""Metrics of a beat task; ``f_measure`` (beats, 70 ms, mean over tracks) is the primary one (selection and
headline) unless ``task.f_aggregation=pooled`` makes it ``f_measure_pooled`` (:data:`F_AGGREGATION_PRIMARY`). The
``beat`` kind (:class:`benchmark.kinds.BeatKind`) declares the same names with their direction (all
higher-is-better); this module computes them and does not import the kind, which routes to it."""
F_AGGREGATION_PRIMARY: dict[str, str] = {"mean": "f_measure", "pooled": "f_measure_pooled"}
"""The primary metric of each ``task.f_aggregation`` (its values: :data:`benchmark.schema.BEAT_F_AGGREGATIONS`)."""
F_MEASURE_WINDOW = 0.07
"""Beat F-measure tolerance in seconds (either side): mir_eval.beat.f_measure's default, and the window MARBLE v1
passes to mir_eval.util.match_events; both F-measures here use it, so they differ only in how tracks are pooled."""
DECODERS: tuple[str, ...] = ("dbn", "peaks")


# --------------------------------------------------------------------------------------------- frame layout
@dataclass
class FrameLayout:
    """Where every row (frame) of a split lies: its track and its time, plus each track's rows in time order."""

    row_track: np.ndarray  # [rows] track index
    row_time: np.ndarray  # [rows] seconds from the start of the track
    track_rows: list[np.ndarray]  # per track: row indices sorted by time

    def track_times(self, i: int) -> np.ndarray:
        return self.row_time[self.track_rows[i]]


def frame_layout(index: dict[str, Any], window_seconds: float, sample_rate: int, frame_rate: float) -> FrameLayout:
    """Rebuild the row -> (track, time) map of a frame-level split from its cache index (``windows``)."""
    records = np.asarray(index.get("windows", []), dtype=np.int64).reshape(-1, 3)
    num_tracks = len(index["track_ids"])
    rows = int(index["shape"][0])
    if int(records[:, 2].sum()) != rows:
        raise ValueError("frame-level cache index does not account for every row; delete the cache folder")
    window_start = int(round(window_seconds * sample_rate)) / sample_rate  # windows start at whole samples
    row_track = np.repeat(records[:, 0], records[:, 2])
    first = np.repeat(np.cumsum(records[:, 2]) - records[:, 2], records[:, 2])
    j = np.arange(rows) - first
    row_time = np.repeat(records[:, 1], records[:, 2]) * window_start + j / frame_rate
    order = np.lexsort((row_time, row_track))
    bounds = np.searchsorted(row_track[order], np.arange(num_tracks + 1))
    track_rows = [order[bounds[i]:bounds[i + 1]] for i in range(num_tracks)]
    return FrameLayout(row_track=row_track, row_time=row_time, track_rows=track_rows)


# ------------------------------------------------------------------------------------------------ targets
def frame_targets(times: np.ndarray, target: BeatTarget, frame_rate: float) -> np.ndarray:
    """``[frames, 2]`` (beat, downbeat) targets of one track's frames at ``times`` (ascending seconds).

    The frame nearest each annotated time gets 1 and the frame on each side of it 0.5 (never lowering a 1).
    Why widened: the annotations carry a few tens of ms of tapping jitter, and the frame grid (13-20 ms) splits
    a beat that falls between two frames; a one-frame target would call the neighbour, which is nearly as right,
    plainly wrong and leave about one positive per 25-40 frames. Half weight keeps the peak on the nearest frame
    (what the decoders look for) while giving the probe a less brittle, less imbalanced target (the widening
    of Boeck, Davies & Knees 2019). Times more than one frame period outside the frames are
    ignored (a beat after the encoded audio has no frame).
    """
    y = np.zeros((len(times), 2), dtype=np.float32)
    if len(times) == 0:
        return y
    for col, events in enumerate(target.arrays()):
        for t in events:
            i = int(np.searchsorted(times, t))
            if i == len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
                i -= 1
            if abs(times[i] - t) > 1.0 / frame_rate:
                continue
            for n in (i - 1, i + 1):
                if 0 <= n < len(times):
                    y[n, col] = max(y[n, col], 0.5)
            y[i, col] = 1.0
    return y


def split_targets(layout: FrameLayout, targets: Sequence[BeatTarget], frame_rate: float) -> np.ndarray:
    """Targets of every row of a split, in row order."""
    y = np.zeros((len(layout.row_track), 2), dtype=np.float32)
    for i, target in enumerate(targets):
        rows = layout.track_rows[i]
        y[rows] = frame_targets(layout.row_time[rows], target, frame_rate)
    return y


# ------------------------------------------------------------------------------------------------ metrics
def beat_scores(reference: np.ndarray, estimated: np.ndarray) -> dict[str, float]:
    """mir_eval's beat F-measure (70 ms), CMLt, AMLt and P-score of one track.

    The caller handles a track with no reference beats (it is not scored at all, see :class:`BeatEvaluator`).
    Empty estimates score 0 on every metric, as mir_eval defines them, without calling it (mir_eval would warn
    once per head and track every epoch); one estimated beat is passed to mir_eval, which scores continuity
    and P-score 0 (no interval), with its warning silenced for the same reason.
    """
    if len(estimated) == 0:
        return {"f_measure": 0.0, "cmlt": 0.0, "amlt": 0.0, "p_score": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, cmlt, _, amlt = mir_eval.beat.continuity(reference, estimated)
        f = mir_eval.beat.f_measure(reference, estimated, f_measure_threshold=F_MEASURE_WINDOW)
        return {"f_measure": float(f), "cmlt": float(cmlt), "amlt": float(amlt),
                "p_score": float(mir_eval.beat.p_score(reference, estimated))}


def downbeat_score(reference: np.ndarray, estimated: np.ndarray) -> float:
    """Downbeat F-measure (mir_eval's beat F-measure, 70 ms, on downbeat times); 0 for empty estimates."""
    if len(estimated) == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(reference, estimated, f_measure_threshold=F_MEASURE_WINDOW))


def beat_match_counts(reference: np.ndarray, estimated: np.ndarray) -> tuple[int, int, int]:
    """(matched beats, estimated beats, reference beats) of one track, at :data:`F_MEASURE_WINDOW`.

    The counts, not an F, because a pooled F-measure sums them over tracks before dividing
    (:func:`pooled_f_measure`). The matching is mir_eval.util.match_events itself (a maximum one-to-one matching
    within the window), called directly as MARBLE v1 does: no mir_eval.beat.validate, so a track with no
    reference or no estimated beats is counted (0 matches) rather than warned about or skipped.
    """
    reference, estimated = np.asarray(reference, dtype=float), np.asarray(estimated, dtype=float)
    matched = len(mir_eval.util.match_events(reference, estimated, F_MEASURE_WINDOW)) \
        if len(reference) and len(estimated) else 0
    return matched, len(estimated), len(reference)


def pooled_f_measure(counts: Iterable[tuple[int, int, int]]) -> float:
    """The F-measure of (matched, estimated, reference) counts summed over tracks: MARBLE v1's beat F.

    P = matched / estimated and R = matched / reference over the whole split, F = 2PR / (P + R). Unlike the mean
    of per-track F, a track weighs by its number of beats, and a track with no reference beats still costs
    precision through its estimates. Empty totals give P (or R) = 0 and F = 0, never a division by zero.
    """
    matched = estimated = reference = 0
    for m, e, r in counts:
        matched, estimated, reference = matched + m, estimated + e, reference + r
    precision = matched / estimated if estimated else 0.0
    recall = matched / reference if reference else 0.0
    return float(mir_eval.util.f_measure(precision, recall))


def f_aggregation_primary(f_aggregation: str) -> str:
    """The primary metric's name for a ``task.f_aggregation`` value (ConfigError naming the values otherwise)."""
    return F_AGGREGATION_PRIMARY[check_f_aggregation(f_aggregation)]


# ---------------------------------------------------------------------------------------------- evaluator
@dataclass(frozen=True)
class DecoderConfig:
    """How activations become beats: ``dbn`` (default) or ``peaks``, and their parameters."""

    decoder: str = "dbn"
    dbn: DBNConfig = DBNConfig()
    peak_threshold: float = 0.3
    meters: tuple[int, ...] = (2, 3, 4)

    @classmethod
    def from_task_config(cls, cfg: dict[str, Any]) -> "DecoderConfig":
        decoder = str(cfg.get("decoder") or "dbn")
        if decoder not in DECODERS:
            raise ConfigError(f"task.decoder={decoder!r}; expected one of {', '.join(DECODERS)}")
        dbn = DBNConfig(min_bpm=float(cfg.get("min_bpm", 55.0)), max_bpm=float(cfg.get("max_bpm", 215.0)),
                        transition_lambda=float(cfg.get("transition_lambda", 100.0)))
        meters = tuple(int(m) for m in (cfg.get("meters") or (2, 3, 4)))
        return cls(decoder=decoder, dbn=dbn, peak_threshold=float(cfg.get("peak_threshold", 0.3)), meters=meters)


class BeatEvaluator:
    """Scores every head of a frame-level beat task (the :class:`~benchmark.evaluation.Evaluator` protocol).

    Per head and track: the beat and downbeat activations of the track's frames are interpolated onto a uniform
    grid at ``frame_rate`` (frame ``g`` at ``g / frame_rate``), beats are decoded (DBN or peaks), downbeats are
    chosen among them, and mir_eval scores them against the annotation; each metric is the mean over tracks,
    except ``f_measure_pooled`` (:func:`pooled_f_measure`: beat matches summed over the split's tracks, then one F,
    as MARBLE v1 scores GTZAN). Which F is :attr:`primary` (selection, early stopping, the reported score) is the
    task's ``f_aggregation`` (``mean``: ``f_measure``, the default; ``pooled``: ``f_measure_pooled``): the runner,
    probe and sweep read it from here, as from every evaluator.

    Choices, and why:
      * Every metric, the primary ``f_measure`` included, uses the configured decoder every epoch (the DBN by
        default), so checkpoints and layers are selected on exactly the number that is reported. The DBN runs
        compiled and in parallel; a head whose outputs did not change since the previous call (a head that
        stopped early trains with learning rate 0) reuses its scores instead of being decoded again.
      * No 5 s trimming: mir_eval.beat.evaluate drops beats before 5 s (the MIREX convention for long
        recordings); on the 6 s synthetic clips that would discard most of each clip, and 30 s GTZAN excerpts are
        commonly scored whole (madmom's evaluation, MARBLE). ``skip_seconds`` (``task.eval_skip_seconds``)
        restores the trimming, applied with mir_eval.beat.trim_beats to both sequences.
      * References are cut at the end of the encoded audio (beats after the last frame cannot be found).
      * A track with no reference beats (after trimming) is left out of the beat metrics' means, and a track
        with no reference downbeats (GTZAN-Rhythm has six jazz files without bar positions) out of the downbeat
        mean: mir_eval would score every tracker 0 on them, which measures nothing. A split with no scorable
        track is refused when the evaluator is built. ``f_measure_pooled`` counts every track, as MARBLE's sums
        do: a track without reference beats adds its estimates (false positives) and nothing else.
      * NaN or infinite outputs are refused (:class:`~benchmark.beat_decode.NonFiniteActivationError`) before
        anything is decoded: decoded, they become a steady beat at the fastest tempo that would be scored and
        selected like a real one. The message names the first affected track by its id (``track_ids``; the
        decoders themselves only see arrays), counts its non-finite frames, says how many heads and tracks are
        affected (every head on the same tracks points to the cached features, one head on every track to a
        diverged probe) and names the feature cache entry to delete (``cache_dir``).
    """

    primary = F_AGGREGATION_PRIMARY["mean"]  # the default; an instance's is its f_aggregation's

    def __init__(self, layout: FrameLayout, targets: Sequence[BeatTarget], frame_rate: float,
                 decoder: DecoderConfig = DecoderConfig(), skip_seconds: float = 0.0,
                 track_ids: Sequence[str] | None = None, cache_dir: Path | str | None = None,
                 f_aggregation: str = "mean") -> None:
        self.primary = f_aggregation_primary(f_aggregation)
        self.layout, self.frame_rate, self.decoder = layout, float(frame_rate), decoder
        self.skip_seconds = float(skip_seconds)
        if track_ids is not None and len(track_ids) != len(targets):
            raise ValueError(f"{len(track_ids)} track ids for {len(targets)} targets")
        self.track_ids = [str(t) for t in track_ids] if track_ids is not None else [
            f"#{i} of the split" for i in range(len(targets))]
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        if decoder.decoder == "dbn":  # a tempo range with no whole-frame period fails now, not after training
            decoder.dbn.periods(self.frame_rate)
        self.grid_length: list[int] = []
        self.references: list[tuple[np.ndarray, np.ndarray]] = []
        for i, target in enumerate(targets):
            times = layout.track_times(i)
            end = (times[-1] + 1.0 / self.frame_rate) if len(times) else 0.0
            self.grid_length.append(int(math.floor(times[-1] * self.frame_rate + 0.5)) + 1 if len(times) else 0)
            beats, downbeats = (self._trim(x[x < end]) for x in target.arrays())
            self.references.append((beats, downbeats))
        self.beat_tracks = [i for i, (b, _) in enumerate(self.references) if len(b)]
        self.downbeat_tracks = [i for i, (_, d) in enumerate(self.references) if len(d)]
        if not self.beat_tracks:
            raise ValueError("no track of this split has an annotated beat inside its audio: nothing to score")
        self._memo: dict[bytes, dict[str, float]] = {}

    def _trim(self, times: np.ndarray) -> np.ndarray:
        return mir_eval.beat.trim_beats(times, self.skip_seconds) if self.skip_seconds > 0 else times

    def grid_activations(self, i: int, frame_scores: np.ndarray) -> np.ndarray:
        """``[grid, 2]`` activations of track ``i`` on the uniform frame grid from its rows' ``[rows, 2]``."""
        times = self.layout.track_times(i)
        if len(times) == 0:
            return np.zeros((0, frame_scores.shape[1]))
        grid_t = np.arange(self.grid_length[i]) / self.frame_rate
        return np.stack([np.interp(grid_t, times, frame_scores[:, c]) for c in range(frame_scores.shape[1])], 1)

    def check_finite(self, scores: np.ndarray) -> None:
        """Raise :class:`~benchmark.beat_decode.NonFiniteActivationError` for ``[heads, rows, outputs]`` scores
        holding NaN or inf, naming the first affected track (in head, then track order) and its non-finite frames
        (rows with any non-finite output: a NaN downbeat activation breaks the downbeat fit as well)."""
        finite = np.isfinite(scores)
        if finite.all():
            return
        bad_rows = ~finite.reshape(scores.shape[0], scores.shape[1], -1).all(axis=2)  # [heads, rows]
        n = len(self.references)
        bad = np.array([[int(bad_rows[h][self.layout.track_rows[i]].sum()) for i in range(n)]
                        for h in range(scores.shape[0])])  # [heads, tracks] non-finite frames
        h, i = (int(x) for x in np.argwhere(bad)[0])
        heads, tracks = int(bad.any(axis=1).sum()), int(bad.any(axis=0).sum())
        raise NonFiniteActivationError(
            self.track_ids[i], int(bad[h, i]), len(self.layout.track_rows[i]), cache=self.cache_dir,
            detail=f"probe head {h}; {heads} of {scores.shape[0]} heads and {tracks} of {n} tracks have "
                   f"non-finite frames")

    def decode(self, activations: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(beat times, downbeat times) of each ``[grid, 2]`` activation array.

        Callers check finiteness first (:meth:`check_finite`, where track ids are known); the decoders refuse
        NaN and inf again, naming the array by its position, for callers that do not.
        """
        if self.decoder.decoder == "dbn":
            beat_frames = dbn_beat_frames([a[:, 0] for a in activations], self.frame_rate, self.decoder.dbn)
        else:
            beat_frames = [peak_beat_frames(a[:, 0], self.frame_rate, self.decoder.peak_threshold,
                                            self.decoder.dbn.max_bpm, name=f"#{k} of {len(activations)} decoded")
                           for k, a in enumerate(activations)]
        out = []
        for frames, a in zip(beat_frames, activations):
            down = downbeats_from_beats(frames, a[:, 1], self.decoder.meters) if a.shape[1] > 1 else frames[:0]
            out.append((frames / self.frame_rate, down / self.frame_rate))
        return out

    def score_estimates(self, estimates: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Metrics of one head's (beats, downbeats) per track (all tracks of the split, in order): the means over
        scorable tracks, and the beat F pooled over all tracks (same trimmed references and estimates)."""
        beats = [self._trim(np.asarray(e[0])) for e in estimates]
        per_track = {i: beat_scores(self.references[i][0], beats[i]) for i in self.beat_tracks}
        out = {m: float(np.mean([s[m] for s in per_track.values()])) for m in BEAT_METRICS[:4]}
        if self.downbeat_tracks:
            out["downbeat_f_measure"] = float(np.mean([
                downbeat_score(self.references[i][1], self._trim(np.asarray(estimates[i][1])))
                for i in self.downbeat_tracks]))
        out["f_measure_pooled"] = pooled_f_measure(
            beat_match_counts(reference, estimated) for (reference, _), estimated in zip(self.references, beats))
        return out

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        scores = row_scores.detach().cpu().numpy().astype(np.float32, copy=False)
        self.check_finite(scores)
        keys = [hashlib.blake2b(np.ascontiguousarray(scores[h]).tobytes(), digest_size=16).digest()
                for h in range(scores.shape[0])]
        todo = [h for h in range(scores.shape[0]) if keys[h] not in self._memo]
        tracks = range(len(self.references))
        activations = [self.grid_activations(i, scores[h][self.layout.track_rows[i]]) for h in todo for i in tracks]
        decoded = self.decode(activations)
        n = len(self.references)
        fresh = {keys[h]: self.score_estimates(decoded[k * n:(k + 1) * n]) for k, h in enumerate(todo)}
        results = [fresh.get(key) or self._memo[key] for key in keys]
        self._memo = {key: r for key, r in zip(keys, results)}  # only the latest call: memory stays bounded
        return [dict(r) for r in results]


def metronome_chance(train_targets: Sequence[BeatTarget], evaluator: BeatEvaluator) -> tuple[float, float]:
    """(score, tempo): the primary metric on ``evaluator``'s split of a metronome that ignores the audio.

    The metronome ticks at the median over training tracks of each track's tempo (60 / median inter-beat
    interval), from t = 0 to the end of each track's audio; its first tick is a downbeat and every fourth after
    it. It is the floor a probe must beat: anything it gets right is the tempo prior, not the audio.
    """
    tempi = [60.0 / float(np.median(np.diff(b))) for b in (t.arrays()[0] for t in train_targets) if len(b) >= 2]
    tempo = float(np.median(tempi)) if tempi else 120.0
    period = 60.0 / tempo
    estimates = []
    for i in range(len(evaluator.references)):
        end = evaluator.grid_length[i] / evaluator.frame_rate
        beats = np.arange(0.0, end, period)
        estimates.append((beats, beats[::4]))
    return evaluator.score_estimates(estimates)[evaluator.primary], tempo


# --------------------------------------------------------------------------------------------- the seam
def frame_window_spec(spec: WindowSpec, encoder: Encoder) -> WindowSpec:
    """Non-overlapping windows of ``spec.window``; a last partial window is kept down to ``min_samples``."""
    if abs(spec.hop - spec.window) > 1e-9:
        raise ValueError(f"frame-level tasks cut tracks into non-overlapping windows; got hop {spec.hop:g} s for "
                         f"window {spec.window:g} s (leave task.hop_seconds null)")
    window_samples = max(1, int(round(spec.window * encoder.sample_rate)))
    return WindowSpec(window=spec.window, hop=spec.window,
                      min_fraction=min(1.0, encoder.min_samples / window_samples))


def frame_cache(cache_dir: Path, encoder: Encoder, spec: WindowSpec, task: Task, layers: list[int]) -> FeatureCache:
    """The clip-level cache key (encoder, rate, windowing, dataset) with ``pooling: none`` and the layers kept."""
    return feature_cache(cache_dir, encoder, spec, task, pooling="none", layers=[int(x) for x in layers])


def frame_level_data(task: Task, encoder: Encoder, by_split: dict[str, list[Track]], spec: WindowSpec,
                     layers: list[int], config: dict[str, Any], console: Console,
                     positions: dict[str, list[int]] | None = None, ranks: Ranks = SINGLE_PROCESS) -> ProbeData:
    """Per-frame features of the requested layers (cached) and, from the task's frame-level kind, per-frame
    targets, evaluators, loss, outputs and chance level.

    Generic over frame-level kinds: the features, their cache and the frame layout are the same whatever is
    predicted per frame; what is predicted comes from the kind (a :class:`~benchmark.kinds.base.FrameKind`:
    ``beat``, ``chord_frames``, ...), so a new frame-level kind needs no change here, in the runner, the probe
    or the sweep.
    """
    kind = task.kind
    if not isinstance(kind, FrameKind):
        raise ConfigError(f"task {task.name}: kind {kind.name} is {kind.level}-level, not frame-level; its task "
                          f"class says level = {task.level!r}: leave level to the kind")
    spec = frame_window_spec(spec, encoder)
    cache = frame_cache(Path(config["cache_dir"]), encoder, spec, task, layers)
    task_cfg = dict(config.get("task") or {})
    console.print(f"[bold]{task.name}[/] x [bold]{encoder.name}[/]: "
                  f"{', '.join(f'{s} {len(t)}' for s, t in by_split.items())} tracks, whole; frames of layers "
                  f"{layers} at {encoder.frame_rate:g}/s; window {spec.window:g} s; cache {cache.dir}")
    pooling = Pooling(mode="none", layers=tuple(int(x) for x in layers))
    splits, extraction = load_or_extract(encoder, by_split, cache, spec, int(config["model"].get("batch_size", 8)),
                                         int(config.get("num_workers", 0)), console=console, pooling=pooling,
                                         ranks=ranks, **extraction_settings(config, positions))
    indices, kept_tracks = {}, {}
    for s in SPLITS:  # tracks whose audio could not be decoded have no frames: they leave targets too
        splits[s], kept, indices[s] = drop_featureless(splits[s], cache.index(s))
        kept_tracks[s] = [by_split[s][i] for i in kept]
    by_split = kept_tracks
    targets = {s: kind.encode_targets(task, by_split[s]) for s in SPLITS}  # refuses a target of another kind
    layouts = {s: frame_layout(indices[s], spec.window, encoder.sample_rate, encoder.frame_rate)
               for s in SPLITS}
    evaluators = {s: kind.build_evaluator(task, layouts[s], targets[s], encoder.frame_rate, task_cfg,
                                          track_ids=[t.track_id for t in by_split[s]], cache_dir=cache.dir)
                  for s in ("valid", "test")}
    chance, chance_what = kind.chance(targets["train"], evaluators["test"])
    train_y = kind.frame_targets(layouts["train"], targets["train"], encoder.frame_rate)
    note = kind.describe_targets(train_y)
    console.print(f"{len(train_y)} training frames{f' ({note})' if note else ''}; chance = {chance_what}")
    return ProbeData(splits=splits, train_targets=train_y, evaluators=evaluators, loss=kind.loss,
                     num_outputs=kind.num_outputs(task), chance=chance, cache=cache, extraction=extraction,
                     state_ids=list(layers))
