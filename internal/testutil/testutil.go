// Package testutil holds what framering's tests share: re-executing the
// test binary as a child writer or reader, unique ring names, and checks
// that a test leaves no segment, descriptor or process behind. It imports
// nothing above internal/: a test opens its rings with producer and
// consumer itself.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framering/framering/internal/proc"
)

// helperEnv names the helper a re-executed test binary runs.
const helperEnv = "FRAMERING_TEST_HELPER"

var (
	helpersMu sync.Mutex
	helpers   = map[string]func() int{}
)

// Helper registers fn as a child-process entry point under name. Call it
// from an init function or TestMain before [Main].
func Helper(name string, fn func() int) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	helpers[name] = fn
}

// Main runs a helper when the binary was re-executed as one, and otherwise
// the tests, then fails the run if they leaked file descriptors. Use it as
// TestMain: func TestMain(m *testing.M) { testutil.Main(m) }.
func Main(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		helpersMu.Lock()
		fn := helpers[name]
		helpersMu.Unlock()
		if fn == nil {
			fmt.Fprintf(os.Stderr, "testutil: no helper %q registered\n", name)
			os.Exit(2)
		}
		os.Exit(fn())
	}
	before := openFDs()
	code := m.Run()
	if code == 0 {
		if leaked := leakedFDs(before); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "testutil: tests leaked file descriptors: %s\n", strings.Join(leaked, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

func openFDs() map[string]string {
	m := map[string]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		m[e.Name()] = target
	}
	return m
}

// leakedFDs lists descriptors open now that were not open before and that
// point at framering segments (the runtime's own pipes and epoll come and
// go). A writer's descriptor of a ring it created shows DIR/#inode
// (deleted) even once the file is named (it was made with O_TMPFILE):
// such a target under /dev/shm counts too.
func leakedFDs(before map[string]string) []string {
	var out []string
	for i := 0; i < 20; i++ { // finalizers and cleanups may still be closing
		out = out[:0]
		for fd, target := range openFDs() {
			if before[fd] == target {
				continue
			}
			if strings.Contains(target, "framering") || strings.Contains(target, "mmaptest") || strings.HasPrefix(target, "/dev/shm/#") {
				out = append(out, fd+" -> "+target)
			}
		}
		if len(out) == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out
}

var nameSeq atomic.Uint64

// Name returns a ring name unique to this process and test.
func Name(t testing.TB) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	if len(base) > 60 {
		base = base[:60]
	}
	return fmt.Sprintf("t%d-%d-%s", os.Getpid(), nameSeq.Add(1), base)
}

// ShmDir returns a directory for test segments: a fresh directory under
// /dev/shm (a real tmpfs) when it exists, removed at the end of the test
// with everything in it, else t.TempDir().
func ShmDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "framering-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// Child is a re-executed test binary running a helper.
type Child = proc.Proc

// Start re-executes the test binary as helper name with extra environment
// variables (KEY=VALUE). The child dies with the test process and is
// killed when the test ends if it is still running. Its stdout is read
// line by line ([proc.Proc.Line], Expect, Wait); its stderr is kept for
// failure messages.
func Start(t testing.TB, name string, env ...string) *Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	c, err := proc.Start("helper "+name, cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			c.Kill()
		}
	})
	return c
}

// HangGuard bounds the waits of Eventually and Receive. It only keeps a
// broken test from hanging; it is never a timing assertion.
const HangGuard = 30 * time.Second

// Eventually polls cond until it holds, failing the test if it does not
// within HangGuard.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(HangGuard); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, HangGuard)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// Receive returns the next value from ch, failing the test if none comes
// within HangGuard.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(HangGuard):
		t.Fatalf("%s: not after %v", what, HangGuard)
		panic("unreachable")
	}
}

// Closing fails the test if err is set, and otherwise arranges for c to be
// closed when the test ends, and returns c:
//
//	r, err := consumer.Open(name, opts)
//	r = testutil.Closing(t, r, err)
func Closing[C interface{ Close() error }](t testing.TB, c C, err error) C {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Removing is Closing for a writer: it removes the ring when the test ends.
func Removing[W interface{ Remove() error }](t testing.TB, w W, err error) W {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Remove() })
	return w
}
