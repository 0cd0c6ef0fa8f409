// Package memcopy copies frames: [Copy] is the built-in copy with the
// routine chosen for the size and the machine, for the two copies that
// carry every frame (a writer's Publish into its slot, a reader's Read out
// of it).
//
// # Why not copy
//
// The runtime's memmove is tuned for the general case. For a frame that
// another core is about to read, or has just written, two of its choices
// cost time on amd64:
//
//   - Above 1 MiB it stores with VMOVNTDQ (non-temporal): the frame goes to
//     memory around the caches, so the reader that runs next finds none of
//     it in the last-level cache and reads it all from DRAM.
//   - It uses REP MOVSB only on Intel CPUs with ERMS and FSRM. Where the
//     source lines sit modified in another core's cache (the slot the
//     writer just filled), REP MOVSB's fast-string microcode fetches them
//     faster than a vector loop.
//
// # What Copy does
//
// On amd64 (unless built with the purego tag), for n = min(len(dst),
// len(src)) bytes:
//
//   - below [SmallMax] (16 KiB): the built-in copy (its straight-line code
//     and 128-byte loop are as fast there);
//   - up to [RepMax] (1 MiB): REP MOVSB, where the CPU has ERMS and FSRM
//     (the runtime's own test for good fast-string microcode);
//   - above that: a temporal-store AVX loop (the runtime's own 128-byte
//     loop without its switch to non-temporal stores), where the CPU has
//     AVX;
//   - otherwise the built-in copy.
//
// The thresholds were measured on the machine docs/PERFORMANCE.md
// describes (the constants' comment says how); [Routine] names the
// routine a size gets. Copies above 2 MiB run in 1 MiB pieces, so the
// goroutine stays preemptible between them.
//
// On arm64 and every other architecture Copy is the built-in copy: the
// runtime's arm64 memmove is already a temporal LDP/STP loop with an
// aligned destination (the same design as Arm's optimized-routines
// memcpy), with no non-temporal stores to avoid. Built with -race, Copy is
// the built-in copy too, so the race detector sees its accesses.
//
// # Overlap
//
// Copy handles overlapping slices like copy (it checks, and falls back to
// the built-in copy, which is memmove), but frames never overlap in
// framering and the fast routines assume disjoint memory.
//
// # Faults
//
// The routines are ordinary Go assembly: a fault inside them (a shared
// segment truncated under its mapping) becomes a runtime panic that
// internal/shm's Guard turns into an error, as for copy.
package memcopy
