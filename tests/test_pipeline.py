"""End to end: synthetic data -> cached features -> layer sweep -> record, with a planted-signal encoder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from benchmark.record import record_path
from benchmark.runner import run
from tests.planted import PlantedEncoder

SMALL_CHORDS = ["task=synth_chords", "task.n_train=192", "task.n_valid=96", "task.n_test=96",
                "task.clip_seconds=1.0", "trainer.max_epochs=40", "trainer.patience=8"]


def _quiet() -> Console:
    return Console(quiet=True)


def test_sweep_selects_the_planted_layer_and_writes_a_record(compose_config):
    config = compose_config(*SMALL_CHORDS, "seed=0")
    encoder = PlantedEncoder(planted=3)
    record = run(config, console=_quiet(), encoder=encoder)

    assert record["selected"]["layer"] in (3, None)  # the planted layer, or the weighted sum leaning on it
    by_layer = {row["name"]: row for row in record["layers"]}
    assert set(by_layer) == {"0", "1", "2", "3", "4", "weighted_sum"}
    planted_valid = by_layer["3"]["valid"]["accuracy"]
    noise_valid = max(by_layer[str(i)]["valid"]["accuracy"] for i in (0, 1, 2, 4))
    assert planted_valid > 0.3 > noise_valid + 0.1  # 48 classes: chance is about 0.02
    assert by_layer["3"]["test"]["accuracy"] > 0.3
    weights = next(iter(record["layer_weights"].values()))
    assert int(np.argmax(weights)) == 3  # the learned weighted sum leans on the planted layer
    assert record["chance_level"] < 0.1
    assert record["timings"]["encoder_forward_calls"] > 0

    saved = json.loads(record_path(Path(config["results_dir"]), config).read_text())
    for key in ("config", "encoder", "layers", "selected", "test_score", "timings", "versions", "dataset"):
        assert key in saved
    assert saved["encoder"] == {"name": "planted", "planted": 3}
    assert saved["config"]["trainer"]["max_epochs"] == 40


def test_second_run_reads_the_cache_and_never_runs_the_encoder(compose_config):
    first = PlantedEncoder(planted=1)
    run(compose_config(*SMALL_CHORDS, "seed=0", "trainer.max_epochs=2"), console=_quiet(), encoder=first)
    assert first.calls > 0

    second = PlantedEncoder(planted=1)
    record = run(compose_config(*SMALL_CHORDS, "seed=1", "trainer.max_epochs=2", "probe=linear"),
                 console=_quiet(), encoder=second)
    assert second.calls == 0
    assert record["timings"]["encoder_forward_calls"] == 0

    moved = PlantedEncoder(planted=1)  # another window length is another cache entry
    run(compose_config(*SMALL_CHORDS, "trainer.max_epochs=1", "task.window_seconds=0.5"), console=_quiet(),
        encoder=moved)
    assert moved.calls > 0


@pytest.mark.slow  # ~15 s; resolve_layers and sweep_heads have fast tests in test_marble_probe.py
def test_layers_override_restricts_the_sweep(compose_config):
    record = run(compose_config(*SMALL_CHORDS, "trainer.max_epochs=2", "layers=[1,3]"), console=_quiet(),
                 encoder=PlantedEncoder(planted=3))
    assert [row["name"] for row in record["layers"]] == ["1", "3"]
    with pytest.raises(ValueError, match="out of range"):
        run(compose_config(*SMALL_CHORDS, "trainer.max_epochs=1", "layers=9"), console=_quiet(),
            encoder=PlantedEncoder(planted=3))


def test_regression_targets_are_z_scored_with_train_statistics():
    from benchmark.kinds.clip import standardized_targets

    targets = {"train": np.array([[100.0], [120.0], [140.0]]), "valid": np.array([[120.0]]),
               "test": np.array([[160.0], [100.0]])}
    z = standardized_targets(targets)
    std = np.std([100.0, 120.0, 140.0])
    np.testing.assert_allclose(z["train"].ravel(), [-20 / std, 0.0, 20 / std], rtol=1e-6)
    np.testing.assert_allclose(z["test"].ravel(), [40 / std, -20 / std], rtol=1e-6)
    assert z["valid"].ravel().tolist() == [0.0]
