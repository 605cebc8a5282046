"""Registry of encoder builders, keyed by the ``kind`` field of a model config.

A model config (``configs/model/<name>.yaml``) names a ``kind``; the builder registered for that kind turns the
config into an :class:`~benchmark.encoders.base.Encoder`. No string is ever evaluated.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError
from benchmark.precision import resolve_dtype
from benchmark.schema import ModelSpec

EncoderBuilder = Callable[[Mapping[str, Any]], Encoder]

_BUILDERS: dict[str, EncoderBuilder] = {}
_SCHEMAS: dict[str, type[ModelSpec]] = {}
_DTYPES: dict[str, tuple[str, ...]] = {}


def register_encoder(kind: str, schema: type[ModelSpec] = ModelSpec,
                     dtypes: tuple[str, ...] = ("fp32",)) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Decorator registering ``builder(model_cfg) -> Encoder`` under ``kind``, with the dataclass its config is
    checked against when composed (``configs/model/<name>.yaml`` starts from ``/schema/model/<kind>@_here_``)
    and the ``model.dtype`` values it can run in (first = its reference precision; ``auto`` picks bf16 only for
    a kind that lists it)."""

    def decorate(builder: EncoderBuilder) -> EncoderBuilder:
        if kind in _BUILDERS:
            raise ValueError(f"encoder kind {kind!r} registered twice")
        _BUILDERS[kind] = builder
        _SCHEMAS[kind] = schema
        _DTYPES[kind] = tuple(dtypes)
        return builder

    return decorate


def encoder_kinds() -> list[str]:
    _import_builtin_encoders()
    return sorted(_BUILDERS)


def encoder_schemas() -> dict[str, type[ModelSpec]]:
    """Every encoder kind's config schema (benchmark.config_store stores them for Hydra)."""
    _import_builtin_encoders()
    return dict(_SCHEMAS)


def _known_kind(model_cfg: Mapping[str, Any]) -> str:
    _import_builtin_encoders()
    kind = model_cfg.get("kind")
    if kind not in _BUILDERS:
        raise ConfigError(f"model.kind={kind!r} is not a known encoder kind; registered kinds: "
                          f"{', '.join(sorted(_BUILDERS))}")
    return str(kind)


def encoder_dtype(model_cfg: Mapping[str, Any], device: torch.device | str = "cpu") -> str:
    """The dtype the encoder of ``model_cfg`` runs in on ``device``: ``model.dtype`` with ``auto`` resolved
    (:func:`benchmark.precision.resolve_dtype`); a dtype the kind cannot run in is refused."""
    kind = _known_kind(model_cfg)
    return resolve_dtype(str(model_cfg.get("dtype") or "fp32"), _DTYPES[kind], torch.device(device),
                         str(model_cfg.get("name") or kind))


def with_resolved_dtype(model_cfg: Mapping[str, Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """``model_cfg`` with ``dtype`` set to what the encoder will run in on ``device``.

    Why resolved in the config and not only inside the encoder: the record path, the protocol checksum, the cache
    key and the record all read the config, and each must name the precision that ran (``auto`` would name bf16
    on one machine and fp32 on another).
    """
    return {**model_cfg, "dtype": encoder_dtype(model_cfg, device)}


def build_encoder(model_cfg: Mapping[str, Any], device: torch.device | str = "cpu") -> Encoder:
    """Build the encoder a model config describes (``model_cfg['kind']`` picks the builder); ``model.dtype=auto``
    is resolved for ``device`` (where the caller will move the encoder)."""
    kind = _known_kind(model_cfg)
    return _BUILDERS[kind](with_resolved_dtype(model_cfg, device))


def _import_builtin_encoders() -> None:
    """Import every module of the ``benchmark.encoders`` package: importing an encoder module registers it.

    Discovered rather than imported by name, so the encoder modules depend on this registry and never the other
    way round (no import cycle), and a new encoder module needs no line here.
    """
    import importlib
    import pkgutil
    from pathlib import Path

    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this folder: the encoders package
        importlib.import_module(f"{__package__}.{module.name}")
