"""Hydra's ConfigStore entries for the run spec, and the one check of a composed config against them.

Why its own module: registering a schema needs every task and encoder kind (each declares its schema next to its
code), so this is the one place that imports both registries for configuration; the command line calls
:func:`register_schemas` before Hydra composes, and the runner calls :func:`validate_run_config` before any data
is read, whoever composed the config (the command line, a test, a notebook).
"""
from __future__ import annotations

from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue, OmegaConfBaseException

from benchmark.encoders.registry import encoder_schemas
from benchmark.errors import ConfigError, UserError
from benchmark.record import PROTOCOL_RECORD_KEYS
from benchmark.schema import LOGGER_SCHEMAS, LOGGERS, RunSpec
from benchmark.settings import ProbeSettings, TrainerSettings
from benchmark.tasks.registry import task_schemas

_GROUPS = ("task", "model", "probe", "trainer")
# Groups a config built in code may leave out (configs/config.yaml always composes them): no logger = no log files.
_OPTIONAL_GROUPS = ("logger",)


def register_schemas() -> None:
    """Store every schema under ``schema/...``, where the config files' ``defaults:`` lists name them.

    ``schema/run``, ``schema/probe``, ``schema/trainer``, ``schema/task/<kind>``, ``schema/model/<kind>``,
    ``schema/logger/<name>``.
    Storing again replaces an entry with the same object, so calling this twice is harmless.
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="schema", name="run", node=RunSpec)
    store.store(group="schema", name="probe", node=ProbeSettings)
    store.store(group="schema", name="trainer", node=TrainerSettings)
    for kind, schema in task_schemas().items():
        store.store(group="schema/task", name=kind, node=schema)
    for kind, schema in encoder_schemas().items():
        store.store(group="schema/model", name=kind, node=schema)
    for name, schema in LOGGER_SCHEMAS.items():
        store.store(group="schema/logger", name=name, node=schema)


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data, every interpolation resolved (a protocol's values are looked up in its
    tables here), with the protocol section cut to what a record keeps (``record.PROTOCOL_RECORD_KEYS``).

    An interpolation that cannot be resolved (a protocol table without this model or task and no fallback) is a
    ConfigError naming the key."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as exc:
        raise ConfigError(f"{getattr(exc, 'full_key', '') or 'the config'}: {str(exc).splitlines()[0]}. A protocol "
                          "(configs/protocol/) may not cover this model or task; check the names or override the "
                          "value on the command line.") from None
    assert isinstance(data, dict)
    protocol = data.get("protocol")
    if isinstance(protocol, dict):
        data["protocol"] = {k: protocol[k] for k in PROTOCOL_RECORD_KEYS if k in protocol}
    return data


def group_schema(group: str, section: Mapping[str, Any]) -> type:
    """The dataclass a config group's section is checked against (tasks and models: by their ``kind``, loggers by
    their ``name``)."""
    if group == "probe":
        return ProbeSettings
    if group == "logger":
        name = section.get("name")
        if name not in LOGGER_SCHEMAS:
            raise ConfigError(f"logger.name={name!r} is not a known logger; choose one with logger=NAME: "
                              f"{', '.join(LOGGERS)}")
        return LOGGER_SCHEMAS[name]
    if group == "trainer":
        return TrainerSettings
    kinds = task_schemas() if group == "task" else encoder_schemas()
    kind = section.get("kind")
    if kind not in kinds:
        raise ConfigError(f"{group}.kind={kind!r} is not a known {group} kind; registered kinds: "
                          f"{', '.join(sorted(kinds))}")
    return kinds[kind]


def typed_section(group: str, section: Mapping[str, Any] | DictConfig) -> Any:
    """``section`` checked against its schema and built into the dataclass (whose ``__post_init__`` checks values).

    Keys the schema does not have (added with ``+key=``) are kept in the config but not checked here.
    """
    schema = group_schema(group, section)
    data = OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)
    known = {k: v for k, v in data.items() if k in schema.__dataclass_fields__}
    return _build(schema, known, prefix=f"{group}.")


def validate_run_config(config: Mapping[str, Any] | DictConfig) -> RunSpec:
    """The whole run config as typed objects, or a ConfigError naming the key and the fix.

    Hydra has already checked types while composing when the config came from the command line; this also
    covers configs built in code, and applies the value checks (``seed >= 0``, ``model.batch_size >= 1`` ...).
    """
    data = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    for group in _GROUPS:
        if not isinstance(data.get(group), Mapping):
            raise ConfigError(f"the run config has no {group} section; compose it from configs/config.yaml "
                              f"(python -m benchmark run {group}=NAME ...)")
    groups = (*_GROUPS, *_OPTIONAL_GROUPS)
    top = {k: v for k, v in data.items() if k in RunSpec.__dataclass_fields__ and k not in groups}
    spec = _build(RunSpec, {**top, **{g: None for g in groups}}, prefix="")
    for group in _GROUPS:
        setattr(spec, group, typed_section(group, data[group]))
    for group in _OPTIONAL_GROUPS:
        section = data.get(group)
        if section is not None and not isinstance(section, Mapping):
            raise ConfigError(f"{group}={section!r}: expected a {group} config; choose one with {group}=NAME "
                              f"(python -m benchmark run {group}=NAME ...)")
        setattr(spec, group, None if section is None else typed_section(group, section))
    return spec


def _build(schema: type, values: dict[str, Any], prefix: str) -> Any:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), values)
        return OmegaConf.to_object(merged)
    except UserError:
        raise
    except OmegaConfBaseException as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, UserError) else None
        if cause is not None:
            raise cause from None
        key = getattr(exc, "full_key", None) or ""
        if isinstance(exc, MissingMandatoryValue):
            raise ConfigError(f"{prefix}{key} has no value (??? in its config file): pass it on the command line, "
                              f"e.g. python -m benchmark run {prefix}{key}=VALUE") from None
        message = str(exc).splitlines()[0]
        raise ConfigError(f"{prefix}{key}: {message}. Check the value in the config file or the override "
                          f"(python -m benchmark run --cfg job shows the composed config).") from exc
