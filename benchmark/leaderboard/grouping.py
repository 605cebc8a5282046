"""Which protocol and which row every record belongs to, so that no cell ever averages two run configurations.

Why its own module: this is the rule a reader of the table has to trust (seeds are only averaged within one
protocol checksum), and the plots must label their series with the same protocol ids and row labels as the table.
Everything here reads the records alone: the config-file defaults that decide whether a setting is worth naming
in a row label come from each record's ``config_defaults``, never from this checkout's config files.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from benchmark.cache import config_checksum
from benchmark.leaderboard.records import as_record
from benchmark.record import DEFAULT_PROTOCOL, protocol_fields
from benchmark.run_record import RunRecord

# The settings a protocol is described by when it is the only one (with several, the differing ones are named).
SUMMARY_KEYS = ("probe.name", "probe.hidden", "probe.lr", "trainer.max_epochs", "trainer.patience", "layers")
_ABSENT = "(absent)"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"probe": {"lr": [1e-3]}}`` -> ``{"probe.lr": "[0.001]"}``: comparable, printable settings."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    key = prefix[:-1]
    return {key: json.dumps(value) if isinstance(value, (list, tuple)) else value}


def preset_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a named protocol (``protocol=marble``) sets, flattened (``{"probe.lr": ...}``); empty for the default.

    The record keeps it (``config.protocol.preset``), so whether a run followed its protocol is read from the record
    alone: the values it set per model and task (layer, learning rate, windows) do not split the protocol into
    one group per model and task, and a value overridden on the command line shows as a deviation."""
    section = (config or {}).get("protocol")
    preset = section.get("preset") if isinstance(section, dict) else None
    return flatten(preset) if isinstance(preset, dict) else {}


