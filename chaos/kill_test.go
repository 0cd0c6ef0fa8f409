package chaos_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/testutil"
	"github.com/framering/framering/ring"
)

// oddSlots counts the slots of a ring file whose seqlock word is odd (a
// writer died inside them), reading the file, not mapping it.
func oddSlots(t *testing.T, path string, g ring.Geometry) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	stride := layout.SlotStride(g)
	n := 0
	for i := 0; i < g.Slots; i++ {
		off := int64(layout.SuperblockSize) + int64(i)*stride
		if off+8 <= int64(len(b)) && binary.LittleEndian.Uint64(b[off:])&1 == 1 {
			n++
		}
	}
	return n
}

// TestChaosKillMidFrame kills the writer with SIGKILL, again and again,
// while four readers (copy, view, in place; ordered and latest) follow it,
// then starts a new writer. Half of the kills land inside a loan by a hook
// (the writer has half-filled frame N with another frame's bytes and
// blocks), half at a random moment while the writer publishes 256 KiB frames
// unpaced (mostly inside a copy). Every reader must report each death
// (detection time printed), resume with the next writer, accept no torn
// frame, and account for every frame of its window.
func TestChaosKillMidFrame(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "writer SIGKILL mid-frame")
	rng := seed(t)
	dir, name := ringDir(t), testutil.Name(t)
	g := ring.Geometry{Slots: 8, PayloadCap: 256 << 10, MetaCap: 64}
	wenv := []string{"DIR=" + dir, "RING=" + name, "SLOTS=8", fmt.Sprintf("BYTES=%d", g.PayloadCap), "META=64"}
	const readers = 4
	f := startChild(t, "follower", "DIR="+dir, "RING="+name, "SPECS=read:ordered,acquire:ordered,inplace:latest,read:latest", "START=oldest")
	o := observe(t, f, readers)

	var hooked, random, oddAfter, resumed int
	path := ring.Path(dir, name)
	for k := 0; k < l.kills && !ty.tooManyHangs(); k++ {
		hook := k%2 == 0
		env := slices.Clone(wenv)
		if hook {
			env = append(env, fmt.Sprintf("MIDFRAME_AFTER=%d", 1+rng.IntN(24)), "GAP=1ms")
		}
		w := startChild(t, "writer", env...)
		ready, err := w.Expect("ready", lineWait)
		if err != nil {
			ty.fail("kill %d: writer did not open: %v", k, err)
			break
		}
		gen := fieldInt(strings.Fields(ready), "gen")
		// Every reader follows this writer before it dies.
		cond := func(idx string) bool { return o.gen[idx] >= gen && o.up(idx) }
		if !o.until(lineWait, cond) {
			o.failWait(ty, fmt.Sprintf("kill %d: readers did not get a frame of generation %d (resume after the previous kill)", k, gen), cond)
			w.kill()
			break
		}
		if k > 0 {
			resumed++
		}
		if hook {
			if _, err := w.Expect("midframe", lineWait); err != nil {
				ty.fail("kill %d: writer did not reach its mid-frame hook: %v", k, err)
				w.kill()
				break
			}
			hooked++
		} else {
			time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
			random++
		}
		t0 := now()
		w.kill()
		if oddSlots(t, path, g) > 0 {
			oddAfter++
		}
		if !o.detectGone(ty, fmt.Sprintf("kill %d (%s)", k, map[bool]string{true: "hook", false: "random"}[hook]), t0) {
			break
		}
	}
	// A last writer: every reader resumes once more, then they finish.
	w := startChild(t, "writer", append(slices.Clone(wenv), "COUNT=20", "LINGER=1")...)
	if ready, err := w.Expect("ready", lineWait); err == nil {
		gen := fieldInt(strings.Fields(ready), "gen")
		cond := func(idx string) bool { return o.gen[idx] >= gen }
		if o.until(lineWait, cond) {
			resumed++
		} else {
			o.failWait(ty, "after the last kill: readers did not resume", cond)
		}
	} else {
		ty.fail("last writer: %v", err)
	}
	results := o.finish(ty, "followers")
	w.in.Close()
	w.Wait(lineWait)
	var delivered, dropped, gones uint64
	for _, r := range results {
		checkAccounting(ty, "kill", r)
		delivered += r.Stats.Delivered
		dropped += r.Stats.Dropped
		gones += r.Stats.WriterGone
	}
	ty.figure("kills %d (%d in a loan by the hook, %d at random; %d left an odd slot)", hooked+random, hooked, random, oddAfter)
	ty.figure("readers %d, writer-gone reports %d, resumes %d", readers, gones, resumed)
	ty.figure("delivered %d, dropped %d", delivered, dropped)
	if hooked > 0 && oddAfter < hooked {
		ty.fail("only %d of %d hooked kills left an odd slot: the hook does not kill mid-frame", oddAfter, hooked)
	}
}

