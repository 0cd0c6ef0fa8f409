"""``python3 -m framering send|recv|ls``: the Go CLI's commands of the same
names, with the same flags and output (see docs/CLI.md and python/README.md).

Exit status: 0 ok, 1 failure (the message says what to do), 2 usage error.
"""

import argparse
import os
import re
import signal
import sys
import time

import numpy as np

from . import _layout as L
from . import errors, pattern
from ._sys import monotonic_ns
from .reader import Reader
from .writer import Writer

PROG = "python3 -m framering"


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s\nrun '%s --help' for usage" % (message, self.prog))


# ---- durations, as Go's time.ParseDuration and Duration.String --------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(s):
    """Seconds from a Go duration ("1.5s", "300ms", "1m30s", "0"); a bare
    number is seconds."""
    t = s.strip()
    try:
        v = float(t)
        if v < 0:
            raise ValueError
        return v
    except ValueError:
        pass
    pos, ns = 0, 0.0
    if not t:
        raise argparse.ArgumentTypeError("invalid duration %r" % s)
    while pos < len(t):
        m = _DUR_RE.match(t, pos)
        if not m:
            raise argparse.ArgumentTypeError("invalid duration %r (examples: 5s, 300ms, 1m30s)" % s)
        ns += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return ns / 1e9


def _frac(v, unit, digits):
    q, r = divmod(v, unit)
    f = str(r).rjust(digits, "0").rstrip("0")
    return "%d.%s" % (q, f) if f else "%d" % q


def go_duration(ns):
    """ns formatted as Go's time.Duration.String does."""
    ns = int(ns)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return "%s%dns" % (sign, ns)
    if ns < 1_000_000:
        return sign + _frac(ns, 1_000, 3) + "µs"
    if ns < 1_000_000_000:
        return sign + _frac(ns, 1_000_000, 6) + "ms"
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    out = sign
    if h:
        out += "%dh" % h
    if h or m:
        out += "%dm" % m
    return out + _frac(rest, 1_000_000_000, 9) + "s"


def _round(ns, unit):
    q, r = divmod(int(ns), unit)
    if r * 2 >= unit:
        q += 1
    return q * unit


def fmt_ns(ns):
    """The Go CLI's latency rounding (cmd/framering recv.go fmtNs)."""
    if ns >= 1_000_000_000:
        return go_duration(_round(ns, 1_000_000))
    if ns >= 1_000_000:
        return go_duration(_round(ns, 10_000))
    return go_duration(_round(ns, 100))


class Histogram:
    """Log-bucketed latencies (8 buckets per power of two, <= 12.5 %)."""

    def __init__(self):
        self.counts = [0] * (64 * 8)
        self.n = 0

    def record(self, v):
        v = max(int(v), 1)
        e = v.bit_length()
        sub = (v >> (e - 4)) & 7 if e > 3 else v & 7
        self.counts[e * 8 + sub] += 1
        self.n += 1

    def quantile(self, q):
        if not self.n:
            return 0
        want = max(1, int(q * self.n + 0.5))
        acc = 0
        for i, c in enumerate(self.counts):
            acc += c
            if acc >= want:
                e, sub = divmod(i, 8)
                if e <= 3:
                    return sub
                lo = (8 | sub) << (e - 4)
                return lo + (1 << (e - 4)) // 2
        return 0


def _quote(s):
    return '"%s"' % s  # ring names need no escaping


def _check_ring(args, cmd):
    if not args.ring:
        raise UsageError("%s: --ring NAME is required" % cmd)
    try:
        L.check_name(args.ring)
    except errors.InvalidName as e:
        raise UsageError("%s: --ring: %s" % (cmd, e))


class _Stop:
    """SIGINT/SIGTERM: stop the loop cleanly (and cancel a blocked read)."""

    def __init__(self):
        self.stopped = False
        self.reader = None
        self.opening = False  # while True a signal interrupts the open at once
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.stopped = True
        if self.reader is not None:
            self.reader.cancel()
        elif self.opening:
            raise KeyboardInterrupt  # waiting for the ring to appear: stop now

    def restore(self):
        for sig, h in self._old.items():
            signal.signal(sig, h)

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while not self.stopped:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


# ---- send -----------------------------------------------------------------------------

