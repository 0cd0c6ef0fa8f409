package policy

import (
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowed says which directories (relative to the module root) may import
// a path in non-test files.
var allowed = map[string][]string{
	"golang.org/x/sys/unix":     {"internal/shm"},
	"github.com/edsrzf/mmap-go": {"internal/shm"},
	"unsafe":                    {"internal/shm", "internal/layout", "ring"},
	"gocv.io/x/gocv":            {"cv", "cmd/framering"},
	"gocv.io/x/gocv/contrib":    {},
}

func TestImportRules(t *testing.T) {
	root := "../.."
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		gocvTagged := false
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if expr, err := constraint.Parse(c.Text); err == nil && strings.Contains(expr.String(), "gocv") && !strings.Contains(expr.String(), "!gocv") {
					gocvTagged = true
				}
			}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			dirs, ruled := allowed[p]
			if !ruled {
				continue
			}
			ok := false
			for _, d := range dirs {
				if rel == d || strings.HasPrefix(rel, d+"/") {
					ok = true
				}
			}
			if p == "gocv.io/x/gocv" && !gocvTagged {
				ok = false
			}
			if !ok {
				t.Errorf("%s imports %q; allowed only in %v%s", path, p, dirs, map[bool]string{true: " (files with the gocv build tag)", false: ""}[p == "gocv.io/x/gocv"])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: is the module root at %s?", checked, root)
	}
}
