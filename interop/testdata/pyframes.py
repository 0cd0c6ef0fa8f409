"""Prints what the Python package's reader gets from a ring, frame by
frame, for interop/pyframes_test.go (a Go writer with padded rows and
metadata):

    pyframes.py DIR NAME MODE READ COUNT

MODE is ordered or latest, READ copy or view. The reader opens at the
oldest frame and prints "ready"; then, for each of COUNT delivered frames,
"frame N gen=G fmt=F shape=HxWxC sha256=HEX meta=HEX" (the digest of the
image as an H x W x C array, row padding excluded; for a view, computed in
place before the view is released, and a view the writer overwrote
meanwhile is not printed); then "summary key=value ..." with the reader's
counters.
"""

import hashlib
import sys

import numpy as np

import framering


def main(d, name, mode, how, count):
    count = int(count)
    with framering.Reader(name, dir=d, mode=mode, start="oldest") as r:
        print("ready", flush=True)
        got = 0
        while got < count:
            if how == "copy":
                f = r.read(timeout=30)
                digest = hashlib.sha256(np.ascontiguousarray(f.image).tobytes()).hexdigest()
                meta = bytes(f.meta)
            else:
                v = r.view(timeout=30)
                try:
                    with v as img:
                        f = v.frame
                        digest = hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()
                        meta = bytes(v.meta)
                except framering.FrameOverwritten:
                    continue
            got += 1
            print("frame %d gen=%d fmt=%s shape=%s sha256=%s meta=%s" % (
                f.number, f.generation, f.format_name, "x".join(map(str, f.shape)), digest, meta.hex()), flush=True)
        st = r.stats.as_dict()
        st["writer_up"] = int(st["writer_up"])
        print("summary " + " ".join("%s=%d" % kv for kv in st.items()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
