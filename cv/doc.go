// Package cv adapts framering rings to OpenCV through gocv
// (gocv.io/x/gocv v0.31.0, which matches OpenCV 4.6 of Debian 12). It is
// compiled only with the build tag gocv:
//
//	go build -tags gocv ./...
//
// Without the tag this package is empty, and nothing else in framering
// imports gocv except cmd/framering's *_gocv.go files, so the core builds
// with CGO_ENABLED=0.
//
// # Copy or alias
//
// Writer side:
//   - [PublishMat] copies a Mat into the next slot (one copy, by OpenCV's
//     copyTo, which also handles non-continuous Mats such as ROIs).
//   - [Reserve] lends the next slot as a Mat ([MatLoan.Mat]) that aliases
//     shared memory: capture (VideoCapture.Read), colour conversion or
//     resizing with that Mat as destination write straight into the slot.
//     The Mat is valid until [MatLoan.Commit] or [MatLoan.Abort]. OpenCV
//     reallocates a destination whose size or type does not match; Commit
//     notices (the data pointer moved) and refuses to publish, so a frame
//     that went elsewhere is never published as garbage.
//
// Reader side:
//   - [ViewMat] returns a Mat that aliases a [consumer.View]'s slot: no copy,
//     valid until [consumer.View.Release], and whatever was computed from it
//     is valid only if Release returns nil. The memory is mapped read-only:
//     an OpenCV call that writes into this Mat crashes the process (SIGSEGV
//     in C code cannot be recovered).
//   - [ReadMat] copies the next frame into the caller's Mat (reallocated by
//     OpenCV if its shape differs) and returns only consistent frames.
//
// # How the aliasing works (gocv v0.31.0)
//
// gocv.NewMatFromBytes(rows, cols, type, b) calls the cv::Mat constructor
// that takes a user data pointer: it does not copy, the Mat points into b.
// gocv keeps b referenced from the Go Mat value (Mat.d) so that the garbage
// collector does not free a Go-heap slice under OpenCV; Close drops it. For
// slot memory that does not matter: it is an mmap of the segment, not Go
// heap, and lives until the writer or reader is closed. Closing the Mat
// never frees b (OpenCV does not own user data). A Mat built with a row
// stride (ROI of a wider Mat) loses gocv's reference, so b must then be
// kept alive by the caller; slot memory is.
//
// gocv v0.31.0 has no imdecode into a destination Mat: [MatLoan.Decode]
// decodes into an OpenCV temporary and copies it into the slot once.
//
// # Faults
//
// A segment truncated under a live mapping raises SIGBUS. Go code in
// framering recovers from it; OpenCV's C++ code cannot, so a Mat over a
// slot of a segment that someone shrinks kills the process. Segments are
// never shrunk by framering itself.
package cv
