package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/internal/memcopy"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats.go"
)

// InConfig configures a bridge in: a NATS subject, published into a ring
// on this host.
type InConfig struct {
	// Ring is the ring to write and Dir its directory ("" means /dev/shm).
	// Another writer on it is an error.
	Ring, Dir string
	// Slots is the ring's slot count, a power of two >= 2. Zero means 8.
	Slots int
	// MaxFrameBytes fixes the ring's slot capacity: the ring is created at
	// Run's start and larger frames are dropped (counted as too_large).
	// Zero means the ring is created when the first frame arrives, sized
	// by it, and re-created larger when a larger frame comes (its readers
	// see the writer gone, then re-map).
	MaxFrameBytes int
	// MetaBytes is the metadata capacity of a slot. Zero means 4096, or
	// more when a frame brings more.
	MetaBytes int
	// Perm is the ring's permission bits (see producer.Options.Perm). Zero
	// means 0600.
	Perm fs.FileMode
	// NATS is the connection.
	NATS Conn
	// Subject is the NATS subject to follow.
	Subject string
	// Stream, if set, is the only stream accepted (OutConfig.Stream of its
	// sender); others are counted and skipped. Empty means: follow the
	// first stream seen, and another one only after the current one has
	// been silent for StreamTimeout.
	Stream string
	// FrameLimit is the largest frame (data bytes) accepted. Zero means
	// MaxFrameBytes if set, else 64 MiB.
	FrameLimit int
	// MaxPending is how many frames may be reassembled at once, and
	// PendingBytes how many bytes they may take. Zero means 4 frames and
	// 2*FrameLimit + 1 MiB. A frame that must make room for another is
	// dropped (incomplete).
	MaxPending, PendingBytes int
	// ChunkTimeout drops a frame whose next chunk does not come for this
	// long. Zero means 2 s.
	ChunkTimeout time.Duration
	// StreamTimeout is how long the followed stream must be silent before
	// another stream on the subject is followed. Zero means 3 s.
	StreamTimeout time.Duration
	// BufferBytes bounds the messages the NATS client holds for the bridge
	// before it handles them; beyond it the client drops messages and
	// reports a slow consumer. Zero means 64 MiB, or 3*FrameLimit if larger.
	BufferBytes int
	// Logf, if set, receives one line per event. Credentials are never
	// logged.
	Logf func(format string, args ...any)
}

// Chunk error reasons (labels of framering_bridge_chunk_errors_total).
var chunkReasons = []string{"foreign", "version", "malformed", "too_large", "inconsistent", "duplicate", "stale", "other_stream"}

// InStats is a snapshot of a bridge in's counters.
type InStats struct {
	Delivered uint64 // frames published into the ring
	Messages  uint64 // NATS messages received, valid or not
	Bytes     uint64 // bytes of those messages
	// Frames dropped, by reason. Lost: no chunk of the frame arrived (a gap
	// in the sender's sequence). Incomplete: some chunks never came (or
	// the frame had to make room, or its sender restarted). Corrupt:
	// checksum mismatch, chunks that disagree, undecodable JPEG. TooLarge:
	// larger than the ring's fixed slots or the reassembly budget.
	// RingErrors: the ring refused it.
	Lost, Incomplete, Corrupt, TooLarge, RingErrors uint64
	// Pending is how many frames have begun to arrive and are not yet
	// delivered or dropped (being reassembled, or being published).
	Pending uint64
	// SeqFirst and SeqLast are the first and last frame sequence numbers
	// seen of the sender run followed now.
	SeqFirst, SeqLast uint64
	// Window is how many frames the followed senders tried to send since
	// this bridge first heard of each: Delivered + Dropped() + Pending ==
	// Window (a snapshot taken while a frame is being resolved may show
	// one more on the left, never one less).
	Window uint64
	// ChunkErrors counts messages rejected, by reason: foreign (not a
	// bridge message), version, malformed, too_large, inconsistent (a
	// chunk disagreeing with its frame's first), duplicate, stale (of a
	// frame already finished, or of a sender's earlier run), other_stream.
	ChunkErrors map[string]uint64
	// SlowConsumer counts the NATS client's slow-consumer events;
	// ClientDropped the messages it dropped (included in the frames
	// counted as lost or incomplete).
	SlowConsumer, ClientDropped uint64
	Disconnects, Reconnects     uint64
	Connected                   bool
	// Sessions counts sender runs followed; Renumbered the times the
	// numbering had to be moved up because the source's went back (its ring
	// was re-created); SourceGone the notices that the sender's ring writer
	// or the sender stopped (the ring's writer was closed in turn).
	Sessions, Renumbered, SourceGone uint64
	// Latency is the source's publish (wall clock) -> published into this
	// ring (wall clock) time, ns: across hosts it is only as good as their
	// clock synchronisation.
	Latency ring.Latency
}

