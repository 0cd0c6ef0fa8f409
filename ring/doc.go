// Package ring holds what users of framering name: ring names and paths,
// pixel formats, frame descriptions ([FrameInfo], [Frame]), the
// [Geometry] of a ring, a writer's [Status], latency snapshots
// ([Latency]) and the sentinel errors that producer and consumer wrap.
//
// The segment format itself (superblock, slot header, offsets, validation)
// is internal to the module (internal/layout) and documented to the byte in
// docs/PROTOCOL.md for readers in other languages. Package producer writes
// rings, package consumer reads them.
//
// ring imports nothing else of the module and has no state; everything in
// it is safe for concurrent use.
package ring
