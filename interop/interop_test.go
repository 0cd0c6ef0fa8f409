package interop_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the Go view reader when the test binary was re-executed
// as one (goReaderEnv), and otherwise the tests; then it removes the Go
// CLI built for them.
func TestMain(m *testing.M) {
	if os.Getenv(goReaderEnv) != "" {
		os.Exit(goReaderMain(os.Args[1:]))
	}
	code := m.Run()
	if goTools.dir != "" {
		os.RemoveAll(goTools.dir)
	}
	os.Exit(code)
}

// guard is the hang guard of every wait: never a timing assertion.
const guard = 60 * time.Second

// pythonEnv names a Python interpreter to use instead of /usr/bin/python3
// (with numpy). Pointing it at a missing file shows the Python tests skip.
const pythonEnv = "FRAMERING_PYTHON"

// goCLIEnv names a framering binary to test instead of building
// ./cmd/framering (another branch's, say).
const goCLIEnv = "FRAMERING_INTEROP_GO_CLI"

// prog is a program under test: a path, the arguments that always come
// first (a subcommand), and extra environment.
type prog struct {
	path string
	pre  []string
	env  []string
}

func (p prog) sub(args ...string) prog {
	p.pre = append(append([]string(nil), p.pre...), args...)
	return p
}

// The programs under test, built or found once per test binary. A
// language whose toolchain is missing is skipped (skip); a build that
// fails fails the tests that need it (fail).
var (
	goTools struct {
		once      sync.Once
		fail      string
		dir, cli  string
		exe, root string
	}
	cTools struct {
		once       sync.Once
		skip, fail string
		send, recv string
	}
	pyTools struct {
		once       sync.Once
		skip, fail string
		python     string
		pkg        string // the directory holding the package framering
	}
)

func repoRoot() (string, error) { return filepath.Abs("..") }

// goCLI is the Go command line (go build ./cmd/framering, once, or
// $FRAMERING_INTEROP_GO_CLI).
func goCLI(t *testing.T) prog {
	t.Helper()
	goTools.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			goTools.fail = err.Error()
			return
		}
		goTools.root = root
		if goTools.exe, err = os.Executable(); err != nil {
			goTools.fail = err.Error()
			return
		}
		if goTools.dir, err = os.MkdirTemp("", "framering-interop-"); err != nil {
			goTools.fail = err.Error()
			return
		}
		if prebuilt := os.Getenv(goCLIEnv); prebuilt != "" {
			goTools.cli = prebuilt
			return
		}
		goTools.cli = filepath.Join(goTools.dir, "framering")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		cmd := exec.Command(gobin, "build", "-o", goTools.cli, "./cmd/framering")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			goTools.fail = fmt.Sprintf("go build ./cmd/framering: %v\n%s", err, out)
		}
	})
	if goTools.fail != "" {
		t.Fatal(goTools.fail)
	}
	return prog{path: goTools.cli}
}

// goReader is the Go library's view reader: this test binary re-executed
// (goreader_test.go), with recv's flags.
func goReader(t *testing.T) prog {
	t.Helper()
	goCLI(t)
	return prog{path: goTools.exe, env: []string{goReaderEnv + "=1"}}
}

// cProgs are the C programs (make c/build/framering-{send,recv}-c), or a
// skip when gcc or make is missing.
func cProgs(t *testing.T) (send, recv prog) {
	t.Helper()
	cTools.once.Do(func() {
		for _, tool := range []string{"gcc", "make"} {
			if _, err := exec.LookPath(tool); err != nil {
				cTools.skip = fmt.Sprintf("skipping C: %s not found (install the Debian packages gcc and make to run the C interop tests)", tool)
				return
			}
		}
		root, err := repoRoot()
		if err != nil {
			cTools.fail = err.Error()
			return
		}
		cTools.send = filepath.Join(root, "c", "build", "framering-send-c")
		cTools.recv = filepath.Join(root, "c", "build", "framering-recv-c")
		// Only the two programs: `make c` would also build the OpenCV examples.
		cmd := exec.Command("make", "-C", root, "--no-print-directory", "c/build/framering-send-c", "c/build/framering-recv-c")
		if out, err := cmd.CombinedOutput(); err != nil {
			cTools.fail = fmt.Sprintf("make c/build/framering-send-c c/build/framering-recv-c: %v\n%s", err, out)
		}
	})
	if cTools.skip != "" {
		t.Skip(cTools.skip)
	}
	if cTools.fail != "" {
		t.Fatal(cTools.fail)
	}
	return prog{path: cTools.send}, prog{path: cTools.recv}
}

