"""``python -m benchmark.bench_validation``: the share of a frame-level beat epoch spent on validation, at GTZAN
scale, on this machine.

Why: a ``gtzan_beat`` layer sweep validates every head every epoch, and validation decodes every (head, track)
pair with the DBN before scoring it with mir_eval, so selection reads the same decoded F-measure that is
reported. Whether that costs too much is a question of proportion: the wall time of one validation pass against
that of the epoch it belongs to. This module measures both with the suite's own code and says how they were
obtained.

What runs (the real code paths, not re-implementations):

* the run config composed as ``python -m benchmark run task=gtzan_beat model=mert-v1-95m`` would compose it
  (``configs/probe/mlp.yaml``: 512 hidden units, dropout 0.2, one learning rate, the weighted sum;
  ``configs/trainer/default.yaml``: batch size 64 rows; ``configs/task/gtzan_beat.yaml``: the DBN decoder and its
  tempo range), read through :class:`~benchmark.settings.ProbeSettings` / ``TrainerSettings``;
* :class:`~benchmark.probe.LayerSweepProbe` with every layer's head and the weighted sum (14 heads for 13 hidden
  states), trained by a Lightning ``Trainer`` built with :func:`~benchmark.sweep.train_sweep`'s settings and fed by
  its loaders (:class:`~benchmark.sweep.EpochShuffledBatches` over :class:`~benchmark.sweep.WindowBatches`; the
  validation rows in batches of 1024);
* the validation pass of that trainer: the heads' forward over the validation frames, then
  ``LayerSweepProbe.on_validation_epoch_end``, which calls the task kind's :class:`~benchmark.frame_level.
  BeatEvaluator` (DBN decoding of every head x track in one parallel numba call, downbeat fitting, mir_eval).

What is measured, and what is scaled (the GTZAN frame cache, 443 x 30 s x 75 frames/s x 13 x 768 float16, is
about 20 GB, more than this machine's memory):

* Features are random float16 rows held in memory (a real run reads a memory-mapped cache; reading a cache larger
  than the page cache would add to the training time only, lowering the share).
* ``train_s``: the wall time of ``train_steps`` training steps (Lightning's loop, batch loading, forward, loss,
  backward, the headwise Adam step) over a few synthetic tracks, scaled by rows to the training frames of
  ``train_tracks`` tracks (``ceil(rows / batch_size)`` steps of ``batch_size`` rows).
* ``valid_forward_s``: the wall time of the validation loop minus the evaluator's (the heads' forward over
  ``measure_valid_tracks`` whole tracks, Lightning's loop, the probe's selection bookkeeping), scaled by rows.
* ``decode_s``, ``scoring_s``, ``other_s``: inside the evaluator, its ``decode`` (DBN + downbeat fit of all
  head x track sequences together), its ``score_estimates`` (mir_eval, per head) and the rest (finiteness check,
  memo hashing, interpolation onto the frame grid), each scaled by tracks (every track has the same length) to
  ``valid_tracks``. The evaluator is fed probe-like activations (target-shaped peaks of random height, 15 %
  missed beats, spurious peaks, a noise floor; 0.9 of the activation, plus 0.1 of the probe's own output so
  that heads change between epochs as in a real run) instead of the untrained probe's output: the DBN's cost does
  not depend on the values, but downbeat fitting and mir_eval depend on how many beats are decoded.
* ``epochs`` epochs are run over the subset; the first is a warm-up (numba's compiled code is loaded, torch
  allocates) and the figures are the mean of the others, so the parts add up: ``valid_s = valid_forward_s +
  decode_s + scoring_s + other_s`` and ``epoch_s = train_s + valid_s``.
* Every head is trained and decoded (no head has stopped: the first epochs of a sweep, the most expensive case);
  ``stopped_head_s`` is what one stopped head still costs the evaluator per pass (the memo reuses its scores:
  hashing and the finiteness check remain), measured by calling the evaluator again with unchanged outputs.

Not counted: feature statistics and loader set-up (once per run), the per-epoch sweep checkpoint, the final
valid/test predictions. The figures are one measurement, not a median; other processes on the cores slow the parts
unevenly (torch's and numba's threads wait on each other when a core is taken: on a 2-core machine whose cores
another process kept busy, the training steps took 8 times as long and validation twice), so the dict records the
share of the machine's CPU time that other processes used while it measured (``setup["other_cpu_share"]``, Linux
only): trust the figures when it is near 0.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from benchmark.frame_level import BeatEvaluator, FrameLayout, frame_layout
from benchmark.kinds.base import get_kind
from benchmark.kinds.losses import get_loss
from benchmark.probe import HeadSpec, LayerSweepProbe, make_heads
from benchmark.settings import ProbeSettings, TrainerSettings
from benchmark.sweep import DirectCheckpointIO, EpochShuffledBatches, WindowBatches, feature_statistics
from benchmark.targets import BeatTarget

VALID_BATCH_ROWS = 1024  # the validation loader's batch in train_sweep
SAMPLE_RATE = 24000  # only places the synthetic windows; frame times come from frame_rate
TARGET_SHARE = 0.20  # the target: validation at most 20 % of an epoch's wall time


def composed_config(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The run config of ``task=gtzan_beat model=mert-v1-95m`` (plus ``overrides``), composed by Hydra as a run
    composes it, so the probe, trainer and decoder settings are the committed defaults."""
    from benchmark.cli import _compose, _resolved

    return _resolved(_compose("config", ["task=gtzan_beat", "model=mert-v1-95m", *overrides]))


