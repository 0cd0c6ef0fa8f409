package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// Worker roles.
const (
	roleWriter = "writer" // one-way: publishes frames (idle: keeps a ring alive)
	roleReader = "reader" // one-way: receives and verifies frames (copy-out, idle: see the kind)
	rolePing   = "ping"   // ping-pong: sends a frame, waits for it back
	rolePong   = "pong"   // ping-pong: sends every frame straight back
	roleMemcpy = "memcpy" // the in-process reference
)

// Signals between the coordinator and its workers.
var (
	sigGo   = syscall.SIGUSR1 // to the writer: every reader is ready, start
	sigStop = syscall.SIGUSR2 // to a reader: the writer is done, report
)

// Hang guards (not measurements): how long a worker waits for its peers.
const (
	goTimeout      = 60 * time.Second
	connectTimeout = 30 * time.Second
)

// contendedMin is the scheduler delay from which a frame counts as
// contended: its reader spent at least this long runnable but without a
// CPU between starting to wait for it and having it.
const contendedMin = 5 * time.Microsecond

// copyPoll is how long a copy-out reader sleeps between looks.
const copyPoll = 50 * time.Microsecond

// idleMargin is how much longer than its readers' window an idle case's
// writer stays.
const idleMargin = time.Second

// workerSpec is what the coordinator tells a Go worker process.
type workerSpec struct {
	Role  string `json:"role"`
	Case  Case   `json:"case"`
	Dir   string `json:"dir"`   // holds the case's rings, sockets, FIFOs and ack board
	Index int    `json:"index"` // reader number
	Addr  string `json:"addr"`  // the writer's address (TCP port)
	Seed  uint64 `json:"seed"`
	CPU   int    `json:"cpu"` // pin the process to this CPU; -1: no pinning
}

// Sample is one frame's figures: the writer's sequence number, the value
// (a reader's one-way latency, or the writer's time to publish), and the
// scheduler delay in the same window (-1 when unknown), all in ns.
type Sample [3]int64

// workerResult is what a worker reports on its last line. The C and
// Python workers (bench/workers) write the same JSON, with Samples and
// Timings rather than histograms.
type workerResult struct {
	Role     string  `json:"role"`
	Index    int     `json:"index"`
	Frames   uint64  `json:"frames"`   // writer: published; reader: accepted
	Torn     uint64  `json:"torn"`     // accepted but failed verification
	Rejected uint64  `json:"rejected"` // views Release refused (overwritten)
	First    int64   `json:"first"`    // CLOCK_MONOTONIC ns of the first accepted frame
	Last     int64   `json:"last"`     // ... and of the last
	Start    int64   `json:"start"`    // when the measurement started
	End      int64   `json:"end"`      // ... and ended
	CPU      float64 `json:"cpu_s"`    // user+system seconds from start to end
	Switches uint64  `json:"switches"` // context switches from start to end (getrusage)
	// Hist is the latency of the steady-state frames (those after the
	// first ringSlots), FirstLat the latency of the first ones, Sched the
	// scheduler delay per frame, Uncontended the latency of the frames
	// with less than contendedMin of it: workers that keep histograms
	// (throughput, ping-pong).
	Hist        *hist.Snapshot `json:"hist,omitempty"`
	FirstLat    []int64        `json:"first_latency,omitempty"`
	Sched       *hist.Snapshot `json:"sched,omitempty"`
	Uncontended *hist.Snapshot `json:"uncontended,omitempty"`
	Contended   uint64         `json:"contended"`
	// Samples: every frame's figures (latency cases; the C and Python
	// readers always).
	Samples []Sample `json:"samples,omitempty"`
	// Timings: copy-out cases, the ns of each timed copy by method.
	Timings map[string][]int64 `json:"timings,omitempty"`
	// OpenNs is the writer's producer.Open: creating the ring.
	OpenNs int64 `json:"open_ns,omitempty"`
	// AckTimeouts counts paced frames some reader did not ack in time.
	AckTimeouts uint64 `json:"ack_timeouts,omitempty"`
}

