package shm

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/ring"
)

// mapObject creates an object of size bytes and maps it read-write; both
// are released when the test ends.
func mapObject(t *testing.T, size int) (*File, *Mapping) {
	t.Helper()
	f, err := Create(filepath.Join(t.TempDir(), "obj"), int64(size), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Map(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmap() })
	return f, m
}

func TestGuardTurnsSIGBUSIntoError(t *testing.T) {
	f, m := mapObject(t, 8192)
	b := m.Bytes()
	if err := Guard(func() error { b[8191] = 1; return nil }); err != nil {
		t.Fatalf("access inside the object: %v", err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	err := Guard(func() error { b[8191] = 2; return nil })
	if !errors.Is(err, ErrFault) {
		t.Fatalf("access past a truncated object: %v, want ErrFault", err)
	}
	// Other panics pass through.
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	Guard(func() error { panic("boom") })
}

func TestFutexWaitTimesOutAndWakes(t *testing.T) {
	var w atomic.Uint32
	FutexWait(&w, 0, 20*time.Millisecond) // nobody wakes: returns at the timeout (or early on a signal)
	FutexWait(&w, 1, time.Minute)         // value differs: returns at once (EAGAIN), or this test hangs
	if n := FutexWake(&w, 1); n != 0 {
		t.Errorf("FutexWake with no waiter woke %d", n)
	}
	done := make(chan struct{})
	go func() {
		for w.Load() == 0 {
			FutexWait(&w, 0, time.Minute)
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	w.Store(1)
	FutexWake(&w, 1)
	select {
	case <-done:
	case <-time.After(30 * time.Second): // hang guard, not a timing assertion
		t.Fatal("waiter not woken")
	}
}

func TestInt32At(t *testing.T) {
	b := make([]byte, 64)
	if _, err := Int32At(b, 61); err == nil {
		t.Error("word past the end accepted")
	}
	if _, err := Int32At(b, -4); err == nil {
		t.Error("negative offset accepted")
	}
	if _, err := Int32At(b, 2); err == nil {
		t.Error("unaligned word accepted")
	}
	v, err := Int32At(b, 20)
	if err != nil {
		t.Fatal(err)
	}
	v.Store(0x01020304)
	if b[20] != 4 || b[23] != 1 {
		t.Errorf("word not at offset 20 little-endian: % x", b[20:24])
	}
}

func TestCheckSafeAndLocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "obj")
	f, err := Create(path, 4096, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.CheckSafe(Trust{}); err != nil {
		t.Fatalf("own 0600 file refused: %v", err)
	}
	os.Chmod(path, 0o660)
	if _, err := f.CheckSafe(Trust{}); !errors.Is(err, ring.ErrUnsafeFile) {
		t.Errorf("group-writable accepted: %v", err)
	}
	if _, err := f.CheckSafe(Trust{GroupWrite: true}); err != nil {
		t.Errorf("group-writable refused with GroupWrite: %v", err)
	}
	os.Chmod(path, 0o606)
	if _, err := f.CheckSafe(Trust{GroupWrite: true, OtherOwner: true}); !errors.Is(err, ring.ErrUnsafeFile) {
		t.Errorf("world-writable accepted: %v", err)
	}
	// The OFD write lock: one holder; a read-only probe sees it.
	if err := f.LockWrite(); err != nil {
		t.Fatal(err)
	}
	g, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.LockWrite(); !errors.Is(err, ErrLocked) {
		t.Errorf("second lock: %v, want ErrLocked", err)
	}
	r, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if locked, err := r.WriteLocked(); err != nil || !locked {
		t.Errorf("probe while locked: %v, %v", locked, err)
	}
	f.Close()
	if locked, err := r.WriteLocked(); err != nil || locked {
		t.Errorf("probe after the holder closed: %v, %v", locked, err)
	}
	// A symlink is refused at open.
	os.Symlink(path, filepath.Join(dir, "link"))
	if _, err := Open(filepath.Join(dir, "link"), false); !errors.Is(err, ring.ErrUnsafeFile) {
		t.Errorf("symlink opened: %v", err)
	}
}

// Unmap leaves an inaccessible reservation: a slice kept past Unmap faults
// (and Guard turns that into ErrFault), and at most QuarantineLen ranges
// stay reserved.
func TestUnmapQuarantine(t *testing.T) {
	f, m := mapObject(t, 8192)
	b := m.Bytes()
	b[100] = 7
	if err := m.Unmap(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmap(); err != nil {
		t.Fatalf("second Unmap: %v", err)
	}
	var v byte
	if err := Guard(func() error { v = b[100]; return nil }); !errors.Is(err, ErrFault) {
		t.Fatalf("read after Unmap: %d, %v; want ErrFault", v, err)
	}
	for i := 0; i < 2*QuarantineLen; i++ {
		mi, err := Map(f, 8192, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := mi.Unmap(); err != nil {
			t.Fatal(err)
		}
	}
	quarantine.Lock()
	n := len(quarantine.q)
	quarantine.Unlock()
	if n != QuarantineLen {
		t.Errorf("%d ranges reserved after %d unmaps, want %d", n, 2*QuarantineLen+1, QuarantineLen)
	}
}

// plantNonRegular creates in dir the objects that are not regular files
// and that a local user can put under a ring's name: a FIFO, a socket, a
// directory, and (as root) a character device. It returns name -> path.
func plantNonRegular(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	out["a FIFO"] = fifo
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	out["a socket"] = sock
	d := filepath.Join(dir, "dir")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	out["a directory"] = d
	if os.Geteuid() == 0 {
		dev := filepath.Join(dir, "dev")
		if err := unix.Mknod(dev, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err == nil { // /dev/null's numbers
			out["a character device"] = dev
		}
	}
	return out
}

// A FIFO (or socket, device, directory) is refused at once, read-only and
// read-write, never blocking in open(2): through Open (lstat first) and
// through the open that follows the lstat (as when the object is planted
// between the two).
func TestOpenRefusesNonRegularWithoutBlocking(t *testing.T) {
	for what, path := range plantNonRegular(t, t.TempDir()) {
		for _, writable := range []bool{false, true} {
			for _, direct := range []bool{false, true} {
				done := make(chan error, 1)
				go func() {
					var err error
					var f *File
					if direct {
						flags := unix.O_RDONLY
						if writable {
							flags = unix.O_RDWR
						}
						f, err = openRegular(path, flags)
					} else {
						f, err = Open(path, writable)
					}
					if err == nil {
						f.Close()
					}
					done <- err
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(30 * time.Second): // hang guard
					t.Fatalf("open of %s (writable %v, after lstat %v) blocked", what, writable, direct)
				}
				if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("open of %s (writable %v, after lstat %v) = %v, want ErrUnsafeFile: not a regular file", what, writable, direct, err)
				}
			}
		}
	}
}
