"""The per-layer table two ways: one ``layers=all`` run against one run per layer, end to end, on the same cache.

Why a script and not a test: it measures wall time, it asserts nothing. Other suites make a per-layer table by
launching one probe per layer (``layers=0``, ``layers=1``, ...); this suite trains every layer's head (and the
weighted sum) in one run. Both ways here are the suite's own command (``python -m benchmark run``), in fresh
processes, reading features the first step caches, so the ratio holds everything a researcher waits for: process
start, data checks, cache reads, training and scoring. It also checks that the two ways give the same per-layer
scores (a layer's head trains alike alone or in the sweep; see ``tests/test_probe.py``).

    python scripts/measure_layer_sweep.py --task synth_key --model mert-v1-95m-random
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_run(overrides: list[str]) -> float:
    """Wall time of one ``python -m benchmark run`` with ``overrides`` (fails loudly if the run fails)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmark", "run", *overrides], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"run failed ({' '.join(overrides)}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def layer_rows(results_dir: Path) -> dict[str, dict[str, float]]:
    """Per-layer valid and test primary score from every record under ``results_dir`` (layer name -> scores)."""
    rows = {}
    for path in sorted(results_dir.glob("runs/*/*/*.json")):
        record = json.loads(path.read_text())
        primary = record["primary_metric"]
        for row in record["layers"]:
            rows[row["name"]] = {"valid": row["valid"][primary], "test": row["test"][primary]}
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="synth_key")
    parser.add_argument("--model", default="mert-v1-95m-random")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run (e.g. cache_dir=...)")
    args = parser.parse_intermixed_args(argv)
    common = [f"task={args.task}", f"model={args.model}", *args.overrides]
    print(f"caching features: python -m benchmark extract {' '.join(common)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "benchmark", "extract", *common], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"extraction failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir, single_dir = Path(tmp) / "sweep", Path(tmp) / "single"
        sweep = timed_run([*common, "layers=all", f"results_dir={sweep_dir}"])
        sweep_rows = layer_rows(sweep_dir)
        print(f"layers=all: {sweep:.1f} s ({len(sweep_rows)} rows)", flush=True)
        states = sorted(int(name) for name in sweep_rows if name != "weighted_sum")
        per_layer = {}
        for layer in states:
            per_layer[str(layer)] = timed_run([*common, f"layers={layer}", f"results_dir={single_dir}"])
            print(f"layers={layer}: {per_layer[str(layer)]:.1f} s", flush=True)
        weighted = timed_run([*common, "layers=weighted_sum", f"results_dir={single_dir}"])
        print(f"layers=weighted_sum: {weighted:.1f} s", flush=True)
        single_rows = layer_rows(single_dir)
    differences = {name: max(abs(sweep_rows[name][s] - single_rows[name][s]) for s in ("valid", "test"))
                   for name in sweep_rows if name in single_rows}
    layers_total = sum(per_layer.values())
    result = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "produced_by": "python scripts/measure_layer_sweep.py " + " ".join(argv),
        "task": args.task, "model": args.model, "layers_all_seconds": sweep, "per_layer_seconds": per_layer,
        "weighted_sum_seconds": weighted, "per_layer_runs_seconds": layers_total,
        "ratio_per_layer_runs_over_layers_all": layers_total / sweep,
        "ratio_with_weighted_sum_run": (layers_total + weighted) / sweep,
        "max_score_difference_per_row": differences,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"layer-sweep-{args.task}-{args.model}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(states)} per-layer runs: {layers_total:.1f} s; one layers=all run: {sweep:.1f} s; ratio "
          f"{layers_total / sweep:.2f} ({(layers_total + weighted) / sweep:.2f} with a weighted_sum run); largest "
          f"per-layer score difference {max(differences.values()):.2g}\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
