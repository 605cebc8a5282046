"""Reading pickled string lists from the internet without executing them.

Some split files the field publishes are Python pickles, e.g. Jongpil Lee's MagnaTagATune split
(``train_list_pub.cP``: a Python-2 cPickle of one list of paths). ``pickle.load`` on such a file runs whatever
callables the file names, so a tampered mirror could execute code on the user's machine. This module reads them
with two independent guards:

1. before anything is unpickled, every opcode is listed with :mod:`pickletools` (which parses, never executes)
   and the file is refused unless it uses only the opcodes that build strings, bytes, lists and tuples;
2. the unpickler's ``find_class`` always raises, so even an opcode that slipped past (1) cannot import a callable.

The result must then be a list or tuple whose items are all ``str`` or ``bytes``.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

from benchmark.errors import UserError

# Opcodes that only push strings/bytes, build lists/tuples, use the memo, or frame the stream. Everything that
# imports (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*), calls (REDUCE, NEWOBJ*, BUILD) or builds other objects
# (dicts, sets, numbers are harmless but never in a list of paths) is refused.
ALLOWED_OPCODES: frozenset[str] = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK",
    "EMPTY_LIST", "LIST", "APPEND", "APPENDS", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
})
# Lee's largest list is 1.2 MB; anything far beyond a list of paths is not what this reader is for.
MAX_BYTES = 64 << 20


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The file is not a plain pickled list of strings (it names a class or callable, or holds other objects)."""


class _NoGlobals(pickle.Unpickler):
    """An unpickler that can build no object but the built-in containers and strings the opcodes create."""

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        raise UnsafePickleError(f"refusing to import {module}.{name}: only lists of strings are accepted")

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing a persistent id: only lists of strings are accepted")


def load_pickled_list(path: Path | str, encoding: str = "latin1") -> list[str]:
    """The list of strings pickled in ``path``, read without executing anything in it.

    Args:
        encoding: how Python-2 ``str`` items and ``bytes`` items are decoded (latin1 maps every byte to one
            character, so no byte string can fail to decode; ASCII paths are unchanged).

    Raises:
        UnsafePickleError: the file uses an opcode outside :data:`ALLOWED_OPCODES`, names a class or callable,
            or does not hold a list/tuple of str/bytes.
        pickle.UnpicklingError: the file is not a complete pickle.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise UnsafePickleError(f"{path}: {len(data)} bytes is too large for a pickled list of paths")
    try:
        for opcode, _, position in pickletools.genops(data):
            if opcode.name not in ALLOWED_OPCODES:
                raise UnsafePickleError(f"{path}: opcode {opcode.name} at byte {position} is not allowed in a "
                                        "pickled list of strings; refusing to unpickle it")
    except UnsafePickleError:
        raise
    except Exception as exc:  # pickletools raises ValueError for a malformed or truncated stream
        raise pickle.UnpicklingError(f"{path}: not a valid pickle ({exc})") from exc
    value = _NoGlobals(io.BytesIO(data), encoding=encoding).load()
    if not isinstance(value, (list, tuple)):
        raise UnsafePickleError(f"{path}: holds a {type(value).__name__}, expected a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, bytes):
            item = item.decode(encoding)
        if not isinstance(item, str):
            raise UnsafePickleError(f"{path}: item {i} is a {type(item).__name__}, expected a string")
        out.append(item)
    return out
