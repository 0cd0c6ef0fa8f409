package interop_test

import (
	"bytes"
	"encoding/binary"
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

	"github.com/framering/framering/internal/testutil"
)

// TestMain removes the Go CLI built for the tests. (This package opens no
// ring in-process; every ring belongs to a child process.)
func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// How long a stream runs at full speed, and the hang guard of every wait.
const (
	streamFor = 3 * time.Second
	guard     = 60 * time.Second
)

// bin holds the programs under test, built once per test binary.
var bin struct {
	once             sync.Once
	dir              string
	framering        string // the Go CLI
	sendC, recvC     string
	skip, failReason string
}

// programs builds the C programs (make c) and the Go CLI, or skips.
func programs(t *testing.T) {
	t.Helper()
	bin.once.Do(func() {
		for _, tool := range []string{"gcc", "make"} {
			if _, err := exec.LookPath(tool); err != nil {
				bin.skip = fmt.Sprintf("%s not found: install gcc and make (Debian packages gcc, make) to run the C interop tests", tool)
				return
			}
		}
		root, err := filepath.Abs("..")
		if err != nil {
			bin.failReason = err.Error()
			return
		}
		if out, err := exec.Command("make", "-C", root, "--no-print-directory", "c").CombinedOutput(); err != nil {
			bin.failReason = fmt.Sprintf("make c: %v\n%s", err, out)
			return
		}
		bin.sendC = filepath.Join(root, "c", "build", "framering-send-c")
		bin.recvC = filepath.Join(root, "c", "build", "framering-recv-c")
		bin.dir, err = os.MkdirTemp("", "framering-interop-")
		if err != nil {
			bin.failReason = err.Error()
			return
		}
		bin.framering = filepath.Join(bin.dir, "framering")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		cmd := exec.Command(gobin, "build", "-o", bin.framering, "./cmd/framering")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.failReason = fmt.Sprintf("go build ./cmd/framering: %v\n%s", err, out)
		}
	})
	if bin.skip != "" {
		t.Skip(bin.skip)
	}
	if bin.failReason != "" {
		t.Fatal(bin.failReason)
	}
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

// start runs path with args; the process is killed when the test ends.
func start(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(path) + " " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
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

// summary parses the key=value summary line of framering-recv-c.
func summary(t *testing.T, p *proc) map[string]uint64 {
	t.Helper()
	for _, line := range strings.Split(p.stdout(), "\n") {
		if !strings.HasPrefix(line, "summary ") {
			continue
		}
		m := map[string]uint64{}
		for _, kv := range strings.Fields(line)[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				m[k] = n
			}
		}
		return m
	}
	t.Fatalf("%s printed no summary line\nstdout: %s\nstderr: %s", p.name, p.stdout(), p.stderr())
	return nil
}

var sentRe = regexp.MustCompile(`(?m)^sent (\d+) frames`)