// pyCLI is `python3 -m framering` from the tree (python/), or a skip when
// /usr/bin/python3 (or $FRAMERING_PYTHON) with numpy is missing.
func pyCLI(t *testing.T) prog {
	t.Helper()
	pyTools.once.Do(func() {
		pyTools.python = "/usr/bin/python3"
		if p := os.Getenv(pythonEnv); p != "" {
			pyTools.python = p
		}
		if out, err := exec.Command(pyTools.python, "-c", "import numpy").CombinedOutput(); err != nil {
			why := err.Error()
			if out = bytes.TrimSpace(out); len(out) > 0 {
				why += ": " + string(out)
			}
			pyTools.skip = fmt.Sprintf("skipping Python: %s with numpy is not available (%s); install the Debian packages python3 and python3-numpy", pyTools.python, why)
			return
		}
		root, err := repoRoot()
		if err != nil {
			pyTools.fail = err.Error()
			return
		}
		pyTools.pkg = filepath.Join(root, "python")
	})
	if pyTools.skip != "" {
		t.Skip(pyTools.skip)
	}
	if pyTools.fail != "" {
		t.Fatal(pyTools.fail)
	}
	return prog{path: pyTools.python, pre: []string{"-m", "framering"}, env: []string{"PYTHONPATH=" + pyTools.pkg}}
}

// proc is a running program with its output collected.
type proc struct {
	name     string
	cmd      *exec.Cmd
	mu       sync.Mutex
	out, err bytes.Buffer
	done     chan struct{}
	code     int
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// start runs pr with args; the process dies with the test binary and is
// killed when the test ends if it still runs.
func start(t *testing.T, pr prog, args ...string) *proc {
	t.Helper()
	argv := append(append([]string(nil), pr.pre...), args...)
	p := &proc{name: filepath.Base(pr.path) + " " + strings.Join(argv, " "), done: make(chan struct{})}
	p.cmd = exec.Command(pr.path, argv...)
	if len(pr.env) > 0 {
		p.cmd.Env = append(os.Environ(), pr.env...)
	}
	p.cmd.Stdout = lockedBuf{&p.mu, &p.out}
	p.cmd.Stderr = lockedBuf{&p.mu, &p.err}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = 128
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits for the process to exit and returns its status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(guard):
		t.Fatalf("hang guard: %s did not exit within %v\nstdout: %s\nstderr: %s", p.name, guard, p.stdout(), p.stderr())
		return -1
	}
}

// mustExit waits for the process and fails the test unless it exited 0.
func (p *proc) mustExit(t *testing.T) {
	t.Helper()
	if code := p.wait(t); code != 0 {
		t.Fatalf("%s exited %d\nstdout: %s\nstderr: %s", p.name, code, p.stdout(), p.stderr())
	}
}

// waitFor polls cond (hang guard only, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("hang guard: waited %v for %s", guard, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mapped reports whether process pid has file path mapped: a reader that
// opened the ring has.
func mapped(pid int, path string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	return err == nil && bytes.Contains(b, []byte(path))
}

var sentRe = regexp.MustCompile(`(?m)^sent (\d+) frames`)

// sent is the frame count a writer printed at exit.
func sent(t *testing.T, p *proc) uint64 {
	t.Helper()
	m := sentRe.FindStringSubmatch(p.stdout())
	if m == nil {
		t.Fatalf("%s printed no 'sent N frames'\nstdout: %s\nstderr: %s", p.name, p.stdout(), p.stderr())
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// writerGoneCount counts the writer-gone reports on a reader's stderr
// (every reader prints the error, "ring writer is gone", once per outage).
func writerGoneCount(p *proc) int { return strings.Count(p.stderr(), "ring writer is gone") }

// result is a reader's counters as its summary line gives them (the Go, C
// and Python CLIs use the same key names).
type result struct {
	kv map[string]uint64
}

func (r result) String() string {
	var b strings.Builder
	for _, k := range []string{"delivered", "dropped", "lapped", "skipped", "overwritten", "corrupt", "retries",
		"writer_gone", "resumes", "resets", "window_start", "last", "considered", "verified", "mismatches"} {
		if v, ok := r.kv[k]; ok {
			fmt.Fprintf(&b, "%s=%d ", k, v)
		}
	}
	return strings.TrimSpace(b.String())
}

// readerResult parses what a --verify reader printed at exit: its
// `summary key=value ...` line.
func readerResult(t *testing.T, p *proc) result {
	t.Helper()
	if r, ok := summaryLine(p.stdout()); ok {
		return r
	}
	t.Fatalf("%s printed no summary\nstdout: %s\nstderr: %s", p.name, p.stdout(), p.stderr())
	return result{}
}

// summaryLine parses a `summary key=value ...` line; values that are not
// integers (C's ring=, mode=, read=) are left out.
func summaryLine(out string) (result, bool) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "summary ") {
			continue
		}
		m := map[string]uint64{}
		for _, kv := range strings.Fields(line)[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			m[k] = n
		}
		return result{kv: m}, true
	}
	return result{}, false
}

