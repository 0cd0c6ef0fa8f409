package ring

import (
	_ "unsafe" // for go:linkname; nothing else in ring is unsafe
)

// nanotime is the runtime's CLOCK_MONOTONIC reading through the vDSO
// (about 20 ns, no system call). runtime.nanotime is one of the linknames
// the Go team keeps available because widely used modules depend on it.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now returns CLOCK_MONOTONIC in nanoseconds: the clock of
// [FrameInfo.Capture] and [Frame.Published], the same in every process on
// the host, so a writer's timestamp can be compared with a reader's.
func Now() int64 { return nanotime() }
