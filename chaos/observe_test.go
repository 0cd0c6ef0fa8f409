package chaos_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/ring"
)

// observer follows a follower's event lines (see helperFollower) and keeps
// what the scenario waits for: per reader, the generations it delivered,
// when it reported the writer gone, when it resumed, its progress.
type observer struct {
	t *testing.T
	c *child
	n int // readers

	mu       sync.Mutex
	gen      map[string]uint64           // newest generation delivered
	genAt    map[string]map[uint64]int64 // ring.Now of the first frame of each generation
	gones    map[string][]int64
	resumes  map[string][]int64
	frame    map[string]uint64 // newest frame reported by progress or resume
	mine     map[string]uint64 // frames delivered, from progress lines
	torn     []string
	errs     map[string]int // class -> count
	errLines []string
	hangs    []string
	results  []string
	readyN   int
	exited   bool
	pumped   chan struct{} // closed when every line was taken
}

func observe(t *testing.T, c *child, readers int) *observer {
	o := &observer{t: t, c: c, n: readers, gen: map[string]uint64{}, genAt: map[string]map[uint64]int64{},
		gones: map[string][]int64{}, resumes: map[string][]int64{}, frame: map[string]uint64{}, mine: map[string]uint64{}, errs: map[string]int{},
		pumped: make(chan struct{})}
	return o.start()
}

// take processes one line; it returns false for lines that are not events
// (results, which the caller collects).
func (o *observer) take(l string) bool {
	f := strings.Fields(l)
	if len(f) < 2 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	idx := f[1]
	num := func(i int) uint64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseUint(f[i], 10, 64)
		return n
	}
	switch f[0] {
	case "ready":
		o.readyN++
	case "gen":
		g := num(2)
		o.gen[idx] = g
		if o.genAt[idx] == nil {
			o.genAt[idx] = map[uint64]int64{}
		}
		if _, ok := o.genAt[idx][g]; !ok {
			o.genAt[idx][g] = int64(num(4))
		}
		o.frame[idx] = max(o.frame[idx], num(3))
	case "gone":
		o.gones[idx] = append(o.gones[idx], int64(num(2)))
	case "resume":
		o.resumes[idx] = append(o.resumes[idx], int64(num(3)))
		o.frame[idx] = num(2)
	case "frame":
		o.frame[idx] = num(2)
		o.mine[idx] = num(3)
	case "torn":
		o.torn = append(o.torn, l)
	case "err":
		if len(f) > 2 {
			o.errs[f[2]]++
		}
		if len(o.errLines) < 50 {
			o.errLines = append(o.errLines, l)
		}
	case "hang":
		o.hangs = append(o.hangs, l)
	default:
		return false
	}
	return true
}

// start reads the child's lines in the background. Results are kept for
// finish.
func (o *observer) start() *observer {
	go func() {
		defer close(o.pumped)
		for l := range o.c.Lines() {
			if !o.take(l) {
				o.mu.Lock()
				if strings.HasPrefix(l, "result ") {
					o.results = append(o.results, l)
				} else {
					o.errLines = append(o.errLines, l)
				}
				o.mu.Unlock()
			}
		}
		o.mu.Lock()
		o.exited = true
		o.mu.Unlock()
	}()
	return o
}

// until polls cond (under the lock) until it holds for every reader, or the
// deadline passes (false), or the follower died (false).
func (o *observer) until(d time.Duration, cond func(idx string) bool) bool {
	deadline := time.Now().Add(d)
	for {
		o.mu.Lock()
		ok := true
		for i := 0; i < o.n && ok; i++ {
			ok = cond(strconv.Itoa(i))
		}
		exited := o.exited || len(o.hangs) > 0
		o.mu.Unlock()
		if ok {
			return true
		}
		if exited || time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// missing lists the readers for which cond does not hold.
func (o *observer) missing(cond func(idx string) bool) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for i := 0; i < o.n; i++ {
		if idx := strconv.Itoa(i); !cond(idx) {
			out = append(out, idx)
		}
	}
	return out
}

// goneAfter returns the first gone of reader idx at or after t (ring.Now
// ns), or 0. The caller holds the lock (inside until) or calls it after.
func (o *observer) goneAfter(idx string, t int64) int64 {
	for _, g := range o.gones[idx] {
		if g >= t {
			return g
		}
	}
	return 0
}

// up reports whether reader idx follows a live writer as far as it knows:
// it delivered a frame, and after its last writer-gone it resumed. (A
// reader that reported a heartbeat late under load, and still waits,
// would not report the next death: wait for up before killing.) The caller
// holds the lock.
func (o *observer) up(idx string) bool {
	if o.gen[idx] == 0 {
		return false
	}
	g := o.gones[idx]
	return len(g) == 0 || o.resumeAfter(idx, g[len(g)-1]) != 0
}

func (o *observer) resumeAfter(idx string, t int64) int64 {
	for _, r := range o.resumes[idx] {
		if r >= t {
			return r
		}
	}
	return 0
}

// marks returns how many frames each reader delivered so far (progress).
func (o *observer) marks() map[string]uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]uint64{}
	for k, v := range o.mine {
		m[k] = v
	}
	return m
}

