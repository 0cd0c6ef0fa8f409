//go:build !amd64 || purego

package memcopy

// SmallMax is the size from which Copy considers other routines than the
// built-in copy; here there are none.
const SmallMax = 1 << 62

// RepMax is unused outside amd64.
const RepMax = 0

func copyLarge(dst, src []byte) int { return copy(dst, src) }

// Routine names the routine Copy uses for n bytes.
func Routine(n int) string { return "copy" }