// Dropped is every frame of the window not delivered.
func (s InStats) Dropped() uint64 {
	return s.Lost + s.Incomplete + s.Corrupt + s.TooLarge + s.RingErrors
}

// In is a bridge in. Create it with NewIn, run it with Run; Stats and
// Collector may be used from any goroutine.
type In struct {
	cfg        InConfig
	wantStream uint64
	limit      int
	runMu      sync.Mutex
	link

	// counters, read by Stats without the lock
	delivered, messages, bytes                      atomic.Uint64
	lost, incomplete, corrupt, tooLarge, ringErrors atomic.Uint64
	pending, window, seqFirst, seqLast              atomic.Uint64
	chunkErrors                                     [8]atomic.Uint64 // by chunkReasons
	slowConsumer, clientDropped                     atomic.Uint64
	sessions, renumbered, sourceGone                atomic.Uint64
	latency                                         hist.Histogram

	mu       sync.Mutex // the state below; held by the message handler
	closed   bool
	fatal    error
	fatalCh  chan struct{}
	sink     sink
	cur      follow
	retired  [16]uint64 // sessions superseded by a restart of their stream
	nRetired int
	asm      []*assembly
	asmBytes int
	spare    []byte // a finished assembly's buffer, for the next
	dec      jpegDecoder
	logged   map[string]bool
	// slowHook, if set (tests), runs before each message is handled: a
	// slow receiver.
	slowHook func()
}

// follow is the stream and session being followed.
type follow struct {
	valid            bool
	stream, session  uint64
	seen             int64 // CLOCK_MONOTONIC of its last accepted message
	seqFirst, seqMax uint64
	offsetSet        bool
	offset           uint64 // ring number = source number + offset
}

// assembly is a frame being reassembled from chunks: into a private
// buffer (JPEG), or straight into the ring's slot (raw: the data into a
// loan, the metadata into meta).
type assembly struct {
	h    header
	buf  []byte
	have []bool
	got  uint32
	last int64 // CLOCK_MONOTONIC of its last chunk

	loan   *loan
	meta   []byte
	number uint64
	crc    uint32 // of the chunks before next, as they came in order
	next   uint32 // the next chunk index in order; count+1 once one came out of order
}

// NewIn checks cfg and returns a bridge in.
func NewIn(cfg InConfig) (*In, error) {
	if err := ring.CheckName(cfg.Ring); err != nil {
		return nil, fmt.Errorf("%w: ring: %v", ErrConfig, err)
	}
	if err := checkSubject(cfg.Subject); err != nil {
		return nil, err
	}
	if cfg.Slots == 0 {
		cfg.Slots = 8
	}
	if err := (ring.Geometry{Slots: cfg.Slots, PayloadCap: 1}).Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.MaxFrameBytes < 0 || cfg.MetaBytes < 0 || cfg.FrameLimit < 0 || cfg.MaxPending < 0 || cfg.PendingBytes < 0 || cfg.BufferBytes < 0 {
		return nil, fmt.Errorf("%w: negative size", ErrConfig)
	}
	if cfg.FrameLimit == 0 {
		cfg.FrameLimit = 64 << 20
		if cfg.MaxFrameBytes > 0 {
			cfg.FrameLimit = cfg.MaxFrameBytes
		}
	}
	if cfg.FrameLimit > 1<<31 {
		return nil, fmt.Errorf("%w: frame limit %d is too large", ErrConfig, cfg.FrameLimit)
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 4
	}
	if cfg.PendingBytes == 0 {
		cfg.PendingBytes = 2*cfg.FrameLimit + maxMeta
	}
	if cfg.ChunkTimeout <= 0 {
		cfg.ChunkTimeout = 2 * time.Second
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = 3 * time.Second
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = max(64<<20, 3*cfg.FrameLimit)
	}
	if _, err := cfg.NATS.options(events{}); err != nil {
		return nil, err
	}
	in := &In{cfg: cfg, limit: cfg.FrameLimit, logged: map[string]bool{}, fatalCh: make(chan struct{})}
	in.side, in.logf = "in", cfg.Logf
	if cfg.Stream != "" {
		in.wantStream = streamID(cfg.Stream)
	}
	if in.logf == nil {
		in.logf = func(string, ...any) {}
	}
	in.sink = sink{dir: cfg.Dir, name: cfg.Ring, slots: cfg.Slots, fixed: cfg.MaxFrameBytes, metaBytes: cfg.MetaBytes, perm: cfg.Perm}
	return in, nil
}

