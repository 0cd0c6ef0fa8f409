// Package interop holds no code: its tests prove that the C library
// (c/framering.h, built by `make c`) and the Go implementation speak the
// same ring, across processes, in both directions: frames checked word by
// word, exact drop counts, byte-identical segments, writer crashes
// detected and resumed. The tests skip when gcc or make is missing.
package interop
