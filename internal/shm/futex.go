package shm

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/ring"
)

// Shared futexes: no FUTEX_PRIVATE_FLAG, because waiter and waker are
// different processes mapping the same page. Only a [Waker]'s own word,
// which lives in this process's memory, is private.
const (
	futexWait        = 0   // FUTEX_WAIT
	futexWake        = 1   // FUTEX_WAKE
	futexPrivateFlag = 128 // FUTEX_PRIVATE_FLAG, also FUTEX2_PRIVATE for futex_waitv
	futex2SizeU32    = 0x02
)

// FutexWait blocks while *addr == val, for at most timeout (which must be
// positive). It returns early on a wake, a signal or a changed value; the
// caller always re-checks its condition, so EAGAIN, EINTR and ETIMEDOUT are
// not errors (nil). Any other errno is: EFAULT (the word is not mapped, for
// instance a truncated segment; the error wraps [ErrFault]), EINVAL, ENOSYS.
// A caller must not take those for "re-check", or it spins. The word may
// live in a read-only mapping.
//
// It uses Syscall6, not RawSyscall6, so the Go scheduler can hand this
// thread's P to other goroutines while it sleeps.
func FutexWait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	ts := unix.NsecToTimespec(int64(timeout))
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
	return futexErr("futex wait", e)
}

// FutexWake wakes up to n waiters blocked on addr and returns how many it
// woke.
func FutexWake(addr *atomic.Uint32, n int) int {
	r, _, _ := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	return int(r)
}

// futexErr maps a futex errno to nil ("re-check") or an error.
func futexErr(op string, e unix.Errno) error {
	switch e {
	case 0, unix.EAGAIN, unix.EINTR, unix.ETIMEDOUT:
		return nil
	case unix.EFAULT:
		return fmt.Errorf("%s: %w (%v)", op, ErrFault, e)
	}
	return fmt.Errorf("%s: %w", op, e)
}

// A Waker makes a wake-up of one waiter sticky. It is a private futex
// word in this process's memory, waited on together with a shared word
// (futex_waitv, Linux 5.16 and later): the waiter loads [Waker.Seq] before
// it checks its conditions (closed? cancelled?) and hands the value to
// [Waker.Wait]; a [Waker.Poke] after that load changes the word, so the
// kernel, which compares it under its lock, returns at once, even when the
// poke lands between the waiter's last check and its entry into the
// kernel. No wake-up is lost, whatever the slice.
//
// Where futex_waitv is missing (ENOSYS: kernels before 5.16, some
// seccomp profiles) Wait falls back to FUTEX_WAIT on the shared word alone,
// in slices of at most [FallbackSlice], and Poke also wakes the shared word
// the waiter sleeps on. A poke landing in the race window is then noticed
// at the end of that slice: within FallbackSlice rather than at once.
//
// A Waker must not be copied after first use. One goroutine waits on it at
// a time; Poke is safe from any goroutine.
type Waker struct {
	word   atomic.Uint32
	shared atomic.Pointer[atomic.Uint32] // the word the waiter sleeps on, for the fallback's Poke
	pokes  atomic.Uint64
}

// FallbackSlice bounds one FUTEX_WAIT of [Waker.Wait] where futex_waitv is
// not available.
const FallbackSlice = 20 * time.Millisecond

// noWaitv is set once futex_waitv returned ENOSYS (or by a test).
var noWaitv atomic.Bool

// HaveWaitv reports whether Wait uses futex_waitv (as far as is known: it
// turns false at the first ENOSYS).
func HaveWaitv() bool { return !noWaitv.Load() }

// ForceFallback makes every Waker use the FUTEX_WAIT fallback (on true)
// or try futex_waitv again (on false). For tests.
func ForceFallback(on bool) { noWaitv.Store(on) }

// Seq returns the word's value, to be loaded before the waiter checks its
// conditions and passed to Wait.
func (k *Waker) Seq() uint32 { return k.word.Load() }

// Pokes returns how many times Poke was called (tests watch it).
func (k *Waker) Pokes() uint64 { return k.pokes.Load() }

// Poke wakes the waiter, now or, if it is not asleep yet, at its next Wait
// with an older Seq value.
func (k *Waker) Poke() {
	k.word.Add(1)
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&k.word)), futexWake|futexPrivateFlag, 1, 0, 0, 0)
	if noWaitv.Load() {
		// The fallback sleeps on the shared word alone. A stale pointer
		// (the mapping went meanwhile) makes FUTEX_WAKE fail with EFAULT in
		// the kernel, harmlessly: the kernel, not this process, touches it.
		if p := k.shared.Load(); p != nil {
			FutexWake(p, 1<<30)
		}
	}
	k.pokes.Add(1)
}

// futexWaitv is struct futex_waitv of linux/futex.h.
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// Wait sleeps while *shared == sv (a shared futex word, possibly in a
// read-only mapping) and k's word == kv, for at most timeout: until a wake
// on either word, a change of either, a signal, or the timeout. Like
// [FutexWait], it returns nil for every "re-check" outcome and an error
// for EFAULT (wrapping [ErrFault]), EINVAL and the like.
func (k *Waker) Wait(shared *atomic.Uint32, sv uint32, kv uint32, timeout time.Duration) error {
	if !noWaitv.Load() {
		deadline := ring.Now() + int64(timeout)
		ws := [2]futexWaitv{
			{val: uint64(sv), uaddr: uint64(uintptr(unsafe.Pointer(shared))), flags: futex2SizeU32},
			{val: uint64(kv), uaddr: uint64(uintptr(unsafe.Pointer(&k.word))), flags: futex2SizeU32 | futexPrivateFlag},
		}
		// The timeout is absolute, on CLOCK_MONOTONIC (ring.Now's clock).
		ts := unix.NsecToTimespec(deadline)
		_, _, e := unix.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&ws[0])), 2, 0,
			uintptr(unsafe.Pointer(&ts)), unix.CLOCK_MONOTONIC, 0)
		runtime.KeepAlive(k)
		if e != unix.ENOSYS {
			return futexErr("futex_waitv", e)
		}
		noWaitv.Store(true)
	}
	k.shared.Store(shared)
	if k.word.Load() != kv {
		return nil
	}
	return FutexWait(shared, sv, min(timeout, FallbackSlice))
}
