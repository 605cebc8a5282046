"""The protocol checksum comes from an explicit, versioned list of fields (benchmark.record.PROTOCOL_SECTIONS and
NEUTRAL_DEFAULTS): a new execution setting or a new key at its neutral default leaves every checksum, and so the
name of every finished run's record, where it was."""
from __future__ import annotations

import json

import pytest

import benchmark.record as record_module
from benchmark.record import record_path, run_checksum
from tests.conftest import REPO_ROOT

RECORDS = sorted([*(REPO_ROOT / "results" / "runs").rglob("*.json"),
                  *(REPO_ROOT / "tests" / "fixtures" / "records").rglob("*.json")])


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_committed_records_keep_their_checksum_and_file_name(path):
    record = json.loads(path.read_text())
    config = record["config"]
    assert run_checksum({k: v for k, v in config.items() if k != "seed"}) == record["protocol_checksum"]
    assert record_path(REPO_ROOT, config).name == path.name


def _config() -> dict:
    return json.loads(RECORDS[0].read_text())["config"]


def test_a_new_execution_setting_does_not_change_the_checksum():
    config = _config()
    assert run_checksum({**config, "logger": "tensorboard", "debug": True, "cache_dir": "/elsewhere"}) == \
        run_checksum(config)


def test_a_new_key_counts_unless_declared_at_its_neutral_default(monkeypatch):
    config = _config()
    grown = {**config, "probe": {**config["probe"], "label_smoothing": 0.0}}
    assert run_checksum(grown) != run_checksum(config)  # undeclared: a new key is a new protocol
    monkeypatch.setattr(record_module, "NEUTRAL_DEFAULTS", {"probe.label_smoothing": 0.0})
    assert run_checksum(grown) == run_checksum(config)  # declared, at the value that behaves as before
    changed = {**config, "probe": {**config["probe"], "label_smoothing": 0.1}}
    assert run_checksum(changed) != run_checksum(config)  # any other value is another protocol


def test_protocol_values_change_the_checksum():
    config = _config()
    for group, key in (("probe", "hidden"), ("trainer", "max_epochs"), ("task", "name"), ("model", "name")):
        value = config[group][key]
        other = value + 1 if isinstance(value, int) else f"{value}-other"
        assert run_checksum({**config, group: {**config[group], key: other}}) != run_checksum(config), key
    assert run_checksum({**config, "layers": [0]}) != run_checksum(config)
