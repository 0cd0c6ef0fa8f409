// Package layout is framering's shared-memory segment format, version 2:
// the superblock, the slot header, the offsets that place slots and
// payloads, and the validation that every reader and writer applies to
// what it finds in shared memory. docs/PROTOCOL.md documents the format to
// the byte for readers in other languages; TestLayoutOffsets and the golden
// dump in testdata/ hold this package to it.
//
// It is internal: users name rings, frames and geometries through package
// ring, and write and read through packages producer and consumer. Tools
// of this module that inspect a segment (framering stat, the metrics
// exporter) use it through internal/segfile.
//
// # Untrusted memory
//
// A segment is shared with other processes, any of which may be buggy.
// [ParseSuperblock] and [Attach] validate the static geometry once, against
// the object's size, and [Segment] keeps private copies of the offsets so
// that nothing written into the segment later can move an access out of
// bounds. [SlotHeader.Info] validates every slot header field before a
// payload length is used. Neither panics on any input (fuzzed by
// FuzzParseSuperblock and FuzzSlotInfo).
//
// # Concurrency and lifetimes
//
// A [Segment] is a view of a mapping owned by the caller; it is valid until
// the caller unmaps it, and so is every slice and pointer it returns
// ([Segment.Payload], [Segment.Meta], [Segment.Slot]). Live superblock words
// are read and written only through the atomic accessors ([Segment.Head],
// [Segment.Notify], ...); slot contents only under the slot's seqlock
// (package seqlock). Segment's methods are safe for concurrent use; the
// memory they return is not protected by anything but the seqlock.
package layout
