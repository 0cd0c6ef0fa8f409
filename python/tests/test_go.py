"""Python against Go, both directions: the Go CLI is built from this
repository (skipped without go). Every accepted frame is checked against
the test pattern; delivered + dropped == published; writer SIGKILL is
detected and resumed; a Python writer's segment is the Go writer's byte
for byte, save pids and clocks."""

import re
import signal
import struct
import subprocess
import time

import pytest

import framering
from framering import _layout as L
from framering import pattern
from conftest import PYDIR, child_env, pycli

GO_SUMMARY = re.compile(r"^received (\d+) frames, dropped (\d+), latency p50 \S+ p99 \S+, "
                        r"verified (\d+), mismatches (\d+)$", re.M)
GONE = "ring writer is gone"
COUNT = 10000  # frames per run: a few seconds at full speed on this machine


def go_summary(lines):
    m = GO_SUMMARY.search("\n".join(lines))
    assert m, "no Go recv summary in %s" % lines
    return [int(x) for x in m.groups()]


def py_summary(lines):
    for line in lines:
        if line.startswith("summary "):
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise AssertionError("no summary line in %s" % lines)


def head_of(shm_dir, name):
    with framering.Reader(name, dir=shm_dir) as r:
        return r.superblock()["head"]


def precreate(shm_dir, name, shape, slots=8):
    """An empty ring with no writer: a reader opened on it has its window at
    frame 1 whenever the writer under test starts."""
    framering.Writer(name, shape=shape, dir=shm_dir, slots=slots).close()


@pytest.mark.guard(180)
def test_go_send_python_recv(go_cli, shm_dir, name, children):
    precreate(shm_dir, name, (480, 640, 3))
    rc = children(pycli("recv", "--ring", name, "--dir", shm_dir, "--verify", "-q"))
    rc.expect(GONE, stream="err")  # open, window at 1, no writer yet
    gs = children([go_cli, "send", "--ring", name, "--dir", shm_dir, "--pattern", "640x480x3", "--fps", "0",
                   "--count", COUNT, "-q"])
    assert gs.wait(timeout=120) == 0, gs.err_lines
    assert "generation 2" in gs.out_lines[0]  # took the Python-made ring over in place
    rc.expect(GONE, stream="err")  # drained everything up to Go's last frame
    rc.p.send_signal(signal.SIGINT)
    assert rc.wait() == 0, rc.err_lines
    kv = py_summary(rc.out_lines)
    assert kv["mismatches"] == 0 and kv["verified"] == kv["delivered"] > 0
    assert kv["delivered"] + kv["dropped"] == COUNT == kv["last"] == kv["considered"]
    assert (kv["window_start"], kv["writer_gone"], kv["resumes"], kv["corrupt"]) == (1, 2, 1, 0)
    print("Go send -> Python recv: %s" % kv)


@pytest.mark.guard(180)
def test_python_send_go_recv(go_cli, shm_dir, name, children):
    precreate(shm_dir, name, (480, 640, 3))
    gr = children([go_cli, "recv", "--ring", name, "--dir", shm_dir, "--verify", "-q"])
    gr.expect(GONE, stream="err")
    ps = children(pycli("send", "--ring", name, "--dir", shm_dir, "--pattern", "640x480x3", "--fps", "0",
                        "--count", COUNT, "-q"))
    assert ps.wait(timeout=120) == 0, ps.err_lines
    assert "generation 2" in ps.out_lines[0] and ps.out_lines[1] == "sent %d frames" % COUNT
    gr.expect(GONE, stream="err")
    gr.p.send_signal(signal.SIGINT)
    assert gr.wait() == 0, gr.err_lines
    received, dropped, verified, mismatches = go_summary(gr.out_lines)
    assert mismatches == 0 and verified == received > 0
    assert received + dropped == COUNT
    print("Python send -> Go recv: received %d, dropped %d, mismatches 0" % (received, dropped))


def _mask(b, offsets):
    b = bytearray(b)
    for off, n in offsets:
        b[off:off + n] = bytes(n)
    return bytes(b)


