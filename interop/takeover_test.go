package interop_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/internal/testutil"
)

// TestTakeoverAcrossLanguages: a writer of one language is SIGKILLed
// mid-stream and a writer of another language takes the ring over in
// place (repairing what the dead writer left, continuing its numbering);
// an ordered reader of the third language reports the first writer gone,
// resumes, and keeps exact accounts across the change. Every ordered pair
// of languages, so each takes over from each. (TestMatrix restarts a
// writer with one of its own language.)
func TestTakeoverAcrossLanguages(t *testing.T) {
	for _, killed := range languages {
		for _, next := range languages {
			if killed.name == next.name {
				continue
			}
			var reader language
			for _, l := range languages {
				if l.name != killed.name && l.name != next.name {
					reader = l
				}
			}
			t.Run(fmt.Sprintf("%s-killed-%s-takes-over-%s-reads", killed.name, next.name, reader.name), func(t *testing.T) {
				takeover(t, killed, next, reader)
			})
		}
	}
}

func takeover(t *testing.T, killed, next, reader language) {
	send1, send2, recv := killed.send(t), next.send(t), reader.recv(t, false)
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	path := filepath.Join(dir, "framering."+name)
	shape := []string{"--ring", name, "--dir", dir, "--pattern", "160x120x3", "--slots", "4", "--fps", "0", "-q"}
	first := start(t, send1, append(shape, "--count", "1")...)
	first.mustExit(t)
	r := start(t, recv, "--ring", name, "--dir", dir, "--wait", "--verify", "--timeout", "60s", "-q")
	waitFor(t, "the reader to map the ring", func() bool { return mapped(r.cmd.Process.Pid, path) })
	waitFor(t, "the reader to see no writer", func() bool { return writerGoneCount(r) >= 1 })

	w1 := start(t, send1, shape...)
	waitFor(t, "the first writer", func() bool { return strings.Contains(w1.stdout(), "generation 2") })
	time.Sleep(streamPhase() / 2)
	w1.signal(t, syscall.SIGKILL)
	w1.wait(t)
	waitFor(t, "the reader to report the killed writer gone", func() bool { return writerGoneCount(r) >= 2 })
	killedAt := statHead(t, dir, name)

	w2 := start(t, send2, shape...)
	waitFor(t, "the second writer", func() bool { return strings.Contains(w2.stdout(), "generation 3") })
	time.Sleep(streamPhase() / 2)
	w2.signal(t, syscall.SIGINT)
	w2.mustExit(t)
	n2 := sent(t, w2)
	waitFor(t, "the reader to resume and see the second writer go", func() bool { return writerGoneCount(r) >= 3 })
	head := statHead(t, dir, name)
	if head != killedAt+n2 && head != killedAt+n2+1 { // +1: killed between a commit and its head store
		t.Errorf("head %d after the killed writer's %d and %d more: the takeover did not continue the numbering", head, killedAt, n2)
	}
	r.signal(t, syscall.SIGINT)
	r.mustExit(t)
	res := readerResult(t, r)
	checkReader(t, r, res, want{windowStart: 1, last: head, gone: 3, resumes: 2, copyRead: true, ordered: true})
	t.Logf("%s killed at %d, %s continued to %d; %s reader: %v", killed.name, killedAt, next.name, head, reader.name, res)
}

// TestGeometryChangeReadersRemap: a Go writer replaces the ring with
// another geometry (a new file renamed over the old one, numbering
// carried); the C, Python and Go-library readers find the new file,
// re-map it and continue the numbering: one resume, no reset, every frame
// of their window accounted for.
func TestGeometryChangeReadersRemap(t *testing.T) {
	dir, name := testutil.ShmDir(t), testutil.Name(t)
	send := goCLI(t).sub("send")
	type reader struct {
		lang string
		p    prog
	}
	var readers []reader
	for _, l := range languages {
		t.Run("have-"+l.name, func(t *testing.T) { // a missing language skips here, the others still run
			readers = append(readers, reader{l.name, l.recv(t, l.name == "Go")}) // Go: the library (--start)
		})
	}
	var procs []*proc
	for _, r := range readers {
		procs = append(procs, start(t, r.p, "--ring", name, "--dir", dir, "--wait", "--verify", "--start", "oldest", "--timeout", "60s", "-q"))
	}
	w := start(t, send, "--ring", name, "--dir", dir, "--pattern", "64x48x3", "--fps", "1000", "--count", "300", "-q")
	w.mustExit(t)
	for _, p := range procs {
		waitFor(t, p.name+" to see the first writer go", func() bool { return writerGoneCount(p) >= 1 })
	}
	w2 := start(t, send, "--ring", name, "--dir", dir, "--pattern", "128x96x3", "--fps", "1000", "--count", "300", "-q")
	w2.mustExit(t)
	for _, p := range procs {
		waitFor(t, p.name+" to see the second writer go", func() bool { return writerGoneCount(p) >= 2 })
	}
	if head := statHead(t, dir, name); head != 600 {
		t.Errorf("head %d after 300 + 300 frames: the replacement did not carry the numbering", head)
	}
	for i, p := range procs {
		p.signal(t, syscall.SIGINT)
		p.mustExit(t)
		res := readerResult(t, p)
		s := res.kv
		// The window starts where the reader opened (at the oldest frame
		// then in the ring): read it from the summary.
		checkReader(t, p, res, want{windowStart: s["window_start"], last: 600, gone: 2, resumes: 1, copyRead: readers[i].lang != "Go", ordered: true})
		if s["window_start"] == 0 || s["window_start"] > 300 {
			t.Errorf("%s: window starts at %d, want a frame of the first writer", p.name, s["window_start"])
		}
		t.Logf("%s reader: %v", readers[i].lang, res)
	}
}
