#!/usr/bin/env python3
"""Fast builders for tests/bench/run, which would take minutes in shell.

  helper.py data FILE SIZE DATA        DATA bytes of pseudo-random data from
                                       offset 0, length SIZE, fsynced
  helper.py scatter FILE DATA WRITES   WRITES 4 KiB overwrites at random
                                       blocks of the first DATA bytes, an
                                       fsync after every 500
  helper.py half FILE SIZE             half data, half holes: 1 MiB of data
                                       then 1 MiB of hole; in each data MiB
                                       every 8th block and the last 128 KiB
                                       are written zeros
  helper.py revisions BASE COUNT SIZE  COUNT revisions BASE.img.N@TIME, each
                                       a new sparse file of SIZE bytes
  helper.py pool POOL COUNT            POOL/appvms/vmN/private.img and a
                                       valid -precache.img for N < COUNT
  helper.py writes STREAM              the arguments of an xfs_io that
                                       writes the 'w' ranges of an rbd diff
                                       v1 STREAM and fsyncs, one per line
"""
import os
import random
import sys
import time

BLOCK = 4096


def data(path, size, length):
    chunk = random.Random(1).randbytes(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # The length first: writes below it leave XFS no reason to
    # preallocate past the data (unwritten extents inside the image).
    os.ftruncate(fd, size)
    for offset in range(0, length, len(chunk)):
        os.pwrite(fd, chunk[: min(len(chunk), length - offset)], offset)
    os.fsync(fd)
    os.close(fd)


def scatter(path, length, writes):
    rng = random.Random(writes)
    fd = os.open(path, os.O_RDWR)
    for i, block in enumerate(rng.sample(range(length // BLOCK), writes)):
        os.pwrite(fd, rng.randbytes(BLOCK), block * BLOCK)
        # Each fsync ends a batch: its blocks get their own extents.
        if i % 500 == 499:
            os.fsync(fd)
    os.fsync(fd)
    os.close(fd)


def half(path, size):
    rng = random.Random(2)
    chunk = b"".join(
        bytes(BLOCK) if i % 8 == 7 or i >= 224 else rng.randbytes(BLOCK)
        for i in range(256)
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for offset in range(0, size, 2 * len(chunk)):
        os.pwrite(fd, chunk, offset)
    os.ftruncate(fd, size)
    os.fsync(fd)
    os.close(fd)


def revisions(base, count, size):
    start = int(time.time()) - count
    for n in range(1, count + 1):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + n))
        fd = os.open(f"{base}.img.{n}@{stamp}",
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, size)
        os.close(fd)


def pool(path, count):
    os.makedirs(os.path.join(path, "vm-templates"))
    for n in range(count):
        vm = os.path.join(path, "appvms", f"vm{n}")
        os.makedirs(vm)
        clean = os.path.join(vm, "private.img")
        precache = os.path.join(vm, "private-precache.img")
        for name in (clean, precache):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.ftruncate(fd, 1 << 20)
            os.close(fd)
        st = os.stat(clean)
        os.utime(precache, ns=(st.st_atime_ns, st.st_mtime_ns))


def writes(path):
    with open(path, "rb") as f:
        stream = f.read()
    if not stream.startswith(b"rbd diff v1\n"):
        sys.exit(f"helper.py: {path}: not an rbd diff v1 stream")
    i = 12
    while i < len(stream):
        tag = stream[i:i + 1]
        i += 1
        if tag in (b"f", b"t"):
            i += 4 + int.from_bytes(stream[i:i + 4], "little")
        elif tag == b"s":
            i += 8
        elif tag in (b"w", b"z"):
            offset = int.from_bytes(stream[i:i + 8], "little")
            length = int.from_bytes(stream[i + 8:i + 16], "little")
            i += 16
            if tag == b"w":
                i += length
                print(f"-c\npwrite -q -S 0x5a {offset} {length}")
        else:
            break
    print("-c\nfsync")


def main(argv):
    what, args = argv[1], argv[2:]
    if what == "data":
        data(args[0], int(args[1]), int(args[2]))
    elif what == "scatter":
        scatter(args[0], int(args[1]), int(args[2]))
    elif what == "half":
        half(args[0], int(args[1]))
    elif what == "revisions":
        revisions(args[0], int(args[1]), int(args[2]))
    elif what == "pool":
        pool(args[0], int(args[1]))
    elif what == "writes":
        writes(args[0])
    else:
        sys.exit(f"helper.py: unknown command {what}")


if __name__ == "__main__":
    main(sys.argv)
