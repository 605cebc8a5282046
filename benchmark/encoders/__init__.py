"""Encoders: the interface, the registry and the built-in models."""
from benchmark.encoders.base import Encoder
from benchmark.encoders.registry import build_encoder, encoder_kinds, register_encoder

__all__ = ["Encoder", "build_encoder", "encoder_kinds", "register_encoder"]
