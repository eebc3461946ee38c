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
import math
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


class _Source:
    """The bytes of a checkpoint file, read at offsets (the table first, the data after it)."""

    def __init__(self, f, path, size):
        self.f, self.path, self.size, self.pos = f, path, size, 0

    def take(self, n, what):
        """n bytes at the current position, refused past the end of the file."""
        if n > self.size - self.pos:
            raise CheckpointError(f"checkpoint '{self.path}' is truncated: end of file at byte {self.size} "
                                  f"while reading {what} at byte {self.pos}")
        self.f.seek(self.pos)
        chunk = self.f.read(n)
        if len(chunk) != n:
            raise CheckpointError(f"cannot read checkpoint '{self.path}': end of file at byte {self.pos + len(chunk)}")
        self.pos += n
        return chunk


def _read_header(src, i):
    """Pass 1: record i's header at src.pos, checked as the C reader checks it (name length 1..127,
    no NUL, UTF-8; type and rank; dimensions that match the size; data inside the file). Returns
    (name, dtype, dims, nbytes, crc, header bytes, data offset) and moves past the data unread."""
    start = src.pos
    (length,) = struct.unpack("<H", src.take(2, "a record header"))
    if not 0 < length <= NAME_MAX:
        raise CheckpointError(f"checkpoint '{src.path}': record {i} at byte {start} has a bad name length {length}")
    raw = src.take(length, "a record name")
    if b"\0" in raw:
        raise CheckpointError(f"checkpoint '{src.path}': record {i} at byte {start} has a NUL byte in its name")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"checkpoint '{src.path}': record {i} at byte {start} has a name that is not "
                              f"UTF-8") from None
    dtype, ndim = struct.unpack("<BB", src.take(2, "a record header"))
    if dtype not in _ELEM or ndim > 4:
        raise CheckpointError(f"checkpoint '{src.path}': record '{name}' at byte {start} has a bad type "
                              f"{dtype} or rank {ndim}")
    dims = struct.unpack(f"<{ndim}q", src.take(8 * ndim, "record dimensions"))
    nbytes, crc = struct.unpack("<QI", src.take(12, "a record size and checksum"))
    data_at = src.pos
    if nbytes > src.size - data_at:
        raise CheckpointError(f"checkpoint '{src.path}' is truncated: record '{name}' at byte {start} needs "
                              f"{nbytes} bytes, the file has {src.size - data_at} left")
    numel = 1
    for d in dims:  # Python integers: no overflow, so no product can wrap round to the size
        numel *= d
    if any(d < 0 for d in dims) or numel * _ELEM[dtype] != nbytes:
        raise CheckpointError(f"checkpoint '{src.path}': record '{name}' at byte {start} holds {nbytes} "
                              f"bytes, which does not match its dimensions {list(dims)}")
    src.f.seek(start)
    head = src.f.read(data_at - 4 - start)
    src.pos = data_at + nbytes
    return name, dtype, dims, nbytes, crc, head, data_at


def read(path):
    """Reads and verifies a whole checkpoint; returns an ordered {name: value} (numpy arrays for f32 and
    i64 records, `bytes` for byte records). Raises CheckpointError naming the file, record and offset
    on any damage: bad magic or version, a bad record header, truncation, a CRC mismatch, trailing
    bytes. As nn/checkpoint.c does, the header and every record header are checked against the file's
    size before any data is read, and a name that occurs twice keeps its first record."""
    with open(path, "rb") as f:
        src = _Source(f, path, os.fstat(f.fileno()).st_size)
        if src.take(8, "the header") != MAGIC:
            raise CheckpointError(f"'{path}' is not a drnet checkpoint (bad magic bytes at offset 0)")
        version, count = struct.unpack("<II", src.take(8, "the header"))
        if version not in (1, 2):
            raise CheckpointError(f"checkpoint '{path}' has format version {version}; this reader reads 1 and 2")
        if count > 100000 or count > (src.size - 16) // 17:  # 17 bytes: the smallest record
            raise CheckpointError(f"checkpoint '{path}': implausible record count {count} at byte 12 for a "
                                  f"file of {src.size} bytes")
        table = [_read_header(src, i) for i in range(count)]
        if src.pos != src.size:
            raise CheckpointError(f"checkpoint '{path}' has {src.size - src.pos} unexpected bytes after its "
                                  f"last record (byte {src.pos})")
        records = {}
        for name, dtype, dims, nbytes, crc, head, data_at in table:
            src.pos = data_at
            data = src.take(nbytes, f"record '{name}'")
            if zlib.crc32(data, zlib.crc32(head) if version >= 2 else 0) & 0xFFFFFFFF != crc:
                raise CheckpointError(f"checkpoint '{path}' is corrupt: record '{name}' (data at byte {data_at}, "
                                      f"{nbytes} bytes) fails its CRC32")
            if name in records:
                continue
            records[name] = data if dtype == BYTES else np.frombuffer(data, dtype=_NUMPY[dtype]).reshape(dims).copy()
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


# The ranges ./train accepts (train/settings.c): --width, and a sane bound on the classes of a
# MobileNet's last layer (./train builds 10).
WIDTH_RANGE = (0.03125, 16.0)
CLASSES_RANGE = (1, 1000000)


def meta(records, path):
    """(model, width, num_classes) of a checkpoint's meta.* records, each None where absent, checked
    as ./train checks them: meta.model UTF-8 text, meta.width a finite float32 scalar in --width's
    range, meta.num_classes an int64 scalar in CLASSES_RANGE. Anything else raises CheckpointError
    naming the file and the record, so that no tool builds a model from it."""
    def bad(name, what):
        raise CheckpointError(f"checkpoint '{path}': {name} {what}: the file is damaged or was not written "
                              f"by ./train or tools/")

    def typed(name, numpy_dtype, kind):
        value = records.get(name)
        if value is None:
            return None
        if not isinstance(value, np.ndarray) or value.dtype != numpy_dtype or value.ndim != 0:
            bad(name, f"is not {kind}")
        return value.item()

    model = records.get("meta.model")
    if model is not None:
        if not isinstance(model, bytes):
            bad("meta.model", "is not a string")
        try:
            model = model.decode("utf-8")
        except UnicodeDecodeError:
            bad("meta.model", "is not UTF-8 text")
    width = typed("meta.width", np.float32, "a float32 scalar")
    if width is not None and not (math.isfinite(width) and WIDTH_RANGE[0] <= width <= WIDTH_RANGE[1]):
        bad("meta.width", f"is {width:g}, expected a number in {WIDTH_RANGE[0]:g}..{WIDTH_RANGE[1]:g}")
    classes = typed("meta.num_classes", np.int64, "an int64 scalar")
    if classes is not None and not CLASSES_RANGE[0] <= classes <= CLASSES_RANGE[1]:
        bad("meta.num_classes", f"is {classes}, expected an integer in {CLASSES_RANGE[0]}..{CLASSES_RANGE[1]}")
    return model, width, classes
