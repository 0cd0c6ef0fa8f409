package producer_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/segfile"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// bothCreates runs fn with O_TMPFILE and with the named fallback.
func bothCreates(t *testing.T, fn func(t *testing.T, noTmpfile bool)) {
	for _, no := range []bool{false, true} {
		t.Run(map[bool]string{false: "O_TMPFILE", true: "fallback"}[no], func(t *testing.T) { fn(t, no) })
	}
}

// wantBusyByUs checks that err is a BusyError naming this process (the
// in-process writer that won).
func wantBusyByUs(t *testing.T, err error, what string) {
	t.Helper()
	var be *ring.BusyError
	if !errors.As(err, &be) || be.PID != os.Getpid() {
		t.Fatalf("%s: %v; want busy, written by pid %d", what, err, os.Getpid())
	}
}

// Split brain, the lock race (D1 step 2): writer B opens the ring's file;
// before B locks it, writer A replaces it (another geometry) and drops
// the old file's lock; B then locks the old, unlinked file. B must notice
// that the path names another file, start over, and find A busy; before,
// both ran as generation 2 on two files and readers split between them.
func TestSplitBrainLockRace(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	g1 := producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 64}
	w0, err := producer.Open(name, g1)
	if err != nil {
		t.Fatal(err)
	}
	w0.Close()
	var a *producer.Writer
	producer.SetHooks(t, producer.Hooks{BeforeLock: func() {
		var err error
		a, err = producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 128})
		if err != nil {
			t.Errorf("writer A: %v", err)
		}
	}})
	b, err := producer.Open(name, g1)
	if a == nil {
		t.Fatal("the hook did not run")
	}
	defer a.Remove()
	if err == nil {
		b.Close()
		t.Fatalf("split brain: B runs generation %d on the replaced file while A runs generation %d", b.Generation(), a.Generation())
	}
	wantBusyByUs(t, err, "B after A replaced the file under it")
}

// Split brain after the rename (D1 step 3): B renames its replacement
// into place, then another writer moves its own file over the name before
// B re-checks. B must start over and find that writer busy, not run on a
// file that has lost its name.
func TestSplitBrainAfterRename(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	w0, err := producer.Open(name, producer.Options{Dir: dir, Slots: 4, MaxFrameBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	w0.Close()
	var c *producer.Writer
	producer.SetHooks(t, producer.Hooks{AfterRename: func() {
		other := testutil.Name(t)
		var err error
		if c, err = producer.Open(other, producer.Options{Dir: dir, Slots: 2, MaxFrameBytes: 64}); err != nil {
			t.Errorf("writer C: %v", err)
			return
		}
		if err := os.Rename(ring.Path(dir, other), ring.Path(dir, name)); err != nil {
			t.Error(err)
		}
	}})
	b, err := producer.Open(name, producer.Options{Dir: dir, Slots: 8, MaxFrameBytes: 64})
	if c == nil {
		t.Fatal("the hook did not run")
	}
	defer func() { c.Close(); os.Remove(ring.Path(dir, name)) }()
	if err == nil {
		b.Close()
		t.Fatal("B runs on a file that another writer's file replaced under its name")
	}
	wantBusyByUs(t, err, "B after its file lost the name")
}

// Two writers creating the same fresh ring: the second to name its file
// finds the name taken (linkat/link EEXIST), starts over, and meets the
// first one (busy). Nothing is left behind.
func TestFreshCreateRace(t *testing.T) {
	bothCreates(t, func(t *testing.T, noTmpfile bool) {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		var d *producer.Writer
		producer.SetHooks(t, producer.Hooks{NoTmpfile: noTmpfile, BeforeName: func() {
			var err error
			if d, err = producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64}); err != nil {
				t.Errorf("writer D: %v", err)
			}
		}})
		_, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64})
		if d == nil {
			t.Fatal("the hook did not run")
		}
		defer d.Remove()
		wantBusyByUs(t, err, "the writer that lost the creation race")
		if temps, _ := segfile.Temps(dir); len(temps) != 0 {
			t.Errorf("temporary files left: %+v", temps)
		}
	})
}

