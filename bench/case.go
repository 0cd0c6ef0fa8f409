package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/framering/framering/ring"
)

// Transport is one way of moving frames between processes.
type Transport string

// Transports, in the order reports list them.
const (
	FrameringCopy Transport = "framering-copy" // producer.Publish in, consumer.Read out: a copy each way
	FrameringView Transport = "framering-view" // a loan filled in place, Acquire/Release: zero-copy
	CView         Transport = "c-view"         // the C library's reader (c/framering.h), in place
	CCopy         Transport = "c-copy"         // the C library's reader, copy-out
	PyView        Transport = "py-view"        // the Python package's reader, in place (a numpy view)
	PyCopy        Transport = "py-copy"        // the Python package's reader, copy-out into a numpy array
	Bare          Transport = "bare"           // a timestamp in a shared cache line (+ FUTEX_WAKE): the floor
	Legacy        Transport = "legacy"         // the old single-slot recipe (legacy.OldWriter/OldReader)
	UDS           Transport = "uds"            // Unix domain stream socket
	Pipe          Transport = "pipe"           // named pipe (FIFO)
	TCP           Transport = "tcp"            // TCP over loopback
	Memcpy        Transport = "memcpy"         // copy in one process: the physical reference
)

// AllTransports lists every transport in report order.
var AllTransports = []Transport{FrameringCopy, FrameringView, CView, CCopy, PyView, PyCopy, Bare, Legacy, UDS, Pipe, TCP, Memcpy}

func (t Transport) valid() bool {
	for _, a := range AllTransports {
		if t == a {
			return true
		}
	}
	return false
}

// ring reports whether t's writer is a framering writer (the Go
// producer), whatever language reads.
func (t Transport) ring() bool { return t == FrameringCopy || t == FrameringView || t.foreign() }

// view reports whether t's readers read in place.
func (t Transport) view() bool { return t == FrameringView || t == CView || t == PyView }

// foreign reports whether t's readers are programs in another language.
func (t Transport) foreign() bool { return t.lang() != "" }

// lang is "c" or "python" for the foreign readers, "" for Go's.
func (t Transport) lang() string {
	switch t {
	case CView, CCopy:
		return "c"
	case PyView, PyCopy:
		return "python"
	}
	return ""
}

// stream reports whether t is a byte-stream transport (socket or pipe).
func (t Transport) stream() bool { return t == UDS || t == Pipe || t == TCP }

// Wait is how a reader waits for the next frame.
type Wait string

// Wait modes.
const (
	Futex Wait = "futex" // framering's default: sleep on the ring's futex
	Spin  Wait = "spin"  // busy-poll (consumer.Options.Spin; the recipe without its sleep)
	Poll  Wait = "poll"  // look without waiting, sleep between looks (the recipe's 1 ms; copy-out: 50 µs)
	Block Wait = "block" // blocking read(2) on a socket or pipe: the kernel wakes the reader
	None  Wait = "none"  // memcpy: nothing to wait for
)

// Waits returns the wait modes that make sense for t, default first.
func Waits(t Transport) []Wait {
	switch {
	case t == FrameringCopy || t == FrameringView:
		return []Wait{Futex, Spin, Poll}
	case t.foreign():
		return []Wait{Futex, Spin, Poll}
	case t == Bare:
		return []Wait{Futex, Spin}
	case t == Legacy:
		return []Wait{Poll, Spin}
	case t.stream():
		return []Wait{Block}
	}
	return []Wait{None}
}

// DefaultWait is the first of Waits(t).
func DefaultWait(t Transport) Wait { return Waits(t)[0] }

// Kind is what a case measures.
type Kind string

