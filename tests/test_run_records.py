"""Typed, versioned run records, and a leaderboard that renders the committed records exactly as before.

The expected tables under tests/fixtures/leaderboard/ were rendered from the committed records by the leaderboard
as it was before records had a type (the single-module benchmark/leaderboard.py; README.md there says how), so
they pin the output across the split into a package: every format, the variant labels (which rely on each record's
config-file defaults), protocols, published rows and deltas. Only the generation time may differ.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console

import benchmark.leaderboard as leaderboard
from benchmark.leaderboard.records import load_records, parse_record, read_record
from benchmark.run_record import (SCHEMA_VERSION, LayerScores, RecordFormatError, RunRecord,
                                  _file_defaults_json, config_file_defaults)
from tests.conftest import REPO_ROOT

RECORDS = REPO_ROOT / "tests" / "fixtures" / "records"
COMMITTED_RESULTS = REPO_ROOT / "results"
EXPECTED = REPO_ROOT / "tests" / "fixtures" / "leaderboard"

# expected file -> (records folder, build_leaderboard keywords, format)
CASES: dict[str, tuple[str, dict, str]] = {
    "records.md": ("records", {}, "markdown"),
    "records.csv": ("records", {}, "csv"),
    "records.tex": ("records", {}, "latex"),
    "records-by-layer.csv": ("records", {"by_layer": True}, "csv"),
    "records-tasks-marble.tex": ("records", {"tasks": ["synth_tags", "gtzan"], "published": "marble",
                                             "percent": False, "ddof": 0}, "latex"),
    "crafted.md": ("crafted", {"published": "marble"}, "markdown"),
    "crafted.csv": ("crafted", {"published": "marble"}, "csv"),
}


def craft_records(folder: Path) -> Path:
    """The committed records plus relabelled copies of them that exercise what the plain set does not: a
    MERT-v1-95M run as GTZAN (published row and delta), runs with an overridden task setting and runs with an
    overridden model setting (rows of their own, named by the setting)."""
    shutil.copytree(RECORDS, folder)
    for path in sorted((RECORDS / "runs" / "synth_chords" / "mert-v1-95m").glob("*.json")):
        record = json.loads(path.read_text())
        record["task"] = "gtzan"
        (folder / "crafted").mkdir(exist_ok=True)
        (folder / "crafted" / path.name).write_text(json.dumps(record))
    for path in sorted((RECORDS / "runs" / "synth_chords" / "mfcc").glob("*.json")):
        record = json.loads(path.read_text())
        if record["config"]["probe"]["name"] != "mlp":
            continue
        record["config"]["task"]["window_seconds"] = 2.0
        record["protocol_checksum"] = "f" * 20
        record["selected"]["test"]["accuracy"] = 0.5
        (folder / "windowed").mkdir(exist_ok=True)
        (folder / "windowed" / path.name).write_text(json.dumps(record))
    for path in sorted((RECORDS / "runs" / "synth_tags" / "mfcc").glob("*.json"))[:2]:
        record = json.loads(path.read_text())
        record["config"]["model"]["dtype"] = "bf16"
        record["protocol_checksum"] = "e" * 20
        (folder / "dtype").mkdir(exist_ok=True)
        (folder / "dtype" / path.name).write_text(json.dumps(record))
    return folder


def render_case(module, name: str, records: list) -> str:
    """``name``'s table from ``records`` with ``module``'s leaderboard (this one, or the pre-split one)."""
    _, kwargs, fmt = CASES[name]
    board = module.build_leaderboard(records, **kwargs)
    if fmt == "markdown":
        return module.render_markdown(board, "python -m benchmark leaderboard", source="records/")
    if fmt == "latex":
        return module.render_latex(board, "python -m benchmark leaderboard format=latex")
    return module.render_csv(board)


def case_folder(name: str, tmp_path: Path) -> Path:
    return RECORDS if CASES[name][0] == "records" else craft_records(tmp_path / "crafted")


def _untimed(text: str) -> str:
    return re.sub(r" on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", " on <time>", text)


def _as_schema_1(source: Path, target: Path) -> Path:
    """Every record under ``source`` re-written as the current schema (what the runner writes now)."""
    for path in sorted(source.rglob("*.json")):
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(read_record(path).to_dict(), indent=2))
    return target


def _refuse_config_files(monkeypatch) -> None:
    """From here on, any read of the checkout's config files fails (cached reads included)."""
    def refuse():
        raise AssertionError("read this checkout's config files")

    _file_defaults_json.cache_clear()
    monkeypatch.setattr("benchmark.resources.config_dir", refuse)


