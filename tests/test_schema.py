"""The typed run spec: every config file composes into its schema, and the schemas' defaults are the files'.

Why: the schemas (benchmark/schema.py, and the kinds' own next to their code) are what Hydra checks overrides
against; a config file that no longer matches its schema, or a default in code that disagrees with the value a
user reads in the file, would make the suite run something other than what it says.
"""
from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import MISSING, OmegaConf

from benchmark.config_store import group_schema, validate_run_config
from benchmark.encoders.registry import encoder_schemas
from benchmark.resources import config_dir, config_file_values
from benchmark.schema import RunSpec
from benchmark.tasks.registry import _TASKS, task_schemas
from benchmark.tasks.synth_base import SynthTask

TASKS = sorted(p.stem for p in (config_dir() / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))


def _composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)), resolve=True)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_config_composes_into_its_schema(task: str) -> None:
    extra = ["task.manifest=x.csv"] if task == "custom" else []
    spec = validate_run_config(_composed(f"task={task}", "model=mfcc", *extra))
    kind = config_file_values(config_dir() / "task" / f"{task}.yaml")["kind"]
    assert type(spec.task) is task_schemas()[kind] and spec.task.name == task


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_composes_into_its_schema(model: str) -> None:
    spec = validate_run_config(_composed(f"model={model}"))
    assert type(spec.model) is encoder_schemas()[spec.model.kind] and spec.model.name == model


def test_every_config_file_names_the_schema_of_its_kind() -> None:
    for group in ("task", "model"):
        for path in sorted((config_dir() / group).glob("*.yaml")):
            raw = OmegaConf.to_container(OmegaConf.load(path))
            values = config_file_values(path)
            assert raw["defaults"][0] == f"/schema/{group}/{values['kind']}@_here_", path
            assert raw["defaults"][-1] == "_self_", path
            schema = group_schema(group, values)
            assert set(values) <= {f.name for f in dataclasses.fields(schema)}, path


def test_run_spec_defaults_are_the_config_file() -> None:
    values = OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml"))  # unresolved: hydra.* interpolates
    values.pop("hydra")
    values.pop("defaults")
    groups = ("protocol",)  # a config group (configs/protocol/), chosen in the defaults list
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec) if f.default is not MISSING
                and f.name not in groups}
    assert defaults == values


@pytest.mark.parametrize("kind", sorted(k for k, cls in _TASKS.items() if issubclass(cls, SynthTask)) or ["none"])
def test_synthetic_generator_defaults_are_the_config_file(kind: str) -> None:
    """A synthetic task built in code (no config) renders the dataset its config file describes."""
    values = config_file_values(config_dir() / "task" / f"{kind}.yaml")
    defaults = _TASKS[kind].generator_defaults()
    assert defaults == {k: values[k] for k in defaults}
    assert all(type(defaults[k]) is type(values[k]) for k in defaults), kind


def test_the_composed_config_holds_the_schema_types() -> None:
    config = _composed("task=synth_beats", "model=crepe-tiny", "seed=3", "task.n_train=12")
    spec = validate_run_config(config)
    assert spec.seed == 3 and spec.task.n_train == 12 and spec.task.meters == [2, 3, 4]
    assert spec.trainer.max_epochs == 100 and spec.probe.learning_rates == [1e-3]
