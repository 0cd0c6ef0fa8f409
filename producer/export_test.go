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

// Hooks stage the races of D1; nil fields are not called.
type Hooks struct {
	BeforeLock  func() // between opening the existing file and locking it
	BeforeName  func() // before a new file gets the ring's name (fresh ring)
	AfterRename func() // between renaming a replacement into place and re-checking
	NoTmpfile   bool   // use the named fallback instead of O_TMPFILE
}

// SetHooks installs h until the test ends. A hook runs once: it is
// removed before it is called, so a writer it opens does not run it again.
func SetHooks(t interface{ Cleanup(func()) }, h Hooks) {
	once := func(p *func(), fn func()) {
		if fn == nil {
			return
		}
		*p = func() { *p = nil; fn() }
	}
	once(&testHooks.beforeLock, h.BeforeLock)
	once(&testHooks.beforeName, h.BeforeName)
	once(&testHooks.afterRename, h.AfterRename)
	testHooks.noTmpfile = h.NoTmpfile
	t.Cleanup(func() {
		testHooks.beforeLock, testHooks.beforeName, testHooks.afterRename = nil, nil, nil
		testHooks.noTmpfile = false
	})
}