// progress waits until every reader delivered at least n frames more than
// in marks.
func (o *observer) progress(ty *tally, what string, marks map[string]uint64, n uint64) bool {
	cond := func(idx string) bool { return o.mine[idx] >= marks[idx]+n }
	if !o.until(lineWait, cond) {
		o.failWait(ty, what, cond)
		return false
	}
	return true
}

// resumed waits until every reader delivered a frame after an error or a
// writer-gone reported at or after t0.
func (o *observer) resumed(ty *tally, what string, t0 int64) bool {
	cond := func(idx string) bool { return o.resumeAfter(idx, t0) != 0 }
	if !o.until(lineWait, cond) {
		o.failWait(ty, what, cond)
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i < o.n; i++ {
		ty.resumeTimes = append(ty.resumeTimes, time.Duration(o.resumeAfter(strconv.Itoa(i), t0)-t0))
	}
	return true
}

// waitReady waits until every reader opened the ring.
func (o *observer) waitReady(ty *tally, what string) bool {
	if !o.until(lineWait, func(string) bool { return o.readyN >= o.n }) {
		ty.fail("%s: only %d of %d readers opened the ring; follower stderr: %s", what, o.readyN, o.n, excerpt(o.c.Stderr(), 800))
		return false
	}
	return true
}

// detectGone waits until every reader reported the writer gone at or after
// t0 and records each detection time; a reader that does not is a hang.
func (o *observer) detectGone(ty *tally, what string, t0 int64) bool {
	cond := func(idx string) bool { return o.goneAfter(idx, t0) != 0 }
	if !o.until(lineWait, cond) {
		o.failWait(ty, what+": writer gone not reported", cond)
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i < o.n; i++ {
		ty.detected(time.Duration(o.goneAfter(strconv.Itoa(i), t0) - t0))
	}
	return true
}

// failWait reports a wait that did not end: readers missing, and why.
func (o *observer) failWait(ty *tally, what string, cond func(string) bool) {
	o.mu.Lock()
	hangs, exited := o.hangs, o.exited
	o.mu.Unlock()
	if len(hangs) > 0 {
		ty.hang("%s: %s\n%s", what, hangs[0], hungStack(o.c.Stderr()))
		return
	}
	if exited {
		if bad, why := crashed(o.c.Stderr(), o.c.Err()); bad {
			ty.crash("%s: follower: %s", what, why)
			return
		}
		ty.fail("%s: the follower exited: %v; stderr: %s", what, o.c.Err(), excerpt(o.c.Stderr(), 800))
		return
	}
	ty.hang("%s: readers %v, not within %v (recent errors: %v)", what, o.missing(cond), lineWait, o.recentErrs())
}

func (o *observer) recentErrs() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.errLines)
	return o.errLines[max(0, n-5):]
}

// finish stops the follower and returns its readers' results, counting torn
// frames, hangs and crashes into ty.
func (o *observer) finish(ty *tally, what string) []readerResult {
	o.c.in.Close()
	select {
	case <-o.c.Done():
	case <-time.After(lineWait + grace):
		ty.hang("%s: follower did not finish within %v of its stop", what, lineWait+grace)
		o.c.kill()
	}
	<-o.c.Done()
	<-o.pumped
	o.mu.Lock()
	results, hangs, torn := o.results, o.hangs, o.torn
	o.mu.Unlock()
	for _, h := range hangs {
		ty.hang("%s: %s\n%s", what, h, hungStack(o.c.Stderr()))
	}
	if len(hangs) == 0 {
		if bad, why := crashed(o.c.Stderr(), o.c.Err()); bad {
			ty.crash("%s: follower: %s", what, why)
		}
	}
	if len(torn) > 0 {
		o.t.Logf("%s: torn frames reported: %v", what, torn[:min(len(torn), 5)])
	}
	var out []readerResult
	for _, l := range results {
		out = append(out, parseResult(o.t, l))
	}
	if len(out) != o.n && len(hangs) == 0 {
		ty.fail("%s: %d reader results of %d; follower: %v; stderr: %s", what, len(out), o.n, o.c.Err(), excerpt(o.c.Stderr(), 800))
	}
	return out
}

// now is CLOCK_MONOTONIC in ns, the clock the children stamp events with.
func now() int64 { return ring.Now() }
