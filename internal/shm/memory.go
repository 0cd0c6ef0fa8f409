package shm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefault makes every page of a writable mapping present and written in
// this process, so that no store into it takes a page fault later: a
// fresh segment's first frames would otherwise pay a fault per 4 KiB page
// (11-23 µs each on the VM docs/PERFORMANCE.md describes: 17-35 ms for a
// 1920x1080x3 frame).
//
// Two steps. MADV_POPULATE_WRITE (Linux 5.14) faults the pages into the
// page tables in one system call; on an older kernel (EINVAL) the second
// step does that work itself. Then one atomic add of zero per page writes
// each page without changing it: under a hypervisor the populated pages
// can still cost a fault on the host at their first write (measured on
// that VM: populate alone left the first frame at 5 µs per page, populate
// plus the writes at the steady-state speed). On bare metal the writes
// cost one cache miss per page.
//
// The adds keep whatever the memory holds, so Prefault is safe on a live
// segment too. A page that cannot be backed (a file truncated under the
// mapping, or a sparse file, see [CreateSparse], on a full file system)
// gives an error wrapping [ErrFault], from the populate step (EFAULT) or
// from the touches (SIGBUS), never a crash.
func (m *Mapping) Prefault() error {
	b := m.m
	if len(b) == 0 {
		return nil
	}
	if err := populate(b, unix.MADV_POPULATE_WRITE); err != nil {
		return err
	}
	page := unix.Getpagesize()
	return Guard(func() error {
		for off := 0; off < len(b); off += page {
			// A page start is 4-byte aligned; the add of zero is a write
			// that leaves the word as it was.
			(*atomic.Uint32)(unsafe.Pointer(&b[off])).Add(0)
		}
		return nil
	})
}

// PrefaultRead makes every page of a mapping present in this process's
// page tables and reads one word of each, writing nothing: a reader's
// mapping otherwise pays at its first read of each slot, whatever the
// writer did in its own mapping (3-4 ms for a 1920x1080x3 frame on the VM
// of docs/PERFORMANCE.md, 10-15 times a steady-state read).
//
// As in [Mapping.Prefault], MADV_POPULATE_READ (Linux 5.14) alone is not
// enough under a hypervisor: on that VM it removed the guest's page
// faults but not the cost of the first access to each page (about 3 µs,
// the hypervisor's own mapping work); the read per page pays it here
// instead. A page with no backing (a truncated file) gives an error
// wrapping [ErrFault].
func (m *Mapping) PrefaultRead() error {
	b := m.m
	if len(b) == 0 {
		return nil
	}
	if err := populate(b, unix.MADV_POPULATE_READ); err != nil {
		return err
	}
	page := unix.Getpagesize()
	return Guard(func() error {
		var sum uint32
		for off := 0; off < len(b); off += page {
			sum += (*atomic.Uint32)(unsafe.Pointer(&b[off])).Load()
		}
		readSink.Store(sum) // keeps the loads
		return nil
	})
}

var readSink atomic.Uint32

// populate faults b's pages into the page tables with advice
// (MADV_POPULATE_WRITE or _READ). Before Linux 5.14 the kernel does not
// know the advice (EINVAL): that is no error, the caller's touches of
// every page fault them in.
func populate(b []byte, advice int) error {
	switch err := madvise(b, advice); err {
	case nil, unix.EINVAL:
		return nil
	case unix.EFAULT:
		return fmt.Errorf("prefault %d bytes: %w: a page has no backing store (the file is shorter than the mapping, or a sparse file's file system is full)", len(b), ErrFault)
	default:
		return fmt.Errorf("prefault %d bytes: madvise populate: %w", len(b), err)
	}
}

// madvise retries on EINTR and EAGAIN (populate may return either when
// interrupted or short of memory for a moment).
func madvise(b []byte, advice int) error {
	for i := 0; ; i++ {
		err := unix.Madvise(b, advice)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 100 {
			continue
		}
		return err
	}
}

// AdviseHuge asks the kernel to back the mapping with transparent huge
// pages (MADV_HUGEPAGE). It takes effect only where the file system allows
// it (see [HugePages]) and only for pages not yet allocated: call it
// before [Mapping.Prefault] on a file made by [CreateSparse].
func (m *Mapping) AdviseHuge() error {
	if len(m.m) == 0 {
		return nil
	}
	if err := unix.Madvise(m.m, unix.MADV_HUGEPAGE); err != nil {
		return fmt.Errorf("madvise hugepage: %w", err)
	}
	return nil
}

