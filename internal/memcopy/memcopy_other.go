//go:build !amd64 || purego

package memcopy

const (
	// SmallMax is where amd64 starts to choose; here every size is the
	// built-in copy (see the package documentation).
	SmallMax = 16 << 10
	// RepMax is unused outside amd64.
	RepMax = 1 << 20
)

func copyLarge(dst, src []byte) int { return copy(dst, src) }

// Routine names the routine Copy uses for n bytes: always "copy" here.
func Routine(n int) string { return "copy" }