class _PatternSource:
    def __init__(self, size, fmt):
        w, h, c = L.parse_size(size)
        f = L.format_for_channels(c)
        if fmt:
            f = L.format_number(fmt)
            if f != L.RAW and L.FORMATS[f][1] != c:
                raise errors.InvalidFrame("format %s has %d channels, the size %r says %d"
                                          % (L.FORMATS[f][0], L.FORMATS[f][1], size, c))
        self.format, self.w, self.h, self.c = f, w, h, c
        if f == L.RAW:
            self.length = w * h * c
            self.shape = (self.length,)
        else:
            self.length = w * h * c * L.FORMATS[f][2]
            self.shape = (h, w, c)
        if self.length > L.MAX_PAYLOAD_CAP:
            raise errors.InvalidFrame("%r is %d bytes, more than %d" % (size, self.length, L.MAX_PAYLOAD_CAP))
        if self.length < pattern.HEADER_LEN:
            raise errors.InvalidFrame("%r is %d bytes; the test pattern needs at least %d"
                                      % (size, self.length, pattern.HEADER_LEN))

    def describe(self):
        if self.format == L.RAW:
            return "raw %d bytes" % self.length
        return "%dx%dx%d %s" % (self.w, self.h, self.c, L.format_name(self.format))

    def send(self, w):
        dims = (self.w, self.h) if self.format == L.RAW else None
        arr = w.reserve(self.shape, self.format, dims=dims)
        try:
            pattern.fill(arr.reshape(-1).view(np.uint8), w.next_number)
        except BaseException:
            w.abort()
            raise
        return w.commit()

    def close(self):
        pass


class _CvSource:
    """--image, --video, --camera through OpenCV (python3-opencv)."""

    def __init__(self, kind, arg, width=0, height=0):
        try:
            import cv2
        except ImportError:
            raise errors.RingError("send --%s needs OpenCV for Python: apt-get install python3-opencv" % kind)
        self.cv2 = cv2
        self.cap = None
        self.image = None
        self.fps = 0.0
        if kind == "image":
            img = cv2.imread(arg, cv2.IMREAD_COLOR)
            if img is None:
                raise errors.RingError("image %s: cannot read or decode it; give a readable PNG or JPEG file" % arg)
            self.image = img
        else:
            self.cap = cv2.VideoCapture(arg if kind == "video" else int(arg))
            if not self.cap.isOpened():
                raise errors.RingError("%s %s: OpenCV cannot open it" % (kind, arg))
            if width:
                self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            ok, img = self.cap.read()
            if not ok:
                raise errors.RingError("%s %s: no frame could be read" % (kind, arg))
            self.first = img
            self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0
        img = self.image if self.image is not None else self.first
        self.h, self.w = img.shape[:2]
        self.c = img.shape[2] if img.ndim == 3 else 1
        self.shape = (self.h, self.w, self.c)
        self.format = L.format_for_channels(self.c)
        self.length = self.h * self.w * self.c

    def describe(self):
        return "%dx%dx%d %s" % (self.w, self.h, self.c, L.format_name(self.format))

    def send(self, w):
        if self.image is not None:
            return w.publish(self.image)
        if self.first is not None:
            img, self.first = self.first, None
            return w.publish(img)
        dst = w.reserve(self.shape, self.format)
        ok, got = self.cap.read(dst)  # decodes straight into the slot when the shape matches
        if not ok:
            w.abort()
            raise EOFError
        if got is not None and got.__array_interface__["data"][0] != dst.__array_interface__["data"][0]:
            if got.shape != dst.shape:
                w.abort()
                raise errors.RingError("video frame changed size to %s; the ring holds %s" % (got.shape, dst.shape))
            np.copyto(dst, got)
        return w.commit()

    def close(self):
        if self.cap is not None:
            self.cap.release()


