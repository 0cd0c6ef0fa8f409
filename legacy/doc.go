// Package legacy keeps framering compatible with the single-slot shared
// memory recipe that predates it (see docs/LEGACY.md): a 24-byte packed
// header followed by one BGR frame in /dev/shm/mmaptest_shm, guarded by a
// frame_valid flag.
//
// # Layout
//
// One object, little-endian, packed, at offset 0:
//
//	off size field         meaning
//	  0    4 width         int32, pixels
//	  4    4 height        int32, pixels
//	  8    4 channels      int32, 3 = BGR, 8 bits per sample
//	 12    8 timestamp_ms  int64, wall clock, Unix ms; NOT 8-byte aligned
//	 20    4 frame_valid   int32, 0 = being written, 1 = complete
//	 24    …  pixels       height rows of width*channels bytes, no padding
//
// # What is here
//
//   - [Writer], the mirror writer: a [producer.Mirror] that copies every
//     committed frame of a ring into a legacy object, in the documented
//     write sequence, so that old receivers keep working next to new ones.
//   - [Reader], framering's safe reader for objects written by old senders:
//     it detects torn frames, survives the sender's unlink+recreate at
//     start-up and validates the header against the object size. It
//     refuses what ring readers refuse (a symbolic link, a FIFO or other
//     non-regular file, without blocking; an object of another user, or
//     one others may write) unless [ReaderOptions] accepts it explicitly,
//     and a header naming a frame larger than
//     [ReaderOptions.MaxFrameBytes] (64 MiB by default).
//   - [Ingest] and [MirrorRing], the loops behind `framering legacy ingest`
//     and `framering legacy mirror`.
//   - [OldWriter] and [OldReader]: the old programs' sequences, exactly, as
//     baselines for tests and benchmarks. Do not use them for anything else.
//
// # Memory ordering
//
// frame_valid is accessed with sync/atomic (sequentially consistent) on a
// 4-byte aligned address; the header and pixels are plain memory. The
// timestamp is read and written byte-wise, as its offset is unaligned.
//
// # Concurrency
//
// A Writer is called from the ring writer's goroutine only (as
// producer.Writer calls its Mirror); [Writer.Stats] and [Writer.Close] may be
// called from any goroutine. A Reader must not be used by several goroutines
// at once, except for [Reader.Stats] and [Reader.Close].
package legacy
