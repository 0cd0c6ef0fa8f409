package chaos_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// rig is a ring with a writer child and a follower of three readers (copy
// ordered, view ordered, in place latest) reporting progress.
type rig struct {
	t         *testing.T
	ty        *tally
	dir, name string
	path      string
	w         *child
	o         *observer
	// tornIsFigure: frames the readers accept that fail the pattern check
	// are printed, not asserted (see truncate-unaligned).
	tornIsFigure bool
	tornSeen     uint64
	gen          uint64 // the writer's generation
}

const rigReaders = 3

func newRig(t *testing.T, ty *tally, writerEnv ...string) *rig {
	t.Helper()
	r := &rig{t: t, ty: ty, dir: ringDir(t), name: testutil.Name(t)}
	r.path = ring.Path(r.dir, r.name)
	r.w = r.startWriter(writerEnv...)
	if r.w == nil {
		t.FailNow()
	}
	f := startChild(t, "follower", "DIR="+r.dir, "RING="+r.name, "SPECS=read:ordered,acquire:ordered,inplace:latest",
		"START=oldest", "PROGRESS=5")
	r.o = observe(t, f, rigReaders)
	if !r.o.waitReady(ty, "followers") || !r.o.progress(ty, "first frames", map[string]uint64{}, 5) {
		t.FailNow()
	}
	return r
}

// startWriter starts a writer of the rig's ring (64 KiB frames, 8 slots,
// a frame every ms) and waits until it opened it.
func (r *rig) startWriter(env ...string) *child {
	w := startChild(r.t, "writer", append([]string{"DIR=" + r.dir, "RING=" + r.name, "SLOTS=8", "BYTES=65536", "GAP=1ms"}, env...)...)
	l, err := w.Line(lineWait)
	if err != nil || !strings.HasPrefix(l, "ready") {
		r.ty.fail("writer of %s did not open it: %q %v; stderr %s", r.name, l, err, excerpt(w.Stderr(), 400))
		return nil
	}
	r.gen = fieldInt(strings.Fields(l), "gen")
	return w
}

// stopWriter closes the writer's stdin (it closes the ring) and checks how
// it ended.
func (r *rig) stopWriter(w *child, what string) {
	w.in.Close()
	rest, err := w.Wait(lineWait)
	if err != nil {
		if bad, why := crashed(w.Stderr(), err); bad {
			r.ty.crash("%s: writer: %s", what, why)
		} else {
			r.ty.fail("%s: writer: %v %v", what, rest, err)
		}
	}
}

// finish stops everything and checks the readers.
func (r *rig) finish(what string) []readerResult {
	results := r.o.finish(r.ty, what)
	if r.w != nil {
		r.stopWriter(r.w, what)
	}
	for _, res := range results {
		if r.tornIsFigure {
			r.tornSeen += res.Torn
			res.Torn = 0
		}
		checkAccounting(r.ty, what, res)
	}
	return results
}

func (r *rig) errFigures() string {
	r.o.mu.Lock()
	defer r.o.mu.Unlock()
	var s []string
	for c, n := range r.o.errs {
		s = append(s, fmt.Sprintf("%s %d", c, n))
	}
	slices.Sort(s)
	return "reader errors {" + strings.Join(s, ", ") + "}"
}

// TestChaosSegment attacks the segment file itself under live readers: it is
// truncated under a live writer (to 0, to the superblock, to half), removed
// under a live writer, replaced by another ring under a live writer,
// replaced by garbage while no writer runs, and truncated while no writer
// runs. Every reader must go on (or report an error and resume when a
// writer brings a valid ring back), never hang, never crash, never accept a
// torn frame; the writer must survive a truncation (ErrTruncated, then a
// reopen).
func TestChaosSegment(t *testing.T) {
	l := chaosLevel(t)
	t.Run("truncate-live", func(t *testing.T) { segTruncateLive(t, l, false) })
	t.Run("truncate-unaligned", func(t *testing.T) { segTruncateLive(t, l, true) })
	t.Run("truncate-in-callback", func(t *testing.T) { segTruncateInCallback(t, l) })
	t.Run("remove-live", func(t *testing.T) { segRemoveLive(t, l) })
	t.Run("replace-live", func(t *testing.T) { segReplaceLive(t, l) })
	t.Run("replace-dead", func(t *testing.T) { segReplaceDead(t, l) })
}

