#!/usr/bin/env python3
"""Writes an initramfs (cpio "newc", uncompressed) for the AVX-512 check VM.

    initramfs.py OUT INIT ROOT

INIT becomes /init; every directory and file under ROOT is added at the same
path (files keep their executable bit). The archive also holds /dev/console
(init's console until it mounts devtmpfs), /proc and /tmp. Written here rather
than with cpio(1) because a device node would need root.
"""
import os
import sys


def entry(out, ino, name, mode, data=b"", rdev=(0, 0)):
    raw = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
    out.write(b"070701" + "".join("%08X" % v for v in fields).encode() + raw)
    out.write(b"\0" * (-(110 + len(raw)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out_path, init, root = sys.argv[1:]
    items = [
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("proc", 0o040755, b"", (0, 0)),
        ("tmp", 0o041777, b"", (0, 0)),
        ("init", 0o100755, open(init, "rb").read(), (0, 0)),
    ]
    for top, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(top, root)
        if rel != ".":
            items.append((rel, 0o040755, b"", (0, 0)))
        for f in sorted(files):
            path = os.path.join(top, f)
            mode = 0o100755 if os.access(path, os.X_OK) else 0o100644
            name = f if rel == "." else rel + "/" + f
            items.append((name, mode, open(path, "rb").read(), (0, 0)))
    with open(out_path, "wb") as out:
        for ino, (name, mode, data, rdev) in enumerate(items, start=1):
            entry(out, ino, name, mode, data, rdev)
        entry(out, len(items) + 1, "TRAILER!!!", 0)


if __name__ == "__main__":
    main()
