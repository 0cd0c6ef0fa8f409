package consumer

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/framering/framering/ring"
)

// Waiting. Every loop here checks Close and the context on every turn, and
// sleeps on the futex (never spins) whatever the segment holds:
//
//   - pick loads the reader's wake word (waker.Seq) at the top of every
//     turn, BEFORE it checks closed and ctx; the futex wait compares that
//     value, so a Close or a cancellation after the load makes the wait
//     return at once (futex_waitv on Notify and the wake word).
//   - a slot that stays odd or keeps changing (torn) is retried tornBound
//     times, then the writer is probed: gone, the frame counts as corrupt
//     and the reader moves on; alive, the reader sleeps on the futex
//     between attempts (D5).
//   - a head of 2^63 or more, or one that the slots do not back, fails the
//     read with ErrCorrupt and counts nothing; the same head again waits
//     one slice (or for a change) before failing again, so that a caller
//     that reads on after ErrCorrupt does not spin (D4).

// tornBound is how many consecutive torn attempts on one frame a read
// makes before it probes the writer (D5; the C reader's figure, about a
// millisecond of retries).
const tornBound = 1000

// pick blocks until there is a frame to read and returns its number.
func (r *Reader) pick(ctx context.Context) (uint64, error) {
	var spinUntil int64
	for {
		k := r.waker.Seq() // first: a Close or cancel from here on wakes the wait below
		r.loops.Add(1)
		if r.closed.Load() {
			return 0, r.errClosed()
		}
		if r.gone {
			if err := r.awaitWriter(ctx); err != nil {
				return 0, err
			}
		}
		head := r.seg.Head().Load()
		if head >= absurdHead {
			if err := r.refuseHead(ctx, head, k, fmt.Sprintf("head %d is 2^63 or more", head)); err != nil {
				return 0, err
			}
			continue
		}
		n, ok, why := r.candidate(head)
		if why != "" {
			if err := r.refuseHead(ctx, head, k, why); err != nil {
				return 0, err
			}
			continue
		}
		r.badHeadSet = false
		if ok {
			r.head = head
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if r.opts.Spin > 0 {
			now := ring.Now()
			if spinUntil == 0 {
				spinUntil = now + int64(min(r.opts.Spin, r.opts.WaitSlice))
			}
			if now < spinUntil {
				for i := 0; i < 128 && r.seg.Head().Load() == head; i++ {
				}
				continue
			}
			if spinUntil > 0 {
				// The spin found nothing: probe the writer before sleeping,
				// so a spinning reader notices a dead writer after one spin.
				spinUntil = -1
				if l := r.writerState(); !l.Alive {
					return 0, r.errGone(l)
				}
			}
		}
		if err := r.sleep(ctx, head, k); err != nil {
			return 0, err
		}
	}
}

// refuseHead returns the ErrCorrupt error for a head the reader cannot
// believe. If the previous read already failed on this same head, it first
// waits for the head to change, one slice at most; it returns nil if the
// caller should look again (the head changed, or Close or ctx ended the
// wait).
func (r *Reader) refuseHead(ctx context.Context, head uint64, k uint32, why string) error {
	if r.badHeadSet && r.badHead == head {
		if err := r.sleep(ctx, head, k); err != nil {
			return err
		}
		if r.closed.Load() || ctx.Err() != nil || r.seg.Head().Load() != head {
			return nil
		}
	}
	r.badHead, r.badHeadSet = head, true
	return fmt.Errorf("read ring %q: %w: %s", r.name, ring.ErrCorrupt, why)
}

// sleep waits on the futex for one slice, or until the deadline, Close or
// a cancel. If no frame came and the writer is gone, it returns
// ErrWriterGone. k is the wake word's value loaded before the caller's
// checks.
func (r *Reader) sleep(ctx context.Context, head uint64, k uint32) error {
	notify := r.seg.Notify()
	v := notify.Load() // before the head check: a commit after it changes Notify
	if r.seg.Head().Load() != head {
		return nil
	}
	if err := r.wait(ctx, notify, v, k, r.opts.WaitSlice); err != nil {
		return err
	}
	if r.seg.Head().Load() != head || r.closed.Load() || ctx.Err() != nil {
		return nil
	}
	if l := r.writerState(); !l.Alive {
		return r.errGone(l)
	}
	return nil
}

// wait sleeps while Notify is v and the wake word is k, for at most slice
// (and not past ctx's deadline). A cancellation of ctx pokes the wake word
// (a context.AfterFunc armed at the read's first wait, stopped when the
// read returns).
func (r *Reader) wait(ctx context.Context, notify *atomic.Uint32, v, k uint32, slice time.Duration) error {
	if r.stopCancel == nil && ctx.Done() != nil {
		r.stopCancel = context.AfterFunc(ctx, r.waker.Poke)
	}
	if dl, ok := ctx.Deadline(); ok {
		// Past the deadline, ctx.Err() may still be nil until the
		// context's timer runs (late, on a busy machine): do not wait in
		// ever shorter slices meanwhile.
		left := time.Until(dl)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		slice = min(slice, left)
	}
	r.waits.Add(1)
	if h := r.beforeWait; h != nil {
		h()
	}
	if err := r.waker.Wait(notify, v, k, slice); err != nil {
		return fmt.Errorf("read ring %q: %w", r.name, err)
	}
	return nil
}

// disarm stops the context.AfterFunc of the read that is returning.
func (r *Reader) disarm() {
	if r.stopCancel != nil {
		r.stopCancel()
		r.stopCancel = nil
	}
}

// awaitWriter waits until a writer is back (PROTOCOL.md §10): the path
// names another file (re-map it), or the mapped file has a writer again
// (writerBack). Meanwhile it sleeps on the futex, in slices of 50 ms at
// most: a takeover and a replacement both bump Notify.
func (r *Reader) awaitWriter(ctx context.Context) error {
	for {
		k := r.waker.Seq()
		r.loops.Add(1)
		if r.closed.Load() {
			return r.errClosed()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The path first: it touches no mapped memory, and a mapping
		// that was truncated faults at Notify below, until a new file
		// replaces it (a replacement after this check is seen at the
		// next slice).
		if r.sf.Replaced() {
			if err := r.attach(); err == nil {
				r.resume()
				return nil
			}
		}
		notify := r.seg.Notify()
		v := notify.Load() // before writerBack: a takeover after it wakes the wait
		if r.writerBack() {
			r.resume()
			return nil
		}
		if err := r.wait(ctx, notify, v, k, min(r.opts.WaitSlice, 50*time.Millisecond)); err != nil {
			return err
		}
	}
}

// retry handles a torn attempt at frame n: it counts it, and decides
// whether to try again at once, sleep first, or give the frame up (D5).
func (r *Reader) retry(ctx context.Context, n uint64) error {
	k := r.waker.Seq()
	r.st.retries.Add(1)
	if n != r.tornFrame {
		r.tornFrame, r.tornCount = n, 0
	}
	r.tornCount++
	if r.closed.Load() {
		return r.errClosed()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.tornCount < tornBound {
		if r.tornCount&15 == 0 {
			runtime.Gosched()
		}
		return nil
	}
	// A correct writer never keeps a slot a reader may read odd, nor
	// rewrites it over and over with the same frame (§6): probe it.
	if l := r.writerState(); !l.Alive {
		why := l.Why
		r.tornCount = 0
		r.pass(n, &r.st.corrupt)
		return fmt.Errorf("read ring %q: %w: frame %d: its slot stayed mid-write for %d attempts and %s (frame skipped)",
			r.name, ring.ErrCorrupt, n, tornBound, why)
	}
	// A live writer: sleep on the futex between attempts, never spin.
	notify := r.seg.Notify()
	return r.wait(ctx, notify, notify.Load(), k, r.opts.WaitSlice)
}
