"""Registry of encoder builders, keyed by the ``kind`` field of a model config.

A model config (``configs/model/<name>.yaml``) names a ``kind``; the builder registered for that kind turns the
config into an :class:`~benchmark.encoders.base.Encoder`. No string is ever evaluated.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError
from benchmark.schema import ModelSpec

EncoderBuilder = Callable[[Mapping[str, Any]], Encoder]

_BUILDERS: dict[str, EncoderBuilder] = {}
_SCHEMAS: dict[str, type[ModelSpec]] = {}


def register_encoder(kind: str, schema: type[ModelSpec] = ModelSpec) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Decorator registering ``builder(model_cfg) -> Encoder`` under ``kind``, with the dataclass its config is
    checked against when composed (``configs/model/<name>.yaml`` starts from ``/schema/model/<kind>@_here_``)."""

    def decorate(builder: EncoderBuilder) -> EncoderBuilder:
        if kind in _BUILDERS:
            raise ValueError(f"encoder kind {kind!r} registered twice")
        _BUILDERS[kind] = builder
        _SCHEMAS[kind] = schema
        return builder

    return decorate


def encoder_kinds() -> list[str]:
    _import_builtin_encoders()
    return sorted(_BUILDERS)


def encoder_schemas() -> dict[str, type[ModelSpec]]:
    """Every encoder kind's config schema (benchmark.config_store stores them for Hydra)."""
    _import_builtin_encoders()
    return dict(_SCHEMAS)


def build_encoder(model_cfg: Mapping[str, Any]) -> Encoder:
    """Build the encoder a model config describes (``model_cfg['kind']`` picks the builder)."""
    _import_builtin_encoders()
    kind = model_cfg.get("kind")
    if kind not in _BUILDERS:
        raise ConfigError(f"model.kind={kind!r} is not a known encoder kind; registered kinds: "
                          f"{', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[kind](model_cfg)


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
