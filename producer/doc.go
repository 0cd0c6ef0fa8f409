// Package producer is the writing side of a framering ring: one writer per
// ring, publishing frames into an N-slot ring in a POSIX shared-memory
// segment that any number of read-only readers follow (package consumer).
//
// # Basics
//
//	w, err := producer.Open("cam0", producer.Options{MaxWidth: 1920, MaxHeight: 1080, MetaBytes: 1024})
//	...
//	defer w.Close()
//	info := ring.FrameInfo{Width: 1920, Height: 1080, Format: ring.BGR8}
//	// Copy API: publish a buffer.
//	n, err := w.Publish(info, pixels)
//	// Loan API: reserve a slot for a frame of this shape, fill it in place, commit.
//	l, err := w.Reserve(info)
//	decodeInto(l.Data())                // exactly 1920*1080*3 bytes of the slot
//	json.NewEncoder(l.Meta()).Encode(boxes) // metadata, published with the frame
//	err = l.Commit()
//
// # Single writer, restarts
//
// Open takes an OFD write lock on the segment; a second writer gets a
// [ring.BusyError] naming the first one's pid. After taking the lock it
// checks that the path still names the file it locked (another writer may
// have replaced it in between) and starts over if not, so two writers can
// never both run, each on a file of its own. A writer that reopens a ring
// with the same geometry reuses the segment: it bumps the generation,
// clears slots a crashed writer left half-written, and continues the frame
// numbering (from the newest frame the slots back: a head or frame number
// no writer reaches by counting is not believed), so readers resume where
// they were. A different geometry, or a damaged file, is replaced: the new
// segment is built as a file with no name (O_TMPFILE), locked, sized,
// formatted, and only then named (or renamed over the old file), so
// readers never see a half-made segment. Frame numbers still continue
// whenever the old superblock is readable (right magic, version and
// checksum), even if its file was truncated or its slots damaged.
//
// Where O_TMPFILE is not supported the new file gets a temporary name,
// .framering-tmp.NAME.<16 random hex digits>, and is locked at once. A
// temporary file whose lock is free belongs to a writer that died while
// creating a ring: every writer opening a ring removes such files of its
// user that are older than 10 s.
//
// # Loans
//
// [Writer.Reserve] takes the frame's shape first, normalizes it and checks
// it against the slots: [Loan.Data] is exactly the frame's bytes, and a
// frame that does not fit fails there, before anything is written. A Loan
// is a small value; once it is committed or aborted, every copy of it is
// stale and its methods fail with [ring.ErrLoanEnded] without touching the
// ring. Commit, successful or not, ends the loan: the writer can Reserve
// again.
//
// # Concurrency
//
// A Writer must not be used concurrently by several goroutines, except
// that [Writer.Stats] may be called from any goroutine (a metrics scrape),
// and [Writer.Close] may be called from any goroutine, more than once; the
// loan's Commit or Abort may come from another goroutine than Reserve's
// (the one Close waits for).
//
// # Caveats
//
//   - Close waits for a loan that is out: it returns once another
//     goroutine commits or aborts it (bbolt's rule for open transactions).
//     Calling Close from the goroutine that holds the loan never returns.
//   - The mapping lives as long as the Writer, not as long as the slices
//     it hands out: [Loan.Data] and a Mirror's Frame.Data are valid until
//     Commit or Abort. After Close the range is kept reserved and
//     inaccessible (PROT_NONE) for the last 16 mappings the process
//     retired, so a stale access faults instead of writing into memory
//     that was reused; beyond that the kernel may reuse the range. Writing
//     through a loan's slice after Commit corrupts a published frame.
//   - A segment truncated under the writer raises SIGBUS on access. The
//     library turns that into [ring.ErrTruncated] for its own accesses,
//     through a fault guard (debug.SetPanicOnFault) that is per goroutine:
//     your code that fills Data in another goroutine, or in cgo (OpenCV
//     decoding into a slot), is not covered and dies with the signal.
//     framering never shrinks a live segment; only another process can.
//   - Errors are final for the call unless said otherwise: [ring.ErrBusy]
//     lasts as long as the other writer; [ring.ErrTruncated] means the
//     segment is broken (reopen the writer); [ring.ErrInvalidFrame] and
//     [ring.ErrFrameTooLarge] are the caller's to fix; [ring.ErrNoSpace]
//     ([NoSpaceError] says how much is needed) needs a larger shm file
//     system. Errors say what happened and wrap the sentinels of package
//     ring; the framering command adds what to do.
//   - A Writer dropped without Close is released when the garbage
//     collector finds it (runtime.AddCleanup), but its lock is held until
//     then: call Close.
package producer