def test_python_segment_equals_go_segment_and_go_accepts_it(go_cli, shm_dir, children):
    args = ["--dir", shm_dir, "--pattern", "320x240x3", "--fps", "0", "--count", "1", "--slots", "4", "-q"]
    r = subprocess.run([go_cli, "send", "--ring", "g"] + args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(pycli("send", "--ring", "p", *args), cwd=PYDIR, env=child_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    go = open(L.ring_path(shm_dir, "g"), "rb").read()
    py = open(L.ring_path(shm_dir, "p"), "rb").read()
    assert len(go) == len(py) == L.Geometry(4, 320 * 240 * 3, 4096).file_size
    # The static superblock (geometry, flags, checksum) byte for byte.
    assert py[:64] == go[:64]
    # Everything else too, once pids and clocks are masked: live words
    # (generation, head, notify, totals), reserved zeros, all slots (seq
    # words, headers, metadata, the payload of frame 1).
    g = L.Geometry(4, 320 * 240 * 3, 4096)
    s1 = g.slot_offset(1)
    clocks = [(64, 4), (72, 8), (88, 8), (128, 8), (s1 + 56, 24)]
    assert _mask(py, clocks) == _mask(go, clocks)
    assert struct.unpack_from("<QQQ", py, s1) == (2, 1, 1)  # seq, frame 1, generation 1
    # Go's stat and recv accept the Python segment.
    st = subprocess.run([go_cli, "stat", "--dir", shm_dir, "p"], capture_output=True, text=True, timeout=60)
    assert st.returncode == 0, st.stderr
    assert re.search(r"^checksum\s+0x[0-9a-f]+ \(valid\)$", st.stdout, re.M)
    assert re.search(r"^version\s+2$", st.stdout, re.M) and re.search(r"^head\s+1$", st.stdout, re.M)
    assert re.search(r"^1\s+2\s+even\s+1\s+1\s+320x240x3 bgr8", st.stdout, re.M)
    rv = subprocess.run([go_cli, "recv", "--dir", shm_dir, "--ring", "p", "--verify", "--count", "1", "-q"],
                        capture_output=True, text=True, timeout=60)
    assert rv.returncode == 0 and go_summary(rv.stdout.splitlines()) == [1, 0, 1, 0]
    # And the Python reader accepts Go's.
    with framering.Reader("g", dir=shm_dir, start="oldest") as rd:
        f = rd.read(timeout=5)
        assert f.number == 1 and pattern.check(f.data, 1) is None and f.shape == (240, 320, 3)


@pytest.mark.guard(180)
def test_go_writer_sigkill_detected_and_resumed_by_python_reader(go_cli, shm_dir, name, children):
    send = [go_cli, "send", "--ring", name, "--dir", shm_dir, "--pattern", "320x240x3", "--fps", "0", "-q"]
    g1 = children(send)
    r = framering.Reader(name, dir=shm_dir, wait=True, timeout=60, start="oldest")
    checker = pattern.Checker()
    bad = []

    def drain():
        while True:
            try:
                f = r.read(timeout=60)
            except framering.WriterGone:
                return
            if checker.check(f.data, f.number) is not None:
                bad.append(f.number)

    try:
        for _ in range(30):
            f = r.read(timeout=60)
            if checker.check(f.data, f.number) is not None:
                bad.append(f.number)
        g1.kill(signal.SIGKILL)
        assert g1.wait() == -signal.SIGKILL
        drain()
        h1 = r.superblock()["head"]
        assert r.stats.writer_gone == 1 and r.stats.last == h1
        g2 = children(send[:-1] + ["--count", "3000", "-q"])
        drain()  # concurrently with the new writer, until it closes
        assert g2.wait(timeout=120) == 0
        assert "generation 2" in g2.out_lines[0]
        st = r.stats
        assert not bad, "torn or wrong frames accepted: %s" % bad[:10]
        assert (st.writer_gone, st.resumes, st.corrupt) == (2, 1, 0)
        assert st.last == h1 + 3000
        assert st.delivered + st.dropped == st.considered == st.last - st.window_start + 1
        print("Go writer killed at frame %d; Python reader: %s" % (h1, st))
    finally:
        r.close()


@pytest.mark.guard(180)
def test_python_writer_sigkill_detected_and_resumed_by_go_reader(go_cli, shm_dir, name, children):
    precreate(shm_dir, name, (480, 640, 3))
    gr = children([go_cli, "recv", "--ring", name, "--dir", shm_dir, "--verify", "-q"])
    gr.expect(GONE, stream="err")
    send = pycli("send", "--ring", name, "--dir", shm_dir, "--pattern", "640x480x3", "--fps", "0", "-q")
    p1 = children(send)
    p1.expect("ring ")
    with framering.Reader(name, dir=shm_dir) as probe:
        while probe.superblock()["head"] < 200:
            time.sleep(0.005)
    p1.kill(signal.SIGKILL)
    assert p1.wait() == -signal.SIGKILL
    gr.expect(GONE, stream="err")  # Go saw the killed writer go
    h1 = head_of(shm_dir, name)
    p2 = children(send[:-1] + ["--count", COUNT, "-q"])
    assert p2.wait(timeout=120) == 0, p2.err_lines
    assert "generation 3" in p2.out_lines[0]
    gr.expect(GONE, stream="err")
    gr.p.send_signal(signal.SIGINT)
    assert gr.wait() == 0, gr.err_lines
    received, dropped, verified, mismatches = go_summary(gr.out_lines)
    assert mismatches == 0 and verified == received > 0
    assert received + dropped == h1 + COUNT
    print("Python writer killed at frame %d; Go reader received %d, dropped %d" % (h1, received, dropped))
