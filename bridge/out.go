package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/ring"
	"github.com/nats-io/nats.go"
)

// OutConfig configures a bridge out: a ring on this host, published on a
// NATS subject.
type OutConfig struct {
	// Ring is the ring to read and Dir its directory ("" means /dev/shm).
	// Run waits for the ring to appear.
	Ring, Dir string
	// NATS is the connection.
	NATS Conn
	// Subject is the NATS subject the frames are published on.
	Subject string
	// Stream names the stream, so that receivers tell it from another
	// publisher's on the same subject and recognise a restarted bridge as
	// the same stream. Empty means "<ring>@<hostname>".
	Stream string
	// Encoding is Raw (zero value) or JPEG.
	Encoding Encoding
	// Quality is the JPEG quality, 1 to 100. Zero means 90.
	Quality int
	// HungAfter is how long the ring's writer may go without a heartbeat
	// before the bridge takes it for gone although its process lives (see
	// consumer.Options.HungAfter). Zero means the reader's default, 1 s.
	HungAfter time.Duration
	// MaxChunk caps the bytes of one NATS message (header included) below
	// the server's max_payload, which is always respected. Zero means the
	// server's max_payload.
	MaxChunk int
	// Logf, if set, receives one line per event (connection lost and
	// back, source writer gone, ...). Credentials are never logged.
	Logf func(format string, args ...any)
}

// OutStats is a snapshot of a bridge out's counters.
type OutStats struct {
	Sent     uint64 // frames handed to NATS whole
	Bytes    uint64 // bytes handed to NATS (headers included)
	Messages uint64 // NATS messages published (chunks and notices)
	// Read is how many frames the bridge read from the ring: Attempted +
	// Disconnected. Read + Skipped is every frame the ring published
	// since the bridge began reading it.
	Read uint64
	// Attempted is how many frames this session tried to send: Sent plus
	// PublishErrors. Receivers account for frames by this sequence.
	Attempted uint64
	// Dropped frames, by reason. Skipped: frames of the ring passed over
	// while the bridge was still sending an earlier one (latest mode; also
	// frames the ring lost or found corrupt). Disconnected: frames read
	// while the NATS connection was down. PublishErrors: frames whose
	// publishing failed part-way (receivers drop what they got of them).
	Skipped, Disconnected, PublishErrors uint64
	// SourceGone counts the source writer's deaths or closes seen.
	SourceGone uint64
	// Disconnects and Reconnects count NATS connection losses and
	// recoveries.
	Disconnects, Reconnects uint64
	Connected               bool
	// Session is this run's session id (random, on the wire).
	Session uint64
	// Latency is the source publish -> handed to NATS time.
	Latency ring.Latency
}

// Dropped is every frame of the ring the bridge did not send whole.
func (s OutStats) Dropped() uint64 { return s.Skipped + s.Disconnected + s.PublishErrors }

// Out is a bridge out. Create it with NewOut, run it with Run; Stats and
// Collector may be used from any goroutine.
type Out struct {
	cfg     OutConfig
	stream  uint64
	session uint64

	runMu sync.Mutex // one Run at a time

	link
	sent, bytes, messages, attempted, read atomic.Uint64
	skipped, disconnected, publishErrors   atomic.Uint64
	sourceGone                             atomic.Uint64
	latency                                hist.Histogram
	pipe                                   atomic.Pointer[handoff] // Run's, while it runs
	lastSkipped                            uint64                  // Run's
	jpeg                                   jpegEncoder             // Run's
	lastErrLog                             atomic.Int64            // CLOCK_MONOTONIC of the last publish error logged
	lastReadLog                            int64                   // ... and of the last ring read error logged (Run's)
	// publishHook, if set (tests), runs in the publisher before it sends a
	// frame: a slow network.
	publishHook func()
}

