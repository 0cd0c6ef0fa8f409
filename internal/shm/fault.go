package shm

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Guard runs fn with faults turned into panics (debug.SetPanicOnFault) and
// turns a memory fault inside fn into an error wrapping [ErrFault]. A
// segment truncated under a live mapping raises SIGBUS on access; without
// the guard that kills the process.
//
// SetPanicOnFault is per goroutine; Guard restores the previous setting.
// Any other panic is passed on unchanged.
func Guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if f, isFault := re.(interface{ Addr() uintptr }); isFault {
					err = fmt.Errorf("%w at %#x", ErrFault, f.Addr())
					return
				}
			}
			panic(r)
		}
	}()
	return fn()
}
