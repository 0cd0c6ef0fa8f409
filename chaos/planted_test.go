package chaos_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/ring"
)

// plant is a hostile object planted under a name a ring, a writer's
// temporary file or a legacy slot uses.
type plant struct {
	kind   string
	unsafe bool // ring readers and writers must refuse it with ErrUnsafeFile
	root   bool // needs root (chown, mknod)
	make   func(t *testing.T, p string, env *plantEnv)
}

type plantEnv struct {
	dir        string
	good       []byte // a valid ring's bytes
	legacy     []byte // a valid legacy slot's bytes
	victim     string // a file a symbolic link points at; must stay intact
	legacyCopy bool   // make copies from legacy instead of good
}

// foreignUID is the uid foreign-owned files get (nobody).
const foreignUID = 65534

func writeCopy(t *testing.T, p string, b []byte, mode uint32, uid int) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *plantEnv) content() []byte {
	if e.legacyCopy {
		return e.legacy
	}
	return e.good
}

var plants = []plant{
	{kind: "fifo", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{kind: "symlink-to-ring", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		if err := os.Symlink(ring.Path(e.dir, "good"), p); err != nil {
			t.Fatal(err)
		}
	}},
	{kind: "symlink-to-victim", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		if err := os.Symlink(e.victim, p); err != nil {
			t.Fatal(err)
		}
	}},
	{kind: "symlink-dangling", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		if err := os.Symlink(filepath.Join(e.dir, "nowhere"), p); err != nil {
			t.Fatal(err)
		}
	}},
	{kind: "foreign-owner", unsafe: true, root: true, make: func(t *testing.T, p string, e *plantEnv) {
		writeCopy(t, p, e.content(), 0o600, foreignUID)
	}},
	{kind: "world-writable", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		writeCopy(t, p, e.content(), 0o666, -1)
	}},
	{kind: "group-writable", unsafe: true, make: func(t *testing.T, p string, e *plantEnv) {
		writeCopy(t, p, e.content(), 0o660, -1)
	}},
	{kind: "directory", make: func(t *testing.T, p string, e *plantEnv) {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		// Not empty, so a plain remove cannot clear it out of the way.
		if err := os.WriteFile(filepath.Join(p, "x"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{kind: "socket", make: func(t *testing.T, p string, e *plantEnv) {
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		t.Cleanup(func() { l.Close() })
	}},
	{kind: "char-device", root: true, make: func(t *testing.T, p string, e *plantEnv) {
		if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil { // like /dev/null
			t.Fatal(err)
		}
	}},
}

// snapshot is what must not change about a planted object (and what it
// points at).
type snapshot struct {
	mode    os.FileMode
	uid     uint32
	size    int64
	content []byte
	victim  []byte
}

func snap(p, victim string) snapshot {
	var s snapshot
	if fi, err := os.Lstat(p); err == nil {
		s.mode, s.size = fi.Mode(), fi.Size()
		if st, ok := fi.Sys().(*unix.Stat_t); ok {
			s.uid = st.Uid
		}
		if fi.Mode().IsRegular() {
			s.content, _ = os.ReadFile(p)
		}
	}
	s.victim, _ = os.ReadFile(victim)
	return s
}

func (s snapshot) same(o snapshot) bool {
	return s.mode == o.mode && s.uid == o.uid && s.size == o.size && bytes.Equal(s.content, o.content) && bytes.Equal(s.victim, o.victim)
}

// legacySlot returns a valid legacy object: a 4x4 BGR frame.
func legacySlot() []byte {
	b := make([]byte, 24+4*4*3)
	binary.LittleEndian.PutUint32(b[0:], 4)
	binary.LittleEndian.PutUint32(b[4:], 4)
	binary.LittleEndian.PutUint32(b[8:], 3)
	binary.LittleEndian.PutUint64(b[12:], uint64(time.Now().UnixMilli()))
	binary.LittleEndian.PutUint32(b[20:], 1)
	for i := 24; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// TestChaosPlanted plants hostile objects where framering looks: FIFOs,
// symbolic links (to a ring, to a victim file, dangling), foreign-owned
// (root only: chown to nobody), world-writable and group-writable copies of
// a valid ring, a non-empty directory, a socket and a character device
// (root only), under a ring's name, under a writer's temporary names and
// under a legacy slot's name, in a directory that also holds a good ring
// and is watched by a metrics exporter.
//
// Asserted, for each: every call returns (FIFOs must not block an open),
// nothing crashes; ring readers (Open, OpenWait) and writers refuse the
// object (ErrUnsafeFile for the unsafe kinds) and leave it, and what a link
// points at, unchanged; ls still lists the good ring and the exporter
// still answers with it; the legacy reader delivers nothing from an unsafe
// object; a writer creating a ring succeeds whatever is planted under its
// temporary names, and the ring it made can be read. At the end, with the
// plants removed, the exporter must still answer.
func TestChaosPlanted(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "hostile files planted")
	// One planted FIFO can hang an open, ls, stat, recv and the exporter at
	// once: a larger budget, so the other kinds still run.
	ty.maxHangs *= 4
	dir := ringDir(t)
	cliBin(t)
	if !prepareRing(t, ty, dir, "good", 4096, 4) {
		t.FailNow()
	}
	good, err := os.ReadFile(ring.Path(dir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("a file a symbolic link points at: it must stay as it is"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &plantEnv{dir: dir, good: good, legacy: legacySlot(), victim: victim}
	exp := startExporter(t, dir)
	pr := newProber(t, ty)
	defer pr.close()
	root := os.Geteuid() == 0
	var tried, refused, skipped, tmpRuns int
	var planted []string

	for _, pl := range plants {
		if pl.root && !root {
			skipped++
			continue
		}
		if ty.tooManyHangs() {
			break
		}
		// 1. Under a ring's name.
		name := "p-" + pl.kind
		p := ring.Path(dir, name)
		env.legacyCopy = false
		pl.make(t, p, env)
		planted = append(planted, p)
		before := snap(p, victim)
		what := fmt.Sprintf("%s under a ring name", pl.kind)
		tried++
		res := pr.run(what, trial{Dir: dir, Ring: name, Ops: []string{"read", "openwait", "writer"}, CallMs: 500, Reads: 2,
			Start: "newest", Slots: 8, Bytes: 4096, HungMs: 1000, Slice: 20})
		for _, r := range res {
			switch {
			case r.Outcome != "err":
				ty.fail("%s: %s accepted it (%+v)", what, r.Op, r)
			case pl.unsafe && r.Class != "unsafe":
				ty.fail("%s: %s refused it with %s (%s), want ErrUnsafeFile", what, r.Op, r.Class, r.Msg)
			default:
				refused++
			}
		}
		if after := snap(p, victim); !before.same(after) {
			ty.fail("%s: the object (or what it points at) changed: %+v -> %+v", what, before, after)
		}
		cr := runCLIs(t, []string{"ls", "--dir", dir}, []string{"stat", name, "--dir", dir},
			[]string{"recv", "--ring", name, "--dir", dir, "--wait", "--timeout", "1s", "-q"})
		for _, r := range cr {
			ty.cli(r, what)
		}
		lsr := cr[0]
		if !lsr.hung && !lsr.crash && !strings.Contains("\n"+lsr.stdout, "\ngood ") {
			ty.fail("%s: ls does not list the good ring: %q %s", what, lsr.stdout, excerpt(lsr.stderr, 300))
		}
		if body, ok := exp.scrape(ty, what, false); ok && !strings.Contains(body, `"good"`) {
			ty.fail("%s: the metrics exporter does not show the good ring", what)
		}
		// Gone again: the same exporter must answer (a scrape that was stuck
		// on the object must not wedge it for good).
		os.RemoveAll(p)
		if body, ok := exp.scrape(ty, what+", then removed", true); ok && !strings.Contains(body, `"good"`) {
			ty.fail("%s, then removed: the metrics exporter does not show the good ring", what)
		}

		// 2. Under a legacy slot's name (copies of a legacy object).
		lname := "legacy-" + pl.kind
		lp := filepath.Join(dir, lname)
		env.legacyCopy = true
		pl.make(t, lp, env)
		planted = append(planted, lp)
		lbefore := snap(lp, victim)
		what = fmt.Sprintf("%s under a legacy name", pl.kind)
		tried++
		if res := pr.run(what, trial{Dir: dir, Legacy: lname, Ops: []string{"legacy"}, CallMs: 500}); len(res) == 1 {
			if res[0].Delivered > 0 {
				ty.fail("%s: the legacy reader delivered a frame from it (%+v)", what, res[0])
			} else {
				refused++
			}
		}
		if after := snap(lp, victim); !lbefore.same(after) {
			ty.fail("%s: the object (or what it points at) changed", what)
		}
		os.RemoveAll(lp)

		// 3. Under a writer's temporary names: the old name with the
		// writer's pid, and a name of the random form. A writer creating the
		// ring must succeed, touch nothing it points at, and its ring must
		// be readable.
		if pl.kind == "socket" || pl.kind == "symlink-to-ring" || pl.kind == "group-writable" {
			continue // nothing these add under a temporary name
		}
		tname := "t-" + pl.kind
		what = fmt.Sprintf("%s under a writer's temporary names", pl.kind)
		c := startChild(t, "creator", "DIR="+dir, "RING="+tname, "BYTES=4096", "SLOTS=8")
		pid := fieldsAfter(c.expect(t, "pid"), "pid ")
		env.legacyCopy = false
		tmps := []string{
			filepath.Join(dir, fmt.Sprintf(".framering-tmp.%s.%s", pid, tname)),
			filepath.Join(dir, fmt.Sprintf(".framering-tmp.%s.0123456789abcdef", tname)),
		}
		past := time.Now().Add(-time.Hour)
		for _, tp := range tmps {
			pl.make(t, tp, env)
			unix.UtimesNanoAt(unix.AT_FDCWD, tp, []unix.Timespec{unix.NsecToTimespec(past.UnixNano()), unix.NsecToTimespec(past.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
			planted = append(planted, tp)
		}
		vbefore, _ := os.ReadFile(victim)
		tmpRuns++
		c.send("go")
		line, err := c.Line(lineWait)
		switch {
		case err == nil && strings.HasPrefix(line, "opened"):
			if res := pr.run(what+": reading the new ring", trial{Dir: dir, Ring: tname, Ops: []string{"readnewest"}, CallMs: 1000}); len(res) == 1 &&
				(res[0].Outcome != "ok" || res[0].Delivered != 1) {
				ty.fail("%s: the ring the writer made cannot be read: %+v", what, res[0])
			}
		case err == nil && strings.HasPrefix(line, "hang "):
			<-c.Done()
			ty.hang("%s: %s\n%s", what, line, hungStack(c.Stderr()))
		case err == nil:
			ty.fail("%s: the writer could not create the ring: %s", what, line)
		default:
			if bad, why := crashed(c.Stderr(), err); bad {
				ty.crash("%s: %s", what, why)
			} else {
				ty.hang("%s: writer: %v", what, err)
			}
		}
		c.kill()
		if vafter, _ := os.ReadFile(victim); !bytes.Equal(vbefore, vafter) {
			ty.fail("%s: the victim file changed: %q", what, vafter)
		}
		for _, tp := range tmps {
			os.RemoveAll(tp)
		}
	}

	// With every plant gone, everything answers.
	for _, p := range planted {
		os.RemoveAll(p)
	}
	if body, ok := exp.scrape(ty, "after the plants were removed", true); ok && !strings.Contains(body, `"good"`) {
		ty.fail("after the plants were removed: the metrics exporter does not show the good ring")
	}
	ty.cli(runCLI(t, cliTimeout, "ls", "--dir", dir), "after the plants were removed")
	ty.figure("plants %d (%d kinds, %d skipped: not root), refused as required %d, writer creations with planted temp names %d",
		tried, len(plants)-skipped, skipped, refused, tmpRuns)
}
