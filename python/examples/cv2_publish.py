#!/usr/bin/python3
"""Publish frames into a framering ring with OpenCV.

    /usr/bin/python3 examples/cv2_publish.py --ring cam0 --video clip.avi
    /usr/bin/python3 examples/cv2_publish.py --ring cam0 --count 100      # synthetic frames

With --video (or --camera N) each frame is decoded by cv2.VideoCapture.read
straight into the reserved slot (no copy: the slot is the destination
array). Without, a synthetic image is drawn and published by copy.
Run from the repository with PYTHONPATH=python, or after installing the
package.
"""

import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import framering  # noqa: E402


def synthetic(n, h=240, w=320):
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = (np.arange(w) + 4 * n) % 256          # moving blue gradient
    img[:, :, 1] = (np.arange(h)[:, None] + 2 * n) % 256  # green
    cv2.putText(img, "frame %d" % n, (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ring", required=True)
    ap.add_argument("--dir", default=framering.DEFAULT_DIR)
    ap.add_argument("--video", help="a video file for cv2.VideoCapture")
    ap.add_argument("--camera", type=int, help="a camera index for cv2.VideoCapture")
    ap.add_argument("--count", type=int, default=0, help="frames to publish (0: until the video ends)")
    ap.add_argument("--fps", type=float, default=30.0, help="0: as fast as possible")
    a = ap.parse_args()

    cap = None
    if a.video or a.camera is not None:
        cap = cv2.VideoCapture(a.video if a.video else a.camera)
        ok, first = cap.read()
        if not ok:
            sys.exit("cannot read a frame from %s" % (a.video or "camera %d" % a.camera))
    else:
        first = synthetic(0)
    period = 1.0 / a.fps if a.fps > 0 else 0.0
    with framering.Writer(a.ring, shape=first.shape, dir=a.dir) as w:   # bgr8, OpenCV's order
        print("publishing %s frames into %s (generation %d)" % ("x".join(map(str, first.shape)), w.path,
                                                                 w.generation), flush=True)
        w.publish(first, capture_ns=time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        sent = 1
        while a.count == 0 or sent < a.count:
            if period:
                time.sleep(period)
            if cap is None:
                w.publish(synthetic(sent))
            else:
                slot = w.reserve()                  # writable (H, W, 3) array over the slot
                ok, got = cap.read(slot)            # decoded in place when the shape matches
                capture = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                if not ok:
                    w.abort()
                    break
                if not np.shares_memory(got, slot):  # OpenCV allocated its own (size changed)
                    w.abort()
                    sys.exit("the video changed size to %s; the ring holds %s" % (got.shape, slot.shape))
                w.commit(capture_ns=capture)
            sent += 1
        print("published %d frames" % sent, flush=True)
    if cap is not None:
        cap.release()


if __name__ == "__main__":
    main()
