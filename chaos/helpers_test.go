package chaos_test

// The children: the test binary re-executed as a writer, a follower (one or
// more readers following a ring), a prober (one-shot calls of every reader
// API on a ring the parent damaged), a creator (a writer killed while it
// opens a ring) and a cycler (open/close cycles counting leaks). Every
// library call a child makes runs under its watchdog.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/pattern"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// ---------------------------------------------------------------------------
// A child's output, stdin and watchdog

var outMu sync.Mutex

// out prints one protocol line on stdout.
func out(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

// stdinLines reads the child's stdin; the channel closes at EOF (the
// parent closed it or died).
func stdinLines() <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// waitFor reads lines until one equals want; false at EOF.
func waitFor(in <-chan string, want string) bool {
	for l := range in {
		if l == want {
			return true
		}
	}
	return false
}

// watchdog is a child's hang detector. Every library call registers itself
// with the time by which it must have returned (its context deadline plus
// the grace); a call still running after that prints a "hang" line and
// every goroutine's stack, and the child exits with status 3. When the
// child's work is cancelled, every call running must return within the
// grace.
type watchdog struct {
	mu    sync.Mutex
	calls map[int]*watched
	next  int
	tag   string // prefix of the hang line (a trial id)
}

type watched struct {
	what       string
	start, due time.Time
}

var never = time.Now().Add(100 * 365 * 24 * time.Hour)

func newWatchdog() *watchdog {
	w := &watchdog{calls: map[int]*watched{}}
	go w.watch()
	return w
}

// begin registers a call that must return by due.
func (w *watchdog) begin(what string, due time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	w.calls[w.next] = &watched{what: what, start: time.Now(), due: due}
	return w.next
}

func (w *watchdog) end(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.calls, id)
}

// call runs fn, which uses a context ending after d (0: no deadline of its
// own), under the watchdog.
func (w *watchdog) call(what string, d time.Duration, fn func()) {
	due := never
	if d > 0 {
		due = time.Now().Add(d + grace)
	}
	id := w.begin(what, due)
	defer w.end(id)
	fn()
}

// cancelled tells the watchdog that the child's context was cancelled:
// every running call must return within the grace.
func (w *watchdog) cancelled() {
	w.mu.Lock()
	defer w.mu.Unlock()
	due := time.Now().Add(grace)
	for _, c := range w.calls {
		if c.due.After(due) {
			c.due = due
		}
	}
}

func (w *watchdog) setTag(tag string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tag = tag
}

func (w *watchdog) watch() {
	for {
		time.Sleep(50 * time.Millisecond)
		w.mu.Lock()
		now := time.Now()
		for _, c := range w.calls {
			if now.After(c.due) {
				out("hang %s %s: running %v, past its deadline and grace", w.tag, c.what, now.Sub(c.start).Round(time.Millisecond))
				buf := make([]byte, 8<<20)
				n := runtime.Stack(buf, true)
				os.Stderr.Write(buf[:n])
				os.Exit(3)
			}
		}
		w.mu.Unlock()
	}
}

// class names the sentinel an error wraps.
func class(err error) string {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"gone", ring.ErrWriterGone}, {"truncated", ring.ErrTruncated}, {"corrupt", ring.ErrCorrupt},
		{"incompatible", ring.ErrIncompatible}, {"unsafe", ring.ErrUnsafeFile}, {"notfound", ring.ErrNotFound},
		{"closed", ring.ErrClosed}, {"overwritten", ring.ErrOverwritten}, {"viewout", ring.ErrViewOutstanding},
		{"toolarge", ring.ErrFrameTooLarge}, {"busy", ring.ErrBusy}, {"nospace", ring.ErrNoSpace},
		{"invalidframe", ring.ErrInvalidFrame}, {"deadline", context.DeadlineExceeded}, {"canceled", context.Canceled},
		{"legacycorrupt", legacy.ErrCorrupt},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// guarded runs fn with memory faults turned into a panic it recovers, as a
// careful application does around its own accesses to a view (the
// library's guard covers only its own calls). It reports whether fn
// faulted.
func guarded(fn func()) (faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok { // a runtime.Error for a memory fault
				faulted = true
				return
			}
			panic(r)
		}
	}()
	fn()
	return false
}

// ---------------------------------------------------------------------------
// writer