// WorkerMain runs one benchmark worker process: spec is the JSON the
// coordinator passed, out its standard output. It returns the exit status.
// framering's hidden bench-worker command and the package's test binary
// call it.
func WorkerMain(spec string, out io.Writer) int {
	var sp workerSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		fmt.Fprintf(os.Stderr, "bench worker: bad spec: %v\n", err)
		return 2
	}
	if err := sp.Case.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "bench worker: %v\n", err)
		return 2
	}
	// One thread does the work, so that /proc/thread-self/schedstat is
	// its scheduler delay.
	runtime.LockOSThread()
	var err error
	if sp.CPU >= 0 {
		err = shm.PinProcess(sp.CPU)
	}
	if err == nil {
		switch sp.Role {
		case roleWriter:
			err = runWriter(&sp, out)
		case roleReader:
			switch sp.Case.Kind {
			case CopyOut:
				err = runCopyOut(&sp, out)
			case Idle:
				err = runIdle(&sp, out)
			default:
				err = runReader(&sp, out)
			}
		case rolePing:
			err = runPing(&sp, out)
		case rolePong:
			err = runPong(&sp, out)
		case roleMemcpy:
			err = runMemcpy(&sp, out)
		default:
			err = fmt.Errorf("unknown role %q", sp.Role)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench worker %s %d (%s): %v\n", sp.Role, sp.Index, sp.Case.Name(), err)
		return 1
	}
	return 0
}

func report(out io.Writer, res *workerResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "result %s\n", b)
	return err
}

// awaitGo waits for the coordinator's go signal on ch.
func awaitGo(ch <-chan os.Signal) error {
	select {
	case <-ch:
		return nil
	case <-time.After(goTimeout):
		return fmt.Errorf("no start signal from the coordinator in %v", goTimeout)
	}
}

// startSender opens the sending side called name for readers (and, in
// paced cases, the ack board), says ready (with its address) to the
// coordinator, waits for the go signal and connects. The caller closes
// the sender and the board.
func startSender(sp *workerSpec, out io.Writer, name string, readers int) (sender, *ackBoard, error) {
	goCh := make(chan os.Signal, 1)
	signal.Notify(goCh, sigGo)
	defer signal.Stop(goCh)
	var acks *ackBoard
	if paced(sp.Case.Kind) {
		var err error
		if acks, err = createAcks(sp.Dir); err != nil {
			return nil, nil, err
		}
	}
	snd, addr, err := newSender(sp, name, readers)
	if err != nil {
		acks.close()
		return nil, nil, err
	}
	fmt.Fprintf(out, "ready %s\n", addr)
	if err := awaitGo(goCh); err == nil {
		err = snd.connect()
	}
	if err != nil {
		snd.close()
		acks.close()
		return nil, nil, err
	}
	return snd, acks, nil
}

func runWriter(sp *workerSpec, out io.Writer) error {
	snd, acks, err := startSender(sp, out, "data", sp.Case.Readers)
	if err != nil {
		return err
	}
	defer acks.close()
	defer snd.close()
	res := workerResult{Role: sp.Role, Start: ring.Now()}
	if rs, ok := snd.(*ringSender); ok {
		res.OpenNs = rs.openNs
	}
	cpu0, sw0 := usage()
	if sp.Case.Kind == Idle {
		time.Sleep(idleDuration(sp.Case) + idleMargin)
	} else {
		buf := newFrame(sp.Case.Shape.Bytes())
		p := newPacer(sp.Case, sp.Seed, acks, sp.Case.Readers)
		prepare(buf, 1)
		for seq := uint64(1); p.more(seq); seq++ {
			t0 := ring.Now()
			if _, err := snd.send(buf); err != nil {
				return fmt.Errorf("frame %d: %w", seq, err)
			}
			d := ring.Now() - t0
			if sp.Case.Kind == Latency {
				res.Samples = append(res.Samples, Sample{int64(seq), d, -1})
			}
			res.Frames++
			// The next frame is prepared (its checksum computed) once every
			// reader has this one, while they verify it: not during their
			// wake-up, and not during the pause before the next frame, which
			// would make the readers' idle time grow with the frame size.
			p.delivered(seq)
			prepare(buf, seq+1)
			p.gap(seq)
		}
		res.AckTimeouts = p.timeouts
	}
	res.End = ring.Now()
	cpu1, sw1 := usage()
	res.CPU, res.Switches = cpu1-cpu0, sw1-sw0
	if err := snd.close(); err != nil {
		return err
	}
	return report(out, &res)
}

// idleDuration is how long an idle case's readers are watched.
func idleDuration(c Case) time.Duration {
	if c.Duration > 0 {
		return c.Duration
	}
	return time.Duration(c.Frames) * 10 * time.Millisecond
}

// stopContext is cancelled by the coordinator's stop signal.
func stopContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), sigStop, syscall.SIGTERM)
}

