"""Synthetic tasks' shared machinery: deterministic, download-free datasets rendered to real audio files.

Why: the suite must run end to end offline (CI, a fresh checkout, a machine without the real datasets) and every
task type needs a fixture. Each synthetic task composes short pieces of music from a seed (chords, progressions,
melodies, drum grooves; see :mod:`benchmark.tasks.synth_music` for the composition and :mod:`benchmark.tasks.synth_audio` for the
sound), renders them with numpy and writes them as ordinary dataset files, so the pipeline reads them exactly
like a downloaded dataset::

    <data_root>/<task>/audio/<track_id>.wav    mono 16-bit PCM at ``sample_rate`` (22050 Hz by default, so
                                               the encoders' resampling is exercised)
    <data_root>/<task>/manifest.csv            track_id, path (relative to the task folder), split, labels, meta_*
    <data_root>/<task>/generator.json          generator version and every parameter (= dataset_identity())

Tasks (one module each):
    synth_chords  multiclass  root (12) x {maj, min, dim, 7}, labels ``C:maj`` .. ``B:7``       benchmark.tasks.synth_chords
    synth_key     key         24 keys in mir_eval spelling (``C major`` .. ``Bb minor``, flats)  benchmark.tasks.synth_key
    synth_tags    multilabel  which of pad, pluck, organ, bell, bass, drums play                benchmark.tasks.synth_tags
    synth_tempo   regression  tempo of a drum groove in BPM                                     benchmark.tasks.synth_tempo

A clip is a pure function of ``(seed, task, split, index)``, so renders are reproducible and independent.
"""
from __future__ import annotations

import abc
import csv
import dataclasses
import fcntl
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import soundfile as sf

from benchmark.errors import ConfigError
from benchmark.processes import pid_alive
from benchmark.schema import BeatDecoderSpec, SynthTaskSpec
from benchmark.tasks.base import SPLITS, Task, Track
from benchmark.tasks.synth_audio import NoteEvent, master, render_events

# Bump when a change to the synth_* modules changes the rendered audio or labels: it is part of
# generator.json and dataset_identity(), so caches and rendered folders are invalidated.
GENERATOR_VERSION = 1

# Keys a synthetic task's config carries that are not generator parameters: registration and windowing (every
# task), decoding and scoring (a beat task's evaluator), and render_workers, which changes how the render runs but
# not what it produces (processes rendering in parallel; None or 0 = one per available CPU core, at most 8).
_NOT_GENERATOR_KEYS = frozenset({f.name for f in dataclasses.fields(BeatDecoderSpec)}
                                | {"window_min_fraction", "render_workers"})
# Below this many clips extra worker processes cost more (interpreter start-up) than they save.
_MIN_CLIPS_FOR_WORKERS = 64


def _task_code(name: str) -> int:
    """A stable integer per task name so two tasks with the same seed still get different clips."""
    return zlib.crc32(name.encode("utf-8"))