// CreateSparse is [Create] without fallocate: the object gets its size
// from ftruncate and no memory yet. Pages are allocated when first
// touched, which lets a mapping advised with [Mapping.AdviseHuge] get
// huge pages (fallocate would allocate small ones first, on a file system
// mounted huge=advise). The caller must [Mapping.Prefault] the whole
// object at once: that is where a full file system shows (ring.ErrNoSpace),
// instead of a SIGBUS at some later store.
func CreateSparse(path string, size int64, perm fs.FileMode) (*File, error) {
	f, err := CreateExcl(path, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		unix.Unlink(path)
		return nil, err
	}
	return f, nil
}

// HugeMode is what a file system does with transparent huge pages for
// shared memory.
type HugeMode int

const (
	// HugeNever: no huge pages (huge=never, the tmpfs default; or
	// shmem_enabled says deny; or not a tmpfs).
	HugeNever HugeMode = iota
	// HugeAdvise: huge pages for mappings advised with MADV_HUGEPAGE
	// (huge=advise).
	HugeAdvise
	// HugeWithinSize: huge pages wherever they fit inside the file size
	// (huge=within_size), advised or not.
	HugeWithinSize
	// HugeAlways: huge pages for every allocation (huge=always, or
	// shmem_enabled says force).
	HugeAlways
)

func (h HugeMode) String() string {
	switch h {
	case HugeAdvise:
		return "advise"
	case HugeWithinSize:
		return "within_size"
	case HugeAlways:
		return "always"
	}
	return "never"
}

// HugePages reports how the file system holding dir hands out transparent
// huge pages. For a tmpfs mount (such as /dev/shm) the mount's huge=
// option decides, which is "never" unless the mount says otherwise (or,
// from Linux 6.14, the transparent_hugepage_tmpfs= boot option);
// /sys/kernel/mm/transparent_hugepage/shmem_enabled governs only the
// kernel's internal mount (SysV shm, memfd), except that its "deny" and
// "force" override every tmpfs.
func HugePages(dir string) (HugeMode, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return HugeNever, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return HugeNever, fmt.Errorf("huge pages: %w", err)
	}
	se, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return HugeNever, fmt.Errorf("huge pages: %w", err)
	}
	return hugeMode(mi, se, abs), nil
}

// hugeMode decides from the text of /proc/self/mountinfo and of
// shmem_enabled (empty: no THP in this kernel) for the absolute path dir.
func hugeMode(mountinfo, shmemEnabled []byte, dir string) HugeMode {
	global := selected(shmemEnabled)
	switch global {
	case "", "deny":
		return HugeNever
	case "force":
		return HugeAlways
	}
	// The mount holding dir: the longest mount point that is dir or a
	// parent of it; a later line for the same point mounts over an
	// earlier one.
	best, fstype, opts := "", "", ""
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		f := strings.Fields(sc.Text())
		sep := -1
		for i, s := range f {
			if s == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+3 >= len(f) {
			continue
		}
		mp := unescapeMount(f[4])
		if !within(dir, mp) || len(mp) < len(best) {
			continue
		}
		best, fstype, opts = mp, f[sep+1], f[sep+3]
	}
	if fstype != "tmpfs" {
		return HugeNever
	}
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "huge=always":
			return HugeAlways
		case "huge=within_size":
			return HugeWithinSize
		case "huge=advise":
			return HugeAdvise
		}
	}
	return HugeNever
}

// selected returns the bracketed word of a sysfs choice list such as
// "always within_size advise [never] deny force".
func selected(b []byte) string {
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

func within(dir, mp string) bool {
	return dir == mp || mp == "/" || strings.HasPrefix(dir, mp+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
				}
				v = v<<3 | byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Residency is what /proc/self/smaps says about the mapping that holds a
// byte: how much of it is in this process's page tables, and how much of
// that through huge (PMD) mappings.
type Residency struct {
	Size, Rss, PmdMapped int64 // bytes
}

// Resident returns the [Residency] of the mapping that holds b[0].
func Resident(b []byte) (Residency, error) {
	if len(b) == 0 {
		return Residency{}, errors.New("residency: empty slice")
	}
	addr := uint64(uintptr(unsafe.Pointer(&b[0])))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return Residency{}, fmt.Errorf("residency: %w", err)
	}
	defer f.Close()
	var r Residency
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's first line: lo-hi perms ...
			if found {
				break
			}
			var lo, hi uint64
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err == nil && addr >= lo && addr < hi {
				found, r.Size = true, int64(hi-lo)
			}
			continue
		}
		if !found || len(fields) < 2 {
			continue
		}
		var kb int64
		fmt.Sscan(fields[1], &kb)
		switch fields[0] {
		case "Rss:":
			r.Rss = kb << 10
		case "ShmemPmdMapped:", "FilePmdMapped:":
			r.PmdMapped += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return Residency{}, fmt.Errorf("residency: %w", err)
	}
	if !found {
		return Residency{}, fmt.Errorf("residency: no mapping holds %#x", addr)
	}
	return r, nil
}