var headRe = regexp.MustCompile(`(?m)^head\s+(\d+)$`)

// statHead runs `framering stat` on the ring and returns its head.
func statHead(t *testing.T, dir, name string) uint64 {
	t.Helper()
	out, err := exec.Command(goCLI(t).path, "stat", "--dir", dir, name).CombinedOutput()
	if err != nil {
		t.Fatalf("framering stat %s: %v\n%s", name, err, out)
	}
	m := headRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("framering stat %s: no head line\n%s", name, out)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}

// want is what a reader's run must show at the end.
type want struct {
	windowStart, last uint64 // the reader's window: every frame published in it
	gone, resumes     uint64 // writer-gone reports, writer returns
	copyRead          bool   // read by copy: no view can be overwritten
	ordered           bool   // ordered mode: nothing is skipped
}

// checkReader asserts what every --verify reader run must show: frames
// delivered, none torn or foreign, no corrupt frame, and exact accounts:
// delivered + dropped == the frames published in its window.
func checkReader(t *testing.T, p *proc, r result, w want) {
	t.Helper()
	s := r.kv
	if s["delivered"] == 0 {
		t.Errorf("%s delivered no frame: %v\nstderr: %s", p.name, r, p.stderr())
	}
	if s["mismatches"] != 0 || s["verified"] != s["delivered"] {
		t.Errorf("%s: %d frames failed the test pattern (a torn or foreign frame accepted), verified %d of %d\nstderr: %s",
			p.name, s["mismatches"], s["verified"], s["delivered"], p.stderr())
	}
	if got, window := s["delivered"]+s["dropped"], w.last-w.windowStart+1; got != window {
		t.Errorf("%s: delivered %d + dropped %d = %d, but %d frames (%d..%d) were published in its window",
			p.name, s["delivered"], s["dropped"], got, window, w.windowStart, w.last)
	}
	if n := uint64(writerGoneCount(p)); n != w.gone {
		t.Errorf("%s reported the writer gone %d times, want %d\nstderr: %s", p.name, n, w.gone, p.stderr())
	}
	if s["window_start"] != w.windowStart || s["last"] != w.last || s["considered"] != w.last-w.windowStart+1 {
		t.Errorf("%s: window %d..%d (%d frames considered), want %d..%d", p.name, s["window_start"], s["last"],
			s["considered"], w.windowStart, w.last)
	}
	if s["dropped"] != s["lapped"]+s["skipped"]+s["overwritten"]+s["corrupt"]+s["abandoned"] {
		t.Errorf("%s: dropped %d is not lapped + skipped + overwritten + corrupt + abandoned: %v", p.name, s["dropped"], r)
	}
	if s["corrupt"] != 0 || s["resets"] != 0 || s["abandoned"] != 0 {
		t.Errorf("%s: corrupt %d, resets %d, abandoned %d; want 0", p.name, s["corrupt"], s["resets"], s["abandoned"])
	}
	if s["writer_gone"] != w.gone || s["resumes"] != w.resumes {
		t.Errorf("%s: writer_gone %d, resumes %d; want %d, %d", p.name, s["writer_gone"], s["resumes"], w.gone, w.resumes)
	}
	if w.copyRead && s["overwritten"] != 0 {
		t.Errorf("%s reads by copy but counted %d views overwritten", p.name, s["overwritten"])
	}
	if w.ordered && s["skipped"] != 0 {
		t.Errorf("%s is ordered but skipped %d frames", p.name, s["skipped"])
	}
}
