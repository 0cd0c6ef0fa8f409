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
	FrameringCopy Transport = "framering-copy" // consumer.Read into the reader's buffer
	FrameringView Transport = "framering-view" // consumer.Acquire/Release, zero-copy
	Legacy        Transport = "legacy"         // the old single-slot recipe (legacy.OldWriter/OldReader)
	UDS           Transport = "uds"            // Unix domain stream socket
	Pipe          Transport = "pipe"           // named pipe (FIFO)
	TCP           Transport = "tcp"            // TCP over loopback
	Memcpy        Transport = "memcpy"         // copy in one process: the physical reference
)

// AllTransports lists every transport in report order.
var AllTransports = []Transport{FrameringCopy, FrameringView, Legacy, UDS, Pipe, TCP, Memcpy}

func (t Transport) valid() bool {
	for _, a := range AllTransports {
		if t == a {
			return true
		}
	}
	return false
}

// ring reports whether t is a framering transport.
func (t Transport) ring() bool { return t == FrameringCopy || t == FrameringView }

// stream reports whether t is a byte-stream transport (socket or pipe).
func (t Transport) stream() bool { return t == UDS || t == Pipe || t == TCP }

// Wait is how a reader waits for the next frame.
type Wait string

// Wait modes.
const (
	Futex Wait = "futex" // framering's default: sleep on the ring's futex
	Spin  Wait = "spin"  // busy-poll (consumer.Options.Spin; the recipe without its sleep)
	Poll  Wait = "poll"  // poll, sleeping 1 ms between looks: the recipe's way
	Block Wait = "block" // blocking read(2) on a socket or pipe: the kernel wakes the reader
	None  Wait = "none"  // memcpy: nothing to wait for
)

// Waits returns the wait modes that make sense for t, default first.
func Waits(t Transport) []Wait {
	switch {
	case t.ring():
		return []Wait{Futex, Spin, Poll}
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
	// Latency: the writer publishes at random 1-3 ms gaps, so readers are
	// waiting when a frame comes; figures are one-way latency quantiles.
	Latency Kind = "latency"
	// PingPong: one frame goes there and back, back to back; latency is
	// round trip / 2 (iceoryx's iceperf method).
	PingPong Kind = "pingpong"
	// Throughput: the writer goes flat out; figures are frames and bytes
	// per second each reader gets.
	Throughput Kind = "throughput"
)

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
	// Duration is how long the writer runs. Frames, if set, stops it after
	// that many frames instead (go test -bench uses b.N).
	Duration time.Duration `json:"duration_ns"`
	Frames   int           `json:"frames,omitempty"`
}

// Name identifies the case, e.g. "latency/framering-view/futex/1920x1080x3/r1".
func (c Case) Name() string {
	return fmt.Sprintf("%s/%s/%s/%s/r%d", c.Kind, c.Transport, c.Wait, c.Shape, c.Readers)
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
	case Latency, Throughput:
	case PingPong:
		if c.Transport == Memcpy || c.Readers != 1 {
			return fmt.Errorf("case %s: ping-pong needs an IPC transport and 1 reader", c.Name())
		}
	default:
		return fmt.Errorf("case %s: unknown kind %q", c.Name(), c.Kind)
	}
	if c.Readers < 1 || c.Readers > 64 {
		return fmt.Errorf("case %s: %d readers, not 1 to 64", c.Name(), c.Readers)
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
}

// Durations of the full suite and of --quick.
const (
	fullLatency    = 2 * time.Second
	fullPingPong   = 1500 * time.Millisecond
	fullThroughput = 1500 * time.Millisecond
	quickLatency   = 600 * time.Millisecond
	quickPingPong  = 500 * time.Millisecond
	quickThrough   = 500 * time.Millisecond
)

