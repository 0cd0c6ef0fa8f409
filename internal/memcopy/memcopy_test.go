package memcopy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/framering/framering/internal/shm"
	"golang.org/x/sys/unix"
)

type testKernel struct {
	name string
	min  int  // smallest n the kernel accepts
	ok   bool // the CPU can run it
	fn   func(dst, src *byte, n int)
}

// call runs k over dst[:n] and src[:n] the way Copy does (n >= k.min).
func (k testKernel) call(dst, src []byte, n int) {
	k.fn(&dst[0], &src[0], n)
}

// impls are the routines under test: Copy, and each kernel for sizes from
// its minimum.
func impls(t *testing.T) []testKernel {
	all := []testKernel{{name: "Copy", ok: true, fn: nil}}
	for _, k := range testKernels {
		if !k.ok {
			t.Logf("%s: not supported by this CPU, skipped", k.name)
			continue
		}
		all = append(all, k)
	}
	return all
}

func (k testKernel) run(dst, src []byte) {
	if k.fn == nil {
		if n := Copy(dst, src); n != min(len(dst), len(src)) {
			panic(fmt.Sprintf("Copy returned %d for %d and %d bytes", n, len(dst), len(src)))
		}
		return
	}
	k.call(dst, src, len(dst))
}

// fill writes a pattern with no short period (xorshift, 8 bytes a step),
// so a byte copied to the wrong offset shows.
func fill(b []byte, seed uint64) {
	x := seed | 1
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
}

// complement returns ^b, byte by byte.
func complement(b []byte) []byte {
	c := make([]byte, len(b))
	for i := range b {
		c[i] = ^b[i]
	}
	return c
}

const (
	guard     = 64   // guard bytes on each side of dst
	guardByte = 0xA5 // what they hold
)

// guards is a run of guard bytes as long as any buffer the tests use. The
// checks below are whole-slice copies and comparisons, not byte loops, so
// that they stay fast under -race, which instruments every byte access.
var guards = bytes.Repeat([]byte{guardByte}, 3840*2160*3+4*guard+256)

// checkCopy copies src into a dst of the same length at offset doff of a
// buffer with guard bytes around it, and checks every byte. notSrc is ^src:
// dst starts as it, so that an unwritten byte shows.
func checkCopy(t *testing.T, k testKernel, src, notSrc []byte, doff int, buf []byte) {
	t.Helper()
	n := len(src)
	whole := buf[:guard+doff+n+guard]
	copy(whole, guards)
	dst := whole[guard+doff : guard+doff+n]
	copy(dst, notSrc)
	k.run(dst, src)
	if !bytes.Equal(dst, src) {
		i := 0
		for dst[i] == src[i] {
			i++
		}
		t.Fatalf("%s n=%d dst offset %d: byte %d is %#x, want %#x", k.name, n, doff, i, dst[i], src[i])
	}
	if before := whole[:guard+doff]; !bytes.Equal(before, guards[:len(before)]) {
		i := 0
		for before[i] == guardByte {
			i++
		}
		t.Fatalf("%s n=%d dst offset %d: wrote byte %d before dst", k.name, n, doff, guard+doff-i)
	}
	if after := whole[guard+doff+n:]; !bytes.Equal(after, guards[:guard]) {
		i := 0
		for after[i] == guardByte {
			i++
		}
		t.Fatalf("%s n=%d dst offset %d: wrote dst[%d], past the end", k.name, n, doff, n+i)
	}
}

// TestEveryLength copies every length 0..4096 with every source and
// destination offset 0..63: each length takes all 64 destination offsets,
// paired with source offsets that shift with the length, so across lengths
// every pair occurs; lengths around the kernels' minimums and block sizes
// take all 4096 pairs. Odd lengths add 64 to the destination offset and
// lengths 2 and 3 mod 4 to the source's, so that offsets mod 128 are
// covered too (an alignment step of the wrong width shows). Under -race
// (every byte access instrumented, the kernels not at all) each length
// takes a quarter of the destination offsets, rotating with the length.
func TestEveryLength(t *testing.T) {
	const maxN = 4096
	srcBuf := make([]byte, 128+maxN)
	fill(srcBuf, 1)
	notSrc := complement(srcBuf)
	dstBuf := make([]byte, 2*guard+128+maxN)
	full := map[int]bool{}
	for _, c := range []int{0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 257, 383, 384, 385, 2047, 2048, 2049, maxN - 1, maxN} {
		full[c] = true
	}
	for _, k := range impls(t) {
		step := 1
		if raceEnabled {
			step = 4
		}
		for n := k.min; n <= maxN; n++ {
			dhi, shi := 64*(n%2), 64*(n/2%2)
			for d := n % step; d < 64; d += step {
				if full[n] && !raceEnabled {
					for s := 0; s < 64; s++ {
						checkCopy(t, k, srcBuf[shi+s:shi+s+n], notSrc[shi+s:shi+s+n], dhi+d, dstBuf)
					}
					continue
				}
				s := shi + (d*7+n)%64
				checkCopy(t, k, srcBuf[s:s+n], notSrc[s:s+n], dhi+d, dstBuf)
			}
		}
	}
}

// TestLarge copies frame sizes, and sizes around Copy's thresholds and
// its chunking, at a few misalignments.
func TestLarge(t *testing.T) {
	sizes := []int{SmallMax - 1, SmallMax, SmallMax + 1, RepMax - 1, RepMax, RepMax + 1, 2*chunkSize() + 1, 3*chunkSize() - 7, 640 * 404 * 3, 1920 * 1080 * 3, 3840 * 2160 * 3}
	if testing.Short() {
		sizes = sizes[:9]
	}
	maxN := 3840 * 2160 * 3
	src := make([]byte, maxN+64)
	fill(src, 2)
	notSrc := complement(src)
	buf := make([]byte, maxN+2*guard+64)
	for _, k := range impls(t) {
		for _, n := range sizes {
			for _, off := range [][2]int{{0, 0}, {1, 0}, {0, 33}, {63, 17}} {
				checkCopy(t, k, src[off[0]:off[0]+n], notSrc[off[0]:off[0]+n], off[1], buf)
			}
		}
	}
}

