package chaos_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/ring"
)

// field is a field of the superblock or of a slot header (docs/PROTOCOL.md
// §3, §4).
type field struct {
	name      string
	off, size int
}

var superFields = []field{
	{"Magic", 0, 8}, {"Version", 8, 4}, {"SuperSize", 12, 4}, {"SlotCount", 16, 4}, {"MetaCap", 20, 4},
	{"SlotStride", 24, 8}, {"PayloadOffset", 32, 8}, {"PayloadCap", 40, 8}, {"FileSize", 48, 8}, {"Flags", 56, 4},
	{"Checksum", 60, 4}, {"WriterPID", 64, 4}, {"WriterStart", 72, 8}, {"Generation", 80, 8}, {"Created", 88, 8},
	{"Heartbeat", 128, 8}, {"Head", 192, 8}, {"Notify", 200, 4}, {"FramesTotal", 256, 8}, {"BytesTotal", 264, 8},
}

var slotFields = []field{
	{"Seq", 0, 8}, {"FrameNo", 8, 8}, {"Generation", 16, 8}, {"Width", 24, 4}, {"Height", 28, 4},
	{"Channels", 32, 4}, {"Format", 36, 4}, {"Stride", 40, 4}, {"MetaLen", 44, 4}, {"PayloadLen", 48, 8},
	{"PublishNs", 56, 8}, {"CaptureNs", 64, 8}, {"WallNs", 72, 8},
}

// Weights of the fields: the words every reader acts on (a slot's Seq,
// FrameNo and PayloadLen; the superblock's Head, Generation and Heartbeat)
// more often than the rest.
var (
	superWeights = map[string]int{"Head": 8, "Generation": 3, "Heartbeat": 3, "SlotCount": 2, "PayloadCap": 2, "Checksum": 2}
	slotWeights  = map[string]int{"Seq": 8, "FrameNo": 4, "PayloadLen": 3, "Format": 2, "MetaLen": 2}
)

// pick draws a field; a field not in weights weighs 1.
func pick(rng *rand.Rand, fs []field, weights map[string]int) field {
	total := 0
	for _, f := range fs {
		total += max(weights[f.name], 1)
	}
	x := rng.IntN(total)
	for _, f := range fs {
		if x -= max(weights[f.name], 1); x < 0 {
			return f
		}
	}
	return fs[len(fs)-1]
}

// damage is one change the corruption made.
type damage struct {
	slot     int // -1: the superblock
	what     string
	off      int64 // in the file
	old, new []byte
}

