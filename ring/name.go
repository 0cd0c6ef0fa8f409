package ring

import (
	"fmt"
	"path/filepath"
)

// DefaultDir is where rings live unless an option says otherwise.
const DefaultDir = "/dev/shm"

// FilePrefix starts every ring's file name: framering.<name>.
const FilePrefix = "framering."

// MaxNameLen is the longest ring name.
const MaxNameLen = 200

// CheckName reports whether name is a valid ring name: 1 to 200 of
// [A-Za-z0-9._-], and not "." or "..".
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q has %d characters, not 1 to %d", ErrInvalidName, trunc(name), len(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidName, trunc(name), c)
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// Path returns the file of ring name in dir ("" means [DefaultDir]).
func Path(dir, name string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, FilePrefix+name)
}