// helperWriter publishes pattern frames (internal/pattern) into a ring.
//
//	DIR, RING          the ring
//	SLOTS, BYTES, META geometry (8, 4096, 64)
//	WAIT_GO=1          print "pid P" and wait for "go" before Open
//	HOLD=1             after Open, wait for "go" before publishing
//	                   ("where" on stdin prints "at N", the last frame
//	                   committed)
//	COUNT              frames to publish; 0: until stdin closes
//	GAP                pause between frames (or bursts)
//	BURST              frames published back to back between pauses (1)
//	API                loan (default) or publish
//	MIDFRAME_AFTER=k   after k frames, reserve the next one, fill half of it
//	                   with another frame's bytes, print "midframe N" and
//	                   block (for SIGKILL)
//	REOPEN=1           on ErrTruncated, close and reopen the writer
//	LINGER=1           after COUNT frames, stay open until stdin closes
//	REMOVE=1           remove the ring at the end instead of closing it
func helperWriter() int {
	dir, name := os.Getenv("DIR"), os.Getenv("RING")
	size := envInt("BYTES", 4096)
	opts := producer.Options{Dir: dir, Slots: envInt("SLOTS", 8), MaxFrameBytes: size, MetaBytes: envInt("META", 64)}
	in := stdinLines()
	if os.Getenv("WAIT_GO") == "1" {
		out("pid %d", os.Getpid())
		if !waitFor(in, "go") {
			return 0
		}
	}
	wd := newWatchdog()
	open := func() (*producer.Writer, error) {
		var w *producer.Writer
		var err error
		wd.call("producer.Open", time.Second, func() { w, err = producer.Open(name, opts) })
		return w, err
	}
	w, err := open()
	if err != nil {
		out("openerr %s %v", class(err), err)
		return 1
	}
	out("ready gen=%d pid=%d head=%d", w.Generation(), os.Getpid(), w.Stats().Ring.Head)
	var stop atomic.Bool
	var hold atomic.Bool
	hold.Store(os.Getenv("HOLD") == "1")
	var published atomic.Uint64 // the last frame committed
	go func() {
		for l := range in {
			switch l {
			case "go":
				hold.Store(false)
			case "where":
				out("at %d", published.Load())
			}
		}
		stop.Store(true)
	}()
	for hold.Load() && !stop.Load() {
		time.Sleep(time.Millisecond)
	}
	count, gap, burst := envInt("COUNT", 0), envDur("GAP", 0), max(envInt("BURST", 1), 1)
	midAfter := envInt("MIDFRAME_AFTER", -1)
	usePublish, reopen := os.Getenv("API") == "publish", os.Getenv("REOPEN") == "1"
	info := ring.FrameInfo{Format: ring.Raw, Len: size}
	buf := make([]byte, size)
	next := w.Stats().Ring.Head + 1
	var last uint64
	var meta [8]byte
	for i := 0; (count == 0 || i < count) && !stop.Load(); i++ {
		var n uint64
		var err error
		if usePublish {
			pattern.Fill(buf, next)
			binary.LittleEndian.PutUint64(meta[:], next)
			info.Meta = meta[:]
			wd.call("Writer.Publish", time.Second, func() { n, err = w.Publish(info, buf) })
			if err == nil && n != next {
				out("error numbering: published %d, expected %d", n, next)
				return 1
			}
		} else {
			var l producer.Loan
			wd.call("Writer.Reserve", time.Second, func() { l, err = w.Reserve(info) })
			if err == nil {
				n = l.Number()
				if i == midAfter {
					guarded(func() { pattern.Fill(l.Data()[:size/2], n+1) })
					out("midframe %d", n)
					select {}
				}
				if guarded(func() { pattern.Fill(l.Data(), n) }) {
					l.Abort()
					err = fmt.Errorf("fill frame %d: %w", n, ring.ErrTruncated)
				} else {
					binary.LittleEndian.PutUint64(meta[:], n)
					if opts.MetaBytes >= 8 {
						l.Meta().Write(meta[:])
					}
					wd.call("Loan.Commit", time.Second, func() { err = l.Commit() })
				}
			}
		}
		if err != nil {
			if errors.Is(err, ring.ErrTruncated) && reopen {
				wd.call("Writer.Close", time.Second, func() { w.Close() })
				for try := 0; ; try++ {
					if w, err = open(); err == nil {
						break
					}
					if try == 200 {
						out("error reopen: %v", err)
						return 1
					}
					time.Sleep(5 * time.Millisecond)
				}
				next = w.Stats().Ring.Head + 1
				out("reopen gen=%d head=%d", w.Generation(), next-1)
				continue
			}
			out("error %s %v", class(err), err)
			return 1
		}
		last, next = n, n+1
		published.Store(n)
		if gap > 0 && (i+1)%burst == 0 {
			time.Sleep(gap)
		}
	}
	out("published last=%d", last)
	if os.Getenv("LINGER") == "1" {
		for !stop.Load() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if os.Getenv("REMOVE") == "1" {
		wd.call("Writer.Remove", time.Second, func() { w.Remove() })
	} else {
		wd.call("Writer.Close", time.Second, func() { w.Close() })
	}
	return 0
}

// ---------------------------------------------------------------------------
// follower

type spec struct {
	api, mode string
	spin      bool
}

func parseSpecs(s string) []spec {
	var out []spec
	for _, x := range strings.Split(s, ",") {
		f := strings.Split(x, ":")
		sp := spec{api: f[0], mode: "ordered"}
		if len(f) > 1 {
			sp.mode = f[1]
		}
		sp.spin = len(f) > 2 && f[2] == "spin"
		out = append(out, sp)
	}
	return out
}

func readerOptions(dir, mode, start string) consumer.Options {
	o := consumer.Options{Dir: dir, WaitSlice: envDur("SLICE", 0), HungAfter: envDur("HUNG", 0),
		AllowOtherOwner: os.Getenv("ALLOW_OTHER") == "1"}
	if mode == "latest" {
		o.Mode = consumer.Latest
	}
	switch start {
	case "oldest":
		o.StartAt = consumer.Oldest
	case "next":
		o.StartAt = consumer.Next
	}
	return o
}

// helperFollower runs one reader per spec on a ring until stdin closes (or
// each reader has considered frame UNTIL), checking every accepted frame
// word by word against the pattern, and prints events:
//
//	ready I                      reader I opened the ring
//	gen I G N T                  reader I delivered frame N of generation G,
//	                             the first of that generation (T: ring.Now)
//	gone I T                     ErrWriterGone (T: ring.Now when returned)
//	resume I N T                 the first frame delivered after a gone or
//	                             an error
//	frame I N M                  progress: frame N, the M-th delivered,
//	                             every PROGRESS frames
//	err I CLASS T MSG            another error (the first 20 of each class)
//	torn I N MSG                 an accepted frame failed the pattern check
//	result {json}                at the end, per reader
//
//	DIR, RING, SPECS (api:mode[:spin],...; api read|acquire|inplace),
//	START (oldest|newest|next), SLICE, HUNG, UNTIL, CALL (per call deadline)
func helperFollower() int {
	dir, name := os.Getenv("DIR"), os.Getenv("RING")
	specs := parseSpecs(os.Getenv("SPECS"))
	until := uint64(envInt("UNTIL", 0))
	callTimeout := envDur("CALL", 2*time.Second)
	wd := newWatchdog()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range stdinLines() {
		}
		cancel()
		wd.cancelled()
	}()
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			follow(ctx, wd, strconv.Itoa(i), dir, name, sp, until, callTimeout)
		}()
	}
	wg.Wait()
	return 0
}

