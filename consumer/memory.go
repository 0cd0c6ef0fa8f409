package consumer

// prefault makes the reader's mapping resident unless Options.NoPrefault
// (shm.Mapping.PrefaultRead: every page in the page tables, one word of
// each read), so that no slot's first read pays page faults. Open calls it
// after placing the window, so that the window starts at the head as it
// was when Open was called, not tens of milliseconds of prefault later.
// Best effort: a page that cannot be read (a truncated segment) shows at
// the read that touches it, under the fault guard.
func (r *Reader) prefault() {
	if !r.opts.NoPrefault {
		r.sf.Mapping.PrefaultRead()
	}
}