// Stats returns the counters. Safe from any goroutine.
func (in *In) Stats() InStats {
	st := InStats{
		Delivered:     in.delivered.Load(),
		Messages:      in.messages.Load(),
		Bytes:         in.bytes.Load(),
		Lost:          in.lost.Load(),
		Incomplete:    in.incomplete.Load(),
		Corrupt:       in.corrupt.Load(),
		TooLarge:      in.tooLarge.Load(),
		RingErrors:    in.ringErrors.Load(),
		Pending:       in.pending.Load(),
		SeqFirst:      in.seqFirst.Load(),
		SeqLast:       in.seqLast.Load(),
		Window:        in.window.Load(),
		ChunkErrors:   map[string]uint64{},
		SlowConsumer:  in.slowConsumer.Load(),
		ClientDropped: in.clientDropped.Load(),
		Disconnects:   in.disconnects.Load(),
		Reconnects:    in.reconnects.Load(),
		Connected:     in.connected.Load(),
		Sessions:      in.sessions.Load(),
		Renumbered:    in.renumbered.Load(),
		SourceGone:    in.sourceGone.Load(),
		Latency:       in.latency.Snapshot().Latency(),
	}
	for i, r := range chunkReasons {
		st.ChunkErrors[r] = in.chunkErrors[i].Load()
	}
	return st
}

// Run connects to NATS, subscribes and publishes every frame that arrives
// whole into the ring, until ctx ends (then it closes the ring's writer,
// leaving the ring for its readers, and returns nil) or something fails
// that waiting cannot fix (bad credentials, another writer on the ring,
// the connection closed for good). The NATS server may be down at the
// start or at any time: Run waits for it.
func (in *In) Run(ctx context.Context) error {
	if !in.runMu.TryLock() {
		return fmt.Errorf("%w: Run is already running", ErrConfig)
	}
	defer in.runMu.Unlock()
	if in.cfg.MaxFrameBytes > 0 {
		if _, err := in.sink.open(in.cfg.MaxFrameBytes, 0); err != nil {
			return fmt.Errorf("bridge in: %w", err)
		}
	}
	defer func() {
		in.mu.Lock()
		in.closed = true
		in.dropAll()
		in.sink.close()
		in.mu.Unlock()
	}()
	var lastSlow atomic.Int64
	nc, closed, err := in.dial(&in.cfg.NATS, func(err error) bool {
		if !errors.Is(err, nats.ErrSlowConsumer) {
			return false
		}
		in.slowConsumer.Add(1)
		if t := now(); t-lastSlow.Load() > int64(10*time.Second) {
			lastSlow.Store(t)
			in.logf("bridge in: slow consumer: the NATS client dropped messages (frames are counted as lost or incomplete); the bridge cannot keep up")
		}
		return true
	})
	if err != nil {
		return err
	}
	defer in.hangUp(nc)
	sub, err := nc.Subscribe(in.cfg.Subject, in.onMsg)
	if err != nil {
		return fmt.Errorf("bridge in: subscribe to %q: %w", in.cfg.Subject, err)
	}
	if err := sub.SetPendingLimits(-1, in.cfg.BufferBytes); err != nil {
		return fmt.Errorf("bridge in: %w", err)
	}
	in.logf("bridge in: subject %q -> ring %q", in.cfg.Subject, in.cfg.Ring)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sub.Unsubscribe()
			return nil
		case <-closed:
			return fmt.Errorf("bridge in: NATS connection closed for good (%v)", errText(nc.LastError()))
		case <-in.fatalCh:
			sub.Unsubscribe()
			in.mu.Lock()
			err := in.fatal
			in.mu.Unlock()
			return fmt.Errorf("bridge in: %w", err)
		case <-tick.C:
			if d, err := sub.Dropped(); err == nil && d >= 0 {
				in.clientDropped.Store(uint64(d))
			}
			in.mu.Lock()
			in.expire(now())
			in.mu.Unlock()
		}
	}
}