func (d damage) String() string {
	return fmt.Sprintf("%s %x->%x", d.what, d.old, d.new)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// corruption picks 1 to 3 changes to the superblock or slot headers of a
// file whose current bytes are cur, applies them to cur and returns them.
// Values are random bytes, a flipped bit, the value ±1 or ±slots, or one of
// the values that break arithmetic (0, 1, 2^31, 2^32-1, 2^63, 2^64-2,
// 2^64-1); a Seq is made odd two times in five. A change to the static
// geometry gets a recomputed checksum half of the time, so the deeper
// checks are reached too.
func corruption(rng *rand.Rand, cur []byte, g ring.Geometry) []damage {
	stride := layout.SlotStride(g)
	n := 1
	if x := rng.IntN(10); x >= 9 {
		n = 3
	} else if x >= 7 {
		n = 2
	}
	var out []damage
	for range n {
		slot, base := -1, int64(0)
		var f field
		switch {
		case rng.IntN(2) == 0 && rng.IntN(10) > 0:
			f = pick(rng, superFields, superWeights)
		case rng.IntN(10) == 0:
			// A random byte anywhere in the superblock page or in a slot
			// header and metadata area.
			if rng.IntN(2) == 0 {
				f = field{fmt.Sprintf("super[%d]", 0), rng.IntN(layout.SuperblockSize), 1}
				f.name = fmt.Sprintf("super byte %d", f.off)
			} else {
				slot = rng.IntN(g.Slots)
				f = field{"", rng.IntN(layout.SlotHeaderSize + g.MetaCap), 1}
				f.name = fmt.Sprintf("byte %d", f.off)
			}
		default:
			slot = rng.IntN(g.Slots)
			f = pick(rng, slotFields, slotWeights)
		}
		if slot >= 0 {
			base = int64(layout.SuperblockSize) + int64(slot)*stride
		}
		off := base + int64(f.off)
		old := slices.Clone(cur[off : off+int64(f.size)])
		nb := value(rng, old, f, g)
		copy(cur[off:], nb)
		what := "super." + f.name
		if slot >= 0 {
			what = fmt.Sprintf("slot%d.%s", slot, f.name)
		}
		d := damage{slot: slot, what: what, off: off, old: old, new: nb}
		out = append(out, d)
		if slot < 0 && f.off < 60 && rng.IntN(2) == 0 {
			sum := make([]byte, 4)
			binary.LittleEndian.PutUint32(sum, crc32.Checksum(cur[:60], castagnoli))
			out = append(out, damage{slot: -1, what: "super.Checksum (recomputed)", off: 60, old: slices.Clone(cur[60:64]), new: sum})
			copy(cur[60:], sum)
		}
	}
	return out
}

func value(rng *rand.Rand, old []byte, f field, g ring.Geometry) []byte {
	b := make([]byte, len(old))
	var v uint64
	if len(old) == 8 {
		v = binary.LittleEndian.Uint64(old)
	} else if len(old) == 4 {
		v = uint64(binary.LittleEndian.Uint32(old))
	} else {
		v = uint64(old[0])
	}
	put := func(x uint64) []byte {
		switch len(b) {
		case 8:
			binary.LittleEndian.PutUint64(b, x)
		case 4:
			binary.LittleEndian.PutUint32(b, uint32(x))
		default:
			b[0] = byte(x)
		}
		return b
	}
	if f.name == "Seq" && rng.IntN(5) < 2 {
		if v&1 == 0 {
			return put(v + 1)
		}
		return put(v | 1)
	}
	switch rng.IntN(10) {
	case 0, 1, 2:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 3, 4:
		copy(b, old)
		b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		return b
	case 5:
		return put(v + 1)
	case 6:
		return put(v - 1)
	case 7:
		return put(v + uint64(g.Slots) + uint64(rng.IntN(1000)))
	default:
		specials := []uint64{0, 1, 1 << 31, math.MaxUint32, 1 << 63, math.MaxUint64 - 1, math.MaxUint64, v - uint64(g.Slots)}
		return put(specials[rng.IntN(len(specials))])
	}
}

// TestChaosCorrupt damages the superblock and slot headers of a ring at
// random (see corruption) in at least 1,000 trials in the full suite, with
// the writer dead (no lock), stopped (lock held, heartbeat stale) and
// running (publishing a frame every ms while the bytes change under it;
// before the next trial it has rewritten every slot, so that a damaged
// slot header is only ever seen by the trial that damaged it).
// Each trial runs every reader API (Open + Read, Acquire/Release,
// ReadInPlace, OpenWait + Read) in a prober child with a 300 ms deadline
// per call, and, with the writer dead or stopped, a writer's Open of the
// damaged ring (it must take it over or replace it, or say busy while the
// lock is held) followed by a reader that must get the writer's frame.
// Every few trials the CLI runs too (ls, stat, recv --count --timeout), and
// a metrics exporter on the directory is scraped after every trial.
//
// Asserted: no hang (a call past its deadline and grace), no crash, no
// frame accepted that fails the pattern check unless its slot header was
// damaged (a damaged but stable header can name another frame's number or
// length: no reader can tell; those are printed), a writer can always
// recover the ring.
func TestChaosCorrupt(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "random corruption of superblock and slot headers")
	rng := seed(t)
	dir := ringDir(t)
	tdir := ringDir(t)
	const name = "victim"
	cliBin(t) // build it now, not in a goroutine
	g := ring.Geometry{Slots: 8, PayloadCap: 4096, MetaCap: 64}
	path := ring.Path(dir, name)

	// The template: a ring with 16 frames whose writer closed.
	if !prepareRing(t, ty, tdir, "template", g.PayloadCap, 2*g.Slots) {
		t.FailNow()
	}
	template, err := os.ReadFile(ring.Path(tdir, "template"))
	if err != nil {
		t.Fatal(err)
	}

	exp := startExporter(t, dir)
	pr := newProber(t, ty)
	defer pr.close()
	st := &corruptStats{outcomes: map[string]int{}}
	modes := []string{"dead", "stopped", "running"}
	for mi, mode := range modes {
		runCorruptMode(t, ty, l, rng, st, pr, exp, mode, l.trials[mi], dir, name, path, g, template)
	}

	runLegacyCorrupt(t, ty, l, rng, st, pr, dir)

	var oc []string
	for k, n := range st.outcomes {
		oc = append(oc, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(oc)
	ty.figure("trials %d (dead %d, stopped %d, running %d), reader/writer calls %d, frames delivered %d; legacy slot trials %d",
		st.trials[0]+st.trials[1]+st.trials[2], st.trials[0], st.trials[1], st.trials[2], st.calls, st.delivered, st.legacy)
	ty.figure("frames from a damaged slot header accepted %d (not asserted)", st.unchecked)
	ty.figure("CLI runs %d, scrapes %d, writer restarts %d", st.cli, st.scrapes, st.writerRestarts)
	ty.figure("outcomes {%s}", strings.Join(oc, ", "))
}

type corruptStats struct {
	mu                               sync.Mutex
	trials                           [3]int
	calls, delivered, unchecked, cli int
	scrapes, writerRestarts          int
	legacy                           int
	outcomes                         map[string]int
}

func runCorruptMode(t *testing.T, ty *tally, l level, rng *rand.Rand, st *corruptStats, pr *prober, exp *exporter,
	mode string, trials int, dir, name, path string, g ring.Geometry, template []byte) {
	mi := slices.Index([]string{"dead", "stopped", "running"}, mode)
	var (
		lockFD   = -1
		w        *child
		snapshot []byte // running: the static and per-open superblock words
	)
	defer func() {
		if lockFD >= 0 {
			unix.Close(lockFD)
		}
		if w != nil {
			w.in.Close()
			w.Wait(lineWait)
		}
		os.Remove(path)
	}()
	var damagedAt uint64
	var ok bool
	startWriter := func() bool {
		w = startChild(t, "writer", "DIR="+dir, "RING="+name, "SLOTS=8", fmt.Sprintf("BYTES=%d", g.PayloadCap), "META=64", "GAP=1ms")
		if _, err := w.Expect("ready", lineWait); err != nil {
			ty.fail("running: the writer did not open the ring: %v", err)
			return false
		}
		b := make([]byte, 128)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		snapshot = b
		return true
	}
	if mode == "running" {
		os.Remove(path)
		if !startWriter() {
			return
		}
	}
	// Each mode gets its own budget of hangs, so that a library that hangs
	// in one still shows how it fares in the others.
	hangs0 := ty.hangCount()
	for k := 0; k < trials && ty.hangCount()-hangs0 < ty.maxHangs; k++ {
		// Prepare the file: a fresh copy of the template (dead, stopped), or
		// the live ring with its static words restored (running).
		var cur []byte
		switch mode {
		case "dead", "stopped":
			if lockFD >= 0 {
				unix.Close(lockFD)
				lockFD = -1
			}
			os.Remove(path)
			cur = slices.Clone(template)
			if mode == "stopped" {
				// A stopped writer: the lock is held, the heartbeat a minute old.
				binary.LittleEndian.PutUint64(cur[128:], uint64(ring.Now()-60e9))
			}
		case "running":
			select {
			case <-w.Done():
				if bad, why := crashed(w.Stderr(), w.Err()); bad {
					ty.crash("running, trial %d: the writer died: %s", k, why)
				} else {
					ty.fail("running, trial %d: the writer exited: %v; %s", k, w.Err(), excerpt(w.Stderr(), 400))
				}
				st.writerRestarts++
				if !startWriter() {
					return
				}
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cur = b
			copy(cur, snapshot)
		}
		dmg := corruption(rng, cur, g)
		desc := make([]string, len(dmg))
		for i, d := range dmg {
			desc[i] = d.String()
		}
		what := fmt.Sprintf("%s trial %d [%s]", mode, k, strings.Join(desc, "; "))
		switch mode {
		case "dead", "stopped":
			if err := os.WriteFile(path, cur, 0o600); err != nil {
				t.Fatal(err)
			}
			if mode == "stopped" {
				fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				lk := unix.Flock_t{Type: unix.F_WRLCK}
				if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err != nil {
					t.Fatal(err)
				}
				lockFD = fd
			}
		case "running":
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(snapshot, 0) // restore the words earlier trials changed
			for _, d := range dmg {
				f.WriteAt(d.new, d.off)
			}
			f.Close()
			// Where the writer was when the damage landed: before the next
			// trial it must have rewritten every slot since, so that no
			// damaged slot header of this trial outlives it.
			if damagedAt, ok = writerAt(w); !ok {
				ty.fail("%s: the writer does not answer", what)
				return
			}
		}
		ops := []string{"read", "acquire", "inplace", "openwait"}
		if mode != "running" {
			ops = append(ops, "writer", "readnewest")
		}
		mo := "ordered"
		if k%2 == 1 {
			mo = "latest"
		}
		hung := 2000
		if mode == "stopped" {
			hung = 200
		}
		tr := trial{Dir: dir, Ring: name, Ops: ops, CallMs: 300, Reads: 2*g.Slots + 2, Mode: mo, Start: "oldest",
			Slots: g.Slots, Bytes: g.PayloadCap, HungMs: hung, Slice: 10}
		res := pr.run(what, tr)
		st.trials[mi]++
		st.calls += len(ops)
		damagedSlot := map[int]bool{}
		for _, d := range dmg {
			if d.slot >= 0 {
				damagedSlot[d.slot] = true
			}
		}
		var writerOK bool
		for _, r := range res {
			key := r.Op + ": " + r.Outcome
			if r.Outcome == "err" {
				key += " " + r.Class
			}
			st.outcomes[key]++
			for c, n := range r.Errs {
				st.outcomes[r.Op+" then "+c] += n
			}
			st.delivered += r.Delivered
			var torn []uint64
			for _, n := range r.Bad {
				if damagedSlot[int(n%uint64(g.Slots))] {
					st.unchecked++
					continue
				}
				torn = append(torn, n)
			}
			ty.tornFrame(len(torn), "%s: %s accepted frames %v that fail the pattern check (their slots were not damaged)", what, r.Op, torn)
			switch r.Op {
			case "writer":
				switch {
				case mode == "dead" && r.Outcome != "ok":
					ty.fail("%s: a writer could not open the damaged ring: %s: %s", what, r.Class, r.Msg)
				case mode == "stopped" && !(r.Outcome == "err" && r.Class == "busy"):
					ty.fail("%s: a writer opening a ring whose lock is held: %s %s %s, want ErrBusy", what, r.Outcome, r.Class, r.Msg)
				}
				writerOK = r.Outcome == "ok"
			case "readnewest":
				if writerOK && (r.Outcome != "ok" || r.Delivered != 1) {
					ty.fail("%s: after a writer opened the damaged ring and published, a new reader did not get that frame: %+v", what, r)
				}
			}
		}
		// The CLI, every few trials; the exporter, every trial.
		if k%l.cliEvery == 0 {
			runs := [][]string{
				{"ls", "--dir", dir},
				{"stat", name, "--dir", dir},
				{"recv", "--ring", name, "--dir", dir, "--count", "3", "--timeout", "500ms", "-q"},
			}
			for _, r := range runCLIs(t, runs...) {
				ty.cli(r, what)
			}
			st.cli += len(runs)
		}
		exp.scrape(ty, what, true)
		st.scrapes++
		if mode == "running" {
			for deadline := time.Now().Add(lineWait); ; {
				at, ok := writerAt(w)
				if !ok || time.Now().After(deadline) {
					ty.fail("%s: the writer does not answer, or publishes nothing (at frame %d)", what, at)
					return
				}
				if at > damagedAt+uint64(g.Slots) {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if h := ty.hangCount() - hangs0; h >= ty.maxHangs {
		ty.figure("%s: STOPPED EARLY after %d hangs, at trial %d of %d", mode, h, st.trials[mi], trials)
	}
}

// legacyFields are the legacy slot's header fields (legacy/doc.go).
var legacyFields = []field{{"width", 0, 4}, {"height", 4, 4}, {"channels", 8, 4}, {"timestamp_ms", 12, 8}, {"frame_valid", 20, 4}}

// runLegacyCorrupt damages the 24-byte header of a legacy slot holding a
// 64x64 BGR frame (random bytes, flipped bits, 0, 1, -1, 2^20, 2^31-1, the
// other sizes) and reads it with the legacy reader under a deadline: no
// hang, no crash, and a frame it returns has exactly the pixels its header
// names.
func runLegacyCorrupt(t *testing.T, ty *tally, l level, rng *rand.Rand, st *corruptStats, pr *prober, dir string) {
	const name = "legacy-victim"
	good := make([]byte, 24+64*64*3)
	binary.LittleEndian.PutUint32(good[0:], 64)
	binary.LittleEndian.PutUint32(good[4:], 64)
	binary.LittleEndian.PutUint32(good[8:], 3)
	binary.LittleEndian.PutUint64(good[12:], 1700000000000)
	binary.LittleEndian.PutUint32(good[20:], 1)
	hangs0 := ty.hangCount()
	trials := l.trials[0] / 2
	for k := 0; k < trials && ty.hangCount()-hangs0 < ty.maxHangs; k++ {
		cur := slices.Clone(good)
		var desc []string
		for range 1 + rng.IntN(3) {
			f := legacyFields[rng.IntN(len(legacyFields))]
			old := slices.Clone(cur[f.off : f.off+f.size])
			var nb []byte
			if rng.IntN(2) == 0 {
				nb = value(rng, old, f, ring.Geometry{Slots: 8})
			} else {
				nb = make([]byte, f.size)
				specials := []uint32{0, 1, math.MaxUint32, 1 << 20, 1<<20 + 1, math.MaxInt32, 4, 2}
				binary.LittleEndian.PutUint32(nb, specials[rng.IntN(len(specials))])
			}
			copy(cur[f.off:], nb)
			desc = append(desc, fmt.Sprintf("%s %x->%x", f.name, old, nb))
		}
		if err := os.WriteFile(filepath.Join(dir, name), cur, 0o600); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("legacy trial %d [%s]", k, strings.Join(desc, "; "))
		res := pr.run(what, trial{Dir: dir, Legacy: name, Ops: []string{"legacy"}, CallMs: 300})
		st.legacy++
		for _, r := range res {
			key := "legacy: " + r.Outcome
			if r.Outcome == "err" {
				key += " " + r.Class
			}
			for c := range r.Errs {
				key += " then " + c
			}
			st.outcomes[key]++
			if len(r.Bad) > 0 {
				ty.fail("%s: the legacy reader returned a frame whose %d pixel bytes do not match its header", what, r.Bad[0])
			}
		}
	}
	os.Remove(filepath.Join(dir, name))
}

// writerAt asks a writer child which frame it committed last.
func writerAt(w *child) (uint64, bool) {
	if w.send("where") != nil {
		return 0, false
	}
	l, err := w.Expect("at ", lineWait)
	if err != nil {
		return 0, false
	}
	var n uint64
	_, err = fmt.Sscanf(l, "at %d", &n)
	return n, err == nil
}
