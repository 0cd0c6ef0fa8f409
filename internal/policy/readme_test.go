package policy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeGoIsExampleCode checks that every Go block of README.md is the
// body (or a run of lines of the body) of an Example function in a test
// file, so that the README's code compiles, runs and shows the current API.
func TestReadmeGoIsExampleCode(t *testing.T) {
	root := "../.."
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var cur []string
	in := false
	for _, l := range strings.Split(string(readme), "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(l) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, l)
		}
	}
	if len(blocks) < 3 {
		t.Fatalf("README.md has %d Go blocks; want the writer, reader and metrics examples", len(blocks))
	}
	// Every test file's lines, one tab of indentation removed (the body of
	// a function).
	type file struct {
		path  string
		lines []string
	}
	var files []file
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ls := strings.Split(string(b), "\n")
		for i, l := range ls {
			ls[i] = strings.TrimPrefix(l, "\t")
		}
		files = append(files, file{path, ls})
		return nil
	})
	for _, b := range blocks {
		found := ""
		for _, f := range files {
			for i := 0; i+len(b) <= len(f.lines) && found == ""; i++ {
				match := true
				for k, l := range b {
					if f.lines[i+k] != l {
						match = false
						break
					}
				}
				if !match {
					continue
				}
				// The enclosing function must be an Example.
				for j := i; j >= 0; j-- {
					if strings.HasPrefix(f.lines[j], "func ") {
						if strings.HasPrefix(f.lines[j], "func Example") {
							found = f.path
						}
						break
					}
				}
			}
		}
		if found == "" {
			t.Errorf("README.md Go block starting %q is not the code of an Example function in a test file", b[0])
		}
	}
}
