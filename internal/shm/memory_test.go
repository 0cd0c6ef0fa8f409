package shm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/framering/framering/internal/testutil"
)

// mapNew creates an object of size bytes in dir (sparse or reserved) and
// maps it read-write; both are released when the test ends.
func mapNew(t *testing.T, dir string, size int, sparse bool) (*File, *Mapping) {
	t.Helper()
	create := Create
	if sparse {
		create = CreateSparse
	}
	f, err := create(filepath.Join(dir, "obj"), int64(size), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Map(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmap() })
	return f, m
}

func resident(t *testing.T, b []byte) Residency {
	t.Helper()
	r, err := Resident(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPrefault: a fresh mapping has no page in this process's page
// tables; after Prefault every page is there, and what the memory held is
// unchanged.
func TestPrefault(t *testing.T) {
	const size = 4 << 20
	dir := testutil.ShmDir(t)
	f, m := mapNew(t, dir, size, false)
	b := m.Bytes()
	if r := resident(t, b); r.Size != size || r.Rss != 0 {
		t.Fatalf("fresh mapping: %+v, want Size %d, Rss 0", r, size)
	}
	// Content written through a second mapping must survive the
	// prefault of this one.
	m2, err := Map(f, size, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Unmap()
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7 + i>>12)
	}
	copy(m2.Bytes(), want)
	if r := resident(t, b); r.Rss != 0 {
		t.Fatalf("writes through another mapping made this one resident: %+v", r)
	}
	if err := m.Prefault(); err != nil {
		t.Fatal(err)
	}
	if r := resident(t, b); r.Rss != size {
		t.Fatalf("after Prefault: Rss %d of %d bytes", r.Rss, size)
	}
	if !bytes.Equal(b, want) {
		t.Fatal("Prefault changed the memory")
	}
}

// TestPrefaultTruncated: pages past the end of a truncated file are an
// error wrapping ErrFault, not a crash.
func TestPrefaultTruncated(t *testing.T) {
	f, m := mapNew(t, testutil.ShmDir(t), 1<<20, false)
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	if err := m.Prefault(); !errors.Is(err, ErrFault) {
		t.Fatalf("Prefault of a truncated object: %v, want ErrFault", err)
	}
}

// TestCreateSparse: a sparse object holds no memory until prefaulted;
// Create's fallocate reserves it at once.
func TestCreateSparse(t *testing.T) {
	const size = 2 << 20
	blocks := func(f *File) int64 {
		var st unix.Stat_t
		if err := unix.Fstat(f.Fd(), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	sf, sm := mapNew(t, testutil.ShmDir(t), size, true)
	if got := blocks(sf); got != 0 {
		t.Errorf("sparse object holds %d bytes before the prefault", got)
	}
	if err := sm.Prefault(); err != nil {
		t.Fatal(err)
	}
	if got := blocks(sf); got < size {
		t.Errorf("sparse object after Prefault holds %d bytes, want %d", got, size)
	}
	rf, _ := mapNew(t, testutil.ShmDir(t), size, false)
	if got := blocks(rf); got < size {
		t.Errorf("Create reserved %d bytes of %d", got, size)
	}
}

func TestHugeMode(t *testing.T) {
	const mi = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /dev/shm rw,nosuid,nodev shared:2 - tmpfs tmpfs rw,size=65536k
24 22 0:22 / /mnt/thp rw,relatime shared:3 - tmpfs tmpfs rw,size=1048576k,huge=advise
25 24 0:23 / /mnt/thp/inner rw,relatime - tmpfs tmpfs rw,huge=never
26 22 0:24 / /mnt/always rw - tmpfs tmpfs rw,huge=always
27 22 0:25 / /mnt/within rw - tmpfs none rw,huge=within_size,inode64
28 22 0:26 / /mnt/with\040space rw - tmpfs tmpfs rw,huge=advise
29 23 0:27 / /dev/shm rw - tmpfs tmpfs rw,huge=always
30 22 0:28 / /mnt/ext rw - ext4 /dev/vdb rw
`
	const never = "always within_size advise [never] deny force"
	for _, c := range []struct {
		dir, shmem string
		want       HugeMode
	}{
		{"/mnt/thp", never, HugeAdvise},
		{"/mnt/thp/a/b", never, HugeAdvise},
		{"/mnt/thp/inner/x", never, HugeNever}, // a mount inside wins
		{"/mnt/thpx", never, HugeNever},        // not under /mnt/thp
		{"/mnt/always", never, HugeAlways},
		{"/mnt/within", never, HugeWithinSize},
		{"/mnt/with space/d", never, HugeAdvise},
		{"/dev/shm", never, HugeAlways}, // the later mount over /dev/shm
		{"/mnt/ext", never, HugeNever},  // not a tmpfs
		{"/tmp", never, HugeNever},      // on /, ext4
		{"/mnt/thp", "always within_size advise never [deny] force", HugeNever},
		{"/mnt/ext", "always within_size advise never deny [force]", HugeAlways},
		{"/mnt/thp", "", HugeNever}, // no THP in the kernel
	} {
		if got := hugeMode([]byte(mi), []byte(c.shmem), c.dir); got != c.want {
			t.Errorf("%s with shmem_enabled %q: %v, want %v", c.dir, c.shmem, got, c.want)
		}
	}
}

// TestHugePagesAdvise: on a huge=advise tmpfs a sparse object, advised
// and prefaulted, is mapped with huge pages; a fallocated one is not (its
// small pages exist before the advice), which is why the writer creates
// it sparse.
func TestHugePagesAdvise(t *testing.T) {
	dir := testutil.MountTmpfs(t, "size=64m,huge=advise")
	if mode, err := HugePages(dir); err != nil || mode != HugeAdvise {
		t.Fatalf("HugePages(%s) = %v, %v; want advise", dir, mode, err)
	}
	const size = 8<<20 + 12288 // a tail past the last 2 MiB boundary
	for _, sparse := range []bool{true, false} {
		sub, err := os.MkdirTemp(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		_, m := mapNew(t, sub, size, sparse)
		if err := m.AdviseHuge(); err != nil {
			t.Fatal(err)
		}
		if err := m.Prefault(); err != nil {
			t.Fatal(err)
		}
		r := resident(t, m.Bytes())
		if r.Rss != size {
			t.Errorf("sparse %v: Rss %d of %d", sparse, r.Rss, size)
		}
		switch {
		case sparse && r.PmdMapped < 2<<20:
			// The 2 MiB-aligned part (at least 3 of the 4 huge pages,
			// however the mapping is placed) should be huge. Can fail
			// only if the kernel found no free 2 MiB page.
			t.Errorf("sparse object on a huge=advise tmpfs: %d bytes in huge pages, want some", r.PmdMapped)
		case !sparse && r.PmdMapped != 0:
			t.Errorf("fallocated object got %d bytes of huge pages; the writer's sparse creation would be pointless", r.PmdMapped)
		}
	}
	if mode, err := HugePages(filepath.Join(dir, "no", "such", "dir")); err != nil || mode != HugeAdvise {
		t.Errorf("a path below the mount: %v, %v", mode, err)
	}
}

// TestPrefaultSparseNoSpace: a sparse object larger than its tmpfs fails
// in Prefault, cleanly, where a store would have raised SIGBUS.
func TestPrefaultSparseNoSpace(t *testing.T) {
	dir := testutil.MountTmpfs(t, "size=1m")
	_, m := mapNew(t, dir, 4<<20, true)
	err := m.Prefault()
	if !errors.Is(err, ErrFault) {
		t.Fatalf("Prefault of 4 MiB on a 1 MiB tmpfs: %v, want an error wrapping ErrFault", err)
	}
}

// TestPrefaultRead: a read-only mapping is resident after PrefaultRead,
// with nothing written; a truncated object gives ErrFault.
func TestPrefaultRead(t *testing.T) {
	const size = 4 << 20
	f, w := mapNew(t, testutil.ShmDir(t), size, false)
	for i := range w.Bytes() {
		w.Bytes()[i] = byte(i >> 9)
	}
	r, err := Map(f, size, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unmap()
	if res := resident(t, r.Bytes()); res.Rss != 0 {
		t.Fatalf("fresh read-only mapping: Rss %d", res.Rss)
	}
	if err := r.PrefaultRead(); err != nil {
		t.Fatal(err)
	}
	if res := resident(t, r.Bytes()); res.Rss != size {
		t.Fatalf("after PrefaultRead: Rss %d of %d", res.Rss, size)
	}
	if !bytes.Equal(r.Bytes(), w.Bytes()) {
		t.Fatal("the two mappings differ")
	}
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	r2, err := Map(f, size, false) // maps past the new end, as a reader racing a truncation would
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Unmap()
	if err := r2.PrefaultRead(); !errors.Is(err, ErrFault) {
		t.Fatalf("PrefaultRead of a truncated object: %v, want ErrFault", err)
	}
}
