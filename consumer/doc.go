// Package consumer is the reading side of a framering ring: any number of
// readers, in any number of processes, follow one writer. Readers map the
// segment read-only and never write to it.
//
// # Basics
//
//	r, err := consumer.Open("cam0", consumer.Options{})
//	...
//	defer r.Close()
//	buf := make([]byte, r.Geometry().PayloadCap)
//	for {
//		f, err := r.Read(ctx, buf) // copy-out, validated
//		if errors.Is(err, ring.ErrWriterGone) {
//			continue // the next Read waits for a writer to come back
//		}
//		...
//	}
//
// # Modes
//
// [Ordered] (the default) delivers every frame in order; a reader that
// falls more than the slot count behind is lapped, skips to the oldest
// frame still in the ring, and counts what it missed. [Latest] always
// delivers the newest frame and counts the ones it skipped. Either way, for
// every reader, Delivered + Dropped equals the frames published in its
// window: from the newest frame at Open (see [Options.Start]) to the last
// frame it considered.
//
// # Copy reads and views
//
// [Reader.Read] copies a frame into the caller's buffer and returns it only
// if the copy is consistent. [Reader.Acquire] returns a [View] whose Pixels
// alias the slot in shared memory, with no copy; the writer may overwrite
// the slot at any time, so whatever the caller computes from a view (and
// the view's header fields too) is valid only if [View.Release] returns nil. Release returns
// [ring.ErrOverwritten] otherwise. A reader refuses a new Acquire or Read
// while a view is out ([ring.ErrViewOutstanding]), so a forgotten Release
// shows up at the next call. [Reader.View] wraps the pair around a
// function and also guards it against a truncated segment.
//
// # Waiting
//
// Reads block until a frame is there, the context ends, or the reader is
// closed. A reader may spin for [Options.Spin] first (lowest latency, one
// busy core), then sleeps on a futex the writer wakes after every commit,
// in slices of [Options.WaitSlice] so that it notices a dead writer within
// a slice. A blocked reader holds one OS thread and no CPU.
//
// # Writer gone, writer back
//
// When the writer dies or closes (its OFD lock is gone) or stops beating
// its heartbeat for [Options.HungAfter], the next read returns
// [ring.ErrWriterGone] once. Reads after that wait for a writer to come
// back: in the same segment (same geometry) or a new one under the same
// name (another geometry), which the reader maps in place of the old one.
//
// # Concurrency
//
// A Reader must not be used by several goroutines at once, except that
// [Reader.Close] and [Reader.Stats] may be called from any goroutine. Close
// wakes a blocked read, which returns [ring.ErrClosed]. Use one Reader per
// goroutine; they are cheap. A Reader dropped without Close is unmapped
// when the garbage collector finds it; Close releases it at once.
package consumer