// segTruncateLive truncates the ring under its writer and readers, to page
// boundaries (0, the superblock, half the ring): every page past the cut is
// gone, and an access faults. With unaligned, it cuts in the middle of a
// page instead (half the ring + 2 KiB): the kernel zeroes the rest of that
// page, which changes a frame's bytes without the writer, so without its
// seqlock moving and without a fault. No reader can tell such a frame from
// a good one (the payload has no checksum in the format), so the frames
// accepted that fail the pattern check are printed there, not asserted;
// everything else is.
func segTruncateLive(t *testing.T, l level, unaligned bool) {
	name := "segment truncated under a live writer and readers"
	half := ring.Geometry{Slots: 8, PayloadCap: 65536, MetaCap: 64}.Size() / 2 &^ (layout.PageSize - 1)
	sizes := []int64{0, layout.SuperblockSize, half}
	if unaligned {
		name = "segment truncated mid-page under a live writer and readers"
		sizes = []int64{half + 2048, layout.SuperblockSize + 100, half + 2048}
	}
	ty := newTally(t, l, name)
	r := newRig(t, ty, "API=publish", "REOPEN=1")
	r.tornIsFigure = unaligned
	n, renumbered := 0, 0
	for round := 0; round < l.segRounds && !ty.tooManyHangs(); round++ {
		for _, size := range sizes {
			what := fmt.Sprintf("truncate to %d", size)
			r.o.mu.Lock()
			var seen uint64
			for _, f := range r.o.frame {
				seen = max(seen, f)
			}
			r.o.mu.Unlock()
			t0 := now()
			if err := os.Truncate(r.path, size); err != nil {
				t.Fatal(err)
			}
			n++
			line, err := r.w.Expect("reopen", lineWait)
			if err != nil {
				select {
				case <-r.w.Done():
					if bad, why := crashed(r.w.Stderr(), r.w.Err()); bad {
						ty.crash("%s: writer: %s", what, why)
					} else {
						ty.fail("%s: the writer exited instead of reopening the ring: %v", what, err)
					}
				default:
					ty.hang("%s: the writer did not reopen the ring: %v", what, err)
				}
				r.w.kill()
				r.w = nil
				r.finish("truncate")
				return
			}
			t.Logf("%s: writer: %s", what, line)
			gen, head := fieldInt(strings.Fields(line), "gen"), fieldInt(strings.Fields(line), "head")
			if size >= layout.SuperblockSize && (gen <= r.gen || head < seen) {
				ty.fail("%s (the superblock survives): the writer restarted the numbering: generation %d after %d, head %d after frame %d was delivered (PROTOCOL-DECISIONS D4: numbers never go back while the superblock survives)",
					what, gen, r.gen, head, seen)
				renumbered++
			}
			r.gen = gen
			if !r.o.resumed(ty, what+": readers did not resume", t0) {
				break
			}
		}
	}
	r.finish("truncate")
	ty.figure("truncations %d (sizes %v), numbering restarted with the superblock intact %d, %s", n, sizes, renumbered, r.errFigures())
	if unaligned {
		ty.figure("frames with zeroed bytes accepted %d (not asserted: undetectable without a payload checksum)", r.tornSeen)
	}
}