func follow(ctx context.Context, wd *watchdog, idx, dir, name string, sp spec, until uint64, callTimeout time.Duration) {
	res := readerResult{Idx: idx, API: sp.api, Mode: sp.mode, Errs: map[string]uint64{}, FirstErr: map[string]string{}}
	opts := readerOptions(dir, sp.mode, os.Getenv("START"))
	if sp.spin {
		opts.Spin = 50 * time.Microsecond
	}
	var r *consumer.Reader
	var err error
	wd.call("reader "+idx+" OpenWait", 0, func() { r, err = consumer.OpenWait(ctx, name, opts) })
	if err != nil {
		out("err %s %s %d %v", idx, class(err), ring.Now(), err)
		res.Errs[class(err)]++
		b, _ := json.Marshal(res)
		out("result %s", b)
		return
	}
	out("ready %s", idx)
	var (
		buf                 []byte
		prev, gen, resets   uint64
		haveFrame           bool
		printed             = map[string]int{}
		what                = "reader " + idx + " " + sp.api
		errDelay            = time.Millisecond
		lastErrWasTransient bool
		sinceErr            = false
		progress            = uint64(envInt("PROGRESS", 0))
	)
	for ctx.Err() == nil {
		var f ring.Frame
		var bad error
		cctx, ccancel := context.WithTimeout(ctx, callTimeout)
		wd.call(what, callTimeout, func() {
			switch sp.api {
			case "read":
				f, err = r.Read(cctx, buf)
				if err == nil {
					buf = f.Data[:cap(f.Data)]
					bad = pattern.Check(f.Data, f.Number)
				}
			case "acquire":
				var v consumer.View
				v, err = r.Acquire(cctx)
				if err == nil {
					f = *v.Frame()
					if guarded(func() { bad = pattern.Check(f.Data, f.Number) }) {
						bad = nil // faulted: Release says what happened
					}
					err = v.Release()
				}
			case "inplace":
				err = r.ReadInPlace(cctx, func(fr *ring.Frame) error {
					f = *fr
					bad = pattern.Check(fr.Data, fr.Number)
					return nil
				})
			}
		})
		ccancel()
		if err == nil {
			lastErrWasTransient = false
			res.Mine++
			if bad != nil {
				res.Torn++
				out("torn %s %d %v", idx, f.Number, bad)
			}
			if haveFrame && f.Number <= prev {
				if st := r.Stats(); st.Resets == resets {
					res.Order++
				} else {
					resets = st.Resets
				}
			}
			if !haveFrame || f.Generation != gen {
				out("gen %s %d %d %d", idx, f.Generation, f.Number, ring.Now())
			}
			if sinceErr {
				out("resume %s %d %d", idx, f.Number, ring.Now())
				sinceErr = false
			}
			if progress > 0 && res.Mine%progress == 0 {
				out("frame %s %d %d", idx, f.Number, res.Mine)
			}
			prev, gen, haveFrame = f.Number, f.Generation, true
			if until > 0 && f.Number >= until {
				break
			}
			continue
		}
		c := class(err)
		res.Errs[c]++
		if _, ok := res.FirstErr[c]; !ok {
			res.FirstErr[c] = err.Error()
		}
		switch c {
		case "deadline", "canceled", "overwritten":
		default:
			sinceErr = true
		}
		switch c {
		case "gone":
			res.Gones++
			out("gone %s %d", idx, ring.Now())
			continue
		case "deadline", "canceled":
			continue
		case "overwritten":
			continue
		}
		if printed[c] < 20 {
			printed[c]++
			out("err %s %s %d %v", idx, c, ring.Now(), err)
		}
		if until > 0 && r.Stats().Last >= until {
			break
		}
		// A persistent error (a corrupt slot, a truncated segment) must not
		// make this loop spin: back off a little.
		if lastErrWasTransient {
			time.Sleep(errDelay)
		}
		lastErrWasTransient = true
	}
	wd.call("reader "+idx+" Close", time.Second, func() { r.Close() })
	st := r.Stats()
	s := &res.Stats
	s.Delivered, s.Dropped, s.Lapped, s.Skipped = st.Delivered, st.Dropped(), st.Lapped, st.Skipped
	s.Overwritten, s.Corrupt, s.Abandoned, s.Retries = st.Overwritten, st.Corrupt, st.Abandoned, st.Retries
	s.WriterGone, s.Resumes, s.Resets, s.WindowStart, s.Last = st.WriterGone, st.Resumes, st.Resets, st.WindowStart, st.Last
	b, _ := json.Marshal(res)
	out("result %s", b)
}

