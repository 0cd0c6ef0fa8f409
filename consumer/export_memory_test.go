package consumer

// Test-only accessor (its own file, apart from export_test.go).

// Mapped returns the reader's mapping of the segment.
func (r *Reader) Mapped() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sf.Mapping.Bytes()
}