// A new ring's file is locked before it has any name: with O_TMPFILE it
// has none at all until it gets the ring's; in the fallback it has a
// temporary name, locked (ls shows it "building"). Nothing is left after.
func TestCreateNamesOnlyLockedFiles(t *testing.T) {
	bothCreates(t, func(t *testing.T, noTmpfile bool) {
		dir, name := testutil.ShmDir(t), testutil.Name(t)
		var seen []segfile.Temp
		producer.SetHooks(t, producer.Hooks{NoTmpfile: noTmpfile, BeforeName: func() {
			seen, _ = segfile.Temps(dir)
		}})
		w := open(t, dir, name, producer.Options{MaxFrameBytes: 64})
		switch {
		case !noTmpfile && len(seen) != 0:
			t.Errorf("O_TMPFILE: temporary files visible while creating: %+v", seen)
		case noTmpfile && (len(seen) != 1 || seen[0].State != segfile.TempBuilding || seen[0].Ring != name):
			t.Errorf("fallback: temporary files while creating: %+v; want one, building, for %q", seen, name)
		}
		// Replacing (another geometry) goes through a temporary name too.
		w.Close()
		open(t, dir, name, producer.Options{MaxFrameBytes: 128})
		if temps, _ := segfile.Temps(dir); len(temps) != 0 {
			t.Errorf("temporary files left: %+v", temps)
		}
	})
}

// Temporary files of writers that died while creating are reclaimed by
// the next writer in the directory (D1 step 4): only stale ones (lock
// free and older than 10 s) of our user. segfile.Temps lists them with
// their state for framering ls; RemoveTemp removes a stale one for
// framering rm and refuses one that may still be built.
func TestStaleTempsReclaimed(t *testing.T) {
	dir := testutil.ShmDir(t)
	old := time.Now().Add(-time.Minute)
	mk := func(file string, age bool) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		if age {
			os.Chtimes(p, old, old)
		}
		return p
	}
	stale := mk(".framering-tmp.cam0.0123456789abcdef", true)
	staleOldForm := mk(".framering-tmp.4242.cam0", true) // older Go writers' name
	recent := mk(".framering-tmp.cam1.fedcba9876543210", false)
	locked := mk(".framering-tmp.cam2.00000000000000ff", true)
	lf, err := shm.Open(locked, true)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := lf.LockWrite(); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(locked, old, old)
	fifo := filepath.Join(dir, ".framering-tmp.cam3.0000000000000001")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(fifo, old, old)
	var foreign string
	if os.Geteuid() == 0 {
		foreign = mk(".framering-tmp.cam4.000000000000000a", true)
		os.Chown(foreign, 65534, 65534)
	}

	temps, err := segfile.Temps(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{stale: segfile.TempStale, staleOldForm: segfile.TempStale, recent: segfile.TempBuilding,
		locked: segfile.TempBuilding, fifo: segfile.TempIrregular}
	if foreign != "" {
		want[foreign] = segfile.TempStale
	}
	for _, tp := range temps {
		if want[tp.Path] != tp.State {
			t.Errorf("%s: state %q, want %q (%v)", tp.File, tp.State, want[tp.Path], tp.Err)
		}
		if tp.Path == staleOldForm && tp.Ring != "cam0" {
			t.Errorf("%s: ring %q, want cam0", tp.File, tp.Ring)
		}
	}
	if len(temps) != len(want) {
		t.Errorf("Temps listed %d files, want %d: %+v", len(temps), len(want), temps)
	}

	open(t, dir, testutil.Name(t), producer.Options{MaxFrameBytes: 64})
	for p, keep := range map[string]bool{stale: false, staleOldForm: false, recent: true, locked: true, fifo: true, foreign: true} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); (err == nil) != keep {
			t.Errorf("%s: kept %v, want %v", filepath.Base(p), err == nil, keep)
		}
	}
	for _, p := range []string{recent, locked} {
		if err := segfile.RemoveTemp(dir, filepath.Base(p)); !errors.Is(err, ring.ErrBusy) {
			t.Errorf("RemoveTemp of %s, which may be being built = %v, want ErrBusy", filepath.Base(p), err)
		}
	}
	another := mk(".framering-tmp.cam5.000000000000000b", true)
	if err := segfile.RemoveTemp(dir, filepath.Base(another)); err != nil {
		t.Errorf("RemoveTemp of a stale file: %v", err)
	}
	if _, err := os.Lstat(another); err == nil {
		t.Errorf("RemoveTemp left the stale file")
	}
}

