"""A wrong name, key or value on the command line fails in seconds with the valid choices or the fix.

Why: a real run reads the dataset and runs the encoder for hours before training; every mistake that can be seen
from the config (or from the config and the encoder) must be refused before any of that. Each runner test
asserts that the data folder was never created, i.e. the refusal came before any data work.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

import benchmark.tasks.registry as registry
from benchmark.encoders.base import Encoder
from benchmark.runner import run
from benchmark.sweep import ConfigError, check_sweep_config, parse_layers
from benchmark.tasks.base import Task, Track
from tests.conftest import REPO_ROOT, main_in_process


def _cli(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    """The command line with data, cache and results in ``tmp``, in process: every case here fails while the config
    is composed, in a fraction of a second (:func:`tests.conftest.main_in_process`)."""
    return main_in_process([*args, f"data_root={tmp / 'data'}", f"cache_dir={tmp / 'cache'}",
                            f"results_dir={tmp / 'results'}", f"hydra.run.dir={tmp / 'hydra'}"], tmp)


# --- names and keys (Hydra) -------------------------------------------------------------------------------------
@pytest.mark.parametrize("group,valid", [
    ("task", ["synth_chords", "gtzan", "mtt", "giantsteps_key", "emomusic", "custom"]),
    ("model", ["mert-v1-330m", "mert-v1-95m", "music2vec-v1", "crepe-tiny", "mfcc"]),
    ("probe", ["mlp", "linear"]),
    ("trainer", ["default"]),
])
def test_unknown_name_lists_the_valid_names(tmp_path: Path, group: str, valid: list[str]) -> None:
    out = _cli("run", f"{group}=no_such_{group}", tmp=tmp_path)
    assert out.returncode != 0
    assert f"Could not find '{group}/no_such_{group}'" in out.stderr
    listed = out.stderr.split(f"Available options in '{group}':", 1)[1]
    for name in valid:
        assert f"\t{name}\n" in listed, (name, out.stderr)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("override,key", [("task.no_such=1", "task.no_such"), ("no_such=1", "no_such"),
                                          ("probe.no_such_key=0.1", "probe.no_such_key"),
                                          ("trainer.max_epoch=3", "trainer.max_epoch")])
def test_unknown_override_key_is_refused_naming_the_key(tmp_path: Path, override: str, key: str) -> None:
    out = _cli("run", override, tmp=tmp_path)
    assert out.returncode != 0
    # a group with a schema names it ("Key 'no_such' not in 'SynthChordsSpec'"), the rest says "not in struct"
    assert f"Could not override '{key}'" in out.stderr
    assert f"Key '{key.split('.')[-1]}' not in '" in out.stderr or "is not in struct" in out.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("override,fragment", [
    ("seed=1.5", "Value '1.5' of type 'float' could not be converted to Integer"),
    ("seed=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
    ("model.batch_size=x", "Value 'x' of type 'str' could not be converted to Integer"),
    ("task.n_train=many", "Value 'many' of type 'str' could not be converted to Integer"),
    ("trainer.deterministic=maybe", "Value 'maybe' is not a valid bool"),
])
def test_a_value_of_the_wrong_type_is_refused_while_composing(override: str, fragment: str) -> None:
    """The schemas make Hydra refuse it before the run starts (``seed=1.5`` used to be recorded as seed 1)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        with pytest.raises(ConfigCompositionException) as info:
            compose(config_name="config", overrides=["model=mfcc", override])
    message = str(info.value) + str(info.value.__cause__)
    assert fragment in message and override.split("=")[0] in message, message


def test_a_wrong_type_reaches_the_user_without_a_traceback(tmp_path: Path) -> None:
    out = _cli("run", "seed=1.5", tmp=tmp_path)
    assert out.returncode == 1
    assert "Error merging override seed=1.5" in out.stderr and "full_key: seed" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "data").exists()


def test_data_root_that_is_a_file_is_refused(compose_config, tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("")
    config = compose_config("model=mfcc", f"data_root={afile}")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run(config, console=Console(quiet=True))


def test_a_bad_value_reaches_the_user_from_the_cli_before_any_work(tmp_path: Path) -> None:
    out = _cli("run", "model=mfcc", "layers=[3]", tmp=tmp_path)
    assert out.returncode != 0
    assert "layers=[3] out of range: this encoder has hidden states 0..0" in out.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "cache").exists()