def cmd_send(argv):
    p = _Parser(prog=PROG + " send", description="Publish frames from a test pattern, an image, a video or a "
                "camera into a ring (like 'framering send').")
    p.add_argument("--ring", default="", help="ring name (required)")
    p.add_argument("--dir", default=L.DEFAULT_DIR, help="shared-memory directory holding the rings")
    p.add_argument("--pattern", metavar="WxHxC", help="source: a checkable test pattern")
    p.add_argument("--format", default="", help="pixel format of --pattern: gray8, bgr8, rgb8, bgra8, rgba8, "
                   "gray16, yuyv, raw")
    p.add_argument("--image", metavar="FILE", help="source: a PNG or JPEG file (OpenCV), published again and again")
    p.add_argument("--video", metavar="FILE", help="source: a video file (OpenCV)")
    p.add_argument("--camera", metavar="N", type=int, help="source: camera N (OpenCV)")
    p.add_argument("--width", type=int, default=0, help="with --camera: requested capture width")
    p.add_argument("--height", type=int, default=0, help="with --camera: requested capture height")
    p.add_argument("--fps", type=float, default=None, help="frames per second (0: as fast as possible; default "
                   "30, --video: its own rate)")
    p.add_argument("--count", type=int, default=0, help="stop after N frames (0: until the source ends or "
                   "SIGINT/SIGTERM)")
    p.add_argument("--slots", type=int, default=8, help="slot count of a new ring, a power of two >= 2")
    p.add_argument("--remove", action="store_true", help="unlink the ring at exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no stats line on stderr")
    a = p.parse_args(argv)
    _check_ring(a, "send")
    given = ["--" + k for k in ("image", "pattern", "video", "camera") if getattr(a, k) is not None]
    if len(given) != 1:
        raise UsageError("send: give exactly one source (--image, --pattern, --video or --camera), got %s"
                         % (" and ".join(given) if given else "none"))
    if a.format and a.pattern is None:
        raise UsageError("send: --format applies to --pattern only")
    if (a.fps is not None and a.fps < 0) or a.count < 0:
        raise UsageError("send: --fps and --count must not be negative")
    if not (L.MIN_SLOTS <= a.slots <= L.MAX_SLOTS and a.slots & (a.slots - 1) == 0):
        raise UsageError("send: --slots %d is not a power of two in [%d, %d]" % (a.slots, L.MIN_SLOTS, L.MAX_SLOTS))
    # The source first, so bad input leaves nothing behind.
    if a.pattern is not None:
        try:
            src = _PatternSource(a.pattern, a.format)
        except errors.InvalidFrame as e:
            raise UsageError("send: --pattern: %s" % e)
    elif a.image is not None:
        src = _CvSource("image", a.image)
    elif a.video is not None:
        src = _CvSource("video", a.video)
    else:
        src = _CvSource("camera", a.camera, a.width, a.height)
    fps = a.fps
    if fps is None:
        fps = src.fps if a.video is not None else 30.0
    stop = _Stop()
    w = None
    try:
        if src.format == L.RAW:
            w = Writer(a.ring, frame_bytes=src.length, slots=a.slots, dir=a.dir)
        else:
            w = Writer(a.ring, shape=src.shape, format=src.format, slots=a.slots, dir=a.dir)
        g = w.geometry
        print("ring %s: %s, %d slots of %d bytes, generation %d, %s"
              % (_quote(a.ring), src.describe(), g.slots, g.payload_cap, w.generation, w.path), flush=True)
        sent = 0
        err = None
        period = 1.0 / fps if fps > 0 else 0.0
        start = time.monotonic()
        last_t, last_n = start, 0
        try:
            while (a.count == 0 or sent < a.count) and not stop.stopped:
                if period:
                    d = start + sent * period - time.monotonic()
                    if d > 0:
                        stop.sleep(d)
                        if stop.stopped:
                            break
                try:
                    n = src.send(w)
                except EOFError:
                    break
                sent += 1
                now = time.monotonic()
                if now - last_t >= 1.0:
                    if not a.quiet:
                        print("send %s: frame %d, %.1f fps" % (_quote(a.ring), n, (sent - last_n) / (now - last_t)),
                              file=sys.stderr, flush=True)
                    last_t, last_n = now, sent
        except errors.RingError as e:
            err = e
        print("sent %d frames" % sent, flush=True)
        if err is not None:
            raise err
    finally:
        if w is not None:
            if a.remove:
                w.remove()
            else:
                w.close()
        src.close()
        stop.restore()
    return 0


# ---- recv -----------------------------------------------------------------------------