// NewOut checks cfg and returns a bridge out.
func NewOut(cfg OutConfig) (*Out, error) {
	if err := ring.CheckName(cfg.Ring); err != nil {
		return nil, fmt.Errorf("%w: ring: %v", ErrConfig, err)
	}
	if err := checkSubject(cfg.Subject); err != nil {
		return nil, err
	}
	switch cfg.Encoding {
	case 0:
		cfg.Encoding = Raw
	case Raw, JPEG:
	default:
		return nil, fmt.Errorf("%w: encoding %d", ErrConfig, cfg.Encoding)
	}
	if cfg.Quality == 0 {
		cfg.Quality = 90
	}
	if cfg.Quality < 1 || cfg.Quality > 100 {
		return nil, fmt.Errorf("%w: JPEG quality %d is not in [1, 100]", ErrConfig, cfg.Quality)
	}
	if cfg.HungAfter < 0 {
		return nil, fmt.Errorf("%w: hung-after %v is negative", ErrConfig, cfg.HungAfter)
	}
	if cfg.MaxChunk != 0 && cfg.MaxChunk < minChunk {
		return nil, fmt.Errorf("%w: max chunk %d is below %d bytes", ErrConfig, cfg.MaxChunk, minChunk)
	}
	if cfg.Stream == "" {
		host, _ := os.Hostname()
		cfg.Stream = cfg.Ring + "@" + host
	}
	if _, err := cfg.NATS.options(events{}); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	o := &Out{cfg: cfg, stream: streamID(cfg.Stream), session: binary.LittleEndian.Uint64(b[:]) | 1}
	o.side, o.logf = "out", cfg.Logf
	if o.logf == nil {
		o.logf = func(string, ...any) {}
	}
	o.jpeg.quality = cfg.Quality
	return o, nil
}

// minChunk is the smallest message a bridge sends frames in: a header and
// at least as many bytes of body (the in-place header trick needs it).
const minChunk = 2 * HeaderLen

func checkSubject(s string) error {
	if s == "" {
		return fmt.Errorf("%w: no subject", ErrConfig)
	}
	for _, tok := range bytes.Split([]byte(s), []byte(".")) {
		if len(tok) == 0 || bytes.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("%w: subject %q: tokens must be non-empty, without spaces or wildcards", ErrConfig, s)
		}
	}
	return nil
}

func streamID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Stats returns the counters. Safe from any goroutine.
func (o *Out) Stats() OutStats {
	return OutStats{
		Sent:          o.sent.Load(),
		Bytes:         o.bytes.Load(),
		Messages:      o.messages.Load(),
		Read:          o.read.Load(),
		Attempted:     o.attempted.Load(),
		Skipped:       o.skipped.Load(),
		Disconnected:  o.disconnected.Load(),
		PublishErrors: o.publishErrors.Load(),
		SourceGone:    o.sourceGone.Load(),
		Disconnects:   o.disconnects.Load(),
		Reconnects:    o.reconnects.Load(),
		Connected:     o.connected.Load(),
		Session:       o.session,
		Latency:       o.latency.Snapshot().Latency(),
	}
}

// Run connects to NATS, waits for the ring and publishes its frames until
// ctx ends (then it returns nil) or something fails that waiting cannot
// fix (bad credentials, a frame the encoding cannot carry, the
// connection closed for good). The NATS server may be down at the start
// or at any time: Run waits for it, and counts the frames it could not
// send. It never blocks the ring's writer: it reads in latest mode.
func (o *Out) Run(ctx context.Context) error {
	if !o.runMu.TryLock() {
		return fmt.Errorf("%w: Run is already running", ErrConfig)
	}
	defer o.runMu.Unlock()
	nc, closed, err := o.dial(&o.cfg.NATS, nil)
	if err != nil {
		return err
	}
	defer o.hangUp(nc)

	// A connection closed for good (reconnects exhausted) ends Run even
	// while it waits for the ring or a frame.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	src, err := o.openSource(ctx)
	if err != nil || src == nil {
		select {
		case <-closed:
			return fmt.Errorf("bridge out: NATS connection closed for good (%v)", errText(nc.LastError()))
		default:
		}
		return err
	}
	defer src.close()
	o.logf("bridge out: ring %q -> subject %q (%v, stream %q, session %016x)", o.cfg.Ring, o.cfg.Subject, o.cfg.Encoding, o.cfg.Stream, o.session)
	o.lastSkipped = src.dropped()

	// The publisher: hands the frames Run prepares to NATS, in its own
	// goroutine, so that reading, encoding and checksumming the next frame
	// overlaps with sending this one.
	pipe := newHandoff()
	o.pipe.Store(pipe)
	var pubErr error
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		if pubErr = o.publisher(nc, pipe); pubErr != nil {
			cancel()
		}
	}()
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			if b := pipe.close(); b != nil && b.notice == 0 {
				o.skipped.Add(1) // read, never taken: passed over like any frame not sent
			}
			<-pubDone
			o.notice(nc, kindStopped)
		}
		return pubErr
	}
	defer stop()

	for {
		b := pipe.get()
		f, err := src.read(ctx, &b.buf, HeaderLen)
		o.countSkipped(src)
		if err != nil {
			pipe.release(b)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			if err := stop(); err != nil {
				return err
			}
			select {
			case <-closed:
				return fmt.Errorf("bridge out: NATS connection closed for good (%v)", errText(nc.LastError()))
			default:
			}
			return nil
		case errors.Is(err, ring.ErrWriterGone):
			o.sourceGone.Add(1)
			o.logf("bridge out: %v", err)
			// Behind the frames already handed over, never before them.
			n := pipe.get()
			n.notice = kindSourceGone
			if pipe.put(n) == n {
				pipe.release(n) // closed
			}
			continue
		case errors.Is(err, ring.ErrCorrupt), errors.Is(err, ring.ErrTruncated), errors.Is(err, ring.ErrFrameTooLarge):
			// Counted as skipped by the reader, or read again; a broken
			// writer could fail every frame, so log at most every 10 s.
			if t := now(); o.lastReadLog == 0 || time.Duration(t-o.lastReadLog) > 10*time.Second {
				o.lastReadLog = t
				o.logf("bridge out: %v (logged at most every 10 s)", err)
			}
			continue
		default:
			return fmt.Errorf("bridge out: %w", err)
		}
		if o.cfg.Encoding == JPEG && !jpegFormat(f.format) {
			pipe.release(b)
			return fmt.Errorf("bridge out: ring %q frame %d: %w: JPEG cannot carry %v frames", o.cfg.Ring, f.number, ErrUnsupported, f.format)
		}
		if !nc.IsConnected() {
			o.read.Add(1)
			o.disconnected.Add(1)
			pipe.release(b)
			continue
		}
		if err := o.prepare(b, &f); err != nil {
			// Numbered but never sent: receivers count it lost.
			o.read.Add(1)
			o.attempted.Add(1)
			o.publishFailed(f.number, err)
			pipe.release(b)
			continue
		}
		switch d := pipe.put(b); d {
		case nil:
		case b: // closed: the publisher ended
			o.skipped.Add(1)
			pipe.release(b)
		default: // a frame still waiting: the newer one wins
			o.skipped.Add(1)
			pipe.release(d)
		}
	}
}