// killPoint classifies what a writer killed while opening left behind.
func killPoint(dir, name string, ino0 uint64) string {
	path := ring.Path(dir, name)
	var parts []string
	if n := len(tmpFiles(dir)); n > 0 {
		parts = append(parts, "temp file")
	}
	switch ino := inodeOf(path); {
	case ino == 0:
		parts = append(parts, "no ring")
	case ino != ino0:
		parts = append(parts, fmt.Sprintf("new ring gen %d", genOf(path)))
	default:
		parts = append(parts, fmt.Sprintf("old ring gen %d", genOf(path)))
	}
	return strings.Join(parts, " + ")
}

// TestChaosKillDuringCreate kills a writer while it opens a ring: creating a
// fresh one, replacing one of another geometry, or taking over one of the
// same geometry. The kill comes at a step the child sees from the file
// system (a temporary file exists, has its size, holds a superblock; the
// name points at a new inode; the generation went up) or after a random
// delay; every third step-kill first stops the child there (SIGSTOP) and
// probes the ring with a reader and the CLI. After each kill: a reader
// opening the ring and the CLI must not hang or crash; a new writer must
// open the ring and publish; once the leftovers are old, that writer must
// have reclaimed every temporary file of the dead one (issue 9, item 9).
func TestChaosKillDuringCreate(t *testing.T) {
	l := chaosLevel(t)
	ty := newTally(t, l, "writer SIGKILL during creation")
	rng := seed(t)
	dir := ringDir(t)
	const size = 2 << 20 // 8 slots: a 16 MiB ring
	// A takeover builds no new file: only the generation step exists.
	steps := map[string][]string{
		"fresh":    {"", "tmp", "tmpsized", "tmpformat", "named", "gen"},
		"replace":  {"", "tmp", "tmpsized", "tmpformat", "named", "gen"},
		"takeover": {"", "gen"},
	}
	modes := []string{"fresh", "replace", "takeover"}
	points := map[string]int{}
	stepTried, stepHit := map[string]int{}, map[string]int{}
	var notReached, stops, leftovers, probes, recovered int
	openUs := []int{10_000}
	pr := newProber(t, ty)
	for k := 0; k < l.createKills && !ty.tooManyHangs(); k++ {
		mode := modes[k%len(modes)]
		step := steps[mode][(k/len(modes))%len(steps[mode])]
		action := "kill"
		if step != "" && k%3 == 0 {
			action = "stop"
		}
		name := fmt.Sprintf("create-%s", mode)
		path := ring.Path(dir, name)
		// Prepare: no ring, a ring of another geometry, or one of this one.
		os.Remove(path)
		switch mode {
		case "replace":
			prepareRing(t, ty, dir, name, 64<<10, 2)
		case "takeover":
			prepareRing(t, ty, dir, name, size, 2)
		}
		ino0 := inodeOf(path)
		c := startChild(t, "creator", "DIR="+dir, "RING="+name, fmt.Sprintf("BYTES=%d", size), "STEP="+step, "ACTION="+action)
		c.expect(t, "pid")
		c.send("go")
		what := fmt.Sprintf("kill %d (%s, step %q, %s)", k, mode, step, action)
		stepTried[step]++
		if step == "" {
			slices.Sort(openUs)
			med := openUs[len(openUs)/2]
			time.Sleep(time.Duration(rng.IntN(med*3/2+1)) * time.Microsecond)
			c.kill()
		} else {
			line, err := c.Line(lineWait)
			switch {
			case err != nil && strings.Contains(err.Error(), "exited"):
				stepHit[step]++ // killed itself at the step
			case err != nil:
				ty.hang("%s: creator: %v", what, err)
				c.kill()
			case strings.HasPrefix(line, "step "):
				stepHit[step]++
				stops++
				// Stopped at the step: a reader and the CLI look at the ring.
				probes++
				pr.run(what+", stopped", trial{Dir: dir, Ring: name, Ops: []string{"openwait", "read"}, CallMs: 300, Reads: 2, Start: "newest", HungMs: 1000, Slice: 20})
				ty.cli(runCLI(t, cliTimeout, "ls", "--dir", dir), what+", stopped")
				ty.cli(runCLI(t, cliTimeout, "stat", name, "--dir", dir), what+", stopped")
				c.kill()
			case strings.HasPrefix(line, "opened "):
				notReached++
				var us int
				fmt.Sscanf(fieldsAfter(line, "us="), "%d", &us)
				openUs = append(openUs, us)
				c.kill()
			case strings.HasPrefix(line, "hang "):
				ty.hang("%s: %s\n%s", what, line, hungStack(c.Stderr()))
				c.kill()
			default:
				ty.fail("%s: creator said %q; stderr %s", what, line, excerpt(c.Stderr(), 400))
				c.kill()
			}
		}
		<-c.Done()
		if bad, why := crashed(c.Stderr(), c.Err()); bad {
			ty.crash("%s: creator: %s", what, why)
		}
		point := killPoint(dir, name, ino0)
		points[point]++
		// A reader and the CLI must cope with whatever the dead writer left.
		probes++
		pr.run(what+", after the kill", trial{Dir: dir, Ring: name, Ops: []string{"openwait", "read"}, CallMs: 300, Reads: 2, Start: "newest", HungMs: 1000, Slice: 20})
		if k%2 == 0 {
			ty.cli(runCLI(t, cliTimeout, "ls", "--dir", dir), what)
			ty.cli(runCLI(t, cliTimeout, "stat", name, "--dir", dir), what)
		}
		// Time passes: the leftovers are old. The next writer must open the
		// ring, publish, and reclaim the dead writer's temporary files.
		before := tmpFiles(dir)
		past := time.Now().Add(-time.Minute)
		for _, tf := range before {
			os.Chtimes(filepath.Join(dir, tf), past, past)
		}
		if prepareRing(t, ty, dir, name, size, 2) {
			recovered++
			probes++
			res := pr.run(what+", recovered", trial{Dir: dir, Ring: name, Ops: []string{"read"}, CallMs: 1000, Reads: 1, Start: "newest", HungMs: 1000, Slice: 20})
			if len(res) == 1 && (res[0].Outcome != "ok" || res[0].Delivered != 1) {
				ty.fail("%s: a reader of the recovered ring: %+v", what, res[0])
			}
		} else {
			ty.fail("%s: no writer could open the ring after the kill (left: %s)", what, point)
		}
		if left := tmpFiles(dir); len(left) > 0 {
			leftovers += len(left)
			ty.leak("%s (left %s): %d temporary files of a dead writer still there after the next writer opened the ring: %v", what, point, len(left), left)
			for _, tf := range left {
				os.Remove(filepath.Join(dir, tf))
			}
		}
	}
	pr.close()
	var ps []string
	for p, n := range points {
		ps = append(ps, fmt.Sprintf("%s: %d", p, n))
	}
	slices.Sort(ps)
	ty.figure("kills %d (%d stopped and probed first; %d after Open returned, step not seen), recovered %d, probes %d",
		l.createKills, stops, notReached, recovered, probes)
	ty.figure("left behind {%s}", strings.Join(ps, "; "))
	var st []string
	for _, s := range steps["fresh"][1:] {
		st = append(st, fmt.Sprintf("%s %d/%d", s, stepHit[s], stepTried[s]))
	}
	ty.figure("steps hit/tried {%s}, random delay %d", strings.Join(st, ", "), stepTried[""])
	ty.figure("temp files not reclaimed %d", leftovers)
}

