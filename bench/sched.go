package bench

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// schedClock reads the calling thread's run-queue wait from
// /proc/thread-self/schedstat (second field: ns spent runnable but not
// running). The caller locks its goroutine to the thread
// (runtime.LockOSThread) for as long as it uses the clock. The file is
// opened once and re-read with pread.
type schedClock struct {
	f   *os.File
	buf [128]byte
}

// newSchedClock opens the clock; nil (every reading -1) where the kernel
// has no schedstat.
func newSchedClock() *schedClock {
	f, err := os.Open("/proc/thread-self/schedstat")
	if err != nil {
		return nil
	}
	c := &schedClock{f: f}
	if c.now() < 0 {
		f.Close()
		return nil
	}
	return c
}

// now is the thread's total run-queue wait in ns, or -1.
func (c *schedClock) now() int64 {
	if c == nil {
		return -1
	}
	n, err := c.f.ReadAt(c.buf[:], 0)
	if n == 0 && err != nil {
		return -1
	}
	return parseSchedstat(c.buf[:n])
}

func (c *schedClock) close() {
	if c != nil {
		c.f.Close()
	}
}

// parseSchedstat returns the second field of a schedstat line ("cpu_ns
// runqueue_ns timeslices"), or -1.
func parseSchedstat(b []byte) int64 {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return -1
	}
	v, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil || v < 0 {
		return -1
	}
	return v
}

// settle gives up the CPU for a moment (sched_yield) if another thread
// is waiting for it. A reader calls it before it starts to wait and
// reads the clock: a preemption owed after its verification burst then
// happens before the window it measures, not inside it (the read of the
// clock, a system call, is where it would otherwise land).
func settle() {
	syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}

// since is the run-queue wait since start (a reading of now), or -1.
func (c *schedClock) since(start int64) int64 {
	if start < 0 {
		return -1
	}
	n := c.now()
	if n < 0 {
		return -1
	}
	return n - start
}

// usage is the process's CPU seconds (user+system) and its context
// switches, voluntary and not (getrusage: all threads): every wake-up
// from a sleep ends in one.
func usage() (cpu float64, switches uint64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, uint64(ru.Nvcsw + ru.Nivcsw)
}

// cpuSeconds is the process's user+system CPU time (getrusage).
func cpuSeconds() float64 {
	c, _ := usage()
	return c
}
