// Package seqlock implements the sequence-counter protocol that guards
// every framering slot: one writer, any number of readers in any process,
// readers never block the writer and never accept data the writer was
// changing while they read it.
//
// # Protocol
//
// The counter is a 64-bit word in shared memory that the caller hands in.
// Even means stable, odd means a write is in progress. The writer makes the
// word odd ([Writer.Begin]), changes the guarded data, and makes it even
// again ([Writer.End]). A reader loads the word ([Reader.Begin]); if it is
// even it reads the data, then asks [Reader.Validate], which succeeds only
// if the word still holds the same even value. Data read under a failed
// validation must be thrown away unused.
//
// # Memory ordering
//
// sync/atomic operations are sequentially consistent: on amd64 a load is a
// MOV and a store an XCHG; on arm64 a load is LDAR and a store STLR. That is
// not enough for a seqlock on arm64 by itself: an LDAR orders only the
// accesses after it, so plain payload loads could be satisfied after the
// second seq load; and an STLR orders only the accesses before it, so plain
// payload stores could become visible before the odd seq store. Two pairs
// fix it with no assembly:
//
//   - writer: the odd store is followed by an atomic load of the same word
//     (STLR then LDAR, which arm64 keeps in order), and every later payload
//     store is ordered after that LDAR;
//   - reader: after the payload loads it stores to a private atomic word
//     (STLR: every earlier load is done first), and the second seq load is
//     an LDAR, which cannot pass an earlier STLR.
//
// In Go memory-model terms: the writer's End synchronizes before a reader's
// Begin that observes its value, so a validated read observes every write
// made before End. The payload reads themselves race with the writer's next
// write; Go defines such a racy read of a word (it may observe either value,
// never an invented one), and validation throws away every read that
// overlapped a write.
//
// # Concurrency
//
// One [Writer] per counter, used by one goroutine at a time. A [Reader] is
// used by one goroutine at a time; use one Reader per goroutine.
package seqlock