def protocol_deviations(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings of a run that differ from what its protocol's preset says (empty when it followed it)."""
    return _deviations(config, preset_settings(config))


def _deviations(config: Mapping[str, Any] | None, preset: dict[str, Any]) -> dict[str, Any]:
    if not preset:
        return {}
    actual = flatten({k: v for k, v in (config or {}).items() if k != "protocol"})
    return {k: actual.get(k, _ABSENT) for k, v in preset.items()
            if json.dumps(actual.get(k, _ABSENT), default=str) != json.dumps(v, default=str)}


def _followed_preset_keys(config: Mapping[str, Any] | None) -> set[str]:
    """The flattened keys whose value is the protocol preset's own (they describe the protocol, not the run)."""
    preset = preset_settings(config)
    return set(preset) - set(_deviations(config, preset))


def shared_settings(record: RunRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The settings every task and model of one protocol share: the config minus task, model, seed, locations.

    Under a named protocol the values its preset sets for this model and task are summarised by the protocol's
    name and reference (and any setting that deviates from the preset stays, so it splits the group).
    Takes a record, or a mapping with the record's ``config`` (and ``protocol_checksum``) as in its JSON.
    """
    if isinstance(record, RunRecord):  # a record without a config has an empty one
        config, checksum = record.config or None, record.protocol_checksum
    else:
        config, checksum = record.get("config"), record.get("protocol_checksum")
    if not isinstance(config, dict):
        return {"protocol_checksum": checksum}
    fields = protocol_fields(config)
    protocol = fields.pop("protocol", None)
    flat = flatten({k: v for k, v in fields.items() if k not in ("task", "model", "seed")})
    if protocol:
        followed = _followed_preset_keys(config)
        flat = {k: v for k, v in flat.items() if k not in followed}
        flat.update({f"protocol.{k}": protocol[k] for k in ("name", "reference") if k in protocol})
    return flat


@dataclass(frozen=True)
class RowKey:
    """Which leaderboard row a record belongs to: same protocol, same model, same model/task variant."""

    protocol: str
    model: str
    variant: str = ""

    @property
    def label(self) -> str:
        return f"{self.model} [{self.variant}]" if self.variant else self.model


@dataclass
class Protocol:
    """A protocol group: records whose shared settings (probe, trainer, layers, ...) are identical."""

    id: str
    settings: dict[str, Any]
    differing: dict[str, Any] = field(default_factory=dict)  # the settings where it differs from other groups
    records: int = 0

    @property
    def name(self) -> str:
        """The named protocol its records followed (``sweep`` = this suite's own, the default)."""
        return str(self.settings.get("protocol.name", DEFAULT_PROTOCOL))

    def describe(self) -> str:
        shown = self.differing or {k: self.settings[k] for k in SUMMARY_KEYS if k in self.settings}
        return ", ".join(f"{k}={show(v)}" for k, v in shown.items())


def show(value: Any) -> str:
    return "null" if value is None else str(value)


@dataclass
class Grouped:
    """Records with their row keys and the protocol groups they fall in."""

    records: list[RunRecord]
    keys: list[RowKey]
    protocols: dict[str, Protocol]
    # rows holding a run that deviates from its named protocol's preset -> the deviating settings
    deviating_rows: dict[RowKey, dict[str, Any]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[tuple[RunRecord, RowKey]]:
        return iter(zip(self.records, self.keys))


def group_records(records: Sequence[RunRecord]) -> Grouped:
    """Assign every record a protocol id and a row key so that no row mixes two protocol checksums in a task.

    Protocol ids (``P1``, ``P2``, ... by number of records) group the settings shared by all tasks and models.
    Inside a protocol, model settings that differ between a model's records (``model.dtype``) and task settings
    that differ between a model's records of one task (``task.window_seconds``) become the row's variant label.
    Should a cell still hold two checksums, the checksum itself is added to the variant: never averaged.
    """
    records = [as_record(r) for r in records]
    protocols, proto = _protocols(records)
    deviations = [protocol_deviations(r.config) for r in records]
    # a protocol's own values make no row variant; a value changed from them does
    followed = [set(preset_settings(r.config)) - set(d) for r, d in zip(records, deviations)]
    flat_model = [{k: v for k, v in flatten(r.config.get("model", {}), "model.").items() if k not in followed[i]}
                  for i, r in enumerate(records)]
    flat_task = [{k: v for k, v in flatten(r.config.get("task", {}), "task.").items() if k not in followed[i]}
                 for i, r in enumerate(records)]

    by_model: dict[tuple[str, str], list[int]] = {}
    by_model_task: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(records):
        by_model.setdefault((proto[i], r.model), []).append(i)
        by_model_task.setdefault((proto[i], r.model, r.task), []).append(i)
    variant_parts: list[list[str]] = [[] for _ in records]
    for group, flats, groups in (("model", flat_model, by_model), ("task", flat_task, by_model_task)):
        for indices in groups.values():
            for k in _varying_keys([flats[i] for i in indices]):
                for i in indices:
                    if not _is_default(k, flats[i], records[i].config_defaults.get(group), group):
                        variant_parts[i].append(f"{k}={show(flats[i].get(k, _ABSENT))}")
    keys = [RowKey(proto[i], r.model, ", ".join(variant_parts[i])) for i, r in enumerate(records)]

    cell_checksums: dict[tuple[RowKey, str], set[str]] = {}
    for key, r in zip(keys, records):
        cell_checksums.setdefault((key, r.task), set()).add(r.protocol_checksum)
    for i, (key, r) in enumerate(zip(keys, records)):
        if len(cell_checksums[(key, r.task)]) > 1:
            extra = f"protocol {r.protocol_checksum[:8]}"
            keys[i] = RowKey(key.protocol, key.model, f"{key.variant}, {extra}" if key.variant else extra)
    deviating: dict[RowKey, dict[str, Any]] = {}
    for key, changed in zip(keys, deviations):
        if changed:  # only a named protocol has a preset to deviate from
            deviating.setdefault(key, {}).update(changed)
    return Grouped(records, keys, protocols, deviating)


def _protocols(records: Sequence[RunRecord]) -> tuple[dict[str, Protocol], list[str]]:
    """The protocol groups (most records first) and each record's protocol id."""
    shared = [shared_settings(r) for r in records]
    shared_ids = [config_checksum(s) for s in shared]
    counts = Counter(shared_ids)
    first_seen: dict[str, str] = {}
    for sid, r in zip(shared_ids, records):
        first_seen[sid] = min(first_seen.get(sid, "~"), r.created)
    order = sorted(counts, key=lambda s: (-counts[s], first_seen[s], s))
    protocols: dict[str, Protocol] = {}
    id_of: dict[str, str] = {}
    for i, sid in enumerate(order, 1):
        id_of[sid] = f"P{i}"
        settings = next(s for s, x in zip(shared, shared_ids) if x == sid)
        protocols[f"P{i}"] = Protocol(f"P{i}", settings, records=counts[sid])
    if len(protocols) > 1:
        for p, differing in zip(protocols.values(), _differing([p.settings for p in protocols.values()])):
            p.differing = differing
    return protocols, [id_of[s] for s in shared_ids]


def _differing(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per protocol, its values of the settings that are not the same in every protocol."""
    varying = _varying_keys(settings)
    return [{k: s.get(k, _ABSENT) for k in varying} for s in settings]


def _varying_keys(flats: list[dict[str, Any]]) -> list[str]:
    """The keys (sorted) whose value is not the same in all of ``flats`` (a missing key counts as a value)."""
    keys = sorted({k for flat in flats for k in flat})
    return [k for k in keys if len({json.dumps(flat.get(k, _ABSENT), default=str) for flat in flats}) > 1]


def _is_default(key: str, flat: dict[str, Any], defaults: dict[str, Any] | None, group: str) -> bool:
    """Whether a record has its config file's default for a varying setting (stored in the record as
    ``config_defaults``). Runs made with the defaults stay in the model's plain row (next to its other tasks);
    only the runs with an overridden setting (``task.window_seconds=10``) get a row of their own."""
    if defaults is None:
        return False
    flat_defaults = flatten(defaults, f"{group}.")
    return key in flat_defaults and (json.dumps(flat_defaults[key], default=str)
                                     == json.dumps(flat.get(key, _ABSENT), default=str))