def cmd_recv(argv):
    p = _Parser(prog=PROG + " recv", description="Read frames from a ring: check them, save them, count them "
                "(like 'framering recv'). Prints a stats line to stderr every second and a summary to stdout.")
    p.add_argument("--ring", default="", help="ring name (required)")
    p.add_argument("--dir", default=L.DEFAULT_DIR, help="shared-memory directory holding the rings")
    p.add_argument("--mode", default="all", help="all: every frame in order; latest: the newest frame only")
    p.add_argument("--start", default="newest", help="where the window begins: newest, next or oldest")
    p.add_argument("--count", type=int, default=0, help="stop after N frames (0: no limit)")
    p.add_argument("--verify", action="store_true", help="check every frame against the test pattern of "
                   "'send --pattern'; exit 1 on any mismatch")
    p.add_argument("--save", metavar="DIR", default="", help="write every frame as a PNG file into DIR (OpenCV)")
    p.add_argument("--wait", action="store_true", help="wait for the ring to appear instead of failing")
    p.add_argument("--timeout", type=parse_duration, default=0.0, help="fail if the ring does not appear (--wait) "
                   "or no frame comes for this long (0: wait forever)")
    p.add_argument("--spin", type=parse_duration, default=0.0, help="busy-poll this long before sleeping")
    p.add_argument("--eof", action="store_true", help="exit when the writer closes the ring or dies")
    p.add_argument("--view", action="store_true", help="read in place (Reader.view) instead of copying: "
                   "--verify checks the slot itself, and a frame the writer overwrote meanwhile counts as "
                   "overwritten, not delivered")
    p.add_argument("-q", "--quiet", action="store_true", help="no stats line on stderr")
    a = p.parse_args(argv)
    _check_ring(a, "recv")
    if a.view and a.save:
        raise UsageError("recv: --save copies every frame; it cannot be combined with --view")
    if a.mode not in ("all", "ordered", "latest"):
        raise UsageError("recv: --mode %r: use all or latest" % a.mode)
    if a.start not in ("newest", "next", "oldest"):
        raise UsageError("recv: --start %r: use newest, next or oldest" % a.start)
    if a.count < 0:
        raise UsageError("recv: --count must not be negative")
    cv2 = None
    if a.save:
        try:
            import cv2
        except ImportError:
            raise errors.RingError("recv --save needs OpenCV for Python: apt-get install python3-opencv")
        os.makedirs(a.save, exist_ok=True)
    timeout = a.timeout or None
    stop = _Stop()
    try:
        try:
            stop.opening = True
            r = Reader(a.ring, dir=a.dir, mode=a.mode, start=a.start, wait=a.wait, timeout=timeout, spin=a.spin)
            stop.reader = r
            stop.opening = False
        except KeyboardInterrupt:
            return 0  # interrupted while waiting for the ring
        except errors.NotFound as e:
            raise errors.NotFound("%s\n(use --wait to wait for it to appear)" % e)
        except errors.Timeout:
            raise errors.Timeout("ring %s did not appear within %s in %s; start its producer or check --dir"
                                 % (_quote(a.ring), go_duration(int(a.timeout * 1e9)), a.dir))
        if stop.stopped:
            r.cancel()
        return _recv_loop(a, r, stop, timeout, cv2)
    finally:
        stop.restore()


def _recv_loop(a, r, stop, timeout, cv2):
    with r:
        buf = np.empty(r.geometry.payload_cap, dtype=np.uint8)
        checker = pattern.Checker()
        hist = Histogram()
        got = mismatches = 0
        first_bad = None
        read_err = None
        tick = time.monotonic()
        prev = (r.stats, 0, Histogram())
        iv_hist = prev[2]
        while a.count == 0 or got < a.count:
            try:
                if a.view:
                    f, bad, at = _view_one(r, timeout, checker if a.verify else None)
                    if f is None:
                        continue  # overwritten before release: counted as such; the check saw garbage
                else:
                    f = r.read(timeout=timeout, out=buf)
                    at = monotonic_ns()
                    bad = checker.check(f.data, f.number) if a.verify else None
            except errors.Cancelled:
                break
            except errors.Timeout:
                read_err = errors.Timeout("ring %s: no frame for %s; is the producer running?"
                                          % (_quote(a.ring), go_duration(int(a.timeout * 1e9))))
                break
            except errors.WriterGone as e:
                print("recv: %s" % e, file=sys.stderr, flush=True)
                if a.eof:
                    break
                continue
            except errors.FrameTooLarge:
                buf = np.empty(r.geometry.payload_cap, dtype=np.uint8)  # remapped to larger slots
                continue
            except errors.RingError as e:
                read_err = e
                break
            lat = at - f.publish_ns
            hist.record(lat)
            iv_hist.record(lat)
            got += 1
            if a.verify:
                if bad is not None:
                    mismatches += 1
                    if first_bad is None:
                        first_bad = bad
                    if mismatches <= 5:
                        print("recv: frame %d: %s" % (f.number, bad), file=sys.stderr, flush=True)
            if cv2 is not None:
                _save(cv2, a.save, a.ring, f)
            now = time.monotonic()
            if now - tick >= 1.0:
                cur = r.stats
                if not a.quiet:
                    dt = now - tick
                    line = "%.1f fps, latency p50 %s p99 %s, dropped %d, frame %d" % (
                        (cur.delivered - prev[0].delivered) / dt, fmt_ns(iv_hist.quantile(0.5)),
                        fmt_ns(iv_hist.quantile(0.99)), cur.dropped, cur.last)
                    if not cur.writer_up:
                        line += ", writer gone"
                    print("recv %s: %s" % (_quote(a.ring), line), file=sys.stderr, flush=True)
                iv_hist = Histogram()
                prev = (cur, 0, iv_hist)
                tick = now
        st = r.stats
        summary = "received %d frames, dropped %d, latency p50 %s p99 %s" % (
            got, st.dropped, fmt_ns(hist.quantile(0.5)), fmt_ns(hist.quantile(0.99)))
        if a.verify:
            summary += ", verified %d, mismatches %d" % (got - mismatches, mismatches)
        print(summary)
        kv = st.as_dict()
        kv.pop("lag")
        kv["writer_up"] = int(kv["writer_up"])
        kv["verified"] = got - mismatches if a.verify else 0
        kv["mismatches"] = mismatches
        print("summary " + " ".join("%s=%d" % (k, v) for k, v in kv.items()), flush=True)
    if read_err is not None:
        raise read_err
    if mismatches:
        raise errors.RingError("recv --verify: %d of %d frames do not match the test pattern (first: %s); is the "
                               "producer 'send --pattern'?" % (mismatches, got, first_bad))
    return 0


