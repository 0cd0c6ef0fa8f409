package preview

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/jpeg"
	"sync"
	"time"

	"github.com/framering/framering/consumer"
	"github.com/framering/framering/internal/hist"
	"github.com/framering/framering/ring"
)

// A shot is one frame the preview read: its description, its bytes (for
// snapshots), its metadata and its JPEG picture. Everything but raw and
// refs is immutable once the shot is published.
type shot struct {
	seq     uint64     // the feed's picture number: consecutive within a feed
	base    uint64     // the feed's first seq - 1: a client's after below it is from an older feed
	frame   ring.Frame // the frame's description; Data and Meta are nil
	meta    []byte
	jpeg    []byte // nil when the frame is not an image
	why     string // why there is no picture
	readNs  int64  // ring.Now() when the read completed
	dw, dh  int    // size of the picture
	metaHdr string // the metadata described (MetaView) as base64 JSON, if short enough for a header

	raw     []byte // the frame's bytes, a buffer of the feed's pool
	refs    int    // snapshots reading raw (under feed.mu)
	retired bool   // out of the history: raw goes back to the pool when refs drops to 0
}

// idle reasons and states of a feed, as the page shows them.
const (
	stateStarting  = "starting"
	stateNoRing    = "waiting for the ring"
	stateStreaming = "streaming"
	stateNoFrames  = "waiting for frames"
	stateGone      = "writer gone"
	stateIdle      = "idle (nobody watching)"
	stateError     = "error"
)

// demandWindow is how long after a request a ring counts as watched.
const demandWindow = 3 * time.Second

// A feed reads one ring for the preview: a Latest reader, paced to
// MaxFPS, that turns the newest frame into a JPEG for any number of
// clients. Clients never slow it: each takes the newest picture when it is
// ready for one, and skips the rest.
type feed struct {
	s      *Server
	name   string
	pinned bool // opened by Watch: kept until Close
	base   uint64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the pump has returned and closed its reader
	disp   display       // the pump's picture buffers

	mu       sync.Mutex
	r        *consumer.Reader // nil until the ring is opened; Stats is safe from any goroutine
	state    string
	err      string
	opened   time.Time // when r was opened
	wanted   time.Time // last request
	active   int       // requests waiting for a picture right now
	dead     bool      // retired from the server's map
	hist     []*shot   // newest last
	keep     int       // shots kept in hist
	seq      uint64    // last picture number
	changed  chan struct{}
	pool     [][]byte
	counters counters
	delay    hist.Histogram // read -> sent, every picture sent to a client (under mu)
	encode   hist.Histogram // read -> JPEG ready
	trans    hist.Histogram // publish (or the read's start, if later) -> read complete
	wait     hist.Histogram // publish -> the read's start, for frames that waited in the ring for the preview
	last     interval       // the last computed interval
	prev     snapshotAt
}

// counters are the feed's running totals.
type counters struct {
	idleSkips   uint64 // frames the reader passed over while nobody watched
	encoded     uint64 // pictures made
	notImages   uint64 // frames read that are not images
	sent        uint64 // pictures sent to clients (sum over clients)
	clientSkips uint64 // pictures a slow client never got because a newer one was ready
}

// snapshotAt is what an interval is computed from.
type snapshotAt struct {
	at      time.Time
	st      consumer.Stats
	delay   *hist.Snapshot
	encode  *hist.Snapshot
	trans   *hist.Snapshot
	wait    *hist.Snapshot
	encoded uint64
	sent    uint64
}

func newFeed(s *Server, name string, r *consumer.Reader) *feed {
	ctx, cancel := context.WithCancel(s.ctx)
	f := &feed{
		s: s, name: name, pinned: r != nil, base: s.seqs.Load(),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		state: stateStarting, wanted: time.Now(), changed: make(chan struct{}), keep: 2,
	}
	f.seq = f.base
	if r != nil {
		f.setReader(r)
	}
	return f
}