// The frame numbering and generation carry over into a replacement when
// the old superblock's magic, version and checksum are right, even if its
// file was truncated or its slots damaged (D4); only an unreadable
// superblock starts again at frame 1, generation 1.
func TestNumberingCarriedOver(t *testing.T) {
	g := producer.Options{Slots: 4, MaxFrameBytes: 64}
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, path string)
		reopen  producer.Options
		next    uint64
		gen     uint64
		written uint64 // FramesTotal after the one new frame
	}{
		{"truncated after the superblock", func(t *testing.T, p string) { os.Truncate(p, 4096+100) }, g, 21, 2, 21},
		{"truncated to the superblock", func(t *testing.T, p string) { os.Truncate(p, 4096) }, g, 21, 2, 21},
		{"slots damaged", func(t *testing.T, p string) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			junk := make([]byte, 4*4096*2)
			for i := range junk {
				junk[i] = 0xff
			}
			f.WriteAt(junk, 4096)
			f.Close()
		}, g, 21, 2, 21},
		{"other geometry", func(*testing.T, string) {}, producer.Options{Slots: 8, MaxFrameBytes: 256}, 21, 2, 21},
		{"checksum broken", func(t *testing.T, p string) { testutil.WriteLE64(t, p, 16, 1<<40|8) }, g, 1, 1, 1},
		{"shorter than a superblock", func(t *testing.T, p string) { os.Truncate(p, 100) }, g, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name := testutil.ShmDir(t), testutil.Name(t)
			o := g
			o.Dir = dir
			w, err := producer.Open(name, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				w.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("frame"))
			}
			w.Close()
			tc.damage(t, w.Path())
			w2 := open(t, dir, name, tc.reopen)
			n, err := w2.Publish(ring.FrameInfo{Format: ring.Raw}, []byte("next"))
			if err != nil || n != tc.next || w2.Generation() != tc.gen {
				t.Errorf("after reopening: frame %d generation %d (%v); want frame %d generation %d", n, w2.Generation(), err, tc.next, tc.gen)
			}
			if st := w2.Stats().Ring; st.FramesTotal != tc.written {
				t.Errorf("FramesTotal %d, want %d", st.FramesTotal, tc.written)
			}
		})
	}
}

// Remove unlinks the path only while it names the writer's own file: a
// ring another writer has put under the name since stays.
func TestRemoveLeavesAnotherWritersRing(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	// Closed, then replaced by a writer with another geometry.
	w1, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	w1.Close()
	w2 := open(t, dir, name, producer.Options{MaxFrameBytes: 128})
	if err := w1.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(w2.Path()); err != nil {
		t.Fatalf("Remove of a closed writer removed its successor's ring: %v", err)
	}
	// Open, while a file of another writer was moved over its name.
	w2.Close()
	w3, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 128})
	if err != nil {
		t.Fatal(err)
	}
	other := testutil.Name(t)
	w4 := open(t, dir, other, producer.Options{MaxFrameBytes: 64})
	if err := os.Rename(w4.Path(), w3.Path()); err != nil {
		t.Fatal(err)
	}
	if err := w3.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(w3.Path()); err != nil {
		t.Fatalf("Remove of a live writer removed the file another writer put under the name: %v", err)
	}
	// A writer's own ring is removed.
	os.Remove(w3.Path())
	w5, err := producer.Open(name, producer.Options{Dir: dir, MaxFrameBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := w5.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(w5.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left the writer's own ring: %v", err)
	}
}
