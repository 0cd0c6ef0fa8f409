// Package ring holds what users of framering name: ring names and paths,
// pixel formats, frame descriptions ([FrameInfo], [Frame]), the
// [Geometry] of a ring, a ring's superblock [Status], latency snapshots
// ([Latency]) and the sentinel errors that every package of the module
// wraps.
//
// The segment format itself (superblock, slot header, offsets, validation)
// is internal to the module (internal/layout) and documented to the byte in
// docs/PROTOCOL.md for readers in other languages. Package producer writes
// rings, package consumer reads them.
//
// ring imports nothing else of the module and has no state; everything in
// it is safe for concurrent use.
//
// # Caveats
//
//   - A [Frame]'s Data and Meta may alias shared memory (a view's frame):
//     the package that returned the frame says for how long they are
//     valid.
//   - [Status] and the frames a reader gets come from memory that another
//     process writes: they were validated, but they say what that process
//     wrote, not what is true.
//   - Times: Capture, Published and Status.Heartbeat are CLOCK_MONOTONIC
//     ([Now]), comparable across processes of one host only; Frame.Wall and
//     Status's times are the wall clock.
//   - [Latency] quantiles are within 3.2 % of the true value (bucketed).
//   - Which errors are retryable and which final: see the Errors comment
//     below and the Caveats of packages producer and consumer.
package ring