// Kinds of measurement.
const (
	// Latency: the writer waits until every reader has handled the last
	// frame (each reader says so on a shared ack board), pauses a random
	// 1-3 ms and publishes the next, so readers are idle when a frame
	// comes and idle for the same time in every case; figures are one-way
	// latency quantiles, with each frame's scheduler delay beside it.
	Latency Kind = "latency"
	// PingPong: one frame goes there and back, back to back; latency is
	// round trip / 2 (iceoryx's iceperf method).
	PingPong Kind = "pingpong"
	// Throughput: the writer goes flat out; figures are frames and bytes
	// per second each reader gets.
	Throughput Kind = "throughput"
	// CopyOut: paced like Latency; the reader looks for a frame without
	// waiting and times the copy of each frame it finds, alternating the
	// library's copy-out read with a plain copy of the same slot through a
	// view (Go copy, glibc memcpy, numpy.copyto).
	CopyOut Kind = "copyout"
	// Idle: a reader blocked on a ring whose writer is alive and publishes
	// nothing; figures are its CPU share and wake-ups per second.
	Idle Kind = "idle"
)

// AllKinds lists every kind in report order.
var AllKinds = []Kind{Latency, PingPong, Throughput, CopyOut, Idle}

// Shape is a frame size.
type Shape struct {
	W, H, C int
}

// Standard frame sizes: the recipe's, 720p, 1080p, 4K (BGR).
var (
	Shape404  = Shape{640, 404, 3}
	Shape720  = Shape{1280, 720, 3}
	Shape1080 = Shape{1920, 1080, 3}
	Shape4K   = Shape{3840, 2160, 3}
	AllShapes = []Shape{Shape404, Shape720, Shape1080, Shape4K}
)

// Bytes is the frame's payload size.
func (s Shape) Bytes() int { return s.W * s.H * s.C }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.W, s.H, s.C) }

// ParseShape parses "WxHxC".
func ParseShape(str string) (Shape, error) {
	w, h, c, err := ring.ParseSize(str)
	if err != nil {
		return Shape{}, err
	}
	s := Shape{w, h, c}
	if s.Bytes() < minFrame {
		return Shape{}, fmt.Errorf("frame size %s is %d bytes; the benchmark needs at least %d", s, s.Bytes(), minFrame)
	}
	return s, nil
}