// onMsg handles one NATS message: nats.go calls it from one goroutine.
func (in *In) onMsg(m *nats.Msg) {
	if in.slowHook != nil {
		in.slowHook()
	}
	in.messages.Add(1)
	in.bytes.Add(uint64(len(m.Data)))
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || in.fatal != nil {
		return
	}
	in.handle(m.Data, now())
}

// handle is onMsg with the lock held, for tests too.
func (in *In) handle(msg []byte, t int64) {
	h, body, err := parse(msg, in.limit)
	if err != nil {
		var we *wireError
		errors.As(err, &we)
		in.chunkError(we.reason, err)
		return
	}
	if !in.accept(&h, t) {
		return
	}
	if h.kind != kindChunk {
		in.notice(&h)
		return
	}
	in.chunk(&h, body, t)
}

func (in *In) chunkError(reason string, err error) {
	for i, r := range chunkReasons {
		if r == reason {
			in.chunkErrors[i].Add(1)
		}
	}
	if err != nil && !in.logged["chunk:"+reason] {
		in.logged["chunk:"+reason] = true
		in.logf("bridge in: message skipped: %v (logged once per reason; see the chunk error metrics)", err)
	}
}

// accept decides whether a message of stream/session h belongs to what the
// bridge follows, switching to a restarted sender or, after
// StreamTimeout, to another stream.
func (in *In) accept(h *header, t int64) bool {
	if in.wantStream != 0 && h.stream != in.wantStream {
		in.chunkError("other_stream", fmt.Errorf("stream %016x is not the one configured", h.stream))
		return false
	}
	c := &in.cur
	switch {
	case !c.valid:
		in.switchTo(h, t, "")
	case h.stream == c.stream && h.session == c.session:
		c.seen = t
	case h.stream == c.stream:
		for _, s := range in.retired[:in.nRetired] {
			if s == h.session {
				in.chunkError("stale", fmt.Errorf("message of session %016x, which a restart of its sender replaced", h.session))
				return false
			}
		}
		in.switchTo(h, t, "the sender restarted")
	case time.Duration(t-c.seen) > in.cfg.StreamTimeout:
		in.switchTo(h, t, "the stream followed fell silent; following another")
	default:
		in.chunkError("other_stream", fmt.Errorf("stream %016x, while following stream %016x", h.stream, c.stream))
		return false
	}
	return true
}

func (in *In) switchTo(h *header, t int64, why string) {
	c := &in.cur
	if c.valid {
		in.dropAll()
		if h.stream == c.stream {
			copy(in.retired[1:], in.retired[:len(in.retired)-1])
			in.retired[0] = c.session
			in.nRetired = min(in.nRetired+1, len(in.retired))
		} else {
			in.nRetired = 0
		}
		in.logf("bridge in: now following stream %016x session %016x: %s", h.stream, h.session, why)
	} else {
		in.logf("bridge in: following stream %016x session %016x", h.stream, h.session)
	}
	*c = follow{valid: true, stream: h.stream, session: h.session, seen: t}
	in.sessions.Add(1)
}

// notice handles "source writer gone" and "sender stopped": the ring's
// writer closes, so its readers see the writer gone too; the next frame
// opens it again.
func (in *In) notice(h *header) {
	in.sourceGone.Add(1)
	in.dropAll()
	what := "the source ring's writer is gone"
	if h.kind == kindStopped {
		what = "the sender stopped"
	}
	if in.sink.w != nil {
		in.logf("bridge in: %s; closing ring %q's writer until frames come again", what, in.cfg.Ring)
		if err := in.sink.close(); err != nil {
			in.logf("bridge in: ring %q: %v", in.cfg.Ring, err)
		}
	}
}

