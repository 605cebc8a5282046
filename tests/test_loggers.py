"""``logger=csv|tensorboard|wandb|none``: the probe sweep's curves, per head, where the console says they are.

Why these tests: a researcher watches a sweep through these files, so the values must be the ones the run decides
on (``module.history``, the record's ``valid_history`` and ``layer_weights``), one curve per head; ``logger=none``
must give the trainer no logger and write nothing; a logger whose optional package is missing must be refused
before any data work; and the logger must never change which run a config is (its record's name and protocol
checksum). One small run (a planted-signal encoder: 5 hidden states, 2 learning rates, 12 heads with 2 weighted
sums) is shared by the tests that read its files; the other runs read its feature cache.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from rich.console import Console

from benchmark.cli import report_user_errors
from benchmark.config_store import validate_run_config
from benchmark.distributed import Ranks
from benchmark.errors import ConfigError
from benchmark.loggers import next_version, run_log_folder, run_logging
from benchmark.record import record_path, run_checksum
from benchmark.run_checks import check_config
from benchmark.runner import run
from benchmark.schema import LOGGER_SCHEMAS
from tests.conftest import REPO_ROOT
from tests.planted import PlantedEncoder

# model=mfcc names the records; the runs pass the planted encoder itself (5 hidden states: 5 layers + weighted sum);
# rendered at its 16 kHz, so no clip is resampled
SMALL = ["task=synth_key", "model=mfcc", "task.n_train=24", "task.n_valid=12", "task.n_test=12",
         "task.clip_seconds=1.0", "task.sample_rate=16000", "trainer.accelerator=cpu", "trainer.max_epochs=5",
         "trainer.patience=2", "probe.lr=[1e-3,1e-2]", "probe.hidden=16"]
LOGS_LINE = re.compile(r"^logs: (\S+) \((.*)\)$", re.MULTILINE)


def _compose(tmp: Path, *overrides: str) -> dict:
    """The run config as ``python -m benchmark run`` composes it, data and cache shared by this file's runs."""
    base = [f"data_root={tmp / 'data'}", f"cache_dir={tmp / 'cache'}", f"results_dir={tmp / 'results'}",
            "num_workers=0"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=[*base, *overrides]), resolve=True)


def _results_in(config: dict, folder: Path) -> dict:
    """``config`` with its record and logs under ``folder`` (the features still come from the shared cache)."""
    return {**config, "results_dir": str(folder), "log_dir": str(folder / "logs")}


def _run(config: dict) -> tuple[dict, str]:
    """(record, console text) of one run on the planted encoder."""
    out = io.StringIO()
    record = run(config, console=Console(file=out, width=100), encoder=PlantedEncoder(planted=3))
    return record, out.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("loggers")


@pytest.fixture(scope="module")
def composed(tmp) -> dict[str, dict]:
    """Each logger's run config, composed once (``csv``: the default, with no ``logger=`` override)."""
    names = sorted(p.stem for p in (REPO_ROOT / "configs" / "logger").glob("*.yaml"))
    assert names == ["csv", "none", "tensorboard", "wandb"]
    return {name: _compose(tmp, *SMALL, *([] if name == "csv" else [f"logger={name}"])) for name in names}


@pytest.fixture(scope="module")
def csv_run(composed) -> SimpleNamespace:
    """The default logger (csv) on a small sweep: its config, record, console text and the folder it names."""
    config = composed["csv"]
    record, printed = _run(config)
    [(folder, about)] = LOGS_LINE.findall(printed)
    return SimpleNamespace(config=config, record=record, printed=printed, folder=Path(folder), about=about)


