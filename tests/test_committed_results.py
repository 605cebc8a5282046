"""The committed results reproduce: rerunning the README's main job and the mfcc runs of the committed multirun
gives the per-layer scores of their records under results/runs/ (the MERT random-init runs are left out: their
extraction alone takes minutes here).

A change that moves these numbers is a change of results: rerun the commands the README lists and commit the new
records with it.
"""
from __future__ import annotations

import json

import pytest
from rich.console import Console

from tests.conftest import REPO_ROOT

RUNS = REPO_ROOT / "results" / "runs" / "synth_chords"
CASES = [("crepe-tiny", 0), ("mfcc", 0), ("mfcc", 1), ("mfcc", 2)]


def _committed(model: str, seed: int) -> dict:
    (path,) = (RUNS / model).glob(f"seed{seed}-*.json")
    return json.loads(path.read_text())


def _layers(record: dict) -> list[tuple]:
    return [(row["name"], row["lr"], row["best_epoch"], round(row["valid"][record["primary_metric"]], 6),
             round(row["test"][record["primary_metric"]], 6)) for row in record["layers"]]


@pytest.mark.slow
@pytest.mark.parametrize("model,seed", CASES)
def test_rerun_gives_the_committed_per_layer_scores(compose_config, tmp_path_factory, model, seed):
    from benchmark.runner import run

    shared = tmp_path_factory.getbasetemp() / "committed_results_data"  # rendered once for all cases
    config = compose_config("task=synth_chords", f"model={model}", f"seed={seed}", f"data_root={shared}")
    committed = _committed(model, seed)
    record = run(config, console=Console(quiet=True))
    assert record["protocol_checksum"] == committed["protocol_checksum"]
    assert _layers(record) == _layers(committed)
    assert record["selected"]["name"] == committed["selected"]["name"]
    assert record["test_score"] == pytest.approx(committed["test_score"], abs=1e-6)
