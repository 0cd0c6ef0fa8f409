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
	"github.com/framering/framering/internal/shm"
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

// open opens ring name in dir with o and removes it when the test ends.
func open(t *testing.T, dir, name string, o producer.Options) *producer.Writer {
	t.Helper()
	o.Dir = dir
	w, err := producer.Open(name, o)
	return testutil.Removing(t, w, err)
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
		{"zero width", ring.FrameInfo{Width: 0, Height: 48, Format: ring.BGR8}, ring.ErrInvalidFrame, "0x48 is outside"},
		{"negative height", ring.FrameInfo{Width: 8, Height: -1, Format: ring.BGR8}, ring.ErrInvalidFrame, "8x-1 is outside"},
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
			// Reserve checks the same before anything is written, and a
			// refused reservation leaves no loan out.
			if _, err := w.Reserve(tc.info); !errors.Is(err, tc.want) {
				t.Fatalf("Reserve = %v, want %v", err, tc.want)
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
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 100, Slots: 2, MetaBytes: 8})
	r, err := consumer.Open(name, consumer.Options{Dir: dir, StartAt: consumer.Oldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw5 := ring.FrameInfo{Format: ring.Raw, Len: 5}
	l, err := w.Reserve(ring.FrameInfo{Format: ring.Raw, Len: 5, Meta: []byte("bo")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(raw5); !errors.Is(err, ring.ErrLoanOutstanding) {
		t.Fatalf("second Reserve = %v, want ErrLoanOutstanding", err)
	}
	if n := len(l.Data()); n != 5 {
		t.Fatalf("Data is %d bytes, want exactly the 5 reserved", n)
	}
	copy(l.Data(), "hello")
	if _, err := fmt.Fprint(l.Meta(), "x"); err != nil { // appended to the "bo" given to Reserve
		t.Fatal(err)
	}
	if n := l.Meta().Len(); n != 3 {
		t.Fatalf("metadata length %d, want 3", n)
	}
	if _, err := l.Meta().Write(make([]byte, 6)); !errors.Is(err, ring.ErrFrameTooLarge) {
		t.Fatalf("metadata past the slot's 8 bytes: %v, want ErrFrameTooLarge", err)
	}
	l.SetCapture(12345)
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	// An aborted loan over slot 1 leaves nothing visible; numbering reuses 2.
	l, _ = w.Reserve(raw5)
	copy(l.Data(), "garba")
	l.Abort()
	l, _ = w.Reserve(raw5)
	if l.Number() != 2 {
		t.Fatalf("after Abort the next loan is frame %d, want 2", l.Number())
	}
	copy(l.Data(), "world")
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello", "world"} {
		f, err := r.Read(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Data) != want {
			t.Fatalf("frame %d = %q, want %q", f.Number, f.Data, want)
		}
		if want == "hello" && (string(f.Meta) != "box" || f.Capture != 12345) {
			t.Fatalf("frame 1 metadata %q capture %d, want box and 12345", f.Meta, f.Capture)
		}
		if want == "world" && (len(f.Meta) != 0 || f.Capture != f.Published) {
			t.Fatalf("frame 2 metadata %q capture %d, want none and the publish time %d", f.Meta, f.Capture, f.Published)
		}
	}
	if st := w.Stats(); st.Frames != 2 || st.Aborts != 1 || st.Bytes != 10 || st.Publish.Count() != 2 {
		t.Fatalf("writer stats %+v", st)
	}
}

// A loan that ended is stale in every copy: it reports ErrLoanEnded, never
// touches the loan that is out now, and after Close reports ErrClosed.
func TestStaleLoan(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 16, MetaBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Remove(dir, name)
	info := ring.FrameInfo{Format: ring.Raw, Len: 4}
	old, err := w.Reserve(info)
	if err != nil {
		t.Fatal(err)
	}
	copyOfOld := old
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}
	cur, err := w.Reserve(info)
	if err != nil {
		t.Fatal(err)
	}
	copy(cur.Data(), "live")
	if err := copyOfOld.Commit(); !errors.Is(err, ring.ErrLoanEnded) {
		t.Errorf("Commit of a committed loan = %v, want ErrLoanEnded", err)
	}
	copyOfOld.Abort() // must not abort cur
	if _, err := copyOfOld.Meta().Write([]byte("m")); !errors.Is(err, ring.ErrLoanEnded) {
		t.Errorf("metadata write through a stale loan = %v, want ErrLoanEnded", err)
	}
	if copyOfOld.Data() != nil || copyOfOld.Number() != 1 || cur.Number() != 2 {
		t.Errorf("stale loan: Data %v, Number %d (live one %d); want nil, 1 and 2", copyOfOld.Data(), copyOfOld.Number(), cur.Number())
	}
	if got := cur.Meta().Len(); got != 0 {
		t.Errorf("the live loan got metadata through a stale one: %d bytes", got)
	}
	if err := cur.Commit(); err != nil {
		t.Fatalf("the live loan after a stale Abort: %v", err)
	}
	if st := w.Stats(); st.Frames != 2 || st.Aborts != 0 {
		t.Errorf("stats %+v: want 2 frames, no abort", st)
	}
	var zero producer.Loan
	if err := zero.Commit(); !errors.Is(err, ring.ErrLoanEnded) {
		t.Errorf("zero Loan Commit = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cur.Commit(); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	if _, err := w.Reserve(info); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Reserve after Close = %v, want ErrClosed", err)
	}
	if _, err := w.Publish(info, []byte("abcd")); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// Close waits for the loan that is out (bbolt's rule): the slot stays
// writable until the holder commits, the commit is published, then Close
// returns. A new Reserve is refused meanwhile.
func TestCloseWaitsForLoan(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Remove(dir, name)
	l, err := w.Reserve(ring.FrameInfo{Format: ring.Raw, Len: 4096})
	if err != nil {
		t.Fatal(err)
	}
	data := l.Data()
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	// Wait until Close is waiting for the loan, or has returned (the bug).
	testutil.Eventually(t, "Close waiting for the loan", func() bool {
		select {
		case <-closed:
			t.Fatal("Close returned while a loan was out")
		default:
		}
		return w.Closing()
	})
	select {
	case <-closed:
		t.Fatal("Close returned while a loan was out")
	default:
	}
	if _, err := w.Reserve(ring.FrameInfo{Format: ring.Raw, Len: 1}); !errors.Is(err, ring.ErrClosed) && !errors.Is(err, ring.ErrLoanOutstanding) {
		t.Errorf("Reserve while closing = %v", err)
	}
	if st := w.Stats(); st.Frames != 0 { // Stats does not wait for the loan
		t.Errorf("stats while closing: %+v", st)
	}
	if err := shm.Guard(func() error { copy(data, "late"); return nil }); err != nil {
		t.Fatalf("the loan's slot while Close waits: %v", err)
	}
	if err := l.Commit(); err != nil {
		t.Fatalf("Commit while Close waits: %v", err)
	}
	if err := testutil.Receive(t, closed, "Close after the loan was committed"); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Frames != 1 || st.Ring.Head != 1 {
		t.Errorf("the loan committed during Close was not published: %+v", st)
	}
	if err := l.Commit(); !errors.Is(err, ring.ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
}

// After Close, a slice of the writer's mapping that someone kept faults on
// access, even after other rings of the same size are mapped, instead of
// reading or writing another ring's memory.
func TestStaleSliceAfterCloseFaults(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	const size = 1 << 16
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: size, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.Reserve(ring.FrameInfo{Format: ring.Raw, Len: size})
	if err != nil {
		t.Fatal(err)
	}
	stale := l.Data()
	l.Commit()
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	// Rings of the same size, mapped after: the kernel would hand the freed
	// range to the first of them.
	for i := 0; i < 4; i++ {
		wi := open(t, dir, fmt.Sprintf("%s-%d", name, i), producer.Options{MaxFrameBytes: size, Slots: 2})
		wi.Publish(ring.FrameInfo{Format: ring.Raw}, make([]byte, size))
	}
	err = shm.Guard(func() error { stale[0] = 1; return nil })
	if !errors.Is(err, shm.ErrFault) {
		t.Fatalf("write through a slice of a closed writer = %v, want a fault", err)
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
	want := fmt.Sprintf("ring %q: already written by pid %s", name, pid)
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
		w := open(t, dir, name, producer.Options{MaxFrameBytes: 10, Perm: 0o640})
		w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("shared"))
		if err := os.Chown(ring.Path(dir, name), 65534, 65534); err != nil {
			t.Skipf("chown: %v", err)
		}
		if _, err := consumer.Open(name, consumer.Options{Dir: dir}); !errors.Is(err, ring.ErrUnsafeFile) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("default reader of another owner's ring: %v", err)
		}
		r, err := consumer.Open(name, consumer.Options{Dir: dir, AllowOtherOwner: true})
		if err != nil {
			t.Fatalf("reader with AllowOtherOwner: %v", err)
		}
		defer r.Close()
		if f, err := r.Read(t.Context(), nil); err != nil || string(f.Data) != "shared" {
			t.Fatalf("read %q, %v", f.Data, err)
		}
	})
	t.Run("world-writable permission option", func(t *testing.T) {
		_, err := producer.Open(testutil.Name(t), producer.Options{Dir: dir, MaxFrameBytes: 10, Perm: 0o666})
		if !errors.Is(err, ring.ErrUnsafeFile) {
			t.Errorf("Perm 0666: %v", err)
		}
	})
}