@pytest.fixture(autouse=True)
def _fresh_config_cache():
    _file_defaults_json.cache_clear()
    yield
    _file_defaults_json.cache_clear()


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_records_render_as_before_the_split(name, tmp_path):
    records = load_records(case_folder(name, tmp_path))
    assert _untimed(render_case(leaderboard, name, records)) == _untimed((EXPECTED / name).read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_records_of_the_current_schema_render_the_same_without_any_config_file(name, tmp_path, monkeypatch):
    current = _as_schema_1(case_folder(name, tmp_path), tmp_path / "schema1")  # migrating reads the configs
    _refuse_config_files(monkeypatch)
    records = load_records(current)
    assert len(records) > 0 and {r.schema_version for r in records} == {SCHEMA_VERSION}
    assert _untimed(render_case(leaderboard, name, records)) == _untimed((EXPECTED / name).read_text())
    from benchmark.plots import heatmap_figure, layer_figure

    layer_figure(records, "synth_chords")  # the plots read the same records, and no config file either
    heatmap_figure(leaderboard.build_leaderboard(records))


def test_a_changed_default_does_not_change_how_current_records_render(tmp_path, monkeypatch):
    """The reason records carry their defaults: with task.window_seconds=2.0 overridden in some runs, the
    overridden runs get a row of their own. Should the config file's default later become 2.0, records of the
    current schema still render as they did; only migrated schema-0 records follow the checkout (documented)."""
    crafted = craft_records(tmp_path / "crafted")
    current = _as_schema_1(crafted, tmp_path / "schema1")
    before = render_case(leaderboard, "crafted.md", load_records(current))
    configs = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "configs", configs)
    task_file = configs / "task" / "synth_chords.yaml"
    task_file.write_text(task_file.read_text().replace("window_seconds: null", "window_seconds: 2.0"))
    _file_defaults_json.cache_clear()
    monkeypatch.setattr("benchmark.resources.config_dir", lambda: configs)
    assert _untimed(render_case(leaderboard, "crafted.md", load_records(current))) == _untimed(before)
    migrated = render_case(leaderboard, "crafted.md", load_records(crafted))
    assert "mfcc [task.window_seconds=null]" in migrated and "mfcc [task.window_seconds=2.0]" not in migrated
    assert "mfcc [task.window_seconds=2.0]" in before


def test_old_records_migrate_on_read_and_stay_untouched_on_disk():
    # every record written before the schema existed (committed results rerun since then are schema 1 already)
    paths = [p for p in sorted(RECORDS.rglob("*.json")) + sorted((COMMITTED_RESULTS / "runs").rglob("*.json"))
             if "schema_version" not in json.loads(p.read_text())]
    assert len(paths) >= 13 + 7
    raw = {p: p.read_bytes() for p in paths}
    for path in paths:
        data = json.loads(raw[path])
        record = read_record(path)
        assert record.schema_version == SCHEMA_VERSION and record.path == path
        assert record.config_defaults == config_file_defaults(data["config"])
        assert set(record.config_defaults) == {"model", "task", "probe"}
        assert record.config_defaults["model"]["name"] == data["config"]["model"]["name"]
        # the same JSON keys and values as the file, plus the two keys of schema 1
        out = record.to_dict()
        assert set(out) == set(data) | {"schema_version", "config_defaults"}
        assert json.dumps({k: out[k] for k in data}) == json.dumps(data)
        assert isinstance(record.selected, LayerScores) and record.selected.name == data["selected"]["name"]
        assert [row.name for row in record.layers] == [row["name"] for row in data["layers"]]
    assert all(p.read_bytes() == raw[p] for p in paths)


