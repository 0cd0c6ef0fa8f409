"""A writer or reader in a child process, driven by lines on stdin.

    helper.py writer DIR NAME HEIGHT WIDTH CHANNELS SLOTS
        prints "ready gen=G next=N pid=P", then obeys:
        go N      publish N test-pattern frames at full speed, print "done head=H"
        forever   publish test-pattern frames until killed (prints "publishing")
        hold      reserve the next slot, fill half of it and stop (prints "held N")
        close     close the writer, print "closed" and exit
    helper.py reader DIR NAME
        opens with start=oldest, prints "ready", then on "read" reads one
        frame and prints "frame N"
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framering  # noqa: E402
from framering import pattern  # noqa: E402


def publish(w):
    a = w.reserve()
    pattern.fill(a.reshape(-1), w.next_number)
    return w.commit()


def writer(d, name, h, w_, c, slots):
    w = framering.Writer(name, shape=(int(h), int(w_), int(c)), slots=int(slots), dir=d)
    print("ready gen=%d next=%d pid=%d" % (w.generation, w.next_number, os.getpid()), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "go":
            head = 0
            for _ in range(int(cmd[1])):
                head = publish(w)
            print("done head=%d" % head, flush=True)
        elif cmd[0] == "forever":
            publish(w)
            print("publishing", flush=True)
            while True:
                publish(w)
        elif cmd[0] == "hold":
            a = w.reserve()
            flat = a.reshape(-1)
            flat[:len(flat) // 2] = 0xAB
            print("held %d" % w.next_number, flush=True)
            while True:
                time.sleep(1)
        elif cmd[0] == "close":
            w.close()
            print("closed", flush=True)
            return


def reader(d, name):
    r = framering.Reader(name, dir=d, start="oldest")
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "read":
            f = r.read(timeout=5)
            print("frame %d" % f.number, flush=True)


if __name__ == "__main__":
    {"writer": writer, "reader": reader}[sys.argv[1]](*sys.argv[2:])