func sent(t *testing.T, p *proc) uint64 {
	t.Helper()
	m := sentRe.FindStringSubmatch(p.stdout())
	if m == nil {
		t.Fatalf("%s printed no 'sent N frames'\nstdout: %s\nstderr: %s", p.name, p.stdout(), p.stderr())
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

var goRecvRe = regexp.MustCompile(`received (\d+) frames, dropped (\d+), .*verified (\d+), mismatches (\d+)`)

// goRecvSummary parses `framering recv --verify`'s summary line.
func goRecvSummary(t *testing.T, p *proc) (received, dropped, verified, mismatches uint64) {
	t.Helper()
	m := goRecvRe.FindStringSubmatch(p.stdout())
	if m == nil {
		t.Fatalf("%s printed no summary\nstdout: %s\nstderr: %s", p.name, p.stdout(), p.stderr())
	}
	var v [4]uint64
	for i := range v {
		v[i], _ = strconv.ParseUint(m[i+1], 10, 64)
	}
	return v[0], v[1], v[2], v[3]
}

var headRe = regexp.MustCompile(`(?m)^head\s+(\d+)$`)

// statHead runs `framering stat` on the ring and returns its head.
func statHead(t *testing.T, dir, name string) uint64 {
	t.Helper()
	out, err := exec.Command(bin.framering, "stat", "--dir", dir, name).CombinedOutput()
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

// checkCRecv asserts what every C reader run must show: frames delivered,
// none torn or foreign, delivered + dropped == the frames of its window.
func checkCRecv(t *testing.T, p *proc, s map[string]uint64) {
	t.Helper()
	if s["delivered"] == 0 {
		t.Errorf("%s delivered no frame: %v\nstderr: %s", p.name, s, p.stderr())
	}
	if s["mismatches"] != 0 || s["verified"] != s["delivered"] {
		t.Errorf("%s: %d frames failed the pattern (torn or foreign accepted), verified %d of %d\nstderr: %s",
			p.name, s["mismatches"], s["verified"], s["delivered"], p.stderr())
	}
	if s["delivered"]+s["dropped"] != s["window_frames"] {
		t.Errorf("%s: delivered %d + dropped %d != window frames %d", p.name, s["delivered"], s["dropped"], s["window_frames"])
	}
	if s["dropped"] != s["lapped"]+s["skipped"]+s["overwritten"]+s["corrupt"] {
		t.Errorf("%s: dropped %d is not lapped+skipped+overwritten+corrupt: %v", p.name, s["dropped"], s)
	}
	if s["corrupt"] != 0 {
		t.Errorf("%s: %d corrupt frames", p.name, s["corrupt"])
	}
	if s["resets"] == 0 && s["window_frames"] != s["last"]-s["window_first"]+1 {
		t.Errorf("%s: window %d..%d holds %d frames, not %d", p.name, s["window_first"], s["last"],
			s["last"]-s["window_first"]+1, s["window_frames"])
	}
}

// Go writer (`framering send --pattern`) -> C readers (`framering-recv-c
// --verify`): one ordered copy reader, one latest view reader, a few
// seconds at full speed.
func TestGoWriterCReaders(t *testing.T) {
	programs(t)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	common := []string{"--ring", name, "--dir", dir, "--wait", "--verify", "--eof", "--timeout", "30s", "-q"}
	copyR := start(t, bin.recvC, common...)
	viewR := start(t, bin.recvC, append(common, "--view", "--mode", "latest")...)
	w := start(t, bin.framering, "send", "--ring", name, "--dir", dir, "--pattern", "320x240x3", "--fps", "0", "-q")
	time.Sleep(streamFor)
	w.signal(t, syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("framering send exited %d: %s", code, w.stderr())
	}
	n := sent(t, w)
	for _, r := range []*proc{copyR, viewR} {
		if code := r.wait(t); code != 0 {
			t.Errorf("%s exited %d\nstdout: %s\nstderr: %s", r.name, code, r.stdout(), r.stderr())
		}
		s := summary(t, r)
		checkCRecv(t, r, s)
		if s["last"] != n {
			t.Errorf("%s: last frame considered %d, the writer published %d", r.name, s["last"], n)
		}
		if s["writer_gone"] != 1 {
			t.Errorf("%s: writer_gone %d, want 1", r.name, s["writer_gone"])
		}
		t.Logf("%s: %d published, %v", r.name, n, s)
	}
}

// C writer (`framering-send-c --pattern`) -> Go reader (`framering recv
// --verify`). The C writer holds (--hold) until the Go reader has mapped
// the ring, so the reader's window is the whole stream.
func TestCWriterGoReader(t *testing.T) {
	programs(t)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	path := filepath.Join(dir, "framering."+name)
	w := start(t, bin.sendC, "--ring", name, "--dir", dir, "--pattern", "320x240x3", "--fps", "0", "--hold", "-q")
	waitFor(t, "the C writer to create the ring", func() bool { return strings.Contains(w.stdout(), "generation 1") })
	r := start(t, bin.framering, "recv", "--ring", name, "--dir", dir, "--wait", "--verify", "--eof", "--timeout", "30s", "-q")
	waitFor(t, "the Go reader to map the ring", func() bool { return mapped(r.cmd.Process.Pid, path) })
	w.signal(t, syscall.SIGUSR1)
	time.Sleep(streamFor)
	w.signal(t, syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("framering-send-c exited %d: %s", code, w.stderr())
	}
	n := sent(t, w)
	if code := r.wait(t); code != 0 {
		t.Errorf("framering recv exited %d\nstdout: %s\nstderr: %s", code, r.stdout(), r.stderr())
	}
	received, dropped, verified, mismatches := goRecvSummary(t, r)
	if mismatches != 0 || verified != received || received == 0 {
		t.Errorf("Go reader: received %d, verified %d, mismatches %d", received, verified, mismatches)
	}
	if received+dropped != n {
		t.Errorf("Go reader: received %d + dropped %d != %d published", received, dropped, n)
	}
	t.Logf("C writer published %d; Go reader received %d, dropped %d", n, received, dropped)
}

// A C writer's segment and a Go writer's segment of the same geometry and
// frames are the same bytes, except the per-process words (pids, clocks).
func TestSegmentsByteIdentical(t *testing.T) {
	programs(t)
	dir := testutil.ShmDir(t)
	args := []string{"--dir", dir, "--pattern", "64x48x3", "--fps", "0", "--count", "5", "--slots", "4", "-q"}
	gw := start(t, bin.framering, append([]string{"send", "--ring", "go"}, args...)...)
	cw := start(t, bin.sendC, append([]string{"--ring", "c"}, args...)...)
	for _, p := range []*proc{gw, cw} {
		if code := p.wait(t); code != 0 {
			t.Fatalf("%s exited %d: %s", p.name, code, p.stderr())
		}
	}
	gb, err := os.ReadFile(filepath.Join(dir, "framering.go"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := os.ReadFile(filepath.Join(dir, "framering.c"))
	if err != nil {
		t.Fatal(err)
	}
	if len(gb) != len(cb) {
		t.Fatalf("Go segment is %d bytes, C segment %d", len(gb), len(cb))
	}
	if !bytes.Equal(gb[:64], cb[:64]) {
		t.Errorf("superblock static part (bytes 0..63) differs:\nGo %x\nC  %x", gb[:64], cb[:64])
	}
	// Mask what legitimately differs: superblock WriterPID, WriterStart,
	// Created, Heartbeat; every slot header's three clocks.
	mask := func(b []byte) []byte {
		m := bytes.Clone(b)
		for _, r := range [][2]int{{64, 68}, {72, 80}, {88, 96}, {128, 136}} {
			clear(m[r[0]:r[1]])
		}
		slots := int(binary.LittleEndian.Uint32(m[16:]))
		stride := int(binary.LittleEndian.Uint64(m[24:]))
		for i := 0; i < slots; i++ {
			off := 4096 + i*stride
			clear(m[off+56 : off+80])
		}
		return m
	}
	gm, cm := mask(gb), mask(cb)
	if !bytes.Equal(gm, cm) {
		for i := range gm {
			if gm[i] != cm[i] {
				t.Fatalf("segments differ first at byte %d (Go %#02x, C %#02x)", i, gm[i], cm[i])
			}
		}
	}
	for _, name := range []string{"go", "c"} {
		out, err := exec.Command(bin.framering, "stat", "--dir", dir, name).CombinedOutput()
		if err != nil {
			t.Errorf("framering stat %s: %v\n%s", name, err, out)
			continue
		}
		for _, want := range []string{"version            2", "(valid)", "head               5", "generation         1"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("framering stat %s does not show %q:\n%s", name, want, out)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the two rings (no temporary files)", names)
	}
}

// writerGoneCount counts the writer-gone reports on a reader's stderr.
func writerGoneCount(p *proc) int { return strings.Count(p.stderr(), "ring writer is gone") }

// A C writer killed mid-stream: the Go reader reports it gone, resumes
// when a Go writer takes the ring over (in place, numbering continued),
// and reports the second writer's exit as a second outage.
func TestCWriterKilledGoReaderResumes(t *testing.T) {
	programs(t)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	path := filepath.Join(dir, "framering."+name)
	shape := []string{"--ring", name, "--dir", dir, "--pattern", "160x120x3", "--fps", "0", "-q"}
	w := start(t, bin.sendC, append(shape, "--hold")...)
	waitFor(t, "the C writer", func() bool { return strings.Contains(w.stdout(), "generation 1") })
	r := start(t, bin.framering, "recv", "--ring", name, "--dir", dir, "--wait", "--verify", "-q")
	waitFor(t, "the Go reader to map the ring", func() bool { return mapped(r.cmd.Process.Pid, path) })
	w.signal(t, syscall.SIGUSR1)
	time.Sleep(time.Second)
	w.signal(t, syscall.SIGKILL)
	w.wait(t)
	waitFor(t, "the Go reader to report the writer gone", func() bool { return writerGoneCount(r) == 1 })
	w2 := start(t, bin.framering, append([]string{"send", "--count", "20000"}, shape...)...)
	if code := w2.wait(t); code != 0 {
		t.Fatalf("second writer exited %d: %s", code, w2.stderr())
	}
	if !strings.Contains(w2.stdout(), "generation 2") {
		t.Errorf("the Go writer did not take the ring over in place: %s", w2.stdout())
	}
	waitFor(t, "the Go reader to resume and see the second writer go", func() bool { return writerGoneCount(r) == 2 })
	head := statHead(t, dir, name)
	r.signal(t, syscall.SIGINT)
	if code := r.wait(t); code != 0 {
		t.Errorf("framering recv exited %d: %s", code, r.stderr())
	}
	received, dropped, verified, mismatches := goRecvSummary(t, r)
	if mismatches != 0 || verified != received || received == 0 {
		t.Errorf("Go reader: received %d, verified %d, mismatches %d", received, verified, mismatches)
	}
	if received+dropped != head {
		t.Errorf("Go reader: received %d + dropped %d != %d frames published in its window (head)", received, dropped, head)
	}
	t.Logf("head %d; Go reader received %d, dropped %d", head, received, dropped)
}

// A Go writer killed mid-stream: the C reader reports it gone, resumes
// when a C writer takes the ring over in place (repairing what the dead
// writer left), and keeps exact accounts across the outage.
func TestGoWriterKilledCReaderResumes(t *testing.T) {
	programs(t)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	shape := []string{"--ring", name, "--dir", dir, "--pattern", "160x120x3", "--fps", "0", "-q"}
	r := start(t, bin.recvC, "--ring", name, "--dir", dir, "--wait", "--verify", "--timeout", "30s", "-q")
	w := start(t, bin.framering, append([]string{"send"}, shape...)...)
	waitFor(t, "the C reader's first frames", func() bool {
		return strings.Contains(w.stdout(), "generation 1") && mapped(r.cmd.Process.Pid, filepath.Join(dir, "framering."+name))
	})
	time.Sleep(time.Second)
	w.signal(t, syscall.SIGKILL)
	w.wait(t)
	waitFor(t, "the C reader to report the writer gone", func() bool { return writerGoneCount(r) == 1 })
	w2 := start(t, bin.sendC, append([]string{"--count", "20000"}, shape...)...)
	if code := w2.wait(t); code != 0 {
		t.Fatalf("second writer exited %d: %s", code, w2.stderr())
	}
	if !strings.Contains(w2.stdout(), "generation 2") {
		t.Errorf("the C writer did not take the ring over in place: %s", w2.stdout())
	}
	waitFor(t, "the C reader to resume and see the second writer go", func() bool { return writerGoneCount(r) == 2 })
	head := statHead(t, dir, name)
	r.signal(t, syscall.SIGINT)
	if code := r.wait(t); code != 0 {
		t.Errorf("framering-recv-c exited %d: %s", code, r.stderr())
	}
	s := summary(t, r)
	checkCRecv(t, r, s)
	if s["writer_gone"] != 2 || s["resumes"] != 1 || s["resets"] != 0 {
		t.Errorf("C reader: writer_gone %d resumes %d resets %d, want 2 1 0", s["writer_gone"], s["resumes"], s["resets"])
	}
	if s["last"] != head {
		t.Errorf("C reader: last frame considered %d, head %d", s["last"], head)
	}
	t.Logf("head %d; C reader %v", head, s)
}

// A Go writer replaces the ring with another geometry: the C reader finds
// the new file, re-maps it and continues the numbering.
func TestGoGeometryChangeCReaderRemaps(t *testing.T) {
	programs(t)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	r := start(t, bin.recvC, "--ring", name, "--dir", dir, "--wait", "--verify", "--start", "oldest", "--timeout", "30s", "-q")
	w := start(t, bin.framering, "send", "--ring", name, "--dir", dir, "--pattern", "64x48x3", "--fps", "1000", "--count", "300", "-q")
	if code := w.wait(t); code != 0 {
		t.Fatalf("first writer exited %d: %s", code, w.stderr())
	}
	waitFor(t, "the C reader to see the first writer go", func() bool { return writerGoneCount(r) == 1 })
	w2 := start(t, bin.framering, "send", "--ring", name, "--dir", dir, "--pattern", "128x96x3", "--fps", "1000", "--count", "300", "-q")
	if code := w2.wait(t); code != 0 {
		t.Fatalf("second writer exited %d: %s", code, w2.stderr())
	}
	waitFor(t, "the C reader to see the second writer go", func() bool { return writerGoneCount(r) == 2 })
	if head := statHead(t, dir, name); head != 600 {
		t.Errorf("head %d after 300 + 300 frames: the replacement did not carry the numbering", head)
	}
	r.signal(t, syscall.SIGINT)
	if code := r.wait(t); code != 0 {
		t.Errorf("framering-recv-c exited %d: %s", code, r.stderr())
	}
	s := summary(t, r)
	checkCRecv(t, r, s)
	if s["last"] != 600 || s["resumes"] != 1 || s["resets"] != 0 {
		t.Errorf("C reader: last %d resumes %d resets %d, want 600 1 0", s["last"], s["resumes"], s["resets"])
	}
}
