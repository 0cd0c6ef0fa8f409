// Package policy has no code: its tests enforce the module's import rules
// (STYLE.md §1, §3 and the layers of API v2), the way depguard would in a
// linter run. In non-test files:
//
//   - ring and seqlock import nothing of the module;
//   - internal/shm imports only ring (for the sentinels it wraps);
//   - internal/layout imports only ring and seqlock;
//   - internal/memcopy (the frame copy) imports nothing of the module;
//   - internal/memcopy/glibc (the C library's memcpy, which the copy
//     benchmarks compare with) is imported by no non-test file;
//   - the other internal packages import only ring, seqlock and internal
//     packages: never producer, consumer, metrics, legacy, bench, cv or cmd
//     (a test opens its rings itself);
//   - producer and consumer import ring, seqlock and internal packages, not
//     each other;
//   - metrics, legacy, cv, bench (and later packages) may import all of the
//     above and each other; only cmd may import them all;
//   - golang.org/x/sys/unix and github.com/edsrzf/mmap-go only in
//     internal/shm: every system call has one home;
//   - golang.org/x/sys/cpu only in internal/memcopy, which picks its
//     routine by CPU feature;
//   - cgo (import "C") only in internal/memcopy/glibc, so the library
//     builds with CGO_ENABLED=0;
//   - unsafe only in internal/shm and internal/layout, and in ring only as
//     `import _ "unsafe"` for the clock's go:linkname;
//   - gocv.io/x/gocv only in cv, internal/source and cmd/framering, in
//     files built with the gocv tag, so the core builds with CGO_ENABLED=0.
package policy
