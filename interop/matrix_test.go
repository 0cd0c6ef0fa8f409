package interop_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// language is one implementation of the ring: its pattern writer (`send
// --pattern`) and its --verify reader (`recv --verify`), by copy or in
// place.
type language struct {
	name string
	send func(t *testing.T) prog
	recv func(t *testing.T, view bool) prog
	// byCopy are the writer flags that publish by copy instead of filling
	// a loaned slot, for languages whose sender has them.
	byCopy []string
}

var languages = []language{
	{
		name: "Go",
		send: func(t *testing.T) prog { return goCLI(t).sub("send") },
		recv: func(t *testing.T, view bool) prog {
			if view {
				return goReader(t) // framering recv copies; the library's views
			}
			return goCLI(t).sub("recv")
		},
	},
	{
		name:   "C",
		send:   func(t *testing.T) prog { t.Helper(); s, _ := cProgs(t); return s },
		recv:   func(t *testing.T, _ bool) prog { t.Helper(); _, r := cProgs(t); return r },
		byCopy: []string{"--copy"},
	},
	{
		name: "Python",
		send: func(t *testing.T) prog { t.Helper(); return pyCLI(t).sub("send") },
		recv: func(t *testing.T, _ bool) prog { t.Helper(); return pyCLI(t).sub("recv") },
	},
}

// streamPhase is how long each writer of a pair publishes at full speed.
func streamPhase() time.Duration {
	if testing.Short() {
		return 300 * time.Millisecond
	}
	return 1500 * time.Millisecond
}

// matrixRow is one reader's outcome, for the table TestMatrix logs.
type matrixRow struct {
	writer, reader, how string
	published           uint64
	r                   result
	restart             string
}

