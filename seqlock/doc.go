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
// validation must be thrown away unused. This is Linux's seqcount:
// write_seqcount_begin/end, read_seqcount_begin/read_seqcount_retry.
//
// [Writer.Clear] and [Reader.Recheck] give the same two orders to a
// one-word flag protocol (the legacy slot's frame_valid, package legacy).
//
// # Memory ordering: what it rests on
//
// The guarded data is read and written with plain loads and stores, which
// race with the writer. The Go memory model does not make this protocol
// correct: a racy read is allowed (Go defines that a word-sized racy read
// observes some value that was written, never an invented one), but the
// language orders nothing across it, and the reader's release store to its
// private word (below) synchronizes with nothing, since no one loads that
// word. The validated read holds because of what the gc compiler emits:
//
//   - sync/atomic loads and stores compile to LDAR and STLR on arm64, and
//     to MOV and XCHG on amd64;
//   - gc treats every sync/atomic operation as a compiler barrier: it does
//     not move plain memory accesses across one.
//
// On amd64 (TSO: loads are not reordered with older loads, stores not with
// older stores) that is enough: a reader that loads the word, copies and
// loads the word again cannot accept a torn copy, and the writer's XCHG is
// a full barrier. arm64 is weaker, twice: an LDAR orders only the accesses
// after it, so plain payload loads could be satisfied after the second seq
// load; and an STLR orders only the accesses before it, so plain payload
// stores could become visible before the odd seq store. Linux puts smp_rmb
// in read_seqcount_retry (between the data loads and the re-read of the
// sequence) and smp_wmb in write_seqcount_begin for these. Here two pairs
// of atomics give the same fences with no assembly:
//
//   - writer: the odd store is followed by an atomic load of the same word
//     (STLR then LDAR, which arm64 keeps in order), and every later payload
//     store is ordered after that LDAR;
//   - reader: after the payload loads it stores to a private atomic word
//     (STLR: every earlier load is done first), and the second seq load is
//     an LDAR, which cannot pass an earlier STLR.
//
// Because the guarantee is the compiled code, the functions are kept out
// of line (go:noinline) and the tests pin that code: TestArm64Fences
// checks the STLR→LDAR order inside each function in the arm64 listing,
// and TestArm64CallersCallSeqlock checks that producer, consumer,
// internal/segfile and legacy CALL these functions, with no seqlock code
// inlined into them and no fence pair of their own. A change in gc that
// weakened either would fail there; the cross-process torn-frame tests
// (consumer, legacy) check the outcome on the machine that runs them.
//
// # Concurrency
//
// One [Writer] per counter, used by one goroutine at a time. A [Reader] is
// used by one goroutine at a time; use one Reader per goroutine.
package seqlock