def synthetic_beats(num_tracks: int, seconds: float, seed: int) -> list[BeatTarget]:
    """One steady-tempo annotation per track (70-180 BPM, random phase, 10 ms jitter), a downbeat every 4th
    beat: GTZAN-like counts of beats per track, which is what downbeat fitting and mir_eval cost depends on."""
    rng = np.random.default_rng(seed)
    targets = []
    for _ in range(num_tracks):
        period = 60.0 / rng.uniform(70.0, 180.0)
        beats = np.arange(rng.uniform(0.0, period), seconds - 0.05, period)
        beats = np.sort(np.clip(beats + rng.normal(0.0, 0.01, len(beats)), 0.0, seconds - 0.05))
        targets.append(BeatTarget(tuple(map(float, beats)), tuple(map(float, beats[::4]))))
    return targets


def probe_like_activation(events: np.ndarray, frames: int, fps: float, rng: np.random.Generator,
                          miss: float = 0.15, spurious: float = 0.15, noise: float = 0.3) -> np.ndarray:
    """A trained probe's activation for ``events`` (seconds): the target's shape (peak on the nearest frame, half
    on its neighbours) with peaks of random height 0.5-0.95, a fraction ``miss`` left out, ``spurious`` extra
    peaks per event and a noise floor ``noise * U^3`` (the shape the DBN's observation model was set on)."""
    a = np.zeros(frames)
    for t in events:
        if rng.random() < miss:
            continue
        i, h = int(round(t * fps)), rng.uniform(0.5, 0.95)
        for d, v in ((0, h), (-1, h / 2), (1, h / 2)):
            if 0 <= i + d < frames:
                a[i + d] = max(a[i + d], v)
    a = np.clip(a + noise * rng.random(frames) ** 3, 0.0, 1.0)
    for i in rng.integers(0, frames, int(spurious * len(events))):
        a[i] = max(a[i], rng.uniform(0.3, 0.7))
    return a


def _layout(num_tracks: int, frames: int, fps: float) -> tuple[FrameLayout, dict[str, Any]]:
    """The frame layout of ``num_tracks`` tracks of ``frames`` frames each (one window per track)."""
    index = {"windows": [[i, 0, frames] for i in range(num_tracks)], "track_ids": [str(i) for i in range(num_tracks)],
             "shape": [num_tracks * frames]}
    return frame_layout(index, frames / fps, SAMPLE_RATE, fps), index


