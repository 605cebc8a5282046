"""``python -m benchmark.bench_ddp [processes=N] [threads=T] [run overrides]``: one run on N processes against one.

The same run (default ``task=synth_tags model=mert-v1-95m-random``, full-size and offline) is made twice from an
empty cache, with ``trainer.devices=1`` and ``trainer.devices=N``, in fresh processes one after the other. It
prints the wall time of each and their ratio, and whether the two caches are byte-identical and the two records
agree (scores, selection, validation history, layer weights). ``threads=T`` sets ``OMP_NUM_THREADS`` for both
runs: torch's CPU kernels split their sums by thread count, so byte-identity on the CPU holds at equal threads
per process (by default each run uses the machine as Lightning would: one process takes every core, N processes
share them). The figures are written as JSON under ``results/bench/``.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.cli import _compose, _resolved

DEFAULT_RUN = ["task=synth_tags", "model=mert-v1-95m-random"]
RECORD_FIELDS = ("heads", "layers", "selected", "test_score", "valid_history", "layer_weights")


def _split_args(argv: list[str]) -> tuple[int, int | None, str, list[str]]:
    processes, threads, out_dir, overrides = 2, None, "results/bench", []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "processes":
            processes = int(value)
        elif key == "threads":
            threads = int(value)
        elif key == "out_dir":
            out_dir = value
        else:
            overrides.append(arg)
    if not any(a.startswith("task=") for a in overrides):
        overrides = [DEFAULT_RUN[0], *overrides]
    if not any(a.startswith("model=") for a in overrides):
        overrides = [DEFAULT_RUN[1], *overrides]
    return processes, threads, out_dir, overrides


def _timed_run(overrides: list[str], folder: Path, devices: int, threads: int | None) -> float:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    args = [sys.executable, "-m", "benchmark", "run", *overrides, f"trainer.devices={devices}",
            f"cache_dir={folder / 'cache'}", f"results_dir={folder / 'results'}", "force=true",
            f"hydra.run.dir={folder / 'hydra'}"]
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    (folder / "log.txt").write_text(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(f"the run with trainer.devices={devices} failed; its log: {folder / 'log.txt'}\n"
                         + out.stderr[-2000:])
    return seconds


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".f16", ".json")}


def _record(folder: Path) -> dict[str, Any]:
    [path] = (folder / "results").rglob("seed*.json")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    processes, threads, out_dir, overrides = _split_args(list(sys.argv[1:] if argv is None else argv))
    config = _resolved(_compose("config", overrides))
    from benchmark.tasks.registry import build_task

    build_task(config["task"]).tracks(Path(config["data_root"]))  # render synthetic data before any clock runs
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        one.mkdir()
        many.mkdir()
        seconds_one = _timed_run(overrides, one, 1, threads)
        seconds_many = _timed_run(overrides, many, processes, threads)
        cache_one, cache_many = _files(one / "cache"), _files(many / "cache")
        same_cache = cache_one == cache_many
        rec_one, rec_many = _record(one), _record(many)
    same_record = {key: rec_one[key] == rec_many[key] for key in RECORD_FIELDS}
    metric_gap = max(abs(a["valid"][m] - b["valid"][m])
                     for a, b in zip(rec_one["heads"], rec_many["heads"]) for m in a["valid"])
    test_gap = max(abs(a["test"][m] - b["test"][m]) for a, b in zip(rec_one["heads"], rec_many["heads"])
                   for m in a["test"])
    result = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmark.bench_ddp " + " ".join(sys.argv[1:] if argv is None else argv),
        "run_overrides": overrides, "processes": processes, "omp_num_threads": threads,
        "wall_seconds": {"1": seconds_one, str(processes): seconds_many},
        "speedup": seconds_one / seconds_many,
        "cache_identical": same_cache, "cache_files": len(cache_one),
        "record_fields_identical": same_record,
        "max_head_metric_difference": {"valid": metric_gap, "test": test_gap},
        "selected": {"1": rec_one["selected"]["name"], str(processes): rec_many["selected"]["name"]},
        "test_score": {"1": rec_one["test_score"], str(processes): rec_many["test_score"]},
        "timings": {"1": rec_one["timings"], str(processes): rec_many["timings"]},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(f"{' '.join(overrides)}: 1 process {seconds_one:.1f} s, {processes} processes {seconds_many:.1f} s "
          f"(speed-up {result['speedup']:.2f}x; OMP_NUM_THREADS={threads or 'unset'})")
    print(f"cache byte-identical: {same_cache} ({len(cache_one)} files); record fields identical: "
          + ", ".join(f"{k} {v}" for k, v in same_record.items()))
    print(f"largest difference of any head's metric: valid {metric_gap:.2e}, test {test_gap:.2e}; selected "
          f"{result['selected']['1']} / {result['selected'][str(processes)]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = out / f"ddp-{processes}proc-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