# ------------------------------------------------------------------------------------------------ csv (default)
def test_the_csv_log_is_where_the_console_says_and_named_like_the_record(csv_run):
    record = record_path(Path(csv_run.config["results_dir"]), csv_run.config)
    assert csv_run.config["logger"] == {"name": "csv"}  # the default of configs/config.yaml
    assert csv_run.folder == run_log_folder(csv_run.config, record) / "version_0"
    assert csv_run.folder.parent.name == record.stem  # <log_dir>/<task>/<model>/seed0-<checksum>
    assert csv_run.folder.parent.parent == Path(csv_run.config["results_dir"]) / "logs" / "synth_key" / "mfcc"
    assert sorted(p.name for p in csv_run.folder.iterdir()) == ["hparams.yaml", "metrics.csv"]
    assert "CSV" in csv_run.about and f"record: {record}" in csv_run.printed
    hparams = OmegaConf.load(csv_run.folder / "hparams.yaml")
    assert hparams.record == str(record) and hparams.primary_metric == csv_run.record["primary_metric"]
    assert hparams.seed == 0 and hparams.probe.lr == [1e-3, 1e-2]  # the run's config, to tell runs apart


def test_every_heads_validation_curve_equals_the_records_history(csv_run):
    history = csv_run.record["valid_history"]  # module.history: [epoch][head], the primary metric
    names = [head["name"] for head in csv_run.record["heads"]]
    assert len(names) == 12 and "layer_3@lr=0.001" in names and "weighted_sum@lr=0.01" in names
    rows = [r for r in _rows(csv_run.folder / "metrics.csv") if r[f"valid/{names[0]}"]]
    assert len(rows) == len(history) >= 3  # one row per epoch trained
    assert [int(r["epoch"]) for r in rows] == list(range(len(history)))
    for h, name in enumerate(names):
        assert [float(r[f"valid/{name}"]) for r in rows] == [epoch[h] for epoch in history], name  # exact
    # a head stops after `patience` epochs without a better score: at epoch e, those whose best is older have
    best = np.array([head["best_epoch"] for head in csv_run.record["heads"]])
    training = [int(r["heads_training"]) for r in rows]
    assert training == [int((best > e - 2).sum()) for e in range(len(rows))]  # trainer.patience=2
    assert training[0] == len(names) > training[-1]
    losses = [r for r in _rows(csv_run.folder / "metrics.csv") if r["train_loss"]]
    assert len(losses) == len(history)  # Lightning's own epoch-level training loss is kept
    assert [r["step"] for r in losses] == [r["step"] for r in rows]  # on the same x axis


def test_layer_weight_columns_sum_to_one_and_match_the_record_at_the_best_epoch(csv_run):
    record, rows = csv_run.record, [r for r in _rows(csv_run.folder / "metrics.csv") if r["heads_training"]]
    weighted = [head for head in record["heads"] if head["layer"] is None]
    assert [h["name"] for h in weighted] == list(record["layer_weights"]) == ["weighted_sum@lr=0.001",
                                                                              "weighted_sum@lr=0.01"]
    for head in weighted:
        columns = [f"layer_weights/{head['name']}/state_{k}" for k in range(5)]  # 5 hidden states
        weights = np.array([[float(r[c]) for c in columns] for r in rows])
        assert weights.shape == (len(rows), 5)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
        assert not np.allclose(weights[-1], 0.2)  # they moved from the uniform start
        # the record keeps the weights of the head's best epoch (its restored best state)
        np.testing.assert_allclose(weights[head["best_epoch"]], record["layer_weights"][head["name"]], atol=1e-7)
    assert not [c for c in rows[0] if c.startswith("layer_weights/layer_")]  # layer heads have no weights


def test_a_rerun_writes_the_next_version_and_the_logger_never_changes_the_run(csv_run):
    config = csv_run.config
    record = record_path(Path(config["results_dir"]), config)
    assert next_version(csv_run.folder.parent) == 1  # a rerun (force=true, a resume) keeps version_0 intact
    assert next_version(csv_run.folder.parent / "absent") == 0
    for other in ({**config, "logger": {"name": "tensorboard"}}, {**config, "logger": {"name": "none"}},
                  {**config, "logger": {"name": "wandb", "project": "p", "mode": "online", "entity": None}},
                  {**config, "log_dir": "/elsewhere"}, {k: v for k, v in config.items() if k != "logger"}):
        assert record_path(Path(config["results_dir"]), other) == record  # the same record: found, not rerun
        assert run_checksum(other) == run_checksum(config)
    assert csv_run.record["protocol_checksum"] == run_checksum({k: v for k, v in config.items() if k != "seed"})