# --- values the runner refuses before any work -------------------------------------------------------------------
def _refused(config: dict[str, Any], *fragments: str, encoder: Encoder | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        run(config, console=Console(quiet=True), encoder=encoder)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not Path(config["data_root"]).exists(), "the refusal came after the data were touched"
    assert not Path(config["cache_dir"]).exists()
    return message


@pytest.mark.parametrize("overrides,fragments", [
    (["probe.lr=[]"], ["probe.lr=[]", "probe.lr=[1e-3]"]),
    (["probe.lr=[0.001,-1]"], ["positive", "-1"]),
    (["probe.lr=fast"], ["probe.lr='fast'"]),
    (["trainer.max_epochs=0"], ["trainer.max_epochs=0", "whole number >= 1"]),
    (["trainer.batch_size=0"], ["trainer.batch_size=0"]),
    (["trainer.patience=-1"], ["trainer.patience=-1"]),
    (["probe.dropout=1.0"], ["probe.dropout=1.0"]),
    (["layers=[]"], ["layers=[] selects no hidden state"]),
    (["layers=[2,2]"], ["twice"]),
    (["layers=top"], ["layers='top'", "layers=[3,7]"]),
    (["max_missing_fraction=5"], ["max_missing_fraction=5"]),
    (["task.window_seconds=-1"], ["task.window_seconds=-1", "null"]),
    (["task.hop_seconds=0"], ["task.hop_seconds=0"]),
    (["task=gtzan", "task.window_min_fraction=1.5"], ["task.window_min_fraction=1.5"]),
    # the schemas' value checks (benchmark/schema.py): right type, impossible value
    (["seed=-1"], ["seed=-1", ">= 0"]),
    (["num_workers=-1"], ["num_workers=-1", ">= 0"]),
    (["shard_tracks=0"], ["shard_tracks=0", ">= 1"]),
    (["model.batch_size=0"], ["model.batch_size=0", ">= 1"]),
    (["model.batch_size=-4"], ["model.batch_size=-4"]),
    (["model.hop_ms=0"], ["model.hop_ms=0", "positive"]),
    (["task.n_train=-1"], ["task.n_train=-1", ">= 0"]),
    (["task.clip_seconds=0.1"], ["task.clip_seconds=0.1", "> 0.5"]),
    (["task=synth_key", "task.melody_probability=2"], ["task synth_key", "melody_probability must be in [0, 1]"]),
])
def test_config_values_that_cannot_work_are_refused_first(compose_config, overrides, fragments) -> None:
    _refused(compose_config("model=mfcc", *overrides), *fragments)


def test_layers_out_of_range_names_the_valid_range(compose_config) -> None:
    _refused(compose_config("model=chroma", "layers=[0,1]"), "layers=[1] out of range", "0..0", "layers=all")


def test_window_shorter_than_the_receptive_field_is_refused(compose_config) -> None:
    # mfcc: a 1024-point FFT at 16 kHz, 64 ms; 10 ms windows yield no frame
    _refused(compose_config("model=mfcc", "task.window_seconds=0.01"), "task.window_seconds=0.01",
             "receptive field of mfcc", "1024 samples at 16000 Hz = 64.0 ms", "at least 0.064")


def test_trailing_windows_under_the_receptive_field_are_refused(compose_config) -> None:
    _refused(compose_config("task=gtzan", "model=mfcc", "task.window_seconds=0.1",
                            "task.window_min_fraction=0.1"),
             "task.window_min_fraction=0.1", "Raise task.window_min_fraction to at least 0.640")


def test_valid_settings_pass_the_checks() -> None:
    """The shipped defaults and the README's examples are accepted (guards the checks against over-refusing)."""
    check_sweep_config({"name": "mlp", "lr": [1e-3], "hidden": 512, "dropout": 0.2},
                       {"max_epochs": 100, "patience": 10, "lr_decay_patience": 5, "lr_decay_factor": 0.5,
                        "batch_size": 64})
    check_sweep_config({"name": "linear", "lr": 1e-3, "hidden": 0, "dropout": 0.0}, {"max_epochs": 1})
    check_sweep_config({"lr": [1e-4, 1e-3]}, {})
    assert parse_layers("all") is None and parse_layers(None) is None
    assert parse_layers(6) == [6] and parse_layers("6") == [6] and parse_layers([3, 7]) == [3, 7]


# --- an incompatible task/encoder pair ---------------------------------------------------------------------------
class ClipOnlyEncoder(Encoder):
    """An encoder that summarises a clip into one vector per layer: it has no frames to give a beat tracker."""

    name = "clip-only"
    sample_rate = 16000
    num_layers = 2
    dim = 4
    frame_rate = 1.0
    context_seconds = 1.0
    min_samples = 400
    frame_level = False

    def hidden_states(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None):
        raise AssertionError("the encoder must not run for an incompatible pair")

    def identity(self) -> dict[str, Any]:
        return {"name": self.name}


class FramesEncoder(ClipOnlyEncoder):
    name = "frames"
    frame_level = True


class TinyFrameTask(Task):
    """A frame-level task whose data must never be touched by a refused run."""

    name = "tiny_frame"
    task_type = "multiclass"
    labels = ["beat", "no beat"]
    level = "frame"

    def tracks(self, data_root: Path) -> list[Track]:
        raise RuntimeError("tracks() reached: data work started")


@pytest.fixture
def frame_task_config(compose_config, monkeypatch) -> dict[str, Any]:
    monkeypatch.setitem(registry._TASKS, "tiny_frame_test", TinyFrameTask)
    config = compose_config()
    config["task"] = {"name": "tiny_frame", "kind": "tiny_frame_test", "window_seconds": None, "hop_seconds": None}
    return config


def test_every_builtin_encoder_can_return_frames() -> None:
    from benchmark.encoders.baselines import HandcraftedEncoder
    from benchmark.encoders.mert import MertEncoder

    assert Encoder.frame_level is True
    assert MertEncoder.frame_level is True and HandcraftedEncoder.frame_level is True


def test_frame_level_task_with_a_clip_only_encoder_is_refused_before_any_work(frame_task_config) -> None:
    message = _refused(frame_task_config, "task tiny_frame is frame-level", "model clip-only",
                       "frame_level = False", "model=mert-v1-95m", encoder=ClipOnlyEncoder())
    assert "clip-level task" in message


def test_the_same_task_with_a_frame_encoder_passes_the_check(frame_task_config) -> None:
    with pytest.raises(RuntimeError, match="data work started"):  # past the checks, into the data
        run(frame_task_config, console=Console(quiet=True), encoder=FramesEncoder())
