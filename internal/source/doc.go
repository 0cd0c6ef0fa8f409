// Package source produces the frames `framering send` publishes: the
// checkable test pattern, an image file, raw frames read from a stream
// (standard input), and, in a build with the gocv tag, a video file or a
// camera through OpenCV.
//
// A [Source] writes each frame straight into the buffer it is handed,
// which is a reserved slot of the ring: no frame is copied on the way in
// (OpenCV decodes into the slot, a raw stream is read into it). A [Pacer]
// spaces frames at a frame rate.
//
// The package imports nothing above ring and internal/: it knows buffers,
// not writers, so the command owns the ring and its loans.
//
// # Caveats
//
//   - Fill may leave a partly written buffer behind when it fails; the
//     caller aborts the reservation.
//   - A Source is not safe for concurrent use.
//   - The OpenCV sources hand the slot to OpenCV (cgo): the writer's fault
//     guard does not cover that code, as for package cv.
package source
