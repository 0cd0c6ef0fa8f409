package memcopy

// Copy copies min(len(dst), len(src)) bytes from src to dst and returns
// that count, like the built-in copy, with the routine the package
// documentation describes for the size.
func Copy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n < SmallMax || raceEnabled {
		return copy(dst, src)
	}
	return copyLarge(dst[:n], src[:n])
}
