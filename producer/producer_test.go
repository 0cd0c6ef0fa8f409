package producer_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

func TestMain(m *testing.M) {
	testutil.Helper("hold", func() int {
		w, err := producer.Open(os.Getenv("RING"), producer.Options{Dir: os.Getenv("DIR"), MaxFrameBytes: 4096})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer w.Close()
		fmt.Printf("holding pid=%d\n", os.Getpid())
		time.Sleep(time.Minute)
		return 0
	})
	testutil.Main(m)
}

func open(t *testing.T, dir, name string, o producer.Options) *producer.Writer {
	t.Helper()
	return testutil.OpenWriter(t, dir, name, o)
}

func TestBadFramesRejectedNothingPublished(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := open(t, dir, name, producer.Options{MaxWidth: 64, MaxHeight: 48, MetaBytes: 16})
	px := make([]byte, 64*48*3*2)
	for _, tc := range []struct {
		name string
		info ring.FrameInfo
		want error
		msg  string
	}{
		{"too large", ring.FrameInfo{Width: 65, Height: 48, Format: ring.BGR8}, ring.ErrFrameTooLarge, "the slots hold 9216"},
		{"zero width", ring.FrameInfo{Width: 0, Height: 48, Format: ring.BGR8}, ring.ErrInvalidFrame, "width and height"},
		{"negative height", ring.FrameInfo{Width: 8, Height: -1, Format: ring.BGR8}, ring.ErrInvalidFrame, "width and height"},
		{"short stride", ring.FrameInfo{Width: 8, Height: 8, Format: ring.BGR8, Stride: 23}, ring.ErrInvalidFrame, "stride 23 is smaller than a row of 24"},
		{"unknown format", ring.FrameInfo{Width: 8, Height: 8, Format: 99}, ring.ErrInvalidFrame, "unknown pixel format 99"},
		{"no format", ring.FrameInfo{Width: 8, Height: 8}, ring.ErrInvalidFrame, "unknown pixel format 0"},
		{"channels mismatch", ring.FrameInfo{Width: 8, Height: 8, Channels: 4, Format: ring.BGR8}, ring.ErrInvalidFrame, "has 3 channels"},
		{"metadata too large", ring.FrameInfo{Width: 8, Height: 8, Format: ring.Gray8, Meta: make([]byte, 17)}, ring.ErrFrameTooLarge, "metadata"},
		{"raw too large", ring.FrameInfo{Format: ring.Raw, Len: 9217}, ring.ErrFrameTooLarge, "9217 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.Publish(tc.info, px)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Publish = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the ring", err)
			}
		})
	}
	// A short buffer is refused too.
	if _, err := w.Publish(ring.FrameInfo{Width: 8, Height: 8, Format: ring.BGR8}, px[:10]); !errors.Is(err, ring.ErrInvalidFrame) {
		t.Errorf("short buffer: %v", err)
	}
	if head := w.Segment().Head().Load(); head != 0 {
		t.Fatalf("head = %d after only bad frames, want 0", head)
	}
	// The ring still works, numbering from 1.
	if n, err := w.Publish(ring.FrameInfo{Width: 64, Height: 48, Format: ring.BGR8}, px); err != nil || n != 1 {
		t.Fatalf("good frame after bad ones: %d, %v", n, err)
	}
}

