// Package glibc calls the C library's memcpy, for benchmarks that compare
// framering's copy routines with it in the same run. Only tests import it:
// the library itself stays free of cgo. Without cgo (CGO_ENABLED=0, or a
// cross-compiled test binary) Available is false and the benchmarks leave
// the memcpy column out.
package glibc
