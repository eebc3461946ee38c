"""Writes the seed corpora of the fuzz harnesses (corpus/cifar10, corpus/checkpoint): a few small valid
and nearly-valid inputs from which libFuzzer mutates. Run with /usr/bin/python3 (numpy) from here.

cifar10 inputs start with the harness's mode byte (0: tar.gz in memory; 13: directory, all six
files) and hold members of 1 record (3073 bytes), the size the harness asks for.
"""
import gzip
import io
import os
import struct
import sys
import tarfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import drnet_ckpt  # noqa: E402

NAMES = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
         "data_batch_5.bin", "test_batch.bin"]


def record(k):
    return bytes([k % 10]) + bytes([k * 7 % 256]) * 3072


def tar_bytes(fmt, prefix="cifar-10-batches-bin/", extra=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for k, name in enumerate(NAMES):
            data = record(k)
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
        if extra:
            info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
            info.size = len(extra)
            t.addfile(info, io.BytesIO(extra))
    return buf.getvalue()


def save(corpus, name, data):
    os.makedirs(os.path.join(HERE, "corpus", corpus), exist_ok=True)
    with open(os.path.join(HERE, "corpus", corpus, name), "wb") as f:
        f.write(data)


# --- CIFAR-10 reader
save("cifar10", "ustar.tgz", b"\0" + gzip.compress(tar_bytes(tarfile.USTAR_FORMAT), mtime=0))
save("cifar10", "gnu_longname.tgz",
     b"\0" + gzip.compress(tar_bytes(tarfile.GNU_FORMAT, prefix="x" * 120 + "/"), mtime=0))
save("cifar10", "pax.tgz",
     b"\0" + gzip.compress(tar_bytes(tarfile.PAX_FORMAT, prefix="p" * 120 + "/", extra=b"airplane\n"), mtime=0))
whole = tar_bytes(tarfile.USTAR_FORMAT)
save("cifar10", "two_members.tgz",
     b"\0" + gzip.compress(whole[:5000], mtime=0) + gzip.compress(whole[5000:], mtime=0))
save("cifar10", "zlib_stream.bin", b"\0" + zlib.compress(whole))
for crafted in ("pax_negative_length.tar.gz", "pax_huge_length.tar.gz", "pax_no_newline.tar.gz"):
    with open(os.path.join(HERE, "..", "crafted", crafted), "rb") as f:
        save("cifar10", crafted, b"\0" + f.read())
save("cifar10", "directory.bin", b"\x0d" + b"".join(record(k) for k in range(6)))
save("cifar10", "directory_bad_label.bin", b"\x0d" + b"".join(record(k) for k in range(5)) + b"\x0b" + b"\0" * 3072)

# --- checkpoint reader
drnet_ckpt.write("/tmp/seed.ckpt", {
    "meta.model": "mobilenet", "meta.width": 0.25, "train.step": 7,
    "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
    "meta.dw_groups": np.ones(13, dtype=np.int64), "empty": np.zeros((0, 3), dtype=np.float32)})
with open("/tmp/seed.ckpt", "rb") as f:
    save("checkpoint", "v2_tensors.bin", f.read())
os.unlink("/tmp/seed.ckpt")
with open(os.path.join(HERE, "..", "crafted", "no_tensors.bin"), "rb") as f:
    save("checkpoint", "v2_training_state.bin", f.read())
# version 1: CRC of the data only
v1 = bytearray(b"DRNETCKP" + struct.pack("<II", 1, 2))
for name, dtype, value in ((b"train.step", 2, struct.pack("<q", 77)), (b"meta.width", 1, struct.pack("<f", 0.5))):
    v1 += struct.pack("<H", len(name)) + name + struct.pack("<BBQI", dtype, 0, len(value), zlib.crc32(value)) + value
save("checkpoint", "v1_scalars.bin", bytes(v1))