def _view_one(r, timeout, checker):
    """One frame in place: (frame, pattern problem or None, acquire time),
    or (None, None, 0) if the writer overwrote the slot before the view
    was released (the reader counts it as overwritten; whatever the check
    found is meaningless then)."""
    v = r.view(timeout=timeout)
    try:
        with v:
            at = monotonic_ns()
            f = v.frame
            bad = checker.check(f.data, f.number) if checker is not None else None
    except errors.FrameOverwritten:
        return None, None, 0
    return f, bad, at


def _save(cv2, dir, name, f):
    img = f.image
    conv = {L.RGB8: cv2.COLOR_RGB2BGR, L.RGBA8: cv2.COLOR_RGBA2BGRA, L.YUYV: cv2.COLOR_YUV2BGR_YUYV}.get(f.format)
    if f.format == L.RAW:
        raise errors.RingError("recv --save: frame %d: raw frames have no image form" % f.number)
    if conv is not None:
        img = cv2.cvtColor(np.ascontiguousarray(img), conv)
    path = os.path.join(dir, "%s-%08d.png" % (name, f.number))
    if not cv2.imwrite(path, np.ascontiguousarray(img)):
        raise errors.RingError("recv --save: cannot write %s" % path)


# ---- ls -------------------------------------------------------------------------------

def fmt_bytes(n):
    if n >= 1 << 30 and n % (1 << 20) == 0:
        return "%.1fGiB" % (n / (1 << 30))
    if n >= 1 << 20:
        return "%.1fMiB" % (n / (1 << 20))
    if n >= 1 << 10:
        return "%.1fKiB" % (n / (1 << 10))
    return "%dB" % n


def _table(rows):
    """Columns padded like Go's tabwriter (padding 2)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i] + 2) for i, c in enumerate(r[:-1])] + [r[-1]]
        out.append("".join(cells))
    return "\n".join(out)


def read_slot_header(r, n, tries=100):
    """(frame_no, fields, stable): the header of frame n's slot under its
    seqlock, as Go's segfile.ReadSlot."""
    off = r._slot_off[n & r._mask]
    si = off // 8
    hdr = None
    for _ in range(tries):
        s1 = r._q[si]
        r._fence()
        hb = r._mm[off:off + L.SLOT_HEADER_SIZE]
        r._fence()
        hdr = L.SLOT_FIELDS.unpack_from(hb, L.SLOT_FIELDS_OFF)
        if s1 & 1 == 0 and r._q[si] == s1:
            return hdr, True
    return hdr, False


