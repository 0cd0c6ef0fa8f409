package legacy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/ring"
)

// A sender that rewrites the header during every copy (frame_valid stays
// 1, the timestamp never holds still) makes every copy torn: Read still
// honours its deadline and Close, and does not spin (it waits a poll every
// tornBound copies).
func TestReaderHostileSenderHonoursDeadline(t *testing.T) {
	dir := testutil.ShmDir(t)
	leg := "mmaptest_" + testutil.Name(t)
	path := filepath.Join(dir, leg)
	const w, h, c = 64, 64, 3
	writeObject(t, path, 24+w*h*c, w, h, c)
	f, err := shm.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := shm.Map(f, 24+w*h*c, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	r, err := legacy.NewReader(dir, leg, legacy.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ts := uint64(time.Now().UnixMilli())
	r.SetAfterCopy(func() {
		ts++
		binary.LittleEndian.PutUint64(m.Bytes()[12:], ts)
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := r.Read(ctx, nil)
		done <- err
	}()
	if err := testutil.Receive(t, done, "Read with a sender rewriting every frame"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want DeadlineExceeded", err)
	}
	st := r.Stats()
	if st.Frames != 0 || st.Torn == 0 || st.Polls < st.Torn/legacy.TornBound {
		t.Errorf("stats %+v: want torn copies, a poll after every %d of them, no frame", st, legacy.TornBound)
	}
	go func() {
		_, err := r.Read(context.Background(), nil)
		done <- err
	}()
	testutil.Eventually(t, "more torn copies", func() bool { return r.Stats().Torn > st.Torn })
	r.Close()
	if err := testutil.Receive(t, done, "Read at Close"); !errors.Is(err, legacy.ErrClosed) {
		t.Fatalf("Read at Close = %v, want ErrClosed", err)
	}
}

// sparseObject makes a legacy object of size bytes without allocating its
// pages (ftruncate), with the given header and frame_valid = 1.
func sparseObject(t *testing.T, path string, size int64, w, h, c int32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], uint32(w))
	binary.LittleEndian.PutUint32(b[4:], uint32(h))
	binary.LittleEndian.PutUint32(b[8:], uint32(c))
	binary.LittleEndian.PutUint64(b[12:], uint64(time.Now().UnixMilli()))
	binary.LittleEndian.PutUint32(b[20:], 1)
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

// A header may not make the reader allocate (and copy) more than
// MaxFrameBytes: 64 MiB by default, an option otherwise.
func TestReaderCapsFrameSize(t *testing.T) {
	dir := testutil.ShmDir(t)
	for _, tc := range []struct {
		name    string
		w, h, c int32
		max     int
		wantErr bool
	}{
		{"8K BGR over the default", 7680, 4320, 3, 0, true},
		{"4K BGRA under the default", 3840, 2160, 4, 0, false},
		{"over the option", 32, 32, 3, 1000, true},
		{"under the option", 16, 16, 3, 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leg := "mmaptest_" + testutil.Name(t)
			sparseObject(t, filepath.Join(dir, leg), 24+int64(tc.w)*int64(tc.h)*int64(tc.c), tc.w, tc.h, tc.c)
			r, err := legacy.NewReader(dir, leg, legacy.ReaderOptions{MaxFrameBytes: tc.max, NoCompare: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			f, err := r.Read(timeout(t, 30*time.Second), nil)
			if tc.wantErr {
				if !errors.Is(err, legacy.ErrTooLarge) || len(f.Pixels) != 0 {
					t.Fatalf("Read of a %dx%dx%d frame = %d bytes, %v; want ErrTooLarge", tc.w, tc.h, tc.c, len(f.Pixels), err)
				}
				return
			}
			if err != nil || len(f.Pixels) != int(tc.w*tc.h*tc.c) {
				t.Fatalf("Read of a %dx%dx%d frame = %d bytes, %v", tc.w, tc.h, tc.c, len(f.Pixels), err)
			}
		})
	}
}

// Objects that another user could have written, or that are not what
// they seem, are refused the way ring readers refuse them, unless the
// caller accepts them explicitly.
func TestReaderRefusesUnsafeObjects(t *testing.T) {
	dir := testutil.ShmDir(t)
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, path string)
		opt    legacy.ReaderOptions // that accepts it; zero: nothing does
		reason string
	}{
		{"world-writable", func(t *testing.T, p string) { os.Chmod(p, 0o666) }, legacy.ReaderOptions{AllowWorldWritable: true}, "world-writable"},
		{"group-writable", func(t *testing.T, p string) { os.Chmod(p, 0o664) }, legacy.ReaderOptions{AllowGroupWritable: true}, "group-writable"},
		{"other owner", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			os.Chown(p, 65534, 65534)
		}, legacy.ReaderOptions{AllowOtherOwner: true}, "belongs to uid 65534"},
		{"symlink", func(t *testing.T, p string) {
			os.Rename(p, p+".target")
			os.Symlink(p+".target", p)
		}, legacy.ReaderOptions{}, "symbolic link"},
		{"FIFO", func(t *testing.T, p string) {
			os.Remove(p)
			syscall.Mkfifo(p, 0o644)
		}, legacy.ReaderOptions{}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leg := "mmaptest_" + testutil.Name(t)
			path := filepath.Join(dir, leg)
			writeObject(t, path, 24+16*16*3, 16, 16, 3)
			tc.setup(t, path)
			read := func(o legacy.ReaderOptions) error {
				r, err := legacy.NewReader(dir, leg, o)
				if err != nil {
					return err
				}
				defer r.Close()
				done := make(chan error, 1)
				go func() {
					_, err := r.Read(timeout(t, 30*time.Second), nil)
					done <- err
				}()
				return testutil.Receive(t, done, "Read of an unsafe object")
			}
			if err := read(legacy.ReaderOptions{}); !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("default reader: %v; want ErrUnsafeFile: %s", err, tc.reason)
			}
			if tc.opt != (legacy.ReaderOptions{}) {
				if err := read(tc.opt); err != nil {
					t.Fatalf("reader with %+v: %v", tc.opt, err)
				}
			}
		})
	}
}
