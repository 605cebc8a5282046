"""Run record files -> validated :class:`~benchmark.run_record.RunRecord` objects: the one reader of records.

Why one place: the leaderboard and the plots must see the same records, deduplicated the same way, and records
of every schema this suite ever wrote must keep loading; so parsing, validation and migration live here, and
everything downstream works on typed records.

Validation: records are files researchers exchange, so none is trusted. Every field the leaderboard and the plots
read is checked for its type when the record is read (:func:`check_record`): scores must be real JSON numbers (not
strings, not booleans), finite, and inside their metric's range (:data:`METRIC_RANGES`), so ``"0.99"`` is never
read as 99 %, nor ``1e308`` or ``Infinity`` shown in bold as the best row. A file that fails is skipped and named
with the reason (:func:`scan_records`), and the others are still rendered: one bad file never hides the rest.

Migration: records written before ``schema_version`` existed (schema 0) lack ``config_defaults``. They get them
from this installation's config files (``configs/<group>/<name>.yaml``), which is exactly what the leaderboard read
for every record before schema 1; this migration is the only place that still reads config files when records are
read. Records of schema 1 carry the defaults of their own run. Files are never rewritten.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from benchmark.leaderboard.escape import one_line
from benchmark.run_record import SCHEMA_VERSION, RecordFormatError, RunRecord, config_file_defaults

log = logging.getLogger(__name__)

# What makes a JSON object a run record at all, in every schema (other JSON files under results/, such as the
# speed benchmark's, are skipped).
REQUIRED_KEYS = ("task", "model", "seed", "selected", "layers", "protocol_checksum")
# A JSON object with fewer of REQUIRED_KEYS is another tool's file (the speed benchmark's have "model" and
# "selected"), counted but not named; one with more is meant as a run record, and named if it is not a valid one.
RECORD_LIKE_KEYS = 3

# A record is a few kB to a few hundred kB (the largest models, every epoch's validation scores); a file far
# larger is not one, and is refused before it is read into memory.
MAX_RECORD_BYTES = 16 * 2**20
# Real records nest 4 levels deep; the limit keeps a crafted file from exhausting the recursion of the
# readers downstream (flattening the config).
MAX_DEPTH = 32
# No score of this suite comes near it; below it, scaling to percent, sums over seeds and spreads stay finite.
MAX_MAGNITUDE = 1e12

UNIT_INTERVAL = (0.0, 1.0)
NON_NEGATIVE = (0.0, MAX_MAGNITUDE)
ANY_FINITE = (-MAX_MAGNITUDE, MAX_MAGNITUDE)
# The valid range of each metric the task kinds (benchmark/kinds/) report, by name; a metric not named here
# (a custom kind's) only has to be finite (ANY_FINITE), and see metric_range for name patterns.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    # clip level: multiclass, key, multilabel, regression
    "accuracy": UNIT_INTERVAL, "balanced_accuracy": UNIT_INTERVAL, "weighted_score": UNIT_INTERVAL, "roc_auc": UNIT_INTERVAL,
    "average_precision": UNIT_INTERVAL, "tags_scored": NON_NEGATIVE, "r2": (-MAX_MAGNITUDE, 1.0),
    # beat tracking (mir_eval.beat) and chords (mir_eval.chord, pooled by duration)
    "f_measure": UNIT_INTERVAL, "f_measure_pooled": UNIT_INTERVAL, "ensemble_vote": UNIT_INTERVAL,
    "ensemble_max": UNIT_INTERVAL, "ensemble_gmean": UNIT_INTERVAL, "ensemble_mean": UNIT_INTERVAL,
    "ensemble_best": UNIT_INTERVAL, "ensemble_val_select": UNIT_INTERVAL, "ensemble_val_select_index": (0.0, 3.0), "cmlt": UNIT_INTERVAL, "amlt": UNIT_INTERVAL, "p_score": UNIT_INTERVAL,
    "downbeat_f_measure": UNIT_INTERVAL, "majmin": UNIT_INTERVAL, "root": UNIT_INTERVAL, "mirex": UNIT_INTERVAL,
}
ERROR_SUFFIXES = ("error", "mae", "mse", "rmse")


class NewerRecordError(RecordFormatError):
    """A record written by a newer suite, with a schema this one cannot read."""


# ----------------------------------------------------------------------------------------------------------------
# Migration


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


# ----------------------------------------------------------------------------------------------------------------
# Validation


def metric_range(metric: str) -> tuple[float, float]:
    """The inclusive range of a valid ``metric`` score: :data:`METRIC_RANGES`, ``r2_<target>`` as ``r2``,
    errors (``..._error``, ``mae``, ``mse``, ``rmse``) non-negative, anything else finite."""
    if metric in METRIC_RANGES:
        return METRIC_RANGES[metric]
    if metric.startswith("r2_"):
        return METRIC_RANGES["r2"]
    if metric.endswith(ERROR_SUFFIXES):
        return NON_NEGATIVE
    return ANY_FINITE


def check_record(data: Mapping[str, Any]) -> None:
    """Raise :class:`RecordFormatError` naming the first field of a (migrated) record that the leaderboard or
    the plots could misread: its path, its value and what was expected (``selected.test.accuracy='0.99' is a
    string, not a number``)."""
    _check_depth(data)
    for key in ("task", "model", "protocol_checksum"):
        _text(data.get(key), key, required=True)
    for key in ("created", "primary_metric", "task_type"):
        _text(data.get(key), key)
    _integer(data.get("seed"), "seed")
    for key in ("test_score", "chance_level"):
        if data.get(key) is not None:
            _number(data[key], key, ANY_FINITE)
    _layer_scores(data.get("selected"), "selected", need_test=True)
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise _wrong("layers", layers, "a list")
    for i, entry in enumerate(layers):
        _layer_scores(entry, f"layers[{i}]")
    chosen = data["selected"].get("layer")
    if layers and chosen not in {entry.get("layer") for entry in layers}:
        raise RecordFormatError(f"selected.layer={chosen!r} is not one of the layers the record reports")
    _layer_weights(data.get("layer_weights"))
    _config(data.get("config"), data.get("config_defaults"))


def _check_depth(data: Any) -> None:
    """Refuse objects nested deeper than :data:`MAX_DEPTH` (checked without recursion, so it cannot overflow)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecordFormatError(f"nested more than {MAX_DEPTH} levels deep")
        children = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _layer_scores(entry: Any, where: str, need_test: bool = False) -> None:
    """One ``selected`` / ``layers[i]`` entry: layer index, learning rate, best epoch and its scores."""
    if not isinstance(entry, Mapping):
        raise _wrong(where, entry, "an object")
    if entry.get("layer") is not None:
        _integer(entry["layer"], f"{where}.layer", minimum=0)
    if entry.get("best_epoch") is not None:
        _integer(entry["best_epoch"], f"{where}.best_epoch", minimum=0)
    if entry.get("lr") is not None:
        _number(entry["lr"], f"{where}.lr", (0.0, MAX_MAGNITUDE))
    if "test" not in entry:
        raise RecordFormatError(f"{where}.test is missing")
    for split in ("test", "valid"):
        scores = entry.get(split)
        if scores is None and split == "valid":
            continue
        if not isinstance(scores, Mapping):
            raise _wrong(f"{where}.{split}", scores, "an object of metric scores")
        if need_test and split == "test" and not scores:
            raise RecordFormatError(f"{where}.test is empty: no score to show")
        for metric, value in scores.items():
            if value is not None:  # a metric a split could not score
                _number(value, f"{where}.{split}.{metric}", metric_range(metric), metric)


