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
