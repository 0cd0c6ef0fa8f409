package producer

import (
	"errors"
	"fmt"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// wantSparse says whether a new segment is created sparse: when huge pages
// are wanted (not NoHugePages) on a file system that gives them only to
// advised mappings (huge=advise), fallocate would allocate small pages
// before the advice could apply, so the file only gets its size and
// prepare allocates it.
func (w *Writer) wantSparse() bool {
	if w.opts.NoHugePages {
		return false
	}
	mode, err := shm.HugePages(dirOf(w.opts.Dir))
	return err == nil && mode == shm.HugeAdvise
}

// prepare readies the memory of a segment the writer created: huge-page
// advice unless NoHugePages, then a prefault of every page, so no frame pays
// first-touch faults. A sparse file is always prefaulted: that is where a
// full file system shows, as ErrNoSpace, instead of a SIGBUS later.
func (w *Writer) prepare(m *shm.Mapping, sparse bool, size int64) error {
	if !w.opts.NoHugePages {
		// Best effort: where the kernel has no THP, pages stay small.
		m.AdviseHuge()
	}
	if w.opts.NoPrefault && !sparse {
		return nil
	}
	err := m.Prefault()
	switch {
	case err == nil:
		return nil
	case sparse && (errors.Is(err, shm.ErrFault) || errors.Is(err, ring.ErrNoSpace)):
		return &NoSpaceError{Ring: w.name, Dir: dirOf(w.opts.Dir), Need: size}
	case errors.Is(err, shm.ErrFault):
		// Reserved by fallocate, yet a page is gone: someone truncated
		// the new file.
		return fmt.Errorf("create ring %q: %w (%v)", w.name, ring.ErrTruncated, err)
	}
	return fmt.Errorf("create ring %q: prefault: %w", w.name, err)
}

// prepareReused prefaults a segment the writer takes over, whose pages
// exist already: mapping them costs a minor fault each, still worth doing
// before the first frame rather than during it.
func (w *Writer) prepareReused(m *shm.Mapping) error {
	if w.opts.NoPrefault {
		return nil
	}
	err := m.Prefault()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, shm.ErrFault):
		return fmt.Errorf("open ring %q: %w (%v)", w.name, ring.ErrTruncated, err)
	}
	return fmt.Errorf("open ring %q: prefault: %w", w.name, err)
}
