package seqlock

import (
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

func TestProtocol(t *testing.T) {
	var seq atomic.Uint64
	var w Writer
	var r Reader

	s, ok := r.Begin(&seq)
	if !ok || s != 0 {
		t.Fatalf("Begin on a fresh word = %d, %v", s, ok)
	}
	odd := w.Begin(&seq)
	if odd != 1 {
		t.Fatalf("writer Begin = %d, want 1", odd)
	}
	if _, ok := r.Begin(&seq); ok {
		t.Fatal("reader Begin succeeded during a write")
	}
	if r.Validate(&seq, s) {
		t.Fatal("a read that overlapped a write validated")
	}
	w.End(&seq, odd)
	s2, ok := r.Begin(&seq)
	if !ok || s2 != 2 {
		t.Fatalf("after End: %d, %v", s2, ok)
	}
	if !r.Validate(&seq, s2) {
		t.Fatal("an undisturbed read did not validate")
	}
	if r.Validate(&seq, 1) {
		t.Fatal("an odd begin value validated")
	}
	// A writer that died mid-write left the word odd; the next Begin moves
	// on so no reader that saw the old odd value can ever match.
	seq.Store(7)
	if got := w.Begin(&seq); got != 9 {
		t.Fatalf("Begin over a crashed write = %d, want 9", got)
	}
}

func TestEndPanicsOnEven(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("End with an even value did not panic")
		}
	}()
	var seq atomic.Uint64
	Writer{}.End(&seq, 2)
}

// TestArm64Fences compiles this package for arm64 and checks that the
// fences the protocol relies on are there: the writer's odd store (STLR) is
// followed by a load-acquire (LDAR) of the same word, and the reader's
// validation stores to its private word (STLR) before it loads the
// sequence (LDAR). A compiler that weakened either would fail here.
func TestArm64Fences(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler: skipped in -short mode")
	}
	cmd := exec.Command("go", "build", "-o", "/dev/null", "-gcflags=-S", ".")
	cmd.Env = append(cmd.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}
	fn := func(name string) string {
		re := regexp.MustCompile(`(?s)seqlock\.` + regexp.QuoteMeta(name) + ` STEXT.*?\n(.*?)(\n\S|\z)`)
		m := re.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no %s in the assembly listing", name)
		}
		var ops []string
		for _, l := range strings.Split(m[1], "\n") {
			for _, op := range []string{"STLR", "LDAR", "DMB"} {
				if strings.Contains(l, "\t"+op+"\t") {
					ops = append(ops, op)
				}
			}
		}
		return strings.Join(ops, " ")
	}
	if got := fn("Writer.Begin"); !strings.HasSuffix(got, "STLR LDAR") {
		t.Errorf("Writer.Begin barriers %q, want the odd STLR followed by an LDAR", got)
	}
	if got := fn("(*Reader).Validate"); got != "STLR LDAR" {
		t.Errorf("Reader.Validate barriers %q, want STLR (private word) then LDAR (sequence)", got)
	}
	if got := fn("Writer.End"); !strings.Contains(got, "STLR") {
		t.Errorf("Writer.End barriers %q, want a release store", got)
	}
}
