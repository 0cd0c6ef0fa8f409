package testutil

import (
	"encoding/binary"
	"os"
	"testing"
)

// WriteLE64 writes v little-endian at off of the file path (a test
// damaging a segment; offsets in layout: OffsetHead, SlotFileOffset, ...).
func WriteLE64(t testing.TB, path string, off int64, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, v), off); err != nil {
		t.Fatal(err)
	}
}

// ReadLE64 reads the little-endian word at off of the file path.
func ReadLE64(t testing.TB, path string, off int64) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}
