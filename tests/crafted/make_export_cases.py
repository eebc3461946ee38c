"""Writes CRC-valid checkpoints that tools/export.py must refuse in one line (tests/test_export.sh),
into the directory given: a MobileNet's complete weights at width 0.125 with one bad meta record, or
a record name the C reader refuses. Each once ended export.py in a traceback (OverflowError, a
RuntimeError from nn.Linear, an AttributeError, a MemoryError) or was read without complaint.

    /usr/bin/python3 make_export_cases.py DIR      -> DIR/NAME.ckpt and DIR/cases.txt (NAME<TAB>expected text)

Needs torch and numpy (the weights come from tools/mobilenet.py).
"""
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import drnet_ckpt  # noqa: E402
import mobilenet  # noqa: E402

META = {"meta.model": "mobilenet", "meta.dataset": "cifar10", "meta.width": 0.125, "meta.num_classes": 10}

CASES = {  # name: (record, bad value, what the one-line error must say)
    "classes_negative": ("meta.num_classes", -1, "meta.num_classes is -1, expected an integer in 1..1000000"),
    "classes_huge": ("meta.num_classes", 1 << 40, "meta.num_classes is 1099511627776, expected an integer"),
    "width_inf": ("meta.width", float("inf"), "meta.width is inf, expected a number in 0.03125..16"),
    "width_i64": ("meta.width", 1, "meta.width is not a float32 scalar"),
    "model_number": ("meta.model", 7, "meta.model is not a string"),
    "classes_f32": ("meta.num_classes", 10.0, "meta.num_classes is not an int64 scalar"),
}


def raw_record(name, value):
    """A version 2 record with any name bytes (drnet_ckpt.write refuses an empty one)."""
    data = struct.pack("<q", value)
    head = struct.pack("<H", len(name)) + name + struct.pack("<BBQ", drnet_ckpt.I64, 0, len(data))
    return head + struct.pack("<I", zlib.crc32(data, zlib.crc32(head))) + data


def write_raw(path, names):
    with open(path, "wb") as f:
        f.write(drnet_ckpt.MAGIC + struct.pack("<II", 2, len(names)))
        for name in names:
            f.write(raw_record(name, 1))


def main():
    out = sys.argv[1]
    weights = mobilenet.state_to_tensors(mobilenet.MobileNet(0.125, 10).state_dict())
    expected = {}
    for name, (record, value, text) in CASES.items():
        records = {**META, **weights, record: value}
        drnet_ckpt.write(os.path.join(out, name + ".ckpt"), records)
        expected[name] = text
    write_raw(os.path.join(out, "name_nul.ckpt"), [b"meta.width", b"meta\0model"])
    expected["name_nul"] = "record 1 at byte 50 has a NUL byte in its name"
    write_raw(os.path.join(out, "name_empty.ckpt"), [b"meta.width", b""])
    expected["name_empty"] = "record 1 at byte 50 has a bad name length 0"
    write_raw(os.path.join(out, "name_not_utf8.ckpt"), [b"meta.\xff"])
    expected["name_not_utf8"] = "record 0 at byte 16 has a name that is not UTF-8"
    with open(os.path.join(out, "cases.txt"), "w") as f:
        for name, text in expected.items():
            f.write(f"{name}\t{text}\n")


if __name__ == "__main__":
    main()
