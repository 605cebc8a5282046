"""Errors the suite raises for settings a user can fix, kept apart so every module can raise them."""
from __future__ import annotations


class ConfigError(ValueError):
    """A run config that cannot work, found before any data is read or any feature is computed.

    The message names the offending key, what was given, what is allowed and the override that fixes it.
    """
