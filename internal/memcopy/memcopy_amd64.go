//go:build amd64 && !purego

package memcopy

import "golang.org/x/sys/cpu"

// The thresholds, from BenchmarkKernels on the machine of
// docs/PERFORMANCE.md (AMD EPYC, Zen 5, 1 MiB L2 per core):
//
//   - below 16 KiB the runtime's own code is as fast or faster (REP MOVSB
//     lost 15-20 % at 2-4 KiB with the cache hot in one round of runs,
//     tied in the other, tied at 16 KiB);
//   - from 64 KiB to 1 MiB REP MOVSB won: 1.3-1.9 times the vector loop
//     with the cache hot, 1.0-1.4 times when the source had just been
//     written by the other core;
//   - above 1 MiB the temporal AVX loop won where the source comes from
//     the other core (1.5 MiB: 1.1 times REP MOVSB, 2 MiB: 1.2 times),
//     and REP MOVSB still won with the cache hot up to 2 MiB; the
//     cross-core case is the one a reader of a fresh frame is in, so the
//     switch is at 1 MiB, where glibc also stops using REP MOVSB on AMD
//     (its rep_movsb_stop_threshold, the L2 size).
const (
	// SmallMax is the size below which Copy is the built-in copy.
	SmallMax = 16 << 10
	// RepMax is the largest size Copy copies with REP MOVSB (when the CPU
	// has ERMS and FSRM); above it, the AVX loop.
	RepMax = 1 << 20
	// chunk bounds the bytes one kernel call copies, so a 25 MB frame does
	// not hold off the scheduler and the GC for its whole copy.
	chunk = 1 << 20
)

// CPU features, read once.
var (
	hasERMS = cpu.X86.HasERMS
	hasFSRM = fsrm()
	hasAVX  = cpu.X86.HasAVX // includes the OS's YMM state (XGETBV)
	// useRep: REP MOVSB only where the CPU has both ERMS and FSRM (Intel
	// Ice Lake and AMD Zen 3 on), the runtime's own test for a CPU whose
	// fast-string microcode is good; older ones are left to the vector
	// loop, unmeasured here.
	useRep = hasERMS && hasFSRM
)

// fsrm reports Fast Short REP MOVSB (CPUID.7.0:EDX[4]), which x/sys/cpu
// does not expose.
func fsrm() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, _, _, d := cpuid(7, 0)
	return d&(1<<4) != 0
}

// kernel copies n bytes from src to dst; dst[:n] and src[:n] are disjoint.
type kernel func(dst, src *byte, n int)

//go:noescape
func repMovsb(dst, src *byte, n int)

//go:noescape
func avxLoop(dst, src *byte, n int)

//go:noescape
func disjoint(dst, src *byte, n int) bool

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// pick returns the kernel for an n-byte copy, or nil for the built-in copy.
func pick(n int) (kernel, string) {
	switch {
	case n < SmallMax:
	case n <= RepMax && useRep:
		return repMovsb, "rep-movsb"
	case hasAVX:
		return avxLoop, "avx-loop"
	case useRep:
		return repMovsb, "rep-movsb"
	}
	return nil, "copy"
}

// Routine names the routine Copy uses for n bytes on this machine:
// "copy", "rep-movsb" or "avx-loop".
func Routine(n int) string {
	if raceEnabled {
		return "copy"
	}
	_, name := pick(n)
	return name
}

// copyLarge copies len(dst) == len(src) >= SmallMax bytes.
func copyLarge(dst, src []byte) int {
	n := len(dst)
	k, _ := pick(n)
	if k == nil || !disjoint(&dst[0], &src[0], n) {
		return copy(dst, src)
	}
	run(k, dst, src)
	return n
}

// run copies with k in chunks: pieces of chunk bytes, the last one between
// chunk and 2*chunk, so none falls below a kernel's minimum.
func run(k kernel, dst, src []byte) {
	n, off := len(dst), 0
	for n-off > 2*chunk {
		k(&dst[off], &src[off], chunk)
		off += chunk
	}
	k(&dst[off], &src[off], n-off)
}