def test_a_current_record_round_trips_through_json():
    record = read_record(next((RECORDS / "runs" / "synth_tags" / "mert-v1-95m").glob("seed0-*.json")))
    record.extra["written_by_a_later_minor_change"] = {"kept": True}
    again = parse_record(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert list(record.to_dict())[0] == "schema_version"
    assert record.to_dict()["written_by_a_later_minor_change"] == {"kept": True}


def test_newer_schemas_and_non_records_are_skipped_with_a_warning(tmp_path, caplog):
    source = next((RECORDS / "runs" / "synth_chords" / "mfcc").glob("seed1-*.json"))
    data = json.loads(source.read_text())
    (tmp_path / "ok.json").write_text(source.read_text())
    (tmp_path / "newer.json").write_text(json.dumps({**data, "seed": 7, "schema_version": SCHEMA_VERSION + 1}))
    (tmp_path / "bench.json").write_text(json.dumps({"machine": "x"}))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "bad_selected.json").write_text(json.dumps({**data, "seed": 8, "selected": {"valid": {}}}))
    (tmp_path / "bad_version.json").write_text(json.dumps({**data, "seed": 9, "schema_version": "one"}))
    with caplog.at_level(logging.WARNING, logger="benchmark.leaderboard.records"):
        records = load_records(tmp_path)
    assert [r.seed for r in records] == [data["seed"]]
    assert "newer.json" in caplog.text and f"schema_version {SCHEMA_VERSION + 1}" in caplog.text
    assert "ignored 4 JSON file(s)" in caplog.text
    with pytest.raises(RecordFormatError, match="selected"):
        parse_record({**data, "selected": {"valid": {}}})


def test_build_leaderboard_accepts_records_as_json_objects():
    raw = [json.loads(p.read_text()) for p in sorted((RECORDS / "runs").rglob("*.json"))]
    typed = leaderboard.render_csv(leaderboard.build_leaderboard(load_records(RECORDS)))
    assert leaderboard.render_csv(leaderboard.build_leaderboard(raw)) == typed
    assert all(isinstance(r, RunRecord) for r in leaderboard.group_records(raw).records)


def test_every_format_shows_the_same_cells():
    """One cell iterator: each format has one field per value cell (csv: mean, std, n per metric and the
    average's task count), in the order of value_columns."""
    board = leaderboard.build_leaderboard(load_records(RECORDS), published="marble", tasks=["synth_chords", "gtzan"])
    columns = leaderboard.value_columns(board)
    assert [c.kind for c in columns] == ["metric", "layer", "metric", "average"]
    md = [line for line in leaderboard.render_markdown(board, "cmd").splitlines() if line.startswith("| ")]
    lead = len(["model", "protocol", "source"])
    assert {line.count(" | ") + 1 for line in md} == {lead + len(columns)}
    header = leaderboard.render_csv(board).splitlines()[0].split(",")
    assert header[6:] == ["synth_chords/accuracy", "synth_chords/accuracy/std", "synth_chords/accuracy/n",
                          "synth_chords/layer", "gtzan/accuracy", "gtzan/accuracy/std", "gtzan/accuracy/n",
                          "average", "average_tasks"]
    console = Console(record=True, width=300, file=None)
    with console.capture():
        leaderboard.render_terminal(board, console)
    for row, values in leaderboard.row_values(board):
        assert len(values) == len(columns)
        assert all(v.kind == c.kind for v, c in zip(values, columns))


def test_the_runner_writes_the_current_schema(compose_config, tmp_path):
    from benchmark.record import _jsonable
    from benchmark.runner import run

    size = ["task.n_train=24", "task.n_valid=12", "task.n_test=12", "task.clip_seconds=0.75",
            "task.sample_rate=16000", "trainer.max_epochs=2", "trainer.patience=2"]
    config = compose_config("task=synth_chords", "model=mfcc", "task.window_seconds=2.0", *size)
    returned = run(config, console=Console(quiet=True))
    (path,) = sorted((tmp_path / "results" / "runs").rglob("*.json"))
    written = json.loads(path.read_text())
    assert written == json.loads(json.dumps(returned, default=_jsonable))  # run() returns what it wrote
    assert written["schema_version"] == SCHEMA_VERSION and list(written)[0] == "schema_version"
    assert written["config_defaults"] == config_file_defaults(config)
    assert written["config_defaults"]["task"]["window_seconds"] is None  # the file's default, not the override
    committed = json.loads(next((RECORDS / "runs" / "synth_chords" / "mfcc").glob("seed0-*.json")).read_text())
    assert list(written)[1:-1] == list(committed)  # the keys of earlier records, in their order
    record = read_record(path)
    assert record.to_dict() == written
    board = leaderboard.build_leaderboard([record])
    assert [r.key.label for r in board.rows] == ["mfcc"]  # a single record: nothing varies, no variant label


def test_the_wheel_ships_the_leaderboard_package():
    import tomllib

    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "benchmark.leaderboard" in packages
