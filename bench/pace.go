package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// The ack board is a small file in the case's directory that every
// process of a case maps: reader i stores, on its own 64-byte line, the
// sequence number of the last frame it has finished with (verified,
// released, counted). In paced cases the writer waits for every reader's
// ack before it starts the pause that precedes the next frame, so every
// reader is idle, asleep in its wait, for the same random 1-3 ms before
// each frame, whatever the frame size, the number of readers or the
// transport: a halted vCPU wakes slower the longer it slept, and ratios
// between cases are only fair at equal pauses. Verification is off the
// timed path (the timestamp is taken before it) and cannot overlap the
// next frame.
//
// A reader also says when it has a frame (before it verifies it): the
// writer prepares its next frame (its checksum) only then, so that the
// preparation neither competes with the readers' wake-up nor lengthens
// the pause by an amount that grows with the frame size. With several
// readers a latency case also keeps the readers' checks apart from each
// other's wake-ups: a reader that has its frame waits, asleep on a futex,
// until every reader has its frame before it verifies it; so the figure is the
// cost of waking N readers, not of N readers checksumming on few CPUs.
//
//	off          size
//	0            4     barrier word: bumped (and woken) when all readers have a frame
//	64*(i+1)     8     reader i's last finished sequence number
//	64*(i+1)+8   8     reader i's last received sequence number
const (
	ackFile   = "acks"
	ackLine   = 64
	ackSize   = ackLine * (maxReaders + 1)
	ackPoll   = 100 * time.Microsecond // how often the writer looks
	ackWait   = 2 * time.Second        // hang guard: a reader that lost a frame does not stall the case
	gapMin    = time.Millisecond       // the pause before each paced frame: 1 ms ...
	gapSpread = 2 * time.Millisecond   // ... plus up to 2 ms, uniform
)

// ackBoard is a mapped ack file.
type ackBoard struct {
	f *shm.File
	m *shm.Mapping
}

func ackPath(dir string) string { return filepath.Join(dir, ackFile) }

// createAcks makes the case's ack board (the writer, before it says ready).
func createAcks(dir string) (*ackBoard, error) {
	f, err := shm.Create(ackPath(dir), ackSize, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ack board: %w", err)
	}
	return mapAcks(f)
}

// openAcks maps the case's ack board (a reader).
func openAcks(dir string) (*ackBoard, error) {
	f, err := shm.Open(ackPath(dir), true)
	if err != nil {
		return nil, fmt.Errorf("ack board: %w", err)
	}
	return mapAcks(f)
}

func mapAcks(f *shm.File) (*ackBoard, error) {
	m, err := shm.Map(f, ackSize, true)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ack board: %w", err)
	}
	return &ackBoard{f: f, m: m}, nil
}

func (a *ackBoard) word(i int) *atomic.Uint64 {
	w, err := shm.Uint64At(a.m.Bytes(), ackLine*(i+1))
	if err != nil {
		panic(fmt.Sprintf("ack board: %v", err)) // our own layout: index checked by Case.Check
	}
	return w
}

// ack says reader i is done with frame seq.
func (a *ackBoard) ack(i int, seq uint64) {
	if a != nil {
		a.word(i).Store(seq)
	}
}

// received says reader i has frame seq (not yet verified).
func (a *ackBoard) received(i int, seq uint64) {
	if a != nil {
		a.word2(i).Store(seq)
	}
}

func (a *ackBoard) word2(i int) *atomic.Uint64 {
	w, err := shm.Uint64At(a.m.Bytes(), ackLine*(i+1)+8)
	if err != nil {
		panic(fmt.Sprintf("ack board: %v", err))
	}
	return w
}

// barrier waits until readers 0..n-1 have received seq (at most ackWait:
// a reader that lost the frame does not stall the others), asleep on the
// board's futex word, which the last reader to arrive bumps and wakes: a
// sleeping reader takes no CPU from the ones still to be woken (a timer
// poll would wake a thread of its process every few µs).
func (a *ackBoard) barrier(n int, seq uint64) {
	if a == nil || n < 2 {
		return
	}
	gen := a.gen()
	deadline := time.Now().Add(ackWait)
	for {
		g := gen.Load() // before the check: a bump after it ends the wait
		all := true
		for i := 0; i < n && all; i++ {
			all = a.word2(i).Load() >= seq
		}
		if all {
			gen.Add(1)
			shm.FutexWake(gen, math.MaxInt32)
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		shm.FutexWait(gen, g, min(left, waitSlice))
	}
}

// gen is the board's barrier word (offset 0).
func (a *ackBoard) gen() *atomic.Uint32 {
	w, err := shm.Uint32At(a.m.Bytes(), 0)
	if err != nil {
		panic(fmt.Sprintf("ack board: %v", err))
	}
	return w
}

// await waits until readers 0..n-1 have acked seq (or a later frame),
// at most timeout; it reports whether they all did.
func (a *ackBoard) await(n int, seq uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for i := 0; i < n && all; i++ {
			all = a.word(i).Load() >= seq
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(ackPoll)
	}
}

func (a *ackBoard) close() {
	if a == nil {
		return
	}
	a.m.Unmap()
	a.f.Close()
}

// paced reports whether k's writer waits for acks and pauses between
// frames.
func paced(k Kind) bool { return k == Latency || k == CopyOut }

// pacer decides when the writer stops and how long it pauses.
type pacer struct {
	c       Case
	start   int64
	rng     *rand.Rand
	acks    *ackBoard
	readers int
	// timeouts counts frames some reader did not ack within ackWait.
	timeouts uint64
}

func newPacer(c Case, seed uint64, acks *ackBoard, readers int) *pacer {
	return &pacer{c: c, start: ring.Now(), rng: rand.New(rand.NewPCG(seed, 0x5eed)), acks: acks, readers: readers}
}

// minFrames is the fewest frames a case sends, whatever its duration, so
// that a short case on a busy machine still has steady-state frames
// after the first ringSlots.
const minFrames = 3 * ringSlots

// more reports whether frame seq (1, 2, ...) should be sent.
func (p *pacer) more(seq uint64) bool {
	if p.c.Frames > 0 {
		return seq <= uint64(p.c.Frames)
	}
	return ring.Now()-p.start < int64(p.c.Duration) || seq <= minFrames
}

// delivered, after frame seq went out, waits (in paced cases) until every
// reader has it (at most ackWait).
func (p *pacer) delivered(seq uint64) {
	if !paced(p.c.Kind) || p.acks == nil {
		return
	}
	deadline := time.Now().Add(ackWait)
	for {
		all := true
		for i := 0; i < p.readers && all; i++ {
			all = p.acks.word2(i).Load() >= seq
		}
		if all || time.Now().After(deadline) {
			return
		}
		time.Sleep(ackPoll)
	}
}

// gap, after frame seq went out: in paced cases wait for the readers'
// acks of seq, then sleep a random 1-3 ms.
func (p *pacer) gap(seq uint64) {
	if !paced(p.c.Kind) {
		return
	}
	if p.acks != nil && !p.acks.await(p.readers, seq, ackWait) {
		p.timeouts++
	}
	time.Sleep(gapMin + time.Duration(p.rng.Int64N(int64(gapSpread))))
}
