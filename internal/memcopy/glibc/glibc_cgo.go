//go:build cgo

package glibc

/*
#include <string.h>

static void framering_memcpy(unsigned char *dst, const unsigned char *src, size_t n) {
	memcpy(dst, src, n);
}
*/
import "C"

// Available reports whether Memcpy calls the C library (built with cgo).
const Available = true

// Memcpy copies min(len(dst), len(src)) bytes with the C library's memcpy
// and returns the count. dst and src must not overlap.
func Memcpy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n == 0 {
		return 0
	}
	// *byte converts to *C.uchar (both are uint8 underneath) without
	// unsafe; the slices hold no Go pointers, so cgo may see them.
	C.framering_memcpy((*C.uchar)(&dst[0]), (*C.uchar)(&src[0]), C.size_t(n))
	return n
}