def _layer_weights(weights: Any) -> None:
    """``layer_weights``: head name -> the learned softmax weight of every layer (the plots draw them)."""
    if weights is None:
        return
    if not isinstance(weights, Mapping):
        raise _wrong("layer_weights", weights, "an object")
    for name, values in weights.items():
        if not isinstance(values, list):
            raise _wrong(f"layer_weights.{name}", values, "a list of numbers")
        for i, value in enumerate(values):
            _number(value, f"layer_weights.{name}[{i}]", UNIT_INTERVAL)


def _config(config: Any, defaults: Any) -> None:
    """``config`` and ``config_defaults``: objects, and the groups the row labels are made of objects too."""
    if config is not None:
        if not isinstance(config, Mapping):
            raise _wrong("config", config, "an object")
        for group in ("model", "task"):
            if config.get(group) is not None and not isinstance(config[group], Mapping):
                raise _wrong(f"config.{group}", config[group], "an object")
    if not isinstance(defaults, Mapping):
        raise _wrong("config_defaults", defaults, "an object")
    for group, values in defaults.items():
        if values is not None and not isinstance(values, Mapping):
            raise _wrong(f"config_defaults.{group}", values, "an object or null")


def _text(value: Any, where: str, required: bool = False) -> None:
    """A string (never a number turned into one: ``model: 5`` is a broken record, not a model called "5");
    a required one (a name the rows are keyed by) must not be blank."""
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise _wrong(where, value, "a string")
    if required and not value.strip():
        raise RecordFormatError(f"{where} is empty")


