// Package producer is the writing side of a framering ring: one writer per
// ring, publishing frames into an N-slot ring in a POSIX shared-memory
// segment that any number of read-only readers follow.
//
// # Basics
//
//	w, err := producer.Open("cam0", producer.Options{MaxFrameBytes: 1920 * 1080 * 3})
//	...
//	defer w.Close()
//	// Copy API: publish a buffer.
//	n, err := w.Publish(ring.FrameInfo{Width: 1920, Height: 1080, Format: ring.BGR8}, pixels)
//	// Loan API: fill the slot in place, then commit.
//	l, err := w.Reserve()
//	decodeInto(l.Pixels())
//	err = l.Commit(ring.FrameInfo{Width: 1920, Height: 1080, Format: ring.BGR8})
//
// # Single writer, restarts
//
// Open takes an OFD write lock on the segment; a second writer gets
// [ring.ErrBusy] naming the first one's pid. A writer that reopens a ring
// with the same geometry reuses the segment: it bumps the generation,
// clears slots a crashed writer left half-written, and continues the frame
// numbering, so readers resume where they were. A different geometry builds
// a new segment under a temporary name and renames it into place; readers
// notice the new inode and re-map. Frame numbers still continue.
//
// # Lifetimes
//
// A [Loan]'s Pixels and Meta slices alias shared memory. They are valid
// until Commit or Abort; writing through them afterwards corrupts a
// published frame. Frames are visible to readers from Commit on. Close
// leaves the segment in place for readers; Remove unlinks it. A Writer
// dropped without Close is released when the garbage collector finds it
// (runtime.AddCleanup), but its lock is held until then: call Close.
//
// # Concurrency
//
// A Writer must not be used concurrently by several goroutines, except
// that [Writer.Stats] may be called from any goroutine (a metrics scrape)
// and [Writer.Close] is idempotent.
//
// # Errors
//
// Errors wrap the sentinels of package ring ([ring.ErrBusy],
// [ring.ErrFrameTooLarge], [ring.ErrInvalidFrame], [ring.ErrNoSpace], ...)
// and say what to do about them.
package producer
