"""oldreader.py: an old-style legacy receiver (numpy) for framering's tests.

    oldreader.py PATH WIDTH HEIGHT CHANNELS

As the old receivers do: open PATH read-only, map exactly 24 + w*h*c bytes
from offset 0 (PROT_READ, MAP_SHARED), and for every line on stdin: read
the header; if the size differs, print "mismatch W H C" and exit 3; if
frame_valid == 1, copy bytes 24.. into an (h, w, c) uint8 array, else sleep
1 ms and retry. Prints "frame F TS SHA256" (F: the pattern's first 8
bytes, little-endian).
"""
import hashlib
import mmap
import os
import struct
import sys
import time

import numpy as np


def main():
    path, w, h, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    size = 24 + w * h * c
    fd = os.open(path, os.O_RDONLY)
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
    os.close(fd)
    print("ready", flush=True)
    for _ in sys.stdin:
        while True:
            hw, hh, hc, ts, valid = struct.unpack_from("<iiiqi", mm, 0)
            if (hw, hh, hc) != (w, h, c):
                print("mismatch %d %d %d" % (hw, hh, hc), flush=True)
                sys.exit(3)
            if valid == 1:
                frame = np.frombuffer(mm, dtype=np.uint8, count=w * h * c, offset=24).reshape((h, w, c)).copy()
                f = int.from_bytes(frame.reshape(-1)[:8].tobytes(), "little")
                print("frame %d %d %s" % (f, ts, hashlib.sha256(frame.tobytes()).hexdigest()), flush=True)
                break
            time.sleep(0.001)


if __name__ == "__main__":
    main()