// chunk adds one chunk of the followed session.
func (in *In) chunk(h *header, body []byte, t int64) {
	c := &in.cur
	a := in.find(h.seq)
	if a == nil {
		if h.seq <= c.seqMax {
			in.chunkError("stale", fmt.Errorf("chunk of frame seq %d, already finished", h.seq))
			return
		}
		if c.seqMax == 0 {
			c.seqFirst = h.seq
			in.window.Add(1)
		} else {
			in.lost.Add(h.seq - c.seqMax - 1)
			in.window.Add(h.seq - c.seqMax)
		}
		c.seqMax = h.seq
		in.pending.Add(1) // until the frame is delivered or dropped (resolve)
		in.seqFirst.Store(c.seqFirst)
		in.seqLast.Store(c.seqMax)
		// One sender's messages arrive in order: a frame still incomplete
		// when a later one starts will never be completed.
		in.dropOlder(h.seq)
		if h.count == 1 {
			in.complete(h, body, t)
			return
		}
		if a = in.start(h, t); a == nil {
			return
		}
	} else if !sameFrame(&a.h, h) {
		in.chunkError("inconsistent", fmt.Errorf("chunk %d of frame seq %d disagrees with the frame's first chunk", h.chunk, h.seq))
		in.drop(a, &in.corrupt)
		return
	}
	if a.have[h.chunk] {
		in.chunkError("duplicate", fmt.Errorf("chunk %d of frame seq %d again", h.chunk, h.seq))
		return
	}
	off := int(h.chunk) * int(h.chunkSize)
	if a.loan != nil {
		if !in.fillLoan(a, off, body) {
			return
		}
	} else {
		copy(a.buf[off:], body)
	}
	a.have[h.chunk] = true
	a.got++
	a.last = t
	if a.got == a.h.count {
		in.remove(a)
		if a.loan != nil {
			in.commitLoan(a)
			return
		}
		in.complete(&a.h, a.buf, t)
		in.spare = a.buf
	}
}

// fillLoan copies a chunk's body into the slot (data) and a.meta, and
// keeps the checksum of the chunks that came in order. False when the
// frame was dropped.
func (in *In) fillLoan(a *assembly, off int, body []byte) bool {
	if a.next == a.h.chunk {
		a.crc = crc32.Update(a.crc, castagnoli, body)
		a.next++
	} else {
		a.next = a.h.count + 1 // out of order: check the whole at the end
	}
	split := int(a.h.dataLen)
	if off < split {
		n := min(len(body), split-off)
		if err := a.loan.fill(func(data []byte) error { memcopy.Copy(data[off:], body[:n]); return nil }); err != nil {
			in.logOnce("publish", "bridge in: frame %d: %v", a.h.frame, err)
			in.drop(a, &in.ringErrors)
			return false
		}
	}
	if end := off + len(body); end > split {
		from := max(off, split)
		copy(a.meta[from-split:], body[from-off:])
	}
	return true
}

// commitLoan checks a frame reassembled in the ring and commits it, or
// drops it.
func (in *In) commitLoan(a *assembly) {
	crc := a.crc
	if a.next != a.h.count {
		crc = 0
		err := a.loan.fill(func(data []byte) error { crc = crc32.Checksum(data, castagnoli); return nil })
		if err != nil {
			a.loan.abort()
			in.resolve(&in.ringErrors)
			in.logOnce("publish", "bridge in: frame %d: %v", a.h.frame, err)
			return
		}
		crc = crc32.Update(crc, castagnoli, a.meta)
	}
	if crc != a.h.crc {
		a.loan.abort()
		in.resolve(&in.corrupt)
		in.logOnce("crc", "bridge in: frame %d (seq %d) fails its checksum; dropped", a.h.frame, a.h.seq)
		return
	}
	if err := a.loan.commit(a.meta); err != nil {
		in.resolve(&in.ringErrors)
		in.logOnce("publish", "bridge in: frame %d: %v", a.h.frame, err)
		return
	}
	in.resolve(&in.delivered)
	in.latency.Record(max(time.Now().UnixNano()-a.h.wall, 0))
}

