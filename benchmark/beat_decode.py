"""Beat and downbeat decoding: frame activations -> beat times.

A probe outputs, per encoder frame, a beat and a downbeat activation in ``[0, 1]``. Scoring needs beat *times*,
so the activations are decoded per track:

* :func:`dbn_beats` (the default, ``task.decoder=dbn``): a hidden Markov model over (tempo, phase) decoded
  with Viterbi, after the "bar pointer" family of models (Whiteley, Cemgil & Godsill 2006; the efficient state
  space of Krebs, Boeck & Widmer 2015). Written here from the model's definition; madmom, which ships the
  reference implementation, does not install on current Python.

  - State space: for every beat period ``L`` (whole frames) in the tempo range (default 55-215 BPM), the phase
    positions ``0 .. L-1`` within the beat. Phase 0 is the beat. One state per (period, position), so faster
    tempi have fewer states and every state advances by exactly one position per frame.
  - Transitions: inside a beat the phase advances deterministically (the tempo cannot change mid-beat). From
    the last position of period ``L_i`` the chain enters position 0 of period ``L_j`` with probability
    ``∝ exp(-lambda * |L_i / L_j - 1|)`` (``transition_lambda``, default 100: a tempo change of 1 % costs as
    much as ``e^-1``, so tempo changes happen, at beat boundaries only, when the evidence asks for them).
  - Observations: phase 0 (the one frame of the beat, as in the training targets) has likelihood ``a_t`` (the
    activation), every other phase ``(1 - a_t) / (observation_lambda - 1)``. Only their ratio matters to
    Viterbi: a beat on frame ``t`` gains ``log((observation_lambda - 1) a_t / (1 - a_t))``, positive when
    ``a_t > 1 / observation_lambda`` (for a calibrated probe ``a / (1 - a)`` is the posterior odds of a beat
    frame, and ``observation_lambda - 1`` the prior odds it is weighed against).
    Why not madmom's observation model (the first 1/16 of every period are beat states, ratio with 15): it is
    set for 100 frames/s and one-frame-wide activations. At an encoder's 50-75 frames/s that region is one
    frame for fast tempi and three for slow ones, so a probe's three-frame-wide peaks pay a half-tempo path,
    and the low threshold lets the noise floor between slow beats pull the path to double tempo. A one-frame
    beat state at every tempo treats all tempi alike; ``observation_lambda = 8`` was chosen on synthetic
    probe-like activations (target-shaped peaks of random height, a noise floor, 15-20 % missed and spurious
    peaks) at 50 and 75 frames/s over 58-210 BPM, where it decodes above 0.99 mean F-measure.
  - Decoding: Viterbi over all states, uniform start. Beats are the frames where the best path is at phase 0,
    each moved to the activation maximum within one frame (integer periods can put a beat a frame early or
    late when the true period falls between two of them).

  The Viterbi loop is compiled with numba (a dependency of librosa, which torchcrepe requires) and runs the
  (head, track) pairs of a split in parallel: a split of a few hundred tracks and tens of heads decodes in
  seconds, so the DBN can score validation every epoch.

* :func:`peak_beats` (``task.decoder=peaks``, the documented fallback): local maxima of the activation above a
  threshold, at least one beat period of the fastest tempo apart. No tempo model: fast, but spurious or missing
  peaks go straight into the output.

* Tempo range: both decoders take their beat periods from :func:`period_bounds`, which rounds the shortest period
  *up* and the longest *down* to whole frames, so no decoded tempo lies outside ``[min_bpm, max_bpm]`` (rounding
  to the nearest frame, or down, let 50 frames/s decode at 230.8 BPM and 75 frames/s at 225 BPM with
  ``max_bpm = 215``). Each decoded beat may still move by one frame to its activation peak (see Decoding above),
  so a single interval can be a frame shorter than the shortest period; the tempo of the path cannot.

* Non-finite activations (NaN, inf) are refused with :class:`NonFiniteActivationError` before decoding: the
  Viterbi comparisons are all false on NaN, so the DBN used to return a steady beat at the fastest tempo and
  peak picking whatever was left, both scored as if the probe had produced them.

* :func:`downbeats_from_beats`: downbeats are chosen among the decoded beats: a constant meter (beats per bar,
  default 2, 3 or 4) and bar phase are fitted by maximising the contrast between the mean downbeat activation at
  the chosen beats and at the others (a one-state-per-track "bar pointer": GTZAN's excerpts keep one meter);
  every ``meter``-th beat from that phase is a downbeat.

Frame ``t`` is at time ``t / fps``; the callers place activations on that grid.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from benchmark.errors import ConfigError, UserError


class NonFiniteActivationError(UserError, ValueError):
    """A beat or downbeat activation holds NaN or infinite values, so it cannot be decoded into beats.

    Why an error and not a decode: on NaN every Viterbi comparison is false and the DBN returns a steady beat at
    the fastest tempo (peak picking returns whatever the finite frames give), which would be scored, selected and
    reported as if the probe had produced it. The message names the track, how many of its frames are
    non-finite and the two causes with their fixes; ``track``, ``bad`` and ``total`` keep them for callers.
    """

    def __init__(self, track: str, bad: int, total: int, detail: str = "", cache: str | None = None) -> None:
        self.track, self.bad, self.total = str(track), int(bad), int(total)
        where = f"the feature cache entry {cache}" if cache else "the feature cache entry of this encoder and task"
        super().__init__(
            f"the beat activation of track {self.track} has {self.bad} NaN or infinite frame(s) out of "
            f"{self.total}{f' ({detail})' if detail else ''}, so its beats cannot be decoded (a DBN fed NaN "
            f"returns a steady beat at the fastest tempo, which would be scored as if it were real). Either the "
            f"probe diverged: lower probe.lr (drop the largest learning rates of the grid), or the cached "
            f"features of this track hold non-finite values: delete {where} and run again so the features are "
            f"extracted anew (force=true only reruns the probe, it reuses the cache).")


def check_finite(activation: np.ndarray, name: str) -> None:
    """Raise :class:`NonFiniteActivationError` naming ``name`` when ``activation`` holds NaN or inf."""
    a = np.asarray(activation)
    finite = np.isfinite(a)
    if not finite.all():
        frames = finite.reshape(len(a), -1).all(axis=1) if a.ndim else finite.reshape(1)
        raise NonFiniteActivationError(name, int((~frames).sum()), len(frames))


def shortest_period(fps: float, max_bpm: float) -> int:
    """The shortest whole-frame beat period not faster than ``max_bpm``: ``ceil(60 fps / max_bpm)``, at least 1
    (the one place both decoders round their fastest tempo; see :func:`period_bounds` for why upwards)."""
    return max(1, int(math.ceil(60.0 * fps / max_bpm - 1e-9)))


def period_bounds(fps: float, min_bpm: float, max_bpm: float) -> tuple[int, int]:
    """(shortest, longest) beat period in whole frames whose tempo lies within ``[min_bpm, max_bpm]`` at ``fps``.

    The shortest period is ``ceil(60 fps / max_bpm)`` and the longest ``floor(60 fps / min_bpm)``: rounding the
    other way (or to the nearest frame) admits a period just outside the range, e.g. 13 frames at 50 frames/s is
    230.8 BPM and 20 frames at 75 frames/s is 225 BPM, above a 215 BPM ceiling, and the decoders then lock onto
    tempi the configuration rules out. A bound within 1e-9 of a whole frame counts as that frame (at 32.2
    frames/s and 138 BPM ``60 * fps / bpm`` is 14.000000000000002 in floating point; 14 frames is exactly 138 BPM).

    Raises:
        ValueError: unless ``0 < min_bpm < max_bpm``, or when no whole-frame period lies in the range (a range
            narrower than one frame, e.g. 121-122 BPM at 50 frames/s: 24.59-24.79 frames).
    """
    if not 0 < min_bpm < max_bpm:
        raise ConfigError(f"need 0 < min_bpm < max_bpm, got {min_bpm}, {max_bpm} (task.min_bpm, task.max_bpm)")
    shortest = shortest_period(fps, max_bpm)
    longest = int(math.floor(60.0 * fps / min_bpm + 1e-9))
    if longest < shortest:
        raise ConfigError(f"the tempo range {min_bpm:g}-{max_bpm:g} BPM holds no whole-frame beat period at "
                         f"{fps:g} frames/s ({60.0 * fps / max_bpm:.2f}-{60.0 * fps / min_bpm:.2f} frames); widen "
                         f"it with task.min_bpm / task.max_bpm")
    return shortest, longest


@dataclass(frozen=True)
class DBNConfig:
    """Parameters of the tempo/phase model (see the module docstring)."""

    min_bpm: float = 55.0
    max_bpm: float = 215.0
    transition_lambda: float = 100.0
    observation_lambda: float = 8.0
    # activations are clipped to [floor, 1 - floor] so that a 0 or 1 costs a finite amount
    activation_floor: float = 1e-7
    # tempo changes less likely than this (relative to the likeliest) are dropped: with lambda = 100 that is
    # a change of more than ~28 % at one beat, which no music makes; decoding gets several times faster
    transition_threshold: float = 1e-12

    def periods(self, fps: float) -> np.ndarray:
        """Every whole-frame beat period whose tempo lies in ``[min_bpm, max_bpm]`` at ``fps`` (see
        :func:`period_bounds`), so the decoded tempo never leaves the configured range."""
        lo, hi = period_bounds(fps, self.min_bpm, self.max_bpm)
        return np.arange(lo, hi + 1, dtype=np.int64)


class _StateSpace:
    """Arrays describing the (period, phase) states and the sparse tempo transitions at one frame rate."""

    def __init__(self, cfg: DBNConfig, fps: float) -> None:
        self.periods = cfg.periods(fps)
        K = len(self.periods)
        self.offsets = np.concatenate([[0], np.cumsum(self.periods)[:-1]]).astype(np.int64)
        self.num_states = int(self.periods.sum())
        ratio = self.periods[:, None] / self.periods[None, :]  # [from i, to j]: tempo_j / tempo_i
        prob = np.exp(-cfg.transition_lambda * np.abs(ratio - 1.0))
        prob /= prob.sum(axis=1, keepdims=True)
        keep = prob >= cfg.transition_threshold * prob.max(axis=1, keepdims=True)
        # incoming transitions of each period j as a CSR-like list: sources[src_start[j]:src_start[j+1]]
        sources, logp, starts = [], [], [0]
        for j in range(K):
            src = np.nonzero(keep[:, j])[0]
            sources.extend(src.tolist())
            logp.extend(np.log(prob[src, j]).tolist())
            starts.append(len(sources))
        self.src = np.asarray(sources, dtype=np.int64)
        self.src_logp = np.asarray(logp, dtype=np.float64)
        self.src_start = np.asarray(starts, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _viterbi_one(act, periods, offsets, src, src_logp, src_start, log_other_scale, floor):
    """Best (period index, phase) per frame of one activation sequence; see the module docstring."""
    T = act.shape[0]
    K = periods.shape[0]
    S = offsets[K - 1] + periods[K - 1]
    delta = np.empty(S)
    new = np.empty(S)
    back = np.empty((T, K), dtype=np.int32)  # the period a beat (phase 0) of period j came from
    path_k = np.empty(T, dtype=np.int64)
    path_p = np.empty(T, dtype=np.int64)
    if T == 0:
        return path_k, path_p
    a = min(max(act[0], floor), 1.0 - floor)
    lb, lo = math.log(a), math.log(1.0 - a) + log_other_scale
    for k in range(K):
        for p in range(periods[k]):
            delta[offsets[k] + p] = -math.log(S) + (lb if p == 0 else lo)
    for t in range(1, T):
        a = min(max(act[t], floor), 1.0 - floor)
        lb, lo = math.log(a), math.log(1.0 - a) + log_other_scale
        for j in range(K):
            best = -np.inf
            arg = j
            for n in range(src_start[j], src_start[j + 1]):
                i = src[n]
                v = delta[offsets[i] + periods[i] - 1] + src_logp[n]
                if v > best:
                    best = v
                    arg = i
            base = offsets[j]
            new[base] = best + lb
            back[t, j] = arg
            for p in range(1, periods[j]):
                new[base + p] = delta[base + p - 1] + lo
        for s in range(S):
            delta[s] = new[s]
    best_s = 0
    for s in range(1, S):
        if delta[s] > delta[best_s]:
            best_s = s
    k = 0
    while k + 1 < K and offsets[k + 1] <= best_s:
        k += 1
    p = best_s - offsets[k]
    for t in range(T - 1, -1, -1):
        path_k[t] = k
        path_p[t] = p
        if t == 0:
            break
        if p > 0:
            p -= 1
        else:
            k = back[t, k]
            p = periods[k] - 1
    return path_k, path_p


@numba.njit(cache=True, parallel=True)
def _viterbi_many(flat, starts, periods, offsets, src, src_logp, src_start, log_other_scale, floor, out_k, out_p):
    for n in numba.prange(starts.shape[0] - 1):
        a, b = starts[n], starts[n + 1]
        k, p = _viterbi_one(flat[a:b], periods, offsets, src, src_logp, src_start, log_other_scale, floor)
        out_k[a:b] = k
        out_p[a:b] = p


_SPACES: dict[tuple[DBNConfig, float], _StateSpace] = {}


def _space(cfg: DBNConfig, fps: float) -> _StateSpace:
    key = (cfg, float(fps))
    if key not in _SPACES:
        _SPACES[key] = _StateSpace(cfg, fps)
    return _SPACES[key]


def _beats_from_path(act: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Frames where the decoded path is at phase 0, each moved to the activation maximum within one frame."""
    beats = np.nonzero(p == 0)[0]
    if len(beats) == 0 or len(act) == 0:
        return beats.astype(np.int64)
    window = np.stack([np.clip(beats + d, 0, len(act) - 1) for d in (-1, 0, 1)])
    moved = window[np.argmax(act[window], axis=0), np.arange(len(beats))]
    return np.unique(moved).astype(np.int64)


