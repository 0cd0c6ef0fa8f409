"""Fixtures: a hang guard on every test, a private ring directory, unique
ring names, child processes that never outlive a test, the Go CLI."""

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYDIR)
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper.py")
DEFAULT_GUARD = 60


class HangGuard(Exception):
    pass


@pytest.fixture(autouse=True)
def hang_guard(request):
    """Fail a test that runs longer than its guard (60 s, or
    @pytest.mark.guard(N)). Every blocking call of the package waits in
    slices of at most 100 ms, so SIGALRM always gets through."""
    m = request.node.get_closest_marker("guard")
    seconds = m.args[0] if m else DEFAULT_GUARD

    def on_alarm(signum, frame):
        raise HangGuard("test still running after %d s: it hangs" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def shm_dir():
    """A private ring directory under /dev/shm, removed after the test."""
    d = tempfile.mkdtemp(prefix="framering-pytest-", dir="/dev/shm")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def name(request):
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return "%s-%s" % (base, uuid.uuid4().hex[:8])


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PYDIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Child:
    """A child process with line queues for stdout and stderr."""

    def __init__(self, argv, stdin=False, cwd=PYDIR):
        self.argv = argv
        self.p = subprocess.Popen(argv, cwd=cwd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True, bufsize=1)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.out_lines, self.err_lines = [], []
        self._t = [threading.Thread(target=self._pump, args=(self.p.stdout, self.out, self.out_lines), daemon=True),
                   threading.Thread(target=self._pump, args=(self.p.stderr, self.err, self.err_lines), daemon=True)]
        for t in self._t:
            t.start()

    @staticmethod
    def _pump(f, q, keep):
        for line in f:
            keep.append(line.rstrip("\n"))
            q.put(line.rstrip("\n"))
        q.put(None)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def expect(self, prefix, stream="out", timeout=30):
        """The next line of stdout that starts with prefix, or of stderr that
        contains it (others are skipped)."""
        q = self.out if stream == "out" else self.err
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no %r line on std%s within %ds; stdout %s stderr %s"
                                     % (self.argv, prefix, stream, timeout, self.out_lines, self.err_lines))
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("%s ended (rc %s) before a %r line on std%s; stdout %s stderr %s"
                                     % (self.argv, self.p.poll(), prefix, stream, self.out_lines, self.err_lines))
            if (prefix in line) if stream == "err" else line.startswith(prefix):
                return line

    def wait(self, timeout=60):
        rc = self.p.wait(timeout=timeout)
        for t in self._t:
            t.join(timeout=5)
        return rc

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            self.p.send_signal(sig)


@pytest.fixture
def children():
    """Start children with children(argv); all are killed after the test."""
    made = []

    def start(argv, stdin=False):
        c = Child([str(a) for a in argv], stdin=stdin)
        made.append(c)
        return c

    yield start
    for c in made:
        if c.p.poll() is None:
            c.p.kill()
        try:
            c.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def helper(*args):
    return [sys.executable, HELPER] + [str(a) for a in args]


def pycli(*args):
    return [sys.executable, "-m", "framering"] + [str(a) for a in args]


@pytest.fixture(scope="session")
def go_cli(tmp_path_factory):
    """The Go framering CLI built from this repository, or skip."""
    go = shutil.which(os.environ.get("GO") or "go") or (
        "/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        pytest.skip("go is not installed: skipping the cross-language tests")
    out = str(tmp_path_factory.mktemp("gocli") / "framering")
    r = subprocess.run([go, "build", "-o", out, "./cmd/framering"], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        pytest.fail("go build ./cmd/framering failed:\n%s" % r.stderr)
    return out


def pytest_sessionfinish(session, exitstatus):
    left = [e for e in os.listdir("/dev/shm") if e.startswith("framering-pytest-")]
    if left:
        print("\nWARNING: left in /dev/shm: %s" % left, file=sys.stderr)
