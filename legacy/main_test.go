package legacy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// peers builds the C peers into a temporary directory, or skips.
type peers struct{ writer, reader string }

func buildC(t *testing.T) peers {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: install gcc (Debian package gcc) to run the C legacy peers")
	}
	dir := t.TempDir()
	var p peers
	for _, s := range []struct {
		src string
		out *string
	}{{"oldwriter.c", &p.writer}, {"oldreader.c", &p.reader}} {
		*s.out = filepath.Join(dir, strings.TrimSuffix(s.src, ".c"))
		args := []string{"-O2", "-Wall", "-Werror", "-o", *s.out, filepath.Join("testdata", s.src)}
		if runtime.GOARCH == "amd64" && cpuHasSSE42() {
			args = append(args, "-msse4.2")
		}
		out, err := exec.Command(gcc, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("gcc %s: %v\n%s", s.src, err, out)
		}
	}
	return p
}

// python returns Debian's python3 with numpy, or skips.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("/usr/bin/python3 not found: install python3 and python3-numpy (Debian) to run the Python legacy peer")
	}
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("numpy missing in /usr/bin/python3 (%v: %s): install python3-numpy", err, strings.TrimSpace(string(out)))
	}
	return py
}

// proc is a peer process with line-oriented stdout.
type proc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	errb  *strings.Builder
	mu    sync.Mutex
	done  chan struct{}
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), lines: make(chan string, 4096), errb: &strings.Builder{}, done: make(chan struct{})}
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.errb.Write(b)
	})
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.in.Close()
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// expect returns the next line starting with prefix; the timeout is a hang
// guard.
func (p *proc) expect(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited while waiting for %q (%v); stderr:\n%s", p.cmd.Path, prefix, p.cmd.ProcessState, p.stderr())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
			t.Fatalf("%s: got %q, want a line starting with %q; stderr:\n%s", p.cmd.Path, l, prefix, p.stderr())
		case <-deadline:
			t.Fatalf("%s: no %q line in 20s; stderr:\n%s", p.cmd.Path, prefix, p.stderr())
		}
	}
}

func crc32c(b []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cpuHasSSE42 reports whether /proc/cpuinfo lists sse4_2.
func cpuHasSSE42() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	return err == nil && strings.Contains(string(b), " sse4_2")
}