// ---------------------------------------------------------------------------
// prober

// trial is one command to the prober: run these operations on that ring.
type trial struct {
	ID     int
	Dir    string
	Ring   string
	Legacy string   // legacy object name for the "legacy" op
	Ops    []string // read, acquire, inplace, openwait, readnewest, writer, legacy, inplace-truncate
	CallMs int      // deadline of one call
	Reads  int      // calls per read op
	Mode   string   // ordered|latest
	Start  string   // oldest|newest|next
	Slots  int      // writer op geometry
	Bytes  int
	HungMs int
	Slice  int
}

// opResult is what one operation did.
type opResult struct {
	Op        string
	Outcome   string // ok (it ran; Errs says which errors it met), err (it failed at Open)
	Class     string // the class of the opening error
	Msg       string
	Delivered int
	Bad       []uint64 // accepted frames that failed the pattern check
	Errs      map[string]int
	First     map[string]string
}

// helperProber reads trials as JSON lines on stdin and runs them, printing
// "result ID {json}" for each; a hang prints "hang ..." and exits 3.
func helperProber() int {
	wd := newWatchdog()
	in := stdinLines()
	for l := range in {
		var tr trial
		if err := json.Unmarshal([]byte(l), &tr); err != nil {
			fmt.Fprintf(os.Stderr, "prober: bad trial %q: %v\n", l, err)
			return 2
		}
		wd.setTag(fmt.Sprintf("trial=%d", tr.ID))
		var res []opResult
		for _, op := range tr.Ops {
			res = append(res, probe(wd, &tr, op))
		}
		b, _ := json.Marshal(res)
		out("result %d %s", tr.ID, b)
	}
	return 0
}