func TestLoanCommitAbort(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 100, Slots: 2})
	r, err := consumer.Open(name, consumer.Options{Dir: dir, Start: consumer.StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := w.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(); !errors.Is(err, ring.ErrLoanOutstanding) {
		t.Fatalf("second Reserve = %v, want ErrLoanOutstanding", err)
	}
	copy(l.Pixels(), "hello")
	copy(l.Meta(), "box")
	if err := l.Commit(ring.FrameInfo{Format: ring.Raw, Len: 5, MetaLen: 3}); err != nil {
		t.Fatal(err)
	}
	// An aborted loan over slot 1 leaves nothing visible; numbering reuses 2.
	l, _ = w.Reserve()
	copy(l.Pixels(), "garbage")
	l.Abort()
	l, _ = w.Reserve()
	if l.Number() != 2 {
		t.Fatalf("after Abort the next loan is frame %d, want 2", l.Number())
	}
	copy(l.Pixels(), "world")
	if err := l.Commit(ring.FrameInfo{Format: ring.Raw, Len: 5}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello", "world"} {
		f, err := r.Read(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Pixels) != want {
			t.Fatalf("frame %d = %q, want %q", f.Number, f.Pixels, want)
		}
		if want == "hello" && string(f.Meta) != "box" {
			t.Fatalf("frame 1 metadata %q, want box", f.Meta)
		}
	}
	if st := w.Stats(); st.Frames != 2 || st.Aborts != 1 || st.Bytes != 10 {
		t.Fatalf("writer stats %+v", st)
	}
}

func TestBadNames(t *testing.T) {
	dir := testutil.ShmDir(t)
	for _, name := range []string{"", "a/b", "..", ".", "../escape", strings.Repeat("x", 300), "sp ace", "nul\x00"} {
		_, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 10})
		if !errors.Is(err, ring.ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", name, err)
		}
		_, err = consumer.Open(name, consumer.Options{Dir: dir})
		if !errors.Is(err, ring.ErrInvalidName) {
			t.Errorf("consumer.Open(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("bad names left files: %v", ents)
	}
}

func TestSecondWriterNamesPID(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	c := testutil.Start(t, "hold", "DIR="+dir, "RING="+name)
	line, err := c.Expect("holding", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimPrefix(line, "holding pid=")
	_, err = producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 4096})
	if !errors.Is(err, ring.ErrBusy) {
		t.Fatalf("second writer: %v, want ErrBusy", err)
	}
	want := fmt.Sprintf("ring %q: already written by pid %s; stop that producer or pick another name", name, pid)
	if err.Error() != want {
		t.Fatalf("error\n %s\nwant\n %s", err, want)
	}
	// Another geometry is refused the same way: no replacement under a live writer.
	if _, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 8192}); !errors.Is(err, ring.ErrBusy) {
		t.Fatalf("second writer with new geometry: %v, want ErrBusy", err)
	}
	c.Kill()
	// Once it is dead, the ring can be taken over.
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 4096})
	if w.Generation() != 2 {
		t.Fatalf("generation after takeover = %d, want 2", w.Generation())
	}
}

func TestUnsafeFilesRefused(t *testing.T) {
	dir := testutil.ShmDir(t)
	target := filepath.Join(dir, "target")
	os.WriteFile(target, make([]byte, 8192), 0o600)

	t.Run("symlink", func(t *testing.T) {
		name := testutil.Name(t)
		os.Symlink(target, ring.Path(dir, name))
		_, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 10})
		if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("writer over symlink: %v", err)
		}
		_, err = consumer.Open(name, consumer.Options{Dir: dir})
		if !errors.Is(err, ring.ErrUnsafeFile) {
			t.Errorf("reader over symlink: %v", err)
		}
	})
	for _, mode := range []os.FileMode{0o666, 0o620} {
		t.Run(fmt.Sprintf("mode %04o", uint32(mode)), func(t *testing.T) {
			name := testutil.Name(t)
			w := open(t, dir, name, producer.Options{MaxFrameBytes: 10})
			w.Close()
			os.Chmod(ring.Path(dir, name), mode)
			_, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 10})
			if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "writable") {
				t.Errorf("writer: %v", err)
			}
			_, err = consumer.Open(name, consumer.Options{Dir: dir})
			if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "writable") {
				t.Errorf("reader: %v", err)
			}
		})
	}
	t.Run("other owner", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown a file to another user")
		}
		name := testutil.Name(t)
		w := open(t, dir, name, producer.Options{MaxFrameBytes: 10})
		w.Close()
		if err := os.Chown(ring.Path(dir, name), 65534, 65534); err != nil {
			t.Skipf("chown: %v", err)
		}
		_, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 10})
		if !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("writer: %v", err)
		}
		_, err = consumer.Open(name, consumer.Options{Dir: dir})
		if !errors.Is(err, ring.ErrUnsafeFile) {
			t.Errorf("reader: %v", err)
		}
	})
	t.Run("group reader of another owner's ring", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown a file to another user")
		}
		name := testutil.Name(t)
		w := open(t, dir, name, producer.Options{MaxFrameBytes: 10, Mode: 0o640})
		w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("shared"))
		if err := os.Chown(ring.Path(dir, name), 65534, 65534); err != nil {
			t.Skipf("chown: %v", err)
		}
		if _, err := consumer.Open(name, consumer.Options{Dir: dir}); !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "AllowOtherOwner") {
			t.Fatalf("default reader of another owner's ring: %v", err)
		}
		r, err := consumer.Open(name, consumer.Options{Dir: dir, AllowOtherOwner: true})
		if err != nil {
			t.Fatalf("reader with AllowOtherOwner: %v", err)
		}
		defer r.Close()
		if f, err := r.Read(t.Context(), nil); err != nil || string(f.Pixels) != "shared" {
			t.Fatalf("read %q, %v", f.Pixels, err)
		}
	})
	t.Run("world-writable mode option", func(t *testing.T) {
		_, err := producer.Open(testutil.Name(t), producer.Options{Dir: dir, MaxFrameBytes: 10, Mode: 0o666})
		if !errors.Is(err, ring.ErrUnsafeFile) {
			t.Errorf("Mode 0666: %v", err)
		}
	})
}

