package seqlock

import "sync/atomic"

// The functions below are kept out of line (go:noinline): the fences they
// rely on are checked in their compiled code (TestArm64Fences), and every
// caller in the module calls them rather than carrying an inlined copy that
// the compiler could schedule differently.

// Writer is the writing side of a sequence counter.
type Writer struct{}

// Begin makes seq odd and returns the odd value. The data it guards may be
// changed after Begin returns; End must follow.
//
//go:noinline
func (Writer) Begin(seq *atomic.Uint64) uint64 {
	s := seq.Load()
	if s&1 == 0 {
		s++
	} else {
		// A previous writer died between Begin and End. Stay odd but move
		// on, so no reader that saw the old odd value can match.
		s += 2
	}
	seq.Store(s)
	// STLR then LDAR: on arm64 the payload stores that follow cannot become
	// visible before the odd value. On amd64 the XCHG store is already a
	// full barrier and this load costs a cycle.
	_ = seq.Load()
	return s
}

// End publishes the data written since Begin by making seq even. odd must be
// the value Begin returned.
//
//go:noinline
func (Writer) End(seq *atomic.Uint64, odd uint64) {
	if odd&1 == 0 {
		panic("seqlock: End called with an even sequence")
	}
	seq.Store(odd + 1) // release: every earlier store is visible first
}

// Clear is Begin for a one-word flag protocol (the legacy slot's
// frame_valid: 0 while the writer changes the frame, 1 when it is
// complete): it stores 0 into flag and loads it back, so that on arm64 the
// stores that follow cannot become visible before the 0. Setting the flag
// to 1 afterwards is a plain atomic store (a release).
//
//go:noinline
func (Writer) Clear(flag *atomic.Int32) {
	flag.Store(0)
	_ = flag.Load()
}

// Reader is the reading side of a sequence counter. Its zero value is ready
// to use; it owns a private word for the read fence, so give each goroutine
// its own Reader.
type Reader struct {
	scratch atomic.Uint64
	_       [56]byte // keep the scratch word off other goroutines' lines
}

// Begin loads seq. It returns the value and whether it is even, that is
// whether a read may start. An odd value means a write is in progress: try
// again later.
//
//go:noinline
func (r *Reader) Begin(seq *atomic.Uint64) (uint64, bool) {
	s := seq.Load()
	return s, s&1 == 0
}

// Validate reports whether seq still holds s, the even value Begin
// returned: only then is everything read since Begin consistent.
//
//go:noinline
func (r *Reader) Validate(seq *atomic.Uint64, s uint64) bool {
	// A release store to a private word: on arm64 an STLR, which waits for
	// every earlier load, and the LDAR below cannot pass it.
	r.scratch.Store(s)
	return s&1 == 0 && seq.Load() == s
}

// Recheck is Validate for a one-word flag protocol: it loads flag again,
// ordered after every load the caller made before (a release store to the
// private word, then a load-acquire of flag), and returns its value.
//
//go:noinline
func (r *Reader) Recheck(flag *atomic.Int32) int32 {
	r.scratch.Store(0)
	return flag.Load()
}
