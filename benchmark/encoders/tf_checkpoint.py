"""A reader of TensorFlow (V2 format) checkpoints in plain Python and numpy, so that TF weights load without TF.

Why: musicnn's pretrained weights ship only as TensorFlow-1 checkpoints (``.index`` + ``.data-00000-of-00001``)
inside a wheel that pins an old TensorFlow. The format is simple enough to read directly:

* the ``.index`` file is an SSTable (LevelDB's table format as TensorFlow's ``tensorflow/core/lib/io/table``
  writes it): a 48-byte footer points to an index block, whose entries point to data blocks; every block is a
  run of prefix-compressed ``(key, value)`` entries followed by a restart array, and carries a 5-byte trailer
  (compression type, masked CRC-32C of the block);
* the entry under the empty key is a ``BundleHeaderProto`` (number of data shards, byte order); every other key is
  a tensor name whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C of the
  tensor bytes);
* the tensor bytes are a plain slice of the data shard.

The protobuf messages are decoded by hand (a few varint and length-delimited fields), so no protobuf package or
generated code is needed. Everything that can be checked is: the table magic, each block's CRC, each tensor's
size against its shape and dtype, and each tensor's CRC-32C (computed vectorised with numpy, about 0.1 s for the
9 MB of a musicnn checkpoint). Anything this reader does not handle (compressed blocks, string or quantised
tensors, partitioned variables, big-endian bundles) raises :class:`CheckpointError` saying so, never returns
wrong numbers.
"""
from __future__ import annotations

import struct
from typing import Mapping

import numpy as np

__all__ = ["CheckpointError", "crc32c", "read_checkpoint"]

TABLE_MAGIC = 0xDB4775248B80FB57
"""Last 8 bytes of every table file (``kTableMagicNumber``, little-endian)."""
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the magic
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
_CRC_MASK_DELTA = 0xA282EAD8

# TensorFlow's DataType enum (tensorflow/core/framework/types.proto) -> numpy dtype, for the types whose bytes
# are a plain little-endian array. Strings, resources, variants and quantised types are refused.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
_DTYPE_NAMES = {7: "DT_STRING", 11: "DT_QINT8", 12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16",
                15: "DT_QINT16", 16: "DT_QUINT16", 20: "DT_RESOURCE", 21: "DT_VARIANT"}


class CheckpointError(ValueError):
    """The bytes are not a TensorFlow checkpoint this reader can decode (corrupt, truncated or unsupported)."""


# ----------------------------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), as TensorFlow's crc32c::Value / Mask


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_TABLE = _crc_table()
_TABLE_LIST = [int(v) for v in _TABLE]
_CHUNK = 2048  # bytes per vectorised lane; the lanes' CRCs are then chained with the "append 2048 zeros" operator


def _crc_update_scalar(state: int, data: bytes) -> int:
    """The raw CRC register after ``data`` (no initial or final inversion); a byte-at-a-time loop."""
    table = _TABLE_LIST
    for byte in data:
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


def _zeros_operator(n: int) -> list[list[int]]:
    """Tables of the linear map "run the register over ``n`` zero bytes": ``op(x) = xor_j T[j][byte j of x]``."""
    basis = np.uint32(1) << np.arange(32, dtype=np.uint32)
    state = basis.copy()
    for _ in range(n):
        state = _TABLE[state & 0xFF] ^ (state >> 8)
    images = [int(v) for v in state]
    tables = []
    for j in range(4):
        t = [0] * 256
        for v in range(1, 256):
            low = v & -v
            t[v] = t[v ^ low] ^ images[8 * j + low.bit_length() - 1]
        tables.append(t)
    return tables


_ZEROS_OP: list[list[int]] | None = None