// MarshalText makes Shape a JSON string.
func (s Shape) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a JSON string.
func (s *Shape) UnmarshalText(b []byte) error {
	v, err := ParseShape(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Case is one measurement.
type Case struct {
	Kind      Kind      `json:"kind"`
	Transport Transport `json:"transport"`
	Wait      Wait      `json:"wait"`
	Shape     Shape     `json:"shape"`
	Readers   int       `json:"readers"`
	// Pin places the writer and the readers on distinct CPUs (readers
	// share the CPUs left when there are more readers than CPUs).
	Pin bool `json:"pin,omitempty"`
	// Duration is how long the writer runs. Frames, if set, stops it after
	// that many frames instead (go test -bench uses b.N).
	Duration time.Duration `json:"duration_ns"`
	Frames   int           `json:"frames,omitempty"`
}

// Name identifies the case, e.g. "latency/framering-view/futex/1920x1080x3/r1"
// (with "/pin" when pinned).
func (c Case) Name() string {
	n := fmt.Sprintf("%s/%s/%s/%s/r%d", c.Kind, c.Transport, c.Wait, c.Shape, c.Readers)
	if c.Pin {
		n += "/pin"
	}
	return n
}

// Check reports whether the case can run.
func (c Case) Check() error {
	if !c.Transport.valid() {
		return fmt.Errorf("case %s: unknown transport %q (known: %s)", c.Name(), c.Transport, joinT(AllTransports))
	}
	ok := false
	for _, w := range Waits(c.Transport) {
		ok = ok || w == c.Wait
	}
	if !ok {
		return fmt.Errorf("case %s: transport %s cannot wait by %q", c.Name(), c.Transport, c.Wait)
	}
	switch c.Kind {
	case Latency:
	case Throughput:
		if c.Transport == Bare {
			return fmt.Errorf("case %s: the bare ping carries no frame to measure throughput with", c.Name())
		}
	case PingPong:
		if c.Transport == Memcpy || c.Transport == Bare || c.Transport.foreign() || c.Readers != 1 {
			return fmt.Errorf("case %s: ping-pong needs a Go IPC transport (not bare, memcpy, C or Python) and 1 reader", c.Name())
		}
	case CopyOut:
		if c.Transport != FrameringCopy && c.Transport != CCopy && c.Transport != PyCopy {
			return fmt.Errorf("case %s: copy-out compares a copy-out reader (framering-copy, c-copy, py-copy) with plain copies", c.Name())
		}
		if c.Wait != Poll || c.Readers != 1 {
			return fmt.Errorf("case %s: copy-out runs 1 reader that polls (wait %s)", c.Name(), Poll)
		}
	case Idle:
		if !c.Transport.view() || c.Wait != Futex {
			return fmt.Errorf("case %s: idle measures a view reader blocked on the futex (framering-view, c-view, py-view)", c.Name())
		}
	default:
		return fmt.Errorf("case %s: unknown kind %q", c.Name(), c.Kind)
	}
	if c.Readers < 1 || c.Readers > maxReaders {
		return fmt.Errorf("case %s: %d readers, not 1 to %d", c.Name(), c.Readers, maxReaders)
	}
	if c.Transport == Memcpy && c.Readers != 1 {
		return fmt.Errorf("case %s: memcpy runs in one process with 1 reader", c.Name())
	}
	if c.Shape.Bytes() < minFrame {
		return fmt.Errorf("case %s: frame of %d bytes; the benchmark needs at least %d", c.Name(), c.Shape.Bytes(), minFrame)
	}
	if c.Duration <= 0 && c.Frames <= 0 {
		return fmt.Errorf("case %s: neither a duration nor a frame count", c.Name())
	}
	return nil
}

// maxReaders bounds a case's readers (the ack board has a line each).
const maxReaders = 64

func joinT(ts []Transport) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Plan chooses the cases of a run.
type Plan struct {
	Quick bool
	// Transports, if not empty, keeps only these.
	Transports []Transport
	// Shapes, if not empty, replaces the standard sizes.
	Shapes []Shape
	// Kinds, if not empty, keeps only these.
	Kinds []Kind
	// Scale multiplies every duration (1 when zero).
	Scale float64
	// Pin pins every case. Without it the plan still pins the pair the
	// spin goal needs (bare spin and framering-view spin latency).
	Pin bool
	// NoPinnedPair leaves that pinned pair out (a machine with 1 CPU).
	NoPinnedPair bool
}

// Durations of the full suite and of --quick.
const (
	fullLatency    = 2 * time.Second
	fullPingPong   = 1500 * time.Millisecond
	fullThroughput = 1500 * time.Millisecond
	fullCopyOut    = 2 * time.Second
	fullIdle       = 5 * time.Second
	quickLatency   = 500 * time.Millisecond
	quickPingPong  = 400 * time.Millisecond
	quickThrough   = 400 * time.Millisecond
	quickCopyOut   = 600 * time.Millisecond
	quickIdle      = 2 * time.Second
)

// Cases lists the cases of the plan, in run order: latency, ping-pong,
// throughput, copy-out, idle; each by size, and within a size the cases
// a goal compares run next to each other (bare futex beside the futex
// view, the pinned bare spin beside the pinned spin view, 1 reader
// beside 4).
//
// The full suite, at every size: latency for every transport in its
// default wait, plus spin for framering, bare and legacy, poll for the
// view, 4 readers for the view and UDS, and the pinned spin pair;
// ping-pong for every Go IPC transport (framering also spinning);
// throughput for every transport with 1 reader (4 for the Go IPC
// transports); copy-out for framering-copy, c-copy and py-copy; then idle
// for the three view readers. --quick: 1920x1080x3 only (or the first size
// given), the cases the goals need and one latency and throughput case
// per transport, short durations.
func (p Plan) Cases() []Case {
	scale := p.Scale
	if scale <= 0 {
		scale = 1
	}
	dur := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	keep := func(c Case) bool {
		okT, okK := len(p.Transports) == 0, len(p.Kinds) == 0
		for _, x := range p.Transports {
			okT = okT || x == c.Transport
		}
		for _, x := range p.Kinds {
			okK = okK || x == c.Kind
		}
		return okT && okK
	}
	var out []Case
	seen := map[string]bool{}
	add := func(k Kind, t Transport, w Wait, s Shape, readers int, pin bool, d time.Duration) {
		c := Case{Kind: k, Transport: t, Wait: w, Shape: s, Readers: readers, Pin: pin || p.Pin, Duration: dur(d)}
		if keep(c) && !seen[c.Name()] {
			seen[c.Name()] = true
			out = append(out, c)
		}
	}
	shapes := AllShapes
	if p.Quick {
		shapes = []Shape{Shape1080}
	}
	if len(p.Shapes) > 0 {
		shapes = p.Shapes
		if p.Quick {
			shapes = p.Shapes[:1]
		}
	}
	lat, pp, tp, co, idle := fullLatency, fullPingPong, fullThroughput, fullCopyOut, fullIdle
	if p.Quick {
		lat, pp, tp, co, idle = quickLatency, quickPingPong, quickThrough, quickCopyOut, quickIdle
	}
	pinned := !p.NoPinnedPair
	for _, s := range shapes {
		// The goals' pairs first, next to each other.
		add(Latency, Bare, Futex, s, 1, false, lat)
		add(Latency, FrameringView, Futex, s, 1, false, lat)
		add(Latency, FrameringView, Futex, s, 4, false, lat)
		add(Latency, CView, Futex, s, 1, false, lat)
		if pinned {
			add(Latency, Bare, Spin, s, 1, true, lat)
			add(Latency, FrameringView, Spin, s, 1, true, lat)
		}
		if !p.Quick {
			add(Latency, Bare, Spin, s, 1, false, lat)
			add(Latency, FrameringView, Spin, s, 1, false, lat)
		}
		add(Latency, FrameringView, Poll, s, 1, false, lat)
		add(Latency, FrameringCopy, Futex, s, 1, false, lat)
		if !p.Quick {
			add(Latency, FrameringCopy, Spin, s, 1, false, lat)
			add(Latency, CCopy, Futex, s, 1, false, lat)
			add(Latency, PyCopy, Futex, s, 1, false, lat)
		}
		add(Latency, PyView, Futex, s, 1, false, lat)
		add(Latency, Legacy, Poll, s, 1, false, lat)
		if !p.Quick {
			add(Latency, Legacy, Spin, s, 1, false, lat)
		}
		for _, t := range []Transport{UDS, Pipe, TCP, Memcpy} {
			add(Latency, t, DefaultWait(t), s, 1, false, lat)
		}
		if !p.Quick {
			add(Latency, UDS, Block, s, 4, false, lat)
		}
	}
	for _, s := range shapes {
		if p.Quick {
			add(PingPong, FrameringView, Spin, s, 1, false, pp)
			add(PingPong, FrameringCopy, Spin, s, 1, false, pp)
			add(PingPong, UDS, Block, s, 1, false, pp)
			continue
		}
		for _, t := range []Transport{FrameringView, FrameringCopy, Legacy, UDS, Pipe, TCP} {
			add(PingPong, t, DefaultWait(t), s, 1, false, pp)
			if t == FrameringView || t == FrameringCopy {
				add(PingPong, t, Spin, s, 1, false, pp)
			}
		}
	}
	for _, s := range shapes {
		for _, t := range AllTransports {
			if t == Bare {
				continue
			}
			add(Throughput, t, DefaultWait(t), s, 1, false, tp)
			if !p.Quick && (t == FrameringCopy || t == FrameringView || t == Legacy || t.stream()) {
				add(Throughput, t, DefaultWait(t), s, 4, false, tp)
			}
		}
	}
	for _, s := range shapes {
		for _, t := range []Transport{FrameringCopy, CCopy, PyCopy} {
			add(CopyOut, t, Poll, s, 1, false, co)
		}
	}
	if len(shapes) > 0 {
		// Idle does not depend on the size: the first one.
		for _, t := range []Transport{FrameringView, CView, PyView} {
			if p.Quick && t != FrameringView {
				continue
			}
			add(Idle, t, Futex, shapes[0], 1, false, idle)
		}
	}
	return out
}
