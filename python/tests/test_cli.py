"""python3 -m framering send|recv|ls: flags, output, exit status; the
examples, run headless."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import framering
from conftest import PYDIR, child_env, pycli

SUMMARY = re.compile(r"^summary (.*)$", re.M)


def run(*args, timeout=60):
    return subprocess.run(pycli(*args), cwd=PYDIR, env=child_env(), capture_output=True, text=True, timeout=timeout)


def summary(stdout):
    m = SUMMARY.search(stdout)
    assert m, "no summary line in %r" % stdout
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


@pytest.mark.parametrize("args,text", [
    (["send", "--pattern", "8x8x3"], "--ring NAME is required"),
    (["send", "--ring", "a/b", "--pattern", "8x8x3"], "invalid ring name"),
    (["send", "--ring", "x"], "give exactly one source"),
    (["send", "--ring", "x", "--pattern", "8x8x3", "--image", "f.png"], "--image and --pattern"),
    (["send", "--ring", "x", "--pattern", "8x8x9"], "channels"),
    (["send", "--ring", "x", "--pattern", "2x2x3"], "needs at least 16"),
    (["send", "--ring", "x", "--pattern", "8x8x3", "--slots", "3"], "power of two"),
    (["send", "--ring", "x", "--pattern", "8x8x3", "--format", "bgra8"], "channels"),
    (["send", "--ring", "x", "--image", "f.png", "--format", "gray8"], "--format applies to --pattern only"),
    (["send", "--ring", "x", "--pattern", "8x8x3", "--bogus"], "unrecognized arguments"),
    (["recv"], "--ring NAME is required"),
    (["recv", "--ring", "x", "--mode", "fast"], "use all or latest"),
    (["recv", "--ring", "x", "--timeout", "5 parsecs"], "invalid duration"),
    (["recv", "--ring", "x", "--view", "--save", "/tmp/x"], "cannot be combined with --view"),
    (["ls", "extra"], "unrecognized arguments"),
    (["frobnicate"], "unknown command"),
])
def test_usage_errors_exit_2(args, text):
    r = run(*args)
    assert r.returncode == 2, r
    assert r.stderr.startswith("framering: ") and text in r.stderr, r.stderr


def test_missing_ring_exit_1_with_advice(shm_dir, name):
    r = run("recv", "--ring", name, "--dir", shm_dir)
    assert r.returncode == 1 and "does not exist" in r.stderr and "use --wait" in r.stderr
    r = run("recv", "--ring", name, "--dir", shm_dir, "--wait", "--timeout", "300ms")
    assert r.returncode == 1 and "did not appear within 300ms" in r.stderr


def test_send_then_recv_verify_and_summary(shm_dir, name):
    s = run("send", "--ring", name, "--dir", shm_dir, "--pattern", "64x48x3", "--fps", "0", "--count", "20",
            "--slots", "32")
    assert s.returncode == 0, s.stderr
    lines = s.stdout.splitlines()
    assert lines[0] == 'ring "%s": 64x48x3 bgr8, 32 slots of 9216 bytes, generation 1, %s' % (
        name, framering.ring_path(shm_dir, name))
    assert lines[1] == "sent 20 frames"
    r = run("recv", "--ring", name, "--dir", shm_dir, "--start", "oldest", "--verify", "--eof", "-q")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^received 20 frames, dropped 0, latency p50 \S+ p99 \S+, verified 20, mismatches 0$",
                     r.stdout, re.M), r.stdout
    kv = summary(r.stdout)
    assert (kv["delivered"], kv["dropped"], kv["window_start"], kv["last"], kv["mismatches"]) == (20, 0, 1, 20, 0)
    assert "ring writer is gone" in r.stderr
    # --count stops early; latest delivers the newest.
    r = run("recv", "--ring", name, "--dir", shm_dir, "--mode", "latest", "--count", "1", "-q")
    assert r.returncode == 0 and summary(r.stdout)["last"] == 20


@pytest.mark.parametrize("size,fmt", [("33x7x1", "gray16"), ("17x5x2", "yuyv"), ("10x10x4", "rgba8"),
                                      ("9x9x3", "raw"), ("20x3x1", "")])
def test_formats_round_trip_through_the_cli(shm_dir, name, size, fmt):
    args = ["send", "--ring", name, "--dir", shm_dir, "--pattern", size, "--fps", "0", "--count", "5"]
    if fmt:
        args += ["--format", fmt]
    assert run(*args).returncode == 0
    r = run("recv", "--ring", name, "--dir", shm_dir, "--start", "oldest", "--verify", "--eof", "-q")
    assert r.returncode == 0, r.stderr
    assert summary(r.stdout)["verified"] == 5


def test_recv_verify_fails_on_frames_that_are_not_the_pattern(shm_dir, name):
    with framering.Writer(name, shape=(8, 8, 3), dir=shm_dir) as w:
        w.publish(np.zeros((8, 8, 3), np.uint8))
    r = run("recv", "--ring", name, "--dir", shm_dir, "--verify", "--eof", "-q")
    assert r.returncode == 1
    assert summary(r.stdout)["mismatches"] == 1 and "do not match the test pattern" in r.stderr


def test_recv_view_verifies_in_place(shm_dir, name):
    assert run("send", "--ring", name, "--dir", shm_dir, "--pattern", "64x48x3", "--fps", "0", "--count", "20",
               "--slots", "32").returncode == 0
    r = run("recv", "--ring", name, "--dir", shm_dir, "--start", "oldest", "--view", "--verify", "--eof", "-q")
    assert r.returncode == 0, r.stderr
    kv = summary(r.stdout)
    assert (kv["delivered"], kv["verified"], kv["overwritten"], kv["last"]) == (20, 20, 0, 20), kv
    # Frames that are not the pattern fail in place as they do copied.
    with framering.Writer(name, shape=(48, 64, 3), dir=shm_dir, slots=32) as w:
        w.publish(np.zeros((48, 64, 3), np.uint8))
    r = run("recv", "--ring", name, "--dir", shm_dir, "--view", "--verify", "--eof", "-q")
    assert r.returncode == 1 and summary(r.stdout)["mismatches"] == 1, r.stdout


def test_recv_view_discards_a_frame_overwritten_during_the_check(shm_dir, name):
    """The writer laps the slot while --view checks it: the frame counts as
    overwritten, neither delivered nor a mismatch."""
    from framering import cli, pattern

    with framering.Writer(name, shape=(8, 8, 3), dir=shm_dir, slots=2) as w:
        def fill():
            a = w.reserve()
            pattern.fill(a.reshape(-1), w.next_number)
            return w.commit()

        fill()
        with framering.Reader(name, dir=shm_dir) as r:
            class Lapping:
                def check(self, buf, f):
                    fill(), fill()  # frames f+1, f+2: f's slot now holds f+2
                    return "garbage"

            assert cli._view_one(r, 5, Lapping()) == (None, None, 0)
            st = r.stats
            assert (st.delivered, st.overwritten, st.last) == (0, 1, 1)
            f, bad, at = cli._view_one(r, 5, pattern.Checker())  # the next frame, intact
            assert f is not None and bad is None and at > 0 and f.number == 2
            assert (r.stats.delivered, r.stats.overwritten, r.stats.last) == (1, 1, 2)


def wait_in_futex(pid, path):
    """Until a thread of pid sleeps in futex(2) on the notify word of the
    ring file path that it maps: it is inside a read, waiting for a frame."""
    for _ in range(6000):
        try:
            base = None
            for line in open("/proc/%d/maps" % pid):
                if line.rstrip().endswith(path) and line.split()[2] == "00000000":
                    base = int(line.split("-")[0], 16)
            if base is not None:
                want = "0x%x" % (base + 200)
                for tid in os.listdir("/proc/%d/task" % pid):
                    sc = open("/proc/%d/task/%s/syscall" % (pid, tid)).read().split()
                    if len(sc) > 1 and sc[0] in ("202", "98") and sc[1] == want:
                        return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError("pid %d never waited on %s" % (pid, path))


def test_recv_sigint_prints_summary_and_exits_0(shm_dir, name, children):
    with framering.Writer(name, shape=(8, 8, 3), dir=shm_dir) as w:
        rc = children(pycli("recv", "--ring", name, "--dir", shm_dir, "-q"))
        w.publish(np.zeros((8, 8, 3), np.uint8))
        wait_in_futex(rc.p.pid, framering.ring_path(shm_dir, name))
        rc.p.send_signal(signal.SIGINT)
        assert rc.wait() == 0
        kv = [l for l in rc.out_lines if l.startswith("summary ")]
        assert kv, rc.out_lines
        kv = summary(kv[0])
        assert kv["delivered"] + kv["dropped"] == kv["considered"] <= 1


def wait_for_handlers(pid):
    """Until the process catches SIGTERM: the CLI installs its SIGINT and
    SIGTERM handlers together, just before it opens the ring."""
    for _ in range(6000):
        try:
            for line in open("/proc/%d/status" % pid):
                if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError("pid %d never installed its signal handlers" % pid)


def test_recv_sigint_while_waiting_for_the_ring_exits_0(shm_dir, name, children):
    rc = children(pycli("recv", "--ring", name, "--dir", shm_dir, "--wait", "-q"))
    wait_for_handlers(rc.p.pid)
    rc.p.send_signal(signal.SIGINT)
    assert rc.wait() == 0
    assert rc.out_lines == [] and rc.err_lines == []


def test_ls_lists_rings_and_states(shm_dir, name):
    r = run("ls", "--dir", shm_dir)
    assert r.returncode == 0 and "no rings in %s" % shm_dir in r.stderr
    with framering.Writer(name, shape=(48, 64, 3), dir=shm_dir) as w:
        w.publish(np.zeros((48, 64, 3), np.uint8))
        r = run("ls", "--dir", shm_dir)
        assert r.returncode == 0
        header, row = r.stdout.splitlines()[:2]
        assert header.split() == ["NAME", "GEOMETRY", "FRAME", "WRITER", "STATE", "FRAMES", "RATE", "NEWEST"]
        cols = row.split()
        assert cols[:6] == [name, "8x9.0KiB", "64x48x3", "bgr8", str(os.getpid()), "alive"]
        assert cols[6] == "1" and row.endswith("ago")
    r = run("ls", "--dir", shm_dir)
    assert r.stdout.splitlines()[1].split()[5] == "gone"
    bad = framering.ring_path(shm_dir, "junk")
    with open(bad, "wb") as f:
        f.write(b"\0" * 8192)
    os.chmod(bad, 0o600)
    r = run("ls", "--dir", shm_dir)
    assert r.returncode == 0 and re.search(r"^junk\s+-\s+-\s+-\s+unreadable", r.stdout, re.M)
    assert "ls: " in r.stderr and "magic" in r.stderr


def test_go_duration_formatting_and_parsing():
    from framering.cli import fmt_ns, go_duration, parse_duration
    assert [go_duration(x) for x in (0, 999, 84100, 1230000, 2500000000, 90 * 10 ** 9)] == [
        "0s", "999ns", "84.1µs", "1.23ms", "2.5s", "1m30s"]
    assert fmt_ns(84149) == "84.1µs" and fmt_ns(1234567) == "1.23ms" and fmt_ns(2345678901) == "2.346s"
    assert parse_duration("1m30s") == 90 and parse_duration("300ms") == 0.3 and parse_duration("2") == 2


def test_examples_run_headless(shm_dir, name, tmp_path, children):
    cv2 = pytest.importorskip("cv2")
    video = str(tmp_path / "clip.avi")
    vw = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        vw.write(np.full((48, 64, 3), (i * 6, 255 - i * 6, 128), np.uint8))
    vw.release()
    pub = children([sys.executable, os.path.join(PYDIR, "examples", "cv2_publish.py"), "--ring", name, "--dir",
                    shm_dir, "--video", video, "--fps", "50"])
    pub.expect("publishing 48x64x3 frames")
    assert pub.wait() == 0 and "published 40 frames" in pub.out_lines[-1]
    png = str(tmp_path / "view.png")
    env = dict(child_env(), DISPLAY="")
    v = subprocess.run([sys.executable, os.path.join(PYDIR, "examples", "cv2_view.py"), "--ring", name, "--dir",
                        shm_dir, "--png", png, "--count", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stderr
    assert v.stdout.startswith("frames 1, views overwritten 0")
    img = cv2.imread(png)  # the newest frame, 40: colour (39*6, 255-39*6, 128) give or take JPEG
    assert img.shape == (48, 64, 3)
    assert np.abs(img.reshape(-1, 3).mean(axis=0) - (234, 21, 128)).max() < 8
    v = subprocess.run([sys.executable, os.path.join(PYDIR, "examples", "cv2_view.py"), "--ring", name, "--dir",
                        shm_dir], env=env, capture_output=True, text=True, timeout=60)
    assert v.returncode == 1 and "no DISPLAY" in v.stderr
    synth = children([sys.executable, os.path.join(PYDIR, "examples", "cv2_publish.py"), "--ring", name + "s",
                      "--dir", shm_dir, "--count", "3", "--fps", "0"])
    assert synth.wait() == 0
    with framering.Reader(name + "s", dir=shm_dir, start="oldest") as r:
        assert r.read(timeout=5).shape == (240, 320, 3)


def test_opencv_sources_and_save(shm_dir, name, tmp_path):
    cv2 = pytest.importorskip("cv2")
    png = str(tmp_path / "in.png")
    img = np.zeros((30, 40, 3), np.uint8)
    img[:, :, 2] = 200  # red in BGR
    assert cv2.imwrite(png, img)
    s = run("send", "--ring", name, "--dir", shm_dir, "--image", png, "--fps", "0", "--count", "3")
    assert s.returncode == 0, s.stderr
    assert s.stdout.splitlines()[0].startswith('ring "%s": 40x30x3 bgr8, 8 slots of 3600 bytes' % name)
    out = tmp_path / "saved"
    r = run("recv", "--ring", name, "--dir", shm_dir, "--start", "oldest", "--count", "3", "--save", str(out), "-q")
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(out))
    assert files == ["%s-%08d.png" % (name, n) for n in (1, 2, 3)]
    assert (cv2.imread(str(out / files[0])) == img).all()
    video = str(tmp_path / "clip.avi")
    vw = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    for i in range(12):
        vw.write(np.full((30, 40, 3), i * 20, np.uint8))
    vw.release()
    s = run("send", "--ring", name + "v", "--dir", shm_dir, "--video", video, "--fps", "0")
    assert s.returncode == 0 and s.stdout.splitlines()[-1] == "sent 12 frames", s.stderr
    with framering.Reader(name + "v", dir=shm_dir, start="oldest") as rd:
        f = rd.read(timeout=5)
        # The oldest of 8 slots after 12 frames is 5, but at the end of the
        # video the reservation of frame 13 was aborted, which empties frame
        # 5's slot (as Go's send does): frame 5 counts as lost.
        assert f.number == 6 and f.shape == (30, 40, 3) and rd.stats.lapped == 1
    r = run("send", "--ring", name, "--dir", shm_dir, "--image", str(tmp_path / "missing.png"))
    assert r.returncode == 1 and "cannot read or decode" in r.stderr