class SynthTask(Task):
    """Shared machinery: parameters, deterministic per-clip seeds, atomic render to disk, manifest reading.

    Subclasses set ``name``, ``task_type``, ``labels``, are registered with their config schema (a
    :class:`~benchmark.schema.SynthTaskSpec` subclass: the generator parameters and their defaults) and implement ``_assign_labels``, ``_render_clip``,
    ``_label_columns`` and ``_target_from_row``.
    """

    config_schema: ClassVar[type[SynthTaskSpec]] = SynthTaskSpec  # set by register_task(kind, schema=...)
    # container of the rendered clips (16-bit PCM either way): WAV, or FLAC for long clips (half the disk)
    audio_format: ClassVar[str] = "WAV"

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        self.params: dict[str, Any] = self._resolve_params(self.cfg)

    # -- parameters ------------------------------------------------------------------------------------
    def _resolve_params(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by the config, coerced to canonical types (so ``3`` and ``3.0`` are one dataset)."""
        defaults = self.generator_defaults()
        unknown = sorted(set(cfg) - set(defaults) - _NOT_GENERATOR_KEYS)
        if unknown:
            warnings.warn(f"task {self.name}: ignoring unknown config keys {unknown}; known: {sorted(defaults)}",
                          stacklevel=3)
        params: dict[str, Any] = {}
        for key, default in defaults.items():
            value = cfg.get(key, default)
            if value is None:
                value = default
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(default, str):
                params[key] = str(value)
            elif isinstance(default, float) and math.isfinite(number):
                params[key] = number
            elif math.isfinite(number) and number == int(number):
                params[key] = int(number)
            else:
                kind = "a number" if isinstance(default, float) else "a whole number"
                raise ConfigError(f"task.{key}={value!r}: must be {kind} (task {self.name}; default {default})")
        self.config_schema(**params)  # the schema's range checks (seed >= 0, clip_seconds > 0.5 ...), ConfigError
        try:
            self._check_params(params)
        except ValueError as exc:
            raise ConfigError(f"task {self.name}: {exc} (got {params}); change it in configs/task/{self.name}.yaml "
                              f"or with task.KEY=VALUE") from None
        workers = cfg.get("render_workers")
        self.render_workers = int(workers) if workers is not None else 0
        if self.render_workers < 0:
            raise ConfigError(f"task.render_workers={workers!r}: must be >= 0 (0 = one per core) or null")
        return params

    @classmethod
    def generator_defaults(cls) -> dict[str, Any]:
        """The generator parameters and their defaults, from the task's config schema (the one place they live)."""
        return {f.name: f.default for f in dataclasses.fields(cls.config_schema) if f.name not in _NOT_GENERATOR_KEYS}

    def _check_params(self, params: dict[str, Any]) -> None:
        """Task-specific parameter validation (override)."""

    def dataset_identity(self) -> dict[str, Any]:
        """Task name, generator version and every generator parameter: all that decides the rendered audio."""
        return {"task": self.name, "generator_version": GENERATOR_VERSION, "params": dict(self.params)}

    # -- layout ----------------------------------------------------------------------------------------
    def task_dir(self, data_root: Path | str) -> Path:
        """Folder of this task's rendered dataset."""
        return Path(data_root) / self.name

    def is_prepared(self, data_root: Path | str) -> bool:
        """Whether the folder holds a complete render made with exactly the current parameters."""
        folder = self.task_dir(data_root)
        try:
            stored = json.loads((folder / "generator.json").read_text())
        except (OSError, ValueError):
            return False
        if stored != self.dataset_identity():
            return False
        try:
            rows = self._read_manifest(folder)
        except (OSError, ValueError, KeyError):
            return False
        return len(rows) == self.expected_clip_count() and all((folder / r["path"]).is_file() for r in rows)

    def expected_clip_count(self) -> int:
        """How many clips a complete render holds (``n_train + n_valid + n_test`` here)."""
        return sum(self.params[f"n_{s}"] for s in SPLITS)

    # -- rendering -------------------------------------------------------------------------------------
    def _clip_rng(self, purpose: int, split: str, index: int) -> np.random.Generator:
        """Independent random stream per (seed, task, purpose, split, clip): clips do not depend on each other."""
        key = [self.params["seed"], _task_code(self.name), purpose, SPLITS.index(split), index]
        return np.random.default_rng(np.random.SeedSequence(key))

    @abc.abstractmethod
    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        """The label (class index, tag set, tempo) of each clip of a split, decided before rendering."""

    @abc.abstractmethod
    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        """Audio (float32, peak < 1) of one clip with the given label, plus ``meta_*`` manifest columns."""

    @abc.abstractmethod
    def _label_columns(self, label: Any) -> dict[str, str]:
        """Manifest label columns of a label."""

    @abc.abstractmethod
    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        """``Track.target`` from a manifest row."""

    def clip_specs(self) -> list[tuple[str, str, int, Any]]:
        """``(track_id, split, index, label)`` of every clip, in manifest order (cheap: no audio)."""
        specs = []
        for split in SPLITS:
            n = self.params[f"n_{split}"]
            labels = self._assign_labels(split, n, self._clip_rng(0, split, 0)) if n else []
            for i, label in enumerate(labels):
                specs.append((f"{split}_{i:04d}", split, i, label))
        return specs

    def render_clip(self, split: str, index: int, label: Any) -> tuple[np.ndarray, dict[str, str]]:
        """Render one clip exactly as :meth:`prepare` does (useful for listening and tests)."""
        return self._render_clip(label, self._clip_rng(1, split, index))

    def prepare(self, data_root: Path | str) -> None:
        """Render the dataset unless an identical render is already there.

        Renders into a hidden temporary folder and swaps it in with renames at the end, so an interrupted
        render never leaves a half-written dataset under the task's name.
        """
        root = Path(data_root)
        if self.is_prepared(root):
            return
        root.mkdir(parents=True, exist_ok=True)
        # Parallel jobs of a sweep render the same dataset: one renders, the others wait and then find it ready.
        # The lock is taken on the data root folder itself, so no lock file is left beside the datasets.
        fd = os.open(root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self.is_prepared(root):
                self._render(root)
        finally:
            os.close(fd)  # releases the lock

    def _render(self, root: Path) -> None:
        """Render every clip into a temporary folder, then swap it in (see :meth:`prepare`)."""
        self._remove_stale_temporaries(root)
        tag = f"{socket.gethostname()}-{os.getpid()}"
        tmp = root / f".{self.name}.rendering-{tag}"
        old = root / f".{self.name}.old-{tag}"
        final = self.task_dir(root)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            (tmp / "audio").mkdir(parents=True)
            specs = self.clip_specs()
            workers = self._worker_count(len(specs))
            if workers > 1:
                rows = self._render_in_workers(tmp, specs, workers)
            else:
                rows = [_render_to_file(self, tmp, spec) for spec in specs]
            self._write_manifest(tmp, rows)
            (tmp / "generator.json").write_text(json.dumps(self.dataset_identity(), indent=2, sort_keys=True) + "\n")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                final.rename(old)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def _render_in_workers(self, folder: Path, specs: list[tuple[str, str, int, Any]],
                           workers: int) -> list[dict[str, Any]]:
        """Render ``specs`` into ``folder`` with ``workers`` fresh interpreters, one shard each.

        Fresh ``python -c`` processes rather than multiprocessing: forking would copy whatever threads the
        caller holds (torch, CUDA) mid-state, and spawn re-imports the caller's ``__main__``, which breaks
        scripts without an ``if __name__ == "__main__"`` guard. Clips are independent (own seeds), so the
        result is byte-identical to a serial render.
        """
        env = dict(os.environ)
        import benchmark  # the folder holding the imported ``benchmark`` package, so workers import the same copy

        package_root = str(Path(benchmark.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
        try:
            for k in range(workers):
                job = folder / f".worker-{k}.json"
                job.write_text(json.dumps({"kind": self.name, "params": self.params, "folder": str(folder),
                                           "specs": specs[k::workers]}))
                log = folder / f".worker-{k}.log"
                with open(log, "wb") as log_fh:
                    proc = subprocess.Popen(
                        [sys.executable, "-c", "import sys; from benchmark.tasks.synth_base import _worker_main; "
                                               "_worker_main(sys.argv[1])", str(job)],
                        env=env, stdout=subprocess.DEVNULL, stderr=log_fh)
                procs.append((proc, job, log))
            rows_by_id: dict[str, dict[str, Any]] = {}
            for proc, job, log in procs:
                if proc.wait() != 0:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"render worker for {self.name} failed (exit {proc.returncode}):\n{tail}")
                for row in json.loads(job.with_suffix(".rows").read_text()):
                    rows_by_id[row["track_id"]] = row
        finally:
            for proc, _, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for leftover in folder.glob(".worker-*"):
            leftover.unlink()
        return [rows_by_id[track_id] for track_id, _, _, _ in specs]

    def _worker_count(self, n_clips: int) -> int:
        """Processes to render with: the configured number, or (0 = auto) one per usable core, at most 8."""
        if self.render_workers > 0:
            return self.render_workers
        if n_clips < _MIN_CLIPS_FOR_WORKERS:
            return 1
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))

    def _remove_stale_temporaries(self, root: Path) -> None:
        """Delete temporary folders left by renders of this task on this host whose process is gone."""
        host = socket.gethostname()
        for prefix in (f".{self.name}.rendering-{host}-", f".{self.name}.old-{host}-"):
            for path in root.glob(prefix + "*"):
                pid_text = path.name[len(prefix):]
                if pid_text.isdigit() and not pid_alive(int(pid_text)):
                    shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _write_manifest(folder: Path, rows: list[dict[str, Any]]) -> None:
        """Write manifest.csv with the union of columns, in first-seen order."""
        columns: list[str] = []
        for row in rows:
            columns.extend(c for c in row if c not in columns)
        if not columns:
            columns = ["track_id", "path", "split"]
        with open(folder / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    @staticmethod
    def _read_manifest(folder: Path) -> list[dict[str, str]]:
        with open(folder / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            if not row["track_id"] or not row["path"] or row["split"] not in SPLITS:
                raise ValueError(f"malformed manifest row in {folder}: {row}")
        return rows

    # -- reading ---------------------------------------------------------------------------------------
    def tracks(self, data_root: Path) -> list[Track]:
        """All tracks from the manifest; renders first when the folder is missing or stale (synthetic data
        can always be regenerated, so there is nothing to download)."""
        self.prepare(data_root)
        folder = self.task_dir(data_root)
        return [
            Track(track_id=row["track_id"], path=folder / row["path"], split=row["split"],
                  target=self._target_from_row(row))
            for row in self._read_manifest(folder)
        ]

    def _mix(self, events: Sequence[NoteEvent], rng: np.random.Generator,
             gains: dict[str, float] | None = None) -> np.ndarray:
        """Render a score to a mastered clip of ``clip_seconds`` (``gains``: per-instrument linear levels)."""
        sr = self.params["sample_rate"]
        return master(render_events(events, self.params["clip_seconds"], sr, rng, gains=gains), sr, rng)


class SynthClassTask(SynthTask):
    """A synthetic task with one class of ``labels`` per clip (in a ``label`` column), balanced within each split."""

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        # class counts differ by at most one, in random order
        return [int(x) for x in rng.permutation(np.arange(n) % len(self.labels))]

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {"label": self.labels[label]}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return self.labels.index(row["label"])


def _render_to_file(task: SynthTask, folder: Path, spec: tuple[str, str, int, Any]) -> dict[str, Any]:
    """Render one clip into ``folder/audio`` and return its manifest row (module level: runs in workers)."""
    track_id, split, index, label = spec
    audio, meta = task.render_clip(split, index, label)
    rel = f"audio/{track_id}.{task.audio_format.lower()}"
    sf.write(folder / rel, audio, task.params["sample_rate"], subtype="PCM_16", format=task.audio_format)
    return {"track_id": track_id, "path": rel, "split": split, **task._label_columns(label), **meta}


def _worker_main(job_path: str) -> None:
    """Entry point of a render worker: render the clips of a job file, write their manifest rows beside it."""
    from benchmark.tasks.registry import build_task

    job = json.loads(Path(job_path).read_text())
    task = build_task({"kind": job["kind"], **job["params"], "render_workers": 1})
    if not isinstance(task, SynthTask) or task.params != job["params"]:
        raise RuntimeError(f"worker rebuilt {job['kind']} with different parameters")
    folder = Path(job["folder"])
    rows = []
    for track_id, split, index, label in job["specs"]:
        if isinstance(label, list):
            label = tuple(label)  # tag sets travel as JSON lists
        rows.append(_render_to_file(task, folder, (track_id, split, index, label)))
    Path(job_path).with_suffix(".rows").write_text(json.dumps(rows))


