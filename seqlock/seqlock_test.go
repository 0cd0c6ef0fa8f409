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

// arm64 listing, parsed from go build -gcflags=-S output.
type asmInst struct {
	pos, op, args string
}

type asmFunc struct {
	name  string
	insts []asmInst
}

var (
	funcHeader = regexp.MustCompile(`^(\S+) STEXT`)
	instLine   = regexp.MustCompile(`^\t0x[0-9a-f]+ \d+ \(([^)]*)\)\t(\S+)(?:\t(.*))?$`)
)

// arm64Listing compiles pkg (a directory relative to this one) for arm64
// and returns the functions of its assembly listing.
func arm64Listing(t *testing.T, pkg string) []asmFunc {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", "/dev/null", "-gcflags=-S", pkg)
	cmd.Env = append(cmd.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s for arm64: %v\n%s", pkg, err, out)
	}
	var fns []asmFunc
	for _, l := range strings.Split(string(out), "\n") {
		if m := funcHeader.FindStringSubmatch(l); m != nil {
			fns = append(fns, asmFunc{name: m[1]})
			continue
		}
		if m := instLine.FindStringSubmatch(l); m != nil && len(fns) > 0 {
			f := &fns[len(fns)-1]
			f.insts = append(f.insts, asmInst{pos: m[1], op: m[2], args: m[3]})
		}
	}
	if len(fns) == 0 {
		t.Fatalf("no functions in the arm64 listing of %s:\n%.2000s", pkg, out)
	}
	return fns
}

const seqlockPkg = "github.com/framering/framering/seqlock."

func isOp(op string, names ...string) bool {
	for _, n := range names {
		// STLR, STLRW, STLRB, STLRH; LDAR, LDARW, ...
		if op == n || len(op) == len(n)+1 && strings.HasPrefix(op, n) && strings.ContainsAny(op[len(n):], "WBH") {
			return true
		}
	}
	return false
}

// barriers lists the ordering instructions of f in order.
func barriers(f asmFunc) string {
	var ops []string
	for _, in := range f.insts {
		if isOp(in.op, "STLR", "LDAR", "DMB") {
			ops = append(ops, in.op)
		}
	}
	return strings.Join(ops, " ")
}

// TestArm64Fences compiles this package for arm64 and checks that the
// fences the protocol relies on are in the compiled functions: the
// writer's odd store (STLR) is followed by a load-acquire (LDAR) of the
// same word, and the reader's validation stores to its private word (STLR)
// before it loads the sequence (LDAR); the same for the flag protocol's
// Clear and Recheck. A compiler that weakened either would fail here.
func TestArm64Fences(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler: skipped in -short mode")
	}
	fns := map[string]asmFunc{}
	for _, f := range arm64Listing(t, ".") {
		fns[strings.TrimPrefix(f.name, seqlockPkg)] = f
	}
	for _, c := range []struct {
		fn, want string
		suffix   bool
	}{
		{"Writer.Begin", "STLR LDAR", true},
		{"(*Reader).Validate", "STLR LDAR", false},
		{"Writer.End", "STLR", true},
		{"Writer.Clear", "STLRW LDARW", false},
		{"(*Reader).Recheck", "STLR LDARW", false},
	} {
		f, ok := fns[c.fn]
		if !ok {
			t.Errorf("no %s in the assembly listing", c.fn)
			continue
		}
		got := barriers(f)
		if c.suffix && !strings.HasSuffix(got, c.want) || !c.suffix && got != c.want {
			t.Errorf("%s barriers %q, want %q", c.fn, got, c.want)
		}
	}
}

// TestArm64CallersCallSeqlock checks the code that runs: in the arm64
// listings of every package that uses the seqlock, each use is a CALL to
// the out-of-line seqlock function (whose fences TestArm64Fences checked),
// no seqlock code was inlined into the caller, and no caller has a fence
// pair of its own (a release store followed at once by a load-acquire),
// the sign of a hand-made copy of the protocol.
func TestArm64CallersCallSeqlock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler: skipped in -short mode")
	}
	for _, c := range []struct {
		pkg   string
		calls []string
	}{
		{"../producer", []string{"Writer.Begin", "Writer.End"}},
		{"../consumer", []string{"(*Reader).Begin", "(*Reader).Validate"}},
		{"../internal/segfile", []string{"(*Reader).Begin", "(*Reader).Validate"}},
		{"../legacy", []string{"Writer.Clear", "(*Reader).Recheck"}},
	} {
		t.Run(strings.TrimPrefix(c.pkg, "../"), func(t *testing.T) {
			called := map[string]int{}
			for _, f := range arm64Listing(t, c.pkg) {
				pending := -1 // index of the last release store not yet followed by a call or branch
				for i, in := range f.insts {
					if strings.Contains(in.pos, "/seqlock/") {
						t.Errorf("%s: instruction %s at %s is seqlock code inlined into the caller; keep the seqlock functions go:noinline",
							f.name, in.op, in.pos)
						break
					}
					switch {
					case in.op == "CALL" || in.op == "BL":
						if fn, ok := strings.CutPrefix(in.args, seqlockPkg); ok {
							called[strings.TrimSuffix(fn, "(SB)")]++
						}
						pending = -1
					case in.op == "RET" || in.op == "JMP" || strings.HasPrefix(in.op, "B") || strings.HasPrefix(in.op, "CB") || strings.HasPrefix(in.op, "TB"):
						pending = -1
					case isOp(in.op, "STLR"):
						pending = i
					case isOp(in.op, "LDAR") && pending >= 0 && i-pending <= 4:
						t.Errorf("%s: %s at %s followed by %s at %s: a fence pair of its own; call seqlock instead",
							f.name, f.insts[pending].op, f.insts[pending].pos, in.op, in.pos)
						pending = -1
					}
				}
			}
			for _, fn := range c.calls {
				if called[fn] == 0 {
					t.Errorf("no CALL to seqlock.%s in %s (calls: %v)", fn, c.pkg, called)
				}
			}
		})
	}
}
