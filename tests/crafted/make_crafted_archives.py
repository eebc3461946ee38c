"""Writes the crafted CIFAR-10 archives in this directory (small regression inputs for the reader).

pax_negative_length.tar.gz: a pax extended header ('x') whose second record declares length "-6".
    strtoul read it as 2^64 - 6, `pos + rec > len` overflowed and passed, `pos` went back to the
    first record and the reader looped forever. It must be refused with a message instead.
pax_huge_length.tar.gz: a pax record length of twenty digits (beyond 2^64).
pax_no_newline.tar.gz: a pax record whose declared length does not end at its newline.
Run with any Python 3: python3 make_crafted_archives.py
"""
import gzip
import io
import tarfile


def archive(path, pax_data):
    buf = io.BytesIO()
    info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
    header = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    # turn the header into a pax extended header of len(pax_data) bytes and fix its checksum
    header[156] = ord("x")
    header[124:136] = b"%011o\0" % len(pax_data)
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    buf.write(bytes(header))
    buf.write(pax_data + b"\0" * ((512 - len(pax_data) % 512) % 512))
    buf.write(b"\0" * 1024)
    with open(path, "wb") as f:
        f.write(gzip.compress(buf.getvalue(), mtime=0))


archive("pax_negative_length.tar.gz", b"6 a=b\n-6 x\n")
archive("pax_huge_length.tar.gz", b"99999999999999999999 path=x\n")
archive("pax_no_newline.tar.gz", b"8 path=x\n")