def dbn_beat_frames(activations: list[np.ndarray], fps: float, cfg: DBNConfig = DBNConfig(),
                    names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Beat frames of each activation sequence (decoded in parallel); see the module docstring.

    ``names`` (one per sequence, e.g. track ids) only label the :class:`NonFiniteActivationError` raised for a
    sequence holding NaN or inf; without them a sequence is named by its position in ``activations``.
    """
    for n, a in enumerate(activations):
        check_finite(a, names[n] if names is not None else f"#{n} of {len(activations)} decoded together")
    space = _space(cfg, fps)
    lengths = np.array([len(a) for a in activations], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in activations]) if len(activations) \
        else np.zeros(0)
    out_k = np.zeros(len(flat), dtype=np.int64)
    out_p = np.zeros(len(flat), dtype=np.int64)
    if cfg.observation_lambda <= 1:
        raise ConfigError(f"observation_lambda must be > 1, got {cfg.observation_lambda}")
    if len(flat):
        _viterbi_many(flat, starts, space.periods, space.offsets, space.src, space.src_logp, space.src_start,
                      -math.log(cfg.observation_lambda - 1), float(cfg.activation_floor), out_k, out_p)
    return [_beats_from_path(flat[a:b], out_p[a:b]) for a, b in zip(starts[:-1], starts[1:])]


def dbn_beats(activation: np.ndarray, fps: float, cfg: DBNConfig = DBNConfig(),
              name: str = "(unnamed)") -> np.ndarray:
    """Beat times (seconds) of one beat-activation sequence sampled at ``fps``; ``name`` labels errors."""
    return dbn_beat_frames([activation], fps, cfg, names=[name])[0] / float(fps)


def peak_beat_frames(activation: np.ndarray, fps: float, threshold: float = 0.3, max_bpm: float = 215.0,
                     name: str = "(unnamed)") -> np.ndarray:
    """Frames of local activation maxima above ``threshold``, greedily kept strongest first so that no two are
    closer than the beat period of ``max_bpm``, rounded up to whole frames like the DBN's shortest period
    (:func:`period_bounds`; rounded down, two peaks 13 frames apart at 50 frames/s were 230.8 BPM).

    ``name`` labels the :class:`NonFiniteActivationError` raised for an activation holding NaN or inf.
    """
    check_finite(activation, name)
    a = np.asarray(activation, dtype=np.float64)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    left = np.concatenate([[-np.inf], a[:-1]])
    right = np.concatenate([a[1:], [-np.inf]])
    cand = np.nonzero((a >= left) & (a > right) & (a > threshold))[0]
    min_gap = shortest_period(fps, max_bpm)
    taken = np.zeros(len(a), dtype=bool)
    keep = []
    for t in cand[np.argsort(-a[cand], kind="stable")]:
        if not taken[max(0, t - min_gap + 1):t + min_gap].any():
            keep.append(t)
            taken[t] = True
    return np.sort(np.asarray(keep, dtype=np.int64))


def peak_beats(activation: np.ndarray, fps: float, threshold: float = 0.3, max_bpm: float = 215.0,
               name: str = "(unnamed)") -> np.ndarray:
    """Beat times (seconds) by peak picking; see :func:`peak_beat_frames`."""
    return peak_beat_frames(activation, fps, threshold, max_bpm, name) / float(fps)


def downbeats_from_beats(beat_frames: np.ndarray, downbeat_activation: np.ndarray,
                         meters: tuple[int, ...] = (2, 3, 4)) -> np.ndarray:
    """The subset of ``beat_frames`` that are downbeats: every ``m``-th beat from the phase ``k`` whose beats
    have the largest mean downbeat activation relative to the other beats, over meters ``m`` and phases ``k``.

    The activation at a beat is the maximum within one frame of it (the two activations may peak a frame
    apart). With fewer than two beats there is no bar to fit: a beat is a downbeat when its activation > 0.5.
    """
    beats = np.asarray(beat_frames, dtype=np.int64)
    act = np.asarray(downbeat_activation, dtype=np.float64)
    if len(beats) == 0 or len(act) == 0:
        return np.zeros(0, dtype=np.int64)
    lo = np.clip(beats - 1, 0, len(act) - 1)
    hi = np.clip(beats + 1, 0, len(act) - 1)
    value = np.maximum(np.maximum(act[lo], act[hi]), act[np.clip(beats, 0, len(act) - 1)])
    if len(beats) < 2:
        return beats[value > 0.5]
    best, best_score = None, -np.inf
    for m in meters:
        if m < 1:
            continue
        for k in range(min(m, len(beats))):
            chosen = np.zeros(len(beats), dtype=bool)
            chosen[k::m] = True
            other = value[~chosen]
            score = value[chosen].mean() - (other.mean() if len(other) else 0.0)
            if score > best_score + 1e-12:
                best, best_score = chosen, score
    return beats[best]
