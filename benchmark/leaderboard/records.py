"""Run record files -> validated :class:`~benchmark.run_record.RunRecord` objects: the one reader of records.

Why one place: the leaderboard and the plots must see the same records, deduplicated the same way, and records
of every schema this suite ever wrote must keep loading; so parsing, validation and migration live here, and
everything downstream works on typed records.

Migration: records written before ``schema_version`` existed (schema 0) lack ``config_defaults``. They get them
from this installation's config files (``configs/<group>/<name>.yaml``), which is exactly what the leaderboard read
for every record before schema 1; this migration is the only place that still reads config files when records are
read. Records of schema 1 carry the defaults of their own run. Files are never rewritten.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from benchmark.run_record import SCHEMA_VERSION, RecordFormatError, RunRecord, config_file_defaults

log = logging.getLogger(__name__)

# What makes a JSON object a run record at all, in every schema (other JSON files under results/, such as the
# speed benchmark's, are skipped).
REQUIRED_KEYS = ("task", "model", "seed", "selected", "layers", "protocol_checksum")


class NewerRecordError(RecordFormatError):
    """A record written by a newer suite, with a schema this one cannot read."""


def migrate(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a record's JSON object, of any schema this suite wrote) upgraded to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise RecordFormatError(f"schema_version {version!r}: expected a non-negative integer")
    if version > SCHEMA_VERSION:
        raise NewerRecordError(f"schema_version {version} is newer than this suite reads ({SCHEMA_VERSION}): "
                               "update the suite to read it")
    out = dict(data)
    if version == 0:
        out = _from_schema_0(out)
    return out


def _from_schema_0(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 0 -> 1: add the config-file defaults the record did not store (see the module docstring)."""
    config = data.get("config")
    data["config_defaults"] = config_file_defaults(config if isinstance(config, Mapping) else {})
    data["schema_version"] = 1
    return data


def parse_record(data: Any, path: Path | None = None) -> RunRecord:
    """A :class:`RunRecord` from a record's JSON object; :class:`RecordFormatError` when it is not one."""
    if not isinstance(data, Mapping):
        raise RecordFormatError("not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise RecordFormatError(f"missing field(s) {missing}")
    return RunRecord.from_dict(migrate(data), path=path)


def as_record(value: RunRecord | Mapping[str, Any]) -> RunRecord:
    """A record as given, or parsed from a record's JSON object (for callers that hold raw dicts)."""
    return value if isinstance(value, RunRecord) else parse_record(value)


def read_record(path: Path | str) -> RunRecord:
    """The record in one file (``OSError``, ``json.JSONDecodeError`` or :class:`RecordFormatError` otherwise)."""
    path = Path(path)
    return parse_record(json.loads(path.read_text()), path=path)


def load_records(folder: Path | str) -> list[RunRecord]:
    """Every run record under ``folder`` (searched recursively); other JSON files are ignored with a warning.

    The same run found twice (a copied folder: same protocol checksum, model, task and seed) is kept once, the
    most recently created, so that a backup copy cannot double a seed's weight. Records of a newer schema are
    skipped with a warning that names them.
    """
    folder = Path(folder)
    found: dict[tuple, RunRecord] = {}
    ignored = 0
    for path in sorted(folder.rglob("*.json")):
        try:
            record = read_record(path)
        except NewerRecordError as exc:
            log.warning("skipped %s: %s", path, exc)
            continue
        except (OSError, ValueError) as exc:  # JSONDecodeError and RecordFormatError are ValueErrors
            log.debug("not a run record: %s (%s)", path, exc)
            ignored += 1
            continue
        key = (record.protocol_checksum, record.model, record.task, record.seed)
        if key not in found or record.created > found[key].created:
            found[key] = record
    if ignored:
        log.warning("ignored %d JSON file(s) under %s that are not run records", ignored, folder)
    return list(found.values())
