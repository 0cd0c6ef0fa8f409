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

const module = "github.com/framering/framering"

// allowed says which directories (relative to the module root) may import
// a path in non-test files.
var allowed = map[string][]string{
	"golang.org/x/sys/unix":     {"internal/shm"},
	"github.com/edsrzf/mmap-go": {"internal/shm"},
	"unsafe":                    {"internal/shm", "internal/layout", "ring"},
	"gocv.io/x/gocv":            {"cv", "cmd/framering", "internal/source"},
	"gocv.io/x/gocv/contrib":    {},
	"golang.org/x/sys/cpu":      {"internal/memcopy"},
	"C":                         {"internal/memcopy/glibc"},
}

// blankOnly lists directories that may import a path only for its side
// effect (import _): ring imports unsafe only for a go:linkname.
var blankOnly = map[string]string{"unsafe": "ring"}

// A layer is a set of package directories and the layers its packages may
// import from the module. The first layer whose pattern matches a
// directory is its layer.
type layer struct {
	name    string
	match   func(dir string) bool
	imports []string // layer names; "self" means other packages of the same layer
}

func is(dirs ...string) func(string) bool {
	return func(d string) bool {
		for _, x := range dirs {
			if d == x {
				return true
			}
		}
		return false
	}
}

func under(prefix string) func(string) bool {
	return func(d string) bool { return strings.HasPrefix(d, prefix+"/") }
}

// layers is the import graph of API-V2.md: every arrow points down.
var layers = []layer{
	{"ring", is("ring"), nil},
	{"seqlock", is("seqlock"), nil},
	{"internal/shm", is("internal/shm"), []string{"ring"}},
	{"internal/layout", is("internal/layout"), []string{"ring", "seqlock"}},
	{"internal/memcopy", is("internal/memcopy"), nil},
	// Test-only: no layer lists it, so no non-test file may import it.
	{"internal/memcopy/glibc", is("internal/memcopy/glibc"), nil},
	{"internal", under("internal"), []string{"ring", "seqlock", "internal/shm", "internal/layout", "internal/memcopy", "self"}},
	{"producer/consumer", is("producer", "consumer"), []string{"ring", "seqlock", "internal/shm", "internal/layout", "internal/memcopy", "internal"}},
	{"cmd", under("cmd"), []string{"ring", "seqlock", "internal/shm", "internal/layout", "internal/memcopy", "internal", "producer/consumer", "libraries", "self"}},
	{"libraries", func(string) bool { return true }, []string{"ring", "seqlock", "internal/shm", "internal/layout", "internal/memcopy", "internal", "producer/consumer", "self"}},
}

func layerOf(dir string) layer {
	for _, l := range layers {
		if l.match(dir) {
			return l
		}
	}
	panic("no layer matches " + dir) // the last one matches everything
}

// layerAllows reports whether a package in directory from may import the
// module's package in directory to.
func layerAllows(from, to string) bool {
	lf, lt := layerOf(from), layerOf(to)
	for _, name := range lf.imports {
		if name == lt.name || name == "self" && lt.name == lf.name {
			return true
		}
	}
	return false
}

// TestLayerRules checks the rule itself on the imports that must stay
// impossible, so that a change to the table cannot quietly allow them.
func TestLayerRules(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"ring", "internal/shm", false},
		{"ring", "seqlock", false},
		{"seqlock", "ring", false},
		{"internal/shm", "ring", true},
		{"internal/shm", "internal/layout", false},
		{"internal/layout", "internal/shm", false},
		{"internal/layout", "seqlock", true},
		{"internal/testutil", "producer", false},
		{"internal/testutil", "consumer", false},
		{"internal/testutil", "internal/proc", true},
		{"internal/segfile", "internal/layout", true},
		{"internal/hist", "metrics", false},
		{"internal/proc", "bench", false},
		{"internal/segfile", "cmd/framering", false},
		{"producer", "consumer", false},
		{"consumer", "producer", false},
		{"producer", "metrics", false},
		{"consumer", "legacy", false},
		{"producer", "internal/segfile", true},
		{"metrics", "consumer", true},
		{"legacy", "producer", true},
		{"bench", "legacy", true},
		{"metrics", "cmd/framering", false},
		{"cmd/framering", "bench", true},
		{"internal/memcopy", "ring", false},
		{"internal/memcopy", "internal/shm", false},
		{"producer", "internal/memcopy", true},
		{"consumer", "internal/memcopy", true},
		{"legacy", "internal/memcopy", true},
		{"internal/segfile", "internal/memcopy", true},
		{"producer", "internal/memcopy/glibc", false},
		{"internal/memcopy", "internal/memcopy/glibc", false},
		{"bench", "internal/memcopy/glibc", false},
		{"cmd/framering", "internal/memcopy/glibc", false},
		{"internal/memcopy/glibc", "internal/memcopy", false},
	} {
		if got := layerAllows(c.from, c.to); got != c.ok {
			t.Errorf("%s importing %s: allowed %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}

// TestImportRules walks the module's non-test Go files and checks every
// import against the third-party rules (STYLE.md §1, §3) and the layers.
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
		rel = filepath.ToSlash(rel)
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
			if to, ok := strings.CutPrefix(p, module+"/"); ok {
				if !layerAllows(rel, to) {
					t.Errorf("%s imports %s: layer %q may import only %v of the module", path, to, layerOf(rel).name, layerOf(rel).imports)
				}
				continue
			}
			if dir, ok := blankOnly[p]; ok && rel == dir && (imp.Name == nil || imp.Name.Name != "_") {
				t.Errorf("%s imports %q by name; %s may import it only as _ (for go:linkname)", path, p, dir)
			}
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