func probe(wd *watchdog, tr *trial, op string) opResult {
	res := opResult{Op: op, Outcome: "ok", Errs: map[string]int{}, First: map[string]string{}}
	call := time.Duration(tr.CallMs) * time.Millisecond
	opts := readerOptions(tr.Dir, tr.Mode, tr.Start)
	opts.HungAfter = time.Duration(tr.HungMs) * time.Millisecond
	opts.WaitSlice = time.Duration(tr.Slice) * time.Millisecond
	failed := func(err error) opResult {
		res.Outcome, res.Class, res.Msg = "err", class(err), excerpt(err.Error(), 300)
		return res
	}
	note := func(err error) {
		c := class(err)
		res.Errs[c]++
		if _, ok := res.First[c]; !ok {
			res.First[c] = excerpt(err.Error(), 300)
		}
	}
	switch op {
	case "writer":
		var w *producer.Writer
		var err error
		wd.call("producer.Open", call, func() {
			w, err = producer.Open(tr.Ring, producer.Options{Dir: tr.Dir, Slots: tr.Slots, MaxFrameBytes: tr.Bytes, MetaBytes: 64})
		})
		if err != nil {
			return failed(err)
		}
		buf := make([]byte, tr.Bytes)
		pattern.Fill(buf, w.Stats().Ring.Head+1)
		wd.call("Writer.Publish", call, func() { _, err = w.Publish(ring.FrameInfo{Format: ring.Raw}, buf) })
		if err != nil {
			note(err)
		}
		wd.call("Writer.Close", call, func() { err = w.Close() })
		if err != nil {
			note(err)
		}
		return res
	case "legacy":
		var lr *legacy.Reader
		var err error
		wd.call("legacy.NewReader", call, func() { lr, err = legacy.NewReader(tr.Dir, tr.Legacy, legacy.ReaderOptions{}) })
		if err != nil {
			return failed(err)
		}
		var f legacy.Frame
		wd.call("legacy Reader.Read", call, func() {
			err = withDeadline(call, func(ctx context.Context) error { f, err = lr.Read(ctx, nil); return err })
		})
		switch {
		case err != nil:
			note(err)
		case f.Width <= 0 || f.Height <= 0 || f.Channels <= 0 || int64(f.Width)*int64(f.Height)*int64(f.Channels) != int64(len(f.Pixels)):
			// A frame whose pixels do not match its header.
			res.Bad = append(res.Bad, uint64(len(f.Pixels)))
		default:
			res.Delivered++
		}
		wd.call("legacy Reader.Close", call, func() { lr.Close() })
		return res
	case "inplace-truncate":
		// Another process truncates the ring while a ReadInPlace callback
		// works on a frame: the cut keeps the frame's slot header and drops
		// its payload, so the callback faults and the seqlock does not move.
		var r *consumer.Reader
		var err error
		wd.call("consumer.Open", call, func() { r, err = consumer.Open(tr.Ring, opts) })
		if err != nil {
			return failed(err)
		}
		g := r.Geometry()
		wd.call("Reader.ReadInPlace", call, func() {
			err = withDeadline(call, func(ctx context.Context) error {
				return r.ReadInPlace(ctx, func(f *ring.Frame) error {
					slot := int64(f.Number % uint64(g.Slots))
					cut := layout.SuperblockSize + slot*layout.SlotStride(g) + layout.PayloadOffset(g)
					if err := os.Truncate(ring.Path(tr.Dir, tr.Ring), cut); err != nil {
						return err
					}
					return pattern.Check(f.Data, f.Number) // faults
				})
			})
		})
		if err != nil {
			note(err)
		}
		st := r.Stats()
		res.Delivered = int(st.Delivered)
		if st.Delivered+st.Dropped() != st.Last-st.WindowStart+1 {
			res.Bad = append(res.Bad, st.Last)
		}
		wd.call("Reader.Close", call, func() { r.Close() })
		return res
	case "openwait":
		var r *consumer.Reader
		var err error
		wd.call("consumer.OpenWait", call, func() {
			err = withDeadline(call, func(ctx context.Context) error { r, err = consumer.OpenWait(ctx, tr.Ring, opts); return err })
		})
		if err != nil {
			return failed(err)
		}
		var f ring.Frame
		wd.call("Reader.Read after OpenWait", call, func() {
			err = withDeadline(call, func(ctx context.Context) error { f, err = r.Read(ctx, nil); return err })
		})
		if err != nil {
			note(err)
		} else if pattern.Check(f.Data, f.Number) != nil {
			res.Bad = append(res.Bad, f.Number)
		} else {
			res.Delivered++
		}
		wd.call("Reader.Close", call, func() { r.Close() })
		return res
	}
	reads := tr.Reads
	if op == "readnewest" { // one copy read of the newest frame
		opts.StartAt, reads, op = consumer.Newest, 1, "read"
	}
	var r *consumer.Reader
	var err error
	wd.call("consumer.Open", call, func() { r, err = consumer.Open(tr.Ring, opts) })
	if err != nil {
		return failed(err)
	}
	var buf []byte
	gones := 0
	for i := 0; i < reads; i++ {
		var f ring.Frame
		var bad error
		wd.call("Reader "+op, call, func() {
			err = withDeadline(call, func(ctx context.Context) error {
				switch op {
				case "read":
					f, err = r.Read(ctx, buf)
					if err == nil {
						buf = f.Data[:cap(f.Data)]
						bad = pattern.Check(f.Data, f.Number)
					}
				case "acquire":
					var v consumer.View
					v, err = r.Acquire(ctx)
					if err == nil {
						f = *v.Frame()
						guarded(func() { bad = pattern.Check(f.Data, f.Number) })
						err = v.Release()
					}
				case "inplace":
					err = r.ReadInPlace(ctx, func(fr *ring.Frame) error {
						f = *fr
						bad = pattern.Check(fr.Data, fr.Number)
						return nil
					})
				default:
					err = fmt.Errorf("unknown op %q", op)
				}
				return err
			})
		})
		if err == nil {
			if bad != nil {
				res.Bad = append(res.Bad, f.Number)
			} else {
				res.Delivered++
			}
			continue
		}
		note(err)
		c := class(err)
		if c == "gone" {
			gones++
		}
		if c == "deadline" || gones > 0 || c == "other" || c == "closed" || c == "viewout" {
			break
		}
	}
	wd.call("Reader.Close", call, func() { r.Close() })
	return res
}

