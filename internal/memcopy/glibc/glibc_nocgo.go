//go:build !cgo

package glibc

// Available reports whether Memcpy calls the C library (built with cgo).
const Available = false

// Memcpy panics: this build has no cgo. Check Available first.
func Memcpy(dst, src []byte) int {
	panic("glibc.Memcpy: built without cgo")
}