func (f *feed) setReader(r *consumer.Reader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.r, f.opened, f.state, f.err = r, time.Now(), stateNoFrames, ""
	st := r.Stats()
	f.prev = snapshotAt{at: time.Now(), st: st, delay: f.delay.Snapshot(), encode: f.encode.Snapshot(),
		trans: f.trans.Snapshot(), wait: f.wait.Snapshot()}
}

func (f *feed) setState(state string, err error) {
	f.mu.Lock()
	f.state, f.err = state, ""
	if err != nil {
		f.err = err.Error()
	}
	f.mu.Unlock()
}

// demanded reports whether a client watched the ring recently.
func (f *feed) demanded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active > 0 || time.Since(f.wanted) < demandWindow
}

// sleep waits d or until the feed stops; false if it stopped.
func (f *feed) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run is the pump: it opens the ring (waiting for it), reads the newest
// frame at most MaxFPS times a second while someone watches, and publishes
// it. An unpinned feed ends after Idle without a request.
func (f *feed) run() {
	var r *consumer.Reader
	defer func() {
		if r != nil {
			r.Close()
		}
		f.cancel()
		close(f.done)
	}()
	f.mu.Lock()
	r = f.r
	f.mu.Unlock()
	opts := f.s.opts
	gap := time.Duration(float64(time.Second) / opts.MaxFPS)
	var buf []byte
	var next time.Time
	idle := false // the reader was open while nobody watched
	for f.ctx.Err() == nil {
		if !f.demanded() {
			if !f.pinned && f.s.retire(f) {
				return
			}
			if r != nil {
				idle = true
				f.setState(stateIdle, nil)
			}
			if !f.sleep(200 * time.Millisecond) {
				return
			}
			continue
		}
		if r == nil {
			var err error
			r, err = consumer.Open(f.name, consumer.Options{Dir: opts.Dir, Mode: consumer.Latest,
				HungAfter: opts.HungAfter, AllowGroupWritable: opts.AllowGroupWritable, AllowOtherOwner: opts.AllowOtherOwner})
			if err != nil {
				r = nil
				if errors.Is(err, ring.ErrNotFound) || errors.Is(err, ring.ErrTruncated) {
					f.setState(stateNoRing, nil)
				} else {
					f.setState(stateError, err)
				}
				if !f.sleep(250 * time.Millisecond) {
					return
				}
				continue
			}
			f.setReader(r)
		}
		if d := time.Until(next); d > 0 && !f.sleep(d) {
			return
		}
		if buf == nil {
			buf = f.buffer(r.Geometry().PayloadCap)
		}
		before := r.Stats()
		rctx, cancel := context.WithTimeout(f.ctx, 250*time.Millisecond)
		startNs := ring.Now()
		fr, err := r.Read(rctx, buf)
		cancel()
		readNs := ring.Now()
		switch {
		case err == nil:
			next = time.Now().Add(gap)
			if idle {
				// The first read after nobody watched passes over every
				// frame published meanwhile: not the preview's pacing.
				idle = false
				f.mu.Lock()
				f.counters.idleSkips += r.Stats().Skipped - before.Skipped
				f.mu.Unlock()
			}
			f.publish(&fr, startNs, readNs)
			buf = nil // the shot keeps it
		case f.ctx.Err() != nil, errors.Is(err, ring.ErrClosed):
			return
		case errors.Is(err, context.DeadlineExceeded):
			f.mu.Lock()
			if f.state == stateIdle || f.state == stateStarting {
				f.state = stateNoFrames
			}
			f.mu.Unlock()
		case errors.Is(err, ring.ErrWriterGone):
			f.setState(stateGone, err)
		default: // a corrupt slot (skipped, counted), a truncated segment (re-opened by the next read)
			f.setState(stateError, err)
			if !f.sleep(100 * time.Millisecond) {
				return
			}
		}
	}
}

// buffer returns a buffer of at least n bytes from the pool.
func (f *feed) buffer(n int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.pool) > 0 {
		b := f.pool[len(f.pool)-1]
		f.pool = f.pool[:len(f.pool)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n)
}