# ----------------------------------------------------------------------------------------------------- none
def test_logger_none_writes_no_file_and_prints_no_logs_line(tmp, composed, csv_run):
    config = _results_in(composed["none"], tmp / "results-none")
    record, printed = _run(config)  # the features come from csv_run's cache: training only
    assert record["timings"]["encoder_forward_calls"] == 0
    assert record["valid_history"] == csv_run.record["valid_history"]  # logging changes no result
    assert not LOGS_LINE.search(printed)
    assert sorted(p.name for p in (tmp / "results-none").iterdir()) == ["runs"]  # no logs folder at all
    assert run_logging(config, record_path(tmp / "results-none", config)) is None  # no logger, no callback


def test_ranks_other_than_zero_get_no_logger(csv_run, tmp_path):
    config = {**csv_run.config, "log_dir": str(tmp_path / "logs")}
    rank_one = Ranks(SimpleNamespace(global_rank=1, world_size=2))
    assert run_logging(config, tmp_path / "seed0-x.json", ranks=rank_one) is None
    assert run_logging(config, tmp_path / "seed0-x.json") is not None  # rank zero (a lone process) gets one
    assert not (tmp_path / "logs").exists()  # building it creates nothing: files appear when it first logs


# ------------------------------------------------------------------------------------------------- refusals
def test_a_missing_tensorboard_is_refused_before_any_data_work(composed, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what `import tensorboard` meets without the package
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    config = {**_results_in(composed["tensorboard"], tmp_path / "results"), "data_root": str(tmp_path / "data"),
              "cache_dir": str(tmp_path / "cache")}
    encoder = PlantedEncoder(planted=3)
    with pytest.raises(ConfigError) as refused:
        run(config, console=Console(quiet=True), encoder=encoder)
    message = str(refused.value)
    assert message.startswith("logger=tensorboard needs the tensorboard package") and "\n" not in message
    assert 'pip install -e ".[tensorboard]"' in message and "logger=csv" in message
    assert encoder.calls == 0 and not (tmp_path / "data").exists() and not (tmp_path / "results").exists()
    # on the command line: one paragraph, no traceback
    assert report_user_errors(lambda: run(config, console=Console(quiet=True))) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: logger=tensorboard needs") and err.count("\n") == 1 and "Traceback" not in err


def test_csv_and_none_need_no_extra_package_and_log_dir_is_checked(composed, tmp_path, monkeypatch):
    for name in ("tensorboard", "torch.utils.tensorboard", "wandb"):
        monkeypatch.setitem(sys.modules, name, None)
    for logger in ("csv", "none"):
        check_config(_results_in(composed[logger], tmp_path / "results"))  # the checks a run makes first
    assert list(tmp_path.iterdir()) == []  # the folders' write checks leave nothing behind
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[wandb\]"'):
        check_config(_results_in(composed["wandb"], tmp_path / "results"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match=re.escape(f"log_dir={tmp_path / 'a-file'} is not writable")):
        check_config({**composed["csv"], "log_dir": str(tmp_path / "a-file")})
    check_config({**composed["none"], "log_dir": str(tmp_path / "a-file")})  # no logger: log_dir is not used


@pytest.mark.parametrize("overrides,fragment", [
    (["logger.projet=x"], "Key 'projet' not in 'LoggerSpec'"),  # a misspelt key
    (["logger=csv", "logger.project=x"], "Key 'project' not in 'LoggerSpec'"),  # a wandb key on another logger
    (["logger=wandb", "logger.projet=x"], "Key 'projet' not in 'WandbLoggerSpec'"),
    (["logger=wandb", "logger.entity=[a,b]"], "Cannot convert 'list' to string"),  # a wrong type
])
def test_a_wrong_logger_key_or_type_is_refused_while_composing(tmp_path, overrides, fragment):
    with pytest.raises(ConfigCompositionException) as refused:
        _compose(tmp_path, *overrides)
    message = str(refused.value) + str(refused.value.__cause__)
    assert fragment in message and overrides[-1].split("=")[0] in message, message


def test_an_unknown_logger_lists_the_loggers(tmp_path):
    with pytest.raises(MissingConfigException) as refused:
        _compose(tmp_path, "logger=foo")
    message = str(refused.value)
    assert "Could not find 'logger/foo'" in message
    listed = message.split("Available options in 'logger':")[1].split("Config search path")[0]
    assert re.findall(r"\t(\w+)\n", listed) == ["csv", "none", "tensorboard", "wandb"]


def test_a_wrong_logger_value_is_refused_with_the_choices(composed):
    config = composed["wandb"]
    assert validate_run_config(config).logger.mode == "offline"  # wandb.yaml: nothing leaves the machine
    for section, fragment in (({**config["logger"], "mode": "sideways"}, "logger.mode='sideways': must be one of "
                               "offline, online"),
                              ({"name": "syslog"}, "logger.name='syslog' is not a known logger"),
                              ("csv", "logger='csv': expected a logger config")):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            validate_run_config({**config, "logger": section})


# ------------------------------------------------------------------------------------ optional packages
def test_tensorboard_writes_the_same_curves_to_an_event_file(tmp, composed, csv_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _results_in(composed["tensorboard"], tmp / "results-tb")
    record, printed = _run(config)
    [(folder, about)] = LOGS_LINE.findall(printed)
    assert Path(folder) == run_log_folder(config, record_path(tmp / "results-tb", config)) / "version_0"
    assert f"tensorboard --logdir {tmp / 'results-tb' / 'logs'}" in about
    [events] = Path(folder).glob("events.out.tfevents.*")
    scalars = EventAccumulator(str(events)).Reload()
    history = np.array(record["valid_history"])
    for h, head in enumerate(record["heads"]):  # TensorBoard stores float32
        values = [event.value for event in scalars.Scalars(f"valid/{head['name']}")]
        np.testing.assert_allclose(values, history[:, h], rtol=1e-6)
    assert len(scalars.Scalars("train_loss")) == len(history)
    assert "layer_weights/weighted_sum@lr=0.001/state_3" in scalars.Tags()["scalars"]


@pytest.mark.slow  # ~4 s (wandb's service process); its builder and the callback's values are covered by default
# in test_wandb_logger_is_offline_under_the_log_folder and test_every_heads_validation_curve_equals_the_records_history
def test_wandb_offline_writes_a_run_under_the_log_folder(tmp, composed, csv_run):
    pytest.importorskip("wandb")
    config = _results_in(composed["wandb"], tmp / "results-wandb")
    record, printed = _run(config)
    [(folder, about)] = LOGS_LINE.findall(printed)
    assert "wandb offline, project mir-probe-benchmark" in about and "wandb sync" in about
    [offline] = (Path(folder) / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb")) and record["valid_history"] == csv_run.record["valid_history"]


def test_wandb_logger_is_offline_under_the_log_folder(composed, tmp_path):
    pytest.importorskip("wandb")
    assert composed["wandb"]["logger"] == {"name": "wandb", "project": "mir-probe-benchmark", "mode": "offline",
                                           "entity": None}  # configs/logger/wandb.yaml
    config = {**_results_in(composed["wandb"], tmp_path),
              "logger": {"name": "wandb", "project": "probe-sweeps", "mode": "offline", "entity": None}}
    logs = run_logging(config, tmp_path / "seed0-abc.json")
    [logger] = logs.loggers
    assert type(logger).__name__ == "WandbLogger" and logger.save_dir == str(logs.folder)
    assert logs.folder == tmp_path / "logs" / "synth_key" / "mfcc" / "seed0-abc" / "version_0"
    assert logger._wandb_init["mode"] == "offline" and logger._wandb_init["project"] == "probe-sweeps"
    assert logger._wandb_init["name"] == "synth_key/mfcc/seed0-abc"


def test_every_logger_config_names_its_schema_and_composes_into_it(composed):
    for name, config in composed.items():
        raw = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "configs" / "logger" / f"{name}.yaml"))
        assert raw["defaults"] == [f"/schema/logger/{name}@_here_", "_self_"], name
        spec = validate_run_config(config).logger
        assert type(spec) is LOGGER_SCHEMAS[name] and spec.name == name