def crc32c_many(buffers: list[bytes | memoryview]) -> list[int]:
    """The CRC-32C of each buffer, vectorised over fixed-size chunks of all of them at once.

    The CRC register update is linear over GF(2), which gives three facts used here: starting from the usual
    ``0xFFFFFFFF`` equals starting from 0 with the buffer's first 4 bytes inverted; zero bytes before the data
    leave a zero register at zero (so each buffer is left-padded to a whole number of chunks); and the register
    after ``A + B`` is (register after ``A``, run over ``len(B)`` zeros) xor (register after ``B`` from 0). So every
    chunk of every buffer is run from 0 in one numpy pass of ``_CHUNK`` steps, and each buffer's chunks are then
    chained in a short Python loop.
    """
    global _ZEROS_OP
    results: list[int | None] = [None] * len(buffers)
    rows, owners = [], []
    for i, buf in enumerate(buffers):
        raw = np.frombuffer(buf, dtype=np.uint8)
        if raw.size < 4 * _CHUNK:  # small: the plain loop is as fast
            results[i] = _crc_update_scalar(0xFFFFFFFF, bytes(raw)) ^ 0xFFFFFFFF
            continue
        padded = np.zeros(raw.size + (-raw.size) % _CHUNK, dtype=np.uint8)
        padded[padded.size - raw.size:] = raw
        padded[padded.size - raw.size: padded.size - raw.size + 4] ^= 0xFF
        rows.append(padded.reshape(-1, _CHUNK))
        owners.append(i)
    if rows:
        if _ZEROS_OP is None:
            _ZEROS_OP = _zeros_operator(_CHUNK)
        t0, t1, t2, t3 = _ZEROS_OP
        lanes = np.ascontiguousarray(np.concatenate(rows).T)  # [_CHUNK, chunks]: step j reads one contiguous row
        state = np.zeros(lanes.shape[1], dtype=np.uint32)
        for j in range(_CHUNK):
            state = _TABLE[(state ^ lanes[j]) & 0xFF] ^ (state >> 8)
        chunk_crcs = [int(v) for v in state]
        start = 0
        for i, block in zip(owners, rows):
            s = 0
            for r in chunk_crcs[start: start + block.shape[0]]:
                s = t0[s & 0xFF] ^ t1[(s >> 8) & 0xFF] ^ t2[(s >> 16) & 0xFF] ^ t3[s >> 24] ^ r
            start += block.shape[0]
            results[i] = s ^ 0xFFFFFFFF
    return [int(r) for r in results]  # type: ignore[arg-type]


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data``, e.g. ``crc32c(b"123456789") == 0xE3069283``."""
    return crc32c_many([data])[0]


def _unmask(masked: int) -> int:
    """Inverse of TensorFlow's ``crc32c::Mask`` (rotate right by 15, plus a constant), which stored CRCs use."""
    rot = (masked - _CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------------------------
# Varints and protobuf fields


def _varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns ``(value, next position)``."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError(f"truncated or malformed varint in {what}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes, what: str) -> list[tuple[int, int, int | bytes]]:
    """The ``(field number, wire type, value)`` triples of one protobuf message (varints as ints, the rest bytes)."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, what)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, what)
        elif wire == 1:
            value, pos = buf[pos: pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos, what)
            value, pos = buf[pos: pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos: pos + 4], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} in {what}")
        if pos > len(buf):
            raise CheckpointError(f"truncated protobuf field {number} in {what}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    """A varint holding a (two's complement) int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_shape(buf: bytes, what: str) -> tuple[int, ...]:
    """``TensorShapeProto``: repeated ``dim`` (field 2: ``size`` field 1), ``unknown_rank`` (field 3)."""
    dims = []
    for number, wire, value in _fields(buf, what):
        if number == 2 and wire == 2:
            size = 0
            for n, w, v in _fields(value, what):  # type: ignore[arg-type]
                if n == 1 and w == 0:
                    size = _signed(v)  # type: ignore[arg-type]
            if size < 0:
                raise CheckpointError(f"{what}: a dimension of unknown size ({size})")
            dims.append(size)
        elif number == 3 and value:
            raise CheckpointError(f"{what}: shape of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> dict:
    """``BundleEntryProto``: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6 (fixed32), slices 7."""
    what = f"the index entry of {name!r}"
    entry = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": None}
    for number, wire, value in _fields(buf, what):
        if number == 1 and wire == 0:
            entry["dtype"] = value
        elif number == 2 and wire == 2:
            entry["shape"] = _parse_shape(value, what)  # type: ignore[arg-type]
        elif number == 3 and wire == 0:
            entry["shard_id"] = value
        elif number == 4 and wire == 0:
            entry["offset"] = _signed(value)  # type: ignore[arg-type]
        elif number == 5 and wire == 0:
            entry["size"] = _signed(value)  # type: ignore[arg-type]
        elif number == 6 and wire == 5:
            entry["crc32c"] = struct.unpack("<I", value)[0]
        elif number == 7:
            raise CheckpointError(f"{name!r} is a partitioned (sliced) variable, which this reader does not handle")
    return entry


# ----------------------------------------------------------------------------------------------------------------
# The SSTable


def _block(table: bytes, handle: bytes, what: str) -> bytes:
    """The contents of the block a ``BlockHandle`` (varint offset, varint size) points to, trailer checked."""
    offset, pos = _varint(handle, 0, what)
    size, _ = _varint(handle, pos, what)
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError(f"{what} runs past the end of the index file ({end + BLOCK_TRAILER_SIZE} > "
                              f"{len(table)} bytes): truncated or corrupt")
    contents = table[offset:end]
    kind = table[end]
    stored = struct.unpack("<I", table[end + 1: end + 5])[0]
    if _unmask(stored) != _crc_update_scalar(0xFFFFFFFF, table[offset: end + 1]) ^ 0xFFFFFFFF:
        raise CheckpointError(f"{what} fails its CRC-32C check: the index file is corrupt")
    if kind != 0:
        name = {1: "snappy", 2: "zlib"}.get(kind, f"type {kind}")
        raise CheckpointError(f"{what} is {name}-compressed; this reader handles uncompressed tables only")
    return contents


def _block_entries(block: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` pairs of one block, undoing the prefix compression of the keys."""
    if len(block) < 4:
        raise CheckpointError(f"{what} is too short to hold its restart array")
    num_restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 * (num_restarts + 1)
    if end < 0:
        raise CheckpointError(f"{what} claims {num_restarts} restart points, more than it can hold")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, what)
        unshared, pos = _varint(block, pos, what)
        value_len, pos = _varint(block, pos, what)
        if shared > len(key) or pos + unshared + value_len > end:
            raise CheckpointError(f"{what} has a malformed entry at byte {pos}")
        key = key[:shared] + block[pos: pos + unshared]
        pos += unshared
        entries.append((key, block[pos: pos + value_len]))
        pos += value_len
    return entries


def _table_entries(index: bytes) -> list[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of the table in the ``.index`` file, in key order."""
    if len(index) < FOOTER_SIZE:
        raise CheckpointError(f"the index file is {len(index)} bytes, shorter than a table footer")
    footer = index[-FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
        raise CheckpointError("the index file does not end with the table magic number: not a TensorFlow "
                              "checkpoint index, or truncated")
    _, pos = _varint(footer, 0, "the table footer")  # metaindex handle (unused: no filters in checkpoints)
    _, pos = _varint(footer, pos, "the table footer")
    index_block = _block(index, footer[pos:], "the table's index block")
    entries = []
    for i, (_, handle) in enumerate(_block_entries(index_block, "the table's index block")):
        entries.extend(_block_entries(_block(index, handle, f"data block {i}"), f"data block {i}"))
    keys = [k for k, _ in entries]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise CheckpointError("the index file's keys are not strictly increasing: corrupt")
    return entries


def read_checkpoint(index: bytes, data: bytes | Mapping[int, bytes], verify_crc: bool = True
                    ) -> dict[str, np.ndarray]:
    """Every tensor of a TensorFlow V2 checkpoint, by variable name, as numpy arrays (copies, writable).

    Args:
        index: the bytes of the ``<prefix>.index`` file.
        data: the bytes of the single ``<prefix>.data-00000-of-00001`` shard, or ``{shard_id: bytes}``.
        verify_crc: check every tensor's CRC-32C (block CRCs of the index are always checked).

    Raises:
        CheckpointError: the bytes are corrupt or truncated, or use a feature this reader does not support.
    """
    shards = dict(data) if isinstance(data, Mapping) else {0: data}
    entries = _table_entries(index)
    if not entries or entries[0][0] != b"":
        raise CheckpointError("the index file has no bundle header (the entry under the empty key)")
    num_shards, big_endian = 1, False
    for number, wire, value in _fields(entries[0][1], "the bundle header"):
        if number == 1 and wire == 0:
            num_shards = value  # type: ignore[assignment]
        elif number == 2 and wire == 0:
            big_endian = value == 1
    if big_endian:
        raise CheckpointError("the checkpoint was written big-endian; this reader handles little-endian only")
    if sorted(shards) != list(range(num_shards)):
        raise CheckpointError(f"the checkpoint has {num_shards} data shard(s); got shards {sorted(shards)}")

    parsed = []
    for key, value in entries[1:]:
        name = key.decode("utf-8", errors="replace")
        entry = _parse_entry(name, value)
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            label = _DTYPE_NAMES.get(entry["dtype"], f"dtype enum {entry['dtype']}")
            raise CheckpointError(f"tensor {name!r} has {label}, which this reader does not support")
        shard = shards.get(entry["shard_id"])
        if shard is None:
            raise CheckpointError(f"tensor {name!r} is in shard {entry['shard_id']}, which was not given")
        expected = int(np.prod(entry["shape"], dtype=np.int64)) * dtype.itemsize
        if entry["size"] != expected:
            raise CheckpointError(f"tensor {name!r}: the index says {entry['size']} bytes, but shape "
                                  f"{entry['shape']} of {dtype} needs {expected}")
        if entry["offset"] < 0 or entry["offset"] + entry["size"] > len(shard):
            raise CheckpointError(f"tensor {name!r} ends at byte {entry['offset'] + entry['size']} of a "
                                  f"{len(shard)}-byte data shard: truncated or not this checkpoint's data")
        view = memoryview(shard)[entry["offset"]: entry["offset"] + entry["size"]]
        parsed.append((name, entry, dtype, view))

    if verify_crc:
        checked = [(name, entry, view) for name, entry, _, view in parsed if entry["crc32c"] is not None]
        for (name, entry, _), actual in zip(checked, crc32c_many([view for _, _, view in checked])):
            if _unmask(entry["crc32c"]) != actual:
                raise CheckpointError(f"tensor {name!r} fails its CRC-32C check: the data file is corrupt or "
                                      "belongs to another checkpoint")
    return {name: np.frombuffer(view, dtype=dtype).reshape(entry["shape"]).copy()
            for name, entry, dtype, view in parsed}