def cmd_ls(argv):
    p = _Parser(prog=PROG + " ls", description="List the rings in the shared-memory directory and how they are "
                "doing (like 'framering ls'). Maps every ring read-only and takes no lock.")
    p.add_argument("--dir", default=L.DEFAULT_DIR, help="shared-memory directory holding the rings")
    a = p.parse_args(argv)
    try:
        entries = sorted(os.listdir(a.dir))
    except OSError as e:
        raise errors.RingError("ls: %s; give the rings' directory with --dir" % e)
    names = []
    tmps = []
    for e in entries:
        if e.startswith(L.FILE_PREFIX):
            n = e[len(L.FILE_PREFIX):]
            try:
                L.check_name(n)
                names.append(n)
            except errors.InvalidName:
                pass
        elif e.startswith(L.TMP_PREFIX):
            tmps.append(e)
    rows = []
    any_alive = False
    for n in names:
        row = {"name": n, "r": None, "err": None}
        try:
            r = Reader(n, dir=a.dir, allow_group_writable=True, allow_other_owner=True)
            row["r"] = r
            state, _ = r.writer_state()
            if state == "hung":
                age = (monotonic_ns() - r._q[L.Q_HEARTBEAT]) / 1e9
                row["state"] = "hung (heartbeat %ds old)" % round(age)
            else:
                row["state"] = state
            row["alive"] = state in ("alive", "starting")
            any_alive = any_alive or row["alive"]
            row["frames0"] = r._q[L.Q_FRAMES_TOTAL]
            row["t0"] = time.monotonic()
        except errors.RingError as e:
            row["err"] = e
        rows.append(row)
    if any_alive:
        time.sleep(0.2)
    table = [["NAME", "GEOMETRY", "FRAME", "WRITER", "STATE", "FRAMES", "RATE", "NEWEST"]]
    problems = []
    for row in rows:
        r = row["r"]
        if r is None:
            table.append([row["name"], "-", "-", "-", "unreadable", "-", "-", "-"])
            problems.append(row["err"])
            continue
        sb = r.superblock()
        g = r.geometry
        rate = 0.0
        dt = time.monotonic() - row["t0"]
        if row["alive"] and dt > 0:
            rate = (sb["frames_total"] - row["frames0"]) / dt
        frame, age = "-", "-"
        head = sb["head"]
        if 0 < head < L.ABSURD:
            hdr, stable = read_slot_header(r, head)
            if stable and hdr[0] == head:
                (fn, gen, w, h, c, fmt, stride, mlen, plen, pub, cap, wall) = hdr
                if L.header_problem(g, fn, w, h, c, fmt, stride, mlen, plen) is None:
                    frame = ("raw %d bytes" % plen if fmt == L.RAW
                             else "%dx%dx%d %s" % (w, h, c, L.format_name(fmt)))
                else:
                    frame = "corrupt"
                d = monotonic_ns() - pub
                age = "in the future?" if d < 0 else fmt_ns(d) + " ago"
        table.append([row["name"], "%dx%s" % (g.slots, fmt_bytes(g.payload_cap)), frame, str(sb["writer_pid"]),
                      row["state"], str(sb["frames_total"]), "%.1f/s" % rate, age])
        r.close()
    for t in tmps:
        # Temporary files of writers building a ring (PROTOCOL-DECISIONS D1.4).
        state = "temporary"
        try:
            fd = os.open(os.path.join(a.dir, t), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                from ._sys import ofd_write_locked
                state = "temporary (being built)" if ofd_write_locked(fd) else "temporary (stale)"
            finally:
                os.close(fd)
        except OSError:
            pass
        table.append([t, "-", "-", "-", state, "-", "-", "-"])
    if not names and not tmps:
        print("no rings in %s" % a.dir, file=sys.stderr)
    print(_table(table), flush=True)
    for e in problems:
        print("ls: %s" % e, file=sys.stderr)
    return 0


COMMANDS = {"send": cmd_send, "recv": cmd_recv, "ls": cmd_ls}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: %s {send,recv,ls} [flags]\n\n"
              "  send   publish frames from a test pattern, an image, a video or a camera into a ring\n"
              "  recv   read frames from a ring: check them, save them, count them\n"
              "  ls     list the rings in the shared-memory directory\n\n"
              "Every command has --help. Exit status: 0 ok, 1 failure, 2 usage error." % PROG)
        return 0 if argv else 2
    cmd = COMMANDS.get(argv[0])
    try:
        if cmd is None:
            raise UsageError("unknown command %r for %s; use send, recv or ls" % (argv[0], PROG))
        return cmd(argv[1:])
    except UsageError as e:
        print("framering: %s" % e, file=sys.stderr)
        return 2
    except errors.RingError as e:
        print("framering: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 1
