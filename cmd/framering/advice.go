package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/framering/framering/internal/layout"
	"github.com/framering/framering/internal/source"
	"github.com/framering/framering/legacy"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ring"
)

// advice says what a person can do about err, in one sentence, or "" when
// the error itself says it (a usage error that names the flag and the
// values it takes). The library's errors say what happened; this is the one
// place that adds what to do, for every command.
func advice(err error) string {
	if a := bridgeAdvice(err); a != "" {
		return a
	}
	var (
		space *producer.NoSpaceError
		busy  *ring.BusyError
		ue    usageError
		rm    *rmError
	)
	switch {
	case errors.As(err, &rm) && errors.Is(err, errWriterAlive):
		return "stop the writer first, or give --force (a writer and readers that have the ring mapped keep it until they close it)"
	case errors.As(err, &rm) && errors.Is(err, ring.ErrNotFound):
		return "check the name and --dir ('framering ls' lists the rings); --force ignores names that do not exist"
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
		return unsafeAdvice(err.Error())
	case errors.Is(err, fs.ErrPermission):
		return "run as the file's owner, or have its producer create it group-readable (send --perm 0640; a program: producer.Options.Perm) and join its group"
	case errors.Is(err, ring.ErrIncompatible), errors.Is(err, ring.ErrCorrupt), errors.Is(err, legacy.ErrCorrupt):
		return "it is not a valid framering v2 ring (another program's file, another version, or damaged): remove it and restart its producer"
	case errors.Is(err, ring.ErrTruncated):
		return "the file is smaller than its header says: if its producer is not still creating it, it was shrunk or damaged; remove it and restart the producer (readers re-open it at the next read)"
	case errors.Is(err, ring.ErrFrameTooLarge):
		return tooLargeAdvice(err.Error())
	case errors.Is(err, legacy.ErrTooLarge):
		return "if the old sender really sends frames that large, give legacy ingest --max-frame-bytes N"
	case errors.Is(err, legacy.ErrUnsupportedFormat):
		return "mirror gray8, bgr8, rgb8, bgra8 or rgba8 frames (rgb8, bgra8 and rgba8 are converted to bgr8)"
	case errors.Is(err, legacy.ErrMismatch):
		return "give the frame size the old readers expect (--size)"
	case errors.Is(err, ring.ErrInvalidFrame):
		if errors.As(err, &ue) {
			return "" // the usage error names the flag and its form
		}
		return fmt.Sprintf("check the frame size (WxHxC, C 1 to 4; a slot holds at most %s), the pixel format and the slot count given", fmtBytes(layout.MaxPayloadCap))
	case errors.Is(err, source.ErrPartialFrame):
		return "check that --size and --format match what the producer writes (ffmpeg: -s and -pix_fmt); the frames before it were published"
	case errors.Is(err, source.ErrNoOpenCV):
		return "rebuild with 'go build -tags gocv ./cmd/framering' (needs libopencv-dev 4.6)"
	case errors.Is(err, source.ErrUndecodable):
		return "give a PNG or JPEG file"
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

// unsafeAdvice is the advice for a ring file readers refuse, by what is
// wrong with it (internal/shm's messages).
func unsafeAdvice(msg string) string {
	if strings.Contains(msg, "legacy slot") {
		switch {
		case strings.Contains(msg, "belongs to uid"):
			return "if you trust the old sender's account, give legacy ingest --allow-other-owner"
		case strings.Contains(msg, "group-writable"):
			return "if you trust the group, give legacy ingest --allow-group-writable"
		case strings.Contains(msg, "world-writable"):
			return "any local user can write frames into it: start the old sender with umask 022, or if you accept that, give legacy ingest --allow-world-writable"
		}
		return "a legacy slot must be a regular file, not a symbolic link or a FIFO: remove it and restart the old sender"
	}
	switch {
	case strings.Contains(msg, "belongs to uid"):
		return "if you trust its owner, give recv --allow-other-owner (a program: consumer.Options.AllowOtherOwner); otherwise remove it and restart its producer"
	case strings.Contains(msg, "group-writable"):
		return "if you trust the group, give recv --allow-group-writable (a program: consumer.Options.AllowGroupWritable); otherwise have its producer create it 0640 or 0600 (send --perm)"
	case strings.Contains(msg, "world-writable"):
		return "anyone can write it, so no reader trusts it: remove it and restart its producer (which creates rings 0600 or 0640)"
	}
	return "a ring must be a regular file, not a symbolic link: remove it and restart its producer"
}

// bytesRE finds the byte counts in a too-large error: the frame's first.
var bytesRE = regexp.MustCompile(`(\d+) bytes`)

// tooLargeAdvice never suggests a slot larger than the format allows.
func tooLargeAdvice(msg string) string {
	if strings.Contains(msg, "legacy slot") {
		return "the old 24-byte layout holds smaller frames: send smaller frames, or give old readers a scaled copy"
	}
	if m := bytesRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.ParseInt(m[1], 10, 64); err == nil && n > layout.MaxPayloadCap {
			return fmt.Sprintf("no ring holds frames over %s per slot: send smaller frames", fmtBytes(layout.MaxPayloadCap))
		}
	}
	return fmt.Sprintf("send smaller frames, or restart the writer with a frame size that holds them (at most %s per slot; a writer with a new geometry replaces the ring)", fmtBytes(layout.MaxPayloadCap))
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
