package producer

import "github.com/framering/framering/internal/layout"

// Test-only accessors.

// Segment returns the mapped segment.
func (w *Writer) Segment() *layout.Segment { return w.seg }

// IsClosed reports whether Close got past waiting for the loan.
func (w *Writer) IsClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// Closing reports whether Close was called. Close holds w.mu from setting
// closing until it waits on w.cond, so a true answer while a loan is out
// means that Close is waiting for it.
func (w *Writer) Closing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closing
}