// tally counts what a reader accepts.
type tally struct {
	res     workerResult
	samples bool // keep every frame's figures (latency cases)
	h       hist.Histogram
	sched   hist.Histogram
	unc     hist.Histogram
}

// checker returns the verification of a case's frames: none for the bare
// ping (it carries no frame), the sequence number only for ping-pong in
// place (only the header is written), the full check otherwise.
func checker(c Case) func([]byte) bool {
	switch {
	case c.Transport == Bare:
		return func([]byte) bool { return true }
	case c.Kind == PingPong && c.Transport == FrameringView:
		return func(b []byte) bool { return len(b) >= benchHdr }
	}
	return verify
}

// take accounts for one received frame: fr as received, at when it became
// usable, done the transport's verdict after verification (errRejected
// for a view refused at Release), published the frame's Frame.Published
// for framering (0 otherwise: the publish start is in the frame header),
// sched the reader's scheduler delay while it waited (-1: unknown), seq
// the frame's number (0: the one in its header). It returns the frame's
// sequence number.
func (t *tally) take(fr []byte, at int64, done func() error, published int64, check func([]byte) bool, sched int64, seq uint64) (uint64, error) {
	ok := check(fr)
	pub := sendTime(fr)
	if published != 0 {
		pub = published
	}
	if seq == 0 {
		seq = frameSeq(fr) // before done: a view's bytes may change after
	}
	if err := done(); err != nil {
		if errors.Is(err, errRejected) {
			t.res.Rejected++
			return seq, nil
		}
		return seq, err
	}
	t.res.Frames++
	if !ok {
		t.res.Torn++
	}
	if t.res.First == 0 {
		t.res.First = at
	}
	t.res.Last = at
	t.record(seq, at-pub, sched)
	return seq, nil
}

// record files one frame's latency and scheduler delay.
func (t *tally) record(seq uint64, lat, sched int64) {
	if t.samples {
		t.res.Samples = append(t.res.Samples, Sample{int64(seq), lat, sched})
		return
	}
	if seq <= ringSlots {
		t.res.FirstLat = append(t.res.FirstLat, lat)
		return
	}
	t.h.Record(lat)
	if sched < 0 {
		return
	}
	t.sched.Record(sched)
	if sched >= int64(contendedMin) {
		t.res.Contended++
	} else {
		t.unc.Record(lat)
	}
}

// finish fills in the end of the measurement.
func (t *tally) finish(cpu0 float64, sw0 uint64) {
	t.res.End = ring.Now()
	cpu1, sw1 := usage()
	t.res.CPU, t.res.Switches = cpu1-cpu0, sw1-sw0
	if !t.samples {
		t.res.Hist = t.h.Snapshot()
		t.res.Sched = t.sched.Snapshot()
		t.res.Uncontended = t.unc.Snapshot()
	}
}

// publishedAt is Frame.Published of the frame rcv returned last, for
// framering (the writer's CLOCK_MONOTONIC at Commit); 0 otherwise.
func publishedAt(rcv receiver) int64 {
	if r, ok := rcv.(*ringReceiver); ok {
		return r.pub
	}
	return 0
}

func runReader(sp *workerSpec, out io.Writer) error {
	ctx, cancel := stopContext()
	defer cancel()
	rcv, err := newReceiver(ctx, sp, "data", sp.Index)
	if err != nil {
		return err
	}
	defer rcv.close()
	var acks *ackBoard
	if paced(sp.Case.Kind) {
		if acks, err = openAcks(sp.Dir); err != nil {
			return err
		}
		defer acks.close()
	}
	stop := context.AfterFunc(ctx, rcv.interrupt)
	defer stop()
	clk := newSchedClock()
	defer clk.close()
	check := checker(sp.Case)
	fmt.Fprintln(out, "ready")
	t := tally{samples: sp.Case.Kind == Latency}
	t.res = workerResult{Role: sp.Role, Index: sp.Index, Start: ring.Now()}
	cpu0, sw0 := usage()
	for {
		settle()
		s0 := clk.now()
		fr, at, err := rcv.recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		sd := clk.since(s0)
		if acks != nil {
			// The writer prepares its next frame once every reader has this
			// one; with several readers, every reader has its frame before
			// any verifies its own.
			seq := frameSeq(fr)
			acks.received(sp.Index, seq)
			if sp.Case.Kind == Latency {
				acks.barrier(sp.Case.Readers, seq)
			}
		}
		seq, err := t.take(fr, at, rcv.done, publishedAt(rcv), check, sd, 0)
		if err != nil {
			return err
		}
		acks.ack(sp.Index, seq)
	}
	t.finish(cpu0, sw0)
	return report(out, &t.res)
}

