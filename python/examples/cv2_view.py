#!/usr/bin/python3
"""Show a framering ring with OpenCV, working on frames in place.

    /usr/bin/python3 examples/cv2_view.py --ring cam0            # a window (needs DISPLAY)
    /usr/bin/python3 examples/cv2_view.py --ring cam0 --png out.png --count 1   # headless

Each frame is a view: a read-only numpy array over the ring's slot, no
copy. Whatever is computed from it counts only if the view was still valid
when the with-block ended; otherwise framering raises FrameOverwritten.
With a window, cv2.imshow copies the view into the window inside the
block; if the writer overwrote the slot meanwhile the window may show a
torn frame until the next one replaces it (fine for a preview, and
counted). Headless, the PNG is encoded from the view inside the block and
written only once the block ended valid.
"""

import argparse
import os
import sys

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import framering  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ring", required=True)
    ap.add_argument("--dir", default=framering.DEFAULT_DIR)
    ap.add_argument("--png", help="write the last frame's view as this PNG file (headless)")
    ap.add_argument("--count", type=int, default=0, help="frames to show or encode (0: until q or Esc)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the ring and for a frame")
    a = ap.parse_args()
    window = a.png is None and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if a.png is None and not window:
        sys.exit("no DISPLAY: give --png FILE to write a frame instead of opening a window")

    shown = stale = 0
    with framering.Reader(a.ring, dir=a.dir, mode="latest", wait=True, timeout=a.timeout) as r:
        while a.count == 0 or shown < a.count:
            try:
                v = r.view(timeout=a.timeout)
                with v as img:                          # read-only (H, W, C), aliases the slot
                    if window:
                        cv2.imshow(a.ring, img)         # copies the view into the window now
                    else:
                        ok, out = cv2.imencode(".png", img)  # encoded straight from the slot
            except framering.FrameOverwritten:
                stale += 1                              # the writer reused the slot: result is garbage
                if window:
                    cv2.waitKey(1)
                continue
            except framering.WriterGone as e:
                print(e, file=sys.stderr)
                continue
            shown += 1
            if window:
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            else:
                with open(a.png, "wb") as f:
                    f.write(out.tobytes())
        print("frames %d, views overwritten %d, %s" % (shown, stale, r.stats), flush=True)


if __name__ == "__main__":
    main()