// Cases lists the cases of the plan, in run order: latency, ping-pong,
// throughput, each by size then transport.
//
// The full suite: every size; latency for every transport and wait mode
// with 1 and 4 readers; ping-pong for every IPC transport (default wait,
// plus framering-view spin); throughput for every transport (default wait)
// with 1 and 4 readers. --quick: 640x404, 1080p and 4K for framering-view
// latency (futex, spin); everything else at 1080p only, 1 reader, plus one
// 4-reader case.
func (p Plan) Cases() []Case {
	scale := p.Scale
	if scale <= 0 {
		scale = 1
	}
	dur := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	keepT := func(t Transport) bool {
		if len(p.Transports) == 0 {
			return true
		}
		for _, x := range p.Transports {
			if x == t {
				return true
			}
		}
		return false
	}
	keepK := func(k Kind) bool {
		if len(p.Kinds) == 0 {
			return true
		}
		for _, x := range p.Kinds {
			if x == k {
				return true
			}
		}
		return false
	}
	var out []Case
	add := func(c Case) {
		if keepT(c.Transport) && keepK(c.Kind) {
			out = append(out, c)
		}
	}
	if p.Quick {
		shapes := []Shape{Shape404, Shape1080, Shape4K}
		if len(p.Shapes) > 0 {
			shapes = p.Shapes
		}
		ref := shapes[len(shapes)/2] // 1080p in the standard list
		for _, s := range shapes {
			for _, w := range []Wait{Futex, Spin} {
				add(Case{Kind: Latency, Transport: FrameringView, Wait: w, Shape: s, Readers: 1, Duration: dur(quickLatency)})
			}
			if s != ref {
				continue
			}
			add(Case{Kind: Latency, Transport: FrameringView, Wait: Poll, Shape: s, Readers: 1, Duration: dur(quickLatency)})
			for _, t := range []Transport{FrameringCopy, Legacy, UDS, Pipe, TCP, Memcpy} {
				add(Case{Kind: Latency, Transport: t, Wait: DefaultWait(t), Shape: s, Readers: 1, Duration: dur(quickLatency)})
			}
			add(Case{Kind: Latency, Transport: FrameringView, Wait: Futex, Shape: s, Readers: 4, Duration: dur(quickLatency)})
		}
		for _, t := range []Transport{FrameringView, UDS} {
			add(Case{Kind: PingPong, Transport: t, Wait: DefaultWait(t), Shape: ref, Readers: 1, Duration: dur(quickPingPong)})
		}
		for _, t := range AllTransports {
			add(Case{Kind: Throughput, Transport: t, Wait: DefaultWait(t), Shape: ref, Readers: 1, Duration: dur(quickThrough)})
		}
		return out
	}
	shapes := AllShapes
	if len(p.Shapes) > 0 {
		shapes = p.Shapes
	}
	for _, s := range shapes {
		for _, t := range AllTransports {
			for _, w := range Waits(t) {
				for _, n := range []int{1, 4} {
					if t == Memcpy && n > 1 {
						continue
					}
					add(Case{Kind: Latency, Transport: t, Wait: w, Shape: s, Readers: n, Duration: dur(fullLatency)})
				}
			}
		}
	}
	for _, s := range shapes {
		for _, t := range AllTransports {
			if t == Memcpy {
				continue
			}
			add(Case{Kind: PingPong, Transport: t, Wait: DefaultWait(t), Shape: s, Readers: 1, Duration: dur(fullPingPong)})
			if t == FrameringView {
				add(Case{Kind: PingPong, Transport: t, Wait: Spin, Shape: s, Readers: 1, Duration: dur(fullPingPong)})
			}
		}
	}
	for _, s := range shapes {
		for _, t := range AllTransports {
			for _, n := range []int{1, 4} {
				if t == Memcpy && n > 1 {
					continue
				}
				add(Case{Kind: Throughput, Transport: t, Wait: DefaultWait(t), Shape: s, Readers: n, Duration: dur(fullThroughput)})
			}
		}
	}
	return out
}