func segRemoveLive(t *testing.T, l level) {
	ty := newTally(t, l, "segment removed under a live writer and readers")
	r := newRig(t, ty)
	pr := newProber(t, ty)
	defer pr.close()
	n := 0
	for round := 0; round < l.segRounds && !ty.tooManyHangs(); round++ {
		marks := r.o.marks()
		if err := os.Remove(r.path); err != nil {
			t.Fatal(err)
		}
		n++
		// The writer goes on in the nameless segment, and so do its readers.
		if !r.o.progress(ty, "after rm: readers did not go on with the writer's nameless segment", marks, 20) {
			break
		}
		if res := pr.run("a new reader after rm", trial{Dir: r.dir, Ring: r.name, Ops: []string{"read"}, CallMs: 300, Reads: 1}); len(res) == 1 &&
			!(res[0].Outcome == "err" && res[0].Class == "notfound") {
			ty.fail("a new reader after rm: got %+v, want ErrNotFound", res[0])
		}
		// The writer restarts: a new ring under the name. Readers follow.
		t0 := now()
		r.stopWriter(r.w, "rm")
		if r.w = r.startWriter(); r.w == nil {
			break
		}
		if !r.o.resumed(ty, "after rm and a new writer: readers did not follow it", t0) {
			break
		}
	}
	res := r.finish("rm")
	var resets uint64
	for _, x := range res {
		resets += x.Stats.Resets
	}
	ty.figure("removals %d, reader resets %d, %s", n, resets, r.errFigures())
}

func segReplaceLive(t *testing.T, l level) {
	ty := newTally(t, l, "segment replaced under a live writer and readers")
	r := newRig(t, ty)
	n := 0
	for round := 0; round < l.segRounds && !ty.tooManyHangs(); round++ {
		// Writer B writes another ring next to it, of another geometry
		// (larger frames on even rounds: a reader's buffer sized for A's
		// frames must grow, issue 9 item 6)...
		other := fmt.Sprintf("%s-b%d", r.name, round)
		bytes := []string{"BYTES=131072", "BYTES=32768"}[round%2]
		b := startChild(t, "writer", "DIR="+r.dir, "RING="+other, "SLOTS=4", bytes, "GAP=1ms")
		b.expect(t, "ready")
		// ... which is renamed over the ring A still writes.
		marks := r.o.marks()
		if err := os.Rename(ring.Path(r.dir, other), r.path); err != nil {
			t.Fatal(err)
		}
		n++
		if !r.o.progress(ty, "after the rename: readers did not go on with writer A", marks, 20) {
			break
		}
		// A stops: its readers find the name on B's segment, and follow B.
		t0 := now()
		r.stopWriter(r.w, "replace")
		r.w = b
		if !r.o.resumed(ty, "after A stopped: readers did not move to B's segment", t0) {
			break
		}
	}
	r.finish("replace")
	ty.figure("replacements %d, %s", n, r.errFigures())
}

// garbage returns the bytes of a file that is not a valid ring: kind picks
// random bytes, a short file, a superblock with a bad checksum, a good
// checksum over an impossible geometry, or another layout version.
func garbage(rng *rand.Rand, kind int, good []byte) []byte {
	switch kind % 5 {
	case 0:
		b := make([]byte, 64<<10)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 1:
		return good[:100]
	case 2:
		b := slices.Clone(good)
		b[60] ^= 0xff
		return b
	case 3:
		b := slices.Clone(good)
		binary.LittleEndian.PutUint32(b[16:], 3) // 3 slots: not a power of two
		binary.LittleEndian.PutUint32(b[60:], crc32.Checksum(b[:60], crc32.MakeTable(crc32.Castagnoli)))
		return b
	default:
		b := slices.Clone(good)
		binary.LittleEndian.PutUint32(b[8:], 3) // version 3
		return b
	}
}

var garbageKinds = []string{"random bytes", "100 bytes", "bad checksum", "3 slots, good checksum", "version 3"}

