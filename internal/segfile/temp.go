package segfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/framering/framering/internal/shm"
	"github.com/framering/framering/ring"
)

// Writers' temporary files (D1). A writer builds a new segment with no
// name (O_TMPFILE) and locks it before it gets one; when it replaces a
// ring, or where O_TMPFILE is missing, the file is named
// DIR/.framering-tmp.NAME.<16 random hex digits> for a moment. A
// temporary file whose OFD write lock is free therefore belongs to a
// writer that died (or finished) while creating: it is stale, and may be
// up to a whole ring of RAM. Older Go writers used .framering-tmp.<pid>.NAME.

// TempPrefix starts the name of every temporary file (a dot file:
// listings of framering.* skip it).
const TempPrefix = ".framering-tmp."

// StaleTempAge is how old (mtime) a temporary file with a free lock must
// be before a writer opening a ring removes it (D1 step 4). The age covers
// the fallback's window between creating the file and locking it.
const StaleTempAge = 10 * time.Second

// TempName returns a new temporary path for ring name in dir ("" means
// /dev/shm): DIR/.framering-tmp.NAME.<16 random hex digits>, which cannot
// collide across processes or pid namespaces.
func TempName(dir, name string) string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return filepath.Join(dirOr(dir), TempPrefix+name+"."+hex.EncodeToString(b[:]))
}

func dirOr(dir string) string {
	if dir == "" {
		return ring.DefaultDir
	}
	return dir
}

// Temp states (the words framering ls prints).
const (
	TempBuilding  = "being built"        // locked by its writer, or unlocked for less than StaleTempAge (too young to judge)
	TempStale     = "stale"              // unlocked and older than StaleTempAge: its writer is gone
	TempIrregular = "not a regular file" // a FIFO, socket, directory... under such a name: never opened
	TempUnknown   = "unknown"            // it could not be probed (see Err)
)

// Temp is a writer's temporary file found in a directory.
type Temp struct {
	File    string // file name, e.g. ".framering-tmp.cam0.5f0c2a1b9e8d7c6a"
	Path    string
	Ring    string // the ring it was built for, "" if the name does not say
	Size    int64
	ModTime time.Time
	Age     time.Duration // since ModTime, when it was probed
	UID     uint32
	Locked  bool   // a writer holds its OFD write lock
	State   string // TempBuilding, TempStale, TempIrregular or TempUnknown
	Err     error  // for TempUnknown: why it could not be probed
}

// RingOfTemp returns the ring name a temporary file name was made for, or
// "" if the name is not of a known form.
func RingOfTemp(file string) string {
	rest, ok := strings.CutPrefix(file, TempPrefix)
	if !ok {
		return ""
	}
	// .framering-tmp.NAME.<16 hex>
	if i := strings.LastIndexByte(rest, '.'); i > 0 && isHex16(rest[i+1:]) && ring.CheckName(rest[:i]) == nil {
		return rest[:i]
	}
	// Older: .framering-tmp.<pid>.NAME
	if pid, name, ok := strings.Cut(rest, "."); ok && pid != "" && strings.Trim(pid, "0123456789") == "" && ring.CheckName(name) == nil {
		return name
	}
	return ""
}

func isHex16(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Temps lists the temporary files in dir ("" means /dev/shm), sorted by
// file name, with their state. Only regular files are opened, without
// blocking (shm.Open), and only their lock is probed (F_OFD_GETLK, which
// takes none): a FIFO planted under such a name is reported, never waited
// on.
func Temps(dir string) ([]Temp, error) {
	dir = dirOr(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list temporary files: %w", err)
	}
	var out []Temp
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			out = append(out, probeTemp(dir, e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// probeTemp stats and probes one temporary file.
func probeTemp(dir, file string) Temp {
	t := Temp{File: file, Path: filepath.Join(dir, file), Ring: RingOfTemp(file), State: TempUnknown}
	at, err := shm.StatPath(t.Path)
	if err != nil {
		t.Err = err
		return t
	}
	t.Size, t.ModTime, t.UID, t.Age = at.Size, at.ModTime, at.UID, time.Since(at.ModTime)
	if at.Mode&fs.ModeIrregular != 0 {
		t.State = TempIrregular
		return t
	}
	f, err := shm.Open(t.Path, false)
	if err != nil {
		t.Err = err
		return t
	}
	defer f.Close()
	if same, err := f.Names(t.Path); err != nil || !same {
		t.Err = errors.New("it changed while being probed")
		return t
	}
	t.Locked, err = f.WriteLocked()
	switch {
	case err != nil:
		t.Err = err
	case t.Locked || t.Age <= StaleTempAge:
		t.State = TempBuilding
	default:
		t.State = TempStale
	}
	return t
}

// RemoveStaleTemps removes the stale temporary files in dir ("" means
// /dev/shm) that belong to the effective user: a writer opening a ring
// calls it (D1 step 4), and so can framering rm. Each file is probed again
// just before it is unlinked. It returns what it removed; the error joins
// the files it could not remove.
func RemoveStaleTemps(dir string) ([]Temp, error) {
	temps, err := Temps(dir)
	if err != nil {
		return nil, err
	}
	var removed []Temp
	var errs []error
	for _, t := range temps {
		if t.State != TempStale || t.UID != uint32(os.Geteuid()) {
			continue
		}
		if err := RemoveTemp(dir, t.File); err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ring.ErrBusy) {
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, t)
	}
	return removed, errors.Join(errs...)
}

// RemoveTemp removes the temporary file named file in dir ("" means
// /dev/shm) if it is stale, whatever its owner (the directory's
// permissions decide). A file a writer may still be building (locked, or
// too young to judge) is left alone: the error wraps [ring.ErrBusy].
func RemoveTemp(dir, file string) error {
	if !strings.HasPrefix(file, TempPrefix) || strings.ContainsRune(file, '/') {
		return fmt.Errorf("remove temporary file %q: not a temporary file name (%s*)", file, TempPrefix)
	}
	t := probeTemp(dirOr(dir), file)
	switch t.State {
	case TempBuilding:
		return fmt.Errorf("remove temporary file %s: %w: a writer may be creating it (locked %v, %v old)", t.Path, ring.ErrBusy, t.Locked, t.Age.Round(time.Second))
	case TempIrregular:
		return fmt.Errorf("remove temporary file %s: %w: not a regular file", t.Path, ring.ErrUnsafeFile)
	case TempUnknown:
		return fmt.Errorf("remove temporary file %s: %w", t.Path, t.Err)
	}
	// Stale: unlink it if the path still names the file probed and nobody
	// locked it since.
	f, err := shm.Open(t.Path, false)
	if err != nil {
		return fmt.Errorf("remove temporary file %s: %w", t.Path, err)
	}
	defer f.Close()
	if same, err := f.Names(t.Path); err != nil || !same {
		return fmt.Errorf("remove temporary file %s: it changed", t.Path)
	}
	if locked, err := f.WriteLocked(); err != nil || locked {
		return fmt.Errorf("remove temporary file %s: %w: a writer locked it", t.Path, ring.ErrBusy)
	}
	if err := os.Remove(t.Path); err != nil {
		return fmt.Errorf("remove temporary file %s: %w", t.Path, err)
	}
	return nil
}
