"""The typed probe and trainer settings carry the same defaults as the committed config files, so code that
builds a sweep from a partial config (the speed benchmark, a notebook) trains what a real run trains."""
from __future__ import annotations

import dataclasses

from benchmark.resources import config_dir, config_file_values
from benchmark.settings import ProbeSettings, TrainerSettings


def _file(group: str, name: str) -> dict:
    return config_file_values(config_dir() / group / f"{name}.yaml")


def test_trainer_defaults_are_the_config_file():
    assert dataclasses.asdict(TrainerSettings()) == _file("trainer", "default")


def test_probe_defaults_are_the_mlp_config_file():
    expected = _file("probe", "mlp")
    got = dataclasses.asdict(ProbeSettings())
    assert list(got.pop("lr")) == expected.pop("lr") and got == expected


def test_from_config_fills_what_a_partial_config_leaves_out():
    settings = TrainerSettings.from_config({"max_epochs": 3, "not_a_trainer_key": 1})
    assert settings.max_epochs == 3 and settings.lr_decay_patience == 5 and settings.progress_bar is False
    assert ProbeSettings.from_config({"lr": 0.01}).learning_rates == [0.01]
    assert ProbeSettings.from_config({"lr": [1e-4, 1e-3]}).learning_rates == [1e-4, 1e-3]
