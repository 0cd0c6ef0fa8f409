// Package chaos holds framering's chaos suite: tests that attack a running
// ring the way a crashing, stopped, hostile or careless neighbour would, and
// check that no reader accepts a torn frame, no call hangs, no process
// crashes, nothing leaks, and every reader's accounting adds up. It has no
// code of its own, only tests (issue 9, item 15).
//
// # Running
//
//	make chaos          # the full suite (tens of minutes)
//	make chaos-short    # the short version CI runs (a few minutes)
//
// or, with the framering command built by the test itself:
//
//	FRAMERING_CHAOS=short go test -count=1 -v -timeout 10m ./chaos/
//
// Without FRAMERING_CHAOS the tests skip, so `go test ./...` stays fast.
// FRAMERING_BIN names a framering binary to use instead of building one;
// FRAMERING_CHAOS_REPORT names a file to which every scenario appends its
// figures line; FRAMERING_CHAOS_SEED fixes the random seed (each scenario
// prints the one it used).
//
// # Scenarios
//
// Each test is one scenario. It prints one line of figures starting with
// "CHAOS" (torn frames accepted, hangs, crashes, leaks, detection times)
// and then asserts the invariants: 0 torn frames accepted, 0 hangs, 0
// crashes, bounded leaks (counted, never timed), delivered + dropped ==
// published in every reader's window. Times are printed, never asserted.
//
//   - TestChaosKillMidFrame: SIGKILL the writer mid-frame (in a loan, by a
//     hook, and at random moments) while readers of every API follow it,
//     then restart it.
//   - TestChaosKillDuringCreate: SIGKILL (or SIGSTOP, probe, SIGKILL) a writer
//     while it creates, replaces or takes over a ring, at steps seen from
//     the file system and at random delays; the next writer must succeed and
//     reclaim what the dead one left.
//   - TestChaosStopCont: SIGSTOP the writer; readers report it hung, and
//     resume after SIGCONT.
//   - TestChaosSegment: truncate, remove and replace the segment under live
//     readers and a live writer; truncate it inside a ReadInPlace callback.
//   - TestChaosCorrupt: random byte corruption of the superblock and the slot
//     headers, with the writer dead, stopped and running, against every
//     reader API and every CLI command under a deadline.
//   - TestChaosPlanted: FIFOs, symbolic links, directories, sockets, devices,
//     foreign-owned and world-writable files planted under ring names, temp
//     names and the legacy name.
//   - TestChaosManyReaders: 32 readers (4 processes of 8 goroutines) on one
//     writer, every accepted frame checked word by word.
//   - TestChaosCycles: 10,000 open/close cycles of readers and writers,
//     counting descriptors, mappings, threads, goroutines and RSS.
//   - TestChaosWakeups: thousands of blocked reads woken by cancel or Close
//     with a one-minute wait slice, so a lost wake-up shows as a hang.
//   - TestChaosWriterRace: four writers open one ring at once, round after
//     round, some replacing it: exactly one may own it (no split brain).
//   - TestChaosSegment also checks that a writer replacing a truncated ring
//     whose superblock survived continues its numbering.
//
// # How a hang or a crash fails a test, and never hangs it
//
// Every call into the library runs in a child process (the test binary
// re-executed) with a context deadline and a watchdog: a call still running
// a few seconds after its deadline (or after its context was cancelled) is a
// hang; the child prints it with every goroutine's stack and exits, and the
// test counts it and goes on with a fresh child. Every command-line run has a
// deadline after which it is killed and counted as a hang. A child that dies
// of a panic or a signal is a crash. Children die with the test (Pdeathsig)
// and are killed when it ends.
package chaos
