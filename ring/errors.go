package ring

import (
	"errors"
	"fmt"
	"os"
)

// Errors, grouped by the operation that returns them. Every error of
// packages producer and consumer wraps one of these (with the ring name and
// what happened); match them with errors.Is. The messages say what
// happened, not what to do: the framering command adds that.
//
// Retryable or final: [ErrWriterGone], [ErrOverwritten] and a torn read
// (which is retried inside the library and never returned) are part of a
// ring's normal life, and the next call goes on. [ErrNotFound] goes away
// when a writer creates the ring (consumer.OpenWait waits for it).
// [ErrTruncated] from a reader is followed by a re-open at the next read.
// [ErrBusy] lasts as long as the other writer. Everything else is final
// for the call that returned it: fix the input, the file or the program.
var (
	// Naming and opening.

	// ErrInvalidName is returned for a ring name outside [A-Za-z0-9._-]{1,200}
	// or one that is "." or "..".
	ErrInvalidName = errors.New("invalid ring name")
	// ErrNotFound is returned when no ring of that name exists.
	ErrNotFound = errors.New("ring does not exist")
	// ErrUnsafeFile is returned when the object is a symbolic link, not a
	// regular file, owned by another user, or writable by others than the
	// reader trusts.
	ErrUnsafeFile = errors.New("unsafe shared-memory file")
	// ErrNoSpace is returned at creation when the shared-memory file
	// system cannot hold the ring.
	ErrNoSpace = errors.New("not enough space in the shared-memory file system")

	// Validation of shared memory (untrusted input).

	// ErrIncompatible is returned for a segment with another magic, version
	// or geometry than expected. *LayoutError matches it.
	ErrIncompatible = errors.New("incompatible ring segment")
	// ErrCorrupt is returned when a superblock or slot field is out of range
	// or its checksum does not match.
	ErrCorrupt = errors.New("corrupt ring segment")
	// ErrTruncated is returned when the object is smaller than its
	// superblock says, including when it shrinks under a live mapping.
	ErrTruncated = errors.New("ring segment truncated")

	// Writing.

	// ErrBusy is returned when another process is writing the ring.
	// *BusyError matches it.
	ErrBusy = errors.New("ring already has a writer")
	// ErrInvalidFrame is returned for frame info that cannot describe a
	// frame (zero or negative sizes, unknown pixel format, short stride) and
	// for a geometry outside the format's limits.
	ErrInvalidFrame = errors.New("invalid frame")
	// ErrFrameTooLarge is returned for a frame or metadata larger than the
	// slot holds.
	ErrFrameTooLarge = errors.New("frame larger than the ring's slots")
	// ErrLoanOutstanding is returned by Reserve while an earlier loan is
	// neither committed nor aborted.
	ErrLoanOutstanding = errors.New("previous reservation not committed or aborted")
	// ErrLoanEnded is returned by a loan that was already committed or
	// aborted (a stale copy); it touches nothing.
	ErrLoanEnded = errors.New("loan already committed or aborted")

	// Reading.

	// ErrWriterGone is returned once when the ring's writer died or closed;
	// the next read waits for a writer to come back.
	ErrWriterGone = errors.New("ring writer is gone")
	// ErrOverwritten is returned when a view's slot was overwritten while
	// the caller worked on it: whatever it computed from the view is
	// invalid.
	ErrOverwritten = errors.New("frame overwritten while in use")
	// ErrViewOutstanding is returned by Acquire and Read while an earlier
	// view has not been released.
	ErrViewOutstanding = errors.New("previous view not released")
	// ErrViewReleased is returned by a view that was already released (a
	// stale copy); it releases nothing else.
	ErrViewReleased = errors.New("view already released")

	// ErrClosed is returned by any call on a closed writer or reader, and
	// by a loan or view used after its writer or reader was closed.
	ErrClosed = os.ErrClosed
)

// LayoutError describes a field of a segment that does not have the value
// a reader or writer needs. It matches [ErrIncompatible].
type LayoutError struct {
	Field     string
	Got, Want string
}

func (e *LayoutError) Error() string {
	return fmt.Sprintf("incompatible ring segment: %s is %s, want %s", e.Field, e.Got, e.Want)
}

// Is reports whether target is [ErrIncompatible].
func (e *LayoutError) Is(target error) bool { return target == ErrIncompatible }

// BusyError says another process writes the ring. It matches [ErrBusy].
type BusyError struct {
	Ring string
	PID  int // from the superblock; 0 if unreadable
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("ring %q: already written by pid %d", e.Ring, e.PID)
}

// Is reports whether target is [ErrBusy].
func (e *BusyError) Is(target error) bool { return target == ErrBusy }