// ---------------------------------------------------------------------------
// creator

// helperCreator opens a writer after "go" on stdin and kills itself (or
// stops itself, for the parent to probe it and kill it) at the first sign
// of a STEP, or a later one, of the open it sees from the file system:
//
//	tmp        a temporary segment (.framering-tmp.*) exists
//	tmpsized   it has the ring's full size
//	tmpformat  it holds a superblock (the magic)
//	named      the ring's name points at a new inode
//	gen        the ring's generation went up (the takeover)
//
// Without STEP the parent kills it at a random moment. It prints "pid P",
// then "opened gen=G us=U step=S" if Open returned first (S: the last step
// seen), and holds the writer until stdin closes.
func helperCreator() int {
	dir, name := os.Getenv("DIR"), os.Getenv("RING")
	size := envInt("BYTES", 1<<20)
	opts := producer.Options{Dir: dir, Slots: envInt("SLOTS", 8), MaxFrameBytes: size, MetaBytes: envInt("META", 64)}
	in := stdinLines()
	out("pid %d", os.Getpid())
	if !waitFor(in, "go") {
		return 0
	}
	step, action := os.Getenv("STEP"), os.Getenv("ACTION")
	path := ring.Path(dir, name)
	ino0, gen0 := inodeOf(path), genOf(path)
	var seen atomic.Value
	seen.Store("")
	var stopWatch atomic.Bool
	if step != "" {
		full := ring.Geometry{Slots: opts.Slots, PayloadCap: size, MetaCap: opts.MetaBytes}.Size()
		go func() {
			var gw genWatch
			defer gw.unmap()
			for !stopWatch.Load() {
				// Look only as far back as the step asks: the fewer system
				// calls per look, the likelier a short step is caught.
				hit := ""
				if stepRank(step) <= stepRank("tmpformat") {
					for _, tmp := range tmpFiles(dir) {
						p := filepath.Join(dir, tmp)
						hit = "tmp"
						if fi, err := os.Lstat(p); err == nil && fi.Size() >= full {
							hit = "tmpsized"
							if magicAt(p) {
								hit = "tmpformat"
							}
						}
					}
				}
				if stepRank(step) <= stepRank("named") {
					if ino := inodeOf(path); ino != 0 && ino != ino0 {
						hit = "named"
					}
				}
				if gw.gen(path) > gen0 {
					hit = "gen"
				}
				if hit != "" {
					seen.Store(hit)
				}
				if hit != "" && stepRank(hit) >= stepRank(step) {
					if action == "stop" {
						out("step %s", hit)
						syscall.Kill(os.Getpid(), syscall.SIGSTOP)
						select {}
					}
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
		}()
	}
	wd := newWatchdog()
	t0 := time.Now()
	var w *producer.Writer
	var err error
	wd.call("producer.Open", 10*time.Second, func() { w, err = producer.Open(name, opts) })
	if step != "" {
		// The last steps end microseconds before Open returns: give the
		// watcher a moment to see them (the writer does nothing meanwhile,
		// so a kill now leaves what a kill at the step leaves).
		time.Sleep(20 * time.Millisecond)
	}
	stopWatch.Store(true)
	if err != nil {
		out("openerr %s %v", class(err), err)
		return 1
	}
	out("opened gen=%d us=%d step=%s", w.Generation(), time.Since(t0).Microseconds(), seen.Load())
	buf := make([]byte, size)
	pattern.Fill(buf, w.Stats().Ring.Head+1)
	wd.call("Writer.Publish", 10*time.Second, func() { _, err = w.Publish(ring.FrameInfo{Format: ring.Raw}, buf) })
	for range in {
	}
	w.Close()
	return 0
}

// genWatch reads a ring file's Generation through a read-only mapping of
// its first page, re-mapped when the name points at another inode, so that
// a look costs one lstat instead of an open, a read and a close.
type genWatch struct {
	ino uint64
	mem []byte
}

func (g *genWatch) gen(path string) uint64 {
	ino := inodeOf(path)
	if ino != g.ino {
		g.unmap()
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			return 0
		}
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Size >= 4096 && st.Ino == ino {
			g.mem, _ = syscall.Mmap(fd, 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
		}
		syscall.Close(fd)
		if g.mem == nil {
			return 0
		}
		g.ino = ino
	}
	if g.mem == nil {
		return 0
	}
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&g.mem[80])))
}