// publisher sends what Run hands over until the hand-off is closed. It
// returns an error only for a connection closed for good.
func (o *Out) publisher(nc *nats.Conn, pipe *handoff) error {
	for {
		b, ok := pipe.take()
		if !ok {
			return nil
		}
		err := o.publish(nc, b)
		pipe.release(b)
		pipe.done()
		if err != nil {
			if d := pipe.close(); d != nil && d.notice == 0 {
				o.skipped.Add(1)
				pipe.release(d)
			}
			return err
		}
	}
}

// publish sends one frame or notice.
func (o *Out) publish(nc *nats.Conn, b *outBuf) error {
	if b.notice != 0 {
		o.notice(nc, b.notice)
		return nil
	}
	o.read.Add(1)
	if o.publishHook != nil {
		o.publishHook()
	}
	if !nc.IsConnected() {
		o.disconnected.Add(1)
		return nil
	}
	err := o.sendChunks(b, int(nc.MaxPayload()), func(msg []byte) error { return nc.Publish(o.cfg.Subject, msg) })
	if err == nil {
		return nil
	}
	o.publishFailed(b.number, err)
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("bridge out: %w", err)
	}
	return nil
}

// publishFailed counts a frame that could not be sent, and logs it at
// most every 10 s.
func (o *Out) publishFailed(number uint64, err error) {
	o.publishErrors.Add(1)
	t, last := now(), o.lastErrLog.Load()
	if (last == 0 || time.Duration(t-last) > 10*time.Second) && o.lastErrLog.CompareAndSwap(last, t) {
		o.logf("bridge out: frame %d not sent: %v (logged at most every 10 s; counted as publish errors)", number, err)
	}
}

// idle reports whether no frame waits for the publisher or is being sent
// (tests).
func (o *Out) idle() bool {
	p := o.pipe.Load()
	return p == nil || !p.pending()
}

// openSource waits for the ring; nil, nil when ctx ended first.
func (o *Out) openSource(ctx context.Context) (*source, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logged := make(chan struct{})
	go func() {
		select {
		case <-time.After(time.Second):
			o.logf("bridge out: waiting for ring %q to appear", o.cfg.Ring)
		case <-wctx.Done():
		}
		close(logged)
	}()
	src, err := openSource(wctx, o.cfg.Dir, o.cfg.Ring, o.cfg.HungAfter)
	cancel()
	<-logged
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("bridge out: %w", err)
	}
	return src, nil
}

func (o *Out) countSkipped(src *source) {
	d := src.dropped()
	if d > o.lastSkipped {
		o.skipped.Add(d - o.lastSkipped)
	}
	o.lastSkipped = d
}

