package consumer

import "github.com/framering/framering/internal/shm"

// Test-only accessors.

// Head loads the ring's head (the old recipe's poll in a benchmark).
func (r *Reader) Head() uint64 {
	var h uint64
	shm.Guard(func() error { h = r.seg.Head().Load(); return nil })
	return h
}

// CloseWaits is how many Close calls waited for an outstanding view. Close
// counts itself while it holds r.mu, right before it waits on r.cond.
func (r *Reader) CloseWaits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.closeWaits.Load())
}

// Busy reports whether a read (or Close) holds the reader's lock: a Read
// blocked waiting for a frame does.
func (r *Reader) Busy() bool {
	if r.mu.TryLock() {
		r.mu.Unlock()
		return false
	}
	return true
}

// SetBeforeWait installs a hook that runs right before every futex wait of
// a read: a test lands a Close or a cancel in the window between the
// read's last check and its sleep.
func (r *Reader) SetBeforeWait(fn func()) { r.beforeWait = fn }

// Pokes is how many times the reader's wake word was poked (by Close or a
// cancelled context).
func (r *Reader) Pokes() uint64 { return r.waker.Pokes() }

// WaitCounts returns what waiting reads did so far: turns of the pick
// loop, futex waits, writer probes.
func (r *Reader) WaitCounts() (loops, waits, probes uint64) {
	return r.loops.Load(), r.waits.Load(), r.probes.Load()
}

// TornBound is the reader's bound on consecutive torn attempts.
const TornBound = tornBound