def _integer(value: Any, where: str, minimum: int | None = None) -> None:
    """A JSON integer: not ``"3"``, ``3.7`` or ``true``, which ``int()`` would have quietly turned into one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(where, value, "an integer")
    if minimum is not None and value < minimum:
        raise RecordFormatError(f"{where}={value!r} is below {minimum}")


def _number(value: Any, where: str, bounds: tuple[float, float], metric: str | None = None) -> None:
    """A real JSON number (no string, no boolean), finite and within ``bounds`` (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(where, value, "a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise RecordFormatError(f"{where}={_show(value)} is not a finite number")
    low, high = bounds
    if not low <= number <= high:
        what = f"the range of {metric}" if metric else "the allowed range"
        raise RecordFormatError(f"{where}={_show(value)} is outside [{low:g}, {high:g}], {what}")


_KINDS = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
          dict: "an object", type(None): "null"}


def _wrong(where: str, value: Any, expected: str) -> RecordFormatError:
    """``<where>=<value> is a string, not a number``: the path, the value as found, what it is and should be."""
    if value is None:
        return RecordFormatError(f"{where} is missing or null, not {expected}")
    kind = _KINDS.get(type(value), "an object" if isinstance(value, Mapping) else type(value).__name__)
    return RecordFormatError(f"{where}={_show(value)} is {kind}, not {expected}")


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value found in a record, cut to ``limit`` characters (a field may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------------------
# Reading


def parse_record(data: Any, path: Path | None = None) -> RunRecord:
    """A :class:`RunRecord` from a record's JSON object; :class:`RecordFormatError` when it is not one."""
    if not isinstance(data, Mapping):
        raise RecordFormatError(f"not a JSON object but {_KINDS.get(type(data), type(data).__name__)}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise RecordFormatError(f"missing field(s) {missing}")
    migrated = migrate(data)
    check_record(migrated)
    return RunRecord.from_dict(migrated, path=path)


def as_record(value: RunRecord | Mapping[str, Any]) -> RunRecord:
    """A record as given, or parsed from a record's JSON object (for callers that hold raw dicts)."""
    return value if isinstance(value, RunRecord) else parse_record(value)


def read_json(path: Path | str) -> Any:
    """The JSON value in a file of at most :data:`MAX_RECORD_BYTES` (``OSError``, ``json.JSONDecodeError`` or
    :class:`RecordFormatError` otherwise: too large, not UTF-8, nested too deeply to parse)."""
    path = Path(path)
    if not path.is_file():  # a FIFO or a device would block or never end
        raise RecordFormatError("not a regular file")
    with path.open("rb") as f:
        raw = f.read(MAX_RECORD_BYTES + 1)  # never more, whatever the file claims or grows to
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordFormatError(f"larger than a run record may be ({MAX_RECORD_BYTES} bytes); not read")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RecordFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise RecordFormatError("JSON nested too deeply to read") from None


def read_record(path: Path | str) -> RunRecord:
    """The record in one file (``OSError``, ``json.JSONDecodeError`` or :class:`RecordFormatError` otherwise)."""
    path = Path(path)
    return parse_record(read_json(path), path=path)


@dataclass(frozen=True)
class Skipped:
    """A file that looked like a run record and was not read, and why."""

    path: Path
    reason: str
    newer: bool = False  # a valid record of a newer schema (the fix is to update the suite, not the file)

    def __str__(self) -> str:
        return one_line(f"skipped {self.path}: {self.reason}")


@dataclass
class RecordScan:
    """What :func:`scan_records` found under a folder: the records, the files skipped, the other JSON files."""

    folder: Path
    records: list[RunRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    not_records: int = 0  # JSON files with (almost) none of the record's fields (the speed benchmark's, ...)

    def messages(self) -> list[str]:
        """One line per skipped file, then a count of every JSON file that was not a valid run record."""
        lines = [str(s) for s in self.skipped]
        invalid = sum(not s.newer for s in self.skipped)
        if invalid:
            lines.append(one_line(f"ignored {invalid + self.not_records} JSON file(s) under {self.folder} that "
                                  f"are not valid run records ({invalid} named above)"))
        elif self.not_records:
            lines.append(one_line(f"ignored {self.not_records} JSON file(s) under {self.folder} that are not "
                                  "run records"))
        return lines


def scan_records(folder: Path | str) -> RecordScan:
    """Every run record under ``folder`` (searched recursively), and every file that was not one.

    A JSON object with few of :data:`REQUIRED_KEYS` is another tool's file and only counted. Anything else that
    cannot be read as a valid record (invalid JSON, too large, a wrong field) is skipped with the reason, so that
    one bad file never stops the rest from being shown. The same run found twice (a copied folder: same protocol
    checksum, model, task and seed) is kept once, the most recently created, so that a backup copy cannot double
    a seed's weight.
    """
    scan = RecordScan(Path(folder))
    found: dict[tuple, RunRecord] = {}
    for path in sorted(scan.folder.rglob("*.json")):
        if path.is_dir():  # a folder named like a file
            continue
        result = _scan_file(path)
        if result is None:
            scan.not_records += 1
        elif isinstance(result, Skipped):
            scan.skipped.append(result)
        else:
            key = (result.protocol_checksum, result.model, result.task, result.seed)
            if key not in found or result.created > found[key].created:
                found[key] = result
    scan.records = list(found.values())
    return scan


def _scan_file(path: Path) -> RunRecord | Skipped | None:
    """The record in ``path``; a :class:`Skipped` saying why not; ``None`` for another tool's JSON file."""
    try:
        data = read_json(path)
    except json.JSONDecodeError as exc:
        return Skipped(path, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    except OSError as exc:
        return Skipped(path, f"cannot be read ({exc.strerror or exc})")
    except ValueError as exc:  # RecordFormatError, or an integer with too many digits
        return Skipped(path, str(exc))
    if isinstance(data, Mapping) and sum(k in data for k in REQUIRED_KEYS) < RECORD_LIKE_KEYS:
        log.debug("not a run record: %s", path)
        return None
    try:
        return parse_record(data, path=path)
    except NewerRecordError as exc:
        return Skipped(path, str(exc), newer=True)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # RecordFormatError says which field; the others would be a gap in check_record, and still must not
        # stop the other records from being read
        return Skipped(path, str(exc) or type(exc).__name__)


def load_records(folder: Path | str) -> list[RunRecord]:
    """Every valid run record under ``folder`` (see :func:`scan_records`); each file skipped is logged as a
    warning naming it, with the reason (the commands print the same lines to stderr themselves)."""
    scan = scan_records(folder)
    for line in scan.messages():
        log.warning("%s", line)
    return scan.records
