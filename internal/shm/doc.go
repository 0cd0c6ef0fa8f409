// Package shm is framering's only door to the operating system: it is the
// one package that imports golang.org/x/sys/unix and
// github.com/edsrzf/mmap-go. Of the module it imports only package ring,
// for the sentinel errors it wraps.
//
// # What it does
//
//   - Create, open and check shared-memory objects (files in a tmpfs such as
//     /dev/shm): O_NOFOLLOW|O_CLOEXEC, fstat checks of type, owner and mode,
//     fallocate so that a full tmpfs fails at creation and not with SIGBUS.
//   - Map and unmap them (mmap-go); prefault a mapping so that no later
//     access takes a page fault ([Mapping.Prefault] for the writer,
//     [Mapping.PrefaultRead] for readers); ask for transparent huge pages
//     ([Mapping.AdviseHuge], [HugePages] says whether a directory's file
//     system gives them, [CreateSparse] leaves the allocation to them);
//     read what /proc/self/smaps says about a mapping ([Resident]).
//   - Open file description (OFD) locks: the single-writer lock and the
//     readers' liveness probe (F_OFD_GETLK, which takes no lock).
//   - Shared futex wait and wake on a 32-bit word of a mapping, and typed
//     atomic words at offsets of a mapping ([Uint32At], [Uint64At]).
//   - CPU affinity: [CPUs] and [PinProcess], for the benchmark suite's
//     --pin.
//   - The fault guard: a SIGBUS or SIGSEGV inside a guarded access window
//     (a segment truncated under its mapping) becomes [ErrFault].
//
// # Concurrency
//
// Functions here hold no state, except the quarantine of retired mappings
// ([Mapping.Unmap]); the futex functions are safe from any goroutine. A
// [File] is not safe for concurrent Close.
package shm
