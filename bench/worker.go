package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/ring"
)

// Worker roles.
const (
	roleWriter = "writer" // one-way: publishes frames
	roleReader = "reader" // one-way: receives and verifies frames
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

// workerSpec is what the coordinator tells a worker process.
type workerSpec struct {
	Role  string `json:"role"`
	Case  Case   `json:"case"`
	Dir   string `json:"dir"`   // holds the case's rings, sockets and FIFOs
	Index int    `json:"index"` // reader number
	Addr  string `json:"addr"`  // the writer's address (TCP port)
	Seed  uint64 `json:"seed"`
}

// workerResult is what a worker reports on its last line.
type workerResult struct {
	Role     string         `json:"role"`
	Index    int            `json:"index"`
	Frames   uint64         `json:"frames"`   // writer: published; reader: accepted
	Torn     uint64         `json:"torn"`     // accepted but failed verification
	Rejected uint64         `json:"rejected"` // views Release refused (overwritten)
	First    int64          `json:"first"`    // CLOCK_MONOTONIC ns of the first accepted frame
	Last     int64          `json:"last"`     // ... and of the last
	Start    int64          `json:"start"`    // when the measurement started
	End      int64          `json:"end"`      // ... and ended
	CPU      float64        `json:"cpu_s"`    // user+system seconds from start to end
	Hist     *hist.Snapshot `json:"hist,omitempty"`
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
	var err error
	switch sp.Role {
	case roleWriter:
		err = runWriter(&sp, out)
	case roleReader:
		err = runReader(&sp, out)
	case rolePing:
		err = runPing(&sp, out)
	case rolePong:
		err = runPong(&sp, out)
	case roleMemcpy:
		err = runMemcpy(&sp, out)
	default:
		err = fmt.Errorf("unknown role %q", sp.Role)
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

// cpuSeconds is the process's user+system CPU time (getrusage).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
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

// pacer decides when the writer stops and how long it pauses.
type pacer struct {
	c     Case
	start int64
	rng   *rand.Rand
}

func newPacer(c Case, seed uint64) *pacer {
	return &pacer{c: c, start: ring.Now(), rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// more reports whether frame seq (1, 2, ...) should be sent.
func (p *pacer) more(seq uint64) bool {
	if p.c.Frames > 0 {
		return seq <= uint64(p.c.Frames)
	}
	return ring.Now()-p.start < int64(p.c.Duration)
}

// gap sleeps in latency runs, so that readers are waiting when the next
// frame comes: a random 1-3 ms, plus the time the readers need to verify
// a 4K frame, which would otherwise still be running when the next frame
// comes. Every size gets the same gaps: how long a reader has been idle
// changes how fast it wakes (CPU idle states, a VM's halted vCPU), and
// the comparison across sizes must not measure that.
func (p *pacer) gap() {
	if p.c.Kind == Latency {
		time.Sleep(settle(p.c) + time.Millisecond + time.Duration(p.rng.Int64N(int64(2*time.Millisecond))))
	}
}

// settle is the extra gap for the readers' verification of a frame of the
// case's size or 4K, whichever is larger, at a conservative 3 GB/s and
// two readers per core.
func settle(c Case) time.Duration {
	perCore := max(1, (c.Readers+1)/2)
	n := max(c.Shape.Bytes(), Shape4K.Bytes())
	return time.Duration(int64(n) * int64(perCore) * int64(time.Second) / 3e9)
}

// startSender opens the sending side called name for readers, says ready
// (with its address) to the coordinator, waits for the go signal and
// connects. The caller closes the sender.
func startSender(sp *workerSpec, out io.Writer, name string, readers int) (sender, error) {
	goCh := make(chan os.Signal, 1)
	signal.Notify(goCh, sigGo)
	defer signal.Stop(goCh)
	snd, addr, err := newSender(sp, name, readers)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "ready %s\n", addr)
	if err := awaitGo(goCh); err != nil {
		snd.close()
		return nil, err
	}
	if err := snd.connect(); err != nil {
		snd.close()
		return nil, err
	}
	return snd, nil
}

func runWriter(sp *workerSpec, out io.Writer) error {
	snd, err := startSender(sp, out, "data", sp.Case.Readers)
	if err != nil {
		return err
	}
	defer snd.close()
	buf := newFrame(sp.Case.Shape.Bytes())
	res := workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0 := cpuSeconds()
	p := newPacer(sp.Case, sp.Seed)
	for seq := uint64(1); p.more(seq); seq++ {
		prepare(buf, seq)
		if _, err := snd.send(buf); err != nil {
			return fmt.Errorf("frame %d: %w", seq, err)
		}
		res.Frames++
		p.gap()
	}
	res.End = ring.Now()
	res.CPU = cpuSeconds() - cpu0
	if err := snd.close(); err != nil {
		return err
	}
	return report(out, &res)
}

// stopContext is cancelled by the coordinator's stop signal.
func stopContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), sigStop, syscall.SIGTERM)
}

// tally counts what a reader accepts.
type tally struct {
	res workerResult
	h   hist.Histogram // publish start -> usable
}

// take accounts for one received frame: fr as received, at when it became
// usable, done the transport's verdict after verification (errRejected
// for a view refused at Release), published the frame's Frame.Published
// for framering (0 otherwise: the publish start is in the frame header).
func (t *tally) take(fr []byte, at int64, done func() error, published int64) error {
	ok := verify(fr)
	pub := sendTime(fr)
	if published != 0 {
		pub = published
	}
	if err := done(); err != nil {
		if errors.Is(err, errRejected) {
			t.res.Rejected++
			return nil
		}
		return err
	}
	t.res.Frames++
	if !ok {
		t.res.Torn++
	}
	if t.res.First == 0 {
		t.res.First = at
	}
	t.res.Last = at
	t.h.Record(at - pub)
	return nil
}

// finish fills in the end of the measurement.
func (t *tally) finish(cpu0 float64) {
	t.res.End = ring.Now()
	t.res.CPU = cpuSeconds() - cpu0
	t.res.Hist = t.h.Snapshot()
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
	stop := context.AfterFunc(ctx, rcv.interrupt)
	defer stop()
	fmt.Fprintln(out, "ready")
	var t tally
	t.res = workerResult{Role: sp.Role, Index: sp.Index, Start: ring.Now()}
	cpu0 := cpuSeconds()
	for {
		fr, at, err := rcv.recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := t.take(fr, at, rcv.done, publishedAt(rcv)); err != nil {
			return err
		}
	}
	t.finish(cpu0)
	return report(out, &t.res)
}

// runPing sends a frame, waits for the pong, records round trip / 2.
func runPing(sp *workerSpec, out io.Writer) error {
	snd, err := startSender(sp, out, "ping", 1)
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
	buf := newFrame(sp.Case.Shape.Bytes())
	var t tally
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0 := cpuSeconds()
	p := newPacer(sp.Case, sp.Seed)
	for seq := uint64(1); p.more(seq); seq++ {
		prepare(buf, seq)
		t0, err := snd.send(buf)
		if err != nil {
			return fmt.Errorf("ping %d: %w", seq, err)
		}
		t.res.Frames++ // counts pings; pongs are in Hist.Count
		fr, at, err := rcv.recv(ctx)
		if err != nil {
			return fmt.Errorf("pong %d: %w", seq, err)
		}
		ok := verify(fr) && frameSeq(fr) == seq
		if err := rcv.done(); err != nil {
			return fmt.Errorf("pong %d: %w", seq, err)
		}
		if !ok {
			t.res.Torn++
		}
		t.h.Record((at - t0) / 2)
		if t.res.First == 0 {
			t.res.First = at
		}
		t.res.Last = at
	}
	t.finish(cpu0)
	if err := snd.close(); err != nil {
		return err
	}
	return report(out, &t.res)
}

// runPong sends every frame it receives straight back, then verifies it.
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
	var t tally
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0 := cpuSeconds()
	for {
		fr, _, err := rcv.recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		// Verify before sending back: the send rewrites the header of a
		// stream or legacy frame. Latency here is not reported.
		ok := verify(fr)
		if _, err := snd.send(fr); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if err := rcv.done(); err != nil && !errors.Is(err, errRejected) {
			return err
		}
		t.res.Frames++
		if !ok {
			t.res.Torn++
		}
	}
	t.finish(cpu0)
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
	fmt.Fprintln(out, "ready -")
	if err := awaitGo(goCh); err != nil {
		return err
	}
	var t tally
	t.res = workerResult{Role: sp.Role, Start: ring.Now()}
	cpu0 := cpuSeconds()
	p := newPacer(sp.Case, sp.Seed)
	nop := func() error { return nil }
	for seq := uint64(1); p.more(seq); seq++ {
		s := src[seq&1]
		if sp.Case.Kind == Latency || seq <= 2 {
			prepare(s, seq) // throughput runs reuse the two stamped frames
		}
		setSend(s, ring.Now())
		copy(dst, s)
		at := ring.Now()
		if err := t.take(dst, at, nop, 0); err != nil {
			return err
		}
		p.gap()
	}
	t.finish(cpu0)
	return report(out, &t.res)
}