// A tmpfs too small for the ring fails at creation with the size needed,
// and leaves nothing behind.
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
	var ns *producer.NoSpaceError
	if !errors.As(err, &ns) || ns.Need != (ring.Geometry{Slots: 8, PayloadCap: 640 * 480 * 3}).Size() || ns.Ring != "big" {
		t.Errorf("error does not say what the ring needs: %#v", err)
	}
	if strings.Contains(err.Error(), ".framering-tmp") {
		t.Errorf("error names the temporary file: %v", err)
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
	if err != nil || f.Number != 6 || len(f.Data) != 10000 || f.Data[9999] != 7 {
		t.Fatalf("read after replacement: frame %d len %d err %v", f.Number, len(f.Data), err)
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
	if !w.IsClosed() || st.Frames != 2 || st.Ring.Head != 2 || st.Ring.FramesTotal != 2 {
		t.Fatalf("after Close: closed %v, stats %+v", w.IsClosed(), st)
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
	openFDs := func() int {
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
	for i := 0; i < 50 && openFDs() > 0; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := openFDs(); n != 0 {
		t.Fatalf("%d descriptors of the ring still open after GC", n)
	}
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 16})
	if w.Generation() != 2 {
		t.Fatalf("writer after the dropped one: generation %d, want 2", w.Generation())
	}
}

// A Commit that fails (the file was truncated under the writer) still ends
// the loan: once the file has its size back, the next Reserve is not
// refused with ErrLoanOutstanding, and its frame commits.
func TestFailedCommitEndsLoan(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w := open(t, dir, name, producer.Options{MaxFrameBytes: 64, Slots: 2})
	path := ring.Path(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := ring.FrameInfo{Format: ring.Raw, Len: 8}
	l, err := w.Reserve(raw)
	if err != nil {
		t.Fatal(err)
	}
	copy(l.Data(), "12345678")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); !errors.Is(err, ring.ErrTruncated) {
		t.Fatalf("Commit on a truncated file = %v, want ErrTruncated", err)
	}
	if err := l.Commit(); !errors.Is(err, ring.ErrLoanEnded) {
		t.Fatalf("the failed loan committed again: %v, want ErrLoanEnded", err)
	}
	if err := os.Truncate(path, fi.Size()); err != nil {
		t.Fatal(err)
	}
	l, err = w.Reserve(raw)
	if err != nil {
		t.Fatalf("Reserve after a failed Commit = %v, want a new loan", err)
	}
	copy(l.Data(), "abcdefgh")
	if err := l.Commit(); err != nil {
		t.Fatalf("Commit after the file came back: %v", err)
	}
	if st := w.Stats(); st.Frames != 1 {
		t.Fatalf("writer counts %d frames, want 1 (the failed one is not a frame)", st.Frames)
	}
}

// A negative metadata size is refused at Open, not read as "the default".
func TestNegativeMetaBytesRefused(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64, MetaBytes: -1})
	if err == nil {
		w.Close()
		w.Remove()
		t.Fatal("Open with MetaBytes -1 succeeded")
	}
	if !errors.Is(err, ring.ErrInvalidFrame) || !strings.Contains(err.Error(), "metadata size -1") {
		t.Fatalf("Open with MetaBytes -1 = %v, want ErrInvalidFrame naming the size", err)
	}
	if _, err := os.Stat(ring.Path(dir, name)); !os.IsNotExist(err) {
		t.Fatalf("a refused Open left %s behind (%v)", ring.Path(dir, name), err)
	}
}