// recycle returns a retired shot's buffer to the pool. Called with f.mu
// held.
func (f *feed) recycle(sh *shot) {
	if sh.retired && sh.refs == 0 && sh.raw != nil {
		if len(f.pool) < 2 {
			f.pool = append(f.pool, sh.raw[:cap(sh.raw)])
		}
		sh.raw = nil
	}
}

// publish makes a shot of frame fr, read from startNs to readNs, and hands
// it to the clients.
func (f *feed) publish(fr *ring.Frame, startNs, readNs int64) {
	sh := &shot{frame: *fr, meta: bytes.Clone(fr.Meta), readNs: readNs, raw: fr.Data[:cap(fr.Data)]}
	sh.frame.Data, sh.frame.Meta = nil, nil
	sh.raw = sh.raw[:len(fr.Data)]
	if js, err := json.Marshal(describeMeta(fr.Number, sh.meta)); err == nil && len(js) <= maxMetaHeader {
		sh.metaHdr = base64.StdEncoding.EncodeToString(js)
	}
	img, err := f.disp.picture(fr, f.s.opts.MaxSide)
	if err == nil {
		var enc bytes.Buffer
		if err = jpeg.Encode(&enc, img, &jpeg.Options{Quality: f.s.opts.Quality}); err == nil {
			sh.jpeg = enc.Bytes()
			b := img.Bounds()
			sh.dw, sh.dh = b.Dx(), b.Dy()
		}
	}
	if err != nil {
		sh.why = err.Error()
	}
	encodeNs := ring.Now() - readNs

	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	sh.seq, sh.base = f.seq, f.base
	f.s.noteSeq(sh.seq)
	f.encode.Record(encodeNs)
	// The frame's time from publish to read, in two parts: waiting in the
	// ring while the preview was not reading (its --max-fps pacing, or
	// encoding the previous frame), and the transport proper, from publish
	// or from the start of the read if the frame was already there. The
	// publish time comes from shared memory: a value that makes no sense is
	// not counted.
	if pub := fr.Published; pub > 0 && pub <= readNs {
		if pub < startNs {
			f.wait.Record(startNs - pub)
			f.trans.Record(readNs - startNs)
		} else {
			f.trans.Record(readNs - pub)
		}
	}
	if sh.jpeg != nil {
		f.counters.encoded++
	} else {
		f.counters.notImages++
	}
	f.state, f.err = stateStreaming, ""
	// Keep as many frames as fit 32 MiB, 2 to 8: enough for a paused page to
	// fetch the snapshot of the frame it shows.
	f.keep = min(8, max(2, (32<<20)/max(1, len(sh.raw))))
	f.hist = append(f.hist, sh)
	for len(f.hist) > f.keep {
		old := f.hist[0]
		f.hist[0] = nil
		f.hist = f.hist[1:]
		old.retired = true
		f.recycle(old)
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// newest returns the newest shot if it is newer than after (a picture
// number from this feed), else nil and a channel closed at the next one.
// An after from another feed (an older one, or another server) is treated
// as none.
func (f *feed) newest(after uint64) (*shot, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if after > f.seq || after < f.base {
		after = 0
	}
	if n := len(f.hist); n > 0 && f.hist[n-1].seq > after {
		return f.hist[n-1], nil
	}
	return nil, f.changed
}

// find returns the kept shot of frame number n (0: the newest) and holds
// its bytes until release. Otherwise it returns the newest frame number
// read (0: none yet) and a channel closed at the next picture.
func (f *feed) find(n uint64) (sh *shot, newest uint64, changed <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.hist) > 0 {
		newest = f.hist[len(f.hist)-1].frame.Number
	}
	for i := len(f.hist) - 1; i >= 0; i-- {
		if s := f.hist[i]; n == 0 || s.frame.Number == n {
			s.refs++
			return s, newest, nil
		}
	}
	return nil, newest, f.changed
}

func (f *feed) release(sh *shot) {
	f.mu.Lock()
	sh.refs--
	f.recycle(sh)
	f.mu.Unlock()
}

// sent records that a client got picture sh, after asking for one newer
// than after.
func (f *feed) sent(sh *shot, after uint64) {
	now := ring.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters.sent++
	if after >= f.base && after < sh.seq {
		f.counters.clientSkips += sh.seq - after - 1
	}
	f.delay.Record(now - sh.readNs)
}

// interval is the feed's rates and latencies over the last second or so.
type interval struct {
	Seconds   float64 `json:"seconds"` // length of the interval
	ReadFPS   float64 `json:"read_fps"`
	RingFPS   float64 `json:"ring_fps"` // frames published in the reader's window per second
	SentFPS   float64 `json:"sent_fps"` // pictures sent per second, all clients
	EncodeFPS float64 `json:"encode_fps"`
	// Transport latency: the writer's publish to the preview's copy
	// complete; for a frame that was already in the ring when the read
	// began, from that start (the copy alone). What recv calls latency.
	TransportP50Ms float64 `json:"transport_p50_ms"`
	TransportP99Ms float64 `json:"transport_p99_ms"`
	// Ring wait: publish to the start of the read, for frames that were
	// waiting in the ring while the preview paced itself (MaxFPS) or
	// encoded the previous frame. Neither transport nor preview delay.
	RingWaitP50Ms float64 `json:"ring_wait_p50_ms"`
	RingWaitP99Ms float64 `json:"ring_wait_p99_ms"`
	// Preview delay: read complete to the picture written to a client.
	DelayP50Ms float64 `json:"delay_p50_ms"`
	DelayP99Ms float64 `json:"delay_p99_ms"`
	// Conversion and JPEG encoding, per picture.
	EncodeP50Ms float64 `json:"encode_p50_ms"`
}

// Counters are what the preview of one ring did since its reader opened.
// Every frame published in the reader's window is read, skipped by the
// preview, passed over while nobody watched, or lost:
// Read + SkippedPreview + SkippedIdle + RingDrops == Window.
type Counters struct {
	Window         uint64 `json:"window"`          // frames published since the reader opened (its window)
	Read           uint64 `json:"read"`            // frames the preview read (each became a picture, or a not-an-image panel)
	SkippedPreview uint64 `json:"skipped_preview"` // passed over for a newer frame: --max-fps pacing, or busy encoding
	SkippedIdle    uint64 `json:"skipped_idle"`    // passed over while nobody watched
	RingDrops      uint64 `json:"ring_drops"`      // lost for this reader: overwritten, corrupt (not the preview's choice)
	TornRetries    uint64 `json:"torn_retries"`    // reads the writer overlapped, retried (no frame lost)
	WriterGone     uint64 `json:"writer_gone"`     // times the writer went away
	Encoded        uint64 `json:"encoded"`         // pictures made
	NotImages      uint64 `json:"not_images"`      // frames that are not images (raw)
	Sent           uint64 `json:"sent"`            // pictures sent, summed over clients
	ClientSkips    uint64 `json:"client_skips"`    // pictures clients missed because they were slower than the preview
}

// FrameView describes the newest frame the preview read.
type FrameView struct {
	Number     uint64  `json:"number"`
	Generation uint64  `json:"generation"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Channels   int     `json:"channels"`
	Format     string  `json:"format"`
	Stride     int     `json:"stride"`
	Len        int     `json:"len"`
	MetaLen    int     `json:"meta_len"`
	ShownW     int     `json:"shown_width"`  // size of the picture (scaled down to MaxSide)
	ShownH     int     `json:"shown_height"` //
	NotImage   string  `json:"not_image,omitempty"`
	AgeMs      float64 `json:"age_ms"` // since it was published
	Wall       string  `json:"wall"`   // the writer's wall clock at publish, RFC 3339
}

// FeedStats is the preview side of GET /api/rings/{name}.
type FeedStats struct {
	State    string     `json:"state"`
	Error    string     `json:"error,omitempty"`
	Since    string     `json:"since,omitempty"` // when the reader opened, RFC 3339
	MaxFPS   float64    `json:"max_fps"`
	MaxSide  int        `json:"max_side"`
	Kept     int        `json:"kept"` // frames kept for snapshots
	Frame    *FrameView `json:"frame"`
	Counters Counters   `json:"counters"`
	Interval interval   `json:"interval"`
}

// stats returns the feed's counters, refreshing the interval figures if
// the last ones are a second old.
func (f *feed) stats() FeedStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := FeedStats{State: f.state, Error: f.err, MaxFPS: f.s.opts.MaxFPS, MaxSide: f.s.opts.MaxSide, Kept: len(f.hist)}
	c := &fs.Counters
	c.Encoded, c.NotImages, c.Sent, c.ClientSkips = f.counters.encoded, f.counters.notImages, f.counters.sent, f.counters.clientSkips
	c.SkippedIdle = f.counters.idleSkips
	if f.r != nil {
		fs.Since = f.opened.Format(time.RFC3339)
		st := f.r.Stats()
		if st.Last >= st.WindowStart && st.Last > 0 {
			c.Window = st.Last - st.WindowStart + 1
		}
		c.Read = st.Delivered
		c.SkippedPreview = st.Skipped - min(st.Skipped, f.counters.idleSkips)
		c.RingDrops = st.Dropped() - st.Skipped
		c.TornRetries, c.WriterGone = st.Retries, st.WriterGone
		now := time.Now()
		if dt := now.Sub(f.prev.at).Seconds(); dt >= 0.9 {
			d, e, tr, wt := f.delay.Snapshot(), f.encode.Snapshot(), f.trans.Snapshot(), f.wait.Snapshot()
			prev := &f.prev
			dl, el := d.Latency().Since(prev.delay.Latency()), e.Latency().Since(prev.encode.Latency())
			lat, wl := tr.Latency().Since(prev.trans.Latency()), wt.Latency().Since(prev.wait.Latency())
			f.last = interval{
				Seconds:        dt,
				ReadFPS:        float64(st.Delivered-prev.st.Delivered) / dt,
				RingFPS:        float64(st.Delivered+st.Dropped()-prev.st.Delivered-prev.st.Dropped()) / dt,
				SentFPS:        float64(f.counters.sent-prev.sent) / dt,
				EncodeFPS:      float64(f.counters.encoded-prev.encoded) / dt,
				TransportP50Ms: msf(lat.Quantile(0.5)),
				TransportP99Ms: msf(lat.Quantile(0.99)),
				RingWaitP50Ms:  msf(wl.Quantile(0.5)),
				RingWaitP99Ms:  msf(wl.Quantile(0.99)),
				DelayP50Ms:     msf(dl.Quantile(0.5)),
				DelayP99Ms:     msf(dl.Quantile(0.99)),
				EncodeP50Ms:    msf(el.Quantile(0.5)),
			}
			f.prev = snapshotAt{at: now, st: st, delay: d, encode: e, trans: tr, wait: wt, encoded: f.counters.encoded, sent: f.counters.sent}
		}
		fs.Interval = f.last
	}
	if n := len(f.hist); n > 0 {
		sh := f.hist[n-1]
		fr := &sh.frame
		fs.Frame = &FrameView{
			Number: fr.Number, Generation: fr.Generation, Width: fr.Width, Height: fr.Height,
			Channels: fr.Channels, Format: fr.Format.String(), Stride: fr.Stride, Len: fr.Len,
			MetaLen: len(sh.meta), ShownW: sh.dw, ShownH: sh.dh, NotImage: sh.why,
			AgeMs: msf(time.Duration(max(0, ring.Now()-fr.Published))), Wall: fr.Wall.Format(time.RFC3339Nano),
		}
	}
	return fs
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / 1e6 }