// sendWith encodes f and publishes it in chunks of at most maxPayload
// bytes through publish, which must copy msg before it returns (tests).
func (o *Out) sendWith(f *frame, maxPayload int, publish func(msg []byte) error) error {
	var b outBuf
	if err := o.prepare(&b, f); err != nil {
		return err
	}
	return o.sendChunks(&b, maxPayload, publish)
}

// prepare encodes f into b and fills in its header but for the chunking,
// seq and sent. For a raw frame read by source.read, f.wire already is the
// wire payload behind HeaderLen bytes of room.
func (o *Out) prepare(b *outBuf, f *frame) error {
	b.h = header{
		kind:       kindChunk,
		encoding:   uint8(o.cfg.Encoding),
		format:     f.format,
		stream:     o.stream,
		session:    o.session,
		frame:      f.number,
		generation: f.generation,
		width:      uint32(f.width),
		height:     uint32(f.height),
		channels:   uint32(f.channels),
		stride:     uint32(f.stride),
		dataLen:    uint32(len(f.data)),
		metaLen:    uint32(len(f.meta)),
		capture:    f.capture,
		published:  f.published,
		wall:       f.wall,
	}
	b.number, b.published = f.number, f.published
	if o.cfg.Encoding == JPEG {
		b.enc.Reset()
		var room [HeaderLen]byte
		b.enc.Write(room[:])
		if err := o.jpeg.encode(&b.enc, f); err != nil {
			return err
		}
		b.enc.Write(f.meta)
		b.wire = b.enc.Bytes()
		b.h.stride = uint32(f.width * f.channels) // decoded to packed rows
		b.h.dataLen = b.h.stride * uint32(f.height)
	} else {
		// f.data and f.meta are contiguous behind HeaderLen bytes of room.
		b.wire = f.wire
	}
	payload := b.wire[HeaderLen:]
	if len(payload) > 1<<32-1 {
		return fmt.Errorf("frame of %d bytes on the wire is too large", len(payload))
	}
	b.h.total = uint32(len(payload))
	b.h.crc = crc32.Checksum(payload, castagnoli)
	return nil
}

// sendChunks publishes b's frame in chunks of at most maxPayload bytes
// (header included), numbering it (seq) and stamping it sent.
func (o *Out) sendChunks(b *outBuf, maxPayload int, publish func(msg []byte) error) error {
	wire, h := b.wire, b.h
	payload := wire[HeaderLen:]
	maxMsg := maxPayload
	if o.cfg.MaxChunk > 0 {
		maxMsg = min(maxMsg, o.cfg.MaxChunk)
	}
	if maxMsg < minChunk {
		o.attempted.Add(1) // numbered, never sent: receivers count it lost
		return fmt.Errorf("the server's max_payload of %d bytes is too small for the bridge (minimum %d)", maxMsg, minChunk)
	}
	chunk := maxMsg - HeaderLen
	h.chunkSize = uint32(chunk)
	h.count = uint32((len(payload) + chunk - 1) / chunk)
	h.seq = o.attempted.Add(1)
	h.sent = time.Now().UnixNano()
	// Chunk i's header goes into the HeaderLen bytes right before its body:
	// the end of chunk i-1's body, already copied by nats.go's Publish
	// (chunk >= HeaderLen, so it never reaches into an unsent body).
	var sentBytes int
	for i := 0; i < int(h.count); i++ {
		off := i * chunk
		end := min(off+chunk, len(payload))
		msg := wire[off : HeaderLen+end]
		h.chunk = uint32(i)
		h.put(msg)
		if err := publish(msg); err != nil {
			o.messages.Add(uint64(i))
			o.bytes.Add(uint64(sentBytes))
			return fmt.Errorf("chunk %d of %d: %w", i+1, h.count, err)
		}
		sentBytes += len(msg)
	}
	o.messages.Add(uint64(h.count))
	o.bytes.Add(uint64(sentBytes))
	o.sent.Add(1)
	o.latency.Record(now() - b.published)
	return nil
}

// notice tells the receivers that the source writer is gone or that this
// bridge stops, so that they close their ring's writer in turn. It is best
// effort: a receiver that misses it still sees no frames.
func (o *Out) notice(nc *nats.Conn, kind uint8) {
	if !nc.IsConnected() {
		return
	}
	var b [HeaderLen]byte
	h := header{kind: kind, stream: o.stream, session: o.session, seq: o.attempted.Load(), sent: time.Now().UnixNano()}
	h.put(b[:])
	if err := nc.Publish(o.cfg.Subject, b[:]); err == nil {
		o.messages.Add(1)
		o.bytes.Add(HeaderLen)
	}
	if kind == kindStopped {
		nc.FlushTimeout(time.Second)
	}
}

// errText is err's text, or "no error".
func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
