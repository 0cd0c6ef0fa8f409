package segfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// Temp states.
const (
	TempBuilding = "building" // a writer holds its lock: it is being created right now
	TempStale    = "stale"    // nobody holds its lock: its writer died or finished
	TempUnknown  = "unknown"  // it could not be probed (see Why)
)

// Temp is a writer's temporary file found in a directory.
type Temp struct {
	File    string // file name, e.g. ".framering-tmp.cam0.5f0c2a1b9e8d7c6a"
	Path    string
	Ring    string // the ring it was built for, "" if the name does not say
	Size    int64
	ModTime time.Time
	UID     uint32
	State   string // TempBuilding, TempStale or TempUnknown
	Err     error  // for TempUnknown: why it could not be probed
}

// Age is how long ago the file was last modified.
func (t Temp) Age() time.Duration { return time.Since(t.ModTime) }

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
// file name, with their state. It opens each one without blocking
// (shm.Open: a FIFO under such a name is reported, never waited on) and
// only probes its lock (F_OFD_GETLK), which takes none.
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
	t.Size, t.ModTime, t.UID = at.Size, at.ModTime, at.UID
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
	locked, err := f.WriteLocked()
	switch {
	case err != nil:
		t.Err = err
	case locked:
		t.State = TempBuilding
	default:
		t.State = TempStale
	}
	return t
}

// RemoveStaleTemps removes the temporary files in dir ("" means /dev/shm)
// that are stale (no writer holds their lock), belong to the effective
// user, and were last modified more than minAge ago. A writer opening a
// ring calls it with [StaleTempAge] (D1 step 4). It returns the paths it
// removed; files it cannot probe or remove are left alone.
func RemoveStaleTemps(dir string, minAge time.Duration) []string {
	temps, err := Temps(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, t := range temps {
		if t.State != TempStale || t.UID != uint32(os.Geteuid()) || t.Age() <= minAge {
			continue
		}
		if removeIfStale(t) == nil {
			removed = append(removed, t.Path)
		}
	}
	return removed
}

// RemoveTemp removes the temporary file named file in dir ("" means
// /dev/shm) if it is stale, whatever its age or owner (the directory's
// permissions decide): for `framering rm`. A file that a writer holds
// locked is left alone: the error wraps [ring.ErrBusy].
func RemoveTemp(dir, file string) error {
	if !strings.HasPrefix(file, TempPrefix) || strings.ContainsRune(file, '/') {
		return fmt.Errorf("remove temporary file %q: not a temporary file name (%s*)", file, TempPrefix)
	}
	t := probeTemp(dirOr(dir), file)
	switch t.State {
	case TempBuilding:
		return fmt.Errorf("remove temporary file %s: %w: a writer is creating it", t.Path, ring.ErrBusy)
	case TempUnknown:
		return fmt.Errorf("remove temporary file %s: %w", t.Path, t.Err)
	}
	return removeIfStale(t)
}

// removeIfStale unlinks t's path if it still names the file probed and
// nobody locked it since.
func removeIfStale(t Temp) error {
	f, err := shm.Open(t.Path, false)
	if err != nil {
		return err
	}
	defer f.Close()
	if same, err := f.Names(t.Path); err != nil || !same {
		return fmt.Errorf("remove temporary file %s: it changed", t.Path)
	}
	if locked, err := f.WriteLocked(); err != nil || locked {
		return fmt.Errorf("remove temporary file %s: %w: a writer is creating it", t.Path, ring.ErrBusy)
	}
	return os.Remove(t.Path)
}
