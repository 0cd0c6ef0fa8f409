package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/framering/framering/internal/shm"
)

// This file is a local stand-in for the harden branch's helper that lists
// writers' temporary files with their state (PROTOCOL-DECISIONS D1.4); the
// lead folds it into that helper.

// tmpPrefix starts the names of the temporary files writers build rings
// in: .framering-tmp.<pid>.NAME (main) or .framering-tmp.NAME.<random>
// (D1).
const tmpPrefix = ".framering-tmp."

// staleTmpAge is how old an unlocked temporary file must be to count as
// stale: younger ones may belong to a writer between creating and locking
// it (D1.4).
const staleTmpAge = 10 * time.Second

// Temporary file states.
const (
	tmpBuilding = "being built" // locked by its writer, or too young to judge
	tmpStale    = "stale"       // unlocked and older than staleTmpAge: its writer is gone
	tmpOther    = "not a regular file"
	tmpUnknown  = "unknown"
)

// tmpFile is a temporary file of a writer in the rings' directory.
type tmpFile struct {
	Name  string // file name
	Path  string
	Size  int64
	Age   time.Duration // since the last modification
	State string
	Err   error // why the state is unknown
}

// tmpFiles lists the temporary files in dir, sorted by name, with their
// state. Only regular files owned by the effective user are opened (to
// probe the lock), so a FIFO planted under such a name cannot block it.
func tmpFiles(dir string) ([]tmpFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []tmpFile
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		out = append(out, probeTmp(filepath.Join(dir, e.Name())))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func probeTmp(path string) tmpFile {
	t := tmpFile{Name: filepath.Base(path), Path: path, State: tmpUnknown}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Err = err
		return t
	}
	t.Size, t.Age = fi.Size(), time.Since(fi.ModTime())
	if !fi.Mode().IsRegular() {
		t.State = tmpOther
		return t
	}
	f, err := shm.Open(path, false)
	if err != nil {
		t.Err = err
		return t
	}
	defer f.Close()
	_, err = f.CheckSafe(shm.Trust{GroupWrite: true})
	if err != nil { // another user's, or replaced by something else meanwhile
		t.Err = err
		return t
	}
	locked, err := f.WriteLocked()
	switch {
	case err != nil:
		t.Err = err
	case locked || t.Age <= staleTmpAge:
		t.State = tmpBuilding
	default:
		t.State = tmpStale
	}
	return t
}

// removeStaleTmp removes the stale temporary files in dir and returns
// what it removed. A file is probed again just before it is unlinked.
func removeStaleTmp(dir string) ([]tmpFile, error) {
	tmps, err := tmpFiles(dir)
	if err != nil {
		return nil, err
	}
	var removed []tmpFile
	var errs []error
	for _, t := range tmps {
		if t.State != tmpStale {
			continue
		}
		if again := probeTmp(t.Path); again.State != tmpStale {
			continue
		}
		if err := os.Remove(t.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", t.Path, err))
			continue
		}
		removed = append(removed, t)
	}
	return removed, errors.Join(errs...)
}
