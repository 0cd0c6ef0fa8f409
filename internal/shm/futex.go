package shm

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared futexes: no FUTEX_PRIVATE_FLAG, because waiter and waker are
// different processes mapping the same page.
const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)

// FutexWait blocks while *addr == val, for at most timeout (which must be
// positive). It returns early on a wake, a signal or a changed value; the
// caller always re-checks its condition, so EAGAIN, EINTR and ETIMEDOUT are
// not errors. The word may live in a read-only mapping.
//
// It uses Syscall6, not RawSyscall6, so the Go scheduler can hand this
// thread's P to other goroutines while it sleeps.
func FutexWait(addr *atomic.Uint32, val uint32, timeout time.Duration) {
	ts := unix.NsecToTimespec(int64(timeout))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// FutexWake wakes up to n waiters blocked on addr and returns how many it
// woke.
func FutexWake(addr *atomic.Uint32, n int) int {
	r, _, _ := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	return int(r)
}
