//go:build amd64 && !purego

package memcopy

// testKernels are the assembly kernels, each tested on its own at every
// size it accepts (Copy alone reaches them only from SmallMax on).
var testKernels = []testKernel{
	{name: "rep-movsb", min: 64, ok: true, fn: repMovsb},
	{name: "avx-loop", min: 256, ok: hasAVX, fn: avxLoop},
}
