package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// advice says what a person can do about err, in one sentence, or "" when
// the error itself says it (a usage error that names the flag and the
// values it takes). The library's errors say what happened; this is the one
// place that adds what to do, for every command.
func advice(err error) string {
	var (
		space *producer.NoSpaceError
		busy  *ring.BusyError
		ue    usageError
	)
	switch {
	case errors.As(err, &space):
		return fmt.Sprintf("free space in %s, use fewer --slots or a smaller frame, or in a container start it with --shm-size=%dm or more",
			space.Dir, (space.Need+64<<20)>>20)
	case errors.As(err, &busy):
		return fmt.Sprintf("stop the producer with pid %d, or pick another ring name", busy.PID)
	case errors.Is(err, ring.ErrBusy):
		return "stop the other writer, or pick another name"
	case errors.Is(err, ring.ErrNotFound):
		return "start its producer first, or give recv and view --wait to wait for it; check --dir"
	case errors.Is(err, ring.ErrInvalidName):
		return "use 1 to 200 of A-Z a-z 0-9 . _ - (not . or ..)"
	case errors.Is(err, ring.ErrUnsafeFile):
		return "a ring must be a regular file that others cannot write and, for readers, your own: remove it and restart its producer (a program that trusts it can set consumer.Options.AllowOtherOwner or AllowGroupWritable)"
	case errors.Is(err, fs.ErrPermission):
		return "run as the file's owner, or have its producer create it group-readable (producer.Options.Perm 0640) and join its group"
	case errors.Is(err, ring.ErrIncompatible), errors.Is(err, ring.ErrCorrupt), errors.Is(err, legacy.ErrCorrupt):
		return "it is not a valid framering v2 ring (another program's file, another version, or damaged): remove it and restart its producer"
	case errors.Is(err, ring.ErrTruncated):
		return "the file is smaller than its header says: if its producer is not still creating it, it was shrunk or damaged; remove it and restart the producer (readers re-open it at the next read)"
	case errors.Is(err, ring.ErrFrameTooLarge):
		return "open the ring with a larger frame size (a writer with a new geometry replaces the ring), or send smaller frames"
	case errors.Is(err, legacy.ErrUnsupportedFormat):
		return "mirror gray8, bgr8, rgb8, bgra8 or rgba8 frames (rgb8, bgra8 and rgba8 are converted to bgr8)"
	case errors.Is(err, legacy.ErrMismatch):
		return "give the frame size the old readers expect (--size)"
	case errors.Is(err, ring.ErrInvalidFrame):
		if errors.As(err, &ue) {
			return "" // the usage error names the flag and its form
		}
		return "check the frame size (WxHxC, C 1 to 4), the pixel format and the slot count given"
	case errors.Is(err, ring.ErrWriterGone):
		return "start the producer again; readers resume when it is back"
	case errors.Is(err, ring.ErrOverwritten):
		return "the reader fell more than a ring behind the writer: work faster on each frame, read the latest frame only, or give the ring more slots"
	case errors.Is(err, syscall.EADDRINUSE):
		return "another process listens on that address: stop it or pick another port (port 0 picks a free one)"
	case errors.Is(err, syscall.EACCES) && strings.Contains(err.Error(), "listen"):
		return "ports below 1024 need privileges: pick another port"
	case errors.Is(err, syscall.EADDRNOTAVAIL), isAddrErr(err):
		return "give host:port with an address of this machine, such as 127.0.0.1:9731 or :9731"
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return "check the path given (the rings' directory is --dir, /dev/shm by default)"
	case errors.Is(err, context.DeadlineExceeded):
		return "is the producer running? check --ring and --dir"
	}
	return ""
}

// isAddrErr recognises an address that does not parse (net's AddrError has
// no sentinel).
func isAddrErr(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "missing port") || strings.Contains(msg, "unknown port") || strings.Contains(msg, "too many colons")
}

// withAdvice returns err's message with the advice for it, if any, after
// its first line.
func withAdvice(err error) string {
	msg := err.Error()
	a := advice(err)
	if a == "" {
		return msg
	}
	first, rest, multi := strings.Cut(msg, "\n")
	if multi {
		return first + "; " + a + "\n" + rest
	}
	return msg + "; " + a
}
