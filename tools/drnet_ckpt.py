"""Reader and writer of drnet checkpoint files, in plain Python (stdlib + numpy).

The format is specified in docs/checkpoint-format.md and implemented in C by nn/checkpoint.c; in short,
little-endian throughout:

    header  b"DRNETCKP" | u32 version (2) | u32 record count
    record  u16 name length | name (UTF-8, no NUL) | u8 dtype (1 f32, 2 i64, 3 bytes) | u8 ndim (0..4)
            | i64 dims[ndim] | u64 data bytes | u32 CRC32 (zlib.crc32) | data
The CRC of version 2 covers the record's header (every byte before the CRC) and then its data;
version 1 (CRC of the data only) is still read. `write` writes version 2.

Records are returned and accepted as an ordered dict {name: value}:
  - float32 / int64 numpy arrays (a 0-d array is a scalar record, ndim 0);
  - Python int  -> i64 scalar, Python float -> f32 scalar;
  - str         -> bytes record holding its UTF-8 (ndim 1), read back as `bytes` (see `text`).
Anything else (float64 arrays, int32 arrays, ...) is refused rather than silently converted, because
the C side checks exact dtypes and shapes.

The same reader is used for the parity reference file (tests/reference/*.ckpt), which is a checkpoint
like any other: one record per tensor.
"""
import os
import struct
import zlib

import numpy as np

MAGIC = b"DRNETCKP"
VERSION = 2  # written; versions 1 and 2 are read
F32, I64, BYTES = 1, 2, 3
NAME_MAX = 127  # the C reader keeps names in a 128-byte buffer, NUL included
_ELEM = {F32: 4, I64: 8, BYTES: 1}
_NUMPY = {F32: "<f4", I64: "<i8"}


class CheckpointError(Exception):
    """A file that is not a valid drnet checkpoint; the message names the file, record and offset."""


def _encode(name, value):
    """(dtype, dims, data bytes) for one record value."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return BYTES, (len(value),), bytes(value)
    if isinstance(value, bool):
        raise TypeError(f"record '{name}': store a bool as an int")
    if isinstance(value, int):
        return I64, (), struct.pack("<q", value)
    if isinstance(value, float):
        return F32, (), struct.pack("<f", value)
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            dtype = F32
        elif value.dtype == np.int64:
            dtype = I64
        else:
            raise TypeError(f"record '{name}': dtype {value.dtype} (only float32 and int64 arrays)")
        if value.ndim > 4:
            raise ValueError(f"record '{name}': {value.ndim} dimensions (at most 4)")
        return dtype, value.shape, np.ascontiguousarray(value, dtype=_NUMPY[dtype]).tobytes()
    raise TypeError(f"record '{name}': cannot store a {type(value).__name__}")


def write(path, records):
    """Writes {name: value} to `path` atomically: PATH.tmp, fsync, then rename over PATH (as the C
    writer does, so a reader never sees a half-written file)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<II", VERSION, len(records)))
            for name, value in records.items():
                raw_name = name.encode("utf-8")
                if not 0 < len(raw_name) <= NAME_MAX:
                    raise ValueError(f"record name '{name}': {len(raw_name)} bytes (1..{NAME_MAX})")
                dtype, dims, data = _encode(name, value)
                head = (struct.pack("<H", len(raw_name)) + raw_name + struct.pack("<BB", dtype, len(dims))
                        + struct.pack(f"<{len(dims)}q", *dims) + struct.pack("<Q", len(data)))
                f.write(head + struct.pack("<I", zlib.crc32(data, zlib.crc32(head)) & 0xFFFFFFFF))
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path):
    """Reads and verifies a whole checkpoint; returns an ordered {name: value} (numpy arrays for f32 and
    i64 records, `bytes` for byte records). Raises CheckpointError naming the file, record and offset
    on any damage: bad magic or version, truncation, a CRC mismatch, trailing bytes."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(n, what):
        nonlocal pos
        if pos + n > len(buf):
            raise CheckpointError(f"checkpoint '{path}' is truncated: end of file at byte {len(buf)} "
                                  f"while reading {what} at byte {pos}")
        chunk = buf[pos:pos + n]
        pos += n
        return chunk

    if take(8, "the header") != MAGIC:
        raise CheckpointError(f"'{path}' is not a drnet checkpoint (bad magic bytes at offset 0)")
    version, count = struct.unpack("<II", take(8, "the header"))
    if version not in (1, 2):
        raise CheckpointError(f"checkpoint '{path}' has format version {version}; this reader reads 1 and 2")
    records = {}
    for i in range(count):
        start = pos
        (length,) = struct.unpack("<H", take(2, "a record header"))
        if length > NAME_MAX:
            raise CheckpointError(f"checkpoint '{path}': record {i} at byte {start} has a bad name length {length}")
        name = take(length, "a record name").decode("utf-8")
        dtype, ndim = struct.unpack("<BB", take(2, "a record header"))
        if dtype not in _ELEM or ndim > 4:
            raise CheckpointError(f"checkpoint '{path}': record '{name}' at byte {start} has a bad type "
                                  f"{dtype} or rank {ndim}")
        dims = struct.unpack(f"<{ndim}q", take(8 * ndim, "record dimensions"))
        nbytes, crc = struct.unpack("<QI", take(12, "a record size and checksum"))
        head = buf[start:pos - 4]
        data_at = pos
        data = take(nbytes, f"record '{name}'")
        if zlib.crc32(data, zlib.crc32(head) if version >= 2 else 0) & 0xFFFFFFFF != crc:
            raise CheckpointError(f"checkpoint '{path}' is corrupt: record '{name}' (data at byte {data_at}, "
                                  f"{nbytes} bytes) fails its CRC32")
        numel = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if numel * _ELEM[dtype] != nbytes:
            raise CheckpointError(f"checkpoint '{path}': record '{name}' at byte {start} holds {nbytes} "
                                  f"bytes for {numel} elements")
        if dtype == BYTES:
            records[name] = data
        else:
            records[name] = np.frombuffer(data, dtype=_NUMPY[dtype]).reshape(dims).copy()
    if pos != len(buf):
        raise CheckpointError(f"checkpoint '{path}' has {len(buf) - pos} unexpected bytes after its last "
                              f"record (byte {pos})")
    return records


def text(records, name, default=None):
    """A byte record as a str (meta.model, meta.dataset, ...), or `default` if absent."""
    value = records.get(name)
    return default if value is None else value.decode("utf-8")


def scalar(records, name, default=None):
    """An f32 or i64 scalar record as a Python float or int, or `default` if absent."""
    value = records.get(name)
    if value is None:
        return default
    if not isinstance(value, np.ndarray) or value.ndim != 0:
        raise CheckpointError(f"record '{name}' is not a scalar")
    return value.item()
