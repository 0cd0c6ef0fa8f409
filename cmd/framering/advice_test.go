package main

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// Every error the library can return to a command gets a sentence of
// advice, and withAdvice puts it after the first line.
func TestAdviceForEveryError(t *testing.T) {
	for _, err := range []error{
		&producer.NoSpaceError{Ring: "cam0", Dir: "/dev/shm", Need: 443 << 20},
		&ring.BusyError{Ring: "cam0", PID: 4121},
		ring.ErrNotFound, ring.ErrInvalidName, ring.ErrUnsafeFile, fs.ErrPermission,
		ring.ErrIncompatible, &ring.LayoutError{Field: "version"}, ring.ErrCorrupt, ring.ErrTruncated,
		ring.ErrFrameTooLarge, ring.ErrInvalidFrame, ring.ErrWriterGone, ring.ErrOverwritten,
		legacy.ErrCorrupt, legacy.ErrUnsupportedFormat, legacy.ErrMismatch,
		syscall.EADDRINUSE, context.DeadlineExceeded,
	} {
		wrapped := fmt.Errorf("open ring %q: %w", "cam0", err)
		if a := advice(wrapped); a == "" {
			t.Errorf("no advice for %v", wrapped)
		}
	}
	if a := advice(&producer.NoSpaceError{Ring: "cam0", Dir: "/dev/shm", Need: 443 << 20}); !strings.Contains(a, "--shm-size=507m") {
		t.Errorf("no-space advice %q lacks the --shm-size needed", a)
	}
	if a := advice(&ring.BusyError{Ring: "cam0", PID: 4121}); !strings.Contains(a, "4121") {
		t.Errorf("busy advice %q lacks the pid", a)
	}
	got := withAdvice(fmt.Errorf("open ring %q: %w\nmore", "x", ring.ErrNotFound))
	if !strings.HasPrefix(got, `open ring "x": ring does not exist; start its producer`) || !strings.HasSuffix(got, "\nmore") {
		t.Errorf("withAdvice = %q", got)
	}
}