func (g *genWatch) unmap() {
	if g.mem != nil {
		syscall.Munmap(g.mem)
	}
	g.mem, g.ino = nil, 0
}

// stepRank orders the steps of a writer's open as they happen.
func stepRank(s string) int {
	return strings.Index("tmp tmpsized tmpformat named gen", s)
}

func inodeOf(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// genOf reads the Generation word of a ring file without mapping it (0 if
// unreadable). It opens with O_NONBLOCK and checks the type first, so a
// FIFO cannot block it.
func genOf(path string) uint64 {
	b := readAtMost(path, 88)
	if len(b) < 88 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[80:])
}

func magicAt(path string) bool {
	b := readAtMost(path, 8)
	return string(b) == "FRMRING\x00"
}

// readAtMost reads up to n bytes at offset 0 of a regular file.
func readAtMost(path string, n int) []byte {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil
	}
	b := make([]byte, n)
	m, _ := syscall.Pread(fd, b, 0)
	return b[:max(m, 0)]
}

// ---------------------------------------------------------------------------
// cycler

// usage is what a process holds: descriptors, mapping lines, threads,
// goroutines, resident memory.
type usage struct {
	FDs, Maps, Threads, Goroutines int
	RSSKiB                         int
}

func measure() usage {
	runtime.GC()
	debug.FreeOSMemory()
	var u usage
	ents, _ := os.ReadDir("/proc/self/fd")
	u.FDs = len(ents)
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		u.Maps = strings.Count(string(b), "\n")
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "Threads:" {
				u.Threads, _ = strconv.Atoi(f[1])
			}
			if len(f) >= 2 && f[0] == "VmRSS:" {
				u.RSSKiB, _ = strconv.Atoi(f[1])
			}
		}
	}
	u.Goroutines = runtime.NumGoroutine()
	return u
}

// helperCycler opens and closes readers or writers N times and prints what
// the process held after a warm-up, half-way and at the end:
//
//	usage {"Warm":..., "Half":..., "End":..., "N":..., "Errors":...}
//
//	KIND  reader (Open, one read by each API in turn, Close), writer (Open
//	      the existing ring, Publish, Close) or create (Open a new ring,
//	      Publish, Remove)
//	N, DIR, RING, SLOTS, BYTES
func helperCycler() int {
	dir, name, kind := os.Getenv("DIR"), os.Getenv("RING"), os.Getenv("KIND")
	n, size := envInt("N", 1000), envInt("BYTES", 4096)
	wopts := producer.Options{Dir: dir, Slots: envInt("SLOTS", 8), MaxFrameBytes: size, MetaBytes: 64}
	wd := newWatchdog()
	call := 5 * time.Second
	buf := make([]byte, size)
	errs := map[string]int{}
	first := map[string]string{}
	note := func(what string, err error) {
		k := what + ":" + class(err)
		errs[k]++
		if _, ok := first[k]; !ok {
			first[k] = err.Error()
		}
	}
	cycle := func(i int) {
		switch kind {
		case "writer", "create":
			rn := name
			if kind == "create" {
				rn = name + "-c"
			}
			var w *producer.Writer
			var err error
			wd.call("producer.Open", call, func() { w, err = producer.Open(rn, wopts) })
			if err != nil {
				note("open", err)
				return
			}
			pattern.Fill(buf, w.Stats().Ring.Head+1)
			wd.call("Writer.Publish", call, func() { _, err = w.Publish(ring.FrameInfo{Format: ring.Raw}, buf) })
			if err != nil {
				note("publish", err)
			}
			if kind == "create" {
				wd.call("Writer.Remove", call, func() { err = w.Remove() })
			} else {
				wd.call("Writer.Close", call, func() { err = w.Close() })
			}
			if err != nil {
				note("close", err)
			}
		case "reader":
			opts := consumer.Options{Dir: dir, HungAfter: time.Hour}
			var r *consumer.Reader
			var err error
			api := []string{"read", "acquire", "inplace", "openwait"}[i%4]
			if api == "openwait" {
				wd.call("consumer.OpenWait", call, func() {
					err = withDeadline(call, func(ctx context.Context) error { r, err = consumer.OpenWait(ctx, name, opts); return err })
				})
				api = "read"
			} else {
				wd.call("consumer.Open", call, func() { r, err = consumer.Open(name, opts) })
			}
			if err != nil {
				note("open", err)
				return
			}
			var bad error
			wd.call("Reader "+api, call, func() {
				err = withDeadline(call, func(ctx context.Context) error {
					switch api {
					case "read":
						f, err := r.Read(ctx, buf)
						if err == nil {
							bad = pattern.Check(f.Data, f.Number)
						}
						return err
					case "acquire":
						v, err := r.Acquire(ctx)
						if err != nil {
							return err
						}
						bad = pattern.Check(v.Frame().Data, v.Frame().Number)
						return v.Release()
					default:
						return r.ReadInPlace(ctx, func(f *ring.Frame) error {
							bad = pattern.Check(f.Data, f.Number)
							return nil
						})
					}
				})
			})
			if err != nil {
				note(api, err)
			} else if bad != nil {
				note(api+" pattern", bad)
			}
			wd.call("Reader.Close", call, func() { err = r.Close() })
			if err != nil {
				note("close", err)
			}
		}
	}
	warm := min(200, n/10)
	for i := 0; i < warm; i++ {
		cycle(i)
	}
	res := struct {
		Kind            string
		N               int
		Warm, Half, End usage
		Errors          map[string]int
		First           map[string]string
	}{Kind: kind, N: n, Errors: errs, First: first}
	res.Warm = measure()
	for i := 0; i < n/2; i++ {
		cycle(i)
	}
	res.Half = measure()
	for i := n / 2; i < n; i++ {
		cycle(i)
	}
	res.End = measure()
	b, _ := json.Marshal(res)
	out("usage %s", b)
	return 0
}