// fieldsAfter returns the text after key in line up to the next space.
func fieldsAfter(line, key string) string {
	i := strings.Index(line, key)
	if i < 0 {
		return ""
	}
	s := line[i+len(key):]
	if j := strings.IndexByte(s, ' '); j >= 0 {
		s = s[:j]
	}
	return s
}

// prepareRing runs a writer that opens ring name with frames of size bytes
// (8 slots), publishes count frames and closes. It reports whether it did.
func prepareRing(t *testing.T, ty *tally, dir, name string, size, count int) bool {
	t.Helper()
	w := startChild(t, "writer", "DIR="+dir, "RING="+name, "SLOTS=8", fmt.Sprintf("BYTES=%d", size), fmt.Sprintf("COUNT=%d", count), "META=64")
	rest, err := w.Wait(lineWait)
	for _, l := range rest {
		if strings.HasPrefix(l, "published ") {
			return true
		}
		if strings.HasPrefix(l, "hang ") {
			ty.hang("writer of %q: %s\n%s", name, l, hungStack(w.Stderr()))
			return false
		}
	}
	if bad, why := crashed(w.Stderr(), err); bad {
		ty.crash("writer of %q: %s", name, why)
		return false
	}
	ty.fail("writer of %q: %v %v", name, rest, err)
	return false
}