func chunkSize() int {
	if c := chunkForTest(); c > 0 {
		return c
	}
	return 1 << 20
}

// TestShortSlices: Copy copies min(len(dst), len(src)) bytes, as copy does.
func TestShortSlices(t *testing.T) {
	src := make([]byte, 10000)
	fill(src, 3)
	for _, c := range []struct{ nd, ns int }{{0, 100}, {100, 0}, {5000, 10000}, {10000, 5000}, {3000, 3001}} {
		dst := make([]byte, c.nd)
		got := Copy(dst, src[:c.ns])
		want := min(c.nd, c.ns)
		if got != want {
			t.Errorf("Copy(%d bytes, %d bytes) = %d, want %d", c.nd, c.ns, got, want)
		}
		if !bytes.Equal(dst[:want], src[:want]) {
			t.Errorf("Copy(%d bytes, %d bytes): wrong bytes", c.nd, c.ns)
		}
	}
	if n := Copy(nil, nil); n != 0 {
		t.Errorf("Copy(nil, nil) = %d", n)
	}
}

// TestOverlap: overlapping slices give what copy (memmove) gives.
func TestOverlap(t *testing.T) {
	for _, n := range []int{100, SmallMax, 100000, 3 << 20} {
		for _, shift := range []int{-4097, -64, -1, 1, 64, 4097} {
			a := make([]byte, n+16384)
			fill(a, uint64(n))
			b := bytes.Clone(a)
			ds, ss := 8192, 8192+shift
			Copy(a[ds:ds+n], a[ss:ss+n])
			copy(b[ds:ds+n], b[ss:ss+n])
			if !bytes.Equal(a, b) {
				t.Errorf("n=%d shift %d: overlapping Copy differs from copy", n, shift)
			}
		}
	}
}

// guarded returns n bytes that end (or start) right at an inaccessible
// page, so a kernel that reads or writes one byte too far faults.
func guarded(t *testing.T, n int, atEnd bool) []byte {
	t.Helper()
	page := unix.Getpagesize()
	size := (n+page-1)/page*page + 2*page
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Mprotect(mem[:page], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mprotect(mem[size-page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if atEnd {
		return mem[size-page-n : size-page]
	}
	return mem[page : page+n]
}

// TestNoAccessOutside: neither src nor dst is read or written outside
// [0, n): both sit right against a PROT_NONE page, before and after.
func TestNoAccessOutside(t *testing.T) {
	for _, k := range impls(t) {
		for _, n := range []int{max(k.min, 1), 255, 256, 257, 300, SmallMax, 4095, 70001, 1<<20 + 3} {
			if n < k.min {
				continue
			}
			for _, atEnd := range []bool{false, true} {
				src := guarded(t, n, atEnd)
				dst := guarded(t, n, !atEnd)
				fill(src, uint64(n))
				err := shm.Guard(func() error { k.run(dst, src); return nil })
				if err != nil {
					t.Fatalf("%s n=%d: %v (an access outside the slices)", k.name, n, err)
				}
				if !bytes.Equal(dst, src) {
					t.Fatalf("%s n=%d: wrong bytes", k.name, n)
				}
			}
		}
	}
}

// TestSharedMapping copies into and out of a real shared-memory mapping,
// as Publish and Read do, and a fault in a truncated one becomes an error
// through shm.Guard, as it does for copy.
func TestSharedMapping(t *testing.T) {
	const n = 1920 * 1080 * 3
	size := (n + 4095) / 4096 * 4096
	f, err := shm.Create(filepath.Join(t.TempDir(), "seg"), int64(size), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := shm.Map(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	seg := m.Bytes()
	src := make([]byte, n)
	fill(src, 4)
	for _, k := range impls(t) {
		for _, sz := range []int{4096, 640 * 404 * 3, n} {
			clear(seg)
			k.run(seg[:sz], src[:sz])
			if !bytes.Equal(seg[:sz], src[:sz]) {
				t.Fatalf("%s %d bytes into the mapping: wrong bytes", k.name, sz)
			}
			out := make([]byte, sz)
			k.run(out, seg[:sz])
			if !bytes.Equal(out, src[:sz]) {
				t.Fatalf("%s %d bytes out of the mapping: wrong bytes", k.name, sz)
			}
		}
	}
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	for _, k := range impls(t) {
		for _, dir := range []string{"in", "out"} {
			err := shm.Guard(func() error {
				if dir == "in" {
					k.run(seg[:n], src)
				} else {
					k.run(src, seg[:n])
				}
				return nil
			})
			if !errors.Is(err, shm.ErrFault) {
				t.Errorf("%s, copy %s of a truncated mapping: %v, want shm.ErrFault", k.name, dir, err)
			}
		}
	}
}

// TestRoutine: small copies are the built-in copy everywhere; under -race
// everything is.
func TestRoutine(t *testing.T) {
	for _, n := range []int{0, 1, SmallMax - 1} {
		if r := Routine(n); r != "copy" {
			t.Errorf("Routine(%d) = %q, want copy", n, r)
		}
	}
	if raceEnabled {
		if r := Routine(1 << 24); r != "copy" {
			t.Errorf("race build: Routine(16 MiB) = %q, want copy", r)
		}
	}
	for _, n := range []int{SmallMax, 1 << 20, 1 << 25} {
		t.Logf("Routine(%d) = %s", n, Routine(n))
	}
}
