"""The run record as a type: what one run measured, under which settings, as the runner writes it to JSON.

Why a type: the runner writes some 30 fields and the leaderboard and plots read them back. As a dict literal read
by string keys, a renamed field broke its readers silently and no file said which format it was in. Here every
field is named once; :meth:`RunRecord.to_dict` writes the JSON keys records have always had (so older tools keep
reading new files) plus ``schema_version`` and ``config_defaults``, and keys this version does not know are kept
in ``extra``, so reading and writing a record loses nothing.

Schema versions:

- 0 (no ``schema_version`` key): records written before this module. ``benchmark.leaderboard.records`` migrates
  them when it reads them; they are never rewritten on disk.
- 1: adds ``schema_version`` and ``config_defaults``: the run's model, task and probe config-file defaults
  (``configs/<group>/<name>.yaml`` as they were when the run was made; null where the checkout had no such file).
  The leaderboard needs them to tell a setting the user overrode (``task.window_seconds=10``: a row of its own)
  from a default, and reading them from the record instead of the checkout means that records keep rendering the
  same after a config file's default changes.

The record's file name, checksums and package versions are computed in :mod:`benchmark.record`.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from benchmark.errors import UserError

SCHEMA_VERSION = 1

WEIGHTED_SUM = "weighted_sum"

# The config groups whose config-file defaults a record carries (the leaderboard uses model and task to label
# row variants; probe is kept so that a reader can tell an overridden probe setting from the probe's default).
DEFAULTS_GROUPS = ("model", "task", "probe")


# A config name that may be looked up as configs/<group>/<name>.yaml: a plain file name, never a path (a record's
# config is read from a file someone else may have written).
_CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class RecordFormatError(UserError, ValueError):
    """A JSON object that is not a run record of a schema this suite reads (the message says which field).

    A :class:`~benchmark.errors.UserError`: the fix is in the record file, not in the suite.
    """


@dataclass
class LayerScores:
    """One reported probe: a layer (``None``: the learned weighted sum) at the learning rate chosen on validation.

    The record's ``selected`` entry and each of its ``layers`` entries; ``valid`` / ``test`` map metric names to
    scores on the metric's own scale.
    """

    layer: int | None
    valid: dict[str, float]
    test: dict[str, float]
    lr: float | None = None
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``weighted_sum`` or the layer index as text: the name the record, tables and plots use."""
        return WEIGHTED_SUM if self.layer is None else str(self.layer)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "lr": self.lr, "best_epoch": self.best_epoch, "valid": self.valid,
                "test": self.test, "name": self.name, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, where: str = "layer scores") -> LayerScores:
        if not isinstance(data, Mapping) or not isinstance(data.get("test"), Mapping):
            raise RecordFormatError(f"{where}: expected an object with a 'test' mapping of scores")
        layer = data.get("layer")
        known = ("layer", "lr", "best_epoch", "valid", "test", "name")
        return cls(layer=None if layer is None else int(layer), valid=dict(data.get("valid") or {}),
                   test=dict(data["test"]), lr=data.get("lr"), best_epoch=data.get("best_epoch"),
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass
class RunRecord:
    """One run: identity (task, model, seed, protocol checksum), scores, the full config and provenance.

    ``path`` is where the record was read from (``None`` for one built in memory); it is not serialised.
    """

    task: str
    model: str
    seed: int
    selected: LayerScores
    layers: list[LayerScores]
    protocol_checksum: str
    config: dict[str, Any] = field(default_factory=dict)
    config_defaults: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    created: str = ""
    produced_by: str = ""
    task_type: str | None = None
    primary_metric: str | None = None
    test_score: float | None = None
    chance_level: float | None = None
    heads: list[dict[str, Any]] = field(default_factory=list)
    layer_weights: dict[str, list[float]] = field(default_factory=dict)
    valid_history: list[Any] = field(default_factory=list)
    encoder: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    flagged: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    feature_cache: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    suite_revision: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False, repr=False)

    # The JSON keys in the order the runner has always written them; schema 1 adds the first and the last.
    KEYS: ClassVar[tuple[str, ...]] = (
        "schema_version", "created", "produced_by", "task", "task_type", "model", "seed", "primary_metric",
        "selected", "test_score", "chance_level", "layers", "heads", "layer_weights", "valid_history", "encoder",
        "dataset", "split_sizes", "skipped", "flagged", "window", "feature_cache", "timings", "config",
        "protocol_checksum", "versions", "suite_revision", "config_defaults")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the record (``benchmark.record.write_record`` writes it)."""
        out: dict[str, Any] = {}
        for key in self.KEYS:
            value = getattr(self, key)
            if key == "selected":
                value = value.to_dict()
            elif key == "layers":
                value = [row.to_dict() for row in value]
            out[key] = value
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> RunRecord:
        """A record of the current schema (older ones go through ``benchmark.leaderboard.records.migrate``)."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise RecordFormatError(f"schema_version {data.get('schema_version')!r}: expected {SCHEMA_VERSION}")
        missing = [k for k in ("task", "model", "seed", "selected", "layers", "protocol_checksum") if k not in data]
        if missing:
            raise RecordFormatError(f"missing field(s) {missing}")
        if not isinstance(data["layers"], list):
            raise RecordFormatError("layers: expected a list")
        try:
            seed = int(data["seed"])
        except (TypeError, ValueError):
            raise RecordFormatError(f"seed {data['seed']!r}: expected an integer") from None
        config = data.get("config")
        defaults = data.get("config_defaults")
        if not isinstance(defaults, Mapping):
            raise RecordFormatError("config_defaults: expected an object (group -> defaults or null)")
        values = {k: data[k] for k in cls.KEYS if k in data}
        values.update(
            task=str(data["task"]), model=str(data["model"]), seed=seed,
            selected=LayerScores.from_dict(data["selected"], "selected"),
            layers=[LayerScores.from_dict(row, f"layers[{i}]") for i, row in enumerate(data["layers"])],
            protocol_checksum=str(data["protocol_checksum"]), config=config if isinstance(config, dict) else {},
            config_defaults=dict(defaults), created=str(data.get("created", "")),
            layer_weights=data.get("layer_weights") or {})
        return cls(**values, extra={k: v for k, v in data.items() if k not in cls.KEYS}, path=path)


def config_file_defaults(config: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """``{"model": {...}, "task": {...}, "probe": {...}}``: each group's ``configs/<group>/<name>.yaml`` for the
    name in ``config`` (``None`` when this installation has no such file, e.g. a custom model).

    The runner stores this in every record it writes; the leaderboard reads it from there, never from the
    checkout (only the migration of records written before schema 1 calls this on read, which is why a name
    that is not a plain file name, such as ``../../x``, is looked up nowhere and gets ``None``).
    """
    out: dict[str, dict[str, Any] | None] = {}
    for group in DEFAULTS_GROUPS:
        section = config.get(group)
        name = section.get("name") if isinstance(section, Mapping) else None
        plain = isinstance(name, str) and _CONFIG_NAME.fullmatch(name) is not None and ".." not in name
        text = _file_defaults_json(group, name) if plain else None
        out[group] = None if text is None else json.loads(text)  # a fresh copy per record
    return out


@functools.lru_cache(maxsize=256)
def _file_defaults_json(group: str, name: str) -> str | None:
    """The resolved YAML of ``configs/<group>/<name>.yaml`` as JSON text (what a written record holds)."""
    from benchmark.resources import config_dir, config_file_values

    path = config_dir() / group / f"{name}.yaml"
    if not path.is_file():
        return None
    return json.dumps(config_file_values(path))