// A tmpfs too small for the ring fails at creation with the --shm-size
// needed, and leaves nothing behind.
func TestNoSpaceOnSmallTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "framering-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	_, err := producer.Open("big", producer.Options{Dir: dir, MaxWidth: 640, MaxHeight: 480, Slots: 8})
	if !errors.Is(err, ring.ErrNoSpace) {
		t.Fatalf("Open on a 1 MiB tmpfs = %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "--shm-size=") {
		t.Errorf("error does not say which --shm-size is needed: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed creation left %v", ents)
	}
	// A ring that fits still works there.
	w := open(t, dir, "small", producer.Options{MaxFrameBytes: 4096, Slots: 2})
	if _, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("fits")); err != nil {
		t.Fatal(err)
	}
}

// A file under the ring's name that is not a ring (junk, another
// program's) is replaced by the writer, which owns the name.
func TestOpenOverJunkReplacesIt(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	if err := os.WriteFile(ring.Path(dir, name), make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 100})
	if n, err := w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("x")); err != nil || n != 1 {
		t.Fatalf("publish over replaced junk: %d, %v", n, err)
	}
	r, err := consumer.Open(name, consumer.Options{Dir: dir})
	if err != nil {
		t.Fatalf("reader of the replacement: %v", err)
	}
	r.Close()
}

// Reopening with another geometry replaces the segment and carries the
// numbering on; a reader of the old one re-maps.
func TestReopenNewGeometry(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 100, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("small"))
	}
	r, err := consumer.Open(name, consumer.Options{Dir: dir, WaitSlice: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f, err := r.Read(t.Context(), nil); err != nil || f.Number != 5 {
		t.Fatalf("first read: %d, %v", f.Number, err)
	}
	w.Close()
	w2 := open(t, dir, name, producer.Options{MaxFrameBytes: 10000, Slots: 4})
	if w2.Generation() != 2 {
		t.Errorf("generation %d, want 2", w2.Generation())
	}
	big := make([]byte, 10000)
	big[9999] = 7
	if n, err := w2.Publish(ring.FrameInfo{Format: ring.Raw}, big); err != nil || n != 6 {
		t.Fatalf("publish on new geometry: frame %d, %v; want 6", n, err)
	}
	var f ring.Frame
	for {
		f, err = r.Read(t.Context(), nil)
		if errors.Is(err, ring.ErrWriterGone) {
			continue
		}
		break
	}
	if err != nil || f.Number != 6 || len(f.Pixels) != 10000 || f.Pixels[9999] != 7 {
		t.Fatalf("read after replacement: frame %d len %d err %v", f.Number, len(f.Pixels), err)
	}
	if g := r.Geometry(); g.Slots != 4 || g.PayloadCap != 10000 {
		t.Fatalf("reader geometry %v after re-map", g)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".framering-tmp*")); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// Stats stays safe after Close (a metrics scrape can race with shutdown)
// and reports the superblock as it was.
func TestStatsAfterClose(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Remove(dir, name)
	w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("a"))
	w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("b"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			w.Stats()
		}
	}()
	w.Close()
	<-done
	st := w.Stats()
	if !w.Closed() || st.Frames != 2 || st.Ring.Head != 2 || st.Ring.FramesTotal != 2 {
		t.Fatalf("after Close: closed %v, stats %+v", w.Closed(), st)
	}
}

// A Writer and a Reader dropped without Close are cleaned up by the GC:
// the heartbeat stops, the lock is released (a new writer can take the
// ring) and no descriptor of the ring stays open.
func TestDroppedWithoutCloseIsCleanedUp(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	func() {
		w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 16})
		if err != nil {
			t.Fatal(err)
		}
		w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("x"))
		if _, err := consumer.Open(name, consumer.Options{Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}()
	open := func() int {
		n := 0
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			// A new writer's descriptor names the temporary file it was built
			// under ("... (deleted)"), so match the ring name.
			if target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); strings.Contains(target, name) {
				n++
			}
		}
		return n
	}
	for i := 0; i < 50 && open() > 0; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := open(); n != 0 {
		t.Fatalf("%d descriptors of the ring still open after GC", n)
	}
	w := testutil.OpenWriter(t, dir, name, producer.Options{MaxFrameBytes: 16})
	if w.Generation() != 2 {
		t.Fatalf("writer after the dropped one: generation %d, want 2", w.Generation())
	}
}
