package main

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/internal/source"
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
		legacy.ErrCorrupt, legacy.ErrUnsupportedFormat, legacy.ErrMismatch, legacy.ErrTooLarge,
		source.ErrPartialFrame, source.ErrNoOpenCV, source.ErrUndecodable, &rmError{"x", errWriterAlive}, &rmError{"x", ring.ErrNotFound},
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

// The advice for a frame too large never suggests a slot past the format's
// 16 GiB maximum.
func TestAdviceFrameTooLarge(t *testing.T) {
	huge := fmt.Errorf("ring %q: %w: %d bytes, the slots hold %d", "cam0", ring.ErrFrameTooLarge, int64(20)<<30, 1<<20)
	a := advice(huge)
	if !strings.Contains(a, "no ring holds frames over 16.0GiB") || strings.Contains(a, "larger frame size") || strings.Contains(a, "restart the writer") {
		t.Errorf("advice for a 20 GiB frame: %q", a)
	}
	small := fmt.Errorf("ring %q: %w: 640x480x3 frame is %d bytes, the slots hold %d", "cam0", ring.ErrFrameTooLarge, 921600, 1000)
	if a := advice(small); !strings.Contains(a, "at most 16.0GiB per slot") || !strings.Contains(a, "send smaller frames") {
		t.Errorf("advice for a 900 KB frame: %q", a)
	}
	if a := advice(fmt.Errorf("legacy slot %q: %w: %d bytes is more than %d", "x", ring.ErrFrameTooLarge, 1<<30, 1<<28)); !strings.Contains(a, "old 24-byte layout") {
		t.Errorf("advice for a legacy slot: %q", a)
	}
	if a := advice(fmt.Errorf("open ring %q: %w: slot payload size 19600000000 is outside [1, 17179869184]", "x", ring.ErrInvalidFrame)); !strings.Contains(a, "at most 16.0GiB") {
		t.Errorf("advice for a geometry past the maximum: %q", a)
	}
}

// The advice for a ring readers refuse names the recv flag that accepts
// it, and none for a world-writable ring.
func TestAdviceUnsafe(t *testing.T) {
	for msg, want := range map[string]string{
		"/dev/shm/framering.x belongs to uid 7, not to you (uid 0)": "--allow-other-owner",
		"/dev/shm/framering.x is group-writable (mode 0660)":        "--allow-group-writable",
		"/dev/shm/framering.x is world-writable (mode 0666)":        "no reader trusts it",
		"/dev/shm/framering.x is a symbolic link":                   "regular file",
	} {
		a := advice(fmt.Errorf("open ring %q: %w: %s", "x", ring.ErrUnsafeFile, msg))
		if !strings.Contains(a, want) {
			t.Errorf("advice for %q: %q lacks %q", msg, a, want)
		}
		if strings.Contains(msg, "world") && strings.Contains(a, "--allow") {
			t.Errorf("advice for a world-writable ring offers a flag: %q", a)
		}
	}
}

// A legacy slot the reader refuses gets advice that names legacy ingest's
// flags, not recv's.
func TestAdviceLegacyUnsafe(t *testing.T) {
	for msg, want := range map[string]string{
		"belongs to uid 1000, not to you": "--allow-other-owner",
		"is group-writable (mode 0660)":   "--allow-group-writable",
		"is world-writable (mode 0666)":   "--allow-world-writable",
		"is not a regular file (a FIFO)":  "not a symbolic link or a FIFO",
	} {
		err := fmt.Errorf("legacy slot %q: %w: /dev/shm/x %s", "x", ring.ErrUnsafeFile, msg)
		if a := advice(err); !strings.Contains(a, want) || strings.Contains(a, "recv") {
			t.Errorf("advice for %q = %q, want it to name %q and not recv", msg, a, want)
		}
	}
}