// resolve counts a frame begun as delivered or dropped (by outcome): it is
// no longer pending. Outcome first, so that Delivered + Dropped() +
// Pending never falls below Window.
func (in *In) resolve(outcome *atomic.Uint64) {
	outcome.Add(1)
	in.pending.Add(^uint64(0))
}

func (in *In) find(seq uint64) *assembly {
	for _, a := range in.asm {
		if a.h.seq == seq {
			return a
		}
	}
	return nil
}

// start begins reassembling h's frame within the budget, dropping the
// oldest frames being reassembled to make room.
func (in *In) start(h *header, t int64) *assembly {
	need := int(h.total)
	if need > in.cfg.PendingBytes {
		in.resolve(&in.tooLarge)
		in.logOnce("pending", "bridge in: frame seq %d of %d bytes on the wire exceeds the reassembly budget of %d bytes; dropped", h.seq, need, in.cfg.PendingBytes)
		return nil
	}
	for len(in.asm) > 0 && (len(in.asm) >= in.cfg.MaxPending || in.asmBytes+need > in.cfg.PendingBytes) {
		in.drop(in.asm[0], &in.incomplete)
	}
	a := &assembly{h: *h, have: make([]bool, h.count), last: t}
	if h.encoding == encRaw {
		// Raw data go straight into the ring's slot: no private copy. Only
		// the newest frame is ever being reassembled (a later one drops
		// it), so there is at most one loan out.
		f := h.frameOf(nil)
		number, pub, wall, ok := in.place(h, int(h.dataLen), int(h.metaLen), &f)
		if !ok {
			return nil
		}
		l, err := in.sink.reserve(&f, int(h.dataLen), number, pub, wall)
		if err != nil {
			in.resolve(&in.ringErrors)
			in.logOnce("publish", "bridge in: frame %d: %v", h.frame, err)
			return nil
		}
		a.loan, a.number, a.meta = l, number, make([]byte, h.metaLen)
		in.asm = append(in.asm, a)
		return a
	}
	buf := in.spare
	in.spare = nil
	if cap(buf) < need {
		buf = make([]byte, need)
	}
	a.buf = buf[:need]
	in.asm = append(in.asm, a)
	in.asmBytes += need
	return a
}

// drop drops a frame being reassembled, counting it by outcome.
func (in *In) drop(a *assembly, outcome *atomic.Uint64) {
	in.remove(a)
	if a.loan != nil {
		a.loan.abort()
	}
	in.resolve(outcome)
}

// remove takes a out of the frames being reassembled; a loan it holds
// stays the caller's.
func (in *In) remove(a *assembly) {
	for i, b := range in.asm {
		if b == a {
			in.asm = append(in.asm[:i], in.asm[i+1:]...)
			in.asmBytes -= len(a.buf)
			return
		}
	}
}

// dropOlder drops the frames being reassembled that come before seq.
func (in *In) dropOlder(seq uint64) {
	for i := 0; i < len(in.asm); {
		if a := in.asm[i]; a.h.seq < seq {
			in.drop(a, &in.incomplete)
			continue
		}
		i++
	}
}

// dropAll drops every frame being reassembled.
func (in *In) dropAll() {
	for len(in.asm) > 0 {
		in.drop(in.asm[0], &in.incomplete)
	}
}

// expire drops the frames whose chunks stopped coming.
func (in *In) expire(t int64) {
	for i := 0; i < len(in.asm); {
		if a := in.asm[i]; time.Duration(t-a.last) > in.cfg.ChunkTimeout {
			in.drop(a, &in.incomplete)
			continue
		}
		i++
	}
}

func (in *In) logOnce(key, format string, args ...any) {
	if !in.logged[key] {
		in.logged[key] = true
		in.logf(format+" (logged once)", args...)
	}
}

// frameOf describes h's frame as the ring gets it, with data and meta
// (nil while they are still to come).
func (h *header) frameOf(payload []byte) frame {
	f := frame{
		number:     h.frame,
		generation: h.generation,
		format:     h.format,
		width:      int(h.width),
		height:     int(h.height),
		channels:   int(h.channels),
		stride:     int(h.stride),
	}
	if payload != nil {
		split := len(payload) - int(h.metaLen)
		f.data, f.meta = payload[:split], payload[split:]
	}
	return f
}