// ---------------------------------------------------------------------------
// waker

// helperWaker blocks a reader in a read on a ring whose writer is alive but
// publishes nothing, with a one-minute wait slice, and wakes it by
// cancelling its context or by closing the reader from another goroutine,
// N times: a lost wake-up leaves the read asleep for the rest of the slice,
// which the watchdog reports as a hang. It prints, at the end,
//
//	wakes cancel=C close=L maxus=M
//
//	DIR, RING, N; the APIs rotate: Read, Acquire, ReadInPlace.
func helperWaker() int {
	dir, name, n := os.Getenv("DIR"), os.Getenv("RING"), envInt("N", 1000)
	wd := newWatchdog()
	opts := consumer.Options{Dir: dir, StartAt: consumer.Next, WaitSlice: time.Minute, HungAfter: time.Hour}
	var cancels, closes int
	var maxWake time.Duration
	seed := uint64(time.Now().UnixNano())
	for i := 0; i < n; i++ {
		var r *consumer.Reader
		var err error
		wd.call("consumer.Open", time.Second, func() { r, err = consumer.Open(name, opts) })
		if err != nil {
			out("error open %s %v", class(err), err)
			return 1
		}
		ctx, cancel := context.WithCancel(context.Background())
		api := []string{"Read", "Acquire", "ReadInPlace"}[i%3]
		done := make(chan error, 1)
		go func() {
			var err error
			switch api {
			case "Read":
				_, err = r.Read(ctx, nil)
			case "Acquire":
				var v consumer.View
				if v, err = r.Acquire(ctx); err == nil {
					v.Release()
				}
			default:
				err = r.ReadInPlace(ctx, func(*ring.Frame) error { return nil })
			}
			done <- err
		}()
		// Wake it after 0 to 100 µs, spinning (a sleep that short is not
		// precise): the race is between the read's last look and its futex
		// wait, a window of microseconds somewhere in there.
		seed = seed*6364136223846793005 + 1442695040888963407
		for until := ring.Now() + int64(seed>>33)%100_000; ring.Now() < until; {
		}
		byClose := i%2 == 1
		what := fmt.Sprintf("%s woken by cancel (cycle %d)", api, i)
		if byClose {
			what = fmt.Sprintf("%s woken by Close (cycle %d)", api, i)
		}
		t0 := time.Now()
		wd.call(what, time.Millisecond, func() {
			if byClose {
				r.Close()
			} else {
				cancel()
			}
			err = <-done
		})
		maxWake = max(maxWake, time.Since(t0))
		if byClose {
			closes++
			if !errors.Is(err, ring.ErrClosed) {
				out("error %s returned %v, want ErrClosed", what, err)
				return 1
			}
		} else {
			cancels++
			if !errors.Is(err, context.Canceled) {
				out("error %s returned %v, want context.Canceled", what, err)
				return 1
			}
			wd.call("Reader.Close", time.Second, func() { r.Close() })
		}
		cancel()
	}
	out("wakes cancel=%d close=%d maxus=%d", cancels, closes, maxWake.Microseconds())
	return 0
}