func segReplaceDead(t *testing.T, l level) {
	ty := newTally(t, l, "segment replaced by garbage or truncated while no writer runs")
	rng := seed(t)
	r := newRig(t, ty)
	pr := newProber(t, ty)
	defer pr.close()
	n := 0
	rounds := max(l.segRounds*2, len(garbageKinds)+1)
	for k := 0; k < rounds && !ty.tooManyHangs(); k++ {
		// The writer dies; every reader notices.
		if !r.o.until(lineWait, r.o.up) {
			r.o.failWait(ty, "readers do not follow the writer", r.o.up)
			break
		}
		tk := now()
		r.w.kill()
		r.w = nil
		if !r.o.detectGone(ty, "writer killed", tk) {
			break
		}
		good, err := os.ReadFile(r.path)
		if err != nil {
			t.Fatal(err)
		}
		var what string
		if k == rounds-1 {
			what = "truncated to the superblock"
			if err := os.Truncate(r.path, layout.SuperblockSize); err != nil {
				t.Fatal(err)
			}
		} else {
			what = "replaced by " + garbageKinds[k%len(garbageKinds)]
			tmp := filepath.Join(r.dir, "garbage")
			if err := os.WriteFile(tmp, garbage(rng, k, good), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, r.path); err != nil {
				t.Fatal(err)
			}
		}
		n++
		// Readers wait for a writer (their calls keep returning: the
		// follower's watchdog counts a hang otherwise); new readers and the
		// CLI get an error.
		if res := pr.run(what+": a new reader", trial{Dir: r.dir, Ring: r.name, Ops: []string{"read", "openwait"}, CallMs: 300, Reads: 2}); len(res) == 2 {
			for _, x := range res {
				if x.Outcome == "ok" && x.Delivered > 0 {
					ty.fail("%s: a new reader (%s) delivered %d frames from it", what, x.Op, x.Delivered)
				}
			}
		}
		ty.cli(runCLI(t, cliTimeout, "ls", "--dir", r.dir), what)
		ty.cli(runCLI(t, cliTimeout, "stat", r.name, "--dir", r.dir), what)
		ty.cli(runCLI(t, cliTimeout, "recv", "--ring", r.name, "--dir", r.dir, "--count", "1", "--timeout", "500ms", "-q"), what)
		// A writer replaces it with a valid ring; the readers follow.
		t0 := now()
		if r.w = r.startWriter(); r.w == nil {
			break
		}
		if !r.o.resumed(ty, what+", then a new writer: readers did not follow it", t0) {
			break
		}
	}
	r.finish("garbage")
	ty.figure("segments replaced by garbage or truncated %d, %s", n, r.errFigures())
}

// segTruncateInCallback truncates the ring while a ReadInPlace callback
// works on a frame (from inside the callback, so it always lands there),
// keeping the frame's slot header and dropping its payload: the callback
// faults, and the seqlock never moved. ReadInPlace must report the
// truncation, and the frame must not count as delivered: the reader's
// function never got to finish with it.
func segTruncateInCallback(t *testing.T, l level) {
	ty := newTally(t, l, "segment truncated inside a ReadInPlace callback")
	dir := ringDir(t)
	tdir := ringDir(t)
	if !prepareRing(t, ty, tdir, "template", 65536, 16) {
		t.FailNow()
	}
	template, err := os.ReadFile(ring.Path(tdir, "template"))
	if err != nil {
		t.Fatal(err)
	}
	pr := newProber(t, ty)
	defer pr.close()
	n, counted := 0, 0
	for k := 0; k < 8; k++ {
		path := ring.Path(dir, "victim")
		os.Remove(path)
		if err := os.WriteFile(path, template, 0o600); err != nil {
			t.Fatal(err)
		}
		start := []string{"oldest", "newest"}[k%2]
		what := fmt.Sprintf("truncated inside the callback (start at %s, %s)", start, []string{"ordered", "latest"}[k/2%2])
		res := pr.run(what, trial{Dir: dir, Ring: "victim", Ops: []string{"inplace-truncate"}, CallMs: 1000, Start: start,
			Mode: []string{"ordered", "latest"}[k/2%2], HungMs: 1000, Slice: 20})
		n++
		for _, r := range res {
			if r.Errs["truncated"] != 1 {
				ty.fail("%s: ReadInPlace returned %v, want ErrTruncated (%v)", what, r.Errs, r.First)
			}
			if r.Delivered != 0 {
				counted++
				ty.fail("%s: ReadInPlace reported the truncation, but Stats.Delivered counts the frame (%d)", what, r.Delivered)
			}
			if len(r.Bad) > 0 {
				ty.fail("%s: delivered + dropped != frames in the window", what)
			}
		}
	}
	ty.figure("truncations inside a callback %d, frames counted delivered anyway %d", n, counted)
}
