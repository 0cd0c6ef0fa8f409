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
//		buf = f.Data[:cap(f.Data)] // Read grows the buffer if a new writer sends larger frames
//	}
//
// # Modes and window
//
// [Ordered] (the default) delivers every frame in order; a reader that
// falls a whole ring behind is lapped: it resumes half a ring behind the
// newest frame (not at the oldest slot, which the writer overwrites next)
// and counts the frames in between as lapped. [Latest] always delivers the
// newest frame and counts the ones it skipped. Either way, for every
// reader, Delivered + Dropped equals the frames published in its window:
// from the frame [Options.StartAt] picks at Open to the last frame it
// considered.
//
// Frame numbers never go back while a ring's superblock survives: a writer
// restart, or a replacement with another geometry (or of a damaged file
// whose superblock is still readable), continues the numbering, and the
// reader's window with it. Only a ring created again from scratch under
// the same name (removed, or its superblock destroyed) starts again at
// frame 1. A reader that sees the head go below its next frame counts a
// reset ([Stats].Resets), closes its window and opens a new one at the
// oldest frame of the new numbering. [Stats].WindowStart and Last then
// describe the new window, and [Stats].Considered counts the frames of all
// windows: Delivered + Dropped() == Considered at every moment.
//
// # Copy reads and views
//
// [Reader.Read] copies a frame into the caller's buffer and returns it only
// if the copy is consistent. [Reader.Acquire] returns a [View] whose Data
// and Meta alias the slot in shared memory, with no copy; the writer may
// overwrite the slot at any time, so whatever the caller computes from a
// view (and the view's header fields too) is valid only if [View.Release]
// returns nil; it returns [ring.ErrOverwritten] otherwise. A reader
// refuses a new Acquire or Read while a view is out
// ([ring.ErrViewOutstanding]), so a forgotten Release shows up at the next
// call. [Reader.ReadInPlace] wraps the pair around a function, runs it
// under the fault guard and releases the view even if the function panics.
//
// # Waiting
//
// Reads block until a frame is there, the context ends, or the reader is
// closed. A reader may spin for [Options.Spin] first, then sleeps on a
// futex the writer wakes after every commit, in slices of
// [Options.WaitSlice] so that it notices a dead writer within a slice. A
// blocked reader holds one OS thread and no CPU: it makes one futex wait
// and one writer probe (F_OFD_GETLK) per slice, 10 wake-ups a second with
// the default slice.
//
// Close and a cancelled context (or its deadline) end a wait at once,
// whatever the slice: the reader sleeps on the ring's Notify word and on a
// private word of its own together (futex_waitv, Linux 5.16 and later);
// Close and the cancellation change the private word before they wake it,
// and the reader loaded it before its last check, so a wake-up that lands
// between that check and the sleep is not lost (the kernel sees the word
// changed and returns). On kernels without futex_waitv the reader falls
// back to FUTEX_WAIT on Notify alone in slices of at most 20 ms
// (shm.FallbackSlice): there, a Close or cancel landing in that window is
// noticed at the end of the short slice instead of at once.
//
// Nothing in the segment can make a read spin or hang (D4, D5 of the
// protocol decisions; docs/PROTOCOL.md §6, §8):
//
//   - A slot that stays mid-write (odd Seq) or keeps changing is retried
//     a bounded number of times (1000), then the writer is probed: with no
//     live writer the frame counts as corrupt, the read returns
//     [ring.ErrCorrupt] and the next read goes on with the next frame;
//     with a live writer the read sleeps on the futex between attempts
//     until the frame is there, overwritten, or the context ends.
//   - A Head of 2^63 or more (Open refuses the ring), or one that the
//     slots do not back (the slot of frame Head holds an older frame,
//     checked before the reader counts a whole ring of frames as lapped
//     or skipped), fails the read with [ring.ErrCorrupt] and counts
//     nothing. Reading on after that error is allowed: a read that finds
//     the same head again first waits one slice (or until the head
//     changes), so a loop that retries on errors does not spin.
//   - A frame whose slot holds an older frame than its number (a head a
//     little ahead of the slots) counts as corrupt and is skipped.
//
// # Spinning
//
// Spinning ([Options.Spin]) helps when the reader has a core to itself
// (an idle core, or one it is pinned to): the reader sees a commit about a
// microsecond after it, against tens of microseconds for a futex wake-up.
// It hurts on a host with few cores shared with the writer (a 2-core
// machine): when the writer wakes up to publish, the scheduler often puts
// it on the spinner's CPU, where it preempts the spinner (or waits behind
// it), so the frame is seen later than a futex waiter would see it
// (measured on a 2-vCPU host under load: 165 of 167 frames were
// preempted that way). A spinning reader never spins longer
// than one [Options.WaitSlice] per read, probes the writer when its spin
// ends without a frame (so it reports a dead writer after one spin) and
// then sleeps on the futex like any reader.
//
// # Memory
//
// Open (and the re-map after a writer replaced the segment) reads one
// word of every page of the segment, so that no slot's first read pays
// the page faults of a fresh mapping: Open takes a few milliseconds per
// 50 MB of ring for it (docs/PERFORMANCE.md); [Options.NoPrefault] turns
// it off. Read copies with the same routine as the producer's Publish
// (internal/memcopy).
//
// # Writer gone, writer back
//
// When the writer dies or closes (its OFD lock is gone) or stops beating
// its heartbeat for [Options.HungAfter], the next read returns
// [ring.ErrWriterGone] once. Reads after that wait for a writer to come
// back: in the same segment (same geometry) or a new one under the same
// name (another geometry), which the reader maps in place of the old one.
// A writer is back in the same segment once it has taken it over (its
// Generation moved), or, if it was hung, once its heartbeat is fresh
// again; a new writer that holds the lock while it prepares the segment,
// or builds a replacement, is not (PROTOCOL.md §10).
//
// # Concurrency
//
// A Reader must not be used by several goroutines at once, except that
// [Reader.Close], [Reader.Stats], [Reader.Geometry] and [Reader.Name] may
// be called from any goroutine, and the view's Release may come from the
// goroutine that worked on it. Close wakes a blocked read, which returns
// [ring.ErrClosed]. Use one Reader per goroutine; they are cheap.
//
// # Caveats
//
//   - Close waits for a view that is out: it returns once the goroutine
//     working on it calls Release (bbolt's rule for open transactions).
//     Calling Close from that goroutine before Release never returns.
//     Release after Close returns [ring.ErrClosed].
//   - The mapping lives as long as the Reader, not as long as the slices
//     it hands out. A view's Data and Meta are valid until Release; a copy
//     read's Meta until the next read. After Close (and after a re-map to a
//     writer's new segment) the old range stays reserved and inaccessible
//     (PROT_NONE) for the last 16 mappings the process retired, so a stale
//     access faults deterministically rather than reading memory that
//     something else reuses; beyond those 16 the kernel may reuse it.
//   - A segment truncated under the reader raises SIGBUS on access. The
//     library's own accesses, and the function ReadInPlace runs, are
//     guarded (debug.SetPanicOnFault) and give [ring.ErrTruncated]. The
//     guard is per goroutine: a view's Data handed to another goroutine, or
//     to cgo (an OpenCV Mat over the slot, package cv), is not covered, and
//     a fault there kills the process.
//   - Retryable and final errors: [ring.ErrWriterGone] is reported once
//     per death and the next read waits for a writer; [ring.ErrOverwritten]
//     concerns that one view only; [ring.ErrTruncated] is followed by a
//     re-open at the next read; a corrupt slot ([ring.ErrCorrupt]) is
//     skipped and counted, and the next read goes on; context errors are
//     the caller's. [ring.ErrClosed], [ring.ErrViewOutstanding] and errors
//     from Open ([ring.ErrNotFound] until the ring exists: see [OpenWait];
//     [ring.ErrUnsafeFile], [ring.ErrIncompatible]) are final for the call.
//   - A Reader dropped without Close is unmapped when the garbage collector
//     finds it; Close releases it at once.
package consumer
