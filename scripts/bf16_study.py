"""What ``model.dtype=bf16`` does to probe scores, against the spread over probe seeds.

Why a script and not a test: it runs real layer sweeps (the suite's own ``python -m benchmark run``) and measures;
it asserts nothing. For every task x model it runs fp32 and bf16 with the same probe seeds on features extracted
in each precision, then compares the test score of the layer selected on validation:

* ``diff``: mean over seeds of bf16 minus fp32 (paired: the same seed initialises and drops out alike in both);
* ``spread``: the larger of the two precisions' standard deviations over seeds (ddof 1);
* ``within``: ``|diff| <= spread``, the criterion for making ``model.dtype=auto`` the default.

    python scripts/bf16_study.py run        # the sweeps (resumable: finished records are skipped)
    python scripts/bf16_study.py summarise  # results/bf16_study/summary.{json,md} from the records alone

Defaults: CREPE (tiny) and three MERT random-init controls on ``synth_key`` and ``synth_tags``, seeds 0, 1, 2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bf16_study"
MODELS = ["crepe-tiny", "mert-v1-95m-random", "mert-v0-random", "music2vec-v1-random"]
TASKS = ["synth_key", "synth_tags"]
DTYPES = ("fp32", "bf16")


def run(args: argparse.Namespace) -> int:
    """One multirun per task x model over dtype x seed (one process: the encoder is built once per dtype)."""
    failed = []
    for task in args.tasks:
        for model in args.models:
            cmd = [sys.executable, "-m", "benchmark", "run", "-m", f"task={task}", f"model={model}",
                   f"model.dtype={','.join(DTYPES)}", f"seed={','.join(map(str, args.seeds))}",
                   f"results_dir={args.results_dir}", *args.overrides]
            print("$", " ".join(cmd[1:]), flush=True)
            if subprocess.run(cmd).returncode:
                failed.append(f"{task} x {model}")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


def records(results_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results_dir / "runs").glob("*/*/*.json"))]


def summarise(args: argparse.Namespace) -> int:
    """Group the records by task x model x dtype and compare the precisions (see the module docstring)."""
    groups: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for r in records(args.results_dir):
        dtype = r["config"]["model"]["dtype"]
        groups.setdefault((r["task"], r["model"]), {}).setdefault(dtype, {})[int(r["seed"])] = r
    rows = []
    for (task, model), by_dtype in sorted(groups.items()):
        if set(by_dtype) != set(DTYPES):
            continue
        seeds = sorted(set(by_dtype["fp32"]) & set(by_dtype["bf16"]))
        if len(seeds) < 2:
            continue
        score = {d: [float(by_dtype[d][s]["test_score"]) for s in seeds] for d in DTYPES}
        std = {d: statistics.stdev(score[d]) for d in DTYPES}
        paired = [b - a for a, b in zip(score["fp32"], score["bf16"])]
        diff = statistics.mean(paired)
        spread = max(std.values())
        first = by_dtype["fp32"][seeds[0]]
        rows.append({
            "task": task, "model": model, "primary_metric": first["primary_metric"], "seeds": seeds,
            **{f"{d}_scores": score[d] for d in DTYPES},
            **{f"{d}_mean": statistics.mean(score[d]) for d in DTYPES},
            **{f"{d}_std": std[d] for d in DTYPES},
            **{f"{d}_layers": [by_dtype[d][s]["selected"]["name"] for s in seeds] for d in DTYPES},
            **{f"{d}_extraction_seconds": by_dtype[d][seeds[0]]["timings"].get("extraction_seconds")
               for d in DTYPES},
            "paired_diffs": paired, "diff": diff, "spread": spread, "within": abs(diff) <= spread,
            "suite_revisions": sorted({by_dtype[d][s].get("suite_revision") or "unknown"
                                       for d in DTYPES for s in seeds}),
        })
    if not rows:
        print(f"no task x model has fp32 and bf16 records for two or more seeds under {args.results_dir}/runs")
        return 1
    summary = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "produced_by": "python scripts/bf16_study.py summarise (records made by python scripts/bf16_study.py run)",
               "criterion": "within = |mean paired bf16 - fp32 test score| <= max(std over seeds of fp32, of bf16)",
               "all_within": all(r["within"] for r in rows), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| task | model | metric | fp32 mean ± std | bf16 mean ± std | bf16 - fp32 (paired) | within spread | "
             "layers fp32 / bf16 |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | {r['primary_metric']} | "
                     f"{100 * r['fp32_mean']:.1f} ± {100 * r['fp32_std']:.1f} | "
                     f"{100 * r['bf16_mean']:.1f} ± {100 * r['bf16_std']:.1f} | {100 * r['diff']:+.1f} | "
                     f"{'yes' if r['within'] else 'NO'} | {','.join(r['fp32_layers'])} / {','.join(r['bf16_layers'])} |")
    text = (f"# bf16 vs fp32 probe scores\n\n{summary['produced_by']}, {summary['created']}; "
            f"{summary['criterion']}. Scores x 100, seeds {rows[0]['seeds']}.\n\n" + "\n".join(lines) + "\n\n"
            f"All within seed spread: {'yes' if summary['all_within'] else 'no'}.\n")
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "summarise"))
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--results-dir", type=Path, default=OUT)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for every run (e.g. cache_dir=...)")
    args = parser.parse_intermixed_args(argv)
    return run(args) if args.command == "run" else summarise(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
