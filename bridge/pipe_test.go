package bridge

import (
	"testing"
	"time"
)

// TestHandoff checks the hand-off between a bridge out's reader and its
// publisher: the newest frame replaces one still waiting, a notice never
// replaces nor is replaced (it waits its turn), drain waits for the
// publisher, and close returns what was left.
func TestHandoff(t *testing.T) {
	p := newHandoff()
	frame := func(n uint64) *outBuf { b := p.get(); b.number = n; return b }
	if d := p.put(frame(1)); d != nil {
		t.Fatalf("put into an empty hand-off dropped frame %d", d.number)
	}
	if d := p.put(frame(2)); d == nil || d.number != 1 {
		t.Fatalf("put over a waiting frame 1 dropped %v, want frame 1", d)
	} else {
		p.release(d)
	}
	b, ok := p.take()
	if !ok || b.number != 2 {
		t.Fatalf("take = %v, %v; want frame 2", b, ok)
	}
	if !p.pending() {
		t.Fatal("not pending while the publisher holds a frame")
	}

	// A notice waits behind a frame; a frame waits behind a notice.
	if d := p.put(frame(3)); d != nil {
		t.Fatalf("put dropped frame %d", d.number)
	}
	n := p.get()
	n.notice = kindSourceGone
	noticed := make(chan *outBuf, 1)
	go func() { noticed <- p.put(n) }()
	select {
	case d := <-noticed:
		t.Fatalf("a notice replaced frame 3 (put returned %v)", d)
	case <-time.After(20 * time.Millisecond): // it must still be waiting: no assertion on time
	}
	p.release(b)
	p.done()
	if b, _ = p.take(); b.number != 3 {
		t.Fatalf("took frame %d, want 3 before the notice", b.number)
	}
	if d := receive(t, noticed); d != nil {
		t.Fatalf("the notice's put dropped %v", d)
	}
	put4 := make(chan *outBuf, 1)
	go func() { put4 <- p.put(frame(4)) }()
	p.release(b)
	p.done()
	if b, _ = p.take(); b.notice != kindSourceGone {
		t.Fatalf("took %+v, want the notice", b)
	}
	if d := receive(t, put4); d != nil {
		t.Fatalf("frame 4 replaced %v", d)
	}

	// drain returns once the publisher is idle and nothing waits.
	drained := make(chan *outBuf, 1)
	go func() { p.drain(); drained <- nil }()
	p.release(b)
	p.done()
	b, _ = p.take()
	p.release(b)
	p.done()
	receive(t, drained)
	if p.pending() {
		t.Fatal("pending after drain")
	}

	// close: put gives its frame back, take ends, the waiting one is returned.
	if d := p.put(frame(5)); d != nil {
		t.Fatalf("put dropped %v", d)
	}
	if left := p.close(); left == nil || left.number != 5 {
		t.Fatalf("close returned %v, want frame 5", left)
	}
	f6 := frame(6)
	if d := p.put(f6); d != f6 {
		t.Fatalf("put after close = %v, want its own frame back", d)
	}
	if _, ok := p.take(); ok {
		t.Fatal("take after close succeeded")
	}
}

func receive(t *testing.T, ch <-chan *outBuf) *outBuf {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(hang):
		t.Fatal("hand-off call did not return")
		return nil
	}
}
