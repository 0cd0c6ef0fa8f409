package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// plantTmp makes a writer's temporary file in dir, aged by age.
func plantTmp(t *testing.T, dir, name string, age time.Duration) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTempFiles plants temporary files as writers leave them: one locked
// by its (live) writer, one unlocked and old (its writer died), one
// unlocked and young (a writer between creating and locking it), one a
// FIFO. ls shows each with its state (text and JSON), rm --stale removes
// only the stale one, and nothing blocks on the FIFO.
func TestTempFiles(t *testing.T) {
	dir := testutil.ShmDir(t)
	locked := plantTmp(t, dir, ".framering-tmp.cam0.0123456789abcdef", time.Minute)
	stale := plantTmp(t, dir, ".framering-tmp.4242.cam1", time.Minute)
	young := plantTmp(t, dir, ".framering-tmp.cam2.fedcba9876543210", 0)
	fifo := filepath.Join(dir, ".framering-tmp.cam3.0000000000000000")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := shm.Open(locked, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.LockWrite(); err != nil { // an OFD lock of this process: another description than ls's
		t.Fatal(err)
	}
	want := map[string]string{filepath.Base(locked): "being built", filepath.Base(stale): "stale",
		filepath.Base(young): "being built", filepath.Base(fifo): "not a regular file"}

	ls := cli(t, "ls", "--dir", dir)
	if ls.code != 0 {
		t.Fatalf("ls: exit %d\n%s", ls.code, ls.stderr)
	}
	for name, state := range want {
		if !strings.Contains(ls.stdout, name) || !regexpLine(ls.stdout, name, "temporary ("+state+")") {
			t.Errorf("ls does not show %s as %q:\n%s", name, state, ls.stdout)
		}
	}
	js := cli(t, "ls", "--dir", dir, "--json")
	var out struct {
		Rings []json.RawMessage `json:"rings"`
		Temp  []struct {
			Name, Path, State string
			Bytes             int64
			Age               float64 `json:"age_seconds"`
		} `json:"temporary_files"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &out); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, js.stdout)
	}
	if len(out.Temp) != 4 || len(out.Rings) != 0 {
		t.Fatalf("ls --json: %+v", out)
	}
	for _, tf := range out.Temp {
		if want[tf.Name] != tf.State || tf.Path != filepath.Join(dir, tf.Name) {
			t.Errorf("ls --json: %+v, want state %q", tf, want[tf.Name])
		}
		if tf.Name == filepath.Base(stale) && (tf.Bytes != 8192 || tf.Age < 50) {
			t.Errorf("ls --json: stale file %+v", tf)
		}
	}

	rm := cli(t, "rm", "--stale", "--dir", dir)
	if rm.code != 0 || !strings.Contains(rm.stdout, "removed stale temporary file "+stale) {
		t.Fatalf("rm --stale: exit %d\n%s%s", rm.code, rm.stdout, rm.stderr)
	}
	if strings.Count(rm.stdout, "removed") != 1 {
		t.Errorf("rm --stale removed more than the stale file:\n%s", rm.stdout)
	}
	for _, p := range []string{locked, young, fifo} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("rm --stale removed %s: %v", p, err)
		}
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale file is still there: %v", err)
	}
	// Its writer gone, the locked one is stale too.
	f.Close()
	if rm := cli(t, "rm", "--stale", "--dir", dir); rm.code != 0 || !strings.Contains(rm.stdout, locked) {
		t.Errorf("rm --stale after the writer closed: exit %d\n%s%s", rm.code, rm.stdout, rm.stderr)
	}
}

// regexpLine reports whether a line of text contains both a and b.
func regexpLine(text, a, b string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, a) && strings.Contains(l, b) {
			return true
		}
	}
	return false
}

// TestRm removes rings: refused while the writer lives (naming its pid),
// done with --force or once the writer is gone; a missing name fails
// unless --force; a FIFO under a ring's name is removed without blocking.
func TestRm(t *testing.T) {
	dir := testutil.ShmDir(t)
	live, done := testutil.Name(t)+"-live", testutil.Name(t)+"-done"
	send := start(t, "send", "--ring", live, "--dir", dir, "--pattern", "16x8x1", "--fps", "50", "-q")
	if _, err := send.Expect("ring ", shortWait); err != nil {
		t.Fatal(err)
	}
	if res := cli(t, "send", "--ring", done, "--dir", dir, "--pattern", "16x8x1", "--count", "2", "--fps", "0", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}

	res := cli(t, "rm", "--dir", dir, live)
	pid := strconv.Itoa(send.Cmd.Process.Pid)
	if res.code != 1 || !strings.Contains(res.stderr, "writer pid "+pid+" holds its lock") || !strings.Contains(res.stderr, "--force") {
		t.Errorf("rm of a live ring: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(ring.Path(dir, live)); err != nil {
		t.Errorf("rm removed a live ring: %v", err)
	}
	res = cli(t, "rm", "--dir", dir, done)
	if res.code != 0 || !strings.Contains(res.stdout, `removed ring "`+done+`"`) {
		t.Errorf("rm of a finished ring: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = cli(t, "rm", "--dir", dir, done)
	if res.code != 1 || !strings.Contains(res.stderr, "does not exist") || !strings.Contains(res.stderr, "framering ls") {
		t.Errorf("rm of a missing ring: exit %d\n%s", res.code, res.stderr)
	}
	if res := cli(t, "rm", "--dir", dir, "--force", done); res.code != 0 {
		t.Errorf("rm --force of a missing ring: exit %d\n%s", res.code, res.stderr)
	}
	// Two names, one refused: both errors are told, the other ring goes.
	other := testutil.Name(t) + "-other"
	cli(t, "send", "--ring", other, "--dir", dir, "--pattern", "16x8x1", "--count", "1", "--fps", "0", "-q")
	res = cli(t, "rm", "--dir", dir, live, "nothere", other)
	if res.code != 1 || !strings.Contains(res.stdout, other) || !strings.Contains(res.stderr, "rm: 2 errors") ||
		!strings.Contains(res.stderr, `"nothere"`) || !strings.Contains(res.stderr, "writer pid "+pid) {
		t.Errorf("rm of three rings, two failing: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = cli(t, "rm", "--dir", dir, "--force", live)
	if res.code != 0 {
		t.Errorf("rm --force of a live ring: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(ring.Path(dir, live)); !os.IsNotExist(err) {
		t.Errorf("rm --force left the ring: %v", err)
	}
	send.Signal(syscall.SIGTERM)
	if res := finish(t, send); res.code != 0 {
		t.Errorf("the writer of a removed ring: exit %d\n%s", res.code, res.stderr)
	}

	fifo := testutil.Name(t) + "-fifo"
	if err := syscall.Mkfifo(ring.Path(dir, fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := cli(t, "rm", "--dir", dir, fifo); res.code != 0 {
		t.Errorf("rm of a FIFO: exit %d\n%s", res.code, res.stderr)
	}
	if left := ringFiles(t, dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestLsStatJSON checks the JSON of ls and stat against a ring of known
// content.
func TestLsStatJSON(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	if res := cli(t, "send", "--ring", name, "--dir", dir, "--pattern", "20x10x3", "--count", "5", "--fps", "0", "--slots", "4", "-q"); res.code != 0 {
		t.Fatalf("send: %d\n%s", res.code, res.stderr)
	}
	bad := testutil.Name(t) + "-bad"
	os.WriteFile(ring.Path(dir, bad), []byte("not a ring"), 0o600)

	res := cli(t, "ls", "--dir", dir, "--json")
	var ls lsOutput
	if err := json.Unmarshal([]byte(res.stdout), &ls); err != nil || res.code != 0 {
		t.Fatalf("ls --json: exit %d, %v\n%s", res.code, err, res.stdout)
	}
	if ls.Dir != dir || len(ls.Rings) != 2 || ls.Temp == nil {
		t.Fatalf("ls --json: %+v", ls)
	}
	var r, b lsRing
	for _, x := range ls.Rings {
		switch x.Name {
		case name:
			r = x
		case bad:
			b = x
		}
	}
	if b.State != "unreadable" || !strings.Contains(b.Error, "truncated") {
		t.Errorf("ls --json, a corrupt file: %+v", b)
	}
	if r.State != "gone" || r.Slots != 4 || r.SlotBytes != 600 || r.MetaBytes != 4096 || r.Head != 5 || r.FramesTotal != 5 ||
		r.BytesTotal != 3000 || r.Generation != 1 || r.Frame == nil || *r.Frame != (lsFrame{20, 10, 3, "bgr8", 600}) ||
		r.NewestAge == nil || *r.NewestAge < 0 || r.RateFPS != 0 || r.Path != ring.Path(dir, name) || r.FileBytes == 0 {
		t.Errorf("ls --json: %+v", r)
	}
	// The documented field names, literally.
	for _, k := range []string{`"dir"`, `"rings"`, `"temporary_files"`, `"writer_pid"`, `"slot_bytes"`, `"frames_total"`, `"rate_fps"`, `"newest_age_seconds"`, `"heartbeat_age_seconds"`} {
		if !strings.Contains(res.stdout, k) {
			t.Errorf("ls --json lacks %s", k)
		}
	}

	res = cli(t, "stat", "--dir", dir, "--json", name)
	var st statOutput
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || res.code != 0 {
		t.Fatalf("stat --json: exit %d, %v\n%s", res.code, err, res.stdout)
	}
	if st.Ring != name || st.Head != 5 || st.FramesTotal != 5 || st.Generation != 1 || st.WriterState != "gone" ||
		st.Superblock.Magic != "FRMRING\x00" || st.Superblock.Version != 2 || st.Superblock.SlotCount != 4 || st.Superblock.PayloadCap != 600 ||
		len(st.Slots) != 4 || st.Mode != "0600" || st.Created == nil {
		t.Errorf("stat --json: %+v", st)
	}
	frames := map[uint64]bool{}
	for _, s := range st.Slots {
		if s.State != "even" || s.Width != 20 || s.Format != "bgr8" || s.PayloadLen != 600 || s.PublishAge == nil || s.Wall == nil {
			t.Errorf("stat --json slot %+v", s)
		}
		frames[s.Frame] = true
	}
	for n := uint64(2); n <= 5; n++ {
		if !frames[n] {
			t.Errorf("stat --json: no slot holds frame %d: %+v", n, st.Slots)
		}
	}
}