// runPing sends a frame, waits for the pong, records round trip / 2 from
// before the send (a copy transport's copy in is inside) to the pong
// usable (its copy out done), and its own scheduler delay over the round
// trip.
func runPing(sp *workerSpec, out io.Writer) error {
	snd, _, err := startSender(sp, out, "ping", 1)
	if err != nil {
		return err
	}
	defer snd.close()
	ctx, cancel := context.WithTimeout(context.Background(), sp.Case.Duration+goTimeout)
	defer cancel()
	rcv, err := backChannel(ctx, sp, snd, "pong")
	if err != nil {
		return err
	}
	defer rcv.close()
	stop := context.AfterFunc(ctx, rcv.interrupt)
	defer stop()
	clk := newSchedClock()
	defer clk.close()
	check := checker(sp.Case)
	buf := newFrame(sp.Case.Shape.Bytes())
	var t tally
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0, sw0 := usage()
	p := newPacer(sp.Case, sp.Seed, nil, 0)
	for seq := uint64(1); p.more(seq); seq++ {
		prepare(buf, seq)
		settle()
		s0 := clk.now()
		t0 := ring.Now()
		if _, err := snd.send(buf); err != nil {
			return fmt.Errorf("ping %d: %w", seq, err)
		}
		t.res.Frames++ // counts pings; pongs are in Hist.Count
		fr, at, err := rcv.recv(ctx)
		if err != nil {
			return fmt.Errorf("pong %d: %w", seq, err)
		}
		sd := clk.since(s0)
		ok := check(fr) && frameSeq(fr) == seq
		if err := rcv.done(); err != nil {
			return fmt.Errorf("pong %d: %w", seq, err)
		}
		if !ok {
			t.res.Torn++
		}
		t.record(seq, (at-t0)/2, sd)
		if t.res.First == 0 {
			t.res.First = at
		}
		t.res.Last = at
	}
	t.finish(cpu0, sw0)
	if err := snd.close(); err != nil {
		return err
	}
	return report(out, &t.res)
}

// runPong sends every frame it receives straight back, then checks it:
// the header and the page marks (verifyHeader) for frames that carry a
// payload, so that no checksum pass sits inside the round trip; the pinger
// verifies the frame that went both ways in full.
func runPong(sp *workerSpec, out io.Writer) error {
	ctx, cancel := stopContext()
	defer cancel()
	rcv, err := newReceiver(ctx, sp, "ping", 0)
	if err != nil {
		return err
	}
	defer rcv.close()
	snd, err := replyChannel(sp, rcv, "pong")
	if err != nil {
		return err
	}
	defer snd.close()
	stop := context.AfterFunc(ctx, rcv.interrupt)
	defer stop()
	fmt.Fprintln(out, "ready")
	if err := snd.connect(); err != nil {
		return err
	}
	quick := verifyHeader
	if sp.Case.Transport == FrameringView {
		quick = checker(sp.Case)
	}
	var t tally
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0, sw0 := usage()
	for {
		fr, _, err := rcv.recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if _, err := snd.send(fr); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		ok := quick(fr)
		if err := rcv.done(); err != nil && !errors.Is(err, errRejected) {
			return err
		}
		t.res.Frames++
		if !ok {
			t.res.Torn++
		}
	}
	t.finish(cpu0, sw0)
	return report(out, &t.res)
}

// runMemcpy is the reference: the per-frame work of a framering copy-out
// reader (copy the frame into the reader's buffer, verify it) with no IPC
// and no writer competing. In throughput runs the two source frames are
// stamped once and copied alternately.
func runMemcpy(sp *workerSpec, out io.Writer) error {
	goCh := make(chan os.Signal, 1)
	signal.Notify(goCh, sigGo)
	n := sp.Case.Shape.Bytes()
	src := [2][]byte{newFrame(n), newFrame(n)}
	dst := make([]byte, n)
	clk := newSchedClock()
	defer clk.close()
	fmt.Fprintln(out, "ready -")
	if err := awaitGo(goCh); err != nil {
		return err
	}
	t := tally{samples: sp.Case.Kind == Latency}
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0, sw0 := usage()
	p := newPacer(sp.Case, sp.Seed, nil, 0)
	nop := func() error { return nil }
	for seq := uint64(1); p.more(seq); seq++ {
		s := src[seq&1]
		if sp.Case.Kind != Throughput || seq <= 2 {
			prepare(s, seq) // throughput runs reuse the two stamped frames
		}
		s0 := clk.now()
		setSend(s, ring.Now())
		copy(dst, s)
		at := ring.Now()
		if _, err := t.take(dst, at, nop, 0, verify, clk.since(s0), seq); err != nil {
			return err
		}
		p.gap(seq)
	}
	t.finish(cpu0, sw0)
	return report(out, &t.res)
}