class _TimedEvaluator:
    """The real :class:`BeatEvaluator`, fed probe-like activations and timed part by part.

    ``__call__`` mixes the probe's output into fixed probe-like activations (so a head whose output changed is
    decoded again and an unchanged one hits the memo, as in a real run) and times the evaluator's call, its
    ``decode`` and its ``score_estimates`` (wrapped on the instance, so the evaluator's own code runs).
    """

    def __init__(self, evaluator: BeatEvaluator, activations: torch.Tensor) -> None:
        self.evaluator, self.activations = evaluator, activations
        self.primary = evaluator.primary
        self.calls: list[dict[str, float]] = []
        self._decode = self._scoring = 0.0
        self._sequences = 0
        decode, score = evaluator.decode, evaluator.score_estimates

        def timed_decode(acts: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
            t = time.perf_counter()
            out = decode(acts)
            self._decode += time.perf_counter() - t
            self._sequences += len(acts)
            return out

        def timed_score(estimates: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
            t = time.perf_counter()
            out = score(estimates)
            self._scoring += time.perf_counter() - t
            return out

        evaluator.decode, evaluator.score_estimates = timed_decode, timed_score  # type: ignore[method-assign]

    def mixed(self, row_scores: torch.Tensor) -> torch.Tensor:
        return (0.9 * self.activations + 0.1 * row_scores.float().cpu()).clamp(0.0, 1.0)

    def timed_call(self, scores: torch.Tensor) -> tuple[list[dict[str, float]], dict[str, float]]:
        """The evaluator's metrics for ``scores`` and the seconds of its parts."""
        self._decode = self._scoring = 0.0
        self._sequences = 0
        t = time.perf_counter()
        out = self.evaluator(scores)
        total = time.perf_counter() - t
        return out, {"evaluator": total, "decode": self._decode, "scoring": self._scoring,
                     "other": total - self._decode - self._scoring, "decoded_sequences": float(self._sequences)}

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        out, parts = self.timed_call(self.mixed(row_scores))
        self.calls.append(parts)
        return out


class _EpochClock(L.Callback):
    """Wall time of each epoch's training part (epoch start to validation start) and validation pass."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._start = self._valid = 0.0
        self._train = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._valid = time.perf_counter()
        self._train = self._valid - self._start

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.epochs.append({"train": self._train, "valid": time.perf_counter() - self._valid})


def beat_validation_share(frame_rate: float = 75.0, num_states: int = 13, dim: int = 768, train_tracks: int = 443,
                          valid_tracks: int = 197, track_seconds: float = 30.0,
                          heads: list[HeadSpec] | None = None, epochs: int = 3, train_steps: int = 50,
                          measure_valid_tracks: int = 4, seed: int = 0,
                          overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Wall time of one training epoch and one validation pass of a ``gtzan_beat`` layer sweep at GTZAN scale,
    part by part, measured on a subset and scaled (see the module docstring for exactly what and how).

    Args:
        frame_rate, num_states, dim: the encoder's frames per second, hidden states and width (MERT-v1-95M).
        train_tracks, valid_tracks, track_seconds: the split sizes scaled to (GTZAN's fault-filtered split).
        heads: the probe heads; default every state plus the weighted sum at the configured learning rates.
        epochs: epochs run on the subset; the first is a warm-up, the figures are the mean of the others.
        train_steps: training steps timed per epoch (batches of the configured size).
        measure_valid_tracks: whole validation tracks forwarded, decoded and scored per epoch.
        overrides: Hydra overrides of the composed run config (e.g. ``trainer.batch_size=128``).

    Returns a dict: the scaled parts in seconds (``train_s``, ``valid_forward_s``, ``decode_s``, ``scoring_s``,
    ``other_s``), their sums ``valid_s`` and ``epoch_s``, ``valid_share = valid_s / epoch_s``,
    ``stopped_head_s``, the raw subset seconds under ``measured``, the sizes under ``setup`` and the method in
    words under ``measured_what`` / ``scaled_how``.
    """
    if epochs < 2:
        raise ValueError(f"epochs={epochs}: need at least 2 (the first is a warm-up)")
    cpu_before = _machine_cpu()
    config = composed_config(overrides)
    probe, settings = ProbeSettings.from_config(config["probe"]), TrainerSettings.from_config(config["trainer"])
    task_cfg = dict(config["task"])
    kind = get_kind("beat")
    if heads is None:
        heads = make_heads(list(range(num_states)), bool(probe.weighted_sum) and num_states > 1,
                           probe.learning_rates)
    batch = int(settings.batch_size)
    frames = int(round(track_seconds * frame_rate))
    n_valid = max(1, min(int(measure_valid_tracks), int(valid_tracks)))
    n_train = max(1, min(int(train_tracks), math.ceil(train_steps * batch / frames)))
    rng = np.random.default_rng(seed)

    def features(num_tracks: int) -> np.ndarray:
        return rng.standard_normal((num_tracks * frames, num_states, dim), dtype=np.float32).astype(np.float16)

    train_layout, _ = _layout(n_train, frames, frame_rate)
    valid_layout, _ = _layout(n_valid, frames, frame_rate)
    train_targets = synthetic_beats(n_train, track_seconds, seed)
    valid_targets = synthetic_beats(n_valid, track_seconds, seed + 1)
    train_x, valid_x = features(n_train), features(n_valid)
    train_y = kind.frame_targets(train_layout, train_targets, frame_rate).astype(get_loss(kind.loss).target_dtype)
    # the kind's own evaluator, with the task's decoder settings (task is unused by the beat kind's builder)
    evaluator = kind.build_evaluator(None, valid_layout, valid_targets, frame_rate, task_cfg)  # type: ignore[arg-type]
    activations = np.zeros((len(heads), n_valid * frames, 2), np.float32)
    for h in range(len(heads)):
        for i, target in enumerate(valid_targets):
            rows = valid_layout.track_rows[i]
            beats, downbeats = target.arrays()
            activations[h, rows, 0] = probe_like_activation(beats, frames, frame_rate, rng)
            activations[h, rows, 1] = probe_like_activation(downbeats, frames, frame_rate, rng)
    timed = _TimedEvaluator(evaluator, torch.from_numpy(activations))

    mean, std = feature_statistics(train_x) if probe.standardize else (
        np.zeros((num_states, dim), np.float32), np.ones((num_states, dim), np.float32))
    L.seed_everything(seed, workers=True, verbose=False)
    outputs = kind.num_outputs(None)  # type: ignore[arg-type]  (the beat kind has two outputs whatever the task)
    model = LayerSweepProbe(
        heads=heads, num_states=num_states, dim=dim, num_outputs=outputs, loss=kind.loss, evaluator=timed,
        feature_mean=mean, feature_std=std, hidden=int(probe.hidden), dropout=float(probe.dropout),
        patience=int(settings.patience), lr_decay_patience=int(settings.lr_decay_patience),
        lr_decay_factor=float(settings.lr_decay_factor), weight_decay=float(probe.weight_decay), seed=seed,
        lr_decay_rule=str(settings.lr_decay_rule), lr_decay_threshold=float(settings.lr_decay_threshold),
        stop_on_non_finite=bool(settings.stop_on_non_finite),
        weighted_sum_layers=str(probe.weighted_sum_layers), weighted_sum_init=str(probe.weighted_sum_init))
    train_loader = DataLoader(WindowBatches(train_x, train_y),
                              sampler=EpochShuffledBatches(len(train_y), batch, seed), batch_size=None)
    valid_loader = DataLoader(WindowBatches(valid_x, np.zeros(len(valid_x), np.float32)),
                              sampler=BatchSampler(range(len(valid_x)), VALID_BATCH_ROWS, False), batch_size=None)
    steps = min(int(train_steps), len(train_loader))
    clock = _EpochClock()
    trainer = L.Trainer(max_epochs=int(epochs), accelerator=settings.accelerator, devices=1,
                        precision=settings.precision, deterministic=bool(settings.deterministic), logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_train_batches=steps, callbacks=[clock],
                        plugins=[DirectCheckpointIO()])
    trainer.fit(model, train_loader, valid_loader)
    if len(clock.epochs) != epochs or len(timed.calls) != epochs:
        raise RuntimeError(f"timed {len(clock.epochs)} epochs and {len(timed.calls)} validations of {epochs}: "
                           "every head stopped early or Lightning skipped validation")
    # what a stopped head still costs: the same outputs again, every head a memo hit
    model.eval()
    with torch.no_grad():
        again = model.predict_rows(valid_x, VALID_BATCH_ROWS)
    scores = timed.mixed(again)
    timed.timed_call(scores)
    _, memo = timed.timed_call(scores)

    kept = range(1, epochs)

    def mean_of(values: list[float]) -> float:
        return float(np.mean([values[e] for e in kept]))

    train_m = mean_of([c["train"] for c in clock.epochs])
    valid_m = mean_of([c["valid"] for c in clock.epochs])
    parts_m = {k: mean_of([c[k] for c in timed.calls]) for k in ("evaluator", "decode", "scoring", "other")}
    forward_m = valid_m - parts_m["evaluator"]
    train_rows_m, valid_rows_m = steps * batch, n_valid * frames
    train_rows, valid_rows = train_tracks * frames, valid_tracks * frames
    per_track = valid_tracks / n_valid
    full_steps = math.ceil(train_rows / batch)
    out: dict[str, Any] = {
        "train_s": train_m * full_steps / steps,
        "valid_forward_s": forward_m * valid_rows / valid_rows_m,
        "decode_s": parts_m["decode"] * per_track,
        "scoring_s": parts_m["scoring"] * per_track,
        "other_s": parts_m["other"] * per_track,
        "stopped_head_s": memo["evaluator"] * per_track / len(heads),
    }
    out["valid_s"] = out["valid_forward_s"] + out["decode_s"] + out["scoring_s"] + out["other_s"]
    out["epoch_s"] = out["train_s"] + out["valid_s"]
    out["valid_share"] = out["valid_s"] / out["epoch_s"]
    out["target_share"] = TARGET_SHARE
    out["setup"] = {
        "frame_rate": frame_rate, "num_states": num_states, "dim": dim, "heads": len(heads),
        "train_tracks": train_tracks, "valid_tracks": valid_tracks, "track_seconds": track_seconds,
        "frames_per_track": frames, "batch_size": batch, "train_steps_per_epoch": full_steps,
        "valid_frames": valid_rows, "decoded_sequences": len(heads) * valid_tracks,
        "decoder": evaluator.decoder.decoder, "hidden": int(probe.hidden),
        "device": str(trainer.strategy.root_device.type),
        "torch_threads": torch.get_num_threads(), "numba_threads": _numba_threads(), "cpu_count": os.cpu_count(),
        "other_cpu_share": _other_cpu_share(cpu_before, _machine_cpu()),
    }
    out["measured"] = {
        "train_tracks": n_train, "train_steps": steps, "train_rows": train_rows_m, "valid_tracks": n_valid,
        "valid_rows": valid_rows_m, "epochs": epochs, "kept_epochs": len(kept),
        "train_s": train_m, "valid_s": valid_m, "valid_forward_s": forward_m,
        "decode_s": parts_m["decode"], "scoring_s": parts_m["scoring"], "other_s": parts_m["other"],
        "decoded_sequences": timed.calls[-1]["decoded_sequences"], "memo_pass_s": memo["evaluator"],
        "memo_decoded_sequences": memo["decoded_sequences"],
    }
    out["measured_what"] = (
        f"{steps} training steps of {batch} rows and one validation pass over {n_valid} whole tracks "
        f"({valid_rows_m} frames, {len(heads)} heads, {len(heads) * n_valid} decoded sequences) per epoch, "
        f"mean of epochs 2-{epochs} of {epochs}, Lightning loop, LayerSweepProbe and the beat kind's "
        f"BeatEvaluator ({evaluator.decoder.decoder}) on random float16 features in memory; the evaluator sees "
        "probe-like activations (0.9) mixed with the probe's output (0.1)")
    out["scaled_how"] = (
        f"train by rows to {train_tracks} tracks x {frames} frames ({full_steps} steps); valid forward by rows to "
        f"{valid_rows} frames; decode, scoring and other by tracks to {valid_tracks} (equal-length tracks, "
        f"{len(heads)} heads)")
    return out


def _machine_cpu() -> tuple[float, float, float] | None:
    """(wall, busy CPU seconds of the whole machine, this process's CPU seconds), or None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = float(os.sysconf("SC_CLK_TCK"))
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / ticks  # all but idle and iowait (guest time is in user)
    return time.perf_counter(), busy, time.process_time()


def _other_cpu_share(before: tuple[float, float, float] | None,
                     after: tuple[float, float, float] | None) -> float | None:
    """The fraction of the machine's CPU time between ``before`` and ``after`` used by other processes: why a
    measurement is slow when it is (other work on the cores), read from /proc/stat; None where that is missing."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, others) / ((after[0] - before[0]) * (os.cpu_count() or 1)), 3)


def _numba_threads() -> int:
    import numba

    return int(numba.get_num_threads())


def describe_beat_validation(result: dict[str, Any]) -> list[str]:
    """The console lines of :func:`beat_validation_share`."""
    s = result["setup"]
    verdict = "within" if result["valid_share"] <= result["target_share"] else "above"
    return [
        f"beat validation scaled to {s['train_tracks']}/{s['valid_tracks']} train/valid tracks of "
        f"{s['track_seconds']:g} s at {s['frame_rate']:g} frames/s ({s['heads']} heads, {s['num_states']} x "
        f"{s['dim']} features, {s['decoder']} decoder, probes on {s['device']}): epoch {result['epoch_s']:.1f} s = "
        f"train {result['train_s']:.1f} s + validation {result['valid_s']:.1f} s (forward "
        f"{result['valid_forward_s']:.1f} s, decode {result['decode_s']:.1f} s, scoring {result['scoring_s']:.1f} s, "
        f"other {result['other_s']:.1f} s)",
        f"validation share {100 * result['valid_share']:.1f} % of the epoch ({verdict} the "
        f"{100 * result['target_share']:.0f} % target; other processes used {_percent(s['other_cpu_share'])} of the "
        f"CPU meanwhile); a stopped head still costs {result['stopped_head_s']:.3f} s "
        "per pass in the evaluator (its decoding is memoised)",
        f"measured: {result['measured_what']}; scaled: {result['scaled_how']}",
    ]


def _percent(share: float | None) -> str:
    return "an unknown share" if share is None else f"{100 * share:.0f} %"


def main(argv: list[str]) -> int:
    """``python -m benchmark.bench_validation [hydra overrides]``: print the figures."""
    result = beat_validation_share(overrides=argv)
    for line in describe_beat_validation(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
