package bridge

import (
	"bytes"
	"sync"
)

// A bridge out works in two stages: Run reads a frame from the ring,
// encodes it and computes its checksum while the publisher goroutine
// hands the previous frame to NATS. Between them sits a hand-off of one
// frame: latest wins, so a frame still waiting when a newer one is ready
// is dropped (counted as skipped, like the frames the ring reader passes
// over), and the publisher always takes the newest frame there is. Three
// buffers suffice: one being read, one waiting, one being published.

// outBuf is one frame on its way through a bridge out.
type outBuf struct {
	buf  []byte       // the ring read: HeaderLen bytes of room, data, metadata
	enc  bytes.Buffer // JPEG: HeaderLen bytes of room, the JPEG stream, metadata
	wire []byte       // what is sent: HeaderLen bytes of room, then the wire payload
	h    header       // every field but the chunking, seq and sent
	// notice, if set, makes this a notice of that kind (no frame): it is
	// never replaced, nor does it replace a frame.
	notice    uint8
	number    uint64 // the frame's number in the source ring
	published int64  // its publish time there (CLOCK_MONOTONIC ns)
}

// handoff passes frames from Run to the publisher.
type handoff struct {
	mu     sync.Mutex
	cond   sync.Cond
	item   *outBuf // waiting for the publisher; nil: none
	busy   bool    // the publisher is sending one
	closed bool    // no more items: the publisher ends, put refuses
	free   chan *outBuf
}

const outBuffers = 3

func newHandoff() *handoff {
	p := &handoff{free: make(chan *outBuf, outBuffers)}
	p.cond.L = &p.mu
	for range outBuffers {
		p.free <- &outBuf{}
	}
	return p
}

// get returns a free buffer. It never blocks: Run holds at most one
// buffer, the hand-off one and the publisher one.
func (p *handoff) get() *outBuf {
	b := <-p.free
	b.notice = 0
	return b
}

func (p *handoff) release(b *outBuf) { p.free <- b }

// put hands b to the publisher. A frame waiting there is replaced (and
// returned, for the caller to count and release) unless b or it is a
// notice: then put waits for the publisher to take it. After close, put
// returns b itself.
func (p *handoff) put(b *outBuf) (dropped *outBuf) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && p.item != nil && (b.notice != 0 || p.item.notice != 0) {
		p.cond.Wait()
	}
	if p.closed {
		return b
	}
	dropped, p.item = p.item, b
	p.cond.Broadcast()
	return dropped
}

// take waits for an item; false when the hand-off is closed. The caller
// calls done when it has sent the item.
func (p *handoff) take() (*outBuf, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && p.item == nil {
		p.cond.Wait()
	}
	if p.closed {
		return nil, false
	}
	b := p.item
	p.item, p.busy = nil, true
	p.cond.Broadcast()
	return b, true
}

// done says the publisher finished with what it took last.
func (p *handoff) done() {
	p.mu.Lock()
	p.busy = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// drain waits until nothing waits in the hand-off and the publisher is
// idle (or the hand-off is closed).
func (p *handoff) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && (p.item != nil || p.busy) {
		p.cond.Wait()
	}
}

// pending reports whether a frame waits or is being sent.
func (p *handoff) pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.item != nil || p.busy
}

// close ends the hand-off and returns the item still waiting, if any.
func (p *handoff) close() *outBuf {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	b := p.item
	p.item = nil
	p.cond.Broadcast()
	return b
}