// place opens the ring for h's frame (data and metadata of dataLen and
// metaLen bytes) and picks its number and times, setting f's capture time
// on this host's clock. False when the frame was dropped (counted).
func (in *In) place(h *header, dataLen, metaLen int, f *frame) (number uint64, pub int64, wall time.Time, ok bool) {
	opened, err := in.sink.open(dataLen, metaLen)
	if err != nil {
		if errors.Is(err, ring.ErrFrameTooLarge) {
			in.resolve(&in.tooLarge)
			in.logOnce("toolarge", "bridge in: %v; dropped", err)
			return 0, 0, wall, false
		}
		in.resolve(&in.ringErrors)
		if errors.Is(err, ring.ErrBusy) || errors.Is(err, ring.ErrUnsafeFile) || errors.Is(err, fs.ErrPermission) || errors.Is(err, ring.ErrNoSpace) {
			in.fatal = err
			close(in.fatalCh)
		} else {
			in.logOnce("open", "bridge in: %v", err)
		}
		return 0, 0, wall, false
	}
	c := &in.cur
	last := in.sink.head()
	if opened {
		in.logf("bridge in: ring %q open for frames of %d bytes, at frame %d", in.cfg.Ring, in.sink.payload, last)
	}
	if !c.offsetSet {
		c.offsetSet, c.offset = true, 0
		if h.frame <= last {
			c.offset = last + 1 - h.frame
		}
	}
	number = h.frame + c.offset
	if number <= last {
		// The source's numbering went back (its ring was re-created).
		c.offset = last + 1 - h.frame
		number = last + 1
		in.renumbered.Add(1)
	}
	// Clocks: CLOCK_MONOTONIC is per host. The publish time comes over as
	// wall clock and is placed on this host's monotonic clock; capture
	// keeps its distance before publish.
	wallNow := time.Now().UnixNano()
	mono := now()
	pub = mono - (wallNow - h.wall)
	if pub > mono || pub <= 0 {
		pub = mono // the sender's clock is ahead of ours: latency 0
	}
	f.published = pub
	f.capture = pub
	if d := h.published - h.capture; d > 0 && d < int64(time.Hour) && pub-d > 0 {
		f.capture = pub - d
	}
	return number, pub, time.Unix(0, h.wall), true
}

// complete checks a whole frame's wire payload, decodes it and publishes
// it into the ring.
func (in *In) complete(h *header, payload []byte, t int64) {
	if crc32.Checksum(payload, castagnoli) != h.crc {
		in.resolve(&in.corrupt)
		in.logOnce("crc", "bridge in: frame %d (seq %d) fails its checksum; dropped", h.frame, h.seq)
		return
	}
	f := h.frameOf(payload)
	if h.encoding == encJPEG {
		// Decoded straight into the ring's slot.
		number, pub, wall, ok := in.place(h, int(h.dataLen), len(f.meta), &f)
		if !ok {
			return
		}
		l, err := in.sink.reserve(&f, int(h.dataLen), number, pub, wall)
		if err != nil {
			in.resolve(&in.ringErrors)
			in.logOnce("publish", "bridge in: frame %d: %v", h.frame, err)
			return
		}
		if err := l.fill(func(data []byte) error { return in.dec.decode(data, f.data, h) }); err != nil {
			l.abort()
			if errors.Is(err, ring.ErrTruncated) {
				in.resolve(&in.ringErrors)
			} else {
				in.resolve(&in.corrupt)
			}
			in.logOnce("jpeg", "bridge in: frame %d (seq %d): %v; dropped", h.frame, h.seq, err)
			return
		}
		if err := l.commit(f.meta); err != nil {
			in.resolve(&in.ringErrors)
			in.logOnce("publish", "bridge in: frame %d: %v", h.frame, err)
			return
		}
	} else {
		number, pub, wall, ok := in.place(h, len(f.data), len(f.meta), &f)
		if !ok {
			return
		}
		if err := in.sink.publish(&f, number, pub, wall); err != nil {
			in.resolve(&in.ringErrors)
			in.logOnce("publish", "bridge in: frame %d: %v", h.frame, err)
			return
		}
	}
	in.resolve(&in.delivered)
	in.latency.Record(max(time.Now().UnixNano()-h.wall, 0))
	_ = t
}
