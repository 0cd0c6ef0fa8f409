// Package policy has no code: its test enforces the module's import rules
// (STYLE.md §1, §3), the way depguard would in a linter run.
//
//   - golang.org/x/sys/unix and github.com/edsrzf/mmap-go only in
//     internal/shm: every system call has one home;
//   - unsafe only in ring and internal/shm (and tests);
//   - gocv.io/x/gocv only in cv and in cmd/framering files built with the
//     gocv tag, so the core builds with CGO_ENABLED=0;
//   - producer and consumer do not import unsafe or x/sys/unix.
package policy