// TestMatrix runs every writer language against every reader language
// across processes: writers {Go, C, Python} x readers {Go, C, Python}.
//
// For each pair: the writer's language creates the ring (one frame) and
// exits; two readers of the reader's language open it (their window
// starts at frame 1) and report the writer gone; a writer takes the ring
// over and publishes at full speed for streamPhase, and is SIGKILLed
// mid-stream; the readers report it gone; a second writer of the same
// language takes over (numbering continued, generation 3), publishes at
// full speed for streamPhase and exits cleanly; the readers drain the ring
// and report it gone once more. Every frame a reader accepts is checked
// against the test pattern (--verify), and each reader's accounts must be
// exact over the whole run, across both restarts: delivered + dropped ==
// the frames published in its window (1..head), nothing corrupt, three
// writer-gone reports and two resumes.
//
// Readers: one ordered, one latest. Reads by copy and in place (views)
// alternate: with Go and Python writers the ordered reader copies and the
// latest one views, with the C writer the other way round, so every
// reader language runs all four combinations. The Go view reader is the
// library (goReaderMain; framering recv only copies). The C writer's
// second instance publishes by copy (--copy), the others fill loaned slots.
func TestMatrix(t *testing.T) {
	var mu sync.Mutex
	var rows []matrixRow
	began := time.Now()
	for wi, w := range languages {
		for _, r := range languages {
			t.Run(w.name+"-to-"+r.name, func(t *testing.T) {
				got := runPair(t, w, r, wi == 1)
				mu.Lock()
				rows = append(rows, got...)
				mu.Unlock()
			})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "matrix (%v, phases of %v):\n", time.Since(began).Round(time.Second/10), streamPhase())
	fmt.Fprintf(&b, "%-7s %-7s %-13s %9s %9s %9s %8s %8s %10s  %s\n", "writer", "reader", "mode/read", "published",
		"delivered", "dropped", "retries", "mismatch", "overwrite", "kill+resume")
	for _, x := range rows {
		v := func(k string) string { // "-": the reader does not print it
			if n, ok := x.r.kv[k]; ok {
				return fmt.Sprint(n)
			}
			return "-"
		}
		fmt.Fprintf(&b, "%-7s %-7s %-13s %9d %9s %9s %8s %8s %10s  %s\n", x.writer, x.reader, x.how, x.published,
			v("delivered"), v("dropped"), v("retries"), v("mismatches"), v("overwritten"), x.restart)
	}
	t.Log(b.String())
}

// runPair runs one writer language against one reader language (see
// TestMatrix); cFlip swaps which reader views.
func runPair(t *testing.T, w, r language, cFlip bool) []matrixRow {
	send := w.send(t)
	type reader struct {
		mode string
		view bool
		p    *proc
	}
	readers := []*reader{{mode: "all", view: cFlip}, {mode: "latest", view: !cFlip}}
	for _, rd := range readers {
		r.recv(t, rd.view) // skip now, before anything starts, if the reader's language is missing
	}
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	path := filepath.Join(dir, "framering."+name)
	shape := []string{"--ring", name, "--dir", dir, "--pattern", "320x240x3", "--slots", "4", "--fps", "0", "-q"}

	// The ring, with frame 1 and no writer.
	first := start(t, send, append(shape, "--count", "1")...)
	first.mustExit(t)
	if !strings.Contains(first.stdout(), "generation 1") || sent(t, first) != 1 {
		t.Fatalf("%s did not create the ring with one frame: %s", first.name, first.stdout())
	}
	for _, rd := range readers {
		args := []string{"--ring", name, "--dir", dir, "--mode", rd.mode, "--wait", "--verify", "--timeout", "60s", "-q"}
		if rd.view {
			args = append(args, "--view")
		}
		rd.p = start(t, r.recv(t, rd.view), args...)
	}
	goneAll := func(n int) {
		t.Helper()
		for _, rd := range readers {
			waitFor(t, fmt.Sprintf("%s to report the writer gone %d times", rd.p.name, n), func() bool {
				return writerGoneCount(rd.p) >= n
			})
		}
	}
	for _, rd := range readers {
		waitFor(t, rd.p.name+" to map the ring", func() bool { return mapped(rd.p.cmd.Process.Pid, path) })
	}
	goneAll(1) // frame 1 read, no writer: the window is 1..

	// A writer at full speed, killed mid-stream.
	w1 := start(t, send, shape...)
	waitFor(t, "the first writer to take the ring over", func() bool { return strings.Contains(w1.stdout(), "generation 2") })
	time.Sleep(streamPhase())
	w1.signal(t, syscall.SIGKILL)
	w1.wait(t)
	goneAll(2)
	killedAt := statHead(t, dir, name)
	if killedAt < 2 {
		t.Fatalf("the first writer published nothing before it was killed (head %d)", killedAt)
	}

	// A second writer takes over, continues the numbering, exits cleanly.
	w2 := start(t, send, append(shape, w.byCopy...)...)
	waitFor(t, "the second writer to take the ring over", func() bool { return strings.Contains(w2.stdout(), "generation 3") })
	time.Sleep(streamPhase())
	w2.signal(t, syscall.SIGINT)
	w2.mustExit(t)
	n2 := sent(t, w2)
	goneAll(3)
	head := statHead(t, dir, name)
	// The takeover continues at the killed writer's head, or one above it
	// if the writer died between a slot's commit and the head's store.
	if head != killedAt+n2 && head != killedAt+n2+1 {
		t.Errorf("head %d after the killed writer's %d and %d more: the takeover did not continue the numbering", head, killedAt, n2)
	}

	var rows []matrixRow
	for _, rd := range readers {
		rd.p.signal(t, syscall.SIGINT)
		rd.p.mustExit(t)
		res := readerResult(t, rd.p)
		checkReader(t, rd.p, res, want{windowStart: 1, last: head, gone: 3, resumes: 2, copyRead: !rd.view, ordered: rd.mode == "all"})
		how := map[bool]string{false: "copy", true: "view"}[rd.view]
		mode := map[string]string{"all": "ordered", "latest": "latest"}[rd.mode]
		restart := fmt.Sprintf("killed at %d, resumed to %d", killedAt, head)
		if !t.Failed() {
			restart += ": ok"
		}
		rows = append(rows, matrixRow{writer: w.name, reader: r.name, how: mode + "/" + how, published: head, r: res, restart: restart})
		t.Logf("%s -> %s %s/%s: published %d (killed at %d), %v", w.name, r.name, mode, how, head, killedAt, res)
	}
	return rows
}