// Copy-out methods, the keys of workerResult.Timings.
const (
	MethodRead   = "read"         // the library's copy-out read (Go Read, C framering_reader_read, Python read(out=))
	MethodGoCopy = "go-copy"      // Go's copy of the slot, in place through a view
	MethodGlibc  = "glibc-memcpy" // glibc's memcpy of the slot, in place through a C view
	MethodNumpy  = "numpy-copy"   // numpy.copyto of the slot, in place through a Python view
)

// runCopyOut is the Go copy-out reader: it looks for a frame without
// waiting (sleeping copyPoll between looks), and times, on alternate
// frames, Read into its buffer or, through a view, Go's copy of the same
// slot into the same buffer; it verifies the copy after timing it.
// Either way the slot was just written by the writer on another CPU.
func runCopyOut(sp *workerSpec, out io.Writer) error {
	ctx, cancel := stopContext()
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, connectTimeout)
	r, err := consumer.OpenWait(octx, "data", consumer.Options{Dir: sp.Dir, StartAt: consumer.Next, WaitSlice: waitSlice})
	ocancel()
	if err != nil {
		return err
	}
	defer r.Close()
	acks, err := openAcks(sp.Dir)
	if err != nil {
		return err
	}
	defer acks.close()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	cancelExpired()
	buf := make([]byte, sp.Case.Shape.Bytes())
	fmt.Fprintln(out, "ready")
	res := workerResult{Role: sp.Role, Index: sp.Index, Start: ring.Now(), Timings: map[string][]int64{}}
	cpu0, sw0 := usage()
	for i := 0; ctx.Err() == nil; {
		var d int64
		var err error
		method := MethodRead
		if i%2 == 0 {
			t0 := ring.Now()
			_, err = r.Read(expired, buf)
			d = ring.Now() - t0
		} else {
			method = MethodGoCopy
			var v consumer.View
			if v, err = r.Acquire(expired); err == nil {
				t0 := ring.Now()
				copy(buf, v.Frame().Data)
				d = ring.Now() - t0
				if rerr := v.Release(); rerr != nil {
					res.Rejected++
					continue
				}
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded):
			time.Sleep(copyPoll)
			continue
		case errors.Is(err, ring.ErrWriterGone), errors.Is(err, ring.ErrClosed):
			goto done
		default:
			return err
		}
		i++
		at := ring.Now()
		acks.received(sp.Index, frameSeq(buf))
		res.Timings[method] = append(res.Timings[method], d)
		res.Frames++
		if !verify(buf) {
			res.Torn++
		}
		if res.First == 0 {
			res.First = at
		}
		res.Last = at
		acks.ack(sp.Index, frameSeq(buf))
	}
done:
	res.End = ring.Now()
	cpu1, sw1 := usage()
	res.CPU, res.Switches = cpu1-cpu0, sw1-sw0
	return report(out, &res)
}

// runIdle is a reader with the library's default options blocked in
// Acquire on a ring whose writer is alive and publishes nothing, for the
// case's duration: its CPU time and context switches (each wake-up from
// the futex, the liveness checks between wait slices, the runtime's own
// threads) over that window.
func runIdle(sp *workerSpec, out io.Writer) error {
	ctx, cancel := stopContext()
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, connectTimeout)
	r, err := consumer.OpenWait(octx, "data", consumer.Options{Dir: sp.Dir, StartAt: consumer.Next})
	ocancel()
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintln(out, "ready")
	res := workerResult{Role: sp.Role, Index: sp.Index, Start: ring.Now()}
	cpu0, sw0 := usage()
	wctx, wcancel := context.WithTimeout(ctx, idleDuration(sp.Case))
	v, err := r.Acquire(wctx)
	wcancel()
	res.End = ring.Now()
	cpu1, sw1 := usage()
	res.CPU, res.Switches = cpu1-cpu0, sw1-sw0
	if err == nil {
		v.Release()
		return fmt.Errorf("idle: frame %d arrived on a ring nobody publishes to", v.Frame().Number)
	}
	if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return err
	}
	return report(out, &res)
}
